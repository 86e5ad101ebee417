"""Alignment-guided masking: aligned pairs first, one side each, budgets per level."""

import json

import numpy as np
import pytest

from kaleido_tf.preprocessors.alignment_masking import AlignmentGuidedMasker
from kaleido_tf.preprocessors.alignments import Alignment, AlignmentError, AlignmentTable
from kaleido_tf.preprocessors.kaleido_tasks import KaleidoTaskSampler
from kaleido_tf.preprocessors.masked_lm import MaskedLmSampler
from kaleido_tf.preprocessors.text_tokenizer import build_tokenizer

TEXT = (
    "navy striped cotton shirt with a white collar, long sleeves, two chest pockets and pearl buttons "
    "on a slim body for the office"
)
PAIRS = [
    Alignment("collar", 4, 1),
    Alignment("pockets", 5, 12),
    Alignment("buttons", 5, 17),
    Alignment("striped", 3, 4),
    Alignment("sleeves", 4, 9),
    Alignment("navy", 1, 0),
    Alignment("zipper", 5, 3),
]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer("wordpiece")


def _positions(tok, enc, word):
    return AlignmentGuidedMasker(tok).find_word(enc, word)


def test_find_word_on_word_boundaries(tok):
    enc = tok.encode("t-shirt shirt shirts overshirt shirt", 24)
    found = AlignmentGuidedMasker(tok).find_word(enc, "shirt")
    words = sorted(set(enc.word_ids[found].tolist()))
    assert len(words) == 3  # "t-shirt" splits into t / - / shirt; the two plain "shirt"s; not "shirts"
    assert AlignmentGuidedMasker(tok).find_word(enc, "T-Shirt") == [1, 2, 3]
    assert AlignmentGuidedMasker(tok).find_word(enc, "zipper") == []


def test_token_side_masks_aligned_words_first(tok):
    enc = tok.encode(TEXT, 40)
    mlm = MaskedLmSampler(tok, max_predictions=10, masked_lm_prob=0.3)
    budget = mlm.num_to_predict(int((enc.word_ids >= 0).sum()))
    assert budget >= 5  # room for the five aligned words
    masker = AlignmentGuidedMasker(tok, token_side_prob=1.0)
    aligned = {w: _positions(tok, enc, w) for w in ("collar", "pockets", "buttons", "striped", "sleeves")}
    for seed in range(20):
        rng = np.random.default_rng(seed)
        plan = masker.plan(PAIRS, enc, rng, budget)
        assert plan.stats["unmatched"] == 1 and plan.stats["pairs"] == 6  # level 1 ignored, zipper unmatched
        assert plan.stats["token_side"] == 5 and plan.stats["patch_side"] == 0
        assert sorted(map(tuple, plan.forced_token_groups)) == sorted(tuple(v) for v in aligned.values())
        assert plan.protected_patches == {3: {4}, 4: {1, 9}, 5: {12, 17}}
        res = mlm.sample(enc, rng, forced_groups=plan.forced_token_groups, protected=plan.protected_positions)
        masked = set(res.positions[: res.num_predictions].tolist())
        assert all(set(v) <= masked for v in aligned.values())  # the aligned words come first
        task = KaleidoTaskSampler().sample(rng, forced=plan.forced_patches, protected=plan.protected_patches)
        assert 1 not in task.grey_ids and 9 not in task.grey_ids and not {12, 17} & set(task.blank_ids)
        assert task.camouflage_slot != 4


def test_patch_side_respects_level_budgets(tok):
    enc = tok.encode(TEXT, 40)
    pairs = PAIRS + [
        Alignment("chest", 3, 0),
        Alignment("pearl", 5, 20),
        Alignment("slim", 5, 21),
        Alignment("office", 4, 15),
    ]
    masker = AlignmentGuidedMasker(tok, token_side_prob=0.0)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        plan = masker.plan(pairs, enc, rng, token_budget=6)
        assert len(plan.forced_patches[3]) == 1 and len(plan.forced_patches[4]) == 2
        assert len(plan.forced_patches[5]) == 3
        # a pair whose patch budget is spent falls back to its token side
        assert plan.stats["patch_side"] == 6 and plan.stats["token_side"] == 3
        task = KaleidoTaskSampler().sample(rng, forced=plan.forced_patches, protected=plan.protected_patches)
        assert task.camouflage_slot == plan.forced_patches[3][0]
        assert set(task.grey_ids) == set(plan.forced_patches[4])
        assert set(task.blank_ids) == set(plan.forced_patches[5])
        res = MaskedLmSampler(tok, max_predictions=6).sample(
            enc, rng, forced_groups=plan.forced_token_groups, protected=plan.protected_positions
        )
        assert not set(res.positions[: res.num_predictions].tolist()) & plan.protected_positions


def test_never_both_sides_of_a_pair(tok):
    enc = tok.encode(TEXT, 40)
    masker = AlignmentGuidedMasker(tok)
    level_offset = {3: 0, 4: 100, 5: 200}
    sides = {"token": 0, "patch": 0}
    word_positions = {pair.word: set(masker.find_word(enc, pair.word)) for pair in PAIRS}
    for seed in range(200):
        rng = np.random.default_rng(seed)
        plan = masker.plan(PAIRS, enc, rng, token_budget=6)
        masked_tokens = {p for g in plan.forced_token_groups for p in g}
        masked_patches = {level_offset[lv] + i for lv, ids in plan.forced_patches.items() for i in ids}
        for pair in PAIRS:
            if pair.level < 3 or pair.word == "zipper":
                continue
            token_masked = bool(word_positions[pair.word] & masked_tokens)
            patch_masked = level_offset[pair.level] + pair.patch in masked_patches
            assert not (token_masked and patch_masked)
            sides["token"] += token_masked
            sides["patch"] += patch_masked
        assert sum(len(g) for g in plan.forced_token_groups) <= 6
    assert 0.3 < sides["token"] / (sides["token"] + sides["patch"]) < 0.7  # a fair coin, within budgets


def test_alignment_table_reads_and_checks(tmp_path):
    path = tmp_path / "align.jsonl"
    lines = [
        {"product_id": "p1", "image": 0, "alignments": [{"token": "collar", "level": 4, "patch": 3}]},
        {"product_id": "p1", "image": 0, "alignments": [{"word": "sleeve", "level": 5, "patch": 24}]},
        {"product_id": "p2", "image": 1, "alignments": []},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    table = AlignmentTable(str(path))
    assert table.get("p1", 0) == [Alignment("collar", 4, 3), Alignment("sleeve", 5, 24)]
    assert table.get("p1", 1) == [] and len(table) == 2
    assert len(AlignmentTable(str(path), keep=lambda pid: pid == "p2")) == 1
    for bad, needle in [
        (
            {"product_id": "p", "image": 0, "alignments": [{"token": "x", "level": 4, "patch": 16}]},
            r"alignments\[0\]\.patch must be in 0\.\.15 for level 4",
        ),
        ({"product_id": "p", "image": -1, "alignments": []}, "field 'image'"),
        ({"product_id": "p", "image": 0, "alignments": [{"level": 3, "patch": 1}]}, "'token' or 'word'"),
        (
            {"product_id": "p", "image": 0, "alignments": [{"token": "a", "level": 6, "patch": 1}]},
            r"level must be 1\.\.5",
        ),
    ]:
        path.write_text(json.dumps(lines[0]) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(AlignmentError, match="align.jsonl:2: .*" + needle):
            AlignmentTable(str(path))


def test_box_alignments_become_the_most_overlapping_cells(tmp_path):
    from PIL import Image

    from kaleido_tf.preprocessors.alignments import resolve_alignments
    from kaleido_tf.preprocessors.kaleido_patches import KaleidoPatchGenerator

    path = tmp_path / "a.jsonl"
    path.write_text(
        json.dumps(
            {
                "product_id": "p",
                "image_index": 1,
                "alignments": [
                    {"word": "pocket", "box": [0.05, 0.05, 0.15, 0.12]},  # inside the top-left cell of every level
                    {"word": "hem", "box": [0.0, 0.85, 1.0, 1.0]},  # along the bottom edge
                    {"token": "collar", "level": 4, "patch": 2},
                ],
            }
        )
        + "\n"
    )
    table = AlignmentTable(str(path))
    raw = table.get("p", 1)
    assert raw[0] == Alignment("pocket", box=(0.05, 0.05, 0.15, 0.12))
    patches = KaleidoPatchGenerator(crop_size=8, foreground=None)(Image.new("RGB", (60, 60)))  # equal cells
    resolved = resolve_alignments(raw, (60, 60), patches.boxes)
    assert resolved[:3] == [Alignment("pocket", 3, 0), Alignment("pocket", 4, 0), Alignment("pocket", 5, 0)]
    # the hem box covers the whole bottom row equally: the lowest index of that row wins
    assert resolved[3:6] == [Alignment("hem", 3, 6), Alignment("hem", 4, 12), Alignment("hem", 5, 20)]
    assert resolved[6] == Alignment("collar", 4, 2)
    path.write_text(json.dumps({"product_id": "p", "image": 0, "alignments": [{"word": "x", "box": [0.5, 0, 0.4, 1]}]}))
    with pytest.raises(AlignmentError, match=r"a.jsonl:1: alignments\[0\]\.box must be"):
        AlignmentTable(str(path))
