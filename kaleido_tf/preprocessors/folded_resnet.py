"""ResNet-50 for inference with each BatchNormalization folded into the convolution before it.

`keras.applications.ResNet50(include_top=False, pooling="avg")` at inference computes, per convolution,
conv(x, W) + b followed by the affine BN(y) = gamma * (y - mean) / sqrt(var + eps) + beta. Folding it gives
one convolution with W' = W * s and b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps) (per output
channel; folded in float64, stored in the compute dtype). The network is then conv + bias (+ residual add)
+ ReLU only, which TensorFlow's graph remapper fuses into single oneDNN convolutions; in bfloat16 these run
on the CPU's AMX/AVX512-BF16 units with bfloat16 weights held once, instead of Keras' mixed policy casting
each float32 weight and running every BatchNormalization in float32 at each call.

The caffe input transform of the extractor (RGB -> BGR, minus the ImageNet mean per channel) is folded too:
the first kernel's input channels are reversed, so the network takes RGB minus the reversed mean (an exact
permutation, and no negative-stride slice, which TensorFlow's layout optimizer cannot handle).

In float32 the result equals the Keras model's up to rounding (measured and tested: max |diff| below 1e-5
of the features' scale); in bfloat16 it carries bfloat16's 8-bit mantissa (see docs/raw_images.md).
"""

import numpy as np
import tensorflow as tf

# (stack, blocks) of ResNet-50 v1 in keras.applications: conv2..conv5, 3/4/6/3 bottleneck blocks.
RESNET50_STACKS = ((2, 3), (3, 4), (4, 6), (5, 3))
COMPUTE_DTYPES = ("float32", "bfloat16")


def _prefixes():
    """The name prefixes of ResNet-50's convolutions in keras.applications, in the order they run."""
    yield "conv1"
    for stack, blocks in RESNET50_STACKS:
        for block in range(1, blocks + 1):
            for part in ("0", "1", "2", "3") if block == 1 else ("1", "2", "3"):
                yield f"conv{stack}_block{block}_{part}"


def _fold(layers, prefix):
    """(kernel, bias) of `prefix`_conv with `prefix`_bn folded in (float64), and the conv's strides and padding."""
    conv_name, bn_name = f"{prefix}_conv", f"{prefix}_bn"
    if conv_name not in layers or bn_name not in layers:
        raise ValueError(f"FoldedResNet50: the model has no {conv_name} / {bn_name} (not keras' ResNet50)")
    conv, bn = layers[conv_name], layers[bn_name]
    kernel = np.asarray(conv.kernel.numpy(), np.float64)  # [kh, kw, in, out]
    bias = np.asarray(conv.bias.numpy(), np.float64) if conv.use_bias else np.zeros(kernel.shape[-1])
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.scale else 1.0
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.center else 0.0
    mean = np.asarray(bn.moving_mean.numpy(), np.float64)
    var = np.asarray(bn.moving_variance.numpy(), np.float64)
    scale = gamma / np.sqrt(var + bn.epsilon)  # [out]
    return kernel * scale, (bias - mean) * scale + beta, tuple(conv.strides), conv.padding.upper()


class FoldedResNet50:
    """Inference-only ResNet-50 from a built Keras ResNet50, BatchNormalization folded into its convolutions.

    Args:
      model: `keras.applications.ResNet50(include_top=False, pooling="avg", ...)` with its weights.
      bgr_mean: the caffe mean subtracted from the BGR input (per channel, B, G, R).
      compute_dtype: "float32" or "bfloat16" (weights and activations; the pooled output is float32).

    Calling it maps uint8 RGB crops [N, S, S, 3] to float32 features [N, 2048] inside a tf.function.
    Every Conv2D and BatchNormalization of the model is used once; any other layout is refused.
    """

    def __init__(self, model, bgr_mean, compute_dtype="float32"):
        if compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}, got {compute_dtype!r}")
        self.compute_dtype = compute_dtype
        layers = {layer.name: layer for layer in model.layers}
        prefixes = list(_prefixes())
        dtype = tf.as_dtype(compute_dtype)
        # RGB input minus the mean in RGB order == the BGR input minus the BGR mean, channels permuted.
        self.rgb_mean = tf.constant(np.asarray(bgr_mean, np.float32)[::-1])
        self.convs = {}
        for prefix in prefixes:
            kernel, bias, strides, padding = _fold(layers, prefix)
            if prefix == "conv1":
                kernel = kernel[:, :, ::-1, :]  # BGR input channels -> RGB
            self.convs[prefix] = (
                tf.cast(tf.constant(kernel.astype(np.float32)), dtype),
                tf.cast(tf.constant(bias.astype(np.float32)), dtype),
                strides,
                padding,
            )
        # every Conv2D and BatchNormalization of the model must have been folded in
        used = {f"{prefix}_{kind}" for prefix in prefixes for kind in ("conv", "bn")}
        kinds = ("Conv2D", "BatchNormalization")
        extra = sorted(name for name, layer in layers.items() if type(layer).__name__ in kinds and name not in used)
        if extra:
            raise ValueError(f"FoldedResNet50: layers of the model not in ResNet-50's layout: {extra[:5]}")

    def _conv(self, x, prefix, relu=True):
        kernel, bias, strides, padding = self.convs[prefix]
        y = tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=strides, padding=padding), bias)
        return tf.nn.relu(y) if relu else y

    def __call__(self, crops):
        """uint8 RGB [N, S, S, 3] -> float32 [N, 2048]."""
        x = tf.cast(tf.cast(crops, tf.float32) - self.rgb_mean, self.compute_dtype)  # [N, S, S, 3]
        x = tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]])
        x = self._conv(x, "conv1")  # [N, S/2, S/2, 64]
        x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        x = tf.nn.max_pool2d(x, 3, 2, "VALID")  # [N, S/4, S/4, 64]
        for stack, blocks in RESNET50_STACKS:
            for block in range(1, blocks + 1):
                p = f"conv{stack}_block{block}"
                shortcut = self._conv(x, f"{p}_0", relu=False) if block == 1 else x
                y = self._conv(x, f"{p}_1")
                y = self._conv(y, f"{p}_2")
                y = self._conv(y, f"{p}_3", relu=False)
                x = tf.nn.relu(shortcut + y)  # [N, h, w, 4 * filters]
        return tf.reduce_mean(tf.cast(x, tf.float32), axis=[1, 2])  # [N, 2048]


__all__ = ["FoldedResNet50", "RESNET50_STACKS"]
