"""The examples of DoCL's current epoch, in training order, as its `tf.data` stage reads them.

`EpochOrder` holds what the host drew at `on_epoch_begin`: the order of the epoch's examples
and, for streaming sources, which examples the epoch keeps and the permutation of each window.
Indices are int32 (int64 above 2**31 examples): 4 bytes per example of the epoch.
"""

import numpy as np

from keras_curriculum.docl.scores import sample_subset


def index_dtype(num_examples):
    return np.int32 if num_examples < 2**31 else np.int64


def shuffled_range(num_examples, rng):
    """`rng.permutation(num_examples)` (the same draws) without an int64 copy."""
    order = np.arange(num_examples, dtype=index_dtype(num_examples))
    rng.shuffle(order)
    return order


class EpochOrder:
    """The order of one epoch's examples, drawn by the host.

    Args:
        num_examples: examples in the training set.
        streaming: whether the source is read in full every epoch (then the epoch keeps a mask
            and permutes the kept examples within windows of `shuffle_window`).
        shuffle_window: window size of streaming sources.
        seed: seed of the window permutations.
    """

    def __init__(self, num_examples, streaming, shuffle_window, seed):
        self.num_examples = num_examples
        self.streaming = streaming
        self.shuffle_window = shuffle_window
        self.seed = seed
        self.order = None  # this epoch's examples, in training order
        self.mask = None  # streaming sources: which examples this epoch keeps
        self.windows = None  # streaming sources: the permutation of each window

    def draw(self, epoch, chosen):
        """The epoch trains `chosen` (in that order for random-access sources)."""
        if not self.streaming:
            self.order = chosen
            return
        mask = np.zeros(self.num_examples, bool)
        mask[chosen] = True
        del chosen
        kept = np.flatnonzero(mask).astype(index_dtype(self.num_examples))
        starts = range(0, len(kept), self.shuffle_window)
        self.windows = [
            np.random.default_rng([self.seed, epoch, w, 1]).permutation(
                len(kept[start : start + self.shuffle_window])
            )
            for w, start in enumerate(starts)
        ]
        for start, permutation in zip(starts, self.windows):
            window = kept[start : start + self.shuffle_window]
            window[:] = window[permutation]
        self.order, self.mask = kept, mask

    def clear(self):
        self.order = self.mask = self.windows = None

    # What the tf.data stage reads --------------------------------------------------------

    def current_order(self):
        if self.order is None:  # Keras peeks at one batch before training starts.
            return np.arange(self.num_examples, dtype=index_dtype(self.num_examples))
        return self.order

    def current_length(self):
        return self.num_examples if self.order is None else len(self.order)

    def order_slice(self, start, stop):
        """`current_order()[start:stop]` without making the whole default order."""
        if self.order is None:
            stop = min(stop, self.num_examples)
            return np.arange(start, max(stop, start), dtype=index_dtype(self.num_examples))
        return self.order[start:stop]

    def current_mask(self):
        if self.mask is None:
            return np.ones(self.num_examples, bool)
        return self.mask

    def window_permutation(self, window, size):
        """The permutation the host drew for `window` at `on_epoch_begin` (one source of truth)."""
        if self.windows is None:
            return np.arange(size, dtype=np.int64)
        permutation = self.windows[int(window)]
        if len(permutation) != int(size):
            raise RuntimeError(
                f"DoCL's window {int(window)} holds {int(size)} examples, {len(permutation)} "
                "were drawn: the source does not yield the same examples on every pass."
            )
        return permutation.astype(np.int64)

    def examples_of_step(self, step, batch_size):
        start = step * batch_size
        return self.order[start : start + batch_size]


def draw_epoch(plan, state, num_examples, tau, rng):
    """The examples an epoch of `plan` trains: sampled by score, or all of them shuffled."""
    if plan.phase == "sample":
        # The scores as they are, NaN filled chunk by chunk: no filled copy of n scores.
        fill = np.float32(state.mean_score())
        return sample_subset(state.scores, plan.size, tau, rng, fill=fill)
    return shuffled_range(num_examples, rng)
