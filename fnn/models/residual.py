r"""Residual MLPs: blocks that add a learned correction to an identity shortcut.

A residual MLP of ``depth`` blocks maps an input row :math:`x \in \mathbb R^{d_{in}}` by

.. math::

   h_0 &= x W_{in} + b_{in} \\
   h_{l} &= h_{l-1} + F_l(h_{l-1}), \qquad l = 1, \dots, \mathrm{depth} \\
   y &= g\big(f(h_{\mathrm{depth}}) W_{out} + b_{out}\big)

with the *pre-activation* block of He et al. (ECCV 2016), the activation :math:`f` placed
before each affine map so that nothing but the sum touches the shortcut:

.. math::

   F_l(h) = f\big(f(h) W_{l,1} + b_{l,1}\big) W_{l,2} + b_{l,2}
   \quad (\text{two layers, the default}), \qquad
   F_l(h) = f(h) W_{l,1} + b_{l,1} \quad (\text{one layer}).

Hence :math:`\partial h_L / \partial h_l = \prod_{m > l} (I + \partial F_m / \partial h_{m-1})`:
the error reaching the lower layers is the error at the top *plus* corrections, never only
a product of :math:`L` Jacobians, which is what lets deep residual networks train where
plain ones of the same depth stall. The input map :math:`W_{in}` carries no activation, and
the final :math:`f` before the output layer is the one a pre-activation stack needs.

**The plain counterpart.** Remove every shortcut and the pre-activations obey
:math:`z_{k+1} = f(z_k) W_{k+1} + b_{k+1}`: exactly the MLP of :mod:`fnn.mlp` with sizes
``(in_features, width, ..., width, out_features)``, ``block_layers * depth + 1`` hidden
layers and ``block_layers * depth + 2`` affine layers, the same count as here;
:func:`plain_counterpart` returns that :class:`~fnn.mlp.MLP`, so comparisons hold depth,
width and parameter count equal, and :func:`plain_params` lays residual parameters out as its
parameters. With ``depth = 0`` the residual MLP *is* that two-layer MLP.

**Initialisation.** Every weight is drawn by ``scheme`` (He for ReLU), biases are zero (for
``"pytorch"``, uniform like the weights),
and the last weight matrix of every block is multiplied by :math:`\alpha` =
``residual_scale``. With :math:`\alpha = 1` and He weights a ReLU block adds a branch of the
variance of its input, so the forward signal doubles in variance at every block
(:math:`2^{32}` after 32 blocks) and so do the gradients. The default
:math:`\alpha = 1/\sqrt{\mathrm{depth}}` bounds the growth by
:math:`(1 + 1/\mathrm{depth})^{\mathrm{depth}} \le e`. It matters: in the ``residual_depth``
experiment (width 64, digits) the first layer's gradient norm at initialisation grows
several hundredfold from 1 to 16 blocks with :math:`\alpha = 1`, and by less than 25% with
the default.
:math:`\alpha = 0` starts every block at the identity (the network is then the two-layer MLP,
and within the blocks only their last layers get a gradient at the first step), as in
Goyal et al. 2017 and Fixup.

**Parameters** are a plain pytree, weights laid out ``[in, out]`` as everywhere in fnn::

    {"input":  {"W": [in_features, width], "b": [width]},
     "blocks": [{"W1": [width, width], "b1": [width], "W2": ..., "b2": ...}, ...],  # depth dicts
     "output": {"W": [width, out_features], "b": [out_features]}}

with keys ``W1, b1`` only when ``block_layers=1``. Every weight matrix has a key starting with
``"W"``, every bias one starting with ``"b"``, so a weights-only penalty can find them.

:meth:`ResidualMLP.backprop` is the chain rule written out: the backward step through a block
is :math:`\delta_{l-1} = \delta_l + (\partial F_l/\partial h)^\top \delta_l`, each local step
taken from :meth:`fnn.activations.Activation.vjp` and the loss's hand-written
:meth:`fnn.losses.Loss.grad`, as in :mod:`fnn.backprop`.

References: K. He, X. Zhang, S. Ren, J. Sun, *Deep residual learning for image recognition*,
CVPR 2016; K. He, X. Zhang, S. Ren, J. Sun, *Identity mappings in deep residual networks*,
ECCV 2016 (the pre-activation block); P. Goyal et al., *Accurate, large minibatch SGD*, 2017,
and H. Zhang, Y. Dauphin, T. Ma, *Fixup initialization*, ICLR 2019 (scaled or zero last
layers of each block).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn._types import Array, ArrayLike, Params, PRNGKey, State
from fnn.models.mlp import MLP
from fnn.nn import activations as _activations
from fnn.nn import initializers as _initializers
from fnn.nn import losses as _losses
from fnn.nn.mlp import affine

__all__ = ["ResidualMLP", "plain_counterpart", "plain_params"]


def _rows(a: Array) -> Array:
    return a.reshape(-1, a.shape[-1])


def _layer_grads(inputs: Array, d_z: Array, w: str = "W", b: str = "b") -> dict[str, Array]:
    r""":math:`\partial L/\partial W = a^\top \delta`, :math:`\partial L/\partial b = \sum_n \delta_n` over all leading axes."""
    d_rows = _rows(d_z)
    return {w: _rows(inputs).T @ d_rows, b: jnp.sum(d_rows, axis=0)}


@dataclasses.dataclass(frozen=True)
class ResidualMLP:
    r"""A pre-activation residual MLP as a model (see the module docstring for the maths).

    Hashable and immutable, like :class:`fnn.mlp.MLP`, so it can be closed over or passed as a
    static argument of ``jax.jit`` without retracing.

    Attributes:
      in_features: the input width :math:`d_{in}`.
      width: the width of the residual stream and of every block's layers.
      depth: the number of residual blocks, 0 or more (0 is the two-layer MLP).
      out_features: the output width.
      activation: the hidden activation :math:`f`, a name or an
        :class:`~fnn.activations.Activation`.
      output_activation: the output activation :math:`g` (``"identity"`` for logits).
      scheme: the weight initialisation scheme of :mod:`fnn.initializers`.
      block_layers: affine layers per block, 1 or 2.
      residual_scale: the factor :math:`\alpha \ge 0` on the initial last weight matrix of
        every block; ``None`` for :math:`1/\sqrt{\mathrm{depth}}`.

    >>> model = ResidualMLP(in_features=2, width=8, depth=3, out_features=1)
    >>> params, state = model.init(jax.random.key(0))
    >>> y, state = model.apply(params, state, jnp.zeros((5, 2)))
    >>> y.shape, state, len(params["blocks"]), model.num_layers
    ((5, 1), (), 3, 8)
    """

    in_features: int
    width: int
    depth: int
    out_features: int
    activation: Any = "relu"
    output_activation: Any = "identity"
    scheme: str = "he"
    block_layers: int = 2
    residual_scale: float | None = None

    def __post_init__(self) -> None:
        for name in ("in_features", "width", "out_features"):
            object.__setattr__(self, name, _checks.positive_int(getattr(self, name), name))
        object.__setattr__(self, "depth", _checks.nonnegative_int(self.depth, "depth"))
        if isinstance(self.block_layers, bool) or self.block_layers not in (1, 2):
            raise ValueError(f"block_layers must be 1 or 2 (affine layers per block), got {self.block_layers!r}")
        object.__setattr__(self, "block_layers", int(self.block_layers))
        for name in ("activation", "output_activation"):
            if not isinstance(getattr(self, name), (str, _activations.Activation)):
                raise TypeError(f"{name} must be one activation name or Activation, got {getattr(self, name)!r}")
        self.activations()  # an unknown name fails here, not at the first step
        if self.scheme not in _initializers.schemes():
            raise ValueError(
                f"unknown initialisation scheme {self.scheme!r}; known schemes: {', '.join(_initializers.schemes())}"
            )
        if self.residual_scale is not None:
            if isinstance(self.residual_scale, (bool, np.bool_)):
                raise TypeError(f"residual_scale must be a real number or None, got {self.residual_scale!r}")
            try:
                scale = float(self.residual_scale)
            except (TypeError, ValueError):
                raise TypeError(f"residual_scale must be a real number or None, got {self.residual_scale!r}") from None
            if not (math.isfinite(scale) and scale >= 0):
                raise ValueError(f"residual_scale must be finite and non-negative, got {scale}")
            object.__setattr__(self, "residual_scale", scale)

    # ------------------------------------------------------------------------------------
    # Configuration.
    # ------------------------------------------------------------------------------------

    def activations(self) -> tuple[_activations.Activation, _activations.Activation]:
        """The resolved hidden and output activations :math:`(f, g)`."""
        return _activations.get(self.activation), _activations.get(self.output_activation)

    @property
    def num_layers(self) -> int:
        """The number of affine layers, ``block_layers * depth + 2``."""
        return self.block_layers * self.depth + 2

    @property
    def branch_scale(self) -> float:
        r"""The factor :math:`\alpha` actually used: ``residual_scale``, or :math:`1/\sqrt{\mathrm{depth}}`."""
        if self.residual_scale is not None:
            return self.residual_scale
        return 1.0 / math.sqrt(max(self.depth, 1))

    def _block_keys(self) -> tuple[str, ...]:
        return tuple(f"{p}{j}" for j in range(1, self.block_layers + 1) for p in ("W", "b"))

    # ------------------------------------------------------------------------------------
    # The model protocol.
    # ------------------------------------------------------------------------------------

    def init(self, key: PRNGKey, dtype: Any = jnp.float32) -> tuple[Params, State]:
        """Parameters (layout in the module docstring) and the empty state ``()``.

        Args:
          key: a PRNG key; every affine layer gets its own subkey.
          dtype: a floating dtype for all parameters.

        >>> params, _ = ResidualMLP(3, 4, 2, 1, block_layers=1).init(jax.random.key(0))
        >>> params["input"]["W"].shape, sorted(params["blocks"][0]), params["output"]["W"].shape
        ((3, 4), ['W1', 'b1'], (4, 1))
        """
        k_in, k_blocks, k_out = jax.random.split(key, 3)
        w = self.width

        def draw(k, n_in, n_out, scale=1.0):
            weight, bias = _initializers.layer(k, n_in, n_out, self.scheme, dtype=dtype)
            return (weight * jnp.asarray(scale, dtype) if scale != 1.0 else weight), bias

        block_keys = jax.random.split(k_blocks, self.depth * self.block_layers).reshape(self.depth, self.block_layers)
        blocks = []
        for keys in block_keys:
            block = {}
            for j, k in enumerate(keys, start=1):
                block[f"W{j}"], block[f"b{j}"] = draw(k, w, w, self.branch_scale if j == self.block_layers else 1.0)
            blocks.append(block)
        w_in, b_in = draw(k_in, self.in_features, w)
        w_out, b_out = draw(k_out, w, self.out_features)
        params = {"input": {"W": w_in, "b": b_in}, "blocks": blocks, "output": {"W": w_out, "b": b_out}}
        return params, ()

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
        """The network output ``[..., out_features]`` for ``x: [..., in_features]``, and the state.

        ``key``, ``train`` and ``weights`` are unused: no layer here draws randomness, keeps
        statistics or mixes the examples of a batch, so example weights act through the loss
        alone. ``params`` are checked against this model on every call (:meth:`check_params`;
        shapes only, so at trace time).

        >>> model = ResidualMLP(2, 4, 1, 3)
        >>> params, state = model.init(jax.random.key(0))
        >>> model.apply(params, state, jnp.ones(2))[0].shape
        (3,)
        """
        del key, train, weights
        return self._forward(params, x)[0], state

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
        r"""``((loss, state), grads)`` by the hand-written chain rule; ``grads`` is shaped like ``params``.

        Backward through block :math:`l` with layers :math:`z_j = f(z_{j-1}) W_j + b_j`,
        :math:`z_0 = h_{l-1}`, :math:`h_l = h_{l-1} + z_k`: starting from
        :math:`\delta = \partial L/\partial h_l` at :math:`z_k`,

        .. math:: \frac{\partial L}{\partial W_j} = f(z_{j-1})^\top \frac{\partial L}{\partial z_j}, \quad
                  \frac{\partial L}{\partial z_{j-1}} = f'(z_{j-1}) \odot
                  \Big(\frac{\partial L}{\partial z_j} W_j^\top\Big), \quad
                  \frac{\partial L}{\partial h_{l-1}} = \delta + \frac{\partial L}{\partial z_0}.

        Args:
          params: from :meth:`init`.
          state: the model state, ``()``; returned unchanged.
          x: inputs ``[N, in_features]``.
          target: what ``loss`` compares the output with.
          loss: a loss name or :class:`~fnn.losses.Loss`.
          key: unused.
          train: unused.
          weights: unused (see :meth:`apply`); weigh the examples through ``loss``
            (:func:`fnn.nn.losses.weighted`).

        >>> model = ResidualMLP(2, 4, 2, 1)
        >>> params, state = model.init(jax.random.key(0))
        >>> (value, _), grads = model.backprop(params, state, jnp.ones((3, 2)), jnp.zeros((3, 1)), "mse")
        >>> grads["blocks"][1]["W2"].shape, jax.tree.structure(grads) == jax.tree.structure(params)
        ((4, 4), True)
        """
        del key, train, weights
        loss = _losses.get(loss)
        f, g = self.activations()
        y, (x, block_caches, h, u, z) = self._forward(params, x)
        # Output layer: y = g(z), z = u W_out + b_out, u = f(h).
        d_z = g.vjp(z, y, loss.grad(y, target))
        grads_out = _layer_grads(u, d_z)
        d_h = f.vjp(h, u, d_z @ params["output"]["W"].T)
        grads_blocks = []
        for block, caches in zip(reversed(params["blocks"]), reversed(block_caches), strict=True):
            block_grads: dict[str, Array] = {}
            d_z = d_h  # the last layer's output is added to the stream unchanged
            for j in range(self.block_layers, 0, -1):
                pre, post = caches[j - 1]  # this layer's input before and after f
                block_grads.update(_layer_grads(post, d_z, f"W{j}", f"b{j}"))
                d_z = f.vjp(pre, post, d_z @ block[f"W{j}"].T)
            d_h = d_h + d_z  # the shortcut: identity plus the branch's contribution
            grads_blocks.append({k: block_grads[k] for k in self._block_keys()})
        grads = {"input": _layer_grads(x, d_h), "blocks": grads_blocks[::-1], "output": grads_out}
        return (loss(y, target), state), grads

    # ------------------------------------------------------------------------------------
    # Validation and the forward pass with caches.
    # ------------------------------------------------------------------------------------

    def check_params(self, params: Params) -> None:
        """Check that ``params`` has this model's layout and shapes, else a clear error.

        Raises:
          TypeError / ValueError naming the entry (e.g. ``params['blocks'][2]['W1']``).

        >>> model = ResidualMLP(2, 4, 1, 1)
        >>> params, _ = model.init(jax.random.key(0))
        >>> model.check_params({**params, "blocks": []})
        Traceback (most recent call last):
        ...
        ValueError: params['blocks'] must be a list of 1 block dicts (depth), got 0
        """
        if not isinstance(params, dict) or set(params) != {"input", "blocks", "output"}:
            raise TypeError(f"params must be a dict with keys 'input', 'blocks', 'output', got {params!r:.80}")
        blocks = params["blocks"]
        if not isinstance(blocks, (list, tuple)):
            raise TypeError(f"params['blocks'] must be a list of block dicts, got {type(blocks).__name__}")
        if len(blocks) != self.depth:
            raise ValueError(f"params['blocks'] must be a list of {self.depth} block dicts (depth), got {len(blocks)}")
        w = self.width
        expected = [("params['input']", params["input"], {"W": (self.in_features, w), "b": (w,)})]
        block_shapes = {k: (w, w) if k.startswith("W") else (w,) for k in self._block_keys()}
        expected += [(f"params['blocks'][{i}]", block, block_shapes) for i, block in enumerate(blocks)]
        expected.append(
            ("params['output']", params["output"], {"W": (w, self.out_features), "b": (self.out_features,)})
        )
        for where, entry, shapes in expected:
            if not isinstance(entry, dict) or set(entry) != set(shapes):
                raise TypeError(f"{where} must be a dict with keys {sorted(shapes)}, got {entry!r:.80}")
            for k, shape in shapes.items():
                if jnp.shape(entry[k]) != shape:
                    raise ValueError(f"{where}['{k}'] must have shape {shape}, got {jnp.shape(entry[k])}")

    def check_input(self, x: ArrayLike) -> Array:
        """``x`` as a float array with ``in_features`` on its last axis, else a clear error."""
        x = _checks.float_array(x, "x")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"x must have {self.in_features} features on its last axis (in_features), got shape {x.shape}"
            )
        return x

    def _forward(self, params: Params, x: ArrayLike):
        """The output and what the backward pass needs: ``(x, per-block caches, h_L, f(h_L), z_out)``.

        A block's cache lists, per layer, its input before and after the activation.
        """
        self.check_params(params)
        x = self.check_input(x)
        f, g = self.activations()
        h, block_caches = affine(params["input"], x), []
        for block in params["blocks"]:
            caches, z = [], h
            for j in range(1, self.block_layers + 1):
                post = f(z)
                caches.append((z, post))
                z = affine({"W": block[f"W{j}"], "b": block[f"b{j}"]}, post)
            block_caches.append(caches)
            h = h + z
        u = f(h)
        z = affine(params["output"], u)
        return g(z), (x, block_caches, h, u, z)


def plain_counterpart(residual: ResidualMLP) -> MLP:
    """The plain :class:`~fnn.mlp.MLP` with the same affine layers, widths and activations.

    Its sizes are ``(in_features, width, ..., width, out_features)`` with
    ``block_layers * depth + 1`` hidden layers, so both have ``block_layers * depth + 2``
    affine layers and the same number of parameters; it is the residual network with its
    shortcuts removed (see the module docstring).

    Args:
      residual: a :class:`ResidualMLP`.

    Returns:
      An :class:`~fnn.mlp.MLP` with the residual network's activations and scheme.

    >>> plain = plain_counterpart(ResidualMLP(64, 32, 4, 10))
    >>> len(plain.sizes) - 1, plain.sizes[:3], plain.sizes[-1]
    (10, (64, 32, 32), 10)
    """
    if not isinstance(residual, ResidualMLP):
        raise TypeError(f"residual must be a ResidualMLP, got {type(residual).__name__}")
    hidden = (residual.width,) * (residual.block_layers * residual.depth + 1)
    return MLP(
        (residual.in_features, *hidden, residual.out_features),
        activation=residual.activation,
        output_activation=residual.output_activation,
        scheme=residual.scheme,
    )


def plain_params(params: Params) -> Params:
    """The affine layers of residual parameters in order: parameters of the plain counterpart.

    ``plain_counterpart(model).apply(plain_params(params), (), x)`` is the residual network with
    its shortcuts removed. Applied to the parameters of a ``ResidualMLP`` with
    ``residual_scale=1``, it draws the plain counterpart's initialisation (every weight by the
    same scheme and biases), paired layer by layer with the residual network's.

    Args:
      params: residual MLP parameters ``{"input", "blocks", "output"}``.

    Returns:
      A list of ``{"W": [in, out], "b": [out]}`` dicts: the input layer, each block's layers,
      the output layer; the arrays themselves, not copies.

    >>> params, _ = ResidualMLP(3, 4, 2, 1).init(jax.random.key(0))
    >>> [layer["W"].shape for layer in plain_params(params)]
    [(3, 4), (4, 4), (4, 4), (4, 4), (4, 4), (4, 1)]
    """
    if not isinstance(params, dict) or set(params) != {"input", "blocks", "output"}:
        raise TypeError(f"params must be a dict with keys 'input', 'blocks', 'output', got {params!r:.80}")
    layers = [params["input"]]
    for i, block in enumerate(params["blocks"]):
        if not isinstance(block, dict) or len(block) % 2 or not block:
            raise TypeError(f"params['blocks'][{i}] must be a dict of W1, b1, ... entries, got {block!r:.80}")
        for j in range(1, len(block) // 2 + 1):
            if f"W{j}" not in block or f"b{j}" not in block:
                raise TypeError(f"params['blocks'][{i}] lacks 'W{j}' or 'b{j}', got keys {sorted(block)}")
            layers.append({"W": block[f"W{j}"], "b": block[f"b{j}"]})
    layers.append(params["output"])
    return layers
