"""Tests of fnn.kfold: fold indices, padded train/validation splits, k runs in one vmapped call."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import kfold, train
from tests.helpers import assert_trees_close

SHAPES = [(10, 3), (7, 7), (5, 2), (23, 5)]

# One compiled program per shape; eagerly, the vmapped split runs (and compiles) op by op.
_folds = jax.jit(kfold.folds, static_argnums=(1, 2))


def _sizes(ids, k):
    return np.bincount(np.asarray(ids), minlength=k)


# ----------------------------------------------------------------------------------------
# fold_ids
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, k", SHAPES)
def test_fold_ids_cover_every_example_once(key, n, k):
    for ids in (kfold.fold_ids(n, k), kfold.fold_ids(n, k, key=key)):
        ids = np.asarray(ids)
        assert ids.shape == (n,) and ids.dtype == np.int32
        assert ids.min() >= 0 and ids.max() < k
        sizes = _sizes(ids, k)
        assert sizes.sum() == n and sizes.max() - sizes.min() <= 1 and sizes.min() >= 1


def test_fold_ids_in_order_deal_round_robin():
    assert kfold.fold_ids(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_fold_ids_with_a_key_deal_a_permutation(key):
    n, k = 23, 5
    ids = kfold.fold_ids(n, k, key=key)
    permutation = np.asarray(jax.random.permutation(key, n))
    expected = np.zeros(n, np.int32)
    expected[permutation] = np.arange(n) % k
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_array_equal(kfold.fold_ids(n, k, key=key), ids)
    assert not np.array_equal(kfold.fold_ids(n, k, key=jax.random.fold_in(key, 1)), ids)


@pytest.mark.parametrize("shuffle", [False, True])
def test_stratified_folds_balance_every_class(key, shuffle):
    n, k = 29, 4
    labels = jnp.array([0] * 13 + [1] * 9 + [2] * 7, jnp.int32)
    labels = jax.random.permutation(jax.random.fold_in(key, 7), labels)
    ids = np.asarray(kfold.fold_ids(n, k, key=key if shuffle else None, labels=labels))
    sizes = _sizes(ids, k)
    assert sizes.sum() == n and sizes.max() - sizes.min() <= 1
    for c in range(3):
        per_fold = _sizes(ids[np.asarray(labels) == c], k)
        assert per_fold.max() - per_fold.min() <= 1, (c, per_fold)
    one_hot = fnn.activations.one_hot(labels, 3, dtype=jnp.float64)
    np.testing.assert_array_equal(kfold.fold_ids(n, k, key=key if shuffle else None, labels=one_hot), ids)


def test_binary_targets_stratify_by_their_class(key):
    labels = (jax.random.uniform(key, (17,)) < 0.3).astype(jnp.int32)
    as_targets = labels[:, None].astype(jnp.float64)  # binary_cross_entropy's [n, 1] targets
    np.testing.assert_array_equal(
        kfold.fold_ids(17, 3, key=key, labels=as_targets), kfold.fold_ids(17, 3, key=key, labels=labels)
    )


def test_unstratified_folds_can_be_unbalanced():
    # the check above could fail: in order, class 1 all lands in two folds
    labels = np.array([0, 0, 0, 0, 1, 1], np.int32)
    ids = np.asarray(kfold.fold_ids(6, 3))
    assert _sizes(ids[labels == 1], 3).tolist() == [0, 1, 1]
    assert _sizes(np.asarray(kfold.fold_ids(6, 2, labels=jnp.asarray(labels)))[labels == 1], 2).tolist() == [1, 1]


@pytest.mark.parametrize("n, k", [(5, 1), (5, 0), (5, 6), (1, 2)])
def test_bad_k_raises(n, k):
    with pytest.raises(ValueError, match="k must be an integer with 2 <= k"):
        kfold.fold_ids(n, k)


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="k must be an integer"):
        kfold.fold_ids(6, 2.5)
    with pytest.raises(ValueError, match="labels must have shape"):
        kfold.fold_ids(6, 2, labels=jnp.zeros(5, jnp.int32))
    with pytest.raises(TypeError, match="labels to stratify by must be integer"):
        kfold.fold_ids(6, 2, labels=jnp.zeros(6))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        kfold.fold_ids(0, 2)


# ----------------------------------------------------------------------------------------
# folds
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, k", SHAPES)
def test_folds_are_complementary_partitions(key, n, k):
    ids = kfold.fold_ids(n, k, key=key)
    split = _folds(ids, k, jnp.float64)
    assert split.train.shape == split.train_weights.shape == (k, n - n // k)
    assert split.validation.shape == split.validation_weights.shape == (k, -(-n // k))
    assert split.train_weights.dtype == jnp.float64
    seen = []
    for i in range(k):
        train_w, val_w = np.asarray(split.train_weights[i]), np.asarray(split.validation_weights[i])
        assert set(np.unique(train_w)) <= {0.0, 1.0} and set(np.unique(val_w)) <= {0.0, 1.0}
        train_set = np.asarray(split.train[i])[train_w > 0]
        val_set = np.asarray(split.validation[i])[val_w > 0]
        assert len(set(train_set)) == train_set.size and len(set(val_set)) == val_set.size
        assert set(val_set) == set(np.flatnonzero(np.asarray(ids) == i))
        assert set(train_set) | set(val_set) == set(range(n)) and not set(train_set) & set(val_set)
        seen.extend(val_set.tolist())
    assert sorted(seen) == list(range(n))  # every example validated exactly once


def test_folds_refuse_bad_ids():
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 2\)"):
        kfold.folds(jnp.array([0, 1, 2, 0]), 2)
    with pytest.raises(ValueError, match="rank 1"):
        kfold.folds(jnp.zeros((2, 2), jnp.int32), 2)
    with pytest.raises(ValueError, match="k must be"):
        kfold.folds(jnp.zeros(3, jnp.int32), 4)
    traced = _folds(jnp.array([0, 1, 2, 0]), 2, jnp.float64)  # under jit: NaN weights, not a silent split
    assert np.all(np.isnan(np.asarray(traced.train_weights))) and np.all(
        np.isnan(np.asarray(traced.validation_weights))
    )


# ----------------------------------------------------------------------------------------
# cross_validate
# ----------------------------------------------------------------------------------------


def _data(key, n):
    x, y = fnn.data.blobs(key, n, centers=3, std=2.0, dtype=jnp.float64)
    return x, y


def _separate(trainer, key, x, y, ids, k, hp):
    """Each fold's run by itself: Trainer.fit on the fold's (unpadded) training set."""
    runs = []
    x, y, ids = np.asarray(x), np.asarray(y), np.asarray(ids)  # index on the host: no compile per shape
    for i in range(k):
        train_idx, val_idx = np.flatnonzero(ids != i), np.flatnonzero(ids == i)
        state = trainer.init(jax.random.fold_in(key, i), hp, dtype=jnp.float64)
        state, history = trainer.fit(state, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]), hp)
        # without early stopping, the last epoch's validation metrics are those of the final parameters
        runs.append((state, history, (history.val_loss[-1], history.val_accuracy[-1])))
    return runs


def _compare(cv, runs, trainer):
    for i, (state, history, (val_loss, val_accuracy)) in enumerate(runs):
        assert_trees_close(jax.tree.map(lambda a, i=i: a[i], cv.state.params), state.params)
        assert_trees_close(jax.tree.map(lambda a, i=i: a[i], cv.history), history)
        np.testing.assert_allclose(cv.val_loss[i], val_loss, rtol=1e-12)
        np.testing.assert_allclose(cv.val_accuracy[i], val_accuracy, rtol=1e-12)
    np.testing.assert_allclose(cv.score, np.mean([run[2][0] for run in runs]), rtol=1e-12)
    assert cv.val_loss.shape == (len(runs),) and np.asarray(cv.state.epoch).tolist() == [trainer.epochs] * len(runs)


@pytest.mark.slow
def test_cross_validate_equals_separate_runs_with_minibatches_and_compiles_once(key):
    traces = []
    mse = fnn.losses.get("cross_entropy")

    def counted(prediction, target):
        traces.append(1)  # runs when traced, not when the compiled program runs
        return mse(prediction, target)

    loss = fnn.losses.Loss("cross_entropy", counted, mse.grad_fn)
    trainer = train.Trainer(fnn.MLP((2, 3)), loss, "adam", epochs=4, batch_size=6)
    n, k = 24, 4
    x, y = _data(key, n)
    fold_key, run_key = jax.random.key(11), jax.random.key(12)
    hp = {"learning_rate": 0.05}
    cv = kfold.cross_validate(trainer, run_key, (x, y), k, hp, fold_key=fold_key, dtype=jnp.float64)
    compiled = len(traces)
    again = kfold.cross_validate(
        trainer, run_key, (x, y), k, {"learning_rate": 0.01}, fold_key=fold_key, dtype=jnp.float64
    )
    assert compiled > 0 and len(traces) == compiled  # no retrace for other hyperparameter values
    assert not np.allclose(np.asarray(again.val_loss), np.asarray(cv.val_loss))
    ids = kfold.fold_ids(n, k, key=fold_key)
    _compare(cv, _separate(trainer, run_key, x, y, ids, k, hp), trainer)


# The two tests below share one trainer, data shape and hyperparameter keys, so one compiled program.
def _full_batch_trainer():
    return train.Trainer(fnn.MLP((2, 3)), "cross_entropy", "adam", epochs=6)


def _cv(trainer, x, y, l2):
    return kfold.cross_validate(
        trainer, jax.random.key(3), (x, y), 4, {"learning_rate": 0.05, "l2": l2}, dtype=jnp.float64
    )


@pytest.mark.slow
def test_cross_validate_pads_uneven_folds_exactly_for_full_batches(key):
    trainer = _full_batch_trainer()
    n, k = 22, 4  # folds of 6, 6, 5, 5: training sets of 16 and 17 examples padded to 17
    x, y = _data(key, n)
    cv = _cv(trainer, x, y, 0.01)
    assert jax.tree.leaves(cv.state.params)[0].dtype == jnp.float64
    hp = {"learning_rate": 0.05, "l2": 0.01}
    _compare(cv, _separate(trainer, jax.random.key(3), x, y, kfold.fold_ids(n, k), k, hp), trainer)


@pytest.mark.slow
def test_cross_validate_vmaps_over_penalty_strengths(key):
    trainer = _full_batch_trainer()
    x, y = _data(key, 22)
    strengths = jnp.array([0.0, 0.01, 1.0], jnp.float64)
    batched = jax.vmap(lambda l2: _cv(trainer, x, y, l2).val_loss)(strengths)
    assert batched.shape == (3, 4)
    for i, l2 in enumerate(strengths.tolist()):
        np.testing.assert_allclose(batched[i], _cv(trainer, x, y, l2).val_loss, rtol=1e-12)
    assert not np.allclose(np.asarray(batched[0]), np.asarray(batched[2]))


def test_cross_validate_refuses_bad_input(key):
    trainer = train.Trainer(fnn.MLP((2, 3)), "cross_entropy", "sgd", epochs=1)
    x, y = _data(key, 10)
    hp = {"learning_rate": 0.1}
    with pytest.raises(ValueError, match="k must be an integer with 2 <= k"):
        kfold.cross_validate(trainer, key, (x, y), 11, hp)
    with pytest.raises(ValueError, match="k must be an integer with 2 <= k"):
        kfold.cross_validate(trainer, key, (x, y), 1, hp)
    with pytest.raises(ValueError, match="share their first axis"):
        kfold.cross_validate(trainer, key, (x, y[:-1]), 2, hp)
    with pytest.raises(ValueError, match="stratify needs integer class labels"):
        kfold.cross_validate(trainer, key, (x, y.astype(jnp.float64)), 2, hp, stratify=True)


@pytest.mark.slow
@pytest.mark.parametrize("gradient", ["autodiff", "backprop"])
def test_cross_validate_with_batch_norm_pads_uneven_folds_exactly(key, gradient):
    # n = 62, k = 5: folds of 13, 13, 12, 12, 12, training sets of 49 and 50 padded to 50. The
    # padding rows have weight 0 in the batch statistics too, so each fold is its separate fit.
    n, k = 62, 5
    model = fnn.MLP((2, 4, 3), batch_norm=True)
    # SGD: the gradient of the bias before batch norm is 0 up to rounding, which Adam's normalised
    # steps would blow up to differences of 1e-11 between the roundings of any two programs.
    trainer = train.Trainer(model, "cross_entropy", "sgd", epochs=3, gradient=gradient)
    hp = {"learning_rate": 0.5}
    x, y = _data(key, n)
    cv = kfold.cross_validate(trainer, jax.random.key(3), (x, y), k, hp, dtype=jnp.float64)
    runs = _separate(trainer, jax.random.key(3), x, y, kfold.fold_ids(n, k), k, hp)
    for i, (state, history, (val_loss, _)) in enumerate(runs):
        member = jax.tree.map(lambda a, i=i: a[i], (cv.state.params, cv.state.model_state))
        assert_trees_close(member, (state.params, state.model_state), rtol=1e-10, atol=1e-12)
        assert_trees_close(jax.tree.map(lambda a, i=i: a[i], cv.history), history, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(cv.val_loss[i], val_loss, rtol=1e-10)
    assert not np.allclose(np.asarray(cv.state.model_state[0].mean[0]), 0)  # the statistics moved
