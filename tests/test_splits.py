"""Tests of fnn.data.splits: the indices that map each split back to the rows it came from.

Sizes, coverage, stratification and standardisation are tested in tests/test_data.py. The
checks here index with NumPy, so that they compile nothing beyond the split itself.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import data


def _distinct(n):
    """A data set whose rows are all different, so a row identifies its index; three balanced classes."""
    x = np.arange(2.0 * n).reshape(n, 2) ** 1.5
    return data.Dataset(jnp.asarray(x), jnp.asarray(np.arange(n) % 3))


def _check_indices(ds, splits, index, n):
    assert isinstance(splits, data.Splits) and isinstance(index, data.Splits)
    x, y = np.asarray(ds.x), np.asarray(ds.y)
    for part, idx in zip(splits, index):
        idx = np.asarray(idx)
        assert idx.dtype == np.int32 and idx.shape == (part.x.shape[0],)
        np.testing.assert_array_equal(x[idx], part.x)
        np.testing.assert_array_equal(y[idx], part.y)
    assert sorted(np.concatenate([np.asarray(i) for i in index]).tolist()) == list(range(n))


# The size and fractions of tests/test_data.py's split tests, whose compiled operations this shares
# (the stratified split's indices are checked in test_data.py's test_split_stratified).
def test_split_indices(key):
    n = 100
    ds = _distinct(n)
    splits, index = data.train_val_test_split(key, ds, return_indices=True)
    _check_indices(ds, splits, index, n)
    # Asking for the indices does not change the split.
    plain = data.train_val_test_split(key, ds)
    assert isinstance(plain, data.Splits) and plain.test is plain[2]
    for a, b in zip(plain, splits):
        np.testing.assert_array_equal(a.x, b.x)


@pytest.mark.slow
def test_stratified_split_indices(key):
    n = 60
    ds = _distinct(n)
    splits, index = data.train_val_test_split(key, ds, (0.6, 0.2, 0.2), stratify=True, return_indices=True)
    _check_indices(ds, splits, index, n)
    for part in splits:
        assert np.bincount(np.asarray(part.y), minlength=3).tolist() == [part.x.shape[0] // 3] * 3


@pytest.mark.slow
def test_split_indices_under_jit(key):
    ds = _distinct(20)
    splits, index = jax.jit(lambda k: data.train_val_test_split(k, ds, return_indices=True))(key)
    _check_indices(ds, splits, index, 20)


def test_shuffle_indices(key):
    ds = _distinct(20)
    shuffled, index = data.shuffle(key, ds, return_indices=True)
    index = np.asarray(index)
    np.testing.assert_array_equal(np.asarray(ds.x)[index], shuffled.x)
    np.testing.assert_array_equal(np.asarray(ds.y)[index], shuffled.y)
    assert sorted(index.tolist()) == list(range(20))
    np.testing.assert_array_equal(data.shuffle(key, ds).x, shuffled.x)


def test_indices_map_predictions_to_the_lines_of_the_file(key, tmp_path):
    rows = [f"{i * 0.5},{i % 4},{'ab'[i % 2]}" for i in range(100)]
    text = "# made up\nu,v,kind\n" + "\n".join(rows[:5]) + "\n\n" + "\n".join(rows[5:]) + "\n"
    path = tmp_path / "rows.csv"
    path.write_text(text)
    ds, info = data.load_csv(path, target_columns="kind", dtype=jnp.float64, return_info=True)
    (_, _, test), index = data.train_val_test_split(key, ds, return_indices=True)
    file_lines = text.splitlines()
    names = info.labels.decode(test.y)
    for i, line_number in enumerate(info.lines[np.asarray(index.test)]):
        u, v, kind = file_lines[line_number - 1].split(",")
        np.testing.assert_allclose(test.x[i], [float(u), float(v)])
        assert names[i] == kind


def test_return_indices_must_be_a_bool(key):
    with pytest.raises(TypeError, match="return_indices must be True or False, got 'yes'"):
        data.train_val_test_split(key, (np.zeros((10, 1)), np.zeros(10)), return_indices="yes")
    with pytest.raises(TypeError, match="return_indices must be True or False, got 1"):
        data.shuffle(key, (np.zeros((10, 1)), np.zeros(10)), return_indices=1)
