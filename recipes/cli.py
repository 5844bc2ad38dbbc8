"""`kc-recipes` (or `python -m keras_curriculum_recipes`): compare curricula on a recipe.

Prints the paper-style table and writes it with the runs' results, plots and TensorBoard logs.

    kc-recipes --recipe fashion_mnist --methods conventional,lerac --seeds 3 --epochs 4
    kc-recipes --recipe fashion_mnist --length quick
    kc-recipes --recipe cifar10 --set model=wrn --set wrn_depth=28 --epochs 200
    kc-recipes --recipe mymodule:MyRecipe --epochs 1 --seeds 1
    kc-recipes --recipe cifar10 --print-protocol --protocol official
    kc-recipes --recipe fashion_mnist --num-processes 2   # 2 JAX processes of this machine

Keras is imported only once a recipe runs: `--help` and argument errors answer at once.
"""

import argparse
import ast
import datetime
import inspect
import os
import shutil
import sys
import tempfile

from . import processes
from . import registry
from .base import METHODS
from .base import RecipeError
from .base import check_recipe
from .protocol import PROTOCOLS

PROG = "kc-recipes"


def recipe_class(spec):
    """The recipe class of a registered name or `package.module:Class`, checked, without data."""
    return registry.recipe_class(spec)


def load_recipe(spec, **kwargs):
    return recipe_class(spec)(**kwargs)


def recipe_listing():
    summaries = registry.summaries()
    width = max(map(len, summaries), default=0) + 2
    lines = [f"  {name:<{width}}{summary}" for name, summary in summaries.items()]
    return (
        "recipes (--recipe NAME):\n"
        + "\n".join(lines)
        + "\n\nor --recipe package.module:Class for a keras_curriculum_recipes.Recipe "
        "subclass of your own\n(docs/adding_a_recipe.md)."
    )


class _HelpWithRecipes(argparse.Action):
    """`-h`: the options, then every registered recipe with its summary (read only then)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="show this help and the recipes, and exit",
        )

    def __call__(self, parser, namespace, values, option_string=None):
        parser.epilog = recipe_listing()
        parser.print_help()
        parser.exit()


def _recipe_option(text):
    """`KEY=VALUE` -> (key, value), VALUE read as a Python literal (else kept as a string)."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    parser.add_argument("-h", "--help", action=_HelpWithRecipes)
    parser.add_argument(
        "--recipe",
        default="fashion_mnist",
        help="a recipe name (listed below) or package.module:Class",
    )
    parser.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated, from {', '.join(METHODS)} "
        "(default: every method the recipe supports)",
    )
    parser.add_argument(
        "--length",
        default="default",
        choices=("quick", "default", "paper"),
        help="the run's length as the recipe defines it (`Recipe.run_length`): "
        "quick (a smoke run of about a minute on the main job), default, or "
        "paper (the papers' epoch counts); --epochs, --seeds and "
        "--train-size override its values",
    )
    parser.add_argument(
        "--seeds", type=int, default=None, help="number of seeds (>= 1; default: the length's)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the length's)")
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument(
        "--allow-inactive",
        action="store_true",
        help="keep an arm whose curriculum did not act in its run (by the "
        "thresholds of recipes/activity.py), marked INACTIVE, instead of "
        "refusing it",
    )
    parser.add_argument(
        "--set",
        dest="options",
        type=_recipe_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe constructor argument, repeatable (e.g. model=wrn, data_dir=/data/tfds)",
    )
    parser.add_argument(
        "--out", default=None, help="output folder (default runs/<recipe name>/<time>)"
    )
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    parser.add_argument(
        "--protocol",
        default=None,
        choices=PROTOCOLS,
        help="paper (the recipes' default: the paper's values, where it is "
        "silent the authors' code) or official (the authors' code wherever "
        "the two differ)",
    )
    parser.add_argument(
        "--num-processes",
        type=int,
        default=1,
        help="train on this many JAX processes of this machine (JAX backend; "
        "docs/backends.md, 'Many hosts')",
    )
    parser.add_argument(
        "--print-protocol",
        action="store_true",
        help="print the recipe's protocol, every value with its source, and "
        "exit without loading data or training",
    )
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1. Received: {args.seeds}")
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be >= 1. Received: {args.epochs}")
    if args.num_processes < 1:
        parser.error(f"--num-processes must be >= 1. Received: {args.num_processes}")
    try:
        args.recipe_class = recipe_class(args.recipe)
    except (ValueError, RecipeError) as error:
        parser.error(str(error))
    supported = tuple(args.recipe_class.methods)
    if args.methods is None:
        methods = list(supported)
    else:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        parser.error(f"unknown method(s) {unknown}. Available: {', '.join(METHODS)}")
    unsupported = [m for m in methods if m not in supported]
    if unsupported:
        parser.error(
            f"recipe {args.recipe!r} does not support {unsupported}. "
            f"It supports: {', '.join(supported)}"
        )
    args.methods = methods
    return args


def print_protocol(recipe_class, protocol, kwargs):
    """Prints the recipe's protocol table (no data, no Keras); returns the exit code."""
    options = {k: v for k, v in kwargs.items() if k != "protocol"}
    try:
        table = recipe_class.protocol(protocol or "paper", **options)
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not len(table):
        print(f"Recipe {recipe_class.name!r} declares no protocol rows (`protocol_rows`).")
        return 0
    print(table.table(), end="")
    return 0


def _without_num_processes(argv):
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--num-processes":
            skip = True
        elif not arg.startswith("--num-processes="):
            kept.append(arg)
    return kept


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.num_processes > 1 and not args.print_protocol and not processes.is_child():
        return processes.launch(_without_num_processes(argv), args.num_processes)
    if processes.is_child():
        processes.start()  # before Keras starts JAX: its runtime spans the processes
        if not processes.is_writer():  # the same run as process 0's: its files are dropped
            args.out = tempfile.mkdtemp(prefix="kc-recipes-process-")
            try:
                return _main(args)
            finally:
                shutil.rmtree(args.out, ignore_errors=True)
    return _main(args)


def _main(args):
    kwargs = dict(args.options)
    signature = inspect.signature(args.recipe_class)
    if not args.print_protocol:
        try:
            length = args.recipe_class.run_length(
                args.length,
                **{k: v for k, v in kwargs.items() if k != "protocol"},
                **({"protocol": args.protocol} if args.protocol else {}),
            )
        except (ValueError, TypeError) as error:
            print(f"error: --length {args.length}: {error}", file=sys.stderr)
            return 2
        if args.train_size is None and "train_size" in length and "train_size" not in kwargs:
            args.train_size = length["train_size"]
        args.epochs = args.epochs or length["epochs"]
        args.seeds = args.seeds or length["seeds"]
    if args.train_size is not None:
        kwargs["train_size"] = args.train_size
    if args.protocol is not None:
        if "protocol" not in signature.parameters:
            print(
                f"error: --protocol: recipe {args.recipe!r} has a single protocol (its "
                "constructor takes no `protocol`)",
                file=sys.stderr,
            )
            return 2
        kwargs["protocol"] = args.protocol
    try:
        signature.bind(**kwargs)
    except TypeError as error:
        print(
            f"error: --set: {error}; recipe {args.recipe!r} takes {list(signature.parameters)}",
            file=sys.stderr,
        )
        return 2
    if args.print_protocol:
        return print_protocol(args.recipe_class, args.protocol, kwargs)
    try:
        recipe = args.recipe_class(**kwargs)
        check_recipe(recipe)
    except (ValueError, RecipeError) as error:  # e.g. a dataset not on this machine: say how
        print(f"error: {error}", file=sys.stderr)
        return 2
    from . import compare  # imports Keras: only once a recipe is to run
    from .activity import InactiveArm

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join("runs", recipe.name, stamp)
    print(
        f"[{recipe.name}] --length {args.length}: {args.epochs} epochs, {args.seeds} seed(s)",
        flush=True,
    )
    try:
        compare.compare(
            recipe,
            args.methods,
            range(args.seeds),
            args.epochs,
            out,
            args.verbose,
            allow_inactive=args.allow_inactive,
        )
    except InactiveArm as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    return 0
