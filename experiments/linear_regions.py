r"""Linear regions in the plane: random deep and shallow ReLU nets at equal budgets, against the bounds.

Networks :math:`\mathbb R^2 \to \mathbb R` with the same number of hidden ReLUs spread over 1 to
4 layers: 9 units as 1x9 and 3x3, 24 units as 1x24, 2x12, 3x8 and 4x6. Weights by the He
scheme (:func:`fnn.mlp.init`), biases :math:`N(0, 1)` (:func:`fnn.regions.random_networks`);
many seeds per architecture, drawn in one vmapped call.

Measured, per architecture, as mean and standard deviation over seeds:

1. the activation regions met on an :math:`R \times R` grid over the box
   :math:`[-6, 6]^2` (:func:`fnn.regions.region_counts`, jitted and vmapped over the seeds):
   distinct activation patterns. Each pattern's region is convex, so each pattern is one
   region; regions thinner than the grid spacing are missed, so this is a lower bound on the
   regions in the box, and the regions outside the box are not counted at all;
2. grid-connected components of equal pattern, which exceed the pattern count only where the
   grid breaks a thin region apart (a measure of what the resolution misses);
3. the count at a coarser grid, to show how the estimate grows with resolution;
4. the bounds: one layer of :math:`n` units in general position has exactly
   :math:`\sum_{j \le 2} \binom{n}{j}` regions in the whole plane (Zaslavsky); the upper bound
   of Serra et al. (2018) and the weaker one of Montufar (2017) for each architecture; the
   lower bound of Montufar et al. (2014) on what the best weights of that architecture reach.

Reference: B. Hanin, D. Rolnick, *Complexity of linear regions in deep networks*, ICML 2019,
who find that at initialisation the number of regions grows with the number of units, not
exponentially with depth.
"""

from __future__ import annotations

import jax
import numpy as np

from experiments.api import Check, Config, Result, Verdict
from fnn import regions

CLAIM = "At equal numbers of ReLUs, random deep nets at initialisation cut the plane into no more linear regions than one wide layer, far below the deep upper and lower bounds on the maximum."
CRITERION = "Both of, on the mean regions over seeds met on the grid, with 'far below' read as an order of magnitude: at each budget of units every deeper architecture has no more regions than the one-layer net of the same units; every deeper architecture has <= 1/10 of both its deep upper bound (Serra et al. 2018) and its deep lower bound on the maximum (Montufar et al. 2014)."

ARCHITECTURES = ((9,), (3, 3, 3), (24,), (12, 12), (8, 8, 8), (6, 6, 6, 6))
QUICK_ARCHITECTURES = ((9,), (3, 3, 3), (24,), (8, 8, 8))
HALF = 6.0
BOX = (-HALF, HALF, -HALF, HALF)
MAP_RESOLUTION = 400


def _name(widths) -> str:
    return f"{len(widths)}x{widths[0]}"


def run(config: Config) -> Result:
    seeds = 4 if config.quick else 16
    resolution = 200 if config.quick else 800
    coarse = None if config.quick else resolution // 4
    map_resolution = resolution if config.quick else MAP_RESOLUTION
    architectures = QUICK_ARCHITECTURES if config.quick else ARCHITECTURES
    key = jax.random.key(config.seed)
    rows, maps = {}, {}
    for widths in architectures:
        batch = regions.random_networks(
            jax.random.fold_in(key, ARCHITECTURES.index(widths)), widths, seeds, input_dim=2
        )
        # One network at a time inside the compiled map: on CPU the batched sort is slower than a loop.
        fine = regions.region_counts(batch, BOX, resolution, batch_size=1)
        rough = regions.region_counts(batch, BOX, coarse, components=False, batch_size=1) if coarse else None
        units = sum(widths)
        row = {
            "widths": list(widths),
            "units": units,
            "parameters": sum(a * b + b for a, b in zip((2, *widths), (*widths, 1), strict=True)),
            "regions_mean": float(fine.patterns.mean()),
            "regions_sd": float(fine.patterns.std(ddof=1)),
            "regions_min": int(fine.patterns.min()),
            "regions_max": int(fine.patterns.max()),
            "components_mean": float(fine.components.mean()),
            "coarse_regions_mean": float(rough.patterns.mean()) if rough is not None else None,
            "shallow_bound_same_units": regions.shallow_region_bound(units, 2),
            "serra_upper_bound": regions.deep_region_bound(widths, 2),
            "montufar2017_upper_bound": regions.deep_region_bound(widths, 2, method="montufar"),
            "montufar2014_lower_bound": regions.deep_region_lower_bound(widths, 2),
        }
        row["fraction_of_shallow_bound"] = row["regions_mean"] / row["shallow_bound_same_units"]
        rows[_name(widths)] = row
        if widths in ((24,), (8, 8, 8)):
            one = jax.tree.map(lambda leaf: leaf[0], batch)
            maps[_name(widths)] = regions.region_map(one, BOX, map_resolution)

    metrics = {
        "box": list(BOX),
        "resolution": resolution,
        "coarse_resolution": coarse,
        "seeds": seeds,
        "architectures": rows,
    }
    lines = [
        f"random ReLU nets R^2 -> R (He weights, N(0,1) biases), {seeds} seeds each; activation regions met on a "
        f"{resolution}x{resolution} grid over [-{HALF:g}, {HALF:g}]^2 (a lower bound on the regions in the box), mean +- sd:"
    ]
    for name, r in rows.items():
        lines.append(
            f"  {name:<6} ({r['units']:2d} units): {r['regions_mean']:7.1f} +- {r['regions_sd']:5.1f} "
            + (f"(grid {coarse}: {r['coarse_regions_mean']:.1f}; " if coarse else "(")
            + f"components {r['components_mean']:.1f}) | one layer of "
            f"{r['units']}: {r['shallow_bound_same_units']} | deep upper (Serra) {r['serra_upper_bound']}, "
            f"lower (Montufar 2014) {r['montufar2014_lower_bound']}"
        )
    for units in sorted({r["units"] for r in rows.values()}):
        group = {n: r for n, r in rows.items() if r["units"] == units}
        shallow = next(n for n, r in group.items() if len(r["widths"]) == 1)
        deeper = [n for n in group if n != shallow]
        fewer = [n for n in deeper if group[n]["regions_mean"] < group[shallow]["regions_mean"]]
        lines.append(
            f"{units} units: the one-layer net has {group[shallow]['regions_mean']:.1f} regions in the box "
            f"(bound over the plane {group[shallow]['shallow_bound_same_units']}); deeper nets with fewer on average: "
            f"{', '.join(fewer) if fewer else 'none'} of {', '.join(deeper)}; deep lower bounds on the maximum: "
            + ", ".join(f"{n} {group[n]['montufar2014_lower_bound']}" for n in deeper)
        )
    return Result(metrics=metrics, summary="\n".join(lines), figure=_figure(rows, maps))


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    rows = metrics["architectures"]
    shallow = {r["units"]: float(r["regions_mean"]) for r in rows.values() if len(r["widths"]) == 1}
    deep = {n: r for n, r in rows.items() if len(r["widths"]) > 1}
    more = [n for n, r in deep.items() if float(r["regions_mean"]) > shallow[r["units"]]]
    ratios = {
        n: float(r["regions_mean"]) / min(r["serra_upper_bound"], r["montufar2014_lower_bound"])
        for n, r in deep.items()
    }
    near = [n for n, q in ratios.items() if q > 0.1]
    return Verdict.of(
        Check(
            "no more regions than one layer",
            not more,
            ", ".join(f"{n} {float(r['regions_mean']):.1f} vs {shallow[r['units']]:.1f}" for n, r in deep.items()),
        ),
        Check(
            "far below the deep bounds",
            not near,
            "regions / smaller bound: " + ", ".join(f"{n} {q:.3g}" for n, q in ratios.items()),
        ),
    )


def _figure(rows, maps):
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 4.8), layout="constrained")
    axes = fig.subplots(1, len(maps) + 1, width_ratios=[1] * len(maps) + [1.6])
    rng = np.random.default_rng(0)
    for ax, (name, ids) in zip(axes[:-1], maps.items(), strict=True):
        colours = ListedColormap(rng.uniform(0.15, 1.0, (ids.max() + 1, 3)))
        ax.imshow(ids, origin="lower", extent=BOX, cmap=colours, interpolation="nearest")
        ax.set(title=f"{name}: {ids.max() + 1} regions in the box (seed 0)", xlabel="x1", ylabel="x2")

    ax = axes[-1]
    names = list(rows)
    pos = np.arange(len(names))
    ax.bar(
        pos,
        [rows[n]["regions_mean"] for n in names],
        yerr=[rows[n]["regions_sd"] for n in names],
        capsize=3,
        color="C0",
        label="measured (grid, mean +- sd)",
    )
    marks = (
        ("shallow_bound_same_units", "_", "k", "one layer, same units (Zaslavsky)"),
        ("serra_upper_bound", "v", "C3", "deep upper bound (Serra et al. 2018)"),
        ("montufar2014_lower_bound", "^", "C2", "deep lower bound on the max (Montufar et al. 2014)"),
    )
    for key, marker, colour, label in marks:
        ax.scatter(pos, [rows[n][key] for n in names], marker=marker, color=colour, s=80, zorder=3, label=label)
    ax.set_yscale("log")
    ax.set_xticks(pos, names)
    ax.set(ylabel="linear regions", title="regions at initialisation vs bounds")
    ax.legend(fontsize="x-small", loc="upper left")
    return fig
