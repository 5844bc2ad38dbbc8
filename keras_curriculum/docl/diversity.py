"""DoCL's optional diversity pruning: keep m of the k drawn examples by facility location.

From the k examples drawn for an epoch, greedily keep the m that maximise the facility-location
function F(S) = sum_i max_{j in S} K(i, j) over the k examples i, with the Gaussian kernel
K(i, j) = exp(-||x_i - x_j||^2 / (2 sigma^2)) on penultimate-layer features x and sigma the
mean pairwise distance between the k feature vectors (paper Eq. 15 as described in issue 13;
the official code instead mixes a feature "centrality" into the sampling probabilities,
tianyizhou/DoCL docl.py:465-473, 553-563).

Pure numpy, in chunks: no k x k matrix is ever held. With c = `chunk_size` and d feature
dimensions, memory is O(k * c + k * d) floats (k = 50,000, c = 256: a 100 MB float64 block);
time is O(k^2 d) for sigma, O(k^2 d) for the first greedy pick (every candidate's gain), then
lazy greedy: a candidate's gain is recomputed (O(k d) each, c at a time) only while its stale
upper bound still beats the best fresh gain, in batches that double from 1 up to c.
Greedy gives at least (1 - 1/e) of the optimum.
"""

import numpy as np

from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number


def _check_features(features):
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] == 0 or not np.all(np.isfinite(features)):
        raise ValueError(
            "`features` must be a finite 2-D array (examples, dimensions) with at least one "
            f"row. Received shape {features.shape}."
        )
    return features


def _squared_distances(features, norms, rows, columns):
    """||x_r - x_c||^2 for `rows` x `columns` (index arrays), clipped at 0."""
    block = (
        norms[rows][:, None] + norms[columns][None, :] - 2.0 * features[rows] @ features[columns].T
    )
    return np.maximum(block, 0.0)


def mean_pairwise_distance(features, chunk_size=256):
    """Mean Euclidean distance over the k (k - 1) ordered pairs of distinct rows (0 if k = 1)."""
    features = _check_features(features)
    chunk_size = check_int("chunk_size", chunk_size, 1)
    count = len(features)
    if count < 2:
        return 0.0
    norms = np.einsum("ij,ij->i", features, features)
    everything = np.arange(count)
    total = 0.0
    for start in range(0, count, chunk_size):
        rows = everything[start : start + chunk_size]
        distances = np.sqrt(_squared_distances(features, norms, rows, everything))
        # A point's distance to itself is 0 in exact arithmetic; rounding must not add to it.
        distances[np.arange(len(rows)), rows] = 0.0
        total += distances.sum()
    return float(total / (count * (count - 1)))


def facility_location_greedy(features, size, sigma=None, chunk_size=256):
    """Greedy facility-location selection of `size` rows of `features`.

    Args:
        features: float array `(k, d)`, the penultimate features of the k drawn examples.
        size: int in [0, k], the m examples to keep.
        sigma: float >= 0, the kernel width; None for the mean pairwise distance. With
            sigma = 0 (all features equal) the kernel is 1 everywhere.
        chunk_size: int >= 1, candidates (and rows) processed per block.

    Returns:
        int64 array of `size` row indices, in the order the greedy picks them (ties go to
        the lowest index, up to floating-point rounding).
    """
    features = _check_features(features)
    count = len(features)
    size = check_int("size", size, 0, count)
    chunk_size = check_int("chunk_size", chunk_size, 1)
    if sigma is None:
        sigma = mean_pairwise_distance(features, chunk_size)
    sigma = check_number("sigma", sigma, 0.0)
    scale = 0.0 if sigma == 0.0 else 1.0 / (2.0 * sigma * sigma)
    norms = np.einsum("ij,ij->i", features, features)
    everything = np.arange(count)

    def kernel(columns):
        return np.exp(-scale * _squared_distances(features, norms, everything, columns))

    coverage = np.zeros(count)  # max_{j in S} K(i, j); 0 for the empty set (K > 0)
    bounds = np.full(count, np.inf)  # upper bounds of the gains (submodularity keeps them valid)
    fresh = np.zeros(count, bool)
    chosen = []
    for _ in range(size):
        fresh[:] = False
        batch = 1
        while True:
            best = int(np.argmax(bounds))
            if fresh[best]:
                break
            stale = np.flatnonzero(~fresh & (bounds > -np.inf))
            # The stale candidates with the highest bounds are the ones that can still win;
            # usually a few re-evaluations settle a pick, so the batch grows only as needed.
            if len(stale) > batch:
                stale = stale[np.argpartition(-bounds[stale], batch - 1)[:batch]]
            batch = min(2 * batch, chunk_size)
            block = kernel(stale)
            bounds[stale] = np.maximum(block - coverage[:, None], 0.0).sum(axis=0)
            fresh[stale] = True
        chosen.append(best)
        coverage = np.maximum(coverage, kernel(np.array([best]))[:, 0])
        bounds[best] = -np.inf
    return np.array(chosen, np.int64)
