"""EfficientTrain saturation planning: resolves `saturate` for one `fit`.

Reads the training source, the optimizer's accumulation and the replicas, and decides the batch of
every stage (`saturation.plan_stages`) and whether the optimizer must change between stages
(`stage_batching.StageBatching`).
"""

import warnings

import keras
import numpy as np

from keras_curriculum import _keras_internals as internals
from keras_curriculum import processes
from keras_curriculum._tf_data import short_epochs
from keras_curriculum.efficient_train import saturation as batch_saturation
from keras_curriculum.efficient_train.pipeline import Source
from keras_curriculum.efficient_train.stage_batching import StageBatching
from keras_curriculum.efficient_train.stage_batching import user_settings


def plan_batches(et):
    """Resolves `saturate` for this fit: the batch of every stage, the optimizer's stages."""
    et._batching, et._batch_plan, et._batching_started = None, None, False
    source = et._source
    if not isinstance(source, Source):
        if et.saturate == "auto" and accumulates(et):
            warnings.warn(
                f"EfficientTrain(saturate='auto') runs at a fixed batch: {source}.", stacklevel=2
            )
        return
    optimizer = internals.base_optimizer(et.model.optimizer)
    accumulation, rate = user_settings(optimizer)
    replicas = replicas_of(et.model)
    mode = et.saturate
    if mode == "auto":
        mode = "exact" if accumulation > 1 else None
    try:
        plan = stage_plan(et, mode, source, accumulation, rate, replicas)
    except AutoOff as off:
        warnings.warn(f"EfficientTrain(saturate='auto') runs at a fixed batch: {off}", stacklevel=2)
        mode, plan = None, stage_plan(et, None, source, accumulation, rate, replicas)
    et._batch_plan = plan
    if mode is None:  # the data's own batch, whether or not it splits over the replicas
        batches = [source.batch_size] * len(plan)
    else:
        batches = [replicas * p.batch_size for p in plan]
    et._stage_batches = batches
    if processes.process_count() > 1:
        check_stage_batches(batches, source)
    et._batch_var.assign(batches + [source.batch_size])
    if mode is None or all(
        b == source.batch_size and p.accumulation == accumulation for b, p in zip(batches, plan)
    ):
        return
    steps_of_epoch = np.array(
        [
            batch_saturation.epoch_steps(source.examples, batches[s], source.drop_remainder)
            for s in et._table
        ]
    )
    optimizer = et.model.optimizer
    if not optimizer.built:  # TF builds it in the first step, with the stage's settings
        optimizer.build(et.model.trainable_variables)
    et._batching = StageBatching(
        et.model, mode, plan, et._table, steps_of_epoch, source.batches, functions=et._functions
    )
    # Saturated epochs end before the full-size count Keras expects: by design.
    et._short_epochs = short_epochs()


def stage_plan(et, mode, source, accumulation, rate, replicas):
    """`plan_stages` after the checks; `AutoOff` when "auto" cannot be exact here."""
    explicit = et.saturate in ("exact", "scaled")
    base = source.batch_size // replicas
    if et.max_batch_size is not None and et.max_batch_size < base:
        raise ValueError(
            f"`max_batch_size` ({et.max_batch_size}) must be >= the per-device batch "
            f"{base} (global {source.batch_size} over {replicas} replicas)."
        )
    if mode is None:
        return batch_saturation.plan_stages(
            None, base, accumulation, et._dataset_size, stage_sizes(et)
        )
    steps = et.params.get("steps")
    if steps != source.batches:
        if et._applied > 1:  # saturation plans from the last dataset `apply` prepared
            raise ValueError(
                f"`fit` runs {steps} steps per epoch and the last dataset given to `et.apply` "
                f"has {source.batches} batches: `apply` was called on {et._applied} datasets, "
                "and it prepares training data (the last one). Prepare validation data with "
                "`et.evaluation_data(dataset, batch_size)`."
            )
        message = (
            f"`fit` runs {steps} steps per epoch, not one pass of the dataset "
            f"({source.batches} batches): do not pass `steps_per_epoch`."
        )
        if explicit:
            raise ValueError(f"`saturate={et.saturate!r}` with `steps_per_epoch`: {message}")
        raise AutoOff(message)
    if source.batch_size % replicas:
        raise ValueError(
            f"`batch_size` ({source.batch_size}, the global batch) must be a multiple of "
            f"the {replicas} replicas for `saturate` to size the per-device batch."
        )
    if mode == "exact" and accumulation < 2:
        raise ValueError(
            "`saturate='exact'` keeps the effective batch by accumulating fewer, larger "
            "micro-batches: compile with an optimizer that has "
            "`gradient_accumulation_steps` >= 2 (Keras 3 cannot accumulate under "
            "tf.distribute), or use `saturate='scaled'`/None."
        )
    if mode == "scaled" and not isinstance(
        rate, (keras.optimizers.schedules.LearningRateSchedule, keras.Variable)
    ):
        raise ValueError(
            "`saturate='scaled'` scales the learning rate: the optimizer's learning rate "
            f"must be a float or a LearningRateSchedule. Received: {rate!r}"
        )
    plan = batch_saturation.plan_stages(
        mode, base, accumulation, et._dataset_size, stage_sizes(et), et.max_batch_size
    )
    if mode == "exact":
        try:
            batch_saturation.check_exact(
                et._table,
                [replicas * p.batch_size for p in plan],
                source.batch_size,
                source.batch_size * accumulation,
                source.examples,
            )
        except ValueError as error:
            if explicit:
                raise
            raise AutoOff(str(error)) from error
    return plan


def stage_sizes(et):
    return [et._dataset_size if s.size is None else s.size for s in et.stages]


def accumulates(et):
    optimizer = getattr(et.model, "optimizer", None)
    return optimizer is not None and user_settings(internals.base_optimizer(optimizer))[0] > 1


class AutoOff(Exception):
    """`saturate="auto"` cannot be exact in this fit: it trains at a fixed batch."""


def replicas_of(model):
    """Devices a global batch is split over: tf.distribute replicas, or the JAX data axis."""
    if keras.backend.backend() == "tensorflow":
        strategy = getattr(model, "distribute_strategy", None)
        return int(strategy.num_replicas_in_sync) if strategy is not None else 1
    return processes.data_devices()


def check_stage_batches(batches, source):
    """ValueError, on several processes, for a stage whose last batch would be partial."""
    for batch in sorted(set(batches)):
        processes.check_global_batch(batch, "A stage's batch")
        if not source.drop_remainder and source.examples % batch:
            raise ValueError(
                f"A stage trains on batches of {batch}, and the last of its "
                f"{source.examples} examples would make a partial batch that reaches only some "
                "processes and hangs the others: pass `drop_remainder=True` to `et.apply`. "
                f"Stage batches: {batches}"
            )
