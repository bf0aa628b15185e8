"""Tests for fnn.checkpoint: exact round trips, refusal of mismatched templates, atomic saves."""

import json
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import checkpoint, io, mlp
from fnn.train.checkpoint import CheckpointError


class TrainState(NamedTuple):
    params: Any
    model_state: Any
    opt_state: Any
    key: jax.Array
    epoch: Any


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


def _bits(x):
    """The raw bytes of an array, so NaN payloads and signed zeros count."""
    x = np.asarray(x)
    return x.dtype, x.shape, x.tobytes()


def _assert_identical(a, b):
    """Same structure, same leaf types, bit-identical values, same weak types."""
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b)):
        where = jax.tree_util.keystr(path)
        assert type(x) is type(y), where
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert x.dtype == y.dtype and x.shape == y.shape, where
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        elif isinstance(x, float):
            assert x.hex() == y.hex() or (math.isnan(x) and math.isnan(y)), where
            continue
        elif isinstance(x, (int, bool)):
            assert x == y, where
            continue
        assert getattr(x, "weak_type", False) == getattr(y, "weak_type", False), where
        assert _bits(x) == _bits(y), where


def _train_state(key):
    k_init, k_run = jax.random.split(key)
    params = mlp.init(k_init, [3, 4, 2], dtype=jnp.float64)
    model_state = {"bn": {"mean": jnp.zeros(4), "var": jnp.ones(4)}, "unused": None}
    opt_state = optax.adam(1e-3).init(params)
    return TrainState(params, model_state, opt_state, k_run, 0)


def test_params_round_trip(tmp_path, key):
    params = mlp.init(key, [3, 5, 2], dtype=jnp.float64)
    path = checkpoint.save(tmp_path / "p.npz", params)
    _assert_identical(params, checkpoint.restore(path, params))


def test_adam_state_round_trip(tmp_path, key):
    params = mlp.init(key, [2, 3, 1])
    state = optax.adam(1e-3).init(params)
    _, state = optax.adam(1e-3).update(params, state, params)
    restored = checkpoint.restore(checkpoint.save(tmp_path / "o.npz", state), state)
    _assert_identical(state, restored)
    assert isinstance(restored[0], optax.ScaleByAdamState) and isinstance(restored[1], optax.EmptyState)
    assert restored[0].count.dtype == jnp.int32 and int(restored[0].count) == 1


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_typed_key_round_trip_draws_the_same_numbers(tmp_path, impl):
    key = jax.random.key(42, impl=impl)
    keys = jax.random.split(key, 3)
    restored_key, restored_keys = checkpoint.restore(checkpoint.save(tmp_path / "k.npz", (key, keys)), (key, keys))
    _assert_identical((key, keys), (restored_key, restored_keys))
    assert str(jax.random.key_impl(restored_key)) == impl
    np.testing.assert_array_equal(jax.random.normal(restored_key, (5,)), jax.random.normal(key, (5,)))


def test_python_scalars_and_none(tmp_path):
    tree = {
        "i": 3,
        "big": -(2**62),
        "f": 0.1,
        "neg0": -0.0,
        "nan": math.nan,
        "inf": math.inf,
        "t": True,
        "n": None,
        "empty": (),
    }
    restored = checkpoint.restore(checkpoint.save(tmp_path / "s.npz", tree), tree)
    _assert_identical(tree, restored)
    assert restored["n"] is None and restored["empty"] == ()
    assert math.copysign(1.0, restored["neg0"]) == -1.0


@pytest.mark.parametrize(
    "dtype", ["float32", "float64", "float16", "bfloat16", "int32", "int64", "uint8", "int8", "complex64", "bool"]
)
@pytest.mark.parametrize("as_jax", [True, False])
def test_arrays_round_trip_bit_exactly(tmp_path, dtype, as_jax):
    dtype = jnp.dtype(dtype)
    rng = np.random.default_rng(0)
    if dtype == np.bool_:
        x = rng.random((3, 4)) < 0.5
    else:  # random bits: NaN payloads, infinities, signed zeros and subnormals included
        x = rng.integers(0, 256, size=12 * dtype.itemsize, dtype=np.uint8).view(dtype).reshape(3, 4)
    tree = {"x": jnp.asarray(x) if as_jax else x, "scalar": x[0, 0], "empty": x[:0]}
    restored = checkpoint.restore(checkpoint.save(tmp_path / "a.npz", tree), tree)
    _assert_identical(tree, restored)


def test_weak_type_is_kept_so_jit_does_not_retrace(tmp_path):
    tree = {"lr": jnp.asarray(0.5), "row": jnp.broadcast_to(jnp.asarray(2.0), (3,)), "strong": jnp.ones(())}
    assert tree["lr"].weak_type and tree["row"].weak_type and not tree["strong"].weak_type
    restored = checkpoint.restore(checkpoint.save(tmp_path / "w.npz", tree), tree)
    _assert_identical(tree, restored)
    traces = []

    @jax.jit
    def f(t):
        traces.append(1)
        return t["lr"] * t["row"] + t["strong"]

    f(tree)
    f(restored)
    assert len(traces) == 1


def test_shape_dtype_struct_template(tmp_path, key):
    state = _train_state(key)
    path = checkpoint.save(tmp_path / "t.npz", state)
    like = jax.eval_shape(lambda: state._replace(epoch=None))._replace(epoch=0)
    _assert_identical(state, checkpoint.restore(path, like))


def test_train_state_round_trips_and_resumed_run_is_bit_identical(tmp_path, key):
    opt = optax.adam(1e-2)
    x = jax.random.normal(jax.random.key(1), (8, 3))
    y = jax.random.normal(jax.random.key(2), (8, 2))
    traces = []

    @jax.jit
    def step(s):
        traces.append(1)
        key, k_noise = jax.random.split(s.key)

        def loss(p):
            noisy = x + 0.1 * jax.random.normal(k_noise, x.shape)  # uses the key, like dropout
            return jnp.mean((mlp.apply(p, noisy) - y) ** 2)

        grads = jax.grad(loss)(s.params)
        updates, opt_state = opt.update(grads, s.opt_state, s.params)
        mean = 0.9 * s.model_state["bn"]["mean"] + 0.1 * jnp.mean(x @ s.params[0]["W"], axis=0)
        model_state = {**s.model_state, "bn": {**s.model_state["bn"], "mean": mean}}
        return TrainState(optax.apply_updates(s.params, updates), model_state, opt_state, key, s.epoch + 1)

    state = _train_state(key)._replace(epoch=jnp.asarray(0, jnp.int32))
    for _ in range(3):
        state = step(state)
    path = checkpoint.save(tmp_path / "ckpt.npz", state, metadata={"epoch": int(state.epoch)})
    restored = checkpoint.restore(path, _train_state(jax.random.key(7))._replace(epoch=jnp.asarray(0, jnp.int32)))
    _assert_identical(state, restored)
    assert checkpoint.load_metadata(path) == {"epoch": 3}

    uninterrupted, resumed = state, restored
    for _ in range(3):
        uninterrupted, resumed = step(uninterrupted), step(resumed)
    _assert_identical(uninterrupted, resumed)
    assert len(traces) == 1  # the restored state has exactly the avals of the live one


# ---------------------------------------------------------------------------------------------
# templates that do not match


@pytest.mark.parametrize(
    "change, match",
    [
        (
            lambda p: p[:1],
            r"has 4 leaves, the template 2: the checkpoint has leaf \[1\]\['W'\], which the template lacks",
        ),
        (lambda p: p + [p[0]], r"template has leaf \[2\]\['W'\], which the checkpoint lacks"),
        (
            lambda p: [p[0], {"W": p[1]["W"], "bias": p[1]["b"]}],
            r"leaf \[1\]\['b'\] where the template has \[1\]\['bias'\]",
        ),
        (lambda p: tuple(p), r"tree structure"),
        (lambda p: [p[0], {"W": p[1]["W"], "b": p[1]["b"], "c": None}], r"tree structure"),
    ],
)
def test_structure_mismatch_names_the_leaf(tmp_path, key, change, match):
    params = mlp.init(key, [2, 3, 1])
    path = checkpoint.save(tmp_path / "p.npz", params)
    with pytest.raises(ValueError, match=match):
        checkpoint.restore(path, change(params))


@pytest.mark.parametrize(
    "leaf, match",
    [
        (
            lambda: jnp.zeros((3, 2), jnp.float32),
            r"leaf \[1\]\['W'\]: the template expects array float32\[3, 2\], the checkpoint has array float32\[3, 1\]",
        ),
        (
            lambda: jnp.zeros((3, 1), jnp.float64),
            r"leaf \[1\]\['W'\]: the template expects array float64\[3, 1\], the checkpoint has array float32",
        ),
        (lambda: np.zeros((3, 1), np.int32), r"leaf \[1\]\['W'\]: the template expects array int32"),
        (lambda: 1.0, r"leaf \[1\]\['W'\]: the template expects a Python float, the checkpoint has array"),
        (lambda: jax.random.key(0), r"leaf \[1\]\['W'\]: the template expects PRNG key array key<fry>\[\]"),
    ],
)
def test_leaf_mismatch_names_path_expected_and_found(tmp_path, key, leaf, match):
    params = mlp.init(key, [2, 3, 1])
    path = checkpoint.save(tmp_path / "p.npz", params)
    params[1]["W"] = leaf()
    with pytest.raises(ValueError, match=match):
        checkpoint.restore(path, params)


def test_key_impl_and_python_type_mismatch(tmp_path):
    path = checkpoint.save(tmp_path / "k.npz", {"key": jax.random.key(0), "epoch": 3})
    with pytest.raises(ValueError, match=r"\['key'\].*key<rbg>.*key<fry>"):
        checkpoint.restore(path, {"key": jax.random.key(0, impl="rbg"), "epoch": 0})
    with pytest.raises(
        ValueError, match=r"\['epoch'\]: the template expects a Python float, the checkpoint has a Python int"
    ):
        checkpoint.restore(path, {"key": jax.random.key(0), "epoch": 0.0})
    with pytest.raises(ValueError, match=r"\['epoch'\]: the template expects array int32\[\]"):
        checkpoint.restore(path, {"key": jax.random.key(0), "epoch": jnp.asarray(0, jnp.int32)})


# ---------------------------------------------------------------------------------------------
# atomicity and damaged files


def _boom(*args, **kwargs):
    raise RuntimeError("disk on fire")


@pytest.mark.parametrize("where", ["savez", "fsync", "leaf", "metadata"])
def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch, key, where):
    params = mlp.init(key, [2, 3, 1])
    path = checkpoint.save(tmp_path / "p.npz", params, metadata={"v": 1})
    before = path.read_bytes()
    newer = jax.tree_util.tree_map(lambda x: x + 1, params)
    metadata = {"v": 2}
    expected = RuntimeError
    if where == "savez":
        monkeypatch.setattr(checkpoint.np, "savez", _boom)
    elif where == "fsync":  # the temporary file is fully written when this fails: the worst moment
        monkeypatch.setattr(io.os, "fsync", _boom)
    elif where == "leaf":
        newer[1]["b"], expected = "not an array", TypeError
    else:
        metadata, expected = {"v": object()}, TypeError
    with pytest.raises(expected, match=r"disk on fire|\[1\]\['b'\] is of type str|is of type object"):
        checkpoint.save(path, newer, metadata=metadata)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _siblings(path) == ["p.npz"]
    _assert_identical(params, checkpoint.restore(path, params))
    assert checkpoint.load_metadata(path) == {"v": 1}


def test_overwrite_replaces_checkpoint(tmp_path, key):
    path = tmp_path / "sub" / "c.npz"
    checkpoint.save(path, {"a": jnp.zeros(2)}, metadata={"v": 1})
    tree = {"b": [jnp.ones(3), 2]}
    checkpoint.save(str(path), tree, metadata={"v": 2})
    _assert_identical(tree, checkpoint.restore(path, tree))
    assert checkpoint.load_metadata(path) == {"v": 2}
    assert _siblings(path) == ["c.npz"]


@pytest.mark.parametrize("keep", [0, 1, 30, 0.5, -1])
def test_truncated_file_is_a_clear_error(tmp_path, key, keep):
    params = mlp.init(key, [2, 3, 1])
    path = checkpoint.save(tmp_path / "p.npz", params)
    data = path.read_bytes()
    keep = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    path.write_bytes(data[:keep])
    with pytest.raises(CheckpointError, match="not .*checkpoint"):
        checkpoint.restore(path, params)


def test_corrupted_leaf_fails_its_crc(tmp_path):
    path = checkpoint.save(tmp_path / "p.npz", {"w": np.arange(64.0)})
    data = bytearray(path.read_bytes())
    i = data.index(np.arange(64.0)[40:41].tobytes())
    data[i] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        checkpoint.restore(path, {"w": np.arange(64.0)})


def test_files_that_are_not_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        checkpoint.restore(tmp_path / "missing.npz", {})
    (tmp_path / "text.npz").write_text("hello")
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "array.npy", np.zeros(3))
    np.savez(tmp_path / "plain.npz", w=np.zeros(3))
    for name, match in [
        ("text.npz", "not a zip"),
        ("empty.npz", "not a zip"),
        ("array.npy", "not a zip"),
        ("plain.npz", "no manifest"),
    ]:
        with pytest.raises(CheckpointError, match=match):
            checkpoint.restore(tmp_path / name, {"w": np.zeros(3)})
        with pytest.raises(CheckpointError, match=match):
            checkpoint.load_metadata(tmp_path / name)


def test_newer_format_version_is_refused(tmp_path):
    path = checkpoint.save(tmp_path / "c.npz", {"w": np.zeros(2)})
    with np.load(path, allow_pickle=False) as z:
        arrays = dict(z)
    manifest = json.loads(arrays["manifest"].tobytes())
    manifest["version"] = checkpoint.FORMAT_VERSION + 1
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="format version 2"):
        checkpoint.restore(path, {"w": np.zeros(2)})


def test_file_is_a_plain_npz_with_a_json_manifest(tmp_path, key):
    state = _train_state(key)
    path = checkpoint.save(tmp_path / "t.npz", state, metadata={"loss": math.nan, "cfg": (1, 2)})
    with np.load(path, allow_pickle=False) as z:
        manifest = json.loads(z["manifest"].tobytes())
        names = sorted(z.files)
        key_data = z[manifest["leaves"][-2]["name"]]
    assert manifest["format"] == "fnn.checkpoint" and manifest["version"] == 1
    assert manifest["treedef"] == str(jax.tree_util.tree_structure(state))
    assert [e["name"] for e in manifest["leaves"]] == names[:-1] and names[-1] == "manifest"
    assert manifest["leaves"][0] == {
        "name": "leaf_00000",
        "path": ".params[0]['W']",
        "kind": "array",
        "shape": [3, 4],
        "dtype": "float64",
        "weak_type": False,
    }
    assert manifest["leaves"][-2]["kind"] == "prng_key" and manifest["leaves"][-2]["impl"] == "threefry2x32"
    np.testing.assert_array_equal(key_data, jax.random.key_data(state.key))
    assert manifest["leaves"][-1] == {"name": names[-2], "path": ".epoch", "kind": "int", "shape": [], "dtype": "int64"}
    assert checkpoint.load_metadata(path) == {"loss": "nan", "cfg": [1, 2]}


def test_save_refuses_tracers_and_unsupported_leaves(tmp_path):
    with pytest.raises(TypeError, match="traced value"):
        jax.jit(lambda x: checkpoint.save(tmp_path / "c.npz", {"x": x}))(jnp.ones(2))
    with pytest.raises(TypeError, match=r"\['s'\] has dtype <U1"):
        checkpoint.save(tmp_path / "c.npz", {"s": np.array(["a"])})
    with pytest.raises(ValueError, match="does not fit in int64"):
        checkpoint.save(tmp_path / "c.npz", [2**70])
    with pytest.raises(TypeError, match=r"template leaf \['w'\] is of type str"):
        checkpoint.restore(checkpoint.save(tmp_path / "c.npz", {"w": 1}), {"w": "x"})
    assert _siblings(tmp_path / "c.npz") == ["c.npz"]


# ---------------------------------------------------------------------------------------------
# resuming a Trainer run with a learning-rate schedule


@pytest.mark.slow
def test_resumed_trainer_run_with_a_schedule_is_bit_identical(tmp_path):
    import fnn
    from fnn import train

    x, y = fnn.data.blobs(jax.random.key(0), 16, centers=3, dtype=jnp.float64)
    hp = {"learning_rate": 0.3}

    def trainer(**options):
        return train.Trainer(
            fnn.MLP((2, 4, 3)),
            "cross_entropy",
            "momentum",
            batch_size=8,
            schedule=fnn.schedules.classic_step_decay,
            **options,
        )

    whole = trainer(epochs=20)
    start = whole.init(jax.random.key(1), hp, dtype=jnp.float64)
    straight, _ = whole.fit(start, (x, y), None, hp)
    half = trainer(epochs=10, total_epochs=20)
    middle, _ = half.fit(start, (x, y), None, hp)
    path = checkpoint.save(tmp_path / "half.ckpt", middle)
    restored = checkpoint.restore(path, half.init(jax.random.key(9), hp, dtype=jnp.float64))
    resumed, _ = half.fit(restored, (x, y), None, hp)
    assert int(resumed.epoch) == 20
    _assert_identical(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params))
    # Without total_epochs each call's schedule spans its own 10 epochs: the rates differ.
    short = trainer(epochs=10)
    again, _ = short.fit(short.fit(start, (x, y), None, hp)[0], (x, y), None, hp)
    assert not np.array_equal(np.asarray(again.params[0]["W"]), np.asarray(straight.params[0]["W"]))
