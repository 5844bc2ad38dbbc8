"""Mix-up for the DoCL recipes (`recipes/mixup.py`) against numpy."""

import numpy as np
import pytest
import tensorflow as tf
from keras_curriculum_recipes import mixup

pytestmark = pytest.mark.recipes  # needs the recipes package: not run on the Keras floor


def test_mix_batch_matches_numpy():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(6, 4, 4, 3)).astype(np.float32)
    labels = np.array([0, 2, 1, 2, 0, 1])
    permutation = np.array([3, 0, 5, 1, 2, 4])
    x, y = mixup.mix_batch(images, labels, 0.3, permutation, 3)
    ref_x, ref_y = mixup.mixup_reference(images, labels, 0.3, permutation, 3)
    np.testing.assert_allclose(x.numpy(), ref_x, rtol=1e-6)
    np.testing.assert_allclose(y.numpy(), ref_y, rtol=1e-6)
    # By hand for row 0: 0.3 image0 + 0.7 image3; labels 0.3 on class 0, 0.7 on class 2.
    np.testing.assert_allclose(ref_x[0], 0.3 * images[0] + 0.7 * images[3], rtol=1e-6)
    np.testing.assert_allclose(ref_y[0], [0.3, 0.0, 0.7], rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.2, 0.4, 1.0])
def test_beta_samples_match_numpy_beta(alpha):
    samples = mixup.sample_beta(tf.constant([7, 11], tf.int64), alpha, (40000,)).numpy()
    reference = np.random.default_rng(1).beta(alpha, alpha, size=400000)
    assert np.all((samples >= 0) & (samples <= 1))
    quantiles = np.linspace(0.05, 0.95, 19)
    np.testing.assert_allclose(
        np.quantile(samples, quantiles), np.quantile(reference, quantiles), atol=0.015
    )
    assert samples.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.03)


def _indexed_batches(num_batches, batch):
    """Image i is the one-hot vector e_i (so a mixed row reveals lam and its partner)."""
    eye = np.eye(num_batches * batch, dtype=np.float32)
    labels = np.arange(num_batches * batch) % 4
    return tf.data.Dataset.from_tensor_slices((eye, labels)).batch(batch), eye, labels


def _recover(x_batch, first_index):
    """(lam, permutation) of a mixed batch of one-hot images starting at `first_index`."""
    rows = x_batch[:, first_index : first_index + len(x_batch)]
    lams, permutation = [], []
    for i, row in enumerate(rows):
        own = row[i]
        others = row.copy()
        others[i] = 0.0
        partner = int(np.argmax(others)) if others.max() > 0 else i
        lams.append(own if partner != i else None)
        permutation.append(partner)
    return lams, np.array(permutation)


def test_pipeline_mixes_each_batch_with_one_lam_and_a_permutation():
    dataset, eye, labels = _indexed_batches(5, 8)
    mixed = mixup.mixup(dataset, alpha=0.4, num_classes=4, seed=3)
    assert int(mixed.cardinality()) == 5
    seen = []
    for b, (x, y) in enumerate(mixed.as_numpy_iterator()):
        lams, permutation = _recover(x, 8 * b)
        assert sorted(permutation.tolist()) == list(range(8))
        lam = next((v for v in lams if v is not None), 1.0)
        assert all(v is None or v == pytest.approx(lam, abs=1e-6) for v in lams)
        ref_x, ref_y = mixup.mixup_reference(
            eye[8 * b : 8 * b + 8], labels[8 * b : 8 * b + 8], lam, permutation, 4
        )
        np.testing.assert_allclose(x, ref_x, atol=1e-6)
        np.testing.assert_allclose(y, ref_y, atol=1e-6)
        seen.append(lam)
    assert len(set(np.round(seen, 6))) > 1  # lam is drawn per batch


def test_pipeline_draws_repeat_with_the_seed_and_change_every_epoch():
    dataset, _, _ = _indexed_batches(3, 8)

    def epoch(ds):
        return np.concatenate([x for x, _ in ds.as_numpy_iterator()])

    first = mixup.mixup(dataset, 0.4, 4, seed=9)
    again = mixup.mixup(dataset, 0.4, 4, seed=9)
    np.testing.assert_array_equal(epoch(first), epoch(again))
    assert not np.array_equal(epoch(first), epoch(first))  # a second pass draws anew


def test_arguments_are_checked():
    dataset, _, _ = _indexed_batches(1, 4)
    with pytest.raises(ValueError, match="`alpha` must be"):
        mixup.mixup(dataset, 0.0, 4)
    with pytest.raises(ValueError, match="`alpha` must be"):
        mixup.mixup(dataset, float("nan"), 4)
    with pytest.raises(ValueError, match="`num_classes` must be"):
        mixup.mixup(dataset, 0.4, 1)
    with pytest.raises(TypeError, match="`seed` must be"):
        mixup.mixup(dataset, 0.4, 4, seed="3")
