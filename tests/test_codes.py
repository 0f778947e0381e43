"""The branch-free numpy helpers (compute/codes.py) against the numpy/pyarrow calls
they replace on the hot path: same values, same Arrow bytes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from islandflow_tui.engine.compute.codes import first_code, masked, put_code, signed


@st.composite
def conditions(draw: st.DrawFn) -> tuple[list[np.ndarray], list[int], int]:
    n = draw(st.integers(0, 200))
    k = draw(st.integers(1, 9))
    conds = [
        np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        for _ in range(k)
    ]
    codes = draw(st.lists(st.integers(0, 127), min_size=k, max_size=k))
    default = draw(st.integers(0, 127))
    return conds, codes, default


@settings(max_examples=200, deadline=None)
@given(conditions())
def test_first_code_is_np_select(case: tuple[list[np.ndarray], list[int], int]) -> None:
    conds, codes, default = case
    want = np.select(conds, codes, default)
    assert np.array_equal(first_code(conds, codes, default), want.astype(np.int8))
    assert np.array_equal(first_code(conds, codes, default, np.uint8), want.astype(np.uint8))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(-128, 127)), max_size=100))
def test_put_code_and_signed(rows: list[tuple[bool, bool, int]]) -> None:
    buy = np.array([r[0] for r in rows], dtype=bool)
    sell = np.array([r[1] for r in rows], dtype=bool)
    base = np.array([r[2] for r in rows], dtype=np.int8)
    out = base.copy()
    put_code(out, buy, 5)
    want = base.copy()
    want[buy] = 5
    assert np.array_equal(out, want)
    assert np.array_equal(signed(buy, sell), np.where(buy, 1, np.where(sell, -1, 0)))


def test_first_code_rejects_codes_it_cannot_hold() -> None:
    cond = np.array([True])
    try:
        first_code([cond], [200], 0)
    except ValueError:
        pass
    else:
        raise AssertionError("a code above 127 must be refused")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.floats(allow_nan=True), st.booleans()), max_size=100),
    st.sampled_from(["f8", "i8"]),
)
def test_masked_gives_pa_array_bytes(rows: list[tuple[float, bool]], kind: str) -> None:
    raw = np.array([r[0] for r in rows], dtype=np.float64)
    values = raw if kind == "f8" else np.nan_to_num(raw).clip(-1e12, 1e12).astype(np.int64)
    null = np.array([r[1] for r in rows], dtype=bool)
    got, want = masked(values, null), pa.array(values, mask=null)
    assert got.type == want.type
    assert got.null_count == want.null_count
    assert got.to_pylist() == want.to_pylist() or kind == "f8"  # NaN != NaN in lists
    # the values under the nulls are kept, as pa.array keeps them
    assert got.buffers()[1].to_pybytes() == want.buffers()[1].to_pybytes()
    if null.any():
        assert got.is_null().to_pylist() == want.is_null().to_pylist()
