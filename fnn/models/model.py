r"""The model protocol: how training sees a network.

A model is an object with two pure functions,

* ``init(key) -> (params, state)``: parameters to train, and state to carry (running
  statistics of batch normalisation, for instance; ``()`` when there is none);
* ``apply(params, state, x, *, key=None, train=False, weights=None) -> (output, state)``: the
  output, and the state after this call. ``key`` feeds layers that draw randomness (dropout),
  ``train`` switches layers that act differently in training and evaluation, and ``weights``
  ``[N] >= 0`` are the examples' weights, for layers whose training output mixes the examples
  of a batch (batch normalisation takes weighted batch statistics, so an example of weight 0
  is left out of them as it is left out of the loss). A model whose examples never meet may
  ignore them.

Training only ever calls these two, so a layer with randomness or running state changes what a
model does, never how it is trained. A model that also has a hand-written gradient provides

* ``backprop(params, state, x, target, loss, *, key=None, train=True, weights=None) -> ((loss, state), grads)``

(the :class:`HandGradient` protocol), and :func:`value_and_grad_fn` returns either that or
``jax.value_and_grad`` of ``apply`` by ``method``; both have the same signature and structure.
Models written before ``weights`` joined the protocol still train on unweighted data:
:func:`value_and_grad_fn` passes ``weights`` only when there are some.
"""

from __future__ import annotations

import inspect
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
        self,
        params: Params,
        state: State,
        x: ArrayLike,
        *,
        key: PRNGKey | None = None,
        train: bool = False,
        weights: ArrayLike | None = None,
    ) -> tuple[Array, State]: ...


@runtime_checkable
class HandGradient(Protocol):
    """A :class:`Model` that also carries its hand-written gradient.

    ``backprop(params, state, x, target, loss, *, key=None, train=True, weights=None)`` returns
    ``((loss_value, new_state), grads)``, the same as ``jax.value_and_grad`` of the loss of
    ``apply`` (given the same ``weights``) with the new state as auxiliary output; ``loss``
    is the one to differentiate, already weighted if the examples are.

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
        weights: ArrayLike | None = None,
    ) -> tuple[tuple[Array, State], Grads]: ...


LossAndGrad = Callable[..., tuple[tuple[Array, State], Grads]]


def _weights_kwargs(method: Callable[..., Any], weights: ArrayLike | None, what: str) -> dict[str, Any]:
    """``{"weights": weights}`` for a model method, ``{}`` without weights; a clear error if it takes none."""
    if weights is None:
        return {}
    parameters = inspect.signature(method).parameters.values()
    if not any(p.name == "weights" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        raise TypeError(
            f"{what} takes no example weights: the model protocol's apply and backprop take weights=None "
            "(the examples' weights, for batch statistics); add the argument (a model whose examples never "
            "meet may ignore it) or train without weights"
        )
    return {"weights": weights}


def value_and_grad_fn(model: Model, loss: str | _losses.Loss, *, method: str = "autodiff") -> LossAndGrad:
    """A function computing the loss and its gradient: it returns the function
    ``(params, state, x, target, *, key=None, train=True, weights=None) -> ((loss, state), grads)``.

    With ``weights [N] >= 0`` the loss is their weighted mean over the examples
    (:func:`fnn.nn.losses.weighted`) and the model is given them too, so its batch statistics
    weigh the examples as the loss does; a batch whose weights are all 0 has loss 0 and
    gradient 0. ``weights=None`` is the unweighted loss and passes no weights to the model.

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

    def loss_for(weights):
        return loss if weights is None else _losses.weighted(loss, weights)

    if method == "backprop":
        if not isinstance(model, HandGradient):
            raise TypeError(f"{type(model).__name__} has no hand-written backprop; use method='autodiff'")

        def by_hand(params, state, x, target, *, key=None, train=True, weights=None):
            extra = _weights_kwargs(model.backprop, weights, f"{type(model).__name__}.backprop")
            return model.backprop(params, state, x, target, loss_for(weights), key=key, train=train, **extra)

        return by_hand
    if method != "autodiff":
        raise ValueError(f"method must be 'autodiff' or 'backprop', got {method!r}")

    def objective(params, state, x, target, key, train, weights):
        extra = _weights_kwargs(model.apply, weights, f"{type(model).__name__}.apply")
        output, new_state = model.apply(params, state, x, key=key, train=train, **extra)
        return loss_for(weights)(output, target), new_state

    grad_fn = jax.value_and_grad(objective, has_aux=True)

    def by_autodiff(params, state, x, target, *, key=None, train=True, weights=None):
        return grad_fn(params, state, x, target, key, train, weights)

    return by_autodiff
