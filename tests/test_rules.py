"""Tests of fnn.rules: Hebb, Oja, the perceptron rule and the delta rule, and the training loop."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import checking, linear, perceptron, rules

GATES = ("and", "or", "nand")


def _gate(name):
    return perceptron.truth_table(name, jnp.float64)


def _zeros(d=2):
    return perceptron.init(d, jnp.float64)


def _params(w, b):
    return {"w": jnp.array(w, jnp.float64), "b": jnp.array(b, jnp.float64)}


def _correlated_gaussian(key, n):
    # Centred 2-D Gaussian with covariance [[3, 1.5], [1.5, 1]]; top eigenvalue 3.80, second 0.20.
    cov = jnp.array([[3.0, 1.5], [1.5, 1.0]], jnp.float64)
    x = jax.random.multivariate_normal(key, jnp.zeros(2, jnp.float64), cov, (n,), dtype=jnp.float64)
    return x - jnp.mean(x, axis=0, keepdims=True)


# ----------------------------------------------------------------------------------------
# Single updates equal their formulas.
# ----------------------------------------------------------------------------------------


def test_perceptron_update_is_the_identity_on_a_correct_example():
    params = perceptron.gate("and", jnp.float64)
    state = rules.perceptron.init(params)
    x, y = _gate("and")
    for i in range(4):
        new, new_state = rules.perceptron.update(params, state, x[i], y[i], learning_rate=0.7)
        np.testing.assert_array_equal(new["w"], params["w"])
        np.testing.assert_array_equal(new["b"], params["b"])
        assert int(new_state.mistakes) == 0 and int(new_state.count) == 1


def test_perceptron_update_on_a_mistake_follows_the_formula():
    params = _params([0.5, -1.0], 0.25)
    state = rules.perceptron.init(params)
    x = jnp.array([1.0, 2.0], jnp.float64)  # z = 0.5 - 2 + 0.25 < 0: predicts 0
    new, new_state = rules.perceptron.update(params, state, x, jnp.array(1.0, jnp.float64), learning_rate=0.5)
    np.testing.assert_allclose(new["w"], [1.0, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(new["b"], 0.75, rtol=0, atol=1e-15)
    assert int(new_state.mistakes) == 1
    # A false positive moves the other way: z = 0.5 >= 0 predicts 1, target 0.
    new, _ = rules.perceptron.update(
        params, state, jnp.array([0.5, 0.0], jnp.float64), jnp.array(0.0, jnp.float64), learning_rate=0.5
    )
    np.testing.assert_allclose(new["w"], [0.25, -1.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(new["b"], -0.25, rtol=0, atol=1e-15)


def test_delta_update_follows_the_formula():
    params = _params([0.5, -1.0], 0.25)
    x, y, lr = jnp.array([1.0, 2.0], jnp.float64), jnp.array(1.0, jnp.float64), 0.1
    new, state = rules.delta.update(params, rules.delta.init(params), x, y, learning_rate=lr)
    error = 1.0 - (0.5 - 2.0 + 0.25)
    np.testing.assert_allclose(new["w"], np.array([0.5, -1.0]) + lr * error * np.array([1.0, 2.0]), rtol=1e-15)
    np.testing.assert_allclose(new["b"], 0.25 + lr * error, rtol=1e-15)
    np.testing.assert_allclose(state.sum_squared_error, error**2, rtol=1e-15)


@pytest.mark.parametrize("name", ["hebb", "oja"])
def test_hebbian_updates_follow_their_formulas(name):
    params = _params([0.5, -1.0], 3.0)
    x, lr = jnp.array([1.0, 2.0], jnp.float64), 0.1
    rule = rules.get(name)
    new, state = rule.update(params, rule.init(params), x, None, learning_rate=lr)
    w, xs = np.array([0.5, -1.0]), np.array([1.0, 2.0])
    post = w @ xs
    expected = w + lr * post * xs if name == "hebb" else w + lr * post * (xs - post * w)
    np.testing.assert_allclose(new["w"], expected, rtol=1e-15)
    assert float(new["b"]) == 3.0 and int(state.count) == 1


# ----------------------------------------------------------------------------------------
# The perceptron rule: convergence on separable data, Novikoff's bound, cycling on XOR.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("gate", GATES)
def test_perceptron_rule_learns_the_gates_within_novikoffs_bound(gate):
    x, y = _gate(gate)
    result = rules.train("perceptron", _zeros(), x, y, learning_rate=1.0, epochs=30)
    assert bool(result.converged) and not bool(result.cycled)
    np.testing.assert_array_equal(perceptron.apply(result.params, x), y)
    e = int(result.epochs_to_converge)
    history = np.asarray(result.history)
    assert history[e - 1] == 0 and np.all(history[: e - 1] >= 1) and np.all(history[e:] == 0)
    assert int(result.state.mistakes) == history.sum()
    bound = float(rules.novikoff_bound(perceptron.gate(gate, jnp.float64), x, y))
    assert int(result.state.mistakes) <= bound


def test_novikoff_bound_of_the_hand_set_gates():
    # R^2 = |(1, 1, 1)|^2 = 3; margin 0.5 over |(w, b)|.
    for gate, norm_sq in (("and", 4.25), ("or", 2.25), ("nand", 4.25), ("nor", 2.25)):
        x, y = _gate(gate)
        params = perceptron.gate(gate, jnp.float64)
        np.testing.assert_allclose(rules.margin(params, x, y), 0.5 / np.sqrt(norm_sq), rtol=1e-15)
        np.testing.assert_allclose(rules.novikoff_bound(params, x, y), 3 * norm_sq / 0.25, rtol=1e-14)


@pytest.mark.slow
@pytest.mark.parametrize("seed, d, shuffle", [(0, 2, False), (1, 5, False), (2, 10, True)])
def test_perceptron_rule_on_random_separable_data_within_novikoffs_bound(seed, d, shuffle):
    k_data, k_order = jax.random.split(jax.random.key(seed))
    x, y, u = rules.separable_data(k_data, 200, d, margin=0.1, dtype=jnp.float64)
    assert float(rules.margin(u, x, y)) >= 0.1 - 1e-12
    assert 0 < float(jnp.mean(y)) < 1
    bound = float(rules.novikoff_bound(u, x, y))
    key = k_order if shuffle else None
    result = rules.train("perceptron", _zeros(d), x, y, learning_rate=0.5, epochs=100, key=key, shuffle=shuffle)
    assert bool(result.converged)
    assert 0 < int(result.state.mistakes) <= bound
    np.testing.assert_array_equal(perceptron.apply(result.params, x), y)


def test_perceptron_rule_cycles_on_xor_and_never_converges():
    x, y = _gate("xor")
    epochs = 25
    result = rules.train("perceptron", _zeros(), x, y, learning_rate=1.0, epochs=epochs)
    assert result.history.shape == (epochs,)
    assert not bool(result.converged) and int(result.epochs_to_converge) == -1
    assert bool(result.cycled)
    # Worked by hand: epoch 1 ends at w = (-1, 0), b = -1; epochs 2 and 3 both end at
    # w = (-1, 0), b = 0, and from then on each epoch makes 4 mistakes and comes back.
    assert int(result.cycle_epoch) == 3 and int(result.cycle_length) == 1
    np.testing.assert_array_equal(result.history, [3.0, 3.0] + [4.0] * (epochs - 2))
    np.testing.assert_array_equal(result.params["w"], [-1.0, 0.0])
    assert float(jnp.mean(perceptron.apply(result.params, x) == y)) <= 0.75


def test_perceptron_rule_on_xor_from_a_random_start_cycles_with_a_longer_period():
    x, y = _gate("xor")
    result = rules.train("perceptron", _params([0.25, -0.75], 0.5), x, y, learning_rate=0.25, epochs=60)
    assert not bool(result.converged) and bool(result.cycled)
    assert 1 <= int(result.cycle_length) < int(result.cycle_epoch) <= 60
    assert float(jnp.mean(perceptron.apply(result.params, x) == y)) <= 0.75


def test_shuffled_xor_neither_converges_nor_reports_a_cycle(key):
    x, y = _gate("xor")
    result = rules.train("perceptron", _zeros(), x, y, learning_rate=1.0, epochs=40, key=key, shuffle=True)
    assert not bool(result.converged) and not bool(result.cycled) and int(result.cycle_epoch) == -1
    assert np.all(np.asarray(result.history) >= 1)


# ----------------------------------------------------------------------------------------
# The delta rule: classification by threshold, the least-squares fixed point.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("gate", GATES)
def test_delta_rule_learns_the_gates_with_threshold_one_half(gate):
    x, y = _gate(gate)
    result = rules.train("delta", _zeros(), x, y, learning_rate=0.1, epochs=300)
    assert bool(result.converged)
    np.testing.assert_array_equal(rules.classify(result.params, x, 0.5), y)
    history = np.asarray(result.history)
    e = int(result.epochs_to_converge)
    assert abs(history[e - 1] - history[e - 2]) < 1e-6
    assert np.all(history[e - 1 :] == history[e - 1])  # frozen from convergence on


@pytest.mark.parametrize("gate", ("and", "xor"))
def test_delta_rule_approaches_least_squares_as_the_rate_shrinks(gate):
    x, y = _gate(gate)
    ls = linear.least_squares(x, y)[0]
    target = np.concatenate([np.asarray(ls["W"][:, 0]), np.asarray(ls["b"])])
    run = jax.jit(jax.vmap(lambda lr: rules.train("delta", _zeros(), x, y, learning_rate=lr, epochs=3000, tol=1e-14)))
    result = run(jnp.array([0.04, 0.01, 0.0025], jnp.float64))
    found = np.concatenate([np.asarray(result.params["w"]), np.asarray(result.params["b"])[:, None]], axis=1)
    distance = np.linalg.norm(found - target, axis=1)
    assert np.all(np.diff(distance) < 0) and distance[-1] < 0.01
    # The MSE at the end is within a hair of the least-squares minimum.
    mse_ls = float(jnp.mean((x @ ls["W"][:, 0] + ls["b"][0] - y) ** 2))
    assert float(result.history[-1, -1]) == pytest.approx(mse_ls, rel=1e-3)


def test_delta_rule_on_xor_gives_the_least_squares_answer_which_misclassifies():
    x, y = _gate("xor")
    ls = linear.least_squares(x, y)[0]
    np.testing.assert_allclose(ls["W"][:, 0], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(ls["b"], [0.5], atol=1e-12)
    result = rules.train("delta", _zeros(), x, y, learning_rate=0.05, epochs=500)
    assert bool(result.converged)
    assert float(jnp.mean(rules.classify(result.params, x, 0.5) == y)) <= 0.75
    assert float(result.history[-1]) == pytest.approx(0.25, rel=0.05)


# ----------------------------------------------------------------------------------------
# Hebb grows without bound; Oja finds the first principal component.
# ----------------------------------------------------------------------------------------


def test_hebb_norm_grows_geometrically_at_the_epoch_matrix_spectral_radius(key):
    x = _correlated_gaussian(key, 20)
    lr = 0.01
    result = rules.train("hebb", _params([1.0, 0.0], 0.0), x, learning_rate=lr, epochs=30)
    norms = np.asarray(result.history)
    ratios = norms[1:] / norms[:-1]
    assert np.all(ratios > 1) and not bool(result.converged)
    # One epoch multiplies w by M = (I + lr x_N x_N^T) ... (I + lr x_1 x_1^T).
    m = np.eye(2)
    for row in np.asarray(x):
        m = (np.eye(2) + lr * np.outer(row, row)) @ m
    rho = np.max(np.abs(np.linalg.eigvals(m)))
    np.testing.assert_allclose(ratios[-5:], rho, rtol=1e-6)


def test_oja_converges_to_the_top_principal_component(key):
    x = _correlated_gaussian(key, 500)
    result = rules.train("oja", _params([0.0, 1.0], 0.0), x, learning_rate=0.005, epochs=40, tol=1e-3)
    w = np.asarray(result.params["w"])
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(x.T @ x) / x.shape[0])
    top = eigenvectors[:, np.argmax(eigenvalues)]
    assert abs(w @ top) / np.linalg.norm(w) > 0.99
    assert np.linalg.norm(w) == pytest.approx(1.0, abs=0.02)
    assert bool(result.converged)


def test_hebb_overflow_stops_updates_and_the_history_says_when(key):
    x = _correlated_gaussian(key, 20)
    result = rules.train("hebb", _params([1.0, 0.0], 0.0), x, learning_rate=5.0, epochs=40)
    history = np.asarray(result.history)
    first_nan = int(np.flatnonzero(np.isnan(history))[0])
    assert 0 < first_nan and np.all(np.isnan(history[first_nan:])) and np.all(np.isfinite(history[:first_nan]))
    # The weights grew to the edge of float64 (within the last epoch, past its last recorded
    # norm) and stopped at their last finite value.
    w = np.asarray(result.params["w"])
    assert np.all(np.isfinite(w)) and np.abs(w).max() > 1e300 and not bool(result.converged)
    assert np.abs(w).max() > history[first_nan - 1] > 1e250
    with pytest.raises(FloatingPointError, match=rf"weight norm became nan at step {first_nan} "):
        checking.raise_if_nonfinite(history, what="weight norm")


# ----------------------------------------------------------------------------------------
# Sweeps: one vmapped, compiled call equals separate runs.
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["perceptron", "delta"])
def test_vmap_over_learning_rates_equals_separate_runs_and_compiles_once(rule):
    x, y = _gate("and")
    start = _params([0.3, -0.7], 0.2)  # from zero weights the perceptron rule ignores the rate
    rates = [0.05, 0.2, 0.5, 1.0]
    traces = []

    def run(lr):
        traces.append(None)
        return rules.train(rule, start, x, y, learning_rate=lr, epochs=40)

    sweep = jax.jit(jax.vmap(run))
    swept = sweep(jnp.array(rates, jnp.float64))
    sweep(jnp.array([0.1, 0.3, 0.6, 0.9], jnp.float64))
    assert len(traces) == 1
    assert swept.history.shape == (4, 40)
    for i, lr in enumerate(rates):
        single = rules.train(rule, start, x, y, learning_rate=lr, epochs=40)
        for a, b in zip(jax.tree.leaves(single), jax.tree.leaves(jax.tree.map(lambda leaf, i=i: leaf[i], swept))):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    assert len(set(map(int, swept.epochs_to_converge))) > 1


def test_vmap_over_seeds_equals_separate_runs_and_compiles_once(key):
    # The shapes and settings of the d = 10 case above, so the separate runs reuse its compilation.
    x, y, _ = rules.separable_data(key, 200, 10, margin=0.1, dtype=jnp.float64)
    keys = jax.random.split(jax.random.fold_in(key, 1), 6)
    traces = []

    def run(k):
        traces.append(None)
        return rules.train("perceptron", _zeros(10), x, y, learning_rate=0.5, epochs=100, key=k, shuffle=True)

    sweep = jax.jit(jax.vmap(run))
    swept = sweep(keys)
    sweep(jax.random.split(jax.random.fold_in(key, 2), 6))
    assert len(traces) == 1
    assert bool(jnp.all(swept.converged))
    for i in range(6):
        single = rules.train("perceptron", _zeros(10), x, y, learning_rate=0.5, epochs=100, key=keys[i], shuffle=True)
        np.testing.assert_array_equal(single.history, swept.history[i])
        np.testing.assert_array_equal(single.params["w"], swept.params["w"][i])
    assert len({tuple(np.asarray(h)) for h in swept.history}) > 1  # the orders differ


def test_float64_rates_keep_float32_params():
    x, y = perceptron.truth_table("and", jnp.float32)
    result = jax.vmap(lambda lr: rules.train("delta", perceptron.init(2), x, y, learning_rate=lr, epochs=5))(
        jnp.array([0.1, 0.2], jnp.float64)
    )
    assert result.params["w"].dtype == jnp.float32 and result.history.dtype == jnp.float32


# ----------------------------------------------------------------------------------------
# Validation.
# ----------------------------------------------------------------------------------------


def _and_args():
    x, y = _gate("and")
    return _zeros(), x, y


@pytest.mark.parametrize("epochs, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)])
def test_bad_epochs(epochs, error):
    params, x, y = _and_args()
    with pytest.raises(error, match="epochs"):
        rules.train("perceptron", params, x, y, learning_rate=1.0, epochs=epochs)


@pytest.mark.parametrize("lr", [0.0, -0.5])
def test_nonpositive_concrete_learning_rate(lr):
    params, x, y = _and_args()
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        rules.train("delta", params, x, y, learning_rate=lr, epochs=3)


def test_bad_arguments_are_named():
    params, x, y = _and_args()
    cases = [
        ({"y": jnp.array([0.0, 2.0, 1.0, 1.0], jnp.float64)}, ValueError, "y must hold 0 or 1 for the perceptron rule"),
        ({"y": y[:3]}, ValueError, r"y must have shape \(4,\)"),
        ({"y": None}, ValueError, "the perceptron rule is supervised"),
        ({"x": x[0]}, ValueError, "x must have rank 2"),
        ({"x": jnp.zeros((0, 2), jnp.float64), "y": jnp.zeros(0, jnp.float64)}, ValueError, "at least one example"),
        ({"x": jnp.array([[0, 1]] * 4)}, TypeError, "x must be a floating-point array"),
        ({"params": _zeros(3)}, ValueError, r"params must hold w \[2\] and b \[\]"),
        ({"params": {"w": jnp.zeros(2, jnp.float64)}}, ValueError, "params must be a dict with keys"),
        ({"params": perceptron.init(2, jnp.float32)}, TypeError, "params and x must share a dtype"),
        ({"learning_rate": jnp.array([0.1, 0.2])}, ValueError, r"learning_rate must be a scalar"),
        ({"shuffle": True}, ValueError, "shuffle=True requires a key"),
        ({"key": jax.random.key(0)}, ValueError, "a key was given but shuffle=False"),
        ({"tol": 0.0}, ValueError, "tol must be positive"),
        ({"rule": "widrow"}, ValueError, "unknown rule 'widrow'; known rules: delta, hebb, oja, perceptron"),
        ({"rule": rules.Rule(rules.hebb.init, rules.delta.update)}, ValueError, "train knows the rules"),
    ]
    for change, error, message in cases:
        kwargs = {"rule": "perceptron", "params": params, "x": x, "y": y, "learning_rate": 1.0, "epochs": 2} | change
        rule, p, xs, ys = (kwargs.pop(k) for k in ("rule", "params", "x", "y"))
        with pytest.raises(error, match=message):
            rules.train(rule, p, xs, ys, **kwargs)
    with pytest.raises(ValueError, match="the hebb rule is unsupervised: pass y=None"):
        rules.train("hebb", params, x, y, learning_rate=0.1, epochs=2)
    rules.train("delta", params, x, 3 * y - 1, learning_rate=0.1, epochs=2)  # real targets are fine


def test_traced_bad_values_are_never_silent():
    params, x, y = _and_args()
    result = jax.jit(lambda lr: rules.train("perceptron", params, x, y, learning_rate=lr, epochs=3))(-1.0)
    assert np.all(np.isnan(np.asarray(result.history))) and not bool(result.converged)
    with pytest.raises(FloatingPointError, match="at step 0"):
        checking.raise_if_nonfinite(result.history)
    bad_y = jnp.array([0.0, 0.5, 0.0, 1.0], jnp.float64)
    result = jax.jit(lambda t: rules.train("perceptron", params, x, t, learning_rate=1.0, epochs=3))(bad_y)
    assert np.all(np.isnan(np.asarray(result.history)))


def test_margin_and_bound_refuse_non_separating_params():
    x, y = _gate("xor")
    assert float(rules.margin(perceptron.gate("or", jnp.float64), x, y)) < 0
    with pytest.raises(ValueError, match=re.escape("params must separate the data (positive margin)")):
        rules.novikoff_bound(perceptron.gate("or", jnp.float64), x, y)
    bound = jax.jit(lambda p: rules.novikoff_bound(p, x, y))(perceptron.gate("or", jnp.float64))
    assert np.isnan(float(bound))
    with pytest.raises(ValueError, match="y must hold 0 or 1"):
        rules.margin(perceptron.gate("or", jnp.float64), x, 2 * y)


@pytest.mark.slow
def test_separable_data_refuses_a_non_positive_margin_and_sweeps_margins(key):
    with pytest.raises(ValueError, match="margin must be positive"):
        rules.separable_data(key, 10, 2, margin=0.0)
    margins = jnp.array([0.1, 0.5], jnp.float64)
    x, y, u = jax.vmap(lambda m: rules.separable_data(key, 30, 2, margin=m, dtype=jnp.float64))(margins)
    assert x.shape == (2, 30, 2) and y.shape == (2, 30)
    for i, m in enumerate([0.1, 0.5]):
        assert float(rules.margin(jax.tree.map(lambda a, i=i: a[i], u), x[i], y[i])) >= m - 1e-12


def test_names_and_get():
    assert rules.names() == ("delta", "hebb", "oja", "perceptron")
    assert rules.get("oja") is rules.oja and rules.get(rules.perceptron) is rules.perceptron
    with pytest.raises(ValueError, match="unknown rule"):
        rules.get("adaline")
