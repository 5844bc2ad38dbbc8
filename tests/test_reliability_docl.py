"""DoCL under kills, misuse, bad data and large sets: nothing silently wrong (issue 16)."""

import os
import signal
import subprocess
import sys
import threading
import tracemalloc
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_curriculum.docl import DoCL
from keras_curriculum.docl import sources
from keras_curriculum.docl.order import EpochOrder
from keras_curriculum.docl.order import draw_epoch
from keras_curriculum.docl.plan import EpochPlan
from keras_curriculum.docl.state import ExampleState

N, C, B = 40, 4, 8


def one_hot_data(seed=0):
    rng = np.random.default_rng(seed)
    return np.eye(N, dtype="float32"), rng.integers(0, C, N).astype("int32")


def small_docl(**kwargs):
    defaults = dict(
        warmup_epochs=2,
        episode_epochs=1,
        fraction_decay=0.5,
        min_fraction=0.25,
        initial_fraction=0.5,
        tau=0.5,
        seed=5,
        state_dtype="float32",
    )
    defaults.update(kwargs)
    return DoCL(**defaults)


def linear_model(docl, name=None, input_name=None):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((N,), name=input_name)
    outputs = keras.layers.Dense(C, use_bias=False, kernel_initializer="random_normal")(inputs)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[docl.metric()],
    )
    return model


class RaiseAt(keras.callbacks.Callback):
    """Raises at `hook` of `epoch`: a kill at that point of the run."""

    def __init__(self, hook, epoch):
        super().__init__()
        self.epoch = epoch
        setattr(self, hook, self._maybe_raise)

    def _maybe_raise(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("killed")


def run(directory, epochs=5, kill=None, docl_backup=True, order="backup first"):
    """One fit with BackupAndRestore; `kill` = (hook, epoch) stops it there."""
    x, y = one_hot_data()
    docl = small_docl(backup_dir=str(directory) if docl_backup else None)
    model = linear_model(docl)
    backup = keras.callbacks.BackupAndRestore(str(directory))
    callbacks = [backup, docl] if order == "backup first" else [docl, backup]
    if kill is not None:
        callbacks.insert(1, RaiseAt(*kill))  # between the two writes
    try:
        model.fit(docl.apply((x, y), batch_size=B), epochs=epochs, callbacks=callbacks, verbose=0)
    except RuntimeError as error:
        if "killed" not in str(error):
            raise
    return docl


# Items 2 and 3: DoCL's state and the model's backup are one restore point -----------------


@pytest.mark.parametrize("order", ["backup first", "docl first"])
def test_kill_between_the_backup_and_docl_writes_resumes_exactly(tmp_path, order):
    reference = run(tmp_path / "reference")
    # Killed at the end of epoch 2, after BackupAndRestore wrote epoch 3 (order "backup
    # first") or before it did (the kill then sits before both on_epoch_end writes).
    run(tmp_path / "killed", kill=("on_epoch_end", 2), order=order)
    resumed = run(tmp_path / "killed", order=order)
    np.testing.assert_allclose(resumed.scores, reference.scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(resumed.last_visit_steps, reference.last_visit_steps)
    assert [h["scored"] for h in resumed.history] == [h["scored"] for h in reference.history]


def test_docl_state_of_another_epoch_is_refused(tmp_path):
    run(tmp_path, kill=("on_epoch_begin", 3))
    # The newest DoCL state is lost: what remains belongs to epoch 2, the model to epoch 3.
    os.remove(tmp_path / "docl_state.npz")
    with pytest.raises(RuntimeError, match=r"cannot resume at epoch 3.*epoch\(s\) \[2\]"):
        run(tmp_path)


def test_backup_and_restore_without_docl_backup_dir_is_refused(tmp_path):
    run(tmp_path, kill=("on_epoch_begin", 3), docl_backup=False)
    with pytest.raises(
        ValueError, match="resumes at epoch 3 from a `BackupAndRestore`.*Pass DoCL `backup_dir`"
    ):
        run(tmp_path, docl_backup=False)


def test_initial_epoch_without_a_state_warns():
    x, y = one_hot_data()
    docl = small_docl()
    model = linear_model(docl)
    with pytest.warns(UserWarning, match="starts at epoch 3 .*state is that of epoch 0"):
        model.fit(
            docl.apply((x, y), batch_size=B), epochs=4, initial_epoch=3, callbacks=[docl], verbose=0
        )


# Item 4: float16 state overflow --------------------------------------------------------------


def visits(state_dtype, scale):
    """Two visits of 4 examples with logits of magnitude `scale`, rates 0.1 per step."""
    state = ExampleState(state_dtype, gamma=0.5)
    state.allocate(4)
    state.allocate_logits(3)
    state.cover_steps(0, 4, lambda steps: np.full(len(steps), 0.1))
    index, labels = np.arange(4), np.array([0, 1, 2, 0], np.int32)
    first = np.array([[1, 0, -1], [2, -1, 0], [0, 0, 3], [-2, 1, 1]], np.float32) * scale
    second = first * 1.5
    state.visit(index, first, labels, 0)
    state.visit(index, second, labels, 2)
    return state, first, second, labels


def reference_scores(first, second, labels, rho):
    f, g = second.astype(np.float64), first.astype(np.float64)
    p = np.exp(f - f.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    residual = np.eye(3)[labels] - p
    return np.einsum("ij,ij->i", residual, (f - g) / rho)


def test_float16_state_stays_finite_with_huge_logits():
    with pytest.warns(UserWarning, match="state_dtype=float16.*clipped"):
        state, *_ = visits("float16", 1e5)
    assert np.isfinite(state.previous.astype(np.float32)).all()
    assert np.isfinite(state.scores).all()
    assert np.isfinite(state.filled_scores()).all()
    record = state.record_epoch(0, 4, 2)
    assert np.isfinite(record["mean_score"])
    # float32 holds these logits: no warning, and the score is the formula's.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state, first, second, labels = visits("float32", 1e5)
    np.testing.assert_allclose(
        state.scores, reference_scores(first, second, labels, 0.2), rtol=1e-4
    )


# Item 5 and 11: one DoCL, one model ----------------------------------------------------------


def test_a_second_model_is_refused_naming_the_metric_and_the_same_model_trains_again():
    x, y = one_hot_data()
    docl = small_docl()
    train = docl.apply((x, y), batch_size=B)
    first = linear_model(docl, name="first")
    first.fit(train, epochs=2, callbacks=[docl], verbose=0)
    with pytest.raises(ValueError, match="already trained model 'first'.*metric.*'second'"):
        linear_model(docl, name="second").fit(train, epochs=2, callbacks=[docl], verbose=0)
    first.fit(train, epochs=3, initial_epoch=2, callbacks=[docl], verbose=0)
    assert [h["epoch"] for h in docl.history] == [0, 1, 2]


def test_a_concurrent_fit_of_the_same_docl_is_refused():
    x, y = one_hot_data()
    docl = small_docl()
    train = docl.apply((x, y), batch_size=B)
    model = linear_model(docl, name="shared")
    paused, resume, result = threading.Event(), threading.Event(), {}

    class Pause(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                paused.set()
                assert resume.wait(300)

    def first_fit():
        try:
            model.fit(train, epochs=3, callbacks=[docl, Pause()], verbose=0)
        except Exception as error:  # noqa: BLE001 - reported below
            result["error"] = error

    thread = threading.Thread(target=first_fit)
    thread.start()
    assert paused.wait(300)
    with pytest.raises(RuntimeError, match="DoCL is already used by a `fit` of model 'shared'"):
        model.fit(train, epochs=3, callbacks=[docl], verbose=0)
    resume.set()
    thread.join()
    assert "error" not in result, result.get("error")
    assert [h["epoch"] for h in docl.history] == [0, 1, 2]


# Item 8: endless datasets of unknown length --------------------------------------------------


def endless():
    """Unknown cardinality, never ends."""
    numbers = tf.data.Dataset.range(10).repeat().filter(lambda i: i % 2 == 0)
    return numbers.map(lambda i: (tf.fill([3], tf.cast(i, tf.float32)), i % 3))


def test_counting_an_endless_dataset_stops_with_an_error(monkeypatch):
    monkeypatch.setattr(sources, "MAX_EXAMPLES", 20_000)
    with pytest.raises(
        ValueError, match="must be finite, with at most 20000 examples.*passed 20000"
    ):
        DoCL().apply(endless(), batch_size=4)


_COUNT_FOREVER = """
import sys
import tensorflow as tf
from keras_curriculum.docl import DoCL
numbers = tf.data.Dataset.range(10).repeat().filter(lambda i: i % 2 == 0)
print("counting", flush=True)
DoCL().apply(numbers.map(lambda i: (tf.fill([3], tf.cast(i, tf.float32)), i % 3)), batch_size=4)
"""


def test_counting_an_endless_dataset_is_interrupted_by_ctrl_c():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="3")
    child = subprocess.Popen(
        [sys.executable, "-c", _COUNT_FOREVER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout.readline().strip() == "counting"
        try:  # let the count start
            child.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
        child.send_signal(signal.SIGINT)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "KeyboardInterrupt" in child.stderr.read()


# Items 10 and 12: dict features, NaN labels --------------------------------------------------


@pytest.mark.parametrize("kind", ["arrays", "tfdata"])
def test_dict_features_train_like_the_plain_arrays(kind):
    x, y = one_hot_data()
    scores = []
    for features in (x, {"pixels": x}):
        docl = small_docl()
        data = (features, y)
        if kind == "tfdata":
            data = tf.data.Dataset.from_tensor_slices(data)
        train = docl.apply(data, batch_size=B)
        model = linear_model(docl, input_name="pixels")
        model.fit(train, epochs=4, callbacks=[docl], verbose=0)
        scores.append(docl.scores)
    assert np.isfinite(scores[0]).sum() == N
    np.testing.assert_array_equal(scores[0], scores[1])


def test_nested_non_dict_features_are_refused_by_name():
    x, y = one_hot_data()
    data = tf.data.Dataset.from_tensor_slices(((x, x), y))
    with pytest.raises(ValueError, match="x a dense tensor or a dict of dense tensors"):
        DoCL().apply(data, batch_size=B)


def test_nan_float_labels_are_refused_before_training():
    x, y = one_hot_data()
    labels = y.astype("float32")
    labels[7] = np.nan
    with pytest.raises(ValueError, match=r"labels must be class indices.*labels\[7\]=nan"):
        DoCL().apply((x, labels), batch_size=B)
    labels[7] = 1.5
    with pytest.raises(ValueError, match=r"labels\[7\]=1.5"):
        DoCL().apply((x, labels), batch_size=B)
    one_hot = np.eye(C, dtype="float32")[y]
    one_hot[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"labels\[3, 1\]=inf"):
        DoCL().apply((x, one_hot), batch_size=B)


# Item 13: what an epoch start allocates -------------------------------------------------------


def test_drawing_a_subset_allocates_a_few_bytes_per_example():
    n = 1_000_000
    state = ExampleState("float16")
    state.allocate(n)
    state.scores[: n // 2] = np.random.default_rng(0).normal(size=n // 2)
    plan = EpochPlan("sample", 0, n // 2)
    tracemalloc.start()
    try:
        chosen = draw_epoch(plan, state, n, 0.1, np.random.default_rng(1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # float32 keys (4 n), the kept int32 indices (2 n here) and chunk temporaries: no filled
    # copy of the scores, no copy for the partition, none of the float64 and int64
    # temporaries of a direct Gumbel-top-k (about 40 n).
    assert peak < 7 * n, peak / n
    assert len(np.unique(chosen)) == n // 2 and chosen.dtype == np.int32


def test_drawing_without_the_copies_draws_what_the_filled_scores_draw():
    """The same subset as `sample_subset` over a filled copy: the memory saving changes no
    draw (the keys are formed twice from one generator state)."""
    rng = np.random.default_rng(3)
    state = ExampleState("float16")
    state.allocate(5000)
    scored = rng.random(5000) < 0.6  # the others keep NaN: not scored yet
    state.scores[scored] = rng.normal(size=int(scored.sum()))
    chosen = draw_epoch(EpochPlan("sample", 0, 1200), state, 5000, 0.2, np.random.default_rng(9))
    filled = np.where(np.isnan(state.scores), np.float32(np.nanmean(state.scores)), state.scores)
    # Gumbel-top-k computed directly in numpy, from the same generator.
    reference_rng = np.random.default_rng(9)
    keys = np.empty(5000, np.float32)
    for start in range(0, 5000, 1 << 16):
        part = filled[start : start + (1 << 16)].astype(np.float64)
        keys[start : start + len(part)] = part / 0.2 + reference_rng.gumbel(size=len(part))
    expected = np.sort(np.argsort(-keys, kind="stable")[:1200])
    np.testing.assert_array_equal(np.sort(chosen), expected)


class ReadSpy:
    """Wraps an `EpochOrder`, recording how many indices each read of the stage takes."""

    def __init__(self, order):
        self.order = order
        self.reads = []

    def __getattr__(self, name):
        return getattr(self.order, name)

    def current_order(self):
        self.reads.append(len(self.order.current_order()))
        return self.order.current_order()

    def order_slice(self, start, stop):
        part = self.order.order_slice(start, stop)
        self.reads.append(len(part))
        return part


def test_the_stage_reads_the_order_in_chunks_not_as_one_tensor(monkeypatch):
    """An epoch's order enters the graph a chunk at a time: a tensor of the whole order would
    be a second copy of it (4 n bytes) at the peak of the next draw."""
    monkeypatch.setattr(sources, "ORDER_CHUNK", 100)
    n, batch = 1000, 64
    x = np.arange(n, dtype="float32")[:, None]
    y = np.zeros(n, "int32")
    order = EpochOrder(n, streaming=False, shuffle_window=10, seed=0)
    order.draw(0, np.random.default_rng(0).permutation(n)[:700].astype(np.int32))
    spy = ReadSpy(order)
    source = sources.make_source((x, y))
    batches = list(source.batches(spy, batch, drop_remainder=False))
    seen = np.concatenate([b[0].numpy()[:, 0] for b in batches]).astype(int)
    np.testing.assert_array_equal(seen, order.order)
    assert [len(b[0]) for b in batches] == [64] * 10 + [60]
    assert spy.reads and max(spy.reads) <= 100, spy.reads


def test_a_subset_smaller_than_one_dropped_batch_is_refused_before_training():
    """Such an epoch trained no step on TensorFlow while DoCL logged its subset as trained."""
    x = np.random.default_rng(0).random((40, 3)).astype("float32")
    y = np.arange(40, dtype="int32") % 2
    docl = DoCL(
        warmup_epochs=1, episode_epochs=1, min_fraction=0.2, fraction_decay=0.2, refresh=False
    )
    data = docl.apply((x, y), batch_size=16, drop_remainder=True)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(
        "sgd",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[docl.metric()],
    )
    steps = []

    class Steps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append(batch)

    with pytest.raises(ValueError, match=r"smallest subset in this fit \(8 examples.*batch of 16"):
        model.fit(data, epochs=4, verbose=0, callbacks=[docl, Steps()])
    assert steps == []
    # Two epochs never reach the small subset: they train.
    model.fit(data, epochs=2, verbose=0, callbacks=[docl, Steps()])
    assert len(steps) == 4
