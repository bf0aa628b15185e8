"""Type aliases shared by every module of fnn."""

from typing import Any, Union

import jax

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
DTypeLike = jax.typing.DTypeLike
PRNGKey = jax.Array

# A parameter pytree: for an MLP, a list with one {"W": [in, out], "b": [out]} dict per layer.
Params = Any
# Running state of a model (batch-norm statistics, for instance); ``()`` when there is none.
State = Any
Grads = Any

Shape = tuple[int, ...]
Numeric = Union[int, float]
