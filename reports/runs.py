"""The report's training runs: one frozen spec per run, each executed once, in parallel.

Every section that needs a trained model asks for a :class:`RunSpec`; the pipeline collects the
specs of all sections, drops duplicates, and maps :func:`execute` over them with joblib. A run
depends only on its spec, so the results do not depend on the number of workers, on which worker
runs what, or on the order in which runs finish.

Seeds
-----
Replicate ``i`` of every experiment uses the integer ``run_seed(i)``, drawn from child ``i`` of
``numpy.random.SeedSequence(REPORT_ENTROPY)``. Like ``tinycnn train --seed S``, that one integer
fixes the dataset, the initial weights and the minibatch order, so a run of the report is
reproduced by ``tinycnn train --seed S`` with the same model options. Models compared with each
other (CNN against MLP, NumPy against PyTorch) share replicate seeds: same data, same batches.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tinycnn.reference.train import History, TrainConfig

from tinycnn import reference
from tinycnn.parallel import run_jobs

__all__ = [
    "REPORT_ENTROPY",
    "RunResult",
    "RunSpec",
    "build_model",
    "execute",
    "execute_all",
    "load_data",
    "plan_tasks",
    "run_all",
    "run_seed",
    "trained_model",
]

#: Root entropy of every seed in the report. Change it and every run changes, deterministically.
REPORT_ENTROPY = 0

MODELS = ("tinycnn", "mlp", "linear")
BACKENDS = ("numpy", "torch")
#: What a run trains on: the lecture's stripes, stripes kept near the centre (the translation
#: experiment trains on these and tests on shifted copies), or scikit-learn's real digits.
DATA = ("stripes", "centred-stripes", "digits")
#: ``DatasetConfig`` overrides of the centred stripes: vertical and horizontal stripes in the two
#: middle columns or rows (margin 3 of 8), diagonals within a pixel of the main diagonal (at least
#: 7 pixels long). Shifts of 1-3 pixels then move every stripe to positions never trained on.
CENTRED_STRIPES = {"margin": 3, "min_diagonal_length": 7}
DEFAULT_FILTERS = 3  # TinyCNN's filters when a spec does not say


def run_seed(replicate: int, entropy: int = REPORT_ENTROPY) -> int:
    """The seed of replicate ``replicate``: child ``replicate`` of ``SeedSequence(entropy)``.

    ``SeedSequence(entropy, spawn_key=(i,))`` is exactly the ``i``-th child that
    ``SeedSequence(entropy).spawn(n)`` returns for any ``n > i``, so asking for 2 or 5 replicates
    gives the same first two seeds.
    """
    if replicate < 0:
        raise ValueError(f"replicate index must be >= 0, got {replicate}")
    child = np.random.SeedSequence(entropy, spawn_key=(replicate,))
    return int(child.generate_state(1, dtype=np.uint32)[0])


@dataclass(frozen=True, order=True)
class RunSpec:
    """Everything that determines one training run (hashable: it is the cache key).

    Parameters
    ----------
    model : {"tinycnn", "mlp", "linear"}
        TinyCNN with 3 filters, the one-hidden-layer MLP, or softmax regression.
    n_classes : int
        3 (vertical, horizontal, diagonal) or 4 (adds dot).
    hidden : int or None
        MLP width; None for the other models.
    replicate : int
        Index of the seed, see :func:`run_seed`.
    epochs : int
    backend : {"numpy", "torch"}
    snapshot_epochs : tuple of int
        Epochs after which the parameters are kept.
    n_filters : int or None
        TinyCNN's convolution filters (None: 3); None for the other models.
    data : {"stripes", "centred-stripes", "digits"}
        What the run trains on (see :data:`DATA`); the digits have 10 classes.
    """

    model: str
    n_classes: int = 3
    hidden: int | None = None
    replicate: int = 0
    epochs: int = 80
    backend: str = "numpy"
    snapshot_epochs: tuple[int, ...] = ()
    n_filters: int | None = None
    data: str = "stripes"

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.data not in DATA:
            raise ValueError(f"data must be one of {DATA}, got {self.data!r}")
        if (self.model == "mlp") != (self.hidden is not None):
            raise ValueError(
                f"hidden width is required for the MLP and only for it, got "
                f"model={self.model!r}, hidden={self.hidden!r}"
            )
        if self.model != "tinycnn" and self.n_filters is not None:
            raise ValueError(f"n_filters is for TinyCNN only, got model={self.model!r}")
        if self.model == "tinycnn" and self.n_filters is None:
            # One spelling per run: RunSpec("tinycnn") and RunSpec("tinycnn", n_filters=3) are
            # the same run, so they must be the same cache key.
            object.__setattr__(self, "n_filters", DEFAULT_FILTERS)
        digits = reference.DigitsConfig().n_classes
        if self.data == "digits" and self.n_classes != digits:
            raise ValueError(f"the digits have {digits} classes, got n_classes={self.n_classes}")

    @property
    def seed(self) -> int:
        return run_seed(self.replicate)

    @property
    def name(self) -> str:
        """Short readable name: ``mlp18-4cls``, ``tinycnn-3cls``, ``tinycnn8-digits``."""
        size = "" if self.hidden is None else str(self.hidden)
        if self.n_filters not in (None, DEFAULT_FILTERS):
            size = str(self.n_filters)
        data = {"stripes": "", "centred-stripes": "-centred"}.get(self.data, f"-{self.data}")
        classes = "" if self.data == "digits" else f"-{self.n_classes}cls"
        return f"{self.model}{size}{classes}{data}"

    @property
    def label(self) -> str:
        """The model as tables name it: ``TinyCNN (8 filters)``, ``MLP (18 hidden)``."""
        if self.model == "tinycnn":
            return f"TinyCNN ({self.n_filters} filters)"
        return f"MLP ({self.hidden} hidden)" if self.model == "mlp" else "softmax regression"

    @property
    def cost(self) -> float:
        """Rough relative run time, used only to start the long runs first."""
        per_epoch = {"mlp": 1.0, "linear": 0.6}.get(self.model, 2.5 + 0.35 * (self.n_filters or 0))
        return per_epoch * self.epochs * (3.0 if self.backend == "torch" else 1.0)


@dataclass
class RunResult:
    """What a finished run hands back to the report (plain data: it crosses process borders).

    ``train_loss[i]`` etc. are measured after epoch ``i`` (index 0: before training).
    """

    spec: RunSpec
    seed: int
    n_parameters: int
    train_loss: list[float]
    train_acc: list[float]
    val_loss: list[float]
    val_acc: list[float]
    final_params: dict[str, np.ndarray]
    snapshots: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def final_val_acc(self) -> float:
        return self.val_acc[-1]

    def first_epoch_reaching(self, accuracy: float) -> int | None:
        """First epoch whose validation accuracy is at least ``accuracy``, or None."""
        return History(val_acc=self.val_acc).first_epoch_reaching(accuracy)


def build_model(spec: RunSpec):
    """The NumPy model of ``spec``, initialised from ``spec.seed`` (float64).

    Built by the project's one factory, :func:`tinycnn.reference.models.build_model`, exactly
    as ``tinycnn train --seed S`` builds it.
    """
    config = {} if spec.n_filters is None else {"n_filters": spec.n_filters}
    return reference.build_model(
        spec.model, spec.n_classes, hidden=spec.hidden, seed=spec.seed, **config
    )


def trained_model(result: RunResult):
    """The NumPy model of a finished run, holding its final parameters."""
    return build_model(result.spec).load_params(result.final_params)


def _single_thread(backend: str):
    """One BLAS (and, for PyTorch runs, one PyTorch) thread inside the ``with`` block.

    The models are tiny: extra threads only add overhead, and two workers with two threads each
    would fight over two cores. One thread also makes every run's arithmetic the same whether it
    runs in the main process or in a worker. NumPy runs limit BLAS only, so that their workers
    never pay for importing torch (:func:`tinycnn.bench.single_thread` imports it).
    """
    if backend == "torch":
        from tinycnn.bench import single_thread

        return single_thread()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def load_data(spec: RunSpec) -> reference.Dataset:
    """The dataset ``spec`` trains and validates on (the digits' split does not depend on seeds)."""
    return _dataset(spec.data, spec.n_classes, None if spec.data == "digits" else spec.seed)


@functools.lru_cache(maxsize=16)
def _dataset(data: str, n_classes: int, seed: int | None) -> reference.Dataset:
    """A dataset built once per process: runs that share a seed share their data.

    Generating 1,800 images takes about a tenth of a second, a noticeable share of a short MLP
    run; training never modifies the arrays, so sharing them cannot change a result.
    """
    if data == "digits":
        return reference.load_digits_dataset()
    overrides = CENTRED_STRIPES if data == "centred-stripes" else {}
    return reference.make_dataset(n_classes=n_classes, seed=seed, **overrides)


def execute(spec: RunSpec) -> RunResult:
    """Train the model of ``spec`` on its dataset; return its history (a function of spec only)."""
    seed = spec.seed
    with _single_thread(spec.backend):
        dataset = load_data(spec)
        model = build_model(spec)
        config = TrainConfig(epochs=spec.epochs, seed=seed, snapshot_epochs=spec.snapshot_epochs)
        if spec.backend == "numpy":
            history = reference.train(model, dataset, config)
            final = {name: value.copy() for name, value in model.params.items()}
        else:
            from tinycnn import torch_impl

            if spec.model == "linear":
                from tinycnn.reports.baseline import torch_twin

                module = torch_twin(model)
            else:
                module = torch_impl.from_reference(model)
            history = torch_impl.train(module, dataset, config)
            final = torch_impl.params_of(module)
    return RunResult(
        spec=spec,
        seed=seed,
        n_parameters=model.n_parameters,
        train_loss=list(history.train_loss),
        train_acc=list(history.train_acc),
        val_loss=list(history.val_loss),
        val_acc=list(history.val_acc),
        final_params=final,
        snapshots=dict(history.snapshots),
    )


def execute_all(specs: Sequence[RunSpec]) -> list[RunResult]:
    """:func:`execute` each spec in turn, in this process."""
    return [execute(spec) for spec in specs]


def plan_tasks(specs: Iterable[RunSpec]) -> list[tuple[RunSpec, ...]]:
    """Group distinct specs into tasks for the workers, longest task first.

    Every NumPy run is a task of its own. The PyTorch runs form one task: importing torch and
    its first training step cost seconds per process, so one worker pays that once instead of
    every worker paying it.
    """
    unique = sorted(set(specs))
    torch_runs = tuple(s for s in unique if s.backend == "torch")
    tasks = [(s,) for s in unique if s.backend != "torch"] + ([torch_runs] if torch_runs else [])
    # Longest first, so no worker starts a long task when the others are nearly done.
    return sorted(tasks, key=lambda task: (-sum(s.cost for s in task), task))


def run_all(
    specs: Iterable[RunSpec],
    n_jobs: int | None = None,
    progress: bool = True,
    scheduler: str | None = None,
) -> dict[RunSpec, RunResult]:
    """Execute every distinct spec once; return the results keyed by spec.

    Parameters
    ----------
    specs : iterable of RunSpec
        Duplicates are run once.
    n_jobs : int, optional
        Worker processes (joblib, loky backend); default all cores. 1 runs in this process.
    progress : bool, default True
        Show a tqdm bar counting finished runs.
    scheduler : str, optional
        Address of a Dask scheduler: the runs go to its workers instead (see
        :func:`tinycnn.parallel.run_jobs`); the results are the same.

    Raises
    ------
    tinycnn.parallel.SchedulerError
        The scheduler cannot be used (raised before any run starts).
    """
    from tqdm.auto import tqdm

    tasks = plan_tasks(specs)
    n_runs = sum(len(task) for task in tasks)
    finished = run_jobs(execute_all, tasks, n_jobs=n_jobs, scheduler=scheduler, ordered=False)
    results: dict[RunSpec, RunResult] = {}
    # disable=None: tqdm draws the bar only on a terminal, never into a pipe or a log.
    with tqdm(
        total=n_runs, desc="training runs", unit="run", disable=None if progress else True
    ) as bar:
        for task_results in finished:
            for result in task_results:
                results[result.spec] = result
            bar.set_postfix_str(task_results[-1].spec.name, refresh=False)
            bar.update(len(task_results))
    return results
