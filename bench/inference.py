"""Benchmark: image-text matching (ITM) scoring, ours against keras-hub's BertBackbone of the same size, in one
process, interleaved.

    python bench/inference.py                          # base and small, float32, batch 8
    python bench/inference.py --configs base --batch_size 101

Variants (each scores `batch_size` (text, image) pairs per call; all tf.function, float32):
    ours_full    the full predict-mode call (all seven heads), nsp_logits taken from it (the former predict step)
    ours         KaleidoBERTPretrainModel.itm_logits: the ITM head alone, the last block at position 0 only
                 (what PretrainTask.predict_step runs now)
    ours_cached  evaluators.retrieval_fast.ITMScorer on embeddings computed once per text and image: the per-pair
                 part of a retrieval run whose texts and images recur as candidates (the one-off embedding cost
                 is reported beside it)
    peer         keras_hub.models.BertBackbone (sequence T + 55) forward + a 2-way dense on the pooled output

Reported: median seconds per call, pairs/s, model GFLOP/s (the nominal full forward of a pair, see
common.itm_flops, for every variant alike), share of the matmul peak, speed relative to the peer round by round.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

ALL_VARIANTS = ("ours_full", "ours", "ours_cached", "peer")


def our_calls(config, batch_size, variants, seed=0):
    import numpy as np
    import tensorflow as tf

    from kaleido_tf.evaluators.retrieval_fast import ITMScorer
    from kaleido_tf.model_zoo import KaleidoBERTPretrainModel

    model = KaleidoBERTPretrainModel(config)
    model.build()
    feats = common.pretrain_features(config, batch_size, seed)
    inputs = {
        k: tf.constant(v)
        for k, v in feats.items()
        if k.startswith(("input_", "segment_ids", "img_feature_convert", "img_loc_position"))
    }
    calls, notes = {}, {}
    if "ours_full" in variants:
        full = tf.function(lambda f: model(f, training=False, mode="predict")["nsp_logits"])
        calls["ours_full"] = lambda: full(inputs).numpy()
    if "ours" in variants:
        itm = tf.function(lambda f: model.itm_logits(f)["nsp_logits"])
        calls["ours"] = lambda: itm(inputs).numpy()
    if "ours_cached" in variants:
        scorer = ITMScorer(model, batch_size=batch_size)
        texts = {k: v for k, v in feats.items() if k in ("input_ids", "input_mask", "segment_ids")}
        images = {k: v for k, v in feats.items() if k.startswith(("img_feature_convert", "img_loc_position"))}
        text_emb, image_emb = scorer.embed_texts(texts), scorer.embed_images(images)
        index = np.arange(batch_size, dtype=np.int32)
        calls["ours_cached"] = lambda: scorer.score_embedded(text_emb, image_emb, index, index[::-1])
        # One-off cost of embedding the distinct texts and images, per item.
        embed_times = common.interleaved(
            {
                "text": lambda: scorer.embed_texts(texts)[0].numpy(),
                "image": lambda: scorer.embed_images(images)[0].numpy(),
            },
            3,
            1,
            progress=False,
        )
        notes = {f"embed_{k}_ms_per_item": 1000 * common.median(v) / batch_size for k, v in embed_times.items()}
        # The cached path gives the logits of the full call (float rounding aside).
        reference = model(inputs, training=False, mode="predict")["nsp_logits"].numpy()
        cached = scorer.score_embedded(text_emb, image_emb, index, index)
        notes["max_abs_diff_vs_full_call"] = float(np.max(np.abs(cached - reference)))
    for fn in calls.values():
        fn()
    return calls, notes


def peer_call(config, batch_size, seed=0):
    import tensorflow as tf

    seq_len = config.text_seq_len + common.num_patches(config)
    backbone, head = common.build_peer(config, seq_len, mlm=False)
    x = {
        k: tf.constant(v)
        for k, v in common.peer_inputs(config, batch_size, seq_len, seed).items()
        if k in ("token_ids", "segment_ids", "padding_mask")
    }
    fn = tf.function(lambda x: head(backbone(x, training=False)["pooled_output"]))
    fn(x)
    return lambda: fn(x).numpy()


def run_config(name, args):
    config = common.make_config(name)
    b = args.batch_size
    calls, notes = our_calls(config, b, args.variants)
    if "peer" in args.variants:
        calls["peer"] = peer_call(config, b)
    calls = {v: calls[v] for v in args.variants}
    times = common.interleaved(calls, args.rounds, args.steps, desc=f"ITM {name} B={b}")
    seq_len = config.text_seq_len + common.num_patches(config)
    rows = []
    for variant in args.variants:
        seconds = common.median(times[variant])
        flops = (
            common.peer_flops(config, seq_len, training=False) if variant == "peer" else common.itm_flops(config)
        ).total
        row = {
            "config": name,
            "variant": variant,
            "batch": b,
            "s/call": seconds,
            "pairs/s": b / seconds,
            "GFLOP/s": flops * b / seconds / 1e9,
            "call times": [round(t, 4) for t in times[variant]],
        }
        if "peer" in times and variant != "peer":
            row["x peer"] = common.paired_ratio(times, variant, "peer")
        if "ours_full" in times and variant in ("ours", "ours_cached"):
            row["x ours_full"] = common.paired_ratio(times, variant, "ours_full")
        rows.append(row)
    return rows, notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="base,small")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--variants", default=",".join(ALL_VARIANTS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    args.variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(args.variants) - set(ALL_VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {', '.join(ALL_VARIANTS)}")

    machine = common.machine_description()
    peak_before, rates = common.matmul_peak()
    rows, notes = [], {}
    for name in args.configs.split(","):
        config_rows, notes[name] = run_config(name, args)
        rows += config_rows
    peak_after, _ = common.matmul_peak()
    peak = max(peak_before, peak_after)
    for row in rows:
        row["% peak"] = 100.0 * row["GFLOP/s"] / peak
    print(f"\nmachine: {machine}")
    print(f"matmul peak float32: {peak:.1f} GFLOP/s (before {peak_before:.1f}, after {peak_after:.1f})")
    print(f"notes: {notes}")
    print(
        common.format_table(
            rows, ["config", "variant", "batch", "s/call", "pairs/s", "GFLOP/s", "% peak", "x peer", "x ours_full"]
        )
    )
    if args.json:
        common.write_json(
            args.json,
            {
                "benchmark": "inference",
                "machine": machine,
                "matmul_peak_gflops": peak,
                "matmul_rates_before": rates,
                "notes": notes,
                "rows": rows,
            },
        )
    return rows


if __name__ == "__main__":
    main()
