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

This module holds the functions :func:`init` and :func:`apply` for a network given by its sizes,
and the checks every MLP shares. The :class:`~fnn.models.MLP` model
(:mod:`fnn.models.mlp`) carries a configuration, adds dropout and batch normalisation, and
follows the model protocol that training uses; :mod:`fnn.nn.backprop` holds the hand-written
chain rule of both.

References: D. Rumelhart, G. Hinton, R. Williams, *Learning representations by
back-propagating errors*, Nature 323, 1986; N. Srivastava et al., *Dropout*, JMLR 15, 2014;
S. Ioffe, C. Szegedy, *Batch Normalization*, ICML 2015.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike, Params, PRNGKey
from fnn.nn import activations as _activations
from fnn.nn import initializers as _initializers

__all__ = [
    "init",
    "apply",
    "affine",
    "layer_activations",
    "check_sizes",
    "check_params",
    "check_no_batch_norm",
    "check_input",
    "sizes_of",
    "ActivationSpec",
]

ActivationSpec = Union[str, _activations.Activation]


def check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """Layer widths ``(d_0, d_1, ..., d_L)`` as a tuple of positive ints, else a clear error.

    >>> check_sizes([2, 8, 1])
    (2, 8, 1)
    >>> check_sizes([2])
    Traceback (most recent call last):
    ...
    ValueError: sizes must list the input width and at least one layer width, got [2]
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a sequence of layer widths, got {type(sizes).__name__}")
    if len(sizes) < 2:
        raise ValueError(f"sizes must list the input width and at least one layer width, got {list(sizes)}")
    return tuple(_checks.positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes))


def init(
    key: PRNGKey, sizes: Sequence[int], *, scheme: str = "he", std: float = 0.01, dtype: Any = jnp.float32
) -> Params:
    r"""Initialise an MLP: weights by ``scheme`` (see :mod:`fnn.initializers`), biases zero
    (uniform on :math:`\pm 1/\sqrt{d_{l-1}}` like the weights for ``"pytorch"``).

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
    sizes = check_sizes(sizes)
    keys = jax.random.split(key, len(sizes) - 1)
    layers = (
        _initializers.layer(k, n_in, n_out, scheme, std=std, dtype=dtype)
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
    )
    return [{"W": w, "b": b} for w, b in layers]


def check_params(params: Params) -> None:
    """Check that ``params`` is a list of ``{"W": [in, out], "b": [out]}`` dicts that chain.

    A layer may also hold batch-normalisation parameters ``"gamma"`` and ``"beta"``, both
    ``[out]`` (see :class:`MLP` with ``batch_norm=True``).

    Raises:
      TypeError / ValueError naming the layer and what was wrong.
    """
    if not isinstance(params, (list, tuple)) or not params:
        raise TypeError(f"params must be a non-empty list of layer dicts, got {type(params).__name__}")
    previous = None
    for i, layer in enumerate(params):
        if not isinstance(layer, dict) or set(layer) not in ({"W", "b"}, {"W", "b", "gamma", "beta"}):
            raise TypeError(
                f"params[{i}] must be a dict with keys 'W' and 'b' (and 'gamma' and 'beta' with batch "
                f"normalisation), got {layer!r:.80}"
            )
        w, b = jnp.shape(layer["W"]), jnp.shape(layer["b"])
        if len(w) != 2 or b != w[1:]:
            raise ValueError(f"params[{i}] must hold W [in, out] and b [out], got W {w} and b {b}")
        for name in ("gamma", "beta"):
            if name in layer and jnp.shape(layer[name]) != w[1:]:
                raise ValueError(f"params[{i}]['{name}'] must have shape ({w[1]},), got {jnp.shape(layer[name])}")
        if previous is not None and w[0] != previous:
            raise ValueError(f"params[{i}]['W'] takes {w[0]} inputs but layer {i - 1} gives {previous} outputs")
        previous = w[1]


def check_no_batch_norm(params: Params) -> None:
    """Refuse parameters with batch-normalisation entries in a plain (functional) MLP.

    :func:`apply` and :func:`fnn.nn.backprop.forward` would ignore ``"gamma"`` and ``"beta"``;
    this says so instead of computing something else.

    >>> check_no_batch_norm([{"W": jnp.ones((2, 1)), "b": jnp.zeros(1)}])
    >>> check_no_batch_norm([{"W": jnp.ones((2, 1)), "b": jnp.zeros(1), "gamma": jnp.ones(1), "beta": jnp.zeros(1)}])
    Traceback (most recent call last):
    ...
    ValueError: params[0] holds batch-normalisation parameters ('gamma', 'beta'); run them with MLP(..., batch_norm=True).apply, which also carries the running statistics
    """
    for i, layer in enumerate(params):
        if "gamma" in layer:
            raise ValueError(
                f"params[{i}] holds batch-normalisation parameters ('gamma', 'beta'); run them with "
                "MLP(..., batch_norm=True).apply, which also carries the running statistics"
            )


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
        raise ValueError(
            f"x must have {n_in} features on its last axis (the first layer's input size), got shape {x.shape}"
        )
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
    check_no_batch_norm(params)
    for layer, f in zip(params, layer_activations(len(params), activation, output_activation), strict=True):
        x = f(affine(layer, x))
    return x
