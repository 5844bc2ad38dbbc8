"""A normal run of each curriculum (10 epochs, every part of it acting) emits no warning that
plain Keras training of the same model does not: not from the package, nor from Keras, JAX or
TensorFlow because of what the package does.

Plain training runs first, and only the warnings (and logged WARNING records) it emits are
allowed; during the curriculum's `fit` every other warning is an error."""

import contextlib
import logging
import re
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_curriculum_recipes.models import small_cnn

import keras_curriculum as kc

EPOCHS = 10
LOGGERS = ("", "tensorflow", "jax", "absl", "keras")
METHODS = ["lerac", "cbs_sigma_decay", "efficient_train", "docl"]


def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (48, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 3, 48)
    return x, y


def base_model():
    return small_cnn((None, None, 3), num_classes=3, width=4)


def compile_model(model, learning_rate=0.05, metrics=()):
    model.compile(
        keras.optimizers.SGD(learning_rate, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy", *metrics],
    )
    return model


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def logged_warnings():
    """The WARNING (and worse) records of the usual loggers while the block runs."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def fit_plain(x, y):
    """Plain Keras training of the same model, data pipeline and length."""
    model = compile_model(base_model())
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model.fit(train, epochs=EPOCHS, validation_data=(x[:16], y[:16]), verbose=0)


@pytest.fixture(scope="module")
def plain_warnings():
    """(warning messages, logged messages) of plain training: the only ones allowed."""
    x, y = data()
    with warnings.catch_warnings(record=True) as caught, logged_warnings() as logged:
        warnings.simplefilter("always")
        fit_plain(x, y)
    return {(w.category, str(w.message)) for w in caught}, set(logged)


def curriculum_run(method, x, y):
    """`(model, train, callbacks)` of a 10-epoch run in which every part of `method` acts."""
    train = tf.data.Dataset.from_tensor_slices((x, y))
    if method == "lerac":  # the curriculum ends at epoch 3 (the step is traced again then)
        return (
            compile_model(base_model()),
            train.batch(16),
            [kc.LeRaC(duration=3, min_learning_rate=1e-6)],
        )
    if method == "cbs_sigma_decay":  # sigma 1, 0.5, 0.25...: the bypass is reached
        model = compile_model(kc.add_smoothing(base_model()))
        return model, train.batch(16), [kc.SigmaDecay(factor=0.5, every=1)]
    if method == "efficient_train":  # three sizes and three RandAugment magnitudes
        et = kc.EfficientTrain([(3, 8, 1), (3, 12, 5), (4, None, 9)], seed=0)
        return compile_model(base_model()), et.apply(train.batch(16)), [et]
    # DoCL: warm-up, sampled subsets (k = n/2, then n/4), refresh passes, a cosine schedule.
    docl = kc.DoCL(
        warmup_epochs=2,
        episode_epochs=2,
        initial_fraction=0.5,
        fraction_decay=0.5,
        min_fraction=0.25,
        seed=0,
    )
    batches = docl.apply((x, y), batch_size=16)
    model = compile_model(
        base_model(), docl.learning_rate_schedule(0.05, epochs=EPOCHS), metrics=[docl.metric()]
    )
    return model, batches, [docl]


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_a_normal_run_emits_no_warning_that_plain_training_does_not(method, plain_warnings):
    allowed_warnings, allowed_logs = plain_warnings
    x, y = data()
    model, train, callbacks = curriculum_run(method, x, y)
    with warnings.catch_warnings(), logged_warnings() as logged:
        warnings.simplefilter("error")
        for category, message in allowed_warnings:
            warnings.filterwarnings("ignore", message=re.escape(message), category=category)
        history = model.fit(
            train, epochs=EPOCHS, validation_data=(x[:16], y[:16]), callbacks=callbacks, verbose=0
        )
    assert [m for m in logged if m not in allowed_logs] == []
    assert ACTED[method](history.history), history.history


# What shows, in the epoch logs, that every part of the curriculum acted within the 10 epochs.
ACTED = {
    "lerac": lambda h: (
        h["lerac_lr_last"][0] < 1e-5 and h["lerac_lr_last"][-1] == pytest.approx(0.05)
    ),
    "cbs_sigma_decay": lambda h: h["cbs_sigma"][0] > 0.4 and h["cbs_active_layers"][-1] == 0,
    "efficient_train": lambda h: h["et_height"] == [8] * 3 + [12] * 3 + [16] * 4,
    "docl": lambda h: sorted(set(h["docl_fraction"])) == [0.25, 0.5, 1.0],
}


RAN_OUT = "Your input ran out of data; interrupting training."


def test_the_short_epoch_filter_survives_a_warnings_block_that_dropped_it():
    # A curriculum left open (a fit that raised) started inside a `catch_warnings` block: the
    # block's exit dropped its filter. The next curriculum to train must install it again.
    from keras_curriculum import _tf_data

    with warnings.catch_warnings():
        leaked = _tf_data.short_epochs()
    current = _tf_data.short_epochs()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.warn(RAN_OUT, UserWarning, stacklevel=1)
        assert [str(w.message) for w in caught] == []
    finally:
        current.close()
        leaked.close()
    assert leaked not in _tf_data._short_epoch_users
    assert current not in _tf_data._short_epoch_users
