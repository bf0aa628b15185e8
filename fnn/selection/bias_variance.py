r"""The bias-variance decomposition of the squared error, measured over many training sets.

A learning algorithm trained on a random training set :math:`D` gives a predictor
:math:`\hat f_D`. For a target :math:`y = f(x) + \varepsilon` with noise of mean zero and
variance :math:`\sigma^2`, independent of :math:`D`, the expected squared error at a test
point :math:`x` splits into three terms,

.. math:: \mathbb E_{D, \varepsilon}\big[(\hat f_D(x) - y)^2\big]
          = \underbrace{\big(\bar f(x) - f(x)\big)^2}_{\text{bias}^2}
          + \underbrace{\mathbb E_D\big[(\hat f_D(x) - \bar f(x))^2\big]}_{\text{variance}}
          + \underbrace{\sigma^2}_{\text{noise}},
          \qquad \bar f(x) = \mathbb E_D\, \hat f_D(x).

Here the expectation over :math:`D` is replaced by the average over :math:`M` models trained
on :math:`M` independent training sets, with predictions :math:`p_{mt} = \hat f_{D_m}(x_t)`
at :math:`T` test points:

.. math:: \bar p_t = \frac1M \sum_m p_{mt}, \qquad
          \text{bias}^2_t = (\bar p_t - f_t)^2, \qquad
          \text{variance}_t = \frac1M \sum_m (p_{mt} - \bar p_t)^2 .

The variance uses :math:`1/M` (the variance of the empirical ensemble), because then the
identity

.. math:: \frac1M \sum_m (p_{mt} - f_t)^2 = \text{bias}^2_t + \text{variance}_t

holds exactly for the measured numbers, not only in expectation (the cross term
:math:`\frac2M \sum_m (p_{mt} - \bar p_t)(\bar p_t - f_t)` is zero), and
:func:`expected_squared_error` equals the sum of the three terms up to rounding. As estimates
of the population terms, this variance is low by the factor :math:`(M-1)/M`, and the
plug-in bias\ :sup:`2` is high by :math:`\text{variance}/M` on average
(:math:`\mathbb E[(\bar p - f)^2] = \text{bias}^2 + \text{variance}/M`); both vanish as
:math:`M` grows, and their sum is unbiased.

For vector outputs ``[..., K]`` the squared error is summed over the K components (as in
:func:`fnn.losses.mse`), so each term is summed over them too and the noise term is
:math:`K \sigma^2` for noise of variance :math:`\sigma^2` on each component.

Training the M models is one compiled call: :func:`fit_ensemble` runs
:func:`fnn.train.many.fit_many` over M keys and M training sets, :func:`fit_ensemble_on_draws`
first draws the sets from a generator ``key -> (x, y)`` such as :func:`fnn.data.noisy_sine`,
and :func:`fit_polynomial_on_draws` fits least-squares polynomials of a given degree, in
closed form, to the same draws. Each compiles once per capacity (width or degree: it sets the
shapes) and runs all M fits in one program. :func:`bootstrap` resamples one data set when
only one exists.

References: S. Geman, E. Bienenstock, R. Doursat, *Neural networks and the bias/variance
dilemma*, Neural Computation 4(1), 1992; T. Hastie, R. Tibshirani, J. Friedman, *The
Elements of Statistical Learning*, 2nd ed., Springer 2009, §7.3; P. Domingos, *A unified
bias-variance decomposition and its applications*, ICML 2000.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp

from fnn import _checks, checking
from fnn._types import Array, ArrayLike, Params, PRNGKey
from fnn.nn import linear as _linear
from fnn.train import many as _many

__all__ = [
    "Decomposition",
    "Average",
    "decompose",
    "expected_squared_error",
    "squared_error",
    "Ensemble",
    "draw_training_sets",
    "bootstrap",
    "fit_ensemble",
    "fit_ensemble_on_draws",
    "polynomial_features",
    "fit_polynomials",
    "fit_polynomial_on_draws",
]

Generator = Callable[[PRNGKey], tuple[Array, Array]]


# ----------------------------------------------------------------------------------------
# The decomposition
# ----------------------------------------------------------------------------------------


class Average(NamedTuple):
    """The terms of a :class:`Decomposition` averaged over the test points (scalars)."""

    bias_squared: Array
    variance: Array
    noise: Array
    error: Array


class Decomposition(NamedTuple):
    r"""Bias\ :sup:`2`, variance and noise at each of T test points; ``error`` is their sum.

    Attributes:
      bias_squared: ``[T]``, :math:`(\bar p_t - f_t)^2` (summed over K outputs).
      variance: ``[T]``, :math:`\frac1M \sum_m (p_{mt} - \bar p_t)^2` (summed over K).
      noise: a scalar, :math:`K \sigma^2` (:math:`\sigma^2` for predictions without a K axis).
      error: ``[T]``, the expected squared error on a noisy target,
        ``bias_squared + variance + noise``.
      mean_prediction: ``[T]`` or ``[T, K]``, :math:`\bar p_t`, the average model.
    """

    bias_squared: Array
    variance: Array
    noise: Array
    error: Array
    mean_prediction: Array

    def average(self) -> Average:
        """The terms averaged over the test points (the last axis of the per-point arrays)."""
        return Average(
            jnp.mean(self.bias_squared, axis=-1),
            jnp.mean(self.variance, axis=-1),
            self.noise,
            jnp.mean(self.error, axis=-1),
        )


def _predictions_and_truth(predictions: ArrayLike, truth: ArrayLike) -> tuple[Array, Array]:
    """Checked ``predictions [M, T(, K)]`` (M >= 2) and ``truth [T(, K)]`` in one float dtype."""
    predictions = _checks.float_array(predictions, "predictions")
    truth = _checks.float_array(truth, "truth")
    _checks.ndim_in(predictions, "predictions", (2, 3))
    if predictions.shape[0] < 2:
        raise ValueError(
            f"predictions must hold M >= 2 models along axis 0 (a variance needs two), got shape {predictions.shape}"
        )
    if truth.shape != predictions.shape[1:]:
        raise ValueError(
            f"truth must have the shape of one model's predictions, predictions.shape[1:] = {predictions.shape[1:]}, "
            f"got {truth.shape} (no broadcasting: a [T] against a [T, 1] is an error)"
        )
    if predictions.shape[1] == 0:
        raise ValueError(f"predictions must cover at least one test point (axis 1), got shape {predictions.shape}")
    dtype = jnp.result_type(predictions, truth)
    return predictions.astype(dtype), truth.astype(dtype)


def _noise(noise_variance: ArrayLike, dtype: Any, outputs: int) -> Array:
    value = _checks.in_range(noise_variance, "noise_variance", 0.0, math.inf, low_closed=True)
    return outputs * jnp.asarray(value, dtype)


def _sum_outputs(x: Array, predictions: Array) -> Array:
    """Sum the K axis away when the predictions have one (a [T, K] or [M, T, K] term)."""
    return jnp.sum(x, axis=-1) if predictions.ndim == 3 else x


def decompose(predictions: ArrayLike, truth: ArrayLike, noise_variance: ArrayLike) -> Decomposition:
    r"""Split the expected squared error of an ensemble into bias\ :sup:`2`, variance and noise.

    .. math:: \bar p_t = \tfrac1M \textstyle\sum_m p_{mt}, \quad
              \text{bias}^2_t = (\bar p_t - f_t)^2, \quad
              \text{variance}_t = \tfrac1M \textstyle\sum_m (p_{mt} - \bar p_t)^2, \quad
              \text{error}_t = \text{bias}^2_t + \text{variance}_t + \sigma^2

    (each summed over K outputs, the noise then :math:`K \sigma^2`). The variance is the
    :math:`1/M` (population) form, which makes ``error`` equal
    :func:`expected_squared_error` exactly; see the module docstring for what that means for
    the estimates.

    Args:
      predictions: ``[M, T]`` or ``[M, T, K]``, the predictions at T test points of M >= 2
        models trained on independent training sets.
      truth: ``predictions.shape[1:]``, the noise-free target :math:`f(x_t)`.
      noise_variance: :math:`\sigma^2 \ge 0`, the variance of the target's noise (on each
        output component); a scalar, may be traced.

    Returns:
      A :class:`Decomposition` of per-point terms; ``.average()`` averages them over the
      test points.

    >>> d = decompose(jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([1.0, 1.0]), 0.5)
    >>> d.bias_squared, d.variance
    (Array([1., 4.], dtype=float32), Array([1., 1.], dtype=float32))
    >>> [round(float(v), 4) for v in d.average()]
    [2.5, 1.0, 0.5, 4.0]
    """
    predictions, truth = _predictions_and_truth(predictions, truth)
    outputs = predictions.shape[2] if predictions.ndim == 3 else 1
    noise = _noise(noise_variance, predictions.dtype, outputs)
    # Shifted by the first model: exact (zero variance) when all models agree, and no
    # cancellation when the predictions are large next to their spread.
    mean = predictions[0] + jnp.mean(predictions - predictions[:1], axis=0)
    bias_squared = _sum_outputs(jnp.square(mean - truth), predictions)
    variance = _sum_outputs(jnp.mean(jnp.square(predictions - mean[None]), axis=0), predictions)
    error = bias_squared + variance + noise
    return Decomposition(bias_squared, variance, noise, error, mean)


def expected_squared_error(predictions: ArrayLike, truth: ArrayLike, noise_variance: ArrayLike) -> Array:
    r"""The expected squared error on a noisy target, computed directly, averaged over test points.

    .. math:: \frac1T \sum_t \frac1M \sum_m (p_{mt} - f_t)^2 + \sigma^2

    (summed over K outputs, the noise then :math:`K \sigma^2`): the error of a model drawn at
    random from the ensemble on a test target :math:`f(x_t) + \varepsilon`, in expectation
    over :math:`\varepsilon`. It equals ``decompose(...).average().error`` up to rounding.

    Args:
      predictions: ``[M, T]`` or ``[M, T, K]``, M >= 2.
      truth: ``predictions.shape[1:]``, the noise-free target.
      noise_variance: :math:`\sigma^2 \ge 0`.

    Returns:
      A scalar.

    >>> round(float(expected_squared_error(jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([1.0, 1.0]), 0.5)), 4)
    4.0
    """
    predictions, truth = _predictions_and_truth(predictions, truth)
    outputs = predictions.shape[2] if predictions.ndim == 3 else 1
    noise = _noise(noise_variance, predictions.dtype, outputs)
    squared = _sum_outputs(jnp.square(predictions - truth[None]), predictions)
    return jnp.mean(squared) + noise


def squared_error(predictions: ArrayLike, targets: ArrayLike) -> Array:
    r"""The measured squared error of every model on noisy test targets, averaged.

    .. math:: \frac{1}{MT} \sum_m \sum_t (p_{mt} - y_{mt})^2

    (summed over K outputs). With fresh noisy targets :math:`y = f(x) + \varepsilon` this is
    a Monte Carlo estimate of :func:`expected_squared_error`, so it checks the decomposition
    against data the models never saw.

    Args:
      predictions: ``[M, T]`` or ``[M, T, K]``.
      targets: ``predictions.shape[1:]`` (one test set for all models) or
        ``predictions.shape`` (a test set for each model).

    Returns:
      A scalar.

    >>> round(float(squared_error(jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([1.0, 2.0]))), 4)
    2.0
    """
    predictions = _checks.float_array(predictions, "predictions")
    targets = _checks.float_array(targets, "targets")
    _checks.ndim_in(predictions, "predictions", (2, 3))
    if targets.shape == predictions.shape[1:]:
        targets = targets[None]
    elif targets.shape != predictions.shape:
        raise ValueError(
            f"targets must have shape predictions.shape[1:] = {predictions.shape[1:]} or predictions.shape = "
            f"{predictions.shape}, got {targets.shape}"
        )
    return jnp.mean(_sum_outputs(jnp.square(predictions - targets), predictions))


# ----------------------------------------------------------------------------------------
# Many training sets
# ----------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(1, 2))
def _draw(key: PRNGKey, generator: Generator, m: int) -> tuple[Array, Array]:
    x, y = jax.vmap(generator)(jax.random.split(key, m))
    return x, y


def draw_training_sets(key: PRNGKey, generator: Generator, m: int) -> tuple[Array, Array]:
    r"""M independent training sets from ``generator``, drawn in one vmapped, compiled call.

    .. math:: D_m = \mathrm{generator}(k_m), \qquad (k_1, \dots, k_M) = \mathrm{split}(\mathrm{key}, M)

    Args:
      key: a PRNG key.
      generator: a pure function ``key -> (x [N, d], y [N, K])`` of a single key, for instance
        ``functools.partial(fnn.data.noisy_sine, n=25, noise=0.3)``. It is a static argument
        of the compiled call (hashed by identity): pass the same object again to reuse the
        compiled program.
      m: the number of sets M, a positive int.

    Returns:
      ``(x [M, N, d], y [M, N, K])``.

    >>> import fnn
    >>> gen = functools.partial(fnn.data.noisy_sine, n=10)
    >>> x, y = draw_training_sets(jax.random.key(0), gen, 4)
    >>> x.shape, y.shape, bool(jnp.any(x[0] != x[1]))
    ((4, 10, 1), (4, 10, 1), True)
    """
    key = _checks.single_key(key, "key")
    m = _checks.positive_int(m, "m")
    if not callable(generator):
        raise TypeError(f"generator must be a function key -> (x, y), got {type(generator).__name__}")
    try:
        hash(generator)
    except TypeError:
        raise TypeError(
            f"generator must be hashable (it is a static argument), got {type(generator).__name__}"
        ) from None
    x, y = _draw(key, generator, m)
    if x.ndim != 3 or y.ndim != 3 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"generator must return x [N, d] and y [N, K] for one key, got shapes {x.shape[1:]} and {y.shape[1:]}"
        )
    return x, y


def bootstrap(key: PRNGKey, x: ArrayLike, y: ArrayLike, m: int) -> tuple[Array, Array]:
    r"""M bootstrap resamples of one data set: N examples drawn with replacement, M times.

    .. math:: i_{mn} \sim U\{0, \dots, N-1\}, \qquad D^*_m = \{(x_{i_{mn}}, y_{i_{mn}})\}_{n=1}^N

    Use it as a stand-in for fresh training sets when only one data set exists. Its variance
    estimates differ from those of fresh draws: every resample is built from the same N
    points (the same inputs, the same noise), each holds only about :math:`1 - 1/e \approx
    63\%` distinct examples (repeated ones weighted more), and the spread of fits around
    their mean describes the sampling distribution around *this* data set's fit, not
    around the population average. Fresh draws (:func:`draw_training_sets`) measure the
    variance the decomposition is about; the bootstrap approximates it (ESL §7.11, §8.2).

    Args:
      key: a PRNG key.
      x: ``[N, ...]`` inputs.
      y: ``[N, ...]`` targets.
      m: the number of resamples M.

    Returns:
      ``(x* [M, N, ...], y* [M, N, ...])``, from the indices ``[M, N]`` drawn uniformly with
      replacement.

    Reference: B. Efron, *Bootstrap methods: another look at the jackknife*, Ann. Statist.
    7(1), 1979.

    >>> xb, yb = bootstrap(jax.random.key(0), jnp.arange(5.0)[:, None], jnp.arange(5.0), 3)
    >>> xb.shape, yb.shape, bool(jnp.all(xb[..., 0] == yb))
    ((3, 5, 1), (3, 5), True)
    """
    key = _checks.single_key(key, "key")
    m = _checks.positive_int(m, "m")
    x, y = jnp.asarray(x), jnp.asarray(y)
    _checks.nonempty_batch(x, "x")
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"x and y must hold the same number of examples (axis 0), got shapes {x.shape} and {y.shape}")
    index = jax.random.randint(key, (m, x.shape[0]), 0, x.shape[0])
    return x[index], y[index]


class Ensemble(NamedTuple):
    """M trained models: their predictions on the test inputs, parameters and histories.

    Attributes:
      predictions: ``[M, T, K]``, model m's output at test input t.
      params: the models' parameters, each leaf with a leading M axis.
      history: the :class:`fnn.train.History` of each run, each field with a leading M axis.
    """

    predictions: Array
    params: Params
    history: Any


@functools.partial(jax.jit, static_argnums=0)
def _fit_ensemble(trainer: Any, keys: Array, x: Array, y: Array, x_test: Array, hyperparams: Mapping[str, Any]):
    state, history = _many.fit_many(trainer, keys, (x, y), None, hyperparams, per_member=("train",), dtype=x.dtype)
    output = jax.vmap(lambda p, s: trainer.model.apply(p, s, x_test)[0])(state.params, state.model_state)
    return Ensemble(output, state.params, history)


def _stacked_sets(x: Any, y: Any, m: int | None, names: tuple[str, str]) -> tuple[Array, Array]:
    x = _checks.float_array(x, names[0])
    y = jnp.asarray(y)
    if x.ndim < 3 or y.ndim < 2 or x.shape[:2] != y.shape[:2]:
        raise ValueError(
            f"{names[0]} and {names[1]} must be M training sets [M, N, ...] sharing their first two axes, "
            f"got shapes {x.shape} and {y.shape}"
        )
    if m is not None and x.shape[0] != m:
        raise ValueError(f"{names[0]} must hold one training set per key (M = {m}) along axis 0, got shape {x.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"{names[0]} must hold at least one example per set (axis 1), got shape {x.shape}")
    return x, y


def _test_inputs(x_test: Any, x: Array) -> Array:
    x_test = _checks.float_array(x_test, "x_test").astype(x.dtype)
    if x_test.ndim < 1 or x_test.shape[1:] != x.shape[2:]:
        raise ValueError(
            f"x_test must be [T, ...] with the shape of one training input {x.shape[2:]} per row, got {x_test.shape}"
        )
    return x_test


def fit_ensemble(
    trainer: Any,
    keys: ArrayLike,
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_test: ArrayLike,
    hyperparams: Mapping[str, ArrayLike] | None = None,
) -> Ensemble:
    r"""Train M models on M training sets in one compiled call (fnn.train.many.fit_many); predict on ``x_test``.

    Model m starts from ``trainer.init(keys[m], hyperparams, dtype=x_train.dtype)``, is trained
    by ``trainer.fit`` on :math:`(x_m, y_m)` and evaluated on the shared test inputs:

    .. math:: p_{mt} = \hat f_{\theta_m}(x^{\text{test}}_t), \qquad
              \theta_m = \mathrm{fit}(\mathrm{init}(k_m), D_m)

    The trainer is a static argument: a second call with the same trainer and shapes (other
    keys, data or hyperparameter values) reuses the compiled program.

    Args:
      trainer: a :class:`fnn.train.Trainer`.
      keys: ``[M]`` PRNG keys, e.g. ``jax.random.split(key, M)``.
      x_train: ``[M, N, d]`` training inputs, one set per model.
      y_train: ``[M, N, K]`` training targets.
      x_test: ``[T, d]`` test inputs, shared by all models.
      hyperparams: the optimizer's hyperparameters, e.g. ``{"learning_rate": 0.01}``, shared
        by all models.

    Returns:
      An :class:`Ensemble`; ``predictions`` is ``[M, T, K]``.

    Raises:
      FloatingPointError: a run met a non-finite loss or gradient (called eagerly).

    >>> import fnn
    >>> trainer = fnn.train.Trainer(fnn.MLP((1, 4, 1), activation="tanh"), loss="mse", epochs=5)
    >>> x, y = draw_training_sets(jax.random.key(0), functools.partial(fnn.data.noisy_sine, n=8), 3)
    >>> ens = fit_ensemble(trainer, jax.random.split(jax.random.key(1), 3), x, y, jnp.zeros((6, 1)),
    ...                    {"learning_rate": 0.01})
    >>> ens.predictions.shape, ens.history.train_loss.shape
    ((3, 6, 1), (3, 5))
    """
    keys = _checks.key_batch(keys, "keys")
    x, y = _stacked_sets(x_train, y_train, keys.shape[0], ("x_train", "y_train"))
    x_test = _test_inputs(x_test, x)
    hyperparams = {} if hyperparams is None else dict(hyperparams)
    ensemble = _fit_ensemble(trainer, keys, x, y, x_test, hyperparams)
    if _checks.is_concrete(ensemble.history.nonfinite_epoch):
        checking.raise_if_nonfinite(ensemble.history)
    return ensemble


def fit_ensemble_on_draws(
    trainer: Any,
    key: PRNGKey,
    generator: Generator,
    m: int,
    x_test: ArrayLike,
    hyperparams: Mapping[str, ArrayLike] | None = None,
) -> Ensemble:
    r"""Draw M independent training sets from ``generator`` and train one model on each.

    With ``k_data, k_init = jax.random.split(key)``: the sets are
    ``draw_training_sets(k_data, generator, M)`` and the models start from
    ``jax.random.split(k_init, M)``; :func:`fit_polynomial_on_draws` with the same key and
    generator fits the same sets. Both the draw and the M training runs are single compiled,
    vmapped calls, compiled once per trainer (its width, say) and generator.

    Args:
      trainer: a :class:`fnn.train.Trainer`.
      key: a PRNG key.
      generator: ``key -> (x [N, d], y [N, K])``, see :func:`draw_training_sets`.
      m: the number of training sets and models M.
      x_test: ``[T, d]`` test inputs.
      hyperparams: the optimizer's hyperparameters.

    Returns:
      An :class:`Ensemble`; pass ``predictions`` ``[M, T, K]`` to :func:`decompose`.

    >>> import fnn
    >>> trainer = fnn.train.Trainer(fnn.MLP((1, 4, 1), activation="tanh"), loss="mse", epochs=5)
    >>> gen = functools.partial(fnn.data.noisy_sine, n=8)
    >>> ens = fit_ensemble_on_draws(trainer, jax.random.key(0), gen, 3, jnp.zeros((6, 1)), {"learning_rate": 0.01})
    >>> ens.predictions.shape
    (3, 6, 1)
    """
    key = _checks.single_key(key, "key")
    m = _checks.positive_int(m, "m")
    k_data, k_init = jax.random.split(key)
    x, y = draw_training_sets(k_data, generator, m)
    return fit_ensemble(trainer, jax.random.split(k_init, m), x, y, x_test, hyperparams)


# ----------------------------------------------------------------------------------------
# Polynomial regression in closed form
# ----------------------------------------------------------------------------------------


def polynomial_features(x: ArrayLike, degree: int) -> Array:
    r"""The monomials :math:`x, x^2, \dots, x^p` of a scalar input, one column each.

    .. math:: \phi(x) = (x, x^2, \dots, x^p) \in \mathbb R^p

    The constant is left to the bias of the linear model. Monomials are ill-conditioned on
    wide intervals: scale the inputs to about :math:`[-1, 1]` first.

    Args:
      x: ``[N, 1]`` scalar inputs.
      degree: :math:`p \ge 0` (0 gives ``[N, 0]``: the constant model).

    Returns:
      ``[N, p]``.

    >>> polynomial_features(jnp.array([[2.0], [3.0]]), 3)
    Array([[ 2.,  4.,  8.],
           [ 3.,  9., 27.]], dtype=float32)
    """
    x = _checks.float_array(x, "x")
    degree = _checks.nonnegative_int(degree, "degree")
    if x.ndim != 2 or x.shape[1] != 1:
        raise ValueError(f"x must be [N, 1] scalar inputs, got shape {x.shape}")
    powers = jnp.arange(1, degree + 1, dtype=x.dtype)
    return x ** powers[None]


def _polynomial_fit(x: Array, y: Array, x_test: Array, degree: int, ridge: float) -> Array:
    params = _linear.least_squares(polynomial_features(x, degree), y, ridge=ridge)
    return _linear.apply(params, polynomial_features(x_test, degree))


@functools.partial(jax.jit, static_argnums=(3, 4))
def _fit_polynomials(x: Array, y: Array, x_test: Array, degree: int, ridge: float) -> Array:
    return jax.vmap(_polynomial_fit, in_axes=(0, 0, None, None, None))(x, y, x_test, degree, ridge)


def _ridge(ridge: Any) -> float:
    try:
        value = float(ridge)
    except (TypeError, ValueError):
        raise TypeError(f"ridge must be a Python number (it is compiled in), got {ridge!r}") from None
    if not value >= 0:
        raise ValueError(f"ridge must be non-negative, got {value}")
    return value


def fit_polynomials(
    x_train: ArrayLike, y_train: ArrayLike, x_test: ArrayLike, degree: int, *, ridge: float = 0.0
) -> Array:
    r"""Least-squares polynomials of one degree fitted to M training sets at once; their predictions.

    For each set, :func:`fnn.linear.least_squares` on :func:`polynomial_features`,

    .. math:: \hat\theta_m = \arg\min_\theta \|\Phi_m w + b - y_m\|^2 + \lambda \|w\|^2,

    then the fitted polynomial at the test inputs. One compiled call maps over the M sets;
    it compiles once per degree and ridge (static: the degree sets the shapes).

    Args:
      x_train: ``[M, N, 1]``.
      y_train: ``[M, N, K]``.
      x_test: ``[T, 1]``.
      degree: :math:`p \ge 0`.
      ridge: :math:`\lambda \ge 0`, a Python number; 0 is plain least squares (the
        minimum-norm solution when :math:`p + 1 > N`).

    Returns:
      ``[M, T, K]``.

    >>> x = jnp.linspace(-1, 1, 5)[None, :, None]
    >>> p = fit_polynomials(x, 1 + 2 * x ** 2, jnp.array([[0.5]]), 2)
    >>> round(float(p[0, 0, 0]), 4)
    1.5
    """
    x, y = _stacked_sets(x_train, y_train, None, ("x_train", "y_train"))
    if x.ndim != 3 or x.shape[2] != 1 or y.ndim != 3:
        raise ValueError(f"x_train must be [M, N, 1] and y_train [M, N, K], got shapes {x.shape} and {y.shape}")
    x_test = _test_inputs(x_test, x)
    return _fit_polynomials(x, y.astype(x.dtype), x_test, _checks.nonnegative_int(degree, "degree"), _ridge(ridge))


def fit_polynomial_on_draws(
    key: PRNGKey, generator: Generator, m: int, x_test: ArrayLike, degree: int, *, ridge: float = 0.0
) -> Array:
    r"""Draw M training sets from ``generator`` and fit a polynomial of ``degree`` to each.

    The sets are those :func:`fit_ensemble_on_draws` trains on for the same ``key`` and
    ``generator`` (``draw_training_sets(jax.random.split(key)[0], generator, M)``), so the two
    capacities, degree and width, are compared on identical data.

    Args:
      key: a PRNG key.
      generator: ``key -> (x [N, 1], y [N, K])``, see :func:`draw_training_sets`.
      m: the number of training sets M.
      x_test: ``[T, 1]``.
      degree: :math:`p \ge 0`.
      ridge: :math:`\lambda \ge 0`.

    Returns:
      ``[M, T, K]`` predictions, for :func:`decompose`.

    >>> import fnn
    >>> gen = functools.partial(fnn.data.noisy_sine, n=20, noise=0.0)
    >>> p = fit_polynomial_on_draws(jax.random.key(0), gen, 4, jnp.zeros((1, 1)), 5)
    >>> p.shape, bool(jnp.all(jnp.abs(p) < 0.05))
    ((4, 1, 1), True)
    """
    key = _checks.single_key(key, "key")
    m = _checks.positive_int(m, "m")
    k_data, _ = jax.random.split(key)
    x, y = draw_training_sets(k_data, generator, m)
    return fit_polynomials(x, y, x_test, degree, ridge=ridge)
