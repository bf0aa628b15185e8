r"""Value checks that survive ``jax.jit``: which checks run where, and the checked mode.

fnn validates its inputs at the public boundary. What can be checked depends on what is known:

=====================================  ====================  ============================
check                                  eager (concrete)      under ``jit``/``vmap``/``grad``
=====================================  ====================  ============================
shapes, ranks, dtypes, layer sizes,    ``ValueError`` /      same: raised at trace time
names, static settings                 ``TypeError``
label ranges, probabilities in [0, 1]  ``ValueError``        the result is NaN; inside
and summing to 1, non-negative                               :func:`checked`, a checkify
variance, positive bandwidth and RBF                         error with the same message
``gamma``, a logit above -inf in
every row of a softmax
=====================================  ====================  ============================

A softmax, log-softmax or cross-entropy of a row whose logits are all :math:`-\infty` is NaN in
that row by the arithmetic itself (:math:`-\infty - (-\infty)`); the check adds the message, and
unchecked under ``jit`` it compiles away.

So a bad value never passes silently: eagerly it raises; compiled, it turns the loss into NaN
(which training reports with the step where it appeared); and a function wrapped by
:func:`checked` returns an error object whose ``throw()`` raises the eager message.

The checked mode is decided when the function is traced. Wrap first, then ``jit``:
``jax.jit(checked(f))``, not ``checked(jax.jit(f))`` of an ``f`` that was already traced
unchecked.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
from jax.experimental import checkify

from fnn import _checks

__all__ = ["checked", "raise_if_nonfinite"]


def checked(fn: Callable[..., Any], errors: frozenset = checkify.user_checks) -> Callable[..., tuple[Any, Any]]:
    """``checkify.checkify(fn)`` with fnn's value checks emitted as checkify checks.

    Args:
      fn: any function calling fnn; it may be jitted afterwards.
      errors: the checkify error set; add ``checkify.nan_checks`` or ``checkify.index_checks``
        to catch more.

    Returns:
      A function with ``fn``'s arguments returning ``(error, out)``; ``error.throw()`` raises
      the first failed check (as ``JaxRuntimeError`` carrying fnn's message), and
      ``error.get()`` returns the message or ``None``.

    >>> import jax, jax.numpy as jnp
    >>> from fnn import losses
    >>> f = jax.jit(checked(losses.cross_entropy))
    >>> err, _ = f(jnp.zeros((2, 3)), jnp.array([0, 5]))
    >>> "labels must lie in [0, 3)" in err.get()
    True
    """
    inner = checkify.checkify(fn, errors=errors)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        with _checks.emitting_checkify_checks():
            return inner(*args, **kwargs)

    return wrapper


def raise_if_nonfinite(record: Any, what: str = "loss") -> None:
    """Raise ``FloatingPointError`` naming where a run first met a NaN or infinite value.

    Two kinds of record come out of fnn's compiled loops, and both are read here:

    * a **curve** ``[T]`` of a quantity per step (the losses of :func:`fnn.optim.descent.minimize`,
      the history of a learning rule): the message names the first non-finite step and the last
      finite value;
    * a **training history** (anything with ``nonfinite_epoch`` and ``nonfinite_step``, as
      :class:`fnn.train.History`), of one run or of a vmapped batch of runs: the message names
      the epoch and minibatch step, and for a batch counts the runs that met one and names the
      first.

    Args:
      record: a concrete curve or training history.
      what: how to call a curve's quantity in the message.

    >>> import jax.numpy as jnp
    >>> raise_if_nonfinite(jnp.array([1.0, 0.5, jnp.nan]))
    Traceback (most recent call last):
    ...
    FloatingPointError: loss became nan at step 2 (the last finite value was 0.5)
    >>> from fnn.train import History
    >>> raise_if_nonfinite(History(*(jnp.zeros(2),) * 3, jnp.array(1), jnp.array(4)))
    Traceback (most recent call last):
    ...
    FloatingPointError: a non-finite loss or gradient appeared at epoch 1, step 4; training stopped there
    """
    if hasattr(record, "nonfinite_epoch") and hasattr(record, "nonfinite_step"):
        _raise_for_history(np.asarray(record.nonfinite_epoch), np.asarray(record.nonfinite_step))
        return
    losses = np.asarray(record)
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        t = int(bad[0])
        before = f" (the last finite value was {losses[t - 1]:.6g})" if t else ""
        raise FloatingPointError(f"{what} became {losses[t]} at step {t}{before}")


def _raise_for_history(epoch: np.ndarray, step: np.ndarray) -> None:
    if epoch.ndim:
        bad = np.argwhere(epoch >= 0)
        if bad.size:
            first = tuple(int(i) for i in bad[0])
            member = first[0] if len(first) == 1 else first
            raise FloatingPointError(
                f"a non-finite loss or gradient appeared in {len(bad)} of {epoch.size} runs (first: member {member}, "
                f"epoch {int(epoch[first])}, step {int(step[first])}); training stopped there"
            )
        return
    if epoch >= 0:
        raise FloatingPointError(
            f"a non-finite loss or gradient appeared at epoch {int(epoch)}, step {int(step)}; training stopped there"
        )
