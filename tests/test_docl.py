"""DoCL: score formula, sampler, episode plan, schedule, the tf.data stage and the callback."""

import itertools
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_curriculum as kc
import keras_curriculum.docl as docl_module
from keras_curriculum.docl import CosineRestarts
from keras_curriculum.docl import DoCL
from keras_curriculum.docl import DoCLLogits

from checks import assert_curve
from checks import assert_same_recorded
from checks import rebuilt

# Pure math ----------------------------------------------------------------------------------


def _reference_score(f, g, label, rho):
    p = np.exp(f - f.max()) / np.exp(f - f.max()).sum()
    residual = -p
    residual[label] += 1.0
    return float(sum(residual[c] * (f[c] - g[c]) / rho for c in range(len(f))))


def test_instant_score_matches_formula():
    rng = np.random.default_rng(0)
    f, g = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    labels, rho = rng.integers(0, 4, 6), rng.uniform(0.1, 2.0, 6)
    got = docl_module.docl_instant_scores(f, g, labels, rho)
    want = [_reference_score(f[i], g[i], labels[i], rho[i]) for i in range(6)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_instant_score_ignores_a_constant_shift_of_a_row():
    rng = np.random.default_rng(1)
    f, g = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    labels, rho = np.array([0, 2, 4]), np.ones(3)
    base = docl_module.docl_instant_scores(f, g, labels, rho)
    shifted = docl_module.docl_instant_scores(f + 3.0, g - 1.5, labels, rho)
    np.testing.assert_allclose(base, shifted, rtol=1e-5, atol=1e-6)


def test_ema_update_keeps_first_score_then_smooths():
    out = docl_module.ema_update(np.array([np.nan, 2.0]), np.array([5.0, 4.0]), 0.9)
    np.testing.assert_allclose(out, [5.0, 0.9 * 2.0 + 0.1 * 4.0], rtol=1e-6)


def _exact_inclusion(weights, k):
    """P(i in S) for k successive draws without replacement, Pr proportional to weights."""
    n = len(weights)
    inclusion = np.zeros(n)
    for sequence in itertools.permutations(range(n), k):
        probability, left = 1.0, weights.sum()
        for i in sequence:
            probability *= weights[i] / left
            left -= weights[i]
        inclusion[list(sequence)] += probability
    return inclusion


def test_sampler_inclusion_frequencies_match_successive_sampling():
    scores, tau, k, draws = np.array([0.0, 0.05, 0.1, 0.2, -0.1, 0.15]), 0.1, 3, 20000
    exact = _exact_inclusion(np.exp(scores / tau), k)
    rng = np.random.default_rng(123)
    counts = np.zeros(len(scores))
    for _ in range(draws):
        counts[docl_module.sample_subset(scores, k, tau, rng)] += 1
    frequencies = counts / draws
    tolerance = 4.5 * np.sqrt(exact * (1 - exact) / draws)
    assert np.all(np.abs(frequencies - exact) < tolerance), (frequencies, exact)
    # Not uniform: the test would fail for a sampler that ignores the scores.
    assert np.abs(exact - k / len(scores)).max() > 10 * tolerance.max()


def test_sampler_draws_distinct_indices_reproducibly():
    scores = np.random.default_rng(0).normal(size=1000)
    first = docl_module.sample_subset(scores, 300, 0.1, np.random.default_rng(7))
    again = docl_module.sample_subset(scores, 300, 0.1, np.random.default_rng(7))
    assert len(first) == 300 and len(np.unique(first)) == 300
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(
        np.sort(docl_module.sample_subset(scores, 1000, 0.1, np.random.default_rng(1))),
        np.arange(1000),
    )


def test_epoch_plan_follows_algorithm_1():
    plans = [
        docl_module.epoch_plan(
            e, 100, warmup_epochs=2, episode_epochs=[1, 2], fraction_decay=0.5, min_fraction=0.2
        )
        for e in range(11)
    ]
    phases = [p.phase for p in plans]
    sizes = [p.size for p in plans]
    assert phases == [
        "warmup",
        "warmup",
        "sample",
        "refresh",
        "sample",
        "sample",
        "refresh",
        "sample",
        "sample",
        "refresh",
        "sample",
    ]
    # k_0 = n, then k_m = max(min_fraction n, fraction_decay^m n).
    assert sizes == [100, 100, 100, 100, 50, 50, 100, 25, 25, 100, 20]


def test_cosine_restarts_matches_numpy():
    schedule = CosineRestarts([4, 6], 1.0, 0.1, max_decay=0.5, min_decay=0.8)
    steps = np.arange(13)
    want = []
    for t in steps:
        c, start, length = (0, 0, 4) if t < 4 else (1, 4, 6)
        frac = min((t - start) / length, 1.0)
        hi, lo = 1.0 * 0.5**c, 0.1 * 0.8**c
        want.append(lo + 0.5 * (hi - lo) * (1 + np.cos(np.pi * frac)))
    # Every argument shapes `want`: the copies rebuilt from the config must give it too.
    for copy in [schedule] + rebuilt(schedule):
        got = [float(keras.ops.convert_to_numpy(copy(int(t)))) for t in steps]
        np.testing.assert_allclose(got, want, rtol=1e-5)
        np.testing.assert_allclose(copy.rates(steps), want, rtol=1e-12)


def test_metric_rebuilt_from_its_config_buffers_the_same_rows():
    rng = np.random.default_rng(0)
    steps = [
        (rng.integers(0, 3, 4).astype("int32"), rng.dirichlet(np.ones(3), 4).astype("float32"))
        for _ in range(3)
    ]
    metric = DoCLLogits(batch_size=4, buffer_steps=2, from_logits=False)
    for copy in [metric] + rebuilt(metric):
        for labels, probabilities in steps:
            copy.update_state(labels, probabilities)
        # By hand: step t goes to slot t % 2, so slot 0 holds step 2 and slot 1 step 1; the
        # model outputs probabilities (from_logits=False), recorded as their logarithm.
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(copy.logits), np.log([steps[2][1], steps[1][1]]), rtol=1e-6
        )
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(copy.labels), [steps[2][0], steps[1][0]]
        )
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(copy.rows), [[4], [4]])
        assert int(keras.ops.convert_to_numpy(copy.steps)) == 3


# Training -----------------------------------------------------------------------------------

N, C, B = 40, 4, 8


def _one_hot_data(seed=0):
    rng = np.random.default_rng(seed)
    return np.eye(N, dtype="float32"), rng.integers(0, C, N).astype("int32")


def _linear_model(docl, schedule=None, **compile_kwargs):
    keras.utils.set_random_seed(0)
    dense = keras.layers.Dense(C, use_bias=False, kernel_initializer="random_normal")
    model = keras.Sequential([keras.Input((N,)), dense])
    model.compile(
        optimizer=keras.optimizers.SGD(schedule if schedule is not None else 0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[docl.metric()] if docl is not None else [],
        **compile_kwargs,
    )
    return model


class _KernelRecorder(keras.callbacks.Callback):
    """Kernel before and after every step, and the optimizer iteration the step ran at."""

    def on_train_begin(self, logs=None):
        self.steps = []

    def on_train_batch_begin(self, batch, logs=None):
        kernel = keras.ops.convert_to_numpy(self.model.layers[0].kernel).copy()
        iteration = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.steps.append([iteration, kernel, None])

    def on_train_batch_end(self, batch, logs=None):
        self.steps[-1][2] = keras.ops.convert_to_numpy(self.model.layers[0].kernel).copy()


class _PairList:
    """A random-access source of (x, y) pairs, like a TFDS `data_source`."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def _make_source(kind, x, y):
    if kind == "arrays":
        return (x, y)
    if kind == "pairs":
        return _PairList(x, y)
    return tf.data.Dataset.from_tensor_slices((x, y))


def _small_docl(**kwargs):
    defaults = dict(
        warmup_epochs=2,
        episode_epochs=1,
        fraction_decay=0.5,
        min_fraction=0.25,
        initial_fraction=0.5,
        tau=0.5,
        seed=5,
        state_dtype="float32",
        shuffle_window=16,
    )
    defaults.update(kwargs)
    return DoCL(**defaults)


@pytest.mark.parametrize("kind", ["arrays", "pairs", "tfdata"])
def test_scores_equal_numpy_formula_on_a_model_with_known_logits(kind):
    # One-hot inputs and a bias-free linear layer: example i's logits are row i of the kernel,
    # which plain SGD changes only when i is in the batch. The steps that visited i and its
    # logits are read off the recorded kernels, independently of DoCL's bookkeeping.
    x, y = _one_hot_data()
    docl = _small_docl()
    train = docl.apply(_make_source(kind, x, y), batch_size=B)
    epochs = 5
    schedule = docl.learning_rate_schedule(0.5, epochs=epochs, min_learning_rate=0.05)
    model = _linear_model(docl, schedule)
    recorder = _KernelRecorder()
    model.fit(train, epochs=epochs, callbacks=[docl, recorder], verbose=0)

    # rho sums the rates of the steps that ran (TF counts an extra iteration after an epoch
    # that ends before the dataset's declared length; no update happens at it).
    steps = [step for step in recorder.steps if step[2] is not None]  # TF: a last, empty call
    rates = schedule.rates([iteration for iteration, _, _ in steps])
    ran = np.concatenate([[0.0], np.cumsum(rates)])
    ema = np.full(N, np.nan)
    last, previous = {}, {}
    for s, (_, before, after) in enumerate(steps):
        for i in np.flatnonzero(np.abs(after - before).sum(axis=1) > 0):
            f = before[i]
            if i in last:
                a = _reference_score(f, previous[i], y[i], ran[s] - ran[last[i]])
                ema[i] = a if np.isnan(ema[i]) else 0.9 * ema[i] + 0.1 * a
            last[i], previous[i] = s, f
    assert_same_recorded(docl.scores, ema, rtol=2e-4, atol=1e-5)  # every example visited twice
    visits = [h["size"] for h in docl.history]
    assert visits == [docl.epoch_plan(e).size for e in range(epochs)] == [40, 40, 20, 40, 10]


def test_subset_sizes_and_refresh_pass_update_every_example():
    x, y = _one_hot_data()
    docl = _small_docl()
    model = _linear_model(docl)
    train = docl.apply((x, y), batch_size=B)
    seen_per_epoch = []

    class Visits(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.before = docl.last_visit_steps

        def on_epoch_end(self, epoch, logs=None):
            changed = docl.last_visit_steps != self.before
            seen_per_epoch.append(int(changed.sum()))

    model.fit(train, epochs=5, callbacks=[docl, Visits()], verbose=0)
    assert [docl.epoch_plan(e).phase for e in range(5)] == [
        "warmup",
        "warmup",
        "sample",
        "refresh",
        "sample",
    ]
    assert seen_per_epoch == [40, 40, 20, 40, 10]
    assert [h["steps"] for h in docl.history] == [5, 5, 3, 5, 2]
    assert [h["fraction"] for h in docl.history] == [1.0, 1.0, 0.5, 1.0, 0.25]


def test_validation_does_not_change_scores():
    x, y = _one_hot_data()
    results = []
    for validation in (None, (x[:16], (y[:16] + 1) % C)):
        docl = _small_docl()
        model = _linear_model(docl)
        train = docl.apply((x, y), batch_size=B)
        model.fit(train, epochs=3, callbacks=[docl], validation_data=validation, verbose=0)
        results.append(docl.scores)
    assert_same_recorded(results[0], results[1])


def test_no_extra_forward_pass():
    # Model calls beyond one per train step (Keras's build calls) are the same with and
    # without DoCL: the scores come from the step's own forward pass.
    calls = []

    class Counting(keras.layers.Layer):
        def call(self, inputs):
            calls.append(1)
            return inputs

    x, y = _one_hot_data()
    extra = []
    for use_docl in (False, True):
        docl = _small_docl()
        train = docl.apply((x, y), batch_size=B)
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((N,)), Counting(), keras.layers.Dense(C)])
        model.compile(
            optimizer="sgd",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[docl.metric()] if use_docl else [],
            run_eagerly=True,
        )
        steps = _StepCounter()
        calls.clear()
        model.fit(train, epochs=3, callbacks=[docl, steps] if use_docl else [steps], verbose=0)
        extra.append(len(calls) - steps.count)
    assert steps.count == 5 + 5 + 3
    assert extra[0] == extra[1]


class _StepCounter(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.count = 0

    def on_train_batch_end(self, batch, logs=None):
        self.count += 1


@pytest.mark.no_torch
def test_steps_per_execution_buffers_every_step():
    x, y = _one_hot_data()
    scores = []
    for steps in (1, 2):
        docl = _small_docl(buffer_steps=2)
        model = _linear_model(docl, steps_per_execution=steps)
        model.fit(docl.apply((x, y), batch_size=B), epochs=3, callbacks=[docl], verbose=0)
        scores.append(docl.scores)
    assert_same_recorded(scores[0], scores[1], rtol=1e-5, atol=1e-6)


@pytest.mark.no_torch
def test_steps_per_execution_beyond_buffer_is_rejected():
    x, y = _one_hot_data()
    docl = _small_docl(buffer_steps=1)
    model = _linear_model(docl, steps_per_execution=2)
    with pytest.raises(ValueError, match=r"DoCL\(buffer_steps=1\)"):
        model.fit(docl.apply((x, y), batch_size=B), epochs=1, callbacks=[docl], verbose=0)


def test_resume_after_backup_and_restore_is_exact(tmp_path):
    x, y = _one_hot_data()

    def run(directory, epochs, stop_at=None):
        docl = _small_docl(backup_dir=str(directory))
        model = _linear_model(docl)
        callbacks = [keras.callbacks.BackupAndRestore(str(directory)), docl]
        if stop_at is not None:

            class Stop(keras.callbacks.Callback):
                def on_epoch_begin(self, epoch, logs=None):
                    if epoch == stop_at:
                        raise RuntimeError("interrupted")

            callbacks.append(Stop())
        try:
            model.fit(
                docl.apply((x, y), batch_size=B), epochs=epochs, callbacks=callbacks, verbose=0
            )
        except RuntimeError:
            pass
        return docl

    reference = run(tmp_path / "a", 5)
    run(tmp_path / "b", 5, stop_at=3)
    resumed = run(tmp_path / "b", 5)
    assert_same_recorded(resumed.scores, reference.scores, rtol=1e-5, atol=1e-6)
    assert_same_recorded(resumed.last_visit_steps, reference.last_visit_steps, missing=-1)
    assert [h["epoch"] for h in resumed.history] == list(range(5))


def test_rebuilt_from_its_config_runs_the_same_curriculum():
    x, y = _one_hot_data()
    docl = _small_docl(
        episode_epochs=[1, 2], tau=0.3, gamma=0.8, fraction_decay=0.4, refresh=False, seed=11
    )
    runs = []
    for copy in [docl] + rebuilt(docl):
        model = _linear_model(copy)
        model.fit(copy.apply((x, y), batch_size=B), epochs=5, callbacks=[copy], verbose=0)
        runs.append(copy)
    # By hand: 2 warm-up epochs, then episodes of 1 and 2 epochs without refresh passes, at
    # 0.5 n, then max(0.25, 0.4 * 0.5) n = 0.25 n.
    assert [h["size"] for h in docl.history] == [40, 40, 20, 10, 10]
    for copy in runs[1:]:
        for key in ("size", "steps", "scored"):
            assert [h[key] for h in copy.history] == [h[key] for h in docl.history], key
        # No example is scored in the first epoch (its mean is NaN), every one after it.
        assert_same_recorded(
            [h["mean_score"] for h in copy.history],
            [h["mean_score"] for h in docl.history],
            min_recorded=4,
        )
        assert_same_recorded(copy.scores, docl.scores)
        assert_same_recorded(copy.last_visit_steps, docl.last_visit_steps, missing=-1)


def test_memory_per_example_and_state_dtype():
    x, y = _one_hot_data()
    docl = _small_docl(state_dtype="float16")
    model = _linear_model(docl)
    model.fit(docl.apply((x, y), batch_size=B), epochs=1, callbacks=[docl], verbose=0)
    state = docl.state_dict()
    per_example = sum(state[k].nbytes for k in ("previous", "last_step", "scores", "labels")) / N
    assert per_example == docl.memory_per_example() == 2 * C + 12
    assert docl.memory_per_example(1000) * 1_281_167 < 2.6e9


def test_fraction_in_logs_and_plot(tmp_path, saved_plots):
    x, y = _one_hot_data()
    docl = _small_docl()
    model = _linear_model(docl)
    history = model.fit(docl.apply((x, y), batch_size=B), epochs=3, callbacks=[docl], verbose=0)
    # Two warm-up epochs on all the data, then a sample of initial_fraction = 0.5.
    assert history.history["docl_fraction"] == [1.0, 1.0, 0.5]
    paths = [str(tmp_path / "method.png"), str(tmp_path / "kc_plot.png")]
    assert docl.plot(paths[0]) == paths[0] and kc.plot(docl, paths[1]) == paths[1]
    assert [plot.path for plot in saved_plots] == paths
    for plot in saved_plots:
        assert (plot.xlabel, plot.ylabel) == ("epoch", "fraction")
        (curve,) = plot.curves
        assert_curve(curve, [0, 1, 2], [1.0, 1.0, 0.5])


def test_tensorboard_score_histograms(tmp_path):
    pytest.importorskip("tensorboard", reason="tf.summary needs the tensorboard package")
    x, y = _one_hot_data()
    docl = _small_docl(log_dir=str(tmp_path / "logs"))
    model = _linear_model(docl)
    model.fit(docl.apply((x, y), batch_size=B), epochs=3, callbacks=[docl], verbose=0)
    tags = set()
    for name in os.listdir(tmp_path / "logs"):
        for event in tf.compat.v1.train.summary_iterator(str(tmp_path / "logs" / name)):
            tags.update(value.tag for value in event.summary.value)
    assert {"docl/score", "docl/fraction"} <= tags


_DISTRIBUTED = textwrap.dedent(
    """
    import os, sys
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from keras_curriculum.docl import DoCL
    from checks import assert_same_recorded

    n, c = 40, 4
    x = np.eye(n, dtype="float32")
    y = np.random.default_rng(0).integers(0, c, n).astype("int32")

    def run(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            docl = DoCL(warmup_epochs=2, episode_epochs=1, fraction_decay=0.5, min_fraction=0.25,
                        initial_fraction=0.5, seed=5, state_dtype="float32")
            model = keras.Sequential([keras.Input((n,)),
                                      keras.layers.Dense(c, use_bias=False,
                                                         kernel_initializer="random_normal")])
            model.compile(optimizer=keras.optimizers.SGD(0.5),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=[docl.metric()])
        model.fit(docl.apply((x, y), batch_size=10), epochs=4, callbacks=[docl], verbose=0)
        return docl, strategy.num_replicas_in_sync

    single, r1 = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
    mirrored, r2 = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    assert (r1, r2) == (1, 2), (r1, r2)
    assert_same_recorded(single.last_visit_steps, mirrored.last_visit_steps, missing=-1)
    assert_same_recorded(single.scores, mirrored.scores, rtol=1e-4, atol=1e-6)
    print("DISTRIBUTED_OK")
    """
)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tf.distribute check runs in a TF subprocess; once, in the TensorFlow-backend run",
)
def test_mirrored_strategy_gives_the_single_device_scores():
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(tests_dir), tests_dir]))
    result = subprocess.run(
        [sys.executable, "-c", _DISTRIBUTED], capture_output=True, text=True, timeout=300, env=env
    )
    assert "DISTRIBUTED_OK" in result.stdout, result.stderr[-3000:]
