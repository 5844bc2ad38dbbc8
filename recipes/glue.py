"""The LeRaC paper's language tasks from TFDS: RTE, QNLI (GLUE) and BoolQ (SuperGLUE).

Sentence-pair classification, two classes: premise / hypothesis (`glue/rte`), question /
sentence (`glue/qnli`), question / passage (`super_glue/boolq`). Data comes from
`tfds.load(name, split="train")` and the `validation` split is the test set (the GLUE and
SuperGLUE test labels are hidden; the paper and its official code report on validation). With
no network, loading raises `data.DatasetUnavailable` with the command to get the set;
tests run these recipes under `tfds.testing.mock_data` (random text: never report accuracy).

BERT recipes (`RTE`, `QNLI`, `BoolQ`), hyperparameters from LeRaC Table 1 (BERT row) and the
authors' code (`CroitoruAlin/LeRaC`, experiments/bert_experiments.py, data_handlers.py):
- `preset="bert_large_en_uncased"` (default; the official code fine-tunes bert-large-uncased)
  loads keras-hub's pre-trained `BertTextClassifier` and its WordPiece preprocessor; AdamW 5e-5
  (the official code uses Adamax), weight decay 0.01 (PyTorch's default; none is given), batch
  10, pairs truncated to 100 tokens; LeRaC from 5e-5 down to 5e-8 over k = 3 epochs (official
  code: k = 3). The paper trains 25 (RTE), 7 (QNLI) and 10 (BoolQ) epochs.
- `preset=None` (offline and tests) builds a random-init BERT of the given tiny size (default 2
  layers, hidden 32, 2 heads) with a WordPiece vocabulary computed from the training texts
  (`keras_hub.tokenizers.compute_word_piece_vocabulary`). It trains from scratch, so it uses the
  rate of the paper's other from-scratch text model (the LSTM's 1e-3) and batch 32; LeRaC keeps
  the BERT row's three orders of magnitude and k = 3.
- Methods: conventional, LeRaC and DoCL. No CBS: its text analogue smooths the token embeddings,
  which inside keras-hub's `BertBackbone` (embeddings summed and normalised within the backbone)
  means rebuilding the backbone; it is offered on the LSTM recipes instead.
- LeRaC's depth groups on the classifier are, from the input: token + segment embeddings,
  position embedding (keras-hub feeds it the token embeddings, hence one level deeper), the
  embedding LayerNorm, each transformer layer in order, the pooler dense, the logits.

LSTM recipes (`RTELstm`, `QNLILstm`, `BoolQLstm`, the paper's other text model): the two texts
joined with a separator word, `TextVectorization` ids (100 tokens, vocabulary adapted on the
training split), and the protocol of `text.LstmRecipe` at the paper's size.
"""

from typing import NamedTuple

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from . import data
from . import text
from .models import packed_bert_classifier

PAPER_PRESET = "bert_large_en_uncased"


class PairTask(NamedTuple):
    """A TFDS sentence-pair set: its name and the feature names of its two texts."""

    tfds_name: str
    first: str
    second: str


RTE_TASK = PairTask("glue/rte", "sentence1", "sentence2")
QNLI_TASK = PairTask("glue/qnli", "question", "sentence")
BOOLQ_TASK = PairTask("super_glue/boolq", "question", "passage")


def load_pairs(task, train_size=None, seed=0):
    """`((first, second, y), (test_first, test_second, test_y))` from TFDS train / validation.

    `train_size` keeps a stratified random subset of about that many training pairs.
    """
    train = data.tfds_text_pairs(task.tfds_name, "train", task.first, task.second)
    test = data.tfds_text_pairs(task.tfds_name, "validation", task.first, task.second)
    if train_size is not None and train_size < len(train[2]):
        _, keep = data.stratified_split(train[2], train_size / len(train[2]), seed)
        train = tuple(part[keep] for part in train)
    return train, test


def _word_piece_preprocessor(first, second, vocabulary_size, sequence_length):
    """A BERT preprocessor whose lower-cased WordPiece vocabulary comes from the given texts."""
    texts = tf.data.Dataset.from_tensor_slices(np.concatenate([first, second]))
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        texts.batch(1024), vocabulary_size, lowercase=True)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    return keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length)


def _packed(preprocessor):
    """The preprocessor's three id tensors stacked into one `(batch, 3, length)` int32 tensor."""

    def pack(pairs):
        # Passed as `x`: a positional 2-tuple would be read as (x, y), i.e. as (text, label).
        ids = preprocessor(x=pairs)
        return tf.stack([tf.cast(ids[key], tf.int32)
                         for key in ("token_ids", "segment_ids", "padding_mask")], axis=1)

    return pack


class BertPairRecipe(text.TextRecipe):
    """A keras-hub BERT classifier on a sentence-pair task (subclasses set `name` and `task`).

    Args:
        preset: keras-hub preset of a pre-trained BERT (default the paper's
            `"bert_large_en_uncased"`, downloaded on first use), or None for a random-init BERT
            of the size below with a WordPiece vocabulary computed from the training texts.
        train_size: None (whole training split) or a stratified subset size.
        batch_size: None (10 with a preset, as the paper; 32 without) or an int.
        sequence_length: tokens per pair, both texts together (official code: 100).
        vocabulary_size: WordPiece vocabulary size when `preset` is None.
        num_layers, hidden_dim, num_heads: the random-init BERT's size when `preset` is None
            (feed-forward width 4 * hidden_dim).
    """

    methods = ("conventional", "lerac", "docl")
    task = None

    def __init__(self, preset=PAPER_PRESET, train_size=None, batch_size=None, sequence_length=100,
                 vocabulary_size=8000, num_layers=2, hidden_dim=32, num_heads=2):
        self.preset = preset
        self.train_size = train_size
        self.batch_size = batch_size or (10 if preset else 32)
        self.sequence_length = sequence_length
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        (first, second, y_train), (test_first, test_second, y_test) = load_pairs(
            self.task, train_size)
        if preset:
            self.preprocessor = self._from_preset(
                keras_hub.models.BertTextClassifierPreprocessor, sequence_length=sequence_length)
        else:
            self.preprocessor = _word_piece_preprocessor(first, second, vocabulary_size,
                                                         sequence_length)
        pack = _packed(self.preprocessor)
        self._set_arrays(text.tokenized(pack, (first, second)), y_train,
                         text.tokenized(pack, (test_first, test_second)), y_test)
        self.learning_rate = 5e-5 if preset else 1e-3
        self.lerac = {"duration": 3, "min_learning_rate": self.learning_rate * 1e-3}
        self.docl = {"warmup_epochs": 1, "episode_epochs": 2}
        size = preset or f"random-init BERT ({num_layers} layers, hidden {hidden_dim})"
        self.description = (f"{self.task.tfds_name}, {size}, {len(self.x_train)} training pairs, "
                            f"{sequence_length} tokens, batch {self.batch_size}, "
                            f"AdamW {self.learning_rate:g}")

    def _from_preset(self, cls, **kwargs):
        try:
            return cls.from_preset(self.preset, **kwargs)
        except Exception as error:  # noqa: BLE001 - any download failure: say how to avoid it
            raise data.DatasetUnavailable(
                f"keras-hub preset {self.preset!r} could not be loaded ({type(error).__name__}: "
                f"{error}). It downloads on first use; offline, pass `preset=None` for a "
                "random-init BERT."
            ) from error

    def build_model(self, variable_size=False):
        if self.preset:
            classifier = self._from_preset(keras_hub.models.BertTextClassifier, num_classes=2,
                                           preprocessor=None)
        else:
            backbone = keras_hub.models.BertBackbone(
                vocabulary_size=self.preprocessor.tokenizer.vocabulary_size(),
                num_layers=self.num_layers, num_heads=self.num_heads,
                hidden_dim=self.hidden_dim, intermediate_dim=4 * self.hidden_dim,
                max_sequence_length=self.sequence_length)
            classifier = keras_hub.models.BertTextClassifier(backbone, 2, preprocessor=None)
        return packed_bert_classifier(classifier, self.sequence_length)

    def optimizer(self, epochs):
        return keras.optimizers.AdamW(self.learning_rate, weight_decay=0.01)


class LstmPairRecipe(text.LstmRecipe):
    """The LeRaC paper's LSTM on a sentence-pair task, the two texts joined by a separator word.

    Args:
        train_size: None (whole training split) or a stratified subset size.
        batch_size, sequence_length, vocabulary_size: as `text.LstmRecipe`.
        embedding_dim, lstm_units, dense_units: the LSTM's size (paper: 128, 256, not given).
    """

    task = None

    def __init__(self, train_size=None, batch_size=256, sequence_length=100,
                 vocabulary_size=20000, embedding_dim=128, lstm_units=256, dense_units=128):
        self.train_size = train_size
        (first, second, y_train), (test_first, test_second, y_test) = load_pairs(
            self.task, train_size)
        self._build_lstm(text.join_pairs(first, second), y_train,
                         text.join_pairs(test_first, test_second), y_test, batch_size,
                         sequence_length, vocabulary_size, embedding_dim, lstm_units, dense_units)
        self.description = (f"{self.task.tfds_name}, {self.model_description}, "
                            f"{len(self.x_train)} training pairs, batch {batch_size}, "
                            f"AdamW {self.learning_rate:g}")


class RTE(BertPairRecipe):
    name = "glue/rte"
    summary = "GLUE RTE sentence pairs, BERT (TFDS and keras-hub weights download)"
    task = RTE_TASK


class QNLI(BertPairRecipe):
    name = "glue/qnli"
    summary = "GLUE QNLI question / sentence pairs, BERT (TFDS and keras-hub download)"
    task = QNLI_TASK


class BoolQ(BertPairRecipe):
    name = "super_glue/boolq"
    summary = "SuperGLUE BoolQ question / passage pairs, BERT (TFDS and keras-hub download)"
    task = BOOLQ_TASK


class RTELstm(LstmPairRecipe):
    name = "glue/rte_lstm"
    summary = "GLUE RTE sentence pairs, LSTM (TFDS download)"
    task = RTE_TASK


class QNLILstm(LstmPairRecipe):
    name = "glue/qnli_lstm"
    summary = "GLUE QNLI question / sentence pairs, LSTM (TFDS download)"
    task = QNLI_TASK


class BoolQLstm(LstmPairRecipe):
    name = "super_glue/boolq_lstm"
    summary = "SuperGLUE BoolQ question / passage pairs, LSTM (TFDS download)"
    task = BOOLQ_TASK
