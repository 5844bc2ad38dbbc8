"""Curricula that change the same optimizer compose through one registry, in a fixed order."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_curriculum as kc
from keras_curriculum import _keras_internals as internals


def _two_variables():
    first = keras.Variable(np.ones(2, "float32"), name="first")
    second = keras.Variable(np.ones(2, "float32"), name="second")
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    optimizer.build([first, second])
    return optimizer, first, second


def test_patches_compose_in_the_fixed_order_by_hand():
    """EfficientTrain's step map comes first; LeRaC sees the mapped step and holds the schedule
    after it; the rate scale multiplies the base rate; each variable moves by its group's rate."""
    first, second = (keras.Variable(np.ones(2, "float32")) for _ in range(2))
    schedule = keras.optimizers.schedules.PolynomialDecay(1.0, 100, end_learning_rate=0.0)
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    optimizer.build([first, second])
    optimizer.iterations.assign(3)
    registry = internals.OptimizerPatches.of(optimizer)
    seen = []

    def group_rates(rate, step):
        seen.append(step)
        return rate * ops.convert_to_tensor(np.array([1.0, 0.5], "float32"))

    registry.set(
        "lerac",
        internals.Patch(
            schedule_map=lambda s: ops.maximum(s - 4, 0),
            group_rates=group_rates,
            group_of_index=[0, 1],
        ),
    )
    registry.set("efficient_train", internals.Patch(step_map=lambda s: s * 2 + 1, rate_scale=4.0))
    # Schedule step: (3 * 2 + 1) - 4 = 3 -> 1 - 3 / 100 = 0.97; times the scale 4.
    np.testing.assert_allclose(
        float(ops.convert_to_numpy(optimizer.learning_rate)), 4 * 0.97, rtol=1e-6
    )
    optimizer.apply([ops.ones(2), ops.ones(2)], [first, second])
    assert int(ops.convert_to_numpy(seen[-1])) == 7  # LeRaC saw the mapped step
    np.testing.assert_allclose(ops.convert_to_numpy(first), 1 - 4 * 0.97, rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(second), 1 - 0.5 * 4 * 0.97, rtol=1e-6)
    registry.remove("lerac")
    registry.remove("efficient_train")
    assert "update_step" not in vars(optimizer)
    assert "_get_current_learning_rate" not in vars(optimizer)


def test_an_unknown_owner_is_refused():
    optimizer, *_ = _two_variables()
    with pytest.raises(ValueError, match="`owner`"):
        internals.OptimizerPatches.of(optimizer).set("mine", internals.Patch())


def _images(n=64, size=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    y = rng.integers(0, 3, n)
    return tf.data.Dataset.from_tensor_slices((x, y))


def _conv_model():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_lerac_with_scaled_saturation_follows_the_fixed_batch_epochs():
    """With `saturate="scaled"` a low-resolution epoch runs fewer, larger steps; LeRaC's
    curriculum still counts epochs of the fixed-batch run, and its logged rates carry the
    stage's linear-rule factor."""
    base, lowest, epochs_k = 0.05, 1e-4, 2
    et = kc.EfficientTrain([(2, 8, None), (2, None, None)], saturate="scaled")
    train = et.apply(_images(), batch_size=8)
    lerac = kc.LeRaC(duration=epochs_k, min_learning_rate=lowest)
    model = _conv_model()
    model.compile(
        optimizer=keras.optimizers.SGD(base),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(train, epochs=et.epochs, callbacks=[et, lerac], verbose=0)
    scales = [et.batch_plan[stage].learning_rate_scale for stage in (0, 0, 1, 1)]
    assert scales[0] > 1 and scales[2] == 1  # the first stage really was saturated
    ratio = lowest / base
    expected = [
        scale * base * ratio ** (1 - min(epoch / epochs_k, 1)) for epoch, scale in enumerate(scales)
    ]
    np.testing.assert_allclose(history.history["lerac_lr_last"], expected, rtol=1e-5)
    optimizer = model.optimizer
    assert "update_step" not in vars(optimizer) and "_get_current_learning_rate" not in vars(
        optimizer
    )
    np.testing.assert_allclose(float(ops.convert_to_numpy(optimizer.learning_rate)), base)
