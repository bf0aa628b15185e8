r"""Training as one compiled function: epochs of shuffled minibatches inside ``lax.scan``.

A :class:`Trainer` holds everything that fixes the shape of a run (the model, the loss, the
optimizer's name, the number of epochs, the batch size, how gradients are taken) and is
hashable, so it is a static argument. Everything a user sweeps is an array argument: the
initial state (and so the seed), the data, and the optimizer's hyperparameters. Hence

* ``trainer.fit(state, train, validation, hyperparams)`` is one ``jax.jit``-compiled program:
  the epochs are a ``lax.scan``, the minibatches of each epoch an inner ``lax.scan``, the
  data reshuffled every epoch from the run's key, the learning-rate schedule and the
  evaluation on the validation set inside;
* ``jax.vmap`` of it over seeds, hyperparameters or data sets of one shape is a single
  compiled program too, and a second call with other values never retraces.

Minibatch SGD with batch size :math:`B` takes, for each epoch, a permutation of the
:math:`N` training examples and steps through it :math:`B` at a time,

.. math:: \theta \leftarrow \theta - \eta_t \, \mathrm{update}\Big(\nabla_\theta
          \frac{1}{B} \sum_{i \in \mathcal B_t} \ell(f_\theta(x_i), y_i)\Big);

``batch_size=None`` is full-batch gradient descent and ``batch_size=1`` online (stochastic)
gradient descent. When :math:`B` does not divide :math:`N`, ``ragged="drop"`` (the default)
drops the last :math:`N \bmod B` examples of each epoch's permutation (a different few each
epoch), and ``ragged="keep"`` steps on them as one smaller batch after the full ones (a second
batch shape, compiled once).

A non-finite loss or gradient is never trained through: from the first step where one appears
the parameters stop changing, the history records the epoch and step, and :meth:`Trainer.fit`
raises ``FloatingPointError`` naming them when it is called eagerly (under a user's ``vmap``
or ``jit``, read :attr:`History.nonfinite_epoch` and :func:`fnn.checking.raise_if_nonfinite`).

Reference: L. Bottou, F. Curtis, J. Nocedal, *Optimization Methods for Large-Scale Machine
Learning*, SIAM Review 60(2), 2018.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fnn import _checks, checking
from fnn._types import Array, ArrayLike, Params, PRNGKey, State
from fnn.models import model as _model
from fnn.nn import activations as _activations
from fnn.nn import losses as _losses
from fnn.optim import optimizers as _optimizers
from fnn.train import early_stopping as _early_stopping
from fnn.train import many as _many
from fnn.train import mixup as _mixup
from fnn.train import penalties as _penalties
from fnn.train import progress as _progress

__all__ = ["TrainState", "History", "Trainer", "REGULARIZATION"]

# (x, y) or (x, y, weights): weights [N] >= 0 weigh each example's loss (0 removes it).
Data = tuple[ArrayLike, ...]
# Hyperparameters the Trainer itself consumes; every other key goes to the optimizer.
REGULARIZATION = ("l1", "l2", "weight_decay", "mixup_alpha")
Hyperparams = Mapping[str, ArrayLike]


class TrainState(NamedTuple):
    """Everything a run carries from one epoch to the next; checkpoint it to resume.

    Fitting :math:`k` epochs, then fitting on from the returned state (or from its
    :mod:`fnn.train.checkpoint` round trip) gives bit-identical parameters, model state and
    optimizer state to one fit of all the epochs, on the same device and data, since every
    random draw and the schedule's rate are functions of what the state carries. With a
    :attr:`Trainer.schedule`, the calls must declare the whole run
    (:attr:`Trainer.total_epochs`), so that each call's schedule is the whole run's.

    Attributes:
      params: the model's parameters.
      model_state: the model's running state (``()`` for a plain MLP).
      opt_state: the optimizer's state (its step count drives the schedule).
      key: the run's PRNG key; epoch ``e`` draws from ``fold_in(key, e)``, so a resumed run
        sees the same shuffles and dropout masks as an uninterrupted one.
      epoch: the number of epochs completed, an int32 scalar.
    """

    params: Params
    model_state: State
    opt_state: optax.OptState
    key: PRNGKey
    epoch: Array


class History(NamedTuple):
    """Per-epoch metrics of a run, each ``[epochs]`` (NaN where not measured).

    Attributes:
      train_loss: the mean over the epoch's minibatches of the loss before each update.
      val_loss: the loss on the validation set after the epoch.
      val_accuracy: the accuracy on the validation set after the epoch, for classification
        losses (``cross_entropy``, ``binary_cross_entropy``), else NaN.
      nonfinite_epoch: the epoch (counted from the start of training) of the first non-finite
        loss or gradient, -1 if none; a scalar int32.
      nonfinite_step: the minibatch step within that epoch, -1 if none.
      best_epoch: with early stopping, the epoch whose parameters were kept (the best
        validation metric), -1 if it never improved or without early stopping.
      stop_epoch: with early stopping, the epoch after which training stopped, -1 if it ran
        to the end or without early stopping. The metrics of later epochs are NaN.
    """

    train_loss: Array
    val_loss: Array
    val_accuracy: Array
    nonfinite_epoch: Array
    nonfinite_step: Array
    best_epoch: Any = -1
    stop_epoch: Any = -1


def _examples(data: Data, name: str) -> tuple[Array, Array, Array | None]:
    """``(x, y, weights or None)`` as arrays sharing one first axis with at least one example,
    else a clear error."""
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise TypeError(
            f"{name} must be a tuple (x, y) or (x, y, weights), got {type(data).__name__} of length {len(data) if isinstance(data, (tuple, list)) else '-'}"
        )
    x, y = (jnp.asarray(a) for a in data[:2])
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{name} inputs and targets must share their first axis, got shapes {x.shape} and {y.shape}")
    _checks.nonempty_batch(x, f"{name} inputs")
    weights = data[2] if len(data) == 3 else None
    if weights is not None:
        weights = _checks.float_array(weights, f"{name} weights")
        if weights.shape != x.shape[:1]:
            raise ValueError(f"{name} weights must have shape ({x.shape[0]},), one per example, got {weights.shape}")
        _checks.require(weights >= 0, f"{name} weights must be non-negative")
    return x, y, weights


def _accuracy(output: Array, target: Array, weights: Array | None = None) -> Array:
    predicted = _activations.predict_classes(output)
    if jnp.issubdtype(target.dtype, jnp.integer):
        truth = target
    elif target.ndim == output.ndim and target.shape[-1] == 1:
        truth = (target[..., 0] > 0.5).astype(jnp.int32)
    else:
        truth = jnp.argmax(target, axis=-1)
    correct = (predicted == truth).astype(output.dtype)
    if weights is None:
        return jnp.mean(correct)
    weights = weights.astype(output.dtype)
    return jnp.sum(weights * correct) / jnp.maximum(jnp.sum(weights), jnp.finfo(output.dtype).tiny)


_CLASSIFICATION = ("cross_entropy", "binary_cross_entropy")


@dataclasses.dataclass(frozen=True)
class Trainer:
    r"""The static configuration of a training run, and the compiled run itself.

    Attributes:
      model: a :class:`~fnn.model.Model` (hashable, e.g. :class:`fnn.MLP`).
      loss: a loss name or :class:`~fnn.losses.Loss`.
      optimizer: an optimizer name from :mod:`fnn.optim.optimizers`, or any optax optimizer
        as a hashable factory ``(**hyperparams) -> optax.GradientTransformation`` (``optax.lion``,
        say, or a module-level function); either way its hyperparameters are passed to
        :meth:`fit` as arrays. The regularisation keys (``"l1"``, ``"l2"``, ``"weight_decay"``,
        ``"mixup_alpha"``) are taken out first; the factory gets the rest.
      epochs: the number of epochs each call of :meth:`fit` runs (0 returns the state as is).
      batch_size: examples per step; ``None`` for full-batch, 1 for online gradient descent.
      ragged: ``"drop"`` or ``"keep"`` the last ``N mod batch_size`` examples of each epoch.
      shuffle: reshuffle the training set every epoch (ignored for full batches).
      schedule: ``None`` for a constant learning rate, or a function
        ``(learning_rate, total_steps) -> optax schedule`` such as
        :func:`fnn.schedules.classic_step_decay`, where ``total_steps`` counts the steps of
        the whole run, :attr:`total_epochs` epochs. The schedule is evaluated at the
        optimizer state's step count, which a resumed state carries on, so a run split into
        several :meth:`fit` calls (through a checkpoint or not) follows the one schedule.
      gradient: ``"autodiff"`` (``jax.grad``) or ``"backprop"`` (the model's hand-written chain rule).
      progress: show progress every this many epochs (and at the last) from inside the
        compiled loop; 0 is silent. Under ``jax.vmap`` and :meth:`fit_many` it is one line for
        the whole batch of runs (see :mod:`fnn.train.progress`): epoch, rate, time left, the
        members' train and validation losses, and early stopping. A tqdm bar on stderr if
        ``tqdm`` is installed (``fnn[progress]``), else plain lines on stdout.
      penalize: which parameter leaves the ``l1``/``l2`` penalties and ``weight_decay`` touch:
        ``"weights"`` (the default: not biases, not batch-norm scales), ``"all"``, or a
        function ``(path, leaf) -> bool`` (see :func:`fnn.penalties.mask`).
      early_stopping: an :class:`fnn.early_stopping.EarlyStopping`, run on the device after
        every epoch on the validation metric (``fit`` then needs validation data), or ``None``.
      total_epochs: the length of the whole run the :attr:`schedule` spans, in epochs, when
        it is trained in several :meth:`fit` calls of :attr:`epochs` each; ``None`` (the
        default) is :attr:`epochs`, one call. ``Trainer(epochs=10, total_epochs=20)`` fitted
        twice (resuming from the first call's state, or its checkpoint) gives bit-identical
        parameters to ``Trainer(epochs=20)`` fitted once; epochs past ``total_epochs`` keep
        the schedule's last rate.
      dtype: the one precision switch: ``None`` (the default) leaves dtypes as given
        (parameters float32 unless :meth:`init` is told otherwise); a float dtype such as
        ``jnp.float64`` makes :meth:`init` create parameters of it and :meth:`fit`,
        :meth:`evaluate` and :meth:`fit_many` cast float data, example weights and
        hyperparameters to it. float64 needs JAX's 64-bit mode, which the user switches on
        (``jax.config.update("jax_enable_x64", True)`` at start-up); fnn never flips it.

    Regularisation is switched on by keys of the ``hyperparams`` dict, so its strengths may
    be traced and swept like the learning rate (the keys themselves fix the compiled program):

    * ``"l1"``, ``"l2"``: a penalty :math:`\lambda_1 \sum |w| + \frac{\lambda_2}{2} \sum w^2`
      added to the loss (:mod:`fnn.penalties`, with its hand-written gradient);
    * ``"weight_decay"``: decoupled weight decay :math:`\theta \leftarrow \theta - \eta_t
      \lambda \theta` after the optimizer's step, for every optimizer (for ``"adamw"`` it is
      AdamW's own, on the same leaves);
    * ``"mixup_alpha"``: every training batch mixed by :func:`fnn.mixup.mixup` (integer labels
      one-hot encoded to the model's output width).

    The ``train_loss`` of the :class:`History` is the data loss on the (mixed) batch, without
    the penalty. Training and validation data may carry per-example weights ``(x, y, w)``
    (0 drops an example: padding); see :func:`fnn.losses.weighted`.

    >>> import fnn
    >>> trainer = Trainer(fnn.MLP((2, 8, 1), activation="tanh"), loss="binary_cross_entropy",
    ...                   optimizer="sgd", epochs=300)
    >>> x, y = fnn.data.truth_table("xor")
    >>> state = trainer.init(jax.random.key(0), {"learning_rate": 1.0})
    >>> state, history = trainer.fit(state, (x, y[:, None]), (x, y[:, None]), {"learning_rate": 1.0})
    >>> int(state.epoch), float(history.val_accuracy[-1])
    (300, 1.0)
    """

    model: Any
    loss: Any
    optimizer: str | Callable[..., optax.GradientTransformation] = "adam"
    epochs: int = 10
    batch_size: int | None = None
    ragged: str = "drop"
    shuffle: bool = True
    schedule: Callable[[ArrayLike, int], Callable[[Array], Array]] | None = None
    gradient: str = "autodiff"
    progress: int = 0
    penalize: Any = "weights"
    early_stopping: _early_stopping.EarlyStopping | None = None
    total_epochs: int | None = None
    dtype: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, _model.Model):
            raise TypeError(
                f"model must follow the fnn.models.Model protocol (init and apply), got {type(self.model).__name__}"
            )
        object.__setattr__(self, "loss", _losses.get(self.loss))
        if isinstance(self.optimizer, str):
            if self.optimizer not in _optimizers.names():
                raise ValueError(f"unknown optimizer {self.optimizer!r}; known names: {', '.join(_optimizers.names())}")
        elif callable(self.optimizer):
            try:
                hash(self.optimizer)
            except TypeError:
                raise TypeError(
                    "optimizer must be hashable (the Trainer is a static argument of jax.jit): pass a module-level "
                    f"function or optax's own factory, not {type(self.optimizer).__name__}"
                ) from None
        else:
            raise TypeError(
                "optimizer must be an optimizer name or a factory (**hyperparams) -> optax.GradientTransformation, "
                f"got {type(self.optimizer).__name__}"
            )
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, np.integer)) or self.epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {self.epochs!r}")
        if self.batch_size is not None:
            _checks.positive_int(self.batch_size, "batch_size")
        if self.ragged not in ("drop", "keep"):
            raise ValueError(f"ragged must be 'drop' or 'keep', got {self.ragged!r}")
        if self.gradient not in ("autodiff", "backprop"):
            raise ValueError(f"gradient must be 'autodiff' or 'backprop', got {self.gradient!r}")
        if self.gradient == "backprop" and not isinstance(self.model, _model.HandGradient):
            raise TypeError(f"{type(self.model).__name__} has no hand-written backprop; use gradient='autodiff'")
        if isinstance(self.progress, bool) or not isinstance(self.progress, int) or self.progress < 0:
            raise ValueError(f"progress must be a non-negative integer (epochs between lines), got {self.progress!r}")
        if self.total_epochs is not None:
            total = self.total_epochs
            if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < max(self.epochs, 1):
                raise ValueError(
                    f"total_epochs must be None or an integer >= epochs ({self.epochs}) and >= 1, got {total!r}"
                )
        if self.dtype is not None:
            try:
                dtype = jnp.dtype(self.dtype)
            except TypeError:
                dtype = None
            if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
                raise TypeError(f"dtype must be None or a float dtype such as jnp.float64, got {self.dtype!r}")
            object.__setattr__(self, "dtype", dtype)
        if not (callable(self.penalize) or self.penalize in _penalties.LEAVES):
            raise ValueError(
                f"penalize must be one of {_penalties.LEAVES} or a function (path, leaf) -> bool, got {self.penalize!r}"
            )
        stopping = self.early_stopping
        if stopping is not None:
            if not isinstance(stopping, _early_stopping.EarlyStopping):
                raise TypeError(
                    f"early_stopping must be an fnn.train.EarlyStopping or None, got {type(stopping).__name__}"
                )
            if stopping.monitor == "val_accuracy" and self.loss.name not in _CLASSIFICATION:
                raise ValueError(
                    f"early stopping on val_accuracy needs a classification loss {_CLASSIFICATION}, got {self.loss.name!r}"
                )

    # ------------------------------------------------------------------------------------
    # Pieces of a run.
    # ------------------------------------------------------------------------------------

    def _split(self, hyperparams: Hyperparams) -> tuple[dict[str, Any], dict[str, Any]]:
        """``hyperparams`` as (the optimizer's, the regularisers' of :data:`REGULARIZATION`)."""
        optimizer = dict(hyperparams)
        own = REGULARIZATION if self.optimizer != "adamw" else tuple(k for k in REGULARIZATION if k != "weight_decay")
        return optimizer, {k: optimizer.pop(k) for k in own if k in optimizer}

    def _check_opt_state(self, state: TrainState, hyperparams: Hyperparams) -> None:
        """A clear error when ``state`` was initialised for other hyperparameter keys."""
        expected = jax.tree.structure(jax.eval_shape(self._optimizer(hyperparams, None).init, state.params))
        if jax.tree.structure(state.opt_state) != expected:
            raise ValueError(
                "state.opt_state does not fit these hyperparameters: initialise the state with the same "
                f"hyperparams keys as fit gets (here {sorted(hyperparams)}); 'weight_decay' adds to the optimizer's state"
            )

    @staticmethod
    def _check_regularizers(hyperparams: Hyperparams) -> None:
        """Concrete regularisation strengths must be >= 0 (traced ones turn the run into NaN)."""
        for name in REGULARIZATION:
            if name in hyperparams and _checks.is_concrete(hyperparams[name]):
                _checks.in_range(hyperparams[name], f"hyperparams[{name!r}]", 0.0, math.inf, low_closed=True)

    def _optimizer(self, hyperparams: Hyperparams, total_steps: int | None) -> optax.GradientTransformation:
        """The optimizer; ``total_steps=None`` where only its state's structure matters (init)."""
        hyperparams, regularizers = self._split(hyperparams)
        if self.schedule is not None:
            if "learning_rate" not in hyperparams:
                raise ValueError("a schedule needs hyperparams['learning_rate'], its base value")
            if total_steps is None:
                total_steps = max(self.epochs, 3)  # any valid length: the state's structure does not depend on it
            hyperparams["learning_rate"] = self.schedule(hyperparams["learning_rate"], total_steps)

        def chosen(params):
            return _penalties.mask(params, self.penalize)

        if self.optimizer == "adamw":
            hyperparams["mask"] = chosen
        named = isinstance(self.optimizer, str)
        if "weight_decay" in regularizers and not named and "learning_rate" not in hyperparams:
            raise ValueError(
                "weight_decay with an optimizer factory needs hyperparams['learning_rate'] (it scales the decay)"
            )
        optimizer = _optimizers.get(self.optimizer, **hyperparams) if named else self._from_factory(hyperparams)
        if "weight_decay" not in regularizers:
            return optimizer
        if "learning_rate" in hyperparams:
            learning_rate = hyperparams["learning_rate"]
        else:
            learning_rate = _optimizers.default_learning_rate(self.optimizer)
        decay = _penalties.decoupled_weight_decay(learning_rate, regularizers["weight_decay"], leaves=self.penalize)
        return optax.chain(optimizer, decay)

    def _from_factory(self, hyperparams: dict[str, Any]) -> optax.GradientTransformation:
        """The user's optax optimizer, built from the hyperparameters; a clear error otherwise."""
        name = getattr(self.optimizer, "__name__", type(self.optimizer).__name__)
        try:
            optimizer = self.optimizer(**hyperparams)
        except TypeError as e:
            raise TypeError(
                f"the optimizer factory {name} does not take the hyperparameters {sorted(hyperparams)}: {e}"
            ) from e
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(
                f"the optimizer factory {name} must return an optax.GradientTransformation, got {type(optimizer).__name__}"
            )
        return optimizer

    def _batches(self, n: int) -> tuple[int, int, int]:
        """(batch size, full batches per epoch, size of the extra ragged batch or 0)."""
        if self.batch_size is None or self.batch_size >= n:
            return n, 1, 0
        full, rest = divmod(n, self.batch_size)
        return self.batch_size, full, rest if self.ragged == "keep" else 0

    def param_dtype(self, dtype: Any = None) -> Any:
        """The parameters' dtype: ``dtype`` if given, else the Trainer's :attr:`dtype`, else float32.

        Raises a ``ValueError`` if both are given and differ, or if the dtype is 64-bit and
        JAX's 64-bit mode is off (fnn does not switch global configuration).

        >>> import fnn
        >>> Trainer(fnn.MLP((2, 1)), "mse").param_dtype()
        dtype('float32')
        """
        if dtype is not None:
            chosen = jnp.dtype(dtype)
        else:
            chosen = jnp.dtype(jnp.float32) if self.dtype is None else self.dtype
        if dtype is not None and self.dtype is not None and chosen != self.dtype:
            raise ValueError(f"dtype={chosen} contradicts the Trainer's dtype={self.dtype}: give one of them")
        if chosen.itemsize == 8 and not jax.config.jax_enable_x64:
            raise ValueError(
                f"dtype {chosen} needs JAX's 64-bit mode, which is off: call "
                "jax.config.update('jax_enable_x64', True) at start-up (or set JAX_ENABLE_X64=1) before creating "
                "arrays; fnn does not switch it for you"
            )
        return chosen

    def cast(self, tree: Any) -> Any:
        """``tree`` with every float leaf (and Python number) cast to the Trainer's :attr:`dtype`; as is without one.

        Integer and boolean arrays (class labels, counts) are left alone.

        >>> import fnn
        >>> Trainer(fnn.MLP((2, 1)), "mse", dtype=jnp.float16).cast({"learning_rate": 0.1})["learning_rate"].dtype
        dtype('float16')
        """
        if self.dtype is None:
            return tree
        dtype = self.param_dtype()

        def cast(leaf):
            if isinstance(leaf, (float, int)) and not isinstance(leaf, bool):
                return jnp.asarray(leaf, dtype)
            if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating):
                return jnp.asarray(leaf).astype(dtype)
            return leaf  # integer labels, keys, and whatever a user's optimizer factory takes

        return jax.tree.map(cast, tree)

    def init(self, key: PRNGKey, hyperparams: Hyperparams, *, dtype: Any = None) -> TrainState:
        """A fresh :class:`TrainState`: the model's parameters and state from ``key``, the optimizer's state.

        The model is initialised from ``fold_in(key, 0)`` and the run draws its shuffles from
        ``fold_in(key, 1)``, so one key gives one reproducible run. ``hyperparams`` must hold
        the same keys as those later given to :meth:`fit` (``"weight_decay"`` adds to the
        optimizer's state); their values do not matter here. ``dtype`` is the parameters'
        dtype; ``None`` is the Trainer's :attr:`dtype`, or float32 (see :meth:`param_dtype`).
        """
        dtype = self.param_dtype(dtype)
        params, model_state = self.model.init(jax.random.fold_in(key, 0), dtype=dtype)
        opt_state = self._optimizer(hyperparams, None).init(params)
        return TrainState(params, model_state, opt_state, jax.random.fold_in(key, 1), jnp.zeros((), jnp.int32))

    def step(
        self,
        state: TrainState,
        x: Array,
        y: Array,
        hyperparams: Hyperparams,
        *,
        key: PRNGKey | None = None,
        total_steps: int | None = None,
    ) -> tuple[TrainState, Array]:
        """One compiled optimizer step on the batch ``(x, y)``: the new state and the loss before it.

        The epoch counter is unchanged. With a :attr:`schedule`, ``total_steps`` is the length
        of the run it spans (required). Driving this from a Python loop is the slow way to
        train; :meth:`fit` compiles the whole loop.
        """
        if self.schedule is not None and total_steps is None:
            raise ValueError("with a schedule, step needs total_steps, the length of the run the schedule spans")
        hyperparams = self.cast(dict(hyperparams))
        self._check_regularizers(hyperparams)
        if "mixup_alpha" in hyperparams and key is None:
            raise ValueError("mixup draws its mixing from the step's key: pass key=...")
        x, y = self.cast((jnp.asarray(x), jnp.asarray(y)))
        return _step(self, state, x, y, hyperparams, key, total_steps)

    def _update(
        self,
        optimizer,
        regularizers: dict[str, Any],
        state: TrainState,
        x: Array,
        y: Array,
        weights: Array | None,
        key: PRNGKey | None,
    ):
        """One step: (params, model state, optimizer state, all finite?, data loss)."""
        if "mixup_alpha" in regularizers:
            mix_key, key = jax.random.split(key)
            width = jax.eval_shape(lambda: self.model.apply(state.params, state.model_state, x)[0]).shape[-1]
            x, y = _mixup.mixup(mix_key, x, y, regularizers["mixup_alpha"], num_classes=width)
        # The weights weigh the loss and the model's batch statistics alike (value_and_grad_fn).
        value_and_grad = _model.value_and_grad_fn(self.model, self.loss, method=self.gradient)
        (value, model_state), grads = value_and_grad(
            state.params, state.model_state, x, y, key=key, train=True, weights=weights
        )
        if "l1" in regularizers or "l2" in regularizers:
            _, penalty_grads = _penalties.value_and_grad(
                state.params, l1=regularizers.get("l1", 0.0), l2=regularizers.get("l2", 0.0), leaves=self.penalize
            )
            grads = jax.tree.map(jnp.add, grads, penalty_grads)
        finite = jnp.isfinite(value) & _checks.all_finite(grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return params, model_state, opt_state, finite, value

    def evaluate(
        self, params: Params, model_state: State, x: ArrayLike, y: ArrayLike, weights: ArrayLike | None = None
    ) -> tuple[Array, Array]:
        """``(loss, accuracy)`` of the model in evaluation mode on ``(x, y)`` (weighted by
        ``weights [N]`` if given); accuracy is NaN for losses other than ``cross_entropy`` and
        ``binary_cross_entropy``. With a Trainer :attr:`dtype`, float data are cast to it first."""
        if self.dtype is not None:
            x, y, weights = self.cast(
                (jnp.asarray(x), jnp.asarray(y), None if weights is None else jnp.asarray(weights))
            )
        output, _ = self.model.apply(params, model_state, x, train=False)
        loss = (self.loss if weights is None else _losses.weighted(self.loss, weights))(output, y)
        if self.loss.name in _CLASSIFICATION:
            weights = None if weights is None else jnp.asarray(weights)
            return loss, _accuracy(output, jnp.asarray(y), weights).astype(loss.dtype)
        return loss, jnp.full((), jnp.nan, loss.dtype)

    # ------------------------------------------------------------------------------------
    # The compiled run.
    # ------------------------------------------------------------------------------------

    def fit(
        self,
        state: TrainState,
        train: Data,
        validation: Data | None = None,
        hyperparams: Hyperparams | None = None,
        *,
        shuffle_key: PRNGKey | None = None,
        mesh: jax.sharding.Mesh | None = None,
        data_axis: str = "data",
        chunk: _progress.Chunk | None = None,
    ) -> tuple[TrainState, History]:
        """Run :attr:`epochs` epochs from ``state``; return the final state and the history.

        With a Trainer :attr:`dtype`, the float data, example weights and hyperparameters
        are cast to it (the state must then be of that dtype, as :meth:`init` makes it).
        With a :attr:`schedule`, epoch ``e`` of the run (``state.epoch``) has the rates of
        epoch ``e`` of one uninterrupted run of :attr:`total_epochs` epochs.

        Args:
          state: from :meth:`init`, or from a previous :meth:`fit` (or a checkpoint) to resume.
          train: ``(x [N, ...], y [N, ...])``.
          validation: ``(x_val, y_val)`` evaluated after every epoch, or ``None``.
          hyperparams: the optimizer's keyword arguments, e.g. ``{"learning_rate": 1e-3}``;
            values may be traced (a sweep is a ``jax.vmap`` over them).
          shuffle_key: a single PRNG key that fixes the order of the training examples apart
            from the state: epoch ``e`` (``state.epoch``) is shuffled by
            ``fold_in(shuffle_key, e)`` instead of by the state's key, which still draws
            every step's key. ``None`` (the default) shuffles from the state's key. Under a
            ``jax.vmap`` over seeds that does not map ``shuffle_key``, all members then see
            the same minibatches, so their first layer's input is shared and XLA computes
            the members' first-layer products as one matmul; keep ``state.epoch`` unmapped
            too (create the states inside the vmapped function, or ``in_axes`` ``None`` for
            it), else the shared order is gathered once per member.
          mesh: data parallelism: split every minibatch over the ``data_axis`` of this
            :class:`jax.sharding.Mesh` (its batch sizes must divide evenly); each device
            computes the loss and gradient of its share and XLA sums the shares with the
            mesh's collectives (sharding propagation). The result equals the one-device run
            up to the order of that sum: within float32 rounding, and within 1e-12 in
            float64. ``None`` (the default) leaves placement to JAX.
          data_axis: the mesh axis the minibatches are split over.
          chunk: for the :attr:`progress` display only: the :class:`fnn.train.progress.Chunk`
            of a larger program this call trains (:func:`fnn.train.fit_many` passes it).

        Returns:
          ``(state, history)``. Called eagerly, a non-finite loss or gradient raises
          ``FloatingPointError`` naming the epoch and step; under tracing it is recorded in
          the history and the parameters stop changing at that step.
        """
        hyperparams = self.cast({} if hyperparams is None else dict(hyperparams))
        self._check_regularizers(hyperparams)
        train = self.cast(_examples(train, "train"))
        if validation is not None:
            validation = self.cast(_examples(validation, "validation"))
        elif self.early_stopping is not None:
            raise ValueError("early stopping watches the validation metric: pass validation data to fit")
        if shuffle_key is not None:
            shuffle_key = _checks.single_key(shuffle_key, "shuffle_key")
        split = None if mesh is None else self._data_sharding(mesh, data_axis, train[0].shape[0])
        if self.dtype is not None:
            self._check_state_dtype(state)
        try:
            state, history = _fit(self, state, train, validation, hyperparams, shuffle_key, split, chunk)
        except Exception:
            # Checked only on failure: the check traces the optimizer, which would cost each call.
            self._check_opt_state(state, hyperparams)
            raise
        if _checks.is_concrete(history.nonfinite_epoch) and np.ndim(history.nonfinite_epoch) == 0:
            checking.raise_if_nonfinite(history)
        return state, history

    def _check_state_dtype(self, state: TrainState) -> None:
        """A clear error when ``state``'s float parameters are not of the Trainer's :attr:`dtype`."""
        got = {jnp.result_type(leaf) for leaf in jax.tree.leaves(state.params)}
        got = {d for d in got if jnp.issubdtype(d, jnp.floating)}
        if got and got != {self.dtype}:
            raise ValueError(
                f"the state's parameters are {', '.join(sorted(map(str, got)))} but the Trainer's dtype is "
                f"{self.dtype}: create the state with this Trainer's init (or without dtype=...)"
            )

    def _data_sharding(self, mesh: Any, data_axis: str, n: int) -> jax.sharding.NamedSharding:
        """The sharding of a stack of minibatches ``[steps, B, ...]`` split over ``data_axis``."""
        devices = _checks.mesh_axis(mesh, data_axis, "data_axis")
        batch, _, rest = self._batches(n)
        for size, what in ((batch, "batch"), (rest, "last (ragged) batch")):
            if size % devices:
                raise ValueError(
                    f"the {what} of {size} examples does not split over the {devices} devices of mesh axis "
                    f"{data_axis!r}: choose a batch_size (and training-set size) divisible by {devices}"
                )
        return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, data_axis))

    def _monitor(self) -> str | None:
        return None if self.early_stopping is None else self.early_stopping.monitor

    def fit_many(self, keys: PRNGKey, train: Data, validation: Data | None = None, hyperparams=None, **options):
        """Initialise and train many members in one compiled program: :func:`fnn.train.many.fit_many`."""
        return _many.fit_many(self, keys, train, validation, hyperparams, **options)

    def _run(
        self,
        state: TrainState,
        train: tuple[Array, Array, Array | None],
        validation: tuple[Array, Array, Array | None] | None,
        hyperparams: Hyperparams,
        shuffle_key: PRNGKey | None = None,
        split: jax.sharding.NamedSharding | None = None,
        chunk: _progress.Chunk | None = None,
    ) -> tuple[TrainState, History]:
        """The traced body of :meth:`fit` (which checks the arguments and jits it): :attr:`epochs`
        epochs as one ``lax.scan``, then early stopping's restore of the best epoch."""
        n = train[0].shape[0]
        batch, full, rest = self._batches(n)
        # The schedule spans the whole run and reads the optimizer's step count, which a
        # resumed state carries on: the rates do not depend on how the run is split into calls.
        total_epochs = self.epochs if self.total_epochs is None else self.total_epochs
        optimizer = self._optimizer(hyperparams, total_epochs * (full + (1 if rest else 0)))
        _, regularizers = self._split(hyperparams)
        loop = _Loop(
            self,
            optimizer,
            regularizers,
            train,
            validation,
            shuffle_key,
            split,
            batch,
            full,
            rest,
            jax.tree.leaves(state.params)[0].dtype,
            None if not self.progress else _progress.Display(self.progress, self.epochs, self._monitor()),
            chunk,
        )
        stopping = self.early_stopping
        watch = None if stopping is None else stopping.init(state.params, state.model_state, loop.dtype)
        start = _Carry(state, jnp.asarray(False), jnp.full((2,), -1, jnp.int32))
        # The scan's own counter (never batched by a vmap) decides the epochs that report.
        index = jnp.arange(self.epochs, dtype=jnp.int32) if self.progress else None
        (end, watch), (train_loss, val_loss, val_acc) = jax.lax.scan(
            loop.epoch, (start, watch), index, length=self.epochs
        )
        state, best_epoch, stop_epoch = end.state, jnp.asarray(-1, jnp.int32), jnp.asarray(-1, jnp.int32)
        if stopping is not None:
            best_epoch, stop_epoch = watch.best_epoch, watch.stop_epoch
            if stopping.restore_best:
                state = state._replace(params=watch.best_params, model_state=watch.best_model_state)
        return state, History(train_loss, val_loss, val_acc, end.first_bad[0], end.first_bad[1], best_epoch, stop_epoch)


class _Carry(NamedTuple):
    """What the epoch loop carries: the run, and the guard against non-finite values."""

    state: TrainState
    stopped: Array  # a non-finite loss or gradient was met: every update is held from then on
    first_bad: Array  # [epoch, step] where it was first met; -1s if never


class _Loop(NamedTuple):
    """The pieces of one compiled run, read top to bottom: an epoch, its steps, the guards."""

    trainer: Trainer
    optimizer: optax.GradientTransformation
    regularizers: dict[str, Any]
    train: tuple[Array, Array, Array | None]
    validation: tuple[Array, Array, Array | None] | None
    shuffle_key: PRNGKey | None
    split: jax.sharding.NamedSharding | None  # minibatches [steps, B, ...] split over a data axis
    batch: int  # examples per full batch
    full: int  # full batches per epoch
    rest: int  # examples in the extra ragged batch, 0 for none
    dtype: Any  # the parameters' dtype, that of every metric
    display: _progress.Display | None  # the host side of the progress lines, None when silent
    chunk: _progress.Chunk | None  # which chunk of fit_many's members this is, for the display

    def epoch(
        self, carry: tuple[_Carry, Any], index: Array | None
    ) -> tuple[tuple[_Carry, Any], tuple[Array, Array, Array]]:
        """One epoch, then early stopping's verdict (a member that has stopped skips its
        epochs), then the progress display on its epochs."""
        run, watch = carry
        stopping = self.trainer.early_stopping
        if stopping is None:
            run, metrics = self.train_epoch(run)
        else:
            # Under vmap a stopped member computes its epochs and discards them.
            run, metrics = jax.lax.cond(watch.stopped, self.skip_epoch, self.train_epoch, run)
            metric = metrics[1] if stopping.monitor == "val_loss" else metrics[2]
            watch = stopping.update(watch, metric, run.state.epoch, run.state.params, run.state.model_state)
        run = run._replace(state=run.state._replace(epoch=run.state.epoch + 1))
        if self.display is not None:
            _progress.report(self.display, index, metrics, run.stopped, watch, self.chunk)
        return (run, watch), metrics

    def train_epoch(self, run: _Carry) -> tuple[_Carry, tuple[Array, Array, Array]]:
        """Every minibatch step of one epoch, then the validation metrics."""
        state = run.state
        n = self.train[0].shape[0]
        epoch_key = jax.random.fold_in(state.key, state.epoch)
        if self.shuffle_key is None:
            order_key = jax.random.fold_in(epoch_key, 0)
        else:
            order_key = jax.random.fold_in(self.shuffle_key, state.epoch)
        shuffle = self.trainer.shuffle and self.batch < n
        order = jax.random.permutation(order_key, n) if shuffle else jnp.arange(n)
        step_keys = jax.random.split(jax.random.fold_in(epoch_key, 1), self.full + (1 if self.rest else 0))
        idx = order[: self.full * self.batch].reshape(self.full, self.batch)
        run, losses = jax.lax.scan(
            self.step, run, (self.batches(idx), step_keys[: self.full], jnp.arange(self.full, dtype=jnp.int32))
        )
        if self.rest:
            last = self.batches(order[None, self.full * self.batch :])
            last = jax.tree.map(lambda a: a[0], last)
            run, last_loss = self.step(run, (last, step_keys[self.full], jnp.int32(self.full)))
            losses = jnp.concatenate([losses, last_loss[None]])
        state = run.state
        if self.validation is not None:
            val_loss, val_acc = self.trainer.evaluate(state.params, state.model_state, *self.validation)
        else:
            val_loss = val_acc = jnp.full((), jnp.nan, self.dtype)
        train_loss = jnp.mean(losses).astype(self.dtype)
        return run, (train_loss, val_loss.astype(self.dtype), val_acc.astype(self.dtype))

    def batches(self, idx: Array) -> tuple[Array, Array, Array | None]:
        """The minibatches ``[steps, B, ...]`` at ``idx [steps, B]``, split over the data axis if any."""
        batches = _take(self.train, idx)
        if self.split is None:
            return batches
        return tuple(None if a is None else jax.lax.with_sharding_constraint(a, self.split) for a in batches)

    def skip_epoch(self, run: _Carry) -> tuple[_Carry, tuple[Array, Array, Array]]:
        """An epoch after early stopping: nothing changes, the metrics are NaN."""
        nan = jnp.full((), jnp.nan, self.dtype)
        return run, (nan, nan, nan)

    def step(self, run: _Carry, batch_key_step: tuple[Any, PRNGKey, Array]) -> tuple[_Carry, Array]:
        """One optimizer step on a minibatch, guarded: from the first non-finite loss or
        gradient on, the parameters and states are held and the epoch and step recorded."""
        batch, key, step = batch_key_step
        state = run.state
        params, model_state, opt_state, finite, loss = self.trainer._update(
            self.optimizer, self.regularizers, state, *batch, key
        )
        first_bad = jnp.where(~finite & ~run.stopped, jnp.stack([state.epoch, step]), run.first_bad)
        stopped = run.stopped | ~finite
        state = state._replace(
            params=_checks.hold(stopped, params, state.params),
            model_state=_checks.hold(stopped, model_state, state.model_state),
            opt_state=_checks.hold(stopped, opt_state, state.opt_state),
        )
        return _Carry(state, stopped, first_bad), loss


def _take(data: tuple[Array, Array, Array | None], idx: Array) -> tuple[Array, Array, Array | None]:
    """The examples at ``idx`` of ``(x, y, weights)``; ``weights`` may be ``None``."""
    return tuple(None if a is None else a[idx] for a in data)


@functools.partial(jax.jit, static_argnums=(0, 6))
def _step(trainer: Trainer, state: TrainState, x, y, hyperparams, key, total_steps) -> tuple[TrainState, Array]:
    optimizer = trainer._optimizer(hyperparams, total_steps)
    _, regularizers = trainer._split(hyperparams)
    params, model_state, opt_state, _, loss = trainer._update(optimizer, regularizers, state, x, y, None, key)
    return state._replace(params=params, model_state=model_state, opt_state=opt_state), loss


@functools.partial(jax.jit, static_argnums=(0, 6))
def _fit(
    trainer: Trainer, state: TrainState, train, validation, hyperparams, shuffle_key, split, chunk
) -> tuple[TrainState, History]:
    return trainer._run(state, train, validation, hyperparams, shuffle_key, split, chunk)
