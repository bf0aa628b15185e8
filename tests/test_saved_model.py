"""fnn.train.saved_model: one file with the configuration, reloaded (here and in a fresh process) to predict bit for bit."""

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.data.splits import Standardizer, standardize_apply
from fnn.models import MLP, ResidualMLP
from fnn.models.prediction import predict
from fnn.nn import activations, losses
from fnn.train import checkpoint, saved_model
from fnn.train.saved_model import SavedModelError, load_model, save_model
from tests.helpers import random_params

REPO = pathlib.Path(__file__).resolve().parents[1]


def _standardizer(rng, d, dtype):
    return Standardizer(
        jnp.asarray(rng.normal(size=d).astype(dtype)), jnp.asarray(rng.uniform(0.5, 3, d).astype(dtype))
    )


def _cases():
    """name -> (save_model arguments, raw inputs x, the kinds to predict)."""
    rng = np.random.default_rng(0)
    classifier = MLP((3, 8, 3), dropout=0.3, input_dropout=0.1, batch_norm=True, bn_momentum=0.8)
    regressor = ResidualMLP(3, 6, 2, 2, activation=activations.get("leaky_relu", negative_slope=0.2), block_layers=1)
    members = MLP((3, 5, 1), activation=("tanh",), batch_norm=True)
    return {
        "classifier": (
            dict(
                model=classifier,
                **dict(zip(("params", "model_state"), random_params(classifier, seed=1, dtype=np.float32))),
                loss="cross_entropy",
                standardizer=_standardizer(rng, 3, np.float32),
                class_names=["setosa", "versicolor", "virginica"],
                metadata={"epochs": 3, "note": "tiny"},
            ),
            rng.normal(size=(37, 3)).astype(np.float32) * 2 + 1,
            ("output", "proba", "classes", "names"),
        ),
        "regressor": (
            dict(
                model=regressor,
                **dict(zip(("params", "model_state"), random_params(regressor, seed=2, dtype=np.float64))),
                loss=losses.get("gaussian_nll_learned", eps=1e-4),
                standardizer=_standardizer(rng, 3, np.float64),
            ),
            rng.normal(size=(29, 3)) * 5,
            ("output", "mean", "variance"),
        ),
        "ensemble": (
            dict(
                model=members,
                **dict(zip(("params", "model_state"), random_params(members, 3, seed=3, dtype=np.float32))),
                loss="binary_cross_entropy",
                class_names=["no", "yes"],
                ensemble=True,
            ),
            rng.normal(size=(21, 3)).astype(np.float32),
            ("proba", "classes", "names"),
        ),
    }


def _expected(args, x, kind):
    """The prediction of the objects given to save_model, computed without the saved file."""
    if args.get("standardizer") is not None:
        x = standardize_apply(x, *args["standardizer"])
    out = predict(
        args["model"],
        args["params"],
        args["model_state"],
        x,
        loss=args["loss"],
        kind="classes" if kind == "names" else kind,
        ensemble=args.get("ensemble", False),
    )
    return np.asarray(args["class_names"])[np.asarray(out)] if kind == "names" else np.asarray(out)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The cases saved to files, their raw inputs and their expected predictions."""
    root = tmp_path_factory.mktemp("saved")
    with jax.enable_x64(True), jax.numpy_rank_promotion("raise"):
        out = {}
        for name, (args, x, kinds) in _cases().items():
            path = save_model(root / f"{name}.npz", **args)
            np.save(root / f"{name}_x.npy", x)
            out[name] = (path, args, x, {kind: _expected(args, x, kind) for kind in kinds})
    return out


_FRESH = textwrap.dedent(
    """
    import sys, pathlib, jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_rank_promotion", "raise")
    from fnn.train import load_model
    root = pathlib.Path(sys.argv[1])
    for name, kinds in [arg.split(":") for arg in sys.argv[2:]]:
        model = load_model(root / f"{name}.npz")
        x = np.load(root / f"{name}_x.npy")
        for kind in kinds.split(","):
            np.save(root / f"{name}_{kind}_fresh.npy", np.asarray(model.predict(x, kind)))
        print(name, type(model.model).__name__, jax.tree.leaves(model.params)[0].dtype)
    """
)


@pytest.fixture(scope="module")
def fresh(saved):
    """The predictions of the saved files loaded in one fresh Python process."""
    root = next(iter(saved.values()))[0].parent
    jobs = [f"{name}:{','.join(expected)}" for name, (_, _, _, expected) in saved.items()]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    env.setdefault("JAX_PLATFORMS", "cpu")
    done = subprocess.run(
        [sys.executable, "-c", _FRESH, str(root), *jobs], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return root, done.stdout


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["classifier", "regressor", "ensemble"])
def test_fresh_process_predicts_bit_for_bit(saved, fresh, name):
    root, stdout = fresh
    _, args, _, expected = saved[name]
    assert f"{name} {type(args['model']).__name__}" in stdout
    for kind, want in expected.items():
        got = np.load(root / f"{name}_{kind}_fresh.npy", allow_pickle=False)
        assert _same_bits(got, want), (name, kind)


@pytest.mark.slow
def test_float64_model_reloads_as_float64_in_a_fresh_process(fresh):
    _, stdout = fresh
    assert "regressor ResidualMLP float64" in stdout
    assert "classifier MLP float32" in stdout


@pytest.mark.parametrize("name", ["classifier", "regressor", "ensemble"])
def test_round_trip_in_this_process(saved, name):
    path, args, x, expected = saved[name]
    loaded = load_model(path)
    assert loaded.model == args["model"] and hash(loaded.model) == hash(args["model"])
    for a, b in zip(
        jax.tree.leaves((args["params"], args["model_state"])), jax.tree.leaves((loaded.params, loaded.model_state))
    ):
        assert _same_bits(a, b)
    assert jax.tree.structure(loaded.model_state) == jax.tree.structure(args["model_state"])
    assert loaded.class_names == (tuple(args["class_names"]) if "class_names" in args else None)
    assert loaded.members == (3 if name == "ensemble" else None)
    for kind, want in expected.items():
        assert _same_bits(loaded.predict(x, kind), want), kind


def test_configuration_loss_standardizer_and_metadata(saved):
    path, args, x, _ = saved["classifier"]
    loaded = load_model(path)
    assert loaded.loss == "cross_entropy" and loaded.metadata == {"epochs": 3, "note": "tiny"}
    assert isinstance(loaded.standardizer, Standardizer)
    assert all(_same_bits(a, b) for a, b in zip(loaded.standardizer, args["standardizer"]))
    # The standardisation is applied: raw inputs differ from standardised ones.
    raw = predict(loaded.model, loaded.params, loaded.model_state, x, loss="cross_entropy", kind="proba")
    assert not np.allclose(raw, loaded.predict(x, "proba"))
    regressor = load_model(saved["regressor"][0])
    assert regressor.loss == "gaussian_nll_learned" and regressor.loss_params == (1e-4,)
    assert regressor.model.activations()[0] == activations.get("leaky_relu", negative_slope=0.2)
    assert jax.tree.leaves(regressor.params)[0].dtype == jnp.float64
    manifest = checkpoint.load_metadata(path)
    assert manifest["format"] == "fnn.saved_model" and manifest["version"] == saved_model.FORMAT_VERSION
    assert manifest["model"] == {
        "class": "MLP",
        "fields": {
            "sizes": [3, 8, 3],
            "activation": "relu",
            "output_activation": "identity",
            "scheme": "he",
            "dropout": 0.3,
            "input_dropout": 0.1,
            "batch_norm": True,
            "bn_momentum": 0.8,
            "bn_eps": 1e-5,
        },
    }
    with zipfile.ZipFile(path) as archive:  # one plain archive of .npy files, nothing pickled
        assert all(n.endswith(".npy") for n in archive.namelist())


def test_names_need_class_names(saved):
    loaded = load_model(saved["regressor"][0])
    with pytest.raises(ValueError, match="kind='names' needs class_names"):
        loaded.predict(saved["regressor"][2], "names")


def _copy(saved, tmp_path, name="classifier"):
    target = tmp_path / f"{name}.npz"
    target.write_bytes(saved[name][0].read_bytes())
    return target


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_file_is_a_clear_error_naming_the_path(saved, tmp_path, keep):
    path = _copy(saved, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(SavedModelError, match=f"{re.escape(str(path))}.*not a readable fnn saved model"):
        load_model(path)


def test_corrupt_bytes_are_a_clear_error_naming_the_path(saved, tmp_path):
    path = _copy(saved, tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:  # flip bytes inside the stored data of the first array
        info = archive.getinfo("leaf_00000.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 128
    data[start : start + 4] = bytes(b ^ 0xFF for b in data[start : start + 4])
    path.write_bytes(bytes(data))
    with pytest.raises(SavedModelError, match=f"{re.escape(str(path))}.*(corrupt|CRC)"):
        load_model(path)


def test_another_format_version_is_refused(saved, tmp_path, monkeypatch):
    _, args, _, _ = saved["classifier"]
    monkeypatch.setattr(saved_model, "FORMAT_VERSION", 2)
    path = save_model(tmp_path / "v2.npz", **args)
    monkeypatch.undo()
    with pytest.raises(
        SavedModelError, match=re.escape(f"{path} has saved-model format version 2; this fnn reads version 1")
    ):
        load_model(path)


def test_other_files_are_refused(saved, tmp_path):
    plain = checkpoint.save(tmp_path / "plain.npz", {"w": jnp.zeros(2)}, metadata={"epoch": 1})
    with pytest.raises(SavedModelError, match="not a saved model"):
        load_model(plain)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(SavedModelError, match=f"{re.escape(str(text))}.*not a zip"):
        load_model(text)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.npz")


def test_inconsistent_manifest_is_refused(saved, tmp_path):
    """A file whose arrays do not fit its configuration (written by hand here) is an error naming it."""
    _, args, _, _ = saved["classifier"]
    manifest = checkpoint.load_metadata(saved["classifier"][0])
    manifest["model"]["fields"]["sizes"] = [3, 9, 3]
    tree = {"params": args["params"], "model_state": args["model_state"], "standardizer": args["standardizer"]}
    path = checkpoint.save(tmp_path / "odd.npz", tree, metadata=manifest)
    with pytest.raises(
        SavedModelError, match=re.escape(f"{path} holds arrays that do not fit its model configuration")
    ):
        load_model(path)
    manifest["model"]["fields"] = {"sizes": [3, 8, 3], "colour": "red"}
    path = checkpoint.save(tmp_path / "odd.npz", tree, metadata=manifest)
    with pytest.raises(SavedModelError, match=r"does not rebuild.*no fields \['colour'\]"):
        load_model(path)


def test_float64_file_without_x64_is_a_clear_error(saved):
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="holds a float64 model; enable 64-bit JAX"):
            load_model(saved["regressor"][0])


def test_save_refuses_what_it_cannot_store_and_leaves_no_file(saved, tmp_path):
    _, args, _, _ = saved["classifier"]
    target = tmp_path / "m.npz"
    custom = activations.Activation("swish", lambda z: z * jax.nn.sigmoid(z), lambda z, a: a)
    bad_model = MLP((3, 8, 3), activation=custom, dropout=0.3, input_dropout=0.1, batch_norm=True, bn_momentum=0.8)
    cases = [
        (dict(model=bad_model), TypeError, r"model\.activation: the activation 'swish' is not a registered"),
        (dict(model=object()), TypeError, "stores an MLP or a ResidualMLP, got object"),
        (dict(model=MLP((3, 8, 3))), ValueError, "'gamma' and 'beta'"),
        (dict(class_names=["a", "b"]), ValueError, "must name the model's 3 classes, got 2"),
        (dict(class_names=["a", "a", "b"]), ValueError, "distinct strings"),
        (dict(class_names="abc"), TypeError, "class_names must be a sequence of str"),
        (dict(loss="mse"), ValueError, "class_names need a classification loss"),
        (dict(standardizer=Standardizer(jnp.zeros(4), jnp.ones(4))), ValueError, r"standardizer.mean must be"),
        (dict(metadata={"f": object()}), TypeError, "no JSON form"),
        (dict(ensemble=True), ValueError, "leading member axis"),
    ]
    for change, error, match in cases:
        with pytest.raises(error, match=match):
            save_model(target, **{**args, **change})
        assert not target.exists() and not list(tmp_path.iterdir())
    state = jax.tree.map(lambda a: a.astype(jnp.float64), args["model_state"])
    with pytest.raises(ValueError, match=r"model_state\[0\]\.mean is float64\[8\]; the model's init in float32 gives"):
        save_model(target, **{**args, "model_state": state})
    weighted = losses.weighted("cross_entropy", jnp.ones(3))
    with pytest.raises(TypeError, match="stores a registered loss by name"):
        save_model(target, **{**args, "loss": weighted})


def test_overwrite_is_atomic_replacement(saved, tmp_path):
    path = _copy(saved, tmp_path)
    _, args, x, expected = saved["classifier"]
    save_model(path, **{**args, "class_names": ["a", "b", "c"]})
    assert load_model(path).class_names == ("a", "b", "c")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left beside it
    assert json.loads(json.dumps(checkpoint.load_metadata(path)))["class_names"] == ["a", "b", "c"]
