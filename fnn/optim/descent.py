r"""Full-batch gradient descent, compiled as one ``lax.scan``.

.. math:: \theta_{t+1} = \theta_t - \eta \nabla_\theta L(\theta_t), \qquad t = 0, \dots, T - 1

:func:`minimize` runs the same loop with any optax optimizer (momentum, Adam, ... from
:mod:`fnn.optimizers`) in place of the plain gradient step, on a function whose gradient
``jax.grad`` takes.

The gradient comes from any function returning ``(loss, grads)``: ``jax.value_and_grad`` of a
loss, or the hand-written :func:`fnn.backprop.value_and_grad`. The whole run is one compiled
loop; the learning rate may be a traced array, so a sweep over rates or over initial
parameters (seeds) is one ``jax.vmap``.

A non-finite loss or gradient is never trained through silently: the run stops updating at
the first step where either is NaN or infinite, and :func:`fnn.checking.raise_if_nonfinite` names the step
where the loss curve turned non-finite.

Reference: A. Cauchy, *Méthode générale pour la résolution des systèmes d'équations
simultanées*, C. R. Acad. Sci. Paris 25, 1847.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from fnn import _checks
from fnn._types import Array, ArrayLike, Grads, Params

__all__ = ["gradient_descent", "minimize", "descend"]


def gradient_descent(
    value_and_grad: Callable[[Params], tuple[Array, Grads]],
    params: Params,
    *,
    learning_rate: ArrayLike,
    steps: int,
) -> tuple[Params, Array]:
    r"""Run ``steps`` steps of gradient descent; return the final parameters and the loss curve.

    Args:
      value_and_grad: ``params -> (loss, grads)``, ``grads`` shaped like ``params``.
      params: the starting point, a pytree of float arrays.
      learning_rate: :math:`\eta > 0`, a Python float or a (possibly traced) scalar.
      steps: the number of updates T, a positive integer (static: it sets the loop length).

    Returns:
      ``(params, losses)``: the final parameters and ``losses: [T]``, where ``losses[t]`` is
      the loss at :math:`\theta_t`, before update t. From the first step whose loss or
      gradient is non-finite, the parameters stop changing (they stay at that step's
      :math:`\theta_t`) and the remaining losses repeat its loss; a step whose loss is
      finite but whose gradient is not records NaN.

    >>> params, losses = gradient_descent(lambda p: (p ** 2, 2 * p), jnp.array(1.0), learning_rate=0.25, steps=3)
    >>> params, losses
    (Array(0.125, dtype=float32), Array([1.   , 0.25 , 0.0625], dtype=float32, weak_type=True))
    """
    steps = _checks.positive_int(steps, "steps")
    learning_rate = jnp.asarray(learning_rate)
    if learning_rate.ndim:
        raise ValueError(f"learning_rate must be a scalar, got shape {learning_rate.shape}")
    ok = _checks.require(learning_rate > 0, "learning_rate must be positive")
    learning_rate = _checks.poison(learning_rate, ok)

    return descend(value_and_grad, params, optax.sgd(learning_rate), steps)


def descend(
    value_and_grad: Callable[[Params], tuple[Array, Grads]],
    params: Params,
    optimizer: optax.GradientTransformation,
    steps: int,
    *,
    record: bool = False,
) -> tuple[Params, Array] | tuple[Params, Array, Params]:
    r"""The compiled descent loop under :func:`gradient_descent` and :func:`minimize`.

    .. math:: (L_t, g_t) = \mathrm{value\_and\_grad}(\theta_t), \qquad
              (u_t, s_{t+1}) = \mathrm{update}(g_t, s_t, \theta_t), \qquad \theta_{t+1} = \theta_t + u_t

    for :math:`t = 0, \dots, T - 1` as one ``lax.scan``. From the first step whose loss or
    gradient is non-finite, the parameters and the optimizer state stop changing; a finite
    loss with a non-finite gradient is recorded as NaN. Arguments are not validated here (the
    public callers do it).

    Args:
      value_and_grad: ``params -> (loss, grads)``, ``grads`` shaped like ``params``.
      params: the starting point :math:`\theta_0`, a pytree of float arrays.
      optimizer: an ``optax.GradientTransformation``.
      steps: the number of updates T, a positive Python int.
      record: also return the parameters before every update.

    Returns:
      ``(params, losses [T])``, and with ``record`` ``(params, losses, path)`` where each leaf
      of ``path`` is ``[T, ...]``: :math:`\theta_t` before update t.

    >>> params, losses, path = descend(lambda p: (p ** 2, 2 * p), jnp.array(1.0), optax.sgd(0.25), 2, record=True)
    >>> params, losses, path
    (Array(0.25, dtype=float32), Array([1.  , 0.25], dtype=float32, weak_type=True), Array([1. , 0.5], dtype=float32, weak_type=True))
    """

    def step(carry, _: None):
        params, opt_state, stopped = carry
        loss, grads = value_and_grad(params)
        # A finite loss with a non-finite gradient is recorded as NaN, so the curve shows the step.
        loss = jnp.where(_checks.all_finite(grads), loss, jnp.nan)
        stopped = stopped | ~jnp.isfinite(loss)
        updates, new_state = optimizer.update(grads, opt_state, params)
        # apply_updates casts back to each leaf's dtype: a float64 rate (a sweep under x64) must
        # not promote float32 params, which lax.scan would reject as a change of the carry's type.
        new_params = optax.apply_updates(params, updates)
        carry = (_checks.hold(stopped, new_params, params), _checks.hold(stopped, new_state, opt_state), stopped)
        return carry, ((loss, params) if record else loss)

    (params, _, _), out = jax.lax.scan(step, (params, optimizer.init(params), jnp.asarray(False)), None, length=steps)
    return (params, *out) if record else (params, out)


def minimize(
    fun: Callable[[Params], Array],
    x0: Params,
    optimizer: optax.GradientTransformation,
    steps: int,
) -> tuple[Params, Array]:
    r"""Minimise ``fun`` from ``x0`` with an optax optimizer: ``steps`` updates as one ``lax.scan``.

    .. math:: g_t = \nabla f(x_t), \qquad (u_t, s_{t+1}) = \mathrm{update}(g_t, s_t, x_t),
              \qquad x_{t+1} = x_t + u_t, \qquad t = 0, \dots, T - 1

    with :math:`s_0 = \mathrm{init}(x_0)` and the gradient from ``jax.value_and_grad``. The
    optimizer is built outside (``fnn.optimizers.get("adam", learning_rate=lr)``), so its
    hyperparameters may be traced and a sweep over them, or over starting points, is one
    ``jax.vmap`` that compiles once. Non-finite values are handled as in
    :func:`gradient_descent`.

    Args:
      fun: ``params -> loss``, a scalar; differentiable by ``jax.grad``.
      x0: the starting point, a pytree of float arrays.
      optimizer: an ``optax.GradientTransformation``, such as any optimizer of
        :mod:`fnn.optimizers`; its ``update`` receives the current parameters (AdamW needs them).
      steps: the number of updates T, a positive integer (static: it sets the loop length).

    Returns:
      ``(x, losses)``: the final parameters (the tree, shapes and dtypes of ``x0``) and
      ``losses: [T]``, where ``losses[t]`` is :math:`f(x_t)`, before update t. From the first
      step whose loss or gradient is non-finite, the parameters and the optimizer state stop
      changing and the remaining losses repeat that step's loss; a step whose loss is finite
      but whose gradient is not records NaN (see :func:`fnn.checking.raise_if_nonfinite`).

    >>> from fnn import optimizers
    >>> x, losses = minimize(lambda x: jnp.sum(x ** 2), jnp.array([1.0, -2.0]), optimizers.sgd(0.25), steps=3)
    >>> x, losses
    (Array([ 0.125, -0.25 ], dtype=float32), Array([5.    , 1.25  , 0.3125], dtype=float32))
    """
    steps = _checks.positive_int(steps, "steps")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"optimizer must be an optax.GradientTransformation (e.g. fnn.optimizers.get(name, learning_rate=...)), "
            f"got {type(optimizer).__name__}"
        )
    value = jax.eval_shape(fun, x0)
    if not hasattr(value, "shape") or value.shape != ():
        raise ValueError(f"fun must return a scalar loss, got {getattr(value, 'shape', type(value).__name__)}")
    return descend(jax.value_and_grad(fun), x0, optimizer, steps)
