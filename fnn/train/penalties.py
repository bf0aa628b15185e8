r"""Parameter norm penalties and decoupled weight decay.

A penalty adds a function of the parameters to the data loss,

.. math:: J(\theta) = L(\theta) + \lambda_1 \sum_{w \in S} |w| + \frac{\lambda_2}{2} \sum_{w \in S} w^2,

where :math:`S` is the set of penalised entries: by default the **weights** only (every leaf
whose dictionary key starts with ``"W"``: ``W`` of an MLP layer, ``W1``/``W2`` of a residual
block), not the biases and not batch-norm scales and shifts, as in Goodfellow et al., §7.1:
penalising biases adds bias without reducing variance. The L2 term carries the factor 1/2, so
its gradient is :math:`\lambda_2 w` and plain gradient descent on it multiplies every weight by
:math:`1 - \eta\lambda_2` per step ("weight decay"). L1 drives weights to exactly zero
(sparsity); the mix of both is the elastic net (Zou & Hastie 2005).

For adaptive optimizers the two are not the same: an L2 gradient passes through Adam's
per-coordinate scaling, which shrinks the decay of weights with large gradients.
**Decoupled** weight decay (Loshchilov & Hutter 2019) applies it after the optimizer,

.. math:: \theta_t = \theta_{t-1} - \eta_t\, u_t - \eta_t \lambda\, \theta_{t-1},

with :math:`u_t` the optimizer's update direction; :func:`decoupled_weight_decay` is that
last term for any optimizer.

Every strength may be a traced array, so a sweep over strengths is one ``jax.vmap``.

The hand-written gradient of the L1 term uses the subgradient :math:`\mathrm{sign}(0) = 0`, so
a weight that is exactly zero feels no pull (``jax.grad`` of ``jnp.abs`` takes 1 there).

References: A. Krogh, J. Hertz, *A simple weight decay can improve generalization*, NIPS 1991;
R. Tibshirani, *Regression shrinkage and selection via the lasso*, JRSS B 1996; H. Zou,
T. Hastie, *Regularization and variable selection via the elastic net*, JRSS B 2005;
I. Loshchilov, F. Hutter, *Decoupled Weight Decay Regularization*, ICLR 2019;
I. Goodfellow, Y. Bengio, A. Courville, *Deep Learning*, MIT Press 2016, §7.1.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp
import optax

from fnn import _checks
from fnn._types import Array, ArrayLike, Params

__all__ = [
    "LEAVES",
    "mask",
    "l1",
    "l2",
    "elastic_net",
    "value_and_grad",
    "decoupled_weight_decay",
    "DecayState",
]

# Which leaves a penalty touches: a name, or a function (path, leaf) -> bool.
LeafSelector = Union[str, Callable[[tuple, Array], bool]]
LEAVES = ("weights", "all")


def _is_weight(path: tuple, leaf: Array) -> bool:
    del leaf
    last = path[-1] if path else None
    return isinstance(last, jax.tree_util.DictKey) and str(last.key).startswith("W")


def mask(params: Params, leaves: LeafSelector = "weights") -> Any:
    """A pytree of Python bools shaped like ``params``: True where a penalty applies.

    Args:
      params: any parameter pytree.
      leaves: ``"weights"`` (leaves whose dict key starts with ``"W"``), ``"all"``, or a
        function ``(path, leaf) -> bool`` of the leaf's key path (``jax.tree_util`` keys).

    >>> import fnn
    >>> mask(fnn.mlp.init(jax.random.key(0), [2, 3, 1]))
    [{'W': True, 'b': False}, {'W': True, 'b': False}]
    """
    if isinstance(leaves, str):
        if leaves not in LEAVES:
            raise ValueError(f"leaves must be one of {LEAVES} or a function (path, leaf) -> bool, got {leaves!r}")
        select = _is_weight if leaves == "weights" else (lambda path, leaf: True)
    elif callable(leaves):
        select = leaves
    else:
        raise TypeError(
            f"leaves must be a name {LEAVES} or a function (path, leaf) -> bool, got {type(leaves).__name__}"
        )
    chosen = jax.tree_util.tree_map_with_path(lambda path, leaf: bool(select(path, leaf)), params)
    if not any(jax.tree.leaves(chosen)):
        raise ValueError(f"leaves={leaves!r} selects no leaf of params; nothing would be penalised")
    return chosen


def _sum(terms: list[Array]) -> Array:
    return sum(terms[1:], terms[0])


def l1(params: Params, strength: ArrayLike, *, leaves: LeafSelector = "weights") -> Array:
    r""":math:`\lambda_1 \sum_{w \in S} |w|` over the selected leaves.

    >>> params = [{"W": jnp.array([[1.0, -2.0]]), "b": jnp.array([5.0, 5.0])}]
    >>> float(l1(params, 0.5))
    1.5
    """
    return value_and_grad(params, l1=strength, leaves=leaves)[0]


def l2(params: Params, strength: ArrayLike, *, leaves: LeafSelector = "weights") -> Array:
    r""":math:`\frac{\lambda_2}{2} \sum_{w \in S} w^2` over the selected leaves.

    >>> params = [{"W": jnp.array([[1.0, -2.0]]), "b": jnp.array([5.0, 5.0])}]
    >>> float(l2(params, 0.5))
    1.25
    """
    return value_and_grad(params, l2=strength, leaves=leaves)[0]


def elastic_net(
    params: Params, l1_strength: ArrayLike, l2_strength: ArrayLike, *, leaves: LeafSelector = "weights"
) -> Array:
    r""":math:`\lambda_1 \sum |w| + \frac{\lambda_2}{2} \sum w^2` over the selected leaves.

    >>> params = [{"W": jnp.array([[1.0, -2.0]]), "b": jnp.array([5.0, 5.0])}]
    >>> float(elastic_net(params, 0.5, 0.5))
    2.75
    """
    return value_and_grad(params, l1=l1_strength, l2=l2_strength, leaves=leaves)[0]


def value_and_grad(
    params: Params, *, l1: ArrayLike = 0.0, l2: ArrayLike = 0.0, leaves: LeafSelector = "weights"
) -> tuple[Array, Params]:
    r"""The penalty and its hand-written gradient :math:`\lambda_1 \mathrm{sign}(w) + \lambda_2 w`
    (zero on unselected leaves).

    Args:
      params: any parameter pytree of floating arrays.
      l1: :math:`\lambda_1 \ge 0`, a scalar (may be traced).
      l2: :math:`\lambda_2 \ge 0`, a scalar (may be traced).
      leaves: which leaves, see :func:`mask`.

    Returns:
      ``(penalty, grads)``: a scalar in the parameters' dtype, and a pytree like ``params``.

    >>> params = [{"W": jnp.array([[1.0, -2.0]]), "b": jnp.array([5.0, 5.0])}]
    >>> value, grads = value_and_grad(params, l1=0.1, l2=1.0)
    >>> round(float(value), 4), grads[0]["W"].round(4).tolist(), grads[0]["b"].tolist()
    (2.8, [[1.100000023841858, -2.0999999046325684]], [0.0, 0.0])
    """
    chosen = mask(params, leaves)
    l1, l2 = _checks.nonnegative(l1, "l1"), _checks.nonnegative(l2, "l2")
    values, grads = [], []
    for on, w in zip(jax.tree.leaves(chosen), jax.tree.leaves(params), strict=True):
        w = _checks.float_array(w, "params")
        if not on:
            grads.append(jnp.zeros_like(w))
            continue
        l1_w, l2_w = jnp.asarray(l1, w.dtype), jnp.asarray(l2, w.dtype)
        values.append(l1_w * jnp.sum(jnp.abs(w)) + l2_w / 2 * jnp.sum(w * w))
        grads.append(l1_w * jnp.sign(w) + l2_w * w)
    return _sum(values), jax.tree.unflatten(jax.tree.structure(params), grads)


class DecayState(NamedTuple):
    """The step count of :func:`decoupled_weight_decay`, which drives a learning-rate schedule."""

    count: Array


def decoupled_weight_decay(
    learning_rate: ArrayLike | Callable[[Array], ArrayLike],
    weight_decay: ArrayLike,
    *,
    leaves: LeafSelector = "weights",
) -> optax.GradientTransformation:
    r"""The decoupled decay term :math:`-\eta_t \lambda \theta_{t-1}`, added to incoming updates.

    Chain it after an optimizer whose updates already carry the learning rate,
    ``optax.chain(fnn.optimizers.adam(lr), decoupled_weight_decay(lr, wd))``; with Adam that is
    exactly AdamW (:func:`fnn.optimizers.adamw`), with any other optimizer its decoupled
    counterpart (SGDW, ...). For plain SGD it equals an L2 penalty of strength :math:`\lambda`.

    Args:
      learning_rate: :math:`\eta_t`, a scalar or a schedule ``step -> lr``, the same as the
        optimizer's.
      weight_decay: :math:`\lambda \ge 0` (may be traced).
      leaves: which leaves decay, see :func:`mask`; weights only by default.

    Returns:
      An ``optax.GradientTransformation`` whose ``update`` needs ``params``.

    >>> decay = decoupled_weight_decay(0.1, 0.5)
    >>> params = [{"W": jnp.array([2.0]), "b": jnp.array([2.0])}]
    >>> zero = jax.tree.map(jnp.zeros_like, params)
    >>> updates, _ = decay.update(zero, decay.init(params), params)
    >>> updates[0]["W"].tolist(), updates[0]["b"].tolist()  # -0.1 * 0.5 * 2 on the weight only
    ([-0.10000000149011612], [0.0])
    """
    weight_decay = _checks.nonnegative(weight_decay, "weight_decay")
    if not callable(learning_rate):
        learning_rate = _checks.in_range(learning_rate, "learning_rate", 0.0, math.inf, low_closed=False)

    def init(params: Params) -> DecayState:
        del params
        return DecayState(jnp.zeros((), jnp.int32))

    def update(updates: Any, state: DecayState, params: Params | None = None) -> tuple[Any, DecayState]:
        if params is None:
            raise ValueError("decoupled_weight_decay needs params: call update(updates, state, params)")
        rate = learning_rate(state.count) if callable(learning_rate) else learning_rate
        chosen = mask(params, leaves)

        def decayed(on: bool, u: Array, w: Array) -> Array:
            return u - jnp.asarray(rate * weight_decay, u.dtype) * w.astype(u.dtype) if on else u

        return jax.tree.map(decayed, chosen, updates, params), DecayState(optax.safe_int32_increment(state.count))

    return optax.GradientTransformation(init, update)
