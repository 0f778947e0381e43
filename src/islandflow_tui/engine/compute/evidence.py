"""Evidence lists built in one vectorised pass.

``pl.concat_list(...).list.drop_nulls()`` costs ~0.6 µs per row; building the Arrow
list array from numpy offsets costs ~0.06 µs, which matters at a million prints/s.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa


def evidence_list(df: pl.DataFrame, *cols: str, name: str = "evidence") -> pl.Series:
    """Per row, the non-null ids of ``cols`` in column order, as a list[i64] Series."""
    n = df.height
    if not cols:
        raise ValueError("evidence_list needs at least one id column")
    k = len(cols)
    values = np.empty((n, k), dtype=np.int64)
    valid: np.ndarray | None = None  # None: every id present (the usual case)
    for j, col in enumerate(cols):
        series = df.get_column(col)
        if series.null_count():
            if valid is None:
                valid = np.ones((n, k), dtype=bool)
            valid[:, j] = series.is_not_null().to_numpy()
            values[:, j] = series.fill_null(0).to_numpy()
        else:  # no validity pass, no fill: one copy of the column
            values[:, j] = series.to_numpy()
    if valid is None:
        offsets = np.arange(0, k * (n + 1), k, dtype=np.int64)
        flat = values.reshape(-1)
    else:
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(row_counts(valid), out=offsets[1:])
        flat = values[valid]  # row-major: keeps each row's ids together and in column order
    arr = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.int64()))
    return pl.Series(name, arr)


def row_counts(mask: np.ndarray) -> np.ndarray:
    """True cells per row of a narrow (rows, k) bool array, as int64: a column loop,
    because ``mask.sum(axis=1)`` runs numpy's inner loop once per row (~10x slower for
    k <= 2, ~2x for k = 16)."""
    out = np.zeros(mask.shape[0], dtype=np.int64)
    for j in range(mask.shape[1]):
        out += mask[:, j]
    return out
