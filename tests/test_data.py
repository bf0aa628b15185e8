"""Tests of fnn.data: generators, bundled digits, file loaders, splits and standardisation."""

import gzip
import struct
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import data, perceptron

# Odd, so "balanced" means class counts differing by at most one; large enough for statistics.
# Every generator test uses this N and float32, so eager calls share their compiled operations.
N = 2001

# name -> (generator, keyword arguments, x shape, number of classes or None)
GENERATORS = {
    "noisy_sine": (data.noisy_sine, {}, (N, 1), None),
    "polynomial": (data.polynomial, {"coefficients": [0.5, -1.0, 2.0, 0.25]}, (N, 1), None),
    "regression_with_outliers": (data.regression_with_outliers, {}, (N, 1), None),
    "two_moons": (data.two_moons, {}, (N, 2), 2),
    "circles": (data.circles, {}, (N, 2), 2),
    "spirals": (data.spirals, {"classes": 3}, (N, 2), 3),
    "blobs": (data.blobs, {"centers": 3, "features": 3}, (N, 3), 3),
}


def _call(name, key, n=N, **extra):
    fn, kwargs, _, _ = GENERATORS[name]
    return fn(key, n, **{**kwargs, **extra})


# ----------------------------------------------------------------------------------------
# logic gates and generators: shapes, keys, vmap, jit
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["and", "or", "nand", "nor", "xor"])
def test_logic_gate(name):
    ds = data.logic_gate(name)
    assert isinstance(ds, data.Dataset)
    x_ref, y_ref = perceptron.truth_table(name)
    assert ds.x.dtype == jnp.float32 and ds.y.dtype == jnp.int32
    np.testing.assert_array_equal(ds.x, x_ref)
    np.testing.assert_array_equal(ds.y, np.asarray(y_ref).astype(np.int32))
    assert data.logic_gate(name, jnp.float64).x.dtype == jnp.float64


def test_logic_gate_errors():
    with pytest.raises(ValueError, match="unknown gate 'xnor'"):
        data.logic_gate("xnor")
    with pytest.raises(TypeError, match="dtype must be a floating-point dtype"):
        data.logic_gate("and", jnp.int32)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generator_shapes_keys_vmap_jit(name, key):
    _, _, x_shape, classes = GENERATORS[name]
    k0, k1 = jax.random.split(key)
    ds = _call(name, k0)
    assert isinstance(ds, data.Dataset)
    assert ds.x.shape == x_shape and ds.x.dtype == jnp.float32
    if classes is None:
        assert ds.y.shape == (N, 1) and ds.y.dtype == jnp.float32
    else:
        assert ds.y.shape == (N,) and ds.y.dtype == jnp.int32
        assert set(np.unique(ds.y).tolist()) == set(range(classes))
    assert np.all(np.isfinite(ds.x)) and np.all(np.isfinite(ds.y))
    # Same key, same data.
    again = _call(name, k0)
    np.testing.assert_array_equal(again.x, ds.x)
    np.testing.assert_array_equal(again.y, ds.y)
    # jit (n static) of vmap over keys: the per-key data sets, stacked; another key, other data.
    batched = jax.jit(jax.vmap(lambda k: _call(name, k)))(jnp.stack([k0, k1]))
    assert isinstance(batched, data.Dataset) and batched.x.shape == (2, *x_shape)
    np.testing.assert_allclose(batched.x[0], ds.x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batched.y[0], ds.y, rtol=1e-5, atol=1e-5)
    assert not np.allclose(batched.x[1], ds.x)


@pytest.mark.parametrize("name", ["noisy_sine", "two_moons"])
def test_generator_float64(name, key):
    ds = _call(name, key, n=5, dtype=jnp.float64)
    assert ds.x.dtype == jnp.float64


@pytest.mark.parametrize("name", ["two_moons", "circles", "spirals", "blobs"])
def test_classes_balanced(name, key):
    _, _, _, classes = GENERATORS[name]
    counts = np.bincount(np.asarray(_call(name, key).y), minlength=classes)
    assert counts.sum() == N and counts.max() - counts.min() <= 1
    # Random order, not sorted by class.
    y = np.asarray(_call(name, key).y)
    assert not np.all(np.diff(y) >= 0)


@pytest.mark.parametrize("bad_n, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)])
def test_generator_n_validated(bad_n, error, key):
    with pytest.raises(error, match="n must"):
        data.noisy_sine(key, bad_n)


def test_generator_argument_errors(key):
    with pytest.raises(TypeError, match="noisy_sine requires a key"):
        data.noisy_sine(None, 5)
    with pytest.raises(ValueError, match="key must be a single PRNG key.*use jax.vmap over keys"):
        data.two_moons(jax.random.split(key, 2), 5)
    with pytest.raises(ValueError, match="noise must be non-negative, got -0.1"):
        data.two_moons(key, 5, noise=-0.1)
    with pytest.raises(ValueError, match=r"x_range\[0\] must be less than x_range\[1\]"):
        data.noisy_sine(key, 5, x_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="x_range must be a pair"):
        data.noisy_sine(key, 5, x_range=1.0)
    with pytest.raises(TypeError, match="dtype must be a floating-point dtype"):
        data.circles(key, 5, dtype=jnp.int32)
    with pytest.raises(ValueError, match=r"factor must lie in \[0, 1\)"):
        data.circles(key, 5, factor=1.0)
    with pytest.raises(ValueError, match="classes must be at least 2"):
        data.spirals(key, 5, classes=1)
    with pytest.raises(ValueError, match="turns must be positive"):
        data.spirals(key, 5, turns=0.0)
    with pytest.raises(ValueError, match="coefficients must have shape"):
        data.polynomial(key, 5, [])
    with pytest.raises(ValueError, match=r"outlier_fraction must lie in \[0, 1\]"):
        data.regression_with_outliers(key, 5, outlier_fraction=1.5)
    with pytest.raises(ValueError, match="outlier_scale must be non-negative"):
        data.regression_with_outliers(key, 5, outlier_scale=-1.0)
    with pytest.raises(ValueError, match="std must be non-negative"):
        data.blobs(key, 5, std=-1.0)
    with pytest.raises(ValueError, match=r"std must be a scalar or have shape \[C\]"):
        data.blobs(key, 5, centers=3, std=jnp.ones(2))
    with pytest.raises(ValueError, match="features is 3 but centers has shape"):
        data.blobs(key, 5, centers=jnp.zeros((2, 2)), features=3)
    with pytest.raises(ValueError, match="centers must be an int or an array"):
        data.blobs(key, 5, centers=jnp.zeros(3))


def test_traced_noise_sweep_and_poison(key):
    # A sweep over noise levels is one vmap; a negative traced noise poisons x and y with NaN.
    noise = jnp.array([0.0, 0.5, -1.0])
    x, y = jax.vmap(lambda s: data.noisy_sine(key, 50, noise=s))(noise)
    np.testing.assert_allclose(y[0], np.sin(x[0]), atol=1e-6)
    assert np.all(np.isfinite(y[1])) and not np.allclose(y[1], np.sin(x[1]))
    assert np.all(np.isnan(x[2])) and np.all(np.isnan(y[2]))


# ----------------------------------------------------------------------------------------
# generators: what they generate
# ----------------------------------------------------------------------------------------


def test_noisy_sine_statistics(key):
    x, y = data.noisy_sine(key, N, noise=0.3, x_range=(-2.0, 1.0), frequency=2.0)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    assert x.min() >= -2.0 and x.max() <= 1.0 and x.min() < -1.9 and x.max() > 0.9
    residual = y - np.sin(2.0 * x)
    assert abs(residual.mean()) < 0.035  # five standard errors, 0.3 / sqrt(N) = 0.0067
    assert residual.std() == pytest.approx(0.3, rel=0.06)


def test_polynomial_matches_numpy(key):
    c = GENERATORS["polynomial"][1]["coefficients"]
    x, y = data.polynomial(key, N, c, noise=0.0, x_range=(-3.0, 3.0))
    reference = np.polynomial.polynomial.polyval(np.asarray(x, np.float64), c)
    np.testing.assert_allclose(y, reference, rtol=1e-5, atol=1e-5)
    x, y = data.polynomial(key, N, c, noise=0.2)
    residual = np.asarray(y, np.float64) - np.polynomial.polynomial.polyval(np.asarray(x, np.float64), c)
    assert residual.std() == pytest.approx(0.2, rel=0.06)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 1.0])
def test_outlier_fraction(fraction, key):
    scale, noise = 5.0, 0.1
    x, y = data.regression_with_outliers(
        key, N, slope=2.0, intercept=-1.0, noise=noise, outlier_fraction=fraction, outlier_scale=scale
    )
    residual = np.abs(np.asarray(y, np.float64) - (2.0 * np.asarray(x, np.float64) - 1.0))[:, 0]
    outliers = residual > scale / 2
    assert outliers.sum() == round(fraction * N)
    # Outliers sit between scale and 2 scale from the line (plus noise); the rest is ordinary noise.
    assert np.all(residual[outliers] > scale - 6 * noise) and np.all(residual[outliers] < 2 * scale + 6 * noise)
    if fraction < 1:
        assert residual[~outliers].max() < 6 * noise
        assert residual[~outliers].std() < noise  # half-normal spread, 0.6 noise


def test_two_moons_on_arcs(key):
    clean = data.two_moons(key, N, noise=0.0)
    x, y = np.asarray(clean.x, np.float64), np.asarray(clean.y)
    upper, lower = x[y == 0], x[y == 1] - np.array([1.0, 0.5])
    np.testing.assert_allclose(np.linalg.norm(upper, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(lower, axis=1), 1.0, rtol=1e-5)
    assert np.all(upper[:, 1] >= -1e-6) and np.all(lower[:, 1] <= 1e-6)
    noisy = data.two_moons(key, N, noise=0.2)
    np.testing.assert_array_equal(noisy.y, clean.y)  # the noise moves points, not labels
    assert np.std(np.asarray(noisy.x, np.float64) - x) == pytest.approx(0.2, rel=0.06)


def test_circles_radii(key):
    x, y = data.circles(key, N, noise=0.0, factor=0.3)
    r = np.linalg.norm(np.asarray(x, np.float64), axis=1)
    np.testing.assert_allclose(r, np.where(np.asarray(y) == 0, 1.0, 0.3), rtol=1e-5)


def test_spirals_geometry(key):
    classes, turns = 3, 2.0
    x, y = data.spirals(key, N, classes=classes, turns=turns, noise=0.0)
    x, y = np.asarray(x, np.float64), np.asarray(y)
    r = np.linalg.norm(x, axis=1)
    assert r.max() <= 1.0 + 1e-6
    theta = 2 * np.pi * (turns * r + y / classes)
    np.testing.assert_allclose(x, r[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1), atol=1e-4)


def test_blobs_centers(key):
    centers = np.array([[0.0, 0.0, 0.0], [10.0, -5.0, 2.0], [-3.0, 4.0, 8.0]])
    std = np.array([0.5, 2.0, 1.0])
    x, y = data.blobs(key, N, centers=jnp.asarray(centers), std=jnp.asarray(std))
    x, y = np.asarray(x, np.float64), np.asarray(y)
    for c in range(3):
        members = x[y == c]
        # Mean within 5 standard errors of the centre; spread equal to that cluster's std.
        np.testing.assert_allclose(members.mean(axis=0), centers[c], atol=5 * std[c] / np.sqrt(len(members)))
        assert (members - members.mean(axis=0)).std() == pytest.approx(std[c], rel=0.06)
    # Integer centers: drawn inside center_box; std 0 puts every example on its centre.
    x, y = data.blobs(key, N, centers=3, std=0.0, features=3, center_box=(-2.0, 3.0))
    x, y = np.asarray(x), np.asarray(y)
    assert x.min() >= -2.0 and x.max() <= 3.0
    assert len(np.unique(x, axis=0)) == 3
    for c in range(3):
        assert len(np.unique(x[y == c], axis=0)) == 1


# ----------------------------------------------------------------------------------------
# digits
# ----------------------------------------------------------------------------------------


def test_load_digits():
    x, y = data.load_digits()
    assert x.shape == (1797, 64) and x.dtype == jnp.float32
    assert y.shape == (1797,) and y.dtype == jnp.int32
    x = np.asarray(x)
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(x * 16, np.round(x * 16))  # pixel counts 0..16 over 16
    counts = np.bincount(np.asarray(y))
    assert len(counts) == 10 and counts.min() > 170
    assert data.load_digits(jnp.float64).x.dtype == jnp.float64


def test_load_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r'pip install "fnn\[data\]"'):
        data.load_digits()


# ----------------------------------------------------------------------------------------
# the user's arrays, npz and csv
# ----------------------------------------------------------------------------------------


def test_from_arrays():
    x = np.arange(6.0).reshape(3, 2)
    ds = data.from_arrays(x, np.array([0, 1, 1], np.int64))
    assert ds.x.dtype == jnp.float64 and ds.y.dtype == jnp.int32
    assert data.from_arrays(x, np.array([True, False, True])).y.dtype == jnp.int32
    assert data.from_arrays(np.ones((3, 2), np.uint8), np.zeros((3, 1)), dtype=jnp.float32).y.dtype == jnp.float32
    with pytest.raises(ValueError, match="same number of examples"):
        data.from_arrays(x, np.zeros(2))
    with pytest.raises(TypeError, match="x must be a floating-point array, got dtype uint8"):
        data.from_arrays(np.ones((3, 2), np.uint8), np.zeros(3))
    with pytest.raises(ValueError, match=r"for one feature use x\[:, None\]"):
        data.from_arrays(np.ones(3), np.zeros(3))
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="x has a NaN or infinite value in example 2"):
        data.from_arrays(bad, np.zeros(3))
    with pytest.raises(ValueError, match="y has a NaN or infinite value in example 1"):
        data.from_arrays(x, np.array([0.0, np.inf, 1.0]))
    with pytest.raises(TypeError, match="y must hold integer labels or floating targets"):
        data.from_arrays(x, np.array(["a", "b", "c"]))


def test_load_npz(tmp_path):
    path = tmp_path / "set.npz"
    np.savez(path, x=np.ones((4, 3)), y=np.arange(4), images=np.zeros((4, 2)))
    ds = data.load_npz(path)
    assert ds.x.shape == (4, 3) and ds.y.dtype == jnp.int32
    assert data.load_npz(path, x_key="images").x.shape == (4, 2)
    with pytest.raises(ValueError, match=r"has no array 'inputs' \(x_key\); it holds: x, y, images"):
        data.load_npz(path, x_key="inputs")
    with pytest.raises(ValueError, match=r"has no array 'labels' \(y_key\)"):
        data.load_npz(path, y_key="labels")


def test_load_csv_with_and_without_header(tmp_path):
    rows = "1.0,2.0,0\n3.5,-4.0,1\n\n5.0,6.0,1\n"
    plain, headed = tmp_path / "plain.csv", tmp_path / "headed.csv"
    plain.write_text(rows)
    headed.write_text("# a comment\nf1,f2,label\n" + rows)
    expected_x = np.array([[1.0, 2.0], [3.5, -4.0], [5.0, 6.0]], np.float32)
    for path in (plain, headed):
        x, y = data.load_csv(path)
        np.testing.assert_array_equal(x, expected_x)
        assert x.dtype == jnp.float32 and y.shape == (3, 1) and y.dtype == jnp.float32
        x, y = data.load_csv(path, label_dtype=jnp.int32)
        np.testing.assert_array_equal(y, np.array([0, 1, 1], np.int32))
        assert y.dtype == jnp.int32
    x, y = data.load_csv(headed, target_columns=[0, 1])
    assert x.shape == (3, 1) and y.shape == (3, 2)
    x, y = data.load_csv(plain, target_columns=0, skip_header=False)
    np.testing.assert_array_equal(y[:, 0], [1.0, 3.5, 5.0])
    # Forcing no header on a file with one: the header is a non-numeric cell on line 2.
    with pytest.raises(ValueError, match=r"headed.csv, line 2, column 1: 'f1' is not a number"):
        data.load_csv(headed, skip_header=False)
    spaced = tmp_path / "spaced.txt"
    spaced.write_text("1 2  3\n4\t5 6\n")
    assert data.load_csv(spaced, delimiter=None).x.shape == (2, 2)


def test_load_csv_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,y\n1,2,0\n\n3,oops,1\n")
    with pytest.raises(ValueError, match=r"bad.csv, line 4, column 2 \('b'\): 'oops' is not a number"):
        data.load_csv(path)
    path.write_text("1,2,0\n3,4,1\n5,6\n")
    with pytest.raises(ValueError, match=r"line 3: 2 columns, expected 3 as on line 1 \(ragged rows\)"):
        data.load_csv(path)
    path.write_text("1,2,0\n3,,1\n")
    with pytest.raises(ValueError, match=r"line 2, column 2: '' is not a number"):
        data.load_csv(path)
    path.write_text("1,2,0\n3,4,0.5\n")
    with pytest.raises(ValueError, match="line 2: label 0.5 is not a whole number"):
        data.load_csv(path, label_dtype=jnp.int32)
    with pytest.raises(ValueError, match="target_columns holds 3, but .* has 3 columns"):
        data.load_csv(path, target_columns=3)
    with pytest.raises(ValueError, match="class labels need one target column"):
        data.load_csv(path, target_columns=[1, 2], label_dtype=jnp.int32)
    with pytest.raises(TypeError, match="label_dtype must be None"):
        data.load_csv(path, label_dtype=jnp.float32)
    path.write_text("1,2,0\n3,nan,1\n")
    with pytest.raises(ValueError, match="line 2, column 2: NaN or infinite value"):
        data.load_csv(path)
    path.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="holds no data lines"):
        data.load_csv(path)


# ----------------------------------------------------------------------------------------
# IDX and MNIST
# ----------------------------------------------------------------------------------------

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", IDX_DTYPES)
def test_idx_round_trip(dtype, compress, tmp_path):
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else np.finfo(dtype)
    array = np.array([[info.min, 0, 1], [2, 3, info.max]], dtype).reshape(2, 3, 1)
    # The name does not decide compression on reading: gzip is recognised by its magic bytes.
    path = data.save_idx(tmp_path / "array.idx", array, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    back = data.load_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 1)
    np.testing.assert_array_equal(back, array)


def test_idx_written_by_hand(tmp_path):
    # int16, dims (2, 3), big-endian, assembled with struct alone.
    values = [-300, -1, 0, 1, 2, 30000]
    raw = bytes([0, 0, 0x0B, 2]) + struct.pack(">2I", 2, 3) + struct.pack(">6h", *values)
    (tmp_path / "h.idx").write_bytes(raw)
    (tmp_path / "h.gz.not").write_bytes(gzip.compress(raw))
    expected = np.array(values, np.int16).reshape(2, 3)
    for name in ("h.idx", "h.gz.not"):
        np.testing.assert_array_equal(data.load_idx(tmp_path / name), expected)
    # save_idx writes exactly these bytes.
    assert data.save_idx(tmp_path / "s.idx", expected).read_bytes() == raw
    # And a name ending in .gz that is not gzipped still reads.
    (tmp_path / "plain.gz").write_bytes(raw)
    np.testing.assert_array_equal(data.load_idx(tmp_path / "plain.gz"), expected)


def test_idx_errors(tmp_path):
    path = tmp_path / "bad.idx"
    good = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 4) + bytes([1, 2, 3, 4])
    path.write_bytes(b"\x01" + good[1:])
    with pytest.raises(
        ValueError, match=r"bad.idx: not an IDX file: the magic number must start with two zero bytes, got 01 00 08 01"
    ):
        data.load_idx(path)
    path.write_bytes(good[:2] + b"\x0a" + good[3:])
    with pytest.raises(ValueError, match=r"bad.idx: unknown IDX type code 0x0A"):
        data.load_idx(path)
    path.write_bytes(good[:-1])
    with pytest.raises(ValueError, match=r"bad.idx: expected 12 bytes .* got 11 bytes \(truncated\)"):
        data.load_idx(path)
    path.write_bytes(gzip.compress(good[:-1]))
    with pytest.raises(ValueError, match=r"bad.idx \(after gunzip\): expected 12 bytes .* got 11 bytes"):
        data.load_idx(path)
    path.write_bytes(good + b"\x00")
    with pytest.raises(ValueError, match=r"expected 12 bytes .* got 13 bytes \(trailing bytes\)"):
        data.load_idx(path)
    path.write_bytes(bytes([0, 0, 0x08, 2, 0, 0]))
    with pytest.raises(ValueError, match="truncated header: expected 12 bytes for 2 dims, got 6"):
        data.load_idx(path)
    path.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match="starts with the gzip bytes 1f 8b but does not decompress"):
        data.load_idx(path)
    with pytest.raises(TypeError, match="array dtype int64 has no IDX type code"):
        data.save_idx(path, np.zeros(3, np.int64))


def _fake_mnist(directory, split, n, gz_images):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 3, 4), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    suffix = ".gz" if gz_images else ""
    data.save_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images)
    data.save_idx(directory / f"{split}-labels-idx1-ubyte", labels)
    return images, labels


def test_load_mnist(tmp_path):
    images, labels = _fake_mnist(tmp_path, "train", 5, gz_images=True)
    _, t_labels = _fake_mnist(tmp_path, "t10k", 2, gz_images=False)
    x, y = data.load_mnist(tmp_path)
    assert x.shape == (5, 12) and x.dtype == jnp.float32 and y.dtype == jnp.int32
    np.testing.assert_allclose(x, images.reshape(5, 12) / 255.0, rtol=1e-6)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    np.testing.assert_array_equal(y, labels)
    x, y = data.load_mnist(tmp_path, "t10k")
    assert x.shape == (2, 12)
    np.testing.assert_array_equal(y, t_labels)
    with pytest.raises(ValueError, match="split must be 'train' or 't10k'"):
        data.load_mnist(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="no MNIST images file for split 'train'"):
        data.load_mnist(tmp_path / "empty")
    data.save_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="holds 5 images but .* holds 4 labels"):
        data.load_mnist(tmp_path)
    data.save_idx(tmp_path / "train-labels-idx1-ubyte", np.full(5, 10, np.uint8))
    with pytest.raises(ValueError, match="labels must be 0..9, found 10"):
        data.load_mnist(tmp_path)


# ----------------------------------------------------------------------------------------
# shuffle, splits, standardisation
# ----------------------------------------------------------------------------------------


def _indexed(n, labels=None):
    """A data set whose x holds each example's index, so splits can be traced back."""
    x = jnp.arange(n, dtype=jnp.float64)[:, None] * jnp.ones((1, 2))
    y = jnp.arange(n) % 3 if labels is None else jnp.asarray(labels)
    return data.Dataset(x, y)


def _ids(split):
    return np.asarray(split.x[:, 0]).astype(int)


def test_shuffle(key):
    ds = _indexed(20)
    out = data.shuffle(key, ds)
    ids = _ids(out)
    assert sorted(ids) == list(range(20)) and list(ids) != list(range(20))
    np.testing.assert_array_equal(out.y, ids % 3)  # x and y stay paired
    np.testing.assert_array_equal(data.shuffle(key, ds).x, out.x)


@pytest.mark.parametrize("n, fractions, sizes", [(100, (0.8, 0.1, 0.1), [80, 10, 10]), (7, (0.6, 0.2, 0.2), [4, 2, 1])])
def test_split_disjoint_covering(n, fractions, sizes, key):
    splits = data.train_val_test_split(key, _indexed(n), fractions)
    assert [s.x.shape[0] for s in splits] == sizes
    ids = np.concatenate([_ids(s) for s in splits])
    assert sorted(ids) == list(range(n))  # every example exactly once
    for s in splits:
        np.testing.assert_array_equal(s.y, _ids(s) % 3)
        assert isinstance(s, data.Dataset)


@pytest.mark.slow
def test_split_jit_vmap_over_keys(key):
    ds = _indexed(50)
    keys = jax.random.split(key, 4)
    train, val, test = jax.vmap(lambda k: data.train_val_test_split(k, ds))(keys)
    assert train.x.shape == (4, 40, 2) and val.x.shape == (4, 5, 2) and test.x.shape == (4, 5, 2)
    for i in range(4):
        ids = np.concatenate([np.asarray(s.x[i, :, 0]).astype(int) for s in (train, val, test)])
        assert sorted(ids) == list(range(50))
    assert not np.array_equal(train.x[0], train.x[1])
    jitted = jax.jit(data.train_val_test_split)(keys[0], ds)
    np.testing.assert_array_equal(jitted[0].x, train.x[0])


def test_split_stratified(key):
    counts = [61, 29, 10]
    labels = np.repeat(np.arange(3), counts)
    ds = data.shuffle(jax.random.fold_in(key, 1), _indexed(100, labels))
    fractions = (0.7, 0.2, 0.1)
    splits, index = data.train_val_test_split(key, ds, fractions, stratify=True, return_indices=True)
    ids = np.concatenate([_ids(s) for s in splits])
    assert sorted(ids) == list(range(100))
    for s, f, idx in zip(splits, fractions, index):
        split_counts = np.bincount(np.asarray(s.y), minlength=3)
        assert np.all(np.abs(split_counts - f * np.array(counts)) <= 1)
        np.testing.assert_array_equal(np.asarray(s.y), labels[_ids(s)])
        # The indices point at the split's rows of ds (shuffled, so not its ids); see tests/test_splits.py.
        assert idx.dtype == jnp.int32
        np.testing.assert_array_equal(np.asarray(ds.x)[np.asarray(idx)], s.x)
        np.testing.assert_array_equal(np.asarray(ds.y)[np.asarray(idx)], s.y)
    # Classes are mixed inside a split, not grouped.
    assert not np.all(np.diff(np.asarray(splits[0].y)) >= 0)


def test_split_errors(key):
    ds = _indexed(10)
    with pytest.raises(ValueError, match="fractions must sum to 1"):
        data.train_val_test_split(key, ds, (0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="fractions must all be positive"):
        data.train_val_test_split(key, ds, (1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="fractions must hold three numbers"):
        data.train_val_test_split(key, ds, (0.5, 0.5))
    with pytest.raises(ValueError, match="the test split would be empty: 3 examples"):
        data.train_val_test_split(key, _indexed(3), (0.8, 0.1, 0.1))
    with pytest.raises(ValueError, match="the validation split would be empty"):
        data.train_val_test_split(key, _indexed(4, [0, 0, 1, 1]), (0.8, 0.1, 0.1), stratify=True)
    with pytest.raises(ValueError, match="stratify needs integer class labels"):
        data.train_val_test_split(key, data.Dataset(ds.x, ds.x), stratify=True)
    with pytest.raises(ValueError, match="stratify needs concrete labels"):
        jax.jit(lambda k: data.train_val_test_split(k, ds, stratify=True))(key)
    with pytest.raises(ValueError, match="same number of examples"):
        data.train_val_test_split(key, (ds.x, ds.y[:5]))


def test_standardize(key):
    x, y = data.blobs(key, N, centers=3, features=2, std=2.0)
    ds = data.Dataset(x.astype(jnp.float64), y)
    train, val, _ = data.train_val_test_split(key, ds)
    x_train = jnp.concatenate([train.x, jnp.full((train.x.shape[0], 1), 0.1)], axis=1)  # a constant column
    stats = data.standardize_fit(x_train)
    assert isinstance(stats, data.Standardizer) and stats.mean.shape == (3,)
    z = np.asarray(data.standardize_apply(x_train, *stats))
    np.testing.assert_allclose(z[:, :2].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[:, :2].std(axis=0), 1.0, rtol=1e-12)
    assert np.all(np.isfinite(z)) and np.all(z[:, 2] == 0.0)
    assert float(stats.std[2]) == 1.0
    # Applied to other data with the training statistics, nothing is refitted.
    x_val = jnp.concatenate([val.x, jnp.full((val.x.shape[0], 1), 0.1)], axis=1)
    np.testing.assert_allclose(
        data.standardize_apply(x_val, *stats), (np.asarray(x_val) - np.asarray(stats.mean)) / np.asarray(stats.std)
    )


def test_standardize_constant_float32_and_errors():
    # A constant float32 column whose mean is not exactly representable by summation.
    x = jnp.concatenate(
        [jnp.full((1797, 1), 0.1, jnp.float32), jnp.linspace(0, 1, 1797, dtype=jnp.float32)[:, None]], 1
    )
    z = data.standardize_apply(x, *data.standardize_fit(x))
    assert z.dtype == jnp.float32 and np.all(np.asarray(z[:, 0]) == 0.0)
    # Given statistics with a zero std: the feature is only centred.
    np.testing.assert_array_equal(
        data.standardize_apply(jnp.array([[1.0, 2.0]]), jnp.array([1.0, 1.0]), jnp.array([0.0, 2.0])), [[0.0, 0.5]]
    )
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        data.standardize_fit(jnp.arange(4).reshape(2, 2))
    with pytest.raises(ValueError, match="x must hold at least one example"):
        data.standardize_fit(jnp.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"mean must have the shape of one example, \(2,\), got \(3,\)"):
        data.standardize_apply(jnp.zeros((4, 2)), jnp.zeros(3), jnp.ones(2))


def test_every_public_name_documented():
    for name in data.__all__:
        obj = getattr(data, name)
        assert obj.__doc__, name
    assert len(data.__all__) == len(set(data.__all__))
