"""Kaleido-BERT with its seven pretraining heads."""

import keras
from keras import ops

from kaleido_tf.layers.heads import MLMHead, PatchClassificationHead, PatchReconstructionHead
from kaleido_tf.layers.itc_head import ITCHead
from kaleido_tf.layers.utils import gather_indexes
from kaleido_tf.model_zoo.kaleidobert_backbone import KaleidoBERTBackbone
from kaleido_tf.model_zoo.kaleidobert_config import KaleidoBERTConfig
from kaleido_tf.utils.kaleido_levels import LEVEL_NAMES, feature_key

MODES = ("train", "eval", "predict")
# Both spellings of the rotation label occur in the wild: `img_rotate_gt` in the released scripts,
# `img_rotation_gt` elsewhere.
ROTATION_LABEL_KEYS = ("img_rotate_gt", "img_rotation_gt")


def as_config(config):
    if isinstance(config, KaleidoBERTConfig):
        return config
    if isinstance(config, dict):
        return KaleidoBERTConfig.from_dict(config)
    raise TypeError(f"config must be a KaleidoBERTConfig or a dict, got {type(config).__name__}")


@keras.saving.register_keras_serializable(package="kaleido_tf")
class KaleidoBERTPretrainModel(keras.Model):
    """Backbone + MLM, ITM, rotation, jigsaw, camouflage, grey-mask and blank-mask heads.

    `model(features, training=False)` gives train/eval semantics: the blank-level input features at
    `img_blank_lm_ids` are zeroed before the backbone sees them. `mode="predict"` leaves them as they are.
    Returns a dict: mlm_logits [B*P, V], nsp_logits [B, 2], rotation_logits, jigsaw_logits,
    camouflage_logits [B, labels], greymask_logits and target_raw_grey_features [B*2, F], blankmask_logits
    and target_raw_blank_features [B*3, F], pooled_output [B, H], sequence_output [B, S, H].

    Args:
        config: a KaleidoBERTConfig (or its dict).
        use_image_mask: honour `image_mask` in attention (the original does not: quirk 2).
        fused_qkv: one [H, 3H] matmul for Q, K and V (same variables and values).
        itc_embedding_size: with a size D, an ITC head (`itc_head`, layers/itc_head.py) too, and the outputs add
            itc_text_embedding, itc_image_embedding [B, D] (text-only and image-only passes) and itc_temperature,
            for ITC as a pretraining loss. None (the default): the original seven heads alone.
    """

    def __init__(self, config=None, use_image_mask=False, fused_qkv=False, itc_embedding_size=None, **kwargs):
        kwargs.setdefault("name", "kaleido_bert_pretrain")
        super().__init__(**kwargs)
        self.config = as_config(config if config is not None else KaleidoBERTConfig())
        self.use_image_mask = use_image_mask
        self.fused_qkv = fused_qkv
        self.itc_embedding_size = itc_embedding_size
        c = self.config
        policy = self.dtype_policy
        self.backbone = KaleidoBERTBackbone.from_kaleido_config(
            c, use_image_mask=use_image_mask, fused_qkv=fused_qkv, name="bert", dtype=policy
        )
        self.mlm_head = MLMHead(c.vocab_size, c.hidden_size, c.initializer_range, name="mlm_head", dtype=policy)
        self.itm_head = PatchClassificationHead(1, c.hidden_size, 2, c.initializer_range, name="itm_head", dtype=policy)
        self.rotation_head = PatchClassificationHead(
            c.img_rotation_seq_len,
            c.hidden_size,
            c.img_rotation_label_num,
            c.initializer_range,
            name="rotation_head",
            dtype=policy,
        )
        self.jigsaw_head = PatchClassificationHead(
            c.img_jigsaw_seq_len,
            c.hidden_size,
            c.img_jigsaw_label_num,
            c.initializer_range,
            name="jigsaw_head",
            dtype=policy,
        )
        self.camouflage_head = PatchClassificationHead(
            c.img_camouflage_seq_len,
            c.hidden_size,
            c.img_camouflage_label_num,
            c.initializer_range,
            name="camouflage_head",
            dtype=policy,
        )
        self.greymask_head = PatchReconstructionHead(
            c.hidden_size, c.patch_feature_size, c.initializer_range, name="greymask_head", dtype=policy
        )
        self.blankmask_head = PatchReconstructionHead(
            c.hidden_size, c.patch_feature_size, c.initializer_range, name="blankmask_head", dtype=policy
        )
        self.itc_head = None
        if itc_embedding_size:
            self.itc_head = ITCHead(
                c.hidden_size, itc_embedding_size, initializer_range=c.initializer_range, name="itc_head", dtype=policy
            )

    def build(self, input_shape=None):
        self.backbone.build()
        for head in (
            self.mlm_head,
            self.itm_head,
            self.rotation_head,
            self.jigsaw_head,
            self.camouflage_head,
            self.greymask_head,
            self.blankmask_head,
        ):
            head.build()
        if self.itc_head is not None:
            self.itc_head.build()
        self.built = True

    # ------------------------------------------------------------------ helpers
    def _blank_out(self, blank_features, blank_ids):
        """Zeroes the blank-level patches at `blank_ids`: [B, 25, F] x [B, 3] -> [B, 25, F].

        As in the original, the keep factor is 1 - (times the id occurs), so an id listed twice flips the
        sign of that patch instead of zeroing it.
        """
        n = self.config.img_blankmask_seq_len
        hits = ops.sum(ops.one_hot(ops.cast(blank_ids, "int32"), n, dtype=blank_features.dtype), axis=1)  # [B, n]
        return blank_features * ops.expand_dims(1.0 - hits, -1)

    def _ids_or_default(self, features, key, count, batch_size):
        ids = features.get(key)
        if ids is None:
            return ops.ones((batch_size, count), "int32")
        return ops.reshape(ops.cast(ids, "int32"), (batch_size, -1))

    # ------------------------------------------------------------------ call
    def call(self, features, training=False, mode=None):
        if mode is None:
            mode = "train" if training else "eval"
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        c = self.config
        features = dict(features)
        batch_size = self.backbone.batch_size_of(features)
        levels = {name: n for name, _, n in c.level_lengths()}
        text_len = ops.shape(features["input_ids"])[1] if features.get("input_ids") is not None else c.text_seq_len

        grey_ids = self._ids_or_default(features, "img_grey_lm_ids", c.masked_greymask_patch_num, batch_size)
        blank_ids = self._ids_or_default(features, "img_blank_lm_ids", c.masked_blankmask_patch_num, batch_size)
        grey_key, blank_key = feature_key("greymask"), feature_key("blankmask")

        def level_features(key, n):
            if features.get(key) is None:
                return ops.zeros((batch_size, n, c.patch_feature_size), self.compute_dtype)
            return ops.reshape(ops.cast(features[key], self.compute_dtype), (batch_size, n, c.patch_feature_size))

        grey_features = level_features(grey_key, levels["greymask"])  # [B, 16, F]
        blank_features = level_features(blank_key, levels["blankmask"])  # [B, 25, F]
        if mode != "predict" and features.get("img_blank_lm_ids") is not None:
            features[blank_key] = self._blank_out(blank_features, blank_ids)

        sequence_output, pooled_output = self.backbone(features, training=training)  # [B, S, H], [B, H]

        # Split the sequence into text and the five levels.
        text_output = sequence_output[:, :text_len]  # [B, T, H]
        level_outputs, start = {}, text_len
        for level in LEVEL_NAMES:
            level_outputs[level] = sequence_output[:, start : start + levels[level]]  # [B, n, H]
            start = start + levels[level]

        masked_positions = features.get("masked_lm_positions")
        if masked_positions is None:
            masked_positions = ops.ones((batch_size, text_len), "int32")
        outputs = {}
        if self.itc_head is not None:
            text_only = {k: features[k] for k in ("input_ids", "input_mask", "segment_ids") if k in features}
            text_cls = self.backbone.encode_text(text_only, training=training)[0][:, 0]  # [B, H]
            image_cls = self.backbone.encode_image(features, training=training)[0][:, 0]  # [B, H]
            outputs["itc_text_embedding"] = self.itc_head.project_text(text_cls)  # [B, D]
            outputs["itc_image_embedding"] = self.itc_head.project_image(image_cls)  # [B, D]
            outputs["itc_temperature"] = self.itc_head.clipped_temperature()
        return {
            **outputs,
            "mlm_logits": self.mlm_head(text_output, masked_positions, self.backbone.embeddings.word_embeddings),
            "nsp_logits": self.itm_head(pooled_output),
            "rotation_logits": self.rotation_head(level_outputs["rotation"]),
            "jigsaw_logits": self.jigsaw_head(level_outputs["jigsaw"]),
            "camouflage_logits": self.camouflage_head(level_outputs["camouflage"]),
            "greymask_logits": self.greymask_head(level_outputs["greymask"], grey_ids),
            "target_raw_grey_features": gather_indexes(grey_features, grey_ids),
            "blankmask_logits": self.blankmask_head(level_outputs["blankmask"], blank_ids),
            "target_raw_blank_features": gather_indexes(blank_features, blank_ids),
            "pooled_output": pooled_output,
            "sequence_output": sequence_output,
        }

    def itm_logits(self, features, training=False):
        """Image-text matching alone, with predict semantics: {"nsp_logits" [B, 2], "pooled_output" [B, H]}.

        The same values as `call(features, mode="predict")` gives under those keys, without the other heads
        and with the last encoder block computing position 0 only (about a tenth fewer FLOPs for the base
        model).
        """
        pooled_output = self.backbone.pooled_output(features, training=training)  # [B, H]
        return {"nsp_logits": self.itm_head(pooled_output), "pooled_output": pooled_output}

    def get_config(self):
        config = super().get_config()
        config.update(
            config=self.config.to_dict(),
            use_image_mask=self.use_image_mask,
            fused_qkv=self.fused_qkv,
        )
        if self.itc_embedding_size:
            config["itc_embedding_size"] = self.itc_embedding_size
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(**config)
