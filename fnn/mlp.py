r"""The multilayer perceptron: affine maps and activations, stacked to any depth.

A network with layer sizes :math:`(d_0, d_1, \dots, d_L)` computes, for an input row
:math:`a_0 = x \in \mathbb R^{d_0}`,

.. math:: z_l = a_{l-1} W_l + b_l, \qquad a_l = f_l(z_l), \qquad l = 1, \dots, L,

with :math:`W_l \in \mathbb R^{d_{l-1} \times d_l}` and :math:`b_l \in \mathbb R^{d_l}`.
**Weights are laid out** ``[in, out]`` **and inputs are rows**, so a batch ``x: [N, d_0]``
goes through ``x @ W + b`` unchanged; any number of leading batch axes works, and a single
example ``[d_0]`` as well.

The parameters are a plain pytree: a list with one ``{"W": [in, out], "b": [out]}`` dict per
layer. Hidden layers share one activation or take one each; the output layer has its own
(``"identity"`` for regression and for logits).

Two interfaces:

* the functions :func:`init` and :func:`apply`, for a network given by its sizes;
* the :class:`MLP` model, which carries its configuration and follows the model protocol of
  :mod:`fnn.model`: ``init(key) -> (params, state)`` and
  ``apply(params, state, x, *, key=None, train=False) -> (y, state)``, the form training uses,
  so layers with randomness or running state slot in without changing it.

Reference: D. Rumelhart, G. Hinton, R. Williams, *Learning representations by
back-propagating errors*, Nature 323, 1986.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Union

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn import activations as _activations
from fnn import initializers as _initializers
from fnn._types import Array, ArrayLike, Params, PRNGKey, State

__all__ = ["init", "apply", "affine", "layer_activations", "check_params", "check_input", "sizes_of", "MLP"]

ActivationSpec = Union[str, _activations.Activation]


def _sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a sequence of layer widths, got {type(sizes).__name__}")
    if len(sizes) < 2:
        raise ValueError(f"sizes must list the input width and at least one layer width, got {list(sizes)}")
    return tuple(_checks.positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes))


def init(
    key: PRNGKey, sizes: Sequence[int], *, scheme: str = "he", std: float = 0.01, dtype: Any = jnp.float32
) -> Params:
    """Initialise an MLP: weights by ``scheme`` (see :mod:`fnn.initializers`), biases zero.

    Args:
      key: a PRNG key; one subkey is split off per layer.
      sizes: layer widths ``(d_0, d_1, ..., d_L)``, the input width first; positive integers.
      scheme: the weight initialisation scheme, e.g. ``"he"`` for ReLU, ``"glorot"`` for tanh.
      std: the standard deviation of the ``"normal"`` scheme.
      dtype: a floating dtype for all parameters.

    Returns:
      A list of L dicts ``{"W": [d_{l-1}, d_l], "b": [d_l]}``.

    >>> params = init(jax.random.key(0), [2, 3, 1])
    >>> [(p["W"].shape, p["b"].shape) for p in params]
    [((2, 3), (3,)), ((3, 1), (1,))]
    """
    sizes = _sizes(sizes)
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {
            "W": _initializers.weights(k, n_in, n_out, scheme, std=std, dtype=dtype),
            "b": jnp.zeros((n_out,), dtype),
        }
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:])
    ]


def check_params(params: Params) -> None:
    """Check that ``params`` is a list of ``{"W": [in, out], "b": [out]}`` dicts that chain.

    Raises:
      TypeError / ValueError naming the layer and what was wrong.
    """
    if not isinstance(params, (list, tuple)) or not params:
        raise TypeError(f"params must be a non-empty list of layer dicts, got {type(params).__name__}")
    previous = None
    for i, layer in enumerate(params):
        if not isinstance(layer, dict) or set(layer) != {"W", "b"}:
            raise TypeError(f"params[{i}] must be a dict with keys 'W' and 'b', got {layer!r:.80}")
        w, b = jnp.shape(layer["W"]), jnp.shape(layer["b"])
        if len(w) != 2 or b != w[1:]:
            raise ValueError(f"params[{i}] must hold W [in, out] and b [out], got W {w} and b {b}")
        if previous is not None and w[0] != previous:
            raise ValueError(f"params[{i}]['W'] takes {w[0]} inputs but layer {i - 1} gives {previous} outputs")
        previous = w[1]


def sizes_of(params: Params) -> tuple[int, ...]:
    """The layer widths ``(d_0, ..., d_L)`` of an MLP's parameters.

    >>> sizes_of(init(jax.random.key(0), [4, 8, 3]))
    (4, 8, 3)
    """
    check_params(params)
    return (int(jnp.shape(params[0]["W"])[0]), *(int(jnp.shape(p["W"])[1]) for p in params))


def layer_activations(
    num_layers: int,
    activation: ActivationSpec | Sequence[ActivationSpec] = "relu",
    output_activation: ActivationSpec = "identity",
) -> tuple[_activations.Activation, ...]:
    """One :class:`~fnn.activations.Activation` per layer: the hidden ones, then the output one.

    Args:
      num_layers: the number of layers L (weight matrices).
      activation: one activation for every hidden layer, or a sequence of L - 1 of them.
      output_activation: the activation of the last layer.

    Raises:
      ValueError: if a sequence has the wrong length, or a name is unknown.

    >>> [a.name for a in layer_activations(3, ("tanh", "relu"), "sigmoid")]
    ['tanh', 'relu', 'sigmoid']
    """
    hidden = num_layers - 1
    if isinstance(activation, (str, _activations.Activation)):
        per_layer = [activation] * hidden
    else:
        per_layer = list(activation)
        if len(per_layer) != hidden:
            raise ValueError(
                f"activation must be one activation or one per hidden layer ({hidden}), got {len(per_layer)}"
            )
    return tuple(_activations.get(a) for a in per_layer) + (_activations.get(output_activation),)


def check_input(params: Params, x: ArrayLike) -> Array:
    """``x`` as a float array whose last axis matches the first layer, else a clear error."""
    check_params(params)
    x = _checks.float_array(x, "x")
    n_in = jnp.shape(params[0]["W"])[0]
    if x.ndim == 0 or x.shape[-1] != n_in:
        raise ValueError(f"x must have {n_in} features on its last axis (the first layer's input size), got shape {x.shape}")
    return x


def affine(layer: dict[str, Array], x: Array) -> Array:
    """One layer's pre-activation :math:`z = x W + b`, ``[..., d_in] -> [..., d_out]``.

    The bias is broadcast explicitly, so the code is valid under
    ``jax_numpy_rank_promotion="raise"``.

    >>> affine({"W": jnp.ones((2, 3)), "b": jnp.arange(3.0)}, jnp.ones((4, 2)))[0]
    Array([2., 3., 4.], dtype=float32)
    """
    z = x @ layer["W"]
    return z + jax.lax.broadcast_to_rank(layer["b"], z.ndim)


def apply(
    params: Params,
    x: ArrayLike,
    *,
    activation: ActivationSpec | Sequence[ActivationSpec] = "relu",
    output_activation: ActivationSpec = "identity",
) -> Array:
    """Run the network on one example ``[d_0]`` or a batch ``[..., d_0]``.

    Args:
      params: as returned by :func:`init`.
      x: float input whose last axis has the first layer's input width.
      activation: hidden-layer activation(s), see :func:`layer_activations`.
      output_activation: the last layer's activation.

    Returns:
      Array ``[..., d_L]``.

    >>> params = init(jax.random.key(0), [2, 4, 1])
    >>> apply(params, jnp.ones((5, 2))).shape
    (5, 1)
    """
    x = check_input(params, x)
    for layer, f in zip(params, layer_activations(len(params), activation, output_activation)):
        x = f(affine(layer, x))
    return x


@dataclasses.dataclass(frozen=True)
class MLP:
    """An MLP as a model: its configuration, and ``init``/``apply`` in the model protocol.

    Hashable and immutable, so it can be closed over or passed as a static argument of
    ``jax.jit`` without retracing.

    Attributes:
      sizes: layer widths ``(d_0, ..., d_L)``.
      activation: hidden activation(s), names or :class:`~fnn.activations.Activation` records.
      output_activation: the activation of the last layer.
      scheme: the weight initialisation scheme.

    >>> model = MLP((2, 8, 1), activation="tanh")
    >>> params, state = model.init(jax.random.key(0))
    >>> y, state = model.apply(params, state, jnp.zeros((3, 2)))
    >>> y.shape, state
    ((3, 1), ())
    """

    sizes: tuple[int, ...]
    activation: Any = "relu"
    output_activation: Any = "identity"
    scheme: str = "he"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", _sizes(self.sizes))
        if not isinstance(self.activation, (str, _activations.Activation)):
            object.__setattr__(self, "activation", tuple(self.activation))
        # Resolve names now, so a typo fails at construction rather than at the first step.
        self.activations()
        if self.scheme not in _initializers.schemes():
            raise ValueError(
                f"unknown initialisation scheme {self.scheme!r}; known schemes: {', '.join(_initializers.schemes())}"
            )

    def activations(self) -> tuple[_activations.Activation, ...]:
        """The resolved activation of every layer."""
        return layer_activations(len(self.sizes) - 1, self.activation, self.output_activation)

    def init(self, key: PRNGKey, dtype: Any = jnp.float32) -> tuple[Params, State]:
        """Parameters by :func:`init`, and the empty state ``()``."""
        return init(key, self.sizes, scheme=self.scheme, dtype=dtype), ()

    def apply(
        self, params: Params, state: State, x: ArrayLike, *, key: PRNGKey | None = None, train: bool = False
    ) -> tuple[Array, State]:
        """The network output and the (unchanged) state; ``key`` and ``train`` are unused here."""
        del key, train
        *hidden, output = self.activations()
        return apply(params, x, activation=hidden, output_activation=output), state

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
    ) -> tuple[tuple[Array, State], Params]:
        """``((loss, state), grads)`` by the hand-written chain rule of :mod:`fnn.backprop`."""
        from fnn import backprop  # backprop builds on this module

        del key, train
        *hidden, output = self.activations()
        value, grads = backprop.value_and_grad(
            params, x, target, loss=loss, activation=hidden, output_activation=output
        )
        return (value, state), grads
