"""Tests for fnn.io: atomic writes leave the old file or the new one, and nothing else."""

import json
import math
import os

import jax.numpy as jnp
import numpy as np
import pytest

from fnn import io


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


def test_write_bytes_creates_parents_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "x.bin"
    io.atomic_write_bytes(target, b"one")
    io.atomic_write_bytes(str(target), b"two")
    assert target.read_bytes() == b"two"
    assert _siblings(target) == ["x.bin"]


def test_written_file_has_umask_mode_not_tempfile_mode(tmp_path):
    target = io.atomic_write_text(tmp_path / "t.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_text_utf8(tmp_path):
    target = io.atomic_write_text(tmp_path / "t.txt", "ünïcode ✓")
    assert target.read_text(encoding="utf-8") == "ünïcode ✓"


@pytest.mark.parametrize(
    "call, bad",
    [(io.atomic_write_bytes, "str, not bytes"), (io.atomic_write_text, b"bytes, not str")],
)
def test_wrong_payload_type_is_type_error(tmp_path, call, bad):
    with pytest.raises(TypeError, match="must be"):
        call(tmp_path / "f", bad)
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_write_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    io.atomic_write_json(target, {"v": 1})

    def broken_fsync(fd):
        raise OSError("disk on fire")

    # The temp file has been written and flushed when fsync fails: the worst moment.
    monkeypatch.setattr(io.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk on fire"):
        io.atomic_write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert _siblings(target) == ["x.json"]


def test_failure_in_json_dumps_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    io.atomic_write_json(target, {"v": 1})

    def broken_dumps(*args, **kwargs):
        raise RuntimeError("serialiser crashed")

    monkeypatch.setattr(io.json, "dumps", broken_dumps)
    with pytest.raises(RuntimeError, match="serialiser crashed"):
        io.atomic_write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert _siblings(target) == ["x.json"]


def test_unserialisable_object_keeps_old_file(tmp_path):
    target = tmp_path / "x.json"
    io.atomic_write_json(target, {"v": 1})
    with pytest.raises(TypeError, match=r"obj\['v'\]\[1\] is of type object"):
        io.atomic_write_json(target, {"v": [1, object()]})
    assert json.loads(target.read_text()) == {"v": 1}
    assert _siblings(target) == ["x.json"]


def test_failing_figure_keeps_old_png_and_removes_temp(tmp_path):
    from matplotlib.figure import Figure

    target = tmp_path / "f.png"
    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1])
    io.atomic_save_figure(target, fig)
    before = target.read_bytes()

    class Exploding(Figure):
        def savefig(self, *args, **kwargs):
            args[0].write(b"\x89PNG partial")
            raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        io.atomic_save_figure(target, Exploding())
    assert target.read_bytes() == before
    assert _siblings(target) == ["f.png"]


def test_save_figure_refuses_non_figure(tmp_path):
    with pytest.raises(TypeError, match="matplotlib.figure.Figure"):
        io.atomic_save_figure(tmp_path / "f.png", "not a figure")


def test_jsonable_converts_numpy_and_jax():
    obj = {
        "np_scalar": np.float32(0.5),
        "np_int": np.int64(7),
        "np_bool": np.bool_(True),
        "np_array": np.arange(4).reshape(2, 2),
        "jax_scalar": jnp.float32(1.5),
        "jax_array": jnp.array([[1.0, 2.0]]),
        "jax_bool": jnp.array([True, False]),
        "tuple": (1, "a", None),
    }
    out = io.to_jsonable(obj)
    assert out == {
        "np_scalar": 0.5,
        "np_int": 7,
        "np_bool": True,
        "np_array": [[0, 1], [2, 3]],
        "jax_scalar": 1.5,
        "jax_array": [[1.0, 2.0]],
        "jax_bool": [True, False],
        "tuple": [1, "a", None],
    }
    assert type(out["np_int"]) is int and type(out["np_bool"]) is bool
    assert type(out["jax_scalar"]) is float
    json.dumps(out, allow_nan=False)  # strict JSON


def test_jsonable_non_finite_floats_become_strings():
    obj = {
        "py": [math.nan, math.inf, -math.inf, 1.0],
        "np": np.array([np.nan, np.inf, -np.inf]),
        "jax": jnp.array([jnp.nan, -jnp.inf]),
        "jax_scalar": jnp.float32(jnp.inf),
    }
    assert io.to_jsonable(obj) == {
        "py": ["nan", "inf", "-inf", 1.0],
        "np": ["nan", "inf", "-inf"],
        "jax": ["nan", "-inf"],
        "jax_scalar": "inf",
    }


def test_json_file_is_sorted_indented_and_round_trips(tmp_path):
    target = io.atomic_write_json(tmp_path / "r.json", {"b": jnp.array([1.0, jnp.nan]), "a": 1})
    text = target.read_text()
    assert text == '{\n  "a": 1,\n  "b": [\n    1.0,\n    "nan"\n  ]\n}\n'
    assert [float(v) for v in json.loads(text)["b"]][0] == 1.0


@pytest.mark.parametrize(
    "obj, match",
    [
        ({1: "int key"}, "dict key 1 of type int"),
        ({"s": {1, 2}}, r"obj\['s'\] is of type set"),
        ({"c": np.array([1j])}, "dtype complex128"),
    ],
)
def test_jsonable_refuses_what_json_cannot_hold(obj, match):
    with pytest.raises(TypeError, match=match):
        io.to_jsonable(obj)
