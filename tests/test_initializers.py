"""Tests of fnn.initializers beyond the weight schemes of tests/test_mlp.py: PyTorch's ``nn.Linear``
default (weights and biases uniform on +-1/sqrt(fan_in)), :func:`biases` and :func:`layer`."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import initializers


def _uniform_moments_ok(x, bound):
    """Mean 0 and variance bound^2 / 3 of U(-bound, bound), to five standard errors of the sample."""
    x = np.asarray(x, np.float64).ravel()
    n = x.size
    variance = bound**2 / 3
    # Var(X) = a^2/3 and Var(X^2) = a^4/5 - a^4/9 = 4 a^4 / 45 for X ~ U(-a, a).
    assert abs(x.mean()) < 5 * math.sqrt(variance / n)
    assert abs(np.mean(x**2) - variance) < 5 * math.sqrt(4 * bound**4 / 45 / n)
    # Uniform, not merely the right variance: ten equal bins each hold a tenth, within 5 sigma.
    counts, _ = np.histogram(x, bins=10, range=(-bound, bound))
    assert counts.sum() == n
    np.testing.assert_allclose(counts / n, 0.1, atol=5 * math.sqrt(0.09 / n))


def test_pytorch_is_a_scheme():
    assert "pytorch" in initializers.schemes()
    assert initializers.schemes() == tuple(sorted(initializers.schemes()))


@pytest.mark.parametrize(("fan_in", "fan_out"), [(512, 512), (100, 3000)])
def test_pytorch_weights_are_uniform_on_one_over_sqrt_fan_in(key, fan_in, fan_out):
    w, b = initializers.layer(key, fan_in, fan_out, "pytorch", dtype=jnp.float64)
    bound = 1 / math.sqrt(fan_in)
    assert w.shape == (fan_in, fan_out) and b.shape == (fan_out,)
    assert w.dtype == b.dtype == jnp.float64
    assert float(jnp.abs(w).max()) <= bound
    assert float(jnp.abs(w).max()) > 0.999 * bound  # the whole interval is used
    _uniform_moments_ok(w, bound)
    # The bound is fan_in's, not fan_out's nor their mean (they differ in the second case).
    assert float(jnp.abs(b).max()) <= bound
    np.testing.assert_array_equal(
        w, initializers.weights(jax.random.split(key)[0], fan_in, fan_out, "pytorch", dtype=jnp.float64)
    )


def test_pytorch_biases_are_uniform_on_one_over_sqrt_fan_in(key):
    fan_in, fan_out = 37, 200_000
    bound = 1 / math.sqrt(fan_in)
    for b in (
        initializers.biases(key, fan_in, fan_out, "pytorch", dtype=jnp.float64),
        initializers.layer(key, fan_in, fan_out, "pytorch", dtype=jnp.float64)[1],
    ):
        assert b.shape == (fan_out,)
        assert float(jnp.abs(b).max()) <= bound
        assert float(jnp.abs(b).max()) > 0.999 * bound
        _uniform_moments_ok(b, bound)


def test_pytorch_weights_and_biases_are_independent_draws(key):
    w, b = initializers.layer(key, 64, 4096, "pytorch", dtype=jnp.float64)
    for row in (w[0], w[-1]):
        assert abs(np.corrcoef(np.asarray(row), np.asarray(b))[0, 1]) < 5 / math.sqrt(4096)
    w2, b2 = initializers.layer(jax.random.fold_in(key, 1), 64, 4096, "pytorch", dtype=jnp.float64)
    assert not np.array_equal(np.asarray(w), np.asarray(w2)) and not np.array_equal(np.asarray(b), np.asarray(b2))


@pytest.mark.parametrize("scheme", ["he", "he_uniform", "glorot", "xavier", "glorot_normal", "lecun", "normal"])
def test_layer_of_the_other_schemes_is_weights_and_zero_biases(key, scheme):
    # Switching a model from weights(...) plus zeros to layer(...) draws the same parameters.
    w, b = initializers.layer(key, 6, 5, scheme, std=0.3, dtype=jnp.float64)
    np.testing.assert_array_equal(w, initializers.weights(key, 6, 5, scheme, std=0.3, dtype=jnp.float64))
    np.testing.assert_array_equal(b, np.zeros(5))
    assert b.dtype == jnp.float64
    np.testing.assert_array_equal(initializers.biases(key, 6, 5, scheme), np.zeros(5, np.float32))


def test_layer_jits_and_keeps_float32(key):
    draw = jax.jit(initializers.layer, static_argnums=(1, 2, 3))
    w, b = draw(key, 8, 3, "pytorch")
    assert w.dtype == b.dtype == jnp.float32
    w_eager, b_eager = initializers.layer(key, 8, 3, "pytorch")
    np.testing.assert_array_equal(w, w_eager)
    np.testing.assert_array_equal(b, b_eager)


def test_biases_and_layer_errors(key):
    with pytest.raises(ValueError, match="unknown initialisation scheme 'torch'.*pytorch"):
        initializers.biases(key, 3, 2, "torch")
    with pytest.raises(ValueError, match="unknown initialisation scheme 'torch'"):
        initializers.layer(key, 3, 2, "torch")
    with pytest.raises(ValueError, match="fan_in must be a positive integer, got 0"):
        initializers.biases(key, 0, 2, "pytorch")
    with pytest.raises(ValueError, match="fan_out must be a positive integer, got -1"):
        initializers.layer(key, 3, -1, "pytorch")
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        initializers.layer(key, 3, 2, "pytorch", dtype=jnp.int32)


def test_models_draw_pytorch_biases(key):
    # Every layer's biases, in the MLP and the residual MLP alike, are uniform on +-1/sqrt(fan_in).
    mlp_params, _ = fnn.MLP((16, 32, 4), scheme="pytorch").init(key, jnp.float64)
    residual, _ = fnn.ResidualMLP(16, 32, 1, 4, scheme="pytorch").init(key, jnp.float64)
    layers = [(p["W"], p["b"]) for p in mlp_params]
    layers += [(residual["input"]["W"], residual["input"]["b"]), (residual["output"]["W"], residual["output"]["b"])]
    layers += [(block[f"W{j}"], block[f"b{j}"]) for block in residual["blocks"] for j in (1, 2)]
    for w, b in layers:
        bound = 1 / np.sqrt(w.shape[0])
        assert 0 < float(jnp.abs(b).max()) <= bound and float(jnp.abs(w).max()) <= bound
        assert len(set(np.asarray(b).tolist())) == b.size  # drawn: no two biases alike
