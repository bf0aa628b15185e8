r"""Bayesian optimisation of hyperparameters: a GP surrogate, expected improvement, batches of q.

**Search space.** A :class:`Box` names each hyperparameter with its range; log-scaled ones
(learning rate, weight decay) are searched uniformly in :math:`\log_{10}`. Every point is
handled in the unit cube: with :math:`a_j, b_j` the ends of dimension :math:`j` (their
:math:`\log_{10}` for a log dimension),

.. math:: u_j = \frac{t(v_j) - a_j}{b_j - a_j} \in [0, 1], \qquad t(v) = \log_{10} v
          \text{ or } v .

**Surrogate.** A Gaussian process (:mod:`fnn.gaussian_process`; Matérn 5/2 ARD kernel,
constant mean) on the unit cube, fitted to the standardised observations
:math:`z = (y - \bar y) / s`.

**Acquisition.** For minimisation, with the incumbent :math:`z^* = \min_i z_i` and the
posterior :math:`\mu(u), \sigma^2(u)` of the latent function, the expected improvement is
(Jones, Schonlau, Welch 1998)

.. math:: \mathrm{EI}(u) = \mathbb E\,[\max(z^* - f(u), 0)] = \sigma\, h(\zeta), \qquad
          h(\zeta) = \zeta\,\Phi(\zeta) + \varphi(\zeta), \qquad \zeta = \frac{z^* - \mu}{\sigma}.

It is computed in log space (Ament et al. 2023): :math:`\log h` directly for
:math:`\zeta > -1`; for :math:`-12 < \zeta \le -1` as
:math:`\log\varphi(\zeta) + \log(1 - |\zeta|\, \mathrm{erfcx}(|\zeta|/\sqrt2) \sqrt{\pi/2})`,
which avoids the cancellation of :math:`\zeta\Phi(\zeta) + \varphi(\zeta)`; below
:math:`-12` by the asymptotic series :math:`h(\zeta) = \varphi(\zeta)\,\zeta^{-2}
\sum_k (-1)^k (2k+1)!!\, \zeta^{-2k}`. So :math:`\log\mathrm{EI}` stays finite and has useful
gradients where EI itself underflows to 0, and EI :math:`= \exp(\log \mathrm{EI}) \ge 0`
exactly. :math:`\sigma^2` is clamped below at :math:`10^{-18}`.

It is maximised over the cube by scoring many candidates (uniform draws, and a quarter of them
Gaussian perturbations, s.d. 0.05, of the incumbent), then running projected Adam on
:math:`\log\mathrm{EI}` from the best few of them at once (``jax.vmap``), keeping the best
point seen.

**Batches.** The q points of a round come from the *kriging believer* (Ginsbourger, Le Riche,
Carraro 2010): maximise EI, add the point to the data with the posterior mean as a fantasy
observation (same hyperparameters, the incumbent updated), condition again, repeat q times.
A fantasy point has almost no posterior variance, so EI there is ~0 and the next point goes
elsewhere. A whole proposal (standardise, fit the GP, q rounds of acquisition) is one compiled
function of arrays padded to the final budget, so every round reuses one compilation.

**Search loop.** :func:`minimize` evaluates an initial random design, then ``rounds`` rounds of
q proposals; :func:`random_search` draws every round uniformly from the box (Bergstra &
Bengio 2012). Both call ``objective`` once per round with a dict of ``[q]`` arrays, so a
vmapped training run evaluates a whole round in one compiled call.

**Failed evaluations.** An objective value that is NaN or infinite (a diverged training run)
is kept as is in the returned :class:`Trace`, never counts as the best, and is shown to the
surrogate as the worst finite value observed so far (0 before any finite value), so the
search steers away from it without a made-up scale.

References: J. Snoek, H. Larochelle, R. P. Adams, *Practical Bayesian optimization of machine
learning algorithms*, NeurIPS 2012; D. R. Jones, M. Schonlau, W. J. Welch, *Efficient global
optimization of expensive black-box functions*, J. Global Optim. 13, 1998; D. Ginsbourger,
R. Le Riche, L. Carraro, *Kriging is well-suited to parallelize optimization*, in
Computational Intelligence in Expensive Optimization Problems, Springer 2010; S. Ament et al.,
*Unexpected improvements to expected improvement for Bayesian optimization*, NeurIPS 2023;
J. Bergstra, Y. Bengio, *Random search for hyper-parameter optimization*, JMLR 13, 2012.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn._types import Array, ArrayLike, PRNGKey
from fnn.optim import optimizers as _optimizers
from fnn.selection import gaussian_process as _gp

__all__ = [
    "BRANIN_MINIMUM",
    "HARTMANN3_MINIMUM",
    "Box",
    "Trace",
    "branin",
    "expected_improvement",
    "from_unit",
    "hartmann3",
    "log_expected_improvement",
    "minimize",
    "propose",
    "random_search",
    "sample",
    "to_unit",
]

_VARIANCE_FLOOR = 1e-18
_SERIES_FROM = 12.0  # below zeta = -12 the asymptotic series of h is used
_ASCENT_RATE = 0.01  # Adam's step on the unit cube when refining the acquisition's maximum

Objective = Callable[[dict[str, Array]], ArrayLike]


# ----------------------------------------------------------------------------------------
# The search space
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Box:
    """A box of named hyperparameters, some searched on a log scale. Frozen and hashable.

    Attributes:
      names: the hyperparameters' names, unique non-empty strings (the keys of the dicts that
        :func:`sample` and :func:`from_unit` return).
      lows: the lower ends, finite, each below its ``highs`` entry (and positive where ``log``).
      highs: the upper ends.
      log: one bool for all dimensions or one per dimension; True searches
        :math:`\\log_{10}` of the value uniformly.

    >>> box = Box(("learning_rate", "weight_decay"), (1e-4, 1e-6), (1.0, 0.1), log=True)
    >>> box.dim, box.log
    (2, (True, True))
    """

    names: tuple[str, ...]
    lows: tuple[float, ...]
    highs: tuple[float, ...]
    log: tuple[bool, ...] | bool = False

    def __post_init__(self) -> None:
        names = self.names
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise TypeError(f"names must be a sequence of strings, got {names!r}")
        names = tuple(names)
        if not names:
            raise ValueError("names must name at least one hyperparameter, got none")
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name:
                raise ValueError(f"names[{i}] must be a non-empty string, got {name!r}")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"names must be unique, got {repeated} more than once")
        d = len(names)
        ends = {}
        for field in ("lows", "highs"):
            value = getattr(self, field)
            try:
                value = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                raise TypeError(f"{field} must be a sequence of {d} real numbers, got {value!r}") from None
            if len(value) != d:
                raise ValueError(f"{field} must have one entry per name ({d}), got {len(value)}")
            if not all(math.isfinite(v) for v in value):
                raise ValueError(f"{field} must be finite, got {value}")
            ends[field] = value
        log = self.log
        if isinstance(log, (bool, np.bool_)):
            log = (bool(log),) * d
        elif not isinstance(log, Sequence) or not all(isinstance(b, (bool, np.bool_)) for b in log):
            raise TypeError(f"log must be a bool or a sequence of {d} bools, got {log!r}")
        log = tuple(bool(b) for b in log)
        if len(log) != d:
            raise ValueError(f"log must have one entry per name ({d}), got {len(log)}")
        for i, (lo, hi, lg) in enumerate(zip(ends["lows"], ends["highs"], log, strict=True)):
            if not lo < hi:
                raise ValueError(
                    f"lows must be below highs, got lows[{i}] = {lo:g} >= highs[{i}] = {hi:g} ({names[i]})"
                )
            if lg and lo <= 0:
                raise ValueError(f"lows must be positive for a log dimension, got lows[{i}] = {lo:g} ({names[i]})")
        for field, value in (("names", names), ("lows", ends["lows"]), ("highs", ends["highs"]), ("log", log)):
            object.__setattr__(self, field, value)

    @property
    def dim(self) -> int:
        """The number of hyperparameters."""
        return len(self.names)

    def _ends(self) -> tuple[np.ndarray, np.ndarray]:
        """The ends in search coordinates (log10 for log dimensions), as float64 NumPy arrays."""

        def search(values):
            return np.array([math.log10(v) if lg else v for v, lg in zip(values, self.log, strict=True)])

        return search(self.lows), search(self.highs)


def _box(box: Any) -> Box:
    if not isinstance(box, Box):
        raise TypeError(f"box must be a Box, got {type(box).__name__}")
    return box


def to_unit(box: Box, values: Mapping[str, ArrayLike]) -> Array:
    r"""Map named values into the unit cube: :math:`u_j = (t(v_j) - a_j) / (b_j - a_j)`.

    Values outside the box map outside :math:`[0, 1]` (they are not clipped).

    Args:
      box: the :class:`Box`.
      values: a dict with exactly ``box.names`` as keys, each a float array of one common
        shape ``S``; positive for log dimensions.

    Returns:
      ``S + (d,)``, dimension ``j`` in the last axis.

    >>> box = Box(("lr", "width"), (1e-4, 8.0), (1.0, 64.0), log=(True, False))
    >>> [round(float(u), 4) for u in to_unit(box, {"lr": 1e-2, "width": 36.0})]
    [0.5, 0.5]
    """
    box = _box(box)
    if not isinstance(values, Mapping) or set(values) != set(box.names):
        got = sorted(values) if isinstance(values, Mapping) else type(values).__name__
        raise ValueError(f"values must be a dict with keys {list(box.names)}, got {got}")
    arrays = [_checks.float_array(values[n], f"values[{n!r}]") for n in box.names]
    for n, a in zip(box.names, arrays, strict=True):
        _checks.same_shape(a, arrays[0], f"values[{n!r}]", f"values[{box.names[0]!r}]")
    dtype = jnp.result_type(*arrays)
    lows, highs = box._ends()
    columns, oks = [], []
    for j, (a, lg) in enumerate(zip(arrays, box.log, strict=True)):
        a = a.astype(dtype)
        if lg:
            oks.append(_checks.require(a > 0, f"values[{box.names[j]!r}] must be positive (a log dimension)"))
            a = jnp.log10(a)
        low, width = float(lows[j]), float(highs[j] - lows[j])  # Python floats: no promotion
        columns.append((a - low) / width)
    unit = jnp.stack(columns, axis=-1)
    for ok in oks:
        unit = _checks.poison(unit, ok)
    return unit


def from_unit(box: Box, unit: ArrayLike) -> dict[str, Array]:
    r"""Map points of the unit cube back to named values: :math:`t^{-1}(a_j + u_j (b_j - a_j))`.

    Args:
      box: the :class:`Box`.
      unit: ``S + (d,)`` float array.

    Returns:
      A dict name -> ``S`` array, ready to pass as a (vmapped) hyperparameter dict.

    >>> box = Box(("lr",), (1e-4,), (1.0,), log=True)
    >>> round(float(from_unit(box, jnp.array([0.25]))["lr"]), 6)
    0.001
    """
    box = _box(box)
    unit = _checks.float_array(unit, "unit")
    if unit.ndim < 1 or unit.shape[-1] != box.dim:
        raise ValueError(f"unit must have shape [..., {box.dim}] (one column per name), got {unit.shape}")
    lows, highs = box._ends()
    out = {}
    for j, (name, lg) in enumerate(zip(box.names, box.log, strict=True)):
        t = float(lows[j]) + unit[..., j] * float(highs[j] - lows[j])
        out[name] = jnp.power(10.0, t).astype(unit.dtype) if lg else t
    return out


def sample(box: Box, key: PRNGKey, n: int) -> tuple[dict[str, Array], Array]:
    """``n`` points uniform in the box (log-uniform in log dimensions).

    Args:
      box: the :class:`Box`.
      key: a PRNG key.
      n: the number of points.

    Returns:
      ``(values, unit)``: a dict name -> ``[n]`` array (a hyperparameter dict for a vmapped
      fit) and the same points in the unit cube, ``[n, d]``, in the default float dtype.

    >>> values, unit = sample(Box(("lr", "wd"), (1e-4, 1e-6), (1.0, 0.1), log=True), jax.random.key(0), 5)
    >>> values["lr"].shape, unit.shape, bool(jnp.all((unit >= 0) & (unit <= 1)))
    ((5,), (5, 2), True)
    """
    box = _box(box)
    n = _checks.positive_int(n, "n")
    return _sample(box, key, n)


@functools.partial(jax.jit, static_argnums=(0, 2))
def _sample(box: Box, key: PRNGKey, n: int) -> tuple[dict[str, Array], Array]:
    unit = jax.random.uniform(key, (n, box.dim), jnp.zeros(()).dtype)
    return from_unit(box, unit), unit


# The search loops map every batch through this: compiled once per box and batch shape.
_from_unit = jax.jit(from_unit, static_argnums=0)


# ----------------------------------------------------------------------------------------
# Expected improvement
# ----------------------------------------------------------------------------------------

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
# (2k+1)!! for k = 1..7: the asymptotic series of h(z) / (phi(z) / z^2) in 1 / z^2.
_SERIES = (3.0, 15.0, 105.0, 945.0, 10395.0, 135135.0, 2027025.0)


def _log_h(z: Array) -> Array:
    """log(z Phi(z) + phi(z)), finite for every finite z; each branch sees only safe inputs."""
    upper = z > -1
    middle = ~upper & (z > -_SERIES_FROM)
    za = jnp.where(upper, z, 0.0)
    log_upper = jnp.log(za * jax.scipy.special.ndtr(za) + jnp.exp(-0.5 * za * za - _LOG_SQRT_2PI))
    xm = jnp.where(middle, -z, 2.0)
    # h = phi(z) (1 - x Phi(-x)/phi(x)) with x = -z, and Phi(-x)/phi(x) = erfcx(x/sqrt2) sqrt(pi/2).
    ratio = xm * jax.scipy.special.erfcx(xm / math.sqrt(2.0)) * math.sqrt(0.5 * math.pi)
    log_middle = -0.5 * xm * xm - _LOG_SQRT_2PI + jnp.log1p(-ratio)
    xl = jnp.where(upper | middle, _SERIES_FROM, -z)
    inv = 1.0 / (xl * xl)
    series = jnp.zeros_like(inv)  # sum_k (-1)^k (2k+1)!! inv^k for k = 1..7, by Horner's rule
    for k in range(len(_SERIES), 0, -1):
        series = inv * ((-1) ** k * _SERIES[k - 1] + series)
    log_lower = -0.5 * xl * xl - _LOG_SQRT_2PI - 2.0 * jnp.log(xl) + jnp.log1p(series)
    return jnp.where(upper, log_upper, jnp.where(middle, log_middle, log_lower))


def _log_ei(mean: Array, variance: Array, best: Array) -> Array:
    sigma = jnp.sqrt(jnp.maximum(variance, _VARIANCE_FLOOR))
    return jnp.log(sigma) + _log_h((best - mean) / sigma)


def _ei_args(mean: ArrayLike, variance: ArrayLike, best: ArrayLike) -> tuple[Array, Array, Array]:
    mean = _checks.float_array(mean, "mean")
    variance = _checks.float_array(variance, "variance")
    _checks.same_shape(mean, variance, "mean", "variance")
    best = jnp.asarray(best, mean.dtype)
    if best.shape not in ((), mean.shape):
        raise ValueError(f"best must be a scalar or have the shape of mean {mean.shape}, got {best.shape}")
    return mean, variance.astype(mean.dtype), jnp.broadcast_to(best, mean.shape)


def log_expected_improvement(mean: ArrayLike, variance: ArrayLike, best: ArrayLike) -> Array:
    r"""The log of the expected improvement below ``best`` of :math:`f \sim \mathcal N(\mu, \sigma^2)`.

    .. math:: \log \mathrm{EI} = \log\sigma + \log h\Big(\frac{y^* - \mu}{\sigma}\Big),
              \qquad h(\zeta) = \zeta \Phi(\zeta) + \varphi(\zeta),

    with :math:`\log h` evaluated stably in three ranges (see the module docstring), so the
    result is finite, and differentiable, even where EI underflows.

    Args:
      mean: ``[...]`` posterior means :math:`\mu`.
      variance: ``[...]`` posterior variances :math:`\sigma^2` (clamped at 1e-18).
      best: the incumbent :math:`y^*`, a scalar or an array of ``mean``'s shape.

    Returns:
      ``[...]``, :math:`\log\mathrm{EI}`.

    >>> round(float(log_expected_improvement(jnp.array(0.0), jnp.array(1.0), 0.0)), 4)  # log phi(0)
    -0.9189
    >>> round(float(log_expected_improvement(jnp.array(40.0), jnp.array(1.0), 0.0)), 1)
    -808.3
    """
    return _log_ei(*_ei_args(mean, variance, best))


def expected_improvement(mean: ArrayLike, variance: ArrayLike, best: ArrayLike) -> Array:
    r"""Expected improvement below ``best`` for minimisation (Jones et al. 1998), in closed form.

    .. math:: \mathrm{EI} = \mathbb E[\max(y^* - f, 0)] = \sigma\big(\zeta\Phi(\zeta) + \varphi(\zeta)\big),
              \qquad \zeta = \frac{y^* - \mu}{\sigma},

    computed as :math:`\exp(\log\mathrm{EI})` (:func:`log_expected_improvement`), so it is never
    negative and loses no digits to cancellation.

    Args:
      mean: ``[...]`` posterior means.
      variance: ``[...]`` posterior variances.
      best: the incumbent, a scalar or ``mean``'s shape.

    Returns:
      ``[...]``, :math:`\mathrm{EI} \ge 0`.

    >>> round(float(expected_improvement(jnp.array(1.0), jnp.array(0.0), 3.0)), 4)  # sure improvement 2
    2.0
    >>> round(float(expected_improvement(jnp.array(0.0), jnp.array(1.0), 0.0)), 4)  # phi(0)
    0.3989
    """
    return jnp.exp(_log_ei(*_ei_args(mean, variance, best)))


# ----------------------------------------------------------------------------------------
# Proposals: maximise EI, batches by the kriging believer
# ----------------------------------------------------------------------------------------


def _maximize_log_ei(key, posterior, best, incumbent, kernel, candidates, starts, steps):
    """The point of the unit cube with the largest log EI found, and that value."""
    dtype, d = incumbent.dtype, incumbent.shape[0]
    k_uniform, k_local = jax.random.split(key)
    n_local = candidates // 4
    uniform = jax.random.uniform(k_uniform, (candidates - n_local, d), dtype)
    local = jnp.clip(incumbent[None, :] + 0.05 * jax.random.normal(k_local, (n_local, d), dtype), 0.0, 1.0)
    pool = jnp.concatenate([uniform, local])

    def score(x):
        mean, variance = _gp.predict(posterior, x, kernel=kernel)
        value = _log_ei(mean, variance, jnp.broadcast_to(best, mean.shape))
        return jnp.where(jnp.isfinite(value), value, -jnp.inf)

    _, top = jax.lax.top_k(score(pool), starts)
    optimizer = _optimizers.adam(_ASCENT_RATE)
    value_and_grad = jax.value_and_grad(lambda x: -score(x[None, :])[0])

    def ascend(x):
        def step(carry, _):
            x, state, best_x, best_v = carry
            loss, grad = value_and_grad(x)
            better = -loss > best_v
            best_x, best_v = jnp.where(better, x, best_x), jnp.where(better, -loss, best_v)
            grad = jnp.where(jnp.isfinite(grad), grad, 0.0)
            update, state = optimizer.update(grad, state, x)
            return (jnp.clip(x + update, 0.0, 1.0), state, best_x, best_v), None

        init = (x, optimizer.init(x), x, jnp.asarray(-jnp.inf, dtype))
        (x, _, best_x, best_v), _ = jax.lax.scan(step, init, None, length=steps)
        last = score(x[None, :])[0]
        return jnp.where(last > best_v, x, best_x), jnp.maximum(last, best_v)

    xs, values = jax.vmap(ascend)(pool[top])
    i = jnp.argmax(values)
    return xs[i], values[i]


def _impute(values: Array, mask: Array) -> Array:
    """Non-finite observed values become the worst finite one (0 if there is none)."""
    finite = mask & jnp.isfinite(values)
    worst = jnp.max(jnp.where(finite, values, -jnp.inf))
    worst = jnp.where(jnp.any(finite), worst, 0.0)
    return jnp.where(mask, jnp.where(finite, values, worst), 0.0)


@functools.partial(jax.jit, static_argnums=(4, 5, 6, 7, 8, 9, 10))
def _propose(key, unit, values, mask, batch_size, kernel, fit_restarts, fit_steps, candidates, starts, steps):
    k_fit, k_batch = jax.random.split(key)
    z, _, _ = _gp.standardize(_impute(values, mask), mask)
    params = _gp.fit(k_fit, unit, z, mask, kernel=kernel, restarts=fit_restarts, steps=fit_steps)
    n, d = unit.shape
    # Room for the q fantasies after the (padded) observations.
    x = jnp.concatenate([unit, jnp.zeros((batch_size, d), unit.dtype)])
    y = jnp.concatenate([z, jnp.zeros((batch_size,), z.dtype)])
    m = jnp.concatenate([mask, jnp.zeros((batch_size,), bool)])
    best = jnp.min(jnp.where(mask, z, jnp.inf))

    def believe(carry, inputs):
        x, y, m, best = carry
        k, slot = inputs
        posterior = _gp.condition(params, x, y, m, kernel=kernel)
        incumbent = x[jnp.argmin(jnp.where(m, y, jnp.inf))]
        new, _ = _maximize_log_ei(k, posterior, best, incumbent, kernel, candidates, starts, steps)
        fantasy = _gp.predict(posterior, new[None, :], kernel=kernel)[0][0]
        x, y, m = x.at[slot].set(new), y.at[slot].set(fantasy), m.at[slot].set(True)
        return (x, y, m, jnp.minimum(best, fantasy)), new

    slots = n + jnp.arange(batch_size)
    _, batch = jax.lax.scan(believe, (x, y, m, best), (jax.random.split(k_batch, batch_size), slots))
    return batch


def _settings(kernel, fit_restarts, fit_steps, candidates, starts, steps) -> tuple:
    if not isinstance(kernel, str) or kernel not in _gp.KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(_gp.KERNELS)}, got {kernel!r}")
    candidates = _checks.positive_int(candidates, "candidates")
    starts = _checks.positive_int(starts, "ascent_starts")
    if candidates - candidates // 4 < starts:
        raise ValueError(f"candidates must be at least 4/3 of ascent_starts ({starts}), got {candidates}")
    return (
        kernel,
        _checks.positive_int(fit_restarts, "fit_restarts"),
        _checks.positive_int(fit_steps, "fit_steps"),
        candidates,
        starts,
        _checks.positive_int(steps, "ascent_steps"),
    )


def propose(
    key: PRNGKey,
    unit: ArrayLike,
    values: ArrayLike,
    mask: ArrayLike,
    *,
    batch_size: int,
    kernel: str = "matern52",
    fit_restarts: int = 4,
    fit_steps: int = 200,
    candidates: int = 1024,
    ascent_starts: int = 8,
    ascent_steps: int = 50,
) -> Array:
    r"""The next ``batch_size`` points to evaluate, by EI and the kriging believer; one compiled call.

    Standardises the observed values (non-finite ones replaced by the worst finite one), fits
    the GP (:func:`fnn.gaussian_process.fit`), then ``batch_size`` times: maximise
    :math:`\log\mathrm{EI}` (``candidates`` scored, projected Adam from the best
    ``ascent_starts`` for ``ascent_steps`` steps), add the point with its posterior mean as a
    fantasy observation. Arrays padded to a fixed length compile once for every round.

    Args:
      key: a PRNG key.
      unit: ``[n, d]`` evaluated points in the unit cube (padding rows arbitrary).
      values: ``[n]`` their objective values (padding arbitrary; NaN/inf allowed).
      mask: ``[n]`` booleans, True for evaluated rows; at least one.
      batch_size: q, the number of points to propose.
      kernel: ``"matern52"`` or ``"rbf"``.
      fit_restarts, fit_steps: restarts and Adam steps of the GP fit.
      candidates: points scored before the gradient ascent.
      ascent_starts, ascent_steps: the best candidates refined by projected Adam, and its steps.

    Returns:
      ``[batch_size, d]`` points in the unit cube.

    >>> unit = jnp.zeros((8, 1)).at[:3, 0].set(jnp.array([0.1, 0.5, 0.9]))  # 3 evaluated, 5 padding rows
    >>> batch = propose(jax.random.key(0), unit, (unit[:, 0] - 0.3) ** 2, jnp.arange(8) < 3, batch_size=2,
    ...                 fit_steps=50, candidates=128, ascent_steps=20)
    >>> batch.shape, bool(jnp.all((batch >= 0) & (batch <= 1)))
    ((2, 1), True)
    """
    settings = _settings(kernel, fit_restarts, fit_steps, candidates, ascent_starts, ascent_steps)
    batch_size = _checks.positive_int(batch_size, "batch_size")
    unit = _checks.float_array(unit, "unit")
    _checks.ndim_in(unit, "unit", (2,))
    values = _checks.float_array(values, "values").astype(unit.dtype)
    mask = jnp.asarray(mask)
    if values.shape != unit.shape[:1]:
        raise ValueError(f"values must have shape {unit.shape[:1]} to match unit {unit.shape}, got {values.shape}")
    if mask.dtype != jnp.bool_ or mask.shape != unit.shape[:1]:
        raise ValueError(f"mask must be a boolean array of shape {unit.shape[:1]}, got {mask.dtype} {mask.shape}")
    if _checks.is_concrete(mask) and not bool(jnp.any(mask)):
        raise ValueError("mask must mark at least one evaluated point, got none")
    return _propose(key, unit, values, mask, batch_size, *settings)


# ----------------------------------------------------------------------------------------
# The search loops
# ----------------------------------------------------------------------------------------


class Trace(NamedTuple):
    """Every evaluation of a search, in order.

    Attributes:
      points: dict name -> ``[n]`` evaluated hyperparameters.
      unit: ``[n, d]`` the same points in the unit cube.
      values: ``[n]`` objective values as returned (NaN/inf kept).
      best: ``[n]`` the best finite value among the first ``i + 1`` evaluations (inf before any).
      round: ``[n]`` int32: 0 for the initial design, ``r`` for the r-th round after it.
      best_point: dict name -> scalar, the point of ``best_value`` (the first point if no value
        is finite).
      best_value: the smallest finite value (inf if none).
    """

    points: dict[str, Array]
    unit: Array
    values: Array
    best: Array
    round: Array
    best_point: dict[str, Array]
    best_value: Array


def _evaluate(objective: Objective, box: Box, unit: Array, dtype) -> np.ndarray:
    values = objective(_from_unit(box, unit))
    try:
        values = np.asarray(values, dtype=np.dtype(dtype))
    except (TypeError, ValueError):
        raise TypeError(f"objective must return a float array, got {type(values).__name__}") from None
    if values.shape != (unit.shape[0],):
        raise ValueError(f"objective must return one value per point, shape ({unit.shape[0]},), got {values.shape}")
    return values


def _loop_args(objective, box, key, rounds, batch_size, initial) -> tuple[Box, int, int, int]:
    if not callable(objective):
        raise TypeError(
            f"objective must be callable (a dict of [q] arrays -> [q] values), got {type(objective).__name__}"
        )
    box = _box(box)
    key = _checks.single_key(key, "key")
    rounds = _checks.nonnegative_int(rounds, "rounds")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    initial = batch_size if initial is None else _checks.positive_int(initial, "initial")
    return box, rounds, batch_size, initial


def _search(objective, box, key, rounds, batch_size, initial, next_batch) -> Trace:
    dtype = jnp.zeros(()).dtype
    total = initial + rounds * batch_size
    unit = np.zeros((total, box.dim), dtype)
    values = np.full((total,), np.nan, dtype)
    mask = np.zeros((total,), bool)
    which = np.zeros((total,), np.int32)
    k_initial, k_rounds = jax.random.split(key)
    batch = _sample(box, k_initial, initial)[1]
    start = 0
    for r in range(rounds + 1):
        if r:
            batch = next_batch(
                jax.random.fold_in(k_rounds, r), jnp.asarray(unit), jnp.asarray(values), jnp.asarray(mask)
            )
        batch = np.asarray(batch, dtype)
        stop = start + batch.shape[0]
        values[start:stop] = _evaluate(objective, box, jnp.asarray(batch), dtype)
        unit[start:stop], mask[start:stop], which[start:stop] = batch, True, r
        start = stop
    finite = np.where(np.isfinite(values), values, np.inf)
    best_index = int(np.argmin(finite))
    unit = jnp.asarray(unit)
    points = _from_unit(box, unit)
    return Trace(
        points=points,
        unit=unit,
        values=jnp.asarray(values),
        best=jnp.asarray(np.minimum.accumulate(finite)),
        round=jnp.asarray(which),
        best_point={name: p[best_index] for name, p in points.items()},
        best_value=jnp.asarray(finite[best_index]),
    )


def minimize(
    objective: Objective,
    box: Box,
    key: PRNGKey,
    *,
    rounds: int,
    batch_size: int,
    initial: int | None = None,
    kernel: str = "matern52",
    fit_restarts: int = 4,
    fit_steps: int = 200,
    candidates: int = 1024,
    ascent_starts: int = 8,
    ascent_steps: int = 50,
) -> Trace:
    r"""Minimise ``objective`` over ``box`` by Bayesian optimisation, ``batch_size`` points a round.

    The first call evaluates ``initial`` points drawn uniformly from the box (the same points
    as :func:`random_search` with the same key); each of ``rounds`` further calls evaluates
    the ``batch_size`` points of :func:`propose`. The budget is
    ``initial + rounds * batch_size`` evaluations in ``rounds + 1`` calls. NaN or infinite
    values are kept in the trace and shown to the GP as the worst finite value so far.

    Args:
      objective: maps a dict name -> ``[q]`` arrays (see :func:`from_unit`) to ``[q]`` values,
        e.g. a ``jax.vmap`` of a training run returning validation errors. It is called once
        per round, with ``q = initial`` first and ``q = batch_size`` after.
      box: the :class:`Box` searched.
      key: a PRNG key.
      rounds: proposal rounds after the initial design (0 or more).
      batch_size: points per round, q.
      initial: points of the initial random design (default ``batch_size``, so that a vmapped
        objective compiles once).
      kernel, fit_restarts, fit_steps, candidates, ascent_starts, ascent_steps: as in :func:`propose`.

    Returns:
      A :class:`Trace` of all evaluations.

    >>> box = Box(("x",), (-2.0,), (2.0,))
    >>> trace = minimize(lambda p: (p["x"] - 0.5) ** 2, box, jax.random.key(0), rounds=3, batch_size=2,
    ...                  fit_steps=50, candidates=128, ascent_steps=20)
    >>> trace.values.shape, bool(trace.best_value < 0.01)
    ((8,), True)
    """
    box, rounds, batch_size, initial = _loop_args(objective, box, key, rounds, batch_size, initial)
    settings = _settings(kernel, fit_restarts, fit_steps, candidates, ascent_starts, ascent_steps)

    def next_batch(k, unit, values, mask):
        return _propose(k, unit, values, mask, batch_size, *settings)

    return _search(objective, box, key, rounds, batch_size, initial, next_batch)


def random_search(
    objective: Objective, box: Box, key: PRNGKey, *, rounds: int, batch_size: int, initial: int | None = None
) -> Trace:
    """Random search (Bergstra & Bengio 2012) with the budget and call pattern of :func:`minimize`.

    The first call evaluates ``initial`` uniform points (those :func:`minimize` starts from
    with the same key), each of ``rounds`` further calls ``batch_size`` new uniform points.

    Args:
      objective: dict name -> ``[q]`` arrays to ``[q]`` values, called once per round.
      box: the :class:`Box`.
      key: a PRNG key.
      rounds: rounds after the initial design.
      batch_size: points per round.
      initial: points of the first call (default ``batch_size``).

    Returns:
      A :class:`Trace`.

    >>> trace = random_search(lambda p: p["x"] ** 2, Box(("x",), (-1.0,), (1.0,)), jax.random.key(0),
    ...                       rounds=2, batch_size=3)
    >>> trace.round.tolist()
    [0, 0, 0, 1, 1, 1, 2, 2, 2]
    """
    box, rounds, batch_size, initial = _loop_args(objective, box, key, rounds, batch_size, initial)

    def next_batch(k, unit, values, mask):
        del unit, values, mask
        return _sample(box, k, batch_size)[1]

    return _search(objective, box, key, rounds, batch_size, initial, next_batch)


# ----------------------------------------------------------------------------------------
# Test functions with known minima
# ----------------------------------------------------------------------------------------

BRANIN_MINIMUM = 0.39788735772973816
HARTMANN3_MINIMUM = -3.86278214782076

_H3_ALPHA = (1.0, 1.2, 3.0, 3.2)
_H3_A = ((3.0, 10.0, 30.0), (0.1, 10.0, 35.0), (3.0, 10.0, 30.0), (0.1, 10.0, 35.0))
_H3_P = ((0.3689, 0.1170, 0.2673), (0.4699, 0.4387, 0.7470), (0.1091, 0.8732, 0.5547), (0.03815, 0.5743, 0.8828))


def _last_dim(x: ArrayLike, d: int, fn: str) -> Array:
    x = _checks.float_array(x, "x")
    if x.ndim < 1 or x.shape[-1] != d:
        raise ValueError(f"{fn} takes x of shape [..., {d}], got {x.shape}")
    return x


def branin(x: ArrayLike) -> Array:
    r"""The Branin function on :math:`[-5, 10] \times [0, 15]`; minimum 0.397887 at three points.

    .. math:: f(x) = \Big(x_2 - \frac{5.1}{4\pi^2} x_1^2 + \frac5\pi x_1 - 6\Big)^2
              + 10\Big(1 - \frac1{8\pi}\Big)\cos x_1 + 10

    Args:
      x: ``[..., 2]``.

    Returns:
      ``[...]``.

    >>> round(float(branin(jnp.array([jnp.pi, 2.275]))), 5)
    0.39789
    """
    x = _last_dim(x, 2, "branin")
    x1, x2 = x[..., 0], x[..., 1]
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * jnp.cos(x1) + 10


def hartmann3(x: ArrayLike) -> Array:
    r"""The Hartmann 3-D function on :math:`[0, 1]^3`; minimum -3.86278 at (0.1146, 0.5556, 0.8525).

    .. math:: f(x) = -\sum_{i=1}^4 \alpha_i \exp\Big(-\sum_{j=1}^3 A_{ij} (x_j - P_{ij})^2\Big)

    Args:
      x: ``[..., 3]``.

    Returns:
      ``[...]``.

    >>> round(float(hartmann3(jnp.array([0.114614, 0.555649, 0.852547]))), 4)
    -3.8628
    """
    x = _last_dim(x, 3, "hartmann3")
    lead = (1,) * (x.ndim - 1)
    alpha, a, p = (jnp.asarray(c, x.dtype).reshape(lead + np.shape(c)) for c in (_H3_ALPHA, _H3_A, _H3_P))
    inner = jnp.sum(a * jnp.square(x[..., None, :] - p), axis=-1)  # [..., 4]
    return -jnp.sum(alpha * jnp.exp(-inner), axis=-1)
