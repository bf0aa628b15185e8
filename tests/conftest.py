"""Configuration shared by every test: float64 and strict rank promotion, set at import."""

import jax
import pytest

# Gradient checks need float64; "raise" turns silent [N] vs [N, 1] broadcasting into errors.
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key() -> jax.Array:
    """A new-style typed PRNG key; split it where used, never reuse it."""
    return jax.random.key(0)
