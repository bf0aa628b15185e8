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
"""

from fnn import activations as activations
from fnn import backprop as backprop
from fnn import checking as checking
from fnn import checkpoint as checkpoint
from fnn import data as data
from fnn import descent as descent
from fnn import gradcheck as gradcheck
from fnn import initializers as initializers
from fnn import linear as linear
from fnn import losses as losses
from fnn import mlp as mlp
from fnn import model as model
from fnn import optimizers as optimizers
from fnn import perceptron as perceptron
from fnn import rules as rules
from fnn import schedules as schedules
from fnn import train as train
from fnn.mlp import MLP as MLP
from fnn.model import Model as Model

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "Model",
    "activations",
    "backprop",
    "checking",
    "checkpoint",
    "data",
    "descent",
    "gradcheck",
    "initializers",
    "linear",
    "losses",
    "mlp",
    "model",
    "optimizers",
    "perceptron",
    "rules",
    "schedules",
    "train",
]
