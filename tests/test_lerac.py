"""LeRaC: rates against the paper's formulas, and optimizer updates against numpy references."""

import math
import os

import keras
import numpy as np
import pytest
from keras import layers
from keras import ops
from keras_versions import needs_keras

import keras_curriculum as kc
from keras_curriculum import plot_lerac
from keras_curriculum.lerac import schedules

from checks import assert_curve
from checks import assert_same_recorded
from checks import rebuilt
from tf_subprocess import only_in_tensorflow_pass
from tf_subprocess import run_two_replica_check

# ---------------------------------------------------------------------------------------------
# Independent numpy references (written from the paper, not from the package)


def paper_initial_rates(n, highest, lowest):
    # log10 eta_j = log10 eta_1 + (j - 1)/(n - 1) * (log10 eta_n - log10 eta_1)
    return np.array(
        [
            10 ** (math.log10(highest) + j / (n - 1) * (math.log10(lowest) - math.log10(highest)))
            for j in range(n)
        ]
    )


def paper_rate(eta_j0, base, l, k, update, c=10.0):
    if l >= k:
        return base
    if update == "exponential":  # Eq. 8
        return eta_j0 * c ** ((l / k) * (math.log(base, c) - math.log(eta_j0, c)))
    if update == "linear":
        return eta_j0 + (l / k) * (base - eta_j0)
    if update == "stepwise":
        return min(eta_j0 * c**l, base)
    raise AssertionError(update)


def reference_rates(n, base, highest, lowest, k, steps, steps_per_unit, update="exponential"):
    initial = paper_initial_rates(n, highest, lowest)
    return np.array(
        [
            [paper_rate(e0, base, t // steps_per_unit, k, update) for e0 in initial]
            for t in range(steps)
        ]
    )


def f32_power(base, exponent):
    return float(np.float32(base) ** np.float32(exponent))


class NumpyOptimizer:
    """Keras's update rules (SGD with momentum, Adam, AdamW, Adamax), written out in numpy."""

    def __init__(
        self, name, weight_decay=None, momentum=0.9, beta_1=0.9, beta_2=0.999, epsilon=1e-7
    ):
        self.name, self.wd, self.momentum = name, weight_decay, momentum
        self.b1, self.b2, self.eps = beta_1, beta_2, epsilon
        self.state = {}

    def step(self, key, w, g, lr, t):
        m, v = self.state.get(key, (np.zeros_like(w), np.zeros_like(w)))
        if self.wd:
            w = w - w * self.wd * lr
        if self.name == "sgd":
            m = self.momentum * m - lr * g
            w = w + m
        elif self.name in ("adam", "adamw"):
            m = m + (g - m) * (1 - self.b1)
            v = v + (g * g - v) * (1 - self.b2)
            # Keras forms the bias corrections in float32 (1 - 0.999**t cancels): so do we.
            alpha = lr * math.sqrt(1 - f32_power(self.b2, t + 1)) / (1 - f32_power(self.b1, t + 1))
            w = w - alpha * m / (np.sqrt(v) + self.eps)
        elif self.name == "adamax":
            m = m + (g - m) * (1 - self.b1)
            v = np.maximum(self.b2 * v, np.abs(g))
            w = w - lr / (1 - f32_power(self.b1, t + 1)) * m / (v + self.eps)
        self.state[key] = (m, v)
        return w


# ---------------------------------------------------------------------------------------------
# A model whose gradients do not depend on its weights: group j is Dense_j(s_j * x) and the loss
# is the batch mean of the summed outputs, so dL/dkernel_j = s_j * mean(x) and dL/dbias_j = 1.

DIM, BATCH, GROUPS = 4, 8, 4
SCALES = [1.0, 0.5, 2.0, -1.0]


def probe_model():
    inputs = keras.Input((DIM,))
    outs = [
        layers.Dense(1, name=f"g{j}")(layers.Rescaling(SCALES[j], name=f"s{j}")(inputs))
        for j in range(GROUPS)
    ]
    return keras.Model(inputs, layers.Add(name="sum")(outs))


def mean_output_loss(y_true, y_pred):
    return y_pred[:, 0]


def probe_data(batches):
    rng = np.random.default_rng(0)
    xb = rng.normal(size=(BATCH, DIM)).astype("float32")
    return np.concatenate([xb] * batches), np.zeros((BATCH * batches, 1), "float32"), xb


def simulate(model, optimizer_ref, rates, steps, xb):
    """Numpy training of the probe model with per-group rates `rates[t, j]`."""
    weights = {v.path: ops.convert_to_numpy(v).astype("float64") for v in model.weights}
    mean_x = xb.mean(axis=0).astype("float64")
    for t in range(steps):
        for j in range(GROUPS):
            kernel, bias = f"g{j}/kernel", f"g{j}/bias"
            weights[kernel] = optimizer_ref.step(
                kernel, weights[kernel], SCALES[j] * mean_x[:, None], rates[t, j], t
            )
            weights[bias] = optimizer_ref.step(bias, weights[bias], np.ones(1), rates[t, j], t)
    return weights


def assert_weights_match(model, expected, rtol=2e-5, atol=2e-6):
    for v in model.weights:
        np.testing.assert_allclose(
            ops.convert_to_numpy(v), expected[v.path], rtol=rtol, atol=atol, err_msg=v.path
        )


OPTIMIZERS = {
    "sgd": (lambda lr: keras.optimizers.SGD(lr, momentum=0.9), lambda: NumpyOptimizer("sgd")),
    "adam": (lambda lr: keras.optimizers.Adam(lr), lambda: NumpyOptimizer("adam")),
    "adamw": (
        lambda lr: keras.optimizers.AdamW(lr, weight_decay=0.05),
        lambda: NumpyOptimizer("adamw", weight_decay=0.05),
    ),
    "adamax": (lambda lr: keras.optimizers.Adamax(lr), lambda: NumpyOptimizer("adamax")),
}
PATTERNS = [f"g{j}" for j in range(GROUPS)]


# ---------------------------------------------------------------------------------------------
# Pure math


def test_log_spaced_rates_match_paper_interpolation():
    got = schedules.log_spaced_rates(5, 1e-2, 1e-8)
    np.testing.assert_allclose(got, paper_initial_rates(5, 1e-2, 1e-8), rtol=1e-12)
    np.testing.assert_allclose(
        got, [1e-2, 1e-3 * 10**-0.5, 1e-5, 1e-6 * 10**-0.5, 1e-8], rtol=1e-12
    )
    assert schedules.log_spaced_rates(1, 0.1, 1e-5).tolist() == [0.1]


@pytest.mark.parametrize("update", ["exponential", "linear", "stepwise"])
@pytest.mark.parametrize("c", [10.0, 2.0])
def test_scales_match_paper_formulas(update, c):
    base, k = 0.1, 5
    initial = paper_initial_rates(4, 0.05, 1e-7)
    log_ratios = np.log(initial / base)
    for l in [0, 1, 2, 3, 4, 5, 6, 9]:
        got = ops.convert_to_numpy(schedules.lerac_scales(log_ratios, l, k, update, c)) * base
        want = [paper_rate(e0, base, l, k, update, c) for e0 in initial]
        np.testing.assert_allclose(got, want, rtol=2e-6)


@pytest.mark.parametrize("update", ["exponential", "linear", "stepwise"])
def test_scales_are_exactly_one_from_k_on(update):
    log_ratios = np.log([1.0, 1e-3, 1e-7])
    for l in [5, 6, 100]:
        got = ops.convert_to_numpy(schedules.lerac_scales(log_ratios, l, 5, update))
        assert got.tolist() == [1.0, 1.0, 1.0]


def test_elapsed_units_for_epochs_and_steps():
    steps = np.arange(0, 13)
    by_epoch = [float(ops.convert_to_numpy(schedules.lerac_elapsed_units(s, 4))) for s in steps]
    assert by_epoch == [float(s // 4) for s in steps]
    by_step = [float(ops.convert_to_numpy(schedules.lerac_elapsed_units(s, 1))) for s in steps]
    assert by_step == [float(s) for s in steps]


# ---------------------------------------------------------------------------------------------
# Updates inside fit, against numpy


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("unit", ["epoch", "step"])
def test_updates_match_numpy_reference(name, unit):
    make_optimizer, make_reference = OPTIMIZERS[name]
    base, k, epochs, batches = 0.05, 3, 5, 2
    model = probe_model()
    model.compile(make_optimizer(base), loss=mean_output_loss)
    x, y, xb = probe_data(batches)
    k_units = k if unit == "epoch" else k * batches
    lerac = kc.LeRaC(duration=k_units, min_learning_rate=1e-6, unit=unit, groups=PATTERNS)
    initial = {v.path: ops.convert_to_numpy(v) for v in model.weights}

    model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0, callbacks=[lerac])

    steps = epochs * batches
    rates = reference_rates(
        GROUPS, base, base, 1e-6, k_units, steps, batches if unit == "epoch" else 1
    )
    shadow = probe_model()
    shadow.set_weights([initial[v.path] for v in shadow.weights])
    assert_weights_match(model, simulate(shadow, make_reference(), rates, steps, xb))


@pytest.mark.parametrize("update", ["linear", "stepwise"])
def test_other_updates_in_fit(update):
    base, k, epochs = 0.1, 4, 5
    model = probe_model()
    model.compile(keras.optimizers.SGD(base), loss=mean_output_loss)
    x, y, xb = probe_data(1)
    initial = [ops.convert_to_numpy(v) for v in model.weights]
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[kc.LeRaC(duration=k, min_learning_rate=1e-4, update=update, groups=PATTERNS)],
    )
    rates = reference_rates(GROUPS, base, base, 1e-4, k, epochs, 1, update)
    shadow = probe_model()
    shadow.set_weights(initial)
    assert_weights_match(
        model, simulate(shadow, NumpyOptimizer("sgd", momentum=0.0), rates, epochs, xb)
    )


@pytest.mark.no_torch  # torch rejects steps_per_execution > 1; jit_compile is torch.compile
def test_jit_compile_and_steps_per_execution():
    base, k, epochs, batches = 0.05, 2, 3, 4
    model = probe_model()
    model.compile(
        keras.optimizers.AdamW(base, weight_decay=0.01),
        loss=mean_output_loss,
        jit_compile=True,
        steps_per_execution=2,
    )
    x, y, xb = probe_data(batches)
    initial = [ops.convert_to_numpy(v) for v in model.weights]
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[kc.LeRaC(duration=k, min_learning_rate=1e-5, groups=PATTERNS)],
    )
    rates = reference_rates(GROUPS, base, base, 1e-5, k, epochs * batches, batches)
    shadow = probe_model()
    shadow.set_weights(initial)
    assert_weights_match(
        model,
        simulate(shadow, NumpyOptimizer("adamw", weight_decay=0.01), rates, epochs * batches, xb),
    )


def test_weight_decay_exclusions_are_respected():
    base = 0.05
    model = probe_model()
    optimizer = keras.optimizers.AdamW(base, weight_decay=0.1)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    model.compile(optimizer, loss=mean_output_loss)
    x, y, xb = probe_data(1)
    initial = [ops.convert_to_numpy(v) for v in model.weights]
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[kc.LeRaC(duration=2, min_learning_rate=1e-5, groups=PATTERNS)],
    )
    rates = reference_rates(GROUPS, base, base, 1e-5, 2, 3, 1)
    shadow = probe_model()
    shadow.set_weights(initial)
    decayed, plain = NumpyOptimizer("adamw", weight_decay=0.1), NumpyOptimizer("adam")
    weights = {v.path: ops.convert_to_numpy(v).astype("float64") for v in shadow.weights}
    mean_x = xb.mean(axis=0)
    for t in range(3):
        for j in range(GROUPS):
            kernel, bias = f"g{j}/kernel", f"g{j}/bias"
            weights[kernel] = decayed.step(
                kernel, weights[kernel], SCALES[j] * mean_x[:, None], rates[t, j], t
            )
            weights[bias] = plain.step(bias, weights[bias], np.ones(1), rates[t, j], t)
    assert_weights_match(model, weights)


@pytest.mark.parametrize("base_schedule", ["hold", "multiply"])
def test_learning_rate_schedule_is_held_or_multiplied(base_schedule):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.8)
    k, epochs = 3, 6
    model = probe_model()
    model.compile(keras.optimizers.SGD(schedule), loss=mean_output_loss)
    x, y, xb = probe_data(1)
    initial = [ops.convert_to_numpy(v) for v in model.weights]
    lerac = kc.LeRaC(
        duration=k, min_learning_rate=1e-4, groups=PATTERNS, base_schedule=base_schedule
    )
    model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0, callbacks=[lerac])

    initial_rates = paper_initial_rates(GROUPS, 0.1, 1e-4)
    rates = np.zeros((epochs, GROUPS))
    for t in range(epochs):
        if base_schedule == "hold":  # paper: schedule off during 0..k, then started from 0
            base_t = 0.1 if t < k else 0.1 * 0.8 ** (t - k)
        else:
            base_t = 0.1 * 0.8**t
        for j in range(GROUPS):
            rates[t, j] = base_t * paper_rate(initial_rates[j], 0.1, t, k, "exponential") / 0.1
    shadow = probe_model()
    shadow.set_weights(initial)
    assert_weights_match(
        model, simulate(shadow, NumpyOptimizer("sgd", momentum=0.0), rates, epochs, xb)
    )


def test_after_k_training_is_bit_identical_to_plain_training():
    base, k = 0.05, 2
    x, y, _ = probe_data(2)
    model = probe_model()
    model.compile(keras.optimizers.AdamW(base, weight_decay=0.05), loss=mean_output_loss)
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=k,
        shuffle=False,
        verbose=0,
        callbacks=[kc.LeRaC(duration=k, min_learning_rate=1e-6, groups=PATTERNS)],
    )
    twin = probe_model()
    twin.compile(keras.optimizers.AdamW(base, weight_decay=0.05), loss=mean_output_loss)
    twin.optimizer.build(twin.trainable_variables)
    twin.set_weights(model.get_weights())
    twin.optimizer.set_weights([ops.convert_to_numpy(v) for v in model.optimizer.variables])

    lerac = kc.LeRaC(duration=k, min_learning_rate=1e-6, groups=PATTERNS)
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=k + 3,
        initial_epoch=k,
        shuffle=False,
        verbose=0,
        callbacks=[lerac],
    )
    twin.fit(x, y, batch_size=BATCH, epochs=k + 3, initial_epoch=k, shuffle=False, verbose=0)
    assert len(model.get_weights()) == len(twin.get_weights()) > 0
    for a, b in zip(model.get_weights(), twin.get_weights()):
        assert_same_recorded(a, b)


# ---------------------------------------------------------------------------------------------
# Resume, reuse, logs


def test_save_and_restore_continues_the_curriculum(tmp_path):
    base, k, batches = 0.05, 4, 2
    x, y, xb = probe_data(batches)
    model = probe_model()
    model.compile(keras.optimizers.Adam(base), loss=mean_output_loss)
    initial = [ops.convert_to_numpy(v) for v in model.weights]
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[kc.LeRaC(duration=k, min_learning_rate=1e-6, groups=PATTERNS)],
    )
    path = str(tmp_path / "mid_curriculum.keras")
    model.save(path)
    restored = keras.models.load_model(path, custom_objects={"mean_output_loss": mean_output_loss})
    restored.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=5,
        initial_epoch=2,
        shuffle=False,
        verbose=0,
        callbacks=[kc.LeRaC(duration=k, min_learning_rate=1e-6, groups=PATTERNS)],
    )
    rates = reference_rates(GROUPS, base, base, 1e-6, k, 5 * batches, batches)
    shadow = probe_model()
    shadow.set_weights(initial)
    assert_weights_match(restored, simulate(shadow, NumpyOptimizer("adam"), rates, 5 * batches, xb))


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("simulated preemption")


def test_backup_and_restore_resumes_rates(tmp_path):
    base, k, batches, epochs = 0.05, 4, 2, 6
    x, y, xb = probe_data(batches)
    model = probe_model()
    model.compile(keras.optimizers.SGD(base, momentum=0.9), loss=mean_output_loss)
    initial = [ops.convert_to_numpy(v) for v in model.weights]
    lerac = kc.LeRaC(duration=k, min_learning_rate=1e-6, groups=PATTERNS)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="preemption"):
        model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=epochs,
            shuffle=False,
            verbose=0,
            callbacks=[backup, lerac, _Interrupt(at_epoch=2)],
        )
    # A fresh process would rebuild everything: new model, optimizer and callback.
    resumed = probe_model()
    resumed.compile(keras.optimizers.SGD(base, momentum=0.9), loss=mean_output_loss)
    history = resumed.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[
            keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
            kc.LeRaC(duration=k, min_learning_rate=1e-6, groups=PATTERNS),
        ],
    )
    assert history.epoch == [3, 4, 5]  # epochs 0..2 were restored, not re-run
    rates = reference_rates(GROUPS, base, base, 1e-6, k, epochs * batches, batches)
    shadow = probe_model()
    shadow.set_weights(initial)
    assert_weights_match(
        resumed, simulate(shadow, NumpyOptimizer("sgd"), rates, epochs * batches, xb)
    )


def test_reused_callback_does_not_stack_and_is_removed_after_fit():
    base, k = 0.05, 3
    x, y, xb = probe_data(1)
    model = probe_model()
    model.compile(keras.optimizers.SGD(base), loss=mean_output_loss)
    initial = [ops.convert_to_numpy(v) for v in model.weights]
    lerac = kc.LeRaC(duration=k, min_learning_rate=1e-6, groups=PATTERNS)
    for start in range(3):  # the same instance in three consecutive fits
        model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=start + 1,
            initial_epoch=start,
            shuffle=False,
            verbose=0,
            callbacks=[lerac],
        )
        assert not set(vars(model.optimizer)) & {
            "update_step",
            "_backend_update_step",
            "_apply_weight_decay",
        }
    # Then plain training: no curriculum left behind even though k was not reached.
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    rates = reference_rates(GROUPS, base, base, 1e-6, k, 4, 1)
    rates[3] = base
    shadow = probe_model()
    shadow.set_weights(initial)
    assert_weights_match(model, simulate(shadow, NumpyOptimizer("sgd", momentum=0.0), rates, 4, xb))


def test_optimizer_code_path_is_restored_at_the_first_epoch_after_k():
    x, y, _ = probe_data(1)
    model = probe_model()
    model.compile(keras.optimizers.SGD(0.1), loss=mean_output_loss)
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append("update_step" in vars(model.optimizer))

    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=4,
        verbose=0,
        callbacks=[kc.LeRaC(duration=2, min_learning_rate=1e-5, groups=PATTERNS), Probe()],
    )
    assert seen == [True, True, False, False]


def test_logs_report_group_rates():
    base, k = 0.1, 2
    x, y, _ = probe_data(1)
    model = probe_model()
    model.compile(keras.optimizers.SGD(base), loss=mean_output_loss)
    history = model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=3,
        verbose=0,
        callbacks=[kc.LeRaC(duration=k, min_learning_rate=1e-5, groups=PATTERNS, log_groups=True)],
    )
    want = reference_rates(GROUPS, base, base, 1e-5, k, 3, 1)
    np.testing.assert_allclose(history.history["lerac_lr_first"], want[:, 0], rtol=1e-5)
    np.testing.assert_allclose(history.history["lerac_lr_last"], want[:, -1], rtol=1e-5)
    for j in range(GROUPS):
        np.testing.assert_allclose(history.history[f"lerac_lr/{j:02d}_g{j}"], want[:, j], rtol=1e-5)


def test_rates_table_and_plot(tmp_path, saved_plots):
    model = probe_model()
    model.compile(keras.optimizers.SGD(0.1), loss=mean_output_loss)
    lerac = kc.LeRaC(duration=2, min_learning_rate=1e-5, groups=PATTERNS)
    want = reference_rates(GROUPS, 0.1, 0.1, 1e-5, 2, 8, 2)
    names, table = lerac.rates(model, range(8), steps_per_epoch=2)
    assert names == PATTERNS
    np.testing.assert_allclose(table, want, rtol=1e-5)

    paths = [str(tmp_path / f"{name}.png") for name in ("function", "method", "kc_plot")]
    assert plot_lerac(lerac, model, range(8), paths[0], steps_per_epoch=2) == paths[0]
    assert lerac.plot(paths[1], model=model, steps=range(8), steps_per_epoch=2) == paths[1]
    assert kc.plot(lerac, paths[2], model=model, steps=range(8), steps_per_epoch=2) == paths[2]
    assert [plot.path for plot in saved_plots] == paths
    for plot in saved_plots:
        assert os.path.exists(plot.path)
        assert (plot.xlabel, plot.yscale) == ("optimizer step", "log")
        assert [curve.label for curve in plot.curves] == ["00 g0", "01 g1", "02 g2", "03 g3"]
        for j, curve in enumerate(plot.curves):
            assert_curve(curve, range(8), want[:, j], rtol=1e-5)


_BASE = {"duration": 2, "min_learning_rate": 1e-5, "groups": PATTERNS, "steps_per_epoch": 2}


@pytest.mark.parametrize(
    "name, value, others",
    [
        ("duration", 3, {}),
        ("min_learning_rate", 1e-3, {}),
        ("max_learning_rate", 0.05, {}),
        ("unit", "step", {}),
        ("update", "linear", {}),
        ("c", 4.0, {"update": "official"}),
        ("groups", ["g3", "g2", "g1", "g0"], {}),
        ("steps_per_epoch", 3, {}),
    ],
)
def test_rebuilt_from_its_config_gives_the_same_rates(name, value, others):
    model = probe_model()
    model.compile(keras.optimizers.SGD(0.1), loss=mean_output_loss)
    lerac = kc.LeRaC(**{**_BASE, **others, name: value})
    names, want = lerac.rates(model, range(10))  # group names in order, rate per group
    other_names, without = kc.LeRaC(**{**_BASE, **others}).rates(model, range(10))
    assert names != other_names or not np.allclose(want, without), f"`{name}` changes nothing"
    for copy in rebuilt(lerac):
        got_names, got = copy.rates(model, range(10))
        assert got_names == names
        assert_same_recorded(got, want)


def test_mixed_precision_loss_scale_optimizer_is_patched_inside():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = probe_model()
        model.compile(keras.optimizers.SGD(0.1), loss=mean_output_loss)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        x, y, _ = probe_data(1)
        history = model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=2,
            verbose=0,
            callbacks=[kc.LeRaC(duration=2, min_learning_rate=1e-5, groups=PATTERNS)],
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    want = reference_rates(GROUPS, 0.1, 0.1, 1e-5, 2, 2, 1)
    np.testing.assert_allclose(history.history["lerac_lr_last"], want[:, -1], rtol=1e-5)
    assert np.isfinite(history.history["loss"]).all()


# ---------------------------------------------------------------------------------------------
# Bad input


def test_unknown_epoch_length_works_with_steps_per_epoch():
    # Without `steps_per_epoch` such a fit is refused (tests/test_hostile_input.py).
    import tensorflow as tf

    x, y, _ = probe_data(2)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).filter(lambda a, b: True)
    model = probe_model()
    model.compile(keras.optimizers.SGD(0.1), loss=mean_output_loss)
    history = model.fit(
        dataset,
        epochs=1,
        verbose=0,
        callbacks=[
            kc.LeRaC(duration=2, min_learning_rate=1e-6, groups=PATTERNS, steps_per_epoch=2)
        ],
    )
    # Step 1 is still in epoch 0 with 2 steps per epoch: the deepest group at its initial rate.
    want = reference_rates(GROUPS, 0.1, 0.1, 1e-6, 2, 2, 2)[1, -1]
    np.testing.assert_allclose(history.history["lerac_lr_last"], [want], rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# tf.distribute (TensorFlow only: runs in a subprocess so two logical CPUs can be configured)

_MIRRORED_SCRIPT = r"""
import numpy as np, keras
import test_lerac as t
import keras_curriculum as kc
x, y, xb = t.probe_data(2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = t.probe_model()
    model.compile(keras.optimizers.AdamW(0.05, weight_decay=0.05), loss=t.mean_output_loss)
initial = [keras.ops.convert_to_numpy(v) for v in model.weights]
model.fit(x, y, batch_size=t.BATCH, epochs=4, shuffle=False, verbose=0,
          callbacks=[kc.LeRaC(duration=2, min_learning_rate=1e-6, groups=t.PATTERNS)])
rates = t.reference_rates(t.GROUPS, 0.05, 0.05, 1e-6, 2, 8, 2)
shadow = t.probe_model()
shadow.set_weights(initial)
t.assert_weights_match(model, t.simulate(shadow, t.NumpyOptimizer("adamw", weight_decay=0.05),
                                         rates, 8, xb))
print("replicas", strategy.num_replicas_in_sync, "OK")
"""


@pytest.mark.no_torch
@only_in_tensorflow_pass
def test_mirrored_strategy_matches_numpy_reference():
    run_two_replica_check(_MIRRORED_SCRIPT)


# ---------------------------------------------------------------------------------------------
# Every built-in optimizer: the group's update equals the same optimizer run at the group's rate


class _RateSequence(keras.optimizers.schedules.LearningRateSchedule):
    """Reference: a plain optimizer whose schedule replays one group's LeRaC rates."""

    def __init__(self, rates):
        self.rates = [float(r) for r in rates]

    def __call__(self, step):
        table = ops.convert_to_tensor(np.asarray(self.rates, "float32"))
        return ops.take(table, ops.minimum(ops.cast(step, "int32"), len(self.rates) - 1))

    def get_config(self):
        return {"rates": self.rates}


BUILTIN = {
    "SGD": {"momentum": 0.9, "weight_decay": 0.01},
    "RMSprop": {"weight_decay": 0.01},
    "Adam": {"weight_decay": 0.01},
    "AdamW": {"weight_decay": 0.01},
    "Adamax": {"weight_decay": 0.01},
    "Nadam": {"weight_decay": 0.01},
    "Adagrad": {"weight_decay": 0.01},
    "Adadelta": {"weight_decay": 0.01},
    "Adafactor": {"weight_decay": 0.01},
    "Ftrl": {},
    "Lion": {"weight_decay": 0.01},
    "Lamb": {"weight_decay": 0.01},
    "Muon": {"weight_decay": 0.01},
    "ScheduleFreeAdamW": {"weight_decay": 0.01},
}
NEWER_OPTIMIZERS = {
    "Muon": needs_keras(
        "3.13",
        "Muon's update_step reads `variable.path`, which the raw "
        "tf.Variable it gets on TensorFlow lacks",
        backends=("tensorflow",),
    ),
    "ScheduleFreeAdamW": needs_keras("3.14", "keras.optimizers.ScheduleFreeAdamW"),
}


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=NEWER_OPTIMIZERS.get(name, ())) for name in sorted(BUILTIN)]
)
def test_every_builtin_optimizer_updates_each_group_at_its_rate(name):
    base, k, steps = 0.01, 6, 8
    rates = reference_rates(GROUPS, base, base, 1e-5, k, steps, 1)
    x, y, _ = probe_data(steps)

    def make(lr):
        return getattr(keras.optimizers, name)(learning_rate=lr, **BUILTIN[name])

    model = probe_model()
    model.compile(make(base), loss=mean_output_loss)
    initial = [ops.convert_to_numpy(v) for v in model.weights]
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[kc.LeRaC(duration=k, min_learning_rate=1e-5, unit="step", groups=PATTERNS)],
    )
    for group in (1, GROUPS - 1):
        reference = probe_model()
        reference.set_weights(initial)
        reference.compile(make(_RateSequence(rates[:, group])), loss=mean_output_loss)
        # Built eagerly, as LeRaC builds its optimizer: Keras 3.15 on TF otherwise builds it
        # inside the traced step, where ScheduleFreeAdamW's `momentum = copy(variable)` then
        # runs at every step (a Keras bug; plain training shows it too).
        reference.optimizer.build(reference.trainable_variables)
        reference.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        for got, want in zip(model.weights, reference.weights):
            if got.path.startswith(f"g{group}/"):
                np.testing.assert_allclose(
                    ops.convert_to_numpy(got),
                    ops.convert_to_numpy(want),
                    rtol=1e-5,
                    atol=1e-7,
                    err_msg=f"{name} {got.path}",
                )


def test_official_is_the_deprecated_name_of_stepwise():
    with pytest.warns(DeprecationWarning, match="use update='stepwise'"):
        lerac = kc.LeRaC(duration=3, min_learning_rate=1e-4, update="official")
    assert lerac.update == "stepwise"
    with pytest.raises(ValueError, match="`update` must be"):
        kc.LeRaC(duration=3, min_learning_rate=1e-4, update="officia")
