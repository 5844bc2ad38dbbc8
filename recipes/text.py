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
from .models import lstm_classifier

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
    layer = keras.layers.TextVectorization(max_tokens=vocabulary_size,
                                           output_sequence_length=sequence_length)
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


class LstmRecipe(TextRecipe):
    """The LeRaC paper's LSTM protocol on texts given by the subclass (its `__init__` loads them).

    Hyperparameters, from LeRaC Table 1 (LSTM row) unless said otherwise:
    - AdamW, learning rate 1e-3, mini-batch 256 (paper 256-512); weight decay 0.01 (PyTorch's
      default; the table gives none).
    - LeRaC: rates from 1e-3 (input side) down to 1e-7 (head), k = 2 epochs (paper 3-6: the
      comparison runs only a few epochs).
    - CBS (paper Table 1 via LeRaC: sigma 1, factor 0.9, every 2 epochs): sigma 1, kernel 3,
      factor 0.9, every epoch for a short run. The official CBS and LeRaC code has no text
      model; the Gaussian smooths the token embeddings along the sequence, before the first LSTM
      (the text analogue of smoothing a convolution's output, and the only place it can go
      without rewriting the LSTM cell).
    - DoCL: one warm-start epoch, episodes of 2 sampling epochs then a refresh pass.
    """

    methods = ("conventional", "lerac", "cbs", "lerac+cbs", "docl")
    learning_rate = 1e-3

    def _build_lstm(self, train_texts, y_train, test_texts, y_test, batch_size, sequence_length,
                    vocabulary_size, embedding_dim, lstm_units, dense_units):
        self.batch_size = batch_size
        self.sequence_length = sequence_length
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.lstm_units = lstm_units
        self.dense_units = dense_units
        self.vectorizer, x_train, x_test = vectorize(train_texts, test_texts, vocabulary_size,
                                                     sequence_length)
        self._set_arrays(x_train, y_train, x_test, y_test)
        self.lerac = {"duration": 2, "min_learning_rate": 1e-7}
        self.cbs = {"sigma": 1.0, "kernel_size": 3, "factor": 0.9, "every": 1}
        self.docl = {"warmup_epochs": 1, "episode_epochs": 2}
        self.model_description = (f"LSTM (embedding {embedding_dim}, 2x{lstm_units}, "
                                  f"dense {dense_units}), {sequence_length} tokens")

    def build_model(self, variable_size=False, smoothing=None):
        return lstm_classifier(self.vocabulary_size, self.sequence_length, 2,
                               embedding_dim=self.embedding_dim, lstm_units=self.lstm_units,
                               dense_units=self.dense_units, smoothing=smoothing)

    def build_smoothed_model(self, sigma, kernel_size):
        """The model with CBS's Gaussian smoothing of the token embeddings (1-D, along tokens)."""
        smoothing = kc.GaussianSmoothing(sigma, kernel_size, name="embedding_smoothing")
        return self.build_model(smoothing=smoothing)

    def optimizer(self, epochs):
        return keras.optimizers.AdamW(self.learning_rate, weight_decay=0.01)
