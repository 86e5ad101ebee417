"""Kaleido-BERT with a classification head on the pooled output (category / subcategory finetuning)."""

import keras

from kaleido_tf.model_zoo.kaleidobert_backbone import KaleidoBERTBackbone
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import as_config

# Task name -> (head layer name, default number of classes), as the original finetuning scripts use them.
TASKS = {"catepred": ("catepred_dense", 48), "subcatepred": ("subcatepred_dense", 122)}


@keras.saving.register_keras_serializable(package="kaleido_tf")
class KaleidoBERTClassifier(keras.Model):
    """pooled_output -> dropout (rate 0.1 in training) -> dense(num_classes).

    The head is named `catepred_dense` or `subcatepred_dense` after the task, and initialised with a truncated
    normal of stddev 0.01, as in the original. Returns {"logits": [B, C], "pooled_output": [B, H]}.

    Args:
        config: a KaleidoBERTConfig (or its dict).
        task: "catepred" or "subcatepred"; names the head.
        num_classes: classes; the task's default (48 / 122) when None.
        head_dropout_prob: dropout rate before the head (not a `config.json` key: the original fixes it at 0.1).
    """

    def __init__(
        self,
        config=None,
        task="catepred",
        num_classes=None,
        head_dropout_prob=0.1,
        use_image_mask=False,
        fused_qkv=False,
        **kwargs,
    ):
        if task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
        kwargs.setdefault("name", f"kaleido_bert_{task}")
        super().__init__(**kwargs)
        self.config = as_config(config)
        self.task = task
        self.num_classes = int(num_classes or TASKS[task][1])
        self.head_dropout_prob = head_dropout_prob
        self.use_image_mask = use_image_mask
        self.fused_qkv = fused_qkv
        self.backbone = KaleidoBERTBackbone.from_kaleido_config(
            self.config, use_image_mask=use_image_mask, fused_qkv=fused_qkv, name="bert", dtype=self.dtype_policy
        )
        self.head_dropout = keras.layers.Dropout(head_dropout_prob, name="head_dropout", dtype=self.dtype_policy)
        self.head = keras.layers.Dense(
            self.num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
            name=TASKS[task][0],
            dtype=self.dtype_policy,
        )

    def build(self, input_shape=None):
        self.backbone.build()
        self.head.build((None, self.config.hidden_size))
        self.built = True

    def call(self, features, training=False):
        _, pooled_output = self.backbone(features, training=training)  # [B, H]
        logits = self.head(self.head_dropout(pooled_output, training=training))  # [B, C]
        return {"logits": logits, "pooled_output": pooled_output}

    def get_config(self):
        config = super().get_config()
        config.update(
            config=self.config.to_dict(),
            task=self.task,
            num_classes=self.num_classes,
            head_dropout_prob=self.head_dropout_prob,
            use_image_mask=self.use_image_mask,
            fused_qkv=self.fused_qkv,
        )
        return config
