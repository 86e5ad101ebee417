"""The JSON API of kaleido-serve over a word-overlap backend: every endpoint and every bad request of the table."""

import io
import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from kaleido_tf.apps.serve.app import MAX_TOP_K, create_app
from kaleido_tf.apps.serve.backend import Backend
from kaleido_tf.apps.serve.catalog_store import CatalogStore

PRODUCTS = [
    ("p1", "red striped cotton t-shirt", "tops", "t-shirts", (200, 30, 30)),
    ("p2", "blue denim skirt", "bottoms", "skirts", (30, 30, 200)),
    ("p3", "red wool sweater", "tops", "sweaters", (190, 40, 40)),
    ("p4", "green striped t-shirt", "tops", "t-shirts", (30, 190, 30)),
]


def _png(color, size=(32, 32)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


class WordBackend(Backend):
    """Scores by shared words (text) and by mean colour distance (photos): simple, exact, known answers."""

    def __init__(self, store):
        self.store = store

    def search_text(self, query, top_k):
        words = set(query.lower().split())
        scored = [(pid, len(words & set(p.text.split())) / len(words)) for pid, p in self.store.products.items()]
        return sorted(scored, key=lambda h: (-h[1], h[0]))[:top_k]

    def _colour(self, data):
        return Image.open(io.BytesIO(data)).convert("RGB").resize((1, 1)).getpixel((0, 0))

    def _by_colour(self, colour, top_k, skip=None):
        def dist(pid):
            with open(self.store.image_file(pid), "rb") as f:
                c = self._colour(f.read())
            return sum((a - b) ** 2 for a, b in zip(c, colour)) ** 0.5

        hits = [(pid, -dist(pid)) for pid in self.store.products if pid != skip]
        return sorted(hits, key=lambda h: -h[1])[:top_k]

    def search_image(self, image_bytes, top_k):
        return self._by_colour(self._colour(image_bytes), top_k)

    def similar(self, product_id, top_k):
        with open(self.store.image_file(product_id), "rb") as f:
            return self._by_colour(self._colour(f.read()), top_k, skip=product_id)

    def classify_image(self, image_bytes):
        r, g, b = self._colour(image_bytes)
        p_tops = 0.9 if r > b else 0.2
        return {"category": [("tops", p_tops), ("bottoms", 1 - p_tops)][:: 1 if p_tops >= 0.5 else -1]}

    def caption_image(self, image_bytes):
        return "a product photo"


@pytest.fixture()
def client(tmp_path):
    (tmp_path / "images").mkdir()
    with open(tmp_path / "catalog.jsonl", "w") as f:
        for pid, text, cat, sub, colour in PRODUCTS:
            (tmp_path / "images" / f"{pid}.png").write_bytes(_png(colour))
            record = {
                "product_id": pid,
                "images": [f"images/{pid}.png"],
                "text": text,
                "category": cat,
                "subcategory": sub,
                "split": "test",
            }
            f.write(json.dumps(record) + "\n")
    (tmp_path / "secret.txt").write_text("not for clients")
    store = CatalogStore.from_file(str(tmp_path / "catalog.jsonl"))
    app = create_app(WordBackend(store), store, max_upload_bytes=20_000, max_pixels=300 * 300)
    return TestClient(app, raise_server_exceptions=False)


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="query"' in page.text and "/static/app.js" in page.text
    assert "http" not in page.text.split("<body>")[1]  # nothing fetched from elsewhere
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/api/health").json()["products"] == 4


def test_text_search_ranks_and_describes_products(client):
    body = client.get("/api/search", params={"q": "striped t-shirt", "k": 2}).json()
    assert [r["product_id"] for r in body["results"]] == ["p1", "p4"]
    first = body["results"][0]
    assert first["category"] == "tops" and first["subcategory"] == "t-shirts" and first["score"] == 1.0
    assert first["image_url"] == "/api/products/p1/image"
    image = client.get(first["image_url"])
    assert image.status_code == 200 and image.content == (_png(PRODUCTS[0][4]))


def test_photo_classifies_captions_and_finds_neighbours(client):
    response = client.post("/api/photo", files={"file": ("x.png", _png((195, 35, 35)), "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["classes"]["category"][0] == {"name": "tops", "probability": 0.9}
    assert body["caption"] == "a product photo"
    assert [r["product_id"] for r in body["results"][:2]] == ["p1", "p3"]


def test_more_like_this_leaves_the_product_out(client):
    body = client.get("/api/similar/p1", params={"k": 3}).json()
    assert body["product"]["product_id"] == "p1"
    assert [r["product_id"] for r in body["results"]][0] == "p3"
    assert "p1" not in [r["product_id"] for r in body["results"]]


def _bomb():
    buf = io.BytesIO()
    Image.new("1", (4000, 4000)).save(buf, format="PNG")  # tiny file, 16 megapixels
    return buf.getvalue()


BAD_REQUESTS = [
    ("empty query", "get", "/api/search", {"params": {"q": "   "}}, 400, "query is empty"),
    ("query too long", "get", "/api/search", {"params": {"q": "a" * 600}}, 400, "over the limit"),
    ("k out of range", "get", "/api/search", {"params": {"q": "red", "k": MAX_TOP_K + 1}}, 400, "out of range"),
    ("k not a number", "get", "/api/search", {"params": {"q": "red", "k": "ten"}}, 422, "k:"),
    ("unknown product", "get", "/api/similar/p999", {}, 404, "no product 'p999'"),
    ("unknown product image", "get", "/api/products/nope/image", {}, 404, "no product 'nope'"),
    ("path traversal", "get", "/api/products/..%2F..%2Fsecret.txt/image", {}, 404, None),
    ("path traversal, static", "get", "/static/..%2F..%2Fsecret.txt", {}, 404, None),
    (
        "not an image",
        "post",
        "/api/photo",
        {"files": {"file": ("a.png", b"hello, not a picture", "image/png")}},
        400,
        "not an image",
    ),
    ("empty upload", "post", "/api/photo", {"files": {"file": ("a.png", b"", "image/png")}}, 400, "empty"),
    (
        "too large",
        "post",
        "/api/photo",
        {"files": {"file": ("a.png", b"\x89PNG" + b"0" * 30_000, "image/png")}},
        413,
        "over the limit",
    ),
    ("too many pixels", "post", "/api/photo", {"files": {"file": ("a.png", _bomb(), "image/png")}}, 413, "pixels"),
    (
        "too small",
        "post",
        "/api/photo",
        {"files": {"file": ("a.png", _png((1, 2, 3), (3, 40)), "image/png")}},
        400,
        "at least 5x5",
    ),
    ("no file field", "post", "/api/photo", {"data": {"other": "x"}}, 400, "no file"),
    ("unknown address", "get", "/api/nothing", {}, 404, "no such address"),
]


@pytest.mark.parametrize("name,method,url,kwargs,status,words", BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS])
def test_bad_requests_get_a_4xx_json_error(client, name, method, url, kwargs, status, words):
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} or "detail" not in body
    if words:
        assert words in body["error"]
    assert "Traceback" not in response.text and "not for clients" not in response.text


def test_backend_failure_is_a_one_line_500(client, monkeypatch):
    def boom(*args):
        raise RuntimeError("index file vanished")

    monkeypatch.setattr(WordBackend, "search_text", boom)
    response = client.get("/api/search", params={"q": "red"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal error (RuntimeError): the server log has the details"}
