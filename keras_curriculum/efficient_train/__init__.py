"""EfficientTrain (Wang et al., ICCV 2023) and EfficientTrain++ (TPAMI 2024).

- `frequency_crop`: the low-frequency crop op and layer.
- `stages`: the ET and ET++ tables, the epoch -> stage map, compute fractions (pure).
- `saturation`: per-stage batch sizes (pure); `stage_batching`, `batch_plan`: their Keras side.
- `pipeline`: the `tf.data` stage; `EfficientTrain`: the callback; `plot_efficient_train`.
"""

from keras_curriculum.efficient_train.callback import EfficientTrain
from keras_curriculum.efficient_train.frequency_crop import LowFrequencyCrop
from keras_curriculum.efficient_train.frequency_crop import low_frequency_crop
from keras_curriculum.efficient_train.plot import plot_efficient_train
from keras_curriculum.efficient_train.stages import PAPER_MAGNITUDES
from keras_curriculum.efficient_train.stages import PAPER_SIZES_224
from keras_curriculum.efficient_train.stages import PLUS_MAGNITUDES
from keras_curriculum.efficient_train.stages import PLUS_SIZES_224
from keras_curriculum.efficient_train.stages import Stage
from keras_curriculum.efficient_train.stages import compute_clock_epochs
from keras_curriculum.efficient_train.stages import compute_fraction
from keras_curriculum.efficient_train.stages import paper_stages
from keras_curriculum.efficient_train.stages import plus_stages
from keras_curriculum.efficient_train.stages import stage_compute
from keras_curriculum.efficient_train.stages import stage_of_epoch

__all__ = [
    "EfficientTrain",
    "LowFrequencyCrop",
    "PAPER_MAGNITUDES",
    "PAPER_SIZES_224",
    "PLUS_MAGNITUDES",
    "PLUS_SIZES_224",
    "Stage",
    "compute_clock_epochs",
    "compute_fraction",
    "low_frequency_crop",
    "paper_stages",
    "plot_efficient_train",
    "plus_stages",
    "stage_compute",
    "stage_of_epoch",
]
