r"""The data set type: examples ``x`` and targets ``y``, checked at the boundary.

A :class:`Dataset` is the pair ``(x, y)``:

* ``x: [N, d]``, floating point (float32 unless ``dtype`` says otherwise), one example per row;
* ``y: [N]`` int32 class labels for classification, or ``y: [N, k]`` floats for regression.

It is a NamedTuple, so it unpacks as ``x, y = dataset`` and is a pytree: ``jax.vmap`` over
keys returns a ``Dataset`` of stacked arrays. :func:`from_arrays` builds one from the user's
own arrays, checked; :func:`as_dataset` accepts a ``Dataset`` or any pair ``(x, y)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn._types import Array, ArrayLike

__all__ = ["Dataset", "as_dataset", "from_arrays"]


class Dataset(NamedTuple):
    """Examples ``x: [N, d]`` (floating) and targets ``y``: ``[N]`` int32 labels or ``[N, k]`` floats."""

    x: Array
    y: Array


def as_dataset(dataset: Any) -> Dataset:
    """A :class:`Dataset` from a ``Dataset`` or a pair ``(x, y)`` whose axis 0 counts the same examples.

    Raises:
      TypeError: ``dataset`` is not a pair; ValueError: ``x`` and ``y`` hold different counts.

    >>> as_dataset((jnp.zeros((3, 2)), jnp.arange(3))).y
    Array([0, 1, 2], dtype=int32)
    """
    try:
        x, y = dataset
    except (TypeError, ValueError):
        raise TypeError(f"dataset must be a Dataset or a pair (x, y), got {type(dataset).__name__}") from None
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"dataset x and y must hold the same number of examples (axis 0), got shapes {x.shape} and {y.shape}"
        )
    return Dataset(x, y)


def _first_bad_row(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0])


def from_arrays(x: ArrayLike, y: ArrayLike, *, dtype: Any = None) -> Dataset:
    """A :class:`Dataset` from arrays the user already has, checked.

    Args:
      x: ``[N, ...]`` floating-point examples (rank 2 or more). Integer ``x`` (raw pixels, say)
        is refused unless ``dtype`` asks for the conversion.
      y: ``[N, ...]`` targets: integer or boolean labels become int32; floats keep their dtype,
        or become ``dtype`` if given.
      dtype: optional floating dtype for ``x`` (and floating ``y``).

    Returns:
      ``Dataset(x, y)`` as JAX arrays. On concrete input, a NaN or infinite value is a
      ``ValueError`` naming the example.

    >>> import numpy as np
    >>> ds = from_arrays(np.ones((3, 2), np.float32), np.array([0, 1, 1]))
    >>> ds.y
    Array([0, 1, 1], dtype=int32)
    >>> from_arrays(np.ones((3, 2), np.float32), np.array([0, 1]))
    Traceback (most recent call last):
    ...
    ValueError: x and y must hold the same number of examples (axis 0), got x shape (3, 2) and y shape (2,)
    """
    x_dtype = None if dtype is None else _checks.float_dtype(dtype)
    x = x if isinstance(x, jax.Array) else np.asarray(x)
    y = y if isinstance(y, jax.Array) else np.asarray(y)
    if x.ndim < 2:
        hint = " (for one feature use x[:, None])" if x.ndim == 1 else ""
        raise ValueError(f"x must have shape [N, d] (rank 2 or more), got shape {x.shape}{hint}")
    if y.ndim < 1:
        raise ValueError(f"y must have shape [N] or [N, k], got shape {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must hold the same number of examples (axis 0), got x shape {x.shape} and y shape {y.shape}"
        )
    if x_dtype is None:
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(
                f"x must be a floating-point array, got dtype {x.dtype} (pass dtype=jnp.float32 to convert)"
            )
    elif not (jnp.issubdtype(x.dtype, jnp.number) or x.dtype == bool):
        raise TypeError(f"x must be numeric, got dtype {x.dtype}")
    if y.dtype == bool or jnp.issubdtype(y.dtype, jnp.integer):
        if _checks.is_concrete(y) and y.size and (int(y.min()) < -(2**31) or int(y.max()) >= 2**31):
            raise ValueError(f"y labels must fit in int32, got values from {int(y.min())} to {int(y.max())}")
        y = jnp.asarray(y).astype(jnp.int32)
    elif jnp.issubdtype(y.dtype, jnp.floating):
        y = jnp.asarray(y) if x_dtype is None else jnp.asarray(y, x_dtype)
    else:
        raise TypeError(f"y must hold integer labels or floating targets, got dtype {y.dtype}")
    x = jnp.asarray(x) if x_dtype is None else jnp.asarray(x, x_dtype)
    for name, a in (("x", x), ("y", y)):
        if _checks.is_concrete(a) and jnp.issubdtype(a.dtype, jnp.floating) and a.size:
            bad = ~np.isfinite(np.asarray(a))
            if bad.any():
                raise ValueError(f"{name} has a NaN or infinite value in example {_first_bad_row(bad)}")
    return Dataset(x, y)
