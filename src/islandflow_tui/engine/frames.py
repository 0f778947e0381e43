"""Column-level frame edits that bypass polars' query engine.

``DataFrame.select(names)``, ``with_columns(series)``, ``drop`` and ``rename`` build
and run a query plan: 15-150 µs per call on this machine whatever the row count,
more the wider the frame (``select`` of 40 of 41 columns: ~130 µs).  The engine
makes a few hundred such edits per batch, so at 1 s batches their fixed cost is a
visible share of the per-print cost.  These helpers make the same edits on the
column list (``df[names]``, ``hstack``, ``replace_column``, the ``columns``
setter): 1-15 µs, same columns, same values, same order, same errors for a
missing column.  Likewise ``Series.fill_null`` / ``is_not_null`` run a query (~30-70
µs); :func:`filled` and :func:`valid` read the same values through Arrow, and
``series.gather(numpy_idx)`` (a query, ~0.25 ms for 60 000 rows) is written
``series[numpy_idx]`` (a native take, ~0.06 ms) on the hot paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import polars as pl
import pyarrow.compute as pc


def pick(df: pl.DataFrame, names: Iterable[str]) -> pl.DataFrame:
    """``df.select(names)`` for plain column names."""
    return df[list(names)]


def put(df: pl.DataFrame, *series: pl.Series) -> pl.DataFrame:
    """``df.with_columns(*series)`` for full-length Series: a same-named column is
    replaced in place of the old one, a new one is appended (as with_columns does)."""
    out = df.clone()  # shallow: the columns are shared, not copied
    index = {name: i for i, name in enumerate(out.columns)}
    for s in series:
        if len(s) != out.height and out.width:
            raise pl.exceptions.ShapeError(
                f"column {s.name!r} has {len(s)} rows, the frame {out.height}"
            )
        at = index.get(s.name)
        if at is None:
            out.hstack([s], in_place=True)
            index[s.name] = out.width - 1
        else:
            out.replace_column(at, s)
    return out


def without(df: pl.DataFrame, *names: str) -> pl.DataFrame:
    """``df.drop(*names)`` (every name must exist)."""
    cols = df.columns
    missing = [n for n in names if n not in cols]
    if missing:
        raise pl.exceptions.ColumnNotFoundError(f"{missing} not found")
    gone = set(names)
    return df[[c for c in cols if c not in gone]]


def renamed(df: pl.DataFrame, mapping: Mapping[str, str]) -> pl.DataFrame:
    """``df.rename(mapping)`` (every old name must exist)."""
    cols = df.columns
    missing = [n for n in mapping if n not in cols]
    if missing:
        raise pl.exceptions.ColumnNotFoundError(f"{missing} not found")
    out = df.clone()
    out.columns = [mapping.get(c, c) for c in cols]
    return out


def filled(s: pl.Series, value: object) -> np.ndarray:
    """``s.fill_null(value).to_numpy()`` (numeric or boolean ``s``)."""
    if not s.null_count():
        return s.to_numpy()
    return pc.fill_null(s.to_arrow(), value).to_numpy(zero_copy_only=False)


def valid(s: pl.Series) -> np.ndarray:
    """``s.is_not_null().to_numpy()``."""
    if not s.null_count():
        return np.ones(len(s), dtype=bool)
    return pc.is_valid(s.to_arrow()).to_numpy(zero_copy_only=False)
