r"""Depth against trainability: plain MLPs against residual MLPs of the same depth and width.

Models: for ``blocks`` :math:`D \in \{1, 2, 4, 8, 16\}`, the pre-activation residual MLP
:class:`fnn.residual.ResidualMLP` ``(64, width 64, D blocks of two layers, 10)`` with ReLU,
He initialisation and the last layer of every block scaled by :math:`1/\sqrt D`, and its plain
counterpart :func:`fnn.residual.plain_counterpart`, the ReLU MLP ``(64, 64, ..., 64, 10)``
with the same :math:`2D + 1` hidden layers (3, 5, 9, 17, 33), the same :math:`2D + 2` affine
layers and the same number of parameters, He-initialised. The two differ only in the
shortcuts and that scale: with one key both start from the same draws (the plain network's
parameters are the unscaled residual network's layers, :func:`fnn.residual.plain_params`,
which is exactly the plain network's own He initialisation), so the comparison is paired.

Task: the 8x8 digits (pixels in [0, 1]), split 70/15/15 stratified as in the ``digits``
experiment; softmax cross-entropy; plain minibatch SGD (batch 64, constant rate, no momentum),
gradients by the hand-written chain rule (``gradient="backprop"``).

Learning rate: for each family and depth, a ``jax.vmap`` of :meth:`fnn.train.Trainer.fit`
over the rates of a log grid (:math:`10^{-2.5}` to :math:`10^0` by half decades) and the seeds
runs every pair; the rate kept is the one with the lowest median final training loss over the
seeds (a run that turned non-finite counts as +inf), since the claim is about optimisation.
Tuning per family and depth is the fair comparison: the best rate of a plain network falls
with its depth, and one rate for all depths would handicap the depths it was not tuned at.
The whole grid is recorded and plotted. All the sweeps and gradient norms are one compiled
function: on CPU every compilation of a training run costs seconds, whatever its size. The
keys are ``"rbg"`` keys, whose random bits compile several times faster than threefry's.

Measured against depth, for both families:

1. the final training loss (the loss on the whole training set after the last epoch) at the
   kept rate, per seed, and the training-loss curves (the mean over each epoch's minibatches);
2. the test accuracy at the kept rate;
3. the norm of the gradient of the first weight matrix at initialisation, on the whole
   training set, over 16 initialisations: median and 10-90% range; also for the residual MLP
   with unscaled blocks (``residual_scale=1``), where the forward variance doubles at every
   block, to show why the scale matters.

References: K. He et al., *Deep residual learning for image recognition*, CVPR 2016, and
*Identity mappings in deep residual networks*, ECCV 2016; D. Balduzzi et al., *The shattered
gradients problem: if resnets are the answer, then what is the question?*, ICML 2017.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments import digits
from experiments.api import Check, Config, Result, Verdict, numbers
from fnn import train
from fnn.models.residual import ResidualMLP, plain_counterpart, plain_params

CLAIM = "Plain ReLU MLPs trained by SGD get harder to train as depth grows (at 17 and 33 hidden layers their best training loss on the digits is tens to hundreds of times that at 3 to 9), while residual MLPs of the same depth and width reach the same low training loss at every depth up to 33 hidden layers."
CRITERION = "Both of, on the median over seeds of the final training loss at each depth's kept rate, with 'tens to hundreds of times' read as >= 10x and 'the same' as within a factor 3: the plain MLPs' loss at 17 and at 33 hidden layers is >= 10x the largest of their losses at 3 to 9; the residual MLPs' losses at all depths (3 to 33 hidden layers) lie within a factor 3 of each other."

WIDTH, BATCH_SIZE = 64, 64
FAMILIES = ("plain", "residual")
SCHEME = "he"


def _residual(blocks: int, residual_scale: float | None = None) -> ResidualMLP:
    return ResidualMLP(64, WIDTH, blocks, 10, scheme=SCHEME, residual_scale=residual_scale)


def _initial_params(blocks: int, keys: jax.Array) -> dict[str, object]:
    """``family -> params`` stacked over ``keys``, for ``plain``, ``residual`` and ``residual_unscaled``.

    All three come from the same draws: the plain network's parameters are the unscaled
    residual network's layers (:func:`fnn.residual.plain_params`), which is exactly its own
    scheme's initialisation, and the residual network's differ only by the 1/sqrt(blocks) on
    each block's last layer. So with one key the families start from the same weights: a paired
    comparison.
    """
    unscaled, residual = (_residual(blocks, scale) for scale in (1.0, None))
    draw = {
        name: jax.vmap(lambda k, m=m: m.init(k)[0])(keys)
        for name, m in (("residual_unscaled", unscaled), ("residual", residual))
    }
    return {"plain": plain_params(draw["residual_unscaled"]), **draw}


def _models(blocks: int) -> dict[str, object]:
    residual = _residual(blocks)
    return {"plain": plain_counterpart(residual), "residual": residual, "residual_unscaled": _residual(blocks, 1.0)}


def _sweep(model, epochs: int, sets):
    """``(rates [R], params [S, ...], keys [S]) -> (history, final train (loss, acc), test (loss, acc))``,
    every leaf ``[R, S, ...]``; ``keys`` set each run's shuffling."""
    trainer = train.Trainer(
        model, "cross_entropy", optimizer="sgd", epochs=epochs, batch_size=BATCH_SIZE, gradient="backprop"
    )
    train_set, _, test_set = sets

    # Not fit_many over a flat grid: this experiment's "rbg" keys draw other minibatch orders
    # under another vmap nesting (XLA's RngBitGenerator is not vmap-invariant), which would
    # change its published numbers. fit_many(..., params=...) is the same computation otherwise.
    def one(lr, params, key):
        hp = {"learning_rate": lr}
        state = trainer.init(key, hp)._replace(params=params)  # the paired draw replaces the model's own
        state, history = trainer.fit(state, tuple(train_set), None, hp)
        final = trainer.evaluate(state.params, state.model_state, *train_set)
        test = trainer.evaluate(state.params, state.model_state, *test_set)
        return history, final, test

    return jax.vmap(jax.vmap(one, (None, 0, 0)), (0, None, None))


def _first_layer_gradient_norm(model, x: jax.Array, y: jax.Array):
    """``params [K, ...] -> [K]``: the norm of dL/dW of the first layer, on ``(x, y)``."""

    def one(params):
        _, grads = model.backprop(params, (), x, y, "cross_entropy")
        first = grads["input"] if isinstance(grads, dict) else grads[0]
        return jnp.linalg.norm(first["W"])

    return jax.vmap(one)


def _measure(block_counts, epochs: int, sets, num_seeds: int):
    """``(rates, keys) -> (sweeps, norms)``: every sweep and gradient norm in one compiled function.

    One compilation rather than one per model: on CPU each compilation of a training run has a
    fixed cost of seconds. The first ``num_seeds`` keys' draws are the training runs' initial
    parameters; all of them enter the gradient norms.
    """

    def everything(rates, keys):
        sweeps, norms = {}, {}
        for blocks in block_counts:
            params = _initial_params(blocks, keys)
            for family, model in _models(blocks).items():
                norms[f"{family}/{blocks}"] = _first_layer_gradient_norm(model, *sets[0])(params[family])
                if family in FAMILIES:
                    first = jax.tree.map(lambda a: a[:num_seeds], params[family])
                    sweeps[f"{family}/{blocks}"] = _sweep(model, epochs, sets)(rates, first, keys[:num_seeds])
        return sweeps, norms

    return jax.jit(everything)


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    hidden = [int(h) for h in metrics["hidden_layers"]]
    plain = dict(zip(hidden, numbers(metrics["plain_median_final_train_loss"]), strict=True))
    residual = dict(zip(hidden, numbers(metrics["residual_median_final_train_loss"]), strict=True))
    shallow = [plain[h] for h in hidden if 3 <= h <= 9]
    deep = [h for h in (17, 33) if h in plain]
    if len(deep) < 2 or not shallow:
        harder = Check("plain >= 10x harder at 17, 33", False, f"not measured: hidden layers {hidden}")
    else:
        ratios = {h: plain[h] / max(shallow) for h in deep}
        harder = Check(
            "plain >= 10x harder at 17, 33",
            min(ratios.values()) >= 10,  # a NaN loss compares False
            ", ".join(f"{h} layers {r:.1f}x" for h, r in ratios.items()) + f" of {max(shallow):.2g}",
        )
    losses = list(residual.values())
    spread = max(losses) / min(losses) if min(losses) > 0 else float("inf")
    same = Check(
        "residual the same at every depth up to 33",
        33 in residual and spread <= 3,
        f"{min(losses):.2g} to {max(losses):.2g} ({spread:.1f}x) over {hidden[0]}-{hidden[-1]} hidden layers",
    )
    return Verdict.of(harder, same)


def run(config: Config) -> Result:
    quick = config.quick
    block_counts = (1, 4) if quick else (1, 2, 4, 8, 16)
    epochs = 2 if quick else 30
    rates = np.array([0.03, 0.3]) if quick else 10.0 ** np.arange(-2.5, 0.01, 0.5)
    num_seeds, num_inits = (2, 4) if quick else (3, 16)

    # "rbg" keys: XLA's RngBitGenerator compiles several times faster on CPU than threefry, and
    # this experiment compiles dozens of draws (the initialisations, every epoch's shuffle).
    key = jax.random.key(config.seed, impl="rbg")
    sets = digits.splits(jax.random.fold_in(key, 0))
    keys = jax.random.split(jax.random.fold_in(key, 1), num_inits)
    hidden = [2 * d + 1 for d in block_counts]
    sweeps, norms = jax.tree.map(
        np.asarray, _measure(block_counts, epochs, sets, num_seeds)(jnp.asarray(rates, jnp.float32), keys)
    )

    runs: dict[str, list[dict]] = {f: [] for f in FAMILIES}
    grad_norms = {f: [norms[f"{f}/{b}"] for b in block_counts] for f in (*FAMILIES, "residual_unscaled")}
    for blocks in block_counts:
        for family in FAMILIES:
            history, (final_loss, final_acc), (test_loss, test_acc) = sweeps[f"{family}/{blocks}"]
            failed = (history.nonfinite_epoch >= 0) | ~np.isfinite(final_loss)  # [rates, seeds]
            score = np.median(np.where(failed, np.inf, final_loss), axis=1)
            best = int(np.argmin(score))
            runs[family].append(
                {
                    "blocks": blocks,
                    "hidden_layers": 2 * blocks + 1,
                    "learning_rate": float(rates[best]),
                    "rate_at_grid_edge": best in (0, len(rates) - 1),
                    "final_train_loss": final_loss[best],
                    "final_train_accuracy": final_acc[best],
                    "test_accuracy": test_acc[best],
                    "test_loss": test_loss[best],
                    "median_final_train_loss_per_rate": score,
                    "failed_runs_per_rate": failed.sum(axis=1),
                    "train_loss_curve_median": np.median(history.train_loss[best], axis=0),
                }
            )

    loss = {f: np.array([np.median(r["final_train_loss"]) for r in runs[f]]) for f in FAMILIES}
    acc = {f: np.array([np.mean(r["test_accuracy"]) for r in runs[f]]) for f in FAMILIES}
    gnorm = {f: np.median(np.stack(v), axis=1) for f, v in grad_norms.items()}
    metrics = {
        "width": WIDTH,
        "batch_size": BATCH_SIZE,
        "epochs": epochs,
        "optimizer": "sgd",
        "learning_rates": rates,
        "num_seeds": num_seeds,
        "num_inits_for_gradient_norm": num_inits,
        "blocks": list(block_counts),
        "hidden_layers": hidden,
        "split_sizes": [int(s.x.shape[0]) for s in sets],
        **{f"{f}_median_final_train_loss": loss[f] for f in FAMILIES},
        **{f"{f}_mean_test_accuracy": acc[f] for f in FAMILIES},
        **{f"{f}_first_layer_grad_norm_median": v for f, v in gnorm.items()},
        "first_layer_grad_norms": {f: np.stack(v) for f, v in grad_norms.items()},
        "runs": runs,
    }

    lines = [
        (
            f"digits {'/'.join(str(s) for s in metrics['split_sizes'])} (train/val/test); ReLU, width {WIDTH}, He init; SGD batch "
            f"{BATCH_SIZE}, {epochs} epochs; rate per family and depth from {len(rates)} rates x {num_seeds} seeds "
            f"(vmapped); residual blocks pre-activation, last layer x 1/sqrt(blocks); paired initialisations"
        ),
        "hidden layers | plain: rate, final train loss (median [min, max]), test acc | residual: same",
    ]
    for i, h in enumerate(hidden):
        cells = []
        for f in FAMILIES:
            r = runs[f][i]
            fl = r["final_train_loss"]
            edge = "*" if r["rate_at_grid_edge"] else ""
            cells.append(
                f"lr {r['learning_rate']:.3g}{edge}, {np.median(fl):.3g} [{fl.min():.3g}, {fl.max():.3g}], "
                f"{np.mean(r['test_accuracy']):.1%}"
            )
        lines.append(f"{h:>13} | " + " | ".join(cells))
    lines.append("(* = rate at the edge of the grid)")
    lines.append(
        "first-layer gradient norm at init, median over %d inits, %d -> %d hidden layers: plain %.3g -> %.3g, "
        "residual %.3g -> %.3g, residual with unscaled blocks %.3g -> %.3g"
        % (
            num_inits,
            hidden[0],
            hidden[-1],
            gnorm["plain"][0],
            gnorm["plain"][-1],
            gnorm["residual"][0],
            gnorm["residual"][-1],
            gnorm["residual_unscaled"][0],
            gnorm["residual_unscaled"][-1],
        )
    )
    spread = {f: np.log10(np.quantile(v[-1], 0.9) / np.quantile(v[-1], 0.1)) for f, v in grad_norms.items()}
    lines.append(
        f"at {hidden[-1]} hidden layers the 10-90% range of that norm spans {spread['plain']:.2f} decades "
        f"for plain, {spread['residual']:.2f} for residual"
    )
    best_plain = int(np.argmin(loss["plain"]))
    verdict = (
        f"plain: best final training loss {loss['plain'][best_plain]:.3g} at {hidden[best_plain]} hidden layers, "
        f"{loss['plain'][-1]:.3g} at {hidden[-1]} ({loss['plain'][-1] / loss['plain'][best_plain]:.3g}x); "
        f"residual: {loss['residual'][0]:.3g} at {hidden[0]} -> {loss['residual'][-1]:.3g} at {hidden[-1]}; "
        f"test accuracy at {hidden[-1]}: plain {acc['plain'][-1]:.1%}, residual {acc['residual'][-1]:.1%}"
    )
    lines.append(verdict)
    return Result(metrics=metrics, summary="\n".join(lines), figure=_figure(runs, grad_norms, hidden, rates))


def _figure(runs, grad_norms, hidden, rates):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 8.5), layout="constrained")
    (ax_curve, ax_loss, ax_acc), (ax_grad, ax_lr_plain, ax_lr_res) = fig.subplots(2, 3)
    styles = {"plain": dict(ls="--", marker="s"), "residual": dict(ls="-", marker="o")}
    colours = [f"C{i}" for i in range(len(hidden))]
    for f in FAMILIES:
        for i, r in enumerate(runs[f]):
            curve = r["train_loss_curve_median"]
            ax_curve.semilogy(
                np.arange(1, len(curve) + 1),
                curve,
                color=colours[i],
                ls=styles[f]["ls"],
                label=f"{f}, {hidden[i]} hidden (lr {r['learning_rate']:.2g})",
            )
        for i, r in enumerate(runs[f]):
            ax_loss.scatter(
                np.full(r["final_train_loss"].shape, hidden[i]),
                r["final_train_loss"],
                s=12,
                color="C0" if f == "plain" else "C1",
                alpha=0.5,
            )
            ax_acc.scatter(
                np.full(r["test_accuracy"].shape, hidden[i]),
                r["test_accuracy"],
                s=12,
                color="C0" if f == "plain" else "C1",
                alpha=0.5,
            )
        colour = "C0" if f == "plain" else "C1"
        ax_loss.plot(hidden, [np.median(r["final_train_loss"]) for r in runs[f]], color=colour, label=f, **styles[f])
        ax_acc.plot(hidden, [np.mean(r["test_accuracy"]) for r in runs[f]], color=colour, label=f, **styles[f])
    ax_curve.set(
        title="training loss at each depth's best rate (median over seeds)",
        xlabel="epoch",
        ylabel="cross-entropy (mean over the epoch's batches)",
    )
    ax_curve.legend(fontsize="xx-small", ncol=2)
    ax_loss.set(
        yscale="log",
        xscale="log",
        title="final training loss (dots: seeds; line: median)",
        xlabel="hidden layers",
        ylabel="cross-entropy on the training set",
    )
    ax_acc.set(xscale="log", title="test accuracy (dots: seeds; line: mean)", xlabel="hidden layers", ylabel="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xticks(hidden, [str(h) for h in hidden])
        ax.minorticks_off()
        ax.legend(fontsize="small")

    labels = {
        "plain": "plain",
        "residual": "residual (blocks x 1/sqrt(D))",
        "residual_unscaled": "residual, unscaled blocks",
    }
    for j, (f, norms) in enumerate(grad_norms.items()):
        norms = np.stack(norms)
        ax_grad.fill_between(
            hidden, np.quantile(norms, 0.1, axis=1), np.quantile(norms, 0.9, axis=1), color=f"C{j}", alpha=0.2
        )
        ax_grad.plot(hidden, np.median(norms, axis=1), color=f"C{j}", marker="o", label=labels[f])
    ax_grad.set(
        yscale="log",
        xscale="log",
        title="first-layer gradient norm at init (median, 10-90%)",
        xlabel="hidden layers",
        ylabel="|dL/dW_1|",
    )
    ax_grad.set_xticks(hidden, [str(h) for h in hidden])
    ax_grad.minorticks_off()
    ax_grad.legend(fontsize="small")

    for ax, f in ((ax_lr_plain, "plain"), (ax_lr_res, "residual")):
        for i, r in enumerate(runs[f]):
            score = np.where(
                np.isfinite(r["median_final_train_loss_per_rate"]), r["median_final_train_loss_per_rate"], np.nan
            )
            ax.loglog(rates, score, color=colours[i], marker="o", label=f"{hidden[i]} hidden")
        ax.set(
            title=f"{f}: final training loss by rate (median)",
            xlabel="learning rate (gaps: diverged)",
            ylabel="cross-entropy on the training set",
        )
        ax.legend(fontsize="small")
    return fig
