"""Tests of fnn.approximation: steps, bumps, the sigmoid and ReLU constructions within their proven
bounds, convergence rates, ridges and towers, training, jit/vmap, validation."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import approximation as A
from fnn import mlp

LO, HI = -1.0, 2.0
GRID = 20001  # spacing 1.5e-4: fine against the smallest bin below


def _sin3(x):
    return jnp.sin(3 * x)


def _kink(x):
    return jnp.abs(x - 0.3)


def _abs_sin(x):
    return jnp.abs(jnp.sin(5 * x))


def _identity(x):
    return x


# (f, Lipschitz constant on [LO, HI], bound on |f''| or inf)
TARGETS = {
    "sin3": (_sin3, 3.0, 9.0),
    "kink": (_kink, 1.0, math.inf),
    "abs_sin": (_abs_sin, 5.0, math.inf),
    "identity": (_identity, 1.0, 0.0),
}


def _sigmoid_reference(x, w, b):
    # 1 / (1 + exp(-z)) in NumPy float64, away from overflow for the sizes used here.
    return 1.0 / (1.0 + np.exp(-w * (np.asarray(x) - b)))


# ----------------------------------------------------------------------------------------
# Steps
# ----------------------------------------------------------------------------------------


# Margins are binary fractions, so that -1 + margin - (-1) == margin exactly.
@pytest.mark.parametrize("w, margin", [(10.0, 0.125), (50.0, 0.0625), (3.0, 0.5), (400.0, 0.015625)])
def test_step_error_closed_form_equals_measured(w, margin):
    closed = float(A.step_error(w, margin))
    assert closed == pytest.approx(1 / (1 + math.exp(w * margin)), rel=1e-12)
    num = 4001
    spacing = 2.0 / (num - 1)
    measured = float(A.measured_step_error(w, 0.0, margin, -1.0, 1.0, num))
    # The sup is attained at |x - b| = margin; the grid reaches it up to one spacing.
    assert measured <= closed * (1 + 1e-12)
    assert measured >= float(A.step_error(w, margin + spacing))
    # Exactly the closed form when b - margin is a grid point (here the first, -1).
    exact = float(A.measured_step_error(w, -1.0 + margin, margin, -1.0, 1.0, num))
    assert exact == pytest.approx(closed, rel=1e-9)


def test_sigmoid_step_is_sigmoid_of_shifted_input():
    x = jnp.linspace(-1.0, 1.0, 11)
    np.testing.assert_allclose(A.sigmoid_step(x, 7.0, 0.2), _sigmoid_reference(x, 7.0, 0.2), rtol=1e-13)


def test_log_step_error_stable_where_the_error_underflows():
    w = jnp.array([1.0, 10.0, 100.0])
    np.testing.assert_allclose(A.log_step_error(w, 0.5), np.log(A.step_error(w, 0.5)), rtol=1e-12)
    assert float(A.log_step_error(1e5, 1.0)) == pytest.approx(-1e5, rel=1e-12)
    assert float(A.step_error(1e5, 1.0)) == 0.0  # underflows; the log does not


def test_weight_for_error_inverts_step_error():
    eps = jnp.array([0.4, 0.1, 1e-3, 1e-8, 1e-14])
    margin = 0.05
    w = A.weight_for_error(eps, margin)
    assert bool(jnp.all(w > 0))
    np.testing.assert_allclose(A.step_error(w, margin), eps, rtol=1e-9)
    np.testing.assert_allclose(w, np.log((1 - np.asarray(eps)) / np.asarray(eps)) / margin, rtol=1e-12)


# ----------------------------------------------------------------------------------------
# Bumps
# ----------------------------------------------------------------------------------------


def test_bump_params_are_mlp_params_with_the_expected_values():
    a, b, h, w = 0.2, 0.6, 1.5, 200.0
    params = A.bump_params(a, b, h, w)
    mlp.check_params(params)
    assert mlp.sizes_of(params) == (1, 2, 1)
    x = jnp.linspace(-1.0, 2.0, 301)[:, None]
    y = mlp.apply(params, x, **A.SIGMOID_NETWORK)[:, 0]
    reference = h * _sigmoid_reference(x[:, 0], w, a) - h * _sigmoid_reference(x[:, 0], w, b)
    np.testing.assert_allclose(y, reference, rtol=1e-12, atol=1e-14)
    margin = 0.05
    inside = (x[:, 0] >= a + margin) & (x[:, 0] <= b - margin)
    outside = (x[:, 0] <= a - margin) | (x[:, 0] >= b + margin)
    tolerance = 2 * h * float(A.step_error(w, margin))
    assert float(jnp.max(jnp.abs(jnp.where(inside, y - h, 0)))) <= tolerance
    assert float(jnp.max(jnp.abs(jnp.where(outside, y, 0)))) <= tolerance
    assert tolerance < 1e-3


# ----------------------------------------------------------------------------------------
# One dimension: the constructions within their bounds
# ----------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(0, 1))
def _errors(f, n):
    """Sup errors on [LO, HI] of the bump, step and ReLU constructions with n bins; and their shapes."""
    bumps, relu = A.sigmoid_network(f, LO, HI, n), A.relu_network(f, LO, HI, n)
    errors = {"bumps": A.sup_error(bumps, f, LO, HI, GRID), "relu": A.sup_error(relu, f, LO, HI, GRID, "relu")}
    if n >= 2:
        errors["steps"] = A.sup_error(A.sigmoid_steps_network(f, LO, HI, n), f, LO, HI, GRID)
    return errors


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_constructions_within_their_proven_bounds(name):
    f, lipschitz, second = TARGETS[name]
    for n in (1, 4, 16):
        errors = _errors(f, n)
        assert float(errors["bumps"]) <= float(A.sigmoid_bound(lipschitz, LO, HI, n)), n
        assert float(errors["relu"]) <= float(A.relu_bound(second, LO, HI, n, lipschitz=lipschitz)) + 1e-13, n
        if n >= 2:
            assert float(errors["steps"]) <= float(A.sigmoid_bound(lipschitz, LO, HI, n, form="steps")), n


def test_sigmoid_bound_is_tight_for_the_identity():
    # f(x) = x is as hard as a 1-Lipschitz function gets for a staircase: the bound is nearly reached.
    for n in (4, 16):
        assert float(_errors(_identity, n)["bumps"]) >= 0.9 * float(A.sigmoid_bound(1.0, LO, HI, n))


def test_sigmoid_network_holds_its_bound_with_a_gentle_step():
    # A small w: the smoothing term dominates the bound, and the bound still holds.
    measure = jax.jit(lambda w: A.sup_error(A.sigmoid_network(_kink, LO, HI, 8, w=w), _kink, LO, HI, GRID))
    for w in (2.0, 10.0):
        assert float(measure(w)) <= float(A.sigmoid_bound(1.0, LO, HI, 8, w))


def test_relu_network_interpolates_exactly_at_the_knots():
    n = 13
    knots = LO + (HI - LO) / n * jnp.arange(n + 1, dtype=jnp.float64)
    mid = (knots[:-1] + knots[1:]) / 2
    points = jnp.concatenate([knots, mid])[:, None]
    for f in (_sin3, _kink, _abs_sin):
        y = A.approximate(A.relu_network(f, LO, HI, n), points, "relu")[:, 0]
        np.testing.assert_allclose(y[: n + 1], f(knots), rtol=0, atol=1e-13)
        # Between knots it is the straight line through its neighbours.
        np.testing.assert_allclose(y[n + 1 :], (f(knots[:-1]) + f(knots[1:])) / 2, atol=1e-13)


def test_fit_rate_recovers_the_theoretical_rates():
    ns = (4, 8, 16, 32)
    errors = [_errors(_sin3, n) for n in ns]
    assert -1.2 <= float(A.fit_rate(jnp.array(ns), jnp.stack([e["bumps"] for e in errors]))) <= -0.8
    assert -2.2 <= float(A.fit_rate(jnp.array(ns), jnp.stack([e["relu"] for e in errors]))) <= -1.8
    # An exact power law gives its exponent.
    assert float(A.fit_rate(jnp.array([1.0, 3.0, 10.0]), 5 * jnp.array([1.0, 3.0, 10.0]) ** -1.5)) == pytest.approx(
        -1.5
    )


# ----------------------------------------------------------------------------------------
# jit and vmap
# ----------------------------------------------------------------------------------------


def test_constructions_are_mlp_params_and_jit_for_a_given_n():
    n = 5
    for build, sizes in (
        (A.sigmoid_network, (1, 10, 1)),
        (A.sigmoid_steps_network, (1, 4, 1)),
        (A.relu_network, (1, 5, 1)),
    ):
        eager = build(_sin3, LO, HI, n)
        mlp.check_params(eager)
        assert mlp.sizes_of(eager) == sizes
        assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(eager))
        compiled = jax.jit(build, static_argnums=(0, 3))(_sin3, LO, HI, n)
        for got, want in zip(jax.tree.leaves(compiled), jax.tree.leaves(eager), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)
    # Another interval reuses the compiled function.
    jitted = jax.jit(lambda lo, hi: A.relu_network(_sin3, lo, hi, n))
    jitted(0.0, 1.0)
    jitted(-2.0, 5.0)
    assert jitted._cache_size() == 1


def test_vmap_over_frequencies_and_intervals_equals_a_loop():
    ks = jnp.array([1.0, 2.5, 4.0])
    his = jnp.array([1.0, 2.0, 3.0])

    def build(k, hi):
        def f(x):
            return jnp.sin(k * x)

        sig = A.sigmoid_network(f, 0.0, hi, 5)
        relu = A.relu_network(f, 0.0, hi, 5)
        return sig, relu, A.sup_error(sig, f, 0.0, hi, 501), A.sup_error(relu, f, 0.0, hi, 501, "relu")

    batched = jax.jit(jax.vmap(build))(ks, his)
    single_jit = jax.jit(build)
    for i, (k, hi) in enumerate(zip(ks, his, strict=True)):
        single = single_jit(k, hi)
        for got, want in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-12)


def test_traced_invalid_interval_gives_nan_not_a_silent_result():
    params = jax.jit(lambda lo, hi: A.sigmoid_network(_sin3, lo, hi, 3))(1.0, 0.0)
    assert all(bool(jnp.all(jnp.isnan(leaf))) for leaf in jax.tree.leaves(params[0]))
    w = jax.jit(A.weight_for_error)(0.7, 0.1)
    assert bool(jnp.isnan(w))


# ----------------------------------------------------------------------------------------
# Two dimensions
# ----------------------------------------------------------------------------------------

BOX = (0.0, 1.0, 0.0, 1.0)


def test_ridge_is_not_localised_and_the_tower_is():
    h, w = 2.0, 60.0
    ridge = A.ridge_params(0.0, 1.0, h, w)
    tower = A.tower_params(BOX, h, w)
    mlp.check_params(ridge)
    mlp.check_params(tower)
    assert mlp.sizes_of(ridge) == (2, 2, 1) and mlp.sizes_of(tower) == (2, 4, 1, 1)
    centre = jnp.array([[0.5, 0.5]])
    assert float(A.approximate(ridge, centre)[0, 0]) == pytest.approx(h, abs=1e-6)
    assert float(A.approximate(tower, centre)[0, 0]) == pytest.approx(h, abs=1e-6)
    # Far along x2 the ridge is still at full height; the tower is gone.
    far = jnp.array([[0.5, 4.0]])
    assert float(A.approximate(ridge, far)[0, 0]) == pytest.approx(h, abs=1e-6)
    assert abs(float(A.approximate(tower, far)[0, 0])) < 1e-6
    leak_ridge, leak_tower = jax.jit(lambda r, t: [A.leakage(p, BOX, margin=0.3, extent=3.0, num=61) for p in (r, t)])(
        ridge, tower
    )
    assert float(leak_ridge) >= 0.999 * h
    assert float(leak_tower) <= 1e-4 * h
    # The ridge along the other axis is the transposed picture.
    ridge_1 = A.ridge_params(0.0, 1.0, h, w, axis=1)
    assert float(A.approximate(ridge_1, jnp.array([[4.0, 0.5]]))[0, 0]) == pytest.approx(h, abs=1e-6)


def _f2(x1, x2):
    return jnp.sin(2 * x1) * jnp.cos(3 * x2) + 0.5 * x1


@functools.partial(jax.jit, static_argnums=0)
def _tower_errors(n):
    """(sup, mean) errors of the telescoped and the plain towers, on a grid through every cell corner."""
    return [
        A.grid_errors(A.tower_network(_f2, BOX, n, form=form), _f2, BOX, 8 * n + 1) for form in ("telescoped", "towers")
    ]


def test_tower_network_converges_where_plain_towers_fail_at_the_corners():
    # |d f / d x1| <= 2.5 and |d f / d x2| <= 3: the centres near a point are within delta/2 per axis,
    # so f differs there by at most 2.75 delta.
    assert mlp.sizes_of(jax.eval_shape(lambda: A.tower_network(_f2, BOX, 3))) == (2, 6, 9, 1)
    assert mlp.sizes_of(jax.eval_shape(lambda: A.tower_network(_f2, BOX, 3, form="towers"))) == (2, 8, 9, 1)
    (sup2, mean2), (tower_sup2, tower_mean2) = (map(float, e) for e in _tower_errors(2))
    (sup8, mean8), (tower_sup8, tower_mean8) = (map(float, e) for e in _tower_errors(8))
    for n, sup, mean in ((2, sup2, mean2), (8, sup8, mean8)):
        assert mean <= sup <= 2.75 / n * 1.05
    assert sup8 < 0.36 * sup2
    # Plain towers: the mean error falls with the cell size, the sup error (at the corners) does not.
    assert tower_mean8 < 0.4 * tower_mean2
    assert tower_sup8 > 0.9 and tower_sup8 > 5 * sup8


def test_tower_network_vmaps_over_a_parameter_of_the_target():
    def build(k):
        return A.tower_network(lambda x1, x2: jnp.sin(k * x1) + x2, BOX, 3)

    ks = jnp.array([1.0, 2.0])
    batched = jax.jit(jax.vmap(build))(ks)
    for i, k in enumerate(ks):
        for got, want in zip(jax.tree.leaves(batched), jax.tree.leaves(jax.jit(build)(k)), strict=True):
            np.testing.assert_allclose(got[i], want, rtol=1e-13, atol=1e-13)


# ----------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------


@jax.jit
def _train(keys, actives):
    def one(key, active):
        return A.train_shallow(key, _sin3, LO, HI, 6, "sigmoid", 300, num=64, num_eval=257, active=active)

    return jax.vmap(one)(keys, actives)


@pytest.mark.slow
def test_train_shallow_vmaps_over_seeds_and_widths(key):
    keys = jax.random.split(key, 2)
    actives = jnp.array([6, 3])
    batched = _train(keys, actives)
    assert batched.losses.shape == (2, 300)
    # Each member is its own run: swapping the inputs swaps the results.
    swapped = _train(keys[::-1], actives[::-1])
    for got, want in zip(jax.tree.leaves(swapped), jax.tree.leaves(batched), strict=True):
        np.testing.assert_allclose(got, want[::-1], rtol=1e-9)
    for i in range(2):
        params = jax.tree.map(lambda leaf, i=i: leaf[i], batched.params)
        assert mlp.sizes_of(params) == (1, 6, 1)
        np.testing.assert_allclose(batched.sup_error[i], A.sup_error(params, _sin3, LO, HI, 257), rtol=1e-9)
    # Training made progress.
    assert bool(jnp.all(batched.losses[:, -1] < 0.5 * batched.losses[:, 0]))
    # With 3 of 6 units active, the other three start with output weight 0 and get no gradient:
    # after 300 Adam steps their output weights are still exactly 0, so the network has 3 units.
    np.testing.assert_array_equal(batched.params[1]["W"][1, 3:], 0.0)
    assert bool(jnp.all(batched.params[1]["W"][1, :3] != 0)) and bool(jnp.all(batched.params[1]["W"][0] != 0))


# ----------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: A.sigmoid_network(_sin3, 0.0, 1.0, 0), ValueError, "n must be a positive integer"),
        (lambda: A.relu_network(_sin3, 0.0, 1.0, -2), ValueError, "n must be a positive integer"),
        (lambda: A.relu_network(_sin3, 0.0, 1.0, 2.5), TypeError, "n must be an integer"),
        (lambda: A.sigmoid_steps_network(_sin3, 0.0, 1.0, 1), ValueError, "n must be at least 2"),
        (lambda: A.sigmoid_network(_sin3, 1.0, 1.0, 3), ValueError, "lo must be less than hi"),
        (lambda: A.relu_network(_sin3, 2.0, 1.0, 3), ValueError, "lo must be less than hi"),
        (lambda: A.sigmoid_network(_sin3, 0.0, 1.0, 3, w=0.0), ValueError, "w must be positive"),
        (lambda: A.sigmoid_network(_sin3, 0.0, 1.0, 3, w=-4.0), ValueError, "w must be positive"),
        (lambda: A.step_error(-1.0, 0.1), ValueError, "w must be positive"),
        (lambda: A.step_error(1.0, 0.0), ValueError, "margin must be positive"),
        (lambda: A.measured_step_error(1.0, 0.0, -0.1, -1.0, 1.0), ValueError, "margin must be positive"),
        (lambda: A.weight_for_error(0.5, 0.1), ValueError, r"eps must lie in \(0, 0.5\)"),
        (lambda: A.weight_for_error(0.1, -1.0), ValueError, "margin must be positive"),
        (lambda: A.bump_params(1.0, 0.0, 1.0, 10.0), ValueError, "a must be less than b"),
        (lambda: A.bump_params(0.0, 1.0, 1.0, 0.0), ValueError, "w must be positive"),
        (lambda: A.tower_params((0.0, 1.0, 1.0, 0.5), 1.0, 10.0), ValueError, r"box\[2\] must be less than box\[3\]"),
        (lambda: A.tower_params((0.0, 1.0, 0.0), 1.0, 10.0), ValueError, "box must be"),
        (lambda: A.tower_network(_f2, BOX, 2, form="bars"), ValueError, "form must be"),
        (lambda: A.ridge_params(0.0, 1.0, 1.0, 10.0, axis=2), ValueError, "axis must be 0 or 1"),
        (lambda: A.sigmoid_network(lambda x: jnp.sum(x), 0.0, 1.0, 3), ValueError, "f must act elementwise"),
        (lambda: A.sigmoid_bound(-1.0, 0.0, 1.0, 3), ValueError, "lipschitz must be non-negative"),
        (lambda: A.relu_bound(-1.0, 0.0, 1.0, 3), ValueError, "second_derivative_bound must be non-negative"),
        (lambda: A.fit_rate(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.5, 0.2])), ValueError, "same shape"),
        (lambda: A.fit_rate(jnp.array([2.0, 2.0]), jnp.array([1.0, 0.5])), ValueError, "must not all be equal"),
        (lambda: A.fit_rate(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0])), ValueError, "must be positive"),
        (
            lambda: A.sup_error(A.bump_params(0.0, 1.0, 1.0, 5.0), _sin3, 0.0, 1.0, 1),
            ValueError,
            "num must be at least 2",
        ),
        (
            lambda: A.train_shallow(jax.random.key(0), _sin3, 0.0, 1.0, 0),
            ValueError,
            "width must be a positive integer",
        ),
        (
            lambda: A.train_shallow(jax.random.key(0), _sin3, 0.0, 1.0, 4, steps=0),
            ValueError,
            "steps must be a positive",
        ),
        (
            lambda: A.train_shallow(jax.random.key(0), _sin3, 0.0, 1.0, 4, active=5),
            ValueError,
            r"active must lie in \[1, width=4\]",
        ),
    ],
)
def test_invalid_inputs_raise_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
