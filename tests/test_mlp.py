"""Tests of fnn.mlp and fnn.initializers: shapes, schemes, validation, apply, jit/vmap, the MLP model."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import activations, initializers, mlp
from fnn.mlp import MLP

SIZE_LISTS = [(3, 1), (2, 4, 1), (1, 16, 2, 7, 4)]
# Most tests share one network and one input shape, so that JAX compiles their operations once.
SIZES = (3, 5, 4, 2)


def _params64(key, sizes=SIZES):
    return mlp.init(key, sizes, dtype=jnp.float64)


def _x64(key, shape=(6, 3)):
    return jax.random.normal(key, shape, jnp.float64)


def _jit_init(sizes, **kwargs):
    # Compiling init once is cheaper than running its random ops eagerly for every new shape.
    return jax.jit(functools.partial(mlp.init, sizes=sizes, **kwargs))


def _affine(x, layer):
    # The reference computation, with the bias broadcast explicitly (rank promotion is "raise").
    z = x @ layer["W"]
    return z + jnp.broadcast_to(layer["b"], z.shape)


# ----------------------------------------------------------------------------------------
# init
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", SIZE_LISTS)
def test_init_shapes_and_zero_biases(key, sizes):
    params = _jit_init(list(sizes))(key)
    assert isinstance(params, list) and len(params) == len(sizes) - 1
    for layer, n_in, n_out in zip(params, sizes[:-1], sizes[1:]):
        assert set(layer) == {"W", "b"}
        assert layer["W"].shape == (n_in, n_out)
        assert layer["b"].shape == (n_out,)
        assert np.all(np.asarray(layer["b"]) == 0)
        assert np.all(np.isfinite(np.asarray(layer["W"])))
    assert mlp.sizes_of(params) == tuple(sizes)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_init_dtype(key, dtype_name):
    dtype = jnp.dtype(dtype_name)
    params = mlp.init(key, SIZES, dtype=dtype)
    for leaf in jax.tree.leaves(params):
        assert leaf.dtype == dtype


def test_init_same_key_identical_different_keys_differ():
    a = mlp.init(jax.random.key(1), SIZES)
    b = mlp.init(jax.random.key(1), SIZES)
    c = mlp.init(jax.random.key(2), SIZES)
    for la, lb, lc in zip(a, b, c):
        np.testing.assert_array_equal(la["W"], lb["W"])
        assert not np.array_equal(np.asarray(la["W"]), np.asarray(lc["W"]))
    # Layers get different subkeys: two layers of the same shape are not copies of each other.
    d = _jit_init([5, 5, 5])(jax.random.key(1))
    assert not np.array_equal(np.asarray(d[0]["W"]), np.asarray(d[1]["W"]))


def _expected_std(scheme, fan_in, fan_out, std):
    return {
        "he": math.sqrt(2 / fan_in),
        "he_uniform": math.sqrt(2 / fan_in),
        "glorot": math.sqrt(2 / (fan_in + fan_out)),
        "xavier": math.sqrt(2 / (fan_in + fan_out)),
        "glorot_normal": math.sqrt(2 / (fan_in + fan_out)),
        "lecun": math.sqrt(1 / fan_in),
        "normal": std,
    }[scheme]


@pytest.mark.parametrize("scheme", ["he", "he_uniform", "glorot", "xavier", "glorot_normal", "lecun", "normal"])
@pytest.mark.parametrize("shape", [(512, 512), (512, 128)])
def test_init_weight_std_matches_scheme(scheme, shape):
    # Non-square layers tell fan_in, fan_out and their mean apart (on 512x512 Glorot = LeCun).
    fan_in, fan_out = shape
    params = _jit_init([fan_in, fan_out], scheme=scheme, std=0.05, dtype=jnp.float32)(jax.random.key(3))
    w = np.asarray(params[0]["W"], np.float64)
    expected = _expected_std(scheme, fan_in, fan_out, 0.05)
    assert w.std() == pytest.approx(expected, rel=0.03)
    assert abs(w.mean()) < 0.05 * expected


def test_init_truncated_and_uniform_shapes_of_distribution():
    # He is a normal truncated at 2 sigma (of the untruncated normal); He-uniform is uniform.
    w = np.asarray(initializers.weights(jax.random.key(4), 512, 512, "he"), np.float64)
    sigma = math.sqrt(2 / 512) / 0.87962566103423978
    assert np.abs(w).max() <= 2 * sigma * (1 + 1e-5)
    u = np.asarray(initializers.weights(jax.random.key(4), 512, 512, "he_uniform"), np.float64)
    limit = math.sqrt(3 * 2 / 512)
    assert np.abs(u).max() <= limit * (1 + 1e-5)
    assert np.abs(u).max() > 0.99 * limit


def test_init_unknown_scheme_lists_schemes(key):
    with pytest.raises(ValueError, match="unknown initialisation scheme 'kaiming'") as info:
        mlp.init(key, [3, 2], scheme="kaiming")
    for name in initializers.schemes():
        assert name in str(info.value)


# ----------------------------------------------------------------------------------------
# bad sizes
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[], [3]])
def test_sizes_too_short(key, sizes):
    with pytest.raises(ValueError, match="at least one layer width"):
        mlp.init(key, sizes)


@pytest.mark.parametrize(
    "sizes, error, where",
    [
        ([3, 0, 2], ValueError, "sizes[1]"),
        ([3, 4, -2], ValueError, "sizes[2]"),
        ([0, 4], ValueError, "sizes[0]"),
        ([3, 2.5], TypeError, "sizes[1]"),
        ([3, True, 2], TypeError, "sizes[1]"),
        ([3, 4, "2"], TypeError, "sizes[2]"),
    ],
)
def test_bad_size_entry_named(key, sizes, error, where):
    with pytest.raises(error) as info:
        mlp.init(key, sizes)
    assert where in str(info.value)
    with pytest.raises(error) as info:
        MLP(tuple(sizes))
    assert where in str(info.value)


@pytest.mark.parametrize("sizes", [3, "34", None])
def test_sizes_not_a_sequence(key, sizes):
    with pytest.raises(TypeError, match="sizes must be a sequence"):
        mlp.init(key, sizes)


def test_numpy_integer_sizes_accepted(key):
    params = mlp.init(key, [np.int64(3), np.int32(2)])
    assert params[0]["W"].shape == (3, 2)


# ----------------------------------------------------------------------------------------
# apply
# ----------------------------------------------------------------------------------------


def test_apply_single_example_agrees_with_batch(key):
    k1, k2 = jax.random.split(key)
    params, x = _params64(k1), _x64(k2)
    batch = mlp.apply(params, x, activation="tanh")
    assert batch.shape == (6, 2)
    for i in range(6):
        single = mlp.apply(params, x[i], activation="tanh")
        assert single.shape == (2,)
        np.testing.assert_allclose(single, batch[i], rtol=1e-12, atol=1e-14)


def test_apply_extra_leading_axes(key):
    k1, k2 = jax.random.split(key)
    params, x = _params64(k1), _x64(k2)
    y = mlp.apply(params, x.reshape(2, 3, 3))
    assert y.shape == (2, 3, 2)
    np.testing.assert_allclose(y, mlp.apply(params, x).reshape(2, 3, 2), rtol=1e-12, atol=1e-14)


def test_apply_matches_reference_with_per_layer_activations(key):
    k1, k2 = jax.random.split(key)
    params, x = _params64(k1), _x64(k2)
    y = mlp.apply(params, x, activation=("tanh", "relu"), output_activation="sigmoid")
    h = jnp.tanh(_affine(x, params[0]))
    h = jnp.maximum(_affine(h, params[1]), 0)
    expected = 1 / (1 + jnp.exp(-_affine(h, params[2])))
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    # The order matters: swapping the hidden activations changes the output.
    swapped = mlp.apply(params, x, activation=("relu", "tanh"), output_activation="sigmoid")
    assert not np.allclose(swapped, y)


def test_apply_default_is_relu_hidden_identity_output(key):
    k1, k2 = jax.random.split(key)
    params, x = _params64(k1), _x64(k2)
    h = jnp.maximum(_affine(x, params[0]), 0)
    expected = _affine(jnp.maximum(_affine(h, params[1]), 0), params[2])
    np.testing.assert_allclose(mlp.apply(params, x), expected, rtol=1e-12)


def test_apply_output_activation(key):
    k1, k2 = jax.random.split(key)
    params, x = _params64(k1), _x64(k2)
    probs = mlp.apply(params, x, output_activation="softmax")
    np.testing.assert_allclose(jnp.sum(probs, axis=-1), np.ones(6), rtol=1e-12)
    logits = mlp.apply(params, x)
    np.testing.assert_allclose(probs, jax.nn.softmax(logits, axis=-1), rtol=1e-12)
    leaky = activations.get("leaky_relu", negative_slope=0.3)
    out = mlp.apply(params, x, output_activation=leaky)
    np.testing.assert_allclose(out, jnp.where(logits >= 0, logits, 0.3 * logits), rtol=1e-12)


def test_apply_activation_sequence_wrong_length(key):
    params = mlp.init(key, SIZES)
    with pytest.raises(ValueError, match=r"one per hidden layer \(2\), got 3"):
        mlp.apply(params, jnp.ones((2, 3)), activation=("tanh", "relu", "relu"))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        mlp.apply(params, jnp.ones((2, 3)), activation="swish")


@pytest.mark.parametrize("shape", [(5, 4), (4,), (2, 3, 2)])
def test_apply_wrong_width_names_both_sizes(key, shape):
    params = mlp.init(key, [3, 2])
    with pytest.raises(ValueError) as info:
        mlp.apply(params, jnp.ones(shape, jnp.float32))
    message = str(info.value)
    assert "3 features" in message and f"got shape {shape}" in message


def test_apply_scalar_input_rejected(key):
    with pytest.raises(ValueError, match="3 features"):
        mlp.apply(mlp.init(key, [3, 2]), jnp.float32(1.0))


@pytest.mark.parametrize("dtype", ["int32", "bool"])
def test_apply_integer_input_type_error(key, dtype):
    with pytest.raises(TypeError, match="floating-point"):
        mlp.apply(mlp.init(key, [3, 2]), jnp.ones((4, 3), dtype))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda p: p[0], TypeError, "non-empty list"),
        (lambda p: [], TypeError, "non-empty list"),
        (lambda p: [{"W": p[0]["W"]}, p[1]], TypeError, r"params\[0\]"),
        (lambda p: [p[0], {"W": p[1]["W"], "b": p[1]["b"], "c": 1.0}], TypeError, r"params\[1\]"),
        (lambda p: [p[0], (p[1]["W"], p[1]["b"])], TypeError, r"params\[1\]"),
        (lambda p: [{"W": p[0]["W"][0], "b": p[0]["b"]}, p[1]], ValueError, r"params\[0\]"),
        (lambda p: [{"W": p[0]["W"], "b": p[0]["b"][:2]}, p[1]], ValueError, r"params\[0\]"),
        (lambda p: [p[0], {"W": p[1]["W"][:3], "b": p[1]["b"]}], ValueError, r"params\[1\]\['W'\] takes 3 inputs but layer 0 gives 5"),
    ],
)
def test_malformed_params(key, make, error, match):
    params = mlp.init(key, SIZES)
    bad = make(params)
    with pytest.raises(error, match=match):
        mlp.check_params(bad)
    with pytest.raises(error, match=match):
        mlp.apply(bad, jnp.ones((2, 3)))


def test_check_params_accepts_valid(key):
    assert mlp.check_params(mlp.init(key, SIZES)) is None


def test_jit_equals_no_jit(key):
    k1, k2 = jax.random.split(key)
    params, x = _params64(k1), _x64(k2)
    fn = lambda p, x: mlp.apply(p, x, activation=("tanh", "softplus"), output_activation="sigmoid")
    np.testing.assert_allclose(jax.jit(fn)(params, x), fn(params, x), rtol=1e-12)


def test_no_retrace_on_second_jitted_call(key):
    traces = []

    @jax.jit
    def fn(params, x):
        traces.append(None)
        return mlp.apply(params, x, activation="tanh")

    k1, k2, k3 = jax.random.split(key, 3)
    fn(mlp.init(k1, SIZES), jnp.ones((6, 3), jnp.float32))
    y = fn(mlp.init(k2, SIZES), jax.random.normal(k3, (6, 3), jnp.float32))
    assert len(traces) == 1
    assert y.shape == (6, 2)
    fn(mlp.init(k2, SIZES), jnp.ones((7, 3), jnp.float32))  # a new shape does retrace
    assert len(traces) == 2


def test_vmap_over_ensemble_of_params(key):
    keys = jax.random.split(key, 4)
    sizes = SIZES
    # Glorot (uniform) compiles much faster than the truncated normal of He.
    ensemble = jax.jit(jax.vmap(lambda k: mlp.init(k, sizes, scheme="glorot", dtype=jnp.float64)))(keys)
    assert ensemble[0]["W"].shape == (4, 3, 5) and ensemble[2]["b"].shape == (4, 2)
    x = _x64(jax.random.key(9))
    ys = jax.jit(jax.vmap(lambda p: mlp.apply(p, x, activation="tanh")))(ensemble)
    assert ys.shape == (4, 6, 2)
    for i in (0, 3):
        single = mlp.init(keys[i], sizes, scheme="glorot", dtype=jnp.float64)
        np.testing.assert_allclose(ensemble[0]["W"][i], single[0]["W"], rtol=0, atol=0)
        np.testing.assert_allclose(ys[i], mlp.apply(single, x, activation="tanh"), rtol=1e-12)
    assert not np.allclose(ys[0], ys[1])


# ----------------------------------------------------------------------------------------
# The MLP model
# ----------------------------------------------------------------------------------------


def test_mlp_hashable_and_equal():
    a = MLP((2, 8, 1), activation="tanh")
    b = MLP([2, 8, 1], activation="tanh")
    assert a == b and hash(a) == hash(b)
    assert a.sizes == (2, 8, 1)
    assert MLP((2, 8, 1), activation="relu") != a
    assert MLP((2, 8, 2), activation="tanh") != a
    c = MLP((2, 4, 4, 1), activation=["tanh", "relu"])
    d = MLP((2, 4, 4, 1), activation=("tanh", "relu"))
    assert c == d and hash(c) == hash(d)
    e = MLP((2, 4, 1), activation=activations.get("leaky_relu", negative_slope=0.2))
    f = MLP((2, 4, 1), activation=activations.get("leaky_relu", negative_slope=0.2))
    assert e == f and hash(e) == hash(f)
    assert len({a, b, c, d, e, f}) == 3


def test_mlp_is_frozen():
    model = MLP((2, 3, 1))
    with pytest.raises(AttributeError):
        model.sizes = (2, 4, 1)


def test_mlp_static_arg_no_retrace(key):
    traces = []

    def forward(model, params, x):
        traces.append(None)
        return model.apply(params, (), x)[0]

    jitted = jax.jit(forward, static_argnums=0)
    params, _ = MLP((2, 8, 1), activation="tanh").init(key)
    x = jnp.ones((3, 2), jnp.float32)
    y1 = jitted(MLP((2, 8, 1), activation="tanh"), params, x)
    y2 = jitted(MLP([2, 8, 1], activation="tanh"), params, 2 * x)  # an equal, new instance
    assert len(traces) == 1
    assert not np.allclose(y1, y2)
    jitted(MLP((2, 8, 1), activation="relu"), params, x)  # a different config does retrace
    assert len(traces) == 2


def test_mlp_closure_no_retrace(key):
    traces = []
    model = MLP((3, 5, 2), activation=("tanh",), output_activation="sigmoid")
    params, state = model.init(key)

    @jax.jit
    def forward(params, x):
        traces.append(None)
        return model.apply(params, state, x)[0]

    forward(params, jnp.ones((5, 3), jnp.float32))
    forward(params, jnp.zeros((5, 3), jnp.float32))
    assert len(traces) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "relux"}, "unknown activation 'relux'"),
        ({"output_activation": "sigmod"}, "unknown activation 'sigmod'"),
        ({"activation": ("tanh", "relu")}, r"one per hidden layer \(1\), got 2"),
        ({"scheme": "kaiming"}, "unknown initialisation scheme 'kaiming'"),
    ],
)
def test_mlp_invalid_config_fails_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP((2, 4, 1), **kwargs)


def test_mlp_invalid_scheme_lists_schemes():
    with pytest.raises(ValueError) as info:
        MLP((2, 4, 1), scheme="bogus")
    for name in initializers.schemes():
        assert name in str(info.value)


@pytest.mark.parametrize("scheme", ["he", "glorot", "lecun"])
def test_mlp_init_and_apply_match_functions(key, scheme):
    model = MLP(SIZES, activation=("tanh", "relu"), output_activation="sigmoid", scheme=scheme)
    params, state = model.init(key, dtype=jnp.float64)
    assert state == ()
    expected = mlp.init(key, list(SIZES), scheme=scheme, dtype=jnp.float64)
    assert jax.tree.structure(params) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(expected)):
        assert a.dtype == jnp.float64
        np.testing.assert_array_equal(a, b)
    x = _x64(jax.random.key(5))
    y, new_state = model.apply(params, state, x)
    assert new_state == ()
    np.testing.assert_allclose(
        y, mlp.apply(params, x, activation=("tanh", "relu"), output_activation="sigmoid"), rtol=1e-12
    )
    # key and train are accepted and change nothing.
    y_train, _ = model.apply(params, state, x, key=jax.random.key(1), train=True)
    np.testing.assert_array_equal(y_train, y)
    assert [a.name for a in model.activations()] == ["tanh", "relu", "sigmoid"]


def test_mlp_default_dtype_is_float32(key):
    params, _ = MLP((2, 3, 1)).init(key)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))


def test_sizes_of_round_trips(key):
    params, _ = MLP(SIZES).init(key)
    assert mlp.sizes_of(params) == SIZES
    assert all(isinstance(s, int) for s in mlp.sizes_of(params))


def test_sizes_of_rejects_malformed(key):
    params = mlp.init(key, SIZES)
    with pytest.raises(ValueError, match=r"params\[1\]"):
        mlp.sizes_of([params[0], {"W": jnp.ones((4, 2)), "b": jnp.ones(2)}])


# ----------------------------------------------------------------------------------------
# initializers.weights
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fan_in, fan_out, error, match",
    [
        (0, 4, ValueError, "fan_in"),
        (-3, 4, ValueError, "fan_in"),
        (3, 0, ValueError, "fan_out"),
        (2.5, 4, TypeError, "fan_in"),
        (3, True, TypeError, "fan_out"),
        (3, "4", TypeError, "fan_out"),
    ],
)
def test_weights_bad_fans(key, fan_in, fan_out, error, match):
    with pytest.raises(error, match=match):
        initializers.weights(key, fan_in, fan_out)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_, jnp.uint8])
def test_weights_non_float_dtype(key, dtype):
    with pytest.raises(TypeError, match="floating dtype"):
        initializers.weights(key, 3, 4, dtype=dtype)
    with pytest.raises(TypeError, match="floating dtype"):
        mlp.init(key, [3, 4], dtype=dtype)


@pytest.mark.parametrize("std", [0.0, -0.1])
def test_weights_normal_nonpositive_std(key, std):
    with pytest.raises(ValueError, match="std must be positive"):
        initializers.weights(key, 3, 4, "normal", std=std)


def test_weights_unknown_scheme(key):
    with pytest.raises(ValueError, match="known schemes: .*glorot.*he.*lecun.*normal"):
        initializers.weights(key, 3, 4, "orthogonal")


def test_weights_shape_and_dtype(key):
    w = initializers.weights(key, 7, 3, "glorot", dtype=jnp.float64)
    assert w.shape == (7, 3) and w.dtype == jnp.float64
    assert initializers.weights(key, 7, 3, "normal", std=2.0).dtype == jnp.float32
