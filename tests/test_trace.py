"""Trace builders: the block builder and the item-major grid give the same arrays."""

from __future__ import annotations

import numpy as np
import pytest

from islandflow_tui.engine.compute.trace import ArrayItem, trace_from_arrays, trace_from_blocks


def _blocks(seed: int) -> list[tuple[int, list[ArrayItem]]]:
    rng = np.random.default_rng(seed)
    out = []
    for b in range(int(rng.integers(1, 6))):
        rows = int(rng.integers(0, 40))
        items = []
        for j in range(int(rng.integers(0, 7))):
            value = rng.random(rows) * 100
            value[rng.random(rows) < 0.2] = np.nan  # unknown values are written as null
            threshold = float(j) if j % 2 else rng.random(rows)
            passed = rng.random(rows) < 0.5
            items.append(ArrayItem(f"rule{b}.cond_{j}_name", value, threshold, passed))
        out.append((rows, items))
    return out


def _spread(x: object, mine: np.ndarray, fill: float | bool) -> np.ndarray:
    """One block's column over all rows (the other rows' cells are not included)."""
    col = np.full(len(mine), fill, dtype=bool if isinstance(fill, bool) else np.float64)
    col[mine] = x
    return col


@pytest.mark.parametrize("seed", range(12))
def test_blocks_equal_grid_with_range_includes(seed: int) -> None:
    blocks = _blocks(seed)
    n = sum(rows for rows, _ in blocks)
    grid_items = []
    start = 0
    for rows, items in blocks:
        mine = np.zeros(n, dtype=bool)
        mine[start : start + rows] = True
        for it in items:
            grid_items.append(
                ArrayItem(
                    it.condition,
                    _spread(it.value, mine, np.nan),
                    _spread(it.threshold, mine, np.nan),
                    _spread(it.passed, mine, False),
                    mine,
                )
            )
        start += rows
    want = trace_from_arrays(n, grid_items)
    got = trace_from_blocks(blocks)
    assert got.to_arrow().equals(want.to_arrow())
    assert got.to_list() == want.to_list()


def test_blocks_need_names() -> None:
    item = ArrayItem(np.array(["a"], dtype=object), np.ones(1), 1.0, np.ones(1, dtype=bool))
    with pytest.raises(ValueError, match="names"):
        trace_from_blocks([(1, [item])])
