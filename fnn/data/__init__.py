"""Data: the data set type, synthetic sets, loaders of files, splits and standardisation.

The lowest layer: it imports nothing else of fnn but its shared checks and :mod:`fnn.io`.

Modules:
  dataset    the :class:`Dataset` pair ``(x, y)``, and :func:`from_arrays` for the user's arrays
  labels     :class:`LabelEncoding`, class names <-> integer labels (encode, decode)
  synthetic  the logic gates' truth tables, noisy sine, polynomial, outliers, moons, circles,
             spirals, blobs: each drawn from an explicit key
  loaders    the bundled digits, ``.npz``, CSV (header, target by name, class names) and IDX/MNIST
             files; :class:`DataInfo`, the column and class names a loader read
  splits     shuffling, train/validation/test splits (:class:`Splits`, with the rows' indices on
             request), standardisation

Every public name of the five modules is re-exported here, so ``fnn.data.load_csv`` and
``fnn.data.blobs`` are the names to type.
"""

from fnn.data import dataset as dataset
from fnn.data import labels as labels
from fnn.data import loaders as loaders
from fnn.data import splits as splits
from fnn.data import synthetic as synthetic
from fnn.data.dataset import Dataset as Dataset
from fnn.data.dataset import as_dataset as as_dataset
from fnn.data.dataset import from_arrays as from_arrays
from fnn.data.labels import LabelEncoding as LabelEncoding
from fnn.data.loaders import DataInfo as DataInfo
from fnn.data.loaders import load_csv as load_csv
from fnn.data.loaders import load_digits as load_digits
from fnn.data.loaders import load_idx as load_idx
from fnn.data.loaders import load_mnist as load_mnist
from fnn.data.loaders import load_npz as load_npz
from fnn.data.loaders import save_idx as save_idx
from fnn.data.splits import Splits as Splits
from fnn.data.splits import Standardizer as Standardizer
from fnn.data.splits import shuffle as shuffle
from fnn.data.splits import standardize_apply as standardize_apply
from fnn.data.splits import standardize_fit as standardize_fit
from fnn.data.splits import train_val_test_split as train_val_test_split
from fnn.data.synthetic import TRUTH_TABLES as TRUTH_TABLES
from fnn.data.synthetic import blobs as blobs
from fnn.data.synthetic import circles as circles
from fnn.data.synthetic import logic_gate as logic_gate
from fnn.data.synthetic import noisy_sine as noisy_sine
from fnn.data.synthetic import polynomial as polynomial
from fnn.data.synthetic import regression_with_outliers as regression_with_outliers
from fnn.data.synthetic import spirals as spirals
from fnn.data.synthetic import truth_table as truth_table
from fnn.data.synthetic import two_moons as two_moons

__all__ = [
    "dataset",
    "labels",
    "synthetic",
    "loaders",
    "splits",
    "Dataset",
    "as_dataset",
    "from_arrays",
    "LabelEncoding",
    "DataInfo",
    "TRUTH_TABLES",
    "truth_table",
    "logic_gate",
    "noisy_sine",
    "polynomial",
    "regression_with_outliers",
    "two_moons",
    "circles",
    "spirals",
    "blobs",
    "load_digits",
    "load_npz",
    "load_csv",
    "load_idx",
    "save_idx",
    "load_mnist",
    "shuffle",
    "Splits",
    "train_val_test_split",
    "Standardizer",
    "standardize_fit",
    "standardize_apply",
]
