"""In-graph WordPiece encoding of raw strings: text [B] -> input_ids, input_mask, segment_ids [B, T].

The vocabulary travels inside the SavedModel as an asset (`assets/<vocab file name>`), so a client or TF
Serving needs nothing but the export. Tokenisation is BERT's: optional lower-casing with accents stripped
(uncased models), punctuation split, greedy longest-match-first WordPiece with `##` continuations and `[UNK]`
for a word it cannot cover; then `[CLS] tokens [SEP]`, truncated to T - 2 tokens and padded with `[PAD]`.
"""

import os

import tensorflow as tf

from kaleido_tf.export.vocab_asset import vocab_asset


class WordPieceEncoder(tf.Module):
    """Raw strings -> BERT text inputs of a fixed length, inside the graph (tensorflow_text.BertTokenizer).

    Args:
        vocab_file: WordPiece vocab, one token a line; packed into the SavedModel as an asset.
        text_length: T, the length of the produced inputs ([CLS] and [SEP] included).
        do_lower_case: lower-case and strip accents first (BERT uncased).
        vocab_size: rows of the model's word table, to check the vocab against.
    """

    def __init__(self, vocab_file, text_length, do_lower_case=True, vocab_size=None, name="text_encoder"):
        super().__init__(name=name)
        import tensorflow_text as tf_text  # registers the tokeniser ops

        if text_length < 2:
            raise ValueError(f"text_length must be at least 2 ([CLS] and [SEP]), got {text_length}")
        vocab, self.vocab_asset, initializer = vocab_asset(vocab_file, vocab_size, to_ids=True)
        self.vocab_file_name = os.path.basename(os.fspath(vocab_file))
        self.vocab_tokens = len(vocab)
        self.text_length = int(text_length)
        self.do_lower_case = bool(do_lower_case)
        self.pad_id = vocab["[PAD]"]
        self.cls_id = vocab["[CLS]"]
        self.sep_id = vocab["[SEP]"]
        # -1 for an unknown piece: the WordPiece op then tries a shorter piece, and finally emits [UNK].
        self.vocab_table = tf.lookup.StaticHashTable(initializer, default_value=-1)
        self.tokenizer = tf_text.BertTokenizer(
            self.vocab_table, token_out_type=tf.int64, lower_case=self.do_lower_case, unknown_token="[UNK]"
        )

    def __call__(self, text):
        """text [B] string -> {input_ids, input_mask, segment_ids}: int64 [B, T]."""
        text = tf.convert_to_tensor(text, tf.string)
        pieces = self.tokenizer.tokenize(text).merge_dims(-2, -1)  # ragged [B, (pieces)]
        pieces = pieces[:, : self.text_length - 2]
        batch_size = pieces.nrows()
        cls = tf.fill([batch_size, 1], tf.constant(self.cls_id, tf.int64))  # [B, 1]
        sep = tf.fill([batch_size, 1], tf.constant(self.sep_id, tf.int64))  # [B, 1]
        ids = tf.concat([cls, pieces, sep], axis=1)  # ragged [B, (tokens + 2)]
        shape = [None, self.text_length]
        input_ids = ids.to_tensor(default_value=self.pad_id, shape=shape)  # [B, T]
        input_mask = tf.ones_like(ids).to_tensor(default_value=0, shape=shape)  # [B, T]
        return {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": tf.zeros_like(input_ids)}
