"""Configuration shared by every test in tests/: float64 and strict rank promotion.

Both are switched on around each test rather than at import, so that the doctests of fnn and
of the README, collected in the same session, run under JAX's defaults as a user would.
Build float64 arrays inside tests, not at import time.
"""

import jax
import pytest


@pytest.fixture(autouse=True)
def _strict_float64():
    # Gradient checks need float64; "raise" turns silent [N] vs [N, 1] broadcasting into errors.
    with jax.enable_x64(True), jax.numpy_rank_promotion("raise"):
        yield


@pytest.fixture
def key() -> jax.Array:
    """A new-style typed PRNG key; split it where used, never reuse it."""
    return jax.random.key(0)
