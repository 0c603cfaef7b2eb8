"""The scripts in examples/ run and say what they promise."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_numpy_and_torch_example_agrees_to_float64_precision(capsys):
    main = runpy.run_path(str(EXAMPLES / "numpy_and_torch.py"))["main"]
    difference = main(seed=1, epochs=2)
    assert 0 <= difference < 1e-12
    assert "validation accuracy" in capsys.readouterr().out
