"""One small, deterministic run per curriculum, reporting its curriculum state and weights.

The scale tests (tests/test_scale.py) run these under every configuration — a `tf.distribute`
strategy, the Keras distribution API on JAX, XLA, `steps_per_execution`, mixed precision — and
compare the state with the plain single-device run. The module has no pytest dependency so the
distributed subprocesses (two logical CPUs, two workers, four JAX host devices) can import it.

Every run crosses its curriculum's boundaries within 4 epochs: LeRaC finishes after k = 2,
CBS's sigma halves every epoch and is bypassed at epoch 3 (0.125 < `bypass_sigma(3)` = 0.246),
EfficientTrain goes through 8, 12 and 16 px, DoCL warms up, samples, refreshes and samples a
smaller subset. Data is never shuffled by the pipeline and models have no BatchNormalization,
so a run is a function of its configuration (and replicas average to the single-device step).
"""

import numpy as np

from benchmarks.harness import TraceCounter

from checks import assert_same_recorded

CONFIGS = ("lerac", "cbs", "lerac+cbs", "efficient_train", "docl")
EPOCHS = 4
BATCH = 8
SIZE = 16
NUM_EXAMPLES = 32
ET_TABLE = [(1, 8, None), (1, 12, None), (2, None, None)]
CURRICULUM_LOGS = (
    "lerac_lr_first",
    "lerac_lr_last",
    "cbs_sigma",
    "et_height",
    "et_stage",
    "docl_fraction",
)


def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (NUM_EXAMPLES, SIZE, SIZE, 3)).astype("float32")
    y = rng.integers(0, 3, NUM_EXAMPLES).astype("int32")
    return x, y


def _model(variable_size):
    import keras

    keras.utils.set_random_seed(0)
    shape = (None, None, 3) if variable_size else (SIZE, SIZE, 3)
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    # float32 logits under mixed precision, as Keras recommends.
    outputs = keras.layers.Dense(3, name="head", dtype="float32")(x)
    return keras.Model(inputs, outputs)


def _epoch_recorder(docl, counter):
    """A callback keeping each epoch's DoCL order and the traces made during each epoch."""
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.orders = []
            self.traces_per_epoch = []

        def on_epoch_begin(self, epoch, logs=None):
            self._traces = counter.count
            if docl is not None:  # after DoCL's own on_epoch_begin: the epoch's order
                self.orders.append(np.array(docl._order.current_order()))

        def on_epoch_end(self, epoch, logs=None):
            self.traces_per_epoch.append(counter.count - self._traces)

    return EpochRecorder()


def build(config, jit_compile="auto", steps_per_execution=1, backup_dir=None, metrics=()):
    """Model (compiled, with `metrics` besides the curriculum's), training data and callbacks
    of `config`, under the current scope."""
    import keras
    import tensorflow as tf

    import keras_curriculum as kc

    if config not in CONFIGS + ("conventional",):
        raise ValueError(f"Unknown config {config!r}")
    x, y = data()
    model = _model(variable_size=config == "efficient_train")
    callbacks, docl, metrics = [], None, list(metrics)
    if "cbs" in config:
        model = kc.add_smoothing(model, sigma=1.0, kernel_size=3)
        callbacks.append(kc.SigmaDecay(factor=0.5, every=1))
    if "lerac" in config:
        callbacks.append(kc.LeRaC(duration=2, min_learning_rate=1e-4))
    if config == "efficient_train":
        et = kc.EfficientTrain(ET_TABLE, value_range=(0, 1))
        train = et.apply(
            tf.data.Dataset.from_tensor_slices((x, y)), batch_size=BATCH, drop_remainder=True
        )
        callbacks.append(et)
    elif config == "docl":
        docl = kc.DoCL(
            warmup_epochs=1,
            episode_epochs=1,
            fraction_decay=0.5,
            min_fraction=0.25,
            initial_fraction=0.5,
            tau=0.5,
            seed=5,
            state_dtype="float32",
            backup_dir=backup_dir,
        )
        train = docl.apply((x, y), batch_size=BATCH, drop_remainder=True)
        callbacks.append(docl)
        metrics.append(docl.metric())
    else:
        train = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH, drop_remainder=True)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=metrics,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model, train, callbacks, docl


def run(config, strategy=None, jit_compile="auto", steps_per_execution=1, epochs=EPOCHS):
    """Trains `config`; returns its curriculum state, weights and train-step trace count."""
    import contextlib

    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model, train, callbacks, docl = build(config, jit_compile, steps_per_execution)
    counter = TraceCounter(model)
    recorder = _epoch_recorder(docl, counter)
    history = model.fit(train, epochs=epochs, callbacks=callbacks + [recorder], verbose=0)
    return _state(model, history, counter, recorder, docl)


class Interrupted(RuntimeError):
    pass


def run_resumed(config, backup_dir, epoch, batch=None, fresh=True):
    """Interrupts `config` in `epoch` (after `batch`, or at the epoch's end) and resumes it.

    The run keeps a `keras.callbacks.BackupAndRestore` in `backup_dir` (saving every batch when
    `batch` is given, else every epoch). `fresh=True` resumes as a new process would: a new
    model, pipeline and callbacks; `fresh=False` calls `fit` again on the same objects, with
    whatever the callbacks remember. Returns the state of the resumed run's end.
    """
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None):
            self.epoch = e

        def on_train_batch_end(self, b, logs=None):
            if batch is not None and self.epoch == epoch and b == batch:
                raise Interrupted(f"simulated preemption at epoch {epoch}, batch {batch}")

        def on_epoch_end(self, e, logs=None):
            if batch is None and e == epoch:
                raise Interrupted(f"simulated preemption after epoch {epoch}")

    def backup():
        return keras.callbacks.BackupAndRestore(
            backup_dir, save_freq=1 if batch is not None else "epoch"
        )

    model, train, callbacks, docl = build(config, backup_dir=backup_dir + "_docl")
    try:
        model.fit(train, epochs=EPOCHS, callbacks=[backup()] + callbacks + [Interrupt()], verbose=0)
    except Interrupted:
        pass
    else:
        raise AssertionError("the run was not interrupted")
    if fresh:
        model, train, callbacks, docl = build(config, backup_dir=backup_dir + "_docl")
    counter = TraceCounter(model)
    recorder = _epoch_recorder(docl, counter)
    history = model.fit(
        train, epochs=EPOCHS, callbacks=[backup()] + callbacks + [recorder], verbose=0
    )
    return _state(model, history, counter, recorder, docl)


def _state(model, history, counter, recorder, docl):
    state = {
        "logs": {
            k: [float(v) for v in history.history[k]]
            for k in CURRICULUM_LOGS
            if k in history.history
        },
        "weights": [np.asarray(w) for w in model.get_weights()],
        "traces": counter.count,
        "traces_per_epoch": recorder.traces_per_epoch,
        "traced_shapes": counter.shapes,
    }
    if docl is not None:
        state["docl_scores"] = np.array(docl.scores)
        state["docl_orders"] = recorder.orders
    return state


def to_npz(states, path):
    """Saves {config: state} for a parent process (subprocess runs)."""
    flat = {}
    for config, state in states.items():
        for key, values in state["logs"].items():
            flat[f"{config}|logs|{key}"] = np.array(values)
        for i, w in enumerate(state["weights"]):
            flat[f"{config}|weights|{i:03d}"] = w
        flat[f"{config}|traces"] = np.array(state["traces"])
        if "docl_scores" in state:
            flat[f"{config}|docl_scores"] = state["docl_scores"]
            for e, order in enumerate(state["docl_orders"]):
                flat[f"{config}|docl_orders|{e:03d}"] = order
    np.savez(path, **flat)


def from_npz(path):
    loaded = np.load(path)
    states = {}
    for key in sorted(loaded.files):
        config, field, *rest = key.split("|")
        state = states.setdefault(config, {"logs": {}, "weights": [], "docl_orders": []})
        if field == "logs":
            state["logs"][rest[0]] = [float(v) for v in loaded[key]]
        elif field in ("weights", "docl_orders"):
            state[field].append(loaded[key])
        elif field == "traces":
            state["traces"] = int(loaded[key])
        else:
            state[field] = loaded[key]
    return states


# Replicas sum their half-batch gradients in another order than one device sums the batch:
# float32 rounding, compounded by momentum over 16 steps, reaches about 1e-4 of a weight. A
# curriculum out of step on one replica moves weights by orders of magnitude more.
REPLICA_TOLERANCE = dict(weights_rtol=1e-3, weights_atol=1e-4, scores_rtol=1e-3, scores_atol=1e-4)


def assert_same_state(
    got, want, weights_rtol=1e-5, weights_atol=1e-6, scores_rtol=1e-4, scores_atol=1e-5, label=""
):
    """Same curriculum (logs, DoCL subsets) exactly; weights and scores to float tolerance.

    Every compared value must be recorded (finite; every example scored), so two runs that
    recorded nothing do not pass as equal.
    """
    assert want["logs"] and got["logs"].keys() == want["logs"].keys(), (label, got["logs"].keys())
    for key in want["logs"]:
        assert_same_recorded(
            got["logs"][key], want["logs"][key], rtol=1e-6, err_msg=f"{label}: {key}"
        )
    assert want["weights"] and len(got["weights"]) == len(want["weights"])
    for g, w in zip(got["weights"], want["weights"]):
        assert_same_recorded(
            g.astype("float32"),
            w.astype("float32"),
            rtol=weights_rtol,
            atol=weights_atol,
            err_msg=f"{label}: weights",
        )
    if "docl_scores" in want:
        assert_same_recorded(
            got["docl_scores"],
            want["docl_scores"],
            rtol=scores_rtol,
            atol=scores_atol,
            err_msg=f"{label}: DoCL scores",
        )
        assert want["docl_orders"] and len(got["docl_orders"]) == len(want["docl_orders"])
        for e, (g, w) in enumerate(zip(got["docl_orders"], want["docl_orders"])):
            assert_same_recorded(g, w, err_msg=f"{label}: DoCL order of epoch {e}")
