"""Stochastic gradient descent with momentum and weight decay, as ``torch.optim.SGD`` defines it.

For each parameter ``p`` with gradient ``g`` (PyTorch's documented update, ``maximize=False``)::

    g = g + weight_decay * p                      # L2 penalty folded into the gradient
    buf = g                          (first step)
    buf = momentum * buf + (1 - dampening) * g     (later steps)
    g = g + momentum * buf  if nesterov  else  buf
    p = p - lr * g

The operations are done in this order, in the parameter's dtype, so a float64 run follows
PyTorch's step for step to rounding error.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["SGD"]


class SGD:
    """SGD over a dict of NumPy parameters, updated in place.

    Parameters
    ----------
    params : dict of str to ndarray
        The model's parameters; :meth:`step` changes these arrays in place.
    lr : float
        Learning rate, > 0.
    momentum : float, default 0
        Momentum factor in [0, 1).
    weight_decay : float, default 0
        L2 penalty coefficient, >= 0.
    dampening : float, default 0
    nesterov : bool, default False
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``, as in PyTorch.
    """

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
    ):
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening 0")
        self.params = params
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.dampening, self.nesterov = dampening, nesterov
        self.momentum_buffers: dict[str, np.ndarray] = {}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Apply one update using ``grads`` (same keys and shapes as the parameters)."""
        if grads.keys() != self.params.keys():  # compares the key sets, without building sets
            raise ValueError(f"gradients for {sorted(grads)} but parameters {sorted(self.params)}")
        for name, p in self.params.items():
            g = grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                buf = self.momentum_buffers.get(name)
                if buf is None:
                    buf = self.momentum_buffers[name] = np.array(g, dtype=p.dtype, copy=True)
                else:
                    buf *= self.momentum
                    if self.dampening:
                        buf += (1 - self.dampening) * g
                    else:  # the same numbers: (1 - 0) * g is exactly g, one temporary fewer
                        buf += g
                g = g + self.momentum * buf if self.nesterov else buf
            p -= self.lr * g
