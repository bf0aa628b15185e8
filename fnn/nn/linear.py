r"""Linear regression and logistic regression: the one-layer networks.

A linear model is an MLP with no hidden layer, :math:`\hat y = x W + b`, and its parameters
are the one-layer MLP pytree ``[{"W": [d, K], "b": [K]}]``, so :mod:`fnn.mlp`,
:mod:`fnn.backprop` and training use it unchanged:

* **linear regression**: identity output, loss ``"mse"`` (or ``"gaussian_nll"``: the same
  minimiser, least squares being maximum likelihood under Gaussian noise);
* **logistic regression**, one sigmoid neuron: :math:`p(y = 1 \mid x) = \sigma(x w + b)`,
  trained from the logit :math:`x w + b` with ``"binary_cross_entropy"``, which is the
  negative log-likelihood of a Bernoulli target;
* **multinomial (softmax) logistic regression** for :math:`K \ge 2` classes:
  :math:`p(y = k \mid x) = \mathrm{softmax}(x W + b)_k`, trained from the logits :math:`x W + b`
  with ``"cross_entropy"``, the negative log-likelihood of a categorical target. With
  :math:`S = \mathrm{softmax}(X W + \mathbf 1 b^\top)` and one-hot labels :math:`Y` its gradient is

  .. math:: \nabla_W \mathrm{CE} = \frac1N X^\top (S - Y), \qquad
            \nabla_b \mathrm{CE} = \frac1N (S - Y)^\top \mathbf 1,

  (:func:`multinomial_grad`), and the loss is convex in :math:`(W, b)`, so gradient descent
  from zero (:func:`fit_multinomial`) finds its minimum. For :math:`K = 2` it is logistic
  regression on the logit difference :math:`z_1 - z_0`.

Reference: C. Bishop, *Pattern Recognition and Machine Learning*, Springer 2006, ch. 3-4
(sec. 4.3.4 for the multiclass case).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike, Params, PRNGKey
from fnn.nn import activations as _activations
from fnn.nn import losses as _losses
from fnn.nn import mlp as _mlp

__all__ = [
    "init",
    "apply",
    "logistic",
    "multinomial",
    "multinomial_loss",
    "multinomial_grad",
    "fit_multinomial",
    "least_squares",
]


def init(
    key: PRNGKey, n_inputs: int, n_outputs: int = 1, *, scheme: str = "glorot", dtype: Any = jnp.float32
) -> Params:
    """A one-layer MLP ``[{"W": [n_inputs, n_outputs], "b": [n_outputs]}]``.

    >>> params = init(jax.random.key(0), 3)
    >>> params[0]["W"].shape, params[0]["b"].shape
    ((3, 1), (1,))
    """
    return _mlp.init(key, [n_inputs, n_outputs], scheme=scheme, dtype=dtype)


def _one_layer(params: Params) -> None:
    _mlp.check_params(params)
    if len(params) != 1:
        raise ValueError(f"a linear model has one layer, got params with {len(params)}")


def apply(params: Params, x: ArrayLike) -> Array:
    """The linear output :math:`x W + b`, ``[..., K]``; for logistic regression, the logit.

    >>> params = [{"W": jnp.array([[2.0], [-1.0]]), "b": jnp.array([0.5])}]
    >>> apply(params, jnp.array([[1.0, 1.0]]))
    Array([[1.5]], dtype=float32)
    """
    _one_layer(params)
    return _mlp.apply(params, x, output_activation="identity")


def logistic(params: Params, x: ArrayLike) -> Array:
    r"""Logistic regression's probability :math:`\sigma(x W + b)`, ``[..., K]``.

    >>> params = [{"W": jnp.array([[1.0]]), "b": jnp.array([0.0])}]
    >>> logistic(params, jnp.array([[0.0]]))
    Array([[0.5]], dtype=float32)
    """
    return jax.nn.sigmoid(apply(params, x))


def _multiclass(params: Params, x: ArrayLike) -> Array:
    """The logits ``[N, K]`` of a linear model with K >= 2 outputs on a batch ``x: [N, d]``."""
    x = _checks.float_array(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must be a batch [N, d], got shape {x.shape}")
    logits = apply(params, x)
    if logits.shape[-1] < 2:
        raise ValueError(
            f"multinomial logistic regression needs K >= 2 outputs, got W of shape {jnp.shape(params[0]['W'])} "
            "(for two classes with one output use logistic)"
        )
    return logits


def multinomial(params: Params, x: ArrayLike) -> Array:
    r"""Multinomial logistic regression's class probabilities :math:`\mathrm{softmax}(x W + b)`, ``[N, K]``.

    Args:
      params: ``[{"W": [d, K], "b": [K]}]`` with :math:`K \ge 2`, e.g. from :func:`init` or
        :func:`fit_multinomial`.
      x: inputs ``[N, d]``.

    Returns:
      ``[N, K]``, each row a distribution over the K classes.

    >>> params = [{"W": jnp.array([[1.0, -1.0]]), "b": jnp.array([0.0, 0.0])}]
    >>> multinomial(params, jnp.array([[0.0], [10.0]])).round(4)
    Array([[0.5, 0.5],
           [1. , 0. ]], dtype=float32)
    """
    return _activations.softmax(_multiclass(params, x))


def multinomial_loss(params: Params, x: ArrayLike, labels: ArrayLike) -> Array:
    r"""The mean negative log-likelihood :math:`-\frac1N \sum_n \log \mathrm{softmax}(x_n W + b)_{y_n}`.

    That is :func:`fnn.nn.losses.cross_entropy` of the logits :math:`x W + b`, computed by the
    log-sum-exp trick.

    Args:
      params: ``[{"W": [d, K], "b": [K]}]``, :math:`K \ge 2`.
      x: inputs ``[N, d]``.
      labels: integer classes ``[N]`` in ``[0, K)``, or distributions ``[N, K]``.

    Returns:
      Scalar.

    >>> params = [{"W": jnp.zeros((1, 3)), "b": jnp.zeros(3)}]
    >>> multinomial_loss(params, jnp.array([[1.0]]), jnp.array([2]))  # log 3
    Array(1.0986123, dtype=float32)
    """
    return _losses.cross_entropy(_multiclass(params, x), labels)


def multinomial_grad(params: Params, x: ArrayLike, labels: ArrayLike) -> Params:
    r"""The hand-written gradient of :func:`multinomial_loss`, in the tree of ``params``.

    The chain rule through :math:`Z = X W + \mathbf 1 b^\top`, with
    :math:`\partial\,\mathrm{CE} / \partial Z = (S - Y) / N` (:func:`fnn.nn.losses.cross_entropy_grad`):

    .. math:: \nabla_W = X^\top \frac{S - Y}{N}, \qquad \nabla_b = \mathbf 1^\top \frac{S - Y}{N}.

    Args:
      params, x, labels: as :func:`multinomial_loss`.

    Returns:
      ``[{"W": [d, K], "b": [K]}]``.

    >>> params = [{"W": jnp.zeros((1, 2)), "b": jnp.zeros(2)}]
    >>> multinomial_grad(params, jnp.array([[2.0]]), jnp.array([1]))[0]["W"]
    Array([[ 1., -1.]], dtype=float32)
    """
    x = _checks.float_array(x, "x")
    d_logits = _losses.cross_entropy_grad(_multiclass(params, x), labels)
    return [{"W": x.T @ d_logits, "b": jnp.sum(d_logits, axis=0)}]


def fit_multinomial(
    x: ArrayLike, labels: ArrayLike, num_classes: int, *, learning_rate: float = 0.5, steps: int = 500
) -> tuple[Params, Array]:
    r"""Multinomial logistic regression by full-batch gradient descent from zero, in one compiled loop.

    :math:`\theta_{t+1} = \theta_t - \eta \nabla \mathrm{CE}(\theta_t)` with the gradient of
    :func:`multinomial_grad`, run as a ``lax.scan``. The loss is convex and its gradient is
    Lipschitz with constant at most :math:`\tfrac12 \lambda_{\max}(\tilde X^\top \tilde X) / N`
    (:math:`\tilde X` is :math:`X` with a column of ones; the softmax Jacobian
    :math:`\mathrm{diag}(s) - s s^\top` has eigenvalues at most :math:`\tfrac12`), so any step
    :math:`\eta < 2 / L` decreases the loss at every step. On separable classes the loss tends to 0
    and the weights grow without bound: stop by ``steps``.

    Args:
      x: inputs ``[N, d]``; standardise the features for a common step size.
      labels: integer classes ``[N]`` in ``[0, num_classes)`` (or distributions ``[N, K]``).
      num_classes: K, at least 2.
      learning_rate: :math:`\eta > 0`; may be a traced scalar (a sweep is one ``jax.vmap``).
      steps: the number of gradient steps, positive.

    Returns:
      ``(params, losses)``: ``[{"W": [d, K], "b": [K]}]`` after the last step, and the loss
      before each step, ``[steps]``.

    >>> x = jnp.array([[-2.0], [0.0], [2.0]])
    >>> params, losses = fit_multinomial(x, jnp.array([0, 1, 2]), 3, steps=200)
    >>> predictions = jnp.argmax(multinomial(params, x), axis=-1)
    >>> predictions.tolist(), bool(losses[-1] < losses[0])
    ([0, 1, 2], True)
    """
    x = _checks.float_array(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must be a batch [N, d], got shape {x.shape}")
    num_classes = _checks.integer(num_classes, "num_classes", minimum=2)
    steps = _checks.positive_int(steps, "steps")
    learning_rate = _checks.positive(learning_rate, "learning_rate")
    labels = jnp.asarray(labels)
    params = [{"W": jnp.zeros((x.shape[1], num_classes), x.dtype), "b": jnp.zeros((num_classes,), x.dtype)}]
    # Bad labels are refused here, on concrete input, rather than as a curve of NaN from the loop.
    multinomial_loss(params, x, labels)
    return _descend(params, x, labels, learning_rate, steps)


@functools.partial(jax.jit, static_argnums=4)
def _descend(params: Params, x: Array, labels: Array, learning_rate: Any, steps: int) -> tuple[Params, Array]:
    def step(params: Params, _: None) -> tuple[Params, Array]:
        loss = multinomial_loss(params, x, labels)
        grads = multinomial_grad(params, x, labels)
        return jax.tree.map(lambda p, g: p - learning_rate * g, params, grads), loss

    return jax.lax.scan(step, params, None, length=steps)


def least_squares(x: ArrayLike, y: ArrayLike, *, ridge: float = 0.0) -> Params:
    r"""The closed-form least-squares (or ridge) solution as linear-model parameters.

    Solves :math:`\min_{W, b} \|x W + b - y\|^2 + \lambda \|W\|^2` by appending a column of
    ones to ``x`` and solving with ``jnp.linalg.lstsq`` (for :math:`\lambda = 0`, the
    minimum-norm solution) or the regularised normal equations (:math:`\lambda > 0`; the
    bias is not penalised).

    Args:
      x: inputs ``[N, d]``.
      y: targets ``[N]`` or ``[N, K]``.
      ridge: :math:`\lambda \ge 0`.

    Returns:
      ``[{"W": [d, K], "b": [K]}]`` (K = 1 for ``y: [N]``).

    >>> x = jnp.array([[0.0], [1.0], [2.0]])
    >>> params = least_squares(x, 3 * x[:, 0] + 1)
    >>> jnp.round(params[0]["W"], 4), jnp.round(params[0]["b"], 4)
    (Array([[3.]], dtype=float32), Array([1.], dtype=float32))
    """
    x = _checks.float_array(x, "x")
    y = jnp.asarray(y, x.dtype)
    if x.ndim != 2:
        raise ValueError(f"x must be [N, d], got shape {x.shape}")
    _checks.nonempty_batch(x, "x")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must be [N] or [N, K] with N = {x.shape[0]}, got shape {y.shape}")
    if ridge < 0:
        raise ValueError(f"ridge must be non-negative, got {ridge}")
    design = jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)
    if ridge == 0:
        theta = jnp.linalg.lstsq(design, y)[0]
    else:
        penalty = jnp.diag(jnp.concatenate([jnp.full((x.shape[1],), ridge, x.dtype), jnp.zeros((1,), x.dtype)]))
        theta = jnp.linalg.solve(design.T @ design + penalty, design.T @ y)
    return [{"W": theta[:-1], "b": theta[-1]}]
