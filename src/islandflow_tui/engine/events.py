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

import functools
from dataclasses import dataclass
from enum import IntFlag
from typing import Final

import numpy as np
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


def seq_id_series(stream: str, start: int, n: int) -> tuple[pl.Series, pl.Series]:
    """``seq`` (``start`` ..) and ``id`` columns for ``n`` new events of ``stream``: the
    values of ``pl.int_range`` + :func:`id_expr`, built in numpy (one ``with_columns``
    instead of two expression passes per batch and stream)."""
    seq = np.arange(start, start + n, dtype=np.int64)
    return pl.Series("seq", seq), pl.Series("id", seq | make_id(stream, 0))


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
        _f("side", pa.string(), "inferred trade side: buy, sell or unknown"),
        _f("side_rule", pa.string(), "rule that decided the side (compute/side.py), or why none"),
        _f("premium", pa.float64(), "price * size * 100, dollars"),
        _f("signal_pass", pa.bool_(), "verdict of the configured signal policy"),
        _f("signal_reason", pa.string(), "rule that decided the verdict"),
        _f("signal_mask", pa.int8(), "bit per policy that passes it (1 smart, 2 balanced, 4 all)"),
        EVIDENCE,
    ]
)

# Trade side inferred for each enriched print, and the trade-side labels of packets.
SIDES: Final = ("buy", "sell", "unknown")
PACKET_SIDES: Final = ("buy", "sell", "mixed", "unknown")
DIRECTIONS: Final = ("bullish", "bearish", "neutral")
PACKET_KINDS: Final = ("golden_sweep", "sweep", "block", "split", "repeat", "complex", "plain")
STRUCTURE_LABELS: Final = (
    "vertical",
    "calendar",
    "diagonal",
    "straddle",
    "strangle",
    "risk_reversal",
    "butterfly",
    "condor",
    "roll",
    "ladder",
    "combo",
)
#: status of a packet or alert: first issue, a re-issue after a cancel, or a re-issue
#: that withdraws it (nothing left that qualifies)
STATUSES: Final = ("new", "correction", "retracted")
SEVERITIES: Final = ("high", "medium", "low")


def _nf(name: str, typ: pa.DataType, doc: str) -> pa.Field:
    return _f(name, typ, doc, True)


FLOW_PACKETS_SCHEMA = pa.schema(
    [
        *HEADER,
        *OSI_FIELDS,
        _f("status", pa.string(), "new, or correction (re-issued after a cancel; see corrects)"),
        _nf("corrects", pa.int64(), "id of the packet version this one replaces"),
        _f("first_ts", pa.int64(), "ts of the first member print (the window's anchor)"),
        _f("last_ts", pa.int64(), "ts of the last member print"),
        _f("span_ns", pa.int64(), "last_ts - first_ts"),
        _f("count", pa.int64(), "member prints"),
        _f("total_size", pa.int64(), "contracts"),
        _f("max_size", pa.int64(), "largest single print, contracts"),
        _f("premium", pa.float64(), "sum of price * size * 100, dollars"),
        _f("vwap", pa.float64(), "size-weighted price"),
        _f("first_price", pa.float64(), "price of the first print"),
        _f("last_price", pa.float64(), "price of the last print"),
        _f("min_price", pa.float64(), "lowest price"),
        _f("max_price", pa.float64(), "highest price"),
        _f("exchanges", pa.int64(), "distinct venues"),
        _f("iso_count", pa.int64(), "prints flagged ISO"),
        _f("iso_size", pa.int64(), "contracts in ISO prints"),
        _f("iso_exchanges", pa.int64(), "distinct venues of the ISO prints"),
        _f("complex", pa.bool_(), "multi-leg / stock-option prints (kept apart from single-leg)"),
        _f("nbbo_coverage", pa.float64(), "share of prints with a usable NBBO (placed AA..BB)"),
        _f("n_aa", pa.int64(), "prints above the ask"),
        _f("n_a", pa.int64(), "prints at the ask"),
        _f("n_mid", pa.int64(), "prints inside the spread"),
        _f("n_b", pa.int64(), "prints at the bid"),
        _f("n_bb", pa.int64(), "prints below the bid"),
        _f("n_unplaced", pa.int64(), "prints without a usable NBBO (NO_NBBO, STALE, CROSSED)"),
        _f("ask_ratio", pa.float64(), "share of size at or above the ask"),
        _f("mid_ratio", pa.float64(), "share of size inside the spread"),
        _f("bid_ratio", pa.float64(), "share of size at or below the bid"),
        _f("buy_size", pa.int64(), "contracts signed buy"),
        _f("sell_size", pa.int64(), "contracts signed sell"),
        _nf("buy_ratio", pa.float64(), "buy / (buy + sell) size; null if nothing signed"),
        _f("side", pa.string(), "dominant side by size: buy, sell, mixed or unknown"),
        _f("aggressor_ratio", pa.float64(), "size on the dominant side / total size"),
        _f("start_placement", pa.string(), "placement of the first print"),
        _f("end_placement", pa.string(), "placement of the last print"),
        _nf(
            "start_edge", pa.float64(), "first print: (price - mid) / half-spread (+1 ask, -1 bid)"
        ),
        _nf("end_edge", pa.float64(), "last print: (price - mid) / half-spread"),
        _nf("spread_pct", pa.float64(), "mean spread / mid over placed prints"),
        _nf("spot", pa.float64(), "underlying price at first_ts (equity quote mid or print)"),
        _nf("moneyness", pa.float64(), "(strike - spot) / spot"),
        _f("dte", pa.int64(), "days to expiry from the New York date of first_ts"),
        _nf("open_interest", pa.int64(), "open interest when known (flow.open_interest_path)"),
        _f(
            "day_volume",
            pa.int64(),
            "contracts traded in packets of this contract today, incl. this",
        ),
        _nf("days_to_event", pa.int64(), "days to the root's next calendar event known at ts"),
        _nf("event_before_expiry", pa.bool_(), "that event falls on or before expiry"),
        _nf("premium_z", pa.float64(), "premium z vs this contract's baseline (before adding)"),
        _nf("size_z", pa.float64(), "total_size z vs this contract's baseline"),
        _nf("spread_z", pa.float64(), "spread_pct z vs this contract's baseline"),
        _f("baseline_n", pa.int64(), "observations in the contract's premium baseline"),
        _nf("root_premium_z", pa.float64(), "premium z vs the underlying's baseline"),
        _nf("root_size_z", pa.float64(), "total_size z vs the underlying's baseline"),
        _nf("root_spread_z", pa.float64(), "spread_pct z vs the underlying's baseline"),
        _f("root_baseline_n", pa.int64(), "observations in the underlying's premium baseline"),
        _f("repeat_hits", pa.int64(), "qualifying hits on this contract and side in the window"),
        _f("kind", pa.string(), "golden_sweep, sweep, block, split, repeat, complex or plain"),
        _f("tags", pa.list_(pa.string()), "every kind whose rules pass (kind is the first)"),
        _f("direction", pa.string(), "bullish, bearish or neutral (right x side)"),
        _f("retracted", pa.list_(pa.int64()), "ids of member prints removed by cancels"),
        EVIDENCE,
        TRACE,
    ]
)

FLOW_STRUCTURES_SCHEMA = pa.schema(
    [
        *HEADER,
        _f(
            "status",
            pa.string(),
            "new, correction (a leg packet was corrected after a cancel) or retracted",
        ),
        _nf("corrects", pa.int64(), "id of the structure version this one replaces"),
        _f("root", pa.string(), "underlying"),
        _f("label", pa.string(), "vertical, calendar, diagonal, straddle, strangle, ..."),
        _f("confidence", pa.float64(), "0..1 score of the winning label"),
        _nf("runner_up", pa.string(), "best label that lost"),
        _nf("runner_up_confidence", pa.float64(), "its score"),
        _nf("variant", pa.string(), "long_vol/short_vol, debit/credit, up/down/out..."),
        _f("direction", pa.string(), "bullish, bearish or neutral"),
        _f("legs", pa.int64(), "number of legs (distinct contracts)"),
        _f("symbols", pa.list_(pa.string()), "leg contracts, by expiry, right, strike"),
        _f("leg_sizes", pa.list_(pa.int64()), "contracts per leg"),
        _f("leg_sides", pa.list_(pa.string()), "buy, sell or unknown per leg"),
        _f("description", pa.string(), "legs in words, e.g. +100 580C 11/25  -100 585C 11/25"),
        _f("first_ts", pa.int64(), "first print of the first leg"),
        _f("last_ts", pa.int64(), "last print of any leg"),
        _f("exchange", pa.string(), "venue of the legs' first prints"),
        _f("complex", pa.bool_(), "every leg printed as a multi-leg order"),
        _f("total_size", pa.int64(), "contracts over all legs"),
        _f("premium", pa.float64(), "gross dollars over all legs"),
        _nf("net_premium", pa.float64(), "bought minus sold dollars; null unless every side known"),
        EVIDENCE,
        TRACE,
    ]
)

CLASSIFIER_HITS_SCHEMA = pa.schema(
    [
        *HEADER,
        _f("classifier", pa.string(), "classifier name"),
        _nf("variant", pa.string(), "sub-type, e.g. debit/credit, long_vol/short_vol, up/out"),
        _f("source", pa.string(), "packet or structure"),
        _f("source_id", pa.int64(), "id of the packet or structure it fired on"),
        _f("root", pa.string(), "underlying"),
        _nf("symbol", pa.string(), "contract; null for structures"),
        _f("direction", pa.string(), "bullish, bearish or neutral"),
        _f("confidence", pa.float64(), "0..1 (formula in compute/classifiers.py)"),
        _f("premium", pa.float64(), "dollars"),
        _f("size", pa.int64(), "contracts"),
        EVIDENCE,
        TRACE,
    ]
)

ALERTS_SCHEMA = pa.schema(
    [
        *HEADER,
        _f("status", pa.string(), "new, correction or retracted (after a cancel)"),
        _nf("corrects", pa.int64(), "id of the alert this one replaces"),
        _f("root", pa.string(), "underlying"),
        _nf("symbol", pa.string(), "contract; null for structures"),
        _f("kind", pa.string(), "best hit's classifier"),
        _f("classifiers", pa.list_(pa.string()), "every classifier that fired, best first"),
        _f("hits", pa.int64(), "classifier hits behind the alert"),
        _f("score", pa.float64(), "0..100 (formula in compute/alerts.py)"),
        _f("severity", pa.string(), "high, medium or low"),
        _f("direction", pa.string(), "bullish, bearish or neutral"),
        _f("confidence", pa.float64(), "best hit's confidence"),
        _f("explanation", pa.string(), "one-line human explanation"),
        _f("premium", pa.float64(), "dollars"),
        _f("source_id", pa.int64(), "packet or structure the hits fired on"),
        _f("suppressed", pa.int64(), "alerts of this contract and kind held back by the cool-down"),
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


@functools.cache
def polars_schema(stream: str) -> pl.Schema:
    """The polars schema matching a stream's Arrow schema (cached: it is on the hot path)."""
    return pl.Schema(pl.from_arrow(SCHEMAS[stream].empty_table()).schema)


@functools.cache
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
    #: rows already carry the engine's full stream schema with seq and id (a replay
    #: of recorded events): the engine does not validate or re-sequence them
    recorded: bool = False
    #: the feed lost data before this batch (a reconnect): shown to the user, never hidden
    gap: FeedGap | None = None


@dataclass(frozen=True, slots=True)
class FeedGap:
    """A stretch of event time a live feed could not deliver (disconnect to resubscribe).

    ``start_ts`` is the last event time received before the loss, ``end_ts`` the first
    after it (ns); ``reason`` is a short human line ("connection reset; reconnected
    after 3 attempts").  Events inside the gap are missing, not late: the engine does
    not wait for them.
    """

    feed: str
    start_ts: int
    end_ts: int
    reason: str
