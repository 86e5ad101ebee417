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

`FusedAdam` subclasses keras.optimizers.Adam and replaces only `update_step` and the global-norm clipping
(TensorFlow backend, dense gradients, no AMSGrad); slots, names, checkpoints and the learning-rate schedule
are Adam's own.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="kaleido_tf")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose per-variable update is TensorFlow's fused Adam kernel."""

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

    def _clip_gradients(self, grads):
        if (
            keras.backend.backend() != "tensorflow"
            or not self.global_clipnorm
            or self.clipnorm
            or any(isinstance(g, tf.IndexedSlices) for g in grads)
        ):
            return super()._clip_gradients(grads)
        # keras' clip_by_global_norm, with one fused reduction per gradient for the norm.
        squared = [2.0 * tf.nn.l2_loss(tf.cast(g, tf.float32)) for g in grads if g is not None]  # sum(g^2)
        norm = tf.sqrt(tf.add_n(squared))
        clip = tf.cast(self.global_clipnorm, norm.dtype)
        scale = clip * tf.minimum(1.0 / norm, 1.0 / clip) + (norm - norm)  # NaN when the norm is not finite
        return [g * tf.cast(scale, g.dtype) if g is not None else g for g in grads]

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
