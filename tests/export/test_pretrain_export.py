"""SavedModel export of the pretraining model converted from golden/tiny: layout, signatures, parity, errors."""

import os
import shutil
import sys

import numpy as np
import pytest
import tensorflow as tf

import kaleido_tf
from kaleido_tf.export import exporter
from kaleido_tf.export.exporter import ExportError, export_saved_model, resolve_version
from kaleido_tf.utils.vocab import DEFAULT_VOCAB, read_vocab
from tests.export.conftest import (
    TEXTS,
    TINY_CHECKPOINT,
    VOCAB,
    expected_text_inputs,
    export_info,
    golden_features,
    load_golden,
    run_subprocess,
    saved_model_cli,
    signature_inputs,
    write_vocab,
)

TEXT_OPS = ["CaseFoldUTF8", "NormalizeUTF8", "RegexSplitWithOffsets", "WordpieceTokenizeWithOffsets"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, pretrain_export):
    """golden/tiny converted, loaded and exported twice: version 1 with the text signatures (the shared export of
    tests/export/conftest.py, copied), 2 without."""
    root = tmp_path_factory.mktemp("export")
    model = kaleido_tf.from_pretrained(pretrain_export["converted"])
    export_dir = root / "serving"
    shutil.copytree(pretrain_export["path"], export_dir / "1")
    plain_path = export_saved_model(model, export_dir, text_signatures=False)
    golden = load_golden()
    text_path = str(export_dir / "1")
    return {
        "root": root,
        "export_dir": str(export_dir),
        "text": text_path,
        "plain": plain_path,
        "model": model,
        "golden": golden,
        "features": golden_features(golden),
        "loaded": tf.saved_model.load(text_path),
    }


def test_versioned_layout(exported, pretrain_export):
    export_dir = exported["export_dir"]
    assert pretrain_export["path"] == os.path.join(pretrain_export["export_dir"], "1")  # the first version
    assert sorted(os.listdir(pretrain_export["export_dir"])) == ["1"]
    assert exported["plain"] == os.path.join(export_dir, "2")  # the next one
    assert sorted(os.listdir(export_dir)) == ["1", "2"]  # no temporary directory left behind
    for name in (
        "saved_model.pb",
        "variables",
        os.path.join("assets", "vocab.txt"),
        os.path.join("assets.extra", "kaleido_export.json"),
    ):
        assert os.path.exists(os.path.join(exported["text"], name)), name
    with open(os.path.join(exported["text"], "assets", "vocab.txt"), encoding="utf-8") as f:
        assert f.read().split("\n")[:-1] == VOCAB

    info = export_info(exported["text"])
    assert info["version"] == 1 and info["text_length"] == 16 and info["default_signature"] == "itm_score"
    assert sorted(info["signatures"]) == ["embed", "itm_score", "itm_score_text", "tokenize"]
    assert info["signatures"]["itm_score"]["inputs"]["img_feature_convert_jigsaw"]["shape"] == [-1, 4 * 48]
    assert info["signatures"]["itm_score"]["inputs"]["img_loc_position_camouflage"]["shape"] == [-1, 45]
    assert info["custom_ops"] == TEXT_OPS  # the classic BERT tokenizer ops only
    plain = export_info(exported["plain"])
    assert sorted(plain["signatures"]) == ["embed", "itm_score"] and plain["custom_ops"] == []


def test_golden_itm_logits_through_saved_model(exported):
    signature = exported["loaded"].signatures["itm_score"]
    out = signature(**signature_inputs(signature, exported["features"]))
    golden_logits = exported["golden"]["predict/nsp_logits"]
    np.testing.assert_allclose(out["logits"], golden_logits, atol=1e-5, rtol=0)
    probability = np.exp(golden_logits[:, 1]) / np.exp(golden_logits).sum(axis=1)
    np.testing.assert_allclose(out["match_probability"], probability, atol=1e-6, rtol=0)
    default = exported["loaded"].signatures["serving_default"]
    np.testing.assert_allclose(
        default(**signature_inputs(default, exported["features"]))["logits"], golden_logits, atol=1e-5, rtol=0
    )


def test_embed_equals_keras_predict(exported):
    signature = exported["loaded"].signatures["embed"]
    out = signature(**signature_inputs(signature, exported["features"]))
    keras_out = exported["model"](exported["features"], training=False, mode="predict")
    assert out["sequence_output"].shape == (3, 16 + 55, 32)
    for key in ("pooled_output", "sequence_output"):
        np.testing.assert_allclose(out[key], keras_out[key], atol=1e-5, rtol=0, err_msg=key)


def _patches(features, rows):
    return {k: v[rows] for k, v in features.items() if k.startswith("img_")}


# One fresh process with only TensorFlow answers the three tests below: saved_model_cli (its main, as the command
# runs it) shows the text export and runs itm_score of the plain one while no text ops are registered (stock
# TensorFlow); then tensorflow_text registers them and the text export is loaded and called as a client would.
FRESH_SCRIPT = """
import contextlib, io, sys
import numpy as np
import tensorflow as tf
from tensorflow.python.tools import saved_model_cli

export, plain, cli_inputs, out_path = sys.argv[1:5]


def cli(*args):
    out = io.StringIO()
    sys.argv = ["saved_model_cli", *args]
    with contextlib.redirect_stdout(out):
        try:
            saved_model_cli.main()
        except SystemExit as e:
            assert not e.code, f"saved_model_cli {' '.join(args)}: exit {e.code}"
    return out.getvalue()


with open("shown.txt", "w") as f:
    f.write(cli("show", "--dir", export, "--all"))
cli("run", "--dir", plain, "--tag_set", "serve", "--signature_def", "itm_score", "--inputs", cli_inputs,
    "--outdir", "cli_run/itm_score")
assert "tensorflow_text" not in sys.modules, "the text ops were registered before saved_model_cli ran"

import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

loaded = tf.saved_model.load(export)

def call(name, arrays):
    signature = loaded.signatures[name]
    specs = signature.structured_input_signature[1]
    return signature(**{k: tf.constant(np.asarray(arrays[k]), spec.dtype) for k, spec in specs.items()})

request = dict(np.load("request.npz"))
patches = dict(np.load("patches.npz"))
texts = np.array(TEXTS_REPR, dtype=object)
itm = call("itm_score", request)
embed = call("embed", request)
tokens = call("tokenize", {"text": texts})
from_text = call("itm_score_text", dict(patches, text=texts))
from_ids = call("itm_score", dict(patches, **{k: v.numpy() for k, v in tokens.items()}))

# The way TF Serving loads it: a TF1 session, signatures looked up by tensor name.
with tf.Graph().as_default(), tf.compat.v1.Session() as session:
    meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], export)
    signature = meta_graph.signature_def["itm_score_text"]
    arrays = dict(patches, text=texts)
    feed = {info.name: arrays[k] for k, info in signature.inputs.items()}
    session_out = session.run({k: v.name for k, v in signature.outputs.items()}, feed)
assert not any(name.startswith("kaleido_tf") for name in sys.modules), "kaleido_tf was imported"
np.savez(out_path, itm_logits=itm["logits"], itm_probability=itm["match_probability"],
         pooled_output=embed["pooled_output"], sequence_output=embed["sequence_output"],
         **{"token_" + k: v for k, v in tokens.items()},
         text_logits=from_text["logits"], text_probability=from_text["match_probability"],
         ids_logits=from_ids["logits"], ids_probability=from_ids["match_probability"],
         session_text_logits=session_out["logits"])
""".replace("TEXTS_REPR", repr(TEXTS))

FRESH_ROWS = [0, 1, 2, 0]


@pytest.fixture(scope="module")
def fresh(exported):
    """What the one fresh process answers: {"root" (its directory), "shown" (saved_model_cli show --all of the
    text export), "got" (the client's outputs)}; saved_model_cli run wrote root/cli_run/itm_score."""
    root = exported["root"] / "fresh"
    (root / "cli_run").mkdir(parents=True)
    np.savez(root / "request.npz", **exported["features"])
    np.savez(root / "patches.npz", **_patches(exported["features"], FRESH_ROWS))
    signature = tf.saved_model.load(exported["plain"]).signatures["itm_score"]
    arrays = signature_inputs(signature, exported["features"])
    for name, value in arrays.items():
        np.save(root / "cli_run" / f"{name}.npy", value)
    cli_inputs = ";".join(f"{name}={root / 'cli_run' / name}.npy" for name in sorted(arrays))
    (root / "client.py").write_text(FRESH_SCRIPT)
    run_subprocess(
        [sys.executable, "client.py", exported["text"], exported["plain"], cli_inputs, str(root / "fresh.npz")],
        cwd=root,
    )
    return {"root": root, "shown": (root / "shown.txt").read_text(), "got": dict(np.load(root / "fresh.npz"))}


def test_fresh_process_tensorflow_only(exported, fresh):
    """Loads the export where only tensorflow and tensorflow_text are imported; text equals ids."""
    rows = FRESH_ROWS
    got = fresh["got"]

    np.testing.assert_allclose(got["itm_logits"], exported["golden"]["predict/nsp_logits"], atol=1e-5, rtol=0)
    keras_out = exported["model"](exported["features"], training=False, mode="predict")
    np.testing.assert_allclose(got["pooled_output"], keras_out["pooled_output"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(got["sequence_output"], keras_out["sequence_output"], atol=1e-5, rtol=0)

    expected = expected_text_inputs()
    for key in ("input_ids", "input_mask", "segment_ids"):
        np.testing.assert_array_equal(got["token_" + key], expected[key], err_msg=key)
    np.testing.assert_allclose(got["text_logits"], got["ids_logits"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(got["text_probability"], got["ids_probability"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(got["session_text_logits"], got["text_logits"], atol=1e-6, rtol=0)
    keras_text = exported["model"](
        dict(_patches(exported["features"], rows), **expected), training=False, mode="predict"
    )
    np.testing.assert_allclose(got["text_logits"], keras_text["nsp_logits"], atol=1e-5, rtol=0)
    # Different texts, different scores: the text reaches the model.
    assert np.abs(got["text_logits"][0] - got["text_logits"][3]).max() > 1e-6


def test_saved_model_cli_show_lists_signatures(fresh):
    # The command's script runs saved_model_cli's main, which the fresh process runs.
    with open(saved_model_cli(), encoding="utf-8") as f:
        assert "from tensorflow.python.tools.saved_model_cli import main" in f.read()
    text = fresh["shown"]
    for signature in ("itm_score", "itm_score_text", "embed", "tokenize", "serving_default"):
        assert f"signature_def['{signature}']" in text, signature
    itm = text.split("signature_def['itm_score']:")[1].split("signature_def[")[0]
    for name in (
        "input_ids",
        "input_mask",
        "segment_ids",
        "img_feature_convert_rotation",
        "img_loc_position_blank_mask",
    ):
        assert f"inputs['{name}']" in itm, name
    assert "outputs['match_probability']" in itm and "outputs['logits']" in itm
    itm_text = text.split("signature_def['itm_score_text']:")[1].split("signature_def[")[0]
    assert "inputs['text']" in itm_text and "DT_STRING" in itm_text and "inputs['input_ids']" not in itm_text


def test_saved_model_cli_run_equals_keras(exported, fresh):
    """`saved_model_cli run` (stock TensorFlow, no text ops) on the export without text signatures."""
    out = fresh["root"] / "cli_run" / "itm_score"
    features = exported["features"]
    keras_out = exported["model"](features, training=False, mode="predict")
    logits = np.load(out / "logits.npy")
    np.testing.assert_allclose(logits, keras_out["nsp_logits"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(logits, exported["golden"]["predict/nsp_logits"], atol=1e-5, rtol=0)
    probability = np.load(out / "match_probability.npy")
    np.testing.assert_allclose(probability, tf.nn.softmax(keras_out["nsp_logits"])[:, 1], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "name,change,expected",
    [
        (
            "itm_score",
            ("img_feature_convert_jigsaw", lambda v: v[:, :100]),
            "input img_feature_convert_jigsaw: expected width 192 (4 patches x 48 features), found] [100]",
        ),
        (
            "itm_score",
            ("img_loc_position_camouflage", lambda v: v[:, :35]),
            "input img_loc_position_camouflage: expected width 45 (9 patches x 5 position numbers), found] [35]",
        ),
        (
            "itm_score",
            ("input_ids", lambda v: np.concatenate([v, v[:, :1]], axis=1)),
            "input input_ids: expected width 16 (16 text positions), found] [17]",
        ),
        (
            "embed",
            ("img_feature_convert_blank_mask", lambda v: v[:2]),
            "input img_feature_convert_blank_mask: batch size] [2] [differs from the batch size of input_ids] [3]",
        ),
        ("itm_score", ("input_ids", lambda v: v + 120), "input input_ids: ids must lie in [0, 120), found min] [120]"),
        (
            "itm_score_text",
            ("img_feature_convert_rotation", lambda v: v[:, :47]),
            "input img_feature_convert_rotation: expected width 48 (1 patches x 48 features), found] [47]",
        ),
        (
            "itm_score_text",
            ("img_loc_position_rotation", lambda v: v[:1]),
            "input img_loc_position_rotation: batch size] [1] [differs from the batch size of text] [3]",
        ),
    ],
)
def test_bad_inputs_name_the_input(exported, name, change, expected):
    features = dict(exported["features"], text=np.array(["red dress", "blue shirt", ""], dtype=object))
    key, edit = change
    features[key] = edit(features[key])
    signature = exported["loaded"].signatures[name]
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        signature(**signature_inputs(signature, features))
    assert expected in str(info.value)


def test_existing_version_is_kept_and_failed_export_leaves_nothing(exported, monkeypatch):
    export_dir, model = exported["export_dir"], exported["model"]
    with pytest.raises(ExportError, match="version 1 already exists"):
        export_saved_model(model, export_dir, version=1, text_signatures=False)
    with open(os.path.join(exported["text"], "saved_model.pb"), "rb") as f:
        before = f.read()

    def fail(directory, info):
        assert os.path.isfile(os.path.join(directory, "saved_model.pb"))  # the SavedModel was already written
        raise RuntimeError("disk full")

    monkeypatch.setattr(exporter, "_write_export_info", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(model, export_dir, text_signatures=False)  # would be version 3
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(model, export_dir, version=1, overwrite=True, text_signatures=False)
    assert sorted(os.listdir(export_dir)) == ["1", "2"]
    with open(os.path.join(exported["text"], "saved_model.pb"), "rb") as f:
        assert f.read() == before


def test_resolve_version(tmp_path):
    assert resolve_version(tmp_path / "absent") == 1
    for name in ("3", "10", ".11.abc.tmp", "latest"):
        (tmp_path / name).mkdir()
    (tmp_path / "12").write_text("a file, not a version")
    assert resolve_version(tmp_path) == 11
    assert resolve_version(tmp_path, "7") == 7 and resolve_version(tmp_path, 0) == 0
    for bad in (-1, "v2", True, 1.5):
        with pytest.raises(ExportError, match="non-negative integer"):
            resolve_version(tmp_path, bad)


def test_vocab_checks(tmp_path):
    path = tmp_path / "vocab.txt"
    cases = [
        ("[PAD]\n[UNK]\n[CLS]\nred\n", "special token(s) [SEP] missing"),
        ("[PAD]\n[UNK]\n[CLS]\n[SEP]\nred\nred\n", ":6: token 'red' repeats line 5"),
        ("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n", ":1: token '[PAD]\\r' has leading or trailing whitespace"),
        ("[PAD]\n\n[UNK]\n[CLS]\n[SEP]\n", ":2: empty token"),
    ]
    for content, message in cases:
        path.write_bytes(content.encode("utf-8"))
        with pytest.raises(ValueError) as info:
            read_vocab(path)
        assert str(path) in str(info.value) and message in str(info.value)
    write_vocab(path)
    assert read_vocab(path)["##less"] == 19
    with pytest.raises(ValueError, match="24 tokens, but the model's word table has only vocab_size=20"):
        read_vocab(path, vocab_size=20)


def test_packaged_vocab_too_big_for_tiny_model_leaves_text_out(exported):
    model = exported["model"]
    assert exporter._text_encoder(model, None, True, 16, True) is None  # 30522 tokens > vocab_size 120
    with pytest.raises(ValueError, match="30522 tokens, but the model's word table has only vocab_size=120"):
        exporter._text_encoder(model, DEFAULT_VOCAB, True, 16, True)
    with pytest.raises(ValueError, match="label_map applies to classifier models"):
        export_saved_model(model, exported["root"] / "unused", label_map={"a": 0})
    assert not os.path.exists(exported["root"] / "unused")


def test_image_mask_input_and_longer_text():
    """A model that reads image_mask gets that input; max_text_length sets the text width of the signatures."""
    from kaleido_tf.export.serving_module import KaleidoServingModule

    model = kaleido_tf.from_pretrained(TINY_CHECKPOINT, use_image_mask=True)
    with pytest.raises(ValueError, match=r"text length must be in \[1, max_position_embeddings=64\], got 65"):
        KaleidoServingModule(model, text_length=65)
    module = KaleidoServingModule(model, text_length=20)
    names = [field.name for field in module.input_fields]
    assert names[:3] == ["input_ids", "input_mask", "segment_ids"] and names[-1] == "image_mask"

    features = golden_features(load_golden())
    pad = np.zeros((3, 4), np.int64)
    features.update(
        {key: np.concatenate([features[key], pad], axis=1) for key in ("input_ids", "input_mask", "segment_ids")}
    )  # [3, 20]
    features["image_mask"] = np.ones((3, 55), np.int64)
    features["image_mask"][:, 30:] = 0
    request = {field.name: features[field.name].astype(field.dtype) for field in module.input_fields}
    out = module.concrete_function("itm_score")(request)
    keras_logits = model(features, training=False, mode="predict")["nsp_logits"]
    np.testing.assert_allclose(out["logits"], keras_logits, atol=1e-5, rtol=0)
    all_patches = model(dict(features, image_mask=np.ones((3, 55), np.int64)), training=False, mode="predict")
    assert np.abs(out["logits"] - all_patches["nsp_logits"]).max() > 1e-6  # the mask reaches the model
