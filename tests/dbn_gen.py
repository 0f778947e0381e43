"""Real DBN bytes made with databento_dbn's own constructors (tests and bench/).

``Metadata(...)`` encodes the header; records are ``TradeMsg`` / ``MBP1Msg`` / ... built
by the SDK and serialised with ``bytes(record)``.  For volume, ``tile`` repeats template
records with numpy in the SDK's record layout (``Record._dtypes``), shifting ts, price
and instrument id, so millions of records cost no per-record Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import databento_dbn as d
import numpy as np
import zstandard


@dataclass(frozen=True)
class Interval:
    start_date: dt.date
    end_date: dt.date
    symbol: str


@dataclass(frozen=True)
class Mapping:
    raw_symbol: str
    intervals: Sequence[Interval]


def metadata(
    dataset: str,
    schema: d.Schema | None,
    start_ns: int,
    end_ns: int,
    symbols: dict[str, int],
) -> bytes:
    """A DBN header whose mappings send each raw symbol to its instrument id."""
    day0 = dt.datetime.fromtimestamp(start_ns / 1e9, dt.UTC).date()
    day1 = dt.datetime.fromtimestamp(end_ns / 1e9, dt.UTC).date() + dt.timedelta(days=1)
    maps = [Mapping(raw, [Interval(day0, day1, str(iid))]) for raw, iid in symbols.items()]
    md = d.Metadata(
        dataset=dataset,
        start=start_ns,
        stype_in=d.SType.RAW_SYMBOL,
        stype_out=d.SType.INSTRUMENT_ID,
        schema=schema,
        symbols=list(symbols),
        mappings=maps,
        end=end_ns,
    )
    return bytes(md)


def trade(iid: int, ts: int, price: int, size: int, publisher: int = 23) -> d.TradeMsg:
    return d.TradeMsg(
        publisher_id=publisher,
        instrument_id=iid,
        ts_event=ts,
        price=price,
        size=size,
        action=d.Action.TRADE,
        side=d.Side.NONE,
        depth=0,
        ts_recv=ts + 1000,
    )


def tbbo(
    iid: int, ts: int, price: int, size: int, bid: int, ask: int, publisher: int = 23
) -> d.MBP1Msg:
    return d.MBP1Msg(
        publisher_id=publisher,
        instrument_id=iid,
        ts_event=ts,
        price=price,
        size=size,
        action=d.Action.TRADE,
        side=d.Side.NONE,
        depth=0,
        ts_recv=ts + 1000,
        levels=d.BidAskPair(bid_px=bid, ask_px=ask, bid_sz=10, ask_sz=12),
    )


def definition(iid: int, raw_symbol: str, ts: int, publisher: int = 30) -> d.InstrumentDefMsg:
    return d.InstrumentDefMsg(
        publisher_id=publisher,
        instrument_id=iid,
        ts_event=ts,
        ts_recv=ts,
        min_price_increment=10_000_000,
        display_factor=1_000_000_000,
        raw_symbol=raw_symbol,
        asset="AAPL",
        security_type="OPT",
        instrument_class=d.InstrumentClass.CALL,
        security_update_action=d.SecurityUpdateAction.ADD,
    )


def write(path: Path, header: bytes, body: bytes, *, zstd: bool = True) -> Path:
    data = header + body
    if zstd:
        data = zstandard.ZstdCompressor(level=1).compress(data)
    path.write_bytes(data)
    return path


def tile(
    templates: Sequence[object],
    n: int,
    *,
    start_ns: int,
    step_ns: int,
    instrument_ids: np.ndarray,
) -> bytes:
    """``n`` records: the templates repeated, ts advancing ``step_ns`` per record and
    instrument ids cycling through ``instrument_ids``; prices wobble by one tick."""
    dtype = np.dtype(type(templates[0])._dtypes)
    base = np.frombuffer(b"".join(bytes(t) for t in templates), dtype=dtype)
    reps = -(-n // len(base))
    arr = np.tile(base, reps)[:n].copy()
    idx = np.arange(n, dtype=np.int64)
    ts = start_ns + idx * step_ns
    arr["ts_event"] = ts.astype(np.uint64)
    arr["ts_recv"] = (ts + 1000).astype(np.uint64)
    arr["instrument_id"] = instrument_ids[idx % len(instrument_ids)].astype(np.uint32)
    tick = ((idx // 7) % 3 - 1) * 10_000_000
    for col in ("price", "bid_px_00", "ask_px_00"):
        if col in arr.dtype.names:
            arr[col] = arr[col] + tick
    if "sequence" in arr.dtype.names:
        arr["sequence"] = (idx % 2**32).astype(np.uint32)
    return arr.tobytes()
