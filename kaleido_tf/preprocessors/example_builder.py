"""From crops, features, texts and task plans to example dicts in the shard schemas.

Feature layout of one example (F = patch feature size; slots as in `kaleido_patches`):
  img_feature_convert_rotation    [1 x F]   the level-1 crop turned by the rotation label
  img_feature_convert_jigsaw      [4 x F]   slot i holds the level-2 crop of cell perm[i]
  img_feature_convert_camouflage  [9 x F]   the labelled slot holds the donor crop
  img_feature_convert_grey_mask   [16 x F]  the img_grey_lm_ids crops are greyed
  img_feature_convert_blank_mask  [25 x F]  unchanged (the model blanks img_blank_lm_ids)
  img_grey_mask_gt                [2 x F]   colour (un-greyed) features of the greyed crops
Positions are always those of the original grid slots; image_mask is all ones (55).
Finetune and retrieval examples use the untransformed crops.
"""

import numpy as np

from kaleido_tf.preprocessors.kaleido_tasks import JIGSAW_PERMUTATIONS, grey_crop, rotate_crop
from kaleido_tf.utils.kaleido_levels import FEATURE_KEYS, LEVEL_OFFSETS, LEVEL_SIZES, NUM_PATCHES, POSITION_KEYS

_ROT, _JIG, _CAM, _GREY, _BLANK = LEVEL_OFFSETS


def extra_crops(base_crops, plan, donor_crop):
    """The crops a pretraining example needs beyond the 55 base crops.

    Returns (crops, where): `crops` a list of [S, S, 3] uint8 arrays and `where` the index in that
    list of "rotation" (absent when the rotation is 0), "donor" (absent when nothing is
    camouflaged) and "grey" (a list, one per greyed id).
    """
    crops, where = [], {"grey": []}
    if plan.rotation % 4:
        where["rotation"] = len(crops)
        crops.append(rotate_crop(base_crops[_ROT], plan.rotation))
    if plan.camouflage_slot is not None:
        if donor_crop is None:
            raise ValueError("the plan camouflages a slot but no donor crop was given")
        where["donor"] = len(crops)
        crops.append(np.asarray(donor_crop, np.uint8))
    for gid in plan.grey_ids:
        where["grey"].append(len(crops))
        crops.append(grey_crop(base_crops[_GREY + gid]))
    return crops, where


def transformed_crops(base_crops, plan, donor_crop):
    """All 55 crops as the pretraining example shows them (for inspection and tests): [55, S, S, 3]."""
    out = np.array(base_crops, copy=True)
    out[_ROT] = rotate_crop(base_crops[_ROT], plan.rotation)
    perm = JIGSAW_PERMUTATIONS[plan.jigsaw]
    for i, p in enumerate(perm):
        out[_JIG + i] = base_crops[_JIG + p]
    if plan.camouflage_slot is not None:
        out[_CAM + plan.camouflage_slot] = donor_crop
    for gid in plan.grey_ids:
        out[_GREY + gid] = grey_crop(base_crops[_GREY + gid])
    return out


def pretrain_features(base_features, plan, extra_features, where):
    """Per-level feature blocks of a pretraining example.

    Args:
      base_features: [55, F] features of the untransformed crops.
      plan: the KaleidoTaskPlan.
      extra_features: [E, F] features of `extra_crops(...)`, in that order.
      where: the index map returned by `extra_crops`.
    Returns:
      (features [55, F] in level order after the transformations, grey target [num_grey, F]).
    """
    base = np.asarray(base_features, np.float32)
    if base.shape[0] != NUM_PATCHES:
        raise ValueError(f"expected {NUM_PATCHES} base features, got {base.shape[0]}")
    out = base.copy()
    if "rotation" in where:
        out[_ROT] = extra_features[where["rotation"]]
    perm = JIGSAW_PERMUTATIONS[plan.jigsaw]
    out[_JIG : _JIG + 4] = base[[_JIG + p for p in perm]]
    if plan.camouflage_slot is not None:
        out[_CAM + plan.camouflage_slot] = extra_features[where["donor"]]
    grey_ids = list(plan.grey_ids)
    target = base[[_GREY + g for g in grey_ids]] if grey_ids else np.zeros((0, base.shape[1]), np.float32)
    for gid, j in zip(grey_ids, where["grey"]):
        out[_GREY + gid] = extra_features[j]
    return out, target


def image_fields(features, positions):
    """The image fields shared by all schemas from features [55, F] and positions [55, 5]."""
    features = np.asarray(features, np.float32)
    positions = np.asarray(positions, np.float32)
    fields = {}
    for feature_key, position_key, start, size in zip(FEATURE_KEYS, POSITION_KEYS, LEVEL_OFFSETS, LEVEL_SIZES):
        fields[feature_key] = features[start : start + size].reshape(-1)
        fields[position_key] = positions[start : start + size].reshape(-1)
    fields["image_mask"] = np.ones(NUM_PATCHES, np.int64)
    return fields


def pretrain_example(mlm, encoded, features, grey_target, positions, plan, itm_label):
    """A pretraining example dict (schema "pretrain").

    `itm_label` goes to nx_sent_labels: 1 = the text belongs to the image's product, 0 = it does not.
    """
    example = {
        "input_ids": mlm.input_ids,
        "input_mask": encoded.input_mask,
        "segment_ids": encoded.segment_ids,
        "masked_lm_positions": mlm.positions,
        "masked_lm_ids": mlm.label_ids,
        "masked_lm_weights": mlm.weights,
    }
    example.update(image_fields(features, positions))
    example.update(
        {
            "img_subtasks_flag": np.ones(1, np.int64),
            "img_grey_lm_ids": np.asarray(plan.grey_ids, np.int64),
            "img_blank_lm_ids": np.asarray(plan.blank_ids, np.int64),
            "img_rotate_gt": np.asarray([plan.rotation], np.int64),
            "img_jigsaw_gt": np.asarray([plan.jigsaw], np.int64),
            "img_camouflage_gt": np.asarray([plan.camouflage_label], np.int64),
            "img_grey_mask_gt": np.asarray(grey_target, np.float32).reshape(-1),
            "nx_sent_labels": np.asarray([itm_label], np.int64),
        }
    )
    return example


def _pair_fields(text_record, encoded, image_record, image_index, features, positions):
    """The fields the finetune and retrieval schemas share: a product text (its id, encoding and words) and a
    product image (its ids and patch fields)."""
    example = {
        "text_prod_id": text_record.product_id,
        "input_ids": encoded.input_ids,
        "input_mask": encoded.input_mask,
        "segment_ids": encoded.segment_ids,
        "prod_desc": text_record.text,
        "image_prod_id": image_record.product_id,
        "prod_img_id": image_record.image_id(image_index),
    }
    example.update(image_fields(features, positions))
    return example


def finetune_example(record, image_index, encoded, features, positions, category_id, subcategory_id):
    """A classification example dict (schema "finetune"): the product's own text and image."""
    example = _pair_fields(record, encoded, record, image_index, features, positions)
    example.update(
        {
            "img_category": record.category,
            "img_category_id": np.asarray([category_id], np.int64),
            "img_subcategory": record.subcategory,
            "img_subcategory_id": np.asarray([subcategory_id], np.int64),
        }
    )
    return example


def retrieval_example(text_record, encoded, image_record, image_index, features, positions, label):
    """A retrieval example dict (schema "retrieval"): one text against one image; label 1 = match."""
    example = _pair_fields(text_record, encoded, image_record, image_index, features, positions)
    example["nx_sent_labels"] = np.asarray([label], np.int64)
    return example
