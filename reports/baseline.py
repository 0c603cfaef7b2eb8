"""Softmax regression on the 64 pixels: the linear baseline of section 4, in NumPy and PyTorch.

The lecture says the stripe task is "non-trivial for a linear classifier". The cheapest way to
test that is to train one with exactly the same data, optimiser and schedule as TinyCNN.
:class:`SoftmaxRegression` has the interface :func:`reference.train.train` needs (``params``,
``dtype``, ``ops``, ``forward``, ``loss_and_gradients``) and is built from the contract ops, so
its gradient is the one the parity suite already checks.
"""

from __future__ import annotations

import numpy as np

from reference import ops as reference_ops
from reference.models import init_uniform

__all__ = ["SoftmaxRegression", "torch_twin"]


class SoftmaxRegression:
    """``logits = flatten(x) @ W.T + b``: one dense layer from the ``S*S`` pixels to the classes.

    Parameters
    ----------
    n_classes : int, default 3
    image_size : int, default 8
    seed : int, default 0
        Seed of the initial parameters (PyTorch's ``nn.Linear`` distribution).

    Parameters live under ``linear.weight (n_classes, S*S)`` and ``linear.bias (n_classes,)``,
    the ``state_dict`` names of :func:`torch_twin`.
    """

    def __init__(self, n_classes: int = 3, *, image_size: int = 8, seed: int = 0):
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        n_inputs = image_size * image_size
        rng = np.random.default_rng(seed)
        self.config = {"n_classes": n_classes, "image_size": image_size}
        self.ops = reference_ops
        self.params = {
            "linear.weight": init_uniform(rng, (n_classes, n_inputs), n_inputs),
            "linear.bias": init_uniform(rng, (n_classes,), n_inputs),
        }

    @property
    def dtype(self) -> np.dtype:
        return self.params["linear.weight"].dtype

    @property
    def n_parameters(self) -> int:
        return sum(int(p.size) for p in self.params.values())

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits ``(N, n_classes)`` for images ``x (N, 1, S, S)``."""
        flat = x.reshape(len(x), -1)  # N, S*S
        return self.ops.linear_forward(flat, self.params["linear.weight"],
                                       self.params["linear.bias"])

    def loss_and_gradients(self, x: np.ndarray, labels: np.ndarray):
        """Batch-mean cross-entropy and its gradient for both parameters."""
        flat = x.reshape(len(x), -1)  # N, S*S
        logits = self.ops.linear_forward(flat, self.params["linear.weight"],
                                         self.params["linear.bias"])
        loss, dlogits = self.ops.softmax_cross_entropy(logits, labels)
        _, dw, db = self.ops.linear_backward(dlogits, flat, self.params["linear.weight"],
                                             self.params["linear.bias"])
        return float(loss), {"linear.weight": dw, "linear.bias": db}


def torch_twin(model: SoftmaxRegression):
    """The same softmax regression as a ``torch.nn.Module``, holding exactly ``model``'s weights."""
    import torch
    from torch import nn

    from torch_impl.weights import load_params

    class TorchSoftmaxRegression(nn.Module):
        def __init__(self, n_classes: int, image_size: int):
            super().__init__()
            self.linear = nn.Linear(image_size * image_size, n_classes, dtype=torch.float64)

        def forward(self, x):
            return self.linear(torch.flatten(x, 1))  # N, n_classes

    module = TorchSoftmaxRegression(**model.config)
    return load_params(module, model.params)
