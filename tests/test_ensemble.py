"""Tests of fnn.ensemble: M members in one vmapped call, their mean and their disagreement."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import ensemble, train
from tests.helpers import assert_trees_close


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def _entropy(p):
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=-1)


# ----------------------------------------------------------------------------------------
# fit and outputs
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_fit_equals_separate_runs_from_member_keys(key):
    x, y = fnn.data.blobs(key, 24, centers=3, std=2.0, dtype=jnp.float64)
    model = fnn.MLP((2, 3))
    trainer = train.Trainer(model, "cross_entropy", "adam", epochs=10, batch_size=8)
    hp = {"learning_rate": 0.1}
    members = 3
    states, histories = ensemble.fit(trainer, jax.random.key(5), members, (x, y), (x, y), hp, dtype=jnp.float64)
    assert histories.val_loss.shape == (members, trainer.epochs)
    assert all(leaf.shape[0] == members for leaf in jax.tree.leaves(states.params))
    keys = ensemble.member_keys(jax.random.key(5), members)
    for m in range(members):
        state, history = trainer.fit(trainer.init(keys[m], hp, dtype=jnp.float64), (x, y), (x, y), hp)
        assert_trees_close(jax.tree.map(lambda a, m=m: a[m], states), state)
        assert_trees_close(jax.tree.map(lambda a, m=m: a[m], histories), history)
    # members differ: they are not one run copied
    assert not np.allclose(np.asarray(states.params[0]["W"][0]), np.asarray(states.params[0]["W"][1]))

    out = ensemble.outputs(model, states.params, states.model_state, x)
    assert out.shape == (members, 24, 3)
    for m in range(members):
        single, _ = model.apply(jax.tree.map(lambda a, m=m: a[m], states.params), (), x)
        np.testing.assert_allclose(out[m], single, rtol=1e-14)
    prediction = ensemble.classify(out)
    assert prediction.mean.shape == (24, 3) and prediction.disagreement.shape == (24,)
    # every member has learned the blobs, so the ensemble does too
    accuracy = np.mean(np.argmax(np.asarray(prediction.mean), axis=-1) == np.asarray(y))
    assert accuracy > 0.9


def test_member_keys_are_fold_ins(key):
    keys = ensemble.member_keys(key, 4)
    assert keys.shape == (4,)
    for m in range(4):
        np.testing.assert_array_equal(jax.random.key_data(keys[m]), jax.random.key_data(jax.random.fold_in(key, m)))
    with pytest.raises(ValueError, match="members must be a positive integer"):
        ensemble.member_keys(key, 0)


# ----------------------------------------------------------------------------------------
# classify
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_classify_averages_probabilities_not_logits(key):
    logits = jax.random.normal(key, (5, 7, 4), jnp.float64) * 3
    prediction = ensemble.classify(logits)
    probabilities = _softmax(np.asarray(logits))
    np.testing.assert_allclose(prediction.members, probabilities, rtol=1e-13)
    np.testing.assert_allclose(prediction.mean, probabilities.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(np.sum(np.asarray(prediction.mean), axis=-1), 1.0, rtol=1e-14)
    assert not np.allclose(np.asarray(prediction.mean), _softmax(np.asarray(logits).mean(axis=0)), atol=1e-3)
    mutual_information = _entropy(probabilities.mean(axis=0)) - _entropy(probabilities).mean(axis=0)
    np.testing.assert_allclose(prediction.disagreement, mutual_information, rtol=1e-11, atol=1e-14)
    assert np.all(np.asarray(prediction.disagreement) >= 0)
    votes = probabilities.argmax(axis=-1)
    chosen = probabilities.mean(axis=0).argmax(axis=-1)
    np.testing.assert_allclose(prediction.vote_disagreement, np.mean(votes != chosen[None], axis=0), rtol=1e-14)


def test_members_that_agree_have_no_disagreement(key):
    one = jax.random.normal(key, (1, 6, 3), jnp.float64)
    prediction = ensemble.classify(jnp.concatenate([one] * 4))
    np.testing.assert_allclose(prediction.disagreement, 0.0, atol=1e-15)
    np.testing.assert_array_equal(prediction.vote_disagreement, 0.0)
    np.testing.assert_allclose(prediction.mean, _softmax(np.asarray(one[0])), rtol=1e-14)


def test_vote_disagreement_counts_dissenting_members():
    logits = jnp.array([[[2.0, 0.0, 0.0]], [[3.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]], jnp.float64)
    prediction = ensemble.classify(logits)
    assert int(np.argmax(prediction.mean[0])) == 0
    np.testing.assert_allclose(prediction.vote_disagreement, [1 / 3], rtol=1e-14)
    assert float(prediction.disagreement[0]) > 0.05


@pytest.mark.slow
def test_binary_single_logit_equals_two_logits(key):
    z = jax.random.normal(key, (4, 9, 1), jnp.float64) * 2
    single = ensemble.classify(z)
    double = ensemble.classify(jnp.concatenate([jnp.zeros_like(z), z], axis=-1))  # softmax([0, z])_1 = sigmoid(z)
    assert single.mean.shape == (9, 1) and single.members.shape == (4, 9, 1)
    np.testing.assert_allclose(single.mean, np.mean(1 / (1 + np.exp(-np.asarray(z))), axis=0), rtol=1e-13)
    np.testing.assert_allclose(single.mean, double.mean[:, 1:], rtol=1e-13)
    np.testing.assert_allclose(single.members, double.members[..., 1:], rtol=1e-13)
    np.testing.assert_allclose(single.disagreement, double.disagreement, rtol=1e-11, atol=1e-15)
    np.testing.assert_array_equal(single.vote_disagreement, double.vote_disagreement)


# ----------------------------------------------------------------------------------------
# regress and validation
# ----------------------------------------------------------------------------------------


def test_regress_mean_and_spread(key):
    outputs = jax.random.normal(key, (5, 7, 2), jnp.float64)
    prediction = ensemble.regress(outputs)
    np.testing.assert_allclose(prediction.mean, np.asarray(outputs).mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(prediction.disagreement, np.asarray(outputs).std(axis=0).sum(axis=-1), rtol=1e-13)
    assert prediction.disagreement.shape == (7,) and np.all(np.isnan(np.asarray(prediction.vote_disagreement)))
    agreeing = ensemble.regress(jnp.concatenate([outputs[:1]] * 3))
    np.testing.assert_allclose(agreeing.disagreement, 0.0, atol=1e-15)


def test_bad_shapes_and_dtypes_raise():
    with pytest.raises(ValueError, match="logits must have rank 3"):
        ensemble.classify(jnp.zeros((4, 3)))
    with pytest.raises(TypeError, match="logits must be a floating-point array"):
        ensemble.classify(jnp.zeros((2, 4, 3), jnp.int32))
    with pytest.raises(ValueError, match="member_outputs must have rank 3"):
        ensemble.regress(jnp.zeros((2, 4)))
    with pytest.raises(TypeError, match="member_outputs must be a floating-point array"):
        ensemble.regress(jnp.zeros((2, 4, 1), jnp.int32))


@pytest.mark.slow
def test_batch_norm_ensemble_keeps_per_member_statistics(key):
    """Members trained in one call keep their own running statistics, and evaluation uses them."""
    x, y = fnn.data.blobs(key, 48, centers=3, dtype=jnp.float64)
    model = fnn.MLP((2, 8, 3), batch_norm=True, dropout=0.1)
    trainer = train.Trainer(model, "cross_entropy", "adam", epochs=3, batch_size=16)
    hp = {"learning_rate": 0.01}
    states, _ = ensemble.fit(trainer, key, 3, (x, y), None, hp, dtype=jnp.float64)
    means = states.model_state[0].mean  # [members, 8]
    assert means.shape == (3, 8)
    assert not np.allclose(means[0], means[1]) and not np.allclose(means[1], means[2])
    member = jax.tree.map(lambda leaf: leaf[1], states)
    alone, _ = trainer.fit(trainer.init(ensemble.member_keys(key, 3)[1], hp, dtype=jnp.float64), (x, y), None, hp)
    for a, b in zip(jax.tree.leaves(member.model_state), jax.tree.leaves(alone.model_state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    out = ensemble.outputs(model, states.params, states.model_state, x[:5])
    single = model.apply(member.params, member.model_state, x[:5])[0]
    np.testing.assert_allclose(out[1], single, rtol=1e-12, atol=1e-12)
