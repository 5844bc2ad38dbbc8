"""`kc-recipes --num-processes N`: the runner on N JAX processes of this machine.

The parent starts N copies of the same command, each a process of JAX's runtime
(`keras.distribution.initialize` from the `KERAS_DISTRIBUTION_*` variables, gloo collectives on
the CPU) training with `DataParallel` over every process's devices; process 0 writes the
results, the others write to a temporary folder. On N machines run the same command on each,
with those variables set (docs/backends.md, "Many hosts").
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

PROCESS_ID = "KC_RECIPES_PROCESS_ID"


def is_child():
    return PROCESS_ID in os.environ


def is_writer():
    return int(os.environ.get(PROCESS_ID, 0)) == 0


def count():
    """Processes training together (JAX's runtime); 1 on the other backends."""
    import keras

    if keras.backend.backend() != "jax":
        return 1
    import jax

    return jax.process_count()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argv, num_processes):
    """Runs `argv` (the runner's arguments) on `num_processes` processes; the exit code."""
    port = _free_port()
    logs, children = [], []
    for index in range(num_processes):
        env = dict(
            os.environ,
            KERAS_BACKEND="jax",
            KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
            KERAS_DISTRIBUTION_NUM_PROCESSES=str(num_processes),
            KERAS_DISTRIBUTION_PROCESS_ID=str(index),
            **{PROCESS_ID: str(index)},
        )
        # Process 0 reports; the others' output is shown only if they fail.
        log = None if index == 0 else tempfile.TemporaryFile("w+")
        logs.append(log)
        command = [sys.executable, "-m", "keras_curriculum_recipes"] + list(argv)
        children.append(
            subprocess.Popen(
                command, env=env, stdout=log, stderr=log or None, start_new_session=True
            )
        )
    try:
        # A process that fails leaves the others waiting in a collective: end them all.
        while all(c.poll() in (None, 0) for c in children) and any(
            c.poll() is None for c in children
        ):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    for index, (child, log) in enumerate(zip(children, logs)):
        if child.returncode not in (0, -signal.SIGKILL) and log is not None:
            log.seek(0)
            print(f"--- process {index} (exit {child.returncode}):", file=sys.stderr)
            print(log.read()[-3000:], file=sys.stderr)
    codes = [c.returncode for c in children]
    return next((c for c in codes if c not in (0, -signal.SIGKILL)), max(codes, key=abs))


def start():
    """In a child: joins JAX's runtime and sets `DataParallel` over every process's devices."""
    import jax

    # No cross-process collectives on the CPU without gloo; other platforms ignore it.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras

    keras.distribution.initialize()
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(
            devices=keras.distribution.list_devices(), auto_shard_dataset=False
        )
    )


def split(dataset, batch_size):
    """This process's part of every whole global batch of `dataset` (unchanged on one)."""
    import keras_curriculum as kc

    if count() == 1:
        return dataset
    if dataset.element_spec[0].shape[0] is None:  # a partial last batch would hang a process
        dataset = dataset.unbatch().batch(batch_size, drop_remainder=True)
    return kc.split_batches(dataset)


def predictions(model, x, batch_size):
    """`model.predict(x)` on every process: Keras 3.15's `predict` cannot return outputs
    spread over several processes, so a single-process copy of the (replicated) model
    predicts."""
    import keras

    if count() == 1:
        return model.predict(x, batch_size=batch_size, verbose=0)
    distribution = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        local = keras.models.clone_model(model)
        local.set_weights(model.get_weights())
        return local.predict(x, batch_size=batch_size, verbose=0)
    finally:
        keras.distribution.set_distribution(distribution)
