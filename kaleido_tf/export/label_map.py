"""Class names of a classifier export, from a label map (JSON object class name -> class id)."""

import os

from kaleido_tf.utils.label_map import check_label_map, names_by_id, read_label_map


def class_names(label_map, num_classes):
    """-> list of `num_classes` names, index = class id.

    label_map: None, a {name: id} dict, or the path of a JSON file holding one (read by
    `utils.label_map.read_label_map`). Ids the map does not name are called "class_<id>". Raises ValueError
    naming the file (and line, for broken JSON) or entry at fault.
    """
    if label_map is None:
        entries, source = {}, "label_map"
    elif isinstance(label_map, dict):
        entries, source = check_label_map(label_map, "label_map"), "label_map"
    else:
        source = os.fspath(label_map)
        entries = read_label_map(source)
    return names_by_id(entries, num_classes, source)
