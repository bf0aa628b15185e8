r"""Approximating a distribution by minimising a divergence: one Gaussian fitted to a mixture.

The target is a one-dimensional Gaussian mixture and the model a single Gaussian,

.. math:: p(x) = \sum_{k=1}^{K} \pi_k\, \mathcal N(x; \mu_k, \sigma_k^2), \qquad
          q_\theta(x) = \mathcal N(x; m, s^2), \qquad \theta = (m, \log s),

with the model's parameters a plain dict ``{"mean": m, "log_std": log s}`` of scalars, so that
:math:`s = e^{\log s} > 0` for every value an optimizer reaches (``log_std`` is clipped to
``LOG_STD_BOUNDS`` before the exponential, so neither underflow nor overflow gives 0 or inf).
The mixture is a :class:`Mixture`, a named tuple of three arrays ``[K]``, so a sweep over the
target (the separation of two modes, say) is one ``jax.vmap``.

Four divergences of :math:`q_\theta` from :math:`p`, each a differentiable function of
:math:`\theta`:

.. math::
    \mathrm{KL}(p\,\|\,q) = \mathbb E_p[\log p - \log q], \qquad
    \mathrm{KL}(q\,\|\,p) = \mathbb E_q[\log q - \log p],

.. math::
    \mathrm{JS}(p, q) = \tfrac12 \mathbb E_p[\log p - \log r] + \tfrac12 \mathbb E_q[\log q - \log r],
    \qquad r = \tfrac12 (p + q),

.. math::
    \mathrm{MMD}^2(p, q) = \mathbb E\, k(X, X') + \mathbb E\, k(Y, Y') - 2\, \mathbb E\, k(X, Y),
    \qquad X, X' \sim p,\ Y, Y' \sim q,\ k(x, y) = e^{-(x - y)^2 / (2 h^2)}.

**Mode covering and mode seeking.** The forward ("inclusive") :math:`\mathrm{KL}(p\|q)` is large
wherever :math:`p > 0` and :math:`q \approx 0`, so its minimiser spreads over every mode. For a
Gaussian :math:`q` its stationarity conditions are
:math:`\partial_m = -\mathbb E_p[x - m] / s^2 = 0` and
:math:`\partial_s = 1/s - \mathbb E_p[(x - m)^2] / s^3 = 0`: the minimiser matches the moments,
:math:`m = \mathbb E_p x`, :math:`s^2 = \mathrm{Var}_p x` (:func:`moments`), exactly. The reverse
("exclusive") :math:`\mathrm{KL}(q\|p)` is large wherever :math:`q > 0` and :math:`p \approx 0`, so
:math:`q` shrinks onto one mode; for well-separated modes it has one local minimum per mode,
near :math:`\mathcal N(\mu_k, \sigma_k^2)` with value near :math:`-\log \pi_k`.
Jensen-Shannon and MMD lie between; MMD covers for a wide kernel and seeks for a narrow one.

**Quadrature.** Expectations under a Gaussian use a fixed grid of standard-normal nodes
:math:`z_j = -L + 2Lj/(J-1)`, :math:`j = 0, \dots, J-1`, mapped onto that Gaussian:

.. math:: \mathbb E_{\mathcal N(\mu, \sigma^2)}[f] \approx \sum_j \omega_j f(\mu + \sigma z_j),
          \qquad \omega_j = \frac{e^{-z_j^2/2}}{\sum_i e^{-z_i^2/2}},

the trapezoid rule for :math:`\int f(\mu + \sigma z) \phi(z)\, dz` over :math:`[-L, L]`
(``QUADRATURE_HALF_WIDTH`` = 8, beyond which :math:`\phi` holds a mass of :math:`10^{-15}`;
``QUADRATURE_POINTS`` = 801, a spacing of 0.02 standard deviations), which converges
geometrically for smooth integrands with Gaussian tails (Trefethen and Weideman 2014). A mixture expectation
is :math:`\sum_k \pi_k \mathbb E_{\mathcal N(\mu_k, \sigma_k^2)}`. Because the grid moves with
each Gaussian it resolves :math:`q` however narrow it becomes or far it wanders, where one grid
in :math:`x` would not; and every integrand is a difference of log densities computed in log
space (``logsumexp`` for the mixture, ``logaddexp`` for :math:`r`), with densities appearing
only as positive quadrature weights, so no :math:`0 \log 0` is ever formed. The one limit:
:math:`\mathbb E_q[\log p]` (in the reverse KL and JS) sees the bends of :math:`\log p` between
modes at :math:`q`'s spacing, so accuracy falls when :math:`q` is far wider than the narrowest
component: against a fine reference grid the error is below :math:`10^{-9}` for
:math:`s / \sigma_k \le 5`, below :math:`10^{-7}` up to 12, and about :math:`10^{-4}` at 40.
:func:`discretize` gives both densities as probability vectors on a uniform grid in
:math:`x`, where :func:`fnn.losses.kl_divergence` and :func:`fnn.losses.js_divergence` (with
:math:`0 \log 0 = 0`) approximate the same divergences. MMD is in closed form: for
:math:`X \sim \mathcal N(\mu_1, \sigma_1^2)`, :math:`Y \sim \mathcal N(\mu_2, \sigma_2^2)`,

.. math:: \mathbb E\, k(X, Y) = \frac{h}{\sqrt{h^2 + \sigma_1^2 + \sigma_2^2}}
          \exp\left(-\frac{(\mu_1 - \mu_2)^2}{2 (h^2 + \sigma_1^2 + \sigma_2^2)}\right),

summed over pairs of components; :func:`fnn.losses.mmd` on samples estimates it.

:func:`fit_gaussian` minimises a divergence over :math:`\theta` with an optimizer of
:mod:`fnn.optimizers`, the whole run one compiled ``lax.scan``; it is vmappable over starting
points and over the target. :func:`fit_gaussian_multistart` runs several starts at once and
keeps the best, and :func:`distinct_optima` lists the local optima they reached.

Validation: shapes and ranks raise at once. Values (weights non-negative and summing to 1,
positive standard deviations and bandwidth) raise ``ValueError`` on concrete input; traced,
they make the result NaN, as everywhere in fnn (see :mod:`fnn.checking`).

References: C. Bishop, *Pattern Recognition and Machine Learning*, 2006, sec. 10.1.2 and
fig. 10.3; T. Minka, *Divergence measures and message passing*, MSR-TR-2005-173;
I. Goodfellow, Y. Bengio, A. Courville, *Deep Learning*, 2016, sec. 3.13 and fig. 3.6;
A. Gretton et al., *A Kernel Two-Sample Test*, JMLR 13, 2012; L. Theis, A. van den Oord,
M. Bethge, *A note on the evaluation of generative models*, ICLR 2016; L. N. Trefethen,
J. A. C. Weideman, *The exponentially convergent trapezoidal rule*, SIAM Review 56(3), 2014.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fnn import _checks
from fnn._types import Array, ArrayLike, Params, PRNGKey
from fnn.optim import descent as _descent
from fnn.optim import optimizers as _optimizers

__all__ = [
    "LOG_STD_BOUNDS",
    "QUADRATURE_HALF_WIDTH",
    "QUADRATURE_POINTS",
    "Fit",
    "Mixture",
    "MultiStart",
    "bimodal",
    "discretize",
    "distinct_optima",
    "fit_gaussian",
    "fit_gaussian_multistart",
    "gaussian_logpdf",
    "gaussian_params",
    "js",
    "kl_forward",
    "kl_reverse",
    "mean_std",
    "mixture",
    "mixture_logpdf",
    "mixture_sample",
    "mmd",
    "moments",
    "names",
]

QUADRATURE_HALF_WIDTH = 8.0
QUADRATURE_POINTS = 801
LOG_STD_BOUNDS = (-20.0, 20.0)

_LOG_2PI = math.log(2 * math.pi)
_LOG_2 = math.log(2.0)


# ----------------------------------------------------------------------------------------
# The target: a Gaussian mixture.
# ----------------------------------------------------------------------------------------


class Mixture(NamedTuple):
    """A one-dimensional Gaussian mixture; a pytree, so it can be traced and vmapped.

    Attributes:
      weights: ``[K]`` mixing weights :math:`\\pi_k`, non-negative, summing to 1.
      means: ``[K]`` component means :math:`\\mu_k`.
      stds: ``[K]`` component standard deviations :math:`\\sigma_k > 0`.
    """

    weights: Array
    means: Array
    stds: Array


def _value_check(
    value: Array, test: Callable[[Any, Any], Any], message: str, show: Callable[[np.ndarray], str]
) -> Array | bool:
    """``test(xp, value)``: on concrete input checked in NumPy, a ``ValueError`` showing the
    offending value; traced, the verdict of ``jnp`` for :func:`fnn._checks.poison`."""
    if _checks.is_concrete(value):
        v = np.asarray(value)
        if not bool(test(np, v)):
            raise ValueError(f"{message}, got {show(v)}")
        return True
    return _checks.require(test(jnp, value), message)


def _mixture_arrays(weights: ArrayLike, means: ArrayLike, stds: ArrayLike) -> tuple[Array, Array, Array, Array | bool]:
    """Validated float arrays ``[K]`` of one dtype, and the value verdict."""
    weights = _checks.float_array(weights, "weights")
    means = _checks.float_array(means, "means")
    stds = _checks.float_array(stds, "stds")
    dtype = jnp.result_type(weights, means, stds)
    weights, means, stds = weights.astype(dtype), means.astype(dtype), stds.astype(dtype)
    for name, a in (("weights", weights), ("means", means), ("stds", stds)):
        _checks.ndim_in(a, name, (1,))
        _checks.nonempty_batch(a, name)
    _checks.same_shape(weights, means, "weights", "means")
    _checks.same_shape(weights, stds, "weights", "stds")
    tol = 1e3 * float(jnp.finfo(dtype).eps) * weights.shape[0]
    ok_nonneg = _value_check(weights, lambda xp, w: xp.all(w >= 0), "weights must be non-negative", _listed)
    ok_sum = _value_check(
        weights,
        lambda xp, w: xp.abs(xp.sum(w) - 1) <= tol,
        "weights must sum to 1",
        lambda w: f"a sum of {float(np.sum(w))!r}",
    )
    ok_std = _value_check(stds, lambda xp, s: xp.all(s > 0), "stds must be positive", _listed)
    return weights, means, stds, _all(ok_nonneg, ok_sum, ok_std)


def _listed(v: np.ndarray) -> str:
    return str(v.tolist())


def _scalar(v: np.ndarray) -> str:
    return repr(float(v))


def _all(*oks: Array | bool) -> Array | bool:
    traced = [ok for ok in oks if ok is not True]
    if not traced:
        return True
    return functools.reduce(jnp.logical_and, traced)


def _target(target: Any) -> tuple[Array, Array, Array, Array | bool]:
    if not isinstance(target, tuple) or len(target) != 3:
        raise TypeError(
            f"target must be a Mixture (weights, means, stds), got {type(target).__name__}"
            + (f" of length {len(target)}" if isinstance(target, tuple) else "")
        )
    return _mixture_arrays(*target)


def mixture(weights: ArrayLike, means: ArrayLike, stds: ArrayLike) -> Mixture:
    r"""A validated :class:`Mixture` :math:`\sum_k \pi_k \mathcal N(\mu_k, \sigma_k^2)`.

    Args:
      weights: ``[K]``, non-negative, summing to 1.
      means: ``[K]``.
      stds: ``[K]``, positive.

    Returns:
      The mixture, its arrays of one floating dtype. Under a transformation an invalid value
      makes every array NaN.

    Raises:
      ValueError: ranks or shapes that differ, or (on concrete input) weights that are
        negative or do not sum to 1, or a non-positive std; the message names the argument.

    >>> p = mixture([0.5, 0.5], [-1.0, 1.0], [0.5, 0.5])
    >>> p.means.shape
    (2,)
    >>> mixture([0.5, 0.6], [-1.0, 1.0], [0.5, 0.5])
    Traceback (most recent call last):
    ...
    ValueError: weights must sum to 1, got a sum of 1.100000023841858
    """
    weights, means, stds, ok = _mixture_arrays(weights, means, stds)
    return Mixture(_checks.poison(weights, ok), _checks.poison(means, ok), _checks.poison(stds, ok))


def bimodal(separation: ArrayLike, *, weights: ArrayLike = (0.5, 0.5), stds: ArrayLike = (1.0, 1.0)) -> Mixture:
    r"""Two modes at :math:`\mp d/2`: :math:`\pi_1 \mathcal N(-d/2, \sigma_1^2) + \pi_2 \mathcal N(d/2, \sigma_2^2)`.

    Args:
      separation: the distance :math:`d` between the means, a scalar (may be traced, so a
        sweep over separations is one ``jax.vmap``).
      weights: ``[2]``, non-negative, summing to 1.
      stds: ``[2]``, positive.

    Returns:
      A :class:`Mixture` with two components.

    >>> bimodal(4.0).means.tolist()
    [-2.0, 2.0]
    """
    separation = _checks.float_array(jnp.asarray(separation, dtype=jnp.result_type(separation, float)), "separation")
    if separation.ndim:
        raise ValueError(f"separation must be a scalar, got shape {separation.shape}")
    half = separation / 2
    means = jnp.stack([-half, half])
    dtype = jnp.result_type(means, jnp.asarray(weights, float), jnp.asarray(stds, float))
    return mixture(jnp.asarray(weights, dtype), means.astype(dtype), jnp.asarray(stds, dtype))


def _normal_logpdf(x: Array, mean: Array, std: Array) -> Array:
    # The one formula for a Gaussian log density, shared by p and q: q = p then cancels exactly.
    return -0.5 * jnp.square((x - mean) / std) - jnp.log(std) - 0.5 * _LOG_2PI


def _mixture_logpdf(x: Array, weights: Array, means: Array, stds: Array) -> Array:
    """log p(x) for any shape of x; the component axis is appended and reduced by logsumexp."""
    shape = (1,) * x.ndim + (-1,)
    comp = _normal_logpdf(x[..., None], means.reshape(shape), stds.reshape(shape))
    # b=weights: a zero weight drops its component without forming log 0.
    return jax.nn.logsumexp(comp, axis=-1, b=jnp.broadcast_to(weights.reshape(shape), comp.shape))


# Compiled once per shape: eager calls then cost one dispatch, not one per primitive.
_jit_mixture_logpdf = jax.jit(_mixture_logpdf)


def mixture_logpdf(x: ArrayLike, weights: ArrayLike, means: ArrayLike, stds: ArrayLike) -> Array:
    r"""Log density of a Gaussian mixture, stable for any ``x``.

    .. math:: \log p(x) = \operatorname{logsumexp}_k \left[\log \pi_k - \tfrac12 \log 2\pi
              - \log \sigma_k - \frac{(x - \mu_k)^2}{2 \sigma_k^2}\right]

    finite however far ``x`` lies from every mode, where the log of a summed density would be
    :math:`\log 0`.

    Args:
      x: float array of any shape.
      weights, means, stds: ``[K]`` each, as :func:`mixture`.

    Returns:
      ``log p(x)``, shaped like ``x``.

    >>> round(float(mixture_logpdf(jnp.array(0.0), jnp.array([1.0]), jnp.array([0.0]), jnp.array([1.0]))), 4)
    -0.9189
    >>> bool(jnp.isfinite(mixture_logpdf(jnp.array(1e4), jnp.array([1.0]), jnp.array([0.0]), jnp.array([1.0]))))
    True
    """
    weights, means, stds, ok = _mixture_arrays(weights, means, stds)
    x = _checks.float_array(x, "x").astype(weights.dtype)
    return _checks.poison(_jit_mixture_logpdf(x, weights, means, stds), ok)


def mixture_sample(key: PRNGKey, n: int, weights: ArrayLike, means: ArrayLike, stds: ArrayLike) -> Array:
    r"""``n`` independent draws from the mixture: a component :math:`k \sim \pi`, then :math:`\mathcal N(\mu_k, \sigma_k^2)`.

    Args:
      key: a ``jax.random`` key.
      n: the number of draws, a positive integer (static).
      weights, means, stds: ``[K]`` each, as :func:`mixture`.

    Returns:
      ``[n]`` samples in the mixture's dtype.

    >>> x = mixture_sample(jax.random.key(0), 1000, jnp.array([0.5, 0.5]), jnp.array([-5.0, 5.0]), jnp.array([1.0, 1.0]))
    >>> x.shape, bool(jnp.all(jnp.abs(jnp.abs(x) - 5.0) < 5.0))
    ((1000,), True)
    """
    n = _checks.positive_int(n, "n")
    weights, means, stds, ok = _mixture_arrays(weights, means, stds)
    return _checks.poison(_sample(key, weights, means, stds, n=n), ok)


@functools.partial(jax.jit, static_argnames="n")
def _sample(key: PRNGKey, weights: Array, means: Array, stds: Array, *, n: int) -> Array:
    k_comp, k_noise = jax.random.split(key)
    log_w = jnp.log(jnp.where(weights > 0, weights, 1)) + jnp.where(weights > 0, 0, -jnp.inf)
    comp = jax.random.categorical(k_comp, log_w, shape=(n,))
    return means[comp] + stds[comp] * jax.random.normal(k_noise, (n,), weights.dtype)


def moments(target: Mixture) -> tuple[Array, Array]:
    r"""Mean and standard deviation of the mixture: the minimiser of :math:`\mathrm{KL}(p\|q)`.

    .. math:: \mathbb E_p x = \sum_k \pi_k \mu_k, \qquad
              \mathrm{Var}_p x = \sum_k \pi_k \left[\sigma_k^2 + (\mu_k - \mathbb E_p x)^2\right]

    Args:
      target: a :class:`Mixture`.

    Returns:
      ``(mean, std)``, scalars.

    >>> m, s = moments(bimodal(4.0))  # variance 1 + 2**2
    >>> round(float(m), 4), round(float(s) ** 2, 4)
    (0.0, 5.0)
    """
    weights, means, stds, ok = _target(target)
    mean, std = _jit_moments(weights, means, stds)
    return _checks.poison(mean, ok), _checks.poison(std, ok)


@jax.jit
def _jit_moments(weights: Array, means: Array, stds: Array) -> tuple[Array, Array]:
    mean = jnp.sum(weights * means)
    return mean, jnp.sqrt(jnp.sum(weights * (jnp.square(stds) + jnp.square(means - mean))))


# ----------------------------------------------------------------------------------------
# The model: one Gaussian, parameterised by (mean, log_std).
# ----------------------------------------------------------------------------------------


def _std(log_std: Array) -> Array:
    return jnp.exp(jnp.clip(log_std, *LOG_STD_BOUNDS))


def gaussian_params(mean: ArrayLike, std: ArrayLike) -> Params:
    r"""The parameters ``{"mean": m, "log_std": log s}`` of :math:`\mathcal N(m, s^2)`.

    Args:
      mean: a scalar.
      std: a positive scalar.

    Returns:
      A dict of two float scalars of one dtype. Under a transformation a non-positive ``std``
      makes both NaN.

    >>> p = gaussian_params(1.0, 2.0)
    >>> float(p["mean"]), round(float(p["log_std"]), 4)
    (1.0, 0.6931)
    """
    mean = _checks.float_array(jnp.asarray(mean, dtype=jnp.result_type(mean, float)), "mean")
    std = _checks.float_array(jnp.asarray(std, dtype=jnp.result_type(std, float)), "std")
    dtype = jnp.result_type(mean, std)
    mean, std = mean.astype(dtype), std.astype(dtype)
    for name, a in (("mean", mean), ("std", std)):
        if a.ndim:
            raise ValueError(f"{name} must be a scalar, got shape {a.shape}")
    ok = _value_check(std, lambda xp, s: s > 0, "std must be positive", _scalar)
    log_std = jnp.log(jnp.where(std > 0, std, 1))
    return {"mean": _checks.poison(mean, ok), "log_std": _checks.poison(log_std, ok)}


def _model(params: Any) -> tuple[Array, Array]:
    """(mean, log_std) of a parameter dict, checked: scalar floats."""
    if not isinstance(params, dict) or set(params) != {"mean", "log_std"}:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise TypeError(f'params must be a dict {{"mean", "log_std"}} (see gaussian_params), got {got}')
    mean = _checks.float_array(params["mean"], 'params["mean"]')
    log_std = _checks.float_array(params["log_std"], 'params["log_std"]')
    for name, a in (('params["mean"]', mean), ('params["log_std"]', log_std)):
        if a.ndim:
            raise ValueError(f"{name} must be a scalar, got shape {a.shape}")
    return mean, log_std


def mean_std(params: Params) -> tuple[Array, Array]:
    r"""``(m, s)`` of the model, :math:`s = \exp(\mathrm{clip}(\log s))`.

    >>> m, s = mean_std(gaussian_params(1.0, 2.0))
    >>> float(m), round(float(s), 4)
    (1.0, 2.0)
    """
    mean, log_std = _model(params)
    return mean, _std(log_std)


@jax.jit
def _jit_gaussian_logpdf(x: Array, mean: Array, log_std: Array) -> Array:
    return _normal_logpdf(x, mean, _std(log_std))


def gaussian_logpdf(x: ArrayLike, params: Params) -> Array:
    r"""Log density of the model :math:`\log \mathcal N(x; m, s^2) = -\tfrac12 \log 2\pi - \log s - \frac{(x - m)^2}{2 s^2}`.

    Args:
      x: float array of any shape.
      params: ``{"mean": m, "log_std": log s}``, scalars (see :func:`gaussian_params`).

    Returns:
      ``log q(x)``, shaped like ``x``.

    >>> round(float(gaussian_logpdf(jnp.array(0.0), gaussian_params(0.0, 1.0))), 4)
    -0.9189
    """
    mean, log_std = _model(params)
    x = _checks.float_array(x, "x")
    return _jit_gaussian_logpdf(x, mean, log_std)


# ----------------------------------------------------------------------------------------
# Divergences of the model from the mixture.
# ----------------------------------------------------------------------------------------


def _nodes(dtype: Any) -> tuple[Array, Array]:
    """Standard-normal nodes z [J] and their normalised trapezoid weights [J]."""
    z = jnp.linspace(-QUADRATURE_HALF_WIDTH, QUADRATURE_HALF_WIDTH, QUADRATURE_POINTS, dtype=dtype)
    return z, jax.nn.softmax(-0.5 * jnp.square(z))


def _expect_gaussian(f: Callable[[Array], Array], mean: Array, std: Array) -> Array:
    """E_{N(mean, std^2)}[f] by the trapezoid rule on the mapped grid."""
    z, w = _nodes(jnp.result_type(mean, std))
    return jnp.sum(w * f(mean + std * z))


def _expect_mixture(f: Callable[[Array], Array], weights: Array, means: Array, stds: Array) -> Array:
    """E_p[f] = sum_k pi_k E_{N(mu_k, sigma_k^2)}[f]; f maps [K, J] nodes to [K, J] values."""
    z, w = _nodes(weights.dtype)
    x = means[:, None] + stds[:, None] * z[None, :]
    return jnp.sum(weights[:, None] * w[None, :] * f(x))


def _kl_forward(mean: Array, std: Array, weights: Array, means: Array, stds: Array) -> Array:
    return _expect_mixture(
        lambda x: _mixture_logpdf(x, weights, means, stds) - _normal_logpdf(x, mean, std), weights, means, stds
    )


def _kl_reverse(mean: Array, std: Array, weights: Array, means: Array, stds: Array) -> Array:
    return _expect_gaussian(
        lambda x: _normal_logpdf(x, mean, std) - _mixture_logpdf(x, weights, means, stds), mean, std
    )


def _js(mean: Array, std: Array, weights: Array, means: Array, stds: Array) -> Array:
    def log_ratios(x: Array) -> tuple[Array, Array, Array]:
        log_p = _mixture_logpdf(x, weights, means, stds)
        log_q = _normal_logpdf(x, mean, std)
        return log_p, log_q, jnp.logaddexp(log_p, log_q) - _LOG_2

    def p_term(x: Array) -> Array:
        log_p, _, log_r = log_ratios(x)
        return log_p - log_r

    def q_term(x: Array) -> Array:
        _, log_q, log_r = log_ratios(x)
        return log_q - log_r

    return 0.5 * _expect_mixture(p_term, weights, means, stds) + 0.5 * _expect_gaussian(q_term, mean, std)


def _gaussian_kernel_mean(diff: Array, var: Array, bandwidth: Array) -> Array:
    """E exp(-(X - Y)^2 / (2 h^2)) for X - Y ~ N(diff, var)."""
    total = jnp.square(bandwidth) + var
    return bandwidth / jnp.sqrt(total) * jnp.exp(-jnp.square(diff) / (2 * total))


def _mmd(mean: Array, std: Array, weights: Array, means: Array, stds: Array, bandwidth: Array) -> Array:
    var_k = jnp.square(stds)
    pp = jnp.sum(
        weights[:, None]
        * weights[None, :]
        * _gaussian_kernel_mean(means[:, None] - means[None, :], var_k[:, None] + var_k[None, :], bandwidth)
    )
    qq = _gaussian_kernel_mean(jnp.zeros_like(mean), 2 * jnp.square(std), bandwidth)
    pq = jnp.sum(weights * _gaussian_kernel_mean(means - mean, var_k + jnp.square(std), bandwidth))
    return pp + qq - 2 * pq


@functools.partial(jax.jit, static_argnums=0)
def _evaluate(name: str, *args: Array) -> Array:
    """The divergence ``name`` of (mean, std, weights, means, stds[, bandwidth]), compiled."""
    return _DIVERGENCES[name][0](*args)


def _operands(params: Params, target: Any) -> tuple[tuple[Array, ...], Array | bool]:
    """(mean, std, weights, means, stds) of one dtype, and the target's value verdict."""
    mean, log_std = _model(params)
    weights, means, stds, ok = _target(target)
    dtype = jnp.result_type(mean, log_std, weights)
    return (
        mean.astype(dtype),
        _std(log_std.astype(dtype)),
        weights.astype(dtype),
        means.astype(dtype),
        stds.astype(dtype),
    ), ok


def kl_forward(params: Params, target: Mixture) -> Array:
    r"""Forward (inclusive, mode-covering) :math:`\mathrm{KL}(p\,\|\,q_\theta) = \mathbb E_p[\log p - \log q_\theta]`.

    Its minimiser over the Gaussian :math:`q_\theta` matches the mixture's mean and variance
    (:func:`moments`).

    Args:
      params: ``{"mean": m, "log_std": log s}``, scalars.
      target: the mixture :math:`p`, a :class:`Mixture`.

    Returns:
      Scalar in nats, :math:`\ge 0`; differentiable in ``params`` (and in ``target``).

    >>> p = mixture([1.0], [0.0], [1.0])
    >>> round(float(kl_forward(gaussian_params(0.0, 1.0), p)), 6), round(float(kl_forward(gaussian_params(1.0, 1.0), p)), 4)
    (0.0, 0.5)
    """
    args, ok = _operands(params, target)
    return _checks.poison(_evaluate("kl_forward", *args), ok)


def kl_reverse(params: Params, target: Mixture) -> Array:
    r"""Reverse (exclusive, mode-seeking) :math:`\mathrm{KL}(q_\theta\,\|\,p) = \mathbb E_{q_\theta}[\log q_\theta - \log p]`.

    For well-separated modes each one is a local minimum in :math:`(m, s)`, near
    :math:`(\mu_k, \sigma_k)` with value near :math:`-\log \pi_k`.

    Args:
      params: ``{"mean": m, "log_std": log s}``, scalars.
      target: the mixture :math:`p`.

    Returns:
      Scalar in nats, :math:`\ge 0`.

    >>> p = bimodal(20.0)  # q on one mode of two: about log 2
    >>> round(float(kl_reverse(gaussian_params(-10.0, 1.0), p)), 4)
    0.6931
    """
    args, ok = _operands(params, target)
    return _checks.poison(_evaluate("kl_reverse", *args), ok)


def js(params: Params, target: Mixture) -> Array:
    r"""Jensen-Shannon divergence :math:`\tfrac12 \mathrm{KL}(p\|r) + \tfrac12 \mathrm{KL}(q_\theta\|r)`, :math:`r = \tfrac12(p + q_\theta)`.

    Symmetric, in :math:`[0, \log 2]`; :math:`\log r` is computed as
    :math:`\operatorname{logaddexp}(\log p, \log q) - \log 2`.

    Args:
      params: ``{"mean": m, "log_std": log s}``, scalars.
      target: the mixture :math:`p`.

    Returns:
      Scalar in nats.

    >>> p = mixture([1.0], [0.0], [1.0])
    >>> round(float(js(gaussian_params(0.0, 1.0), p)), 6), round(float(js(gaussian_params(100.0, 1.0), p)), 4)
    (0.0, 0.6931)
    """
    args, ok = _operands(params, target)
    return _checks.poison(_evaluate("js", *args), ok)


def mmd(params: Params, target: Mixture, bandwidth: ArrayLike = 1.0) -> Array:
    r"""Squared maximum mean discrepancy with a Gaussian kernel, in closed form.

    .. math:: \mathrm{MMD}^2 = \sum_{i,j} \pi_i \pi_j\, g(\mu_i - \mu_j, \sigma_i^2 + \sigma_j^2)
              + g(0, 2 s^2) - 2 \sum_i \pi_i\, g(\mu_i - m, \sigma_i^2 + s^2),
              \qquad g(d, v) = \frac{h}{\sqrt{h^2 + v}} e^{-d^2 / (2 (h^2 + v))},

    the population value that :func:`fnn.losses.mmd` (kernel
    :math:`e^{-(x - y)^2 / (2 h^2)}`) estimates from samples. A wide kernel (large ``h``)
    compares low moments and covers the modes; a narrow one seeks a mode.

    Args:
      params: ``{"mean": m, "log_std": log s}``, scalars.
      target: the mixture :math:`p`.
      bandwidth: the kernel width :math:`h > 0`, a scalar; may be traced.

    Returns:
      Scalar, :math:`\ge 0` up to rounding.

    >>> p = mixture([1.0], [0.0], [1.0])
    >>> abs(float(mmd(gaussian_params(0.0, 1.0), p))) < 1e-6
    True
    """
    args, ok = _operands(params, target)
    bandwidth = _bandwidth(bandwidth, args[0].dtype)
    ok_h = _value_check(bandwidth, lambda xp, h: h > 0, "bandwidth must be positive", _scalar)
    return _checks.poison(_evaluate("mmd", *args, bandwidth), _all(ok, ok_h))


def _bandwidth(bandwidth: ArrayLike, dtype: Any) -> Array:
    bandwidth = jnp.asarray(bandwidth)
    if not (jnp.issubdtype(bandwidth.dtype, jnp.floating) or jnp.issubdtype(bandwidth.dtype, jnp.integer)):
        raise TypeError(f"bandwidth must be a real number, got dtype {bandwidth.dtype}")
    if bandwidth.ndim:
        raise ValueError(f"bandwidth must be a scalar, got shape {bandwidth.shape}")
    return bandwidth.astype(dtype)


def discretize(params: Params, target: Mixture, grid: ArrayLike) -> tuple[Array, Array]:
    r"""The mixture and the model as probability vectors on an equally spaced grid in :math:`x`.

    .. math:: P_i = \frac{p(x_i)}{\sum_j p(x_j)}, \qquad Q_i = \frac{q_\theta(x_i)}{\sum_j q_\theta(x_j)}

    computed as softmaxes of the log densities. On a grid wide and fine enough for both,
    ``fnn.losses.kl_divergence(P, Q)`` approximates :func:`kl_forward` (the spacing cancels in
    the ratio), ``kl_divergence(Q, P)`` :func:`kl_reverse` and ``js_divergence(P, Q)`` :func:`js`.

    Args:
      params: ``{"mean": m, "log_std": log s}``, scalars.
      target: the mixture :math:`p`.
      grid: ``[G]`` equally spaced points, :math:`G \ge 2`.

    Returns:
      ``(P, Q)``, each ``[G]``, non-negative and summing to 1. Far in the tails a density can
      round to 0 where the other does not (a narrow ``q`` beside a wide mode), and the
      discretised KL is then infinite while the log-space :func:`kl_forward` stays finite:
      keep the grid to where both are representable.

    >>> from fnn import losses
    >>> P, Q = discretize(gaussian_params(0.0, 1.0), bimodal(2.0), jnp.linspace(-10.0, 10.0, 2001))
    >>> abs(float(losses.kl_divergence(P, Q)) - float(kl_forward(gaussian_params(0.0, 1.0), bimodal(2.0)))) < 1e-4
    True
    """
    (mean, std, weights, means, stds), ok = _operands(params, target)
    grid = _checks.float_array(grid, "grid").astype(mean.dtype)
    _checks.ndim_in(grid, "grid", (1,))
    if grid.shape[0] < 2:
        raise ValueError(f"grid must hold at least 2 points, got shape {grid.shape}")
    if _checks.is_concrete(grid):
        step = np.diff(np.asarray(grid, np.float64))
        if not (np.all(step > 0) and np.allclose(step, step[0], rtol=1e-3, atol=0)):
            raise ValueError("grid must be increasing and equally spaced")
    p, q = _jit_discretize(grid, mean, std, weights, means, stds)
    return _checks.poison(p, ok), _checks.poison(q, ok)


@jax.jit
def _jit_discretize(
    grid: Array, mean: Array, std: Array, weights: Array, means: Array, stds: Array
) -> tuple[Array, Array]:
    return jax.nn.softmax(_mixture_logpdf(grid, weights, means, stds)), jax.nn.softmax(_normal_logpdf(grid, mean, std))


# name -> (the divergence of (mean, std, weights, means, stds[, bandwidth]), takes a bandwidth)
_DIVERGENCES: dict[str, tuple[Callable[..., Array], bool]] = {
    "kl_forward": (_kl_forward, False),
    "kl_reverse": (_kl_reverse, False),
    "js": (_js, False),
    "mmd": (_mmd, True),
}


def names() -> tuple[str, ...]:
    """The divergences :func:`fit_gaussian` knows by name, sorted.

    >>> names()
    ('js', 'kl_forward', 'kl_reverse', 'mmd')
    """
    return tuple(sorted(_DIVERGENCES))


# ----------------------------------------------------------------------------------------
# Fitting.
# ----------------------------------------------------------------------------------------


class Fit(NamedTuple):
    """The result of :func:`fit_gaussian` (with a leading axis per start or per target under ``vmap``).

    Attributes:
      mean: the fitted mean :math:`m`, a scalar.
      std: the fitted standard deviation :math:`s`, a scalar.
      divergence: the divergence at the fitted parameters.
      grad_norm: the Euclidean norm of its gradient in :math:`(m, \\log s)` there; near 0 at a
        stationary point, larger for a run that has not converged.
      params: the fitted ``{"mean", "log_std"}``.
      trajectory: ``{"mean": [T], "std": [T], "divergence": [T]}``, the parameters and the
        divergence at :math:`\\theta_t`, before update t.
    """

    mean: Array
    std: Array
    divergence: Array
    grad_norm: Array
    params: Params
    trajectory: dict[str, Array]


class MultiStart(NamedTuple):
    """The result of :func:`fit_gaussian_multistart`.

    Attributes:
      best: the :class:`Fit` with the smallest final divergence.
      runs: every start's :class:`Fit`, each leaf with a leading axis ``[S]``.
      best_index: the index of ``best`` among the starts.
    """

    best: Fit
    runs: Fit
    best_index: Array


def _objective(divergence: str | Callable[..., Array], bandwidth: Array | None) -> Callable[..., Array]:
    """params, (weights, means, stds) -> scalar, without validation (done once, outside the loop)."""
    if callable(divergence):
        return lambda params, target: divergence(params, Mixture(*target))
    fn, takes_bandwidth = _DIVERGENCES[divergence]
    if takes_bandwidth:
        return lambda params, target: fn(params["mean"], _std(params["log_std"]), *target, bandwidth)
    return lambda params, target: fn(params["mean"], _std(params["log_std"]), *target)


@functools.partial(jax.jit, static_argnames=("divergence", "steps", "optimizer"))
def _fit(
    target: tuple[Array, Array, Array],
    params: Params,
    learning_rate: Any,
    bandwidth: Array | None,
    *,
    divergence: str | Callable[..., Array],
    steps: int,
    optimizer: str | optax.GradientTransformation,
) -> Fit:
    objective = functools.partial(_objective(divergence, bandwidth), target=target)
    if isinstance(optimizer, str):
        opt = _optimizers.get(optimizer, learning_rate=learning_rate)
    else:
        opt = optimizer
    value_and_grad = jax.value_and_grad(objective)
    # The loop of fnn.descent.minimize, recording the parameters as well as the loss.
    params, losses, path = _descent.descend(value_and_grad, params, opt, steps, record=True)
    trajectory = {"mean": path["mean"], "std": _std(path["log_std"]), "divergence": losses}
    final, grads = value_and_grad(params)
    grad_norm = jnp.sqrt(jnp.square(grads["mean"]) + jnp.square(grads["log_std"]))
    return Fit(params["mean"], _std(params["log_std"]), final, grad_norm, params, trajectory)


def _fit_setup(
    target: Any, divergence: Any, steps: Any, learning_rate: Any, optimizer: Any, bandwidth: Any
) -> tuple[tuple[Array, Array, Array], int, Any, Array | None, Array | bool]:
    """Validate what a fit needs; the target (poisoned when invalid), steps, rate and bandwidth."""
    if isinstance(divergence, str):
        if divergence not in _DIVERGENCES:
            raise ValueError(f"unknown divergence {divergence!r}; known names: {', '.join(names())}")
        takes_bandwidth = _DIVERGENCES[divergence][1]
    elif callable(divergence):
        takes_bandwidth = False
    else:
        raise TypeError(
            f"divergence must be a name ({', '.join(names())}) or a callable (params, target) -> scalar, "
            f"got {type(divergence).__name__}"
        )
    if bandwidth is not None and not takes_bandwidth:
        raise ValueError(f"bandwidth is a parameter of 'mmd' only, got bandwidth={bandwidth!r} for {divergence!r}")
    steps = _checks.positive_int(steps, "steps")
    weights, means, stds, ok = _target(target)
    if takes_bandwidth:
        bandwidth = _bandwidth(1.0 if bandwidth is None else bandwidth, weights.dtype)
        ok = _all(ok, _value_check(bandwidth, lambda xp, h: h > 0, "bandwidth must be positive", _scalar))
    if isinstance(optimizer, str):
        if learning_rate is None:
            raise TypeError(f"optimizer {optimizer!r} needs a learning_rate")
        _optimizers.get(optimizer, learning_rate=learning_rate)  # validates the name and the rate now
    elif isinstance(optimizer, optax.GradientTransformation):
        if learning_rate is not None:
            raise ValueError(
                "learning_rate cannot be given with an optax.GradientTransformation; build it into the optimizer"
            )
    else:
        raise TypeError(
            f"optimizer must be a name of fnn.optimizers or an optax.GradientTransformation, "
            f"got {type(optimizer).__name__}"
        )
    target = tuple(_checks.poison(a, ok) for a in (weights, means, stds))
    return target, steps, learning_rate, bandwidth, ok


def _init_params(init: Any, dtype: Any) -> Params:
    if not isinstance(init, (tuple, list)) or len(init) != 2:
        raise TypeError(f"init must be a pair (mean, std), got {init!r}")
    params = gaussian_params(*init)
    return jax.tree.map(lambda a: a.astype(jnp.result_type(a, dtype)), params)


def fit_gaussian(
    target: Mixture,
    divergence: str | Callable[[Params, Mixture], Array],
    *,
    init: tuple[ArrayLike, ArrayLike],
    steps: int,
    learning_rate: ArrayLike | None,
    optimizer: str | optax.GradientTransformation = "adam",
    bandwidth: ArrayLike | None = None,
) -> Fit:
    r"""Fit one Gaussian to a mixture by minimising a divergence: ``steps`` optimizer updates as one ``lax.scan``.

    .. math:: \theta^\star = \arg\min_{\theta = (m, \log s)} D(p, q_\theta), \qquad
              \theta_{t+1} = \theta_t + \mathrm{update}(\nabla_\theta D(p, q_{\theta_t}))

    The loop is compiled once per (divergence, steps, optimizer); the target, the starting
    point, the learning rate and the bandwidth may be traced, so a sweep over any of them is
    one ``jax.vmap`` and a second call with other values does not recompile. The run stops
    updating at the first non-finite divergence or gradient, as :func:`fnn.descent.minimize`.

    Args:
      target: the mixture :math:`p`, a :class:`Mixture`.
      divergence: ``"kl_forward"``, ``"kl_reverse"``, ``"js"``, ``"mmd"`` or a function
        ``(params, target) -> scalar``.
      init: the starting ``(mean, std)``, scalars, ``std > 0``.
      steps: the number of updates T, a positive integer (static).
      learning_rate: the optimizer's rate, a positive scalar (may be traced); ``None`` when
        ``optimizer`` is an ``optax.GradientTransformation``.
      optimizer: a name of :mod:`fnn.optimizers` (built with ``learning_rate``) or an optax
        transformation.
      bandwidth: the kernel width :math:`h` for ``"mmd"`` (default 1.0); an error for the others.

    Returns:
      A :class:`Fit`: the fitted ``mean`` and ``std``, the final ``divergence``, the fitted
      ``params`` and the ``trajectory`` of ``mean``, ``std`` and ``divergence`` over the T steps.

    Raises:
      ValueError, TypeError: an unknown divergence or optimizer, a bandwidth for a divergence
        without one, non-positive steps, or an invalid target or ``init`` (values checked on
        concrete input; traced, they make the fit NaN).

    >>> fit = fit_gaussian(bimodal(4.0), "kl_forward", init=(1.0, 1.0), steps=500, learning_rate=0.05)
    >>> round(float(fit.mean), 2), round(float(fit.std) ** 2, 2)  # the mixture's moments: 0 and 5
    (0.0, 5.0)
    """
    target, steps, learning_rate, bandwidth, _ = _fit_setup(
        target, divergence, steps, learning_rate, optimizer, bandwidth
    )
    params = _init_params(init, target[0].dtype)
    return _fit(target, params, learning_rate, bandwidth, divergence=divergence, steps=steps, optimizer=optimizer)


def fit_gaussian_multistart(
    target: Mixture,
    divergence: str | Callable[[Params, Mixture], Array],
    *,
    init_means: ArrayLike,
    init_std: ArrayLike,
    steps: int,
    learning_rate: ArrayLike | None,
    optimizer: str | optax.GradientTransformation = "adam",
    bandwidth: ArrayLike | None = None,
) -> MultiStart:
    r""":func:`fit_gaussian` from several starting means at once (one ``jax.vmap``); keep the best.

    For a multimodal objective such as :func:`kl_reverse` each start descends into the local
    minimum of its basin; the best is the one with the smallest final divergence, and
    :func:`distinct_optima` lists the different minima found.

    Args:
      target: the mixture :math:`p`.
      divergence, steps, learning_rate, optimizer, bandwidth: as :func:`fit_gaussian`.
      init_means: ``[S]`` starting means.
      init_std: the starting std, a positive scalar shared by every start, or ``[S]``.

    Returns:
      A :class:`MultiStart`: the ``best`` fit, every start's fit in ``runs`` (leaves ``[S]``),
      and ``best_index``. A start whose divergence is NaN is never the best unless all are.

    >>> ms = fit_gaussian_multistart(bimodal(8.0, weights=(0.7, 0.3)), "kl_reverse",
    ...                              init_means=jnp.array([-3.0, 3.0]), init_std=1.0, steps=300, learning_rate=0.05)
    >>> [round(float(m), 1) for m in ms.runs.mean], int(ms.best_index)  # one mode each; the heavier is best
    ([-4.0, 4.0], 0)
    """
    target, steps, learning_rate, bandwidth, _ = _fit_setup(
        target, divergence, steps, learning_rate, optimizer, bandwidth
    )
    init_means = _checks.float_array(jnp.asarray(init_means, dtype=jnp.result_type(init_means, float)), "init_means")
    _checks.ndim_in(init_means, "init_means", (1,))
    _checks.nonempty_batch(init_means, "init_means")
    init_std = _checks.float_array(jnp.asarray(init_std, dtype=jnp.result_type(init_std, float)), "init_std")
    if init_std.ndim == 0:
        init_std = jnp.broadcast_to(init_std, init_means.shape)
    _checks.same_shape(init_means, init_std, "init_means", "init_std")
    _value_check(init_std, lambda xp, s: xp.all(s > 0), "init_std must be positive", _listed)
    params = jax.vmap(lambda m, s: _init_params((m, s), target[0].dtype))(init_means, init_std)
    runs = jax.vmap(
        lambda p: _fit(target, p, learning_rate, bandwidth, divergence=divergence, steps=steps, optimizer=optimizer)
    )(params)
    best_index = jnp.argmin(jnp.where(jnp.isnan(runs.divergence), jnp.inf, runs.divergence))
    best = jax.tree.map(lambda leaf: leaf[best_index], runs)
    return MultiStart(best, runs, best_index)


def distinct_optima(runs: Fit, *, atol: float = 1e-2, gtol: float = 1e-3) -> list[dict[str, float]]:
    """The different end points of several fits, best first: the local optima they found.

    Fits whose means and stds both agree within ``atol`` count as one optimum. Runs that ended
    non-finite, or whose final gradient norm exceeds ``gtol`` (still moving: not an optimum),
    are left out; ``runs.grad_norm`` shows them. Concrete input only (it returns Python values).

    Args:
      runs: a :class:`Fit` with leaves ``[S]``, e.g. ``fit_gaussian_multistart(...).runs``.
      atol: the tolerance on mean and std, positive.
      gtol: the largest final gradient norm of a run counted as converged, positive.

    Returns:
      A list of ``{"mean", "std", "divergence", "grad_norm", "starts"}`` dicts, sorted by
      divergence; ``starts`` counts the runs that ended there, ``grad_norm`` is their largest.

    >>> ms = fit_gaussian_multistart(bimodal(8.0, weights=(0.7, 0.3)), "kl_reverse",
    ...                              init_means=jnp.array([-5.0, -3.0, 3.0]), init_std=1.0, steps=300, learning_rate=0.05)
    >>> [(round(o["mean"], 1), o["starts"]) for o in distinct_optima(ms.runs, atol=0.05)]
    [(-4.0, 2), (4.0, 1)]
    """
    atol = _checks.positive_float(atol, "atol")
    gtol = _checks.positive_float(gtol, "gtol")
    if not _checks.is_concrete(runs.mean, runs.std, runs.divergence):
        raise TypeError("distinct_optima needs concrete fits; call it outside jax.jit")
    means, stds, divs, grads = (
        np.atleast_1d(np.asarray(a, np.float64)) for a in (runs.mean, runs.std, runs.divergence, runs.grad_norm)
    )
    optima: list[dict[str, Any]] = []
    for i in np.argsort(np.where(np.isfinite(divs), divs, np.inf), kind="stable"):
        if not (np.isfinite(divs[i]) and np.isfinite(means[i]) and np.isfinite(stds[i]) and grads[i] <= gtol):
            continue
        for o in optima:
            if abs(o["mean"] - means[i]) <= atol and abs(o["std"] - stds[i]) <= atol:
                o["starts"] += 1
                o["grad_norm"] = max(o["grad_norm"], float(grads[i]))
                break
        else:
            optima.append(
                {
                    "mean": float(means[i]),
                    "std": float(stds[i]),
                    "divergence": float(divs[i]),
                    "grad_norm": float(grads[i]),
                    "starts": 1,
                }
            )
    return optima
