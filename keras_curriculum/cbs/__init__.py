"""CBS: curriculum by smoothing (Sinha, Garg, Larochelle, NeurIPS 2020).

- `smoothing`: the Gaussian kernel math and the `GaussianSmoothing` layer.
- `schedule`: sigma per epoch and the bypass epoch, pure functions.
- `insertion`: `add_smoothing` (a smoothing layer after each convolution) and `smoothing_layers`.
- `SigmaDecay`: the callback; `plot_cbs`: sigma per epoch.
"""

from keras_curriculum.cbs.callback import SigmaDecay
from keras_curriculum.cbs.insertion import add_smoothing
from keras_curriculum.cbs.insertion import smoothing_layers
from keras_curriculum.cbs.plot import plot_cbs
from keras_curriculum.cbs.schedule import bypass_epoch
from keras_curriculum.cbs.schedule import sigma_at_epoch
from keras_curriculum.cbs.smoothing import GaussianSmoothing
from keras_curriculum.cbs.smoothing import bypass_sigma
from keras_curriculum.cbs.smoothing import gaussian_kernel
from keras_curriculum.cbs.smoothing import is_identity
from keras_curriculum.cbs.smoothing import off_centre_mass

__all__ = [
    "GaussianSmoothing",
    "SigmaDecay",
    "add_smoothing",
    "bypass_epoch",
    "bypass_sigma",
    "gaussian_kernel",
    "is_identity",
    "off_centre_mass",
    "plot_cbs",
    "sigma_at_epoch",
    "smoothing_layers",
]
