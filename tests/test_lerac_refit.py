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
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
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


def test_refit_with_the_same_lerac_reuses_the_traced_step_on_tensorflow_only():
    model, seen, after_first = _two_fits(fresh_lerac_second_time=False)
    if keras.backend.backend() == "tensorflow":
        assert seen[0] is seen[1]  # the patched step of the first fit, not a new one
        assert model.train_function is after_first  # and the unpatched one is back after it
    else:
        # JAX shares a trace between live wrappers of one step function whatever the
        # optimizer's patch: LeRaC keeps none, and each fit builds its own.
        assert seen[0] is not seen[1] and model.train_function is not after_first


def test_a_plain_fit_after_an_unfinished_curriculum_trains_at_the_plain_rates():
    x, y = _data()
    model, reference = _model(), _model()
    lerac = kc.LeRaC(duration=4, min_learning_rate=1e-6)  # still running after 1 epoch
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, callbacks=[lerac], verbose=0)
    reference.set_weights(model.get_weights())
    reference.optimizer.build(reference.trainable_variables)
    assert len(reference.optimizer.variables) == len(model.optimizer.variables)
    for variable, value in zip(reference.optimizer.variables, model.optimizer.variables):
        variable.assign(keras.ops.convert_to_numpy(value))  # a copy: JAX donates the state
    for m in (model, reference):
        m.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_refit_reusing_the_step_trains_like_a_fresh_trace():
    reused, *_ = _two_fits(fresh_lerac_second_time=False)
    fresh, seen, _ = _two_fits(fresh_lerac_second_time=True)
    assert seen[0] is not seen[1]  # a new LeRaC traces its own step
    for a, b in zip(reused.get_weights(), fresh.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
