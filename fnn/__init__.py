"""fnn: feedforward neural networks from first principles, in JAX.

Every piece is a pure function over plain pytrees, carries its hand-written derivative, and is
tested against ``jax.grad`` and finite differences. Weights are laid out ``[in, out]`` and
inputs are rows: a layer computes ``x @ W + b``.

The package is layered; each subpackage imports only those above it in this list:

  data       Dataset; synthetic sets and the logic gates; loaders (digits, npz, CSV, IDX) and
             class names; splits (with their indices) and standardisation
  nn         activations, losses, initializers, dropout, batch_norm, the functional mlp, its
             hand-written backprop, gradcheck, perceptron, linear models
  models     the Model and HandGradient protocols; MLP and ResidualMLP; predict
  optim      optimizers, schedules, full-batch descent, the classic learning rules
  train      the Trainer and fit_many; progress, plots; penalties, mixup, early stopping,
             checkpoints; saved models (save_model, load_model)
  selection  k-fold, ensembles, bias-variance, Gaussian process, Bayesian optimisation
  theory     universal approximation, linear regions, distribution fitting

Beneath them all: ``fnn.io`` (atomic JSON/npz/figure writing, JSON conversion) and
``fnn.checking`` (value checks under ``jit``, ``raise_if_nonfinite``).

Every module is also reachable by its short name (``fnn.losses``, ``fnn.mlp``, ``fnn.kfold``,
...), and the models by ``fnn.MLP``, ``fnn.Model`` and ``fnn.ResidualMLP``.
"""

from fnn import checking as checking
from fnn import data as data
from fnn import io as io
from fnn import models as models
from fnn import nn as nn
from fnn import optim as optim
from fnn import selection as selection
from fnn import theory as theory
from fnn import train as train
from fnn.models import MLP as MLP
from fnn.models import Model as Model
from fnn.models import ResidualMLP as ResidualMLP
from fnn.models import model as model
from fnn.models import residual as residual
from fnn.nn import activations as activations
from fnn.nn import backprop as backprop
from fnn.nn import batch_norm as batch_norm
from fnn.nn import dropout as dropout
from fnn.nn import gradcheck as gradcheck
from fnn.nn import initializers as initializers
from fnn.nn import linear as linear
from fnn.nn import losses as losses
from fnn.nn import mlp as mlp
from fnn.nn import perceptron as perceptron
from fnn.optim import descent as descent
from fnn.optim import optimizers as optimizers
from fnn.optim import rules as rules
from fnn.optim import schedules as schedules
from fnn.selection import bayesopt as bayesopt
from fnn.selection import bias_variance as bias_variance
from fnn.selection import ensemble as ensemble
from fnn.selection import gaussian_process as gaussian_process
from fnn.selection import kfold as kfold
from fnn.theory import approximation as approximation
from fnn.theory import distribution_fit as distribution_fit
from fnn.theory import regions as regions
from fnn.train import checkpoint as checkpoint
from fnn.train import early_stopping as early_stopping
from fnn.train import mixup as mixup
from fnn.train import penalties as penalties

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "Model",
    "ResidualMLP",
    "activations",
    "approximation",
    "backprop",
    "batch_norm",
    "bayesopt",
    "bias_variance",
    "checking",
    "checkpoint",
    "data",
    "descent",
    "distribution_fit",
    "dropout",
    "early_stopping",
    "ensemble",
    "gaussian_process",
    "gradcheck",
    "initializers",
    "io",
    "kfold",
    "linear",
    "losses",
    "mixup",
    "mlp",
    "model",
    "models",
    "nn",
    "optim",
    "optimizers",
    "penalties",
    "perceptron",
    "regions",
    "residual",
    "rules",
    "schedules",
    "selection",
    "theory",
    "train",
]
