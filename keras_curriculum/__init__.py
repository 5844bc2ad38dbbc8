"""keras_curriculum: curriculum-learning methods for an unchanged Keras 3 `model.fit`.

- `LeRaC`: learning-rate curriculum (a callback).
- `GaussianSmoothing`, `add_smoothing`, `SigmaDecay`: curriculum by smoothing (CBS).
- `DoCL`, `DoCLLogits`, `CosineRestarts`: dynamic instance hardness curriculum.
"""

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
    "GaussianSmoothing",
    "LayerGroup",
    "LeRaC",
    "SigmaDecay",
    "add_smoothing",
    "bypass_epoch",
    "bypass_sigma",
    "depth_groups",
    "docl",
    "gaussian_kernel",
    "off_centre_mass",
    "schedules",
    "sigma_at_epoch",
    "smoothing_layers",
]
