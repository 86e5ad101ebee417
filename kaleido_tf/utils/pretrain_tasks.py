"""The pretraining tasks and losses: the one place that names them.

Five tasks are scored by an accuracy: masked LM (`mlm`), image-text matching (`itm`, the `nsp_logits` head) and
the three patch classification tasks (PATCH_TASKS) of kaleido levels 1 to 3. Seven losses are summed into the
pretraining total: one per task plus the grey-mask and blank-mask reconstructions of levels 4 and 5. The loss
names are the original's (the ITM loss is `next_sentence_loss`), so logs and `loss_weights` read alike.
"""

PATCH_TASKS = ("rotation", "jigsaw", "camouflage")
PRETRAIN_TASKS = ("mlm", "itm") + PATCH_TASKS

MLM_LOSS = "masked_lm_loss"
ITM_LOSS = "next_sentence_loss"
LOSS_NAMES = (
    MLM_LOSS,
    ITM_LOSS,
    *(f"{task}_loss" for task in PATCH_TASKS),
    "greymask_loss",
    "blankmask_loss",
)
TOTAL_LOSS = "total"
