"""Tests for the experiments runner, driven through a fake experiment package in tmp_path."""

import ast
import importlib
import itertools
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from experiments import runner
from experiments.api import Config, Result

REPO = pathlib.Path(__file__).resolve().parents[1]

GOOD = """
import jax.numpy as jnp
from matplotlib.figure import Figure

from experiments.api import Result

CLAIM = "Fake experiment {name} measures nothing."
CALLS = []


def run(config):
    CALLS.append(config)
    (config.out_dir / "extra.txt").write_text("made by the experiment")
    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1], [1, 0])
    return Result(
        metrics={{"loss": jnp.array([1.0, jnp.nan]), "seed": config.seed}},
        figure=fig,
        summary="line one\\nline two",
    )
"""

NO_FIGURE = """
from experiments.api import Result

CLAIM: str = "Fake experiment without a figure."


def run(config):
    return Result(metrics={"quick": config.quick})
"""

BROKEN = """
CLAIM = "Fake experiment that raises."


def run(config):
    raise RuntimeError("boom in experiment")
"""

_counter = itertools.count()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fresh package ``fake_experiments_<n>`` holding modules alpha, nofig, broken, beta."""
    package = f"fake_experiments_{next(_counter)}"
    root = tmp_path / "pkgs" / package
    root.mkdir(parents=True)
    (root / "__init__.py").write_text('"""Fake experiments."""\n')
    (root / "alpha.py").write_text(GOOD.format(name="alpha"))
    (root / "beta.py").write_text(GOOD.format(name="beta"))
    (root / "nofig.py").write_text(NO_FIGURE)
    (root / "broken.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    yield package
    for mod in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[mod]


def _main(fake, results, *args, registry=("alpha", "nofig", "broken", "beta")):
    return runner.main([*args, "--results", str(results)], registry=registry, package=fake)


def test_run_writes_json_and_png(fake, tmp_path, capsys):
    results = tmp_path / "results"
    assert _main(fake, results, "alpha", "nofig", "--quick", "--seed", "3") == 0
    out = capsys.readouterr().out
    assert "[1/2] alpha ... done in" in out
    assert "    line one\n    line two\n" in out
    assert "[2/2] nofig ... done in" in out

    d = results / "quick" / "alpha"
    assert (d / "figure.png").read_bytes()[:4] == b"\x89PNG"
    assert (d / "extra.txt").exists()
    data = json.loads((d / "result.json").read_text())
    assert set(data) == {
        "name",
        "claim",
        "quick",
        "seed",
        "metrics",
        "seconds",
        "fnn_version",
        "jax_version",
        "backend",
        "complete",
    }
    assert data["name"] == "alpha"
    assert data["claim"] == "Fake experiment alpha measures nothing."
    assert data["quick"] is True and data["seed"] == 3 and data["complete"] is True
    assert data["metrics"] == {"loss": [1.0, "nan"], "seed": 3}
    assert data["seconds"] >= 0
    import jax

    assert data["jax_version"] == jax.__version__ and data["backend"] == jax.default_backend()

    config = sys.modules[f"{fake}.alpha"].CALLS[0]
    assert config == Config(quick=True, seed=3, out_dir=results / "quick" / "alpha")

    assert not (results / "quick" / "nofig" / "figure.png").exists()
    assert json.loads((results / "quick" / "nofig" / "result.json").read_text())["metrics"] == {"quick": True}
    assert not (results / "full").exists()  # a quick run never lands among full results
    leftovers = [p for p in results.rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_complete_result_is_skipped_then_rerun(fake, tmp_path, capsys):
    results = tmp_path / "results"
    assert _main(fake, results, "alpha") == 0
    calls = sys.modules[f"{fake}.alpha"].CALLS
    assert len(calls) == 1 and calls[0].quick is False

    capsys.readouterr()
    assert _main(fake, results, "alpha") == 0
    out = capsys.readouterr().out
    assert "[1/1] alpha ... skipped (complete)" in out
    assert len(calls) == 1

    assert _main(fake, results, "alpha", "--rerun") == 0
    assert len(calls) == 2

    assert _main(fake, results, "alpha", "--seed", "1") == 0  # another seed is not complete
    assert len(calls) == 3
    assert _main(fake, results, "alpha", "--quick") == 0  # nor is another mode
    assert len(calls) == 4


@pytest.mark.parametrize(
    "text",
    ["{not json", json.dumps({"complete": False, "seed": 0, "quick": False}), json.dumps([1])],
)
def test_incomplete_or_corrupt_result_is_rerun(fake, tmp_path, text):
    results = tmp_path / "results"
    result_json = results / "full" / "alpha" / "result.json"
    result_json.parent.mkdir(parents=True)
    result_json.write_text(text)
    assert _main(fake, results, "alpha") == 0
    assert len(sys.modules[f"{fake}.alpha"].CALLS) == 1
    assert json.loads(result_json.read_text())["complete"] is True


def test_failing_experiment_others_still_run_exit_1(fake, tmp_path, capsys):
    results = tmp_path / "results"
    assert _main(fake, results) == 1
    captured = capsys.readouterr()
    assert "[3/4] broken ... failed after" in captured.out
    assert "RuntimeError: boom in experiment" in captured.err
    assert "Traceback" in captured.err
    assert "[4/4] beta ... done in" in captured.out
    assert (results / "full" / "beta" / "result.json").exists()
    assert not (results / "full" / "broken" / "result.json").exists()

    table = captured.out.split("\n\n")[-1].splitlines()
    assert table[0].split() == ["name", "status", "seconds"]
    rows = {line.split()[0]: line for line in table[2:]}
    assert list(rows) == ["alpha", "nofig", "broken", "beta"]
    assert " ran " in rows["alpha"] and " failed " in rows["broken"]

    capsys.readouterr()
    assert _main(fake, results) == 1  # the rest is complete; only broken runs again
    table = capsys.readouterr().out.split("\n\n")[-1]
    assert table.count("skipped (complete)") == 3


def test_failed_rerun_removes_old_result(fake, tmp_path):
    """A run that dies leaves no complete-looking result.json from an earlier run behind."""
    results = tmp_path / "results"
    assert _main(fake, results, "alpha") == 0
    mod = sys.modules[f"{fake}.alpha"]
    mod.run = lambda config: (_ for _ in ()).throw(RuntimeError("second run dies"))
    assert _main(fake, results, "alpha", "--rerun") == 1
    assert not (results / "full" / "alpha" / "result.json").exists()


@pytest.mark.parametrize(
    "returned, match",
    [
        ("Result(metrics={'bad': object()})", "is of type object"),
        ("{'loss': 1.0}", "must return experiments.api.Result"),
        ("Result(metrics=[1])", "metrics must be a dict"),
    ],
)
def test_bad_result_fails_without_writing(fake, tmp_path, capsys, returned, match):
    mod = importlib.import_module(f"{fake}.nofig")
    mod.run = eval(f"lambda config: {returned}", {"Result": Result})
    results = tmp_path / "results"
    assert _main(fake, results, "nofig") == 1
    assert match in capsys.readouterr().err
    assert not (results / "full" / "nofig" / "result.json").exists()


def test_unknown_name_exits_2_listing_known(fake, tmp_path, capsys):
    assert _main(fake, tmp_path, "alpha", "nope") == 2
    err = capsys.readouterr().err
    assert "unknown experiment(s): nope" in err
    assert "known: alpha, nofig, broken, beta" in err
    assert not (tmp_path / "full").exists()


def test_list_prints_names_and_claims_without_importing(fake, tmp_path, capsys):
    assert _main(fake, tmp_path, "--list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "alpha   Fake experiment alpha measures nothing.",
        "nofig   Fake experiment without a figure.",
        "broken  Fake experiment that raises.",
        "beta    Fake experiment beta measures nothing.",
    ]
    assert f"{fake}.alpha" not in sys.modules
    assert not (tmp_path / "full").exists()


def test_list_falls_back_to_import_for_computed_claim(fake, tmp_path, capsys):
    root = pathlib.Path(importlib.import_module(fake).__file__).parent
    (root / "computed.py").write_text('CLAIM = " ".join(["Computed", "claim."])\n')
    (root / "noclaim.py").write_text("def run(config):\n    pass\n")
    assert _main(fake, tmp_path, "--list", registry=("computed", "noclaim")) == 1
    out = capsys.readouterr().out
    assert "computed  Computed claim." in out
    assert "noclaim   <error:" in out and "defines no CLAIM" in out


def test_empty_registry_runs_nothing(tmp_path, capsys):
    assert runner.main(["--results", str(tmp_path)], registry=()) == 0
    assert "no experiments registered" in capsys.readouterr().out


@pytest.mark.parametrize("bad", [["--seed", "-1"], ["--seed", "x"], ["--bogus"]])
def test_bad_options_exit_2(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        runner.main(bad, registry=())
    assert exc.value.code == 2


def test_registry_matches_modules_on_disk():
    """Every module in experiments/ but the framework (api, runner) and the bench_* scripts is registered,
    and every registered name exists."""
    assert len(set(runner.EXPERIMENTS)) == len(runner.EXPERIMENTS)
    on_disk = {
        p.stem
        for p in (REPO / "experiments").glob("*.py")
        if not p.name.startswith(("_", "bench_")) and p.stem not in ("api", "runner")
    }
    assert set(runner.EXPERIMENTS) == on_disk
    for name in runner.EXPERIMENTS:
        assert runner.read_claim(name)
        tree = ast.parse((REPO / "experiments" / f"{name}.py").read_text())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert "run" in functions, f"experiments/{name}.py defines no run(config)"


def test_cli_list_does_not_import_jax():
    code = textwrap.dedent(
        """
        import runpy, sys
        sys.argv = ["experiments", "--list"]
        try:
            runpy.run_module("experiments", run_name="__main__")
        except SystemExit as e:
            assert e.code == 0, e.code
        heavy = [m for m in ("jax", "fnn", "numpy", "matplotlib") if m in sys.modules]
        assert not heavy, heavy
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_devices_asks_xla_for_cpu_devices_before_jax_starts():
    code = "from experiments import runner; print(runner.force_cpu_devices(3)); import jax; print(jax.device_count())"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "3"]


def test_devices_after_jax_started_is_an_error(monkeypatch):
    import jax

    jax.devices()  # this process has started JAX with its own device count
    monkeypatch.setenv("XLA_FLAGS", "")
    count = len(jax.devices("cpu")) + 1
    assert runner.force_cpu_devices(count) == (
        f"--devices {count}: JAX had already started in this process, with {count - 1} CPU device(s)"
    )


@pytest.mark.parametrize("value", ["0", "two"])
def test_devices_must_be_a_positive_integer(value, capsys):
    with pytest.raises(SystemExit):
        runner.main(["--devices", value], registry=())
    assert "--devices must be a positive integer" in capsys.readouterr().err
