r"""Benchmark: the compiled training run (:meth:`fnn.train.Trainer.fit`) against baselines.

What it measures (every baseline in the same run, float32 on the default JAX device)
  A. *Digits*: the MLP 64-128-128-10 (ReLU, He init), cross-entropy, Adam at 1e-3, batch
     128 (the last 5 of the 1797 digits dropped each epoch), 50 epochs of 14 steps, trained by

     (a) ``Trainer.fit``, called as a user calls it;
     (b) the same computation written directly: one ``jax.jit`` of a ``lax.scan`` over epochs
         of a ``lax.scan`` over minibatches, ``jax.value_and_grad`` + ``optax.adam``, no fnn;
     (c) a jitted single step (the step of (b)) driven from a Python loop, the epoch's
         minibatches gathered by one jitted call, no synchronisation between steps;
     (d) PyTorch eager on CPU, when ``torch`` is importable (an optional dependency of this
         script only): the same layers, initial weights, minibatch orders and Adam, with
         ``torch.set_num_threads`` set to the cores JAX uses; Adam both as ``torch.optim.Adam``
         by default and with ``fused=True`` (the faster), the target taken against the faster.

     All four start from the same parameters and step through the same minibatch orders
     (those ``fit`` draws from the state's key), so they compute the same run; the largest
     parameter difference from ``fit`` is printed as a check. Targets: ``fit`` within 1.1x of
     (b), and at least 2.5x faster than PyTorch eager.
  B. *XOR*: a 2-4-1 tanh network (Glorot init), binary cross-entropy, full-batch SGD at rate
     1 on the 4 examples: ``fit`` with 10000 epochs (one step each) against PyTorch eager
     steps; time per step. Target: at least 50x faster per step.
  C. *Sweeps*: N = 1, 8, 64, 256 digits models, one seed each, 10 epochs, batch 128, as
     (i) a naive ``jax.vmap`` of ``fit`` over seeds (each member shuffles its own order);
     (ii) sequential fits, one compiled ``fit`` called N times (only the first 16 are timed
          and the time scaled to N);
     (iii) ``fit_many`` with ``shuffle_key``: the members share one minibatch order, in chunks
          of ``min(16, N)`` members, on the process's devices (one, unless XLA is asked for
          more). Spreading sweeps over the cores, with forced CPU devices, is measured by
          :mod:`experiments.bench_many`, which replaced this benchmark's one-thread-per-core
          dispatch of chunks once ``fit_many`` on 2 devices beat it (2.70x against 2.21x the
          models per second of sequential fits, on 2 cores).
     Reported: models per second, and the fraction of the measured matmul peak, counting
     :math:`6 \times \#\mathrm{weights} \times \mathrm{examples} \times \mathrm{epochs}`
     FLOPs per model (biases, activations, Adam ignored). Target: at N = 256, (iii) at least
     1.5x the models per second of (ii). Members of (iii) are compared with sequential fits
     with the same shuffle key, members of (i) with (ii): their largest parameter difference
     must stay within 4x the sequential fit's own distance from the same fit in float64
     (training amplifies rounding, to ~1e-2 relative after 10 epochs, so a fixed tolerance
     would not separate rounding from error).

How
  Every function is compiled and run once first; "compile" is that first call's time less
  the median of the timed calls. The timed calls are interleaved in rounds, the order
  reversed every other round so that drift of a shared machine hits every method alike,
  each call timed on its own with ``time.perf_counter`` around the call and its
  ``block_until_ready``; medians are reported. The matmul peak (``n x n @ n x n``, from
  :func:`experiments.bench_backprop.matmul_peak`) is measured before and after, keeping
  the faster. Timings on a shared 2-core machine are noisy: read ratios, not absolutes.

How to run it (from the repository root)::

    python -m experiments.bench_fit               # full run, a few minutes on 2 cores
    python -m experiments.bench_fit --quick       # seconds: few epochs, N = 1 and 4
    python -m experiments.bench_fit --out bench.json

The exit status is 1 when a sweep's members differ from their sequential fits by more than
float32 rounding, 0 otherwise (a missed speed target is reported, not an error).
"""

from __future__ import annotations

import argparse
import itertools
import operator
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn
from experiments.bench_backprop import matmul_peak
from fnn import data, train
from fnn.io import atomic_write_json

SIZES = (64, 128, 128, 10)
LEARNING_RATE = 1e-3
BATCH = 128
XOR_SIZES = (2, 4, 1)
XOR_LEARNING_RATE = 1.0
TARGET_FIT_OVER_SCAN = 1.1
TARGET_SPEEDUP_TORCH = 2.5
TARGET_SPEEDUP_TORCH_XOR = 50.0
TARGET_SWEEP_SPEEDUP = 1.5
# Training amplifies rounding: after 10 epochs of Adam a float32 fit is already ~1e-2 (relative)
# away from the same fit in float64, and any reordering of float32 sums (a batched against a
# single matmul) moves it as far. So "equal within float32 rounding" is judged against that
# distance: a member may differ from its sequential fit by at most this many times the
# sequential fit's own distance from its float64 twin.
ROUNDING_FACTOR = 4.0
ROUNDING_FLOOR = 1e-6  # plus a few float32 ulps of a unit parameter, for runs that barely diverge


class Settings(NamedTuple):
    epochs: int  # A
    rounds: int  # A and B
    xor_steps: int  # B: fit epochs (one full-batch step each)
    torch_xor_steps: int  # B: torch steps per timed call
    sweep_sizes: tuple[int, ...]  # C
    sweep_epochs: int
    sweep_rounds: dict[int, int]
    chunk: int  # most members per vmapped chunk
    sequential_subset: int  # sequential fits timed per round, scaled to N


def settings(quick: bool) -> Settings:
    if quick:
        return Settings(5, 3, 2000, 200, (1, 4), 2, {1: 3, 4: 3}, 2, 4)
    return Settings(50, 7, 10000, 2000, (1, 8, 64, 256), 10, {1: 5, 8: 3, 64: 2, 256: 2}, 16, 16)


# ----------------------------------------------------------------------------------------
# Timing.
# ----------------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, dict[str, float]]:
    """Warm each up (its compile), then time in rounds, alternating the order; medians."""
    first = {name: _timed(fn) for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    items = list(fns.items())
    for r in range(rounds):
        for name, fn in items if r % 2 == 0 else items[::-1]:
            times[name].append(_timed(fn))
    out = {}
    for name, ts in times.items():
        median = statistics.median(ts)
        compile_s = max(first[name] - median, 0.0)
        out[name] = {"median_s": median, "calls": len(ts), "first_call_s": first[name], "compile_s": compile_s}
    return out


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _to_float64(tree: Any) -> Any:
    return jax.tree.map(lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def float64_fit(trainer: train.Trainer, state: train.TrainState, x, y, hp, **kwargs) -> Any:
    """The parameters of ``fit`` from ``state`` (float32) carried out in float64: the exact run."""
    with jax.enable_x64(True):
        fitted, _ = trainer.fit(_to_float64(state), (jnp.asarray(x, jnp.float64), y), None, hp, **kwargs)
        return jax.tree.map(np.asarray, fitted.params)


def max_difference(a: Any, b: Any) -> tuple[float, float]:
    """(max |a - b|, that over max |b|) over all leaves."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    diff = max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in pairs)
    scale = max(float(np.max(np.abs(np.asarray(v)))) for v in jax.tree.leaves(b))
    return diff, diff / scale


# ----------------------------------------------------------------------------------------
# A. Digits: fit against a hand-written scan, a Python loop of jitted steps, PyTorch.
# ----------------------------------------------------------------------------------------


def digits_trainer(epochs: int) -> train.Trainer:
    model = fnn.MLP(SIZES, activation="relu")
    return train.Trainer(model, "cross_entropy", optimizer="adam", epochs=epochs, batch_size=BATCH)


def order_keys(state_key: jax.Array, epochs: int) -> jax.Array:
    """The keys of the minibatch orders ``fit`` draws from a state's key, one per epoch."""
    return jax.vmap(lambda e: jax.random.fold_in(jax.random.fold_in(state_key, e), 0))(jnp.arange(epochs))


def _loss(params, x, y):
    h = x
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["W"] + layer["b"])
    logits = h @ params[-1]["W"] + params[-1]["b"]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


_OPTIMIZER = optax.adam(LEARNING_RATE)


def _step(params, opt_state, x, y):
    value, grads = jax.value_and_grad(_loss)(params, x, y)
    updates, opt_state = _OPTIMIZER.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value


def _minibatches(x, y, key):
    full = x.shape[0] // BATCH
    order = jax.random.permutation(key, x.shape[0])[: full * BATCH].reshape(full, BATCH)
    return x[order], y[order]


@jax.jit
def hand_scan(params, x, y, keys):
    """The whole run as one program: scan over epochs (one order key each) of scan over steps."""

    def epoch(carry, key):
        def step(carry, batch):
            params, opt_state, value = _step(*carry, *batch)
            return (params, opt_state), value

        carry, values = jax.lax.scan(step, carry, _minibatches(x, y, key))
        return carry, jnp.mean(values)

    (params, _), losses = jax.lax.scan(epoch, (params, _OPTIMIZER.init(params)), keys)
    return params, losses


_jit_step = jax.jit(lambda params, opt_state, xs, ys, s: _step(params, opt_state, xs[s], ys[s]))
_jit_minibatches = jax.jit(_minibatches)
_jit_opt_init = jax.jit(_OPTIMIZER.init)


def python_loop(params, x, y, keys: Sequence[jax.Array]):
    opt_state = _jit_opt_init(params)
    for key in keys:
        xs, ys = _jit_minibatches(x, y, key)
        for s in range(xs.shape[0]):
            params, opt_state, _ = _jit_step(params, opt_state, xs, ys, s)
    return params


def torch_mlp(torch, params, activation: str):
    """A ``torch.nn.Sequential`` of Linear layers holding fnn's ``params`` (``W [in, out]`` transposed)."""
    layers = []
    for i, p in enumerate(params):
        W, b = np.asarray(p["W"]), np.asarray(p["b"])
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(linear)
        if i < len(params) - 1:
            layers.append(torch.nn.ReLU() if activation == "relu" else torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def torch_params(model) -> list[dict[str, np.ndarray]]:
    linears = [m for m in model if hasattr(m, "weight")]
    return [{"W": m.weight.detach().numpy().T, "b": m.bias.detach().numpy()} for m in linears]


def torch_digits(torch, params, x, y, orders: np.ndarray, fused: bool):
    """One run of PyTorch eager; ``orders [epochs, steps, batch]`` are the minibatch indices."""
    model = torch_mlp(torch, params, "relu")
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, **({"fused": True} if fused else {}))
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in orders:
        for idx in epoch:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
    return model


def bench_digits(cfg: Settings, torch) -> dict[str, Any]:
    x, y = data.load_digits()
    trainer = digits_trainer(cfg.epochs)
    hp = {"learning_rate": LEARNING_RATE}
    state = trainer.init(jax.random.key(0), hp)
    keys = order_keys(state.key, cfg.epochs)
    key_list = list(keys)
    fns: dict[str, Callable[[], Any]] = {
        "fnn fit": lambda: trainer.fit(state, (x, y), None, hp)[0].params,
        "hand-written scan": lambda: hand_scan(state.params, x, y, keys)[0],
        "jitted step, Python loop": lambda: python_loop(state.params, x, y, key_list),
    }
    if torch is not None:
        full = x.shape[0] // BATCH
        orders = np.asarray(jax.vmap(lambda k: jax.random.permutation(k, x.shape[0])[: full * BATCH])(keys))
        orders = torch.from_numpy(orders.reshape(cfg.epochs, full, BATCH).astype(np.int64))
        xt, yt = torch.from_numpy(np.array(x)), torch.from_numpy(np.array(y, np.int64))
        fns["PyTorch eager"] = lambda: torch_digits(torch, state.params, xt, yt, orders, fused=False)
        fns["PyTorch eager, fused Adam"] = lambda: torch_digits(torch, state.params, xt, yt, orders, fused=True)
    results = interleaved(fns, cfg.rounds)

    reference = fns["fnn fit"]()
    envelope = max_difference(reference, float64_fit(trainer, state, x, y, hp))[0]
    for name, fn in fns.items():
        out = fn()
        if name.startswith("PyTorch"):
            out = torch_params(out)
        results[name]["max_param_diff_vs_fit"] = max_difference(out, reference)[0]
    steps = cfg.epochs * (x.shape[0] // BATCH)
    for r in results.values():
        r["us_per_step"] = 1e6 * r["median_s"] / steps
    fit_s = results["fnn fit"]["median_s"]
    summary = {"epochs": cfg.epochs, "steps": steps, "methods": results, "fit_float32_vs_float64": envelope}
    summary["fit_over_scan"] = fit_s / results["hand-written scan"]["median_s"]
    summary["fit_over_scan_met"] = summary["fit_over_scan"] <= TARGET_FIT_OVER_SCAN
    if torch is not None:
        torch_s = min(results["PyTorch eager"]["median_s"], results["PyTorch eager, fused Adam"]["median_s"])
        summary["speedup_vs_torch"] = torch_s / fit_s
        summary["speedup_vs_torch_met"] = summary["speedup_vs_torch"] >= TARGET_SPEEDUP_TORCH
    return summary


# ----------------------------------------------------------------------------------------
# B. XOR: time per step of a tiny full-batch run.
# ----------------------------------------------------------------------------------------


def torch_xor(torch, params, x, y, steps: int):
    model = torch_mlp(torch, params, "tanh")
    optimizer = torch.optim.SGD(model.parameters(), lr=XOR_LEARNING_RATE)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    return model


def bench_xor(cfg: Settings, torch) -> dict[str, Any]:
    x, y = fnn.perceptron.truth_table("xor")
    y = y[:, None]
    model = fnn.MLP(XOR_SIZES, activation="tanh", scheme="glorot")
    trainer = train.Trainer(model, "binary_cross_entropy", optimizer="sgd", epochs=cfg.xor_steps)
    hp = {"learning_rate": XOR_LEARNING_RATE}
    state = trainer.init(jax.random.key(0), hp)
    fns: dict[str, Callable[[], Any]] = {"fnn fit": lambda: trainer.fit(state, (x, y), None, hp)[0].params}
    steps = {"fnn fit": cfg.xor_steps}
    if torch is not None:
        xt, yt = torch.from_numpy(np.array(x)), torch.from_numpy(np.array(y))
        fns["PyTorch eager"] = lambda: torch_xor(torch, state.params, xt, yt, cfg.torch_xor_steps)
        steps["PyTorch eager"] = cfg.torch_xor_steps
    results = interleaved(fns, cfg.rounds)
    for name, r in results.items():
        r["steps"] = steps[name]
        r["us_per_step"] = 1e6 * r["median_s"] / steps[name]
    accuracy = float(trainer.evaluate(fns["fnn fit"](), (), x, y)[1])
    summary = {"methods": results, "fit_accuracy": accuracy}
    if torch is not None:
        summary["speedup_vs_torch"] = results["PyTorch eager"]["us_per_step"] / results["fnn fit"]["us_per_step"]
        summary["speedup_vs_torch_met"] = summary["speedup_vs_torch"] >= TARGET_SPEEDUP_TORCH_XOR
    return summary


# ----------------------------------------------------------------------------------------
# C. Sweeps over seeds.
# ----------------------------------------------------------------------------------------


def model_flops(examples: int, epochs: int) -> int:
    weights = sum(a * b for a, b in itertools.pairwise(SIZES))
    return 6 * weights * examples * epochs


def bench_sweeps(cfg: Settings) -> dict[str, Any]:
    x, y = data.load_digits()
    trainer = digits_trainer(cfg.sweep_epochs)
    hp = {"learning_rate": LEARNING_RATE}
    shuffle_key = jax.random.key(12345)

    def one(key):
        return trainer.fit(trainer.init(key, hp), (x, y), None, hp)[0].params

    def one_shared(key):
        return trainer.fit(trainer.init(key, hp), (x, y), None, hp, shuffle_key=shuffle_key)[0].params

    sequential, sequential_shared = jax.jit(one), jax.jit(one_shared)
    naive = jax.jit(jax.vmap(one))

    def shared(keys: jax.Array, chunk: int) -> Any:
        return trainer.fit_many(keys, (x, y), None, hp, chunk_size=chunk, shuffle_key=shuffle_key)[0].params

    def methods(keys: jax.Array, subset: int, chunk: int) -> dict[str, Callable[[], Any]]:
        return {
            "naive vmap": lambda: naive(keys),
            "sequential": lambda: [sequential(keys[i]) for i in range(subset)],
            "fit_many, shared order, chunks": lambda: shared(keys, chunk),
        }

    rows = []
    for n in cfg.sweep_sizes:
        keys = jax.random.split(jax.random.key(n), n)
        subset = min(n, cfg.sequential_subset)
        chunk = min(cfg.chunk, n)
        print(f"[sweep N={n}] timing (chunks of {chunk}; sequential: {subset} fits, scaled to {n}) ...", flush=True)
        results = interleaved(methods(keys, subset, chunk), cfg.sweep_rounds.get(n, 2))
        for name, r in results.items():
            scaled = name.startswith("sequential")
            r["timed_fits"] = subset if scaled else n
            seconds = r["median_s"] * (n / subset if scaled else 1)
            r["models_per_s"] = n / seconds
        base = results["sequential"]["models_per_s"]
        for r in results.values():
            r["speedup_vs_sequential"] = r["models_per_s"] / base

        # Members against their sequential fits (same seed; same shuffle key for (iii)), and
        # those fits against their float64 twins: the size of float32 rounding after training.
        members = sorted({0, n // 2, n - 1})
        checks = {}
        for label, batched, single, kwargs in (
            ("naive", naive(keys), sequential, {}),
            ("shared", shared(keys, chunk), sequential_shared, {"shuffle_key": shuffle_key}),
        ):
            diff = rounding = 0.0
            for i in members:
                reference = single(keys[i])
                member = jax.tree.map(operator.itemgetter(i), batched)
                diff = max(diff, max_difference(member, reference)[0])
                exact = float64_fit(trainer, trainer.init(keys[i], hp), x, y, hp, **kwargs)
                rounding = max(rounding, max_difference(reference, exact)[0])
            ok = diff <= ROUNDING_FACTOR * rounding + ROUNDING_FLOOR
            checks[label] = {"max_diff": diff, "float32_vs_float64": rounding, "ok": ok}
        print(
            f"[sweep N={n}] members {members}, max |parameter difference| from their sequential fits: "
            + ", ".join(
                f"{label} {c['max_diff']:.1e} ({'ok' if c['ok'] else 'TOO LARGE'})" for label, c in checks.items()
            )
            + f"; float32 rounding of those fits (distance from float64) {checks['naive']['float32_vs_float64']:.1e}"
            f" and {checks['shared']['float32_vs_float64']:.1e}; allowed {ROUNDING_FACTOR:g}x that",
            flush=True,
        )
        rows.append(
            {
                "n": n,
                "chunk": chunk,
                "methods": results,
                "checked_members": members,
                "member_checks": checks,
            }
        )
    return {"epochs": cfg.sweep_epochs, "chunk": cfg.chunk, "rows": rows}


# ----------------------------------------------------------------------------------------
# Report.
# ----------------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def table(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any], torch_threads: int | None) -> str:
    sizes = "-".join(map(str, SIZES))
    lines = [f"A. digits MLP {sizes}, Adam, batch {BATCH}, {a['epochs']} epochs ({a['steps']} steps)"]
    lines.append(f"   {'method':<30}{'run ms':>9}{'us/step':>9}{'x fit':>7}{'compile s':>11}{'max|dparam|':>13}")
    fit_s = a["methods"]["fnn fit"]["median_s"]
    for name, r in a["methods"].items():
        compile_s = "-" if name.startswith("PyTorch") else f"{r['compile_s']:.2f}"
        lines.append(
            f"   {name:<30}{1e3 * r['median_s']:>9.1f}{r['us_per_step']:>9.1f}{r['median_s'] / fit_s:>7.2f}"
            f"{compile_s:>11}{r['max_param_diff_vs_fit']:>13.1e}"
        )
    lines.append(f"   (max|dparam| of fit float32 from the same fit in float64: {a['fit_float32_vs_float64']:.1e})")
    lines.append(f"B. XOR {'-'.join(map(str, XOR_SIZES))}, full-batch SGD, per step")
    for name, r in b["methods"].items():
        lines.append(f"   {name:<30}{r['us_per_step']:>9.2f} us/step  ({r['steps']} steps per call)")
    lines.append(f"C. sweeps, {c['epochs']} epochs: models/s (x sequential, % of matmul peak)")
    names = list(c["rows"][0]["methods"])
    lines.append(f"   {'':<34}" + "".join(f"{'N = ' + str(row['n']):>21}" for row in c["rows"]))
    for name in names:
        cells = []
        for row in c["rows"]:
            r = row["methods"][name]
            cells.append(f"{r['models_per_s']:.1f} ({r['speedup_vs_sequential']:.2f}x, {100 * r['frac_peak']:.0f}%)")
        lines.append(f"   {name:<34}" + "".join(f"{cell:>21}" for cell in cells))
    subset = c["rows"][-1]["methods"]["sequential"]["timed_fits"]
    lines.append(f"   (sequential rows: {subset} fits timed, scaled to N; chunks of min({c['chunk']}, N) members)")
    lines.append("Targets:")
    lines.append(
        f"   A fit / hand-written scan = {a['fit_over_scan']:.3f} (<= {TARGET_FIT_OVER_SCAN}) "
        f"-> {_met(a['fit_over_scan_met'])}"
    )
    if "speedup_vs_torch" in a:
        lines.append(
            f"   A PyTorch eager (faster Adam, {torch_threads} threads) / fit = {a['speedup_vs_torch']:.2f}x "
            f"(>= {TARGET_SPEEDUP_TORCH}x) -> {_met(a['speedup_vs_torch_met'])}"
        )
        lines.append(
            f"   B PyTorch eager / fit per step = {b['speedup_vs_torch']:.1f}x (>= {TARGET_SPEEDUP_TORCH_XOR:g}x) "
            f"-> {_met(b['speedup_vs_torch_met'])}"
        )
    else:
        lines.append("   A, B against PyTorch: skipped (torch is not installed)")
    last = c["rows"][-1]
    best = max((n for n in names if "shared" in n), key=lambda n: last["methods"][n]["models_per_s"])
    speedup = last["methods"][best]["speedup_vs_sequential"]
    lines.append(
        f"   C N={last['n']}: {best} / sequential = {speedup:.2f}x (>= {TARGET_SWEEP_SPEEDUP}x) "
        f"-> {_met(speedup >= TARGET_SWEEP_SPEEDUP)}"
    )
    return "\n".join(lines)


def _import_torch(threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_fit", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few epochs, N = 1 and 4 (seconds)")
    parser.add_argument("--out", metavar="PATH", help="write the numbers as JSON to PATH (atomically)")
    args = parser.parse_args(argv)
    cfg = settings(args.quick)

    total = time.perf_counter()
    device = jax.devices()[0]
    threads = cores()
    torch = _import_torch(threads)
    print(f"jax {jax.__version__}, {device.platform} ({device.device_kind}), {threads} cores", flush=True)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
        if torch is not None
        else "torch is not installed: the PyTorch baselines are skipped",
        flush=True,
    )
    before = matmul_peak(args.quick)
    print("A. digits ...", flush=True)
    a = bench_digits(cfg, torch)
    print("B. XOR ...", flush=True)
    b = bench_xor(cfg, torch)
    print("C. sweeps ...", flush=True)
    c = bench_sweeps(cfg)
    peak = max(before, matmul_peak(args.quick), key=lambda m: m["flops_per_s"])
    flops = model_flops((1797 // BATCH) * BATCH, cfg.sweep_epochs)
    for row in c["rows"]:
        for r in row["methods"].values():
            r["frac_peak"] = r["models_per_s"] * flops / peak["flops_per_s"]
    print(
        f"matmul peak: {peak['n']}^3 float32 in {1e3 * peak['seconds']:.1f} ms = "
        f"{peak['flops_per_s'] / 1e9:.1f} GFLOP/s (best of before/after); a digits model is {flops / 1e9:.2f} GFLOP",
        flush=True,
    )
    print()
    print(table(a, b, c, threads if torch is not None else None))
    print(f"Medians of interleaved rounds on a shared machine: noisy. Total {time.perf_counter() - total:.0f} s")

    agree = all(check["ok"] for row in c["rows"] for check in row["member_checks"].values())
    if args.out:
        atomic_write_json(
            args.out,
            {
                "quick": args.quick,
                "jax_version": jax.__version__,
                "torch_version": None if torch is None else torch.__version__,
                "platform": device.platform,
                "device_kind": device.device_kind,
                "cores": threads,
                "machine": platform.machine(),
                "matmul_peak": peak,
                "digits": a,
                "xor": b,
                "sweeps": c,
                "sweep_members_agree": agree,
            },
        )
        print(f"wrote {args.out}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
