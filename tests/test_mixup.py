"""Tests of fnn.mixup: convex mixing of pairs, Beta-distributed weights, validation, training on it."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import fnn
from fnn import mixup, train

B = 8
K = 2000  # keys per batched call; every batched call has this shape, so it compiles once

# mixup of one batch under many (key, alpha) pairs, as one compiled program.
_mix_many = jax.jit(jax.vmap(functools.partial(mixup.mixup, num_classes=3), in_axes=(0, None, None, 0)))


def _batch(classes=3):
    """An identity design: row i of x is e_i, so every mixed row shows its weights and partner."""
    x = jnp.eye(B, dtype=jnp.float64)
    y = jnp.arange(B, dtype=jnp.int32) % classes
    return x, y


def _recover(x_mixed):
    """(lambda, partner of each row) of a mixed identity design."""
    x_mixed = np.asarray(x_mixed)
    diagonal = np.diag(x_mixed)
    moved = diagonal < 1
    off = x_mixed - np.diag(diagonal)
    partner = np.where(moved, np.argmax(off, axis=1), np.arange(B))
    lam = diagonal[moved]
    return (lam[0] if lam.size else 1.0), partner, moved


@pytest.mark.slow
def test_mixed_batch_is_a_convex_combination_of_pairs(key):
    x, y = _batch()
    alphas = jnp.tile(jnp.array([0.2, 1.0, 4.0], jnp.float64), K // 3 + 1)[:K]
    xs, ys = _mix_many(jax.random.split(key, K), x, y, alphas)
    one_hot = np.eye(3)[np.asarray(y)]
    assert np.all(np.asarray(xs) >= 0) and np.all(np.asarray(xs) <= 1)
    np.testing.assert_allclose(np.sum(np.asarray(ys), axis=-1), 1.0, rtol=1e-14)
    for i in range(6):
        lam, partner, moved = _recover(xs[i])
        assert moved.any() and 0 < lam < 1
        assert sorted(partner.tolist()) == list(range(B))  # a permutation
        expected_x = lam * np.eye(B) + (1 - lam) * np.eye(B)[partner]
        np.testing.assert_allclose(xs[i], expected_x, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(ys[i], lam * one_hot + (1 - lam) * one_hot[partner], rtol=1e-14, atol=1e-15)


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.4, 2.0])
def test_lambda_is_beta_distributed(alpha):
    x, y = _batch()
    xs, _ = _mix_many(jax.random.split(jax.random.key(7), K), x, y, jnp.full(K, alpha, jnp.float64))
    # min of the diagonal is lambda unless the pairing is the identity (probability 1/8!)
    lam = np.min(np.diagonal(np.asarray(xs), axis1=1, axis2=2), axis=1)
    variance = 1 / (4 * (2 * alpha + 1))
    assert abs(lam.mean() - 0.5) < 4 * np.sqrt(variance / lam.size)
    assert abs(lam.var() - variance) < 0.1 * variance
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue > 1e-3


@pytest.mark.slow
def test_alpha_zero_is_the_identity(key):
    x, y = _batch()
    x_mixed, y_mixed = mixup.mixup(key, x, y, 0.0, num_classes=3)
    assert np.array_equal(np.asarray(x_mixed), np.asarray(x))
    assert np.array_equal(np.asarray(y_mixed), np.eye(3)[np.asarray(y)])
    soft = jnp.full((B, 2), 0.5, jnp.float64).at[0].set(jnp.array([0.9, 0.1]))
    assert np.array_equal(np.asarray(mixup.mixup(key, x, soft, 0.0)[1]), np.asarray(soft))


@pytest.mark.slow
def test_same_key_same_batch_other_key_other_batch(key):
    x, y = _batch()
    first = mixup.mixup(key, x, y, 1.0, num_classes=3)
    again = mixup.mixup(key, x, y, 1.0, num_classes=3)
    other = mixup.mixup(jax.random.fold_in(key, 1), x, y, 1.0, num_classes=3)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(np.asarray(first[0]), np.asarray(other[0]))


def test_jit_and_vmap_over_alphas_equal_single_calls(key):
    x, y = _batch()
    keys = jax.random.split(key, K)
    alphas = jnp.tile(jnp.array([0.0, 0.2, 1.0, 5.0], jnp.float64), K // 4)
    xs, ys = _mix_many(keys, x, y, alphas)
    for i, alpha in enumerate(alphas[:4].tolist()):
        x_one, y_one = mixup.mixup(keys[i], x, y, alpha, num_classes=3)
        np.testing.assert_allclose(xs[i], x_one, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(ys[i], y_one, rtol=1e-12, atol=1e-15)
    assert np.array_equal(np.asarray(xs[0]), np.asarray(x))


def test_float_targets_mix_as_they_are(key):
    x, _ = _batch()
    y = jnp.linspace(0.0, 1.0, B, dtype=jnp.float64)[:, None]  # binary targets [B, 1]
    x_mixed, y_mixed = mixup.mixup(key, x, y, 1.0)
    lam, partner, _ = _recover(x_mixed)
    np.testing.assert_allclose(y_mixed, lam * np.asarray(y) + (1 - lam) * np.asarray(y)[partner], rtol=1e-14)
    assert y_mixed.shape == (B, 1)


# ----------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------


def test_negative_alpha_raises(key):
    x, y = _batch()
    with pytest.raises(ValueError, match="alpha"):
        mixup.mixup(key, x, y, -0.1, num_classes=3)


def test_traced_negative_alpha_gives_nan(key):
    x, y = _batch()
    alphas = jnp.full(K, 0.5, jnp.float64).at[1].set(-0.5)
    xs, ys = _mix_many(jax.random.split(key, K), x, y, alphas)
    assert np.all(np.isnan(np.asarray(xs[1]))) and np.all(np.isnan(np.asarray(ys[1])))
    assert np.all(np.isfinite(np.asarray(xs[0]))) and np.all(np.isfinite(np.asarray(xs[2:])))


def test_bad_inputs_raise(key):
    x, y = _batch()
    with pytest.raises(ValueError, match="num_classes"):
        mixup.mixup(key, x, y, 0.2)
    with pytest.raises(ValueError, match="share their first axis"):
        mixup.mixup(key, x, y[:-1], 0.2, num_classes=3)
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        mixup.mixup(key, jnp.ones((B, 2), jnp.int32), y, 0.2, num_classes=3)
    with pytest.raises(ValueError, match="rank 1"):
        mixup.mixup(key, x, y[:, None], 0.2, num_classes=3)
    with pytest.raises(ValueError, match="at least one example"):
        mixup.mixup(key, jnp.zeros((0, 2)), jnp.zeros((0, 1)), 0.2)


# ----------------------------------------------------------------------------------------
# training on mixed batches
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_trainer_with_mixup_trains_soft_label_cross_entropy(key):
    x, y = fnn.data.blobs(key, 90, centers=3, std=1.0, dtype=jnp.float64)
    x_val, y_val = fnn.data.blobs(key, 300, centers=3, std=1.0, dtype=jnp.float64)  # same centres, more draws
    trainer = train.Trainer(fnn.MLP((2, 8, 3)), "cross_entropy", "adam", epochs=60)
    hp = {"learning_rate": 0.05, "mixup_alpha": 0.2}
    start = trainer.init(jax.random.key(1), hp, dtype=jnp.float64)
    state, history = trainer.fit(start, (x, y), (x_val, y_val), hp)
    assert np.all(np.isfinite(np.asarray(history.train_loss)))
    assert float(history.val_accuracy[-1]) > 0.9
    # the first loss is the initial network's on the mixed batch, not on the batch itself
    unmixed, _ = trainer.evaluate(start.params, start.model_state, x, y)
    assert abs(float(history.train_loss[0]) - float(unmixed)) > 1e-6
