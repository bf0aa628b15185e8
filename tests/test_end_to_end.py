"""The user's path end to end: a CSV as real CSVs look (a header, string labels) goes through
split, standardise, fit with early stopping and progress, save, load in a fresh process and
predict, with the same bits out and each prediction mapped back to its line of the file."""

import json
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

import fnn

REPO = pathlib.Path(__file__).resolve().parents[1]
CLASSES = ("setosa", "versicolor", "virginica")

# What a user's script in another process does: load the model file and predict from raw inputs.
_PREDICT = """
import sys, numpy as np, fnn
saved = fnn.train.load_model(sys.argv[1])
x = np.load(sys.argv[2])
np.save(sys.argv[3], np.asarray(saved.predict(x, "proba")))
print("\\n".join(saved.predict(x, "names").tolist()))
"""


def _write_csv(path: pathlib.Path, rng: np.random.Generator, n: int) -> np.ndarray:
    """Three well-separated classes in four features, shuffled rows, with a header."""
    labels = rng.integers(0, 3, n)
    centers = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    x = centers[labels] + 0.15 * rng.standard_normal((n, 4))
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    lines += [",".join(f"{v:.3f}" for v in row) + f",{CLASSES[c]}" for row, c in zip(x, labels)]
    path.write_text("\n".join(lines) + "\n")
    return labels


@pytest.mark.slow
def test_csv_to_a_saved_model_that_predicts_the_same_in_a_fresh_process(tmp_path, capsys):
    csv = tmp_path / "flowers.csv"
    truth = _write_csv(csv, np.random.default_rng(0), 150)

    dataset, info = fnn.data.load_csv(csv, target_columns="species", return_info=True)
    assert info.feature_names == ("sepal_length", "sepal_width", "petal_length", "petal_width")
    assert info.labels.classes == CLASSES
    np.testing.assert_array_equal(np.asarray(dataset.y), truth)

    (train, val, test), index = fnn.data.train_val_test_split(
        jax.random.key(0), dataset, (0.6, 0.2, 0.2), return_indices=True
    )
    stats = fnn.data.standardize_fit(train.x)
    z = {name: fnn.data.standardize_apply(part.x, *stats) for name, part in (("train", train), ("val", val))}

    trainer = fnn.train.Trainer(
        fnn.MLP((4, 16, 3), batch_norm=True),
        "cross_entropy",
        "adam",
        epochs=400,
        batch_size=30,
        early_stopping=fnn.train.EarlyStopping(patience=10),
        progress=50,
    )
    hyperparams = {"learning_rate": 0.05}
    state, history = trainer.fit(
        trainer.init(jax.random.key(1), hyperparams), (z["train"], train.y), (z["val"], val.y), hyperparams
    )
    shown = capsys.readouterr()
    stop = int(history.stop_epoch)
    assert 0 <= stop < trainer.epochs - 1, "early stopping should fire on this easy problem"
    assert "stop" in (shown.out + shown.err).lower()

    model_file = fnn.train.save_model(
        tmp_path / "flowers.npz",
        trainer.model,
        state.params,
        state.model_state,
        loss="cross_entropy",
        standardizer=stats,
        class_names=info.labels.classes,
    )
    raw_test = np.asarray(test.x)
    np.save(tmp_path / "x.npy", raw_test)
    here = fnn.train.load_model(model_file).predict(raw_test, "proba")
    # The loaded model is the trained one: the same probabilities as predicting from the state.
    direct = fnn.models.predict(
        trainer.model,
        state.params,
        state.model_state,
        fnn.data.standardize_apply(test.x, *stats),
        loss="cross_entropy",
        kind="proba",
    )
    np.testing.assert_array_equal(np.asarray(here), np.asarray(direct))

    run = subprocess.run(
        [sys.executable, "-c", _PREDICT, str(model_file), str(tmp_path / "x.npy"), str(tmp_path / "p.npy")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    there = np.load(tmp_path / "p.npy")
    assert there.dtype == np.asarray(here).dtype and there.tobytes() == np.asarray(here).tobytes()

    names = run.stdout.split()
    lines = np.asarray(info.lines)[np.asarray(index.test)]
    by_line = dict(zip(lines.tolist(), names))
    file_rows = csv.read_text().splitlines()
    right = [file_rows[line - 1].rsplit(",", 1)[1] == name for line, name in by_line.items()]
    assert len(by_line) == len(raw_test) and np.mean(right) >= 0.95, json.dumps(by_line)
