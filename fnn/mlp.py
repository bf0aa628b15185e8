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

The model also takes **dropout** (:mod:`fnn.dropout`) and **batch normalisation**
(:mod:`fnn.batch_norm`). A hidden layer :math:`l < L` then computes

.. math:: z_l = \tilde a_{l-1} W_l + b_l, \qquad a_l = f_l(\mathrm{BN}_l(z_l)), \qquad
          \tilde a_l = a_l \odot m_l,

with batch normalisation between the affine map and the activation, as Ioffe & Szegedy place
it, and the dropout mask :math:`m_l` after the activation (:math:`\tilde a_0 = x \odot m_0`
with ``input_dropout``); the output layer has neither. With batch normalisation each hidden
layer's dict also holds ``"gamma"`` and ``"beta"`` ``[d_l]``, and the model state is one
:class:`~fnn.batch_norm.BatchNormState` per hidden layer. The bias :math:`b_l` of a
normalised layer is kept, for one parameter layout; in training the batch mean cancels it, so
its gradient is zero there.

References: D. Rumelhart, G. Hinton, R. Williams, *Learning representations by
back-propagating errors*, Nature 323, 1986; N. Srivastava et al., *Dropout*, JMLR 15, 2014;
S. Ioffe, C. Szegedy, *Batch Normalization*, ICML 2015.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Union

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn import activations as _activations
from fnn import batch_norm as _batch_norm
from fnn import dropout as _dropout
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
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


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


def _refuse_batch_norm(params: Params) -> None:
    """The plain functions would ignore gamma and beta: say so instead of computing something else."""
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
    _refuse_batch_norm(params)
    for layer, f in zip(params, layer_activations(len(params), activation, output_activation), strict=True):
        x = f(affine(layer, x))
    return x


def _static_rate(value: Any, name: str) -> float:
    """A model field in [0, 1): a Python float, since the model is hashable and static under jit."""
    if not _checks.is_concrete(value):
        raise TypeError(
            f"{name} of an MLP must be a concrete number (the model is a static configuration); "
            "for a traced rate call fnn.dropout.dropout directly"
        )
    return float(_checks.in_range(value, name, 0.0, 1.0, low_closed=True, hint=" (the probability of dropping a unit)"))


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
      dropout: the probability of dropping each hidden unit after its activation in training
        (:func:`fnn.dropout.dropout`); 0 for none. Needs at least one hidden layer.
      input_dropout: the same for the input units; 0 for none.
      batch_norm: batch normalisation between each hidden layer's affine map and its
        activation (:mod:`fnn.batch_norm`). Needs at least one hidden layer.
      bn_momentum: the weight of the old running statistics, in [0, 1) (PyTorch's 0.1 is 0.9).
      bn_eps: the :math:`\\epsilon > 0` added to the variance.

    >>> model = MLP((2, 8, 1), activation="tanh")
    >>> params, state = model.init(jax.random.key(0))
    >>> y, state = model.apply(params, state, jnp.zeros((3, 2)))
    >>> y.shape, state
    ((3, 1), ())
    >>> model = MLP((2, 8, 1), dropout=0.5, batch_norm=True)
    >>> params, state = model.init(jax.random.key(0))
    >>> sorted(params[0]), [s.mean.shape for s in state]
    (['W', 'b', 'beta', 'gamma'], [(8,)])
    >>> y, new_state = model.apply(params, state, jnp.ones((3, 2)), key=jax.random.key(1), train=True)
    >>> y.shape, bool((new_state[0].var != state[0].var).any())
    ((3, 1), True)
    """

    sizes: tuple[int, ...]
    activation: Any = "relu"
    output_activation: Any = "identity"
    scheme: str = "he"
    dropout: float = 0.0
    input_dropout: float = 0.0
    batch_norm: bool = False
    bn_momentum: float = 0.9
    bn_eps: float = 1e-5

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
        for name in ("dropout", "input_dropout"):
            object.__setattr__(self, name, _static_rate(getattr(self, name), name))
        if not isinstance(self.batch_norm, bool):
            raise TypeError(f"batch_norm must be a bool, got {self.batch_norm!r:.60}")
        if not _checks.is_concrete(self.bn_momentum):
            raise TypeError("bn_momentum of an MLP must be a concrete number (the model is a static configuration)")
        momentum = _checks.in_range(self.bn_momentum, "bn_momentum", 0.0, 1.0, low_closed=True,
                                    hint=" (the weight of the old running value; PyTorch's 0.1 is 0.9 here)")
        object.__setattr__(self, "bn_momentum", float(momentum))
        object.__setattr__(self, "bn_eps", _checks.positive_float(self.bn_eps, "bn_eps"))
        if len(self.sizes) == 2:
            for name in ("dropout", "batch_norm"):
                if getattr(self, name):
                    raise ValueError(
                        f"{name} acts on hidden layers, but sizes {self.sizes} has none; "
                        "add a hidden layer" + (" or use input_dropout" if name == "dropout" else "")
                    )

    def activations(self) -> tuple[_activations.Activation, ...]:
        """The resolved activation of every layer."""
        return layer_activations(len(self.sizes) - 1, self.activation, self.output_activation)

    def _plain(self) -> bool:
        """No dropout and no batch normalisation: the functions :func:`init` and :func:`apply`."""
        return not (self.dropout or self.input_dropout or self.batch_norm)

    def init(self, key: PRNGKey, dtype: Any = jnp.float32) -> tuple[Params, State]:
        """Parameters by :func:`init` and the state: ``()``, or with batch normalisation
        ``gamma = 1``, ``beta = 0`` in every hidden layer's dict and one
        :class:`~fnn.batch_norm.BatchNormState` (mean 0, variance 1) per hidden layer."""
        params = init(key, self.sizes, scheme=self.scheme, dtype=dtype)
        if not self.batch_norm:
            return params, ()
        states = []
        for layer, width in zip(params[:-1], self.sizes[1:-1], strict=True):
            bn_params, bn_state = _batch_norm.init(width, dtype)
            layer.update(bn_params)
            states.append(bn_state)
        return params, tuple(states)

    def check_params(self, params: Params) -> None:
        """Check ``params`` against this model: :func:`check_params`, the model's sizes, and
        ``"gamma"``/``"beta"`` in exactly the hidden layers when it batch-normalises."""
        check_params(params)
        if sizes_of(params) != self.sizes:
            raise ValueError(f"params have layer sizes {sizes_of(params)} but the model has {self.sizes}")
        for i, layer in enumerate(params):
            wanted = self.batch_norm and i < len(params) - 1
            if ("gamma" in layer) != wanted:
                where = "every hidden layer" if self.batch_norm else "no layer"
                raise ValueError(
                    f"params[{i}] {'lacks' if wanted else 'holds'} 'gamma' and 'beta'; with "
                    f"batch_norm={self.batch_norm} {where} has them (initialise with this model's init)"
                )

    def apply(
        self, params: Params, state: State, x: ArrayLike, *, key: PRNGKey | None = None, train: bool = False
    ) -> tuple[Array, State]:
        """The network output and the state after this call.

        Args:
          params: from :meth:`init`.
          state: from :meth:`init` or a previous training call.
          x: ``[d_0]`` or ``[..., d_0]``; batch statistics are over all axes but the last.
          key: a PRNG key, required in training with dropout; the dropout after hidden layer
            ``l`` (``l = 0`` for the input) draws from ``jax.random.fold_in(key, l)``.
          train: training mode (dropout on, batch statistics, running statistics updated) or
            evaluation (deterministic; the state comes back unchanged).

        Returns:
          ``(y [..., d_L], new_state)``.

        Without dropout and batch normalisation this is :func:`apply`, and ``key`` and
        ``train`` are unused.
        """
        if self._plain():
            del key, train
            *hidden, output = self.activations()
            return apply(params, x, activation=hidden, output_activation=output), state
        y, new_state, _ = _forward(self, params, state, x, key, train)
        return y, new_state

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
        """``((loss, state), grads)`` by the hand-written chain rule of :mod:`fnn.backprop`.

        With dropout or batch normalisation it runs :func:`fnn.backprop.forward_model` with the
        same ``key`` and ``train`` as :meth:`apply` and equals ``jax.value_and_grad`` through it.
        """
        from fnn import backprop  # backprop builds on this module

        *hidden, output = self.activations()
        if self._plain():
            del key, train
            value, grads = backprop.value_and_grad(
                params, x, target, loss=loss, activation=hidden, output_activation=output
            )
            return (value, state), grads
        return backprop.model_value_and_grad(self, params, state, x, target, loss=loss, key=key, train=train)


# Each record holds what fnn.backprop.LayerCache holds, in its order:
# (inputs after dropout, activation argument, activation output, dropout mask, batch-norm cache).
_LayerRecord = tuple[Array, Array, Array, Union[Array, None], Union[_batch_norm.BatchNormCache, None]]


def _forward(
    model: MLP, params: Params, state: State, x: ArrayLike, key: PRNGKey | None, train: bool
) -> tuple[Array, State, tuple[_LayerRecord, ...]]:
    """The forward pass of :meth:`MLP.apply` with dropout and batch normalisation, keeping
    per layer what the backward pass needs. Written once, for :meth:`MLP.apply` and
    :func:`fnn.backprop.forward_model` alike."""
    train = _dropout.check_train(train)
    x = check_input(params, x)
    model.check_params(params)
    hidden = len(params) - 1
    if model.batch_norm:
        if not isinstance(state, (tuple, list)) or len(state) != hidden:
            raise ValueError(
                f"state must hold one BatchNormState per hidden layer ({hidden}), as the model's init gives, got {state!r:.80}"
            )
    rates = (model.input_dropout,) + (model.dropout,) * hidden
    if train and any(rates):
        key = _dropout.check_key(key)
    records, new_states = [], []
    a = x
    for i, (layer, f, rate) in enumerate(zip(params, model.activations(), rates, strict=True)):
        mask = None
        if train and rate:
            # One subkey per dropout layer, named by the hidden layer it follows (0: the input).
            mask = _dropout.dropout_mask(jax.random.fold_in(key, i), a.shape, rate, a.dtype)
            a = a * mask
        u = affine(layer, a)
        bn_cache = None
        if model.batch_norm and i < hidden:
            bn_params = {"gamma": layer["gamma"], "beta": layer["beta"]}
            u, bn_state, bn_cache = _batch_norm.forward(
                bn_params, state[i], u, train=train, momentum=model.bn_momentum, eps=model.bn_eps
            )
            new_states.append(bn_state)
        out = f(u)
        records.append((a, u, out, mask, bn_cache))
        a = out
    new_state = tuple(new_states) if model.batch_norm and train else state
    return a, new_state, tuple(records)
