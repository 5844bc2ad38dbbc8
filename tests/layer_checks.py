"""The one check every layer of the package goes through (after keras-hub's `run_layer_test`).

`check_layer(layer, input_shape, tmp_path=...)` exercises a configured layer instance the way a
user's model will: copies rebuilt from its config (as is, through JSON, through `keras.saving`)
that compute the same outputs, weight counts, symbolic and eager calls that agree on the output
shape, a `.keras` file round trip that reproduces the outputs, and a short `fit` in which
gradients flow through the layer to a trainable layer in front of it.
"""

import keras
import numpy as np
from keras import ops

from checks import rebuilt


def _random_inputs(input_shape, dtype, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=input_shape).astype(dtype)


def _fresh_copy(layer):
    return type(layer).from_config(layer.get_config())


def _assert_weight_counts(layer, num_trainable, num_non_trainable):
    assert len(layer.trainable_weights) == num_trainable, (
        f"{layer.name}: {len(layer.trainable_weights)} trainable weights, expected {num_trainable}"
    )
    assert len(layer.non_trainable_weights) == num_non_trainable, (
        f"{layer.name}: {len(layer.non_trainable_weights)} non-trainable weights, "
        f"expected {num_non_trainable}"
    )


def check_layer(
    layer,
    input_shape,
    *,
    tmp_path,
    expected_output_shape=None,
    num_trainable_weights=0,
    num_non_trainable_weights=0,
    input_dtype="float32",
    run_fit=True,
    atol=1e-5,
    seed=0,
):
    """Checks one configured layer instance end to end; returns its eager output (numpy).

    Args:
        layer: an unbuilt layer instance (it is built here, by the eager call).
        input_shape: full input shape, batch dimension included.
        tmp_path: a directory for the `.keras` file (pytest's `tmp_path`).
        expected_output_shape: full output shape; defaults to `input_shape`.
        num_trainable_weights, num_non_trainable_weights: the counts after building.
        input_dtype: dtype of the random inputs.
        run_fit: also train a small model around the layer for two steps.
        atol: tolerance between the outputs of the layer and of its reloaded copies.
        seed: seed of the random inputs.
    """
    input_shape = tuple(input_shape)
    expected_output_shape = tuple(expected_output_shape or input_shape)
    x = _random_inputs(input_shape, input_dtype, seed)

    # Symbolic call on a fresh copy (as when the layer is used in a Functional model).
    symbolic = _fresh_copy(layer)(keras.Input(batch_shape=input_shape, dtype=input_dtype))
    assert tuple(symbolic.shape) == expected_output_shape, (symbolic.shape, expected_output_shape)
    assert tuple(layer.compute_output_shape(input_shape)) == expected_output_shape

    # Eager call builds the layer under test.
    output = ops.convert_to_numpy(layer(x))
    assert output.shape == expected_output_shape, (output.shape, expected_output_shape)
    assert np.all(np.isfinite(output)), "eager output is not finite"
    _assert_weight_counts(layer, num_trainable_weights, num_non_trainable_weights)

    # Config round trip: copies rebuilt from the config, with the weights they build
    # themselves, compute the same function (the package's layers initialise their weights
    # from their config alone).
    for copy in rebuilt(layer):
        np.testing.assert_allclose(ops.convert_to_numpy(copy(x)), output, atol=atol)

    # `.keras` round trip: the reloaded model is the same class of layer, same weights, outputs.
    inputs = keras.Input(batch_shape=input_shape, dtype=input_dtype)
    model = keras.Model(inputs, layer(inputs))
    path = str(tmp_path / f"{layer.name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    reloaded_layer = reloaded.layers[-1]
    assert type(reloaded_layer) is type(layer)
    for saved, restored in zip(layer.get_weights(), reloaded_layer.get_weights()):
        np.testing.assert_array_equal(saved, restored)
    np.testing.assert_allclose(
        ops.convert_to_numpy(reloaded.predict(x, verbose=0)),
        ops.convert_to_numpy(model.predict(x, verbose=0)),
        atol=atol,
    )

    if run_fit:
        _check_fit(_fresh_copy(layer), input_shape, expected_output_shape, x)
    return output


def _check_fit(layer, input_shape, output_shape, x):
    """Two training steps with a trainable layer in front: gradients must flow through `layer`."""
    inputs = keras.Input(batch_shape=(None,) + input_shape[1:])
    front = keras.layers.Dense(input_shape[-1], name="front")
    model = keras.Model(inputs, layer(front(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    y = _random_inputs(output_shape, "float32", seed=1)
    before = ops.convert_to_numpy(front.kernel).copy()
    history = model.fit(x, y, batch_size=input_shape[0], epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.allclose(ops.convert_to_numpy(front.kernel), before), (
        "no gradient reached the layer in front of the checked layer"
    )
