r"""Regularisation on a small, overfittable training set: which techniques lower the test error.

Setup: the 8x8 digits (pixels in [0, 1]) split stratified 10/20/70 into a training set of 180
digits, a validation set of 359 and a test set of 1258. A 64-256-256-10 ReLU MLP trained by
Adam (rate 1e-3, minibatches of 32) fits the 180 training digits perfectly within a few dozen
epochs, so what it does on the test set is a matter of regularisation alone.

Each method below is trained from the same seeds; where it has a strength, every value of a
small grid is trained in the same vmapped call (grid x seeds) and the value with the best mean
validation accuracy is kept (the test set is never looked at to choose):

* none; L2 penalty (``"l2"``); L1 penalty (``"l1"``); decoupled weight decay
  (``"weight_decay"``); all on the weights, not the biases;
* dropout after each hidden layer (the rate is a model field, so each rate is one compile);
* batch normalisation before each hidden activation;
* mixup (``"mixup_alpha"``);
* early stopping on the validation loss (patience 20 epochs, best parameters restored);
* an ensemble of 5 unregularised members, averaging their probabilities.

Measured: the test error of each method, mean and standard deviation over seeds, its final
training error, the chosen strength, (for early stopping) the epochs at which the members
stopped, and (for the ensemble) its disagreement as an uncertainty signal: the test error on
the tenth of the test digits with the highest mutual information between the members against
the error on the rest.

References: Goodfellow, Bengio, Courville, *Deep Learning*, ch. 7; Srivastava et al. 2014
(dropout); Ioffe & Szegedy 2015 (batch norm); Zhang et al. 2018 (mixup); Prechelt 1998 (early
stopping); Lakshminarayanan et al. 2017 (ensembles).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from experiments.api import Check, Config, Result, Verdict, numbers
from fnn import MLP, data, ensemble, train
from fnn.train import many
from fnn.train.early_stopping import EarlyStopping

CLAIM = "On 180 training digits an unregularised 64-256-256-10 MLP overfits; penalties, dropout, batch norm, mixup, early stopping and ensembles each change its test error, measured against the same seeds."
CRITERION = "Both of: the unregularised MLP overfits: training error <= 1% and test error >= 3 points above it; each method (L2, L1, weight decay, dropout, batch norm, mixup, early stopping, ensemble) changes the test error: the mean over the same seeds of its paired difference from no regularisation is larger in size than 2 standard errors of those differences."

SIZES = (64, 256, 256, 10)
FRACTIONS = (0.1, 0.2, 0.7)
LEARNING_RATE = 1e-3
BATCH_SIZE = 32
GRIDS = {
    "l2": (1e-4, 1e-3, 1e-2),
    "l1": (1e-5, 1e-4, 1e-3),
    "weight_decay": (1e-2, 1e-1, 1.0),
    "mixup_alpha": (0.1, 0.4, 1.0),
}
LABELS = {"mixup_alpha": "mixup"}
DROPOUT_RATES = (0.2, 0.5)
PATIENCE = 20
MEMBERS = 5


def _trainer(epochs: int, **model_kwargs) -> train.Trainer:
    return train.Trainer(MLP(SIZES, **model_kwargs), "cross_entropy", "adam", epochs=epochs, batch_size=BATCH_SIZE)


@functools.partial(jax.jit, static_argnums=0)
def _grid(trainer: train.Trainer, keys, hyperparams, train_set, val_set, test_set):
    """Train every (hyperparameter value, seed) pair; return the train/val/test errors ``[G, S, 3]``
    and the epochs at which early stopping stopped ``[G, S]`` (-1: it did not, or is off)."""
    settings, seeds = jax.tree.leaves(hyperparams)[0].shape[0], keys.shape[0]
    members, hyperparams = many.grid(keys, hyperparams)
    states, history = trainer.fit_many(members, train_set, val_set, hyperparams, per_member="hyperparams")
    evaluate = jax.vmap(trainer.evaluate, in_axes=(0, 0, None, None))
    errors = [1 - evaluate(states.params, states.model_state, *s)[1] for s in (train_set, val_set, test_set)]
    return many.reshape_members((jnp.stack(errors, axis=-1), history.stop_epoch), (settings, seeds))


def _select(errors: np.ndarray) -> int:
    """The grid index with the lowest mean validation error (the first of ties)."""
    return int(np.argmin(errors[:, :, 1].mean(axis=1)))


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    methods = metrics["methods"]
    none = methods["none"]
    train, test = float(none["train_error_mean"]), float(none["test_error_mean"])
    base = np.asarray(numbers(none["test_error_per_seed"]))
    changed, shown = [], []
    for name, r in methods.items():
        if name == "none":
            continue
        diff = np.asarray(numbers(r["test_error_per_seed"])) - base
        se = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else float("nan")
        changed.append(bool(abs(diff.mean()) > 2 * se))  # NaN (one seed) compares False
        shown.append(f"{name} {100 * diff.mean():+.2f}" + ("" if changed[-1] else " (within 2 SE)"))
    return Verdict.of(
        Check("unregularised overfits", train <= 0.01 and test - train >= 0.03, f"train {train:.2%}, test {test:.2%}"),
        Check("each method changes the test error", all(changed), "points vs none: " + ", ".join(shown)),
    )


def run(config: Config) -> Result:
    epochs = 25 if config.quick else 150
    seeds = 2 if config.quick else 6
    root = jax.random.key(config.seed)
    split = data.train_val_test_split(jax.random.fold_in(root, 0), data.load_digits(), FRACTIONS, stratify=True)
    train_set, val_set, test_set = (tuple(s) for s in split)
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.fold_in(root, 1), s))(jnp.arange(seeds))
    base = {"learning_rate": jnp.asarray(LEARNING_RATE)}

    results: dict[str, dict] = {}

    def record(name: str, errors: np.ndarray, chosen=None, **extra) -> None:
        results[name] = {
            "test_error_mean": float(errors[:, 2].mean()),
            "test_error_std": float(errors[:, 2].std()),
            "train_error_mean": float(errors[:, 0].mean()),
            "val_error_mean": float(errors[:, 1].mean()),
            "chosen": chosen,
            "test_error_per_seed": errors[:, 2].tolist(),
            **extra,
        }

    def sweep(trainer, grid_hp, *, stop_epochs=False):
        grid = {k: jnp.asarray(v) for k, v in grid_hp.items()}
        errors, stops = _grid(trainer, keys, grid, train_set, val_set, test_set)
        return (np.asarray(errors), np.asarray(stops)) if stop_epochs else np.asarray(errors)

    plain = _trainer(epochs)
    none = sweep(plain, {"learning_rate": [LEARNING_RATE]})
    record("none", none[0])

    for name, values in GRIDS.items():
        errors = sweep(plain, {"learning_rate": [LEARNING_RATE] * len(values), name: list(values)})
        best = _select(errors)
        record(
            LABELS.get(name, name),
            errors[best],
            chosen=values[best],
            grid=list(values),
            grid_val_error=errors[:, :, 1].mean(axis=1).tolist(),
        )

    dropout = [sweep(_trainer(epochs, dropout=rate), {"learning_rate": [LEARNING_RATE]})[0] for rate in DROPOUT_RATES]
    stacked = np.stack(dropout)
    best = _select(stacked)
    record(
        "dropout",
        stacked[best],
        chosen=DROPOUT_RATES[best],
        grid=list(DROPOUT_RATES),
        grid_val_error=stacked[:, :, 1].mean(axis=1).tolist(),
    )

    record("batch_norm", sweep(_trainer(epochs, batch_norm=True), {"learning_rate": [LEARNING_RATE]})[0])

    stopping = train.Trainer(
        MLP(SIZES),
        "cross_entropy",
        "adam",
        epochs=epochs,
        batch_size=BATCH_SIZE,
        early_stopping=EarlyStopping(patience=PATIENCE),
    )
    stop_errors, stop_epochs = sweep(stopping, {"learning_rate": [LEARNING_RATE]}, stop_epochs=True)
    record("early_stopping", stop_errors[0], chosen=PATIENCE, stop_epochs=stop_epochs[0].tolist())

    ens_errors, uncertain, confident = [], [], []
    for s in range(seeds):
        states, _ = ensemble.fit(plain, jax.random.fold_in(keys[s], 7), MEMBERS, train_set, None, base)
        row = []
        for x, y in (train_set, val_set, test_set):
            pred = ensemble.classify(ensemble.outputs(plain.model, states.params, states.model_state, x))
            wrong = np.asarray(jnp.argmax(pred.mean, axis=-1) != y)
            row.append(float(wrong.mean()))
        ens_errors.append(row)
        # Disagreement as an uncertainty signal: the error among the test digits the members
        # disagree on most (mutual information, top decile) against the rest.
        top = np.asarray(pred.disagreement) >= np.quantile(np.asarray(pred.disagreement), 0.9)
        uncertain.append(float(wrong[top].mean()))
        confident.append(float(wrong[~top].mean()))
    record(
        "ensemble",
        np.asarray(ens_errors),
        chosen=MEMBERS,
        test_error_most_disagreement_decile=float(np.mean(uncertain)),
        test_error_other_nine_deciles=float(np.mean(confident)),
    )

    names = list(results)
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    means = [results[n]["test_error_mean"] for n in names]
    stds = [results[n]["test_error_std"] for n in names]
    ax.bar(names, means, yerr=stds, color=["0.5"] + ["C0"] * (len(names) - 1), capsize=3)
    ax.axhline(results["none"]["test_error_mean"], color="0.3", ls="--", lw=1)
    ax.set_ylabel(f"test error (mean ± sd over {seeds} seeds)")
    ax.set_title(f"180 training digits, {epochs} epochs")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()

    lines = [
        f"{n:15s} test error {results[n]['test_error_mean']:.2%} ± {results[n]['test_error_std']:.2%}"
        f"  (train {results[n]['train_error_mean']:.2%}"
        + (f", chosen {results[n]['chosen']}" if results[n]["chosen"] is not None else "")
        + ")"
        for n in names
    ]
    ens = results["ensemble"]
    lines.append(
        f"ensemble disagreement as uncertainty: test error {ens['test_error_most_disagreement_decile']:.1%} on the "
        f"10% of digits with the highest mutual information, {ens['test_error_other_nine_deciles']:.2%} on the rest"
    )
    metrics = {
        "epochs": epochs,
        "seeds": seeds,
        "train_size": len(train_set[0]),
        "test_size": len(test_set[0]),
        "methods": results,
    }
    return Result(metrics=metrics, summary="\n".join(lines), figure=fig)
