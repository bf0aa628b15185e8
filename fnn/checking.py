r"""Value checks that survive ``jax.jit``: which checks run where, and the checked mode.

fnn validates its inputs at the public boundary. What can be checked depends on what is known:

=====================================  ====================  ============================
check                                  eager (concrete)      under ``jit``/``vmap``/``grad``
=====================================  ====================  ============================
shapes, ranks, dtypes, layer sizes,    ``ValueError`` /      same: raised at trace time
names, static settings                 ``TypeError``
label ranges, probabilities in [0, 1]  ``ValueError``        the result is NaN; inside
and summing to 1, non-negative                               :func:`checked`, a checkify
variance, positive bandwidth                                 error with the same message
=====================================  ====================  ============================

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

from jax.experimental import checkify

from fnn import _checks

__all__ = ["checked"]


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
        token = _checks._CHECKIFY_ACTIVE.set(True)
        try:
            return inner(*args, **kwargs)
        finally:
            _checks._CHECKIFY_ACTIVE.reset(token)

    return wrapper
