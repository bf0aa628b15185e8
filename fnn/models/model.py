r"""The model protocol: how training sees a network.

A model is an object with two pure functions,

* ``init(key) -> (params, state)``: parameters to train, and state to carry (running
  statistics of batch normalisation, for instance; ``()`` when there is none);
* ``apply(params, state, x, *, key=None, train=False) -> (output, state)``: the output, and
  the state after this call. ``key`` feeds layers that draw randomness (dropout) and
  ``train`` switches layers that act differently in training and evaluation.

Training only ever calls these two, so a layer with randomness or running state changes what a
model does, never how it is trained. A model that also has a hand-written gradient provides

* ``backprop(params, state, x, target, loss, *, key=None, train=True) -> ((loss, state), grads)``

(the :class:`HandGradient` protocol), and :func:`value_and_grad_fn` returns either that or
``jax.value_and_grad`` of ``apply`` by ``method``; both have the same signature and structure.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import jax

from fnn._types import Array, ArrayLike, Grads, Params, PRNGKey, State
from fnn.nn import losses as _losses

__all__ = ["Model", "HandGradient", "value_and_grad_fn"]


@runtime_checkable
class Model(Protocol):
    """What training needs of a network (see the module docstring)."""

    def init(self, key: PRNGKey, dtype: Any = ...) -> tuple[Params, State]: ...

    def apply(
        self, params: Params, state: State, x: ArrayLike, *, key: PRNGKey | None = None, train: bool = False
    ) -> tuple[Array, State]: ...


@runtime_checkable
class HandGradient(Protocol):
    """A :class:`Model` that also carries its hand-written gradient.

    ``backprop(params, state, x, target, loss, *, key=None, train=True)`` returns
    ``((loss_value, new_state), grads)``, the same as ``jax.value_and_grad`` of the loss of
    ``apply`` with the new state as auxiliary output.

    >>> from fnn.models import MLP
    >>> isinstance(MLP((2, 1)), HandGradient), isinstance(object(), HandGradient)
    (True, False)
    """

    def backprop(
        self,
        params: Params,
        state: State,
        x: ArrayLike,
        target: ArrayLike,
        loss: Any,
        *,
        key: PRNGKey | None = None,
        train: bool = True,
    ) -> tuple[tuple[Array, State], Grads]: ...


LossAndGrad = Callable[..., tuple[tuple[Array, State], Grads]]


def value_and_grad_fn(model: Model, loss: str | _losses.Loss, *, method: str = "autodiff") -> LossAndGrad:
    """A function computing the loss and its gradient: it returns the function ``(params, state, x, target, *, key=None, train=True) -> ((loss, state), grads)``.

    Args:
      model: any :class:`Model`; ``method="backprop"`` needs a :class:`HandGradient` model.
      loss: a loss name or :class:`~fnn.nn.losses.Loss` comparing ``apply``'s output with the target.
      method: ``"autodiff"`` for ``jax.value_and_grad``, ``"backprop"`` for the model's
        hand-written chain rule.

    >>> import jax.numpy as jnp
    >>> from fnn.models import MLP
    >>> model = MLP((2, 4, 1), activation="tanh")
    >>> params, state = model.init(jax.random.key(0))
    >>> x, y = jnp.ones((3, 2)), jnp.zeros((3, 1))
    >>> (l1, _), g1 = value_and_grad_fn(model, "mse")(params, state, x, y)
    >>> (l2, _), g2 = value_and_grad_fn(model, "mse", method="backprop")(params, state, x, y)
    >>> bool(jnp.allclose(l1, l2)), bool(jnp.allclose(g1[0]["W"], g2[0]["W"], atol=1e-6))
    (True, True)
    """
    loss = _losses.get(loss)
    if method == "backprop":
        if not isinstance(model, HandGradient):
            raise TypeError(f"{type(model).__name__} has no hand-written backprop; use method='autodiff'")

        def by_hand(params, state, x, target, *, key=None, train=True):
            return model.backprop(params, state, x, target, loss, key=key, train=train)

        return by_hand
    if method != "autodiff":
        raise ValueError(f"method must be 'autodiff' or 'backprop', got {method!r}")

    def objective(params, state, x, target, key, train):
        output, new_state = model.apply(params, state, x, key=key, train=train)
        return loss(output, target), new_state

    grad_fn = jax.value_and_grad(objective, has_aux=True)

    def by_autodiff(params, state, x, target, *, key=None, train=True):
        return grad_fn(params, state, x, target, key, train)

    return by_autodiff
