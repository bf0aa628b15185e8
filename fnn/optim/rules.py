r"""The classic learning rules: Hebb, Oja, the perceptron rule and the delta rule (LMS).

Each rule is a :class:`Rule`, a pair of pure functions in the style of optax:

* ``init(params) -> state``, a ``<Name>State`` NamedTuple of counters;
* ``update(params, state, x, y, *, learning_rate) -> (params, state)``: one online step on a
  single example ``x: [d]`` with target ``y: []`` (``None`` for the unsupervised rules).

Parameters are those of a perceptron, ``{"w": [d], "b": []}`` (:mod:`fnn.perceptron`). With
:math:`\eta` the learning rate and :math:`z = w \cdot x + b`:

* ``hebb``: :math:`w \mathrel{+}= \eta\, y\, x` with :math:`y = w \cdot x`; history :math:`\|w\|`;
* ``oja``: :math:`w \mathrel{+}= \eta\, y\, (x - y\, w)` with :math:`y = w \cdot x`; history :math:`\|w\|`;
* ``perceptron``: :math:`w \mathrel{+}= \eta (y - H(z))\, x`, :math:`b \mathrel{+}= \eta (y - H(z))`;
  history: mistakes per epoch;
* ``delta``: :math:`w \mathrel{+}= \eta (y - z)\, x`, :math:`b \mathrel{+}= \eta (y - z)`; history: MSE.

**Hebb** (1949), "cells that fire together wire together", on a linear unit: the update is
:math:`w \leftarrow (I + \eta x x^\top) w`, so over an epoch :math:`w` is multiplied by a fixed
matrix with spectral radius above 1 and its norm **grows geometrically, without bound** (the
direction turns to the top principal component, as in power iteration). The bias is neither
read nor changed by the Hebbian rules: they act on centred data.

**Oja** (1982) adds a decay :math:`-\eta y^2 w` that keeps :math:`\|w\| \to 1`; for small
:math:`\eta`, :math:`w` converges to the unit eigenvector of the largest eigenvalue of
:math:`E[x x^\top]` (the covariance, for centred data): the first principal component.

**The perceptron rule** (Rosenblatt 1958) changes the weights only on a mistake
(:math:`y \ne H(z)`, targets in {0, 1}). *Convergence theorem* (Novikoff 1962): if some
:math:`u = (w^*, b^*)` separates the data with margin
:math:`\gamma = \min_i s_i (w^* \cdot x_i + b^*) / \|u\| > 0`, :math:`s_i = 2 y_i - 1`, then
from zero weights the rule makes at most :math:`(R / \gamma)^2` mistakes, with
:math:`R = \max_i \|(x_i, 1)\|`, whatever the learning rate and presentation order
(:func:`novikoff_bound`; any separating :math:`u` gives a valid bound, the optimal margin the
tightest). On non-separable data such as XOR it never converges; with a fixed order and
integer inputs the weights take finitely many values, so they cycle (Block & Levin 1970):
:func:`train` detects the repeat.

**The delta rule** (Widrow & Hoff 1960, Adaline, LMS) is online gradient descent on
:math:`\tfrac12 (y - z)^2` of the *linear* output; it classifies by thresholding :math:`z`
(at 0.5 for targets in {0, 1}, :func:`classify`). For small :math:`\eta` its end-of-epoch
weights settle near the least-squares solution (:func:`fnn.linear.least_squares`), at a
distance :math:`O(\eta)`; on XOR that solution is :math:`w = 0, b = 1/2` and misclassifies.

:func:`train` runs a rule for whole epochs as ``lax.scan`` over epochs of ``lax.scan`` over
examples, inside ``jit``. The learning rate may be traced and the order shuffled by a key, so
a sweep over rates or seeds is one ``jax.vmap``.

References: D. Hebb, *The Organization of Behavior*, 1949; F. Rosenblatt, *The perceptron*,
Psychological Review 65(6), 1958; B. Widrow, M. Hoff, *Adaptive switching circuits*, IRE
WESCON 1960; A. Novikoff, *On convergence proofs on perceptrons*, Symposium on the
Mathematical Theory of Automata, 1962; H. Block, S. Levin, *On the boundedness of an iterative
procedure for solving a system of linear inequalities*, Proc. AMS 26, 1970; E. Oja,
*Simplified neuron model as a principal component analyzer*, J. Math. Biology 15, 1982.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike, Params, PRNGKey
from fnn.nn import activations as _activations

__all__ = [
    "DeltaState",
    "HebbState",
    "OjaState",
    "PerceptronState",
    "Rule",
    "TrainResult",
    "classify",
    "delta",
    "get",
    "hebb",
    "margin",
    "names",
    "novikoff_bound",
    "oja",
    "perceptron",
    "separable_data",
    "train",
]


class Rule(NamedTuple):
    """A learning rule: ``init(params) -> state`` and
    ``update(params, state, x, y, *, learning_rate) -> (params, state)`` for one example."""

    init: Callable[[Params], Any]
    update: Callable[..., tuple[Params, Any]]


class HebbState(NamedTuple):
    """``count``: examples presented so far (int32)."""

    count: Array


class OjaState(NamedTuple):
    """``count``: examples presented so far (int32)."""

    count: Array


class PerceptronState(NamedTuple):
    """``count``: examples presented; ``mistakes``: updates made, the quantity Novikoff bounds."""

    count: Array
    mistakes: Array


class DeltaState(NamedTuple):
    """``count``: examples presented; ``sum_squared_error``: :math:`\\sum (y - z)^2` over
    presentations, each taken before its update (the online training error)."""

    count: Array
    sum_squared_error: Array


def _zero_count() -> Array:
    return jnp.zeros((), jnp.int32)


# ----------------------------------------------------------------------------------------
# The rules. Each update is one example: x [d], y [] (or None), learning_rate [].
# ----------------------------------------------------------------------------------------


def _hebb_init(params: Params) -> HebbState:
    del params
    return HebbState(_zero_count())


def _hebb_update(
    params: Params, state: HebbState, x: Array, y: None, *, learning_rate: ArrayLike
) -> tuple[Params, HebbState]:
    del y
    post = params["w"] @ x
    w = params["w"] + learning_rate * post * x
    return {**params, "w": w}, HebbState(state.count + 1)


def _oja_init(params: Params) -> OjaState:
    del params
    return OjaState(_zero_count())


def _oja_update(
    params: Params, state: OjaState, x: Array, y: None, *, learning_rate: ArrayLike
) -> tuple[Params, OjaState]:
    del y
    w = params["w"]
    post = w @ x
    return {**params, "w": w + learning_rate * post * (x - post * w)}, OjaState(state.count + 1)


def _perceptron_init(params: Params) -> PerceptronState:
    del params
    return PerceptronState(_zero_count(), _zero_count())


def _perceptron_update(
    params: Params, state: PerceptronState, x: Array, y: Array, *, learning_rate: ArrayLike
) -> tuple[Params, PerceptronState]:
    error = y - _activations.step(params["w"] @ x + params["b"])  # in {-1, 0, 1}
    # On a correct example error == 0 and both lines add exactly 0: the weights do not move.
    w = params["w"] + learning_rate * error * x
    b = params["b"] + learning_rate * error
    return {**params, "w": w, "b": b}, PerceptronState(state.count + 1, state.mistakes + (error != 0))


def _delta_init(params: Params) -> DeltaState:
    return DeltaState(_zero_count(), jnp.zeros((), params["w"].dtype))


def _delta_update(
    params: Params, state: DeltaState, x: Array, y: Array, *, learning_rate: ArrayLike
) -> tuple[Params, DeltaState]:
    error = y - (params["w"] @ x + params["b"])
    w = params["w"] + learning_rate * error * x
    b = params["b"] + learning_rate * error
    return {**params, "w": w, "b": b}, DeltaState(state.count + 1, state.sum_squared_error + error**2)


hebb = Rule(_hebb_init, _hebb_update)
"""Hebb's rule on a linear unit, :math:`w \\mathrel{+}= \\eta (w \\cdot x) x`; unsupervised, unbounded."""

oja = Rule(_oja_init, _oja_update)
"""Oja's rule, :math:`w \\mathrel{+}= \\eta y (x - y w)`; converges to the first principal component."""

perceptron = Rule(_perceptron_init, _perceptron_update)
"""Rosenblatt's perceptron rule, :math:`w \\mathrel{+}= \\eta (y - H(w \\cdot x + b)) x`; targets in {0, 1}."""

delta = Rule(_delta_init, _delta_update)
"""The delta rule (Adaline, Widrow-Hoff LMS), :math:`w \\mathrel{+}= \\eta (y - w \\cdot x - b) x`."""

_RULES: dict[str, Rule] = {"hebb": hebb, "oja": oja, "perceptron": perceptron, "delta": delta}
_SUPERVISED = ("perceptron", "delta")


def names() -> tuple[str, ...]:
    """The names :func:`get` and :func:`train` accept.

    >>> names()
    ('delta', 'hebb', 'oja', 'perceptron')
    """
    return tuple(sorted(_RULES))


def get(rule: str | Rule) -> Rule:
    """A rule by name; a :class:`Rule` of this module passes through.

    >>> get("delta") is delta
    True
    """
    return _RULES[_rule_name(rule)]


def _rule_name(rule: str | Rule) -> str:
    if isinstance(rule, str):
        if rule not in _RULES:
            raise ValueError(f"unknown rule {rule!r}; known rules: {', '.join(names())}")
        return rule
    for name, known in _RULES.items():
        if rule == known:
            return name
    raise ValueError(
        f"train knows the rules {', '.join(names())} (their histories and convergence tests); got {rule!r}"
    )


# ----------------------------------------------------------------------------------------
# Per-epoch reports: what the history records and when a run has converged.
# ----------------------------------------------------------------------------------------


def _mistakes(before: Params, after: Params, s0: Any, s1: Any, x: Array, y: Array, prev: Array, tol: float):
    del before, after, x, y, prev, tol
    count = (s1.mistakes - s0.mistakes).astype(s1.count.dtype)
    return count, count == 0


def _mse(before: Params, after: Params, s0: Any, s1: Any, x: Array, y: Array, prev: Array, tol: float):
    del before, s0, s1
    value = jnp.mean((x @ after["w"] + after["b"] - y) ** 2)
    return value, jnp.abs(value - prev) < tol


def _safe_norm(v: Array) -> Array:
    # Scaled so that Hebb's weights can grow to the largest finite floats before the norm overflows.
    scale = jnp.max(jnp.abs(v))
    safe = jnp.where(scale > 0, scale, jnp.ones_like(scale))
    return safe * jnp.sqrt(jnp.sum((v / safe) ** 2))


def _norm(before: Params, after: Params, s0: Any, s1: Any, x: Array, y: Array, prev: Array, tol: float):
    del s0, s1, x, y, prev
    value = _safe_norm(after["w"])
    return value, _safe_norm(after["w"] - before["w"]) <= tol * value


_REPORTS = {"perceptron": _mistakes, "delta": _mse, "hebb": _norm, "oja": _norm}


class TrainResult(NamedTuple):
    """What :func:`train` returns; a pytree, so it comes out of ``jax.vmap`` stacked.

    Attributes:
      params: the final ``{"w": [d], "b": []}`` (those at convergence, if it converged).
      state: the rule's final state (e.g. ``state.mistakes``, the total for Novikoff's bound).
      history: ``[epochs]``, one value per epoch: mistakes made during the epoch (perceptron),
        MSE of the linear output on all of ``x`` at the end of the epoch (delta), or
        :math:`\\|w\\|` at the end of the epoch (Hebb, Oja). After convergence it repeats the
        last value; from an epoch in which an update or the value turned non-finite it is NaN.
      converged: whether the convergence test held at some epoch: an epoch with no mistake
        (perceptron), an MSE change below ``tol`` (delta), a relative weight change
        :math:`\\|\\Delta w\\| \\le` ``tol`` :math:`\\|w\\|` over an epoch (Hebb, Oja).
      epochs_to_converge: the epoch (1-based) where it first held, -1 if never. From then on
        the parameters are frozen.
      cycled: with a fixed order, the end-of-epoch parameters repeated earlier ones without
        convergence, so the run is periodic and never converges. Always False when shuffled.
      cycle_epoch: the epoch (1-based) at whose end the first repeat was seen, -1 if none.
      cycle_length: the period of that cycle in epochs, -1 if none.
    """

    params: Params
    state: Any
    history: Array
    converged: Array
    epochs_to_converge: Array
    cycled: Array
    cycle_epoch: Array
    cycle_length: Array


def train(
    rule: str | Rule,
    params: Params,
    x: ArrayLike,
    y: ArrayLike | None = None,
    *,
    learning_rate: ArrayLike,
    epochs: int,
    key: PRNGKey | None = None,
    shuffle: bool = False,
    tol: float = 1e-6,
) -> TrainResult:
    r"""Train ``params`` with an online rule for ``epochs`` passes over ``(x, y)``, compiled.

    Each epoch presents every example once, in the order of ``x`` or, with ``shuffle``, in a
    fresh permutation drawn from ``key``. The loop always runs ``epochs`` epochs (a run that
    never converges, such as the perceptron rule on XOR, stops there) and freezes the
    parameters once the convergence test holds. With a fixed order the end-of-epoch parameters
    fully determine the rest of the run, so they are kept and compared exactly: a repeat
    without convergence is a cycle. The comparison is exact, so the detection is certain when
    the updates are exact in floating point (integer inputs, a learning rate that is a power
    of two); from zero weights the perceptron rule's decisions do not depend on the learning
    rate in exact arithmetic, but ties :math:`w \cdot x + b = 0` may round either way.

    An update that would make the parameters non-finite (Hebb overflowing, a NaN learning rate)
    is not applied, and no update follows: the parameters stay at their last finite value and
    the history is NaN from that epoch on (:func:`fnn.checking.raise_if_nonfinite` names it).
    The same happens when the recorded value itself is not finite.

    Args:
      rule: ``"perceptron"``, ``"delta"``, ``"hebb"``, ``"oja"`` or one of those :class:`Rule` s.
      params: the start, ``{"w": [d], "b": []}`` in the dtype of ``x``.
      x: inputs ``[N, d]``, floating point.
      y: targets ``[N]``: in {0, 1} for the perceptron rule, real for the delta rule;
        ``None`` for Hebb and Oja.
      learning_rate: :math:`\eta > 0`, a Python float or a (possibly traced) scalar.
      epochs: the number of passes, a positive int (static).
      key: a PRNG key, required with ``shuffle=True`` and refused without.
      shuffle: present the examples in a new random order each epoch.
      tol: the convergence tolerance of the delta, Hebb and Oja rules (static, positive).

    Returns:
      a :class:`TrainResult`.

    Raises:
      ValueError, TypeError: on shapes, dtypes, a bad ``epochs`` or ``tol``, a missing or
        unexpected ``y`` or ``key``; on concrete input, targets outside {0, 1} for the
        perceptron rule and a non-positive learning rate. Under a transformation those two
        value checks make the history NaN instead.

    >>> from fnn import perceptron as p
    >>> x, y = p.truth_table("and")
    >>> result = train("perceptron", p.init(2), x, y, learning_rate=1.0, epochs=10)
    >>> result.history
    Array([2., 3., 3., 2., 1., 0., 0., 0., 0., 0.], dtype=float32)
    >>> bool(result.converged), int(result.epochs_to_converge), p.apply(result.params, x)
    (True, 6, Array([0., 0., 0., 1.], dtype=float32))
    >>> xor = train("perceptron", p.init(2), *p.truth_table("xor"), learning_rate=1.0, epochs=10)
    >>> bool(xor.converged), bool(xor.cycled), int(xor.cycle_epoch), int(xor.cycle_length)
    (False, True, 3, 1)
    """
    name = _rule_name(rule)
    epochs = _checks.positive_int(epochs, "epochs")
    tol = _checks.positive_float(tol, "tol")
    x = _checks.float_array(x, "x")
    _checks.ndim_in(x, "x", (2,))
    _checks.nonempty_batch(x, "x")
    n, d = x.shape
    if not isinstance(params, dict) or set(params) != {"w", "b"}:
        raise ValueError(f"params must be a dict with keys 'w' [d] and 'b' [], got {params!r}")
    w, b = jnp.asarray(params["w"]), jnp.asarray(params["b"])
    if w.shape != (d,) or b.shape != ():
        raise ValueError(f"params must hold w [{d}] and b [] for x [{n}, {d}], got w {w.shape} and b {b.shape}")
    if w.dtype != x.dtype or b.dtype != x.dtype:
        raise TypeError(f"params and x must share a dtype, got w {w.dtype}, b {b.dtype} and x {x.dtype}")

    if name in _SUPERVISED:
        if y is None:
            raise ValueError(f"the {name} rule is supervised: pass targets y [{n}]")
        y = jnp.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y must have shape ({n},) to match x {x.shape}, got {y.shape}")
        if name == "perceptron":
            ok_y = _checks.require(
                (y == 0) | (y == 1), "y must hold 0 or 1 for the perceptron rule, got values outside {0, 1}"
            )
        else:
            ok_y = True
        y = y.astype(x.dtype)
    else:
        if y is not None:
            raise ValueError(f"the {name} rule is unsupervised: pass y=None")
        ok_y = True
        y = jnp.zeros((n,), x.dtype)  # a placeholder the scan can slice; the update ignores it

    if shuffle and key is None:
        raise ValueError("shuffle=True requires a key (a jax.random key) to draw each epoch's order")
    if not shuffle and key is not None:
        raise ValueError("a key was given but shuffle=False: the order is fixed; pass shuffle=True to use it")

    learning_rate = jnp.asarray(learning_rate)
    if learning_rate.ndim:
        raise ValueError(f"learning_rate must be a scalar, got shape {learning_rate.shape}")
    ok_lr = _checks.require(learning_rate > 0, "learning_rate must be positive")
    # Cast to the params' dtype: a float64 sweep must not promote float32 params (scan refuses).
    learning_rate = _checks.poison(_checks.poison(learning_rate.astype(x.dtype), ok_lr), ok_y)
    return _train(name, {"w": w, "b": b}, x, y, learning_rate, key, epochs=epochs, shuffle=shuffle, tol=tol)


@functools.partial(jax.jit, static_argnames=("name", "epochs", "shuffle", "tol"))
def _train(
    name: str,
    params: Params,
    x: Array,
    y: Array,
    learning_rate: Array,
    key: PRNGKey | None,
    *,
    epochs: int,
    shuffle: bool,
    tol: float,
) -> TrainResult:
    rule, report = _RULES[name], _REPORTS[name]
    n = x.shape[0]
    supervised = name in _SUPERVISED

    def flat(p: Params) -> Array:
        return jnp.concatenate([p["w"], p["b"][None]])

    def example(carry, i):
        p, s, bad = carry
        new_p, new_s = rule.update(p, s, x[i], y[i] if supervised else None, learning_rate=learning_rate)
        bad = bad | ~jnp.all(jnp.isfinite(flat(new_p)))

        def keep(old, new):
            return jnp.where(bad, old, new)

        return (jax.tree.map(keep, p, new_p), jax.tree.map(keep, s, new_s), bad), None

    def epoch(carry, inputs):
        p, s, prev, done, bad, past, k, conv_epoch, cyc_epoch, cyc_len = carry
        order = jax.random.permutation(inputs, n) if shuffle else jnp.arange(n)
        (new_p, new_s, new_bad), _ = jax.lax.scan(example, (p, s, bad), order)
        value, conv = report(p, new_p, s, new_s, x, y, prev, tol)
        new_bad = new_bad | ~jnp.isfinite(value)  # e.g. a norm beyond the largest float
        # Frozen after convergence: the old parameters, state and history value carry on.
        new_p = jax.tree.map(lambda old, new: jnp.where(done, old, new), p, new_p)
        new_s = jax.tree.map(lambda old, new: jnp.where(done, old, new), s, new_s)
        value = jnp.where(done, prev, jnp.where(new_bad, jnp.nan, value))
        conv = conv & ~new_bad & ~done
        conv_epoch = jnp.where(conv, k + 1, conv_epoch)
        if past is not None:
            # Row j of past holds the parameters at the end of epoch j (row 0: the start).
            seen = jnp.all(past == flat(new_p)[None, :], axis=1) & (jnp.arange(epochs + 1) <= k)
            repeat = jnp.any(seen) & ~conv & ~done & ~new_bad & (cyc_epoch < 0)
            cyc_len = jnp.where(repeat, k + 1 - jnp.argmax(seen).astype(jnp.int32), cyc_len)
            cyc_epoch = jnp.where(repeat, k + 1, cyc_epoch)
            past = past.at[k + 1].set(flat(new_p))
        carry = (new_p, new_s, value, done | conv, new_bad, past, k + 1, conv_epoch, cyc_epoch, cyc_len)
        return carry, value

    state = rule.init(params)
    start, _ = report(params, params, state, state, x, y, jnp.zeros((), x.dtype), tol)
    minus_one = jnp.full((), -1, jnp.int32)
    past = None if shuffle else jnp.full((epochs + 1, x.shape[1] + 1), jnp.nan, x.dtype).at[0].set(flat(params))
    keys = jax.random.split(key, epochs) if shuffle else None
    carry = (
        params,
        state,
        start.astype(x.dtype),
        jnp.asarray(False),
        jnp.asarray(False),
        past,
        jnp.zeros((), jnp.int32),
        minus_one,
        minus_one,
        minus_one,
    )
    (params, state, _, done, _, _, _, conv_epoch, cyc_epoch, cyc_len), history = jax.lax.scan(
        epoch, carry, keys, length=epochs
    )
    return TrainResult(params, state, history, done, conv_epoch, cyc_epoch >= 0, cyc_epoch, cyc_len)


# ----------------------------------------------------------------------------------------
# Classification, margins and the perceptron convergence theorem.
# ----------------------------------------------------------------------------------------


def _check_xy(params: Params, x: ArrayLike, y: ArrayLike | None) -> tuple[Array, Array, Array, Array | None]:
    x = _checks.float_array(x, "x")
    _checks.ndim_in(x, "x", (2,))
    _checks.nonempty_batch(x, "x")
    w, b = jnp.asarray(params["w"], x.dtype), jnp.asarray(params["b"], x.dtype)
    if w.shape != x.shape[1:] or b.shape != ():
        raise ValueError(f"params must hold w [{x.shape[1]}] and b [] for x {x.shape}, got w {w.shape} and b {b.shape}")
    if y is None:
        return x, w, b, None
    y = jnp.asarray(y)
    if y.shape != x.shape[:1]:
        raise ValueError(f"y must have shape ({x.shape[0]},) to match x {x.shape}, got {y.shape}")
    ok = _checks.require((y == 0) | (y == 1), "y must hold 0 or 1, got values outside {0, 1}")
    return x, w, b, _checks.poison(y.astype(x.dtype), ok)


def classify(params: Params, x: ArrayLike, threshold: ArrayLike = 0.0) -> Array:
    r"""Class labels :math:`H(w \cdot x + b - \theta)` in {0, 1} for inputs ``x: [N, d]``.

    ``threshold`` :math:`\theta = 0` is the perceptron's decision; use 0.5 for the delta rule
    trained on targets in {0, 1}.

    >>> classify({"w": jnp.array([0.5, 0.5]), "b": jnp.array(-0.25)}, jnp.array([[0.0, 1.0], [1.0, 1.0]]), 0.5)
    Array([0., 1.], dtype=float32)
    """
    x, w, b, _ = _check_xy(params, x, None)
    return _activations.step(x @ w + b - threshold)


def margin(params: Params, x: ArrayLike, y: ArrayLike) -> Array:
    r"""The geometric margin :math:`\min_i s_i (w \cdot x_i + b) / \|(w, b)\|`, :math:`s_i = 2 y_i - 1`.

    Measured in the augmented space :math:`(x, 1)` where the perceptron rule's bias is a
    weight, as in Novikoff's theorem. Positive exactly when ``params`` separate the classes
    strictly; a lower bound on the best margin of any separating hyperplane.

    >>> from fnn import perceptron as p
    >>> x, y = p.truth_table("and")
    >>> margin(p.gate("and"), x, y)  # 0.5 / |(1, 1, -1.5)|
    Array(0.24253564, dtype=float32)
    """
    x, w, b, y = _check_xy(params, x, y)
    signed = (2 * y - 1) * (x @ w + b)
    return jnp.min(signed) / jnp.sqrt(w @ w + b**2)


def novikoff_bound(params: Params, x: ArrayLike, y: ArrayLike) -> Array:
    r"""Novikoff's bound :math:`(R / \gamma)^2` on the perceptron rule's mistakes from zero weights.

    :math:`R = \max_i \|(x_i, 1)\|` and :math:`\gamma` is :func:`margin` of ``params``, which
    must separate the data (a concrete non-separating ``params`` is a ``ValueError``; traced,
    the bound is NaN).

    Proof sketch: each mistake adds :math:`\eta s_i (x_i, 1)` with
    :math:`s_i (w \cdot x_i + b) \le 0`, so :math:`u \cdot w` grows by at least
    :math:`\eta \gamma \|u\|` and :math:`\|w\|^2` by at most :math:`\eta^2 R^2`; after k mistakes
    :math:`k \eta \gamma \le \|w\| \le \sqrt{k} \eta R` by Cauchy-Schwarz.

    >>> from fnn import perceptron as p
    >>> x, y = p.truth_table("or")
    >>> novikoff_bound(p.gate("or"), x, y)  # R^2 = 3, gamma = 0.5 / sqrt(2.25)
    Array(27., dtype=float32)
    """
    gamma = margin(params, x, y)
    x = jnp.asarray(x)
    ok = _checks.require(gamma > 0, "params must separate the data (positive margin) for Novikoff's bound")
    radius_sq = jnp.max(jnp.sum(x**2, axis=1)) + 1
    return _checks.poison(radius_sq / gamma**2, ok)


def separable_data(
    key: PRNGKey, n: int, d: int, *, margin: ArrayLike = 0.1, dtype: Any = jnp.float32
) -> tuple[Array, Array, Params]:
    r"""Random linearly separable data with a known separating hyperplane of margin at least ``margin``.

    Draws :math:`x_i \sim N(0, I_d)`, a random hyperplane :math:`u = (w, b)` normalised to
    :math:`\|u\| = 1`, labels :math:`y_i = H(w \cdot x_i + b)`, then pushes every point along
    :math:`w` away from the hyperplane by ``margin`` (in units of :math:`\|u\|`), so that
    ``margin(u, x, y) >= margin``. ``margin`` may be traced (a sweep over margins is one
    ``jax.vmap``); a non-positive one is a ``ValueError`` when concrete and NaN data when traced.

    Returns:
      ``(x [n, d], y [n] in {0, 1}, {"w": [d], "b": []})``.

    >>> x, y, u = separable_data(jax.random.key(0), 50, 3, margin=0.2)
    >>> bool(margin(u, x, y) >= 0.2 - 1e-6)
    True
    """
    n = _checks.positive_int(n, "n")
    d = _checks.positive_int(d, "d")
    margin = jnp.asarray(margin, dtype)
    if margin.ndim:
        raise ValueError(f"margin must be a scalar, got shape {margin.shape}")
    ok = _checks.require(margin > 0, "margin must be positive")
    return _separable_data(key, _checks.poison(margin, ok), n=n, d=d, dtype=jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnames=("n", "d", "dtype"))
def _separable_data(key: PRNGKey, margin: Array, *, n: int, d: int, dtype: Any) -> tuple[Array, Array, Params]:
    k_x, k_u = jax.random.split(key)
    x = jax.random.normal(k_x, (n, d), dtype)
    u = jax.random.normal(k_u, (d + 1,), dtype)
    u = u / jnp.linalg.norm(u)
    w, b = u[:d], 0.5 * u[d]  # a smaller offset keeps both classes populated
    u_norm = jnp.sqrt(w @ w + b**2)
    w, b = w / u_norm, b / u_norm
    sign = jnp.where(x @ w + b >= 0, 1.0, -1.0).astype(dtype)
    x = x + (sign * margin)[:, None] * w[None, :] / (w @ w)
    return x, (sign + 1) / 2, {"w": w, "b": b}
