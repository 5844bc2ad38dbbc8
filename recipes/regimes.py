"""Training regimes: the optimizer, its schedule and Mix-up that an arm trains under.

Methods of one recipe may follow different protocols (in the CIFAR recipes LeRaC follows the
LeRaC code's step decay, CBS the CBS code's, DoCL its episode-tied cosine with Mix-up). Each
method runs under a named `Regime` (`Recipe.regime_of`), and the runner trains a conventional
arm under every regime its curriculum arms use (`conventional_<regime>`), so each curriculum is
compared with conventional training under the same optimizer, schedule and Mix-up. A regime's
optimizer is built from the optimizer steps of every epoch of the arm it serves: a DoCL arm's
epochs shrink with its subsets, and a cycle of its cosine must still end where its episode ends.
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_curriculum.docl import episodes

from .base import DEFAULT_REGIME as DEFAULT  # noqa: F401 - the default regime's name


class Regime(NamedTuple):
    """How the arms of one regime train.

    name: the regime's name; its conventional arm is `conventional_<name>` (plain
        `conventional` for `"default"`).
    optimizer: function of `(epoch_steps, callbacks)` returning a fresh Keras optimizer:
        `epoch_steps` lists the optimizer steps of each epoch the arm trains, `callbacks` are
        the arm's (a schedule may follow its curriculum, e.g. ET++'s compute clock).
    mixup_alpha: None, or the Beta(alpha, alpha) parameter of Mix-up on every training batch
        (the arm then trains on soft labels with categorical cross-entropy).
    """

    name: str
    optimizer: Callable
    mixup_alpha: float = None


def docl_episodes(epochs, ends=episodes.OFFICIAL_EPISODE_ENDS):
    """DoCL's episode plan for a run of `epochs` epochs: the official episode ends scaled to
    it, each episode closed by `kc.DoCL`'s one refresh pass (`episodes.scaled_episodes`)."""
    if epochs < 3:
        raise ValueError(
            "DoCL's protocol needs `epochs` >= 3 (one warm-start epoch, one sampling epoch and "
            f"its refresh pass). Received: epochs={epochs}"
        )
    return episodes.scaled_episodes(epochs, ends, refresh_epochs=1)


def episode_cosine(plan, epoch_steps, max_learning_rate, min_learning_rate, decay):
    """The paper's episode-tied cosine: one cycle for the warm start and one per episode,
    start and target rates multiplied by `decay` per cycle (`kc.CosineRestarts`)."""
    import keras_curriculum as kc

    return kc.CosineRestarts(
        episodes.cycle_steps(plan, epoch_steps),
        max_learning_rate,
        min_learning_rate,
        max_decay=decay,
        min_decay=decay,
    )


@keras.saving.register_keras_serializable(package="keras_curriculum_recipes")
class CycleRates(LearningRateSchedule):
    """Cycles of given lengths, each from its own start rate to its own end rate.

    Cycle c of `cycle_steps[c]` steps runs `starts[c] -> ends[c]`: linearly for the cycles
    listed in `linear`, otherwise along a half cosine (as `kc.CosineRestarts`, whose per-cycle
    rates are geometric: the official DoCL code's are not, see `official_docl_rates`). After the
    last cycle the rate stays at its end.

    Args:
        cycle_steps: list of int >= 1.
        starts, ends: list of float >= 0, one per cycle.
        linear: indices of the cycles that run linearly.
    """

    def __init__(self, cycle_steps, starts, ends, linear=(), name="CycleRates"):
        self.cycle_steps = [int(s) for s in cycle_steps]
        self.starts = [float(r) for r in starts]
        self.ends = [float(r) for r in ends]
        self.linear = sorted(int(c) for c in linear)
        self.name = name
        if (
            not (len(self.cycle_steps) == len(self.starts) == len(self.ends))
            or min(self.cycle_steps, default=0) < 1
        ):
            raise ValueError(
                "`cycle_steps`, `starts` and `ends` must have one value per cycle, cycles of at "
                f"least one step. Received: cycle_steps={cycle_steps!r}, starts={starts!r}, "
                f"ends={ends!r}"
            )
        if min(self.starts + self.ends) < 0:
            raise ValueError(f"Rates must be >= 0. Received: starts={starts!r}, ends={ends!r}")
        self._ends = np.cumsum(self.cycle_steps).astype(np.float64)
        self._begins = self._ends - np.asarray(self.cycle_steps, np.float64)
        self._is_linear = np.isin(np.arange(len(self.cycle_steps)), self.linear)

    def rates(self, steps):
        """numpy twin of `__call__` at integer `steps`."""
        steps = np.asarray(steps, np.float64)
        cycle = np.minimum(np.searchsorted(self._ends, steps, side="right"), len(self._ends) - 1)
        fraction = np.clip(
            (steps - self._begins[cycle]) / np.asarray(self.cycle_steps)[cycle], 0, 1
        )
        start, end = np.asarray(self.starts)[cycle], np.asarray(self.ends)[cycle]
        shape = np.where(
            self._is_linear[cycle], 1.0 - fraction, 0.5 * (1.0 + np.cos(np.pi * fraction))
        )
        return end + (start - end) * shape

    def __call__(self, step):
        step = ops.cast(step, "float32")

        def at(values):
            return ops.take(ops.convert_to_tensor(np.asarray(values, np.float32)), cycle)

        cycle = ops.minimum(
            ops.sum(
                ops.cast(
                    ops.greater_equal(step, ops.convert_to_tensor(self._ends.astype(np.float32))),
                    "int32",
                )
            ),
            len(self.cycle_steps) - 1,
        )
        fraction = ops.clip((step - at(self._begins)) / at(self.cycle_steps), 0.0, 1.0)
        shape = ops.where(
            at(self._is_linear.astype(np.float32)) > 0.5,
            1.0 - fraction,
            0.5 * (1.0 + ops.cos(math.pi * fraction)),
        )
        end = at(self.ends)
        return end + (at(self.starts) - end) * shape

    def get_config(self):
        return {
            "cycle_steps": self.cycle_steps,
            "starts": self.starts,
            "ends": self.ends,
            "linear": self.linear,
            "name": self.name,
        }


def official_docl_rates(
    plan,
    epoch_steps,
    max_learning_rate=0.1,
    min_learning_rate=5e-4,
    max_decay=0.9,
    min_decay=0.8,
    warmup_span=6 / 5,
):
    """The official DoCL rate schedule on an episode plan (tianyizhou/DoCL docl.py).

    The warm start rises linearly from `min_learning_rate` towards `max_learning_rate` over
    `warmup_span` times its own length, of which it runs the first part (docl.py:500,
    1565-1567: a 6-epoch ramp of which the 5 warm-start epochs run); each episode is a cosine
    whose start and end follow `episodes.official_cycle_rates` (x 1 / 0.9 for episodes 1-4,
    then x 0.9 and x 0.8, docl.py:405-411).
    """
    steps = episodes.cycle_steps(plan, epoch_steps)
    starts, ends = episodes.official_cycle_rates(
        len(plan.episode_epochs), max_learning_rate, min_learning_rate, max_decay, min_decay
    )
    warm_end = min_learning_rate + (max_learning_rate - min_learning_rate) / warmup_span
    return CycleRates(steps, [min_learning_rate, *starts], [warm_end, *ends], linear=[0])
