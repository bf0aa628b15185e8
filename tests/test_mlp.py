"""Tests of fnn.mlp and fnn.initializers: shapes, schemes, validation, apply, jit/vmap, the MLP model."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import activations, batch_norm, dropout, initializers, mlp
from fnn.models import MLP

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
    for layer, n_in, n_out in zip(params, sizes[:-1], sizes[1:], strict=True):
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
    for la, lb, lc in zip(a, b, c, strict=True):
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
        (
            lambda p: [p[0], {"W": p[1]["W"][:3], "b": p[1]["b"]}],
            ValueError,
            r"params\[1\]\['W'\] takes 3 inputs but layer 0 gives 5",
        ),
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

    def fn(p, x):
        return mlp.apply(p, x, activation=("tanh", "softplus"), output_activation="sigmoid")

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
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(expected), strict=True):
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


# ----------------------------------------------------------------------------------------
# The MLP model with dropout and batch normalisation
# ----------------------------------------------------------------------------------------


def test_default_fields_leave_the_model_as_it_was(key):
    model = MLP(SIZES)
    assert (model.dropout, model.input_dropout, model.batch_norm) == (0.0, 0.0, False)
    assert model == MLP(SIZES, dropout=0, input_dropout=0.0, batch_norm=False)
    assert hash(model) == hash(MLP(SIZES, dropout=0.0))
    params, state = model.init(key, dtype=jnp.float64)
    assert state == ()
    assert all(set(layer) == {"W", "b"} for layer in params)
    x = _x64(jax.random.key(5))
    y, new_state = model.apply(params, state, x, key=jax.random.key(1), train=True)
    assert new_state == ()
    np.testing.assert_array_equal(y, mlp.apply(params, x))


def test_batch_norm_init_adds_gamma_and_beta_to_hidden_layers_only(key):
    model = MLP(SIZES, batch_norm=True)
    params, state = model.init(key, dtype=jnp.float64)
    plain = mlp.init(key, SIZES, dtype=jnp.float64)
    assert [sorted(layer) for layer in params] == [["W", "b", "beta", "gamma"]] * 2 + [["W", "b"]]
    for layer, ref, width in zip(params, plain, SIZES[1:], strict=True):
        np.testing.assert_array_equal(layer["W"], ref["W"])  # the same weights as without batch norm
        if "gamma" in layer:
            np.testing.assert_array_equal(layer["gamma"], np.ones(width))
            np.testing.assert_array_equal(layer["beta"], np.zeros(width))
    assert isinstance(state, tuple) and len(state) == 2
    assert all(isinstance(s, batch_norm.BatchNormState) for s in state)
    assert [s.mean.shape for s in state] == [(5,), (4,)]
    assert mlp.sizes_of(params) == SIZES
    mlp.check_params(params)
    # A dropout-only model keeps the plain parameters and the empty state.
    params_d, state_d = MLP(SIZES, dropout=0.5).init(key, dtype=jnp.float64)
    assert state_d == () and all(set(layer) == {"W", "b"} for layer in params_d)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"dropout": -0.1}, ValueError, r"dropout must lie in \[0, 1\), got -0.1"),
        ({"dropout": 1.0}, ValueError, r"dropout must lie in \[0, 1\), got 1.0"),
        ({"input_dropout": 1.5}, ValueError, r"input_dropout must lie in \[0, 1\), got 1.5"),
        ({"dropout": "0.5"}, TypeError, "dropout must be a real number"),
        ({"batch_norm": 1}, TypeError, "batch_norm must be a bool"),
        ({"bn_momentum": 1.0}, ValueError, r"bn_momentum must lie in \[0, 1\)"),
        ({"bn_momentum": -0.5}, ValueError, r"bn_momentum must lie in \[0, 1\)"),
        ({"bn_eps": 0.0}, ValueError, "bn_eps must be positive"),
    ],
)
def test_mlp_invalid_regularisation_fails_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        MLP((2, 4, 1), **kwargs)


def test_dropout_and_batch_norm_need_a_hidden_layer():
    with pytest.raises(ValueError, match=r"dropout acts on hidden layers.*input_dropout"):
        MLP((3, 2), dropout=0.5)
    with pytest.raises(ValueError, match="batch_norm acts on hidden layers"):
        MLP((3, 2), batch_norm=True)
    MLP((3, 2), input_dropout=0.5)  # the input has units to drop


def test_regularised_mlp_hashable_and_static(key):
    a = MLP((2, 8, 1), dropout=0.2, batch_norm=True)
    assert a == MLP([2, 8, 1], dropout=0.2, batch_norm=True) and hash(a) == hash(
        MLP((2, 8, 1), dropout=0.2, batch_norm=True)
    )
    assert a != MLP((2, 8, 1), dropout=0.3, batch_norm=True) and a != MLP((2, 8, 1), dropout=0.2)
    traces = []

    def forward(model, params, state, x):
        traces.append(None)
        return model.apply(params, state, x)[0]

    jitted = jax.jit(forward, static_argnums=0)
    params, state = a.init(key)
    jitted(a, params, state, jnp.ones((3, 2)))
    jitted(MLP((2, 8, 1), dropout=0.2, batch_norm=True), params, state, jnp.zeros((3, 2)))
    assert len(traces) == 1


def _reference_forward(model, params, state, x, key, train):
    """Dropout and batch norm composed by hand from their modules: the trusted side."""
    *hidden_acts, out_act = model.activations()
    a = dropout.dropout(x, model.input_dropout, key=jax.random.fold_in(key, 0), train=train)
    new_state = []
    for i, (layer, f) in enumerate(zip(params[:-1], hidden_acts, strict=True)):
        z = _affine(a, layer)
        if model.batch_norm:
            z, s = batch_norm.apply(
                {"gamma": layer["gamma"], "beta": layer["beta"]},
                state[i],
                z,
                train=train,
                momentum=model.bn_momentum,
                eps=model.bn_eps,
            )
            new_state.append(s)
        a = dropout.dropout(f(z), model.dropout, key=jax.random.fold_in(key, i + 1), train=train)
    return out_act(_affine(a, params[-1])), tuple(new_state)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"dropout": 0.3},
        {"batch_norm": True},
        {"dropout": 0.4, "input_dropout": 0.2, "batch_norm": True, "bn_momentum": 0.7},
    ],
    ids=["dropout", "batch_norm", "both"],
)
def test_regularised_apply_matches_its_modules_composed_by_hand(key, kwargs, train):
    model = MLP(SIZES, activation=("tanh", "relu"), **kwargs)
    params, state = model.init(jax.random.key(1), dtype=jnp.float64)
    params = jax.tree.map(lambda p: p + 0.1, params)
    x = _x64(jax.random.key(2))
    y, new_state = model.apply(params, state, x, key=key, train=train)
    ref_y, ref_state = _reference_forward(model, params, state, x, key, train)
    np.testing.assert_allclose(y, ref_y, rtol=1e-13, atol=1e-14)
    if model.batch_norm and train:
        for s, r in zip(new_state, ref_state, strict=True):
            np.testing.assert_allclose(s.mean, r.mean, rtol=1e-13)
            np.testing.assert_allclose(s.var, r.var, rtol=1e-13)
        assert not np.allclose(new_state[0].var, state[0].var)
    else:
        assert new_state is state  # evaluation, or nothing to update


def test_dropout_in_the_model_needs_a_key_only_in_training(key):
    model = MLP(SIZES, dropout=0.5)
    params, state = model.init(key, dtype=jnp.float64)
    x = _x64(jax.random.key(2))
    with pytest.raises(ValueError, match=r"dropout needs a PRNG key in training mode"):
        model.apply(params, state, x, train=True)
    y1, _ = model.apply(params, state, x, key=jax.random.key(3), train=True)
    y2, _ = model.apply(params, state, x, key=jax.random.key(3), train=True)
    y3, _ = model.apply(params, state, x, key=jax.random.key(4), train=True)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(y1, y3)
    y_raw, _ = model.apply(params, state, x, key=jax.random.PRNGKey(3), train=True)  # a raw uint32[2] key
    np.testing.assert_array_equal(y_raw, y1)
    # Evaluation is deterministic and is the network without dropout.
    y_eval, _ = model.apply(params, state, x)
    np.testing.assert_array_equal(y_eval, mlp.apply(params, x))
    with pytest.raises(TypeError, match="train must be a Python bool"):
        model.apply(params, state, x, key=key, train=jnp.array(True))


def test_batch_norm_model_evaluation_is_per_example(key):
    model = MLP(SIZES, batch_norm=True)
    params, state = model.init(key, dtype=jnp.float64)
    x = _x64(jax.random.key(2))
    for k in jax.random.split(jax.random.key(3), 3):  # move the running statistics
        state = model.apply(params, state, x + jax.random.normal(k, x.shape, jnp.float64), train=True)[1]
    y, same = model.apply(params, state, x)
    assert same is state
    for i in (0, 4):
        np.testing.assert_allclose(model.apply(params, state, x[i])[0], y[i], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(model.apply(params, state, x[i : i + 2])[0][0], y[i], rtol=1e-13, atol=1e-14)


def test_params_and_state_must_fit_the_model(key):
    bn = MLP(SIZES, batch_norm=True)
    params, state = bn.init(key)
    plain_params, _ = MLP(SIZES).init(key)
    x = jnp.ones((2, 3))
    with pytest.raises(ValueError, match=r"params\[0\] lacks 'gamma' and 'beta'"):
        bn.apply(plain_params, state, x)
    with pytest.raises(ValueError, match=r"params\[0\] holds 'gamma' and 'beta'"):
        MLP(SIZES, dropout=0.1).apply(params, (), x)
    with pytest.raises(ValueError, match=r"one BatchNormState per hidden layer \(2\)"):
        bn.apply(params, (), x)
    with pytest.raises(
        ValueError, match=r"params\[1\]\['W'\] must have shape \(5, 5\) for layer 1 .* \(3, 5, 5, 2\), got \(5, 4\)"
    ):
        MLP((3, 5, 5, 2), batch_norm=True).apply(params, state, x)
    # The plain functions would ignore gamma and beta, so they refuse them.
    with pytest.raises(ValueError, match=r"params\[0\] holds batch-normalisation parameters"):
        mlp.apply(params, x)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (
            lambda p: [{**p[0], "gamma": p[0]["gamma"][:2]}, *p[1:]],
            ValueError,
            r"params\[0\]\['gamma'\] must have shape \(5,\)",
        ),
        (
            lambda p: [{k: v for k, v in p[0].items() if k != "beta"}, *p[1:]],
            TypeError,
            r"params\[0\].*'gamma' and 'beta'",
        ),
        (lambda p: [p[0], {**p[1], "beta": jnp.zeros((1, 4))}, p[2]], ValueError, r"params\[1\]\['beta'\]"),
    ],
)
def test_check_params_with_batch_norm_leaves(key, make, error, match):
    params, _ = MLP(SIZES, batch_norm=True).init(key)
    with pytest.raises(error, match=match):
        mlp.check_params(make(params))


@pytest.mark.slow
def test_trainer_trains_a_dropout_batch_norm_mlp(key):
    from fnn.train import Trainer

    x = jax.random.normal(jax.random.key(1), (48, 4), jnp.float32)
    y = (x[:, 0] > 0).astype(jnp.int32) + (x[:, 1] > 0).astype(jnp.int32)
    model = MLP((4, 16, 3), dropout=0.2, batch_norm=True)
    trainer = Trainer(model, loss="cross_entropy", epochs=4, batch_size=16)
    state = trainer.init(key, {"learning_rate": 1e-2})
    new, history = trainer.fit(state, (x, y), (x, y), {"learning_rate": 1e-2})
    assert np.all(np.isfinite(np.asarray(history.train_loss))) and int(history.nonfinite_epoch) == -1
    assert float(history.train_loss[-1]) < float(history.train_loss[0])
    moved = new.model_state[0]
    assert moved.mean.dtype == jnp.float32
    assert not np.allclose(moved.mean, 0) and not np.allclose(moved.var, 1)
    # Evaluation is deterministic: no key, the running statistics, the same output twice.
    first = trainer.evaluate(new.params, new.model_state, x, y)
    second = trainer.evaluate(new.params, new.model_state, x, y)
    np.testing.assert_array_equal(first, second)
    out, after = model.apply(new.params, new.model_state, x)
    assert after is new.model_state and np.all(np.isfinite(np.asarray(out)))


# ----------------------------------------------------------------------------------------
# The model checks parameters against its own sizes on every path, and takes example weights.
# ----------------------------------------------------------------------------------------

# Every path of the model: plain (the functions of fnn.nn.mlp), dropout, batch normalisation.
MODEL_KINDS = [{}, {"dropout": 0.3}, {"batch_norm": True}]


def _every_path(model, params, state, x, key):
    """apply, forward and backprop of ``model`` in training mode, each by itself."""
    target = jnp.zeros((*x.shape[:-1], model.sizes[-1]), x.dtype)
    return [
        lambda: model.apply(params, state, x, key=key, train=True),
        lambda: model.forward(params, state, x, key=key, train=True),
        lambda: model.backprop(params, state, x, target, "mse", key=key),
    ]


@pytest.mark.parametrize("kwargs", MODEL_KINDS, ids=["plain", "dropout", "batch_norm"])
def test_params_of_other_sizes_are_refused_on_every_path(key, kwargs):
    model, other = MLP((3, 4, 2), **kwargs), MLP((3, 5, 2), **kwargs)
    params, state = other.init(key, dtype=jnp.float64)
    x = _x64(jax.random.key(2))
    for run in _every_path(model, params, state, x, jax.random.key(3)):
        with pytest.raises(ValueError, match=r"params\[0\]\['W'\] must have shape \(3, 4\) for layer 0 .*got \(3, 5\)"):
            run()
    # A layer short: the error counts layers, not activations.
    deep = MLP((3, 4, 4, 2), **kwargs)
    own, own_state = model.init(key, dtype=jnp.float64)
    for run in _every_path(deep, own, own_state, x, key):
        with pytest.raises(ValueError, match=r"params must hold 3 layers .*\(3, 4, 4, 2\), got 2"):
            run()


def test_params_are_checked_at_trace_time_under_jit_and_vmap(key):
    model, other = MLP((3, 4, 2), batch_norm=True), MLP((3, 5, 2), batch_norm=True)
    x = _x64(jax.random.key(2))

    def stack(tree):  # three members
        return jax.tree.map(lambda a: jnp.stack([a, a + 1, a - 1]), tree)

    stacked = stack(model.init(key, dtype=jnp.float64))
    run = jax.jit(jax.vmap(lambda p, s: model.apply(p, s, x, train=True)))
    y, _ = run(*stacked)  # one member's shapes inside vmap: accepted
    assert y.shape == (3, 6, 2)
    wrong = stack(other.init(key, dtype=jnp.float64))
    with pytest.raises(ValueError, match=r"params\[0\]\['W'\] must have shape \(3, 4\).*got \(3, 5\)"):
        run(*wrong)
    wrong_gamma = [{**wrong[0][0], "gamma": stacked[0][0]["gamma"][:, :3]}, wrong[0][1]]
    with pytest.raises(ValueError, match=r"params\[0\]\['gamma'\] must have shape \(5,\)"):
        jax.vmap(lambda p, s: other.apply(p, s, x, train=True))(wrong_gamma, wrong[1])


def test_plain_model_ignores_weights_and_checks_their_shape(key):
    model = MLP(SIZES)
    params, state = model.init(key, dtype=jnp.float64)
    x = _x64(jax.random.key(2))
    w = jnp.array([1.0, 0.0, 2.0, 1.0, 0.0, 1.0], jnp.float64)
    np.testing.assert_array_equal(model.apply(params, state, x, weights=w)[0], model.apply(params, state, x)[0])
    with pytest.raises(ValueError, match=r"weights must hold one weight per example of x, shape \(6,\)"):
        model.apply(params, state, x, weights=w[:5])


@pytest.mark.slow
def test_batch_norm_model_with_zero_weights_equals_the_model_on_the_rest(key):
    model = MLP((3, 4, 2), batch_norm=True)
    params, state = model.init(key, dtype=jnp.float64)
    params = jax.tree.map(lambda p: p + 0.1, params)
    x = _x64(jax.random.key(2))
    w = jnp.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0], jnp.float64)
    kept = np.flatnonzero(np.asarray(w))
    y, new = model.apply(params, state, x, train=True, weights=w)
    y_kept, new_kept = model.apply(params, state, x[kept], train=True)
    np.testing.assert_allclose(y[kept], y_kept, rtol=1e-13, atol=1e-14)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(new_kept), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    # Without the weights the padding rows move the statistics: the check above can fail.
    y_all, _ = model.apply(params, state, x, train=True)
    assert not np.allclose(y_all[kept], y_kept)
