"""DoCL's per-example state on the host: previous logits, last visit, score, label, rate sums.

`ExampleState` is what a visit of examples updates and what a backup saves. It knows nothing of
Keras: the callback hands it the logits a train step produced and the learning rates of the
optimizer steps, and reads the scores back to draw the next subset.
"""

import os
import warnings

import numpy as np

from keras_curriculum.docl import scores as docl_scores

STATE_FILE = "docl_state.npz"
# The state of the epoch before, kept so that a backup of the model written just before or
# just after DoCL's own finds its DoCL state (see `DoCL`, "Resuming").
PREVIOUS_STATE_FILE = "docl_state.previous.npz"
_OUT_OF_RANGE = (
    "DoCL: logits out of the range of state_dtype={dtype} (|logit - mean logit| > {limit:g}) "
    "or not finite were clipped in the stored state, and scores that came out infinite were "
    "dropped: the scores of these examples are approximate. Logits this large usually mean "
    "that training diverged; otherwise pass state_dtype='float32' to DoCL."
)


def _epoch_of(state):
    """The epoch a saved state is ready to start (older files: the one after their history)."""
    if "next_epoch" in state:
        return int(state["next_epoch"])
    history = np.asarray(state["history"])
    return int(history[-1, 0]) + 1 if len(history) else 0


class ExampleState:
    """Per-example arrays of one training set.

    Args:
        state_dtype: `"float16"` or `"float32"`, storage of the previous logits.
        gamma: float in [0, 1), the EMA factor of the score.
    """

    def __init__(self, state_dtype="float16", gamma=0.9):
        self.state_dtype = state_dtype
        self.gamma = gamma
        self.num_examples = None
        self.num_classes = None
        self.previous = None
        self.last_step = None
        self.scores = None
        self.labels = None
        self.cumulative_rate = None
        self.history = []
        self.next_epoch = 0  # the epoch this state is ready to start
        self._warned_range = False

    def allocate(self, num_examples, labels=None):
        """Fresh state for `num_examples` (labels known up front for in-memory arrays)."""
        n = self.num_examples = int(num_examples)
        self.num_classes = None
        self.previous = None
        self.last_step = np.full(n, -1, np.int32)
        self.scores = np.full(n, np.nan, np.float32)
        self.labels = np.full(n, -1, np.int32)
        if labels is not None:
            labels = np.asarray(labels)
            one_hot = labels.ndim == 2 and labels.shape[-1] > 1
            self.labels[:] = labels.argmax(-1) if one_hot else labels.reshape(n)
        self.cumulative_rate = np.zeros(1, np.float64)
        self.history = []
        self.next_epoch = 0

    def allocate_logits(self, num_classes):
        self.num_classes = int(num_classes)
        self.previous = np.zeros((self.num_examples, self.num_classes), self.state_dtype)

    @property
    def allocated(self):
        return self.last_step is not None

    # Learning-rate integration --------------------------------------------------------------

    def cover_steps(self, first_step, num_steps, rates_fn):
        """Extends the cumulative rate sum over the steps `[first_step, first_step + num_steps)`.

        Iterations between the last covered one and `first_step` did not train under DoCL's
        watch (TF counts one extra iteration when an epoch ends before the dataset's declared
        length) and count with rate 0. `rates_fn(steps)` gives the base rate of each step.
        """
        have = len(self.cumulative_rate) - 1
        end = first_step + num_steps
        if end <= have:
            return
        steps = np.arange(max(have, first_step), end, dtype=np.int64)
        gap = np.zeros(max(first_step - have, 0))
        sums = self.cumulative_rate[-1] + np.cumsum(np.concatenate([gap, rates_fn(steps)]))
        self.cumulative_rate = np.concatenate([self.cumulative_rate, sums])

    # A visit -------------------------------------------------------------------------------

    def visit(self, index, logits, labels, step):
        """Examples `index` were trained at optimizer step `step` with these logits and labels."""
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"`labels` do not match the model's output width {self.num_classes}: got "
                f"labels in [{labels.min()}, {labels.max()}]."
            )
        known = self.labels[index]
        if np.any((known >= 0) & (known != labels)):
            raise RuntimeError(
                "The labels of a step differ from those DoCL saw for the same examples: the "
                "batches from `docl.apply` were reordered, or the source does not yield its "
                "examples in the same order on every pass."
            )
        self.labels[index] = labels
        last = self.last_step[index]
        seen = last >= 0
        if seen.any():
            rho = self.cumulative_rate[step] - self.cumulative_rate[last[seen]]
            useful = rho > 0
            ids = index[seen][useful]
            if len(ids):
                new = docl_scores.docl_instant_scores(
                    logits[seen][useful], self.previous[ids], labels[seen][useful], rho[useful]
                )
                finite = np.isfinite(new)
                if not finite.all():
                    self._warn_range()
                    ids, new = ids[finite], new[finite]
                self.scores[ids] = docl_scores.ema_update(self.scores[ids], new, self.gamma)
        self.previous[index] = self._storable(logits - logits.mean(axis=-1, keepdims=True))
        self.last_step[index] = step

    def _storable(self, centred):
        """Centred logits in the state's dtype, clipped to its range: never inf or NaN."""
        limit = float(np.finfo(self.previous.dtype).max)
        if not np.isfinite(centred).all() or np.abs(centred).max() > limit:
            self._warn_range()
            centred = np.clip(
                np.nan_to_num(centred, nan=0.0, posinf=limit, neginf=-limit), -limit, limit
            )
        return centred.astype(self.previous.dtype)

    def _warn_range(self):
        if not self._warned_range:
            self._warned_range = True
            limit = float(np.finfo(self.previous.dtype).max)
            warnings.warn(
                _OUT_OF_RANGE.format(dtype=self.previous.dtype, limit=limit), stacklevel=4
            )

    def mean_score(self):
        """The mean of the scores given so far (0 when none is): unscored examples' score."""
        scored = ~np.isnan(self.scores)
        count = int(np.count_nonzero(scored))
        return float(np.sum(self.scores, where=scored, dtype=np.float64)) / count if count else 0.0

    def filled_scores(self):
        """Scores with the unscored examples at the mean score (0 when none is scored)."""
        return np.where(np.isnan(self.scores), np.float32(self.mean_score()), self.scores)

    def record_epoch(self, epoch, size, steps):
        """Closes `epoch` (its `size` examples trained in `steps` steps): appends to `history`."""
        scored = ~np.isnan(self.scores)
        count = int(np.count_nonzero(scored))
        total = float(np.sum(self.scores, where=scored, dtype=np.float64))
        record = {
            "epoch": epoch,
            "size": size,
            "steps": steps,
            "scored": count,
            "fraction": size / self.num_examples,
            "mean_score": total / count if count else float("nan"),
        }
        self.history.append(record)
        self.next_epoch = epoch + 1
        return record

    # Saving --------------------------------------------------------------------------------

    def state_dict(self, seed):
        return {
            "seed": np.int64(seed),
            "next_epoch": np.int64(self.next_epoch),
            "previous": self.previous,
            "last_step": self.last_step,
            "scores": self.scores,
            "labels": self.labels,
            "cumulative_rate": self.cumulative_rate,
            "history": np.asarray(
                [
                    [h["epoch"], h["size"], h["steps"], h["scored"], h["mean_score"]]
                    for h in self.history
                ],
                np.float64,
            ).reshape(-1, 5),
        }

    def load_state_dict(self, state):
        """Restores the arrays; returns the saved seed."""
        self.previous = np.asarray(state["previous"]).astype(self.state_dtype)
        self.num_examples, self.num_classes = self.previous.shape
        self.last_step = np.asarray(state["last_step"], np.int32)
        self.scores = np.asarray(state["scores"], np.float32)
        self.labels = np.asarray(state["labels"], np.int32)
        self.cumulative_rate = np.asarray(state["cumulative_rate"], np.float64)
        self.history = [
            {
                "epoch": int(e),
                "size": int(s),
                "steps": int(t),
                "scored": int(c),
                "fraction": s / self.num_examples,
                "mean_score": float(m),
            }
            for e, s, t, c, m in np.asarray(state["history"])
        ]
        self.next_epoch = _epoch_of(state)
        return int(state["seed"])

    # Saving: the last two epochs' states ----------------------------------------------------

    def save(self, directory, seed):
        """Writes the state; the one it replaces becomes the previous epoch's file."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, STATE_FILE)
        temporary = path + ".tmp.npz"
        np.savez(temporary, **self.state_dict(seed))
        if os.path.exists(path):
            os.replace(path, os.path.join(directory, PREVIOUS_STATE_FILE))
        os.replace(temporary, path)

    @staticmethod
    def saved(directory):
        """`{next_epoch: (path, num_examples)}` of the states saved in `directory`."""
        found = {}
        for name in (STATE_FILE, PREVIOUS_STATE_FILE):
            path = os.path.join(directory or "", name)
            if directory and os.path.exists(path):
                with np.load(path) as state:
                    found.setdefault(_epoch_of(state), (path, int(state["last_step"].shape[0])))
        return found

    def restore(self, path):
        """Loads the state saved at `path`; returns its seed."""
        with np.load(path) as state:
            return self.load_state_dict(state)

    @staticmethod
    def discard(directory):
        for name in (STATE_FILE, PREVIOUS_STATE_FILE):
            path = os.path.join(directory or "", name)
            if directory and os.path.exists(path):
                os.remove(path)
