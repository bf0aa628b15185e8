"""Tests of fnn.descent: exact iterates, the step-size threshold, NaN stops, traced learning rates."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import backprop, checking, descent, losses, mlp


def _quadratic():
    # 0.5 x^T A x with A symmetric positive definite; eigenvalues 1 and 4.
    a = jnp.array([[2.5, 1.5], [1.5, 2.5]], jnp.float64)

    def value_and_grad(x):
        return 0.5 * x @ a @ x, a @ x

    return a, value_and_grad


def test_first_iterates_follow_the_formula():
    a, vg = _quadratic()
    a_np = np.asarray(a)
    x0 = jnp.array([1.0, -2.0], jnp.float64)
    lr = 0.1
    expected = [np.asarray(x0)]
    for _ in range(3):
        expected.append(expected[-1] - lr * a_np @ expected[-1])
    for t in (1, 2, 3):
        params, losses_t = descent.gradient_descent(vg, x0, learning_rate=lr, steps=t)
        assert params.dtype == jnp.float64
        np.testing.assert_allclose(params, expected[t], rtol=0, atol=1e-14)
        assert losses_t.shape == (t,)
    # losses[t] is the loss at the t-th iterate, before update t.
    for t in range(3):
        np.testing.assert_allclose(losses_t[t], 0.5 * expected[t] @ a_np @ expected[t], rtol=1e-14)


def test_pytree_params():
    def vg(p):
        return jnp.sum(p["u"] ** 2) + p["v"] ** 2, {"u": 2 * p["u"], "v": 2 * p["v"]}

    start = {"u": jnp.array([1.0, 2.0], jnp.float64), "v": jnp.array(3.0, jnp.float64)}
    params, curve = descent.gradient_descent(vg, start, learning_rate=0.25, steps=2)
    np.testing.assert_allclose(params["u"], [0.25, 0.5], rtol=1e-15)
    np.testing.assert_allclose(params["v"], 0.75, rtol=1e-15)
    np.testing.assert_allclose(curve, [14.0, 3.5], rtol=1e-15)


def test_converges_below_and_diverges_above_two_over_lambda_max():
    a, vg = _quadratic()
    lam_max = float(jnp.linalg.eigvalsh(a).max())
    assert lam_max == pytest.approx(4.0)
    x0 = jnp.array([1.0, -2.0], jnp.float64)
    run = jax.jit(lambda lr: descent.gradient_descent(vg, x0, learning_rate=lr, steps=200))
    params, curve = run(1.9 / lam_max)
    assert float(curve[-1]) < 1e-8 * float(curve[0])
    assert float(jnp.linalg.norm(params)) < 1e-4
    params, curve = run(2.1 / lam_max)
    assert np.all(np.isfinite(np.asarray(curve)))
    assert np.all(np.diff(np.asarray(curve)[5:]) > 0)
    assert float(curve[-1]) > 1e6 * float(curve[0])


def test_nan_at_known_step_stops_updates_and_is_reported():
    # f(x) = log x, gradient 1/x, drives x down until it crosses 0 where log is NaN.
    def vg(x):
        return jnp.log(x), 1 / x

    lr = 0.3
    xs = [1.0]
    while xs[-1] > 0:
        xs.append(xs[-1] - lr / xs[-1])
    bad = len(xs) - 1  # the first iterate with a NaN loss
    assert bad == 3
    params, curve = descent.gradient_descent(vg, jnp.array(1.0, jnp.float64), learning_rate=lr, steps=8)
    curve = np.asarray(curve)
    np.testing.assert_allclose(curve[:bad], np.log(xs[:bad]), rtol=1e-14)
    assert np.all(np.isnan(curve[bad:]))
    # Updates stopped at the iterate where the loss first became NaN; nothing went beyond it.
    assert np.isfinite(float(params))
    np.testing.assert_allclose(params, xs[bad], rtol=1e-14)
    with pytest.raises(FloatingPointError, match=rf"loss became nan at step {bad} ") as info:
        checking.raise_if_nonfinite(curve)
    assert f"{np.log(xs[bad - 1]):.6g}" in str(info.value)


def test_nan_threshold_under_jit():
    # A value_and_grad that returns NaN once params cross 2.5: x grows by 1 each step.
    def vg(x):
        loss = jnp.where(x > 2.5, jnp.nan, -x)
        return loss, -jnp.ones_like(x)

    params, curve = jax.jit(
        lambda: descent.gradient_descent(vg, jnp.array(0.0, jnp.float64), learning_rate=1.0, steps=6)
    )()
    np.testing.assert_array_equal(np.asarray(curve[:3]), [0.0, -1.0, -2.0])
    assert np.all(np.isnan(np.asarray(curve[3:])))
    assert float(params) == 3.0
    with pytest.raises(FloatingPointError, match=re.escape("loss became nan at step 3 (the last finite value was -2)")):
        checking.raise_if_nonfinite(curve)


def test_raise_if_nonfinite():
    checking.raise_if_nonfinite(np.array([3.0, 2.0, 1.0]))
    checking.raise_if_nonfinite(jnp.zeros(5))
    with pytest.raises(FloatingPointError, match=r"loss became nan at step 0$"):
        checking.raise_if_nonfinite(jnp.array([jnp.nan, 1.0]))
    with pytest.raises(FloatingPointError, match=r"^risk became inf at step 2 \(the last finite value was 0.5\)"):
        checking.raise_if_nonfinite(jnp.array([1.0, 0.5, jnp.inf, jnp.nan]), what="risk")


def test_vmap_over_learning_rates_equals_separate_runs():
    a, vg = _quadratic()
    x0 = jnp.array([1.0, -2.0], jnp.float64)
    rates = jnp.array([0.05, 0.1, 0.2, 0.4], jnp.float64)
    traces = []

    def run(lr):
        traces.append(None)
        return descent.gradient_descent(vg, x0, learning_rate=lr, steps=25)

    params, curves = jax.jit(jax.vmap(run))(rates)
    assert params.shape == (4, 2) and curves.shape == (4, 25)
    assert len(traces) == 1
    for i, lr in enumerate([0.05, 0.1, 0.2, 0.4]):
        p_i, c_i = descent.gradient_descent(vg, x0, learning_rate=lr, steps=25)
        np.testing.assert_allclose(params[i], p_i, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(curves[i], c_i, rtol=1e-13, atol=1e-15)
    assert not np.allclose(curves[0], curves[1])


def test_float64_learning_rates_keep_float32_params():
    # Under x64 a sweep array is float64; it must not promote float32 params (scan would refuse).
    def vg(p):
        return jnp.sum(p**2), 2 * p

    p0 = jnp.ones(2, jnp.float32)
    rates = jnp.array([0.1, 0.2], jnp.float64)
    params, curves = jax.jit(jax.vmap(lambda lr: descent.gradient_descent(vg, p0, learning_rate=lr, steps=3)))(rates)
    assert params.dtype == jnp.float32 and curves.dtype == jnp.float32
    np.testing.assert_allclose(params[:, 0], [0.8**3, 0.6**3], rtol=1e-6)


def test_jit_compiles_once_for_different_learning_rates():
    _, vg = _quadratic()
    x0 = jnp.array([1.0, -2.0], jnp.float64)
    traces = []

    @jax.jit
    def run(lr):
        traces.append(None)
        return descent.gradient_descent(vg, x0, learning_rate=lr, steps=10)

    p1, _ = run(jnp.asarray(0.1, jnp.float64))
    p2, _ = run(jnp.asarray(0.2, jnp.float64))
    p3, _ = run(jnp.asarray(0.3, jnp.float64))
    assert len(traces) == 1
    assert not np.allclose(p1, p2) and not np.allclose(p2, p3)


def test_traced_negative_learning_rate_is_never_silent():
    _, vg = _quadratic()
    x0 = jnp.array([1.0, -2.0], jnp.float64)
    params, curve = jax.jit(lambda lr: descent.gradient_descent(vg, x0, learning_rate=lr, steps=3))(-0.1)
    assert np.all(np.isnan(np.asarray(params)))
    with pytest.raises(FloatingPointError, match="at step 1"):
        checking.raise_if_nonfinite(curve)


@pytest.mark.parametrize("steps, error", [(0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError)])
def test_bad_steps(steps, error):
    _, vg = _quadratic()
    with pytest.raises(error, match="steps"):
        descent.gradient_descent(vg, jnp.ones(2, jnp.float64), learning_rate=0.1, steps=steps)


@pytest.mark.parametrize("lr", [-0.1, 0.0])
def test_nonpositive_concrete_learning_rate(lr):
    _, vg = _quadratic()
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        descent.gradient_descent(vg, jnp.ones(2, jnp.float64), learning_rate=lr, steps=3)


def test_learning_rate_must_be_scalar():
    _, vg = _quadratic()
    with pytest.raises(ValueError, match=r"learning_rate must be a scalar, got shape \(2,\)"):
        descent.gradient_descent(vg, jnp.ones(2, jnp.float64), learning_rate=jnp.array([0.1, 0.2]), steps=3)


def test_backprop_value_and_grad_matches_autodiff_run(key):
    k1, k2, k3 = jax.random.split(key, 3)
    params0 = mlp.init(k1, [3, 5, 2], scheme="glorot", dtype=jnp.float64)
    x = jax.random.normal(k2, (16, 3), jnp.float64)
    y = jax.random.normal(k3, (16, 2), jnp.float64)
    kwargs = {"activation": "tanh", "output_activation": "identity"}

    def by_hand(p):
        return backprop.value_and_grad(p, x, y, loss="mse", **kwargs)

    by_autodiff = jax.value_and_grad(lambda p: losses.mse(mlp.apply(p, x, **kwargs), y))

    def run(vg):
        return jax.jit(lambda p: descent.gradient_descent(vg, p, learning_rate=0.05, steps=30))(params0)

    p_hand, c_hand = run(by_hand)
    p_auto, c_auto = run(by_autodiff)
    assert c_hand.dtype == jnp.float64
    assert float(c_hand[-1]) < 0.9 * float(c_hand[0])
    np.testing.assert_allclose(c_hand, c_auto, rtol=1e-12, atol=1e-12)
    assert jax.tree.structure(p_hand) == jax.tree.structure(params0)
    for a, b in zip(jax.tree.leaves(p_hand), jax.tree.leaves(p_auto)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------
# minimize: any optax optimizer, one lax.scan.
# ----------------------------------------------------------------------------------------


def _rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def test_minimize_with_sgd_is_gradient_descent():
    from fnn import optimizers

    a, vg = _quadratic()
    x0 = jnp.array([1.0, -2.0], jnp.float64)
    x, curve = descent.minimize(lambda x: 0.5 * x @ a @ x, x0, optimizers.sgd(0.1), steps=20)
    x_gd, curve_gd = descent.gradient_descent(vg, x0, learning_rate=0.1, steps=20)
    assert x.dtype == jnp.float64 and curve.shape == (20,)
    np.testing.assert_allclose(x, x_gd, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(curve, curve_gd, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name, lr, steps", [("momentum", 1e-3, 5000), ("nesterov", 1e-3, 5000), ("adam", 2e-2, 5000)])
def test_minimize_converges_on_rosenbrock(name, lr, steps):
    from fnn import optimizers

    x, curve = jax.jit(
        lambda: descent.minimize(
            _rosenbrock, jnp.array([-1.2, 1.0], jnp.float64), optimizers.get(name, learning_rate=lr), steps
        )
    )()
    assert float(curve[0]) == pytest.approx(24.2)
    assert float(_rosenbrock(x)) < 1e-6
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-2)


def test_minimize_pytree_and_adamw_receives_params():
    from fnn import optimizers

    start = {"u": jnp.array([1.0, 2.0], jnp.float64), "v": jnp.array(3.0, jnp.float64)}
    # With a zero gradient only AdamW's decay -lr * wd * x moves the parameters.
    x, curve = descent.minimize(
        lambda p: 0.0 * (jnp.sum(p["u"]) + p["v"]), start, optimizers.adamw(0.1, weight_decay=0.5), steps=2
    )
    assert jax.tree.structure(x) == jax.tree.structure(start)
    np.testing.assert_allclose(x["v"], 3.0 * 0.95**2, rtol=1e-12)
    np.testing.assert_allclose(curve, [0.0, 0.0])


def test_minimize_vmap_over_starts_and_rates_compiles_once():
    from fnn import optimizers

    traces = []

    def run(x0, lr):
        traces.append(None)
        return descent.minimize(_rosenbrock, x0, optimizers.adam(lr), steps=50)

    starts = jnp.array([[-1.2, 1.0], [0.5, 0.5], [2.0, -1.0]], jnp.float64)
    rates = jnp.array([1e-3, 1e-2, 1e-1], jnp.float64)
    sweep = jax.jit(jax.vmap(run))
    x, curves = sweep(starts, rates)
    x2, _ = sweep(starts + 0.1, rates)
    assert x.shape == (3, 2) and curves.shape == (3, 50)
    assert len(traces) == 1 and not np.allclose(x, x2)
    for i in range(3):
        x_i, c_i = descent.minimize(_rosenbrock, starts[i], optimizers.adam(float(rates[i])), steps=50)
        np.testing.assert_allclose(x[i], x_i, rtol=1e-12)
        np.testing.assert_allclose(curves[i], c_i, rtol=1e-12)


def test_minimize_stops_at_a_nonfinite_loss():
    from fnn import optimizers

    # log x is NaN once x < 0; sgd with rate 0.3 gets there at step 3 (see the test above).
    x, curve = descent.minimize(jnp.log, jnp.array(1.0, jnp.float64), optimizers.sgd(0.3), steps=8)
    assert np.all(np.isfinite(np.asarray(curve[:3]))) and np.all(np.isnan(np.asarray(curve[3:])))
    assert np.isfinite(float(x)) and float(x) < 0
    with pytest.raises(FloatingPointError, match="loss became nan at step 3"):
        checking.raise_if_nonfinite(curve)


def test_minimize_bad_arguments():
    from fnn import optimizers

    with pytest.raises(ValueError, match="steps"):
        descent.minimize(jnp.sum, jnp.ones(2), optimizers.sgd(0.1), steps=0)
    with pytest.raises(TypeError, match="optax.GradientTransformation"):
        descent.minimize(jnp.sum, jnp.ones(2), "adam", steps=3)
    with pytest.raises(ValueError, match=r"scalar loss, got \(2,\)"):
        descent.minimize(lambda x: x**2, jnp.ones(2), optimizers.sgd(0.1), steps=3)
