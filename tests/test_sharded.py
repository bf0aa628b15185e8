"""fit_many sharded over 2, 4 and 8 forced CPU devices, and data-parallel fit, equal one-device runs.

A process fixes its device count when JAX starts, so tests/sharded_worker.py runs in a child
process with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (the way to spread a sweep
over a CPU's cores; fnn itself never sets XLA flags) and reports the largest difference of each
layout from the one-device runs it also computes. Float64 throughout: members never exchange
data, so sharding members leaves every number unchanged up to the rounding of XLA's batched
kernels; data parallelism sums the gradient's shares in another order.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

WORKER = pathlib.Path(__file__).with_name("sharded_worker.py")

# One child process of about a minute; CI runs it with the other slow tests.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def differences():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run([sys.executable, str(WORKER)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_child_sees_eight_devices(differences):
    assert differences["devices"] == 8


@pytest.mark.parametrize("devices", [2, 4, 8])
@pytest.mark.parametrize("chunk", ["", ",chunk=1"])
def test_sharded_members_equal_one_device_runs(differences, devices, chunk):
    assert differences[f"members={devices}{chunk}"] < 1e-12


def test_default_mesh_spans_every_device(differences):
    assert differences["default mesh"] < 1e-12


def test_members_by_data_mesh(differences):
    assert differences["members=2,data=4"] < 1e-12


@pytest.mark.parametrize("devices", [2, 8])
def test_data_parallel_fit_equals_one_device(differences, devices):
    assert differences[f"data={devices}"] < 1e-12


def test_batch_norm_and_early_stopping_members_keep_their_own(differences):
    assert len(set(differences["stop epochs"])) > 1
    assert differences["batch norm, early stopping, members=8"] < 1e-12


def test_a_batch_the_data_axis_does_not_divide_is_an_error(differences):
    message = differences["errors"]["batch"]
    assert message.startswith("the batch of 15 examples does not split over the 2 devices of mesh axis 'data'")


def test_an_argument_sharded_another_way_is_an_error_not_a_silent_replication(differences):
    message = differences["errors"]["replicated"]
    assert "train[0] is sharded as" in message and "fit_many would have to replicate" in message
