"""WordPiece vocabularies: the one reader and the packaged vocabulary's path.

A vocab file holds one token a line, UTF-8, the line number (from 0) being the token's id; the newline after
the last token is optional. `read_vocab` is strict, and every user (the tokenizer of the preprocessing, the
in-graph encoder and the caption decoder of the exports, captioning) reads through it:

- a repeated token is an error: a token must have one id, and the exported lookup tables refuse it anyway;
- a CR line end (a file saved with CRLF) is an error: the file itself is handed to tensorflow-text, which
  splits lines on LF only and would keep the CR inside every token, so no word would ever match;
- an empty line or a token with leading or trailing whitespace is an error;
- the special tokens `required` (default [PAD], [UNK], [CLS], [SEP]) must be present.

The released BERT vocabularies and the packaged one (`default_vocab_path()`, BERT uncased, 30522 tokens)
satisfy all of these.
"""

import os

REQUIRED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


def default_vocab_path():
    """The BERT uncased vocabulary shipped with the package (`kaleido_tf/assets/vocab.txt`)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "vocab.txt")


DEFAULT_VOCAB = default_vocab_path()


def model_vocab(vocab_file, vocab_size, what, flag="vocab_file"):
    """`vocab_file` (a path), or the packaged vocabulary when None, for a use (`what`, e.g. "captioning")
    that must share the model's vocabulary: the packaged vocab must then not hold more tokens than the
    model's `vocab_size` (ValueError asking for `flag`)."""
    if vocab_file is not None:
        return os.fspath(vocab_file)
    tokens = len(read_vocab(DEFAULT_VOCAB))
    if tokens > vocab_size:
        raise ValueError(
            f"{what} needs the model's vocab: the packaged vocab has {tokens} tokens, more than "
            f"vocab_size={vocab_size}; pass {flag}"
        )
    return DEFAULT_VOCAB


def read_vocab(vocab_file, vocab_size=None, required=REQUIRED_TOKENS):
    """Reads and checks a WordPiece vocab (one token a line); returns {token: id}, in id order.

    Raises ValueError naming the file and line for an empty, repeated or whitespace-padded token (a CRLF line
    end included), a missing `required` token, or more tokens than the model's word table (`vocab_size`) holds.
    """
    vocab_file = os.fspath(vocab_file)
    if not os.path.isfile(vocab_file):
        raise FileNotFoundError(f"vocab file not found: {vocab_file}")
    with open(vocab_file, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(f"{vocab_file}:{line}: not valid UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline after the last token
    vocab = {}
    for number, token in enumerate(lines, start=1):
        if token == "":
            raise ValueError(f"{vocab_file}:{number}: empty token")
        if token != token.strip():
            raise ValueError(
                f"{vocab_file}:{number}: token {token!r} has leading or trailing whitespace (or a CRLF line end); "
                f"write one token a line with LF line ends"
            )
        if token in vocab:
            raise ValueError(f"{vocab_file}:{number}: token {token!r} repeats line {vocab[token] + 1}")
        vocab[token] = number - 1
    missing = [t for t in required if t not in vocab]
    if missing:
        raise ValueError(f"{vocab_file}: special token(s) {', '.join(missing)} missing")
    if vocab_size is not None and len(vocab) > vocab_size:
        raise ValueError(
            f"{vocab_file}: {len(vocab)} tokens, but the model's word table has only vocab_size={vocab_size} rows"
        )
    return vocab
