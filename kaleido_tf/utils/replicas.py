"""Reductions over the replicas of a `tf.distribute` strategy, for the tasks' losses."""

import tensorflow as tf


def replica_sum(value):
    """Sum of `value` over the replicas of the current strategy (the value itself on one device)."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)
