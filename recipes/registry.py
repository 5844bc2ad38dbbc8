"""Which recipes `kc-recipes --recipe NAME` knows: the entry-point group `keras_curriculum.recipes`.

Why entry points: the built-in recipes are declared in setup.cfg like any other package's, so a
third-party package adds `NAME = package.module:Class` to the same group in its own metadata
and its recipes appear in `kc-recipes --help` and run by name, with no change here. The names
and class paths come from installed metadata, so listing them imports nothing; `--help` reads
each class's one-line `summary` from its source (`ast`, the module is not executed), and only
imports a class whose summary is not a string literal there. A recipe's module, and with it
Keras and TensorFlow, is imported only when that recipe is run. The cost: a built-in recipe
added to setup.cfg is seen after the package is installed again (`pip install -e .`).

`--recipe package.module:Class` runs a class that is not registered; the module is imported
from the current directory first (as `python -m` would), then from the installed packages.
"""

import ast
import importlib
import importlib.metadata
import importlib.util
import os
import sys

from .base import check_recipe_class

GROUP = "keras_curriculum.recipes"


def _entry_points():
    """{name: entry point}, in the order of the installed metadata."""
    points = {}
    for point in importlib.metadata.entry_points(group=GROUP):
        points.setdefault(point.name, point)
    return points


def names():
    """The registered recipe names."""
    return tuple(_entry_points())


def is_class_path(spec):
    return ":" in spec


def _import_class(spec):
    module_name, _, class_name = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name + ".").startswith(error.name + "."):
            raise ValueError(
                f"`--recipe` {spec!r}: no module {error.name!r} in the current "
                "directory or the installed packages."
            ) from error
        raise
    cls = module
    for part in class_name.split("."):
        if not hasattr(cls, part):
            raise ValueError(f"`--recipe` {spec!r}: module {module_name!r} has no {class_name!r}.")
        cls = getattr(cls, part)
    return cls


def recipe_class(spec):
    """The checked recipe class of a registered name or of `package.module:Class`.

    Raises ValueError for an unknown name or path, `RecipeError` (a TypeError) naming what
    the class lacks. No data is loaded.
    """
    if is_class_path(spec):
        cls = _import_class(spec)
    else:
        points = _entry_points()
        if spec not in points:
            raise ValueError(
                f"Unknown recipe {spec!r}. Available: {', '.join(sorted(points))}; "
                "or `package.module:Class` for a recipe of your own."
            )
        cls = points[spec].load()
    check_recipe_class(cls)
    return cls


def _literal_summary(point):
    """The class's `summary = "..."`, read from its module's source without running it."""
    module_name, _, class_name = point.value.partition(":")
    try:
        origin = importlib.util.find_spec(module_name).origin
        with open(origin, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (ImportError, AttributeError, OSError, SyntaxError, TypeError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name.strip():
            for statement in node.body:
                if (
                    isinstance(statement, ast.Assign)
                    and any(getattr(t, "id", None) == "summary" for t in statement.targets)
                    and isinstance(statement.value, ast.Constant)
                    and isinstance(statement.value.value, str)
                ):
                    return statement.value.value
    return None


def summaries():
    """{name: one-line summary} of every registered recipe."""
    result = {}
    for name, point in _entry_points().items():
        summary = _literal_summary(point)
        if summary is None:
            try:
                summary = getattr(point.load(), "summary", "") or ""
            except Exception as error:  # noqa: BLE001 - a broken third-party recipe: list it anyway
                summary = f"(cannot be imported: {type(error).__name__}: {error})"
        result[name] = summary
    return result
