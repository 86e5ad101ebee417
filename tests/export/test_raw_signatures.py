"""The raw-input signatures (image bytes and text in) against the offline path: kaleido-preprocess writes the
features of a tiny catalog (pixels extractor), the exports read its settings from the preprocessing output,
and each raw signature must answer as the feature signature does on the offline features of the same images.

Tolerances: boxes and positions are identical. The crops are PIL-exact for one-axis resizes; resizes along
both axes (these 64 x 64 images cut into 16 x 16 crops) differ by at most one grey level on a small share of
pixels (tests/preprocessors/test_graph_image.py). Through the pixels extractor one such pixel that crosses a
colour-histogram bin moves a feature by about 2 / (16 * 16) * |projection entry| (~0.06), so ~5e-4; the
largest measured difference is 2.3e-3 (a few pixels of one crop), FEATURE_ATOL allows 1e-2, and fields stored
as float16 differ by one float16 step more. PROB_ATOL bounds what that does to the tiny model's outputs.
"""

import base64
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kaleido_tf.datasets.tfrecord_reader import make_tfrecord_dataset
from kaleido_tf.export.image_inputs import ImagePathSettings, RawImageFeatures
from kaleido_tf.export.serving_inputs import patch_fields
from tests.export.conftest import TINY_CHECKPOINT, run_subprocess, saved_model_cli, signature_inputs

FEATURE_ATOL = 1e-2  # see the module docstring
PROB_ATOL = 1e-4


@pytest.fixture(scope="module")
def prep(tiny_catalog):
    """The preprocessed tiny catalog (tests/export/conftest.py): its directory, the finetune examples (by image
    id) and the image bytes."""
    out = tiny_catalog["dir"]
    batches = list(make_tfrecord_dataset(os.path.join(out, "finetune/train"), batch_size=64, training=False))
    examples = {k: np.concatenate([b[k].numpy() for b in batches]) for k in batches[0]}
    ids = [i.decode() for i in examples["prod_img_id"].reshape(-1)]
    images = {}
    with open(tiny_catalog["catalog"], encoding="utf-8") as catalog:
        for line in catalog:
            product = json.loads(line)
            with open(os.path.join(str(tiny_catalog["root"]), product["images"][0]), "rb") as f:
                images[f"{product['product_id']}_0"] = f.read()
    blobs = [images[i] for i in ids]
    return {"root": tiny_catalog["root"], "dir": out, "examples": examples, "ids": ids, "blobs": blobs}


def _features(prep, model):
    fields = patch_fields(model.config)
    return {f.name: tf.constant(prep["examples"][f.name].astype(np.float32)) for f in fields}


@pytest.fixture(scope="module")
def classifier(raw_export):
    export = raw_export("classifier")
    return export["model"], export["path"], export["loaded"]


@pytest.fixture(scope="module")
def retrieval(raw_export):
    export = raw_export("retrieval")
    return export["model"], export["index"], export["path"], export["loaded"]


def test_settings_come_from_the_preprocessing_output(prep):
    settings = ImagePathSettings.from_preprocess_dir(prep["dir"])
    assert (settings.feature_extractor, settings.crop_size, settings.patch_feature_size) == ("pixels", 16, 48)
    assert (settings.min_image_size, settings.feature_dtype) == (16, "float16")
    with pytest.raises(FileNotFoundError, match="no summary.json"):
        ImagePathSettings.from_preprocess_dir(str(prep["root"]))


def test_in_graph_features_equal_the_shards(prep, classifier):
    model = classifier[0]
    images = RawImageFeatures(ImagePathSettings.from_preprocess_dir(prep["dir"]), patch_fields(model.config))
    got = images(tf.constant(prep["blobs"]))
    for name, want in _features(prep, model).items():
        want = want.numpy()
        if "position" in name:
            np.testing.assert_array_equal(got[name].numpy(), want, err_msg=name)
        else:
            np.testing.assert_allclose(got[name].numpy(), want, rtol=0, atol=FEATURE_ATOL, err_msg=name)


def test_classify_image_agrees_with_the_offline_classifier(prep, classifier):
    model, _, loaded = classifier
    n = len(prep["blobs"])
    text = loaded.signatures["tokenize"](text=tf.constant([""] * n))
    offline = model(dict(_features(prep, model), **text), training=False)["logits"].numpy()
    want = tf.nn.softmax(offline).numpy()
    got = loaded.signatures["classify_image"](image_bytes=tf.constant(prep["blobs"]))
    np.testing.assert_array_equal(got["class_id"].numpy(), np.argmax(want, axis=-1))
    np.testing.assert_allclose(got["probabilities"].numpy(), want, rtol=0, atol=PROB_ATOL)
    order = np.argsort(-want, axis=-1, kind="stable")[:, :3]
    np.testing.assert_array_equal(got["top_class_ids"].numpy(), order)
    np.testing.assert_allclose(got["top_probabilities"].numpy(), np.take_along_axis(want, order, 1), atol=PROB_ATOL)
    assert got["top_class_names"].numpy()[0, 0].decode() == f"class_{order[0, 0]}"
    assert got["class_name"].numpy()[0].decode() == f"class_{order[0, 0]}"

    texts = ["red dress", "blue silk shirt"] * (n // 2) + ["a"] * (n % 2)
    raw = loaded.signatures["classify_raw"](text=tf.constant(texts), image_bytes=tf.constant(prep["blobs"]))
    feature_sig = loaded.signatures["classify_text"]
    offline = feature_sig(text=tf.constant(texts), **_features(prep, model))
    np.testing.assert_allclose(raw["probabilities"].numpy(), offline["probabilities"].numpy(), atol=PROB_ATOL)
    np.testing.assert_array_equal(raw["class_id"].numpy(), offline["class_id"].numpy())


def test_itm_score_raw_agrees_with_itm_score_on_offline_features(prep, raw_export):
    model, loaded = raw_export("pretrain")["model"], raw_export("pretrain")["loaded"]
    texts = [t.decode() for t in prep["examples"]["prod_desc"].reshape(-1)]
    got = loaded.signatures["itm_score_raw"](text=tf.constant(texts), image_bytes=tf.constant(prep["blobs"]))
    want = loaded.signatures["itm_score_text"](text=tf.constant(texts), **_features(prep, model))
    np.testing.assert_allclose(got["match_probability"].numpy(), want["match_probability"].numpy(), atol=PROB_ATOL)
    np.testing.assert_allclose(got["logits"].numpy(), want["logits"].numpy(), atol=1e-3)
    # and the text ids the shards hold give the same as the in-graph WordPiece of the same texts
    itm = loaded.signatures["itm_score"]
    ids = itm(**signature_inputs(itm, {k: np.asarray(v) for k, v in dict(prep["examples"]).items()}))
    np.testing.assert_allclose(ids["match_probability"].numpy(), want["match_probability"].numpy(), atol=1e-5)


def test_retrieval_raw_signatures_and_catalog_search(prep, retrieval):
    model, index, _, loaded = retrieval
    order = [index.product_row(i.rsplit("_", 1)[0]) for i in prep["ids"]]
    got = loaded.signatures["embed_image_raw"](image_bytes=tf.constant(prep["blobs"]))["embedding"].numpy()
    want = np.asarray(index.image_vectors)[[index.first_image(r) for r in order]]
    np.testing.assert_allclose(got, want, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), 1.0, atol=1e-5)

    queries = ["red t-shirts", "blue jeans with a striped collar"]
    search = loaded.signatures["search_text"](text=tf.constant(queries))
    embedded = loaded.signatures["embed_text"](text=tf.constant(queries))["embedding"].numpy()
    rows, scores = index.search_images(embedded, 3)
    np.testing.assert_array_equal(search["product_rows"].numpy(), rows)
    np.testing.assert_allclose(search["scores"].numpy(), scores, atol=1e-5)
    assert search["product_ids"].numpy().astype(str).tolist() == index.product_ids[rows].tolist()
    assert search["texts"].numpy()[0, 0].decode() == index.texts[rows[0, 0]]

    found = loaded.signatures["search_image"](image_bytes=tf.constant(prep["blobs"]))
    rows, scores = index.search_texts(got, 3)
    np.testing.assert_array_equal(found["product_rows"].numpy(), rows)
    np.testing.assert_allclose(found["scores"].numpy(), scores, atol=1e-5)

    texts = [index.texts[r] for r in order]
    itm = loaded.signatures["itm_score_raw"](text=tf.constant(texts), image_bytes=tf.constant(prep["blobs"]))
    text_ids = {k: tf.constant(prep["examples"][k]) for k in ("input_ids", "input_mask", "segment_ids")}
    want = model.itm_logits(dict(_features(prep, model), **text_ids)).numpy()
    np.testing.assert_allclose(itm["logits"].numpy(), want, atol=1e-3)


@pytest.fixture(scope="module")
def captioner(raw_export):
    export = raw_export("caption")
    return export["model"], export["path"], export["loaded"]


def test_caption_image_equals_caption_on_offline_features(prep, captioner):
    model, _, loaded = captioner
    got = loaded.signatures["caption_image"](image_bytes=tf.constant(prep["blobs"]))
    want = loaded.signatures["caption"](**_features(prep, model))
    np.testing.assert_array_equal(got["caption"].numpy(), want["caption"].numpy())
    np.testing.assert_array_equal(got["token_ids"].numpy(), want["token_ids"].numpy())


def test_saved_model_cli_lists_the_raw_signatures(classifier, retrieval, served):
    # The command's script runs saved_model_cli's main, which the one child process of `served` runs per export.
    with open(saved_model_cli(), encoding="utf-8") as f:
        assert "from tensorflow.python.tools.saved_model_cli import main" in f.read()
    for path, names in (
        (classifier[1], ["classify_image", "classify_raw", "classify", "classify_text"]),
        (retrieval[2], ["embed_image_raw", "itm_score_raw", "search_text", "search_image", "embed_image"]),
    ):
        shown = served["shown"][path]
        for name in names:
            assert f"signature_def['{name}']" in shown, name
        assert "image_bytes" in shown


# --------------------------------------------------------------------------- bad input
def _refused(signature, match, **inputs):
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        signature(**{k: tf.constant(v) for k, v in inputs.items()})


def _png(shape):
    import io

    buf = io.BytesIO()
    Image.new("RGB", shape, (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


def test_bad_images_are_refused_with_a_message(prep, classifier):
    sig = classifier[2].signatures["classify_image"]
    good = prep["blobs"][0]
    _refused(sig, "image_bytes: 0 bytes", image_bytes=[b""])
    _refused(sig, "image_bytes: not a JPEG or PNG", image_bytes=[b"GIF89a this is not a product photo"])
    _refused(sig, "image_bytes: truncated", image_bytes=[good[: len(good) // 2]])
    bomb = good[:16] + (60000).to_bytes(4, "big") * 2 + good[24:]
    _refused(sig, "more than max_pixels", image_bytes=[bomb])
    _refused(sig, "image_bytes: too small", image_bytes=[_png((40, 8))])
    _refused(sig, "image_bytes: 0 bytes", image_bytes=[good, b""])  # one bad image in a batch


def test_bad_text_is_refused_with_a_message(prep, retrieval):
    loaded = retrieval[3]
    blob = prep["blobs"][0]
    _refused(loaded.signatures["itm_score_raw"], "input text: empty text at rows", text=["  "], image_bytes=[blob])
    bad = b"red dress" + b"\xff\xfe"
    _refused(loaded.signatures["itm_score_raw"], "input text: not valid UTF-8", text=[bad], image_bytes=[blob])
    _refused(loaded.signatures["search_text"], "input text: empty text", text=["red", ""])
    _refused(loaded.signatures["search_text"], "not valid UTF-8", text=[b"\xc3\x28"])
    _refused(loaded.signatures["itm_score_raw"], "batch size", text=["red", "blue"], image_bytes=[blob])


def test_non_finite_features_are_refused(prep, classifier, retrieval):
    model, _, loaded = classifier
    features = {k: v.numpy() for k, v in _features(prep, model).items()}
    features["img_feature_convert_jigsaw"][0, 3] = np.nan
    text = loaded.signatures["tokenize"](text=tf.constant(["a"] * len(prep["blobs"])))
    inputs = dict(features, **{k: v.numpy() for k, v in text.items()})
    classify = loaded.signatures["classify"]
    _refused(classify, "input img_feature_convert_jigsaw: non-finite", **signature_inputs(classify, inputs))
    features["img_feature_convert_jigsaw"][0, 3] = 0.0
    features["img_loc_position_rotation"][1, 0] = np.inf
    _refused(
        loaded.signatures["classify_text"],
        "input img_loc_position_rotation: non-finite",
        text=["a"] * len(prep["blobs"]),
        **features,
    )
    itm = retrieval[3].signatures["itm_score"]
    inputs["img_feature_convert_blank_mask"] = np.full_like(features["img_feature_convert_blank_mask"], np.nan)
    inputs["img_loc_position_rotation"] = np.zeros_like(features["img_loc_position_rotation"])
    _refused(itm, "input img_feature_convert_blank_mask: non-finite", **signature_inputs(itm, inputs))


# --------------------------------------------------------------------------- TF Serving REST, as documented
DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "serving.md")
TOP_K_KEYS = {"top_class_names", "top_class_ids", "top_probabilities", "product_ids", "scores", "product_rows", "texts"}

# One fresh process with only TensorFlow: first `saved_model_cli show --all` of each export in show.json, as the
# command runs it (its main, before the text ops are registered); then decodes requests as TF Serving's REST layer
# does (row format, {"b64": ...} -> bytes), runs them through the loaded SavedModel and encodes the response as it
# does (string outputs as UTF-8, "_bytes" keys as b64).
REST_SCRIPT = """
import base64, contextlib, io, json, sys
import numpy as np
import tensorflow as tf
from tensorflow.python.tools import saved_model_cli

shown = {}
for directory in json.load(open("show.json")):
    out = io.StringIO()
    sys.argv = ["saved_model_cli", "show", "--dir", directory, "--all"]
    with contextlib.redirect_stdout(out):
        try:
            saved_model_cli.main()
        except SystemExit as e:
            assert not e.code, f"saved_model_cli show --dir {directory} --all: exit {e.code}"
    shown[directory] = out.getvalue()
json.dump(shown, open("shown.json", "w"))

import tensorflow_text  # noqa: F401

def decode(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value.encode("utf-8") if isinstance(value, str) else value

def encode(key, value):
    if isinstance(value, np.ndarray):
        return [encode(key, v) for v in value]
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()} if key.endswith("_bytes") else value.decode("utf-8")
    return value.item() if hasattr(value, "item") else value

jobs = json.load(open("jobs.json"))
loaded, answers = {}, []
for job in jobs:
    model = loaded.setdefault(job["path"], tf.saved_model.load(job["path"]))
    request = job["request"]
    instances = request["instances"]
    columns = {key: tf.constant([decode(row[key]) for row in instances]) for key in instances[0]}
    result = {k: v.numpy() for k, v in model.signatures[request["signature_name"]](**columns).items()}
    answers.append({"predictions": [{k: encode(k, v[i]) for k, v in result.items()} for i in range(len(instances))]})
assert not [m for m in sys.modules if m.startswith("kaleido_tf")], "kaleido_tf was imported"
json.dump(answers, open("answers.json", "w"))
"""


def documented_rest():
    """{signature: (request, response)} from the marked JSON blocks of docs/serving.md."""
    import re

    with open(DOCS, encoding="utf-8") as f:
        text = f.read()
    blocks = re.findall(r"<!-- rest: (\w+) (request|response) -->\s*```json\n(.*?)```", text, re.S)
    out = {}
    for name, part, body in blocks:
        out.setdefault(name, {})[part] = json.loads(body)
    return {name: (parts["request"], parts["response"]) for name, parts in out.items()}


def _depth(value):
    return 1 + _depth(value[0]) if isinstance(value, list) else 0


def _jpeg(png_bytes):
    import io

    buf = io.BytesIO()
    Image.open(io.BytesIO(png_bytes)).convert("RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="module")
def served(prep, classifier, retrieval, captioner, tmp_path_factory):
    """The documented REST requests (their images made real) and what one fresh process answers:
    {"docs", "jobs", "answers", "shown" (saved_model_cli show --all of the classifier and retrieval exports)}."""
    docs = documented_rest()
    paths = {"classify_image": classifier[1], "classify_raw": classifier[1], "caption_image": captioner[1]}
    paths.update(dict.fromkeys(("itm_score_raw", "embed_image_raw", "search_text", "search_image"), retrieval[2]))
    assert set(docs) == set(paths), "docs/serving.md documents another set of raw signatures"
    images = [_jpeg(prep["blobs"][0]), prep["blobs"][1]]  # a JPEG file's bytes, then a PNG's

    def with_images(request):
        request = json.loads(json.dumps(request))
        for i, row in enumerate(request["instances"]):
            for key, value in row.items():
                if isinstance(value, dict) and "b64" in value:
                    row[key] = {"b64": base64.b64encode(images[i % 2]).decode()}
        assert request["signature_name"] in paths
        return request

    jobs = [{"path": paths[name], "request": with_images(request)} for name, (request, _) in sorted(docs.items())]
    work = tmp_path_factory.mktemp("rest")
    (work / "jobs.json").write_text(json.dumps(jobs))
    (work / "show.json").write_text(json.dumps([classifier[1], retrieval[2]]))
    (work / "rest.py").write_text(REST_SCRIPT)
    run_subprocess([sys.executable, "rest.py"], cwd=str(work))
    return {
        "docs": docs,
        "jobs": jobs,
        "answers": json.loads((work / "answers.json").read_text()),
        "shown": json.loads((work / "shown.json").read_text()),
    }


def test_documented_rest_requests_answer_as_documented(classifier, retrieval, captioner, served):
    docs, jobs, answers = served["docs"], served["jobs"], served["answers"]
    loaded = {classifier[1]: classifier[2], retrieval[2]: retrieval[3], captioner[1]: captioner[2]}
    for job, answer in zip(jobs, answers):
        name = job["request"]["signature_name"]
        documented = docs[name][1]["predictions"]
        assert len(answer["predictions"]) == len(job["request"]["instances"]) == len(documented), name
        # the same answer as the exporting process gives for the same bytes and strings
        instances = job["request"]["instances"]
        columns = {
            key: tf.constant(
                [base64.b64decode(r[key]["b64"]) if isinstance(r[key], dict) else r[key] for r in instances]
            )
            for key in instances[0]
        }
        want = loaded[job["path"]].signatures[name](**columns)
        for got, doc, i in zip(answer["predictions"], documented, range(len(documented))):
            assert set(got) == set(doc), f"{name}: keys {sorted(got)} != documented {sorted(doc)}"
            for key, value in got.items():
                assert _depth(value) == _depth(doc[key]), f"{name}.{key}: rank differs from the docs"
                if key in TOP_K_KEYS:
                    assert len(value) == len(doc[key]) == 3, f"{name}.{key}: not top_k=3 long"
                expected = np.asarray(want[key].numpy()[i])
                if expected.dtype.kind in "OS":
                    decoded = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(expected)
                    assert np.asarray(value, dtype=object).tolist() == decoded.tolist(), f"{name}.{key}"
                else:
                    np.testing.assert_allclose(np.asarray(value), expected, rtol=0, atol=1e-6, err_msg=f"{name}.{key}")
                    assert isinstance(np.asarray(value).tolist(), type(np.asarray(doc[key]).tolist()))
    # the class names a client reads are the export's
    assert answers[[j["request"]["signature_name"] for j in jobs].index("classify_image")]["predictions"][0][
        "class_name"
    ].startswith("class_")


def test_cli_raw_flags_fail_in_one_line(tmp_path):
    import contextlib
    import io

    from kaleido_tf.export import cli

    for args, message in (
        (["--index_dir", "ix"], "--index_dir needs --preprocess_dir"),
        (["--preprocess_dir", str(tmp_path)], "no summary.json"),
        (["--top_k", "0"], "--top_k must be >= 1"),
    ):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["--model", TINY_CHECKPOINT, "--export_dir", str(tmp_path / "e"), *args])
        lines = err.getvalue().strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0], err.getvalue()
