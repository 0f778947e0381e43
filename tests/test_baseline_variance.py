"""The baselines' standard deviation: the int64 shortcut gives the extended formula's
bits."""

from __future__ import annotations

import numpy as np
import pytest

from islandflow_tui.engine.compute.baselines import _S1_SAFE, _std


def _reference(n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """The formula as it was: every step in extended precision, clamped at 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        s1l = s1.astype(np.longdouble)
        num = n.astype(np.longdouble) * s2.astype(np.longdouble) - s1l * s1l
        var = num / (n * (n - 1)).astype(np.longdouble)
        return np.sqrt(np.maximum(var, 0)).astype(np.float64)


def _sums(rng: np.random.Generator, top: int, window: int) -> tuple[np.ndarray, ...]:
    """Exact window sums of ``n`` integer observations in [-top, top]."""
    n = rng.integers(0, window + 1, size=(400, 3))
    x = rng.integers(-top, top + 1, size=(400, 3, window))
    used = np.arange(window) < n[..., None]
    s1 = np.where(used, x, 0).sum(axis=2)
    s2 = np.where(used, x * x, 0).sum(axis=2)
    return n, s1, s2


@pytest.mark.parametrize("top", [3, 1_000, 10**6, 10**8])
def test_int64_shortcut_gives_the_same_bits(top: int) -> None:
    window = 50
    n, s1, s2 = _sums(np.random.default_rng(top), top, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        got = _std(n, s1, s2, window)
    assert got.tobytes() == _reference(n, s1, s2).tobytes()


def test_out_of_range_sums_take_the_extended_path() -> None:
    n = np.array([[50, 50, 50]])
    s1 = np.array([[_S1_SAFE + 5, 1, 1]])
    s2 = np.array([[2**62, 1, 1]])  # n * s2 would wrap in int64
    with np.errstate(invalid="ignore", divide="ignore"):
        got = _std(n, s1, s2, 50)
    assert got.tobytes() == _reference(n, s1, s2).tobytes()
