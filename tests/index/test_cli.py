"""`kaleido-index` build / search / evaluate, in process, with a saved fake model."""

import json
import os

import numpy as np
import pytest

from kaleido_tf.apps import index_main as cli
from kaleido_tf.utils import cli_errors
from tests.index.fakes import fake_model, write_catalog


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = str(root / "data")
    write_catalog(data, num_products=8, images_per_product=(1, 2), num_shards=2)
    model_path = str(root / "model.keras")
    fake_model().save(model_path)
    other_path = str(root / "other.keras")
    fake_model(seed=3).save(other_path)
    index = str(root / "index")
    assert cli.main(["build", "--model_dir", model_path, "--data_dir", data, "--output_dir", index]) == 0
    return {"data": data, "model": model_path, "other": other_path, "index": index}


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_text_and_product_print_ranked_ids(setup, capsys):
    # the fake catalog's texts are not words: query by tokens the packaged vocabulary knows
    code, out, err = _run(capsys, "search", "--index_dir", setup["index"], "--text", "red striped t-shirt", "--json")
    assert code == 0, err
    result = json.loads(out)
    scores = [h["score"] for h in result["results"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 8  # top_k 10 clamped to the 8 products
    assert "clamped" in err and err.count("warning") == 1
    code, out, _ = _run(capsys, "search", "--index_dir", setup["index"], "--product_id", "p002", "--top_k", "3")
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert code == 0 and [line[0] for line in lines] == ["1", "2", "3"]
    assert all(line[1].startswith("p0") for line in lines)
    assert [float(line[2]) for line in lines] == sorted((float(line[2]) for line in lines), reverse=True)
    code, out, _ = _run(
        capsys,
        "search",
        "--index_dir",
        setup["index"],
        "--product_id",
        "p002",
        "--top_k",
        "3",
        "--rerank",
        "6",
        "--json",
    )
    hits = json.loads(out)["results"]
    assert code == 0 and len(hits) == 3 and all(h["itm_score"] is not None for h in hits)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--text", "  "], "--text is empty"),
        (["--product_id", "nope"], "not in the index"),
        (["--text", "red", "--top_k", "0"], "--top_k must be >= 1"),
        (["--text", "red", "--top_k", "5", "--rerank", "2"], "below --top_k"),
    ],
)
def test_meaningless_queries_are_one_line_errors(setup, capsys, argv, message):
    code, out, err = _run(capsys, "search", "--index_dir", setup["index"], *argv)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_another_models_index_is_refused_naming_both_fingerprints(setup, capsys):
    code, _, err = _run(
        capsys, "search", "--index_dir", setup["index"], "--text", "red", "--top_k", "3", "--model_dir", setup["other"]
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    with open(os.path.join(setup["index"], "manifest.json")) as f:
        built_by = json.load(f)["fingerprint"]
    assert built_by in err and err.count("sha256:") == 2


def test_missing_index_file_and_traceback_flag(setup, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(cli_errors, "_wanted", [False])  # --traceback below must not outlive this test
    code, _, err = _run(capsys, "search", "--index_dir", str(tmp_path), "--product_id", "p001")
    assert code == 2 and "not an index" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("kaleido-index: error: ")
    code, _, err = _run(capsys, "--traceback", "search", "--index_dir", str(tmp_path), "--product_id", "p001")
    assert code == 2 and "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("kaleido-index: error: ") and "not an index" in err


def test_evaluate_prints_the_full_gallery_metrics(setup, capsys):
    code, out, err = _run(
        capsys, "evaluate", "--model_dir", setup["model"], "--data_dir", setup["data"], "--json", "--rerank_k", "4"
    )
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["retrieval/full/gallery_size"] == 8.0
    for direction in ("txt2img", "img2txt"):
        for method in ("itc", "itc+itm@4", "itm"):
            assert 0.0 <= metrics[f"retrieval/full/{direction}/{method}/R@1"] <= 1.0
    assert np.isclose(metrics["retrieval/full/chance/R@5"], 5 / 8)
