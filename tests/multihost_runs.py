"""The functions tests/test_multihost.py runs in each worker (tests/multihost.py).

Each returns JSON: the curriculum logs, per-epoch step counts, weights and DoCL's draws of the
scale runs (tests/scale_runs.py: the same models, data and boundaries), built so that every
process feeds its own part of each global batch; or the errors raised by configurations that
must be refused before the first step.
"""

import numpy as np

import scale_runs

# EfficientTrain with saturation: fewer, larger batches at low resolution (8 px: one batch of
# all 32 examples; 12 px: 2 of 12, the rest dropped; 16 px: 4 of 8), "scaled" because Keras
# accumulates gradients on JAX but the runs here keep the optimizer plain.
SATURATED = "efficient_train_saturated"


def _global_rows():
    """A metric whose epoch log is the number of rows the last train step trained on: the
    global batch, which must be the single-process one (each process feeding its part)."""
    import keras
    from keras import ops

    class GlobalRows(keras.metrics.Metric):
        def __init__(self, name="global_rows", **kwargs):
            super().__init__(name=name, **kwargs)
            self.rows = self.add_variable((), "zeros", name="rows")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.rows.assign(ops.cast(ops.shape(y_true)[0], "float32"))

        def result(self):
            return ops.convert_to_tensor(self.rows)

    return GlobalRows()


def _build(config, backup_dir=None):
    import keras
    import tensorflow as tf

    import keras_curriculum as kc

    if config != SATURATED:
        model, train, callbacks, docl = scale_runs.build(
            config, backup_dir=backup_dir, metrics=[_global_rows()]
        )
        if config not in ("efficient_train", "docl"):  # their stages split the batches
            train = kc.split_batches(train)
        return model, train, callbacks, docl
    x, y = scale_runs.data()
    model = scale_runs._model(variable_size=True)
    et = kc.EfficientTrain(scale_runs.ET_TABLE, value_range=(0, 1), saturate="scaled", seed=3)
    train = et.apply(
        tf.data.Dataset.from_tensor_slices((x, y)),
        batch_size=scale_runs.BATCH,
        drop_remainder=True,
        shuffle=False,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[_global_rows()],
    )
    return model, train, [et], None


def _steps_recorder():
    import keras

    class Steps(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.per_epoch = []
            self.orders = []
            self.docl = None

        def on_epoch_begin(self, epoch, logs=None):
            self.per_epoch.append(0)
            if self.docl is not None:  # after DoCL's own on_epoch_begin: the epoch's draw
                self.orders.append(np.array(self.docl._order.current_order()).tolist())

        def on_train_batch_end(self, batch, logs=None):
            self.per_epoch[-1] += 1

    return Steps()


def run(config, before=(), backup_dir=None):
    """One curriculum's state after `scale_runs.EPOCHS` epochs on this process."""

    model, train, callbacks, docl = _build(config, backup_dir)
    recorder = _steps_recorder()
    recorder.docl = docl
    history = model.fit(
        train, epochs=scale_runs.EPOCHS, callbacks=list(before) + callbacks + [recorder], verbose=0
    )
    return _state(model, history, recorder, docl)


def _state(model, history, recorder, docl):
    import jax

    state = {
        "process": jax.process_index(),
        "logs": {
            k: [float(v) for v in history.history[k]]
            for k in scale_runs.CURRICULUM_LOGS
            if k in history.history
        },
        "loss": [float(v) for v in history.history["loss"]],
        "global_rows": [int(v) for v in history.history["global_rows"]],
        "steps": recorder.per_epoch,
        "weights": [np.asarray(w).tolist() for w in model.get_weights()],
    }
    if docl is not None:
        state["docl_orders"] = recorder.orders
        state["docl_scores"] = np.asarray(docl.scores).tolist()
    return state


def resumed(configs, directory):
    """Each config interrupted after epoch 1 and resumed by fresh objects, as a new process.

    Every process keeps its own backup (`BackupAndRestore` and DoCL's `backup_dir` under
    `directory/process_<index>`): each holds the whole replicated state, and two processes
    writing one directory would race.
    """
    import os

    import jax
    import keras

    class Interrupted(RuntimeError):
        pass

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # on every process at the same point: none is left in a collective
                raise Interrupted("simulated preemption after epoch 1")

    distribution = keras.distribution.distribution()
    states = {}
    for config in configs:
        own = os.path.join(directory, config, f"process_{jax.process_index()}")
        backup = os.path.join(own, "keras")
        try:
            run(config, [keras.callbacks.BackupAndRestore(backup), Interrupt()], own + "_docl")
        except Interrupted:
            pass
        else:
            raise AssertionError("the run was not interrupted")
        keras.backend.clear_session()
        keras.distribution.set_distribution(distribution)
        states[config] = run(config, [keras.callbacks.BackupAndRestore(backup)], own + "_docl")
        keras.backend.clear_session()
        keras.distribution.set_distribution(distribution)
    return states


def runs(configs):
    import keras

    distribution = keras.distribution.distribution()
    states = {}
    for config in configs:
        states[config] = run(config)
        # `clear_session` forgets the distribution too: the next run would train each
        # process on its own part alone.
        keras.backend.clear_session()
        keras.distribution.set_distribution(distribution)
    return states


def _refusal(action):
    """The error `action()` raises, as "Type: message", or None."""
    try:
        action()
    except Exception as error:  # noqa: BLE001 - the test checks the type by name
        return f"{type(error).__name__}: {error}"
    return None


def _fit_refusal(model, train, callbacks):
    """The error of a `fit` that must fail before its first step, and the steps it ran."""

    def fit():
        model.fit(train, epochs=scale_runs.EPOCHS, callbacks=callbacks, verbose=0)

    error = _refusal(fit)
    return {"error": error, "steps": int(model.optimizer.iterations.numpy())}


def refusals():
    """Configurations that would hang a collective or split a batch unevenly, each refused."""
    import keras
    import tensorflow as tf

    import keras_curriculum as kc

    x, y = scale_runs.data()
    examples = tf.data.Dataset.from_tensor_slices((x[:30], y[:30]))
    out = {
        # 30 examples in batches of 8: the last global batch (6) would reach one process.
        "split_partial": _refusal(lambda: kc.split_batches(examples.batch(8))),
        "split_not_divisible": _refusal(
            lambda: kc.split_batches(examples.batch(6, drop_remainder=True))
        ),
        "docl_partial": _refusal(lambda: kc.DoCL(seed=0).apply((x, y), batch_size=8)),
        # 20 % of 32 examples is 7: a subset epoch shorter than one batch of 8 has no step.
        "docl_subset_below_a_batch": _refusal(
            lambda: kc.DoCL(seed=0, min_fraction=0.2).apply(
                (x, y), batch_size=8, drop_remainder=True
            )
        ),
        "docl_not_divisible": _refusal(
            lambda: kc.DoCL(seed=0).apply((x, y), batch_size=6, drop_remainder=True)
        ),
        "et_partial_batched": _refusal(
            lambda: kc.EfficientTrain(scale_runs.ET_TABLE, value_range=(0, 1)).apply(
                examples.batch(8)
            )
        ),
        "et_evaluation_partial": _refusal(
            lambda: kc.EfficientTrain(scale_runs.ET_TABLE, value_range=(0, 1)).evaluation_data(
                examples, batch_size=8
            )
        ),
    }
    # Not a refusal: DoCL without a seed draws each process's own at construction; `apply`
    # must replace it with process 0's, or the processes would draw different subsets.
    unseeded = kc.DoCL(min_fraction=0.25)
    unseeded.apply((x, y), batch_size=8, drop_remainder=True)
    out["docl_unseeded_seed"] = unseeded._seed
    model = scale_runs._model(variable_size=True)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    et = kc.EfficientTrain(scale_runs.ET_TABLE, value_range=(0, 1))
    out["et_partial"] = _fit_refusal(model, et.apply(examples, batch_size=8), [et])
    # Saturated stages: batches of 32 at 8 px leave 8 of 40 examples in a partial batch.
    forty = tf.data.Dataset.from_tensor_slices((np.concatenate([x, x[:8]]), np.r_[y, y[:8]]))
    model = scale_runs._model(variable_size=True)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    et = kc.EfficientTrain(scale_runs.ET_TABLE, value_range=(0, 1), saturate="scaled")
    train = et.apply(forty, batch_size=8, shuffle=False)
    out["et_saturated_partial"] = _fit_refusal(model, train, [et])
    # Keras auto-sharding would split DoCL's per-process parts again.
    distribution = keras.distribution.distribution()
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=keras.distribution.list_devices())
    )
    try:
        model, train, callbacks, _ = scale_runs.build("docl")
        out["docl_auto_sharded"] = _fit_refusal(model, train, callbacks)
        model, train, callbacks, _ = scale_runs.build("lerac")
        out["lerac_auto_sharded"] = _fit_refusal(model, train, callbacks)
    finally:
        keras.distribution.set_distribution(distribution)
    return out


def hang():
    """Process 0 waits in a collective that process 1 never joins (the launcher must end it)."""
    import time

    import jax

    from keras_curriculum import processes

    if jax.process_index() == 1:
        time.sleep(3600)
    return processes.value_of_process_zero(1)
