"""`Recipe`: what the comparison runner needs from a dataset and its model.

A recipe is a class: its class attributes (`name`, `summary`, `methods`) are read without
building it, so that `kc-recipes --help` and the checks below cost no data loading; building it
(`__init__`) loads the data. This module imports neither Keras nor TensorFlow at import time.
"""

import abc
import functools
import types

from .protocol import Protocol

METHODS = (
    "conventional",
    "lerac",
    "cbs",
    "lerac+cbs",
    "docl",
    "conventional_upscaled",
    "efficient_train",
)
# Methods that train on images resized to `upscaled_size`, with a model of variable input size.
UPSCALED_METHODS = ("conventional_upscaled", "efficient_train")
# The regime of plain `conventional` training; other regimes' baselines are `conventional_<name>`.
DEFAULT_REGIME = "default"


class RecipeError(TypeError):
    """A class or object that does not fulfil the `Recipe` contract (the message says what)."""


class Recipe(abc.ABC):
    """One dataset, its model and its training protocol, for `kc-recipes` to compare methods on.

    A subclass must define:

    - `name` (class attribute, str): the name in tables and the output folder.
    - `methods` (class attribute, tuple of str): the methods it supports, from `METHODS`.
    - `batch_size` (int >= 1, class attribute or set in `__init__`).
    - `build_model(self, variable_size=False)`: a fresh, uncompiled `keras.Model` that returns
      logits (`variable_size=True`: spatial input dimensions of None, for `UPSCALED_METHODS`).
    - `train_dataset(self, seed, image_size=None)`: batched, shuffled with `seed`, one epoch of
      `(x, y)` (e.g. a `tf.data.Dataset`); `image_size` is set only for `UPSCALED_METHODS`.
    - `test_arrays(self, image_size=None)`: `(x_test, y_test)`, integer labels as numpy.

    What else the runner reads has a default, to override where the protocol differs:

    - `summary` (class attribute): one line for `kc-recipes --help`; write it as a string
      literal so that the help reads it without importing the recipe's module.
    - `description`: the table's title (default `summary`); may depend on `__init__` arguments.
    - `loss`: sparse categorical cross-entropy on logits.
    - `optimizer(self, epochs)`: Adam, learning rate 1e-3.
    - `steps_per_epoch`: counted from `train_dataset(0)`.
    - `test_dataset(self, image_size=None)`: `test_arrays` in batches of 512.
    - `validation_dataset(self, image_size=None)`: what `fit` validates on after every epoch
      (the runner's accuracy-against-time curves); default `test_dataset`. A recipe whose
      protocol is chosen on it returns a split held out of the training set instead.
    - `run_length(cls, length, **options)` (classmethod): the `epochs`, `seeds` (and optionally
      `train_size`) of `kc-recipes --length quick|default|paper`.
    - Method hyperparameters, read-only mappings passed to the package's objects: `lerac`
      (`kc.LeRaC`), `cbs` (`sigma` and `kernel_size` for `kc.add_smoothing`, `factor` and
      `every` for `kc.SigmaDecay`), `docl` (`kc.DoCL`), `efficient_train` (None, or `sizes`,
      `magnitudes`, `value_range` of the 5 stages) and `upscaled_size` (the image side of
      `UPSCALED_METHODS`, required by them).
    - `train_examples(self)`: unbatched training examples in a fixed order, for DoCL (required
      when `methods` has `"docl"`).
    - `build_smoothed_model(self, **smoothing)`: CBS's model (default `kc.add_smoothing` of
      `build_model()`); `efficient_train_examples(self, seed)`: unbatched examples for
      EfficientTrain to batch itself (default None: it rewrites `train_dataset`).

    The constructor's keyword arguments are the runner's `--set KEY=VALUE` options, and
    `train_size` its `--train-size`.

    Protocol (what `kc-recipes --print-protocol` prints; recipes/protocol.py):

    - `protocol_rows(cls, **options)` (classmethod): the `ProtocolValue` rows of the recipe for
      the constructor's `options`, without loading data; the constructor reads its values from
      `cls.protocol(protocol, **options)` so that the printed table is what runs. A recipe
      that takes a `protocol` argument ("paper" or "official") offers `--protocol`.
    - `protocol_options`: constructor arguments that replace a row's value when given.
    - `regime_of(self, method)` and `regime(self, name, epochs)`: the `regimes.Regime`
      (optimizer built from the arm's steps per epoch, Mix-up) a method trains in; the runner
      trains `conventional_<name>` in every regime other than "default" that the compared
      methods use. Default: every method in "default", whose optimizer is `optimizer(epochs)`.
    - `docl_arguments(self, epochs)`: the `kc.DoCL` arguments for a run (default `docl`).

    Example:

    ```python
    class Blobs(Recipe):
        name = "blobs"
        summary = "Gaussian blobs, a dense classifier"
        methods = ("conventional", "lerac")
        batch_size = 32

        def __init__(self, train_size=256):
            rng = np.random.default_rng(0)
            self.y = rng.integers(0, 3, train_size + 64)
            self.x = (rng.normal(size=(len(self.y), 8)) + self.y[:, None]).astype("float32")

        def build_model(self, variable_size=False):
            return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, "relu"),
                                     keras.layers.Dense(3)])

        def train_dataset(self, seed, image_size=None):
            return tf.data.Dataset.from_tensor_slices((self.x[64:], self.y[64:])).shuffle(
                1024, seed=seed).batch(self.batch_size)

        def test_arrays(self, image_size=None):
            return self.x[:64], self.y[:64]
    ```
    docs/adding_a_recipe.md runs a complete one.
    """

    summary = ""
    lerac = types.MappingProxyType({"k": 5, "lowest_lr": 1e-8})  # LeRaC paper Table 1 range
    cbs = types.MappingProxyType({"sigma": 1.0, "kernel_size": 3, "factor": 0.9, "every": 5})
    docl = types.MappingProxyType({})  # the DoCL paper's defaults, as `kc.DoCL`'s
    efficient_train = None
    upscaled_size = None

    @abc.abstractmethod
    def build_model(self, variable_size=False):
        """A fresh `keras.Model` returning logits."""

    @abc.abstractmethod
    def train_dataset(self, seed, image_size=None):
        """One epoch of batched `(x, y)`, shuffled with `seed`."""

    @abc.abstractmethod
    def test_arrays(self, image_size=None):
        """`(x_test, y_test)`, integer labels."""

    # Cached properties are plain defaults: a subclass may assign the attribute in `__init__`.
    @functools.cached_property
    def description(self):
        return self.summary or self.name

    @functools.cached_property
    def loss(self):
        import keras

        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @functools.cached_property
    def steps_per_epoch(self):
        batches = self.train_dataset(0)
        try:
            return len(batches)
        except TypeError:  # a tf.data pipeline of unknown length (e.g. after `filter`)
            raise RecipeError(
                f"Recipe {self.name!r}: its `train_dataset` has no length; set "
                "`steps_per_epoch` in `__init__`."
            ) from None

    def optimizer(self, epochs):
        import keras

        return keras.optimizers.Adam(1e-3)

    def test_dataset(self, image_size=None):
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(self.test_arrays(image_size)).batch(512)

    def validation_dataset(self, image_size=None):
        return self.test_dataset(image_size)

    # `kc-recipes --length`: quick (a smoke run), default (the runner's usual run), paper (the
    # papers' epoch counts: the protocol's `epochs` row, where the recipe has one).
    LENGTHS = ("quick", "default", "paper")

    @classmethod
    def run_length(cls, length, **options):
        """`{"epochs", "seeds"[, "train_size"]}` of a run of `length` (see `LENGTHS`).

        Raises ValueError for a `paper` length the recipe cannot state (no `epochs` row).
        """
        if length not in cls.LENGTHS:
            raise ValueError(f"`length` must be one of {cls.LENGTHS}. Received: {length!r}")
        if length == "quick":
            return {"epochs": 1, "seeds": 1}
        if length == "default":
            return {"epochs": 4, "seeds": 3}
        protocol = options.pop("protocol", None) or "paper"
        try:
            table = cls.protocol(protocol, **options)
        except TypeError:
            table = {}
        if "epochs" not in table:
            raise ValueError(
                f"Recipe {cls.name!r} states no paper epoch count (no `epochs` "
                "row in its protocol): pass --epochs."
            )
        return {"epochs": int(table["epochs"]), "seeds": 3}

    def train_examples(self):
        raise NotImplementedError(
            f"Recipe {self.name!r} defines no `train_examples()`, which DoCL needs."
        )

    def build_smoothed_model(self, **smoothing):
        import keras_curriculum as kc

        return kc.add_smoothing(self.build_model(), **smoothing)

    def efficient_train_examples(self, seed):
        return None

    # The protocol ------------------------------------------------------------------------------

    protocol_options = types.MappingProxyType({})

    @classmethod
    def protocol_rows(cls, **options):
        """The recipe's protocol rows (`protocol.ProtocolValue`); none by default."""
        return []

    @classmethod
    def protocol(cls, protocol="paper", **options):
        """The recipe's `Protocol` under `protocol`, for constructor `options` (no data read)."""
        table = Protocol(
            cls.protocol_rows(**options),
            protocol,
            title=f"{cls.name}: {cls.summary}" if cls.summary else cls.name,
        )
        return table.overridden(
            **{row: options.get(argument) for argument, row in cls.protocol_options.items()}
        )

    def regime_of(self, method):
        """The name of the regime `method` trains in."""
        return DEFAULT_REGIME

    def regime(self, name, epochs):
        """The `regimes.Regime` called `name` for a run of `epochs` epochs."""
        from .regimes import Regime

        if name != DEFAULT_REGIME:
            raise ValueError(f"Recipe {self.name!r} has no regime {name!r}.")
        return Regime(DEFAULT_REGIME, lambda epoch_steps, callbacks: self.optimizer(epochs))

    def docl_arguments(self, epochs):
        """Keyword arguments of `kc.DoCL` for a run of `epochs` epochs."""
        return dict(self.docl)


def _overrides(cls, member):
    return getattr(cls, member) is not getattr(Recipe, member)


def check_recipe_class(cls):
    """Raises `RecipeError` naming what `cls` lacks to be a recipe; reads no data."""
    if not isinstance(cls, type) or not issubclass(cls, Recipe):
        raise RecipeError(
            f"A recipe must be a subclass of keras_curriculum_recipes.Recipe. Received: {cls!r}"
        )
    label = f"Recipe class {cls.__module__}.{cls.__qualname__}"
    missing = sorted(cls.__abstractmethods__)
    missing += [attr for attr in ("name", "methods") if not hasattr(cls, attr)]
    if "docl" in getattr(cls, "methods", ()) and not _overrides(cls, "train_examples"):
        missing.append("train_examples (DoCL is in `methods`)")
    if missing:
        raise RecipeError(
            f"{label} does not define: {', '.join(missing)}. "
            "See the `keras_curriculum_recipes.Recipe` docstring."
        )
    if not isinstance(cls.name, str) or not cls.name:
        raise RecipeError(
            f"{label}: `name` must be a non-empty string. Received: name={cls.name!r}"
        )
    methods = cls.methods
    if isinstance(methods, str) or not methods or any(m not in METHODS for m in methods):
        raise RecipeError(
            f"{label}: `methods` must be a non-empty tuple of names from "
            f"{METHODS}. Received: methods={methods!r}"
        )


def check_recipe(recipe):
    """Raises `RecipeError` for what only a built recipe can tell (attributes set in `__init__`)."""
    check_recipe_class(type(recipe))
    missing = [] if hasattr(recipe, "batch_size") else ["batch_size"]
    needs_size = [m for m in recipe.methods if m in UPSCALED_METHODS]
    if needs_size and recipe.upscaled_size is None:
        missing.append(f"upscaled_size ({', '.join(needs_size)} in `methods`)")
    if missing:
        raise RecipeError(f"Recipe {recipe.name!r} does not define: {', '.join(missing)}.")
    batch_size = recipe.batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise RecipeError(
            f"Recipe {recipe.name!r}: `batch_size` must be an int >= 1. "
            f"Received: batch_size={batch_size!r}"
        )
