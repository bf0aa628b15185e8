"""Step decay against a constant rate: SGD with momentum on the digits MLP, same seeds.

The digits MLP of the ``digits`` experiment (64-128-128-10 ReLU, same split) trained with SGD
and heavy-ball momentum 0.9 at a base rate of 0.1 with batches of 16: a rate large enough that
minibatch noise, not the rate of progress, sets the level the training loss hovers at for
much of the run. For each budget (30 and 60 epochs), one vmapped, compiled call per schedule
trains every seed (the same keys, hence the same initialisations and shuffles) with

* a constant rate 0.1, and
* :func:`fnn.schedules.classic_step_decay`: 0.1, divided by 10 at 50% and again at 75% of the
  steps (Huang et al., 2017; He et al., 2016).

Measured, per budget: the final test accuracy and loss of each (mean, std, and the paired
difference per seed), and the drop of the training loss at each boundary: the median over seeds of the mean
training loss over the three epochs before the boundary divided by that over the three epochs
after the boundary's own epoch, for both schedules.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments import digits
from experiments.api import Check, Config, Result, Verdict, numbers
from fnn import schedules, train

CLAIM = "On the digits MLP trained by SGD with momentum, dividing the rate by 10 at 50% and 75% of the run drops the training loss at the boundaries and lowers the test loss against a constant rate on the same seeds, at budgets of 30 and 60 epochs."
CRITERION = "At every budget run (30 and 60 epochs; 4 in quick mode), both of: at each of the two boundaries the training loss falls more with step decay than with the constant rate over the same epochs (ratio of the mean loss over the 3 epochs before to the 3 after, median over seeds: step decay's > constant's); the mean over seeds of the paired test-loss difference (step decay - constant, same seeds) is < 0."

OPTIMIZER = "momentum"
LEARNING_RATE = 0.1
BATCH_SIZE = 16
WINDOW = 3  # epochs averaged on each side of a boundary


def run(config: Config) -> Result:
    budgets = (4,) if config.quick else (30, 60)
    num_seeds = 2 if config.quick else 8
    key = jax.random.key(config.seed)
    sets = digits.splits(jax.random.fold_in(key, 0))
    keys = jax.random.split(jax.random.fold_in(key, 1), num_seeds)
    hyperparams = {"learning_rate": LEARNING_RATE}
    steps_per_epoch = int(sets[0].x.shape[0]) // BATCH_SIZE  # ragged="drop"

    metrics = {
        "budgets": budgets,
        "num_seeds": num_seeds,
        "learning_rate": LEARNING_RATE,
        "batch_size": BATCH_SIZE,
        "optimizer": OPTIMIZER,
        "momentum": 0.9,
        "steps_per_epoch": steps_per_epoch,
    }
    lines = [
        (
            f"digits MLP, SGD + momentum 0.9, base rate {LEARNING_RATE:g}, batch {BATCH_SIZE} ({steps_per_epoch} steps an "
            f"epoch), {num_seeds} seeds with the same keys for both schedules; training-loss drop = mean over the "
            f"{WINDOW} epochs before a boundary / over the {WINDOW} after its epoch (median over seeds)"
        )
    ]
    panels = []
    for epochs in budgets:
        runs = {}
        for label, schedule in (("constant", None), ("step decay", schedules.classic_step_decay)):
            trainer = digits.trainer(epochs, optimizer=OPTIMIZER, batch_size=BATCH_SIZE, schedule=schedule)

            def fit(keys, trainer=trainer):
                return digits.fit_many_and_test(trainer, keys, hyperparams, *sets)[1:]

            history, (test_loss, test_acc) = jax.tree.map(np.asarray, jax.jit(fit)(keys))
            runs[label] = {"history": history, "test_loss": test_loss, "test_accuracy": test_acc}
        total = epochs * steps_per_epoch
        boundaries = [total // 2, 3 * total // 4]
        boundary_epochs = [b // steps_per_epoch for b in boundaries]  # the epoch in which the rate drops
        rates = np.asarray(schedules.classic_step_decay(LEARNING_RATE, total)(jnp.arange(0, total, steps_per_epoch)))
        panels.append((epochs, runs, rates, boundary_epochs))

        prefix = f"{epochs}_epochs"
        metrics[f"{prefix}_boundary_steps"] = boundaries
        lines.append(
            f"{epochs} epochs ({total} steps), rate divided by 10 at steps {boundaries[0]} and {boundaries[1]} "
            f"(epochs {boundary_epochs[0] + 1} and {boundary_epochs[1] + 1}):"
        )
        for label, r in runs.items():
            acc, loss, train_loss = (
                r["test_accuracy"],
                r["test_loss"],
                r["history"].train_loss,
            )  # train_loss: [seeds, epochs]
            drops = [_drop(train_loss, e) for e in boundary_epochs]
            name = f"{prefix}_{label.replace(' ', '_')}"
            metrics.update(
                {
                    f"{name}_test_accuracy": acc,
                    f"{name}_test_loss": loss,
                    f"{name}_test_accuracy_mean": float(acc.mean()),
                    f"{name}_test_accuracy_std": float(acc.std()),
                    f"{name}_test_loss_mean": float(loss.mean()),
                    f"{name}_test_loss_std": float(loss.std()),
                    f"{name}_final_train_loss_median": float(np.median(train_loss[:, -1])),
                    f"{name}_train_loss_drop_at_boundaries": drops,
                }
            )
            lines.append(
                f"  {label:<10}: test accuracy {acc.mean():.2%} ± {acc.std():.2%}, test loss {loss.mean():.4f} ± {loss.std():.4f}, "
                f"final training loss {np.median(train_loss[:, -1]):.1e}; training-loss drop "
                + " and ".join(
                    (f"{d:.2f}x" if np.isfinite(d) else "n/a (too few epochs)") + f" at epoch {e + 1}"
                    for d, e in zip(drops, boundary_epochs)
                )
            )
        diff = runs["step decay"]["test_accuracy"] - runs["constant"]["test_accuracy"]
        loss_diff = runs["step decay"]["test_loss"] - runs["constant"]["test_loss"]
        metrics.update({f"{prefix}_test_accuracy_difference": diff, f"{prefix}_test_loss_difference": loss_diff})
        lines.append(
            f"  paired by seed (step decay - constant): test accuracy {round(float(diff.mean()), 6) + 0.0:+.2%} on average, higher on "
            f"{int((diff > 0).sum())}, equal on {int((diff == 0).sum())}, lower on {int((diff < 0).sum())} of {num_seeds}; "
            f"test loss {loss_diff.mean():+.4f}, lower on {int((loss_diff < 0).sum())} of {num_seeds}"
        )
    return Result(metrics=metrics, figure=_figure(panels), summary="\n".join(lines))


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    checks = []
    for epochs in metrics["budgets"]:
        prefix = f"{epochs}_epochs"
        decay = numbers(metrics[f"{prefix}_step_decay_train_loss_drop_at_boundaries"])
        constant = numbers(metrics[f"{prefix}_constant_train_loss_drop_at_boundaries"])
        # A NaN drop (too few epochs after a boundary) compares False: not shown.
        checks.append(
            Check(
                f"loss drops at the boundaries ({epochs} epochs)",
                all(d > c for d, c in zip(decay, constant)),
                ", ".join(
                    f"{d:.2f}x vs {c:.2f}x" if np.isfinite(d) else "n/a (too few epochs)"
                    for d, c in zip(decay, constant)
                ),
            )
        )
        diff = float(np.mean(numbers(metrics[f"{prefix}_test_loss_difference"])))
        checks.append(
            Check(
                f"lower test loss ({epochs} epochs)",
                diff < 0,
                f"{float(metrics[f'{prefix}_step_decay_test_loss_mean']):.4f} vs "
                f"{float(metrics[f'{prefix}_constant_test_loss_mean']):.4f} (paired {diff:+.4f})",
            )
        )
    return Verdict.of(*checks)


def _drop(train_loss: np.ndarray, epoch: int) -> float:
    """Median over seeds of mean loss over the WINDOW epochs before ``epoch`` / over the WINDOW after it."""
    before = train_loss[:, max(0, epoch - WINDOW) : epoch].mean(axis=1)
    after = train_loss[:, epoch + 1 : epoch + 1 + WINDOW]
    if after.shape[1] == 0 or epoch == 0:
        return float("nan")
    return float(np.median(before / after.mean(axis=1)))


def _figure(panels):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 3.6 * len(panels)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(panels), 3))
    for (epochs, runs, rates, boundary_epochs), (ax_train, ax_val, ax_lr) in zip(panels, axes):
        for i, (label, r) in enumerate(runs.items()):
            for ax, curve in ((ax_train, "train_loss"), (ax_val, "val_loss")):
                train.plot_histories(r["history"], axes=ax, curves=[curve], center="median", label=label, color=f"C{i}")
        ax_lr.axhline(LEARNING_RATE, color="C0", label="constant")
        ax_lr.step(np.arange(1, len(rates) + 1), rates, where="post", color="C1", label="step decay")
        for ax in (ax_train, ax_val, ax_lr):
            for e in boundary_epochs:
                ax.axvline(e + 1, color="gray", lw=0.6, ls=":")
            ax.legend(fontsize="small")
        ax_train.set(
            title=f"{epochs} epochs: training loss (epoch mean), range over seeds",
            xlabel="epoch",
            ylabel="cross-entropy",
        )
        ax_val.set(title=f"{epochs} epochs: validation loss", xlabel="epoch", ylabel="cross-entropy")
        ax_lr.set(title="rate at the start of each epoch", xlabel="epoch", ylabel="learning rate", yscale="log")
    return fig
