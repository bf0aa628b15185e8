r"""Class names and the integer labels that stand for them.

A classifier works on integer labels :math:`y \in \{0, \dots, C-1\}`; the user's file names the
classes (``"setosa"``, ``"versicolor"``). A :class:`LabelEncoding` is the bijection between the
two, :math:`i \leftrightarrow` ``classes[i]``, so a prediction can be turned back into a name.
:meth:`LabelEncoding.fit` sorts the distinct names, as ``sklearn.preprocessing.LabelEncoder``
does, so the same names always give the same integers whatever their order in the file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn._types import Array

__all__ = ["LabelEncoding"]


def _names(names: Any, arg: str) -> np.ndarray:
    """``names`` as a NumPy array of Python-str cells (any shape), or a ``TypeError`` naming ``arg``."""
    if isinstance(names, str):
        raise TypeError(f"{arg} must be an array or sequence of class names, got the single string {names!r}")
    arr = np.asarray(sorted(names) if isinstance(names, (set, frozenset)) else names, dtype=object)
    bad = [v for v in arr.ravel() if not isinstance(v, (str, np.str_))]
    if bad:
        raise TypeError(f"{arg} must hold strings (class names), got {bad[0]!r} of type {type(bad[0]).__name__}")
    return arr


def _shown(classes: tuple[str, ...], limit: int = 10) -> str:
    head = ", ".join(repr(c) for c in classes[:limit])
    return head + (f", ... ({len(classes)} in all)" if len(classes) > limit else "")


@dataclasses.dataclass(frozen=True)
class LabelEncoding:
    r"""The class names of integer labels: label :math:`i` stands for ``classes[i]``.

    Build one with :meth:`fit` (the sorted distinct names), or directly from the names in the
    order wanted (an ordinal scale, say). :meth:`encode` maps names to int32 labels and
    :meth:`decode` maps labels, predictions for instance, back to names. The loaders return
    one when they read a column of class names (``load_csv(..., return_info=True)``).

    Args:
      classes: the distinct, non-empty class names; their positions are the labels.

    Raises:
      TypeError: a class name is not a string; ValueError: no names, an empty name or a
        repeated one.

    >>> enc = LabelEncoding.fit(["cat", "dog", "cat", "ant"])
    >>> enc.classes
    ('ant', 'cat', 'dog')
    >>> enc.encode(["dog", "ant"])
    Array([2, 0], dtype=int32)
    >>> enc.decode([1, 2])
    array(['cat', 'dog'], dtype='<U3')
    """

    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        names = _names(self.classes, "classes")
        if names.ndim != 1 or names.size == 0:
            raise ValueError(f"classes must be a non-empty sequence of names, got shape {names.shape}")
        classes = tuple(str(c) for c in names)
        if "" in classes:
            raise ValueError(f"classes must not hold an empty name, got {_shown(classes)}")
        seen: set[str] = set()
        for c in classes:
            if c in seen:
                raise ValueError(f"classes holds {c!r} twice; each class needs one name")
            seen.add(c)
        object.__setattr__(self, "classes", classes)

    @classmethod
    def fit(cls, names: Iterable[str]) -> LabelEncoding:
        """The encoding of the distinct ``names``, sorted (as text), so the labels do not depend on their order.

        >>> LabelEncoding.fit(["b", "a", "b"]).classes
        ('a', 'b')
        """
        arr = _names(names if isinstance(names, (str, np.ndarray)) else list(names), "names")
        if arr.size == 0:
            raise ValueError("names must hold at least one class name, got none")
        return cls(tuple(sorted({str(v) for v in arr.ravel()})))

    def encode(self, names: Any) -> Array:
        """The int32 label of each name, same shape as ``names``; a name not in :attr:`classes` is an error.

        >>> LabelEncoding(("low", "mid", "high")).encode([["high"], ["low"]])
        Array([[2],
               [0]], dtype=int32)
        """
        arr = _names(names, "names")
        index = {c: i for i, c in enumerate(self.classes)}
        labels = np.empty(arr.shape, np.int32)
        for pos, name in np.ndenumerate(arr):
            try:
                labels[pos] = index[str(name)]
            except KeyError:
                raise ValueError(
                    f"names holds {str(name)!r}, which is not one of the classes: {_shown(self.classes)}"
                ) from None
        return jnp.asarray(labels)

    def decode(self, labels: Any) -> np.ndarray:
        """The class name of each integer label, same shape as ``labels``, as a NumPy string array.

        Args:
          labels: integer labels in ``0 .. len(classes) - 1``, any shape (``jnp.argmax`` of a
            model's outputs, say). They must be concrete: names do not exist under ``jit``.

        >>> LabelEncoding(("no", "yes")).decode(jnp.array([1, 1, 0]))
        array(['yes', 'yes', 'no'], dtype='<U3')
        """
        if not _checks.is_concrete(labels):
            raise ValueError("labels must be concrete to decode (class names do not exist under jit or vmap)")
        arr = np.asarray(labels)
        if not (np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool):
            raise TypeError(f"labels must be integer class labels, got dtype {arr.dtype}")
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= len(self.classes)):
            bad = int(arr.min()) if int(arr.min()) < 0 else int(arr.max())
            raise ValueError(f"labels must lie in 0..{len(self.classes) - 1} ({len(self.classes)} classes), got {bad}")
        return np.asarray(self.classes)[arr]
