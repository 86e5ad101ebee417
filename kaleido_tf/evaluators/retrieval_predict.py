"""Retrieval evaluation end to end: score every (query, candidate) pair with the ITM head, write the original
result file, and compute Accuracy, Rank@K and AUC from it."""

from kaleido_tf.evaluators.retrieval import score_retrieval
from kaleido_tf.evaluators.retrieval_format import RetrievalResultWriter, read_retrieval_results

PASSTHROUGH = ("text_prod_id", "image_prod_id", "prod_img_id", "nx_sent_labels")


def predict_retrieval(trainer, dataset_fn, kind, result_path, progress=True):
    """Runs `trainer.predict` (predict semantics) over a retrieval dataset; returns the metrics dict.

    The result file is written atomically in the original format, so `kaleido-eval-retrieval` rescores it.
    """
    from tqdm.auto import tqdm

    if kind not in ("img2txt", "txt2img"):
        raise ValueError(f"retrieval type must be img2txt or txt2img, got {kind!r}")
    with RetrievalResultWriter(result_path) as writer:
        for out in tqdm(
            trainer.predict(dataset_fn, passthrough=PASSTHROUGH),
            desc=f"retrieval {kind}",
            unit="batch",
            disable=not progress,
        ):
            missing = [k for k in PASSTHROUGH if k not in out]
            if missing:
                raise ValueError(f"the retrieval input lacks {missing}: use the retrieval schema")
            writer.write_batch(
                out["text_prod_id"], out["image_prod_id"], out["prod_img_id"], out["nx_sent_labels"], out["nsp_logits"]
            )
    return score_retrieval(read_retrieval_results(result_path), type=kind)
