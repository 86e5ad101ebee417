"""Image-text contrastive loss: symmetric InfoNCE over the global batch.

Shape legend: b this replica's batch, G the global batch (all replicas), D embedding size.

Under a tf.distribute strategy every replica gathers the embeddings of all replicas (ReplicaContext.all_gather,
whose gradient sums the replicas' gradients and hands each replica its own slice), scores its own b rows against
all G columns, and returns its share: the sum of its rows' cross-entropies over G. The replicas' shares add up
to the loss of the whole batch on one device, and so do their gradients: neither depends on the replica count.
"""

import tensorflow as tf


def _gather_global(text, image):
    """-> (all texts [G, D], all images [G, D], index of this replica's first row in them)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return text, image, 0
    all_text = context.all_gather(text, axis=0)  # [G, D]
    all_image = context.all_gather(image, axis=0)  # [G, D]
    # Replicas may hold unequal shares (the last batch): this replica's offset is the rows before it.
    sizes = context.all_gather(tf.shape(text)[:1], axis=0)  # [replicas]
    offset = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
    return all_text, all_image, offset


def itc_similarities(text_embedding, image_embedding, temperature):
    """Logits of every text against every image of this replica's batch: [b, b] = text @ image.T / t."""
    text = tf.cast(text_embedding, tf.float32)
    image = tf.cast(image_embedding, tf.float32)
    return tf.matmul(text, image, transpose_b=True) / tf.cast(temperature, tf.float32)


def itc_loss(text_embedding, image_embedding, temperature, global_batch_size=None):
    """(text->image CE + image->text CE) / 2, averaged over the global batch; the pair i matches pair i.

    Args:
        text_embedding, image_embedding: [b, D], unit length (the ITC head's outputs).
        temperature: scalar; logits are cosine similarities divided by it.
        global_batch_size: G when this batch is one replica's share of a global batch (the result is then this
            replica's share of the global loss); None: the mean over this batch alone, on one device.
    Returns a float32 scalar.
    """
    text = tf.cast(text_embedding, tf.float32)  # [b, D]
    image = tf.cast(image_embedding, tf.float32)  # [b, D]
    inverse_t = 1.0 / tf.cast(temperature, tf.float32)
    if global_batch_size is None:
        all_text, all_image, offset = text, image, 0
    else:
        all_text, all_image, offset = _gather_global(text, image)
    labels = offset + tf.range(tf.shape(text)[0])  # [b]: each local row's positive among the G columns
    text_to_image = tf.matmul(text, all_image, transpose_b=True) * inverse_t  # [b, G]
    image_to_text = tf.matmul(image, all_text, transpose_b=True) * inverse_t  # [b, G]
    ce_t2i = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=text_to_image)  # [b]
    ce_i2t = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=image_to_text)  # [b]
    per_pair = 0.5 * (ce_t2i + ce_i2t)  # [b]
    if global_batch_size is None:
        return tf.reduce_mean(per_pair)
    return tf.reduce_sum(per_pair) / tf.cast(global_batch_size, tf.float32)
