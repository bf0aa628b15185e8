r"""Activation functions, each with its hand-written derivative.

An activation maps the pre-activation :math:`z = xW + b` of a layer to its output
:math:`a = f(z)`. Every activation here is an :class:`Activation` record holding the forward
function and the local step of the chain rule that backpropagation needs,

.. math:: \frac{\partial L}{\partial z} = \frac{\partial L}{\partial a} \odot f'(z)

for elementwise activations, and the Jacobian-transpose product for softmax and log-softmax.

Conventions at kinks are those of ``jax.grad`` of the same forward function, and tests hold
the hand-written derivatives to them:

============================  =========================================================
activation                    derivative at the kink
============================  =========================================================
``step``                      0 everywhere (the Dirac delta at 0 is not representable)
``relu``                      :math:`f'(0) = 0`, as ``jax.nn.relu``
``rectifier``, ``leaky_relu``  :math:`f'(0) = 1`, as ``jax.nn.leaky_relu`` and ``jnp.abs``
``hard_tanh``                 :math:`f'(\pm 1) = 1`, as ``jax.nn.hard_tanh``
============================  =========================================================

Activations are named by string for configuration: ``get("relu")``,
``get("leaky_relu", negative_slope=0.2)``. An unknown name is a ``ValueError`` that lists
the known ones.

Reference: I. Goodfellow, Y. Bengio, A. Courville, *Deep Learning*, MIT Press 2016, ch. 6.3.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn._types import Array, ArrayLike

__all__ = [
    "Activation",
    "get",
    "names",
    "step",
    "sigmoid",
    "tanh",
    "relu",
    "rectifier",
    "leaky_relu",
    "absolute",
    "softplus",
    "hard_tanh",
    "identity",
    "rbf",
    "softmax",
    "log_softmax",
    "check_not_all_minus_inf",
    "one_hot",
    "predict_classes",
]


# ----------------------------------------------------------------------------------------
# Elementwise activations. Each forward is followed by its derivative f'(z), written from
# z and, where that is cheaper and as exact, from the output a = f(z).
# ----------------------------------------------------------------------------------------


def step(z: ArrayLike) -> Array:
    r"""Heaviside step :math:`H(z) = 1` if :math:`z \ge 0` else 0, in the dtype of ``z``.

    The perceptron's activation (Rosenblatt 1958). Its derivative is 0 wherever it exists,
    so gradient descent cannot train through it; the perceptron rule does.

    >>> step(jnp.array([-1.0, 0.0, 2.0]))
    Array([0., 1., 1.], dtype=float32)
    """
    z = jnp.asarray(z)
    return jnp.where(z >= 0, jnp.ones_like(z), jnp.zeros_like(z))


def _step_derivative(z: Array, a: Array) -> Array:
    del a
    return jnp.zeros_like(z)


def sigmoid(z: ArrayLike) -> Array:
    r"""Logistic sigmoid :math:`\sigma(z) = 1 / (1 + e^{-z})`, finite for any finite ``z``.

    >>> sigmoid(jnp.array([0.0, 100.0, -100.0]))
    Array([0.5, 1. , 0. ], dtype=float32)
    """
    return jax.nn.sigmoid(z)


def _sigmoid_derivative(z: Array, a: Array) -> Array:
    del z
    return a * (1 - a)


def tanh(z: ArrayLike) -> Array:
    r"""Hyperbolic tangent :math:`\tanh z = 2\sigma(2z) - 1`; :math:`\tanh'(z) = 1 - \tanh^2 z`.

    >>> tanh(jnp.array([0.0]))
    Array([0.], dtype=float32)
    """
    return jnp.tanh(z)


def _tanh_derivative(z: Array, a: Array) -> Array:
    del z
    return (1 + a) * (1 - a)


def relu(z: ArrayLike) -> Array:
    r"""Rectified linear unit :math:`\max(0, z)`, with :math:`\mathrm{relu}'(0) = 0` as JAX.

    Reference: V. Nair, G. Hinton, *Rectified Linear Units Improve Restricted Boltzmann
    Machines*, ICML 2010.

    >>> relu(jnp.array([-2.0, 0.0, 3.0]))
    Array([0., 0., 3.], dtype=float32)
    """
    return jax.nn.relu(z)


def _relu_derivative(z: Array, a: Array) -> Array:
    del a
    return jnp.where(z > 0, jnp.ones_like(z), jnp.zeros_like(z))


def rectifier(z: ArrayLike, alpha: float = 0.0) -> Array:
    r"""Generalised rectifier :math:`\max(0, z) + \alpha \min(0, z)`.

    :math:`\alpha = 0` is the ReLU (but see ``relu`` for JAX's derivative at 0),
    :math:`\alpha = -1` absolute-value rectification :math:`|z|`, a small positive
    :math:`\alpha` the leaky ReLU, and a learned :math:`\alpha` the parametric ReLU
    (He et al. 2015). The derivative at 0 is taken as 1, as ``jnp.abs`` and
    ``jax.nn.leaky_relu`` do.

    Reference: Goodfellow, Bengio, Courville, *Deep Learning*, 2016, sec. 6.3.1.

    >>> rectifier(jnp.array([-2.0, 3.0]), alpha=-1.0)
    Array([2., 3.], dtype=float32)
    """
    z = jnp.asarray(z)
    return jnp.where(z >= 0, z, alpha * z)


def _rectifier_derivative(z: Array, a: Array, alpha: float = 0.0) -> Array:
    del a
    return jnp.where(z >= 0, jnp.ones_like(z), jnp.full_like(z, alpha))


def leaky_relu(z: ArrayLike, negative_slope: float = 0.01) -> Array:
    r"""Leaky ReLU, the generalised rectifier with :math:`\alpha` = ``negative_slope``.

    Reference: A. Maas, A. Hannun, A. Ng, *Rectifier Nonlinearities Improve Neural Network
    Acoustic Models*, ICML 2013.

    >>> leaky_relu(jnp.array([-2.0, 3.0]), negative_slope=0.1)
    Array([-0.2,  3. ], dtype=float32)
    """
    return rectifier(z, negative_slope)


def absolute(z: ArrayLike) -> Array:
    r"""Absolute-value rectification :math:`|z|`, the generalised rectifier with :math:`\alpha = -1`.

    >>> absolute(jnp.array([-2.0, 3.0]))
    Array([2., 3.], dtype=float32)
    """
    return rectifier(z, -1.0)


def _absolute_derivative(z: Array, a: Array) -> Array:
    return _rectifier_derivative(z, a, -1.0)


def softplus(z: ArrayLike) -> Array:
    r"""Softplus :math:`\zeta(z) = \log(1 + e^z)`, a smooth ReLU; :math:`\zeta'(z) = \sigma(z)`.

    Computed as ``logaddexp(z, 0)``, finite for any finite ``z``.

    >>> softplus(jnp.array([0.0]))
    Array([0.6931472], dtype=float32)
    """
    return jax.nn.softplus(z)


def _softplus_derivative(z: Array, a: Array) -> Array:
    del a
    return jax.nn.sigmoid(z)


def hard_tanh(z: ArrayLike) -> Array:
    r"""Hard tanh :math:`\max(-1, \min(1, z))`, with derivative 1 on :math:`[-1, 1]` as JAX.

    >>> hard_tanh(jnp.array([-3.0, 0.5, 3.0]))
    Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    return jax.nn.hard_tanh(z)


def _hard_tanh_derivative(z: Array, a: Array) -> Array:
    del a
    inside = (z >= -1) & (z <= 1)
    return jnp.where(inside, jnp.ones_like(z), jnp.zeros_like(z))


def identity(z: ArrayLike) -> Array:
    r"""Identity :math:`f(z) = z`, the output activation of regression and of logits.

    >>> identity(jnp.array([1.5]))
    Array([1.5], dtype=float32)
    """
    return jnp.asarray(z)


def _identity_derivative(z: Array, a: Array) -> Array:
    del a
    return jnp.ones_like(z)


def rbf(z: ArrayLike, gamma: float = 1.0) -> Array:
    r"""Gaussian radial-basis activation :math:`\exp(-\gamma z^2)`, a bump centred at 0.

    Applied to the pre-activation :math:`z = w \cdot x + b` it is a ridge in input space,
    the building block of the bump construction of the universal approximation theorem.
    :math:`f'(z) = -2 \gamma z f(z)`.

    Reference: Goodfellow, Bengio, Courville, *Deep Learning*, 2016, sec. 6.3.3.

    Args:
      z: pre-activations, any shape.
      gamma: the width parameter :math:`\gamma > 0`; may be a traced scalar. A
        :math:`\gamma \le 0` would give a constant or :math:`\exp(+|\gamma| z^2)`, not a bump:
        a ``ValueError`` naming ``gamma`` when concrete, NaN (and inside
        :func:`fnn.checking.checked` an error) when traced.

    >>> rbf(jnp.array([0.0, 1.0]))
    Array([1.       , 0.3678794], dtype=float32)
    >>> rbf(jnp.array([0.0]), gamma=0.0)
    Traceback (most recent call last):
    ...
    ValueError: gamma must lie in (0, inf), got 0.0 (the RBF activation exp(-gamma z^2) is a bump only for gamma > 0)
    """
    z = jnp.asarray(z)
    gamma = _rbf_gamma(gamma)
    return jnp.exp(-gamma * jnp.square(z))


def _rbf_gamma(gamma: Any) -> Any:
    # exp(-gamma z^2) with gamma = 0 is the constant 1 and with gamma < 0 grows without bound.
    hint = " (the RBF activation exp(-gamma z^2) is a bump only for gamma > 0)"
    return _checks.in_range(gamma, "gamma", 0.0, math.inf, low_closed=False, hint=hint)


def _rbf_derivative(z: Array, a: Array, gamma: float = 1.0) -> Array:
    return -2 * _rbf_gamma(gamma) * z * a


# ----------------------------------------------------------------------------------------
# Softmax and log-softmax act on a whole axis: their backward step is a Jacobian-transpose
# product rather than a product with f'(z).
# ----------------------------------------------------------------------------------------


def _no_slice_of_minus_infs(z: Array, axis: int) -> Array:
    # Per slice: is some logit above -inf? NaN != -inf, so a NaN logit (an error made upstream, and
    # propagated as NaN) is not reported as an all -inf slice.
    return jnp.max(z, axis=axis) != -jnp.inf


def _message(name: str, axis: int) -> str:
    return (
        f"{name} must have a logit above -inf in every slice along axis {axis}, "
        "got a slice whose logits are all -inf (it has no softmax)"
    )


def _with_verdict(compute: Callable[..., Array]) -> Callable[..., tuple[Array, Array]]:
    """``compute(z, *args, axis=axis)`` and the per-slice verdict, in one compiled call.

    On concrete input that is one dispatch where the op-by-op forward and the check would be
    several, so the check costs nothing measurable eagerly; under an outer ``jit`` the verdict is
    unused unless :func:`fnn.checking.checked` asks for it, and XLA removes it.
    """

    @functools.partial(jax.jit, static_argnames=("axis",))
    def both(z: Array, *args: Array, axis: int) -> tuple[Array, Array]:
        return compute(z, *args, axis=axis), _no_slice_of_minus_infs(z, axis)

    def checked_compute(z: Array, *args: Array, axis: int, name: str = "z") -> Array:
        if z.ndim == 0 or z.shape[axis] == 0:
            return compute(z, *args, axis=axis)  # no slice to normalise: nothing to check
        out, ok = both(z, *args, axis=axis)
        # Under tracing the verdict goes to checkify (inside checked) and nowhere else: the bad
        # slice is already NaN by the arithmetic, so there is nothing to poison.
        _checks.require(ok, _message(name, axis))
        return out

    return checked_compute


def check_not_all_minus_inf(z: ArrayLike, name: str, axis: int = -1) -> Array | bool:
    r"""Value check that every slice of ``z`` along ``axis`` has a logit above :math:`-\infty`.

    A slice of logits that are all :math:`-\infty` (every class masked out) has no softmax,
    log-softmax or cross-entropy: :math:`-\infty - (-\infty)` makes it NaN. On concrete input
    this is a ``ValueError`` naming ``name``; under tracing the verdict is returned (and emitted
    through checkify inside :func:`fnn.checking.checked`), while the slice itself is NaN.

    Args:
      z: logits, a float array.
      name: the caller's name for ``z``, for the message.
      axis: the class axis.

    Returns:
      ``True`` on concrete input (a failure has raised), else the traced verdict of all slices.

    >>> check_not_all_minus_inf(jnp.array([0.0, -jnp.inf]), "logits")
    True
    >>> check_not_all_minus_inf(jnp.array([[0.0, 1.0], [-jnp.inf, -jnp.inf]]), "logits")
    Traceback (most recent call last):
    ...
    ValueError: logits must have a logit above -inf in every slice along axis -1, got a slice whose logits are all -inf (it has no softmax)
    """
    z = jnp.asarray(z)
    if z.ndim == 0 or z.shape[axis] == 0:
        return True
    if _checks.is_concrete(z):
        # On the host: no compilation per new shape and no dispatch (zero-copy on CPU).
        verdict = np.max(np.asarray(z), axis=axis) != -np.inf
    else:
        verdict = _no_slice_of_minus_infs(z, axis)
    return _checks.require(verdict, _message(name, axis))


def _softmax(z: Array, axis: int) -> Array:
    return jax.nn.softmax(z, axis=axis)


_checked_softmax = _with_verdict(_softmax)


def softmax(z: ArrayLike, axis: int = -1) -> Array:
    r"""Softmax :math:`s_k = e^{z_k - m} / \sum_j e^{z_j - m}` with :math:`m = \max_j z_j`.

    Subtracting the maximum keeps every exponent at most 0, so any finite logits (and
    logits of :math:`-\infty` on some classes) give a finite distribution. A slice whose
    logits are *all* :math:`-\infty` has no softmax (:math:`m = -\infty`, and
    :math:`e^{-\infty - (-\infty)}` is NaN): a ``ValueError`` on concrete input; under ``jit``
    that slice of the result is NaN, and :func:`fnn.checking.checked` reports the error.

    Args:
      z: logits, a float array with at least one dimension.
      axis: the axis the distribution is over.

    Returns:
      Array of ``z``'s shape, non-negative and summing to 1 along ``axis``.

    >>> softmax(jnp.array([1000.0, 0.0]))
    Array([1., 0.], dtype=float32)
    >>> softmax(jnp.array([[0.0, 0.0], [-jnp.inf, -jnp.inf]]))
    Traceback (most recent call last):
    ...
    ValueError: z must have a logit above -inf in every slice along axis -1, got a slice whose logits are all -inf (it has no softmax)
    """
    return _checked_softmax(jnp.asarray(z), axis=axis)


def _softmax_backward(z: Array, s: Array, g: Array, axis: int) -> Array:
    # J = diag(s) - s s^T is symmetric, so J^T g = s * (g - <s, g>).
    del z
    return s * (g - jnp.sum(s * g, axis=axis, keepdims=True))


_checked_softmax_backward = _with_verdict(_softmax_backward)


def _softmax_vjp(z: Array, s: Array, g: Array, axis: int = -1) -> Array:
    return _checked_softmax_backward(jnp.asarray(z), s, g, axis=axis)


def _log_softmax(z: Array, axis: int) -> Array:
    return jax.nn.log_softmax(z, axis=axis)


_checked_log_softmax = _with_verdict(_log_softmax)


def log_softmax(z: ArrayLike, axis: int = -1) -> Array:
    r"""Log-softmax :math:`z_k - \log \sum_j e^{z_j}`, by the log-sum-exp trick.

    A slice whose logits are all :math:`-\infty` is refused as in :func:`softmax`.

    >>> log_softmax(jnp.array([0.0, 0.0]))
    Array([-0.6931472, -0.6931472], dtype=float32)
    """
    return _checked_log_softmax(jnp.asarray(z), axis=axis)


def _log_softmax_backward(z: Array, log_s: Array, g: Array, axis: int) -> Array:
    # d log s_k / d z_j = delta_kj - s_j, so J^T g = g - s * sum(g).
    del z
    return g - jnp.exp(log_s) * jnp.sum(g, axis=axis, keepdims=True)


_checked_log_softmax_backward = _with_verdict(_log_softmax_backward)


def _log_softmax_vjp(z: Array, log_s: Array, g: Array, axis: int = -1) -> Array:
    return _checked_log_softmax_backward(jnp.asarray(z), log_s, g, axis=axis)


# ----------------------------------------------------------------------------------------
# The Activation record and the registry of names.
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Activation:
    """An activation with its local chain-rule step; hashable, so usable as a static argument.

    Attributes:
      name: the registry name.
      fn: the forward ``fn(z, *params) -> a``.
      derivative_fn: for elementwise activations, ``derivative_fn(z, a, *params) -> f'(z)``;
        for softmax and log-softmax, the Jacobian-transpose product
        ``derivative_fn(z, a, g, *params) -> J^T g``.
      params: the extra arguments of ``fn``, such as ``(negative_slope,)``.
      elementwise: whether ``fn`` acts on each entry alone.
    """

    name: str
    fn: Callable[..., Array]
    derivative_fn: Callable[..., Array]
    params: tuple[Any, ...] = ()
    elementwise: bool = True

    def __call__(self, z: ArrayLike) -> Array:
        return self.fn(z, *self.params)

    def derivative(self, z: ArrayLike) -> Array:
        """:math:`f'(z)`, elementwise; for softmax use :meth:`vjp`."""
        if not self.elementwise:
            raise ValueError(f"{self.name} is not elementwise; use vjp(z, a, g) for its backward step")
        z = jnp.asarray(z)
        return self.derivative_fn(z, self(z), *self.params)

    def vjp(self, z: Array, a: Array, g: Array) -> Array:
        """The backward step :math:`\\partial L/\\partial z` from ``z``, ``a = f(z)`` and ``g = \\partial L/\\partial a``."""
        if self.elementwise:
            return g * self.derivative_fn(z, a, *self.params)
        return self.derivative_fn(z, a, g, *self.params)


# name -> (fn, derivative_fn, parameter names with defaults, elementwise)
_REGISTRY: dict[str, tuple[Callable[..., Array], Callable[..., Array], dict[str, float], bool]] = {
    "step": (step, _step_derivative, {}, True),
    "sigmoid": (sigmoid, _sigmoid_derivative, {}, True),
    "tanh": (tanh, _tanh_derivative, {}, True),
    "relu": (relu, _relu_derivative, {}, True),
    "rectifier": (rectifier, _rectifier_derivative, {"alpha": 0.0}, True),
    "leaky_relu": (rectifier, _rectifier_derivative, {"negative_slope": 0.01}, True),
    "abs": (absolute, _absolute_derivative, {}, True),
    "softplus": (softplus, _softplus_derivative, {}, True),
    "hard_tanh": (hard_tanh, _hard_tanh_derivative, {}, True),
    "identity": (identity, _identity_derivative, {}, True),
    "rbf": (rbf, _rbf_derivative, {"gamma": 1.0}, True),
    "softmax": (softmax, _softmax_vjp, {}, False),
    "log_softmax": (log_softmax, _log_softmax_vjp, {}, False),
}


def names() -> tuple[str, ...]:
    """The registered activation names, sorted.

    >>> "relu" in names()
    True
    """
    return tuple(sorted(_REGISTRY))


def get(activation: str | Activation, **params: float) -> Activation:
    """Look up an activation by name, with optional parameters; an ``Activation`` passes through.

    Args:
      activation: a registry name (see :func:`names`) or an :class:`Activation`.
      **params: parameters of a parameterised activation, e.g. ``negative_slope`` for
        ``"leaky_relu"``, ``alpha`` for ``"rectifier"``, ``gamma`` for ``"rbf"``.

    Raises:
      ValueError: for an unknown name (the message lists the known ones) or parameter.
      TypeError: for anything that is neither a string nor an ``Activation``.

    >>> get("leaky_relu", negative_slope=0.2)(jnp.array([-1.0]))
    Array([-0.2], dtype=float32)
    """
    if isinstance(activation, Activation):
        if params:
            raise ValueError(f"parameters {sorted(params)} cannot be given with an Activation instance")
        return activation
    (fn, derivative_fn, _, elementwise), values = _checks.registry_lookup("activation", activation, _REGISTRY, params)
    if activation == "rbf":
        _rbf_gamma(*values)  # refuse gamma <= 0 when the record is made, not at its first call
    return Activation(activation, fn, derivative_fn, values, elementwise)


# ----------------------------------------------------------------------------------------
# From network outputs to class predictions.
# ----------------------------------------------------------------------------------------


def one_hot(labels: ArrayLike, num_classes: int, dtype: Any = jnp.float32) -> Array:
    """One-hot encoding of integer labels in ``[0, num_classes)``.

    Args:
      labels: integer array of any shape ``[...]``.
      num_classes: the number of classes K, at least 1.
      dtype: the dtype of the result.

    Returns:
      Array of shape ``[..., K]``. Under tracing, out-of-range labels give a row of NaN.

    >>> one_hot(jnp.array([0, 2]), 3)
    Array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    num_classes = _checks.positive_int(num_classes, "num_classes")
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be an integer array, got dtype {labels.dtype}")
    in_range = (labels >= 0) & (labels < num_classes)
    ok = _checks.require(in_range, f"labels must lie in [0, {num_classes}), got values outside it")
    encoded = jax.nn.one_hot(labels, num_classes, dtype=dtype)
    return encoded if ok is True else jnp.where(in_range[..., None], encoded, jnp.nan)


def predict_classes(scores: ArrayLike, threshold: float = 0.0) -> Array:
    """Class predictions from network outputs: argmax over the last axis.

    With a single output unit (last axis of size 1) the prediction is ``scores > threshold``
    as an integer: use ``threshold=0`` for logits and ``0.5`` for probabilities.

    Args:
      scores: array ``[..., K]`` of logits, probabilities or log-probabilities.
      threshold: the decision threshold for ``K = 1``.

    Returns:
      Integer array ``[...]``.

    >>> predict_classes(jnp.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]]))
    Array([1, 0], dtype=int32)
    >>> predict_classes(jnp.array([[-0.3], [0.8]]))
    Array([0, 1], dtype=int32)
    """
    scores = jnp.asarray(scores)
    if scores.ndim == 0:
        raise ValueError("scores must have a class axis, got a scalar")
    if scores.shape[-1] == 1:
        return (scores[..., 0] > threshold).astype(jnp.int32)
    return jnp.argmax(scores, axis=-1).astype(jnp.int32)
