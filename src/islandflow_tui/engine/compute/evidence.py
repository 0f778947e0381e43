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
    values = np.empty((n, len(cols)), dtype=np.int64)
    series = [df.get_column(col) for col in cols]
    if not any(s.null_count() for s in series):  # every row has every id: fixed stride
        for j, s in enumerate(series):
            values[:, j] = s.to_numpy()
        offsets = np.arange(0, n * len(cols) + 1, len(cols), dtype=np.int64)
        arr = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values.ravel()))
        return pl.Series(name, arr)
    valid = np.empty((n, len(cols)), dtype=bool)
    for j, s in enumerate(series):
        valid[:, j] = s.is_not_null().to_numpy()
        values[:, j] = s.fill_null(0).to_numpy()
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    flat = values[valid]  # row-major: keeps each row's ids together and in column order
    arr = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.int64()))
    return pl.Series(name, arr)
