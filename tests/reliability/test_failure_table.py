"""docs/failures.md and the tests stay one for one: every test a row names exists, every row names at least
one test, and every test of tests/reliability/ backs a row."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE = os.path.join(ROOT, "docs", "failures.md")
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _rows():
    """(row text, [(file, test name)]) for every body row of the tables in docs/failures.md."""
    rows = []
    with open(TABLE, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("|") or set(line) <= set("|-: "):
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[-1] == "Tests":  # a header row
                continue
            rows.append((cells[0], REFERENCE.findall(cells[-1])))
    return rows


def _test_functions(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
    }


def test_every_row_names_tests_that_exist():
    rows = _rows()
    assert len(rows) >= 25
    for subject, references in rows:
        assert references, f"the row '{subject}' names no test"
        for path, name in references:
            assert os.path.isfile(os.path.join(ROOT, path)), f"row '{subject}': {path} does not exist"
            assert name in _test_functions(path), f"row '{subject}': {path} has no test {name}"


def test_every_reliability_test_backs_a_row():
    named = {ref for _, references in _rows() for ref in references}
    here = os.path.dirname(os.path.abspath(__file__))
    for file in sorted(os.listdir(here)):
        if not (file.startswith("test_") and file.endswith(".py")) or file == os.path.basename(__file__):
            continue
        path = f"tests/reliability/{file}"
        for name in sorted(_test_functions(path)):
            assert (path, name) in named, f"{path}::{name} backs no row of docs/failures.md"


def test_the_readme_links_the_table():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    failures = readme[readme.index("## Failures") :]
    assert "docs/failures.md" in failures
