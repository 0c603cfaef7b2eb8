"""TinyCNN and the MLP as ``torch.nn.Module``s: the framework twins of
:mod:`tinycnn.reference.models`.

Module and parameter names (``conv``, ``fc``, ``hidden``, ``out``) are chosen so that
``state_dict()`` has exactly the keys and layouts of the NumPy models' parameter dicts.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLP", "TinyCNN"]


class TinyCNN(nn.Module):
    """Conv2d -> ReLU -> MaxPool2d -> Flatten -> Linear; same arguments as the NumPy TinyCNN.

    Shape: ``(N, 1, S, S)`` -> ``(N, n_classes)`` logits (softmax lives in the loss).
    """

    def __init__(
        self,
        n_filters: int = 3,
        kernel_size: int = 3,
        n_classes: int = 3,
        *,
        image_size: int = 8,
        pool_size: int = 2,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        if kernel_size > image_size:
            raise ValueError(f"kernel {kernel_size} does not fit input {image_size} with padding 0")
        pooled = (image_size - kernel_size + 1) // pool_size
        if pooled < 1:
            conv_size = image_size - kernel_size + 1
            raise ValueError(f"pool size {pool_size} does not fit {conv_size}-pixel feature maps")
        self.config = {
            "n_filters": n_filters,
            "kernel_size": kernel_size,
            "n_classes": n_classes,
            "image_size": image_size,
            "pool_size": pool_size,
        }
        self.conv = nn.Conv2d(1, n_filters, kernel_size, dtype=dtype)
        self.pool = nn.MaxPool2d(pool_size, pool_size)
        self.fc = nn.Linear(n_filters * pooled * pooled, n_classes, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))  # N, F, S-K+1, S-K+1
        x = self.pool(x)  # N, F, P, P
        return self.fc(torch.flatten(x, 1))  # N, n_classes


class MLP(nn.Module):
    """Flatten -> Linear -> ReLU -> Linear; same arguments as the NumPy MLP."""

    def __init__(
        self,
        hidden: int = 18,
        n_classes: int = 3,
        *,
        image_size: int = 8,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        self.config = {"hidden": hidden, "n_classes": n_classes, "image_size": image_size}
        self.hidden = nn.Linear(image_size * image_size, hidden, dtype=dtype)
        self.out = nn.Linear(hidden, n_classes, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.hidden(torch.flatten(x, 1)))  # N, hidden
        return self.out(x)  # N, n_classes
