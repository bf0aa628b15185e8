"""The 8x8 digits: an MLP trained by minibatch Adam, by hand-written backprop and by autodiff.

Measures, in order:

1. a 64-128-128-10 ReLU MLP (He initialisation) trained with Adam (rate 1e-3, batch 128) on
   the digits scaled to [0, 1], split 70/15/15 into stratified training, validation and test
   sets, for several seeds (initialisation and shuffling) and several splits (the first being
   the experiment's; the others show how much a 269-digit test set moves the score) in one
   vmapped, compiled call: the mean and standard deviation of the test accuracy after the
   last epoch;
2. the same runs with the gradient from the hand-written chain rule (``gradient="backprop"``)
   and from ``jax.grad``: the largest gap between their loss curves and final parameters, in
   float32 over all runs and, in the full run, in float64 for one.

The split and the model are shared with the ``optimizers`` and ``step_decay`` experiments
through :func:`splits` and :func:`trainer`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments.api import Check, Config, Result, Verdict, is_finite
from fnn import MLP, data, train
from fnn.train import many

SETS = ("train", "validation", "test")  # the arguments of fit_many_and_test that vary by split
CLAIM = "A 64-128-128-10 ReLU MLP trained by Adam on the 8x8 digits reaches over 97% test accuracy, and hand-written backprop trains it exactly as jax.grad does."
CRITERION = "All of: mean test accuracy over the seeds on the experiment's split > 97%, and over all splits x seeds > 97%; hand-written backprop and jax.grad from the same keys give identical runs: loss/accuracy curves and final parameters differ by exactly 0 in float32 (every run) and in float64 (one run; measured in full mode only)."

SIZES = (64, 128, 128, 10)
FRACTIONS = (0.7, 0.15, 0.15)
BATCH_SIZE = 128
LEARNING_RATE = 1e-3


def splits(key: jax.Array, dtype=jnp.float32) -> tuple[data.Dataset, data.Dataset, data.Dataset]:
    """The digits (pixels in [0, 1]) split stratified into training, validation and test sets."""
    return data.train_val_test_split(key, data.load_digits(dtype), FRACTIONS, stratify=True)


def trainer(epochs: int, *, optimizer: str = "adam", batch_size: int = BATCH_SIZE, **kwargs) -> train.Trainer:
    """The digits MLP with a softmax cross-entropy loss, as a :class:`fnn.train.Trainer`."""
    return train.Trainer(
        MLP(SIZES, activation="relu"),
        "cross_entropy",
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        **kwargs,
    )


def fit_and_test(trainer: train.Trainer, key: jax.Array, hyperparams, train_set, val_set, test_set, dtype=jnp.float32):
    """Train from ``key``; return the final state, the history and the test ``(loss, accuracy)``."""
    state = trainer.init(key, hyperparams, dtype=dtype)
    state, history = trainer.fit(state, tuple(train_set), tuple(val_set), hyperparams)
    return state, history, trainer.evaluate(state.params, state.model_state, *test_set)


def fit_many_and_test(
    trainer: train.Trainer, keys: jax.Array, hyperparams, train_set, val_set, test_set, per_member=()
):
    """:meth:`~fnn.train.Trainer.fit_many` from ``keys [M]``, then each member's test ``(loss, accuracy)``.

    ``per_member`` names the arguments with a leading member axis, among ``"train"``,
    ``"validation"``, ``"test"`` and ``"hyperparams"``. Returns ``(states, histories, test)``,
    every leaf ``[M, ...]``.
    """
    fits = tuple(name for name in per_member if name != "test")
    states, histories = trainer.fit_many(keys, tuple(train_set), tuple(val_set), hyperparams, per_member=fits)
    evaluate = jax.vmap(trainer.evaluate, in_axes=(0, 0) + ((0,) if "test" in per_member else (None,)) * 2)
    return states, histories, evaluate(states.params, states.model_state, *test_set)


def _gaps(hand, auto) -> tuple[float, float]:
    """Largest gaps between two runs ``(state, history, test)``: loss/accuracy curves, final parameters."""
    (s_hand, h_hand, _), (s_auto, h_auto, _) = hand, auto
    curve_gap = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(h_hand[:3], h_auto[:3]))
    param_gap = max(
        float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(s_hand.params), jax.tree.leaves(s_auto.params))
    )
    return curve_gap, param_gap


def run(config: Config) -> Result:
    epochs = 5 if config.quick else 100
    num_splits, num_seeds = (2, 2) if config.quick else (4, 6)
    key = jax.random.key(config.seed)
    hyperparams = {"learning_rate": LEARNING_RATE}
    # Split 0 is the experiment's split; the others measure how much the test score depends on it.
    split_list = [splits(jax.random.fold_in(jax.random.fold_in(key, 0), i)) for i in range(num_splits)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *split_list)
    seed_keys = jax.random.split(jax.random.fold_in(key, 1), num_seeds)

    # 1-2: every (split, seed) in one vmapped, compiled call per gradient method, from the same keys.
    runs = {}
    pairs = jax.tree.map(lambda a: jnp.repeat(a, num_seeds, axis=0), stacked)  # member s + num_seeds * split
    for g in ("backprop", "autodiff"):

        def fit(sets, keys, g=g):
            members = fit_many_and_test(trainer(epochs, gradient=g), keys, hyperparams, *sets, per_member=SETS)
            return many.reshape_members(members, (num_splits, num_seeds))

        runs[g] = jax.jit(fit)(pairs, jnp.tile(seed_keys, num_splits))
    curve_gap32, param_gap32 = _gaps(runs["backprop"], runs["autodiff"])
    gaps64 = (float("nan"), float("nan"))
    if not config.quick:  # float64 doubles the compile time; one run is enough for it
        with jax.enable_x64(True):
            sets64 = splits(jax.random.fold_in(jax.random.fold_in(key, 0), 0), jnp.float64)
            runs64 = [
                fit_and_test(trainer(epochs, gradient=g), seed_keys[0], hyperparams, *sets64, dtype=jnp.float64)
                for g in ("backprop", "autodiff")
            ]
            gaps64 = _gaps(*runs64)
    curve_gap64, param_gap64 = gaps64
    states, histories, (test_loss, test_acc) = runs["backprop"]
    acc, auto_acc = np.asarray(test_acc), np.asarray(runs["autodiff"][2][1])  # [splits, seeds]

    # Split 0, seed 0: the curves and the misclassified digits.
    history = jax.tree.map(lambda a: a[0, 0], histories)
    params = jax.tree.map(lambda a: a[0, 0], states.params)
    train_set, val_set, test_set = split_list[0]
    output, _ = trainer(epochs).model.apply(params, (), test_set.x)
    predicted = np.asarray(jnp.argmax(output, axis=-1))
    wrong = np.flatnonzero(predicted != np.asarray(test_set.y))

    n_train, n_val, n_test = (int(s.x.shape[0]) for s in (train_set, val_set, test_set))
    metrics = {
        "epochs": epochs,
        "learning_rate": LEARNING_RATE,
        "batch_size": BATCH_SIZE,
        "sizes": list(SIZES),
        "split_sizes": [n_train, n_val, n_test],
        "num_splits": num_splits,
        "num_seeds": num_seeds,
        "test_accuracy": acc,
        "test_loss": np.asarray(test_loss),
        "test_accuracy_mean": float(acc[0].mean()),
        "test_accuracy_std": float(acc[0].std()),
        "test_accuracy_min": float(acc[0].min()),
        "test_accuracy_mean_all_splits": float(acc.mean()),
        "test_accuracy_std_all_splits": float(acc.std()),
        "test_accuracy_autodiff": auto_acc,
        "backprop_vs_autodiff_max_curve_gap_float32": curve_gap32,
        "backprop_vs_autodiff_max_param_gap_float32": param_gap32,
        "backprop_vs_autodiff_max_curve_gap_float64": curve_gap64,
        "backprop_vs_autodiff_max_param_gap_float64": param_gap64,
        "train_loss": history.train_loss,
        "val_loss": history.val_loss,
        "val_accuracy": history.val_accuracy,
        "misclassified_test_indices": wrong,
    }
    float64 = (
        "float64 skipped in --quick"
        if config.quick
        else f"float64 (split 0, seed 0): curves {curve_gap64:.1e}, parameters {param_gap64:.1e}"
    )
    summary = "\n".join(
        [
            (
                f"digits split {n_train}/{n_val}/{n_test} (train/val/test, stratified, pixels in [0, 1]); "
                f"MLP {'-'.join(map(str, SIZES))} ReLU, Adam lr {LEARNING_RATE:g}, batch {BATCH_SIZE}, {epochs} epochs; "
                f"{num_splits} splits x {num_seeds} seeds in one vmapped call"
            ),
            (
                f"test accuracy on split 0 over {num_seeds} seeds: {acc[0].mean():.2%} ± {acc[0].std():.2%} "
                f"(min {acc[0].min():.2%}, max {acc[0].max():.2%}); mean test loss {float(np.mean(test_loss[0])):.4f}"
            ),
            f"over all {num_splits} splits: {acc.mean():.2%} ± {acc.std():.2%}; per split (mean over seeds): "
            + ", ".join(f"{a:.2%}" for a in acc.mean(axis=1)),
            f"split 0, seed 0: {acc[0, 0]:.2%}, {len(wrong)} of {n_test} test digits wrong",
            (
                f"hand-written backprop vs jax.grad, same keys, every run: mean test accuracy {acc.mean():.2%} vs {auto_acc.mean():.2%}; "
                f"max gap float32: loss/accuracy curves {curve_gap32:.1e}, final parameters {param_gap32:.1e}; {float64}"
            ),
        ]
    )
    return Result(metrics=metrics, figure=_figure(histories, test_set, predicted, wrong), summary=summary)


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    split0, pooled = float(metrics["test_accuracy_mean"]), float(metrics["test_accuracy_mean_all_splits"])
    gaps = {
        dtype: [float(metrics[f"backprop_vs_autodiff_max_{part}_gap_{dtype}"]) for part in ("curve", "param")]
        for dtype in ("float32", "float64")
    }
    measured64 = all(is_finite(g) for g in gaps["float64"])
    identical = max(gaps["float32"]) == 0 and (not measured64 or max(gaps["float64"]) == 0)
    return Verdict.of(
        Check("test accuracy > 97%", split0 > 0.97 and pooled > 0.97, f"{split0:.2%} (all splits {pooled:.2%})"),
        Check(
            "backprop exactly as jax.grad",
            identical,
            f"gap {max(gaps['float32']):.1g} (float32), "
            + (f"{max(gaps['float64']):.1g} (float64)" if measured64 else "float64 not measured"),
        ),
    )


def _figure(seed_history, test_set, predicted, wrong):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.2, 1])
    ax_loss, ax_acc = top.subplots(1, 2)
    runs = int(np.prod(np.shape(seed_history.train_loss)[:-1]))
    train.plot_histories(
        seed_history, axes=(ax_loss, ax_acc), title=f"{runs} runs (splits x seeds), hand-written backprop"
    )
    ax_loss.set_ylabel("cross-entropy (train: mean over the epoch's batches)")
    seed_acc = np.asarray(seed_history.val_accuracy).reshape(runs, -1)
    ax_acc.set(title="validation accuracy", ylim=(max(0.0, float(seed_acc[:, -1].min()) - 0.1), 1.0))

    shown = wrong[:10]
    bottom.suptitle(
        f"misclassified test digits ({len(wrong)} of {len(predicted)}): true -> predicted", fontsize="medium"
    )
    axes = bottom.subplots(1, 10)
    for ax in axes:
        ax.set_axis_off()
    for ax, i in zip(axes, shown):
        ax.imshow(np.asarray(test_set.x[i]).reshape(8, 8), cmap="gray_r")
        ax.set_title(f"{int(test_set.y[i])} -> {predicted[i]}", fontsize="small")
    return fig
