"""Choosing the tf.distribute strategy: several workers, several local devices, or one device."""

import json
import logging
import os

import tensorflow as tf

logger = logging.getLogger(__name__)

CPU_REPLICAS_ENV = "KALEIDO_TF_CPU_REPLICAS"


def tf_config_workers():
    """The worker addresses named in $TF_CONFIG (empty when unset)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return []
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {e.msg} (column {e.colno})") from None
    return list(config.get("cluster", {}).get("worker", []))


def split_cpu(replicas):
    """Splits the CPU into `replicas` logical devices; must run before TensorFlow initialises its devices."""
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * replicas)


def get_strategy(num_gpus=None, cpu_replicas=None):
    """MultiWorkerMirroredStrategy when $TF_CONFIG names several workers; MirroredStrategy over the visible GPUs
    (at most `num_gpus`, the original --workerGPU) or over `cpu_replicas` logical CPU devices; else one device.

    `cpu_replicas` (or $KALEIDO_TF_CPU_REPLICAS) mirrors training over logical CPU devices, which tests use to
    check that distributed and single-device training agree.
    """
    workers = tf_config_workers()
    if len(workers) > 1:
        logger.info("MultiWorkerMirroredStrategy over %d workers", len(workers))
        return tf.distribute.MultiWorkerMirroredStrategy()
    cpu_replicas = int(cpu_replicas or os.environ.get(CPU_REPLICAS_ENV, 0) or 0)
    # Physical devices first: listing logical devices would fix the device setup before a CPU split.
    if not tf.config.list_physical_devices("GPU") and cpu_replicas > 1:
        try:
            split_cpu(cpu_replicas)
        except RuntimeError:  # already initialised: use the logical devices there are
            pass
        cpus = tf.config.list_logical_devices("CPU")[:cpu_replicas]
        if len(cpus) > 1:
            logger.info("MirroredStrategy over %d logical CPU devices", len(cpus))
            return tf.distribute.MirroredStrategy([c.name for c in cpus])
    gpus = tf.config.list_logical_devices("GPU")
    if num_gpus is not None and num_gpus > 0:
        gpus = gpus[:num_gpus]
    if len(gpus) > 1:
        logger.info("MirroredStrategy over %d GPUs", len(gpus))
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    if len(gpus) == 1:
        return tf.distribute.OneDeviceStrategy(gpus[0].name)
    return tf.distribute.OneDeviceStrategy("/cpu:0")


def num_workers(strategy):
    """How many worker processes (chief included) the strategy's cluster has; 0 without a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None and resolver.cluster_spec() else {}
    return sum(len(spec.get(kind, [])) for kind in ("chief", "worker"))


def is_chief(strategy):
    """True on the worker that writes checkpoints, summaries and results."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None) or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )
