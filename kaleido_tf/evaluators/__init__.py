"""Evaluators: retrieval scoring (and its result-file format), classification and pretraining metrics.

The retrieval and classification parts need only numpy; the pretraining metrics import TensorFlow and
Keras when first used, so that `kaleido-eval-retrieval` starts quickly.
"""

from kaleido_tf.evaluators.classification import accuracy, classification_report, confusion_counts, macro_f1
from kaleido_tf.evaluators.retrieval import (
    METRIC_KEYS,
    RANK_KS,
    format_retrieval_report,
    roc_auc,
    score_retrieval,
    score_retrieval_arrays,
)
from kaleido_tf.evaluators.retrieval_format import (
    RETRIEVAL_TYPES,
    RetrievalRecord,
    RetrievalResults,
    RetrievalResultWriter,
    read_retrieval_results,
)

_LAZY = {"PretrainMetrics", "pretrain_metric_values", "PRETRAIN_TASKS"}

__all__ = [
    "METRIC_KEYS",
    "PRETRAIN_TASKS",
    "PretrainMetrics",
    "RANK_KS",
    "RETRIEVAL_TYPES",
    "RetrievalRecord",
    "RetrievalResultWriter",
    "RetrievalResults",
    "accuracy",
    "classification_report",
    "confusion_counts",
    "format_retrieval_report",
    "macro_f1",
    "pretrain_metric_values",
    "read_retrieval_results",
    "roc_auc",
    "score_retrieval",
    "score_retrieval_arrays",
]


def __getattr__(name):
    if name in _LAZY:
        # local import: TensorFlow loads on first use of a metric (the package stays light)
        from kaleido_tf.evaluators import pretrain  # noqa: PLC0415

        return getattr(pretrain, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
