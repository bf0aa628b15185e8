"""Optimisation: optimizers, learning-rate schedules, full-batch descent, the classic rules.

Modules:
  optimizers  SGD, momentum, Nesterov, Adagrad, Adadelta, RMSprop, Adam, AdamW (on optax)
  schedules   constant and step-decay learning rates
  descent     full-batch gradient descent and ``minimize``, each one compiled ``lax.scan``
  rules       Hebb, Oja, the perceptron rule and the delta rule as ``(init, update)`` pairs

Layer: above :mod:`fnn.models`; below :mod:`fnn.train`.
"""

from fnn.optim import descent as descent
from fnn.optim import optimizers as optimizers
from fnn.optim import rules as rules
from fnn.optim import schedules as schedules

__all__ = [
    "optimizers",
    "schedules",
    "descent",
    "rules",
]
