r"""Linear regression: gradient descent converges to the closed-form least squares, at the rate theory gives.

Data: a random linear model :math:`y = x w + b + 0.1 \varepsilon` with 5 features of different
means and scales, 200 examples, in float64. The loss is the MSE
:math:`L(\theta) = \frac1N \|\tilde X \theta - y\|^2` with :math:`\tilde X = [X, 1]`, a quadratic
with Hessian :math:`H = \frac2N \tilde X^\top \tilde X`. Gradient descent with rate
:math:`\eta` contracts the error :math:`\theta_t - \theta^*` by :math:`I - \eta H`, so with
:math:`\eta = 1 / \lambda_{\max}` the distance to the minimiser falls, after the fast
directions have died out, by :math:`1 - \eta \lambda_{\min} = 1 - 1/\kappa` per step.

Measured, for the raw features and for the features standardised with
:func:`fnn.data.standardize_fit` (each with its own :math:`\eta = 1/\lambda_{\max}`):

1. the distance :math:`\|\theta_t - \theta^*\|_2` after every step of
   :func:`fnn.descent.gradient_descent` (the gradient by ``jax.value_and_grad`` of
   :func:`fnn.losses.mse`) to the closed form :func:`fnn.linear.least_squares`, and the final
   distance;
2. the contraction per step, fitted on the log distance, against :math:`1 - \eta\lambda_{\min}`;
3. the steps to bring the distance below 1e-6, measured, and predicted from the rate as
   :math:`\log(10^{-6} / d_0) / \log(1 - \eta\lambda_{\min})`;
4. that both closed forms give the same predictions (standardising is a change of
   coordinates), and the float32 floor of the standardised run.

Reference: J. Nocedal, S. Wright, *Numerical Optimization*, Springer 2006, ch. 3.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments.api import Check, Config, Result, Verdict
from fnn import data, descent, linear, losses

CLAIM = "Gradient descent on linear regression converges to the closed-form least squares at the rate 1 - lr*lambda_min per step, and standardising the features cuts the steps needed by the condition number."
CRITERION = "All of, in float64 for the raw and the standardised features: the final distance to the closed-form least squares is <= 1e-10; the contraction per step fitted on the log distance has a log within 5% of log(1 - lr*lambda_min); the steps to a distance < 1e-6, raw over standardised, are within a factor 2 of the ratio of their condition numbers."

N, NOISE = 200, 0.1
MEANS = (2.0, -1.0, 0.5, 3.0, 0.0)
SCALES = (1.0, 3.0, 0.3, 0.5, 2.0)
TOLERANCE = 1e-6


def _problem(key: jax.Array, dtype):
    k_x, k_w, k_eps = jax.random.split(key, 3)
    x = jnp.asarray(MEANS, dtype) + jnp.asarray(SCALES, dtype) * jax.random.normal(k_x, (N, len(MEANS)), dtype)
    w = jax.random.normal(k_w, (len(MEANS), 1), dtype)
    y = x @ w + 0.5 + NOISE * jax.random.normal(k_eps, (N, 1), dtype)
    return x, y


def _flat(params) -> jax.Array:
    return jnp.concatenate([params[0]["W"].ravel(), params[0]["b"].ravel()])


def _descend(x, y, steps: int, key: jax.Array):
    """Distances to the closed form after each of ``steps`` steps at rate 1/lambda_max; and the spectrum."""
    design = jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)
    eigenvalues = jnp.linalg.eigvalsh(2 / x.shape[0] * design.T @ design)
    lr = 1 / eigenvalues[-1]
    target = _flat(linear.least_squares(x, y))
    value_and_grad = jax.value_and_grad(lambda p: losses.mse(linear.apply(p, x), y))

    def one_step(params, _):
        params, _ = descent.gradient_descent(value_and_grad, params, learning_rate=lr, steps=1)
        return params, jnp.linalg.norm(_flat(params) - target)

    start = linear.init(key, x.shape[1], dtype=x.dtype)
    _, distances = jax.jit(lambda p: jax.lax.scan(one_step, p, None, length=steps))(start)
    distances = jnp.concatenate([jnp.linalg.norm(_flat(start) - target)[None], distances])
    return np.asarray(distances), np.asarray(eigenvalues), float(lr)


def _fitted_rate(distances: np.ndarray) -> float:
    """exp of the slope of log distance over the middle of its descent (above the rounding floor)."""
    logd = np.log(distances)
    usable = np.flatnonzero(distances > 1e3 * distances.min())  # before the floor
    last = usable[-1] if usable.size else len(distances) - 1
    lo = last // 2  # skip the fast directions' transient
    t = np.arange(lo, last + 1)
    return float(np.exp(np.polyfit(t, logd[lo : last + 1], 1)[0])) if last - lo >= 2 else float("nan")


def _steps_below(distances: np.ndarray, tol: float) -> int:
    below = np.flatnonzero(distances < tol)
    return int(below[0]) if below.size else -1


def run(config: Config) -> Result:
    steps = 2000 if config.quick else 30000
    key = jax.random.key(config.seed)
    k_data, k_init = jax.random.split(key)
    rows, curves = {}, {}
    with jax.enable_x64(True):
        x, y = _problem(k_data, jnp.float64)
        x_std = data.standardize_apply(x, *data.standardize_fit(x))
        for label, features in (("raw", x), ("standardised", x_std)):
            distances, eigenvalues, lr = _descend(features, y, steps, k_init)
            kappa = eigenvalues[-1] / eigenvalues[0]
            theory = 1 - lr * eigenvalues[0]
            reached = _steps_below(distances, TOLERANCE)
            rows[label] = {
                "learning_rate": lr,
                "eigenvalues": eigenvalues,
                "condition_number": float(kappa),
                "theory_rate": float(theory),
                "fitted_rate": _fitted_rate(distances),
                "initial_distance": float(distances[0]),
                "final_distance": float(distances[-1]),
                "steps_to_tolerance": reached,
                "predicted_steps_to_tolerance": float(np.log(TOLERANCE / distances[0]) / np.log(theory)),
            }
            curves[label] = distances
        # Standardising changes the coordinates, not the fitted function.
        pred_raw = linear.apply(linear.least_squares(x, y), x)
        pred_std = linear.apply(linear.least_squares(x_std, y), x_std)
        same_fit = float(jnp.max(jnp.abs(pred_raw - pred_std)))
    # float32: the same standardised descent, where rounding sets the floor.
    x32, y32 = (jnp.asarray(a, jnp.float32) for a in (x_std, y))
    d32, _, _ = _descend(x32, y32, min(steps, 2000), k_init)

    metrics = {
        "steps": steps,
        "n": N,
        "features": len(MEANS),
        "noise": NOISE,
        "tolerance": TOLERANCE,
        "closed_forms_max_prediction_gap": same_fit,
        "float32_standardised_final_distance": float(d32[-1]),
        "float32_standardised_min_distance": float(d32.min()),
        **{f"{k}": v for k, v in rows.items()},
        "distance_curves": {k: v[:: max(1, steps // 2000)] for k, v in curves.items()},
    }
    lines = [
        (
            f"linear model, {N} examples, {len(MEANS)} features (scales {', '.join(map(str, SCALES))}), noise {NOISE}, "
            f"float64; gradient descent at lr = 1/lambda_max of the MSE Hessian, {steps} steps, vs fnn.linear.least_squares"
        )
    ]
    for label, r in rows.items():
        reached = r["steps_to_tolerance"]
        lines.append(
            f"{label:<12}: condition number {r['condition_number']:.4g}, lr {r['learning_rate']:.3g}; distance to the "
            f"closed form {r['initial_distance']:.2g} -> {r['final_distance']:.1e}; rate per step fitted {r['fitted_rate']:.6f} vs "
            f"theory 1 - lr*lambda_min = {r['theory_rate']:.6f}; steps to distance < {TOLERANCE:g}: "
            + (f"{reached}" if reached >= 0 else f"not reached in {steps}")
            + f" (predicted {r['predicted_steps_to_tolerance']:.0f})"
        )
    raw, std = rows["raw"], rows["standardised"]
    if raw["steps_to_tolerance"] > 0 and std["steps_to_tolerance"] > 0:
        lines.append(
            f"standardising: {raw['steps_to_tolerance'] / std['steps_to_tolerance']:.0f}x fewer steps "
            f"(condition number {raw['condition_number']:.0f} -> {std['condition_number']:.2f})"
        )
    lines.append(
        f"both closed forms predict the same (max gap {same_fit:.1e}); float32, standardised: distance floors at "
        f"{float(d32.min()):.1e} (final {float(d32[-1]):.1e})"
    )
    return Result(metrics=metrics, figure=_figure(curves, rows, d32), summary="\n".join(lines))


def verdict(metrics: dict, quick: bool) -> Verdict:
    """PASS when every part of ``CRITERION`` holds; the same thresholds in quick and full mode."""
    del quick
    raw, std = metrics["raw"], metrics["standardised"]
    labels = {"raw": raw, "standardised": std}
    finals = {k: float(r["final_distance"]) for k, r in labels.items()}
    rate_errors = {
        k: abs(np.log(float(r["fitted_rate"])) / np.log(float(r["theory_rate"])) - 1) for k, r in labels.items()
    }
    kappa_ratio = float(raw["condition_number"]) / float(std["condition_number"])
    reached = raw["steps_to_tolerance"] > 0 and std["steps_to_tolerance"] > 0
    step_ratio = raw["steps_to_tolerance"] / std["steps_to_tolerance"] if reached else float("nan")
    return Verdict.of(
        Check(
            "converges to least squares",
            max(finals.values()) <= 1e-10,
            ", ".join(f"{k} {d:.1e}" for k, d in finals.items()),
        ),
        Check(
            "rate 1 - lr*lambda_min",
            bool(max(rate_errors.values()) <= 0.05),  # a NaN fitted rate compares False
            "log-rate off by " + ", ".join(f"{k} {e:.1%}" for k, e in rate_errors.items()),
        ),
        Check(
            "steps cut by the condition number",
            reached and 0.5 <= step_ratio / kappa_ratio <= 2,
            f"{step_ratio:.0f}x fewer steps, condition numbers {kappa_ratio:.0f}x" if reached else "1e-6 not reached",
        ),
    )


def _figure(curves, rows, d32):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4), layout="constrained")
    ax_all, ax_std = fig.subplots(1, 2)
    for i, (label, d) in enumerate(curves.items()):
        r = rows[label]
        t = np.arange(len(d))
        for ax in (ax_all, ax_std):
            ax.semilogy(t, d, color=f"C{i}", label=f"{label} (condition {r['condition_number']:.3g})")
            ax.semilogy(
                t,
                d[0] * r["theory_rate"] ** t,
                color=f"C{i}",
                ls="--",
                lw=0.8,
                label=f"{label}: d0 (1 - lr lambda_min)^t",
            )
    ax_std.semilogy(np.arange(len(d32)), d32, color="C2", label="standardised, float32")
    for ax in (ax_all, ax_std):
        ax.axhline(TOLERANCE, color="gray", lw=0.6, ls=":")
        top = 10 * max(float(d[0]) for d in curves.values())
        ax.set(xlabel="step", ylabel="||theta_t - theta_least_squares||", ylim=(1e-16, top))
        ax.legend(fontsize="x-small")
    ax_all.set(title="distance to the closed form")
    std_steps = (
        max(10, 3 * rows["standardised"]["steps_to_tolerance"])
        if rows["standardised"]["steps_to_tolerance"] > 0
        else 200
    )
    ax_std.set(title="the first steps", xlim=(0, std_steps))
    return fig
