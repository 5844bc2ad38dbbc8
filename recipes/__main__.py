"""`python -m recipes`: compare curricula on a recipe; prints the table, writes files and plots.

    python -m recipes --recipe fashion_mnist --methods conventional,lerac --seeds 3 --epochs 4
    python -m recipes --recipe cifar10 --set model=wrn --set wrn_depth=28 --epochs 200
"""

import argparse
import ast
import datetime
import inspect
import os
import sys

from recipes import compare
from recipes import methods as methods_lib

RECIPES = {
    "fashion_mnist": "recipes.fashion_mnist:FashionMNIST",
    "rotten_tomatoes": "recipes.rotten_tomatoes:RottenTomatoes",
    "glue/rte": "recipes.glue:RTE",
    "glue/qnli": "recipes.glue:QNLI",
    "super_glue/boolq": "recipes.glue:BoolQ",
    "glue/rte_lstm": "recipes.glue:RTELstm",
    "glue/qnli_lstm": "recipes.glue:QNLILstm",
    "super_glue/boolq_lstm": "recipes.glue:BoolQLstm",
    "cifar10": "recipes.cifar:Cifar10",
    "cifar100": "recipes.cifar:Cifar100",
    "tiny_imagenet": "recipes.tiny_imagenet:TinyImageNet",
    "imagenet": "recipes.imagenet:ImageNet",
    "spoken_digit": "recipes.audio:SpokenDigit",
    "crema_d": "recipes.audio:CremaD",
}


def recipe_class(name):
    """The recipe's class, without loading its data (class attributes say what it supports)."""
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}. Available: {', '.join(sorted(RECIPES))}")
    module_name, class_name = RECIPES[name].split(":")
    module = __import__(module_name, fromlist=[class_name])
    return getattr(module, class_name)


def load_recipe(name, **kwargs):
    return recipe_class(name)(**kwargs)


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
    parser = argparse.ArgumentParser(prog="python -m recipes", description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fashion_mnist")
    parser.add_argument("--methods", default=None,
                        help=f"comma-separated, from {', '.join(methods_lib.METHODS)} "
                             "(default: every method the recipe supports)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (>= 1)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--set", dest="options", type=_recipe_option, action="append",
                        default=[], metavar="KEY=VALUE",
                        help="recipe constructor argument, repeatable (e.g. model=wrn, "
                             "data_dir=/data/tfds)")
    parser.add_argument("--out", default=None, help="output folder (default runs/<recipe>/<time>)")
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1. Received: {args.seeds}")
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1. Received: {args.epochs}")
    if args.recipe not in RECIPES:
        parser.error(f"unknown recipe {args.recipe!r}. Available: {', '.join(sorted(RECIPES))}")
    supported = methods_lib.supported(recipe_class(args.recipe))
    if args.methods is None:
        methods = list(supported)
    else:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in methods_lib.available()]
    if unknown or not methods:
        available = ", ".join(methods_lib.available())
        parser.error(f"unknown method(s) {unknown}. Available: {available}")
    unsupported = [m for m in methods if m not in supported]
    if unsupported:
        parser.error(f"recipe {args.recipe!r} does not support {unsupported}. "
                     f"It supports: {', '.join(supported)}")
    args.methods = methods
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    kwargs = dict(args.options)
    if args.train_size is not None:
        kwargs["train_size"] = args.train_size
    signature = inspect.signature(recipe_class(args.recipe))
    try:
        signature.bind(**kwargs)
    except TypeError as error:
        print(f"error: --set: {error}; recipe {args.recipe!r} takes {list(signature.parameters)}",
              file=sys.stderr)
        return 2
    try:
        recipe = load_recipe(args.recipe, **kwargs)
    except ValueError as error:  # a dataset that is not on this machine: say how to get it
        print(f"error: {error}", file=sys.stderr)
        return 2
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join("runs", args.recipe, stamp)
    compare.compare(recipe, args.methods, range(args.seeds), args.epochs, out, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
