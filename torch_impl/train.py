"""The PyTorch twin of :func:`tinycnn.reference.train.train`: ``torch.optim.SGD`` on the same
batches.

Data, minibatch order and the history record come from :mod:`tinycnn.reference` (they are data, not
model code); every forward pass, gradient and update here is PyTorch's own.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tinycnn.reference.data import Dataset
from tinycnn.reference.train import (
    History,
    TrainConfig,
    _progress_bar,
    as_labels,
    epoch_batches,
)
from tinycnn.torch_impl.weights import params_of
from torch import nn

__all__ = ["evaluate", "sgd_step", "train"]


def sgd_step(
    module: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, labels: torch.Tensor
) -> float:
    """One minibatch step: loss, backward pass, update. Returns the minibatch loss."""
    optimizer.zero_grad()
    loss = F.cross_entropy(module(x), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


@torch.no_grad()
def evaluate(module: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``module`` on ``(x, labels)``."""
    logits = module(x)
    loss = F.cross_entropy(logits, labels)
    return float(loss), float((logits.argmax(dim=1) == labels).double().mean())


def train(
    module: nn.Module,
    dataset: Dataset,
    config: TrainConfig | None = None,
    progress: bool | Callable[[int, History], None] = False,
    num_threads: int | None = 1,
) -> History:
    """Train ``module`` in place; same arguments and history as the NumPy ``train``.

    ``num_threads`` sets PyTorch's intra-op threads for the run (restored afterwards). A model of
    a hundred parameters gains nothing from threads and loses a lot when cores are busy (measured
    here: 30x slower with 2 threads on a loaded 2-core machine); None keeps the current setting.
    """
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _train(module, dataset, config or TrainConfig(), progress)
    finally:
        torch.set_num_threads(previous_threads)


def _train(module, dataset, config, progress) -> History:
    dtype = next(module.parameters()).dtype
    x_train = torch.as_tensor(dataset.x_train, dtype=dtype)
    x_val = torch.as_tensor(dataset.x_val, dtype=dtype)
    # Any integer labels (int8 ... uint64) become int64, the class indices F.cross_entropy takes.
    y_train = torch.as_tensor(as_labels(dataset.y_train, len(x_train)))
    y_val = torch.as_tensor(as_labels(dataset.y_val, len(x_val)))
    optimizer = torch.optim.SGD(
        module.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    history = History()

    def end_of_epoch(epoch: int) -> None:
        history.record(
            evaluate(module, x_train, y_train),
            evaluate(module, x_val, y_val) if len(y_val) else (np.nan, np.nan),
        )
        if epoch in config.snapshot_epochs:
            history.snapshots[epoch] = params_of(module)

    end_of_epoch(0)
    with _progress_bar(progress, config.epochs, type(module).__name__ + " (torch)") as report:
        for epoch in range(1, config.epochs + 1):
            for batch in epoch_batches(len(y_train), config.batch_size, epoch, config.seed):
                index = torch.from_numpy(batch)
                history.step_loss.append(
                    sgd_step(module, optimizer, x_train[index], y_train[index])
                )
            end_of_epoch(epoch)
            report(epoch, history)
    return history
