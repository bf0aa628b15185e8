r"""Gaussian-process regression: ARD kernels, the exact posterior by Cholesky, type-II maximum likelihood.

A Gaussian process with constant mean :math:`m` and covariance :math:`k` is a prior over
functions, and the observations add independent Gaussian noise:

.. math:: f \sim \mathcal{GP}(m, k), \qquad y_i = f(x_i) + \varepsilon_i,
          \qquad \varepsilon_i \sim \mathcal N(0, \sigma_n^2).

**Kernels** (automatic relevance determination: one lengthscale :math:`\ell_j` per input
dimension), with the scaled distance :math:`r^2 = \sum_j (x_j - x'_j)^2 / \ell_j^2`:

.. math:: k_{5/2}(x, x') = \sigma_f^2 \Big(1 + \sqrt5 r + \tfrac53 r^2\Big) e^{-\sqrt5 r}
          \quad\text{(Matérn 5/2)}, \qquad
          k_{\mathrm{RBF}}(x, x') = \sigma_f^2 e^{-r^2/2}.

The Matérn 5/2 kernel is twice differentiable, rough enough for the response surfaces of
hyperparameter searches (Snoek et al. 2012), and its derivative in :math:`r` vanishes at
:math:`r = 0`; :math:`r` is taken with a guarded square root so that gradients are exact there.

**Posterior** (Rasmussen & Williams, Algorithm 2.1). With
:math:`K = k(X, X) + \sigma_n^2 I = L L^\top`, :math:`\alpha = L^{-\top} L^{-1} (y - m)` and, for
test points :math:`X_*`, :math:`k_* = k(X, X_*)`, :math:`v = L^{-1} k_*`:

.. math:: \mathbb E[f_*] = m + k_*^\top \alpha, \qquad
          \operatorname{Var}[f_*] = k(x_*, x_*) - v^\top v,

the latent (noise-free) variance, clamped below at a tiny positive value. The log marginal
likelihood is

.. math:: \log p(y \mid X, \theta) = -\tfrac12 (y - m)^\top \alpha - \sum_i \log L_{ii}
          - \tfrac n2 \log 2\pi.

**Padding and masks.** Every function takes ``mask: [n]`` booleans, True for the rows that are
observations. A masked row is replaced by an isolated unit-variance point with zero residual:
its row and column of :math:`K` are zero except a 1 on the diagonal, its residual and
cross-covariances are zero. Then :math:`L` is block-diagonal with a 1 for that row,
:math:`\alpha` is zero there, and posterior, log-likelihood and gradients are exactly those of
the unpadded data (the count :math:`n` is the number of unmasked rows). Arrays can therefore
be padded to a final size once, and a search that adds observations never recompiles.
Masked rows may hold any values, even NaN.

**Hyperparameters** :math:`\theta = (\log \ell, \log \sigma_f^2, \log \sigma_n^2, m)` are
fitted by :func:`fit` on targets standardised by :func:`standardize` (zero mean, unit
variance), maximising :math:`\log p(y \mid X, \theta) + \log p(\theta)` with Adam from a few
restarts at once (``jax.vmap`` of a ``lax.scan``). The weak Gaussian priors on the log
parameters and the box they are projected onto after every step are in :data:`PRIOR` and
:data:`BOUNDS`. The noise variance is :math:`\sigma_n^2 = \sigma_{\min}^2 + e^{\log\sigma_n^2}`,
whose floor :func:`noise_floor` (1e-6 in float64, 1e-4 in float32, in standardised units) is
also the jitter that keeps the Cholesky factorisation of clustered points stable.

References: C. E. Rasmussen, C. K. I. Williams, *Gaussian Processes for Machine Learning*, MIT
Press 2006, ch. 2 and 5; J. Snoek, H. Larochelle, R. P. Adams, *Practical Bayesian
optimization of machine learning algorithms*, NeurIPS 2012.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike, PRNGKey
from fnn.optim import optimizers as _optimizers

__all__ = [
    "BOUNDS",
    "KERNELS",
    "PRIOR",
    "GPParams",
    "Posterior",
    "condition",
    "covariance",
    "default_params",
    "fit",
    "log_marginal_likelihood",
    "log_marginal_likelihood_and_grad",
    "matern52",
    "noise_floor",
    "predict",
    "rbf",
    "standardize",
]

KERNELS = ("matern52", "rbf")

# (mean, standard deviation) of the Gaussian prior on each log hyperparameter, and on the mean.
PRIOR = {
    "log_lengthscales": (math.log(0.3), 1.0),
    "log_signal_variance": (0.0, 1.5),
    "log_noise_variance": (math.log(1e-2), 3.0),
    "mean": (0.0, 1.0),
}
# The box the hyperparameters are projected onto after every step of the fit.
BOUNDS = {
    "log_lengthscales": (math.log(1e-2), math.log(10.0)),
    "log_signal_variance": (math.log(1e-2), math.log(100.0)),
    "log_noise_variance": (math.log(1e-10), 0.0),
    "mean": (-5.0, 5.0),
}
_VARIANCE_FLOOR = 1e-18  # posterior variances are clamped here: positive, and far below any jitter


class GPParams(NamedTuple):
    """The hyperparameters of a GP, all unconstrained arrays of the working dtype.

    Attributes:
      log_lengthscales: ``[d]``, :math:`\\log \\ell_j`.
      log_signal_variance: ``[]``, :math:`\\log \\sigma_f^2`.
      log_noise_variance: ``[]``, the log of the noise variance above :func:`noise_floor`.
      mean: ``[]``, the constant prior mean :math:`m`.
    """

    log_lengthscales: Array
    log_signal_variance: Array
    log_noise_variance: Array
    mean: Array


class Posterior(NamedTuple):
    """A GP conditioned on data: what :func:`predict` needs, computed once.

    Attributes:
      params: the :class:`GPParams`.
      x: ``[n, d]`` inputs (masked rows zeroed).
      mask: ``[n]`` booleans, True for observations.
      chol: ``[n, n]`` lower Cholesky factor :math:`L` of :math:`K + \\sigma_n^2 I` (masked).
      alpha: ``[n]``, :math:`K^{-1}(y - m)`, zero on masked rows.
    """

    params: GPParams
    x: Array
    mask: Array
    chol: Array
    alpha: Array


def noise_floor(dtype: Any) -> float:
    """The smallest noise variance (standardised units), which doubles as Cholesky jitter.

    >>> noise_floor(jnp.float64), noise_floor(jnp.float32)
    (1e-06, 0.0001)
    """
    return 1e-6 if jnp.finfo(dtype).bits >= 64 else 1e-4


# ----------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------


def _scaled_sq_dist(x1: Array, x2: Array, lengthscales: Array) -> Array:
    a = x1 / lengthscales[None, :]
    b = x2 / lengthscales[None, :]
    diff = a[:, None, :] - b[None, :, :]  # differences, not |a|^2 + |b|^2 - 2ab: no cancellation
    return jnp.sum(diff * diff, axis=-1)


def _matern52(x1: Array, x2: Array, lengthscales: Array) -> Array:
    r2 = _scaled_sq_dist(x1, x2, lengthscales)
    positive = r2 > 0
    # sqrt has an infinite derivative at 0; the double where keeps the gradient finite (it is 0).
    r = jnp.where(positive, jnp.sqrt(jnp.where(positive, r2, 1.0)), 0.0)
    s = math.sqrt(5.0) * r
    return (1.0 + s + (5.0 / 3.0) * r2) * jnp.exp(-s)


def _rbf(x1: Array, x2: Array, lengthscales: Array) -> Array:
    return jnp.exp(-0.5 * _scaled_sq_dist(x1, x2, lengthscales))


_KERNEL_FNS = {"matern52": _matern52, "rbf": _rbf}


# Each correlation as a function of r^2 and its slope dk/d(r^2), for the hand-written gradient.
def _matern52_and_slope(r2: Array) -> tuple[Array, Array]:
    positive = r2 > 0
    s = math.sqrt(5.0) * jnp.where(positive, jnp.sqrt(jnp.where(positive, r2, 1.0)), 0.0)
    decay = jnp.exp(-s)
    return (1.0 + s + s * s / 3.0) * decay, -(5.0 / 6.0) * (1.0 + s) * decay


def _rbf_and_slope(r2: Array) -> tuple[Array, Array]:
    k = jnp.exp(-0.5 * r2)
    return k, -0.5 * k


_KERNEL_SLOPES = {"matern52": _matern52_and_slope, "rbf": _rbf_and_slope}


def _kernel_fn(kernel: Any):
    if not isinstance(kernel, str) or kernel not in _KERNEL_FNS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    return _KERNEL_FNS[kernel]


def _pair(x1: ArrayLike, x2: ArrayLike, lengthscales: ArrayLike) -> tuple[Array, Array, Array]:
    x1, x2 = _checks.float_array(x1, "x1"), _checks.float_array(x2, "x2")
    _checks.ndim_in(x1, "x1", (2,))
    _checks.ndim_in(x2, "x2", (2,))
    lengthscales = jnp.asarray(lengthscales, x1.dtype)
    if x2.shape[1] != x1.shape[1] or lengthscales.shape != (x1.shape[1],):
        raise ValueError(
            f"x1 [n, d], x2 [m, d] and lengthscales [d] must share d, got shapes {x1.shape}, {x2.shape} "
            f"and {lengthscales.shape}"
        )
    return x1, x2, lengthscales


def matern52(x1: ArrayLike, x2: ArrayLike, lengthscales: ArrayLike) -> Array:
    r"""The Matérn 5/2 correlation :math:`(1 + \sqrt5 r + \frac53 r^2) e^{-\sqrt5 r}` (unit variance).

    Args:
      x1: ``[n, d]`` inputs.
      x2: ``[m, d]`` inputs.
      lengthscales: ``[d]`` positive lengthscales :math:`\ell_j`.

    Returns:
      ``[n, m]``, 1 where two points coincide, falling towards 0 with distance.

    >>> k = matern52(jnp.zeros((1, 2)), jnp.array([[0.0, 0.0], [1.0, 0.0]]), jnp.ones(2))
    >>> [round(float(v), 4) for v in k[0]]
    [1.0, 0.5240]
    """
    return _matern52(*_pair(x1, x2, lengthscales))


def rbf(x1: ArrayLike, x2: ArrayLike, lengthscales: ArrayLike) -> Array:
    r"""The squared-exponential (RBF) correlation :math:`e^{-r^2/2}` (unit variance).

    Args:
      x1: ``[n, d]`` inputs.
      x2: ``[m, d]`` inputs.
      lengthscales: ``[d]`` positive lengthscales.

    Returns:
      ``[n, m]``.

    >>> round(float(rbf(jnp.zeros((1, 1)), jnp.ones((1, 1)), jnp.ones(1))[0, 0]), 4)
    0.6065
    """
    return _rbf(*_pair(x1, x2, lengthscales))


def default_params(dim: int, dtype: Any = None) -> GPParams:
    """The hyperparameters at the means of :data:`PRIOR`, for inputs of ``dim`` dimensions.

    >>> default_params(3).log_lengthscales.shape
    (3,)
    """
    dim = _checks.positive_int(dim, "dim")
    dtype = jnp.zeros(()).dtype if dtype is None else dtype
    return GPParams(
        jnp.full((dim,), PRIOR["log_lengthscales"][0], dtype),
        jnp.asarray(PRIOR["log_signal_variance"][0], dtype),
        jnp.asarray(PRIOR["log_noise_variance"][0], dtype),
        jnp.asarray(PRIOR["mean"][0], dtype),
    )


def _noise(params: GPParams) -> Array:
    return noise_floor(params.log_noise_variance.dtype) + jnp.exp(params.log_noise_variance)


def _cov(params: GPParams, x1: Array, x2: Array, kernel: str) -> Array:
    return jnp.exp(params.log_signal_variance) * _KERNEL_FNS[kernel](x1, x2, jnp.exp(params.log_lengthscales))


def _check_params(params: Any, dim: int) -> GPParams:
    if not isinstance(params, GPParams):
        raise TypeError(f"params must be a GPParams, got {type(params).__name__}")
    shapes = tuple(jnp.shape(p) for p in params)
    if shapes != ((dim,), (), (), ()):
        raise ValueError(f"params must hold log_lengthscales [{dim}] and three scalars, got shapes {shapes}")
    return params


def covariance(params: GPParams, x1: ArrayLike, x2: ArrayLike, *, kernel: str = "matern52") -> Array:
    r"""The prior covariance :math:`\sigma_f^2 k(x_1, x_2)` (without noise).

    Args:
      params: :class:`GPParams` with ``log_lengthscales: [d]``.
      x1: ``[n, d]``.
      x2: ``[m, d]``.
      kernel: ``"matern52"`` or ``"rbf"``.

    Returns:
      ``[n, m]``.

    >>> p = default_params(2)._replace(log_signal_variance=jnp.log(2.0))
    >>> round(float(covariance(p, jnp.zeros((1, 2)), jnp.zeros((1, 2)))[0, 0]), 4)
    2.0
    """
    _kernel_fn(kernel)
    x1, x2, _ = _pair(x1, x2, jnp.ones(jnp.shape(x1)[-1:]))
    return _cov(_check_params(params, x1.shape[1]), x1, x2, kernel)


# ----------------------------------------------------------------------------------------
# Data, standardisation, the posterior
# ----------------------------------------------------------------------------------------


def _data(x: ArrayLike, y: ArrayLike, mask: ArrayLike | None) -> tuple[Array, Array, Array]:
    x = _checks.float_array(x, "x")
    _checks.ndim_in(x, "x", (2,))
    y = _checks.float_array(y, "y")
    if y.shape != x.shape[:1]:
        raise ValueError(f"y must have shape [n] = {x.shape[:1]} to match x {x.shape}, got {y.shape}")
    if mask is None:
        mask = jnp.ones(x.shape[:1], bool)
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_ or mask.shape != x.shape[:1]:
        raise ValueError(f"mask must be a boolean array of shape {x.shape[:1]}, got {mask.dtype} {mask.shape}")
    y = y.astype(x.dtype)
    # Zero the padding so that whatever it held (NaN included) cannot reach a value or a gradient.
    return jnp.where(mask[:, None], x, 0.0), jnp.where(mask, y, 0.0), mask


def standardize(y: ArrayLike, mask: ArrayLike | None = None) -> tuple[Array, Array, Array]:
    r"""Shift and scale the observed targets to zero mean and unit variance: :math:`z = (y - \bar y)/s`.

    :math:`\bar y` and :math:`s` (population standard deviation) are taken over the unmasked
    entries; with fewer than two distinct observed values :math:`s = 1`. Masked entries of
    :math:`z` are 0.

    Args:
      y: ``[n]`` targets.
      mask: ``[n]`` booleans, True for observations (default: all).

    Returns:
      ``(z [n], shift [], scale [])`` with :math:`y = \bar y + s z` on observed rows.

    >>> z, shift, scale = standardize(jnp.array([1.0, 3.0, 99.0]), jnp.array([True, True, False]))
    >>> z.tolist(), float(shift), float(scale)
    ([-1.0, 1.0, 0.0], 2.0, 1.0)
    """
    y = _checks.float_array(y, "y")
    _checks.ndim_in(y, "y", (1,))
    _, y, mask = _data(y[:, None], y, mask)
    n = jnp.maximum(jnp.sum(mask), 1).astype(y.dtype)
    shift = jnp.sum(y) / n
    centred = jnp.where(mask, y - shift, 0.0)
    scale = jnp.sqrt(jnp.sum(centred * centred) / n)
    scale = jnp.where(scale > 0, scale, 1.0)
    return centred / scale, shift, scale


def _factor(params: GPParams, x: Array, y: Array, mask: Array, kernel: str) -> tuple[Array, Array, Array]:
    """(L, alpha, residual) of the masked system; masked rows become isolated unit-variance points."""
    both = mask[:, None] & mask[None, :]
    k = jnp.where(both, _cov(params, x, x, kernel), 0.0)
    k = k + jnp.diag(jnp.where(mask, _noise(params), 1.0))
    chol = jnp.linalg.cholesky(k)
    residual = jnp.where(mask, y - params.mean, 0.0)
    alpha = jax.scipy.linalg.cho_solve((chol, True), residual)
    return chol, alpha, residual


def _lml(params: GPParams, x: Array, y: Array, mask: Array, kernel: str) -> Array:
    chol, alpha, residual = _factor(params, x, y, mask, kernel)
    n = jnp.sum(mask).astype(x.dtype)
    return -0.5 * residual @ alpha - jnp.sum(jnp.log(jnp.diagonal(chol))) - 0.5 * n * math.log(2 * math.pi)


def log_marginal_likelihood(
    params: GPParams, x: ArrayLike, y: ArrayLike, mask: ArrayLike | None = None, *, kernel: str = "matern52"
) -> Array:
    r"""The log evidence :math:`\log p(y \mid X, \theta)` of the observed rows (Rasmussen & Williams eq. 2.30).

    .. math:: -\tfrac12 (y - m)^\top (K + \sigma_n^2 I)^{-1} (y - m) - \tfrac12 \log|K + \sigma_n^2 I|
              - \tfrac n2 \log 2\pi

    Differentiable in ``params`` (its gradient is R&W eq. 5.9) and in ``x``.

    Args:
      params: :class:`GPParams`.
      x: ``[n, d]`` inputs.
      y: ``[n]`` targets, as given (:func:`fit` standardises them first).
      mask: ``[n]`` booleans, True for observations (default: all); masked rows count for nothing.
      kernel: ``"matern52"`` or ``"rbf"``.

    Returns:
      A scalar.

    >>> x = jnp.array([[0.0], [1.0]])
    >>> round(float(log_marginal_likelihood(default_params(1), x, jnp.zeros(2))), 3)
    -1.848
    """
    _kernel_fn(kernel)
    x, y, mask = _data(x, y, mask)
    return _lml(_check_params(params, x.shape[1]), x, y, mask, kernel)


def _lml_and_grad(params: GPParams, x: Array, y: Array, mask: Array, kernel: str) -> tuple[Array, GPParams]:
    n = x.shape[0]
    lengthscales, signal = jnp.exp(params.log_lengthscales), jnp.exp(params.log_signal_variance)
    a = x / lengthscales[None, :]
    per_dim = jnp.square(a[:, None, :] - a[None, :, :])  # [n, n, d]: (x_aj - x_bj)^2 / l_j^2
    k, slope = _KERNEL_SLOPES[kernel](jnp.sum(per_dim, axis=-1))
    both = mask[:, None] & mask[None, :]
    k_f = jnp.where(both, signal * k, 0.0)
    chol = jnp.linalg.cholesky(k_f + jnp.diag(jnp.where(mask, _noise(params), 1.0)))
    residual = jnp.where(mask, y - params.mean, 0.0)
    alpha = jax.scipy.linalg.cho_solve((chol, True), residual)
    k_inv = jax.scipy.linalg.cho_solve((chol, True), jnp.eye(n, dtype=x.dtype))
    count = jnp.sum(mask).astype(x.dtype)
    value = -0.5 * residual @ alpha - jnp.sum(jnp.log(jnp.diagonal(chol))) - 0.5 * count * math.log(2 * math.pi)
    # R&W eq. 5.9 with W = alpha alpha^T - K^-1 on the observed block (dK/dtheta is 0 elsewhere).
    w = jnp.where(both, alpha[:, None] * alpha[None, :] - k_inv, 0.0)
    grads = GPParams(
        log_lengthscales=-signal * jnp.einsum("ab,abj->j", w * slope, per_dim),  # dK/dlog l_j = -2 s2 k' D_j
        log_signal_variance=0.5 * jnp.sum(w * k_f),
        log_noise_variance=0.5 * jnp.trace(w) * jnp.exp(params.log_noise_variance),
        mean=jnp.sum(alpha),
    )
    return value, grads


def log_marginal_likelihood_and_grad(
    params: GPParams, x: ArrayLike, y: ArrayLike, mask: ArrayLike | None = None, *, kernel: str = "matern52"
) -> tuple[Array, GPParams]:
    r"""The log evidence and its gradient in the hyperparameters, by hand (R&W eq. 5.9).

    With :math:`\alpha = K^{-1}(y - m)` and :math:`W = \alpha\alpha^\top - K^{-1}`,

    .. math:: \frac{\partial \log p}{\partial \theta_j} = \tfrac12 \operatorname{tr}\Big(W
              \frac{\partial K}{\partial \theta_j}\Big), \qquad
              \frac{\partial \log p}{\partial m} = \textstyle\sum_i \alpha_i,

    where, writing :math:`D_j` for the matrix of :math:`(x_{aj} - x_{bj})^2 / \ell_j^2` and
    :math:`k'` for :math:`dk/d(r^2)` (:math:`-\frac56(1 + \sqrt5 r)e^{-\sqrt5 r}` for Matérn 5/2,
    :math:`-\frac12 e^{-r^2/2}` for RBF),
    :math:`\partial K / \partial \log\ell_j = -2\sigma_f^2\, k' \circ D_j`,
    :math:`\partial K / \partial \log\sigma_f^2 = \sigma_f^2 k` and
    :math:`\partial K / \partial \log\sigma_n^2 = e^{\log\sigma_n^2} I`. One Cholesky
    factorisation and one inverse serve every component: under ``jax.vmap`` over restarts
    this is many times faster than differentiating through the factorisation. :func:`fit` uses it.

    Args:
      params: :class:`GPParams`.
      x: ``[n, d]`` inputs.
      y: ``[n]`` targets.
      mask: ``[n]`` booleans, True for observations (default: all).
      kernel: ``"matern52"`` or ``"rbf"``.

    Returns:
      ``(value, grads)``: the scalar of :func:`log_marginal_likelihood` and a :class:`GPParams`
      of its partial derivatives.

    >>> x = jnp.array([[0.0], [1.0]])
    >>> value, grads = log_marginal_likelihood_and_grad(default_params(1), x, jnp.zeros(2))
    >>> round(float(value), 3), round(float(grads.mean), 4)
    (-1.848, 0.0)
    """
    _kernel_fn(kernel)
    x, y, mask = _data(x, y, mask)
    return _lml_and_grad(_check_params(params, x.shape[1]), x, y, mask, kernel)


def condition(
    params: GPParams, x: ArrayLike, y: ArrayLike, mask: ArrayLike | None = None, *, kernel: str = "matern52"
) -> Posterior:
    r"""Condition the GP on the observed rows: the Cholesky factor and :math:`\alpha` (R&W Algorithm 2.1).

    Args:
      params: :class:`GPParams`.
      x: ``[n, d]`` inputs.
      y: ``[n]`` targets.
      mask: ``[n]`` booleans, True for observations (default: all).
      kernel: ``"matern52"`` or ``"rbf"``; pass the same to :func:`predict`.

    Returns:
      A :class:`Posterior`.

    >>> post = condition(default_params(1), jnp.array([[0.5]]), jnp.array([2.0]))
    >>> post.chol.shape, post.alpha.shape
    ((1, 1), (1,))
    """
    _kernel_fn(kernel)
    x, y, mask = _data(x, y, mask)
    params = _check_params(params, x.shape[1])
    chol, alpha, _ = _factor(params, x, y, mask, kernel)
    return Posterior(params, x, mask, chol, alpha)


def _predict(posterior: Posterior, x_star: Array, kernel: str) -> tuple[Array, Array]:
    params = posterior.params
    k_star = jnp.where(posterior.mask[None, :], _cov(params, x_star, posterior.x, kernel), 0.0)  # [m, n]
    mean = params.mean + k_star @ posterior.alpha
    v = jax.scipy.linalg.solve_triangular(posterior.chol, k_star.T, lower=True)  # [n, m]
    variance = jnp.exp(params.log_signal_variance) - jnp.sum(v * v, axis=0)
    return mean, jnp.maximum(variance, _VARIANCE_FLOOR)


def predict(posterior: Posterior, x_star: ArrayLike, *, kernel: str = "matern52") -> tuple[Array, Array]:
    r"""Posterior mean and latent variance of :math:`f` at test points.

    .. math:: \mu_* = m + k_*^\top \alpha, \qquad \sigma_*^2 = \sigma_f^2 - \|L^{-1} k_*\|^2
              \;(\text{clamped at } 10^{-18})

    Args:
      posterior: from :func:`condition`.
      x_star: ``[m, d]`` test inputs.
      kernel: the kernel ``posterior`` was conditioned with.

    Returns:
      ``(mean [m], variance [m])``; the variance is that of :math:`f`, without the noise.

    >>> x = jnp.array([[0.0], [1.0]])
    >>> post = condition(default_params(1)._replace(log_noise_variance=jnp.array(-20.0)), x, jnp.array([1.0, -1.0]))
    >>> mean, var = predict(post, x)
    >>> [round(float(m), 2) for m in mean], bool(jnp.all(var < 1e-3))
    ([1.0, -1.0], True)
    """
    _kernel_fn(kernel)
    if not isinstance(posterior, Posterior):
        raise TypeError(f"posterior must be a Posterior from condition, got {type(posterior).__name__}")
    x_star = _checks.float_array(x_star, "x_star")
    _checks.ndim_in(x_star, "x_star", (2,))
    if x_star.shape[1] != posterior.x.shape[1]:
        raise ValueError(f"x_star must have {posterior.x.shape[1]} columns like the data, got shape {x_star.shape}")
    return _predict(posterior, x_star.astype(posterior.x.dtype), kernel)


# ----------------------------------------------------------------------------------------
# Fitting the hyperparameters
# ----------------------------------------------------------------------------------------


def _log_prior(params: GPParams) -> Array:
    total = jnp.zeros((), params.mean.dtype)
    for name, value in params._asdict().items():
        mu, sd = PRIOR[name]
        total = total - 0.5 * jnp.sum(jnp.square((value - mu) / sd))
    return total


def _project(params: GPParams) -> GPParams:
    return GPParams(*(jnp.clip(value, *BOUNDS[name]) for name, value in params._asdict().items()))


def _fit(
    key: PRNGKey, x: Array, y: Array, mask: Array, kernel: str, restarts: int, steps: int, learning_rate: float
) -> GPParams:
    start = default_params(x.shape[1], x.dtype)

    def draw(k):
        keys = jax.random.split(k, 4)
        return _project(
            GPParams(
                *(
                    value + PRIOR[name][1] * jax.random.normal(kk, value.shape, value.dtype)
                    for kk, (name, value) in zip(keys, start._asdict().items(), strict=True)
                )
            )
        )

    # Restart 0 starts at the prior means; the others at draws from the prior.
    inits = jax.vmap(draw)(jax.random.split(key, restarts))
    inits = jax.tree.map(lambda a, s: a.at[0].set(s), inits, start)
    optimizer = _optimizers.adam(learning_rate)

    prior_grad = jax.grad(_log_prior)

    def loss(params):
        return -(_lml(params, x, y, mask, kernel) + _log_prior(params))

    def run(params):
        def step(carry, _):
            params, state = carry
            _, lml_grads = _lml_and_grad(params, x, y, mask, kernel)
            grads = jax.tree.map(lambda a, b: -(a + b), lml_grads, prior_grad(params))
            updates, state = optimizer.update(grads, state, params)
            params = _project(jax.tree.map(lambda p, u: p + u, params, updates))
            return (params, state), None

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
        value = loss(params)
        return params, jnp.where(jnp.isfinite(value), value, jnp.inf)

    fitted, losses = jax.vmap(run)(inits)
    best = jnp.argmin(losses)
    return jax.tree.map(lambda a: a[best], fitted)


_fit_jit = jax.jit(_fit, static_argnums=(4, 5, 6, 7))


def fit(
    key: PRNGKey,
    x: ArrayLike,
    y: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    kernel: str = "matern52",
    restarts: int = 4,
    steps: int = 200,
    learning_rate: float = 0.05,
) -> GPParams:
    r"""Type-II MAP hyperparameters: maximise :math:`\log p(y \mid X, \theta) + \log p(\theta)` by Adam.

    The gradient is :func:`log_marginal_likelihood_and_grad`'s, plus the prior's. Every restart
    runs ``steps`` Adam steps (a ``lax.scan``), projected onto :data:`BOUNDS`
    after each; the restarts run at once under ``jax.vmap``. Restart 0 starts at the prior
    means, the others at draws from :data:`PRIOR`. The restart with the highest final
    objective wins (a non-finite one never does). Compiled; the targets should be
    standardised (:func:`standardize`), as the priors assume unit scale.

    Args:
      key: a PRNG key for the restarts.
      x: ``[n, d]`` inputs (the unit cube suits the lengthscale prior).
      y: ``[n]`` standardised targets.
      mask: ``[n]`` booleans, True for observations (default: all).
      kernel: ``"matern52"`` or ``"rbf"``.
      restarts: number of starting points.
      steps: Adam steps per restart.
      learning_rate: Adam's step size on the log parameters.

    Returns:
      The fitted :class:`GPParams`.

    >>> x = jnp.linspace(0, 1, 8)[:, None]
    >>> params = fit(jax.random.key(0), x, standardize(jnp.sin(6 * x[:, 0]))[0], steps=100)
    >>> bool(0.05 < float(jnp.exp(params.log_lengthscales[0])) < 2.0)
    True
    """
    _kernel_fn(kernel)
    x, y, mask = _data(x, y, mask)
    restarts = _checks.positive_int(restarts, "restarts")
    steps = _checks.positive_int(steps, "steps")
    learning_rate = _checks.positive_float(learning_rate, "learning_rate")
    return _fit_jit(key, x, y, mask, kernel, restarts, steps, learning_rate)
