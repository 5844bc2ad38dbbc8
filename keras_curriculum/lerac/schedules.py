"""Pure schedule math for the curricula: plain functions of a step or epoch counter.

Nothing here touches a model, an optimizer or a callback. Functions that run inside a training
step are written with `keras.ops`, so the same code serves the compiled step (TF graph, XLA, JAX
jit) and the host (numpy in, backend tensor out: wrap with `keras.ops.convert_to_numpy`).
"""

import math

import numpy as np
from keras import backend
from keras import ops

from keras_curriculum._validation import check_choice
from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number

LERAC_UPDATES = ("exponential", "linear", "stepwise")
# Deprecated name of "stepwise": it copies only the x c rule of the authors' code, not its
# initial rates on whole decades per block nor its extra events inside an epoch.
DEPRECATED_UPDATES = {"official": "stepwise"}


def log_spaced_rates(num_groups, highest_rate, lowest_rate):
    """Initial learning rates of LeRaC, one per layer group, input side first.

    `log10 eta_j = log10 eta_1 + (j - 1) / (n - 1) * (log10 eta_n - log10 eta_1)`: the first group
    starts at `highest_rate`, the last at `lowest_rate`, the rest are evenly spaced in log space.
    A single group starts at `highest_rate`.

    Args:
        num_groups: int >= 1, the number of groups n.
        highest_rate: float > 0, eta_1^(0).
        lowest_rate: float in (0, highest_rate], eta_n^(0).

    Returns:
        float64 numpy array of shape `(num_groups,)`.
    """
    num_groups = check_int("num_groups", num_groups, 1)
    highest_rate = check_number("highest_rate", highest_rate, low=0.0, low_open=True)
    lowest_rate = check_number("lowest_rate", lowest_rate, 0.0, highest_rate, low_open=True)
    if num_groups == 1:
        return np.array([highest_rate])
    exponents = np.linspace(math.log10(highest_rate), math.log10(lowest_rate), num_groups)
    return 10.0**exponents


def lerac_elapsed_units(step, steps_per_unit):
    """LeRaC's l at an optimizer step, as float32 (`keras.ops`, runs inside the train step).

    Args:
        step: integer tensor, the optimizer's iteration counter.
        steps_per_unit: 1 when the unit is the step (l = step), or the number of steps per
            epoch (l = floor(step / steps_per_epoch): rates change at epoch boundaries only).
    """
    steps_per_unit = check_int("steps_per_unit", steps_per_unit, 1)
    step = _whole_steps(step)
    if steps_per_unit > 1:
        step = ops.floor_divide(step, steps_per_unit)
    return ops.cast(step, "float32")


def lerac_scales(log_ratios, elapsed, k, update="exponential", c=10.0):
    """Per-group learning-rate multipliers eta_j^(l) / eta^(0) of LeRaC (`keras.ops`).

    With r_j = eta_j^(0) / eta^(0) (so `log_ratios` = ln r_j <= 0) and p = min(l / k, 1):
    - "exponential", paper Eq. 8:
      eta_j^(l) = eta_j^(0) * c^((l/k)(log_c eta^(0) - log_c eta_j^(0))),
      which is r_j^(1 - p): the base c cancels out of Eq. 8.
    - "linear", paper Table 5: eta_j^(0) + p (eta^(0) - eta_j^(0)), i.e. 1 - (1 - p)(1 - r_j).
    - "stepwise", the x c rule of the authors' code: each group's rate is multiplied by c once
      per elapsed unit and capped at eta^(0): min(r_j c^l, 1) while l < k, then 1.
    For l >= k every form is exactly 1.0, so the optimizer then runs as without LeRaC.

    Args:
        log_ratios: float array `(num_groups,)`, ln(eta_j^(0) / eta^(0)).
        elapsed: float32 scalar tensor or number, l (whole units for "stepwise").
        k: number > 0, the curriculum length in units.
        update: one of `LERAC_UPDATES`.
        c: float > 1, the base (used by "stepwise" only).

    Returns:
        float32 tensor `(num_groups,)`.
    """
    log_ratios = np.asarray(log_ratios, "float32")
    if log_ratios.ndim != 1 or not np.all(np.isfinite(log_ratios)):
        raise ValueError(
            "`log_ratios` must be a 1-D array of finite numbers. "
            f"Received: log_ratios={log_ratios!r}"
        )
    k = check_number("k", k, low=0.0, low_open=True)
    update = check_choice("update", update, LERAC_UPDATES)
    c = check_number("c", c, low=1.0, low_open=True)
    log_ratios = ops.convert_to_tensor(log_ratios)
    elapsed = ops.cast(elapsed, "float32")
    progress = ops.minimum(elapsed / k, 1.0)
    if update == "exponential":
        scales = ops.exp(log_ratios * (1.0 - progress))
    elif update == "linear":
        # r + p (1 - r), not 1 - (1 - p)(1 - r): the latter cancels catastrophically for tiny r.
        ratios = ops.exp(log_ratios)
        scales = ratios + progress * (1.0 - ratios)
    else:  # "stepwise"
        scales = ops.minimum(ops.exp(log_ratios + elapsed * math.log(c)), 1.0)
    # From k on, exactly 1.0 (not 1 - ulp), so training is bit-identical to training without LeRaC.
    return ops.where(elapsed >= k, ops.ones_like(scales), scales)


def held_schedule_step(step, hold_steps):
    """Step at which a base learning-rate schedule is evaluated while LeRaC holds it.

    The paper deactivates other schedulers during the curriculum and starts them after it (the
    official code shifts the cosine schedule by k epochs): the schedule sees step 0 until
    `hold_steps`, then `step - hold_steps`.
    """
    hold_steps = check_int("hold_steps", hold_steps, 0)
    return ops.maximum(_whole_steps(step) - hold_steps, 0)


def _whole_steps(step):
    """`step` rounded down to a whole step, kept in its own integer type when it has one.

    Not cast to int64: on JAX without x64 that cast warns at every call and truncates anyway.
    A fractional step (EfficientTrain's "scaled" saturation maps the counter to float32) is
    floored.
    """
    step = ops.convert_to_tensor(step)
    if "int" in backend.standardize_dtype(step.dtype):
        return step
    return ops.floor(step)
