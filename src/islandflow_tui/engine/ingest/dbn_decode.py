"""DBN records (Databento's binary encoding) -> the engine's raw stream frames.

One decoder for every Databento path (``islandflow import`` of files, the historical
download, the live gateway): records arrive as numpy structured arrays in the SDK's
own record layouts (``DBNStore.to_ndarray`` or the ``_dtypes`` of ``databento_dbn``
record classes) and are turned into polars frames column by column, with no
per-record Python on the hot path.

What maps to what (README "Databento"):

* ``trades`` (rtype 0): a print.
* ``tbbo`` / ``mbp-1`` / ``mbp-10`` (rtype 1/10), ``tcbbo`` / ``cmbp-1`` (194/177): a quote
  from the top level (the BBO in force) and, for trade actions (``T``), also a print
  at the same ts, so the print joins the quote it came with.  In OPRA ``tbbo``/``mbp-1``
  the quote is the trading venue's BBO (``publisher_id`` is the venue); ``tcbbo`` /
  ``cbbo`` carry the consolidated one.
* ``cbbo-1s/1m``, ``bbo-1s/1m`` (192/193/195/196): a quote only (their ``price`` is the
  interval's last trade, already a print of the trades schema).
* ``mbo`` (160): a print per trade action ``T`` (no book is built, so no quote).
* ``definition`` (19) and ``symbol mapping`` (22) records: instrument id -> raw symbol.
* ``statistics`` (24) with ``stat_type`` open interest: the open-interest table.
* ``ohlcv-*``, ``imbalance``, ``status``, system and error records carry no print or
  quote and are counted as ``unused``.

Prices are fixed-point integers (1e-9 dollars); ``UNDEF_PRICE`` becomes NaN (an
undefined best bid becomes 0.0: no bid, as OPRA itself quotes it).  ``ts`` is
``ts_event``; an undefined one (2**64-1) in a bbo/cbbo interval record (no update in
that interval) becomes the interval close ``ts_recv`` (the quote in force then); in any
other record it becomes 0, which validation rejects as ``bad_ts``.  An instrument id without a known
symbol gives a null symbol (``unknown_symbol``).  Zero sizes and bad OSI symbols are
left to engine/validate.py, which rejects and counts them by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import databento_dbn as dbn
import numpy as np
import pandas as pd
import polars as pl

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.ingest.dbn_venues import asset_class, venue_columns

UNDEF_PRICE: Final = int(dbn.UNDEF_PRICE)
UNDEF_TS: Final = 2**64 - 1
NEW_YORK: Final = ZoneInfo("America/New_York")

RT_TRADES: Final = 0
RT_MBP1: Final = 1
RT_MBP10: Final = 10
RT_MBO: Final = 160
RT_CMBP1: Final = 177
RT_CBBO_1S: Final = 192
RT_CBBO_1M: Final = 193
RT_TCBBO: Final = 194
RT_BBO_1S: Final = 195
RT_BBO_1M: Final = 196
RT_DEFINITION: Final = 19
RT_STATISTICS: Final = 24
RT_SYMBOL_MAPPING: Final = 22

#: record types that can carry a trade (print) and a top-of-book quote
PRINT_RTYPES: Final = frozenset({RT_TRADES, RT_MBP1, RT_MBP10, RT_MBO, RT_CMBP1, RT_TCBBO})
QUOTE_RTYPES: Final = frozenset(
    {RT_MBP1, RT_MBP10, RT_CMBP1, RT_TCBBO, RT_CBBO_1S, RT_CBBO_1M, RT_BBO_1S, RT_BBO_1M}
)
EVENT_RTYPES: Final = PRINT_RTYPES | QUOTE_RTYPES
#: interval-sampled BBO schemas: ts_recv is the interval close
INTERVAL_RTYPES: Final = frozenset({RT_CBBO_1S, RT_CBBO_1M, RT_BBO_1S, RT_BBO_1M})
REFERENCE_RTYPES: Final = frozenset({RT_DEFINITION, RT_STATISTICS, RT_SYMBOL_MAPPING})

#: schema -> the rtype its records have
SCHEMA_RTYPE: Final[dict[str, int]] = {
    "trades": RT_TRADES,
    "tbbo": RT_MBP1,
    "mbp-1": RT_MBP1,
    "mbp-10": RT_MBP10,
    "mbo": RT_MBO,
    "cmbp-1": RT_CMBP1,
    "tcbbo": RT_TCBBO,
    "cbbo-1s": RT_CBBO_1S,
    "cbbo-1m": RT_CBBO_1M,
    "bbo-1s": RT_BBO_1S,
    "bbo-1m": RT_BBO_1M,
    "definition": RT_DEFINITION,
    "statistics": RT_STATISTICS,
}

#: When several schemas of one dataset are imported together, prints come from the
#: best print source only (lower is better), so a trade is never counted twice.
PRINT_RANK: Final[dict[str, int]] = {
    "trades": 0,
    "tbbo": 1,
    "tcbbo": 1,
    "mbp-1": 2,
    "cmbp-1": 2,
    "mbp-10": 3,
    "mbo": 4,
}
#: ... and quotes from the best quote source: consolidated first, then venue BBOs,
#: then the interval snapshots.
QUOTE_RANK: Final[dict[str, int]] = {
    "tcbbo": 0,
    "cmbp-1": 0,
    "tbbo": 1,
    "mbp-1": 1,
    "mbp-10": 2,
    "cbbo-1s": 3,
    "bbo-1s": 3,
    "cbbo-1m": 4,
    "bbo-1m": 4,
}

OPEN_INTEREST_STAT: Final = int(dbn.StatType.OPEN_INTEREST.value)
_STAT_NEW: Final = 1  # StatUpdateAction.NEW

OI_SCHEMA: Final = pl.Schema({"symbol": pl.String, "as_of": pl.Date, "open_interest": pl.Int64})


def _date_ns(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * ev.NS_PER_S


@dataclass
class Symbology:
    """Instrument id -> raw symbol: the file's dated mappings first, then definitions.

    ``metadata.mappings`` (stype_in ``raw_symbol``) gives dated intervals; definition
    and symbol-mapping records give the newest symbol of an id (valid for the whole
    import, since their own timestamps can come after the prints they name).
    """

    _intervals: list[tuple[int, int, int, str]] = field(default_factory=list)
    _latest: dict[int, str] = field(default_factory=dict)
    _table: pl.DataFrame | None = None
    _latest_table: pl.DataFrame | None = None

    def add_mappings(self, mappings: Mapping[str, Iterable[Mapping[str, Any]]]) -> int:
        """``DBNStore.mappings`` of a file whose stype_in is raw_symbol."""
        n = 0
        for raw, intervals in mappings.items():
            for iv in intervals:
                try:
                    iid = int(iv["symbol"])
                except (KeyError, TypeError, ValueError):
                    continue
                start, end = iv.get("start_date"), iv.get("end_date")
                lo = _date_ns(start) if isinstance(start, date) else 0
                hi = _date_ns(end) if isinstance(end, date) else 2**63 - 1
                self._intervals.append((iid, lo, hi, str(raw)))
                n += 1
        self._table = None
        return n

    def add_symbols(self, instrument_ids: Iterable[int], symbols: Iterable[str]) -> None:
        """Definitions / symbol-mapping records (in record order: later wins)."""
        for iid, sym in zip(instrument_ids, symbols, strict=True):
            if sym:
                self._latest[int(iid)] = sym
        self._latest_table = None

    def add_definitions(self, arr: np.ndarray) -> None:
        raw = np.char.decode(arr["raw_symbol"], "ascii", errors="replace")
        self.add_symbols(arr["instrument_id"].tolist(), raw.tolist())

    def add_symbol_mappings(self, records: Iterable[Any]) -> None:
        """Live ``SymbolMappingMsg`` records (their stype_out_symbol is the raw symbol)."""
        ids, syms = [], []
        for r in records:
            ids.append(r.instrument_id)
            syms.append(str(r.stype_out_symbol))
        self.add_symbols(ids, syms)

    def __len__(self) -> int:
        return len({i[0] for i in self._intervals} | set(self._latest))

    def resolve(self, instrument_id: np.ndarray, ts: np.ndarray) -> pl.Series:
        """Symbol per record (null where the id is unknown at that time).

        Vectorised over the few distinct ids of a batch: each distinct id is looked up
        once, records gather their symbol by index, and the dated interval is checked
        with array compares (ids with several intervals take a join_asof).
        """
        ids, inv = factorize(instrument_id)
        ts = np.asarray(ts, dtype=np.int64)
        k = len(ids)
        sym_u: list[str | None] = [None] * k
        lo_u = np.full(k, np.iinfo(np.int64).min, dtype=np.int64)
        hi_u = np.full(k, np.iinfo(np.int64).max, dtype=np.int64)
        multi: set[int] = set()
        if self._intervals:
            by_id = self._intervals_by_id()
            for j, iid in enumerate(ids.tolist()):
                ivs = by_id.get(iid)
                if not ivs:
                    continue
                if len(ivs) > 1:
                    multi.add(j)
                    continue
                lo, hi, raw = ivs[0]
                sym_u[j], lo_u[j], hi_u[j] = raw, lo, hi
        latest_u = [self._latest.get(iid) for iid in ids.tolist()] if self._latest else None
        idx = pl.Series(inv.astype(np.uint32))
        sym = pl.Series("symbol", sym_u, dtype=pl.String).gather(idx)
        in_range = (ts >= lo_u[inv]) & (ts < hi_u[inv])
        if multi:
            rows = np.flatnonzero(np.isin(inv, np.fromiter(multi, dtype=np.int64)))
            sym = sym.scatter(rows, self._resolve_dated(ids[inv[rows]], ts[rows]))
            in_range[rows] = True
        if not in_range.all():
            sym = pl.select(
                pl.when(pl.Series(in_range)).then(sym).otherwise(None).alias("symbol")
            ).to_series()
        if latest_u is not None and sym.null_count():
            sym = sym.fill_null(pl.Series(latest_u, dtype=pl.String).gather(idx))
        return sym.alias("symbol")

    def _intervals_by_id(self) -> dict[int, list[tuple[int, int, str]]]:
        out: dict[int, list[tuple[int, int, str]]] = {}
        for iid, lo, hi, raw in dict.fromkeys(self._intervals):
            out.setdefault(iid, []).append((lo, hi, raw))
        return out

    def _resolve_dated(self, instrument_id: np.ndarray, ts: np.ndarray) -> pl.Series:
        left = pl.DataFrame(
            {"iid": pl.Series(instrument_id, dtype=pl.UInt32), "ts": pl.Series(ts, dtype=pl.Int64)}
        )
        j = (
            left.with_row_index("_i")
            .sort("ts")
            .join_asof(
                self._interval_table().sort("lo"),
                left_on="ts",
                right_on="lo",
                by="iid",
                strategy="backward",
                check_sortedness=False,
            )
            .sort("_i")
        )
        return j.select(
            pl.when(pl.col("ts") < pl.col("hi")).then(pl.col("raw")).alias("symbol")
        ).to_series()

    def _interval_table(self) -> pl.DataFrame:
        if self._table is None:
            self._table = pl.DataFrame(
                self._intervals,
                schema={"iid": pl.UInt32, "lo": pl.Int64, "hi": pl.Int64, "raw": pl.String},
                orient="row",
            ).unique(maintain_order=True)
        return self._table

    def _latest_frame(self) -> pl.DataFrame:
        if self._latest_table is None:
            self._latest_table = pl.DataFrame(
                {
                    "iid": pl.Series(list(self._latest), dtype=pl.UInt32),
                    "raw": pl.Series(list(self._latest.values()), dtype=pl.String),
                }
            )
        return self._latest_table


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, index of each value into them): a hash pass, not a sort
    (``np.unique`` sorts: it was half the decode time of a million records)."""
    codes, uniques = pd.factorize(np.asarray(values), sort=False)
    return np.asarray(uniques), codes


def _px(raw: np.ndarray) -> np.ndarray:
    """Fixed-point 1e-9 -> dollars; UNDEF_PRICE -> NaN (as databento's to_df does)."""
    out = raw / 1e9
    out[raw == UNDEF_PRICE] = np.nan
    return out


def _ts(raw: np.ndarray) -> np.ndarray:
    """ts_event as int64 ns; undefined (2**64-1) -> 0, which validation rejects (bad_ts)."""
    return np.where(raw == np.uint64(UNDEF_TS), 0, raw).astype(np.int64)


@dataclass
class Decoded:
    """Frames per raw stream (ingest columns, ts-sorted) from one array of records."""

    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    records: int = 0
    unused: int = 0  # records of a kind that carries no print or quote

    def max_ts(self) -> int:
        return max((int(f["ts"].max() or 0) for f in self.frames.values() if f.height), default=0)


def decode_events(
    arr: np.ndarray,
    dataset: str,
    symbology: Symbology,
    *,
    prints: bool = True,
    quotes: bool = True,
) -> Decoded:
    """Prints and/or quotes from one array of records of a single rtype."""
    out = Decoded(records=len(arr))
    if len(arr) == 0:
        return out
    asset = asset_class(dataset)
    rtype = int(arr["rtype"][0])
    if not asset or rtype not in EVENT_RTYPES:
        out.unused = len(arr)
        return out
    ts = _ts(arr["ts_event"])
    if rtype in INTERVAL_RTYPES:
        # an interval snapshot without an update in it: the BBO in force at its close
        ts = np.where(ts == 0, arr["ts_recv"].astype(np.int64), ts)
    symbol = symbology.resolve(arr["instrument_id"], np.where(ts == 0, arr["ts_recv"], ts))
    want_print = prints and rtype in PRINT_RTYPES
    want_quote = quotes and rtype in QUOTE_RTYPES
    if want_print:
        # tcbbo arrays come in the SDK's CBBOMsg layout (no action field): all trades
        all_trades = rtype == RT_TRADES or "action" not in (arr.dtype.names or ())
        mask = None if all_trades else arr["action"] == b"T"
        if mask is not None and mask.all():
            mask = None  # tbbo/tcbbo: every record is a trade, no copy
        sub = arr if mask is None else arr[mask]
        if len(sub):
            p_ts = ts if mask is None else ts[mask]
            p_sym = symbol if mask is None else symbol.filter(pl.Series(mask))
            opt, eq, off = venue_columns(sub["publisher_id"])
            cols: dict[str, Any] = {
                "ts": pl.Series(p_ts, dtype=pl.Int64),
                "symbol": p_sym,
                "price": pl.Series(_px(sub["price"]), dtype=pl.Float64),
                "size": pl.Series(sub["size"].astype(np.int64), dtype=pl.Int64),
            }
            n = len(sub)
            if asset == "options":
                stream = ev.OPTIONS_PRINTS
                cols["exchange"] = opt
            else:
                stream = ev.EQUITIES_PRINTS
                cols["venue"] = eq
                cols["off_exchange"] = off
            cols["conditions"] = pl.repeat("", n, dtype=pl.String, eager=True)
            cols["flags"] = pl.repeat(0, n, dtype=pl.Int32, eager=True)
            out.frames[stream] = pl.DataFrame(cols).select(ev.ingest_fields(stream))
    if want_quote:
        bid_raw = arr["bid_px_00"]
        bid = _px(bid_raw)
        bid[bid_raw == UNDEF_PRICE] = 0.0  # no bid
        ask = _px(arr["ask_px_00"])
        stream = ev.OPTIONS_NBBO if asset == "options" else ev.EQUITIES_QUOTES
        out.frames[stream] = pl.DataFrame(
            {
                "ts": pl.Series(ts, dtype=pl.Int64),
                "symbol": symbol,
                "bid": pl.Series(bid, dtype=pl.Float64),
                "ask": pl.Series(ask, dtype=pl.Float64),
                "bid_size": pl.Series(arr["bid_sz_00"].astype(np.int64), dtype=pl.Int64),
                "ask_size": pl.Series(arr["ask_sz_00"].astype(np.int64), dtype=pl.Int64),
            }
        )
    for stream, frame in out.frames.items():
        if not frame.get_column("ts").is_sorted():  # files are ts_recv-ordered: rarely
            out.frames[stream] = frame.sort("ts", maintain_order=True)
    if not out.frames:
        out.unused = len(arr)
    return out


def open_interest(arr: np.ndarray, symbology: Symbology) -> pl.DataFrame:
    """Open interest from statistics records: symbol, as_of (New York date), open_interest.

    The newest value per (symbol, date) wins; deletes and other stat types are ignored.
    """
    if len(arr) == 0:
        return pl.DataFrame(schema=OI_SCHEMA)
    keep = (arr["stat_type"] == OPEN_INTEREST_STAT) & (arr["update_action"] == _STAT_NEW)
    sub = arr[keep]
    if len(sub) == 0:
        return pl.DataFrame(schema=OI_SCHEMA)
    ts_raw = sub["ts_event"]
    ts = np.where(ts_raw == np.uint64(UNDEF_TS), sub["ts_recv"], ts_raw).astype(np.int64)
    symbol = symbology.resolve(sub["instrument_id"], ts)
    frame = pl.DataFrame(
        {
            "symbol": symbol,
            "ts": pl.Series(ts, dtype=pl.Int64),
            "open_interest": pl.Series(sub["quantity"].astype(np.int64), dtype=pl.Int64),
        }
    )
    return merge_open_interest(
        frame.with_columns(
            pl.from_epoch("ts", time_unit="ns")
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone("America/New_York")
            .dt.date()
            .alias("as_of")
        )
    )


def merge_open_interest(*frames: pl.DataFrame) -> pl.DataFrame:
    """One OI table from several (later rows win per symbol and date)."""
    parts = [f for f in frames if f.height]
    if not parts:
        return pl.DataFrame(schema=OI_SCHEMA)
    both = pl.concat([f.select(OI_SCHEMA.names()) for f in parts], how="vertical")
    return (
        both.filter(pl.col("symbol").is_not_null())
        .unique(["symbol", "as_of"], keep="last", maintain_order=True)
        .sort("as_of", "symbol")
    )


def split_records(records: Iterable[Any]) -> tuple[dict[int, np.ndarray], list[Any]]:
    """Mixed records (a live session, a mixed file) -> one array per rtype, plus the
    symbol-mapping records.  Per-record Python, so only for live rates and small
    mixed files; homogeneous files go through ``DBNStore.to_ndarray`` instead."""
    chunks: dict[int, list[bytes]] = {}
    dtypes: dict[int, Any] = {}
    mappings: list[Any] = []
    for rec in records:
        if isinstance(rec, dbn.SymbolMappingMsg):
            mappings.append(rec)
            continue
        rt = int(rec.rtype)
        if rt not in EVENT_RTYPES and rt not in REFERENCE_RTYPES:
            chunks.setdefault(-1, []).append(b"")
            continue
        if rt not in dtypes:
            dtypes[rt] = np.dtype(type(rec)._dtypes)
        chunks.setdefault(rt, []).append(bytes(rec))
    arrays: dict[int, np.ndarray] = {}
    for rt, parts in chunks.items():
        if rt == -1:
            arrays[-1] = np.zeros(len(parts), dtype=[("rtype", "u1")])
            continue
        arrays[rt] = np.frombuffer(b"".join(parts), dtype=dtypes[rt])
    return arrays, mappings
