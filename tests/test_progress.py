"""Tests of fnn.train.progress: one line per interval for a whole batch of runs, early stopping, tqdm or not."""

import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import train
from fnn.train import progress

M, EPOCHS, EVERY = 6, 30, 10
LINE = re.compile(r"^\[(\d+) runs?\] (chunk (\d+)/(\d+) )?epoch (\d+)/(\d+)  ")


def _trainer(**options):
    options = {
        "epochs": EPOCHS,
        "batch_size": 16,
        "progress": EVERY,
        "early_stopping": train.EarlyStopping(patience=2),
        **options,
    }
    return train.Trainer(fnn.MLP((2, 6, 3), activation="tanh"), "cross_entropy", "adam", **options)


def _data():
    return fnn.data.blobs(jax.random.key(0), 40, centers=3, std=1.5, dtype=jnp.float64)


# From a rate that overshoots at once to one too small to stop: some members stop early, some do not.
RATES = {"learning_rate": jnp.geomspace(3.0, 1e-3, M)}


@pytest.fixture
def no_tqdm(monkeypatch):
    """tqdm made unimportable (a None entry in sys.modules makes ``import tqdm`` raise ImportError)."""
    monkeypatch.setitem(sys.modules, "tqdm", None)


def _lines(capfd):
    jax.effects_barrier()
    return [line for line in capfd.readouterr().out.splitlines() if line.strip()]


def _fit_many(trainer, members=M, **options):
    data = _data()
    hp = {"learning_rate": RATES["learning_rate"][:members]}
    keys = jax.random.split(jax.random.key(1), members)
    return trainer.fit_many(keys, data, data, hp, per_member="hyperparams", dtype=jnp.float64, **options)


@pytest.mark.slow
def test_fit_many_prints_one_line_per_interval_for_the_batch_and_reports_early_stopping(no_tqdm, capfd):
    _, history = _fit_many(_trainer())
    lines = _lines(capfd)
    assert len(lines) == EPOCHS // EVERY, lines  # not one per member, not one per epoch
    for line, epoch in zip(lines, range(EVERY, EPOCHS + 1, EVERY)):
        match = LINE.match(line)
        assert match and int(match[1]) == M and int(match[5]) == epoch and int(match[6]) == EPOCHS, line
        assert "epochs/s" in line and "ETA" in line and "train loss" in line
    stops = np.asarray(history.stop_epoch)
    assert 0 < (stops >= 0).sum() < M, stops  # the scenario: some stop early, some run to the end
    fired = "".join(lines).count("early stopping fired")
    assert fired >= 1
    assert f"stopped {(stops >= 0).sum()}/{M}" in lines[-1]
    # Every member that stopped is named by its (1-based) epoch in a line.
    said = {int(e) for e in re.findall(r"after epochs ([\d, ]+)", " ".join(lines))[0].split(", ")}
    assert said <= {int(s) + 1 for s in stops[stops >= 0]}


@pytest.mark.slow
def test_losses_are_summarised_over_the_members(no_tqdm, capfd):
    _, history = _fit_many(_trainer(early_stopping=None, epochs=EVERY))
    (line,) = _lines(capfd)
    loss = np.asarray(history.val_loss)[:, -1]
    text = progress.summary("val loss", loss)
    assert text in line and "(" in text  # mean (min..max)


@pytest.mark.slow
def test_users_vmap_of_fit_is_one_line_per_interval(no_tqdm, capfd):
    trainer, data = _trainer(), _data()

    def run(key, rate):
        hp = {"learning_rate": rate}
        return trainer.fit(trainer.init(key, hp, dtype=jnp.float64), data, data, hp)

    _, history = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(1), M), RATES["learning_rate"])
    lines = _lines(capfd)
    assert [int(LINE.match(line)[5]) for line in lines] == list(range(EVERY, EPOCHS + 1, EVERY)), lines
    assert all(LINE.match(line)[1] == str(M) for line in lines)
    assert (np.asarray(history.stop_epoch) >= 0).any() and "early stopping fired" in " ".join(lines)


@pytest.mark.slow
def test_chunks_are_labelled_and_padding_is_not_counted(no_tqdm, capfd):
    # 5 members in chunks of 2: 3 chunks, the last padded with a copy of member 0.
    _fit_many(_trainer(early_stopping=None), members=5, chunk_size=2)
    lines = _lines(capfd)
    assert len(lines) == 3 * EPOCHS // EVERY, lines
    matches = [LINE.match(line) for line in lines]
    assert [int(m[3]) for m in matches] == [c for c in (1, 2, 3) for _ in range(EPOCHS // EVERY)]
    assert {int(m[4]) for m in matches} == {3}
    assert [int(m[1]) for m in matches] == [2] * 6 + [1] * 3  # the padding member is not a run
    assert all(line.startswith("[1 run] chunk 3/3") for line in lines[6:])


@pytest.mark.slow
def test_a_single_run_says_when_early_stopping_fired(no_tqdm, capfd):
    # An improvement must beat the best by 10: only the first epoch does, so it stops after the third.
    trainer, data = _trainer(early_stopping=train.EarlyStopping(patience=2, min_delta=10.0)), _data()
    hp = {"learning_rate": 0.1}
    _, history = trainer.fit(trainer.init(jax.random.key(1), hp, dtype=jnp.float64), data, data, hp)
    lines = _lines(capfd)
    assert int(history.stop_epoch) == 2
    assert len(lines) == EPOCHS // EVERY and all(line.startswith("epoch ") for line in lines)
    assert f"early stopping fired after epoch {int(history.stop_epoch) + 1}" in " ".join(lines)


@pytest.mark.slow
def test_with_tqdm_one_bar_on_stderr_and_no_lines_on_stdout(capfd):
    pytest.importorskip("tqdm")
    _fit_many(_trainer())
    jax.effects_barrier()
    out, err = capfd.readouterr()
    assert not out.strip()
    assert f"{M} runs" in err and f"{EPOCHS}/{EPOCHS}" in err and "train loss" in err


def test_display_on_given_values_names_the_runs_that_stopped(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    display = progress.Display(every=2, epochs=4, monitor="val_loss")
    loss = np.array([0.5, 0.25, 1.0])
    never = np.array([-1, -1, -1])
    args = (0, 1, np.ones(3, bool), loss, loss, np.full(3, np.nan), np.zeros(3, bool))
    display(np.zeros(3, int), *args, np.zeros(3, bool), never, loss, never)  # epoch 1: silent
    stopped = np.array([False, True, False])
    display(np.ones(3, int), *args, stopped, np.array([-1, 0, -1]), loss, np.array([1, 0, 1]))
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("[3 runs] epoch 2/4  ")
    assert "early stopping fired for 1 run (after epochs 1): stopped 1/3" in line
    assert "best val_loss 0.25 (run 1, epoch 1)" in line
    assert "val acc" not in line  # NaN metrics are left out


@pytest.mark.slow
def test_progress_off_compiles_no_callback_and_on_adds_one():
    data = _data()
    hp = {"learning_rate": 0.1}

    def lowered(trainer):
        state = trainer.init(jax.random.key(1), hp, dtype=jnp.float64)
        x, y = data
        return train.trainer._fit.lower(trainer, state, (x, y, None), (x, y, None), hp, None, None, None).as_text()

    assert "callback" not in lowered(_trainer(progress=0, epochs=2))
    assert "callback" in lowered(_trainer(progress=1, epochs=2))


@pytest.mark.slow
def test_second_call_with_progress_does_not_retrace(no_tqdm, capfd):
    trainer, (x, y) = _trainer(epochs=2, progress=1, early_stopping=None), _data()
    hp = {"learning_rate": 0.1}
    trainer.fit(trainer.init(jax.random.key(1), hp, dtype=jnp.float64), (x, y), None, hp)
    before = train.trainer._fit._cache_size()
    trainer.fit(trainer.init(jax.random.key(2), hp, dtype=jnp.float64), (x + 1.0, y), None, {"learning_rate": 0.2})
    assert train.trainer._fit._cache_size() == before
    lines = _lines(capfd)
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"] * 2  # each call starts afresh


@pytest.mark.slow
def test_a_vmapped_fit_prints_once_per_interval(no_tqdm, capfd):
    # The cheap version of the sweep scenario: 3 members, 2 epochs, full batch, a line every epoch.
    trainer = train.Trainer(fnn.MLP((2, 3, 3)), "cross_entropy", "sgd", epochs=2, progress=1)
    x, y = _data()

    def run(key):
        state = trainer.init(key, {"learning_rate": 0.1}, dtype=jnp.float64)
        return trainer.fit(state, (x, y), None, {"learning_rate": 0.1})[1].train_loss

    losses = jax.vmap(run)(jax.random.split(jax.random.key(1), 3))
    lines = _lines(capfd)
    assert [line.split("  ")[0] for line in lines] == ["[3 runs] epoch 1/2", "[3 runs] epoch 2/2"]
    assert progress.summary("train loss", losses[:, -1]) in lines[-1]
