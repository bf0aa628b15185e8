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
``pytorch``   uniform, **weights and biases** (torch's default)  :math:`1 / (3\,\mathrm{fan\_in})`
============  ===========================================  ===============================

Every scheme but ``pytorch`` leaves the biases at zero. ``pytorch`` is PyTorch's ``nn.Linear``
default, ``kaiming_uniform_(a=sqrt(5))`` for the weights (gain :math:`\sqrt{2/(1 + 5)}`, so the bound
:math:`\sqrt{1/3}\sqrt{3/\mathrm{fan\_in}} = 1/\sqrt{\mathrm{fan\_in}}`) and the same uniform for
the biases; use :func:`layer` to draw both. The weights are laid out ``[fan_in, fan_out]``, the
transpose of PyTorch's ``[out, in]``, with the same distribution.

He suits ReLU-like activations (half the units are off), Glorot suits tanh and sigmoid, LeCun
suits SELU and linear units. The truncated normals are cut at two standard deviations and
rescaled to keep the stated variance, as in ``jax.nn.initializers.variance_scaling``.

References: X. Glorot, Y. Bengio, *Understanding the difficulty of training deep feedforward
neural networks*, AISTATS 2010; K. He et al., *Delving Deep into Rectifiers*, ICCV 2015;
Y. LeCun et al., *Efficient BackProp*, 1998; PyTorch, ``torch.nn.Linear.reset_parameters``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, PRNGKey

__all__ = ["weights", "biases", "layer", "schemes"]

_VARIANCE_SCALING: dict[str, tuple[float, str, str]] = {
    "he": (2.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "glorot": (1.0, "fan_avg", "uniform"),
    "xavier": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "lecun": (1.0, "fan_in", "truncated_normal"),
    # U(-a, a) has variance a^2 / 3; a = 1 / sqrt(fan_in) is scale 1/3 of fan_in.
    "pytorch": (1.0 / 3.0, "fan_in", "uniform"),
}
# The schemes whose biases are drawn, not zero.
_RANDOM_BIASES = ("pytorch",)


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
    fan_in, fan_out = _check(fan_in, fan_out, dtype)
    if scheme == "normal":
        _checks.positive_float(std, "std")
    return _initializer(scheme, std)(key, (fan_in, fan_out), dtype)


def _check(fan_in: int, fan_out: int, dtype: Any) -> tuple[int, int]:
    fan_in = _checks.positive_int(fan_in, "fan_in")
    fan_out = _checks.positive_int(fan_out, "fan_out")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype, got {jnp.dtype(dtype)}")
    return fan_in, fan_out


def biases(key: PRNGKey, fan_in: int, fan_out: int, scheme: str = "he", *, dtype: Any = jnp.float32) -> Array:
    r"""The ``[fan_out]`` biases of a layer under the named scheme: zeros, or for ``"pytorch"``
    :math:`b_j \sim U(-1/\sqrt{\mathrm{fan\_in}}, 1/\sqrt{\mathrm{fan\_in}})`.

    Args:
      key: a PRNG key (unused by the schemes with zero biases).
      fan_in: the number of inputs of the layer, positive: it sets the ``"pytorch"`` bound.
      fan_out: the number of outputs, positive.
      scheme: one of :func:`schemes`.
      dtype: a floating dtype.

    >>> biases(jax.random.key(0), 4, 3, "he")
    Array([0., 0., 0.], dtype=float32)
    >>> bool(jnp.all(jnp.abs(biases(jax.random.key(0), 4, 1000, "pytorch")) <= 0.5))
    True
    """
    fan_in, fan_out = _check(fan_in, fan_out, dtype)
    if scheme not in _RANDOM_BIASES:
        _initializer(scheme, 1.0)  # an unknown name is refused here too
        return jnp.zeros((fan_out,), dtype)
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, (fan_out,), dtype, -bound, bound)


def layer(
    key: PRNGKey, fan_in: int, fan_out: int, scheme: str = "he", *, std: float = 0.01, dtype: Any = jnp.float32
) -> tuple[Array, Array]:
    r"""One layer's ``(W [fan_in, fan_out], b [fan_out])`` under the named scheme.

    For the schemes with zero biases ``W`` is exactly :func:`weights` of ``key``, so a model that
    switches to this function draws the same weights as before. For ``"pytorch"`` (PyTorch's
    ``nn.Linear`` default) the key is split in two and both are uniform on
    :math:`\pm 1/\sqrt{\mathrm{fan\_in}}`: mean 0, variance :math:`1/(3\,\mathrm{fan\_in})`.

    Args:
      key: a PRNG key.
      fan_in, fan_out: the layer's input and output widths, positive.
      scheme: one of :func:`schemes`.
      std: the standard deviation of the ``"normal"`` scheme.
      dtype: a floating dtype.

    Returns:
      ``(W, b)``.

    >>> w, b = layer(jax.random.key(0), 16, 8, "pytorch")
    >>> w.shape, b.shape, bool(jnp.abs(w).max() <= 0.25), bool(jnp.abs(b).max() <= 0.25)
    ((16, 8), (8,), True, True)
    """
    if scheme not in _RANDOM_BIASES:
        w = weights(key, fan_in, fan_out, scheme, std=std, dtype=dtype)
        return w, biases(key, fan_in, fan_out, scheme, dtype=dtype)
    k_w, k_b = jax.random.split(key)
    return weights(k_w, fan_in, fan_out, scheme, std=std, dtype=dtype), biases(
        k_b, fan_in, fan_out, scheme, dtype=dtype
    )
