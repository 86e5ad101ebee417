"""The pretraining task and loss names against the golden fixtures and their users."""

import os

import numpy as np

from kaleido_tf.utils.pretrain_tasks import ITM_LOSS, LOSS_NAMES, PATCH_TASKS, PRETRAIN_TASKS, TOTAL_LOSS

GOLDEN = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "golden", "tiny", "golden.npz")


def test_names():
    assert PATCH_TASKS == ("rotation", "jigsaw", "camouflage")
    assert PRETRAIN_TASKS == ("mlm", "itm", "rotation", "jigsaw", "camouflage")
    assert ITM_LOSS == "next_sentence_loss" and LOSS_NAMES[1] == ITM_LOSS
    assert len(LOSS_NAMES) == len(set(LOSS_NAMES)) == 7


def test_golden_losses_are_the_loss_names():
    golden = np.load(GOLDEN)
    stored = [key.split("/", 1)[1] for key in golden.files if key.startswith("loss/")]
    assert sorted(stored) == sorted((*LOSS_NAMES, TOTAL_LOSS))
    heads = {key.split("/", 1)[1] for key in golden.files if key.startswith("eval/") and key.endswith("_logits")}
    assert {f"{task}_logits" for task in PATCH_TASKS} <= heads


def test_users_import_the_owner():
    from kaleido_tf import losses
    from kaleido_tf.evaluators import pretrain

    assert losses.LOSS_NAMES is LOSS_NAMES
    assert pretrain.PRETRAIN_TASKS is PRETRAIN_TASKS
