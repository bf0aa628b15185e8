"""Model selection: many fits as one program, and choosing among them.

Modules:
  kfold             fold indices, and all k folds trained in one vmapped call
  ensemble          N members in one vmapped call; averaged probabilities and disagreement
  bias_variance     bias, variance and noise estimated from many fits in one call
  gaussian_process  a Gaussian-process regressor for surrogate modelling
  bayesopt          Bayesian optimisation of hyperparameters, a batch per vmapped call

Layer: above :mod:`fnn.train`; below :mod:`fnn.theory`.
"""

from fnn.selection import bayesopt as bayesopt
from fnn.selection import bias_variance as bias_variance
from fnn.selection import ensemble as ensemble
from fnn.selection import gaussian_process as gaussian_process
from fnn.selection import kfold as kfold

__all__ = [
    "kfold",
    "ensemble",
    "bias_variance",
    "gaussian_process",
    "bayesopt",
]
