"""`kaleido-serve`: a catalog search page and its JSON API over exported SavedModels and a catalog index.

`app.create_app` builds the web application (FastAPI on uvicorn) from a `backend.Backend` (the model side) and
a `catalog_store.CatalogStore` (what the page shows of each product); `cli.run` is the command.
"""
