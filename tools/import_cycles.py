"""List import cycles between kaleido_tf modules and between its subpackages (function-local imports count).

Usage: python tools/import_cycles.py   (exit status 1 when there is a cycle)
"""

import sys

import grimp

PACKAGE = "kaleido_tf"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    imports = grimp.build_graph(PACKAGE, include_external_packages=False)
    modules = sorted(imports.modules)
    module_graph: dict[str, set[str]] = {}
    package_graph: dict[str, set[str]] = {}
    for module in modules:
        # A package's __init__ re-exporting its own members is not a cycle of the code.
        targets = {t for t in imports.find_modules_directly_imported_by(module) if not module.startswith(t + ".")}
        module_graph[module] = targets
        source_pkg = ".".join(module.split(".")[:2])
        for target in targets:
            target_pkg = ".".join(target.split(".")[:2])
            if target_pkg != source_pkg and target_pkg != PACKAGE and source_pkg != PACKAGE:
                package_graph.setdefault(source_pkg, set()).add(target_pkg)
    problems = 0
    for kind, graph in (("module", module_graph), ("subpackage", package_graph)):
        for component in _cycles(graph):
            problems += 1
            print(f"{kind} cycle: {' <-> '.join(component)}")
            for source in component:
                for target in sorted(graph.get(source, set()) & set(component)):
                    print(f"    {source} -> {target}")
    if problems:
        return 1
    print(f"no import cycles among {len(modules)} modules and {len(package_graph)} subpackages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
