"""Tests of fnn.early_stopping: the stopping rule on sequences, and inside the compiled Trainer."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import train
from fnn.train.early_stopping import EarlyStopping
from tests.helpers import assert_trees_close

NAN = float("nan")


def _watch(stopping, metrics, extra=()):
    """Feed ``metrics`` epoch by epoch; the parameters after epoch ``e`` are ``[e]``."""
    state = stopping.init(jnp.full(1, -1.0, jnp.float64), (), jnp.float64)
    for epoch, metric in enumerate(list(metrics) + list(extra)):
        state = stopping.update(state, jnp.float64(metric), epoch, jnp.full(1, float(epoch), jnp.float64), ())
    return state


def _reference(metrics, patience, min_delta=0.0, mode="min"):
    """(best epoch, stop epoch, best) by the textbook loop, in plain Python."""
    best, best_epoch, wait = (math.inf if mode == "min" else -math.inf), -1, 0
    for epoch, metric in enumerate(metrics):
        better = metric < best - min_delta if mode == "min" else metric > best + min_delta  # False for NaN
        if better:
            best, best_epoch, wait = metric, epoch, 0
        else:
            wait += 1
        if wait >= patience:
            return best_epoch, epoch, best
    return best_epoch, -1, best


def _check(state, best_epoch, stop_epoch):
    assert int(state.best_epoch) == best_epoch
    assert int(state.stop_epoch) == stop_epoch
    assert bool(state.stopped) == (stop_epoch >= 0)
    assert float(state.best_params[0]) == float(best_epoch)  # the parameters of the best epoch (-1: initial)


# ----------------------------------------------------------------------------------------
# the rule on sequences
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metrics, settings, best_epoch, stop_epoch",
    [
        ([1.0, 0.5, 0.7, 0.6, 0.4], dict(patience=2), 1, 3),
        ([1.0, 0.5, 0.7, 0.6, 0.4], dict(patience=3), 4, -1),  # improves just in time
        ([1.0, 0.95, 0.92, 0.5], dict(patience=2, min_delta=0.1), 0, 2),  # small gains do not count
        ([1.0, 0.85, 0.8, 0.7], dict(patience=2, min_delta=0.1), 3, -1),
        ([0.5, 0.6, 0.6, 0.55], dict(patience=2, mode="max"), 1, 3),  # a tie is no improvement
        ([1.0, NAN, NAN, 0.1], dict(patience=2), 0, 2),  # NaN never improves and counts
        ([NAN, NAN, 0.1], dict(patience=2), -1, 1),  # never improved: the initial parameters
        ([3.0, 2.0, 1.0], dict(patience=1), 2, -1),
        ([3.0, 3.0], dict(patience=1), 0, 1),
    ],
)
def test_sequence_semantics(metrics, settings, best_epoch, stop_epoch):
    stopping = EarlyStopping(**settings)
    state = _watch(stopping, metrics)
    _check(state, best_epoch, stop_epoch)
    assert (int(state.best_epoch), int(state.stop_epoch)) == _reference(metrics, **settings)[:2]


def test_matches_the_reference_loop_on_random_sequences():
    rng = np.random.default_rng(0)
    for trial in range(8):
        metrics = rng.normal(size=10).cumsum()
        metrics[rng.random(10) < 0.15] = np.nan
        settings = dict(
            patience=int(rng.integers(1, 4)), min_delta=float(rng.choice([0.0, 0.3])), mode=["min", "max"][trial % 2]
        )
        state = _watch(EarlyStopping(**settings), metrics)
        best_epoch, stop_epoch, best = _reference(metrics.tolist(), **settings)
        _check(state, best_epoch, stop_epoch)
        assert float(state.best) == best


def test_nothing_changes_after_stopping():
    stopping = EarlyStopping(patience=1)
    stopped = _watch(stopping, [1.0, 2.0])
    later = _watch(stopping, [1.0, 2.0], extra=[0.0, -5.0])  # better values after the stop are ignored
    for a, b in zip(jax.tree.leaves(stopped), jax.tree.leaves(later), strict=True):
        np.testing.assert_array_equal(a, b)
    _check(later, 0, 1)


def test_first_state():
    state = EarlyStopping(patience=3, mode="max").init(jnp.zeros(2), ())
    assert float(state.best) == -math.inf and int(state.best_epoch) == -1 and int(state.stop_epoch) == -1
    assert not bool(state.stopped) and int(state.wait) == 0


@pytest.mark.parametrize(
    "settings, error, match",
    [
        (dict(patience=0), ValueError, "patience"),
        (dict(patience=1.5), TypeError, "patience"),
        (dict(patience=True), TypeError, "patience"),
        (dict(patience=2, min_delta=-0.1), ValueError, "min_delta"),
        (dict(patience=2, min_delta=float("nan")), ValueError, "min_delta"),
        (dict(patience=2, mode="lowest"), ValueError, "mode"),
        (dict(patience=2, monitor="train_loss"), ValueError, "monitor"),
        (dict(patience=2, restore_best=1), TypeError, "restore_best"),
    ],
)
def test_invalid_settings_raise(settings, error, match):
    with pytest.raises(error, match=match):
        EarlyStopping(**settings)


# ----------------------------------------------------------------------------------------
# inside the Trainer
# ----------------------------------------------------------------------------------------

HP = {"learning_rate": 0.02}
PATIENCE = 4


def _trainer(**kw):
    settings = dict(
        model=fnn.MLP((1, 16, 1), activation="tanh"),
        loss="mse",
        optimizer="adam",
        epochs=40,
        early_stopping=EarlyStopping(patience=PATIENCE),
    )
    return train.Trainer(**{**settings, **kw})


def _problem(seed):
    """Ten noisy training points (a small net overfits them) and a validation set."""
    k_train, k_val = jax.random.split(jax.random.key(seed))
    x, y = fnn.data.noisy_sine(k_train, 10, noise=0.5, dtype=jnp.float64)
    x_val, y_val = fnn.data.noisy_sine(k_val, 50, noise=0.5, dtype=jnp.float64)
    return (x, y), (x_val, y_val)


def _start(trainer):
    return trainer.init(jax.random.key(1), HP, dtype=jnp.float64)


def _same(a, b, rtol=1e-12):
    assert_trees_close(a, b, rtol=rtol, atol=1e-14)


@pytest.mark.slow
def test_trainer_keeps_the_best_epoch(key):
    trainer = _trainer()
    data, validation = _problem(2)
    state, history = trainer.fit(_start(trainer), data, validation, HP)
    best, stop = int(history.best_epoch), int(history.stop_epoch)
    assert 0 <= best < stop < trainer.epochs - 1
    val_loss = np.asarray(history.val_loss)
    # consistent with the recorded metric: the best is the first minimum, PATIENCE epochs before the stop
    assert np.all(np.isfinite(val_loss[: stop + 1]))
    assert np.all(np.isnan(val_loss[stop + 1 :])) and np.all(np.isnan(np.asarray(history.train_loss)[stop + 1 :]))
    assert best == int(np.argmin(val_loss[: stop + 1])) and stop - best == PATIENCE
    assert (best, stop) == _reference(val_loss[: stop + 1].tolist(), PATIENCE)[:2]
    # the returned parameters are those after epoch `best`: a plain run of best + 1 epochs
    plain = dataclasses.replace(trainer, early_stopping=None, epochs=best + 1)
    reference, reference_history = plain.fit(_start(plain), data, validation, HP)
    _same(state.params, reference.params)
    np.testing.assert_allclose(val_loss[: best + 1], reference_history.val_loss, rtol=1e-12)
    np.testing.assert_allclose(
        trainer.evaluate(state.params, state.model_state, *validation)[0], val_loss[best], rtol=1e-12
    )
    assert int(state.epoch) == trainer.epochs


@pytest.mark.slow
def test_members_stop_on_their_own_under_vmap():
    trainer = _trainer()
    problems = [_problem(seed) for seed in (2, 3, 5)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *problems)
    start = _start(trainer)
    states, histories = jax.jit(jax.vmap(lambda d, v: trainer.fit(start, d, v, HP)))(*stacked)
    stops = np.asarray(histories.stop_epoch).tolist()
    assert len(set(stops)) > 1 and min(stops) >= 0
    for m, (data, validation) in enumerate(problems):
        alone, history = trainer.fit(start, data, validation, HP)
        _same(jax.tree.map(lambda a, m=m: a[m], states.params), alone.params)
        _same(jax.tree.map(lambda a, m=m: a[m], histories), history)  # NaN where the other is NaN


def test_needs_validation_data():
    trainer = _trainer()
    data, _ = _problem(2)
    with pytest.raises(ValueError, match="validation"):
        trainer.fit(_start(trainer), data, None, HP)


def test_accuracy_needs_a_classification_loss():
    with pytest.raises(ValueError, match="val_accuracy"):
        _trainer(early_stopping=EarlyStopping(patience=2, mode="max", monitor="val_accuracy"))
    with pytest.raises(TypeError, match="early_stopping"):
        _trainer(early_stopping=3)


@pytest.mark.slow
def test_accuracy_monitor_without_restoring(key):
    x, y = fnn.data.blobs(key, 40, centers=3, std=2.0, dtype=jnp.float64)
    x_val, y_val = fnn.data.blobs(key, 60, centers=3, std=2.0, dtype=jnp.float64)
    stopping = EarlyStopping(patience=3, mode="max", monitor="val_accuracy", restore_best=False)
    trainer = train.Trainer(fnn.MLP((2, 3)), "cross_entropy", "sgd", epochs=30, early_stopping=stopping)
    hp = {"learning_rate": 0.05}
    state, history = trainer.fit(trainer.init(key, hp, dtype=jnp.float64), (x, y), (x_val, y_val), hp)
    accuracy = np.asarray(history.val_accuracy)
    best, stop = int(history.best_epoch), int(history.stop_epoch)
    assert 0 <= stop < trainer.epochs - 1 and np.all(np.isnan(accuracy[stop + 1 :]))
    assert best == int(np.argmax(accuracy[: stop + 1])) and stop - best == 3
    # restore_best=False: the parameters after the last epoch trained, not the best
    plain = dataclasses.replace(trainer, early_stopping=None, epochs=stop + 1)
    reference, _ = plain.fit(plain.init(key, hp, dtype=jnp.float64), (x, y), None, hp)
    _same(state.params, reference.params)


@pytest.mark.slow
def test_batch_norm_statistics_of_the_best_epoch_are_restored():
    """With batch norm the model state is restored with the parameters: both from epoch `best`."""
    trainer = _trainer(model=fnn.MLP((1, 16, 1), activation="tanh", batch_norm=True), batch_size=5)
    data, validation = _problem(2)
    state, history = trainer.fit(_start(trainer), data, validation, HP)
    best = int(history.best_epoch)
    assert best >= 0
    plain = dataclasses.replace(trainer, early_stopping=None, epochs=best + 1)
    reference, _ = plain.fit(_start(plain), data, validation, HP)
    _same(state.params, reference.params)
    _same(state.model_state, reference.model_state)
