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
from experiments.api import Check, Config, Result, Verdict

REPO = pathlib.Path(__file__).resolve().parents[1]

GOOD = """
import jax.numpy as jnp
from matplotlib.figure import Figure

from experiments.api import Check, Result, Verdict

CLAIM = "Fake experiment {name} measures nothing."
CRITERION = "loss[0] < 2 and the seed is stored."
CALLS = []
THRESHOLD = 2.0


def verdict(metrics, quick):
    first = float(metrics["loss"][0])
    return Verdict.of(
        Check("loss below threshold", first < THRESHOLD, f"{{first:g}}"),
        Check("seed stored", isinstance(metrics["seed"], int), str(metrics["seed"])),
    )


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
from experiments.api import Result, Verdict

CLAIM: str = "Fake experiment without a figure."
CRITERION: str = "it ran in quick mode."


def run(config):
    return Result(metrics={"quick": config.quick})


def verdict(metrics, quick):
    return Verdict(metrics["quick"] is True, f"quick={metrics['quick']}")
"""

BROKEN = """
CLAIM = "Fake experiment that raises."
CRITERION = "never decided."


def verdict(metrics, quick):
    raise AssertionError("never called")


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
        "criterion",
        "verdict",
        "measured",
        "checks",
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
    assert data["criterion"] == "loss[0] < 2 and the seed is stored."
    assert data["verdict"] == "PASS"
    assert data["measured"] == "loss below threshold: 1; seed stored: 3"
    assert data["checks"] == [
        {"name": "loss below threshold", "passed": True, "measured": "1"},
        {"name": "seed stored", "passed": True, "measured": "3"},
    ]
    assert data["seconds"] >= 0
    import jax

    assert data["jax_version"] == jax.__version__ and data["backend"] == jax.default_backend()

    config = sys.modules[f"{fake}.alpha"].CALLS[0]
    assert config == Config(quick=True, seed=3, out_dir=results / "quick" / "alpha")

    assert not (results / "quick" / "nofig" / "figure.png").exists()
    nofig = json.loads((results / "quick" / "nofig" / "result.json").read_text())
    assert nofig["metrics"] == {"quick": True}
    assert (nofig["verdict"], nofig["measured"], nofig["checks"]) == ("PASS", "quick=True", [])
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

    table = captured.out.split("\n\n")[-2].splitlines()
    assert table[0].split() == ["name", "status", "seconds"]
    rows = {line.split()[0]: line for line in table[2:]}
    assert list(rows) == ["alpha", "nofig", "broken", "beta"]
    assert " ran " in rows["alpha"] and " failed " in rows["broken"]
    claims = _claims(captured.out)
    assert claims == {"alpha": "PASS", "nofig": "FAIL", "broken": "-", "beta": "PASS"}  # nofig ran in full mode

    capsys.readouterr()
    assert _main(fake, results) == 1  # the rest is complete; only broken runs again
    out = capsys.readouterr().out
    assert out.split("\n\n")[-2].count("skipped (complete)") == 3
    assert _claims(out) == claims  # skipped ones are judged from their stored metrics


def _claims(out: str) -> dict[str, str]:
    """The claims table at the end of the runner's output, as name -> verdict."""
    lines = out.strip().split("\n\n")[-1].splitlines()
    assert lines[0].startswith("claims (") and lines[1].split() == ["name", "verdict", "measured"]
    return {line.split()[0]: line.split()[1] for line in lines[3:]}


def test_claims_table_shows_verdicts_and_failed_parts(fake, tmp_path, capsys):
    mod = importlib.import_module(f"{fake}.alpha")
    mod.THRESHOLD = 0.5  # loss[0] = 1 now measures false
    results = tmp_path / "results"
    assert _main(fake, results, "alpha", "nofig", "--quick") == 0  # a FAIL verdict is a finding, not an error
    out = capsys.readouterr().out
    assert "    verdict: FAIL (loss below threshold: 1; seed stored: 0)" in out
    table = out.strip().split("\n\n")[-1].splitlines()
    assert table[0] == "claims (quick mode): 1 of 2 PASS"
    assert table[3].split(None, 2) == [
        "alpha",
        "FAIL",
        "[failed: loss below threshold] loss below threshold: 1; seed stored: 0",
    ]
    assert table[4].split() == ["nofig", "PASS", "quick=True"]
    data = json.loads((results / "quick" / "alpha" / "result.json").read_text())
    assert data["verdict"] == "FAIL" and data["checks"][0]["passed"] is False


def test_verdict_that_raises_is_recorded_as_error(fake, tmp_path, capsys):
    mod = importlib.import_module(f"{fake}.alpha")
    mod.verdict = lambda metrics, quick: metrics["no such metric"]
    results = tmp_path / "results"
    assert _main(fake, results, "alpha") == 1
    data = json.loads((results / "full" / "alpha" / "result.json").read_text())
    assert data["complete"] is True  # the run's results are kept, to be judged again
    assert data["verdict"] == "ERROR" and data["measured"] == "KeyError: 'no such metric'"
    assert _claims(capsys.readouterr().out) == {"alpha": "ERROR"}


@pytest.mark.parametrize(
    "verdict, match",
    [
        ("lambda metrics, quick: True", "must return experiments.api.Verdict, got bool"),
        ("None", "must define verdict"),
    ],
)
def test_bad_verdict_function(fake, tmp_path, capsys, verdict, match):
    mod = importlib.import_module(f"{fake}.nofig")
    mod.verdict = eval(verdict)
    assert _main(fake, tmp_path, "nofig") == 1
    captured = capsys.readouterr()
    assert match in captured.out + captured.err


def test_module_without_criterion_fails(fake, tmp_path, capsys):
    mod = importlib.import_module(f"{fake}.nofig")
    del mod.CRITERION
    assert _main(fake, tmp_path, "nofig") == 1
    assert "nofig.CRITERION must be a non-empty one-line str" in capsys.readouterr().err
    assert not (tmp_path / "full" / "nofig" / "result.json").exists()


def test_judge_decides_again_from_stored_results_without_running(fake, tmp_path, capsys):
    results = tmp_path / "results"
    assert _main(fake, results, "alpha", "beta") == 0
    stored = {n: (results / "full" / n / "result.json") for n in ("alpha", "beta")}
    before = {n: (p.read_bytes(), p.stat().st_mtime_ns) for n, p in stored.items()}
    mod = importlib.import_module(f"{fake}.alpha")
    calls = len(mod.CALLS)
    mod.THRESHOLD = 0.5  # a stricter criterion, applied to the stored metrics
    capsys.readouterr()

    assert _main(fake, results, "--judge") == 1  # nofig and broken have no result
    out = capsys.readouterr().out
    assert len(mod.CALLS) == calls  # nothing ran
    assert {n: (p.read_bytes(), p.stat().st_mtime_ns) for n, p in stored.items()} == before  # nothing written
    lines = out.strip().splitlines()
    assert lines[0] == "claims (full mode): 1 of 4 PASS"
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[3:]}
    assert rows["alpha"][0] == "FAIL" and rows["alpha"][1].startswith("[failed: loss below threshold]")
    assert rows["beta"] == ["PASS", "loss below threshold: 1; seed stored: 0"]
    assert rows["nofig"] == ["-", "no complete result.json"] and rows["broken"] == ["-", "no complete result.json"]

    assert _main(fake, results, "beta", "--judge") == 0
    assert _main(fake, results, "alpha", "--judge", "--quick") == 1  # no quick results
    assert not (results / "quick").exists()


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
        "        criterion: loss[0] < 2 and the seed is stored.",
        "nofig   Fake experiment without a figure.",
        "        criterion: it ran in quick mode.",
        "broken  Fake experiment that raises.",
        "        criterion: never decided.",
        "beta    Fake experiment beta measures nothing.",
        "        criterion: loss[0] < 2 and the seed is stored.",
    ]
    assert f"{fake}.alpha" not in sys.modules
    assert not (tmp_path / "full").exists()


def test_list_falls_back_to_import_for_computed_claim(fake, tmp_path, capsys):
    root = pathlib.Path(importlib.import_module(fake).__file__).parent
    (root / "computed.py").write_text('CLAIM = " ".join(["Computed", "claim."])\nCRITERION = "x" * 3\n')
    (root / "noclaim.py").write_text("def run(config):\n    pass\n")
    assert _main(fake, tmp_path, "--list", registry=("computed", "noclaim")) == 1
    out = capsys.readouterr().out
    assert "computed  Computed claim.\n          criterion: xxx\n" in out
    assert "noclaim   <error:" in out and "defines no CLAIM" in out and "defines no CRITERION" in out


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
        tree = ast.parse((REPO / "experiments" / f"{name}.py").read_text())
        literals = {
            t.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for t in node.targets
            if isinstance(t, ast.Name)
        }
        for attr in ("CLAIM", "CRITERION"):  # plain literals, so --list reads them without importing
            assert isinstance(literals.get(attr), str), f"experiments/{name}.py has no {attr} string literal"
        assert runner.read_claim(name) == literals["CLAIM"].strip()
        assert runner.read_criterion(name) == literals["CRITERION"].strip()
        functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert "run" in functions, f"experiments/{name}.py defines no run(config)"
        assert "verdict" in functions, f"experiments/{name}.py defines no verdict(metrics, quick)"
        assert [a.arg for a in functions["verdict"].args.args] == ["metrics", "quick"]


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


def test_check_and_verdict_types():
    v = Verdict.of(Check("a", True, "1"), Check("b", False, "2"))
    assert (v.passed, v.label, v.failed, v.measured) == (False, "FAIL", ("b",), "a: 1; b: 2")
    assert Verdict.of(Check("a", True, "1")).label == "PASS"
    import numpy as np

    assert Check("numpy bool", np.float64(1.0) > 0, "").passed is True  # numpy.bool_ becomes a bool
    with pytest.raises(TypeError, match="Check.passed must be a bool, got float"):
        Check("x", 1.0, "1")
    with pytest.raises(TypeError, match="Check.measured must be a str, got float"):
        Check("x", True, 1.0)
    with pytest.raises(ValueError, match="at least one Check"):
        Verdict.of()
    with pytest.raises(ValueError, match="exactly when every check passed"):
        Verdict(True, "x", (Check("a", False, "1"),))


# For every experiment: metrics (only the keys its verdict reads) that satisfy its criterion, and
# a change that violates one part of it. They go through JSON as the runner stores them.


def _geometric(n, ratio=2.0):
    return [ratio**k for k in range(n)]


def _xor():
    m = {f"{g}_correct": True for g in ("and", "or", "nand")}
    m.update(
        xor_best_single_perceptron_accuracy=0.75,
        accuracy=1.0,
        trajectory_max_loss_gap_float32=1e-7,
        trajectory_max_loss_gap_float64=1e-15,
        trajectory_max_param_gap_float64=1e-15,
    )
    return m, lambda m: m.update(xor_best_single_perceptron_accuracy=1.0)


RULES_GATES = ("and", "or", "nand", "xor")


def _rules():
    m = {f"perceptron_{g}": {"converged": True, "accuracy": 1.0, "mistakes": 5} for g in ("and", "or", "nand")}
    m["perceptron_xor"] = {"converged": False, "cycled": True, "cycle_epoch": 3}
    m.update({f"delta_{g}": {"converged": True, "final_mse": 0.064, "least_squares_mse": 0.0625} for g in RULES_GATES})
    m.update(
        novikoff_bound_held=True,
        oja_final_norm=1.0001,
        oja_cosine_to_top_pc=0.9999,
        hebb_norms=_geometric(10, 2.4),
        hebb_growth_per_epoch=2.4,
    )
    return m, lambda m: m.update(hebb_norms=[float(k + 1) for k in range(10)])  # linear growth, not geometric


def _digits():
    m = {"test_accuracy_mean": 0.987, "test_accuracy_mean_all_splits": 0.981}
    m.update({f"backprop_vs_autodiff_max_{p}_gap_float32": 0.0 for p in ("curve", "param")})
    m.update({f"backprop_vs_autodiff_max_{p}_gap_float64": float("nan") for p in ("curve", "param")})  # quick
    return m, lambda m: m.update(test_accuracy_mean=0.969)


def _optimizers():
    names = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam")

    def row(steps, reached=1.0):
        return {"steps_to_threshold_median": steps, "fraction_reaching_threshold": reached}

    descent = {n: row(100.0) for n in names} | {
        "sgd": row(400.0),
        "rmsprop": row("inf", 0.0),
        "adadelta": row("inf", 0.0),
    }
    mlp = {n: row(15.0) for n in ("adagrad", "adadelta", "rmsprop", "adam")} | {n: row(25.0) for n in names[:3]}
    m = {"results": {"quadratic": descent, "rosenbrock": json.loads(json.dumps(descent)), "digits_mlp": mlp}}
    return m, lambda m: m["results"]["quadratic"].update(momentum=row(200.0))  # 2x: not several times


def _step_decay():
    m = {
        "budgets": [30, 60],
        **{f"{e}_epochs_step_decay_train_loss_drop_at_boundaries": [8.0, 3.0] for e in (30, 60)},
        **{f"{e}_epochs_constant_train_loss_drop_at_boundaries": [1.1, 1.05] for e in (30, 60)},
        **{f"{e}_epochs_test_loss_difference": [-0.04, -0.01] for e in (30, 60)},
        **{f"{e}_epochs_{s}_test_loss_mean": 0.05 for e in (30, 60) for s in ("step_decay", "constant")},
    }
    return m, lambda m: m.update({"60_epochs_step_decay_train_loss_drop_at_boundaries": [8.0, float("nan")]})


def _linear_regression():
    def row(kappa, steps, theory):
        return {
            "final_distance": 1e-14,
            "fitted_rate": theory**1.01,
            "theory_rate": theory,
            "condition_number": kappa,
            "steps_to_tolerance": steps,
        }

    m = {"raw": row(800.0, 10000, 1 - 1 / 800), "standardised": row(1.7, 18, 1 - 1 / 1.7)}
    return m, lambda m: m["raw"].update(steps_to_tolerance=-1)


def _robust_regression():
    def rows(errors):
        return {g: {"parameter_error_mean": e} for g, e in zip(groups, errors, strict=True)}

    groups = ("0", "0.1", "0.3", "leverage x~3", "leverage x~5")
    m = {
        "fractions": [0.0, 0.1, 0.3],
        "leverage_x": [3.0, 5.0],
        "results": {"mse": rows([0.03, 0.3, 0.6, 3.0, 3.5]), "l1": rows([0.045, 0.05, 0.064, 0.3, 3.6])},
    }
    return m, lambda m: m["results"]["l1"]["0.3"].update(parameter_error_mean=0.09)


def _regularization():
    none = {"train_error_mean": 0.0, "test_error_mean": 0.06, "test_error_per_seed": [0.060, 0.062, 0.058]}
    others = {n: {"test_error_per_seed": [0.050, 0.051, 0.049]} for n in ("l2", "dropout", "ensemble")}
    return {"methods": {"none": none, **others}}, lambda m: m["methods"]["l2"].update(
        test_error_per_seed=[0.061, 0.060, 0.059]
    )


def _kfold():
    m = {
        "chosen_test_error": 0.046,
        "unregularised_test_error": 0.047,
        "test_error": [0.047, 0.046, 0.044, 0.05],
        "runs_in_one_call": 20,
        "k": 5,
        "strengths": [0.0, 1e-4, 1e-3, 1e-2],
    }
    return m, lambda m: m.update(chosen_test_error=0.047)


def _bayesopt():
    m = {
        **{f"{f}_bo_final_regret_mean": 0.01 for f in ("branin", "hartmann3")},
        **{f"{f}_random_final_regret_mean": 1.0 for f in ("branin", "hartmann3")},
        "tuning_bo_final_val_error_mean": 0.031,
        "tuning_random_final_val_error_mean": 0.031,
    }
    return m, lambda m: m.update(hartmann3_random_final_regret_mean=0.05)  # 5x: not far lower


def _bias_variance():
    def row(total, variance, bias=0.0):
        return {"sum": total, "variance": variance, "bias_squared": bias, "measured_test_error": total * 1.005}

    poly = {"0": row(0.6, 0.03), "1": row(0.3, 0.031), "3": row(0.12, 0.032), "5": row(0.3, 0.2), "9": row(9, 9)}
    mlp = {w: row(0.2, v, b) for w, v, b in (("1", 0.01, 0.5), ("32", 0.1, 0.01), ("64", 0.05, 0.005))}
    m = {"polynomial": poly, "mlp": {"2000": mlp, "300": {"16": row(0.14, 0.03)}}}
    return m, lambda m: m["mlp"].pop("2000")  # quick mode: the 2000-step runs are missing


def _residual_depth():
    m = {
        "hidden_layers": [3, 5, 9, 17, 33],
        "plain_median_final_train_loss": [0.004, 0.005, 0.0053, 0.076, 0.68],
        "residual_median_final_train_loss": [0.004, 0.0034, 0.003, 0.0022, 0.0054],
    }
    return m, lambda m: m.update(residual_median_final_train_loss=[0.004, 0.003, 0.003, 0.002, 0.05])


def _universal_approximation():
    def row(slope):
        return {"slope": slope, "within_bound": True, "error_over_bound_max": 0.99}

    m = {"sin3x": {"bumps": row(-0.96), "relu": row(-1.98)}, "kink": {"bumps": row(-1.0), "relu": row(-1.0)}}
    return m, lambda m: m["sin3x"]["relu"].update(within_bound=False)


def _ridges_towers():
    m = {
        "ridge": {"leakage": 1.0},
        "tower": {"leakage": 2e-9},
        "telescoped": {"sup_slope": -0.96},
        "towers": {"sup_error": [0.62, 0.7, 1.05]},
        "ns": [2, 4, 8],
    }
    return m, lambda m: m["towers"].update(sup_error=[0.62, 0.3, 0.1])


def _constructed_vs_trained():
    m = {
        "widths": [4, 8],
        "trained": {"sigmoid": {"median": [0.3, 0.1]}, "relu": {"median": [1.0, 0.2]}},
        "constructed": {
            "sigmoid bumps": {"sup_error": [1.6, 0.9]},
            "sigmoid steps": {"sup_error": [0.7, 0.4]},
            "relu interpolant": {"sup_error": [0.5, 0.1]},
        },
    }
    return m, lambda m: m["trained"]["relu"].update(median=[1.0, 0.05])


def _depth_vs_width():
    saw = [
        {
            "depth": d,
            "pieces": 2**d,
            "deep_units": 2 * d,
            "shallow_units_lower_bound": 2**d - 1,
            "shallow_units_constructed": 2**d,
        }
        for d in range(1, 5)
    ]
    nets = {
        "1x16": {"widths": [16], "pieces_mean": 15.7, "one_layer_max": 17},
        "4x4": {"widths": [4] * 4, "pieces_mean": 11.3, "one_layer_max": 17},
    }
    m = {"sawtooth": saw, "bruteforce_agrees": True, "max_interpolant_error_dyadic": 0.0, "random_networks": nets}
    return m, lambda m: m["random_networks"]["4x4"].update(pieces_mean=18.0)


def _linear_regions():
    def row(widths, mean, upper, lower):
        return {"widths": widths, "units": sum(widths), "regions_mean": mean, "serra_upper_bound": upper} | {
            "montufar2014_lower_bound": lower
        }

    m = {"architectures": {"1x24": row([24], 258.0, 301, 301), "2x12": row([12, 12], 238.0, 3000, 2844)}}
    return m, lambda m: m["architectures"]["2x12"].update(regions_mean=270.0)


def _divergence_fit():
    m = {
        "forward_kl_moment_matching_max_error": 4e-8,
        "sweep": {"KL(p||q)": {"std": [1.0, 1.4, 2.2, 3.1]}},
        "locks_on_heavier_mode_from_separation": {
            "KL(p||q)": None,
            "KL(q||p)": 6.0,
            "JS": 8.0,
            "MMD h=0.5": 8.0,
            "MMD h=3": None,
        },
        "reverse_kl_lock_on_heavier_mode": {"mean_error": 0.001, "std_error": 0.002},
    }
    return m, lambda m: m["locks_on_heavier_mode_from_separation"].update({"MMD h=3": 8.0})


VERDICT_CASES = {
    "xor": _xor,
    "rules": _rules,
    "digits": _digits,
    "optimizers": _optimizers,
    "step_decay": _step_decay,
    "linear_regression": _linear_regression,
    "robust_regression": _robust_regression,
    "regularization": _regularization,
    "kfold": _kfold,
    "bayesopt": _bayesopt,
    "bias_variance": _bias_variance,
    "residual_depth": _residual_depth,
    "universal_approximation": _universal_approximation,
    "ridges_towers": _ridges_towers,
    "constructed_vs_trained": _constructed_vs_trained,
    "depth_vs_width": _depth_vs_width,
    "linear_regions": _linear_regions,
    "divergence_fit": _divergence_fit,
}


def test_every_experiment_has_verdict_cases():
    assert set(VERDICT_CASES) == set(runner.EXPERIMENTS)


@pytest.mark.parametrize("name", sorted(VERDICT_CASES))
def test_verdict_passes_satisfying_metrics_and_fails_violating_ones(name):
    from fnn import io

    module = importlib.import_module(f"experiments.{name}")
    good, violate = VERDICT_CASES[name]()
    stored = json.loads(io.dumps_json(good))  # as in result.json: NaN as "nan"
    verdict = runner.judge(module, stored, False)
    assert verdict.label == "PASS", verdict.measured
    assert verdict.checks and verdict.failed == ()
    assert runner.judge(module, json.loads(io.dumps_json(good)), True).label == "PASS"  # one criterion for both modes

    violate(stored)
    verdict = runner.judge(module, json.loads(io.dumps_json(stored)), False)
    assert verdict.label == "FAIL", verdict.measured
    assert len(verdict.failed) == 1, verdict.failed  # the violated part, and only it
