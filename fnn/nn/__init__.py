"""The pieces of a network and their hand-written derivatives.

Modules:
  activations   step, sigmoid, tanh, ReLU and generalised rectifiers, softplus, hard tanh, RBF,
                softmax; each with its derivative and ``vjp``
  losses        MSE, L1, cross-entropy, binary CE, Gaussian NLL, KL, JS, MMD; each with ``grad``
  initializers  He, Glorot/Xavier, LeCun and normal weight schemes; PyTorch's nn.Linear default
  dropout       inverted dropout with an explicit key, and its ``vjp``
  batch_norm    batch normalisation as pure ``(params, state)``, and its ``vjp``
  mlp           the functional multilayer perceptron: ``init`` and ``apply`` of ``(params, x)``
  backprop      the chain rule by hand: forward with caches, backward, value_and_grad
  gradcheck     hand-written against autodiff against finite differences, per layer
  perceptron    the perceptron, logic gates, XOR as a two-layer network
  linear        linear, logistic and multinomial (softmax) regression, closed-form least squares

Layer: above :mod:`fnn.data`; below :mod:`fnn.models`.
"""

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

__all__ = [
    "activations",
    "losses",
    "initializers",
    "dropout",
    "batch_norm",
    "mlp",
    "backprop",
    "gradcheck",
    "perceptron",
    "linear",
]
