r"""Learning-rate schedules: functions ``step -> lr`` that every optimizer in fnn accepts.

A schedule is a pure function of the step count, the form optax uses: an optimizer calls it
with the number of updates already made, so the t-th update (t = 1, 2, ...) uses
``schedule(t - 1)`` and the first uses ``schedule(0)``. A schedule also takes an array of
steps and returns the rates elementwise, which is how to plot one.

The starting ``value`` (and the ``factor`` of a step decay) may be traced, so a sweep over
initial learning rates is one ``jax.vmap``; boundaries are static Python integers, because they
are part of what is compiled. Invalid arguments are a ``ValueError`` naming the argument, what
was expected and what came; a traced ``value`` or ``factor`` out of range gives NaN rates, as
for every hyperparameter in :mod:`fnn.optimizers`.

References: K. He, X. Zhang, S. Ren, J. Sun, *Deep Residual Learning for Image Recognition*,
CVPR 2016 (CIFAR-10: rate 0.1, divided by 10 at 32k and 48k of 64k iterations);
G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger, *Densely Connected Convolutional
Networks*, CVPR 2017 ("divided by 10 at 50% and 75% of the total number of training epochs").
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn._types import Array, ArrayLike

__all__ = ["classic_step_decay", "constant", "step_decay"]

Schedule = Callable[[ArrayLike], Array]


def _boundaries(boundaries: Sequence[int], total_steps: int | None) -> tuple[int, ...]:
    """Boundaries as a tuple of strictly increasing positive ints below ``total_steps``."""
    try:
        given = tuple(boundaries)
    except TypeError:
        raise ValueError(f"boundaries must be a sequence of step numbers, got {boundaries!r}") from None
    if not given:
        raise ValueError("boundaries must hold at least one step (for no decay use constant)")
    steps = []
    for i, b in enumerate(given):
        try:
            if isinstance(b, (bool, np.bool_)):
                raise TypeError
            steps.append(operator.index(b))
        except TypeError:
            raise ValueError(f"boundaries must be integer step numbers, got {b!r} at index {i}") from None
    if steps[0] < 1:
        raise ValueError(f"boundaries must be positive steps (a boundary at 0 scales the start value), got {steps}")
    if any(a >= b for a, b in itertools.pairwise(steps)):
        raise ValueError(f"boundaries must be strictly increasing (sorted, no duplicates), got {steps}")
    if total_steps is not None and steps[-1] >= total_steps:
        raise ValueError(
            f"boundaries must lie below total_steps={total_steps} (a later one never applies), got {steps}"
        )
    return tuple(steps)


def constant(value: ArrayLike) -> Schedule:
    r"""The constant schedule :math:`\eta_t = \eta_0`.

    Args:
      value: :math:`\eta_0 > 0`, a Python float or a (possibly traced) scalar.

    Returns:
      ``step -> lr``: for a step array of shape ``[...]``, an array of shape ``[...]``.

    >>> constant(0.1)(jnp.arange(3))
    Array([0.1, 0.1, 0.1], dtype=float32, weak_type=True)
    """
    value = _checks.positive(value, "value")

    def schedule(step: ArrayLike) -> Array:
        return jnp.broadcast_to(value, jnp.shape(step))

    return schedule


def step_decay(
    value: ArrayLike, boundaries: Sequence[int], factor: ArrayLike = 0.1, *, total_steps: int | None = None
) -> Schedule:
    r"""Step decay: multiply the rate by ``factor`` at each boundary step.

    .. math:: \eta_t = \eta_0 \, \gamma^{\,|\{i : b_i \le t\}|}

    for boundaries :math:`b_1 < b_2 < \dots` and factor :math:`\gamma`, so the rate changes at
    step :math:`b_i` itself: ``step_decay(0.1, [100])`` gives 0.1 at steps 0 to 99 and 0.01
    from step 100.

    Args:
      value: :math:`\eta_0 > 0`, a Python float or a (possibly traced) scalar.
      boundaries: strictly increasing positive Python ints, at least one (static).
      factor: :math:`\gamma > 0`, usually in (0, 1); a Python float or a (possibly traced)
        scalar.
      total_steps: if given, the length of the run; every boundary must lie below it.

    Returns:
      ``step -> lr``: for a step array of shape ``[...]``, an array of shape ``[...]``.

    Reference: K. He et al., *Deep Residual Learning for Image Recognition*, CVPR 2016
    (0.1, divided by 10 at iterations 32k and 48k: ``step_decay(0.1, [32000, 48000])``).

    >>> step_decay(1.0, [2, 4], factor=0.5)(jnp.arange(6))
    Array([1.  , 1.  , 0.5 , 0.5 , 0.25, 0.25], dtype=float32)
    >>> step_decay(0.1, [4, 2])
    Traceback (most recent call last):
    ...
    ValueError: boundaries must be strictly increasing (sorted, no duplicates), got [4, 2]
    """
    if total_steps is not None:
        total_steps = _checks.positive_int(total_steps, "total_steps")
    bounds = np.asarray(_boundaries(boundaries, total_steps))
    value = _checks.positive(value, "value")
    factor = _checks.positive(factor, "factor")
    if not _checks.is_concrete(factor):
        # NaN ** 0 is 1: carry an invalid traced factor's NaN to the steps before the first boundary.
        value = _checks.poison(value, ~jnp.isnan(factor))

    def schedule(step: ArrayLike) -> Array:
        passed = jnp.searchsorted(bounds, jnp.asarray(step), side="right")
        return value * factor**passed

    return schedule


def classic_step_decay(value: ArrayLike, total_steps: int) -> Schedule:
    r"""The classic recipe: divide the rate by 10 at 50% and again at 75% of the run.

    .. math::
        \eta_t = \eta_0 \text{ for } t < \lfloor T/2 \rfloor, \quad
        \eta_0 / 10 \text{ for } \lfloor T/2 \rfloor \le t < \lfloor 3T/4 \rfloor, \quad
        \eta_0 / 100 \text{ after}

    i.e. ``step_decay(value, [T // 2, 3 * T // 4], 0.1)``. ``total_steps`` counts whatever the
    schedule is called with: updates when handed to an optimizer.

    Args:
      value: :math:`\eta_0 > 0`, a Python float or a (possibly traced) scalar.
      total_steps: :math:`T \ge 3`, so that the two boundaries are distinct positive steps.

    Returns:
      ``step -> lr``: for a step array of shape ``[...]``, an array of shape ``[...]``.

    References: G. Huang et al., *Densely Connected Convolutional Networks*, CVPR 2017
    ("divided by 10 at 50% and 75% of the total number of training epochs"); K. He et al.,
    *Deep Residual Learning for Image Recognition*, CVPR 2016 (on CIFAR-10, at 32k and 48k of
    64k iterations: the same fractions).

    >>> classic_step_decay(1.0, 8)(jnp.arange(8))
    Array([1.  , 1.  , 1.  , 1.  , 0.1 , 0.1 , 0.01, 0.01], dtype=float32)
    """
    total_steps = _checks.positive_int(total_steps, "total_steps")
    if total_steps < 3:
        raise ValueError(
            f"total_steps must be at least 3 so that 50% and 75% of it are distinct positive steps, got {total_steps}"
        )
    return step_decay(value, [total_steps // 2, 3 * total_steps // 4], 0.1, total_steps=total_steps)
