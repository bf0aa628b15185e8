"""Models: the protocol training uses, and the models that follow it.

Modules:
  model     the :class:`Model` protocol (``init``, ``apply``), the :class:`HandGradient`
            protocol (``backprop``), and :func:`value_and_grad_fn`
  mlp       :class:`MLP`: dropout, batch normalisation, and its hand-written ``backprop``
  residual  :class:`ResidualMLP`, with its hand-written ``backprop``
  prediction :func:`predict`: outputs, probabilities, classes, means and variances in
             evaluation mode, batched, for one model or an ensemble

Layer: above :mod:`fnn.nn`; below :mod:`fnn.optim`.
"""

from fnn.models import mlp as mlp
from fnn.models import model as model
from fnn.models import prediction as prediction
from fnn.models import residual as residual
from fnn.models.mlp import MLP as MLP
from fnn.models.model import HandGradient as HandGradient
from fnn.models.model import Model as Model
from fnn.models.model import value_and_grad_fn as value_and_grad_fn
from fnn.models.prediction import predict as predict
from fnn.models.residual import ResidualMLP as ResidualMLP
from fnn.models.residual import plain_counterpart as plain_counterpart
from fnn.models.residual import plain_params as plain_params

__all__ = [
    "model",
    "mlp",
    "residual",
    "prediction",
    "Model",
    "HandGradient",
    "value_and_grad_fn",
    "predict",
    "MLP",
    "ResidualMLP",
    "plain_counterpart",
    "plain_params",
]
