r"""Backpropagation written out by hand: the chain rule, layer by layer.

For the MLP of :mod:`fnn.nn.mlp`, :math:`z_l = a_{l-1} W_l + b_l`, :math:`a_l = f_l(z_l)`, and a
loss :math:`L(a_L, y)`, the backward pass starts from the error at the output and walks down:

.. math::

   \delta_L &= \frac{\partial L}{\partial a_L}
       \quad\text{(the loss's hand-written derivative)} \\
   \frac{\partial L}{\partial z_l} &= f_l'(z_l) \odot \frac{\partial L}{\partial a_l}
       \quad\text{(the activation's local step; a Jacobian product for softmax)} \\
   \frac{\partial L}{\partial W_l} &= a_{l-1}^\top \frac{\partial L}{\partial z_l}, \qquad
   \frac{\partial L}{\partial b_l} = \sum_{n} \frac{\partial L}{\partial z_{l,n}} \\
   \frac{\partial L}{\partial a_{l-1}} &= \frac{\partial L}{\partial z_l} W_l^\top
       \quad\text{(the error sent to the layer below)}

:func:`forward` keeps, for each layer, its input :math:`a_{l-1}`, its pre-activation
:math:`z_l` and its output :math:`a_l`; :func:`backward` uses exactly those. The gradient tree
has the structure of the parameters, the same as ``jax.grad``'s, and tests hold it equal to
``jax.grad`` to 1e-10 relative error in float64 for every activation, every loss and depths
1 to 4. Everything is pure, so it runs under ``jax.jit``, and under ``jax.vmap`` gives
per-example gradients:

>>> from fnn.nn import mlp
>>> params = mlp.init(jax.random.key(0), [3, 4, 2])
>>> x, y = jnp.ones((5, 3)), jnp.zeros((5, 2))
>>> per_example = jax.vmap(lambda xi, yi: grad(params, xi[None], yi[None], loss="mse"))(x, y)
>>> per_example[0]["W"].shape
(5, 3, 4)

**Dropout and batch normalisation** (an :class:`~fnn.models.MLP` with ``dropout``,
``input_dropout`` or ``batch_norm``) add two local steps. Dropout multiplies a layer's input by
a fixed mask :math:`m`, so the error sent down is multiplied by the same mask,
:math:`\partial L / \partial a = m \odot \partial L / \partial \tilde a`
(:func:`fnn.nn.dropout.vjp`); batch normalisation between the affine map and the
activation sends :math:`\partial L / \partial z_l` through
:func:`fnn.nn.batch_norm.vjp`, which also gives the gradients of :math:`\gamma_l`
and :math:`\beta_l`. :meth:`fnn.models.MLP.forward` keeps the mask and the batch-norm cache in
each layer's :class:`LayerCache`; :func:`backward` is the same function for every network, and
:meth:`fnn.models.MLP.backprop` runs it. With example weights (``weights=`` of the model) the
batch-norm cache also holds each example's share of the batch statistics, and the same vjp
uses it. Every backward step has one name: an activation's
``vjp``, a loss's ``grad``, :func:`fnn.nn.batch_norm.vjp` and :func:`fnn.nn.dropout.vjp`.

Reference: D. Rumelhart, G. Hinton, R. Williams, *Learning representations by
back-propagating errors*, Nature 323, 1986; Goodfellow, Bengio, Courville, *Deep Learning*,
2016, sec. 6.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax  # noqa: F401  (the doctests use it)
import jax.numpy as jnp

from fnn._types import Array, ArrayLike, Grads, Params
from fnn.nn import batch_norm as _batch_norm
from fnn.nn import dropout as _dropout
from fnn.nn import losses as _losses
from fnn.nn import mlp as _mlp

__all__ = ["LayerCache", "forward", "backward", "value_and_grad", "grad"]


class LayerCache(NamedTuple):
    """What the backward pass needs from one layer's forward pass.

    Attributes:
      inputs: :math:`a_{l-1}`, what meets :math:`W_l`, ``[..., d_{l-1}]`` (after dropout, if any).
      preactivation: the activation's argument, ``[..., d_l]``: :math:`z_l = a_{l-1} W_l + b_l`,
        or its batch normalisation when the layer has one.
      output: :math:`a_l = f_l(\text{preactivation})`, ``[..., d_l]``.
      input_mask: the scaled dropout mask that multiplied this layer's input, or ``None``.
      batch_norm: the :class:`~fnn.batch_norm.BatchNormCache` of the layer's batch
        normalisation, or ``None``.
    """

    inputs: Array
    preactivation: Array
    output: Array
    input_mask: Array | None = None
    batch_norm: _batch_norm.BatchNormCache | None = None


def forward(
    params: Params,
    x: ArrayLike,
    *,
    activation: _mlp.ActivationSpec | Sequence[_mlp.ActivationSpec] = "relu",
    output_activation: _mlp.ActivationSpec = "identity",
) -> tuple[Array, tuple[LayerCache, ...]]:
    """The forward pass of :func:`fnn.nn.mlp.apply`, keeping one :class:`LayerCache` per layer.

    Args:
      params: MLP parameters, a list of ``{"W", "b"}`` dicts.
      x: input ``[d_0]`` or ``[..., d_0]``.
      activation: hidden-layer activation(s).
      output_activation: the last layer's activation.

    Returns:
      The output ``[..., d_L]`` and a tuple of L caches.

    >>> from fnn.nn import mlp
    >>> params = mlp.init(jax.random.key(0), [2, 3, 1])
    >>> y, caches = forward(params, jnp.ones((4, 2)))
    >>> y.shape, [c.preactivation.shape for c in caches]
    ((4, 1), [(4, 3), (4, 1)])
    """
    a = _mlp.check_input(params, x)
    _mlp.check_no_batch_norm(params)
    caches = []
    for layer, f in zip(params, _mlp.layer_activations(len(params), activation, output_activation), strict=True):
        z = _mlp.affine(layer, a)
        out = f(z)
        caches.append(LayerCache(a, z, out))
        a = out
    return a, tuple(caches)


def backward(
    params: Params,
    caches: Sequence[LayerCache],
    d_output: ArrayLike,
    *,
    activation: _mlp.ActivationSpec | Sequence[_mlp.ActivationSpec] = "relu",
    output_activation: _mlp.ActivationSpec = "identity",
) -> tuple[Grads, Array]:
    r"""The chain rule from :math:`\partial L / \partial a_L` down to every weight and the input.

    With dropout and batch normalisation (caches from :meth:`fnn.models.MLP.forward`), the error sent
    down is multiplied by each layer's input mask and passed through the batch-norm vjp, and
    the gradient of a normalised layer also holds ``"gamma"`` and ``"beta"``.

    Args:
      params: the parameters the caches were computed with.
      caches: from :func:`forward` or :meth:`fnn.models.MLP.forward` with the same activations.
      d_output: :math:`\partial L / \partial a_L`, shaped like the network output.
      activation: hidden-layer activation(s), as given to :func:`forward`.
      output_activation: the last layer's activation.

    Returns:
      ``(grads, d_input)``: a gradient tree with the structure of ``params``, and
      :math:`\partial L / \partial x` shaped like the input.

    >>> from fnn.nn import mlp
    >>> params = mlp.init(jax.random.key(0), [2, 3, 1])
    >>> y, caches = forward(params, jnp.ones((4, 2)))
    >>> grads, d_x = backward(params, caches, jnp.ones_like(y))
    >>> grads[0]["W"].shape, d_x.shape
    ((2, 3), (4, 2))
    """
    acts = _mlp.layer_activations(len(params), activation, output_activation)
    if len(caches) != len(params):
        raise ValueError(f"caches hold {len(caches)} layers but params hold {len(params)}")
    delta = jnp.asarray(d_output)
    if delta.shape != caches[-1].output.shape:
        raise ValueError(f"d_output must have the output's shape {caches[-1].output.shape}, got {delta.shape}")
    grads = []
    for i, layer, f, cache in zip(
        reversed(range(len(params))), reversed(params), reversed(acts), reversed(caches), strict=True
    ):
        d_z = f.vjp(cache.preactivation, cache.output, delta)
        layer_grads = {}
        if cache.batch_norm is not None:
            if "gamma" not in layer:
                raise ValueError(f"caches[{i}] holds a batch normalisation but params[{i}] has no 'gamma' and 'beta'")
            bn_params = {"gamma": layer["gamma"], "beta": layer["beta"]}
            d_z, layer_grads = _batch_norm.vjp(bn_params, cache.batch_norm, d_z)
        elif "gamma" in layer:
            raise ValueError(f"params[{i}] holds 'gamma' and 'beta' but caches[{i}] has no batch normalisation")
        d_z_rows = d_z.reshape(-1, d_z.shape[-1])
        layer_grads["W"] = cache.inputs.reshape(-1, cache.inputs.shape[-1]).T @ d_z_rows
        layer_grads["b"] = jnp.sum(d_z_rows, axis=0)
        grads.append(layer_grads)
        delta = d_z @ layer["W"].T
        if cache.input_mask is not None:
            delta = _dropout.vjp(cache.input_mask, delta)
    return grads[::-1], delta


def value_and_grad(
    params: Params,
    x: ArrayLike,
    target: ArrayLike,
    *,
    loss: str | _losses.Loss = "mse",
    activation: _mlp.ActivationSpec | Sequence[_mlp.ActivationSpec] = "relu",
    output_activation: _mlp.ActivationSpec = "identity",
) -> tuple[Array, Grads]:
    """The loss of the network on ``(x, target)`` and its gradient, by hand-written backprop.

    Equals ``jax.value_and_grad(lambda p: loss(fnn.mlp.apply(p, x, ...), target))(params)``.

    Args:
      params: MLP parameters.
      x: inputs ``[N, d_0]``.
      target: what the loss compares the output with (see :func:`fnn.losses.get`).
      loss: a loss name or :class:`~fnn.losses.Loss`.
      activation: hidden-layer activation(s).
      output_activation: the last layer's activation.

    Returns:
      ``(loss_value, grads)`` with ``grads`` shaped like ``params``.

    >>> from fnn.nn import mlp
    >>> params = mlp.init(jax.random.key(0), [2, 3, 1])
    >>> value, grads = value_and_grad(params, jnp.ones((4, 2)), jnp.zeros((4, 1)), loss="mse")
    >>> value.shape, jax.tree.structure(grads) == jax.tree.structure(params)
    ((), True)
    """
    loss = _losses.get(loss)
    kwargs = {"activation": activation, "output_activation": output_activation}
    output, caches = forward(params, x, **kwargs)
    grads, _ = backward(params, caches, loss.grad(output, target), **kwargs)
    return loss(output, target), grads


def grad(
    params: Params,
    x: ArrayLike,
    target: ArrayLike,
    *,
    loss: str | _losses.Loss = "mse",
    activation: _mlp.ActivationSpec | Sequence[_mlp.ActivationSpec] = "relu",
    output_activation: _mlp.ActivationSpec = "identity",
) -> Grads:
    """The gradient of :func:`value_and_grad` alone.

    >>> from fnn.nn import mlp
    >>> params = mlp.init(jax.random.key(0), [2, 1])
    >>> grad(params, jnp.ones((4, 2)), jnp.zeros((4, 1)))[0]["b"].shape
    (1,)
    """
    return value_and_grad(params, x, target, loss=loss, activation=activation, output_activation=output_activation)[1]
