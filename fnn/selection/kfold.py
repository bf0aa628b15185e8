r"""k-fold cross-validation: fold indices as pure functions, all k fits in one vmapped call.

The :math:`N` examples are dealt into :math:`k` folds of sizes :math:`\lfloor N/k \rfloor` or
:math:`\lceil N/k \rceil`, disjoint and covering every example exactly once. Fold :math:`i`
validates a model trained on the other :math:`k-1` folds, and the cross-validation estimate of
the risk is the mean of the :math:`k` validation losses,

.. math:: \mathrm{CV}_k = \frac1k \sum_{i=1}^k L\big(f_{-i};\ \mathcal D_i\big).

*Stratified* folds deal each class round-robin, so every fold holds each class in (nearly) the
training-set proportion.

All k training runs have one shape, so :func:`cross_validate` trains them as one compiled
program, :func:`fnn.train.many.fit_many` over the folds' training sets. When :math:`k` does not divide
:math:`N`, the smaller folds' sets are padded to one shape with examples of weight 0. The
weights reach the loss (:func:`fnn.nn.losses.weighted`), the accuracy and the model
(:func:`fnn.models.model.value_and_grad_fn`), whose batch normalisation takes weighted batch
statistics, so a padding row enters neither the batch mean and variance nor the running
statistics (:mod:`fnn.nn.batch_norm`). Hence, for full-batch training, each fold's run is the
run :meth:`~fnn.train.Trainer.fit` makes on its unpadded training set alone, with batch
normalisation too, up to the rounding of sums over one more (zero) term: the tests hold
parameters, running statistics and validation losses equal to 1e-10 in float64 at
:math:`N = 62, k = 5`. With minibatches a padded slot still occupies a place in an epoch's
permutation, so the minibatches (and the run) differ from the unpadded run's; a minibatch of
padding alone has loss 0, gradient 0 and leaves the running statistics as they were (the
optimizer still takes it as a step: with momentum or Adam the parameters still move). A model with its own batch-mixing layers must honour
``weights`` in ``apply`` (the model protocol, :mod:`fnn.models.model`). When :math:`k`
divides :math:`N` nothing is padded and each fold's run is the very run
:meth:`~fnn.train.Trainer.fit` would make on its training set alone.

References: M. Stone, *Cross-validatory choice and assessment of statistical predictions*,
JRSS B 36, 1974; R. Kohavi, *A study of cross-validation and bootstrap for accuracy estimation
and model selection*, IJCAI 1995; T. Hastie, R. Tibshirani, J. Friedman, *The Elements of
Statistical Learning*, §7.10.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn._types import Array, ArrayLike, PRNGKey
from fnn.train import many as _many

__all__ = ["fold_ids", "Folds", "folds", "CrossValidation", "cross_validate"]


def _check_k(n: int, k: int) -> tuple[int, int]:
    n = _checks.positive_int(n, "n")
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"k must be an integer, got {k!r}") from None
    if isinstance(k, bool) or not 2 <= k <= n:
        raise ValueError(
            f"k must be an integer with 2 <= k <= n = {n} (each fold needs an example and each "
            f"training set another), got k={k!r}"
        )
    return n, k


def fold_ids(n: int, k: int, *, key: PRNGKey | None = None, labels: ArrayLike | None = None) -> Array:
    """The fold of every example: ``int32 [n]`` with values in ``[0, k)``.

    Args:
      n: the number of examples.
      k: the number of folds, ``2 <= k <= n``.
      key: shuffle the examples before dealing them (``None``: in order, example ``j`` to
        fold ``j mod k``).
      labels: integer class labels ``[n]`` (or one-hot rows ``[n, C]``, or binary targets
        ``[n, 1]`` split at 0.5) to stratify by.

    Returns:
      ``[n]`` fold indices; fold sizes differ by at most one.

    >>> fold_ids(7, 3).tolist()
    [0, 1, 2, 0, 1, 2, 0]
    >>> ids = fold_ids(6, 2, labels=jnp.array([0, 0, 0, 0, 1, 1]))
    >>> [ids[jnp.array([4, 5])].tolist(), sorted(ids[:4].tolist())]  # each fold gets one of class 1
    [[0, 1], [0, 0, 1, 1]]
    """
    n, k = _check_k(n, k)
    order = jnp.arange(n) if key is None else jax.random.permutation(key, n)
    if labels is not None:
        labels = jnp.asarray(labels)
        if labels.ndim == 2:
            # one column holds binary targets: argmax over it would put every example in class 0
            labels = (labels[:, 0] > 0.5).astype(jnp.int32) if labels.shape[1] == 1 else jnp.argmax(labels, axis=-1)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},) (or one-hot [{n}, C]), got {labels.shape}")
        if not jnp.issubdtype(labels.dtype, jnp.integer):
            raise TypeError(f"labels to stratify by must be integer classes, got dtype {labels.dtype}")
        # Group the (shuffled) examples by class, keeping their order within a class.
        order = order[jnp.argsort(labels[order], stable=True)]
    return jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32) % k)


class Folds(NamedTuple):
    """Index arrays of k train/validation splits, padded to one shape.

    Attributes:
      train: ``int32 [k, n - floor(n/k)]``, the training examples of each fold's run.
      train_weights: ``[k, n - floor(n/k)]``, 1 for an example and 0 for padding.
      validation: ``int32 [k, ceil(n/k)]``, the held-out examples of each fold.
      validation_weights: ``[k, ceil(n/k)]``, 1 for an example and 0 for padding.
    """

    train: Array
    train_weights: Array
    validation: Array
    validation_weights: Array


def folds(ids: ArrayLike, k: int, dtype: Any = jnp.float32) -> Folds:
    """The train/validation index arrays of every fold, from :func:`fold_ids`.

    Args:
      ids: ``[n]`` fold indices in ``[0, k)``.
      k: the number of folds.
      dtype: the dtype of the weights.

    >>> f = folds(fold_ids(5, 2), 2)
    >>> f.validation.tolist(), f.validation_weights.tolist()
    ([[0, 2, 4], [1, 3, 0]], [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    >>> f.train.tolist(), f.train_weights.tolist()
    ([[1, 3, 0], [0, 2, 4]], [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    """
    ids = jnp.asarray(ids)
    _checks.ndim_in(ids, "ids", (1,))
    n, k = _check_k(ids.shape[0], k)
    ok = _checks.require((ids >= 0) & (ids < k), f"ids must lie in [0, {k})")
    n_val, n_train = -(-n // k), n - n // k

    def split(i):
        val = jnp.nonzero(ids == i, size=n_val, fill_value=0)[0]
        train = jnp.nonzero(ids != i, size=n_train, fill_value=0)[0]
        size = jnp.sum(ids == i)
        val_w = (jnp.arange(n_val) < size).astype(dtype)
        train_w = (jnp.arange(n_train) < n - size).astype(dtype)
        # traced ids out of range: NaN weights, so the failed check cannot pass silently
        train_w, val_w = _checks.poison(train_w, ok), _checks.poison(val_w, ok)
        return Folds(train.astype(jnp.int32), train_w, val.astype(jnp.int32), val_w)

    return jax.vmap(split)(jnp.arange(k))


class CrossValidation(NamedTuple):
    """The k runs of :func:`cross_validate`, each field with a leading fold axis ``[k]``.

    Attributes:
      state: the final :class:`fnn.train.TrainState` of each fold's run.
      history: each run's :class:`fnn.train.History`.
      val_loss: ``[k]``, each fold's validation loss of its final (or, with early stopping,
        restored best) parameters.
      val_accuracy: ``[k]``, the same for accuracy (NaN for non-classification losses).
      score: the cross-validation estimate, the mean of ``val_loss`` over the folds.
    """

    state: Any
    history: Any
    val_loss: Array
    val_accuracy: Array
    score: Array


def cross_validate(
    trainer: Any,
    key: PRNGKey,
    data: tuple[ArrayLike, ArrayLike],
    k: int,
    hyperparams: dict[str, ArrayLike] | None = None,
    *,
    fold_key: PRNGKey | None = None,
    stratify: bool = False,
    dtype: Any = jnp.float32,
) -> CrossValidation:
    """Train and validate all k folds in one vmapped, compiled call.

    Args:
      trainer: a :class:`fnn.train.Trainer`.
      key: the runs' key; fold ``i`` initialises and shuffles from ``fold_in(key, i)``.
      data: ``(x [n, ...], y [n, ...])``.
      k: the number of folds, ``2 <= k <= n``.
      hyperparams: as for :meth:`~fnn.train.Trainer.fit`; values may be traced, so
        ``jax.vmap`` of this function over hyperparameter candidates cross-validates them all
        in one program.
      fold_key: shuffle examples into folds with this key (``None``: in order).
      stratify: deal the classes of integer (or one-hot, or binary ``[n, 1]``) targets evenly
        over the folds.
      dtype: the parameters' dtype.

    Returns:
      A :class:`CrossValidation`.

    >>> import fnn
    >>> x, y = fnn.data.blobs(jax.random.key(0), 60, centers=2)
    >>> trainer = fnn.train.Trainer(fnn.MLP((2, 1)), "binary_cross_entropy", "adam", epochs=50)
    >>> cv = cross_validate(trainer, jax.random.key(1), (x, y[:, None].astype(x.dtype)), 5, {"learning_rate": 0.1})
    >>> cv.val_loss.shape, bool(cv.val_accuracy.mean() > 0.9)
    ((5,), True)
    """
    hyperparams = {} if hyperparams is None else dict(hyperparams)
    x, y = (jnp.asarray(a) for a in data)
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(f"data inputs and targets must share their first axis, got shapes {x.shape} and {y.shape}")
    n, k = _check_k(x.shape[0], k)
    if stratify and not (jnp.issubdtype(y.dtype, jnp.integer) or y.ndim == 2):
        raise ValueError(
            f"stratify needs integer class labels [n] or one-hot rows [n, C], got dtype {y.dtype} and shape {y.shape}"
        )
    labels = y if stratify else None
    return _cross_validate(trainer, k, key, x, y, hyperparams, fold_key, labels, dtype)


@functools.partial(jax.jit, static_argnums=(0, 1, 8))
def _cross_validate(trainer, k, key, x, y, hyperparams, fold_key, labels, dtype) -> CrossValidation:
    n = x.shape[0]
    split = folds(fold_ids(n, k, key=fold_key, labels=labels), k, dtype)
    padded = n % k != 0
    train = (x[split.train], y[split.train]) + ((split.train_weights,) if padded else ())
    validation = (x[split.validation], y[split.validation]) + ((split.validation_weights,) if padded else ())
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(k))
    state, history = _many.fit_many(
        trainer, keys, train, validation, hyperparams, per_member=("train", "validation"), dtype=dtype
    )
    val_loss, val_acc = jax.vmap(trainer.evaluate)(state.params, state.model_state, *validation)
    return CrossValidation(state, history, val_loss, val_acc, jnp.mean(val_loss))
