"""The report's training runs: SeedSequence seeds, one run per spec, any number of workers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tinycnn.parity_tests.tolerances import tolerance
from tinycnn.reports.pipeline import ReportSettings, plan_runs
from tinycnn.reports.runs import RunResult, RunSpec, execute, plan_tasks, run_all, run_seed

from tinycnn import reference


def test_run_seeds_are_seed_sequence_children_whatever_their_number():
    children = np.random.SeedSequence(0).spawn(5)
    expected = [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]
    assert [run_seed(i) for i in range(5)] == expected
    assert len(set(expected)) == 5
    with pytest.raises(ValueError, match="replicate index must be >= 0"):
        run_seed(-1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "resnet"}, "model must be one of"),
        ({"model": "mlp"}, "hidden width is required for the MLP"),
        ({"model": "tinycnn", "hidden": 8}, "hidden width is required for the MLP and only for it"),
        ({"model": "tinycnn", "backend": "jax"}, "backend must be one of"),
    ],
)
def test_bad_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RunSpec(**kwargs)


def test_a_run_is_what_tinycnn_train_with_the_same_seed_does():
    spec = RunSpec("mlp", 3, 6, replicate=1, epochs=2)
    result = execute(spec)
    model = reference.MLP(6, 3, seed=spec.seed)
    history = reference.train(
        model,
        reference.make_dataset(seed=spec.seed),
        reference.TrainConfig(epochs=2, seed=spec.seed),
    )
    assert result.val_acc == history.val_acc and result.train_loss == history.train_loss
    assert result.n_parameters == model.n_parameters
    for name, value in model.params.items():
        np.testing.assert_array_equal(result.final_params[name], value)


def test_torch_run_matches_numpy_run_from_the_same_weights():
    numpy_run = execute(RunSpec("tinycnn", 3, None, 0, 2, "numpy", (0, 2)))
    torch_run = execute(RunSpec("tinycnn", 3, None, 0, 2, "torch", (0, 2)))
    np.testing.assert_allclose(torch_run.train_loss, numpy_run.train_loss, rtol=1e-10)
    assert torch_run.val_acc == numpy_run.val_acc
    # Epoch 0 holds the copied initial weights; the snapshot after training is the real test.
    tol = tolerance("trajectory_final_params", "float64")
    for name, value in numpy_run.snapshots[2].items():
        np.testing.assert_allclose(
            torch_run.snapshots[2][name], value, rtol=tol.rtol, atol=tol.atol, err_msg=name
        )


def test_linear_runs_in_both_backends():
    numpy_run = execute(RunSpec("linear", 4, None, 0, 1))
    torch_run = execute(RunSpec("linear", 4, None, 0, 1, "torch"))
    np.testing.assert_allclose(torch_run.val_loss, numpy_run.val_loss, rtol=1e-10)


def test_run_all_runs_each_distinct_spec_once():
    spec = RunSpec("linear", 3, None, 0, 1)
    results = run_all([spec, spec, RunSpec("linear", 3, None, 1, 1)], n_jobs=1, progress=False)
    assert len(results) == 2 and results[spec].spec == spec
    with pytest.raises(ValueError, match="n_jobs must be >= 1"):
        run_all([spec], n_jobs=0, progress=False)


def test_results_do_not_depend_on_the_number_of_workers():
    specs = [RunSpec("mlp", 3, 4, i, 2) for i in range(3)] + [RunSpec("tinycnn", 4, None, 0, 1)]
    serial = run_all(specs, n_jobs=1, progress=False)
    parallel = run_all(list(reversed(specs)), n_jobs=2, progress=False)
    for spec in specs:
        assert serial[spec].val_loss == parallel[spec].val_loss
        for name, value in serial[spec].final_params.items():
            np.testing.assert_array_equal(parallel[spec].final_params[name], value)


def test_torch_runs_share_one_task_and_long_tasks_come_first():
    cnn = RunSpec("tinycnn", 3, None, 0, 10)
    mlp = RunSpec("mlp", 3, 4, 0, 10)
    torch_cnn, torch_mlp = (RunSpec(s.model, 3, s.hidden, 0, 10, "torch") for s in (cnn, mlp))
    tasks = plan_tasks([mlp, torch_mlp, cnn, torch_cnn, mlp])
    assert [set(task) for task in tasks] == [{torch_cnn, torch_mlp}, {cnn}, {mlp}]


def test_plan_shares_runs_between_sections_and_pairs_every_torch_run():
    settings = ReportSettings(n_seeds=2, epochs=3)
    groups = plan_runs(settings)
    specs = {s for group in groups.values() for s in group}
    # The sweep's 18-wide MLP is the comparison's MLP: listed once per seed in the sweep.
    assert (
        sum(
            1
            for s in specs
            if s.model == "mlp"
            and s.hidden == 18
            and s.n_classes == 3
            and s.backend == "numpy"
            and s.data == "stripes"
        )
        == 2
    )
    for spec in groups["torch"]:
        assert dataclasses.replace(spec, backend="numpy") in specs
    assert settings.snapshot_epochs == (0, 3)


def test_settings_for_the_command_line():
    quick = ReportSettings.from_options(quick=True)
    full = ReportSettings.from_options(seeds=3)
    assert (quick.n_seeds, quick.epochs) == (2, 10)
    assert (full.n_seeds, full.epochs) == (3, 80)
    assert full.snapshot_epochs == (0, 5, 15, 40, 80)
    assert quick.snapshot_epochs == (0, 5, 10)
    with pytest.raises(ValueError, match="at least 1 seed"):
        ReportSettings(n_seeds=0)


def test_first_epoch_reaching_counts_from_epoch_zero_and_includes_the_target():
    spec = RunSpec("linear")
    run = RunResult(
        spec=spec,
        seed=spec.seed,
        n_parameters=0,
        train_loss=[],
        train_acc=[],
        val_loss=[],
        val_acc=[0.3, 0.8, 0.95],
        final_params={},
    )
    assert run.first_epoch_reaching(0.3) == 0
    assert run.first_epoch_reaching(0.8) == 1
    assert run.first_epoch_reaching(0.9) == 2
    assert run.first_epoch_reaching(0.99) is None
