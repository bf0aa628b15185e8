r"""Training curves as matplotlib figures: one :class:`~fnn.train.History`, or a stack of them.

:func:`plot_history` draws one run: the training loss (the mean over each epoch's minibatches)
and the validation loss against the epoch, and the validation accuracy on a second panel where
it was measured (classification losses). The epoch early stopping kept is marked on the
validation loss, the epoch after which it stopped by a vertical line, and the first non-finite
epoch by a red one.

:func:`plot_histories` draws a sweep: a History whose leaves have leading run axes, as
:meth:`~fnn.train.Trainer.fit_many` returns (``[M, epochs]``, or ``[S, M, epochs]``, flattened
into runs), as a centre line (the mean, or the median) and a band (the range, min to max, or
one standard deviation either side of the mean) over the runs, epoch by epoch. Epochs after a
run stopped early are NaN in its history; such entries, and any non-finite ones, are left out
epoch by epoch, so each epoch's statistics are over the runs still finite there (the legend
says how many runs there are and how many stopped).

Epochs are counted from 1 on the x axis: History's ``best_epoch`` and ``stop_epoch`` count from
0, so epoch ``e`` is drawn at ``e + 1``.

Both return a ``matplotlib.figure.Figure`` made without pyplot (no global figure state), or
draw into the axes given. matplotlib is an optional dependency, imported when a function is
called: ``pip install 'fnn[plot]'`` (or ``pip install matplotlib``).

Example:
  >>> import numpy as np
  >>> from fnn.train import History
  >>> h = History(np.array([1.0, 0.5, 0.3]), np.array([1.1, 0.7, np.nan]),
  ...             np.array([0.5, 0.8, np.nan]), -1, -1, best_epoch=1, stop_epoch=1)
  >>> fig = plot_history(h)
  >>> [ax.get_ylabel() for ax in fig.axes]
  ['loss', 'validation accuracy']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["plot_history", "plot_histories", "CURVES", "CENTERS", "SPREADS"]

CURVES = ("train_loss", "val_loss")  # the curves the loss panel can show
CENTERS = ("mean", "median")
SPREADS = ("minmax", "std")
_NAMES = {"train_loss": "train", "val_loss": "validation"}
_STYLES = {"train_loss": "-", "val_loss": "--"}


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # an optional dependency: say how to get it
        raise ImportError(
            "fnn.train.plots needs matplotlib, an optional dependency: pip install 'fnn[plot]' "
            "(or pip install 'matplotlib>=3.7')"
        ) from e
    return Figure


def _leaves(history: Any, name: str) -> dict[str, np.ndarray]:
    """The curves and markers of ``history`` as float / int NumPy arrays, or a clear TypeError."""
    fields = ("train_loss", "val_loss", "val_accuracy")
    missing = [f for f in fields if not hasattr(history, f)]
    if missing:
        raise TypeError(
            f"{name} must be a fnn.train.History (with {', '.join(fields)}), got {type(history).__name__} "
            f"without {', '.join(missing)}"
        )
    out = {f: np.asarray(getattr(history, f), dtype=np.float64) for f in fields}
    for f in ("best_epoch", "stop_epoch", "nonfinite_epoch"):
        out[f] = np.asarray(getattr(history, f, -1), dtype=np.int64)
    shape = out["train_loss"].shape
    for f in fields[1:]:
        if out[f].shape != shape:
            raise ValueError(f"{name}.{f} must have the shape of {name}.train_loss {shape}, got {out[f].shape}")
    return out


def _check_curves(curves: Sequence[str]) -> tuple[str, ...]:
    curves = tuple(curves) if not isinstance(curves, str) else (curves,)
    bad = [c for c in curves if c not in CURVES]
    if not curves or bad:
        raise ValueError(f"curves must be a non-empty subset of {CURVES}, got {curves!r}")
    return curves


def _axes(axes: Any, has_accuracy: bool, title: str | None):
    """``(figure, loss axes, accuracy axes or None)``: new ones, or those given."""
    if axes is None:
        figure = _figure_class()(figsize=(10 if has_accuracy else 5.5, 3.8), layout="constrained")
        made = figure.subplots(1, 2 if has_accuracy else 1, squeeze=False)[0]
        if title:
            figure.suptitle(title)
        return figure, made[0], (made[1] if has_accuracy else None)
    given = list(axes) if isinstance(axes, (list, tuple)) else [axes]
    if len(given) not in (1, 2) or any(not hasattr(a, "plot") for a in given):
        raise TypeError(f"axes must be one matplotlib Axes or a pair (loss, accuracy), got {axes!r}")
    if title:
        given[0].set_title(title)
    return given[0].figure, given[0], (given[1] if len(given) == 2 else None)


def _legend_label(label: str | None, curve: str, count: int) -> str:
    if label is None:
        return _NAMES[curve]
    return label if count == 1 else f"{label}, {_NAMES[curve]}"


def _finish(ax_loss, ax_acc, log_loss: bool, values: list[np.ndarray]) -> None:
    from matplotlib.ticker import MaxNLocator

    finite = np.concatenate([v[np.isfinite(v)].ravel() for v in values]) if values else np.zeros(0)
    if log_loss and finite.size and finite.min() > 0:
        ax_loss.set_yscale("log")
    for ax, ylabel in ((ax_loss, "loss"), (ax_acc, "validation accuracy")):
        if ax is not None:
            ax.set(xlabel="epoch", ylabel=ylabel)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
            ax.legend(fontsize="small")


def plot_history(
    history: Any,
    *,
    axes: Any = None,
    curves: Sequence[str] = CURVES,
    label: str | None = None,
    color: str | None = None,
    title: str | None = None,
    log_loss: bool = True,
) -> Any:
    """Plot one run's History: losses per epoch, validation accuracy, early stopping marked.

    The loss panel shows the curves named in ``curves`` (training loss solid, validation loss
    dashed; a curve that is NaN throughout, such as the validation loss of a run without a
    validation set, is left out), on a log scale when ``log_loss`` and every finite value is
    positive. The accuracy panel is drawn when some validation accuracy is finite (a new
    figure) or when a second axes is given. Markers: the kept epoch (``best_epoch``) as a star
    on the validation loss, the epoch after which training stopped (``stop_epoch``) as a dotted
    vertical line, the first non-finite epoch (``nonfinite_epoch``) as a red one.

    Args:
      history: a :class:`fnn.train.History` with leaves ``[epochs]``.
      axes: None for a new figure, or the matplotlib Axes to draw into: one (losses) or a
        pair (losses, accuracy).
      curves: which of ``"train_loss"``, ``"val_loss"`` the loss panel shows.
      label: the run's name in the legends (e.g. a schedule), or None.
      color: one matplotlib colour for all its lines, or None for the colour cycle.
      title: the figure's title (a new figure) or the loss axes' title (axes given).
      log_loss: a log scale for the losses.

    Returns:
      the ``matplotlib.figure.Figure`` (or the subfigure holding the axes given).

    Raises:
      TypeError: ``history`` is not a History, or ``axes`` is not one or two Axes.
      ValueError: its leaves are not ``[epochs]`` of one length (a stack of runs goes to
        :func:`plot_histories`), or ``curves`` names something else.
      ImportError: matplotlib is not installed.

    Example:
      >>> import numpy as np
      >>> from fnn.train import History
      >>> h = History(np.array([2.0, 1.0]), np.array([2.5, 1.5]), np.array([np.nan, np.nan]), -1, -1)
      >>> len(plot_history(h, title="regression").axes)  # no accuracy panel
      1

    Reference: L. Prechelt, *Early Stopping — But When?*, 1998 (validation curves and the kept epoch).
    """
    data = _leaves(history, "history")
    curves = _check_curves(curves)
    if data["train_loss"].ndim != 1 or data["train_loss"].size == 0:
        raise ValueError(
            f"history's leaves must be [epochs] with at least one epoch, got shape {data['train_loss'].shape}; "
            "for a stack of runs [M, epochs] use plot_histories"
        )
    for f in ("best_epoch", "stop_epoch", "nonfinite_epoch"):
        if data[f].ndim != 0:
            raise ValueError(f"history.{f} must be a scalar, got shape {data[f].shape}; for a stack use plot_histories")
    has_accuracy = bool(np.isfinite(data["val_accuracy"]).any())
    figure, ax_loss, ax_acc = _axes(axes, has_accuracy, title)
    epochs = np.arange(1, data["train_loss"].size + 1)
    shown = [c for c in curves if np.isfinite(data[c]).any()]
    for i, curve in enumerate(shown):
        ax_loss.plot(
            epochs,
            data[curve],
            ls=_STYLES[curve],
            color=color or f"C{i}",
            label=_legend_label(label, curve, len(shown)),
        )
    best, stop, bad = (int(data[f]) for f in ("best_epoch", "stop_epoch", "nonfinite_epoch"))
    prefix = f"{label}: " if label else ""
    if best >= 0 and "val_loss" in shown and best < epochs.size:
        ax_loss.plot(
            best + 1, data["val_loss"][best], "*", ms=11, color=color or "k", label=f"{prefix}kept epoch {best + 1}"
        )
    for ax in (a for a in (ax_loss, ax_acc) if a is not None):
        if stop >= 0:
            ax.axvline(stop + 1, color=color or "k", ls=":", lw=1, label=f"{prefix}stopped after epoch {stop + 1}")
        if bad >= 0:
            ax.axvline(bad + 1, color="red", lw=1, label=f"{prefix}non-finite at epoch {bad + 1}")
    if ax_acc is not None:
        ax_acc.plot(epochs, data["val_accuracy"], color=color or "C2", label=label or "validation")
    _finish(ax_loss, ax_acc, log_loss, [data[c] for c in shown])
    return figure


def _statistics(x: np.ndarray, center: str, spread: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(centre, low, high)`` per epoch over the runs of ``x [M, E]``, leaving out non-finite entries.

    Computed without NumPy's nan-functions, which warn on an epoch where every run is NaN: there
    the statistics are NaN, and matplotlib leaves a gap.
    """
    finite = np.isfinite(x)
    count = finite.sum(axis=0)
    some = count > 0
    safe = np.maximum(count, 1)
    mean = np.where(finite, x, 0.0).sum(axis=0) / safe
    if center == "mean":
        middle = mean
    else:  # median: sort with the non-finite entries last, then take the middle of the finite ones
        ordered = np.sort(np.where(finite, x, np.inf), axis=0)
        lo = np.take_along_axis(ordered, ((safe - 1) // 2)[None], axis=0)[0]
        hi = np.take_along_axis(ordered, (safe // 2)[None], axis=0)[0]
        middle = (lo + hi) / 2
    if spread == "minmax":
        low = np.where(finite, x, np.inf).min(axis=0)
        high = np.where(finite, x, -np.inf).max(axis=0)
    else:  # one standard deviation (over the finite runs) either side of the mean
        std = np.sqrt(np.where(finite, (x - mean) ** 2, 0.0).sum(axis=0) / safe)
        low, high = mean - std, mean + std
    return tuple(np.where(some, v, np.nan) for v in (middle, low, high))


def plot_histories(
    histories: Any,
    *,
    axes: Any = None,
    curves: Sequence[str] = CURVES,
    center: str = "mean",
    spread: str = "minmax",
    label: str | None = None,
    color: str | None = None,
    title: str | None = None,
    log_loss: bool = True,
) -> Any:
    """Plot a stack of runs (a sweep): a centre line and a band over the runs, per epoch.

    For each curve, per epoch over the runs whose value is finite there: the centre (``"mean"``
    or ``"median"``) as a line, and the band (``"minmax"``: the range, min to max; ``"std"``:
    mean minus to mean plus one population standard deviation) shaded. NaN epochs after early
    stopping, and non-finite values, are left out epoch by epoch. Early stops are marked by a
    faint dotted vertical line at each distinct stop epoch, non-finite runs by red ones, and
    the legend gives how many of the runs stopped.

    Args:
      histories: a :class:`fnn.train.History` whose curves are ``[..., epochs]`` with leading
        run axes (``fit_many`` gives ``[M, epochs]``); the leading axes are flattened into
        runs; ``best_epoch``, ``stop_epoch``, ``nonfinite_epoch`` are scalars or of the
        leading shape.
      axes: None for a new figure, or one Axes (losses) or a pair (losses, accuracy).
      curves: which of ``"train_loss"``, ``"val_loss"`` the loss panel shows.
      center: ``"mean"`` or ``"median"``.
      spread: ``"minmax"`` or ``"std"``.
      label: the sweep's name in the legends (to overlay several sweeps on the same axes), or None.
      color: one colour for all its lines and bands, or None for the colour cycle.
      title: the figure's title (a new figure) or the loss axes' title (axes given).
      log_loss: a log scale for the losses.

    Returns:
      the ``matplotlib.figure.Figure`` (or the subfigure holding the axes given).

    Raises:
      TypeError: ``histories`` is not a History, or ``axes`` is not one or two Axes.
      ValueError: the curves have no run axis or no epoch, the markers' shapes do not match
        the leading axes, or ``curves``, ``center`` or ``spread`` is not one of the choices.
      ImportError: matplotlib is not installed.

    Example:
      >>> import numpy as np
      >>> from fnn.train import History
      >>> loss = np.array([[1.0, 0.5, 0.2], [1.2, 0.6, np.nan]])  # run 1 stopped after epoch 2
      >>> h = History(loss, loss + 0.1, np.full((2, 3), 0.9), np.array([-1, -1]), np.array([-1, -1]),
      ...             best_epoch=np.array([-1, 1]), stop_epoch=np.array([-1, 1]))
      >>> fig = plot_histories(h, center="median", spread="std")
      >>> fig.axes[0].get_legend().get_texts()[0].get_text()
      'train, median of 2 runs'
    """
    if center not in CENTERS:
        raise ValueError(f"center must be one of {CENTERS}, got {center!r}")
    if spread not in SPREADS:
        raise ValueError(f"spread must be one of {SPREADS}, got {spread!r}")
    data = _leaves(histories, "histories")
    curves = _check_curves(curves)
    shape = data["train_loss"].shape
    if len(shape) < 2 or shape[-1] == 0 or 0 in shape[:-1]:
        raise ValueError(
            f"histories' curves must be [runs, epochs] (or more leading run axes) with at least one run and epoch, "
            f"got shape {shape}; for one run use plot_history"
        )
    runs = int(np.prod(shape[:-1]))
    flat = {f: data[f].reshape(runs, shape[-1]) for f in ("train_loss", "val_loss", "val_accuracy")}
    marks = {}
    for f in ("best_epoch", "stop_epoch", "nonfinite_epoch"):
        if data[f].shape not in ((), shape[:-1]):
            raise ValueError(f"histories.{f} must be a scalar or of shape {shape[:-1]}, got {data[f].shape}")
        marks[f] = np.broadcast_to(data[f], shape[:-1]).reshape(runs)

    has_accuracy = bool(np.isfinite(flat["val_accuracy"]).any())
    figure, ax_loss, ax_acc = _axes(axes, has_accuracy, title)
    epochs = np.arange(1, shape[-1] + 1)
    band = "range" if spread == "minmax" else "±1 std"
    shown = [c for c in curves if np.isfinite(flat[c]).any()]
    for i, curve in enumerate(shown):
        middle, low, high = _statistics(flat[curve], center, spread)
        colour = color or f"C{i}"
        name = _legend_label(label, curve, len(shown))
        ax_loss.plot(epochs, middle, ls=_STYLES[curve], color=colour, label=f"{name}, {center} of {runs} runs")
        ax_loss.fill_between(epochs, low, high, color=colour, alpha=0.2, lw=0, label=f"{name}, {band}")
    prefix = f"{label}: " if label else ""
    stops, bad = marks["stop_epoch"], marks["nonfinite_epoch"]
    for ax in (a for a in (ax_loss, ax_acc) if a is not None):
        for j, e in enumerate(np.unique(stops[stops >= 0])):
            ax.axvline(
                e + 1,
                color=color or "k",
                ls=":",
                lw=0.8,
                alpha=0.5,
                label=None if j else f"{prefix}early stop ({int((stops >= 0).sum())} of {runs} runs)",
            )
        for j, e in enumerate(np.unique(bad[bad >= 0])):
            ax.axvline(
                e + 1,
                color="red",
                lw=0.8,
                label=None if j else f"{prefix}non-finite ({int((bad >= 0).sum())} of {runs} runs)",
            )
    if ax_acc is not None:
        middle, low, high = _statistics(flat["val_accuracy"], center, spread)
        colour = color or "C2"
        ax_acc.plot(epochs, middle, color=colour, label=f"{label or 'validation'}, {center} of {runs} runs")
        ax_acc.fill_between(epochs, low, high, color=colour, alpha=0.2, lw=0, label=f"{label or 'validation'}, {band}")
    _finish(ax_loss, ax_acc, log_loss, [flat[c] for c in shown])
    return figure
