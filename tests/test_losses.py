"""Tests for fnn.losses: hand-written derivatives against jax autodiff, and more.

Every loss is held to the same checks: its hand-written derivative agrees with ``jax.grad``
in float64, finite differences agree for the smooth ones, values match independent
formulas, the mathematical properties hold on random input, extreme input stays finite,
bad input is refused with a message naming the argument (or poisoned with NaN under
``jax.jit``), dtypes are kept, and jit == no-jit without retracing.
"""

import functools
import math
import re

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from jax.test_util import check_grads

from fnn import losses as L
from fnn.checking import checked

N, M, K, D = 5, 7, 4, 3
LN2 = math.log(2.0)
PROPERTY = settings(max_examples=25, deadline=None)
# Registry names and extra label forms for cross_entropy.
CASES = [(name, "default") for name in L.names()] + [("cross_entropy", "soft"), ("cross_entropy", "one_hot")]
CASE_IDS = [name if form == "default" else f"{name}-{form}" for name, form in CASES]
SMOOTH = set(L.names()) - {"l1"}

cases = pytest.mark.parametrize(("name", "form"), CASES, ids=CASE_IDS)
all_names = pytest.mark.parametrize("name", L.names())


# ----------------------------------------------------------------------------------------
# Inputs and comparisons.
# ----------------------------------------------------------------------------------------


def _normal(rng, shape, scale=1.0):
    # NumPy draws: test inputs need no compiled PRNG (jax.random compiles once per shape).
    return scale * rng.standard_normal(shape)


def _distributions(rng, shape):
    """Rows summing to 1 with exact zeros: entry 0 of even rows, entry 1 of odd rows."""
    w = np.exp(_normal(rng, shape))
    if len(shape) == 1:
        w[0] = 0.0
    else:
        w[0::2, 0] = 0.0
        w[1::2, 1] = 0.0
    return w / np.sum(w, axis=-1, keepdims=True)


def _binary_targets(rng, shape):
    t = rng.uniform(size=shape)
    t[0, 0], t[1, 0] = 0.0, 1.0
    return t


def _registry_inputs(name, form="default", seed=0, dtype=np.float64):
    """(prediction, target) suited to the registry loss ``name``, the same for the same seed."""
    rng = np.random.default_rng(seed)
    if name in ("mse", "l1", "gaussian_nll"):
        pred, target = _normal(rng, (N, K)), _normal(rng, (N, K))
    elif name == "binary_cross_entropy":
        pred, target = _normal(rng, (N, K), 3.0), _binary_targets(rng, (N, K))
    elif name == "cross_entropy":
        pred, labels = _normal(rng, (N, K), 2.0), rng.integers(0, K, N)
        target = {"default": labels, "one_hot": np.eye(K)[labels], "soft": _distributions(rng, (N, K))}[form]
    elif name == "gaussian_nll_learned":
        raw = _normal(rng, (N, K))
        raw[0, :2] = -30.0  # softplus(-30) < eps: clamped
        pred, target = np.concatenate([_normal(rng, (N, K)), raw], axis=1), _normal(rng, (N, K), 0.5)
    elif name in ("kl_divergence", "js_divergence"):
        pred, target = _normal(rng, (N, K), 2.0), _distributions(rng, (N, K))
    elif name == "mmd":
        pred, target = _normal(rng, (N, D)), _normal(rng, (M, D)) + 0.5
    else:
        raise KeyError(f"no test inputs for loss {name!r}; add them here")
    if np.issubdtype(target.dtype, np.floating):
        target = target.astype(dtype)
    return jnp.asarray(pred.astype(dtype)), jnp.asarray(target)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _assert_rel_close(actual, expected, tol=1e-12):
    """max |actual - expected| <= tol * max |expected|, with equal shapes and dtypes, all finite."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    assert np.all(np.isfinite(actual)) and np.all(np.isfinite(expected))
    scale = np.max(np.abs(expected))
    assert scale > 0, "a comparison against all zeros checks nothing"
    err = np.max(np.abs(actual - expected)) / scale
    assert err <= tol, f"relative error {err:.3g} > {tol:g}"


def _finite(*xs):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(xs))


# ----------------------------------------------------------------------------------------
# Hand-written derivatives against jax.grad, float64.
# ----------------------------------------------------------------------------------------


@functools.cache
def _grad_cases():
    """id -> (loss of args, hand-written derivative returning one array per entry of argnums, args, argnums)."""
    rng = np.random.default_rng(1)
    pred, target = _normal(rng, (N, K)), _normal(rng, (N, K))
    l1_target = target.copy()
    l1_target[0, 0], l1_target[2, 1] = pred[0, 0], pred[2, 1]  # ties: derivative 1 there, as jax's
    logits, labels = _normal(rng, (N, K), 2.0), rng.integers(0, K, N)
    soft = _distributions(rng, (N, K))
    logits3, labels3 = _normal(rng, (N, 2, K)), rng.integers(0, K, (N, 2))
    variance = np.exp(_normal(rng, (N, K)))
    # Clamped entries (0 and below eps) and one exactly at eps, which is not clamped.
    variance[0, 0], variance[1, 1], variance[2, 2] = 0.0, 1e-9, 1e-6
    p, q = _distributions(rng, (N, K)), _distributions(rng, (N, K))
    q[0] = [0.0, 0.5, 0.25, 0.25]  # a zero in q where p is zero too
    p1, q1 = _distributions(rng, (K,)), _distributions(rng, (K,))
    x2, y2 = _normal(rng, (N, D)), _normal(rng, (M, D)) + 0.3
    x1, y1 = _normal(rng, (N,)), _normal(rng, (M,), 2.0)

    def one(g):
        return lambda *a: (g(*a),)

    return {
        "mse": (L.mse, one(L.mse_grad), (pred, target), (0,)),
        "l1": (L.l1, one(L.l1_grad), (pred, l1_target), (0,)),
        "cross_entropy-int": (L.cross_entropy, one(L.cross_entropy_grad), (logits, labels), (0,)),
        "cross_entropy-soft": (L.cross_entropy, one(L.cross_entropy_grad), (logits, soft), (0,)),
        "cross_entropy-one_hot": (L.cross_entropy, one(L.cross_entropy_grad), (logits, np.eye(K)[labels]), (0,)),
        "cross_entropy-middle_axis": (L.cross_entropy, one(L.cross_entropy_grad), (logits3, labels3), (0,)),
        "binary_cross_entropy": (
            L.binary_cross_entropy,
            one(L.binary_cross_entropy_grad),
            (3 * pred, _binary_targets(rng, (N, K))),
            (0,),
        ),
        "gaussian_nll-unit": (L.gaussian_nll, lambda m, t: L.gaussian_nll_grad(m, t)[:1], (pred, target), (0,)),
        "gaussian_nll-learned": (
            lambda m, t, v: L.gaussian_nll(m, t, v),
            lambda m, t, v: L.gaussian_nll_grad(m, t, v),
            (pred, target, variance),
            (0, 2),
        ),
        "kl_divergence-batch": (L.kl_divergence, L.kl_divergence_grad, (p, q), (0, 1)),
        "kl_divergence-single": (L.kl_divergence, L.kl_divergence_grad, (p1, q1), (0, 1)),
        "js_divergence-batch": (L.js_divergence, L.js_divergence_grad, (p, q), (0, 1)),
        "js_divergence-single": (L.js_divergence, L.js_divergence_grad, (p1, q1), (0, 1)),
        "mmd-2d": (lambda x, y: L.mmd(x, y, 0.8), one(lambda x, y: L.mmd_grad(x, y, 0.8)), (x2, y2), (0,)),
        "mmd-1d": (lambda x, y: L.mmd(x, y, 1.5), one(lambda x, y: L.mmd_grad(x, y, 1.5)), (x1, y1), (0,)),
    }


@pytest.mark.parametrize("case", list(_grad_cases()))
def test_hand_derivative_matches_autodiff(case):
    fn, hand, args, argnums = _grad_cases()[case]
    # Eager and jitted losses agree (test_jit_equals_eager...); jit keeps compile time down.
    actual, expected = jax.jit(lambda *a: (hand(*a), jax.grad(fn, argnums=argnums)(*a)))(*args)
    assert len(actual) == len(argnums)
    for a, e in zip(actual, expected):
        _assert_rel_close(a, e)


def test_gaussian_nll_clamped_variance_gets_zero_gradient(rng):
    mean, target = _normal(rng, (2, 3)), jnp.ones((2, 3))
    variance = jnp.array([[0.0, 1e-9, 1e-6], [2.0, 0.5, 1e-7]])
    clamped = variance < 1e-6
    _, d_var = L.gaussian_nll_grad(mean, target, variance)
    auto = jax.grad(L.gaussian_nll, argnums=2)(mean, target, variance)
    assert np.all(np.asarray(d_var)[clamped] == 0)
    assert np.all(np.asarray(auto)[clamped] == 0)
    assert np.all(np.asarray(d_var)[~clamped] != 0)
    # The clamped value is the variance eps.
    expected = L.gaussian_nll(mean, target, jnp.where(clamped, 1e-6, variance))
    assert L.gaussian_nll(mean, target, variance) == expected


def test_gaussian_nll_unit_variance_derivative_is_none():
    d_mean, d_var = L.gaussian_nll_grad(jnp.ones((2, 1)), jnp.zeros((2, 1)))
    assert d_var is None
    np.testing.assert_array_equal(d_mean, [[0.5], [0.5]])


@cases
def test_registry_derivative_matches_autodiff(name, form):
    loss = L.get(name)
    pred, target = _registry_inputs(name, form)
    actual, expected = jax.jit(lambda p, t: (loss.grad(p, t), jax.grad(loss)(p, t)))(pred, target)
    assert actual.shape == pred.shape
    _assert_rel_close(actual, expected)


def test_gaussian_nll_learned_clamped_outputs_get_zero_gradient():
    pred, target = _registry_inputs("gaussian_nll_learned")
    g = L.get("gaussian_nll_learned").grad(pred, target)
    np.testing.assert_array_equal(g[0, K : K + 2], 0.0)
    assert np.all(np.asarray(g[1:, K:]) != 0)


# ----------------------------------------------------------------------------------------
# Finite differences, for the smooth losses.
# ----------------------------------------------------------------------------------------


@functools.cache
def _fd_cases():
    """The direct forms the registry tests do not reach: a variance argument, both distributions."""
    rng = np.random.default_rng(2)
    pred, target = _normal(rng, (3, 2)), _normal(rng, (3, 2))
    soft = _distributions(rng, (3, 3))
    variance = 0.5 + np.exp(_normal(rng, (3, 2)))
    z, w = _normal(rng, (3, 3)), _normal(rng, (3, 3))

    def sm(a):
        return jax.nn.softmax(a, axis=-1)

    return {
        "cross_entropy-soft": (lambda a: L.cross_entropy(a, soft), (z,)),
        "gaussian_nll-learned": (lambda m, v: L.gaussian_nll(m, target, v), (pred, variance)),
        "kl_divergence": (lambda a, b: L.kl_divergence(sm(a), sm(b)), (z, w)),
        "js_divergence": (lambda a, b: L.js_divergence(sm(a), sm(b)), (z, w)),
        "mmd-1d": (lambda x, y: L.mmd(x, y, 1.3), (_normal(rng, (3,)), _normal(rng, (2,)))),
    }


@pytest.mark.parametrize("case", list(_fd_cases()))
def test_finite_differences(case):
    fn, args = _fd_cases()[case]
    check_grads(jax.jit(fn), args, order=2, modes=["rev"])


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_registry_finite_differences(name, rng):
    loss = L.get(name)
    pred, target = _registry_inputs(name)
    if name == "gaussian_nll_learned":
        pred = pred.at[:, K:].set(jnp.abs(pred[:, K:]))  # away from the clamp
    check_grads(jax.jit(lambda p: loss(p, target)), (pred,), order=2, modes=["rev"])
    # The hand-written derivative against a central difference of the loss, too.
    v = _normal(rng, pred.shape)

    @jax.jit
    def directional(h):
        return jnp.vdot(loss.grad(pred, target), v), (loss(pred + h * v, target) - loss(pred - h * v, target)) / (2 * h)

    np.testing.assert_allclose(*directional(1e-5), rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------------------
# Values against independent formulas.
# ----------------------------------------------------------------------------------------


def test_mse_hand_computed():
    pred = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    target = jnp.array([[1.0, 0.0], [3.0, 3.0]])
    assert L.mse(pred, target) == 2.5  # (0 + 4 + 0 + 1) / 2 examples, not / 4 entries
    assert L.l1(pred, target) == 1.5
    np.testing.assert_array_equal(L.mse_grad(pred, target), [[0.0, 2.0], [0.0, 1.0]])
    np.testing.assert_array_equal(L.l1_grad(pred, target), [[0.5, 0.5], [0.5, 0.5]])


def test_reduction_is_sum_over_outputs_mean_over_examples(rng):
    pred, target = _normal(rng, (N, K, 2)), _normal(rng, (N, K, 2))
    np.testing.assert_allclose(L.mse(pred, target), np.mean(np.sum((pred - target) ** 2, axis=(1, 2))), rtol=1e-14)
    np.testing.assert_allclose(L.l1(pred, target), np.mean(np.sum(np.abs(pred - target), axis=(1, 2))), rtol=1e-14)


def test_binary_cross_entropy_formula(rng):
    z, t = _normal(rng, (N, K), 2.0), _binary_targets(rng, (N, K))
    s = 1 / (1 + np.exp(-z))
    expected = np.mean(np.sum(-t * np.log(s) - (1 - t) * np.log(1 - s), axis=1))
    np.testing.assert_allclose(L.binary_cross_entropy(z, t), expected, rtol=1e-13)
    np.testing.assert_allclose(L.binary_cross_entropy_grad(z, t), (s - t) / N, rtol=1e-13, atol=1e-16)


def test_cross_entropy_formula_and_label_forms(rng):
    z, labels = _normal(rng, (N, K), 2.0), rng.integers(0, K, N)
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    expected = -np.mean(log_p[np.arange(N), labels])
    one_hot = np.eye(K)[labels]
    np.testing.assert_allclose(L.cross_entropy(z, labels), expected, rtol=1e-13)
    np.testing.assert_allclose(L.cross_entropy(z, one_hot), L.cross_entropy(z, labels), rtol=1e-15)
    np.testing.assert_allclose(L.cross_entropy_grad(z, one_hot), L.cross_entropy_grad(z, labels), rtol=1e-15)
    soft = _distributions(rng, (N, K))
    np.testing.assert_allclose(L.cross_entropy(z, soft), -np.mean(np.sum(soft * log_p, axis=1)), rtol=1e-13)


def test_cross_entropy_middle_axes_sum(rng):
    z, labels = _normal(rng, (N, 3, K)), rng.integers(0, K, (N, 3))
    whole, per_position = jax.jit(
        lambda z, y: (L.cross_entropy(z, y), [L.cross_entropy(z[:, j], y[:, j]) for j in range(3)])
    )(z, labels)
    np.testing.assert_allclose(whole, sum(per_position), rtol=1e-14)


def test_gaussian_nll_unit_variance_is_half_mse_plus_constant(rng):
    mean, target = _normal(rng, (N, K)), _normal(rng, (N, K))
    expected = 0.5 * L.mse(mean, target) + 0.5 * K * math.log(2 * math.pi)
    np.testing.assert_allclose(L.gaussian_nll(mean, target), expected, rtol=1e-14)
    np.testing.assert_allclose(L.gaussian_nll(mean, target, jnp.ones((N, K))), expected, rtol=1e-14)
    np.testing.assert_allclose(L.get("gaussian_nll")(mean, target), expected, rtol=1e-14)


def test_gaussian_nll_with_variance_formula(rng):
    mean, target = _normal(rng, (N, K)), _normal(rng, (N, K))
    var = np.exp(_normal(rng, (N, K)))
    expected = np.mean(np.sum(0.5 * np.log(2 * np.pi * var) + (target - mean) ** 2 / (2 * var), axis=1))
    np.testing.assert_allclose(L.gaussian_nll(mean, target, var), expected, rtol=1e-13)
    # The registry form: variance = softplus(raw output).
    raw = np.log(np.expm1(var))
    learned = L.get("gaussian_nll_learned")(np.concatenate([mean, raw], axis=1), target)
    np.testing.assert_allclose(learned, expected, rtol=1e-12)


def _entropy(t):
    t = np.asarray(t)
    return -np.mean(np.sum(np.where(t > 0, t * np.log(np.where(t > 0, t, 1)), 0), axis=-1))


def test_kl_registry_is_cross_entropy_minus_entropy(rng):
    z, t = _normal(rng, (N, K), 2.0), _distributions(rng, (N, K))
    expected = L.cross_entropy(z, t) - _entropy(t)
    np.testing.assert_allclose(L.get("kl_divergence")(z, t), expected, rtol=1e-13)


def test_kl_and_js_formulas(rng):
    p, q = _distributions(rng, (N, K)), np.exp(_normal(rng, (N, K)))
    q = q / q.sum(axis=1, keepdims=True)

    def kl(a, b):
        return np.sum(np.where(a > 0, a * np.log(np.where(a > 0, a / b, 1)), 0), axis=-1)

    m = 0.5 * (p + q)
    np.testing.assert_allclose(L.kl_divergence(p, q), np.mean(kl(p, q)), rtol=1e-13)
    np.testing.assert_allclose(L.kl_divergence(p[1], q[1]), kl(p[1], q[1]), rtol=1e-13)
    np.testing.assert_allclose(L.js_divergence(p, q), np.mean(0.5 * kl(p, m) + 0.5 * kl(q, m)), rtol=1e-13)
    np.testing.assert_allclose(L.kl_divergence(jnp.array([0.5, 0.5, 0.0]), jnp.array([0.25, 0.25, 0.5])), LN2)
    # A zero in q where p is positive: the true value, +inf.
    assert L.kl_divergence(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0])) == np.inf


def test_mmd_formula(rng):
    x, y, s = _normal(rng, (N, D)), _normal(rng, (M, D)), 0.9

    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * s**2))

    expected = (
        sum(k(a, b) for a in x for b in x) / N**2
        + sum(k(a, b) for a in y for b in y) / M**2
        - 2 * sum(k(a, b) for a in x for b in y) / (N * M)
    )
    np.testing.assert_allclose(L.mmd(x, y, s), expected, rtol=1e-12)
    np.testing.assert_allclose(L.get("mmd", bandwidth=s)(x, y), expected, rtol=1e-12)
    # 1-D samples are samples of dimension 1.
    np.testing.assert_allclose(L.mmd(x[:, 0], y[:, 0], s), L.mmd(x[:, :1], y[:, :1], s), rtol=1e-15)
    np.testing.assert_allclose(L.mmd_grad(x[:, 0], y[:, 0], s), L.mmd_grad(x[:, :1], y[:, :1], s)[:, 0], rtol=1e-15)


# ----------------------------------------------------------------------------------------
# Properties on random input.
# ----------------------------------------------------------------------------------------

WEIGHTS = st.one_of(st.just(0.0), st.floats(1e-3, 1e3))
REALS = st.floats(-30.0, 30.0, allow_nan=False, allow_subnormal=False)
# A few fixed shapes, and jitted losses, so that examples do not each compile anew.
DIST_SHAPES = st.sampled_from([(1,), (4,), (3, 4), (2, 1)])
_kl, _js, _ce, _bce, _mse, _l1 = map(
    jax.jit, (L.kl_divergence, L.js_divergence, L.cross_entropy, L.binary_cross_entropy, L.mse, L.l1)
)
_mmd, _mmd_grad = jax.jit(L.mmd), jax.jit(L.mmd_grad)


def _normalise(w):
    """Rows of non-negative weights scaled to sum to 1; an all-zero row becomes one-hot."""
    w = np.where((w.sum(axis=-1, keepdims=True) == 0) & (np.arange(w.shape[-1]) == 0), 1.0, w)
    return w / w.sum(axis=-1, keepdims=True)


@st.composite
def distribution_pairs(draw):
    shape = draw(DIST_SHAPES)
    p = _normalise(draw(hnp.arrays(np.float64, shape, elements=WEIGHTS)))
    q = _normalise(draw(hnp.arrays(np.float64, shape, elements=WEIGHTS)))
    return p, q


@st.composite
def sample_pairs(draw):
    x_shape, y_shape = draw(st.sampled_from([((3, 2), (4, 2)), ((2,), (5,)), ((1, 3), (1, 3))]))
    x = draw(hnp.arrays(np.float64, x_shape, elements=st.floats(-10, 10)))
    y = draw(hnp.arrays(np.float64, y_shape, elements=st.floats(-10, 10)))
    return x, y, draw(st.floats(0.1, 10.0))


@PROPERTY
@given(distribution_pairs())
def test_kl_of_itself_is_zero_and_kl_is_non_negative(pq):
    p, q = pq
    assert abs(float(_kl(p, p))) <= 1e-15
    kl = float(_kl(q, p))  # +inf where q > 0 = p
    assert not math.isnan(kl)
    assert kl >= -1e-12


@PROPERTY
@given(distribution_pairs())
def test_js_symmetric_and_bounded(pq):
    p, q = pq
    js = float(_js(p, q))
    np.testing.assert_allclose(js, _js(q, p), rtol=0, atol=1e-15)
    assert -1e-12 <= js <= LN2 + 1e-12
    assert abs(float(_js(p, p))) <= 1e-15


@PROPERTY
@given(st.sampled_from([(2, 1), (5, 2), (5, 4)]), st.data())
def test_js_of_disjoint_supports_is_log_2(k_split, data):
    k, split = k_split
    w = data.draw(hnp.arrays(np.float64, (k,), elements=st.floats(1e-3, 1e3)))
    p = np.where(np.arange(k) < split, w, 0.0)
    q = np.where(np.arange(k) >= split, w, 0.0)
    np.testing.assert_allclose(_js(_normalise(p), _normalise(q)), LN2, rtol=1e-14)


@PROPERTY
@given(sample_pairs())
def test_mmd_of_itself_is_zero_and_mmd_is_non_negative(xys):
    x, y, s = xys
    assert abs(float(_mmd(x, x, s))) <= 1e-12
    assert float(_mmd(x, y, s)) >= -1e-12
    assert np.all(np.abs(np.asarray(_mmd_grad(x, x, s))) <= 1e-12)


@PROPERTY
@given(hnp.arrays(np.float64, (3, 4), elements=REALS), st.data())
def test_cross_entropy_non_negative(z, data):
    labels = data.draw(hnp.arrays(np.int32, (3,), elements=st.integers(0, 3)))
    soft = _normalise(data.draw(hnp.arrays(np.float64, (3, 4), elements=WEIGHTS)))
    targets = data.draw(hnp.arrays(np.float64, (3, 4), elements=st.floats(0, 1)))
    assert float(_ce(z, labels)) >= 0
    assert float(_ce(z, soft)) >= 0
    assert float(_bce(z, targets)) >= 0


@PROPERTY
@given(st.sampled_from([(3,), (2, 3)]), st.data())
def test_l1_and_mse_non_negative(shape, data):
    a = data.draw(hnp.arrays(np.float64, shape, elements=REALS))
    b = data.draw(hnp.arrays(np.float64, shape, elements=REALS))
    assert float(_mse(a, b)) >= 0
    assert float(_l1(a, b)) >= 0
    assert float(_mse(a, a)) == 0 and float(_l1(a, a)) == 0
    if np.max(np.abs(a - b)) > 1e-100:  # squares of smaller gaps underflow
        assert float(_mse(a, b)) > 0 and float(_l1(a, b)) > 0


# ----------------------------------------------------------------------------------------
# Extreme input: finite values, finite gradients.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.0, 1.0])
@pytest.mark.parametrize("z", [100.0, -100.0, 1000.0, -1000.0])
def test_binary_cross_entropy_extreme_logits(z, t):
    logits, targets = jnp.array([[z]]), jnp.array([[t]])
    value = L.binary_cross_entropy(logits, targets)
    expected = max(z, 0.0) + math.log1p(math.exp(-abs(z))) - t * z  # softplus(z) - t z
    np.testing.assert_allclose(value, expected, rtol=1e-15)
    g = jax.grad(L.binary_cross_entropy)(logits, targets)
    hand = L.binary_cross_entropy_grad(logits, targets)
    assert _finite(value, g, hand)
    sigmoid = 1 / (1 + math.exp(-z)) if z > -700 else 0.0
    np.testing.assert_allclose(hand, [[sigmoid - t]], rtol=1e-15)
    np.testing.assert_allclose(g, hand, rtol=1e-15)


@pytest.mark.parametrize("labels", [jnp.array([0]), jnp.array([1]), jnp.array([[0.25, 0.75]])], ids=["0", "1", "soft"])
def test_cross_entropy_huge_logit_gap(labels):
    logits = jnp.array([[1000.0, 0.0]])
    value = L.cross_entropy(logits, labels)
    t = jax.nn.one_hot(labels, 2, dtype=jnp.float64) if labels.dtype.kind == "i" else labels
    np.testing.assert_allclose(value, 1000.0 * t[0, 1], rtol=1e-15)
    g, hand = jax.grad(L.cross_entropy)(logits, labels), L.cross_entropy_grad(logits, labels)
    assert _finite(g, hand)
    np.testing.assert_allclose(hand, jnp.array([[1.0, 0.0]]) - t, atol=1e-300)
    np.testing.assert_allclose(g, hand, rtol=1e-15)


@pytest.mark.parametrize(
    "labels", [jnp.array([0, 0]), jnp.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5]])], ids=["int", "soft"]
)
def test_cross_entropy_minus_inf_logit_on_zero_label(labels):
    logits = jnp.array([[0.0, -jnp.inf, 1.0], [2.0, -jnp.inf, 0.0]])
    value = L.cross_entropy(logits, labels)
    finite_logits = logits.at[:, 1].set(-1e4)  # the same softmax, to rounding
    np.testing.assert_allclose(value, L.cross_entropy(finite_logits, labels), rtol=1e-15)
    g, hand = jax.grad(L.cross_entropy)(logits, labels), L.cross_entropy_grad(logits, labels)
    assert _finite(value, g, hand)
    np.testing.assert_allclose(g, hand, rtol=1e-15, atol=1e-300)
    np.testing.assert_array_equal(hand[:, 1], 0.0)


def test_kl_and_js_with_zeros_in_p():
    p = jnp.array([[0.0, 0.3, 0.7], [0.5, 0.0, 0.5]])
    q = jnp.array([[0.2, 0.3, 0.5], [0.1, 0.4, 0.5]])
    for fn, grad_fn in [(L.kl_divergence, L.kl_divergence_grad), (L.js_divergence, L.js_divergence_grad)]:
        value = fn(p, q)
        auto = jax.grad(fn, argnums=(0, 1))(p, q)
        hand = grad_fn(p, q)
        assert _finite(value, auto, hand)
        for a, h in zip(auto, hand):
            np.testing.assert_allclose(h, a, rtol=1e-14)
    # Zeros in p against zeros in q: still finite.
    q0 = jnp.array([[0.0, 0.3, 0.7], [0.5, 0.0, 0.5]])
    assert _finite(
        L.kl_divergence(p, q0), L.kl_divergence_grad(p, q0), jax.grad(L.kl_divergence, argnums=(0, 1))(p, q0)
    )
    assert L.kl_divergence(p, q0) == 0


@pytest.mark.parametrize("name", ["kl_divergence", "js_divergence"])
def test_divergence_registry_extreme_logits(name):
    loss = L.get(name)
    logits = jnp.array([[1000.0, 0.0, -jnp.inf], [0.0, -1000.0, 5.0]])
    target = jnp.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    value, auto, hand = loss(logits, target), jax.grad(loss)(logits, target), loss.grad(logits, target)
    assert _finite(value, auto, hand)
    _assert_rel_close(hand, auto)
    if name == "kl_divergence":  # CE(soft) - H(target), with the log-sum-exp trick
        np.testing.assert_allclose(value, L.cross_entropy(logits, target) - _entropy(target), rtol=1e-14)
    else:
        assert 0 < float(value) <= LN2


def test_gaussian_nll_zero_variance_is_clamped_and_finite():
    mean, target, variance = jnp.array([[0.0, 1.0]]), jnp.array([[0.0, 1.0 + 1e-4]]), jnp.zeros((1, 2))
    value = L.gaussian_nll(mean, target, variance)
    auto = jax.grad(L.gaussian_nll, argnums=(0, 2))(mean, target, variance)
    hand = L.gaussian_nll_grad(mean, target, variance)
    assert _finite(value, auto, hand)
    np.testing.assert_allclose(value, L.gaussian_nll(mean, target, jnp.full((1, 2), 1e-6)), rtol=1e-15)
    np.testing.assert_array_equal(hand[1], 0.0)
    np.testing.assert_allclose(hand[0], auto[0], rtol=1e-14)
    # The registry form, with a very negative raw variance output.
    pred = jnp.array([[0.0, -800.0]])
    loss = L.get("gaussian_nll_learned")
    assert _finite(loss(pred, jnp.array([[0.5]])), loss.grad(pred, jnp.array([[0.5]])))


def test_mmd_far_apart_samples_finite():
    x, y = jnp.array([[0.0], [1e-3]]), jnp.array([[1e4]])
    value, g, auto = jax.jit(lambda x, y: (L.mmd(x, y, 0.1), L.mmd_grad(x, y, 0.1), jax.grad(L.mmd)(x, y, 0.1)))(x, y)
    assert _finite(value, g, auto)
    _assert_rel_close(g, auto)
    np.testing.assert_allclose(value, 2.0 - 0.5 * (1 - math.exp(-0.5 * (1e-3 / 0.1) ** 2)), rtol=1e-12)


# ----------------------------------------------------------------------------------------
# Bad input: clear errors naming the argument.
# ----------------------------------------------------------------------------------------


def _raises(exc, *fragments):
    """pytest.raises matching every fragment of the message, in order."""
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


@pytest.mark.parametrize(
    ("fn", "names"),
    [
        (L.mse, ("prediction", "target")),
        (L.l1, ("prediction", "target")),
        (L.binary_cross_entropy, ("logits", "targets")),
        (L.gaussian_nll, ("mean", "target")),
        (L.mse_grad, ("prediction", "target")),
        (L.binary_cross_entropy_grad, ("logits", "targets")),
        (L.gaussian_nll_grad, ("mean", "target")),
    ],
    ids=["mse", "l1", "bce", "gaussian_nll", "mse_grad", "bce_grad", "gaussian_nll_grad"],
)
def test_n_against_n1_is_refused(fn, names):
    with _raises(ValueError, names[0], names[1], "(5,)", "(5, 1)"):
        fn(jnp.zeros(5), jnp.zeros((5, 1)))
    with _raises(ValueError, "(5, 1)", "(5,)"):
        fn(jnp.zeros((5, 1)), jnp.zeros(5))


@all_names
def test_registry_refuses_broadcasting_target(name):
    pred, target = _registry_inputs(name)
    bad = target[..., None] if name != "mmd" else target[..., :1]
    with pytest.raises(ValueError, match=re.escape(str(tuple(bad.shape)))):
        L.get(name)(pred, bad)


@pytest.mark.parametrize(
    ("fn", "name"),
    [
        (L.mse, "prediction"),
        (L.l1_grad, "prediction"),
        (L.cross_entropy, "logits"),
        (L.binary_cross_entropy, "logits"),
        (L.gaussian_nll, "mean"),
        (L.kl_divergence, "p"),
        (L.js_divergence_grad, "p"),
        (L.mmd, "x"),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_integer_predictions_are_refused(fn, name):
    first = jnp.array([[1, 0], [0, 1]])
    second = jnp.array([0, 1]) if fn is L.cross_entropy else jnp.eye(2)
    with _raises(TypeError, f"{name} must be a floating-point array", "int"):
        fn(first, second)


def test_bad_labels():
    logits = jnp.zeros((2, 3))
    for labels in (jnp.array([0, 3]), jnp.array([-1, 0])):
        with _raises(ValueError, "labels must lie in [0, 3)"):
            L.cross_entropy(logits, labels)
        with _raises(ValueError, "labels must lie in [0, 3)"):
            L.cross_entropy_grad(logits, labels)
    with _raises(ValueError, "integer labels", "(2,)", "(2, 1)"):
        L.cross_entropy(logits, jnp.array([[0], [1]]))
    with _raises(ValueError, "labels", "(2, 3)", "(2,)"):
        L.cross_entropy(logits, jnp.array([0.0, 1.0]))
    with _raises(TypeError, "labels", "bool"):
        L.cross_entropy(logits, jnp.array([True, False]))
    with _raises(ValueError, "logits must have shape [N, K]", "(3,)"):
        L.cross_entropy(jnp.zeros(3), jnp.array(0))
    with _raises(ValueError, "labels must hold non-negative values summing to 1"):
        L.cross_entropy(logits, jnp.array([[1.2, -0.2, 0.0], [0.0, 0.0, 1.0]]))
    with _raises(ValueError, "labels must hold non-negative values summing to 1"):
        L.cross_entropy_grad(logits, jnp.array([[0.5, 0.4, 0.0], [0.0, 0.0, 1.0]]))


def test_bad_binary_targets():
    for t in (2.0, -0.5):
        with _raises(ValueError, "targets must lie in [0, 1]"):
            L.binary_cross_entropy(jnp.zeros((2, 1)), jnp.array([[0.0], [t]]))
        with _raises(ValueError, "targets must lie in [0, 1]"):
            L.binary_cross_entropy_grad(jnp.zeros((2, 1)), jnp.array([[0.0], [t]]))


def test_bad_variance():
    mean = jnp.zeros((2, 2))
    with _raises(ValueError, "variance must be non-negative"):
        L.gaussian_nll(mean, mean, jnp.array([[1.0, -1e-3], [1.0, 1.0]]))
    with _raises(ValueError, "variance must be non-negative"):
        L.gaussian_nll_grad(mean, mean, jnp.array([[1.0, -1e-3], [1.0, 1.0]]))
    with _raises(ValueError, "mean and variance", "(2, 2)", "(2,)"):
        L.gaussian_nll(mean, mean, jnp.ones(2))
    with _raises(TypeError, "variance must be a floating-point array"):
        L.gaussian_nll(mean, mean, jnp.ones((2, 2), int))
    for eps in (0.0, -1.0):
        with _raises(ValueError, "eps must be positive"):
            L.gaussian_nll(mean, mean, jnp.ones((2, 2)), eps=eps)
    with _raises(ValueError, "gaussian_nll_learned", "[N, 2K]", "(2, 3)", "(2, 2)"):
        L.get("gaussian_nll_learned")(jnp.zeros((2, 3)), mean)


@pytest.mark.parametrize(
    "call",
    [
        lambda: L.mse(jnp.zeros((0, 2)), jnp.zeros((0, 2))),
        lambda: L.l1_grad(jnp.zeros((0,)), jnp.zeros((0,))),
        lambda: L.cross_entropy(jnp.zeros((0, 3)), jnp.zeros((0,), int)),
        lambda: L.binary_cross_entropy(jnp.zeros((0, 1)), jnp.zeros((0, 1))),
        lambda: L.gaussian_nll(jnp.zeros((0, 1)), jnp.zeros((0, 1)), jnp.ones((0, 1))),
        lambda: L.mmd(jnp.zeros((0, 2)), jnp.zeros((3, 2))),
        lambda: L.mmd(jnp.zeros((3, 2)), jnp.zeros((0, 2))),
        lambda: L.kl_divergence(jnp.zeros((0, 2)), jnp.zeros((0, 2))),
        lambda: L.js_divergence_grad(jnp.zeros((0, 2)), jnp.zeros((0, 2))),
        lambda: L.get("kl_divergence")(jnp.zeros((0, 2)), jnp.zeros((0, 2))),
    ],
    ids=["mse", "l1_grad", "ce", "bce", "gaussian_nll", "mmd-x", "mmd-y", "kl", "js_grad", "kl-registry"],
)
def test_empty_batch_is_refused(call):
    with _raises(ValueError, "at least one example", "(0,"):
        call()


def test_bad_distributions():
    good = jnp.array([0.5, 0.5])
    for bad in (jnp.array([1.5, -0.5]), jnp.array([0.5, 0.4])):
        with _raises(ValueError, "p must hold non-negative values summing to 1"):
            L.kl_divergence(bad, good)
        with _raises(ValueError, "q must hold non-negative values summing to 1"):
            L.js_divergence_grad(good, bad)
    with _raises(ValueError, "(2,)", "(3,)"):
        L.kl_divergence(good, jnp.array([0.2, 0.3, 0.5]))
    with _raises(ValueError, "rank 1 or 2", "(1, 1, 2)"):
        L.js_divergence(good[None, None], good[None, None])
    with pytest.raises(ValueError, match="summing to 1"):
        L.get("kl_divergence")(jnp.zeros((1, 2)), jnp.array([[0.5, 0.6]]))


# A row of logits that are all -inf has no softmax; the losses of logits refuse it.
MINUS_INF = "must have a logit above -inf in every slice along axis -1, got a slice whose logits are all -inf"


def _minus_inf_row(k=3):
    return jnp.array([[0.0, 1.0, -1.0][:k], [-jnp.inf] * k])


@pytest.mark.parametrize(
    ("fn", "target", "name"),
    [
        (L.cross_entropy, jnp.array([0, 1]), "logits"),
        (L.cross_entropy_grad, jnp.array([0, 1]), "logits"),
        (L.cross_entropy, jnp.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]), "logits"),
        (L.get("cross_entropy").grad, jnp.array([0, 2]), "logits"),
        (L.get("kl_divergence"), jnp.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]), "prediction"),
        (L.get("kl_divergence").grad, jnp.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]), "prediction"),
        (L.get("js_divergence"), jnp.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]), "prediction"),
        (L.get("js_divergence").grad, jnp.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]), "prediction"),
    ],
    ids=["ce", "ce_grad", "ce-soft", "ce-registry_grad", "kl", "kl_grad", "js", "js_grad"],
)
def test_all_minus_inf_logits_are_refused(fn, target, name):
    logits = _minus_inf_row()
    with pytest.raises(ValueError, match=f"^{name} {MINUS_INF}"):
        fn(logits, target)
    out = jax.jit(fn)(logits, target)
    assert bool(jnp.any(jnp.isnan(out)))  # NaN under jit, never a number
    error, _ = jax.jit(checked(fn))(logits, target)
    assert error.get() is not None and f"{name} {MINUS_INF}" in error.get()
    fine = logits.at[1, 1:].set(0.0)  # a row with some finite logits is fine
    error, out = jax.jit(checked(fn))(fine, target)
    assert error.get() is None and bool(jnp.all(jnp.isfinite(out)))


def test_all_minus_inf_logits_under_vmap():
    logits = jnp.stack([_minus_inf_row().at[1, 0].set(0.0), _minus_inf_row()])  # [2 runs, 2, 3]
    labels = jnp.array([[0, 0], [1, 1]])
    out = jax.jit(jax.vmap(L.cross_entropy))(logits, labels)
    assert np.isfinite(out[0]) and np.isnan(out[1])
    np.testing.assert_allclose(out[0], L.cross_entropy(logits[0], labels[0]), rtol=1e-15)
    error, _ = jax.jit(checked(jax.vmap(L.cross_entropy_grad)))(logits, labels)
    assert f"logits {MINUS_INF}" in error.get()


@pytest.mark.parametrize("name", ["kl_divergence", "js_divergence"])
@pytest.mark.parametrize("form", ["loss", "grad"])
def test_registry_divergences_name_the_callers_arguments(name, form):
    # The registry form is loss(prediction, target): messages name those, not the p and q inside.
    loss = L.get(name)
    fn = loss if form == "loss" else loss.grad
    z, t = jnp.zeros((2, 3)), jnp.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    fn(z, t)  # valid
    with pytest.raises(ValueError, match=r"^target must hold non-negative values summing to 1"):
        fn(z, jnp.array([[0.2, 0.3, 0.6], [1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"^target must hold non-negative values summing to 1"):
        fn(z, jnp.array([[1.2, -0.2, 0.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(
        ValueError, match=re.escape("prediction and target must have the same shape, got (2, 3) and (2, 2)")
    ):
        fn(z, t[:, :2])
    with pytest.raises(ValueError, match=re.escape("prediction must have rank 1 or 2, got shape (1, 2, 3)")):
        fn(z[None], t[None])
    with pytest.raises(ValueError, match=re.escape("prediction must hold at least one example along axis 0")):
        fn(z[:0], t[:0])
    with pytest.raises(TypeError, match="^target must be a floating-point array"):
        fn(z, jnp.eye(2, 3, dtype=int))
    with pytest.raises(TypeError, match="^prediction must be a floating-point array"):
        fn(jnp.zeros((2, 3), int), t)
    with pytest.raises(ValueError, match=r"^softmax\(prediction\) must hold"):
        fn(z.at[0, 0].set(jnp.inf), t)  # a +inf logit: softmax gives NaN
    bad = (z, jnp.array([[0.7, 0.7, 0.0], [1.0, 0.0, 0.0]]))
    error, out = jax.jit(checked(fn))(*bad)
    assert error.get().startswith("target must hold non-negative values summing to 1")
    assert bool(jnp.all(jnp.isnan(out)))


def test_bad_mmd_input():
    x = jnp.zeros((3, 2))
    with _raises(ValueError, "same dimension", "(3, 2)", "(4, 3)"):
        L.mmd(x, jnp.zeros((4, 3)))
    with _raises(ValueError, "same dimension", "(3, 2)", "(4,)"):
        L.mmd_grad(x, jnp.zeros(4))
    with _raises(ValueError, "x must have rank 1 or 2", "(3, 2, 1)"):
        L.mmd(x[..., None], x[..., None])
    for s in (0.0, -1.0):
        with _raises(ValueError, "bandwidth must be positive"):
            L.mmd(x, x, s)
        with _raises(ValueError, "bandwidth must be positive"):
            L.mmd_grad(x, x, s)
        with _raises(ValueError, "bandwidth must be positive"):
            L.get("mmd", bandwidth=s)(x, x)
    with _raises(ValueError, "bandwidth must be a scalar", "(2,)"):
        L.mmd(x, x, jnp.ones(2))


def test_get_errors():
    with pytest.raises(ValueError, match="unknown loss 'nope'") as info:
        L.get("nope")
    for name in L.names():
        assert name in str(info.value)
    with _raises(ValueError, "'mse'", "none", "bandwidth"):
        L.get("mse", bandwidth=1.0)
    with _raises(ValueError, "'mmd'", "bandwidth", "width"):
        L.get("mmd", width=1.0)
    with _raises(TypeError, "loss must be a name", "Loss", "int"):
        L.get(3)
    loss = L.get("mmd", bandwidth=0.5)
    assert L.get(loss) is loss
    with _raises(ValueError, "bandwidth", "Loss instance"):
        L.get(loss, bandwidth=1.0)


def test_names():
    assert L.names() == tuple(sorted(L.names()))
    assert set(L.names()) >= {"mse", "l1", "cross_entropy", "binary_cross_entropy", "kl_divergence", "mmd"}


# ----------------------------------------------------------------------------------------
# Under jax.jit a bad value is NaN, not a silent number.
# ----------------------------------------------------------------------------------------


def test_jitted_bad_values_are_nan():
    logits = jnp.zeros((2, 3))
    ce, ce_grad = jax.jit(L.cross_entropy), jax.jit(L.cross_entropy_grad)
    assert np.isfinite(ce(logits, jnp.array([0, 2])))
    for labels in (jnp.array([0, 3]), jnp.array([-1, 0])):
        assert np.isnan(ce(logits, labels))
        assert np.all(np.isnan(ce_grad(logits, labels)))
    assert np.isnan(ce(logits, jnp.array([[0.5, 0.6, 0.0], [1.0, 0.0, 0.0]])))

    bce = jax.jit(L.binary_cross_entropy)
    assert np.isfinite(bce(jnp.zeros((2, 1)), jnp.array([[0.0], [1.0]])))
    assert np.isnan(bce(jnp.zeros((2, 1)), jnp.array([[0.0], [2.0]])))
    assert np.all(np.isnan(jax.jit(L.binary_cross_entropy_grad)(jnp.zeros((2, 1)), jnp.array([[0.0], [2.0]]))))

    nll, nll_grad = jax.jit(L.gaussian_nll), jax.jit(L.gaussian_nll_grad)
    mean, ok_var, bad_var = jnp.zeros((1, 2)), jnp.ones((1, 2)), jnp.array([[1.0, -1.0]])
    assert np.isfinite(nll(mean, mean, ok_var))
    assert np.isnan(nll(mean, mean, bad_var))
    assert all(np.all(np.isnan(g)) for g in nll_grad(mean, mean, bad_var))

    bad_p = jnp.array([0.7, 0.7])
    assert np.isnan(jax.jit(L.kl_divergence)(bad_p, jnp.array([0.5, 0.5])))
    assert np.isnan(jax.jit(L.js_divergence)(jnp.array([0.5, 0.5]), bad_p))
    kl = L.get("kl_divergence")
    assert np.isnan(jax.jit(lambda z, t: kl(z, t))(jnp.zeros((1, 2)), bad_p[None]))
    assert np.isnan(jax.jit(L.mmd)(jnp.zeros((2, 1)), jnp.ones((2, 1)), -1.0))


_Z23, _BAD_VAR = jnp.zeros((2, 3)), jnp.array([[1.0, -1.0]])
CHECKED_CASES = {
    "cross_entropy-label": (L.cross_entropy, (_Z23, jnp.array([0, 3]))),
    "cross_entropy_grad-soft": (L.cross_entropy_grad, (_Z23, jnp.array([[0.5, 0.6, 0.0], [1.0, 0.0, 0.0]]))),
    "binary_cross_entropy": (L.binary_cross_entropy, (jnp.zeros((2, 1)), jnp.array([[0.0], [2.0]]))),
    "gaussian_nll": (L.gaussian_nll, (jnp.zeros((1, 2)), jnp.zeros((1, 2)), _BAD_VAR)),
    "gaussian_nll_grad": (L.gaussian_nll_grad, (jnp.zeros((1, 2)), jnp.zeros((1, 2)), _BAD_VAR)),
    "kl_divergence": (L.kl_divergence, (jnp.array([0.7, 0.7]), jnp.array([0.5, 0.5]))),
    "js_divergence_grad": (L.js_divergence_grad, (jnp.array([0.5, 0.5]), jnp.array([-0.5, 1.5]))),
    "kl_divergence-registry": (lambda z, t: L.get("kl_divergence")(z, t), (jnp.zeros((1, 2)), jnp.array([[0.7, 0.7]]))),
    "mmd": (L.mmd, (jnp.zeros((2, 1)), jnp.ones((3, 1)), -1.0)),
    "mmd_grad": (L.mmd_grad, (jnp.zeros((2, 1)), jnp.ones((3, 1)), 0.0)),
}


@pytest.mark.parametrize("case", list(CHECKED_CASES))
def test_checked_raises_the_eager_message(case):
    fn, args = CHECKED_CASES[case]
    with pytest.raises(ValueError) as eager:
        fn(*args)
    message = str(eager.value)
    error, out = jax.jit(checked(fn))(*args)
    assert error.get() is not None and error.get().startswith(message)
    with pytest.raises(ValueError, match=re.escape(message)):
        error.throw()
    assert all(np.all(np.isnan(o)) for o in jax.tree.leaves(out))


def test_checked_passes_good_input():
    logits, labels = jnp.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]]), jnp.array([2, 0])
    error, out = jax.jit(checked(L.cross_entropy))(logits, labels)
    assert error.get() is None
    error.throw()  # nothing to raise
    np.testing.assert_allclose(out, L.cross_entropy(logits, labels), rtol=1e-14)


def test_jitted_shape_errors_still_raise():
    with _raises(ValueError, "(5,)", "(5, 1)"):
        jax.jit(L.mse)(jnp.zeros(5), jnp.zeros((5, 1)))
    with _raises(ValueError, "integer labels"):
        jax.jit(L.cross_entropy)(jnp.zeros((2, 3)), jnp.array([[0], [1]]))


# ----------------------------------------------------------------------------------------
# Dtypes, jit, retracing, hashing, traced hyperparameters.
# ----------------------------------------------------------------------------------------


@cases
def test_float32_in_float32_out(name, form):
    loss = L.get(name)
    pred, target = _registry_inputs(name, form, dtype=np.float32)
    value, grad = jax.jit(lambda p, t: (loss(p, t), loss.grad(p, t)))(pred, target)
    assert value.dtype == jnp.float32 and value.shape == ()
    assert grad.dtype == jnp.float32 and grad.shape == pred.shape
    assert _finite(value, grad)
    pred64, target64 = _registry_inputs(name, form)
    np.testing.assert_allclose(value, loss(pred64, target64), rtol=1e-4, atol=1e-5)


def test_float32_direct_functions():
    a, b = jnp.array([[0.2, 0.8]], jnp.float32), jnp.array([[0.5, 0.5]], jnp.float32)

    @jax.jit
    def outputs(a, b):
        return [
            L.mse(a, b),
            L.l1_grad(a, b),
            *L.gaussian_nll_grad(a, b, a),
            L.binary_cross_entropy(a, b),
            *L.kl_divergence_grad(a, b),
            *L.js_divergence_grad(a, b),
            L.mmd(a, b),
            L.mmd_grad(a[0], b[0]),
            L.cross_entropy(a, jnp.array([1])),
        ]

    for out in outputs(a, b):
        assert out.dtype == jnp.float32


@cases
def test_jit_equals_eager_without_retracing(name, form):
    loss = L.get(name)
    pred, target = _registry_inputs(name, form)
    traces = []

    @jax.jit
    def both(p, t):
        traces.append(None)
        return loss(p, t), loss.grad(p, t)

    value, grad = both(pred, target)
    np.testing.assert_allclose(value, loss(pred, target), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad, loss.grad(pred, target), rtol=1e-12, atol=1e-15)
    value2, _ = both(0.5 * pred, target)
    np.testing.assert_allclose(value2, loss(0.5 * pred, target), rtol=1e-12, atol=1e-15)
    assert len(traces) == 1


def test_loss_is_hashable_and_a_static_argument(rng):
    a, b = L.get("mmd", bandwidth=0.5), L.get("mmd", bandwidth=0.5)
    assert a == b and hash(a) == hash(b)
    assert a != L.get("mmd", bandwidth=1.0) and a != L.get("mmd")
    assert L.get("mmd").params == (1.0,)
    assert len({a, b, L.get("mmd")}) == 2
    x, y = _normal(rng, (3, 2)), _normal(rng, (4, 2))
    traces = []

    @jax.jit(static_argnums=0)
    def apply(loss, p, t):
        traces.append(None)
        return loss(p, t)

    np.testing.assert_allclose(apply(a, x, y), L.mmd(x, y, 0.5), rtol=1e-12)
    apply(b, x, y)
    assert len(traces) == 1
    apply(L.get("mmd"), x, y)
    assert len(traces) == 2


def test_traced_bandwidth_under_vmap(rng):
    x, y = _normal(rng, (N, D)), _normal(rng, (M, D)) + 0.5
    bandwidths = jnp.array([0.3, 1.0, 2.5])
    values = jax.vmap(lambda s: L.mmd(x, y, s))(bandwidths)
    grads = jax.vmap(lambda s: L.mmd_grad(x, y, s))(bandwidths)
    assert values.shape == (3,) and grads.shape == (3, N, D)
    for i, s in enumerate([0.3, 1.0, 2.5]):
        np.testing.assert_allclose(values[i], L.mmd(x, y, s), rtol=1e-12)
        np.testing.assert_allclose(grads[i], L.mmd_grad(x, y, s), rtol=1e-12)
    # A Loss carrying a traced bandwidth, and one bad bandwidth in the sweep.
    swept = jax.jit(jax.vmap(lambda s: L.Loss("mmd", L.mmd, L.mmd_grad, (s,))(x, y)))(jnp.array([1.0, -1.0]))
    np.testing.assert_allclose(swept[0], L.mmd(x, y, 1.0), rtol=1e-12)
    assert np.isnan(swept[1])
