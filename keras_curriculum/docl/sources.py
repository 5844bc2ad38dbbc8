"""The `tf.data` side of DoCL: batches whose example order the host decides, epoch by epoch.

DoCL identifies the examples of a train step by position, not by a tag carried through `fit`:
the host draws each epoch's order, the pipeline emits exactly that order, and the metric
records the logits of each step in the order it saw them. Keras consumes batches in order and
starts a fresh iterator each epoch (after `on_epoch_begin`, when no `steps_per_epoch` is given),
so step j of an epoch holds `order[j * batch_size : (j + 1) * batch_size]`. Two sources:

- Random access (numpy arrays, or any object with `__len__` and `__getitem__` such as a TFDS
  `data_source`): an epoch reads only its k examples. Arrays up to 1 GiB are copied once into
  tensors and gathered in the graph (one Python call per epoch); larger arrays and other
  sources are gathered by one Python call per batch.
- Streaming (any finite `tf.data.Dataset`): every epoch reads the whole source once, keeps the
  selected examples (a vectorised mask look-up per 1024 examples) and permutes them within
  windows of `shuffle_window` examples with a permutation the host drew; it costs a full read
  of the source per epoch and `shuffle_window` buffered examples. The source must yield its
  examples in the same order on every pass (no reshuffling inside it).

Features may be an array or tensor, or a dict of them (multi-input models); labels are one
array or tensor. The dataset reports a fixed cardinality (the batches of a full pass) so that Keras
never
infers, and then enforces, the length of a shorter first epoch; a shorter epoch simply ends
early (see `_tf_data.zip_with_fixed_cardinality`).
"""

import math

import numpy as np

from keras_curriculum._tf_data import tf
from keras_curriculum._tf_data import zip_with_fixed_cardinality
from keras_curriculum.docl.order import index_dtype

MASK_CHUNK = 1024
# A dataset of unknown length is counted this many elements at a time, by a Python loop, so
# that Ctrl-C gets through between two chunks; counting stops with an error past MAX_EXAMPLES
# (an endless dataset, or more examples than DoCL's int32 indices hold).
COUNT_CHUNK = 4096
MAX_EXAMPLES = 2**31 - 1
# In-memory arrays up to this size are copied once into tensors and gathered in the graph;
# larger ones are gathered by numpy per batch (no second copy of a large training set).
IN_GRAPH_BYTES = 1 << 30
# Indices of an epoch's order handed to the graph per Python call (256 KiB of int32).
ORDER_CHUNK = 1 << 16


def num_batches(size, batch_size, drop_remainder):
    return size // batch_size if drop_remainder else math.ceil(size / batch_size)


def _stack(examples):
    return tuple(
        tf.nest.map_structure(
            lambda *rows: np.stack([np.asarray(r) for r in rows]), *[e[part] for e in examples]
        )
        for part in range(2)
    )


def _is_array(part):
    return hasattr(part, "shape") and hasattr(part, "__len__")


def _is_features(part):
    """An array, or a non-empty dict of arrays (named inputs)."""
    if isinstance(part, dict):
        return bool(part) and all(_is_array(value) for value in part.values())
    return _is_array(part)


class RandomAccessSource:
    """(x, y) arrays, or an indexable of (x, y) pairs or of dicts (`keys` picks x and y)."""

    def __init__(self, data, keys=None):
        self.keys = keys
        if (
            isinstance(data, tuple)
            and len(data) == 2
            and _is_features(data[0])
            and _is_array(data[1])
        ):
            x, y = tf.nest.map_structure(np.asarray, data[0]), np.asarray(data[1])
            lengths = sorted({len(part) for part in tf.nest.flatten(x)})
            if lengths != [len(y)]:
                raise ValueError(
                    f"`dataset` arrays must have the same length. Received: len(x)={lengths}, "
                    f"len(y)={len(y)}"
                )
            self.arrays = (x, y)
            self.length = len(y)
            self.labels = y
        else:
            self.arrays = None
            self.data = data
            self.length = len(data)
            self.labels = None
        try:
            first = self._examples(np.array([0]))
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise ValueError(
                "`dataset` items must be (x, y) pairs, or dicts with `keys`=(input_key, "
                f"label_key) naming two of their entries. Reading the first item with "
                f"keys={keys!r} failed: {type(error).__name__}: {error}"
            ) from error
        self.spec = tf.nest.map_structure(
            lambda part: tf.TensorSpec((None,) + part.shape[1:], tf.as_dtype(part.dtype)), first
        )

    def _examples(self, index):
        if self.arrays is not None:
            return tf.nest.map_structure(lambda part: part[index], self.arrays)
        items = [self.data[int(i)] for i in index]
        if self.keys is not None:
            items = [(item[self.keys[0]], item[self.keys[1]]) for item in items]
        return _stack(items)

    def batches(self, order, batch_size, drop_remainder):
        """Batches of the examples in `order` (an `EpochOrder`, read when an iterator starts)."""
        if (
            self.arrays is not None
            and sum(a.nbytes for a in tf.nest.flatten(self.arrays)) <= IN_GRAPH_BYTES
        ):
            return self._gathered_batches(order, batch_size, drop_remainder)

        def index_batches():
            epoch_order = order.current_order()
            stop = len(epoch_order)
            if drop_remainder:
                stop -= stop % batch_size
            for start in range(0, stop, batch_size):
                yield epoch_order[start : start + batch_size]

        def gather(index):
            return tf.nest.flatten(self._examples(index))

        # Full batches only: a static batch dimension, which XLA on TPUs needs (one program).
        batch_dim = batch_size if drop_remainder else None
        flat_spec = tf.nest.flatten(self.spec)

        def fetch(index):
            parts = tf.numpy_function(gather, [index], [s.dtype for s in flat_spec], stateful=False)
            for part, spec in zip(parts, flat_spec):
                part.set_shape((batch_dim,) + tuple(spec.shape[1:]))
            return tf.nest.pack_sequence_as(self.spec, parts)

        index_spec = tf.TensorSpec([None], tf.as_dtype(index_dtype(self.length)))
        indices = tf.data.Dataset.from_generator(index_batches, output_signature=index_spec)
        return indices.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def _gathered_batches(self, order, batch_size, drop_remainder):
        """Arrays held as tensors, gathered in the graph. On a CPU host the per-batch Python
        gather cost about 2 ms of input pipeline per batch, taken from the train step's cores
        (measured: 2.2 vs 0.5 ms per batch of 64). The order crosses into the graph
        `ORDER_CHUNK` indices per Python call: one tensor of the whole order would be a
        second copy of it (4 n bytes) on top of the peak of a draw."""
        tensors = tf.nest.map_structure(tf.constant, self.arrays)
        dtype = tf.as_dtype(index_dtype(self.length))

        def read(start):
            part = order.order_slice(int(start), int(start) + ORDER_CHUNK)
            return part.astype(dtype.as_numpy_dtype, copy=False)

        def chunk(start):
            part = tf.numpy_function(read, [start], dtype, stateful=True)
            part.set_shape([None])
            return tf.data.Dataset.from_tensor_slices(part)

        def epoch_indices(_):
            length = tf.numpy_function(
                lambda: np.int64(order.current_length()), [], tf.int64, stateful=True
            )
            return tf.data.Dataset.range(0, length, ORDER_CHUNK).flat_map(chunk)

        indices = tf.data.Dataset.range(1).flat_map(epoch_indices)
        indices = indices.batch(batch_size, drop_remainder=drop_remainder)
        return indices.map(
            lambda index: tf.nest.map_structure(lambda part: tf.gather(part, index), tensors),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )


class StreamingSource:
    """A finite, unbatched `tf.data.Dataset` of (x, y), read in full every epoch."""

    def __init__(self, dataset, length):
        self.dataset = dataset
        self.length = length
        self.labels = None
        self.spec = tf.nest.map_structure(
            lambda s: tf.TensorSpec((None,) + tuple(s.shape), s.dtype), dataset.element_spec
        )

    def batches(self, mask_fn, window_fn, batch_size, drop_remainder, window):
        """Selected examples (mask_fn()) permuted within windows by window_fn(w)."""

        def keep(index):
            return mask_fn()[index]

        chunks = self.dataset.enumerate().batch(MASK_CHUNK)

        def kept(index, example):
            flags = tf.numpy_function(keep, [index], tf.bool, stateful=False)
            flags.set_shape(index.shape)
            return tf.nest.map_structure(lambda part: tf.boolean_mask(part, flags), example)

        selected = chunks.map(kept, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        selected = selected.unbatch().batch(window)

        def permute(w, example):
            size = tf.shape(example[1])[0]
            perm = tf.numpy_function(window_fn, [w, size], tf.int64, stateful=False)
            perm.set_shape([None])
            return tf.nest.map_structure(lambda part: tf.gather(part, perm), example)

        windows = selected.enumerate().map(
            permute,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return windows.unbatch().batch(batch_size, drop_remainder=drop_remainder)


def count_examples(dataset):
    """Number of elements of a finite dataset (reads it once when its length is unknown).

    The count runs chunk by chunk in Python, so Ctrl-C interrupts it, and stops with a
    `ValueError` past `MAX_EXAMPLES` (an endless dataset would otherwise never return).
    """
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "`dataset` must be finite: DoCL keeps a score per example. Received a dataset "
            "with infinite cardinality (remove `.repeat()`)."
        )
    if cardinality != tf.data.UNKNOWN_CARDINALITY:
        return cardinality
    limit, count = MAX_EXAMPLES, 0
    for chunk in dataset.map(lambda *_: tf.zeros((), tf.int8)).batch(COUNT_CHUNK):
        count += int(chunk.shape[0])
        if count > limit:
            raise ValueError(
                f"`dataset` must be finite, with at most {limit} examples: its length is "
                f"unknown and counting it passed {limit} examples. It is endless (e.g. "
                "`.repeat()` before `.filter()`, or a generator that never stops) or too large "
                "for DoCL's per-example state: pass a finite dataset (`dataset.take(n)`)."
            )
    return count


def check_example_spec(spec):
    """An unbatched `(x, y)` dataset: y a class index (rank 0) or a one-hot row of known width."""
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(f"`dataset` must yield `(x, y)` pairs. Received element_spec: {spec}")
    if isinstance(spec[0], (tuple, list)) or not all(
        isinstance(part, tf.TensorSpec) for part in tf.nest.flatten(spec)
    ):
        raise ValueError(
            "`dataset` must yield `(x, y)` with x a dense tensor or a dict of dense tensors "
            f"(named inputs) and y a dense tensor. Received element_spec: {spec}"
        )
    labels = spec[1].shape
    # A batched dataset has labels of rank >= 1 whose first dimension (the batch) is unknown.
    if labels.rank is None or labels.rank > 1 or (labels.rank == 1 and labels[0] is None):
        raise ValueError(
            "`dataset` must be unbatched, with labels of rank 0 (class index) or 1 (one-hot, of "
            f"known width): DoCL batches it. Received labels spec: {spec[1]}"
        )


def make_source(dataset, keys=None):
    """The source adapter for what `DoCL.apply` received (see the module docstring)."""
    if keys is not None and (not isinstance(keys, (list, tuple)) or len(keys) != 2):
        raise TypeError(
            f"`keys` must be None or an (input_key, label_key) pair. Received: keys={keys!r}"
        )
    if isinstance(dataset, tf.data.Dataset):
        check_example_spec(dataset.element_spec)
        source = StreamingSource(dataset, count_examples(dataset))
    elif isinstance(dataset, tuple) and len(dataset) != 2:
        raise ValueError(
            f"`dataset` as a tuple must be (x, y). Received a tuple of {len(dataset)} items."
        )
    elif hasattr(dataset, "__len__") and (
        hasattr(dataset, "__getitem__") or isinstance(dataset, tuple)
    ):
        if len(dataset) == 0 or (isinstance(dataset, tuple) and len(dataset[-1]) == 0):
            raise ValueError("`dataset` is empty: DoCL needs at least one example.")
        source = RandomAccessSource(dataset, keys)
    else:
        raise TypeError(
            "`dataset` must be a tf.data.Dataset, a tuple (x, y) of arrays or a random-access "
            f"source. Received: {type(dataset).__name__}"
        )
    if source.length == 0:
        raise ValueError("`dataset` is empty: DoCL needs at least one example.")
    return source


def epoch_batches(source, order, batch_size, drop_remainder, shuffle_window):
    """The `tf.data` batches of each epoch's examples in `order` (an `EpochOrder`), reported
    as long as the full set's (shorter epochs end early)."""
    if isinstance(source, StreamingSource):
        batches = source.batches(
            order.current_mask, order.window_permutation, batch_size, drop_remainder, shuffle_window
        )
    else:
        batches = source.batches(order, batch_size, drop_remainder)
    max_batches = num_batches(source.length, batch_size, drop_remainder)
    return zip_with_fixed_cardinality(batches, max_batches).prefetch(tf.data.AUTOTUNE)
