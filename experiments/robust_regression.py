r"""Squared against absolute error when the targets hold gross outliers.

Data (:func:`fnn.data.regression_with_outliers`): N = 100 points of the line
:math:`y = 2x + 0.5` with :math:`x \sim U(-1, 1)` and Gaussian noise :math:`\sigma = 0.2`,
of which a fraction f (0, 5, 10, 20, 30%) have their target displaced by
:math:`\pm\tau(1 + u)`, :math:`\tau = 5`, :math:`u \sim U(0, 1)`, random signs. For every
fraction, S independent data sets are drawn, and a linear model ``fnn.MLP((1, 1))`` is
trained on each by full-batch Adam (rate 0.05, divided by 10 at 50% and 75% of the steps,
:func:`fnn.schedules.classic_step_decay`) with the loss ``"mse"`` and with ``"l1"``: all
fractions and draws in one vmapped, compiled call per loss
(:func:`fnn.bias_variance.fit_ensemble`). The closed-form least squares
(:func:`fnn.linear.least_squares`) is the reference for the MSE fit.

Measured, per fraction and loss: the parameter error
:math:`\|(\hat w, \hat b) - (w, b)\|_2` (mean and spread over draws) and the test MSE on a
clean test set (the same line and noise, no outliers; its floor is :math:`\sigma^2 = 0.04`).
Convergence is checked, not assumed: the MSE fits against the closed form, and the L1 fits
against the exact least-absolute-deviations solution, a linear program solved by
``scipy.optimize.linprog`` (HiGHS) on every draw (relative gap of the L1 objective).

What L1 is robust to: the minimiser of :math:`\sum_i |y_i - w x_i - b|` is a conditional
median, so it ignores how far off an outlying *target* is, only on which side; for outliers
in y alone it stays near the line up to large contamination. It is **not** robust to
outlying *inputs* (leverage points): a far-out :math:`x_i` makes :math:`|y_i - w x_i - b|`
steep in :math:`w`, and a few such points tilt the L1 line as well as the least-squares one.
At the true line, turning the slope towards k far points at :math:`x \approx X` lowers the
objective by about :math:`kX` per unit of slope and costs about :math:`\sum_{\text{inliers}}
|x_i| \approx 0.5 (N - k)` (the inliers' residuals being near zero), so the L1 line tips over
once :math:`kX` exceeds that. The experiment shows this: 10% of the points of the clean draws
moved to :math:`x \approx 3` (:math:`kX \approx 31 < 45`) and to :math:`x \approx 5`
(:math:`kX \approx 51 > 45`), with targets on the line :math:`y = -2x + 0.5`.

Reference: P. Huber, *Robust estimation of a location parameter*, Ann. Math. Statist.
35(1), 1964; P. Rousseeuw, A. Leroy, *Robust Regression and Outlier Detection*, Wiley 1987
(breakdown points; L1 regression's vulnerability to leverage points).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linprog

from experiments.api import Check, Config, Result, Verdict
from fnn import bias_variance as bv
from fnn import data, linear, schedules
from fnn.models import MLP
from fnn.train import Trainer

CLAIM = "With gross outliers in the targets, a linear model trained on L1 loss keeps its parameter error near the clean level up to 30% contamination while the MSE fit's error grows several-fold; neither is robust to leverage points in x."
CRITERION = "All of, on the mean parameter error over draws, with 'near' read as <= 1.5x and 'several-fold' as >= 3x the clean (0%) level: the L1 fit's error is <= 1.5x its clean level at every outlier fraction up to the largest (30%); the MSE fit's error at the largest fraction is >= 3x its clean level; with 10% of the points moved to the farthest leverage x (5), both fits' errors are >= 3x their clean levels."

N, SLOPE, INTERCEPT, NOISE, SCALE = 100, 2.0, 0.5, 0.2, 5.0
FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3)
LEARNING_RATE = 0.05
T_TEST = 1000
LEVERAGE_FRACTION, LEVERAGE_XS = 0.1, (3.0, 5.0)
SHOWN_FRACTION = 0.2


def _lad(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact least absolute deviations: min sum |y - w x - b| as a linear program; (w, b), mean |r|."""
    n = x.shape[0]
    equality = np.hstack([x[:, None], np.ones((n, 1)), np.eye(n), -np.eye(n)])
    cost = np.concatenate([[0.0, 0.0], np.ones(2 * n)])
    bounds = [(None, None)] * 2 + [(0, None)] * (2 * n)
    solution = linprog(cost, A_eq=equality, b_eq=y, bounds=bounds, method="highs")
    if not solution.success:
        raise RuntimeError(f"the LAD linear program failed: {solution.message}")
    return solution.x[:2], solution.fun / n


def _wb(params) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(params[0]["W"][:, 0, 0]), np.asarray(params[0]["b"][:, 0])


def run(config: Config) -> Result:
    fractions = (0.0, 0.1, 0.3) if config.quick else FRACTIONS  # each fraction compiles its own draw
    draws = 8 if config.quick else 64
    # The far leverage points move the L1 optimum a long way, over a flat, kinked landscape:
    # 2000 steps leave a relative objective gap of ~1e-3 there, 4000 steps ~1e-5.
    epochs = 1000 if config.quick else 4000
    key = jax.random.key(config.seed)
    k_sets, k_test, k_init, k_lev = jax.random.split(key, 4)
    with jax.enable_x64(True):
        dtype = jnp.float64
        sets = []
        for i, fraction in enumerate(fractions):
            generator = functools.partial(
                data.regression_with_outliers,
                n=N,
                slope=SLOPE,
                intercept=INTERCEPT,
                noise=NOISE,
                outlier_fraction=fraction,
                outlier_scale=SCALE,
                dtype=dtype,
            )
            sets.append(bv.draw_training_sets(jax.random.fold_in(k_sets, i), generator, draws))
        # Leverage points: the clean draws with 10% of the points moved far out in x, onto another line.
        moved = int(round(LEVERAGE_FRACTION * N))
        for at in LEVERAGE_XS:
            far = at + 0.2 * jax.random.uniform(k_lev, (draws, moved, 1), dtype)
            sets.append((sets[0][0].at[:, :moved].set(far), sets[0][1].at[:, :moved].set(-SLOPE * far + INTERCEPT)))
        x = jnp.concatenate([s[0] for s in sets])
        y = jnp.concatenate([s[1] for s in sets])
        clean_test = functools.partial(
            data.regression_with_outliers,
            n=T_TEST,
            slope=SLOPE,
            intercept=INTERCEPT,
            noise=NOISE,
            outlier_fraction=0.0,
            dtype=dtype,
        )
        x_test, y_test = (a[0] for a in bv.draw_training_sets(k_test, clean_test, 1))
        keys = jax.random.split(k_init, x.shape[0])
        hyperparams = {"learning_rate": LEARNING_RATE}
        fits = {}
        for loss in ("mse", "l1"):
            trainer = Trainer(
                MLP((1, 1)), loss=loss, optimizer="adam", epochs=epochs, schedule=schedules.classic_step_decay
            )
            ens = bv.fit_ensemble(trainer, keys, x, y, x_test, hyperparams)
            fits[loss] = (*_wb(ens.params), np.asarray(ens.predictions[..., 0]))
        closed = jax.vmap(linear.least_squares)(x, y)
        fits["least squares"] = (
            *_wb(closed),
            np.asarray(jax.vmap(linear.apply, in_axes=(0, None))(closed, x_test)[..., 0]),
        )
    xn, yn, y_test = np.asarray(x[..., 0]), np.asarray(y[..., 0]), np.asarray(y_test[:, 0])

    # Convergence: MSE against the closed form, L1 against the exact LAD solution.
    w_ls, b_ls, _ = fits["least squares"]
    w_mse, b_mse, _ = fits["mse"]
    mse_to_closed_form = float(np.max(np.hypot(w_mse - w_ls, b_mse - b_ls)))
    lad = [_lad(xi, yi) for xi, yi in zip(xn, yn, strict=True)]
    lad_params = np.array([p for p, _ in lad])
    lad_objective = np.array([v for _, v in lad])
    w_l1, b_l1, _ = fits["l1"]
    l1_objective = np.mean(np.abs(yn - w_l1[:, None] * xn - b_l1[:, None]), axis=1)
    l1_gap = float(np.max(l1_objective / lad_objective - 1))
    l1_to_lad = float(np.max(np.hypot(w_l1 - lad_params[:, 0], b_l1 - lad_params[:, 1])))

    groups = [f"{f:g}" for f in fractions] + [f"leverage x~{at:g}" for at in LEVERAGE_XS]
    rows = {}
    for loss, (w, b, predictions) in fits.items():
        error = np.hypot(w - SLOPE, b - INTERCEPT).reshape(len(groups), draws)
        test_mse = np.mean((predictions - y_test[None]) ** 2, axis=1).reshape(len(groups), draws)
        slope_error = np.abs(w - SLOPE).reshape(len(groups), draws)
        rows[loss] = {
            g: {
                "parameter_error_mean": float(error[i].mean()),
                "parameter_error_std": float(error[i].std()),
                "parameter_error_median": float(np.median(error[i])),
                "slope_error_mean": float(slope_error[i].mean()),
                "test_mse_mean": float(test_mse[i].mean()),
            }
            for i, g in enumerate(groups)
        }
    clean, worst = groups[0], f"{fractions[-1]:g}"
    metrics = {
        "n": N,
        "slope": SLOPE,
        "intercept": INTERCEPT,
        "noise_std": NOISE,
        "outlier_scale": SCALE,
        "fractions": fractions,
        "draws": draws,
        "epochs": epochs,
        "learning_rate": LEARNING_RATE,
        "leverage_fraction": LEVERAGE_FRACTION,
        "leverage_x": LEVERAGE_XS,
        "results": rows,
        "mse_max_parameter_distance_to_closed_form": mse_to_closed_form,
        "l1_max_relative_objective_gap_to_lad": l1_gap,
        "l1_max_parameter_distance_to_lad": l1_to_lad,
    }
    lines = [
        f"line y = {SLOPE:g} x + {INTERCEPT:g}, N = {N}, noise {NOISE:g}, outliers displaced by +-{SCALE:g}(1 + U(0,1)); "
        f"{draws} draws per fraction; full-batch Adam {LEARNING_RATE:g} with step decay, {epochs} steps; "
        f"test MSE on clean data (floor {NOISE**2:.3g})"
    ]
    lines.append("outliers   | parameter error (mean +- sd)         | test MSE")
    lines.append("           |  MSE fit          L1 fit           |  MSE     L1")
    for g in groups:
        m, l1 = rows["mse"][g], rows["l1"][g]
        label = f"{float(g):>5.0%}" if not g.startswith("leverage") else g.replace("leverage ", "lev. ")
        lines.append(
            f"  {label:<8} | {m['parameter_error_mean']:.4f} +- {m['parameter_error_std']:.4f}  "
            f"{l1['parameter_error_mean']:.4f} +- {l1['parameter_error_std']:.4f} | {m['test_mse_mean']:.4f}  {l1['test_mse_mean']:.4f}"
        )
    lines.append(
        f"from 0% to {fractions[-1]:.0%} outliers the MSE fit's parameter error grows "
        f"{rows['mse'][worst]['parameter_error_mean'] / rows['mse'][clean]['parameter_error_mean']:.1f}x, the L1 fit's "
        f"{rows['l1'][worst]['parameter_error_mean'] / rows['l1'][clean]['parameter_error_mean']:.2f}x"
    )
    for at in LEVERAGE_XS:
        g = f"leverage x~{at:g}"
        lines.append(
            f"leverage: {LEVERAGE_FRACTION:.0%} of the points moved to x ~ {at:g}, onto the line y = {-SLOPE:g} x + {INTERCEPT:g}: "
            f"slope error MSE {rows['mse'][g]['slope_error_mean']:.3f}, L1 {rows['l1'][g]['slope_error_mean']:.3f} "
            f"(clean: {rows['mse'][clean]['slope_error_mean']:.3f}, {rows['l1'][clean]['slope_error_mean']:.3f})"
        )
    lines.append(
        "L1 is robust to outliers in y, not to leverage points in x: its line tilts once the far points' "
        "sum of |x| outweighs that of the rest"
    )
    lines.append(
        f"converged: MSE fits within {mse_to_closed_form:.1e} of the closed form; L1 objective within "
        f"{l1_gap:.1e} (relative) of the exact LAD optimum (parameters within {l1_to_lad:.1e}, the optimum being flat)"
    )
    shown_fraction = SHOWN_FRACTION if SHOWN_FRACTION in fractions else fractions[-1]
    shown = fractions.index(shown_fraction) * draws
    lever = (len(fractions) + len(LEVERAGE_XS) - 1) * draws
    figure = _figure(xn, yn, fits, rows, fractions, groups, shown, shown_fraction, lever)
    return Result(metrics=metrics, summary="\n".join(lines), figure=figure)


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    rows = metrics["results"]
    fractions = [f"{float(f):g}" for f in metrics["fractions"]]
    clean, worst = fractions[0], fractions[-1]
    lever = f"leverage x~{max(float(x) for x in metrics['leverage_x']):g}"

    def growth(loss: str, group: str) -> float:
        return float(rows[loss][group]["parameter_error_mean"]) / float(rows[loss][clean]["parameter_error_mean"])

    l1 = max(growth("l1", f) for f in fractions[1:])
    return Verdict.of(
        Check("L1 near clean up to 30%", l1 <= 1.5, f"at most {l1:.2f}x the clean error"),
        Check(
            "MSE grows several-fold", growth("mse", worst) >= 3, f"{growth('mse', worst):.1f}x at {float(worst):.0%}"
        ),
        Check(
            "neither robust to leverage",
            min(growth("mse", lever), growth("l1", lever)) >= 3,
            f"{lever.removeprefix('leverage ')}: MSE {growth('mse', lever):.1f}x, L1 {growth('l1', lever):.1f}x",
        ),
    )


def _figure(xn, yn, fits, rows, fractions, groups, shown, shown_fraction, lever):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 4), layout="constrained")
    ax_line, ax_err, ax_mse, ax_lev = fig.subplots(1, 4)
    colors = {"least squares": "C2", "mse": "C0", "l1": "C3"}
    styles = {"least squares": ":", "mse": "-", "l1": "-"}

    def lines(ax, i, lo, hi):
        grid = np.linspace(lo, hi, 2)
        ax.plot(grid, SLOPE * grid + INTERCEPT, color="k", lw=2, label="true line")
        for loss, (w, b, _) in fits.items():
            ax.plot(
                grid, w[i] * grid + b[i], styles[loss], color=colors[loss], label=f"{loss} (w={w[i]:.2f}, b={b[i]:.2f})"
            )

    outlier = np.abs(yn[shown] - SLOPE * xn[shown] - INTERCEPT) > SCALE / 2
    ax_line.scatter(xn[shown][~outlier], yn[shown][~outlier], s=8, color="gray", label="inliers")
    ax_line.scatter(xn[shown][outlier], yn[shown][outlier], s=14, color="m", marker="x", label="outliers")
    lines(ax_line, shown, -1, 1)
    ax_line.set(xlabel="x", ylabel="y", title=f"one draw, {shown_fraction:.0%} outliers in y")
    ax_line.legend(fontsize="x-small", loc="lower right")

    groups = groups[: len(fractions)]
    for loss in ("least squares", "mse", "l1"):  # the closed form first: the MSE fit lies on it
        mean = np.array([rows[loss][g]["parameter_error_mean"] for g in groups])
        sd = np.array([rows[loss][g]["parameter_error_std"] for g in groups])
        size = 9 if loss == "least squares" else 4
        ax_err.errorbar(fractions, mean, sd, fmt="o" + styles[loss], color=colors[loss], ms=size, capsize=3, label=loss)
        ax_mse.plot(
            fractions,
            [rows[loss][g]["test_mse_mean"] for g in groups],
            "o" + styles[loss],
            color=colors[loss],
            ms=size,
            label=loss,
        )
    ax_err.set(xlabel="outlier fraction", ylabel="||(w, b) - (w*, b*)||", title="parameter error (mean +- sd)")
    ax_err.legend(fontsize="x-small")
    ax_mse.axhline(NOISE**2, color="gray", ls="--", lw=0.8, label="noise floor")
    ax_mse.set(xlabel="outlier fraction", ylabel="MSE on clean test data", yscale="log", title="test MSE")
    ax_mse.legend(fontsize="x-small")

    ax_lev.scatter(xn[lever], yn[lever], s=8, color="gray", label="data with leverage points")
    lines(ax_lev, lever, -1, LEVERAGE_XS[-1] + 0.2)
    ax_lev.set(xlabel="x", ylabel="y", title=f"{LEVERAGE_FRACTION:.0%} leverage points at x ~ {LEVERAGE_XS[-1]:g}")
    ax_lev.legend(fontsize="x-small")
    return fig
