"""Curricula that act at any training length (issue 12).

The defaults are the papers' proportions, resolved against the fit and checked against values
computed by hand; a curriculum that cannot act in a fit says so before its first step; the
curricula's epoch values reach `TensorBoard` and `CSVLogger` listed before them.
"""

import csv
import glob
import os
import re
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import keras_curriculum as kc
from keras_curriculum.docl import plan as docl_plan
from keras_curriculum.efficient_train import paper_stages

BASE = 2e-3  # the optimizer's rate in these tests

# ---------------------------------------------------------------------------------------------
# Helpers


class RecordFirstStep(keras.callbacks.Callback):
    """Keeps the warnings issued before the first train step."""

    def __init__(self, caught):
        super().__init__()
        self.caught, self.before_first_step = caught, None

    def on_train_batch_begin(self, batch, logs=None):
        if self.before_first_step is None:
            self.before_first_step = [str(w.message) for w in self.caught]


def warnings_before_first_step(fit):
    """Runs `fit(probe)` and returns the warning messages issued before its first step."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe = RecordFirstStep(caught)
        fit(probe)
    assert probe.before_first_step is not None, "no train step ran"
    return probe.before_first_step


def matching(messages, pattern):
    return [m for m in messages if re.search(pattern, m, re.S)]


def tensorboard_scalars(log_dir):
    """{tag: [value per epoch]} of the epoch scalars in a TensorBoard callback's train logs."""
    values = {}
    for path in glob.glob(os.path.join(log_dir, "train", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if not value.tag.startswith("epoch_"):
                    continue  # the model's config, weights histograms
                number = (
                    float(tf.make_ndarray(value.tensor))
                    if value.HasField("tensor")
                    else value.simple_value
                )
                values.setdefault(value.tag, {})[event.step] = number
    return {tag: [by_step[s] for s in sorted(by_step)] for tag, by_step in values.items()}


def csv_columns(path):
    """{column: [value per epoch]} (CSVLogger adds empty `val_` columns: left as text)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {
        key: [row[key] if row[key] == "NA" else float(row[key]) for row in rows] for key in rows[0]
    }


def dense_chain():
    """Three Dense layers: three LeRaC groups, input side first."""
    model = keras.Sequential([keras.Input((4,)), layers.Dense(4), layers.Dense(4), layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(BASE), loss="sparse_categorical_crossentropy")
    return model


def conv_model():
    inputs = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(3, name="head")(x))


def image_data(n=8, size=8, channels=2):
    rng = np.random.default_rng(0)
    return (
        rng.normal(size=(n, size, size, channels)).astype("float32"),
        rng.integers(0, 3, n).astype("int32"),
    )


def compiled(model):
    model.compile(
        optimizer=keras.optimizers.SGD(BASE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


# ---------------------------------------------------------------------------------------------
# LeRaC: k = 5 % of the fit, in steps when that is under one epoch; eta_n^(0) = 1e-5 eta_1^(0)


def test_lerac_default_duration_resolves_to_five_percent_of_the_fit():
    lerac = kc.LeRaC()
    assert (lerac.resolved_unit(40, 10), lerac.resolved_duration(40, 10)) == ("epoch", 2)
    # 5 % of 10 epochs is half an epoch: 5 % of the 200 steps instead.
    assert (lerac.resolved_unit(10, 20), lerac.resolved_duration(10, 20)) == ("step", 10)
    # Unknown steps per epoch: epochs, at least one.
    assert (lerac.resolved_unit(10), lerac.resolved_duration(10)) == ("epoch", 1)
    # Explicit counts and units keep their meaning.
    assert (
        kc.LeRaC(duration=3).resolved_unit(10, 20),
        kc.LeRaC(duration=3).resolved_duration(10, 20),
    ) == ("epoch", 3)
    assert kc.LeRaC(duration=0.05, unit="epoch").resolved_duration(10, 20) == 1


def test_lerac_default_rates_match_eq_8_by_hand():
    # 10 epochs of 10 steps: k = 5 steps; the deepest of 3 groups starts at 1e-5 x the base rate
    # and the middle one at 10^-2.5 x, so by Eq. 8 they are base * 10^(t - 5) and
    # base * 10^(t / 2 - 2.5) at step t <= 5.
    model = dense_chain()
    steps = np.arange(8)
    _, table = kc.LeRaC().rates(model, steps, steps_per_epoch=10, epochs=10)
    t = np.minimum(steps, 5)
    np.testing.assert_allclose(table[:, 0], BASE, rtol=1e-6)
    np.testing.assert_allclose(table[:, 1], BASE * 10.0 ** (t / 2 - 2.5), rtol=1e-5)
    np.testing.assert_allclose(table[:, 2], BASE * 10.0 ** (t - 5.0), rtol=1e-5)


def test_lerac_longer_than_half_the_fit_warns_before_the_first_step():
    x, y = np.ones((8, 4), "float32"), np.zeros(8, "int32")

    def fit(lerac):
        return lambda probe: dense_chain().fit(
            x, y, batch_size=4, epochs=3, verbose=0, callbacks=[lerac, probe]
        )

    messages = warnings_before_first_step(fit(kc.LeRaC(duration=2)))
    assert matching(messages, r"LeRaC\(duration=2\).*67%.*`duration`.*duration=0\.05")
    assert not matching(warnings_before_first_step(fit(kc.LeRaC())), "LeRaC")


# ---------------------------------------------------------------------------------------------
# CBS: sigma_0 * 0.9^(40 e / T)


def test_sigma_default_is_the_paper_curve_over_the_fit():
    for epoch in range(0, 200, 5):  # at the paper's decay points: its staircase exactly
        assert kc.sigma_at_epoch(1.0, epoch, 0.9, 0.025, epochs=200) == pytest.approx(
            0.9 ** (epoch // 5)
        )
    # 8 epochs: 0.9 ** 5 per epoch, never rounded to "no decay".
    assert kc.sigma_at_epoch(1.0, 1, 0.9, 0.025, epochs=8) == pytest.approx(0.9**5)
    assert kc.sigma_at_epoch(1.0, 7, 0.9, 2) == pytest.approx(0.9**3)  # an int: the staircase


@pytest.mark.parametrize("epochs", [8, 30])
def test_bypass_epoch_of_a_fraction_is_the_first_epoch_below_the_threshold(epochs):
    threshold = kc.bypass_sigma(3, 2)
    first = next(
        e for e in range(10 * epochs) if kc.sigma_at_epoch(1.0, e, 0.9, 0.025, epochs) <= threshold
    )
    assert kc.bypass_epoch(1.0, 0.9, 0.025, 3, 2, epochs=epochs) == first


def test_sigma_decay_default_in_an_eight_epoch_fit():
    model = compiled(kc.add_smoothing(conv_model()))
    x, y = image_data()
    history = model.fit(x, y, batch_size=4, epochs=8, verbose=0, callbacks=[kc.SigmaDecay()])
    np.testing.assert_allclose(
        history.history["cbs_sigma"], [0.9 ** (5 * e) for e in range(8)], rtol=1e-6
    )


def test_sigma_that_stays_above_half_warns_before_the_first_step():
    x, y = image_data()

    def fit(decay):
        return lambda probe: compiled(kc.add_smoothing(conv_model())).fit(
            x, y, batch_size=4, epochs=8, verbose=0, callbacks=[decay, probe]
        )

    messages = warnings_before_first_step(fit(kc.SigmaDecay(every=5)))
    assert matching(messages, r"SigmaDecay\(factor=0\.9, every=5\).*90%.*`every`.*every=0\.025")
    assert not matching(warnings_before_first_step(fit(kc.SigmaDecay())), "SigmaDecay")


# ---------------------------------------------------------------------------------------------
# DoCL: warm start 5/300, the official episode ends scaled to the fit

N, C, B = 40, 4, 8


def one_hot_data():
    return np.eye(N, dtype="float32"), np.random.default_rng(0).integers(0, C, N).astype("int32")


def linear_model(docl, activation=None):
    model = keras.Sequential([keras.Input((N,)), layers.Dense(C, activation=activation)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=activation is None),
        metrics=[docl.metric()],
    )
    return model


def test_official_schedule_at_300_epochs_is_the_official_code():
    warmup, episodes = docl_plan.resolve_plan(5 / 300, "official", 300)
    assert warmup == 5
    assert [e.index for e in episodes] == list(range(10))
    # Ends 10 15 20 30 40 60 90 140 210 300; every episode but the last ends with its refresh.
    assert [e.sampling + e.refresh for e in episodes] == [5, 5, 5, 10, 10, 20, 30, 50, 70, 90]
    assert [e.refresh for e in episodes] == [True] * 9 + [False]


def test_official_schedule_compressed_into_eight_epochs_by_hand():
    # Ends x 8/300, rounded: 0 0 1 1 1 2 2 4 6 8; warm start round(5 * 8/300) -> 1 epoch. Kept
    # episodes: m=5 [1,2), m=7 [2,4), m=8 [4,6), m=9 [6,8); k_m = round(100 * 0.9^m).
    warmup, episodes = docl_plan.resolve_plan(5 / 300, "official", 8)
    plans = [docl_plan.epoch_plan(e, 100, warmup, episodes) for e in range(8)]
    assert [p.phase for p in plans] == [
        "warmup",
        "sample",
        "sample",
        "refresh",
        "sample",
        "refresh",
        "sample",
        "sample",
    ]
    assert [p.size for p in plans] == [100, 59, 48, 100, 43, 100, 39, 39]


def test_docl_defaults_train_an_eight_epoch_fit_on_at_most_085_of_the_data():
    docl = kc.DoCL(seed=0)
    train = docl.apply(one_hot_data(), batch_size=B)
    linear_model(docl).fit(train, epochs=8, verbose=0, callbacks=[docl])
    fractions = [h["fraction"] for h in docl.history]
    # round(40 * 0.9^m) for m = 5, 7, 8, 9 (see the compressed schedule above).
    assert fractions == [n / N for n in (40, 24, 19, 40, 17, 40, 15, 15)]
    assert np.mean(fractions) <= 0.85


def test_docl_fractional_warmup_resolves_against_the_fit():
    docl = kc.DoCL(warmup_epochs=0.1, episode_epochs=2)
    docl.apply(one_hot_data(), batch_size=B)
    assert [docl.epoch_plan(e, epochs=20).phase for e in range(4)] == [
        "warmup",
        "warmup",
        "sample",
        "sample",
    ]
    with pytest.raises(ValueError, match="pass `epochs`"):
        docl.epoch_plan(0)


def test_docl_that_never_subsamples_warns_before_the_first_step():
    def fit(docl):
        train = docl.apply(one_hot_data(), batch_size=B)
        return lambda probe: linear_model(docl).fit(
            train, epochs=4, verbose=0, callbacks=[docl, probe]
        )

    messages = warnings_before_first_step(fit(kc.DoCL(warmup_epochs=5, episode_epochs=10)))
    assert matching(messages, r"all 40 examples.*4 epochs.*warmup_epochs=5.*`warmup_epochs`")
    assert not matching(warnings_before_first_step(fit(kc.DoCL())), "DoCL")


def test_docl_refuses_a_softmax_output_with_from_logits_before_any_step():
    docl = kc.DoCL()
    train = docl.apply(one_hot_data(), batch_size=B)
    model = linear_model(docl, activation="softmax")
    with pytest.raises(ValueError, match=r"`from_logits`.*softmax.*from_logits=False"):
        model.fit(train, epochs=2, verbose=0, callbacks=[docl])
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


def test_docl_schedule_built_for_other_epochs_is_refused():
    docl = kc.DoCL()
    train = docl.apply(one_hot_data(), batch_size=B)
    schedule = docl.learning_rate_schedule(0.5, epochs=6)
    model = keras.Sequential([keras.Input((N,)), layers.Dense(C)])
    model.compile(
        optimizer=keras.optimizers.SGD(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[docl.metric()],
    )
    with pytest.raises(ValueError, match=r"`epochs`.*6.*Received: epochs=4"):
        model.fit(train, epochs=4, verbose=0, callbacks=[docl])
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


# ---------------------------------------------------------------------------------------------
# EfficientTrain: a preset stage of 0 epochs is dropped, an explicit one refused


def test_paper_preset_drops_stages_that_round_to_zero_epochs():
    # Ends int(3 (i + 1) / 5) = 0 1 1 2 3: stages 0 and 2 last 0 epochs.
    with pytest.warns(UserWarning, match=r"stage\(s\) 0, 2 of 5 round to 0 epochs"):
        stages = paper_stages(3, 224)
    assert [(s.epochs, s.size, s.magnitude) for s in stages] == [
        (1, (160, 160), 3),
        (1, (192, 192), 7),
        (1, (224, 224), 9),
    ]
    with pytest.warns(UserWarning, match="round to 0 epochs"):
        assert kc.EfficientTrain.paper(epochs=3, image_size=32).epochs == 3


def test_explicit_zero_epoch_stage_is_refused():
    with pytest.raises(ValueError, match=r"`epochs`.*0 epochs.*Received: epochs=0"):
        kc.EfficientTrain([(0, 8, 1), (2, None, None)])


def et_fit(table, callbacks_before=()):
    et = kc.EfficientTrain(table)
    x, y = image_data(8, 16, 3)
    train = et.apply(tf.data.Dataset.from_tensor_slices((x, y)), batch_size=4)
    inputs = keras.Input((None, None, 3))
    outputs = layers.Dense(3)(layers.GlobalAveragePooling2D()(layers.Conv2D(2, 3)(inputs)))

    def fit(*more):
        return compiled(keras.Model(inputs, outputs)).fit(
            train, epochs=et.epochs, verbose=0, callbacks=[*callbacks_before, et, *more]
        )

    return fit


def test_efficient_train_at_full_size_warns_before_the_first_step():
    messages = warnings_before_first_step(et_fit([(2, None, 1)]))
    assert matching(messages, r"full image size 16x16.*EfficientTrain.paper")
    assert not matching(
        warnings_before_first_step(et_fit([(1, 8, 1), (1, None, 1)])), "full image size"
    )


def test_efficient_train_logs_no_nan_magnitude():
    history = et_fit([(1, 8, None), (1, None, None)])().history
    assert "et_magnitude" not in history and history["et_height"] == [8, 16]
    history = et_fit([(1, 8, None), (1, None, 5)])().history
    assert history["et_magnitude"] == [0.0, 5.0]


# ---------------------------------------------------------------------------------------------
# Curriculum values reach TensorBoard and CSVLogger listed first


def test_lerac_and_cbs_values_reach_tensorboard_and_csv_listed_before_them(tmp_path):
    log_dir, path = str(tmp_path / "tb"), str(tmp_path / "log.csv")
    model = compiled(kc.add_smoothing(conv_model()))
    x, y = image_data()
    epochs = 20  # 5 % of 20 epochs: k = 1 epoch; sigma 0.9^(2 e)
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=epochs,
        verbose=0,
        callbacks=[
            keras.callbacks.TensorBoard(log_dir),
            keras.callbacks.CSVLogger(path),
            kc.LeRaC(),
            kc.SigmaDecay(),
        ],
    )
    expected = {
        "lerac_lr_last": [BASE * 1e-5] + [BASE] * (epochs - 1),
        "lerac_lr_first": [BASE] * epochs,
        "cbs_sigma": [0.9 ** (2 * e) for e in range(epochs)],
    }
    scalars, columns = tensorboard_scalars(log_dir), csv_columns(path)
    for key, values in expected.items():
        np.testing.assert_allclose(scalars[f"epoch_{key}"], values, rtol=1e-5)
        np.testing.assert_allclose(columns[key], values, rtol=1e-5)
    assert columns["cbs_active_layers"][0] == 1 and columns["cbs_active_layers"][-1] == 0


def test_efficient_train_values_reach_tensorboard_listed_before_it(tmp_path):
    log_dir = str(tmp_path / "tb")
    et_fit([(1, 8, 3), (1, None, 5)], [keras.callbacks.TensorBoard(log_dir)])()
    scalars = tensorboard_scalars(log_dir)
    assert scalars["epoch_et_height"] == [8, 16]
    assert scalars["epoch_et_stage"] == [0, 1]
    assert scalars["epoch_et_magnitude"] == [3, 5]


def test_docl_fraction_reaches_tensorboard_listed_before_it(tmp_path):
    log_dir = str(tmp_path / "tb")
    docl = kc.DoCL(seed=0)
    train = docl.apply(one_hot_data(), batch_size=B)
    linear_model(docl).fit(
        train, epochs=8, verbose=0, callbacks=[keras.callbacks.TensorBoard(log_dir), docl]
    )
    np.testing.assert_allclose(
        tensorboard_scalars(log_dir)["epoch_docl_fraction"],
        [n / N for n in (40, 24, 19, 40, 17, 40, 15, 15)],
        rtol=1e-6,
    )
