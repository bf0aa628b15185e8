"""Atomic file writing: a reader sees the old file or the new one, never half of either.

Every write follows one pattern. The bytes go to a temporary file in the target's own
directory (so the final rename never crosses a filesystem), are flushed and ``fsync``-ed, and
the temporary file is then renamed onto the target with :func:`os.replace`, which is atomic on
POSIX and on Windows. If anything raises on the way, the temporary file is removed and the
previous target, if there was one, is left untouched.

JSON goes through :func:`to_jsonable` first, which turns NumPy and JAX scalars and arrays into
Python floats, ints, bools and nested lists. JSON has no NaN or infinity, so non-finite floats
are written as the strings ``"nan"``, ``"inf"`` and ``"-inf"``; a reader that wants numbers
back converts them with ``float(s)``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

# NamedTemporaryFile creates files with mode 0o600; the renamed file should get the mode an
# ordinary open() would give it. Reading the umask means setting it, so do it once, at import.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _atomic_write(path: PathLike, write: Callable[[Any], None]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it onto ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(
        mode="wb", dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
    )
    try:
        with tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, 0o666 & ~_UMASK)
        os.replace(tmp.name, target)
    except BaseException:
        try:
            os.unlink(tmp.name)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(target.parent)
    return target


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent directories.

    Args:
      path: target file; its parent directories are created if missing.
      data: the complete new contents.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    Example:
      >>> import tempfile, pathlib
      >>> with tempfile.TemporaryDirectory() as d:
      ...     p = atomic_write_bytes(pathlib.Path(d) / "sub" / "x.bin", b"\\x00\\x01")
      ...     p.read_bytes()
      b'\\x00\\x01'
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8 by default), creating parent directories.

    Example:
      >>> import tempfile, pathlib
      >>> with tempfile.TemporaryDirectory() as d:
      ...     p = atomic_write_text(pathlib.Path(d) / "note.txt", "héllo\\n")
      ...     p.read_text(encoding="utf-8")
      'héllo\\n'
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding))


def _float(x: float) -> float | str:
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return "nan"
    return "inf" if x > 0 else "-inf"


def to_jsonable(obj: Any) -> Any:
    """``obj`` rebuilt from JSON types only: dict with str keys, list, str, int, float, bool, None.

    NumPy and JAX scalars and arrays (anything with ``__array__``) become Python numbers or
    nested lists; tuples become lists; non-finite floats become ``"nan"``, ``"inf"`` or
    ``"-inf"``. Anything else, including a dict key that is not a str, is a ``TypeError``
    naming where in ``obj`` it sits.

    Example:
      >>> import numpy as np
      >>> to_jsonable({"w": np.array([[1.0, np.nan]]), "n": np.int32(3), "t": (np.inf,)})
      {'w': [[1.0, 'nan']], 'n': 3, 't': ['inf']}
    """
    return _jsonable(obj, "obj")


def _jsonable(obj: Any, where: str) -> Any:
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _float(float(obj))
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a dict key {key!r} of type {type(key).__name__}; JSON keys must be str")
            out[key] = _jsonable(value, f"{where}[{key!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic) or hasattr(obj, "__array__"):
        arr = np.asarray(obj)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{where} is an array of dtype {arr.dtype}; only bool, int and float convert to JSON")
        return _jsonable(arr.tolist(), where)
    raise TypeError(f"{where} is of type {type(obj).__name__}, which has no JSON form")


def dumps_json(obj: Any) -> str:
    """``obj`` as strict JSON text: converted by :func:`to_jsonable`, indent 2, sorted keys.

    Example:
      >>> print(dumps_json({"b": float("-inf"), "a": 1}))
      {
        "a": 1,
        "b": "-inf"
      }
    """
    return json.dumps(to_jsonable(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"


def atomic_write_json(path: PathLike, obj: Any) -> Path:
    """Write ``obj`` to ``path`` as JSON, atomically; see :func:`dumps_json` for the format.

    The text is built before any file is touched, so an object that fails to convert leaves
    the previous file as it was.

    Example:
      >>> import json, tempfile, pathlib
      >>> with tempfile.TemporaryDirectory() as d:
      ...     p = atomic_write_json(pathlib.Path(d) / "r.json", {"loss": float("nan")})
      ...     json.loads(p.read_text())
      {'loss': 'nan'}
    """
    return atomic_write_text(path, dumps_json(obj))


def atomic_save_figure(path: PathLike, fig: Any, *, dpi: int = 120) -> Path:
    """Save a matplotlib ``Figure`` to ``path`` as PNG, atomically, rendered with Agg.

    matplotlib is imported only here (it is an optional extra); the Agg renderer is used
    whatever the interactive backend, so this works without a display.

    Example:
      >>> import tempfile, pathlib
      >>> from matplotlib.figure import Figure
      >>> fig = Figure(figsize=(2, 2))
      >>> _ = fig.subplots().plot([0, 1], [1, 0])
      >>> with tempfile.TemporaryDirectory() as d:
      ...     atomic_save_figure(pathlib.Path(d) / "f.png", fig).read_bytes()[:4]
      b'\\x89PNG'
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("saving figures needs matplotlib: pip install 'fnn[experiments]'") from e
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib.figure.Figure, got {type(fig).__name__}")
    return _atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, backend="agg"))
