r"""Many training runs as one program: members vmapped, chunked, and sharded over a device mesh.

A *member* is one training run, ``trainer.fit(trainer.init(keys[m], h_m), D_m, V_m, h_m)``:
its own key, and optionally its own hyperparameters :math:`h_m`, training set :math:`D_m`
(a fold, a bootstrap draw, example weights) and validation set :math:`V_m`. :func:`fit_many`
trains M members as one compiled program and returns their states and histories stacked on a
leading ``[M]`` axis; member ``m`` equals the run that :meth:`~fnn.train.Trainer.fit` makes
from its arguments alone.

**Layout.** With :math:`D` devices on the mesh's ``"members"`` axis and at most :math:`c`
members per device at a time, the members are padded to :math:`P = D\,n\,c` (:math:`n` chunks,
as few as fit, each as even as possible), device :math:`d` holds members
:math:`[d\,n\,c, (d+1)\,n\,c)`, and the program is a ``lax.map`` over the :math:`n` chunks of a
``jax.vmap`` over the :math:`D c` members of a chunk, each device computing its own :math:`c`
(``NamedSharding`` on ``"members"``; the members never communicate). Padding members repeat
member 0's arguments and are dropped from the result, so nothing is lost or duplicated. The
results do not depend on :math:`c` or :math:`D` beyond the rounding of XLA's batched kernels.

**Memory and compile time.** The members' initial states come from a program of their own, a
sequential ``lax.map`` of one member's ``init``: vmapped, the initialisation compiles about
twice as long, and it costs little to run. The training program's temporaries (activations,
gradients, minibatches) grow with :math:`c`, not with :math:`M`; what grows with :math:`M` is
the members' initial and final states, twice the size of the result. For 4096 digits MLPs
trained with Adam, XLA's memory analysis gives 2.75 GB with ``chunk_size=256`` and 4.84 GB
without chunking (``experiments/bench_many.py``).

**Data parallelism.** With ``data_axis``, every member's minibatches are split over that mesh
axis as well (see :meth:`~fnn.train.Trainer.fit`): a 2-D mesh ``("members", "data")`` trains
members side by side, each on several devices.

**Shared minibatch order.** With ``shuffle_key`` every member sees the same minibatches
(epoch ``e`` is shuffled by ``fold_in(shuffle_key, e)``), while its key still draws its
initialisation and its dropout and mixup draws. The members' first-layer inputs are then one
array, and XLA computes their first-layer products as one matmul, which is faster on a CPU.
What it trades: the members' errors are correlated through their common data order, so an
ensemble's or a seed sweep's spread measures initialisation noise alone, not the noise of
the data order.

Reference: the JAX documentation, *Distributed arrays and automatic parallelization*
(``jax.sharding``), and *Multi-process environments* (``jax.distributed``).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Iterable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from fnn import _checks, checking
from fnn._types import Array, PRNGKey
from fnn.train import progress as _progress

__all__ = ["PER_MEMBER", "Plan", "plan", "default_mesh", "grid", "reshape_members", "fit_many"]

#: The arguments of :func:`fit_many` that may carry a leading member axis.
PER_MEMBER = ("train", "validation", "hyperparams")


class Plan(NamedTuple):
    """How :func:`fit_many` lays M members out: ``chunks`` steps of ``devices x chunk`` members.

    Attributes:
      members: M, the members asked for.
      devices: D, the devices on the mesh's member axis.
      chunk: c, the members each device trains at once.
      chunks: n, the sequential steps.
    """

    members: int
    devices: int
    chunk: int
    chunks: int

    @property
    def padded(self) -> int:
        """P = D n c >= M, the members computed; the last P - M are padding."""
        return self.devices * self.chunk * self.chunks


def plan(members: int, devices: int = 1, chunk_size: int | None = None) -> Plan:
    """The layout of ``members`` runs on ``devices`` devices, at most ``chunk_size`` per device at once.

    The chunks are as few as ``chunk_size`` allows and as even as possible, so the padding is
    less than ``devices * chunks``.

    >>> plan(100, devices=2, chunk_size=32)
    Plan(members=100, devices=2, chunk=25, chunks=2)
    >>> plan(7, devices=2).padded
    8
    """
    members = _checks.positive_int(members, "members")
    devices = _checks.positive_int(devices, "devices")
    per_device = -(-members // devices)
    if chunk_size is None:
        return Plan(members, devices, per_device, 1)
    chunk_size = _checks.positive_int(chunk_size, "chunk_size")
    chunks = -(-per_device // chunk_size)
    return Plan(members, devices, -(-per_device // chunks), chunks)


@functools.cache
def _local_mesh(devices: tuple[Any, ...]) -> Mesh:
    return Mesh(np.asarray(devices), ("members",))


def default_mesh() -> Mesh:
    """A 1-D mesh ``("members",)`` over every local device (one device: a trivial mesh).

    >>> default_mesh().axis_names
    ('members',)
    """
    return _local_mesh(tuple(jax.local_devices()))


def grid(keys: PRNGKey, hyperparams: Mapping[str, Any]) -> tuple[Array, dict[str, Array]]:
    """Every pair of a hyperparameter setting and a key as members, for ``per_member="hyperparams"``.

    Args:
      keys: ``[S]`` PRNG keys (seeds).
      hyperparams: a dict of ``[G]`` arrays, one entry per setting; a scalar entry is shared.

    Returns:
      ``(keys [G S], hyperparams)`` with every entry ``[G S]``: member ``g S + s`` has setting
      ``g`` and key ``s``. :func:`reshape_members` with ``(G, S)`` turns results back into a grid.

    >>> keys, hp = grid(jax.random.split(jax.random.key(0), 2), {"learning_rate": jnp.array([0.1, 0.01, 0.001])})
    >>> keys.shape, hp["learning_rate"].tolist()
    ((6,), [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    """
    keys = _checks.key_batch(keys, "keys")
    seeds = keys.shape[0]
    sizes = {name: np.shape(value)[0] for name, value in hyperparams.items() if np.ndim(value) > 0}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"hyperparams entries must share one leading axis (the settings), got lengths {sizes}")
    settings = next(iter(sizes.values()), 1)
    flat = {
        name: jnp.repeat(jnp.asarray(value), seeds, axis=0) if np.ndim(value) > 0 else jnp.full(settings * seeds, value)
        for name, value in hyperparams.items()
    }
    return jnp.tile(keys, settings), flat


def reshape_members(tree: Any, shape: tuple[int, ...]) -> Any:
    """Every leaf's leading member axis ``[prod(shape)]`` reshaped to ``shape``, e.g. a :func:`grid`'s ``(G, S)``.

    >>> reshape_members({"loss": jnp.arange(6.0)}, (3, 2))["loss"].shape
    (3, 2)
    """
    shape = tuple(_checks.positive_int(n, "shape entries") for n in shape)
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if not np.shape(leaf) or np.shape(leaf)[0] != math.prod(shape):
            raise ValueError(
                f"reshape_members to {shape} needs a leading member axis of {math.prod(shape)}, "
                f"got shape {np.shape(leaf)} at tree{jax.tree_util.keystr(path)}"
            )
    return jax.tree.map(lambda a: a.reshape(*shape, *a.shape[1:]), tree)


def _per_member(per_member: Iterable[str]) -> tuple[str, ...]:
    if isinstance(per_member, str):
        per_member = (per_member,)
    try:
        names = tuple(per_member)
    except TypeError:
        raise TypeError(f"per_member must be a tuple of names from {PER_MEMBER}, got {per_member!r}") from None
    unknown = [n for n in names if n not in PER_MEMBER]
    if unknown:
        raise ValueError(f"per_member must name arguments from {PER_MEMBER}, got {unknown}")
    return tuple(n for n in PER_MEMBER if n in names)


def _leading(tree: Any, name: str, members: int) -> None:
    """Every leaf of a per-member argument must have a leading axis of length M."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        shape = np.shape(leaf)
        if not shape or shape[0] != members:
            where = name + jax.tree_util.keystr(path)
            raise ValueError(
                f"{where} must have a leading member axis of length {members} (one per key), got shape {shape}"
            )


def _placed(tree: Any, name: str, per_member: bool, mesh: Mesh, member_axis: str, data_axis: str | None) -> None:
    """An argument already sharded in a way fit_many would undo (replicate) is an error."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if not isinstance(leaf, jax.Array) or isinstance(leaf, jax.core.Tracer):
            continue
        sharding = leaf.sharding
        if len(sharding.device_set) == 1 or sharding.is_fully_replicated:
            continue
        allowed = (member_axis,) if per_member else ()
        allowed += (data_axis,) if data_axis is not None else ()
        spec = sharding.spec if isinstance(sharding, NamedSharding) else None
        fits = (
            spec is not None
            and sharding.mesh.axis_names == mesh.axis_names
            and all(
                entry is None or (entry in allowed and (entry != member_axis or i == 0)) for i, entry in enumerate(spec)
            )
        )
        if not fits:
            fix = f"pass it unsharded, or sharded over {allowed} of the same mesh" if allowed else "pass it unsharded"
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)} is sharded as {sharding}, which fit_many would have to replicate "
                f"on every device: {fix}"
            )


def fit_many(
    trainer: Any,
    keys: PRNGKey,
    train: tuple[Any, ...],
    validation: tuple[Any, ...] | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    *,
    per_member: Iterable[str] = (),
    params: Any = None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    mesh: Mesh | None = None,
    member_axis: str = "members",
    data_axis: str | None = None,
    shuffle_key: PRNGKey | None = None,
    dtype: Any = None,
) -> tuple[Any, Any]:
    r"""Initialise and train M members in one compiled program; also :meth:`Trainer.fit_many <fnn.train.Trainer.fit_many>`.

    Member ``m`` is ``trainer.fit(trainer.init(keys[m], h_m, dtype=dtype), D_m, V_m, h_m)``
    where :math:`D_m`, :math:`V_m`, :math:`h_m` are ``train``, ``validation`` and
    ``hyperparams`` themselves, or their ``m``-th slice along a leading axis for the names in
    ``per_member``. The program compiles once per trainer, shapes and layout: a second call
    with new keys, data or hyperparameter values never retraces.

    Args:
      trainer: a :class:`fnn.train.Trainer`.
      keys: ``[M]`` PRNG keys, one per member (e.g. ``jax.random.split(key, M)``).
      train: ``(x, y)`` or ``(x, y, weights)``, shared, or ``[M, N, ...]`` per member.
      validation: the same for the validation set, or ``None``.
      hyperparams: a dict of the optimizer's and regularisers' values, shared, or with ``[M]``
        values per member (a hyperparameter sweep).
      per_member: the names among ``("train", "validation", "hyperparams")`` whose leaves
        carry a leading member axis.
      params: ``None``, or the members' initial parameters, every leaf ``[M, ...]``: they
        replace the ones ``init`` draws from the keys (paired draws across models, warm
        starts), while the keys still draw each run's shuffles, dropout and mixup. The
        optimizer's state is initialised as for the drawn parameters (fnn's optimizers
        depend only on their shapes).
      chunk_size: at most this many members per device at once (``None``: all of them);
        bounds the memory, see :func:`plan`.
      memory_budget: instead of ``chunk_size``, the bytes one device may use: the largest
        chunk whose program fits is chosen from XLA's memory analysis of the compiled program
        (arguments, outputs and temporaries) at chunks of 1 and 2, whose temporaries grow
        linearly in the chunk. It costs those two extra compilations.
      mesh: a :class:`jax.sharding.Mesh` with a ``member_axis`` (and ``data_axis``) to shard
        over; ``None`` is :func:`default_mesh`, every local device. Under
        ``jax.distributed``, pass a mesh over the global devices.
      member_axis: the mesh axis the members are sharded over.
      data_axis: a mesh axis to split every member's minibatches over too, or ``None``.
      shuffle_key: one PRNG key shared by all members' minibatch orders (see the module
        docstring for what it trades), or ``None`` for each member's own order.
      dtype: the parameters' dtype; ``None`` is the trainer's ``dtype``, or float32 (see
        :meth:`Trainer.param_dtype <fnn.train.Trainer.param_dtype>`).

    With the trainer's ``progress``, the members of each chunk show as one line per
    reporting interval (labelled with the chunk), summarised over the real members.

    Returns:
      ``(states, histories)``: a :class:`~fnn.train.TrainState` and a
      :class:`~fnn.train.History` with a leading ``[M]`` axis on every leaf. Called eagerly, a
      member's non-finite loss or gradient raises ``FloatingPointError`` naming the member,
      epoch and step.

    >>> import fnn
    >>> x, y = fnn.data.blobs(jax.random.key(0), 40, centers=3)
    >>> trainer = fnn.train.Trainer(fnn.MLP((2, 8, 3)), "cross_entropy", "adam", epochs=20)
    >>> rates = {"learning_rate": jnp.array([0.3, 0.1, 0.03, 0.01, 0.003])}
    >>> states, history = fit_many(trainer, jax.random.split(jax.random.key(1), 5), (x, y), (x, y), rates,
    ...                            per_member=("hyperparams",), chunk_size=2)
    >>> history.val_accuracy.shape
    (5, 20)
    """
    keys = _checks.key_batch(keys, "keys")
    members = keys.shape[0]
    per_member = _per_member(per_member)
    dtype = trainer.param_dtype(dtype)
    hyperparams = {} if hyperparams is None else dict(hyperparams)
    arguments = {"train": train, "validation": validation, "hyperparams": hyperparams}
    for name in ("train", "validation"):
        value = arguments[name]
        if value is not None and (not isinstance(value, (tuple, list)) or len(value) not in (2, 3)):
            raise TypeError(f"{name} must be a tuple (x, y) or (x, y, weights), got {type(value).__name__}")
        arguments[name] = None if value is None else tuple(value)
    for name in per_member:
        if arguments[name] is None:
            raise ValueError(f"per_member names {name!r}, but {name} is None")
        _leading(arguments[name], name, members)
    mesh = default_mesh() if mesh is None else mesh
    devices = _checks.mesh_axis(mesh, member_axis, "member_axis")
    if data_axis is not None:
        _checks.mesh_axis(mesh, data_axis, "data_axis")
        if data_axis == member_axis:
            raise ValueError(f"data_axis and member_axis must be different mesh axes, got {data_axis!r} for both")
    for name, value in arguments.items():
        _placed(value, name, name in per_member, mesh, member_axis, data_axis)
    if shuffle_key is not None:
        shuffle_key = _checks.single_key(shuffle_key, "shuffle_key")
    if params is not None:
        _initial_params(trainer, params, members, dtype)
    data = (arguments["train"], arguments["validation"], hyperparams, shuffle_key)

    def run(layout: Plan, program: Any = _fit_many) -> Any:
        states = _init_many(trainer, layout, per_member, mesh, member_axis, jnp.dtype(dtype), keys, hyperparams, params)
        return program(trainer, layout, per_member, mesh, member_axis, data_axis, states, *data)

    if memory_budget is not None:
        if chunk_size is not None:
            raise ValueError("give chunk_size or memory_budget, not both")
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((keys, data))):
            raise ValueError("memory_budget compiles the program to measure it: call fit_many outside jax.jit and vmap")
        chunk_size = _chunk_for(memory_budget, members, devices, lambda layout: run(layout, _fit_many.lower))
    states, histories = run(plan(members, devices, chunk_size))
    if _checks.is_concrete(histories.nonfinite_epoch):
        checking.raise_if_nonfinite(histories)
    return states, histories


def _chunk_for(budget: Any, members: int, devices: int, lower: Any) -> int:
    """The largest chunk whose training program, ``lower(layout)``, needs at most ``budget`` bytes per device."""
    budget = _checks.positive_int(budget, "memory_budget")

    def needs(chunk: int) -> tuple[int, int]:
        stats = lower(plan(members, devices, chunk)).compile().memory_analysis()
        return stats.argument_size_in_bytes + stats.output_size_in_bytes, stats.temp_size_in_bytes

    per_device = plan(members, devices).chunk
    fixed, one = needs(1)
    if fixed + one > budget:
        raise ValueError(
            f"memory_budget of {budget} bytes is less than one member per device needs: {fixed + one} bytes "
            f"({fixed} for the arguments and results of all {members} members, {one} to train one at a time)"
        )
    if per_device == 1:
        return 1
    growth = max(needs(2)[1] - one, 1)
    return int(min(per_device, 1 + (budget - fixed - one) // growth))


def _initial_params(trainer: Any, params: Any, members: int, dtype: Any) -> None:
    """Given initial parameters must be the model's, with a leading member axis, else a clear error."""
    _leading(params, "params", members)
    drawn = jax.eval_shape(lambda: trainer.model.init(jax.random.key(0), dtype=dtype)[0])
    given = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a)[1:], jnp.result_type(a)), params)
    if jax.tree.structure(given) != jax.tree.structure(drawn) or jax.tree.leaves(given) != jax.tree.leaves(drawn):
        raise ValueError(
            f"params must be {type(trainer.model).__name__} parameters of dtype {jnp.dtype(dtype)} with a leading member "
            f"axis: one member's leaves should be {jax.tree.leaves(drawn)}, got {jax.tree.leaves(given)}"
        )


def _pad(tree: Any, padded: int) -> Any:
    """Each leaf ``[M, ...]`` extended to ``[P, ...]`` by repeating member 0."""

    def pad(leaf):
        extra = padded - leaf.shape[0]
        if extra == 0:
            return leaf
        return jnp.concatenate([leaf, jnp.broadcast_to(leaf[:1], (extra, *leaf.shape[1:]))])

    return jax.tree.map(pad, tree)


def _to_chunks(tree: Any, layout: Plan) -> Any:
    """``[P, ...]`` in device-major order to ``[n, D c, ...]``: chunk ``i`` holds ``c`` members of each device."""
    d, n, c = layout.devices, layout.chunks, layout.chunk
    return jax.tree.map(lambda a: a.reshape(d, n, c, *a.shape[1:]).swapaxes(0, 1).reshape(n, d * c, *a.shape[1:]), tree)


def _from_chunks(tree: Any, layout: Plan) -> Any:
    """The inverse of :func:`_to_chunks`, without the padding: ``[M, ...]``."""
    d, n, c = layout.devices, layout.chunks, layout.chunk
    return jax.tree.map(
        lambda a: a.reshape(n, d, c, *a.shape[2:]).swapaxes(0, 1).reshape(d * n * c, *a.shape[2:])[: layout.members],
        tree,
    )


def _laid_out(tree: Any, layout: Plan, mesh: Mesh, member_axis: str) -> Any:
    """Padded per-member arguments ``[P, ...]`` laid out as chunks ``[n, D c, ...]`` over the devices."""
    chunks = _to_chunks(tree, layout)
    if layout.devices == 1:
        return chunks
    spec = NamedSharding(mesh, PartitionSpec(None, member_axis))
    return jax.lax.with_sharding_constraint(chunks, jax.tree.map(lambda _: spec, chunks))


def _over_chunks(one: Any, chunks: Any, layout: Plan, member_axis: str) -> Any:
    """``one`` of a member, vmapped over each chunk's members (sharded) and mapped over the chunks."""
    return jax.lax.map(jax.vmap(one, spmd_axis_name=member_axis if layout.devices > 1 else None), chunks)


# The members' initialisation is a program of its own, a sequential lax.map of one member's
# init: a vmapped init, alone or fused into the training program, compiles about twice as long
# (each random draw of each shape is its own code), and initialising costs little to run.
@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _init_many(trainer, layout, per_member, mesh, member_axis, dtype, keys, hyperparams, params):
    """The members' initial states, in the chunk layout ``[n, D c, ...]`` that :func:`_fit_many` takes."""
    mapped = {"keys": keys, "hyperparams": hyperparams} if "hyperparams" in per_member else {"keys": keys}
    if params is not None:
        mapped["params"] = params

    def one(member):
        state = trainer.init(member["keys"], member.get("hyperparams", hyperparams), dtype=dtype)
        return state if params is None else state._replace(params=member["params"])

    states = jax.lax.map(one, _pad(mapped, layout.padded))
    return _laid_out(states, layout, mesh, member_axis)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _fit_many(
    trainer, layout, per_member, mesh, member_axis, data_axis, states, train, validation, hyperparams, shuffle_key
):
    """Train the members from their chunked ``states``; the results ``[M, ...]``, without the padding."""
    shared = {"train": train, "validation": validation, "hyperparams": hyperparams}
    mapped = {name: value for name, value in shared.items() if name in per_member}
    chunks = {"state": states, **_laid_out(_pad(mapped, layout.padded), layout, mesh, member_axis)}
    if trainer.progress:
        # Member p of the padded, device-major order sits in chunk (p // c) % n; the last P - M are padding.
        member = jnp.arange(layout.padded)
        where = {"chunk": (member // layout.chunk) % layout.chunks, "real": member < layout.members}
        chunks["progress"] = _laid_out(where, layout, mesh, member_axis)

    def one(member):
        args = {**shared, **member}
        progress = member.get("progress")
        sharded = layout.devices > 1 or data_axis is not None
        chunk = None
        if progress is not None:
            chunk = _progress.Chunk(progress["chunk"], layout.chunks, progress["real"], mesh if sharded else None)
        # Every fresh state is at epoch 0: a constant, not a member's own, keeps a shared
        # minibatch order (shuffle_key) one array for all members.
        state = args["state"]._replace(epoch=jnp.zeros((), jnp.int32))
        return trainer.fit(
            state,
            args["train"],
            args["validation"],
            args["hyperparams"],
            shuffle_key=shuffle_key,
            mesh=mesh if data_axis is not None else None,
            data_axis=data_axis,
            chunk=chunk,
        )

    return _from_chunks(_over_chunks(one, chunks, layout, member_axis), layout)
