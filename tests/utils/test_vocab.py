"""The one vocab reader: its rules, the packaged vocabulary, and that every user reads through it."""

import pytest

from kaleido_tf.utils.vocab import DEFAULT_VOCAB, default_vocab_path, read_vocab


def test_packaged_vocab_loads():
    assert DEFAULT_VOCAB == default_vocab_path() and default_vocab_path().endswith("vocab.txt")
    vocab = read_vocab(default_vocab_path())
    assert len(vocab) == 30522  # BERT uncased
    assert [vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 100, 101, 102, 103]
    assert list(vocab.values()) == list(range(30522))  # the dict is in id order


@pytest.mark.parametrize(
    "content, message",
    [
        (b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nred\nred\n", ":6: token 'red' repeats line 5"),
        (b"[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n", "(or a CRLF line end); write one token a line with LF line ends"),
        (b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nred\n\n", ":6: empty token"),
        (b"[PAD]\n[UNK]\n\xff\n", ":3: not valid UTF-8"),
    ],
)
def test_repeated_tokens_cr_and_bad_lines_are_errors(tmp_path, content, message):
    path = tmp_path / "vocab.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        read_vocab(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_required_tokens_and_size(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\nhello")  # no newline after the last token
    assert read_vocab(path, required=()) == {"[PAD]": 0, "[UNK]": 1, "hello": 2}
    with pytest.raises(ValueError, match=r"special token\(s\) \[CLS\], \[SEP\] missing"):
        read_vocab(path)
    with pytest.raises(ValueError, match="3 tokens, but the model's word table has only vocab_size=2 rows"):
        read_vocab(path, vocab_size=2, required=())
    with pytest.raises(FileNotFoundError, match="vocab file not found"):
        read_vocab(tmp_path / "absent.txt")


def test_users_read_through_the_owner(tmp_path):
    from kaleido_tf.model_zoo.caption_decoding import CaptionTokens, read_id_to_token
    from kaleido_tf.preprocessors.text_tokenizer import build_tokenizer

    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nred\nred\n")
    for read in (read_id_to_token, CaptionTokens.from_vocab_file, lambda p: build_tokenizer("wordpiece", vocab=p)):
        with pytest.raises(ValueError, match=":7: token 'red' repeats line 6"):
            read(str(path))
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nred\n")
    assert read_id_to_token(path) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red"]
    tokenizer = build_tokenizer("wordpiece", vocab=str(path))
    assert tokenizer.tokens == read_id_to_token(path) and tokenizer.mask_id == 4
