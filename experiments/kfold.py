r"""k-fold cross-validation chooses the L2 strength; every fold of every candidate in one compiled call.

Setup: the 8x8 digits split stratified 20/80 into a pool of 359 digits for model selection and
a test set of 1438 that selection never sees. A 64-128-10 ReLU MLP trained by Adam (rate 1e-3,
minibatches of 32) with an L2 penalty :math:`\frac{\lambda}{2}\|W\|^2` on its weights, for
:math:`\lambda = 0` and 9 values from 1e-5 to 1e-1.

Measured:

1. the 5-fold cross-validation loss and error of each :math:`\lambda`: one
   ``jax.vmap`` over the candidates of :func:`fnn.kfold.cross_validate`, itself one vmap over
   the folds, so all 50 training runs are a single compiled program (the folds are stratified);
2. the test loss and error of each :math:`\lambda` trained on the whole pool (one vmapped
   call), which selection could not see;
3. the :math:`\lambda` chosen by cross-validation (lowest CV loss), its test error against
   :math:`\lambda = 0` and against the best :math:`\lambda` in hindsight, and the rank
   correlation between the CV and the test curves.

Reference: M. Stone, *Cross-validatory choice and assessment of statistical predictions*, JRSS B
36, 1974; T. Hastie, R. Tibshirani, J. Friedman, *The Elements of Statistical Learning*, §7.10.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from experiments.api import Check, Config, Result, Verdict, numbers
from fnn import MLP, data, kfold, train

CLAIM = "5-fold cross-validation, run for every L2 strength in one compiled vmapped call, picks a strength whose test error is close to the best in hindsight and below no regularisation."
CRITERION = "All of: every fold of every strength is trained in one call (runs in one call = folds x strengths); the test error at the strength with the lowest CV loss is within 0.5 points of the lowest test error over all strengths (the best in hindsight) and strictly below the test error at strength 0."

SIZES = (64, 128, 10)
FRACTIONS = (0.2, 0.1, 0.7)
LEARNING_RATE = 1e-3
BATCH_SIZE = 32


def _strengths(quick: bool) -> np.ndarray:
    return np.array([0.0, 1e-3, 1e-1]) if quick else np.concatenate([[0.0], np.logspace(-5, -1, 9)])


@functools.partial(jax.jit, static_argnums=(0, 1))
def _cross_validate(trainer: train.Trainer, k: int, key, strengths, pool):
    def one(l2):
        return kfold.cross_validate(
            trainer,
            key,
            pool,
            k,
            {"learning_rate": LEARNING_RATE, "l2": l2},
            fold_key=jax.random.fold_in(key, 1),
            stratify=True,
        )

    cv = jax.vmap(one)(strengths)
    return cv.val_loss, cv.val_accuracy


@functools.partial(jax.jit, static_argnums=0)
def _test_curve(trainer: train.Trainer, key, strengths, pool, test):
    hp = {"learning_rate": jnp.full(strengths.shape, LEARNING_RATE), "l2": strengths}
    states, _ = trainer.fit_many(jnp.broadcast_to(key, strengths.shape), pool, None, hp, per_member="hyperparams")
    return jax.vmap(trainer.evaluate, in_axes=(0, 0, None, None))(states.params, states.model_state, *test)


def _ranks(v: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(v)).astype(float)


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    chosen, none = float(metrics["chosen_test_error"]), float(metrics["unregularised_test_error"])
    best = min(numbers(metrics["test_error"]))
    runs, expected = int(metrics["runs_in_one_call"]), int(metrics["k"]) * len(metrics["strengths"])
    return Verdict.of(
        Check("one compiled call", runs == expected, f"{runs} runs"),
        Check("close to the best in hindsight", chosen - best <= 0.005, f"{chosen:.2%} vs best {best:.2%}"),
        Check("below no regularisation", chosen < none, f"{chosen:.2%} vs {none:.2%} at strength 0"),
    )


def run(config: Config) -> Result:
    quick = config.quick
    k = 3 if quick else 5
    epochs = 10 if quick else 100
    strengths = _strengths(quick)
    root = jax.random.key(config.seed)
    # Cross-validation plays the validation set's part: its share of the split joins the test set.
    pool_set, extra, test_set = data.train_val_test_split(
        jax.random.fold_in(root, 0), data.load_digits(), FRACTIONS, stratify=True
    )
    pool = tuple(pool_set)
    test = tuple(jnp.concatenate([a, b]) for a, b in zip(extra, test_set, strict=True))
    trainer = train.Trainer(MLP(SIZES), "cross_entropy", "adam", epochs=epochs, batch_size=BATCH_SIZE)

    cv_loss, cv_acc = (
        np.asarray(a) for a in _cross_validate(trainer, k, jax.random.fold_in(root, 1), jnp.asarray(strengths), pool)
    )
    test_loss, test_acc = (
        np.asarray(a) for a in _test_curve(trainer, jax.random.fold_in(root, 2), jnp.asarray(strengths), pool, test)
    )
    cv_mean, cv_err = cv_loss.mean(axis=1), 1 - cv_acc.mean(axis=1)
    test_err = 1 - test_acc
    chosen = int(np.argmin(cv_mean))
    hindsight = int(np.argmin(test_loss))
    rank_corr = float(np.corrcoef(_ranks(cv_mean), _ranks(test_loss))[0, 1])

    fig = Figure(figsize=(9, 3.6))
    ax_loss, ax_err = fig.subplots(1, 2)
    xs = np.where(strengths > 0, strengths, strengths[strengths > 0].min() / 10)
    ax_loss.errorbar(xs, cv_mean, yerr=cv_loss.std(axis=1), marker="o", capsize=3, label=f"{k}-fold CV loss")
    ax_loss.plot(xs, test_loss, marker="s", label="test loss (trained on the pool)")
    ax_loss.axvline(xs[chosen], color="C0", ls=":", label=f"chosen λ = {strengths[chosen]:g}")
    ax_err.plot(xs, cv_err, marker="o", label="CV error")
    ax_err.plot(xs, test_err, marker="s", label="test error")
    for ax in (ax_loss, ax_err):
        ax.set_xscale("log")
        ax.set_xlabel("L2 strength λ (leftmost: λ = 0)")
        ax.legend(fontsize=8)
    ax_loss.set_ylabel("cross-entropy")
    ax_err.set_ylabel("error")
    fig.tight_layout()

    metrics = {
        "k": k,
        "epochs": epochs,
        "pool_size": int(pool[0].shape[0]),
        "test_size": int(test[0].shape[0]),
        "strengths": strengths.tolist(),
        "cv_loss_per_fold": cv_loss.tolist(),
        "cv_loss": cv_mean.tolist(),
        "cv_error": cv_err.tolist(),
        "test_loss": test_loss.tolist(),
        "test_error": test_err.tolist(),
        "chosen_strength": float(strengths[chosen]),
        "chosen_test_error": float(test_err[chosen]),
        "unregularised_test_error": float(test_err[0]),
        "hindsight_strength": float(strengths[hindsight]),
        "hindsight_test_error": float(test_err[hindsight]),
        "rank_correlation_cv_test": rank_corr,
        "runs_in_one_call": int(len(strengths) * k),
    }
    summary = (
        f"{k}-fold CV over {len(strengths)} L2 strengths ({len(strengths) * k} runs, one compiled call) chose "
        f"λ = {strengths[chosen]:g}: test error {test_err[chosen]:.2%} vs {test_err[0]:.2%} unregularised and "
        f"{test_err[hindsight]:.2%} for the λ with the lowest test loss ({strengths[hindsight]:g}); "
        f"rank correlation of CV and test loss curves {rank_corr:.2f}"
    )
    return Result(metrics=metrics, summary=summary, figure=fig)
