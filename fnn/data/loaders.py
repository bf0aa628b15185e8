r"""Loaders: the bundled digits and the user's own files (``.npz``, CSV, IDX/MNIST).

Files are read eagerly with NumPy and checked with errors that name the file and, for CSV, the
line. :func:`load_digits` uses the copy of the UCI digits bundled inside scikit-learn (no
download). Every loader returns a :class:`~fnn.data.dataset.Dataset`; :func:`save_idx` writes
the IDX format atomically.

References: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, *Gradient-based learning applied to
document recognition*, Proc. IEEE 86(11), 1998 (MNIST and its IDX format); E. Alpaydin,
C. Kaynak, *Optical Recognition of Handwritten Digits*, UCI Machine Learning Repository, 1998.
"""

from __future__ import annotations

import gzip
import math
import operator
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn import io as _io
from fnn._types import ArrayLike
from fnn.data.dataset import Dataset, from_arrays
from fnn.io import PathLike

__all__ = ["load_digits", "load_npz", "load_csv", "load_idx", "save_idx", "load_mnist"]

_INSTALL = 'pip install "fnn[data]"'


def load_digits(dtype: Any = jnp.float32) -> Dataset:
    r"""The 1797 handwritten digits, 8x8 pixels, shipped inside scikit-learn (no download).

    Each pixel counts the set pixels in a 4x4 block of a 32x32 bitmap, an integer 0..16;
    it is divided by 16, so :math:`x \in [0, 1]`. Images are flattened row by row.

    Args:
      dtype: floating dtype of ``x``.

    Returns:
      ``Dataset(x: [1797, 64], y: [1797] int32)`` with labels 0..9, about 180 of each.

    Raises:
      ImportError: scikit-learn is not installed (``pip install "fnn[data]"``).

    Reference: E. Alpaydin, C. Kaynak, *Optical Recognition of Handwritten Digits*, UCI
    Machine Learning Repository, 1998 (scikit-learn bundles its test set).

    >>> x, y = load_digits()
    >>> x.shape, y.shape, float(x.max())
    ((1797, 64), (1797,), 1.0)
    """
    dtype = _checks.float_dtype(dtype)
    try:
        from sklearn import datasets as _sk_datasets
    except ImportError as e:
        raise ImportError(f"load_digits needs scikit-learn, which is not installed: {_INSTALL}") from e
    bunch = _sk_datasets.load_digits()
    x = np.asarray(bunch.data, np.float64) / 16.0
    return Dataset(jnp.asarray(x.astype(dtype)), jnp.asarray(bunch.target, jnp.int32))


def load_npz(path: PathLike, x_key: str = "x", y_key: str = "y", *, dtype: Any = None) -> Dataset:
    """A :class:`Dataset` from two arrays of a ``.npz`` file (as written by ``numpy.savez``).

    Args:
      path: the file. Pickled object arrays are refused.
      x_key, y_key: the names of the arrays in the file.
      dtype: as in :func:`from_arrays`.

    Returns:
      ``from_arrays(file[x_key], file[y_key], dtype=dtype)``.

    >>> import numpy as np, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "toy.npz"
    ...     np.savez(p, inputs=np.zeros((2, 3), np.float32), labels=np.array([0, 1]))
    ...     load_npz(p, "inputs", "labels").x.shape
    (2, 3)
    """
    with np.load(path, allow_pickle=False) as f:
        for arg, key in (("x_key", x_key), ("y_key", y_key)):
            if key not in f.files:
                raise ValueError(f"{path} has no array {key!r} ({arg}); it holds: {', '.join(f.files) or 'nothing'}")
        x, y = f[x_key], f[y_key]
    return from_arrays(x, y, dtype=dtype)


def _split_line(line: str, delimiter: str | None) -> list[str]:
    return line.split(delimiter) if delimiter is not None else line.split()


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def load_csv(
    path: PathLike,
    *,
    target_columns: int | Sequence[int] = -1,
    delimiter: str | None = ",",
    skip_header: bool | None = None,
    label_dtype: Any = None,
    dtype: Any = jnp.float32,
    comments: str = "#",
) -> Dataset:
    """A :class:`Dataset` from a delimited text file of numbers, one example per line.

    Blank lines and lines starting with ``comments`` are ignored. The remaining cells are
    parsed by ``numpy.loadtxt``; when that fails, the file is scanned again to report the first
    line whose column count differs from the first data line, or the first cell that is not a
    number, by its line number in the file (counting from 1).

    Args:
      path: the file.
      target_columns: the column index of the target, or a sequence of indices (negative
        indices count from the end); all other columns form ``x``.
      delimiter: the cell separator; ``None`` splits on runs of whitespace.
      skip_header: whether the first non-blank line is a header; ``None`` decides by
        whether any of its cells is not a number.
      label_dtype: ``None`` keeps the targets as floats ``y: [N, k]`` (regression, k the
        number of target columns). An integer dtype (``jnp.int32``) reads one target column
        as class labels ``y: [N]`` int32; a value that is not a whole number is an error.
      dtype: floating dtype of ``x`` (and of float ``y``).
      comments: the prefix of comment lines.

    Returns:
      ``Dataset(x: [N, d], y)``.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "toy.csv"
    ...     _ = p.write_text("a,b,label\\n0.5,1.5,0\\n2.0,3.0,1\\n")
    ...     x, y = load_csv(p, label_dtype=jnp.int32)
    >>> x, y
    (Array([[0.5, 1.5],
           [2. , 3. ]], dtype=float32), Array([0, 1], dtype=int32))
    """
    dtype = _checks.float_dtype(dtype)
    if label_dtype is not None and not jnp.issubdtype(np.dtype(label_dtype), jnp.integer):
        raise TypeError(f"label_dtype must be None (float targets) or an integer dtype, got {np.dtype(label_dtype)}")
    if delimiter is not None and (not isinstance(delimiter, str) or not delimiter or delimiter.strip() != delimiter):
        raise ValueError(
            f"delimiter must be a non-empty string without surrounding whitespace or None, got {delimiter!r}"
        )
    text = Path(path).read_text()
    lines = [
        (i + 1, line)
        for i, line in enumerate(text.splitlines())
        if line.strip() and not line.lstrip().startswith(comments)
    ]
    if not lines:
        raise ValueError(f"{path} holds no data lines")
    if skip_header is None:
        skip_header = not all(_is_number(c) for c in _split_line(lines[0][1], delimiter))
    if skip_header:
        lines = lines[1:]
        if not lines:
            raise ValueError(f"{path} holds a header but no data lines")
    try:
        data = np.loadtxt([line for _, line in lines], dtype=np.float64, delimiter=delimiter, ndmin=2, comments=None)
    except ValueError:
        width = len(_split_line(lines[0][1], delimiter))
        first = lines[0][0]
        for number, line in lines:
            cells = _split_line(line, delimiter)
            if len(cells) != width:
                raise ValueError(
                    f"{path}, line {number}: {len(cells)} columns, expected {width} as on line {first} (ragged rows)"
                ) from None
            for column, cell in enumerate(cells):
                if not _is_number(cell):
                    raise ValueError(
                        f"{path}, line {number}, column {column + 1}: {cell.strip()!r} is not a number"
                    ) from None
        raise
    numbers = [number for number, _ in lines]
    width = data.shape[1]
    targets = [target_columns] if isinstance(target_columns, (int, np.integer)) else list(target_columns)
    if not targets:
        raise ValueError("target_columns must name at least one column")
    resolved = []
    for t in targets:
        t = _index(t, "target_columns")
        if not -width <= t < width:
            raise ValueError(f"target_columns holds {t}, but {path} has {width} columns")
        resolved.append(t % width)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"target_columns names a column twice: {targets}")
    features = [c for c in range(width) if c not in resolved]
    if not features:
        raise ValueError(f"target_columns {targets} leaves no feature columns in {path}")
    bad = ~np.isfinite(data)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise ValueError(f"{path}, line {numbers[row]}, column {column + 1}: NaN or infinite value")
    x, y = data[:, features], data[:, resolved]
    if label_dtype is not None:
        if len(resolved) != 1:
            raise ValueError(f"class labels need one target column, got target_columns {targets}")
        y = y[:, 0]
        fractional = y != np.round(y)
        if fractional.any():
            row = int(np.flatnonzero(fractional)[0])
            raise ValueError(
                f"{path}, line {numbers[row]}: label {y[row]:g} is not a whole number (label_dtype={np.dtype(label_dtype)})"
            )
        y = y.astype(np.int64)
    return from_arrays(x, y, dtype=dtype)


def _index(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must hold integers, got the bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must hold integers, got {value!r}") from None


# IDX type codes (LeCun's MNIST page): the data that follow the dims are big-endian.
_IDX_TYPES: dict[int, tuple[np.dtype, str]] = {
    0x08: (np.dtype(">u1"), "unsigned byte"),
    0x09: (np.dtype(">i1"), "signed byte"),
    0x0B: (np.dtype(">i2"), "short"),
    0x0C: (np.dtype(">i4"), "int"),
    0x0D: (np.dtype(">f4"), "float"),
    0x0E: (np.dtype(">f8"), "double"),
}
_IDX_KNOWN = ", ".join(f"0x{c:02X} ({name})" for c, (_, name) in _IDX_TYPES.items())


def load_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    Layout: a 4-byte magic number (two zero bytes, a type code, the number of dimensions
    ``ndim``), then ``ndim`` big-endian 32-bit sizes, then the values, big-endian, in C order.
    Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
    A gzipped file is recognised by its first two bytes ``1f 8b``, whatever its name.

    Args:
      path: the file.

    Returns:
      A NumPy array of the dims and type the header declares, in native byte order (NumPy
      rather than JAX, so a float64 file stays float64 whatever JAX's precision).

    Raises:
      ValueError: naming ``path``, for a bad magic number, an unknown type code, or a file
        whose length does not match its dims (expected and actual bytes).

    >>> import numpy as np, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_idx(pathlib.Path(d) / "a.idx.gz", np.arange(6, dtype=np.uint8).reshape(2, 3))
    ...     load_idx(p)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    raw = Path(path).read_bytes()
    gzipped = raw[:2] == b"\x1f\x8b"
    if gzipped:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: starts with the gzip bytes 1f 8b but does not decompress ({e})") from None
    where = f"{path}" + (" (after gunzip)" if gzipped else "")
    if len(raw) < 4:
        raise ValueError(f"{where}: {len(raw)} bytes is too short for the 4-byte IDX magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{where}: not an IDX file: the magic number must start with two zero bytes, got {raw[:4].hex(' ')}"
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{where}: unknown IDX type code 0x{code:02X}; known codes: {_IDX_KNOWN}")
    dtype, type_name = _IDX_TYPES[code]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{where}: truncated header: expected {header} bytes for {ndim} dims, got {len(raw)} bytes")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    count = math.prod(dims)
    expected = header + count * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "trailing bytes"
        raise ValueError(
            f"{where}: expected {expected} bytes ({header}-byte header + {count} {type_name} values of "
            f"{dtype.itemsize} bytes for dims {dims}), got {len(raw)} bytes ({what})"
        )
    data = np.frombuffer(raw, dtype, count, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def save_idx(path: PathLike, array: ArrayLike, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file, atomically (see :func:`fnn._io.atomic_write_bytes`).

    Args:
      path: the target file.
      array: a NumPy or JAX array of dtype uint8, int8, int16, int32, float32 or float64, with
        at most 255 dims, each below 2**31.
      compress: gzip the file; ``None`` gzips when the name ends in ``.gz``. The gzip header
        carries no timestamp, so equal arrays give equal files.

    Returns:
      ``path`` as a :class:`pathlib.Path`. :func:`load_idx` reads it back exactly.
    """
    arr = np.asarray(array)
    code = next((c for c, (d, _) in _IDX_TYPES.items() if d.newbyteorder("=") == arr.dtype), None)
    if code is None:
        raise TypeError(
            f"array dtype {arr.dtype} has no IDX type code; use uint8, int8, int16, int32, float32 or float64"
        )
    if arr.ndim > 255:
        raise ValueError(f"IDX holds at most 255 dims, got {arr.ndim}")
    if any(s >= 2**31 for s in arr.shape):
        raise ValueError(f"IDX dims must be below 2**31, got shape {arr.shape}")
    body = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body += np.ascontiguousarray(arr, _IDX_TYPES[code][0]).tobytes()
    if compress is None:
        compress = str(path).endswith(".gz")
    if compress:
        body = gzip.compress(body, mtime=0)
    return _io.atomic_write_bytes(path, body)


def _mnist_file(directory: Path, split: str, kind: str, idx: int) -> Path:
    names = [f"{split}-{kind}-idx{idx}-ubyte", f"{split}-{kind}.idx{idx}-ubyte"]
    tried = [directory / (name + suffix) for name in names for suffix in ("", ".gz")]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no MNIST {kind} file for split {split!r}; looked for {', '.join(str(p) for p in tried)}")


def load_mnist(directory: PathLike, split: str = "train", *, dtype: Any = jnp.float32) -> Dataset:
    """MNIST (or Fashion-MNIST, same format) from IDX files the user has already downloaded.

    Looks in ``directory`` for ``{split}-images-idx3-ubyte`` and ``{split}-labels-idx1-ubyte``,
    each optionally ending in ``.gz`` (the spelling ``{split}-images.idx3-ubyte`` is accepted
    too). Pixels, 0..255, are divided by 255 and images flattened row by row.

    Args:
      directory: the folder holding the files.
      split: ``"train"`` (60000 examples) or ``"t10k"`` (10000).
      dtype: floating dtype of ``x``.

    Returns:
      ``Dataset(x: [N, H*W] in [0, 1], y: [N] int32 in 0..9)``.
    """
    if split not in ("train", "t10k"):
        raise ValueError(f"split must be 'train' or 't10k', got {split!r}")
    dtype = _checks.float_dtype(dtype)
    directory = Path(directory)
    images_path = _mnist_file(directory, split, "images", 3)
    labels_path = _mnist_file(directory, split, "labels", 1)
    images, labels = load_idx(images_path), load_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{images_path}: expected uint8 images [N, H, W], got {images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected uint8 labels [N], got {labels.dtype} of shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be 0..9, found {int(labels.max())}")
    x = (images.reshape(images.shape[0], -1) / 255.0).astype(dtype)
    return Dataset(jnp.asarray(x), jnp.asarray(labels, jnp.int32))
