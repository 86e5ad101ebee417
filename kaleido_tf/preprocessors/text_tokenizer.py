"""Text to token ids: WordPiece (tensorflow-text `BertTokenizer`) or SentencePiece.

`encode` produces the model's text inputs: `[CLS] pieces [SEP]` padded with [PAD] to the text
length (pieces beyond `length - 2` are cut), `input_mask` 1 on real tokens, `segment_ids` all 0, and,
for masking, the word index of every token (-1 on [CLS], [SEP] and padding).

Words: for WordPiece, the words of BERT's basic tokenizer (whitespace and punctuation split, lower
case when `lower_case`); the continuation pieces ("##...") of a word share its index. For
SentencePiece, a new word starts at every piece beginning with "\u2581".
"""

import dataclasses
import os
import re

import numpy as np

from kaleido_tf.utils.vocab import default_vocab_path, read_vocab

TOKENIZER_NAMES = ("wordpiece", "sentencepiece")
_BRACKETED = re.compile(r"^\[[^\]]*\]$")


@dataclasses.dataclass
class EncodedText:
    input_ids: np.ndarray  # [T] int64
    input_mask: np.ndarray  # [T] int64
    segment_ids: np.ndarray  # [T] int64
    word_ids: np.ndarray  # [T] int64, -1 on [CLS]/[SEP]/[PAD]
    num_tokens: int  # real tokens including [CLS] and [SEP]
    truncated: bool


class TextTokenizer:
    """Base class: subclasses fill the special ids and implement `_pieces(texts)`."""

    name = "base"
    cls_id = sep_id = pad_id = mask_id = unk_id = None
    vocab_size = 0
    random_token_ids = None  # ids eligible as random replacements in masked LM

    def _pieces(self, texts):
        """For each text: a list of words, each a list of piece ids."""
        raise NotImplementedError

    @property
    def special_ids(self):
        return {self.cls_id, self.sep_id, self.pad_id, self.mask_id}

    def words(self, text):
        return self._pieces([text])[0]

    def word_piece_ids(self, word):
        """The pieces of a single word or phrase, flattened (used to find aligned words)."""
        return [i for w in self.words(word) for i in w]

    def encode(self, text, length):
        return self.encode_batch([text], length)[0]

    def encode_batch(self, texts, length):
        if length < 3:
            raise ValueError(f"text length must be >= 3 ([CLS] x [SEP]), got {length}")
        out = []
        for words in self._pieces(list(texts)):
            ids, word_ids = [], []
            for w, pieces in enumerate(words):
                ids.extend(pieces)
                word_ids.extend([w] * len(pieces))
            keep = length - 2
            truncated = len(ids) > keep
            ids, word_ids = ids[:keep], word_ids[:keep]
            n = len(ids) + 2
            input_ids = np.full(length, self.pad_id, np.int64)
            input_ids[:n] = [self.cls_id] + ids + [self.sep_id]
            wid = np.full(length, -1, np.int64)
            wid[1 : n - 1] = word_ids
            mask = np.zeros(length, np.int64)
            mask[:n] = 1
            out.append(
                EncodedText(
                    input_ids=input_ids,
                    input_mask=mask,
                    segment_ids=np.zeros(length, np.int64),
                    word_ids=wid,
                    num_tokens=n,
                    truncated=truncated,
                )
            )
        return out

    def describe(self):
        return {"name": self.name, "vocab_size": int(self.vocab_size)}


class WordPieceTokenizer(TextTokenizer):
    """BERT WordPiece through tensorflow-text.

    Args:
      vocab_path: vocab.txt, one token per line; must hold [PAD], [UNK], [CLS], [SEP], [MASK].
      lower_case: lower-case and strip accents (BERT uncased).
    """

    name = "wordpiece"

    def __init__(self, vocab_path, lower_case=True):
        # local import: the tokenizer backend loads only when it is the one chosen
        import tensorflow as tf  # noqa: PLC0415
        import tensorflow_text as tf_text  # noqa: PLC0415

        if not os.path.isfile(vocab_path):
            raise FileNotFoundError(f"vocabulary file not found: {vocab_path}")
        index = read_vocab(vocab_path, required=())  # {token: id}; refuses repeated tokens and CR line ends
        tokens = list(index)
        missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if t not in index]
        if missing:
            raise ValueError(f"vocabulary {vocab_path} lacks the special token(s) {missing}")
        self.vocab_path = vocab_path
        self.lower_case = bool(lower_case)
        self.tokens = tokens
        self.vocab_size = len(tokens)
        self.pad_id, self.unk_id = index["[PAD]"], index["[UNK]"]
        self.cls_id, self.sep_id, self.mask_id = index["[CLS]"], index["[SEP]"], index["[MASK]"]
        self.random_token_ids = np.asarray([i for i, t in enumerate(tokens) if not _BRACKETED.match(t)], np.int64)
        self._tf = tf
        self._tokenizer = tf_text.BertTokenizer(
            vocab_path, token_out_type=tf.int64, lower_case=self.lower_case, unknown_token="[UNK]"
        )

    def _pieces(self, texts):
        if not texts:
            return []
        ragged = self._tokenizer.tokenize(self._tf.constant(texts, dtype=self._tf.string))  # [B, words, pieces]
        return ragged.to_list()

    def describe(self):
        info = super().describe()
        info.update({"vocab": os.path.basename(self.vocab_path), "lower_case": self.lower_case})
        return info


class SentencePieceTokenizer(TextTokenizer):
    """SentencePiece model; it must contain pieces for [CLS], [SEP], [MASK] and [PAD].

    Accepted spellings: "[CLS]"/"<cls>", "[SEP]"/"<sep>", "[MASK]"/"<mask>", "[PAD]"/"<pad>"
    (train with e.g. `--user_defined_symbols=[CLS],[SEP],[MASK] --pad_id=... --pad_piece=[PAD]`).
    """

    name = "sentencepiece"
    _CANDIDATES = {
        "cls": ("[CLS]", "<cls>"),
        "sep": ("[SEP]", "<sep>"),
        "mask": ("[MASK]", "<mask>"),
        "pad": ("[PAD]", "<pad>"),
    }

    def __init__(self, model_path, lower_case=False):
        # local import: the tokenizer backend loads only when it is the one chosen
        import sentencepiece as spm  # noqa: PLC0415

        if not model_path or not os.path.isfile(model_path):
            raise FileNotFoundError(f"SentencePiece model not found: {model_path}")
        self.model_path = model_path
        self.lower_case = bool(lower_case)
        self._sp = spm.SentencePieceProcessor(model_file=model_path)
        sp = self._sp
        self.vocab_size = sp.get_piece_size()
        found = {}
        for role, names in self._CANDIDATES.items():
            for name in names:
                i = sp.piece_to_id(name)
                if sp.id_to_piece(i) == name and not sp.is_unknown(i):
                    found[role] = i
                    break
            else:
                raise ValueError(
                    f"SentencePiece model {model_path} has no piece for {role.upper()} (looked for {list(names)})"
                )
        self.cls_id, self.sep_id, self.mask_id, self.pad_id = found["cls"], found["sep"], found["mask"], found["pad"]
        self.unk_id = sp.unk_id()
        specials = set(found.values())
        self.random_token_ids = np.asarray(
            [
                i
                for i in range(self.vocab_size)
                if i not in specials and not (sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i))
            ],
            np.int64,
        )
        if self.random_token_ids.size == 0:
            raise ValueError(f"SentencePiece model {model_path} has no ordinary pieces")

    def _pieces(self, texts):
        out = []
        for text in texts:
            if self.lower_case:
                text = text.lower()
            pieces = self._sp.encode(text, out_type=str)
            words = []
            for piece in pieces:
                pid = self._sp.piece_to_id(piece)
                if piece.startswith("\u2581") or not words:  # a word-start marker opens a new word
                    words.append([pid])
                else:
                    words[-1].append(pid)
            out.append(words)
        return out

    def describe(self):
        info = super().describe()
        info.update({"model": os.path.basename(self.model_path), "lower_case": self.lower_case})
        return info


def build_tokenizer(name="wordpiece", vocab=None, spm_model=None, lower_case=None):
    """`name` "wordpiece" (vocab.txt, default: the packaged BERT uncased vocabulary) or "sentencepiece"."""
    if name == "wordpiece":
        if spm_model:
            raise ValueError("--spm_model is given but --tokenizer is 'wordpiece'")
        return WordPieceTokenizer(vocab or default_vocab_path(), lower_case=True if lower_case is None else lower_case)
    if name == "sentencepiece":
        if not spm_model:
            raise ValueError("--tokenizer sentencepiece needs --spm_model FILE")
        return SentencePieceTokenizer(spm_model, lower_case=False if lower_case is None else lower_case)
    raise ValueError(f"tokenizer must be one of {TOKENIZER_NAMES}, got {name!r}")
