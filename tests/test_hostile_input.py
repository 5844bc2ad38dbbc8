"""Hostile input: every public constructor and entry point refuses bad arguments by name.

One table drives the whole file, with one row per rule: a rule is an entry point, one of its
arguments and one check on it, and the row's pattern pins the message of that check (for the
`_validation` helpers "`name` must be <accepted range>. Received: name=..."). An argument
checked by a helper has two rules: a value of the wrong type raises `TypeError` (a string, a
list, a bool or None where a number is required, a float where an integer is: the helper has
one type check and one message for all of them) and a value of the right type outside the range
raises `ValueError` (NaN and +-inf included); a name out of a set ("choice") has one rule,
`ValueError` for any value not in the set. A duration (keras_curriculum.durations) takes an int
count or a float fraction in (0, 1): its count below the minimum is `check_int`'s own rule.
Other rows name their own check: an empty / infinite / batched / wrongly structured dataset, an
input of the wrong rank or width, a size above the image. `python tests/hostile_rules.py
tests/test_hostile_input.py` lists the rules and any rule held by more than one row.

Wrong types raise `TypeError`, wrong values `ValueError` (see `keras_curriculum/_validation.py`).

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


def _must_be(name, expected):
    """The `_validation` message for `name` and its accepted range `expected`."""
    return rf"`{re.escape(name)}` must be {re.escape(expected)}\. Received: {re.escape(name)}="


def _must_be_a(name, kind):
    """The message of a check that `name` is an instance of `kind` (it names the type received)."""
    return rf"`{re.escape(name)}` must be {re.escape(kind)}\. Received: {re.escape(name)} of type "


def _says(message):
    """A check's own message, matched literally."""
    return re.escape(message)


# The wrong-type value each kind of argument is attacked with: the helper's one type check
# refuses a string, a list, a bool, None (where required) and a float (where an int is) alike.
_WRONG_TYPE = {"int": 2.5, "number": "1", "duration": "1", "bool": 1, "path": 5}
INT_1 = "an integer >= 1"
POSITIVE = "a finite number > 0"
BOOL = "a bool (True or False)"
SIGMA = "a finite number >= 0"
FRACTION = "a finite number in (0, 1]"
ODD = "an odd integer >= 1 (1, 3, 5, ...), so that 'same' padding is symmetric"
TOLERANCE = "a finite number in [0, 1) or None"
DATA_FORMAT = "one of ('channels_last', 'channels_first') or None"
SIZE = "an integer >= 1 or a (height, width) pair of them"
RANK = "an integer in [1, 2]"
PATH = "a path (str or os.PathLike)"


def duration(minimum=1):
    return f"an int >= {minimum} (a count) or a float in (0, 1) (a fraction of the fit)"


def checked(where, name, build, kind, expected, out_of_range=None):
    """The rows of one argument that a `_validation` helper checks: one per rule.

    `build(value)` makes the call with `value` as `name`; `expected` is the accepted range the
    message states. A wrong type raises `TypeError` (a "choice" argument, a name out of a set,
    raises `ValueError` for any value not in the set); `out_of_range` (default NaN for numbers
    and durations), of the right type, raises `ValueError`.
    """
    if kind == "choice":
        rows = [("unknown", "nope", ValueError)]
    else:
        rows = [("wrong-type", _WRONG_TYPE[kind], TypeError)]
    if out_of_range is None and kind in ("number", "duration"):
        out_of_range = NAN
    if out_of_range is not None:
        rows.append((f"out-of-range {out_of_range!r}", out_of_range, ValueError))
    return [
        Case(
            f"{where}-{name}-{label}",
            lambda value=value: build(value),
            error,
            _must_be(name, expected),
        )
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
CASES += checked("LeRaC", "duration", lambda v: lerac(duration=v), "duration", duration())
CASES += case(
    "LeRaC-duration-zero", lambda: lerac(duration=0), ValueError, _must_be("duration", INT_1)
)
CASES += checked(
    "LeRaC",
    "min_learning_rate",
    lambda v: lerac(min_learning_rate=v),
    "number",
    "a finite number > 0 or None",
    0.0,
)
CASES += checked(
    "LeRaC",
    "max_learning_rate",
    lambda v: lerac(max_learning_rate=v),
    "number",
    "a finite number > 0 or None",
    0.0,
)
CASES += case(
    "LeRaC-min_learning_rate-above-max_learning_rate",
    lambda: lerac(min_learning_rate=1e-2, max_learning_rate=1e-3),
    ValueError,
    _says("`min_learning_rate` must not exceed `max_learning_rate`."),
)
CASES += checked(
    "LeRaC", "unit", lambda v: lerac(unit=v), "choice", "one of ('auto', 'epoch', 'step')"
)
CASES += checked("LeRaC", "c", lambda v: lerac(c=v), "number", "a finite number > 1", 1.0)
CASES += checked(
    "LeRaC",
    "update",
    lambda v: lerac(update=v),
    "choice",
    "one of ('exponential', 'linear', 'stepwise')",
)
CASES += checked(
    "LeRaC",
    "base_schedule",
    lambda v: lerac(base_schedule=v),
    "choice",
    "one of ('hold', 'multiply')",
)
CASES += checked(
    "LeRaC",
    "steps_per_epoch",
    lambda v: lerac(steps_per_epoch=v),
    "int",
    "an integer >= 1 or None",
    0,
)
CASES += checked("LeRaC", "log_groups", lambda v: lerac(log_groups=v), "bool", BOOL)
for label, groups, error, match in [
    (
        "unknown-name",
        "width",
        ValueError,
        _says("`groups` must be 'depth', a list of layer-name patterns or a callable."),
    ),
    ("not-a-list", 5, TypeError, _must_be("groups", "a list")),
    ("empty", [], ValueError, _must_be("groups", "a non-empty list")),
    (
        "non-str-entry",
        ["g0", 3],
        TypeError,
        _says("`groups` entries must be layer-name patterns (str) or non-empty lists of them."),
    ),
]:
    CASES += case(f"LeRaC-groups-{label}", lambda g=groups: lerac(groups=g), error, match)
CASES += case(
    "LeRaC.rates-model-not-a-model",
    lambda: lerac().rates("model", [0], 1),
    TypeError,
    _must_be_a("model", "a keras.Model"),
)
CASES += checked(
    "LeRaC.rates",
    "steps_per_epoch",
    lambda v: lerac().rates(tiny_model(), [0], steps_per_epoch=v),
    "int",
    "an integer >= 1 or None",
    0,
)

# depth_groups
CASES += case(
    "depth_groups-model-not-a-model",
    lambda: kc.depth_groups(keras.layers.Dense(2)),
    TypeError,
    _must_be_a("model", "a keras.Model"),
)

# LeRaC's schedule math
CASES += checked(
    "log_spaced_rates",
    "num_groups",
    lambda v: schedules.log_spaced_rates(v, 1e-1, 1e-3),
    "int",
    INT_1,
    0,
)
CASES += checked(
    "log_spaced_rates",
    "highest_rate",
    lambda v: schedules.log_spaced_rates(3, v, 1e-3),
    "number",
    POSITIVE,
    0.0,
)
CASES += checked(
    "log_spaced_rates",
    "lowest_rate",
    lambda v: schedules.log_spaced_rates(3, 1e-1, v),
    "number",
    "a finite number in (0, 0.1]",
    1.0,
)
CASES += checked(
    "lerac_elapsed_units",
    "steps_per_unit",
    lambda v: schedules.lerac_elapsed_units(3, v),
    "int",
    INT_1,
    0,
)
CASES += checked(
    "lerac_scales", "k", lambda v: schedules.lerac_scales([-1.0], 0, v), "number", POSITIVE, 0
)
CASES += checked(
    "lerac_scales",
    "update",
    lambda v: schedules.lerac_scales([-1.0], 0, 2, update=v),
    "choice",
    "one of ('exponential', 'linear', 'stepwise')",
)
CASES += checked(
    "lerac_scales",
    "c",
    lambda v: schedules.lerac_scales([-1.0], 0, 2, c=v),
    "number",
    "a finite number > 1",
    1.0,
)
CASES += case(
    "lerac_scales-log_ratios-nan",
    lambda: schedules.lerac_scales([NAN], 0, 2),
    ValueError,
    _must_be("log_ratios", "a 1-D array of finite numbers"),
)
CASES += checked(
    "held_schedule_step",
    "hold_steps",
    lambda v: schedules.held_schedule_step(5, v),
    "int",
    "an integer >= 0",
    -1,
)

# GaussianSmoothing and the kernel math
CASES += checked(
    "GaussianSmoothing", "sigma", lambda v: kc.GaussianSmoothing(sigma=v), "number", SIGMA, -0.1
)
CASES += checked(
    "GaussianSmoothing",
    "kernel_size",
    lambda v: kc.GaussianSmoothing(kernel_size=v),
    "int",
    INT_1,
    0,
)
CASES += case(
    "GaussianSmoothing-kernel_size-even",
    lambda: kc.GaussianSmoothing(kernel_size=2),
    ValueError,
    _must_be("kernel_size", ODD),
)
CASES += checked(
    "GaussianSmoothing",
    "smooth_at_inference",
    lambda v: kc.GaussianSmoothing(smooth_at_inference=v),
    "bool",
    BOOL,
)
CASES += checked(
    "GaussianSmoothing",
    "bypass_tolerance",
    lambda v: kc.GaussianSmoothing(bypass_tolerance=v),
    "number",
    TOLERANCE,
    1.0,
)
CASES += checked(
    "GaussianSmoothing",
    "data_format",
    lambda v: kc.GaussianSmoothing(data_format=v),
    "choice",
    DATA_FORMAT,
)
CASES += checked(
    "GaussianSmoothing.set_sigma",
    "sigma",
    lambda v: kc.GaussianSmoothing().set_sigma(v),
    "number",
    SIGMA,
    -1.0,
)
CASES += case(
    "GaussianSmoothing-inputs-rank-2",
    lambda: kc.GaussianSmoothing()(keras.Input(batch_shape=(4, 3))),
    ValueError,
    _says(
        "GaussianSmoothing smooths `inputs` of rank 3 (batch, steps, channels) or 4 "
        "(batch, height, width, channels)."
    ),
)
CASES += case(
    "GaussianSmoothing-inputs-other-channels-than-built",
    lambda: built_smoothing()(np.zeros((2, 8, 8, 5), "float32")),
    ValueError,
    _says(
        "`inputs` must have rank 4 and 3 channels, as when this GaussianSmoothing layer was built."
    ),
)
for function in (kc.gaussian_kernel, kc.off_centre_mass):
    where = function.__name__
    CASES += checked(where, "sigma", lambda v, f=function: f(v, 3), "number", SIGMA, -1.0)
    CASES += checked(where, "kernel_size", lambda v, f=function: f(1.0, v), "int", INT_1, 0)
    CASES += case(
        f"{where}-kernel_size-even",
        lambda f=function: f(1.0, 4),
        ValueError,
        _must_be("kernel_size", ODD),
    )
    CASES += checked(where, "rank", lambda v, f=function: f(1.0, 3, v), "int", RANK, 0)
CASES += checked("bypass_sigma", "kernel_size", lambda v: kc.bypass_sigma(v), "int", INT_1, 0)
CASES += case(
    "bypass_sigma-kernel_size-even",
    lambda: kc.bypass_sigma(2),
    ValueError,
    _must_be("kernel_size", ODD),
)
CASES += checked("bypass_sigma", "rank", lambda v: kc.bypass_sigma(3, v), "int", RANK, 0)
CASES += checked(
    "bypass_sigma", "bypass_tolerance", lambda v: kc.bypass_sigma(3, 2, v), "number", TOLERANCE, 1.0
)
CASES += checked(
    "sigma_at_epoch", "initial_sigma", lambda v: kc.sigma_at_epoch(v, 3), "number", SIGMA, -1.0
)
CASES += checked(
    "sigma_at_epoch", "epoch", lambda v: kc.sigma_at_epoch(1.0, v), "int", "an integer >= 0", -1
)
CASES += checked(
    "sigma_at_epoch", "factor", lambda v: kc.sigma_at_epoch(1.0, 3, v), "number", FRACTION, 1.5
)
CASES += checked(
    "sigma_at_epoch", "every", lambda v: kc.sigma_at_epoch(1.0, 3, 0.9, v), "duration", duration()
)
CASES += case(
    "sigma_at_epoch-every-zero",
    lambda: kc.sigma_at_epoch(1.0, 3, 0.9, 0),
    ValueError,
    _must_be("every", INT_1),
)
CASES += case(
    "sigma_at_epoch-every-fraction-without-epochs",
    lambda: kc.sigma_at_epoch(1.0, 3, 0.9, 0.025),
    ValueError,
    _says("`every` is a fraction of the fit (0.025): pass the fit's `epochs`."),
)
CASES += checked(
    "bypass_epoch", "initial_sigma", lambda v: kc.bypass_epoch(v), "number", SIGMA, -1.0
)
CASES += checked(
    "bypass_epoch", "factor", lambda v: kc.bypass_epoch(1.0, v), "number", FRACTION, 0.0
)
CASES += checked(
    "bypass_epoch", "every", lambda v: kc.bypass_epoch(1.0, every=v), "duration", duration()
)
CASES += case(
    "bypass_epoch-every-zero",
    lambda: kc.bypass_epoch(1.0, every=0),
    ValueError,
    _must_be("every", INT_1),
)
CASES += checked(
    "bypass_epoch", "kernel_size", lambda v: kc.bypass_epoch(1.0, kernel_size=v), "int", INT_1, 0
)
CASES += case(
    "bypass_epoch-kernel_size-even",
    lambda: kc.bypass_epoch(1.0, kernel_size=4),
    ValueError,
    _must_be("kernel_size", ODD),
)
CASES += checked("bypass_epoch", "rank", lambda v: kc.bypass_epoch(1.0, rank=v), "int", RANK, 3)
CASES += checked(
    "bypass_epoch",
    "bypass_tolerance",
    lambda v: kc.bypass_epoch(1.0, bypass_tolerance=v),
    "number",
    TOLERANCE,
    1.0,
)

# add_smoothing, smoothing_layers, SigmaDecay
REWRITABLE = _says(
    "`model` must be a Functional or Sequential keras.Model: `add_smoothing` "
    "rewrites their layer graph or list, while a subclassed model's `call` is "
    "Python code it cannot change."
)
CASES += case("add_smoothing-model-str", lambda: kc.add_smoothing("model"), TypeError, REWRITABLE)
CASES += case(
    "add_smoothing-model-subclassed", lambda: kc.add_smoothing(Subclassed()), ValueError, REWRITABLE
)
CASES += case(
    "add_smoothing-model-without-convolution",
    lambda: kc.add_smoothing(dense_model()),
    ValueError,
    _says("`model` must contain a 1-D or 2-D convolution for `add_smoothing` to smooth after."),
)
CASES += checked(
    "add_smoothing",
    "sigma",
    lambda v: kc.add_smoothing(tiny_model(), sigma=v),
    "number",
    SIGMA,
    -1.0,
)
CASES += checked(
    "add_smoothing",
    "kernel_size",
    lambda v: kc.add_smoothing(tiny_model(), kernel_size=v),
    "int",
    INT_1,
)
CASES += case(
    "add_smoothing-kernel_size-even",
    lambda: kc.add_smoothing(tiny_model(), kernel_size=4),
    ValueError,
    _must_be("kernel_size", ODD),
)
for arg in ("skip_pointwise", "recursive", "smooth_at_inference"):
    CASES += checked(
        "add_smoothing",
        arg,
        lambda v, a=arg: kc.add_smoothing(tiny_model(), **{a: v}),
        "bool",
        BOOL,
    )
CASES += checked(
    "add_smoothing",
    "bypass_tolerance",
    lambda v: kc.add_smoothing(tiny_model(), bypass_tolerance=v),
    "number",
    TOLERANCE,
    1.0,
)
for label, exclude, error, match in [
    (
        "non-str-pattern",
        [3],
        TypeError,
        _says(
            "`exclude` must be None, a callable taking a layer, or layer-name patterns (fnmatch)."
        ),
    ),
    (
        "unknown-name",
        "shortcut*",
        ValueError,
        _says("`exclude` must name layers of the model: ['shortcut*'] match no layer of 'tiny'."),
    ),
    (
        "one-unknown-name",
        ["conv", "typo"],
        ValueError,
        _says("`exclude` must name layers of the model: ['typo'] match no layer of 'tiny'."),
    ),
]:
    CASES += case(
        f"add_smoothing-exclude-{label}",
        lambda e=exclude: kc.add_smoothing(tiny_model(), exclude=e),
        error,
        match,
    )
CASES += case(
    "smoothing_layers-model-str",
    lambda: kc.smoothing_layers("model"),
    TypeError,
    _must_be_a("model", "a keras.Model"),
)
CASES += checked(
    "SigmaDecay", "factor", lambda v: kc.SigmaDecay(factor=v), "number", FRACTION, 1.01
)
CASES += checked("SigmaDecay", "every", lambda v: kc.SigmaDecay(every=v), "duration", duration())
CASES += case(
    "SigmaDecay-every-zero", lambda: kc.SigmaDecay(every=0), ValueError, _must_be("every", INT_1)
)

# low_frequency_crop and LowFrequencyCrop
RANK_3_OR_4 = _says("`images` must have rank 3 (H, W, C) or 4 (batch first).")
CASES += checked(
    "low_frequency_crop", "size", lambda v: kc.low_frequency_crop(images(2, 16), v), "int", SIZE
)
CASES += case(
    "low_frequency_crop-size-zero",
    lambda: kc.low_frequency_crop(images(2, 16), (8, 0)),
    ValueError,
    _must_be("size", INT_1),
)
CASES += case(
    "low_frequency_crop-size-above-image",
    lambda: kc.low_frequency_crop(images(2, 16), 17),
    ValueError,
    _says(
        "`size` must not exceed the image height (16): low-frequency cropping keeps "
        "a band of the spectrum."
    ),
)
CASES += checked(
    "low_frequency_crop",
    "data_format",
    lambda v: kc.low_frequency_crop(images(2, 16), 8, v),
    "choice",
    DATA_FORMAT,
)
CASES += case(
    "low_frequency_crop-images-rank-2",
    lambda: kc.low_frequency_crop(np.zeros((16, 16), "float32"), 8),
    ValueError,
    RANK_3_OR_4,
)
CASES += checked("LowFrequencyCrop", "size", lambda v: kc.LowFrequencyCrop(v), "int", SIZE)
CASES += case(
    "LowFrequencyCrop-size-zero",
    lambda: kc.LowFrequencyCrop((8, 0)),
    ValueError,
    _must_be("size", INT_1),
)
CASES += checked(
    "LowFrequencyCrop",
    "data_format",
    lambda v: kc.LowFrequencyCrop(8, data_format=v),
    "choice",
    DATA_FORMAT,
)
CASES += case(
    "LowFrequencyCrop-inputs-rank-2",
    lambda: kc.LowFrequencyCrop(8)(keras.Input(batch_shape=(2, 16))),
    ValueError,
    RANK_3_OR_4,
)
CASES += case(
    "LowFrequencyCrop-size-above-input",
    lambda: kc.LowFrequencyCrop(17)(keras.Input((16, 16, 3))),
    ValueError,
    _says("`size` must not exceed the input's spatial size (None, 16, 16, 3)."),
)

# Stage and EfficientTrain
CASES += checked("Stage", "epochs", lambda v: kc.Stage(v), "int", "an integer >= 0", -1)
CASES += checked("Stage", "size", lambda v: kc.Stage(2, v), "int", SIZE)
CASES += case("Stage-size-zero", lambda: kc.Stage(2, 0), ValueError, _must_be("size", INT_1))
CASES += checked(
    "Stage",
    "magnitude",
    lambda v: kc.Stage(2, 8, v),
    "number",
    "a finite number in [0, 10] or None",
    11,
)
for label, stages, error, match in [
    (
        "str",
        "paper",
        TypeError,
        _says(
            "`stages` must be a non-empty list of (epochs, size, magnitude) rows; for the "
            "published schedules use `EfficientTrain.paper()` or `EfficientTrain.plus()`."
        ),
    ),
    ("empty", [], ValueError, _says("`stages` must cover at least one epoch.")),
    ("int-row", [5], TypeError, _says("Each of `stages` must be (epochs, size, magnitude).")),
    # A bad field of a row is checked under the field's own name.
    (
        "no-epoch",
        [(0, 8, 1)],
        ValueError,
        _says(
            "`epochs` of a stage must be >= 1: a stage of 0 epochs never runs; drop it from "
            "`stages`."
        ),
    ),
    (
        "bad-magnitude",
        [(2, 8, 11)],
        ValueError,
        _must_be("magnitude", "a finite number in [0, 10] or None"),
    ),
]:
    CASES += case(
        f"EfficientTrain-stages-{label}", lambda s=stages: kc.EfficientTrain(s), error, match
    )
CASES += checked("EfficientTrain", "image_size", lambda v: et(image_size=v), "int", SIZE)
CASES += case(
    "EfficientTrain-image_size-zero",
    lambda: et(image_size=0),
    ValueError,
    _must_be("image_size", INT_1),
)
CASES += checked(
    "EfficientTrain", "downsample", lambda v: et(downsample=v), "choice", "one of ('fft', 'resize')"
)
for label, value_range, error, match in [
    ("not-a-pair", 255, TypeError, _must_be("value_range", "a (low, high) pair of numbers")),
    ("str", ("a", "b"), TypeError, _must_be("value_range", "a finite number")),
    ("nan", (0, NAN), ValueError, _must_be("value_range", "a finite number")),
    ("reversed", (1, 0), ValueError, _says("`value_range` must be (low, high) with low < high.")),
]:
    CASES += case(
        f"EfficientTrain-value_range-{label}", lambda r=value_range: et(value_range=r), error, match
    )
CASES += checked("EfficientTrain", "num_ops", lambda v: et(num_ops=v), "int", INT_1, 0)
CASES += case(
    "EfficientTrain-augmenter-not-callable",
    lambda: et(augmenter=3),
    TypeError,
    _must_be("augmenter", "a callable or None"),
)
CASES += checked(
    "EfficientTrain", "seed", lambda v: et(seed=v), "int", "an integer >= 0 or None", -1
)
CASES += checked(
    "EfficientTrain.paper", "epochs", lambda v: kc.EfficientTrain.paper(v), "int", INT_1, 0
)
CASES += checked(
    "EfficientTrain.paper", "image_size", lambda v: kc.EfficientTrain.paper(10, v), "int", SIZE
)
CASES += case(
    "EfficientTrain.paper-image_size-zero",
    lambda: kc.EfficientTrain.paper(10, 0),
    ValueError,
    _must_be("image_size", INT_1),
)
CASES += checked(
    "EfficientTrain.plus",
    "budget_epochs",
    lambda v: kc.EfficientTrain.plus(v),
    "number",
    POSITIVE,
    0,
)
CASES += case(
    "EfficientTrain.plus-sizes-int",
    lambda: kc.EfficientTrain.plus(sizes=96),
    TypeError,
    _must_be("sizes", "a list"),
)
CASES += case(
    "EfficientTrain.plus-sizes-too-few",
    lambda: kc.EfficientTrain.plus(sizes=[96, 160]),
    ValueError,
    _says("`sizes` must list 10 stage sizes."),
)
CASES += checked(
    "EfficientTrain.from_schedule",
    "schedule",
    lambda v: kc.EfficientTrain.from_schedule(v, 10),
    "choice",
    "one of ('paper', 'plus')",
)
CASES += checked(
    "EfficientTrain.stage_at", "epoch", lambda v: et().stage_at(v), "int", "an integer in [0, 1]", 2
)
CASES += case(
    "EfficientTrain.apply-dataset-numpy",
    lambda: et().apply(images(), batch_size=2),
    TypeError,
    _says("`dataset` must be a tf.data.Dataset."),
)
CASES += case(
    "EfficientTrain.apply-dataset-empty",
    lambda: et().apply(image_dataset().take(0).batch(2)),
    ValueError,
    _says("`dataset` must hold at least one batch."),
)
CASES += case(
    "EfficientTrain.apply-dataset-one-item",
    lambda: et().apply(tf.data.Dataset.from_tensor_slices(images()).batch(2)),
    ValueError,
    _says(
        "`dataset` must yield (images, labels) or (images, labels, "
        "sample_weights) with images a dense tensor."
    ),
)
CASES += case(
    "EfficientTrain.apply-dataset-rank-2-images",
    lambda: et().apply(tf.data.Dataset.from_tensor_slices((np.zeros((8, 5)), labels())).batch(2)),
    ValueError,
    _says("`dataset` images must be numeric (H, W, C) or (batch, H, W, C) tensors."),
)
CASES += case(
    "EfficientTrain.apply-dataset-unknown-size",
    lambda: et().apply(
        tf.data.Dataset.from_generator(
            lambda: iter([(images(1)[0], 0)]),
            output_signature=(tf.TensorSpec((None, None, 3)), tf.TensorSpec((), tf.int32)),
        )
    ),
    ValueError,
    _says("`dataset` images must have a fixed height and width (resize them first)."),
)
CASES += checked(
    "EfficientTrain.apply",
    "batch_size",
    lambda v: et().apply(image_dataset(), batch_size=v),
    "int",
    INT_1,
    0,
)
CASES += case(
    "EfficientTrain.apply-batch_size-with-batched-dataset",
    lambda: et().apply(image_dataset().batch(2), batch_size=2),
    ValueError,
    _says("`batch_size` must be None for a batched `dataset`."),
)
CASES += checked(
    "EfficientTrain.apply",
    "drop_remainder",
    lambda v: et().apply(image_dataset(), 2, drop_remainder=v),
    "bool",
    BOOL,
)
CASES += case(
    "EfficientTrain.apply-stage-above-image",
    lambda: kc.EfficientTrain([(2, 20, None)]).apply(image_dataset().batch(2)),
    ValueError,
    _says("`stages` sizes must not exceed the image size (8, 8)."),
)
CASES += case(
    "EfficientTrain.apply-image_size-mismatch",
    lambda: et(image_size=32).apply(image_dataset().batch(2)),
    ValueError,
    _says("`dataset` images are (8, 8), but `image_size`=(32, 32)."),
)
CASES += case(
    "plot_efficient_train-et-str",
    lambda: kc.plot_efficient_train("et", "x.png"),
    TypeError,
    _must_be_a("et", "a kc.EfficientTrain"),
)
CASES += case(
    "plot_efficient_train-path-int",
    lambda: kc.plot_efficient_train(et(image_size=8), 3),
    TypeError,
    _must_be("path", PATH),
)

# DoCL, DoCLLogits, CosineRestarts
CASES += checked(
    "DoCL", "warmup_epochs", lambda v: kc.DoCL(warmup_epochs=v), "duration", duration(0)
)
CASES += case(
    "DoCL-warmup_epochs-negative",
    lambda: kc.DoCL(warmup_epochs=-1),
    ValueError,
    _must_be("warmup_epochs", "an integer >= 0"),
)
CASES += checked(
    "DoCL", "episode_epochs", lambda v: kc.DoCL(episode_epochs=v), "int", INT_1, [2, 0]
)
for label, episodes, match in [
    ("empty", [], _must_be("episode_epochs", "a non-empty list")),
    (
        "unknown-name",
        "paper",
        _must_be("episode_epochs", "'official', an int >= 1 or a list of them"),
    ),
]:
    CASES += case(
        f"DoCL-episode_epochs-{label}",
        lambda e=episodes: kc.DoCL(episode_epochs=e),
        ValueError,
        match,
    )
CASES += checked("DoCL", "tau", lambda v: kc.DoCL(tau=v), "number", POSITIVE, 0.0)
CASES += checked(
    "DoCL", "gamma", lambda v: kc.DoCL(gamma=v), "number", "a finite number in [0, 1)", 1.0
)
for arg in ("fraction_decay", "min_fraction", "initial_fraction"):
    CASES += checked("DoCL", arg, lambda v, a=arg: kc.DoCL(**{a: v}), "number", FRACTION, 0.0)
for arg in ("refresh", "from_logits"):
    CASES += checked("DoCL", arg, lambda v, a=arg: kc.DoCL(**{a: v}), "bool", BOOL)
CASES += checked(
    "DoCL",
    "state_dtype",
    lambda v: kc.DoCL(state_dtype=v),
    "choice",
    "one of ('float16', 'float32')",
)
for arg in ("buffer_steps", "shuffle_window"):
    CASES += checked("DoCL", arg, lambda v, a=arg: kc.DoCL(**{a: v}), "int", INT_1, 0)
CASES += checked("DoCL", "seed", lambda v: kc.DoCL(seed=v), "int", "an integer >= 0 or None", -1)
for arg in ("backup_dir", "log_dir"):
    CASES += checked("DoCL", arg, lambda v, a=arg: kc.DoCL(**{a: v}), "path", f"{PATH} or None")
_KEYS = (
    "`dataset` items must be (x, y) pairs, or dicts with `keys`=(input_key, label_key) "
    "naming two of their entries. Reading the first item with keys="
)
_DOCL_DATASETS = [
    (
        "infinite",
        lambda: image_dataset().repeat(),
        ValueError,
        _says("`dataset` must be finite: DoCL keeps a score per example."),
    ),
    (
        "empty",
        lambda: image_dataset().take(0),
        ValueError,
        _says("`dataset` is empty: DoCL needs at least one example."),
    ),
    (
        "batched",
        lambda: image_dataset().batch(4),
        ValueError,
        _says(
            "`dataset` must be unbatched, with labels of rank 0 (class index) or 1 (one-hot, of "
            "known width): DoCL batches it."
        ),
    ),
    (
        "three-items",
        lambda: tf.data.Dataset.from_tensor_slices((images(), labels(), labels())),
        ValueError,
        _says("`dataset` must yield `(x, y)` pairs."),
    ),
    (
        "tuple-of-three-arrays",
        lambda: (images(), labels(), labels()),
        ValueError,
        _says("`dataset` as a tuple must be (x, y)."),
    ),
    (
        "mismatched-lengths",
        lambda: (images(8), labels(6)),
        ValueError,
        _says("`dataset` arrays must have the same length."),
    ),
    (
        "list-of-scalars",
        lambda: [1, 2, 3],
        ValueError,
        _says(_KEYS + "None failed: TypeError: 'int' object is not subscriptable"),
    ),
    (
        "dicts-without-keys",
        lambda: [{"x": np.zeros(2), "y": 0}] * 4,
        ValueError,
        _says(_KEYS + "None failed: KeyError: 0"),
    ),
    (
        "int",
        lambda: 5,
        TypeError,
        _says(
            "`dataset` must be a tf.data.Dataset, a tuple (x, y) of arrays or a random-access "
            "source."
        ),
    ),
]
for label, make, error, match in _DOCL_DATASETS:
    CASES += case(
        f"DoCL.apply-dataset-{label}",
        lambda m=make: kc.DoCL().apply(m(), batch_size=2),
        error,
        match,
    )
CASES += case(
    "DoCL.apply-keys-unknown",
    lambda: kc.DoCL().apply([{"x": np.zeros(2), "y": 0}] * 4, 2, keys=("image", "y")),
    ValueError,
    _says(_KEYS + "('image', 'y') failed: KeyError: 'image'"),
)
CASES += case(
    "DoCL.apply-keys-str",
    lambda: kc.DoCL().apply([{"x": np.zeros(2), "y": 0}] * 4, 2, keys="x"),
    TypeError,
    _must_be("keys", "None or an (input_key, label_key) pair"),
)
CASES += checked(
    "DoCL.apply",
    "batch_size",
    lambda v: kc.DoCL().apply((images(), labels()), batch_size=v),
    "int",
    INT_1,
    0,
)
CASES += case(
    "DoCL.apply-batch_size-above-data-with-drop_remainder",
    lambda: kc.DoCL().apply((images(), labels()), 16, drop_remainder=True),
    ValueError,
    _says(
        "`batch_size` (16) exceeds the 8 examples and `drop_remainder=True` would train on nothing."
    ),
)
CASES += checked(
    "DoCL.apply",
    "drop_remainder",
    lambda v: kc.DoCL().apply((images(), labels()), 2, drop_remainder=v),
    "bool",
    BOOL,
)
CASES += checked(
    "DoCL.epoch_plan", "epoch", lambda v: applied_docl().epoch_plan(v), "int", "an integer >= 0", -1
)
CASES += checked(
    "docl.epoch_plan", "epoch", lambda v: kc.docl.epoch_plan(v, 10), "int", "an integer >= 0", -1
)
CASES += checked(
    "DoCL.learning_rate_schedule",
    "epochs",
    lambda v: applied_docl().learning_rate_schedule(0.1, v),
    "int",
    INT_1,
    0,
)
CASES += checked(
    "DoCL.learning_rate_schedule",
    "max_learning_rate",
    lambda v: applied_docl().learning_rate_schedule(v, 4),
    "number",
    POSITIVE,
    0.0,
)
CASES += checked(
    "DoCL.memory_per_example",
    "num_classes",
    lambda v: kc.DoCL().memory_per_example(v),
    "int",
    "an integer >= 2 or None",
    1,
)
CASES += case("DoCL.plot-path-int", lambda: kc.DoCL().plot(3), TypeError, _must_be("path", PATH))
CASES += checked(
    "DoCLLogits",
    "batch_size",
    lambda v: kc.DoCLLogits(batch_size=v),
    "int",
    "an integer >= 1 or None",
    0,
)
CASES += checked(
    "DoCLLogits", "buffer_steps", lambda v: kc.DoCLLogits(buffer_steps=v), "int", INT_1, 0
)
CASES += checked("DoCLLogits", "from_logits", lambda v: kc.DoCLLogits(from_logits=v), "bool", BOOL)
CASES += case(
    "CosineRestarts-cycle_steps-int",
    lambda: kc.CosineRestarts(5, 0.1),
    TypeError,
    _must_be("cycle_steps", "a list"),
)
CASES += case(
    "CosineRestarts-cycle_steps-empty",
    lambda: kc.CosineRestarts([], 0.1),
    ValueError,
    _must_be("cycle_steps", "a non-empty list"),
)
CASES += checked(
    "CosineRestarts", "cycle_steps", lambda v: kc.CosineRestarts([4, v], 0.1), "int", INT_1, 0
)
CASES += checked(
    "CosineRestarts",
    "max_learning_rate",
    lambda v: kc.CosineRestarts([4], v),
    "number",
    POSITIVE,
    0.0,
)
CASES += checked(
    "CosineRestarts",
    "min_learning_rate",
    lambda v: kc.CosineRestarts([4], 0.1, v),
    "number",
    "a finite number in [0, 0.1]",
    0.2,
)
for arg in ("max_decay", "min_decay"):
    CASES += checked(
        "CosineRestarts",
        arg,
        lambda v, a=arg: kc.CosineRestarts([4], 0.1, **{a: v}),
        "number",
        POSITIVE,
        0.0,
    )
CASES += case(
    "CosineRestarts-name-int",
    lambda: kc.CosineRestarts([4], 0.1, name=3),
    TypeError,
    _must_be("name", "a str"),
)

# Plot helpers
CASES += case(
    "plot_curves-curves-lengths",
    lambda: plotting.plot_curves([0, 1, 2], {"a": [1, 2]}, "x.png"),
    ValueError,
    _says("`curves` must have one value per x value ((3,))."),
)
CASES += case(
    "plot_curves-curves-list",
    lambda: plotting.plot_curves([0, 1], [[1, 2]], "x.png"),
    TypeError,
    _must_be("curves", "a dict or a (names, table) pair"),
)
CASES += case(
    "plot_curves-path-None",
    lambda: plotting.plot_curves([0], {"a": [1]}, None),
    TypeError,
    _must_be("path", PATH),
)
CASES += case(
    "plot_lerac-lerac-str",
    lambda: plotting.plot_lerac("lerac", None, [0], "x.png"),
    TypeError,
    _must_be_a("lerac", "a kc.LeRaC"),
)


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
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=list(metrics),
    )
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
    Case(
        "LeRaC-groups-unknown-name",
        lerac_fit(groups=["conv", "nope"]),
        ValueError,
        _says(
            "`groups` entry 'nope' matches no layer of model 'tiny'. Layers with trainable "
            "variables: ['conv', 'head']"
        ),
    ),
    Case(
        "LeRaC-groups-leave-a-layer-out",
        lerac_fit(groups=["conv"]),
        ValueError,
        _says(
            "LeRaC groups=[patterns] leaves trainable variables of model 'tiny' without a "
            "group: ['head/kernel', 'head/bias']. Every trainable variable needs a learning "
            "rate: pass `groups` as a list of layer-name patterns or a callable that covers "
            "them."
        ),
    ),
    Case(
        "LeRaC-groups-callable-returns-str",
        lerac_fit(groups=lambda m: "conv"),
        TypeError,
        _says(
            "`groups` (a callable) must return a list of groups, each a layer, a variable or "
            "a list of them."
        ),
    ),
    Case(
        "LeRaC-groups-callable-returns-names",
        lerac_fit(groups=lambda m: [["conv"], ["head"]]),
        TypeError,
        _says("`groups` (a callable) must return groups of layers or variables of the model."),
    ),
    Case(
        "LeRaC-max_learning_rate-above-optimizer-rate",
        lerac_fit(max_learning_rate=1.0),
        ValueError,
        _says(
            "`max_learning_rate` must not exceed the optimizer's learning rate (0.1): LeRaC "
            "raises rates to it."
        ),
    ),
    Case(
        "LeRaC-min_learning_rate-above-optimizer-rate",
        lerac_fit(min_learning_rate=0.5),
        ValueError,
        _says("`min_learning_rate` must not exceed the initial rate of the first group (0.1)."),
    ),
    Case(
        "LeRaC-optimizer-learning_rate-nan",
        lerac_fit(learning_rate=NAN),
        ValueError,
        _says("The optimizer's `learning_rate` must be a finite number > 0 at step 0 for LeRaC."),
    ),
    Case(
        "LeRaC-unknown-epoch-length",
        lerac_fit(dataset=_unknown_length),
        ValueError,
        _says(
            "LeRaC(unit='epoch') needs the number of steps per epoch, and this dataset's "
            "length is unknown: pass `steps_per_epoch` to `fit` or to `LeRaC`, or use "
            "unit='step'."
        ),
    ),
    Case(
        "SigmaDecay-model-without-smoothing",
        sigma_decay_fit,
        ValueError,
        _says(
            "SigmaDecay found no GaussianSmoothing layer in `model` 'tiny'. Insert them with "
            "`kc.add_smoothing(model)` or add `kc.GaussianSmoothing` layers to the model."
        ),
    ),
    Case(
        "EfficientTrain-fit-epochs-mismatch",
        et_fit(epochs=3),
        ValueError,
        _says(
            "`stages` cover 2 epochs but `fit` runs epochs=3: pass `epochs=et.epochs` (a "
            "resumed run keeps the same total)."
        ),
    ),
    Case(
        "EfficientTrain-model-fixed-size",
        et_fit(image_size=8),
        ValueError,
        _says(
            "`model` must accept the EfficientTrain image size (4, 4), but its input shape "
            "(None, 8, 8, 3) fixes the spatial size"
        ),
    ),
    Case(
        "EfficientTrain-apply-never-called",
        et_fit(apply=False),
        ValueError,
        _says(
            "EfficientTrain: train on `et.apply(dataset)`; `apply` was never called on this object."
        ),
    ),
    Case(
        "DoCL-metric-missing",
        docl_fit(metric=False),
        ValueError,
        _says(
            "DoCL reads the logits through its metric: compile the model with "
            "`metrics=[..., docl.metric()]`."
        ),
    ),
    Case(
        "DoCL-apply-never-called",
        docl_fit(apply=False),
        ValueError,
        # JAX builds the metric from a first batch before any callback runs: its own message
        # (the batch size is unknown) names the same fix.
        re.escape("`docl.apply(dataset, batch_size=...)`"),
    ),
    Case(
        "DoCL-steps_per_epoch",
        docl_fit(steps_per_epoch=1),
        ValueError,
        _says(
            "DoCL draws a new subset every epoch and each epoch ends with its data: do not "
            "pass `steps_per_epoch` to `fit`."
        ),
    ),
    Case(
        "DoCL-labels-above-classes",
        docl_fit(labels_=labels() + 3),
        ValueError,
        _says("`labels` do not match the model's output width 3: labels range [3, 5], shape (8,)."),
    ),
    Case(
        "DoCL-model-not-a-classifier",
        docl_fit(classes=1),
        ValueError,
        _says(
            "`model` must be a classifier whose output is `(batch, num_classes)` logits with "
            "num_classes >= 2 for DoCL."
        ),
    ),
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
