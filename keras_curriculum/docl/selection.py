"""The examples of DoCL's current epoch, in training order: what its `tf.data` stage reads."""

import numpy as np


class EpochSelection:
    """This epoch's examples as the host drew them at `on_epoch_begin` (one source of truth).

    `order` lists the examples in training order. For streaming sources, `mask` says which
    examples the epoch keeps and window w of `window` kept examples (in source order) is
    permuted by `windows[w]`, drawn from `[seed, epoch, w, 1]`. Before the first draw (Keras
    peeks at one batch before training starts) and after `clear`, everything is selected in
    source order.
    """

    def __init__(self):
        self.num_examples = None
        self.clear()

    def clear(self):
        self.order = self.mask = self.windows = None

    def draw(self, chosen, streaming, window, seed, epoch):
        if not streaming:
            self.order = np.asarray(chosen, np.int64)
            return
        mask = np.zeros(self.num_examples, bool)
        mask[chosen] = True
        ordered = np.flatnonzero(mask)
        starts = range(0, len(ordered), window)
        self.windows = [
            np.random.default_rng([seed, epoch, w, 1])
            .permutation(len(ordered[start : start + window]))
            .astype(np.int64)
            for w, start in enumerate(starts)
        ]
        self.order = np.concatenate(
            [ordered[start : start + window][perm] for start, perm in zip(starts, self.windows)]
            or [np.zeros(0, np.int64)]
        ).astype(np.int64)
        self.mask = mask

    def current_order(self):
        if self.order is None:
            return np.arange(self.num_examples, dtype=np.int64)
        return self.order

    def current_mask(self):
        if self.mask is None:
            return np.ones(self.num_examples, bool)
        return self.mask

    def window_permutation(self, window, size):
        """The permutation drawn for `window`, checked against the examples the source kept."""
        if self.windows is None:
            return np.arange(size, dtype=np.int64)
        permutation = self.windows[int(window)]
        if len(permutation) != int(size):
            raise RuntimeError(
                f"DoCL's window {int(window)} holds {int(size)} examples, {len(permutation)} "
                "were drawn: the source does not yield the same examples on every pass."
            )
        return permutation
