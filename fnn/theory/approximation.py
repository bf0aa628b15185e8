r"""The universal approximation theorem, made constructive: networks built by hand, with error bounds.

A steep sigmoid is a step. For :math:`w > 0`,

.. math:: \sup_{|x - b| \ge m} \big|\sigma(w(x - b)) - H(x - b)\big| = \sigma(-w m),

attained at :math:`|x - b| = m`, since :math:`1 - \sigma(t) = \sigma(-t)` and :math:`\sigma` is
monotone; so :math:`w = \operatorname{logit}(1 - \varepsilon) / m` makes the error
:math:`\varepsilon` outside the margin :math:`m`. Two steps make a bump,
:math:`h\,\sigma(w(x - a)) - h\,\sigma(w(x - b)) \approx h\,\mathbb 1[a \le x < b]`: a 1-2-1
network. Sums of bumps are step functions, and step functions approximate any continuous
function on an interval (Cybenko 1989; Nielsen, ch. 4).

**Sigmoid construction** (:func:`sigmoid_network`). Cut :math:`[lo, hi]` into :math:`n` bins of
width :math:`\delta = (hi - lo)/n`, with edges :math:`e_i = lo + i\delta` and midpoints
:math:`m_i = lo + (i + \tfrac12)\delta`. The network has one bump per bin, of height
:math:`f(m_i) - c`, and the output bias :math:`c = f(\tfrac{lo + hi}2)`; the two outer edges are
pushed half a bin out, :math:`e_0 = lo - \delta/2`, :math:`e_n = hi + \delta/2`, so that no
sigmoid sits at its midpoint value :math:`\tfrac12` on the ends of the interval. Bound: write
:math:`\sigma(w t) = P(Y \le t)` with :math:`Y` logistic of scale :math:`1/w`. The bumps
telescope into probabilities,

.. math:: g(x) = c + \sum_i p_i(x)\,(f(m_i) - c), \qquad
          p_i(x) = \sigma(w(x - e_i)) - \sigma(w(x - e_{i+1})) = P(x - Y \in [e_i, e_{i+1})),

so :math:`g(x)` is the mean of :math:`f(m_{\text{bin}})` over the bin of :math:`x - Y`, and of
:math:`c` when :math:`x - Y` leaves :math:`[e_0, e_n)`. Inside, the bin of :math:`x - Y` is the
bin of its clamp to :math:`[lo, hi]`, whose midpoint lies within :math:`\delta/2` of it, and
clamping moves it no further from :math:`x`; so for :math:`f` :math:`L`-Lipschitz on
:math:`[lo, hi]`, :math:`|f(m_{\text{bin}}) - f(x)| \le L(\delta/2 + |Y|)`, and outside,
:math:`|c - f(x)| \le L(hi - lo)/2`. With :math:`E|Y| = 2\ln 2 / w`:

.. math:: \sup_{[lo, hi]} |g - f| \le L\Big(\frac\delta2 + \frac{2 \ln 2}{w}
          + \frac{hi - lo}{2}\big[\sigma(-w\delta/2) + \sigma(-w(hi - lo + \delta/2))\big]\Big)

(:func:`sigmoid_bound`). It holds at the bin edges too, where two neighbouring sigmoids are at
:math:`\tfrac12`: the network then averages two heights, each within :math:`L\delta/2`. The
default :math:`w = 16 n^2 / (hi - lo)` (:func:`sigmoid_weight`) makes the smoothing term
:math:`(\ln 2/4)/n` of the discretisation term :math:`\delta/2` and the last term
:math:`O(e^{-8n})`, so the error falls as :math:`O(1/n)`. The step form
(:func:`sigmoid_steps_network`) telescopes the same staircase into :math:`n - 1` steps at the
interior edges with heights :math:`f(m_i) - f(m_{i-1})` and output bias :math:`f(m_0)`; the same
argument with bins :math:`(-\infty, e_1), \dots, [e_{n-1}, \infty)` gives
:math:`L(\delta/2 + 2\ln 2/w)`.

**ReLU construction** (:func:`relu_network`). The piecewise-linear interpolant of :math:`f` at
the knots :math:`x_i = lo + i\delta`, :math:`i = 0, \dots, n`, with slopes :math:`s_i`, is

.. math:: g(x) = f(x_0) + s_0\,\mathrm{relu}(x - x_0) + \sum_{i=1}^{n-1} (s_i - s_{i-1})\,
          \mathrm{relu}(x - x_i),

a 1-n-1 ReLU network, exact at the knots. Its error is at most :math:`\delta^2 \max|f''| / 8`
for :math:`f \in C^2`, and :math:`L\delta/2` for :math:`f` :math:`L`-Lipschitz
(:func:`relu_bound`): :math:`O(1/n^2)` against the sigmoid staircase's :math:`O(1/n)`.

**Two dimensions.** Steps in :math:`x_1` alone make a *ridge* (:func:`ridge_params`), a bump
along :math:`x_1` that is constant along :math:`x_2`: not localised. Two ridges summed and passed
through a second steep sigmoid, :math:`\sigma(w'(r_1 + r_2 - \tfrac32))`, make a *tower* over
a box (:func:`tower_params`), near 0 away from it (:func:`leakage`). :func:`tower_network` sums
:math:`n \times n` of them, a two-hidden-layer network. Plain towers with heights :math:`f` at
the cell centres (``form="towers"``) are right inside the cells and on their sides, but at a
cell corner both ridges are at :math:`\tfrac12`, every tower there is off, and the output drops
towards :math:`c`: a failure window whose depth does not shrink with :math:`n`. The telescoped
form (``form="telescoped"``, the default) keeps one column per cell, ANDed with a step at the
cell's lower :math:`x_2` edge, with heights the increments of :math:`f` along :math:`x_2`; at a
corner only the increment of one row goes missing, so the error stays :math:`O(1/n)`.

Every network here is an ordinary :mod:`fnn.mlp` parameter list (``{"W": [in, out], "b": [out]}``
per layer) with one hidden activation and an identity output: evaluate it with
:func:`approximate`, or ``fnn.mlp.apply(params, x, **SIGMOID_NETWORK)`` (``**RELU_NETWORK``).
``n`` is static; everything else (``lo``, ``hi``, ``w``, what ``f`` closes over) may be traced, so
a family of targets is one ``jax.vmap``. Invalid traced values turn the result into NaN.

References: G. Cybenko, *Approximation by superpositions of a sigmoidal function*, Math.
Control Signals Systems 2, 1989; K. Hornik, M. Stinchcombe, H. White, *Multilayer feedforward
networks are universal approximators*, Neural Networks 2, 1989; M. Nielsen, *Neural Networks
and Deep Learning*, ch. 4, 2015.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fnn import _checks
from fnn._types import Array, ArrayLike, Params, PRNGKey
from fnn.nn import losses as _losses
from fnn.nn import mlp as _mlp
from fnn.optim import descent as _descent
from fnn.optim import optimizers as _optimizers

__all__ = [
    "SIGMOID_NETWORK",
    "RELU_NETWORK",
    "TrainedNetwork",
    "sigmoid_step",
    "step_error",
    "log_step_error",
    "measured_step_error",
    "weight_for_error",
    "bump_params",
    "sigmoid_weight",
    "sigmoid_network",
    "sigmoid_steps_network",
    "sigmoid_bound",
    "relu_network",
    "relu_bound",
    "approximate",
    "sup_error",
    "fit_rate",
    "ridge_params",
    "tower_params",
    "tower_network",
    "grid_errors",
    "leakage",
    "train_shallow",
]

SIGMOID_NETWORK = types.MappingProxyType({"activation": "sigmoid", "output_activation": "identity"})
"""Keyword arguments of :func:`fnn.mlp.apply` for the sigmoid, ridge and tower networks."""

RELU_NETWORK = types.MappingProxyType({"activation": "relu", "output_activation": "identity"})
"""Keyword arguments of :func:`fnn.mlp.apply` for :func:`relu_network`."""

# Default sharpness of the second-layer AND of a tower: sigma(-W_AND / 2) = 2e-9.
W_AND = 40.0
# The default step weight is SIGMOID_SLOPE * n^2 / (hi - lo).
SIGMOID_SLOPE = 16.0

Target = Callable[[Array], Array]
Target2D = Callable[[Array, Array], Array]


# ----------------------------------------------------------------------------------------
# Validation: concrete values raise, traced ones poison the result with NaN.
# ----------------------------------------------------------------------------------------


def _float_dtype(*values: Any) -> Any:
    """The floating dtype the inputs promote to (the default float for Python numbers)."""
    return jnp.result_type(float, *values)


def _interval(lo: Any, hi: Any, lo_name: str = "lo", hi_name: str = "hi") -> tuple[Array, Array]:
    """``(lo, hi)`` as finite floats of one dtype with lo < hi; NaN where traced and invalid."""
    lo, hi, ok = _checks.interval(lo, hi, lo_name, hi_name)
    return _checks.guard([ok], lo, hi)


def _box(box: Sequence[Any]) -> tuple[Array, Array, Array, Array]:
    if isinstance(box, (str, bytes)) or not isinstance(box, (Sequence, jax.Array, np.ndarray)) or len(box) != 4:
        raise ValueError(f"box must be (lo1, hi1, lo2, hi2), four numbers, got {box!r:.80}")
    lo1, hi1 = _interval(box[0], box[1], "box[0]", "box[1]")
    lo2, hi2 = _interval(box[2], box[3], "box[2]", "box[3]")
    dtype = _float_dtype(lo1, lo2)
    return lo1.astype(dtype), hi1.astype(dtype), lo2.astype(dtype), hi2.astype(dtype)


def _values(f: Callable[..., Any], *xs: Array) -> Array:
    """``f(*xs)``, checked to be a float array of the shape of ``xs[0]``, in its dtype."""
    if not callable(f):
        raise TypeError(f"f must be a callable mapping arrays to arrays, got {type(f).__name__}")
    y = jnp.asarray(f(*xs))
    if y.shape != xs[0].shape:
        raise ValueError(f"f must act elementwise: it mapped inputs of shape {xs[0].shape} to shape {y.shape}")
    if not (jnp.issubdtype(y.dtype, jnp.floating) or jnp.issubdtype(y.dtype, jnp.integer)):
        raise TypeError(f"f must return real numbers, got dtype {y.dtype}")
    return y.astype(xs[0].dtype)


# ----------------------------------------------------------------------------------------
# Steps and bumps.
# ----------------------------------------------------------------------------------------


def sigmoid_step(x: ArrayLike, w: ArrayLike, b: ArrayLike) -> Array:
    r"""A sigmoid step at ``b`` of steepness ``w``: :math:`\sigma(w(x - b)) \to H(x - b)` as :math:`w \to \infty`.

    Args:
      x: points, any shape.
      w: the steepness :math:`w > 0`, a scalar.
      b: the position of the step, a scalar.

    Returns:
      :math:`\sigma(w(x - b))`, the shape of ``x``.

    >>> [round(float(v), 4) for v in sigmoid_step(jnp.array([-1.0, 0.0, 1.0]), 10.0, 0.0)]
    [0.0, 0.5, 1.0]
    """
    w = _checks.positive_finite(_checks.real_scalar(w, "w"), "w")
    b = _checks.real_scalar(b, "b")
    x = jnp.asarray(x)
    return jax.nn.sigmoid(w * (x - b))


def step_error(w: ArrayLike, margin: ArrayLike) -> Array:
    r"""The sup error of a sigmoid step outside a margin, in closed form: :math:`\sigma(-w m)`.

    .. math:: \sup_{|x - b| \ge m} |\sigma(w(x - b)) - H(x - b)| = \sigma(-w m).

    Args:
      w: steepness, :math:`w > 0`; scalar or array.
      margin: :math:`m > 0`; broadcast against ``w`` (scalars or equal shapes).

    Returns:
      The error, the shape of ``w * margin``.

    >>> round(float(step_error(10.0, 0.5)), 4)
    0.0067
    """
    w, margin = _checks.positive_finite(w, "w"), _checks.positive_finite(margin, "margin")
    return jax.nn.sigmoid(-w * margin)


def log_step_error(w: ArrayLike, margin: ArrayLike) -> Array:
    r"""The natural log of :func:`step_error`, :math:`\log\sigma(-w m)`, finite where the error underflows.

    >>> round(float(log_step_error(1000.0, 1.0)), 1)
    -1000.0
    """
    w, margin = _checks.positive_finite(w, "w"), _checks.positive_finite(margin, "margin")
    return jax.nn.log_sigmoid(-w * margin)


def measured_step_error(
    w: ArrayLike, b: ArrayLike, margin: ArrayLike, lo: ArrayLike, hi: ArrayLike, num: int = 10001
) -> Array:
    r"""The sup error of a sigmoid step outside a margin, measured on a grid.

    .. math:: \max_{x_k:\ |x_k - b| \ge m} |\sigma(w(x_k - b)) - H(x_k - b)|,
              \quad x_k \text{ equally spaced on } [lo, hi];

    at most :func:`step_error`, and equal to it when :math:`b \pm m` are grid points. The
    difference is taken as written, so right of the step :math:`1 - \sigma` carries an absolute
    rounding error of one ulp of 1 (1e-16 in float64, 6e-8 in float32).

    Args:
      w: steepness :math:`w > 0`, scalar.
      b: the step's position, scalar.
      margin: :math:`m > 0`, scalar.
      lo, hi: the grid's ends, ``lo < hi``.
      num: grid points (static), at least 2.

    Returns:
      A scalar; NaN if no grid point lies outside the margin.

    >>> round(float(measured_step_error(10.0, 0.0, 0.5, -1.0, 1.0, 2001)), 4)
    0.0067
    """
    w, margin = (
        _checks.positive_finite(_checks.real_scalar(w, "w"), "w"),
        _checks.positive_finite(_checks.real_scalar(margin, "margin"), "margin"),
    )
    b = _checks.real_scalar(b, "b")
    lo, hi = _interval(lo, hi)
    num = _n_grid(num)
    x = jnp.linspace(lo, hi, num)
    error = jnp.abs(jax.nn.sigmoid(w * (x - b)) - (x >= b).astype(x.dtype))
    outside = jnp.abs(x - b) >= margin
    return jnp.where(jnp.any(outside), jnp.max(jnp.where(outside, error, 0)), jnp.nan)


def weight_for_error(eps: ArrayLike, margin: ArrayLike) -> Array:
    r"""The steepness whose step error outside ``margin`` is ``eps``: the inverse of :func:`step_error`.

    .. math:: w = \frac{\operatorname{logit}(1 - \varepsilon)}{m}
              = \frac{\log(1 - \varepsilon) - \log\varepsilon}{m}.

    Args:
      eps: the error, :math:`0 < \varepsilon < 1/2` (at 1/2 the step is flat); scalar or array.
      margin: :math:`m > 0`, broadcast against ``eps`` (scalars or equal shapes).

    Returns:
      :math:`w > 0`.

    >>> round(float(weight_for_error(0.01, 0.1)), 3)
    45.951
    """
    e = _checks.real(eps, "eps")
    e = e.astype(_float_dtype(e))
    ok = _checks.require((e > 0) & (e < 0.5), f"eps must lie in (0, 0.5), got {eps!r}")
    e = _checks.poison(e, ok)
    margin = _checks.positive_finite(margin, "margin")
    return (jnp.log1p(-e) - jnp.log(e)) / margin


def _n_grid(num: Any) -> int:
    num = _checks.positive_int(num, "num")
    if num < 2:
        raise ValueError(f"num must be at least 2 grid points, got {num}")
    return num


def bump_params(a: ArrayLike, b: ArrayLike, height: ArrayLike, w: ArrayLike) -> Params:
    r"""A 1-2-1 sigmoid network computing a bump of height ``height`` on ``[a, b]``.

    .. math:: g(x) = h\,\sigma(w(x - a)) - h\,\sigma(w(x - b)) \approx h\,\mathbb 1[a \le x < b],

    within :math:`|h|\,\sigma(-w m)` at distance :math:`m` from ``a`` and ``b``.

    Args:
      a, b: the bump's edges, scalars with ``a < b``.
      height: :math:`h`, scalar.
      w: steepness :math:`w > 0`, scalar.

    Returns:
      MLP params ``[{"W": [1, 2], "b": [2]}, {"W": [2, 1], "b": [1]}]``; evaluate with
      ``fnn.mlp.apply(params, x, **SIGMOID_NETWORK)`` on ``x: [N, 1]``.

    >>> params = bump_params(0.0, 1.0, 2.0, 100.0)
    >>> y = approximate(params, jnp.array([[-0.5], [0.5], [1.5]]))
    >>> [round(float(v), 4) for v in y[:, 0]]
    [0.0, 2.0, 0.0]
    """
    a, b = _interval(a, b, "a", "b")
    h = _checks.real_scalar(height, "height")
    w = _checks.positive_finite(_checks.real_scalar(w, "w"), "w")
    dtype = _float_dtype(a, h, w)
    a, b, h, w = (v.astype(dtype) for v in (a, b, h, w))
    return [
        {"W": jnp.stack([w, w])[None, :], "b": -w * jnp.stack([a, b])},
        {"W": jnp.stack([h, -h])[:, None], "b": jnp.zeros((1,), dtype)},
    ]


# ----------------------------------------------------------------------------------------
# One dimension: the constructions and their bounds.
# ----------------------------------------------------------------------------------------


def sigmoid_weight(lo: ArrayLike, hi: ArrayLike, n: int) -> Array:
    r"""The default step steepness of the sigmoid constructions: :math:`w = 16 n^2 / (hi - lo)`.

    With it the smoothing term :math:`2\ln 2 / w` of :func:`sigmoid_bound` is
    :math:`\ln 2 / (4n)` times the discretisation term :math:`\delta/2`, and the outer edges' term
    is :math:`O(e^{-8n})`.

    >>> round(float(sigmoid_weight(0.0, 2.0, 4)), 1)
    128.0
    """
    n = _checks.positive_int(n, "n")
    lo, hi = _interval(lo, hi)
    return SIGMOID_SLOPE * n**2 / (hi - lo)


def _steepness(w: Any, lo: Array, hi: Array, n: int) -> Array:
    if w is None:
        return sigmoid_weight(lo, hi, n)
    return _checks.positive_finite(_checks.real_scalar(w, "w"), "w").astype(lo.dtype)


def sigmoid_network(f: Target, lo: ArrayLike, hi: ArrayLike, n: int, *, w: ArrayLike | None = None) -> Params:
    r"""A 1-(2n)-1 sigmoid network of ``n`` bumps approximating ``f`` on ``[lo, hi]``.

    Bump :math:`i` covers bin :math:`[e_i, e_{i+1})`, :math:`e_i = lo + i\delta`, with height
    :math:`f(m_i) - c` at the bin's midpoint :math:`m_i`; the output bias is
    :math:`c = f((lo + hi)/2)` and the outer edges sit half a bin outside the interval (see the
    module docstring). For :math:`f` :math:`L`-Lipschitz the sup error on ``[lo, hi]`` is at most
    :func:`sigmoid_bound`, :math:`O(1/n)`.

    Args:
      f: the target, a function mapping an array to an array of the same shape (elementwise).
      lo, hi: the interval, scalars with ``lo < hi`` (may be traced).
      n: the number of bumps, a positive int (static).
      w: the steepness of every step; ``None`` for :func:`sigmoid_weight`.

    Returns:
      MLP params ``[{"W": [1, 2n], "b": [2n]}, {"W": [2n, 1], "b": [1]}]``, hidden units in
      pairs (left step, right step) per bump; evaluate with
      ``fnn.mlp.apply(params, x, **SIGMOID_NETWORK)``.

    >>> params = sigmoid_network(jnp.sin, 0.0, 3.0, 30)
    >>> _mlp.sizes_of(params)
    (1, 60, 1)
    >>> bool(sup_error(params, jnp.sin, 0.0, 3.0) <= sigmoid_bound(1.0, 0.0, 3.0, 30))
    True
    """
    n = _checks.positive_int(n, "n")
    lo, hi = _interval(lo, hi)
    w = _steepness(w, lo, hi, n)
    delta = (hi - lo) / n
    i = jnp.arange(n + 1, dtype=lo.dtype)
    edges = lo + delta * i
    edges = edges.at[0].add(-delta / 2).at[n].add(delta / 2)
    mids = lo + delta * (i[:-1] + 0.5)
    c = _values(f, ((lo + hi) / 2)[None])[0]
    heights = _values(f, mids) - c
    pairs = jnp.stack([edges[:-1], edges[1:]], axis=1).reshape(-1)
    out = jnp.stack([heights, -heights], axis=1).reshape(-1)
    return [
        {"W": jnp.full((1, 2 * n), w, lo.dtype), "b": -w * pairs},
        {"W": out[:, None], "b": c[None]},
    ]


def sigmoid_steps_network(f: Target, lo: ArrayLike, hi: ArrayLike, n: int, *, w: ArrayLike | None = None) -> Params:
    r"""The same staircase telescoped: a 1-(n-1)-1 sigmoid network of steps at the interior edges.

    .. math:: g(x) = f(m_0) + \sum_{i=1}^{n-1} \big(f(m_i) - f(m_{i-1})\big)\,\sigma(w(x - e_i)),

    with :math:`e_i = lo + i\delta` and midpoints :math:`m_i`. Error at most
    ``sigmoid_bound(L, lo, hi, n, w, form="steps")`` :math:`= L(\delta/2 + 2\ln 2/w)`.

    Args:
      f, lo, hi, w: as in :func:`sigmoid_network`.
      n: the number of bins, an int of at least 2 (static).

    Returns:
      MLP params ``[{"W": [1, n-1], "b": [n-1]}, {"W": [n-1, 1], "b": [1]}]``.

    >>> params = sigmoid_steps_network(jnp.sin, 0.0, 3.0, 30)
    >>> _mlp.sizes_of(params)
    (1, 29, 1)
    """
    n = _checks.integer(n, "n", minimum=2)
    lo, hi = _interval(lo, hi)
    w = _steepness(w, lo, hi, n)
    delta = (hi - lo) / n
    i = jnp.arange(n, dtype=lo.dtype)
    heights = _values(f, lo + delta * (i + 0.5))
    edges = lo + delta * i[1:]
    return [
        {"W": jnp.full((1, n - 1), w, lo.dtype), "b": -w * edges},
        {"W": jnp.diff(heights)[:, None], "b": heights[:1]},
    ]


def sigmoid_bound(
    lipschitz: ArrayLike, lo: ArrayLike, hi: ArrayLike, n: int, w: ArrayLike | None = None, *, form: str = "bumps"
) -> Array:
    r"""A proven bound on the sup error of :func:`sigmoid_network` for an :math:`L`-Lipschitz target.

    .. math:: L\Big(\frac\delta2 + \frac{2\ln 2}{w} + \frac{hi - lo}2\big[\sigma(-w\delta/2)
              + \sigma(-w(hi - lo + \delta/2))\big]\Big), \qquad \delta = \frac{hi - lo}n,

    and :math:`L(\delta/2 + 2\ln 2/w)` for ``form="steps"`` (:func:`sigmoid_steps_network`). The
    proof is in the module docstring.

    Args:
      lipschitz: :math:`L \ge 0` on ``[lo, hi]``.
      lo, hi: the interval.
      n: the number of bins (static).
      w: the steepness used; ``None`` for :func:`sigmoid_weight`.
      form: ``"bumps"`` or ``"steps"``.

    Returns:
      A scalar.

    >>> round(float(sigmoid_bound(1.0, 0.0, 1.0, 10, form="steps")), 4)
    0.0509
    """
    if form not in ("bumps", "steps"):
        raise ValueError(f"form must be 'bumps' or 'steps', got {form!r}")
    n = _checks.positive_int(n, "n")
    lo, hi = _interval(lo, hi)
    lip = _checks.real_scalar(lipschitz, "lipschitz").astype(lo.dtype)
    lip = _checks.poison(lip, _checks.require(lip >= 0, f"lipschitz must be non-negative, got {lipschitz!r}"))
    w = _steepness(w, lo, hi, n)
    delta = (hi - lo) / n
    bound = delta / 2 + 2 * math.log(2) / w
    if form == "bumps":
        bound = bound + (hi - lo) / 2 * (jax.nn.sigmoid(-w * delta / 2) + jax.nn.sigmoid(-w * (hi - lo + delta / 2)))
    return lip * bound


def relu_network(f: Target, lo: ArrayLike, hi: ArrayLike, n: int) -> Params:
    r"""A 1-n-1 ReLU network equal to the piecewise-linear interpolant of ``f`` at ``n + 1`` knots.

    .. math:: g(x) = f(x_0) + s_0\,\mathrm{relu}(x - x_0)
              + \sum_{i=1}^{n-1}(s_i - s_{i-1})\,\mathrm{relu}(x - x_i),
              \qquad s_i = \frac{f(x_{i+1}) - f(x_i)}{\delta},

    with knots :math:`x_i = lo + i\delta`, :math:`\delta = (hi - lo)/n`. On ``[lo, hi]`` the sup
    error is at most :func:`relu_bound`; left of ``lo`` the network is constant, right of ``hi``
    it continues the last piece.

    Args:
      f: the target, elementwise on arrays.
      lo, hi: the interval, ``lo < hi`` (may be traced).
      n: the number of linear pieces, a positive int (static).

    Returns:
      MLP params ``[{"W": [1, n], "b": [n]}, {"W": [n, 1], "b": [1]}]``; evaluate with
      ``fnn.mlp.apply(params, x, **RELU_NETWORK)``.

    >>> params = relu_network(jnp.sin, 0.0, 3.0, 30)
    >>> bool(sup_error(params, jnp.sin, 0.0, 3.0, activation="relu") <= relu_bound(1.0, 0.0, 3.0, 30))
    True
    """
    n = _checks.positive_int(n, "n")
    lo, hi = _interval(lo, hi)
    delta = (hi - lo) / n
    knots = lo + delta * jnp.arange(n + 1, dtype=lo.dtype)
    values = _values(f, knots)
    slopes = jnp.diff(values) / delta
    coefficients = jnp.concatenate([slopes[:1], jnp.diff(slopes)])
    return [
        {"W": jnp.ones((1, n), lo.dtype), "b": -knots[:-1]},
        {"W": coefficients[:, None], "b": values[:1]},
    ]


def relu_bound(
    second_derivative_bound: ArrayLike, lo: ArrayLike, hi: ArrayLike, n: int, *, lipschitz: ArrayLike | None = None
) -> Array:
    r"""The interpolation error bound of :func:`relu_network`: :math:`\delta^2 \max|f''| / 8`.

    On a piece :math:`[x_i, x_i + \delta]`, :math:`f - g` vanishes at both ends, so
    :math:`|f - g| \le \tfrac12 t(\delta - t)\max|f''| \le \delta^2\max|f''|/8`. For an
    :math:`L`-Lipschitz :math:`f`, :math:`|f - g| \le 2t(1 - t)L\delta \le L\delta/2` at
    fraction :math:`t` of the piece; given ``lipschitz``, the smaller of the two bounds.

    Args:
      second_derivative_bound: :math:`\max_{[lo, hi]}|f''| \ge 0`; ``jnp.inf`` when only the
        Lipschitz bound applies.
      lo, hi: the interval.
      n: the number of pieces (static).
      lipschitz: optional :math:`L \ge 0`.

    >>> round(float(relu_bound(1.0, 0.0, 1.0, 10)), 6)
    0.00125
    >>> round(float(relu_bound(jnp.inf, 0.0, 1.0, 10, lipschitz=1.0)), 4)
    0.05
    """
    n = _checks.positive_int(n, "n")
    lo, hi = _interval(lo, hi)
    m2 = _checks.real_scalar(second_derivative_bound, "second_derivative_bound").astype(lo.dtype)
    m2 = _checks.poison(
        m2, _checks.require(m2 >= 0, f"second_derivative_bound must be non-negative, got {second_derivative_bound!r}")
    )
    delta = (hi - lo) / n
    bound = m2 * delta**2 / 8
    if lipschitz is not None:
        lip = _checks.real_scalar(lipschitz, "lipschitz").astype(lo.dtype)
        lip = _checks.poison(lip, _checks.require(lip >= 0, f"lipschitz must be non-negative, got {lipschitz!r}"))
        bound = jnp.minimum(bound, lip * delta / 2)
    return bound


def approximate(params: Params, x: ArrayLike, activation: str = "sigmoid") -> Array:
    """Evaluate a constructed network: ``fnn.mlp.apply`` with hidden ``activation`` and identity output.

    Args:
      params: MLP params from this module (or any MLP's).
      x: inputs ``[..., d_0]``.
      activation: ``"sigmoid"`` for the sigmoid, ridge and tower networks, ``"relu"`` for
        :func:`relu_network`.

    Returns:
      ``[..., d_L]``.

    >>> approximate(relu_network(jnp.abs, -1.0, 1.0, 2), jnp.array([[-0.5], [0.25]]), "relu")[:, 0]
    Array([0.5 , 0.25], dtype=float32)
    """
    return _mlp.apply(params, x, activation=activation, output_activation="identity")


def sup_error(
    params: Params, f: Target, lo: ArrayLike, hi: ArrayLike, num: int = 10001, activation: str = "sigmoid"
) -> Array:
    r"""The sup error :math:`\max_k |g(x_k) - f(x_k)|` of a 1-input network on ``num`` equally spaced points.

    Args:
      params: a network with one input and one output.
      f: the target, elementwise.
      lo, hi: the interval; the grid includes both ends.
      num: grid points (static), at least 2.
      activation: the hidden activation (see :func:`approximate`).

    Returns:
      A scalar.

    >>> round(float(sup_error(relu_network(jnp.abs, -1.0, 1.0, 2), jnp.abs, -1.0, 1.0, 101, "relu")), 6)
    0.0
    """
    num = _n_grid(num)
    lo, hi = _interval(lo, hi)
    x = jnp.linspace(lo, hi, num)
    y = approximate(params, x[:, None], activation)
    if y.shape != (num, 1):
        raise ValueError(f"params must map one input to one output, got output shape {y.shape[1:]}")
    return jnp.max(jnp.abs(y[:, 0] - _values(f, x)))


def fit_rate(ns: ArrayLike, errors: ArrayLike) -> Array:
    r"""The least-squares slope of :math:`\log(\text{error})` against :math:`\log n`: the convergence rate.

    .. math:: \hat p = \frac{\sum_k (u_k - \bar u)(v_k - \bar v)}{\sum_k (u_k - \bar u)^2},
              \quad u_k = \log n_k, \; v_k = \log e_k;

    about -1 for an error :math:`O(1/n)`, -2 for :math:`O(1/n^2)`.

    Args:
      ns: ``[K]`` positive sizes, not all equal, :math:`K \ge 2`.
      errors: ``[K]`` positive errors.

    Returns:
      The slope, a scalar.

    >>> round(float(fit_rate(jnp.array([2.0, 4.0, 8.0]), jnp.array([0.25, 0.0625, 0.015625]))), 4)
    -2.0
    """
    ns, errors = _checks.real(ns, "ns"), _checks.float_array(errors, "errors")
    ns = ns.astype(_float_dtype(ns, errors))
    _checks.ndim_in(ns, "ns", (1,))
    _checks.same_shape(ns, errors, "ns", "errors")
    if ns.shape[0] < 2:
        raise ValueError(f"ns must hold at least 2 sizes to fit a slope, got {ns.shape[0]}")
    ok = _checks.require((ns > 0) & (errors > 0), "ns and errors must be positive to take logs")
    u, v = jnp.log(ns), jnp.log(errors)
    du = u - jnp.mean(u)
    ok = ok & _checks.require(jnp.sum(du**2) > 0, "ns must not all be equal")
    return _checks.poison(jnp.sum(du * (v - jnp.mean(v))) / jnp.sum(du**2), ok)


# ----------------------------------------------------------------------------------------
# Two dimensions: ridges and towers.
# ----------------------------------------------------------------------------------------


def ridge_params(a: ArrayLike, b: ArrayLike, height: ArrayLike, w: ArrayLike, *, axis: int = 0) -> Params:
    r"""A 2-2-1 sigmoid network: a bump along input ``axis``, constant along the other (a ridge).

    .. math:: g(x) = h\,\sigma(w(x_k - a)) - h\,\sigma(w(x_k - b)), \qquad k = \text{axis}.

    Args:
      a, b: the ridge's edges along ``axis``, ``a < b``.
      height: :math:`h`.
      w: steepness :math:`w > 0`.
      axis: 0 or 1, the input the steps look at.

    Returns:
      MLP params ``[{"W": [2, 2], "b": [2]}, {"W": [2, 1], "b": [1]}]``.

    >>> params = ridge_params(0.0, 1.0, 1.0, 100.0)
    >>> [round(float(v), 4) for v in approximate(params, jnp.array([[0.5, 0.5], [0.5, 50.0], [2.0, 0.5]]))[:, 0]]
    [1.0, 1.0, 0.0]
    """
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 or 1, got {axis!r}")
    first, second = bump_params(a, b, height, w)
    W = jnp.zeros((2, 2), first["W"].dtype).at[axis].set(first["W"][0])
    return [{"W": W, "b": first["b"]}, second]


def tower_params(box: Sequence[ArrayLike], height: ArrayLike, w: ArrayLike, *, w_and: ArrayLike = W_AND) -> Params:
    r"""A 2-4-1-1 sigmoid network: a tower of height ``height`` over ``box``.

    Two ridges :math:`r_1 = \sigma(w(x_1 - a_1)) - \sigma(w(x_1 - b_1))`, :math:`r_2` likewise in
    :math:`x_2`, are ANDed by a steep second layer and scaled:

    .. math:: g(x) = h\,\sigma\big(w'(r_1 + r_2 - \tfrac32)\big),

    about :math:`h` where both ridges are on (sum 2), about 0 where one or none is (sum
    :math:`\le 1`), since :math:`\sigma(\pm w'/2) \approx 1, 0`.

    Args:
      box: ``(a1, b1, a2, b2)`` with ``a1 < b1`` and ``a2 < b2``.
      height: :math:`h`.
      w: steepness of the first layer's steps, :math:`w > 0`.
      w_and: steepness :math:`w' > 0` of the AND.

    Returns:
      MLP params with layer sizes (2, 4, 1, 1); evaluate with ``**SIGMOID_NETWORK``.

    >>> params = tower_params((0.0, 1.0, 0.0, 1.0), 1.0, 100.0)
    >>> [round(float(v), 4) for v in approximate(params, jnp.array([[0.5, 0.5], [0.5, 50.0], [2.0, 0.5]]))[:, 0]]
    [1.0, 0.0, 0.0]
    """
    a1, b1, a2, b2 = _box(box)
    h = _checks.real_scalar(height, "height")
    w = _checks.positive_finite(_checks.real_scalar(w, "w"), "w")
    w_and = _checks.positive_finite(_checks.real_scalar(w_and, "w_and"), "w_and")
    dtype = _float_dtype(a1, h, w, w_and)
    a1, b1, a2, b2, h, w, w_and = (v.astype(dtype) for v in (a1, b1, a2, b2, h, w, w_and))
    zero = jnp.zeros((), dtype)
    return [
        {
            "W": jnp.stack([jnp.stack([w, w, zero, zero]), jnp.stack([zero, zero, w, w])]),
            "b": -w * jnp.stack([a1, b1, a2, b2]),
        },
        {"W": w_and * jnp.array([[1.0], [-1.0], [1.0], [-1.0]], dtype), "b": (-1.5 * w_and)[None]},
        {"W": h[None, None], "b": jnp.zeros((1,), dtype)},
    ]


def _edges(lo: Array, hi: Array, n: int) -> tuple[Array, Array]:
    """Bin edges with the outer two pushed half a bin out, and the bin midpoints."""
    delta = (hi - lo) / n
    i = jnp.arange(n + 1, dtype=lo.dtype)
    edges = (lo + delta * i).at[0].add(-delta / 2).at[n].add(delta / 2)
    return edges, lo + delta * (i[:-1] + 0.5)


def tower_network(
    f: Target2D,
    box: Sequence[ArrayLike],
    n: int,
    *,
    w: ArrayLike | None = None,
    w_and: ArrayLike = W_AND,
    form: str = "telescoped",
) -> Params:
    r"""A two-hidden-layer sigmoid network of ``n x n`` towers approximating ``f(x1, x2)`` on ``box``.

    The box is cut into :math:`n \times n` cells with centres :math:`c_{ij}`; the output bias is
    :math:`c = f` at the box's centre. The first layer holds steps
    :math:`u_k = \sigma(w_1(x_1 - e_k))`, :math:`k = 0..n`, at the cells' :math:`x_1` edges
    (outer two pushed half a cell out), so :math:`r_i = u_i - u_{i+1}` is column :math:`i`'s ridge.

    * ``form="towers"``: the same :math:`n + 1` steps :math:`v_k` in :math:`x_2` make row ridges
      :math:`q_j`; unit :math:`(i, j)` of the second layer is
      :math:`\sigma(w'(r_i + q_j - \tfrac32))` with output weight :math:`f(c_{ij}) - c`
      (Nielsen's towers). Layers (2, 2n + 2, n², 1). At a cell corner all four towers are off
      and the error does not fall with :math:`n`.
    * ``form="telescoped"``: :math:`n - 1` steps :math:`t_j` at the interior :math:`x_2` edges;
      unit :math:`(i, 0)` is :math:`\sigma(w'(r_i - \tfrac12))` with weight
      :math:`f(c_{i0}) - c`, unit :math:`(i, j \ge 1)` is :math:`\sigma(w'(r_i + t_j - \tfrac32))`
      with weight :math:`f(c_{ij}) - f(c_{i,j-1})`. Layers (2, 2n, n², 1). Each column's output
      is a non-negative combination of its cells' values with total weight
      :math:`\sigma(w'(r_i - \tfrac12))`, and these sum to about one over the columns, so the
      output is near a convex combination of :math:`f` at nearby centres: :math:`O(1/n)`.

    Args:
      f: the target ``f(x1, x2)``, elementwise on two arrays of one shape.
      box: ``(a1, b1, a2, b2)``.
      n: cells per axis, a positive int (static).
      w: steepness of the first layer; ``None`` for :func:`sigmoid_weight` of each axis.
      w_and: steepness :math:`w'` of the second layer's AND; :math:`n^2\sigma(-w'/2)` should be small.
      form: ``"telescoped"`` or ``"towers"``.

    Returns:
      MLP params (three layers); evaluate with ``**SIGMOID_NETWORK``.

    >>> f = lambda x1, x2: jnp.sin(x1) * jnp.cos(x2)
    >>> params = tower_network(f, (0.0, 1.0, 0.0, 1.0), 8)
    >>> _mlp.sizes_of(params)
    (2, 16, 64, 1)
    >>> bool(grid_errors(params, f, (0.0, 1.0, 0.0, 1.0), 65)[0] < 0.1)
    True
    """
    if form not in ("towers", "telescoped"):
        raise ValueError(f"form must be 'telescoped' or 'towers', got {form!r}")
    n = _checks.positive_int(n, "n")
    a1, b1, a2, b2 = _box(box)
    dtype = a1.dtype
    w1 = _steepness(w, a1, b1, n)
    w2 = _steepness(w, a2, b2, n)
    w_and = _checks.positive_finite(_checks.real_scalar(w_and, "w_and"), "w_and").astype(dtype)
    e1, m1 = _edges(a1, b1, n)
    e2, m2 = _edges(a2, b2, n)
    c = _values(f, ((a1 + b1) / 2)[None], ((a2 + b2) / 2)[None])[0]
    heights = _values(f, *jnp.meshgrid(m1, m2, indexing="ij"))  # [i, j]
    # difference[k, i] = 1 if k == i, -1 if k == i + 1: ridge i = u_i - u_{i+1}.
    difference = jnp.eye(n + 1, n, dtype=dtype) - jnp.eye(n + 1, n, -1, dtype=dtype)
    ones = jnp.ones((1, n), dtype)
    from_u = jnp.kron(difference, ones)  # [n + 1, n * n], unit index i * n + j
    zeros_u = jnp.zeros((n + 1,), dtype)
    if form == "towers":
        from_v = jnp.kron(ones, difference)
        first = {
            "W": jnp.concatenate(
                [
                    jnp.stack([w1 * jnp.ones((n + 1,), dtype), zeros_u]),
                    jnp.stack([zeros_u, w2 * jnp.ones((n + 1,), dtype)]),
                ],
                axis=1,
            ),
            "b": jnp.concatenate([-w1 * e1, -w2 * e2]),
        }
        second = {"W": w_and * jnp.concatenate([from_u, from_v]), "b": jnp.full((n * n,), -1.5, dtype) * w_and}
        out = heights - c
    else:
        from_t = jnp.kron(ones, jnp.eye(n - 1, n, 1, dtype=dtype))  # t_k feeds units (i, k + 1)
        zeros_t = jnp.zeros((n - 1,), dtype)
        first = {
            "W": jnp.concatenate(
                [
                    jnp.stack([w1 * jnp.ones((n + 1,), dtype), zeros_u]),
                    jnp.stack([zeros_t, w2 * jnp.ones((n - 1,), dtype)]),
                ],
                axis=1,
            ),
            "b": jnp.concatenate([-w1 * e1, -w2 * e2[1:-1]]),
        }
        threshold = jnp.tile(jnp.concatenate([jnp.full((1,), 0.5, dtype), jnp.full((n - 1,), 1.5, dtype)]), n)
        second = {"W": w_and * jnp.concatenate([from_u, from_t]), "b": -w_and * threshold}
        out = jnp.concatenate([heights[:, :1] - c, jnp.diff(heights, axis=1)], axis=1)
    return [first, second, {"W": out.reshape(n * n, 1), "b": c[None]}]


def _grid_2d(box: tuple[Array, Array, Array, Array], num: int) -> tuple[Array, Array]:
    a1, b1, a2, b2 = box
    return jnp.meshgrid(jnp.linspace(a1, b1, num), jnp.linspace(a2, b2, num), indexing="ij")


def _evaluate_2d(params: Params, x1: Array, x2: Array, activation: str, chunk: int = 4096) -> Array:
    """The network on the points ``(x1, x2)`` (any one shape), in chunks to bound the memory of wide layers."""
    points = jnp.stack([x1.reshape(-1), x2.reshape(-1)], axis=1)
    _mlp.check_input(params, points)
    if points.shape[0] <= chunk:
        y = approximate(params, points, activation)
    else:
        y = jax.lax.map(lambda p: approximate(params, p[None], activation)[0], points, batch_size=chunk)
    if y.shape[1:] != (1,):
        raise ValueError(f"params must map two inputs to one output, got output shape {y.shape[1:]}")
    return y[:, 0].reshape(x1.shape)


def grid_errors(
    params: Params, f: Target2D, box: Sequence[ArrayLike], num: int = 129, activation: str = "sigmoid"
) -> tuple[Array, Array]:
    r"""The sup and the mean absolute error of a 2-input network on a ``num x num`` grid over ``box``.

    Args:
      params: a network with two inputs and one output.
      f: the target ``f(x1, x2)``, elementwise.
      box: ``(a1, b1, a2, b2)``; the grid includes the edges (and, for ``num = k n + 1``, the
        corners of an ``n x n`` cell grid).
      num: points per axis (static), at least 2.
      activation: the hidden activation.

    Returns:
      ``(sup, mean)``, scalars.

    >>> params = tower_network(lambda x1, x2: x1 + x2, (0.0, 1.0, 0.0, 1.0), 4)
    >>> [round(float(e), 2) for e in grid_errors(params, lambda x1, x2: x1 + x2, (0.0, 1.0, 0.0, 1.0), 33)]
    [0.25, 0.08]
    """
    num = _n_grid(num)
    x1, x2 = _grid_2d(_box(box), num)
    error = jnp.abs(_evaluate_2d(params, x1, x2, activation) - _values(f, x1, x2))
    return jnp.max(error), jnp.mean(error)


def leakage(
    params: Params,
    box: Sequence[ArrayLike],
    *,
    margin: ArrayLike,
    extent: ArrayLike,
    num: int = 201,
    activation: str = "sigmoid",
) -> Array:
    r"""How far a 2-input network reaches outside a box: :math:`\max |g(x)|` over points at least ``margin`` away.

    The points are a ``num x num`` grid over the box grown by ``extent`` on every side, kept where
    their distance to the box in the max-norm is at least ``margin``. A ridge along
    :math:`x_1` keeps its height all along :math:`x_2` (leakage :math:`\approx h`); a tower is
    localised (leakage :math:`\approx 0`).

    Args:
      params: a network with two inputs and one output.
      box: ``(a1, b1, a2, b2)``.
      margin: :math:`m > 0`, below ``extent``.
      extent: how far beyond the box to look, :math:`> 0`.
      num: grid points per axis (static).
      activation: the hidden activation.

    Returns:
      A scalar.

    >>> box = (0.0, 1.0, 0.0, 1.0)
    >>> round(float(leakage(ridge_params(0.0, 1.0, 1.0, 100.0), box, margin=0.5, extent=2.0)), 3)
    1.0
    >>> round(float(leakage(tower_params(box, 1.0, 100.0), box, margin=0.5, extent=2.0)), 3)
    0.0
    """
    a1, b1, a2, b2 = _box(box)
    margin = _checks.positive_finite(_checks.real_scalar(margin, "margin"), "margin").astype(a1.dtype)
    extent = _checks.positive_finite(_checks.real_scalar(extent, "extent"), "extent").astype(a1.dtype)
    margin = _checks.poison(
        margin,
        _checks.require(
            margin < extent,
            f"margin must be below extent, got {margin} and {extent}"
            if _checks.is_concrete(margin, extent)
            else "margin must be below extent",
        ),
    )
    num = _n_grid(num)
    x1, x2 = _grid_2d((a1 - extent, b1 + extent, a2 - extent, b2 + extent), num)
    distance = jnp.maximum(jnp.maximum(a1 - x1, x1 - b1), jnp.maximum(a2 - x2, x2 - b2))
    y = _evaluate_2d(params, x1, x2, activation)
    return jnp.max(jnp.where(distance >= margin, jnp.abs(y), 0))


# ----------------------------------------------------------------------------------------
# Trained networks of the same widths.
# ----------------------------------------------------------------------------------------


class TrainedNetwork(NamedTuple):
    """A shallow network fitted by :func:`train_shallow`.

    Attributes:
      params: MLP params ``(1, width, 1)``.
      sup_error: its sup error on the evaluation grid, a scalar.
      losses: ``[steps]``, the training MSE before each step.
    """

    params: Params
    sup_error: Array
    losses: Array


def train_shallow(
    key: PRNGKey,
    f: Target,
    lo: ArrayLike,
    hi: ArrayLike,
    width: int,
    activation: str = "sigmoid",
    steps: int = 5000,
    *,
    learning_rate: ArrayLike = 1e-2,
    num: int = 256,
    num_eval: int = 4097,
    final_fraction: float = 0.01,
    active: ArrayLike | None = None,
) -> TrainedNetwork:
    r"""Fit a 1-width-1 network to ``f`` on ``[lo, hi]`` by full-batch Adam on the MSE.

    Data: ``num`` equally spaced points of ``[lo, hi]`` and their values. Initialisation: the
    hidden units' slopes :math:`W_{1k} \sim N(0, (4/(hi - lo))^2)` and centres
    :math:`u_k \sim U[lo, hi]` (bias :math:`-W_{1k} u_k`), so every unit changes within the
    interval; output weights :math:`N(0, 1/\text{width})`, output bias 0. Adam (:mod:`fnn.optimizers`)
    with a cosine decay of the rate from ``learning_rate`` to ``final_fraction`` of it, ``steps``
    updates as one :func:`fnn.descent.minimize` loop. Vmappable over ``key`` (seeds), ``lo``,
    ``hi``, ``learning_rate``, ``active`` and what ``f`` closes over.

    With ``active = k < width`` only the first ``k`` hidden units are used: the others have output
    weight 0, so they get no gradient and Adam never moves them, and the run is that of a
    width-``k`` network (its output weights drawn with variance ``1/k``). A sweep over widths is
    then one ``jax.vmap`` at the largest width, compiled once.

    Args:
      key: a PRNG key.
      f: the target, elementwise.
      lo, hi: the interval.
      width: hidden units (static).
      activation: the hidden activation, e.g. ``"sigmoid"`` or ``"relu"`` (static).
      steps: Adam updates (static).
      learning_rate: the initial rate, :math:`> 0`.
      num: training grid points (static).
      num_eval: points of the grid on which the sup error is measured (static).
      final_fraction: the rate at the end over the initial one, in (0, 1] (static).
      active: hidden units in use, an integer in ``[1, width]`` (may be traced); ``None`` for all.

    Returns:
      A :class:`TrainedNetwork` ``(params, sup_error, losses)``.

    >>> run = train_shallow(jax.random.key(0), jnp.sin, 0.0, 3.0, 8, "sigmoid", 1000)
    >>> _mlp.sizes_of(run.params), run.losses.shape, bool(run.losses[-1] < run.losses[0] / 50)
    ((1, 8, 1), (1000,), True)
    """
    width = _checks.positive_int(width, "width")
    steps = _checks.positive_int(steps, "steps")
    num, num_eval = _n_grid(num), _n_grid(num_eval)
    final_fraction = _checks.positive_float(final_fraction, "final_fraction")
    if final_fraction > 1:
        raise ValueError(f"final_fraction must lie in (0, 1], got {final_fraction}")
    lo, hi = _interval(lo, hi)
    dtype = lo.dtype
    learning_rate = _checks.positive_finite(
        _checks.real_scalar(learning_rate, "learning_rate"), "learning_rate"
    ).astype(dtype)
    x = jnp.linspace(lo, hi, num)
    y = _values(f, x)[:, None]
    x = x[:, None]
    if active is None:
        active = jnp.asarray(width)
    else:
        active = _checks.real(active, "active")
        if active.ndim or not jnp.issubdtype(active.dtype, jnp.integer):
            raise TypeError(f"active must be an integer scalar, got {active.dtype} of shape {active.shape}")
        ok = _checks.require((active >= 1) & (active <= width), f"active must lie in [1, width={width}], got {active}")
        learning_rate = _checks.poison(learning_rate, ok)
    mask = (jnp.arange(width) < active).astype(dtype)[:, None]
    k_slope, k_centre, k_out = jax.random.split(key, 3)
    slopes = jax.random.normal(k_slope, (1, width), dtype) * (4 / (hi - lo))
    centres = jax.random.uniform(k_centre, (width,), dtype, lo, hi)
    out = jax.random.normal(k_out, (width, 1), dtype) * jax.lax.rsqrt(active.astype(dtype)) * mask
    params = [{"W": slopes, "b": -slopes[0] * centres}, {"W": out, "b": jnp.zeros((1,), dtype)}]

    def loss(p):
        # Masking inside the loss zeroes the gradient of the unused units' output weights.
        used = [p[0], {"W": p[1]["W"] * mask, "b": p[1]["b"]}]
        return _losses.mse(approximate(used, x, activation), y)

    schedule = optax.cosine_decay_schedule(learning_rate, steps, alpha=final_fraction)
    optimizer = _optimizers.get("adam", learning_rate=schedule)
    params, history = _descent.minimize(loss, params, optimizer, steps)
    return TrainedNetwork(params, sup_error(params, f, lo, hi, num_eval, activation), history)
