"""Classification metrics for the category / subcategory finetuning tasks (numpy only).

Class ids are non-negative integers. When the number of classes is known (`num_classes`, or the
length of `class_names`) every class in ``range(num_classes)`` takes part in the macro and weighted
averages, including classes that never occur (their F1 is 0), as the finetuning evaluator does with
its fixed label list. Without it, the classes are those occurring in the labels or the predictions.

A precision or recall whose denominator is zero is 0; F1 is ``2 tp / (2 tp + fp + fn)`` and 0 when
that denominator is zero.
"""

import numpy as np


def _class_ids(values, name):
    """[N] int64 class ids from [N] or [N, 1] ids, or from [N, C] scores (argmax)."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] > 1:
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{name}: scores of shape {array.shape} must be numeric")
        array = np.argmax(array, axis=1)
    elif array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must have shape [N], [N, 1] or [N, C], got {array.shape}")
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype == bool:
        array = array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError(f"{name} must hold integer class ids, found non-integral values")
    elif not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class ids, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.min() < 0:
        raise ValueError(f"{name} must hold non-negative class ids, found {int(array.min())}")
    return array


def _pair(labels, preds):
    labels = _class_ids(labels, "labels")
    preds = _class_ids(preds, "preds")
    if labels.shape != preds.shape:
        raise ValueError(f"labels ({labels.shape[0]}) and preds ({preds.shape[0]}) differ in length")
    if labels.size == 0:
        raise ValueError("labels and preds are empty")
    return labels, preds


def _classes(labels, preds, num_classes):
    if num_classes is None:
        return np.union1d(labels, preds)
    if num_classes <= 0:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    largest = int(max(labels.max(), preds.max()))
    if largest >= num_classes:
        which = "labels" if labels.max() >= num_classes else "preds"
        raise ValueError(f"{which} hold class id {largest}, outside range(num_classes={num_classes})")
    return np.arange(num_classes)


def accuracy(labels, preds):
    """Share of `preds` equal to `labels` ([N] ids, [N, 1] ids or [N, C] scores)."""
    labels, preds = _pair(labels, preds)
    return float(np.mean(labels == preds))


def confusion_counts(labels, preds, num_classes=None):
    """[C, C] int64 counts: row = true class, column = predicted class, C = num_classes or max id + 1."""
    labels, preds = _pair(labels, preds)
    size = int(max(labels.max(), preds.max())) + 1 if num_classes is None else int(num_classes)
    _classes(labels, preds, size)  # range check
    counts = np.zeros([size, size], dtype=np.int64)
    np.add.at(counts, (labels, preds), 1)
    return counts


def _per_class(labels, preds, classes):
    # `classes` is sorted and holds every id in labels and preds: map ids to positions 0..C-1.
    size = classes.shape[0]
    label_pos = np.searchsorted(classes, labels)  # [N]
    pred_pos = np.searchsorted(classes, preds)  # [N]
    hit = labels == preds
    tp = np.bincount(label_pos[hit], minlength=size).astype(np.float64)  # [C]
    support = np.bincount(label_pos, minlength=size).astype(np.float64)  # [C] true count
    predicted = np.bincount(pred_pos, minlength=size).astype(np.float64)  # [C] predicted count
    fp = predicted - tp
    fn = support - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = 2 * tp + fp + fn
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
    return precision, recall, f1, support, predicted, tp


def macro_f1(labels, preds, num_classes=None):
    """Unweighted mean of the per-class F1 (see the module docstring for the class set)."""
    labels, preds = _pair(labels, preds)
    classes = _classes(labels, preds, num_classes)
    _, _, f1, _, _, _ = _per_class(labels, preds, classes)
    return float(f1.mean())


def classification_report(labels, preds, class_names=None, num_classes=None, digits=4):
    """Per-class precision / recall / F1 / support and their averages.

    Args:
      labels: [N] or [N, 1] true class ids.
      preds: [N] or [N, 1] predicted class ids, or [N, C] scores (argmax taken).
      class_names: optional names of classes 0..len-1; sets the class count.
      num_classes: optional class count when no names are given.
      digits: decimals in the text table.

    Returns:
      (report, text): `report` is a dict with accuracy, macro_precision, macro_recall, macro_f1,
      micro_f1, weighted_precision, weighted_recall, weighted_f1 (weighted by support), support and
      per_class (name -> precision, recall, f1, support);
      `text` is the same as an aligned table.
    """
    labels, preds = _pair(labels, preds)
    if class_names is not None:
        class_names = [str(n) for n in class_names]
        if len(set(class_names)) != len(class_names):
            raise ValueError("class_names contain duplicates")
        if num_classes is not None and num_classes != len(class_names):
            raise ValueError(f"num_classes={num_classes} but {len(class_names)} class_names")
        num_classes = len(class_names)
    classes = _classes(labels, preds, num_classes)
    precision, recall, f1, support, _, tp = _per_class(labels, preds, classes)
    names = [class_names[c] if class_names is not None else str(int(c)) for c in classes]
    total = float(labels.shape[0])
    micro = float(tp.sum() / total)  # every label and prediction lies inside `classes`
    report = {
        "accuracy": float(np.mean(labels == preds)),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "micro_f1": micro,
        "weighted_precision": float((precision * support).sum() / total),
        "weighted_recall": float((recall * support).sum() / total),
        "weighted_f1": float((f1 * support).sum() / total),
        "support": int(total),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support)
        },
    }
    width = max([len(n) for n in names] + [len("weighted avg")])
    head = f"{'':>{width}} {'precision':>10} {'recall':>10} {'f1-score':>10} {'support':>10}"
    rows = [head, ""]
    fmt = f"{{:>{width}}} {{:>10.{digits}f}} {{:>10.{digits}f}} {{:>10.{digits}f}} {{:>10d}}"
    for name, values in report["per_class"].items():
        rows.append(fmt.format(name, values["precision"], values["recall"], values["f1"], values["support"]))
    rows.append("")
    rows.append(f"{'accuracy':>{width}} {'':>10} {'':>10} {report['accuracy']:>10.{digits}f} {report['support']:>10d}")
    rows.append(
        fmt.format(
            "macro avg", report["macro_precision"], report["macro_recall"], report["macro_f1"], report["support"]
        )
    )
    rows.append(
        fmt.format(
            "weighted avg",
            report["weighted_precision"],
            report["weighted_recall"],
            report["weighted_f1"],
            report["support"],
        )
    )
    return report, "\n".join(rows)
