"""Label maps: the one reader of a JSON object class name -> class id, and its checks.

The preprocessing writes them (`label_maps/category.json`, `label_maps/subcategory.json`) and reads them back
to keep the ids of an earlier run; finetuning reads one for its class names and count; a classifier export
reads one for the class names it serves. All go through `read_label_map` (a file) or `check_label_map` (a
dict), so the same map is refused or accepted alike everywhere: names are non-empty strings, ids integers
>= 0, and no two names share an id. Every error names the file (and for broken JSON the line and column).
"""

import os

from kaleido_tf.utils.io import read_json_file


def check_label_map(entries, source="label_map"):
    """Checks a {class name: id} dict; returns it. `source` names it in the errors."""
    if not isinstance(entries, dict):
        raise ValueError(f"{source}: expected a JSON object mapping class name to id, got {type(entries).__name__}")
    names = {}
    for name, class_id in entries.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{source}: class name {name!r} must be a non-empty string")
        if isinstance(class_id, bool) or not isinstance(class_id, int):
            raise ValueError(f"{source}: id of class {name!r} must be an integer, got {class_id!r}")
        if class_id < 0:
            raise ValueError(f"{source}: id {class_id} of class {name!r} must be >= 0")
        if class_id in names:
            raise ValueError(f"{source}: classes {names[class_id]!r} and {name!r} share id {class_id}")
        names[class_id] = name
    return entries


def read_label_map(path):
    """Reads and checks the label map file `path`; returns {class name: id}."""
    path = os.fspath(path)
    return check_label_map(read_json_file(path, "label map"), source=path)


def names_by_id(entries, num_classes=None, source="label_map"):
    """[class name by id] of a checked map, "class_<id>" for the ids it does not name.

    num_classes: the number of classes (every id must lie below it); None: the largest id + 1.
    """
    if num_classes is None:
        num_classes = max(entries.values(), default=-1) + 1
    names = [f"class_{i}" for i in range(num_classes)]
    for name, class_id in entries.items():
        if not 0 <= class_id < num_classes:
            raise ValueError(
                f"{source}: id {class_id} of class {name!r} is outside [0, {num_classes}) "
                f"(the model has {num_classes} classes)"
            )
        names[class_id] = name
    return names
