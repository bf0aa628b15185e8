r"""Losses and divergences, each with its hand-written derivative.

Every loss takes a batch whose leading axis indexes the :math:`N` examples and reduces it
the way the theory writes it: **a sum over the output dimensions of each example, then a
mean over the examples**. For the mean squared error that is

.. math:: \mathrm{MSE} = \frac{1}{N} \sum_{n=1}^{N} \sum_{k=1}^{K} (\hat y_{nk} - y_{nk})^2 .

Next to each loss ``f`` sits ``f_grad``, the derivative with respect to its prediction input
written out by hand (for the divergences, with respect to both distributions); tests hold
each one to ``jax.grad`` in float64.

Classification losses take *logits* (unnormalised log-probabilities), never probabilities:
log-softmax and softplus of logits stay finite where the log of a rounded probability would
not. Divergences use :math:`0 \log 0 = 0`.

Losses are named by string for configuration: ``get("mse")``, ``get("mmd", bandwidth=0.5)``.
In that form every loss is a function ``loss(prediction, target)`` of the network output, the
shape :mod:`fnn.backprop` differentiates through; :func:`get` lists what each name computes.

Validation: shapes, ranks and dtypes are always checked. Values (label ranges, probabilities,
variances) are checked on concrete input; under ``jax.jit`` a bad value makes the loss NaN,
and :func:`fnn.checking.checked` turns it into an error with the same message.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike
from fnn.nn import activations as _activations

__all__ = [
    "Loss",
    "get",
    "names",
    "mse",
    "mse_grad",
    "l1",
    "l1_grad",
    "cross_entropy",
    "cross_entropy_grad",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "gaussian_nll",
    "gaussian_nll_grad",
    "kl_divergence",
    "kl_divergence_grad",
    "js_divergence",
    "js_divergence_grad",
    "mmd",
    "mmd_grad",
    "per_example",
    "weighted",
]

_LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------------------
# Validation shared by the losses.
# ----------------------------------------------------------------------------------------


def _batch_pair(prediction: ArrayLike, target: ArrayLike, pred_name: str, target_name: str) -> tuple[Array, Array]:
    """Float prediction and target of one shape with at least one example."""
    prediction = _checks.float_array(prediction, pred_name)
    target = jnp.asarray(target)
    _checks.same_shape(prediction, target, pred_name, target_name)
    _checks.nonempty_batch(prediction, pred_name)
    return prediction, target.astype(prediction.dtype)


def _distribution(p: Array, name: str, dtype: Any) -> Array | bool:
    """Value check that ``p`` holds probability distributions along its last axis."""
    tol = 1e3 * jnp.finfo(dtype).eps * max(p.shape[-1], 1)
    ok = (jnp.all(p >= 0, axis=-1)) & (jnp.abs(jnp.sum(p, axis=-1) - 1) <= tol)
    return _checks.require(ok, f"{name} must hold non-negative values summing to 1 along the last axis")


def _float_pair(a: ArrayLike, b: ArrayLike, name_a: str, name_b: str) -> tuple[Array, Array]:
    """Two float arrays of one shape, ``[K]`` or a non-empty batch ``[N, K]``, in ``a``'s dtype."""
    a = _checks.float_array(a, name_a)
    b = _checks.float_array(b, name_b).astype(a.dtype)
    _checks.same_shape(a, b, name_a, name_b)
    _checks.ndim_in(a, name_a, (1, 2))
    if a.ndim == 2:
        _checks.nonempty_batch(a, name_a)  # a mean over no examples would be a silent NaN
    return a, b


def _distribution_pair(p: ArrayLike, q: ArrayLike) -> tuple[Array, Array, Array | bool]:
    p, q = _float_pair(p, q, "p", "q")
    ok_p = _distribution(p, "p", p.dtype)
    ok_q = _distribution(q, "q", p.dtype)
    return p, q, _both(ok_p, ok_q)


def _logits_and_target(prediction: ArrayLike, target: ArrayLike) -> tuple[Array, Array, Array, Array | bool]:
    """The registry divergences' inputs, checked under the caller's names: ``(z, p, q, ok)``.

    ``prediction`` holds logits ``z`` and ``target`` a distribution ``p`` per row; ``target``
    plays the ``p`` and ``q = softmax(prediction)`` the ``q`` of :func:`kl_divergence` and
    :func:`js_divergence`, but every message names what the caller passed.
    """
    prediction, target = _float_pair(prediction, target, "prediction", "target")
    _activations.check_not_all_minus_inf(prediction, "prediction")
    q = jax.nn.softmax(prediction, axis=-1)
    ok_p = _distribution(target, "target", prediction.dtype)
    # Not a distribution only where a logit is +inf or NaN.
    ok_q = _distribution(q, "softmax(prediction)", prediction.dtype)
    return prediction, target, q, _both(ok_p, ok_q)


def _both(a: Array | bool, b: Array | bool) -> Array | bool:
    if a is True:
        return b
    if b is True:
        return a
    return a & b


def _examples(x: Array) -> Array:
    """The number of examples N as an array of x's dtype (the leading axis; 1 for a single distribution)."""
    return jnp.asarray(x.shape[0] if x.ndim > 1 else 1, x.dtype)


def _mean_over_examples(per_entry: Array) -> Array:
    """Sum over everything but the leading axis, mean over the leading axis."""
    return jnp.sum(per_entry) / per_entry.shape[0]


# ----------------------------------------------------------------------------------------
# Regression losses.
# ----------------------------------------------------------------------------------------


def mse(prediction: ArrayLike, target: ArrayLike) -> Array:
    r"""Mean squared error :math:`\frac{1}{N} \sum_n \sum_k (\hat y_{nk} - y_{nk})^2`.

    Args:
      prediction: float array ``[N, ...]``.
      target: array of the same shape (a ``[N]`` against ``[N, 1]`` mismatch is an error,
        not a broadcast).

    Returns:
      Scalar: summed over output dimensions, averaged over the N examples.

    >>> mse(jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([[1.0, 0.0], [3.0, 3.0]]))
    Array(2.5, dtype=float32)
    """
    prediction, target = _batch_pair(prediction, target, "prediction", "target")
    return _mean_over_examples(jnp.square(prediction - target))


def mse_grad(prediction: ArrayLike, target: ArrayLike) -> Array:
    r""":math:`\partial \mathrm{MSE} / \partial \hat y = 2 (\hat y - y) / N`, shaped like ``prediction``.

    >>> mse_grad(jnp.array([[1.0], [3.0]]), jnp.array([[0.0], [3.0]]))
    Array([[1.],
           [0.]], dtype=float32)
    """
    prediction, target = _batch_pair(prediction, target, "prediction", "target")
    return 2 * (prediction - target) / prediction.shape[0]


def _abs(x: Array) -> Array:
    # |x| with derivative 1 at 0, the convention of jax.grad(jnp.abs).
    return jnp.where(x >= 0, x, -x)


def l1(prediction: ArrayLike, target: ArrayLike) -> Array:
    r"""Mean absolute error :math:`\frac{1}{N} \sum_n \sum_k |\hat y_{nk} - y_{nk}|`.

    Its minimiser is the conditional median, which makes it robust to outliers in the target.
    Shapes and reduction as :func:`mse`.

    >>> l1(jnp.array([[1.0], [3.0]]), jnp.array([[0.0], [5.0]]))
    Array(1.5, dtype=float32)
    """
    prediction, target = _batch_pair(prediction, target, "prediction", "target")
    return _mean_over_examples(_abs(prediction - target))


def l1_grad(prediction: ArrayLike, target: ArrayLike) -> Array:
    r""":math:`\mathrm{sign}(\hat y - y) / N`, taking the derivative of :math:`|0|` as 1 as JAX does.

    >>> l1_grad(jnp.array([[1.0], [3.0]]), jnp.array([[0.0], [5.0]]))
    Array([[ 0.5],
           [-0.5]], dtype=float32)
    """
    prediction, target = _batch_pair(prediction, target, "prediction", "target")
    sign = jnp.where(prediction >= target, 1.0, -1.0).astype(prediction.dtype)
    return sign / prediction.shape[0]


def _variance(variance: ArrayLike, mean: Array, eps: float) -> tuple[Array, Array, Array | bool]:
    """The clamped variance max(variance, eps), the clamp mask, and the value check."""
    variance = _checks.float_array(variance, "variance").astype(mean.dtype)
    _checks.same_shape(mean, variance, "mean", "variance")
    ok = _checks.require(variance >= 0, "variance must be non-negative, got a negative value")
    unclamped = variance >= eps
    return jnp.where(unclamped, variance, jnp.asarray(eps, mean.dtype)), unclamped, ok


def gaussian_nll(mean: ArrayLike, target: ArrayLike, variance: ArrayLike | None = None, *, eps: float = 1e-6) -> Array:
    r"""Gaussian negative log-likelihood of ``target`` under :math:`\mathcal N(\mu, \sigma^2)`.

    .. math:: \frac{1}{N} \sum_n \sum_k \tfrac12 \left[\log 2\pi + \log \sigma^2_{nk}
              + \frac{(y_{nk} - \mu_{nk})^2}{\sigma^2_{nk}}\right]

    With ``variance=None`` the variance is 1, and the loss is :math:`\tfrac12\,\mathrm{MSE}`
    plus a constant: least squares is maximum likelihood under Gaussian noise. A learned
    variance (heteroscedastic regression) is clamped below at ``eps`` so that zero variance
    gives a finite loss; the clamped entries get zero gradient.

    Args:
      mean: float array ``[N, ...]``, the predicted mean :math:`\mu`.
      target: array of the same shape.
      variance: ``None`` for unit variance, else a non-negative float array of ``mean``'s shape.
      eps: the floor of the variance, positive.

    Returns:
      Scalar: summed over output dimensions, averaged over the N examples.

    Reference: D. Nix, A. Weigend, *Estimating the mean and variance of the target
    probability distribution*, ICNN 1994.

    >>> gaussian_nll(jnp.array([[0.0]]), jnp.array([[0.0]]))  # (1/2) log(2 pi)
    Array(0.9189385, dtype=float32)
    """
    mean, target = _batch_pair(mean, target, "mean", "target")
    if variance is None:
        return _mean_over_examples(0.5 * (jnp.square(target - mean) + _LOG_2PI))
    eps = _checks.positive_float(eps, "eps")
    var, _, ok = _variance(variance, mean, eps)
    per_entry = 0.5 * (_LOG_2PI + jnp.log(var) + jnp.square(target - mean) / var)
    return _checks.poison(_mean_over_examples(per_entry), ok)


def gaussian_nll_grad(
    mean: ArrayLike, target: ArrayLike, variance: ArrayLike | None = None, *, eps: float = 1e-6
) -> tuple[Array, Array | None]:
    r"""Derivatives of :func:`gaussian_nll` with respect to the mean and the variance.

    .. math:: \frac{\partial L}{\partial \mu} = \frac{\mu - y}{N \sigma^2}, \qquad
              \frac{\partial L}{\partial \sigma^2} = \frac{1}{2N}\left[\frac{1}{\sigma^2}
              - \frac{(y - \mu)^2}{\sigma^4}\right]

    The variance derivative is 0 where the variance was clamped, and ``None`` when
    ``variance`` is ``None``.

    >>> d_mean, d_var = gaussian_nll_grad(jnp.array([[1.0]]), jnp.array([[0.0]]), jnp.array([[2.0]]))
    >>> d_mean, d_var
    (Array([[0.5]], dtype=float32), Array([[0.125]], dtype=float32))
    """
    mean, target = _batch_pair(mean, target, "mean", "target")
    n = mean.shape[0]
    if variance is None:
        return (mean - target) / n, None
    eps = _checks.positive_float(eps, "eps")
    var, unclamped, ok = _variance(variance, mean, eps)
    residual = mean - target
    d_mean = residual / (n * var)
    d_var = jnp.where(unclamped, 0.5 * (1 / var - jnp.square(residual) / jnp.square(var)) / n, 0)
    return _checks.poison(d_mean, ok), _checks.poison(d_var, ok)


# ----------------------------------------------------------------------------------------
# Classification losses, from logits.
# ----------------------------------------------------------------------------------------


def _class_targets(logits: ArrayLike, labels: ArrayLike) -> tuple[Array, Array, Array | bool]:
    """Logits ``[N, ..., K]`` and labels turned into a distribution ``[N, ..., K]``."""
    logits = _checks.float_array(logits, "logits")
    labels = jnp.asarray(labels)
    if logits.ndim < 2:
        raise ValueError(f"logits must have shape [N, K] (or [N, ..., K]), got {logits.shape}")
    _checks.nonempty_batch(logits, "logits")
    # A row of all -inf logits has no softmax; its loss and gradient are NaN by the arithmetic,
    # so the traced verdict only goes to checkify (inside fnn.checking.checked).
    _activations.check_not_all_minus_inf(logits, "logits")
    num_classes = logits.shape[-1]
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"integer labels must have shape {logits.shape[:-1]} to match logits {logits.shape}, got {labels.shape}"
            )
        ok = _checks.require(
            (labels >= 0) & (labels < num_classes),
            f"labels must lie in [0, {num_classes}) for logits with {num_classes} classes, got values outside it",
        )
        return logits, jax.nn.one_hot(labels, num_classes, dtype=logits.dtype), ok
    if not jnp.issubdtype(labels.dtype, jnp.floating):
        raise TypeError(f"labels must be integer class indices or float distributions, got dtype {labels.dtype}")
    _checks.same_shape(logits, labels, "logits", "labels (a distribution over classes)")
    labels = labels.astype(logits.dtype)
    return logits, labels, _distribution(labels, "labels", logits.dtype)


def cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Array:
    r"""Cross-entropy of labels against ``softmax(logits)``.

    .. math:: \mathrm{CE} = -\frac{1}{N} \sum_n \sum_k y_{nk} \log \mathrm{softmax}(z_n)_k

    computed with log-softmax (the log-sum-exp trick), so it is finite for any finite logits.
    A logit of :math:`-\infty` on a class whose label is 0 contributes 0, not NaN; a row whose
    logits are all :math:`-\infty` has no softmax and is a ``ValueError`` (NaN under ``jit``).

    Args:
      logits: float array ``[N, K]`` (or ``[N, ..., K]``).
      labels: integer class indices ``[N]`` in ``[0, K)``, or a distribution per example
        (one-hot or soft labels) of the shape of ``logits``, non-negative and summing to 1.

    Returns:
      Scalar, averaged over the N examples (and summed over any middle axes).

    >>> cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([1]))  # log 2
    Array(0.6931472, dtype=float32)
    """
    logits, targets, ok = _class_targets(logits, labels)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    per_class = jnp.where(targets > 0, targets * log_probs, 0)
    return _checks.poison(-_mean_over_examples(per_class), ok)


def cross_entropy_grad(logits: ArrayLike, labels: ArrayLike) -> Array:
    r""":math:`\partial\,\mathrm{CE} / \partial z = (\mathrm{softmax}(z) - y) / N`, shaped like ``logits``.

    >>> cross_entropy_grad(jnp.array([[0.0, 0.0]]), jnp.array([1]))
    Array([[ 0.5, -0.5]], dtype=float32)
    """
    logits, targets, ok = _class_targets(logits, labels)
    return _checks.poison((jax.nn.softmax(logits, axis=-1) - targets) / logits.shape[0], ok)


def _binary_targets(logits: ArrayLike, targets: ArrayLike) -> tuple[Array, Array, Array | bool]:
    logits, targets = _batch_pair(logits, targets, "logits", "targets")
    ok = _checks.require((targets >= 0) & (targets <= 1), "targets must lie in [0, 1], got values outside it")
    return logits, targets, ok


def binary_cross_entropy(logits: ArrayLike, targets: ArrayLike) -> Array:
    r"""Binary cross-entropy of targets in [0, 1] against ``sigmoid(logits)``.

    .. math:: \mathrm{BCE} = \frac{1}{N} \sum_n \sum_k \left[\zeta(z_{nk}) - t_{nk} z_{nk}\right]

    where :math:`\zeta(z) = \log(1 + e^z)` is softplus. This equals
    :math:`-t \log \sigma(z) - (1 - t) \log(1 - \sigma(z))` and stays finite for logits of
    :math:`\pm 100` and beyond, where :math:`\log \sigma(z)` of a rounded sigmoid would not.

    Args:
      logits: float array ``[N, ...]``.
      targets: array of the same shape with values in [0, 1].

    Returns:
      Scalar, summed over outputs and averaged over the N examples.

    >>> binary_cross_entropy(jnp.array([[0.0]]), jnp.array([[1.0]]))
    Array(0.6931472, dtype=float32)
    """
    logits, targets, ok = _binary_targets(logits, targets)
    return _checks.poison(_mean_over_examples(jax.nn.softplus(logits) - targets * logits), ok)


def binary_cross_entropy_grad(logits: ArrayLike, targets: ArrayLike) -> Array:
    r""":math:`\partial\,\mathrm{BCE} / \partial z = (\sigma(z) - t) / N`.

    >>> binary_cross_entropy_grad(jnp.array([[0.0]]), jnp.array([[1.0]]))
    Array([[-0.5]], dtype=float32)
    """
    logits, targets, ok = _binary_targets(logits, targets)
    return _checks.poison((jax.nn.sigmoid(logits) - targets) / logits.shape[0], ok)


# ----------------------------------------------------------------------------------------
# Divergences between distributions.
# ----------------------------------------------------------------------------------------


def _xlogy(x: Array, y: Array) -> Array:
    """x log y with 0 log y = 0, safe under jax.grad (no 0 * inf in the backward pass)."""
    positive = x > 0
    return jnp.where(positive, x * jnp.log(jnp.where(positive, y, 1)), 0)


def _xlogx_derivative(x: Array) -> Array:
    # d/dx x log x = log x + 1; at x = 0 the convention is 0, what jax.grad of _xlogy(x, x) gives.
    positive = x > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, x, 1)) + 1, 0)


def _reduce_distributions(per_class: Array) -> Array:
    """Sum over the class axis; mean over examples when there is a batch axis."""
    per_example = jnp.sum(per_class, axis=-1)
    return jnp.mean(per_example) if per_example.ndim else per_example


def kl_divergence(p: ArrayLike, q: ArrayLike) -> Array:
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(p \,\|\, q) = \sum_k p_k \log(p_k / q_k)`.

    Uses :math:`0 \log 0 = 0`, so zeros in ``p`` are fine; a zero in ``q`` where ``p`` is
    positive gives :math:`+\infty`, the true value. Asymmetric: minimising
    :math:`\mathrm{KL}(p\|q)` over a model ``q`` covers every mode of ``p``, minimising
    :math:`\mathrm{KL}(q\|p)` seeks one mode.

    Args:
      p: distribution ``[K]`` or a batch ``[N, K]`` (non-negative, summing to 1).
      q: the same shape.

    Returns:
      Scalar in nats: summed over classes, averaged over the N examples of a batch.

    Reference: S. Kullback, R. Leibler, *On Information and Sufficiency*, 1951.

    >>> kl_divergence(jnp.array([0.5, 0.5, 0.0]), jnp.array([0.25, 0.25, 0.5]))  # log 2
    Array(0.6931472, dtype=float32)
    """
    p, q, ok = _distribution_pair(p, q)
    return _checks.poison(_reduce_distributions(_xlogy(p, p) - _xlogy(p, q)), ok)


def kl_divergence_grad(p: ArrayLike, q: ArrayLike) -> tuple[Array, Array]:
    r"""Derivatives of :func:`kl_divergence`: :math:`(\log(p/q) + 1)/N` for ``p``, :math:`-p/(Nq)` for ``q``.

    Entries where :math:`p = 0` get 0 for both (the convention of the :math:`0 \log 0` limit).

    >>> d_p, d_q = kl_divergence_grad(jnp.array([0.5, 0.5]), jnp.array([0.25, 0.75]))
    >>> d_q
    Array([-2.       , -0.6666667], dtype=float32)
    """
    p, q, ok = _distribution_pair(p, q)
    n = _examples(p)
    positive = p > 0
    log_q = jnp.log(jnp.where(positive, q, 1))
    d_p = jnp.where(positive, _xlogx_derivative(p) - log_q, 0) / n
    d_q = jnp.where(positive, -p / jnp.where(positive, q, 1), 0) / n
    return _checks.poison(d_p, ok), _checks.poison(d_q, ok)


def js_divergence(p: ArrayLike, q: ArrayLike) -> Array:
    r"""Jensen-Shannon divergence :math:`\tfrac12 \mathrm{KL}(p\|m) + \tfrac12 \mathrm{KL}(q\|m)`, :math:`m = \tfrac12(p + q)`.

    Symmetric, finite, and at most :math:`\log 2` (reached by distributions with disjoint
    supports). Computed as :math:`\tfrac12 \sum p \log p + \tfrac12 \sum q \log q - \sum m \log m`.

    Args:
      p: distribution ``[K]`` or a batch ``[N, K]``.
      q: the same shape.

    Returns:
      Scalar in nats, averaged over the N examples of a batch.

    Reference: J. Lin, *Divergence measures based on the Shannon entropy*, IEEE Trans.
    Inf. Theory 37(1), 1991.

    >>> js_divergence(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]))  # log 2
    Array(0.6931472, dtype=float32)
    """
    p, q, ok = _distribution_pair(p, q)
    m = 0.5 * (p + q)
    per_class = 0.5 * _xlogy(p, p) + 0.5 * _xlogy(q, q) - _xlogy(m, m)
    return _checks.poison(_reduce_distributions(per_class), ok)


def js_divergence_grad(p: ArrayLike, q: ArrayLike) -> tuple[Array, Array]:
    r"""Derivatives of :func:`js_divergence`: :math:`\tfrac{1}{2N} \log(p/m)` for ``p``, likewise for ``q``.

    Written as :math:`\tfrac{1}{2N}[h'(p) - h'(m)]` with :math:`h(x) = x \log x` and
    :math:`h'(0) = 0`, the convention of the :math:`0 \log 0` limit.

    >>> d_p, d_q = js_divergence_grad(jnp.array([0.5, 0.5]), jnp.array([0.5, 0.5]))
    >>> d_p
    Array([0., 0.], dtype=float32)
    """
    p, q, ok = _distribution_pair(p, q)
    n = _examples(p)
    h_m = _xlogx_derivative(0.5 * (p + q))
    d_p = 0.5 * (_xlogx_derivative(p) - h_m) / n
    d_q = 0.5 * (_xlogx_derivative(q) - h_m) / n
    return _checks.poison(d_p, ok), _checks.poison(d_q, ok)


# ----------------------------------------------------------------------------------------
# Maximum mean discrepancy between two samples.
# ----------------------------------------------------------------------------------------


def _samples(x: ArrayLike, y: ArrayLike, bandwidth: ArrayLike) -> tuple[Array, Array, Array, Array | bool]:
    x = _checks.float_array(x, "x")
    y = _checks.float_array(y, "y").astype(x.dtype)
    _checks.ndim_in(x, "x", (1, 2))
    _checks.ndim_in(y, "y", (1, 2))
    if x.ndim != y.ndim or x.shape[1:] != y.shape[1:]:
        raise ValueError(f"x and y must be samples of the same dimension, got shapes {x.shape} and {y.shape}")
    _checks.nonempty_batch(x, "x")
    _checks.nonempty_batch(y, "y")
    bandwidth = jnp.asarray(bandwidth, x.dtype)
    if bandwidth.ndim:
        raise ValueError(f"bandwidth must be a scalar, got shape {bandwidth.shape}")
    ok = _checks.require(bandwidth > 0, "bandwidth must be positive")
    if x.ndim == 1:
        x, y = x[:, None], y[:, None]
    return x, y, bandwidth, ok


def _gaussian_gram(a: Array, b: Array, bandwidth: Array) -> tuple[Array, Array]:
    """Kernel matrix k(a_i, b_j) = exp(-|a_i - b_j|^2 / (2 s^2)) and the differences a_i - b_j."""
    diff = a[:, None, :] - b[None, :, :]
    return jnp.exp(-jnp.sum(jnp.square(diff), axis=-1) / (2 * jnp.square(bandwidth))), diff


def mmd(x: ArrayLike, y: ArrayLike, bandwidth: ArrayLike = 1.0) -> Array:
    r"""Squared maximum mean discrepancy with a Gaussian kernel (biased V-statistic).

    .. math:: \mathrm{MMD}^2 = \frac{1}{N^2} \sum_{i,j} k(x_i, x_j)
              + \frac{1}{M^2} \sum_{i,j} k(y_i, y_j) - \frac{2}{NM} \sum_{i,j} k(x_i, y_j),
              \qquad k(a, b) = \exp\left(-\frac{\|a - b\|^2}{2 s^2}\right)

    Non-negative, zero when the two samples are identical, and for a characteristic kernel
    such as the Gaussian zero in the population limit only when the distributions are equal.

    Args:
      x: samples ``[N, D]`` (or ``[N]`` for D = 1), e.g. from a model.
      y: samples ``[M, D]`` (or ``[M]``), e.g. from the data.
      bandwidth: the kernel width :math:`s > 0`; may be a traced scalar.

    Returns:
      Scalar. Memory is O((N + M)^2 D).

    Reference: A. Gretton et al., *A Kernel Two-Sample Test*, JMLR 13, 2012.

    >>> mmd(jnp.array([[0.0], [1.0]]), jnp.array([[0.0], [1.0]]))
    Array(0., dtype=float32)
    """
    x, y, bandwidth, ok = _samples(x, y, bandwidth)
    k_xx, _ = _gaussian_gram(x, x, bandwidth)
    k_yy, _ = _gaussian_gram(y, y, bandwidth)
    k_xy, _ = _gaussian_gram(x, y, bandwidth)
    return _checks.poison(jnp.mean(k_xx) + jnp.mean(k_yy) - 2 * jnp.mean(k_xy), ok)


def mmd_grad(x: ArrayLike, y: ArrayLike, bandwidth: ArrayLike = 1.0) -> Array:
    r"""Derivative of :func:`mmd` with respect to the sample ``x``, shaped like ``x``.

    .. math:: \frac{\partial\, \mathrm{MMD}^2}{\partial x_i} = -\frac{2}{N^2 s^2}
              \sum_j k(x_i, x_j)(x_i - x_j) + \frac{2}{N M s^2} \sum_j k(x_i, y_j)(x_i - y_j)

    >>> mmd_grad(jnp.array([[0.0], [1.0]]), jnp.array([[0.0], [1.0]]))
    Array([[0.],
           [0.]], dtype=float32)
    """
    squeeze = jnp.ndim(x) == 1
    x, y, bandwidth, ok = _samples(x, y, bandwidth)
    n, m = x.shape[0], y.shape[0]
    k_xx, d_xx = _gaussian_gram(x, x, bandwidth)
    k_xy, d_xy = _gaussian_gram(x, y, bandwidth)
    s2 = jnp.square(bandwidth)
    grad = -2 / (n * n * s2) * jnp.einsum("ij,ijd->id", k_xx, d_xx) + 2 / (n * m * s2) * jnp.einsum(
        "ij,ijd->id", k_xy, d_xy
    )
    grad = _checks.poison(grad, ok)
    return grad[:, 0] if squeeze else grad


# ----------------------------------------------------------------------------------------
# Losses of a network output, by name: the form fnn.backprop differentiates through.
# ----------------------------------------------------------------------------------------


def _kl_from_logits(logits: Array, target: Array) -> Array:
    # KL(t || softmax(z)) = sum t log t - sum t log_softmax(z). Log-softmax stays finite where
    # the log of a softmax rounded to 0 is -inf (logits [1000, 0]: inf loss, NaN gradient).
    logits, p, _, ok = _logits_and_target(logits, target)
    log_q = jax.nn.log_softmax(logits, axis=-1)
    # The 0 log 0 = 0 convention, as kl_divergence(target, softmax(logits)).
    positive = p > 0
    per_class = _xlogy(p, p) - jnp.where(positive, p * jnp.where(positive, log_q, 0), 0)
    return _checks.poison(_reduce_distributions(per_class), ok)


def _kl_from_logits_grad(logits: Array, target: Array) -> Array:
    # The softmax VJP of -p/q, simplified: (softmax(z) sum_k p_k - p) / N, with no p/q to overflow.
    _, p, q, ok = _logits_and_target(logits, target)
    return _checks.poison((q * jnp.sum(p, axis=-1, keepdims=True) - p) / _examples(p), ok)


def _js_from_logits(logits: Array, target: Array) -> Array:
    _, p, q, ok = _logits_and_target(logits, target)
    m = 0.5 * (p + q)
    per_class = 0.5 * _xlogy(p, p) + 0.5 * _xlogy(q, q) - _xlogy(m, m)
    return _checks.poison(_reduce_distributions(per_class), ok)


def _js_from_logits_grad(logits: Array, target: Array) -> Array:
    # d JS / d q from js_divergence_grad, pulled back through the softmax.
    logits, p, q, ok = _logits_and_target(logits, target)
    d_q = 0.5 * (_xlogx_derivative(q) - _xlogx_derivative(0.5 * (p + q))) / _examples(p)
    return _checks.poison(_activations.get("softmax").vjp(logits, q, d_q), ok)


def _split_mean_variance(prediction: Array, target: Array) -> tuple[Array, Array]:
    prediction = _checks.float_array(prediction, "prediction")
    target = jnp.asarray(target)
    if prediction.ndim != 2 or target.ndim != 2 or prediction.shape != (target.shape[0], 2 * target.shape[1]):
        raise ValueError(
            "gaussian_nll_learned needs prediction [N, 2K] (mean, then pre-softplus variance) "
            f"for target [N, K], got {prediction.shape} and {target.shape}"
        )
    k = target.shape[1]
    return prediction[:, :k], prediction[:, k:]


def _gaussian_nll_learned(prediction: Array, target: Array, eps: float = 1e-6) -> Array:
    mean, raw = _split_mean_variance(prediction, target)
    return gaussian_nll(mean, target, jax.nn.softplus(raw), eps=eps)


def _gaussian_nll_learned_grad(prediction: Array, target: Array, eps: float = 1e-6) -> Array:
    mean, raw = _split_mean_variance(prediction, target)
    d_mean, d_var = gaussian_nll_grad(mean, target, jax.nn.softplus(raw), eps=eps)
    return jnp.concatenate([d_mean, d_var * jax.nn.sigmoid(raw)], axis=1)


def _gaussian_nll_unit(prediction: Array, target: Array) -> Array:
    return gaussian_nll(prediction, target)


def _gaussian_nll_unit_grad(prediction: Array, target: Array) -> Array:
    return gaussian_nll_grad(prediction, target)[0]


@dataclasses.dataclass(frozen=True)
class Loss:
    """A loss of a network output with its hand-written derivative; hashable.

    Attributes:
      name: the registry name.
      fn: ``fn(prediction, target, *params) -> scalar``.
      grad_fn: ``grad_fn(prediction, target, *params) -> dL/dprediction``, shaped like ``prediction``.
      params: extra arguments, such as ``(bandwidth,)`` for ``"mmd"``.
    """

    name: str
    fn: Callable[..., Array]
    grad_fn: Callable[..., Array]
    params: tuple[Any, ...] = ()

    def __call__(self, prediction: ArrayLike, target: ArrayLike) -> Array:
        return self.fn(prediction, target, *self.params)

    def grad(self, prediction: ArrayLike, target: ArrayLike) -> Array:
        """The hand-written :math:`\\partial L / \\partial\\,\\mathrm{prediction}`."""
        return self.grad_fn(prediction, target, *self.params)


# name -> (fn, grad_fn, parameter names with defaults, what it computes)
_REGISTRY: dict[str, tuple[Callable[..., Array], Callable[..., Array], dict[str, float], str]] = {
    "mse": (mse, mse_grad, {}, "mean squared error of the output"),
    "l1": (l1, l1_grad, {}, "mean absolute error of the output"),
    "cross_entropy": (cross_entropy, cross_entropy_grad, {}, "cross-entropy of logits, integer or soft labels"),
    "binary_cross_entropy": (binary_cross_entropy, binary_cross_entropy_grad, {}, "binary cross-entropy of logits"),
    "gaussian_nll": (_gaussian_nll_unit, _gaussian_nll_unit_grad, {}, "Gaussian NLL, unit variance"),
    "gaussian_nll_learned": (
        _gaussian_nll_learned,
        _gaussian_nll_learned_grad,
        {"eps": 1e-6},
        "Gaussian NLL; output [N, 2K] = mean, then softplus^-1 of the variance",
    ),
    "kl_divergence": (_kl_from_logits, _kl_from_logits_grad, {}, "KL(target || softmax(output))"),
    "js_divergence": (_js_from_logits, _js_from_logits_grad, {}, "JS(target, softmax(output))"),
    "mmd": (mmd, mmd_grad, {"bandwidth": 1.0}, "squared MMD between output and target samples"),
}


def names() -> tuple[str, ...]:
    """The registered loss names, sorted.

    >>> names()[:3]
    ('binary_cross_entropy', 'cross_entropy', 'gaussian_nll')
    """
    return tuple(sorted(_REGISTRY))


def get(loss: str | Loss, **params: float) -> Loss:
    """Look up a loss of a network output by name; a ``Loss`` passes through.

    ========================  ==================================================================
    name                      ``loss(prediction, target)``
    ========================  ==================================================================
    ``mse``, ``l1``           :func:`mse`, :func:`l1`
    ``cross_entropy``         :func:`cross_entropy` of logits; integer or distribution labels
    ``binary_cross_entropy``  :func:`binary_cross_entropy` of logits
    ``gaussian_nll``          :func:`gaussian_nll` with unit variance; prediction is the mean
    ``gaussian_nll_learned``  prediction ``[N, 2K]``: mean, then ``v`` with variance softplus(v)
    ``kl_divergence``         :math:`\\mathrm{KL}(\\mathrm{target}\\,\\|\\,\\mathrm{softmax(prediction)})`
    ``js_divergence``         :math:`\\mathrm{JS}(\\mathrm{target}, \\mathrm{softmax(prediction)})`
    ``mmd``                   :func:`mmd` between prediction and target samples (``bandwidth``)
    ========================  ==================================================================

    Raises:
      ValueError: for an unknown name (the message lists the known ones) or parameter.
      TypeError: for anything that is neither a string nor a ``Loss``.

    >>> get("mse")(jnp.array([[1.0]]), jnp.array([[0.0]]))
    Array(1., dtype=float32)
    """
    if isinstance(loss, Loss):
        if params:
            raise ValueError(f"parameters {sorted(params)} cannot be given with a Loss instance")
        return loss
    (fn, grad_fn, _, _), values = _checks.registry_lookup("loss", loss, _REGISTRY, params)
    return Loss(loss, fn, grad_fn, values)


def per_example(loss: str | Loss, prediction: ArrayLike, target: ArrayLike) -> Array:
    r"""The loss of each example on its own, ``[N]``: :math:`\ell_n` with :math:`L = \frac1N \sum_n \ell_n`.

    Defined for every loss that is a mean over examples (all but ``mmd``, which compares two
    samples as wholes).

    >>> per_example("mse", jnp.array([[1.0], [3.0]]), jnp.array([[0.0], [5.0]])).tolist()
    [1.0, 4.0]
    """
    loss = get(loss)
    if loss.name == "mmd":
        raise ValueError("mmd compares two samples as wholes; it has no per-example value")
    prediction, target = jnp.asarray(prediction), jnp.asarray(target)
    return jax.vmap(lambda p, t: loss(p[None], t[None]))(prediction, target)


def weighted(loss: str | Loss, weights: ArrayLike) -> Loss:
    r"""``loss`` as a weighted mean over examples, :math:`\sum_n w_n \ell_n / \sum_n w_n`, with its gradient.

    Weights of 0 remove examples (padding), so data sets of different sizes can share one
    shape; a batch whose weights are all 0 has loss 0 and gradient 0. The gradient is the
    unweighted hand-written one rescaled per example, :math:`\partial L_w / \partial \hat y_n
    = N w_n / \sum_m w_m \cdot \partial L / \partial \hat y_n`, because :math:`L` is a mean.

    Args:
      loss: a loss name or :class:`Loss` that is a mean over examples (not ``mmd``).
      weights: ``[N]``, non-negative, for the batch the returned loss will be called on.

    Returns:
      A :class:`Loss` with the same name, for that batch.

    >>> w = weighted("mse", jnp.array([1.0, 0.0]))
    >>> float(w(jnp.array([[1.0], [3.0]]), jnp.array([[0.0], [5.0]])))
    1.0
    """
    loss = get(loss)
    if loss.name == "mmd":
        raise ValueError("mmd compares two samples as wholes; it cannot weight examples")
    weights = _checks.float_array(weights, "weights")
    _checks.ndim_in(weights, "weights", (1,))
    ok = _checks.require(weights >= 0, "weights must be non-negative")

    def total(dtype: Any) -> Array:
        return jnp.maximum(jnp.sum(weights.astype(dtype)), jnp.finfo(dtype).tiny)

    def fn(prediction: Array, target: Array) -> Array:
        per = per_example(loss, prediction, target)
        if per.shape != weights.shape:
            raise ValueError(
                f"weights must have one entry per example, got {weights.shape} for {per.shape[0]} examples"
            )
        return _checks.poison(jnp.sum(weights.astype(per.dtype) * per) / total(per.dtype), ok)

    def grad_fn(prediction: Array, target: Array) -> Array:
        g = loss.grad(prediction, target)
        scale = g.shape[0] * weights.astype(g.dtype) / total(g.dtype)
        return _checks.poison(g * scale.reshape((-1,) + (1,) * (g.ndim - 1)), ok)

    return Loss(loss.name, fn, grad_fn)
