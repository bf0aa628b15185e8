"""Tests for fnn.backprop: the hand-written chain rule against ``jax.grad``.

The headline check builds the same loss twice, once through :func:`fnn.backprop.value_and_grad`
and once as ``jax.value_and_grad`` of :func:`fnn.mlp.apply` followed by the loss, and holds the
two to 1e-10 relative error per leaf in float64 for every activation, every loss and depths 1
to 4. Around it: jit, vmap (per-example gradients), float32, the caches of ``forward``,
``backward`` against ``jax.vjp`` (input gradient included), per-layer activations, tree
structure, no retracing, errors at the public boundary, and the model-level switch between
``method="backprop"`` and ``method="autodiff"``.

Float64 arrays are created inside the tests with an explicit dtype, so the file works whether
float64 is enabled globally or by a fixture.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import activations, backprop, gradcheck, losses, mlp
from fnn import model as fnn_model
from fnn.models import MLP

D_IN, HIDDEN, N, M, K = 4, 5, 6, 7, 3
DEPTHS = (1, 2, 3, 4)
RTOL = 1e-10

all_losses = pytest.mark.parametrize("loss", losses.names())


# ----------------------------------------------------------------------------------------
# Problems and comparisons.
# ----------------------------------------------------------------------------------------


def _sizes(depth: int, out: int) -> list[int]:
    """Layer widths with ``depth`` weight layers."""
    return [D_IN] + [HIDDEN] * (depth - 1) + [out]


def _params(key, sizes, dtype=jnp.float64, noise=0.3):
    """Glorot weights plus noise on every leaf, so that the biases are not zero."""
    k_init, k_noise = jax.random.split(key)
    params = mlp.init(k_init, sizes, scheme="glorot", dtype=dtype)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(k_noise, len(leaves))
    return tree.unflatten(
        [leaf + noise * jax.random.normal(k, leaf.shape, dtype) for leaf, k in zip(leaves, keys, strict=True)]
    )


def _distributions(key, n, k, dtype):
    """Rows summing to 1, each with an exact zero (entry n mod k)."""
    w = jnp.exp(jax.random.normal(key, (n, k), dtype))
    w = jnp.where(jax.nn.one_hot(jnp.arange(n) % k, k, dtype=bool), 0, w)
    return w / jnp.sum(w, axis=-1, keepdims=True)


def _problem(key, loss: str, depth: int, dtype=jnp.float64, n: int = N):
    """Params, inputs and a target suited to ``loss`` for a net of ``depth`` layers."""
    k_p, k_x, k_t = jax.random.split(key, 3)
    out = 2 * K if loss == "gaussian_nll_learned" else K
    params = _params(k_p, _sizes(depth, out), dtype)
    x = jax.random.normal(k_x, (n, D_IN), dtype)
    if loss == "cross_entropy":
        target = jax.random.randint(k_t, (n,), 0, K)
    elif loss in ("kl_divergence", "js_divergence"):
        target = _distributions(k_t, n, K, dtype)
    elif loss == "binary_cross_entropy":
        target = jax.random.uniform(k_t, (n, K), dtype)
    elif loss == "mmd":
        target = jax.random.normal(k_t, (M, K), dtype)
    else:  # mse, l1, gaussian_nll, gaussian_nll_learned: real targets [N, K]
        target = jax.random.normal(k_t, (n, K), dtype)
    return params, x, target


def _reference(params, x, target, loss, activation, output_activation):
    """``jax.value_and_grad`` of the loss of ``mlp.apply``: the trusted side."""
    fn = losses.get(loss)

    def objective(p):
        return fn(mlp.apply(p, x, activation=activation, output_activation=output_activation), target)

    return jax.value_and_grad(objective)(params)


def _leaf_problems(hand, ref, rtol=RTOL) -> list[str]:
    """Every leaf where ``hand`` differs from ``ref`` by more than ``rtol`` (max abs diff / max |ref|)."""
    if jax.tree.structure(hand) != jax.tree.structure(ref):
        return [f"tree structure {jax.tree.structure(hand)} != {jax.tree.structure(ref)}"]
    problems = []
    for (path, h), r in zip(jax.tree_util.tree_flatten_with_path(hand)[0], jax.tree.leaves(ref), strict=True):
        where = jax.tree_util.keystr(path)
        h, r = np.asarray(h), np.asarray(r)
        if h.shape != r.shape or h.dtype != r.dtype:
            problems.append(f"{where}: {h.dtype}{h.shape} vs reference {r.dtype}{r.shape}")
            continue
        if not (np.all(np.isfinite(h)) and np.all(np.isfinite(r))):
            problems.append(f"{where}: non-finite entries (hand {h.ravel()[:4]}, reference {r.ravel()[:4]})")
            continue
        diff, scale = float(np.max(np.abs(h - r))), float(np.max(np.abs(r)))
        if scale == 0.0:
            if diff >= 1e-300:
                problems.append(f"{where}: reference is zero, hand has max |g| {diff:.3g}")
        elif diff / scale > rtol:
            problems.append(f"{where}: relative error {diff / scale:.3g} > {rtol}")
    return problems


def _value_problem(hand, ref, rtol=1e-13) -> list[str]:
    hand, ref = float(hand), float(ref)
    if not (np.isfinite(hand) and np.isfinite(ref)) or abs(hand - ref) > rtol * max(1.0, abs(ref)):
        return [f"loss value {hand!r} vs reference {ref!r}"]
    return []


def _assert_matches(hand, ref, rtol=RTOL) -> None:
    problems = _value_problem(hand[0], ref[0]) + _leaf_problems(hand[1], ref[1], rtol)
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------------------
# The headline matrix: every activation x every loss x depths 1-4, eager, float64.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", DEPTHS)
@all_losses
def test_hand_gradient_equals_autodiff_everywhere(loss, depth):
    failures = []
    for i, act in enumerate(activations.names()):
        key = jax.random.fold_in(jax.random.key(depth), i)
        params, x, target = _problem(key, loss, depth)
        kwargs = {"activation": act, "output_activation": act}
        hand = backprop.value_and_grad(params, x, target, loss=loss, **kwargs)
        ref = _reference(params, x, target, loss, **kwargs)
        problems = _value_problem(hand[0], ref[0]) + _leaf_problems(hand[1], ref[1])
        failures += [f"{act}/{loss}/depth {depth}: {p}" for p in problems]
    assert not failures, "\n".join(failures)


def test_matrix_is_not_trivial():
    # The matrix compares gradients that mostly are not zero: a check of the check.
    params, x, target = _problem(jax.random.key(0), "mse", 3)
    _, grads = backprop.value_and_grad(params, x, target, loss="mse", activation="tanh", output_activation="tanh")
    assert all(float(jnp.max(jnp.abs(g))) > 1e-3 for g in jax.tree.leaves(grads))


def test_comparison_catches_a_wrong_gradient():
    params, x, target = _problem(jax.random.key(1), "mse", 2)
    ref = _reference(params, x, target, "mse", "tanh", "identity")
    wrong = jax.tree.map(lambda g: g, ref[1])
    wrong[0]["b"] = wrong[0]["b"] * (1 + 1e-8)
    problems = _leaf_problems(wrong, ref[1])
    assert len(problems) == 1 and problems[0].startswith("[0]['b']")
    zero_ref = jax.tree.map(jnp.zeros_like, ref[1])
    assert _leaf_problems(zero_ref, zero_ref) == []
    assert len(_leaf_problems(ref[1], zero_ref)) == 4


# ----------------------------------------------------------------------------------------
# jit and vmap.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("act", ["tanh", "relu", "softmax"])
@all_losses
def test_jit_equals_autodiff(loss, act):
    # The jitted hand gradient against eager autodiff (the same reference as the matrix).
    params, x, target = _problem(jax.random.key(3), loss, 3)
    kwargs = {"activation": act, "output_activation": act}
    hand = jax.jit(functools.partial(backprop.value_and_grad, loss=loss, **kwargs))(params, x, target)
    ref = _reference(params, x, target, loss, **kwargs)
    problems = _value_problem(hand[0], ref[0], 1e-12) + _leaf_problems(hand[1], ref[1])
    assert not problems, "\n".join(problems)


@all_losses
def test_per_example_gradients_under_vmap(loss):
    params, x, target = _problem(jax.random.key(4), loss, 3)
    if loss == "mmd":
        target = target[:N]  # one target sample per example
    kwargs = {"activation": "tanh", "output_activation": "identity"}
    fn = losses.get(loss)

    def hand(xi, ti):
        return backprop.value_and_grad(params, xi[None], ti[None], loss=loss, **kwargs)

    def objective(p, xi, ti):
        return fn(mlp.apply(p, xi[None], **kwargs), ti[None])

    values, grads = jax.vmap(hand)(x, target)
    ref_values, ref_grads = jax.vmap(jax.value_and_grad(objective), in_axes=(None, 0, 0))(params, x, target)
    assert values.shape == (N,)
    assert [g.shape for g in jax.tree.leaves(grads)] == [(N, *p.shape) for p in jax.tree.leaves(params)]
    problems = _leaf_problems(values, ref_values, 1e-13) + _leaf_problems(grads, ref_grads)
    assert not problems, "\n".join(problems)
    # Per example really differs between examples (the vmap did not broadcast one result).
    assert not np.allclose(grads[0]["b"][0], grads[0]["b"][1])


@pytest.mark.parametrize("loss", [name for name in losses.names() if name != "mmd"])
def test_mean_of_per_example_gradients_is_the_batch_gradient(loss):
    # Every loss but MMD is a mean over examples, so its gradient is the mean of per-example ones.
    params, x, target = _problem(jax.random.key(5), loss, 2)
    kwargs = {"activation": "softplus", "output_activation": "identity"}
    per_example = jax.vmap(lambda xi, ti: backprop.grad(params, xi[None], ti[None], loss=loss, **kwargs))(x, target)
    batch = backprop.grad(params, x, target, loss=loss, **kwargs)
    mean = jax.tree.map(lambda g: jnp.mean(g, axis=0), per_example)
    problems = _leaf_problems(mean, batch, 1e-12)
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------------------
# float32.
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("act", "out", "loss"),
    [
        ("tanh", "identity", "mse"),
        ("sigmoid", "identity", "cross_entropy"),
        ("softplus", "identity", "binary_cross_entropy"),
        ("rbf", "softmax", "kl_divergence"),
    ],
)
def test_float32_agrees_and_keeps_dtype(act, out, loss):
    params, x, target = _problem(jax.random.key(6), loss, 3, dtype=jnp.float32)
    value, grads = backprop.value_and_grad(params, x, target, loss=loss, activation=act, output_activation=out)
    ref_value, ref_grads = _reference(params, x, target, loss, act, out)
    assert value.dtype == jnp.float32
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    problems = _leaf_problems(grads, ref_grads, rtol=1e-5)
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------------------
# forward and backward.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("act", ["relu", "tanh", "softmax"])
def test_forward_equals_apply_and_caches_have_the_right_shapes(act):
    sizes = [D_IN, HIDDEN, 2, K]
    params = _params(jax.random.key(7), sizes)
    x = jax.random.normal(jax.random.key(8), (N, D_IN), jnp.float64)
    y, caches = backprop.forward(params, x, activation=act, output_activation="sigmoid")
    np.testing.assert_array_equal(y, mlp.apply(params, x, activation=act, output_activation="sigmoid"))
    assert len(caches) == len(params)
    assert all(isinstance(c, backprop.LayerCache) for c in caches)
    for layer, (cache, n_in, n_out) in enumerate(zip(caches, sizes[:-1], sizes[1:], strict=True)):
        assert cache.inputs.shape == (N, n_in), layer
        assert cache.preactivation.shape == (N, n_out), layer
        assert cache.output.shape == (N, n_out), layer
        f = activations.get(act if layer < len(params) - 1 else "sigmoid")
        np.testing.assert_array_equal(cache.output, f(cache.preactivation))
        np.testing.assert_allclose(
            cache.preactivation, cache.inputs @ params[layer]["W"] + params[layer]["b"][None], rtol=1e-14
        )
    np.testing.assert_array_equal(caches[0].inputs, x)
    for below, above in zip(caches[:-1], caches[1:], strict=True):
        np.testing.assert_array_equal(above.inputs, below.output)
    np.testing.assert_array_equal(caches[-1].output, y)


@pytest.mark.slow
@pytest.mark.parametrize("x_shape", [(D_IN,), (N, D_IN), (2, 3, D_IN)], ids=["single", "batch", "two-batch-axes"])
def test_backward_is_the_vjp_of_apply(x_shape):
    # backward(d_output) must be jax.vjp of apply, for the params and for the input alike.
    kwargs = {"activation": "tanh", "output_activation": "softplus"}
    params = _params(jax.random.key(9), [D_IN, HIDDEN, HIDDEN, K])
    x = jax.random.normal(jax.random.key(10), x_shape, jnp.float64)
    y, caches = backprop.forward(params, x, **kwargs)
    assert y.shape == (*x_shape[:-1], K)
    np.testing.assert_array_equal(y, mlp.apply(params, x, **kwargs))
    g = jax.random.normal(jax.random.key(11), y.shape, jnp.float64)
    grads, d_x = backprop.backward(params, caches, g, **kwargs)
    _, vjp = jax.vjp(lambda p, xx: mlp.apply(p, xx, **kwargs), params, x)
    ref_grads, ref_d_x = vjp(g)
    assert d_x.shape == x.shape
    problems = _leaf_problems(grads, ref_grads) + _leaf_problems(d_x, ref_d_x)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "gaussian_nll_learned", "mmd"])
def test_backward_input_gradient_equals_jax_grad_of_x(loss):
    params, x, target = _problem(jax.random.key(12), loss, 3)
    kwargs = {"activation": "sigmoid", "output_activation": "identity"}
    fn = losses.get(loss)
    y, caches = backprop.forward(params, x, **kwargs)
    _, d_x = backprop.backward(params, caches, fn.grad(y, target), **kwargs)
    ref = jax.grad(lambda xx: fn(mlp.apply(params, xx, **kwargs), target))(x)
    problems = _leaf_problems(d_x, ref)
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------------------
# Per-layer activations, activation records, tree structure.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hidden", "out", "loss"),
    [
        (("tanh", "relu", "softplus"), "identity", "mse"),
        (("tanh", "relu", "softplus"), "softmax", "mse"),
        (("sigmoid", "abs", "rbf"), "softmax", "kl_divergence"),
        (("hard_tanh", "leaky_relu", "tanh"), "log_softmax", "mse"),
        (("softplus", "tanh", "relu"), "log_softmax", "cross_entropy"),
        (
            (activations.get("leaky_relu", negative_slope=0.2), activations.get("rbf", gamma=0.5), "tanh"),
            activations.get("rectifier", alpha=0.3),
            "l1",
        ),
    ],
    ids=["tanh-relu-softplus", "to-softmax", "to-softmax-kl", "to-log_softmax", "to-log_softmax-ce", "records"],
)
def test_per_layer_activations(hidden, out, loss):
    params, x, target = _problem(jax.random.key(13), loss, 4)
    kwargs = {"activation": hidden, "output_activation": out}
    hand = backprop.value_and_grad(params, x, target, loss=loss, **kwargs)
    ref = _reference(params, x, target, loss, **kwargs)
    _assert_matches(hand, ref)
    # The per-layer list is really used: a single activation gives another gradient.
    other = backprop.grad(params, x, target, loss=loss, activation="identity", output_activation=out)
    assert _leaf_problems(other, hand[1])


def test_gradient_tree_structure_equals_jax_grad():
    params, x, target = _problem(jax.random.key(14), "mse", 3)
    grads = backprop.grad(params, x, target, loss="mse", activation="tanh")
    _, ref = _reference(params, x, target, "mse", "tanh", "identity")
    assert jax.tree.structure(grads) == jax.tree.structure(ref) == jax.tree.structure(params)
    assert isinstance(grads, list) and all(set(layer) == {"W", "b"} for layer in grads)
    assert [g.shape for g in jax.tree.leaves(grads)] == [p.shape for p in jax.tree.leaves(params)]


def test_loss_object_equals_loss_name():
    params, x, target = _problem(jax.random.key(15), "mmd", 2)
    by_object = backprop.value_and_grad(params, x, target, loss=losses.get("mmd", bandwidth=0.7), activation="tanh")
    ref = _reference(params, x, target, losses.get("mmd", bandwidth=0.7), "tanh", "identity")
    _assert_matches(by_object, ref)
    default = backprop.value_and_grad(params, x, target, loss="mmd", activation="tanh")
    assert float(default[0]) != float(by_object[0])  # the bandwidth reached the loss


# ----------------------------------------------------------------------------------------
# Compilation.
# ----------------------------------------------------------------------------------------


def test_jitted_value_and_grad_does_not_retrace():
    traces = []

    @jax.jit
    def step(params, x, target):
        traces.append(None)
        return backprop.value_and_grad(params, x, target, loss="cross_entropy", activation="tanh")

    params, x, target = _problem(jax.random.key(16), "cross_entropy", 3)
    first = step(params, x, target)
    params2, x2, target2 = _problem(jax.random.key(17), "cross_entropy", 3)
    second = step(params2, x2, target2)
    assert len(traces) == 1
    assert float(first[0]) != float(second[0])
    _assert_matches(second, _reference(params2, x2, target2, "cross_entropy", "tanh", "identity"))
    step(params, x[:2], target[:2])  # a new shape does trace again: the counter works
    assert len(traces) == 2


# ----------------------------------------------------------------------------------------
# Errors at the public boundary.
# ----------------------------------------------------------------------------------------


def _small():
    params = _params(jax.random.key(18), [D_IN, HIDDEN, K])
    x = jnp.ones((N, D_IN), jnp.float64)
    return params, x, jnp.zeros((N, K), jnp.float64)


def test_wrong_feature_count_names_both_sizes():
    params, _, target = _small()
    x = jnp.ones((N, D_IN - 1), jnp.float64)
    match = rf"{D_IN} features.*\({N}, {D_IN - 1}\)"
    with pytest.raises(ValueError, match=match):
        backprop.forward(params, x)
    with pytest.raises(ValueError, match=match):
        backprop.value_and_grad(params, x, target)
    with pytest.raises(ValueError, match=match):
        backprop.grad(params, x, target)
    with pytest.raises(ValueError, match="features"):
        backprop.forward(params, jnp.float64(1.0))


def test_malformed_params_raise():
    params, x, target = _small()
    missing_b = [{"W": params[0]["W"]}, params[1]]
    with pytest.raises(TypeError, match=r"params\[0\].*'W' and 'b'"):
        backprop.value_and_grad(missing_b, x, target)
    wrong_b = [{"W": params[0]["W"], "b": jnp.zeros(HIDDEN + 1, jnp.float64)}, params[1]]
    with pytest.raises(ValueError, match=r"params\[0\]"):
        backprop.value_and_grad(wrong_b, x, target)
    rank_one_w = [params[0], {"W": jnp.zeros(HIDDEN, jnp.float64), "b": params[1]["b"]}]
    with pytest.raises(ValueError, match=r"params\[1\]"):
        backprop.forward(rank_one_w, x)
    not_chaining = [params[0], {"W": jnp.zeros((HIDDEN + 2, K), jnp.float64), "b": params[1]["b"]}]
    with pytest.raises(ValueError, match=rf"params\[1\]\['W'\] takes {HIDDEN + 2} inputs.*{HIDDEN} outputs"):
        backprop.value_and_grad(not_chaining, x, target)
    with pytest.raises(TypeError, match="non-empty list"):
        backprop.forward([], x)
    with pytest.raises(TypeError, match="non-empty list"):
        backprop.forward(params[0], x)


def test_backward_errors():
    params, x, _ = _small()
    y, caches = backprop.forward(params, x)
    with pytest.raises(ValueError, match=rf"d_output.*\({N}, {K}\).*\({N}, {K + 1}\)"):
        backprop.backward(params, caches, jnp.ones((N, K + 1), jnp.float64))
    with pytest.raises(ValueError, match=r"d_output"):
        backprop.backward(params, caches, jnp.ones((K,), jnp.float64))
    with pytest.raises(ValueError, match="caches hold 1 layers but params hold 2"):
        backprop.backward(params, caches[:1], jnp.ones_like(y))
    with pytest.raises(ValueError, match="caches hold 3 layers but params hold 2"):
        backprop.backward(params, caches + caches[:1], jnp.ones_like(y))


def test_activation_list_of_wrong_length_raises():
    params = _params(jax.random.key(19), [D_IN, HIDDEN, HIDDEN, HIDDEN, K])  # 3 hidden layers
    x, target = jnp.ones((N, D_IN), jnp.float64), jnp.zeros((N, K), jnp.float64)
    for wrong in (("tanh", "relu"), ("tanh", "relu", "softplus", "relu"), ()):
        with pytest.raises(ValueError, match=rf"one per hidden layer \(3\), got {len(wrong)}"):
            backprop.forward(params, x, activation=wrong)
        with pytest.raises(ValueError, match="one per hidden layer"):
            backprop.value_and_grad(params, x, target, activation=wrong)
    y, caches = backprop.forward(params, x, activation=("tanh", "relu", "softplus"))
    with pytest.raises(ValueError, match="one per hidden layer"):
        backprop.backward(params, caches, jnp.ones_like(y), activation=("tanh", "relu"))


def test_unknown_names_raise():
    params, x, target = _small()
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        backprop.value_and_grad(params, x, target, loss="nope")
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        backprop.value_and_grad(params, x, target, activation="nope")
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        backprop.forward(params, x, output_activation="nope")
    y, caches = backprop.forward(params, x)
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        backprop.backward(params, caches, jnp.ones_like(y), activation="nope")


# ----------------------------------------------------------------------------------------
# The model-level switch.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("activation", "output_activation", "loss"),
    [
        ("tanh", "identity", "mse"),
        (("relu", "softplus"), "identity", "cross_entropy"),
        ("sigmoid", "softmax", "kl_divergence"),
    ],
)
def test_model_backprop_equals_autodiff(activation, output_activation, loss):
    depth = 3 if isinstance(activation, tuple) else 2
    _, x, target = _problem(jax.random.key(20), loss, depth)
    net = MLP(tuple(_sizes(depth, K)), activation=activation, output_activation=output_activation)
    params, state = net.init(jax.random.key(21), dtype=jnp.float64)
    params = jax.tree.map(lambda p: p + 0.1, params)
    (value, new_state), grads = fnn_model.value_and_grad_fn(net, loss, method="backprop")(params, state, x, target)
    (ref_value, ref_state), ref_grads = fnn_model.value_and_grad_fn(net, loss, method="autodiff")(
        params, state, x, target
    )
    assert new_state == ref_state == ()
    _assert_matches((value, grads), (ref_value, ref_grads))
    default = fnn_model.value_and_grad_fn(net, loss)(params, state, x, target)
    _assert_matches((default[0][0], default[1]), (ref_value, ref_grads), rtol=0.0)


def test_model_value_and_grad_errors():
    net = MLP((D_IN, HIDDEN, K))
    with pytest.raises(ValueError, match="method must be 'autodiff' or 'backprop', got 'manual'"):
        fnn_model.value_and_grad_fn(net, "mse", method="manual")

    class NoBackprop:
        def init(self, key, dtype=jnp.float32):
            return net.init(key, dtype)

        def apply(self, params, state, x, *, key=None, train=False):
            return net.apply(params, state, x, key=key, train=train)

    with pytest.raises(TypeError, match="NoBackprop has no hand-written backprop"):
        fnn_model.value_and_grad_fn(NoBackprop(), "mse", method="backprop")
    # The same model works by autodiff.
    params, state = NoBackprop().init(jax.random.key(22), jnp.float64)
    x, target = jnp.ones((N, D_IN), jnp.float64), jnp.zeros((N, K), jnp.float64)
    (value, _), _ = fnn_model.value_and_grad_fn(NoBackprop(), "mse")(params, state, x, target)
    assert np.isfinite(float(value))
    with pytest.raises(ValueError, match="unknown loss"):
        fnn_model.value_and_grad_fn(net, "nope", method="backprop")


# ----------------------------------------------------------------------------------------
# Dropout and batch normalisation: MLP.backprop against jax.grad through MLP.apply.
# ----------------------------------------------------------------------------------------

REGULARISED = {
    "dropout": {"dropout": 0.3},
    "batch_norm": {"batch_norm": True, "bn_momentum": 0.8},
    "both": {"dropout": 0.4, "input_dropout": 0.2, "batch_norm": True, "bn_eps": 1e-3},
}
LOSS_CYCLE = ("mse", "cross_entropy", "binary_cross_entropy")
ACT_CYCLE = ("tanh", "relu", "softplus")


def _regularised(config, hidden, loss, dtype=jnp.float64, activation="tanh", key=23):
    """A regularised MLP with noisy parameters (gamma and beta included), inputs and targets."""
    out = 2 * K if loss == "gaussian_nll_learned" else K
    net = MLP(tuple(_sizes(hidden + 1, out)), activation=activation, scheme="glorot", **REGULARISED[config])
    params, state = net.init(jax.random.key(key), dtype=dtype)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(key + 1), len(leaves))
    params = tree.unflatten(
        [leaf + 0.3 * jax.random.normal(k, leaf.shape, dtype) for leaf, k in zip(leaves, keys, strict=True)]
    )
    _, x, target = _problem(jax.random.key(key + 2), loss, hidden + 1, dtype)
    return net, params, state, x, target


def _close_problems(hand, ref, rtol) -> list[str]:
    """Per leaf, max |hand - ref| <= rtol * max |ref leaf|, with a floor of rtol / 100 times the
    largest gradient entry: a normalised layer's bias has gradient 0 in exact arithmetic, and
    both sides give rounding noise there."""
    if jax.tree.structure(hand) != jax.tree.structure(ref):
        return [f"tree structure {jax.tree.structure(hand)} != {jax.tree.structure(ref)}"]
    overall = max((float(np.max(np.abs(np.asarray(r)))) for r in jax.tree.leaves(ref)), default=0.0)
    problems = []
    for (path, h), r in zip(jax.tree_util.tree_flatten_with_path(hand)[0], jax.tree.leaves(ref), strict=True):
        h, r = np.asarray(h), np.asarray(r)
        if h.shape != r.shape or h.dtype != r.dtype or not np.all(np.isfinite(h)):
            problems.append(
                f"{jax.tree_util.keystr(path)}: {h.dtype}{h.shape} vs {r.dtype}{r.shape}, finite {np.all(np.isfinite(h))}"
            )
            continue
        diff, bound = float(np.max(np.abs(h - r))), rtol * max(float(np.max(np.abs(r))), overall / 100)
        if diff > bound:
            problems.append(f"{jax.tree_util.keystr(path)}: max abs error {diff:.3g} > {bound:.3g}")
    return problems


def _check_model_gradient(
    net, params, state, x, target, loss, *, key, train=True, rtol=1e-12, value_rtol=1e-13, weights=None
):
    # Compiled: one program per side costs less than compiling each of their operations eagerly.
    def run(method):
        fn = fnn_model.value_and_grad_fn(net, loss, method=method)
        return jax.jit(lambda p, s, xx, t: fn(p, s, xx, t, key=key, train=train, weights=weights))(
            params, state, x, target
        )

    hand, ref = run("backprop"), run("autodiff")
    (value, new_state), grads = hand
    (ref_value, ref_state), ref_grads = ref
    problems = _value_problem(value, ref_value, value_rtol) if value_rtol else []
    problems += _close_problems(grads, ref_grads, rtol)
    problems += [f"state {p}" for p in _close_problems(new_state, ref_state, 1e-14)]
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert not problems, "\n".join(problems)
    return hand


@pytest.mark.parametrize("hidden", (1, 2, 3))
@pytest.mark.parametrize("config", sorted(REGULARISED))
def test_regularised_hand_gradient_equals_autodiff(config, hidden):
    i = hidden + len(config)
    loss, act = LOSS_CYCLE[i % 3], ACT_CYCLE[(i // 3) % 3]
    net, params, state, x, target = _regularised(config, hidden, loss, activation=act, key=23 + hidden)
    (_, new_state), grads = _check_model_gradient(net, params, state, x, target, loss, key=jax.random.key(hidden))
    if net.batch_norm:
        assert len(new_state) == hidden
        assert all(set(g) == {"W", "b", "gamma", "beta"} for g in grads[:-1]) and set(grads[-1]) == {"W", "b"}
        assert not np.allclose(new_state[0].mean, state[0].mean)
    # The masks matter: another key gives another gradient.
    if net.dropout:
        (_, _), other = fnn_model.value_and_grad_fn(net, loss, method="backprop")(
            params, state, x, target, key=jax.random.key(99)
        )
        assert _close_problems(other, grads, 1e-6)


@pytest.mark.slow
def test_regularised_hand_gradient_for_more_losses():
    # mse, cross_entropy and binary_cross_entropy are in the matrix above.
    failures = []
    for loss in ("l1", "gaussian_nll_learned", "kl_divergence", "mmd"):
        net, params, state, x, target = _regularised("both", 2, loss, key=40)
        try:
            _check_model_gradient(net, params, state, x, target, loss, key=jax.random.key(41))
        except AssertionError as error:
            failures.append(f"{loss}: {error}")
    assert not failures, "\n".join(failures)


def test_input_dropout_without_hidden_layers():
    net = MLP((D_IN, K), input_dropout=0.5)
    params, state = net.init(jax.random.key(42), dtype=jnp.float64)
    _, x, target = _problem(jax.random.key(43), "mse", 1)
    _check_model_gradient(net, params, state, x, target, "mse", key=jax.random.key(44))
    y, _, caches = net.forward(params, state, x, key=jax.random.key(44), train=True)
    np.testing.assert_array_equal(caches[0].inputs, x * caches[0].input_mask)


@pytest.mark.parametrize("config", ["batch_norm", "both"])
def test_evaluation_mode_hand_gradient_equals_autodiff(config):
    net, params, state, x, target = _regularised(config, 2, "mse", key=50)
    for k in jax.random.split(jax.random.key(51), 2):  # running statistics away from (0, 1)
        state = net.apply(params, state, x + jax.random.normal(k, x.shape, jnp.float64), key=k, train=True)[1]
    (_, new_state), _ = _check_model_gradient(net, params, state, x, target, "mse", key=None, train=False)
    assert not _close_problems(new_state, state, 0.0)  # evaluation leaves the state as it was


def test_regularised_float32_agrees():
    net, params, state, x, target = _regularised("both", 2, "cross_entropy", dtype=jnp.float32, key=60)
    (value, _), grads = _check_model_gradient(
        net, params, state, x, target, "cross_entropy", key=jax.random.key(61), rtol=1e-4, value_rtol=0.0
    )
    assert value.dtype == jnp.float32 and all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))


def test_forward_model_caches_and_input_gradient():
    net, params, state, x, target = _regularised("both", 2, "mse", key=70)
    key = jax.random.key(71)
    y, new_state, caches = net.forward(params, state, x, key=key, train=True)
    ref_y, ref_state = net.apply(params, state, x, key=key, train=True)
    np.testing.assert_array_equal(y, ref_y)
    assert _close_problems(new_state, ref_state, 0.0) == []
    assert len(caches) == 3 and all(isinstance(c, backprop.LayerCache) for c in caches)
    assert [c.batch_norm is not None for c in caches] == [True, True, False]
    assert all(c.input_mask is not None and c.input_mask.shape == c.inputs.shape for c in caches)
    np.testing.assert_array_equal(caches[0].inputs, x * caches[0].input_mask)
    for below, above in zip(caches[:-1], caches[1:], strict=True):
        np.testing.assert_array_equal(above.inputs, below.output * above.input_mask)
    # backward is the vjp of apply for the input too (through the input dropout).
    g = jax.random.normal(jax.random.key(72), y.shape, jnp.float64)
    *hidden, out = net.activations()
    grads, d_x = backprop.backward(params, caches, g, activation=hidden, output_activation=out)
    _, vjp = jax.vjp(lambda p, xx: net.apply(p, state, xx, key=key, train=True)[0], params, x)
    ref_grads, ref_d_x = vjp(g)
    problems = _close_problems(grads, ref_grads, 1e-12) + _close_problems(d_x, ref_d_x, 1e-12)
    assert not problems, "\n".join(problems)
    # In evaluation there are no masks and the batch-norm caches say so.
    _, same, eval_caches = net.forward(params, state, x)
    assert same is state and all(c.input_mask is None for c in eval_caches)
    assert eval_caches[0].batch_norm.train is False


def test_jitted_regularised_backprop_equals_eager():
    net, params, state, x, target = _regularised("both", 1, "mse", key=80)
    fn = jax.jit(lambda p, s, xx, t, k: net.backprop(p, s, xx, t, losses.get("mse"), key=k))
    jitted = fn(params, state, x, target, jax.random.key(81))
    eager = net.backprop(params, state, x, target, "mse", key=jax.random.key(81))
    assert not _close_problems(jitted, eager, 1e-12)


def test_regularised_backprop_errors():
    net, params, state, x, target = _regularised("dropout", 1, "mse", key=90)
    with pytest.raises(ValueError, match="dropout needs a PRNG key in training mode"):
        net.backprop(params, state, x, target, "mse")
    with pytest.raises(ValueError, match="params"):
        backprop.forward(params[:1] + [{**params[1], "gamma": params[1]["b"], "beta": params[1]["b"]}], x)
    bn_net, bn_params, bn_state, _, _ = _regularised("batch_norm", 1, "mse", key=91)
    y, _, caches = bn_net.forward(bn_params, bn_state, x, train=True)
    plain_caches = (caches[0]._replace(batch_norm=None), caches[1])
    with pytest.raises(
        ValueError, match=r"params\[0\] holds 'gamma' and 'beta' but caches\[0\] has no batch normalisation"
    ):
        backprop.backward(bn_params, plain_caches, jnp.ones_like(y))
    with pytest.raises(ValueError, match=r"caches\[0\] holds a batch normalisation but params\[0\] has no 'gamma'"):
        backprop.backward(params, caches, jnp.ones_like(y))


@pytest.mark.slow
def test_trainer_backprop_run_equals_autodiff_run():
    from fnn.train import Trainer

    x = jax.random.normal(jax.random.key(100), (48, 4), jnp.float64)
    y = (x[:, 0] > 0).astype(jnp.int32) + (x[:, 1] > 0).astype(jnp.int32)
    model = MLP((4, 16, 3), dropout=0.2, batch_norm=True)
    runs = {}
    for gradient in ("autodiff", "backprop"):
        trainer = Trainer(model, loss="cross_entropy", optimizer="momentum", epochs=3, batch_size=16, gradient=gradient)
        hyper = {"learning_rate": 0.05, "momentum": 0.9}
        state = trainer.init(jax.random.key(101), hyper, dtype=jnp.float64)
        runs[gradient] = trainer.fit(state, (x, y), (x, y), hyper)
    (auto_state, auto_history), (hand_state, hand_history) = runs["autodiff"], runs["backprop"]
    problems = _close_problems(hand_state.params, auto_state.params, 1e-10)
    problems += _close_problems(hand_state.model_state, auto_state.model_state, 1e-10)
    problems += _close_problems(hand_history[:3], auto_history[:3], 1e-10)
    assert not problems, "\n".join(problems)
    assert not np.allclose(hand_state.model_state[0].var, 1)


# ----------------------------------------------------------------------------------------
# Example weights: weighted batch statistics, by hand and by autodiff.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", ["some-zero", "all-zero"])
def test_weighted_hand_gradient_equals_autodiff(weights):
    net, params, state, x, target = _regularised("both", 2, "mse", key=110)
    w = jnp.where(jnp.arange(N) % 3 == 1, 0.0, jnp.arange(N) / N + 0.5)
    w = w if weights == "some-zero" else jnp.zeros(N)
    (value, new_state), grads = _check_model_gradient(
        net, params, state, x, target, "mse", key=jax.random.key(111), weights=w
    )
    if weights == "all-zero":  # no example: loss 0, gradient 0, the running statistics kept
        assert float(value) == 0.0 and all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(grads))
        assert not _close_problems(new_state, state, 0.0)
    else:
        assert float(value) > 0 and not np.allclose(new_state[0].mean, state[0].mean)


@pytest.mark.slow
def test_weighted_model_gradient_against_finite_differences():
    net, params, state, x, target = _regularised("batch_norm", 1, "cross_entropy", key=120)
    w = jnp.array([1.0, 0.0, 2.0, 0.5, 0.0, 1.0], jnp.float64)
    fn = fnn_model.value_and_grad_fn(net, "cross_entropy", method="backprop")
    report = gradcheck.check_gradients(
        lambda p: fnn_model.value_and_grad_fn(net, "cross_entropy")(p, state, x, target, weights=w)[0][0],
        params,
        fn(params, state, x, target, weights=w)[1],
    )
    for leaf in report.leaves:
        if leaf.path == "[0]['b']":  # before batch normalisation: gradient 0, both sides give rounding noise
            assert max(leaf.hand_vs_autodiff_abs, leaf.autodiff_vs_fd_abs, leaf.hand_vs_fd_abs) < 1e-8, leaf
        else:
            assert leaf.hand_vs_autodiff_rel < 1e-10 and max(leaf.autodiff_vs_fd_rel, leaf.hand_vs_fd_rel) < 1e-6, leaf


def test_weights_need_a_model_that_takes_them():
    net = MLP((D_IN, HIDDEN, K), batch_norm=True)

    class OldProtocol:  # apply without weights, as models were written before they joined the protocol
        def init(self, key, dtype=jnp.float32):
            return net.init(key, dtype)

        def apply(self, params, state, x, *, key=None, train=False):
            return net.apply(params, state, x, key=key, train=train)

    params, state = net.init(jax.random.key(130), jnp.float64)
    x, target = jnp.ones((N, D_IN), jnp.float64), jnp.zeros((N, K), jnp.float64)
    fn = fnn_model.value_and_grad_fn(OldProtocol(), "mse")
    (value, _), _ = fn(params, state, x, target)  # unweighted: as before
    assert np.isfinite(float(value))
    with pytest.raises(TypeError, match=r"OldProtocol.apply takes no example weights"):
        fn(params, state, x, target, weights=jnp.ones(N))
