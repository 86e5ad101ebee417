"""Class names of a classifier export, from a label map (JSON object class name -> class id)."""

import json
import os


def _check_entries(entries, num_classes, source):
    names = [None] * num_classes
    for name, class_id in entries.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{source}: class name {name!r} must be a non-empty string")
        if isinstance(class_id, bool) or not isinstance(class_id, int):
            raise ValueError(f"{source}: id of class {name!r} must be an integer, got {class_id!r}")
        if not 0 <= class_id < num_classes:
            raise ValueError(
                f"{source}: id {class_id} of class {name!r} is outside [0, {num_classes}) "
                f"(the model has {num_classes} classes)"
            )
        if names[class_id] is not None:
            raise ValueError(f"{source}: classes {names[class_id]!r} and {name!r} share id {class_id}")
        names[class_id] = name
    return names


def class_names(label_map, num_classes):
    """-> list of `num_classes` names, index = class id.

    label_map: None, a {name: id} dict, or the path of a JSON file holding one. Ids the map does not name are
    called "class_<id>". Raises ValueError naming the file (and line, for broken JSON) or entry at fault.
    """
    if label_map is None:
        entries, source = {}, "label_map"
    elif isinstance(label_map, dict):
        entries, source = label_map, "label_map"
    else:
        source = os.fspath(label_map)
        if not os.path.isfile(source):
            raise FileNotFoundError(f"label map not found: {source}")
        with open(source, encoding="utf-8") as f:
            text = f.read()
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
        if not isinstance(entries, dict):
            raise ValueError(f"{source}: expected a JSON object mapping class name to id, got {type(entries).__name__}")
    names = _check_entries(entries, num_classes, source)
    return [name if name is not None else f"class_{i}" for i, name in enumerate(names)]
