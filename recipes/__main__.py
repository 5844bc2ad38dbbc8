"""`python -m keras_curriculum_recipes`: the same runner as the `kc-recipes` command."""

import sys

# Absolute, so that `python -m recipes` from the repository root runs the installed package
# too (the same files, under the one name their classes are registered with).
from keras_curriculum_recipes.cli import main

if __name__ == "__main__":
    sys.exit(main())
