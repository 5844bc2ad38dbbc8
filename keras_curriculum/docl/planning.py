"""`DoCL`'s plan of a fit: which phase, episode and subset size each epoch has, its steps, the
episode-tied learning-rate schedule and the host memory per example. Pure functions of the
epoch and of `DoCL`'s arguments, kept apart from the callback's Keras plumbing."""

import numpy as np

from keras_curriculum._validation import check_int
from keras_curriculum.docl import plan as docl_plan
from keras_curriculum.docl import sources
from keras_curriculum.docl.cosine import CosineRestarts


class EpochPlanning:
    """Planning methods of `DoCL` (a mixin: it reads the arguments `DoCL` keeps, and the
    dataset size and batching `DoCL.apply` records)."""

    def epoch_plan(self, epoch, epochs=None):
        """`EpochPlan(phase, episode, size)` of `epoch` (needs `apply` first) in a fit of
        `epochs` epochs (default: the current or last fit's; needed for a relative plan)."""
        self._require_data()
        warmup, episodes = docl_plan.resolve_plan(
            self.warmup_epochs, self.episode_epochs, epochs or self._fit_epochs, self.refresh
        )
        return docl_plan.epoch_plan(
            epoch,
            self.num_examples,
            warmup,
            episodes,
            self.fraction_decay,
            self.min_fraction,
            self.initial_fraction,
            self.refresh,
        )

    def steps_in_epoch(self, epoch, epochs=None):
        return sources.num_batches(
            self.epoch_plan(epoch, epochs).size, self.batch_size, self.drop_remainder
        )

    def learning_rate_schedule(
        self, max_learning_rate, epochs, min_learning_rate=0.0, max_decay=1.0, min_decay=1.0
    ):
        """A `CosineRestarts` schedule with one cycle for the warm start and one per episode.

        Args:
            max_learning_rate, min_learning_rate, max_decay, min_decay: see `CosineRestarts`.
            epochs: int >= 1, the epochs `fit` will run (the cycles are counted in steps,
                which differ per epoch as the subsets shrink). A `fit` of another number of
                epochs with this schedule raises a `ValueError` before its first step.
        """
        epochs = check_int("epochs", epochs, 1)
        cycles = docl_plan.episode_steps(
            [self.epoch_plan(e, epochs) for e in range(epochs)],
            [self.steps_in_epoch(e, epochs) for e in range(epochs)],
        )
        schedule = CosineRestarts(
            cycles, max_learning_rate, min_learning_rate, max_decay, min_decay
        )
        self._schedule_epochs[schedule] = epochs
        return schedule

    def memory_per_example(self, num_classes=None):
        """Host bytes per training example (previous logits, last step, score, label)."""
        num_classes = check_int("num_classes", num_classes, 2, allow_none=True) or self.num_classes
        if num_classes is None:
            raise ValueError("`num_classes` is unknown before training: pass it.")
        return num_classes * np.dtype(self.state_dtype).itemsize + 12
