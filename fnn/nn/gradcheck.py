r"""A gradient checker: hand-written against autodiff against finite differences, per layer.

Reach for it when writing a layer or a loss by hand. Given a scalar function of a parameter
pytree and, optionally, a hand-written gradient of it, :func:`check_gradients` computes

* the autodiff gradient ``jax.grad(f)``,
* central finite differences :math:`\frac{f(\theta + h e_i) - f(\theta - h e_i)}{2h}` on every
  entry of every leaf (or on a random sample of entries in large leaves),
* the hand-written gradient, if given,

and reports, for every leaf of the tree, the largest absolute error and the relative error
:math:`\max_i |g_i - g^{\mathrm{ref}}_i| / \max_i |g^{\mathrm{ref}}_i|` of each pair.

Finite differences carry a truncation error :math:`O(h^2)` and a rounding error
:math:`O(\epsilon / h)`; the default step :math:`h = \epsilon^{1/3}` balances them, which
leaves about :math:`10^{-10}` relative accuracy in float64 and about :math:`10^{-3}` in
float32. Check in float64 where you can, and away from kinks (ReLU at 0), where finite
differences straddle two pieces.

Reference: Goodfellow, Bengio, Courville, *Deep Learning*, 2016, sec. 11.5.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from fnn._types import Array, Grads, Params, PRNGKey

__all__ = ["LeafReport", "GradientReport", "check_gradients", "finite_difference_grad"]


class LeafReport(NamedTuple):
    """Errors for one leaf of the parameter tree (NaN where a gradient was not computed).

    Attributes:
      path: the leaf's path in the tree, e.g. ``[0]['W']``.
      shape: the leaf's shape.
      checked: how many entries finite differences evaluated.
      hand_vs_autodiff_abs, hand_vs_autodiff_rel: hand-written against ``jax.grad``.
      autodiff_vs_fd_abs, autodiff_vs_fd_rel: ``jax.grad`` against finite differences.
      hand_vs_fd_abs, hand_vs_fd_rel: hand-written against finite differences.
    """

    path: str
    shape: tuple[int, ...]
    checked: int
    hand_vs_autodiff_abs: float
    hand_vs_autodiff_rel: float
    autodiff_vs_fd_abs: float
    autodiff_vs_fd_rel: float
    hand_vs_fd_abs: float
    hand_vs_fd_rel: float


class GradientReport(NamedTuple):
    """The per-leaf errors of a gradient check; ``str(report)`` is a table."""

    leaves: tuple[LeafReport, ...]

    def max_error(self, pair: str = "hand_vs_autodiff", kind: str = "rel") -> float:
        """The largest error over leaves for ``pair`` in {hand_vs_autodiff, autodiff_vs_fd, hand_vs_fd}."""
        return max(getattr(leaf, f"{pair}_{kind}") for leaf in self.leaves)

    def assert_close(self, rtol: float = 1e-10, fd_rtol: float = 1e-6) -> None:
        """Raise ``AssertionError`` naming the leaf if hand vs autodiff exceeds ``rtol`` or any pair with FD exceeds ``fd_rtol``."""
        for leaf in self.leaves:
            if leaf.hand_vs_autodiff_rel > rtol:
                raise AssertionError(
                    f"{leaf.path}: hand-written vs autodiff relative error {leaf.hand_vs_autodiff_rel:.3g} > {rtol}"
                )
            for pair in ("autodiff_vs_fd", "hand_vs_fd"):
                if getattr(leaf, f"{pair}_rel") > fd_rtol:
                    raise AssertionError(
                        f"{leaf.path}: {pair} relative error {getattr(leaf, pair + '_rel'):.3g} > {fd_rtol}"
                    )

    def __str__(self) -> str:
        head = (
            f"{'leaf':<14}{'shape':<12}{'checked':>8}  {'hand-auto rel':>13}  {'auto-FD rel':>11}  {'hand-FD rel':>11}"
        )
        rows = [
            f"{leaf.path:<14}{str(leaf.shape):<12}{leaf.checked:>8}  {leaf.hand_vs_autodiff_rel:>13.2e}  "
            f"{leaf.autodiff_vs_fd_rel:>11.2e}  {leaf.hand_vs_fd_rel:>11.2e}"
            for leaf in self.leaves
        ]
        return "\n".join([head, *rows])


def _errors(a: np.ndarray | None, b: np.ndarray | None) -> tuple[float, float]:
    """Max absolute error, and it divided by max |b| (the reference); NaN if either is missing, inf if either is not finite."""
    if a is None or b is None:
        return float("nan"), float("nan")
    # A NaN error would compare False against any tolerance and pass assert_close silently.
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf"), float("inf")
    abs_err = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    if scale == 0.0:
        return abs_err, abs_err if abs_err else 0.0
    return abs_err, abs_err / scale


def finite_difference_grad(
    f: Callable[[Params], Array],
    params: Params,
    *,
    step: float | None = None,
    max_entries: int | None = None,
    key: PRNGKey | None = None,
) -> tuple[Grads, Any]:
    r"""Central finite differences of a scalar ``f`` at ``params``, entry by entry.

    Args:
      f: scalar function of the parameter tree.
      params: the point; a pytree of float arrays.
      step: the step :math:`h`; default :math:`\epsilon^{1/3}` of the leaves' dtype, scaled
        by :math:`\max(1, |\theta_i|)`.
      max_entries: evaluate at most this many entries per leaf, drawn at random with
        ``key``; the others are NaN. ``None`` evaluates every entry.
      key: the PRNG key for the sample (required when sampling).

    Returns:
      ``(fd_grads, masks)``: a tree like ``params`` with the estimates, and a tree of boolean
      masks marking the entries evaluated.

    >>> g, _ = finite_difference_grad(lambda p: jnp.sum(p["w"] ** 3), {"w": jnp.array([1.0, 2.0])})
    >>> bool(jnp.allclose(g["w"], jnp.array([3.0, 12.0]), rtol=1e-3))
    True
    """
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise ValueError("params has no leaves to differentiate")
    theta, unravel = jax.flatten_util.ravel_pytree(params)
    if not jnp.issubdtype(theta.dtype, jnp.floating):
        raise TypeError(f"params must hold floating-point leaves, got dtype {theta.dtype}")
    # Choose the entries of each leaf, as positions in the flat vector theta.
    sizes = [int(np.size(leaf)) for leaf in leaves]
    offsets = np.cumsum([0, *sizes[:-1]])
    leaf_keys = jax.random.split(key, len(leaves)) if key is not None else [None] * len(leaves)
    chosen = []
    for offset, size, leaf_key in zip(offsets, sizes, leaf_keys):
        if max_entries is not None and size > max_entries:
            if leaf_key is None:
                raise ValueError("finite_difference_grad needs a key to sample entries when max_entries is set")
            chosen.append(offset + np.asarray(jax.random.choice(leaf_key, size, (max_entries,), replace=False)))
        else:
            chosen.append(offset + np.arange(size))
    idx = jnp.asarray(np.concatenate(chosen))
    h_base = step if step is not None else float(jnp.finfo(theta.dtype).eps) ** (1 / 3)

    @jax.jit
    def estimate(theta: Array, idx: Array) -> Array:
        def directional(j: Array) -> Array:
            h = h_base * jnp.maximum(1.0, jnp.abs(theta[j]))
            plus = f(unravel(theta.at[j].add(h)))
            minus = f(unravel(theta.at[j].add(-h)))
            return (plus - minus) / (2 * h)

        return jax.lax.map(directional, idx, batch_size=64)

    flat_fd = jnp.full(theta.shape, jnp.nan, theta.dtype).at[idx].set(estimate(theta, idx))
    flat_mask = jnp.zeros(theta.shape, theta.dtype).at[idx].set(1)
    return unravel(flat_fd), jax.tree.map(lambda m: m > 0, unravel(flat_mask))


def check_gradients(
    f: Callable[[Params], Array],
    params: Params,
    hand_grad: Grads | Callable[[Params], Grads] | None = None,
    *,
    step: float | None = None,
    max_entries: int | None = 256,
    key: PRNGKey | None = None,
) -> GradientReport:
    """Compare a hand-written gradient with ``jax.grad`` and with finite differences, per leaf.

    Args:
      f: scalar function of the parameter tree, e.g. ``lambda p: loss(apply(p, x), y)``.
      params: where to check; use float64 for tight comparisons.
      hand_grad: the hand-written gradient, as a tree like ``params`` or a function of
        ``params`` returning one; ``None`` checks autodiff against finite differences only.
      step: the finite-difference step (see :func:`finite_difference_grad`).
      max_entries: finite differences on at most this many random entries per leaf
        (``None``: all). Autodiff and hand-written gradients are compared on every entry.
      key: PRNG key for the sample; defaults to ``jax.random.key(0)``.

    Returns:
      A :class:`GradientReport`; ``report.assert_close(rtol)`` turns it into a test.

    Raises:
      ValueError: if the hand-written gradient's tree structure or a leaf's shape differs.

    >>> from fnn import backprop, losses, mlp
    >>> params = mlp.init(jax.random.key(0), [3, 4, 2], dtype=jnp.float32)
    >>> x, y = jnp.ones((5, 3)), jnp.zeros((5, 2))
    >>> report = check_gradients(lambda p: losses.mse(mlp.apply(p, x, activation="tanh"), y), params,
    ...                          lambda p: backprop.grad(p, x, y, activation="tanh"))
    >>> [leaf.path for leaf in report.leaves]
    ["[0]['W']", "[0]['b']", "[1]['W']", "[1]['b']"]
    >>> report.max_error("hand_vs_autodiff") < 1e-5
    True
    """
    key = jax.random.key(0) if key is None else key
    auto = jax.grad(f)(params)
    hand = hand_grad(params) if callable(hand_grad) else hand_grad
    if hand is not None and jax.tree.structure(hand) != jax.tree.structure(params):
        raise ValueError(
            f"hand_grad has tree structure {jax.tree.structure(hand)}, expected {jax.tree.structure(params)}"
        )
    fd, masks = finite_difference_grad(f, params, step=step, max_entries=max_entries, key=key)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    hand_leaves = jax.tree.leaves(hand) if hand is not None else [None] * len(paths)
    rows = []
    for path, a, h, d, m in zip(paths, jax.tree.leaves(auto), hand_leaves, jax.tree.leaves(fd), jax.tree.leaves(masks)):
        a, d, m = np.asarray(a), np.asarray(d), np.asarray(m)
        if h is not None:
            h = np.asarray(h)
            if h.shape != a.shape:
                raise ValueError(f"hand_grad leaf {path} has shape {h.shape}, expected {a.shape}")
        rows.append(
            LeafReport(
                path,
                a.shape,
                int(m.sum()),
                *_errors(h, a),
                *_errors(a[m], d[m]),
                *_errors(None if h is None else h[m], d[m]),
            )
        )
    return GradientReport(tuple(rows))
