"""tools/serving_compat.py (make serving-compat): record a tiny export's answers, check them, catch changes.

The check runs here under the exporting TensorFlow (CI runs it under TF Serving's, `make serving-compat`);
these tests show that it compares what it says it compares and that its check mode needs nothing of kaleido_tf.
"""

import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.export.conftest import TEXTS, golden_features, load_golden

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "serving_compat.py")


def _load_tool():
    spec = importlib.util.spec_from_file_location("serving_compat", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compat = _load_tool()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, pretrain_export):
    """golden/tiny exported as a demo would (DEMO/export/pretrain/1: tests/export/conftest.py's shared export,
    copied), its answers recorded."""
    demo = tmp_path_factory.mktemp("demo")
    shutil.copytree(pretrain_export["path"], demo / "export" / "pretrain" / "1")
    pool = dict(golden_features(load_golden()))
    pool["text"] = np.array(TEXTS[:3], dtype=object)  # one text per golden example
    cases = str(demo / compat.CASES)
    manifest = compat.record(str(demo), cases, pool=pool, progress=lambda line: None)
    return {"demo": str(demo), "cases": cases, "manifest": manifest, "loads": {}}


def _check(recorded, cases=None, **kwargs):
    """compat.check of the demo; its export is loaded by the first check and that load serves the later ones
    (check loads each export once per call; a SavedModel loaded again answers the same)."""
    loads, load_export = recorded["loads"], compat.load_export

    def load_once(export_dir, relative):
        if (export_dir, relative) not in loads:
            loads[export_dir, relative] = load_export(export_dir, relative)
        return loads[export_dir, relative]

    lines = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compat, "load_export", load_once)
        agreeing, total = compat.check(recorded["demo"], cases or recorded["cases"], out=lines.append, **kwargs)
    return agreeing, total, lines


def test_record_lists_every_signature_and_check_agrees(recorded):
    signatures = sorted(case["signature"] for case in recorded["manifest"]["cases"])
    assert signatures == ["embed", "itm_score", "itm_score_text", "tokenize"]
    agreeing, total, lines = _check(recorded)
    assert (agreeing, total) == (4, 4)
    assert [line.split()[:3] for line in lines[:-1]] == [["ok", "pretrain/1", s + ":"] for s in signatures]
    assert lines[-1].startswith("serving-compat: 4/4 signatures agree")


def test_the_recording_round_trips_strings_and_arrays(recorded):
    _, cases = compat.read_cases(recorded["cases"])
    inputs, outputs = cases[("pretrain/1", "itm_score_text")]
    assert [t.decode("utf-8") for t in inputs["text"]] == TEXTS[:3]
    assert "input_ids" not in inputs  # the signature takes the raw text
    features = golden_features(load_golden())
    np.testing.assert_array_equal(inputs["img_feature_convert_jigsaw"], features["img_feature_convert_jigsaw"])
    assert outputs["match_probability"].shape == (3,)


def _tampered(recorded, tmp_path, signature, output, change):
    """A copy of the recording with one recorded output changed by `change`."""
    data = dict(np.load(recorded["cases"], allow_pickle=False))
    key = f"pretrain/1|{signature}|out|{output}"
    data[key] = change(data[key])
    manifest = compat.read_cases(recorded["cases"])[0]
    del data[compat.MANIFEST_KEY]
    path = str(tmp_path / "tampered.npz")
    compat.write_cases(path, manifest, data)
    return path


def test_a_float_output_beyond_the_tolerance_is_a_mismatch(recorded, tmp_path):
    path = _tampered(recorded, tmp_path, "itm_score", "match_probability", lambda v: v + np.float32(1e-3))
    agreeing, total, lines = _check(recorded, path)
    assert (agreeing, total) == (3, 4)
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL pretrain/1 itm_score: match_probability: max |diff| 0.001")
    assert "MISMATCH" in lines[-1]
    # Within a looser stated tolerance the same answers agree.
    assert _check(recorded, path, atol=2e-3)[:2] == (4, 4)


def test_ids_must_be_identical(recorded, tmp_path):
    def shift(ids):
        ids = ids.copy()
        ids[0, 1] += 1
        return ids

    path = _tampered(recorded, tmp_path, "tokenize", "input_ids", shift)
    agreeing, _, lines = _check(recorded, path, atol=1.0)  # no float tolerance makes ids agree
    assert agreeing == 3
    assert any(line.startswith("FAIL pretrain/1 tokenize: input_ids: values differ") for line in lines)


def test_an_export_not_recorded_is_a_mismatch(recorded, tmp_path):
    manifest = dict(recorded["manifest"], exports=[])
    data = dict(np.load(recorded["cases"], allow_pickle=False))
    del data[compat.MANIFEST_KEY]
    path = str(tmp_path / "none.npz")
    compat.write_cases(path, dict(manifest, cases=[]), data)
    agreeing, total, lines = _check(recorded, path)
    assert (agreeing, total) == (0, 1)
    assert lines[0] == "FAIL pretrain/1: not recorded"


def _run(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTHONPATH", None)
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_check_mode_runs_without_kaleido_tf(recorded):
    # kaleido_tf made unimportable: the check needs tensorflow, tensorflow_text and numpy only.
    code = (
        "import runpy, sys; sys.modules['kaleido_tf'] = None; "
        f"sys.argv = ['serving_compat.py', 'check', '--demo_dir', {recorded['demo']!r}]; "
        f"runpy.run_path({SCRIPT!r}, run_name='__main__')"
    )
    result = _run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "serving-compat: 4/4 signatures agree" in result.stdout


def test_a_missing_recording_is_one_line_and_exit_2(tmp_path):
    result = _run([sys.executable, SCRIPT, "check", "--demo_dir", str(tmp_path)])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no recording" in lines[0] and "record" in lines[0]
