"""Shared pieces of the kaleido_tf benchmarks: configs, valid random inputs, FLOP counts, the matmul peak,
interleaved timing and the keras-hub peer.

Numbers on a shared machine drift by tens of percent from one minute to the next, so every benchmark here
times its variants interleaved (round after round, the order rotated each round) in one process and reports
medians and ratios taken round by round.

Shape legend: B batch, T text length, N = 55 patches, S = T + N, H hidden, I intermediate, L layers,
V vocabulary, F patch feature size, P masked text positions.
"""

import dataclasses
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

# The repository root, so that `python bench/<script>.py` imports the package without installing it.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Model sizes benchmarked. "base" is the released model; "small" a quick one with the same sequence layout.
CONFIGS = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
}
COMMON_CONFIG = dict(
    vocab_size=30522,
    text_seq_len=64,
    patch_feature_size=2048,
    img_camouflage_label_num=10,
    masked_greymask_patch_num=2,
    masked_blankmask_patch_num=3,
)
NUM_MASKED = 10  # masked_lm_positions per example, as in the released input schema
LEVEL_FIELDS = (("rotation", 1), ("jigsaw", 4), ("camouflage", 9), ("grey_mask", 16), ("blank_mask", 25))


def make_config(name, **overrides):
    """A KaleidoBERTConfig for the size `name` ("base" or "small")."""
    from kaleido_tf.model_zoo.kaleidobert_config import KaleidoBERTConfig

    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose from {sorted(CONFIGS)}")
    values = dict(COMMON_CONFIG, **CONFIGS[name])
    values.update(overrides)
    return KaleidoBERTConfig(**values)


def num_patches(config):
    return sum(n for _, _, n in config.level_lengths())


# ---------------------------------------------------------------------------------------------- inputs
def pretrain_features(config, batch_size, seed=0, num_masked=NUM_MASKED):
    """Valid random pretraining inputs (numpy, flat as the input schema has them) for `config`."""
    rng = np.random.default_rng(seed)
    b, t, f = batch_size, config.text_seq_len, config.patch_feature_size
    feats = {
        "input_ids": rng.integers(1, config.vocab_size, (b, t)).astype(np.int64),
        "input_mask": np.ones((b, t), np.int64),
        "segment_ids": np.zeros((b, t), np.int64),
        "masked_lm_positions": np.sort(rng.integers(1, t, (b, num_masked)), axis=1).astype(np.int64),
        "masked_lm_ids": rng.integers(1, config.vocab_size, (b, num_masked)).astype(np.int64),
        "masked_lm_weights": np.ones((b, num_masked), np.float32),
    }
    for _, suffix, n in config.level_lengths():
        feats[f"img_feature_convert_{suffix}"] = rng.uniform(0.0, 4.0, (b, n * f)).astype(np.float32)
        feats[f"img_loc_position_{suffix}"] = rng.uniform(0.0, 1.0, (b, n * 5)).astype(np.float32)
    grey_n = config.img_greymask_seq_len
    blank_n = config.img_blankmask_seq_len
    feats["img_grey_lm_ids"] = np.stack(
        [rng.permutation(grey_n)[: config.masked_greymask_patch_num] for _ in range(b)]
    ).astype(np.int64)
    feats["img_blank_lm_ids"] = np.stack(
        [rng.permutation(blank_n)[: config.masked_blankmask_patch_num] for _ in range(b)]
    ).astype(np.int64)
    feats["img_grey_mask_gt"] = rng.uniform(0.0, 4.0, (b, config.masked_greymask_patch_num * f)).astype(np.float32)
    feats["img_rotate_gt"] = rng.integers(0, config.img_rotation_label_num, (b, 1)).astype(np.int64)
    feats["img_jigsaw_gt"] = rng.integers(0, config.img_jigsaw_label_num, (b, 1)).astype(np.int64)
    feats["img_camouflage_gt"] = rng.integers(0, config.img_camouflage_label_num, (b, 1)).astype(np.int64)
    feats["nx_sent_labels"] = rng.integers(0, 2, (b, 1)).astype(np.int64)
    return feats


# ---------------------------------------------------------------------------------------------- FLOPs
@dataclasses.dataclass(frozen=True)
class FlopCount:
    """FLOPs of one example, by part (a multiply-add counts 2)."""

    encoder: float  # the dense layers of the encoder stack: 2 (fwd) or 6 (train) x params x tokens
    attention: float  # QK^T and PV: 4 (fwd) or 12 (train) x L x S^2 x H
    heads: float  # patch projections, pooler and the task heads

    @property
    def total(self):
        return self.encoder + self.attention + self.heads


def encoder_params(hidden, intermediate, layers):
    """Parameters of the encoder stack (weights, biases and LayerNorms): the 'non-embedding' parameters."""
    per_layer = 4 * hidden * hidden + 4 * hidden + 2 * hidden * intermediate + intermediate + hidden + 4 * hidden
    return layers * per_layer


def pretrain_flops(config, text_len=None, num_masked=NUM_MASKED, training=True):
    """FLOPs of one example of Kaleido-BERT pretraining (all seven heads): 6 x N x S + 12 x L x S^2 x H + heads
    for a training step (forward 2 + backward 4), a third of that for a forward pass."""
    c = config
    factor = 6 if training else 2
    t = c.text_seq_len if text_len is None else text_len
    n = num_patches(c)
    s = t + n
    h, f = c.hidden_size, c.patch_feature_size
    enc = factor * encoder_params(h, c.intermediate_size, c.num_hidden_layers) * s
    att = 2 * factor * c.num_hidden_layers * s * s * h
    heads = factor * (
        n * f * h  # patch projections
        + n * 5 * h  # position projection
        + h * h  # pooler
        + num_masked * (h * h + h * c.vocab_size)  # MLM transform + tied output
        + 2 * h  # ITM
        + sum(
            n_level * h * labels
            for n_level, labels in (
                (c.img_rotation_seq_len, c.img_rotation_label_num),
                (c.img_jigsaw_seq_len, c.img_jigsaw_label_num),
                (c.img_camouflage_seq_len, c.img_camouflage_label_num),
            )
        )
        + (c.masked_greymask_patch_num + c.masked_blankmask_patch_num) * h * f  # reconstruction heads
    )
    return FlopCount(enc, att, heads)


def itm_flops(config, text_len=None):
    """FLOPs of scoring one (text, image) pair: the backbone forward, the pooler and the ITM head."""
    c = config
    t = c.text_seq_len if text_len is None else text_len
    n = num_patches(c)
    s = t + n
    h = c.hidden_size
    enc = 2 * encoder_params(h, c.intermediate_size, c.num_hidden_layers) * s
    att = 4 * c.num_hidden_layers * s * s * h
    heads = 2 * (n * c.patch_feature_size * h + n * 5 * h + h * h + 2 * h)
    return FlopCount(enc, att, heads)


def peer_flops(config, seq_len, num_masked=NUM_MASKED, training=True):
    """FLOPs of one example of the peer: BERT over `seq_len` tokens + pooler, and an MLM head (training) or a
    2-way head on the pooled output (inference)."""
    c = config
    factor = 6 if training else 2
    h = c.hidden_size
    enc = factor * encoder_params(h, c.intermediate_size, c.num_hidden_layers) * seq_len
    att = 2 * factor * c.num_hidden_layers * seq_len * seq_len * h
    if training:
        heads = factor * num_masked * (h * h + h * c.vocab_size) + 2 * h * h  # the pooler runs forward only
    else:
        heads = factor * (h * h + 2 * h)
    return FlopCount(enc, att, heads)


# ---------------------------------------------------------------------------------------------- timing
def median(values):
    return float(statistics.median(values)) if values else float("nan")


def interleaved(variants, rounds, steps, progress=True, desc="timing"):
    """Times callables interleaved: `rounds` rounds, each running every variant `steps` times in a row (the
    order rotated each round). Each callable must block until its work is done.

    variants: dict name -> callable(). Returns dict name -> list of per-step seconds, one per round.
    """
    from tqdm.auto import tqdm

    names = list(variants)
    times = {name: [] for name in names}
    bar = tqdm(total=rounds * len(names), desc=desc, unit="run", disable=not progress, dynamic_ncols=True)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn = variants[name]
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times[name].append((time.perf_counter() - start) / steps)
            bar.update(1)
            bar.set_postfix_str(f"{name} {times[name][-1]:.3f}s", refresh=False)
    bar.close()
    return times


def paired_ratio(times, name, reference):
    """Median over rounds of time(reference) / time(name): the speed of `name` relative to `reference`,
    taken round by round so that slow phases of the machine cancel."""
    pairs = [ref / own for own, ref in zip(times[name], times[reference])]
    return median(pairs)


def matmul_peak(sizes=(1024, 2048, 3072, 4096), repeats=5, dtype="float32"):
    """The machine's float32 matmul rate with TensorFlow: for each square size, the median of `repeats` timed
    products after a warm-up; returns (best GFLOP/s, {size: GFLOP/s})."""
    import tensorflow as tf

    rates = {}
    matmul = tf.function(lambda a, b: tf.matmul(a, b))
    for n in sizes:
        a = tf.random.normal((n, n), dtype=dtype)
        b = tf.random.normal((n, n), dtype=dtype)
        matmul(a, b).numpy()
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            matmul(a, b).numpy()
            seconds.append(time.perf_counter() - start)
        rates[n] = 2.0 * n**3 / median(seconds) / 1e9
    return max(rates.values()), rates


def block(value):
    """Waits for a (nested) TF/JAX result by fetching one scalar of it."""
    import tensorflow as tf

    leaves = tf.nest.flatten(value)
    if leaves:
        np.asarray(leaves[0])
    return value


# ---------------------------------------------------------------------------------------------- peer
def build_peer(config, seq_len, dtype=None, mlm=True):
    """keras-hub's BertBackbone with the config's sizes (+ an MLM head tied to its token embedding, or a
    2-way dense on the pooled output). Returns (backbone, head)."""
    import keras
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size,
        dropout=config.hidden_dropout_prob,
        max_sequence_length=max(config.max_position_embeddings, seq_len),
        dtype=dtype,
    )
    if mlm:
        head = keras_hub.layers.MaskedLMHead(
            token_embedding=backbone.token_embedding, intermediate_activation="gelu", dtype=dtype
        )
        head.build((None, seq_len, config.hidden_size))
    else:
        head = keras.layers.Dense(2, dtype=dtype)
        head.build((None, config.hidden_size))
    return backbone, head


def peer_inputs(config, batch_size, seq_len, seed=0, num_masked=NUM_MASKED):
    rng = np.random.default_rng(seed)
    return {
        "token_ids": rng.integers(1, config.vocab_size, (batch_size, seq_len)).astype(np.int32),
        "segment_ids": np.zeros((batch_size, seq_len), np.int32),
        "padding_mask": np.ones((batch_size, seq_len), np.int32),
        "mask_positions": np.sort(rng.integers(1, seq_len, (batch_size, num_masked)), axis=1).astype(np.int32),
        "mask_ids": rng.integers(1, config.vocab_size, (batch_size, num_masked)).astype(np.int32),
    }


# ---------------------------------------------------------------------------------------------- reports
def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_1min_at_start": round(load, 2),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def cpu_supports_bf16():
    """True when the CPU has native bfloat16 dot products (AVX512_BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def write_json(path, data):
    """Writes the results atomically (temporary name, then rename)."""
    from kaleido_tf.utils.io import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")


def format_table(rows, columns):
    """A Markdown table of dict rows."""
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, rule]
    for row in rows:
        cells = []
        for col in columns:
            value = row.get(col, "")
            cells.append(f"{value:.3g}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
