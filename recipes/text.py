"""What the text recipes share: tokenisation applied once, array datasets, and the LSTM protocol.

Texts are turned into integer token ids once, when the recipe is built, so every method trains
on plain `(x, y)` arrays: the batched `tf.data` pipelines, DoCL's sampler (`train_examples()`)
and the runner's `predict` all see the same ids. Tokenisers run inside `tf.data`, which works
whatever the Keras backend.
"""

import keras
import numpy as np
import tensorflow as tf

import keras_curriculum as kc

from .base import Recipe
from .docl_protocol import docl_rows
from .models import lstm_classifier
from .protocol import USER_SOURCE
from .protocol import ProtocolValue
from .protocol_regimes import ProtocolRegimes

LERAC = "CroitoruAlin/LeRaC"
NO_LSTM_CODE = "the LeRaC code publishes no LSTM training"
NOT_MIXED = (
    "not given; chosen: none, because Mix-up mixes inputs and token ids cannot be "
    "mixed before the embedding"
)

# Joins the two texts of a sentence pair for the LSTM; survives TextVectorization's default
# standardisation (lower case, punctuation stripped) as one token.
PAIR_SEPARATOR = " xxsep "


def tokenized(tokenizer, texts, batch_size=1024):
    """Applies `tokenizer` to `texts` (an array, or a tuple of arrays) in tf.data; numpy out."""
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(batch_size)
    if isinstance(texts, tuple):
        dataset = dataset.map(lambda *parts: tokenizer(parts))
    else:
        dataset = dataset.map(tokenizer)
    return np.concatenate(list(dataset.as_numpy_iterator())).astype("int32")


def vectorize(train_texts, test_texts, vocabulary_size, sequence_length):
    """`(layer, x_train, x_test)`: word ids by a `TextVectorization` adapted on `train_texts` only.

    Texts are lower-cased, stripped of punctuation and split on whitespace; ids are padded with 0
    or truncated at the end to `sequence_length`; words outside the `vocabulary_size - 2` most
    frequent training words map to 1 (out of vocabulary).
    """
    layer = keras.layers.TextVectorization(
        max_tokens=vocabulary_size, output_sequence_length=sequence_length
    )
    layer.adapt(tf.data.Dataset.from_tensor_slices(train_texts).batch(1024))
    return layer, tokenized(layer, train_texts), tokenized(layer, test_texts)


def join_pairs(first, second):
    """One text per sentence pair, for models that read a single sequence."""
    return np.char.add(np.char.add(first.astype(str), PAIR_SEPARATOR), second.astype(str))


class TextRecipe(Recipe):
    """Shared recipe methods for token-id arrays `x_*` and int labels `y_*` set by the subclass."""

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def _set_arrays(self, x_train, y_train, x_test, y_test):
        if len(x_train) < self.batch_size:
            raise ValueError(
                f"`train_size` must be at least `batch_size` ({self.batch_size}): batches are "
                f"full-size. Received {len(x_train)} training examples."
            )
        self.x_train, self.y_train = x_train, y_train
        self.x_test, self.y_test = x_test, y_test
        self.steps_per_epoch = len(x_train) // self.batch_size

    @staticmethod
    def _check_image_size(image_size):
        if image_size is not None:
            raise ValueError(f"Text recipes take no `image_size`. Received: {image_size!r}")

    def train_dataset(self, seed, image_size=None):
        self._check_image_size(image_size)
        ds = tf.data.Dataset.from_tensor_slices((self.x_train, self.y_train))
        ds = ds.shuffle(len(self.x_train), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(self.batch_size, drop_remainder=True).prefetch(2)

    def train_examples(self):
        """Unbatched training examples, for stages that draw their own batches (DoCL)."""
        return self.x_train, self.y_train

    def test_dataset(self, image_size=None):
        self._check_image_size(image_size)
        return tf.data.Dataset.from_tensor_slices((self.x_test, self.y_test)).batch(512)

    def test_arrays(self, image_size=None):
        self._check_image_size(image_size)
        return self.x_test, self.y_test


def lstm_size(default, reason, embedding_dim=None, lstm_units=None, dense_units=None):
    """`(size, source)` of the LSTM's (embedding, LSTM units, dense units): the recipe's
    `default` unless the user gave any of them."""
    given = (embedding_dim, lstm_units, dense_units)
    if all(v is None for v in given):
        return tuple(default), (
            f"not given; chosen: embedding {default[0]}, LSTMs of "
            f"{default[1]}, dense {default[2]}, because {reason}"
        )
    return tuple(d if v is None else v for d, v in zip(default, given)), USER_SOURCE


def lstm_rows(sequence_length, tokens_source, size, size_source, learning_rate=1e-3):
    """The LSTM protocol rows: `size` = (embedding, LSTM units, dense units) of this recipe."""
    return [
        ProtocolValue(
            "model",
            "embedding, 2 LSTMs, dense (ReLU), logits",
            f"not given; chosen: two stacked LSTMs, because {NO_LSTM_CODE}",
        ),
        ProtocolValue("model_size", size, size_source),
        ProtocolValue("tokens", sequence_length, tokens_source),
        ProtocolValue(
            "optimizer",
            "AdamW",
            f"not given; chosen: AdamW, because {NO_LSTM_CODE} and the stored paper "
            "text does not reach Table 1",
        ),
        ProtocolValue(
            "learning_rate",
            learning_rate,
            f"not given; chosen: {learning_rate:g}, because it is Adam's usual rate "
            f"and {NO_LSTM_CODE}",
        ),
        ProtocolValue(
            "weight_decay", 0.01, "not given; chosen: 0.01, because it is PyTorch's AdamW default"
        ),
        ProtocolValue(
            "batch",
            256,
            f"not given; chosen: 256, because {NO_LSTM_CODE}; it keeps a few dozen "
            "steps per epoch on the smallest set",
        ),
        ProtocolValue(
            "lerac.duration",
            2,
            "not given; chosen: 2 epochs, because the comparison runs a few epochs; "
            "issue 13 quotes k = 3-4 from Table 1, which the stored text does not "
            "reach",
        ),
        ProtocolValue(
            "lerac.min_learning_rate",
            learning_rate * 1e-4,
            f"not given; chosen: 4 orders below the rate, because {NO_LSTM_CODE} "
            f"(the official BERT code starts 3 below, {LERAC} "
            "experiments/bert_experiments.py:30-31)",
        ),
        ProtocolValue("lerac.update", "exponential", "LeRaC Eq. 8"),
        ProtocolValue("cbs.sigma", 1.0, "pairlab/CBS arguments.py:20"),
        ProtocolValue("cbs.kernel_size", 3, "pairlab/CBS arguments.py:23"),
        ProtocolValue("cbs.factor", 0.9, "pairlab/CBS arguments.py:21"),
        ProtocolValue(
            "cbs.every",
            1,
            "not given; chosen: every epoch, because the comparison runs a few "
            "epochs (the CBS code: every 5, pairlab/CBS arguments.py:22)",
        ),
        ProtocolValue(
            "cbs_placement",
            "Gaussian on the token embeddings, along the tokens",
            "not given; chosen: after the embedding, because the CBS and LeRaC code "
            "have no text model and it is the one place a 1-D Gaussian fits without "
            "rewriting the LSTM cell",
        ),
        ProtocolValue(
            "docl:optimizer",
            "the recipe's (AdamW)",
            "not given; chosen: the recipe's optimizer, because DoCL's SGD protocol "
            "(tianyizhou/DoCL docl.py:65) is written for images",
        ),
        *docl_rows(
            learning_rate,
            f"not given; chosen: the recipe's rate {learning_rate:g}, "
            "because DoCL's 0.1 (tianyizhou/DoCL docl.py:57) is an SGD "
            "rate",
            mixup_alpha=None,
            mixup_source=NOT_MIXED,
        ),
    ]


class LstmRecipe(ProtocolRegimes, TextRecipe):
    """The LeRaC paper's LSTM model on texts given by the subclass (its `__init__` loads them).

    Neither the LSTM's size nor its training values could be read from a source (no LSTM code
    is published; the stored paper text ends before Table 1): the protocol table
    (`kc-recipes --recipe rotten_tomatoes --print-protocol`, `lstm_rows`) says "not given;
    chosen" for each, with the reason:
    - AdamW, learning rate 1e-3, weight decay 0.01 (PyTorch's default), mini-batch 256.
    - LeRaC: rates from 1e-3 (input side) down to 1e-7 (head), k = 2 epochs.
    - CBS: sigma 1, kernel 3, factor 0.9 (the CBS code's defaults), every epoch for a short
      run. The official CBS and LeRaC code has no text model; the Gaussian smooths the token
      embeddings along the sequence, before the first LSTM (the text analogue of smoothing a
      convolution's output, and the only place it can go without rewriting the LSTM cell).
    - DoCL: the official episode plan scaled to the run, one cosine cycle per episode on the
      AdamW rate, no Mix-up (token ids).
    """

    methods = ("conventional", "lerac", "cbs", "lerac+cbs", "docl")
    protocol_options = {"batch_size": "batch"}

    def _build_lstm(
        self,
        train_texts,
        y_train,
        test_texts,
        y_test,
        batch_size,
        sequence_length,
        vocabulary_size,
        embedding_dim,
        lstm_units,
        dense_units,
        protocol,
    ):
        table = self.protocol_table = type(self).protocol(
            protocol,
            batch_size=batch_size,
            sequence_length=sequence_length,
            embedding_dim=embedding_dim,
            lstm_units=lstm_units,
            dense_units=dense_units,
        )
        self.batch_size = table["batch"]
        self.learning_rate = table["learning_rate"]
        self.sequence_length = table["tokens"]
        self.vocabulary_size = vocabulary_size
        self.embedding_dim, self.lstm_units, self.dense_units = table["model_size"]
        self.vectorizer, x_train, x_test = vectorize(
            train_texts, test_texts, vocabulary_size, self.sequence_length
        )
        self._set_arrays(x_train, y_train, x_test, y_test)
        self.lerac = self.lerac_arguments()
        self.cbs = table.section("cbs")
        self.docl = table.section("docl")
        self.model_description = (
            f"LSTM (embedding {self.embedding_dim}, 2x{self.lstm_units}, "
            f"dense {self.dense_units}), {self.sequence_length} tokens"
        )

    def build_model(self, variable_size=False, smoothing=None):
        return lstm_classifier(
            self.vocabulary_size,
            self.sequence_length,
            2,
            embedding_dim=self.embedding_dim,
            lstm_units=self.lstm_units,
            dense_units=self.dense_units,
            smoothing=smoothing,
        )

    def build_smoothed_model(self, sigma, kernel_size):
        """The model with CBS's Gaussian smoothing of the token embeddings (1-D, along tokens)."""
        smoothing = kc.GaussianSmoothing(sigma, kernel_size, name="embedding_smoothing")
        return self.build_model(smoothing=smoothing)

    def make_optimizer(self, rate, regime):
        return keras.optimizers.AdamW(rate, weight_decay=self.protocol_table["weight_decay"])

    def optimizer(self, epochs):
        return self.make_optimizer(self.learning_rate, "default")
