r"""The perceptron, the logic gates it computes, and why XOR needs a hidden layer.

A perceptron with weights :math:`w \in \mathbb R^d` and bias :math:`b` outputs

.. math:: \hat y = H(w \cdot x + b), \qquad H(z) = 1 \text{ if } z \ge 0 \text{ else } 0,

a linear threshold: it splits its input space by the hyperplane :math:`w \cdot x + b = 0`.
With hand-set weights it computes AND, OR and NAND on :math:`\{0, 1\}^2` (:func:`gate`).

It cannot compute XOR. Suppose :math:`H(w \cdot x + b)` did. Then
:math:`b < 0` (input 00 gives 0), :math:`w_1 + b \ge 0` and :math:`w_2 + b \ge 0` (10 and 01
give 1), and :math:`w_1 + w_2 + b < 0` (11 gives 0). Adding the middle two,
:math:`w_1 + w_2 + 2b \ge 0`, so :math:`w_1 + w_2 + b \ge -b > 0`, a contradiction: the two
classes of XOR are not linearly separable. :func:`best_accuracy` measures the same thing by
search: no perceptron gets more than 3 of the 4 rows right.

One hidden layer is enough: :math:`\mathrm{XOR}(x) = \mathrm{AND}(\mathrm{OR}(x),
\mathrm{NAND}(x))`, a two-layer network of perceptrons (:func:`xor_network`).

References: F. Rosenblatt, *The perceptron: a probabilistic model for information storage
and organization in the brain*, Psychological Review 65(6), 1958; M. Minsky, S. Papert,
*Perceptrons*, MIT Press 1969.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike, Params
from fnn.data.synthetic import truth_table
from fnn.nn import activations as _activations

__all__ = ["init", "apply", "truth_table", "gate", "gate_names", "xor_network", "best_accuracy"]

# Hand-set (w1, w2, b) of each gate on {0, 1}^2. The threshold sits halfway between the
# rows that must give 0 and those that must give 1, so the margin is 0.5 in every case.
_GATES: dict[str, tuple[float, float, float]] = {
    "and": (1.0, 1.0, -1.5),
    "or": (1.0, 1.0, -0.5),
    "nand": (-1.0, -1.0, 1.5),
    "nor": (-1.0, -1.0, 0.5),
}


def init(n_inputs: int, dtype: Any = jnp.float32) -> Params:
    """Zero weights and bias, the customary start of the perceptron learning rule.

    Args:
      n_inputs: the input dimension d, positive.
      dtype: a floating dtype.

    Returns:
      ``{"w": [d], "b": []}``.

    >>> init(2)
    {'w': Array([0., 0.], dtype=float32), 'b': Array(0., dtype=float32)}
    """
    n_inputs = _checks.positive_int(n_inputs, "n_inputs")
    return {"w": jnp.zeros((n_inputs,), dtype), "b": jnp.zeros((), dtype)}


def apply(params: Params, x: ArrayLike) -> Array:
    r"""The perceptron's output :math:`H(w \cdot x + b)` for one input ``[d]`` or a batch ``[..., d]``.

    >>> apply(gate("and"), truth_table())
    Array([0., 0., 0., 1.], dtype=float32)
    """
    x = _checks.float_array(x, "x")
    w = jnp.asarray(params["w"])
    if x.ndim == 0 or x.shape[-1] != w.shape[0]:
        raise ValueError(f"x must have {w.shape[0]} features on its last axis (the size of w), got shape {x.shape}")
    return _activations.step(x @ w + params["b"])


def gate_names() -> tuple[str, ...]:
    """The gates a single perceptron computes with hand-set weights.

    >>> gate_names()
    ('and', 'nand', 'nor', 'or')
    """
    return tuple(sorted(_GATES))


def gate(name: str, dtype: Any = jnp.float32) -> Params:
    """Hand-set perceptron parameters computing a two-input logic gate.

    ======  ================  ======
    gate    :math:`w`          :math:`b`
    ======  ================  ======
    and     (1, 1)            -1.5
    or      (1, 1)            -0.5
    nand    (-1, -1)          1.5
    nor     (-1, -1)          0.5
    ======  ================  ======

    >>> apply(gate("nand"), truth_table())
    Array([1., 1., 1., 0.], dtype=float32)
    """
    if name not in _GATES:
        hint = " (XOR is not linearly separable: see xor_network)" if name == "xor" else ""
        raise ValueError(f"unknown gate {name!r}{hint}; known gates: {', '.join(gate_names())}")
    w1, w2, b = _GATES[name]
    return {"w": jnp.array([w1, w2], dtype), "b": jnp.array(b, dtype)}


def xor_network(dtype: Any = jnp.float32) -> Params:
    """XOR = AND(OR, NAND) as MLP parameters for ``fnn.mlp.apply`` with step activations.

    The hidden layer holds an OR unit and a NAND unit; the output unit ANDs them.

    Returns:
      ``[{"W": [2, 2], "b": [2]}, {"W": [2, 1], "b": [1]}]``.

    >>> from fnn import mlp
    >>> mlp.apply(xor_network(), truth_table(), activation="step", output_activation="step")[:, 0]
    Array([0., 1., 1., 0.], dtype=float32)
    """
    hidden = [gate("or", dtype), gate("nand", dtype)]
    output = gate("and", dtype)
    return [
        {"W": jnp.stack([g["w"] for g in hidden], axis=1), "b": jnp.stack([g["b"] for g in hidden])},
        {"W": output["w"][:, None], "b": output["b"][None]},
    ]


def best_accuracy(x: ArrayLike, y: ArrayLike, values: ArrayLike) -> tuple[Array, Params]:
    """The best accuracy of any perceptron whose weights and bias are all drawn from ``values``.

    Every combination of :math:`d + 1` entries of ``values`` is tried in one vectorised pass,
    so keep ``len(values) ** (d + 1)`` moderate.

    Args:
      x: inputs ``[N, d]``.
      y: targets ``[N]`` in {0, 1}.
      values: candidate values ``[V]`` for each weight and the bias.

    Returns:
      ``(accuracy, params)`` of the best perceptron found (the first, if tied).

    >>> x, y = truth_table("xor")
    >>> float(best_accuracy(x, y, jnp.linspace(-2, 2, 21))[0])
    0.75
    """
    x = _checks.float_array(x, "x")
    y = jnp.asarray(y, x.dtype)
    values = jnp.asarray(values, x.dtype)
    if x.ndim != 2 or y.shape != x.shape[:1]:
        raise ValueError(f"x must be [N, d] and y [N], got {x.shape} and {y.shape}")
    d = x.shape[1]
    grids = jnp.meshgrid(*([values] * (d + 1)), indexing="ij")
    candidates = jnp.stack([g.ravel() for g in grids], axis=1)  # [V^(d+1), d+1]
    outputs = _activations.step(x @ candidates[:, :d].T + candidates[None, :, d])  # [N, C]
    accuracy = jnp.mean(outputs == y[:, None], axis=0)
    best = jnp.argmax(accuracy)
    return accuracy[best], {"w": candidates[best, :d], "b": candidates[best, d]}
