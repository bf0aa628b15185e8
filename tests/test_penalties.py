"""Tests of fnn.penalties: L1/L2 values and hand-written gradients, leaf selection, decoupled decay."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import mlp, optimizers, penalties

SIZES = (3, 4, 2)


def _params(key):
    """MLP parameters in float64 with non-zero biases, so that penalising them would show."""
    kw, kb = jax.random.split(key)
    params = mlp.init(kw, SIZES, dtype=jnp.float64)
    biases = jax.random.normal(kb, (sum(SIZES[1:]),), jnp.float64)
    return [
        {"W": layer["W"], "b": biases[sum(SIZES[1 : i + 1]) : sum(SIZES[1 : i + 2])]} for i, layer in enumerate(params)
    ]


def _reference(params, l1, l2, select):
    """The penalty summed by hand over the leaves ``select(i, name)`` picks."""
    total = 0.0
    for i, layer in enumerate(params):
        for name, w in layer.items():
            if select(i, name):
                w = np.asarray(w)
                total += l1 * np.sum(np.abs(w)) + l2 / 2 * np.sum(w * w)
    return total


def _tree_close(a, b, rtol=1e-12, atol=1e-14):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


def _first_layer(path, leaf):
    del leaf
    return path[0].idx == 0


SELECTORS = {
    "weights": lambda i, name: name == "W",
    "all": lambda i, name: True,
    _first_layer: lambda i, name: i == 0,
}


# ----------------------------------------------------------------------------------------
# values
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("leaves", list(SELECTORS), ids=["weights", "all", "custom"])
def test_values_equal_the_formula(key, leaves):
    params = _params(key)
    select = SELECTORS[leaves]
    np.testing.assert_allclose(
        penalties.l1(params, 0.3, leaves=leaves), _reference(params, 0.3, 0.0, select), rtol=1e-13
    )
    np.testing.assert_allclose(
        penalties.l2(params, 0.7, leaves=leaves), _reference(params, 0.0, 0.7, select), rtol=1e-13
    )
    np.testing.assert_allclose(
        penalties.elastic_net(params, 0.3, 0.7, leaves=leaves), _reference(params, 0.3, 0.7, select), rtol=1e-13
    )


def test_default_leaves_are_the_weights_only(key):
    params = _params(key)
    assert penalties.mask(params) == [{"W": True, "b": False}, {"W": True, "b": False}]
    moved = [{"W": layer["W"], "b": layer["b"] + 10.0} for layer in params]
    assert float(penalties.elastic_net(moved, 0.2, 0.5)) == float(penalties.elastic_net(params, 0.2, 0.5))
    assert float(penalties.elastic_net(moved, 0.2, 0.5, leaves="all")) > float(
        penalties.elastic_net(params, 0.2, 0.5, leaves="all")
    )
    _, grads = penalties.value_and_grad(params, l1=0.2, l2=0.5)
    assert all(np.all(np.asarray(layer["b"]) == 0) for layer in grads)
    assert all(np.all(np.asarray(layer["W"]) != 0) for layer in grads)


def test_weight_keys_are_those_starting_with_W():
    block = {"W1": jnp.ones((2, 2)), "W2": jnp.ones((2, 2)), "b1": jnp.ones(2), "gamma": jnp.ones(2), "w": jnp.ones(2)}
    assert penalties.mask(block) == {"W1": True, "W2": True, "b1": False, "gamma": False, "w": False}
    assert float(penalties.l1(block, 1.0)) == 8.0


def test_value_is_a_scalar_in_the_params_dtype(key):
    params = jax.tree.map(lambda a: a.astype(jnp.float32), _params(key))
    value, grads = penalties.value_and_grad(params, l1=jnp.float64(0.1), l2=jnp.float64(0.2))
    assert value.shape == () and value.dtype == jnp.float32
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))


# ----------------------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("leaves", list(SELECTORS), ids=["weights", "all", "custom"])
def test_hand_written_grad_equals_autodiff(key, leaves):
    params = _params(key)  # random normal entries: none is exactly zero
    assert all(np.all(np.asarray(w) != 0) for w in jax.tree.leaves(params))
    value, grads = penalties.value_and_grad(params, l1=0.3, l2=0.7, leaves=leaves)
    auto_value, auto = jax.value_and_grad(lambda p: penalties.elastic_net(p, 0.3, 0.7, leaves=leaves))(params)
    np.testing.assert_allclose(value, auto_value, rtol=1e-14)
    _tree_close(grads, auto, rtol=1e-13)


def test_l1_subgradient_is_zero_at_zero():
    params = [{"W": jnp.array([[0.0, 2.0, -3.0]], jnp.float64), "b": jnp.zeros(3, jnp.float64)}]
    _, grads = penalties.value_and_grad(params, l1=0.5, l2=0.1)
    np.testing.assert_array_equal(grads[0]["W"], [[0.0, 0.5 + 0.2, -0.5 - 0.3]])
    # autodiff of |w| takes the one-sided slope 1 at 0; the hand-written subgradient takes 0
    auto = jax.grad(lambda p: penalties.l1(p, 0.5))(params)
    assert float(auto[0]["W"][0, 0]) != 0.0


def test_traced_strengths_under_vmap_equal_a_loop(key):
    params = _params(key)
    l1s = jnp.array([0.0, 0.1, 0.5], jnp.float64)
    l2s = jnp.array([1.0, 0.0, 0.3], jnp.float64)
    values, grads = jax.jit(jax.vmap(lambda a, b: penalties.value_and_grad(params, l1=a, l2=b)))(l1s, l2s)
    for i in range(3):
        value, grad = penalties.value_and_grad(params, l1=float(l1s[i]), l2=float(l2s[i]))
        np.testing.assert_allclose(values[i], value, rtol=1e-14)
        _tree_close(jax.tree.map(lambda g, i=i: g[i], grads), grad, rtol=1e-14)


# ----------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------


def test_negative_strengths_raise(key):
    params = _params(key)
    with pytest.raises(ValueError, match="l1"):
        penalties.l1(params, -0.1)
    with pytest.raises(ValueError, match="l2"):
        penalties.l2(params, -0.1)
    with pytest.raises(ValueError, match="l2"):
        penalties.value_and_grad(params, l1=0.1, l2=-1e-9)
    with pytest.raises(ValueError, match="weight_decay"):
        penalties.decoupled_weight_decay(0.1, -0.5)
    with pytest.raises(ValueError, match="learning_rate"):
        penalties.decoupled_weight_decay(0.0, 0.5)


def test_traced_negative_strength_gives_nan(key):
    params = _params(key)
    value, grads = jax.jit(lambda s: penalties.value_and_grad(params, l2=s))(-1.0)
    assert np.isnan(value) and np.all(np.isnan(np.asarray(grads[0]["W"])))


def test_bad_selectors_raise(key):
    params = _params(key)
    with pytest.raises(ValueError, match="selects no leaf"):
        penalties.l2(params, 0.1, leaves=lambda path, leaf: False)
    with pytest.raises(ValueError, match="selects no leaf"):
        penalties.l2({"w": jnp.ones(3)}, 0.1)  # no key starting with "W"
    with pytest.raises(ValueError, match="leaves must be one of"):
        penalties.mask(params, "biases")
    with pytest.raises(TypeError, match="leaves must be a name"):
        penalties.mask(params, 3)


def test_integer_params_are_refused():
    with pytest.raises(TypeError, match="params must be a floating-point array"):
        penalties.l2([{"W": jnp.ones((2, 2), jnp.int32)}], 0.1)


# ----------------------------------------------------------------------------------------
# decoupled weight decay
# ----------------------------------------------------------------------------------------


def _run(optimizer, params, steps, penalty=None):
    """``steps`` updates of ``optimizer`` on a fixed smooth gradient field, plus an optional
    gradient term ``penalty(params)``."""
    state = optimizer.init(params)
    for t in range(steps):
        grads = jax.tree.map(lambda w, t=t: jnp.sin((t + 1.0) * w) + 0.1 * w * w, params)
        if penalty is not None:
            grads = jax.tree.map(jnp.add, grads, penalty(params))
        updates, state = optimizer.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params


def test_decay_after_adam_is_adamw_with_the_weights_mask(key):
    params = _params(key)
    lr, wd = 0.05, 0.3
    chained = optax.chain(optimizers.adam(lr), penalties.decoupled_weight_decay(lr, wd))
    adamw = optimizers.adamw(lr, weight_decay=wd, mask=penalties.mask)
    ours, theirs = _run(chained, params, 6), _run(adamw, params, 6)
    _tree_close(ours, theirs, rtol=1e-12)
    # and not AdamW that also decays the biases
    everything = _run(optimizers.adamw(lr, weight_decay=wd), params, 6)
    assert np.max(np.abs(np.asarray(ours[0]["b"]) - np.asarray(everything[0]["b"]))) > 1e-4


def test_decay_after_sgd_is_an_l2_penalty(key):
    params = _params(key)
    lr, wd = 0.1, 0.4
    chained = optax.chain(optimizers.sgd(lr), penalties.decoupled_weight_decay(lr, wd))
    coupled = _run(optimizers.sgd(lr), params, 5, penalty=lambda p: penalties.value_and_grad(p, l2=wd)[1])
    _tree_close(_run(chained, params, 5), coupled, rtol=1e-12)
    plain = _run(optimizers.sgd(lr), params, 5)
    assert np.max(np.abs(np.asarray(coupled[0]["W"]) - np.asarray(plain[0]["W"]))) > 1e-3


def test_decay_follows_a_schedule(key):
    params = _params(key)
    schedule = optax.piecewise_constant_schedule(0.2, {2: 0.5, 4: 0.1})
    wd = 0.3
    decay = penalties.decoupled_weight_decay(schedule, wd)
    state = decay.init(params)
    zero = jax.tree.map(jnp.zeros_like, params)
    for t in range(6):
        updates, state = decay.update(zero, state, params)
        np.testing.assert_allclose(updates[0]["W"], -float(schedule(t)) * wd * params[0]["W"], rtol=1e-14)
        assert np.all(np.asarray(updates[0]["b"]) == 0)
    # with Adam on the same schedule it is still AdamW
    chained = optax.chain(optimizers.adam(schedule), penalties.decoupled_weight_decay(schedule, wd))
    adamw = optimizers.adamw(schedule, weight_decay=wd, mask=penalties.mask)
    _tree_close(_run(chained, params, 6), _run(adamw, params, 6), rtol=1e-12)


def test_decay_needs_params(key):
    params = _params(key)
    decay = penalties.decoupled_weight_decay(0.1, 0.1)
    with pytest.raises(ValueError, match="needs params"):
        decay.update(params, decay.init(params))


def test_decay_under_jit_and_vmap_over_strengths(key):
    params = _params(key)
    zero = jax.tree.map(jnp.zeros_like, params)

    def first_update(wd):
        decay = penalties.decoupled_weight_decay(0.1, wd, leaves="all")
        return decay.update(zero, decay.init(params), params)[0]

    wds = jnp.array([0.0, 0.5, 2.0], jnp.float64)
    batched = jax.jit(jax.vmap(first_update))(wds)
    for i, wd in enumerate(wds):
        _tree_close(jax.tree.map(lambda u, i=i: u[i], batched), jax.tree.map(lambda w, wd=wd: -0.1 * wd * w, params))
