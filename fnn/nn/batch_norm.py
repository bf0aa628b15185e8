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

**Backward pass.** With :math:`g_i = \partial L / \partial y_i` and
:math:`s = (\sigma^2 + \epsilon)^{-1/2}`: :math:`\partial L/\partial\gamma = \sum_i g_i \odot
\hat x_i` and :math:`\partial L / \partial \beta = \sum_i g_i`. For the input, per feature,
:math:`\partial \mu / \partial x_i = 1/n` and :math:`\partial s / \partial x_i = -\tfrac12 s^3
\cdot \tfrac2n (x_i - \mu) = -s^2 \hat x_i / n` (using :math:`\sum_j (x_j - \mu) = 0`), so

.. math:: \frac{\partial \hat x_j}{\partial x_i} = s\Big(\delta_{ij} - \frac1n
          - \frac{\hat x_i \hat x_j}{n}\Big), \qquad
          \frac{\partial L}{\partial x_i} = \sum_j \gamma g_j \frac{\partial \hat x_j}{\partial x_i}
          = \gamma s \Big(g_i - \overline{g} - \hat x_i\, \overline{g \hat x}\Big),

with :math:`\overline{\,\cdot\,}` the mean over the batch. In evaluation :math:`\mu` and
:math:`s` are constants and :math:`\partial L/\partial x_i = \gamma s\, g_i`. Both are
:func:`vjp`.

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

__all__ = ["BatchNormState", "BatchNormCache", "init", "apply", "forward", "vjp"]


class BatchNormState(NamedTuple):
    """Running statistics of one batch-normalisation layer.

    Attributes:
      mean: the running mean :math:`\\bar\\mu`, ``[F]``.
      var: the running variance :math:`\\bar\\sigma^2`, ``[F]``.
    """

    mean: Array
    var: Array


@functools.partial(jax.tree_util.register_dataclass, data_fields=["xhat", "inv_std"], meta_fields=["train"])
@dataclasses.dataclass(frozen=True)
class BatchNormCache:
    r"""What :func:`vjp` needs from the forward pass.

    A pytree whose leaves are ``xhat`` and ``inv_std``; ``train`` is static, so a cache passes
    through ``jax.jit`` and ``jax.vmap`` unchanged.

    Attributes:
      xhat: the normalised input :math:`\hat x`, shaped like the input ``[..., F]``.
      inv_std: :math:`s = (\sigma^2 + \epsilon)^{-1/2}`, ``[F]``, from the batch in training and
        from the running variance in evaluation.
      train: whether the batch statistics were used (and so depend on the input).
    """

    xhat: Array
    inv_std: Array
    train: bool


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


def forward(
    params: Params,
    state: BatchNormState,
    x: ArrayLike,
    *,
    train: bool,
    momentum: ArrayLike = 0.9,
    eps: ArrayLike = 1e-5,
) -> tuple[Array, BatchNormState, BatchNormCache]:
    """:func:`apply`, also returning the :class:`BatchNormCache` of :func:`vjp`.

    >>> params, state = init(2)
    >>> y, state, cache = forward(params, state, jnp.array([[0.0, 1.0], [2.0, 3.0]]), train=True)
    >>> cache.xhat.shape, cache.train
    ((2, 2), True)
    """
    x = _checks.float_array(x, "x")
    if not isinstance(train, bool):
        raise TypeError(f"train must be a Python bool (it selects the training or evaluation path), got {train!r:.60}")
    _check(params, state, x)
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
    if train:
        if x.size == 0:
            raise ValueError(f"x must hold at least one example to take batch statistics, got shape {x.shape}")
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
        centred, var, new_state = x - _bcast(state.mean, x.ndim), state.var, given
    inv_std = jax.lax.rsqrt(var + eps)
    xhat = centred * _bcast(inv_std, x.ndim)
    y = _bcast(params["gamma"], x.ndim) * xhat + _bcast(params["beta"], x.ndim)
    return y, new_state, BatchNormCache(xhat, inv_std, train)


def apply(
    params: Params,
    state: BatchNormState,
    x: ArrayLike,
    *,
    train: bool,
    momentum: ArrayLike = 0.9,
    eps: ArrayLike = 1e-5,
) -> tuple[Array, BatchNormState]:
    r"""Normalise ``x`` by batch statistics (training) or running statistics (evaluation).

    .. math:: y = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta

    Args:
      params: ``{"gamma": [F], "beta": [F]}`` from :func:`init`.
      state: the running statistics, a :class:`BatchNormState` of ``[F]`` arrays.
      x: ``[..., F]``; statistics are taken over all axes but the last.
      train: ``True`` for batch statistics (and an updated state), ``False`` for the running ones.
      momentum: :math:`m \in [0, 1)`, the weight of the old running value (PyTorch's 0.1 is 0.9).
      eps: :math:`\epsilon > 0`, added to the variance.

    Returns:
      ``(y, new_state)``: ``y`` shaped like ``x``; in evaluation ``new_state`` is ``state``.

    Raises:
      ValueError: a feature count that does not match, ``momentum`` outside [0, 1), ``eps <= 0``.

    >>> params, state = init(2)
    >>> x = jnp.array([[1.0, 10.0], [3.0, 30.0]])
    >>> y, new_state = apply(params, state, x, train=True)
    >>> [[round(v, 4) for v in row] for row in y.tolist()], [round(v, 4) for v in new_state.mean.tolist()]
    ([[-1.0, -1.0], [1.0, 1.0]], [0.2, 2.0])
    """
    y, new_state, _ = forward(params, state, x, train=train, momentum=momentum, eps=eps)
    return y, new_state


def vjp(params: Params, cache: BatchNormCache, dy: ArrayLike) -> tuple[Array, Params]:
    r"""The backward pass: :math:`\partial L / \partial x` and the gradients of :math:`\gamma, \beta`.

    .. math:: \frac{\partial L}{\partial x} = \gamma s \big(g - \overline{g}
              - \hat x\, \overline{g \hat x}\big) \text{ (training)}, \qquad
              \gamma s\, g \text{ (evaluation)},

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
    centred_dy = dy - jnp.mean(dy, axis=axes, keepdims=True)
    return scale * (centred_dy - xhat * jnp.mean(dy * xhat, axis=axes, keepdims=True)), d_params
