"""Tests for fnn.gradcheck: the checker must pass correct gradients and catch wrong ones.

A gradient checker is only worth something if it fails, loudly and on the right leaf, when a
hand-written gradient is wrong. So next to the reports on correct gradients (float64 and an
honest float32), these tests feed it deliberately wrong ones: one leaf scaled by 1.01, a bias
gradient zeroed, a NaN. Finite differences are checked on functions with known gradients, and
autodiff of the MLP loss is held to finite differences independently by ``jax.test_util``.

Float64 arrays are created inside the tests with an explicit dtype, so the file works whether
float64 is enabled globally or by a fixture.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from fnn import backprop, gradcheck, losses, mlp

SIZES = (3, 4, 2)
N = 5
PATHS = ["[0]['W']", "[0]['b']", "[1]['W']", "[1]['b']"]
SHAPES = [(3, 4), (4,), (4, 2), (2,)]


def _problem(key, loss="mse", activation="tanh", dtype=jnp.float64, sizes=SIZES):
    """``(f, params, hand)``: a loss of an MLP, noisy params, and its backprop gradient function."""
    k_p, k_noise, k_x, k_y = jax.random.split(key, 4)
    params = mlp.init(k_p, sizes, scheme="glorot", dtype=dtype)
    leaves, tree = jax.tree.flatten(params)
    noise = jax.random.split(k_noise, len(leaves))
    params = tree.unflatten([p + 0.3 * jax.random.normal(k, p.shape, dtype) for p, k in zip(leaves, noise)])
    x = jax.random.normal(k_x, (N, sizes[0]), dtype)
    if loss == "cross_entropy":
        y = jax.random.randint(k_y, (N,), 0, sizes[-1])
    elif loss == "binary_cross_entropy":
        y = jax.random.uniform(k_y, (N, sizes[-1]), dtype)
    else:
        y = jax.random.normal(k_y, (N, sizes[-1]), dtype)
    fn = losses.get(loss)

    def f(p):
        return fn(mlp.apply(p, x, activation=activation), y)

    def hand(p):
        return backprop.grad(p, x, y, loss=loss, activation=activation)

    return f, params, hand


def _leaf(report, path):
    (leaf,) = [leaf for leaf in report.leaves if leaf.path == path]
    return leaf


# ----------------------------------------------------------------------------------------
# Reports on correct gradients.
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_names_every_leaf_with_its_shape():
    f, params, hand = _problem(jax.random.key(0))
    report = gradcheck.check_gradients(f, params, hand)
    assert isinstance(report, gradcheck.GradientReport)
    assert [leaf.path for leaf in report.leaves] == PATHS
    assert [leaf.shape for leaf in report.leaves] == SHAPES
    # Small leaves are checked on every entry by finite differences.
    assert [leaf.checked for leaf in report.leaves] == [int(np.prod(s)) for s in SHAPES]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("activation", "loss"),
    [("tanh", "mse"), ("softplus", "cross_entropy"), ("sigmoid", "gaussian_nll"), ("tanh", "binary_cross_entropy")],
)
def test_correct_hand_gradient_passes_in_float64(activation, loss):
    f, params, hand = _problem(jax.random.key(1), loss=loss, activation=activation)
    report = gradcheck.check_gradients(f, params, hand)
    assert report.max_error("hand_vs_autodiff") < 1e-12, str(report)
    assert report.max_error("autodiff_vs_fd") < 1e-6, str(report)
    assert report.max_error("hand_vs_fd") < 1e-6, str(report)
    for leaf in report.leaves:
        assert np.isfinite([leaf.hand_vs_autodiff_abs, leaf.autodiff_vs_fd_abs, leaf.hand_vs_fd_abs]).all()
    # The absolute errors are the relative ones times a nonzero scale, never larger for O(1) grads.
    assert report.max_error("autodiff_vs_fd", "abs") < 1e-6
    report.assert_close()
    report.assert_close(rtol=1e-12, fd_rtol=1e-6)
    # A precomputed tree works as well as a function.
    assert gradcheck.check_gradients(f, params, hand(params)) == report


def test_without_hand_gradient_only_fd_is_checked():
    f, params, _ = _problem(jax.random.key(2))
    report = gradcheck.check_gradients(f, params)
    for leaf in report.leaves:
        assert np.isnan(leaf.hand_vs_autodiff_rel) and np.isnan(leaf.hand_vs_fd_rel)
        assert leaf.autodiff_vs_fd_rel < 1e-6
    report.assert_close()  # the missing hand gradient is not an error


# ----------------------------------------------------------------------------------------
# Wrong hand gradients are caught, on exactly the wrong leaf.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_leaf_scaled_by_one_percent_is_caught(path):
    f, params, hand = _problem(jax.random.key(3))
    index = PATHS.index(path)
    leaves, tree = jax.tree.flatten(hand(params))
    leaves[index] = leaves[index] * 1.01
    report = gradcheck.check_gradients(f, params, tree.unflatten(leaves))
    for leaf in report.leaves:
        if leaf.path == path:
            assert leaf.hand_vs_autodiff_rel == pytest.approx(0.01, rel=1e-6)
            assert leaf.hand_vs_fd_rel == pytest.approx(0.01, rel=1e-3)
            assert leaf.autodiff_vs_fd_rel < 1e-6  # autodiff itself is still right
        else:
            assert leaf.hand_vs_autodiff_rel < 1e-12
            assert leaf.hand_vs_fd_rel < 1e-6
    assert report.max_error("hand_vs_autodiff") == pytest.approx(0.01, rel=1e-6)
    with pytest.raises(AssertionError, match=re.escape(path) + ": hand-written vs autodiff"):
        report.assert_close()
    # Loose enough for the hand side, the FD comparison still names the leaf.
    with pytest.raises(AssertionError, match=re.escape(path) + ": hand_vs_fd"):
        report.assert_close(rtol=0.1)
    report.assert_close(rtol=0.1, fd_rtol=0.1)


def test_zeroed_bias_gradient_is_caught():
    f, params, hand = _problem(jax.random.key(4))
    wrong = hand(params)
    wrong[1]["b"] = jnp.zeros_like(wrong[1]["b"])
    report = gradcheck.check_gradients(f, params, wrong)
    bad = _leaf(report, "[1]['b']")
    assert bad.hand_vs_autodiff_rel == pytest.approx(1.0)
    assert bad.hand_vs_fd_rel == pytest.approx(1.0, rel=1e-6)
    assert all(leaf.hand_vs_autodiff_rel < 1e-12 for leaf in report.leaves if leaf.path != "[1]['b']")
    with pytest.raises(AssertionError, match=re.escape("[1]['b']")):
        report.assert_close()


def test_nan_hand_gradient_is_caught():
    f, params, hand = _problem(jax.random.key(5))
    wrong = hand(params)
    wrong[0]["W"] = wrong[0]["W"].at[1, 2].set(jnp.nan)
    report = gradcheck.check_gradients(f, params, wrong)
    assert _leaf(report, "[0]['W']").hand_vs_autodiff_rel == np.inf
    with pytest.raises(AssertionError, match=re.escape("[0]['W']")):
        report.assert_close()


def test_wrong_tree_or_shape_raises():
    f, params, hand = _problem(jax.random.key(6))
    grads = hand(params)
    with pytest.raises(ValueError, match="tree structure"):
        gradcheck.check_gradients(f, params, grads[:1])
    with pytest.raises(ValueError, match="tree structure"):
        gradcheck.check_gradients(f, params, tuple(grads))
    with pytest.raises(ValueError, match="tree structure"):
        gradcheck.check_gradients(f, params, lambda p: [{"W": g["W"]} for g in grads])
    transposed = [{"W": grads[0]["W"].T, "b": grads[0]["b"]}, grads[1]]
    with pytest.raises(ValueError, match=re.escape("[0]['W']") + r" has shape \(4, 3\), expected \(3, 4\)"):
        gradcheck.check_gradients(f, params, transposed)


# ----------------------------------------------------------------------------------------
# Sampling entries of large leaves.
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_max_entries_checks_exactly_that_many_per_large_leaf():
    f, params, hand = _problem(jax.random.key(7), sizes=(20, 30, 2))  # W0 has 600 entries
    report = gradcheck.check_gradients(f, params, hand, max_entries=50, key=jax.random.key(8))
    assert [leaf.checked for leaf in report.leaves] == [50, 30, 50, 2]
    report.assert_close()
    fd, masks = gradcheck.finite_difference_grad(f, params, max_entries=50, key=jax.random.key(8))
    auto = jax.grad(f)(params)
    for g, m, a, p in zip(jax.tree.leaves(fd), jax.tree.leaves(masks), jax.tree.leaves(auto), jax.tree.leaves(params)):
        assert m.shape == p.shape and m.dtype == jnp.bool_
        assert int(m.sum()) == min(50, p.size)
        assert bool(jnp.all(jnp.isnan(g) == ~m))  # NaN exactly where not evaluated
        np.testing.assert_allclose(g[m], a[m], rtol=1e-6, atol=1e-9)
    # All entries when max_entries is None.
    full = gradcheck.check_gradients(f, params, hand, max_entries=None)
    assert [leaf.checked for leaf in full.leaves] == [600, 30, 60, 2]


@pytest.mark.slow
def test_sampling_needs_a_key_or_uses_the_default():
    f, params, hand = _problem(jax.random.key(9), sizes=(20, 30, 2))
    with pytest.raises(ValueError, match="needs a key"):
        gradcheck.finite_difference_grad(f, params, max_entries=10)
    default = gradcheck.check_gradients(f, params, hand, max_entries=10)
    explicit = gradcheck.check_gradients(f, params, hand, max_entries=10, key=jax.random.key(0))
    assert default == explicit
    assert [leaf.checked for leaf in default.leaves] == [10, 10, 10, 2]
    _, masks_a = gradcheck.finite_difference_grad(f, params, max_entries=10, key=jax.random.key(0))
    _, masks_b = gradcheck.finite_difference_grad(f, params, max_entries=10, key=jax.random.key(1))
    assert not bool(jnp.all(masks_a[0]["W"] == masks_b[0]["W"]))  # the key chooses the sample


# ----------------------------------------------------------------------------------------
# Finite differences on functions with known gradients.
# ----------------------------------------------------------------------------------------


def test_finite_differences_of_sum_of_cubes():
    w = jnp.array([-1.5, -0.3, 0.0, 0.7, 2.0], jnp.float64)
    fd, masks = gradcheck.finite_difference_grad(lambda p: jnp.sum(p["w"] ** 3), {"w": w})
    assert bool(jnp.all(masks["w"]))
    np.testing.assert_allclose(fd["w"], 3 * w**2, rtol=1e-9, atol=1e-9)
    # Central differences of w^3 are 3 w^2 + h^2 exactly: the step is h max(1, |w|).
    h = 1e-3
    fd, _ = gradcheck.finite_difference_grad(lambda p: jnp.sum(p["w"] ** 3), {"w": w}, step=h)
    np.testing.assert_allclose(fd["w"] - 3 * w**2, (h * jnp.maximum(1.0, jnp.abs(w))) ** 2, rtol=1e-4)


def test_finite_differences_of_a_quadratic_form_over_a_tree():
    k_a, k_x, k_c = jax.random.split(jax.random.key(10), 3)
    a = jax.random.normal(k_a, (4, 4), jnp.float64)  # not symmetric: the gradient is (A + A^T) x
    c = jax.random.normal(k_c, (3,), jnp.float64)
    params = {"x": jax.random.normal(k_x, (4,), jnp.float64), "c": (c, jnp.float64(0.5))}

    def f(p):
        x = p["x"]
        c, s = p["c"]
        return x @ a @ x + s * jnp.sum(c**2)

    fd, _ = gradcheck.finite_difference_grad(f, params)
    assert jax.tree.structure(fd) == jax.tree.structure(params)
    # Central differences are exact on quadratics up to rounding, about eps |f| / h ~ 1e-10.
    tol = {"rtol": 1e-9, "atol": 1e-8}
    np.testing.assert_allclose(fd["x"], (a + a.T) @ params["x"], **tol)
    np.testing.assert_allclose(fd["c"][0], 2 * 0.5 * c, **tol)
    np.testing.assert_allclose(fd["c"][1], jnp.sum(c**2), **tol)


@pytest.mark.slow
def test_float32_gives_an_honest_larger_error():
    f32, params32, hand32 = _problem(jax.random.key(11), dtype=jnp.float32)
    report32 = gradcheck.check_gradients(f32, params32, hand32)
    f64, params64, hand64 = _problem(jax.random.key(11), dtype=jnp.float64)
    report64 = gradcheck.check_gradients(f64, params64, hand64)
    fd32 = report32.max_error("autodiff_vs_fd")
    fd64 = report64.max_error("autodiff_vs_fd")
    print(f"autodiff vs finite differences: float32 {fd32:.2e}, float64 {fd64:.2e}")
    assert 1e-7 < fd32 < 1e-2
    assert fd32 > 100 * fd64
    assert report32.max_error("hand_vs_autodiff") < 1e-5
    with pytest.raises(AssertionError, match="autodiff_vs_fd"):
        report32.assert_close(rtol=1e-5, fd_rtol=1e-9)
    report32.assert_close(rtol=1e-5, fd_rtol=1e-2)


def test_report_string_is_a_table():
    f, params, hand = _problem(jax.random.key(12))
    report = gradcheck.check_gradients(f, params, hand)
    lines = str(report).splitlines()
    assert len(lines) == 1 + len(PATHS)
    for column in ("leaf", "shape", "checked", "hand-auto rel", "auto-FD rel", "hand-FD rel"):
        assert column in lines[0]
    for line, path, shape in zip(lines[1:], PATHS, SHAPES):
        assert line.startswith(path)
        assert str(shape) in line
        assert len(re.findall(r"\d\.\d\de[+-]\d\d", line)) == 3


def test_integer_or_empty_params_are_refused():
    with pytest.raises(TypeError, match="floating-point"):
        gradcheck.finite_difference_grad(lambda p: jnp.sum(p["w"]), {"w": jnp.arange(3)})
    with pytest.raises(TypeError):
        gradcheck.check_gradients(lambda p: jnp.sum(p["w"]), {"w": jnp.arange(3)})
    with pytest.raises(ValueError, match="no leaves"):
        gradcheck.finite_difference_grad(lambda p: jnp.float64(0.0), {})


# ----------------------------------------------------------------------------------------
# Autodiff against finite differences, independently of fnn.gradcheck.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "softplus", "sigmoid"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_autodiff_of_mlp_loss_agrees_with_jax_check_grads(activation, loss):
    f, params, _ = _problem(jax.random.key(13), loss=loss, activation=activation, sizes=(3, 4, 4, 2))
    check_grads(f, (params,), order=1, modes=("rev",))
