r"""Dropout: zero each unit with probability ``rate`` in training, rescale the survivors.

In training, every entry of the input is kept independently with probability :math:`1 - p`
and the kept entries are scaled by :math:`1 / (1 - p)` ("inverted" dropout),

.. math:: y = x \odot m, \qquad m_i = \frac{\xi_i}{1 - p}, \qquad
          \xi_i \sim \mathrm{Bernoulli}(1 - p),

so :math:`\mathbb E[y] = x` and evaluation is the identity: no rescaling at test time.
**``rate`` is** :math:`p`, **the probability of dropping** a unit, as in Keras, PyTorch and
Flax (``stax.Dropout`` takes the keep probability under the same name, jax#849). The map is
linear in :math:`x` for a fixed mask, so its backward pass is :math:`\partial L/\partial x =
\partial L/\partial y \odot m` (:func:`vjp`).

The mask comes from an explicit PRNG key: the same key gives the same mask, which is what lets
a hand-written backward pass reuse the mask of its forward pass. ``rate`` may be a traced
array (a sweep over rates is one ``jax.vmap``); a traced rate outside :math:`[0, 1)` turns the
output into NaN rather than passing silently (see :mod:`fnn.checking`).

Reference: N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever, R. Salakhutdinov,
*Dropout: A Simple Way to Prevent Neural Networks from Overfitting*, JMLR 15, 2014.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike, PRNGKey

__all__ = ["dropout", "dropout_mask", "vjp", "check_key", "check_train"]

_NO_KEY = "dropout needs a PRNG key in training mode; pass key=... or train=False"


def check_key(key: Any, name: str = "key") -> PRNGKey:
    """``key`` if it is one PRNG key (typed ``jax.random.key``, or a raw ``uint32[2]``), else an error.

    Raises:
      ValueError: ``key`` is ``None`` (dropout in training needs one), or not a single key.

    >>> check_key(None)
    Traceback (most recent call last):
    ...
    ValueError: dropout needs a PRNG key in training mode; pass key=... or train=False
    """
    if key is None:
        raise ValueError(_NO_KEY)
    return _checks.single_key(key, name)


def check_train(train: Any) -> bool:
    """``train`` as a Python bool; it picks a code path, so it cannot be a traced array.

    >>> check_train(True)
    True
    >>> check_train(jnp.array(True))
    Traceback (most recent call last):
    ...
    TypeError: train must be a Python bool (it selects the training or evaluation path), got Array(True, dtype=bool)
    """
    if not isinstance(train, bool):
        raise TypeError(f"train must be a Python bool (it selects the training or evaluation path), got {train!r:.60}")
    return train


def _rate(rate: Any) -> Any:
    """``rate`` validated to lie in [0, 1): a ``ValueError`` when concrete, NaN when traced."""
    return _checks.in_range(rate, "rate", 0.0, 1.0, low_closed=True, hint=" (the probability of dropping a unit)")


def _is_zero(rate: Any) -> bool:
    return _checks.is_concrete(rate) and float(rate) == 0.0


def dropout_mask(key: PRNGKey, shape: tuple[int, ...], rate: ArrayLike, dtype: Any = jnp.float32) -> Array:
    r"""The scaled dropout mask :math:`m = \xi / (1 - p)`, :math:`\xi_i \sim \mathrm{Bernoulli}(1 - p)`.

    Args:
      key: a PRNG key; the same key and shape give the same mask.
      shape: the shape of the input the mask multiplies.
      rate: :math:`p \in [0, 1)`, the probability of dropping; a float or a traced scalar.
      dtype: a floating dtype for the mask.

    Returns:
      Array ``shape`` of ``dtype`` holding 0 or :math:`1/(1-p)`.

    >>> m = dropout_mask(jax.random.key(0), (4, 1000), 0.75)
    >>> sorted(set(m.ravel().tolist())), round(float(m.mean()), 1)
    ([0.0, 4.0], 1.0)
    """
    key = check_key(key)
    if not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
        raise TypeError(f"dtype must be a floating dtype, got {jnp.dtype(dtype)}")
    shape = tuple(int(s) for s in shape)
    rate = _rate(rate)
    keep_prob = 1 - rate
    kept = jax.random.bernoulli(key, keep_prob, shape)
    mask = jnp.where(kept, 1 / keep_prob, 0).astype(dtype)
    # Bernoulli(NaN) draws zeros: put the NaN of a failed traced check back into the mask.
    return mask if _checks.is_concrete(rate) else _checks.poison(mask, ~jnp.isnan(rate))


def dropout(x: ArrayLike, rate: ArrayLike, *, key: PRNGKey | None = None, train: bool = True) -> Array:
    r"""Inverted dropout: :math:`y = x \odot m` in training, :math:`y = x` in evaluation.

    Args:
      x: a float array of any shape.
      rate: :math:`p \in [0, 1)`, the probability of **dropping** each entry; a float or a
        traced scalar.
      key: a PRNG key, required in training unless ``rate`` is exactly 0.
      train: ``True`` to drop, ``False`` for the identity (evaluation).

    Returns:
      Array shaped like ``x``: each entry 0 or :math:`x_i / (1-p)` in training.

    Raises:
      ValueError: ``rate`` outside [0, 1) (concrete), or no ``key`` in training with ``rate > 0``.

    >>> x = jnp.ones((2, 4))
    >>> y = dropout(x, 0.5, key=jax.random.key(0))
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    >>> bool((dropout(x, 0.5, train=False) == x).all())
    True
    """
    x = _checks.float_array(x, "x")
    train = check_train(train)
    rate = _rate(rate)
    if _is_zero(rate):
        return x
    if not train:
        # A valid rate is never NaN; a NaN rate is a failed traced check, and must show.
        return x if _checks.is_concrete(rate) else _checks.poison(x, ~jnp.isnan(rate))
    return x * dropout_mask(check_key(key), x.shape, rate, x.dtype)


def vjp(mask: ArrayLike, dy: ArrayLike) -> Array:
    r"""The backward pass of dropout for the mask of its forward pass: :math:`\partial L/\partial x = dy \odot m`.

    Args:
      mask: from :func:`dropout_mask`, shaped like the input.
      dy: :math:`\partial L / \partial y`, shaped like the input.

    >>> m = dropout_mask(jax.random.key(1), (3,), 0.5)
    >>> bool((vjp(m, jnp.ones(3)) == m).all())
    True
    """
    mask, dy = jnp.asarray(mask), jnp.asarray(dy)
    _checks.same_shape(mask, dy, "mask", "dy")
    return dy * mask
