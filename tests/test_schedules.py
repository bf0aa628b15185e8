"""Tests of fnn.schedules: values at and around boundaries, the classic recipe, sweeps, errors."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import optimizers, schedules


def test_constant():
    sched = schedules.constant(0.3)
    assert float(sched(0)) == 0.3
    np.testing.assert_array_equal(sched(jnp.arange(4)), np.full(4, 0.3))
    assert float(jax.jit(sched)(jnp.asarray(10**6))) == 0.3


@pytest.mark.parametrize("factor", [0.1, 0.5, 2.0])
def test_step_decay_at_and_around_each_boundary(factor):
    sched = schedules.step_decay(0.2, [10, 25, 40], factor=factor)
    expected = {0: 0, 9: 0, 10: 1, 11: 1, 24: 1, 25: 2, 26: 2, 39: 2, 40: 3, 41: 3, 10**6: 3}
    for step, k in expected.items():
        np.testing.assert_allclose(sched(step), 0.2 * factor**k, rtol=1e-15, err_msg=f"step {step}")
        np.testing.assert_allclose(jax.jit(sched)(jnp.asarray(step)), 0.2 * factor**k, rtol=1e-15)
    steps = np.array(sorted(expected))
    np.testing.assert_allclose(sched(steps), [0.2 * factor ** expected[s] for s in steps], rtol=1e-15)
    assert sched(jnp.zeros((2, 3), jnp.int32)).shape == (2, 3)


def test_classic_step_decay_at_the_recipe_fractions():
    sched = schedules.classic_step_decay(0.1, 1000)
    for step, value in [
        (0, 0.1),
        (490, 0.1),
        (499, 0.1),
        (500, 0.01),
        (740, 0.01),
        (749, 0.01),
        (750, 0.001),
        (999, 0.001),
        (1000, 0.001),
    ]:
        np.testing.assert_allclose(sched(step), value, rtol=1e-12, err_msg=f"step {step}")


@pytest.mark.parametrize("total, boundaries", [(3, (1, 2)), (10, (5, 7)), (64000, (32000, 48000)), (101, (50, 75))])
def test_classic_step_decay_boundaries_round_down(total, boundaries):
    sched = schedules.classic_step_decay(1.0, total)
    b1, b2 = boundaries
    np.testing.assert_allclose(
        sched(np.array([b1 - 1, b1, b2 - 1, b2, total - 1])), [1, 0.1, 0.1, 0.01, 0.01], rtol=1e-12
    )


def test_traced_value_and_factor_under_vmap():
    steps = jnp.arange(6)
    values = jnp.array([0.1, 0.2, 0.4])
    got = jax.jit(jax.vmap(lambda v: schedules.step_decay(v, [2, 4])(steps)))(values)
    np.testing.assert_allclose(got, values[:, None] * 0.1 ** jnp.array([0, 0, 1, 1, 2, 2])[None, :], rtol=1e-15)
    factors = jnp.array([0.5, 0.1])
    got = jax.vmap(lambda f: schedules.step_decay(1.0, [3], factor=f)(steps))(factors)
    np.testing.assert_allclose(got[:, 3], factors, rtol=1e-15)
    got = jax.vmap(lambda v: schedules.classic_step_decay(v, 4)(steps))(values)
    np.testing.assert_allclose(got[:, -1], values * 0.01, rtol=1e-12)
    got = jax.vmap(lambda v: schedules.constant(v)(steps))(values)
    np.testing.assert_allclose(got, jnp.broadcast_to(values[:, None], (3, 6)))


def test_traced_invalid_value_or_factor_gives_nan():
    out = jax.jit(lambda v: schedules.step_decay(v, [2])(jnp.arange(3)))(jnp.asarray(-0.1))
    assert bool(jnp.all(jnp.isnan(out)))
    out = jax.jit(lambda f: schedules.step_decay(0.1, [2], factor=f)(jnp.arange(3)))(jnp.asarray(0.0))
    assert bool(jnp.all(jnp.isnan(out)))
    assert bool(jnp.isnan(jax.jit(lambda v: schedules.constant(v)(0))(jnp.asarray(0.0))))


def test_an_optimizer_uses_schedule_of_the_updates_already_made():
    # With a gradient of 1, sgd moves by -schedule(0), -schedule(1), ...
    sched = schedules.step_decay(0.1, [2, 3], factor=0.5)
    opt = optimizers.sgd(sched)
    x = jnp.array([0.0])
    state = opt.init(x)
    moves = []
    for _ in range(4):
        updates, state = opt.update(jnp.array([1.0]), state)
        x = optax.apply_updates(x, updates)
        moves.append(float(updates[0]))
    np.testing.assert_allclose(moves, [-0.1, -0.1, -0.05, -0.025], rtol=1e-15)


ERRORS = [
    (
        lambda: schedules.step_decay(0.1, [20, 10]),
        ValueError,
        "boundaries must be strictly increasing (sorted, no duplicates), got [20, 10]",
    ),
    (
        lambda: schedules.step_decay(0.1, [10, 10]),
        ValueError,
        "boundaries must be strictly increasing (sorted, no duplicates), got [10, 10]",
    ),
    (lambda: schedules.step_decay(0.1, [-5, 10]), ValueError, "boundaries must be positive steps"),
    (lambda: schedules.step_decay(0.1, [0, 10]), ValueError, "boundaries must be positive steps"),
    (
        lambda: schedules.step_decay(0.1, [2.5]),
        ValueError,
        "boundaries must be integer step numbers, got 2.5 at index 0",
    ),
    (
        lambda: schedules.step_decay(0.1, [10, 20.0]),
        ValueError,
        "boundaries must be integer step numbers, got 20.0 at index 1",
    ),
    (lambda: schedules.step_decay(0.1, [True]), ValueError, "boundaries must be integer step numbers, got True"),
    (lambda: schedules.step_decay(0.1, ["3"]), ValueError, "boundaries must be integer step numbers, got '3'"),
    (lambda: schedules.step_decay(0.1, 10), ValueError, "boundaries must be a sequence of step numbers, got 10"),
    (
        lambda: schedules.step_decay(0.1, []),
        ValueError,
        "boundaries must hold at least one step (for no decay use constant)",
    ),
    (
        lambda: schedules.step_decay(0.1, [5, 10], total_steps=10),
        ValueError,
        "boundaries must lie below total_steps=10 (a later one never applies), got [5, 10]",
    ),
    (
        lambda: schedules.step_decay(0.1, [5], total_steps=0),
        ValueError,
        "total_steps must be a positive integer, got 0",
    ),
    (lambda: schedules.step_decay(0.0, [5]), ValueError, "value must lie in (0, inf), got 0.0"),
    (lambda: schedules.step_decay(0.1, [5], factor=0.0), ValueError, "factor must lie in (0, inf), got 0.0"),
    (lambda: schedules.step_decay(0.1, [5], factor=-0.1), ValueError, "factor must lie in (0, inf), got -0.1"),
    (lambda: schedules.constant(-1.0), ValueError, "value must lie in (0, inf), got -1.0"),
    (lambda: schedules.constant(jnp.ones(2)), ValueError, "value must be a scalar, got shape (2,)"),
    (
        lambda: schedules.classic_step_decay(0.1, 2),
        ValueError,
        "total_steps must be at least 3 so that 50% and 75% of it are distinct positive steps, got 2",
    ),
    (lambda: schedules.classic_step_decay(0.1, 0), ValueError, "total_steps must be a positive integer, got 0"),
    (lambda: schedules.classic_step_decay(0.1, 100.0), TypeError, "total_steps must be an integer, got 100.0"),
    (lambda: schedules.classic_step_decay(-0.1, 100), ValueError, "value must lie in (0, inf), got -0.1"),
]


@pytest.mark.parametrize("make, error, message", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_invalid_arguments_raise(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


def test_numpy_integer_boundaries_are_accepted():
    sched = schedules.step_decay(1.0, np.array([2, 4]), factor=0.5)
    np.testing.assert_allclose(sched(np.arange(5)), [1, 1, 0.5, 0.5, 0.25])
