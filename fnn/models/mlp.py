r"""The MLP model: a configuration, and ``init``, ``apply``, ``forward`` and ``backprop`` in the model protocol.

:class:`MLP` follows the protocol of :mod:`fnn.models.model`: ``init(key) -> (params, state)``
and ``apply(params, state, x, *, key=None, train=False) -> (y, state)``, the form training uses,
so layers with randomness or running state slot in without changing it. It owns its
hand-written gradient: :meth:`MLP.forward` keeps one :class:`~fnn.nn.backprop.LayerCache` per
layer and :meth:`MLP.backprop` runs :func:`fnn.nn.backprop.backward` on them (the
:class:`~fnn.models.model.HandGradient` protocol). Without dropout and batch normalisation it is
the functional MLP of :mod:`fnn.nn.mlp`.

The model also takes **dropout** (:mod:`fnn.nn.dropout`) and **batch normalisation**
(:mod:`fnn.nn.batch_norm`). A hidden layer :math:`l < L` then computes

.. math:: z_l = \tilde a_{l-1} W_l + b_l, \qquad a_l = f_l(\mathrm{BN}_l(z_l)), \qquad
          \tilde a_l = a_l \odot m_l,

with batch normalisation between the affine map and the activation, as Ioffe & Szegedy place
it, and the dropout mask :math:`m_l` after the activation (:math:`\tilde a_0 = x \odot m_0`
with ``input_dropout``); the output layer has neither. With batch normalisation each hidden
layer's dict also holds ``"gamma"`` and ``"beta"`` ``[d_l]``, and the model state is one
:class:`~fnn.nn.batch_norm.BatchNormState` per hidden layer. The bias :math:`b_l` of a
normalised layer is kept, for one parameter layout; in training the batch mean cancels it, so
its gradient is zero there.

References: D. Rumelhart, G. Hinton, R. Williams, *Learning representations by
back-propagating errors*, Nature 323, 1986; N. Srivastava et al., *Dropout*, JMLR 15, 2014;
S. Ioffe, C. Szegedy, *Batch Normalization*, ICML 2015.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike, Params, PRNGKey, State
from fnn.nn import activations as _activations
from fnn.nn import backprop as _backprop
from fnn.nn import batch_norm as _batch_norm
from fnn.nn import dropout as _dropout
from fnn.nn import initializers as _initializers
from fnn.nn import losses as _losses
from fnn.nn import mlp as _mlp

__all__ = ["MLP"]


def _static_rate(value: Any, name: str) -> float:
    """A model field in [0, 1): a Python float, since the model is hashable and static under jit."""
    if not _checks.is_concrete(value):
        raise TypeError(
            f"{name} of an MLP must be a concrete number (the model is a static configuration); "
            "for a traced rate call fnn.nn.dropout.dropout directly"
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
        (:func:`fnn.nn.dropout.dropout`); 0 for none. Needs at least one hidden layer.
      input_dropout: the same for the input units; 0 for none.
      batch_norm: batch normalisation between each hidden layer's affine map and its
        activation (:mod:`fnn.nn.batch_norm`). Needs at least one hidden layer.
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
        object.__setattr__(self, "sizes", _mlp.check_sizes(self.sizes))
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
        momentum = _checks.in_range(
            self.bn_momentum,
            "bn_momentum",
            0.0,
            1.0,
            low_closed=True,
            hint=" (the weight of the old running value; PyTorch's 0.1 is 0.9 here)",
        )
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
        return _mlp.layer_activations(len(self.sizes) - 1, self.activation, self.output_activation)

    def _plain(self) -> bool:
        """No dropout and no batch normalisation: the functions of :mod:`fnn.nn.mlp`."""
        return not (self.dropout or self.input_dropout or self.batch_norm)

    def init(self, key: PRNGKey, dtype: Any = jnp.float32) -> tuple[Params, State]:
        """Parameters by :func:`fnn.nn.mlp.init` and the state: ``()``, or with batch normalisation
        ``gamma = 1``, ``beta = 0`` in every hidden layer's dict and one
        :class:`~fnn.nn.batch_norm.BatchNormState` (mean 0, variance 1) per hidden layer."""
        params = _mlp.init(key, self.sizes, scheme=self.scheme, dtype=dtype)
        if not self.batch_norm:
            return params, ()
        states = []
        for layer, width in zip(params[:-1], self.sizes[1:-1], strict=True):
            bn_params, bn_state = _batch_norm.init(width, dtype)
            layer.update(bn_params)
            states.append(bn_state)
        return params, tuple(states)

    def check_params(self, params: Params) -> None:
        """Check ``params`` against this model, layer by layer, else an error naming the layer.

        First :func:`fnn.nn.mlp.check_params` (a list of ``{"W", "b"}`` dicts that chain), then
        the number of layers, ``"gamma"`` and ``"beta"`` in exactly the hidden layers when the
        model batch-normalises, and each layer's ``"W" [d_{l-1}, d_l]``, ``"b"``, ``"gamma"``
        and ``"beta"`` ``[d_l]`` from :attr:`sizes`. Shapes only, so it costs nothing in the
        compiled program; under ``jax.vmap`` over stacked members it sees one member's shapes.
        Every path of :meth:`apply`, :meth:`forward` and :meth:`backprop` runs it.

        Raises:
          TypeError / ValueError naming the layer, the shape expected and the shape given.

        >>> MLP((3, 4, 2)).check_params(MLP((3, 5, 2)).init(jax.random.key(0))[0])
        Traceback (most recent call last):
        ...
        ValueError: params[0]['W'] must have shape (3, 4) for layer 0 of an MLP with layer sizes (3, 4, 2), got (3, 5)
        """
        _mlp.check_params(params)
        layers = len(self.sizes) - 1
        if len(params) != layers:
            raise ValueError(
                f"params must hold {layers} layers (one per weight matrix) for an MLP with layer sizes {self.sizes}, "
                f"got {len(params)} with layer sizes {_mlp.sizes_of(params)}"
            )
        for i, (layer, n_in, n_out) in enumerate(zip(params, self.sizes[:-1], self.sizes[1:], strict=True)):
            wanted = self.batch_norm and i < layers - 1
            if ("gamma" in layer) != wanted:
                where = "every hidden layer" if self.batch_norm else "no layer"
                raise ValueError(
                    f"params[{i}] {'lacks' if wanted else 'holds'} 'gamma' and 'beta'; with "
                    f"batch_norm={self.batch_norm} {where} has them (initialise with this model's init)"
                )
            shapes = {"W": (n_in, n_out), "b": (n_out,), "gamma": (n_out,), "beta": (n_out,)}
            for name in ("W", "b", "gamma", "beta")[: 4 if wanted else 2]:
                if jnp.shape(layer[name]) != shapes[name]:
                    raise ValueError(
                        f"params[{i}]['{name}'] must have shape {shapes[name]} for layer {i} of an MLP with "
                        f"layer sizes {self.sizes}, got {jnp.shape(layer[name])}"
                    )

    def apply(
        self,
        params: Params,
        state: State,
        x: ArrayLike,
        *,
        key: PRNGKey | None = None,
        train: bool = False,
        weights: ArrayLike | None = None,
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
          weights: ``None``, or the examples' weights ``[...]`` (``x.shape[:-1]``), non-negative:
            in training, batch normalisation takes weighted batch statistics
            (:func:`fnn.nn.batch_norm.apply`), so an example of weight 0 is left out of them.
            Nothing else depends on them.

        Returns:
          ``(y [..., d_L], new_state)``.

        Without dropout and batch normalisation this is :func:`fnn.nn.mlp.apply`, and ``key``,
        ``train`` and ``weights`` are unused.

        Raises:
          ValueError: ``params`` that do not fit :attr:`sizes` (see :meth:`check_params`).
        """
        if self._plain():
            self.check_params(params)
            if weights is not None:
                _batch_norm.check_weights(weights, _checks.float_array(x, "x"))
            del key, train, weights
            *hidden, output = self.activations()
            return _mlp.apply(params, x, activation=hidden, output_activation=output), state
        y, new_state, _ = self.forward(params, state, x, key=key, train=train, weights=weights)
        return y, new_state

    def forward(
        self,
        params: Params,
        state: State,
        x: ArrayLike,
        *,
        key: PRNGKey | None = None,
        train: bool = False,
        weights: ArrayLike | None = None,
    ) -> tuple[Array, State, tuple[_backprop.LayerCache, ...]]:
        """The forward pass of :meth:`apply`, keeping one :class:`~fnn.nn.backprop.LayerCache` per layer.

        The same computation as :meth:`apply` (the same masks from the same ``key``, the same
        batch statistics, the same ``weights``), with each layer's input, pre-activation, output,
        dropout mask and batch-norm cache kept for :func:`fnn.nn.backprop.backward`.

        Returns:
          ``(y, new_state, caches)``: what :meth:`apply` returns, and L caches.

        >>> model = MLP((2, 3, 1), dropout=0.5, batch_norm=True)
        >>> params, state = model.init(jax.random.key(0))
        >>> y, new_state, caches = model.forward(params, state, jnp.ones((4, 2)), key=jax.random.key(1), train=True)
        >>> caches[0].batch_norm.xhat.shape, caches[1].input_mask.shape
        ((4, 3), (4, 3))
        """
        self.check_params(params)
        if self._plain():
            if weights is not None:
                _batch_norm.check_weights(weights, _checks.float_array(x, "x"))
            del key, train, weights
            *hidden, output = self.activations()
            y, caches = _backprop.forward(params, x, activation=hidden, output_activation=output)
            return y, state, caches
        train = _dropout.check_train(train)
        x = _mlp.check_input(params, x)
        weights = _batch_norm.check_weights(weights, x)
        hidden = len(params) - 1
        if self.batch_norm and (not isinstance(state, (tuple, list)) or len(state) != hidden):
            raise ValueError(
                f"state must hold one BatchNormState per hidden layer ({hidden}), as the model's init gives, "
                f"got {state!r:.80}"
            )
        rates = (self.input_dropout,) + (self.dropout,) * hidden
        if train and any(rates):
            key = _dropout.check_key(key)
        caches, new_states = [], []
        a = x
        for i, (layer, f, rate) in enumerate(zip(params, self.activations(), rates, strict=True)):
            mask = None
            if train and rate:
                # One subkey per dropout layer, named by the hidden layer it follows (0: the input).
                mask = _dropout.dropout_mask(jax.random.fold_in(key, i), a.shape, rate, a.dtype)
                a = a * mask
            u = _mlp.affine(layer, a)
            bn_cache = None
            if self.batch_norm and i < hidden:
                bn_params = {"gamma": layer["gamma"], "beta": layer["beta"]}
                u, bn_state, bn_cache = _batch_norm.forward(
                    bn_params, state[i], u, train=train, momentum=self.bn_momentum, eps=self.bn_eps, weights=weights
                )
                new_states.append(bn_state)
            out = f(u)
            caches.append(_backprop.LayerCache(a, u, out, mask, bn_cache))
            a = out
        new_state = tuple(new_states) if self.batch_norm and train else state
        return a, new_state, tuple(caches)

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
    ) -> tuple[tuple[Array, State], Params]:
        """``((loss, new_state), grads)`` by the hand-written chain rule of :mod:`fnn.nn.backprop`.

        Equals ``jax.value_and_grad`` of ``loss(model.apply(params, state, x, key=key,
        train=train, weights=weights)[0], target)`` with the new state as auxiliary output: the
        same dropout masks (same ``key``), the (weighted) batch-statistics backward pass in
        training and the running-statistics one in evaluation. ``weights`` weigh the batch
        statistics only; weigh the loss with :func:`fnn.nn.losses.weighted` (as
        :func:`fnn.models.model.value_and_grad_fn` does).

        >>> model = MLP((2, 3, 1), dropout=0.5, batch_norm=True)
        >>> params, state = model.init(jax.random.key(0))
        >>> (value, new_state), grads = model.backprop(
        ...     params, state, jnp.ones((4, 2)), jnp.zeros((4, 1)), "mse", key=jax.random.key(1))
        >>> value.shape, sorted(grads[0]), jax.tree.structure(grads) == jax.tree.structure(params)
        ((), ['W', 'b', 'beta', 'gamma'], True)
        """
        loss = _losses.get(loss)
        *hidden, last = self.activations()
        if self._plain():
            self.check_params(params)
            if weights is not None:
                _batch_norm.check_weights(weights, _checks.float_array(x, "x"))
            del key, train, weights
            value, grads = _backprop.value_and_grad(
                params, x, target, loss=loss, activation=hidden, output_activation=last
            )
            return (value, state), grads
        output, new_state, caches = self.forward(params, state, x, key=key, train=train, weights=weights)
        grads, _ = _backprop.backward(
            params, caches, loss.grad(output, target), activation=hidden, output_activation=last
        )
        return (loss(output, target), new_state), grads
