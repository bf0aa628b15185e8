"""Seven first-order optimizers on an ill-conditioned quadratic, on Rosenbrock and on the digits MLP.

For each optimizer of :mod:`fnn.optimizers` (SGD, momentum, Nesterov, Adagrad, Adadelta,
RMSprop, Adam; every hyperparameter but the rate at its default) and each problem, a learning
rate is picked from a log grid on a few *tuning* starts or seeds, by the best score on them
(for (a) and (b) the mean over steps and starts of log10 of the loss, so that speed and the
final level both count; for (c) the mean final validation loss); a run that turns non-finite
scores +inf, and a rate at the edge of the grid is flagged. The picked rate is then reported
on *fresh* starts or seeds: the median and range of the final loss, and the steps (epochs) to
reach a threshold.

For (a) and (b) one vmapped, compiled call per optimizer runs every rate on the tuning and the
fresh starts together (a run costs microseconds; a compilation half a second): the rate is
chosen from the tuning rows alone. For (c) the sweep over rates x tuning seeds is one vmapped
call and the picked rate on the fresh seeds a second one.

Problems:

(a) :math:`f(x) = \\tfrac12 x^\\top A x` in 10 dimensions, :math:`A = Q \\Lambda Q^\\top` with
    eigenvalues log-spaced from 1 to 100 (condition number 100) and a random rotation
    :math:`Q`, so that the hard directions are not the coordinate axes; starts
    :math:`x_0 \\sim N(0, I)`; run by :func:`fnn.descent.minimize`;
(b) Rosenbrock :math:`(1 - x)^2 + 100 (y - x^2)^2` from :math:`(-1.2, 1) + N(0, 0.1^2 I)`,
    minimum 0 at (1, 1); run by :func:`fnn.descent.minimize`;
(c) the digits MLP of the ``digits`` experiment (64-128-128-10 ReLU, batch 128), trained by
    :class:`fnn.train.Trainer`; seeds set initialisation and shuffling; the threshold is on
    the training loss (mean over an epoch's batches).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments import digits
from experiments.api import Check, Config, Result, Verdict
from fnn import descent, optimizers
from fnn.train import many

CLAIM = "Seven optimizers, each at a rate picked by a vmapped sweep, compared over seeds: momentum and Nesterov converge several times faster than SGD on an ill-conditioned quadratic and on Rosenbrock, where constant-rate RMSprop and Adadelta stall; on the digits MLP the adaptive methods reach a low training loss first."
CRITERION = "All of, on the fresh starts at each optimizer's picked rate, with 'several times' read as >= 3x: on the quadratic and on Rosenbrock, SGD's median steps to f < 1e-6 are >= 3x those of momentum and of Nesterov; RMSprop and Adadelta stall there: none of their runs reaches f < 1e-6; on the digits MLP every adaptive method (Adagrad, Adadelta, RMSprop, Adam) reaches a training loss < 0.01 in fewer median epochs than every non-adaptive one (SGD, momentum, Nesterov)."

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam")
DIM, CONDITION = 10, 100.0
THRESHOLDS = {"quadratic": 1e-6, "rosenbrock": 1e-6, "digits_mlp": 1e-2}
FLOOR = 1e-12  # losses below this count as converged in the sweep's score


def _quadratic(key: jax.Array):
    q, _ = jnp.linalg.qr(jax.random.normal(key, (DIM, DIM)))
    a = (q * jnp.logspace(0.0, np.log10(CONDITION), DIM)) @ q.T
    a = 0.5 * (a + a.T)
    return lambda x: 0.5 * x @ a @ x


def _rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _descent_curves(fun, name: str, steps: int):
    """``(rates [R], starts [S, d]) -> losses [R, S, T]``, one compiled call."""

    def one(lr, x0):
        return descent.minimize(fun, x0, optimizers.get(name, learning_rate=lr), steps)[1]

    return jax.jit(jax.vmap(jax.vmap(one, (None, 0)), (0, None)))


def _mlp_runs(name: str, epochs: int, sets):
    """``(rates [R], keys [S]) -> (histories, test (loss, accuracy))``, each ``[R, S, ...]``."""
    trainer = digits.trainer(epochs, optimizer=name)

    def runs(rates, keys):
        members, hyperparams = many.grid(keys, {"learning_rate": rates})
        _, history, test = digits.fit_many_and_test(trainer, members, hyperparams, *sets, per_member=("hyperparams",))
        return many.reshape_members((history, test), (rates.shape[0], keys.shape[0]))

    return jax.jit(runs)


def _descent_score(curves: np.ndarray) -> np.ndarray:
    """[R, S, T] -> [R]: mean over starts and steps of log10(max(loss, FLOOR)); +inf if any is non-finite."""
    logs = np.log10(np.maximum(np.where(np.isfinite(curves), curves, np.inf), FLOOR))
    return logs.mean(axis=(1, 2))


def _steps_to(curves: np.ndarray, threshold: float) -> np.ndarray:
    """[S, T] -> [S]: the first step (or epoch, counted from 1) whose loss is below ``threshold``, -1 if never."""
    below = curves < threshold
    return np.where(below.any(-1), below.argmax(-1), -1)


def _best(rates: np.ndarray, score: np.ndarray) -> tuple[float, bool]:
    i = int(np.argmin(np.where(np.isfinite(score), score, np.inf)))
    return float(rates[i]), i in (0, len(rates) - 1)


def run(config: Config) -> Result:
    quick = config.quick
    key = jax.random.key(config.seed)
    n_tune, n_eval = (2, 3) if quick else (4, 16)
    descent_steps = {"quadratic": 200 if quick else 2000, "rosenbrock": 500 if quick else 10000}
    descent_rates = 10.0 ** np.arange(-4.0, 2.01, 1.0 if quick else 0.25)
    mlp_epochs = 3 if quick else 30
    mlp_rates = 10.0 ** np.arange(-3.0, 0.01, 1.0) if quick else 10.0 ** np.arange(-4.0, 1.51, 0.5)
    mlp_seeds = (1, 2) if quick else (3, 5)  # (tuning, fresh)
    mlp_optimizers = ("adam",) if quick else OPTIMIZERS  # each costs two compilations of the Trainer (seconds)

    k_problem, k_tune, k_eval, k_data, k_mlp = (jax.random.fold_in(key, i) for i in range(5))
    problems = {"quadratic": _quadratic(k_problem), "rosenbrock": _rosenbrock}

    def starts(problem: str, k: jax.Array, n: int) -> jax.Array:
        if problem == "quadratic":
            return jax.random.normal(k, (n, DIM))
        return jnp.array([-1.2, 1.0]) + 0.1 * jax.random.normal(k, (n, 2))

    results: dict[str, dict[str, dict]] = {}
    for problem, fun in problems.items():
        results[problem] = {}
        both = jnp.concatenate([starts(problem, k_tune, n_tune), starts(problem, k_eval, n_eval)])
        for name in OPTIMIZERS:
            curves = np.asarray(
                _descent_curves(fun, name, descent_steps[problem])(jnp.asarray(descent_rates, jnp.float32), both)
            )
            score = _descent_score(curves[:, :n_tune])
            lr, at_edge = _best(descent_rates, score)
            final = curves[list(descent_rates).index(lr), n_tune:]
            results[problem][name] = _record(
                lr, at_edge, descent_rates, score, final, final[:, -1], _steps_to(final, THRESHOLDS[problem])
            )

    # (c) the digits MLP: the score is the final validation loss.
    sets = digits.splits(k_data)
    tune_keys, eval_keys = (jax.random.split(jax.random.fold_in(k_mlp, i), n) for i, n in enumerate(mlp_seeds))
    results["digits_mlp"] = {}
    for name in mlp_optimizers:
        runs = _mlp_runs(name, mlp_epochs, sets)
        history, _ = runs(jnp.asarray(mlp_rates, jnp.float32), tune_keys)
        val = np.asarray(history.val_loss[..., -1])
        score = np.where((np.asarray(history.nonfinite_epoch) >= 0) | ~np.isfinite(val), np.inf, val).mean(axis=1)
        lr, at_edge = _best(mlp_rates, score)
        history, (test_loss, test_acc) = jax.tree.map(
            lambda a: np.asarray(a)[0], runs(jnp.asarray([lr], jnp.float32), eval_keys)
        )
        train_loss = history.train_loss
        steps = _steps_to(train_loss, THRESHOLDS["digits_mlp"])
        record = _record(
            lr, at_edge, mlp_rates, score, train_loss, train_loss[:, -1], np.where(steps >= 0, steps + 1, -1)
        )
        record.update(
            test_accuracy=test_acc,
            test_loss=test_loss,
            test_accuracy_median=float(np.median(test_acc)),
            num_nonfinite=int((np.asarray(history.nonfinite_epoch) >= 0).sum()),
        )
        results["digits_mlp"][name] = record

    summary = _summary(results, descent_steps, mlp_epochs, n_tune, n_eval, mlp_seeds)
    metrics = {
        "optimizers": list(OPTIMIZERS),
        "thresholds": THRESHOLDS,
        "descent_steps": descent_steps,
        "mlp_epochs": mlp_epochs,
        "num_tuning_starts": n_tune,
        "num_eval_starts": n_eval,
        "mlp_tuning_seeds": mlp_seeds[0],
        "mlp_eval_seeds": mlp_seeds[1],
        "results": {
            p: {n: {k: v for k, v in r.items() if k != "curves"} for n, r in rs.items()} for p, rs in results.items()
        },
    }
    return Result(metrics=metrics, figure=_figure(results), summary=summary)


ADAPTIVE = ("adagrad", "adadelta", "rmsprop", "adam")
SEVERAL = 3.0  # "several times faster", as CRITERION reads it


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    results = metrics["results"]

    def median(problem: str, name: str) -> float:  # steps (epochs) to the threshold; inf when never
        return float(results[problem][name]["steps_to_threshold_median"])

    def ratio(problem: str, name: str) -> float:  # SGD's steps over the other's; 0 when the other never gets there
        sgd, other = median(problem, "sgd"), median(problem, name)
        return sgd / max(other, 1.0) if np.isfinite(other) else 0.0

    def steps(problem: str, name: str) -> str:
        return f"{median(problem, name):.0f}" if np.isfinite(median(problem, name)) else "never"

    checks = []
    for problem in ("quadratic", "rosenbrock"):
        ratios = {n: ratio(problem, n) for n in ("momentum", "nesterov")}
        checks.append(
            Check(
                f"momentum, Nesterov >= 3x faster than SGD ({problem})",
                min(ratios.values()) >= SEVERAL,
                f"steps SGD {steps(problem, 'sgd')}, "
                + ", ".join(
                    f"{n} {steps(problem, n)}" + (f" ({r:.2f}x)" if 0 < r < np.inf else "") for n, r in ratios.items()
                ),
            )
        )
    reached = {
        (p, n): float(results[p][n]["fraction_reaching_threshold"])
        for p in ("quadratic", "rosenbrock")
        for n in ("rmsprop", "adadelta")
    }
    checks.append(
        Check(
            "RMSprop, Adadelta stall",
            max(reached.values()) == 0,
            f"at most {max(reached.values()):.0%} of their runs reach f < 1e-6 on either problem",
        )
    )
    missing = [n for n in OPTIMIZERS if n not in results["digits_mlp"]]
    if missing:  # quick mode trains Adam alone on the MLP: nothing to compare, so not shown
        checks.append(Check("adaptive first on the MLP", False, f"not measured: no MLP runs for {', '.join(missing)}"))
    else:
        epochs = {n: median("digits_mlp", n) for n in OPTIMIZERS}
        slowest_adaptive = max(epochs[n] for n in ADAPTIVE)
        fastest_other = min(epochs[n] for n in OPTIMIZERS if n not in ADAPTIVE)
        checks.append(
            Check(
                "adaptive first on the MLP",
                slowest_adaptive < fastest_other,
                "median epochs to loss < 0.01: " + ", ".join(f"{n} {steps('digits_mlp', n)}" for n in OPTIMIZERS),
            )
        )
    return Verdict.of(*checks)


def _record(lr, at_edge, rates, score, curves, final, steps) -> dict:
    reached = steps >= 0
    return {
        "learning_rate": lr,
        "rate_at_grid_edge": at_edge,
        "sweep_rates": rates,
        "sweep_score": np.where(np.isfinite(score), score, np.nan),
        "curves": curves,
        "final_loss": final,
        "final_loss_median": float(np.median(final)),
        "steps_to_threshold": steps,
        "fraction_reaching_threshold": float(reached.mean()),
        # The median over all runs, those that never got there counting as slowest.
        "steps_to_threshold_median": float(np.median(np.where(reached, steps, np.inf))),
    }


def _summary(results, descent_steps, mlp_epochs, n_tune, n_eval, mlp_seeds) -> str:
    titles = {
        "quadratic": f"(a) quadratic, dim {DIM}, condition {CONDITION:g}, {descent_steps['quadratic']} steps",
        "rosenbrock": f"(b) Rosenbrock from (-1.2, 1) + N(0, 0.1^2), {descent_steps['rosenbrock']} steps",
        "digits_mlp": f"(c) digits MLP, {mlp_epochs} epochs, batch {digits.BATCH_SIZE} (loss = training loss)",
    }
    lines = [
        (
            f"rates picked on {n_tune} tuning starts ({mlp_seeds[0]} seeds for the MLP); "
            f"reported on {n_eval} fresh starts ({mlp_seeds[1]} seeds): median [min, max]"
        )
    ]
    for problem, rs in results.items():
        unit = "epochs" if problem == "digits_mlp" else "steps"
        lines.append(f"{titles[problem]}; {unit} to loss < {THRESHOLDS[problem]:g}:")
        for name, r in rs.items():
            final = r["final_loss"]
            median = r["steps_to_threshold_median"]
            reach = "never" if not np.isfinite(median) else f"{median:.0f}"
            if 0 < r["fraction_reaching_threshold"] < 1:
                reach += f" ({r['fraction_reaching_threshold']:.0%} reach it)"
            line = (
                f"  {name:<9} lr {r['learning_rate']:<8.3g}{'*' if r['rate_at_grid_edge'] else ' '} "
                f"final {np.median(final):.2e} [{final.min():.1e}, {final.max():.1e}]  {unit} {reach}"
            )
            if "test_accuracy" in r:
                acc = r["test_accuracy"]
                line += f"  test acc {np.median(acc):.2%} [{acc.min():.2%}, {acc.max():.2%}]"
                if r["num_nonfinite"]:
                    line += f", {r['num_nonfinite']} run(s) non-finite"
            lines.append(line)
    lines.append("* the picked rate is at the edge of the swept grid")
    return "\n".join(lines)


def _figure(results):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 8), layout="constrained")
    axes = fig.subplots(2, 3)
    colors = dict(zip(OPTIMIZERS, [f"C{i}" for i in range(len(OPTIMIZERS))]))
    titles = {
        "quadratic": "(a) quadratic, condition 100",
        "rosenbrock": "(b) Rosenbrock",
        "digits_mlp": "(c) digits MLP",
    }
    for col, (problem, rs) in enumerate(results.items()):
        ax, ax_sweep = axes[0, col], axes[1, col]
        for name, r in rs.items():
            curves = np.asarray(r["curves"], np.float64)
            x = np.arange(1, curves.shape[-1] + 1)
            ax.plot(x, np.median(curves, axis=0), color=colors[name], label=f"{name} ({r['learning_rate']:.2g})")
            ax.fill_between(x, curves.min(axis=0), curves.max(axis=0), color=colors[name], alpha=0.15)
            ax_sweep.plot(r["sweep_rates"], r["sweep_score"], "o-", color=colors[name], ms=3, label=name)
            ax_sweep.axvline(r["learning_rate"], color=colors[name], lw=0.6, ls=":")
        unit = "epoch" if problem == "digits_mlp" else "step"
        ax.set(
            xscale="log",
            yscale="log",
            title=f"{titles[problem]}: median, range over seeds",
            xlabel=unit,
            ylabel="training loss" if problem == "digits_mlp" else "f(x)",
        )
        ax.axhline(THRESHOLDS[problem], color="gray", lw=0.6, ls="--")
        if problem != "digits_mlp":
            ax.set_ylim(bottom=FLOOR)  # float32 runs that hit exactly 0 drop off the plot below it
        ax.legend(fontsize="x-small", title="optimizer (lr)", title_fontsize="x-small")
        score = "mean final validation loss" if problem == "digits_mlp" else "mean log10 loss over steps"
        ax_sweep.set(xscale="log", title="rate sweep on the tuning seeds", xlabel="learning rate", ylabel=score)
        if problem == "digits_mlp":
            ax_sweep.set_yscale("log")
    return fig
