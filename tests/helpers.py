"""Helpers shared by the tests: tree comparisons, parameters drawn without compiling."""

import jax
import jax.numpy as jnp
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


def random_params(model, members=None, seed=0, dtype=jnp.float64):
    """Parameters and state of ``model``'s layout (stacked over ``members``), drawn by NumPy.

    ``jax.eval_shape`` of ``init`` gives the layout without compiling it; the tests are
    dominated by compilation. Running variances are drawn positive, away from their initial 1.
    """
    rng = np.random.default_rng(seed)
    layout = jax.eval_shape(lambda: model.init(jax.random.key(0), dtype))
    lead = () if members is None else (members,)

    def draw(path, leaf):
        shape = lead + leaf.shape
        if jax.tree_util.keystr(path).endswith(".var"):
            return jnp.asarray(rng.uniform(0.5, 2.0, shape).astype(leaf.dtype))
        return jnp.asarray((rng.normal(size=shape) * 0.8).astype(leaf.dtype))

    return jax.tree_util.tree_map_with_path(draw, layout)
