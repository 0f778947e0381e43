"""Rule traces built in one vectorised pass.

Every derived event says *why*: a list of ``(condition, value, threshold, passed)``
structs.  Building that list per row with ``pl.concat_list(pl.struct(...))`` costs
microseconds per item; here each item is one column over the whole batch, and the
Arrow list-of-struct array is assembled from numpy offsets (as
``evidence.evidence_list`` does), so a 20-item trace on 100 000 packets takes a few
milliseconds and a tiny batch a few microseconds.

An item may carry an ``include`` mask: the item then appears only on the rows where
the mask is true (e.g. the golden-sweep conditions only on sweeps), so a trace says
what decided that row and not more.  A value or threshold that is NaN is written as
null (unknown: e.g. the spot price when no equity quote has been seen).

Two front ends: :func:`trace_from_arrays` for numpy columns and :func:`build_trace`
for polars expressions evaluated over a frame (one ``select`` for all items).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa

from islandflow_tui.engine import events as ev

TRACE_DTYPE: Final = ev.polars_schema(ev.FLOW_PACKETS)["trace"]
_FIELDS: Final = list(ev.TRACE_ITEM)
#: the same with the condition as Arrow string views (polars reads them as String)
_VIEW_FIELDS: Final = [pa.field(_FIELDS[0].name, pa.string_view()), *_FIELDS[1:]]

Num = np.ndarray | float | int | None


@dataclass(frozen=True, slots=True)
class Item:
    """One trace condition as polars expressions (or constants) over a frame.

    ``passed`` null counts as failed; ``include`` limits the rows that carry it.
    """

    condition: str
    value: pl.Expr | float | int | None
    threshold: pl.Expr | float | int | None
    passed: pl.Expr | bool
    include: pl.Expr | None = None


@dataclass(frozen=True, slots=True)
class ArrayItem:
    """One trace condition as numpy columns (or scalars broadcast over the batch)."""

    condition: str | np.ndarray  # a name, or one name per row (object array)
    value: Num
    threshold: Num
    passed: np.ndarray | bool
    include: np.ndarray | None = None


def _col(x: Num | bool, n: int, dtype: type) -> np.ndarray:
    if x is None:
        return np.full(n, np.nan)
    arr = np.asarray(x, dtype=dtype)
    return np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr


def trace_from_arrays(n: int, items: Sequence[ArrayItem], name: str = "trace") -> pl.Series:
    """Per row, the items (in order, those whose ``include`` holds) as a trace list.

    The columns are laid out item-major, ``(items, rows)``: each item is then one
    contiguous write (a row-major ``(rows, items)`` grid took a strided write per item
    and column, and a boolean-mask pass per field), and the included cells are
    gathered once each in row-major order by their flat positions, so a row's items
    stay together and in item order."""
    k = len(items)
    if n == 0 or k == 0:
        return empty_traces(n, name)
    values = np.empty((k, n))
    thresholds = np.empty((k, n))
    passed = np.empty((k, n), dtype=bool)
    include = np.ones((k, n), dtype=bool)
    for j, it in enumerate(items):
        values[j] = _col(it.value, n, np.float64)
        thresholds[j] = _col(it.threshold, n, np.float64)
        passed[j] = _col(it.passed, n, bool)
        if it.include is not None:
            include[j] = it.include
    counts = np.add.reduce(include, axis=0, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    cell = np.flatnonzero(include.T)  # row-major positions in the (rows, items) grid
    row = np.repeat(np.arange(n, dtype=np.int64), counts)
    col_idx = cell - row * k
    src = col_idx * n + row  # the same cells in the item-major planes
    if all(isinstance(it.condition, str) for it in items):
        conds = _condition_views(items, col_idx)
    else:
        grid = np.empty((k, n), dtype=object)
        for j, it in enumerate(items):
            grid[j] = it.condition
        conds = pa.array(grid.reshape(-1).take(src), type=pa.string())
    return _traces(
        name,
        offsets,
        conds,
        values.reshape(-1).take(src),
        thresholds.reshape(-1).take(src),
        passed.reshape(-1).take(src),
    )


def trace_from_blocks(
    blocks: Sequence[tuple[int, Sequence[ArrayItem]]], name: str = "trace"
) -> pl.Series:
    """Rows in consecutive blocks ``(rows, items)``, every row of a block carrying all of
    its block's items in order: the trace :func:`trace_from_arrays` gives for all the
    items with each block's row range as their ``include``, built per block as a small
    ``(rows, items)`` grid instead of one grid of every row by every block's items (the
    classifiers' fired rules each add their own items over their own rows).  Items
    carry no ``include``; conditions are names."""
    n = sum(rows for rows, _ in blocks)
    every = [it for _, its in blocks for it in its]
    if n == 0 or not every:
        return empty_traces(n, name)
    if not all(isinstance(it.condition, str) for it in every):
        raise ValueError("trace_from_blocks needs item conditions as names")
    counts = np.repeat(
        np.array([len(its) for _, its in blocks], dtype=np.int64),
        [rows for rows, _ in blocks],
    )
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    values, thresholds, passed, cols = [], [], [], []
    first = 0  # the block's first item in ``every``
    for rows, its in blocks:
        k = len(its)
        if rows and k:
            v, t = np.empty((rows, k)), np.empty((rows, k))
            p = np.empty((rows, k), dtype=bool)
            for j, it in enumerate(its):
                v[:, j] = _col(it.value, rows, np.float64)
                t[:, j] = _col(it.threshold, rows, np.float64)
                p[:, j] = _col(it.passed, rows, bool)
            values.append(v.reshape(-1))
            thresholds.append(t.reshape(-1))
            passed.append(p.reshape(-1))
            cols.append(np.tile(np.arange(first, first + k, dtype=np.int64), rows))
        first += k
    return _traces(
        name,
        offsets,
        _condition_views(every, np.concatenate(cols)),
        np.concatenate(values),
        np.concatenate(thresholds),
        np.concatenate(passed),
    )


def _condition_views(items: Sequence[ArrayItem], col_idx: np.ndarray) -> pa.Array:
    """The condition column: item ``col_idx[i]``'s name per trace entry, as string
    views gathered from :func:`_name_views`."""
    views, data = _name_views(tuple(str(it.condition) for it in items))
    return pa.Array.from_buffers(
        pa.string_view(), len(col_idx), [None, pa.py_buffer(views.take(col_idx)), data]
    )


def _traces(
    name: str,
    offsets: np.ndarray,
    conds: pa.Array,
    v: np.ndarray,
    t: np.ndarray,
    passed: np.ndarray,
) -> pl.Series:
    """Trace lists from their entries' columns (NaN value or threshold = null) and the
    rows' list offsets."""
    struct = pa.StructArray.from_arrays(
        [
            conds,
            pa.array(v, type=pa.float64(), mask=np.isnan(v)),
            pa.array(t, type=pa.float64(), mask=np.isnan(t)),
            pa.array(passed, type=pa.bool_()),
        ],
        fields=_VIEW_FIELDS if pa.types.is_string_view(conds.type) else _FIELDS,
    )
    return pl.Series(name, pa.LargeListArray.from_arrays(pa.array(offsets), struct))


@lru_cache(maxsize=256)
def _name_views(names: tuple[str, ...]) -> tuple[np.ndarray, pa.Buffer]:
    """The Arrow string-view entries (16 bytes each) of ``names`` over one data buffer:
    a trace's condition column is then a numpy gather of these entries (polars keeps
    strings as views too), not a copy of every row's string by ``take``.  Layout (the
    Arrow format): int32 length, then up to 12 bytes inline, or for longer strings a
    4-byte prefix, int32 buffer index (0) and int32 offset into the data buffer."""
    out = np.zeros((len(names), 16), dtype=np.uint8)
    data = bytearray()
    for i, name in enumerate(names):
        raw = name.encode()
        out[i, 0:4] = np.frombuffer(np.int32(len(raw)).tobytes(), dtype=np.uint8)
        if len(raw) <= 12:
            out[i, 4 : 4 + len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        else:
            out[i, 4:8] = np.frombuffer(raw[:4], dtype=np.uint8)
            out[i, 12:16] = np.frombuffer(np.int32(len(data)).tobytes(), dtype=np.uint8)
            data += raw
    return out.view(np.dtype((np.void, 16))).reshape(-1), pa.py_buffer(bytes(data))


def build_trace(df: pl.DataFrame, items: Sequence[Item], name: str = "trace") -> pl.Series:
    """:func:`trace_from_arrays` over polars expressions, evaluated in one ``select``."""
    n = df.height
    if n == 0 or not items:
        return empty_traces(n, name)
    exprs: list[pl.Expr] = []
    for j, it in enumerate(items):
        for tag, x in (("v", it.value), ("t", it.threshold)):
            e = x if isinstance(x, pl.Expr) else pl.lit(x, dtype=pl.Float64)
            exprs.append(e.cast(pl.Float64).fill_null(float("nan")).alias(f"{tag}{j}"))
        p = it.passed if isinstance(it.passed, pl.Expr) else pl.lit(it.passed)
        exprs.append(p.cast(pl.Boolean).fill_null(False).alias(f"p{j}"))
        if it.include is not None:
            exprs.append(it.include.cast(pl.Boolean).fill_null(False).alias(f"i{j}"))
    cols = df.select(exprs)
    arrays = [
        ArrayItem(
            it.condition,
            cols.get_column(f"v{j}").to_numpy(),
            cols.get_column(f"t{j}").to_numpy(),
            cols.get_column(f"p{j}").to_numpy(),
            cols.get_column(f"i{j}").to_numpy() if it.include is not None else None,
        )
        for j, it in enumerate(items)
    ]
    return trace_from_arrays(n, arrays, name)


def traces_from_dicts(
    rows: Sequence[Sequence[dict[str, object]]], name: str = "trace"
) -> pl.Series:
    """Trace lists from Python dicts (the few rows built by Python loops)."""
    return pl.Series(name, [list(r) for r in rows], dtype=TRACE_DTYPE)


def empty_traces(n: int, name: str = "trace") -> pl.Series:
    """``n`` empty trace lists (typed)."""
    return pl.Series(name, [[]] * n, dtype=TRACE_DTYPE)
