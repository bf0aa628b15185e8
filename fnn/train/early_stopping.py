r"""Early stopping as a pure ``(init, update)`` pair that runs inside the compiled training loop.

After every epoch the monitored validation metric :math:`m_e` is compared with the best so far,
:math:`m^*`. For ``mode="min"`` epoch :math:`e` improves when

.. math:: m_e < m^* - \delta

(``mode="max"``: :math:`m_e > m^* + \delta`), with :math:`\delta` = ``min_delta`` :math:`\ge 0`.
An improvement records :math:`m^* = m_e`, the epoch, and a copy of the parameters and model
state; otherwise a counter grows, and when it reaches ``patience`` training stops. A NaN
metric never improves (every comparison with NaN is false), so a diverging run stops as well.
At the end the best parameters are restored.

All of it is array arithmetic on the loop's carry, so it runs on the device inside
:meth:`fnn.train.Trainer.fit`, with no host round trip per epoch, and under ``jax.vmap`` every
member (seed, fold, hyperparameter candidate) keeps its own counter and stops on its own. (In a
vmapped run a stopped member's later epochs are still computed, then discarded: a batched
program has one control flow. Unbatched, the remaining epochs are skipped by ``lax.cond``.)

Early stopping is a regulariser: for a quadratic loss and gradient descent, stopping after
:math:`\tau` steps of rate :math:`\eta` acts like an L2 penalty of strength about
:math:`1/(\eta\tau)` (Goodfellow et al., §7.8).

References: L. Prechelt, *Early Stopping — But When?*, in Neural Networks: Tricks of the Trade,
Springer 1998; I. Goodfellow, Y. Bengio, A. Courville, *Deep Learning*, MIT Press 2016, §7.8.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn._types import Array, Params, State

__all__ = ["EarlyStopping", "EarlyStoppingState", "MONITORS"]

MONITORS = ("val_loss", "val_accuracy")


class EarlyStoppingState(NamedTuple):
    """What early stopping carries from epoch to epoch.

    Attributes:
      best: the best metric so far (``+inf`` for ``"min"``, ``-inf`` for ``"max"`` before any).
      best_epoch: the epoch of ``best``, -1 before any improvement; int32.
      wait: epochs since the last improvement; int32.
      stopped: whether training has stopped; bool.
      stop_epoch: the epoch after which training stopped, -1 while running; int32.
      best_params: the parameters at ``best_epoch`` (the initial ones before any improvement).
      best_model_state: the model state at ``best_epoch``.
    """

    best: Array
    best_epoch: Array
    wait: Array
    stopped: Array
    stop_epoch: Array
    best_params: Params
    best_model_state: State


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Stop when the validation metric has not improved for ``patience`` epochs; keep the best.

    Hashable, so it is part of a :class:`fnn.train.Trainer`'s static configuration.

    Attributes:
      patience: epochs without improvement before stopping, an integer :math:`\\ge 1`.
      min_delta: the least change that counts as an improvement, :math:`\\ge 0`.
      mode: ``"min"`` (losses) or ``"max"`` (accuracies).
      monitor: ``"val_loss"`` or ``"val_accuracy"``, the metric of
        :class:`fnn.train.History` to watch.
      restore_best: return the best parameters rather than the last ones.

    >>> es = EarlyStopping(patience=2)
    >>> state = es.init(params=jnp.zeros(1), model_state=())
    >>> for epoch, loss in enumerate([1.0, 0.5, 0.7, 0.6, 0.4]):
    ...     state = es.update(state, jnp.asarray(loss), epoch, params=jnp.full(1, epoch), model_state=())
    >>> bool(state.stopped), int(state.stop_epoch), int(state.best_epoch), float(state.best_params[0])
    (True, 3, 1, 1.0)
    """

    patience: int
    min_delta: float = 0.0
    mode: str = "min"
    monitor: str = "val_loss"
    restore_best: bool = True

    def __post_init__(self) -> None:
        _checks.positive_int(self.patience, "patience")
        delta = self.min_delta
        if (
            isinstance(delta, bool)
            or not isinstance(delta, (int, float, np.floating, np.integer))
            or not (math.isfinite(delta) and delta >= 0)
        ):
            raise ValueError(f"min_delta must be a finite number >= 0, got {delta!r}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {MONITORS}, got {self.monitor!r}")
        if not isinstance(self.restore_best, bool):
            raise TypeError(f"restore_best must be a bool, got {self.restore_best!r}")

    def init(self, params: Params, model_state: State, dtype: Any = jnp.float32) -> EarlyStoppingState:
        """The state before the first epoch: no best yet, the current parameters kept."""
        worst = jnp.asarray(jnp.inf if self.mode == "min" else -jnp.inf, dtype)
        minus_one = jnp.asarray(-1, jnp.int32)
        return EarlyStoppingState(
            worst, minus_one, jnp.zeros((), jnp.int32), jnp.asarray(False), minus_one, params, model_state
        )

    def improved(self, state: EarlyStoppingState, metric: Array) -> Array:
        """Whether ``metric`` beats the best by more than ``min_delta`` (False for NaN)."""
        delta = jnp.asarray(self.min_delta, state.best.dtype)
        if self.mode == "min":
            return metric < state.best - delta
        return metric > state.best + delta

    def update(
        self, state: EarlyStoppingState, metric: Array, epoch: Array, params: Params, model_state: State
    ) -> EarlyStoppingState:
        """The state after an epoch with validation ``metric``; unchanged once stopped.

        Args:
          state: from :meth:`init` or the previous :meth:`update`.
          metric: the epoch's validation metric, a scalar.
          epoch: the epoch's index, a scalar integer.
          params: the parameters after the epoch.
          model_state: the model state after the epoch.
        """
        metric = jnp.asarray(metric, state.best.dtype)
        epoch = jnp.asarray(epoch, jnp.int32)
        better = self.improved(state, metric) & ~state.stopped
        wait = jnp.where(better, 0, state.wait + jnp.where(state.stopped, 0, 1))
        stop_now = ~state.stopped & (wait >= self.patience)
        return EarlyStoppingState(
            best=jnp.where(better, metric, state.best),
            best_epoch=jnp.where(better, epoch, state.best_epoch),
            wait=wait,
            stopped=state.stopped | stop_now,
            stop_epoch=jnp.where(stop_now, epoch, state.stop_epoch),
            best_params=_checks.hold(~better, params, state.best_params),
            best_model_state=_checks.hold(~better, model_state, state.best_model_state),
        )
