r"""Weight initialisation schemes for a ``[fan_in, fan_out]`` weight matrix.

Each scheme draws weights with a variance chosen so that signals keep their scale from layer to
layer at initialisation:

============  ===========================================  ===============================
scheme        distribution                                 variance
============  ===========================================  ===============================
``he``        truncated normal                             :math:`2 / \mathrm{fan\_in}`
``he_uniform``  uniform                                    :math:`2 / \mathrm{fan\_in}`
``glorot``    uniform (alias ``xavier``)                   :math:`2 / (\mathrm{fan\_in} + \mathrm{fan\_out})`
``glorot_normal``  truncated normal                        :math:`2 / (\mathrm{fan\_in} + \mathrm{fan\_out})`
``lecun``     truncated normal                             :math:`1 / \mathrm{fan\_in}`
``normal``    normal with standard deviation ``std``       :math:`\mathrm{std}^2`
============  ===========================================  ===============================

He suits ReLU-like activations (half the units are off), Glorot suits tanh and sigmoid, LeCun
suits SELU and linear units. The truncated normals are cut at two standard deviations and
rescaled to keep the stated variance, as in ``jax.nn.initializers.variance_scaling``.

References: X. Glorot, Y. Bengio, *Understanding the difficulty of training deep feedforward
neural networks*, AISTATS 2010; K. He et al., *Delving Deep into Rectifiers*, ICCV 2015;
Y. LeCun et al., *Efficient BackProp*, 1998.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, PRNGKey

__all__ = ["weights", "schemes"]

_VARIANCE_SCALING: dict[str, tuple[float, str, str]] = {
    "he": (2.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "glorot": (1.0, "fan_avg", "uniform"),
    "xavier": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "lecun": (1.0, "fan_in", "truncated_normal"),
}


def schemes() -> tuple[str, ...]:
    """The known scheme names, sorted.

    >>> "he" in schemes()
    True
    """
    return tuple(sorted([*_VARIANCE_SCALING, "normal"]))


def _initializer(scheme: str, std: float) -> Callable[..., Array]:
    if scheme == "normal":
        return jax.nn.initializers.normal(stddev=std)
    if scheme not in _VARIANCE_SCALING:
        raise ValueError(f"unknown initialisation scheme {scheme!r}; known schemes: {', '.join(schemes())}")
    scale, mode, distribution = _VARIANCE_SCALING[scheme]
    return jax.nn.initializers.variance_scaling(scale, mode, distribution)


def weights(
    key: PRNGKey, fan_in: int, fan_out: int, scheme: str = "he", *, std: float = 0.01, dtype: Any = jnp.float32
) -> Array:
    """Draw a ``[fan_in, fan_out]`` weight matrix by the named scheme.

    Args:
      key: a PRNG key.
      fan_in: the number of inputs, positive.
      fan_out: the number of outputs, positive.
      scheme: one of :func:`schemes`.
      std: the standard deviation of the ``"normal"`` scheme.
      dtype: a floating dtype.

    Returns:
      Array ``[fan_in, fan_out]``.

    >>> w = weights(jax.random.key(0), 256, 128, "he")
    >>> w.shape, bool(abs(float(w.std()) - (2 / 256) ** 0.5) < 0.005)
    ((256, 128), True)
    """
    fan_in = _checks.positive_int(fan_in, "fan_in")
    fan_out = _checks.positive_int(fan_out, "fan_out")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype, got {jnp.dtype(dtype)}")
    if scheme == "normal":
        _checks.positive_float(std, "std")
    return _initializer(scheme, std)(key, (fan_in, fan_out), dtype)
