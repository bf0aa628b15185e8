r"""A progress display for long fits, printed from inside the compiled loop, one line per batch of runs.

:class:`fnn.train.Trainer` with ``progress=k`` calls :func:`report` every :math:`k`-th epoch
(and at the last) from inside its ``lax.scan``. The call is one host callback per reporting
interval for the *whole batch*: under ``jax.vmap`` (a user's vmap of ``fit``, or
:func:`fnn.train.fit_many`'s members, in ``lax.map`` chunks and sharded over devices) a
``custom_vmap`` rule hands the callback every member's values at once, as ``[M]`` arrays
(``[M1, M2]`` under nested vmaps, flattened on the host), where ``jax.debug.callback`` alone
would call back once per member. Whether an epoch reports is decided by the scan's own epoch
counter, which no vmap batches, so the branch stays a ``lax.cond`` and the other epochs pay
one integer comparison.

The host side, :class:`Display`, summarises the members (the mean of each metric over the
members still training, with its min..max), counts the members early stopping has stopped
and says when it fires, and shows the rate (epochs per second) and the time left. With
`tqdm <https://tqdm.github.io>`_ importable (``pip install fnn[progress]``) it draws one bar
on stderr with the metrics as its postfix; without it, it prints plain lines to stdout::

    [6 runs] epoch 10/30  41.2 epochs/s  ETA 0:00  train loss 0.52 (0.47..0.58)  val loss 0.55 (0.5..0.61)

Reference: the JAX documentation, *External callbacks* and ``jax.custom_batching.custom_vmap``.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import custom_batching
from jax.sharding import NamedSharding, PartitionSpec

from fnn._types import Array

__all__ = ["Chunk", "Display", "report", "batch_callback", "summary", "duration"]


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Which part of a larger program one ``fit`` is, for its progress lines (as :func:`fnn.train.fit_many` passes).

    A pytree whose leaves are ``index`` and ``real``; ``count`` and ``mesh`` are static.

    Attributes:
      index: the chunk's index, an int32 scalar (traced inside ``lax.map``).
      count: the number of chunks, a Python int.
      real: whether this member is a real one (``False`` for padding), a bool scalar.
      mesh: the :class:`jax.sharding.Mesh` the members are sharded over, or ``None``: the
        values are then gathered (replicated) before the host call, which XLA's partitioner
        would otherwise do by an "involuntary full rematerialization" it warns about.
    """

    index: Any
    count: int
    real: Any = True
    mesh: Any = None


jax.tree_util.register_dataclass(Chunk, data_fields=["index", "real"], meta_fields=["count", "mesh"])


def batch_callback(callback: Any, *values: Array, mesh: Any = None) -> None:
    """Call ``callback(*values)`` on the host once, however many ``jax.vmap`` s batch the values.

    ``jax.debug.callback`` under vmap calls back once per member; here the ``custom_vmap``
    rule broadcasts the unbatched values and calls again one level out, so the host receives
    every member's values in one call, each with the batch shape in front (``()`` unbatched).

    Args:
      callback: a host function of as many arrays as ``values``; its result is ignored.
      values: arrays, all of one shape per member (scalars, say).
      mesh: a :class:`jax.sharding.Mesh` the batch is sharded over, or ``None``; the batched
        values are replicated over it before the call.

    >>> seen = []
    >>> f = jax.vmap(lambda x: batch_callback(lambda v: seen.append(v.shape), x))
    >>> _ = f(jnp.arange(3.0)); jax.effects_barrier(); seen
    [(3,)]
    """

    @custom_batching.custom_vmap
    def call(xs):
        jax.debug.callback(callback, *xs)
        return xs

    @call.def_vmap
    def rule(axis_size, in_batched, xs):
        (batched,) = in_batched
        xs = tuple(x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x))) for x, b in zip(xs, batched))
        if mesh is not None:
            xs = jax.lax.with_sharding_constraint(xs, NamedSharding(mesh, PartitionSpec()))
        return call(xs), tuple(True for _ in xs)

    call(tuple(jnp.asarray(v) for v in values))


def duration(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss`` of a number of seconds; ``-`` if unknown.

    >>> duration(75.4), duration(3725), duration(float("nan"))
    ('1:15', '1:02:05', '-')
    """
    if not math.isfinite(seconds) or seconds < 0:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def summary(name: str, values: Any, percent: bool = False) -> str:
    """``"name mean (min..max)"`` of the finite ``values`` (a single value alone); ``""`` if none is finite.

    >>> summary("val loss", [0.5, 0.25, float("nan")])
    'val loss 0.375 (0.25..0.5)'
    >>> summary("val acc", [0.5], percent=True)
    'val acc 50.0%'
    """
    values = np.asarray(values, float).ravel()
    values = values[np.isfinite(values)]
    if not values.size:
        return ""
    # + 0.0 turns a -0.0 (a loss rounded to zero from below) into 0.0.
    form = (lambda v: f"{v + 0.0:.1%}") if percent else (lambda v: f"{v + 0.0:.4g}")
    text = f"{name} {form(values.mean())}"
    if values.size > 1:
        text += f" ({form(values.min())}..{form(values.max())})"
    return text


def _epochs(indices: np.ndarray, limit: int = 8) -> str:
    """A short list of 1-based epochs: ``"12, 15"``, at most ``limit`` of them."""
    shown = ", ".join(str(int(e) + 1) for e in indices[:limit])
    return shown + (", ..." if indices.size > limit else "")


class Display:
    """The host side of the progress display of one compiled run (reused by every call of it).

    Created when ``fit`` is traced; its :meth:`__call__` receives, every reporting interval,
    the values :func:`report` passes. A call at a run's first epoch (of its first chunk)
    starts the clock and the bar, so a second call of the compiled ``fit`` starts afresh.

    Args:
      every: epochs between lines, :math:`\\ge 1`.
      epochs: the epochs of one ``fit`` call.
      monitor: the metric early stopping watches, or ``None`` without early stopping.
    """

    def __init__(self, every: int, epochs: int, monitor: str | None = None) -> None:
        self.every, self.epochs, self.monitor = every, epochs, monitor
        self._bar: Any = None
        self._start = 0.0
        self._stopped: np.ndarray | None = None

    def __call__(self, *values: Any) -> None:
        # The callback gets jax.Arrays: NumPy's arithmetic on them is several times faster.
        index, chunk, chunks, real, train_loss, val_loss, val_acc, nonfinite, *stopping = map(np.asarray, values)
        index, chunk, chunks = int(np.max(index)), int(np.max(chunk)), int(np.max(chunks))
        real = np.ravel(real).astype(bool)
        position, total = chunk * self.epochs + index + 1, chunks * self.epochs
        if index == 0:
            self._begin(chunk, real.sum(), total)
        if not ((index + 1) % self.every == 0 or index + 1 == self.epochs):
            return

        def members(a):
            return np.ravel(a)[real]

        runs = int(real.sum())
        parts = [
            summary("train loss", members(train_loss)),
            summary("val loss", members(val_loss)),
            summary("val acc", members(val_acc), percent=True),
        ]
        bad = int(members(nonfinite).sum())
        if bad:
            parts.append(f"non-finite: {bad} run{'s' if bad > 1 else ''} held")
        parts += self._stopping(runs, *(members(a) for a in stopping)) if stopping else []
        parts = [p for p in parts if p]
        label = f"[{runs} run{'s' if runs != 1 else ''}] " if real.size > 1 else ""
        label += f"chunk {chunk + 1}/{chunks} " if chunks > 1 else ""
        if self._bar is not None:
            if chunks > 1:
                self._bar.set_description_str(label.replace("[", "").replace("] ", ", ").strip(), refresh=False)
            self._bar.update(position - self._bar.n)
            self._bar.set_postfix_str("  ".join(p for p in parts if not p.startswith("early stopping")))
            for p in parts:
                if p.startswith("early stopping"):
                    self._bar.write(label + p, file=sys.stderr)
            if position == total:
                self._bar.close()
                self._bar = None
            return
        elapsed = time.perf_counter() - self._start
        rate = (position - 1) / elapsed if position > 1 and elapsed > 0 else math.nan
        head = f"{label}epoch {index + 1}/{self.epochs}  "
        head += f"{rate:.3g} epochs/s  ETA {duration((total - position) / rate)}" if rate == rate else "- epochs/s"
        print("  ".join([head, *parts]), flush=True)

    def _begin(self, chunk: int, runs: int, total: int) -> None:
        """A run's first epoch: start the clock, and the bar if tqdm is there (first chunk only)."""
        if chunk:
            self._stopped = None
            return
        if self._bar is not None:
            self._bar.close()
        self._start, self._stopped, self._bar = time.perf_counter(), None, None
        try:
            tqdm = importlib.import_module("tqdm").tqdm
        except ImportError:
            return
        desc = f"{runs} runs" if runs > 1 else "fit"
        self._bar = tqdm(total=total, unit="epoch", desc=desc, file=sys.stderr, dynamic_ncols=True)
        self._bar.update(1)

    def _stopping(self, runs: int, stopped, stop_epoch, best, best_epoch) -> list[str]:
        """The early-stopping part of a line: how many stopped, who stopped since the last line, the best."""
        stopped = stopped.astype(bool)
        fresh = stopped & ~(self._stopped if self._stopped is not None else np.zeros_like(stopped))
        self._stopped = stopped
        parts = []
        which = int(np.argmin(best) if self.monitor == "val_loss" else np.argmax(best))
        if np.isfinite(best[which]):
            where = f"run {which}, " if runs > 1 else ""
            parts.append(f"best {self.monitor} {best[which] + 0.0:.4g} ({where}epoch {int(best_epoch[which]) + 1})")
        if fresh.any():
            if runs > 1:
                parts.append(
                    f"early stopping fired for {int(fresh.sum())} run{'s' if fresh.sum() > 1 else ''} "
                    f"(after epochs {_epochs(np.sort(stop_epoch[fresh]))}): stopped {int(stopped.sum())}/{runs}"
                )
            else:
                parts.append(f"early stopping fired after epoch {int(stop_epoch[0]) + 1}")
        elif stopped.any():
            parts.append(f"stopped {int(stopped.sum())}/{runs}" if runs > 1 else "stopped")
        return parts


def report(
    display: Display,
    index: Array,
    metrics: tuple[Array, Array, Array],
    nonfinite: Array,
    stopping: Any = None,
    chunk: Chunk | None = None,
) -> None:
    """From inside the compiled loop: hand the epoch's values to ``display`` on its reporting epochs.

    Args:
      display: the host :class:`Display`.
      index: the epoch's index within this ``fit`` call, the scan's unbatched counter.
      metrics: ``(train_loss, val_loss, val_acc)`` of the epoch, scalars per member.
      nonfinite: whether the member met a non-finite loss or gradient, a bool scalar.
      stopping: the :class:`fnn.train.EarlyStoppingState` after the epoch, or ``None``.
      chunk: the :class:`Chunk` this ``fit`` trains, or ``None`` for the whole of it.
    """
    chunk = Chunk(0, 1) if chunk is None else chunk
    values = [chunk.index, chunk.count, chunk.real, *metrics, nonfinite]
    if stopping is not None:
        values += [stopping.stopped, stopping.stop_epoch, stopping.best, stopping.best_epoch]
    values = [jnp.asarray(v) for v in values]
    due = (index == 0) | ((index + 1) % display.every == 0) | (index + 1 == display.epochs)
    jax.lax.cond(due, lambda: batch_callback(display, index, *values, mesh=chunk.mesh), lambda: None)
