"""keras_curriculum: curriculum-learning methods for an unchanged Keras 3 `model.fit`."""

from keras_curriculum.layer_groups import LayerGroup
from keras_curriculum.layer_groups import depth_groups
from keras_curriculum.lerac import LeRaC
from keras_curriculum import schedules

__version__ = "0.1.0.dev0"

__all__ = ["LeRaC", "LayerGroup", "depth_groups", "schedules"]
