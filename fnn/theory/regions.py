r"""Depth against width: linear pieces and linear regions of piecewise-linear networks.

A network whose activations are piecewise linear (ReLU, leaky ReLU, :math:`|z|`, hard tanh)
computes a continuous piecewise-linear function. How many pieces it can have measures what
depth buys over width.

**The sawtooth.** The tent map on :math:`[0, 1]`,

.. math:: t(x) = 2\,\mathrm{relu}(x) - 4\,\mathrm{relu}(x - \tfrac12)
          = \begin{cases} 2x & x \le \tfrac12 \\ 2 - 2x & x > \tfrac12 \end{cases},

is one hidden layer of two ReLUs. Composed :math:`L` times it is a sawtooth with
:math:`2^{L-1}` teeth and :math:`2^L` linear pieces, computed by :math:`L` hidden layers of
width 2 (:math:`2L` units). A network with one hidden layer of :math:`m` ReLUs has at most
:math:`m + 1` pieces on a line (each unit adds at most one breakpoint), so it needs at least
:math:`2^L - 1` units for the same function: exponentially many (Telgarsky 2016). It needs in
fact :math:`2^L` (see :func:`fit_shallow_interpolant`).

**Exact pieces on a line.** :func:`linear_pieces` propagates a network with a 1-D input as a
piecewise-linear function: a sorted list of breakpoints :math:`x_0 < \dots < x_P` and, on
each interval, the affine map :math:`a(x) = A_p x + B_p` of every unit of the current layer.
For the next layer, :math:`z = a W + b` is affine on each interval; where a unit's
pre-activation crosses a kink :math:`k` of the activation,
:math:`x^* = (k - B^z_{pj}) / A^z_{pj} \in (x_p, x_{p+1})`, the interval is split; then the
activation acts on each new interval as the affine piece selected at its midpoint. At the end
adjacent pieces with equal affine maps (every output's slope and intercept equal up to a
tolerance relative to their scale) are merged, so collinear neighbours count once.

**Regions in the plane.** For an input :math:`x \in \mathbb R^d` the *activation pattern*
records, for every hidden unit, which side of each kink its pre-activation lies on. With the
pattern fixed every pre-activation is an affine function of :math:`x` and the pattern's
constraints are linear inequalities, so the set of inputs sharing a pattern is a convex
polyhedron (Hanin & Rolnick 2019 call these activation regions); the function is affine on
it. :func:`count_regions_grid` counts the distinct patterns met on a grid: every pattern it
finds is a true region, but regions smaller than the grid spacing are missed, so the count is a
lower bound on the regions in the box that grows with the resolution. (Two adjacent activation
regions can carry the same affine map, so the function's own linear regions can be fewer;
that is non-generic.) Grid-connected components of equal pattern are counted as well: as
every pattern set is convex, a component count above the pattern count is an artefact of the
grid (a thin region sampled as disconnected pixels), which makes it a check of the
resolution.

**Bounds** (:math:`n` units, input dimension :math:`d`). One hidden layer: the :math:`n`
hyperplanes :math:`\{x : x w_j + b_j = 0\}` cut :math:`\mathbb R^d` into at most
:math:`\sum_{j=0}^{d} \binom{n}{j}` regions, with equality in general position (Zaslavsky
1975). Deep, with widths :math:`n_1, \dots, n_L`: the upper bound of Serra et al. (2018),
and the lower bound of Montufar et al. (2014) on the maximum over weights.

The exact counter is NumPy in float64 and not jitted: it is a geometric algorithm whose
number of pieces depends on the data. The grid counts are jitted and vmapped.

References:
  M. Telgarsky, *Benefits of depth in neural networks*, COLT 2016.
  G. Montufar, R. Pascanu, K. Cho, Y. Bengio, *On the number of linear regions of deep neural
  networks*, NeurIPS 2014.
  R. Pascanu, G. Montufar, Y. Bengio, *On the number of response regions of deep feed forward
  networks with piece-wise linear activations*, arXiv:1312.6098, 2013.
  T. Serra, C. Tjandraatmadja, S. Ramalingam, *Bounding and counting linear regions of deep
  neural networks*, ICML 2018.
  T. Zaslavsky, *Facing up to arrangements: face-count formulas for partitions of space by
  hyperplanes*, Memoirs of the AMS 154, 1975.
  B. Hanin, D. Rolnick, *Complexity of linear regions in deep networks*, ICML 2019.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn._types import Array, ArrayLike, Params, PRNGKey
from fnn.nn import activations as _activations
from fnn.nn import mlp as _mlp

__all__ = [
    "PIECEWISE_LINEAR",
    "tent_map",
    "sawtooth_params",
    "linear_pieces",
    "count_pieces",
    "count_pieces_bruteforce",
    "shallow_width_needed",
    "fit_shallow_interpolant",
    "activation_pattern",
    "GridRegions",
    "count_regions_grid",
    "region_map",
    "region_counts",
    "random_network",
    "random_networks",
    "shallow_region_bound",
    "deep_region_bound",
    "deep_region_lower_bound",
]

# Activations whose pieces these functions know: name -> (kinks, slopes, intercepts) as a
# function of the activation's parameters.
PIECEWISE_LINEAR = ("relu", "leaky_relu", "rectifier", "abs", "hard_tanh", "identity")


def _pieces_of(activation: Any, name: str) -> tuple[_activations.Activation, np.ndarray, np.ndarray, np.ndarray]:
    """The activation record and its kinks ``[m]``, slopes ``[m + 1]``, intercepts ``[m + 1]``."""
    act = _activations.get(activation)
    if act.name == "relu":
        table = ((0.0,), (0.0, 1.0), (0.0, 0.0))
    elif act.name in ("rectifier", "leaky_relu"):
        table = ((0.0,), (float(act.params[0]), 1.0), (0.0, 0.0))
    elif act.name == "abs":
        table = ((0.0,), (-1.0, 1.0), (0.0, 0.0))
    elif act.name == "hard_tanh":
        table = ((-1.0, 1.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 1.0))
    elif act.name == "identity":
        table = ((), (1.0,), (0.0,))
    else:
        raise ValueError(
            f"{name} must be a piecewise-linear activation ({', '.join(PIECEWISE_LINEAR)}), got {act.name!r}"
        )
    return act, *(np.asarray(t, np.float64) for t in table)


def _interval(lo: Any, hi: Any) -> tuple[float, float]:
    """``lo < hi`` checked (finite reals), returned as Python floats for the exact float64 sweep."""
    _checks.interval(lo, hi, "lo", "hi", np.float32)
    return float(lo), float(hi)


def _input_width(params: Params, expected: int) -> None:
    _mlp.check_params(params)
    n_in = int(jnp.shape(params[0]["W"])[0])
    if n_in != expected:
        raise ValueError(
            f"params must take a {expected}-D input (first W with {expected} row{'s' if expected > 1 else ''}), "
            f"got a first W of shape {tuple(jnp.shape(params[0]['W']))}"
        )


# ----------------------------------------------------------------------------------------
# The sawtooth
# ----------------------------------------------------------------------------------------


def tent_map(x: ArrayLike) -> Array:
    r"""The tent map :math:`t(x) = 2\,\mathrm{relu}(x) - 4\,\mathrm{relu}(x - \frac12)`, elementwise.

    On :math:`[0, 1]` it is :math:`\min(2x, 2 - 2x)` and maps :math:`[0, 1]` onto itself.

    >>> tent_map(jnp.array([0.0, 0.25, 0.5, 0.75, 1.0]))
    Array([0. , 0.5, 1. , 0.5, 0. ], dtype=float32)
    """
    x = _checks.float_array(x, "x")
    return 2 * jax.nn.relu(x) - 4 * jax.nn.relu(x - 0.5)


def sawtooth_params(depth: int, *, dtype: Any = jnp.float32) -> Params:
    r"""MLP parameters of width-2 ReLU layers computing :math:`t^L`, the tent map composed ``depth`` times.

    Hidden layer :math:`l` holds :math:`(\mathrm{relu}(u), \mathrm{relu}(u - \frac12))` of
    :math:`u = t^{l-1}(x)`; the next layer reads :math:`t^l = 2h_1 - 4h_2` from them. So the
    network has ``depth`` hidden layers (:math:`2L` units) and a linear output, for
    :func:`fnn.mlp.apply` with ``activation="relu"`` and ``output_activation="identity"`` on
    ``x: [N, 1]``. On :math:`[0, 1]` its output has :math:`2^L` linear pieces
    (:math:`2^{L-1}` teeth); every weight is a small power of two, so it is exact in floating
    point.

    Args:
      depth: :math:`L \ge 1`, the number of hidden layers.
      dtype: a floating dtype for the parameters.

    Returns:
      ``depth + 1`` layer dicts: ``W`` of shapes ``[1, 2]``, ``[2, 2]`` (``depth - 1`` times),
      ``[2, 1]``.

    >>> params = sawtooth_params(2)
    >>> [p["W"].shape for p in params]
    [(1, 2), (2, 2), (2, 1)]
    >>> _mlp.apply(params, jnp.array([[0.125], [0.25], [0.5]]))[:, 0]
    Array([0.5, 1. , 0. ], dtype=float32)
    """
    depth = _checks.positive_int(depth, "depth")
    half = jnp.array([0.0, -0.5], dtype)
    read = jnp.array([[2.0], [-4.0]], dtype)  # t = 2 h1 - 4 h2
    first = {"W": jnp.ones((1, 2), dtype), "b": half}
    middle = [{"W": read @ jnp.ones((1, 2), dtype), "b": half} for _ in range(depth - 1)]
    return [first, *middle, {"W": read, "b": jnp.zeros((1,), dtype)}]


# ----------------------------------------------------------------------------------------
# Exact pieces on a line
# ----------------------------------------------------------------------------------------


def linear_pieces(
    params: Params,
    lo: float,
    hi: float,
    *,
    activation: Any = "relu",
    output_activation: Any = "identity",
    rtol: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The exact linear pieces of a network :math:`\mathbb R \to \mathbb R^k` on :math:`[lo, hi]`.

    The network is pushed through layer by layer as a piecewise-linear function (see the
    module docstring): each unit's pre-activation is affine on each current interval, its
    crossings of the activation's kinks split the interval, and the activation acts piece by
    piece. Adjacent pieces whose slopes agree within ``rtol`` times the largest slope and whose
    intercepts agree within ``rtol`` times the intercept scale, for every output, are merged.
    Crossings closer than ``rtol * (hi - lo)`` to a breakpoint already there are taken to be on
    it. NumPy in float64 (the parameters are read as float64), not jitted: the number of pieces
    depends on the data.

    Args:
      params: MLP parameters whose first layer takes one input, ``W: [1, n_1]``.
      lo, hi: the interval, ``lo < hi``, both finite.
      activation: the hidden activation, one of :data:`PIECEWISE_LINEAR` (name or record).
      output_activation: the output activation, also piecewise linear.
      rtol: the relative tolerance for equal breakpoints and equal affine maps.

    Returns:
      ``(breakpoints [P + 1], slopes [P, k], intercepts [P, k])``: ``breakpoints[0] = lo``,
      ``breakpoints[-1] = hi``, and on ``[breakpoints[p], breakpoints[p + 1]]`` the network
      equals ``slopes[p] * x + intercepts[p]``.

    >>> breaks, slopes, intercepts = linear_pieces(sawtooth_params(1), 0.0, 1.0)
    >>> breaks.tolist(), slopes[:, 0].tolist(), intercepts[:, 0].tolist()
    ([0.0, 0.5, 1.0], [2.0, -2.0], [0.0, 2.0])
    """
    _input_width(params, 1)
    lo, hi = _interval(lo, hi)
    rtol = _checks.positive_float(rtol, "rtol")
    hidden = _pieces_of(activation, "activation")
    output = _pieces_of(output_activation, "output_activation")
    layers = [(np.asarray(p["W"], np.float64), np.asarray(p["b"], np.float64)) for p in params]
    if not all(np.all(np.isfinite(w)) and np.all(np.isfinite(b)) for w, b in layers):
        raise ValueError("params must be finite, got NaN or infinite weights or biases")
    tol = rtol * (hi - lo)

    xs = np.array([lo, hi])
    slopes, intercepts = np.ones((1, 1)), np.zeros((1, 1))  # the input x itself
    for i, (w, b) in enumerate(layers):
        _, kinks, act_slopes, act_intercepts = output if i == len(layers) - 1 else hidden
        az, bz = slopes @ w, intercepts @ w + b[None, :]  # pre-activations, [P, n]
        if kinks.size:
            with np.errstate(divide="ignore", invalid="ignore"):
                roots = (kinks[None, None, :] - bz[:, :, None]) / az[:, :, None]
            inside = (az[:, :, None] != 0) & (roots > xs[:-1, None, None] + tol) & (roots < xs[1:, None, None] - tol)
            new = np.sort(roots[inside])
            if new.size:
                new = new[np.concatenate([[True], np.diff(new) > tol])]
                refined = np.sort(np.concatenate([xs, new]))
                mid = 0.5 * (refined[:-1] + refined[1:])
                parent = np.searchsorted(xs, mid, side="right") - 1
                xs, az, bz = refined, az[parent], bz[parent]
        mid = 0.5 * (xs[:-1] + xs[1:])
        piece = np.searchsorted(kinks, az * mid[:, None] + bz, side="right")
        slopes = act_slopes[piece] * az
        intercepts = act_slopes[piece] * bz + act_intercepts[piece]

    scale_a = np.abs(slopes).max()
    scale_b = max(np.abs(intercepts).max(), scale_a * max(abs(lo), abs(hi)))
    same = np.all(np.abs(np.diff(slopes, axis=0)) <= rtol * scale_a, axis=1) & np.all(
        np.abs(np.diff(intercepts, axis=0)) <= rtol * scale_b, axis=1
    )
    first = np.concatenate([[True], ~same])  # the first interval of each merged piece
    breakpoints = np.concatenate([xs[:-1][first], [hi]])
    return breakpoints, slopes[first], intercepts[first]


def count_pieces(
    params: Params,
    lo: float,
    hi: float,
    *,
    activation: Any = "relu",
    output_activation: Any = "identity",
    rtol: float = 1e-9,
) -> int:
    r"""The exact number of linear pieces of a network :math:`\mathbb R \to \mathbb R^k` on :math:`[lo, hi]`.

    The number of intervals of :func:`linear_pieces` (same arguments): maximal intervals on
    which every output is affine. NumPy float64, not jitted.

    >>> [count_pieces(sawtooth_params(depth), 0.0, 1.0) for depth in (1, 2, 3, 4)]
    [2, 4, 8, 16]
    """
    _, slopes, _ = linear_pieces(params, lo, hi, activation=activation, output_activation=output_activation, rtol=rtol)
    return int(slopes.shape[0])


def count_pieces_bruteforce(
    params: Params,
    lo: float,
    hi: float,
    num: int,
    *,
    activation: Any = "relu",
    output_activation: Any = "identity",
    rtol: float = 1e-6,
) -> int:
    r"""Linear pieces counted from slope changes on a grid, a cross-check of :func:`count_pieces`.

    The network runs through :func:`fnn.mlp.apply` on ``num`` equally spaced points
    :math:`x_i` (in the dtype of the parameters); the finite-difference slopes
    :math:`d_i = (y_{i+1} - y_i) / h` change where a breakpoint falls in a cell. A change
    counts where :math:`|d_{i+1} - d_i|` exceeds both ``rtol`` times the largest slope and the
    rounding noise of the differences; one breakpoint flags one or two consecutive changes, so
    pieces are ``1 +`` the number of runs of flagged changes. Breakpoints less than two grid
    steps apart merge into one run, so the result is at most the exact count, and equal to it
    when the breakpoints are further apart than that.

    Args:
      params: MLP parameters taking one input.
      lo, hi: the interval, ``lo < hi``.
      num: the number of grid points, at least 3.
      activation, output_activation: as for :func:`fnn.mlp.apply`.
      rtol: the relative size of a slope change that counts.

    Returns:
      The estimated number of pieces, a Python int.

    >>> count_pieces_bruteforce(sawtooth_params(3), 0.0, 1.0, 1001)
    8
    """
    _input_width(params, 1)
    lo, hi = _interval(lo, hi)
    num = _checks.positive_int(num, "num")
    if num < 3:
        raise ValueError(f"num must be at least 3 grid points, got {num}")
    rtol = _checks.positive_float(rtol, "rtol")
    dtype = jnp.result_type(params[0]["W"])
    x = jnp.linspace(lo, hi, num, dtype=dtype)[:, None]
    y = np.asarray(_mlp.apply(params, x, activation=activation, output_activation=output_activation), np.float64)
    h = (hi - lo) / (num - 1)
    d = np.diff(y, axis=0) / h
    noise = 64 * float(np.finfo(dtype).eps) * (np.abs(y).max() + np.abs(d).max() * max(abs(lo), abs(hi))) / h
    threshold = max(rtol * np.abs(d).max(), noise)
    flags = np.any(np.abs(np.diff(d, axis=0)) > threshold, axis=1)
    runs = int(np.count_nonzero(flags[1:] & ~flags[:-1])) + int(flags[0]) if flags.size else 0
    return 1 + runs


def shallow_width_needed(pieces: int) -> int:
    r"""The fewest ReLUs one hidden layer needs for ``pieces`` linear pieces on a line: ``pieces - 1``.

    :math:`x \mapsto \sum_{j=1}^m a_j\,\mathrm{relu}(w_j x + c_j) + d` is affine away from the
    :math:`m` points :math:`-c_j / w_j`, so it has at most :math:`m + 1` pieces and
    :math:`m \ge P - 1`. (A lower bound; see :func:`fit_shallow_interpolant` for when
    :math:`P - 1` suffices.)

    >>> shallow_width_needed(2 ** 10)
    1023
    """
    return _checks.positive_int(pieces, "pieces") - 1


def fit_shallow_interpolant(
    params_deep: Params,
    lo: float,
    hi: float,
    *,
    activation: Any = "relu",
    output_activation: Any = "identity",
    rtol: float = 1e-9,
    dtype: Any = None,
) -> Params:
    r"""A one-hidden-layer ReLU network equal to a deep network on :math:`[lo, hi]`, one unit per breakpoint.

    With the deep network's pieces from :func:`linear_pieces` (breakpoints :math:`b_i`,
    slopes :math:`s_0, \dots, s_{P-1}`, jumps :math:`\Delta_i = s_i - s_{i-1}`):

    .. math:: f(x) = s_j (x - lo) + c_j + \sum_{b_i \text{ left of piece } j}
              \Delta_i\,\mathrm{relu}(b_i - x) + \sum_{b_i \text{ right of piece } j}
              \Delta_i\,\mathrm{relu}(x - b_i),

    exact on piece :math:`j` (where every unit is off) and with the right jump at every
    :math:`b_i`. If some piece is flat (:math:`s_j = 0` for every output) :math:`j` is that
    piece and :math:`P - 1` units suffice, the least possible; otherwise :math:`j` is the
    middle piece, and :math:`s_j (x - lo) = s_j\,\mathrm{relu}(x - lo)` on the interval takes
    one more unit: :math:`P` units.

    :math:`P - 1` units cannot do in general. With that many, every unit must put its
    breakpoint at a different :math:`b_i`, where it adds the jump :math:`\Delta_i`; a unit
    facing left contributes :math:`-\Delta_i` to the slope left of all breakpoints and one
    facing right nothing, so :math:`s_0` must be minus the sum of a subset of the jumps. For
    the sawtooth :math:`t^L` the jumps are :math:`\pm 2^{L+1}` and :math:`s_0 = 2^L`, which no
    subset sums to: one hidden layer needs exactly :math:`2^L` units, against :math:`2L` deep.

    Args:
      params_deep: MLP parameters taking one input (any depth, piecewise-linear activations).
      lo, hi: the interval, ``lo < hi``.
      activation, output_activation, rtol: as for :func:`linear_pieces`.
      dtype: the dtype of the result; by default that of ``params_deep``.

    Returns:
      Two layer dicts, ``W: [1, m]`` and ``W: [m, k]``, for :func:`fnn.mlp.apply` with
      ``activation="relu"``: :math:`m = P - 1` units if a piece is flat (one idle unit for a
      constant), :math:`m = P` otherwise.

    >>> shallow = fit_shallow_interpolant(sawtooth_params(3), 0.0, 1.0)
    >>> shallow[0]["W"].shape
    (1, 8)
    >>> x = jnp.linspace(0.0, 1.0, 9)[:, None]
    >>> bool(jnp.all(_mlp.apply(shallow, x) == _mlp.apply(sawtooth_params(3), x)))
    True
    """
    breakpoints, slopes, intercepts = linear_pieces(
        params_deep, lo, hi, activation=activation, output_activation=output_activation, rtol=rtol
    )
    if dtype is None:
        dtype = jnp.result_type(params_deep[0]["W"])
    inner, jumps = breakpoints[1:-1], np.diff(slopes, axis=0)  # [P - 1], [P - 1, k]
    pieces = slopes.shape[0]
    flat = np.flatnonzero(np.all(np.abs(slopes) <= rtol * max(np.abs(slopes).max(), 1e-300), axis=1))
    # Units left of piece j face left, the others right: at any x only the units between x and
    # piece j are active, which keeps the sum short; j is the middle piece, or the flat one
    # nearest to it.
    j = int(flat[np.argmin(np.abs(flat - pieces // 2))]) if flat.size else pieces // 2
    faces = np.where(np.arange(inner.size) < j, -1.0, 1.0)  # unit i: relu(faces[i] * (x - b_i))
    w_in, b_in, w_out = faces, -faces * inner, jumps
    bias = slopes[j] * lo + intercepts[j]  # piece j is slopes[j] * (x - lo) + bias
    if not flat.size or inner.size == 0:
        # The affine part of piece j: relu(x - lo) = x - lo on [lo, hi] (an idle unit if flat).
        w_in = np.concatenate([[1.0], w_in])
        b_in = np.concatenate([[-lo], b_in])
        w_out = np.concatenate([slopes[j][None, :], w_out])
    return [
        {"W": jnp.asarray(w_in[None, :], dtype), "b": jnp.asarray(b_in, dtype)},
        {"W": jnp.asarray(w_out, dtype), "b": jnp.asarray(bias, dtype)},
    ]


# ----------------------------------------------------------------------------------------
# Regions in the plane, on a grid
# ----------------------------------------------------------------------------------------


def activation_pattern(params: Params, x: ArrayLike, *, activation: Any = "relu") -> Array:
    r"""Which side of each kink every hidden unit's pre-activation lies on, at every input.

    For hidden layer :math:`l` and unit :math:`j` the bits are :math:`[z_{lj}(x) > k]` for each
    kink :math:`k` of the activation (one bit per ReLU: on or off). The output layer is not
    part of the pattern. Jittable and vmappable.

    Args:
      params: MLP parameters.
      x: inputs ``[..., d_0]``.
      activation: the hidden activation, one of :data:`PIECEWISE_LINEAR`.

    Returns:
      bool ``[..., B]`` with :math:`B = (\text{kinks}) \sum_{l<L} n_l`.

    >>> params = [{"W": jnp.array([[1.0, -1.0]]), "b": jnp.zeros(2)}, {"W": jnp.ones((2, 1)), "b": jnp.zeros(1)}]
    >>> activation_pattern(params, jnp.array([[2.0], [-3.0]])).tolist()
    [[True, False], [False, True]]
    """
    x = _mlp.check_input(params, x)
    act, kinks, _, _ = _pieces_of(activation, "activation")
    return _pattern(params, x, act, tuple(float(k) for k in kinks))


def _pattern(params: Params, x: Array, act: _activations.Activation, kinks: tuple[float, ...]) -> Array:
    bits = []
    a = x
    for layer in params[:-1]:
        z = _mlp.affine(layer, a)
        bits.extend(z > k for k in kinks)
        a = act(z)
    if not bits:
        return jnp.zeros((*x.shape[:-1], 0), bool)
    return jnp.concatenate(bits, axis=-1)


def _pack(bits: Array) -> Array:
    """bool ``[N, B]`` -> uint32 ``[N, W]``, 32 bits a word (one zero word when B = 0)."""
    n, b = bits.shape
    words = max(1, -(-b // 32))
    bits = jnp.pad(bits, ((0, 0), (0, 32 * words - b))).reshape(n, words, 32).astype(jnp.uint32)
    shifts = jnp.arange(32, dtype=jnp.uint32).reshape(1, 1, 32)
    return jnp.sum(bits << shifts, axis=-1, dtype=jnp.uint32)


def _grid(box: Array, resolution: int) -> Array:
    """``[resolution ** 2, 2]`` points, row-major with y as the row: ``points[i * R + j] = (x_j, y_i)``."""
    xs = jnp.linspace(box[0], box[1], resolution)
    ys = jnp.linspace(box[2], box[3], resolution)
    gx, gy = jnp.meshgrid(xs, ys)
    return jnp.stack([gx.ravel(), gy.ravel()], axis=-1)


def _distinct_rows(words: Array) -> Array:
    cols = jax.lax.sort(tuple(words[:, i] for i in range(words.shape[1])), num_keys=words.shape[1])
    new = functools.reduce(jnp.logical_or, [c[1:] != c[:-1] for c in cols])
    return 1 + jnp.sum(new)


# The four offsets that, with their opposites, make up 8-connectivity.
_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _pair_slices(resolution: int, di: int, dj: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    r = resolution
    rows_a, rows_b = slice(0, r - di), slice(di, r)
    cols_a, cols_b = (slice(0, r - dj), slice(dj, r)) if dj >= 0 else (slice(-dj, r), slice(0, r + dj))
    return (rows_a, cols_a), (rows_b, cols_b)


def _components(words: Array, resolution: int) -> Array:
    """Connected components (8-neighbours) of equal pattern: min-label hooking and pointer jumping."""
    r = resolution
    grid = words.reshape(r, r, -1)
    size = r * r
    pairs = []
    for di, dj in _OFFSETS:
        a, b = _pair_slices(r, di, dj)
        pairs.append((a, b, jnp.all(grid[a] == grid[b], axis=-1)))

    def neighbour_min(labels):
        m = labels
        for a, b, same in pairs:
            m = m.at[a].min(jnp.where(same, labels[b], size))
            m = m.at[b].min(jnp.where(same, labels[a], size))
        return m

    def body(state):
        labels, _ = state
        m = neighbour_min(labels).ravel()
        flat = labels.ravel()
        flat = flat.at[flat].min(m)  # hook each label's root onto the smallest neighbouring label
        flat = jnp.minimum(flat, m)
        flat = flat[flat]
        flat = flat[flat]
        new = flat.reshape(r, r)
        return new, jnp.any(new != labels)

    start = jnp.arange(size, dtype=jnp.int32).reshape(r, r)
    labels, _ = jax.lax.while_loop(lambda s: s[1], body, (start, jnp.array(True)))
    return jnp.sum(labels.ravel() == jnp.arange(size, dtype=jnp.int32))


@functools.partial(jax.jit, static_argnames=("resolution", "act", "kinks"))
def _grid_words(params, box, resolution, act, kinks):
    return _pack(_pattern(params, _grid(box, resolution), act, kinks))


@functools.partial(jax.jit, static_argnames=("resolution", "act", "kinks", "components"))
def _grid_counts(params, box, resolution, act, kinks, components):
    words = _grid_words(params, box, resolution, act, kinks)
    patterns = _distinct_rows(words)
    return patterns, (_components(words, resolution) if components else patterns)


class GridRegions(NamedTuple):
    """Region counts on a grid.

    Attributes:
      patterns: distinct activation patterns met: regions that the grid hits (a lower bound).
      components: grid-connected components of equal pattern (8-neighbours); at least
        ``patterns``, and larger only where the grid breaks a thin region apart.
    """

    patterns: Any
    components: Any


def _box(box: Any) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise TypeError(f"box must be four real numbers (x_lo, x_hi, y_lo, y_hi), got {box!r}") from None
    if len(values) != 4:
        raise ValueError(f"box must be four numbers (x_lo, x_hi, y_lo, y_hi), got {len(values)}")
    if not all(math.isfinite(v) for v in values) or not (values[0] < values[1] and values[2] < values[3]):
        raise ValueError(f"box must be finite with x_lo < x_hi and y_lo < y_hi, got {values}")
    return values


def _check_batched(params: Params) -> None:
    """Stacked MLP parameters: every ``W`` ``[S, in, out]`` and ``b`` ``[S, out]``, one ``S``, chaining."""
    if not isinstance(params, (list, tuple)) or not params:
        raise TypeError(f"params_batch must be a non-empty list of layer dicts, got {type(params).__name__}")
    sizes, previous = set(), None
    for i, layer in enumerate(params):
        if not isinstance(layer, dict) or set(layer) != {"W", "b"}:
            raise TypeError(f"params_batch[{i}] must be a dict with keys 'W' and 'b', got {layer!r:.80}")
        w, b = jnp.shape(layer["W"]), jnp.shape(layer["b"])
        if len(w) != 3 or b != (w[0], w[2]):
            raise ValueError(f"params_batch[{i}] must hold W [S, in, out] and b [S, out], got W {w} and b {b}")
        if previous is not None and w[1] != previous:
            raise ValueError(f"params_batch[{i}]['W'] takes {w[1]} inputs but layer {i - 1} gives {previous} outputs")
        sizes.add(w[0])
        previous = w[2]
    if len(sizes) != 1:
        raise ValueError(f"params_batch must stack the same number of networks in every leaf, got {sorted(sizes)}")


def _grid_args(params: Params, box: Any, resolution: Any, activation: Any, batched: bool):
    if batched:
        _check_batched(params)
        if jnp.shape(params[0]["W"])[1] != 2:
            raise ValueError(f"params must take a 2-D input, got a first W of shape {jnp.shape(params[0]['W'])}")
    else:
        _input_width(params, 2)
    resolution = _checks.positive_int(resolution, "resolution")
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    act, kinks, _, _ = _pieces_of(activation, "activation")
    box = jnp.asarray(_box(box), jnp.result_type(params[0]["W"]))
    return box, resolution, act, tuple(float(k) for k in kinks)


def count_regions_grid(
    params: Params, box: Sequence[float], resolution: int, *, activation: Any = "relu"
) -> GridRegions:
    r"""Linear regions of a network :math:`\mathbb R^2 \to \mathbb R^k` met on a grid over ``box``.

    The activation pattern (:func:`activation_pattern`) is computed at the
    :math:`R \times R` grid points (jitted), packed into 32-bit words and the distinct rows
    counted after a lexicographic sort. Each pattern's set of inputs is convex, so each
    distinct pattern is one region; regions narrower than the grid spacing are missed, so
    this is a lower bound on the regions inside the box that grows with ``resolution``.

    Args:
      params: MLP parameters taking two inputs, ``W: [2, n_1]``.
      box: ``(x_lo, x_hi, y_lo, y_hi)``.
      resolution: :math:`R \ge 2` grid points along each side.
      activation: the hidden activation, one of :data:`PIECEWISE_LINEAR`.

    Returns:
      :class:`GridRegions` of Python ints.

    >>> params = [{"W": jnp.array([[1.0, 0.0], [0.0, 1.0]]), "b": jnp.array([0.1, 0.2])},
    ...           {"W": jnp.ones((2, 1)), "b": jnp.zeros(1)}]
    >>> count_regions_grid(params, (-1, 1, -1, 1), 50)
    GridRegions(patterns=4, components=4)
    """
    box, resolution, act, kinks = _grid_args(params, box, resolution, activation, batched=False)
    patterns, components = _grid_counts(params, box, resolution, act, kinks, True)
    return GridRegions(int(patterns), int(components))


def region_map(params: Params, box: Sequence[float], resolution: int, *, activation: Any = "relu") -> np.ndarray:
    r"""Region ids on an :math:`R \times R` grid over ``box``, for pictures of the regions.

    Args:
      params, box, resolution, activation: as for :func:`count_regions_grid`.

    Returns:
      int ``[R, R]``: entry ``[i, j]`` is the id (0, 1, ...) of the pattern at
      ``(x_j, y_i)``, rows running up in y (``imshow(..., origin="lower", extent=box)``).

    >>> params = [{"W": jnp.array([[1.0], [0.0]]), "b": jnp.zeros(1)}, {"W": jnp.ones((1, 1)), "b": jnp.zeros(1)}]
    >>> region_map(params, (-1, 1, -1, 1), 4).tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]]
    """
    box, resolution, act, kinks = _grid_args(params, box, resolution, activation, batched=False)
    words = _grid_words(params, box, resolution, act, kinks)
    _, ids = np.unique(np.asarray(words), axis=0, return_inverse=True)
    return ids.reshape(resolution, resolution)


def region_counts(
    params_batch: Params,
    box: Sequence[float],
    resolution: int,
    *,
    activation: Any = "relu",
    components: bool = True,
    batch_size: int | None = None,
) -> GridRegions:
    r""":func:`count_regions_grid` for a batch of networks of one architecture, vmapped.

    Args:
      params_batch: MLP parameters with a leading batch axis on every leaf (as from
        :func:`random_networks`), taking two inputs.
      box, resolution, activation: as for :func:`count_regions_grid`.
      components: also count grid-connected components (else ``components`` repeats
        ``patterns``).
      batch_size: networks vmapped at a time (``jax.lax.map``), bounding memory; all by default.

    Returns:
      :class:`GridRegions` of int NumPy arrays ``[S]``.

    >>> batch = random_networks(jax.random.key(0), (4,), 3, input_dim=2)
    >>> counts = region_counts(batch, (-3, 3, -3, 3), 64)
    >>> counts.patterns.shape, bool(np.all(counts.patterns <= shallow_region_bound(4, 2)))
    ((3,), True)
    """
    box, resolution, act, kinks = _grid_args(params_batch, box, resolution, activation, batched=True)
    size = int(jnp.shape(params_batch[0]["W"])[0])
    batch_size = size if batch_size is None else _checks.positive_int(batch_size, "batch_size")
    counts = jax.lax.map(
        lambda p: _grid_counts(p, box, resolution, act, kinks, bool(components)),
        params_batch,
        batch_size=min(batch_size, size),
    )
    return GridRegions(*(np.asarray(c, np.int64) for c in counts))


# ----------------------------------------------------------------------------------------
# Random networks for equal-budget comparisons
# ----------------------------------------------------------------------------------------


def _widths(widths: Any) -> tuple[int, ...]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
        raise ValueError(f"widths must be a non-empty sequence of hidden-layer widths, got {widths!r}")
    return tuple(_checks.positive_int(w, f"widths[{i}]") for i, w in enumerate(widths))


def random_network(
    key: PRNGKey,
    widths: Sequence[int],
    *,
    input_dim: int,
    output_dim: int = 1,
    bias_std: float = 1.0,
    scheme: str = "he",
    dtype: Any = jnp.float32,
) -> Params:
    r"""A random ReLU network with hidden widths ``widths``: weights by ``scheme``, biases :math:`N(0, \sigma_b^2)`.

    Weights come from :func:`fnn.mlp.init`; its biases are zero, which would make every
    first-layer hyperplane pass through the origin, so they are redrawn with standard
    deviation ``bias_std``. Vmappable over ``key``.

    Args:
      key: a PRNG key.
      widths: hidden widths :math:`(n_1, \dots, n_L)`; ``(9,)`` is shallow, ``(3, 3, 3)`` deep.
      input_dim, output_dim: the input and output widths.
      bias_std: the standard deviation of every bias.
      scheme: the weight scheme of :func:`fnn.initializers.weights`.
      dtype: a floating dtype.

    Returns:
      MLP parameters of sizes ``(input_dim, *widths, output_dim)``.

    >>> [p["W"].shape for p in random_network(jax.random.key(0), (3, 3), input_dim=2)]
    [(2, 3), (3, 3), (3, 1)]
    """
    widths = _widths(widths)
    sizes = (_checks.positive_int(input_dim, "input_dim"), *widths, _checks.positive_int(output_dim, "output_dim"))
    k_w, k_b = jax.random.split(key)
    params = _mlp.init(k_w, sizes, scheme=scheme, dtype=dtype)
    # One draw for every bias, split by layer: fewer random-number kernels to compile.
    biases = bias_std * jax.random.normal(k_b, (sum(sizes[1:]),), dtype)
    ends = np.cumsum(sizes[1:])
    return [{"W": p["W"], "b": biases[end - n : end]} for p, n, end in zip(params, sizes[1:], ends, strict=True)]


def random_networks(
    key: PRNGKey,
    widths: Sequence[int],
    num: int,
    *,
    input_dim: int,
    output_dim: int = 1,
    bias_std: float = 1.0,
    scheme: str = "he",
    dtype: Any = jnp.float32,
) -> Params:
    """``num`` networks of :func:`random_network`, stacked on a leading axis: one compiled vmap.

    ``bias_std`` may be a traced value; the other settings fix the shapes.

    >>> batch = random_networks(jax.random.key(0), (5,), 7, input_dim=2)
    >>> batch[0]["W"].shape, batch[1]["b"].shape
    ((7, 2, 5), (7, 1))
    """
    widths = _widths(widths)
    num = _checks.positive_int(num, "num")
    return _random_networks(
        key,
        bias_std,
        widths,
        num,
        _checks.positive_int(input_dim, "input_dim"),
        _checks.positive_int(output_dim, "output_dim"),
        scheme,
        jnp.dtype(dtype),
    )


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5, 6, 7))
def _random_networks(key, bias_std, widths, num, input_dim, output_dim, scheme, dtype):
    def one(k):
        return random_network(
            k, widths, input_dim=input_dim, output_dim=output_dim, bias_std=bias_std, scheme=scheme, dtype=dtype
        )

    return jax.vmap(one)(jax.random.split(key, num))


# ----------------------------------------------------------------------------------------
# Bounds on the number of regions
# ----------------------------------------------------------------------------------------


def shallow_region_bound(n_units: int, input_dim: int) -> int:
    r"""Regions of one hidden layer of :math:`n` ReLUs on :math:`\mathbb R^d`: :math:`\sum_{j=0}^{d} \binom{n}{j}`.

    The :math:`n` hyperplanes :math:`x w_j + b_j = 0` cut :math:`\mathbb R^d` into at most this
    many regions, exactly this many in general position (Zaslavsky 1975); on a line
    (:math:`d = 1`) it is :math:`n + 1`. Exact Python integer.

    >>> shallow_region_bound(9, 2), shallow_region_bound(24, 2), shallow_region_bound(5, 1)
    (46, 301, 6)
    """
    n = _checks.nonnegative_int(n_units, "n_units")
    d = _checks.positive_int(input_dim, "input_dim")
    return sum(math.comb(n, j) for j in range(d + 1))


def deep_region_bound(widths: Sequence[int], input_dim: int, *, method: str = "serra") -> int:
    r"""An upper bound on the linear regions of a ReLU network with hidden widths :math:`n_1, \dots, n_L`.

    ``method="serra"`` (Serra, Tjandraatmadja, Ramalingam 2018, Theorem 1):

    .. math:: \sum_{(j_1, \dots, j_L) \in J} \prod_{l=1}^L \binom{n_l}{j_l}, \quad
              J = \{ j \in \mathbb Z^L : 0 \le j_l \le \min(n_0, n_1 - j_1, \dots,
              n_{l-1} - j_{l-1}, n_l) \},

    with :math:`n_0 = d`: a layer can only cut as many dimensions as survive the layers before
    it. It equals the Zaslavsky count for :math:`L = 1` and is exact for :math:`d = 1`.

    ``method="montufar"`` (Montufar 2017, *Notes on the number of linear regions of deep neural
    networks*): :math:`\prod_{l=1}^L \sum_{j=0}^{d_l} \binom{n_l}{j}` with
    :math:`d_l = \min(n_0, n_1, \dots, n_l)`, weaker.

    Exact Python integer, by dynamic programming over the surviving dimension.

    >>> deep_region_bound((9,), 2), deep_region_bound((3, 3, 3), 2), deep_region_bound((2, 2, 2), 1)
    (46, 208, 27)
    >>> deep_region_bound((3, 3, 3), 2, method="montufar")
    343
    """
    widths = _widths(widths)
    d = _checks.positive_int(input_dim, "input_dim")
    if method == "montufar":
        total, dims = 1, d
        for n in widths:
            dims = min(dims, n)
            total *= sum(math.comb(n, j) for j in range(dims + 1))
        return total
    if method != "serra":
        raise ValueError(f"method must be 'serra' or 'montufar', got {method!r}")
    # ways[k]: the weighted count of choices j_1..j_l so far whose running minimum
    # min(n_0, n_1 - j_1, ..., n_l - j_l) is k.
    ways = {d: 1}
    for n in widths:
        nxt: dict[int, int] = {}
        for k, w in ways.items():
            for j in range(min(k, n) + 1):
                k_new = min(k, n - j)
                nxt[k_new] = nxt.get(k_new, 0) + w * math.comb(n, j)
        ways = nxt
    return sum(ways.values())


def deep_region_lower_bound(widths: Sequence[int], input_dim: int) -> int:
    r"""Montufar et al. (2014, Theorem 4): some ReLU network of these widths has at least this many regions.

    .. math:: \Bigl(\prod_{l=1}^{L-1} \lfloor n_l / d \rfloor^{d}\Bigr) \sum_{j=0}^{d} \binom{n_L}{j}

    for hidden widths :math:`n_l \ge d`: each of the first :math:`L - 1` layers folds the
    input space onto itself :math:`\lfloor n_l/d \rfloor^d` times and the last layer cuts the
    folded space as a hyperplane arrangement. A bound on the maximum over weights, reached by
    constructed weights, not by random ones. Exact Python integer.

    >>> deep_region_lower_bound((3, 3, 3), 2), deep_region_lower_bound((8, 8, 8), 2)
    (7, 9472)
    """
    widths = _widths(widths)
    d = _checks.positive_int(input_dim, "input_dim")
    if min(widths) < d:
        raise ValueError(f"widths must all be at least input_dim={d} for this bound, got {widths}")
    folds = math.prod((n // d) ** d for n in widths[:-1])
    return folds * shallow_region_bound(widths[-1], d)
