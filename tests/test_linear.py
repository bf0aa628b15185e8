"""Tests of fnn.linear's multinomial (softmax) logistic regression: probabilities, loss, the
hand-written gradient against jax.grad and finite differences in float64, and convergence.

Least squares and two-class logistic regression are tested in tests/test_perceptron.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import linear, losses

D, K, N = 3, 4, 11


def _problem(seed=0, soft=False):
    rng = np.random.default_rng(seed)
    params = [{"W": jnp.asarray(rng.standard_normal((D, K))), "b": jnp.asarray(rng.standard_normal(K))}]
    x = jnp.asarray(rng.standard_normal((N, D)))
    if soft:
        w = rng.uniform(size=(N, K))
        labels = jnp.asarray(w / w.sum(axis=1, keepdims=True))
    else:
        labels = jnp.asarray(rng.integers(0, K, N))
    return params, x, labels


def _blobs(seed=1, per_class=20):
    """Three well-separated Gaussian blobs in the plane, standardised, and their labels."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 4.0], [-4.0, -3.0], [4.0, -3.0]])
    x = np.concatenate([c + 0.5 * rng.standard_normal((per_class, 2)) for c in centres])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return jnp.asarray(x), jnp.asarray(np.repeat(np.arange(3), per_class))


def test_probabilities_are_softmax_of_the_logits():
    params, x, _ = _problem()
    p = np.asarray(linear.multinomial(params, x))
    z = np.asarray(x) @ np.asarray(params[0]["W"]) + np.asarray(params[0]["b"])
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert p.shape == (N, K)
    np.testing.assert_allclose(p, expected, rtol=1e-13)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-14)


def test_two_classes_are_logistic_regression_on_the_logit_difference():
    params, x, _ = _problem()
    two = [{"W": params[0]["W"][:, :2], "b": params[0]["b"][:2]}]
    diff = [{"W": two[0]["W"][:, 1:] - two[0]["W"][:, :1], "b": two[0]["b"][1:] - two[0]["b"][:1]}]
    np.testing.assert_allclose(linear.multinomial(two, x)[:, 1:], linear.logistic(diff, x), rtol=1e-13)


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "distributions"])
def test_loss_is_the_mean_negative_log_likelihood(soft):
    params, x, labels = _problem(soft=soft)
    p = np.asarray(linear.multinomial(params, x))
    y = np.asarray(labels) if soft else np.eye(K)[np.asarray(labels)]
    expected = -np.mean(np.sum(y * np.log(p), axis=1))
    np.testing.assert_allclose(linear.multinomial_loss(params, x, labels), expected, rtol=1e-13)
    logits = linear.apply(params, x)
    np.testing.assert_allclose(linear.multinomial_loss(params, x, labels), losses.cross_entropy(logits, labels), rtol=0)


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "distributions"])
def test_hand_gradient_matches_autodiff_and_the_formula(soft):
    params, x, labels = _problem(seed=2, soft=soft)
    hand = linear.multinomial_grad(params, x, labels)
    auto = jax.grad(linear.multinomial_loss)(params, x, labels)
    assert jax.tree.structure(hand) == jax.tree.structure(params)
    for name in ("W", "b"):
        assert hand[0][name].shape == params[0][name].shape and hand[0][name].dtype == jnp.float64
        np.testing.assert_allclose(hand[0][name], auto[0][name], rtol=1e-12, atol=1e-15)
    # X^T (S - Y) / N and the column sums of (S - Y) / N, written out.
    y = np.asarray(labels) if soft else np.eye(K)[np.asarray(labels)]
    r = (np.asarray(linear.multinomial(params, x)) - y) / N
    np.testing.assert_allclose(hand[0]["W"], np.asarray(x).T @ r, rtol=1e-12)
    np.testing.assert_allclose(hand[0]["b"], r.sum(axis=0), rtol=1e-12)


def test_hand_gradient_matches_finite_differences():
    params, x, labels = _problem(seed=3)
    hand = linear.multinomial_grad(params, x, labels)
    loss = jax.jit(linear.multinomial_loss)
    h = 1e-6
    for name in ("W", "b"):
        value = np.asarray(params[0][name])
        fd = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            step = np.zeros_like(value)
            step[index] = h
            up = [{**params[0], name: jnp.asarray(value + step)}]
            down = [{**params[0], name: jnp.asarray(value - step)}]
            fd[index] = (loss(up, x, labels) - loss(down, x, labels)) / (2 * h)
        np.testing.assert_allclose(hand[0][name], fd, rtol=1e-7, atol=1e-9)


def test_fit_converges_on_three_separable_classes():
    x, labels = _blobs()
    design = np.concatenate([np.asarray(x), np.ones((x.shape[0], 1))], axis=1)
    lipschitz = np.linalg.eigvalsh(design.T @ design).max() / (2 * x.shape[0])
    params, curve = linear.fit_multinomial(x, labels, 3, learning_rate=1 / lipschitz, steps=150)
    curve = np.asarray(curve)
    assert curve.shape == (150,) and np.all(np.isfinite(curve))
    np.testing.assert_allclose(curve[0], np.log(3), rtol=1e-14)  # from zero: uniform probabilities
    assert np.all(np.diff(curve) < 0)  # a step below 2/L decreases the loss every time
    assert curve[-1] < 0.05 * curve[0]
    np.testing.assert_array_equal(jnp.argmax(linear.multinomial(params, x), axis=1), labels)
    assert params[0]["W"].shape == (2, 3) and params[0]["W"].dtype == jnp.float64
    # The returned parameters are those after the last step.
    last = linear.multinomial_loss(params, x, labels)
    assert last < curve[-1]


@pytest.mark.slow
def test_fit_sweeps_learning_rates_in_one_vmap():
    x, labels = _blobs(per_class=5)
    rates = jnp.array([0.1, 0.5])
    _, curves = jax.vmap(lambda r: linear.fit_multinomial(x, labels, 3, learning_rate=r, steps=20))(rates)
    for rate, curve in zip(rates, curves, strict=True):
        np.testing.assert_allclose(
            curve, linear.fit_multinomial(x, labels, 3, learning_rate=float(rate), steps=20)[1], rtol=1e-12
        )
    assert curves[1, -1] < curves[0, -1]


def test_errors():
    params, x, labels = _problem()
    one = [{"W": params[0]["W"][:, :1], "b": params[0]["b"][:1]}]
    with pytest.raises(ValueError, match="K >= 2 outputs"):
        linear.multinomial(one, x)
    with pytest.raises(ValueError, match=r"x must be a batch \[N, d\], got shape \(3,\)"):
        linear.multinomial_loss(params, x[0], labels[:1])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        linear.multinomial_grad(params, x, labels.at[0].set(K))
    xb, yb = _blobs(per_class=3)
    with pytest.raises(ValueError, match="num_classes must be at least 2, got 1"):
        linear.fit_multinomial(xb, yb, 1)
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        linear.fit_multinomial(xb, yb, 3, steps=0)
    with pytest.raises(ValueError, match=r"learning_rate must lie in \(0, inf\)"):
        linear.fit_multinomial(xb, yb, 3, learning_rate=0.0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        linear.fit_multinomial(xb, yb, 2)
