"""Recipe protocols (issue 13): every value with a source, read by the recipes, and the regimes
in which each curriculum arm and its conventional arm train (DoCL's episode-tied cosine and
Mix-up, ET++'s compute clock, CBS's and LeRaC's step decays).

TFDS sets run under `tfds.testing.mock_data`; the DoCL pipeline and the end-to-end run use a
small in-memory recipe with the DoCL regime of the image recipes.
"""

import inspect
import math
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from keras_curriculum_recipes import cifar
from keras_curriculum_recipes import cli
from keras_curriculum_recipes import compare
from keras_curriculum_recipes import docl_protocol
from keras_curriculum_recipes import fashion_mnist
from keras_curriculum_recipes import imagenet
from keras_curriculum_recipes import methods as methods_lib
from keras_curriculum_recipes import mixup
from keras_curriculum_recipes import protocol_docs
from keras_curriculum_recipes import registry
from keras_curriculum_recipes.base import Recipe
from keras_curriculum_recipes.image_classification import SgdRegimes
from keras_curriculum_recipes.protocol import Protocol
from keras_curriculum_recipes.protocol import ProtocolValue
from keras_curriculum_recipes.protocol import check_source
from test_compute_clock import PLUS_RESOLUTIONS
from test_compute_clock import official_plus_fractions

from keras_curriculum.docl import episodes
from keras_curriculum.docl.plan import subset_size
from keras_curriculum.efficient_train import compute_clock as clock
from keras_curriculum.efficient_train import plus_stages

pytestmark = pytest.mark.recipes  # needs the recipes package: not run on the Keras floor

DOCS = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "recipes_protocols.md")


# Sources in the fixed form -------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "Table 1",
        "Sec. 4.2",
        "Eq. 8",
        "Alg. 1 l. 5-7",
        "LeRaC Eq. 8",
        "DoCL Sec. 4",
        "CroitoruAlin/LeRaC experiments/r18_experiments.py:54-56",
        "CroitoruAlin/LeRaC experiments/r18_experiments.py:58, :64, train/resnet_train.py:47-48",
        "LeRaC Sec. 4.2; CroitoruAlin/LeRaC data_handlers.py:41-45; pairlab/CBS data.py:32-36",
        "not given; chosen: 40, because 95 % of the snippets have at most 34 words",
        "set by the user",
    ],
)
def test_fixed_source_forms_are_accepted(source):
    assert check_source(source) == source


@pytest.mark.parametrize(
    "source",
    [
        "",
        "paper",
        "Table 1 (recalled)",
        "LeRaC code",
        "CroitoruAlin/LeRaC r18_experiments.py",
        "not given",
        "not given; chosen: 3",
        "DoCL Sec. 4 and the code",
        "Table 1;Eq. 8",
    ],
)
def test_other_sources_are_refused(source):
    with pytest.raises(ValueError, match="`source` must be"):
        check_source(source)


def test_a_row_without_a_source_or_with_an_unsourced_official_value_is_refused():
    with pytest.raises(ValueError, match="`source` must be"):
        ProtocolValue("batch", 64, "the code")
    with pytest.raises(ValueError, match="needs an `official_source`"):
        ProtocolValue("batch", 64, "Table 1", official=128)
    with pytest.raises(ValueError, match="unique names"):
        Protocol([ProtocolValue("a", 1, "Eq. 8"), ProtocolValue("a", 2, "Eq. 8")])


def test_the_official_protocol_switches_only_the_rows_that_differ():
    rows = [
        ProtocolValue(
            "lerac.update",
            "exponential",
            "LeRaC Eq. 8",
            official="stepwise",
            official_source="CroitoruAlin/LeRaC train/resnet_train.py:82-86",
        ),
        ProtocolValue("lerac.duration", 5, "CroitoruAlin/LeRaC experiments/r18_experiments.py:58"),
    ]
    assert Protocol(rows, "paper").section("lerac") == {"update": "exponential", "duration": 5}
    official = Protocol(rows, "official")
    assert official.section("lerac") == {"update": "stepwise", "duration": 5}
    assert official.source("lerac.update").endswith("resnet_train.py:82-86")
    user = official.overridden(**{"lerac.duration": 7})
    assert user["lerac.duration"] == 7 and user.source("lerac.duration") == "set by the user"


# --print-protocol for every recipe ----------------------------------------------------------


def _table_rows(text):
    """(name, setting, source, note) of each row of a printed protocol table."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith(("| value |", "|---")):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows.append(tuple(cells))
    return rows


def _protocols_of(name):
    cls = registry.recipe_class(name)
    return ["paper", "official"] if "protocol" in inspect.signature(cls).parameters else [None]


@pytest.mark.parametrize("name", protocol_docs.built_in_names())
def test_print_protocol_gives_every_value_a_source_without_loading_data(
    name, capsys, tmp_path, monkeypatch
):
    # No data set is on this machine (TFDS reads an empty folder): building a recipe would
    # fail, printing its protocol must not.
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TINY_IMAGENET_DIR", str(tmp_path / "missing"))
    for protocol in _protocols_of(name):
        argv = ["--recipe", name, "--print-protocol"]
        argv += ["--protocol", protocol] if protocol else []
        assert cli.main(argv) == 0
        rows = _table_rows(capsys.readouterr().out)
        assert len(rows) >= 10
        names = [r[0] for r in rows]
        assert len(set(names)) == len(names)
        for row_name, setting, source, _ in rows:
            assert setting, row_name
            check_source(source)
        expected = registry.recipe_class(name).protocol(protocol or "paper")
        assert names == list(expected)


def test_print_protocol_shows_values_set_by_the_user(capsys):
    assert cli.main(["--recipe", "cifar10", "--print-protocol", "--set", "batch_size=128"]) == 0
    rows = {r[0]: r for r in _table_rows(capsys.readouterr().out)}
    assert rows["batch"][1:3] == ("128", "set by the user")
    assert cli.main(["--recipe", "imagenet", "--protocol", "official"]) == 2
    assert "single protocol" in capsys.readouterr().err


def test_docs_are_the_generated_protocol_tables():
    with open(DOCS, encoding="utf-8") as handle:
        committed = handle.read()
    assert committed == protocol_docs.render(), (
        "docs/recipes_protocols.md is stale: run python -m "
        "keras_curriculum_recipes.protocol_docs docs/recipes_protocols.md"
    )


# The recipes read their protocol -------------------------------------------------------------


def _cifar(cls=cifar.Cifar10, batch_size=8, **kwargs):
    with tfds.testing.mock_data(num_examples=16):
        return cls(
            train_size=16, model="wrn", wrn_depth=10, wrn_width=1, batch_size=batch_size, **kwargs
        )


def _rate_at(optimizer, step):
    optimizer.iterations.assign(step)
    return float(optimizer.learning_rate)


@pytest.mark.parametrize("protocol", ["paper", "official"])
def test_cifar_reads_its_protocol(protocol):
    recipe = _cifar(cifar.Cifar100, protocol=protocol)
    steps = recipe.steps_per_epoch
    assert steps == 2 and recipe.augment is False  # no augmentation (item 1)
    # The LeRaC code's WRN on CIFAR-100: lowest rate 1e-8 after 7 events, once per epoch.
    assert recipe.lerac == {
        "duration": 7,
        "min_learning_rate": 1e-8,
        "c": 10.0,
        "update": "exponential" if protocol == "paper" else "stepwise",
        "base_schedule": "multiply",
        "steps_per_epoch": steps,
    }
    # LeRaC's regime: / 10 from the code's (1-based) epochs 38, 68, 98 of 200.
    lerac_arm = recipe.regime("default", 200).optimizer([steps] * 200, [])
    rates = [_rate_at(lerac_arm, s) for s in (37 * steps - 1, 37 * steps, 67 * steps, 97 * steps)]
    np.testing.assert_allclose(rates, [0.1, 0.01, 1e-3, 1e-4], rtol=1e-6)
    assert lerac_arm.weight_decay == pytest.approx(1e-3)
    # CBS's regime: / 10 from epochs 30, 60, 90, weight decay 5e-4 coupled (item 8).
    cbs_arm = recipe.regime(recipe.regime_of("cbs"), 200).optimizer([steps] * 200, [])
    rates = [_rate_at(cbs_arm, s) for s in (30 * steps - 1, 30 * steps, 60 * steps, 90 * steps)]
    np.testing.assert_allclose(rates, [0.1, 0.01, 1e-3, 1e-4], rtol=1e-6)
    assert cbs_arm.weight_decay == pytest.approx(5e-3)
    assert recipe.cbs == {"sigma": 1.0, "kernel_size": 3, "factor": 0.9, "every": 5}


def test_tiny_imagenet_decays_at_the_code_epochs_and_raises_lerac_rates_four_times_an_epoch(
    tmp_path,
):
    from keras_curriculum_recipes import tiny_imagenet
    from test_image_recipes import _write_tiny_imagenet

    root = str(tmp_path / "tiny-imagenet-200")
    _write_tiny_imagenet(root)
    recipe = tiny_imagenet.TinyImageNet(data_dir=root, batch_size=1, protocol="official")
    steps = recipe.steps_per_epoch
    optimizer = recipe.optimizer(100)
    # The code's 1-based epochs 33, 63, 93 of 100 (item 4; it used to be 18, 32, 48).
    rates = [_rate_at(optimizer, s) for s in (32 * steps - 1, 32 * steps, 62 * steps, 92 * steps)]
    np.testing.assert_allclose(rates, [0.1, 0.01, 1e-3, 1e-4], rtol=1e-6)
    assert recipe.lerac["update"] == "stepwise" and recipe.lerac["duration"] == 7
    assert recipe.lerac["steps_per_epoch"] == steps // 4


def test_bert_trains_with_adamax_as_the_official_code():
    from keras_curriculum_recipes import glue

    with tfds.testing.mock_data(num_examples=48):
        recipe = glue.RTE(preset=None, train_size=40, num_layers=1, hidden_dim=16, num_heads=2)
    optimizer = recipe.optimizer(3)
    assert isinstance(optimizer, keras.optimizers.Adamax) and optimizer.weight_decay is None
    assert recipe.sequence_length == 100 and recipe.batch_size == 32
    assert recipe.lerac["min_learning_rate"] == pytest.approx(1e-6)


def test_fashion_mnist_sets_what_its_protocol_rows_say():
    table = fashion_mnist.FashionMNIST.protocol()
    recipe = fashion_mnist.FashionMNIST(train_size=256)
    assert recipe.batch_size == table["batch"]
    assert dict(recipe.lerac) == table.section("lerac")
    assert dict(recipe.cbs) == table.section("cbs")
    assert dict(recipe.docl) == table.section("docl")
    assert recipe.upscaled_size == table["upscaled_size"]
    optimizer = recipe.optimizer(4)
    assert type(optimizer).__name__ == table["optimizer"]
    assert float(optimizer.learning_rate) == pytest.approx(table["learning_rate"])


# Regimes: each curriculum arm beside a conventional arm of the same protocol ------------------


def test_each_curriculum_gets_the_conventional_arm_of_its_regime():
    recipe = _cifar()
    names = methods_lib.arm_names(
        recipe, ["conventional", "lerac", "cbs", "docl", "efficient_train"]
    )
    assert names == [
        "conventional",
        "conventional_cbs",
        "conventional_docl",
        "lerac",
        "cbs",
        "docl",
        "efficient_train",
    ]
    references = {m: methods_lib.reference(recipe, m, names) for m in names}
    assert references == {
        "conventional": None,
        "conventional_cbs": None,
        "conventional_docl": None,
        "lerac": "conventional",
        "cbs": "conventional_cbs",
        "docl": "conventional_docl",
        "efficient_train": "conventional",
    }
    assert methods_lib.arm_names(recipe, ["docl"]) == ["docl"]  # no baseline asked for


class TinyDoclRecipe(SgdRegimes, Recipe):
    """In-memory images (one-hot "pictures" of each example's index) with the SGD regimes of
    the image recipes: the DoCL regime (episode-tied cosine, Mix-up) on a dense model."""

    name = "tiny_docl"
    methods = ("conventional", "docl")
    regimes = {"docl": "docl"}
    num_classes = 3

    @classmethod
    def protocol_rows(cls, **options):
        code = "CroitoruAlin/LeRaC experiments/r18_experiments.py:39-43"
        return [
            ProtocolValue("momentum", 0.9, code),
            ProtocolValue("learning_rate", 0.1, code),
            ProtocolValue("weight_decay", 1e-3, code),
            ProtocolValue("decay_epochs", (34, 64, 94), code),
            ProtocolValue("epochs", 200, code),
            ProtocolValue("docl:weight_decay", 1e-3, "tianyizhou/DoCL docl.py:66"),
            *docl_protocol.docl_rows(0.1, "tianyizhou/DoCL docl.py:57"),
        ]

    def __init__(self, n=16, batch_size=4, protocol="paper"):
        self.protocol_table = type(self).protocol(protocol)
        self.batch_size = batch_size
        self.x = np.eye(n, dtype="float32")
        self.y = np.arange(n) % 3
        self.steps_per_epoch = n // batch_size
        self.docl = self.protocol_table.section("docl")

    def build_model(self, variable_size=False):
        return keras.Sequential([keras.Input((len(self.x),)), keras.layers.Dense(3)])

    def train_dataset(self, seed, image_size=None):
        return (
            tf.data.Dataset.from_tensor_slices((self.x, self.y))
            .shuffle(64, seed=seed)
            .batch(self.batch_size, drop_remainder=True)
        )

    def train_examples(self):
        return self.x, self.y

    def test_arrays(self, image_size=None):
        return self.x, self.y


def _cycle_starts_by_hand(plan, epoch_steps):
    ends = [plan.warmup_epochs, *plan.ends]
    starts, total = [0], 0
    for epoch, steps in enumerate(epoch_steps):
        total += steps
        if epoch + 1 in ends[:-1]:
            starts.append(total)
    return starts + [total]


@pytest.mark.parametrize("method", ["docl", "conventional_docl"])
def test_docl_regime_is_one_cosine_per_episode_decaying_085_per_cycle(method):
    recipe, epochs = TinyDoclRecipe(), 20
    arm = methods_lib.prepare(method, recipe, seed=0, epochs=epochs)
    plan = episodes.scaled_episodes(epochs, refresh_epochs=1)
    assert plan.warmup_epochs == 1 and plan.episode_epochs == (1, 2, 2, 4, 5)  # by hand
    if method == "docl":
        docl = arm.callbacks[0]
        assert (docl.warmup_epochs, docl.episode_epochs) == (1, [1, 2, 2, 4, 5])
        # 16 examples, batch 4: the warm start and refresh passes take 4 steps, episode m's
        # sampling epochs ceil(k_m / 4) with k_m = max(ceil(0.2 n), round(0.9^m n)).
        epoch_steps = [4]
        for m, length in enumerate(plan.episode_epochs):
            epoch_steps += [math.ceil(subset_size(m, 16, 0.9, 0.2) / 4)] * length + [4]
    else:
        epoch_steps = [4] * epochs
    bounds = _cycle_starts_by_hand(plan, epoch_steps)
    assert len(bounds) == 1 + 1 + len(plan.episode_epochs)
    for cycle, (start, end) in enumerate(zip(bounds, bounds[1:])):
        high, low = 0.1 * 0.85**cycle, 5e-4 * 0.85**cycle
        length = end - start
        last = low + 0.5 * (high - low) * (1 + math.cos(math.pi * (length - 1) / length))
        assert _rate_at(arm.optimizer, start) == pytest.approx(high, rel=1e-5)
        assert _rate_at(arm.optimizer, end - 1) == pytest.approx(last, rel=1e-4)
    assert arm.optimizer.nesterov and arm.optimizer.momentum == 0.9
    assert isinstance(arm.loss, keras.losses.CategoricalCrossentropy)


def test_official_docl_regime_follows_the_code_rates():
    recipe, epochs = TinyDoclRecipe(protocol="official"), 20
    arm = methods_lib.prepare("conventional_docl", recipe, seed=0, epochs=epochs)
    plan = episodes.scaled_episodes(epochs, refresh_epochs=1)
    bounds = _cycle_starts_by_hand(plan, [4] * epochs)
    # The warm start ramps linearly from 5e-4 towards 0.1 over 6/5 of its length.
    ramp_end = 5e-4 + (0.1 - 5e-4) * 5 / 6
    assert _rate_at(arm.optimizer, 0) == pytest.approx(5e-4, rel=1e-5)
    assert _rate_at(arm.optimizer, 2) == pytest.approx(5e-4 + (ramp_end - 5e-4) / 2, rel=1e-5)
    # Episodes 1-4 start 1 / 0.9 higher each, end at 5e-4; episode 5 starts x 0.9 and ends x 0.8.
    starts = [0.1 / 0.9**m for m in range(1, 5)] + [0.1 / 0.9**4 * 0.9]
    for cycle, top in enumerate(starts, start=1):
        assert _rate_at(arm.optimizer, bounds[cycle]) == pytest.approx(top, rel=1e-5)
    assert _rate_at(arm.optimizer, bounds[-1]) == pytest.approx(4e-4, rel=1e-4)
    assert arm.train.element_spec[1].shape[-1] == 3  # Mix-up: soft labels


def test_docl_pipeline_mixes_each_batch_as_numpy_with_the_own_example_dominant():
    recipe = TinyDoclRecipe()
    arm = methods_lib.prepare("docl", recipe, seed=5, epochs=20)
    seen = []
    for b, (x, y) in enumerate(arm.train.as_numpy_iterator()):
        # Before training DoCL feeds the examples in order: batch b holds 4b .. 4b + 3.
        rows = x[:, 4 * b : 4 * b + 4]
        own = np.diag(rows)
        # A row whose partner is itself keeps own weight 1 whatever lambda is.
        mixed = own[own < 1 - 1e-6]
        lam = float(mixed.max()) if mixed.size else 1.0
        assert np.all(own >= 0.5) and np.allclose(own[own < 1], lam, atol=1e-6)
        partner = [
            int(np.argmax(np.where(np.arange(4) == i, -1, r))) if r[i] < 1 else i
            for i, r in enumerate(rows)
        ]
        assert sorted(partner) == list(range(4))
        ref_x, ref_y = mixup.mixup_reference(
            recipe.x[4 * b : 4 * b + 4], recipe.y[4 * b : 4 * b + 4], lam, partner, 3
        )
        np.testing.assert_allclose(x, ref_x, atol=1e-6)
        np.testing.assert_allclose(y, ref_y, atol=1e-6)
        # Each row's label peaks at its own example's class: DoCL identifies it by it.
        assert np.all((y.argmax(-1) == recipe.y[4 * b : 4 * b + 4]) | (lam == 1.0))
        seen.append(lam)
    assert len(set(np.round(seen, 5))) > 1


def test_own_weight_is_the_larger_share_and_never_a_tie():
    lams = tf.constant([0.0, 0.2, 0.5, 0.7, 1.0])
    np.testing.assert_allclose(
        mixup.own_weight(lams).numpy(), [1.0, 0.8, 0.5 + 1e-6, 0.7, 1.0], rtol=1e-6
    )


def test_docl_and_its_baseline_train_under_the_same_regime(tmp_path):
    recipe = TinyDoclRecipe()
    rows = compare.compare(
        recipe, ["conventional", "docl"], range(1), 4, str(tmp_path), verbose=0, allow_inactive=True
    )
    assert [r["method"] for r in rows] == ["conventional", "conventional_docl", "docl"]
    assert rows[2]["mcnemar_vs"] == "conventional_docl"
    with pytest.raises(ValueError, match="needs `epochs` >= 3"):
        methods_lib.prepare("docl", recipe, seed=0, epochs=2)


# ET++: the compute clock in the recipe ------------------------------------------------------


def test_imagenet_plus_reads_its_schedule_on_the_compute_clock():
    with tfds.testing.mock_data(num_examples=8):
        recipe = imagenet.ImageNetPlus(
            train_size=8,
            image_size=224,
            batch_size=4,
            accumulation_steps=1,
            model="small_cnn",
            width=4,
            test_size=4,
        )
    budget, steps = 200, recipe.steps_per_epoch
    arm = methods_lib.prepare("efficient_train", recipe, seed=0, epochs=budget)
    stages = plus_stages(budget, 224)
    assert arm.epochs == sum(s.epochs for s in stages) and arm.callbacks[0].stages == stages
    schedule = recipe.arm_schedule(budget, arm.callbacks)
    assert schedule.stage_steps == [s.epochs * steps for s in stages]
    bounds = np.concatenate([[0], np.cumsum(schedule.stage_steps)])
    positions = clock.compute_clock(bounds, schedule.stage_steps, schedule.stage_costs)
    assert positions[-1] == pytest.approx(budget * steps, rel=0.003)
    official = official_plus_fractions(budget)
    for size in (96, 160, 224):
        spent = (
            sum(
                positions[i + 1] - positions[i] for i, r in enumerate(PLUS_RESOLUTIONS) if r == size
            )
            / positions[-1]
        )
        assert spent == pytest.approx(official[size], abs=0.003)
    # The optimizer reads the budget's warm-up + cosine at the clock.
    base = recipe.learning_rate(budget)
    for step in (bounds[1], bounds[2], bounds[6]):
        expected = float(
            base(float(clock.compute_clock(step, schedule.stage_steps, schedule.stage_costs)))
        )
        assert _rate_at(arm.optimizer, int(step)) == pytest.approx(expected, rel=1e-4)
    # The conventional arm runs the budget itself on the same schedule, by step.
    conventional = methods_lib.prepare("conventional", recipe, seed=0, epochs=budget)
    assert conventional.epochs == budget
    assert _rate_at(conventional.optimizer, 50 * steps) == pytest.approx(
        float(base(50 * steps)), rel=1e-5
    )
