"""keras-hub style helpers: one call checks config round-trip, saving and mixed precision."""

from __future__ import annotations

import keras
import numpy as np


def _shapes(shape_or_shapes):
    """A list of shapes means a multi-input layer; a tuple is one shape."""
    return shape_or_shapes if isinstance(shape_or_shapes, list) else [shape_or_shapes]


def _forward(model_or_layer, inputs):
    out = model_or_layer(inputs, training=False)
    if isinstance(out, dict):
        return {k: np.asarray(v) for k, v in out.items()}
    return np.asarray(out)


def assert_outputs_close(a, b, atol=1e-5):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(a[key], b[key], atol=atol, err_msg=key)
    else:
        np.testing.assert_allclose(a, b, atol=atol)


def random_inputs(shapes, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    arrays = [(rng.standard_normal(s) * scale).astype("float32") for s in _shapes(shapes)]
    return arrays if isinstance(shapes, list) else arrays[0]


def run_layer_test(layer_cls, init_kwargs, input_shape, expected_output_shape, tmp_path):
    """Forward, get_config/from_config, ``.keras`` save/load and mixed_bfloat16 for a layer.

    ``input_shape`` is a shape tuple or a list of shapes (multi-input layer).
    """
    inputs = random_inputs(input_shape)
    layer = layer_cls(**init_kwargs)
    output = _forward(layer, inputs)
    assert output.shape == tuple(expected_output_shape)
    assert np.all(np.isfinite(output))

    # Config round-trip: same config, and the same output once weights are copied.
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    _forward(clone, inputs)
    clone.set_weights(layer.get_weights())
    assert_outputs_close(_forward(clone, inputs), output)

    # .keras round-trip inside a functional model.
    symbolic = [keras.Input(shape=s[1:], batch_size=s[0]) for s in _shapes(input_shape)]
    multi = isinstance(input_shape, list)
    model_inputs = symbolic if multi else symbolic[0]
    model = keras.Model(model_inputs, layer(model_inputs))
    path = tmp_path / f"{layer_cls.__name__}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert_outputs_close(_forward(loaded, inputs), output)

    # Mixed precision: builds and runs in bfloat16 with float32 variables.
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = layer_cls(**init_kwargs)
        mixed_out = mixed(inputs, training=False)
        assert str(mixed_out.dtype) in ("bfloat16", "<dtype: 'bfloat16'>")
        assert all(v.dtype == "float32" for v in mixed.weights)
        assert np.all(np.isfinite(np.asarray(mixed_out, dtype="float32")))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return layer, output


def he_scale_weights(model, seed: int = 0):
    """Re-draws the kernels He-scaled (and biases / betas ~ N(0, 0.1)): a fresh DeepLab's
    logits are ~1e-15 (every pixel a tie), these give several classes with clear margins.
    Returns the model."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape, name = tuple(weight.shape), weight.path.split("/")[-1]
        if name == "kernel":
            depthwise = len(shape) == 4 and shape[-1] == 1
            fan_in = shape[0] * shape[1] if depthwise else int(np.prod(shape[:-1]))
            weight.assign(rng.normal(0, np.sqrt(2 / fan_in), shape).astype("float32"))
        elif name in ("bias", "beta"):
            weight.assign(rng.normal(0, 0.1, shape).astype("float32"))
    return model
