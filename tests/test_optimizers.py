"""Tests of fnn.optimizers: the written formulas, convergence, no retrace, sweeps, validation."""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import optimizers as O
from fnn import schedules
from fnn.checking import checked

# ----------------------------------------------------------------------------------------
# The formulas of the docstrings, written again in numpy float64, independently of optax.
# ----------------------------------------------------------------------------------------

# The documented defaults; a reference run fills in what a case leaves out.
DEFAULTS = {
    "sgd": {},
    "momentum": {"momentum": 0.9},
    "nesterov": {"momentum": 0.9},
    "adagrad": {"initial_accumulator": 0.0, "eps": 1e-10},
    "adadelta": {"learning_rate": 1.0, "rho": 0.9, "eps": 1e-6},
    "rmsprop": {"decay": 0.9, "eps": 1e-8},
    "adam": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
    "adamw": {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "weight_decay": 1e-2},
}

_C = np.array([1.0, -2.0, 0.5])
_X0 = np.array([0.5, -1.5, 2.0])


def _grad_np(x):
    # Gradient of sum(x^4 / 4 - c x): not linear in x, so each step's gradient is new.
    return x**3 - _C


def _reference(name, hp, rates, steps):
    """The iterates x_1..x_steps of the docstring formula; ``rates[t-1]`` is eta_t."""
    h = {**DEFAULTS[name], **hp}
    x = _X0.copy()
    b = np.zeros(3)
    acc = np.full(3, h.get("initial_accumulator", 0.0))
    e_g = np.zeros(3)
    e_x = np.zeros(3)
    out = []
    for t in range(1, steps + 1):
        g = _grad_np(x)
        eta = rates[t - 1]
        if name == "sgd":
            step = g
        elif name == "momentum":
            b = h["momentum"] * b + g
            step = b
        elif name == "nesterov":
            b = h["momentum"] * b + g
            step = g + h["momentum"] * b
        elif name == "adagrad":
            acc = acc + g * g
            step = g / (np.sqrt(acc) + h["eps"])
        elif name == "adadelta":
            e_g = h["rho"] * e_g + (1 - h["rho"]) * g * g
            step = np.sqrt(e_x + h["eps"]) / np.sqrt(e_g + h["eps"]) * g
            e_x = h["rho"] * e_x + (1 - h["rho"]) * step * step
        elif name == "rmsprop":
            e_g = h["decay"] * e_g + (1 - h["decay"]) * g * g
            step = g / (np.sqrt(e_g) + h["eps"])
        elif name in ("adam", "adamw"):
            b = h["b1"] * b + (1 - h["b1"]) * g
            e_g = h["b2"] * e_g + (1 - h["b2"]) * g * g
            m_hat = b / (1 - h["b1"] ** t)
            v_hat = e_g / (1 - h["b2"] ** t)
            step = m_hat / (np.sqrt(v_hat) + h["eps"])
            if name == "adamw":
                step = step + h["weight_decay"] * x
        x = x - eta * step
        out.append(x)
    return out


# Non-default values, with a large eps so that its place (inside or outside a root) shows.
FORMULA_CASES = [
    ("sgd", {"learning_rate": 0.1}),
    ("momentum", {"learning_rate": 0.1}),
    ("momentum", {"learning_rate": 0.1, "momentum": 0.7}),
    ("nesterov", {"learning_rate": 0.1}),
    ("nesterov", {"learning_rate": 0.1, "momentum": 0.7}),
    ("adagrad", {"learning_rate": 0.3}),
    ("adagrad", {"learning_rate": 0.3, "initial_accumulator": 0.2, "eps": 0.1}),
    ("adadelta", {}),
    ("adadelta", {"learning_rate": 0.8, "rho": 0.7, "eps": 0.05}),
    ("rmsprop", {"learning_rate": 0.05}),
    ("rmsprop", {"learning_rate": 0.05, "decay": 0.8, "eps": 0.1}),
    ("adam", {"learning_rate": 0.1}),
    ("adam", {"learning_rate": 0.1, "b1": 0.8, "b2": 0.9, "eps": 0.1}),
    ("adamw", {"learning_rate": 0.1}),
    ("adamw", {"learning_rate": 0.1, "b1": 0.8, "b2": 0.9, "eps": 0.1, "weight_decay": 0.3}),
]


def _first_steps(opt, steps=3):
    c = jnp.asarray(_C)
    x = jnp.asarray(_X0)
    state = opt.init(x)
    out = []
    for _ in range(steps):
        updates, state = opt.update(x**3 - c, state, x)
        x = optax.apply_updates(x, updates)
        out.append(np.asarray(x))
    return out


@pytest.mark.parametrize("name, hp", FORMULA_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(FORMULA_CASES)])
def test_first_three_steps_follow_the_formula(name, hp):
    eta = {**DEFAULTS[name], **hp}["learning_rate"]
    expected = _reference(name, hp, [eta] * 3, 3)
    got = _first_steps(O.get(name, **hp))
    for t in range(3):
        assert got[t].dtype == np.float64
        np.testing.assert_allclose(got[t], expected[t], rtol=0, atol=1e-12, err_msg=f"step {t + 1}")


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam"])
def test_a_schedule_rate_is_taken_at_the_count_of_updates_already_made(name):
    # eta_1 = schedule(0) = 0.1, eta_2 = schedule(1) = 0.05, eta_3 = schedule(2) = 0.025.
    sched = schedules.step_decay(0.1, [1, 2], factor=0.5)
    expected = _reference(name, {}, [0.1, 0.05, 0.025], 3)
    got = _first_steps(O.get(name, learning_rate=sched))
    for t in range(3):
        np.testing.assert_allclose(got[t], expected[t], rtol=0, atol=1e-12, err_msg=f"step {t + 1}")


def test_heavy_ball_and_sutskever_forms_agree_for_a_constant_rate():
    # v = mu v - eta g, x = x + v: the form the momentum docstring says coincides with fnn's.
    eta, mu = 0.1, 0.7
    x, v = _X0.copy(), np.zeros(3)
    for t in range(3):
        v = mu * v - eta * _grad_np(x)
        x = x + v
    got = _first_steps(O.momentum(eta, mu))
    np.testing.assert_allclose(got[-1], x, rtol=0, atol=1e-12)


def test_nesterov_params_are_sutskevers_look_ahead_points():
    # Sutskever et al.: v = mu v - eta grad(phi + mu v), phi = phi + v; fnn's x_t = phi_t + mu v_t.
    eta, mu = 0.1, 0.7
    phi, v = _X0.copy(), np.zeros(3)
    got = _first_steps(O.nesterov(eta, mu))
    for t in range(3):
        v = mu * v - eta * _grad_np(phi + mu * v)
        phi = phi + v
        np.testing.assert_allclose(got[t], phi + mu * v, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------------------
# Convergence on a parabola and on Rosenbrock, each run one compiled lax.scan.
# ----------------------------------------------------------------------------------------


def _parabola(p):
    # Curvatures 2 and 20: gradient descent is stable for eta < 2 / 20 = 0.1.
    return p[0] ** 2 + 10 * p[1] ** 2


def _rosenbrock(p):
    # Minimum at (1, 1), where the Hessian's largest eigenvalue is about 1001.6: the stability
    # limit of a constant-rate gradient step there is eta < 2 / 1001.6 = 0.002.
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def _run(opt, loss, x0, steps):
    @jax.jit
    def go(x0):
        def body(carry, _):
            x, state = carry
            updates, state = opt.update(jax.grad(loss)(x), state, x)
            return (optax.apply_updates(x, updates), state), None

        (x, _), _ = jax.lax.scan(body, (x0, opt.init(x0)), None, length=steps)
        return x

    return go(x0)


# (name, hyperparameters, steps). Steps are about 1.5x to 3x what each needs to enter the ball.
# RMSprop at a constant rate ends in a cycle of amplitude about eta / 2 around the minimum
# (g / sqrt(v) stays of order 1 as g -> 0), so it is run with the classic step decay.
# Adadelta is run below its default rate 1: its ratio sqrt(D + eps) / sqrt(E + eps) tends to 1
# once both are below eps, so a stiff coordinate of curvature h needs eta < 2 / h; at eta = 1 it
# settles into a growing oscillation on the parabola (about 0.03 from the minimum after 5000
# steps, 0.07 after 20000).
PARABOLA = [
    ("sgd", {"learning_rate": 0.05}, 200),
    ("momentum", {"learning_rate": 0.02}, 400),
    ("nesterov", {"learning_rate": 0.02}, 300),
    ("adagrad", {"learning_rate": 0.5}, 100),
    ("adadelta", {"learning_rate": 0.09}, 3000),
    ("rmsprop", {"learning_rate": lambda: schedules.classic_step_decay(1e-3, 3000)}, 3000),
    ("adam", {"learning_rate": 0.05}, 300),
    ("adamw", {"learning_rate": 0.05}, 300),
]

# Rosenbrock from (-1.2, 1) to within 1e-2 of (1, 1). Measured steps to enter and stay:
# sgd 7359, momentum 1000, nesterov 1038, adagrad 5853, adadelta 49552 (at eta = 0.0019, the
# stability limit; at its default rate it oscillates), rmsprop 5652, adam 3754, adamw 6811.
# AdamW at a constant rate stalls about 7e-3 from (1, 1); step decay takes it to 1e-4.
ROSENBROCK = [
    ("sgd", {"learning_rate": 1.5e-3}, 11000),
    ("momentum", {"learning_rate": 1e-3}, 2000),
    ("nesterov", {"learning_rate": 1e-3}, 2000),
    ("adagrad", {"learning_rate": 0.5}, 9000),
    ("adadelta", {"learning_rate": 1.9e-3}, 75000),
    ("rmsprop", {"learning_rate": lambda: schedules.classic_step_decay(1e-3, 12000)}, 12000),
    ("adam", {"learning_rate": 1e-2}, 6000),
    ("adamw", {"learning_rate": lambda: schedules.classic_step_decay(1e-2, 12000)}, 12000),
]


def _build(name, hp):
    return O.get(name, **{k: v() if callable(v) else v for k, v in hp.items()})


@pytest.mark.parametrize("name, hp, steps", PARABOLA, ids=[c[0] for c in PARABOLA])
def test_converges_on_a_parabola(name, hp, steps):
    x = _run(_build(name, hp), _parabola, jnp.array([1.0, 1.0]), steps)
    assert float(jnp.max(jnp.abs(x))) < 1e-3


@pytest.mark.parametrize("name, hp, steps", ROSENBROCK, ids=[c[0] for c in ROSENBROCK])
def test_converges_on_rosenbrock(name, hp, steps):
    x = _run(_build(name, hp), _rosenbrock, jnp.array([-1.2, 1.0]), steps)
    assert float(jnp.max(jnp.abs(x - 1.0))) < 1e-2


def test_adadelta_default_descends():
    opt = O.adadelta()
    x0 = jnp.array([1.0, 1.0])
    g = jax.grad(_parabola)(x0)
    updates, _ = opt.update(g, opt.init(x0), x0)
    assert float(jnp.vdot(updates, g)) < 0  # downhill, unlike optax.adadelta()'s default
    losses = [float(_parabola(_run(opt, _parabola, x0, steps))) for steps in (0, 50, 100, 200)]
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.5 * losses[0]


# ----------------------------------------------------------------------------------------
# Compilation: no retrace, and a sweep is one vmap that compiles once.
# ----------------------------------------------------------------------------------------

BASE = {
    "sgd": {"learning_rate": 0.05},
    "momentum": {"learning_rate": 0.02},
    "nesterov": {"learning_rate": 0.02},
    "adagrad": {"learning_rate": 0.5},
    "adadelta": {"learning_rate": 0.5},
    "rmsprop": {"learning_rate": 0.01},
    "adam": {"learning_rate": 0.05},
    "adamw": {"learning_rate": 0.05},
}


@pytest.mark.parametrize("name", O.names())
def test_a_jitted_step_called_again_does_not_retrace(name):
    opt = O.get(name, **BASE[name])
    traces = []

    @jax.jit
    def step(x, state):
        traces.append(None)
        updates, state = opt.update(jax.grad(_parabola)(x), state, x)
        return optax.apply_updates(x, updates), state

    x = jnp.array([1.0, 1.0])
    state = opt.init(x)
    for _ in range(3):
        x, state = step(x, state)
    assert len(traces) == 1


SWEEPS = [(name, "learning_rate", [0.5, 1.0, 1.5]) for name in O.names()] + [
    ("momentum", "momentum", [0.0, 0.5, 0.9]),
    ("nesterov", "momentum", [0.3, 0.6, 0.9]),
    ("adagrad", "initial_accumulator", [0.0, 0.1, 1.0]),
    ("adagrad", "eps", [0.0, 1e-10, 0.1]),
    ("adadelta", "rho", [0.5, 0.9, 0.95]),
    ("rmsprop", "decay", [0.5, 0.9, 0.99]),
    ("adam", "b1", [0.0, 0.5, 0.9]),
    ("adam", "b2", [0.5, 0.9, 0.999]),
    ("adamw", "weight_decay", [0.0, 1e-2, 1e-1]),
]


@pytest.mark.parametrize("name, swept, values", SWEEPS, ids=[f"{n}-{s}" for n, s, _ in SWEEPS])
def test_vmap_over_a_hyperparameter_equals_separate_runs_and_compiles_once(name, swept, values):
    # Learning rates are swept as multiples of the base rate.
    scale = BASE[name]["learning_rate"] if swept == "learning_rate" else 1.0
    values = np.array(values) * scale
    traces = []

    def run(value):
        traces.append(None)
        return _run(O.get(name, **{**BASE[name], swept: value}), _parabola, jnp.array([1.0, -0.5]), 20)

    sweep = jax.jit(jax.vmap(run))
    got = sweep(jnp.asarray(values))
    sweep(jnp.asarray(values[::-1].copy()))
    assert len(traces) == 1
    for i, v in enumerate(values):
        separate = run(float(v))
        np.testing.assert_allclose(got[i], separate, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------
# Trees and dtypes.
# ----------------------------------------------------------------------------------------


def _mlp_tree(dtype):
    return [
        {"W": jnp.full((2, 3), 0.5, dtype), "b": jnp.full((3,), -0.25, dtype)},
        {"W": jnp.full((3, 1), 1.5, dtype), "b": jnp.zeros((1,), dtype)},
    ]


def _grad_tree(params):
    return jax.tree.map(lambda p: jnp.sin(p) + 0.1, params)


@pytest.mark.parametrize("name", O.names())
def test_tree_structure_and_shapes_are_kept(name):
    opt = O.get(name, **BASE[name])
    params = _mlp_tree(jnp.float64)
    state = opt.init(params)
    updates, new_state = opt.update(_grad_tree(params), state, params)
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    assert [u.shape for u in jax.tree.leaves(updates)] == [p.shape for p in jax.tree.leaves(params)]
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert [s.shape for s in jax.tree.leaves(new_state)] == [s.shape for s in jax.tree.leaves(state)]
    new_params = optax.apply_updates(params, updates)
    assert jax.tree.structure(new_params) == jax.tree.structure(params)
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("name", O.names())
def test_float32_params_stay_float32(name):
    params = _mlp_tree(jnp.float32)

    def train(lr):
        opt = O.get(name, **{**BASE[name], "learning_rate": lr})

        def body(carry, _):
            p, s = carry
            updates, s = opt.update(_grad_tree(p), s, p)
            for u in jax.tree.leaves(updates):
                assert u.dtype == jnp.float32
            return (optax.apply_updates(p, updates), s), None

        state = opt.init(params)
        (p, s), _ = jax.lax.scan(body, (params, state), None, length=3)
        return p, s

    # A Python float rate, and a float64 rate array swept under vmap (x64 is on in tests).
    for p, s in (train(BASE[name]["learning_rate"]), jax.jit(jax.vmap(train))(jnp.array([0.01, 0.02]))):
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(p))
        init = jax.tree.leaves(O.get(name, **BASE[name]).init(params))
        assert [leaf.dtype for leaf in jax.tree.leaves(s)] == [leaf.dtype for leaf in init]


# ----------------------------------------------------------------------------------------
# Validation: concrete values raise, traced values give NaN.
# ----------------------------------------------------------------------------------------

INVALID = [
    ("sgd", "learning_rate", -0.1, r"learning_rate must lie in (0, inf), got -0.1"),
    ("adam", "learning_rate", 0.0, r"learning_rate must lie in (0, inf), got 0.0"),
    ("sgd", "learning_rate", math.nan, r"learning_rate must lie in (0, inf), got nan"),
    ("sgd", "learning_rate", math.inf, r"learning_rate must lie in (0, inf), got inf"),
    ("momentum", "momentum", 1.0, r"momentum must lie in [0, 1), got 1.0"),
    ("momentum", "momentum", -0.1, r"momentum must lie in [0, 1), got -0.1"),
    ("nesterov", "momentum", 0.0, r"momentum must lie in (0, 1), got 0.0 (Nesterov without momentum"),
    ("nesterov", "momentum", 1.5, r"momentum must lie in (0, 1), got 1.5"),
    ("adagrad", "initial_accumulator", -1.0, r"initial_accumulator must lie in [0, inf), got -1.0"),
    ("adagrad", "eps", -1e-10, r"eps must lie in [0, inf), got -1e-10"),
    ("adadelta", "rho", 1.0, r"rho must lie in [0, 1), got 1.0"),
    ("adadelta", "eps", -1e-6, r"eps must lie in [0, inf), got -1e-06"),
    ("rmsprop", "decay", 1.2, r"decay must lie in [0, 1), got 1.2"),
    ("rmsprop", "eps", -1e-8, r"eps must lie in [0, inf), got -1e-08"),
    ("adam", "b1", 1.0, r"b1 must lie in [0, 1), got 1.0"),
    ("adam", "b2", -0.5, r"b2 must lie in [0, 1), got -0.5"),
    ("adam", "eps", -1e-8, r"eps must lie in [0, inf), got -1e-08"),
    ("adamw", "weight_decay", -1e-3, r"weight_decay must lie in [0, inf), got -0.001"),
    ("adamw", "b1", 1.0, r"b1 must lie in [0, 1), got 1.0"),
]


@pytest.mark.parametrize("name, hp, value, message", INVALID, ids=[f"{n}-{h}-{v}" for n, h, v, _ in INVALID])
def test_invalid_concrete_hyperparameter_raises(name, hp, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        O.get(name, **{**BASE[name], hp: value})
    # Also when the optimizer is built inside jit, from a Python float.
    with pytest.raises(ValueError, match=re.escape(message)):
        jax.jit(lambda x: O.get(name, **{**BASE[name], hp: value}).init(x))(jnp.zeros(2))


@pytest.mark.parametrize("name, hp, value, message", INVALID, ids=[f"{n}-{h}-{v}" for n, h, v, _ in INVALID])
def test_invalid_traced_hyperparameter_gives_nan(name, hp, value, message):
    def first_update(v):
        opt = O.get(name, **{**BASE[name], hp: v})
        params = _mlp_tree(jnp.float64)
        updates, _ = opt.update(_grad_tree(params), opt.init(params), params)
        return updates

    updates = jax.jit(first_update)(jnp.asarray(value))
    assert all(bool(jnp.all(jnp.isnan(u))) for u in jax.tree.leaves(updates))
    # Inside fnn.checking.checked the same condition is a checkify error with the eager message.
    error, _ = jax.jit(checked(first_update))(jnp.asarray(value))
    assert message.split(", got")[0] in error.get()


def test_non_scalar_or_non_numeric_hyperparameters():
    with pytest.raises(ValueError, match=re.escape("learning_rate must be a scalar, got shape (2,)")):
        O.sgd(jnp.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=re.escape("momentum must be a scalar, got shape (2,)")):
        jax.vmap(lambda m: O.momentum(0.1, jnp.stack([m, m])))(jnp.array([0.5]))
    with pytest.raises(TypeError, match="learning_rate must be a real number"):
        O.adam("0.1")
    with pytest.raises(TypeError, match="learning_rate must be a real number, got the bool"):
        O.sgd(True)


def test_a_schedule_with_negative_values_is_refused():
    opt = O.sgd(lambda step: 0.1 - 0.1 * step)  # 0.1, 0.0, -0.1, ...
    x = jnp.array([1.0])
    state = opt.init(x)
    for _ in range(2):  # 0.0 is allowed: a schedule may decay to 0
        _, state = opt.update(x, state)
    with pytest.raises(
        ValueError, match=re.escape("the learning-rate schedule's value must lie in [0, inf), got -0.1")
    ):
        opt.update(x, state)
    updates, _ = jax.jit(opt.update)(x, state)
    assert bool(jnp.isnan(updates[0]))


def test_optimizers_can_be_built_from_a_schedule():
    # A non-positive learning rate is an error, but a schedule may decay to 0.
    opt = O.adam(optax.linear_schedule(0.1, 0.0, 2))
    x = jnp.array([1.0])
    state = opt.init(x)
    for _ in range(3):
        updates, state = opt.update(x, state)
    assert float(updates[0]) == 0.0


# ----------------------------------------------------------------------------------------
# The registry.
# ----------------------------------------------------------------------------------------


def test_names_and_get():
    assert O.names() == ("adadelta", "adagrad", "adam", "adamw", "momentum", "nesterov", "rmsprop", "sgd")
    for name in O.names():
        assert isinstance(O.get(name, **BASE[name]), optax.GradientTransformation)
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'; known names: adadelta, adagrad, adam, adamw"):
        O.get("adamm", learning_rate=0.1)
    with pytest.raises(
        ValueError, match=r"optimizer 'adam' takes hyperparameters \(learning_rate, b1, b2, eps\), got \['momentum'\]"
    ):
        O.get("adam", learning_rate=0.1, momentum=0.9)
    with pytest.raises(TypeError, match="optimizer must be a name or an optax.GradientTransformation, got int"):
        O.get(3)
    opt = optax.sgd(0.1)
    assert O.get(opt) is opt
    with pytest.raises(ValueError, match="cannot be given with a GradientTransformation"):
        O.get(opt, learning_rate=0.1)
    with pytest.raises(TypeError, match="learning_rate"):
        O.get("adam")
    assert isinstance(O.get("adadelta"), optax.GradientTransformation)  # the one with a default rate
