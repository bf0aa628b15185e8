"""Save and restore pytrees (parameters, optimizer state, PRNG keys) in one file, atomically.

A checkpoint is one ``.npz`` archive (a zip of ``.npy`` files, readable with
``numpy.load(path, allow_pickle=False)``) holding:

* ``leaf_00000``, ``leaf_00001``, ...: the leaves in ``jax.tree_util`` flattening order.
  An array of shape ``S`` is stored as itself; a typed PRNG key array of shape ``S`` as its
  raw key data, ``uint32[*S, k]`` (``jax.random.key_data``); a Python ``int``, ``float`` or
  ``bool`` as a 0-d ``int64``, ``float64`` or ``bool`` array; an ``ml_dtypes`` array
  (bfloat16, float8, int4) as an unsigned-integer view of the same bits. ``None`` is no leaf
  at all; like an empty tuple or ``optax.EmptyState()`` it lives in the tree structure.
* ``manifest``: UTF-8 JSON as ``uint8[n]``::

    {"format": "fnn.checkpoint", "version": 1,
     "treedef": "PyTreeDef([{'W': *, 'b': *}, ...])",
     "leaves": [{"name": "leaf_00000", "path": "[0]['W']", "kind": "array",
                 "shape": [2, 3], "dtype": "float32", "weak_type": false}, ...],
     "metadata": ...}

  ``kind`` is ``"array"``, ``"prng_key"`` (with ``"impl"``, e.g. ``"threefry2x32"``),
  ``"int"``, ``"float"`` or ``"bool"``; ``path`` is ``jax.tree_util.keystr`` of the leaf's
  path; ``stored_dtype`` appears where the bits are stored under another dtype.

Nothing is pickled, so loading a checkpoint never runs code from the file. The tree
structure is stored only as text, for comparison: :func:`restore` rebuilds the tree from a
template ``like`` of the same structure (for instance ``jax.eval_shape`` of the init
function, or a freshly initialised state), and refuses a checkpoint whose structure, leaf
shapes, dtypes or kinds differ from it, naming the first leaf that differs.

Restored values are bit-identical to the saved ones (NaN payloads and signed zeros
included) and take the template leaf's form: a ``jax.Array`` (with the template's weak type,
so a jitted step sees the same input types and does not retrace), a NumPy array, a typed key
of the same implementation, or a Python scalar. Resuming training from a checkpoint of the
whole training state, parameters, optimizer state, PRNG key and step counter, therefore
continues exactly as the uninterrupted run would have (with :class:`fnn.train.Trainer` and a
learning-rate schedule, give it ``total_epochs``, the whole run the schedule spans).

Atomicity: :func:`save` builds the whole archive in memory and writes it with
:func:`fnn._io.atomic_write_bytes` (temporary file in the same directory, ``fsync``, atomic
rename). A run killed at any moment, or a save that raises, leaves the previous checkpoint
at ``path`` as it was, or none, and never a half-written file.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fnn import io as _io

__all__ = ["FORMAT_VERSION", "CheckpointError", "load_metadata", "restore", "save"]

FORMAT = "fnn.checkpoint"
FORMAT_VERSION = 1
_MANIFEST = "manifest"
_PY_SCALARS = {bool: ("bool", np.bool_), int: ("int", np.int64), float: ("float", np.float64)}


class CheckpointError(ValueError):
    """A file that is not a readable fnn checkpoint: truncated, corrupt, or something else."""


class _Leaf(NamedTuple):
    """What one leaf is, as far as matching a checkpoint against a template goes."""

    kind: str  # "array", "prng_key", "int", "float" or "bool"
    shape: tuple[int, ...]
    dtype: str


def _describe(leaf: _Leaf) -> str:
    if leaf.kind in ("int", "float", "bool"):
        return f"a Python {leaf.kind}"
    what = "PRNG key array" if leaf.kind == "prng_key" else "array"
    return f"{what} {leaf.dtype}{list(leaf.shape)}"


def _is_ml_dtype(dtype: np.dtype) -> bool:
    return dtype.kind == "V" and dtype.type.__module__.split(".")[0] == "ml_dtypes"


# --------------------------------------------------------------------------------------------
# save


def _encode(leaf: Any, path: str) -> tuple[np.ndarray, dict[str, Any]]:
    """One leaf as (the array to store, its manifest entry)."""
    if type(leaf) in _PY_SCALARS:
        kind, np_dtype = _PY_SCALARS[type(leaf)]
        try:
            stored = np.array(leaf, dtype=np_dtype)
        except OverflowError:
            raise ValueError(f"leaf {path}: the int {leaf} does not fit in int64") from None
        return stored, {"kind": kind, "shape": [], "dtype": str(stored.dtype)}
    if isinstance(leaf, jax.core.Tracer):
        raise TypeError(f"leaf {path} is a traced value; save checkpoints outside jax.jit")
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        entry = {
            "kind": "prng_key",
            "shape": list(leaf.shape),
            "dtype": str(leaf.dtype),
            "impl": str(jax.random.key_impl(leaf)),
        }
        return np.asarray(jax.random.key_data(leaf)), entry
    if not isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        raise TypeError(
            f"leaf {path} is of type {type(leaf).__name__}; a checkpoint holds arrays, "
            "typed PRNG keys, Python ints, floats and bools"
        )
    arr = np.asarray(leaf)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    entry = {
        "kind": "array",
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "weak_type": bool(getattr(leaf, "weak_type", False)),
    }
    if _is_ml_dtype(arr.dtype):
        arr = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
        entry["stored_dtype"] = str(arr.dtype)
    elif arr.dtype.kind not in "biufc":
        raise TypeError(f"leaf {path} has dtype {arr.dtype}, which a checkpoint cannot hold")
    return arr, entry


def save(path: _io.PathLike, tree: Any, *, metadata: Any = None) -> Path:
    """Write ``tree`` to ``path`` as one checkpoint file, atomically.

    Args:
      path: the file to write (conventionally ``*.npz``); parent directories are created and
        an existing file is replaced.
      tree: any pytree whose leaves are ``jax.Array`` (typed PRNG keys included), NumPy
        arrays or scalars of bool, integer, float, complex or ``ml_dtypes`` dtypes, or Python
        ``int`` (within int64), ``float`` and ``bool``. ``None`` and empty containers are
        structure, not leaves.
      metadata: anything :func:`fnn._io.to_jsonable` accepts (epoch, config, metrics),
        stored in the manifest and read back by :func:`load_metadata`.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    The archive is built in memory before any file is touched, and written by
    :func:`fnn._io.atomic_write_bytes`: if anything fails, including an unsupported leaf
    (``TypeError`` naming its path) or metadata that has no JSON form, the previous file at
    ``path`` is left as it was and no temporary file remains.

    >>> import tempfile, pathlib
    >>> params = [{"W": jnp.ones((2, 3)), "b": jnp.zeros(3)}]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save(pathlib.Path(d) / "ckpt.npz", (params, jax.random.key(0), 7), metadata={"epoch": 7})
    ...     with np.load(p, allow_pickle=False) as archive:
    ...         sorted(archive.files)
    ['leaf_00000', 'leaf_00001', 'leaf_00002', 'leaf_00003', 'manifest']
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    arrays: dict[str, np.ndarray] = {}
    entries = []
    for i, (key_path, leaf) in enumerate(flat):
        name = f"leaf_{i:05d}"
        leaf_path = jax.tree_util.keystr(key_path)
        arrays[name], entry = _encode(leaf, leaf_path)
        entries.append({"name": name, "path": leaf_path, **entry})
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "treedef": str(treedef),
        "leaves": entries,
        "metadata": _io.to_jsonable(metadata),
    }
    text = json.dumps(manifest, allow_nan=False)
    arrays[_MANIFEST] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return _io.atomic_write_bytes(path, buffer.getvalue())


# --------------------------------------------------------------------------------------------
# read


def _check_stored(stored: np.ndarray, entry: dict[str, Any], path: _io.PathLike) -> None:
    """Refuse a stored array whose shape or dtype is not what its manifest entry says."""
    shape, dtype = tuple(entry["shape"]), entry.get("stored_dtype", entry["dtype"])
    if entry["kind"] == "prng_key":  # raw key data: one more axis, of the impl's key size
        shape, dtype = shape + stored.shape[len(shape) :][:1], "uint32"
    if stored.shape != shape or str(stored.dtype) != dtype:
        raise CheckpointError(
            f"{path} is corrupt: leaf {entry['path']} is stored as {stored.dtype}{list(stored.shape)}, "
            f"its manifest says {dtype}{list(shape)}"
        )


def _read(path: _io.PathLike, *, leaves: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The manifest, and (if ``leaves``) the stored arrays by name, checked against it."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {path}: the file does not exist") from None
    if not raw.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{path} is not an fnn checkpoint: it is not a zip (.npz) archive")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            if _MANIFEST not in npz.files:
                raise CheckpointError(f"{path} is not an fnn checkpoint: it has no manifest")
            manifest = json.loads(npz[_MANIFEST].tobytes().decode("utf-8"))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise CheckpointError(f"{path} is not an fnn checkpoint: its manifest has no format {FORMAT!r}")
            version = manifest.get("version")
            if version != FORMAT_VERSION:
                raise CheckpointError(
                    f"{path} has checkpoint format version {version!r}; this fnn reads version {FORMAT_VERSION}"
                )
            arrays = {e["name"]: npz[e["name"]] for e in manifest["leaves"]} if leaves else {}
            for e in manifest["leaves"] if leaves else ():
                _check_stored(arrays[e["name"]], e, path)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, TypeError, ValueError) as e:
        # A truncated archive loses its central directory (BadZipFile); a corrupt member fails
        # its CRC (BadZipFile) or its .npy header (ValueError).
        raise CheckpointError(
            f"{path} is not a readable fnn checkpoint (truncated or corrupt?): {type(e).__name__}: {e}"
        ) from e
    return manifest, arrays


def load_metadata(path: _io.PathLike) -> Any:
    """The ``metadata`` given to :func:`save` for the checkpoint at ``path``, as JSON types.

    Only the manifest is read. Tuples come back as lists and non-finite floats as the strings
    ``"nan"``, ``"inf"``, ``"-inf"`` (see :func:`fnn._io.to_jsonable`).

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save(pathlib.Path(d) / "ckpt.npz", {"w": jnp.zeros(2)}, metadata={"epoch": 3, "lr": 0.1})
    ...     load_metadata(p)
    {'epoch': 3, 'lr': 0.1}
    """
    manifest, _ = _read(path, leaves=False)
    return manifest.get("metadata")


def _template_leaf(leaf: Any, path: str) -> _Leaf:
    if type(leaf) in _PY_SCALARS:
        return _Leaf(_PY_SCALARS[type(leaf)][0], (), str(np.dtype(_PY_SCALARS[type(leaf)][1])))
    if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct, np.ndarray, np.generic)):
        is_key = jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)
        return _Leaf("prng_key" if is_key else "array", tuple(leaf.shape), str(leaf.dtype))
    raise TypeError(
        f"template leaf {path} is of type {type(leaf).__name__}; use arrays, "
        "jax.ShapeDtypeStruct, typed PRNG keys or Python ints, floats and bools"
    )


def _check_structure(manifest: dict[str, Any], treedef: Any, paths: list[str], path: Any) -> None:
    found = [e["path"] for e in manifest["leaves"]]
    for i, (a, b) in enumerate(zip(found, paths)):
        if a != b:
            raise ValueError(f"checkpoint {path} has leaf {a} where the template has {b} (leaf {i})")
    if len(found) != len(paths):
        longer, shorter = ("checkpoint", "template") if len(found) > len(paths) else ("template", "checkpoint")
        extra = (found if len(found) > len(paths) else paths)[min(len(found), len(paths))]
        raise ValueError(
            f"checkpoint {path} has {len(found)} leaves, the template {len(paths)}: "
            f"the {longer} has leaf {extra}, which the {shorter} lacks"
        )

    # Same leaf paths, yet tuple vs list, a None, or another NamedTuple class can differ.
    # Object addresses in a node's repr differ between processes and are ignored.
    def strip(s: str) -> str:
        return re.sub(r" at 0x[0-9a-fA-F]+", "", s)

    if strip(manifest["treedef"]) != strip(str(treedef)):
        raise ValueError(f"checkpoint {path} has tree structure {manifest['treedef']}, the template {treedef}")


def _decode(stored: np.ndarray, entry: dict[str, Any], like: Any) -> Any:
    """The stored array as a value of the template leaf's form."""
    kind = entry["kind"]
    if kind in ("int", "float", "bool"):
        return type(like)(stored.item())
    if kind == "prng_key":
        return jax.random.wrap_key_data(stored, impl=entry["impl"])
    if "stored_dtype" in entry:
        stored = stored.view(jnp.dtype(entry["dtype"]))
    if isinstance(like, np.generic):
        return stored[()]
    if isinstance(like, np.ndarray):
        return stored
    if getattr(like, "weak_type", False):
        # No public call marks an array weakly typed; lax.full_like keeps the weak type of
        # its model, which it fills with one stored value at a time.
        model = like if isinstance(like, jax.Array) else jnp.asarray(stored.dtype.type(0).item())
        if model.dtype == stored.dtype:
            flat = stored.reshape(-1)
            out = jax.vmap(lambda v: lax.full_like(model, v, shape=()))(flat)
            return out.reshape(stored.shape)
    return jnp.asarray(stored)


def restore(path: _io.PathLike, like: Any) -> Any:
    """Read the checkpoint at ``path`` into a pytree of the same structure as ``like``.

    Args:
      path: a file written by :func:`save`.
      like: the template: a pytree with the structure of the saved one whose leaves give the
        expected form of each leaf: ``jax.Array`` (typed PRNG keys included),
        ``jax.ShapeDtypeStruct``, NumPy arrays or scalars, or Python ``int``, ``float`` and
        ``bool``. Its values are ignored.

    Returns:
      A pytree with ``like``'s structure holding the saved values, bit for bit: a
      ``jax.Array`` (with the template's weak type) where ``like`` has a ``jax.Array`` or a
      ``ShapeDtypeStruct``, a NumPy array or scalar where it has one, a typed key of the
      saved implementation where it has a key, and a Python scalar of the template's type
      where it has one.

    Raises:
      FileNotFoundError: no file at ``path``.
      CheckpointError: (a ``ValueError``) the file is not a checkpoint, is truncated or
        corrupt, or has another format version.
      ValueError: the structure differs from ``like``'s (naming the first differing leaf
        path), or a leaf's kind, shape or dtype differs (naming the leaf, expected vs found).

    >>> import tempfile, pathlib
    >>> state = ([{"W": jnp.ones((2, 3)), "b": jnp.zeros(3)}], jax.random.key(0), 7)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save(pathlib.Path(d) / "ckpt.npz", state)
    ...     params, key, epoch = restore(p, like=jax.eval_shape(lambda: state[:2]) + (0,))
    >>> params[0]["W"].shape, key.dtype, epoch
    ((2, 3), key<fry>, 7)
    >>> bool((jax.random.normal(key, (3,)) == jax.random.normal(state[1], (3,))).all())
    True
    """
    manifest, arrays = _read(path, leaves=True)
    flat, treedef = jax.tree_util.tree_flatten_with_path(like)
    paths = [jax.tree_util.keystr(p) for p, _ in flat]
    _check_structure(manifest, treedef, paths, path)
    out = []
    for entry, leaf_path, (_, like_leaf) in zip(manifest["leaves"], paths, flat):
        want = _template_leaf(like_leaf, leaf_path)
        found = _Leaf(entry["kind"], tuple(entry["shape"]), entry["dtype"])
        if want != found:
            raise ValueError(
                f"leaf {leaf_path}: the template expects {_describe(want)}, the checkpoint has {_describe(found)}"
            )
        value = _decode(arrays[entry["name"]], entry, like_leaf)
        if want.kind == "array" and str(value.dtype) != want.dtype:
            raise ValueError(
                f"leaf {leaf_path}: {want.dtype} cannot be restored as a jax.Array here "
                f"(it became {value.dtype}); enable jax_enable_x64 or use a NumPy template leaf"
            )
        out.append(value)
    return jax.tree_util.tree_unflatten(treedef, out)
