r"""Benchmark: hand-written backprop (:mod:`fnn.backprop`) against ``jax.value_and_grad``.

What it measures
  The gradient computation of one training step of an MLP (float32, ReLU hidden layers,
  identity output, cross-entropy of logits with integer labels), computed two ways on the
  same parameters and the same batch, each compiled into one ``jax.jit``:

  (a) *hand*: ``fnn.backprop.value_and_grad(params, x, y, loss="cross_entropy", ...)``;
  (b) *jax.grad*: ``jax.value_and_grad(lambda p: loss(fnn.mlp.apply(p, x, ...), y))``.

  Two configurations: the digits-sized MLP 64-128-128-10 with batch 128, and a large
  1024-1024-1024-10 with batch 4096. The target is hand within 1.1x of jax.grad.

How
  1. Both functions are compiled and run once (``block_until_ready``).
  2. Their losses and gradients are compared; the error reported is, per parameter leaf,
     :math:`\max|g_\mathrm{hand} - g_\mathrm{jax}| / \max|g_\mathrm{jax}|`, maximised over
     leaves, and must stay below a float32 tolerance.
  3. They are timed in interleaved rounds (hand, jax, then jax, hand, ...) so that drift of
     the machine (frequency, other load) hits both alike; every call is timed on its own
     with ``time.perf_counter`` around the call and its ``block_until_ready``. The median
     per-call time of each is reported, and the ratio hand / jax.grad.
  4. The machine's float32 matmul throughput is measured in the same run: a jitted
     ``n x n @ n x n`` product (n = 2048, or 4096 when 2048 takes under 50 ms), with
     :math:`\mathrm{FLOP/s} = 2n^3 / t` at the best of several times t, measured before and
     after the configurations. Each configuration's achieved FLOP/s (at its median time) is
     reported as a fraction of it. A forward +
     backward pass costs :math:`\approx 6 \times \mathrm{batch} \times \#\mathrm{weights}`
     FLOPs (2 for each layer's forward product, 2 for its weight gradient, 2 for its input
     gradient); the count used is exactly that minus :math:`2 \times \mathrm{batch} \times
     d_0 d_1`, the first layer's input gradient, which neither method computes (XLA drops it
     as dead code). Biases, activations and the loss are ignored. This equals XLA's own
     ``cost_analysis()["flops"]`` of both compiled steps to within 0.1 %.

How to run it (from the repository root)::

    python -m experiments.bench_backprop               # full run, about 1-2 minutes on 2 cores
    python -m experiments.bench_backprop --quick       # ~10 s, mostly compiling; large config at batch 256
    python -m experiments.bench_backprop --out bench.json   # also write the numbers as JSON

The exit status is 1 when the two gradients disagree, 0 otherwise (a missed speed target is
reported, not an error: timings are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import backprop, losses, mlp

TARGET_RATIO = 1.1
LOSS = "cross_entropy"
ACTIVATION = "relu"
OUTPUT_ACTIVATION = "identity"
# Normwise relative error allowed between the two float32 gradients (sums over 4096 rows).
RTOL = 1e-4


class Config(NamedTuple):
    label: str
    sizes: tuple[int, ...]
    batch: int
    rounds: int  # interleaved rounds
    per_round: int  # timed calls of each method per round


def configs(quick: bool) -> list[Config]:
    if quick:
        return [
            Config("64-128-128-10", (64, 128, 128, 10), 128, rounds=6, per_round=20),
            Config("1024x3, b256", (1024, 1024, 1024, 10), 256, rounds=2, per_round=3),
        ]
    return [
        Config("64-128-128-10", (64, 128, 128, 10), 128, rounds=40, per_round=50),
        Config("1024x3, b4096", (1024, 1024, 1024, 10), 4096, rounds=15, per_round=2),
    ]


def step_flops(sizes: Sequence[int], batch: int) -> int:
    """6 x batch x weights, less the first layer's unused input gradient (2 x batch x d_0 d_1)."""
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 6 * batch * weights - 2 * batch * sizes[0] * sizes[1]


def _block(tree: Any) -> Any:
    return jax.block_until_ready(tree)


def _time_call(fn: Callable[..., Any], args: tuple[Any, ...]) -> float:
    start = time.perf_counter()
    _block(fn(*args))
    return time.perf_counter() - start


def matmul_peak(quick: bool) -> dict[str, float]:
    """Float32 matmul throughput of this machine: 2 n^3 / best time of a jitted n x n product."""
    matmul = jax.jit(jnp.matmul)
    n = 2048
    while True:
        ka, kb = jax.random.split(jax.random.key(n))
        a = jax.random.normal(ka, (n, n), jnp.float32)
        b = jax.random.normal(kb, (n, n), jnp.float32)
        _block(matmul(a, b))
        t = min(_time_call(matmul, (a, b)) for _ in range(3 if quick else 7))
        if quick or n >= 4096 or t >= 0.05:
            break
        n *= 2
    return {"n": n, "seconds": t, "flops_per_s": 2 * n**3 / t}


def make_functions() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The two jitted ``(params, x, y) -> (loss, grads)`` functions."""
    kwargs = {"activation": ACTIVATION, "output_activation": OUTPUT_ACTIVATION}

    def hand(params, x, y):
        return backprop.value_and_grad(params, x, y, loss=LOSS, **kwargs)

    loss = losses.get(LOSS)

    def objective(params, x, y):
        return loss(mlp.apply(params, x, **kwargs), y)

    return jax.jit(hand), jax.jit(jax.value_and_grad(objective))


def max_relative_error(hand: Any, ref: Any) -> float:
    """Max over leaves of max|hand - ref| / max|ref| (normwise, so tiny entries do not dominate)."""
    errors = jax.tree.map(
        lambda h, r: float(jnp.max(jnp.abs(h - r)) / jnp.maximum(jnp.max(jnp.abs(r)), jnp.finfo(r.dtype).tiny)),
        hand,
        ref,
    )
    return max(jax.tree.leaves(errors))


def run_config(cfg: Config, hand_fn, jax_fn) -> dict[str, Any]:
    k_params, k_x, k_y = jax.random.split(jax.random.key(0), 3)
    params = mlp.init(k_params, cfg.sizes, dtype=jnp.float32)
    x = jax.random.normal(k_x, (cfg.batch, cfg.sizes[0]), jnp.float32)
    y = jax.random.randint(k_y, (cfg.batch,), 0, cfg.sizes[-1])
    args = (params, x, y)

    start = time.perf_counter()
    hand_out = _block(hand_fn(*args))
    jax_out = _block(jax_fn(*args))
    first_call_s = time.perf_counter() - start

    rel_err = max_relative_error(hand_out[1], jax_out[1])
    loss_err = abs(float(hand_out[0]) - float(jax_out[0])) / max(abs(float(jax_out[0])), 1e-30)
    agree = rel_err <= RTOL and loss_err <= RTOL
    print(
        f"[{cfg.label}] compiled + first call {first_call_s:.2f} s; "
        f"max relative gradient error {rel_err:.2e}, loss {loss_err:.2e} "
        f"({'ok' if agree else 'MISMATCH'}, tolerance {RTOL:g})",
        flush=True,
    )

    hand_times: list[float] = []
    jax_times: list[float] = []
    pairs = [(hand_fn, hand_times), (jax_fn, jax_times)]
    for r in range(cfg.rounds):
        # Alternate which goes first, so neither always follows the other.
        for fn, times in pairs if r % 2 == 0 else pairs[::-1]:
            times.extend(_time_call(fn, args) for _ in range(cfg.per_round))

    hand_s, jax_s = statistics.median(hand_times), statistics.median(jax_times)
    flops = step_flops(cfg.sizes, cfg.batch)
    return {
        "label": cfg.label,
        "sizes": list(cfg.sizes),
        "batch": cfg.batch,
        "calls_each": len(hand_times),
        "max_rel_grad_error": rel_err,
        "rel_loss_error": loss_err,
        "gradients_agree": agree,
        "hand_ms": 1e3 * hand_s,
        "jax_ms": 1e3 * jax_s,
        "hand_ms_iqr": 1e3 * float(np.subtract(*np.percentile(hand_times, [75, 25]))),
        "jax_ms_iqr": 1e3 * float(np.subtract(*np.percentile(jax_times, [75, 25]))),
        "ratio_hand_over_jax": hand_s / jax_s,
        "flops_per_step": flops,
    }


def write_json(path: str, obj: Any) -> None:
    try:
        from fnn.io import atomic_write_json
    except ImportError:
        atomic_write_json = None
    if atomic_write_json is not None:
        atomic_write_json(path, obj)
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".bench_backprop.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def table(results: Sequence[dict[str, Any]]) -> str:
    lines = [f"{'config':<17}{'hand ms':>9}{'jax.grad ms':>13}{'hand/jax':>10}{'hand %peak':>12}{'jax %peak':>11}"]
    for r in results:
        lines.append(
            f"{r['label']:<17}{r['hand_ms']:>9.3f}{r['jax_ms']:>13.3f}{r['ratio_hand_over_jax']:>10.3f}"
            f"{100 * r['hand_frac_peak']:>11.1f}%{100 * r['jax_frac_peak']:>10.1f}%"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_backprop", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions, large config shrunk (seconds)")
    parser.add_argument("--out", metavar="PATH", help="write the numbers as JSON to PATH (atomically)")
    args = parser.parse_args(argv)

    total = time.perf_counter()
    device = jax.devices()[0]
    print(f"jax {jax.__version__}, {device.platform} ({device.device_kind}), {os.cpu_count()} CPUs", flush=True)
    before = matmul_peak(args.quick)
    hand_fn, jax_fn = make_functions()
    results = [run_config(cfg, hand_fn, jax_fn) for cfg in configs(args.quick)]
    # Measured before and after the configs, keeping the faster, so one loaded moment
    # of a shared machine does not understate the peak.
    peak = max(before, matmul_peak(args.quick), key=lambda m: m["flops_per_s"])
    print(
        f"matmul peak: {peak['n']}^3 float32 in {1e3 * peak['seconds']:.1f} ms = "
        f"{peak['flops_per_s'] / 1e9:.1f} GFLOP/s (best of before/after)",
        flush=True,
    )
    for r in results:
        r["hand_frac_peak"] = r["flops_per_step"] / (r["hand_ms"] / 1e3) / peak["flops_per_s"]
        r["jax_frac_peak"] = r["flops_per_step"] / (r["jax_ms"] / 1e3) / peak["flops_per_s"]

    print()
    print(table(results))
    met = all(r["ratio_hand_over_jax"] <= TARGET_RATIO for r in results)
    print(f"target: hand within {TARGET_RATIO}x of jax.grad on every config -> {'met' if met else 'MISSED'}")
    print(f"%peak: ~6 x batch x weights FLOPs per step over the matmul peak; total {time.perf_counter() - total:.1f} s")

    if args.out:
        write_json(
            args.out,
            {
                "quick": args.quick,
                "jax_version": jax.__version__,
                "platform": device.platform,
                "device_kind": device.device_kind,
                "cpu_count": os.cpu_count(),
                "machine": platform.machine(),
                "matmul_peak": peak,
                "target_ratio": TARGET_RATIO,
                "target_met": met,
                "configs": results,
            },
        )
        print(f"wrote {args.out}")
    return 0 if all(r["gradients_agree"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
