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


def sample_subset(scores, size, tau, rng):
    """`size` distinct indices drawn one by one with Pr(i) proportional to exp(score_i / tau).

    Gumbel-top-k: the `size` largest of score_i / tau + Gumbel noise are exactly a sample of
    successive draws without replacement (Vieira 2014; Kool et al. 2019), in O(n). The indices
    come back in random order.

    Args:
        scores: float array `(n,)`, finite.
        size: int in [0, n].
        tau: float > 0, temperature.
        rng: `numpy.random.Generator`.
    """
    scores = np.asarray(scores, np.float64)
    n = len(scores)
    if size >= n:
        return rng.permutation(n)
    keys = scores / tau + rng.gumbel(size=n)
    chosen = np.argpartition(-keys, size - 1)[:size]
    return rng.permutation(chosen)
