"""DoCL: dynamics-optimized curriculum learning (Zhou, Wang, Bilmes, AISTATS 2021).

- `scores`: the score, its moving average and the sampler (pure numpy).
- `plan`: Algorithm 1 as a function of the epoch (pure).
- `cosine`: `CosineRestarts`, the cyclic learning rate tied to the episodes.
- `metric`: `DoCLLogits`, which copies the logits out of the train step.
- `sources`: the `tf.data` stage's sources; `state`: per-example host state;
  `buffer`: reading the metric; `DoCL`: the callback; `plot_docl`.
"""

from keras_curriculum.docl.callback import DoCL
from keras_curriculum.docl.cosine import CosineRestarts
from keras_curriculum.docl.metric import DoCLLogits
from keras_curriculum.docl.plan import EpochPlan
from keras_curriculum.docl.plan import epoch_plan
from keras_curriculum.docl.plan import subset_size
from keras_curriculum.docl.plot import plot_docl
from keras_curriculum.docl.scores import docl_instant_scores
from keras_curriculum.docl.scores import ema_update
from keras_curriculum.docl.scores import sample_subset
from keras_curriculum.docl.scores import sampling_probabilities

__all__ = [
    "CosineRestarts",
    "DoCL",
    "DoCLLogits",
    "EpochPlan",
    "docl_instant_scores",
    "ema_update",
    "epoch_plan",
    "plot_docl",
    "sample_subset",
    "sampling_probabilities",
    "subset_size",
]
