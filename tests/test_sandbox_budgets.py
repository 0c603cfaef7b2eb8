"""The sandbox's time budgets with tiny limits: the default suite's cover of the budget logic.

The hostile tests of these budgets (`test_check_hostile.py`) wait out limits of seconds, as an
attacker would, and are slow tests (CI runs them). Here the same rules run with limits of a
fraction of a second, injected through `Limits`, so each test costs about one sandbox start:

* the submission's wall-clock budget over all its runs (`Limits.total_seconds`), enforced by the
  checker from outside the sandbox: one run stopped at the budget, the next given only what is
  left (covers ``test_a_file_that_idles_under_every_cap_is_bounded_as_a_whole``);
* a function's time limit counts processor time, and waiting is capped at `WALL_FACTOR` times
  the limit (covers ``test_the_time_limit_counts_processor_time_and_caps_waiting``).

Expected numbers come from the documented rules (`Limits` and `WALL_FACTOR` docstrings), never
from the code's own messages.
"""

from __future__ import annotations

import re
import sys
import time

import pytest
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

from tinycnn.grading.grader import grade_submission
from tinycnn.grading.sandbox import WALL_FACTOR, Limits, Sandbox, Task

SEED = 99


def test_the_whole_submission_budget_defaults_to_five_limits_and_a_training_run():
    # Limits' docstring: 5 * timeout + train_timeout, 110 s with the default limits (a hostile
    # file is graded in under 2 minutes); total_timeout replaces it.
    assert Limits().total_seconds == 5 * 10.0 + 60.0 < 120
    assert Limits(timeout=1.0, train_timeout=20.0).total_seconds == 25.0
    assert Limits(timeout=1.0, train_timeout=20.0, total_timeout=8.0).total_seconds == 8.0
    with pytest.raises(ValueError, match="total_timeout must be positive"):
        Limits(total_timeout=0)


def test_the_runs_of_one_submission_share_its_wall_clock_budget(tmp_path):
    # An import that idles forever, under a processor-time limit of 1 s (its own wall-clock cap:
    # 3 s) and a whole-submission budget of 1.5 s: the checker stops the first run at 1.5 s,
    # well before its own cap, and gives the second run nothing (the budget is spent).
    idle = tmp_path / "idles.py"
    idle.write_text("import time\n\ntime.sleep(3600)\n")
    budget = 1.5
    sandbox = Sandbox(Limits(timeout=1.0, total_timeout=budget))
    message = f"the submission's runs took more than {budget:g} s of wall-clock time"
    took = []
    for _ in range(2):
        started = time.monotonic()
        with sandbox.run(idle, [Task("probe", gate=True)], {}, CONTRACT_FUNCTIONS) as (_, done):
            took.append(time.monotonic() - started)
            assert not done
            assert sandbox.stopped_limit == "wall"
            assert sandbox.stopped_because.startswith(message), sandbox.stopped_because
    # The first run lasted the budget, not its own 3 s cap nor the hour of sleep; the second
    # did not start waiting at all (what remains is killing and cleaning up).
    assert budget <= took[0] < WALL_FACTOR * 1.0, took
    assert took[1] < took[0], took
    assert sandbox.seconds_spent >= budget


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="processor time needs Linux")
def test_the_time_limit_counts_processor_time_and_waiting_is_capped(tmp_path):
    # timeout 0.5 s: relu_forward sleeps 0.6 s once (beyond the limit in wall-clock time, but no
    # processor time, and under the 1.5 s wall cap) and passes; relu_backward sleeps forever and
    # is stopped at the wall cap; linear_forward spins and is stopped at 0.5 s of processor time.
    timeout = 0.5
    cap = WALL_FACTOR * timeout
    fixture = tmp_path / "sleeps.py"
    fixture.write_text(
        "import time\n"
        "import numpy as np\n"
        "_slept = []\n"
        "def relu_forward(x):\n"
        "    if not _slept:\n"
        "        _slept.append(True)\n"
        f"        time.sleep({timeout + 0.1})\n"
        "    return np.where(x > 0, x, np.zeros((), dtype=x.dtype))\n"
        "def relu_backward(dy, x):\n"
        "    time.sleep(3600)\n"
        "def linear_forward(x, w, b):\n"
        "    while True:\n"
        "        pass\n"
    )
    started = time.monotonic()
    report = grade_submission(fixture, limits=Limits(timeout=timeout), train=False, seed=SEED)
    elapsed = time.monotonic() - started
    got = {name: result.status for name, result in report.functions.items()}
    assert got["relu_forward"] == "pass", report.functions["relu_forward"].detail
    assert got["relu_backward"] == "timeout" and got["linear_forward"] == "timeout", got
    assert elapsed < 30, elapsed  # the cap, not the hour of sleep
    # The message names the limit that ran out, with its numbers.
    detail = report.functions["relu_backward"].detail
    assert f"did not finish within its wall-clock cap of {cap:g} s" in detail, detail
    assert f"(3 x its processor-time limit of {timeout:g} s, of which it used 0.0 s:" in detail


def test_the_readme_states_a_submissions_wall_clock_limits_as_multiples_of_timeout():
    # New user's README walkthrough, finding 5: the README's one sentence on it, against the
    # documented rules (`Limits`, `WALL_FACTOR`).
    from pathlib import Path

    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    stated = re.search(
        r"A submission's wall-clock limits are multiples of `--timeout` T \(T s of processor "
        r"time for the import and again for each function on all its cases, (\d+) s by "
        r"default\): (\d+) T for each of those, and (\d+) T plus the training's limit \((\d+) s, "
        r"or \d+ T if more\) for the whole submission, (\d+) s by default",
        readme,
    )
    assert stated, "README must state the wall-clock limits as multiples of --timeout"
    timeout, wall, whole, training, total = map(float, stated.groups())
    default = Limits()
    assert (default.timeout, WALL_FACTOR, default.train_timeout) == (timeout, wall, training)
    assert default.total_seconds == whole * timeout + training == total
    assert Limits(timeout=4.0, train_timeout=training).total_seconds == whole * 4.0 + training
