"""Image-text contrastive (ITC) head: text and image embeddings projected into one normalised space.

Shape legend: B batch, H hidden size, D embedding size.
"""

import keras
from keras import ops

from kaleido_tf.layers.core import dense


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """x / max(||x||, epsilon) along `axis`, in float32."""
    x = ops.cast(x, "float32")
    norm = ops.sqrt(ops.sum(ops.square(x), axis=axis, keepdims=True))
    return x / ops.maximum(norm, epsilon)


@keras.saving.register_keras_serializable(package="kaleido_tf")
class ITCHead(keras.layers.Layer):
    """Two linear projections (text, image) from H to D, L2-normalised, and a learnable temperature.

    `call(text_features [B, H], image_features [B, H])` returns {"text_embedding" [B, D], "image_embedding"
    [B, D] (float32, unit length), "temperature" []}. The similarity logits are `text @ image.T / temperature`.

    The temperature is one variable initialised at `temperature` and clipped to [min_temperature,
    max_temperature] where it is read, as ALBEF does (0.07 in [0.001, 0.5]); while the stored value lies
    outside the range the clipped value gets no gradient, so it cannot run away.

    Args:
        hidden_size: H, the width of the backbone outputs.
        embedding_size: D, the width of the shared space (256 as ALBEF).
        temperature: initial temperature.
        min_temperature, max_temperature: the clip range of the temperature.
        initializer_range: stddev of the truncated-normal initialiser of the projections.
    """

    def __init__(
        self,
        hidden_size,
        embedding_size=256,
        temperature=0.07,
        min_temperature=0.001,
        max_temperature=0.5,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0 < min_temperature <= temperature <= max_temperature:
            raise ValueError(
                f"temperature {temperature} must lie in [min_temperature, max_temperature] = "
                f"[{min_temperature}, {max_temperature}], both positive"
            )
        self.hidden_size = hidden_size
        self.embedding_size = embedding_size
        self.temperature = temperature
        self.min_temperature = min_temperature
        self.max_temperature = max_temperature
        self.initializer_range = initializer_range

    def build(self, input_shape=None):
        policy = self.dtype_policy
        self.text_projection = dense(self.embedding_size, "text_projection", self.initializer_range, dtype=policy)
        self.text_projection.build((None, self.hidden_size))
        self.image_projection = dense(self.embedding_size, "image_projection", self.initializer_range, dtype=policy)
        self.image_projection.build((None, self.hidden_size))
        self.temperature_variable = self.add_weight(
            name="temperature",
            shape=(),
            initializer=keras.initializers.Constant(self.temperature),
            autocast=False,
        )
        self.built = True

    def project_text(self, text_features):
        """[B, H] -> unit-length float32 [B, D]."""
        return l2_normalize(self.text_projection(text_features))

    def project_image(self, image_features):
        """[B, H] -> unit-length float32 [B, D]."""
        return l2_normalize(self.image_projection(image_features))

    def clipped_temperature(self):
        """The temperature in use: the variable clipped to [min_temperature, max_temperature], float32 []."""
        return ops.clip(ops.cast(self.temperature_variable, "float32"), self.min_temperature, self.max_temperature)

    def call(self, text_features, image_features):
        return {
            "text_embedding": self.project_text(text_features),  # [B, D]
            "image_embedding": self.project_image(image_features),  # [B, D]
            "temperature": self.clipped_temperature(),  # []
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            embedding_size=self.embedding_size,
            temperature=self.temperature,
            min_temperature=self.min_temperature,
            max_temperature=self.max_temperature,
            initializer_range=self.initializer_range,
        )
        return config
