r"""Two dimensions: a ridge is not localised, a tower is, and n x n towers approximate a function of two variables.

All networks come from :mod:`fnn.approximation` and are evaluated as ordinary MLPs (sigmoid
hidden layers, identity output). Measured:

1. a ridge (:func:`~fnn.approximation.ridge_params`, 2-2-1: a bump in :math:`x_1` of height 1 on
   :math:`[0, 1]`, step steepness :math:`w = 30`) and a tower over the unit square
   (:func:`~fnn.approximation.tower_params`, 2-4-1-1: two ridges ANDed by a second sigmoid layer
   of steepness 40), as images over :math:`[-1, 2]^2`; their value at the centre of the box and
   their *leakage* (:func:`~fnn.approximation.leakage`): the largest :math:`|g|` at distance at
   least 0.25 (max-norm) outside the box, over a 201 x 201 grid;
2. the approximation of :math:`f(x_1, x_2) = \sin 3x_1 \cos 3x_2 + x_1/2` on the unit square by
   :math:`n \times n` towers (:func:`~fnn.approximation.tower_network`, layers
   :math:`(2, 2n, n^2, 1)`), in two forms: plain towers with heights :math:`f` at the cell
   centres (Nielsen), and the telescoped form (columns ANDed with steps along :math:`x_2`, heights
   the increments of :math:`f`); the sup and the mean absolute error
   (:func:`~fnn.approximation.grid_errors`) on an :math:`(8n + 1)^2` grid, which holds every cell
   corner, against :math:`n`, with slopes fitted on :math:`n \ge 4`.

Theory: at a cell corner both ridges of every adjacent tower are at 1/2, the AND is off, and
plain towers drop towards the output bias there: their sup error does not shrink with
:math:`n`, though their mean error does, as :math:`O(1/n)`. The telescoped form loses only one
row's increment at a corner, so its sup error is :math:`O(1/n)`.

Reference: M. Nielsen, *Neural Networks and Deep Learning*, ch. 4, 2015.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from experiments.api import Check, Config, Result, Verdict, numbers
from fnn import approximation as approx

CLAIM = "A 2-2-1 ridge is not localised but a 2-4-1-1 tower is; n x n telescoped towers approximate a 2-D function with sup error O(1/n), while plain towers fail at the cell corners."
CRITERION = "All of, with leakage the largest |g| at max-norm distance >= 0.25 outside the unit box (height 1): the ridge's leakage is >= 0.5 (not localised) and the tower's <= 0.01 (localised); the telescoped towers' sup error has a slope against n (fitted for n >= 4) <= -0.9 (O(1/n), to within 0.1); the plain towers' sup error does not shrink: at the largest n it is >= that at the smallest."

BOX = (0.0, 1.0, 0.0, 1.0)
VIEW = (-1.0, 2.0)
HEIGHT, W, W_AND = 1.0, 30.0, 40.0
MARGIN, EXTENT = 0.25, 1.0
FORMS = ("telescoped", "towers")
SHOW_N = 8


def target(x1, x2):
    return jnp.sin(3 * x1) * jnp.cos(3 * x2) + x1 / 2


@functools.partial(jax.jit, static_argnums=0)
def _errors(n: int):
    """(sup, mean) absolute error of each form with n x n cells, on a grid through every cell corner."""
    return {
        form: approx.grid_errors(approx.tower_network(target, BOX, n, form=form), target, BOX, 8 * n + 1)
        for form in FORMS
    }


@jax.jit
def _localisation():
    ridge = approx.ridge_params(BOX[0], BOX[1], HEIGHT, W)
    tower = approx.tower_params(BOX, HEIGHT, W, w_and=W_AND)
    centre = jnp.array([[0.5, 0.5]])
    return {
        name: {
            "centre": approx.approximate(p, centre)[0, 0],
            "leakage": approx.leakage(p, BOX, margin=MARGIN, extent=EXTENT, num=201),
        }
        for name, p in (("ridge", ridge), ("tower", tower))
    }


def _images(num: int):
    """Ridge and tower over VIEW, and f with both n = SHOW_N approximations over the box."""
    view = jnp.linspace(*VIEW, num)
    v1, v2 = jnp.meshgrid(view, view, indexing="ij")
    view_points = jnp.stack([v1.ravel(), v2.ravel()], axis=1)
    inside = jnp.linspace(0.0, 1.0, num)
    b1, b2 = jnp.meshgrid(inside, inside, indexing="ij")
    box_points = jnp.stack([b1.ravel(), b2.ravel()], axis=1)
    images = {
        "ridge": approx.approximate(approx.ridge_params(BOX[0], BOX[1], HEIGHT, W), view_points),
        "tower": approx.approximate(approx.tower_params(BOX, HEIGHT, W, w_and=W_AND), view_points),
        "f": target(b1, b2),
    }
    for form in FORMS:
        images[form] = approx.approximate(approx.tower_network(target, BOX, SHOW_N, form=form), box_points)
    return {k: np.asarray(v).reshape(num, num) for k, v in images.items()}


def run(config: Config) -> Result:
    ns = (2, 4, 8) if config.quick else (2, 4, 8, 16, 32)
    local = jax.tree.map(float, _localisation())
    errors = {n: jax.tree.map(float, _errors(n)) for n in ns}
    images = _images(81 if config.quick else 161)

    ns_arr = np.asarray(ns, float)
    fit = ns_arr >= 4
    rows = {}
    for form in FORMS:
        sup = np.array([errors[n][form][0] for n in ns])
        mean = np.array([errors[n][form][1] for n in ns])
        rows[form] = {
            "n": ns_arr,
            "hidden_units": [2 * n + (2 if form == "towers" else 0) + n * n for n in ns],
            "sup_error": sup,
            "mean_error": mean,
            "sup_slope": float(approx.fit_rate(ns_arr[fit], sup[fit])),
            "mean_slope": float(approx.fit_rate(ns_arr[fit], mean[fit])),
        }
    metrics = {
        "box": list(BOX),
        "height": HEIGHT,
        "w": W,
        "w_and": W_AND,
        "margin": MARGIN,
        "extent": EXTENT,
        "ridge": local["ridge"],
        "tower": local["tower"],
        "ns": list(ns),
        **rows,
    }
    t, p = rows["telescoped"], rows["towers"]
    lines = [
        f"ridge (2-2-1): {local['ridge']['centre']:.4f} at the centre, leakage {local['ridge']['leakage']:.4f} at distance "
        f">= {MARGIN} outside the box (not localised); tower (2-4-1-1): {local['tower']['centre']:.4f} at the centre, "
        f"leakage {local['tower']['leakage']:.1e} (localised)",
        f"sin 3x1 cos 3x2 + x1/2 on the unit square by n x n towers, n = {ns[0]}..{ns[-1]}: telescoped sup error "
        f"{t['sup_error'][0]:.3g} -> {t['sup_error'][-1]:.3g}, slope {t['sup_slope']:.2f} (O(1/n)); plain towers sup error "
        f"{p['sup_error'][0]:.3g} -> {p['sup_error'][-1]:.3g}, slope {p['sup_slope']:.2f} (stuck: failure at the cell corners), "
        f"while their mean error falls with slope {p['mean_slope']:.2f} (telescoped {t['mean_slope']:.2f})",
    ]
    return Result(metrics=metrics, summary="\n".join(lines), figure=_figure(images, rows, local))


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    ridge, tower = float(metrics["ridge"]["leakage"]), float(metrics["tower"]["leakage"])
    slope = float(metrics["telescoped"]["sup_slope"])
    plain = numbers(metrics["towers"]["sup_error"])
    ns = metrics["ns"]
    return Verdict.of(
        Check("ridge not localised", ridge >= 0.5, f"leakage {ridge:.4f}"),
        Check("tower localised", tower <= 0.01, f"leakage {tower:.1e}"),
        Check("telescoped O(1/n)", slope <= -0.9, f"sup slope {slope:.2f}"),
        Check(
            "plain towers fail at the corners",
            plain[-1] >= plain[0],
            f"sup error {plain[0]:.3g} at n = {ns[0]} to {plain[-1]:.3g} at n = {ns[-1]}",
        ),
    )


def _figure(images, rows, local):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 8), layout="constrained")
    axes = fig.subplots(2, 4)
    view = [VIEW[0], VIEW[1], VIEW[0], VIEW[1]]
    unit = [0.0, 1.0, 0.0, 1.0]

    def show(ax, image, extent, title, **kwargs):
        # images are [x1, x2]; imshow wants rows = x2 from the bottom.
        handle = ax.imshow(image.T, origin="lower", extent=extent, **kwargs)
        fig.colorbar(handle, ax=ax, shrink=0.8)
        ax.set(title=title, xlabel="x1", ylabel="x2")

    for ax, name in zip(axes[0, :2], ("ridge", "tower"), strict=True):
        show(
            ax, images[name], view, f"{name}: leakage {local[name]['leakage']:.2g}", vmin=0, vmax=HEIGHT, cmap="viridis"
        )
        ax.add_patch(_square())
    lo, hi = float(images["f"].min()), float(images["f"].max())
    show(axes[0, 2], images["f"], unit, "f = sin 3x1 cos 3x2 + x1/2", vmin=lo, vmax=hi, cmap="coolwarm")
    show(axes[0, 3], images["towers"], unit, f"plain towers, n = {SHOW_N}", vmin=lo, vmax=hi, cmap="coolwarm")
    show(axes[1, 0], images["telescoped"], unit, f"telescoped towers, n = {SHOW_N}", vmin=lo, vmax=hi, cmap="coolwarm")
    top = float(np.abs(images["towers"] - images["f"]).max())
    for ax, form in zip(axes[1, 1:3], FORMS, strict=True):
        show(
            ax,
            np.abs(images[form] - images["f"]),
            unit,
            f"|error|, {form}, n = {SHOW_N}",
            vmin=0,
            vmax=top,
            cmap="magma",
        )
    ax = axes[1, 3]
    for i, form in enumerate(FORMS):
        r = rows[form]
        ax.loglog(r["n"], r["sup_error"], "o-", color=f"C{i}", label=f"{form}: sup, slope {r['sup_slope']:.2f}")
        ax.loglog(r["n"], r["mean_error"], "s--", color=f"C{i}", label=f"{form}: mean, slope {r['mean_slope']:.2f}")
    ax.set_xticks(rows["towers"]["n"], [f"{n:g}" for n in rows["towers"]["n"]])
    ax.minorticks_off()
    ax.set(title="error against n (n x n cells)", xlabel="n", ylabel="error")
    ax.legend(fontsize="x-small")
    return fig


def _square():
    from matplotlib.patches import Rectangle

    return Rectangle((BOX[0], BOX[2]), BOX[1] - BOX[0], BOX[3] - BOX[2], fill=False, ec="white", ls="--", lw=0.8)
