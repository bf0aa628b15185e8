"""Training: a whole run as one compiled, vmappable function, and what it is regularised by.

Modules:
  trainer         the :class:`Trainer`, :class:`TrainState` and :class:`History`
  many            :func:`fit_many`: many runs as one program, chunked and sharded over a mesh
  penalties       L1, L2 and elastic-net penalties on chosen leaves; decoupled weight decay
  mixup           convex combinations of examples and labels
  early_stopping  patience on a validation metric, inside the compiled fit
  checkpoint      atomic save and restore of any pytree
  progress        the progress display of a fit: one line (or tqdm bar) per interval for a batch of runs
  plots           training curves of a History, or of a stack of them, as matplotlib figures
  saved_model     a trained model with its configuration in one file: save_model, load_model

Layer: above :mod:`fnn.optim`; below :mod:`fnn.selection`.
"""

from fnn.train import checkpoint as checkpoint
from fnn.train import early_stopping as early_stopping
from fnn.train import many as many
from fnn.train import mixup as mixup
from fnn.train import penalties as penalties
from fnn.train import plots as plots
from fnn.train import progress as progress
from fnn.train import saved_model as saved_model
from fnn.train import trainer as trainer
from fnn.train.early_stopping import EarlyStopping as EarlyStopping
from fnn.train.early_stopping import EarlyStoppingState as EarlyStoppingState
from fnn.train.many import fit_many as fit_many
from fnn.train.plots import plot_histories as plot_histories
from fnn.train.plots import plot_history as plot_history
from fnn.train.saved_model import SavedModel as SavedModel
from fnn.train.saved_model import SavedModelError as SavedModelError
from fnn.train.saved_model import load_model as load_model
from fnn.train.saved_model import save_model as save_model
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
    "progress",
    "plots",
    "saved_model",
    "Trainer",
    "TrainState",
    "History",
    "fit_many",
    "plot_history",
    "plot_histories",
    "REGULARIZATION",
    "EarlyStopping",
    "EarlyStoppingState",
    "SavedModel",
    "SavedModelError",
    "save_model",
    "load_model",
]
