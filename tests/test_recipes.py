"""The comparison runner and the Fashion-MNIST recipe, end to end on a tiny budget."""

import json
import os

import numpy as np
import pytest
from keras_curriculum_recipes import cli
from keras_curriculum_recipes import compare
from keras_curriculum_recipes import data
from keras_curriculum_recipes import methods as methods_lib

# The recipes' own tests: scripts/test_floor.sh leaves them out (-m "not recipes").
pytestmark = pytest.mark.recipes


def test_mcnemar_matches_exact_binomial_by_hand():
    # 10 examples only the first model gets right, 2 only the second: p = 2 * P(X <= 2),
    # X ~ Binomial(12, 1/2) = 2 * (1 + 12 + 66) / 4096.
    a = np.array([True] * 10 + [False] * 2 + [True] * 30)
    b = np.array([False] * 10 + [True] * 2 + [True] * 30)
    assert compare.mcnemar_pvalue(a, b) == pytest.approx(2 * 79 / 4096)
    assert compare.mcnemar_pvalue(a, a) == 1.0


def test_fashion_mnist_loads_a_balanced_subset():
    (x, y), (xt, yt) = data.fashion_mnist(train_size=500, seed=3)
    assert x.shape == (500, 28, 28, 1) and x.dtype == np.float32
    assert xt.shape == (10000, 28, 28, 1)
    assert np.bincount(y, minlength=10).tolist() == [50] * 10
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_missing_dataset_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(data.DatasetUnavailable, match="apt-get install dataset-fashion-mnist"):
        data.fashion_mnist()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--methods", "conventional,curriculum_by_magic"], "unknown method"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--recipe", "imagenet-9000"], "Unknown recipe 'imagenet-9000'"),
    ],
)
def test_cli_rejects_bad_input(argv, message, capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(argv)
    assert message in capsys.readouterr().err


def test_every_method_runs_in_the_runner(tmp_path):
    out = str(tmp_path / "all")
    rows = compare.compare(
        cli.load_recipe("fashion_mnist", train_size=300),
        list(methods_lib.METHODS),
        range(1),
        2,
        out,
        verbose=0,
        allow_inactive=True,
    )
    assert [r["method"] for r in rows] == list(methods_lib.METHODS)
    by_method = {r["method"]: r for r in rows}
    assert by_method["efficient_train"]["mcnemar_vs"] == "conventional_upscaled"
    assert by_method["docl"]["mcnemar_vs"] == "conventional"
    results = json.load(open(os.path.join(out, "results.json")))
    history = {r["method"]: r["history"] for r in results}
    # sigma_0 * 0.9 ** (40 e / 2) per epoch (the paper's 0.9 every 5 of 200 epochs).
    assert history["cbs"]["cbs_sigma"] == pytest.approx([1.0, 0.9**20], rel=1e-5)
    # 2 epochs of the paper's table at 42 px: stages 3 (30 px) and 5 (42 px).
    assert history["efficient_train"]["et_height"] == [30.0, 42.0]
    assert "docl_fraction" in history["docl"]
    for plot in ("cbs_sigma.png", "efficient_train.png", "lerac_rates.png", "seed0_docl.png"):
        assert os.path.getsize(os.path.join(out, "plots", plot)) > 1000


def test_runner_end_to_end_writes_table_plots_and_tensorboard(tmp_path):
    out = str(tmp_path / "run")
    code = cli.main(
        [
            "--methods",
            "conventional,lerac",
            "--seeds",
            "2",
            "--epochs",
            "1",
            "--train-size",
            "300",
            "--out",
            out,
            "--verbose",
            "0",
            "--allow-inactive",
        ]
    )
    assert code == 0
    table = open(os.path.join(out, "table.md")).read()
    assert "| conventional |" in table and "| lerac |" in table
    results = json.load(open(os.path.join(out, "results.json")))
    assert sorted((r["method"], r["seed"]) for r in results) == [
        ("conventional", 0),
        ("conventional", 1),
        ("lerac", 0),
        ("lerac", 1),
    ]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in results)
    lerac_run = next(r for r in results if r["method"] == "lerac")
    # 2 steps: LeRaC's 5 % of the fit is one step (at least one), the first.
    assert lerac_run["epoch_steps"] == [2]
    assert lerac_run["activity"]["lerac"]["fraction"] == 0.5
    assert "50.0 % of steps in curriculum" in table
    for plot in ("accuracy_vs_time.png", "lerac_rates.png"):
        assert os.path.getsize(os.path.join(out, "plots", plot)) > 1000
    assert os.listdir(os.path.join(out, "tensorboard", "lerac_seed0"))


def test_a_method_the_recipe_does_not_support_is_refused_before_training():
    class TextOnly:
        name = "text_only"
        methods = ("conventional", "lerac")

    with pytest.raises(ValueError, match="does not support method 'efficient_train'"):
        methods_lib.prepare("efficient_train", TextOnly(), seed=0, epochs=1)
    assert methods_lib.supported(TextOnly) == ("conventional", "lerac")
