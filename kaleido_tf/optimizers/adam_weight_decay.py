"""EasyTransfer's AdamW variant as a Keras 3 optimizer.

Unlike keras.optimizers.AdamW, the decay term is added to the Adam update before the bias-corrected step
size multiplies it:

    lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m = beta_1 * m + (1 - beta_1) * g;   v = beta_2 * v + (1 - beta_2) * g^2
    var -= lr_t * (m / (sqrt(v) + epsilon) + weight_decay * var)     # decay only where the name allows
"""

import re

import keras
from keras import ops

DEFAULT_EXCLUDE = ("LayerNorm", "layer_norm", "bias")


@keras.saving.register_keras_serializable(package="kaleido_tf")
class AdamWeightDecay(keras.optimizers.Optimizer):
    """Adam with decoupled weight decay as EasyTransfer applies it.

    Args:
        weight_decay_rate: decay factor; variables whose path matches any regex in `exclude_from_decay` get none.
        exclude_from_decay: regexes searched in the variable path (Keras paths keep the words LayerNorm and bias
            where the original names have them).
    """

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay_rate=0.0,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        exclude_from_decay=DEFAULT_EXCLUDE,
        name="adam_weight_decay",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.weight_decay_rate = weight_decay_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.exclude_from_decay = tuple(exclude_from_decay or ())

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["m", "v"])
        self._decay_flags = {self._var_key(v): self.uses_weight_decay(v) for v in var_list}

    def uses_weight_decay(self, variable):
        if not self.weight_decay_rate:
            return False
        path = getattr(variable, "path", None) or variable.name
        return not any(re.search(pattern, path) for pattern in self.exclude_from_decay)

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        t = ops.cast(self.iterations + 1, variable.dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, variable.dtype), t)
        beta_2_power = ops.power(ops.cast(self.beta_2, variable.dtype), t)
        lr_t = lr * ops.sqrt(1.0 - beta_2_power) / (1.0 - beta_1_power)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        next_m = self.beta_1 * m + (1.0 - self.beta_1) * gradient
        next_v = self.beta_2 * v + (1.0 - self.beta_2) * ops.square(gradient)
        update = next_m / (ops.sqrt(next_v) + self.epsilon)
        if self._decay_flags.get(self._var_key(variable), False):
            update = update + self.weight_decay_rate * variable
        self.assign(m, next_m)
        self.assign(v, next_v)
        self.assign_sub(variable, lr_t * update)

    def get_config(self):
        config = super().get_config()
        config.update(
            weight_decay_rate=self.weight_decay_rate,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
            exclude_from_decay=list(self.exclude_from_decay),
        )
        return config
