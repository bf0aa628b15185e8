"""Training: a whole run as one compiled, vmappable function, and what it is regularised by.

Modules:
  trainer         the :class:`Trainer`, :class:`TrainState` and :class:`History`
  many            :func:`fit_many`: many runs as one program, chunked and sharded over a mesh
  penalties       L1, L2 and elastic-net penalties on chosen leaves; decoupled weight decay
  mixup           convex combinations of examples and labels
  early_stopping  patience on a validation metric, inside the compiled fit
  checkpoint      atomic save and restore of any pytree

Layer: above :mod:`fnn.optim`; below :mod:`fnn.selection`.
"""

from fnn.train import checkpoint as checkpoint
from fnn.train import early_stopping as early_stopping
from fnn.train import many as many
from fnn.train import mixup as mixup
from fnn.train import penalties as penalties
from fnn.train import trainer as trainer
from fnn.train.early_stopping import EarlyStopping as EarlyStopping
from fnn.train.early_stopping import EarlyStoppingState as EarlyStoppingState
from fnn.train.many import fit_many as fit_many
from fnn.train.trainer import REGULARIZATION as REGULARIZATION
from fnn.train.trainer import History as History
from fnn.train.trainer import Trainer as Trainer
from fnn.train.trainer import TrainState as TrainState

__all__ = [
    "trainer",
    "many",
    "penalties",
    "mixup",
    "early_stopping",
    "checkpoint",
    "Trainer",
    "TrainState",
    "History",
    "fit_many",
    "REGULARIZATION",
    "EarlyStopping",
    "EarlyStoppingState",
]
