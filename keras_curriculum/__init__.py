"""keras_curriculum: curriculum-learning methods for an unchanged Keras 3 `model.fit`.

- `LeRaC`: learning-rate curriculum (a callback).
- `GaussianSmoothing`, `add_smoothing`, `SigmaDecay`: curriculum by smoothing (CBS).
- `EfficientTrain`, `low_frequency_crop`, `LowFrequencyCrop`: EfficientTrain / ET++
  (`batch_saturation`: its per-stage batch sizes).
- `DoCL`, `DoCLLogits`, `CosineRestarts`: dynamics-optimized curriculum (DoCL).
"""

from keras_curriculum import batch_saturation
from keras_curriculum import docl
from keras_curriculum import schedules
from keras_curriculum.cbs import SigmaDecay
from keras_curriculum.cbs import add_smoothing
from keras_curriculum.cbs import bypass_epoch
from keras_curriculum.cbs import sigma_at_epoch
from keras_curriculum.cbs import smoothing_layers
from keras_curriculum.docl import CosineRestarts
from keras_curriculum.docl import DoCL
from keras_curriculum.docl import DoCLLogits
from keras_curriculum.efficient_train import EfficientTrain
from keras_curriculum.efficient_train import Stage
from keras_curriculum.efficient_train import plot_efficient_train
from keras_curriculum.frequency_crop import LowFrequencyCrop
from keras_curriculum.frequency_crop import low_frequency_crop
from keras_curriculum.layer_groups import LayerGroup
from keras_curriculum.layer_groups import depth_groups
from keras_curriculum.lerac import LeRaC
from keras_curriculum.smoothing import GaussianSmoothing
from keras_curriculum.smoothing import bypass_sigma
from keras_curriculum.smoothing import gaussian_kernel
from keras_curriculum.smoothing import off_centre_mass

__version__ = "0.1.0.dev0"

__all__ = [
    "CosineRestarts",
    "DoCL",
    "DoCLLogits",
    "EfficientTrain",
    "GaussianSmoothing",
    "LayerGroup",
    "LeRaC",
    "LowFrequencyCrop",
    "SigmaDecay",
    "Stage",
    "add_smoothing",
    "batch_saturation",
    "bypass_epoch",
    "bypass_sigma",
    "depth_groups",
    "docl",
    "gaussian_kernel",
    "low_frequency_crop",
    "off_centre_mass",
    "plot_efficient_train",
    "schedules",
    "sigma_at_epoch",
    "smoothing_layers",
]
