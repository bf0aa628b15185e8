"""Child process of tests/test_sharded.py: fit_many and data-parallel fit on forced CPU devices.

Run with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``; prints one JSON object, the
largest parameter and history difference of each sharded layout from the one-device runs.
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn.train import many

M = 7  # divisible by none of the device counts


def _difference(a, b):
    """The largest absolute difference of two trees; NaN against NaN counts 0, against a number inf."""
    worst = 0.0
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        gap = np.where(np.isnan(u) & np.isnan(v), 0.0, np.abs(u - v))
        worst = max(worst, float(np.max(np.where(np.isnan(gap), np.inf, gap))))
    return worst


def _mesh(shape, names):
    return jax.sharding.Mesh(np.asarray(jax.devices()[: int(np.prod(shape))]).reshape(shape), names)


def _runs(trainer, data, keys, rates):
    """The one-device reference: each member's fit alone, as (params, model state, losses)."""

    def alone(m, **options):
        hp = {"learning_rate": rates[m]}
        state, history = trainer.fit(trainer.init(keys[m], hp, dtype=jnp.float64), data, data, hp, **options)
        return state.params, state.model_state, history.train_loss, history.val_loss, history.stop_epoch

    return alone


def _errors(trainer, data, keys, rates):
    """The messages of the bad inputs that need several devices."""
    errors = {}
    mesh = _mesh((2,), ("data",))
    odd = fnn.train.Trainer(trainer.model, trainer.loss, trainer.optimizer, epochs=1, batch_size=15)
    state = odd.init(keys[0], {"learning_rate": rates[0]}, dtype=jnp.float64)
    try:
        odd.fit(state, data, None, {"learning_rate": rates[0]}, mesh=mesh)
    except ValueError as e:
        errors["batch"] = str(e)
    rows = jax.device_put(data[0], jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data")))
    try:
        many.fit_many(
            trainer,
            keys,
            (rows, data[1]),
            None,
            {"learning_rate": rates},
            per_member="hyperparams",
            mesh=_mesh((2, 1), ("members", "data")),
        )
    except ValueError as e:
        errors["replicated"] = str(e)
    return errors


def main() -> None:
    # Here, not at import: pytest imports this file (doctest collection) in the test session.
    jax.config.update("jax_enable_x64", True)
    x, y = fnn.data.blobs(jax.random.key(0), 64, centers=3, std=1.5, dtype=jnp.float64)
    data = (x, y)
    keys = jax.random.split(jax.random.key(1), M)
    rates = jnp.linspace(0.01, 0.1, M)
    plain = fnn.train.Trainer(fnn.MLP((2, 8, 3), activation="tanh"), "cross_entropy", "adam", epochs=3, batch_size=16)
    # Batch norm makes the gradient of the bias before it zero up to rounding, which Adam's
    # normalisation would blow up to steps of the learning rate's size: SGD keeps rounding small.
    normed = fnn.train.Trainer(
        fnn.MLP((2, 8, 3), batch_norm=True),
        "cross_entropy",
        "sgd",
        epochs=12,
        batch_size=16,
        early_stopping=fnn.train.EarlyStopping(patience=1, min_delta=0.01),
    )
    results = {"devices": jax.device_count()}

    def sweep(trainer, mesh, **options):
        states, histories = many.fit_many(
            trainer,
            keys,
            data,
            data,
            {"learning_rate": rates},
            per_member="hyperparams",
            mesh=mesh,
            dtype=jnp.float64,
            **options,
        )
        return states.params, states.model_state, histories.train_loss, histories.val_loss, histories.stop_epoch

    alone = _runs(plain, data, keys, rates)
    runs = [alone(m) for m in range(M)]
    reference = jax.tree.map(lambda *a: jnp.stack(a), *runs)
    for d in (2, 4, 8):
        mesh = _mesh((d,), ("members",))
        results[f"members={d}"] = _difference(sweep(plain, mesh), reference)
        results[f"members={d},chunk=1"] = _difference(sweep(plain, mesh, chunk_size=1), reference)
    results["default mesh"] = _difference(sweep(plain, None), reference)
    mesh = _mesh((2, 4), ("members", "data"))
    results["members=2,data=4"] = _difference(sweep(plain, mesh, data_axis="data"), reference)
    for d in (2, 8):
        results[f"data={d}"] = _difference(alone(0, mesh=_mesh((d,), ("data",))), runs[0])
    normed_alone = _runs(normed, data, keys, rates)
    reference = jax.tree.map(lambda *a: jnp.stack(a), *[normed_alone(m) for m in range(M)])
    normed_sweep = sweep(normed, _mesh((8,), ("members",)))
    results["batch norm, early stopping, members=8"] = _difference(normed_sweep, reference)
    results["stop epochs"] = np.asarray(normed_sweep[-1]).tolist()
    results["errors"] = _errors(plain, data, keys, rates)
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
