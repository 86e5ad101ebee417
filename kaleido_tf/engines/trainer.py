"""A thin tf.distribute training loop: the task computes, the trainer distributes, saves and reports.

One step: every replica runs the task's forward and backward pass on its share of the global batch (losses
scaled by the global batch, so the replicas' gradients add up to the whole batch's); the gradients are summed
across replicas, clipped by their global norm, and applied once. The result does not depend on the number of
replicas.

Mixed precision (`mixed_precision="mixed_float16"` or `"mixed_bfloat16"`): the model is built under that Keras
dtype policy (float32 variables, float16/bfloat16 arithmetic; the losses are computed in float32). With float16
the loss is scaled dynamically before the backward pass and the summed gradients are unscaled before clipping;
a step whose gradients overflow is skipped and the scale halved (doubled again after 2000 good steps).
"""

import contextlib
import inspect
import json
import logging
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from kaleido_tf.convert.tf1_converter import CheckpointError
from kaleido_tf.engines import model_dir_lock
from kaleido_tf.engines.distribution import is_chief, num_workers
from kaleido_tf.engines.fused_adam import fuse_optimizer
from kaleido_tf.engines.predictor import local_numpy, predict_batches
from kaleido_tf.engines.preemption import STOP_SIGNALS, StopSignal, TrainingPreempted
from kaleido_tf.optimizers import get_optimizer
from kaleido_tf.tasks.base_task import aggregate
from kaleido_tf.utils.disk_space import disk_full_error, is_disk_full
from kaleido_tf.utils.io import atomic_write_text
from kaleido_tf.utils.model_dir import TRAINER_MARKER

logger = logging.getLogger(__name__)

MIXED_PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16")
STOP_KEY = "stop_requested"  # the training step's all-reduced stop flag (see `train`)


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _progress_bar(total, initial, unit_scale, enabled, desc):
    if not enabled:
        return None

    return tqdm(
        total=total, initial=initial, unit="ex", unit_scale=unit_scale, desc=desc, mininterval=1.0, dynamic_ncols=True
    )


@contextlib.contextmanager
def dtype_policy_scope(policy):
    """Makes `policy` Keras' global dtype policy inside the block (None: leaves it as it is)."""
    if policy is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def check_mixed_precision(mixed_precision):
    """None, or a Keras mixed policy name; anything else is a ValueError naming the argument."""
    if mixed_precision in (None, "", "float32", "none"):
        return None
    if mixed_precision not in MIXED_PRECISION_POLICIES:
        raise ValueError(
            f"mixed_precision must be None, {' or '.join(MIXED_PRECISION_POLICIES)}; got {mixed_precision!r}"
        )
    return mixed_precision


def _accepts_loss_scale(task):
    try:
        return "loss_scale" in inspect.signature(task.compute_gradients).parameters
    except (TypeError, ValueError):
        return False


def _random_states(model):
    """The state variables of the model's Keras seed generators (dropout), in a stable order: the model's
    `variables` (all state) less its `weights` (which exclude random seeds)."""
    weights = {id(w) for w in model.weights}
    return [getattr(v, "value", v) for v in model.variables if id(v) not in weights]


class Trainer:
    """Trains, evaluates and predicts with a task under a strategy.

    Args:
        task: a kaleido_tf Task.
        model_dir: checkpoints (`ckpt-N`), TensorBoard logs (`train/`, `eval/`), config and results.
        strategy: a tf.distribute strategy (one device by default).
        learning_rate, train_steps, warmup_ratio, weight_decay, clip_norm: EasyTransfer's optimizer settings.
        save_steps: checkpoint every N steps (and at the end); None: at the end and after each evaluation.
        keep_checkpoint_max: checkpoints kept.
        log_steps: TensorBoard and log interval.
        jit_compile: XLA-compile each replica's forward and backward pass.
        progress: show a progress bar (examples/s, ETA).
        mixed_precision: None (float32), "mixed_bfloat16" (GPUs, TPUs and CPUs with bfloat16 units) or
            "mixed_float16" (GPUs; dynamic loss scaling through keras.optimizers.LossScaleOptimizer).
        fused_optimizer: update with TensorFlow's one-pass Adam kernel (`FusedAdam`, same arithmetic and
            variables as keras Adam); the AdamW variant (weight_decay > 0) keeps its own update.
    """

    def __init__(
        self,
        task,
        model_dir,
        strategy=None,
        learning_rate=1e-4,
        train_steps=1,
        warmup_ratio=0.1,
        weight_decay=0.0,
        clip_norm=1.0,
        save_steps=None,
        keep_checkpoint_max=5,
        log_steps=10,
        jit_compile=False,
        progress=True,
        mixed_precision=None,
        fused_optimizer=True,
    ):
        self.task = task
        self.mixed_precision = check_mixed_precision(mixed_precision)
        if self.mixed_precision == "mixed_float16" and not _accepts_loss_scale(task):
            raise ValueError(
                f"mixed_precision='mixed_float16' needs loss scaling, but the task "
                f"{type(task).__name__} has no `loss_scale` argument in compute_gradients; "
                f"use mixed_precision='mixed_bfloat16' or None"
            )
        self.model_dir = model_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.train_steps = int(train_steps)
        self.save_steps = save_steps
        self._saved_step = None  # the step of the last checkpoint this Trainer wrote
        self.log_steps = max(int(log_steps), 1)
        self.jit_compile = jit_compile
        self.progress = progress
        self.chief = is_chief(self.strategy)
        # Several workers agree on a stop (SIGTERM to any of them) through the step's all-reduce.
        self.multi_worker = num_workers(self.strategy) > 1
        with self.strategy.scope():
            with dtype_policy_scope(self.mixed_precision):
                self.model = task.build_model()
            self.optimizer = get_optimizer(learning_rate, self.train_steps, warmup_ratio, weight_decay, clip_norm)
            if fused_optimizer:
                self.optimizer = fuse_optimizer(self.optimizer)
            if self.mixed_precision == "mixed_float16":
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            self.optimizer.build(self.model.trainable_variables)
        # The dropout random states go into checkpoints too, so a resumed run draws the same masks.
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, rng=_random_states(self.model)
        )
        directory = model_dir if self.chief else os.path.join(model_dir, f".worker_{self._task_id()}")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=keep_checkpoint_max, checkpoint_name="ckpt"
        )
        self._train_fn = None
        self._eval_fn = None
        self._writers = {}
        self.history = []  # (step, logs) at every log step, for plots

    # ------------------------------------------------------------------ state
    def _task_id(self):
        resolver = getattr(self.strategy, "cluster_resolver", None)
        return getattr(resolver, "task_id", 0) or 0

    @property
    def global_step(self):
        return int(self.optimizer.iterations.numpy())

    @property
    def num_replicas(self):
        return self.strategy.num_replicas_in_sync

    def initialize(self, init_fn=None):
        """Resumes from the latest checkpoint in model_dir; otherwise calls `init_fn(model)` (e.g. loads a
        pretrained checkpoint). Returns a sentence saying which happened.

        The chief first takes model_dir's lock (one training per directory, see `model_dir_lock`)."""
        if self.chief:
            model_dir_lock.acquire(self.model_dir)
        os.makedirs(self.model_dir, exist_ok=True)
        # Every worker resumes from the chief's checkpoints (model_dir is shared; the others keep none).
        latest = tf.train.latest_checkpoint(self.model_dir)
        if latest:
            message = self._resume(latest)
        elif init_fn is not None:
            message = init_fn(self.model) or "initialised from a pretrained model"
            self.optimizer.iterations.assign(0)
        else:
            message = "no checkpoint to resume and no pretrained model given: random initialisation"
        logger.info(message)
        if self.chief:
            with self._writing("config.json"):
                self.task.config.to_json_file(os.path.join(self.model_dir, "config.json"))
            with self._writing(TRAINER_MARKER):
                atomic_write_text(
                    os.path.join(self.model_dir, TRAINER_MARKER),
                    json.dumps({"task": self.task.name}, indent=2) + "\n",
                )
        # From here a SIGTERM stops the training at its next step boundary, with a checkpoint (see train).
        self._stop = getattr(self, "_stop", None) or StopSignal().__enter__()
        return message

    def _resume(self, latest):
        """Restores the newest checkpoint that reads back whole, starting with `latest`; returns a sentence.

        A truncated or corrupt checkpoint (or one that does not fit the model) is skipped with a warning in
        favour of the previous one; when none restores, a CheckpointError names each and why.
        """
        state = tf.train.get_checkpoint_state(self.model_dir)
        kept = list(state.all_model_checkpoint_paths) if state is not None else []
        kept = [p if os.path.isabs(p) else os.path.join(self.model_dir, p) for p in kept]
        candidates = [latest] + [p for p in reversed(kept) if p != latest]
        failures = []
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (tf.errors.OpError, ValueError, IndexError, AssertionError, RuntimeError, OSError) as e:
                # The checkpoint reader reports damage with several exception types.
                reason = (getattr(e, "message", None) or str(e) or type(e).__name__).strip().splitlines()[0]
                failures.append(f"{path} ({type(e).__name__}: {reason})")
                logger.warning("cannot restore checkpoint %s: %s", path, reason)
                continue
            message = f"resumed from {path} at step {self.global_step}"
            if failures:
                message += (
                    "; skipped the newer checkpoint(s) that are truncated, corrupt or do not match the "
                    "model: " + "; ".join(failures)
                )
            return message
        raise CheckpointError(
            "cannot resume from any checkpoint in " + self.manager.directory + ": each is "
            "truncated, corrupt or does not match the model: "
            + "; ".join(failures)
            + ". Use another --model_dir to start afresh."
        )

    @contextlib.contextmanager
    def _writing(self, what):
        """A full disk while writing `what` into model_dir becomes one DiskFullError (a ValueError) naming it,
        the free space and the checkpoint that stays the latest."""
        try:
            yield
        except Exception as e:
            if not is_disk_full(e):
                raise
            latest = tf.train.latest_checkpoint(self.model_dir)
            kept = (
                f"the last complete checkpoint {latest} is intact and stays the latest"
                if latest
                else "no checkpoint had been saved yet"
            )
            remedy = "free space there (or use another --model_dir) and run the same command again"
            raise disk_full_error(self.model_dir, e, kept, remedy + (" to resume" if latest else ""), what) from e

    def _discard_partial_checkpoint(self, number):
        """Removes what a failed save of `ckpt-NUMBER` left (its data, index and temporary directory)."""
        prefix = os.path.join(self.manager.directory, f"ckpt-{number}")
        if prefix in self.manager.checkpoints:  # a complete one of that number: never touched
            return
        for path in tf.io.gfile.glob(prefix + ".*") + tf.io.gfile.glob(prefix + "_temp*"):
            try:
                if tf.io.gfile.isdir(path):
                    tf.io.gfile.rmtree(path)
                else:
                    tf.io.gfile.remove(path)
            except (tf.errors.OpError, OSError):
                logger.warning("cannot remove the partial checkpoint file %s", path)

    def save(self):
        """Saves a checkpoint of the current step on every worker; returns the path of the one kept (the
        chief's: the other workers write theirs aside and delete it).

        A save that fails (a full disk) leaves the previous checkpoints as they were: the `checkpoint` file
        that names the latest is only rewritten, atomically, after the new one is complete, and the partial
        files are removed."""
        number = self.global_step
        with self._writing(f"the checkpoint of step {number}"):
            try:
                path = self.manager.save(checkpoint_number=number)
            except Exception:
                self._discard_partial_checkpoint(number)
                raise
        self._saved_step = number
        if not self.chief:  # only the chief keeps its checkpoints
            tf.io.gfile.rmtree(self.manager.directory)
            path = os.path.join(self.model_dir, f"ckpt-{self.global_step}")
        return path

    # ------------------------------------------------------------------ steps
    def _global_batch(self, per_replica_batch):
        return per_replica_batch * self.num_replicas

    @property
    def loss_scaled(self):
        return isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)

    def _apply_scaled_gradients(self, grads):
        """Dynamic loss scaling on the summed gradients (in cross-replica context, where the optimizer's own
        LossScaleOptimizer.apply cannot run): unscale and apply when all are finite, else skip the step and
        halve the scale; double it after `dynamic_growth_steps` good steps."""
        lso, variables = self.optimizer, self.model.trainable_variables
        scale = lso.dynamic_scale
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])

        def apply():
            lso.inner_optimizer.apply_gradients(zip([g / tf.cast(scale, g.dtype) for g in grads], variables))
            grow = tf.equal(lso.step_counter, lso.dynamic_growth_steps - 1)
            lso.step_counter.assign(tf.where(grow, tf.zeros_like(lso.step_counter), lso.step_counter + 1))
            scale.assign(tf.where(grow, scale * 2.0, scale))
            return tf.constant(True)

        def skip():
            lso.step_counter.assign(tf.zeros_like(lso.step_counter))
            scale.assign(scale * 0.5)
            return tf.constant(False)

        return tf.cond(finite, apply, skip)

    def build_train_function(self, per_replica_batch):
        """The compiled training step: `fn(iterator)` takes one global batch from a distributed iterator,
        updates the model and returns the losses before the update (plus `learning_rate`, and under
        `STOP_KEY` the sum over the replicas of `fn`'s optional `stop` argument)."""
        return self._build_train_fn(self._global_batch(per_replica_batch))

    def _build_train_fn(self, global_batch):
        task, model, optimizer, strategy = self.task, self.model, self.optimizer, self.strategy
        loss_scaled = self.loss_scaled
        # With one replica there is nothing to all-reduce: the gradients are applied as they come.
        single = self.num_replicas == 1

        shapes = [v.shape for v in model.trainable_variables]
        sizes = [int(np.prod(shape)) for shape in shapes]

        def replica_fn(features, stop):
            if loss_scaled:
                losses, grads = task.compute_gradients(
                    features, model, global_batch, loss_scale=optimizer.dynamic_scale
                )
            else:
                losses, grads = task.compute_gradients(features, model, global_batch)
            # Summed with the losses: > 0 when any worker asks to stop (an identity per replica, so that
            # MirroredStrategy sees a per-replica value rather than the one input tensor).
            losses = {**losses, STOP_KEY: tf.identity(stop)}
            if single:
                return losses, grads
            # One flat vector, so that one all-reduce carries every gradient.
            return losses, tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)

        if self.jit_compile:
            replica_fn = tf.function(replica_fn, jit_compile=True, autograph=False)

        # The step has no tensor-dependent Python control flow: tracing it without AutoGraph gives the same
        # graph in a fraction of the time (each training run traces once).
        @tf.function(autograph=False)
        def train_fn(iterator, stop=None):
            features = next(iterator)
            stop = tf.constant(0.0) if stop is None else tf.cast(stop, tf.float32)
            losses, grads = strategy.run(replica_fn, args=(features, stop))
            if single:
                losses, grads = strategy.experimental_local_results((losses, grads))[0]
            else:
                flat = strategy.reduce(tf.distribute.ReduceOp.SUM, grads, axis=None)
                grads = [tf.reshape(g, shape) for g, shape in zip(tf.split(flat, sizes), shapes)]
                losses = {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in losses.items()}
            learning_rate = optimizer.learning_rate
            if loss_scaled:
                losses["loss_scale"] = tf.cast(optimizer.dynamic_scale, tf.float32)
                self._apply_scaled_gradients(grads)
            else:
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
            losses["learning_rate"] = tf.cast(learning_rate, tf.float32)
            return losses

        return train_fn

    def _build_eval_fn(self):
        task, model, strategy = self.task, self.model, self.strategy

        @tf.function(autograph=False)
        def eval_fn(features):
            return strategy.run(lambda f: task.validation_step(f, model), args=(features,))

        return eval_fn

    def _local(self, value):
        return local_numpy(self.strategy, value)

    def _writer(self, name):
        if not self.chief:
            return None
        if name not in self._writers:
            with self._writing(f"the TensorBoard events ({name}/)"):
                self._writers[name] = tf.summary.create_file_writer(os.path.join(self.model_dir, name))
        return self._writers[name]

    def _write_scalars(self, name, values, step):
        writer = self._writer(name)
        if writer is None:
            return
        with self._writing(f"the TensorBoard events of step {step} ({name}/)"):
            with writer.as_default(step=step):
                for key, value in values.items():
                    if isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(float(value)):
                        tf.summary.scalar(key, float(value))
            writer.flush()

    # ------------------------------------------------------------------ loops
    def train(
        self, dataset_fn, per_replica_batch, eval_dataset_fn=None, eval_steps=None, eval_every=None, stop_at_step=None
    ):
        """Trains up to `train_steps` (or `stop_at_step`, for a run in several parts), resuming from the current
        step.

        dataset_fn(input_context) -> a dataset of per-replica batches of `per_replica_batch` examples; it must be
        deterministic for a resumed run to see the same batches (the trainer skips the batches already seen).
        Returns the last step's logs (and the last evaluation's metrics under "eval/...").
        """
        global_batch = self._global_batch(per_replica_batch)
        start = self.global_step
        skip = start

        def resumed(context):
            return dataset_fn(context).skip(skip)

        dataset = self.strategy.distribute_datasets_from_function(resumed)
        iterator = iter(dataset)
        if self._train_fn is None:
            self._train_fn = self._build_train_fn(global_batch)
        bar = _progress_bar(
            self.train_steps * global_batch,
            start * global_batch,
            True,
            self.progress and self.chief,
            f"train {self.task.name}",
        )
        logs, last = {}, {}
        tick, tick_step = time.time(), start
        # SIGTERM: a checkpoint at the next step boundary, then TrainingPreempted.
        stop = getattr(self, "_stop", None) or StopSignal().__enter__()
        self._stop = None
        try:
            last_step = min(self.train_steps, stop_at_step or self.train_steps)
            while self.global_step < last_step:
                try:
                    step_logs = self._train_fn(iterator, tf.constant(float(stop.requested is not None)))
                except (StopIteration, tf.errors.OutOfRangeError):
                    logger.warning("input ended at step %d before train_steps %d", self.global_step, self.train_steps)
                    break
                step = self.global_step
                logs = {k: float(v.numpy()) for k, v in step_logs.items()}
                # One worker alone decides from its own signal; several stop together at the first step whose
                # all-reduced flag says that one of them was asked to (so all save the same step).
                anyone = logs.pop(STOP_KEY) > 0
                agreed = anyone if self.multi_worker else stop.requested is not None
                if not math.isfinite(logs["total"]):
                    raise TrainingDivergedError(
                        f"the training loss became {logs['total']} at step {step}; stopped. The last good checkpoint "
                        f"is {self.manager.latest_checkpoint or '(none yet)'}; nothing was saved after it."
                    )
                if bar is not None:
                    bar.update(global_batch)
                    bar.set_postfix(loss=f"{logs['total']:.4f}", refresh=False)
                if step % self.log_steps == 0 or step == self.train_steps:
                    elapsed = max(time.time() - tick, 1e-9)
                    logs["examples_per_second"] = (step - tick_step) * global_batch / elapsed
                    tick, tick_step = time.time(), step
                    self._write_scalars("train", logs, step)
                    self.history.append((step, dict(logs)))
                saved = None
                if self.save_steps and step % self.save_steps == 0:
                    saved = self.save()
                if eval_dataset_fn is not None and eval_every and step % eval_every == 0 and step < self.train_steps:
                    last = self.evaluate(eval_dataset_fn, steps=eval_steps)
                if agreed and step < last_step:
                    name = stop.requested or f"{STOP_SIGNALS[0].name} to another worker"
                    raise TrainingPreempted(step, saved or self.save(), name)
        finally:
            stop.__exit__()
            if bar is not None:
                bar.close()
        # At the end, unless --save_steps has just saved this very step (the checkpoint would be written twice).
        if self._saved_step != self.global_step and (self.global_step > start or not self.manager.latest_checkpoint):
            self.save()
        if eval_dataset_fn is not None:
            last = self.evaluate(eval_dataset_fn, steps=eval_steps)
        out = dict(logs)
        out.update({f"eval/{k}": v for k, v in last.items()})
        return out

    def evaluate(self, dataset_fn, steps=None):
        """Runs the task's validation over the dataset (at most `steps` batches); returns the metrics."""
        dataset = self.strategy.distribute_datasets_from_function(dataset_fn)
        if self._eval_fn is None:
            self._eval_fn = self._build_eval_fn()
        state = None
        for i, features in enumerate(dataset):
            if steps is not None and i >= steps:
                break
            step_logs = self._eval_fn(features)
            state = aggregate(state, {k: self._local(v) for k, v in step_logs.items()})
        metrics = self.task.reduce_validation(state or {})
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        self._write_scalars("eval", scalars, self.global_step)
        if self.chief:
            record = {"step": self.global_step, **scalars}
            with self._writing("eval_results.json"):
                atomic_write_text(
                    os.path.join(self.model_dir, "eval_results.json"), json.dumps(record, indent=2) + "\n"
                )
        logger.info("evaluation at step %d: %s", self.global_step, scalars)
        return metrics

    def predict(self, dataset_fn, passthrough=()):
        """Yields per-batch numpy dicts of the task's predictions plus the `passthrough` features (e.g. ids)."""
        return predict_batches(self.strategy, self.task, self.model, dataset_fn, passthrough)
