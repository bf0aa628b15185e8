r"""Universal approximation, constructively: steep sigmoids are steps, bumps make staircases, ReLUs make interpolants.

Everything is built by :mod:`fnn.approximation` and evaluated in float64 as an ordinary MLP by
:func:`fnn.mlp.apply`. Measured:

1. the sup error of a sigmoid step :math:`\sigma(w(x - b))` against the Heaviside step outside a
   margin :math:`m = 1/16`, closed form :math:`\sigma(-wm)` (:func:`~fnn.approximation.step_error`)
   against the maximum over 40001 points of :math:`[-1, 1]`
   (:func:`~fnn.approximation.measured_step_error`), with :math:`b = -1 + m` so that the grid
   holds a point exactly at the margin, for :math:`w` from 1 to 1000 (compared relatively where
   the error exceeds 1e-10: right of the step the measurement is :math:`1 - \sigma`, which rounds
   at 1e-16 absolute in float64); and
   :func:`~fnn.approximation.weight_for_error` for two target errors;
2. a bump from two steps (a 1-2-1 network) as :math:`w` grows;
3. the sup error on a grid of 20001 points against the number of bins :math:`n` of

   * the bump network (:func:`~fnn.approximation.sigmoid_network`, :math:`2n` sigmoid units),
   * the telescoped staircase (:func:`~fnn.approximation.sigmoid_steps_network`, :math:`n - 1`
     units),
   * the ReLU interpolant (:func:`~fnn.approximation.relu_network`, :math:`n` units),

   with the proven bounds (:func:`~fnn.approximation.sigmoid_bound`,
   :func:`~fnn.approximation.relu_bound`) and the slope of log error against log n fitted by
   least squares for :math:`n \ge 4` (:func:`~fnn.approximation.fit_rate`), on two targets on
   :math:`[-1, 2]`: the smooth :math:`\sin 3x` (:math:`L = 3`, :math:`|f''| \le 9`) and the
   kink :math:`|x|` (:math:`L = 1`, no second derivative). The kink sits a third of the way
   along the interval, so for :math:`n = 2^k` it falls at a fraction :math:`t \in \{1/3, 2/3\}`
   of its piece, never on a knot, and the interpolant's error there is
   :math:`2t(1 - t)\delta = 4\delta/9` for every :math:`n`.

Theory: the staircases err by :math:`O(L/n)`, the interpolant by :math:`O(|f''|/n^2)` on a smooth
target and :math:`O(L/n)` on the kink.

Reference: G. Cybenko, *Approximation by superpositions of a sigmoidal function*, 1989;
M. Nielsen, *Neural Networks and Deep Learning*, ch. 4.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from experiments.api import Check, Config, Result, Verdict
from fnn import approximation as approx

CLAIM = "Sums of steep-sigmoid bumps approximate a Lipschitz function with sup error O(1/n) and ReLU interpolants a smooth one with O(1/n^2), both within proven bounds."
CRITERION = "All of, with the slope of log sup error against log n fitted for n >= 4 and an order read to within 0.1: the sigmoid-bump networks' slope is <= -0.9 on both Lipschitz targets (sin 3x and |x|) and the ReLU interpolant's is <= -1.9 on the smooth sin 3x; each of these errors is <= its proven bound at every n."

LO, HI = -1.0, 2.0
GRID = 20001
MARGIN = 0.0625  # a binary fraction: b - MARGIN = -1 exactly, a grid point
STEP_AT = -1.0 + MARGIN
CONSTRUCTIONS = ("bumps", "steps", "relu")


def _sin3(x):
    return jnp.sin(3 * x)


def _kink(x):
    return jnp.abs(x)


# name -> (f, Lipschitz constant, bound on |f''| (inf: none), label)
TARGETS = {
    "sin3x": (_sin3, 3.0, 9.0, "sin 3x"),
    "kink": (_kink, 1.0, float("inf"), "|x|"),
}


@functools.partial(jax.jit, static_argnums=0)
def _errors_and_bounds(n: int):
    """For each target: the sup error of each construction with n bins, and its bound."""
    out = {}
    for name, (f, lipschitz, second, _) in TARGETS.items():
        nets = {"bumps": approx.sigmoid_network(f, LO, HI, n), "relu": approx.relu_network(f, LO, HI, n)}
        if n >= 2:
            nets["steps"] = approx.sigmoid_steps_network(f, LO, HI, n)
        errors = {
            k: approx.sup_error(p, f, LO, HI, GRID, "relu" if k == "relu" else "sigmoid") for k, p in nets.items()
        }
        bounds = {
            "bumps": approx.sigmoid_bound(lipschitz, LO, HI, n),
            "steps": approx.sigmoid_bound(lipschitz, LO, HI, n, form="steps"),
            "relu": approx.relu_bound(second, LO, HI, n, lipschitz=lipschitz),
        }
        out[name] = {"errors": errors, "bounds": {k: bounds[k] for k in errors}}
    return out


def _curves(n: int):
    """The targets and their bump and ReLU approximations with n bins on a plotting grid."""
    x = jnp.linspace(LO, HI, 601)
    curves = {"x": x}
    for name, (f, *_rest) in TARGETS.items():
        curves[name] = {
            "f": f(x),
            "bumps": approx.approximate(approx.sigmoid_network(f, LO, HI, n), x[:, None])[:, 0],
            "relu": approx.approximate(approx.relu_network(f, LO, HI, n), x[:, None], "relu")[:, 0],
        }
    return jax.tree.map(np.asarray, curves)


def run(config: Config) -> Result:
    ns = (2, 4, 8, 16) if config.quick else (2, 4, 8, 16, 32, 64, 128, 256)
    step_ws = np.geomspace(1.0, 1000.0, 13 if config.quick else 25)
    with jax.enable_x64(True):
        # 1. Steps: closed form against measurement.
        closed = np.exp(np.asarray(approx.log_step_error(jnp.asarray(step_ws), MARGIN)))
        measure = jax.jit(jax.vmap(lambda w: approx.measured_step_error(w, STEP_AT, MARGIN, -1.0, 1.0, 40001)))
        measured = np.asarray(measure(jnp.asarray(step_ws)))
        targets_eps = (1e-2, 1e-4)
        ws_for_eps = [float(approx.weight_for_error(e, MARGIN)) for e in targets_eps]
        # 2. A bump as w grows.
        xb = jnp.linspace(0.0, 1.0, 401)[:, None]
        bump_ws = (10.0, 50.0, 500.0)
        bumps = {w: np.asarray(approx.approximate(approx.bump_params(0.4, 0.6, 1.0, w), xb)[:, 0]) for w in bump_ws}
        # 3. Sup error against n.
        results = [jax.tree.map(float, _errors_and_bounds(n)) for n in ns]
        curves = _curves(8)

    ns_arr = np.asarray(ns, float)
    fit_from = ns_arr >= 4
    per_target = {}
    for name in TARGETS:
        rows = {}
        for kind in CONSTRUCTIONS:
            use = [i for i, n in enumerate(ns) if kind in results[i][name]["errors"]]
            errors = np.array([results[i][name]["errors"][kind] for i in use])
            bounds = np.array([results[i][name]["bounds"][kind] for i in use])
            sizes = ns_arr[use]
            keep = fit_from[use]
            rows[kind] = {
                "n": sizes,
                "hidden_units": {"bumps": 2 * sizes, "steps": sizes - 1, "relu": sizes}[kind],
                "sup_error": errors,
                "bound": bounds,
                "error_over_bound_max": float(np.max(errors / bounds)) if np.all(bounds > 0) else float("nan"),
                "within_bound": bool(np.all(errors <= bounds)),
                "slope": float(approx.fit_rate(sizes[keep], errors[keep])),
            }
        per_target[name] = rows

    # For x > b the measurement is 1 - sigma(w(x - b)), which rounds at 1e-16 in absolute terms: compare
    # relatively only where the error is well above that.
    resolved = closed > 1e-10
    step_gap = float(np.max(np.abs(measured - closed)[resolved] / closed[resolved]))
    step_gap_abs = float(np.max(np.abs(measured - closed)))
    metrics = {
        "interval": [LO, HI],
        "grid_points": GRID,
        "ns": list(ns),
        "slopes_fitted_for_n_at_least": 4,
        "step": {
            "margin": MARGIN,
            "w": step_ws,
            "closed_form": closed,
            "measured": measured,
            "max_relative_gap_where_above_1e-10": step_gap,
            "max_absolute_gap": step_gap_abs,
            "eps": list(targets_eps),
            "w_for_eps": ws_for_eps,
        },
        **per_target,
    }
    s, k = per_target["sin3x"], per_target["kink"]
    lines = [
        f"step sup error outside margin {MARGIN}, w in [1, 1000]: closed form sigma(-w m) vs measured on a grid, max "
        f"relative gap {step_gap:.1e} where the error exceeds 1e-10, max absolute gap {step_gap_abs:.1e}; "
        f"w = {ws_for_eps[0]:.1f} gives 1e-2, w = {ws_for_eps[1]:.1f} gives 1e-4",
        f"sin 3x on [{LO:g}, {HI:g}], n = {ns[0]}..{ns[-1]}: sigmoid bumps (2n units) error slope {s['bumps']['slope']:.2f} "
        f"(O(1/n)), {s['bumps']['sup_error'][0]:.3g} -> {s['bumps']['sup_error'][-1]:.3g}; steps (n-1 units) "
        f"{s['steps']['slope']:.2f}; ReLU interpolant (n units) {s['relu']['slope']:.2f} (O(1/n^2)), "
        f"{s['relu']['sup_error'][0]:.3g} -> {s['relu']['sup_error'][-1]:.3g}",
        f"|x|: bumps {k['bumps']['slope']:.2f}, steps {k['steps']['slope']:.2f}, ReLU {k['relu']['slope']:.2f} "
        f"(O(1/n): at the kink the interpolant errs by 4 delta / 9; measured {k['relu']['sup_error'][-1]:.4g} "
        f"vs {4 * (HI - LO) / ns[-1] / 9:.4g} at n = {ns[-1]})",
        "every error within its proven bound: "
        + ", ".join(
            f"{t}/{c} {per_target[t][c]['error_over_bound_max']:.3f}"
            for t in TARGETS
            for c in CONSTRUCTIONS
            if np.isfinite(per_target[t][c]["error_over_bound_max"])
        )
        + " (max error / bound)"
        + (
            ""
            if all(per_target[t][c]["within_bound"] for t in TARGETS for c in CONSTRUCTIONS)
            else "  -- A BOUND WAS EXCEEDED"
        ),
    ]
    figure = _figure(step_ws, closed, measured, ws_for_eps, targets_eps, xb, bumps, curves, per_target)
    return Result(metrics=metrics, summary="\n".join(lines), figure=figure)


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    bumps = {t: metrics[t]["bumps"] for t in TARGETS}
    relu = metrics["sin3x"]["relu"]
    rows = [*(("bumps", t, r) for t, r in bumps.items()), ("relu", "sin3x", relu)]
    return Verdict.of(
        Check(
            "bumps O(1/n)",
            all(float(r["slope"]) <= -0.9 for r in bumps.values()),
            ", ".join(f"{t} slope {float(r['slope']):.2f}" for t, r in bumps.items()),
        ),
        Check("ReLU O(1/n^2) on sin 3x", float(relu["slope"]) <= -1.9, f"slope {float(relu['slope']):.2f}"),
        Check(
            "within proven bounds",
            all(r["within_bound"] is True for _, _, r in rows),
            "max error/bound " + ", ".join(f"{k} {t} {float(r['error_over_bound_max']):.3f}" for k, t, r in rows),
        ),
    )


def _figure(step_ws, closed, measured, ws_for_eps, targets_eps, xb, bumps, curves, per_target):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 8.5), layout="constrained")
    axes = fig.subplots(2, 3)
    ax = axes[0, 0]
    ax.loglog(step_ws, closed, label="closed form sigma(-w m)")
    ax.loglog(step_ws, measured, "o", ms=4, mfc="none", label="measured on a grid")
    for w, e in zip(ws_for_eps, targets_eps, strict=True):
        ax.axvline(w, color="gray", ls=":", lw=0.8)
        ax.annotate(f"eps={e:g}", (w, e), fontsize="x-small")
    ax.set(title=f"sigmoid step vs Heaviside, |x - b| >= {MARGIN}", xlabel="w", ylabel="sup error")
    ax.legend(fontsize="small")

    ax = axes[0, 1]
    for w, y in bumps.items():
        ax.plot(np.asarray(xb[:, 0]), y, label=f"w = {w:g}")
    ax.set(title="bump = sigma(w(x - 0.4)) - sigma(w(x - 0.6))", xlabel="x")
    ax.legend(fontsize="small")

    ax = axes[0, 2]
    x = curves["x"]
    for i, (name, (_, _, _, label)) in enumerate(TARGETS.items()):
        c = curves[name]
        ax.plot(x, c["f"], color=f"C{i}", lw=2, alpha=0.4, label=label)
        ax.plot(x, c["bumps"], color=f"C{i}", lw=0.9, label=f"{label}: 8 bumps (16 sigmoids)")
        ax.plot(x, c["relu"], color=f"C{i}", lw=0.9, ls="--", label=f"{label}: ReLU, 8 pieces")
    ax.set(title="targets and constructions, n = 8", xlabel="x")
    ax.legend(fontsize="x-small")

    for ax, name in zip(axes[1, :2], TARGETS, strict=True):
        rows = per_target[name]
        for i, kind in enumerate(CONSTRUCTIONS):
            r = rows[kind]
            style = {
                "bumps": dict(marker="o", ms=9, mfc="none"),
                "steps": dict(marker="s", ms=4),
                "relu": dict(marker="o", ms=4),
            }
            ax.loglog(r["n"], r["sup_error"], color=f"C{i}", **style[kind], label=f"{kind}: slope {r['slope']:.2f}")
            ax.loglog(r["n"], r["bound"], ls="--", lw=0.8, color=f"C{i}", label=f"{kind}: proven bound")
        ax.set_xticks(rows["bumps"]["n"], [f"{n:g}" for n in rows["bumps"]["n"]])
        ax.minorticks_off()
        ax.set(
            title=f"sup error on [{LO:g}, {HI:g}]: {TARGETS[name][3]} (bumps and steps: one staircase)",
            xlabel="n (bins)",
            ylabel="sup error",
        )
        ax.legend(fontsize="x-small")

    ax = axes[1, 2]
    for i, kind in enumerate(CONSTRUCTIONS):
        r = per_target["sin3x"][kind]
        ax.loglog(r["hidden_units"], r["sup_error"], "o-", color=f"C{i}", label=kind)
    ax.set(title="sin 3x: sup error per hidden unit used", xlabel="hidden units", ylabel="sup error")
    ax.legend(fontsize="small")
    return fig
