"""Mix-up (Zhang et al., ICLR 2018) for batched `tf.data` pipelines, as DoCL trains with it.

One mixing weight lam ~ Beta(alpha, alpha) per batch and one random permutation of the batch:
x' = lam x + (1 - lam) x[perm], y' = lam onehot(y) + (1 - lam) onehot(y[perm]). This is what
the official DoCL code does per batch (tianyizhou/DoCL docl.py:822-837: `np.random.beta` once
per call, `torch.randperm` of the batch; its loss lam CE(y) + (1 - lam) CE(y[perm]),
docl.py:1099, equals the cross-entropy on the mixed one-hot labels). Mixed labels are soft, so
the model trains with `CategoricalCrossentropy`, not the sparse loss.

`mixup_reference` is the numpy formula; `mix_batch` its TF twin (runs in `tf.data` under any
Keras backend); `mixup` maps a batched dataset, drawing lam and the permutation from seeds
that change every batch and every epoch.

`own_weight_first=True` mixes with max(lam, 1 - lam) instead of lam, so that every row keeps
more than half of its own example and its soft label peaks at its own class. Since lam and
1 - lam have the same Beta(alpha, alpha) law and the permutation is uniform, the batch holds
the same mixtures in law (a mixture dominated by the partner appears, in the other case, in
the partner's row); only which row carries it changes. DoCL needs it: it identifies each row's
example by its label (the argmax of the soft label).
"""

import numpy as np
import tensorflow as tf


def _check_alpha(alpha):
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, (int, float))
        or not (np.isfinite(alpha) and alpha > 0)
    ):
        raise ValueError(f"`alpha` must be a finite number > 0. Received: alpha={alpha!r}")
    return float(alpha)


def _check_classes(num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"`num_classes` must be an int >= 2. Received: num_classes={num_classes!r}"
        )
    return num_classes


def mixup_reference(images, labels, lam, permutation, num_classes):
    """numpy: `(lam x + (1 - lam) x[perm], lam onehot(y) + (1 - lam) onehot(y[perm]))`."""
    images = np.asarray(images, np.float32)
    onehot = np.eye(num_classes, dtype=np.float32)[np.asarray(labels).reshape(-1)]
    permutation = np.asarray(permutation)
    return (
        lam * images + (1.0 - lam) * images[permutation],
        lam * onehot + (1.0 - lam) * onehot[permutation],
    )


def sample_beta(seed, alpha, shape=()):
    """Beta(alpha, alpha) samples from a stateless seed (int tensor of shape [2]).

    Drawn as g1 / (g1 + g2) with g1, g2 ~ Gamma(alpha); when both underflow to 0 (only for a
    tiny alpha, where Beta puts its mass at 0 and 1) the sample is 1.
    """
    alpha = _check_alpha(alpha)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    first = tf.random.stateless_gamma(shape, seeds[0], alpha, dtype=tf.float32)
    second = tf.random.stateless_gamma(shape, seeds[1], alpha, dtype=tf.float32)
    total = first + second
    return tf.where(total > 0, first / tf.where(total > 0, total, 1.0), 1.0)


def mix_batch(images, labels, lam, permutation, num_classes):
    """TF twin of `mixup_reference` for one batch; images are cast to float32."""
    num_classes = _check_classes(num_classes)
    images = tf.cast(images, tf.float32)
    onehot = tf.one_hot(tf.reshape(tf.cast(labels, tf.int32), [-1]), num_classes)
    lam = tf.cast(lam, tf.float32)
    mixed = lam * images + (1.0 - lam) * tf.gather(images, permutation)
    return mixed, lam * onehot + (1.0 - lam) * tf.gather(onehot, permutation)


# Above 1/2 by a float32-safe margin: at lam = 1/2 exactly the argmax of two classes is a tie.
_OWN_MINIMUM = 0.5 + 1e-6


def own_weight(lam):
    """max(lam, 1 - lam), kept above 1/2 (`own_weight_first`)."""
    return tf.maximum(tf.maximum(lam, 1.0 - lam), _OWN_MINIMUM)


def seed_pairs(seed=None):
    """An endless dataset of stateless seeds (int64 tensors of shape [2]) to zip with a pipeline:
    with an int `seed` they repeat run to run and still differ from epoch to epoch."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def mixup(dataset, alpha, num_classes, seed=None, own_weight_first=False):
    """Mix-up on every batch of a batched `(images, integer labels)` dataset.

    Args:
        dataset: `tf.data.Dataset` of batched `(images, labels)`, labels as class indices.
        alpha: float > 0, the Beta(alpha, alpha) parameter (DoCL paper: 0.4 per issue 13;
            official code: 0.2 in the warm start and refresh passes, 1.0 / 1.2 decaying by 0.9
            per episode to 0.2 in the sampled epochs, docl.py:440-443, 500-504).
        num_classes: int >= 2, width of the one-hot labels.
        seed: int or None; with an int the draws repeat run to run (and still differ from
            batch to batch and epoch to epoch).
        own_weight_first: bool, mix with max(lam, 1 - lam) (see the module docstring).

    Returns:
        A dataset of `(mixed float32 images, float32 soft labels (batch, num_classes))`.
    """
    alpha = _check_alpha(alpha)
    num_classes = _check_classes(num_classes)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"`seed` must be an int or None. Received: seed={seed!r}")
    if not isinstance(own_weight_first, bool):
        raise TypeError(
            f"`own_weight_first` must be a bool. Received: own_weight_first={own_weight_first!r}"
        )
    seeds = seed_pairs(seed)

    def mix(batch, pair):
        images, labels = batch
        lam_seed, order_seed = tf.unstack(tf.random.experimental.stateless_split(pair, 2))
        permutation = tf.random.experimental.stateless_shuffle(
            tf.range(tf.shape(images)[0]), order_seed
        )
        lam = sample_beta(lam_seed, alpha)
        if own_weight_first:
            lam = own_weight(lam)
        return mix_batch(images, labels, lam, permutation, num_classes)

    return tf.data.Dataset.zip((dataset, seeds)).map(mix, num_parallel_calls=tf.data.AUTOTUNE)
