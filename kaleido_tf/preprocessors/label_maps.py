"""Category and subcategory label maps: JSON objects name -> id, ids in sorted name order.

Written to `label_maps/category.json` and `label_maps/subcategory.json`. The ids are the positions
of the names in sorted order, so the same set of names always gives the same ids. To keep the ids of
an earlier run when the catalog changes, pass that run's label_maps directory (`--label_maps DIR`):
its ids are reused and a name it lacks is an error.
"""

import json
import os

from kaleido_tf.utils.io import atomic_write_text
from kaleido_tf.utils.label_map import read_label_map

FILES = {"category": "category.json", "subcategory": "subcategory.json"}


class LabelMaps:
    """The two maps; `ids(category, subcategory)` gives the label ids of a product."""

    def __init__(self, category, subcategory):
        self.category = dict(category)
        self.subcategory = dict(subcategory)

    @classmethod
    def from_names(cls, categories, subcategories):
        return cls(
            {n: i for i, n in enumerate(sorted(set(categories)))},
            {n: i for i, n in enumerate(sorted(set(subcategories)))},
        )

    @classmethod
    def load(cls, directory):
        return cls(
            read_label_map(os.path.join(directory, FILES["category"])),
            read_label_map(os.path.join(directory, FILES["subcategory"])),
        )

    def save(self, directory):
        for key, mapping in (("category", self.category), ("subcategory", self.subcategory)):
            text = json.dumps(
                dict(sorted(mapping.items(), key=lambda kv: (kv[1], kv[0]))), indent=2, ensure_ascii=False
            )
            atomic_write_text(os.path.join(directory, FILES[key]), text + "\n")

    def check_covers(self, categories, subcategories, source="catalog"):
        for kind, names, mapping in (
            ("category", categories, self.category),
            ("subcategory", subcategories, self.subcategory),
        ):
            missing = sorted(set(names) - set(mapping))
            if missing:
                raise ValueError(
                    f"{source}: {kind} name(s) {missing[:10]} are not in the given label map ({len(missing)} missing)"
                )

    def ids(self, category, subcategory):
        return self.category[category], self.subcategory[subcategory]
