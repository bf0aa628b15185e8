r"""Depth against width on a line: the sawtooth needs 2L units deep and 2^L units shallow.

Measured, in float64:

1. the sawtooth :math:`t^L` (:func:`fnn.regions.sawtooth_params`, :math:`L` hidden layers of
   two ReLUs) for :math:`L = 1, \dots, 10`: its exact number of linear pieces on
   :math:`[0, 1]` by :func:`fnn.regions.count_pieces` (theory :math:`2^L`), cross-checked by
   the grid counter :func:`fnn.regions.count_pieces_bruteforce`;
2. the units a single hidden layer needs: at least :math:`2^L - 1`
   (:func:`fnn.regions.shallow_width_needed`, one breakpoint per unit), and the width of the
   exact one-hidden-layer interpolant :func:`fnn.regions.fit_shallow_interpolant`, which is
   :math:`2^L` (the :math:`2^L - 1` bound cannot be met by this function; the proof is in its
   docstring); against :math:`2L` units deep;
3. the interpolant's error against the deep network: on a dyadic grid (where every operation
   is exact) and at uniform random points (where float64 summation of :math:`2^L` terms of size
   about :math:`2^L` rounds);
4. random networks at equal budgets of hidden units (16 and 32 units: one layer, or 2, 4, 8
   layers), He weights and :math:`N(0, 1)` biases, exact piece counts on :math:`[-5, 5]` over
   seeds, against the most one layer can have (units + 1) and the most the architecture can
   have (Serra et al. 2018, exact on a line: :math:`\prod_l (n_l + 1)`).

References: M. Telgarsky, *Benefits of depth in neural networks*, COLT 2016; B. Hanin,
D. Rolnick, *Complexity of linear regions in deep networks*, ICML 2019.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments.api import Check, Config, Result, Verdict
from fnn import mlp, regions

CLAIM = "The sawtooth t^L has 2^L linear pieces from 2L ReLUs in L layers, while one hidden layer needs at least 2^L - 1 units (2^L for this function); random deep nets at equal budgets do not show this gain."
CRITERION = "All of, for every depth run (L = 1..10; 1..6 in quick mode): t^L built from 2L ReLUs in L layers has exactly 2^L pieces (exact count, grid cross-check agreeing); one hidden layer needs >= 2^L - 1 units and the exact one-layer interpolant has 2^L units and reproduces t^L exactly on a dyadic grid (error 0); for random nets at each budget (16, 32 units) no deeper architecture averages more pieces than one hidden layer can have at all (units + 1)."

LO, HI = -5.0, 5.0
GRID = 2**14 + 1
BUDGETS = {16: ((16,), (8, 8), (4, 4, 4, 4), (2,) * 8), 32: ((32,), (16, 16), (8, 8, 8, 8), (4,) * 8)}


def _sawtooth_rows(depths: range, key: jax.Array) -> list[dict]:
    # The dyadic grid k / 2^14 resolves every piece up to L = 10 (width 2^-10); one input
    # array for all depths, so the deep network (same layer shapes at every depth) compiles once.
    x = jnp.concatenate(
        [jnp.linspace(0.0, 1.0, GRID, dtype=jnp.float64), jax.random.uniform(key, (20000,), jnp.float64)]
    )[:, None]
    rows = []
    for depth in depths:
        deep = regions.sawtooth_params(depth, dtype=jnp.float64)
        pieces = regions.count_pieces(deep, 0.0, 1.0)
        brute = regions.count_pieces_bruteforce(deep, 0.0, 1.0, GRID)
        shallow = regions.fit_shallow_interpolant(deep, 0.0, 1.0)
        gap = np.abs(np.asarray(mlp.apply(shallow, x) - mlp.apply(deep, x)))[:, 0]
        err = {"dyadic": float(gap[:GRID].max()), "uniform": float(gap[GRID:].max())}
        rows.append(
            {
                "depth": depth,
                "pieces": pieces,
                "pieces_bruteforce": brute,
                "deep_units": 2 * depth,
                "deep_parameters": sum(int(p["W"].size + p["b"].size) for p in deep),
                "shallow_units_lower_bound": regions.shallow_width_needed(pieces),
                "shallow_units_constructed": int(shallow[0]["W"].shape[1]),
                "shallow_parameters": sum(int(p["W"].size + p["b"].size) for p in shallow),
                "interpolant_max_error_dyadic": err["dyadic"],
                "interpolant_max_error_uniform": err["uniform"],
            }
        )
    return rows


def _random_rows(key: jax.Array, seeds: int, budgets: dict) -> dict[str, dict]:
    rows = {}
    for index, (budget, widths) in enumerate((b, w) for b, ws in budgets.items() for w in ws):
        batch = jax.tree.map(
            np.asarray,
            regions.random_networks(jax.random.fold_in(key, index), widths, seeds, input_dim=1, dtype=jnp.float64),
        )
        counts = np.array(
            [regions.count_pieces([{"W": p["W"][i], "b": p["b"][i]} for p in batch], LO, HI) for i in range(seeds)]
        )
        rows[f"{len(widths)}x{widths[0]}"] = {
            "budget": budget,
            "widths": list(widths),
            "pieces_mean": float(counts.mean()),
            "pieces_sd": float(counts.std(ddof=1)),
            "pieces_max": int(counts.max()),
            "pieces_min": int(counts.min()),
            "one_layer_max": budget + 1,
            "architecture_max": regions.deep_region_bound(widths, 1),
        }
    return rows


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    saw = metrics["sawtooth"]
    depths = [r["depth"] for r in saw]
    exact = all(r["pieces"] == 2 ** r["depth"] and r["deep_units"] == 2 * r["depth"] for r in saw)
    shallow = all(
        r["shallow_units_lower_bound"] == 2 ** r["depth"] - 1 and r["shallow_units_constructed"] == 2 ** r["depth"]
        for r in saw
    )
    dyadic = float(metrics["max_interpolant_error_dyadic"])
    deep_rows = {n: r for n, r in metrics["random_networks"].items() if len(r["widths"]) > 1}
    beyond = {n: float(r["pieces_mean"]) for n, r in deep_rows.items() if float(r["pieces_mean"]) > r["one_layer_max"]}
    best = max(deep_rows, key=lambda n: float(deep_rows[n]["pieces_mean"]))
    return Verdict.of(
        Check(
            "2^L pieces from 2L ReLUs",
            exact and metrics["bruteforce_agrees"] is True,
            f"exact for L = {depths[0]}..{depths[-1]}" if exact else "a count differs from 2^L",
        ),
        Check(
            "one layer needs 2^L - 1 (2^L here)",
            shallow and dyadic == 0,
            f"L = {depths[-1]}: {saw[-1]['shallow_units_constructed']} units vs {saw[-1]['deep_units']} deep, "
            f"interpolant error {dyadic:.1g}",
        ),
        Check(
            "no gain for random deep nets",
            not beyond,
            f"best deep mean {float(deep_rows[best]['pieces_mean']):.1f} ({best}) vs one-layer max "
            f"{deep_rows[best]['one_layer_max']}" + (f"; beyond it: {sorted(beyond)}" if beyond else ""),
        ),
    )


def run(config: Config) -> Result:
    depths = range(1, 7) if config.quick else range(1, 11)
    seeds = 10 if config.quick else 100
    budgets = {16: BUDGETS[16]} if config.quick else BUDGETS
    key = jax.random.key(config.seed)
    with jax.enable_x64(True):
        saw = _sawtooth_rows(depths, jax.random.fold_in(key, 0))
        rand = _random_rows(jax.random.fold_in(key, 1), seeds, budgets)
        x = np.linspace(0, 1, 2001)
        demo_deep = regions.sawtooth_params(4, dtype=jnp.float64)
        demo_shallow = regions.fit_shallow_interpolant(demo_deep, 0.0, 1.0)
        curves = {
            name: np.asarray(mlp.apply(p, jnp.asarray(x)[:, None]))[:, 0]
            for name, p in (("deep", demo_deep), ("shallow", demo_shallow))
        }
        demo_breaks, _, _ = regions.linear_pieces(demo_deep, 0.0, 1.0)

    all_exact = all(r["pieces"] == 2 ** r["depth"] for r in saw)
    all_brute = all(r["pieces_bruteforce"] == r["pieces"] for r in saw)
    last = saw[-1]
    metrics = {
        "sawtooth": saw,
        "pieces_equal_2_to_the_L": all_exact,
        "bruteforce_agrees": all_brute,
        "max_interpolant_error_dyadic": max(r["interpolant_max_error_dyadic"] for r in saw),
        "max_interpolant_error_uniform": max(r["interpolant_max_error_uniform"] for r in saw),
        "random_networks": rand,
        "random_interval": [LO, HI],
        "random_seeds": seeds,
    }
    lines = [
        f"sawtooth t^L on [0, 1], L = {depths[0]}..{depths[-1]}: exact pieces = 2^L for every L: {all_exact} "
        f"(grid cross-check agrees: {all_brute}); at L = {last['depth']}: {last['pieces']} pieces from "
        f"{last['deep_units']} deep units ({last['deep_parameters']} parameters), while one hidden layer needs "
        f">= {last['shallow_units_lower_bound']} units and the exact interpolant uses "
        f"{last['shallow_units_constructed']} ({last['shallow_parameters']} parameters)",
        "deep units 2L vs shallow units: "
        + ", ".join(f"L={r['depth']}: {r['deep_units']} vs {r['shallow_units_constructed']}" for r in saw),
        f"shallow interpolant vs deep sawtooth: max error {metrics['max_interpolant_error_dyadic']:.1e} on a dyadic grid, "
        f"{metrics['max_interpolant_error_uniform']:.1e} at uniform points (float64 rounding of 2^L-term sums; "
        f"L={last['depth']}: {last['interpolant_max_error_uniform']:.1e})",
        f"random ReLU nets (He weights, N(0,1) biases), exact pieces on [{LO:g}, {HI:g}], mean +- sd over {seeds} seeds:",
    ]
    for name, r in rand.items():
        lines.append(
            f"  {r['budget']} units as {name:<8}: {r['pieces_mean']:6.2f} +- {r['pieces_sd']:5.2f} "
            f"(max {r['pieces_max']}; one layer at most {r['one_layer_max']}, this architecture at most "
            f"{r['architecture_max']})"
        )
    for b in budgets:
        rows = {n: r for n, r in rand.items() if r["budget"] == b}
        best = max(rows, key=lambda n: rows[n]["pieces_mean"])
        above = [n for n, r in rows.items() if r["pieces_mean"] > b + 1]
        lines.append(
            f"{b} units: the most pieces on average from {best} ({rows[best]['pieces_mean']:.1f}); "
            + (
                f"mean above the one-layer maximum {b + 1}: {', '.join(above)}"
                if above
                else f"no architecture averages above the one-layer maximum {b + 1}"
            )
            + f", against architecture maxima up to {max(r['architecture_max'] for r in rows.values())}"
        )
    metrics["random_best_architecture"] = {
        str(b): max((n for n, r in rand.items() if r["budget"] == b), key=lambda n: rand[n]["pieces_mean"])
        for b in budgets
    }
    return Result(metrics=metrics, summary="\n".join(lines), figure=_figure(saw, rand, x, curves, demo_breaks))


def _figure(saw, rand, x, curves, demo_breaks):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.2), layout="constrained")
    ax_units, ax_demo, ax_rand = fig.subplots(1, 3)
    depth = np.array([r["depth"] for r in saw])
    ax_units.semilogy(depth, [r["pieces"] for r in saw], "o-", label="pieces of t^L (exact count; = interpolant units)")
    ax_units.semilogy(
        depth, [r["shallow_units_constructed"] for r in saw], "s--", label="one layer: units of exact interpolant"
    )
    ax_units.semilogy(
        depth, [r["shallow_units_lower_bound"] for r in saw], ":", color="gray", label="one layer: lower bound 2^L - 1"
    )
    ax_units.semilogy(depth, [r["deep_units"] for r in saw], "^-", label="deep: 2L units")
    ax_units.set(xlabel="depth L", ylabel="count", title="sawtooth: units needed")
    ax_units.legend(fontsize="small")

    ax_demo.plot(x, curves["deep"], lw=2, label="deep t^4 (8 units)")
    ax_demo.plot(x, curves["shallow"], "--", label=f"one layer ({len(demo_breaks) - 1} units)")
    for b in demo_breaks[1:-1]:
        ax_demo.axvline(b, color="gray", lw=0.4)
    ax_demo.set(xlabel="x", title="t^4 and its one-hidden-layer interpolant")
    ax_demo.legend(fontsize="small")

    names = list(rand)
    pos = np.arange(len(names))
    means = [rand[n]["pieces_mean"] for n in names]
    sds = [rand[n]["pieces_sd"] for n in names]
    colours = [f"C{list(BUDGETS).index(rand[n]['budget'])}" for n in names]
    ax_rand.bar(pos, means, yerr=sds, color=colours, capsize=3)
    for n, p in zip(names, pos, strict=True):
        ax_rand.plot([p - 0.4, p + 0.4], [rand[n]["one_layer_max"]] * 2, "k--", lw=0.8)
    ax_rand.set_xticks(pos, names, rotation=45, fontsize="small")
    ax_rand.set(ylabel=f"pieces on [{LO:g}, {HI:g}]", title="random nets, equal budgets (dashed: 1-layer max)")
    return fig
