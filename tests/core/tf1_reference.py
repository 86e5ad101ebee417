"""An independent, functional reference of the original computation, for parity tests at any size.

It is written straight from ORIGINAL.md with raw TensorFlow ops on a dict of variables keyed by the original
(EasyTransfer) names, shares no code with kaleido_tf (no Keras layers, no name map, no Keras optimizer), and is
itself checked against the golden outputs of the original before it referees other sizes.
"""

import math

import numpy as np
import tensorflow as tf

PREFIX = "kaleido_bert_pre_trained_model/"
# (feature suffix, TF1 block name, TF1 variable stem, segment id, config length key)
LEVELS = (
    ("rotation", "rotation_embeddings", "rotation", 1, "img_rotation_seq_len"),
    ("jigsaw", "jigsaw_embeddings", "jigsaw", 2, "img_jigsaw_seq_len"),
    ("camouflage", "camouflage_embeddings", "camouflage", 3, "img_camouflage_seq_len"),
    ("grey_mask", "greymask_embeddings", "greymask", 4, "img_greymask_seq_len"),
    ("blank_mask", "blank_embeddings", "blankmask", 5, "img_blankmask_seq_len"),
)


# ----------------------------------------------------------------------------- variables
def variable_shapes(cfg):
    """{TF1 name without prefix: shape} of the pretraining model, as EasyTransfer names them."""
    H, FF, F = cfg["hidden_size"], cfg["intermediate_size"], cfg["patch_feature_size"]
    s = {
        "bert/embeddings/word_embeddings": (cfg["vocab_size"], H),
        "bert/embeddings/token_type_embeddings": (cfg["type_vocab_size"], H),
        "bert/embeddings/position_embeddings": (cfg["max_position_embeddings"], H),
        "bert/embeddings/LayerNorm/gamma": (H,),
        "bert/embeddings/LayerNorm/beta": (H,),
        "bert/position_dense": (5, H),
        "bert/pooler/dense/kernel": (H, H),
        "bert/pooler/dense/bias": (H,),
        "cls/predictions/transform/dense/kernel": (H, H),
        "cls/predictions/transform/dense/bias": (H,),
        "cls/predictions/transform/LayerNorm/gamma": (H,),
        "cls/predictions/transform/LayerNorm/beta": (H,),
        "cls/predictions/output_bias": (cfg["vocab_size"],),
        "cls/seq_relationship/output_weights": (2, H),
        "cls/seq_relationship/output_bias": (2,),
        "cls/img_rotation/rotation_output_weights": (cfg["img_rotation_label_num"], H * cfg["img_rotation_seq_len"]),
        "cls/img_rotation/rotation_output_bias": (cfg["img_rotation_label_num"],),
        "cls/img_jigsaw/jiasaw_output_weights": (cfg["img_jigsaw_label_num"], H * cfg["img_jigsaw_seq_len"]),
        "cls/img_jigsaw/jigsaw_output_bias": (cfg["img_jigsaw_label_num"],),
        "cls/img_camouflage/camouflage_output_weights": (
            cfg["img_camouflage_label_num"],
            H * cfg["img_camouflage_seq_len"],
        ),
        "cls/img_camouflage/camouflage_output_bias": (cfg["img_camouflage_label_num"],),
        "cls/img_greymask/greymask_output_weights": (H, F),
        "cls/img_blankmask/blanmask_output_weights": (H, F),
    }
    for _, block, stem, _, _ in LEVELS:
        s[f"bert/{block}/{stem}_projector"] = (F, H)
        s[f"bert/{block}/{stem}_type_embeddings"] = (cfg["patch_type_vocab_size"], H)
        s[f"bert/{block}/{stem}EmbLayerNorm/gamma"] = (H,)
        s[f"bert/{block}/{stem}EmbLayerNorm/beta"] = (H,)
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert/encoder/layer_{i}/"
        for part in ("query", "key", "value"):
            s[p + f"attention/self/{part}/kernel"] = (H, H)
            s[p + f"attention/self/{part}/bias"] = (H,)
        s[p + "attention/output/dense/kernel"] = (H, H)
        s[p + "attention/output/dense/bias"] = (H,)
        s[p + "attention/output/LayerNorm/gamma"] = (H,)
        s[p + "attention/output/LayerNorm/beta"] = (H,)
        s[p + "intermediate/dense/kernel"] = (H, FF)
        s[p + "intermediate/dense/bias"] = (FF,)
        s[p + "output/dense/kernel"] = (FF, H)
        s[p + "output/dense/bias"] = (H,)
        s[p + "output/LayerNorm/gamma"] = (H,)
        s[p + "output/LayerNorm/beta"] = (H,)
    return s


def random_weights(cfg, seed):
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in variable_shapes(cfg).items():
        if name.endswith("gamma"):
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith("beta") or "bias" in name:
            value = 0.02 * rng.standard_normal(shape)
        else:
            value = 0.05 * rng.standard_normal(shape)
        out[name] = value.astype(np.float32)
    return out


def write_tf1_checkpoint(prefix, weights, adam_slots=True, extra=None):
    """A TF1-style name-based checkpoint with the EasyTransfer prefix, Adam slots and bookkeeping."""
    arrays = {PREFIX + k: v for k, v in weights.items()}
    if adam_slots:
        for k, v in weights.items():
            arrays[PREFIX + k + "/Adam"] = np.zeros_like(v)
            arrays[PREFIX + k + "/Adam_1"] = np.zeros_like(v)
        arrays["beta1_power"] = np.float32(0.9)
        arrays["beta2_power"] = np.float32(0.98)
    arrays["global_step"] = np.int64(0)
    arrays.update(extra or {})
    names = sorted(arrays)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(arrays[n]) for n in names],
    )
    return prefix


def random_features(cfg, batch, seed, num_masked=4):
    rng = np.random.default_rng(seed)
    T, F = cfg["text_seq_len"], cfg["patch_feature_size"]
    f = {
        "input_ids": rng.integers(0, cfg["vocab_size"], (batch, T)),
        "input_mask": (rng.random((batch, T)) < 0.85).astype(np.int64),
        "segment_ids": rng.integers(0, cfg["type_vocab_size"], (batch, T)),
        "masked_lm_positions": rng.integers(0, T, (batch, num_masked)),
        "masked_lm_ids": rng.integers(0, cfg["vocab_size"], (batch, num_masked)),
        "masked_lm_weights": (rng.random((batch, num_masked)) < 0.8).astype(np.float32),
        "nx_sent_labels": rng.integers(0, 2, (batch, 1)),
        "img_rotate_gt": rng.integers(0, cfg["img_rotation_label_num"], (batch, 1)),
        "img_jigsaw_gt": rng.integers(0, cfg["img_jigsaw_label_num"], (batch, 1)),
        "img_camouflage_gt": rng.integers(0, cfg["img_camouflage_label_num"], (batch, 1)),
        "img_grey_lm_ids": np.stack(
            [
                rng.choice(cfg["img_greymask_seq_len"], cfg["masked_greymask_patch_num"], replace=False)
                for _ in range(batch)
            ]
        ),
        "img_blank_lm_ids": np.stack(
            [
                rng.choice(cfg["img_blankmask_seq_len"], cfg["masked_blankmask_patch_num"], replace=False)
                for _ in range(batch)
            ]
        ),
        "img_grey_mask_gt": rng.random((batch, cfg["masked_greymask_patch_num"] * F)).astype(np.float32),
    }
    f["input_mask"][:, 0] = 1
    total = 0
    for suffix, _, _, _, key in LEVELS:
        n = cfg[key]
        total += n
        f[f"img_feature_convert_{suffix}"] = rng.random((batch, n * F)).astype(np.float32)
        f[f"img_loc_position_{suffix}"] = rng.random((batch, n * 5)).astype(np.float32)
    f["image_mask"] = np.ones((batch, total), np.int64)
    return f


# ----------------------------------------------------------------------------- forward
def _ln(x, gamma, beta):
    mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(var + 1e-12) * gamma + beta


def _gelu(x):
    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * tf.pow(x, 3))))


def _gather_rows(seq, ids):
    b, n, h = seq.shape
    flat = tf.reshape(seq, [-1, h])
    offsets = tf.reshape(tf.range(b) * n, [-1, 1])
    return tf.gather(flat, tf.reshape(tf.cast(ids, tf.int32) + offsets, [-1]))


def forward(W, cfg, feats, mode):
    """Outputs of the original pretraining model. W: {TF1 name without prefix: tensor}."""
    f = {k: tf.convert_to_tensor(v) for k, v in feats.items()}
    H, F, N = cfg["hidden_size"], cfg["patch_feature_size"], cfg["num_attention_heads"]
    ids = tf.cast(f["input_ids"], tf.int32)
    B, T = ids.shape
    x = tf.gather(W["bert/embeddings/word_embeddings"], ids)
    x += tf.reshape(
        tf.one_hot(tf.reshape(tf.cast(f["segment_ids"], tf.int32), [-1]), cfg["type_vocab_size"])
        @ W["bert/embeddings/token_type_embeddings"],
        [B, T, H],
    )
    x += W["bert/embeddings/position_embeddings"][:T][None]
    pieces = [_ln(x, W["bert/embeddings/LayerNorm/gamma"], W["bert/embeddings/LayerNorm/beta"])]
    raw = {}
    for suffix, block, stem, seg, key in LEVELS:
        n = cfg[key]
        feat = tf.reshape(tf.cast(f[f"img_feature_convert_{suffix}"], tf.float32), [B, n, F])
        raw[suffix] = feat
        if suffix == "blank_mask" and mode != "predict":
            hit = tf.reduce_sum(tf.one_hot(tf.cast(f["img_blank_lm_ids"], tf.int32), n), axis=1)
            feat = feat * (1.0 - hit[:, :, None])
        pos = tf.reshape(tf.cast(f[f"img_loc_position_{suffix}"], tf.float32), [B, n, 5])
        e = tf.einsum("bnf,fh->bnh", feat, W[f"bert/{block}/{stem}_projector"])
        e += tf.reshape(
            tf.one_hot(tf.fill([B * n], seg), cfg["patch_type_vocab_size"]) @ W[f"bert/{block}/{stem}_type_embeddings"],
            [B, n, H],
        )
        e += tf.einsum("bnc,ch->bnh", pos, W["bert/position_dense"])
        pieces.append(_ln(e, W[f"bert/{block}/{stem}EmbLayerNorm/gamma"], W[f"bert/{block}/{stem}EmbLayerNorm/beta"]))
    seq = tf.concat(pieces, axis=1)
    S = seq.shape[1]
    mask = tf.concat([tf.cast(f["input_mask"], tf.float32), tf.ones([B, S - T])], axis=1)
    adder = (1.0 - mask[:, None, None, :]) * -10000.0
    D = H // N
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert/encoder/layer_{i}/"

        def proj(t, name, p=p):
            return t @ W[p + name + "/kernel"] + W[p + name + "/bias"]

        def heads(t):
            return tf.transpose(tf.reshape(t, [B, S, N, D]), [0, 2, 1, 3])

        q, k, v = (heads(proj(seq, f"attention/self/{n}")) for n in ("query", "key", "value"))
        scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(D)) + adder
        ctx = tf.reshape(tf.transpose(tf.matmul(tf.nn.softmax(scores), v), [0, 2, 1, 3]), [B, S, H])
        att = _ln(
            proj(ctx, "attention/output/dense") + seq,
            W[p + "attention/output/LayerNorm/gamma"],
            W[p + "attention/output/LayerNorm/beta"],
        )
        ff = proj(_gelu(proj(att, "intermediate/dense")), "output/dense")
        seq = _ln(ff + att, W[p + "output/LayerNorm/gamma"], W[p + "output/LayerNorm/beta"])
    pooled = tf.tanh(seq[:, 0] @ W["bert/pooler/dense/kernel"] + W["bert/pooler/dense/bias"])

    out = {"sequence_output": seq, "pooled_output": pooled}
    t = _gather_rows(seq[:, :T], f["masked_lm_positions"])
    t = _gelu(t @ W["cls/predictions/transform/dense/kernel"] + W["cls/predictions/transform/dense/bias"])
    t = _ln(t, W["cls/predictions/transform/LayerNorm/gamma"], W["cls/predictions/transform/LayerNorm/beta"])
    out["mlm_logits"] = t @ tf.transpose(W["bert/embeddings/word_embeddings"]) + W["cls/predictions/output_bias"]
    out["nsp_logits"] = (
        pooled @ tf.transpose(W["cls/seq_relationship/output_weights"]) + W["cls/seq_relationship/output_bias"]
    )
    start = T
    level_out = {}
    for suffix, _, _, _, key in LEVELS:
        level_out[suffix] = seq[:, start : start + cfg[key]]
        start += cfg[key]
    for task, suffix, wname, bname in (
        ("rotation", "rotation", "cls/img_rotation/rotation_output_weights", "cls/img_rotation/rotation_output_bias"),
        ("jigsaw", "jigsaw", "cls/img_jigsaw/jiasaw_output_weights", "cls/img_jigsaw/jigsaw_output_bias"),
        (
            "camouflage",
            "camouflage",
            "cls/img_camouflage/camouflage_output_weights",
            "cls/img_camouflage/camouflage_output_bias",
        ),
    ):
        flat = tf.reshape(level_out[suffix], [B, -1])
        out[f"{task}_logits"] = flat @ tf.transpose(W[wname]) + W[bname]
    out["greymask_logits"] = (
        _gather_rows(level_out["grey_mask"], f["img_grey_lm_ids"]) @ W["cls/img_greymask/greymask_output_weights"]
    )
    out["blankmask_logits"] = (
        _gather_rows(level_out["blank_mask"], f["img_blank_lm_ids"]) @ W["cls/img_blankmask/blanmask_output_weights"]
    )
    out["target_raw_grey_features"] = _gather_rows(raw["grey_mask"], f["img_grey_lm_ids"])
    out["target_raw_blank_features"] = _gather_rows(raw["blank_mask"], f["img_blank_lm_ids"])
    return out


def _kld(t, p):
    t = tf.clip_by_value(t, 1e-7, 1.0)
    p = tf.clip_by_value(p, 1e-7, 1.0)
    return tf.reduce_sum(t * tf.math.log(t / p), axis=-1)


def losses(out, feats, cfg):
    f = {k: tf.convert_to_tensor(v) for k, v in feats.items()}
    F = cfg["patch_feature_size"]

    def ce(logits, labels):
        lp = tf.nn.log_softmax(logits)
        return -tf.reduce_mean(
            tf.reduce_sum(tf.one_hot(tf.reshape(tf.cast(labels, tf.int32), [-1]), logits.shape[-1]) * lp, -1)
        )

    lp = tf.nn.log_softmax(out["mlm_logits"])
    per = -tf.reduce_sum(
        tf.one_hot(tf.reshape(tf.cast(f["masked_lm_ids"], tf.int32), [-1]), cfg["vocab_size"]) * lp, -1
    )
    w = tf.reshape(tf.cast(f["masked_lm_weights"], tf.float32), [-1])
    rotation_key = "img_rotate_gt" if "img_rotate_gt" in f else "img_rotation_gt"
    g, k = cfg["masked_greymask_patch_num"], cfg["masked_blankmask_patch_num"]
    res = {
        "masked_lm_loss": tf.reduce_sum(w * per) / (tf.reduce_sum(w) + 1e-5),
        "next_sentence_loss": ce(out["nsp_logits"], f["nx_sent_labels"]),
        "rotation_loss": ce(out["rotation_logits"], f[rotation_key]),
        "jigsaw_loss": ce(out["jigsaw_logits"], f["img_jigsaw_gt"]),
        "camouflage_loss": ce(out["camouflage_logits"], f["img_camouflage_gt"]),
        "greymask_loss": tf.reduce_mean(
            _kld(
                tf.reshape(tf.nn.softmax(tf.cast(f["img_grey_mask_gt"], tf.float32)), [-1, g, F]),
                tf.reshape(tf.nn.softmax(out["greymask_logits"]), [-1, g, F]),
            )
        ),
        "blankmask_loss": tf.reduce_mean(
            _kld(
                tf.reshape(tf.nn.softmax(out["target_raw_blank_features"]), [-1, k, F]),
                tf.reshape(tf.nn.softmax(out["blankmask_logits"]), [-1, k, F]),
            )
        ),
    }
    res["total"] = tf.add_n(list(res.values()))
    return res


# ----------------------------------------------------------------------------- training
def train(weights, cfg, feats, steps, base_lr, train_steps, warmup_ratio=0.1, weight_decay=0.0):
    """TF1 get_train_op semantics: schedule, global-norm clip 1.0, then Adam (beta2 0.98) or the AdamW variant."""
    names = sorted(weights)
    V = {n: tf.Variable(weights[n]) for n in names}
    m = {n: tf.Variable(tf.zeros_like(weights[n])) for n in names}
    v = {n: tf.Variable(tf.zeros_like(weights[n])) for n in names}
    beta1, beta2 = 0.9, (0.999 if weight_decay > 0 else 0.98)
    b1p, b2p = beta1, beta2
    warmup = int(train_steps * warmup_ratio)
    step_losses, step_lrs = [], []
    for step in range(steps):
        decayed = base_lr * (1.0 - min(step, train_steps) / train_steps)
        lr = decayed * (step / warmup) if step < warmup else decayed
        with tf.GradientTape() as tape:
            loss = losses(forward(V, cfg, feats, "train"), feats, cfg)["total"]
        grads = tape.gradient(loss, [V[n] for n in names])
        grads = [tf.convert_to_tensor(gr) for gr in grads]
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        lr_t = lr * math.sqrt(1 - b2p) / (1 - b1p)
        for n, gr in zip(names, grads):
            m[n].assign(beta1 * m[n] + (1 - beta1) * gr)
            v[n].assign(beta2 * v[n] + (1 - beta2) * gr * gr)
            update = m[n] / (tf.sqrt(v[n]) + 1e-6)
            if weight_decay > 0 and not any(word in n for word in ("LayerNorm", "layer_norm", "bias")):
                update += weight_decay * V[n]
            V[n].assign_sub(lr_t * update)
        b1p *= beta1
        b2p *= beta2
        step_losses.append(float(loss))
        step_lrs.append(lr)
    return {n: V[n].numpy() for n in names}, step_losses, step_lrs


def load_golden_weights(prefix):
    reader = tf.train.load_checkpoint(prefix)
    out = {}
    for name in reader.get_variable_to_shape_map():
        if name.startswith(PREFIX) and not name.endswith(
            ("/Adam", "/Adam_1", "/AdamWeightDecayOptimizer", "/AdamWeightDecayOptimizer_1")
        ):
            out[name[len(PREFIX) :]] = reader.get_tensor(name)
    return out
