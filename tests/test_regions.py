"""Tests of fnn.regions: the sawtooth, exact piece counts, the shallow interpolant, grid regions, bounds."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import mlp, regions

# ----------------------------------------------------------------------------------------
# The sawtooth and exact pieces on a line
# ----------------------------------------------------------------------------------------


def _nets(seed, widths, num, input_dim=1, output_dim=1):
    """``num`` random float64 networks (He weights, N(0, 1) biases) as lists of NumPy layer dicts.

    Drawn with NumPy: the counters take any parameters, and this keeps the tests free of
    compilation; :func:`regions.random_network` itself is tested on the grid below.
    """
    rng = np.random.default_rng(seed)
    sizes = (input_dim, *widths, output_dim)
    return [
        [
            {"W": rng.normal(0, math.sqrt(2 / a), (a, b)), "b": rng.normal(0, 1, b)}
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        for _ in range(num)
    ]


def _tent_numpy(x, depth):
    for _ in range(depth):
        x = np.minimum(2 * x, 2 - 2 * x)
    return x


@pytest.mark.parametrize("depth", range(1, 9))
def test_sawtooth_is_the_composed_tent_map_with_2_to_the_L_pieces(depth):
    params = regions.sawtooth_params(depth, dtype=jnp.float64)
    assert mlp.sizes_of(params) == (1, *([2] * depth), 1)
    x = np.concatenate([np.linspace(0, 1, 1025), np.random.default_rng(depth).uniform(0, 1, 1000)])
    y = np.asarray(mlp.apply(params, jnp.asarray(x)[:, None], activation="relu", output_activation="identity"))
    np.testing.assert_allclose(y[:, 0], _tent_numpy(x, depth), rtol=0, atol=1e-13)
    assert regions.count_pieces(params, 0.0, 1.0) == 2**depth
    breakpoints, slopes, _ = regions.linear_pieces(params, 0.0, 1.0)
    np.testing.assert_array_equal(breakpoints, np.arange(2**depth + 1) / 2**depth)
    np.testing.assert_array_equal(np.abs(slopes[:, 0]), 2.0**depth)
    assert np.all(slopes[1:, 0] == -slopes[:-1, 0])  # teeth: the slope alternates


def test_tent_map():
    x = jnp.linspace(0, 1, 101, dtype=jnp.float64)
    np.testing.assert_allclose(regions.tent_map(x), np.minimum(2 * x, 2 - 2 * x), rtol=0, atol=1e-15)


def _piecewise_eval(breakpoints, slopes, intercepts, x):
    idx = np.clip(np.searchsorted(breakpoints, x, side="right") - 1, 0, len(slopes) - 1)
    return slopes[idx] * x[:, None] + intercepts[idx]


@pytest.mark.parametrize("widths", [(4, 4), (3, 3, 3), (8, 8, 8)])
def test_linear_pieces_reproduce_the_network(widths):
    x = np.linspace(-3, 3, 2001)
    for params in _nets(1, widths, 5):
        breakpoints, slopes, intercepts = regions.linear_pieces(params, -3.0, 3.0)
        assert breakpoints[0] == -3.0 and breakpoints[-1] == 3.0 and np.all(np.diff(breakpoints) > 0)
        y = np.asarray(mlp.apply(params, jnp.asarray(x)[:, None]))
        np.testing.assert_allclose(_piecewise_eval(breakpoints, slopes, intercepts, x), y, rtol=0, atol=1e-12)
        # Merged: neighbours differ in slope.
        assert np.all(np.any(np.abs(np.diff(slopes, axis=0)) > 1e-9, axis=1))
        # At most the exact maximum for a 1-D input (Serra et al.: prod (n_l + 1)).
        assert len(slopes) <= regions.deep_region_bound(widths, 1) == math.prod(n + 1 for n in widths)


@pytest.mark.parametrize("sizes", [(1, 4, 4, 1), (1, 3, 3, 3, 1), (1, 6, 5, 2)])
def test_exact_count_agrees_with_brute_force(sizes):
    lo, hi, num = -2.0, 2.0, 40001
    step = (hi - lo) / (num - 1)
    compared = 0
    for params in _nets(2, sizes[1:-1], 20, output_dim=sizes[-1]):
        breakpoints, slopes, _ = regions.linear_pieces(params, lo, hi)
        exact = len(slopes)
        brute = regions.count_pieces_bruteforce(params, lo, hi, num)
        assert brute <= exact
        if np.diff(breakpoints).min() > 3 * step:
            assert brute == exact
            compared += 1
    assert compared >= 15


def test_one_hidden_layer_has_at_most_m_plus_1_pieces():
    for m in (1, 3, 7, 12):
        (params,) = _nets(m, (m,), 1)
        assert regions.count_pieces(params, -1.0, 1.0) <= m + 1
        # On an interval holding every kink -b/w, all m kinks show: exactly m + 1 pieces.
        kinks = -np.asarray(params[0]["b"]) / np.asarray(params[0]["W"][0])
        lo, hi = kinks.min() - 1.0, kinks.max() + 1.0
        assert regions.count_pieces(params, lo, hi) == m + 1 == regions.shallow_region_bound(m, 1)
        assert regions.shallow_width_needed(m + 1) == m


def test_collinear_neighbours_merge_and_vector_outputs():
    # relu(x) - relu(-x) = x: two ReLU pieces, one linear piece.
    identity = [
        {"W": jnp.array([[1.0, -1.0]]), "b": jnp.zeros(2)},
        {"W": jnp.array([[1.0], [-1.0]]), "b": jnp.zeros(1)},
    ]
    assert regions.count_pieces(identity, -1.0, 1.0) == 1
    # Two outputs: the pieces of the vector function are the union of each output's.
    two = [{"W": jnp.array([[1.0, 1.0]]), "b": jnp.array([-0.5, 0.5])}, {"W": jnp.eye(2), "b": jnp.zeros(2)}]
    breakpoints, slopes, _ = regions.linear_pieces(two, -1.0, 1.0)
    np.testing.assert_allclose(breakpoints, [-1.0, -0.5, 0.5, 1.0])
    assert slopes.shape == (3, 2)


@pytest.mark.parametrize("activation", ["leaky_relu", "abs", "hard_tanh"])
def test_other_piecewise_linear_activations(activation):
    (params,) = _nets(3, (5, 5), 1)
    breakpoints, slopes, intercepts = regions.linear_pieces(params, -2.0, 2.0, activation=activation)
    x = np.linspace(-2, 2, 3001)
    y = np.asarray(mlp.apply(params, jnp.asarray(x)[:, None], activation=activation))
    np.testing.assert_allclose(_piecewise_eval(breakpoints, slopes, intercepts, x), y, rtol=0, atol=1e-12)
    brute = regions.count_pieces_bruteforce(params, -2.0, 2.0, 40001, activation=activation)
    assert brute <= len(slopes)
    if np.diff(breakpoints).min() > 3e-4:
        assert brute == len(slopes)


# ----------------------------------------------------------------------------------------
# The shallow interpolant
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", range(1, 11))
def test_shallow_interpolant_reproduces_the_sawtooth(depth):
    deep = regions.sawtooth_params(depth, dtype=jnp.float64)
    shallow = regions.fit_shallow_interpolant(deep, 0.0, 1.0)
    assert mlp.sizes_of(shallow) == (1, 2**depth, 1)  # 2^L units: 2^L - 1 breakpoints + the slope
    assert regions.shallow_width_needed(regions.count_pieces(deep, 0.0, 1.0)) == 2**depth - 1
    dyadic = np.linspace(0, 1, 2 ** (depth + 3) + 1)
    uniform = np.random.default_rng(depth).uniform(0, 1, 2000)
    x = jnp.asarray(np.concatenate([dyadic, uniform]))[:, None]
    gap = np.abs(np.asarray(mlp.apply(shallow, x) - mlp.apply(deep, x)))[:, 0]
    # On a dyadic grid every operation is exact: equal to the last bit.
    assert np.all(gap[: dyadic.size] == 0)
    # Elsewhere float64 summation of 2^L terms of size ~2^L rounds: below 1e-12 up to L = 7.
    assert gap.max() < (1e-12 if depth <= 7 else 4.0**depth * np.finfo(np.float64).eps)


def test_shallow_interpolant_of_a_network_with_a_flat_piece_uses_pieces_minus_one_units():
    # relu(x) - relu(x - 1): flat, ramp, flat; 3 pieces need 2 units.
    clamp = [
        {"W": jnp.array([[1.0, 1.0]]), "b": jnp.array([0.0, -1.0])},
        {"W": jnp.array([[1.0], [-1.0]]), "b": jnp.zeros(1)},
    ]
    shallow = regions.fit_shallow_interpolant(clamp, -1.0, 2.0)
    assert mlp.sizes_of(shallow) == (1, 2, 1)
    x = jnp.linspace(-1, 2, 301, dtype=jnp.float64)[:, None]
    np.testing.assert_allclose(mlp.apply(shallow, x), mlp.apply(clamp, x), rtol=0, atol=1e-15)
    # A random deep net with two outputs: exact up to rounding, P or P - 1 units.
    (deep,) = _nets(4, (6, 6, 6), 1, output_dim=2)
    pieces = regions.count_pieces(deep, -3.0, 3.0)
    shallow = regions.fit_shallow_interpolant(deep, -3.0, 3.0)
    assert mlp.sizes_of(shallow)[1] in (pieces - 1, pieces) and mlp.sizes_of(shallow)[2] == 2
    x = jnp.linspace(-3, 3, 4001, dtype=jnp.float64)[:, None]
    np.testing.assert_allclose(mlp.apply(shallow, x), mlp.apply(deep, x), rtol=0, atol=1e-11)
    assert regions.count_pieces(shallow, -3.0, 3.0) == pieces


# ----------------------------------------------------------------------------------------
# Regions in the plane
# ----------------------------------------------------------------------------------------


def _tangent_lines(angles, radii):
    # Unit k: relu(x . u_k - r_k), whose kink is the line tangent to the circle of radius r_k
    # at angle angles[k]; with directions spread over [0, pi) the lines are in general position.
    w = np.stack([np.cos(angles), np.sin(angles)])
    n = len(angles)
    return [
        {"W": jnp.asarray(w, jnp.float64), "b": jnp.asarray(-radii, jnp.float64)},
        {"W": jnp.ones((n, 1), jnp.float64), "b": jnp.zeros(1, jnp.float64)},
    ]


def test_grid_count_of_a_line_arrangement_reaches_the_zaslavsky_bound():
    # Lines tangent to the unit circle, directions jittered around pi k / n: general position,
    # no tiny triangles, every crossing in a box 1.25 times the farthest one.
    n = 7
    angles = np.pi * (np.arange(n) + np.random.default_rng(0).uniform(0.4, 0.6, n)) / n
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    crossings = [np.linalg.solve(directions[[i, j]], np.ones(2)) for i in range(n) for j in range(i)]
    half = 1.25 * np.abs(crossings).max()
    params = _tangent_lines(angles, np.ones(n))
    bound = regions.shallow_region_bound(n, 2)
    assert bound == 1 + n + n * (n - 1) // 2 == 29
    box = (-half, half, -half, half)
    coarse = regions.count_regions_grid(params, box, 12)
    fine = regions.count_regions_grid(params, box, 200)
    assert coarse.patterns <= fine.patterns == bound  # a lower bound that grows with resolution
    assert fine.components >= fine.patterns


@pytest.mark.slow
def test_grid_count_of_random_shallow_nets_is_at_most_and_near_the_bound(key):
    batch = regions.random_networks(key, (6,), 8, input_dim=2)
    counts = regions.region_counts(batch, (-30, 30, -30, 30), 200, components=False)
    bound = regions.shallow_region_bound(6, 2)
    assert np.all(counts.patterns <= bound)
    assert counts.patterns.mean() >= 0.8 * bound


@pytest.mark.slow
def test_region_counts_batch_matches_single_scipy_and_deep_bounds(key):
    widths, box, res = (3, 3, 3), (-4, 4, -4, 4), 120
    batch = regions.random_networks(key, widths, 4, input_dim=2)
    counts = regions.region_counts(batch, box, res, batch_size=2)
    assert np.all(counts.patterns <= regions.deep_region_bound(widths, 2))
    assert np.all(counts.patterns <= regions.deep_region_bound(widths, 2, method="montufar"))
    assert np.all(counts.components >= counts.patterns)
    from scipy import ndimage

    for i in range(2):
        params = jax.tree.map(lambda leaf, i=i: leaf[i], batch)
        single = regions.count_regions_grid(params, box, res)
        assert (counts.patterns[i], counts.components[i]) == (single.patterns, single.components)
        # Components against scipy's labelling of each pattern's pixels, 8-connected.
        ids = regions.region_map(params, box, res)
        assert ids.shape == (res, res) and single.patterns == len(np.unique(ids))
        labelled = sum(ndimage.label(ids == v, structure=np.ones((3, 3)))[1] for v in np.unique(ids))
        assert single.components == labelled


def test_activation_pattern_matches_the_forward_pass():
    (params,) = _nets(5, (4, 3), 1, input_dim=2)
    x = np.random.default_rng(0).normal(size=(50, 2))
    bits = np.asarray(regions.activation_pattern(params, jnp.asarray(x)))
    z1 = x @ params[0]["W"] + params[0]["b"][None, :]
    z2 = np.maximum(z1, 0) @ params[1]["W"] + params[1]["b"][None, :]
    np.testing.assert_array_equal(bits, np.concatenate([z1 > 0, z2 > 0], axis=1))
    # Hard tanh: two kinks, two bits per unit.
    assert regions.activation_pattern(params, jnp.asarray(x), activation="hard_tanh").shape == (50, 14)


# ----------------------------------------------------------------------------------------
# Bounds
# ----------------------------------------------------------------------------------------


def test_bounds_on_hand_computed_cases():
    assert regions.shallow_region_bound(3, 2) == 7
    assert regions.shallow_region_bound(2, 3) == 4  # n <= d: every sign pattern, 2^n
    assert regions.shallow_region_bound(4, 1) == 5
    assert regions.shallow_region_bound(0, 2) == 1
    # Serra et al.: (2, 2) on the plane. Layer 1: j = 0, 1, 2 leaves dimension 2, 1, 0 with
    # weights 1, 2, 1; layer 2 adds 1 + 2 + 1, 1 + 2, 1 choices: 4 + 2 * 3 + 1 = 11.
    assert regions.deep_region_bound((2, 2), 2) == 11
    assert regions.deep_region_bound((3, 3, 3), 2) == 208
    assert regions.deep_region_bound((2, 3, 4), 1) == 3 * 4 * 5  # exact on a line
    assert regions.deep_region_bound((9,), 2) == regions.shallow_region_bound(9, 2)
    assert regions.deep_region_bound((3, 3, 3), 2, method="montufar") == 7**3
    assert regions.deep_region_bound((2, 5), 3, method="montufar") == 4 * 16
    assert regions.deep_region_lower_bound((3, 3, 3), 2) == 7
    assert regions.deep_region_lower_bound((4, 4), 2) == 4 * 11
    assert regions.deep_region_lower_bound((2, 2, 2), 1) == 2 * 2 * 3
    assert regions.deep_region_lower_bound((24,), 2) == 301


def test_bounds_are_ordered():
    for widths in [(9,), (3, 3, 3), (12, 12), (8, 8, 8), (6, 6, 6, 6), (5, 2, 7)]:
        for d in (1, 2, 3):
            serra = regions.deep_region_bound(widths, d)
            assert serra <= regions.deep_region_bound(widths, d, method="montufar")
            if min(widths) >= d:
                assert regions.deep_region_lower_bound(widths, d) <= serra


# ----------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------


def test_invalid_inputs():
    saw = regions.sawtooth_params(2, dtype=jnp.float64)
    with pytest.raises(ValueError, match="depth must be a positive integer, got 0"):
        regions.sawtooth_params(0)
    with pytest.raises(ValueError, match="lo must be less than hi"):
        regions.count_pieces(saw, 1.0, 0.0)
    with pytest.raises(ValueError, match="lo must be less than hi"):
        regions.count_pieces_bruteforce(saw, 0.5, 0.5, 100)
    with pytest.raises(ValueError, match="lo must be finite"):
        regions.linear_pieces(saw, -np.inf, 0.0)
    with pytest.raises(ValueError, match="activation must be a piecewise-linear activation.*'tanh'"):
        regions.count_pieces(saw, 0.0, 1.0, activation="tanh")
    with pytest.raises(ValueError, match="output_activation must be a piecewise-linear.*'sigmoid'"):
        regions.count_pieces(saw, 0.0, 1.0, output_activation="sigmoid")
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        regions.count_pieces(saw, 0.0, 1.0, activation="nope")
    with pytest.raises(ValueError, match="params must take a 1-D input"):
        regions.count_pieces(mlp.init(jax.random.key(0), [2, 3, 1]), 0.0, 1.0)
    with pytest.raises(ValueError, match="params must take a 2-D input"):
        regions.count_regions_grid(saw, (0, 1, 0, 1), 10)
    (net2,) = _nets(0, (3,), 1, input_dim=2)
    with pytest.raises(ValueError, match="box must be finite with x_lo < x_hi"):
        regions.count_regions_grid(net2, (1, 0, 0, 1), 10)
    with pytest.raises(ValueError, match="box must be four numbers"):
        regions.count_regions_grid(net2, (0, 1, 0), 10)
    with pytest.raises(ValueError, match="resolution must be at least 2"):
        regions.count_regions_grid(net2, (0, 1, 0, 1), 1)
    with pytest.raises(ValueError, match="params must be finite"):
        regions.count_pieces([{"W": np.array([[np.nan]]), "b": np.zeros(1)}], 0.0, 1.0)

    def stacked(n_in):
        return [{"W": np.zeros((2, n_in, 3)), "b": np.zeros((2, 3))}, {"W": np.zeros((2, 3, 1)), "b": np.zeros((2, 1))}]

    with pytest.raises(ValueError, match="params must take a 2-D input"):
        regions.region_counts(stacked(3), (0, 1, 0, 1), 10)
    with pytest.raises(ValueError, match=r"params_batch\[1\] must hold W \[S, in, out\]"):
        regions.region_counts([stacked(2)[0], net2[1]], (0, 1, 0, 1), 10)
    with pytest.raises(ValueError, match="same number of networks"):
        regions.region_counts([stacked(2)[0], {"W": np.zeros((5, 3, 1)), "b": np.zeros((5, 1))}], (0, 1, 0, 1), 10)
    with pytest.raises(ValueError, match="num must be at least 3"):
        regions.count_pieces_bruteforce(saw, 0.0, 1.0, 2)
    with pytest.raises(ValueError, match="pieces must be a positive integer"):
        regions.shallow_width_needed(0)
    with pytest.raises(ValueError, match="widths must be a non-empty sequence"):
        regions.deep_region_bound((), 2)
    with pytest.raises(ValueError, match=r"widths\[1\] must be a positive integer"):
        regions.deep_region_bound((3, 0), 2)
    with pytest.raises(ValueError, match="method must be 'serra' or 'montufar'"):
        regions.deep_region_bound((3,), 2, method="raghu")
    with pytest.raises(ValueError, match="widths must all be at least input_dim=2"):
        regions.deep_region_lower_bound((1, 3), 2)
    with pytest.raises(ValueError, match="n_units must be a non-negative integer"):
        regions.shallow_region_bound(-1, 2)
    with pytest.raises(ValueError, match="input_dim must be a positive integer"):
        regions.shallow_region_bound(3, 0)
