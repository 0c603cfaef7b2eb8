"""Minibatch training of a NumPy model, with a per-epoch history and parameter snapshots.

The minibatch order comes from :func:`epoch_batches`, a function of the seed and the epoch only,
so the PyTorch twin (:mod:`tinycnn.torch_impl.train`) visits the same samples in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from tinycnn.reference.data import Dataset
from tinycnn.reference.fast import TrainingSteps, supports
from tinycnn.reference.optim import SGD

__all__ = [
    "History",
    "PublicSteps",
    "TrainConfig",
    "epoch_batches",
    "evaluate",
    "sgd_step",
    "train",
]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings, with their defaults."""

    epochs: int = 80  # passes over the training set
    batch_size: int = 32  # samples per SGD step; the last batch of an epoch may be smaller
    lr: float = 0.05  # learning rate
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 0.0  # L2 penalty, as in torch.optim.SGD
    seed: int = 0  # seed of the minibatch order (the model's init has its own seed)
    snapshot_epochs: tuple[int, ...] = ()  # keep a copy of the parameters after these epochs

    def __post_init__(self):
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        bad = [e for e in self.snapshot_epochs if not 0 <= e <= self.epochs]
        if bad:
            raise ValueError(f"snapshot epochs {bad} lie outside 0..{self.epochs}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class History:
    """What happened during training.

    ``train_loss[i]`` etc. are measured on the whole split after epoch ``i`` (index 0 is before
    the first step). ``step_loss`` holds the minibatch loss of every SGD step, in order.
    ``snapshots[e]`` is a copy of the parameters after epoch ``e``.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    snapshots: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    def record(self, train: tuple[float, float], val: tuple[float, float]) -> None:
        self.train_loss.append(train[0])
        self.train_acc.append(train[1])
        self.val_loss.append(val[0])
        self.val_acc.append(val[1])

    def first_epoch_reaching(self, accuracy: float) -> int | None:
        """First epoch whose validation accuracy is at least ``accuracy``, or None."""
        return next((epoch for epoch, acc in enumerate(self.val_acc) if acc >= accuracy), None)


def epoch_batches(n_samples: int, batch_size: int, epoch: int, seed: int) -> list[np.ndarray]:
    """Indices of the minibatches of one epoch: a fresh shuffle per ``(seed, epoch)``.

    Seeding each epoch separately (``default_rng([seed, epoch])``) means any backend, or a
    training run resumed at any epoch, draws exactly the same batches.
    """
    order = np.random.default_rng([seed, epoch]).permutation(n_samples)
    return [order[start : start + batch_size] for start in range(0, n_samples, batch_size)]


def sgd_step(model, optimizer: SGD, x: np.ndarray, labels: np.ndarray) -> float:
    """One minibatch step: loss and gradients, then the update. Returns the minibatch loss."""
    loss, grads = model.loss_and_gradients(x, labels)
    optimizer.step(grads)
    return loss


def evaluate(model, x: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, labels)``.

    ``labels`` may have any integer dtype. No samples: ``(nan, nan)``, the means of nothing.
    """
    labels = as_labels(labels, len(x))
    logits = model.forward(x)
    loss, _ = model.ops.softmax_cross_entropy(logits, labels)
    if len(labels) == 0:
        return float("nan"), float("nan")
    return float(loss), float(np.mean(logits.argmax(axis=1) == labels))


def as_labels(labels, n_samples: int) -> np.ndarray:
    """Class labels as int64, from any integer dtype (int8 ... uint64), checked once.

    Raises
    ------
    ValueError
        If ``labels`` are not integers, not ``(n_samples,)``, or do not fit in int64.
    """
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.shape != (n_samples,):
        raise ValueError(
            f"labels must be {n_samples} integers (any integer dtype), got dtype {labels.dtype} "
            f"and shape {labels.shape}"
        )
    if labels.dtype == np.uint64 and labels.size and labels.max() > np.iinfo(np.int64).max:
        raise ValueError(f"labels must be class indices, got {labels.max()}")
    return labels.astype(np.int64, copy=False)


def train(
    model,
    dataset: Dataset,
    config: TrainConfig | None = None,
    progress: bool | Callable[[int, History], None] = False,
    *,
    fast: bool = True,
) -> History:
    """Train ``model`` in place with SGD on ``dataset``; return its history.

    Parameters
    ----------
    model : reference.models.TinyCNN or reference.models.MLP
    dataset : reference.data.Dataset
    config : TrainConfig, optional
    progress : bool or callable, default False
        True shows a tqdm progress bar; a callable is called as ``progress(epoch, history)``
        after every epoch.
    fast : bool, default True
        Run the steps of a TinyCNN or MLP on the reference ops through
        :class:`tinycnn.reference.fast.TrainingSteps`: the same numbers as composing the
        public ops, bit for bit, several times faster. False (or any other model or ops)
        composes the public ops step by step, as :func:`sgd_step` does.
    """
    config = config or TrainConfig()
    x_train = dataset.x_train.astype(model.dtype)
    x_val = dataset.x_val.astype(model.dtype)
    # Any integer labels (int8 ... uint64): int64 from here on, for every backend and path.
    y_train = as_labels(dataset.y_train, len(x_train))
    y_val = as_labels(dataset.y_val, len(x_val))
    history = History()
    if fast and supports(model):
        steps = TrainingSteps(
            model,
            x_train,
            y_train,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    else:
        steps = PublicSteps(model, x_train, y_train, config)

    def end_of_epoch(epoch: int) -> None:
        history.record(
            steps.evaluate(x_train, y_train),
            steps.evaluate(x_val, y_val) if len(y_val) else (np.nan, np.nan),
        )
        if epoch in config.snapshot_epochs:
            history.snapshots[epoch] = {k: v.copy() for k, v in model.params.items()}

    try:
        end_of_epoch(0)
        with _progress_bar(progress, config.epochs, type(model).__name__) as report:
            for epoch in range(1, config.epochs + 1):
                for batch in epoch_batches(len(y_train), config.batch_size, epoch, config.seed):
                    history.step_loss.append(steps(batch))
                end_of_epoch(epoch)
                report(epoch, history)
    finally:
        steps.close()
    return history


class PublicSteps:
    """SGD steps composing the model's public ops, one minibatch per call (see :func:`sgd_step`).

    The interface of :class:`tinycnn.reference.fast.TrainingSteps`: call with the indices of a
    minibatch, get its loss; :meth:`evaluate` the model on a split; :meth:`close` when done.
    """

    def __init__(self, model, x: np.ndarray, labels: np.ndarray, config: TrainConfig):
        self.model, self.x, self.labels = model, x, labels
        self.optimizer = SGD(
            model.params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )

    def __call__(self, batch: np.ndarray) -> float:
        return sgd_step(self.model, self.optimizer, self.x[batch], self.labels[batch])

    def evaluate(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        return evaluate(self.model, x, labels)

    def close(self) -> None:
        pass


class _progress_bar:
    """Context manager turning ``progress`` into a per-epoch callback (tqdm bar for True)."""

    def __init__(self, progress, epochs: int, description: str):
        self.progress, self.epochs, self.description = progress, epochs, description
        self.bar = None

    def __enter__(self) -> Callable[[int, History], None]:
        if callable(self.progress):
            return self.progress
        if not self.progress:
            return lambda epoch, history: None
        from tqdm.auto import tqdm

        # disable=None: tqdm draws the bar only on a terminal, never into a pipe or a log.
        self.bar = tqdm(
            total=self.epochs, desc=f"train {self.description}", unit="epoch", disable=None
        )

        def report(epoch: int, history: History) -> None:
            self.bar.set_postfix(
                loss=f"{history.train_loss[-1]:.3f}", val_acc=f"{history.val_acc[-1]:.3f}"
            )
            self.bar.update(1)

        return report

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
