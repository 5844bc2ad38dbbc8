"""The Keras side of DoCL: a metric that copies logits out of the train step, and the callback."""

import math
import os
import warnings

import keras
import numpy as np
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_curriculum import _docl_data
from keras_curriculum import docl as docl_math
from keras_curriculum._tf_data import zip_with_fixed_cardinality
from keras_curriculum._validation import check_bool
from keras_curriculum._validation import check_choice
from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number
from keras_curriculum._validation import check_path
from keras_curriculum._validation import check_sequence

_RAN_OUT_WARNING = "Your input ran out of data"
_STATE_FILE = "docl_state.npz"


def _replica_id():
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is not None:
            return context.replica_id_in_sync_group
    return 0


def _num_replicas():
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.get_strategy().num_replicas_in_sync
    return 1


def _check_classifier_output(shape):
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
    the host waits for the device once per `buffer_steps` steps. It reports no value, so it adds nothing to the logs. It also runs in `evaluate`, where `DoCL`
    ignores it.

    Args:
        batch_size: int, the global batch size of the training batches (set by `DoCL.apply`).
        buffer_steps: int >= 1, buffer depth in train steps; at least the model's
            `steps_per_execution`.
        from_logits: bool. False when the model outputs probabilities: their logarithm is
            recorded (DoCL's score is unchanged by the constant that separates the two).
        name: metric name.
    """

    def __init__(self, batch_size=None, buffer_steps=16, from_logits=True, name="docl",
                 dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.batch_size = check_int("batch_size", batch_size, 1, allow_none=True)
        self.buffer_steps = check_int("buffer_steps", buffer_steps, 1)
        self.from_logits = check_bool("from_logits", from_logits)
        self.num_classes = None
        self.num_replicas = 1
        self.one_hot = False
        self._docl_built = False

    def _build(self, y_true_shape, y_pred_shape):
        num_classes = _check_classifier_output(y_pred_shape)
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
        self.num_replicas = _num_replicas()
        self.rows_per_replica = math.ceil(self.batch_size / self.num_replicas)
        depth, rows = self.buffer_steps, self.num_replicas * self.rows_per_replica
        self.logits = self.add_variable((depth, rows, self.num_classes), "zeros", "float32",
                                        name="logits")
        self.labels = self.add_variable((depth, rows), "zeros", "int32", name="labels")
        self.rows = self.add_variable((depth, self.num_replicas), "zeros", "int32", name="rows")
        self.steps = self.add_variable((), "zeros", "int32", name="steps")
        self._docl_built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        if not self._docl_built:
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
        row = ops.cast(_replica_id(), "int32") * limit
        zero = ops.zeros((), "int32")
        self.logits.assign(ops.slice_update(self.logits.value, [slot, row, zero], logits[None]))
        self.labels.assign(ops.slice_update(self.labels.value, [slot, row], labels[None]))
        self.rows.assign(
            ops.slice_update(
                self.rows.value,
                [slot, ops.cast(_replica_id(), "int32")],
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


def _check_example_spec(spec):
    """An unbatched `(x, y)` dataset: y a class index (rank 0) or a one-hot row of known width."""
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(f"`dataset` must yield `(x, y)` pairs. Received element_spec: {spec}")
    labels = spec[1].shape
    # A batched dataset has labels of rank >= 1 whose first dimension (the batch) is unknown.
    if labels.rank is None or labels.rank > 1 or (labels.rank == 1 and labels[0] is None):
        raise ValueError(
            "`dataset` must be unbatched, with labels of rank 0 (class index) or 1 (one-hot, of "
            f"known width): DoCL batches it. Received labels spec: {spec[1]}"
        )


@keras.saving.register_keras_serializable(package="keras_curriculum")
class DoCL(keras.callbacks.Callback):
    """Dynamics-optimized curriculum: each epoch trains on a subset sampled by learning speed.

    DoCL is both the `tf.data` stage that feeds `fit` and the callback that runs the curriculum.
    Every time an example is trained, its score is computed from the logits that the train step
    already produced (no extra forward pass):

        a_t(i) = < onehot(y_i) - softmax(f_t(x_i)), (f_t(x_i) - g_i) / rho_i >

    with g_i its logits at its previous visit and rho_i the sum of the learning rates of the
    optimizer steps in between; the score is smoothed as a_hat(i) <- gamma a_hat(i) +
    (1 - gamma) a_t(i). Training follows Algorithm 1 of the paper: `warmup_epochs` epochs on
    all data, then episodes (one cycle of a cosine-restart learning rate each, see
    `learning_rate_schedule`); in every epoch of episode m, k_m examples are drawn without
    replacement with Pr(i) proportional to exp(a_hat(i) / tau), and after each episode one full
    pass refreshes every score and k shrinks: k_{m+1} = max(k_min n, gamma_k k_m), k_0 = n.

    Wiring: `train = docl.apply(dataset, batch_size)` returns the batches (the subset and the
    order of each epoch are drawn by the host at `on_epoch_begin`); `compile` needs one extra
    metric, `docl.metric()`, which is how the logits of each step leave the compiled step on
    every backend; `fit(train, callbacks=[docl])` is otherwise unchanged (do not pass
    `steps_per_epoch`: epochs have different lengths and each one ends with its data).

    Host memory: per example, the previous logits (`num_classes` values of `state_dtype`),
    the step of the last visit (int32), the score (float32) and the label (int32): 2 C + 12 bytes
    with float16, 2.6 GB for ImageNet-1k (1.28M x 1000 classes). Nothing per example lives on
    the device. `memory_per_example()` says it for a given number of classes.

    What is approximated: g_i is stored in `state_dtype` (float16: about 3 significant digits
    of each centred logit); rho_i uses the optimizer's base learning rate (a schedule's value
    at each step, or the rate read at the start of each epoch when it is a plain value), not
    a per-layer rate; with data augmentation f and g are logits of different views (as in the
    paper). An example's first score starts its EMA; examples never scored yet are sampled as
    if they had the mean score.

    Args:
        warmup_epochs: int >= 0, T0, the epochs on all data before the first episode (paper: 5).
        episode_epochs: int >= 1, or a list of them (one per episode, the last repeated): the
            sampling epochs of each episode.
        tau: float > 0, sampling temperature (paper: 0.1).
        gamma: float in [0, 1), EMA factor of the score (paper: 0.9).
        gamma_k: float in (0, 1], the factor by which k shrinks after each episode (paper: 0.9).
        k_min: float in (0, 1], the smallest subset as a fraction of the data (paper: 0.2).
        initial_fraction: float in (0, 1], k_0 / n (paper: 1).
        refresh: bool, a full pass after each episode (paper: True).
        from_logits: bool, whether the model outputs logits (False: probabilities).
        state_dtype: `"float16"` (default) or `"float32"`, host storage of the logits g_i.
        buffer_steps: int >= 1, how many train steps of logits the device keeps between two
            host reads (at least the model's `steps_per_execution`). Each read waits for the
            device to finish, so reading every step would stall asynchronous backends (JAX,
            GPUs); the buffer costs `buffer_steps x batch_size x num_classes` float32 on the
            device (16 x 256 x 1000: 16 MB).
        shuffle_window: int >= 1, for `tf.data` sources: examples are shuffled within windows
            of this many selected examples (the in-memory paths shuffle the whole subset).
        seed: int or None, seed of the sampler and of the orders (None: drawn once, and saved
            with the state).
        backup_dir: str or None. When set, the curriculum state is saved there at the end of
            every epoch and restored at `on_train_begin`: use the `backup_dir` of
            `keras.callbacks.BackupAndRestore`, which restores the model and the epoch.
        log_dir: str or None. When set, a histogram of the scores and the fraction of data are
            written there as TensorBoard summaries every epoch (needs TensorFlow).

    Example:

    ```python
    docl = kc.DoCL(warmup_epochs=5, episode_epochs=10)
    train = docl.apply(tf.data.Dataset.from_tensor_slices((x, y)), batch_size=128)
    schedule = docl.learning_rate_schedule(0.1, epochs=100, min_learning_rate=1e-3)
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy", docl.metric()])
    model.fit(train, epochs=100, callbacks=[docl])
    ```

    References:
        Zhou, Wang, Bilmes. "Curriculum Learning by Optimizing Learning Dynamics", AISTATS 2021.
    """

    def __init__(self, warmup_epochs=5, episode_epochs=10, tau=0.1, gamma=0.9, gamma_k=0.9,
                 k_min=0.2, initial_fraction=1.0, refresh=True, from_logits=True,
                 state_dtype="float16", buffer_steps=16, shuffle_window=10000, seed=None,
                 backup_dir=None, log_dir=None):
        super().__init__()
        self.warmup_epochs = check_int("warmup_epochs", warmup_epochs, 0)
        if isinstance(episode_epochs, (list, tuple)):
            self.episode_epochs = [
                check_int("episode_epochs", length, 1)
                for length in check_sequence("episode_epochs", episode_epochs)
            ]
        else:
            self.episode_epochs = check_int("episode_epochs", episode_epochs, 1)
        self.tau = check_number("tau", tau, low=0.0, low_open=True)
        self.gamma = check_number("gamma", gamma, 0.0, 1.0, high_open=True)
        self.gamma_k = check_number("gamma_k", gamma_k, 0.0, 1.0, low_open=True)
        self.k_min = check_number("k_min", k_min, 0.0, 1.0, low_open=True)
        self.initial_fraction = check_number(
            "initial_fraction", initial_fraction, 0.0, 1.0, low_open=True
        )
        self.refresh = check_bool("refresh", refresh)
        self.from_logits = check_bool("from_logits", from_logits)
        self.state_dtype = check_choice("state_dtype", state_dtype, ("float16", "float32"))
        self.buffer_steps = check_int("buffer_steps", buffer_steps, 1)
        self.shuffle_window = check_int("shuffle_window", shuffle_window, 1)
        self.seed = check_int("seed", seed, 0, allow_none=True)
        self.backup_dir = check_path("backup_dir", backup_dir)
        self.log_dir = check_path("log_dir", log_dir)
        self._seed = int(np.random.SeedSequence().entropy % (2**32)) if seed is None else int(seed)
        self._source = None
        self._metric = None
        self.batch_size = None
        self.drop_remainder = False
        self.num_examples = None
        self.num_classes = None
        self.history = []
        self._order = None
        self._mask = None
        self._warning_filter = None
        self._writer = None

    # Planning: pure functions of the epoch -----------------------------------------------------

    def epoch_plan(self, epoch):
        """`EpochPlan(phase, episode, size)` of `epoch` (needs `apply` first)."""
        self._require_data()
        return docl_math.epoch_plan(
            epoch, self.num_examples, self.warmup_epochs, self.episode_epochs, self.gamma_k,
            self.k_min, self.initial_fraction, self.refresh,
        )

    def steps_in_epoch(self, epoch):
        return _docl_data.num_batches(
            self.epoch_plan(epoch).size, self.batch_size, self.drop_remainder
        )

    def learning_rate_schedule(self, max_learning_rate, epochs, min_learning_rate=0.0,
                               max_decay=1.0, min_decay=1.0):
        """A `CosineRestarts` schedule with one cycle for the warm start and one per episode.

        Args:
            max_learning_rate, min_learning_rate, max_decay, min_decay: see `CosineRestarts`.
            epochs: int >= 1, the epochs `fit` will run (the cycles are counted in steps,
                which differ per epoch as the subsets shrink).
        """
        epochs = check_int("epochs", epochs, 1)
        cycles = {}
        for epoch in range(epochs):
            plan = self.epoch_plan(epoch)
            cycles[plan.episode] = cycles.get(plan.episode, 0) + self.steps_in_epoch(epoch)
        return docl_math.CosineRestarts(
            [max(cycles[key], 1) for key in sorted(cycles)], max_learning_rate,
            min_learning_rate, max_decay, min_decay,
        )

    def memory_per_example(self, num_classes=None):
        """Host bytes per training example (previous logits, last step, score, label)."""
        num_classes = check_int("num_classes", num_classes, 2, allow_none=True) or self.num_classes
        if num_classes is None:
            raise ValueError("`num_classes` is unknown before training: pass it.")
        return num_classes * np.dtype(self.state_dtype).itemsize + 12

    # The tf.data stage ------------------------------------------------------------------------

    def apply(self, dataset, batch_size, drop_remainder=False, keys=None):
        """Batches of the epoch's subset, in the order the curriculum draws, for `fit`.

        Args:
            dataset: the training examples, unbatched and finite: a `tf.data.Dataset` of
                `(x, y)`, a tuple `(x, y)` of arrays, or a random-access source (`len` and
                `[i]`, e.g. a TFDS `data_source`) of `(x, y)` pairs or of dicts (see `keys`).
            batch_size: int >= 1, the global batch size.
            drop_remainder: bool, drop each epoch's last partial batch.
            keys: for a random-access source of dicts, the `(input_key, label_key)` to use.

        Returns:
            A `tf.data.Dataset` of `(x, y)` batches. Map augmentation over it if needed, but do
            not shuffle, filter, rebatch or repeat it: DoCL identifies examples by position.
        """
        import tensorflow as tf

        batch_size = check_int("batch_size", batch_size, 1)
        drop_remainder = check_bool("drop_remainder", drop_remainder)
        if keys is not None and (not isinstance(keys, (list, tuple)) or len(keys) != 2):
            raise TypeError(
                f"`keys` must be None or an (input_key, label_key) pair. Received: keys={keys!r}"
            )
        if isinstance(dataset, tf.data.Dataset):
            _check_example_spec(dataset.element_spec)
            source = _docl_data.StreamingSource(dataset, _docl_data.count_examples(dataset))
        elif isinstance(dataset, tuple) and len(dataset) != 2:
            raise ValueError(
                f"`dataset` as a tuple must be (x, y). Received a tuple of {len(dataset)} items."
            )
        elif hasattr(dataset, "__len__") and (
            hasattr(dataset, "__getitem__") or isinstance(dataset, tuple)
        ):
            if len(dataset) == 0 or (isinstance(dataset, tuple) and len(dataset[0]) == 0):
                raise ValueError("`dataset` is empty: DoCL needs at least one example.")
            source = _docl_data.RandomAccessSource(dataset, keys)
        else:
            raise TypeError(
                "`dataset` must be a tf.data.Dataset, a tuple (x, y) of arrays or a random-access "
                f"source. Received: {type(dataset).__name__}"
            )
        if source.length == 0:
            raise ValueError("`dataset` is empty: DoCL needs at least one example.")
        if drop_remainder and source.length < batch_size:
            raise ValueError(
                f"`batch_size` ({batch_size}) exceeds the {source.length} examples and "
                "`drop_remainder=True` would train on nothing."
            )
        self._source = source
        self.batch_size = batch_size
        self.drop_remainder = drop_remainder
        self.num_examples = source.length
        if self._metric is not None:
            self._metric.batch_size = self.batch_size
        max_batches = _docl_data.num_batches(source.length, batch_size, drop_remainder)
        if isinstance(source, _docl_data.StreamingSource):
            batches = source.batches(
                self._current_mask, self._window_permutation, self.batch_size,
                self.drop_remainder, self.shuffle_window,
            )
        else:
            batches = source.batches(self._current_order, self.batch_size, self.drop_remainder)
        batches = zip_with_fixed_cardinality(batches, max_batches)
        return batches.prefetch(tf.data.AUTOTUNE)

    def metric(self):
        """The `DoCLLogits` metric to add to `compile(metrics=[...])` (one per DoCL)."""
        if self._metric is None:
            self._metric = DoCLLogits(
                batch_size=self.batch_size, buffer_steps=self.buffer_steps,
                from_logits=self.from_logits,
            )
        return self._metric

    def _require_data(self):
        if self._source is None:
            raise ValueError("Call `docl.apply(dataset, batch_size=...)` first.")

    def _current_order(self):
        if self._order is None:  # Keras peeks at one batch before training starts.
            return np.arange(self.num_examples, dtype=np.int64)
        return self._order

    def _current_mask(self):
        if self._mask is None:
            return np.ones(self.num_examples, bool)
        return self._mask

    def _window_permutation(self, window, size):
        if self._order is None:
            return np.arange(size, dtype=np.int64)
        rng = np.random.default_rng([self._seed, self._epoch, int(window), 1])
        return rng.permutation(int(size)).astype(np.int64)

    # Curriculum state ---------------------------------------------------------------------------

    def _allocate(self):
        n = self.num_examples
        self.num_classes = None
        self._previous = None
        self._last_step = np.full(n, -1, np.int32)
        self._scores = np.full(n, np.nan, np.float32)
        self._labels = np.full(n, -1, np.int32)
        if self._source.labels is not None:
            labels = np.asarray(self._source.labels)
            one_hot = labels.ndim == 2 and labels.shape[-1] > 1
            self._labels[:] = labels.argmax(-1) if one_hot else labels.reshape(n)
        self._cumulative_rate = np.zeros(1, np.float64)
        self.history = []

    def _allocate_logits(self, num_classes):
        self.num_classes = int(num_classes)
        self._previous = np.zeros((self.num_examples, self.num_classes), self.state_dtype)

    @property
    def scores(self):
        """The smoothed score a_hat of every example (NaN: not scored yet), a copy."""
        return None if getattr(self, "_scores", None) is None else self._scores.copy()

    @property
    def last_visit_steps(self):
        """The optimizer step of every example's last visit (-1: never), a copy."""
        return None if getattr(self, "_last_step", None) is None else self._last_step.copy()

    def state_dict(self):
        return {
            "seed": np.int64(self._seed),
            "previous": self._previous,
            "last_step": self._last_step,
            "scores": self._scores,
            "labels": self._labels,
            "cumulative_rate": self._cumulative_rate,
            "history": np.asarray(
                [[h["epoch"], h["size"], h["steps"], h["scored"], h["mean_score"]] for h in self.history],
                np.float64,
            ).reshape(-1, 5),
        }

    def load_state_dict(self, state):
        self._seed = int(state["seed"])
        self._previous = np.asarray(state["previous"]).astype(self.state_dtype)
        self.num_classes = self._previous.shape[1]
        self._last_step = np.asarray(state["last_step"], np.int32)
        self._scores = np.asarray(state["scores"], np.float32)
        self._labels = np.asarray(state["labels"], np.int32)
        self._cumulative_rate = np.asarray(state["cumulative_rate"], np.float64)
        self.history = [
            {"epoch": int(e), "size": int(s), "steps": int(t), "scored": int(c),
             "fraction": s / self.num_examples, "mean_score": float(m)}
            for e, s, t, c, m in np.asarray(state["history"])
        ]

    def _save_backup(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        path = os.path.join(self.backup_dir, _STATE_FILE)
        temporary = path + ".tmp.npz"
        np.savez(temporary, **self.state_dict())
        os.replace(temporary, path)

    def _restore_backup(self):
        path = os.path.join(self.backup_dir or "", _STATE_FILE)
        if self.backup_dir and os.path.exists(path):
            with np.load(path) as state:
                if state["previous"].shape[0] == self.num_examples:
                    self.load_state_dict(state)
                    return True
        return False

    # Learning rates ---------------------------------------------------------------------------

    def _rates(self, steps):
        optimizer = self._model.optimizer
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        schedule = optimizer._learning_rate
        if isinstance(schedule, docl_math.CosineRestarts):
            return schedule.rates(steps)
        if isinstance(schedule, LearningRateSchedule):
            try:
                values = ops.convert_to_numpy(schedule(ops.convert_to_tensor(steps, "int64")))
                values = np.broadcast_to(np.asarray(values, np.float64), steps.shape)
            except Exception:  # noqa: BLE001 - schedules that only take a scalar step
                values = np.array([float(ops.convert_to_numpy(schedule(int(s)))) for s in steps])
            return values
        return np.full(steps.shape, float(ops.convert_to_numpy(optimizer.learning_rate)))

    def _cover_steps(self, first_step, num_steps):
        """Extends the cumulative rate sum over this epoch's steps.

        Iterations between the last covered one and `first_step` did not train under DoCL's
        watch (TF counts one extra iteration when an epoch ends before the dataset's declared
        length) and count with rate 0.
        """
        have = len(self._cumulative_rate) - 1
        end = first_step + num_steps
        if end <= have:
            return
        steps = np.arange(max(have, first_step), end, dtype=np.int64)
        gap = np.zeros(max(first_step - have, 0))
        sums = self._cumulative_rate[-1] + np.cumsum(np.concatenate([gap, self._rates(steps)]))
        self._cumulative_rate = np.concatenate([self._cumulative_rate, sums])

    # Callback hooks -----------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._require_data()
        model = self._model
        if self._metric is None:
            raise ValueError(
                "DoCL reads the logits through its metric: compile the model with "
                "`metrics=[..., docl.metric()]`."
            )
        if model.steps_per_execution > self._metric.buffer_steps:
            raise ValueError(
                f"The model's steps_per_execution ({model.steps_per_execution}) exceeds "
                f"DoCL(buffer_steps={self._metric.buffer_steps}): pass "
                f"buffer_steps >= {model.steps_per_execution} to DoCL."
            )
        full = _docl_data.num_batches(self.num_examples, self.batch_size, self.drop_remainder)
        if self.params.get("steps") not in (None, full) and self.params.get("epochs", 1) > 1:
            raise ValueError(
                "DoCL draws a new subset every epoch and each epoch ends with its data: do not "
                f"pass `steps_per_epoch` to `fit`. Received: steps={self.params.get('steps')}"
            )
        num_classes = self._metric.num_classes
        if num_classes is None and getattr(model, "outputs", None):
            # Checked here for Functional models: the metric's own check runs inside the first
            # step, which on PyTorch (eager) comes after that step's update.
            num_classes = _check_classifier_output(model.outputs[0].shape)
        if num_classes is not None:
            self._check_labels(num_classes)
        if len(getattr(self, "_last_step", ())) != self.num_examples or (
            num_classes is not None and self.num_classes not in (None, num_classes)
        ):
            self._allocate()
        self._restore_backup()
        self._buffers_ready = False
        # Shorter epochs end before the cardinality Keras expects; that is by design here.
        warnings.filterwarnings("ignore", message=_RAN_OUT_WARNING)
        self._warning_filter = warnings.filters[0]
        if self.log_dir and self._writer is None:
            import tensorflow as tf

            try:
                import tensorboard  # noqa: F401
            except ImportError as error:
                raise ImportError(
                    "DoCL(log_dir=...) writes TensorBoard summaries: `pip install tensorboard`."
                ) from error
            self._writer = tf.summary.create_file_writer(self.log_dir)

    def _check_labels(self, num_classes):
        labels = self._source.labels
        if labels is None:
            return
        labels = np.asarray(labels)
        width = labels.shape[-1] if labels.ndim == 2 and labels.shape[-1] > 1 else None
        if (width is not None and width != num_classes) or (
            width is None and (labels.min() < 0 or labels.max() >= num_classes)
        ):
            raise ValueError(
                f"`labels` do not match the model's output width {num_classes}: labels "
                f"range [{labels.min()}, {labels.max()}], shape {labels.shape}."
            )

    def _prepare_buffers(self):
        """Locates the metric's variables once it is built (TF builds it in the first step)."""
        metric, model = self._metric, self._model
        if not metric._docl_built or not any(v is metric.steps for v in model.metrics_variables):
            raise ValueError(
                "DoCL reads the logits through its metric: compile the model with "
                "`metrics=[..., docl.metric()]`."
            )
        self._positions = [
            next(i for i, v in enumerate(model.metrics_variables) if v is ours)
            for ours in (metric.logits, metric.labels, metric.rows, metric.steps)
        ]
        self._replicas = metric.num_replicas
        if self.num_classes is None:
            self._check_labels(metric.num_classes)
            self._allocate_logits(metric.num_classes)
        elif self.num_classes != metric.num_classes:
            raise ValueError(
                f"The saved DoCL state has {self.num_classes} classes and the model "
                f"{metric.num_classes}."
            )
        self._buffers_ready = True

    def on_epoch_begin(self, epoch, logs=None):
        plan = self.epoch_plan(epoch)
        rng = np.random.default_rng([self._seed, epoch])
        if plan.phase == "sample":
            scores = self._scores
            scored = ~np.isnan(scores)
            filled = np.where(scored, scores, scores[scored].mean() if scored.any() else 0.0)
            chosen = docl_math.sample_subset(filled, plan.size, self.tau, rng)
        else:
            chosen = rng.permutation(self.num_examples)
        self._epoch = epoch
        if isinstance(self._source, _docl_data.StreamingSource):
            mask = np.zeros(self.num_examples, bool)
            mask[chosen] = True
            ordered = np.flatnonzero(mask)
            windows = [
                ordered[start : start + self.shuffle_window][
                    np.random.default_rng([self._seed, epoch, w, 1]).permutation(
                        len(ordered[start : start + self.shuffle_window])
                    )
                ]
                for w, start in enumerate(range(0, len(ordered), self.shuffle_window))
            ]
            self._order = np.concatenate(windows).astype(np.int64)
            self._mask = mask
        else:
            self._order = np.asarray(chosen, np.int64)
        self._plan = plan
        optimizer = self._model.optimizer
        self._first_step = int(ops.convert_to_numpy(optimizer.iterations))
        self._cover_steps(self._first_step, self.steps_in_epoch(epoch))
        self._drained = 0
        self._epoch_open = True

    def on_train_batch_begin(self, batch, logs=None):
        # `batch` steps have been dispatched this epoch; read the buffer only if the next
        # execution would overwrite a slot the host has not read yet.
        if batch + self._model.steps_per_execution - self._drained > self._metric.buffer_steps:
            self._drain()

    def on_test_begin(self, logs=None):
        # Validation resets and reuses the metric: read the epoch's last steps before it does.
        if getattr(self, "_epoch_open", False):
            self._drain()
            self._epoch_open = False

    def on_epoch_end(self, epoch, logs=None):
        if self._epoch_open:
            self._drain()
            self._epoch_open = False
        scored = ~np.isnan(self._scores)
        record = {
            "epoch": epoch,
            "size": self._plan.size,
            "steps": self._drained,
            "scored": int(scored.sum()),
            "fraction": self._plan.size / self.num_examples,
            "mean_score": float(self._scores[scored].mean()) if scored.any() else float("nan"),
        }
        self.history.append(record)
        if logs is not None:
            logs["docl_fraction"] = record["fraction"]
        if self._writer is not None:
            import tensorflow as tf

            with self._writer.as_default(step=epoch):
                tf.summary.scalar("docl/fraction", record["fraction"])
                if scored.any():
                    tf.summary.histogram("docl/score", self._scores[scored])
            self._writer.flush()
        if self.backup_dir:
            self._save_backup()

    def on_train_end(self, logs=None):
        # Like BackupAndRestore: a finished run leaves no state for the next one to resume.
        path = os.path.join(self.backup_dir or "", _STATE_FILE)
        if self.backup_dir and os.path.exists(path):
            os.remove(path)
        if self._warning_filter in warnings.filters:
            warnings.filters.remove(self._warning_filter)
        self._warning_filter = None
        self._order = None
        self._mask = None

    # Reading the metric ---------------------------------------------------------------------

    def _read_buffer(self):
        model = self._model
        state = getattr(model, "_jax_state", None)
        if state and not model._jax_state_synced:
            # JAX threads state through the step; the live values are in `_jax_state` (reading
            # `self.model` would copy every variable back).
            values = [state["metrics_variables"][i] for i in self._positions]
        else:
            metric = self._metric
            values = [metric.logits.value, metric.labels.value, metric.rows.value, metric.steps.value]
            if keras.backend.backend() == "tensorflow":
                # A read in cross-replica context sums the replicas' copies of an on-read
                # variable: each replica wrote only its own rows, so this gathers the batch.
                values = [v.read_value() for v in values]
        return [np.asarray(ops.convert_to_numpy(v)) for v in values]

    def _drain(self):
        if not self._buffers_ready:
            self._prepare_buffers()
        logits, labels, rows, steps = self._read_buffer()
        done = int(steps) // self._replicas
        depth = logits.shape[0]
        if done - self._drained > depth:
            raise RuntimeError(
                f"{done - self._drained} steps ran between two reads of the DoCL buffer, which "
                f"holds {depth}: pass buffer_steps={done - self._drained} (or more) to DoCL."
            )
        block = self._metric.rows_per_replica
        for step in range(self._drained, done):
            slot = step % depth
            parts = [(r * block, r * block + rows[slot, r]) for r in range(rows.shape[1])]
            f = np.concatenate([logits[slot, a:b] for a, b in parts])
            y = np.concatenate([labels[slot, a:b] for a, b in parts])
            start = step * self.batch_size
            index = self._order[start : start + len(f)]
            if len(index) != len(f):
                raise RuntimeError(
                    f"DoCL expected {len(index)} examples in step {step} of this epoch and the "
                    f"model trained {len(f)}: the batches from `docl.apply` were changed "
                    "(rebatched, filtered, shuffled or repeated)."
                )
            self._visit(index, f, y, self._first_step + step)
        self._drained = done

    def _visit(self, index, logits, labels, step):
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"`labels` do not match the model's output width {self.num_classes}: got "
                f"labels in [{labels.min()}, {labels.max()}]."
            )
        known = self._labels[index]
        if np.any((known >= 0) & (known != labels)):
            raise RuntimeError(
                "The labels of a step differ from those DoCL saw for the same examples: the "
                "batches from `docl.apply` were reordered, or the source does not yield its "
                "examples in the same order on every pass."
            )
        self._labels[index] = labels
        last = self._last_step[index]
        seen = last >= 0
        if seen.any():
            rho = self._cumulative_rate[step] - self._cumulative_rate[last[seen]]
            useful = rho > 0
            ids = index[seen][useful]
            if len(ids):
                new = docl_math.docl_instant_scores(
                    logits[seen][useful], self._previous[ids], labels[seen][useful], rho[useful]
                )
                self._scores[ids] = docl_math.ema_update(self._scores[ids], new, self.gamma)
        centred = logits - logits.mean(axis=-1, keepdims=True)
        self._previous[index] = centred.astype(self.state_dtype)
        self._last_step[index] = step

    # Plot ---------------------------------------------------------------------------------------

    def plot(self, path, title="DoCL: fraction of the data trained per epoch"):
        """Saves a PNG of the fraction of data per epoch and the mean score (from `history`)."""
        from keras_curriculum import plotting

        epochs = [h["epoch"] for h in self.history]
        return plotting.plot_curves(
            epochs,
            {"fraction of data": [h["fraction"] for h in self.history]},
            path, title=title, xlabel="epoch", ylabel="fraction",
        )

    def get_config(self):
        return {
            "warmup_epochs": self.warmup_epochs,
            "episode_epochs": self.episode_epochs,
            "tau": self.tau,
            "gamma": self.gamma,
            "gamma_k": self.gamma_k,
            "k_min": self.k_min,
            "initial_fraction": self.initial_fraction,
            "refresh": self.refresh,
            "from_logits": self.from_logits,
            "state_dtype": self.state_dtype,
            "buffer_steps": self.buffer_steps,
            "shuffle_window": self.shuffle_window,
            "seed": self.seed,
            "backup_dir": self.backup_dir,
            "log_dir": self.log_dir,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
