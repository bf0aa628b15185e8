"""Save a trained model with its configuration in one file, and load it back ready to predict.

:func:`save_model` writes one :mod:`fnn.train.checkpoint` file (an ``.npz`` of arrays and a
JSON manifest, atomic, no pickle) whose pytree is ::

    {"params": ..., "model_state": ..., "standardizer": Standardizer(mean, std) or None}

and whose checkpoint metadata is ::

    {"format": "fnn.saved_model", "version": 1,
     "model": {"class": "MLP", "fields": {"sizes": [2, 8, 3], "activation": "relu", ...}},
     "dtype": "float32", "members": null,
     "loss": {"name": "cross_entropy", "params": []},
     "standardizer": {"shape": [2], "dtype": "float32"}, "class_names": ["a", "b", "c"],
     "user": ...}

The model is rebuilt from its fields by name, so nothing in the file is code: an activation is
stored by its registry name and parameters (``{"activation": "leaky_relu", "params": [0.2]}``),
and anything that has no such form (a user-written activation, a model class other than
:class:`~fnn.models.MLP` and :class:`~fnn.models.ResidualMLP`) is refused when saving, before
any file is touched. :func:`load_model` rebuilds the model, takes the shapes of its parameters
from ``jax.eval_shape`` of its ``init``, and restores the arrays into them with
:func:`fnn.train.checkpoint.restore`, bit for bit; the :class:`SavedModel` it returns predicts
what the saved model predicted, bit for bit, in a fresh process as in the one that saved it.

A file of another format version, a truncated or corrupt file, or one whose arrays do not fit
its configuration is a :class:`SavedModelError` naming the path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import io as _io
from fnn._types import ArrayLike, Params, State
from fnn.data.splits import Standardizer, standardize_apply
from fnn.models.mlp import MLP
from fnn.models.prediction import check_members, in_features, predict
from fnn.models.residual import ResidualMLP
from fnn.nn import activations as _activations
from fnn.nn import losses as _losses
from fnn.train import checkpoint as _checkpoint

__all__ = ["FORMAT", "FORMAT_VERSION", "SavedModel", "SavedModelError", "save_model", "load_model"]

FORMAT = "fnn.saved_model"
FORMAT_VERSION = 1
_MODELS = {"MLP": MLP, "ResidualMLP": ResidualMLP}
_CLASSIFICATION = ("cross_entropy", "binary_cross_entropy", "kl_divergence", "js_divergence")


class SavedModelError(_checkpoint.CheckpointError):
    """A file that is not a readable fnn saved model: another version, truncated, corrupt, inconsistent."""


@dataclasses.dataclass(frozen=True, eq=False)
class SavedModel:
    """A model loaded by :func:`load_model`: configuration, trained arrays, and what reads its inputs and outputs.

    Attributes:
      model: the rebuilt :class:`~fnn.models.MLP` or :class:`~fnn.models.ResidualMLP` (equal to the saved one).
      params, model_state: the trained arrays, with a leading ``[members]`` axis for an ensemble.
      loss: the loss name the model was trained with, or None.
      loss_params: that loss's parameters (``(eps,)`` for ``gaussian_nll_learned``).
      standardizer: the input statistics applied before the model, or None.
      class_names: one name per class, or None.
      members: the ensemble size, or None for a single model.
      metadata: the user's ``metadata``, as JSON types.
    """

    model: Any
    params: Params
    model_state: State
    loss: str | None = None
    loss_params: tuple[float, ...] = ()
    standardizer: Standardizer | None = None
    class_names: tuple[str, ...] | None = None
    members: int | None = None
    metadata: Any = None

    def predict(
        self, x: ArrayLike, kind: str = "output", *, batch_size: int | None = None, return_members: bool = False
    ) -> Any:
        """:func:`fnn.models.prediction.predict` of raw inputs: standardised first, if the model was saved so.

        Args:
          x: ``[N, d_in]`` raw (unstandardised) inputs.
          kind: a kind of :func:`~fnn.models.prediction.predict`, or ``"names"``: the class name of
            each predicted class, a NumPy array of str ``[N]`` (needs ``class_names``).
          batch_size, return_members: as for :func:`~fnn.models.prediction.predict`.
        """
        names = kind == "names"
        if names and self.class_names is None:
            raise ValueError("kind='names' needs class_names, and this model was saved without them")
        if self.standardizer is not None:
            x = standardize_apply(x, *self.standardizer)
        loss = None if self.loss is None else dataclasses.replace(_losses.get(self.loss), params=self.loss_params)
        out = predict(
            self.model,
            self.params,
            self.model_state,
            x,
            loss=loss,
            kind="classes" if names else kind,
            batch_size=batch_size,
            ensemble=self.members is not None,
            return_members=return_members,
        )
        if not names:
            return out
        table = np.asarray(self.class_names, dtype=str)
        return tuple(table[np.asarray(a)] for a in out) if return_members else table[np.asarray(out)]


# --------------------------------------------------------------------------------------------
# The model's configuration as JSON, and back.


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, _activations.Activation):
        try:
            registered = _activations.get(value.name)
        except (TypeError, ValueError):
            registered = None
        same = registered is not None and (registered.fn, registered.derivative_fn, registered.elementwise) == (
            value.fn,
            value.derivative_fn,
            value.elementwise,
        )
        if not same or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in value.params):
            raise TypeError(
                f"save_model cannot store {where}: the activation {value.name!r} is not a registered "
                "activation with numeric parameters, so it cannot be rebuilt without running code; "
                f"use one of {', '.join(_activations.names())}"
            )
        return {"activation": value.name, "params": [float(p) for p in value.params]}
    if isinstance(value, (tuple, list)):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"save_model cannot store {where} = {value!r:.60} of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        return dataclasses.replace(_activations.get(value["activation"]), params=tuple(value["params"]))
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


def _model_config(model: Any) -> dict[str, Any]:
    name = type(model).__name__
    if _MODELS.get(name) is not type(model):
        raise TypeError(f"save_model stores an MLP or a ResidualMLP, got {name}")
    fields = {f.name: _encode(getattr(model, f.name), f"model.{f.name}") for f in dataclasses.fields(model)}
    config = {"class": name, "fields": fields}
    if _build_model(config) != model:  # pragma: no cover - a new field type the encoder does not know
        raise TypeError(f"save_model cannot store {model!r:.100} faithfully: it does not rebuild equal")
    return config


def _build_model(config: dict[str, Any]) -> Any:
    cls = _MODELS[config["class"]]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config["fields"]) - known)
    if unknown:
        raise ValueError(f"{config['class']} has no fields {unknown}")
    return cls(**{k: _decode(v) for k, v in config["fields"].items()})


# --------------------------------------------------------------------------------------------
# Checks of what is saved.


def _template(model: Any, dtype: str, members: int | None) -> tuple[Params, State]:
    """The shapes and dtypes of ``model.init``'s parameters and state (stacked over ``members``)."""

    def init() -> tuple[Params, State]:
        if members is None:
            return model.init(jax.random.key(0), dtype)
        return jax.vmap(lambda k: model.init(k, dtype))(jax.random.split(jax.random.key(0), members))

    return jax.eval_shape(init)


def _check_like(tree: Any, like: Any, name: str) -> None:
    """Refuse ``tree`` unless it has ``like``'s structure, shapes and dtypes, naming the first difference."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    want, want_def = jax.tree_util.tree_flatten_with_path(like)
    if treedef != want_def:
        raise ValueError(f"{name} has tree structure {treedef}; the model's init gives {want_def}")
    for (path, leaf), (_, spec) in zip(flat, want):
        got = (tuple(jnp.shape(leaf)), str(_dtype(leaf)))
        if got != (tuple(spec.shape), str(spec.dtype)):
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)} is {got[1]}{list(got[0])}; the model's init "
                f"in {spec.dtype} gives {spec.dtype}{list(spec.shape)}"
            )


def _dtype(leaf: Any) -> np.dtype:
    # The leaf's own dtype: jnp.result_type would canonicalise a NumPy float64 to float32 without x64.
    return np.dtype(getattr(leaf, "dtype", None) or np.result_type(leaf))


def _params_dtype(params: Params) -> str:
    dtypes = sorted({str(_dtype(a)) for a in jax.tree.leaves(params)})
    if len(dtypes) != 1 or not jnp.issubdtype(dtypes[0], jnp.floating):
        raise TypeError(f"params must hold arrays of one floating dtype, got {dtypes}")
    if jax.dtypes.canonicalize_dtype(dtypes[0]) != np.dtype(dtypes[0]):
        raise ValueError(f"params are {dtypes[0]}, which JAX cannot hold here; enable jax_enable_x64 to save them")
    return dtypes[0]


def _loss_entry(loss: Any) -> dict[str, Any] | None:
    if loss is None:
        return None
    resolved = _losses.get(loss)
    registered = _losses.get(resolved.name) if resolved.name in _losses.names() else None
    if registered is None or (registered.fn, registered.grad_fn) != (resolved.fn, resolved.grad_fn):
        raise TypeError(f"save_model stores a registered loss by name ({', '.join(_losses.names())}), got {loss!r:.80}")
    return {"name": resolved.name, "params": [float(p) for p in resolved.params]}


def _num_classes(model: Any, loss: str) -> int:
    width = model.sizes[-1] if isinstance(model, MLP) else model.out_features
    return 2 if loss == "binary_cross_entropy" and width == 1 else width


def _check_class_names(class_names: Any, model: Any, loss: dict[str, Any] | None) -> list[str] | None:
    if class_names is None:
        return None
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise TypeError(f"class_names must be a sequence of str, got {type(class_names).__name__}")
    names = list(class_names)
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct strings, got {names!r:.100}")
    if loss is None or loss["name"] not in _CLASSIFICATION:
        raise ValueError(f"class_names need a classification loss ({', '.join(_CLASSIFICATION)}), got loss {loss}")
    wanted = _num_classes(model, loss["name"])
    if len(names) != wanted:
        raise ValueError(f"class_names must name the model's {wanted} classes, got {len(names)} names")
    return names


def _check_standardizer(standardizer: Any, model: Any) -> Standardizer | None:
    if standardizer is None:
        return None
    if not isinstance(standardizer, (tuple, list)) or len(standardizer) != 2:
        raise TypeError(f"standardizer must be a Standardizer(mean, std), got {type(standardizer).__name__}")
    mean, std = (jnp.asarray(a) for a in standardizer)
    width = in_features(model)
    for label, a in (("mean", mean), ("std", std)):
        if a.shape != (width,) or not jnp.issubdtype(a.dtype, jnp.floating):
            raise ValueError(f"standardizer.{label} must be floats of shape ({width},), got {a.dtype}{list(a.shape)}")
    return Standardizer(mean, std)


# --------------------------------------------------------------------------------------------
# save and load


def save_model(
    path: _io.PathLike,
    model: Any,
    params: Params,
    model_state: State,
    *,
    loss: str | _losses.Loss | None = None,
    standardizer: Standardizer | None = None,
    class_names: Sequence[str] | None = None,
    ensemble: bool = False,
    metadata: Any = None,
) -> Path:
    """Write a trained model, its configuration and what reads its inputs and outputs to one file, atomically.

    Args:
      path: the file to write (conventionally ``*.npz``); parents are created, an old file replaced.
      model: an :class:`~fnn.models.MLP` or :class:`~fnn.models.ResidualMLP` whose activations are
        registered names or records (see the module docstring).
      params, model_state: the trained arrays, of one floating dtype (stacked ``[M]`` for an ensemble).
      loss: the training loss (a registered name or record), which fixes how outputs read; or None.
      standardizer: the :class:`~fnn.data.splits.Standardizer` of the training inputs, applied
        by :meth:`SavedModel.predict` to raw inputs; or None.
      class_names: one distinct str per class (two for a single logit), with a classification loss.
      ensemble: ``params`` and ``model_state`` are a stack of members.
      metadata: anything :func:`fnn.io.to_jsonable` accepts, given back as ``SavedModel.metadata``.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    Everything is checked, and the whole file built, before ``path`` is touched.

    >>> import tempfile, pathlib
    >>> model = MLP((2, 8, 3), dropout=0.1, batch_norm=True)
    >>> params, state = model.init(jax.random.key(0))
    >>> x = jnp.array([[0.5, -1.0], [2.0, 0.0]])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_model(pathlib.Path(d) / "m.npz", model, params, state, loss="cross_entropy",
    ...                    class_names=["cat", "dog", "eel"])
    ...     saved = load_model(p)
    >>> saved.model == model, saved.predict(x, "names").shape
    (True, (2,))
    >>> bool((saved.predict(x, "proba") == predict(model, params, state, x, loss="cross_entropy", kind="proba")).all())
    True
    """
    config = _model_config(model)
    members = check_members(model, params, model_state, ensemble=ensemble)
    dtype = _params_dtype(params)
    template_params, template_state = _template(model, dtype, members)
    _check_like(params, template_params, "params")
    _check_like(model_state, template_state, "model_state")
    loss_entry = _loss_entry(loss)
    standardizer = _check_standardizer(standardizer, model)
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": config,
        "dtype": dtype,
        "members": members,
        "loss": loss_entry,
        "standardizer": None
        if standardizer is None
        else {"shape": list(standardizer.mean.shape), "dtype": [str(a.dtype) for a in standardizer]},
        "class_names": _check_class_names(class_names, model, loss_entry),
        "user": _io.to_jsonable(metadata),
    }
    tree = {"params": params, "model_state": model_state, "standardizer": standardizer}
    return _checkpoint.save(path, tree, metadata=manifest)


def _read_manifest(path: _io.PathLike) -> dict[str, Any]:
    try:
        manifest = _checkpoint.load_metadata(path)
    except _checkpoint.CheckpointError as e:
        raise SavedModelError(f"{path} is not a readable fnn saved model: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SavedModelError(f"{path} is an fnn checkpoint but not a saved model (no format {FORMAT!r})")
    if manifest.get("version") != FORMAT_VERSION:
        raise SavedModelError(
            f"{path} has saved-model format version {manifest.get('version')!r}; this fnn reads version {FORMAT_VERSION}"
        )
    return manifest


def load_model(path: _io.PathLike) -> SavedModel:
    """Load a model written by :func:`save_model`: rebuilt, its arrays restored bit for bit.

    Args:
      path: a file written by :func:`save_model`.

    Returns:
      A :class:`SavedModel`; its :meth:`~SavedModel.predict` gives what the saved model gave.

    Raises:
      FileNotFoundError: no file at ``path``.
      SavedModelError: (a ``ValueError``) the file is not a saved model, has another format
        version, is truncated or corrupt, or its arrays do not fit its configuration.
      ValueError: a float64 model loaded without ``jax_enable_x64``.
    """
    manifest = _read_manifest(path)
    try:
        model = _build_model(manifest["model"])
        dtype, members = manifest["dtype"], manifest["members"]
        loss = manifest["loss"]
        class_names = manifest["class_names"]
        std = manifest["standardizer"]
    except (KeyError, TypeError, ValueError) as e:
        raise SavedModelError(
            f"{path} has a saved-model manifest that does not rebuild: {type(e).__name__}: {e}"
        ) from e
    if jax.dtypes.canonicalize_dtype(dtype) != np.dtype(dtype):
        raise ValueError(
            f"{path} holds a {dtype} model; enable 64-bit JAX before loading it "
            "(jax.config.update('jax_enable_x64', True))"
        )
    like_params, like_state = _template(model, dtype, members)
    like_std = None
    if std is not None:
        like_std = Standardizer(*(jax.ShapeDtypeStruct(tuple(std["shape"]), d) for d in std["dtype"]))
    like = {"params": like_params, "model_state": like_state, "standardizer": like_std}
    try:
        tree = _checkpoint.restore(path, like)
    except _checkpoint.CheckpointError as e:
        raise SavedModelError(f"{path} is not a readable fnn saved model: {e}") from e
    except ValueError as e:
        raise SavedModelError(f"{path} holds arrays that do not fit its model configuration: {e}") from e
    return SavedModel(
        model=model,
        params=tree["params"],
        model_state=tree["model_state"],
        loss=None if loss is None else loss["name"],
        loss_params=() if loss is None else tuple(loss["params"]),
        standardizer=tree["standardizer"],
        class_names=None if class_names is None else tuple(class_names),
        members=members,
        metadata=manifest.get("user"),
    )
