"""The installed runner (`kc-recipes`), its registry and the `Recipe` contract.

Includes docs/adding_a_recipe.md's example, run exactly as the page writes it.
"""

import configparser
import glob
import importlib
import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap

import pytest
import setuptools
from keras_curriculum_recipes import Recipe
from keras_curriculum_recipes import cli
from keras_curriculum_recipes import registry

pytestmark = pytest.mark.recipes  # needs the recipes package: not run on the Keras floor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A working directory for a user's module; what the runner imports from it is forgotten."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def _write_module(directory, name, source):
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    importlib.invalidate_caches()


# --help and the registry ------------------------------------------------------------------------


def test_help_lists_the_registered_recipes_with_their_summaries(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    listing = capsys.readouterr().out.split("recipes (--recipe NAME):")[1]
    for name in registry.names():
        cls = cli.recipe_class(name)
        assert re.search(rf"^  {re.escape(name)} +{re.escape(cls.summary)}$", listing, re.M)
    assert "package.module:Class" in listing


def test_every_built_in_recipe_is_registered_under_its_name_with_a_literal_summary():
    points = importlib.metadata.entry_points(group=registry.GROUP)
    names = [p.name for p in points if p.value.startswith("keras_curriculum_recipes.")]
    assert sorted(names) == [  # the recipes docs/recipes_*.md describe
        "cifar10",
        "cifar100",
        "crema_d",
        "fashion_mnist",
        "glue/qnli",
        "glue/qnli_lstm",
        "glue/rte",
        "glue/rte_lstm",
        "imagenet",
        "imagenet_plus",
        "rotten_tomatoes",
        "spoken_digit",
        "super_glue/boolq",
        "super_glue/boolq_lstm",
        "tiny_imagenet",
    ]
    assert set(names) <= set(registry.names())
    summaries = registry.summaries()
    for name in names:
        cls = registry.recipe_class(name)
        assert issubclass(cls, Recipe) and cls.name == name
        assert summaries[name] == cls.summary and cls.summary  # read without importing


def test_help_imports_neither_keras_nor_tensorflow():
    code = (
        "import sys\nfrom keras_curriculum_recipes import cli\ntry:\n    cli.main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print('heavy:', sorted({'keras', 'tensorflow', 'keras_hub'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fashion_mnist" in result.stdout and "heavy: []" in result.stdout


def test_the_runner_works_from_another_directory_with_its_own_recipes_folder(tmp_path):
    # A user's own `recipes` package in the working directory must not replace the runner's.
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "__init__.py").write_text("raise ImportError('the user recipes')\n")
    script = os.path.join(os.path.dirname(sys.executable), "kc-recipes")
    assert os.path.exists(script), "kc-recipes is not installed: run `pip install -e .`"
    for command in (
        [script, "--help"],
        [sys.executable, "-m", "keras_curriculum_recipes", "--help"],
    ):
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "usage: kc-recipes" in result.stdout
        assert re.search(r"^  fashion_mnist +Fashion-MNIST", result.stdout, re.M)


def test_a_recipe_of_another_installed_package_is_found_by_name(tmp_path, monkeypatch):
    # What `pip install` of a package declaring the entry point leaves on the path.
    _write_module(
        tmp_path,
        "third_party_recipes",
        """
        from keras_curriculum_recipes.fashion_mnist import FashionMNIST

        class Tiny(FashionMNIST):
            name = "third_party/tiny"
            summary = "a third party's Fashion-MNIST"
        """,
    )
    dist = tmp_path / "third_party_recipes-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: third-party-recipes\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[keras_curriculum.recipes]\nthird_party/tiny = third_party_recipes:Tiny\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert "third_party/tiny" in registry.names()
        assert registry.summaries()["third_party/tiny"] == "a third party's Fashion-MNIST"
        assert cli.recipe_class("third_party/tiny").__name__ == "Tiny"
    finally:
        sys.modules.pop("third_party_recipes", None)


def test_setup_cfg_installs_every_package_folder():
    # `packages` is a hand-written list (find: cannot rename recipes/): a new subpackage of
    # keras_curriculum missing from it would be absent from the wheel.
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    listed = config["options"]["packages"].split()
    expected = setuptools.find_packages(ROOT, include=["keras_curriculum", "keras_curriculum.*"])
    assert sorted(listed) == sorted(expected + ["keras_curriculum_recipes"])
    assert config["options"]["package_dir"].split() == ["keras_curriculum_recipes", "=", "recipes"]


# A user's recipe class: checked, then run ------------------------------------------------------

_COMPLETE = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    import keras
    from keras_curriculum_recipes import Recipe

    class Complete(Recipe):
        name = "complete"
        methods = ("conventional", "docl")
        batch_size = 8

        def __init__(self, train_size=32):
            self.x = np.zeros((train_size, 4), "float32")
            self.y = np.zeros(train_size, "int32")

        def build_model(self, variable_size=False):
            return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])

        def train_dataset(self, seed, image_size=None):
            return tf.data.Dataset.from_tensor_slices((self.x, self.y)).batch(8)

        def test_arrays(self, image_size=None):
            return self.x, self.y

        def train_examples(self):
            return self.x, self.y
    """)


_MEMBERS = {
    "name": "    name = 'broken'\n",
    "methods": "    methods = ('conventional', 'docl')\n",
    "build_model": "    def build_model(self, variable_size=False): pass\n",
    "train_dataset": "    def train_dataset(self, seed, image_size=None): pass\n",
    "test_arrays": "    def test_arrays(self, image_size=None): pass\n",
    "train_examples (DoCL is in `methods`)": "    def train_examples(self): pass\n",
}


def _refusal(user_dir, capsys, source):
    _write_module(user_dir, "user_broken", source)
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(["--recipe", "user_broken:Broken"])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("member", list(_MEMBERS))
def test_a_user_class_missing_a_member_is_refused_naming_it(member, user_dir, capsys):
    body = "".join(line for key, line in _MEMBERS.items() if key != member)
    error = _refusal(
        user_dir,
        capsys,
        "from keras_curriculum_recipes import Recipe\n\nclass Broken(Recipe):\n" + body,
    )
    assert f"Recipe class user_broken.Broken does not define: {member}." in error


@pytest.mark.parametrize(
    "source, message",
    [
        (
            "class Broken:\n    name = 'broken'\n",
            "A recipe must be a subclass of keras_curriculum_recipes.Recipe",
        ),
        (
            _COMPLETE + "\nclass Broken(Complete):\n    methods = ('conventional', 'magic')\n",
            "`methods` must be a non-empty tuple of names from",
        ),
        (
            _COMPLETE + "\nclass Broken(Complete):\n    name = ''\n",
            "`name` must be a non-empty string. Received: name=''",
        ),
    ],
)
def test_a_user_class_with_a_wrong_member_is_refused(source, message, user_dir, capsys):
    assert message in _refusal(user_dir, capsys, textwrap.dedent(source))


def test_a_complete_user_class_is_accepted_with_its_methods(user_dir):
    _write_module(user_dir, "user_ok", _COMPLETE)
    assert cli.parse_args(["--recipe", "user_ok:Complete"]).methods == ["conventional", "docl"]


@pytest.mark.parametrize(
    "attributes, missing",
    [
        ("    batch_size = None\n", "`batch_size` must be an int >= 1. Received: batch_size=None"),
        (
            "    methods = ('conventional', 'efficient_train')\n",
            "does not define: upscaled_size (efficient_train in `methods`)",
        ),
    ],
)
def test_what_only_the_built_recipe_can_tell_is_refused_before_training(
    attributes, missing, user_dir, capsys
):
    _write_module(user_dir, "user_instance", _COMPLETE + "\nclass Broken(Complete):\n" + attributes)
    assert cli.main(["--recipe", "user_instance:Broken", "--out", "run"]) == 2
    assert missing in capsys.readouterr().err
    assert not os.path.exists(user_dir / "run")


def test_the_defaults_a_recipe_inherits(user_dir):
    _write_module(
        user_dir,
        "user_defaults",
        _COMPLETE
        + textwrap.dedent("""
        class Unknown(Complete):
            def train_dataset(self, seed, image_size=None):
                return super().train_dataset(seed).filter(lambda x, y: True)
        """),
    )
    recipe = cli.recipe_class("user_defaults:Complete")(train_size=36)
    assert recipe.steps_per_epoch == 5  # 36 examples in batches of 8, the last one partial
    assert recipe.description == "complete"
    assert recipe.loss.get_config()["from_logits"] is True
    optimizer = recipe.optimizer(epochs=3)
    assert optimizer.name == "adam" and float(optimizer.learning_rate) == pytest.approx(1e-3)
    x_test, y_test = next(iter(recipe.test_dataset()))
    assert x_test.shape == (36, 4) and y_test.shape == (36,)
    assert dict(recipe.lerac) == {"k": 5, "lowest_lr": 1e-8} and dict(recipe.docl) == {}
    with pytest.raises(TypeError):  # class-level defaults are read-only, shared by every recipe
        recipe.cbs["sigma"] = 0.5
    with pytest.raises(TypeError, match="set `steps_per_epoch` in `__init__`"):
        _ = cli.recipe_class("user_defaults:Unknown")().steps_per_epoch


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_module:Recipe", "no module 'no_such_module' in the current directory"),
        ("user_ok:NoSuchClass", "module 'user_ok' has no 'NoSuchClass'"),
    ],
)
def test_a_class_path_that_does_not_resolve_is_refused(spec, message, user_dir, capsys):
    _write_module(user_dir, "user_ok", _COMPLETE)
    with pytest.raises(SystemExit):
        cli.parse_args(["--recipe", spec])
    assert message in capsys.readouterr().err


def _doc_example():
    """(file name, source, argv) of docs/adding_a_recipe.md's example, as the page shows it."""
    page = open(os.path.join(ROOT, "docs", "adding_a_recipe.md")).read()
    file_name, source = re.search(r"<!-- file: (\S+) -->\n```python\n(.*?)```", page, re.S).groups()
    command = re.search(r"<!-- command -->\n```bash\n(.*?)```", page, re.S).group(1)
    return file_name, source, shlex.split(command)


def test_the_documented_recipe_runs_as_written(user_dir, capsys):
    file_name, source, argv = _doc_example()
    (user_dir / file_name).write_text(source)
    importlib.invalidate_caches()
    assert argv[0] == "kc-recipes"  # the console script is `cli.main`
    assert cli.main(argv[1:]) == 0
    (out,) = glob.glob(str(user_dir / "runs" / "bars" / "*"))
    methods = ["conventional", "lerac", "cbs", "docl"]
    table = open(os.path.join(out, "table.md")).read()
    assert all(f"| {method} |" in table for method in methods)
    results = json.load(open(os.path.join(out, "results.json")))
    assert [(r["method"], r["seed"]) for r in results] == [(m, 0) for m in methods]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in results)
    # The recipe's own hyperparameters reached the methods (not the base class defaults).
    history = {r["method"]: r["history"] for r in results}
    assert history["lerac"]["lerac_lr_last"][0] == pytest.approx(1e-7, rel=1e-4)
    assert history["cbs"]["cbs_sigma"] == [1.0]
