"""The experiments runner behind ``python -m experiments``.

For each experiment chosen it prints ``[i/n] name ... done in 2.1s`` and the experiment's
summary, then a table of name, status (``ran``, ``skipped (complete)``, ``failed``) and seconds.

Results layout, with ``mode`` either ``quick`` or ``full`` so a quick run never stands in for a
full one::

    <results>/<mode>/<name>/figure.png    # when the experiment returns a figure
    <results>/<mode>/<name>/result.json   # written last: its presence marks completion

``result.json`` holds ``name, claim, criterion, quick, seed, metrics, verdict, measured, checks,
seconds, fnn_version, jax_version, backend, complete``. ``verdict`` is ``PASS`` or ``FAIL`` (or
``ERROR`` when the module's ``verdict`` function raised), decided by the module's
``verdict(metrics, quick)`` from the stored metrics; ``measured`` holds the deciding numbers and
``checks`` each part of the criterion (``name``, ``passed``, ``measured``). An experiment is skipped
when that file parses, says ``complete: true`` and has the same seed, unless ``--rerun``. Before an
experiment runs again its old ``result.json`` is removed, so a run that dies half-way never leaves a
complete-looking result beside a new figure. Every write goes through :mod:`fnn.io`, so files are
never half-written.

After the status table the runner prints the claims table: each experiment's verdict and the
numbers that decide it. Skipped experiments are judged again from their stored metrics, so the
table always applies the criteria in the source. ``--judge`` prints only that table, deciding
every claim from the stored ``result.json`` files without running anything or writing any file.

Exit status: 0 when everything ran or was skipped, 1 when any experiment failed (the others
still run) or a verdict function raised, 2 for a usage error such as an unknown name. A claim
judged FAIL is a finding, not an error: it does not change the exit status. With ``--judge``:
1 when a result is missing or a verdict function raised.

Listing (``--list``) reads each module's ``CLAIM`` and ``CRITERION`` string literals from its
source, so it imports neither the experiments nor jax.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import importlib.util
import json
import os
import pathlib
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

from experiments.api import FAIL, PASS, Config, Result, Verdict

# The experiments, in the order they run. Add a module's name here when the module exists;
# tests/test_runner.py checks that this tuple and the modules in experiments/ agree.
EXPERIMENTS: tuple[str, ...] = (
    "xor",
    "rules",
    "digits",
    "optimizers",
    "step_decay",
    "linear_regression",
    "robust_regression",
    "regularization",
    "kfold",
    "bayesopt",
    "bias_variance",
    "residual_depth",
    "universal_approximation",
    "ridges_towers",
    "constructed_vs_trained",
    "depth_vs_width",
    "linear_regions",
    "divergence_fit",
)

PACKAGE = "experiments"

RAN = "ran"
SKIPPED = "skipped (complete)"
FAILED = "failed"

ERROR = "ERROR"  # the verdict function raised
NO_RESULT = "-"  # nothing to judge: the experiment failed or has no result.json


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One row of the final table: ``seconds`` is None for a skipped experiment."""

    name: str
    status: str
    seconds: float | None


@dataclasses.dataclass(frozen=True)
class Judged:
    """One row of the claims table: ``verdict`` is PASS, FAIL, ERROR or ``-`` (no result)."""

    name: str
    verdict: str
    measured: str


def _check_line(value: Any, qualname: str, attr: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value.strip():
        raise ValueError(f"{qualname}.{attr} must be a non-empty one-line str, got {value!r}")
    return value.strip()


def read_literal(name: str, attr: str, package: str = PACKAGE) -> str:
    """The one-line string ``attr`` (``CLAIM`` or ``CRITERION``) of experiment ``name``.

    A top-level ``attr = "..."`` string literal is read from the source with :mod:`ast`, without
    importing the module; anything else falls back to importing it.

    Raises:
      LookupError: there is no module ``<package>.<name>``.
      ValueError: ``attr`` is missing, not a str, empty, or longer than one line.
    """
    qualname = f"{package}.{name}"
    spec = importlib.util.find_spec(qualname)
    if spec is None:
        raise LookupError(f"no module {qualname}")
    if spec.origin and spec.origin.endswith(".py"):
        tree = ast.parse(pathlib.Path(spec.origin).read_bytes(), filename=spec.origin)
        for node in tree.body:
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            if any(isinstance(t, ast.Name) and t.id == attr for t in targets):
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    return _check_line(value.value, qualname, attr)
                break
    module = importlib.import_module(qualname)
    if not hasattr(module, attr):
        raise ValueError(f"{qualname} defines no {attr}")
    return _check_line(getattr(module, attr), qualname, attr)


def read_claim(name: str, package: str = PACKAGE) -> str:
    """The one-line ``CLAIM`` of experiment ``name``: :func:`read_literal` of ``"CLAIM"``."""
    return read_literal(name, "CLAIM", package)


def read_criterion(name: str, package: str = PACKAGE) -> str:
    """The one-line ``CRITERION`` of experiment ``name``: :func:`read_literal` of ``"CRITERION"``."""
    return read_literal(name, "CRITERION", package)


def judge(module: Any, metrics: dict[str, Any], quick: bool) -> Verdict:
    """Call ``module.verdict(metrics, quick)`` and check that it returned a :class:`Verdict`.

    Args:
      module: an experiment module.
      metrics: its metrics as stored in ``result.json`` (JSON values).
      quick: whether they come from a quick run.

    Raises:
      TypeError: the module has no ``verdict`` function or it returned something else;
        whatever the verdict function raises (a missing metric is a ``KeyError``).
    """
    verdict = getattr(module, "verdict", None)
    if not callable(verdict):
        raise TypeError(f"{module.__name__} must define verdict(metrics, quick) -> Verdict")
    result = verdict(metrics, quick)
    if not isinstance(result, Verdict):
        raise TypeError(f"{module.__name__}.verdict must return experiments.api.Verdict, got {type(result).__name__}")
    return result


def _judge_fields(module: Any, metrics: dict[str, Any], quick: bool) -> dict[str, Any]:
    """The verdict fields of ``result.json``; a verdict function that raises gives ``ERROR``."""
    try:
        v = judge(module, metrics, quick)
    except Exception as e:  # noqa: BLE001 - an hour of results must not be lost to a bug in a criterion
        return {"verdict": ERROR, "measured": f"{type(e).__name__}: {e}", "checks": []}
    checks = [{"name": c.name, "passed": c.passed, "measured": c.measured} for c in v.checks]
    return {"verdict": v.label, "measured": v.measured, "checks": checks}


def _judged_row(name: str, fields: dict[str, Any]) -> Judged:
    measured = str(fields.get("measured", ""))
    failed = [c["name"] for c in fields.get("checks", []) if not c.get("passed")]
    if fields.get("verdict") == FAIL and failed:
        measured = f"[failed: {', '.join(failed)}] {measured}"
    return Judged(name, str(fields.get("verdict")), measured)


def is_complete(result_json: pathlib.Path, config: Config) -> bool:
    """True when ``result_json`` parses, says ``complete: true`` and matches the seed and mode."""
    try:
        data = json.loads(result_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and data.get("complete") is True
        and data.get("seed") == config.seed
        and data.get("quick") == config.quick
    )


def _devices(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--devices must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--devices must be a positive integer, got {value}")
    return value


def force_cpu_devices(count: int) -> str | None:
    """Ask XLA for ``count`` CPU devices in this process (starting JAX); an error message if it could not."""
    flags = [
        f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")
    ]
    os.environ["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={count}"])
    import jax

    devices = jax.devices("cpu")
    if len(devices) != count:
        return f"--devices {count}: JAX had already started in this process, with {len(devices)} CPU device(s)"
    return None


def environment() -> dict[str, str]:
    """Versions and backend recorded in every ``result.json`` (imports jax)."""
    import importlib.metadata

    import jax

    import fnn

    fnn_version = getattr(fnn, "__version__", None)
    if fnn_version is None:
        try:
            fnn_version = importlib.metadata.version("fnn")
        except importlib.metadata.PackageNotFoundError:
            fnn_version = "unknown"
    return {"fnn_version": str(fnn_version), "jax_version": jax.__version__, "backend": jax.default_backend()}


def _close(fig: Any) -> None:
    # Figures made through pyplot stay registered (and warn past 20) until closed.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


def run_experiment(
    name: str, config: Config, *, package: str = PACKAGE, env: dict[str, str]
) -> tuple[Result, float, dict[str, Any]]:
    """Import and run one experiment, write its figure and then its ``result.json``.

    Args:
      name: module name inside ``package``.
      config: passed to the module's ``run``; ``config.out_dir`` is created first.
      package: the package holding the experiment modules.
      env: versions and backend, from :func:`environment`.

    Returns:
      the experiment's ``Result``, the seconds spent in its ``run``, and the verdict fields
      written (``verdict``, ``measured``, ``checks``).

    Raises:
      whatever the experiment raises; ``TypeError`` or ``ValueError`` for a module without
      ``run``, ``verdict``, ``CLAIM`` or ``CRITERION``, a ``run`` that returns something other
      than a ``Result``, or metrics that do not convert to JSON. A verdict function that raises
      does not: its result is still written, with verdict ``ERROR``.
    """
    from fnn import io

    qualname = f"{package}.{name}"
    module = importlib.import_module(qualname)
    claim = _check_line(getattr(module, "CLAIM", None), qualname, "CLAIM")
    criterion = _check_line(getattr(module, "CRITERION", None), qualname, "CRITERION")
    run = getattr(module, "run", None)
    if not callable(run):
        raise TypeError(f"{qualname} must define run(config) -> Result")
    if not callable(getattr(module, "verdict", None)):
        raise TypeError(f"{qualname} must define verdict(metrics, quick) -> Verdict")

    config.out_dir.mkdir(parents=True, exist_ok=True)
    result_json = config.out_dir / "result.json"
    figure_png = config.out_dir / "figure.png"
    # From here on the old result no longer describes what is in this directory.
    result_json.unlink(missing_ok=True)

    start = time.perf_counter()
    result = run(config)
    seconds = time.perf_counter() - start

    if not isinstance(result, Result):
        raise TypeError(f"{qualname}.run must return experiments.api.Result, got {type(result).__name__}")
    if not isinstance(result.metrics, dict):
        raise TypeError(f"{qualname}: Result.metrics must be a dict, got {type(result.metrics).__name__}")
    if not isinstance(result.summary, str):
        raise TypeError(f"{qualname}: Result.summary must be a str, got {type(result.summary).__name__}")
    metrics = io.to_jsonable(result.metrics)  # fail before any file is written
    # Judged from the metrics as stored, so --judge on the file decides exactly the same.
    fields = _judge_fields(module, json.loads(io.dumps_json(metrics)), config.quick)
    payload = {
        "name": name,
        "claim": claim,
        "criterion": criterion,
        "quick": config.quick,
        "seed": config.seed,
        "metrics": metrics,
        **fields,
        "seconds": seconds,
        **env,
        "complete": True,
    }
    if result.figure is not None:
        try:
            io.atomic_save_figure(figure_png, result.figure)
        finally:
            _close(result.figure)
    else:
        figure_png.unlink(missing_ok=True)  # a stale figure from an earlier run
    io.atomic_write_json(result_json, payload)
    return result, seconds, fields


def judge_stored(name: str, result_json: pathlib.Path, *, package: str = PACKAGE) -> dict[str, Any] | None:
    """The verdict fields for experiment ``name`` decided again from a stored ``result.json``.

    Reads the file only; writes nothing. Returns None when the file is missing, does not parse or
    is not complete. A verdict function that raises gives verdict ``ERROR``.
    """
    try:
        data = json.loads(result_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("complete") is not True or not isinstance(data.get("metrics"), dict):
        return None
    try:
        module = importlib.import_module(f"{package}.{name}")
    except Exception as e:  # noqa: BLE001 - report it in the table, judge the others
        return {"verdict": ERROR, "measured": f"{type(e).__name__}: {e}", "checks": []}
    return _judge_fields(module, data["metrics"], bool(data.get("quick")))


def _seed(text: str) -> int:
    seed = int(text)
    if seed < 0:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {seed}")
    return seed


def _parser(registry: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments",
        description="Run fnn experiments and write their results.",
        epilog="known experiments: " + (", ".join(registry) or "(none)"),
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (default: all)")
    parser.add_argument(
        "--list", action="store_true", help="print each experiment with its claim and criterion, then exit"
    )
    parser.add_argument(
        "--judge",
        action="store_true",
        help=(
            "run nothing: decide each claim again from its stored <results>/<mode>/<name>/result.json "
            "and print the claims table (writes no file)"
        ),
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI; results go to <results>/quick/")
    parser.add_argument("--rerun", action="store_true", help="run even if a complete result exists")
    parser.add_argument(
        "--results",
        type=pathlib.Path,
        default=pathlib.Path("results"),
        metavar="DIR",
        help="results directory (default: results/)",
    )
    parser.add_argument("--seed", type=_seed, default=0, metavar="N", help="root random seed (default: 0)")
    parser.add_argument(
        "--devices",
        type=_devices,
        default=None,
        metavar="N",
        help=(
            "spread the many-run programs (fit_many) over N CPU devices, one per core: sets "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N for this process before JAX starts "
            "(fnn itself never sets XLA flags); results agree with one device up to rounding"
        ),
    )
    return parser


def _list(names: Sequence[str], package: str) -> int:
    rows, status = [], 0
    for name in names:
        texts = []
        for read in (read_claim, read_criterion):
            try:
                texts.append(read(name, package))
            except Exception as e:  # noqa: BLE001 - report every broken module, not just the first
                texts.append(f"<error: {e}>")
                status = 1
        rows.append((name, *texts))
    width = max((len(n) for n, *_ in rows), default=0)
    for name, claim, criterion in rows:
        print(f"{name:<{width}}  {claim}")
        print(f"{'':<{width}}  criterion: {criterion}")
    return status


def claims_table(rows: Sequence[Judged], *, quick: bool) -> str:
    """The claims table: name, verdict and the numbers that decide it, under a header naming the mode."""
    width = max([len("name")] + [len(r.name) for r in rows])
    verdict_width = max(len(s) for s in (PASS, FAIL, ERROR, "verdict"))
    passed = sum(r.verdict == PASS for r in rows)
    lines = [
        f"claims ({'quick' if quick else 'full'} mode): {passed} of {len(rows)} PASS",
        f"{'name':<{width}}  {'verdict':<{verdict_width}}  measured",
        f"{'-' * width}  {'-' * verdict_width}  {'-' * 8}",
    ]
    lines += [f"{r.name:<{width}}  {r.verdict:<{verdict_width}}  {r.measured}" for r in rows]
    return "\n".join(lines)


def _judge_all(names: Sequence[str], results: pathlib.Path, mode: str, package: str) -> int:
    rows = []
    for name in names:
        fields = judge_stored(name, results / mode / name / "result.json", package=package)
        if fields is None:
            rows.append(Judged(name, NO_RESULT, "no complete result.json"))
        else:
            rows.append(_judged_row(name, fields))
    print(claims_table(rows, quick=mode == "quick"))
    return 1 if any(r.verdict in (NO_RESULT, ERROR) for r in rows) else 0


def _table(outcomes: Sequence[Outcome]) -> str:
    width = max([len("name")] + [len(o.name) for o in outcomes])
    status_width = max(len(s) for s in (RAN, SKIPPED, FAILED))
    lines = [
        f"{'name':<{width}}  {'status':<{status_width}}  {'seconds':>7}",
        f"{'-' * width}  {'-' * status_width}  {'-' * 7}",
    ]
    for o in outcomes:
        secs = "-" if o.seconds is None else f"{o.seconds:.1f}"
        lines.append(f"{o.name:<{width}}  {o.status:<{status_width}}  {secs:>7}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, *, registry: Sequence[str] = EXPERIMENTS, package: str = PACKAGE) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the experiments, return the exit status.

    Args:
      argv: command-line arguments, without the program name.
      registry: the known experiment names, in run order (tests pass their own).
      package: the package the names are modules of (tests pass a fake one).

    Returns:
      0 if nothing failed, 1 if any experiment failed or a verdict function raised (with
      ``--judge``: or a result is missing), 2 for unknown names. A FAIL verdict is not a
      failure of the run. ``argparse``
      itself exits with 2 on malformed options.
    """
    args = _parser(registry).parse_args(argv)
    names = list(dict.fromkeys(args.names)) or list(registry)
    unknown = [n for n in names if n not in registry]
    if unknown:
        print(f"unknown experiment(s): {', '.join(unknown)}; known: {', '.join(registry) or '(none)'}", file=sys.stderr)
        return 2
    if args.list:
        return _list(names, package)
    if not names:
        print("no experiments registered")
        return 0
    mode = "quick" if args.quick else "full"
    if args.judge:
        return _judge_all(names, args.results, mode, package)

    if args.devices is not None:
        error = force_cpu_devices(args.devices)
        if error:
            print(error, file=sys.stderr)
            return 2
    env: dict[str, str] | None = None
    outcomes, judged = [], []
    for i, name in enumerate(names, 1):
        config = Config(quick=args.quick, seed=args.seed, out_dir=args.results / mode / name)
        print(f"[{i}/{len(names)}] {name} ... ", end="", flush=True)
        if not args.rerun and is_complete(config.out_dir / "result.json", config):
            print(SKIPPED)
            outcomes.append(Outcome(name, SKIPPED, None))
            fields = judge_stored(name, config.out_dir / "result.json", package=package)
            judged.append(_judged_row(name, fields) if fields else Judged(name, NO_RESULT, "no result"))
            continue
        start = time.perf_counter()
        try:
            if env is None:
                env = environment()
                start = time.perf_counter()  # importing jax is not the experiment's time
            result, _, fields = run_experiment(name, config, package=package, env=env)
        except Exception:  # noqa: BLE001 - one broken experiment must not stop the others
            seconds = time.perf_counter() - start
            print(f"failed after {seconds:.1f}s", flush=True)
            traceback.print_exc()
            sys.stderr.flush()
            outcomes.append(Outcome(name, FAILED, seconds))
            judged.append(Judged(name, NO_RESULT, "experiment failed"))
            continue
        seconds = time.perf_counter() - start
        print(f"done in {seconds:.1f}s")
        for line in result.summary.strip("\n").splitlines():
            print(f"    {line}")
        print(f"    verdict: {fields['verdict']} ({fields['measured']})")
        outcomes.append(Outcome(name, RAN, seconds))
        judged.append(_judged_row(name, fields))
    print()
    print(_table(outcomes))
    print()
    print(claims_table(judged, quick=args.quick))
    failed = any(o.status == FAILED for o in outcomes) or any(j.verdict == ERROR for j in judged)
    return 1 if failed else 0
