r"""Shuffling, splitting and standardising data sets, as pure functions.

Fit the standardisation on the training split only (:func:`standardize_fit`) and apply it to
all three splits (:func:`standardize_apply`), so that no statistic of the validation or test
data leaks into training. With ``return_indices=True``, :func:`shuffle` and
:func:`train_val_test_split` also return the position of each example in the data set they were
given, so that predictions on a split can be mapped back to the rows of the user's file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn._types import Array, ArrayLike, PRNGKey
from fnn.data.dataset import Dataset, as_dataset

__all__ = ["shuffle", "Splits", "train_val_test_split", "Standardizer", "standardize_fit", "standardize_apply"]


def _take(dataset: Dataset, index: Array) -> Dataset:
    return Dataset(dataset.x[index], dataset.y[index])


def _check_return_indices(value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"return_indices must be True or False, got {value!r}")


class Splits(NamedTuple):
    """The three parts of :func:`train_val_test_split`; unpacks as ``train, validation, test``.

    Each field holds a :class:`~fnn.data.dataset.Dataset`, or, for the indices that
    ``return_indices=True`` adds, the int32 ``[n_k]`` positions of that part's examples in the
    data set that was split.
    """

    train: Any
    validation: Any
    test: Any


def shuffle(key: PRNGKey, dataset: Dataset, *, return_indices: bool = False) -> Dataset | tuple[Dataset, Array]:
    """The examples of ``dataset`` in a random order (one permutation applied to ``x`` and ``y``).

    Args:
      key: a PRNG key.
      dataset: ``Dataset(x: [N, ...], y: [N, ...])``.
      return_indices: also return the permutation, int32 ``[N]``: example ``i`` of the result is
        example ``index[i]`` of ``dataset``.

    Returns:
      The shuffled Dataset; with ``return_indices``, the pair ``(shuffled, index)``.

    >>> ds = shuffle(jax.random.key(0), Dataset(jnp.arange(4.0)[:, None], jnp.arange(4)))
    >>> bool(jnp.all(ds.x[:, 0] == ds.y))
    True
    """
    key = _checks.single_key(key, "key", needed_by="shuffle")
    _check_return_indices(return_indices)
    dataset = as_dataset(dataset)
    index = jax.random.permutation(key, dataset.x.shape[0]).astype(jnp.int32)
    shuffled = _take(dataset, index)
    return (shuffled, index) if return_indices else shuffled


_SPLITS = ("train", "validation", "test")


def _cuts(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """Boundaries ``[0, b1, b2, n]``: split k gets ``round(n F_k) - round(n F_{k-1})``."""
    return [0, _checks.round_half_up(n * fractions[0]), _checks.round_half_up(n * (fractions[0] + fractions[1])), n]


def train_val_test_split(
    key: PRNGKey,
    dataset: Dataset,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    *,
    stratify: bool = False,
    return_indices: bool = False,
) -> Splits | tuple[Splits, Splits]:
    r"""Shuffle and cut a data set into training, validation and test sets.

    Every example lands in exactly one split. With cumulative fractions
    :math:`F_1 = f_1, F_2 = f_1 + f_2`, the cuts fall at :math:`\operatorname{round}(N F_1)`
    and :math:`\operatorname{round}(N F_2)`, so each size is within one of :math:`f_k N`.

    Without stratification the sizes depend only on N, so the function compiles under
    ``jax.jit`` and maps over keys with ``jax.vmap``. With ``stratify=True`` the cut is made
    within each class (labels ``y: [N]`` integers), so every split keeps each class's
    proportion to within one example; the sizes then depend on the label counts, so the labels
    and the key must be concrete (not under ``jit`` or ``vmap``). Each split is shuffled, so
    classes are mixed within it.

    Args:
      key: a PRNG key.
      dataset: ``Dataset(x: [N, ...], y: [N, ...])``.
      fractions: three positive Python numbers summing to 1 (train, validation, test).
      stratify: keep class proportions.
      return_indices: also return where each example came from: ``index.test[i]`` is the
        position in ``dataset`` (the row of the user's file, for a loaded one) of
        ``test.x[i]``, so ``dataset.x[index.test]`` equals ``test.x``.

    Returns:
      ``Splits(train, validation, test)``, three Datasets; with ``return_indices``, the pair
      ``(splits, index)``, ``index`` a :class:`Splits` of int32 index arrays.

    >>> from fnn.data.synthetic import two_moons
    >>> ds = two_moons(jax.random.key(0), 100)
    >>> [s.x.shape[0] for s in train_val_test_split(jax.random.key(1), ds)]
    [80, 10, 10]
    >>> (train, val, test), index = train_val_test_split(jax.random.key(1), ds, return_indices=True)
    >>> bool(jnp.all(ds.x[index.test] == test.x)), index.validation.shape
    (True, (10,))
    """
    key = _checks.single_key(key, "key", needed_by="train_val_test_split")
    _check_return_indices(return_indices)
    dataset = as_dataset(dataset)
    try:
        fractions = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise TypeError(f"fractions must be three Python numbers, got {fractions!r}") from None
    if len(fractions) != 3:
        raise ValueError(f"fractions must hold three numbers (train, validation, test), got {len(fractions)}")
    if not all(f > 0 for f in fractions):
        raise ValueError(f"fractions must all be positive, got {fractions}")
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fractions} summing to {sum(fractions):g}")
    n = dataset.x.shape[0]
    if not stratify:
        cuts = _cuts(n, fractions)
        for k in range(3):
            if cuts[k + 1] == cuts[k]:
                raise ValueError(f"the {_SPLITS[k]} split would be empty: {n} examples with fractions {fractions}")
        perm = jax.random.permutation(key, n).astype(jnp.int32)
        indices = Splits(*(perm[cuts[k] : cuts[k + 1]] for k in range(3)))
        return _parts(dataset, indices, return_indices)

    y = dataset.y
    if y.ndim != 1 or not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"stratify needs integer class labels y: [N], got dtype {y.dtype} and shape {y.shape}")
    if not _checks.is_concrete(y, key):
        raise ValueError(
            "stratify needs concrete labels and key (split sizes depend on the class counts); call it outside jit and vmap"
        )
    k_perm, k_mix = jax.random.split(key)
    perm = np.asarray(jax.random.permutation(k_perm, n))
    labels = np.asarray(y)[perm]
    order = perm[np.argsort(labels, kind="stable")]  # grouped by class, random within each class
    _, counts = np.unique(labels, return_counts=True)
    parts: list[list[np.ndarray]] = [[], [], []]
    start = 0
    for count in counts:
        group = order[start : start + count]
        start += count
        cuts = _cuts(int(count), fractions)
        for k in range(3):
            parts[k].append(group[cuts[k] : cuts[k + 1]])
    indices = []
    for k, k_key in enumerate(jax.random.split(k_mix, 3)):
        index = np.concatenate(parts[k])
        if index.size == 0:
            raise ValueError(f"the {_SPLITS[k]} split would be empty: {n} examples with fractions {fractions}")
        index = index[np.asarray(jax.random.permutation(k_key, index.size))]
        indices.append(jnp.asarray(index, jnp.int32))
    return _parts(dataset, Splits(*indices), return_indices)


def _parts(dataset: Dataset, indices: Splits, return_indices: bool) -> Splits | tuple[Splits, Splits]:
    splits = Splits(*(_take(dataset, index) for index in indices))
    return (splits, indices) if return_indices else splits


class Standardizer(NamedTuple):
    """Per-feature statistics from :func:`standardize_fit`; unpacks as ``mean, std``."""

    mean: Array
    std: Array


def standardize_fit(x: ArrayLike) -> Standardizer:
    r"""Per-feature mean and standard deviation over the examples (axis 0).

    .. math:: \mu_j = \frac1N \sum_i x_{ij}, \qquad
              s_j = \sqrt{\frac1N \sum_i (x_{ij} - \mu_j)^2}

    A feature that takes one value on every example has no spread to divide by: its
    :math:`\mu_j` is that value exactly and its :math:`s_j` is reported as 1, so
    :func:`standardize_apply` maps it to exactly 0 instead of dividing by zero (or by a
    rounding error, which would blow noise up to order one).

    Args:
      x: ``[N, ...]`` floating examples, N >= 1.

    Returns:
      ``Standardizer(mean, std)``, each of shape ``x.shape[1:]``.

    Reference: Y. LeCun, L. Bottou, G. Orr, K.-R. Müller, *Efficient BackProp*, in Neural
    Networks: Tricks of the Trade, Springer 1998 (inputs of zero mean and unit variance).

    >>> standardize_fit(jnp.array([[0.0, 3.0], [2.0, 3.0]]))
    Standardizer(mean=Array([1., 3.], dtype=float32), std=Array([1., 1.], dtype=float32))
    """
    x = _checks.float_array(x, "x")
    _checks.nonempty_batch(x, "x")
    constant = jnp.all(x == x[:1], axis=0)
    mean = jnp.where(constant, x[0], jnp.mean(x, axis=0))
    std = jnp.where(constant, jnp.ones((), x.dtype), jnp.sqrt(jnp.mean(jnp.square(x - mean[None]), axis=0)))
    return Standardizer(mean, std)


def standardize_apply(x: ArrayLike, mean: ArrayLike, std: ArrayLike, eps: float = 1e-8) -> Array:
    r"""Standardise with given statistics: :math:`(x - \mu) / s`, per feature.

    Features whose :math:`s \le \varepsilon` (statistics from elsewhere than
    :func:`standardize_fit`) are only centred, never divided by (almost) zero.

    Args:
      x: ``[N, ...]`` floating examples.
      mean, std: ``x.shape[1:]``, as returned by :func:`standardize_fit`.
      eps: :math:`\varepsilon > 0`.

    Returns:
      ``[N, ...]``, the dtype of ``x``.

    >>> x = jnp.array([[0.0, 3.0], [2.0, 3.0]])
    >>> standardize_apply(x, *standardize_fit(x))
    Array([[-1.,  0.],
           [ 1.,  0.]], dtype=float32)
    """
    x = _checks.float_array(x, "x")
    eps = _checks.positive_float(eps, "eps")
    if x.ndim < 1:
        raise ValueError(f"x must have shape [N, ...], got shape {x.shape}")
    mean, std = jnp.asarray(mean, x.dtype), jnp.asarray(std, x.dtype)
    for name, a in (("mean", mean), ("std", std)):
        if a.shape != x.shape[1:]:
            raise ValueError(f"{name} must have the shape of one example, {x.shape[1:]}, got {a.shape}")
    return (x - mean[None]) / jnp.where(std > eps, std, jnp.ones((), x.dtype))[None]
