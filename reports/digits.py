"""Sections 10a and 10c: TinyCNN, MLPs and the linear baseline on real 8x8 handwritten digits.

The lecture's claims about CNNs are general ("inductive bias is parameter-efficient", "the MLP
needs substantially more capacity"); its experiments use synthetic stripes only. Here the same
models train on scikit-learn's digits (:func:`tinycnn.reference.load_digits_dataset`), with the
same optimiser and schedule. Every function takes finished runs
(:class:`tinycnn.reports.runs.RunResult`) or arrays and returns a DataFrame or arrays; none trains
(scikit-learn's ``LogisticRegression``, the independent cross-check, is the one fit done here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from tinycnn.reports.experiments import accuracy_summary
from tinycnn.reports.runs import RunResult, load_data, trained_model

from tinycnn import reference

__all__ = [
    "LOGISTIC_REGRESSION_SETTINGS",
    "best_tinycnn",
    "confusion_matrix",
    "confusion_table",
    "digits_sweep_table",
    "logistic_regression_table",
    "matching_mlp",
    "sample_digits",
    "split_table",
]

#: scikit-learn's ``LogisticRegression`` fits of the cross-check: its defaults (L2 penalty with
#: ``C=1``), and a penalty weak enough to be the unregularised model our SGD baseline trains.
LOGISTIC_REGRESSION_SETTINGS = {"C = 1 (scikit-learn's default)": 1.0, "C = 10,000": 1e4}


def _family(result: RunResult) -> tuple[str, int]:
    """(family, size) of a run: ``("TinyCNN", 8)``, ``("MLP", 18)``, ``("linear", 0)``."""
    spec = result.spec
    if spec.model == "tinycnn":
        return "TinyCNN", spec.n_filters
    return ("MLP", spec.hidden) if spec.model == "mlp" else ("linear", 0)


def digits_sweep_table(configurations: Sequence[Sequence[RunResult]]) -> pd.DataFrame:
    """Accuracy over seeds of every digits configuration, one row each, in the given order.

    Parameters
    ----------
    configurations : sequence of sequences of RunResult
        The replicate runs of each configuration (TinyCNN sizes, MLP widths, the linear model).

    Returns
    -------
    DataFrame with ``model``, ``family`` (TinyCNN, MLP, linear), ``size`` (filters, hidden width
    or 0), ``n_parameters``, ``n_seeds``, ``mean``, ``min``, ``max`` (final validation accuracy),
    ``train_mean`` and ``largest_gap`` (largest ``|train - validation accuracy|`` of a seed).
    """
    rows = []
    for runs in configurations:
        family, size = _family(runs[0])
        gap = max(abs(r.train_acc[-1] - r.final_val_acc) for r in runs)
        rows.append(
            {
                "model": runs[0].spec.label,
                "family": family,
                "size": size,
                **accuracy_summary(runs),
                "largest_gap": gap,
            }
        )
    columns = ["model", "family", "size", "n_parameters", "n_seeds", "mean", "min", "max"]
    table = pd.DataFrame(rows)
    return table[[*columns, "train_mean", "largest_gap"]]


def best_tinycnn(table: pd.DataFrame) -> pd.Series:
    """The TinyCNN row with the highest mean accuracy (ties: the one with fewer parameters)."""
    cnn = table[table["family"] == "TinyCNN"]
    if cnn.empty:
        raise ValueError("the table has no TinyCNN row")
    return cnn.sort_values(["mean", "n_parameters"], ascending=[False, True]).iloc[0]


def matching_mlp(table: pd.DataFrame, accuracy: float) -> pd.Series | None:
    """The MLP with the fewest parameters whose mean accuracy is at least ``accuracy``, or None."""
    mlp = table[(table["family"] == "MLP") & (table["mean"] >= accuracy)]
    return None if mlp.empty else mlp.sort_values("n_parameters").iloc[0]


def confusion_matrix(result: RunResult) -> np.ndarray:
    """Counts ``(K, K)`` of validation images: row = true class, column = predicted class.

    Computed by ``sklearn.metrics.confusion_matrix`` from the trained model's predictions on the
    run's validation set.
    """
    from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

    data = load_data(result.spec)
    predicted = trained_model(result).predict(data.x_val)
    labels = np.arange(len(data.class_names))
    return sklearn_confusion_matrix(data.y_val, predicted, labels=labels)


def confusion_table(matrix: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """The confusion matrix as a table: one row per true class, one column per prediction."""
    table = pd.DataFrame(matrix, columns=[f"predicted {c}" for c in class_names])
    table.insert(0, "true", list(class_names))
    table["recall"] = np.diag(matrix) / matrix.sum(axis=1)
    return table


def logistic_regression_table(
    dataset: reference.Dataset, linear: Sequence[RunResult]
) -> pd.DataFrame:
    """Our SGD softmax regression next to scikit-learn's ``LogisticRegression`` on the same split.

    Both are multinomial logistic regression on the 64 pixels; scikit-learn fits it with L-BFGS
    to convergence (one BLAS thread, so the fit is deterministic). The rows with a weak penalty
    are the same model as ours, fitted by a different method from different code.

    Returns
    -------
    DataFrame with ``model``, ``n_parameters``, ``val_acc`` (mean over our seeds) and
    ``train_acc``.
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x_train = dataset.x_train.reshape(len(dataset.x_train), -1)  # N, S*S
    x_val = dataset.x_val.reshape(len(dataset.x_val), -1)
    ours = accuracy_summary(linear)
    rows = [
        {
            "model": f"softmax regression, SGD ({ours['n_seeds']} seeds, mean)",
            "n_parameters": ours["n_parameters"],
            "val_acc": ours["mean"],
            "train_acc": ours["train_mean"],
        }
    ]
    for name, c in LOGISTIC_REGRESSION_SETTINGS.items():
        fit = LogisticRegression(C=c, max_iter=5000)
        with threadpool_limits(limits=1):
            fit.fit(x_train, dataset.y_train)
        rows.append(
            {
                "model": f"scikit-learn LogisticRegression, {name}",
                "n_parameters": int(fit.coef_.size + fit.intercept_.size),
                "val_acc": float(fit.score(x_val, dataset.y_val)),
                "train_acc": float(fit.score(x_train, dataset.y_train)),
            }
        )
    return pd.DataFrame(rows)


def sample_digits(dataset: reference.Dataset, per_class: int) -> tuple[np.ndarray, tuple]:
    """The first ``per_class`` training images of each digit: ``(10, per_class, 8, 8)``."""
    images = []
    for label in range(len(dataset.class_names)):
        (index,) = np.nonzero(dataset.y_train == label)
        images.append(dataset.x_train[index[:per_class], 0])
    return np.stack(images), dataset.class_names


def split_table(dataset: reference.Dataset) -> pd.DataFrame:
    """Images per digit in each split (the split is stratified: the shares match)."""
    names = dataset.class_names
    train = np.bincount(dataset.y_train, minlength=len(names))
    val = np.bincount(dataset.y_val, minlength=len(names))
    return pd.DataFrame(
        {
            "digit": list(names),
            "train": train,
            "validation": val,
            "train_share": train / train.sum(),
            "validation_share": val / val.sum(),
        }
    )
