r"""Benchmark: what the progress display costs a fit (:attr:`fnn.train.Trainer.progress`), on against off.

What it measures (every variant in the same run, float32 on the default JAX device)
  A. *One fit*: the digits MLP 64-128-128-10 (ReLU), cross-entropy, Adam at 1e-3, batch 128,
     E epochs, with ``progress=0`` (the baseline), ``progress=10`` and ``progress=1`` (a line
     every epoch, the worst case).
  B. *A sweep with early stopping*: ``fit_many`` of 24 members (learning rates from 1e-1 to
     1e-4, early stopping with patience 5) of a 64-32-10 MLP, E epochs, ``progress=0``
     against ``progress=10``: one line per interval for the whole batch.

How
  Every variant is compiled and run once first (untimed). The timed calls are interleaved in
  rounds, the order reversed every other round so that drift of a shared machine hits every
  variant alike; each call is timed with ``time.perf_counter`` around the call and its
  ``block_until_ready`` and ``jax.effects_barrier``. The *minimum* over the rounds is
  reported (the least disturbed call), with the ratio to the baseline of the same case. The
  display's output goes to an in-memory buffer, so terminal speed is not measured; its line
  count is printed as a check. The display is tqdm's bar if ``tqdm`` is importable, else
  plain lines: the script says which.

How to run it (from the repository root)::

    python -m experiments.bench_progress            # about a minute on 2 cores
    python -m experiments.bench_progress --quick    # seconds
    python -m experiments.bench_progress --out bench_progress.json

Exit status 0 (the numbers are reported; there is no pass/fail threshold).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

import fnn
from fnn import train
from fnn.io import atomic_write_json


def _timed(fn: Callable[[], Any], sink: io.StringIO) -> float:
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        jax.effects_barrier()
        return time.perf_counter() - start


def compare(variants: dict[str, Callable[[], Any]], rounds: int) -> dict[str, dict[str, float]]:
    """Min seconds per variant over interleaved rounds, the ratio to the first, and lines printed per call."""
    lines = {}
    for name, fn in variants.items():  # compile and warm up
        sink = io.StringIO()
        _timed(fn, sink)
        lines[name] = sink.getvalue().count("\n")
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            times[name].append(_timed(variants[name], io.StringIO()))
    base = min(times[next(iter(variants))])
    return {name: {"seconds": min(t), "ratio": min(t) / base, "lines": lines[name]} for name, t in times.items()}


def bench_fit(epochs: int, rounds: int) -> dict[str, Any]:
    x, y = fnn.data.load_digits()
    hp = {"learning_rate": 1e-3}

    def variant(progress: int) -> Callable[[], Any]:
        trainer = train.Trainer(
            fnn.MLP((64, 128, 128, 10), activation="relu"),
            "cross_entropy",
            "adam",
            epochs=epochs,
            batch_size=128,
            progress=progress,
        )
        state = trainer.init(jax.random.key(0), hp)
        return lambda: trainer.fit(state, (x, y), (x, y), hp)

    return compare({"off": variant(0), "every 10": variant(10), "every 1": variant(1)}, rounds)


def bench_sweep(epochs: int, rounds: int, members: int = 24) -> dict[str, Any]:
    x, y = fnn.data.load_digits()
    train_set, val_set = (x[:1200], y[:1200]), (x[1200:], y[1200:])
    hp = {"learning_rate": jnp.geomspace(1e-1, 1e-4, members)}
    keys = jax.random.split(jax.random.key(0), members)

    def variant(progress: int) -> Callable[[], Any]:
        trainer = train.Trainer(
            fnn.MLP((64, 32, 10), activation="relu"),
            "cross_entropy",
            "adam",
            epochs=epochs,
            batch_size=128,
            progress=progress,
            early_stopping=train.EarlyStopping(patience=5),
        )
        return lambda: trainer.fit_many(keys, train_set, val_set, hp, per_member="hyperparams")

    return compare({"off": variant(0), "every 10": variant(10)}, rounds)


def table(title: str, rows: dict[str, dict[str, float]]) -> str:
    out = [title, f"  {'progress':<10} {'min s':>9} {'ratio':>7} {'lines':>6}"]
    for name, r in rows.items():
        out.append(f"  {name:<10} {r['seconds']:>9.4f} {r['ratio']:>7.3f} {r['lines']:>6d}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_progress", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few epochs and rounds (seconds)")
    parser.add_argument("--out", metavar="PATH", help="write the numbers as JSON to PATH (atomically)")
    args = parser.parse_args(argv)
    epochs, rounds = (20, 3) if args.quick else (100, 7)
    display = "tqdm bar" if importlib.util.find_spec("tqdm") else "plain lines (tqdm not installed)"
    device = jax.devices()[0]
    print(f"jax {jax.__version__}, {device.platform}; display: {display}; {epochs} epochs, {rounds} rounds", flush=True)
    a = bench_fit(epochs, rounds)
    print(table(f"A. one digits fit, 64-128-128-10, {epochs} epochs", a), flush=True)
    b = bench_sweep(epochs, rounds)
    print(table(f"B. fit_many, 24 members with early stopping, {epochs} epochs", b), flush=True)
    print("Min of interleaved rounds on a shared machine; ratios are to progress off in the same run.")
    if args.out:
        atomic_write_json(
            args.out,
            {"quick": args.quick, "epochs": epochs, "rounds": rounds, "display": display, "fit": a, "sweep": b},
        )
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
