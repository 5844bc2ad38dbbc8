"""`tf.data` helpers shared by the curricula that change how many batches an epoch has, or
that identify the examples of a batch by its position."""

import importlib
import weakref


class _LazyTensorFlow:
    """Imports TensorFlow on first use, so `import keras_curriculum` works where only JAX is."""

    def __getattr__(self, name):
        return getattr(importlib.import_module("tensorflow"), name)


tf = _LazyTensorFlow()


def zip_with_fixed_cardinality(batches, max_batches):
    """`batches` (unknown length <= max_batches) reported as `max_batches` long.

    `zip` takes the smaller cardinality: `range(max_batches)` is finite and known, the second
    input is `batches` followed by an endless-but-empty tail, which has infinite static
    cardinality and ends the sequence at run time as soon as `batches` is exhausted.
    """

    def empty():
        return iter(())

    tail = tf.data.Dataset.from_generator(empty, output_signature=batches.element_spec).repeat()
    zipped = tf.data.Dataset.zip(tf.data.Dataset.range(max_batches), batches.concatenate(tail))
    return zipped.map(lambda _, batch: batch)


# Keras warns "Your input ran out of data" when an epoch ends before the cardinality it was
# told. DoCL's subsets and EfficientTrain's saturated stages end epochs early by design, so
# while one of them trains, that one warning is silenced; one filter serves every user and is
# removed when the last one finishes, so nothing else in the process is affected for longer.
_RAN_OUT_MESSAGE = "Your input ran out of data"
_short_epoch_users = []


def _is_our_filter(entry):
    return entry[0] == "ignore" and entry[1] is not None and entry[1].pattern == _RAN_OUT_MESSAGE


class _ShortEpochs:
    def __init__(self):
        import warnings

        # Checked on every start, not only the first: a `warnings.catch_warnings` block that
        # was entered before an earlier user started discards the filter when it exits.
        if not any(_is_our_filter(f) for f in warnings.filters):
            warnings.filterwarnings("ignore", message=_RAN_OUT_MESSAGE)
        _short_epoch_users.append(self)

    def close(self):
        if self not in _short_epoch_users:
            return
        _short_epoch_users.remove(self)
        if not _short_epoch_users:
            import warnings

            warnings.filters[:] = [f for f in warnings.filters if not _is_our_filter(f)]


def short_epochs():
    """Silences Keras's early-end-of-data warning until `.close()` of the returned handle."""
    return _ShortEpochs()


# DoCL identifies the examples of a train step by their position in the epoch's order: a stage
# that maps over its batches is fine, one that reorders, rebatches or filters them is not. The
# datasets its `apply` returns are recorded here (weakly), and so is every such curriculum while
# it trains, so that another stage can recognise that order and refuse to change it.
_position_owned = weakref.WeakKeyDictionary()
_owners_in_fit = weakref.WeakSet()


def mark_position_owned(dataset, owner):
    """Records that `owner` identifies the examples of `dataset`'s batches by position."""
    _position_owned[dataset] = owner
    return dataset


def position_owner(dataset):
    """The curriculum that owns the order of `dataset`'s batches (its direct output), or None."""
    return _position_owned.get(dataset)


def enter_fit(owner):
    """`owner` (a callback that owns its batches' order) starts training."""
    _owners_in_fit.add(owner)


def exit_fit(owner):
    _owners_in_fit.discard(owner)


def position_owner_in_fit(callback):
    """The order-owning curriculum that trains in the same `fit` as `callback`, or None.

    The callbacks of one `fit` share its `params` dict (Keras's `CallbackList.set_params` hands
    every callback the same one, and each `fit` makes a new one), so an owner left registered by
    an interrupted `fit` is never mistaken for one of this `fit`.
    """
    params = getattr(callback, "params", None)
    for owner in list(_owners_in_fit):
        if params is not None and getattr(owner, "params", None) is params:
            return owner
    return None
