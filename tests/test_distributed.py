"""A real multi-process run of fnn's many-run and data-parallel APIs under ``jax.distributed``.

Two processes on localhost (gloo CPU collectives, two CPU devices each: a global mesh of four
devices) run tests/distributed_worker.py: a float64 sweep of five members with
:func:`fnn.train.many.fit_many` sharded over the mesh axis ``"members"`` (five members on four
devices: one device trains padding), and a data-parallel :meth:`fnn.train.Trainer.fit` with every
minibatch split over the mesh axis ``"data"``. A third process runs the same script with
``num_processes=1``: no ``jax.distributed``, one device, the same two runs plus the sweep's
members one by one with ``Trainer.fit``. The parameters must agree to 1e-12.

The runs are subprocesses because ``jax.distributed`` and the device count must be set before
JAX starts its backend, which the test process (perhaps an xdist worker) has long done.

Run it with ``python -m pytest -m slow tests/test_distributed.py`` (about half a minute).
"""

import os
import pathlib
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

WORKER = pathlib.Path(__file__).with_name("distributed_worker.py")
PROCESSES = 2
DEVICES = 4  # PROCESSES x DEVICES_PER_PROCESS of the worker
MEMBERS = 5
TIMEOUT = 240.0
ATOL = 1e-12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # The worker sets its device count with jax_num_cpu_devices; an inherited
    # --xla_force_host_platform_device_count must not fight it, nor another platform be picked.
    env.pop("XLA_FLAGS", None)
    env.pop("FNN_TEST_COMPILATION_CACHE", None)
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONUNBUFFERED"] = "1"  # a killed process's last lines reach its log
    return env


def _start(args: list[str], log: pathlib.Path) -> tuple[subprocess.Popen, pathlib.Path]:
    with open(log, "wb") as out:  # a file, not a pipe: a chatty process never blocks on a full pipe
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
            cwd=WORKER.parent.parent,
        )
    return proc, log


def _tail(log: pathlib.Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:]


def _wait(procs: dict[str, tuple[subprocess.Popen, pathlib.Path]]) -> None:
    """Wait for every process; past the timeout kill them all and fail with their output."""
    deadline = time.monotonic() + TIMEOUT
    timed_out = False
    try:
        for proc, _ in procs.values():
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:  # whatever happened, no process outlives the test
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if timed_out:
        logs = "\n".join(f"--- {name} ---\n{_tail(log)}" for name, (_, log) in procs.items())
        pytest.fail(f"the processes did not finish within {TIMEOUT:.0f} s\n{logs}")
    failed = {name: (proc, log) for name, (proc, log) in procs.items() if proc.returncode != 0}
    assert not failed, "\n".join(
        f"--- {name} exited with {proc.returncode} ---\n{_tail(log)}" for name, (proc, log) in failed.items()
    )


def _leaves(results, name: str) -> list[np.ndarray]:
    count = sum(1 for k in results.files if re.fullmatch(rf"{name}_\d+", k))
    assert count > 0, f"no {name} leaves in {sorted(results.files)}"
    return [results[f"{name}_{i}"] for i in range(count)]


def _assert_close(actual: list[np.ndarray], expected: list[np.ndarray], what: str) -> None:
    assert [a.shape for a in actual] == [e.shape for e in expected], what
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.dtype == e.dtype == np.float64, f"{what}, leaf {i}: {a.dtype} vs {e.dtype}"
        np.testing.assert_allclose(a, e, rtol=0, atol=ATOL, err_msg=f"{what}, leaf {i}")


@pytest.mark.slow
def test_distributed_sweep_and_data_parallel_fit_match_one_device(tmp_path):
    port = str(_free_port())
    distributed, reference = tmp_path / "distributed.npz", tmp_path / "reference.npz"
    procs = {
        f"process {i}": _start([str(i), str(PROCESSES), port, str(distributed)], tmp_path / f"process{i}.log")
        for i in range(PROCESSES)
    }
    procs["one-device reference"] = _start(["0", "1", "0", str(reference)], tmp_path / "reference.log")
    _wait(procs)

    got, want = np.load(distributed), np.load(reference)

    # The run really was spread over both processes' devices, and the reference was not.
    assert int(got["process_count"]) == PROCESSES
    assert int(got["device_count"]) == DEVICES
    assert int(got["sweep_processes"]) == PROCESSES, "the sweep's members were not sharded over both processes"
    assert int(got["parallel_processes"]) == PROCESSES, "the data-parallel run did not span both processes"
    assert int(want["process_count"]) == 1 and int(want["device_count"]) == 1

    # The comparison is not vacuous: the members differ (one learning rate each) and training
    # moved the data-parallel run's parameters away from their initial values.
    sweep = _leaves(want, "sweep")
    assert sweep[0].shape[0] == MEMBERS
    assert min(np.max(np.abs(sweep[0][m] - sweep[0][m + 1])) for m in range(MEMBERS - 1)) > 1e-3
    assert np.max(np.abs(_leaves(want, "parallel")[0] - _leaves(want, "start")[0])) > 1e-3

    # fit_many's contract on one device: member m is its own Trainer.fit.
    for m in range(MEMBERS):
        _assert_close([leaf[m] for leaf in sweep], _leaves(want, f"loop{m}"), f"one-device fit_many member {m}")

    # Sharded over two processes, the same numbers as on one device.
    _assert_close(_leaves(got, "start"), _leaves(want, "start"), "initial parameters")
    _assert_close(_leaves(got, "sweep"), sweep, "sharded fit_many parameters")
    _assert_close(_leaves(got, "sweep_loss"), _leaves(want, "sweep_loss"), "sharded fit_many train loss")
    _assert_close(_leaves(got, "parallel"), _leaves(want, "parallel"), "data-parallel fit parameters")
    _assert_close(_leaves(got, "parallel_loss"), _leaves(want, "parallel_loss"), "data-parallel fit train loss")
