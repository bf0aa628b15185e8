"""The fnn side of every fact stated in docs/pytorch.md ("fnn for PyTorch users"), so the page
cannot drift from the code. Each test names the section of the page it holds."""

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import activations, batch_norm, dropout, initializers, losses, mlp
from fnn.models import MLP


def _rng(seed=0):
    return np.random.default_rng(seed)


# Weight layout ---------------------------------------------------------------------------


def test_weights_are_in_out_and_inputs_are_rows(key):
    shapes = jax.eval_shape(lambda k: mlp.init(k, [3, 5, 2], dtype=jnp.float64), key)
    assert [p["W"].shape for p in shapes] == [(3, 5), (5, 2)]
    rng = _rng()
    x = jnp.asarray(rng.standard_normal((4, 3)))
    layer = {"W": jnp.asarray(rng.standard_normal((3, 5))), "b": jnp.asarray(rng.standard_normal(5))}
    w_torch = layer["W"].T  # torch's nn.Linear weight is [out, in] and computes x @ W.T + b
    np.testing.assert_allclose(
        mlp.affine(layer, x), np.asarray(x) @ np.asarray(w_torch).T + np.asarray(layer["b"]), rtol=1e-15
    )


# Loss reductions -------------------------------------------------------------------------


def test_losses_sum_over_outputs_and_average_over_examples():
    rng = _rng(1)
    n, k = 6, 3
    y_hat, y = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    mse = float(losses.mse(jnp.asarray(y_hat), jnp.asarray(y)))
    np.testing.assert_allclose(mse, np.sum((y_hat - y) ** 2) / n, rtol=1e-14)
    # torch's MSELoss(reduction="mean") averages over all N * K entries: fnn's value is K times it.
    np.testing.assert_allclose(mse, k * np.mean((y_hat - y) ** 2), rtol=1e-14)
    np.testing.assert_allclose(losses.l1(jnp.asarray(y_hat), jnp.asarray(y)), np.sum(np.abs(y_hat - y)) / n, rtol=1e-14)
    t = rng.uniform(size=(n, k))
    bce = np.sum(np.logaddexp(0, y_hat) - t * y_hat) / n
    np.testing.assert_allclose(losses.binary_cross_entropy(jnp.asarray(y_hat), jnp.asarray(t)), bce, rtol=1e-14)


def test_cross_entropy_averages_over_examples_and_sums_middle_axes():
    rng = _rng(2)
    logits = rng.standard_normal((4, 5, 3))  # [N, L, K]: the class axis is last (torch: axis 1)
    labels = rng.integers(0, 3, (4, 5))
    log_p = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    picked = np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
    value = float(losses.cross_entropy(jnp.asarray(logits), jnp.asarray(labels)))
    np.testing.assert_allclose(value, -np.sum(picked) / 4, rtol=1e-14)
    # For [N, K] logits that is torch's CrossEntropyLoss with reduction="mean".
    value_2d = float(losses.cross_entropy(jnp.asarray(logits[:, 0]), jnp.asarray(labels[:, 0])))
    np.testing.assert_allclose(value_2d, -np.mean(picked[:, 0]), rtol=1e-14)


def test_kl_divergence_is_batchmean():
    rng = _rng(3)
    p, q = rng.uniform(0.1, 1, (5, 4)), rng.uniform(0.1, 1, (5, 4))
    p, q = p / p.sum(1, keepdims=True), q / q.sum(1, keepdims=True)
    expected = np.sum(p * np.log(p / q)) / 5  # torch: KLDivLoss(reduction="batchmean")(log q, p)
    np.testing.assert_allclose(losses.kl_divergence(jnp.asarray(p), jnp.asarray(q)), expected, rtol=1e-13)


# Gaussian NLL ----------------------------------------------------------------------------


def test_gaussian_nll_includes_the_constant_and_clamps_at_eps():
    rng = _rng(4)
    n, k = 5, 2
    mean, target, var = rng.standard_normal((n, k)), rng.standard_normal((n, k)), rng.uniform(0.5, 2, (n, k))
    per_entry = 0.5 * (np.log(2 * np.pi) + np.log(var) + (target - mean) ** 2 / var)
    value = float(losses.gaussian_nll(jnp.asarray(mean), jnp.asarray(target), jnp.asarray(var)))
    np.testing.assert_allclose(value, per_entry.sum() / n, rtol=1e-14)
    # torch's GaussianNLLLoss(full=False) drops 0.5 log(2 pi) and averages over all entries.
    torch_default = np.mean(0.5 * (np.log(var) + (target - mean) ** 2 / var))
    np.testing.assert_allclose(value, k * (torch_default + 0.5 * np.log(2 * np.pi)), rtol=1e-14)
    assert inspect.signature(losses.gaussian_nll).parameters["eps"].default == 1e-6
    small = jnp.asarray(var).at[0, 0].set(1e-9)
    clamped = jnp.asarray(var).at[0, 0].set(1e-6)
    args = (jnp.asarray(mean), jnp.asarray(target))
    np.testing.assert_allclose(losses.gaussian_nll(*args, small), losses.gaussian_nll(*args, clamped), rtol=1e-15)
    # Unit variance: half the MSE plus (K / 2) log(2 pi).
    unit = float(losses.gaussian_nll(*args))
    np.testing.assert_allclose(unit, 0.5 * float(losses.mse(*args)) + 0.5 * k * np.log(2 * np.pi), rtol=1e-14)
    _, d_var = losses.gaussian_nll_grad(*args, small)
    assert float(d_var[0, 0]) == 0.0  # a clamped entry gets zero gradient


# Batch normalisation ---------------------------------------------------------------------


def test_batch_norm_momentum_is_the_weight_of_the_old_value():
    assert inspect.signature(batch_norm.apply).parameters["momentum"].default == 0.9
    assert inspect.signature(batch_norm.apply).parameters["eps"].default == 1e-5
    assert MLP((2, 3, 1), batch_norm=True).bn_momentum == 0.9
    assert MLP((2, 3, 1), batch_norm=True).bn_eps == 1e-5
    params, state = batch_norm.init(2, jnp.float64)
    np.testing.assert_array_equal(state.mean, 0.0)
    np.testing.assert_array_equal(state.var, 1.0)
    np.testing.assert_array_equal(params["gamma"], 1.0)
    np.testing.assert_array_equal(params["beta"], 0.0)
    x = jnp.asarray(_rng(5).standard_normal((6, 2)) * 3 + 1)
    y, new = batch_norm.apply(params, state, x, train=True)
    xs = np.asarray(x)
    # Running statistics: 0.9 old + 0.1 batch (torch's momentum=0.1), with the unbiased variance.
    np.testing.assert_allclose(new.mean, 0.9 * 0 + 0.1 * xs.mean(0), rtol=1e-14)
    np.testing.assert_allclose(new.var, 0.9 * 1 + 0.1 * xs.var(0, ddof=1), rtol=1e-14)
    # The output is normalised by the biased batch variance, plus eps = 1e-5.
    np.testing.assert_allclose(y, (xs - xs.mean(0)) / np.sqrt(xs.var(0) + 1e-5), rtol=1e-13)


# Kink derivatives ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "z", "derivative"),
    [
        ("relu", 0.0, 0.0),
        ("step", 0.0, 0.0),
        ("abs", 0.0, 1.0),
        ("leaky_relu", 0.0, 1.0),
        ("rectifier", 0.0, 1.0),
        ("hard_tanh", 1.0, 1.0),
        ("hard_tanh", -1.0, 1.0),
    ],
)
def test_derivatives_at_kinks(name, z, derivative):
    act = activations.get(name)
    z = jnp.asarray([z])
    assert float(act.derivative(z)[0]) == derivative
    assert float(jax.grad(lambda v: act(v)[0])(z)[0]) == derivative


def test_step_of_zero_is_one():
    assert float(activations.step(jnp.array(0.0))) == 1.0


# Dropout ---------------------------------------------------------------------------------


def test_dropout_rate_is_the_probability_of_dropping(key):
    x = jnp.ones((200, 500))
    y = np.asarray(dropout.dropout(x, 0.3, key=key))
    assert set(np.unique(y)) == {0.0, 1 / 0.7}  # inverted: survivors scaled by 1 / (1 - rate)
    dropped = np.mean(y == 0)
    assert abs(dropped - 0.3) < 5 * math.sqrt(0.3 * 0.7 / y.size)
    np.testing.assert_array_equal(dropout.dropout(x, 0.3, train=False), x)


# PyTorch's default initialisation --------------------------------------------------------


def test_pytorch_scheme_bounds_weights_and_biases(key):
    w, b = initializers.layer(key, 25, 400, "pytorch")
    assert float(jnp.abs(w).max()) <= 0.2 and float(jnp.abs(b).max()) <= 0.2  # 1 / sqrt(25)
    assert float(jnp.abs(b).max()) > 0.19  # the biases are drawn, not zero
