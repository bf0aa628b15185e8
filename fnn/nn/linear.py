r"""Linear regression and logistic regression: the one-layer networks.

A linear model is an MLP with no hidden layer, :math:`\hat y = x W + b`, and its parameters
are the one-layer MLP pytree ``[{"W": [d, K], "b": [K]}]``, so :mod:`fnn.mlp`,
:mod:`fnn.backprop` and training use it unchanged:

* **linear regression**: identity output, loss ``"mse"`` (or ``"gaussian_nll"``: the same
  minimiser, least squares being maximum likelihood under Gaussian noise);
* **logistic regression**, one sigmoid neuron: :math:`p(y = 1 \mid x) = \sigma(x w + b)`,
  trained from the logit :math:`x w + b` with ``"binary_cross_entropy"``, which is the
  negative log-likelihood of a Bernoulli target.

Reference: C. Bishop, *Pattern Recognition and Machine Learning*, Springer 2006, ch. 3-4.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike, Params, PRNGKey
from fnn.nn import mlp as _mlp

__all__ = ["init", "apply", "logistic", "least_squares"]


def init(
    key: PRNGKey, n_inputs: int, n_outputs: int = 1, *, scheme: str = "glorot", dtype: Any = jnp.float32
) -> Params:
    """A one-layer MLP ``[{"W": [n_inputs, n_outputs], "b": [n_outputs]}]``.

    >>> params = init(jax.random.key(0), 3)
    >>> params[0]["W"].shape, params[0]["b"].shape
    ((3, 1), (1,))
    """
    return _mlp.init(key, [n_inputs, n_outputs], scheme=scheme, dtype=dtype)


def _one_layer(params: Params) -> None:
    _mlp.check_params(params)
    if len(params) != 1:
        raise ValueError(f"a linear model has one layer, got params with {len(params)}")


def apply(params: Params, x: ArrayLike) -> Array:
    """The linear output :math:`x W + b`, ``[..., K]``; for logistic regression, the logit.

    >>> params = [{"W": jnp.array([[2.0], [-1.0]]), "b": jnp.array([0.5])}]
    >>> apply(params, jnp.array([[1.0, 1.0]]))
    Array([[1.5]], dtype=float32)
    """
    _one_layer(params)
    return _mlp.apply(params, x, output_activation="identity")


def logistic(params: Params, x: ArrayLike) -> Array:
    r"""Logistic regression's probability :math:`\sigma(x W + b)`, ``[..., K]``.

    >>> params = [{"W": jnp.array([[1.0]]), "b": jnp.array([0.0])}]
    >>> logistic(params, jnp.array([[0.0]]))
    Array([[0.5]], dtype=float32)
    """
    return jax.nn.sigmoid(apply(params, x))


def least_squares(x: ArrayLike, y: ArrayLike, *, ridge: float = 0.0) -> Params:
    r"""The closed-form least-squares (or ridge) solution as linear-model parameters.

    Solves :math:`\min_{W, b} \|x W + b - y\|^2 + \lambda \|W\|^2` by appending a column of
    ones to ``x`` and solving with ``jnp.linalg.lstsq`` (for :math:`\lambda = 0`, the
    minimum-norm solution) or the regularised normal equations (:math:`\lambda > 0`; the
    bias is not penalised).

    Args:
      x: inputs ``[N, d]``.
      y: targets ``[N]`` or ``[N, K]``.
      ridge: :math:`\lambda \ge 0`.

    Returns:
      ``[{"W": [d, K], "b": [K]}]`` (K = 1 for ``y: [N]``).

    >>> x = jnp.array([[0.0], [1.0], [2.0]])
    >>> params = least_squares(x, 3 * x[:, 0] + 1)
    >>> jnp.round(params[0]["W"], 4), jnp.round(params[0]["b"], 4)
    (Array([[3.]], dtype=float32), Array([1.], dtype=float32))
    """
    x = _checks.float_array(x, "x")
    y = jnp.asarray(y, x.dtype)
    if x.ndim != 2:
        raise ValueError(f"x must be [N, d], got shape {x.shape}")
    _checks.nonempty_batch(x, "x")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must be [N] or [N, K] with N = {x.shape[0]}, got shape {y.shape}")
    if ridge < 0:
        raise ValueError(f"ridge must be non-negative, got {ridge}")
    design = jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)
    if ridge == 0:
        theta = jnp.linalg.lstsq(design, y)[0]
    else:
        penalty = jnp.diag(jnp.concatenate([jnp.full((x.shape[1],), ridge, x.dtype), jnp.zeros((1,), x.dtype)]))
        theta = jnp.linalg.solve(design.T @ design + penalty, design.T @ y)
    return [{"W": theta[:-1], "b": theta[-1]}]
