"""The demo's serve stage: the kaleido-serve command line it records in summary.json["serve"]."""

import os

from kaleido_tf.apps.serve.cli import build_parser
from kaleido_tf.demo.serve_stage import CATALOG_INDEX, serve_arguments


def test_serve_arguments_name_the_demo_folders_and_parse_as_kaleido_serve_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = serve_arguments("out")
    flags = build_parser().parse_args(args)
    out = os.path.join(str(tmp_path), "out")
    assert flags.export_dir == os.path.join(out, "export")
    assert flags.index_dir == os.path.join(out, CATALOG_INDEX) != os.path.join(out, "index")
    assert flags.catalog == os.path.join(out, "catalog", "catalog.jsonl")
    assert flags.host == "127.0.0.1"  # the demo's page stays on loopback
    assert all(os.path.isabs(a) for a in args if not a.startswith("--"))
