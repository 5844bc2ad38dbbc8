"""keras_curriculum_recipes: the papers' protocols per dataset, and the comparison runner.

Installed from the repository's `recipes/` folder under this name (a top-level `recipes` would
be shadowed by any `./recipes` folder); run it as `kc-recipes` or
`python -m keras_curriculum_recipes`. A new dataset is a `Recipe` subclass
(docs/adding_a_recipe.md).
"""

from .base import METHODS
from .base import Recipe
from .base import RecipeError

__all__ = ["METHODS", "Recipe", "RecipeError"]
