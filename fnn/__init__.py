"""fnn: feedforward neural networks from first principles, in JAX.

Every piece is a pure function over plain pytrees, carries its hand-written derivative, and is
tested against ``jax.grad`` and finite differences. Weights are laid out ``[in, out]`` and
inputs are rows: a layer computes ``x @ W + b``.

Modules:
  activations  step, sigmoid, tanh, ReLU and generalised rectifiers, softplus, hard tanh,
               RBF, softmax; each with its derivative
  losses       MSE, L1, cross-entropy, binary CE, Gaussian NLL, KL, JS, MMD; each with its
               derivative
  initializers He, Glorot/Xavier, LeCun and normal weight schemes
  perceptron   the perceptron, logic gates, XOR as a two-layer network
  linear       linear and logistic regression, closed-form least squares
  mlp          the multilayer perceptron of any depth, and the MLP model
  model        the model protocol that training uses
  backprop     the chain rule by hand: forward with caches, backward, value_and_grad
  descent      full-batch gradient descent as one compiled loop
  optimizers   SGD, momentum, Nesterov, Adagrad, Adadelta, RMSprop, Adam, AdamW (on optax)
  schedules    constant and step-decay learning rates
  train        the Trainer: a whole training run as one compiled, vmappable function
  rules        Hebb, Oja, the perceptron rule and the delta rule as (init, update) pairs
  data         logic gates, synthetic sets, the digits, loaders (npz, CSV, IDX), splits
  checkpoint   atomic save and restore of any pytree
  gradcheck    hand-written vs autodiff vs finite differences, per layer
  checking     value checks under jit (checkify)

Regularisation and model selection:
  penalties       L1, L2 and elastic-net penalties on chosen leaves; decoupled weight decay
  dropout         inverted dropout with an explicit key, and its backward pass
  batch_norm      batch normalisation as pure (params, state), and its backward pass
  mixup           convex combinations of examples and labels
  early_stopping  patience on a validation metric, inside the compiled fit
  kfold           fold indices, and all k folds trained in one vmapped call
  ensemble        N members in one vmapped call; averaged probabilities and disagreement
  residual        the residual MLP, with its hand-written backprop
  bias_variance   bias, variance and noise estimated from many fits in one call
  gaussian_process  a Gaussian-process regressor for surrogate modelling
  bayesopt        Bayesian optimisation of hyperparameters, a batch per vmapped call

Theory made executable:
  approximation     the universal approximation theorem, built by hand
  regions           linear pieces and regions of ReLU networks: depth against width
  distribution_fit  a Gaussian fitted to a mixture by KL either way, JS and MMD
"""

from fnn import activations as activations
from fnn import approximation as approximation
from fnn import backprop as backprop
from fnn import batch_norm as batch_norm
from fnn import bayesopt as bayesopt
from fnn import bias_variance as bias_variance
from fnn import checking as checking
from fnn import checkpoint as checkpoint
from fnn import data as data
from fnn import descent as descent
from fnn import distribution_fit as distribution_fit
from fnn import dropout as dropout
from fnn import early_stopping as early_stopping
from fnn import ensemble as ensemble
from fnn import gaussian_process as gaussian_process
from fnn import gradcheck as gradcheck
from fnn import initializers as initializers
from fnn import kfold as kfold
from fnn import linear as linear
from fnn import losses as losses
from fnn import mixup as mixup
from fnn import mlp as mlp
from fnn import model as model
from fnn import optimizers as optimizers
from fnn import penalties as penalties
from fnn import perceptron as perceptron
from fnn import regions as regions
from fnn import residual as residual
from fnn import rules as rules
from fnn import schedules as schedules
from fnn import train as train
from fnn.mlp import MLP as MLP
from fnn.model import Model as Model
from fnn.residual import ResidualMLP as ResidualMLP

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
    "kfold",
    "linear",
    "losses",
    "mixup",
    "mlp",
    "model",
    "optimizers",
    "penalties",
    "perceptron",
    "regions",
    "residual",
    "rules",
    "schedules",
    "train",
]
