"""Reading DoCL's logits buffer (`DoCLLogits`) from the host, a few steps at a time."""

import keras
import numpy as np
from keras import ops

from keras_curriculum import _keras_internals as internals

_METRIC_MISSING = (
    "DoCL reads the logits through its metric: compile the model with "
    "`metrics=[..., docl.metric()]`."
)


class LogitsReader:
    """Copies the rows of the train steps in `metric`'s buffer to the host, in step order.

    Args:
        model: the model being trained.
        metric: its `DoCLLogits`.
    """

    def __init__(self, model, metric):
        self.model = model
        self.metric = metric
        self.positions = None
        self.drained = 0  # steps of this epoch already read

    def locate(self):
        """Finds the metric's variables once it is built (TF builds it in the first step)."""
        metric, model = self.metric, self.model
        if not metric.built_for_docl or not any(v is metric.steps for v in model.metrics_variables):
            raise ValueError(_METRIC_MISSING)
        self.positions = [
            next(i for i, v in enumerate(model.metrics_variables) if v is ours)
            for ours in (metric.logits, metric.labels, metric.rows, metric.steps)
        ]

    def _read(self):
        values = internals.jax_metric_values(self.model, self.positions)
        if values is None:
            metric = self.metric
            values = [
                metric.logits.value,
                metric.labels.value,
                metric.rows.value,
                metric.steps.value,
            ]
            if keras.backend.backend() == "tensorflow":
                # A read in cross-replica context sums the replicas' copies of an on-read
                # variable: each replica wrote only its own rows, so this gathers the batch.
                values = [v.read_value() for v in values]
        return [np.asarray(ops.convert_to_numpy(v)) for v in values]

    def must_read_before(self, batch):
        """Whether the next execution, starting at `batch`, would overwrite an unread slot."""
        ahead = batch + self.model.steps_per_execution - self.drained
        return ahead > self.metric.buffer_steps

    def drain(self):
        """Yields `(step, logits, labels)` of every step run since the last read."""
        if self.positions is None:
            self.locate()
        logits, labels, rows, steps = self._read()
        done = int(steps) // self.metric.num_replicas
        depth = logits.shape[0]
        if done - self.drained > depth:
            raise RuntimeError(
                f"{done - self.drained} steps ran between two reads of the DoCL buffer, which "
                f"holds {depth}: pass buffer_steps={done - self.drained} (or more) to DoCL."
            )
        block = self.metric.rows_per_replica
        for step in range(self.drained, done):
            slot = step % depth
            parts = [(r * block, r * block + rows[slot, r]) for r in range(rows.shape[1])]
            yield (
                step,
                np.concatenate([logits[slot, a:b] for a, b in parts]),
                np.concatenate([labels[slot, a:b] for a, b in parts]),
            )
        self.drained = done
