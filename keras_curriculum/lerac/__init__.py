"""LeRaC: learning-rate curriculum (Croitoru et al., IJCV 2024).

- `schedules`: the rate math (Eq. 8, Table 5, the authors' stepwise update), pure functions.
- `layer_groups`: the layer groups, input side first (depth in the graph, patterns, callables).
- `rate_scaling`: per-group rates inside an unchanged optimizer (through the patch registry).
- `LeRaC`: the callback; `plot_lerac`: its rates per group against the step.
"""

from keras_curriculum.lerac.callback import LeRaC
from keras_curriculum.lerac.layer_groups import LayerGroup
from keras_curriculum.lerac.layer_groups import depth_groups
from keras_curriculum.lerac.plot import plot_lerac

__all__ = ["LayerGroup", "LeRaC", "depth_groups", "plot_lerac"]
