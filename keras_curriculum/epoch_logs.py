"""How the curricula's values of each epoch reach every callback, whatever the order.

Keras hands one `logs` dict to the callbacks' `on_epoch_end` in the order of the `callbacks`
list: a value that a curriculum adds in its own `on_epoch_end` never reaches a
`keras.callbacks.TensorBoard` or `CSVLogger` listed before it. So each curriculum callback
(`LeRaC`, `SigmaDecay`, `EfficientTrain`, `DoCL`) says what its epoch values are
(`epoch_logs(epoch)`), and when `fit` sets the callbacks up, an `EpochLogsWriter` is put first
in that fit's callback list; at the end of each epoch it adds every curriculum's values to the
logs before any other callback reads them. The curricula's other hooks keep the user's order.

Every value is known at the end of the epoch's last train step (the curricula fix their state
at `on_epoch_begin` or derive it from the optimizer's step counter), so writing it first
changes nothing but who sees it. Outside a `fit` (a custom loop calling the hooks), the
curriculum writes its values in its own `on_epoch_end`, as a plain Keras callback does.
"""

import keras

from keras_curriculum import _keras_internals as internals


class EpochLogsWriter(keras.callbacks.Callback):
    """Adds the epoch values of its `sources` (curriculum callbacks) to the epoch logs.

    Put first in a `fit`'s callback list by `CurriculumLogs.set_model`; not meant to be
    created by users.
    """

    def __init__(self):
        super().__init__()
        self.sources = []

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for source in self.sources:
            logs.update(source.epoch_logs(epoch))


def write_first(callback):
    """Registers `callback` with the writer first in its `fit`'s callback list; True if done."""
    callbacks = internals.calling_callback_list(callback)
    if callbacks is None:
        return False
    writer = callbacks[0] if callbacks and isinstance(callbacks[0], EpochLogsWriter) else None
    if writer is None:
        # Inserting ahead of the callback being set up never skips nor repeats another's
        # `set_model` (Keras iterates by position; only `callback` itself is called again).
        writer = EpochLogsWriter()
        callbacks.insert(0, writer)
    if not any(source is callback for source in writer.sources):
        writer.sources.append(callback)
    return True


class CurriculumLogs:
    """Mixin for the curriculum callbacks: `epoch_logs(epoch)` reaches every callback.

    Subclasses implement `epoch_logs(epoch)` (a dict of floats and ints, the same keys every
    epoch so that `CSVLogger` keeps its columns) and call `write_epoch_logs(epoch, logs)` from
    their `on_epoch_end`.
    """

    _logs_written_first = False

    def set_model(self, model):
        super().set_model(model)
        self._logs_written_first = write_first(self)

    def epoch_logs(self, epoch):
        raise NotImplementedError

    def write_epoch_logs(self, epoch, logs):
        """The fallback outside a `CallbackList`: write the values in this callback's turn."""
        if logs is not None and not self._logs_written_first:
            logs.update(self.epoch_logs(epoch))
