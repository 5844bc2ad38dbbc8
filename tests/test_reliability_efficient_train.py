"""EfficientTrain under resumes and misuse: nothing silently wrong (issue 16, items 1 and 6)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import keras_curriculum as kc

X = np.random.default_rng(0).uniform(0, 255, (32, 16, 16, 3)).astype("float32")
Y = np.random.default_rng(1).integers(0, 3, 32)


def tiny_model(learning_rate=0.05):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="tanh")(layers.Rescaling(1 / 255)(inputs))
    outputs = layers.Dense(3)(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.SGD(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def train_data(et):
    return et.apply(tf.data.Dataset.from_tensor_slices((X, Y)), batch_size=4)


class Rates(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.rates = []

    def on_epoch_end(self, epoch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


class KillAtFirstBatch(keras.callbacks.Callback):
    """Raises after the first batch of `epoch`, once `BackupAndRestore` has saved it."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.current = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch:
            raise RuntimeError("killed")


STAGES = [(2, 8, None), (2, None, None)]  # 8 px then 16 px on 16 px images


@pytest.mark.parametrize("kill_epoch", [0, 2])
def test_scaled_float_rate_resumed_inside_a_stage_first_epoch(tmp_path, kill_epoch):
    # Uninterrupted: 4x the rate while the batch is 4x larger (8 px), then the user's rate.
    model, rates, et = tiny_model(), Rates(), kc.EfficientTrain(STAGES, saturate="scaled")
    model.fit(train_data(et), epochs=et.epochs, verbose=0, callbacks=[et, rates])
    reference = rates.rates + [float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))]
    np.testing.assert_allclose(reference, [0.2, 0.2, 0.05, 0.05, 0.05], rtol=1e-6)

    backup = str(tmp_path / "backup")
    model, et = tiny_model(), kc.EfficientTrain(STAGES, saturate="scaled")
    with pytest.raises(RuntimeError, match="killed"):
        model.fit(
            train_data(et),
            epochs=et.epochs,
            verbose=0,
            callbacks=[
                keras.callbacks.BackupAndRestore(backup, save_freq=1),
                et,
                KillAtFirstBatch(kill_epoch),
            ],
        )
    model, rates, et = tiny_model(), Rates(), kc.EfficientTrain(STAGES, saturate="scaled")
    model.fit(
        train_data(et),
        epochs=et.epochs,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(backup, save_freq=1), et, rates],
    )
    resumed = rates.rates + [float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))]
    np.testing.assert_allclose(resumed, reference[kill_epoch:], rtol=1e-6)


# Item 6: validation data ---------------------------------------------------------------------

AUGMENTED = [(1, 8, 5), (1, 12, 5)]  # never full size, always augmented


def validation_source():
    return tf.data.Dataset.from_tensor_slices((X[:12], Y[:12]))


def test_evaluation_data_validates_at_full_size_without_augmentation():
    et, model = kc.EfficientTrain(AUGMENTED, saturate=None, seed=0), tiny_model()
    val = et.evaluation_data(validation_source(), batch_size=4)
    history = model.fit(
        train_data(et), epochs=et.epochs, validation_data=val, verbose=0, callbacks=[et]
    )
    # The last validation is the model's loss on the full-size, un-augmented images.
    plain = model.evaluate(validation_source().batch(4), verbose=0)
    np.testing.assert_allclose(history.history["val_loss"][-1], plain, rtol=1e-6)
    assert val.element_spec[0].dtype == tf.float32
    assert val.element_spec[0].shape.as_list() == [None, 16, 16, 3]


def test_training_form_refuses_to_be_validation_data():
    et = kc.EfficientTrain(AUGMENTED, saturate=None, seed=0)
    train, val = train_data(et), et.apply(validation_source(), batch_size=4)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"et\.evaluation_data"):
        tiny_model().fit(train, epochs=et.epochs, validation_data=val, verbose=0, callbacks=[et])
    # Outside `fit` it is full size and un-augmented, and a later `fit` trains as usual.
    model = tiny_model()
    history = model.fit(train, epochs=et.epochs, verbose=0, callbacks=[et])
    assert history.history["et_height"] == [8, 12]


def test_training_form_as_validation_under_saturation_names_evaluation_data():
    et = kc.EfficientTrain(STAGES, saturate="scaled")
    train, val = train_data(et), et.apply(validation_source(), batch_size=4)
    with pytest.raises(ValueError, match=r"called on 2 datasets.*et\.evaluation_data"):
        tiny_model().fit(train, epochs=et.epochs, validation_data=val, verbose=0, callbacks=[et])


def test_a_concurrent_fit_of_the_same_efficient_train_is_refused():
    import threading

    et = kc.EfficientTrain(STAGES, saturate=None)
    train, model = train_data(et), tiny_model()
    paused, resume, result = threading.Event(), threading.Event(), {}

    class Pause(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                paused.set()
                assert resume.wait(300)

    def first_fit():
        try:
            result["history"] = model.fit(
                train, epochs=et.epochs, verbose=0, callbacks=[et, Pause()]
            ).history
        except Exception as error:  # noqa: BLE001 - reported below
            result["error"] = error

    thread = threading.Thread(target=first_fit)
    thread.start()
    assert paused.wait(300)
    with pytest.raises(RuntimeError, match="EfficientTrain is already used by a `fit`"):
        tiny_model().fit(train, epochs=et.epochs, verbose=0, callbacks=[et])
    resume.set()
    thread.join()
    assert "error" not in result, result.get("error")
    assert result["history"]["et_height"] == [8, 8, 16, 16]
