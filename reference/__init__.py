"""TinyCNN and its MLP rivals written from scratch in NumPy (no PyTorch below this package).

>>> from tinycnn.reference import TinyCNN, MLP
>>> TinyCNN().n_parameters
114
"""

from tinycnn.reference.data import (
    CLASS_NAMES,
    DIGIT_NAMES,
    Dataset,
    DatasetConfig,
    DigitsConfig,
    load_digits_dataset,
    make_dataset,
    shift_images,
)
from tinycnn.reference.gradcheck import gradient_check, numerical_gradient, relative_error
from tinycnn.reference.models import MLP, SoftmaxRegression, TinyCNN, build_model
from tinycnn.reference.ops import conv_output_size
from tinycnn.reference.optim import SGD
from tinycnn.reference.train import History, TrainConfig, epoch_batches, evaluate, train

__all__ = [
    "CLASS_NAMES",
    "DIGIT_NAMES",
    "MLP",
    "SGD",
    "Dataset",
    "DatasetConfig",
    "DigitsConfig",
    "History",
    "SoftmaxRegression",
    "TinyCNN",
    "TrainConfig",
    "build_model",
    "conv_output_size",
    "epoch_batches",
    "evaluate",
    "gradient_check",
    "load_digits_dataset",
    "make_dataset",
    "numerical_gradient",
    "relative_error",
    "shift_images",
    "train",
]
