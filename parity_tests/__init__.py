"""Parity suite: the NumPy reference (or any file implementing the op contract) against PyTorch.

One catalogue of op cases (`cases`), one table of tolerances (`tolerances`), one comparison helper
(`compare`), and `harness.run_contract`, which calls an implementation on a case. These four modules
are NumPy only, so `tinycnn check` reuses them in a process without torch; `torch_oracle` computes
the expected values with `torch.nn.functional` and autograd.
"""
