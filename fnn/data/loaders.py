r"""Loaders: the bundled digits and the user's own files (``.npz``, CSV, IDX/MNIST).

Files are read eagerly with NumPy and checked with errors that name the file and, for CSV, the
line and the column (by its header name when there is one). :func:`load_digits` uses the copy
of the UCI digits bundled inside scikit-learn (no download). Every loader returns a
:class:`~fnn.data.dataset.Dataset`; :func:`load_csv` and :func:`load_npz` can return a
:class:`DataInfo` with it, which keeps what the numbers lose: the column names, the class names
of a target read from names (a :class:`~fnn.data.labels.LabelEncoding`, to decode predictions)
and the file line of each example. :func:`save_idx` writes the IDX format atomically.

References: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, *Gradient-based learning applied to
document recognition*, Proc. IEEE 86(11), 1998 (MNIST and its IDX format); E. Alpaydin,
C. Kaynak, *Optical Recognition of Handwritten Digits*, UCI Machine Learning Repository, 1998.
"""

from __future__ import annotations

import csv
import gzip
import math
import operator
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn import io as _io
from fnn._types import ArrayLike
from fnn.data.dataset import Dataset, from_arrays
from fnn.data.labels import LabelEncoding
from fnn.io import PathLike

__all__ = ["DataInfo", "load_digits", "load_npz", "load_csv", "load_idx", "save_idx", "load_mnist"]

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


class DataInfo(NamedTuple):
    """What a loader read besides the numbers: column names, class names, and each example's line.

    ``load_csv(..., return_info=True)`` and ``load_npz(..., return_info=True)`` return it next
    to the :class:`~fnn.data.dataset.Dataset`, as ``(dataset, info)``.

    Attributes:
      feature_names: the header's name of each column of ``x``, in order; ``None`` when there is
        no header (and for ``.npz`` files).
      target_names: the header's name of each target column (the names of the *classes* are in
        ``labels``); ``None`` when there is no header.
      labels: the :class:`~fnn.data.labels.LabelEncoding` of ``y`` when the target held class
        names: label ``y[i]`` stands for ``labels.classes[y[i]]``; ``None`` for numeric targets.
      header: CSV only: ``"given"`` (``skip_header=True``), ``"guessed"`` (``skip_header=None``
        and every cell of the first line was text) or ``"absent"``; ``None`` for ``.npz``.
      lines: CSV only: int64 ``[N]``, the line of the file (counting from 1) that example ``i``
        was read from; ``None`` for ``.npz``.
    """

    feature_names: tuple[str, ...] | None
    target_names: tuple[str, ...] | None
    labels: LabelEncoding | None
    header: str | None
    lines: np.ndarray | None


def _check_flag(value: Any, name: str, *, none: bool = False) -> None:
    if not (isinstance(value, bool) or (none and value is None)):
        raise TypeError(f"{name} must be {'True, False or None' if none else 'True or False'}, got {value!r}")


def _npz_array(f: Any, path: PathLike, key: str, arg: str) -> np.ndarray:
    if key not in f.files:
        raise ValueError(f"{path} has no array {key!r} ({arg}); it holds: {', '.join(f.files) or 'nothing'}")
    try:
        return f[key]
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise
        # np.load refuses object arrays without allow_pickle; say what to do instead of unpickling.
        raise ValueError(
            f"{path}: array {key!r} ({arg}) holds Python objects, which only pickle can read, and pickle is refused;"
            " save strings as a unicode array, np.asarray(names, dtype=str)"
        ) from None


def load_npz(
    path: PathLike, x_key: str = "x", y_key: str = "y", *, dtype: Any = None, return_info: bool = False
) -> Dataset | tuple[Dataset, DataInfo]:
    """A :class:`Dataset` from two arrays of a ``.npz`` file (as written by ``numpy.savez``).

    A string array of class names under ``y_key`` (NumPy dtype ``<U..``, or ``S..`` bytes read as
    UTF-8) becomes int32 labels through :meth:`LabelEncoding.fit <fnn.data.labels.LabelEncoding.fit>`
    (the sorted names), and the names are kept in ``info.labels``.

    Args:
      path: the file. Object arrays, which only pickle can read, are refused.
      x_key, y_key: the names of the arrays in the file.
      dtype: as in :func:`from_arrays`.
      return_info: also return a :class:`DataInfo` (its ``labels`` set for class names).

    Returns:
      ``from_arrays(file[x_key], y, dtype=dtype)``, with ``y = file[y_key]`` or its encoded
      labels; with ``return_info``, the pair ``(dataset, info)``.

    >>> import numpy as np, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "toy.npz"
    ...     np.savez(p, inputs=np.zeros((3, 2), np.float32), names=np.array(["dog", "cat", "dog"]))
    ...     (x, y), info = load_npz(p, "inputs", "names", return_info=True)
    >>> x.shape, y, info.labels.classes
    ((3, 2), Array([1, 0, 1], dtype=int32), ('cat', 'dog'))
    """
    _check_flag(return_info, "return_info")
    with np.load(path, allow_pickle=False) as f:
        x = _npz_array(f, path, x_key, "x_key")
        y = _npz_array(f, path, y_key, "y_key")
    encoding = None
    if y.dtype.kind in "US":
        if y.dtype.kind == "S":
            try:
                y = np.char.decode(y, "utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}: array {y_key!r} (y_key) holds bytes that are not UTF-8 ({e})") from None
        if y.ndim != 1:
            raise ValueError(
                f"{path}: array {y_key!r} (y_key) holds class names of shape {y.shape}; they need shape [N]"
            )
        empty = np.flatnonzero(y == "")
        if empty.size:
            raise ValueError(f"{path}: array {y_key!r} (y_key) holds an empty class name at example {int(empty[0])}")
        if y.size:
            encoding = LabelEncoding.fit(y)
            y = np.asarray(encoding.encode(y))
        else:
            y = y.astype(np.int32)
    dataset = from_arrays(x, y, dtype=dtype)
    if return_info:
        return dataset, DataInfo(None, None, encoding, None, None)
    return dataset


# Quoted cells ("a, b") may hold the delimiter; np.loadtxt and csv.reader both honour this quote.
_QUOTE = '"'


def _cells(line: str, delimiter: str | None) -> list[str]:
    """The cells of one line, stripped, split the way ``np.loadtxt`` splits them."""
    if delimiter is None:
        return line.split()
    if _QUOTE in line:
        return [c.strip() for c in next(csv.reader([line], delimiter=delimiter, quotechar=_QUOTE))]
    return [c.strip() for c in line.split(delimiter)]


def _width(line: str, delimiter: str | None) -> int:
    if delimiter is not None and _QUOTE not in line:
        return line.count(delimiter) + 1  # the common case, without building the cells
    return len(_cells(line, delimiter))


def _is_number(cell: str) -> bool:
    # np.loadtxt refuses the underscores that Python's float() accepts ("1_000").
    if "_" in cell:
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column_label(column: int, names: tuple[str, ...] | None) -> str:
    """``column 2`` (counting from 1), and its name when the file has a header: ``column 2 ('b')``."""
    return f"column {column + 1}" + (f" ({names[column]!r})" if names is not None else "")


def _target_column(target: Any, names: tuple[str, ...] | None, width: int, path: PathLike) -> int:
    if isinstance(target, str):
        if names is None:
            raise ValueError(
                f"target_columns names the column {target!r}, but {path} is read without a header to look it up in"
                " (pass skip_header=True if its first line names the columns)"
            )
        hits = [c for c, name in enumerate(names) if name == target]
        if not hits:
            raise ValueError(
                f"target_columns names {target!r}, which is not a column of {path}; its columns are "
                + ", ".join(repr(n) for n in names)
            )
        if len(hits) > 1:
            columns = ", ".join(str(c + 1) for c in hits)
            raise ValueError(f"target_columns names {target!r}, but the header of {path} gives it to columns {columns}")
        return hits[0]
    t = _index(target, "target_columns")
    if not -width <= t < width:
        raise ValueError(f"target_columns holds {t}, but {path} has {width} columns")
    return t % width


def _header(
    path: PathLike, number: int, cells: list[str], skip_header: bool | None
) -> tuple[tuple[str, ...] | None, str]:
    """The column names and how they were found: ``"given"``, ``"guessed"`` or ``"absent"``.

    A guess is never silent: a first line of numbers only is data, one of text only is a header,
    and one that mixes the two (a header with a numeric name, or a data line with one bad cell)
    is an error that asks for ``skip_header``, rather than a data line dropped as a header.
    """
    if skip_header is not None:
        return (tuple(cells), "given") if skip_header else (None, "absent")
    numeric = [_is_number(c) for c in cells]
    if all(numeric):
        return None, "absent"
    if not any(numeric):
        return tuple(cells), "guessed"
    text = [f"column {c + 1}: {cell!r}" for c, (cell, num) in enumerate(zip(cells, numeric)) if not num]
    more = f" and {len(text) - 3} more" if len(text) > 3 else ""
    raise ValueError(
        f"{path}, line {number}: cannot tell whether the first line is a header: it mixes numbers and text"
        f" ({', '.join(text[:3])}{more}); pass skip_header=True if it names the columns,"
        " or skip_header=False if it is data"
    )


def load_csv(
    path: PathLike,
    *,
    target_columns: int | str | Sequence[int | str] = -1,
    delimiter: str | None = ",",
    skip_header: bool | None = None,
    label_dtype: Any = None,
    encode_labels: bool | None = None,
    dtype: Any = jnp.float32,
    comments: str = "#",
    return_info: bool = False,
) -> Dataset | tuple[Dataset, DataInfo]:
    """A :class:`Dataset` from a delimited text file, one example per line, with optional header.

    Blank lines and lines starting with ``comments`` are ignored. A header line names the
    columns: a target can be picked by name, and errors name the column. The feature cells are
    parsed by ``numpy.loadtxt``; a cell that is not a number is reported by file, line (counting
    from 1) and column. A cell in double quotes may hold the delimiter.

    A target column of class names (every cell text, ``"setosa"``) becomes int32 labels
    ``y: [N]``, with the sorted names kept in ``info.labels``
    (:class:`~fnn.data.labels.LabelEncoding`), so that predictions can be decoded back into names.
    A target column mixing numbers and text is an error naming the odd cell.

    Args:
      path: the file.
      target_columns: the target column, by index (negative indices count from the end) or by
        its name in the header, or a sequence of them; all other columns form ``x``.
      delimiter: the cell separator, one character; ``None`` splits on runs of whitespace.
      skip_header: ``True``: the first line names the columns; ``False``: it is data; ``None``:
        decided from that line, and never silently: a line of text only is a header
        (``info.header == "guessed"``), numbers only are data, and a mix is an error asking
        for ``skip_header`` (a data line with one bad cell is not dropped as a header).
      label_dtype: ``None`` keeps numeric targets as floats ``y: [N, k]`` (regression, k the
        number of target columns). An integer dtype (``jnp.int32``) reads one target column
        as class labels ``y: [N]`` int32; a value that is not a whole number is an error.
      encode_labels: ``None``: encode the target column as class names when every cell of it
        is text; ``True``: always (numbers such as ``3`` become the class name ``"3"``);
        ``False``: never, a cell that is not a number is an error.
      dtype: floating dtype of ``x`` (and of float ``y``).
      comments: the prefix of comment lines.
      return_info: also return a :class:`DataInfo`: the column names, the class names, how
        the header was found and the line of each example.

    Returns:
      ``Dataset(x: [N, d], y)``; with ``return_info``, the pair ``(dataset, info)``.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "toy.csv"
    ...     _ = p.write_text("a,b,label\\n0.5,1.5,0\\n2.0,3.0,1\\n")
    ...     x, y = load_csv(p, label_dtype=jnp.int32)
    ...     _ = p.write_text("size,species\\n0.5,dog\\n2.0,cat\\n")
    ...     (_, names), info = load_csv(p, target_columns="species", return_info=True)
    >>> x, y
    (Array([[0.5, 1.5],
           [2. , 3. ]], dtype=float32), Array([0, 1], dtype=int32))
    >>> names, info.labels.decode(names), info.feature_names, info.header
    (Array([1, 0], dtype=int32), array(['dog', 'cat'], dtype='<U3'), ('size',), 'guessed')
    """
    dtype = _checks.float_dtype(dtype)
    if label_dtype is not None and not jnp.issubdtype(np.dtype(label_dtype), jnp.integer):
        raise TypeError(f"label_dtype must be None (float targets) or an integer dtype, got {np.dtype(label_dtype)}")
    if delimiter is not None and (
        not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter.isspace() or delimiter == _QUOTE
    ):
        raise ValueError(
            f"delimiter must be one character other than whitespace and {_QUOTE!r}, or None (runs of whitespace),"
            f" got {delimiter!r}"
        )
    _check_flag(skip_header, "skip_header", none=True)
    _check_flag(encode_labels, "encode_labels", none=True)
    _check_flag(return_info, "return_info")
    text = Path(path).read_text()
    lines = [
        (i + 1, line)
        for i, line in enumerate(text.splitlines())
        if line.strip() and not line.lstrip().startswith(comments)
    ]
    if not lines:
        raise ValueError(f"{path} holds no data lines")
    first_number, first_cells = lines[0][0], _cells(lines[0][1], delimiter)
    names, header = _header(path, first_number, first_cells, skip_header)
    body = lines[1:] if names is not None else lines
    if not body:
        raise ValueError(f"{path} holds a header but no data lines")
    width = len(first_cells)
    reference = f"the header on line {first_number}" if names is not None else f"line {first_number}"
    for number, line in body:
        if (n := _width(line, delimiter)) != width:
            raise ValueError(f"{path}, line {number}: {n} columns, expected {width} as on {reference} (ragged rows)")

    single = isinstance(target_columns, str) or not isinstance(target_columns, (Sequence, np.ndarray))
    targets = [target_columns] if single else list(target_columns)
    if not targets:
        raise ValueError("target_columns must name at least one column")
    resolved = [_target_column(t, names, width, path) for t in targets]
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"target_columns names a column twice: {targets}")
    features = [c for c in range(width) if c not in resolved]
    if not features:
        raise ValueError(f"target_columns {targets} leaves no feature columns in {path}")
    numbers = np.array([number for number, _ in body], np.int64)
    rows = [line for _, line in body]
    quote = _QUOTE if delimiter is not None else None

    try:
        x = np.loadtxt(rows, np.float64, delimiter=delimiter, usecols=features, ndmin=2, comments=None, quotechar=quote)
    except ValueError:
        for number, line in body:
            row_cells = _cells(line, delimiter)
            for column in features:
                if not _is_number(row_cells[column]):
                    raise ValueError(
                        f"{path}, line {number}, {_column_label(column, names)}: {row_cells[column]!r} is not a number"
                    ) from None
        raise
    # Targets: read as text, so that a column of class names can be told from numbers.
    cells = np.char.strip(
        np.loadtxt(rows, str, delimiter=delimiter, usecols=resolved, ndmin=2, comments=None, quotechar=quote)
    )
    numeric = np.array([[_is_number(c) for c in row] for row in cells], bool).reshape(cells.shape)
    text_columns = [j for j in range(len(resolved)) if not numeric[:, j].all()]
    if encode_labels is False and text_columns:
        j = text_columns[0]
        row = int(np.flatnonzero(~numeric[:, j])[0])
        raise ValueError(
            f"{path}, line {numbers[row]}, {_column_label(resolved[j], names)}: {str(cells[row, j])!r} is not a number"
            " (encode_labels=False)"
        )
    if encode_labels is None:
        for j in text_columns:
            n_numbers = int(numeric[:, j].sum())
            if n_numbers == 0:
                continue
            n_text = len(numeric) - n_numbers
            if n_text <= n_numbers:
                row = int(np.flatnonzero(~numeric[:, j])[0])
                what = f"{str(cells[row, j])!r} is not a number, but {n_numbers} other cells of this target column are"
            else:
                row = int(np.flatnonzero(numeric[:, j])[0])
                what = f"{str(cells[row, j])!r} is a number among {n_text} class names"
            raise ValueError(
                f"{path}, line {numbers[row]}, {_column_label(resolved[j], names)}: {what}; fix the cell, or pass"
                " encode_labels=True to read every cell of the column as a class name"
            )
    encode = bool(text_columns) if encode_labels is None else encode_labels
    encoding = None
    if encode:
        if len(resolved) != 1:
            raise ValueError(
                f"class names need one target column, got target_columns {targets}"
                + (f" ({_column_label(resolved[text_columns[0]], names)} holds text)" if text_columns else "")
            )
        empty = np.flatnonzero(cells[:, 0] == "")
        if empty.size:
            raise ValueError(f"{path}, line {numbers[empty[0]]}, {_column_label(resolved[0], names)}: empty class name")
        encoding = LabelEncoding.fit(cells[:, 0])
        y = np.asarray(encoding.encode(cells[:, 0]))
    else:
        y = cells.astype(np.float64)

    for part, columns in ((x, features), (y, resolved)):
        bad = ~np.isfinite(part) if part.dtype.kind == "f" else np.zeros(part.shape, bool)
        if bad.any():
            row, j = np.argwhere(bad)[0]
            raise ValueError(f"{path}, line {numbers[row]}, {_column_label(columns[j], names)}: NaN or infinite value")
    if label_dtype is not None and encoding is None:
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
    dataset = from_arrays(x, y, dtype=dtype)
    if not return_info:
        return dataset
    info = DataInfo(
        feature_names=None if names is None else tuple(names[c] for c in features),
        target_names=None if names is None else tuple(names[c] for c in resolved),
        labels=encoding,
        header=header,
        lines=numbers,
    )
    return dataset, info


def _index(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must hold integers or column names, got the bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must hold integers or column names, got {value!r}") from None


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
