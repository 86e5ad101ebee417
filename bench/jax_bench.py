"""GPU benchmark under Keras' JAX backend: the same Keras model code, a jitted training step
(`model.stateless_call` + `jax.value_and_grad` + `optimizer.stateless_apply`), ITM scoring, the keras-hub peer,
and the matmul peak measured with JAX in the same process.

    KERAS_BACKEND=jax python bench/jax_bench.py --part train --configs base --batch_size 128
    KERAS_BACKEND=jax python bench/jax_bench.py --part inference --configs base --batch_size 512

Variants: ours / peer in float32 ("f32"; JAX's default matmul precision, TF32 on recent GPUs) and under the
mixed_bfloat16 policy ("bf16"), ours also with the fused Q/K/V projection ("_fused"); for inference, the full
predict-mode call ("ours_full") against the ITM-only path ("ours").
"""

import argparse
import os
import sys
import time
import types

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

ROOT = common.ROOT


def import_model_code():
    """The model, losses and optimizer modules, without kaleido_tf.model_zoo's package __init__ (which loads
    the TF1 checkpoint converter, i.e. TensorFlow, absent where only JAX is installed)."""
    import kaleido_tf  # noqa: F401  (lazy package)

    name = "kaleido_tf.model_zoo"
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(ROOT, "kaleido_tf", "model_zoo")]
        sys.modules[name] = package
    from kaleido_tf.losses.pretrain_loss import pretrain_losses
    from kaleido_tf.model_zoo.kaleidobert_pretrain_model import KaleidoBERTPretrainModel
    from kaleido_tf.optimizers.train_op import get_optimizer

    return KaleidoBERTPretrainModel, pretrain_losses, get_optimizer


def jax_matmul_peak(dtype, sizes=(1024, 2048, 4096, 8192), repeats=10):
    """Best rate of square matmuls with JAX (median of `repeats` after a warm-up): GFLOP/s by size."""
    import jax
    import jax.numpy as jnp

    rates = {}
    matmul = jax.jit(jnp.matmul)
    for n in sizes:
        key_a, key_b = jax.random.split(jax.random.PRNGKey(n))
        a = jax.random.normal(key_a, (n, n), dtype)
        b = jax.random.normal(key_b, (n, n), dtype)
        matmul(a, b).block_until_ready()
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            matmul(a, b).block_until_ready()
            seconds.append(time.perf_counter() - start)
        rates[n] = 2.0 * n**3 / common.median(seconds) / 1e9
    return max(rates.values()), rates


def _device_inputs(arrays):
    import jax.numpy as jnp

    return {k: jnp.asarray(v) for k, v in arrays.items()}


def set_fused_qkv(model, fused):
    from kaleido_tf.layers.attention import SelfAttention

    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, SelfAttention):
            layer.fused_qkv = fused


def stateless_train_step(model, loss_fn, optimizer):
    """A jitted step: (trainable, non_trainable, optimizer vars), x -> (new state, loss)."""
    import jax

    def compute_loss(trainable, non_trainable, x):
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return loss_fn(outputs, x), non_trainable

    grad_fn = jax.value_and_grad(compute_loss, has_aux=True)

    def step(state, x):
        trainable, non_trainable, opt_vars = state
        (loss, non_trainable), grads = grad_fn(trainable, non_trainable, x)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return (trainable, non_trainable, opt_vars), loss

    return jax.jit(step, donate_argnums=(0,))


def make_runner(step, state, x):
    """A callable running one step on its own state and waiting for it."""
    holder = {"state": state}

    def run():
        holder["state"], loss = step(holder["state"], x)
        loss.block_until_ready()
        return float(loss)

    return run


def our_train_runner(config, batch_size, policy, fused):
    KaleidoBERTPretrainModel, pretrain_losses, get_optimizer = import_model_code()
    model = KaleidoBERTPretrainModel(config, dtype=policy)
    model.build()
    set_fused_qkv(model, fused)
    optimizer = get_optimizer(1e-4, 10**6)
    optimizer.build(model.trainable_variables)
    x = _device_inputs(common.pretrain_features(config, batch_size))
    step = stateless_train_step(model, lambda out, f: pretrain_losses(out, f, config)["total"], optimizer)
    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in optimizer.variables],
    )
    return make_runner(step, state, x)


class _PeerMLM:
    """keras-hub BertBackbone + MaskedLMHead as one Keras layer (for stateless_call)."""

    @staticmethod
    def build(config, seq_len, policy, mlm=True):
        import keras

        backbone, head = common.build_peer(config, seq_len, dtype=policy, mlm=mlm)

        class Peer(keras.layers.Layer):
            def __init__(self):
                super().__init__(dtype=policy)
                self.backbone, self.head = backbone, head

            def call(self, x, training=False):
                out = self.backbone({k: x[k] for k in ("token_ids", "segment_ids", "padding_mask")}, training=training)
                if mlm:
                    return self.head(out["sequence_output"], mask_positions=x["mask_positions"])
                return self.head(out["pooled_output"])

        peer = Peer()
        peer.built = True
        return peer


def peer_train_runner(config, batch_size, policy):
    import keras

    _, _, get_optimizer = import_model_code()
    seq_len = config.text_seq_len + common.num_patches(config)
    peer = _PeerMLM.build(config, seq_len, policy)
    optimizer = get_optimizer(1e-4, 10**6)
    optimizer.build(peer.trainable_variables)
    x = _device_inputs(common.peer_inputs(config, batch_size, seq_len))

    def loss_fn(logits, f):
        return keras.ops.mean(
            keras.losses.sparse_categorical_crossentropy(
                f["mask_ids"], keras.ops.cast(logits, "float32"), from_logits=True
            )
        )

    step = stateless_train_step(peer, loss_fn, optimizer)
    state = (
        [v.value for v in peer.trainable_variables],
        [v.value for v in peer.non_trainable_variables],
        [v.value for v in optimizer.variables],
    )
    return make_runner(step, state, x)


def inference_runner(model, call, x):
    """Jitted inference `call(model, x)` through stateless_call-free tracing of the model's variables."""
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def fn(trainable, non_trainable, x):
        from keras import StatelessScope

        mapping = list(zip(model.trainable_variables, trainable)) + list(
            zip(model.non_trainable_variables, non_trainable)
        )
        with StatelessScope(state_mapping=mapping):
            return call(x)

    jitted = jax.jit(fn)

    def run():
        out = jitted(trainable, non_trainable, x)
        out.block_until_ready()
        return out

    return run


def our_inference_runners(config, batch_size, policy, fused, variants):
    KaleidoBERTPretrainModel, _, _ = import_model_code()
    model = KaleidoBERTPretrainModel(config, dtype=policy)
    model.build()
    set_fused_qkv(model, fused)
    feats = common.pretrain_features(config, batch_size)
    keep = [k for k in feats if k.startswith(("input_", "segment_ids", "img_feature_convert", "img_loc_position"))]
    x = _device_inputs({k: feats[k] for k in keep})
    runners = {}
    if "full" in variants:
        runners["full"] = inference_runner(model, lambda f: model(f, training=False, mode="predict")["nsp_logits"], x)
    if "itm" in variants:
        runners["itm"] = inference_runner(model, lambda f: model.itm_logits(f)["nsp_logits"], x)
    return runners


def peer_inference_runner(config, batch_size, policy):
    seq_len = config.text_seq_len + common.num_patches(config)
    peer = _PeerMLM.build(config, seq_len, policy, mlm=False)
    x = _device_inputs(
        {
            k: v
            for k, v in common.peer_inputs(config, batch_size, seq_len).items()
            if k in ("token_ids", "segment_ids", "padding_mask")
        }
    )
    return inference_runner(peer, lambda f: peer(f, training=False), x)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("train", "inference"), default="train")
    parser.add_argument("--configs", default="base")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--variants", default=None, help="comma-separated; default: all of the part")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--profile_dir", default=None, help="also trace 3 steps of each variant with jax.profiler into this directory"
    )
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp

    import_model_code()  # before anything imports kaleido_tf.model_zoo
    device = str(jax.devices()[0])
    peak_bf16, rates_bf16 = jax_matmul_peak(jnp.bfloat16)
    peak_f32, rates_f32 = jax_matmul_peak(jnp.float32)
    print(
        f"device {device}: matmul peak bf16 {peak_bf16:.0f} GFLOP/s {rates_bf16}; float32 (default precision) "
        f"{peak_f32:.0f} GFLOP/s {rates_f32}",
        flush=True,
    )
    if args.part == "train":
        all_variants = ("ours_f32", "ours_f32_fused", "ours_bf16", "ours_bf16_fused", "peer_f32", "peer_bf16")
    else:
        all_variants = (
            "ours_full_f32",
            "ours_f32",
            "ours_full_bf16",
            "ours_bf16",
            "ours_bf16_fused",
            "peer_f32",
            "peer_bf16",
        )
    variants = args.variants.split(",") if args.variants else list(all_variants)
    rows = []
    b = args.batch_size
    for name in args.configs.split(","):
        config = common.make_config(name)
        seq_len = config.text_seq_len + common.num_patches(config)
        runners = {}
        for variant in variants:
            policy = "mixed_bfloat16" if "bf16" in variant else "float32"
            start = time.perf_counter()
            try:
                if args.part == "train":
                    if variant.startswith("ours"):
                        runners[variant] = our_train_runner(config, b, policy, fused="fused" in variant)
                    else:
                        runners[variant] = peer_train_runner(config, b, policy)
                elif variant.startswith("ours"):
                    kind = "full" if "full" in variant else "itm"
                    runners[variant] = our_inference_runners(config, b, policy, "fused" in variant, (kind,))[kind]
                else:
                    runners[variant] = peer_inference_runner(config, b, policy)
                runners[variant]()  # compile
                runners[variant]()
            except Exception as e:  # report and go on with the other variants
                print(f"{name} {variant}: FAILED {type(e).__name__}: {str(e)[:800]}", flush=True)
                runners.pop(variant, None)
                continue
            print(f"{name} {variant}: compiled and warmed up in {time.perf_counter() - start:.1f}s", flush=True)
        if args.profile_dir:
            for variant, run in runners.items():
                with jax.profiler.trace(os.path.join(args.profile_dir, f"{name}_{variant}")):
                    for _ in range(3):
                        run()
        times = common.interleaved(runners, args.rounds, args.steps, desc=f"{args.part} {name} B={b}")
        peer_ref = {"f32": "peer_f32", "bf16": "peer_bf16"}
        for variant, seconds_list in times.items():
            seconds = common.median(seconds_list)
            bf16 = "bf16" in variant
            if args.part == "train":
                flops = (
                    common.peer_flops(config, seq_len) if variant.startswith("peer") else common.pretrain_flops(config)
                ).total
            else:
                flops = (
                    common.peer_flops(config, seq_len, training=False)
                    if variant.startswith("peer")
                    else common.itm_flops(config)
                ).total
            gflops = flops * b / seconds / 1e9
            peak = peak_bf16 if bf16 else peak_f32
            row = {
                "config": name,
                "part": args.part,
                "variant": variant,
                "batch": b,
                "ms/step": 1000 * seconds,
                "ex/s": b / seconds,
                "GFLOP/s": gflops,
                "% peak": 100 * gflops / peak,
            }
            ref = peer_ref["bf16" if bf16 else "f32"]
            if ref in times and not variant.startswith("peer"):
                row["x peer"] = common.paired_ratio(times, variant, ref)
            rows.append(row)
    print(f"\ndevice: {device}; peaks GFLOP/s: bf16 {peak_bf16:.0f}, float32 default precision {peak_f32:.0f}")
    print(
        common.format_table(
            rows, ["config", "part", "variant", "batch", "ms/step", "ex/s", "GFLOP/s", "% peak", "x peer"]
        )
    )
    if args.json:
        common.write_json(
            args.json,
            {
                "device": device,
                "peak_bf16": peak_bf16,
                "peak_f32": peak_f32,
                "rates_bf16": rates_bf16,
                "rates_f32": rates_f32,
                "rows": rows,
                "date": time.strftime("%Y-%m-%d %H:%M"),
            },
        )
    return rows


if __name__ == "__main__":
    main()
