"""Softmax regression on the 64 pixels: the linear baseline of section 4, in NumPy and PyTorch.

The lecture says the stripe task is "non-trivial for a linear classifier". The cheapest way to
test that is to train one with exactly the same data, optimiser and schedule as TinyCNN.
:class:`SoftmaxRegression` lives in :mod:`tinycnn.reference.models` beside TinyCNN and the MLP
(same base class, built by the same factory, ``build_model("linear")``) and is re-exported here;
this module adds its PyTorch twin.
"""

from __future__ import annotations

from tinycnn.reference.models import SoftmaxRegression

__all__ = ["SoftmaxRegression", "torch_twin"]


def torch_twin(model: SoftmaxRegression):
    """The same softmax regression as a ``torch.nn.Module``, holding exactly ``model``'s weights."""
    import torch
    from tinycnn.torch_impl.weights import load_params
    from torch import nn

    class TorchSoftmaxRegression(nn.Module):
        def __init__(self, n_classes: int, image_size: int):
            super().__init__()
            self.linear = nn.Linear(image_size * image_size, n_classes, dtype=torch.float64)

        def forward(self, x):
            return self.linear(torch.flatten(x, 1))  # N, n_classes

    module = TorchSoftmaxRegression(**model.config)
    return load_params(module, model.params)
