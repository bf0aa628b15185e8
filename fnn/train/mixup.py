r"""Mixup: train on convex combinations of pairs of examples and of their labels.

For a batch :math:`(x_i, y_i)_{i=1}^B` with labels as probability vectors (one-hot for hard
labels), draw one :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)` and a permutation
:math:`\pi` of the batch, and train on

.. math:: \tilde x_i = \lambda x_i + (1-\lambda) x_{\pi(i)}, \qquad
          \tilde y_i = \lambda y_i + (1-\lambda) y_{\pi(i)}.

Each mixed label is a convex combination of probability vectors, so it still sums to one, and
soft-label cross-entropy (:func:`fnn.losses.cross_entropy` with float labels) trains on it.
:math:`\alpha \to 0` puts all of Beta's mass at 0 and 1, i.e. no mixing; here ``alpha = 0`` is
exactly the identity. Mixup is a data-dependent regulariser: it asks the network to behave
linearly between training examples (vicinal risk minimisation).

``alpha`` may be a traced array (a sweep over it is one ``jax.vmap``); a negative concrete
``alpha`` is a ``ValueError``, a negative traced one turns the batch into NaN (and reports
through :func:`fnn.checking.checked`).

Reference: H. Zhang, M. Cisse, Y. Dauphin, D. Lopez-Paz, *mixup: Beyond Empirical Risk
Minimization*, ICLR 2018.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike, PRNGKey
from fnn.nn import activations as _activations

__all__ = ["mixup", "soft_labels"]


def soft_labels(y: ArrayLike, num_classes: int | None, dtype: Any) -> Array:
    """Labels as probability rows: integer labels ``[B]`` one-hot encoded, float targets as they are.

    Args:
      y: integer class labels ``[B]``, or float targets ``[B, ...]`` (probability rows,
        binary targets ``[B, 1]`` in [0, 1], or regression targets, which mix the same way).
      num_classes: the number of classes, needed for integer labels.
      dtype: the floating dtype of the result.

    >>> soft_labels(jnp.array([2, 0]), 3, jnp.float32).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    y = jnp.asarray(y)
    if jnp.issubdtype(y.dtype, jnp.integer):
        if num_classes is None:
            raise ValueError("integer labels need num_classes to be one-hot encoded for mixing")
        _checks.ndim_in(y, "y (integer labels)", (1,))
        return _activations.one_hot(y, _checks.positive_int(num_classes, "num_classes"), dtype=dtype)
    return _checks.float_array(y, "y").astype(dtype)


def mixup(
    key: PRNGKey, x: ArrayLike, y: ArrayLike, alpha: ArrayLike, *, num_classes: int | None = None
) -> tuple[Array, Array]:
    r"""Mix a batch with a shuffled copy of itself by :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)`.

    Args:
      key: a PRNG key, for :math:`\lambda` and the pairing.
      x: inputs ``[B, ...]``, floating.
      y: integer labels ``[B]`` (then ``num_classes`` is needed) or float targets ``[B, ...]``.
      alpha: :math:`\alpha \ge 0`; 0 returns the batch unchanged (labels one-hot encoded).
      num_classes: the number of classes, for integer labels.

    Returns:
      ``(x_mixed [B, ...], y_mixed [B, ...])``; ``y_mixed`` is floating, ``[B, num_classes]``
      for integer labels.

    >>> x, y = jnp.eye(4), jnp.array([0, 1, 2, 0])
    >>> xm, ym = mixup(jax.random.key(0), x, y, 0.4, num_classes=3)
    >>> xm.shape, ym.shape, bool(jnp.allclose(ym.sum(axis=1), 1.0))
    ((4, 4), (4, 3), True)
    >>> bool(jnp.array_equal(mixup(jax.random.key(0), x, y, 0.0, num_classes=3)[0], x))
    True
    """
    x = _checks.float_array(x, "x")
    _checks.nonempty_batch(x, "x")
    y = soft_labels(y, num_classes, x.dtype)
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"x and y must share their first axis, got shapes {x.shape} and {y.shape}")
    alpha = _checks.in_range(alpha, "alpha", 0.0, math.inf, low_closed=True)
    k_lambda, k_pair = jax.random.split(key)
    alpha = jnp.asarray(alpha, x.dtype)
    mixing = alpha > 0
    # Beta(0, 0) is undefined: draw from Beta(1, 1) there and discard it.
    lam = jax.random.beta(k_lambda, jnp.where(mixing, alpha, 1), jnp.where(mixing, alpha, 1), dtype=x.dtype)
    # alpha = 0 is the identity; a NaN alpha (a failed traced check) must poison the batch.
    lam = jnp.where(mixing, lam, jnp.where(alpha == 0, jnp.ones((), x.dtype), jnp.full((), jnp.nan, x.dtype)))
    pair = jax.random.permutation(k_pair, x.shape[0])
    return lam * x + (1 - lam) * x[pair], lam * y + (1 - lam) * y[pair]
