"""Tests of fnn.bias_variance: the identity, hand-computed cases, known estimators, polynomials, vmapped fits."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import bias_variance as bv
from fnn.train import Trainer

SINE = dict(noise=0.3, x_range=(-1.0, 1.0), frequency=math.pi)


def _sine_generator(n=25, dtype=jnp.float64):
    return functools.partial(fnn.data.noisy_sine, n=n, dtype=dtype, **SINE)


def _grid(t=41):
    return jnp.linspace(-1.0, 1.0, t, dtype=jnp.float64)[:, None]


# ----------------------------------------------------------------------------------------
# decompose and the identity
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7, 11), (5, 9, 3)])
def test_identity_is_exact(shape):
    rng = np.random.default_rng(0)  # NumPy draws: no PRNG program to compile per shape
    predictions = jnp.asarray(rng.normal(0.7, 2.0, shape))
    truth = jnp.asarray(rng.normal(size=shape[1:]))
    # one compiled program instead of op-by-op dispatch; the eager path is the doctests'
    both = jax.jit(lambda p, f: (bv.decompose(p, f, 0.09), bv.expected_squared_error(p, f, 0.09)))
    d, direct = both(predictions, truth)
    average = d.average()
    np.testing.assert_allclose(average.bias_squared + average.variance + average.noise, direct, rtol=1e-13)
    np.testing.assert_allclose(average.error, direct, rtol=1e-13)
    # and per point: mean_m (p - f)^2 summed over outputs
    per_point = jnp.mean(jnp.square(predictions - truth[None]), axis=0)
    per_point = jnp.sum(per_point, axis=-1) if len(shape) == 3 else per_point
    np.testing.assert_allclose(d.bias_squared + d.variance, per_point, rtol=1e-13)
    outputs = shape[2] if len(shape) == 3 else 1
    assert float(d.noise) == pytest.approx(0.09 * outputs, rel=1e-15)
    assert d.bias_squared.shape == d.variance.shape == d.error.shape == (shape[1],)
    assert d.mean_prediction.shape == shape[1:]


def test_hand_computed_example():
    predictions = jnp.array([[1.0, 2.0], [3.0, 4.0]], jnp.float64)  # M = 2 models, T = 2 points
    truth = jnp.array([1.0, 1.0], jnp.float64)
    d = bv.decompose(predictions, truth, 0.5)
    np.testing.assert_array_equal(d.mean_prediction, [2.0, 3.0])
    np.testing.assert_array_equal(d.bias_squared, [1.0, 4.0])  # (2-1)^2, (3-1)^2
    np.testing.assert_array_equal(d.variance, [1.0, 1.0])  # ((1-2)^2 + (3-2)^2) / 2, ...
    np.testing.assert_array_equal(d.error, [2.5, 5.5])
    assert [float(v) for v in d.average()] == [2.5, 1.0, 0.5, 4.0]
    # direct: ((0 + 1) + (4 + 9)) / 4 + 0.5
    assert float(bv.expected_squared_error(predictions, truth, 0.5)) == 4.0


def test_hand_computed_vector_outputs():
    # M = 3, T = 1, K = 2: the terms are summed over the two outputs, the noise is 2 sigma^2.
    predictions = jnp.array([[[0.0, 1.0]], [[1.0, 1.0]], [[2.0, 4.0]]], jnp.float64)
    truth = jnp.array([[0.0, 0.0]], jnp.float64)
    d = bv.decompose(predictions, truth, 0.25)
    np.testing.assert_allclose(d.mean_prediction, [[1.0, 2.0]])
    np.testing.assert_allclose(d.bias_squared, [1.0 + 4.0])
    np.testing.assert_allclose(d.variance, [2.0 / 3.0 + 2.0])  # (1+0+1)/3 and (1+1+4)/3
    assert float(d.noise) == 0.5
    np.testing.assert_allclose(bv.expected_squared_error(predictions, truth, 0.25), 5 + 8 / 3 + 0.5, rtol=1e-14)


def test_constant_model_has_zero_variance(key):
    truth = jnp.sin(jnp.linspace(0.0, 3.0, 13, dtype=jnp.float64))
    c = 0.4
    predictions = jnp.full((6, 13), c, jnp.float64)
    d = bv.decompose(predictions, truth, 0.0)
    np.testing.assert_array_equal(d.variance, np.zeros(13))
    np.testing.assert_allclose(d.bias_squared, (c - truth) ** 2, rtol=1e-15)
    assert float(d.noise) == 0.0


def test_unbiased_estimator_with_known_variance(key):
    m, t, s = 20000, 16, 0.3
    truth = jnp.linspace(-1.0, 1.0, t, dtype=jnp.float64)
    predictions = truth[None] + s * jax.random.normal(key, (m, t), jnp.float64)
    average = bv.decompose(predictions, truth, 0.0).average()
    # variance: mean of T estimates each with relative sd sqrt(2/M) ~ 1%; averaged, ~0.25%
    assert float(average.variance) == pytest.approx(s**2, rel=0.02)
    # plug-in bias^2 of an unbiased estimator is (mean of M noises)^2: expectation s^2/M
    assert float(average.bias_squared) < 3 * s**2 / m


@pytest.mark.slow
def test_polynomial_variance_grows_and_bias_falls(key):
    degrees = (1, 3, 5, 7)
    gen = _sine_generator(n=30)
    x_test = _grid()
    truth = jnp.sin(math.pi * x_test)
    terms = [bv.decompose(bv.fit_polynomial_on_draws(key, gen, 200, x_test, p), truth, 0.09).average() for p in degrees]
    bias = [float(a.bias_squared) for a in terms]
    variance = [float(a.variance) for a in terms]
    # From the cubic on, every extra pair of monomials adds variance. A line can have more
    # variance than a cubic here: with random inputs, where the points fall moves the best
    # line through one period of a sine a lot (variance from misfit, not from the noise).
    assert all(variance[i + 1] > variance[i] for i in range(1, len(degrees) - 1)), variance
    assert bias[1] < 0.2 * bias[0], bias  # a cubic captures one period of sin far better than a line
    assert variance[-1] > 3 * variance[0], variance


def test_polynomial_fit_recovers_an_exact_polynomial(key):
    x = jax.random.uniform(key, (3, 12, 1), jnp.float64, -1.0, 1.0)
    y = 0.5 - x + 2 * x**3
    x_test = _grid(7)
    predictions = bv.fit_polynomials(x, y, x_test, 3)
    np.testing.assert_allclose(predictions, jnp.broadcast_to(0.5 - x_test + 2 * x_test**3, (3, 7, 1)), atol=1e-12)
    # degree 0 is the mean of the targets; ridge shrinks the coefficients
    np.testing.assert_allclose(bv.fit_polynomials(x, y, x_test, 0)[:, 0, 0], jnp.mean(y[..., 0], axis=1), rtol=1e-12)
    shrunk = bv.fit_polynomials(x, y, x_test, 3, ridge=10.0)
    assert float(jnp.max(jnp.abs(shrunk - predictions))) > 0.05


def test_polynomial_on_draws_compiles_once_per_degree(key):
    traces = []

    def generator(k):
        traces.append(None)
        return fnn.data.noisy_sine(k, 15, dtype=jnp.float64, **SINE)

    x_test = _grid(9)
    k1, k2 = jax.random.split(key)
    a = bv.fit_polynomial_on_draws(k1, generator, 8, x_test, 4)
    b = bv.fit_polynomial_on_draws(k2, generator, 8, x_test, 4)
    assert len(traces) == 1 and a.shape == b.shape == (8, 9, 1)
    assert not np.allclose(a, b)
    x, y = bv.draw_training_sets(jax.random.split(k1)[0], generator, 8)
    np.testing.assert_allclose(a, bv.fit_polynomials(x, y, x_test, 4), rtol=1e-12)


# ----------------------------------------------------------------------------------------
# training M networks in one call
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class _CountingModel:
    """An MLP that records each trace of its apply (hashed by identity, so a static argument)."""

    inner: fnn.MLP
    traces: list

    def init(self, key, dtype=jnp.float32):
        return self.inner.init(key, dtype=dtype)

    def apply(self, params, state, x, *, key=None, train=False):
        self.traces.append(None)
        return self.inner.apply(params, state, x, key=key, train=train)


# One model and one set of shapes for the tests that train, so they share one compilation.
_COUNTING = _CountingModel(fnn.MLP((1, 5, 1), activation="tanh", scheme="glorot"), [])
M, N, T, EPOCHS = 4, 12, 9, 30


def _trainer():
    return Trainer(_COUNTING, loss="mse", optimizer="adam", epochs=EPOCHS)


@pytest.mark.slow
def test_vmapped_fit_equals_separate_fits_and_compiles_once(key):
    trainer = _trainer()
    hp = {"learning_rate": 0.05}
    gen = _sine_generator(n=N)
    x_test = _grid(T)
    k_data, k_init = jax.random.split(key)
    ens = bv.fit_ensemble_on_draws(trainer, key, gen, M, x_test, hp)
    count = len(_COUNTING.traces)
    ens2 = bv.fit_ensemble_on_draws(_trainer(), jax.random.fold_in(key, 1), gen, M, x_test, {"learning_rate": 0.02})
    assert len(_COUNTING.traces) == count  # the second call reuses the compiled program
    assert ens.predictions.shape == (M, T, 1) and ens.history.train_loss.shape == (M, EPOCHS)
    assert ens.predictions.dtype == jnp.float64
    assert not np.allclose(ens.predictions, ens2.predictions)

    x, y = bv.draw_training_sets(k_data, gen, M)
    plain = Trainer(_COUNTING.inner, loss="mse", optimizer="adam", epochs=EPOCHS)
    for i, k in enumerate(jax.random.split(k_init, M)):
        state, history = plain.fit(plain.init(k, hp, dtype=jnp.float64), (x[i], y[i]), None, hp)
        output, _ = _COUNTING.inner.apply(state.params, state.model_state, x_test)
        np.testing.assert_allclose(ens.predictions[i], output, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ens.history.train_loss[i], history.train_loss, rtol=1e-10)
        np.testing.assert_allclose(ens.params[0]["W"][i], state.params[0]["W"], rtol=1e-10, atol=1e-12)
    # training did something: the loss fell on every member
    assert np.all(np.asarray(ens.history.train_loss[:, -1] < ens.history.train_loss[:, 0]))


def test_fit_ensemble_reports_nonfinite_runs(key):
    x = jnp.ones((M, N, 1), jnp.float64)
    y = jnp.ones((M, N, 1), jnp.float64).at[1, 0, 0].set(jnp.nan)
    with pytest.raises(FloatingPointError, match="in 1 of 4 runs \\(first: member 1, epoch 0, step 0\\)"):
        bv.fit_ensemble(_trainer(), jax.random.split(key, M), x, y, _grid(T), {"learning_rate": 0.1})


def test_bootstrap_resamples_rows_with_replacement(key):
    x = jnp.arange(20.0, dtype=jnp.float64)[:, None] * jnp.ones((1, 3), jnp.float64)
    y = jnp.arange(20.0, dtype=jnp.float64)
    xb, yb = bv.bootstrap(key, x, y, 50)
    assert xb.shape == (50, 20, 3) and yb.shape == (50, 20)
    np.testing.assert_array_equal(xb[..., 0], yb)  # rows stay paired
    np.testing.assert_array_equal(xb[..., 0], xb[..., 2])
    distinct = np.array([len(np.unique(r)) for r in np.asarray(yb)])
    assert np.all(distinct < 20)  # with replacement: P(a permutation) = 20!/20^20 ~ 2e-8 per resample
    assert abs(distinct.mean() / 20 - (1 - (19 / 20) ** 20)) < 0.05  # ~64% distinct


# ----------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------


def test_decompose_rejects_bad_inputs():
    p = jnp.zeros((3, 4), jnp.float64)
    with pytest.raises(ValueError, match="truth must have the shape of one model's predictions.*got \\(4, 1\\)"):
        bv.decompose(p, jnp.zeros((4, 1), jnp.float64), 0.1)
    with pytest.raises(ValueError, match="truth must have the shape"):
        bv.decompose(jnp.zeros((3, 4, 1), jnp.float64), jnp.zeros((4,), jnp.float64), 0.1)
    with pytest.raises(ValueError, match="M >= 2 models"):
        bv.decompose(jnp.zeros((1, 4), jnp.float64), jnp.zeros((4,), jnp.float64), 0.1)
    with pytest.raises(ValueError, match="predictions must have rank 2 or 3"):
        bv.decompose(jnp.zeros((3,), jnp.float64), jnp.zeros((), jnp.float64), 0.1)
    with pytest.raises(ValueError, match="noise_variance must lie in \\[0, inf\\)"):
        bv.decompose(p, jnp.zeros((4,), jnp.float64), -0.1)
    with pytest.raises(ValueError, match="noise_variance must be a scalar"):
        bv.expected_squared_error(p, jnp.zeros((4,), jnp.float64), jnp.ones(4))
    with pytest.raises(TypeError, match="predictions must be a floating-point array"):
        bv.decompose(jnp.zeros((3, 4), jnp.int32), jnp.zeros((4,), jnp.float64), 0.1)
    with pytest.raises(ValueError, match="targets must have shape"):
        bv.squared_error(p, jnp.zeros((4, 1), jnp.float64))


def test_traced_negative_noise_variance_is_nan():
    p = jnp.zeros((3, 4), jnp.float64)
    d = jax.jit(lambda s: bv.decompose(p, jnp.zeros((4,), jnp.float64), s))(-1.0)
    assert np.isnan(float(d.noise)) and np.all(np.isnan(np.asarray(d.error)))


def test_squared_error_measures_against_noisy_targets():
    p = jnp.array([[1.0, 2.0], [3.0, 4.0]], jnp.float64)
    assert float(bv.squared_error(p, jnp.array([1.0, 2.0], jnp.float64))) == 2.0  # (0 + 0 + 4 + 4) / 4
    assert float(bv.squared_error(p, p + 1.0)) == 1.0


def test_fitting_functions_reject_bad_inputs(key):
    gen = _sine_generator(n=6)
    trainer = Trainer(fnn.MLP((1, 2, 1)), loss="mse", epochs=1)
    x = jnp.zeros((3, 6, 1), jnp.float64)
    with pytest.raises(ValueError, match="m must be a positive integer, got 0"):
        bv.draw_training_sets(key, gen, 0)
    with pytest.raises(TypeError, match="generator must be a function"):
        bv.draw_training_sets(key, "noisy_sine", 2)
    with pytest.raises(ValueError, match="key must be a single PRNG key"):
        bv.fit_polynomial_on_draws(jax.random.split(key, 2), gen, 2, _grid(3), 1)
    with pytest.raises(ValueError, match="degree must be a non-negative integer, got -1"):
        bv.fit_polynomials(x, x, _grid(3), -1)
    with pytest.raises(TypeError, match="degree must be an integer, got 1.5"):
        bv.polynomial_features(x[0], 1.5)
    with pytest.raises(ValueError, match="ridge must be non-negative"):
        bv.fit_polynomials(x, x, _grid(3), 1, ridge=-1.0)
    with pytest.raises(ValueError, match="x must be \\[N, 1\\] scalar inputs"):
        bv.polynomial_features(jnp.zeros((4, 2), jnp.float64), 2)
    with pytest.raises(ValueError, match="x_test must be \\[T, ...\\] with the shape of one training input"):
        bv.fit_polynomials(x, x, jnp.zeros((3, 2), jnp.float64), 1)
    with pytest.raises(ValueError, match="keys must be a batch of PRNG keys"):
        bv.fit_ensemble(trainer, key, x, x, _grid(3))
    with pytest.raises(ValueError, match="x_train must hold one training set per key \\(M = 2\\)"):
        bv.fit_ensemble(trainer, jax.random.split(key, 2), x, x, _grid(3))
    with pytest.raises(ValueError, match="x_train and y_train must be M training sets"):
        bv.fit_ensemble(trainer, jax.random.split(key, 3), x, x[:, :4], _grid(3))
    with pytest.raises(ValueError, match="x and y must hold the same number of examples"):
        bv.bootstrap(key, x[0], x[0, :5], 2)
