"""EfficientTrain saturation: per-stage batch sizes, hand-checked, and a `fit` whose updates equal
the fixed-batch run's ("exact"), or whose batch and rate scale together ("scaled")."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from keras_curriculum.efficient_train import EfficientTrain
from keras_curriculum.efficient_train import saturation as bs

from checks import assert_same_recorded
from tf_subprocess import only_in_tensorflow_pass
from tf_subprocess import run_two_replica_check

# ---------------------------------------------------------------------------------------------
# Sizing math, against hand computations


def test_scaled_batch_keeps_pixels_per_step_within_tolerance():
    # 128 images at 224 px = 128 * 224^2 pixels; at 160 px that is 250.9 images, at 192 px 174.2.
    at_160, at_192 = 128 * 224**2 / 160**2, 128 * 224**2 / 192**2
    assert bs.scaled_batch(128, (224, 224), (160, 160)) == 256  # largest 8k <= 1.05 * 250.9
    assert 256 <= 1.05 * at_160 < 264
    assert bs.scaled_batch(128, (224, 224), (192, 192)) == 176  # 1.05 * 174.2 = 182.9
    assert 176 <= 1.05 * at_192 < 184
    assert bs.scaled_batch(128, (224, 224), (224, 224)) == 128
    assert bs.scaled_batch(128, (224, 224), (160, 160), max_batch_size=200) == 200
    assert bs.scaled_batch(4, (16, 16), (12, 12)) == 4  # 7.5 rounds down to 0 eights: keep 4
    assert bs.scaled_batch(12, (20, 20), (16, 16)) == 16  # 12 * 1.5625 * 1.05 = 19.7
    assert bs.scaled_batch(128, (224, 112), (160, 80)) == 256  # per axis, non-square


def test_exact_batch_keeps_the_effective_batch():
    # Budget at 160 px: 1.05 * 250.9 = 263.4 images; at 192 px: 182.9.
    cases = [
        (2, 160, None, (256, 1)),  # k = 2 divides A = 2, 256 <= 263.4
        (2, 192, None, (128, 2)),  # 256 > 182.9: the user's batching
        (4, 160, None, (256, 2)),  # k = 4 (512) too big, k = 2 fits
        (6, 160, None, (256, 3)),  # divisors of 6: 6, 3 too big, 2 fits
        (3, 160, None, (128, 3)),  # divisors of 3: 384 too big
        (4, 160, 200, (128, 4)),  # the cap forbids 256
    ]
    for accumulation, size, cap, expected in cases:
        batch, steps = bs.exact_batch(128, accumulation, (224, 224), (size, size), cap)
        assert (batch, steps) == expected, (accumulation, size, cap)
        assert batch * steps == 128 * accumulation and accumulation % steps == 0


def test_plan_stages_for_each_mode():
    sizes = [(160, 160), (192, 192), (224, 224)]
    exact = bs.plan_stages("exact", 128, 2, (224, 224), sizes)
    assert exact == [
        bs.StageBatch(256, 1, 1.0),
        bs.StageBatch(128, 2, 1.0),
        bs.StageBatch(128, 2, 1.0),
    ]
    scaled = bs.plan_stages("scaled", 128, 1, (224, 224), sizes)
    assert [(p.batch_size, p.accumulation) for p in scaled] == [(256, 1), (176, 1), (128, 1)]
    assert [p.learning_rate_scale for p in scaled] == [2.0, 176 / 128, 1.0]
    assert bs.plan_stages(None, 128, 2, (224, 224), sizes) == [bs.StageBatch(128, 2, 1.0)] * 3


def test_check_exact_accepts_aligned_stages_and_names_saturate_otherwise():
    # 48 examples, user batch 4 x A = 4 (E = 16), stage 0 in micro-batches of 8.
    bs.check_exact([0, 0, 1], [8, 4], 4, 16, 48)  # stage 1 starts at 96 = 6 * 16
    with pytest.raises(ValueError, match="saturate.*not a multiple of the effective batch 16"):
        bs.check_exact([0, 1], [8, 4], 4, 16, 40)  # stage 1 starts at 40
    with pytest.raises(ValueError, match="saturate.*whole batches of 4 and 8"):
        bs.check_exact([0, 1], [8, 4], 4, 16, 36)  # 36 / 8 is not whole
    bs.check_exact([0, 0, 1], [4, 4], 4, 16, 36)  # no batch change: anything goes


def test_convert_iteration_keeps_updates_and_scales_the_accumulator():
    # A = 4. From k = 4 (A_s = 1) after 5 updates to the user's A_s = 4: 5 updates = 20 steps.
    assert bs.convert_iteration(5, 4, 1, 4) == (20, 4.0)
    # From A_s = 2 (k = 2): 3 updates + 1 micro-step = 2 base micro-steps into the 4th update.
    assert bs.convert_iteration(7, 4, 2, 4) == (3 * 4 + 2, 2.0)
    with pytest.raises(ValueError, match="accumulation"):
        bs.convert_iteration(5, 4, 4, 2)  # 1 base micro-step is half a micro-step of k = 2


def test_step_maps_give_the_fixed_batch_schedule_step():
    # Exact, A = 4, A_s = 1: update u ends where the fixed run is at step 4u + 3.
    k, c = bs.exact_step_map(4, 1)
    assert [u * k + c for u in range(3)] == [3, 7, 11]
    # Scaled: epochs of 2, 2, 8, 8 steps against 8 fixed steps, the optimizer at 5 initially.
    steps = np.array([2, 2, 8, 8])
    for epoch, start in [(0, 5), (1, 7), (2, 9), (3, 17)]:
        k, c = bs.scaled_step_map(steps, 8, 5, epoch)
        assert start * k + c == 5 + 8 * epoch  # epoch boundaries match the fixed run
        assert (start + steps[epoch]) * k + c == 5 + 8 * (epoch + 1)


# ---------------------------------------------------------------------------------------------
# In a real fit


TABLE = [(2, 8, None), (1, 12, None), (1, None, None)]  # 8, 8, 12, 16 px on 16 px images
SHORT = [(1, 8, None), (1, None, None)]
X = np.random.default_rng(0).uniform(0, 255, (40, 16, 16, 3)).astype("float32")
Y = np.random.default_rng(1).integers(0, 3, 40)


class TraceCount(layers.Layer):
    """Counts its training-mode calls: once per trace of a compiled train step."""

    traces = 0

    def call(self, x, training=None):
        if training:
            TraceCount.traces += 1
        return x


def tiny_model(learning_rate=None, accumulation=None, momentum=0.9):
    """No batch-dependent layer: equal effective batches give equal updates."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="tanh")(layers.Rescaling(1 / 255)(inputs))
    outputs = layers.Dense(3)(TraceCount()(layers.GlobalAveragePooling2D()(x)))
    model = keras.Model(inputs, outputs)
    if learning_rate is None:
        learning_rate = keras.optimizers.schedules.ExponentialDecay(0.5, 3, 0.5)
    model.compile(
        keras.optimizers.SGD(
            learning_rate, momentum=momentum, gradient_accumulation_steps=accumulation
        ),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def source(batched, n=32):
    ds = tf.data.Dataset.from_tensor_slices((X[:n], Y[:n]))
    return ds.batch(4, drop_remainder=True) if batched else ds


class Updates(keras.callbacks.Callback):
    """The weights after every update (micro-steps that only accumulate change nothing)."""

    def on_train_begin(self, logs=None):
        self.states = [self.model.get_weights()]
        self.batches = []

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.batches[-1] += 1
        weights = self.model.get_weights()
        if any(not np.array_equal(a, b) for a, b in zip(weights, self.states[-1])):
            self.states.append(weights)


class Rates(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.rates = []

    def on_epoch_end(self, epoch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


class StopAtEpochBegin(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        raise RuntimeError("not training")


def fit(et, model, batched=False, callbacks=(), **kwargs):
    updates = Updates()
    # Unshuffled, so a run on the batched source sees the same batches in the same order.
    train = (
        et.apply(source(batched))
        if batched
        else et.apply(source(False), batch_size=4, shuffle=False)
    )
    history = model.fit(
        train, epochs=et.epochs, verbose=0, callbacks=[et, updates, *callbacks], **kwargs
    )
    return history.history, updates


@pytest.fixture(scope="module")
def fixed_run():
    """The fixed-batch reference: micro-batches of 4, accumulation 4, no saturation."""
    model = tiny_model(accumulation=4)
    history, updates = fit(EfficientTrain(TABLE, saturate=None), model)
    counters = [
        int(keras.ops.convert_to_numpy(c))
        for c in (model.optimizer.iterations, model.optimizer._iterations)
    ]
    return history, updates, counters


def test_exact_mode_applies_the_same_updates_as_the_fixed_batch(fixed_run):
    fixed, fixed_updates, fixed_counters = fixed_run
    schedule = keras.optimizers.schedules.ExponentialDecay(0.5, 3, 0.5)
    model = tiny_model(schedule, accumulation=4)
    saturated, updates = fit(EfficientTrain(TABLE), model)  # "auto": exact with accumulation

    # 8 px: the 16 px step's pixels are 4 * 4 = 16 images (k = 4, A_s = 1); 12 px: 7.1 images,
    # so 4 x 4 as configured.
    assert saturated["et_batch_size"] == [16, 16, 4, 4]
    assert saturated["et_accumulation"] == [1, 1, 4, 4]
    assert updates.batches == [2, 2, 8, 8] and fixed_updates.batches == [8] * 4
    assert len(updates.states) == len(fixed_updates.states) == 1 + 32 * 4 // 16
    for ours, theirs in zip(updates.states, fixed_updates.states):
        for a, b in zip(ours, theirs):
            assert_same_recorded(a, b, rtol=1e-5, atol=1e-6)
    assert_same_recorded(saturated["loss"], fixed["loss"], rtol=1e-5)
    # After fit the optimizer is the user's again, with the fixed run's counters.
    optimizer = model.optimizer
    assert optimizer.gradient_accumulation_steps == 4 and optimizer._learning_rate is schedule
    assert "_keras_curriculum_stage_batching" not in vars(optimizer)
    assert [
        int(keras.ops.convert_to_numpy(c)) for c in (optimizer.iterations, optimizer._iterations)
    ] == fixed_counters


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:  # the last epoch of the saturated stage
            raise RuntimeError("simulated interruption")


def test_exact_resume_after_backup_and_restore_on_batched_data(fixed_run, tmp_path):
    _, fixed_updates, fixed_counters = fixed_run
    backup = str(tmp_path / "backup")
    model, first = tiny_model(accumulation=4), EfficientTrain(TABLE)
    with pytest.raises(RuntimeError, match="simulated"):
        model.fit(
            first.apply(source(True)),
            epochs=4,
            verbose=0,
            callbacks=[keras.callbacks.BackupAndRestore(backup), first, Interrupt()],
        )
    # A new process rebuilds everything; the checkpoint holds the counter in stage-0 units.
    model, second = tiny_model(accumulation=4), EfficientTrain(TABLE)
    history = model.fit(
        second.apply(source(True)),
        epochs=4,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(backup), second],
    )
    assert history.history["et_accumulation"] == [4, 4]
    for a, b in zip(model.get_weights(), fixed_updates.states[-1]):
        assert_same_recorded(a, b, rtol=1e-5, atol=1e-6)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == fixed_counters[0]


def test_scaled_mode_scales_batch_and_rate_and_keeps_the_schedule_in_epochs():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 8, 0.5)
    model, rates = tiny_model(schedule, momentum=0.0), Rates()
    et = EfficientTrain(SHORT, saturate="scaled")
    history, updates = fit(et, model, callbacks=[rates])
    assert history["et_batch_size"] == [16, 4] and updates.batches == [2, 8]
    # At the end of epoch e the fixed run (8 steps per epoch) is at step 8 (e + 1); the
    # 8 px stage trains 4x larger batches at 4x the rate.
    np.testing.assert_allclose(rates.rates, [4 * 0.1 * 0.5, 0.1 * 0.5**2], rtol=1e-5)
    assert model.optimizer._learning_rate is schedule
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 2 + 8


def test_scaled_mode_scales_a_float_rate_and_a_second_fit_traces_nothing(backend):
    model, rates = tiny_model(0.05, momentum=0.0), Rates()
    et = EfficientTrain(SHORT, saturate="scaled")
    fit(et, model, callbacks=[rates])
    np.testing.assert_allclose(rates.rates, [0.2, 0.05], rtol=1e-6)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(
        0.05, rel=1e-6
    )
    # A second fit with the same object reuses the step traced for each (size, batch).
    traces = TraceCount.traces
    fit(et, model)
    if backend != "torch":  # torch runs the step eagerly: a call per step, no trace
        assert TraceCount.traces == traces


def test_auto_without_accumulation_keeps_the_fixed_batch():
    et = EfficientTrain(SHORT)
    with pytest.raises(RuntimeError, match="not training"):
        tiny_model().fit(
            et.apply(source(False), batch_size=4),
            epochs=et.epochs,
            verbose=0,
            callbacks=[et, StopAtEpochBegin()],
        )
    assert et.batch_plan == [bs.StageBatch(4, 1, 1.0)] * 2


def test_config_keeps_the_saturation_settings():
    et = EfficientTrain(SHORT, saturate="scaled", max_batch_size=64)
    clone = EfficientTrain.from_config(et.get_config())
    assert (clone.saturate, clone.max_batch_size) == ("scaled", 64)


def test_bad_settings_raise_before_training():
    cases = [
        ("scaled", {}, 32, {}, "max_batch_size"),  # max_batch_size=2 < 4
        ("exact", {}, 32, {}, "gradient_accumulation_steps"),  # nothing to accumulate
        ("exact", dict(accumulation=4), 32, dict(steps_per_epoch=4), "steps_per_epoch"),
        ("exact", dict(accumulation=4), 40, {}, "saturate.*whole"),  # 40 / 16 is not whole
        ("scaled", dict(learning_rate=lambda: 0.1), 32, {}, "saturate.*float"),
    ]
    for saturate, model_kwargs, n, fit_kwargs, name in cases:
        et = EfficientTrain(
            SHORT, saturate=saturate, max_batch_size=2 if name == "max_batch_size" else None
        )
        model = tiny_model(**model_kwargs)
        with pytest.raises(ValueError, match=name):  # StopAtEpochBegin would raise otherwise
            model.fit(
                et.apply(source(False, n), batch_size=4),
                epochs=et.epochs,
                verbose=0,
                callbacks=[et, StopAtEpochBegin()],
                **fit_kwargs,
            )


def test_exact_mode_with_lerac_is_refused_before_training():
    import keras_curriculum as kc

    for order in (0, 1):
        et = EfficientTrain(SHORT, saturate="exact")
        model = tiny_model(accumulation=4)
        weights = model.get_weights()
        callbacks = [et, kc.LeRaC(duration=1, min_learning_rate=1e-3)]
        with pytest.raises(ValueError, match="saturate='exact'.*LeRaC"):
            model.fit(
                et.apply(source(False), batch_size=4),
                epochs=et.epochs,
                verbose=0,
                callbacks=callbacks[::-1] if order else callbacks,
            )
        assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


def test_saturation_needs_one_pass_per_epoch():
    with pytest.raises(ValueError, match="saturate.*infinite"):
        EfficientTrain(SHORT, saturate="exact").apply(source(True).repeat())
    # "auto" falls back to the fixed batch, with a warning when it could have saturated.
    et = EfficientTrain(SHORT)
    model = tiny_model(accumulation=4)
    with pytest.warns(UserWarning, match="fixed batch.*whole batches"):
        with pytest.raises(RuntimeError, match="not training"):
            model.fit(
                et.apply(source(False, 40), batch_size=4),
                epochs=et.epochs,
                verbose=0,
                callbacks=[et, StopAtEpochBegin()],
            )
    assert et.batch_plan == [bs.StageBatch(4, 4, 1.0)] * 2


_MIRRORED_SCRIPT = r"""
import numpy as np, keras
import test_efficient_train_saturation as t
from keras_curriculum.efficient_train import EfficientTrain
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = t.tiny_model(0.05, momentum=0.0)
et, rates, updates = EfficientTrain(t.SHORT, saturate="scaled"), t.Rates(), t.Updates()
history = model.fit(et.apply(t.source(False), batch_size=8), epochs=2, verbose=0,
                    callbacks=[et, rates, updates])
# Global 8 = 4 per replica; at 8 px 16 per replica, 32 in all: one step for the 32 examples.
assert et.batch_plan[0].batch_size == 16, et.batch_plan
assert history.history["et_batch_size"] == [32, 8], history.history
assert updates.batches == [1, 4], updates.batches
np.testing.assert_allclose(rates.rates, [0.2, 0.05], rtol=1e-6)
print("replicas", strategy.num_replicas_in_sync, "OK")
"""


@pytest.mark.no_torch
@only_in_tensorflow_pass
def test_mirrored_strategy_sizes_the_per_replica_batch():
    run_two_replica_check(_MIRRORED_SCRIPT)


def test_saturated_stages_of_batched_data_drop_the_remainder_when_asked():
    """A stage's larger batches of batched input keep `drop_remainder=True`: the last partial
    batch (here 4 of 36 examples at batch 16) is dropped, as the stage's step plan counts, and
    on several processes no partial batch reaches only some of them."""
    sizes = []

    class Sizes(layers.Layer):
        def call(self, x, training=None):
            if training:
                sizes[-1].append(int(x.shape[0]))
            return x

    class Epochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            sizes.append([])

    inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(4, 3, padding="same")(layers.Rescaling(1 / 255)(inputs))
    outputs = layers.Dense(3)(Sizes()(layers.GlobalAveragePooling2D()(x)))
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    et = EfficientTrain(TABLE, saturate="scaled")
    data = tf.data.Dataset.from_tensor_slices((X[:36], Y[:36])).batch(4, drop_remainder=True)
    model.fit(
        et.apply(data, drop_remainder=True), epochs=et.epochs, verbose=0, callbacks=[et, Epochs()]
    )
    # 8 px stages: (16 / 8)^2 x 4 = 16 per batch, 36 // 16 = 2 whole batches.
    assert sizes[:2] == [[16, 16], [16, 16]]
    assert all(size == 4 for epoch in sizes[2:] for size in epoch)
