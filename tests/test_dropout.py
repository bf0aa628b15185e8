"""Tests of fnn.dropout: the mean is kept, masks follow keys, identities, errors, the vjp."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import checking, dropout

# ----------------------------------------------------------------------------------------
# Statistics.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_mean_is_preserved_and_rate_is_the_drop_probability(key, rate):
    n = 200_000
    y = np.asarray(dropout.dropout(jnp.ones((n,), jnp.float64), rate, key=key))
    # Every entry is 0 or 1 / (1 - rate); the mean of m is 1 with variance rate / (1 - rate).
    assert set(np.unique(y)) <= {0.0, 1 / (1 - rate)}
    standard_error = np.sqrt(rate / (1 - rate) / n)
    assert abs(y.mean() - 1) < 4 * standard_error
    dropped = np.mean(y == 0)
    assert abs(dropped - rate) < 4 * np.sqrt(rate * (1 - rate) / n)  # rate drops, it does not keep


def test_scaled_values_equal_input_over_keep_probability(key):
    x = jax.random.normal(jax.random.key(1), (50, 40), jnp.float64)
    y = dropout.dropout(x, 0.3, key=key)
    kept = np.asarray(y != 0)
    assert 0.5 < kept.mean() < 0.9
    np.testing.assert_allclose(np.asarray(y)[kept], np.asarray(x)[kept] / 0.7, rtol=1e-15)


# ----------------------------------------------------------------------------------------
# Keys.
# ----------------------------------------------------------------------------------------


def test_same_key_same_mask_different_keys_different_masks(key):
    x = jnp.ones((64, 32), jnp.float64)
    a = dropout.dropout(x, 0.5, key=key)
    b = dropout.dropout(x, 0.5, key=jax.random.key(0))
    c = dropout.dropout(x, 0.5, key=jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    np.testing.assert_array_equal(a, x * dropout.dropout_mask(key, x.shape, 0.5, jnp.float64))


def test_typed_and_raw_keys_give_the_same_mask():
    typed = dropout.dropout_mask(jax.random.key(3), (10, 10), 0.4)
    raw = dropout.dropout_mask(jax.random.PRNGKey(3), (10, 10), 0.4)
    np.testing.assert_array_equal(typed, raw)
    assert typed.dtype == jnp.float32


@pytest.mark.parametrize(
    "bad", [jnp.ones((3,), jnp.uint32), jnp.zeros((2,), jnp.float32), "key"], ids=["uint32[3]", "float", "str"]
)
def test_bad_key_is_refused(bad):
    with pytest.raises((ValueError, TypeError), match="key"):
        dropout.dropout(jnp.ones(3), 0.5, key=bad)


def test_batch_of_keys_is_refused(key):
    with pytest.raises(ValueError, match="single PRNG key"):
        dropout.dropout_mask(jax.random.split(key, 2), (3,), 0.5)


# ----------------------------------------------------------------------------------------
# Identities.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("zero", [0, 0.0, np.float64(0.0)], ids=["int", "float", "numpy"])
def test_rate_zero_is_the_identity_without_a_key(zero):
    x = jax.random.normal(jax.random.key(2), (5, 3), jnp.float64)
    np.testing.assert_array_equal(dropout.dropout(x, zero), x)
    np.testing.assert_array_equal(dropout.dropout(x, zero, train=False), x)


def test_traced_rate_zero_is_exactly_the_identity(key):
    x = jax.random.normal(jax.random.key(2), (5, 3), jnp.float64)
    y = jax.jit(lambda r: dropout.dropout(x, r, key=key))(jnp.float64(0.0))
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("rate", [0.5, 0.99])
def test_evaluation_is_the_identity_without_a_key(rate):
    x = jax.random.normal(jax.random.key(2), (5, 3), jnp.float64)
    np.testing.assert_array_equal(dropout.dropout(x, rate, train=False), x)
    np.testing.assert_array_equal(dropout.dropout(x, rate, key=jax.random.key(1), train=False), x)


def test_dtype_and_shape_kept(key):
    for dtype in (jnp.float32, jnp.float64):
        x = jnp.ones((2, 3, 4), dtype)
        y = dropout.dropout(x, 0.2, key=key)
        assert y.shape == x.shape and y.dtype == dtype


# ----------------------------------------------------------------------------------------
# Errors and traced rates.
# ----------------------------------------------------------------------------------------


def test_training_without_a_key_is_an_error():
    with pytest.raises(ValueError, match=r"dropout needs a PRNG key in training mode; pass key=\.\.\. or train=False"):
        dropout.dropout(jnp.ones(3), 0.5)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
@pytest.mark.parametrize("train", [True, False])
def test_rate_outside_unit_interval_names_rate_and_value(key, rate, train):
    with pytest.raises(ValueError, match=rf"rate must lie in \[0, 1\), got {rate}"):
        dropout.dropout(jnp.ones(3), rate, key=key, train=train)
    with pytest.raises(ValueError, match=rf"rate must lie in \[0, 1\), got {rate}"):
        dropout.dropout_mask(key, (3,), rate)


def test_non_scalar_or_non_numeric_rate_refused(key):
    with pytest.raises(ValueError, match="rate must be a scalar"):
        dropout.dropout(jnp.ones(3), jnp.array([0.1, 0.2]), key=key)
    with pytest.raises(TypeError, match="rate"):
        dropout.dropout(jnp.ones(3), "0.5", key=key)
    with pytest.raises(TypeError, match="rate"):
        dropout.dropout(jnp.ones(3), True, key=key)


@pytest.mark.parametrize("train", [True, False])
def test_invalid_traced_rate_gives_nan_and_a_checked_error(key, train):
    x = jnp.ones((4,), jnp.float64)
    f = jax.jit(lambda r: dropout.dropout(x, r, key=key, train=train))
    assert np.all(np.isnan(np.asarray(f(jnp.float64(1.5)))))
    assert np.all(np.isfinite(np.asarray(f(jnp.float64(0.5)))))
    err, _ = jax.jit(checking.checked(lambda r: dropout.dropout(x, r, key=key, train=train)))(jnp.float64(-0.1))
    assert "rate must lie in [0, 1)" in err.get()


def test_train_must_be_a_python_bool(key):
    with pytest.raises(TypeError, match="train must be a Python bool"):
        dropout.dropout(jnp.ones(3), 0.5, key=key, train=jnp.array(True))


def test_integer_input_refused(key):
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        dropout.dropout(jnp.ones(3, jnp.int32), 0.5, key=key)


def test_mask_dtype_must_be_floating(key):
    with pytest.raises(TypeError, match="floating dtype"):
        dropout.dropout_mask(key, (3,), 0.5, jnp.int32)


# ----------------------------------------------------------------------------------------
# Sweeps and the backward pass.
# ----------------------------------------------------------------------------------------


def test_vmap_over_rates_each_member_drops_its_own_rate(key):
    rates = jnp.array([0.1, 0.5, 0.8], jnp.float64)
    ys = jax.jit(jax.vmap(lambda r: dropout.dropout(jnp.ones((20_000,), jnp.float64), r, key=key)))(rates)
    dropped = np.mean(np.asarray(ys) == 0, axis=1)
    np.testing.assert_allclose(dropped, rates, atol=0.02)
    np.testing.assert_allclose(np.asarray(ys).mean(axis=1), 1.0, atol=0.05)


@pytest.mark.parametrize("rate", [0.25, 0.75])
def test_vjp_equals_jax_vjp(key, rate):
    x = jax.random.normal(jax.random.key(4), (6, 5), jnp.float64)
    dy = jax.random.normal(jax.random.key(5), (6, 5), jnp.float64)
    y, vjp = jax.vjp(lambda xx: dropout.dropout(xx, rate, key=key), x)
    (ref,) = vjp(dy)
    mask = dropout.dropout_mask(key, x.shape, rate, x.dtype)
    np.testing.assert_array_equal(y, x * mask)
    np.testing.assert_array_equal(dropout.vjp(mask, dy), ref)


def test_vjp_shape_mismatch(key):
    mask = dropout.dropout_mask(key, (3, 2), 0.5)
    with pytest.raises(ValueError, match=r"mask and dy must have the same shape, got \(3, 2\) and \(2, 3\)"):
        dropout.vjp(mask, jnp.ones((2, 3)))
