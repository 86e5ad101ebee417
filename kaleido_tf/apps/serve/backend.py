"""What the search page asks of the models, as one interface; `saved_model_backend` answers it from exports.

Every method takes plain Python values and returns plain Python values, so the web layer never touches tensors
and can be tested over any backend. Hits are `(product_id, score)` pairs, best first.
"""

import abc


class Backend(abc.ABC):
    """The model side of `kaleido-serve`."""

    @abc.abstractmethod
    def search_text(self, query, top_k):
        """Products for a text query: a list of (product_id, score), best first."""

    @abc.abstractmethod
    def search_image(self, image_bytes, top_k):
        """Products nearest to a photo (JPEG/PNG bytes): a list of (product_id, score), best first."""

    @abc.abstractmethod
    def similar(self, product_id, top_k):
        """Products like a catalog product, itself left out: a list of (product_id, score), best first."""

    @abc.abstractmethod
    def classify_image(self, image_bytes):
        """Predicted classes of a photo: {"category": [(name, probability), ...], "subcategory": [...]},
        each list sorted by probability; a head that is not exported is left out."""

    @abc.abstractmethod
    def caption_image(self, image_bytes):
        """A generated caption of a photo, or None when no captioner is exported."""

    def describe(self):
        """What is loaded, for /api/health."""
        return {}
