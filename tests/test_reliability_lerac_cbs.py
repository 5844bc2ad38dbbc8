"""LeRaC and SigmaDecay under resumes, threads and empty data (issue 16, items 5, 7 and 9)."""

import math
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import keras_curriculum as kc

# A probe whose gradients do not depend on the weights: group j is Dense_j(x) and the loss is
# the batch mean of the summed outputs, so every bias has gradient 1 at every step and plain SGD
# moves bias_j by exactly -eta_j(t): -bias_j after training is the sum of group j's rates.
GROUPS, DIM, BATCH, STEPS = 3, 2, 4, 4
BASE, LOWEST, K = 0.05, 5e-5, 2


def probe_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((DIM,))
    outputs = layers.Add()([layers.Dense(1, name=f"g{j}")(inputs) for j in range(GROUPS)])
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(BASE), loss=lambda y_true, y_pred: y_pred[:, 0])
    return model


def probe_data():
    x = np.random.default_rng(0).normal(size=(BATCH * STEPS, DIM)).astype("float32")
    return x, np.zeros((BATCH * STEPS, 1), "float32")


def paper_rates(step, unit):
    """Eq. 8 with log-spaced initial rates, from the paper, for every group at `step`."""
    elapsed = step // STEPS if unit == "epoch" else step
    k = K if unit == "epoch" else K * STEPS
    initial = [
        10 ** (math.log10(BASE) + j / (GROUPS - 1) * (math.log10(LOWEST) - math.log10(BASE)))
        for j in range(GROUPS)
    ]
    if elapsed >= k:
        return np.full(GROUPS, BASE)
    return np.array(
        [e0 * 10 ** ((elapsed / k) * (math.log10(BASE) - math.log10(e0))) for e0 in initial]
    )


def lerac(unit):
    duration = K if unit == "epoch" else K * STEPS
    return kc.LeRaC(
        duration=duration,
        min_learning_rate=LOWEST,
        unit=unit,
        groups=[f"g{j}" for j in range(GROUPS)],
    )


def biases(model):
    return np.array(
        [float(keras.ops.convert_to_numpy(model.get_layer(f"g{j}").bias)[0]) for j in range(GROUPS)]
    )


class KillInEpoch(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            raise RuntimeError("killed")


@pytest.mark.parametrize("unit", ["epoch", "step"])
def test_lerac_resumed_mid_epoch_follows_the_uninterrupted_schedule(tmp_path, unit):
    x, y = probe_data()
    epochs = 4
    model = probe_model()
    reference = model.fit(
        x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0, callbacks=[lerac(unit)]
    ).history
    # The probe's biases integrate the rates the optimizer really used.
    expected = sum(paper_rates(t, unit) for t in range(epochs * STEPS))
    np.testing.assert_allclose(-biases(model), expected, rtol=1e-5)

    backup = str(tmp_path / "backup")
    model = probe_model()
    with pytest.raises(RuntimeError, match="killed"):
        model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=epochs,
            shuffle=False,
            verbose=0,
            callbacks=[
                keras.callbacks.BackupAndRestore(backup, save_freq=1),
                lerac(unit),
                KillInEpoch(1, 1),
            ],
        )
    model = probe_model()
    resumed = model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(backup, save_freq=1), lerac(unit)],
    )
    # Keras runs epoch 1 again from its first batch, on weights that trained its first two
    # batches: those two steps happened twice, every other (epoch, batch) at its own rates.
    assert resumed.epoch == [1, 2, 3]
    for key in ("lerac_lr_first", "lerac_lr_last"):
        np.testing.assert_allclose(resumed.history[key], reference[key][1:], rtol=1e-6)
    replayed = sum(paper_rates(t, unit) for t in range(STEPS, STEPS + 2))
    np.testing.assert_allclose(-biases(model), expected + replayed, rtol=1e-5)


# One callback, two fits at the same time ---------------------------------------------------


def smoothing_model(name):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 2))
    x = kc.GaussianSmoothing(sigma=1.0)(layers.Conv2D(3, 3, padding="same")(inputs))
    model = keras.Model(inputs, layers.Dense(2)(layers.GlobalAveragePooling2D()(x)), name=name)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


def image_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 8, 8, 2)).astype("float32"), rng.integers(0, 2, 8)


class PauseAtEpoch(keras.callbacks.Callback):
    """Holds a fit at the start of epoch 1 until the test lets it go."""

    def __init__(self):
        super().__init__()
        self.paused, self.resume = threading.Event(), threading.Event()

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.paused.set()
            assert self.resume.wait(300)


def fit_in_thread(model, data, callbacks, epochs=3):
    result = {}

    def run():
        try:
            result["history"] = model.fit(
                *data, epochs=epochs, batch_size=4, verbose=0, callbacks=callbacks
            ).history
        except Exception as error:  # noqa: BLE001 - reported by the test
            result["error"] = error

    thread = threading.Thread(target=run, name="fit-A")
    thread.start()
    return thread, result


def test_sigma_decay_refuses_a_second_concurrent_fit_and_keeps_serving_the_first():
    decay, pause, data = kc.SigmaDecay(factor=0.5, every=1), PauseAtEpoch(), image_data()
    model_a, model_b = smoothing_model("a"), smoothing_model("b")
    thread, result = fit_in_thread(model_a, data, [decay, pause])
    assert pause.paused.wait(300)
    with pytest.raises(RuntimeError, match="SigmaDecay is already used by a `fit` of model 'a'"):
        model_b.fit(*data, epochs=3, batch_size=4, verbose=0, callbacks=[decay])
    pause.resume.set()
    thread.join()
    assert "error" not in result, result.get("error")
    # A's logs and A's layers agree; B was never touched.
    assert result["history"]["cbs_sigma"] == [1.0, 0.5, 0.25]
    assert [layer.current_sigma for layer in kc.smoothing_layers(model_a)] == [0.25]
    assert [layer.current_sigma for layer in kc.smoothing_layers(model_b)] == [1.0]
    assert decay.model is model_a
    # One after the other, the same object serves another model.
    history = model_b.fit(*data, epochs=2, batch_size=4, verbose=0, callbacks=[decay]).history
    assert history["cbs_sigma"] == [1.0, 0.5]
    assert [layer.current_sigma for layer in kc.smoothing_layers(model_b)] == [0.5]


def test_lerac_refuses_a_second_concurrent_fit_and_leaves_its_optimizer_alone():
    from keras_curriculum.lerac.rate_scaling import RateScaling

    x, y = probe_data()
    callback, pause = lerac("epoch"), PauseAtEpoch()
    model_a, model_b = probe_model(), probe_model()
    thread, result = fit_in_thread(model_a, (x, y), [callback, pause], epochs=4)
    assert pause.paused.wait(300)
    with pytest.raises(RuntimeError, match="LeRaC is already used by a `fit`"):
        model_b.fit(x, y, batch_size=BATCH, epochs=4, verbose=0, callbacks=[callback])
    assert not RateScaling.installed_on(model_b.optimizer)
    pause.resume.set()
    thread.join()
    assert "error" not in result, result.get("error")
    assert not RateScaling.installed_on(model_a.optimizer)
    expected = [paper_rates(e * STEPS + STEPS - 1, "epoch") for e in range(4)]
    np.testing.assert_allclose(
        result["history"]["lerac_lr_last"], [r[-1] for r in expected], rtol=1e-6
    )
    np.testing.assert_allclose(
        -biases(model_a), sum(paper_rates(t, "epoch") for t in range(4 * STEPS)), rtol=1e-5
    )


# Empty training data -------------------------------------------------------------------------


def empty_data(shape):
    return tf.data.Dataset.from_tensor_slices(
        (np.zeros((0,) + shape, "float32"), np.zeros((0,), "int32"))
    ).batch(4)


def test_empty_training_data_is_called_empty():
    if keras.backend.backend() != "tensorflow":
        # JAX's and PyTorch's `fit` build the metrics from a first batch before any callback
        # runs: on no data Keras itself stops there (docs/backends.md, "Empty training data").
        with pytest.raises((StopIteration, ValueError)):
            probe_model().fit(empty_data((DIM,)), epochs=2, verbose=0, callbacks=[lerac("epoch")])
        return
    with pytest.raises(ValueError, match="empty"):
        probe_model().fit(empty_data((DIM,)), epochs=2, verbose=0, callbacks=[lerac("epoch")])
    with pytest.raises(ValueError, match="empty"):
        smoothing_model("a").fit(
            empty_data((8, 8, 2)), epochs=2, verbose=0, callbacks=[kc.SigmaDecay()]
        )
