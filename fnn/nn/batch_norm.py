r"""Batch normalisation: standardise each feature over the batch, then scale and shift.

For a batch of pre-activations :math:`x \in \mathbb R^{n \times F}` (rows are examples), in
**training** each feature is normalised by the statistics of the batch,

.. math:: \mu = \frac1n \sum_i x_i, \qquad \sigma^2 = \frac1n \sum_i (x_i - \mu)^2, \qquad
          \hat x_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad
          y_i = \gamma \odot \hat x_i + \beta,

with a learned scale :math:`\gamma` and shift :math:`\beta` (initialised to 1 and 0), so the
layer can represent the identity. Any number of leading batch axes is allowed: ``x: [..., F]``
is normalised over all axes but the last (a single example ``[F]`` is a batch of one).

Running statistics for **evaluation** are exponential moving averages, updated in every
training call,

.. math:: \bar\mu \leftarrow m\,\bar\mu + (1 - m)\,\mu, \qquad
          \bar\sigma^2 \leftarrow m\,\bar\sigma^2 + (1 - m)\,\frac{n}{\max(n - 1, 1)}\,\sigma^2,

where :math:`m` is ``momentum``, **the weight of the old value** (as in optax and Flax; PyTorch's
``momentum=0.1`` is our ``momentum=0.9``), and the running variance takes the unbiased batch
variance, as Ioffe & Szegedy do. With :math:`n = 1` the batch variance is 0, every
:math:`\hat x` is 0 and the training output is :math:`\beta`: finite, if useless; the
:math:`\max(n-1, 1)` keeps the running variance finite too. In evaluation the running
statistics replace :math:`\mu, \sigma^2`, so an example's output does not depend on the rest
of its batch, and the state comes back unchanged.

**Example weights.** Training may weigh the examples, :math:`w_i \ge 0` (0 for the padding that
gives data sets of different sizes one shape, as :func:`fnn.selection.kfold.cross_validate`
does). With :math:`W = \sum_i w_i` the batch statistics are the weighted ones,

.. math:: \mu = \frac1W \sum_i w_i x_i, \qquad \sigma^2 = \frac1W \sum_i w_i (x_i - \mu)^2,

so an example of weight 0 takes no part in them (its own output is still normalised by them),
and with weights 0 and 1 they are those of the examples of weight 1 alone. The weights count
examples (weight 2 is two copies), so the running variance takes
:math:`\sigma^2 \max(W, 1) / \max(W - 1, 1)`; all weights 1 give exactly the unweighted
layer. A batch of total weight :math:`W = 0` holds no example: it is normalised by the running
statistics, as in evaluation, and leaves them unchanged, so its output and gradient stay
finite (a weighted loss gives such a batch loss 0 and gradient 0). ``weights=None`` computes
the unweighted layer and no weights at all.

**Backward pass.** With :math:`g_i = \partial L / \partial y_i` and
:math:`s = (\sigma^2 + \epsilon)^{-1/2}`: :math:`\partial L/\partial\gamma = \sum_i g_i \odot
\hat x_i` and :math:`\partial L / \partial \beta = \sum_i g_i`. For the input, per feature,
:math:`\partial \mu / \partial x_i = 1/n` and :math:`\partial s / \partial x_i = -\tfrac12 s^3
\cdot \tfrac2n (x_i - \mu) = -s^2 \hat x_i / n` (using :math:`\sum_j (x_j - \mu) = 0`), so

.. math:: \frac{\partial \hat x_j}{\partial x_i} = s\Big(\delta_{ij} - \frac1n
          - \frac{\hat x_i \hat x_j}{n}\Big), \qquad
          \frac{\partial L}{\partial x_i} = \sum_j \gamma g_j \frac{\partial \hat x_j}{\partial x_i}
          = \gamma s \Big(g_i - \overline{g} - \hat x_i\, \overline{g \hat x}\Big),

with :math:`\overline{\,\cdot\,}` the mean over the batch. With example weights and
:math:`p_i = w_i / W`, :math:`\partial \mu / \partial x_i = p_i` and :math:`\partial s /
\partial x_i = -s^2 p_i \hat x_i` (now :math:`\sum_j w_j (x_j - \mu) = 0`), so

.. math:: \frac{\partial \hat x_j}{\partial x_i} = s\big(\delta_{ij} - p_i - p_i \hat x_i \hat x_j\big),
          \qquad \frac{\partial L}{\partial x_i} = \gamma s \Big(g_i - p_i \sum_j g_j
          - p_i \hat x_i \sum_j g_j \hat x_j\Big),

the unweighted rule when every :math:`p_i = 1/n`. In evaluation (and for a batch of weight 0,
:math:`p = 0`) :math:`\mu` and :math:`s` are constants and :math:`\partial L/\partial x_i =
\gamma s\, g_i`. All are :func:`vjp`.

Reference: S. Ioffe, C. Szegedy, *Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift*, ICML 2015.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike, Params

__all__ = ["BatchNormState", "BatchNormCache", "init", "check_weights", "apply", "forward", "vjp"]


class BatchNormState(NamedTuple):
    """Running statistics of one batch-normalisation layer.

    Attributes:
      mean: the running mean :math:`\\bar\\mu`, ``[F]``.
      var: the running variance :math:`\\bar\\sigma^2`, ``[F]``.
    """

    mean: Array
    var: Array


@functools.partial(jax.tree_util.register_dataclass, data_fields=["xhat", "inv_std", "shares"], meta_fields=["train"])
@dataclasses.dataclass(frozen=True)
class BatchNormCache:
    r"""What :func:`vjp` needs from the forward pass.

    A pytree whose leaves are ``xhat``, ``inv_std`` and ``shares`` (when not ``None``); ``train``
    is static, so a cache passes through ``jax.jit`` and ``jax.vmap`` unchanged.

    Attributes:
      xhat: the normalised input :math:`\hat x`, shaped like the input ``[..., F]``.
      inv_std: :math:`s = (\sigma^2 + \epsilon)^{-1/2}`, ``[F]``, from the batch in training and
        from the running variance in evaluation.
      train: whether the batch statistics were used (and so depend on the input).
      shares: with example weights in training, each example's share :math:`p_i = w_i / W` of
        the batch statistics, shaped like the input without its feature axis ``[...]`` (all 0
        for a batch of weight 0); ``None`` for the unweighted layer (every share :math:`1/n`).
    """

    xhat: Array
    inv_std: Array
    train: bool
    shares: Array | None = None


def init(features: int, dtype: Any = jnp.float32) -> tuple[Params, BatchNormState]:
    """The identity transform and neutral running statistics for ``features`` features.

    Args:
      features: the number of features F (the width of the layer normalised).
      dtype: a floating dtype.

    Returns:
      ``({"gamma": ones [F], "beta": zeros [F]}, BatchNormState(mean=zeros [F], var=ones [F]))``.

    >>> params, state = init(3)
    >>> params["gamma"].tolist(), state.var.tolist()
    ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    """
    features = _checks.positive_int(features, "features")
    if not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
        raise TypeError(f"dtype must be a floating dtype, got {jnp.dtype(dtype)}")
    ones, zeros = jnp.ones((features,), dtype), jnp.zeros((features,), dtype)
    return {"gamma": ones, "beta": zeros}, BatchNormState(zeros, ones)


def _check(params: Params, state: Any, x: Array) -> None:
    if not isinstance(params, Mapping) or set(params) != {"gamma", "beta"}:
        raise TypeError(f"params must be a dict with keys 'gamma' and 'beta', got {params!r:.80}")
    if not isinstance(state, tuple) or len(state) != 2:
        raise TypeError(f"state must be a BatchNormState(mean, var), got {state!r:.80}")
    if x.ndim == 0:
        raise ValueError("x must have a feature axis (shape [..., F]), got a scalar")
    features = x.shape[-1]
    for name, value in (
        ("params['gamma']", params["gamma"]),
        ("params['beta']", params["beta"]),
        ("state.mean", state[0]),
        ("state.var", state[1]),
    ):
        if jnp.shape(value) != (features,):
            raise ValueError(
                f"{name} must have shape ({features},), the features of x {x.shape}, got {jnp.shape(value)}"
            )


def _bcast(v: Array, ndim: int) -> Array:
    # Explicit, so the code is valid under jax_numpy_rank_promotion="raise".
    return jax.lax.broadcast_to_rank(v, ndim)


def check_weights(weights: ArrayLike | None, x: Array) -> Array | None:
    """Example weights for the batch ``x: [..., F]``: a float array shaped ``x.shape[:-1]``, or ``None``.

    The shape is checked at trace time; that the weights are non-negative is a value check
    (under tracing a negative weight turns the output into NaN, see :mod:`fnn._checks`).

    >>> check_weights([1.0, 0.0], jnp.ones((2, 3))).tolist()
    [1.0, 0.0]
    >>> check_weights(jnp.ones(3), jnp.ones((2, 3)))
    Traceback (most recent call last):
    ...
    ValueError: weights must hold one weight per example of x, shape (2,) for x of shape (2, 3), got (3,)
    """
    if weights is None:
        return None
    weights = _checks.float_array(weights, "weights")
    if weights.shape != x.shape[:-1]:
        raise ValueError(
            f"weights must hold one weight per example of x, shape {x.shape[:-1]} for x of shape {x.shape}, "
            f"got {weights.shape}"
        )
    return weights


def _weighted_statistics(
    state: BatchNormState, x: Array, weights: Array, momentum: Array, axes: tuple[int, ...]
) -> tuple[Array, Array, Array, BatchNormState, Array | bool]:
    """The weighted batch statistics of the module docstring: ``(centred, var, shares, new_state, ok)``."""
    ok = _checks.require(weights >= 0, "weights must be non-negative")
    w = weights.astype(x.dtype)
    total = jnp.sum(w)
    some = total > 0
    # Dividing after the sum, as jnp.mean does, makes weights of 1 give the unweighted bits.
    safe = jnp.maximum(total, jnp.finfo(x.dtype).tiny)
    w_col = w[..., None]
    mean = jnp.where(some, jnp.sum(w_col * x, axis=axes) / safe, state.mean)
    centred = x - _bcast(mean, x.ndim)
    var = jnp.where(some, jnp.sum(w_col * jnp.square(centred), axis=axes) / safe, state.var)
    # Weights count examples: the unbiased correction of W examples, W / (W - 1), kept finite for W <= 1.
    correction = jnp.maximum(total, 1) / jnp.maximum(total - 1, 1)
    batch_mean, batch_var = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var * correction)
    updated = BatchNormState(
        (momentum * state.mean + (1 - momentum) * batch_mean).astype(state.mean.dtype),
        (momentum * state.var + (1 - momentum) * batch_var).astype(state.var.dtype),
    )
    new_state = BatchNormState(*(jnp.where(some, u, old) for u, old in zip(updated, state, strict=True)))
    return centred, var, w / safe, new_state, ok


def forward(
    params: Params,
    state: BatchNormState,
    x: ArrayLike,
    *,
    train: bool,
    momentum: ArrayLike = 0.9,
    eps: ArrayLike = 1e-5,
    weights: ArrayLike | None = None,
) -> tuple[Array, BatchNormState, BatchNormCache]:
    """:func:`apply`, also returning the :class:`BatchNormCache` of :func:`vjp`.

    >>> params, state = init(2)
    >>> y, state, cache = forward(params, state, jnp.array([[0.0, 1.0], [2.0, 3.0]]), train=True)
    >>> cache.xhat.shape, cache.train, cache.shares
    ((2, 2), True, None)
    """
    x = _checks.float_array(x, "x")
    if not isinstance(train, bool):
        raise TypeError(f"train must be a Python bool (it selects the training or evaluation path), got {train!r:.60}")
    _check(params, state, x)
    weights = check_weights(weights, x)
    given, state = state, BatchNormState(*state)
    momentum = _checks.in_range(
        momentum,
        "momentum",
        0.0,
        1.0,
        low_closed=True,
        hint=" (the weight of the old running value; PyTorch's 0.1 is 0.9 here)",
    )
    eps = _checks.in_range(eps, "eps", 0.0, math.inf, low_closed=False)
    axes = tuple(range(x.ndim - 1))
    shares, ok = None, True
    if train:
        if x.size == 0:
            raise ValueError(f"x must hold at least one example to take batch statistics, got shape {x.shape}")
    if train and weights is not None:
        centred, var, shares, new_state, ok = _weighted_statistics(state, x, weights, momentum, axes)
    elif train:
        mean = jnp.mean(x, axis=axes)
        centred = x - _bcast(mean, x.ndim)
        var = jnp.mean(jnp.square(centred), axis=axes)
        n = math.prod(x.shape[:-1])
        batch_mean, batch_var = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var * (n / max(n - 1, 1)))
        new_state = BatchNormState(
            (momentum * state.mean + (1 - momentum) * batch_mean).astype(state.mean.dtype),
            (momentum * state.var + (1 - momentum) * batch_var).astype(state.var.dtype),
        )
    else:
        # Evaluation takes no batch statistics, so example weights change nothing.
        centred, var, new_state = x - _bcast(state.mean, x.ndim), state.var, given
    inv_std = jax.lax.rsqrt(var + eps)
    xhat = centred * _bcast(inv_std, x.ndim)
    y = _bcast(params["gamma"], x.ndim) * xhat + _bcast(params["beta"], x.ndim)
    if ok is not True:  # a traced negative weight: NaN, never a silent result
        y, new_state = _checks.poison(y, ok), BatchNormState(*(_checks.poison(a, ok) for a in new_state))
    return y, new_state, BatchNormCache(xhat, inv_std, train, shares)


def apply(
    params: Params,
    state: BatchNormState,
    x: ArrayLike,
    *,
    train: bool,
    momentum: ArrayLike = 0.9,
    eps: ArrayLike = 1e-5,
    weights: ArrayLike | None = None,
) -> tuple[Array, BatchNormState]:
    r"""Normalise ``x`` by batch statistics (training) or running statistics (evaluation).

    .. math:: y = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta

    With ``weights`` the batch statistics are the weighted mean and variance (module docstring).

    Args:
      params: ``{"gamma": [F], "beta": [F]}`` from :func:`init`.
      state: the running statistics, a :class:`BatchNormState` of ``[F]`` arrays.
      x: ``[..., F]``; statistics are taken over all axes but the last.
      train: ``True`` for batch statistics (and an updated state), ``False`` for the running ones.
      momentum: :math:`m \in [0, 1)`, the weight of the old running value (PyTorch's 0.1 is 0.9).
      eps: :math:`\epsilon > 0`, added to the variance.
      weights: ``None``, or example weights ``[...]`` (``x.shape[:-1]``), non-negative, that
        weigh the batch statistics in training (0 leaves an example out of them); unused in
        evaluation.

    Returns:
      ``(y, new_state)``: ``y`` shaped like ``x``; in evaluation ``new_state`` is ``state``.

    Raises:
      ValueError: a feature count that does not match, ``momentum`` outside [0, 1), ``eps <= 0``,
        weights not shaped ``x.shape[:-1]`` or negative.

    >>> params, state = init(2)
    >>> x = jnp.array([[1.0, 10.0], [3.0, 30.0]])
    >>> y, new_state = apply(params, state, x, train=True)
    >>> [[round(v, 4) for v in row] for row in y.tolist()], [round(v, 4) for v in new_state.mean.tolist()]
    ([[-1.0, -1.0], [1.0, 1.0]], [0.2, 2.0])
    >>> y, _ = apply(params, state, jnp.array([[1.0, 10.0], [3.0, 30.0], [9.0, 9.0]]), train=True,
    ...              weights=jnp.array([1.0, 1.0, 0.0]))
    >>> [[round(v, 4) for v in row] for row in y[:2].tolist()]  # the third example is left out
    [[-1.0, -1.0], [1.0, 1.0]]
    """
    y, new_state, _ = forward(params, state, x, train=train, momentum=momentum, eps=eps, weights=weights)
    return y, new_state


def vjp(params: Params, cache: BatchNormCache, dy: ArrayLike) -> tuple[Array, Params]:
    r"""The backward pass: :math:`\partial L / \partial x` and the gradients of :math:`\gamma, \beta`.

    .. math:: \frac{\partial L}{\partial x} = \gamma s \big(g - \overline{g}
              - \hat x\, \overline{g \hat x}\big) \text{ (training)}, \qquad
              \gamma s\, g \text{ (evaluation)},

    and with example weights, shares :math:`p = w / W` in the cache, :math:`\gamma s \big(g - p
    \sum g - p\, \hat x \sum g \hat x\big)`,

    :math:`\partial L/\partial \gamma = \sum g \odot \hat x`, :math:`\partial L/\partial \beta
    = \sum g`, means and sums over all axes but the last (derived in the module docstring).

    Args:
      params: ``{"gamma", "beta"}``, those of the forward pass.
      cache: from :func:`forward`.
      dy: :math:`g = \partial L / \partial y`, shaped like the input.

    Returns:
      ``(dx, {"gamma": [F], "beta": [F]})``.

    >>> params, state = init(2)
    >>> x = jnp.array([[1.0, 2.0], [3.0, 5.0]])
    >>> y, _, cache = forward(params, state, x, train=True)
    >>> dx, d = vjp(params, cache, jnp.ones_like(y))
    >>> dx.tolist(), d["beta"].tolist()  # shifting every output moves nothing back through the mean
    ([[0.0, 0.0], [0.0, 0.0]], [2.0, 2.0])
    """
    dy = jnp.asarray(dy)
    xhat = cache.xhat
    _checks.same_shape(dy, xhat, "dy", "cache.xhat")
    axes = tuple(range(xhat.ndim - 1))
    d_params = {"gamma": jnp.sum(dy * xhat, axis=axes), "beta": jnp.sum(dy, axis=axes)}
    scale = _bcast(params["gamma"] * cache.inv_std, dy.ndim)
    if not cache.train:
        return scale * dy, d_params
    if cache.shares is not None:
        p = cache.shares[..., None]
        back = jnp.sum(dy, axis=axes, keepdims=True) + xhat * jnp.sum(dy * xhat, axis=axes, keepdims=True)
        return scale * (dy - p * back), d_params
    centred_dy = dy - jnp.mean(dy, axis=axes, keepdims=True)
    return scale * (centred_dy - xhat * jnp.mean(dy * xhat, axis=axes, keepdims=True)), d_params
