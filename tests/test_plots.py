"""Tests for fnn.train.plots: the panels, lines, markers and statistics of the training-curve figures."""

import builtins

import numpy as np
import pytest
from matplotlib.figure import Figure

from fnn.train import History, plot_histories, plot_history, plots


def _history(epochs=6, stop=-1, best=-1, runs=None, accuracy=True, seed=0):
    """A History with decreasing losses; epochs after ``stop`` NaN, as early stopping leaves them."""
    rng = np.random.default_rng(seed)
    shape = (epochs,) if runs is None else (runs, epochs)
    train = np.exp(-np.arange(epochs) / 3.0) * (1 + 0.1 * rng.random(shape))
    val = train + 0.05
    acc = np.clip(1 - val, 0, 1) if accuracy else np.full(shape, np.nan)
    stops = np.broadcast_to(np.asarray(stop), shape[:-1])
    curves = [train, val, acc]
    for c in curves:
        for index in np.ndindex(shape[:-1]):
            if stops[index] >= 0:
                c[index + (slice(int(stops[index]) + 1, None),)] = np.nan
    bad = np.full(shape[:-1], -1)
    return History(*curves, bad, bad, best_epoch=np.asarray(best), stop_epoch=np.asarray(stop))


def _labels(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _lines(ax, label):
    return [line for line in ax.get_lines() if line.get_label() == label]


def test_plot_history_panels_curves_and_markers():
    h = _history(stop=3, best=2)
    fig = plot_history(h, title="one run")
    assert isinstance(fig, Figure)
    ax_loss, ax_acc = fig.axes
    assert (ax_loss.get_ylabel(), ax_acc.get_ylabel(), ax_loss.get_yscale()) == ("loss", "validation accuracy", "log")
    assert fig.get_suptitle() == "one run"
    train, val = _lines(ax_loss, "train")[0], _lines(ax_loss, "validation")[0]
    np.testing.assert_array_equal(train.get_xdata(), np.arange(1, 7))  # epochs counted from 1
    np.testing.assert_array_equal(train.get_ydata(), h.train_loss)  # the NaN tail is kept: a gap
    assert np.isnan(val.get_ydata()[4:]).all()
    kept = _lines(ax_loss, "kept epoch 3")[0]
    assert (kept.get_xdata()[0], kept.get_ydata()[0]) == (3, h.val_loss[2])
    for ax in (ax_loss, ax_acc):  # the stop is marked on both panels
        stop = _lines(ax, "stopped after epoch 4")
        assert len(stop) == 1 and tuple(stop[0].get_xdata()) == (4, 4)
    np.testing.assert_array_equal(_lines(ax_acc, "validation")[0].get_ydata(), h.val_accuracy)


def test_plot_history_without_early_stopping_or_accuracy():
    h = _history(accuracy=False)
    fig = plot_history(h, curves=("train_loss",))
    assert len(fig.axes) == 1  # no accuracy panel for a regression loss
    assert _labels(fig.axes[0]) == ["train"]
    assert not any("stop" in t or "kept" in t for t in _labels(fig.axes[0]))


def test_plot_history_nonfinite_marked_and_linear_scale_for_nonpositive_losses():
    h = _history()._replace(nonfinite_epoch=np.asarray(4))
    h = h._replace(train_loss=h.train_loss - 1.0)  # negative values: a log scale cannot show them
    fig = plot_history(h)
    assert fig.axes[0].get_yscale() == "linear"
    assert "non-finite at epoch 5" in _labels(fig.axes[0])


def test_plot_history_into_given_axes_with_label_and_colour():
    fig = Figure()
    ax_loss, ax_acc = fig.subplots(1, 2)
    out = plot_history(_history(), axes=(ax_loss, ax_acc), label="run A", color="C3", title="given")
    plot_history(_history(seed=1), axes=[ax_loss], curves=["val_loss"], label="run B", color="C4")
    assert out is fig and len(fig.axes) == 2
    assert ax_loss.get_title() == "given"
    assert _labels(ax_loss) == ["run A, train", "run A, validation", "run B"]
    assert _lines(ax_loss, "run B")[0].get_color() == "C4"
    assert _labels(ax_acc) == ["run A"]


def test_plot_histories_mean_and_range_with_nan_tails():
    stops = np.array([-1, 2, 3, -1])
    h = _history(runs=4, stop=stops, best=stops - 1)
    fig = plot_histories(h)
    ax_loss, ax_acc = fig.axes
    line = _lines(ax_loss, "train, mean of 4 runs")[0]
    # By hand: each epoch's mean over the runs still finite there.
    expected = [np.mean(h.train_loss[np.isfinite(h.train_loss[:, e]), e]) for e in range(6)]
    np.testing.assert_allclose(line.get_ydata(), expected)
    band = ax_loss.collections[0]
    assert band.get_label() == "train, range"
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    np.testing.assert_allclose([low, high], [np.nanmin(h.train_loss), np.nanmax(h.train_loss)])
    stops_drawn = [line for line in ax_loss.get_lines() if tuple(line.get_linestyle()) == tuple(":")]
    assert sorted(line.get_xdata()[0] for line in stops_drawn) == [3, 4]  # one line per distinct stop epoch
    assert "early stop (2 of 4 runs)" in _labels(ax_loss) and "early stop (2 of 4 runs)" in _labels(ax_acc)
    assert "validation, mean of 4 runs" in _labels(ax_acc)


def test_plot_histories_median_std_and_leading_axes_flattened():
    h = _history(runs=6, seed=3)
    stacked = History(*(np.asarray(a).reshape(2, 3, -1) for a in h[:3]), -1, -1)
    fig = plot_histories(stacked, center="median", spread="std", curves=("val_loss",), title="sweep")
    ax_loss = fig.axes[0]
    line = _lines(ax_loss, "validation, median of 6 runs")[0]
    np.testing.assert_allclose(line.get_ydata(), np.median(h.val_loss, axis=0))
    assert "validation, ±1 std" in _labels(ax_loss)
    mean, std = h.val_loss.mean(axis=0), h.val_loss.std(axis=0)
    vertices = ax_loss.collections[0].get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose([vertices.min(), vertices.max()], [(mean - std).min(), (mean + std).max()])


def test_an_all_nan_epoch_is_a_gap_without_warnings():
    x = np.array([[1.0, 2.0, np.nan, np.inf], [3.0, np.nan, np.nan, 5.0], [5.0, 4.0, np.nan, 7.0]])
    h = History(x, x, np.full_like(x, np.nan), -1, -1)
    for center in plots.CENTERS:
        for spread in plots.SPREADS:  # warnings are errors in this suite: no "Mean of empty slice"
            fig = plot_histories(h, center=center, spread=spread, curves=["train_loss"])
            assert np.isnan(fig.axes[0].get_lines()[0].get_ydata()[2])
    fig = plot_histories(h, center="median", curves=["train_loss"])
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata()[[0, 1, 3]], [3.0, 3.0, 6.0])  # inf left out
    vertices = np.concatenate([p.vertices for p in fig.axes[0].collections[0].get_paths()])  # split at the gap
    assert vertices[:, 1].min() == 1.0 and vertices[:, 1].max() == 7.0


def test_overlaid_sweeps_share_axes():
    fig = Figure()
    ax = fig.subplots()
    for i, name in enumerate(("constant", "step decay")):
        plot_histories(_history(runs=3, seed=i), axes=ax, curves=["train_loss"], label=name, color=f"C{i}")
    assert _labels(ax) == [
        "constant, mean of 3 runs",
        "constant, range",
        "step decay, mean of 3 runs",
        "step decay, range",
    ]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: plot_history(object()), TypeError, "history must be a fnn.train.History"),
        (lambda: plot_history(_history(runs=2)), ValueError, "use plot_histories"),
        (lambda: plot_histories(_history()), ValueError, "use plot_history"),
        (lambda: plot_history(_history(), curves=("loss",)), ValueError, "curves must be a non-empty subset"),
        (lambda: plot_histories(_history(runs=2), center="mode"), ValueError, "center must be one of"),
        (lambda: plot_histories(_history(runs=2), spread="iqr"), ValueError, "spread must be one of"),
        (lambda: plot_history(_history(), axes="ax"), TypeError, "axes must be one matplotlib Axes"),
        (
            lambda: plot_histories(_history(runs=2)._replace(stop_epoch=np.array([1, 2, 3]))),
            ValueError,
            r"histories.stop_epoch must be a scalar or of shape \(2,\)",
        ),
        (
            lambda: plot_history(_history()._replace(val_loss=np.zeros(3))),
            ValueError,
            "history.val_loss must have the shape",
        ),
    ],
)
def test_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"pip install 'fnn\[plot\]'"):
        plot_history(_history())
