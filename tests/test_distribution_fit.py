"""Tests of fnn.distribution_fit: the mixture, the divergences against references, fits with known answers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from fnn import descent, gradcheck, losses, optimizers
from fnn import distribution_fit as df

# One step count and learning rate for every fit, so that each divergence's loop compiles once.
STEPS, LR = 1500, 0.05
STARTS = (-5.0, -3.0, -1.0, 1.0, 3.0, 5.0)


def _target():
    # Asymmetric and well separated: the modes are 6 apart, 6 and 8.6 component stds.
    return df.mixture(jnp.array([0.6, 0.4]), jnp.array([-3.0, 3.0]), jnp.array([0.7, 1.0]))


def _gaussian_kl(m1, s1, m2, s2):
    """KL(N(m1, s1^2) || N(m2, s2^2)) in closed form."""
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def _multistart(divergence, target=None, **kwargs):
    target = _target() if target is None else target
    return df.fit_gaussian_multistart(
        target, divergence, init_means=jnp.array(STARTS), init_std=1.0, steps=STEPS, learning_rate=LR, **kwargs
    )


# ----------------------------------------------------------------------------------------
# The mixture.
# ----------------------------------------------------------------------------------------


def test_mixture_logpdf_against_direct_sum_and_far_out():
    w, mu, sd = _target()
    x = jnp.linspace(-8.0, 8.0, 41)
    direct = np.log(
        sum(
            float(w[k])
            * np.exp(-0.5 * ((np.asarray(x) - float(mu[k])) / float(sd[k])) ** 2)
            / (float(sd[k]) * math.sqrt(2 * math.pi))
            for k in range(2)
        )
    )
    np.testing.assert_allclose(df.mixture_logpdf(x, w, mu, sd), direct, rtol=1e-13)
    # Far out the density underflows, but its log is that of the widest component (std 1, at 3).
    far = df.mixture_logpdf(jnp.array([-1e3, 1e3]), w, mu, sd)
    expected = [math.log(0.4) - 0.5 * (x - 3.0) ** 2 - 0.5 * math.log(2 * math.pi) for x in (-1e3, 1e3)]
    np.testing.assert_allclose(far, expected, rtol=1e-13)
    # A zero weight drops its component, with a finite gradient.
    g = jax.grad(lambda w: df.mixture_logpdf(jnp.array(0.5), w, mu, sd))(jnp.array([1.0, 0.0]))
    assert np.all(np.isfinite(np.asarray(g)))
    # Shape of x is kept.
    assert df.mixture_logpdf(jnp.zeros((3, 4)), w, mu, sd).shape == (3, 4)


def test_mixture_sample_moments_and_zero_weight(key):
    target = _target()
    x = df.mixture_sample(key, 40000, *target)
    assert x.shape == (40000,) and x.dtype == jnp.float64
    mean, std = df.moments(target)
    # Standard errors: std / sqrt(n) = 0.015 for the mean; about 0.01 for the std.
    assert abs(float(jnp.mean(x)) - float(mean)) < 0.06
    assert abs(float(jnp.std(x)) - float(std)) < 0.05
    assert abs(float(jnp.mean(x < 0)) - 0.6) < 0.01
    y = df.mixture_sample(key, 1000, jnp.array([0.0, 1.0]), jnp.array([-100.0, 0.0]), jnp.array([1.0, 1.0]))
    assert float(jnp.min(y)) > -10


def test_moments_against_samples_formula():
    mean, std = df.moments(
        df.mixture(jnp.array([0.2, 0.3, 0.5]), jnp.array([-1.0, 0.0, 2.0]), jnp.array([0.5, 1.0, 2.0]))
    )
    m = 0.2 * -1 + 0.5 * 2
    var = 0.2 * (0.25 + 1) + 0.3 * 1 + 0.5 * (4 + 4) - m**2
    assert float(mean) == pytest.approx(m, rel=1e-14)
    assert float(std) ** 2 == pytest.approx(var, rel=1e-14)


@pytest.mark.parametrize(
    "weights, means, stds, error, match",
    [
        ([0.5, 0.6], [-1.0, 1.0], [1.0, 1.0], ValueError, r"weights must sum to 1, got a sum of 1\.1"),
        ([1.2, -0.2], [-1.0, 1.0], [1.0, 1.0], ValueError, r"weights must be non-negative, got \[1\.2, -0\.2\]"),
        ([0.5, 0.5], [-1.0, 1.0], [1.0, -1.0], ValueError, r"stds must be positive, got \[1\.0, -1\.0\]"),
        ([0.5, 0.5], [-1.0, 1.0], [1.0, 0.0], ValueError, r"stds must be positive"),
        (
            [0.5, 0.5],
            [-1.0, 0.0, 1.0],
            [1.0, 1.0],
            ValueError,
            r"weights and means must have the same shape, got \(2,\) and \(3,\)",
        ),
        ([0.5, 0.5], [-1.0, 1.0], [1.0], ValueError, r"weights and stds must have the same shape"),
        ([[0.5, 0.5]], [[-1.0, 1.0]], [[1.0, 1.0]], ValueError, r"weights must have rank 1, got shape \(1, 2\)"),
        ([], [], [], ValueError, r"weights must hold at least one example"),
        ([1, 0], [-1.0, 1.0], [1.0, 1.0], TypeError, r"weights must be a floating-point array, got dtype int"),
    ],
)
def test_mixture_validation(weights, means, stds, error, match):
    args = [
        jnp.asarray(a, jnp.float64) if np.asarray(a).dtype.kind == "f" or np.size(a) == 0 else jnp.asarray(a)
        for a in (weights, means, stds)
    ]
    with pytest.raises(error, match=match):
        df.mixture(*args)
    with pytest.raises(error, match=match):
        df.mixture_logpdf(jnp.zeros(3), *args)
    with pytest.raises(error, match=match):
        df.kl_forward(df.gaussian_params(0.0, 1.0), df.Mixture(*args))


def test_invalid_values_under_jit_give_nan_not_silence():
    _, mu, sd = _target()
    params = df.gaussian_params(0.0, 1.0)
    bad = jnp.array([0.7, 0.7])
    for fn in (df.kl_forward, df.kl_reverse, df.js, df.mmd):
        assert np.isnan(float(jax.jit(lambda w, fn=fn: fn(params, df.Mixture(w, mu, sd)))(bad)))
    assert np.all(np.isnan(np.asarray(jax.jit(lambda w: df.mixture_logpdf(jnp.zeros(2), w, mu, sd))(bad))))
    assert np.isnan(float(jax.jit(lambda h: df.mmd(params, _target(), h))(-1.0)))


def test_model_parameters_and_validation():
    params = df.gaussian_params(1.5, 0.5)
    assert set(params) == {"mean", "log_std"}
    m, s = df.mean_std(params)
    assert float(m) == 1.5 and float(s) == pytest.approx(0.5, rel=1e-15)
    x = jnp.linspace(-3.0, 3.0, 7)
    expected = -0.5 * ((np.asarray(x) - 1.5) / 0.5) ** 2 - math.log(0.5) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(df.gaussian_logpdf(x, params), expected, rtol=1e-14)
    # Any log_std gives a positive, finite std.
    for log_std in (-1e4, 1e4):
        s = df.mean_std({"mean": jnp.array(0.0), "log_std": jnp.array(log_std)})[1]
        assert 0 < float(s) < math.inf
    with pytest.raises(ValueError, match=r"std must be positive, got -1\.0"):
        df.gaussian_params(0.0, -1.0)
    with pytest.raises(ValueError, match=r"mean must be a scalar, got shape \(2,\)"):
        df.gaussian_params(jnp.zeros(2), 1.0)
    with pytest.raises(TypeError, match=r'params must be a dict \{"mean", "log_std"\}'):
        df.kl_forward({"mean": 0.0, "std": 1.0}, _target())
    with pytest.raises(TypeError, match="target must be a Mixture"):
        df.kl_forward(params, (jnp.ones(1), jnp.zeros(1)))
    with pytest.raises(ValueError, match=r"bandwidth must be positive, got -0\.5"):
        df.mmd(params, _target(), -0.5)
    with pytest.raises(ValueError, match=r"bandwidth must be a scalar"):
        df.mmd(params, _target(), jnp.ones(2))


# ----------------------------------------------------------------------------------------
# The divergences against references.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("m, s", [(0.0, 1.0), (1.3, 0.4), (-2.0, 3.0), (40.0, 0.05)])
def test_kl_against_closed_form_between_gaussians(m, s):
    # A single-component target: both KLs have closed forms.
    target = df.mixture(jnp.array([1.0]), jnp.array([0.5]), jnp.array([1.2]))
    params = df.gaussian_params(m, s)
    np.testing.assert_allclose(
        float(df.kl_forward(params, target)), _gaussian_kl(0.5, 1.2, m, s), rtol=1e-12, atol=1e-14
    )
    np.testing.assert_allclose(
        float(df.kl_reverse(params, target)), _gaussian_kl(m, s, 0.5, 1.2), rtol=1e-12, atol=1e-14
    )


def test_divergences_nonnegative_bounded_and_zero_at_equality(key):
    k_m, k_s = jax.random.split(key)
    means = jax.random.uniform(k_m, (12,), jnp.float64, -6.0, 6.0)
    stds = jax.random.uniform(k_s, (12,), jnp.float64, 0.2, 5.0)
    target = _target()
    for m, s in zip(means, stds, strict=True):
        params = df.gaussian_params(m, s)
        for fn in (df.kl_forward, df.kl_reverse, df.js, df.mmd):
            assert float(fn(params, target)) > 0
        assert float(df.js(params, target)) <= math.log(2)
        assert float(df.mmd(params, target, 0.3)) <= 2
    # q equal to a single-component target: every divergence is zero.
    single = df.mixture(jnp.array([1.0]), jnp.array([0.7]), jnp.array([1.3]))
    params = df.gaussian_params(0.7, 1.3)
    for fn in (df.kl_forward, df.kl_reverse, df.js, df.mmd):
        assert abs(float(fn(params, single))) < 1e-14
    # Far apart, JS reaches log 2.
    assert float(df.js(df.gaussian_params(200.0, 1.0), single)) == pytest.approx(math.log(2), abs=1e-12)


@pytest.mark.parametrize("m, s", [(0.3, 1.5), (-2.8, 0.8), (1.0, 3.0)])
def test_agreement_with_fnn_losses_on_a_discretised_grid(m, s):
    params, target = df.gaussian_params(m, s), _target()
    p, q = df.discretize(params, target, jnp.linspace(-25.0, 25.0, 5001))
    assert float(jnp.sum(p)) == pytest.approx(1.0, abs=1e-14) and float(jnp.min(q)) >= 0
    np.testing.assert_allclose(float(losses.kl_divergence(p, q)), float(df.kl_forward(params, target)), rtol=1e-9)
    np.testing.assert_allclose(float(losses.kl_divergence(q, p)), float(df.kl_reverse(params, target)), rtol=1e-9)
    np.testing.assert_allclose(float(losses.js_divergence(p, q)), float(df.js(params, target)), rtol=1e-9)


def test_discretize_validation():
    params, target = df.gaussian_params(0.0, 1.0), _target()
    with pytest.raises(ValueError, match="grid must be increasing and equally spaced"):
        df.discretize(params, target, jnp.array([0.0, 1.0, 3.0]))
    with pytest.raises(ValueError, match="grid must hold at least 2 points"):
        df.discretize(params, target, jnp.array([0.0]))


@pytest.mark.parametrize("m, s, h", [(0.5, 1.0, 1.0), (-2.0, 0.5, 0.3), (4.0, 2.0, 3.0)])
def test_mmd_closed_form_against_double_quadrature(m, s, h):
    params, target = df.gaussian_params(m, s), _target()
    x = jnp.linspace(-20.0, 20.0, 1601)
    dx = x[1] - x[0]
    p = jnp.exp(df.mixture_logpdf(x, *target)) * dx
    q = jnp.exp(df.gaussian_logpdf(x, params)) * dx
    k = jnp.exp(-jnp.square(x[:, None] - x[None, :]) / (2 * h**2))
    reference = p @ k @ p + q @ k @ q - 2 * p @ k @ q
    np.testing.assert_allclose(float(df.mmd(params, target, h)), float(reference), rtol=1e-10, atol=1e-13)


def test_mmd_closed_form_against_fnn_losses_mmd_on_samples(key):
    params, target, h = df.gaussian_params(1.0, 0.8), _target(), 1.0
    n = 1500
    k_p, k_q = jax.random.split(key)
    x = df.mixture_sample(k_p, n, *target)
    y = 1.0 + 0.8 * jax.random.normal(k_q, (n,), jnp.float64)
    estimate = float(losses.mmd(y, x, h))
    # The V-statistic's diagonal adds (1 - E k(X, X'))/n + (1 - E k(Y, Y'))/n in expectation.
    w, mu, sd = (np.asarray(a) for a in target)
    v = h**2 + sd[:, None] ** 2 + sd[None, :] ** 2
    e_pp = float(
        np.sum(w[:, None] * w[None, :] * h / np.sqrt(v) * np.exp(-((mu[:, None] - mu[None, :]) ** 2) / (2 * v)))
    )
    e_qq = h / math.sqrt(h**2 + 2 * 0.8**2)
    expected = float(df.mmd(params, target, h)) + (1 - e_pp) / n + (1 - e_qq) / n
    # The estimator's standard deviation here is about 0.005 (measured over seeds).
    assert abs(estimate - expected) < 0.025
    assert float(df.mmd(params, target, h)) > 0.1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kl_forward", "kl_reverse", "js", "mmd"])
def test_gradients_against_finite_differences(name):
    fn = getattr(df, name)
    target = _target()
    report = gradcheck.check_gradients(lambda p: fn(p, target), df.gaussian_params(-1.2, 1.7))
    assert report.max_error("autodiff_vs_fd") < 1e-7, str(report)
    # Differentiable in the target as well (a sweep over it is differentiable too).
    params = df.gaussian_params(0.4, 1.7)
    check_grads(
        jax.jit(lambda d: fn(params, df.bimodal(d, weights=(0.6, 0.4)))),
        (4.0,),
        order=1,
        modes=["rev"],
        atol=1e-6,
        rtol=1e-6,
    )


# ----------------------------------------------------------------------------------------
# Fits with known answers.
# ----------------------------------------------------------------------------------------


def test_forward_kl_fit_matches_the_moments():
    target = _target()
    fit = df.fit_gaussian(target, "kl_forward", init=(0.5, 1.0), steps=STEPS, learning_rate=LR)
    mean, std = df.moments(target)
    assert abs(float(fit.mean) - float(mean)) < 1e-6
    assert abs(float(fit.std) - float(std)) < 1e-6
    # At the moments KL(p||q) = -H(p) + (1/2) log(2 pi e var): its value, by the quadrature.
    assert float(fit.divergence) == pytest.approx(
        float(df.kl_forward(df.gaussian_params(mean, std), target)), abs=1e-12
    )
    traj = fit.trajectory
    assert traj["mean"].shape == traj["std"].shape == traj["divergence"].shape == (STEPS,)
    assert float(traj["mean"][0]) == 0.5 and float(traj["std"][0]) == pytest.approx(1.0)
    assert float(traj["divergence"][-1]) <= float(traj["divergence"][0])


def test_fit_agrees_with_descent_minimize():
    target = _target()
    fit = df.fit_gaussian(target, "kl_forward", init=(0.5, 1.0), steps=STEPS, learning_rate=LR)
    params, curve = descent.minimize(
        lambda p: df.kl_forward(p, target), df.gaussian_params(0.5, 1.0), optimizers.adam(LR), STEPS
    )
    np.testing.assert_allclose(float(fit.params["mean"]), float(params["mean"]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(float(fit.params["log_std"]), float(params["log_std"]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.trajectory["divergence"], curve, rtol=1e-12)
    # A divergence given as a function and an optimizer given as an optax transformation.
    custom = df.fit_gaussian(
        target,
        lambda p, t: df.kl_forward(p, t),
        init=(0.5, 1.0),
        steps=STEPS,
        learning_rate=None,
        optimizer=optimizers.adam(LR),
    )
    np.testing.assert_allclose(float(custom.mean), float(fit.mean), rtol=0, atol=1e-12)
    np.testing.assert_allclose(float(custom.std), float(fit.std), rtol=1e-12)
    with pytest.raises(ValueError, match="learning_rate cannot be given with an optax.GradientTransformation"):
        df.fit_gaussian(
            target, "kl_forward", init=(0.5, 1.0), steps=STEPS, learning_rate=LR, optimizer=optimizers.adam(LR)
        )


def test_reverse_kl_finds_both_modes_and_keeps_the_heavier():
    ms = _multistart("kl_reverse")
    optima = df.distinct_optima(ms.runs, atol=0.02)
    assert len(optima) == 2
    for optimum, (mu, sigma, weight) in zip(optima, ((-3.0, 0.7, 0.6), (3.0, 1.0, 0.4)), strict=True):
        assert abs(optimum["mean"] - mu) < 0.1
        assert abs(optimum["std"] - sigma) < 0.02
        # On one well-separated mode, KL(q||p) is about -log(weight).
        assert optimum["divergence"] == pytest.approx(-math.log(weight), abs=0.01)
        assert optimum["starts"] == 3
    assert int(ms.best_index) in (0, 1, 2)
    assert float(ms.best.mean) == pytest.approx(optima[0]["mean"])
    assert ms.runs.mean.shape == (len(STARTS),) and ms.runs.trajectory["std"].shape == (len(STARTS), STEPS)


def test_reverse_kl_has_a_worse_covering_local_minimum_too():
    # Between the two mode fits sits a third local minimum, wide and spanning both modes.
    target = _target()
    fit = df.fit_gaussian(target, "kl_reverse", init=(0.5, 2.5), steps=STEPS, learning_rate=LR)
    assert float(fit.grad_norm) < 1e-8
    assert 0.5 < float(fit.mean) < 1.2 and 2.3 < float(fit.std) < 2.9
    theta = jnp.stack([fit.params["mean"], fit.params["log_std"]])
    hessian = jax.jit(jax.hessian(lambda v: df.kl_reverse({"mean": v[0], "log_std": v[1]}, target)))(theta)
    assert float(jnp.min(jnp.linalg.eigvalsh(hessian))) > 0.05  # a minimum, not a saddle
    assert float(fit.divergence) > -math.log(0.4) > -math.log(0.6)


def test_distinct_optima_groups_and_leaves_out_unconverged_runs():
    runs = df.Fit(
        mean=jnp.array([1.0, 1.001, -2.0, 5.0, jnp.nan]),
        std=jnp.array([0.5, 0.5, 1.0, 1.0, 1.0]),
        divergence=jnp.array([0.3, 0.3, 0.1, 0.05, 0.0]),
        grad_norm=jnp.array([0.0, 1e-5, 0.0, 0.5, 0.0]),
        params=None,
        trajectory=None,
    )
    optima = df.distinct_optima(runs, atol=0.01, gtol=1e-3)
    assert [(o["mean"], o["starts"]) for o in optima] == [(-2.0, 1), (1.0, 2)]
    assert optima[1]["grad_norm"] == pytest.approx(1e-5)
    with pytest.raises(ValueError, match="atol must be positive"):
        df.distinct_optima(runs, atol=0.0)


@pytest.mark.slow
def test_js_and_mmd_lie_between_covering_and_seeking():
    target = _target()
    mean, std = (float(a) for a in df.moments(target))
    # JS: the best fit seeks the heavier mode, and a covering local optimum exists too.
    js_optima = df.distinct_optima(_multistart("js").runs, atol=0.02)
    best = js_optima[0]
    assert abs(best["mean"] + 3.0) < 0.1 and 0.7 <= best["std"] < 0.75
    assert any(abs(o["mean"] - mean) < 0.5 and o["std"] > 0.9 * std for o in js_optima)
    # MMD: a narrow kernel seeks the heavier mode, wider than it; a wide one approaches the moments.
    narrow = _multistart("mmd", bandwidth=0.5).best
    assert abs(float(narrow.mean) + 3.0) < 0.1 and 0.7 < float(narrow.std) < std
    wide = _multistart("mmd", bandwidth=30.0).best
    assert abs(float(wide.mean) - mean) < 0.02 and abs(float(wide.std) - std) < 0.02


def test_vmap_over_separations_equals_a_loop():
    separations = jnp.array([0.5, 3.0, 6.0])

    def fit(d):
        return df.fit_gaussian(
            df.bimodal(d, weights=(0.6, 0.4), stds=(0.7, 1.0)),
            "kl_forward",
            init=(0.5, 1.0),
            steps=STEPS,
            learning_rate=LR,
        )

    batched = jax.vmap(fit)(separations)
    for i, d in enumerate(separations):
        one = fit(d)
        np.testing.assert_allclose(batched.mean[i], one.mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(batched.std[i], one.std, rtol=1e-12)
        np.testing.assert_allclose(batched.divergence[i], one.divergence, rtol=1e-10, atol=1e-14)
    # Covering: the fitted std grows with the separation, as the moments say.
    expected = [float(df.moments(df.bimodal(d, weights=(0.6, 0.4), stds=(0.7, 1.0)))[1]) for d in separations]
    np.testing.assert_allclose(batched.std, expected, atol=1e-6)


def test_fit_compiles_once_and_traces_once_under_jit():
    target = _target()
    df.fit_gaussian(target, "kl_forward", init=(0.5, 1.0), steps=STEPS, learning_rate=LR)
    size = df._fit._cache_size()
    df.fit_gaussian(target, "kl_forward", init=(-1.0, 2.5), steps=STEPS, learning_rate=0.02)
    assert df._fit._cache_size() == size
    traces = []

    @jax.jit
    def run(m, s):
        traces.append(None)
        return df.fit_gaussian(target, "kl_forward", init=(m, s), steps=STEPS, learning_rate=LR).mean

    run(0.5, 1.0)
    again = run(2.0, 0.5)
    assert len(traces) == 1
    eager = df.fit_gaussian(target, "kl_forward", init=(2.0, 0.5), steps=STEPS, learning_rate=LR)
    np.testing.assert_allclose(float(again), float(eager.mean), rtol=0, atol=1e-12)


def test_fit_float32():
    target = df.mixture(
        jnp.array([0.6, 0.4], jnp.float32), jnp.array([-3.0, 3.0], jnp.float32), jnp.array([0.7, 1.0], jnp.float32)
    )
    fit = df.fit_gaussian(
        target, "kl_forward", init=(jnp.float32(0.5), jnp.float32(1.0)), steps=STEPS, learning_rate=LR
    )
    assert fit.mean.dtype == fit.std.dtype == fit.divergence.dtype == jnp.float32
    mean, std = df.moments(target)
    assert abs(float(fit.mean) - float(mean)) < 1e-4 and abs(float(fit.std) - float(std)) < 1e-4


def test_fit_validation_and_traced_bad_target():
    target = _target()
    kw = dict(init=(0.0, 1.0), steps=STEPS, learning_rate=LR)
    with pytest.raises(ValueError, match=r"unknown divergence 'kl'; known names: js, kl_forward, kl_reverse, mmd"):
        df.fit_gaussian(target, "kl", **kw)
    with pytest.raises(ValueError, match="bandwidth is a parameter of 'mmd' only"):
        df.fit_gaussian(target, "kl_forward", bandwidth=1.0, **kw)
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        df.fit_gaussian(target, "kl_forward", init=(0.0, 1.0), steps=0, learning_rate=LR)
    with pytest.raises(ValueError, match=r"std must be positive, got -1\.0"):
        df.fit_gaussian(target, "kl_forward", init=(0.0, -1.0), steps=STEPS, learning_rate=LR)
    with pytest.raises(ValueError, match=r"learning_rate must lie in \(0, inf\)"):
        df.fit_gaussian(target, "kl_forward", init=(0.0, 1.0), steps=STEPS, learning_rate=-0.1)
    with pytest.raises(ValueError, match=r"bandwidth must be positive"):
        df.fit_gaussian(target, "mmd", bandwidth=0.0, **kw)
    with pytest.raises(ValueError, match=r"init_std must be positive"):
        df.fit_gaussian_multistart(
            target, "kl_reverse", init_means=jnp.zeros(2), init_std=-1.0, steps=STEPS, learning_rate=LR
        )
    with pytest.raises(ValueError, match=r"init_means and init_std must have the same shape"):
        df.fit_gaussian_multistart(
            target, "kl_reverse", init_means=jnp.zeros(2), init_std=jnp.ones(3), steps=STEPS, learning_rate=LR
        )
    with pytest.raises(ValueError, match=r"weights must sum to 1"):
        df.fit_gaussian(df.Mixture(jnp.array([0.7, 0.7]), target.means, target.stds), "kl_forward", **kw)
    # Traced, a bad target makes the fit NaN rather than a plausible number.
    fit = jax.jit(lambda w: df.fit_gaussian(df.Mixture(w, target.means, target.stds), "kl_forward", **kw))(
        jnp.array([0.7, 0.7])
    )
    assert np.isnan(float(fit.divergence))
