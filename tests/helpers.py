"""Helpers shared by the tests: tree comparisons."""

import jax
import numpy as np


def leaf_data(leaf):
    """A leaf as plain numbers: the raw key data of a typed PRNG key, the array otherwise."""
    leaf = np.asarray(leaf) if not isinstance(leaf, jax.Array) else leaf
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(leaf))
    return np.asarray(leaf)


def assert_trees_close(a, b, rtol=1e-12, atol=1e-13):
    """Two pytrees with the same leaves, in order, agreeing to ``rtol``/``atol`` (keys by their data)."""
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(leaf_data(u), leaf_data(v), rtol=rtol, atol=atol)
