"""The products the page shows: text, category, subcategory and the one image file of each.

Image files are looked up by product id only: the path comes from the catalog file, never from a request, so
nothing a client sends can name a file of its own choosing.
"""

import dataclasses
import os

from kaleido_tf.preprocessors.catalog import CatalogReader


@dataclasses.dataclass(frozen=True)
class Product:
    product_id: str
    text: str
    category: str
    subcategory: str
    split: object
    image_path: object  # the product's first image, resolved; None when the catalog names none

    def to_json(self):
        return {
            "product_id": self.product_id,
            "text": self.text,
            "category": self.category,
            "subcategory": self.subcategory,
            "split": self.split,
            "image_url": f"/api/products/{self.product_id}/image" if self.image_path else None,
        }


class CatalogStore:
    """Products by id, read once from a catalog file (JSONL or CSV, as `kaleido-preprocess --catalog` takes)."""

    def __init__(self, products):
        self.products = {p.product_id: p for p in products}

    @classmethod
    def from_file(cls, path, image_root=None):
        reader = CatalogReader(path, image_root=image_root)
        try:
            products = [
                Product(
                    product_id=r.product_id,
                    text=r.text,
                    category=r.category,
                    subcategory=r.subcategory,
                    split=r.split,
                    image_path=r.images[0] if r.images else None,
                )
                for r in reader
            ]
        finally:
            reader.close()
        if not products:
            raise ValueError(f"{path}: the catalog holds no products")
        return cls(products)

    def __len__(self):
        return len(self.products)

    def __contains__(self, product_id):
        return product_id in self.products

    def get(self, product_id):
        return self.products.get(product_id)

    def image_file(self, product_id):
        """The image file of a product in the catalog, or None (unknown product, no image, file gone)."""
        product = self.products.get(product_id)
        if product is None or not product.image_path or not os.path.isfile(product.image_path):
            return None
        return product.image_path
