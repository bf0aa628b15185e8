"""Tests of fnn.checking: value checks under jit carry the eager message, and only when asked."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import activations, checking, losses


# Each case: (name, function, bad arguments, good arguments). Arrays are built inside the
# factories so that the dtype follows the x64 setting of the test that runs them.
def _cases():
    def f(v):
        return jnp.array(v, jnp.float64)

    return {
        "cross_entropy": (
            losses.cross_entropy,
            (f([[0.0, 1.0, 2.0], [1.0, 0.0, -1.0]]), jnp.array([0, 5])),
            (f([[0.0, 1.0, 2.0], [1.0, 0.0, -1.0]]), jnp.array([0, 2])),
        ),
        "cross_entropy_negative_label": (
            losses.cross_entropy,
            (f([[0.0, 1.0, 2.0], [1.0, 0.0, -1.0]]), jnp.array([-1, 1])),
            (f([[0.0, 1.0, 2.0], [1.0, 0.0, -1.0]]), jnp.array([1, 1])),
        ),
        "binary_cross_entropy": (
            losses.binary_cross_entropy,
            (f([[0.3], [-1.0]]), f([[0.5], [1.5]])),
            (f([[0.3], [-1.0]]), f([[0.5], [1.0]])),
        ),
        "kl_divergence": (
            losses.kl_divergence,
            (f([0.5, 0.6, 0.1]), f([0.2, 0.3, 0.5])),
            (f([0.5, 0.4, 0.1]), f([0.2, 0.3, 0.5])),
        ),
        "gaussian_nll": (
            lambda m, t, v: losses.gaussian_nll(m, t, v),
            (f([[0.0, 1.0]]), f([[0.5, 0.5]]), f([[1.0, -0.5]])),
            (f([[0.0, 1.0]]), f([[0.5, 0.5]]), f([[1.0, 0.5]])),
        ),
        "one_hot": (
            lambda labels: activations.one_hot(labels, 3),
            (jnp.array([0, 3, 1]),),
            (jnp.array([0, 2, 1]),),
        ),
        # A row of logits that are all -inf: no softmax, no cross-entropy.
        "cross_entropy_all_minus_inf": (
            losses.cross_entropy,
            (f([[0.0, 1.0, 2.0], [-np.inf, -np.inf, -np.inf]]), jnp.array([0, 1])),
            (f([[0.0, 1.0, 2.0], [-np.inf, 0.0, -np.inf]]), jnp.array([0, 1])),
        ),
        "softmax": (
            activations.softmax,
            (f([[0.0, 1.0, 2.0], [-np.inf, -np.inf, -np.inf], [1.0, 0.0, -1.0]]),),
            (f([[0.0, 1.0, 2.0], [-np.inf, 3.0, -np.inf], [1.0, 0.0, -1.0]]),),
        ),
        "log_softmax": (
            activations.log_softmax,
            (f([[0.0, 1.0, 2.0], [-np.inf, -np.inf, -np.inf], [1.0, 0.0, -1.0]]),),
            (f([[0.0, 1.0, 2.0], [5.0, 3.0, -7.0], [1.0, 0.0, -1.0]]),),
        ),
    }


NAMES = [
    "cross_entropy",
    "cross_entropy_negative_label",
    "binary_cross_entropy",
    "kl_divergence",
    "gaussian_nll",
    "one_hot",
    "cross_entropy_all_minus_inf",
    "softmax",
    "log_softmax",
]
# Checks whose bad rows are NaN by the arithmetic itself; the other rows keep their values.
ROW_WISE = {"softmax", "log_softmax"}


def test_names_cover_cases():
    assert sorted(NAMES) == sorted(_cases())


def _assert_poisoned(name, out):
    """Poisoned, not silently wrong: a loss becomes NaN, a one-hot encoding or a softmax NaN in its bad rows."""
    out = np.asarray(out)
    if name == "one_hot":
        np.testing.assert_array_equal(np.isnan(out).all(axis=-1), [False, True, False])
        np.testing.assert_array_equal(out[[0, 2]], np.eye(3)[[0, 1]])
    elif name in ROW_WISE:
        np.testing.assert_array_equal(np.isnan(out).all(axis=-1), [False, True, False])
        fn, bad, _ = _cases()[name]
        np.testing.assert_allclose(out[[0, 2]], fn(bad[0][jnp.array([0, 2])]), rtol=1e-15)
    else:
        assert np.all(np.isnan(out))


def _eager_message(fn, args):
    with pytest.raises(ValueError) as info:
        fn(*args)
    return str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_checked_jit_carries_eager_message(name):
    fn, bad, _ = _cases()[name]
    message = _eager_message(fn, bad)
    err, out = jax.jit(checking.checked(fn))(*bad)
    assert err.get() is not None
    assert message in err.get()
    with pytest.raises(ValueError, match=re.escape(message)):
        err.throw()
    _assert_poisoned(name, out)


@pytest.mark.parametrize("name", ["cross_entropy", "kl_divergence"])
def test_checked_without_jit(name):
    fn, bad, good = _cases()[name]
    err, _ = checking.checked(fn)(*bad)
    assert _eager_message(fn, bad) in err.get()
    err, out = checking.checked(fn)(*good)
    assert err.get() is None
    np.testing.assert_allclose(out, fn(*good), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_checked_valid_input(name):
    fn, _, good = _cases()[name]
    err, out = jax.jit(checking.checked(fn))(*good)
    assert err.get() is None
    err.throw()  # no error, no exception
    expected = fn(*good)
    assert np.all(np.isfinite(np.asarray(out)))
    np.testing.assert_allclose(out, expected, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_plain_jit_returns_nan_without_raising(name):
    fn, bad, good = _cases()[name]
    _assert_poisoned(name, jax.jit(fn)(*bad))
    np.testing.assert_allclose(jax.jit(fn)(*good), fn(*good), rtol=1e-12)


def test_flag_does_not_leak_after_checked_call():
    fn, bad, _ = _cases()["cross_entropy"]
    err, _ = jax.jit(checking.checked(fn))(*bad)
    assert err.get() is not None
    # A new function, traced afterwards without checked: NaN, and no checkify effect to raise.
    out = jax.jit(lambda logits, labels: losses.cross_entropy(logits, labels))(*bad)
    assert np.isnan(float(out))


def test_flag_does_not_leak_after_checked_call_that_raised():
    fn, bad, _ = _cases()["cross_entropy"]
    with pytest.raises(ValueError, match="integer labels must have shape"):
        jax.jit(checking.checked(fn))(bad[0], jnp.array([0, 1, 2]))  # a static shape error
    out = jax.jit(lambda logits, labels: losses.cross_entropy(logits, labels))(*bad)
    assert np.isnan(float(out))


def test_checked_after_unchecked_trace_of_same_function():
    # Tracing fn unchecked first must not make a later checked trace reuse the unchecked one.
    def fn(labels):
        return activations.one_hot(labels, 3)

    bad = jnp.array([0, 3, 1])
    _assert_poisoned("one_hot", jax.jit(fn)(bad))
    err, _ = jax.jit(checking.checked(fn))(bad)
    assert "labels must lie in [0, 3)" in err.get()


def test_checked_inside_larger_jitted_function():
    def objective(logits, labels):
        return 2.0 * losses.cross_entropy(logits, labels) + 1.0

    fn, bad, good = _cases()["cross_entropy"]
    checked = jax.jit(checking.checked(objective))
    err, out = checked(*bad)
    assert "labels must lie in [0, 3)" in err.get()
    err, out = checked(*good)
    assert err.get() is None
    np.testing.assert_allclose(out, 2.0 * fn(*good) + 1.0, rtol=1e-12)


def test_checked_under_vmap():
    logits = jnp.zeros((4, 2, 3), jnp.float64)
    labels = jnp.array([[0, 1], [2, 2], [0, 7], [1, 0]])
    err, out = jax.jit(checking.checked(jax.vmap(losses.cross_entropy)))(logits, labels)
    assert "labels must lie in [0, 3)" in err.get()
    out = np.asarray(out)
    assert np.isnan(out[2]) and np.all(np.isfinite(out[[0, 1, 3]]))


def test_checked_keeps_function_name():
    assert checking.checked(losses.mse).__name__ == "mse"
