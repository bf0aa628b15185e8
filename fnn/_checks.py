"""Input validation at the public boundary.

Two kinds of check live here.

*Static checks* look at shapes, ranks and dtypes. They are known at trace time, so they raise
``ValueError`` or ``TypeError`` whether or not the caller is inside ``jax.jit``.

*Value checks* look at the numbers (labels in range, probabilities in [0, 1], distributions
summing to one). On concrete arrays they raise ``ValueError`` at once. Under a transformation
the values are not known yet, so a failed value check never passes silently:

* the guarded result is replaced by NaN (see :func:`poison`), which the training loop reports
  with the step where it appeared, and
* inside :func:`fnn.checking.checked` the same condition is also emitted as a
  ``jax.experimental.checkify`` check carrying the message that the eager error would carry.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from fnn._types import Array

# Set while fnn.checking.checked traces a function. It is read at trace time only.
_CHECKIFY_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("fnn_checkify", default=False)


def is_concrete(*xs: Any) -> bool:
    """True when none of ``xs`` is a tracer, so its values can be inspected now."""
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def float_array(x: Any, name: str) -> Array:
    """``x`` as a floating-point array; integer or boolean input is a ``TypeError``."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must be a floating-point array, got dtype {x.dtype}")
    return x


def same_shape(a: Array, b: Array, name_a: str, name_b: str) -> None:
    """Refuse operands whose shapes differ instead of letting jnp broadcast them."""
    if a.shape != b.shape:
        hint = ""
        if a.ndim + b.ndim == 3 and sorted((a.ndim, b.ndim)) == [1, 2]:
            hint = " (a [N] array against an [N, 1] array would broadcast to [N, N])"
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {a.shape} and {b.shape}{hint}")


def ndim_in(x: Array, name: str, allowed: tuple[int, ...]) -> None:
    """Refuse arrays whose rank is not in ``allowed``."""
    if x.ndim not in allowed:
        ranks = " or ".join(str(r) for r in allowed)
        raise ValueError(f"{name} must have rank {ranks}, got shape {x.shape}")


def nonempty_batch(x: Array, name: str) -> None:
    """Refuse a batch with no examples (a mean over it would be 0/0)."""
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one example along axis 0, got shape {x.shape}")


def integer(value: Any, name: str, *, minimum: int) -> int:
    """``value`` as a Python int of at least ``minimum``; bools and non-integers are a ``TypeError``.

    >>> integer(3, "width", minimum=1)
    3
    >>> integer(-1, "depth", minimum=0)
    Traceback (most recent call last):
    ValueError: depth must be a non-negative integer, got -1
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got the bool {value!r}")
    try:
        as_int = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}") from None
    if as_int < minimum:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"at least {minimum}")
        raise ValueError(f"{name} must be {kind}, got {as_int}")
    return as_int


def positive_int(value: Any, name: str) -> int:
    """``value`` as a Python int, refusing bools, non-integers and values below 1."""
    return integer(value, name, minimum=1)


def nonnegative_int(value: Any, name: str) -> int:
    """``value`` as a Python int, refusing bools, non-integers and values below 0."""
    return integer(value, name, minimum=0)


def single_key(key: Any, name: str, *, needed_by: str | None = None) -> Any:
    """``key`` if it is one PRNG key (typed ``jax.random.key``, or a raw ``uint32[2]``), else a ``ValueError``.

    With ``needed_by`` (the caller's name) a missing key (``None``) is a ``TypeError`` saying who
    needed it.

    >>> single_key(jax.random.split(jax.random.key(0), 3), "key")
    Traceback (most recent call last):
    ValueError: key must be a single PRNG key such as jax.random.key(0), got dtype key<fry> and shape (3,) (use jax.vmap over keys)
    """
    if key is None and needed_by is not None:
        raise TypeError(f"{needed_by} requires a key, for instance jax.random.key(0)")
    key = key if isinstance(key, jax.Array) else jnp.asarray(key)
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    if key.shape != (() if typed else (2,)) or not (typed or key.dtype == jnp.uint32):
        hint = " (use jax.vmap over keys)" if typed else ""
        raise ValueError(
            f"{name} must be a single PRNG key such as jax.random.key(0), "
            f"got dtype {key.dtype} and shape {key.shape}{hint}"
        )
    return key


def key_batch(keys: Any, name: str) -> Array:
    """``keys`` if it is a batch of PRNG keys (typed ``[M]`` or raw ``uint32[M, 2]``, M >= 1), else a ``ValueError``.

    >>> key_batch(jax.random.key(0), "keys")
    Traceback (most recent call last):
    ValueError: keys must be a batch of PRNG keys such as jax.random.split(key, M), got dtype key<fry> and shape ()
    """
    keys = keys if isinstance(keys, jax.Array) else jnp.asarray(keys)
    typed = jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)
    ok = keys.ndim == 1 if typed else (keys.dtype == jnp.uint32 and keys.ndim == 2 and keys.shape[1] == 2)
    if not ok or keys.shape[0] == 0:
        raise ValueError(
            f"{name} must be a batch of PRNG keys such as jax.random.split(key, M), got dtype {keys.dtype} and shape {keys.shape}"
        )
    return keys


def mesh_axis(mesh: Any, axis: str, name: str) -> int:
    """The size of ``axis`` of the :class:`jax.sharding.Mesh` ``mesh``, else a ``TypeError`` or ``ValueError``.

    >>> mesh = jax.sharding.Mesh(jax.devices()[:1], ("members",))
    >>> mesh_axis(mesh, "members", "member_axis")
    1
    >>> mesh_axis(mesh, "data", "data_axis")
    Traceback (most recent call last):
    ValueError: data_axis 'data' is not an axis of the mesh, whose axes are ('members',)
    """
    if not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh or None, got {type(mesh).__name__}")
    if axis not in mesh.axis_names:
        raise ValueError(f"{name} {axis!r} is not an axis of the mesh, whose axes are {mesh.axis_names}")
    return mesh.shape[axis]


def real(value: Any, name: str, dtype: Any = None) -> Array:
    """``value`` as an array of real numbers (integer or floating), cast to ``dtype`` when given.

    Bools, strings and complex numbers are a ``TypeError``.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number, got the bool {value!r}")
    try:
        x = jnp.asarray(value)
    except TypeError:
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)):
        raise TypeError(f"{name} must be a real number, got dtype {x.dtype}")
    return x if dtype is None else x.astype(dtype)


def real_scalar(value: Any, name: str, dtype: Any = None) -> Array:
    """:func:`real`, refusing anything but a scalar."""
    x = real(value, name, dtype)
    if x.ndim:
        raise ValueError(f"{name} must be a scalar, got shape {x.shape}")
    return x


def show(value: Any) -> str:
    """A scalar for an error message: its value when concrete, else ``"a traced value"``."""
    return f"{float(value):g}" if is_concrete(value) else "a traced value"


def interval(lo: Any, hi: Any, lo_name: str = "lo", hi_name: str = "hi", dtype: Any = None) -> tuple[Array, Array, Any]:
    """``(lo, hi, ok)``: two finite real scalars of one floating dtype with ``lo < hi``.

    ``dtype`` defaults to the floating type the two promote to. A concrete failure raises a
    ``ValueError``; under tracing ``ok`` is the traced verdict, for :func:`guard`.

    >>> interval(1.0, 0.0)
    Traceback (most recent call last):
    ValueError: lo must be less than hi, got lo=1 and hi=0
    """
    lo, hi = real_scalar(lo, lo_name), real_scalar(hi, hi_name)
    dtype = jnp.result_type(float, lo, hi) if dtype is None else dtype
    lo, hi = lo.astype(dtype), hi.astype(dtype)
    if is_concrete(lo, hi):
        for v, name in ((lo, lo_name), (hi, hi_name)):
            if not np.isfinite(v):
                raise ValueError(f"{name} must be finite, got {float(v)}")
        if not lo < hi:
            raise ValueError(
                f"{lo_name} must be less than {hi_name}, got {lo_name}={show(lo)} and {hi_name}={show(hi)}"
            )
        return lo, hi, True
    finite = jnp.isfinite(lo) & jnp.isfinite(hi)
    return lo, hi, require(finite & (lo < hi), f"{lo_name} must be less than {hi_name}, both finite")


def nonnegative_scalar(value: Any, name: str, dtype: Any = None) -> tuple[Array, Any]:
    """``(value, ok)``: ``value`` as a real scalar checked to be >= 0 (``ok`` as in :func:`require`)."""
    x = real_scalar(value, name, dtype)
    return x, require(x >= 0, f"{name} must be non-negative, got {show(x)}")


def positive_finite(value: Any, name: str) -> Array:
    """``value`` (scalar or array) as floats checked to be > 0 and finite; NaN where traced and invalid."""
    x = real(value, name)
    x = x.astype(jnp.result_type(float, x))
    ok = require((x > 0) & jnp.isfinite(x), f"{name} must be positive and finite, got {value!r}")
    return poison(x, ok)


def float_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a NumPy floating dtype, else a ``TypeError``."""
    d = np.dtype(dtype)
    if not jnp.issubdtype(d, jnp.floating):
        raise TypeError(f"dtype must be a floating-point dtype, got {d}")
    return d


def positive_float(value: Any, name: str) -> float:
    """``value`` as a Python float strictly above zero (for static settings such as eps)."""
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not as_float > 0:
        raise ValueError(f"{name} must be positive, got {as_float}")
    return as_float


def require(ok: Array, message: str) -> Array | bool:
    """Value check: raise now on concrete input; under tracing, hand back the verdict.

    Args:
      ok: boolean array, True where the input is valid.
      message: the error message, naming the argument, what was expected and what came.

    Returns:
      ``True`` on concrete input (a failure has already raised), otherwise
      the traced ``all(ok)`` for :func:`poison`. Inside :func:`fnn.checking.checked` the check
      is also emitted through checkify.
    """
    if is_concrete(ok):
        if not bool(np.all(np.asarray(ok))):
            raise ValueError(message)
        return True
    all_ok = jnp.all(ok)
    if _CHECKIFY_ACTIVE.get():
        checkify.check(all_ok, message)
    return all_ok


@contextlib.contextmanager
def emitting_checkify_checks():
    """While active, :func:`require` also emits its traced checks through checkify (used by
    :func:`fnn.checking.checked` around the tracing of the checked function)."""
    token = _CHECKIFY_ACTIVE.set(True)
    try:
        yield
    finally:
        _CHECKIFY_ACTIVE.reset(token)


def poison(value: Array, ok: Array | bool) -> Array:
    """``value`` where ``ok`` holds, NaN otherwise: a failed traced check never passes silently."""
    if ok is True:
        return value
    return jnp.where(ok, value, jnp.nan)


def registry_lookup(
    kind: str, name: Any, registry: dict[str, tuple], given: dict[str, Any]
) -> tuple[tuple, tuple[float, ...]]:
    """Look up ``name`` in a registry of ``kind`` (activation, loss) whose entries hold their
    parameter defaults at index 2; validate the name and the parameters.

    Returns:
      The entry, and its parameter values in the order of the defaults, ``given`` overriding them.
    """
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be a name or an {kind.capitalize()} record, got {type(name).__name__}")
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; known names: {', '.join(sorted(registry))}")
    entry = registry[name]
    defaults = entry[2]
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise ValueError(f"{kind} {name!r} takes parameters ({allowed}), got {unknown}")
    return entry, tuple(float(given.get(k, v)) for k, v in defaults.items())


def in_range(value: Any, name: str, low: float, high: float, *, low_closed: bool, hint: str = "") -> Any:
    """``value`` checked to be a real scalar in the interval from ``low`` to ``high`` (``high``
    excluded; ``low`` included when ``low_closed``): a ``ValueError`` when concrete, NaN when traced.

    A valid concrete value is returned unchanged, so a Python float stays weakly typed and does
    not promote float32 parameters.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number, got the bool {value!r}")
    interval = f"{'[' if low_closed else '('}{low:g}, {high:g})"
    if is_concrete(value):
        v = np.asarray(value)  # a string or another object comes out with a non-numeric dtype
        if v.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
        if v.ndim:
            raise ValueError(f"{name} must be a scalar, got shape {v.shape}")
        ok = (v >= low if low_closed else v > low) and v < high
        if not ok:
            raise ValueError(f"{name} must lie in {interval}, got {v.item()!r}{hint}")
        return value
    if jnp.ndim(value):
        raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(value)}")
    dtype = jnp.result_type(value)
    if not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)):
        raise TypeError(f"{name} must be a real number, got dtype {dtype}")
    ok = ((value >= low) if low_closed else (value > low)) & (value < high)
    return poison(value, require(ok, f"{name} must lie in {interval}{hint}"))


def nonnegative(value: Any, name: str) -> Any:
    """:func:`in_range` over ``[0, inf)``, for hyperparameters such as eps or a penalty strength."""
    return in_range(value, name, 0.0, math.inf, low_closed=True)


def positive(value: Any, name: str) -> Any:
    """:func:`in_range` over ``(0, inf)``, for hyperparameters such as a learning rate."""
    return in_range(value, name, 0.0, math.inf, low_closed=False)


def decay_rate(value: Any, name: str) -> Any:
    """:func:`in_range` over ``[0, 1)``, for a decay rate (momentum, beta, rho)."""
    return in_range(value, name, 0.0, 1.0, low_closed=True)


def guard(oks: Any, *arrays: Array) -> tuple[Array, ...]:
    """Poison the floating ``arrays`` where any traced verdict in ``oks`` failed (concrete failures raised)."""
    pending = [ok for ok in oks if ok is not True]
    if not pending:
        return arrays
    ok = functools.reduce(jnp.logical_and, pending)
    return tuple(poison(a, ok) if jnp.issubdtype(a.dtype, jnp.floating) else a for a in arrays)


def all_finite(tree: Any) -> Array:
    """A scalar boolean: every entry of every leaf of ``tree`` is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def hold(stopped: Array, new: Any, old: Any) -> Any:
    """``old`` where ``stopped``, else ``new``, leaf by leaf: how a run stops updating after a NaN."""
    return jax.tree.map(lambda a, b: jnp.where(stopped, b, a), new, old)


def round_half_up(v: float) -> int:
    """``v`` rounded to the nearest int, halves up (Python's ``round`` rounds halves to even)."""
    return math.floor(v + 0.5)
