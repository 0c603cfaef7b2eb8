"""Exact weight exchange between the NumPy models and their PyTorch twins, in both directions.

Values are copied bit for bit and the dtype is kept: float64 arrays become float64 tensors and
back. Because names and layouts already agree, no key is renamed and no array is transposed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from tinycnn.torch_impl.models import MLP, TinyCNN
from torch import nn

__all__ = ["from_reference", "load_params", "module_for", "params_of", "to_reference"]

_TWINS = {"TinyCNN": TinyCNN, "MLP": MLP}


def load_params(module: nn.Module, params: Mapping[str, np.ndarray]) -> nn.Module:
    """Copy NumPy ``params`` into ``module`` (names and shapes checked), keeping their dtype."""
    expected = module.state_dict()
    if set(params) != set(expected):
        raise ValueError(
            f"{type(module).__name__} expects parameters {sorted(expected)}, got {sorted(params)}"
        )
    dtypes = {np.asarray(p).dtype for p in params.values()}
    if len(dtypes) != 1:
        raise ValueError(f"parameters must share one dtype, got {sorted(map(str, dtypes))}")
    module.to(torch.from_numpy(np.zeros(0, dtype=dtypes.pop())).dtype)
    state = {name: torch.from_numpy(np.array(value, copy=True)) for name, value in params.items()}
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ValueError(
                f"parameter {name!r} must have shape {tuple(expected[name].shape)}, "
                f"got {tuple(tensor.shape)}"
            )
    module.load_state_dict(state)
    return module


def params_of(module: nn.Module) -> dict[str, np.ndarray]:
    """The module's parameters as NumPy arrays (copies), keyed by ``state_dict`` name."""
    return {name: t.detach().cpu().numpy().copy() for name, t in module.state_dict().items()}


def module_for(kind: str, config: Mapping) -> nn.Module:
    """Build the twin of a NumPy model from its class name and ``config``."""
    if kind not in _TWINS:
        raise ValueError(f"no PyTorch twin for model {kind!r}; known: {sorted(_TWINS)}")
    return _TWINS[kind](**config)


def from_reference(model) -> nn.Module:
    """A PyTorch twin of a NumPy model, holding exactly its parameters (and dtype)."""
    return load_params(module_for(type(model).__name__, model.config), model.params)


def to_reference(module: nn.Module, ops=None):
    """A NumPy model holding exactly the parameters (and dtype) of a PyTorch twin."""
    from tinycnn import reference

    kind = type(module).__name__
    model = getattr(reference, kind)(**module.config, ops=ops)
    return model.load_params(params_of(module))
