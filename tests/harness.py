"""Shared checks every public layer, the backbone and the task models go through, at tiny sizes.

`run_layer_test` builds the layer from its keyword arguments, calls it on `input_data` and checks:
  1. the output shapes (and float32 outputs under the default policy, all finite);
  2. every keyword argument is stored as a same-named attribute and returned by `get_config()`;
  3. `from_config(get_config())` gives the same config and, with the weights copied, the same outputs;
  4. a `.keras` file saved and loaded gives the same outputs;
  5. under `mixed_bfloat16` the floating outputs are bfloat16, every variable is float32 and every sublayer
     computes in bfloat16 (a sublayer left on the global float32 policy would cast its input back up);
  6. a gradient reaches every trainable weight: not None, not all zero.
`run_backbone_test` adds what a backbone promises: the same outputs under `tf.function`, each example's
outputs independent of the others in the batch, and unique variable paths (the checkpoint map needs them).

input_data is the tuple of positional call arguments (a single tensor or dict is one argument); call_kwargs go
to every call unchanged (tensors such as `attention_bias` included). Outputs may be a tensor, a tuple/list or
a dict; expected_output_shape has the same structure, with a shape tuple per tensor.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

PRECISION_POLICY = "mixed_bfloat16"


# ---------------------------------------------------------------------------------------------- structures
def _as_args(input_data):
    return input_data if isinstance(input_data, tuple) else (input_data,)


def _flat_outputs(output):
    """[(name, tensor)] of a tensor, a tuple/list or a dict of tensors."""
    if isinstance(output, dict):
        return [(str(key), output[key]) for key in sorted(output)]
    if isinstance(output, (tuple, list)):
        return [(f"output[{i}]", value) for i, value in enumerate(output)]
    return [("output", output)]


def _flat_shapes(expected, output):
    if isinstance(output, dict):
        assert set(expected) == set(output), f"output keys {sorted(output)} != expected {sorted(expected)}"
        return [tuple(expected[key]) for key in sorted(output)]
    if isinstance(output, (tuple, list)):
        assert len(expected) == len(output), f"{len(output)} outputs, expected {len(expected)}"
        return [tuple(shape) for shape in expected]
    return [tuple(expected)]


def _is_floating(tensor):
    return keras.backend.is_float_dtype(keras.backend.standardize_dtype(tensor.dtype))


def _numpy(tensor):
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32")))


def _assert_same_outputs(got, want, atol, what):
    got, want = _flat_outputs(got), _flat_outputs(want)
    assert [name for name, _ in got] == [name for name, _ in want], what
    for (name, a), (_, b) in zip(got, want):
        np.testing.assert_allclose(_numpy(a), _numpy(b), atol=atol, rtol=0, err_msg=f"{what}: {name}")


def _json_value(value):
    """A config value as JSON gives it back (tuples become lists)."""
    return json.loads(json.dumps(value))


def _call(layer, input_data, call_kwargs):
    return layer(*_as_args(input_data), **(call_kwargs or {}))


# ---------------------------------------------------------------------------------------------- checks
def check_output_shapes(output, expected_output_shape, expected_dtype="float32"):
    for (name, tensor), shape in zip(_flat_outputs(output), _flat_shapes(expected_output_shape, output)):
        assert tuple(tensor.shape) == shape, f"{name}: shape {tuple(tensor.shape)}, expected {shape}"
        if _is_floating(tensor):
            assert keras.backend.standardize_dtype(tensor.dtype) == expected_dtype, f"{name}: dtype {tensor.dtype}"
            assert np.all(np.isfinite(_numpy(tensor))), f"{name}: not finite"


def check_init_kwargs_stored(layer, init_kwargs):
    """Flat keyword arguments stored as same-named attributes and returned by get_config() under that name."""
    config = layer.get_config()
    for name, value in init_kwargs.items():
        assert hasattr(layer, name), f"{type(layer).__name__} keeps no attribute `{name}`"
        assert name in config, f"{type(layer).__name__}.get_config() lacks `{name}`"
        if isinstance(value, (bool, int, float, str, list, tuple)) or value is None:
            assert _json_value(config[name]) == _json_value(value), f"get_config()[{name!r}] = {config[name]!r}"
            assert _json_value(getattr(layer, name)) == _json_value(value), f"attribute {name} differs"


def check_config_round_trip(cls, layer, input_data, call_kwargs, output):
    config = layer.get_config()
    json.dumps(config)  # serialisable as it stands
    revived = cls.from_config(config)
    assert revived.get_config() == config, "from_config(get_config()).get_config() differs"
    _call(revived, input_data, call_kwargs)
    revived.set_weights(layer.get_weights())
    _assert_same_outputs(_call(revived, input_data, call_kwargs), output, 0.0, "from_config with copied weights")


def check_saving(layer, input_data, call_kwargs, output, directory):
    path = os.path.join(directory, f"{type(layer).__name__}.keras")
    keras.saving.save_model(layer, path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(layer)
    assert loaded.get_config() == layer.get_config()
    _assert_same_outputs(_call(loaded, input_data, call_kwargs), output, 0.0, ".keras save and load")


def check_precision(cls, init_kwargs, input_data, call_kwargs, expected_output_shape):
    layer = cls(**init_kwargs, dtype=PRECISION_POLICY)
    output = _call(layer, input_data, call_kwargs)
    check_output_shapes(output, expected_output_shape, expected_dtype="bfloat16")
    for weight in layer.weights:
        assert keras.backend.standardize_dtype(weight.dtype) == "float32", f"{weight.path}: {weight.dtype}"
    for sublayer in layer._flatten_layers(include_self=True, recursive=True):
        assert sublayer.compute_dtype == "bfloat16", f"sublayer {sublayer.name} computes in {sublayer.compute_dtype}"
        assert sublayer.variable_dtype == "float32", f"sublayer {sublayer.name} stores {sublayer.variable_dtype}"


def check_gradients(layer, input_data, call_kwargs, expected_num_trainable_weights=None, no_gradient=(), seed=0):
    """The gradient of a random projection of every floating output reaches each trainable weight, except those
    whose path contains one of `no_gradient` (weights the outputs do not use), which must get none."""
    weights = layer.trainable_weights
    assert weights, f"{type(layer).__name__} has no trainable weights"
    if expected_num_trainable_weights is not None:
        assert len(weights) == expected_num_trainable_weights, [w.path for w in weights]
    rng = np.random.default_rng(seed)
    with tf.GradientTape() as tape:
        output = _call(layer, input_data, call_kwargs)
        loss = 0.0
        for _, tensor in _flat_outputs(output):
            if _is_floating(tensor):
                projection = tf.constant(rng.normal(size=tuple(tensor.shape)), tensor.dtype)
                loss += tf.reduce_sum(tf.cast(tensor * projection, "float32"))
    grads = tape.gradient(loss, weights)
    reached = {w.path: g is not None and np.any(tf.convert_to_tensor(g).numpy()) for w, g in zip(weights, grads)}
    unused = {path for path in reached if any(part in path for part in no_gradient)}
    assert unused or not no_gradient, f"no weight path contains any of {no_gradient}"
    missing = [path for path, ok in reached.items() if not ok and path not in unused]
    assert not missing, f"no gradient (None or all zero) reaches {missing}"
    unexpected = [path for path in unused if reached[path]]
    assert not unexpected, f"a gradient reaches {unexpected}, listed in no_gradient"


# ---------------------------------------------------------------------------------------------- entry points
def run_layer_test(
    cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    tmp_path,
    call_kwargs=None,
    expected_num_trainable_weights=None,
    run_saving=True,
    run_precision=True,
    run_gradients=True,
    no_gradient=(),
):
    """The checks of the module docstring; returns (layer, output) for the caller's own value checks."""
    layer = cls(**init_kwargs)
    output = _call(layer, input_data, call_kwargs)
    assert layer.built
    check_output_shapes(output, expected_output_shape)
    check_init_kwargs_stored(layer, init_kwargs)
    check_config_round_trip(cls, layer, input_data, call_kwargs, output)
    if run_saving:
        check_saving(layer, input_data, call_kwargs, output, os.fspath(tmp_path))
    if run_precision:
        check_precision(cls, init_kwargs, input_data, call_kwargs, expected_output_shape)
    if run_gradients:
        check_gradients(layer, input_data, call_kwargs, expected_num_trainable_weights, no_gradient)
    return layer, output


def run_backbone_test(cls, init_kwargs, input_data, expected_output_shape, tmp_path, call_kwargs=None, **kwargs):
    """run_layer_test, then tf.function, per-example independence and unique variable paths."""
    layer, output = run_layer_test(
        cls, init_kwargs, input_data, expected_output_shape, tmp_path, call_kwargs=call_kwargs, **kwargs
    )
    traced = tf.function(lambda data: _call(layer, data, call_kwargs))
    _assert_same_outputs(traced(input_data), output, 1e-5, "tf.function")

    batch_size = _flat_outputs(output)[0][1].shape[0]

    def example(structure, i):
        return keras.tree.map_structure(lambda x: x[i : i + 1], structure)

    for i in range(batch_size):
        kwargs_i = {
            key: example(value, i) if getattr(value, "shape", ())[:1] == (batch_size,) else value
            for key, value in (call_kwargs or {}).items()
        }
        alone = _call(layer, example(input_data, i), kwargs_i)
        _assert_same_outputs(alone, example(output, i), 1e-5, f"example {i} alone vs in the batch")

    paths = [w.path for w in layer.weights]
    assert len(set(paths)) == len(paths), "variable paths repeat"
    return layer, output
