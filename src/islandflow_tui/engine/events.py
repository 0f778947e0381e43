"""One schema per stream: the single definition every other module imports.

Every event carries ``ts`` (event time, ns since the epoch, UTC), ``seq`` (monotonic
per stream, assigned when the engine accepts the event) and ``id`` (stable: derived
from the stream code and ``seq`` so a replay reproduces it bit for bit).  Derived
events also carry ``evidence`` (ids of the events behind them) and, where rules
fire, ``trace`` (condition, value, threshold, passed).

Schemas are Arrow schemas (the on-disk and wire contract) with a one-line doc per
field in the field metadata; ``polars_schema`` gives the matching polars schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Final

import polars as pl
import pyarrow as pa

NS_PER_MS: Final = 1_000_000
NS_PER_S: Final = 1_000_000_000

# ---------------------------------------------------------------------------
# Stream names (DESIGN.md "Streams")
# ---------------------------------------------------------------------------
OPTIONS_PRINTS: Final = "options.prints"
OPTIONS_NBBO: Final = "options.nbbo"
EQUITIES_PRINTS: Final = "equities.prints"
EQUITIES_QUOTES: Final = "equities.quotes"
OPTIONS_ENRICHED: Final = "options.enriched"
FLOW_PACKETS: Final = "flow.packets"
FLOW_STRUCTURES: Final = "flow.structures"
CLASSIFIER_HITS: Final = "classifier.hits"
ALERTS: Final = "alerts"
EQUITIES_JOINS: Final = "equities.joins"
DARK_INFERRED: Final = "dark.inferred"
CANDLES: Final = "candles"

RAW_STREAMS: Final = (OPTIONS_PRINTS, OPTIONS_NBBO, EQUITIES_PRINTS, EQUITIES_QUOTES)
DERIVED_STREAMS: Final = (
    OPTIONS_ENRICHED,
    FLOW_PACKETS,
    FLOW_STRUCTURES,
    CLASSIFIER_HITS,
    ALERTS,
    EQUITIES_JOINS,
    DARK_INFERRED,
    CANDLES,
)
ALL_STREAMS: Final = RAW_STREAMS + DERIVED_STREAMS

# Stream order is the tie-break after ts when streams are merged (replay, compute):
# quotes sort before prints at the same ts so a print sees a quote stamped with its
# own ts, which is what "latest NBBO at or before the print" means.
STREAM_ORDER: Final = {
    OPTIONS_NBBO: 0,
    EQUITIES_QUOTES: 1,
    OPTIONS_PRINTS: 2,
    EQUITIES_PRINTS: 3,
    **{name: 10 + i for i, name in enumerate(DERIVED_STREAMS)},
}

# The top byte of an id names its stream; the low 56 bits are the stream's seq.
STREAM_CODE: Final = {
    OPTIONS_PRINTS: 1,
    OPTIONS_NBBO: 2,
    EQUITIES_PRINTS: 3,
    EQUITIES_QUOTES: 4,
    OPTIONS_ENRICHED: 5,
    FLOW_PACKETS: 6,
    FLOW_STRUCTURES: 7,
    CLASSIFIER_HITS: 8,
    ALERTS: 9,
    EQUITIES_JOINS: 10,
    DARK_INFERRED: 11,
    CANDLES: 12,
}
CODE_STREAM: Final = {code: name for name, code in STREAM_CODE.items()}
STREAM_TAG: Final = {
    OPTIONS_PRINTS: "OP",
    OPTIONS_NBBO: "OQ",
    EQUITIES_PRINTS: "EP",
    EQUITIES_QUOTES: "EQ",
    OPTIONS_ENRICHED: "OE",
    FLOW_PACKETS: "PK",
    FLOW_STRUCTURES: "ST",
    CLASSIFIER_HITS: "CH",
    ALERTS: "AL",
    EQUITIES_JOINS: "EJ",
    DARK_INFERRED: "DK",
    CANDLES: "CD",
}
_SEQ_BITS: Final = 56
_SEQ_MASK: Final = (1 << _SEQ_BITS) - 1


def make_id(stream: str, seq: int) -> int:
    """Stable id of event ``seq`` of ``stream``: the same event gets the same id in replay."""
    return (STREAM_CODE[stream] << _SEQ_BITS) | (seq & _SEQ_MASK)


def id_expr(stream: str, seq_col: str = "seq") -> pl.Expr:
    """Vectorised ``make_id`` over a seq column."""
    return (pl.lit(STREAM_CODE[stream] << _SEQ_BITS, pl.Int64) | pl.col(seq_col)).alias("id")


def split_id(event_id: int) -> tuple[str, int]:
    """Inverse of ``make_id``: (stream, seq)."""
    return CODE_STREAM[event_id >> _SEQ_BITS], event_id & _SEQ_MASK


def format_id(event_id: int | None) -> str:
    """Human form of an id, e.g. ``OP-1234``, as shown in evidence lists."""
    if event_id is None:
        return "-"
    stream, seq = split_id(event_id)
    return f"{STREAM_TAG[stream]}-{seq}"


# ---------------------------------------------------------------------------
# Condition flags: normalised trade conditions as bits, so rules stay vectorised.
# Adapters map vendor codes into these; the raw codes stay in ``conditions``.
# ---------------------------------------------------------------------------
class Cond(IntFlag):
    NONE = 0
    ISO = 1 << 0  # intermarket sweep order
    MULTI_LEG = 1 << 1  # complex / multi-leg order print (never signed against one leg's NBBO)
    LATE = 1 << 2  # reported late / out of sequence
    OUT_OF_SEQ = 1 << 3
    CANCEL = 1 << 4  # cancels an earlier print
    CORRECTION = 1 << 5
    ODD_LOT = 1 << 6
    AVERAGE_PRICE = 1 << 7
    OPENING = 1 << 8
    CLOSING = 1 << 9
    DERIVATIVELY_PRICED = 1 << 10
    AUCTION = 1 << 11
    STOCK_OPTION = 1 << 12  # option leg of a stock-option combo
    FLOOR = 1 << 13


COND_LABELS: Final = {
    Cond.ISO: "ISO",
    Cond.MULTI_LEG: "MLEG",
    Cond.LATE: "LATE",
    Cond.OUT_OF_SEQ: "OOS",
    Cond.CANCEL: "CXL",
    Cond.CORRECTION: "COR",
    Cond.ODD_LOT: "ODD",
    Cond.AVERAGE_PRICE: "AVG",
    Cond.OPENING: "OPEN",
    Cond.CLOSING: "CLOSE",
    Cond.DERIVATIVELY_PRICED: "DERIV",
    Cond.AUCTION: "AUCT",
    Cond.STOCK_OPTION: "STKOPT",
    Cond.FLOOR: "FLOOR",
}


def cond_text(flags: int) -> str:
    """Short labels of the set flags, in bit order (``"ISO MLEG"``)."""
    return " ".join(label for bit, label in COND_LABELS.items() if flags & bit)


# Placement labels of an option print against the NBBO in force.
PLACEMENTS: Final = ("AA", "A", "MID", "B", "BB", "NO_NBBO", "STALE", "CROSSED")
# Quote state of the NBBO a print was joined to.
QUOTE_STATES: Final = ("NORMAL", "LOCKED", "CROSSED", "NONE")
# Signal policies (seed: OPTIONS_SIGNAL_MODE); bit of each in ``signal_mask``.
SIGNAL_POLICIES: Final = ("smart-money", "balanced", "all")
SIGNAL_BIT: Final = {"smart-money": 1, "balanced": 2, "all": 4}


# ---------------------------------------------------------------------------
# Field helpers
# ---------------------------------------------------------------------------
def _f(name: str, typ: pa.DataType, doc: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, typ, nullable=nullable, metadata={"doc": doc})


TS = _f("ts", pa.int64(), "event time, ns since epoch, UTC")
SEQ = _f("seq", pa.int64(), "monotonic sequence number within the stream")
ID = _f("id", pa.int64(), "stable id: stream code << 56 | seq")
EVIDENCE = _f("evidence", pa.list_(pa.int64()), "ids of the events behind this one")
TRACE_ITEM = pa.struct(
    [
        pa.field("condition", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("threshold", pa.float64()),
        pa.field("passed", pa.bool_()),
    ]
)
TRACE = _f("trace", pa.list_(TRACE_ITEM), "rule trace: (condition, value, threshold, passed)")

OSI_FIELDS = [
    _f("symbol", pa.string(), "21-character OSI option symbol"),
    _f("root", pa.string(), "OSI root (underlying symbol)"),
    _f("expiry", pa.date32(), "expiration date"),
    _f("right", pa.string(), "C or P"),
    _f("strike", pa.float64(), "strike price in dollars"),
]

HEADER = [TS, SEQ, ID]

# ---------------------------------------------------------------------------
# Raw streams
# ---------------------------------------------------------------------------
OPTIONS_PRINTS_SCHEMA = pa.schema(
    [
        *HEADER,
        *OSI_FIELDS,
        _f("price", pa.float64(), "trade price in dollars per share"),
        _f("size", pa.int64(), "contracts"),
        _f("exchange", pa.string(), "reporting venue code"),
        _f("conditions", pa.string(), "vendor condition codes as received, space separated"),
        _f("flags", pa.int32(), "normalised condition bits (engine.events.Cond)"),
    ]
)

# Quotes carry the OSI symbol only: they outnumber prints 5-20x, and the typed
# contract columns would cost a third of the ingest time and of the bytes on disk.
# They are on every print-derived stream, where screens and rules use them.
OPTIONS_NBBO_SCHEMA = pa.schema(
    [
        *HEADER,
        _f("symbol", pa.string(), "21-character OSI option symbol"),
        _f("bid", pa.float64(), "best bid in dollars"),
        _f("ask", pa.float64(), "best ask in dollars"),
        _f("bid_size", pa.int64(), "contracts at the bid"),
        _f("ask_size", pa.int64(), "contracts at the ask"),
    ]
)

EQUITIES_PRINTS_SCHEMA = pa.schema(
    [
        *HEADER,
        _f("symbol", pa.string(), "ticker"),
        _f("price", pa.float64(), "trade price in dollars"),
        _f("size", pa.int64(), "shares"),
        _f("venue", pa.string(), "venue code (engine venue table; TRF/ADF = off-exchange)"),
        _f("off_exchange", pa.bool_(), "reported to a TRF/ADF rather than printed on a lit venue"),
        _f("conditions", pa.string(), "vendor condition codes as received, space separated"),
        _f("flags", pa.int32(), "normalised condition bits (engine.events.Cond)"),
    ]
)

EQUITIES_QUOTES_SCHEMA = pa.schema(
    [
        *HEADER,
        _f("symbol", pa.string(), "ticker"),
        _f("bid", pa.float64(), "best bid in dollars"),
        _f("ask", pa.float64(), "best ask in dollars"),
        _f("bid_size", pa.int64(), "shares at the bid"),
        _f("ask_size", pa.int64(), "shares at the ask"),
    ]
)

# ---------------------------------------------------------------------------
# Derived streams
# ---------------------------------------------------------------------------
OPTIONS_ENRICHED_SCHEMA = pa.schema(
    [
        *HEADER,
        _f("print_id", pa.int64(), "id of the options.prints event"),
        *OSI_FIELDS,
        _f("price", pa.float64(), "trade price"),
        _f("size", pa.int64(), "contracts"),
        _f("exchange", pa.string(), "reporting venue code"),
        _f("conditions", pa.string(), "vendor condition codes"),
        _f("flags", pa.int32(), "normalised condition bits"),
        _f("nbbo_id", pa.int64(), "id of the NBBO in force, null if none", True),
        _f("bid", pa.float64(), "NBBO bid in force", True),
        _f("ask", pa.float64(), "NBBO ask in force", True),
        _f("bid_size", pa.int64(), "NBBO bid size in force", True),
        _f("ask_size", pa.int64(), "NBBO ask size in force", True),
        _f("mid", pa.float64(), "(bid + ask) / 2", True),
        _f("spread", pa.float64(), "ask - bid", True),
        _f("quote_age_ns", pa.int64(), "print ts minus quote ts", True),
        _f("quote_state", pa.string(), "NORMAL, LOCKED, CROSSED or NONE"),
        _f("placement", pa.string(), "AA, A, MID, B, BB, NO_NBBO, STALE or CROSSED"),
        _f("premium", pa.float64(), "price * size * 100, dollars"),
        _f("signal_pass", pa.bool_(), "verdict of the configured signal policy"),
        _f("signal_reason", pa.string(), "rule that decided the verdict"),
        _f("signal_mask", pa.int8(), "bit per policy that passes it (1 smart, 2 balanced, 4 all)"),
        EVIDENCE,
    ]
)

FLOW_PACKETS_SCHEMA = pa.schema(
    [
        *HEADER,
        *OSI_FIELDS,
        _f("first_ts", pa.int64(), "ts of the first member print"),
        _f("last_ts", pa.int64(), "ts of the last member print"),
        _f("count", pa.int64(), "member prints"),
        _f("total_size", pa.int64(), "contracts"),
        _f("premium", pa.float64(), "dollars"),
        _f("vwap", pa.float64(), "size-weighted price"),
        _f("exchanges", pa.int64(), "distinct venues"),
        _f("iso_count", pa.int64(), "ISO prints"),
        _f("nbbo_coverage", pa.float64(), "fraction of members with a usable NBBO"),
        _f("kind", pa.string(), "sweep, block, split, repeat, golden_sweep or plain"),
        _f("direction", pa.string(), "bullish, bearish or neutral"),
        EVIDENCE,
        TRACE,
    ]
)

FLOW_STRUCTURES_SCHEMA = pa.schema(
    [
        *HEADER,
        _f("root", pa.string(), "underlying"),
        _f("label", pa.string(), "vertical, calendar, straddle, ..."),
        _f("legs", pa.int64(), "number of legs"),
        _f("premium", pa.float64(), "net dollars"),
        _f("confidence", pa.float64(), "0..1"),
        EVIDENCE,
        TRACE,
    ]
)

CLASSIFIER_HITS_SCHEMA = pa.schema(
    [
        *HEADER,
        _f("classifier", pa.string(), "classifier name"),
        _f("root", pa.string(), "underlying"),
        _f("symbol", pa.string(), "contract, empty for structures", True),
        _f("direction", pa.string(), "bullish, bearish or neutral"),
        _f("confidence", pa.float64(), "0..1"),
        _f("premium", pa.float64(), "dollars"),
        EVIDENCE,
        TRACE,
    ]
)

ALERTS_SCHEMA = pa.schema(
    [
        *HEADER,
        _f("root", pa.string(), "underlying"),
        _f("symbol", pa.string(), "contract", True),
        _f("kind", pa.string(), "best hit's classifier"),
        _f("score", pa.float64(), "0..100"),
        _f("severity", pa.string(), "high, medium or low"),
        _f("direction", pa.string(), "bullish, bearish or neutral"),
        _f("explanation", pa.string(), "one-line human explanation"),
        _f("premium", pa.float64(), "dollars"),
        EVIDENCE,
        TRACE,
    ]
)

EQUITIES_JOINS_SCHEMA = pa.schema(
    [
        *HEADER,
        _f("print_id", pa.int64(), "id of the equities.prints event"),
        _f("symbol", pa.string(), "ticker"),
        _f("price", pa.float64(), "trade price"),
        _f("size", pa.int64(), "shares"),
        _f("venue", pa.string(), "venue code"),
        _f("off_exchange", pa.bool_(), "TRF/ADF print"),
        _f("quote_id", pa.int64(), "id of the quote in force", True),
        _f("bid", pa.float64(), "bid in force", True),
        _f("ask", pa.float64(), "ask in force", True),
        _f("mid", pa.float64(), "midpoint", True),
        _f("spread", pa.float64(), "ask - bid", True),
        _f("spread_pct", pa.float64(), "spread / mid", True),
        _f("placement", pa.string(), "above_ask, at_ask, mid, at_bid, below_bid, no_quote"),
        _f("price_improvement", pa.float64(), "improvement vs the NBBO side, dollars/share", True),
        _f("retail", pa.bool_(), "retail flag (sub-penny price improvement rule)"),
        _f("retail_side", pa.string(), "buy, sell or empty", True),
        EVIDENCE,
    ]
)

DARK_INFERRED_SCHEMA = pa.schema(
    [
        *HEADER,
        _f("symbol", pa.string(), "ticker"),
        _f("pattern", pa.string(), "block, accumulation or level"),
        _f("direction", pa.string(), "bullish, bearish or neutral"),
        _f("confidence", pa.float64(), "0..1"),
        _f("total_size", pa.int64(), "shares"),
        _f("notional", pa.float64(), "dollars"),
        _f("price", pa.float64(), "size-weighted price"),
        _f("explanation", pa.string(), "one-line human explanation"),
        EVIDENCE,
        TRACE,
    ]
)

CANDLES_SCHEMA = pa.schema(
    [
        *HEADER,
        _f("symbol", pa.string(), "ticker"),
        _f("interval_ms", pa.int64(), "candle length"),
        _f("start_ts", pa.int64(), "candle open time"),
        _f("open", pa.float64(), "first eligible price"),
        _f("high", pa.float64(), "max eligible price"),
        _f("low", pa.float64(), "min eligible price"),
        _f("close", pa.float64(), "last eligible price"),
        _f("volume", pa.int64(), "shares"),
        _f("vwap", pa.float64(), "size-weighted price"),
        _f("trades", pa.int64(), "eligible prints"),
        _f("off_exchange_volume", pa.int64(), "shares printed off-exchange"),
        _f("retail_volume", pa.int64(), "shares flagged retail"),
        _f("final", pa.bool_(), "closed (true) or in-progress update (false)"),
    ]
)

SCHEMAS: Final[dict[str, pa.Schema]] = {
    OPTIONS_PRINTS: OPTIONS_PRINTS_SCHEMA,
    OPTIONS_NBBO: OPTIONS_NBBO_SCHEMA,
    EQUITIES_PRINTS: EQUITIES_PRINTS_SCHEMA,
    EQUITIES_QUOTES: EQUITIES_QUOTES_SCHEMA,
    OPTIONS_ENRICHED: OPTIONS_ENRICHED_SCHEMA,
    FLOW_PACKETS: FLOW_PACKETS_SCHEMA,
    FLOW_STRUCTURES: FLOW_STRUCTURES_SCHEMA,
    CLASSIFIER_HITS: CLASSIFIER_HITS_SCHEMA,
    ALERTS: ALERTS_SCHEMA,
    EQUITIES_JOINS: EQUITIES_JOINS_SCHEMA,
    DARK_INFERRED: DARK_INFERRED_SCHEMA,
    CANDLES: CANDLES_SCHEMA,
}

# What an ingest adapter supplies per raw stream: the engine assigns seq and id,
# and parses OSI symbols into root/expiry/right/strike itself (one parser, one place).
_ENGINE_ASSIGNED = {"seq", "id", "root", "expiry", "right", "strike"}


def ingest_fields(stream: str) -> list[str]:
    """Columns an adapter must provide for a raw stream (in schema order)."""
    return [f.name for f in SCHEMAS[stream] if f.name not in _ENGINE_ASSIGNED]


def polars_schema(stream: str) -> pl.Schema:
    """The polars schema matching a stream's Arrow schema."""
    return pl.Schema(pl.from_arrow(SCHEMAS[stream].empty_table()).schema)


def ingest_polars_schema(stream: str) -> pl.Schema:
    full = polars_schema(stream)
    return pl.Schema({name: full[name] for name in ingest_fields(stream)})


def empty_frame(stream: str) -> pl.DataFrame:
    return pl.DataFrame(schema=polars_schema(stream))


def field_docs(stream: str) -> dict[str, str]:
    return {f.name: (f.metadata or {}).get(b"doc", b"").decode() for f in SCHEMAS[stream]}


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """What an adapter hands the engine: raw frames plus how far the feed has got.

    ``frames`` maps raw stream names to polars frames with the stream's
    ``ingest_fields``.  ``watermark`` (ns) is the adapter's promise that every
    event it will still send has ``ts >= watermark``; the engine finalises
    event-time windows below it and rejects later arrivals below it as late.
    """

    frames: dict[str, pl.DataFrame]
    watermark: int
