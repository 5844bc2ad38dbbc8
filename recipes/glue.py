"""The LeRaC paper's language tasks from TFDS: RTE, QNLI (GLUE) and BoolQ (SuperGLUE).

Sentence-pair classification, two classes: premise / hypothesis (`glue/rte`), question /
sentence (`glue/qnli`), question / passage (`super_glue/boolq`). Data comes from
`tfds.load(name, split="train")` and the `validation` split is the test set (the GLUE and
SuperGLUE test labels are hidden; the paper and its official code report on validation). With
no network, loading raises `data.DatasetUnavailable` with the command to get the set;
tests run these recipes under `tfds.testing.mock_data` (random text: never report accuracy).

BERT recipes (`RTE`, `QNLI`, `BoolQ`), from the authors' code (`CroitoruAlin/LeRaC`,
experiments/bert_experiments.py, train/bert_train.py, data_handlers.py; the stored
bert_experiments.py is commented out but is the only BERT code). Every value with its source:
`kc-recipes --recipe glue/rte --print-protocol`.
- `preset="bert_large_en_uncased"` (default; the official code fine-tunes bert-large-uncased)
  loads keras-hub's pre-trained `BertTextClassifier` and its WordPiece preprocessor; Adamax 5e-5
  with no weight decay (the official optimizer), batch 10, pairs truncated to 100 tokens;
  LeRaC from 5e-5 down to 5e-8 over k = 3 rate events (once an epoch; BoolQ: 4 times an epoch,
  so 0.75 epoch). The official code trains 25 (RTE), 7 (QNLI) and 10 (BoolQ) epochs.
- `preset=None` (offline and tests) builds a random-init BERT of the given tiny size (default 2
  layers, hidden 32, 2 heads) with a WordPiece vocabulary computed from the training texts
  (`keras_hub.tokenizers.compute_word_piece_vocabulary`). It trains from scratch, so it uses
  Adamax at 1e-3 and batch 32 ("not given; chosen"); LeRaC keeps the official three orders of
  magnitude and its events.
- Methods: conventional, LeRaC and DoCL. No CBS: its text analogue smooths the token embeddings,
  which inside keras-hub's `BertBackbone` (embeddings summed and normalised within the backbone)
  means rebuilding the backbone; it is offered on the LSTM recipes instead.
- LeRaC's depth groups on the classifier are, from the input: token + segment embeddings,
  position embedding (keras-hub feeds it the token embeddings, hence one level deeper), the
  embedding LayerNorm, each transformer layer in order, the pooler dense, the logits. (The
  official code has two groups: all of BERT at the base rate, pooler + classifier 3 orders
  below.)

LSTM recipes (`RTELstm`, `QNLILstm`, `BoolQLstm`, the paper's other text model): the two texts
joined with a separator word, `TextVectorization` ids (100 tokens, vocabulary adapted on the
training split), and the protocol of `text.LstmRecipe` at the size this recipe's author
recalled as the paper's (embedding 128, LSTMs of 256, dense 128; not checkable).
"""

from typing import NamedTuple

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from . import data
from . import text
from .docl_protocol import docl_rows
from .models import packed_bert_classifier
from .protocol import USER_SOURCE
from .protocol import ProtocolValue
from .protocol import lerac_update_row
from .protocol_regimes import ProtocolRegimes

PAPER_PRESET = "bert_large_en_uncased"
BERT = "CroitoruAlin/LeRaC experiments/bert_experiments.py"
BERT_TRAIN = "train/bert_train.py"
# Per task, the official code's lines: epochs, the rate events per epoch, the loaders' batch.
_BERT_LINES = {
    "glue/rte": dict(epochs=(25, ":60"), per_epoch=(1, ":63"), batch=":66"),
    "glue/qnli": dict(epochs=(7, ":45"), per_epoch=(1, ":48"), batch=":51"),
    "super_glue/boolq": dict(epochs=(10, ":29"), per_epoch=(4, ":32"), batch=":36"),
}


def bert_rows(task, preset=PAPER_PRESET, batch_size=None, sequence_length=None):
    """The BERT protocol rows of a task (`task.tfds_name`), for `preset` (None: random init)."""
    lines = _BERT_LINES[task.tfds_name]
    epochs, epochs_at = lines["epochs"]
    per_epoch, per_epoch_at = lines["per_epoch"]
    if preset == PAPER_PRESET:
        model = ProtocolValue("model", PAPER_PRESET, f"{BERT}:35")
        rate = ProtocolValue("learning_rate", 5e-5, f"{BERT}:30, :46, :61")
        batch = ProtocolValue("batch", 10, f"{BERT}{lines['batch']}")
    else:
        model = ProtocolValue(
            "model",
            preset or "random-init BERT",
            USER_SOURCE
            if preset
            else "not given; chosen: a tiny random-init BERT, because it trains "
            "offline (no weights to download)",
        )
        rate = ProtocolValue(
            "learning_rate",
            1e-3,
            "not given; chosen: 1e-3, because the model trains from scratch (Adamax's usual rate)",
        )
        batch = ProtocolValue(
            "batch",
            32,
            "not given; chosen: 32, because the tiny model trains from scratch on a CPU",
        )
    return [
        model,
        ProtocolValue("optimizer", "Adamax", f"LeRaC Table 1; {BERT}:22"),
        rate,
        ProtocolValue(
            "weight_decay", None, f"{BERT}:22", note="none set: PyTorch's Adamax default is 0"
        ),
        batch,
        ProtocolValue("epochs", epochs, f"{BERT}{epochs_at}", note="the run's `--epochs`"),
        ProtocolValue(
            "tokens",
            100,
            "CroitoruAlin/LeRaC data_handlers.py:231, :263",
            note="both texts together",
        ),
        ProtocolValue(
            "lerac.duration",
            3,
            f"{BERT}:26, :33, {BERT_TRAIN}:35, :76-81",
            note="3 x10 events from the lowest rate to the base rate (the code "
            "stops below 4.9e-4 = 10 x 5e-5 - 1e-5)",
        ),
        ProtocolValue(
            "lerac_events_per_epoch",
            per_epoch,
            f"{BERT}{per_epoch_at}, {BERT_TRAIN}:35, :47-51, :70-71",
        ),
        ProtocolValue(
            "lerac.min_learning_rate",
            rate.value * 1e-3,
            f"{BERT}:30-31",
            note="base x clf_lr; the code starts all of BERT at the base rate and "
            "only the pooler and classifier 3 orders below",
        ),
        lerac_update_row(f"CroitoruAlin/LeRaC {BERT_TRAIN}:76-81"),
        ProtocolValue("lerac.c", 10.0, f"{BERT}:26"),
        ProtocolValue(
            "docl:optimizer",
            "the recipe's (Adamax)",
            "not given; chosen: the recipe's optimizer, because DoCL's SGD protocol "
            "(tianyizhou/DoCL docl.py:65) is written for images",
        ),
        *docl_rows(
            rate.value,
            f"not given; chosen: the recipe's rate {rate.value:g}, because "
            "DoCL's 0.1 (tianyizhou/DoCL docl.py:57) is an SGD rate",
            mixup_alpha=None,
            mixup_source=text.NOT_MIXED,
        ),
    ]


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
        texts.batch(1024), vocabulary_size, lowercase=True
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    return keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length)


def _packed(preprocessor):
    """The preprocessor's three id tensors stacked into one `(batch, 3, length)` int32 tensor."""

    def pack(pairs):
        # Passed as `x`: a positional 2-tuple would be read as (x, y), i.e. as (text, label).
        ids = preprocessor(x=pairs)
        return tf.stack(
            [tf.cast(ids[key], tf.int32) for key in ("token_ids", "segment_ids", "padding_mask")],
            axis=1,
        )

    return pack


class BertPairRecipe(ProtocolRegimes, text.TextRecipe):
    """A keras-hub BERT classifier on a sentence-pair task (subclasses set `name` and `task`).

    Args:
        preset: keras-hub preset of a pre-trained BERT (default the paper's
            `"bert_large_en_uncased"`, downloaded on first use), or None for a random-init BERT
            of the size below with a WordPiece vocabulary computed from the training texts.
        train_size: None (whole training split) or a stratified subset size.
        batch_size: None (10 with the paper's preset, as the official code; 32 without) or an
            int.
        sequence_length: None (100 tokens per pair, both texts together, as the official code)
            or an int.
        vocabulary_size: WordPiece vocabulary size when `preset` is None.
        num_layers, hidden_dim, num_heads: the random-init BERT's size when `preset` is None
            (feed-forward width 4 * hidden_dim).
        protocol: "paper" (default) or "official" (LeRaC's stepwise x10 update).
    """

    methods = ("conventional", "lerac", "docl")
    task = None
    protocol_options = {"batch_size": "batch", "sequence_length": "tokens"}

    @classmethod
    def protocol_rows(cls, preset=PAPER_PRESET, **unused):
        return bert_rows(cls.task, preset)

    def __init__(
        self,
        preset=PAPER_PRESET,
        train_size=None,
        batch_size=None,
        sequence_length=None,
        vocabulary_size=8000,
        num_layers=2,
        hidden_dim=32,
        num_heads=2,
        protocol="paper",
    ):
        table = self.protocol_table = type(self).protocol(
            protocol, preset=preset, batch_size=batch_size, sequence_length=sequence_length
        )
        self.preset = preset
        self.train_size = train_size
        self.batch_size = table["batch"]
        self.sequence_length = sequence_length = table["tokens"]
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        (first, second, y_train), (test_first, test_second, y_test) = load_pairs(
            self.task, train_size
        )
        if preset:
            self.preprocessor = self._from_preset(
                keras_hub.models.BertTextClassifierPreprocessor, sequence_length=sequence_length
            )
        else:
            self.preprocessor = _word_piece_preprocessor(
                first, second, vocabulary_size, sequence_length
            )
        pack = _packed(self.preprocessor)
        self._set_arrays(
            text.tokenized(pack, (first, second)),
            y_train,
            text.tokenized(pack, (test_first, test_second)),
            y_test,
        )
        self.learning_rate = table["learning_rate"]
        self.lerac = self.lerac_arguments()
        self.docl = table.section("docl")
        size = preset or f"random-init BERT ({num_layers} layers, hidden {hidden_dim})"
        self.description = (
            f"{self.task.tfds_name}, {size}, {len(self.x_train)} training pairs, "
            f"{sequence_length} tokens, batch {self.batch_size}, "
            f"Adamax {self.learning_rate:g}"
        )

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
            classifier = self._from_preset(
                keras_hub.models.BertTextClassifier, num_classes=2, preprocessor=None
            )
        else:
            backbone = keras_hub.models.BertBackbone(
                vocabulary_size=self.preprocessor.tokenizer.vocabulary_size(),
                num_layers=self.num_layers,
                num_heads=self.num_heads,
                hidden_dim=self.hidden_dim,
                intermediate_dim=4 * self.hidden_dim,
                max_sequence_length=self.sequence_length,
            )
            classifier = keras_hub.models.BertTextClassifier(backbone, 2, preprocessor=None)
        return packed_bert_classifier(classifier, self.sequence_length)

    def make_optimizer(self, rate, regime):
        return keras.optimizers.Adamax(rate, weight_decay=self.protocol_table["weight_decay"])

    def optimizer(self, epochs):
        return self.make_optimizer(self.learning_rate, "default")


class LstmPairRecipe(text.LstmRecipe):
    """The LeRaC paper's LSTM on a sentence-pair task, the two texts joined by a separator word.

    Args:
        train_size: None (whole training split) or a stratified subset size.
        batch_size: None (the protocol's 256) or an int.
        sequence_length: None (the protocol's 100 tokens) or an int.
        vocabulary_size: words kept by the tokeniser.
        embedding_dim, lstm_units, dense_units: the LSTM's size (None: 128, 256, 128).
        protocol: "paper" or "official" (the same here: no LSTM code is published).
    """

    task = None
    protocol_options = {"batch_size": "batch", "sequence_length": "tokens"}

    @classmethod
    def protocol_rows(cls, embedding_dim=None, lstm_units=None, dense_units=None, **unused):
        size, source = text.lstm_size(
            (128, 256, 128),
            "this recipe's author recalled it as the paper's size, which the "
            "stored paper text does not reach",
            embedding_dim,
            lstm_units,
            dense_units,
        )
        return text.lstm_rows(
            100,
            "not given; chosen: 100, because the official BERT code truncates pairs to "
            "100 tokens (CroitoruAlin/LeRaC data_handlers.py:231); issue 13 quotes 200 "
            "from Sec. 4.2, which the stored paper text does not reach",
            size,
            source,
        )

    def __init__(
        self,
        train_size=None,
        batch_size=None,
        sequence_length=None,
        vocabulary_size=20000,
        embedding_dim=None,
        lstm_units=None,
        dense_units=None,
        protocol="paper",
    ):
        self.train_size = train_size
        (first, second, y_train), (test_first, test_second, y_test) = load_pairs(
            self.task, train_size
        )
        self._build_lstm(
            text.join_pairs(first, second),
            y_train,
            text.join_pairs(test_first, test_second),
            y_test,
            batch_size,
            sequence_length,
            vocabulary_size,
            embedding_dim,
            lstm_units,
            dense_units,
            protocol,
        )
        self.description = (
            f"{self.task.tfds_name}, {self.model_description}, "
            f"{len(self.x_train)} training pairs, batch {self.batch_size}, "
            f"AdamW {self.learning_rate:g}"
        )


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
