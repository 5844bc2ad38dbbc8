"""What `DoCL` checks at the start of a `fit`, before any train step runs."""

import warnings

import keras
import numpy as np
from keras.optimizers.schedules import LearningRateSchedule

from keras_curriculum import _keras_internals as internals
from keras_curriculum import processes
from keras_curriculum.docl import sources
from keras_curriculum.docl.metric import check_classifier_output


def check_label_values(labels):
    """In-memory labels must be class indices or one-hot rows: finite, and whole for indices.

    NaN compares false with every bound, so the range check of `check_labels` alone lets it
    through (and a NaN cast to an integer index is an arbitrary class).
    """
    if labels is None:
        return
    labels = np.asarray(labels)
    if labels.dtype.kind not in "fc":
        return
    one_hot = labels.ndim == 2 and labels.shape[-1] > 1
    bad = ~np.isfinite(labels) if one_hot else ~np.isfinite(labels) | (labels != np.round(labels))
    if bad.any():
        flat = int(np.flatnonzero(bad.reshape(-1))[0])
        position = tuple(int(i) for i in np.unravel_index(flat, labels.shape))
        raise ValueError(
            "`dataset` labels must be class indices (whole numbers) or one-hot rows, all "
            f"finite. Received: labels{list(position)}={labels[position].item()!r}"
        )


def check_labels(labels, num_classes):
    """In-memory labels must fit the model's output width (class indices or one-hot rows)."""
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


def applies_softmax(model):
    """Whether the last layer of `model` (of a Functional or Sequential model) ends in a
    softmax: a `Softmax` layer, or a layer whose `activation` is softmax."""
    layer = model
    while isinstance(layer, keras.Model) and getattr(layer, "outputs", None) and layer.layers:
        layer = layer.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return activation is keras.activations.softmax or (
        getattr(activation, "__name__", None) == "softmax"
    )


def check_output_activation(model, from_logits):
    if from_logits and applies_softmax(model):
        raise ValueError(
            "`from_logits` is True but the model's last layer applies a softmax, so DoCL "
            "would score probabilities as if they were logits. Pass DoCL(from_logits=False), "
            "or remove the softmax (and compile the loss with `from_logits=True`). Received: "
            "from_logits=True"
        )


def check_schedule_epochs(optimizer, schedule_epochs, epochs):
    """A `docl.learning_rate_schedule(epochs=E)` on the optimizer needs a fit of E epochs."""
    rate = internals.learning_rate_object(internals.base_optimizer(optimizer))
    planned = schedule_epochs.get(rate) if isinstance(rate, LearningRateSchedule) else None
    if planned not in (None, epochs):
        raise ValueError(
            f"`epochs` of `fit` must be the {planned} that `docl.learning_rate_schedule` was "
            "built for: its cosine cycles follow that fit's episodes. Build the schedule with "
            f"the epochs `fit` runs. Received: epochs={epochs}"
        )


def warn_if_inactive(docl, epochs):
    """Warns when no epoch of this fit trains on fewer than all the examples."""
    sizes = [docl.epoch_plan(epoch, epochs).size for epoch in range(epochs)]
    if min(sizes) < docl.num_examples:
        return
    warnings.warn(
        f"DoCL trains on all {docl.num_examples} examples in each of the {epochs} epochs of "
        f"this fit (warmup_epochs={docl.warmup_epochs!r}, episode_epochs="
        f"{docl.episode_epochs!r}, initial_fraction={docl.initial_fraction:g}): its subset "
        "never falls below the whole data and the curriculum does not act. Leave "
        "`warmup_epochs` and `episode_epochs` at their defaults (the paper's proportions "
        "scaled to the fit), shorten them, or train for more epochs.",
        stacklevel=3,
    )


def check_same_model(trained, model):
    """One DoCL follows one model: `trained` is a weak reference to its model, or None."""
    if trained is None or trained() is model:
        return
    other = trained()
    other = "a model that no longer exists" if other is None else f"model '{other.name}'"
    raise ValueError(
        f"This DoCL already trained {other}, and its metric (`docl.metric()`) is compiled into "
        f"that model: a Keras metric holds the state of one model, so the same DoCL cannot "
        f"follow model '{model.name}'. Create one DoCL (and its `metric()`) per model; a "
        "DoCL can train its own model again."
    )


def check_fit(docl, model, metric, labels):
    """Checks the model, its metric and `fit`'s parameters; returns the classes if known."""
    if metric is None:
        raise ValueError(
            "DoCL reads the logits through its metric: compile the model with "
            "`metrics=[..., docl.metric()]`."
        )
    if model.steps_per_execution > metric.buffer_steps:
        raise ValueError(
            f"The model's steps_per_execution ({model.steps_per_execution}) exceeds "
            f"DoCL(buffer_steps={metric.buffer_steps}): pass "
            f"buffer_steps >= {model.steps_per_execution} to DoCL."
        )
    full = sources.num_batches(docl.num_examples, docl.batch_size, docl.drop_remainder)
    steps = docl.params.get("steps")
    if steps not in (None, full) and docl.params.get("epochs", 1) > 1:
        raise ValueError(
            "DoCL draws a new subset every epoch and each epoch ends with its data: do not "
            f"pass `steps_per_epoch` to `fit`. Received: steps={steps}"
        )
    check_output_activation(model, docl.from_logits)
    num_classes = metric.num_classes
    if num_classes is None and getattr(model, "outputs", None):
        # Checked here for Functional models: the metric's own check runs inside the first
        # step, which on PyTorch (eager) comes after that step's update.
        num_classes = check_classifier_output(model.outputs[0].shape)
    if num_classes is not None:
        check_labels(labels, num_classes)
    return num_classes


def check_metric_width(state, width, labels):
    """Once the metric is built: the state's logits get its width (or must match it)."""
    if state.num_classes is None:
        check_labels(labels, width)
        state.allocate_logits(width)
    elif state.num_classes != width:
        raise ValueError(
            f"The saved DoCL state has {state.num_classes} classes and the model {width}."
        )


def check_process_batches(batch_size, drop_remainder, smallest_subset):
    """ValueError, on several processes, for batches that cannot reach every process whole."""
    if not drop_remainder:
        raise ValueError(
            "On several processes each global batch is split across them, and DoCL's epochs "
            "(a drawn subset, then the full set) end in partial batches that would reach only "
            "some processes and hang the others: pass `drop_remainder=True` to `docl.apply`."
        )
    if smallest_subset < batch_size:
        # Keras 3.15's JAX `fit` fails on an epoch without a step (it reads the metrics).
        raise ValueError(
            f"DoCL's smallest subset ({smallest_subset} examples, `min_fraction` of the data) "
            f"is less than one batch of {batch_size}: with `drop_remainder=True` such an epoch "
            "would train no step. Raise `min_fraction` or lower `batch_size`."
        )
    processes.check_global_batch(batch_size)


def check_every_epoch_trains(docl, epochs):
    """ValueError before the first step when a planned subset is smaller than one batch and
    `drop_remainder=True`: that epoch would train no step, while DoCL's logs reported its
    subset (Keras 3.15's JAX `fit` fails on such an epoch, TF and PyTorch run it empty)."""
    if not docl.drop_remainder:
        return
    smallest = min(docl.epoch_plan(epoch, epochs).size for epoch in range(epochs))
    if smallest < docl.batch_size:
        raise ValueError(
            f"DoCL's smallest subset in this fit ({smallest} examples: `min_fraction`="
            f"{docl.min_fraction} of {docl.num_examples}, reached through `fraction_decay`) "
            f"is less than one batch of {docl.batch_size}, and with `drop_remainder=True` such "
            "an epoch would train no step. Raise `min_fraction`, lower `batch_size`, or pass "
            "`drop_remainder=False` to `docl.apply`."
        )
