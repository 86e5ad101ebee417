"""The vocabulary of an export as a SavedModel asset, and the lookup table initialiser reading it in the graph."""

import os

import tensorflow as tf

from kaleido_tf.utils.vocab import read_vocab


def vocab_asset(vocab_file, vocab_size=None, to_ids=True):
    """(vocab, asset, initializer) for `vocab_file` (checked against `vocab_size` by `read_vocab`).

    `asset` packs the file into the SavedModel (keep it as an attribute of the module that is saved);
    `initializer` fills a lookup table token -> line number (`to_ids`) or line number -> token.
    """
    vocab = read_vocab(vocab_file, vocab_size)
    asset = tf.saved_model.Asset(os.fspath(vocab_file))
    line, token = tf.lookup.TextFileIndex.LINE_NUMBER, tf.lookup.TextFileIndex.WHOLE_LINE
    keys, values = ((tf.string, token), (tf.int64, line)) if to_ids else ((tf.int64, line), (tf.string, token))
    initializer = tf.lookup.TextFileInitializer(
        asset, key_dtype=keys[0], key_index=keys[1], value_dtype=values[0], value_index=values[1]
    )
    return vocab, asset, initializer
