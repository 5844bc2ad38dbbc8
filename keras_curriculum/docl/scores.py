"""DoCL's score math (Zhou, Wang, Bilmes, AISTATS 2021): pure numpy functions.

The score of an example at a visit from the logits the train step already computed, its moving
average, and the sampler that draws each epoch's subset.
"""

import numpy as np


def docl_instant_scores(logits, previous_logits, labels, rho):
    """DoCL score of each example at one visit: <onehot(y) - softmax(f), (f - g) / rho>.

    `f` are the logits of this visit, `g` those of the example's previous visit and `rho` the
    sum of the learning rates of the optimizer steps in between. A constant added to a row of
    `f` or `g` does not change the score (the residual sums to zero), so log-probabilities may
    stand in for logits and `g` may be stored centred.

    Args:
        logits: float array `(m, C)`, f_t(x_i).
        previous_logits: float array `(m, C)`, g_i.
        labels: int array `(m,)`, class indices.
        rho: float array `(m,)` > 0.

    Returns:
        float32 array `(m,)`.
    """
    logits = np.asarray(logits, np.float32)
    previous = np.asarray(previous_logits, np.float32)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    residual = -probabilities
    residual[np.arange(len(labels)), np.asarray(labels)] += 1.0
    velocity = (logits - previous) / np.asarray(rho, np.float32)[:, None]
    return np.einsum("ij,ij->i", residual, velocity).astype(np.float32)


def ema_update(average, scores, gamma):
    """a_hat <- gamma * a_hat + (1 - gamma) * a; an example's first score (NaN before) is kept."""
    average = np.asarray(average, np.float32)
    scores = np.asarray(scores, np.float32)
    return np.where(np.isnan(average), scores, gamma * average + (1.0 - gamma) * scores)


def sampling_probabilities(scores, tau):
    """Pr(i) of a single draw: softmax(scores / tau) (float64)."""
    logits = np.asarray(scores, np.float64) / tau
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def _gumbel_keys(keys, scores, tau, rng, chunk, fill):
    """Writes score_i / tau + Gumbel noise into `keys`, `chunk` examples at a time."""
    for start in range(0, len(keys), chunk):
        part = np.asarray(scores[start : start + chunk], np.float64)
        if fill is not None:
            part = np.where(np.isnan(part), fill, part)
        keys[start : start + len(part)] = part / tau + rng.gumbel(size=len(part))


def sample_subset(scores, size, tau, rng, chunk=1 << 16, fill=None):
    """`size` distinct indices drawn one by one with Pr(i) proportional to exp(score_i / tau).

    Gumbel-top-k: the `size` largest of score_i / tau + Gumbel noise are exactly a sample of
    successive draws without replacement (Vieira 2014; Kool et al. 2019), in O(n). The indices
    come back in random order, as int32 (int64 from 2**31 examples). The keys are kept in
    float32 and formed twice from the same generator state (once to find the size-th largest
    by an in-place partition, once in example order to pick the examples above it), so a draw
    over n examples allocates 4 n bytes besides its result, where a copy for the partition
    and a filled copy of the scores would take 12 n: DoCL draws while its whole state is held.

    Args:
        scores: float array `(n,)`, finite where `fill` is None.
        size: int in [0, n].
        tau: float > 0, temperature.
        rng: `numpy.random.Generator`.
        chunk: examples whose keys are formed at a time.
        fill: None, or the score that stands for NaN scores (examples not scored yet).
    """
    n = len(scores)
    dtype = np.int32 if n < 2**31 else np.int64
    if size >= n:
        chosen = np.arange(n, dtype=dtype)  # as rng.permutation(n), without an int64 copy
    else:
        keys = np.empty(n, np.float32)
        start_state = rng.bit_generator.state
        _gumbel_keys(keys, scores, tau, rng, chunk, fill)
        keys.partition(n - size)
        threshold = keys[n - size]
        rng.bit_generator.state = start_state
        _gumbel_keys(keys, scores, tau, rng, chunk, fill)
        # The keys above the threshold and as many ties as needed, found chunk by chunk so
        # that no int64 index array of n entries is made.
        chosen, count = np.empty(size, dtype), 0
        for select in (np.greater, np.equal):
            for start in range(0, n, chunk):
                hits = np.flatnonzero(select(keys[start : start + chunk], threshold))
                hits = hits[: size - count]
                chosen[count : count + len(hits)] = hits + start
                count += len(hits)
    rng.shuffle(chosen)
    return chosen
