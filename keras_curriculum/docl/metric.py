"""`DoCLLogits`: the metric that copies each train step's logits and labels out of the step."""

import math

import keras
from keras import ops

from keras_curriculum._validation import check_bool
from keras_curriculum._validation import check_int


def replica_id():
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is not None:
            return context.replica_id_in_sync_group
    return 0


def num_replicas():
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.get_strategy().num_replicas_in_sync
    return 1


def check_classifier_output(shape):
    """The number of classes of a `(batch, num_classes)` output; ValueError for anything else."""
    if len(shape) != 2 or shape[-1] is None or shape[-1] < 2:
        raise ValueError(
            "`model` must be a classifier whose output is `(batch, num_classes)` logits with "
            f"num_classes >= 2 for DoCL. Received: output shape {tuple(shape)}"
        )
    return shape[-1]


@keras.saving.register_keras_serializable(package="keras_curriculum")
class DoCLLogits(keras.metrics.Metric):
    """Keeps the logits and labels of the last train steps on the device for `DoCL` to read.

    Created by `DoCL.metric()` and passed to `compile(metrics=[...])`: a metric is the one place
    where Keras hands `y_true` and `y_pred` of every train step to user code *inside* the
    compiled step, and its variables are threaded through the JAX step and synchronised by
    `tf.distribute` (a plain variable would be neither). Each step writes its rows into slot
    `step % buffer_steps` of a small buffer (replica r of a `tf.distribute` strategy into its
    own block of rows); `DoCL` copies the buffer to the host only when it is about to wrap, so
    the host waits for the device once per `buffer_steps` steps. It reports no value, so it adds
    nothing to the logs. It also runs in `evaluate`, where `DoCL` ignores it.

    Args:
        batch_size: int, the global batch size of the training batches (set by `DoCL.apply`).
        buffer_steps: int >= 1, buffer depth in train steps; at least the model's
            `steps_per_execution`.
        from_logits: bool. False when the model outputs probabilities: their logarithm is
            recorded (DoCL's score is unchanged by the constant that separates the two).
        name: metric name.
    """

    def __init__(
        self, batch_size=None, buffer_steps=16, from_logits=True, name="docl", dtype="float32"
    ):
        super().__init__(name=name, dtype=dtype)
        self.batch_size = check_int("batch_size", batch_size, 1, allow_none=True)
        self.buffer_steps = check_int("buffer_steps", buffer_steps, 1)
        self.from_logits = check_bool("from_logits", from_logits)
        self.num_classes = None
        self.num_replicas = 1
        self.one_hot = False
        self.built_for_docl = False

    def _build(self, y_true_shape, y_pred_shape):
        num_classes = check_classifier_output(y_pred_shape)
        self.one_hot = len(y_true_shape) == 2 and y_true_shape[-1] not in (None, 1)
        if self.one_hot and y_true_shape[-1] != num_classes:
            raise ValueError(
                f"`labels` (one-hot, width {y_true_shape[-1]}) do not match the model's output "
                f"width {num_classes}."
            )
        if self.batch_size is None:
            raise ValueError(
                "The DoCL metric does not know the batch size: build the training data with "
                "`docl.apply(dataset, batch_size=...)` before `fit`."
            )
        self.num_classes = int(num_classes)
        self.num_replicas = num_replicas()
        self.rows_per_replica = math.ceil(self.batch_size / self.num_replicas)
        depth, rows = self.buffer_steps, self.num_replicas * self.rows_per_replica
        self.logits = self.add_variable(
            (depth, rows, self.num_classes), "zeros", "float32", name="logits"
        )
        self.labels = self.add_variable((depth, rows), "zeros", "int32", name="labels")
        self.rows = self.add_variable((depth, self.num_replicas), "zeros", "int32", name="rows")
        self.steps = self.add_variable((), "zeros", "int32", name="steps")
        self.built_for_docl = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        if not self.built_for_docl:
            self._build(tuple(y_true.shape), tuple(y_pred.shape))
        limit = self.rows_per_replica
        logits = ops.cast(y_pred, "float32")[:limit]
        if not self.from_logits:
            logits = ops.log(ops.clip(logits, 1e-30, 1.0))
        if self.one_hot:
            labels = ops.argmax(y_true, axis=-1)
        else:
            labels = ops.reshape(y_true, (-1,))
        labels = ops.cast(labels, "int32")[:limit]
        count = ops.shape(logits)[0]
        # Evaluation batches may be smaller (or, truncated above, larger): pad to a fixed shape.
        logits = ops.concatenate(
            [logits, ops.zeros((limit - count, self.num_classes), "float32")], axis=0
        )
        labels = ops.concatenate([labels, ops.zeros((limit - count,), "int32")], axis=0)
        slot = ops.cast(ops.mod(self.steps.value, self.buffer_steps), "int32")
        row = ops.cast(replica_id(), "int32") * limit
        zero = ops.zeros((), "int32")
        self.logits.assign(ops.slice_update(self.logits.value, [slot, row, zero], logits[None]))
        self.labels.assign(ops.slice_update(self.labels.value, [slot, row], labels[None]))
        self.rows.assign(
            ops.slice_update(
                self.rows.value,
                [slot, ops.cast(replica_id(), "int32")],
                ops.reshape(ops.cast(count, "int32"), (1, 1)),
            )
        )
        # The increment must depend on the data: in a TF graph an increment that does not
        # still runs when the step fails at the end of the dataset, counting a phantom step.
        self.steps.assign_add(ops.minimum(ops.abs(labels[0]), 0) + 1)

    def result(self):
        return {}

    def get_config(self):
        return {
            "batch_size": self.batch_size,
            "buffer_steps": self.buffer_steps,
            "from_logits": self.from_logits,
            "name": self.name,
            "dtype": self.dtype,
        }
