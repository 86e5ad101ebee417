"""The web application of `kaleido-serve`: one page and a JSON API over a Backend and a CatalogStore.

| method and path | answer |
|---|---|
| GET /                                   | the search page |
| GET /api/health                         | what is loaded, product count |
| GET /api/search?q=TEXT&k=N              | products for a text query |
| POST /api/photo (multipart `file`)      | category/subcategory probabilities, caption, nearest products |
| GET /api/similar/{product_id}?k=N       | "more like this" |
| GET /api/products/{product_id}          | one product |
| GET /api/products/{product_id}/image    | its image file (only files the catalog lists) |

Every refused request is a 4xx answer `{"error": "..."}`; an unexpected failure is a 500 with a one-line
message and never a traceback.
"""

import logging
import os

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from kaleido_tf.apps.serve import upload
from kaleido_tf.apps.serve.errors import RequestError

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_QUERY_CHARS = 512
MAX_TOP_K = 100
DEFAULT_TOP_K = 12
_LOG = logging.getLogger("kaleido_tf.serve")


def _error(status, message):
    return JSONResponse(status_code=status, content={"error": message})


def _top_k(k):
    if k is None:
        return DEFAULT_TOP_K
    if not 1 <= k <= MAX_TOP_K:
        raise RequestError(400, f"k={k} is out of range: ask for 1 to {MAX_TOP_K} results")
    return k


def create_app(backend, catalog, max_upload_bytes=upload.DEFAULT_MAX_BYTES, max_pixels=upload.DEFAULT_MAX_PIXELS):
    """A FastAPI application serving `catalog` (a CatalogStore) through `backend` (a Backend)."""
    app = FastAPI(title="kaleido_tf catalog search", docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def cards(hits):
        out = []
        for product_id, score in hits:
            product = catalog.get(product_id)
            card = product.to_json() if product is not None else {"product_id": product_id}
            card["score"] = round(float(score), 6)
            out.append(card)
        return out

    def product_or_404(product_id):
        product = catalog.get(product_id)
        if product is None:
            raise RequestError(404, f"no product {product_id!r} in the catalog")
        return product

    @app.exception_handler(RequestError)
    async def _request_error(request, exc):
        return _error(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc):
        message = exc.detail if isinstance(exc.detail, str) else "bad request"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such address: {request.url.path}"
        return _error(exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", "invalid"))
        return _error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):
        _LOG.exception("request %s failed", request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}): the server log has the details")

    @app.get("/", response_class=HTMLResponse)
    async def page():
        with open(os.path.join(STATIC_DIR, "index.html"), encoding="utf-8") as f:
            return HTMLResponse(f.read())

    @app.get("/api/health")
    async def health():
        return {"status": "ok", "products": len(catalog), "backend": backend.describe()}

    @app.get("/api/search")
    def search(q: str = "", k: int | None = None):
        query = q.strip()
        if not query:
            raise RequestError(400, "the query is empty: type a few words, e.g. 'red striped t-shirt'")
        if len(query) > MAX_QUERY_CHARS:
            raise RequestError(400, f"the query has {len(query)} characters, over the limit of {MAX_QUERY_CHARS}")
        return {"query": query, "results": cards(backend.search_text(query, _top_k(k)))}

    @app.post("/api/photo")
    async def photo(request: Request, k: int | None = None):
        top_k = _top_k(k)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_upload_bytes + 64 * 1024:
            raise RequestError(413, f"the upload is {length} bytes, over the limit of {max_upload_bytes}")
        try:
            form = await request.form(max_files=1, max_fields=4)
        except Exception as exc:  # multipart parse errors of any kind are the client's
            raise RequestError(400, f"the request is not a multipart form with a `file` field ({exc})") from None
        item = form.get("file")
        if item is None or isinstance(item, str):
            raise RequestError(400, "no file: send the photo as the multipart field `file`")
        data = await item.read(max_upload_bytes + 1)
        upload.check_image(data, max_bytes=max_upload_bytes, max_pixels=max_pixels)
        return {
            "classes": {
                head: [{"name": name, "probability": round(float(p), 6)} for name, p in ranked]
                for head, ranked in backend.classify_image(data).items()
            },
            "caption": backend.caption_image(data),
            "results": cards(backend.search_image(data, top_k)),
        }

    @app.get("/api/similar/{product_id}")
    def similar(product_id: str, k: int | None = None):
        product = product_or_404(product_id)
        return {"product": product.to_json(), "results": cards(backend.similar(product_id, _top_k(k)))}

    @app.get("/api/products/{product_id}")
    def product(product_id: str):
        return product_or_404(product_id).to_json()

    @app.get("/api/products/{product_id}/image")
    def product_image(product_id: str):
        product_or_404(product_id)
        path = catalog.image_file(product_id)
        if path is None:
            raise RequestError(404, f"product {product_id!r} has no image file")
        return FileResponse(path)

    return app
