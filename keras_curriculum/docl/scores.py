"""DoCL: dynamics-optimized curriculum learning (Zhou, Wang, Bilmes, AISTATS 2021).

Pure math first (score, EMA, sampler, episode plan, cyclic learning rate), then the Keras
pieces: `DoCLLogits`, the metric that copies each train step's logits out of the step, and
`DoCL`, the curriculum object that is both the `tf.data` stage and the callback.
"""

import math
from typing import NamedTuple

import keras
import numpy as np
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number
from keras_curriculum._validation import check_sequence

PHASES = ("warmup", "sample", "refresh")

# Pure math ----------------------------------------------------------------------------------


def docl_instant_scores(logits, previous_logits, labels, rho):
    """DoCL score of each example at one visit: <onehot(y) - softmax(f), (f - g) / rho>.

    `f` are the logits of this visit, `g` those of the example's previous visit and `rho` the
    sum of the learning rates of the optimizer steps in between. A constant added to a row of
    `f` or `g` does not change the score (the residual sums to zero), so log-probabilities may
    stand in for logits and `g` may be stored centred.

    Args:
        logits: float array `(m, C)`, f_t(x_i).
        previous_logits: float array `(m, C)`, g_i.
        labels: int array `(m,)`, class indices.
        rho: float array `(m,)` > 0.

    Returns:
        float32 array `(m,)`.
    """
    logits = np.asarray(logits, np.float32)
    previous = np.asarray(previous_logits, np.float32)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    residual = -probabilities
    residual[np.arange(len(labels)), np.asarray(labels)] += 1.0
    velocity = (logits - previous) / np.asarray(rho, np.float32)[:, None]
    return np.einsum("ij,ij->i", residual, velocity).astype(np.float32)


def ema_update(average, scores, gamma):
    """a_hat <- gamma * a_hat + (1 - gamma) * a; an example's first score (NaN before) is kept."""
    average = np.asarray(average, np.float32)
    scores = np.asarray(scores, np.float32)
    return np.where(np.isnan(average), scores, gamma * average + (1.0 - gamma) * scores)


def sampling_probabilities(scores, tau):
    """Pr(i) of a single draw: softmax(scores / tau) (float64)."""
    logits = np.asarray(scores, np.float64) / tau
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def sample_subset(scores, size, tau, rng):
    """`size` distinct indices drawn one by one with Pr(i) proportional to exp(score_i / tau).

    Gumbel-top-k: the `size` largest of score_i / tau + Gumbel noise are exactly a sample of
    successive draws without replacement (Vieira 2014; Kool et al. 2019), in O(n). The indices
    come back in random order.

    Args:
        scores: float array `(n,)`, finite.
        size: int in [0, n].
        tau: float > 0, temperature.
        rng: `numpy.random.Generator`.
    """
    scores = np.asarray(scores, np.float64)
    n = len(scores)
    if size >= n:
        return rng.permutation(n)
    keys = scores / tau + rng.gumbel(size=n)
    chosen = np.argpartition(-keys, size - 1)[:size]
    return rng.permutation(chosen)


class EpochPlan(NamedTuple):
    phase: str  # "warmup", "sample" or "refresh"
    episode: int  # -1 during the warm start
    size: int  # examples trained in this epoch


def episode_length(episode, episode_epochs):
    if isinstance(episode_epochs, (list, tuple)):
        return int(episode_epochs[min(episode, len(episode_epochs) - 1)])
    return int(episode_epochs)


def subset_size(episode, num_examples, gamma_k, k_min, initial_fraction=1.0):
    """k of an episode: max(k_min n, initial_fraction n gamma_k^episode), at most n."""
    size = int(round(initial_fraction * num_examples * gamma_k**episode))
    return min(num_examples, max(int(math.ceil(k_min * num_examples)), size))


def epoch_plan(epoch, num_examples, warmup_epochs=5, episode_epochs=10, gamma_k=0.9,
               k_min=0.2, initial_fraction=1.0, refresh=True):
    """What DoCL's Algorithm 1 does in `epoch` (from 0): a pure function of the epoch index.

    Epochs `0 .. warmup_epochs - 1` train on all data. Then come episodes: episode m has
    `episode_length(m)` sampling epochs of k_m examples each, followed (with `refresh`) by one
    full pass in uniform random order that refreshes every score.
    """
    # A NaN or infinite epoch would never leave the episode loop below.
    epoch = check_int("epoch", epoch, 0)
    if epoch < warmup_epochs:
        return EpochPlan("warmup", -1, num_examples)
    remaining, episode = epoch - warmup_epochs, 0
    while True:
        length = episode_length(episode, episode_epochs)
        total = length + int(refresh)
        if remaining < total:
            break
        remaining -= total
        episode += 1
    if remaining >= length:
        return EpochPlan("refresh", episode, num_examples)
    size = subset_size(episode, num_examples, gamma_k, k_min, initial_fraction)
    return EpochPlan("sample", episode, size)


@keras.saving.register_keras_serializable(package="keras_curriculum")
class CosineRestarts(LearningRateSchedule):
    """Cyclic cosine learning rate with restarts (SGDR) over cycles of given lengths in steps.

    In cycle c, starting at step s_c with length L_c, the rate falls from
    `max_learning_rate * max_decay**c` to `min_learning_rate * min_decay**c`:

        lr(t) = lo_c + 0.5 * (hi_c - lo_c) * (1 + cos(pi * (t - s_c) / L_c))

    After the last cycle the rate stays at that cycle's minimum. `DoCL.learning_rate_schedule`
    builds one with a cycle per warm start and per episode.

    Args:
        cycle_steps: list of int >= 1, the length of every cycle in optimizer steps.
        max_learning_rate: float > 0, the rate at the start of the first cycle.
        min_learning_rate: float in [0, max_learning_rate], the rate at its end.
        max_decay, min_decay: float > 0, factors applied to the two per cycle (the official
            DoCL code uses 0.9 and 0.8).

    Example:

    ```python
    schedule = kc.CosineRestarts([1000, 2000], max_learning_rate=0.1, min_learning_rate=1e-3)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9)
    ```

    References:
        Loshchilov, Hutter. "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
    """

    def __init__(self, cycle_steps, max_learning_rate, min_learning_rate=0.0, max_decay=1.0,
                 min_decay=1.0, name="CosineRestarts"):
        self.cycle_steps = [
            check_int("cycle_steps", steps, 1)
            for steps in check_sequence("cycle_steps", cycle_steps)
        ]
        self.max_learning_rate = check_number(
            "max_learning_rate", max_learning_rate, low=0.0, low_open=True
        )
        self.min_learning_rate = check_number(
            "min_learning_rate", min_learning_rate, 0.0, self.max_learning_rate
        )
        self.max_decay = check_number("max_decay", max_decay, low=0.0, low_open=True)
        self.min_decay = check_number("min_decay", min_decay, low=0.0, low_open=True)
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a str. Received: name={name!r}")
        self.name = name
        self._ends = np.cumsum(cycle_steps).astype(np.float64)
        self._starts = self._ends - np.asarray(cycle_steps, np.float64)

    def rates(self, steps):
        """The rates at integer `steps` (numpy float64): the host-side twin of `__call__`."""
        steps = np.asarray(steps, np.float64)
        cycle = np.minimum(np.searchsorted(self._ends, steps, side="right"), len(self._ends) - 1)
        fraction = np.clip((steps - self._starts[cycle]) / np.asarray(self.cycle_steps)[cycle], 0, 1)
        high = self.max_learning_rate * self.max_decay**cycle
        low = self.min_learning_rate * self.min_decay**cycle
        return low + 0.5 * (high - low) * (1.0 + np.cos(np.pi * fraction))

    def __call__(self, step):
        step = ops.cast(step, "float32")
        ends = ops.convert_to_tensor(self._ends.astype(np.float32))
        cycle = ops.minimum(
            ops.sum(ops.cast(ops.greater_equal(step, ends), "int32")), len(self.cycle_steps) - 1
        )
        start = ops.take(ops.convert_to_tensor(self._starts.astype(np.float32)), cycle)
        length = ops.take(ops.convert_to_tensor(np.asarray(self.cycle_steps, np.float32)), cycle)
        fraction = ops.clip((step - start) / length, 0.0, 1.0)
        cycle = ops.cast(cycle, "float32")
        high = self.max_learning_rate * ops.power(self.max_decay, cycle)
        low = self.min_learning_rate * ops.power(self.min_decay, cycle)
        return low + 0.5 * (high - low) * (1.0 + ops.cos(math.pi * fraction))

    def get_config(self):
        return {
            "cycle_steps": self.cycle_steps,
            "max_learning_rate": self.max_learning_rate,
            "min_learning_rate": self.min_learning_rate,
            "max_decay": self.max_decay,
            "min_decay": self.min_decay,
            "name": self.name,
        }


from keras_curriculum._docl_callback import DoCL  # noqa: E402,F401
from keras_curriculum._docl_callback import DoCLLogits  # noqa: E402,F401
