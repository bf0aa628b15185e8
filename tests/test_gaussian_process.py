"""Tests of fnn.gaussian_process: kernels, the posterior against NumPy, masking, the evidence and its gradient, the fit."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from fnn import gaussian_process as gp

KERNELS = ["matern52", "rbf"]

# Compiled once each: op-by-op dispatch of the linear algebra is far slower than one compile.
condition = jax.jit(gp.condition, static_argnames="kernel")
predict = jax.jit(gp.predict, static_argnames="kernel")
log_marginal_likelihood = jax.jit(gp.log_marginal_likelihood, static_argnames="kernel")
lml_grad = jax.jit(jax.grad(gp.log_marginal_likelihood), static_argnames="kernel")


def _params(d, *, ell=(0.4, 0.7), sf2=1.3, noise=1e-3, mean=0.2):
    return gp.GPParams(
        jnp.log(jnp.asarray(ell[:d], jnp.float64)),
        jnp.log(jnp.asarray(sf2, jnp.float64)),
        jnp.log(jnp.asarray(noise, jnp.float64)),
        jnp.asarray(mean, jnp.float64),
    )


def _data(key, n=7, d=2):
    kx, ky = jax.random.split(key)
    x = jax.random.uniform(kx, (n, d), jnp.float64)
    y = jnp.sin(5 * x[:, 0]) + jnp.cos(3 * x[:, 1]) + 0.1 * jax.random.normal(ky, (n,), jnp.float64)
    return x, y


# An independent route in NumPy: explicit kernel formulas, np.linalg.solve and slogdet (no Cholesky).
def _np_kernel(a, b, params, kernel):
    ell = np.exp(np.asarray(params.log_lengthscales))
    sf2 = math.exp(float(params.log_signal_variance))
    r = np.sqrt((((np.asarray(a)[:, None, :] - np.asarray(b)[None, :, :]) / ell) ** 2).sum(-1))
    if kernel == "rbf":
        return sf2 * np.exp(-0.5 * r**2)
    return sf2 * (1 + math.sqrt(5) * r + 5 / 3 * r**2) * np.exp(-math.sqrt(5) * r)


def _np_system(params, x, kernel):
    noise = gp.noise_floor(np.float64) + math.exp(float(params.log_noise_variance))
    return _np_kernel(x, x, params, kernel) + noise * np.eye(len(x))


def _np_posterior(params, x, y, x_star, kernel):
    k = _np_system(params, x, kernel)
    ks = _np_kernel(x_star, x, params, kernel)
    m = float(params.mean)
    mean = m + ks @ np.linalg.solve(k, np.asarray(y) - m)
    var = math.exp(float(params.log_signal_variance)) - np.einsum("ij,ji->i", ks, np.linalg.solve(k, ks.T))
    return mean, var


def _np_lml(params, x, y, kernel):
    k = _np_system(params, x, kernel)
    r = np.asarray(y) - float(params.mean)
    return -0.5 * r @ np.linalg.solve(k, r) - 0.5 * np.linalg.slogdet(k)[1] - 0.5 * len(r) * math.log(2 * math.pi)


# ----------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernels_match_their_formulas(key, kernel):
    x1 = jax.random.uniform(key, (4, 2), jnp.float64)
    x2 = jax.random.uniform(jax.random.fold_in(key, 1), (3, 2), jnp.float64)
    params = _params(2, sf2=1.0)
    k = getattr(gp, kernel)(x1, x2, jnp.exp(params.log_lengthscales))
    np.testing.assert_allclose(k, _np_kernel(x1, x2, params, kernel), rtol=1e-13)
    kxx = getattr(gp, kernel)(x1, x1, jnp.exp(params.log_lengthscales))
    np.testing.assert_allclose(jnp.diagonal(kxx), np.ones(4), rtol=0, atol=1e-15)
    np.testing.assert_allclose(kxx, kxx.T, rtol=0, atol=1e-15)
    assert np.all(np.linalg.eigvalsh(np.asarray(kxx)) > 0)


def test_matern_gradient_is_finite_and_zero_at_coincident_points():
    # sqrt(r^2) is not differentiable at 0, but the Matern 5/2 kernel is (with derivative 0).
    x = jnp.array([[0.3, 0.6]], jnp.float64)
    grad = jax.grad(lambda z: gp.matern52(z, x, jnp.array([0.5, 0.5], jnp.float64))[0, 0])(x)
    np.testing.assert_array_equal(grad, np.zeros((1, 2)))
    grad_ell = jax.grad(lambda ell: gp.matern52(x, x, ell)[0, 0])(jnp.array([0.5, 0.5], jnp.float64))
    np.testing.assert_array_equal(grad_ell, np.zeros(2))


def test_kernel_shape_errors():
    with pytest.raises(ValueError, match="x1 .* must share d"):
        gp.matern52(jnp.zeros((2, 3)), jnp.zeros((2, 2)), jnp.ones(3))
    with pytest.raises(ValueError, match="x2 must have rank 2"):
        gp.rbf(jnp.zeros((2, 2)), jnp.zeros(2), jnp.ones(2))
    with pytest.raises(TypeError, match="x1 must be a floating-point array"):
        gp.rbf(jnp.zeros((2, 2), jnp.int32), jnp.zeros((2, 2)), jnp.ones(2))


# ----------------------------------------------------------------------------------------
# The posterior
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_posterior_matches_numpy(key, kernel):
    x, y = _data(key)
    x_star = jax.random.uniform(jax.random.fold_in(key, 2), (5, 2), jnp.float64)
    x_star = jnp.concatenate([x_star, x[:2]])
    params = _params(2)
    mean, var = predict(condition(params, x, y, kernel=kernel), x_star, kernel=kernel)
    ref_mean, ref_var = _np_posterior(params, x, y, x_star, kernel)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(var, ref_var, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_posterior_interpolates_noise_free_data(key, kernel):
    x, y = _data(key, n=6)
    params = _params(2, noise=1e-30)  # only the 1e-6 floor is left
    mean, var = predict(condition(params, x, y, kernel=kernel), x, kernel=kernel)
    np.testing.assert_allclose(mean, y, rtol=0, atol=1e-4)
    assert np.all(np.asarray(var) >= 0)
    assert float(jnp.max(var)) < 2e-6  # about the noise floor, against a prior variance of 1.3
    # Away from the data the variance is back near the prior's.
    _, far = predict(condition(params, x, y, kernel=kernel), jnp.full((1, 2), 5.0, jnp.float64), kernel=kernel)
    np.testing.assert_allclose(far, [1.3], rtol=1e-6)


@pytest.mark.slow
def test_masked_rows_do_not_change_the_posterior(key):
    x, y = _data(key, n=6)
    params = _params(2)
    garbage_x = jnp.concatenate([x, jnp.array([[0.5, 0.5], [jnp.nan, 1e6], [x[0, 0], x[0, 1]]], jnp.float64)])
    garbage_y = jnp.concatenate([y, jnp.array([1e9, jnp.nan, -7.0], jnp.float64)])
    mask = jnp.arange(9) < 6
    # The padding sits at the end and, to be sure position does not matter, also at the front.
    order = jnp.array([6, 0, 1, 7, 2, 3, 4, 8, 5])
    x_star = jax.random.uniform(jax.random.fold_in(key, 3), (4, 2), jnp.float64)
    expected = predict(condition(params, x, y), x_star)
    for idx in (jnp.arange(9), order):
        post = condition(params, garbage_x[idx], garbage_y[idx], mask[idx])
        got = predict(post, x_star)
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-11, atol=1e-14)
        lml = log_marginal_likelihood(params, garbage_x[idx], garbage_y[idx], mask[idx])
        np.testing.assert_allclose(lml, log_marginal_likelihood(params, x, y), rtol=1e-13)
        grad = lml_grad(params, garbage_x[idx], garbage_y[idx], mask[idx])
        grad_ref = lml_grad(params, x, y)
        for g, r in zip(grad, grad_ref, strict=True):
            np.testing.assert_allclose(g, r, rtol=1e-11, atol=1e-13)
            assert np.all(np.isfinite(np.asarray(g)))


def test_float32_cholesky_survives_clustered_points(key):
    # Nearly coincident inputs make K singular to working precision; the noise floor keeps L finite.
    x = (0.5 + 1e-6 * jax.random.normal(key, (30, 2))).astype(jnp.float32)
    y = jnp.zeros(30, jnp.float32)
    params = jax.tree.map(lambda a: a.astype(jnp.float32), _params(2, ell=(2.0, 2.0), noise=1e-12))
    post = condition(params, x, y)
    mean, var = predict(post, jnp.array([[0.5, 0.5], [0.1, 0.9]], jnp.float32))
    assert post.chol.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(post.chol))) and np.all(np.isfinite(np.asarray(mean)))
    assert np.all(np.asarray(var) > 0)


# ----------------------------------------------------------------------------------------
# The evidence and its gradient
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_log_marginal_likelihood_matches_numpy(key, kernel):
    x, y = _data(key)
    params = _params(2)
    np.testing.assert_allclose(
        log_marginal_likelihood(params, x, y, kernel=kernel), _np_lml(params, x, y, kernel), rtol=1e-12
    )


def test_log_marginal_likelihood_gradient_finite_differences_and_eq_5_9(key):
    x, y = _data(key)
    params = _params(2)
    grad = lml_grad(params, x, y)
    flat, unravel = ravel_pytree(params)
    lml = jax.jit(lambda f: log_marginal_likelihood(unravel(f), x, y))
    h = 1e-6
    fd = np.array([(lml(flat.at[i].add(h)) - lml(flat.at[i].add(-h))) / (2 * h) for i in range(flat.size)])
    np.testing.assert_allclose(ravel_pytree(grad)[0], fd, rtol=1e-7, atol=1e-8)
    # R&W eq. 5.9: d lml / d theta = 1/2 tr((alpha alpha^T - K^-1) dK/dtheta); for log sigma_f^2,
    # dK/dtheta is the noise-free kernel matrix, for the noise it is exp(log sigma_n^2) I.
    k = _np_system(params, x, "matern52")
    kinv = np.linalg.inv(k)
    alpha = kinv @ (np.asarray(y) - float(params.mean))
    inner = np.outer(alpha, alpha) - kinv
    d_signal = 0.5 * np.trace(inner @ _np_kernel(x, x, params, "matern52"))
    d_noise = 0.5 * np.trace(inner) * math.exp(float(params.log_noise_variance))
    np.testing.assert_allclose([grad.log_signal_variance, grad.log_noise_variance], [d_signal, d_noise], rtol=1e-9)


@pytest.mark.parametrize("kernel", KERNELS)
def test_hand_written_gradient_matches_autodiff(key, kernel):
    # Padded, so that the mask's handling in eq. 5.9 is checked too.
    x, y = _data(key, n=7, d=2)
    x = jnp.concatenate([x, jnp.full((2, 2), 0.5, jnp.float64)])
    y = jnp.concatenate([y, jnp.array([3.0, jnp.nan], jnp.float64)])
    mask = jnp.arange(9) < 7
    params = _params(2, ell=(0.3, 1.2), sf2=0.8, noise=2e-3, mean=-0.1)
    value, grads = jax.jit(gp.log_marginal_likelihood_and_grad, static_argnames="kernel")(
        params, x, y, mask, kernel=kernel
    )
    np.testing.assert_allclose(value, log_marginal_likelihood(params, x, y, mask, kernel=kernel), rtol=1e-13)
    expected = lml_grad(params, x, y, mask, kernel=kernel)
    for got, ref in zip(grads, expected, strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-11)


# ----------------------------------------------------------------------------------------
# Standardising and fitting
# ----------------------------------------------------------------------------------------


def test_standardize_uses_only_observed_rows():
    y = jnp.array([1.0, 2.0, 6.0, jnp.nan, 1e9], jnp.float64)
    mask = jnp.array([True, True, True, False, False])
    z, shift, scale = gp.standardize(y, mask)
    np.testing.assert_allclose(float(shift), 3.0)
    np.testing.assert_allclose(z[:3], (np.array([1.0, 2.0, 6.0]) - 3.0) / np.std([1.0, 2.0, 6.0]), rtol=1e-14)
    np.testing.assert_array_equal(z[3:], [0.0, 0.0])
    z, shift, scale = gp.standardize(jnp.full(3, 4.0, jnp.float64))
    assert float(scale) == 1.0 and float(shift) == 4.0 and np.all(np.asarray(z) == 0)


@pytest.mark.slow
def test_fit_raises_the_evidence_and_respects_the_bounds(key):
    x = jax.random.uniform(key, (12, 2), jnp.float64)
    y = gp.standardize(jnp.sin(6 * x[:, 0]) + 0.2 * x[:, 1])[0]
    mask = jnp.ones(12, bool)
    fitted = gp.fit(jax.random.fold_in(key, 1), x, y, mask, restarts=3, steps=150)
    start = gp.default_params(2, jnp.float64)
    assert float(log_marginal_likelihood(fitted, x, y)) > float(log_marginal_likelihood(start, x, y)) + 5
    for name, value in fitted._asdict().items():
        low, high = gp.BOUNDS[name]
        assert np.all((np.asarray(value) >= low - 1e-12) & (np.asarray(value) <= high + 1e-12)), name
    # ARD: the first input matters much more than the second, so its lengthscale is shorter.
    assert float(fitted.log_lengthscales[0]) < float(fitted.log_lengthscales[1])
    # Another data set of the same shapes reuses the compiled fit.
    size = gp._fit_jit._cache_size()
    gp.fit(jax.random.fold_in(key, 1), x, -y, mask, restarts=3, steps=150)
    assert gp._fit_jit._cache_size() == size


def test_validation_errors():
    x, y = jnp.zeros((3, 2)), jnp.zeros(3)
    params = gp.default_params(2)
    with pytest.raises(ValueError, match="kernel must be one of matern52, rbf, got 'cubic'"):
        condition(params, x, y, kernel="cubic")
    with pytest.raises(ValueError, match=r"y must have shape \[n\] = \(3,\)"):
        condition(params, x, jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match="mask must be a boolean array of shape"):
        condition(params, x, y, jnp.ones(3))
    with pytest.raises(ValueError, match=r"log_lengthscales \[3\]"):
        condition(gp.default_params(2), jnp.zeros((3, 3)), y)
    with pytest.raises(TypeError, match="params must be a GPParams"):
        log_marginal_likelihood((1.0, 2.0), x, y)
    with pytest.raises(ValueError, match="x_star must have 2 columns"):
        predict(condition(params, x, y), jnp.zeros((1, 3)))
    with pytest.raises(ValueError, match="restarts must be a positive integer"):
        gp.fit(jax.random.key(0), x, y, restarts=0)
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        gp.fit(jax.random.key(0), x, y, learning_rate=-1.0)
