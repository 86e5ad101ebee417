"""`kaleido-preprocess --overwrite` over a complete output on a file system that fills up: one line that says
so, exit 2, and the previous output left whole; once there is room the same command replaces it."""

import contextlib
import hashlib
import io
import json
import os
import subprocess
import uuid

import pytest

from kaleido_tf.preprocessors.cli import main
from tests.preprocessors.factory import make_catalog, small_args


def _files(root):
    out = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def _size(root):
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(root) for n in names)


@contextlib.contextmanager
def _tmpfs(path, size):
    os.makedirs(path)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", path], check=False)


def _cli(argv, capsys):
    with contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    return status, capsys.readouterr().err


def test_a_full_disk_during_overwrite_keeps_the_previous_output(tmp_path, capsys):
    catalog, _ = make_catalog(str(tmp_path), num_products=12, splits=["train", "valid", "test"])
    common = {"feature_dtype": "float16", "retrieval_queries": 3}
    probe = str(tmp_path / "probe")
    assert _cli(small_args(catalog, probe, **common), capsys)[0] == 0
    size = _size(probe)  # the float32 output below is about twice as large
    with _tmpfs(str(tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"), (size * 2 // 4096 + 2) * 4096) as mnt:
        out = os.path.join(mnt, "out")
        assert _cli(small_args(catalog, out, **common), capsys)[0] == 0
        before = _files(out)
        bigger = small_args(catalog, out, overwrite=True, **dict(common, feature_dtype="float32"))
        status, err = _cli(bigger, capsys)
        assert status == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("kaleido-preprocess: error: ") and "the disk is full" in lines[0]
        assert f"the previous output in {out} is unchanged" in lines[0] and "MiB free" in lines[0]
        assert _files(out) == before  # whole: shards, markers, schema.json, summary.json
        assert sorted(os.listdir(mnt)) == ["out"]  # the partial build is gone
        with open(os.path.join(out, "summary.json")) as f:
            assert json.load(f)["settings"]["feature_dtype"] == "float16"

        subprocess.run(["mount", "-o", f"remount,size={size * 4}", mnt], check=True)
        assert _cli(bigger, capsys)[0] == 0
        assert sorted(os.listdir(mnt)) == ["out"]
        with open(os.path.join(out, "summary.json")) as f:
            assert json.load(f)["settings"]["feature_dtype"] == "float32"
        with open(os.path.join(out, "pretrain/train/schema.json")) as f:
            assert "float32" in f.read()
