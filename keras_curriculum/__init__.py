"""keras_curriculum: curriculum-learning methods for an unchanged Keras 3 `model.fit`.

One subpackage per method, each with its pure math, its Keras objects and its plot:

- `keras_curriculum.lerac`: `LeRaC`, learning-rate curriculum (a callback).
- `keras_curriculum.cbs`: `GaussianSmoothing`, `add_smoothing`, `SigmaDecay` (CBS).
- `keras_curriculum.efficient_train`: `EfficientTrain`, `low_frequency_crop`,
  `LowFrequencyCrop` (EfficientTrain / ET++).
- `keras_curriculum.docl`: `DoCL`, `DoCLLogits`, `CosineRestarts` (DoCL).

`kc.split_batches(dataset)` gives each process of a multi-process JAX run its part of every
global batch. `kc.plot(curriculum, path)` draws any of them. Importing the package registers its
layers, callbacks and schedules with Keras, which a `.keras` file that holds them needs.
"""

from keras_curriculum.cbs import GaussianSmoothing
from keras_curriculum.cbs import SigmaDecay
from keras_curriculum.cbs import add_smoothing
from keras_curriculum.cbs import bypass_epoch
from keras_curriculum.cbs import bypass_sigma
from keras_curriculum.cbs import gaussian_kernel
from keras_curriculum.cbs import off_centre_mass
from keras_curriculum.cbs import plot_cbs
from keras_curriculum.cbs import sigma_at_epoch
from keras_curriculum.cbs import smoothing_layers
from keras_curriculum.docl import CosineRestarts
from keras_curriculum.docl import DoCL
from keras_curriculum.docl import DoCLLogits
from keras_curriculum.docl import plot_docl
from keras_curriculum.efficient_train import EfficientTrain
from keras_curriculum.efficient_train import LowFrequencyCrop
from keras_curriculum.efficient_train import Stage
from keras_curriculum.efficient_train import low_frequency_crop
from keras_curriculum.efficient_train import plot_efficient_train
from keras_curriculum.lerac import LayerGroup
from keras_curriculum.lerac import LeRaC
from keras_curriculum.lerac import depth_groups
from keras_curriculum.lerac import plot_lerac
from keras_curriculum.plotting import plot
from keras_curriculum.processes import split_batches

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
    "bypass_epoch",
    "bypass_sigma",
    "depth_groups",
    "gaussian_kernel",
    "low_frequency_crop",
    "off_centre_mass",
    "plot",
    "plot_cbs",
    "plot_docl",
    "plot_efficient_train",
    "plot_lerac",
    "sigma_at_epoch",
    "smoothing_layers",
    "split_batches",
]
