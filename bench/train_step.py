"""Benchmark: one full Kaleido-BERT pretraining step (all seven heads, Adam, global-norm clipping) against
keras-hub's BertBackbone + MLM head of the same size, in one process, interleaved.

    python bench/train_step.py                                  # base and small, float32, batch 8
    python bench/train_step.py --configs base --variants ours,ours_fused,ours_xla,ours_bf16,peer,peer_xla

Variants:
    ours        the Trainer's compiled step (float32), fed from a tf.data iterator through the strategy
    ours_fused  the same model with the fused [H, 3H] Q/K/V projection
    ours_xla    the same model, the forward and backward pass XLA-compiled (Trainer(jit_compile=True))
    ours_bf16   a second model under the mixed_bfloat16 policy (CPUs with bf16 units, GPUs)
    peer        keras_hub.models.BertBackbone (sequence T + 55) + keras_hub.layers.MaskedLMHead, same optimizer
    peer_xla    the peer step XLA-compiled

Reported per variant: median seconds per step over the rounds, examples/s, achieved model GFLOP/s
(6 x non-embedding params x tokens + attention + heads; see common.pretrain_flops), its share of the matmul
peak measured in the same run, and the speed relative to the peer taken round by round.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

ALL_VARIANTS = ("ours", "ours_fused", "ours_xla", "ours_bf16", "peer", "peer_xla")


def set_fused_qkv(model, fused):
    """Switches every attention layer between separate and fused Q/K/V matmuls (same variables)."""
    from kaleido_tf.layers.attention import SelfAttention

    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, SelfAttention):
            layer.fused_qkv = fused


def our_steps(config, batch_size, variants, model_dir, seed=0):
    """Callables running one training step each, for the `ours*` variants."""
    import tensorflow as tf

    from kaleido_tf.engines import Trainer
    from kaleido_tf.tasks import PretrainTask

    features = {k: tf.constant(v) for k, v in common.pretrain_features(config, batch_size, seed).items()}

    def iterator_for(trainer):
        dataset = trainer.strategy.distribute_datasets_from_function(
            lambda context: tf.data.Dataset.from_tensors(features).repeat()
        )
        return iter(dataset)

    def runner(trainer, fused, jit):
        set_fused_qkv(trainer.model, fused)
        trainer.jit_compile = jit
        fn = trainer.build_train_function(batch_size)
        iterator = iterator_for(trainer)

        def step():
            return float(fn(iterator)["total"])

        step()  # trace and compile with this variant's settings
        return step

    steps = {}
    wanted_f32 = [v for v in variants if v in ("ours", "ours_fused", "ours_xla")]
    if wanted_f32:
        trainer = Trainer(PretrainTask(config), os.path.join(model_dir, "f32"), train_steps=10**6, progress=False)
        settings = {"ours": (False, False), "ours_fused": (True, False), "ours_xla": (False, True)}
        for name in wanted_f32:
            steps[name] = runner(trainer, *settings[name])
    if "ours_bf16" in variants:
        trainer = Trainer(
            PretrainTask(config),
            os.path.join(model_dir, "bf16"),
            train_steps=10**6,
            progress=False,
            mixed_precision="mixed_bfloat16",
        )
        steps["ours_bf16"] = runner(trainer, False, False)
    return steps


def peer_steps(config, batch_size, variants, seed=0):
    """Callables running one training step of the keras-hub peer (MLM loss only), plain and XLA."""
    import keras
    import tensorflow as tf

    from kaleido_tf.optimizers import get_optimizer

    seq_len = config.text_seq_len + common.num_patches(config)
    backbone, head = common.build_peer(config, seq_len)
    inputs = common.peer_inputs(config, batch_size, seq_len, seed)
    inputs = {k: tf.constant(v) for k, v in inputs.items()}
    variables = list(backbone.trainable_variables)
    seen = {id(v) for v in variables}
    variables += [v for v in head.trainable_variables if id(v) not in seen]  # the tied table once
    optimizer = get_optimizer(1e-4, 10**6)
    optimizer.build(variables)
    iterator = iter(tf.data.Dataset.from_tensors(inputs).repeat())

    def gradients(x):
        with tf.GradientTape() as tape:
            out = backbone({k: x[k] for k in ("token_ids", "segment_ids", "padding_mask")}, training=True)
            logits = head(out["sequence_output"], mask_positions=x["mask_positions"])
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(
                    x["mask_ids"], tf.cast(logits, tf.float32), from_logits=True
                )
            )
        grads = tape.gradient(loss, variables)
        return loss, [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(grads, variables)]

    def make_step(jit):
        # As the Trainer does: XLA (if asked) compiles the forward and backward pass; the optimizer runs after.
        compute = tf.function(gradients, jit_compile=True) if jit else gradients

        @tf.function
        def step_fn(iterator):
            loss, grads = compute(next(iterator))
            optimizer.apply_gradients(zip(grads, variables))
            return loss

        return step_fn

    steps = {}
    for name, jit in (("peer", False), ("peer_xla", True)):
        if name in variants:
            fn = make_step(jit)

            def step(fn=fn):
                return float(fn(iterator))

            step()
            steps[name] = step
    return steps


def run_config(name, args, peak):
    config = common.make_config(name)
    b = args.batch_size
    flops = common.pretrain_flops(config)
    seq_len = config.text_seq_len + common.num_patches(config)
    peer_flops = common.peer_flops(config, seq_len)
    with tempfile.TemporaryDirectory() as model_dir:
        steps = our_steps(config, b, args.variants, model_dir)
        steps.update(peer_steps(config, b, args.variants))
        steps = {v: steps[v] for v in args.variants}
        times = common.interleaved(steps, args.rounds, args.steps, desc=f"train {name} B={b}")
    rows = []
    for variant in args.variants:
        seconds = common.median(times[variant])
        per_example = peer_flops.total if variant.startswith("peer") else flops.total
        gflops = per_example * b / seconds / 1e9
        row = {
            "config": name,
            "variant": variant,
            "batch": b,
            "s/step": seconds,
            "ex/s": b / seconds,
            "GFLOP/s": gflops,
            "% peak": 100.0 * gflops / peak,
            "step times": [round(t, 4) for t in times[variant]],
        }
        if "peer" in times and variant != "peer":
            row["x peer"] = common.paired_ratio(times, variant, "peer")
        if "ours" in times and variant not in ("ours",) and variant.startswith("ours"):
            row["x ours"] = common.paired_ratio(times, variant, "ours")
        rows.append(row)
    return rows, {"ours": flops.total, "peer": peer_flops.total}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="base,small", help="comma-separated: base, small")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument(
        "--variants", default="ours,ours_fused,peer", help=f"comma-separated, from {', '.join(ALL_VARIANTS)}"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians over rounds)")
    parser.add_argument("--steps", type=int, default=2, help="steps per variant per round")
    parser.add_argument("--json", default=None, help="write the results here (atomically)")
    args = parser.parse_args(argv)
    args.variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(args.variants) - set(ALL_VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {', '.join(ALL_VARIANTS)}")
    if "ours_bf16" in args.variants and not common.cpu_supports_bf16():
        print("note: this CPU has no bfloat16 dot-product units; ours_bf16 runs emulated (slow)")

    machine = common.machine_description()
    peak_before, rates = common.matmul_peak()
    all_rows, flop_counts = [], {}
    for name in args.configs.split(","):
        rows, flop_counts[name] = run_config(name, args, peak_before)
        all_rows += rows
    peak_after, rates_after = common.matmul_peak()
    peak = max(peak_before, peak_after)
    for row in all_rows:  # against the better of the two peak measurements
        row["% peak"] = 100.0 * row["GFLOP/s"] / peak
    print(f"\nmachine: {machine}")
    print(
        f"matmul peak float32: {peak:.1f} GFLOP/s (before {peak_before:.1f}: "
        f"{ {k: round(v, 1) for k, v in rates.items()} }, after {peak_after:.1f})"
    )
    print(f"model FLOPs per example: {flop_counts}")
    print(
        common.format_table(
            all_rows, ["config", "variant", "batch", "s/step", "ex/s", "GFLOP/s", "% peak", "x peer", "x ours"]
        )
    )
    if args.json:
        common.write_json(
            args.json,
            {
                "benchmark": "train_step",
                "machine": machine,
                "matmul_peak_gflops": peak,
                "matmul_rates_before": rates,
                "matmul_rates_after": rates_after,
                "flops_per_example": flop_counts,
                "rounds": args.rounds,
                "steps_per_round": args.steps,
                "rows": all_rows,
            },
        )
    return all_rows


if __name__ == "__main__":
    main()
