"""A second `fit` with the same LeRaC and optimizer reuses the traced step (no retrace)."""

import keras
import numpy as np

import keras_curriculum as kc


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)).astype("float32"), rng.integers(0, 3, n)


def _model():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6,))
    x = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class _Functions(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.seen.append(self.model.train_function)


def _two_fits(fresh_lerac_second_time):
    x, y = _data()
    model = _model()
    record = _Functions()
    lerac = kc.LeRaC(duration=4, min_learning_rate=1e-6)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, callbacks=[lerac, record], verbose=0)
    after_first = model.train_function
    if fresh_lerac_second_time:
        lerac = kc.LeRaC(duration=4, min_learning_rate=1e-6)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, callbacks=[lerac, record], verbose=0)
    return model, record.seen, after_first


def test_refit_with_the_same_lerac_reuses_the_traced_step():
    model, seen, after_first = _two_fits(fresh_lerac_second_time=False)
    assert seen[0] is seen[1]  # the patched step of the first fit, not a new one
    assert model.train_function is after_first  # and the unpatched one is back after each fit


def test_refit_reusing_the_step_trains_like_a_fresh_trace():
    reused, *_ = _two_fits(fresh_lerac_second_time=False)
    fresh, seen, _ = _two_fits(fresh_lerac_second_time=True)
    assert seen[0] is not seen[1]  # a new LeRaC traces its own step
    for a, b in zip(reused.get_weights(), fresh.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
