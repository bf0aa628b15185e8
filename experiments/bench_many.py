r"""Benchmark: many training runs as one program (:func:`fnn.train.many.fit_many`) against sequential fits.

What it measures (every baseline in the same run, float32, on JAX's CPU devices)
  A. *Digits sweep*: 256 digits MLPs 64-128-128-10 (ReLU, He init), one seed each,
     cross-entropy, Adam at 1e-3, batch 128 (the last 5 of the 1797 digits dropped each
     epoch), 10 epochs of 14 steps, trained by

     (i) sequential ``Trainer.fit`` calls, one per seed, as a user calls them, from states
         made by ``Trainer.init`` before the clock starts (only the first 16 are timed and
         the time scaled to 256, as in :mod:`experiments.bench_fit`);
     (ii) one ``fit_many`` call over the 256 keys, ``chunk_size=16`` members per device at
          once (as bench_fit's chunks; on 2 cores it beat 32, 64 and 128 in a 2-epoch trial),
          every member shuffling its own minibatch order;
     (iii) the same with ``shuffle_key``: all members share one order, so XLA computes
           their first-layer products as one matmul.

     Reported: models per second, the speedup over (i) timed in the same process, and the
     fraction of the machine's matmul peak, counting
     :math:`6 \times \#\mathrm{weights} \times \mathrm{examples} \times \mathrm{epochs}`
     FLOPs per model (:func:`experiments.bench_fit.model_flops`; biases, activations, Adam
     ignored). Target: on 2 devices, the faster of (ii) and (iii) at least 3x the models per
     second of (i); the matmul-peak fraction is reported against a goal of 50%.
  B. *A user's seed sweep*: 8 seeds of an MLP 40-100-100-10 (ReLU), cross-entropy, Adam at
     1e-3, batch 100 on 1000 examples of 40 features (``fnn.data.blobs``, 10 classes, std 4),
     600 epochs = 6000 steps, as one ``fit_many`` call (no chunking) against 8 sequential
     fits. Both are compiled ahead of time, f = ``fit_many`` over the 8 keys and f =
     ``Trainer.init`` + ``Trainer.fit`` of one key, each as ``jax.jit(f).lower(...)`` then
     ``.compile()``, timed separately, once each, before anything of this trainer has run
     in the process; the compile time compared is lower + compile. The run times are those
     of the two compiled executables (the one-key program called once per seed), so no
     call compiles again. Targets: ``fit_many`` at least as fast as the 8 fits (>= 1x),
     and its compile time at most 1.5x one fit's.
  C. *Peak memory*: 4096 digits MLPs (as in A but for 1 epoch), one ``fit_many`` with
     ``chunk_size=256`` against one without chunking: the bytes that the compiled programs'
     ``Compiled.memory_analysis()`` reports (per device: argument + output + temp, the
     total compared; XLA's own ``peak_memory_in_bytes`` is printed too, though on CPU with
     jax 0.10.2 it counts about argument + output only). Both programs are compiled, never
     run.

  Correctness: members 0, M/2 and M-1 of (ii) and (iii) (from their last timed call) are
  compared with their sequential fits (with the same shuffle key for (iii)). Their largest
  parameter difference must stay within 4x the sequential fit's own distance from the same
  fit in float64 plus 1e-6 (:data:`experiments.bench_fit.ROUNDING_FACTOR` and
  ``ROUNDING_FLOOR``: training amplifies float32 rounding, so a fixed tolerance would not
  separate rounding from error).

How
  The number of JAX's CPU devices is fixed when JAX starts, so the parent process trains
  nothing: it runs this script again as a child, ``python -m experiments.bench_many --child
  N``, once for N = 1 and 2 devices (and N = ``os.cpu_count()`` when that is more), with
  ``--xla_force_host_platform_device_count=N`` appended to ``XLA_FLAGS`` and
  ``JAX_PLATFORMS=cpu`` in the child's environment, and collects the JSON each child
  writes; one child at a time. With ``--quick`` (whose timings mean nothing) the children
  run at once, and B runs only with 1 device and C only with the most, so that every code
  path runs in well under a minute. The library never sets XLA flags; only this script does,
  for its children.
  A full run's children each run A, B and C, with ``fit_many``'s default mesh (every device on
  ``"members"``); sequential fits run on the first device. Timed calls are interleaved in
  rounds as in bench_fit (:func:`experiments.bench_fit.interleaved`: a warm-up call first,
  the order reversed every other round, medians). The matmul peak
  (:func:`experiments.bench_backprop.matmul_peak`) is measured in every child before and
  after; fractions are taken against the best of all. Ratios are taken within one child,
  whose baselines were interleaved with it. Timings on a shared 2-core machine are noisy:
  read ratios, not absolutes.

How to run it (from the repository root)::

    python -m experiments.bench_many               # full run, several minutes on 2 cores
    python -m experiments.bench_many --quick       # tiny sizes, every code path (~40 s on 2 idle cores)
    python -m experiments.bench_many --out bench.json

The exit status is 1 when a child fails or a ``fit_many`` member differs from its
sequential fit by more than float32 rounding, 0 otherwise (a missed target is reported as
FAIL, not an error).
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax

import fnn
from experiments.bench_backprop import matmul_peak
from experiments.bench_fit import (
    BATCH,
    LEARNING_RATE,
    ROUNDING_FACTOR,
    ROUNDING_FLOOR,
    SIZES,
    digits_trainer,
    float64_fit,
    interleaved,
    max_difference,
    model_flops,
)
from fnn import data, train
from fnn.io import atomic_write_json
from fnn.train import many

TARGET_SPEEDUP = 3.0  # A: fit_many on 2 devices over sequential fits, models per second
GOAL_PEAK_FRACTION = 0.5  # A: reported, not a pass/fail target
TARGET_USER_SPEEDUP = 1.0  # B: fit_many no slower than the sequential fits
TARGET_COMPILE_RATIO = 1.5  # B: compile(fit_many, 8 members) / compile(one fit)
USER_SIZES = (40, 100, 100, 10)
USER_BATCH = 100
USER_CLASSES = 10
DIGITS = 1797
ROOT = Path(__file__).resolve().parents[1]


class Settings(NamedTuple):
    members: int  # A
    epochs: int
    chunk: int  # A: members per device at once
    sequential_subset: int  # A: sequential fits timed per round, scaled to the members
    rounds: int
    user_seeds: int  # B
    user_examples: int
    user_epochs: int
    user_rounds: int
    memory_members: int  # C
    memory_chunk: int
    memory_epochs: int


def settings(quick: bool) -> Settings:
    if quick:
        # 7 members: padded on 1 device (chunks of 2) and on 2 devices (2 chunks of 2 each).
        return Settings(7, 2, 2, 3, 1, 8, 200, 5, 1, 64, 8, 1)
    return Settings(256, 10, 16, 16, 3, 8, 1000, 600, 2, 4096, 256, 1)


def device_counts() -> list[int]:
    cpus = os.cpu_count() or 1
    return sorted({1, 2, cpus})


def _keeping(last: dict[str, Any], name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn``, its latest result kept in ``last[name]`` (the correctness check reuses it)."""

    def call():
        last[name] = fn()
        return last[name]

    return call


# ----------------------------------------------------------------------------------------
# A. 256 digits MLPs: fit_many against sequential fits.
# ----------------------------------------------------------------------------------------


def bench_sweep(cfg: Settings, tag: str) -> dict[str, Any]:
    x, y = data.load_digits()
    trainer = digits_trainer(cfg.epochs)
    hp = {"learning_rate": LEARNING_RATE}
    keys = jax.random.split(jax.random.key(0), cfg.members)
    shuffle_key = jax.random.key(12345)
    subset = min(cfg.members, cfg.sequential_subset)
    states = [trainer.init(keys[i], hp) for i in range(subset)]
    layout = many.plan(cfg.members, len(jax.devices()), cfg.chunk)

    def sequential():
        return [trainer.fit(s, (x, y), None, hp)[0].params for s in states]

    def members(**options):
        return lambda: many.fit_many(trainer, keys, (x, y), None, hp, chunk_size=cfg.chunk, **options)[0].params

    last: dict[str, Any] = {}
    fns = {
        "sequential fit": sequential,
        "fit_many": _keeping(last, "fit_many", members()),
        "fit_many, shared order": _keeping(last, "fit_many, shared order", members(shuffle_key=shuffle_key)),
    }
    print(
        f"{tag} A: {cfg.members} digits MLPs, {cfg.epochs} epochs; {layout}; sequential: {subset} fits, "
        f"scaled to {cfg.members} ...",
        flush=True,
    )
    results = interleaved(fns, cfg.rounds)
    for name, r in results.items():
        timed = subset if name == "sequential fit" else cfg.members
        r["timed_fits"] = timed
        r["models_per_s"] = timed / r["median_s"]
    base = results["sequential fit"]["models_per_s"]
    for r in results.values():
        r["speedup_vs_sequential"] = r["models_per_s"] / base

    checked = sorted({0, cfg.members // 2, cfg.members - 1})
    checks = {}
    for name, kwargs in (("fit_many", {}), ("fit_many, shared order", {"shuffle_key": shuffle_key})):
        diff = rounding = 0.0
        for i in checked:
            state = trainer.init(keys[i], hp)
            reference = trainer.fit(state, (x, y), None, hp, **kwargs)[0].params
            member = jax.tree.map(operator.itemgetter(i), last[name])
            diff = max(diff, max_difference(member, reference)[0])
            rounding = max(rounding, max_difference(reference, float64_fit(trainer, state, x, y, hp, **kwargs))[0])
        ok = diff <= ROUNDING_FACTOR * rounding + ROUNDING_FLOOR
        checks[name] = {"max_diff": diff, "float32_vs_float64": rounding, "ok": ok}
    print(
        f"{tag} A: members {checked} against their sequential fits, max |parameter difference| "
        + ", ".join(f"{n} {c['max_diff']:.1e} ({'ok' if c['ok'] else 'TOO LARGE'})" for n, c in checks.items())
        + "; float32 rounding of those fits (distance from float64) "
        + " and ".join(f"{c['float32_vs_float64']:.1e}" for c in checks.values())
        + f"; allowed {ROUNDING_FACTOR:g}x that + {ROUNDING_FLOOR:g}",
        flush=True,
    )
    return {
        "members": cfg.members,
        "epochs": cfg.epochs,
        "chunk_size": cfg.chunk,
        "plan": layout._asdict(),
        "methods": results,
        "checked_members": checked,
        "member_checks": checks,
        "flops_per_model": model_flops((DIGITS // BATCH) * BATCH, cfg.epochs),
    }


# ----------------------------------------------------------------------------------------
# B. A user's case: 8 seeds of a 40-100-100-10 MLP for 6000 steps.
# ----------------------------------------------------------------------------------------


def user_trainer(epochs: int) -> train.Trainer:
    model = fnn.MLP(USER_SIZES, activation="relu")
    return train.Trainer(model, "cross_entropy", optimizer="adam", epochs=epochs, batch_size=USER_BATCH)


def compile_times(fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """Seconds to ``jax.jit(fn).lower(*args)`` and to ``.compile()`` it, each timed once, and the program."""
    start = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    done = time.perf_counter()
    return {"lower_s": lowered_at - start, "compile_s": done - lowered_at, "total_s": done - start}, compiled


def bench_user(cfg: Settings, tag: str) -> dict[str, Any]:
    x, y = data.blobs(jax.random.key(1), cfg.user_examples, centers=USER_CLASSES, features=USER_SIZES[0], std=4.0)
    trainer = user_trainer(cfg.user_epochs)
    hp = {"learning_rate": LEARNING_RATE}
    keys = jax.random.split(jax.random.key(2), cfg.user_seeds)
    steps = cfg.user_epochs * (cfg.user_examples // USER_BATCH)
    print(
        f"{tag} B: {cfg.user_seeds} seeds of {'-'.join(map(str, USER_SIZES))}, {steps} steps; compiling ahead of time ...",
        flush=True,
    )

    def one(key, x, y, hp):
        return trainer.fit(trainer.init(key, hp), (x, y), None, hp)

    def members(keys, x, y, hp):
        return many.fit_many(trainer, keys, (x, y), None, hp)

    # Each compiled once, before anything of this trainer ran in this process.
    compile_one, compiled_one = compile_times(one, keys[0], x, y, hp)
    compile_many, compiled_many = compile_times(members, keys, x, y, hp)
    compile_ratio = compile_many["total_s"] / compile_one["total_s"]
    print(
        f"{tag} B: lower + compile: one fit {compile_one['total_s']:.2f} s, fit_many of {cfg.user_seeds} "
        f"{compile_many['total_s']:.2f} s ({compile_ratio:.2f}x); timing ...",
        flush=True,
    )

    seeds = list(keys)
    fns = {
        f"{cfg.user_seeds} sequential fits": lambda: [compiled_one(k, x, y, hp)[0].params for k in seeds],
        "fit_many": lambda: compiled_many(keys, x, y, hp)[0].params,
    }
    results = interleaved(fns, cfg.user_rounds)
    sequential_s = results[f"{cfg.user_seeds} sequential fits"]["median_s"]
    many_s = results["fit_many"]["median_s"]
    return {
        "seeds": cfg.user_seeds,
        "examples": cfg.user_examples,
        "epochs": cfg.user_epochs,
        "steps": steps,
        "methods": results,
        "speedup": sequential_s / many_s,
        "compile_one_fit": compile_one,
        "compile_fit_many": compile_many,
        "compile_ratio": compile_ratio,
    }


# ----------------------------------------------------------------------------------------
# C. Peak memory of 4096 members, chunked against not.
# ----------------------------------------------------------------------------------------

_MEMORY_FIELDS = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes", "alias_size_in_bytes")


def memory(compiled: Any) -> dict[str, Any]:
    """The byte counts of ``Compiled.memory_analysis()`` (``None`` where the backend gives none)."""
    stats = compiled.memory_analysis()
    if stats is None:
        return {"available": False}
    out = {name: int(getattr(stats, name)) for name in _MEMORY_FIELDS}
    out["total_bytes"] = out["argument_size_in_bytes"] + out["output_size_in_bytes"] + out["temp_size_in_bytes"]
    peak = getattr(stats, "peak_memory_in_bytes", None)
    out["peak_memory_in_bytes"] = None if peak is None else int(peak)
    out["available"] = True
    return out


def bench_memory(cfg: Settings, tag: str) -> dict[str, Any]:
    x, y = data.load_digits()
    trainer = digits_trainer(cfg.memory_epochs)
    hp = {"learning_rate": LEARNING_RATE}
    keys = jax.random.split(jax.random.key(3), cfg.memory_members)
    devices = len(jax.devices())
    rows = {}
    for label, chunk in (("chunked", cfg.memory_chunk), ("unchunked", None)):

        def members(keys, x, y, hp, chunk=chunk):
            return many.fit_many(trainer, keys, (x, y), None, hp, chunk_size=chunk)

        print(f"{tag} C: compiling {cfg.memory_members} members, chunk_size={chunk} ...", flush=True)
        times, compiled = compile_times(members, keys, x, y, hp)
        rows[label] = {
            "chunk_size": chunk,
            "plan": many.plan(cfg.memory_members, devices, chunk)._asdict(),
            **times,
            **memory(compiled),
        }
    out = {"members": cfg.memory_members, "epochs": cfg.memory_epochs, "rows": rows}
    if rows["chunked"]["available"] and rows["unchunked"]["available"]:
        out["total_ratio"] = rows["unchunked"]["total_bytes"] / rows["chunked"]["total_bytes"]
        out["temp_ratio"] = rows["unchunked"]["temp_size_in_bytes"] / max(rows["chunked"]["temp_size_in_bytes"], 1)
    return out


# ----------------------------------------------------------------------------------------
# The child: one device count.
# ----------------------------------------------------------------------------------------


def parts(devices: int, counts: Sequence[int], quick: bool) -> str:
    """The parts a child runs: all of them; with ``quick``, A everywhere, B with 1 device, C with the most."""
    if not quick:
        return "ABC"
    return "A" + ("B" if devices == min(counts) else "") + ("C" if devices == max(counts) else "")


def child(cfg: Settings, quick: bool, devices: int, which: str, out: str) -> int:
    found = jax.devices()
    tag = f"[{len(found)} device{'s' if len(found) > 1 else ''}]"
    if len(found) != devices:
        print(f"{tag} asked for {devices} devices, JAX has {found}", file=sys.stderr, flush=True)
        return 2
    print(f"{tag} jax {jax.__version__}, {found[0].platform} ({found[0].device_kind})", flush=True)
    before = matmul_peak(quick)
    a = bench_sweep(cfg, tag)
    result = {"devices": len(found), "platform": found[0].platform, "device_kind": found[0].device_kind, "sweep": a}
    if "B" in which:
        result["user"] = bench_user(cfg, tag)
    if "C" in which:
        result["memory"] = bench_memory(cfg, tag)
    after = matmul_peak(quick)
    result["matmul_peak"] = max(before, after, key=lambda m: m["flops_per_s"])
    atomic_write_json(out, result)
    return 0 if all(check["ok"] for check in a["member_checks"].values()) else 1


def start_child(devices: int, quick: bool, which: str, out: str) -> subprocess.Popen:
    """``python -m experiments.bench_many --child N`` with N forced CPU devices, writing its JSON to ``out``."""
    env = dict(os.environ)
    flag = f"--xla_force_host_platform_device_count={devices}"
    env["XLA_FLAGS"] = f"{env['XLA_FLAGS']} {flag}" if env.get("XLA_FLAGS") else flag
    env["JAX_PLATFORMS"] = "cpu"
    command = [sys.executable, "-m", "experiments.bench_many", "--child", str(devices), "--parts", which]
    command += ["--child-out", out]
    return subprocess.Popen(command + (["--quick"] if quick else []), env=env, cwd=ROOT)


def run_children(counts: Sequence[int], quick: bool, directory: str) -> tuple[dict[int, Any], dict[int, int]]:
    """Each child's JSON and exit status. One child at a time, so that no two share the cores while
    timing; with ``quick`` (timings that mean nothing, mostly compiling) all at once, each running
    only the parts :func:`parts` gives it."""
    paths = {n: os.path.join(directory, f"child{n}.json") for n in counts}
    statuses: dict[int, int] = {}
    running: dict[int, subprocess.Popen] = {}
    for n in counts:
        running[n] = start_child(n, quick, parts(n, counts, quick), paths[n])
        if not quick:
            statuses[n] = running[n].wait()
    for n, process in running.items():
        statuses[n] = process.wait()
    children = {}
    for n in counts:
        if os.path.exists(paths[n]):
            with open(paths[n]) as f:
                children[n] = json.load(f)
        if statuses[n] not in (0, 1) or n not in children:
            print(f"child with {n} devices failed (exit status {statuses[n]})", file=sys.stderr, flush=True)
    return children, statuses


# ----------------------------------------------------------------------------------------
# Report.
# ----------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def table(children: dict[int, dict[str, Any]], peak: dict[str, float]) -> tuple[str, dict[str, Any]]:
    counts = sorted(children)
    a0 = children[counts[0]]["sweep"]
    users = [n for n in counts if "user" in children[n]]
    memories = [n for n in counts if "memory" in children[n]]
    width = 30
    head = "".join(f"{f'{n} device' + ('s' if n > 1 else ''):>{width}}" for n in counts)
    lines = [
        f"A. {a0['members']} digits MLPs {'-'.join(map(str, SIZES))}, Adam, batch {BATCH}, {a0['epochs']} epochs, "
        f"chunk_size {a0['chunk_size']}: models/s (x sequential, % of matmul peak; compile s)"
    ]
    lines.append(f"   {'':<28}{head}")
    for name in a0["methods"]:
        cells = []
        for n in counts:
            r = children[n]["sweep"]["methods"][name]
            cells.append(
                f"{r['models_per_s']:.1f} ({r['speedup_vs_sequential']:.2f}x, {100 * r['frac_peak']:.1f}%; "
                f"{r['compile_s']:.1f})"
            )
        label = name if name != "sequential fit" else f"sequential fit ({a0['methods'][name]['timed_fits']} timed)"
        lines.append(f"   {label:<28}" + "".join(f"{cell:>{width}}" for cell in cells))
    lines.append("   " + "; ".join(f"{n} dev: plan {tuple(children[n]['sweep']['plan'].values())}" for n in counts))
    for n in counts:
        checks = children[n]["sweep"]["member_checks"]
        lines.append(
            f"   {n} dev: max|dparam| of members {children[n]['sweep']['checked_members']} from their sequential fits: "
            + ", ".join(
                f"{k} {c['max_diff']:.1e} (float32 rounding {c['float32_vs_float64']:.1e}, "
                f"{'ok' if c['ok'] else 'TOO LARGE'})"
                for k, c in checks.items()
            )
        )
    if users:
        lines += _user_rows(children, users, width)
    if memories:
        lines += _memory_rows(children, memories)
    return _targets(children, counts, users, peak, a0, lines)


def _user_rows(children: dict[int, dict[str, Any]], users: list[int], width: int) -> list[str]:
    b0 = children[users[0]]["user"]
    lines = []
    head = "".join(f"{f'{n} device' + ('s' if n > 1 else ''):>{width}}" for n in users)
    lines.append(
        f"B. {b0['seeds']} seeds of {'-'.join(map(str, USER_SIZES))}, Adam, batch {USER_BATCH}, {b0['examples']} "
        f"examples x {b0['epochs']} epochs = {b0['steps']} steps"
    )
    lines.append(f"   {'':<28}{head}")
    seq_name = f"{b0['seeds']} sequential fits"
    rows = [
        (f"{seq_name} s", lambda b: f"{b['methods'][seq_name]['median_s']:.2f}"),
        ("fit_many s", lambda b: f"{b['methods']['fit_many']['median_s']:.2f}"),
        ("speedup (sequential / many)", lambda b: f"{b['speedup']:.2f}x"),
        (
            "compile one fit: lower+comp",
            lambda b: f"{b['compile_one_fit']['lower_s']:.2f}+{b['compile_one_fit']['compile_s']:.2f} s",
        ),
        (
            "compile fit_many: lower+comp",
            lambda b: f"{b['compile_fit_many']['lower_s']:.2f}+{b['compile_fit_many']['compile_s']:.2f} s",
        ),
        ("compile ratio (many / one)", lambda b: f"{b['compile_ratio']:.2f}x"),
    ]
    for label, cell in rows:
        lines.append(f"   {label:<28}" + "".join(f"{cell(children[n]['user']):>{width}}" for n in users))
    return lines


def _memory_rows(children: dict[int, dict[str, Any]], memories: list[int]) -> list[str]:
    c0 = children[memories[0]]["memory"]
    lines = []
    lines.append(
        f"C. {c0['members']} digits MLPs ({c0['epochs']} epoch), compiled memory_analysis() per device, MiB "
        "(argument / output / temp / total = arg+out+temp / XLA peak)"
    )
    for n in memories:
        c = children[n]["memory"]
        for label, r in c["rows"].items():
            if not r["available"]:
                lines.append(f"   {n} dev {label:<10} memory_analysis() unavailable")
                continue
            lines.append(
                f"   {n} dev {label:<10} chunk_size {str(r['chunk_size']):>5}: {_mib(r['argument_size_in_bytes'])} / "
                f"{_mib(r['output_size_in_bytes'])} / {_mib(r['temp_size_in_bytes'])} / {_mib(r['total_bytes'])} / "
                f"{_mib(r['peak_memory_in_bytes'])}  (compiled in {r['total_s']:.1f} s)"
            )
        if "total_ratio" in c:
            lines.append(f"   {n} dev unchunked / chunked: total {c['total_ratio']:.2f}x, temp {c['temp_ratio']:.2f}x")
    return lines


def _targets(
    children: dict[int, dict[str, Any]],
    counts: list[int],
    users: list[int],
    peak: dict[str, float],
    a0: dict[str, Any],
    lines: list[str],
) -> tuple[str, dict[str, Any]]:
    verdicts: dict[str, Any] = {}
    lines.append("Targets:")
    for n in counts:
        if n < 2:
            continue
        methods = children[n]["sweep"]["methods"]
        best = max((m for m in methods if m.startswith("fit_many")), key=lambda m: methods[m]["models_per_s"])
        speedup = methods[best]["speedup_vs_sequential"]
        ok = speedup >= TARGET_SPEEDUP
        verdicts[f"A_speedup_{n}_devices"] = {"method": best, "speedup": speedup, "pass": ok}
        lines.append(
            f"   A {n} devices: {best} / sequential fit = {speedup:.2f}x models/s (>= {TARGET_SPEEDUP:g}x) "
            f"-> {_verdict(ok)}"
        )
    for n in counts:
        methods = children[n]["sweep"]["methods"]
        best = max(methods, key=lambda m: methods[m]["frac_peak"])
        fraction = methods[best]["frac_peak"]
        verdicts[f"A_peak_fraction_{n}_devices"] = {"method": best, "fraction": fraction}
        lines.append(
            f"   A {n} device{'s' if n > 1 else ''}: best matmul-peak fraction {100 * fraction:.1f}% ({best}); "
            f"goal {100 * GOAL_PEAK_FRACTION:.0f}% -> {'reached' if fraction >= GOAL_PEAK_FRACTION else 'not reached'}"
        )
    for n in users:
        b = children[n]["user"]
        speed_ok, compile_ok = b["speedup"] >= TARGET_USER_SPEEDUP, b["compile_ratio"] <= TARGET_COMPILE_RATIO
        verdicts[f"B_{n}_devices"] = {"speedup_pass": speed_ok, "compile_pass": compile_ok}
        lines.append(
            f"   B {n} device{'s' if n > 1 else ''}: run time, sequential / fit_many = {b['speedup']:.2f}x "
            f"(>= {TARGET_USER_SPEEDUP:g}x) -> {_verdict(speed_ok)}; compile (lower + compile), fit_many / one fit = "
            f"{b['compile_ratio']:.2f}x (<= {TARGET_COMPILE_RATIO:g}x) -> {_verdict(compile_ok)}"
        )
    lines.append(
        f"matmul peak (best of all children): {peak['n']}^3 float32 in {1e3 * peak['seconds']:.1f} ms = "
        f"{peak['flops_per_s'] / 1e9:.1f} GFLOP/s; a digits model of A is {a0['flops_per_model'] / 1e9:.3f} GFLOP"
    )
    return "\n".join(lines), verdicts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_many", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, every code path (~40 s on 2 idle cores)")
    parser.add_argument("--out", metavar="PATH", help="write the numbers as JSON to PATH (atomically)")
    parser.add_argument("--child", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--parts", default="ABC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cfg = settings(args.quick)
    if args.child is not None:
        if not args.child_out:
            parser.error("--child needs --child-out")
        return child(cfg, args.quick, args.child, args.parts, args.child_out)

    total = time.perf_counter()
    counts = device_counts()
    print(
        f"jax {jax.__version__}, {os.cpu_count()} CPUs; one child process per device count {counts} "
        "(XLA_FLAGS=--xla_force_host_platform_device_count=N, JAX_PLATFORMS=cpu)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench_many.") as tmp:
        children, statuses = run_children(counts, args.quick, tmp)
    if not children:
        return 1
    peak = max((c["matmul_peak"] for c in children.values()), key=lambda m: m["flops_per_s"])
    for c in children.values():
        flops = c["sweep"]["flops_per_model"]
        for r in c["sweep"]["methods"].values():
            r["frac_peak"] = r["models_per_s"] * flops / peak["flops_per_s"]
    print()
    text, verdicts = table(children, peak)
    print(text)
    agree = all(check["ok"] for c in children.values() for check in c["sweep"]["member_checks"].values())
    failed = sorted(n for n in counts if n not in children or statuses[n] not in (0, 1))
    if failed:
        print(f"children failed: {failed}")
    print(f"Medians of interleaved rounds on a shared machine: noisy. Total {time.perf_counter() - total:.0f} s")
    if args.out:
        atomic_write_json(
            args.out,
            {
                "quick": args.quick,
                "jax_version": jax.__version__,
                "cpu_count": os.cpu_count(),
                "machine": platform.machine(),
                "matmul_peak": peak,
                "children": {str(n): c for n, c in children.items()},
                "child_exit_status": {str(n): s for n, s in statuses.items()},
                "targets": verdicts,
                "members_agree": agree,
            },
        )
        print(f"wrote {args.out}")
    return 0 if agree and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
