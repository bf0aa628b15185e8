"""Tests of fnn.train: the compiled training run."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn
from fnn import checking, train
from tests.helpers import assert_trees_close

SIZES = (3, 6, 2)


def _data(key, n=37, d=3, classes=2, dtype=jnp.float64):
    kx, kw = jax.random.split(key)
    x = jax.random.normal(kx, (n, d), dtype)
    w = jax.random.normal(kw, (d, classes), dtype)
    return x, jnp.argmax(x @ w, axis=1).astype(jnp.int32)


def _trainer(**kw):
    defaults = dict(
        model=fnn.MLP(SIZES, activation="tanh"), loss="cross_entropy", optimizer="sgd", epochs=5, batch_size=8
    )
    return train.Trainer(**{**defaults, **kw})


HP = {"learning_rate": 0.1}


def _loop(trainer, state, x, y, hp):
    """The same run as Trainer.fit, written as a plain Python loop of single steps."""
    n = x.shape[0]
    batch, full, rest = trainer._batches(n)
    steps = full + (1 if rest else 0)
    optimizer = trainer._optimizer(hp, trainer.epochs * steps)
    losses = []
    for _ in range(trainer.epochs):
        epoch_key = jax.random.fold_in(state.key, state.epoch)
        shuffle = trainer.shuffle and batch < n
        order = jax.random.permutation(jax.random.fold_in(epoch_key, 0), n) if shuffle else jnp.arange(n)
        keys = jax.random.split(jax.random.fold_in(epoch_key, 1), steps)
        epoch_losses = []
        for s in range(steps):
            idx = order[s * batch : (s + 1) * batch] if s < full else order[full * batch :]
            params, model_state, opt_state, _, loss = trainer._update(
                optimizer, {}, state, x[idx], y[idx], None, keys[s]
            )
            state = state._replace(params=params, model_state=model_state, opt_state=opt_state)
            epoch_losses.append(loss)
        losses.append(np.mean(epoch_losses))
        state = state._replace(epoch=state.epoch + 1)
    return state, np.array(losses)


def _close(a, b, rtol=1e-6, atol=1e-9):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


@pytest.mark.slow
@pytest.mark.parametrize("ragged", ["drop", "keep"])
@pytest.mark.parametrize("batch_size", [1, 8, None])
def test_fit_equals_python_loop(key, ragged, batch_size):
    x, y = _data(key)
    trainer = _trainer(ragged=ragged, batch_size=batch_size, epochs=3)
    state = trainer.init(jax.random.key(1), HP, dtype=jnp.float64)
    fitted, history = trainer.fit(state, (x, y), None, HP)
    looped, losses = _loop(trainer, state, x, y, HP)
    _close(fitted.params, looped.params, rtol=1e-10)
    np.testing.assert_allclose(history.train_loss, losses, rtol=1e-10)
    assert int(fitted.epoch) == 3


def test_batches_per_epoch():
    trainer = _trainer(batch_size=8)
    assert trainer._batches(37) == (8, 4, 0)
    assert _trainer(batch_size=8, ragged="keep")._batches(37) == (8, 4, 5)
    assert _trainer(batch_size=None)._batches(37) == (37, 1, 0)
    assert _trainer(batch_size=100)._batches(37) == (37, 1, 0)


def test_zero_epochs_returns_inputs_unchanged(key):
    x, y = _data(key)
    trainer = _trainer(epochs=0)
    state = trainer.init(jax.random.key(1), HP, dtype=jnp.float64)
    fitted, history = trainer.fit(state, (x, y), (x, y), HP)
    _close(fitted._replace(key=None), state._replace(key=None), rtol=0, atol=0)
    np.testing.assert_array_equal(jax.random.key_data(fitted.key), jax.random.key_data(state.key))
    assert history.train_loss.shape == (0,)


@pytest.mark.slow
def test_backprop_and_autodiff_give_the_same_run(key):
    x, y = _data(key)
    runs = []
    for gradient in ("autodiff", "backprop"):
        trainer = _trainer(gradient=gradient, optimizer="adam", epochs=4)
        state = trainer.init(jax.random.key(1), {"learning_rate": 1e-2}, dtype=jnp.float64)
        runs.append(trainer.fit(state, (x, y), (x, y), {"learning_rate": 1e-2}))
    _close(runs[0][0].params, runs[1][0].params, rtol=1e-10)
    np.testing.assert_allclose(runs[0][1].val_loss, runs[1][1].val_loss, rtol=1e-10)


@pytest.mark.slow
def test_vmap_over_keys_equals_loop_and_compiles_once(key):
    x, y = _data(key)
    trainer = _trainer(epochs=3)
    traces = []

    def run(k, lr):
        traces.append(1)
        hp = {"learning_rate": lr}
        return trainer.fit(trainer.init(k, hp, dtype=jnp.float64), (x, y), (x, y), hp)

    keys = jax.random.split(jax.random.key(2), 4)
    lrs = jnp.array([0.05, 0.1, 0.2, 0.4])
    batched = jax.jit(jax.vmap(run))
    states, histories = batched(keys, lrs)
    batched(keys, lrs * 0.5)  # other values: no retrace
    assert len(traces) == 1
    for i in range(4):
        single_state, single_history = run(keys[i], lrs[i])
        _close(jax.tree.map(lambda a: a[i], states.params), single_state.params, rtol=1e-10)
        np.testing.assert_allclose(histories.val_loss[i], single_history.val_loss, rtol=1e-10)


@pytest.mark.slow
def test_vmap_over_datasets(key):
    trainer = _trainer(epochs=2)
    datasets = [_data(k) for k in jax.random.split(key, 3)]
    xs, ys = jnp.stack([d[0] for d in datasets]), jnp.stack([d[1] for d in datasets])
    state = trainer.init(jax.random.key(1), HP, dtype=jnp.float64)
    states, _ = jax.vmap(lambda x, y: trainer.fit(state, (x, y), None, HP))(xs, ys)
    for i, (x, y) in enumerate(datasets):
        single, _ = trainer.fit(state, (x, y), None, HP)
        _close(jax.tree.map(lambda a: a[i], states.params), single.params, rtol=1e-10)


def test_second_fit_call_does_not_retrace(key):
    x, y = _data(key)
    trainer = _trainer(epochs=2)
    state = trainer.init(jax.random.key(1), HP, dtype=jnp.float64)
    trainer.fit(state, (x, y), (x, y), HP)
    before = train.trainer._fit._cache_size()
    trainer.fit(state, (x, y), (x, y), {"learning_rate": 0.3})
    _trainer(epochs=2).fit(state, (x + 1, y), (x, y), HP)  # an equal trainer, other data values
    assert train.trainer._fit._cache_size() == before


@pytest.mark.slow
def test_nonfinite_is_reported_with_epoch_and_step(key):
    x, y = _data(key, n=32)
    trainer = _trainer(epochs=4, batch_size=8, shuffle=False, loss="mse", model=fnn.MLP((3, 4, 1)))
    targets = jnp.ones((32, 1)).at[19].set(jnp.nan)  # example 19 sits in batch 2 of every epoch
    state = trainer.init(jax.random.key(1), HP, dtype=jnp.float64)
    with pytest.raises(FloatingPointError, match="epoch 0, step 2"):
        trainer.fit(state, (x, targets), None, HP)
    # Under a transformation the run records it and stops updating at that step.
    fitted, history = jax.jit(lambda s: trainer.fit(s, (x, targets), None, HP))(state)
    assert (int(history.nonfinite_epoch), int(history.nonfinite_step)) == (0, 2)
    assert all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree.leaves(fitted.params))
    two_steps = trainer._optimizer(HP, None)
    expected = state
    for s in range(2):
        idx = jnp.arange(s * 8, (s + 1) * 8)
        params, _, opt_state, _, _ = trainer._update(two_steps, {}, expected, x[idx], targets[idx], None, None)
        expected = expected._replace(params=params, opt_state=opt_state)
    _close(fitted.params, expected.params, rtol=1e-12)


@pytest.mark.slow
def test_accuracy_and_validation_history(key):
    x, y = _data(key, n=64)
    trainer = _trainer(epochs=30, optimizer="adam", batch_size=16)
    hp = {"learning_rate": 0.05}
    state = trainer.init(jax.random.key(1), hp, dtype=jnp.float64)
    _, history = trainer.fit(state, (x, y), (x, y), hp)
    assert history.val_accuracy.shape == (30,)
    assert float(history.val_accuracy[-1]) > 0.9
    assert float(history.val_loss[-1]) < float(history.val_loss[0])
    _, no_val = trainer.fit(state, (x, y), None, hp)
    assert bool(jnp.all(jnp.isnan(no_val.val_loss)))


def test_regression_has_no_accuracy(key):
    x, _ = _data(key)
    y = jnp.sum(x, axis=1, keepdims=True)
    trainer = _trainer(model=fnn.MLP((3, 1)), loss="mse", epochs=2)
    state = trainer.init(jax.random.key(1), HP, dtype=jnp.float64)
    _, history = trainer.fit(state, (x, y), (x, y), HP)
    assert bool(jnp.all(jnp.isnan(history.val_accuracy)))
    assert bool(jnp.all(jnp.isfinite(history.val_loss)))


def test_resume_is_bit_identical(key):
    x, y = _data(key)
    hp = {"learning_rate": 1e-2}
    whole = _trainer(epochs=6, optimizer="adam")
    state = whole.init(jax.random.key(1), hp, dtype=jnp.float64)
    straight, _ = whole.fit(state, (x, y), None, hp)
    half = _trainer(epochs=3, optimizer="adam")
    middle, _ = half.fit(state, (x, y), None, hp)
    resumed, _ = half.fit(middle, (x, y), None, hp)
    for a, b in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(resumed.epoch) == 6


def test_progress_lines(key, capfd, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # plain lines, whether tqdm is installed or not
    x, y = _data(key)
    trainer = _trainer(epochs=4, progress=2)
    state = trainer.init(jax.random.key(1), HP, dtype=jnp.float64)
    trainer.fit(state, (x, y), (x, y), HP)
    jax.effects_barrier()
    out = capfd.readouterr().out
    assert "epoch 2/4" in out and "epoch 4/4" in out and "epoch 1/4" not in out
    assert "val acc" in out


def test_optimizer_state_is_optax_and_step_works(key):
    x, y = _data(key)
    trainer = _trainer(optimizer="adam")
    state = trainer.init(jax.random.key(1), HP, dtype=jnp.float64)
    new_state, loss = jax.jit(lambda s: trainer.step(s, x[:8], y[:8], HP))(state)
    assert loss.shape == ()
    assert jax.tree.structure(new_state.opt_state) == jax.tree.structure(state.opt_state)
    assert isinstance(optax.tree_utils.tree_get(new_state.opt_state, "count"), jax.Array)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(epochs=-1), ValueError),
        (dict(epochs=2.5), ValueError),
        (dict(batch_size=0), ValueError),
        (dict(batch_size=2.5), TypeError),
        (dict(ragged="pad"), ValueError),
        (dict(gradient="numeric"), ValueError),
        (dict(optimizer="adamax"), ValueError),
        (dict(loss="hinge"), ValueError),
        (dict(progress=-1), ValueError),
        (dict(model=object()), TypeError),
    ],
)
def test_invalid_configuration(kwargs, error):
    with pytest.raises(error):
        _trainer(**kwargs)


def test_mismatched_data(key):
    x, y = _data(key)
    trainer = _trainer()
    state = trainer.init(jax.random.key(1), HP, dtype=jnp.float64)
    with pytest.raises(ValueError, match="share their first axis"):
        trainer.fit(state, (x, y[:-1]), None, HP)
    with pytest.raises(ValueError, match="validation"):
        trainer.fit(state, (x, y), (x, y[:-1]), HP)


@pytest.mark.slow
def test_schedule_applies_over_the_run(key):
    x, y = _data(key, n=16)
    trainer = _trainer(epochs=4, batch_size=None, optimizer="sgd", schedule=fnn.schedules.classic_step_decay)
    state = trainer.init(jax.random.key(1), HP, dtype=jnp.float64)
    fitted, _ = trainer.fit(state, (x, y), None, HP)
    # Four full-batch steps with rates 0.1, 0.1, 0.01, 0.001.
    expected = state
    for lr in (0.1, 0.1, 0.01, 0.001):
        opt = optax.sgd(lr)
        params, _, _, _, _ = trainer._update(
            opt, {}, expected._replace(opt_state=opt.init(expected.params)), x, y, None, None
        )
        expected = expected._replace(params=params)
    _close(fitted.params, expected.params, rtol=1e-12)


@pytest.mark.slow
def test_resume_from_a_checkpoint_file_is_bit_identical(key, tmp_path):
    x, y = _data(key)
    hp = {"learning_rate": 1e-2}
    straight, _ = _trainer(epochs=6, optimizer="adam").fit(
        _trainer(optimizer="adam").init(jax.random.key(1), hp, dtype=jnp.float64), (x, y), None, hp
    )
    half = _trainer(epochs=3, optimizer="adam")
    middle, _ = half.fit(half.init(jax.random.key(1), hp, dtype=jnp.float64), (x, y), None, hp)
    fnn.checkpoint.save(tmp_path / "run.ckpt", middle)
    template = half.init(jax.random.key(99), hp, dtype=jnp.float64)  # same structure, other values
    restored = fnn.checkpoint.restore(tmp_path / "run.ckpt", template)
    resumed, _ = half.fit(restored, (x, y), None, hp)
    for a, b in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(jax.tree.leaves(straight.opt_state), jax.tree.leaves(resumed.opt_state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(resumed.epoch) == 6


@pytest.mark.slow
def test_shared_shuffle_key_under_vmap_equals_sequential_fits(key):
    x, y = _data(key)
    trainer = _trainer(epochs=3, optimizer="adam")
    hp = {"learning_rate": 1e-2}
    order_key = jax.random.key(7)

    def run(k):
        return trainer.fit(trainer.init(k, hp, dtype=jnp.float64), (x, y), None, hp, shuffle_key=order_key)[0]

    keys = jax.random.split(jax.random.key(2), 3)
    states = jax.jit(jax.vmap(run))(keys)  # shuffle_key unmapped: one order shared by all members
    for i in range(3):
        _close(jax.tree.map(lambda a: a[i], states.params), run(keys[i]).params, rtol=1e-10)
    # The order is the shuffle key's alone: epoch e steps through permutation(fold_in(shuffle_key, e)).
    expected = trainer.init(keys[1], hp, dtype=jnp.float64)
    batch, full, _ = trainer._batches(x.shape[0])
    for e in range(trainer.epochs):
        order = jax.random.permutation(jax.random.fold_in(order_key, e), x.shape[0])
        for s in range(full):
            idx = order[s * batch : (s + 1) * batch]
            expected, _ = trainer.step(expected, x[idx], y[idx], hp)
    _close(jax.tree.map(lambda a: a[1], states.params), expected.params, rtol=1e-10)
    for bad in (jnp.zeros(3), jax.random.split(order_key, 2)):
        with pytest.raises(ValueError, match="shuffle_key must be a single PRNG key"):
            trainer.fit(trainer.init(keys[0], hp), (x, y), None, hp, shuffle_key=bad)


def test_raise_if_nonfinite_names_the_first_bad_member_of_a_batch():
    history = train.History(
        *(jnp.zeros((2, 3, 4)),) * 3, jnp.array([[-1, -1, 2], [1, -1, -1]]), jnp.array([[-1, -1, 5], [0, -1, -1]])
    )
    with pytest.raises(FloatingPointError, match=r"in 2 of 6 runs \(first: member \(0, 2\), epoch 2, step 5\)"):
        checking.raise_if_nonfinite(history)
    checking.raise_if_nonfinite(history._replace(nonfinite_epoch=jnp.full((2, 3), -1)))


@pytest.mark.slow
def test_an_optax_factory_trains_like_the_named_optimizer(key):
    """Trainer(optimizer=optax.sgd) runs the same steps as optimizer="sgd" (fnn's sgd is optax's)."""
    x, y = _data(key)
    named, factory = _trainer(), _trainer(optimizer=optax.sgd)
    s_named, h_named = named.fit(named.init(key, HP, dtype=jnp.float64), (x, y), (x, y), HP)
    s_fact, h_fact = factory.fit(factory.init(key, HP, dtype=jnp.float64), (x, y), (x, y), HP)
    assert_trees_close(s_fact.params, s_named.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_fact.train_loss, h_named.train_loss, rtol=1e-12)
    # Any optax optimizer, with its own hyperparameters, and regularisers taken out first.
    lion = _trainer(optimizer=optax.lion)
    hp = {"learning_rate": 1e-3, "b1": 0.8, "l2": 1e-3, "weight_decay": 1e-2}
    state, history = lion.fit(lion.init(key, hp, dtype=jnp.float64), (x, y), (x, y), hp)
    assert np.all(np.isfinite(history.train_loss)) and int(state.epoch) == lion.epochs


def test_an_optax_factory_is_checked(key):
    class Unhashable:
        __hash__ = None

        def __call__(self, **kw):
            return optax.sgd(**kw)

    with pytest.raises(TypeError, match="optimizer must be hashable"):
        _trainer(optimizer=Unhashable())
    with pytest.raises(TypeError, match="optimizer must be an optimizer name or a factory"):
        _trainer(optimizer=3)
    x, y = _data(key)
    with pytest.raises(TypeError, match="does not take the hyperparameters"):
        t = _trainer(optimizer=optax.sgd)
        t.fit(t.init(key, {"learning_rate": 0.1, "beta": 1.0}), (x, y), None, {"learning_rate": 0.1, "beta": 1.0})
    with pytest.raises(TypeError, match="must return an optax.GradientTransformation"):
        t = _trainer(optimizer=dict)
        t.init(key, HP)
    with pytest.raises(ValueError, match="weight_decay with an optimizer factory needs"):
        t = _trainer(optimizer=optax.adam)
        t.init(key, {"weight_decay": 0.1})


@pytest.mark.slow
def test_one_precision_switch_equals_casting_everything_by_hand(key):
    x, y = _data(key, n=16)
    x32 = x.astype(jnp.float32)
    switched = _trainer(epochs=2, dtype=jnp.float64)
    state = switched.init(jax.random.key(1), {"learning_rate": 0.1})  # no dtype= here
    fitted, history = switched.fit(state, (x32, y), (x32, y), {"learning_rate": 0.1})
    assert {leaf.dtype for leaf in jax.tree.leaves(fitted.params)} == {jnp.dtype(jnp.float64)}
    assert history.train_loss.dtype == history.val_loss.dtype == jnp.float64
    by_hand = _trainer(epochs=2)
    hp = {"learning_rate": jnp.asarray(0.1, jnp.float64)}
    x64 = x32.astype(jnp.float64)
    expected, expected_history = by_hand.fit(
        by_hand.init(jax.random.key(1), hp, dtype=jnp.float64), (x64, y), (x64, y), hp
    )
    for a, b in zip(jax.tree.leaves((fitted.params, history)), jax.tree.leaves((expected.params, expected_history))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    loss, _ = switched.evaluate(fitted.params, fitted.model_state, x32, y)
    assert loss.dtype == jnp.float64


def test_precision_switch_errors():
    with pytest.raises(TypeError, match="float dtype"):
        _trainer(dtype=jnp.int32)
    with pytest.raises(ValueError, match="total_epochs"):
        _trainer(epochs=5, total_epochs=4)
    switched = _trainer(dtype=jnp.float64)
    with pytest.raises(ValueError, match="contradicts"):
        switched.init(jax.random.key(1), HP, dtype=jnp.float32)
    x, y = _data(jax.random.key(0), n=8)
    state32 = _trainer().init(jax.random.key(1), HP)
    with pytest.raises(ValueError, match="state's parameters are float32"):
        switched.fit(state32, (x, y), None, HP)
    with jax.enable_x64(False), pytest.raises(ValueError, match="jax_enable_x64"):
        switched.init(jax.random.key(1), HP)
