r"""Predictions of a trained model in evaluation mode: outputs, probabilities, classes, means, variances.

:func:`predict` runs ``model.apply(params, model_state, x, train=False)`` (dropout off, batch
normalisation by its running statistics) and reads the output :math:`z` through the link that
the training loss implies:

========================================================  =================================  ==========================================
loss                                                      ``"proba"``, ``"classes"``         ``"mean"``, ``"variance"``
========================================================  =================================  ==========================================
``cross_entropy``, ``kl_divergence``, ``js_divergence``   :math:`\mathrm{softmax}(z)`, argmax  --
``binary_cross_entropy``                                  :math:`\sigma(z)`, :math:`z > 0`     --
``mse``, ``l1``                                           --                                 :math:`z`, --
``gaussian_nll``                                          --                                 :math:`z`, 1
``gaussian_nll_learned`` (:math:`z = [\mu, v]`)           --                                 :math:`\mu`, :math:`\max(\mathrm{softplus}(v), \epsilon)`
``mmd``, or no loss                                       --                                 --
========================================================  =================================  ==========================================

``"output"`` is :math:`z` itself for every loss. ``"classes"`` are
:func:`fnn.nn.activations.predict_classes` of the logits, the rule behind the accuracy of
:meth:`fnn.train.Trainer.evaluate` (argmax; :math:`z > 0` for a single logit). ``l1`` is the
likelihood of a Laplace distribution, whose mean (and median) is :math:`z`.

**Ensembles.** With ``ensemble=True``, ``params`` and ``model_state`` carry a leading member
axis ``[M]`` (as :func:`fnn.selection.ensemble.fit` returns them) and the members' values are
combined as a deep ensemble combines them (Lakshminarayanan et al.):

.. math:: \bar p = \frac1M \sum_m p_m, \qquad \bar\mu = \frac1M \sum_m \mu_m, \qquad
          \bar\sigma^2 = \frac1M \sum_m \sigma_m^2 + \frac1M \sum_m (\mu_m - \bar\mu)^2,

the mean of the probabilities (never of the logits), the mean of the means, and the variance of
the equal mixture of the members' Gaussians. ``"classes"`` are then the argmax of :math:`\bar p`
(:math:`\bar p > 1/2` for a single logit), and ``"output"``, the mean of the raw outputs, is
offered only where the output is the prediction (no link: ``mse``, ``l1``, ``gaussian_nll``,
``mmd``, no loss). ``return_members=True`` also returns every member's value ``[M, N, ...]``.
The combined probabilities are those of :func:`fnn.selection.ensemble.classify` (the tests hold
them equal); that module adds the members' disagreement.

**Batching.** With ``batch_size=B`` the N rows of ``x`` are cut into :math:`\lceil N/B \rceil`
chunks of B rows (the last one padded with zero rows, whose results are dropped) and mapped
with ``lax.map`` inside one compiled program, so memory grows with B, not N. In evaluation
mode every row is computed on its own, so the result is the unbatched one to rounding: a
matrix product of another number of rows may take another kernel (on one CPU, float64 results
agreed bit for bit for every chunk size tried; float32 chunks of 1 or 7 rows differed in the
last bit, chunks of 64 or more did not). The program is compiled once per model, shapes and options: a second call with
a new ``x`` of the same shape and dtype does not retrace.

Reference: B. Lakshminarayanan, A. Pritzel, C. Blundell, *Simple and Scalable Predictive
Uncertainty Estimation using Deep Ensembles*, NeurIPS 2017.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from fnn import _checks
from fnn._types import Array, ArrayLike, Params, State
from fnn.models.mlp import MLP
from fnn.models.residual import ResidualMLP
from fnn.nn import activations as _activations
from fnn.nn import losses as _losses

__all__ = ["KINDS", "predict", "kinds_for", "in_features", "check_members"]

KINDS = ("output", "proba", "classes", "mean", "variance")

_SOFTMAX = ("cross_entropy", "kl_divergence", "js_divergence")
_SIGMOID = ("binary_cross_entropy",)
_NO_LINK = ("mse", "l1", "gaussian_nll", "mmd")  # the output is the prediction


def kinds_for(loss: str | _losses.Loss | None) -> tuple[str, ...]:
    """The kinds of prediction :func:`predict` gives for a model trained with ``loss``.

    >>> kinds_for("cross_entropy"), kinds_for("gaussian_nll_learned"), kinds_for(None)
    (('output', 'proba', 'classes'), ('output', 'mean', 'variance'), ('output',))
    """
    name = _loss_name(loss)
    if name in _SOFTMAX + _SIGMOID:
        return ("output", "proba", "classes")
    if name in ("gaussian_nll", "gaussian_nll_learned"):
        return ("output", "mean", "variance")
    if name in ("mse", "l1"):
        return ("output", "mean")
    return ("output",)


def _loss_name(loss: str | _losses.Loss | None) -> str | None:
    if loss is None:
        return None
    loss = _losses.get(loss)
    if loss.name not in _losses.names():
        raise ValueError(
            f"loss {loss.name!r} is not a registered loss, so its link is unknown; "
            f"pass one of {', '.join(_losses.names())} or None"
        )
    return loss.name


def in_features(model: Any) -> int | None:
    """The input width of an :class:`~fnn.models.MLP` or :class:`~fnn.models.ResidualMLP`; None for other models.

    >>> in_features(MLP((3, 8, 1))), in_features(ResidualMLP(5, 4, 1, 2)), in_features(object())
    (3, 5, None)
    """
    if isinstance(model, MLP):
        return model.sizes[0]
    if isinstance(model, ResidualMLP):
        return model.in_features
    return None


def check_members(model: Any, params: Params, model_state: State, *, ensemble: bool) -> int | None:
    """Check ``params`` and ``model_state`` against ``model``; the member count M for an ensemble, else None.

    An ensemble's every leaf has the same leading axis ``[M]``; its first member is checked.
    Models with a ``check_params`` method (:class:`~fnn.models.MLP`,
    :class:`~fnn.models.ResidualMLP`) check the parameters' layout and shapes.

    >>> model = MLP((2, 3, 1))
    >>> params, state = jax.vmap(model.init)(jax.random.split(jax.random.key(0), 4))
    >>> check_members(model, params, state, ensemble=True)
    4
    >>> check_members(model, params, state, ensemble=False)
    Traceback (most recent call last):
    ...
    ValueError: params[0] must hold W [in, out] and b [out], got W (4, 2, 3) and b (4, 3); these params look like a stack of members: pass ensemble=True
    """
    if not isinstance(ensemble, bool):
        raise TypeError(f"ensemble must be a bool, got {ensemble!r:.60}")
    members = None
    if ensemble:
        leaves = jax.tree_util.tree_flatten_with_path((params, model_state))[0]
        if not leaves:
            raise ValueError("ensemble=True needs params with a leading member axis [M], got no arrays")
        first = jnp.shape(leaves[0][1])
        for path, leaf in leaves:
            shape = jnp.shape(leaf)
            if not shape or shape[0] != (first[0] if first else None):
                where = ("params", "model_state")[path[0].idx] + jax.tree_util.keystr(path[1:])
                raise ValueError(
                    f"ensemble=True needs one leading member axis [M] on every leaf of params and model_state; "
                    f"{where} has shape {shape}, the first leaf {first}"
                )
        members = first[0]
        params = _member_shapes(params)
    check = getattr(model, "check_params", None)
    if check is None:
        return members
    try:
        check(params)
    except (TypeError, ValueError) as e:
        if not ensemble and _is_stack(check, params):
            raise ValueError(f"{e}; these params look like a stack of members: pass ensemble=True") from e
        raise
    return members


def _member_shapes(params: Params) -> Params:
    """The shapes of one member of a stack: checks read shapes only, and slicing would compile."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a)[1:], jnp.result_type(a)), params)


def _is_stack(check: Any, params: Params) -> bool:
    """Whether ``params`` passes ``check`` once its leading axis is taken as a member axis."""
    try:
        check(_member_shapes(params))
    except (TypeError, ValueError, IndexError):
        return False
    return True


def predict(
    model: Any,
    params: Params,
    model_state: State,
    x: ArrayLike,
    *,
    loss: str | _losses.Loss | None = None,
    kind: str = "output",
    batch_size: int | None = None,
    ensemble: bool = False,
    return_members: bool = False,
) -> Array | tuple[Array, Array]:
    """A trained model's prediction for ``x`` in evaluation mode, read through its loss (see the module docstring).

    Args:
      model: a hashable :class:`~fnn.models.Model` (:class:`~fnn.models.MLP`, :class:`~fnn.models.ResidualMLP`).
      params, model_state: the trained parameters and state (``TrainState.params``,
        ``TrainState.model_state``); with ``ensemble=True`` with a leading member axis ``[M]``.
      x: ``[N, d_in]`` floating inputs, N >= 1.
      loss: the loss the model was trained with (a name or :class:`~fnn.nn.losses.Loss`), which
        fixes the link; ``None`` allows only ``kind="output"``.
      kind: ``"output"`` (the raw output, logits for a classifier), ``"proba"``, ``"classes"``,
        ``"mean"`` or ``"variance"``; :func:`kinds_for` lists those the loss offers.
      batch_size: at most this many rows at once (a positive int), or None for all N.
      ensemble: ``params`` and ``model_state`` are a stack of M members; combine their values.
      return_members: with ``ensemble=True``, also return each member's value.

    Returns:
      ``[N, d_out]`` for ``"output"``; ``[N, C]`` probabilities (``[N, 1]``, the probability of
      class 1, for a single logit); ``[N]`` int32 classes; ``[N, K]`` means and variances. With
      ``return_members=True``, ``(combined, members)`` with ``members`` of shape ``[M, ...]``.

    Raises:
      ValueError / TypeError: ``x`` not ``[N, d_in]`` floats of the model's width, ``params`` not
      the model's, a kind the loss does not offer, ``batch_size`` not a positive int.

    >>> from fnn.models import MLP
    >>> model = MLP((2, 8, 3), dropout=0.5, batch_norm=True)
    >>> params, state = model.init(jax.random.key(0))
    >>> x = jax.random.normal(jax.random.key(1), (10, 2))
    >>> proba = predict(model, params, state, x, loss="cross_entropy", kind="proba", batch_size=4)
    >>> proba.shape, bool(jnp.allclose(proba.sum(axis=1), 1))
    ((10, 3), True)
    >>> classes = predict(model, params, state, x, loss="cross_entropy", kind="classes")
    >>> bool((classes == proba.argmax(axis=1)).all())
    True
    >>> stack = jax.vmap(model.init)(jax.random.split(jax.random.key(2), 5))
    >>> mean, members = predict(model, *stack, x, loss="cross_entropy", kind="proba", ensemble=True,
    ...                         return_members=True)
    >>> mean.shape, members.shape
    ((10, 3), (5, 10, 3))
    """
    try:
        hash(model)
    except TypeError:
        raise TypeError(f"model must be hashable (a static configuration such as fnn.MLP), got {model!r:.80}") from None
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    name = _loss_name(loss)
    if kind not in kinds_for(name):
        raise ValueError(
            f"kind={kind!r} is not a prediction of a model trained with loss {name!r}; it offers {kinds_for(name)}"
        )
    link_params = _losses.get(loss).params if loss is not None else ()
    if batch_size is not None:
        batch_size = _checks.positive_int(batch_size, "batch_size")
    if not isinstance(return_members, bool):
        raise TypeError(f"return_members must be a bool, got {return_members!r:.60}")
    if return_members and not ensemble:
        raise ValueError("return_members=True needs ensemble=True (params stacked over members)")
    if ensemble and kind == "output" and name not in _NO_LINK + (None,):
        raise ValueError(
            f"the mean of the members' raw outputs is not an ensemble's prediction under loss {name!r} "
            "(it would average logits); use kind='proba' or 'classes', or return_members=True with those"
        )
    x = _checks.float_array(x, "x")
    width = in_features(model)
    if x.ndim != 2 or (width is not None and x.shape[1] != width):
        raise ValueError(f"x must have shape [N, {width if width is not None else 'd_in'}], got shape {x.shape}")
    _checks.nonempty_batch(x, "x")
    check_members(model, params, model_state, ensemble=ensemble)
    return _predict(model, params, model_state, x, name, link_params, kind, batch_size, ensemble, return_members)


def _value(z: Array, name: str | None, link_params: tuple, kind: str) -> Array:
    """One model's value of ``kind`` from its output ``z [B, d_out]``."""
    if kind == "output":
        return z
    if kind == "classes":
        return _activations.predict_classes(z)
    if kind == "proba":
        return jax.nn.softmax(z, axis=-1) if name in _SOFTMAX else jax.nn.sigmoid(z)
    if name == "gaussian_nll_learned":
        k = z.shape[-1] // 2
        mean, variance = z[:, :k], jnp.maximum(jax.nn.softplus(z[:, k:]), jnp.asarray(link_params[0], z.dtype))
    else:
        mean, variance = z, jnp.ones_like(z)  # gaussian_nll: unit variance; mse, l1: "mean" only
    return mean if kind == "mean" else variance


def _combine(zs: Array, name: str | None, link_params: tuple, kind: str) -> tuple[Array, Array]:
    """The ensemble's value of ``kind`` and the members' values, from outputs ``zs [M, B, d_out]``."""
    member = jax.vmap(lambda z: _value(z, name, link_params, kind))
    members = member(zs)
    if kind == "classes":
        mean_proba = jnp.mean(jax.vmap(lambda z: _value(z, name, link_params, "proba"))(zs), axis=0)
        return _activations.predict_classes(mean_proba, threshold=0.5), members
    if kind == "variance":
        means = jax.vmap(lambda z: _value(z, name, link_params, "mean"))(zs)
        spread = jnp.mean(jnp.square(means - jnp.mean(means, axis=0, keepdims=True)), axis=0)
        return jnp.mean(members, axis=0) + spread, members
    return jnp.mean(members, axis=0), members


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6, 7, 8, 9))
def _predict(model, params, model_state, x, name, link_params, kind, batch_size, ensemble, return_members):
    def rows(chunk: Array) -> Any:
        if not ensemble:
            return _value(model.apply(params, model_state, chunk, train=False)[0], name, link_params, kind)
        zs = jax.vmap(lambda p, s: model.apply(p, s, chunk, train=False)[0])(params, model_state)
        combined, members = _combine(zs, name, link_params, kind)
        # Rows first, so that the chunks of every result are joined along one axis.
        return (combined, jnp.moveaxis(members, 0, 1)) if return_members else combined

    n = x.shape[0]
    if batch_size is None or batch_size >= n:
        out = rows(x)
    else:
        chunks = -(-n // batch_size)
        padded = jnp.concatenate([x, jnp.zeros((chunks * batch_size - n, x.shape[1]), x.dtype)])
        out = lax.map(rows, padded.reshape(chunks, batch_size, x.shape[1]))
        out = jax.tree.map(lambda a: a.reshape(chunks * batch_size, *a.shape[2:])[:n], out)
    if return_members:
        combined, members = out
        return combined, jnp.moveaxis(members, 1, 0)
    return out
