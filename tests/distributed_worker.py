"""One process of the multi-process test in tests/test_distributed.py (not a test module itself).

Usage::

    python tests/distributed_worker.py <process_id> <num_processes> <port> <out.npz>

With ``num_processes > 1`` the process joins a ``jax.distributed`` job on ``localhost:<port>``
(CPU collectives over gloo) with :data:`DEVICES_PER_PROCESS` CPU devices of its own, builds
meshes over every process's devices and runs, in float64,

* a sharded sweep: :func:`fnn.train.many.fit_many` of :data:`MEMBERS` members (not divisible
  by the global device count, so the last device holds padding) with one learning rate each,
  sharded over the mesh axis ``"members"``;
* a data-parallel run: :meth:`fnn.train.Trainer.fit` with every minibatch split over the mesh
  axis ``"data"``.

With ``num_processes == 1`` it skips ``jax.distributed``, has one CPU device and runs the same
two computations there, plus the sweep's members one by one with :meth:`Trainer.fit` (the
contract of ``fit_many``): the reference the test compares the distributed run with.

The results are global arrays that no single process holds whole; every process gathers them
with :func:`jax.experimental.multihost_utils.process_allgather` (a collective), and process 0
writes the parameters, as flattened leaves, to ``out.npz`` (via a temporary file and
``os.replace``, so a reader never sees half a file).
"""

import os
import sys

import jax

MEMBERS = 5
DEVICES_PER_PROCESS = 2
LEARNING_RATES = (0.3, 0.1, 0.03, 0.01, 0.003)
EPOCHS = 3
BATCH_SIZE = 16
EXAMPLES = 64


def main(process_id: int, num_processes: int, port: int, out: str) -> None:
    # Before anything touches a device: the backend reads these when it starts. (Here, not at
    # import: pytest's --doctest-modules imports this file into the test session.)
    distributed = num_processes > 1
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_num_cpu_devices", DEVICES_PER_PROCESS if distributed else 1)
    if distributed:
        jax.distributed.initialize(
            coordinator_address=f"localhost:{port}",
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=60,
        )

    import jax.numpy as jnp
    import numpy as np
    from jax.experimental import multihost_utils
    from jax.sharding import Mesh

    import fnn
    from fnn.train import many

    devices = jax.devices()
    expected = num_processes * DEVICES_PER_PROCESS if distributed else 1
    if jax.process_count() != num_processes or len(devices) != expected:
        raise RuntimeError(
            f"expected {num_processes} processes with {expected} devices in all, "
            f"got {jax.process_count()} processes and devices {devices}"
        )

    x, y = fnn.data.blobs(jax.random.key(0), EXAMPLES, centers=3, dtype=jnp.float64)
    trainer = fnn.train.Trainer(fnn.MLP((2, 8, 3)), "cross_entropy", "adam", epochs=EPOCHS, batch_size=BATCH_SIZE)
    keys = jax.random.split(jax.random.key(1), MEMBERS)
    rates = {"learning_rate": jnp.asarray(LEARNING_RATES, jnp.float64)}

    # (a) The sweep, members sharded over every process's devices.
    member_mesh = Mesh(np.asarray(devices), ("members",))
    sweep, sweep_history = many.fit_many(
        trainer,
        keys,
        (x, y),
        (x, y),
        rates,
        per_member=("hyperparams",),
        mesh=member_mesh,
        dtype=jnp.float64,
    )

    # (b) One run, every minibatch split over every process's devices.
    data_mesh = Mesh(np.asarray(devices), ("data",))
    hyperparams = {"learning_rate": jnp.asarray(0.05, jnp.float64)}
    start = trainer.init(jax.random.key(2), hyperparams, dtype=jnp.float64)
    parallel, parallel_history = trainer.fit(start, (x, y), (x, y), hyperparams, mesh=data_mesh)

    def gather(tree):
        # process_allgather replicates a global array on every process (tiled=True: no new
        # axis); an array one process holds whole is read as it is.
        def one(leaf):
            if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
                return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
            return np.asarray(leaf)

        return [one(leaf) for leaf in jax.tree.leaves(tree)]

    def processes(tree):
        """How many processes hold a part of the tree's arrays."""
        return len({d.process_index for leaf in jax.tree.leaves(tree) for d in leaf.sharding.device_set})

    results = {
        "process_count": np.asarray(jax.process_count()),
        "device_count": np.asarray(len(devices)),
        "sweep_processes": np.asarray(processes(sweep.params)),
        "parallel_processes": np.asarray(processes(parallel.params)),
    }
    for name, tree in (
        ("sweep", sweep.params),
        ("sweep_loss", sweep_history.train_loss),
        ("parallel", parallel.params),
        ("parallel_loss", parallel_history.train_loss),
        ("start", start.params),
    ):
        for i, leaf in enumerate(gather(tree)):
            results[f"{name}_{i}"] = leaf

    if not distributed:
        # The contract of fit_many: member m is trainer.fit(trainer.init(keys[m], h_m), ...).
        for m in range(MEMBERS):
            h = {"learning_rate": rates["learning_rate"][m]}
            state = trainer.init(keys[m], h, dtype=jnp.float64)
            state, _ = trainer.fit(state, (x, y), (x, y), h)
            for i, leaf in enumerate(gather(state.params)):
                results[f"loop{m}_{i}"] = leaf

    if jax.process_index() == 0:
        tmp = f"{out}.tmp.npz"  # np.savez appends .npz to a name without it
        np.savez(tmp, **results)
        os.replace(tmp, out)
    if distributed:
        # No process leaves (and so tears down the job) before process 0 has written.
        multihost_utils.sync_global_devices("fnn distributed_worker done")
        jax.distributed.shutdown()


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(f"usage: {sys.argv[0]} <process_id> <num_processes> <port> <out.npz>")
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
