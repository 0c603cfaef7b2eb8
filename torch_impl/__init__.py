"""The PyTorch twins of the NumPy models, loading the very same weights and data.

>>> from tinycnn import reference, torch_impl
>>> twin = torch_impl.from_reference(reference.TinyCNN(seed=0))
>>> sum(p.numel() for p in twin.parameters())
114
"""

from tinycnn.torch_impl.models import MLP, TinyCNN
from tinycnn.torch_impl.train import evaluate, train
from tinycnn.torch_impl.weights import (
    from_reference,
    load_params,
    module_for,
    params_of,
    to_reference,
)

__all__ = [
    "MLP",
    "TinyCNN",
    "evaluate",
    "from_reference",
    "load_params",
    "module_for",
    "params_of",
    "to_reference",
    "train",
]
