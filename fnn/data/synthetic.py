r"""Synthetic data sets: the logic gates' truth tables and problems drawn from a key.

Every function returns a :class:`~fnn.data.dataset.Dataset` ``(x, y)``. The sets take an
explicit ``key`` and a static example count ``n``. They are pure functions of their arguments,
so the same key gives the same data, and they compile under ``jax.jit(f, static_argnames="n")``
and map over keys with ``jax.vmap``. Shape-setting arguments (``n``, ``classes``, an integer
``centers``, ``features``, ``outlier_fraction``, ``dtype``) must be Python values (static, or
closed over, under ``jit``); the others (``noise``, ``std``, ``factor``, ``slope``, ...) may be
traced arrays, so a sweep over noise levels is one ``vmap``. Their values are checked as
elsewhere in fnn: at once on concrete input; under a transformation, a failed check turns the
floating outputs into NaN.

References: K. Lang, M. Witbrock, *Learning to tell two spirals apart*, Connectionist Models
Summer School, 1988; F. Pedregosa et al., *Scikit-learn: machine learning in Python*, JMLR 12,
2011 (``make_moons``, ``make_circles``, ``make_blobs``).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn._types import Array, ArrayLike, PRNGKey
from fnn.data.dataset import Dataset

__all__ = [
    "TRUTH_TABLES",
    "truth_table",
    "logic_gate",
    "noisy_sine",
    "polynomial",
    "regression_with_outliers",
    "two_moons",
    "circles",
    "spirals",
    "blobs",
]

# ----------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------


def _range(value: Any, name: str, dtype: Any) -> tuple[Array, Array, Any]:
    """A pair ``(low, high)`` given as one argument: finite scalars of ``dtype`` with low < high."""
    try:
        low, high = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    return _checks.interval(low, high, f"{name}[0]", f"{name}[1]", dtype)


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


# logic gates and synthetic sets
# ----------------------------------------------------------------------------------------


# The outputs of each two-input gate on the rows 00, 01, 10, 11.
TRUTH_TABLES: dict[str, tuple[int, int, int, int]] = {
    "and": (0, 0, 0, 1),
    "or": (0, 1, 1, 1),
    "nand": (1, 1, 1, 0),
    "nor": (1, 0, 0, 0),
    "xor": (0, 1, 1, 0),
}


def truth_table(name: str | None = None, dtype: Any = jnp.float32) -> Array | tuple[Array, Array]:
    """The four inputs of a two-input gate, and with a gate name, its outputs too.

    Args:
      name: ``None`` for the inputs alone, or one of the keys of :data:`TRUTH_TABLES`.
      dtype: the dtype of the arrays.

    Returns:
      ``x: [4, 2]`` with rows 00, 01, 10, 11; with ``name``, ``(x, y)`` with ``y: [4]``.

    >>> x, y = truth_table("xor")
    >>> y
    Array([0., 1., 1., 0.], dtype=float32)
    """
    x = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype)
    if name is None:
        return x
    if name not in TRUTH_TABLES:
        raise ValueError(f"unknown gate {name!r}; known gates: {', '.join(sorted(TRUTH_TABLES))}")
    return x, jnp.array(TRUTH_TABLES[name], dtype)


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
    dtype = _checks.float_dtype(dtype)
    x, y = truth_table(name, dtype)
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
    key = _checks.single_key(key, "key", needed_by="noisy_sine")
    n = _checks.positive_int(n, "n")
    dtype = _checks.float_dtype(dtype)
    noise, ok_noise = _checks.nonnegative_scalar(noise, "noise", dtype)
    low, high, ok_range = _range(x_range, "x_range", dtype)
    frequency = _checks.real_scalar(frequency, "frequency", dtype)
    k_x, k_eps = jax.random.split(key)
    x = jax.random.uniform(k_x, (n, 1), dtype, low, high)
    y = jnp.sin(frequency * x) + noise * jax.random.normal(k_eps, (n, 1), dtype)
    return Dataset(*_checks.guard([ok_noise, ok_range], x, y))


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
    key = _checks.single_key(key, "key", needed_by="polynomial")
    n = _checks.positive_int(n, "n")
    dtype = _checks.float_dtype(dtype)
    coefficients = jnp.asarray(coefficients, dtype)
    if coefficients.ndim != 1 or coefficients.shape[0] == 0:
        raise ValueError(f"coefficients must have shape [K] with K >= 1, got shape {coefficients.shape}")
    noise, ok_noise = _checks.nonnegative_scalar(noise, "noise", dtype)
    low, high, ok_range = _range(x_range, "x_range", dtype)
    k_x, k_eps = jax.random.split(key)
    x = jax.random.uniform(k_x, (n, 1), dtype, low, high)
    y = jnp.zeros_like(x)
    for c in coefficients[::-1]:
        y = y * x + c
    y = y + noise * jax.random.normal(k_eps, (n, 1), dtype)
    return Dataset(*_checks.guard([ok_noise, ok_range], x, y))


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
    key = _checks.single_key(key, "key", needed_by="regression_with_outliers")
    n = _checks.positive_int(n, "n")
    dtype = _checks.float_dtype(dtype)
    fraction = _fraction(outlier_fraction, "outlier_fraction")
    slope = _checks.real_scalar(slope, "slope", dtype)
    intercept = _checks.real_scalar(intercept, "intercept", dtype)
    noise, ok_noise = _checks.nonnegative_scalar(noise, "noise", dtype)
    scale, ok_scale = _checks.nonnegative_scalar(outlier_scale, "outlier_scale", dtype)
    low, high, ok_range = _range(x_range, "x_range", dtype)
    k_x, k_eps, k_pick, k_sign, k_u = jax.random.split(key, 5)
    x = jax.random.uniform(k_x, (n, 1), dtype, low, high)
    y = slope * x + intercept + noise * jax.random.normal(k_eps, (n, 1), dtype)
    picked = jax.random.permutation(k_pick, n)[: _checks.round_half_up(fraction * n)]
    mask = jnp.zeros((n, 1), dtype).at[picked].set(1)
    sign = jax.random.rademacher(k_sign, (n, 1), dtype)
    y = y + mask * sign * scale * (1 + jax.random.uniform(k_u, (n, 1), dtype))
    return Dataset(*_checks.guard([ok_noise, ok_scale, ok_range], x, y))


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
    key = _checks.single_key(key, "key", needed_by="two_moons")
    n = _checks.positive_int(n, "n")
    dtype = _checks.float_dtype(dtype)
    noise, ok_noise = _checks.nonnegative_scalar(noise, "noise", dtype)
    k_y, k_t, k_eps = jax.random.split(key, 3)
    y = _balanced_labels(k_y, n, 2)
    t = jax.random.uniform(k_t, (n,), dtype, 0.0, math.pi)
    outer = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    inner = jnp.stack([1 - jnp.cos(t), 0.5 - jnp.sin(t)], axis=1)
    x = jnp.where((y == 0)[:, None], outer, inner) + noise * jax.random.normal(k_eps, (n, 2), dtype)
    return Dataset(*_checks.guard([ok_noise], x, y))


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
    key = _checks.single_key(key, "key", needed_by="circles")
    n = _checks.positive_int(n, "n")
    dtype = _checks.float_dtype(dtype)
    noise, ok_noise = _checks.nonnegative_scalar(noise, "noise", dtype)
    factor = _checks.real_scalar(factor, "factor", dtype)
    ok_factor = _checks.require((factor >= 0) & (factor < 1), f"factor must lie in [0, 1), got {_checks.show(factor)}")
    k_y, k_t, k_eps = jax.random.split(key, 3)
    y = _balanced_labels(k_y, n, 2)
    theta = jax.random.uniform(k_t, (n,), dtype, 0.0, 2 * math.pi)
    r = jnp.where(y == 0, jnp.ones((), dtype), factor)
    x = r[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)
    x = x + noise * jax.random.normal(k_eps, (n, 2), dtype)
    return Dataset(*_checks.guard([ok_noise, ok_factor], x, y))


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
    key = _checks.single_key(key, "key", needed_by="spirals")
    n = _checks.positive_int(n, "n")
    classes = _checks.positive_int(classes, "classes")
    if classes < 2:
        raise ValueError(f"classes must be at least 2, got {classes}")
    dtype = _checks.float_dtype(dtype)
    noise, ok_noise = _checks.nonnegative_scalar(noise, "noise", dtype)
    turns = _checks.real_scalar(turns, "turns", dtype)
    ok_turns = _checks.require(turns > 0, f"turns must be positive, got {_checks.show(turns)}")
    k_y, k_r, k_eps = jax.random.split(key, 3)
    y = _balanced_labels(k_y, n, classes)
    r = jax.random.uniform(k_r, (n,), dtype)
    theta = 2 * math.pi * (turns * r + y.astype(dtype) / classes)
    x = r[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)
    x = x + noise * jax.random.normal(k_eps, (n, 2), dtype)
    return Dataset(*_checks.guard([ok_noise, ok_turns], x, y))


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
    key = _checks.single_key(key, "key", needed_by="blobs")
    n = _checks.positive_int(n, "n")
    dtype = _checks.float_dtype(dtype)
    k_c, k_y, k_eps = jax.random.split(key, 3)
    oks: list[Any] = []
    if isinstance(centers, (int, np.integer)) and not isinstance(centers, bool):
        n_centers = _checks.positive_int(centers, "centers")
        d = 2 if features is None else _checks.positive_int(features, "features")
        low, high, ok_box = _range(center_box, "center_box", dtype)
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
    oks.append(
        _checks.require(
            std >= 0,
            f"std must be non-negative, got {np.asarray(std) if _checks.is_concrete(std) else 'a traced value'}",
        )
    )
    y = _balanced_labels(k_y, n, n_centers)
    s = jnp.broadcast_to(std, (n_centers,))[y][:, None]
    x = mu[y] + s * jax.random.normal(k_eps, (n, d), dtype)
    return Dataset(*_checks.guard(oks, x, y))
