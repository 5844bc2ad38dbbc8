"""`CosineRestarts`: the cyclic cosine learning rate DoCL ties to its episodes (SGDR)."""

import math

import keras
import numpy as np
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number
from keras_curriculum._validation import check_sequence


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

    def __init__(
        self,
        cycle_steps,
        max_learning_rate,
        min_learning_rate=0.0,
        max_decay=1.0,
        min_decay=1.0,
        name="CosineRestarts",
    ):
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
        length = np.asarray(self.cycle_steps)[cycle]
        fraction = np.clip((steps - self._starts[cycle]) / length, 0, 1)
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
