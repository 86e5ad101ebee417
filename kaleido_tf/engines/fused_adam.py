"""Adam with TensorFlow's fused update kernel: the same optimizer, variables and arithmetic, fewer memory passes.

Keras' Adam updates each variable with about a dozen separate element-wise ops (subtract, multiply, add,
square, sqrt, divide, three assigns), each reading and writing whole arrays: for the base model's 121 M
parameters that is ~30 passes over half a gigabyte per step, and the update becomes a sizeable part of a CPU
training step. `ResourceApplyAdam`, the kernel of TF1's AdamOptimizer (the original's optimizer), does the same
update in one pass:

    lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m += (g - m) * (1 - beta_1);   v += (g^2 - v) * (1 - beta_2);   var -= lr_t * m / (sqrt(v) + epsilon)

The global-norm clipping is fused the same way: the squared norm of each gradient is one reduction
(`tf.nn.l2_loss`) instead of a squared copy followed by a sum.

`FusedAdam` subclasses keras.optimizers.Adam and replaces only `update_step` (TensorFlow backend, dense
gradients, no AMSGrad) and clips by global norm itself, through the public `apply`; slots, names, checkpoints
and the learning-rate schedule are Adam's own.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="kaleido_tf")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose per-variable update is TensorFlow's fused Adam kernel.

    With `global_clipnorm` alone (no clipnorm, clipvalue, loss_scale_factor or gradient accumulation, which
    Keras' Adam handles itself) the clipping is this class's own `clip_by_global_norm`, applied in `apply`
    before Adam's update: `fused_global_clipnorm` holds the norm and Keras' `global_clipnorm` is None.
    """

    def __init__(self, *args, global_clipnorm=None, **kwargs):
        own = bool(global_clipnorm) and not any(
            kwargs.get(key) for key in ("clipnorm", "clipvalue", "loss_scale_factor", "gradient_accumulation_steps")
        )
        super().__init__(*args, global_clipnorm=None if own else global_clipnorm, **kwargs)
        self.fused_global_clipnorm = global_clipnorm if own else None

    def update_step(self, gradient, variable, learning_rate):
        if (
            keras.backend.backend() != "tensorflow"
            or self.amsgrad
            or isinstance(gradient, tf.IndexedSlices)
            or isinstance(variable, keras.Variable)
        ):
            return super().update_step(gradient, variable, learning_rate)
        # `variable` is the tf.Variable (a per-device component under a distribution strategy).
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        m = self._momentums[self._get_variable_index(variable)].value
        v = self._velocities[self._get_variable_index(variable)].value
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=m.handle,
            v=v.handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )

    def apply(self, grads, trainable_variables=None):
        """Adam's `apply`, the gradients first clipped to `global_clipnorm` by `clip_by_global_norm`."""
        if self.fused_global_clipnorm:
            grads = self.clip_by_global_norm(grads)
        return super().apply(grads, trainable_variables)

    def clip_by_global_norm(self, grads):
        """Keras' global-norm clipping, with one fused reduction per gradient for the norm (sparse gradients
        are made dense first); None gradients stay None."""
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        squared = [2.0 * tf.nn.l2_loss(tf.cast(g, tf.float32)) for g in grads if g is not None]  # sum(g^2)
        if not squared:
            return grads
        norm = tf.sqrt(tf.add_n(squared))
        clip = tf.cast(self.fused_global_clipnorm, norm.dtype)
        scale = clip * tf.minimum(1.0 / norm, 1.0 / clip) + (norm - norm)  # NaN when the norm is not finite
        return [g * tf.cast(scale, g.dtype) if g is not None else g for g in grads]

    def get_config(self):
        config = super().get_config()
        if self.fused_global_clipnorm:
            config["global_clipnorm"] = self.fused_global_clipnorm
        return config

    @classmethod
    def from_adam(cls, adam):
        """A FusedAdam with the hyperparameters, schedule, clipping and name of a (not yet built) Adam."""
        if adam.built:
            raise ValueError("FusedAdam.from_adam needs an Adam that is not built yet (no slots to carry over)")
        return cls(
            learning_rate=adam._learning_rate,
            beta_1=adam.beta_1,
            beta_2=adam.beta_2,
            epsilon=adam.epsilon,
            amsgrad=adam.amsgrad,
            weight_decay=adam.weight_decay,
            clipnorm=adam.clipnorm,
            clipvalue=adam.clipvalue,
            global_clipnorm=adam.global_clipnorm,
            name=adam.name,
        )


def fuse_optimizer(optimizer):
    """FusedAdam in place of a plain, unbuilt keras Adam; any other optimizer is returned as it is."""
    if type(optimizer) is keras.optimizers.Adam and keras.backend.backend() == "tensorflow":
        return FusedAdam.from_adam(optimizer)
    return optimizer
