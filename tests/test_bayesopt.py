"""Tests of fnn.bayesopt: the box, expected improvement, batch proposals, the search loops, BO vs random search."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

from fnn import bayesopt as bo
from fnn import gaussian_process as gp

BRANIN_BOX = bo.Box(("x1", "x2"), (-5.0, 0.0), (10.0, 15.0))
# Small settings shared by every search below, so that the proposal compiles once for the file.
SEARCH = dict(rounds=5, batch_size=4, initial=4)
SETTINGS = dict(fit_restarts=3, fit_steps=100, candidates=512, ascent_starts=6, ascent_steps=30)

# Compiled once each: op-by-op dispatch is slower than one compile.
jit_ei = jax.jit(bo.expected_improvement)
log_ei = jax.jit(bo.log_expected_improvement)
branin = jax.jit(bo.branin)
condition = jax.jit(gp.condition)
predict = jax.jit(gp.predict)
log_ei_grad = jax.jit(jax.grad(lambda m, v, b: bo.log_expected_improvement(m, v, b)))


def _branin_objective(calls=None):
    def objective(p):
        if calls is not None:
            calls.append({k: np.asarray(v) for k, v in p.items()})
        return bo.branin(jnp.stack([p["x1"], p["x2"]], -1))

    return objective


# ----------------------------------------------------------------------------------------
# The box
# ----------------------------------------------------------------------------------------


def test_box_round_trip_and_log_mapping(key):
    box = bo.Box(("lr", "wd", "width"), (1e-4, 1e-6, 8.0), (1.0, 0.1, 64.0), log=(True, True, False))
    unit = jax.random.uniform(key, (20, 3), jnp.float64)
    values = bo.from_unit(box, unit)
    np.testing.assert_allclose(bo.to_unit(box, values), unit, rtol=0, atol=1e-13)
    for name, lo, hi in zip(box.names, box.lows, box.highs, strict=True):
        v = np.asarray(values[name])
        assert v.shape == (20,) and np.all((v >= lo) & (v <= hi))
    # The centre of a log dimension is the geometric mean of its ends.
    centre = bo.from_unit(box, jnp.full((3,), 0.5, jnp.float64))
    np.testing.assert_allclose([centre["lr"], centre["wd"], centre["width"]], [1e-2, math.sqrt(1e-7), 36.0], rtol=1e-13)
    assert hash(box) == hash(bo.Box(["lr", "wd", "width"], [1e-4, 1e-6, 8], [1, 0.1, 64], log=[True, True, False]))


def test_sample_is_uniform_in_log_space(key):
    box = bo.Box(("lr",), (1e-4,), (1.0,), log=True)
    values, unit = bo.sample(box, key, 4000)
    lr = np.asarray(values["lr"])
    np.testing.assert_allclose(bo.from_unit(box, unit)["lr"], lr, rtol=1e-14)
    # Each decade holds a quarter of the draws (binomial s.d. 0.007).
    counts = np.histogram(np.log10(lr), bins=[-4, -3, -2, -1, 0])[0] / 4000
    np.testing.assert_allclose(counts, 0.25, atol=0.03)


def test_box_validation():
    with pytest.raises(ValueError, match=r"names must be unique, got \['a'\]"):
        bo.Box(("a", "a"), (0, 0), (1, 1))
    with pytest.raises(ValueError, match=r"lows must be below highs, got lows\[1\] = 2 >= highs\[1\] = 1 \(b\)"):
        bo.Box(("a", "b"), (0, 2), (1, 1))
    with pytest.raises(ValueError, match=r"lows must be positive for a log dimension, got lows\[0\] = 0"):
        bo.Box(("lr",), (0.0,), (1.0,), log=True)
    with pytest.raises(ValueError, match=r"highs must have one entry per name \(2\), got 1"):
        bo.Box(("a", "b"), (0, 0), (1,))
    with pytest.raises(ValueError, match="log must have one entry per name"):
        bo.Box(("a", "b"), (0, 0), (1, 1), log=(True,))
    with pytest.raises(ValueError, match="lows must be finite"):
        bo.Box(("a",), (-math.inf,), (1,))
    with pytest.raises(ValueError, match="names must name at least one"):
        bo.Box((), (), ())
    with pytest.raises(TypeError, match="names must be a sequence of strings"):
        bo.Box("ab", (0, 0), (1, 1))
    box = bo.Box(("lr",), (1e-4,), (1.0,), log=True)
    with pytest.raises(ValueError, match=r"values\['lr'\] must be positive"):
        bo.to_unit(box, {"lr": jnp.array([-1.0])})
    with pytest.raises(ValueError, match=r"values must be a dict with keys \['lr'\]"):
        bo.to_unit(box, {"learning_rate": jnp.array([1.0])})
    with pytest.raises(ValueError, match=r"unit must have shape \[\.\.\., 1\]"):
        bo.from_unit(box, jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        bo.sample(box, jax.random.key(0), 0)


# ----------------------------------------------------------------------------------------
# Expected improvement
# ----------------------------------------------------------------------------------------


def test_expected_improvement_matches_monte_carlo():
    mean = jnp.array([0.0, 0.3, -0.5, 1.5, 0.0], jnp.float64)
    variance = jnp.array([1.0, 0.04, 2.0, 0.25, 1e-30], jnp.float64)
    best = 0.2
    ei = jit_ei(mean, variance, best)
    normal = np.random.default_rng(0).standard_normal((400_000, 5))
    draws = np.asarray(mean)[None, :] + np.sqrt(np.asarray(variance))[None, :] * normal
    improvement = np.maximum(best - draws, 0.0)
    mc, se = improvement.mean(axis=0), improvement.std(axis=0) / math.sqrt(400_000)
    assert np.all(np.abs(np.asarray(ei) - mc) <= 4 * se + 1e-9)  # 1e-9: rounding of the 400k-term mean
    # The last point is certain: EI is exactly the improvement best - mean.
    np.testing.assert_allclose(ei[-1], 0.2, rtol=1e-12)
    # The textbook form sigma (z Phi(z) + phi(z)) where it has no cancellation.
    sigma = np.sqrt(np.asarray(variance[:4]))
    z = (best - np.asarray(mean[:4])) / sigma
    np.testing.assert_allclose(
        ei[:4], sigma * (z * special.ndtr(z) + np.exp(-(z**2) / 2) / math.sqrt(2 * math.pi)), rtol=1e-13
    )


def test_log_expected_improvement_is_accurate_and_finite_far_in_the_tail():
    # log h(z) = log of the integral of Phi from -inf to z, computed by quadrature as a reference.
    z = np.array([3.0, 0.0, -0.999, -1.0, -1.001, -4.0, -11.99, -12.0, -12.01, -20.0, -35.0])
    ref = [
        math.log(
            integrate.quad(
                lambda t, zz=zz: special.ndtr(t) / special.ndtr(zz), zz - 12, zz, epsabs=0, epsrel=1e-13, limit=200
            )[0]
        )
        + special.log_ndtr(zz)
        for zz in z
    ]
    got = log_ei(jnp.asarray(-z, jnp.float64), jnp.ones(len(z), jnp.float64), 0.0)
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    # Where EI underflows log EI is still finite, with a finite slope that points downhill.
    far = log_ei(jnp.array([60.0, 1e6], jnp.float64), jnp.ones(2, jnp.float64), 0.0)
    assert np.all(np.isfinite(np.asarray(far))) and float(far[1]) < -4e11
    assert float(jit_ei(jnp.array(60.0), jnp.array(1.0), 0.0)) == 0.0
    slope = log_ei_grad(jnp.array(60.0, jnp.float64), jnp.array(1.0, jnp.float64), 0.0)
    np.testing.assert_allclose(slope, -60.0 - 2 / 60, rtol=1e-3)  # d/dmu of -z^2/2 - 2 log z
    # float32: the same values to float32 accuracy.
    got32 = log_ei(jnp.asarray(-z, jnp.float32), jnp.ones(len(z), jnp.float32), 0.0)
    assert got32.dtype == jnp.float32
    np.testing.assert_allclose(got32, ref, rtol=1e-5)


@pytest.mark.slow
def test_expected_improvement_is_zero_at_noise_free_observations(key):
    x = jax.random.uniform(key, (8, 2), jnp.float64)
    y = gp.standardize(branin(jnp.array([[-5.0, 0.0]]) + 15 * x))[0]
    params = gp.GPParams(jnp.log(jnp.array([0.3, 0.3])), jnp.array(0.0), jnp.array(-60.0), jnp.array(0.0))
    post = condition(params, x, y)
    mean, var = predict(post, x)
    at_data = jit_ei(mean, var, jnp.min(y))
    grid = jnp.stack(jnp.meshgrid(jnp.linspace(0, 1, 15), jnp.linspace(0, 1, 15)), -1).reshape(-1, 2)
    elsewhere = jit_ei(*predict(post, grid), jnp.min(y))
    assert np.all(np.asarray(at_data) >= 0) and np.all(np.asarray(elsewhere) >= 0)
    assert float(jnp.max(at_data)) < 1e-3  # sigma there is ~1e-3, the square root of the noise floor
    assert float(jnp.max(elsewhere)) > 100 * float(jnp.max(at_data))


def test_expected_improvement_validation():
    with pytest.raises(ValueError, match="mean and variance must have the same shape"):
        bo.expected_improvement(jnp.zeros(3), jnp.ones(2), 0.0)
    with pytest.raises(ValueError, match="best must be a scalar or have the shape of mean"):
        bo.expected_improvement(jnp.zeros(3), jnp.ones(3), jnp.zeros(2))


# ----------------------------------------------------------------------------------------
# Proposals and the search loops (all with SEARCH and SETTINGS: one compilation)
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_minimize_trace_call_structure_and_no_retrace(key):
    calls = []
    trace = bo.minimize(_branin_objective(calls), BRANIN_BOX, key, **SEARCH, **SETTINGS)
    n = SEARCH["initial"] + SEARCH["rounds"] * SEARCH["batch_size"]
    assert len(calls) == SEARCH["rounds"] + 1 and all(c["x1"].shape == (4,) for c in calls)
    assert trace.unit.shape == (n, 2) and trace.values.shape == (n,) and trace.points["x1"].shape == (n,)
    np.testing.assert_array_equal(trace.round, np.repeat(np.arange(6), 4))
    np.testing.assert_allclose(
        trace.values, branin(jnp.stack([trace.points["x1"], trace.points["x2"]], -1)), rtol=1e-12
    )
    np.testing.assert_allclose(trace.best, np.minimum.accumulate(np.asarray(trace.values)), rtol=0)
    assert float(trace.best_value) == float(jnp.min(trace.values))
    assert float(branin(jnp.stack([trace.best_point["x1"], trace.best_point["x2"]]))) == float(trace.best_value)
    # Every round's points are distinct and inside the box.
    unit = np.asarray(trace.unit)
    assert np.all((unit >= 0) & (unit <= 1))
    for r in range(1, SEARCH["rounds"] + 1):
        batch = unit[np.asarray(trace.round) == r]
        gaps = np.linalg.norm(batch[:, None] - batch[None], axis=-1) + np.eye(4)
        assert gaps.min() > 1e-3, (r, batch)
    # Random search starts from the same design, and a second search does not recompile.
    size = bo._propose._cache_size()
    random = bo.random_search(_branin_objective(), BRANIN_BOX, key, **SEARCH)
    np.testing.assert_array_equal(random.unit[:4], trace.unit[:4])
    bo.minimize(_branin_objective(), BRANIN_BOX, jax.random.fold_in(key, 1), **SEARCH, **SETTINGS)
    assert bo._propose._cache_size() == size


@pytest.mark.slow
def test_nonfinite_values_are_kept_and_treated_as_the_worst(key):
    def objective(p):
        value = branin(jnp.stack([p["x1"], p["x2"]], -1))
        return jnp.where(p["x1"] > 5.0, jnp.nan, jnp.where(p["x2"] > 13.0, jnp.inf, value))

    trace = bo.minimize(objective, BRANIN_BOX, key, **SEARCH, **SETTINGS)
    values = np.asarray(trace.values)
    bad = ~np.isfinite(values)
    assert bad.any() and np.isfinite(float(trace.best_value))
    assert float(trace.best_value) == values[~bad].min()
    # The surrogate sees a failed point as the worst finite value observed.
    mask = jnp.arange(6) < 5
    imputed = bo._impute(jnp.array([1.0, jnp.nan, 3.0, jnp.inf, -2.0, jnp.nan], jnp.float64), mask)
    np.testing.assert_array_equal(imputed, [1.0, 3.0, 3.0, 3.0, -2.0, 0.0])
    np.testing.assert_array_equal(bo._impute(jnp.full(3, jnp.nan, jnp.float64), jnp.ones(3, bool)), [0.0] * 3)


def test_bayesian_optimisation_beats_random_search_on_branin():
    # Same budget (24 evaluations in 6 calls), same initial designs, 4 seeds.
    regrets = {"bo": [], "random": []}
    for seed in range(4):
        k = jax.random.key(100 + seed)
        bo_trace = bo.minimize(_branin_objective(), BRANIN_BOX, k, **SEARCH, **SETTINGS)
        rs_trace = bo.random_search(_branin_objective(), BRANIN_BOX, k, **SEARCH)
        regrets["bo"].append(float(bo_trace.best_value) - bo.BRANIN_MINIMUM)
        regrets["random"].append(float(rs_trace.best_value) - bo.BRANIN_MINIMUM)
    mean_bo, mean_rs = np.mean(regrets["bo"]), np.mean(regrets["random"])
    print(f"mean best regret after 24 evaluations: BO {mean_bo:.4f}, random search {mean_rs:.4f}")
    assert min(regrets["bo"]) >= 0 and min(regrets["random"]) >= 0
    assert mean_bo < mean_rs / 3
    assert mean_bo < 0.5


def test_propose_validation_and_search_errors(key):
    unit, values, mask = jnp.zeros((4, 2)), jnp.zeros(4), jnp.ones(4, bool)
    with pytest.raises(ValueError, match="mask must mark at least one evaluated point"):
        bo.propose(key, unit, values, jnp.zeros(4, bool), batch_size=2)
    with pytest.raises(ValueError, match=r"values must have shape \(4,\)"):
        bo.propose(key, unit, jnp.zeros(3), mask, batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        bo.propose(key, unit, values, mask, batch_size=0)
    with pytest.raises(ValueError, match="kernel must be one of"):
        bo.propose(key, unit, values, mask, batch_size=2, kernel="linear")
    with pytest.raises(ValueError, match="candidates must be at least 4/3 of ascent_starts"):
        bo.propose(key, unit, values, mask, batch_size=2, candidates=8, ascent_starts=8)
    with pytest.raises(ValueError, match="rounds must be a non-negative integer"):
        bo.minimize(_branin_objective(), BRANIN_BOX, key, rounds=-1, batch_size=2)
    with pytest.raises(ValueError, match="initial must be a positive integer"):
        bo.random_search(_branin_objective(), BRANIN_BOX, key, rounds=1, batch_size=2, initial=0)
    with pytest.raises(TypeError, match="box must be a Box"):
        bo.random_search(_branin_objective(), {"x1": (0, 1)}, key, rounds=1, batch_size=2)
    with pytest.raises(ValueError, match="key must be a single PRNG key"):
        bo.random_search(_branin_objective(), BRANIN_BOX, jax.random.split(key, 2), rounds=1, batch_size=2)
    with pytest.raises(ValueError, match=r"objective must return one value per point, shape \(2,\), got \(2, 1\)"):
        bo.random_search(lambda p: p["x1"][:, None], BRANIN_BOX, key, rounds=1, batch_size=2)


def test_benchmark_functions_at_their_minima():
    minimisers = jnp.array([[-math.pi, 12.275], [math.pi, 2.275], [9.42478, 2.475]], jnp.float64)
    np.testing.assert_allclose(branin(minimisers), bo.BRANIN_MINIMUM, rtol=1e-6)
    np.testing.assert_allclose(
        bo.hartmann3(jnp.array([[0.114614, 0.555649, 0.852547]], jnp.float64)), [bo.HARTMANN3_MINIMUM], rtol=1e-6
    )
    values, _ = bo.sample(bo.Box(("a", "b", "c"), (0, 0, 0), (1, 1, 1)), jax.random.key(3), 500)
    grid = jnp.stack([values["a"], values["b"], values["c"]], -1)
    assert float(jnp.min(jax.jit(bo.hartmann3)(grid))) > bo.HARTMANN3_MINIMUM
    with pytest.raises(ValueError, match=r"branin takes x of shape \[\.\.\., 2\]"):
        bo.branin(jnp.zeros(3))
