"""The runner's activity column (issue 12, items 4 and 6): what each curriculum did, measured from
its run, an arm that did not act refused, and `--length quick` of the main job acting."""

import json
import os

import pytest
from keras_curriculum_recipes import activity
from keras_curriculum_recipes import cli
from keras_curriculum_recipes import compare
from keras_curriculum_recipes.fashion_mnist import FashionMNIST

pytestmark = pytest.mark.recipes


class Tiny(FashionMNIST):
    """640 training images in batches of 64 (10 steps an epoch); the EfficientTrain pair trains
    320 of them at 42 px (5 steps an epoch)."""

    def __init__(
        self, train_size=640, batch_size=64, width=4, validation_size=100, upscaled_train_size=320
    ):
        super().__init__(train_size, batch_size, width, validation_size, upscaled_train_size)


class TinyShortLeRaC(Tiny):
    """LeRaC for one step only: 1 of 60 steps (1.7 %) in a 6-epoch fit, below 2 %."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lerac = {"duration": 1, "unit": "step", "min_learning_rate": 1e-8}


# Figures from logged values, by hand --------------------------------------------------------


def test_figures_of_logged_values_match_hand_computed_ones():
    history = {
        "cbs_sigma": [1.0, 0.5, 0.25],
        "cbs_active_layers": [3, 3, 0],
        "et_height": [30.0, 36.0, 42.0],
        "et_width": [30.0, 36.0, 42.0],
        "docl_fraction": [1.0, 0.6, 0.5],
    }
    lerac_steps = [True] * 3 + [False] * 27
    cbs = activity.measure("lerac+cbs", history, [10, 10, 10], lerac_steps)
    assert cbs["lerac"]["fraction"] == pytest.approx(3 / 30)
    assert cbs["cbs"] == {"sigma_first": 1.0, "sigma_last": 0.25, "bypass_epoch": 3}
    et = activity.measure("efficient_train", history, [10, 10, 5], full_size=42)
    # (10 * 30^2 + 10 * 36^2 + 5 * 42^2) / (25 * 42^2)
    assert et["efficient_train"]["pixels"] == pytest.approx(30780 / 44100)
    docl = activity.measure("docl", history)
    assert docl["docl"]["fraction"] == pytest.approx(0.7)
    assert activity.measure("conventional", history) == {}
    assert activity.reasons({**cbs, **et, **docl}) == []


@pytest.mark.parametrize(
    "figures, message",
    [
        ({"lerac": {"fraction": 0.015}}, r"LeRaC trained 1.5 % of the steps"),
        ({"lerac": {"fraction": 0.6}}, r"LeRaC trained 60.0 %"),
        ({"cbs": {"sigma_first": 1.0, "sigma_last": 0.6, "bypass_epoch": None}}, r"1 -> 0.6"),
        ({"efficient_train": {"pixels": 0.9}}, r"0.90 of the full image"),
        ({"docl": {"fraction": 1.0}}, r"mean 1.00 of the data"),
        ({"docl": {}}, r"DoCL logged no values"),
    ],
)
def test_each_threshold_refuses_an_arm_that_does_not_act(figures, message):
    with pytest.raises(activity.InactiveArm, match=message):
        activity.check_acts("arm", 0, figures)
    assert activity.check_acts("arm", 0, figures, allow_inactive=True)


# A tiny run, measured -------------------------------------------------------------------------


def test_activity_of_a_tiny_run_against_hand_computed_values(tmp_path):
    recipe = Tiny()
    recipe.lerac = {"duration": 6, "unit": "step", "min_learning_rate": 1e-8}
    rows = compare.compare(
        recipe,
        ["conventional", "lerac", "cbs", "conventional_upscaled", "efficient_train"],
        range(1),
        4,
        str(tmp_path),
        verbose=0,
    )
    results = {r["method"]: r for r in json.load(open(tmp_path / "results.json"))}
    # LeRaC: 6 of the 4 x 10 steps inside the curriculum.
    assert results["lerac"]["epoch_steps"] == [10, 10, 10, 10]
    assert results["lerac"]["activity"]["lerac"]["fraction"] == pytest.approx(6 / 40)
    # CBS, 0.9 every 5 of 200 epochs as a fraction of a 4-epoch fit: 0.9 ** (40 e / 4) per
    # epoch; logged at the end of the first and of the last epoch.
    cbs = results["cbs"]["activity"]["cbs"]
    assert cbs["sigma_first"] == pytest.approx(1.0)
    assert cbs["sigma_last"] == pytest.approx(0.9**30, rel=1e-5)
    # EfficientTrain's paper table over 4 epochs at 42 px: the first stage rounds to 0 epochs,
    # then 30, 30, 36 and 42 px, 5 steps each.
    pixels = results["efficient_train"]["activity"]["efficient_train"]["pixels"]
    assert results["efficient_train"]["epoch_steps"] == [5, 5, 5, 5]
    assert pixels == pytest.approx((30**2 + 30**2 + 36**2 + 42**2) / (4 * 42**2))
    by_method = {row["method"]: row for row in rows}
    assert by_method["lerac"]["activity"] == "15.0 % of steps in curriculum"
    assert by_method["efficient_train"]["activity"].startswith("pixels 0.69 of full, wall time ")
    assert by_method["conventional"]["activity"] == "—"
    table = open(tmp_path / "table.md").read()
    assert "activity (measured)" in table and "15.0 % of steps in curriculum" in table


def test_an_inactive_arm_is_refused_unless_allowed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "recipe_class", lambda spec: TinyShortLeRaC)
    out = str(tmp_path / "refused")
    code = cli.main(
        [
            "--methods",
            "conventional,lerac",
            "--seeds",
            "1",
            "--epochs",
            "6",
            "--out",
            out,
            "--verbose",
            "0",
        ]
    )
    assert code == 3
    error = capsys.readouterr().err
    assert "Arm 'lerac' (seed 0) did not act: LeRaC trained 1.7 % of the steps" in error
    assert "--allow-inactive" in error
    assert not os.path.exists(os.path.join(out, "table.md"))
    out = str(tmp_path / "allowed")
    code = cli.main(
        [
            "--methods",
            "lerac",
            "--seeds",
            "1",
            "--epochs",
            "6",
            "--out",
            out,
            "--verbose",
            "0",
            "--allow-inactive",
        ]
    )
    assert code == 0
    assert "1.7 % of steps in curriculum (INACTIVE)" in open(os.path.join(out, "table.md")).read()


# The main job's quick length -----------------------------------------------------------------


@pytest.mark.slow
def test_quick_main_job_every_arm_acts(tmp_path):
    """`kc-recipes --recipe fashion_mnist --length quick` (about a minute): every curriculum arm
    acts by the runner's thresholds (the runner would refuse it otherwise; checked again)."""
    out = str(tmp_path / "quick")
    assert (
        cli.main(["--recipe", "fashion_mnist", "--length", "quick", "--out", out, "--verbose", "0"])
        == 0
    )
    results = json.load(open(os.path.join(out, "results.json")))
    assert sorted(r["method"] for r in results) == sorted(FashionMNIST.methods)
    for run in results:
        curricula = activity.curricula_of(run["method"])
        assert sorted(run["activity"]) == sorted(curricula)
        assert activity.reasons(run["activity"]) == [], run["method"]
    lerac = next(r for r in results if r["method"] == "lerac")["activity"]["lerac"]
    low, high = activity.LERAC_RANGE
    assert low <= lerac["fraction"] <= high
    table = open(os.path.join(out, "table.md")).read()
    assert "INACTIVE" not in table and "4 epochs" in table


# Run lengths -----------------------------------------------------------------------------------


def test_run_lengths_of_the_main_job_and_of_a_recipe_with_a_paper_epoch_count():
    assert FashionMNIST.run_length("quick") == {"epochs": 4, "seeds": 1, "train_size": 2000}
    assert FashionMNIST.run_length("default") == {"epochs": 8, "seeds": 3}
    assert FashionMNIST.run_length("paper") == {"epochs": 200, "seeds": 3}
    cifar = cli.recipe_class("cifar10")
    assert cifar.run_length("paper")["epochs"] == cifar.protocol()["epochs"]
    with pytest.raises(ValueError, match="`length` must be one of"):
        FashionMNIST.run_length("long")


def test_length_paper_is_refused_for_a_recipe_without_a_paper_epoch_count(capsys):
    assert cli.main(["--recipe", "rotten_tomatoes", "--length", "paper"]) == 2
    assert "states no paper epoch count" in capsys.readouterr().err
