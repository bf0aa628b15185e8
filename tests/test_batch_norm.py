"""Tests of fnn.batch_norm: normalisation, running statistics, evaluation, the vjp, ensembles, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import batch_norm, checking, gradcheck

F = 3


def _params(key, features=F, dtype=jnp.float64):
    k1, k2 = jax.random.split(key)
    return {
        "gamma": 1 + 0.5 * jax.random.normal(k1, (features,), dtype),
        "beta": jax.random.normal(k2, (features,), dtype),
    }


def _state(key, features=F, dtype=jnp.float64):
    k1, k2 = jax.random.split(key)
    return batch_norm.BatchNormState(
        jax.random.normal(k1, (features,), dtype), jnp.exp(jax.random.normal(k2, (features,), dtype))
    )


def _x(key, shape=(8, F), dtype=jnp.float64):
    # Features on different scales and offsets, so that normalising does something.
    scale = jnp.arange(1, shape[-1] + 1, dtype=dtype) * 3
    return 2 + jax.lax.broadcast_to_rank(scale, len(shape)) * jax.random.normal(key, shape, dtype)


# ----------------------------------------------------------------------------------------
# init
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_init_is_the_identity_and_neutral_statistics(dtype):
    params, state = batch_norm.init(4, dtype)
    assert set(params) == {"gamma", "beta"} and isinstance(state, batch_norm.BatchNormState)
    np.testing.assert_array_equal(params["gamma"], np.ones(4))
    np.testing.assert_array_equal(params["beta"], np.zeros(4))
    np.testing.assert_array_equal(state.mean, np.zeros(4))
    np.testing.assert_array_equal(state.var, np.ones(4))
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves((params, state)))


def test_init_errors():
    with pytest.raises(ValueError, match="features must be a positive integer"):
        batch_norm.init(0)
    with pytest.raises(TypeError, match="floating dtype"):
        batch_norm.init(3, jnp.int32)


# ----------------------------------------------------------------------------------------
# Training: batch statistics.
# ----------------------------------------------------------------------------------------


def test_training_output_is_standardised_then_scaled_and_shifted(key):
    x = _x(key, (64, F))
    params, state = batch_norm.init(F, jnp.float64)
    y, _ = batch_norm.apply(params, state, x, train=True)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    var = np.asarray(x).var(axis=0)
    # The variance of the output is var / (var + eps), 1 up to eps.
    np.testing.assert_allclose(y.var(axis=0), var / (var + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1, rtol=1e-5)
    p = _params(jax.random.key(1))
    y2, _ = batch_norm.apply(p, state, x, train=True)
    np.testing.assert_allclose(y2, y * p["gamma"][None] + p["beta"][None], rtol=1e-12, atol=1e-12)


def test_training_output_ignores_running_statistics(key):
    x = _x(key)
    params = _params(jax.random.key(1))
    a, _ = batch_norm.apply(params, batch_norm.init(F, jnp.float64)[1], x, train=True)
    b, _ = batch_norm.apply(params, _state(jax.random.key(2)), x, train=True)
    np.testing.assert_array_equal(a, b)


def test_leading_batch_axes_are_flattened(key):
    x = _x(key, (4, 6, F))
    params, state = _params(jax.random.key(1)), _state(jax.random.key(2))
    y, new = batch_norm.apply(params, state, x, train=True)
    y_flat, new_flat = batch_norm.apply(params, state, x.reshape(24, F), train=True)
    np.testing.assert_allclose(y, y_flat.reshape(4, 6, F), rtol=1e-13)
    for a, b in zip(new, new_flat, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_running_statistics_follow_the_formula_over_several_steps(key):
    params, state = _params(jax.random.key(1)), _state(jax.random.key(2))
    momentum = 0.8
    mean, var = np.asarray(state.mean), np.asarray(state.var)
    for step, k in enumerate(jax.random.split(key, 3)):
        x = _x(k, (5 + step, F))  # batch sizes 5, 6, 7
        state = batch_norm.apply(params, state, x, train=True, momentum=momentum)[1]
        xs = np.asarray(x)
        mean = momentum * mean + (1 - momentum) * xs.mean(axis=0)
        var = momentum * var + (1 - momentum) * xs.var(axis=0, ddof=1)  # unbiased
        np.testing.assert_allclose(state.mean, mean, rtol=1e-13)
        np.testing.assert_allclose(state.var, var, rtol=1e-13)


def test_momentum_zero_takes_the_batch_statistics(key):
    x = _x(key)
    new = batch_norm.apply(*batch_norm.init(F, jnp.float64), x, train=True, momentum=0.0)[1]
    np.testing.assert_allclose(new.mean, np.asarray(x).mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(new.var, np.asarray(x).var(axis=0, ddof=1), rtol=1e-13)


def test_batch_of_one_is_finite_and_outputs_beta():
    params, state = _params(jax.random.key(1)), _state(jax.random.key(2))
    x = jnp.array([[1.0, -2.0, 30.0]], jnp.float64)
    for xi in (x, x[0]):  # [1, F] and a single example [F]
        y, new = batch_norm.apply(params, state, xi, train=True, momentum=0.9)
        assert y.shape == xi.shape
        np.testing.assert_allclose(y.reshape(F), params["beta"], rtol=1e-15)
        assert np.all(np.isfinite(np.asarray(new.var)))
        # The batch variance is 0, and the running variance decays towards it.
        np.testing.assert_allclose(new.var, 0.9 * state.var, rtol=1e-15)
        y_eval, _ = batch_norm.apply(params, new, xi, train=False)
        assert np.all(np.isfinite(np.asarray(y_eval)))


# ----------------------------------------------------------------------------------------
# Evaluation: running statistics.
# ----------------------------------------------------------------------------------------


def test_evaluation_uses_running_statistics_and_keeps_the_state(key):
    params, state = _params(jax.random.key(1)), _state(jax.random.key(2))
    x = _x(key)
    y, new = batch_norm.apply(params, state, x, train=False, eps=1e-3)
    assert new is state
    expected = params["gamma"][None] * (x - state.mean[None]) / jnp.sqrt(state.var[None] + 1e-3) + params["beta"][None]
    np.testing.assert_allclose(y, expected, rtol=1e-13)


def test_evaluation_output_of_one_example_does_not_depend_on_its_batch(key):
    params, state = _params(jax.random.key(1)), _state(jax.random.key(2))
    k1, k2 = jax.random.split(key)
    batch, others = _x(k1, (6, F)), _x(k2, (9, F))
    mixed = jnp.concatenate([others[:4], batch[2:3], others[4:]])
    y_batch, _ = batch_norm.apply(params, state, batch, train=False)
    y_mixed, _ = batch_norm.apply(params, state, mixed, train=False)
    y_alone, _ = batch_norm.apply(params, state, batch[2], train=False)
    np.testing.assert_allclose(y_alone, y_batch[2], rtol=1e-14)
    np.testing.assert_allclose(y_mixed[4], y_batch[2], rtol=1e-14)
    # In training it does depend on the batch: the check above can fail.
    t_batch, _ = batch_norm.apply(params, state, batch, train=True)
    t_mixed, _ = batch_norm.apply(params, state, mixed, train=True)
    assert not np.allclose(t_batch[2], t_mixed[4])


# ----------------------------------------------------------------------------------------
# The backward pass.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(7, F), (2, 3, F), (1, F), (F,)], ids=["batch", "two-axes", "one-row", "single"])
def test_vjp_equals_jax_vjp(key, train, shape):
    k1, k2, k3 = jax.random.split(key, 3)
    params, state, x = _params(k1), _state(k2), _x(k3, shape)
    dy = jax.random.normal(jax.random.key(9), shape, jnp.float64)
    y, new, cache = batch_norm.forward(params, state, x, train=train, eps=1e-3)
    assert cache.train is train
    (ref_y, ref_new), vjp = jax.vjp(lambda p, xx: batch_norm.apply(p, state, xx, train=train, eps=1e-3), params, x)
    np.testing.assert_array_equal(y, ref_y)
    ref_dparams, ref_dx = vjp((dy, jax.tree.map(jnp.zeros_like, ref_new)))
    dx, dparams = batch_norm.vjp(params, cache, dy)
    assert dx.shape == x.shape
    scale = float(jnp.max(jnp.abs(ref_dx))) + 1e-300
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-13 * scale)
    for name in ("gamma", "beta"):
        np.testing.assert_allclose(dparams[name], ref_dparams[name], rtol=1e-12, atol=1e-14)


def test_vjp_float32_honest_tolerance(key):
    k1, k2, k3 = jax.random.split(key, 3)
    params = jax.tree.map(lambda a: a.astype(jnp.float32), _params(k1))
    state = jax.tree.map(lambda a: a.astype(jnp.float32), _state(k2))
    x = _x(k3, (16, F), jnp.float32)
    dy = jax.random.normal(jax.random.key(9), x.shape, jnp.float32)
    _, _, cache = batch_norm.forward(params, state, x, train=True)
    dx, dparams = batch_norm.vjp(params, cache, dy)
    assert dx.dtype == jnp.float32 and dparams["gamma"].dtype == jnp.float32
    _, vjp = jax.vjp(lambda p, xx: batch_norm.apply(p, state, xx, train=True)[0], params, x)
    ref_dparams, ref_dx = vjp(dy)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(ref_dx))))
    np.testing.assert_allclose(dparams["gamma"], ref_dparams["gamma"], rtol=1e-4, atol=1e-5)


def test_vjp_shape_mismatch(key):
    params, state = batch_norm.init(F, jnp.float64)
    _, _, cache = batch_norm.forward(params, state, _x(key), train=True)
    with pytest.raises(ValueError, match="dy and cache.xhat must have the same shape"):
        batch_norm.vjp(params, cache, jnp.ones((7, F), jnp.float64))


# ----------------------------------------------------------------------------------------
# Transformations.
# ----------------------------------------------------------------------------------------


def test_vmap_over_an_ensemble_keeps_each_members_statistics(key):
    members = 4
    keys = jax.random.split(key, 3 * members).reshape(3, members)
    params = jax.vmap(_params)(keys[0])
    state = jax.vmap(_state)(keys[1])
    # Each member sees its own batch, on its own scale.
    x = jax.vmap(_x)(keys[2]) * jnp.arange(1, members + 1, dtype=jnp.float64)[:, None, None]
    run = jax.jit(jax.vmap(lambda p, s, xx: batch_norm.apply(p, s, xx, train=True)))
    ys, states = run(params, state, x)
    for i in range(members):
        p_i, s_i = jax.tree.map(lambda a, i=i: a[i], (params, state))
        y_i, new_i = batch_norm.apply(p_i, s_i, x[i], train=True)
        np.testing.assert_allclose(ys[i], y_i, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(states.mean[i], new_i.mean, rtol=1e-12)
        np.testing.assert_allclose(states.var[i], new_i.var, rtol=1e-12)
    assert not np.allclose(states.var[0], states.var[1])


def test_jit_equals_no_jit_and_keeps_dtypes(key):
    params = jax.tree.map(lambda a: a.astype(jnp.float32), _params(jax.random.key(1)))
    state = batch_norm.init(F, jnp.float32)[1]
    x = _x(key, dtype=jnp.float32)
    f = lambda p, s, xx: batch_norm.apply(p, s, xx, train=True, momentum=jnp.float64(0.7))  # noqa: E731
    y, new = jax.jit(f)(params, state, x)
    y_eager, new_eager = f(params, state, x)
    np.testing.assert_allclose(y, y_eager, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new.var, new_eager.var, rtol=1e-5)
    # A float64 momentum does not promote float32 running statistics (a scan carry keeps its dtype).
    assert y.dtype == new.mean.dtype == new.var.dtype == jnp.float32


def test_invalid_traced_momentum_gives_nan(key):
    params, state = batch_norm.init(F, jnp.float64)
    x = _x(key)

    def f(m):
        return batch_norm.apply(params, state, x, train=True, momentum=m)[1]

    assert np.all(np.isnan(np.asarray(jax.jit(f)(jnp.float64(1.0)).mean)))
    assert np.all(np.isfinite(np.asarray(jax.jit(f)(jnp.float64(0.5)).mean)))
    err, _ = jax.jit(checking.checked(f))(jnp.float64(-0.5))
    assert "momentum must lie in [0, 1)" in err.get()


# ----------------------------------------------------------------------------------------
# Errors.
# ----------------------------------------------------------------------------------------


def test_feature_mismatch_is_a_value_error(key):
    params, state = batch_norm.init(F, jnp.float64)
    with pytest.raises(
        ValueError, match=rf"params\['gamma'\] must have shape \(4,\), the features of x \(5, 4\), got \({F},\)"
    ):
        batch_norm.apply(params, state, jnp.ones((5, 4), jnp.float64), train=True)
    with pytest.raises(ValueError, match=r"state.var must have shape \(3,\).*got \(2,\)"):
        batch_norm.apply(params, state._replace(var=jnp.ones(2)), jnp.ones((5, F)), train=False)
    with pytest.raises(ValueError, match=r"params\['beta'\]"):
        batch_norm.apply({**params, "beta": jnp.zeros((1, F))}, state, jnp.ones((5, F)), train=True)
    with pytest.raises(ValueError, match="scalar"):
        batch_norm.apply(params, state, jnp.float64(1.0), train=True)


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5])
def test_momentum_outside_unit_interval(momentum):
    params, state = batch_norm.init(F)
    with pytest.raises(ValueError, match=rf"momentum must lie in \[0, 1\), got {momentum}"):
        batch_norm.apply(params, state, jnp.ones((4, F)), train=True, momentum=momentum)


@pytest.mark.parametrize("eps", [0.0, -1e-5])
def test_eps_must_be_positive(eps):
    params, state = batch_norm.init(F)
    with pytest.raises(ValueError, match=r"eps must lie in \(0, inf\)"):
        batch_norm.apply(params, state, jnp.ones((4, F)), train=False, eps=eps)


def test_structural_errors():
    params, state = batch_norm.init(F)
    x = jnp.ones((4, F))
    with pytest.raises(TypeError, match="train must be a Python bool"):
        batch_norm.apply(params, state, x, train=1)
    with pytest.raises(TypeError, match="'gamma' and 'beta'"):
        batch_norm.apply({"gamma": params["gamma"]}, state, x, train=True)
    with pytest.raises(TypeError, match="BatchNormState"):
        batch_norm.apply(params, (), x, train=True)
    with pytest.raises(TypeError, match="floating-point"):
        batch_norm.apply(params, state, jnp.ones((4, F), jnp.int32), train=True)
    with pytest.raises(ValueError, match="at least one example"):
        batch_norm.apply(params, state, jnp.ones((0, F)), train=True)


# ----------------------------------------------------------------------------------------
# Example weights: weighted batch statistics and their backward pass.
# ----------------------------------------------------------------------------------------

WEIGHTS = {
    "random": lambda shape: jax.random.uniform(jax.random.key(5), shape, jnp.float64, 0.1, 3.0),
    "some-zero": lambda shape: (jnp.arange(np.prod(shape)) % 3 != 1).astype(jnp.float64).reshape(shape),
    "all-zero": lambda shape: jnp.zeros(shape, jnp.float64),
}


def test_zero_weights_leave_examples_out_and_integer_weights_repeat_them(key):
    params, state = _params(jax.random.key(1)), _state(jax.random.key(2))
    x = _x(key, (7, F))
    w = jnp.array([1.0, 0.0, 2.0, 1.0, 0.0, 3.0, 1.0], jnp.float64)
    rows = np.repeat(np.arange(7), np.asarray(w).astype(int))  # weight k: the example k times
    y, new = batch_norm.apply(params, state, x, train=True, weights=w, momentum=0.6)
    y_rows, new_rows = batch_norm.apply(params, state, x[rows], train=True, momentum=0.6)
    kept = np.flatnonzero(np.asarray(w))
    np.testing.assert_allclose(y[rows], y_rows, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(new.mean, new_rows.mean, rtol=1e-13)
    np.testing.assert_allclose(new.var, new_rows.var, rtol=1e-13)  # the unbiased variance of the 9 copies
    # A weight-0 example is still normalised, by the others' statistics.
    expected = params["gamma"] * (x[1] - x[rows].mean(axis=0)) / jnp.sqrt(x[rows].var(axis=0) + 1e-5) + params["beta"]
    np.testing.assert_allclose(y[1], expected, rtol=1e-12)
    # The check can fail: unweighted, every example moves the statistics.
    y_all, _ = batch_norm.apply(params, state, x, train=True)
    assert not np.allclose(y_all[kept], y[kept])


def test_weights_of_one_are_the_unweighted_layer(key):
    params, state = _params(jax.random.key(1)), _state(jax.random.key(2))
    for shape in [(7, F), (2, 3, F), (F,)]:
        x = _x(key, shape)
        y, new, cache = batch_norm.forward(params, state, x, train=True, weights=jnp.ones(shape[:-1], jnp.float64))
        ref_y, ref_new, ref_cache = batch_norm.forward(params, state, x, train=True)
        assert ref_cache.shares is None and cache.shares.shape == shape[:-1]
        # Run op by op the weighted statistics give the very bits of the unweighted ones.
        for a, b in zip(jax.tree.leaves((y, new)), jax.tree.leaves((ref_y, ref_new)), strict=True):
            np.testing.assert_array_equal(a, b)
        dy = jax.random.normal(jax.random.key(9), shape, jnp.float64)
        for a, b in zip(
            jax.tree.leaves(batch_norm.vjp(params, cache, dy)),
            jax.tree.leaves(batch_norm.vjp(params, ref_cache, dy)),
            strict=True,
        ):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)


def test_a_batch_of_total_weight_zero_is_normalised_like_evaluation(key):
    params, state = _params(jax.random.key(1)), _state(jax.random.key(2))
    x = _x(key)
    w = jnp.zeros(x.shape[0], jnp.float64)
    for f in (batch_norm.forward, jax.jit(batch_norm.forward, static_argnames="train")):
        y, new, cache = f(params, state, x, train=True, weights=w)
        y_eval, _, eval_cache = batch_norm.forward(params, state, x, train=False)
        np.testing.assert_allclose(y, y_eval, rtol=1e-14)
        np.testing.assert_array_equal(new.mean, state.mean)  # the running statistics do not move
        np.testing.assert_array_equal(new.var, state.var)
        dy = jax.random.normal(jax.random.key(9), x.shape, jnp.float64)
        dx, d = batch_norm.vjp(params, cache, dy)
        assert np.all(np.isfinite(np.asarray(dx)))
        np.testing.assert_allclose(dx, batch_norm.vjp(params, eval_cache, dy)[0], rtol=1e-14)


@pytest.mark.parametrize("kind", sorted(WEIGHTS))
@pytest.mark.parametrize("shape", [(7, F), (2, 3, F)], ids=["batch", "two-axes"])
def test_weighted_vjp_equals_autodiff_and_finite_differences(kind, shape):
    params, state = _params(jax.random.key(1)), _state(jax.random.key(2))
    x = _x(jax.random.key(3), shape)
    w = WEIGHTS[kind](shape[:-1])
    dy = jax.random.normal(jax.random.key(9), shape, jnp.float64)

    def f(theta):  # a scalar whose gradient is the vjp with dy
        y, _ = batch_norm.apply(theta["bn"], state, theta["x"], train=True, weights=w, eps=1e-3)
        return jnp.sum(dy * y)

    def hand(theta):
        _, _, cache = batch_norm.forward(theta["bn"], state, theta["x"], train=True, weights=w, eps=1e-3)
        dx, d = batch_norm.vjp(theta["bn"], cache, dy)
        return {"bn": d, "x": dx}

    report = gradcheck.check_gradients(f, {"bn": params, "x": x}, hand)
    report.assert_close(rtol=1e-12, fd_rtol=1e-7)


def test_weights_must_fit_and_be_non_negative(key):
    params, state = batch_norm.init(F, jnp.float64)
    x = _x(key)
    with pytest.raises(ValueError, match=r"weights must hold one weight per example of x, shape \(8,\).*got \(8, 1\)"):
        batch_norm.apply(params, state, x, train=True, weights=jnp.ones((8, 1)))
    with pytest.raises(TypeError, match="weights must be a floating-point array"):
        batch_norm.apply(params, state, x, train=True, weights=jnp.ones(8, jnp.int32))
    bad = jnp.ones(8, jnp.float64).at[3].set(-1.0)
    with pytest.raises(ValueError, match="weights must be non-negative"):
        batch_norm.apply(params, state, x, train=True, weights=bad)
    y, new = jax.jit(lambda w: batch_norm.apply(params, state, x, train=True, weights=w))(bad)
    assert np.all(np.isnan(np.asarray(y))) and np.all(np.isnan(np.asarray(new.var)))  # never a silent result
    # Evaluation takes no batch statistics: the weights change nothing there.
    y_eval, same = batch_norm.apply(params, state, x, train=False, weights=jnp.zeros(8))
    np.testing.assert_array_equal(y_eval, batch_norm.apply(params, state, x, train=False)[0])
    assert same is state


def test_vmap_over_members_weights(key):
    params, state = _params(jax.random.key(1)), _state(jax.random.key(2))
    x = _x(key)
    ws = jnp.stack([jnp.ones(8), (jnp.arange(8) < 5).astype(jnp.float64), jnp.zeros(8)])
    ys, states = jax.jit(jax.vmap(lambda w: batch_norm.apply(params, state, x, train=True, weights=w)))(ws)
    # Each member its own statistics: all examples, the first five, none (the running ones).
    for i, (y_i, new_i) in enumerate(
        (batch_norm.apply(params, state, x, train=True), batch_norm.apply(params, state, x[:5], train=True))
    ):
        np.testing.assert_allclose(ys[i, : y_i.shape[0]], y_i, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(states.var[i], new_i.var, rtol=1e-13)
    np.testing.assert_allclose(ys[2], batch_norm.apply(params, state, x, train=False)[0], rtol=1e-13)
    np.testing.assert_array_equal(states.mean[2], state.mean)
