"""The reference conv2d backward pass has two routes; both must match PyTorch on every case.

Small images go through dense matrix products, large ones through unfolded patches (see the
convolution section of ``reference/ops.py``). The catalogue's images are all small, so the
second route is forced here by lowering the size limit to zero. (``test_ops.py`` runs every case
on the first route; here one case of each kind runs by default, every case in the slow run.)
"""

from __future__ import annotations

import numpy as np
import pytest
from tinycnn.parity_tests.cases import cases_for
from tinycnn.parity_tests.kinds import one_of_each_kind
from tinycnn.parity_tests.torch_oracle import assert_matches_torch
from tinycnn.reference import ops


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf - inf
@pytest.mark.parametrize("case", one_of_each_kind(cases_for("conv2d")))
def test_patch_route_matches_torch(case, monkeypatch):
    monkeypatch.setattr(ops, "DENSE_BACKWARD_MAX_ENTRIES", 0)
    assert_matches_torch(ops, case, "backward")


def test_a_large_image_takes_the_patch_route_and_stays_small_in_memory():
    """(2, 16, 64, 64) with 16 filters would need a 10^10-entry dense placement matrix."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 16, 64, 64))
    w, b = rng.normal(size=(16, 16, 3, 3)), rng.normal(size=16)
    dy = rng.normal(size=(2, 16, 64, 64))
    dx, dw, db = ops.conv2d_backward(dy, x, w, b, stride=1, padding=1)
    # Check one dx entry and one dw entry against the defining sums.
    x_padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected_dw = np.einsum("nij,nij->", dy[:, 3], x_padded[:, 5, 2:66, 0:64])  # w[3, 5, 2, 0]
    np.testing.assert_allclose(dw[3, 5, 2, 0], expected_dw, rtol=1e-10)
    # x[1, 7, 10, 20] feeds y[1, f, 10 - u + 1, 20 - v + 1] through w[f, 7, u, v]
    expected_dx = sum(
        dy[1, f, 11 - u, 21 - v] * w[f, 7, u, v]
        for f in range(16)
        for u in range(3)
        for v in range(3)
    )
    np.testing.assert_allclose(dx[1, 7, 10, 20], expected_dx, rtol=1e-10)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-12)
