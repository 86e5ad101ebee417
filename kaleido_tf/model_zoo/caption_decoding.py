"""Caption decoding on a single-stream encoder: special token ids, greedy and beam search, ids -> text.

Generation is UniLM-style: the text buffer starts as `[CLS]`; at step t the token at position t is `[MASK]`,
the model predicts it from the patches and the tokens before it (the seq2seq attention mask hides everything
after t), the prediction is written at t, and the next step moves on. A caption ends at `[SEP]` or after
`max_length` tokens. Everything has fixed shapes and runs in `tf.while_loop`, so it traces into a
`tf.function` (and a SavedModel) and works on a batch at once.

Shape legend: B batch, K beams, L max_length (caption tokens after [CLS]), V vocabulary.
"""

import dataclasses
import os

import tensorflow as tf

from kaleido_tf.utils.vocab import read_vocab

# A large negative log-probability for banned tokens and dead beams (finite: -inf would give NaN in sums).
NEG_INF = -1e9


@dataclasses.dataclass(frozen=True)
class CaptionTokens:
    """The special token ids captioning needs (BERT uncased ids by default)."""

    pad_id: int = 0
    cls_id: int = 101
    sep_id: int = 102
    mask_id: int = 103

    @classmethod
    def from_vocab_file(cls, vocab_file, vocab_size=None):
        """Reads the ids of [PAD], [CLS], [SEP] and [MASK] from a WordPiece vocab (one token a line)."""
        vocab = read_vocab(vocab_file, vocab_size)
        if "[MASK]" not in vocab:
            raise ValueError(f"{os.fspath(vocab_file)}: special token [MASK] missing (captioning predicts at [MASK])")
        return cls(pad_id=vocab["[PAD]"], cls_id=vocab["[CLS]"], sep_id=vocab["[SEP]"], mask_id=vocab["[MASK]"])

    def banned_ids(self):
        """Tokens never generated: [PAD], [CLS] and [MASK]."""
        return (self.pad_id, self.cls_id, self.mask_id)


def read_id_to_token(vocab_file, vocab_size=None):
    """[token by id] of a WordPiece vocab (read by `utils.vocab.read_vocab`, as the exporter reads it)."""
    return list(read_vocab(vocab_file, vocab_size))  # the ids are 0, 1, ... in the dict's order


def ids_to_text(ids, id_to_token, tokens=None):
    """One caption's ids -> text: stops at [SEP], drops [PAD]/[CLS]/[MASK], joins WordPieces.

    Pieces are joined with spaces and a `##` continuation is glued to the piece before it; the exported
    `caption` signature does exactly the same in the graph.
    """
    tokens = tokens or CaptionTokens()
    skip = set(tokens.banned_ids())
    words = []
    for i in ids:
        i = int(i)
        if i == tokens.sep_id:
            break
        if i in skip:
            continue
        words.append(id_to_token[i] if 0 <= i < len(id_to_token) else "[UNK]")
    return " ".join(words).replace(" ##", "")


def batch_ids_to_text(ids, id_to_token, tokens=None):
    """[B, L] ids -> [B] captions (see `ids_to_text`)."""
    return [ids_to_text(row, id_to_token, tokens) for row in ids]


# ---------------------------------------------------------------------------------------------- decoding
def _write_column(ids, column, values):
    """ids [N, W] with column `column` replaced by values [N]."""
    width = tf.shape(ids)[1]
    hot = tf.one_hot(column, width, dtype=ids.dtype)  # [W]
    return ids * (1 - hot) + tf.expand_dims(values, 1) * hot


def _step_inputs(ids, step, mask_id):
    """The text the model sees at `step`: ids with [MASK] at `step`, input_mask 1 up to `step`."""
    width = tf.shape(ids)[1]
    masked = _write_column(ids, step, tf.fill([tf.shape(ids)[0]], tf.constant(mask_id, ids.dtype)))
    input_mask = tf.cast(tf.range(width) <= step, ids.dtype)  # [W]
    input_mask = tf.tile(tf.expand_dims(input_mask, 0), [tf.shape(ids)[0], 1])  # [N, W]
    return masked, input_mask


def _ban(log_probs, banned_ids):
    vocab_size = tf.shape(log_probs)[-1]
    banned = tf.reduce_sum(tf.one_hot(list(banned_ids), vocab_size, dtype=log_probs.dtype), axis=0)  # [V]
    return log_probs + banned * NEG_INF


def _repeated_ngram_bans(ids, step, ngram_size, vocab_size):
    """[N, V] 1.0 for every token that would complete an n-gram already present in ids[:, 1:step].

    ids: [N, W] text buffers ([CLS] at 0, generated tokens at 1..step-1). An n-gram starting at j (1 <= j,
    j + n - 1 <= step - 1) whose first n - 1 tokens equal the last n - 1 generated tokens bans its last token.
    """
    n = int(ngram_size)
    rows, width = tf.shape(ids)[0], tf.shape(ids)[1]
    starts = tf.range(width)  # j
    valid = (starts >= 1) & (starts + n - 1 <= step - 1) & (step - n + 1 >= 1)  # [W]
    match = tf.broadcast_to(valid[None, :], [rows, width])  # [N, W]
    for k in range(n - 1):
        window = tf.gather(ids, tf.minimum(starts + k, width - 1), axis=1)  # ids[:, j + k]: [N, W]
        last = tf.gather(ids, tf.maximum(step - n + 1 + k, 0), axis=1)  # [N]
        match = match & tf.equal(window, last[:, None])
    following = tf.gather(ids, tf.minimum(starts + n - 1, width - 1), axis=1)  # ids[:, j + n - 1]: [N, W]
    row_index = tf.broadcast_to(tf.range(rows)[:, None], [rows, width])
    indices = tf.reshape(tf.stack([row_index, following], axis=-1), [-1, 2])  # [N*W, 2]
    updates = tf.reshape(tf.cast(match, tf.float32), [-1])  # [N*W]
    bans = tf.tensor_scatter_nd_add(tf.zeros([rows, vocab_size], tf.float32), indices, updates)  # [N, V]
    return tf.minimum(bans, 1.0)


def _next_log_probs(logits_fn, ids, step, tokens, no_repeat_ngram_size):
    """Log-probabilities [N, V] of the token at `step`, with banned tokens and repeated n-grams ruled out."""
    masked, input_mask = _step_inputs(ids, step, tokens.mask_id)
    log_probs = tf.nn.log_softmax(tf.cast(logits_fn(masked, input_mask, step), tf.float32), axis=-1)  # [N, V]
    log_probs = _ban(log_probs, tokens.banned_ids())
    if no_repeat_ngram_size:
        bans = _repeated_ngram_bans(ids, step, no_repeat_ngram_size, tf.shape(log_probs)[-1])
        log_probs = log_probs + bans * NEG_INF
    return log_probs


def greedy_decode(logits_fn, batch_size, max_length, tokens, no_repeat_ngram_size=0):
    """Greedy decoding.

    logits_fn(input_ids [B, L+1], input_mask [B, L+1], position scalar) -> logits [B, V] at that position.
    no_repeat_ngram_size: n > 0 never generates an n-gram twice in a caption (0: no such rule).
    Returns token ids [B, L] int32: the caption after [CLS], [SEP] included when generated, [PAD] after it.
    """
    width = max_length + 1
    ids = tf.fill([batch_size, width], tf.constant(tokens.pad_id, tf.int32))
    ids = _write_column(ids, 0, tf.fill([batch_size], tf.constant(tokens.cls_id, tf.int32)))  # [B, L+1]
    finished = tf.zeros([batch_size], tf.bool)

    def cond(step, ids, finished):
        return tf.logical_and(step <= max_length, tf.logical_not(tf.reduce_all(finished)))

    def body(step, ids, finished):
        log_probs = _next_log_probs(logits_fn, ids, step, tokens, no_repeat_ngram_size)  # [B, V]
        token = tf.argmax(log_probs, axis=-1, output_type=tf.int32)  # [B]
        token = tf.where(finished, tf.constant(tokens.pad_id, tf.int32), token)
        ids = _write_column(ids, step, token)
        return step + 1, ids, tf.logical_or(finished, tf.equal(token, tokens.sep_id))

    _, ids, _ = tf.while_loop(
        cond,
        body,
        (tf.constant(1), ids, finished),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, width]), tf.TensorShape([None])),
    )
    return ids[:, 1:]


def beam_search_decode(
    logits_fn, batch_size, max_length, beam_size, tokens, length_penalty=0.0, no_repeat_ngram_size=0
):
    """Beam search over `beam_size` beams per example.

    logits_fn takes the flattened beams: input_ids [B*K, L+1] (example-major: the K beams of example 0
    first), input_mask [B*K, L+1], position -> logits [B*K, V]. A finished beam (it emitted [SEP]) is only
    extended by [PAD] at no cost. Beams are ranked by their summed log-probability; the returned caption is
    the best one after dividing by the GNMT length penalty ((5 + length) / 6) ** length_penalty (0: none).
    no_repeat_ngram_size: as for greedy_decode. With beam_size 1 this is greedy decoding, token for token.
    Returns token ids [B, L] int32, laid out as `greedy_decode`'s.
    """
    k = int(beam_size)
    width = max_length + 1
    flat = batch_size * k
    ids = tf.fill([flat, width], tf.constant(tokens.pad_id, tf.int32))
    ids = _write_column(ids, 0, tf.fill([flat], tf.constant(tokens.cls_id, tf.int32)))  # [B*K, L+1]
    # Only beam 0 is alive at the start, so the first step does not pick the same token K times.
    scores = tf.tile(tf.constant([[0.0] + [NEG_INF] * (k - 1)], tf.float32), [batch_size, 1])  # [B, K]
    finished = tf.zeros([batch_size, k], tf.bool)
    lengths = tf.zeros([batch_size, k], tf.int32)

    def cond(step, ids, scores, finished, lengths):
        return tf.logical_and(step <= max_length, tf.logical_not(tf.reduce_all(finished)))

    def body(step, ids, scores, finished, lengths):
        log_probs = _next_log_probs(logits_fn, ids, step, tokens, no_repeat_ngram_size)  # [B*K, V]
        vocab_size = tf.shape(log_probs)[-1]
        log_probs = tf.reshape(log_probs, [batch_size, k, vocab_size])  # [B, K, V]
        pad_only = tf.one_hot(tokens.pad_id, vocab_size, on_value=0.0, off_value=NEG_INF)  # [V]
        log_probs = tf.where(finished[:, :, None], pad_only[None, None, :], log_probs)
        candidates = tf.reshape(scores[:, :, None] + log_probs, [batch_size, k * vocab_size])  # [B, K*V]
        scores, index = tf.math.top_k(candidates, k=k)  # [B, K]
        parent = index // vocab_size  # [B, K]
        token = tf.cast(index % vocab_size, tf.int32)  # [B, K]
        ids = tf.reshape(tf.gather(tf.reshape(ids, [batch_size, k, width]), parent, batch_dims=1), [flat, width])
        ids = _write_column(ids, step, tf.reshape(token, [flat]))
        parent_finished = tf.gather(finished, parent, batch_dims=1)  # [B, K]
        lengths = tf.gather(lengths, parent, batch_dims=1) + tf.cast(tf.logical_not(parent_finished), tf.int32)
        finished = tf.logical_or(parent_finished, tf.equal(token, tokens.sep_id))
        return step + 1, ids, scores, finished, lengths

    _, ids, scores, _, lengths = tf.while_loop(
        cond,
        body,
        (tf.constant(1), ids, scores, finished, lengths),
        shape_invariants=(
            tf.TensorShape([]),
            tf.TensorShape([None, width]),
            tf.TensorShape([None, k]),
            tf.TensorShape([None, k]),
            tf.TensorShape([None, k]),
        ),
    )
    if length_penalty:
        penalty = tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, float(length_penalty))  # [B, K]
        scores = scores / penalty
    best = tf.argmax(scores, axis=-1, output_type=tf.int32)  # [B]
    ids = tf.gather(tf.reshape(ids, [batch_size, k, width]), best, batch_dims=1)  # [B, L+1]
    return ids[:, 1:]
