"""The baselines' variance numerator: the int64 shortcut equals the extended formula."""

from __future__ import annotations

import numpy as np
import pytest

from islandflow_tui.engine.compute.baselines import _S1_SAFE, _variance_num


def _extended(n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    s1l = s1.astype(np.longdouble)
    return n.astype(np.longdouble) * s2.astype(np.longdouble) - s1l * s1l


@pytest.mark.parametrize("top", [10, 10**6, 10**8, _S1_SAFE - 1])
def test_int64_shortcut_is_exact(top: int) -> None:
    rng = np.random.default_rng(top % 1000)
    window = 50
    n = rng.integers(0, window + 1, size=(500, 3))
    s1 = rng.integers(-top, top, size=(500, 3))
    s2 = rng.integers(0, (2**63 - 1) // window, size=(500, 3))
    got = _variance_num(n, s1, s2, window)
    # values, not bytes: an extended float's padding bytes are not part of it
    assert got.dtype == np.longdouble
    assert np.array_equal(got, _extended(n, s1, s2))


def test_out_of_range_sums_take_the_extended_path() -> None:
    n = np.array([[50, 50, 50]])
    s1 = np.array([[_S1_SAFE + 5, 1, 1]])
    s2 = np.array([[2**62, 1, 1]])  # n * s2 would wrap in int64
    got = _variance_num(n, s1, s2, 50)
    assert np.array_equal(got, _extended(n, s1, s2))
