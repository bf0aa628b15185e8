r"""Constructed against trained: shallow networks of the same widths, built by hand or fitted by Adam.

Target :math:`f(x) = \sin 3x` on :math:`[-1, 2]` (Lipschitz constant 3, :math:`|f''| \le 9`). For
hidden widths :math:`2n`, :math:`n = 2, 4, \dots, 32`:

* constructed (:mod:`fnn.approximation`): the sigmoid bump network with :math:`n` bumps
  (:math:`2n` units), the telescoped sigmoid staircase with :math:`2n + 1` bins (:math:`2n`
  units), and the ReLU interpolant with :math:`2n` pieces (:math:`2n` units);
* trained (:func:`fnn.approximation.train_shallow`): 1-(2n)-1 sigmoid and ReLU networks fitted
  to 256 equally spaced points by full-batch Adam on the MSE, the rate decaying by a cosine from
  1e-2 to 1e-4, from several seeds (unit centres drawn uniformly on the interval, slopes
  :math:`N(0, (4/3)^2)`). All widths and seeds of one activation are one vmapped, compiled call:
  each run uses the first :math:`2n` units of a width-64 network and the others carry output
  weight 0 and get no gradient.

Measured: the sup error of every network on 4097 equally spaced points (the trained ones' over
seeds: median, best, worst), its slope against width fitted by least squares on log axes, and
for each width which side wins. Training minimises the mean squared error, not the sup error,
and its outcome depends on the seed; the constructions have no such freedom and no such luck.

Reference: G. Cybenko, *Approximation by superpositions of a sigmoidal function*, 1989;
D. Kingma, J. Ba, *Adam: a method for stochastic optimization*, ICLR 2015.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from experiments.api import Check, Config, Result, Verdict, numbers
from fnn import approximation as approx

CLAIM = "On sin 3x, shallow sigmoid networks trained by Adam beat hand-built sigmoid staircases of the same width, while the hand-built ReLU interpolant beats trained ReLU networks of the same width."
CRITERION = "Both of, on the sup error over 4097 points with the trained networks' median over seeds: at every width the trained sigmoid network errs less than both hand-built sigmoid staircases of that width (the bump network and the telescoped staircase); at every width the ReLU interpolant errs less than the trained ReLU network."

LO, HI = -1.0, 2.0
EVAL = 4097
LEARNING_RATE = 1e-2
ACTIVATIONS = ("sigmoid", "relu")


def target(x):
    return jnp.sin(3 * x)


@functools.partial(jax.jit, static_argnums=0)
def _constructed_errors(width: int):
    """Sup errors of the three constructions with ``width`` (even) hidden units."""
    nets = {
        "sigmoid bumps": (approx.sigmoid_network(target, LO, HI, width // 2), "sigmoid"),
        "sigmoid steps": (approx.sigmoid_steps_network(target, LO, HI, width + 1), "sigmoid"),
        "relu interpolant": (approx.relu_network(target, LO, HI, width), "relu"),
    }
    return {k: approx.sup_error(p, target, LO, HI, EVAL, a) for k, (p, a) in nets.items()}


def _constructed(widths):
    rows = [jax.tree.map(float, _constructed_errors(width)) for width in widths]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def _trained(key, widths, seeds: int, steps: int, activation: str):
    """One vmapped call over widths x seeds: sup errors [W, S], final training MSE [W, S], loss curves [W, S, T]."""
    keys = jax.random.split(key, seeds)
    widest = max(widths)

    def one(k, active):
        return approx.train_shallow(
            k, target, LO, HI, widest, activation, steps, learning_rate=LEARNING_RATE, num_eval=EVAL, active=active
        )

    runs = jax.jit(jax.vmap(jax.vmap(one, (0, None)), (None, 0)))(keys, jnp.asarray(widths))
    return np.asarray(runs.sup_error), np.asarray(runs.losses[..., -1]), np.asarray(runs.losses)


def run(config: Config) -> Result:
    widths = (4, 8, 16) if config.quick else (4, 8, 16, 32, 64)
    seeds = 2 if config.quick else 4
    steps = 1500 if config.quick else 5000
    key = jax.random.key(config.seed)
    constructed = _constructed(widths)
    trained = {}
    for i, activation in enumerate(ACTIVATIONS):
        sup, final_mse, curves = _trained(jax.random.fold_in(key, i), widths, seeds, steps, activation)
        trained[activation] = {"sup_error": sup, "final_mse": final_mse, "curves": curves}

    w = np.asarray(widths, float)
    metrics = {
        "interval": [LO, HI],
        "widths": list(widths),
        "seeds": seeds,
        "steps": steps,
        "learning_rate": LEARNING_RATE,
        "eval_points": EVAL,
        "constructed": {},
        "trained": {},
    }
    for name, errors in constructed.items():
        metrics["constructed"][name] = {"sup_error": errors, "slope": float(approx.fit_rate(w, errors))}
    for activation, t in trained.items():
        sup = t["sup_error"]
        median = np.median(sup, axis=1)
        metrics["trained"][activation] = {
            "sup_error_per_seed": sup,
            "median": median,
            "best": sup.min(axis=1),
            "worst": sup.max(axis=1),
            "final_mse_median": np.median(t["final_mse"], axis=1),
            "slope_of_median": float(approx.fit_rate(w, median)),
        }
    comparisons = {"sigmoid": "sigmoid bumps", "relu": "relu interpolant"}
    lines = [
        f"sin 3x on [{LO:g}, {HI:g}], hidden widths {', '.join(map(str, widths))}; trained: Adam, {steps} full-batch "
        f"steps, {seeds} seeds (median [best, worst]); sup error on {EVAL} points"
    ]
    for activation, name in comparisons.items():
        c = metrics["constructed"][name]
        t = metrics["trained"][activation]
        ratio = t["median"] / c["sup_error"]
        metrics[f"{activation}_trained_over_constructed"] = ratio
        wins = [int(x) for x, r in zip(widths, ratio, strict=True) if r < 1]
        per_width = "; ".join(
            f"{x}: {ce:.3g} vs {tm:.3g} [{tb:.3g}, {tw:.3g}]"
            for x, ce, tm, tb, tw in zip(widths, c["sup_error"], t["median"], t["best"], t["worst"], strict=True)
        )
        lines.append(
            f"{activation}: constructed ({name}, slope {c['slope']:.2f}) vs trained (slope of median "
            f"{t['slope_of_median']:.2f}) by width: {per_width}"
        )
        lines.append(
            f"    trained median better at widths {wins if wins else 'none'}; trained / constructed "
            f"{ratio.min():.2g} to {ratio.max():.2g}"
        )
        if activation == "sigmoid":
            to_steps = t["median"] / metrics["constructed"]["sigmoid steps"]["sup_error"]
            metrics["sigmoid_trained_over_steps"] = to_steps
            lines.append(
                f"    against the telescoped staircase (sigmoid steps, same units): trained / constructed "
                f"{to_steps.min():.2g} to {to_steps.max():.2g}"
            )
    steps_c = metrics["constructed"]["sigmoid steps"]
    lines.append(
        f"the telescoped staircase with the same units errs {np.median(constructed['sigmoid bumps'] / steps_c['sup_error']):.2f}x "
        f"less than the bumps (it spends a unit per edge, not two)"
    )
    return Result(metrics=metrics, summary="\n".join(lines), figure=_figure(widths, constructed, trained))


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    widths = metrics["widths"]
    sigmoid = numbers(metrics["trained"]["sigmoid"]["median"])
    relu = numbers(metrics["trained"]["relu"]["median"])
    built = {name: numbers(metrics["constructed"][name]["sup_error"]) for name in ("sigmoid bumps", "sigmoid steps")}
    interpolant = numbers(metrics["constructed"]["relu interpolant"]["sup_error"])
    lost = {name: [w for w, t, c in zip(widths, sigmoid, e, strict=True) if not t < c] for name, e in built.items()}
    relu_lost = [w for w, t, c in zip(widths, relu, interpolant, strict=True) if not c < t]
    return Verdict.of(
        Check(
            "trained sigmoid beats the staircases",
            not any(lost.values()),
            "; ".join(f"vs {n}: loses at widths {w or 'none'}" for n, w in lost.items())
            + f" (widest: {sigmoid[-1]:.3g} vs {built['sigmoid bumps'][-1]:.3g}, {built['sigmoid steps'][-1]:.3g})",
        ),
        Check(
            "ReLU interpolant beats trained ReLU",
            not relu_lost,
            f"trained wins at widths {relu_lost or 'none'} (widest: {interpolant[-1]:.3g} vs {relu[-1]:.3g})",
        ),
    )


def _figure(widths, constructed, trained):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.8), layout="constrained")
    ax_err, ax_sig, ax_relu = fig.subplots(1, 3)
    w = np.asarray(widths)
    for i, (name, errors) in enumerate(constructed.items()):
        ax_err.loglog(w, errors, "o--", color=f"C{i}", label=f"constructed: {name}")
    for i, (activation, t) in enumerate(trained.items()):
        sup = t["sup_error"]
        color = f"C{3 + i}"
        ax_err.loglog(w, np.median(sup, axis=1), "s-", color=color, label=f"trained {activation} (median)")
        ax_err.fill_between(w, sup.min(axis=1), sup.max(axis=1), color=color, alpha=0.2)
    ax_err.set_xticks(w, [str(x) for x in w])
    ax_err.minorticks_off()
    ax_err.set(title="sin 3x: sup error against hidden units", xlabel="hidden units", ylabel="sup error")
    ax_err.legend(fontsize="x-small")
    for ax, activation in ((ax_sig, "sigmoid"), (ax_relu, "relu")):
        curves = trained[activation]["curves"]
        for j, x in enumerate(widths):
            ax.semilogy(np.median(curves[j], axis=0), color=f"C{j}", label=f"width {x}")
        ax.set(title=f"trained {activation}: training MSE (median over seeds)", xlabel="Adam step", ylabel="MSE")
        ax.legend(fontsize="x-small")
    return fig
