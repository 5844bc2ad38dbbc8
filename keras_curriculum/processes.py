"""Training on several processes (JAX's multi-process runtime): each process's part of the data.

Under `keras.distribution.initialize(...)` and `DataParallel` over every process's devices, the
JAX trainer assembles each global batch from one local part per process
(`jax.make_array_from_process_local_data`): process p must feed rows
`[p * b / N, (p + 1) * b / N)` of global batch b. Keras's own auto-sharding (`rebatch` then
`shard`) does this too, but it loses the dataset's length (LeRaC's epochs and EfficientTrain's
stages are counted in steps) and a final partial global batch reaches only some processes,
which then wait for the others in a collective forever. `split_batches` keeps the length and
refuses a batch that cannot reach every process in equal parts.
"""

import keras

from keras_curriculum._tf_data import tf

# Appended to the errors of a curriculum that needs the dataset's length, on several processes.
LENGTH_HINT = (
    " On several processes, Keras's auto-sharding (`rebatch` + `shard`) loses the length: "
    "split the batches with `kc.split_batches(dataset)` and "
    "`DataParallel(..., auto_shard_dataset=False)`."
)


def process_count():
    """Processes in the JAX runtime (`jax.process_count()`); 1 on the other backends."""
    if keras.backend.backend() != "jax":
        return 1
    import jax

    return jax.process_count()


def process_index():
    if keras.backend.backend() != "jax":
        return 0
    import jax

    return jax.process_index()


def value_of_process_zero(value):
    """The int `value` (in [0, 2**32)) of process 0, on every process: a collective."""
    if process_count() == 1:
        return value
    import numpy as np
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.uint32(value)))


def data_devices():
    """Devices a global batch is split over on the `keras.distribution` data axis (JAX)."""
    distribution = keras.distribution.distribution()
    name = getattr(distribution, "batch_dim_name", None)
    if distribution is None or name is None:
        return 1
    mesh = distribution.device_mesh
    return int(mesh.shape[list(mesh.axis_names).index(name)])


def check_global_batch(batch_size, what="`batch_size`"):
    """ValueError when a global batch cannot be split evenly over the data devices."""
    devices = data_devices()
    if batch_size % devices:
        raise ValueError(
            f"{what} ({batch_size}, the global batch) must be a multiple of the {devices} "
            "devices of the distribution's data axis, which each take an equal part. "
            f"Received: batch_size={batch_size}"
        )


def check_not_auto_sharded(owner):
    """ValueError when Keras would split batches that `owner` already split per process."""
    distribution = keras.distribution.distribution()
    if process_count() > 1 and getattr(distribution, "auto_shard_dataset", False):
        raise ValueError(
            f"{owner} gives each process its own part of every global batch, and the "
            "distribution would split those parts again across the processes: create it with "
            "`keras.distribution.DataParallel(..., auto_shard_dataset=False)`."
        )


def check_split_for(owner, split_for):
    """ValueError when data prepared for `split_for` processes trains on another count."""
    count = process_count()
    if split_for != count:
        raise ValueError(
            f"{owner}'s training data was prepared for {split_for} process(es) and `fit` runs on "
            f"{count}: each process must feed its own part of every global batch. Call "
            "`keras.distribution.initialize(...)` before preparing the data."
        )
    check_not_auto_sharded(owner)


def local_part(dataset):
    """This process's rows of every global batch of `dataset` (unchanged on one process)."""
    count = process_count()
    if count == 1:
        return dataset
    index = process_index()

    def part(tensor):
        size = tf.shape(tensor)[0] // count
        return tensor[index * size : (index + 1) * size]

    # A map keeps the dataset's length, which `rebatch` + `shard` would lose.
    return dataset.map(lambda *batch: tf.nest.map_structure(part, batch))


def split_batches(dataset):
    """This process's part of every global batch of `dataset`, for a multi-process `fit`.

    Every process builds the same dataset of global batches (same data, order and seed) and
    passes its output to `fit`; the global batch of each step is then the one `dataset` yields
    on a single process, so a curriculum follows the same schedule. Refused before the first
    step (ValueError): a batch size that is unknown (a final partial batch would reach only some
    processes and hang the others: batch with `drop_remainder=True`) or not a multiple of the
    data devices, and a distribution that auto-shards the dataset as well. On one process
    `dataset` is returned unchanged, so one script runs on any number of processes.

    Args:
        dataset: a batched `tf.data.Dataset`, batches of the global batch size.

    Returns:
        A `tf.data.Dataset` with as many batches as `dataset`, each `1 / process_count()` of a
        global batch.

    Example:

    ```python
    keras.distribution.initialize(job_addresses, num_processes, process_id)
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(
            devices=keras.distribution.list_devices(), auto_shard_dataset=False
        )
    )
    train = kc.split_batches(dataset.batch(256, drop_remainder=True))
    model.fit(train, epochs=10, callbacks=[kc.LeRaC(duration=3)])
    ```
    """
    if process_count() == 1:
        return dataset
    sizes = {
        spec.shape[0] if spec.shape.rank else None for spec in tf.nest.flatten(dataset.element_spec)
    }
    if None in sizes or len(sizes) != 1:
        raise ValueError(
            "Each global batch is split across the processes, and a final partial batch would "
            "reach only some of them and hang the others: batch with `drop_remainder=True` "
            f"(a static batch size). Received: element_spec={dataset.element_spec}"
        )
    check_global_batch(sizes.pop())
    check_not_auto_sharded("`kc.split_batches`")
    return local_part(dataset)
