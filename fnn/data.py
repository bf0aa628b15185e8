r"""Data sets: logic gates, synthetic problems, bundled digits, the user's own files, splits.

Everything returns a :class:`Dataset`, the pair ``(x, y)``:

* ``x: [N, d]``, floating point (float32 unless ``dtype`` says otherwise), one example per row;
* ``y: [N]`` int32 class labels for classification, or ``y: [N, k]`` floats for regression.

A ``Dataset`` is a NamedTuple, so it unpacks as ``x, y = dataset`` and is a pytree:
``jax.vmap`` over keys returns a ``Dataset`` of stacked arrays.

**Synthetic sets** take an explicit ``key`` and a static example count ``n``. They are pure
functions of their arguments, so the same key gives the same data, and they compile under
``jax.jit(f, static_argnames="n")`` and map over keys with ``jax.vmap``. Shape-setting arguments
(``n``, ``classes``, an integer ``centers``, ``features``, ``outlier_fraction``, ``dtype``) must
be Python values (static, or closed over, under ``jit``); the others (``noise``, ``std``, ``factor``, ``slope``, ...) may be traced arrays, so a
sweep over noise levels is one ``vmap``. Their values are checked as elsewhere in fnn (see
:mod:`fnn._checks`): at once on concrete input; under a transformation, a failed check turns
the floating outputs into NaN.

**Files** (:func:`load_csv`, :func:`load_npz`, :func:`load_idx`, :func:`load_mnist`) are read
eagerly with NumPy and checked with errors that name the file and, for CSV, the line.
:func:`load_digits` uses the copy of the UCI digits bundled inside scikit-learn (no download).

**Splits and scaling** (:func:`train_val_test_split`, :func:`shuffle`,
:func:`standardize_fit`, :func:`standardize_apply`) are pure functions too. Fit the
standardisation on the training split only and apply it to all three, so that no statistic of
the validation or test data leaks into training.

References: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, *Gradient-based learning applied to
document recognition*, Proc. IEEE 86(11), 1998 (MNIST and its IDX format); E. Alpaydin,
C. Kaynak, *Optical Recognition of Handwritten Digits*, UCI Machine Learning Repository, 1998;
K. Lang, M. Witbrock, *Learning to tell two spirals apart*, Connectionist Models Summer School,
1988; F. Pedregosa et al., *Scikit-learn: machine learning in Python*, JMLR 12, 2011
(``make_moons``, ``make_circles``, ``make_blobs``).
"""

from __future__ import annotations

import functools
import gzip
import math
import operator
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks, _io
from fnn import perceptron as _perceptron
from fnn._types import Array, ArrayLike, PRNGKey

__all__ = [
    "Dataset",
    "logic_gate",
    "noisy_sine",
    "polynomial",
    "regression_with_outliers",
    "two_moons",
    "circles",
    "spirals",
    "blobs",
    "load_digits",
    "from_arrays",
    "load_npz",
    "load_csv",
    "load_idx",
    "save_idx",
    "load_mnist",
    "shuffle",
    "train_val_test_split",
    "Standardizer",
    "standardize_fit",
    "standardize_apply",
]

PathLike = Union[str, "os.PathLike[str]"]
_INSTALL = 'pip install "fnn[data]"'


class Dataset(NamedTuple):
    """Examples ``x: [N, d]`` (floating) and targets ``y``: ``[N]`` int32 labels or ``[N, k]`` floats."""

    x: Array
    y: Array


# ----------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------


def _key(key: Any, fn: str) -> PRNGKey:
    if key is None:
        raise TypeError(f"{fn} requires a key, for instance jax.random.key(0)")
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{fn} needs a single key, got a key array of shape {key.shape} (use jax.vmap over keys)")
    elif key.dtype != jnp.uint32 or key.shape != (2,):
        raise TypeError(f"key must be a PRNG key from jax.random.key, got dtype {key.dtype} and shape {key.shape}")
    return key


def _float_dtype(dtype: Any) -> np.dtype:
    d = np.dtype(dtype)
    if not jnp.issubdtype(d, jnp.floating):
        raise TypeError(f"dtype must be a floating-point dtype, got {d}")
    return d


def _show(value: Array) -> str:
    return f"{float(value):g}" if _checks.is_concrete(value) else "a traced value"


def _scalar(value: Any, name: str, dtype: Any) -> Array:
    try:
        arr = jnp.asarray(value, dtype)
    except TypeError:
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if arr.ndim:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    return arr


def _nonnegative(value: Any, name: str, dtype: Any) -> tuple[Array, Any]:
    arr = _scalar(value, name, dtype)
    return arr, _checks.require(arr >= 0, f"{name} must be non-negative, got {_show(arr)}")


def _interval(value: Any, name: str, dtype: Any) -> tuple[Array, Array, Any]:
    try:
        low, high = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    low, high = _scalar(low, f"{name}[0]", dtype), _scalar(high, f"{name}[1]", dtype)
    ok = _checks.require(low < high, f"{name} must satisfy low < high, got ({_show(low)}, {_show(high)})")
    return low, high, ok


def _guard(oks: Sequence[Any], *arrays: Array) -> tuple[Array, ...]:
    """Poison the floating ``arrays`` where a traced check failed (concrete failures raised)."""
    pending = [ok for ok in oks if ok is not True]
    if not pending:
        return arrays
    ok = functools.reduce(jnp.logical_and, pending)
    return tuple(_checks.poison(a, ok) if jnp.issubdtype(a.dtype, jnp.floating) else a for a in arrays)


def _balanced_labels(key: PRNGKey, n: int, classes: int) -> Array:
    """``n`` int32 labels in random order, each class ``n // classes`` or one more times."""
    return jax.random.permutation(key, jnp.arange(n, dtype=jnp.int32) % classes)


def _fraction(value: Any, name: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a Python number (it sets a count), got {value!r}") from None
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {f}")
    return f


def _round(v: float) -> int:
    return math.floor(v + 0.5)


# ----------------------------------------------------------------------------------------
# logic gates and synthetic sets
# ----------------------------------------------------------------------------------------


def logic_gate(name: str, dtype: Any = jnp.float32) -> Dataset:
    """The truth table of a two-input gate: ``x: [4, 2]`` rows 00, 01, 10, 11 and labels ``y: [4]``.

    Args:
      name: ``"and"``, ``"or"``, ``"nand"``, ``"nor"`` or ``"xor"``.
      dtype: floating dtype of ``x``; ``y`` is int32. For a binary cross-entropy target
        ``[4, 1]``, use ``y[:, None].astype(x.dtype)``.

    >>> x, y = logic_gate("xor")
    >>> x.shape, y
    ((4, 2), Array([0, 1, 1, 0], dtype=int32))
    """
    dtype = _float_dtype(dtype)
    x, y = _perceptron.truth_table(name, dtype)
    return Dataset(x, y.astype(jnp.int32))


def noisy_sine(
    key: PRNGKey,
    n: int,
    *,
    noise: ArrayLike = 0.1,
    x_range: tuple[ArrayLike, ArrayLike] = (-math.pi, math.pi),
    frequency: ArrayLike = 1.0,
    dtype: Any = jnp.float32,
) -> Dataset:
    r"""A sine wave sampled with Gaussian noise, the standard one-dimensional regression problem.

    .. math:: x_i \sim U(a, b), \qquad y_i = \sin(\omega x_i) + \sigma \varepsilon_i,
              \quad \varepsilon_i \sim N(0, 1)

    Args:
      key: a PRNG key.
      n: the number of examples N, a positive Python int.
      noise: :math:`\sigma \ge 0`, the standard deviation of the noise.
      x_range: :math:`(a, b)` with :math:`a < b`.
      frequency: :math:`\omega`.
      dtype: floating dtype of ``x`` and ``y``.

    Returns:
      ``Dataset(x: [N, 1], y: [N, 1])``.

    >>> x, y = noisy_sine(jax.random.key(0), 5)
    >>> x.shape, y.shape, y.dtype
    ((5, 1), (5, 1), dtype('float32'))
    """
    key = _key(key, "noisy_sine")
    n = _checks.positive_int(n, "n")
    dtype = _float_dtype(dtype)
    noise, ok_noise = _nonnegative(noise, "noise", dtype)
    low, high, ok_range = _interval(x_range, "x_range", dtype)
    frequency = _scalar(frequency, "frequency", dtype)
    k_x, k_eps = jax.random.split(key)
    x = jax.random.uniform(k_x, (n, 1), dtype, low, high)
    y = jnp.sin(frequency * x) + noise * jax.random.normal(k_eps, (n, 1), dtype)
    return Dataset(*_guard([ok_noise, ok_range], x, y))


def polynomial(
    key: PRNGKey,
    n: int,
    coefficients: ArrayLike,
    *,
    noise: ArrayLike = 0.1,
    x_range: tuple[ArrayLike, ArrayLike] = (-1.0, 1.0),
    dtype: Any = jnp.float32,
) -> Dataset:
    r"""A polynomial plus Gaussian noise; coefficients in *increasing* powers.

    .. math:: x_i \sim U(a, b), \qquad y_i = \sum_{j=0}^{K-1} c_j x_i^j + \sigma \varepsilon_i,
              \quad \varepsilon_i \sim N(0, 1)

    evaluated by Horner's rule. The order is that of ``numpy.polynomial.polynomial.polyval``
    (constant first), not of ``numpy.polyval``.

    Args:
      key: a PRNG key.
      n: the number of examples N, a positive Python int.
      coefficients: ``[K]``, :math:`c_0, \dots, c_{K-1}`, K >= 1.
      noise: :math:`\sigma \ge 0`.
      x_range: :math:`(a, b)` with :math:`a < b`.
      dtype: floating dtype of ``x`` and ``y``.

    Returns:
      ``Dataset(x: [N, 1], y: [N, 1])``.

    >>> x, y = polynomial(jax.random.key(0), 4, [1.0, 0.0, 2.0], noise=0.0)   # 1 + 2 x^2
    >>> bool(jnp.allclose(y, 1 + 2 * x ** 2))
    True
    """
    key = _key(key, "polynomial")
    n = _checks.positive_int(n, "n")
    dtype = _float_dtype(dtype)
    coefficients = jnp.asarray(coefficients, dtype)
    if coefficients.ndim != 1 or coefficients.shape[0] == 0:
        raise ValueError(f"coefficients must have shape [K] with K >= 1, got shape {coefficients.shape}")
    noise, ok_noise = _nonnegative(noise, "noise", dtype)
    low, high, ok_range = _interval(x_range, "x_range", dtype)
    k_x, k_eps = jax.random.split(key)
    x = jax.random.uniform(k_x, (n, 1), dtype, low, high)
    y = jnp.zeros_like(x)
    for c in coefficients[::-1]:
        y = y * x + c
    y = y + noise * jax.random.normal(k_eps, (n, 1), dtype)
    return Dataset(*_guard([ok_noise, ok_range], x, y))


def regression_with_outliers(
    key: PRNGKey,
    n: int,
    *,
    slope: ArrayLike = 1.0,
    intercept: ArrayLike = 0.0,
    noise: ArrayLike = 0.1,
    outlier_fraction: float = 0.1,
    outlier_scale: ArrayLike = 5.0,
    x_range: tuple[ArrayLike, ArrayLike] = (-1.0, 1.0),
    dtype: Any = jnp.float32,
) -> Dataset:
    r"""A noisy straight line in which a fixed fraction of the targets are gross outliers.

    .. math:: y_i = \beta x_i + \alpha + \sigma \varepsilon_i + m_i s_i \tau (1 + u_i),
              \qquad x_i \sim U(a, b),\ \varepsilon_i \sim N(0, 1),\ u_i \sim U(0, 1),

    with random signs :math:`s_i = \pm 1` and :math:`m_i = 1` on exactly
    :math:`\operatorname{round}(f N)` examples chosen at random (the outliers), 0 elsewhere.
    An outlier is thus displaced from the line by between :math:`\tau` and :math:`2\tau`
    (plus the ordinary noise), the contamination model of robust statistics: a squared-error
    fit is pulled towards the outliers, an absolute-error (L1) or Huber fit much less.
    When :math:`\tau` is several :math:`\sigma`, the outliers are exactly the examples whose
    residual from the true line exceeds :math:`\tau / 2`.

    Args:
      key: a PRNG key.
      n: the number of examples N, a positive Python int.
      slope: :math:`\beta`.
      intercept: :math:`\alpha`.
      noise: :math:`\sigma \ge 0`.
      outlier_fraction: :math:`f \in [0, 1]`, a Python number (it sets the count).
      outlier_scale: :math:`\tau \ge 0`.
      x_range: :math:`(a, b)` with :math:`a < b`.
      dtype: floating dtype of ``x`` and ``y``.

    Returns:
      ``Dataset(x: [N, 1], y: [N, 1])``.

    Reference: P. Huber, *Robust estimation of a location parameter*, Ann. Math. Statist.
    35(1), 1964.

    >>> x, y = regression_with_outliers(jax.random.key(0), 20, noise=0.0, outlier_fraction=0.25)
    >>> int(jnp.sum(jnp.abs(y - x) > 2.5))
    5
    """
    key = _key(key, "regression_with_outliers")
    n = _checks.positive_int(n, "n")
    dtype = _float_dtype(dtype)
    fraction = _fraction(outlier_fraction, "outlier_fraction")
    slope = _scalar(slope, "slope", dtype)
    intercept = _scalar(intercept, "intercept", dtype)
    noise, ok_noise = _nonnegative(noise, "noise", dtype)
    scale, ok_scale = _nonnegative(outlier_scale, "outlier_scale", dtype)
    low, high, ok_range = _interval(x_range, "x_range", dtype)
    k_x, k_eps, k_pick, k_sign, k_u = jax.random.split(key, 5)
    x = jax.random.uniform(k_x, (n, 1), dtype, low, high)
    y = slope * x + intercept + noise * jax.random.normal(k_eps, (n, 1), dtype)
    picked = jax.random.permutation(k_pick, n)[: _round(fraction * n)]
    mask = jnp.zeros((n, 1), dtype).at[picked].set(1)
    sign = jax.random.rademacher(k_sign, (n, 1), dtype)
    y = y + mask * sign * scale * (1 + jax.random.uniform(k_u, (n, 1), dtype))
    return Dataset(*_guard([ok_noise, ok_scale, ok_range], x, y))


def two_moons(key: PRNGKey, n: int, *, noise: ArrayLike = 0.1, dtype: Any = jnp.float32) -> Dataset:
    r"""Two interleaving half circles, a binary problem no linear model separates.

    .. math:: t_i \sim U(0, \pi), \qquad
              x_i = \begin{cases} (\cos t_i, \sin t_i) & y_i = 0 \\
                                  (1 - \cos t_i, \tfrac12 - \sin t_i) & y_i = 1 \end{cases}
              + \sigma \varepsilon_i, \quad \varepsilon_i \sim N(0, I_2)

    as scikit-learn's ``make_moons``, with angles drawn at random.

    Args:
      key: a PRNG key.
      n: the number of examples N, a positive Python int.
      noise: :math:`\sigma \ge 0`.
      dtype: floating dtype of ``x``.

    Returns:
      ``Dataset(x: [N, 2], y: [N] int32)``, examples in random order, each class
      :math:`\lfloor N/2 \rfloor` or :math:`\lceil N/2 \rceil` times.

    >>> x, y = two_moons(jax.random.key(0), 6)
    >>> x.shape, int(y.sum())
    ((6, 2), 3)
    """
    key = _key(key, "two_moons")
    n = _checks.positive_int(n, "n")
    dtype = _float_dtype(dtype)
    noise, ok_noise = _nonnegative(noise, "noise", dtype)
    k_y, k_t, k_eps = jax.random.split(key, 3)
    y = _balanced_labels(k_y, n, 2)
    t = jax.random.uniform(k_t, (n,), dtype, 0.0, math.pi)
    outer = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    inner = jnp.stack([1 - jnp.cos(t), 0.5 - jnp.sin(t)], axis=1)
    x = jnp.where((y == 0)[:, None], outer, inner) + noise * jax.random.normal(k_eps, (n, 2), dtype)
    return Dataset(*_guard([ok_noise], x, y))


def circles(
    key: PRNGKey, n: int, *, noise: ArrayLike = 0.1, factor: ArrayLike = 0.5, dtype: Any = jnp.float32
) -> Dataset:
    r"""A circle inside a circle: class 0 on radius 1, class 1 on radius ``factor``.

    .. math:: \theta_i \sim U(0, 2\pi), \qquad
              x_i = r_{y_i} (\cos\theta_i, \sin\theta_i) + \sigma \varepsilon_i, \quad
              r_0 = 1,\ r_1 = \text{factor}

    Separable by the feature :math:`\lVert x \rVert`, not by any line in the plane.

    Args:
      key: a PRNG key.
      n: the number of examples N, a positive Python int.
      noise: :math:`\sigma \ge 0`.
      factor: the inner radius, in [0, 1).
      dtype: floating dtype of ``x``.

    Returns:
      ``Dataset(x: [N, 2], y: [N] int32)``, balanced, in random order.

    >>> x, y = circles(jax.random.key(0), 4, noise=0.0)
    >>> jnp.round(jnp.linalg.norm(x, axis=1)[jnp.argsort(y)], 4)
    Array([1. , 1. , 0.5, 0.5], dtype=float32)
    """
    key = _key(key, "circles")
    n = _checks.positive_int(n, "n")
    dtype = _float_dtype(dtype)
    noise, ok_noise = _nonnegative(noise, "noise", dtype)
    factor = _scalar(factor, "factor", dtype)
    ok_factor = _checks.require((factor >= 0) & (factor < 1), f"factor must lie in [0, 1), got {_show(factor)}")
    k_y, k_t, k_eps = jax.random.split(key, 3)
    y = _balanced_labels(k_y, n, 2)
    theta = jax.random.uniform(k_t, (n,), dtype, 0.0, 2 * math.pi)
    r = jnp.where(y == 0, jnp.ones((), dtype), factor)
    x = r[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)
    x = x + noise * jax.random.normal(k_eps, (n, 2), dtype)
    return Dataset(*_guard([ok_noise, ok_factor], x, y))


def spirals(
    key: PRNGKey,
    n: int,
    *,
    classes: int = 2,
    turns: ArrayLike = 1.5,
    noise: ArrayLike = 0.05,
    dtype: Any = jnp.float32,
) -> Dataset:
    r"""Interleaved spiral arms, one per class: the classic hard problem for a small MLP.

    .. math:: r_i \sim U(0, 1), \qquad
              \theta_i = 2\pi \Big(T r_i + \frac{y_i}{C}\Big), \qquad
              x_i = r_i (\cos\theta_i, \sin\theta_i) + \sigma \varepsilon_i

    Each arm winds T times around the origin; arm c is arm 0 rotated by :math:`2\pi c / C`,
    so neighbouring arms are :math:`1 / (T C)` apart along a ray. Keep :math:`\sigma` well
    below that for the classes to stay separable.

    Args:
      key: a PRNG key.
      n: the number of examples N, a positive Python int.
      classes: the number of arms C >= 2, a Python int.
      turns: T > 0.
      noise: :math:`\sigma \ge 0`.
      dtype: floating dtype of ``x``.

    Returns:
      ``Dataset(x: [N, 2], y: [N] int32)``, each class N // C or one more times, random order.

    Reference: K. Lang, M. Witbrock, *Learning to tell two spirals apart*, 1988.

    >>> x, y = spirals(jax.random.key(0), 9, classes=3)
    >>> x.shape, jnp.bincount(y, length=3)
    ((9, 2), Array([3, 3, 3], dtype=int32))
    """
    key = _key(key, "spirals")
    n = _checks.positive_int(n, "n")
    classes = _checks.positive_int(classes, "classes")
    if classes < 2:
        raise ValueError(f"classes must be at least 2, got {classes}")
    dtype = _float_dtype(dtype)
    noise, ok_noise = _nonnegative(noise, "noise", dtype)
    turns = _scalar(turns, "turns", dtype)
    ok_turns = _checks.require(turns > 0, f"turns must be positive, got {_show(turns)}")
    k_y, k_r, k_eps = jax.random.split(key, 3)
    y = _balanced_labels(k_y, n, classes)
    r = jax.random.uniform(k_r, (n,), dtype)
    theta = 2 * math.pi * (turns * r + y.astype(dtype) / classes)
    x = r[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)
    x = x + noise * jax.random.normal(k_eps, (n, 2), dtype)
    return Dataset(*_guard([ok_noise, ok_turns], x, y))


def blobs(
    key: PRNGKey,
    n: int,
    *,
    centers: int | ArrayLike = 3,
    std: ArrayLike = 1.0,
    features: int | None = None,
    center_box: tuple[ArrayLike, ArrayLike] = (-10.0, 10.0),
    dtype: Any = jnp.float32,
) -> Dataset:
    r"""Isotropic Gaussian clusters, one per class.

    .. math:: x_i = \mu_{y_i} + s_{y_i} \varepsilon_i, \qquad \varepsilon_i \sim N(0, I_d)

    Args:
      key: a PRNG key.
      n: the number of examples N, a positive Python int.
      centers: the cluster means :math:`\mu`, ``[C, d]``; or a Python int C, in which case the
        means are drawn uniformly from ``center_box`` in each coordinate.
      std: :math:`s \ge 0`, a scalar or one per cluster ``[C]``.
      features: d when ``centers`` is an int (default 2); when ``centers`` is an array it may be
        left out or must equal its second dimension.
      center_box: the (low, high) box for random centres.
      dtype: floating dtype of ``x``.

    Returns:
      ``Dataset(x: [N, d], y: [N] int32)``, each class N // C or one more times, random order.

    >>> x, y = blobs(jax.random.key(0), 6, centers=jnp.array([[0.0, 0.0], [5.0, 5.0]]), std=0.0)
    >>> x[y == 0][0], x[y == 1][0]
    (Array([0., 0.], dtype=float32), Array([5., 5.], dtype=float32))
    """
    key = _key(key, "blobs")
    n = _checks.positive_int(n, "n")
    dtype = _float_dtype(dtype)
    k_c, k_y, k_eps = jax.random.split(key, 3)
    oks: list[Any] = []
    if isinstance(centers, (int, np.integer)) and not isinstance(centers, bool):
        n_centers = _checks.positive_int(centers, "centers")
        d = 2 if features is None else _checks.positive_int(features, "features")
        low, high, ok_box = _interval(center_box, "center_box", dtype)
        oks.append(ok_box)
        mu = jax.random.uniform(k_c, (n_centers, d), dtype, low, high)
    else:
        mu = jnp.asarray(centers, dtype)
        if mu.ndim != 2 or mu.shape[0] == 0 or mu.shape[1] == 0:
            raise ValueError(f"centers must be an int or an array [C, d] with C, d >= 1, got shape {mu.shape}")
        n_centers, d = mu.shape
        if features is not None and _checks.positive_int(features, "features") != d:
            raise ValueError(f"features is {features} but centers has shape {mu.shape} ({d} features)")
    std = jnp.asarray(std, dtype)
    if std.shape not in ((), (n_centers,)):
        raise ValueError(f"std must be a scalar or have shape [C] = ({n_centers},), got shape {std.shape}")
    oks.append(_checks.require(std >= 0, f"std must be non-negative, got {np.asarray(std) if _checks.is_concrete(std) else 'a traced value'}"))
    y = _balanced_labels(k_y, n, n_centers)
    s = jnp.broadcast_to(std, (n_centers,))[y][:, None]
    x = mu[y] + s * jax.random.normal(k_eps, (n, d), dtype)
    return Dataset(*_guard(oks, x, y))


# ----------------------------------------------------------------------------------------
# bundled data and the user's own arrays and files
# ----------------------------------------------------------------------------------------


def load_digits(dtype: Any = jnp.float32) -> Dataset:
    r"""The 1797 handwritten digits, 8x8 pixels, shipped inside scikit-learn (no download).

    Each pixel counts the set pixels in a 4x4 block of a 32x32 bitmap, an integer 0..16;
    it is divided by 16, so :math:`x \in [0, 1]`. Images are flattened row by row.

    Args:
      dtype: floating dtype of ``x``.

    Returns:
      ``Dataset(x: [1797, 64], y: [1797] int32)`` with labels 0..9, about 180 of each.

    Raises:
      ImportError: scikit-learn is not installed (``pip install "fnn[data]"``).

    Reference: E. Alpaydin, C. Kaynak, *Optical Recognition of Handwritten Digits*, UCI
    Machine Learning Repository, 1998 (scikit-learn bundles its test set).

    >>> x, y = load_digits()
    >>> x.shape, y.shape, float(x.max())
    ((1797, 64), (1797,), 1.0)
    """
    dtype = _float_dtype(dtype)
    try:
        from sklearn import datasets as _sk_datasets
    except ImportError as e:
        raise ImportError(f"load_digits needs scikit-learn, which is not installed: {_INSTALL}") from e
    bunch = _sk_datasets.load_digits()
    x = np.asarray(bunch.data, np.float64) / 16.0
    return Dataset(jnp.asarray(x.astype(dtype)), jnp.asarray(bunch.target, jnp.int32))


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
    x_dtype = None if dtype is None else _float_dtype(dtype)
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
            raise TypeError(f"x must be a floating-point array, got dtype {x.dtype} (pass dtype=jnp.float32 to convert)")
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


def load_npz(path: PathLike, x_key: str = "x", y_key: str = "y", *, dtype: Any = None) -> Dataset:
    """A :class:`Dataset` from two arrays of a ``.npz`` file (as written by ``numpy.savez``).

    Args:
      path: the file. Pickled object arrays are refused.
      x_key, y_key: the names of the arrays in the file.
      dtype: as in :func:`from_arrays`.

    Returns:
      ``from_arrays(file[x_key], file[y_key], dtype=dtype)``.

    >>> import numpy as np, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "toy.npz"
    ...     np.savez(p, inputs=np.zeros((2, 3), np.float32), labels=np.array([0, 1]))
    ...     load_npz(p, "inputs", "labels").x.shape
    (2, 3)
    """
    with np.load(path, allow_pickle=False) as f:
        for arg, key in (("x_key", x_key), ("y_key", y_key)):
            if key not in f.files:
                raise ValueError(f"{path} has no array {key!r} ({arg}); it holds: {', '.join(f.files) or 'nothing'}")
        x, y = f[x_key], f[y_key]
    return from_arrays(x, y, dtype=dtype)


def _split_line(line: str, delimiter: str | None) -> list[str]:
    return line.split(delimiter) if delimiter is not None else line.split()


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def load_csv(
    path: PathLike,
    *,
    target_columns: int | Sequence[int] = -1,
    delimiter: str | None = ",",
    skip_header: bool | None = None,
    label_dtype: Any = None,
    dtype: Any = jnp.float32,
    comments: str = "#",
) -> Dataset:
    """A :class:`Dataset` from a delimited text file of numbers, one example per line.

    Blank lines and lines starting with ``comments`` are ignored. The remaining cells are
    parsed by ``numpy.loadtxt``; when that fails, the file is scanned again to report the first
    line whose column count differs from the first data line, or the first cell that is not a
    number, by its line number in the file (counting from 1).

    Args:
      path: the file.
      target_columns: the column index of the target, or a sequence of indices (negative
        indices count from the end); all other columns form ``x``.
      delimiter: the cell separator; ``None`` splits on runs of whitespace.
      skip_header: whether the first non-blank line is a header; ``None`` decides by
        whether any of its cells is not a number.
      label_dtype: ``None`` keeps the targets as floats ``y: [N, k]`` (regression, k the
        number of target columns). An integer dtype (``jnp.int32``) reads one target column
        as class labels ``y: [N]`` int32; a value that is not a whole number is an error.
      dtype: floating dtype of ``x`` (and of float ``y``).
      comments: the prefix of comment lines.

    Returns:
      ``Dataset(x: [N, d], y)``.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "toy.csv"
    ...     _ = p.write_text("a,b,label\\n0.5,1.5,0\\n2.0,3.0,1\\n")
    ...     x, y = load_csv(p, label_dtype=jnp.int32)
    >>> x, y
    (Array([[0.5, 1.5],
           [2. , 3. ]], dtype=float32), Array([0, 1], dtype=int32))
    """
    dtype = _float_dtype(dtype)
    if label_dtype is not None and not jnp.issubdtype(np.dtype(label_dtype), jnp.integer):
        raise TypeError(f"label_dtype must be None (float targets) or an integer dtype, got {np.dtype(label_dtype)}")
    if delimiter is not None and (not isinstance(delimiter, str) or not delimiter or delimiter.strip() != delimiter):
        raise ValueError(f"delimiter must be a non-empty string without surrounding whitespace or None, got {delimiter!r}")
    text = Path(path).read_text()
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines())
             if line.strip() and not line.lstrip().startswith(comments)]
    if not lines:
        raise ValueError(f"{path} holds no data lines")
    if skip_header is None:
        skip_header = not all(_is_number(c) for c in _split_line(lines[0][1], delimiter))
    if skip_header:
        lines = lines[1:]
        if not lines:
            raise ValueError(f"{path} holds a header but no data lines")
    try:
        data = np.loadtxt([line for _, line in lines], dtype=np.float64, delimiter=delimiter, ndmin=2, comments=None)
    except ValueError:
        width = len(_split_line(lines[0][1], delimiter))
        first = lines[0][0]
        for number, line in lines:
            cells = _split_line(line, delimiter)
            if len(cells) != width:
                raise ValueError(
                    f"{path}, line {number}: {len(cells)} columns, expected {width} as on line {first} (ragged rows)"
                ) from None
            for column, cell in enumerate(cells):
                if not _is_number(cell):
                    raise ValueError(
                        f"{path}, line {number}, column {column + 1}: {cell.strip()!r} is not a number"
                    ) from None
        raise
    numbers = [number for number, _ in lines]
    width = data.shape[1]
    targets = [target_columns] if isinstance(target_columns, (int, np.integer)) else list(target_columns)
    if not targets:
        raise ValueError("target_columns must name at least one column")
    resolved = []
    for t in targets:
        t = _index(t, "target_columns")
        if not -width <= t < width:
            raise ValueError(f"target_columns holds {t}, but {path} has {width} columns")
        resolved.append(t % width)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"target_columns names a column twice: {targets}")
    features = [c for c in range(width) if c not in resolved]
    if not features:
        raise ValueError(f"target_columns {targets} leaves no feature columns in {path}")
    bad = ~np.isfinite(data)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise ValueError(f"{path}, line {numbers[row]}, column {column + 1}: NaN or infinite value")
    x, y = data[:, features], data[:, resolved]
    if label_dtype is not None:
        if len(resolved) != 1:
            raise ValueError(f"class labels need one target column, got target_columns {targets}")
        y = y[:, 0]
        fractional = y != np.round(y)
        if fractional.any():
            row = int(np.flatnonzero(fractional)[0])
            raise ValueError(
                f"{path}, line {numbers[row]}: label {y[row]:g} is not a whole number (label_dtype={np.dtype(label_dtype)})"
            )
        y = y.astype(np.int64)
    return from_arrays(x, y, dtype=dtype)


def _index(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must hold integers, got the bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must hold integers, got {value!r}") from None


# IDX type codes (LeCun's MNIST page): the data that follow the dims are big-endian.
_IDX_TYPES: dict[int, tuple[np.dtype, str]] = {
    0x08: (np.dtype(">u1"), "unsigned byte"),
    0x09: (np.dtype(">i1"), "signed byte"),
    0x0B: (np.dtype(">i2"), "short"),
    0x0C: (np.dtype(">i4"), "int"),
    0x0D: (np.dtype(">f4"), "float"),
    0x0E: (np.dtype(">f8"), "double"),
}
_IDX_KNOWN = ", ".join(f"0x{c:02X} ({name})" for c, (_, name) in _IDX_TYPES.items())


def load_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    Layout: a 4-byte magic number (two zero bytes, a type code, the number of dimensions
    ``ndim``), then ``ndim`` big-endian 32-bit sizes, then the values, big-endian, in C order.
    Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
    A gzipped file is recognised by its first two bytes ``1f 8b``, whatever its name.

    Args:
      path: the file.

    Returns:
      A NumPy array of the dims and type the header declares, in native byte order (NumPy
      rather than JAX, so a float64 file stays float64 whatever JAX's precision).

    Raises:
      ValueError: naming ``path``, for a bad magic number, an unknown type code, or a file
        whose length does not match its dims (expected and actual bytes).

    >>> import numpy as np, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_idx(pathlib.Path(d) / "a.idx.gz", np.arange(6, dtype=np.uint8).reshape(2, 3))
    ...     load_idx(p)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    raw = Path(path).read_bytes()
    gzipped = raw[:2] == b"\x1f\x8b"
    if gzipped:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: starts with the gzip bytes 1f 8b but does not decompress ({e})") from None
    where = f"{path}" + (" (after gunzip)" if gzipped else "")
    if len(raw) < 4:
        raise ValueError(f"{where}: {len(raw)} bytes is too short for the 4-byte IDX magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{where}: not an IDX file: the magic number must start with two zero bytes, got {raw[:4].hex(' ')}")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{where}: unknown IDX type code 0x{code:02X}; known codes: {_IDX_KNOWN}")
    dtype, type_name = _IDX_TYPES[code]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{where}: truncated header: expected {header} bytes for {ndim} dims, got {len(raw)} bytes")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    count = math.prod(dims)
    expected = header + count * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "trailing bytes"
        raise ValueError(
            f"{where}: expected {expected} bytes ({header}-byte header + {count} {type_name} values of "
            f"{dtype.itemsize} bytes for dims {dims}), got {len(raw)} bytes ({what})"
        )
    data = np.frombuffer(raw, dtype, count, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def save_idx(path: PathLike, array: ArrayLike, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file, atomically (see :func:`fnn._io.atomic_write_bytes`).

    Args:
      path: the target file.
      array: a NumPy or JAX array of dtype uint8, int8, int16, int32, float32 or float64, with
        at most 255 dims, each below 2**31.
      compress: gzip the file; ``None`` gzips when the name ends in ``.gz``. The gzip header
        carries no timestamp, so equal arrays give equal files.

    Returns:
      ``path`` as a :class:`pathlib.Path`. :func:`load_idx` reads it back exactly.
    """
    arr = np.asarray(array)
    code = next((c for c, (d, _) in _IDX_TYPES.items() if d.newbyteorder("=") == arr.dtype), None)
    if code is None:
        raise TypeError(
            f"array dtype {arr.dtype} has no IDX type code; use uint8, int8, int16, int32, float32 or float64"
        )
    if arr.ndim > 255:
        raise ValueError(f"IDX holds at most 255 dims, got {arr.ndim}")
    if any(s >= 2**31 for s in arr.shape):
        raise ValueError(f"IDX dims must be below 2**31, got shape {arr.shape}")
    body = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body += np.ascontiguousarray(arr, _IDX_TYPES[code][0]).tobytes()
    if compress is None:
        compress = str(path).endswith(".gz")
    if compress:
        body = gzip.compress(body, mtime=0)
    return _io.atomic_write_bytes(path, body)


def _mnist_file(directory: Path, split: str, kind: str, idx: int) -> Path:
    names = [f"{split}-{kind}-idx{idx}-ubyte", f"{split}-{kind}.idx{idx}-ubyte"]
    tried = [directory / (name + suffix) for name in names for suffix in ("", ".gz")]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no MNIST {kind} file for split {split!r}; looked for {', '.join(str(p) for p in tried)}")


def load_mnist(directory: PathLike, split: str = "train", *, dtype: Any = jnp.float32) -> Dataset:
    """MNIST (or Fashion-MNIST, same format) from IDX files the user has already downloaded.

    Looks in ``directory`` for ``{split}-images-idx3-ubyte`` and ``{split}-labels-idx1-ubyte``,
    each optionally ending in ``.gz`` (the spelling ``{split}-images.idx3-ubyte`` is accepted
    too). Pixels, 0..255, are divided by 255 and images flattened row by row.

    Args:
      directory: the folder holding the files.
      split: ``"train"`` (60000 examples) or ``"t10k"`` (10000).
      dtype: floating dtype of ``x``.

    Returns:
      ``Dataset(x: [N, H*W] in [0, 1], y: [N] int32 in 0..9)``.
    """
    if split not in ("train", "t10k"):
        raise ValueError(f"split must be 'train' or 't10k', got {split!r}")
    dtype = _float_dtype(dtype)
    directory = Path(directory)
    images_path = _mnist_file(directory, split, "images", 3)
    labels_path = _mnist_file(directory, split, "labels", 1)
    images, labels = load_idx(images_path), load_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{images_path}: expected uint8 images [N, H, W], got {images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected uint8 labels [N], got {labels.dtype} of shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be 0..9, found {int(labels.max())}")
    x = (images.reshape(images.shape[0], -1) / 255.0).astype(dtype)
    return Dataset(jnp.asarray(x), jnp.asarray(labels, jnp.int32))


# ----------------------------------------------------------------------------------------
# shuffling, splitting, standardising
# ----------------------------------------------------------------------------------------


def _dataset(dataset: Any) -> Dataset:
    try:
        x, y = dataset
    except (TypeError, ValueError):
        raise TypeError(f"dataset must be a Dataset or a pair (x, y), got {type(dataset).__name__}") from None
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"dataset x and y must hold the same number of examples (axis 0), got shapes {x.shape} and {y.shape}")
    return Dataset(x, y)


def _take(dataset: Dataset, index: Array) -> Dataset:
    return Dataset(dataset.x[index], dataset.y[index])


def shuffle(key: PRNGKey, dataset: Dataset) -> Dataset:
    """The examples of ``dataset`` in a random order (one permutation applied to ``x`` and ``y``).

    >>> ds = shuffle(jax.random.key(0), Dataset(jnp.arange(4.0)[:, None], jnp.arange(4)))
    >>> bool(jnp.all(ds.x[:, 0] == ds.y))
    True
    """
    key = _key(key, "shuffle")
    dataset = _dataset(dataset)
    return _take(dataset, jax.random.permutation(key, dataset.x.shape[0]))


_SPLITS = ("train", "validation", "test")


def _cuts(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """Boundaries ``[0, b1, b2, n]``: split k gets ``round(n F_k) - round(n F_{k-1})``."""
    return [0, _round(n * fractions[0]), _round(n * (fractions[0] + fractions[1])), n]


def train_val_test_split(
    key: PRNGKey,
    dataset: Dataset,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    *,
    stratify: bool = False,
) -> tuple[Dataset, Dataset, Dataset]:
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

    Returns:
      ``(train, validation, test)``, three Datasets.

    >>> ds = two_moons(jax.random.key(0), 100)
    >>> [s.x.shape[0] for s in train_val_test_split(jax.random.key(1), ds)]
    [80, 10, 10]
    """
    key = _key(key, "train_val_test_split")
    dataset = _dataset(dataset)
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
        perm = jax.random.permutation(key, n)
        return tuple(_take(dataset, perm[cuts[k] : cuts[k + 1]]) for k in range(3))  # type: ignore[return-value]

    y = dataset.y
    if y.ndim != 1 or not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"stratify needs integer class labels y: [N], got dtype {y.dtype} and shape {y.shape}")
    if not _checks.is_concrete(y, key):
        raise ValueError("stratify needs concrete labels and key (split sizes depend on the class counts); call it outside jit and vmap")
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
    splits = []
    for k, k_key in enumerate(jax.random.split(k_mix, 3)):
        index = np.concatenate(parts[k])
        if index.size == 0:
            raise ValueError(f"the {_SPLITS[k]} split would be empty: {n} examples with fractions {fractions}")
        index = index[np.asarray(jax.random.permutation(k_key, index.size))]
        splits.append(_take(dataset, jnp.asarray(index)))
    return tuple(splits)  # type: ignore[return-value]


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
