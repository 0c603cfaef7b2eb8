"""Softmax regression on the 64 pixels: the linear baseline of section 4, in NumPy and PyTorch.

The lecture says the stripe task is "non-trivial for a linear classifier". The cheapest way to
test that is to train one with exactly the same data, optimiser and schedule as TinyCNN.
:class:`SoftmaxRegression` is a model of :mod:`tinycnn.reference.models` (same base class as
TinyCNN and the MLP, so the same ``loss_and_gradients``, ``predict``, ``layer_summary``...) built
from the contract ops, so its gradient is the one the parity suite already checks.
"""

from __future__ import annotations

import numpy as np
from tinycnn.reference.models import IMAGE_CHANNELS, _Model, init_uniform

__all__ = ["SoftmaxRegression", "torch_twin"]


class SoftmaxRegression(_Model):
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

    name = "SoftmaxRegression"

    def __init__(self, n_classes: int = 3, *, image_size: int = 8, seed: int = 0):
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        self.config = {"n_classes": n_classes, "image_size": image_size}
        n_inputs = IMAGE_CHANNELS * image_size * image_size
        rng = np.random.default_rng(seed)
        shapes = self.parameter_shapes()
        super().__init__(
            {
                "linear.weight": init_uniform(rng, shapes["linear.weight"], n_inputs),
                "linear.bias": init_uniform(rng, shapes["linear.bias"], n_inputs),
            },
            ops=None,
        )

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        n_classes, S = self.config["n_classes"], self.config["image_size"]
        return {"linear.weight": (n_classes, IMAGE_CHANNELS * S * S), "linear.bias": (n_classes,)}

    def forward_with_activations(self, x):
        x = self._check_images(x)
        flat = x.reshape(len(x), -1)  # N, S*S
        logits = self.ops.linear_forward(
            flat, self.params["linear.weight"], self.params["linear.bias"]
        )  # N, n_classes
        return logits, {"flatten": flat, "logits": logits}

    def backward(self, dlogits, activations):
        _, dw, db = self.ops.linear_backward(
            dlogits,
            activations["flatten"],
            self.params["linear.weight"],
            self.params["linear.bias"],
        )
        return {"linear.weight": dw, "linear.bias": db}

    def _summary_layers(self):
        return [("Flatten", "flatten", None), ("Dense + bias", "logits", "linear")]


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
