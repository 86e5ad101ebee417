"""Caption generation: beam 1 equals greedy, stops at [SEP] or the maximum length, batched, in tf.function."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.model_zoo import KaleidoBERTCaptioner, caption_decoding, registry
from kaleido_tf.tasks.caption_task import mask_caption_tokens
from tests.caption.caption_data import SPECIAL_IDS, TINY_CHECKPOINT, VOCAB, random_patches

PAD, CLS, SEP, MASK = (SPECIAL_IDS[k] for k in ("pad_id", "cls_id", "sep_id", "mask_id"))
TOKENS = caption_decoding.CaptionTokens(**SPECIAL_IDS)


@pytest.fixture(scope="module")
def model():
    # A random tiny model with large weights: its choices depend on the image and on the prefix.
    keras.utils.set_random_seed(0)
    config = registry.config_for(TINY_CHECKPOINT).replace(initializer_range=0.3)
    model = KaleidoBERTCaptioner(config, max_caption_length=7, **SPECIAL_IDS)
    model.build()
    bias = np.zeros(config.vocab_size, np.float32)
    bias[SEP] = 3.0  # some captions end before the maximum length
    model.mlm_head.output_bias.assign(bias)
    return model


@pytest.fixture(scope="module")
def patches():
    return {k: tf.constant(v) for k, v in random_patches(4, seed=1).items()}


def _sequence_log_prob(model, patches, ids):
    """Sum of the model's log-probabilities of each caption (up to its [SEP]), re-scored step by step."""
    fn = model.step_logits_fn(patches)
    width = ids.shape[1] + 1
    buf = np.full((ids.shape[0], width), PAD, np.int32)
    buf[:, 0] = CLS
    buf[:, 1:] = ids
    totals = np.zeros(ids.shape[0])
    done = np.zeros(ids.shape[0], bool)
    for t in range(1, width):
        step_ids = buf.copy()
        step_ids[:, t] = MASK
        mask = (np.arange(width)[None] <= t).astype(np.int32).repeat(ids.shape[0], 0)
        lp = tf.nn.log_softmax(fn(tf.constant(step_ids), tf.constant(mask), t)).numpy()
        lp[:, list(TOKENS.banned_ids())] += caption_decoding.NEG_INF
        for b in range(ids.shape[0]):
            if not done[b]:
                totals[b] += lp[b, buf[b, t]]
                done[b] = buf[b, t] == SEP
    return totals


def test_beam_one_equals_greedy(model, patches):
    greedy = model.generate(patches, beam_size=1).numpy()
    beam1 = caption_decoding.beam_search_decode(model.step_logits_fn(patches), 4, 7, 1, TOKENS).numpy()
    np.testing.assert_array_equal(greedy, beam1)
    assert greedy.shape == (4, 7) and greedy.dtype == np.int32
    assert len({tuple(r) for r in greedy}) > 1  # the captions depend on the image


def test_greedy_and_beam_in_tf_function_match_eager(model, patches):
    eager_greedy = model.generate(patches).numpy()
    eager_beam = model.generate(patches, beam_size=3).numpy()
    fn = tf.function(lambda f: (model.generate(f), model.generate(f, beam_size=3)))
    graph_greedy, graph_beam = fn(patches)
    np.testing.assert_array_equal(graph_greedy.numpy(), eager_greedy)
    np.testing.assert_array_equal(graph_beam.numpy(), eager_beam)
    # Batched: each example decodes as it does alone.
    alone = model.generate({k: v[2:3] for k, v in patches.items()}, beam_size=3).numpy()
    np.testing.assert_array_equal(alone[0], eager_beam[2])
    # Beam search finds captions at least as likely as greedy's here, and never emits a banned token.
    greedy_lp = _sequence_log_prob(model, patches, eager_greedy)
    beam_lp = _sequence_log_prob(model, patches, eager_beam)
    assert np.all(beam_lp >= greedy_lp - 1e-4)
    assert not np.isin(eager_beam, [CLS, MASK]).any()


@pytest.mark.parametrize("beam_size", [1, 3])
def test_stops_at_sep(model, patches, beam_size):
    bias = model.mlm_head.output_bias
    saved = bias.numpy()
    try:
        forced = saved.copy()
        forced[SEP] = 50.0  # [SEP] wins at the first step
        bias.assign(forced)
        ids = model.generate(patches, beam_size=beam_size).numpy()
    finally:
        bias.assign(saved)
    assert (ids[:, 0] == SEP).all() and (ids[:, 1:] == PAD).all()


@pytest.mark.parametrize("beam_size", [1, 2])
def test_stops_at_max_length(model, patches, beam_size):
    bias = model.mlm_head.output_bias
    saved = bias.numpy()
    try:
        forced = saved.copy()
        forced[SEP] = -50.0  # [SEP] never wins
        bias.assign(forced)
        ids = model.generate(patches, max_length=5, beam_size=beam_size).numpy()
    finally:
        bias.assign(saved)
    assert ids.shape == (4, 5)
    assert not np.isin(ids, [SEP, PAD, CLS, MASK]).any()


@pytest.mark.parametrize("beam_size", [1, 3])
def test_sep_after_some_tokens_then_padding(model, patches, beam_size):
    ids = model.generate(patches, max_length=7, beam_size=beam_size).numpy()
    ended = 0
    for row in ids:
        if SEP in row:
            first = list(row).index(SEP)
            ended += first > 0
            assert (row[first + 1 :] == PAD).all()
            assert not np.isin(row[:first], [PAD, CLS, MASK]).any()
    assert ended >= 1  # at least one caption ended at [SEP] after some words


def test_ids_to_text():
    ids = [VOCAB.index(t) for t in ("red", "dress", "##es", ",", "[PAD]", "long")] + [SEP, VOCAB.index("blue")]
    assert caption_decoding.ids_to_text(ids, VOCAB, TOKENS) == "red dresses , long"


def test_mask_caption_tokens():
    input_ids = tf.constant([[CLS, 5, 6, 10, SEP, PAD, PAD, PAD], [CLS, 7, SEP, PAD, PAD, PAD, PAD, PAD]])
    input_mask = tf.cast(input_ids != PAD, tf.int32)
    uniform = tf.random.stateless_uniform([2, 8], seed=(1, 2))
    masked, positions, ids, weights = (
        t.numpy() for t in mask_caption_tokens(input_ids, input_mask, 0.5, 3, MASK, PAD, uniform)
    )
    assert weights.sum(axis=1).tolist() == [2.0, 1.0]  # round(0.5 * 4) and max(1, round(0.5 * 2)) = 1
    for b in range(2):
        chosen = positions[b][weights[b] > 0]
        assert len(set(chosen)) == len(chosen) and (chosen >= 1).all()
        np.testing.assert_array_equal(ids[b][weights[b] > 0], input_ids.numpy()[b][chosen])
        assert (masked[b][chosen] == MASK).all()
        untouched = np.setdiff1d(np.arange(8), chosen)
        np.testing.assert_array_equal(masked[b][untouched], input_ids.numpy()[b][untouched])
        assert masked[b][0] == CLS and (masked[b][input_mask.numpy()[b] == 0] == PAD).all()


def test_repeated_ngram_bans():
    ids = tf.constant([[CLS, 5, 6, 5, 0, 0], [CLS, 7, 7, 7, 0, 0]])
    bans = caption_decoding._repeated_ngram_bans(ids, 4, 2, 10).numpy()  # next position 4; last token ids[:, 3]
    assert np.flatnonzero(bans[0]).tolist() == [6]  # "5 6" was seen: after 5, 6 is banned
    assert np.flatnonzero(bans[1]).tolist() == [7]
    bans1 = caption_decoding._repeated_ngram_bans(ids, 4, 1, 10).numpy()  # no token twice
    assert np.flatnonzero(bans1[0]).tolist() == [5, 6] and np.flatnonzero(bans1[1]).tolist() == [7]
    assert caption_decoding._repeated_ngram_bans(ids, 2, 3, 10).numpy().sum() == 0  # too short for a 3-gram


@pytest.mark.parametrize("beam_size", [1, 2])
def test_no_repeat_ngram_size(model, patches, beam_size):
    bias = model.mlm_head.output_bias
    saved = bias.numpy()
    try:
        forced = saved.copy()
        forced[SEP] = -50.0
        forced[9] = 20.0  # token 9 wins everywhere: without the rule the caption repeats it
        bias.assign(forced)
        plain = model.generate(patches, max_length=6, beam_size=beam_size).numpy()
        ruled = model.generate(patches, max_length=6, beam_size=beam_size, no_repeat_ngram_size=2).numpy()
    finally:
        bias.assign(saved)
    assert (plain == 9).all()
    for row in ruled:
        bigrams = list(zip(row[:-1], row[1:]))
        assert len(bigrams) == len(set(bigrams)), row
        assert row[0] == 9 and row[1] == 9  # a single "9 9" is allowed, its repetition is not
