"""The optimizer's base learning rate at given steps, computed on the host (DoCL's rho)."""

import numpy as np
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_curriculum import _keras_internals as internals
from keras_curriculum._host import to_numpy
from keras_curriculum.docl.cosine import CosineRestarts


def host_rates(optimizer, steps):
    """float64 array of the base rate at each of `steps` (int64 array).

    A `CosineRestarts` has an exact numpy twin; another schedule is evaluated on the vector of
    steps, or step by step if it only takes a scalar; a plain rate is read once (DoCL reads it
    at the start of every epoch).
    """
    optimizer = internals.base_optimizer(optimizer)
    schedule = internals.learning_rate_object(optimizer)
    if isinstance(schedule, CosineRestarts):
        return schedule.rates(steps)
    if isinstance(schedule, LearningRateSchedule):
        try:
            values = to_numpy(schedule(ops.convert_to_tensor(steps)))
            return np.broadcast_to(np.asarray(values, np.float64), steps.shape)
        except Exception:  # noqa: BLE001 - schedules that only take a scalar step
            return np.array([float(to_numpy(schedule(int(s)))) for s in steps])
    return np.full(steps.shape, float(to_numpy(optimizer.learning_rate)))
