"""fit_many: M members as one program equal M separate fits, plain, chunked and with per-member arguments.

The sharded layouts (2, 4 and 8 devices) and data parallelism need several devices, which a
process fixes when JAX starts: tests/test_sharded.py runs them in a child process.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_trees_close

import fnn
from fnn import train
from fnn.train import many

M = 5
HP = {"learning_rate": 0.05}


def _trainer(**options):
    options = {"epochs": 4, "batch_size": 16, **options}
    return train.Trainer(fnn.MLP((2, 6, 3), activation="tanh"), "cross_entropy", "adam", **options)


def _data(seed=0, n=40):
    return fnn.data.blobs(jax.random.key(seed), n, centers=3, std=1.5, dtype=jnp.float64)


def _keys(m=M):
    return jax.random.split(jax.random.key(7), m)


def _member(tree, m):
    return jax.tree.map(lambda a: a[m], tree)


def _alone(trainer, key, data, validation, hp, **options):
    return trainer.fit(trainer.init(key, hp, dtype=jnp.float64), data, validation, hp, **options)


def _fit_everything_per_member(trainer, train_sets, validation_sets, hp):
    """fit_many with every argument per member, in chunks of 2."""
    per_member = ("train", "validation", "hyperparams")
    return trainer.fit_many(
        _keys(), train_sets, validation_sets, hp, per_member=per_member, chunk_size=2, dtype=jnp.float64
    )


def _same_as_alone(trainer, out, runs):
    states, histories = out
    for m, (state, history) in enumerate(runs):
        assert_trees_close(_member(states, m), state, rtol=1e-12, atol=1e-12)
        assert_trees_close(_member(histories, m), history, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [2] + [pytest.param(c, marks=pytest.mark.slow) for c in (None, 1, 5, 9)])
def test_members_equal_separate_fits(chunk_size):
    trainer, data = _trainer(), _data()
    keys = _keys()
    out = many.fit_many(trainer, keys, data, data, HP, chunk_size=chunk_size, dtype=jnp.float64)
    assert out[1].train_loss.shape == (M, trainer.epochs)
    _same_as_alone(trainer, out, [_alone(trainer, keys[m], data, data, HP) for m in range(M)])


@pytest.mark.slow
def test_per_member_hyperparameters_and_data_sets():
    trainer = _trainer()
    sets = [_data(seed) for seed in range(M)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *sets)
    weights = jax.random.uniform(jax.random.key(3), (M, 40), jnp.float64)
    rates = jnp.linspace(0.01, 0.2, M)
    hp = {"learning_rate": rates, "l2": jnp.full(M, 1e-3)}
    train_sets = (*stacked, weights)
    out = _fit_everything_per_member(trainer, train_sets, stacked, hp)
    runs = [
        _alone(trainer, _keys()[m], (*sets[m], weights[m]), sets[m], {"learning_rate": rates[m], "l2": 1e-3})
        for m in range(M)
    ]
    _same_as_alone(trainer, out, runs)


def test_shared_minibatch_order():
    trainer, data = _trainer(), _data()
    shuffle = jax.random.key(11)
    out = many.fit_many(trainer, _keys(), data, data, HP, shuffle_key=shuffle, dtype=jnp.float64)
    runs = [_alone(trainer, _keys()[m], data, data, HP, shuffle_key=shuffle) for m in range(M)]
    _same_as_alone(trainer, out, runs)
    # and it is a different run from each member's own order
    own = many.fit_many(trainer, _keys(), data, data, HP, dtype=jnp.float64)
    assert not np.allclose(own[1].train_loss, out[1].train_loss)


@pytest.mark.slow
def test_early_stopping_and_batch_norm_members_keep_their_own():
    stopping = train.EarlyStopping(patience=2)
    model = fnn.MLP((2, 6, 3), batch_norm=True)
    # SGD: batch norm makes the gradient of the bias before it zero up to rounding, which Adam's
    # normalised steps would blow up to differences of 1e-10 between any two kernels' roundings.
    trainer = train.Trainer(model, "cross_entropy", "sgd", epochs=40, batch_size=8, early_stopping=stopping)
    sets = [_data(seed, n=24) for seed in range(M)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *sets)
    hp = {"learning_rate": jnp.geomspace(0.3, 0.01, M)}
    out = _fit_everything_per_member(trainer, stacked, stacked, hp)
    stops = np.asarray(out[1].stop_epoch).tolist()
    assert len(set(stops)) > 1, stops
    runs = [_alone(trainer, _keys()[m], sets[m], sets[m], {"learning_rate": hp["learning_rate"][m]}) for m in range(M)]
    _same_as_alone(trainer, out, runs)
    means = [np.asarray(jax.tree.leaves(_member(out[0].model_state, m))[0]) for m in range(M)]
    assert not np.allclose(means[0], means[1])  # each member's own batch statistics


@pytest.mark.slow
def test_float32_within_rounding():
    trainer = _trainer()
    x, y = _data()
    data = (x.astype(jnp.float32), y)
    keys = _keys()
    states, _ = many.fit_many(trainer, keys, data, None, HP, chunk_size=2)
    assert jax.tree.leaves(states.params)[0].dtype == jnp.float32
    for m in range(M):
        alone, _ = trainer.fit(trainer.init(keys[m], HP), data, None, HP)
        assert_trees_close(_member(states.params, m), alone.params, rtol=1e-5, atol=1e-6)


def test_second_call_with_new_values_does_not_retrace():
    trainer, data = _trainer(), _data()
    hp = {"learning_rate": jnp.full(M, 0.05)}
    many.fit_many(trainer, _keys(), data, None, hp, per_member="hyperparams", chunk_size=2, dtype=jnp.float64)
    before = many._init_many._cache_size(), many._fit_many._cache_size()
    other = jax.tree.map(lambda a: a + 1.0, _data(1))
    other = (other[0], _data(1)[1])
    many.fit_many(
        trainer,
        jax.random.split(jax.random.key(99), M),
        other,
        None,
        {"learning_rate": jnp.full(M, 0.01)},
        per_member="hyperparams",
        chunk_size=2,
        dtype=jnp.float64,
    )
    assert (many._init_many._cache_size(), many._fit_many._cache_size()) == before


def test_plan_pads_to_the_devices_and_chunks_evenly():
    assert many.plan(100, 2, 32) == many.Plan(100, 2, 25, 2)
    layout = many.plan(7, 4, 1)
    assert (layout.chunk, layout.chunks, layout.padded) == (1, 2, 8)
    for members in range(1, 40):
        for devices in (1, 2, 3, 8):
            for chunk in (None, 1, 4, 7):
                layout = many.plan(members, devices, chunk)
                assert members <= layout.padded < members + devices * layout.chunks
                assert chunk is None or layout.chunk <= chunk


@pytest.mark.slow
def test_memory_budget_chooses_the_largest_chunk_that_fits():
    trainer, data = _trainer(), _data()
    keys = jax.random.split(jax.random.key(2), 12)
    whole = many.fit_many(trainer, keys, data, None, HP, dtype=jnp.float64)
    layout, mesh, dtype = many.plan(12), many.default_mesh(), jnp.dtype("float64")
    states = many._init_many(trainer, layout, (), mesh, "members", dtype, keys, HP, None)
    lowered = many._fit_many.lower(trainer, layout, (), mesh, "members", None, states, data, None, HP, None)
    stats = lowered.compile().memory_analysis()
    everything = stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
    budget = everything * 2 // 3  # less than all twelve at once need
    out = many.fit_many(trainer, keys, data, None, HP, memory_budget=budget, dtype=jnp.float64)
    assert_trees_close(out, whole)
    with pytest.raises(ValueError, match="memory_budget of 1000 bytes is less than one member per device needs"):
        many.fit_many(trainer, keys, data, None, HP, memory_budget=1000, dtype=jnp.float64)
    with pytest.raises(ValueError, match="chunk_size or memory_budget, not both"):
        many.fit_many(trainer, keys, data, None, HP, memory_budget=budget, chunk_size=2)


def test_grid_and_reshape_members_round_trip_and_check_the_shape():
    keys, hp = many.grid(
        jax.random.split(jax.random.key(0), 2), {"learning_rate": jnp.array([1.0, 2.0, 3.0]), "l2": 0.5}
    )
    assert keys.shape == (6,) and hp["l2"].tolist() == [0.5] * 6
    assert many.reshape_members(hp, (3, 2))["learning_rate"].tolist() == [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    with pytest.raises(
        ValueError, match=r"reshape_members to \(4, 2\) needs a leading member axis of 8, got shape \(6,\)"
    ):
        many.reshape_members(hp, (4, 2))
    with pytest.raises(ValueError, match="hyperparams entries must share one leading axis"):
        many.grid(keys, {"learning_rate": jnp.ones(3), "l2": jnp.ones(2)})


def test_nonfinite_member_is_named():
    trainer, data = _trainer(), _data()
    hp = {"learning_rate": jnp.array([0.05, 0.05, jnp.inf, 0.05, 0.05])}
    with pytest.raises(FloatingPointError, match="1 of 5 runs"):
        many.fit_many(trainer, _keys(), data, None, hp, per_member="hyperparams", dtype=jnp.float64)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"keys": jax.random.key(0)}, ValueError, "keys must be a batch of PRNG keys"),
        (
            {"per_member": ("hyperparams",)},
            ValueError,
            r"hyperparams\['learning_rate'\] must have a leading member axis of length 5",
        ),
        ({"per_member": ("train",)}, ValueError, r"train\[0\] must have a leading member axis of length 5"),
        (
            {"per_member": ("validation",), "validation": None},
            ValueError,
            "per_member names 'validation', but validation is None",
        ),
        ({"per_member": ("weights",)}, ValueError, "per_member must name arguments from"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be a positive integer, got 0"),
        ({"member_axis": "seeds"}, ValueError, "member_axis 'seeds' is not an axis of the mesh"),
        ({"data_axis": "data"}, ValueError, "data_axis 'data' is not an axis of the mesh"),
        ({"mesh": "cpu"}, TypeError, "mesh must be a jax.sharding.Mesh"),
        ({"train": [1, 2, 3, 4]}, TypeError, r"train must be a tuple \(x, y\)"),
        ({"shuffle_key": jax.random.split(jax.random.key(0), 2)}, ValueError, "shuffle_key must be a single PRNG key"),
    ],
)
def test_bad_input(change, error, match):
    data = _data()
    per_member = change.get("per_member", ())
    args = {
        "keys": _keys(),
        "train": data,
        "validation": data,
        # three rates for five keys: the leading axes disagree
        "hyperparams": {"learning_rate": jnp.ones(3)} if "hyperparams" in per_member else HP,
        **change,
    }
    with pytest.raises(error, match=match):
        many.fit_many(_trainer(), **args)


def test_data_parallel_bad_input():
    trainer, data = _trainer(batch_size=15), _data()
    state = trainer.init(jax.random.key(0), HP, dtype=jnp.float64)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("rows",))
    with pytest.raises(ValueError, match="data_axis 'data' is not an axis of the mesh"):
        trainer.fit(state, data, None, HP, mesh=mesh)
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
        trainer.fit(state, data, None, HP, mesh="cpu")


@pytest.mark.slow
def test_given_initial_parameters_replace_the_drawn_ones():
    # SGD: Adam's normalised steps would blow the rounding of batched kernels up past 1e-12
    trainer = train.Trainer(fnn.MLP((2, 6, 3), activation="tanh"), "cross_entropy", "sgd", epochs=4, batch_size=16)
    data = _data()
    keys = _keys()
    params = jax.vmap(lambda k: trainer.model.init(k, dtype=jnp.float64)[0])(jax.random.split(jax.random.key(5), M))
    states, _ = many.fit_many(trainer, keys, data, None, HP, params=params, dtype=jnp.float64)
    for m in range(M):
        start = trainer.init(keys[m], HP, dtype=jnp.float64)._replace(params=_member(params, m))
        alone, _ = trainer.fit(start, data, None, HP)
        assert_trees_close(_member(states.params, m), alone.params)
    with pytest.raises(ValueError, match=r"params must be MLP parameters of dtype float64 with a leading member axis"):
        many.fit_many(
            trainer, keys, data, None, HP, params=jax.tree.map(lambda a: a[..., :1], params), dtype=jnp.float64
        )
    with pytest.raises(ValueError, match=r"params\[0\]\['W'\] must have a leading member axis of length 5"):
        many.fit_many(trainer, keys, data, None, HP, params=_member(params, 0), dtype=jnp.float64)
