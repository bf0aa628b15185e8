r"""Deep ensembles: M members from M keys trained in one vmapped call, their average and their disagreement.

Members differ only in their random initialisation and data order. The ensemble predicts

.. math:: \bar p(y \mid x) = \frac1M \sum_{m=1}^M p_m(y \mid x)

for classifiers (the mean of probabilities, not of logits) and the mean output for
regression. Where the members disagree the ensemble is uncertain; for classifiers the
predictive entropy splits into the mean entropy of the members and their **mutual
information** with the prediction,

.. math:: \underbrace{H[\bar p]}_{\text{total}} = \underbrace{\frac1M \sum_m H[p_m]}_{\text{expected}}
          + \underbrace{H[\bar p] - \frac1M \sum_m H[p_m]}_{\text{disagreement}\ \ge 0},

and the fraction of members that do not vote for the ensemble's class is a cruder signal. For
regression the spread of the members' outputs is the signal.

One :func:`fit` call trains all members as one program (:func:`fnn.train.many.fit_many`,
chunked and sharded over the devices); every member equals the run that
:meth:`fnn.train.Trainer.fit` makes from its key alone.

References: B. Lakshminarayanan, A. Pritzel, C. Blundell, *Simple and Scalable Predictive
Uncertainty Estimation using Deep Ensembles*, NeurIPS 2017; L. Hansen, P. Salamon, *Neural
network ensembles*, IEEE TPAMI 12(10), 1990; N. Houlsby et al., *Bayesian Active Learning for
Classification and Preference Learning*, 2011 (the mutual information).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike, Params, PRNGKey, State
from fnn.nn import activations as _activations
from fnn.train import many as _many

__all__ = ["member_keys", "fit", "outputs", "Prediction", "classify", "regress"]


def member_keys(key: PRNGKey, members: int) -> Array:
    """``members`` independent keys, one per member: ``fold_in(key, m)``.

    >>> member_keys(jax.random.key(0), 3).shape
    (3,)
    >>> member_keys(jax.random.key(0), 0)
    Traceback (most recent call last):
    ...
    ValueError: members must be a positive integer, got 0
    """
    members = _checks.positive_int(members, "members")
    return jax.vmap(lambda m: jax.random.fold_in(key, m))(jnp.arange(members))


def fit(
    trainer: Any,
    key: PRNGKey,
    members: int,
    train: tuple[ArrayLike, ...],
    validation: tuple[ArrayLike, ...] | None = None,
    hyperparams: dict[str, ArrayLike] | None = None,
    *,
    dtype: Any = jnp.float32,
    chunk_size: int | None = None,
    mesh: Any = None,
    shuffle_key: PRNGKey | None = None,
) -> tuple[Any, Any]:
    """Initialise and train ``members`` models in one compiled call (:func:`fnn.train.many.fit_many`).

    Args:
      trainer: a :class:`fnn.train.Trainer`.
      key: member ``m`` is ``trainer.init(fold_in(key, m), ...)`` then ``trainer.fit``.
      members: the ensemble size M.
      train, validation, hyperparams: as for :meth:`~fnn.train.Trainer.fit`, shared by all members.
      dtype: the parameters' dtype.
      chunk_size, mesh, shuffle_key: as for :func:`~fnn.train.many.fit_many`: at most
        ``chunk_size`` members per device at once, sharded over the mesh's ``"members"``
        axis (default: every local device), and one minibatch order for all members.

    Returns:
      ``(states, histories)`` with a leading member axis ``[M]`` on every leaf.

    >>> import fnn
    >>> x, y = fnn.data.blobs(jax.random.key(0), 40, centers=3)
    >>> trainer = fnn.train.Trainer(fnn.MLP((2, 8, 3)), "cross_entropy", "adam", epochs=20)
    >>> states, history = fit(trainer, jax.random.key(1), 4, (x, y), (x, y), {"learning_rate": 0.05})
    >>> history.val_accuracy.shape
    (4, 20)
    """
    return _many.fit_many(
        trainer,
        member_keys(key, members),
        train,
        validation,
        hyperparams,
        dtype=dtype,
        chunk_size=chunk_size,
        mesh=mesh,
        shuffle_key=shuffle_key,
    )


def outputs(model: Any, params: Params, model_state: State, x: ArrayLike) -> Array:
    """Every member's output in evaluation mode: ``[M, ...]`` for member-stacked ``params``.

    >>> import fnn
    >>> model = fnn.MLP((2, 3))
    >>> params, state = jax.vmap(lambda k: model.init(k))(member_keys(jax.random.key(0), 5))
    >>> outputs(model, params, state, jnp.ones((7, 2))).shape
    (5, 7, 3)
    """
    return jax.vmap(lambda p, s: model.apply(p, s, x, train=False)[0])(params, model_state)


class Prediction(NamedTuple):
    """An ensemble's prediction and how much its members disagree, per example.

    Attributes:
      mean: classification: the mean of the members' probabilities ``[N, C]`` (``[N, 1]``,
        the probability of class 1, for a single logit); regression: the mean output.
      members: the members' probabilities (classification) or outputs, ``[M, N, ...]``.
      disagreement: classification: the mutual information :math:`H[\\bar p] - \\overline{H[p_m]}`
        in nats ``[N]``; regression: the members' standard deviation, summed over outputs ``[N]``.
      vote_disagreement: classification: the fraction of members whose class differs from the
        ensemble's ``[N]``; regression: NaN.
    """

    mean: Array
    members: Array
    disagreement: Array
    vote_disagreement: Array


def _entropy(p: Array) -> Array:
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1)), 0), axis=-1)


def classify(logits: ArrayLike) -> Prediction:
    """Average member logits ``[M, N, C]`` (or ``[M, N, 1]`` binary) as probabilities.

    >>> logits = jnp.array([[[4.0, 0.0]], [[0.0, 4.0]]])  # two members, one example, opposite votes
    >>> pred = classify(logits)
    >>> pred.mean.round(3).tolist(), round(float(pred.disagreement[0]), 3), float(pred.vote_disagreement[0])
    ([[0.5, 0.5]], 0.603, 0.5)
    """
    logits = _checks.float_array(logits, "logits")
    _checks.ndim_in(logits, "logits", (3,))
    if logits.shape[-1] == 1:
        p1 = jax.nn.sigmoid(logits)
        probs = jnp.concatenate([1 - p1, p1], axis=-1)
    else:
        probs = jax.nn.softmax(logits, axis=-1)
    mean = jnp.mean(probs, axis=0)
    mutual_information = jnp.maximum(_entropy(mean) - jnp.mean(_entropy(probs), axis=0), 0)
    votes = _activations.predict_classes(logits)
    ensemble_class = jnp.argmax(mean, axis=-1)
    # cast before the mean: jnp.mean of booleans is float32 even with x64 enabled
    vote_disagreement = jnp.mean((votes != ensemble_class[None]).astype(logits.dtype), axis=0)
    if logits.shape[-1] == 1:
        mean, probs = mean[..., 1:], probs[..., 1:]
    return Prediction(mean, probs, mutual_information, vote_disagreement)


def regress(member_outputs: ArrayLike) -> Prediction:
    """Average member outputs ``[M, N, K]``; disagreement is their standard deviation summed over K.

    >>> pred = regress(jnp.array([[[1.0]], [[3.0]]]))
    >>> pred.mean.tolist(), pred.disagreement.tolist()
    ([[2.0]], [1.0])
    """
    member_outputs = _checks.float_array(member_outputs, "member_outputs")
    _checks.ndim_in(member_outputs, "member_outputs", (3,))
    spread = jnp.sum(jnp.std(member_outputs, axis=0), axis=-1)
    return Prediction(
        jnp.mean(member_outputs, axis=0), member_outputs, spread, jnp.full(spread.shape, jnp.nan, spread.dtype)
    )
