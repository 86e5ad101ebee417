"""Classification metrics on hand-computed examples."""

import numpy as np
import pytest

from kaleido_tf.evaluators.classification import accuracy, classification_report, confusion_counts, macro_f1

# 8 examples, classes 0..2 (and class 3 named but never seen).
LABELS = [0, 0, 0, 1, 1, 2, 2, 2]
PREDS = [0, 0, 1, 1, 2, 2, 2, 0]
# class 0: tp 2, fp 1 (last), fn 1 -> P 2/3, R 2/3, F1 2/3
# class 1: tp 1, fp 1, fn 1         -> P 1/2, R 1/2, F1 1/2
# class 2: tp 2, fp 1, fn 1         -> P 2/3, R 2/3, F1 2/3
F1 = {0: 2 / 3, 1: 1 / 2, 2: 2 / 3}


def test_accuracy_and_confusion():
    assert accuracy(LABELS, PREDS) == pytest.approx(5 / 8)
    expected = np.array([[2, 1, 0], [0, 1, 1], [1, 0, 2]])
    np.testing.assert_array_equal(confusion_counts(LABELS, PREDS), expected)
    padded = confusion_counts(LABELS, PREDS, num_classes=4)
    assert padded.shape == (4, 4) and padded[3].sum() == 0 and padded[:3, :3].tolist() == expected.tolist()


def test_macro_f1_by_hand():
    assert macro_f1(LABELS, PREDS) == pytest.approx(sum(F1.values()) / 3)
    # With a fixed class list, an absent class counts with F1 = 0.
    assert macro_f1(LABELS, PREDS, num_classes=4) == pytest.approx(sum(F1.values()) / 4)


def test_scores_and_column_labels_are_accepted():
    scores = np.eye(3)[PREDS] * 5.0 - 1.0  # [8, 3], argmax = PREDS
    assert accuracy(np.array(LABELS)[:, None], scores) == pytest.approx(5 / 8)
    assert macro_f1(LABELS, scores) == pytest.approx(macro_f1(LABELS, PREDS))


def test_report_dict_and_table():
    names = ["dress", "shirt", "skirt", "boots"]
    report, text = classification_report(LABELS, PREDS, class_names=names)
    assert list(report["per_class"]) == names
    shirt = report["per_class"]["shirt"]
    assert shirt == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert report["per_class"]["boots"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["per_class"]["dress"]["support"] == 3
    assert report["accuracy"] == pytest.approx(5 / 8)
    assert report["micro_f1"] == pytest.approx(5 / 8)
    assert report["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3 + 0) / 4)
    assert report["macro_precision"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 4)
    assert report["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 1 / 2 + 3 * 2 / 3) / 8)
    assert report["support"] == 8
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert rows["shirt"] == ["0.5000", "0.5000", "0.5000", "2"]
    assert rows["boots"] == ["0.0000", "0.0000", "0.0000", "0"]
    assert rows["accuracy"] == ["0.6250", "8"]
    assert rows["macro"][1:] == [f"{(2 / 3 + 1 / 2 + 2 / 3) / 4:.4f}"] * 2 + [f"{report['macro_f1']:.4f}", "8"]


def test_report_without_names_uses_present_classes():
    report, _ = classification_report([5, 5, 9], [5, 7, 9])
    assert list(report["per_class"]) == ["5", "7", "9"]
    # class 5: P 1, R 1/2, F1 2/3; class 7: F1 0; class 9: F1 1
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0 + 1) / 3)


@pytest.mark.parametrize(
    "labels, preds, kwargs, message",
    [
        ([0, 1], [0], {}, "differ in length"),
        ([], [], {}, "empty"),
        ([0, -1], [0, 0], {}, "non-negative"),
        ([0.5, 1], [0, 1], {}, "integer class ids"),
        (["a", "b"], [0, 1], {}, "integer class ids"),
        ([0, 4], [0, 1], {"class_names": ["a", "b", "c"]}, "labels hold class id 4"),
        ([0, 1], [0, 1], {"class_names": ["a", "a"]}, "duplicates"),
    ],
)
def test_bad_input(labels, preds, kwargs, message):
    with pytest.raises(ValueError, match=message):
        classification_report(labels, preds, **kwargs)
