"""Per-stage batch sizes that keep the accelerator busy at low resolution (pure math).

A step at B x B pixels costs about (B / S)^2 of a full-size step, so at a fixed batch the
low-resolution stages of EfficientTrain under-use a GPU. Growing the per-device batch as the
image shrinks keeps the pixels of a step about constant. What stays the user's optimisation:

- "exact": the effective batch (micro-batch x gradient accumulation x replicas) is unchanged; a
  low-resolution stage does fewer, larger micro-batches. The micro-batch is E / A_s for an
  accumulation A_s of the stage that divides E = b x A.
- "scaled": a larger batch, fewer updates, the learning rate scaled by the linear rule
  (Goyal et al. 2017): a change of the optimisation.

Nothing here touches Keras: plain functions of sizes, batch sizes and counters, tested against
hand computations. `EfficientTrain(saturate=...)` wires them into `fit`.
"""

import math
import numbers
from fractions import Fraction
from typing import NamedTuple

import numpy as np

SATURATE = ("auto", "exact", "scaled")
# "About constant" pixels per step: a stage may carry up to 5 % more pixels than the full-size
# step (256 images at 160 px against 128 at 224 px is +2 %).
PIXEL_TOLERANCE = 0.05
BATCH_MULTIPLE = 8


class StageBatch(NamedTuple):
    """Batching of one stage: per-device micro-batch, gradient accumulation, rate multiplier."""

    batch_size: int
    accumulation: int = 1
    learning_rate_scale: float = 1.0


def pixel_budget_batch(base_batch, image_size, size):
    """Batch at `size` with the pixels of `base_batch` images at `image_size`: b * H W / (h w)."""
    (height, width), (h, w) = image_size, size
    return base_batch * height * width / (h * w)


def scaled_batch(base_batch, image_size, size, max_batch_size=None):
    """Per-device batch of a stage in "scaled" mode.

    The largest multiple of 8 within `PIXEL_TOLERANCE` above the constant-pixel batch
    b H W / (h w), capped at `max_batch_size`, and never below `base_batch` (a full-size stage,
    or a base batch that is not a multiple of 8, keeps `base_batch`).
    """
    budget = pixel_budget_batch(base_batch, image_size, size) * (1 + PIXEL_TOLERANCE)
    batch = int(math.floor(budget / BATCH_MULTIPLE + 1e-9)) * BATCH_MULTIPLE
    if max_batch_size is not None:
        batch = min(batch, max_batch_size)
    return max(base_batch, batch)


def exact_batch(base_batch, accumulation, image_size, size, max_batch_size=None):
    """`(micro_batch, accumulation)` of a stage in "exact" mode.

    The effective batch E = `base_batch` * A (A = `accumulation`) is kept: the stage runs A_s
    micro-batches of k * `base_batch` with A_s = A / k for a divisor k of A, so that one
    micro-batch is exactly k of the user's. The largest such micro-batch within the pixel
    budget of `scaled_batch` (before rounding) and `max_batch_size` is chosen; k = 1 (the
    user's batching) always qualifies.
    """
    budget = pixel_budget_batch(base_batch, image_size, size) * (1 + PIXEL_TOLERANCE)
    limit = budget if max_batch_size is None else min(budget, max_batch_size)
    for steps in range(1, accumulation + 1):
        if accumulation % steps == 0 and base_batch * (accumulation // steps) <= limit + 1e-9:
            return base_batch * (accumulation // steps), steps
    return base_batch, accumulation


def plan_stages(mode, base_batch, accumulation, image_size, sizes, max_batch_size=None):
    """`StageBatch` of every stage (per device) for `mode` "exact", "scaled" or None (off).

    Args:
        mode: "exact", "scaled" or None.
        base_batch: per-device batch of the user's data.
        accumulation: the optimizer's gradient accumulation (1 for none).
        image_size: `(H, W)`, the full size.
        sizes: `(h, w)` of every stage.
        max_batch_size: None or the per-device cap.
    """
    plan = []
    for size in sizes:
        if mode == "exact":
            batch, steps = exact_batch(base_batch, accumulation, image_size, size, max_batch_size)
            plan.append(StageBatch(batch, steps, 1.0))
        elif mode == "scaled":
            batch = scaled_batch(base_batch, image_size, size, max_batch_size)
            plan.append(StageBatch(batch, accumulation, batch / base_batch))
        else:
            plan.append(StageBatch(base_batch, accumulation, 1.0))
    return plan


def epoch_steps(num_examples, batch_size, drop_remainder=False):
    """Batches of one pass over `num_examples` examples."""
    if drop_remainder:
        return num_examples // batch_size
    return -(-num_examples // batch_size)


def check_exact(stage_of_epoch, batches, base_batch, effective_batch, num_examples):
    """Raises `ValueError` unless the stages can keep every update equal to the fixed batch's.

    With micro-batches of `batches[stage]` examples (global) in each epoch, the run updates on
    the same examples as the fixed-batch run (micro-batch `base_batch`, `effective_batch` per
    update) when:
    - every epoch of a stage whose micro-batch differs from `base_batch` splits into whole
      micro-batches, in both runs (the fixed run must not have a short last batch either, since
      Keras weighs every micro-batch of an update equally);
    - every epoch where the micro-batch changes starts on an update boundary: the examples of
      the epochs before it are a multiple of `effective_batch`.

    Args:
        stage_of_epoch: int array, the stage of every epoch.
        batches: global micro-batch of every stage.
        base_batch: the user's global batch.
        effective_batch: examples per update.
        num_examples: examples per epoch.
    """
    per_epoch = [int(batches[s]) for s in stage_of_epoch]
    for epoch, batch in enumerate(per_epoch):
        if batch != base_batch and (num_examples % batch or num_examples % base_batch):
            raise ValueError(
                "`saturate`: the epoch of "
                f"{num_examples} examples does not split into whole batches of {base_batch} "
                f"and {batch} (stage {int(stage_of_epoch[epoch])}), so the updates cannot "
                "equal the fixed-batch ones. Use a number of examples divisible by both "
                "(`drop_remainder=True`, or `dataset.take`), or `saturate='scaled'`/None."
            )
        if epoch and batch != per_epoch[epoch - 1] and (epoch * num_examples) % effective_batch:
            raise ValueError(
                f"`saturate`: stage {int(stage_of_epoch[epoch])} starts after {epoch} epochs "
                f"of {num_examples} examples = {epoch * num_examples}, not a multiple of the "
                f"effective batch {effective_batch}: the micro-batch would change inside an "
                "update. Use a number of examples per epoch that is a multiple of the "
                "effective batch, or other `stages`, or `saturate='scaled'`/None."
            )


def convert_iteration(iteration, accumulation, old_steps, new_steps):
    """`(iteration, accumulator_scale)` when a stage changes accumulation from old to new.

    Keras counts micro-steps in `optimizer._iterations` and updates when
    `(iteration + 1) % steps == 0`; "exact" mode keeps iteration = u * A_s + j (u updates done,
    j micro-steps into the next one), so `optimizer.iterations` (= iteration // A_s) stays the
    update count. A micro-step of a stage with A_s steps holds k = A / A_s base micro-batches;
    the accumulated gradient sums j micro-gradients that are each the mean of k base ones, so it
    scales by k_old / k_new. Raises `ValueError` when j does not convert to whole micro-steps.
    """
    updates, within = divmod(int(iteration), old_steps)
    base_micro = within * (accumulation // old_steps)
    new_k = accumulation // new_steps
    if base_micro % new_k:
        raise ValueError(
            f"Cannot change gradient accumulation from {old_steps} to {new_steps} after "
            f"{within} of {old_steps} micro-steps of an update."
        )
    scale = (accumulation // old_steps) / new_k
    return updates * new_steps + base_micro // new_k, scale


def exact_step_map(accumulation, stage_steps):
    """`(k, c)`: the base schedule step of an "exact" stage is `iteration * k + c`.

    With iteration = u * A_s + j the fixed-batch run would be at micro-step u * A + (j + 1) k - 1
    when it finishes the same examples (k = A / A_s): at an update (j = A_s - 1) that is
    u * A + A - 1, the step at which Keras evaluates the fixed run's rate.
    """
    k = accumulation // stage_steps
    return k, k - 1


def scaled_step_map(steps_of_epoch, base_steps, start_iteration, first_epoch):
    """`(k, c)`: the base schedule step of a "scaled" stage is `iteration * k + c`.

    Every epoch advances the schedule by `base_steps` (its micro-steps at the fixed batch),
    whatever its real number of micro-steps `steps_of_epoch[e]`: the schedule sees the same
    step at every epoch boundary as in the fixed-batch run, and moves linearly in between.

    Args:
        steps_of_epoch: real micro-steps of every epoch.
        base_steps: micro-steps of a fixed-batch epoch.
        start_iteration: the optimizer's iteration at the start of epoch 0.
        first_epoch: first epoch of the stage (all its epochs have the same steps).
    """
    done = int(np.sum(steps_of_epoch[:first_epoch]))
    # Exact rationals: every epoch of a stage gives the same floats, hence one traced step.
    k = Fraction(int(base_steps), int(steps_of_epoch[first_epoch]))
    c = start_iteration + first_epoch * base_steps - (start_iteration + done) * k
    return float(k), float(c)


def normalize_saturate(saturate):
    if saturate is not None and saturate not in SATURATE:
        raise ValueError(
            f"`saturate` must be one of {SATURATE} or None. Received: saturate={saturate!r}"
        )
    return saturate


def normalize_max_batch_size(max_batch_size):
    if max_batch_size is None:
        return None
    if (
        isinstance(max_batch_size, bool)
        or not isinstance(max_batch_size, numbers.Integral)
        or max_batch_size < 1
    ):
        raise ValueError(
            "`max_batch_size` must be None or an integer >= 1 (per device). "
            f"Received: max_batch_size={max_batch_size!r}"
        )
    return int(max_batch_size)
