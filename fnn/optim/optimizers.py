r"""First-order optimizers as optax gradient transformations, with their formulas written out.

Every optimizer here is an ``optax.GradientTransformation``, a pair of pure functions

* ``init(params) -> state`` and
* ``update(grads, state, params=None) -> (updates, state)``,

used as ``params = optax.apply_updates(params, updates)``. ``params`` is any pytree of float
arrays (for an MLP, a list of ``{"W": [in, out], "b": [out]}`` dicts); ``grads``, ``updates``
and every per-parameter leaf of ``state`` have its exact tree and shapes. Each optimizer is
built from optax's transforms; Adagrad is the one written out here, because optax puts its
epsilon inside the square root (see :func:`adagrad`).

Notation: :math:`g_t = \nabla L(\theta_{t-1})` is the gradient passed to the t-th call of
``update`` (t = 1, 2, ...), :math:`\eta_t` the learning rate, all operations elementwise.
A schedule is called with the number of updates already made, so :math:`\eta_t` is
``learning_rate(t - 1)`` (see :mod:`fnn.schedules`).

============  ====================================================================  ============
optimizer     update (epsilon exactly where it sits)                                state
============  ====================================================================  ============
``sgd``       :math:`-\eta g`                                                       none
``momentum``  :math:`b = \mu b + g;\ -\eta b`                                       b
``nesterov``  :math:`b = \mu b + g;\ -\eta (g + \mu b)`                             b
``adagrad``   :math:`G = G + g^2;\ -\eta g / (\sqrt{G} + \epsilon)`                 G
``adadelta``  :math:`-\eta \sqrt{D + \epsilon} / \sqrt{E + \epsilon}\, g`           E, D
``rmsprop``   :math:`v = \rho v + (1-\rho) g^2;\ -\eta g / (\sqrt{v} + \epsilon)`   v
``adam``      :math:`-\eta \hat m / (\sqrt{\hat v} + \epsilon)`                     count, m, v
``adamw``     :math:`-\eta (\hat m / (\sqrt{\hat v} + \epsilon) + \lambda \theta)`  count, m, v
============  ====================================================================  ============

Hyperparameters. ``learning_rate`` is a Python float, a scalar array (possibly traced), or a
schedule ``step -> lr``. Every other hyperparameter is a Python float or a scalar array,
possibly traced, so a sweep is one ``jax.vmap`` over a function that builds the optimizer
inside it, and it compiles once. Hyperparameters are validated where the optimizer is built,
as everywhere in fnn (see :mod:`fnn.checking`):

* a concrete value outside its range is a ``ValueError`` naming the hyperparameter, the
  allowed range and the value (``learning_rate must lie in (0, inf), got -0.1``);
* a traced value outside its range makes every update NaN, and inside
  :func:`fnn.checking.checked` also a checkify error carrying the same message;
* a schedule's values are checked at each step to be non-negative (a schedule may decay to 0),
  the same way: an error when the step is run eagerly, NaN updates under ``jit``.

Dtypes. Updates have the dtype of the gradients and the state keeps the dtypes it was
initialised with, so float32 parameters stay float32 even when a swept hyperparameter is a
float64 array (inside a ``lax.scan`` a change of dtype would be an error).

Optimizers are also named by string for configuration: ``get("adam", learning_rate=1e-3)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fnn import _checks
from fnn._types import Array, ArrayLike, Params

__all__ = [
    "AdagradState",
    "adadelta",
    "adagrad",
    "adam",
    "adamw",
    "default_learning_rate",
    "get",
    "momentum",
    "names",
    "nesterov",
    "rmsprop",
    "sgd",
]

LearningRate = float | ArrayLike | Callable[[Array], ArrayLike]


# ----------------------------------------------------------------------------------------
# Validation and the dtype guard shared by every optimizer.
# ----------------------------------------------------------------------------------------


def _learning_rate(learning_rate: LearningRate) -> LearningRate:
    """A validated learning rate: a positive scalar, or a schedule whose values are checked."""
    if callable(learning_rate):
        schedule = learning_rate

        def checked_schedule(count: Array) -> Array:
            return _checks.nonnegative(schedule(count), "the learning-rate schedule's value")

        return checked_schedule
    return _checks.positive(learning_rate, "learning_rate")


def _keep_dtypes(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """``inner`` with updates cast to the gradients' dtypes and state to its initial dtypes.

    A float64 hyperparameter array (a sweep under x64) would otherwise promote float32
    moments and updates, and ``lax.scan`` refuses a carry whose dtype changes.
    """

    def update(updates: Any, state: Any, params: Params | None = None, **extra_args: Any) -> tuple[Any, Any]:
        new_updates, new_state = inner.update(updates, state, params, **extra_args)
        new_updates = jax.tree.map(lambda u, g: u.astype(jnp.result_type(g)), new_updates, updates)
        new_state = jax.tree.map(lambda s, old: jnp.asarray(s).astype(jnp.result_type(old)), new_state, state)
        return new_updates, new_state

    return optax.GradientTransformationExtraArgs(inner.init, update)


# ----------------------------------------------------------------------------------------
# The optimizers.
# ----------------------------------------------------------------------------------------


def sgd(learning_rate: LearningRate) -> optax.GradientTransformationExtraArgs:
    r"""Plain stochastic gradient descent.

    .. math:: \theta_t = \theta_{t-1} - \eta_t g_t

    Args:
      learning_rate: :math:`\eta > 0`, a scalar or a schedule ``step -> lr``.

    Returns:
      An ``optax.GradientTransformation``. Its state holds no per-parameter arrays (only a step
      count when ``learning_rate`` is a schedule); updates are shaped like the gradients.

    Same as ``torch.optim.SGD(lr=...)`` with its defaults (no momentum, dampening or weight
    decay) and as ``optax.sgd(learning_rate)``.

    Reference: H. Robbins, S. Monro, *A Stochastic Approximation Method*, Ann. Math. Statist.
    22(3), 1951.

    >>> opt = sgd(0.1)
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> updates, state = opt.update({"w": jnp.array([0.5, -1.0])}, opt.init(params))
    >>> optax.apply_updates(params, updates)
    {'w': Array([ 0.95, -1.9 ], dtype=float32)}
    """
    return _keep_dtypes(optax.sgd(_learning_rate(learning_rate)))


def momentum(learning_rate: LearningRate, momentum: ArrayLike = 0.9) -> optax.GradientTransformationExtraArgs:
    r"""SGD with heavy-ball (Polyak) momentum, in the form PyTorch and optax use.

    .. math::
        b_t = \mu b_{t-1} + g_t, \qquad \theta_t = \theta_{t-1} - \eta_t b_t, \qquad b_0 = 0

    The other common form, :math:`v_t = \mu v_{t-1} - \eta g_t,\ \theta_t = \theta_{t-1} + v_t`
    (Sutskever et al. 2013), is the same sequence of parameters when :math:`\eta` is constant
    (:math:`v = -\eta b`). Under a schedule they differ: here the whole buffer of past gradients
    is multiplied by the current :math:`\eta_t`, there each gradient keeps the rate of its step.

    Args:
      learning_rate: :math:`\eta > 0`, a scalar or a schedule ``step -> lr``.
      momentum: :math:`\mu \in [0, 1)`; 0 is :func:`sgd`.

    Returns:
      An ``optax.GradientTransformation`` whose state holds :math:`b` (``TraceState.trace``),
      shaped like the parameters.

    Differences from PyTorch: none in the update; ``torch.optim.SGD(lr, momentum=mu)`` with
    its default ``dampening=0`` computes the same :math:`b` and step (PyTorch sets
    :math:`b_1 = g_1`, which equals :math:`\mu \cdot 0 + g_1`). ``optax.sgd(lr, momentum=mu)``
    is the same.

    References: B. T. Polyak, *Some methods of speeding up the convergence of iteration
    methods*, USSR Comput. Math. Math. Phys. 4(5), 1964; D. Rumelhart, G. Hinton,
    R. Williams, *Learning representations by back-propagating errors*, Nature 323, 1986.

    >>> opt = momentum(0.1, momentum=0.5)
    >>> params = jnp.array([1.0])
    >>> state = opt.init(params)
    >>> for _ in range(2):
    ...     updates, state = opt.update(jnp.array([1.0]), state)
    ...     params = optax.apply_updates(params, updates)
    >>> params  # 1 - 0.1 * 1 - 0.1 * 1.5
    Array([0.75], dtype=float32)
    """
    return _keep_dtypes(optax.sgd(_learning_rate(learning_rate), momentum=_checks.decay_rate(momentum, "momentum")))


def nesterov(learning_rate: LearningRate, momentum: ArrayLike = 0.9) -> optax.GradientTransformationExtraArgs:
    r"""SGD with Nesterov's accelerated gradient, in the form PyTorch and optax use.

    .. math::
        b_t = \mu b_{t-1} + g_t, \qquad
        \theta_t = \theta_{t-1} - \eta_t (g_t + \mu b_t), \qquad b_0 = 0

    Sutskever et al. (2013) write NAG with the gradient taken at a look-ahead point,
    :math:`v_t = \mu v_{t-1} - \eta \nabla L(\phi_{t-1} + \mu v_{t-1}),\ \phi_t = \phi_{t-1} + v_t`.
    With a constant :math:`\eta` the two are the same algorithm: the parameters here are
    Sutskever's look-ahead points :math:`\phi_t + \mu v_t` (with :math:`v = -\eta b`), so the
    gradient is taken at the current parameters and no second evaluation is needed
    (Bengio et al. 2013). Both start from the same point; under a schedule they differ as for
    :func:`momentum`.

    Args:
      learning_rate: :math:`\eta > 0`, a scalar or a schedule ``step -> lr``.
      momentum: :math:`\mu \in (0, 1)`. Nesterov without momentum is plain SGD and is refused
        (use :func:`sgd`).

    Returns:
      An ``optax.GradientTransformation`` whose state holds :math:`b` (``TraceState.trace``),
      shaped like the parameters.

    Differences from PyTorch: none in the update; ``torch.optim.SGD(lr, momentum=mu,
    nesterov=True)`` computes the same step (and also refuses ``momentum=0``).
    ``optax.sgd(lr, momentum=mu, nesterov=True)`` is the same and accepts ``momentum=0``.

    References: Y. Nesterov, *A method of solving a convex programming problem with convergence
    rate O(1/k^2)*, Soviet Math. Dokl. 27, 1983; I. Sutskever, J. Martens, G. Dahl, G. Hinton,
    *On the importance of initialization and momentum in deep learning*, ICML 2013;
    Y. Bengio, N. Boulanger-Lewandowski, R. Pascanu, *Advances in optimizing recurrent
    networks*, ICASSP 2013.

    >>> opt = nesterov(0.1, momentum=0.5)
    >>> params = jnp.array([1.0])
    >>> updates, state = opt.update(jnp.array([1.0]), opt.init(params))
    >>> optax.apply_updates(params, updates)  # 1 - 0.1 * (1 + 0.5 * 1)
    Array([0.85], dtype=float32)
    """
    hint = " (Nesterov without momentum is plain SGD: use sgd)"
    mu = _checks.in_range(momentum, "momentum", 0.0, 1.0, low_closed=False, hint=hint)
    return _keep_dtypes(optax.sgd(_learning_rate(learning_rate), momentum=mu, nesterov=True))


class AdagradState(NamedTuple):
    """State of :func:`adagrad`: the running sum of squared gradients, shaped like the params."""

    sum_of_squares: Params


def _scale_by_adagrad(initial_accumulator: ArrayLike, eps: ArrayLike) -> optax.GradientTransformation:
    # optax.scale_by_rss computes g / sqrt(G + eps); Duchi et al. and PyTorch use g / (sqrt(G) + eps).
    def init(params: Params) -> AdagradState:
        return AdagradState(jax.tree.map(lambda p: jnp.full_like(p, initial_accumulator), params))

    def update(updates: Any, state: AdagradState, params: Params | None = None) -> tuple[Any, AdagradState]:
        del params
        sums = jax.tree.map(lambda g, s: s + g * g, updates, state.sum_of_squares)
        updates = jax.tree.map(lambda g, s: g / (jnp.sqrt(s) + eps), updates, sums)
        return updates, AdagradState(sums)

    return optax.GradientTransformation(init, update)


def adagrad(
    learning_rate: LearningRate, initial_accumulator: ArrayLike = 0.0, eps: ArrayLike = 1e-10
) -> optax.GradientTransformationExtraArgs:
    r"""Adagrad: per-coordinate rates that shrink with the sum of past squared gradients.

    .. math::
        G_t = G_{t-1} + g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta_t \frac{g_t}{\sqrt{G_t} + \epsilon}, \qquad
        G_0 = \text{initial\_accumulator}

    with :math:`\epsilon` *outside* the square root, as in Duchi et al. (their
    :math:`\delta I + \mathrm{diag}(G_t)^{1/2}`) and PyTorch.

    Args:
      learning_rate: :math:`\eta > 0`, a scalar or a schedule ``step -> lr``.
      initial_accumulator: :math:`G_0 \ge 0`.
      eps: :math:`\epsilon \ge 0`. With :math:`G_0 = \epsilon = 0` a coordinate whose
        gradients have all been exactly 0 gets 0/0 = NaN.

    Returns:
      An ``optax.GradientTransformation`` whose state holds :math:`G`
      (:class:`AdagradState`), shaped like the parameters.

    Differences from PyTorch: none in the update with PyTorch's defaults
    (``initial_accumulator_value=0``, ``eps=1e-10`` outside the square root); fnn has no
    ``lr_decay`` or ``weight_decay``. ``optax.adagrad`` differs: it computes
    :math:`g / \sqrt{G_t + \epsilon}` (epsilon inside the root, default 1e-7), starts from
    :math:`G_0 = 0.1`, and gives an update of 0 where :math:`G_t = 0`; hence this optimizer is
    written out rather than taken from optax.

    Reference: J. Duchi, E. Hazan, Y. Singer, *Adaptive Subgradient Methods for Online
    Learning and Stochastic Optimization*, JMLR 12, 2011.

    >>> opt = adagrad(0.1)
    >>> params = jnp.array([1.0, 1.0])
    >>> updates, state = opt.update(jnp.array([3.0, -0.5]), opt.init(params))
    >>> optax.apply_updates(params, updates)  # a first step of -0.1 * sign(g)
    Array([0.9, 1.1], dtype=float32)
    """
    inner = optax.chain(
        _scale_by_adagrad(
            _checks.nonnegative(initial_accumulator, "initial_accumulator"), _checks.nonnegative(eps, "eps")
        ),
        optax.scale_by_learning_rate(_learning_rate(learning_rate)),
    )
    return _keep_dtypes(inner)


def adadelta(
    learning_rate: LearningRate = 1.0, rho: ArrayLike = 0.9, eps: ArrayLike = 1e-6
) -> optax.GradientTransformationExtraArgs:
    r"""Adadelta: a step whose units come from a running RMS of past steps.

    .. math::
        E_t = \rho E_{t-1} + (1-\rho) g_t^2, \qquad
        \Delta_t = \frac{\sqrt{D_{t-1} + \epsilon}}{\sqrt{E_t + \epsilon}}\, g_t, \qquad
        D_t = \rho D_{t-1} + (1-\rho) \Delta_t^2,

    .. math:: \theta_t = \theta_{t-1} - \eta_t \Delta_t, \qquad E_0 = D_0 = 0

    with :math:`\epsilon` *inside* both square roots (it also sets the size of the first
    steps, :math:`\sqrt{\epsilon / (1-\rho)}` per coordinate). :math:`D` accumulates
    :math:`\Delta` before the learning rate, so with :math:`\eta \ne 1` it is not the square
    of the step actually taken.

    Args:
      learning_rate: :math:`\eta > 0`, a scalar or a schedule ``step -> lr``. The default 1 is
        Zeiler's method, which has no learning rate.
      rho: :math:`\rho \in [0, 1)`.
      eps: :math:`\epsilon \ge 0`.

    Returns:
      An ``optax.GradientTransformation`` whose state holds :math:`E` and :math:`D`
      (``ScaleByAdaDeltaState.e_g``, ``.e_x``), each shaped like the parameters.

    Differences from PyTorch: none in the update with PyTorch's defaults (``lr=1.0``,
    ``rho=0.9``, ``eps=1e-6``); fnn has no ``weight_decay``. Zeiler's experiments used
    :math:`\rho = 0.95`. ``optax.adadelta`` computes the same :math:`\Delta_t` but its default
    ``learning_rate=None`` applies :math:`+\Delta_t`, which climbs the loss (optax 0.2.8), and
    it requires ``params`` in ``update`` even without weight decay; here the default descends.

    Reference: M. D. Zeiler, *ADADELTA: An Adaptive Learning Rate Method*, arXiv:1212.5701,
    2012.

    >>> opt = adadelta()
    >>> params = jnp.array([1.0])
    >>> updates, state = opt.update(jnp.array([2.0]), opt.init(params))
    >>> updates  # -sqrt(1e-6) / sqrt(0.1 * 4 + 1e-6) * 2: a small step downhill
    Array([-0.00316], dtype=float32)
    """
    inner = optax.chain(
        optax.scale_by_adadelta(rho=_checks.decay_rate(rho, "rho"), eps=_checks.nonnegative(eps, "eps")),
        optax.scale_by_learning_rate(_learning_rate(learning_rate)),
    )
    return _keep_dtypes(inner)


def rmsprop(
    learning_rate: LearningRate, decay: ArrayLike = 0.9, eps: ArrayLike = 1e-8
) -> optax.GradientTransformationExtraArgs:
    r"""RMSprop: divide the gradient by a running root mean square of recent gradients.

    .. math::
        v_t = \rho v_{t-1} + (1-\rho) g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta_t \frac{g_t}{\sqrt{v_t} + \epsilon}, \qquad v_0 = 0

    with :math:`\rho` = ``decay`` and :math:`\epsilon` *outside* the square root. There is no
    bias correction, so the first steps are larger than :math:`\eta` (the first is
    :math:`\eta / \sqrt{1-\rho}` per coordinate, about :math:`3.16\,\eta` for
    :math:`\rho = 0.9`).

    Args:
      learning_rate: :math:`\eta > 0`, a scalar or a schedule ``step -> lr``.
      decay: :math:`\rho \in [0, 1)`.
      eps: :math:`\epsilon \ge 0`.

    Returns:
      An ``optax.GradientTransformation`` whose state holds :math:`v`
      (``ScaleByRmsState.nu``), shaped like the parameters.

    Differences from PyTorch: ``torch.optim.RMSprop`` computes the same formula (epsilon
    outside the root, :math:`v_0 = 0`) but defaults to ``alpha=0.99`` where fnn defaults to
    :math:`\rho = 0.9` (Tieleman and Hinton's value); pass ``decay=0.99`` to match. fnn has no
    ``momentum``, ``centered`` or ``weight_decay`` options. ``optax.rmsprop`` defaults to
    ``decay=0.9`` but to ``eps_in_sqrt=True``, i.e. :math:`g / \sqrt{v_t + \epsilon}`; fnn is
    ``optax.rmsprop(..., eps_in_sqrt=False)``.

    Reference: T. Tieleman, G. Hinton, *Lecture 6.5, RMSprop*, COURSERA: Neural Networks for
    Machine Learning, 2012.

    >>> opt = rmsprop(0.01, decay=0.75)
    >>> updates, state = opt.update(jnp.array([2.0]), opt.init(jnp.array([1.0])))
    >>> updates  # -0.01 * 2 / (sqrt(0.25 * 4) + 1e-8)
    Array([-0.02], dtype=float32)
    """
    inner = optax.rmsprop(
        _learning_rate(learning_rate),
        decay=_checks.decay_rate(decay, "decay"),
        eps=_checks.nonnegative(eps, "eps"),
        eps_in_sqrt=False,
    )
    return _keep_dtypes(inner)


def adam(
    learning_rate: LearningRate, b1: ArrayLike = 0.9, b2: ArrayLike = 0.999, eps: ArrayLike = 1e-8
) -> optax.GradientTransformationExtraArgs:
    r"""Adam: bias-corrected running averages of the gradient and of its square.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \qquad m_0 = v_0 = 0,

    .. math::
        \hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t},

    .. math:: \theta_t = \theta_{t-1} - \eta_t \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

    with :math:`\epsilon` *outside* the square root of the bias-corrected :math:`\hat v_t`
    (Algorithm 1 of the paper). The first step is :math:`\eta\, g / (|g| + \epsilon)`, about
    :math:`\eta` per coordinate.

    Args:
      learning_rate: :math:`\eta > 0`, a scalar or a schedule ``step -> lr``.
      b1: :math:`\beta_1 \in [0, 1)`.
      b2: :math:`\beta_2 \in [0, 1)`.
      eps: :math:`\epsilon \ge 0`.

    Returns:
      An ``optax.GradientTransformation`` whose state holds the step count (int32 scalar) and
      :math:`m, v` (``ScaleByAdamState.mu``, ``.nu``), each shaped like the parameters.

    Differences from PyTorch: none in the update; ``torch.optim.Adam`` with its defaults
    computes :math:`\eta / (1-\beta_1^t) \cdot m_t / (\sqrt{v_t} / \sqrt{1-\beta_2^t} + \epsilon)`,
    the same quantity. Its ``weight_decay`` adds :math:`\lambda\theta` to the gradient (L2,
    coupled); fnn's :func:`adam` has none (see :func:`adamw`). TensorFlow/Keras instead use the
    paper's "efficient" variant with :math:`\hat\epsilon` added to :math:`\sqrt{v_t}` before bias
    correction. ``optax.adam`` is the same as fnn.

    Reference: D. P. Kingma, J. Ba, *Adam: A Method for Stochastic Optimization*, ICLR 2015.

    >>> opt = adam(0.1)
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> updates, state = opt.update({"w": jnp.array([0.5, -1.0])}, opt.init(params))
    >>> optax.apply_updates(params, updates)  # a first step of -0.1 * sign(g)
    {'w': Array([ 0.9, -1.9], dtype=float32)}
    """
    inner = optax.adam(
        _learning_rate(learning_rate),
        b1=_checks.decay_rate(b1, "b1"),
        b2=_checks.decay_rate(b2, "b2"),
        eps=_checks.nonnegative(eps, "eps"),
    )
    return _keep_dtypes(inner)


def adamw(
    learning_rate: LearningRate,
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    weight_decay: ArrayLike = 1e-2,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""AdamW: Adam with weight decay applied to the parameters, not added to the gradient.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \qquad m_0 = v_0 = 0,

    .. math::
        \hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t},

    .. math::
        \theta_t = \theta_{t-1} - \eta_t \Big(\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
        + \lambda \theta_{t-1}\Big)

    with :math:`\lambda` = ``weight_decay`` and :math:`\epsilon` outside the square root. The
    decay does not pass through :math:`m` and :math:`v`, unlike L2 regularisation in Adam.
    ``update`` needs ``params``.

    Args:
      learning_rate: :math:`\eta > 0`, a scalar or a schedule ``step -> lr``.
      b1: :math:`\beta_1 \in [0, 1)`.
      b2: :math:`\beta_2 \in [0, 1)`.
      eps: :math:`\epsilon \ge 0`.
      weight_decay: :math:`\lambda \ge 0`, applied to every leaf (biases included) unless
        ``mask`` says otherwise.
      mask: ``None`` (decay every leaf), a pytree of bools like the parameters, or a function
        ``params -> pytree of bools``, e.g. ``fnn.penalties.mask`` for the weights only.

    Returns:
      An ``optax.GradientTransformation`` whose state holds the step count and :math:`m, v`,
      each shaped like the parameters.

    Differences from PyTorch: none in the update; ``torch.optim.AdamW`` multiplies the
    parameters by :math:`1 - \eta_t\lambda` before its Adam step, the same quantity, and its
    default ``weight_decay=1e-2`` is fnn's. ``optax.adamw`` computes the same update with a
    default ``weight_decay=1e-4``. In the paper the decay is scaled by the schedule multiplier
    only, :math:`\theta_t = \theta_{t-1} - s_t(\alpha \hat m_t / (\sqrt{\hat v_t}+\epsilon)
    + \lambda' \theta_{t-1})`; PyTorch's, optax's and fnn's :math:`\lambda` is
    :math:`\lambda' / \alpha`.

    Reference: I. Loshchilov, F. Hutter, *Decoupled Weight Decay Regularization*, ICLR 2019.

    >>> opt = adamw(0.1, weight_decay=0.5)
    >>> params = jnp.array([2.0])
    >>> updates, state = opt.update(jnp.array([1.0]), opt.init(params), params)
    >>> updates  # -0.1 * (1 + 0.5 * 2)
    Array([-0.2], dtype=float32)
    """
    inner = optax.adamw(
        _learning_rate(learning_rate),
        b1=_checks.decay_rate(b1, "b1"),
        b2=_checks.decay_rate(b2, "b2"),
        eps=_checks.nonnegative(eps, "eps"),
        weight_decay=_checks.nonnegative(weight_decay, "weight_decay"),
        mask=mask,
    )
    return _keep_dtypes(inner)


# ----------------------------------------------------------------------------------------
# The registry of names.
# ----------------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "adadelta": adadelta,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamw": adamw,
}


def names() -> tuple[str, ...]:
    """The registered optimizer names, sorted.

    >>> names()
    ('adadelta', 'adagrad', 'adam', 'adamw', 'momentum', 'nesterov', 'rmsprop', 'sgd')
    """
    return tuple(sorted(_REGISTRY))


def default_learning_rate(name: str) -> Any:
    """The default ``learning_rate`` of the named optimizer; ``TypeError`` if it has none.

    >>> default_learning_rate("adadelta")
    1.0
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown optimizer {name!r}; known names: {', '.join(names())}")
    default = inspect.signature(_REGISTRY[name]).parameters["learning_rate"].default
    if default is inspect.Parameter.empty:
        raise TypeError(f"optimizer {name!r} has no default learning_rate; pass hyperparams['learning_rate']")
    return default


def get(optimizer: str | optax.GradientTransformation, **hyperparams: Any) -> optax.GradientTransformation:
    """Build an optimizer by name; an ``optax.GradientTransformation`` passes through.

    Args:
      optimizer: a registry name (see :func:`names`) or an ``optax.GradientTransformation``.
      **hyperparams: the keyword arguments of the named function, e.g. ``learning_rate`` and
        ``b1`` for ``"adam"``; values may be traced.

    Raises:
      ValueError: for an unknown name (the message lists the known ones), an unknown
        hyperparameter, or a hyperparameter out of range.
      TypeError: for anything that is neither a string nor a gradient transformation, or a
        missing ``learning_rate`` where it has no default.

    >>> opt = get("adam", learning_rate=0.1)
    >>> updates, state = opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))
    >>> updates
    Array([-0.1], dtype=float32)
    >>> get("adamm", learning_rate=0.1)
    Traceback (most recent call last):
    ...
    ValueError: unknown optimizer 'adamm'; known names: adadelta, adagrad, adam, adamw, momentum, nesterov, rmsprop, sgd
    """
    if isinstance(optimizer, optax.GradientTransformation):
        if hyperparams:
            raise ValueError(f"hyperparameters {sorted(hyperparams)} cannot be given with a GradientTransformation")
        return optimizer
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be a name or an optax.GradientTransformation, got {type(optimizer).__name__}")
    if optimizer not in _REGISTRY:
        raise ValueError(f"unknown optimizer {optimizer!r}; known names: {', '.join(names())}")
    factory = _REGISTRY[optimizer]
    allowed = tuple(inspect.signature(factory).parameters)
    unknown = sorted(set(hyperparams) - set(allowed))
    if unknown:
        raise ValueError(f"optimizer {optimizer!r} takes hyperparameters ({', '.join(allowed)}), got {unknown}")
    return factory(**hyperparams)
