"""The classic learning rules: perceptron and delta rule on the gates, Novikoff's bound, Hebb vs Oja.

Measures, in order:

1. the perceptron rule (zero start, fixed order, rate 1) on AND, OR, NAND and XOR: epochs to
   converge, mistakes per epoch, and on XOR the cycle it falls into;
2. the delta rule (LMS) on the same gates: epochs until the MSE settles, accuracy with the
   output thresholded at 0.5, distance to the least-squares solution;
3. sweeps over learning rates x seeds (random start, shuffled order), for all four gates at
   once: one vmapped, compiled call per rule; the fraction of runs converging;
4. Novikoff's bound (R / gamma)^2 against the mistakes actually made, on the gates (gamma from
   the hand-set weights) and on random separable data of several margins (one vmapped call
   over seeds per margin);
5. Hebb's rule against Oja's on correlated 2-D Gaussian data: weight norms per epoch and the
   angle to the first principal component.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments.api import Check, Config, Result, Verdict, numbers
from fnn import linear, perceptron, rules

CLAIM = "The perceptron rule learns AND/OR/NAND within Novikoff's (R/gamma)^2 mistakes and cycles on XOR; the delta rule settles at least squares; Oja's rule finds the top principal component while Hebb's weights grow geometrically."
CRITERION = "All of: the perceptron rule converges on AND, OR and NAND with all 4 rows right; mistakes <= (R/gamma)^2 in every run (gates and random separable data); on XOR it does not converge and is seen to cycle; the delta rule's MSE settles (change < 1e-6) on every gate within 5% of the least-squares MSE; Oja's |w| ends within 0.01 of 1 with |cosine| >= 0.999 to the top principal component; Hebb's |w| grows in every epoch by a ratio that varies by under 5% over the second half of the epochs (geometric)."

GATES = ("and", "or", "nand", "xor")
DELTA_RATE = 0.1
MARGINS = (0.05, 0.1, 0.2, 0.4)


def _gates():
    x = perceptron.truth_table()
    ys = jnp.stack([perceptron.truth_table(g)[1] for g in GATES])
    return x, ys


def _sweep(rule: str, x, ys, rates, keys, epochs: int):
    """One compiled call: gates x rates x seeds, each run from a random start in a shuffled order."""

    def one(y, lr, key):
        k_init, k_order = jax.random.split(key)
        w = 0.5 * jax.random.normal(k_init, (3,))
        return rules.train(
            rule, {"w": w[:2], "b": w[2]}, x, y, learning_rate=lr, epochs=epochs, key=k_order, shuffle=True
        )

    over_seeds = jax.vmap(one, in_axes=(None, None, 0))
    over_rates = jax.vmap(over_seeds, in_axes=(None, 0, None))
    return jax.jit(jax.vmap(over_rates, in_axes=(0, None, None)))(ys, rates, keys)


def _random_bounds(key, margins, num_seeds: int, n: int, d: int, epochs: int):
    """One compiled call over margins x seeds: mistakes from zero weights, Novikoff's bound, converged."""

    def one(margin, k):
        x, y, u = rules.separable_data(k, n, d, margin=margin)
        result = rules.train("perceptron", perceptron.init(d), x, y, learning_rate=1.0, epochs=epochs)
        return result.state.mistakes, rules.novikoff_bound(u, x, y), result.converged

    keys = jax.random.split(key, num_seeds)
    return jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))(jnp.array(margins), keys)


def run(config: Config) -> Result:
    quick = config.quick
    epochs = 30 if quick else 100
    delta_epochs = 300 if quick else 2000
    num_seeds = 8 if quick else 64
    rates = jnp.array([0.01, 0.1, 1.0] if quick else [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0])
    key = jax.random.key(config.seed)
    k_sweep, k_random, k_oja = jax.random.split(key, 3)
    x, ys = _gates()
    lines, metrics = [], {"epochs": epochs, "delta_epochs": delta_epochs, "num_seeds": num_seeds}

    # 1. The perceptron rule, zero start, fixed order.
    mistakes_curves, bounds = {}, {}
    rows = []
    for g, y in zip(GATES, ys):
        r = rules.train("perceptron", perceptron.init(2), x, y, learning_rate=1.0, epochs=epochs)
        mistakes_curves[g] = np.asarray(r.history)
        accuracy = float(jnp.mean(perceptron.apply(r.params, x) == y))
        bound = float(rules.novikoff_bound(perceptron.gate(g), x, y)) if g != "xor" else float("nan")
        bounds[g] = (int(r.state.mistakes), bound)
        metrics[f"perceptron_{g}"] = {
            "converged": bool(r.converged),
            "epochs_to_converge": int(r.epochs_to_converge),
            "mistakes": int(r.state.mistakes),
            "novikoff_bound": bound,
            "accuracy": accuracy,
            "cycled": bool(r.cycled),
            "cycle_epoch": int(r.cycle_epoch),
            "cycle_length": int(r.cycle_length),
            "mistakes_per_epoch": mistakes_curves[g],
        }
        if g == "xor":
            rows.append(
                f"  xor: no convergence in {epochs} epochs; cycle seen at epoch {int(r.cycle_epoch)} "
                f"(period {int(r.cycle_length)} epoch, {int(mistakes_curves[g][-1])} mistakes per period); "
                f"accuracy {accuracy:.2f}"
            )
        else:
            rows.append(
                f"  {g}: converged at epoch {int(r.epochs_to_converge)} after {int(r.state.mistakes)} mistakes "
                f"(Novikoff bound {bound:.0f}); accuracy {accuracy:.2f}"
            )
    lines += ["perceptron rule (zero start, fixed order, lr 1):", *rows]

    # 2. The delta rule, zero start, fixed order.
    mse_curves, rows = {}, []
    for g, y in zip(GATES, ys):
        r = rules.train("delta", perceptron.init(2), x, y, learning_rate=DELTA_RATE, epochs=delta_epochs)
        ls = linear.least_squares(x, y)[0]
        mse_ls = float(jnp.mean((x @ ls["W"][:, 0] + ls["b"][0] - y) ** 2))
        distance = float(
            jnp.linalg.norm(jnp.concatenate([r.params["w"] - ls["W"][:, 0], r.params["b"][None] - ls["b"]]))
        )
        accuracy = float(jnp.mean(rules.classify(r.params, x, 0.5) == y))
        mse_curves[g] = np.asarray(r.history)
        metrics[f"delta_{g}"] = {
            "converged": bool(r.converged),
            "epochs_to_converge": int(r.epochs_to_converge),
            "final_mse": float(r.history[-1]),
            "least_squares_mse": mse_ls,
            "distance_to_least_squares": distance,
            "accuracy": accuracy,
            "mse_per_epoch": mse_curves[g],
        }
        rows.append(
            f"  {g}: MSE settled (change < 1e-6) at epoch {int(r.epochs_to_converge)}: {float(r.history[-1]):.4f} "
            f"(least squares {mse_ls:.4f}, distance {distance:.3f}); accuracy at 0.5: {accuracy:.2f}"
        )
    lines += [f"delta rule (zero start, fixed order, lr {DELTA_RATE}):", *rows]

    # 3. Sweeps over rates x seeds, all gates in one call per rule.
    seed_keys = jax.random.split(k_sweep, num_seeds)
    p_sweep = _sweep("perceptron", x, ys, rates, seed_keys, epochs)
    d_sweep = _sweep("delta", x, ys, rates, seed_keys, delta_epochs)
    d_correct = jax.vmap(
        jax.vmap(jax.vmap(lambda p, y: jnp.all(rules.classify(p, x, 0.5) == y), (0, None)), (0, None))
    )(d_sweep.params, ys)
    p_frac = np.asarray(jnp.mean(p_sweep.converged, axis=2))  # [gates, rates]
    d_frac = np.asarray(jnp.mean(d_sweep.converged, axis=2))
    d_ok = np.asarray(jnp.mean(d_correct, axis=2))
    d_diverged = np.asarray(jnp.mean(~jnp.isfinite(d_sweep.history[..., -1]), axis=(0, 2)))  # [rates]
    separable = [GATES.index(g) for g in ("and", "or", "nand")]
    metrics["sweep_rates"] = np.asarray(rates)
    metrics["perceptron_sweep_fraction_converged"] = {g: p_frac[i] for i, g in enumerate(GATES)}
    metrics["delta_sweep_fraction_converged"] = {g: d_frac[i] for i, g in enumerate(GATES)}
    metrics["delta_sweep_fraction_all_rows_correct"] = {g: d_ok[i] for i, g in enumerate(GATES)}
    metrics["delta_sweep_fraction_diverged_by_rate"] = d_diverged
    n_runs = rates.size * num_seeds
    lines.append(
        f"sweep, {rates.size} rates x {num_seeds} seeds per gate (random start, shuffled order), one vmapped call per rule:"
    )
    lines.append(
        "  perceptron rule converged: "
        + ", ".join(f"{g} {p_frac[i].mean():.0%}" for i, g in enumerate(GATES))
        + f" of {n_runs} runs ({epochs} epochs)"
    )
    lines.append(
        "  delta rule MSE settled: "
        + ", ".join(f"{g} {d_frac[i].mean():.0%}" for i, g in enumerate(GATES))
        + "; all 4 rows right at 0.5: "
        + ", ".join(f"{g} {d_ok[i].mean():.0%}" for i, g in enumerate(GATES))
        + f" ({delta_epochs} epochs)"
    )
    by_rate = zip(np.asarray(rates), p_frac[separable].mean(axis=0), d_ok[separable].mean(axis=0), d_diverged)
    lines.append(
        "  by rate, AND/OR/NAND pooled (perceptron converged / delta all rows right / delta diverged): "
        + "; ".join(f"{lr:g}: {p:.0%} / {dk:.0%} / {dv:.0%}" for lr, p, dk, dv in by_rate)
    )

    # 4. Novikoff's bound on random separable data.
    n, d = (100, 5) if quick else (500, 10)
    random_points, rows = [], []
    all_mistakes, all_bounds, all_converged = map(
        np.asarray, _random_bounds(k_random, MARGINS, num_seeds, n, d, 4 * epochs)
    )
    for m, mistakes, bound, converged in zip(MARGINS, all_mistakes, all_bounds, all_converged):
        random_points.append((m, mistakes, bound))
        metrics[f"novikoff_random_margin_{m}"] = {
            "mistakes": mistakes,
            "bound": bound,
            "fraction_converged": float(np.mean(converged)),
            "max_mistakes_over_bound": float(np.max(mistakes / bound)),
        }
        rows.append(
            f"  margin {m}: mistakes median {np.median(mistakes):.0f} (max {mistakes.max()}) vs bound median "
            f"{np.median(bound):.0f}; max ratio {np.max(mistakes / bound):.3f}; converged {np.mean(converged):.0%}"
        )
    worst = max(float(np.max(mk / b)) for _, mk, b in random_points)
    gate_worst = max(mk / b for g, (mk, b) in bounds.items() if g != "xor")
    metrics["novikoff_bound_held"] = bool(worst <= 1 and gate_worst <= 1)
    lines.append(
        f"Novikoff bound vs mistakes, random separable data ({n} points, d = {d}, {num_seeds} seeds per margin, zero start):"
    )
    lines += rows
    lines.append(
        f"  bound held in every run: {metrics['novikoff_bound_held']} (largest mistakes/bound: gates {gate_worst:.3f}, random {worst:.3f})"
    )

    # 5. Hebb vs Oja on correlated Gaussian data.
    cov = jnp.array([[3.0, 1.5], [1.5, 1.0]])
    data = jax.random.multivariate_normal(k_oja, jnp.zeros(2), cov, (200,))
    data = data - jnp.mean(data, axis=0, keepdims=True)
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(data.T @ data) / data.shape[0])
    top = eigenvectors[:, -1]
    start = {"w": jnp.array([0.0, 1.0]), "b": jnp.array(0.0)}
    hebbian_epochs = 10 if quick else 30
    hebb_run = rules.train("hebb", start, data, learning_rate=1e-3, epochs=hebbian_epochs)
    oja_run = rules.train("oja", start, data, learning_rate=1e-3, epochs=hebbian_epochs)
    hebb_norms, oja_norms = np.asarray(hebb_run.history), np.asarray(oja_run.history)
    finite = hebb_norms[np.isfinite(hebb_norms)]
    growth = float(np.exp(np.mean(np.diff(np.log(finite))))) if finite.size > 1 else float("nan")
    cosines = {
        name: float(abs(np.asarray(r.params["w"]) @ top) / np.linalg.norm(np.asarray(r.params["w"])))
        for name, r in (("hebb", hebb_run), ("oja", oja_run))
    }
    metrics.update(
        hebb_norms=hebb_norms,
        oja_norms=oja_norms,
        hebb_growth_per_epoch=growth,
        oja_final_norm=float(oja_norms[-1]),
        oja_cosine_to_top_pc=cosines["oja"],
        hebb_cosine_to_top_pc=cosines["hebb"],
        top_eigenvalue=float(eigenvalues[-1]),
    )
    lines.append(
        f"Hebb vs Oja (200 correlated 2-D Gaussian points, lr 1e-3, {hebbian_epochs} epochs): Hebb |w| grows x{growth:.3f} "
        f"per epoch to {hebb_norms[-1]:.3g} (cosine to top PC {cosines['hebb']:.4f}); Oja |w| = {oja_norms[-1]:.4f}, "
        f"cosine to top PC {cosines['oja']:.4f}"
    )

    figure = _figure(
        mistakes_curves,
        mse_curves,
        np.asarray(rates),
        p_frac,
        d_ok,
        bounds,
        random_points,
        hebb_norms,
        oja_norms,
        (np.asarray(data), top, np.asarray(hebb_run.params["w"]), np.asarray(oja_run.params["w"])),
    )
    return Result(metrics=metrics, figure=figure, summary="\n".join(lines))


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    separable = ("and", "or", "nand")
    learned = [
        metrics[f"perceptron_{g}"]["converged"] is True and float(metrics[f"perceptron_{g}"]["accuracy"]) == 1.0
        for g in separable
    ]
    xor = metrics["perceptron_xor"]
    excess = {
        g: float(metrics[f"delta_{g}"]["final_mse"]) / float(metrics[f"delta_{g}"]["least_squares_mse"]) - 1
        for g in GATES
    }
    settled = all(metrics[f"delta_{g}"]["converged"] is True for g in GATES)
    oja_norm, oja_cos = float(metrics["oja_final_norm"]), float(metrics["oja_cosine_to_top_pc"])
    hebb = np.asarray(numbers(metrics["hebb_norms"]))
    ratios = hebb[1:] / hebb[:-1]
    late = ratios[len(ratios) // 2 :]
    spread = float(late.max() / late.min() - 1) if late.size and np.all(np.isfinite(late)) else float("inf")
    return Verdict.of(
        Check(
            "perceptron learns AND/OR/NAND",
            all(learned),
            ", ".join(f"{g} {metrics[f'perceptron_{g}']['mistakes']} mistakes" for g in separable),
        ),
        Check(
            "within Novikoff's bound", metrics["novikoff_bound_held"] is True, f"held: {metrics['novikoff_bound_held']}"
        ),
        Check(
            "cycles on XOR",
            xor["converged"] is False and xor["cycled"] is True,
            f"cycle from epoch {xor['cycle_epoch']}" if xor["cycled"] else "no cycle seen",
        ),
        Check(
            "delta rule at least squares",
            settled and max(excess.values()) <= 0.05,
            f"MSE {max(excess.values()):+.1%} of least squares at worst" + ("" if settled else ", not settled"),
        ),
        Check(
            "Oja finds the top PC",
            abs(oja_norm - 1) <= 0.01 and oja_cos >= 0.999,
            f"|w| {oja_norm:.4f}, cosine {oja_cos:.4f}",
        ),
        Check(
            "Hebb grows geometrically",
            bool(np.all(ratios > 1)) and spread < 0.05,
            f"x{float(metrics['hebb_growth_per_epoch']):.2f} per epoch, late ratios vary {spread:.1%}",
        ),
    )


def _figure(mistakes_curves, mse_curves, rates, p_frac, d_ok, bounds, random_points, hebb_norms, oja_norms, pca):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 7.5), layout="constrained")
    (ax_mistakes, ax_mse, ax_sweep), (ax_bound, ax_norms, ax_pca) = fig.subplots(2, 3)
    for g, curve in mistakes_curves.items():
        ax_mistakes.plot(np.arange(1, curve.size + 1), curve, marker=".", label=g)
    ax_mistakes.set(title="perceptron rule: mistakes per epoch", xlabel="epoch", ylabel="mistakes")
    ax_mistakes.legend(fontsize="small")
    for g, curve in mse_curves.items():
        ax_mse.semilogx(np.arange(1, curve.size + 1), curve, label=g)
    ax_mse.set(title="delta rule: MSE of the linear output", xlabel="epoch", ylabel="MSE")
    ax_mse.legend(fontsize="small")
    for i, g in enumerate(GATES):
        offset = 0.015 * (i - 1.5)  # keeps coinciding curves visible
        ax_sweep.semilogx(rates, p_frac[i] + offset, marker="o", color=f"C{i}", label=f"perceptron {g}: converged")
        ax_sweep.semilogx(
            rates, d_ok[i] + offset, marker="x", linestyle="--", color=f"C{i}", label=f"delta {g}: all rows right"
        )
    ax_sweep.set(
        title="sweep over rates x seeds (random start, shuffled)",
        xlabel="learning rate",
        ylabel="fraction of seeds",
        ylim=(-0.05, 1.05),
    )
    ax_sweep.legend(fontsize="x-small", ncol=2)
    for m, mistakes, bound in random_points:
        ax_bound.loglog(bound, np.maximum(mistakes, 0.8), "o", alpha=0.6, label=f"random, margin {m}")
    for i, (g, (mk, b)) in enumerate(bounds.items()):
        if g != "xor":
            ax_bound.loglog([b], [mk], "k*", markersize=10)
            ax_bound.annotate(
                f"{g} ({mk} vs {b:.0f})",
                (b, mk),
                xytext=(6, -12 + 9 * i),
                textcoords="offset points",
                fontsize="x-small",
            )
    lims = np.array([min(ax_bound.get_xlim()[0], ax_bound.get_ylim()[0]), ax_bound.get_xlim()[1]])
    ax_bound.loglog(lims, lims, "k--", linewidth=1, label="mistakes = bound")
    ax_bound.set(title="Novikoff: mistakes vs (R / gamma)^2", xlabel="bound", ylabel="mistakes")
    ax_bound.legend(fontsize="x-small")
    ax_norms.semilogy(np.arange(1, hebb_norms.size + 1), hebb_norms, marker=".", label="Hebb")
    ax_norms.semilogy(np.arange(1, oja_norms.size + 1), oja_norms, marker=".", label="Oja")
    ax_norms.set(title="weight norm per epoch", xlabel="epoch", ylabel="|w|")
    ax_norms.legend(fontsize="small")
    data, top, w_hebb, w_oja = pca
    top = top if top[0] >= 0 else -top
    ax_pca.scatter(data[:, 0], data[:, 1], s=6, alpha=0.4, color="gray")
    scale = 2 * np.sqrt(np.max(np.sum(data**2, axis=1))) / 2
    for vector, label, style in (
        (top, "top principal component", "k-"),
        (w_oja, "Oja w", "C1--"),
        (w_hebb / np.linalg.norm(w_hebb), "Hebb w / |w|", "C0:"),
    ):
        sign = 1.0 if vector @ top >= 0 else -1.0
        ax_pca.plot([0, sign * scale * vector[0]], [0, sign * scale * vector[1]], style, linewidth=2, label=label)
    ax_pca.set(title="directions learned (data: correlated Gaussian)", xlabel="x1", ylabel="x2", aspect="equal")
    ax_pca.legend(fontsize="x-small")
    return fig
