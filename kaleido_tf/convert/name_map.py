"""The TF1 (EasyTransfer) -> kaleido_tf variable-name map, kept as data.

Keras-side names are variable paths relative to the model (the model's own name dropped), e.g.
`bert/encoder/layer_0/attention/query/kernel`. Every rule is anchored and matched whole; nothing is matched
by substring.
"""

# The EasyTransfer layer name in front of every backbone and pretraining-head variable. Finetuned checkpoints
# put their task heads at the top level, without it.
TF1_MODEL_PREFIXES = ("kaleido_bert_pre_trained_model/",)

_LEVELS = "rotation|jigsaw|camouflage|greymask"

# (TF1 regex, Keras path template). Backbone and pretraining heads.
RENAME_RULES = (
    # Text embeddings.
    (r"bert/embeddings/(word_embeddings|token_type_embeddings|position_embeddings)", r"bert/embeddings/\1"),
    (r"bert/embeddings/LayerNorm/(gamma|beta)", r"bert/embeddings/LayerNorm/\1"),
    # Patch embeddings: one shared position projection, then one block per kaleido level.
    (r"bert/position_dense", r"bert/position_dense"),
    (rf"bert/({_LEVELS})_embeddings/\1_projector", r"bert/\1_embeddings/projector"),
    (rf"bert/({_LEVELS})_embeddings/\1_type_embeddings", r"bert/\1_embeddings/type_embeddings"),
    (rf"bert/({_LEVELS})_embeddings/\1EmbLayerNorm/(gamma|beta)", r"bert/\1_embeddings/LayerNorm/\2"),
    # The blank level's block is named `blank_embeddings`, its variables `blankmask_*`.
    (r"bert/blank_embeddings/blankmask_projector", r"bert/blankmask_embeddings/projector"),
    (r"bert/blank_embeddings/blankmask_type_embeddings", r"bert/blankmask_embeddings/type_embeddings"),
    (r"bert/blank_embeddings/blankmaskEmbLayerNorm/(gamma|beta)", r"bert/blankmask_embeddings/LayerNorm/\1"),
    # Encoder blocks.
    (
        r"bert/encoder/layer_(\d+)/attention/self/(query|key|value)/(kernel|bias)",
        r"bert/encoder/layer_\1/attention/\2/\3",
    ),
    (
        r"bert/encoder/layer_(\d+)/attention/output/dense/(kernel|bias)",
        r"bert/encoder/layer_\1/attention/output_dense/\2",
    ),
    (
        r"bert/encoder/layer_(\d+)/attention/output/LayerNorm/(gamma|beta)",
        r"bert/encoder/layer_\1/attention_LayerNorm/\2",
    ),
    (r"bert/encoder/layer_(\d+)/intermediate/dense/(kernel|bias)", r"bert/encoder/layer_\1/intermediate_dense/\2"),
    (r"bert/encoder/layer_(\d+)/output/dense/(kernel|bias)", r"bert/encoder/layer_\1/output_dense/\2"),
    (r"bert/encoder/layer_(\d+)/output/LayerNorm/(gamma|beta)", r"bert/encoder/layer_\1/output_LayerNorm/\2"),
    (r"bert/pooler/dense/(kernel|bias)", r"bert/pooler/\1"),
    # Pretraining heads.
    (r"cls/predictions/transform/dense/(kernel|bias)", r"mlm_head/transform_dense/\1"),
    (r"cls/predictions/transform/LayerNorm/(gamma|beta)", r"mlm_head/transform_LayerNorm/\1"),
    (r"cls/predictions/output_bias", r"mlm_head/output_bias"),
    (r"cls/seq_relationship/output_(weights|bias)", r"itm_head/output_\1"),
    (r"cls/img_rotation/rotation_output_(weights|bias)", r"rotation_head/output_\1"),
    (r"cls/img_jigsaw/jiasaw_output_weights", r"jigsaw_head/output_weights"),  # spelt so in the original
    (r"cls/img_jigsaw/jigsaw_output_bias", r"jigsaw_head/output_bias"),
    (r"cls/img_camouflage/camouflage_output_(weights|bias)", r"camouflage_head/output_\1"),
    (r"cls/img_greymask/greymask_output_weights", r"greymask_head/output_weights"),
    (r"cls/img_blankmask/blanmask_output_weights", r"blankmask_head/output_weights"),  # spelt so in the original
)

# Finetuning heads: top level in finetuned checkpoints.
FINETUNE_HEAD_RULES = ((r"(catepred|subcatepred)_dense/(kernel|bias)", r"\1_dense/\2"),)

# Checkpoint entries that are not model weights: optimizer slots and bookkeeping. Skipped, and listed.
SKIP_PATTERNS = (
    (r"global_step", "step counter"),
    (r"(.+/)?beta1_power", "Adam accumulator"),
    (r"(.+/)?beta2_power", "Adam accumulator"),
    (r".+/Adam(_1)?", "Adam slot"),
    (r".+/(m|v)", "AdamW slot"),
    (r".+/AdamWeightDecayOptimizer(_1)?", "AdamW slot"),
    (r".+/(LAMB|Lamb)(_1)?", "LAMB slot"),
)

# Keras paths of the pretraining heads and of the finetuning heads: a checkpoint may carry heads of a
# task other than the model being loaded (a finetuned checkpoint still holds its pretraining heads, the
# golden checkpoint holds a category head); those are reported as not used, not as errors.
PRETRAIN_HEAD_PATTERN = r"(mlm|itm|rotation|jigsaw|camouflage|greymask|blankmask)_head/.+"
FINETUNE_HEAD_PATTERN = r"(catepred|subcatepred)_dense/.+"
