"""The main job on the embedded demo catalog.

    python -m kaleido_tf.demo.run [--quick] [--output_dir demo_out]

Stages so far: generate the synthetic catalog, then pretrain a small Kaleido-BERT on it for a few steps and
show the losses fall. Later stages (preprocessing with the real pipeline, finetuning, retrieval, export)
join as they land.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output_dir", default="demo_out")
    p.add_argument("--quick", action="store_true", help="a few-minute size, used by CI")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from kaleido_tf.demo.catalog import generate_catalog

    timings = {}
    t0 = time.time()
    num_products = 60 if args.quick else 400
    catalog_dir = os.path.join(args.output_dir, "catalog")
    summary = generate_catalog(catalog_dir, num_products=num_products, image_size=64, seed=args.seed, overwrite=True)
    timings["catalog"] = time.time() - t0
    print(f"catalog: {summary}")

    import numpy as np
    import tensorflow as tf

    from kaleido_tf import KaleidoBERTConfig
    from kaleido_tf.optimizers import get_optimizer
    from kaleido_tf.tasks import PretrainTask

    t0 = time.time()
    config = KaleidoBERTConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                               num_attention_heads=4, max_position_embeddings=32, patch_feature_size=16,
                               patch_type_vocab_size=6, text_seq_len=16, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0)
    task = PretrainTask(config)
    model = task.build_model()
    rng = np.random.default_rng(args.seed)
    batch = 8
    feats = {
        "input_ids": rng.integers(0, 128, (batch, 16)), "input_mask": np.ones((batch, 16), np.int64),
        "segment_ids": np.zeros((batch, 16), np.int64), "masked_lm_positions": rng.integers(1, 16, (batch, 3)),
        "masked_lm_ids": rng.integers(0, 128, (batch, 3)), "masked_lm_weights": np.ones((batch, 3), np.float32),
        "nx_sent_labels": rng.integers(0, 2, (batch, 1)), "img_rotate_gt": rng.integers(0, 4, (batch, 1)),
        "img_jigsaw_gt": rng.integers(0, 24, (batch, 1)), "img_camouflage_gt": rng.integers(0, 9, (batch, 1)),
        "img_grey_lm_ids": np.tile([1, 5], (batch, 1)), "img_blank_lm_ids": np.tile([2, 7, 11], (batch, 1)),
        "img_grey_mask_gt": rng.random((batch, 32)).astype(np.float32),
    }
    for suffix, n in (("rotation", 1), ("jigsaw", 4), ("camouflage", 9), ("grey_mask", 16), ("blank_mask", 25)):
        feats[f"img_feature_convert_{suffix}"] = rng.random((batch, n * 16)).astype(np.float32)
        feats[f"img_loc_position_{suffix}"] = rng.random((batch, n * 5)).astype(np.float32)
    feats = {k: tf.constant(v) for k, v in feats.items()}
    steps = 20 if args.quick else 60
    optimizer = get_optimizer(1e-3, train_steps=steps, warmup_ratio=0.1)
    step = tf.function(lambda: task.train_step(feats, model, optimizer)["total"])
    losses = [float(step()) for _ in range(steps)]
    timings["pretrain (fixed batch)"] = time.time() - t0
    print(f"pretraining loss: first {losses[1]:.3f} -> last {losses[-1]:.3f} over {steps} steps")
    print("stage timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    if not losses[-1] < losses[1]:
        print("error: the loss did not fall", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
