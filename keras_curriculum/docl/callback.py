"""`DoCL`: the dynamics-optimized curriculum as one `tf.data` stage and one callback.

The callback draws each epoch's subset and order (`plan`, `scores`, `order`), feeds them to its
`tf.data` stage (`sources`), reads the logits of each train step from its metric (`metric`,
`buffer`), keeps the per-example state on the host (`state`) and resumes it with the model
(`resume`).
"""

import math
import weakref

import keras
import numpy as np

from keras_curriculum import _keras_internals as internals
from keras_curriculum import _tf_data
from keras_curriculum import processes
from keras_curriculum._fit_guard import FitGuard
from keras_curriculum._host import to_numpy
from keras_curriculum._tf_data import short_epochs
from keras_curriculum._validation import check_bool
from keras_curriculum._validation import check_choice
from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number
from keras_curriculum._validation import check_path
from keras_curriculum._validation import take_renamed
from keras_curriculum.docl import checks
from keras_curriculum.docl import plan as docl_plan
from keras_curriculum.docl import resume
from keras_curriculum.docl import sources
from keras_curriculum.docl.buffer import LogitsReader
from keras_curriculum.docl.metric import DoCLLogits
from keras_curriculum.docl.order import EpochOrder
from keras_curriculum.docl.order import draw_epoch
from keras_curriculum.docl.planning import EpochPlanning
from keras_curriculum.docl.rates import host_rates
from keras_curriculum.docl.state import ExampleState
from keras_curriculum.docl.summaries import ScoreSummaries
from keras_curriculum.durations import check_duration
from keras_curriculum.epoch_logs import CurriculumLogs

_RENAMED = {"k_min": "min_fraction", "gamma_k": "fraction_decay"}
_CONFIG = (
    "warmup_epochs",
    "episode_epochs",
    "tau",
    "gamma",
    "fraction_decay",
    "min_fraction",
    "initial_fraction",
    "refresh",
    "from_logits",
    "state_dtype",
    "buffer_steps",
    "shuffle_window",
    "seed",
    "backup_dir",
    "log_dir",
    "verbose",
)


@keras.saving.register_keras_serializable(package="keras_curriculum")
class DoCL(EpochPlanning, CurriculumLogs, keras.callbacks.Callback):
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
    pass refreshes every score and k shrinks: k_{m+1} = max(min_fraction n, fraction_decay k_m),
    k_0 = initial_fraction n.

    By default the plan is the paper's, scaled to the fit: a warm start of 5/300 of the epochs
    (at least one), then the official code's episode ends (5 10 15 20 30 40 60 90 140 210 300
    of 300 epochs) scaled to the fit, each episode keeping its subset size k_m; a fit too
    short for that is compressed (`docl.plan.official_episodes`): an 8-epoch fit trains on
    0.66 of the data per epoch on average (the paper's 300 epochs: 0.51). Before the first
    step, a plan whose subset never falls below the whole data in this fit is reported with a
    warning, and a model whose last layer applies a softmax with `from_logits=True` is refused.
    The epoch logs get `docl_fraction`, wherever `TensorBoard` or `CSVLogger` are listed.

    Wiring: `train = docl.apply(dataset, batch_size)` returns the batches (the subset and the
    order of each epoch are drawn by the host at `on_epoch_begin`); `compile` needs one extra
    metric, `docl.metric()`, which is how the logits of each step leave the compiled step on
    every backend; `fit(train, callbacks=[docl])` is otherwise unchanged (do not pass
    `steps_per_epoch`: epochs have different lengths and each one ends with its data).

    Host memory: per example, the previous logits (`num_classes` values of `state_dtype`),
    the step of the last visit (int32), the score (float32) and the label (int32): 2 C + 12 bytes
    with float16, 2.6 GB for ImageNet-1k (1.28M x 1000 classes); `memory_per_example()` says it
    for a given number of classes. The epoch's order (int32) and the draw of a subset add a few
    bytes per example, and the logits buffer a fixed amount; nothing per example lives on the
    device. docs/docl.md gives the process's measured growth (`benchmarks/docl_memory.py`).

    Resuming: with `backup_dir`, the state is saved when the last batch of every epoch has
    trained (before any `on_epoch_end`, so before `BackupAndRestore` writes the epoch), together
    with the epoch it is ready to start; the state of the epoch before is kept too. The first
    epoch of a `fit` loads the state of exactly that epoch. A `fit` that resumes from a
    `BackupAndRestore` backup with no DoCL state for its epoch (no `backup_dir`, or files of
    another run) raises instead of drawing subsets from unknown scores.

    One DoCL follows one model: its metric is compiled into that model. Train another model
    with another DoCL; the same model can be trained again (and two `fit`s of it cannot run at
    the same time).

    What is approximated: g_i is stored in `state_dtype` (float16: about 3 significant digits
    of each centred logit); rho_i uses the optimizer's base learning rate (a schedule's value
    at each step, or the rate read at the start of each epoch when it is a plain value), not
    a per-layer rate; with data augmentation f and g are logits of different views (as in the
    paper). An example's first score starts its EMA; examples never scored yet are sampled as
    if they had the mean score.

    Args:
        warmup_epochs: T0, the epochs on all data before the first episode: an int >= 0, or a
            float in (0, 1), a fraction of the fit (at least one epoch). Default 5/300, the
            paper's 5 of 300 epochs.
        episode_epochs: `"official"` (default, the official episode ends scaled to the fit,
            each episode's last epoch its refresh pass), or an int >= 1 or a list of them (one
            per episode, the last repeated): the sampling epochs of each episode, each followed
            by a refresh pass.
        tau: float > 0, sampling temperature (paper: 0.1).
        gamma: float in [0, 1), EMA factor of the score (paper: 0.9).
        fraction_decay: float in (0, 1], the factor by which the subset shrinks after each
            episode (paper: gamma_k = 0.9; `gamma_k` is the deprecated name).
        min_fraction: float in (0, 1], the smallest subset as a fraction of the data (paper:
            k_min = 0.2 n; `k_min` is the deprecated name).
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
        backup_dir: str or None. When set, the curriculum state is saved there every epoch
            and restored with the epoch `fit` resumes at (see Resuming): use the `backup_dir`
            of `keras.callbacks.BackupAndRestore`, which restores the model and the epoch.
        log_dir: str or None. When set, a histogram of the scores and the fraction of data are
            written there as TensorBoard summaries every epoch (needs TensorFlow).
        verbose: int, 0 (silent) or 1 (a line whenever the subset size changes).

    Example:

    ```python
    docl = kc.DoCL()  # the paper's plan scaled to the fit (here 100 epochs)
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

    def __init__(
        self,
        warmup_epochs=docl_plan.DEFAULT_WARMUP,
        episode_epochs=docl_plan.OFFICIAL,
        tau=0.1,
        gamma=0.9,
        fraction_decay=0.9,
        min_fraction=0.2,
        initial_fraction=1.0,
        refresh=True,
        from_logits=True,
        state_dtype="float16",
        buffer_steps=16,
        shuffle_window=10000,
        seed=None,
        backup_dir=None,
        log_dir=None,
        verbose=0,
        **deprecated,
    ):
        super().__init__()
        renamed = take_renamed(deprecated, _RENAMED, "DoCL")
        fraction_decay = renamed.get("fraction_decay", fraction_decay)
        min_fraction = renamed.get("min_fraction", min_fraction)
        self.warmup_epochs = check_duration("warmup_epochs", warmup_epochs, minimum=0)
        self.episode_epochs = docl_plan.check_episode_epochs(episode_epochs)
        self.tau = check_number("tau", tau, low=0.0, low_open=True)
        self.gamma = check_number("gamma", gamma, 0.0, 1.0, high_open=True)
        self.fraction_decay = check_number(
            "fraction_decay", fraction_decay, 0.0, 1.0, low_open=True
        )
        self.min_fraction = check_number("min_fraction", min_fraction, 0.0, 1.0, low_open=True)
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
        self.verbose = check_int("verbose", verbose, 0, 2)
        self._seed = int(np.random.SeedSequence().entropy % (2**32)) if seed is None else int(seed)
        self._state = ExampleState(self.state_dtype, self.gamma)
        self._source = None
        self._split_for = 1  # processes `apply` split the batches for
        self._metric = None
        self._reader = None
        self.batch_size = None
        self.drop_remainder = False
        self.num_examples = None
        self._epoch = None
        self._plan = None
        self._order = None  # `EpochOrder`: this epoch's examples, as the tf.data stage reads
        self._first_step = 0
        self._epoch_open = False
        self._first_epoch = False  # the next epoch is the first of a fit
        self._short_epochs = None
        self._writer = None
        self._fit_epochs = None  # the epochs of the current (or last) fit
        self._schedule_epochs = weakref.WeakKeyDictionary()  # schedule -> epochs it was built for
        self._guard = FitGuard("DoCL")
        self._trained = None  # weak reference to the model this DoCL follows

    @property
    def num_classes(self):
        return self._state.num_classes

    @property
    def history(self):
        """One record per trained epoch: epoch, size, steps, scored, fraction, mean_score."""
        return self._state.history

    @property
    def scores(self):
        """The smoothed score a_hat of every example (NaN: not scored yet), a copy."""
        return None if self._state.scores is None else self._state.scores.copy()

    @property
    def last_visit_steps(self):
        """The optimizer step of every example's last visit (-1: never), a copy."""
        return None if self._state.last_step is None else self._state.last_step.copy()

    def state_dict(self):
        return self._state.state_dict(self._seed)

    def load_state_dict(self, state):
        self._seed = self._state.load_state_dict(state)

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
            A `tf.data.Dataset` of `(x, y)` batches. Map augmentation over it if needed, or
            give it to `EfficientTrain.apply` (which recognises it and keeps its batches), but
            do not shuffle, filter, rebatch or repeat it: DoCL identifies examples by position.
        """
        batch_size = check_int("batch_size", batch_size, 1)
        drop_remainder = check_bool("drop_remainder", drop_remainder)
        source = sources.make_source(dataset, keys)
        checks.check_label_values(source.labels)
        if drop_remainder and source.length < batch_size:
            raise ValueError(
                f"`batch_size` ({batch_size}) exceeds the {source.length} examples and "
                "`drop_remainder=True` would train on nothing."
            )
        self._split_for = processes.process_count()
        if self._split_for > 1:
            checks.check_process_batches(
                batch_size, drop_remainder, math.ceil(self.min_fraction * source.length)
            )
            if self.seed is None:  # every process must draw the same subsets
                self._seed = processes.value_of_process_zero(self._seed)
        self._source = source
        self.batch_size = batch_size
        self.drop_remainder = drop_remainder
        self.num_examples = source.length
        streaming = isinstance(source, sources.StreamingSource)
        self._order = order = EpochOrder(source.length, streaming, self.shuffle_window, self._seed)
        if self._metric is not None:
            self._metric.batch_size = self.batch_size
        batches = sources.epoch_batches(
            source, order, batch_size, drop_remainder, self.shuffle_window
        )
        # Every process draws the same global batches and feeds its own rows of each; the
        # metric sees the whole global batch, so every process updates the same scores.
        return _tf_data.mark_position_owned(processes.local_part(batches), self)

    def metric(self):
        """The `DoCLLogits` metric to add to `compile(metrics=[...])` (one per DoCL)."""
        if self._metric is None:
            self._metric = DoCLLogits(
                batch_size=self.batch_size,
                buffer_steps=self.buffer_steps,
                from_logits=self.from_logits,
            )
        return self._metric

    def _require_data(self):
        if self._source is None:
            raise ValueError("Call `docl.apply(dataset, batch_size=...)` first.")

    # Callback hooks -----------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._require_data()
        model = self._guard.claim(self)
        try:
            processes.check_split_for("DoCL", self._split_for)
            checks.check_same_model(self._trained, model)
            num_classes = checks.check_fit(self, model, self._metric, self._source.labels)
            epochs = self.params.get("epochs") or 1
            checks.check_schedule_epochs(model.optimizer, self._schedule_epochs, epochs)
            checks.check_every_epoch_trains(self, epochs)
        except Exception:
            self._guard.release()
            raise
        self._trained = weakref.ref(model)
        self._fit_epochs = epochs
        checks.warn_if_inactive(self, epochs)
        state = self._state
        if state.num_examples != self.num_examples or (
            num_classes is not None and state.num_classes not in (None, num_classes)
        ):
            state.allocate(self.num_examples, self._source.labels)
        self._first_epoch = True
        self._reader = LogitsReader(model, self._metric)
        self._short_epochs = short_epochs()
        _tf_data.enter_fit(self)
        if self.log_dir and self._writer is None:
            self._writer = ScoreSummaries(self.log_dir)

    def on_epoch_begin(self, epoch, logs=None):
        model = self._guard.model
        if self._first_epoch:  # the epoch Keras starts (or resumes) this fit at
            self._first_epoch = False
            seed = resume.state_for_epoch(
                self._state,
                self.backup_dir,
                self.num_examples,
                epoch,
                restored=internals.restored_epoch(model) == epoch,
            )
            if seed is not None:
                self._seed = self._order.seed = seed
        plan = self.epoch_plan(epoch)
        # The last epoch's order goes before the draw: both at once would add 4 n bytes to
        # the peak (the iterator that read it has ended before `on_epoch_begin`).
        self._order.clear()
        chosen = draw_epoch(
            plan,
            self._state,
            self.num_examples,
            self.tau,
            np.random.default_rng([self._seed, epoch]),
        )
        if self.verbose and (self._plan is None or plan.size != self._plan.size):
            print(
                f"\nEpoch {epoch + 1}: DoCL trains on {plan.size} of {self.num_examples} "
                f"examples ({plan.phase})."
            )
        self._epoch, self._plan = epoch, plan
        self._order.draw(epoch, chosen)
        self._first_step = int(to_numpy(model.optimizer.iterations))
        self._state.cover_steps(
            self._first_step,
            self.steps_in_epoch(epoch),
            lambda steps: host_rates(model.optimizer, steps),
        )
        self._reader.drained = 0
        self._epoch_open = True

    def on_train_batch_begin(self, batch, logs=None):
        # `batch` steps have been dispatched this epoch; read the buffer only if the next
        # execution would overwrite a slot the host has not read yet.
        if self._reader.must_read_before(batch):
            self._drain()

    def on_train_batch_end(self, batch, logs=None):
        # After the epoch's last step, close it (and save the state) before any `on_epoch_end`
        # runs: `BackupAndRestore` writes the epoch there, so a kill between the two writes
        # finds DoCL's state of the epoch it resumes at.
        if self._epoch_open and batch + 1 >= self.steps_in_epoch(self._epoch):
            self._close_epoch()

    def on_test_begin(self, logs=None):
        # Validation resets and reuses the metric: read the epoch's last steps before it does.
        if self._epoch_open:
            self._close_epoch()

    def on_epoch_end(self, epoch, logs=None):
        if self._epoch_open:  # an epoch that ended before its last step (`stop_training`)
            self._close_epoch()
        record = self._state.history[-1]
        self.write_epoch_logs(epoch, logs)
        if self._writer is not None:
            self._writer.write(epoch, record["fraction"], self._state.scores)

    def _close_epoch(self):
        self._drain()
        self._epoch_open = False
        self._state.record_epoch(self._epoch, self._plan.size, self._reader.drained)
        if self.backup_dir:
            self._state.save(self.backup_dir, self._seed)

    def on_train_end(self, logs=None):
        # Like BackupAndRestore: a finished run leaves no state for the next one to resume.
        ExampleState.discard(self.backup_dir)
        _tf_data.exit_fit(self)
        if self._short_epochs is not None:
            self._short_epochs.close()
        self._short_epochs = None
        self._order.clear()
        self._guard.release()

    # Reading the metric ---------------------------------------------------------------------

    def _drain(self):
        if self._reader.positions is None:
            self._reader.locate()
            checks.check_metric_width(self._state, self._metric.num_classes, self._source.labels)
        for step, logits, labels in self._reader.drain():
            index = self._order.examples_of_step(step, self.batch_size)[: len(logits)]
            if len(index) != len(logits):
                raise RuntimeError(
                    f"DoCL expected {len(index)} examples in step {step} of this epoch and the "
                    f"model trained {len(logits)}: the batches from `docl.apply` were changed "
                    "(rebatched, filtered, shuffled or repeated)."
                )
            self._state.visit(index, logits, labels, self._first_step + step)

    def epoch_logs(self, epoch):
        """`docl_fraction`: the fraction of the data this epoch trains (drawn at its start)."""
        if self._plan is None or self._epoch != epoch:
            return {}
        return {"docl_fraction": self._plan.size / self.num_examples}

    def plot(self, path, title=None):
        """Saves a PNG of the fraction of the data trained per epoch (from `history`)."""
        from keras_curriculum.docl.plot import plot_docl

        return plot_docl(self, path, title)

    def get_config(self):
        return {name: getattr(self, name) for name in _CONFIG}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
