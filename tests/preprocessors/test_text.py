"""Tokenisation and masked language modelling."""

import collections
import io

import numpy as np
import pytest

from kaleido_tf.preprocessors.masked_lm import MaskedLmSampler
from kaleido_tf.preprocessors.text_tokenizer import build_tokenizer

TEXT = (
    "Slim-fit striped cotton T-shirt with a ribbed crew neck, short sleeves and an unbelievably soft "
    "organic jersey finish in navy blue and white"
)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer("wordpiece")


def test_wordpiece_encoding_layout(tok):
    enc = tok.encode("Red T-shirt", 8)
    # [CLS] red t - shirt [SEP] [PAD] [PAD]
    assert enc.input_ids.tolist() == [101, 2417, 1056, 1011, 3797, 102, 0, 0]
    assert enc.input_mask.tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
    assert enc.segment_ids.tolist() == [0] * 8
    assert enc.word_ids.tolist() == [-1, 0, 1, 2, 3, -1, -1, -1]
    assert enc.num_tokens == 6 and not enc.truncated
    # continuation pieces share the word index; truncation keeps [SEP]
    enc = tok.encode("unbelievably soft", 5)
    assert enc.truncated and enc.input_ids[-1] == tok.sep_id and enc.input_ids[0] == tok.cls_id
    assert enc.word_ids.tolist() == [-1, 0, 0, 0, -1]
    assert (tok.cls_id, tok.sep_id, tok.pad_id, tok.mask_id) == (101, 102, 0, 103)
    assert 0 not in tok.random_token_ids and 103 not in tok.random_token_ids and 1996 in tok.random_token_ids


def test_vocab_without_specials_is_an_error(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ValueError, match=r"lacks the special token\(s\) \['\[CLS\]', '\[SEP\]', '\[MASK\]'\]"):
        build_tokenizer("wordpiece", vocab=str(path))
    with pytest.raises(ValueError, match="--spm_model"):
        build_tokenizer("sentencepiece")


def test_sentencepiece_tokenizer(tmp_path):
    import sentencepiece as spm

    corpus = [
        "red striped shirt with long sleeves",
        "blue denim jeans slim fit",
        "white leather sneakers with laces",
    ] * 30
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model,
        vocab_size=60,
        user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
        pad_id=0,
        pad_piece="[PAD]",
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        minloglevel=2,
        hard_vocab_limit=False,
    )
    path = tmp_path / "m.model"
    path.write_bytes(model.getvalue())
    tok = build_tokenizer("sentencepiece", spm_model=str(path))
    assert (tok.pad_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 2, 3, 4)
    enc = tok.encode("Red shirt with laces", 24)
    n = enc.num_tokens
    assert enc.input_ids[0] == 2 and enc.input_ids[n - 1] == 3 and (enc.input_ids[n:] == 0).all()
    words = enc.word_ids[1 : n - 1]
    assert words[0] == 0 and words[-1] == 3 and (np.diff(words) >= 0).all()  # four words, in order
    assert set(tok.random_token_ids.tolist()).isdisjoint({0, 1, 2, 3, 4})
    # lower_case is off by default for SentencePiece: capitals are other pieces
    assert not np.array_equal(tok.encode("RED", 6).input_ids, tok.encode("red", 6).input_ids)


def test_prediction_count_rule(tok):
    sampler = MaskedLmSampler(tok, max_predictions=10)
    assert [sampler.num_to_predict(n) for n in (0, 1, 3, 4, 10, 40, 100)] == [0, 1, 1, 1, 2, 6, 10]
    enc = tok.encode(TEXT, 64)
    n = int((enc.word_ids >= 0).sum())
    for max_predictions in (2, 5, 10):
        res = MaskedLmSampler(tok, max_predictions=max_predictions).sample(enc, np.random.default_rng(0))
        assert res.num_predictions == min(max_predictions, int(np.floor(0.15 * n + 0.5)))
        assert res.positions.shape == (max_predictions,) and res.weights.sum() == res.num_predictions


def test_masking_statistics_and_specials(tok):
    enc = tok.encode(TEXT, 48)
    specials = {tok.cls_id, tok.sep_id, tok.pad_id}
    sampler = MaskedLmSampler(tok, max_predictions=10)
    rng = np.random.default_rng(1)
    kinds = collections.Counter()
    hit = collections.Counter()
    for _ in range(2500):
        res = sampler.sample(enc, rng)
        n = res.num_predictions
        pos = res.positions[:n]
        assert (np.diff(pos) > 0).all() and (res.positions[n:] == 0).all() and (res.weights[n:] == 0).all()
        assert (enc.word_ids[pos] >= 0).all()  # never [CLS], [SEP] or [PAD]
        assert not specials & set(enc.input_ids[pos].tolist())
        np.testing.assert_array_equal(res.label_ids[:n], enc.input_ids[pos])
        unmasked = np.setdiff1d(np.arange(48), pos)
        np.testing.assert_array_equal(res.input_ids[unmasked], enc.input_ids[unmasked])
        for p, kind in zip(pos, res.replacements):
            kinds[kind] += 1
            hit[int(p)] += 1
            if kind == "mask":
                assert res.input_ids[p] == tok.mask_id
            elif kind == "keep":
                assert res.input_ids[p] == enc.input_ids[p]
            else:
                assert res.input_ids[p] in set(tok.random_token_ids.tolist())
    total = sum(kinds.values())
    assert abs(kinds["mask"] / total - 0.8) < 0.015
    assert abs(kinds["keep"] / total - 0.1) < 0.01 and abs(kinds["random"] / total - 0.1) < 0.01
    candidates = np.flatnonzero(enc.word_ids >= 0)
    assert set(hit) == set(candidates.tolist())  # every real token gets its turn
    rate = np.array([hit[int(p)] for p in candidates]) / 2500  # each token is masked with about k / n chance
    expected = sampler.num_to_predict(len(candidates)) / len(candidates)
    assert np.abs(rate - expected).max() < 0.05


def test_whole_word_masking_keeps_words_whole(tok):
    enc = tok.encode("unbelievably comfortable organically grown cotton shirt", 32)
    sampler = MaskedLmSampler(tok, max_predictions=6, masked_lm_prob=0.5, whole_word=True)
    rng = np.random.default_rng(2)
    for _ in range(300):
        res = sampler.sample(enc, rng)
        pos = set(res.positions[: res.num_predictions].tolist())
        assert pos
        for w in set(enc.word_ids[list(pos)].tolist()):
            assert set(np.flatnonzero(enc.word_ids == w).tolist()) <= pos


def test_forced_and_protected_groups(tok):
    enc = tok.encode(TEXT, 48)
    sampler = MaskedLmSampler(tok, max_predictions=4)
    rng = np.random.default_rng(3)
    for _ in range(200):
        res = sampler.sample(enc, rng, forced_groups=[[5, 6], [9]], protected={1, 2, 3, 4})
        pos = set(res.positions[: res.num_predictions].tolist())
        assert {5, 6, 9} <= pos and not pos & {1, 2, 3, 4} and len(pos) == 4
    # a forced group that does not fit is skipped
    res = MaskedLmSampler(tok, max_predictions=2).sample(enc, rng, forced_groups=[[5, 6, 7]])
    assert not {5, 6, 7} <= set(res.positions.tolist())
