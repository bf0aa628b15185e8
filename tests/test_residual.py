"""Tests of fnn.residual: the residual MLP, its hand-written backprop, and its plain counterpart."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import activations, train
from fnn import model as model_protocol
from fnn.models import MLP
from fnn.models.residual import ResidualMLP, plain_counterpart, plain_params


def _model(depth=2, block_layers=2, **kw):
    return ResidualMLP(3, 5, depth, 2, block_layers=block_layers, **kw)


def _x64(key, shape=(6, 3)):
    return jax.random.normal(key, shape, jnp.float64)


def _close(a, b, rtol, atol=0.0):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


def _affine(x, w, b):
    z = x @ w
    return z + jnp.broadcast_to(b, z.shape)


def _reference(params, x, f, g, block_layers):
    """The pre-activation residual MLP written out independently of fnn.residual."""
    h = _affine(x, params["input"]["W"], params["input"]["b"])
    for block in params["blocks"]:
        z = h
        for j in range(1, block_layers + 1):
            z = _affine(f(z), block[f"W{j}"], block[f"b{j}"])
        h = h + z
    return g(_affine(f(h), params["output"]["W"], params["output"]["b"]))


# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------


def test_hashable_equal_frozen():
    a, b = _model(activation="tanh"), ResidualMLP(3, 5, 2, 2, activation="tanh")
    assert a == b and hash(a) == hash(b)
    assert _model(depth=3) != a and _model(residual_scale=0.5) != _model()
    leaky = activations.get("leaky_relu", negative_slope=0.2)
    assert _model(activation=leaky) == _model(activation=activations.get("leaky_relu", negative_slope=0.2))
    assert len({a, b, _model(depth=3), _model(block_layers=1)}) == 3
    with pytest.raises(AttributeError):
        a.depth = 4
    assert isinstance(a, model_protocol.Model)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"in_features": 0}, ValueError, "in_features must be a positive integer, got 0"),
        ({"width": 2.5}, TypeError, "width must be an integer"),
        ({"out_features": True}, TypeError, "out_features must be an integer, got the bool"),
        ({"depth": -1}, ValueError, "depth must be a non-negative integer, got -1"),
        ({"depth": 1.0}, TypeError, "depth must be an integer"),
        ({"depth": False}, TypeError, "depth must be an integer"),
        ({"block_layers": 3}, ValueError, "block_layers must be 1 or 2"),
        ({"block_layers": True}, ValueError, "block_layers must be 1 or 2"),
        ({"activation": "relux"}, ValueError, "unknown activation 'relux'"),
        ({"output_activation": "sigmod"}, ValueError, "unknown activation 'sigmod'"),
        ({"activation": ("tanh", "relu")}, TypeError, "activation must be one activation name"),
        ({"scheme": "kaiming"}, ValueError, "unknown initialisation scheme 'kaiming'"),
        ({"residual_scale": -0.5}, ValueError, "residual_scale must be finite and non-negative, got -0.5"),
        ({"residual_scale": float("nan")}, ValueError, "residual_scale must be finite"),
        ({"residual_scale": "big"}, TypeError, "residual_scale must be a real number or None"),
        ({"residual_scale": True}, TypeError, "residual_scale must be a real number or None"),
    ],
)
def test_invalid_configuration(kwargs, error, match):
    config = {"in_features": 3, "width": 5, "depth": 2, "out_features": 2, **kwargs}
    with pytest.raises(error, match=match):
        ResidualMLP(**config)


def test_numpy_integers_and_scale_accepted():
    m = ResidualMLP(np.int64(3), np.int32(4), np.int64(2), 1, residual_scale=np.float32(0.5))
    assert (m.in_features, m.width, m.depth) == (3, 4, 2) and isinstance(m.depth, int)
    assert m.branch_scale == 0.5 and isinstance(m.residual_scale, float)
    assert _model(depth=16).branch_scale == pytest.approx(0.25)
    assert _model(depth=0).branch_scale == 1.0


def test_plain_counterpart_same_layers_and_parameter_count(key):
    for depth, block_layers in [(0, 2), (1, 1), (3, 2), (4, 1)]:
        residual = ResidualMLP(
            7, 6, depth, 3, activation="tanh", output_activation="sigmoid", scheme="glorot", block_layers=block_layers
        )
        plain = plain_counterpart(residual)
        assert plain == MLP(
            (7, *(6,) * (block_layers * depth + 1), 3), activation="tanh", output_activation="sigmoid", scheme="glorot"
        )
        assert len(plain.sizes) - 1 == residual.num_layers

        def count(p):
            return sum(leaf.size for leaf in jax.tree.leaves(p))

        assert count(jax.eval_shape(residual.init, key)[0]) == count(jax.eval_shape(plain.init, key)[0])
    with pytest.raises(TypeError, match="residual must be a ResidualMLP, got MLP"):
        plain_counterpart(MLP((2, 3, 1)))


@pytest.mark.parametrize(
    "bad, match",
    [
        ([], "params must be a dict with keys 'input', 'blocks', 'output'"),
        ({"input": {}, "blocks": [{"W1": 1.0}], "output": {}}, r"params\['blocks'\]\[0\] must be a dict of W1, b1"),
        (
            {"input": {}, "blocks": [{"W1": 1.0, "c1": 1.0}], "output": {}},
            r"params\['blocks'\]\[0\] lacks 'W1' or 'b1'",
        ),
    ],
)
def test_plain_params_rejects_malformed(bad, match):
    with pytest.raises(TypeError, match=match):
        plain_params(bad)


# ----------------------------------------------------------------------------------------
# init
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth, block_layers", [(0, 2), (1, 1), (3, 2)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_init_layout_shapes_dtype(key, depth, block_layers, dtype):
    m = ResidualMLP(3, 5, depth, 2, block_layers=block_layers)
    params, state = m.init(key, jnp.dtype(dtype))
    assert state == ()
    assert set(params) == {"input", "blocks", "output"} and len(params["blocks"]) == depth
    assert params["input"]["W"].shape == (3, 5) and params["input"]["b"].shape == (5,)
    assert params["output"]["W"].shape == (5, 2) and params["output"]["b"].shape == (2,)
    keys = {"W1", "b1"} if block_layers == 1 else {"W1", "b1", "W2", "b2"}
    for block in params["blocks"]:
        assert set(block) == keys
        assert all(block[k].shape == ((5, 5) if k.startswith("W") else (5,)) for k in keys)
    m.check_params(params)
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        name = path[-1].key
        assert leaf.dtype == jnp.dtype(dtype)
        assert name[0] in "Wb"
        if name[0] == "b":
            assert np.all(np.asarray(leaf) == 0)
        else:
            assert np.all(np.isfinite(np.asarray(leaf))) and np.any(np.asarray(leaf) != 0)


def test_init_layers_get_different_keys(key):
    params, _ = _model(depth=3, residual_scale=1.0).init(key)
    weights = [params["blocks"][i][k] for i in range(3) for k in ("W1", "W2")]
    for i in range(len(weights)):
        for j in range(i):
            assert not np.allclose(weights[i], weights[j])


def test_residual_scale_multiplies_the_last_layer_of_each_block(key):
    ref, _ = _model(depth=3, residual_scale=1.0).init(key, jnp.float64)
    half, _ = _model(depth=3, residual_scale=0.5).init(key, jnp.float64)
    auto, _ = _model(depth=4, residual_scale=None).init(key, jnp.float64)
    ref4, _ = _model(depth=4, residual_scale=1.0).init(key, jnp.float64)
    for r, h in zip(ref["blocks"], half["blocks"], strict=True):
        np.testing.assert_array_equal(h["W1"], r["W1"])
        np.testing.assert_allclose(h["W2"], 0.5 * r["W2"], rtol=1e-15)
    for r, a in zip(ref4["blocks"], auto["blocks"], strict=True):
        np.testing.assert_allclose(a["W2"], r["W2"] / 2, rtol=1e-15)  # 1/sqrt(4)
    one, _ = _model(depth=2, block_layers=1, residual_scale=0.25).init(key, jnp.float64)
    one_ref, _ = _model(depth=2, block_layers=1, residual_scale=1.0).init(key, jnp.float64)
    np.testing.assert_allclose(one["blocks"][1]["W1"], 0.25 * one_ref["blocks"][1]["W1"], rtol=1e-15)
    np.testing.assert_array_equal(one["input"]["W"], one_ref["input"]["W"])


def test_init_weight_scale_follows_scheme(key):
    # Width 256: the empirical std of a 256x256 He matrix is within 3% of sqrt(2/256).
    params, _ = ResidualMLP(128, 256, 4, 8, residual_scale=None).init(key)
    he = math.sqrt(2 / 256)
    assert float(jnp.std(params["blocks"][0]["W1"])) == pytest.approx(he, rel=0.03)
    assert float(jnp.std(params["blocks"][0]["W2"])) == pytest.approx(he / 2, rel=0.03)
    assert float(jnp.std(params["input"]["W"])) == pytest.approx(math.sqrt(2 / 128), rel=0.03)


# ----------------------------------------------------------------------------------------
# apply
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("block_layers", [1, 2])
@pytest.mark.parametrize("activation, output_activation", [("relu", "identity"), ("tanh", "sigmoid")])
def test_apply_matches_reference(key, block_layers, activation, output_activation):
    k1, k2 = jax.random.split(key)
    m = _model(
        depth=3,
        block_layers=block_layers,
        activation=activation,
        output_activation=output_activation,
        residual_scale=1.0,
    )
    params, state = m.init(k1, jnp.float64)
    x = _x64(k2)
    y, new_state = m.apply(params, state, x)
    assert y.shape == (6, 2) and new_state == ()
    f, g = activations.get(activation), activations.get(output_activation)
    np.testing.assert_allclose(y, _reference(params, x, f, g, block_layers), rtol=1e-13)
    y_train, _ = m.apply(params, state, x, key=jax.random.key(1), train=True)
    np.testing.assert_array_equal(y_train, y)
    # Without the shortcuts the same weights are the plain counterpart, another function.
    layers = [
        params["input"],
        *({"W": b[f"W{j}"], "b": b[f"b{j}"]} for b in params["blocks"] for j in range(1, block_layers + 1)),
        params["output"],
    ]
    assert jax.tree.structure(plain_params(params)) == jax.tree.structure(layers)
    _close(plain_params(params), layers, rtol=0)
    without, _ = plain_counterpart(m).apply(plain_params(params), (), x)
    h = x
    for layer in layers[:-1]:
        h = f(_affine(h, layer["W"], layer["b"]))
    np.testing.assert_allclose(without, g(_affine(h, layers[-1]["W"], layers[-1]["b"])), rtol=1e-13)
    assert not np.allclose(without, y)


def test_apply_single_example_and_leading_axes(key):
    k1, k2 = jax.random.split(key)
    m = _model(depth=2, activation="tanh")
    params, state = m.init(k1, jnp.float64)
    x = _x64(k2)
    batch = m.apply(params, state, x)[0]
    single = m.apply(params, state, x[4])[0]
    assert single.shape == (2,)
    np.testing.assert_allclose(single, batch[4], rtol=1e-12)
    stacked = m.apply(params, state, x.reshape(2, 3, 3))[0]
    np.testing.assert_allclose(stacked, batch.reshape(2, 3, 2), rtol=1e-12)


def test_depth_zero_is_the_two_layer_mlp(key):
    k1, k2 = jax.random.split(key)
    m = ResidualMLP(3, 7, 0, 2, activation="tanh", output_activation="sigmoid")
    params, state = m.init(k1, jnp.float64)
    x = _x64(k2)
    plain = plain_counterpart(m)
    assert plain.sizes == (3, 7, 2) and plain_params(params) == [params["input"], params["output"]]
    expected, _ = plain.apply(plain_params(params), (), x)
    np.testing.assert_allclose(m.apply(params, state, x)[0], expected, rtol=1e-14)


def test_zero_residual_scale_starts_at_the_two_layer_mlp(key):
    # With the last layer of every block zero, every block is the identity at initialisation.
    k1, k2 = jax.random.split(key)
    deep = ResidualMLP(3, 7, 5, 2, residual_scale=0.0)
    params, state = deep.init(k1, jnp.float64)
    assert all(np.all(np.asarray(b["W2"]) == 0) for b in params["blocks"])
    x = _x64(k2)
    shallow = ResidualMLP(3, 7, 0, 2)
    expected, _ = shallow.apply({**params, "blocks": []}, state, x)
    np.testing.assert_allclose(deep.apply(params, state, x)[0], expected, rtol=1e-14)


@pytest.mark.parametrize("shape", [(4, 4), (2,), (2, 3, 5)])
def test_apply_wrong_width(key, shape):
    m = _model()
    params, state = m.init(key)
    with pytest.raises(ValueError, match=rf"x must have 3 features .* got shape {re_shape(shape)}"):
        m.apply(params, state, jnp.ones(shape, jnp.float32))


def re_shape(shape):
    return str(shape).replace("(", r"\(").replace(")", r"\)")


def test_apply_rejects_scalar_and_integer_input(key):
    m = _model()
    params, state = m.init(key)
    with pytest.raises(ValueError, match="3 features"):
        m.apply(params, state, jnp.float32(1.0))
    with pytest.raises(TypeError, match="x must be a floating-point array, got dtype int32"):
        m.apply(params, state, jnp.ones((4, 3), jnp.int32))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda p: [p["input"], p["output"]], TypeError, "params must be a dict with keys 'input', 'blocks', 'output'"),
        (
            lambda p: {**p, "blocks": p["blocks"][:1]},
            ValueError,
            r"params\['blocks'\] must be a list of 2 block dicts \(depth\), got 1",
        ),
        (lambda p: {**p, "blocks": {"0": p["blocks"][0]}}, TypeError, r"params\['blocks'\] must be a list"),
        (
            lambda p: {**p, "blocks": [p["blocks"][0], {"W1": p["blocks"][1]["W1"]}]},
            TypeError,
            r"params\['blocks'\]\[1\] must be a dict with keys \['W1', 'W2', 'b1', 'b2'\]",
        ),
        (
            lambda p: {**p, "blocks": [p["blocks"][0], {**p["blocks"][1], "W2": p["blocks"][1]["W2"][:4]}]},
            ValueError,
            r"params\['blocks'\]\[1\]\['W2'\] must have shape \(5, 5\), got \(4, 5\)",
        ),
        (
            lambda p: {**p, "input": {"W": p["input"]["W"].T, "b": p["input"]["b"]}},
            ValueError,
            r"params\['input'\]\['W'\] must have shape \(3, 5\), got \(5, 3\)",
        ),
        (
            lambda p: {**p, "output": {"W": p["output"]["W"], "b": jnp.zeros((2, 1))}},
            ValueError,
            r"params\['output'\]\['b'\] must have shape \(2,\), got \(2, 1\)",
        ),
    ],
)
def test_malformed_params(key, make, error, match):
    m = _model()
    params, state = m.init(key)
    with pytest.raises(error, match=match):
        m.apply(make(params), state, jnp.ones((2, 3), jnp.float32))
    with pytest.raises(error, match=match):
        m.backprop(make(params), state, jnp.ones((2, 3), jnp.float32), jnp.zeros((2, 2), jnp.float32), "mse")


# ----------------------------------------------------------------------------------------
# The hand-written chain rule against jax.grad
# ----------------------------------------------------------------------------------------


def _targets(key, loss, n, k):
    if loss == "cross_entropy":
        return jax.random.randint(key, (n,), 0, k)
    if loss == "binary_cross_entropy":
        return jax.random.uniform(key, (n, k), jnp.float64)
    return jax.random.normal(key, (n, k), jnp.float64)


@pytest.mark.slow
@pytest.mark.parametrize(
    "depth, block_layers, activation, output_activation, loss",
    [
        (0, 2, "relu", "identity", "gaussian_nll"),
        (1, 1, "tanh", "identity", "cross_entropy"),
        (2, 2, "relu", "identity", "cross_entropy"),
        (3, 2, "softplus", "sigmoid", "mse"),
        (3, 1, "sigmoid", "identity", "binary_cross_entropy"),
        (4, 2, "leaky_relu", "softmax", "l1"),
    ],
)
def test_backprop_equals_autodiff_float64(key, depth, block_layers, activation, output_activation, loss):
    k1, k2, k3 = jax.random.split(key, 3)
    m = ResidualMLP(
        3,
        6,
        depth,
        4,
        activation=activation,
        output_activation=output_activation,
        block_layers=block_layers,
        residual_scale=1.0,
    )
    params, state = m.init(k1, jnp.float64)
    x, target = _x64(k2, (9, 3)), _targets(k3, loss, 9, 4)
    (value, new_state), grads = m.backprop(params, state, x, target, loss)
    (expected, _), expected_grads = model_protocol.value_and_grad_fn(m, loss)(params, state, x, target)
    assert new_state == ()
    np.testing.assert_allclose(value, expected, rtol=1e-13)
    scale = max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(expected_grads))
    _close(grads, expected_grads, rtol=1e-12, atol=1e-13 * scale)
    # The protocol's backprop path gives the same.
    (value2, _), grads2 = model_protocol.value_and_grad_fn(m, loss, method="backprop")(params, state, x, target)
    _close(grads2, grads, rtol=0)


@pytest.mark.slow
def test_backprop_equals_autodiff_float32_deep(key):
    # 8 blocks in float32: rounding differs between the two orders of summation; 1e-4 relative
    # to the largest gradient entry is an honest bound (measured ~1e-6).
    k1, k2, k3 = jax.random.split(key, 3)
    m = ResidualMLP(3, 8, 8, 4)
    params, state = m.init(k1)
    x = jax.random.normal(k2, (16, 3), jnp.float32)
    y = jax.random.randint(k3, (16,), 0, 4)
    (value, _), grads = m.backprop(params, state, x, y, "cross_entropy")
    (expected, _), expected_grads = model_protocol.value_and_grad_fn(m, "cross_entropy")(params, state, x, y)
    assert grads["blocks"][3]["W1"].dtype == jnp.float32
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    scale = max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(expected_grads))
    _close(grads, expected_grads, rtol=0, atol=1e-4 * scale)


@pytest.mark.slow
def test_backprop_leading_axes(key):
    k1, k2, k3 = jax.random.split(key, 3)
    m = _model(depth=2, activation="tanh")
    params, state = m.init(k1, jnp.float64)
    x, y = _x64(k2, (4, 3, 3)), jax.random.normal(k3, (4, 3, 2), jnp.float64)
    _, grads = m.backprop(params, state, x, y, "mse")
    _, expected = model_protocol.value_and_grad_fn(m, "mse")(params, state, x, y)
    _close(grads, expected, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------
# Transformations and training
# ----------------------------------------------------------------------------------------


def test_jit_static_model_no_retrace(key):
    traces = []

    def forward(model, params, x):
        traces.append(None)
        return model.apply(params, (), x)[0]

    jitted = jax.jit(forward, static_argnums=0)
    params, _ = _model(activation="tanh").init(key)
    x = jnp.ones((4, 3), jnp.float32)
    y1 = jitted(_model(activation="tanh"), params, x)
    y2 = jitted(ResidualMLP(3, 5, 2, 2, activation="tanh"), params, 2 * x)  # equal, new instance
    assert len(traces) == 1 and not np.allclose(y1, y2)
    np.testing.assert_allclose(y1, _model(activation="tanh").apply(params, (), x)[0], rtol=1e-6)
    jitted(_model(activation="relu"), params, x)
    assert len(traces) == 2


@pytest.mark.slow
def test_vmap_over_keys_is_an_ensemble(key):
    m = _model(depth=2, scheme="glorot")  # uniform draws compile faster than truncated normals
    keys = jax.random.split(key, 4)
    ensemble, states = jax.jit(jax.vmap(lambda k: m.init(k, jnp.float64)))(keys)
    assert ensemble["blocks"][1]["W2"].shape == (4, 5, 5) and ensemble["output"]["b"].shape == (4, 2)
    x = _x64(jax.random.key(9))
    ys = jax.jit(jax.vmap(lambda p: m.apply(p, (), x)[0]))(ensemble)
    assert ys.shape == (4, 6, 2) and not np.allclose(ys[0], ys[1])
    for i in (0, 3):
        single, _ = m.init(keys[i], jnp.float64)
        _close(jax.tree.map(lambda a, i=i: a[i], ensemble), single, rtol=1e-14)
        np.testing.assert_allclose(ys[i], m.apply(single, (), x)[0], rtol=1e-12)


def _classification(key, n=40):
    kx, kw = jax.random.split(key)
    x = jax.random.normal(kx, (n, 3), jnp.float64)
    return x, jnp.argmax(x @ jax.random.normal(kw, (3, 2), jnp.float64), axis=1).astype(jnp.int32)


@pytest.mark.slow
def test_trainer_backprop_equals_autodiff_and_learns(key):
    x, y = _classification(key)
    hp = {"learning_rate": 0.05}
    runs = {}
    for gradient in ("autodiff", "backprop"):
        trainer = train.Trainer(
            _model(depth=2, activation="tanh"),
            "cross_entropy",
            optimizer="momentum",
            epochs=10,
            batch_size=8,
            gradient=gradient,
        )
        state = trainer.init(jax.random.key(1), hp, dtype=jnp.float64)
        runs[gradient] = trainer.fit(state, (x, y), (x, y), hp)
    (s_auto, h_auto), (s_hand, h_hand) = runs["autodiff"], runs["backprop"]
    _close(s_hand.params, s_auto.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_hand.train_loss, h_auto.train_loss, rtol=1e-10)
    assert int(s_hand.epoch) == 10
    assert float(h_hand.val_loss[-1]) < 0.5 * float(h_hand.val_loss[0])
    assert float(h_hand.val_accuracy[-1]) >= 0.9


@pytest.mark.slow
def test_first_layer_gradient_stays_of_order_one_with_depth(key):
    # Measured at width 32 on 64 Gaussian inputs, median over 3 seeds of |dL/dW_in|: with the
    # default scale 1/sqrt(depth), depth 32 / depth 2 is 0.8-1.2; with scale 1 the forward
    # variance doubles at each block, and depth 16 / depth 2 is 50-200 (2^14 in the variance).
    kx, ky, kp = jax.random.split(key, 3)
    x = jax.random.normal(kx, (64, 8), jnp.float64)
    y = jax.random.randint(ky, (64,), 0, 4)
    seeds = jax.random.split(kp, 3)

    def norm(depth, scale):
        m = ResidualMLP(8, 32, depth, 4, residual_scale=scale, scheme="he_uniform")

        def one(k):
            params, state = m.init(k, jnp.float64)
            return jnp.linalg.norm(m.backprop(params, state, x, y, "cross_entropy")[1]["input"]["W"])

        return float(np.median([one(k) for k in seeds]))  # eager: equal blocks reuse one set of kernels

    ratio = norm(32, None) / norm(2, None)
    assert 0.1 < ratio < 10
    assert norm(16, 1.0) / norm(2, 1.0) > 20


# ----------------------------------------------------------------------------------------
# Parameters of another model, under vmap; example weights
# ----------------------------------------------------------------------------------------


def test_params_of_another_width_are_refused_under_jit_and_vmap(key):
    model, other = ResidualMLP(3, 4, 1, 2), ResidualMLP(3, 5, 1, 2)
    x = jnp.ones((2, 3), jnp.float64)

    def stacked(m):  # the shapes of three members' parameters: tracing checks them, nothing runs
        one = jax.eval_shape(lambda: m.init(key, jnp.float64)[0])
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct((3, *a.shape), a.dtype), one)

    run = jax.jit(jax.vmap(lambda p: model.apply(p, (), x)[0]))
    assert jax.eval_shape(run, stacked(model)).shape == (3, 2, 2)  # one member's shapes inside vmap
    with pytest.raises(ValueError, match=r"params\['input'\]\['W'\] must have shape \(3, 4\), got \(3, 5\)"):
        jax.eval_shape(run, stacked(other))


@pytest.mark.slow
def test_weights_act_through_the_loss_alone(key):
    model = ResidualMLP(3, 4, 1, 2, activation="tanh")
    params, state = model.init(key, jnp.float64)
    x = jax.random.normal(jax.random.key(1), (5, 3), jnp.float64)
    target = jax.random.normal(jax.random.key(2), (5, 2), jnp.float64)
    w = jnp.array([1.0, 0.0, 2.0, 1.0, 0.0], jnp.float64)
    np.testing.assert_array_equal(model.apply(params, state, x, weights=w)[0], model.apply(params, state, x)[0])
    kept = np.flatnonzero(np.asarray(w))
    # Weights 0, 1 and 2 are the examples left out, taken once and taken twice.
    rows = np.repeat(kept, np.asarray(w)[kept].astype(int))

    @jax.jit  # one program costs less than the operations run one by one
    def run(params, x, target, w):
        hand = model_protocol.value_and_grad_fn(model, "mse", method="backprop")(params, state, x, target, weights=w)
        auto = model_protocol.value_and_grad_fn(model, "mse")(params, state, x, target, weights=w)
        return hand, auto, model_protocol.value_and_grad_fn(model, "mse")(params, state, x[rows], target[rows])

    hand, auto, alone = run(params, x, target, w)
    for a, b in ((hand, auto), (auto, alone)):
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)
