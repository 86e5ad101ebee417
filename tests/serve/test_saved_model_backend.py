"""The SavedModel backend of kaleido-serve over real SavedModels (small hand-written signatures with known
answers: colour words and mean colours) and a real catalog index written in the index format."""

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient
from PIL import Image

from kaleido_tf.apps.serve.app import create_app
from kaleido_tf.apps.serve.errors import RequestError
from kaleido_tf.apps.serve.saved_model_backend import find_exports, load_backend
from kaleido_tf.index.store import FORMAT, VERSION, write_index

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}
PRODUCTS = [("p_red", "red shirt", "red"), ("p_green", "green skirt", "green"), ("p_blue", "blue coat", "blue")]


def _png(rgb):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), rgb).save(buf, format="PNG")
    return buf.getvalue()


def _unit(v):
    v = np.asarray(v, np.float32) + 0.01
    return v / np.linalg.norm(v)


class ColourModule(tf.Module):
    """embed_text: colour words -> a 3-d unit vector; embed_image_raw / classify_image from the mean colour."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def embed_text(self, text):
        words = [tf.cast(tf.strings.regex_full_match(text, f".*{w}.*"), tf.float32) for w in COLOURS]
        v = tf.stack(words, axis=1) + 0.01  # [B, 3]
        return {"embedding": tf.math.l2_normalize(v, axis=1)}

    def _mean(self, image_bytes):
        def one(data):
            return tf.reduce_mean(tf.cast(tf.io.decode_png(data, channels=3), tf.float32), axis=[0, 1])

        return tf.map_fn(one, image_bytes, fn_output_signature=tf.float32)  # [B, 3]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def embed_image_raw(self, image_bytes):
        return {"embedding": tf.math.l2_normalize(self._mean(image_bytes) / 255.0 + 0.01, axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def classify_image(self, image_bytes):
        m = self._mean(image_bytes)
        p_tops = tf.where(m[:, 0] > m[:, 2], 0.8, 0.3)
        probabilities = tf.stack([p_tops, 1.0 - p_tops], axis=1)  # [B, 2] by class id
        top, ids = tf.math.top_k(probabilities, k=2)  # best first, as the exported classify_image
        names = tf.gather(tf.constant(["tops", "bottoms"]), ids)
        return {"top_class_names": names, "top_probabilities": top}


def _export(module, path, task, names):
    version = os.path.join(path, "1")
    tf.saved_model.save(module, version, signatures={n: getattr(module, n) for n in names})
    os.makedirs(os.path.join(version, "assets.extra"), exist_ok=True)
    with open(os.path.join(version, "assets.extra", "kaleido_export.json"), "w") as f:
        json.dump({"task": task, "signatures": {}}, f)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    os.makedirs(root / "images")
    with open(root / "catalog.jsonl", "w") as f:
        for pid, text, colour in PRODUCTS:
            (root / "images" / f"{pid}.png").write_bytes(_png(COLOURS[colour]))
            f.write(
                json.dumps(
                    {
                        "product_id": pid,
                        "images": [f"images/{pid}.png"],
                        "text": text,
                        "category": "tops",
                        "subcategory": colour,
                        "split": "test",
                    }
                )
                + "\n"
            )
    module = ColourModule()
    _export(module, str(root / "export" / "retrieval"), "retrieval", ["embed_text", "embed_image_raw"])
    _export(module, str(root / "export" / "category"), "catepred", ["classify_image"])
    image_vectors = np.stack([_unit(np.asarray(COLOURS[c]) / 255.0) for _, _, c in PRODUCTS])
    n = len(PRODUCTS)
    arrays = {
        "text_vectors": image_vectors.copy(),
        "image_vectors": image_vectors,
        "image_product": np.arange(n, dtype=np.int32),
        "image_location": np.zeros((n, 2), np.int64),
        "product_ids": np.array([p for p, _, _ in PRODUCTS]),
        "texts": np.array([t for _, t, _ in PRODUCTS]),
        "image_ids": np.array([f"{p}_0" for p, _, _ in PRODUCTS]),
        "text_input_ids": np.zeros((n, 4), np.int32),
        "text_input_mask": np.zeros((n, 4), np.int32),
        "text_segment_ids": np.zeros((n, 4), np.int32),
    }
    write_index(str(root / "index"), arrays, {"format": FORMAT, "version": VERSION, "fingerprint": "x"})
    backend, store = load_backend(str(root / "export"), str(root / "index"), str(root / "catalog.jsonl"))
    return root, backend, store


def test_exports_are_found_and_routed(served):
    root, backend, _ = served
    assert [os.path.basename(os.path.dirname(p)) for p, _ in find_exports(str(root / "export"))] == [
        "category",
        "retrieval",
    ]
    info = backend.describe()
    assert info["signatures"] == ["embed_image_raw", "embed_text"] and info["classes"] == ["category"]
    assert info["index_products"] == 3


def test_text_photo_and_similar_search(served):
    _, backend, _ = served
    assert backend.search_text("a blue jacket", 1)[0][0] == "p_blue"
    assert [p for p, _ in backend.search_text("red", 3)][0] == "p_red"
    assert backend.search_image(_png((200, 30, 30)), 2)[0][0] == "p_red"
    similar = backend.similar("p_green", 5)
    assert len(similar) == 2 and "p_green" not in [p for p, _ in similar]
    assert backend.classify_image(_png((200, 30, 30)))["category"][0] == ("tops", pytest.approx(0.8))
    assert backend.caption_image(_png((1, 2, 3))) is None  # no caption export: no caption, no error


def test_refusals(served):
    root, backend, store = served
    with pytest.raises(RequestError) as bad:
        backend.search_image(b"not a png at all", 3)
    assert bad.value.status == 400
    with pytest.raises(RequestError) as unknown:
        backend.similar("p_none", 3)
    assert unknown.value.status == 404
    no_index, _ = load_backend(str(root / "export" / "retrieval"), None, str(root / "catalog.jsonl"))
    with pytest.raises(RequestError) as missing:
        no_index.search_text("red", 3)
    assert missing.value.status == 501 and "--index_dir" in missing.value.message
    with pytest.raises(FileNotFoundError):
        find_exports(str(root / "nothing"))


def test_through_the_web_layer(served):
    _, backend, store = served
    client = TestClient(create_app(backend, store), raise_server_exceptions=False)
    body = client.get("/api/search", params={"q": "green", "k": 1}).json()
    assert body["results"][0]["product_id"] == "p_green" and body["results"][0]["subcategory"] == "green"
    photo = client.post("/api/photo", files={"file": ("x.png", _png((20, 20, 230)), "image/png")}).json()
    assert photo["results"][0]["product_id"] == "p_blue"
    assert photo["classes"]["category"][0]["name"] == "bottoms"
