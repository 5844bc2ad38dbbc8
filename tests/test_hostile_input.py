"""Hostile input: every public constructor and entry point refuses bad arguments by name.

One table drives the whole file. Each row builds one call with one bad argument (a string, a
list or a bool where a number is expected, a float where an integer is, NaN, +-inf, None where
the argument is required, an out-of-range value, an unknown name, an empty / infinite / batched /
wrongly structured dataset, an input of the wrong rank or width) and says which error it must
raise and a pattern that must name the argument. Wrong types raise `TypeError`, wrong values
`ValueError` (see `keras_curriculum/_validation.py`).

Most rows fail at construction, where no model exists yet. The rows whose check needs the model
fail in `on_train_begin`: for those `fit` runs on a tiny model, and the test also asserts that
no train step ran (the optimizer's step counter is 0 and no batch reached the callbacks) and
that every weight is bit-identical to before the call.
"""

import re
from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_curriculum as kc
from keras_curriculum import plotting
from keras_curriculum.lerac import schedules

NAN, INF = float("nan"), float("inf")


class Case(NamedTuple):
    id: str
    call: Callable
    error: type
    match: str


def _named(name):
    """The house style: the message opens on the backquoted name and quotes what it received."""
    return rf"`{re.escape(name)}`.*Received"


# Hostile values per kind of argument: (label, value, error).
_NOT_A_NUMBER = [("str", "1", TypeError), ("list", [1], TypeError), ("bool", True, TypeError)]
_HOSTILE = {
    "int": _NOT_A_NUMBER + [("float", 2.5, TypeError), ("nan", NAN, TypeError),
                            ("+inf", INF, TypeError), ("-inf", -INF, TypeError)],
    "number": _NOT_A_NUMBER + [("nan", NAN, ValueError), ("+inf", INF, ValueError),
                               ("-inf", -INF, ValueError)],
    "bool": [("str", "False", TypeError), ("int", 1, TypeError), ("list", [True], TypeError)],
    "choice": [("unknown", "nope", ValueError), ("list", ["nope"], ValueError),
               ("int", 3, ValueError)],
    "path": [("int", 5, TypeError), ("list", ["dir"], TypeError)],
}
# A duration (keras_curriculum.durations) takes an int count or a float fraction in (0, 1): a
# float >= 1 is a count of the wrong type (as for ints), NaN and infinities are out of range.
_HOSTILE["duration"] = _NOT_A_NUMBER + [("float", 2.5, TypeError), ("float 1.0", 1.0, TypeError),
                                        ("nan", NAN, ValueError),
                                        ("+inf", INF, ValueError), ("-inf", -INF, ValueError)]
_NONE_ERROR = {"int": TypeError, "number": TypeError, "bool": TypeError, "choice": ValueError,
               "duration": TypeError}


def attacks(where, name, build, kind, out_of_range=(), optional=False, skip=()):
    """The rows for one argument: `build(value)` makes the call with `value` as `name`.

    `skip` names hostile values that are valid for this argument (a list of ints, say).
    """
    rows = [row for row in _HOSTILE[kind] if row[0] not in skip]
    if not optional and kind in _NONE_ERROR:
        rows.append(("None", None, _NONE_ERROR[kind]))
    rows += [(f"out-of-range {value!r}", value, ValueError) for value in out_of_range]
    return [
        Case(f"{where}-{name}-{label}", lambda value=value: build(value), error, _named(name))
        for label, value, error in rows
    ]


def case(id, call, error, match):
    return [Case(id, call, error, match)]


# ---------------------------------------------------------------------------------------------
# Shared tiny fixtures: one model factory, a few arrays and datasets.


def tiny_model(image_size=None, classes=3, name="tiny"):
    """Conv -> pooling -> dense classifier; variable spatial size unless `image_size` is given."""
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="head")(x), name=name)


def dense_model():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(inputs), name="dense_only")


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(2, 3)

    def call(self, x):
        return self.conv(x)


def images(n=8, size=8):
    return np.random.default_rng(0).uniform(0, 255, (n, size, size, 3)).astype("float32")


def labels(n=8, classes=3):
    return (np.arange(n) % classes).astype("int32")


def image_dataset(n=8, size=8):
    return tf.data.Dataset.from_tensor_slices((images(n, size), labels(n)))


def et(**kwargs):
    return kc.EfficientTrain([(2, 4, None)], **kwargs)


def applied_docl():
    docl = kc.DoCL(warmup_epochs=1, episode_epochs=1)
    docl.apply((images(), labels()), batch_size=4)
    return docl


def lerac(**kwargs):
    return kc.LeRaC(**{"duration": 2, "min_learning_rate": 1e-6, **kwargs})


def built_smoothing(shape=(2, 8, 8, 3)):
    layer = kc.GaussianSmoothing()
    layer(np.zeros(shape, "float32"))
    return layer


# ---------------------------------------------------------------------------------------------
# The table: construction time and entry points.

CASES = []


@pytest.fixture(autouse=True)
def _seed_and_clear():
    """conftest's fixture without its `gc.collect()`, which costs ~0.5 s a row on TensorFlow."""
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session(free_memory=False)


# LeRaC
CASES += attacks("LeRaC", "duration", lambda v: lerac(duration=v), "duration", [0, -3])
CASES += attacks("LeRaC", "min_learning_rate", lambda v: lerac(min_learning_rate=v), "number",
                 [0.0, -1e-6],
                 optional=True)  # None: 1e-5 x the first group's rate
CASES += attacks("LeRaC", "max_learning_rate", lambda v: lerac(max_learning_rate=v), "number",
                 [0.0, -1.0],
                 optional=True)
CASES += case("LeRaC-min_learning_rate-above-max_learning_rate",
              lambda: lerac(min_learning_rate=1e-2, max_learning_rate=1e-3),
              ValueError, "`min_learning_rate`")
CASES += attacks("LeRaC", "unit", lambda v: lerac(unit=v), "choice")
CASES += attacks("LeRaC", "c", lambda v: lerac(c=v), "number", [1.0, 0.5])
CASES += attacks("LeRaC", "update", lambda v: lerac(update=v), "choice")
CASES += attacks("LeRaC", "base_schedule", lambda v: lerac(base_schedule=v), "choice")
CASES += attacks("LeRaC", "steps_per_epoch", lambda v: lerac(steps_per_epoch=v), "int", [0],
                 optional=True)
CASES += attacks("LeRaC", "log_groups", lambda v: lerac(log_groups=v), "bool")
for label, groups, error in [("unknown-name", "width", ValueError), ("int", 5, TypeError),
                             ("empty", [], ValueError), ("non-str-entry", ["g0", 3], TypeError),
                             ("empty-entry", [[]], TypeError), ("dict", {"g0": 1}, TypeError),
                             ("None", None, TypeError)]:
    CASES += case(f"LeRaC-groups-{label}", lambda g=groups: lerac(groups=g), error, "`groups`")
CASES += case("LeRaC.rates-model-not-a-model", lambda: lerac().rates("model", [0], 1), TypeError,
              "`model`")
CASES += attacks("LeRaC.rates", "steps_per_epoch",
                 lambda v: lerac().rates(tiny_model(), [0], steps_per_epoch=v), "int", [0],
                 optional=True)

# depth_groups
CASES += case("depth_groups-str", lambda: kc.depth_groups("model"), TypeError, _named("model"))
CASES += case("depth_groups-layer", lambda: kc.depth_groups(keras.layers.Dense(2)), TypeError,
              _named("model"))

# schedules
CASES += attacks("log_spaced_rates", "num_groups",
                 lambda v: schedules.log_spaced_rates(v, 1e-1, 1e-3), "int", [0])
CASES += attacks("log_spaced_rates", "highest_rate",
                 lambda v: schedules.log_spaced_rates(3, v, 1e-3), "number", [0.0])
CASES += attacks("log_spaced_rates", "lowest_rate",
                 lambda v: schedules.log_spaced_rates(3, 1e-1, v), "number", [0.0, 1.0])
CASES += attacks("lerac_elapsed_units", "steps_per_unit",
                 lambda v: schedules.lerac_elapsed_units(3, v), "int", [0])
CASES += attacks("lerac_scales", "k", lambda v: schedules.lerac_scales([-1.0], 0, v), "number",
                 [0, -1])
CASES += attacks("lerac_scales", "update",
                 lambda v: schedules.lerac_scales([-1.0], 0, 2, update=v), "choice")
CASES += attacks("lerac_scales", "c", lambda v: schedules.lerac_scales([-1.0], 0, 2, c=v),
                 "number", [1.0])
for label, ratios in [("nan", [NAN]), ("inf", [-INF]), ("2-D", [[-1.0]])]:
    CASES += case(f"lerac_scales-log_ratios-{label}",
                  lambda r=ratios: schedules.lerac_scales(r, 0, 2), ValueError,
                  _named("log_ratios"))
CASES += attacks("held_schedule_step", "hold_steps",
                 lambda v: schedules.held_schedule_step(5, v), "int", [-1])

# GaussianSmoothing and the kernel math
CASES += attacks("GaussianSmoothing", "sigma", lambda v: kc.GaussianSmoothing(sigma=v), "number",
                 [-0.1])
CASES += attacks("GaussianSmoothing", "kernel_size", lambda v: kc.GaussianSmoothing(kernel_size=v),
                 "int", [0, -3, 2, 4])
CASES += attacks("GaussianSmoothing", "smooth_at_inference",
                 lambda v: kc.GaussianSmoothing(smooth_at_inference=v), "bool")
CASES += attacks("GaussianSmoothing", "bypass_tolerance",
                 lambda v: kc.GaussianSmoothing(bypass_tolerance=v), "number", [1.0, -1e-3],
                 optional=True)
CASES += attacks("GaussianSmoothing", "data_format",
                 lambda v: kc.GaussianSmoothing(data_format=v), "choice", optional=True)
CASES += attacks("GaussianSmoothing.set_sigma", "sigma",
                 lambda v: kc.GaussianSmoothing().set_sigma(v), "number", [-1.0])
for label, shape in [("rank-2", (4, 3)), ("rank-5", (1, 2, 3, 4, 5))]:
    CASES += case(f"GaussianSmoothing-inputs-{label}",
                  lambda s=shape: kc.GaussianSmoothing()(keras.Input(batch_shape=s)), ValueError,
                  "`inputs`")
CASES += case("GaussianSmoothing-inputs-other-channels",
              lambda: built_smoothing()(np.zeros((2, 8, 8, 5), "float32")), ValueError,
              _named("inputs"))
CASES += case("GaussianSmoothing-inputs-other-rank",
              lambda: built_smoothing()(np.zeros((2, 8, 3), "float32")), ValueError,
              _named("inputs"))
for function in (kc.gaussian_kernel, kc.off_centre_mass):
    where = function.__name__
    CASES += attacks(where, "sigma", lambda v, f=function: f(v, 3), "number", [-1.0])
    CASES += attacks(where, "kernel_size", lambda v, f=function: f(1.0, v), "int", [0, 4])
    CASES += attacks(where, "rank", lambda v, f=function: f(1.0, 3, v), "int", [0, 3])
CASES += attacks("bypass_sigma", "kernel_size", lambda v: kc.bypass_sigma(v), "int", [0, 2])
CASES += attacks("bypass_sigma", "rank", lambda v: kc.bypass_sigma(3, v), "int", [0, 3])
CASES += attacks("bypass_sigma", "bypass_tolerance", lambda v: kc.bypass_sigma(3, 2, v), "number",
                 [1.0, -0.5], optional=True)
CASES += attacks("sigma_at_epoch", "initial_sigma", lambda v: kc.sigma_at_epoch(v, 3), "number",
                 [-1.0])
CASES += attacks("sigma_at_epoch", "epoch", lambda v: kc.sigma_at_epoch(1.0, v), "int", [-1])
CASES += attacks("sigma_at_epoch", "factor", lambda v: kc.sigma_at_epoch(1.0, 3, v), "number",
                 [0.0, 1.5])
CASES += attacks("sigma_at_epoch", "every", lambda v: kc.sigma_at_epoch(1.0, 3, 0.9, v), "duration",
                 [0])
CASES += case("sigma_at_epoch-every-fraction-without-epochs",
              lambda: kc.sigma_at_epoch(1.0, 3, 0.9, 0.025), ValueError, _named("every"))
CASES += attacks("bypass_epoch", "initial_sigma", lambda v: kc.bypass_epoch(v), "number", [-1.0])
CASES += attacks("bypass_epoch", "factor", lambda v: kc.bypass_epoch(1.0, v), "number", [0.0, 2.0])
CASES += attacks("bypass_epoch", "every", lambda v: kc.bypass_epoch(1.0, every=v), "duration", [0])
CASES += attacks("bypass_epoch", "kernel_size", lambda v: kc.bypass_epoch(1.0, kernel_size=v),
                 "int", [0, 4])
CASES += attacks("bypass_epoch", "rank", lambda v: kc.bypass_epoch(1.0, rank=v), "int", [3])
CASES += attacks("bypass_epoch", "bypass_tolerance",
                 lambda v: kc.bypass_epoch(1.0, bypass_tolerance=v),
                 "number", [1.0], optional=True)

# add_smoothing, smoothing_layers, SigmaDecay
CASES += case("add_smoothing-model-str", lambda: kc.add_smoothing("model"), TypeError,
              _named("model"))
CASES += case("add_smoothing-model-subclassed", lambda: kc.add_smoothing(Subclassed()),
              ValueError, _named("model"))
CASES += case("add_smoothing-model-without-convolution", lambda: kc.add_smoothing(dense_model()),
              ValueError, _named("model"))
CASES += attacks("add_smoothing", "sigma", lambda v: kc.add_smoothing(tiny_model(), sigma=v),
                 "number", [-1.0])
CASES += attacks("add_smoothing", "kernel_size",
                 lambda v: kc.add_smoothing(tiny_model(), kernel_size=v), "int", [4])
for arg in ("skip_pointwise", "recursive", "smooth_at_inference"):
    CASES += attacks("add_smoothing", arg,
                     lambda v, a=arg: kc.add_smoothing(tiny_model(), **{a: v}), "bool")
CASES += attacks("add_smoothing", "bypass_tolerance",
                 lambda v: kc.add_smoothing(tiny_model(), bypass_tolerance=v), "number", [1.0],
                 optional=True)
for label, exclude, error in [("non-str-pattern", [3], TypeError), ("int", 3, TypeError),
                              ("unknown-name", "shortcut*", ValueError),
                              ("one-unknown-name", ["conv", "typo"], ValueError)]:
    CASES += case(f"add_smoothing-exclude-{label}",
                  lambda e=exclude: kc.add_smoothing(tiny_model(), exclude=e), error,
                  _named("exclude"))
CASES += case("smoothing_layers-str", lambda: kc.smoothing_layers("model"), TypeError,
              _named("model"))
CASES += attacks("SigmaDecay", "factor", lambda v: kc.SigmaDecay(factor=v), "number",
                 [0.0, 1.01, -0.5])
CASES += attacks("SigmaDecay", "every", lambda v: kc.SigmaDecay(every=v), "duration", [0])

# low_frequency_crop and LowFrequencyCrop
_SIZE_OUT_OF_RANGE = [0, -1, 17, (8, 0)]
CASES += attacks("low_frequency_crop", "size",
                 lambda v: kc.low_frequency_crop(images(2, 16), v), "int", _SIZE_OUT_OF_RANGE)
CASES += case("low_frequency_crop-size-triple",
              lambda: kc.low_frequency_crop(images(2, 16), (8, 8, 8)), TypeError, _named("size"))
CASES += attacks("low_frequency_crop", "data_format",
                 lambda v: kc.low_frequency_crop(images(2, 16), 8, v), "choice", optional=True)
for label, shape in [("rank-2", (16, 16)), ("rank-5", (1, 2, 16, 16, 3))]:
    CASES += case(f"low_frequency_crop-images-{label}",
                  lambda s=shape: kc.low_frequency_crop(np.zeros(s, "float32"), 8), ValueError,
                  _named("images"))
CASES += attacks("LowFrequencyCrop", "size", lambda v: kc.LowFrequencyCrop(v), "int", [0, (8, 0)])
CASES += attacks("LowFrequencyCrop", "data_format",
                 lambda v: kc.LowFrequencyCrop(8, data_format=v), "choice", optional=True)
CASES += case("LowFrequencyCrop-inputs-rank-2",
              lambda: kc.LowFrequencyCrop(8)(keras.Input(batch_shape=(2, 16))), ValueError,
              _named("images"))
CASES += case("LowFrequencyCrop-size-above-input",
              lambda: kc.LowFrequencyCrop(17)(keras.Input((16, 16, 3))), ValueError,
              _named("size"))

# Stage and EfficientTrain
CASES += attacks("Stage", "epochs", lambda v: kc.Stage(v), "int", [-1])
CASES += attacks("Stage", "size", lambda v: kc.Stage(2, v), "int", [0, (8, 0)], optional=True)
CASES += attacks("Stage", "magnitude", lambda v: kc.Stage(2, 8, v), "number", [-1, 11],
                 optional=True)
for label, stages, error in [("str", "paper", TypeError), ("empty", [], ValueError),
                             ("no-epoch", [(0, 8, 1)], ValueError), ("int-row", [5], TypeError),
                             ("long-row", [(1, 2, 3, 4)], TypeError), ("None", None, TypeError)]:
    CASES += case(f"EfficientTrain-stages-{label}", lambda s=stages: kc.EfficientTrain(s), error,
                  "`stages`")
CASES += case("EfficientTrain-stages-bad-field", lambda: kc.EfficientTrain([(2, 8, 11)]),
              ValueError, _named("magnitude"))
CASES += attacks("EfficientTrain", "image_size", lambda v: et(image_size=v), "int", [0],
                 optional=True)
CASES += attacks("EfficientTrain", "downsample", lambda v: et(downsample=v), "choice")
for label, value_range, error in [("str", ("a", "b"), TypeError), ("scalar", 255, TypeError),
                                  ("triple", (0, 1, 2), TypeError), ("nan", (0, NAN), ValueError),
                                  ("inf", (0, INF), ValueError), ("reversed", (1, 0), ValueError)]:
    CASES += case(f"EfficientTrain-value_range-{label}",
                  lambda r=value_range: et(value_range=r), error, _named("value_range"))
CASES += attacks("EfficientTrain", "num_ops", lambda v: et(num_ops=v), "int", [0])
CASES += case("EfficientTrain-augmenter-not-callable", lambda: et(augmenter=3), TypeError,
              _named("augmenter"))
CASES += attacks("EfficientTrain", "seed", lambda v: et(seed=v), "int", [-1], optional=True)
CASES += attacks("EfficientTrain.paper", "epochs", lambda v: kc.EfficientTrain.paper(v), "int",
                 [0])
CASES += attacks("EfficientTrain.paper", "image_size",
                 lambda v: kc.EfficientTrain.paper(10, v), "int", [0])
CASES += attacks("EfficientTrain.plus", "budget_epochs", lambda v: kc.EfficientTrain.plus(v),
                 "number", [0, -1])
CASES += case("EfficientTrain.plus-sizes-int", lambda: kc.EfficientTrain.plus(sizes=96),
              TypeError, _named("sizes"))
CASES += case("EfficientTrain.plus-sizes-too-few", lambda: kc.EfficientTrain.plus(sizes=[96, 160]),
              ValueError, "`sizes`")
CASES += attacks("EfficientTrain.from_schedule", "schedule",
                 lambda v: kc.EfficientTrain.from_schedule(v, 10), "choice")
CASES += attacks("EfficientTrain.stage_at", "epoch", lambda v: et().stage_at(v), "int", [-1, 2])
CASES += case("EfficientTrain.apply-dataset-numpy", lambda: et().apply(images(), batch_size=2),
              TypeError, "`dataset`")
CASES += case("EfficientTrain.apply-dataset-empty",
              lambda: et().apply(image_dataset().take(0).batch(2)), ValueError, "`dataset`")
CASES += case("EfficientTrain.apply-dataset-dict-images",
              lambda: et().apply(tf.data.Dataset.from_tensor_slices(({"a": images()}, labels()))
                                 .batch(2)), ValueError, "`dataset`")
CASES += case("EfficientTrain.apply-dataset-rank-2-images",
              lambda: et().apply(tf.data.Dataset.from_tensor_slices((np.zeros((8, 5)), labels()))
                                 .batch(2)), ValueError, "`dataset`")
CASES += case("EfficientTrain.apply-dataset-unknown-size",
              lambda: et().apply(tf.data.Dataset.from_generator(
                  lambda: iter([(images(1)[0], 0)]), output_signature=(
                      tf.TensorSpec((None, None, 3)), tf.TensorSpec((), tf.int32)))),
              ValueError, "`dataset`")
CASES += case("EfficientTrain.apply-dataset-one-item",
              lambda: et().apply(tf.data.Dataset.from_tensor_slices(images()).batch(2)),
              ValueError, "`dataset`")
CASES += attacks("EfficientTrain.apply", "batch_size",
                 lambda v: et().apply(image_dataset(), batch_size=v), "int", [0])
CASES += case("EfficientTrain.apply-batch_size-with-batched-dataset",
              lambda: et().apply(image_dataset().batch(2), batch_size=2), ValueError,
              _named("batch_size"))
CASES += attacks("EfficientTrain.apply", "drop_remainder",
                 lambda v: et().apply(image_dataset(), 2, drop_remainder=v), "bool")
CASES += case("EfficientTrain.apply-stage-above-image",
              lambda: kc.EfficientTrain([(2, 20, None)]).apply(image_dataset().batch(2)),
              ValueError, "`stages`")
CASES += case("EfficientTrain.apply-image_size-mismatch",
              lambda: et(image_size=32).apply(image_dataset().batch(2)), ValueError,
              "`image_size`")
CASES += case("plot_efficient_train-et-str", lambda: kc.plot_efficient_train("et", "x.png"),
              TypeError, _named("et"))
CASES += case("plot_efficient_train-path-int",
              lambda: kc.plot_efficient_train(et(image_size=8), 3), TypeError, _named("path"))

# DoCL, DoCLLogits, CosineRestarts
CASES += attacks("DoCL", "warmup_epochs", lambda v: kc.DoCL(warmup_epochs=v), "duration", [-1])
CASES += attacks("DoCL", "episode_epochs", lambda v: kc.DoCL(episode_epochs=v), "int",
                 [0, [], [2, 0], "1", "paper"], skip=("list", "str"))
CASES += case("DoCL-episode_epochs-list-of-str", lambda: kc.DoCL(episode_epochs=[2, "2"]),
              TypeError, _named("episode_epochs"))
CASES += attacks("DoCL", "tau", lambda v: kc.DoCL(tau=v), "number", [0.0, -1.0])
CASES += attacks("DoCL", "gamma", lambda v: kc.DoCL(gamma=v), "number", [1.0, -0.1])
for arg in ("fraction_decay", "min_fraction", "initial_fraction"):
    CASES += attacks("DoCL", arg, lambda v, a=arg: kc.DoCL(**{a: v}), "number", [0.0, 1.5])
for arg in ("refresh", "from_logits"):
    CASES += attacks("DoCL", arg, lambda v, a=arg: kc.DoCL(**{a: v}), "bool")
CASES += attacks("DoCL", "state_dtype", lambda v: kc.DoCL(state_dtype=v), "choice")
for arg in ("buffer_steps", "shuffle_window"):
    CASES += attacks("DoCL", arg, lambda v, a=arg: kc.DoCL(**{a: v}), "int", [0])
CASES += attacks("DoCL", "seed", lambda v: kc.DoCL(seed=v), "int", [-1], optional=True)
for arg in ("backup_dir", "log_dir"):
    CASES += attacks("DoCL", arg, lambda v, a=arg: kc.DoCL(**{a: v}), "path")
_DOCL_DATASETS = [
    ("infinite", lambda: image_dataset().repeat(), ValueError),
    ("empty-tf", lambda: image_dataset().take(0), ValueError),
    ("empty-arrays", lambda: (np.zeros((0, 2)), np.zeros(0)), ValueError),
    ("batched", lambda: image_dataset().batch(4), ValueError),
    ("batched-one-hot", lambda: tf.data.Dataset.from_tensor_slices(
        (images(), np.eye(3)[labels()])).batch(4), ValueError),
    ("three-items", lambda: tf.data.Dataset.from_tensor_slices(
        (images(), labels(), labels())), ValueError),
    ("dict-items", lambda: tf.data.Dataset.from_tensor_slices(
        {"x": images(), "y": labels()}), ValueError),
    ("tuple-of-three-arrays", lambda: (images(), labels(), labels()), ValueError),
    ("mismatched-lengths", lambda: (images(8), labels(6)), ValueError),
    ("list-of-scalars", lambda: [1, 2, 3], ValueError),
    ("dicts-without-keys", lambda: [{"x": np.zeros(2), "y": 0}] * 4, ValueError),
    ("int", lambda: 5, TypeError),
]
for label, make, error in _DOCL_DATASETS:
    CASES += case(f"DoCL.apply-dataset-{label}",
                  lambda m=make: kc.DoCL().apply(m(), batch_size=2), error, "`dataset`")
CASES += case("DoCL.apply-keys-unknown",
              lambda: kc.DoCL().apply([{"x": np.zeros(2), "y": 0}] * 4, 2, keys=("image", "y")),
              ValueError, "`keys`")
CASES += case("DoCL.apply-keys-str",
              lambda: kc.DoCL().apply([{"x": np.zeros(2), "y": 0}] * 4, 2, keys="x"),
              TypeError, _named("keys"))
CASES += attacks("DoCL.apply", "batch_size",
                 lambda v: kc.DoCL().apply((images(), labels()), batch_size=v), "int", [0])
CASES += case("DoCL.apply-batch_size-above-data-with-drop_remainder",
              lambda: kc.DoCL().apply((images(), labels()), 16, drop_remainder=True), ValueError,
              "`batch_size`")
CASES += attacks("DoCL.apply", "drop_remainder",
                 lambda v: kc.DoCL().apply((images(), labels()), 2, drop_remainder=v), "bool")
CASES += attacks("DoCL.epoch_plan", "epoch", lambda v: applied_docl().epoch_plan(v), "int", [-1])
CASES += attacks("docl.epoch_plan", "epoch", lambda v: kc.docl.epoch_plan(v, 10), "int", [-1])
CASES += attacks("DoCL.learning_rate_schedule", "epochs",
                 lambda v: applied_docl().learning_rate_schedule(0.1, v), "int", [0])
CASES += attacks("DoCL.learning_rate_schedule", "max_learning_rate",
                 lambda v: applied_docl().learning_rate_schedule(v, 4), "number", [0.0])
CASES += attacks("DoCL.memory_per_example", "num_classes",
                 lambda v: kc.DoCL().memory_per_example(v), "int", [1], optional=True)
CASES += case("DoCL.plot-path-int", lambda: kc.DoCL().plot(3), TypeError, _named("path"))
CASES += attacks("DoCLLogits", "batch_size", lambda v: kc.DoCLLogits(batch_size=v), "int", [0],
                 optional=True)
CASES += attacks("DoCLLogits", "buffer_steps", lambda v: kc.DoCLLogits(buffer_steps=v), "int",
                 [0])
CASES += attacks("DoCLLogits", "from_logits", lambda v: kc.DoCLLogits(from_logits=v), "bool")
CASES += case("CosineRestarts-cycle_steps-int", lambda: kc.CosineRestarts(5, 0.1), TypeError,
              _named("cycle_steps"))
CASES += case("CosineRestarts-cycle_steps-empty", lambda: kc.CosineRestarts([], 0.1), ValueError,
              _named("cycle_steps"))
CASES += attacks("CosineRestarts", "cycle_steps", lambda v: kc.CosineRestarts([4, v], 0.1), "int",
                 [0])
CASES += attacks("CosineRestarts", "max_learning_rate", lambda v: kc.CosineRestarts([4], v),
                 "number", [0.0, -1.0])
CASES += attacks("CosineRestarts", "min_learning_rate",
                 lambda v: kc.CosineRestarts([4], 0.1, v), "number", [-1e-3, 0.2])
for arg in ("max_decay", "min_decay"):
    CASES += attacks("CosineRestarts", arg,
                     lambda v, a=arg: kc.CosineRestarts([4], 0.1, **{a: v}), "number", [0.0])
CASES += case("CosineRestarts-name-int", lambda: kc.CosineRestarts([4], 0.1, name=3), TypeError,
              _named("name"))

# Plot helpers
CASES += case("plot_curves-lengths",
              lambda: plotting.plot_curves([0, 1, 2], {"a": [1, 2]}, "x.png"), ValueError,
              "`curves`")
CASES += case("plot_curves-curves-list", lambda: plotting.plot_curves([0, 1], [[1, 2]], "x.png"),
              TypeError, _named("curves"))
CASES += case("plot_curves-path-None", lambda: plotting.plot_curves([0], {"a": [1]}, None),
              TypeError, _named("path"))
CASES += case("plot_lerac-lerac-str", lambda: plotting.plot_lerac("lerac", None, [0], "x.png"),
              TypeError, _named("lerac"))


@pytest.mark.parametrize("row", CASES, ids=[row.id for row in CASES])
def test_bad_argument_is_refused_by_name(row):
    with pytest.raises(row.error, match=row.match):
        row.call()


def test_table_ids_are_unique():
    ids = [row.id for row in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


# ---------------------------------------------------------------------------------------------
# The table: checks that need the model, run by `fit` in `on_train_begin`.


def _compiled(model, learning_rate=0.1, metrics=()):
    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=list(metrics))
    return model


def _arrays(size=8):
    return {"x": images(8, size), "y": labels(), "batch_size": 4, "epochs": 1}


def lerac_fit(learning_rate=0.1, dataset=None, **kwargs):
    def setup():
        fit = {"x": dataset(), "epochs": 1} if dataset else _arrays()
        return _compiled(tiny_model(), learning_rate), fit, [lerac(**kwargs)]
    return setup


def _unknown_length():
    return image_dataset().batch(4).filter(lambda x, y: True)


def sigma_decay_fit():
    return _compiled(tiny_model()), _arrays(), [kc.SigmaDecay()]


def et_fit(epochs=2, apply=True, image_size=None):
    def setup():
        curriculum = kc.EfficientTrain([(1, 4, None), (1, 8, None)])
        data = curriculum.apply(image_dataset().batch(4)) if apply else image_dataset().batch(4)
        fit = {"x": data, "epochs": epochs}
        return _compiled(tiny_model(image_size)), fit, [curriculum]
    return setup


def docl_fit(metric=True, apply=True, labels_=None, classes=3, **fit_kwargs):
    def setup():
        docl = kc.DoCL(warmup_epochs=1, episode_epochs=1)
        y = labels() if labels_ is None else labels_
        data = docl.apply((images(), y), batch_size=4) if apply else image_dataset().batch(4)
        model = _compiled(tiny_model(classes=classes), metrics=[docl.metric()] if metric else [])
        return model, {"x": data, "epochs": 2, **fit_kwargs}, [docl]
    return setup


FIT_CASES = [
    Case("LeRaC-groups-unknown-name", lerac_fit(groups=["conv", "nope"]), ValueError, "`groups`"),
    Case("LeRaC-groups-leave-a-layer-out", lerac_fit(groups=["conv"]), ValueError, "`groups`"),
    Case("LeRaC-groups-callable-returns-str", lerac_fit(groups=lambda m: "conv"), TypeError,
         "`groups`"),
    Case("LeRaC-groups-callable-returns-names", lerac_fit(groups=lambda m: [["conv"], ["head"]]),
         TypeError, "`groups`"),
    Case("LeRaC-max_learning_rate-above-optimizer-rate", lerac_fit(max_learning_rate=1.0),
         ValueError,
         "`max_learning_rate`"),
    Case("LeRaC-min_learning_rate-above-optimizer-rate", lerac_fit(min_learning_rate=0.5),
         ValueError,
         "`min_learning_rate`"),
    Case("LeRaC-optimizer-learning_rate-nan", lerac_fit(learning_rate=NAN), ValueError,
         "`learning_rate`"),
    Case("LeRaC-unknown-epoch-length", lerac_fit(dataset=_unknown_length), ValueError,
         "`steps_per_epoch`"),
    Case("SigmaDecay-model-without-smoothing", sigma_decay_fit, ValueError, "`model`"),
    Case("EfficientTrain-fit-epochs-mismatch", et_fit(epochs=3), ValueError, "`stages`"),
    Case("EfficientTrain-model-fixed-size", et_fit(image_size=8), ValueError, "`model`"),
    Case("EfficientTrain-apply-never-called", et_fit(apply=False), ValueError, "apply"),
    Case("DoCL-metric-missing", docl_fit(metric=False), ValueError, "`metrics"),
    Case("DoCL-apply-never-called", docl_fit(apply=False), ValueError, "apply"),
    Case("DoCL-steps_per_epoch", docl_fit(steps_per_epoch=1), ValueError, "`steps_per_epoch`"),
    Case("DoCL-labels-above-classes", docl_fit(labels_=labels() + 3), ValueError, "`labels`"),
    Case("DoCL-model-not-a-classifier", docl_fit(classes=1), ValueError, "`model`"),
]


class _BatchCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.batches += 1


def _values(variables):
    return [np.array(ops.convert_to_numpy(v)) for v in variables]


@pytest.mark.parametrize("row", FIT_CASES, ids=[row.id for row in FIT_CASES])
def test_bad_argument_is_refused_before_any_step(row):
    model, fit_kwargs, callbacks = row.call()
    before = _values(model.weights)
    counter = _BatchCounter()
    with pytest.raises(row.error, match=row.match):
        model.fit(**fit_kwargs, callbacks=[counter] + callbacks, verbose=0)
    assert counter.batches == 0
    assert int(ops.convert_to_numpy(model.optimizer.iterations)) == 0
    after = _values(model.weights)
    assert len(after) == len(before)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)  # bit-identical
