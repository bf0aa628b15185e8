"""Tests for fnn.activations: hand-written backward steps against jax autodiff, and more.

Every registered activation (and a few parameterised variants) is held to the same checks:
its backward step agrees with ``jax.grad``/``jax.vjp`` in float64, its derivative at a kink
is ``jax.grad``'s, finite differences agree away from kinks, dtypes are kept, and
jit == no-jit without retracing.
"""

import functools

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from jax.test_util import check_grads

from fnn import activations as A
from fnn import checking

# (name, params): every registry entry with its defaults, plus non-default parameters.
CASES = [(name, {}) for name in A.names()] + [
    ("leaky_relu", {"negative_slope": 0.2}),
    ("rectifier", {"alpha": 0.3}),
    ("rectifier", {"alpha": -1.0}),
    ("rbf", {"gamma": 2.5}),
]
CASE_IDS = [name + "".join(f"-{k}={v}" for k, v in params.items()) for name, params in CASES]
NON_ELEMENTWISE = {"softmax", "log_softmax"}

# Where each activation is not differentiable, and its documented derivative there.
KINKS = {
    "step": ((0.0,), 0.0),
    "relu": ((0.0,), 0.0),
    "rectifier": ((0.0,), 1.0),
    "leaky_relu": ((0.0,), 1.0),
    "abs": ((0.0,), 1.0),
    "hard_tanh": ((-1.0, 1.0), 1.0),
}
SMOOTH = {"sigmoid", "tanh", "softplus", "identity", "rbf", "softmax", "log_softmax"}
KINK_CASES = [(n, p) for n, p in CASES if n in KINKS]
KINK_IDS = [i for i, (n, _) in zip(CASE_IDS, CASES) if n in KINKS]

# XLA on CPU flushes subnormals to zero, which is not what these properties are about.
FLOATS = st.floats(-50.0, 50.0, allow_nan=False, allow_subnormal=False)
ARRAYS = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=3), elements=FLOATS)
PROPERTY = settings(max_examples=20, deadline=None)

cases = pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)


def _z(key: jax.Array, dtype=jnp.float64) -> jax.Array:
    """Pre-activations [7, 5]: large magnitudes and the kinks in row 0, N(0, 4^2) elsewhere."""
    z = 4.0 * jax.random.normal(key, (7, 5), dtype=jnp.float64)
    z = z.at[0].set(jnp.array([30.0, -30.0, 0.0, 1.0, -1.0]))
    return z.astype(dtype)


def _elementwise_grad(act: A.Activation):
    """f'(z) entry by entry from jax autodiff of the same forward."""
    return jax.vmap(jax.vmap(jax.grad(act)))


def _vjp_reference(act: A.Activation, z: jax.Array, g: jax.Array):
    """``(f(z), J^T g)`` from jax autodiff of the same forward."""
    a, pullback = jax.vjp(act, z)
    return a, pullback(g)[0]


def _assert_rel_close(actual, expected, rtol: float) -> None:
    """Elementwise relative error <= rtol, with a floor of 16 ulps of the array's largest entry.

    The floor is needed where a backward step cancels (softmax's g - <s, g>, or tanh' near
    saturation, which jax's reverse mode computes as (1 - a) + (1 - a) a): there two correct
    float64 evaluations differ by a few ulps of the inputs, far more than rtol of the result.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    floor = 16 * np.finfo(expected.dtype).eps * np.max(np.abs(expected), initial=0.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=floor)


def test_every_name_is_classified():
    # A new activation must declare its kinks (or smoothness) to be tested at them.
    assert set(KINKS) | SMOOTH == set(A.names())
    assert not set(KINKS) & SMOOTH
    assert {n for n, _ in CASES} == set(A.names())


# ----------------------------------------------------------------------------------------
# Backward step against jax autodiff.
# ----------------------------------------------------------------------------------------


@cases
def test_backward_matches_autodiff(name, params, key):
    act = A.get(name, **params)
    kz, kg = jax.random.split(key)
    z = _z(kz)
    g = jax.random.normal(kg, z.shape, dtype=jnp.float64)
    # The references are jitted only to compile once instead of op by op.
    a, expected_vjp = jax.jit(lambda z, g: _vjp_reference(act, z, g))(z, g)
    _assert_rel_close(act(z), a, rtol=1e-14)
    if name in NON_ELEMENTWISE:
        assert not act.elementwise
    else:
        assert act.elementwise
        _assert_rel_close(act.derivative(z), jax.jit(_elementwise_grad(act))(z), rtol=1e-12)
    _assert_rel_close(act.vjp(z, a, g), expected_vjp, rtol=1e-12)


@pytest.mark.parametrize(("name", "params"), KINK_CASES, ids=KINK_IDS)
def test_derivative_at_kinks_is_jax_convention(name, params):
    act = A.get(name, **params)
    kinks, documented = KINKS[name]
    z = jnp.array(kinks, dtype=jnp.float64)
    derivative = act.derivative(z)
    np.testing.assert_array_equal(derivative, jax.vmap(jax.grad(act))(z))
    np.testing.assert_array_equal(derivative, jnp.full_like(z, documented))


def _with_handwritten_backward(act: A.Activation):
    """``act`` whose reverse-mode derivative is the hand-written ``act.vjp``, not jax's."""

    @jax.custom_vjp
    def f(z):
        return act(z)

    def forward(z):
        a = act(z)
        return a, (z, a)

    def backward(residuals, g):
        z, a = residuals
        return (act.vjp(z, a, g),)

    f.defvjp(forward, backward)
    return f


@pytest.mark.parametrize(
    ("name", "params"),
    [c for c in CASES if c[0] != "step"],
    ids=[i for i, c in zip(CASE_IDS, CASES) if c[0] != "step"],
)
def test_finite_differences_away_from_kinks(name, params, key):
    act = A.get(name, **params)
    z = jax.random.uniform(key, (7, 5), dtype=jnp.float64, minval=-3.0, maxval=3.0)
    kinks = KINKS[name][0] if name in KINKS else ()
    z = np.asarray(z)
    for k in kinks:
        z = np.where(np.abs(z - k) <= 0.1, k + 0.5, z)
    for k in kinks:
        assert np.min(np.abs(z - k)) > 0.1
    # jax's derivative of the forward, then the hand-written one, against finite differences.
    check_grads(act, (z,), order=1, modes=("fwd", "rev"))
    check_grads(_with_handwritten_backward(act), (z,), order=1, modes=("rev",))


def test_step_has_zero_derivative(key):
    act = A.get("step")
    z = _z(key)
    np.testing.assert_array_equal(act.derivative(z), jnp.zeros_like(z))
    np.testing.assert_array_equal(act(z), (z >= 0).astype(z.dtype))


# ----------------------------------------------------------------------------------------
# Identities between activations.
# ----------------------------------------------------------------------------------------


@jax.jit
def _identities(z):
    """Both sides of each elementwise identity; one jitted function so each shape compiles once."""
    return {
        "tanh": (A.tanh(z), 2 * A.sigmoid(2 * z) - 1),
        "softplus": (A.softplus(z) - A.softplus(-z), z),
        "relu": (A.get("relu")(z), A.get("rectifier")(z)),
        "abs": (A.absolute(z), A.get("abs")(z)),
        "sigmoid": (A.sigmoid(-z), 1 - A.sigmoid(z)),
    }


@functools.partial(jax.jit, static_argnums=2)
def _softmaxes(z, c, axis):
    return A.softmax(z, axis=axis), A.softmax(z + c, axis=axis), A.log_softmax(z, axis=axis)


@PROPERTY
@given(ARRAYS)
def test_tanh_is_shifted_sigmoid(z):
    np.testing.assert_allclose(*_identities(z)["tanh"], rtol=1e-12, atol=1e-15)


@PROPERTY
@given(st.data(), ARRAYS, FLOATS)
def test_softmax_sums_to_one_and_ignores_shift(data, z, c):
    axis = data.draw(st.integers(-z.ndim, z.ndim - 1), label="axis")
    s, shifted, _ = _softmaxes(z, c, axis)
    assert s.shape == z.shape
    assert bool(jnp.all(s >= 0))
    np.testing.assert_allclose(np.sum(s, axis=axis), 1.0, rtol=1e-14)
    np.testing.assert_allclose(shifted, s, rtol=1e-10, atol=1e-15)


@PROPERTY
@given(st.data(), ARRAYS)
def test_log_softmax_is_log_of_softmax(data, z):
    axis = data.draw(st.integers(-z.ndim, z.ndim - 1), label="axis")
    s, _, log_s = map(np.asarray, _softmaxes(z, 0.0, axis))
    not_tiny = s > 1e-200
    assert not_tiny.any()
    np.testing.assert_allclose(log_s[not_tiny], np.log(s[not_tiny]), rtol=1e-12, atol=1e-14)


@PROPERTY
@given(ARRAYS)
def test_softplus_difference_is_identity(z):
    np.testing.assert_allclose(*_identities(z)["softplus"], rtol=1e-12, atol=1e-14)


@PROPERTY
@given(ARRAYS)
def test_relu_is_rectifier_with_zero_slope(z):
    relu, rectifier = _identities(z)["relu"]
    np.testing.assert_array_equal(relu, np.maximum(z, 0.0))
    np.testing.assert_array_equal(rectifier, relu)


@PROPERTY
@given(ARRAYS)
def test_absolute_is_abs(z):
    absolute, named = _identities(z)["abs"]
    np.testing.assert_array_equal(absolute, np.abs(z))
    np.testing.assert_array_equal(named, np.abs(z))


@PROPERTY
@given(ARRAYS)
def test_sigmoid_is_odd_about_one_half(z):
    np.testing.assert_allclose(*_identities(z)["sigmoid"], rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------------------
# Extreme values.
# ----------------------------------------------------------------------------------------


def test_softmax_of_large_logits():
    z = jnp.array([1000.0, 0.0])
    s = A.softmax(z)
    np.testing.assert_array_equal(s, [1.0, 0.0])
    back = A.get("softmax").vjp(z, s, jnp.array([1.0, -1.0]))
    assert bool(jnp.all(jnp.isfinite(back)))


def test_sigmoid_of_large_inputs():
    act = A.get("sigmoid")
    z = jnp.array([100.0, -100.0])
    a, d = act(z), act.derivative(z)
    assert bool(jnp.all(jnp.isfinite(a))) and bool(jnp.all(jnp.isfinite(d)))
    np.testing.assert_allclose(a, [1.0, np.exp(-100.0)], rtol=1e-12)
    assert bool(jnp.all(d >= 0))
    np.testing.assert_array_equal(d, jax.vmap(jax.grad(act))(z))


def test_softplus_of_large_inputs():
    act = A.get("softplus")
    z = jnp.array([1000.0, -1000.0])
    np.testing.assert_allclose(act(z), [1000.0, 0.0], rtol=1e-15, atol=0.0)
    np.testing.assert_array_equal(act.derivative(z), [1.0, 0.0])


def test_log_softmax_with_minus_infinity():
    act = A.get("log_softmax")
    z = jnp.array([0.0, -jnp.inf, 1.0])
    log_s = act(z)
    np.testing.assert_array_equal(jnp.isneginf(log_s), [False, True, False])
    assert bool(jnp.all(jnp.isfinite(log_s[jnp.array([0, 2])])))
    g = jnp.array([1.0, 0.0, -2.0])
    back = act.vjp(z, log_s, g)
    assert bool(jnp.all(jnp.isfinite(back)))
    _, pullback = jax.vjp(act, z)
    np.testing.assert_allclose(back, pullback(g)[0], rtol=1e-12, atol=0.0)


# A row of logits that are all -inf has no softmax: refused eagerly, NaN in that row under jit,
# an error inside fnn.checking.checked; the other rows are untouched.
MINUS_INF_ROW = "z must have a logit above -inf in every slice along axis -1, got a slice whose logits are all -inf"


def _logits_with_a_row_of_minus_infs():
    return jnp.array([[0.0, 1.0, -2.0], [-jnp.inf, -jnp.inf, -jnp.inf], [3.0, -jnp.inf, 0.5]])


@pytest.mark.parametrize("name", sorted(NON_ELEMENTWISE))
def test_all_minus_inf_row_is_refused_eagerly(name):
    act, z = A.get(name), _logits_with_a_row_of_minus_infs()
    function = {"softmax": A.softmax, "log_softmax": A.log_softmax}[name]
    with pytest.raises(ValueError, match=MINUS_INF_ROW):
        function(z)
    with pytest.raises(ValueError, match=MINUS_INF_ROW):
        act(z)
    # The backward step follows the same rule, whatever forward value it is handed.
    with pytest.raises(ValueError, match=MINUS_INF_ROW):
        act.vjp(z, jnp.zeros_like(z), jnp.ones_like(z))
    with pytest.raises(ValueError, match=r"along axis 0"):
        function(z.T, axis=0)
    # One -inf logit per row, or all but one, is fine and finite where softmax is.
    fine = z.at[1, 0].set(0.0)
    assert bool(jnp.all(jnp.isfinite(A.softmax(fine))))
    np.testing.assert_allclose(act(fine), act.fn(fine), rtol=0)


@pytest.mark.parametrize("name", sorted(NON_ELEMENTWISE))
def test_all_minus_inf_row_under_jit_is_nan_in_that_row_and_reported_by_checked(name):
    act, z = A.get(name), _logits_with_a_row_of_minus_infs()
    g = jnp.ones_like(z)

    def forward_backward(z, g):
        a = act(z)
        return a, act.vjp(z, a, g)

    rows = jax.vmap(forward_backward)  # one row [K] at a time
    good = jnp.array([0, 2])
    expected_a = act(z[good])
    expected_back = act.vjp(z[good], expected_a, g[good])
    for fn in (forward_backward, rows):
        a, back = jax.jit(fn)(z, g)
        assert bool(jnp.all(jnp.isnan(a[1]))) and bool(jnp.all(jnp.isnan(back[1])))
        np.testing.assert_allclose(a[good], expected_a, rtol=1e-15)
        np.testing.assert_allclose(back[good], expected_back, rtol=1e-14, atol=1e-15)
        err, _ = jax.jit(checking.checked(fn))(z, g)
        assert err.get() is not None and MINUS_INF_ROW in err.get()
        err, out = jax.jit(checking.checked(fn))(z[good], g[good])
        assert err.get() is None
        np.testing.assert_allclose(out[0], expected_a, rtol=1e-15)


def test_all_minus_inf_check_is_free_under_jit():
    # Unchecked, the verdict is unused and XLA removes it: the compiled program is jax's softmax.
    z = jnp.zeros((8, 5))

    def ops(fn):
        text = jax.jit(fn).lower(z).compile().as_text()
        return sorted(line.split("=")[1].split("(")[0].split()[-1] for line in text.splitlines() if " = " in line)

    assert ops(A.softmax) == ops(jax.nn.softmax)
    assert ops(A.log_softmax) == ops(jax.nn.log_softmax)


def test_check_not_all_minus_inf_names_the_argument():
    assert A.check_not_all_minus_inf(jnp.array([[0.0, -jnp.inf]]), "logits") is True
    with pytest.raises(ValueError, match="^logits must have a logit above -inf"):
        A.check_not_all_minus_inf(jnp.array([[-jnp.inf, -jnp.inf]]), "logits")
    # A NaN logit is not an all -inf row (it is NaN's own error, propagated as NaN).
    assert A.check_not_all_minus_inf(jnp.array([[jnp.nan, -jnp.inf]]), "logits") is True
    assert A.softmax(jnp.zeros((2, 0))).shape == (2, 0)


@pytest.mark.parametrize("gamma", [0.0, -0.5, jnp.inf, jnp.nan])
def test_rbf_refuses_gamma_that_is_not_positive(gamma):
    z = jnp.array([0.0, 1.0])
    with pytest.raises(ValueError, match=r"^gamma must lie in \(0, inf\)"):
        A.rbf(z, gamma)
    with pytest.raises(ValueError, match="^gamma"):
        A.get("rbf", gamma=gamma)
    with pytest.raises(ValueError, match="^gamma"):
        A.Activation("rbf", A.rbf, A.get("rbf").derivative_fn, (gamma,)).derivative(z)


def test_rbf_traced_gamma():
    z = jnp.array([0.0, 0.5, 1.0])
    gammas = jnp.array([0.5, 2.0, 0.0, -1.0])
    out = jax.jit(jax.vmap(A.rbf, in_axes=(None, 0)))(z, gammas)
    np.testing.assert_allclose(out[:2], jnp.stack([A.rbf(z, 0.5), A.rbf(z, 2.0)]), rtol=1e-15)
    assert bool(jnp.all(jnp.isnan(out[2:])))
    err, _ = jax.jit(checking.checked(A.rbf))(z, -1.0)
    assert "gamma must lie in (0, inf)" in err.get()
    err, out = jax.jit(checking.checked(A.rbf))(z, 2.0)
    assert err.get() is None
    np.testing.assert_allclose(out, jnp.exp(-2.0 * z**2), rtol=1e-15)


# ----------------------------------------------------------------------------------------
# Dtypes and compilation.
# ----------------------------------------------------------------------------------------


@cases
def test_float32_is_kept(name, params, key):
    act = A.get(name, **params)
    z = _z(key, jnp.float32)
    a = act(z)
    assert a.dtype == jnp.float32 and a.shape == z.shape
    assert act.vjp(z, a, jnp.ones_like(z)).dtype == jnp.float32
    if act.elementwise:
        assert act.derivative(z).dtype == jnp.float32


@cases
def test_jit_equals_eager_without_retracing(name, params, key):
    act = A.get(name, **params)
    z = _z(key)
    g = jax.random.normal(jax.random.fold_in(key, 1), z.shape, dtype=jnp.float64)
    traces = []

    @jax.jit
    def forward_backward(z, g):
        traces.append(None)
        a = act(z)
        return a, act.vjp(z, a, g)

    a, back = forward_backward(z, g)
    _assert_rel_close(a, act(z), rtol=1e-14)
    _assert_rel_close(back, act.vjp(z, act(z), g), rtol=1e-13)
    forward_backward(z + 1.0, -g)
    assert len(traces) == 1


def test_activation_can_be_jitted_directly():
    act = A.get("tanh")
    z = jnp.linspace(-2.0, 2.0, 5)
    np.testing.assert_array_equal(jax.jit(act)(z), act(z))


@cases
def test_activation_as_static_argument_does_not_retrace(name, params, key):
    traces = []

    def apply(act, z):
        traces.append(None)
        return act(z)

    apply = jax.jit(apply, static_argnums=0)
    z = _z(key)
    apply(A.get(name, **params), z)
    apply(A.get(name, **params), z)
    assert len(traces) == 1


def test_activation_records_are_hashable_and_equal():
    a, b = A.get("leaky_relu", negative_slope=0.2), A.get("leaky_relu", negative_slope=0.2)
    assert a == b and hash(a) == hash(b)
    assert a != A.get("leaky_relu", negative_slope=0.3)
    assert A.get("rbf") == A.get("rbf", gamma=1)
    assert A.get(a) is a


# ----------------------------------------------------------------------------------------
# Errors.
# ----------------------------------------------------------------------------------------


def test_get_errors():
    with pytest.raises(ValueError, match="relu") as info:
        A.get("nope")
    assert "nope" in str(info.value)
    with pytest.raises(ValueError, match="alpha"):
        A.get("relu", alpha=1)
    with pytest.raises(ValueError):
        A.get(A.get("relu"), alpha=1)
    with pytest.raises(TypeError):
        A.get(3)


@pytest.mark.parametrize("name", sorted(NON_ELEMENTWISE))
def test_derivative_of_non_elementwise_raises(name):
    with pytest.raises(ValueError, match="vjp"):
        A.get(name).derivative(jnp.zeros((2, 3)))


def test_one_hot():
    np.testing.assert_array_equal(A.one_hot(jnp.array([0, 2]), 3), [[1, 0, 0], [0, 0, 1]])
    assert A.one_hot(jnp.array([[1]]), 2, dtype=jnp.float64).shape == (1, 1, 2)


def test_one_hot_errors():
    with pytest.raises(TypeError, match="integer"):
        A.one_hot(jnp.array([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        A.one_hot(jnp.array([0, 3]), 3)
    with pytest.raises(ValueError):
        A.one_hot(jnp.array([-1, 0]), 3)
    with pytest.raises(ValueError):
        A.one_hot(jnp.array([0]), 0)
    with pytest.raises(TypeError):
        A.one_hot(jnp.array([0]), 2.5)


def test_one_hot_under_jit_poisons_out_of_range_rows():
    encode = jax.jit(A.one_hot, static_argnums=1)
    np.testing.assert_array_equal(encode(jnp.array([0, 2]), 3), [[1, 0, 0], [0, 0, 1]])
    bad = encode(jnp.array([0, 3, -1]), 3)
    assert bad.shape == (3, 3)
    assert bool(jnp.all(jnp.isnan(bad[1:])))


def test_predict_classes():
    np.testing.assert_array_equal(A.predict_classes(jnp.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])), [1, 0])
    np.testing.assert_array_equal(A.predict_classes(jnp.array([[0.4], [0.6]]), threshold=0.5), [0, 1])
    with pytest.raises(ValueError, match="scalar"):
        A.predict_classes(jnp.array(1.0))
