"""Small builders for hand-made raw frames in tests (ingest schema, typed)."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from islandflow_tui.engine import events as ev
from islandflow_tui.widgets.tape_view import OPTION_FIELDS

MS = ev.NS_PER_MS
SPY_C = "SPY   251125C00580000"
SPY_P = "SPY   251125P00575000"
AAPL_C = "AAPL  251219C00230000"


def option_prints(rows: list[dict[str, Any]]) -> pl.DataFrame:
    defaults = {"exchange": "C", "conditions": "", "flags": 0}
    full = [{**defaults, **r} for r in rows]
    return pl.DataFrame(full, schema=ev.ingest_polars_schema(ev.OPTIONS_PRINTS))


def option_quotes(rows: list[dict[str, Any]]) -> pl.DataFrame:
    defaults = {"bid_size": 10, "ask_size": 10}
    full = [{**defaults, **r} for r in rows]
    return pl.DataFrame(full, schema=ev.ingest_polars_schema(ev.OPTIONS_NBBO))


def equity_prints(rows: list[dict[str, Any]]) -> pl.DataFrame:
    defaults = {"venue": "Q", "off_exchange": False, "conditions": "", "flags": 0}
    full = [{**defaults, **r} for r in rows]
    return pl.DataFrame(full, schema=ev.ingest_polars_schema(ev.EQUITIES_PRINTS))


def equity_quotes(rows: list[dict[str, Any]]) -> pl.DataFrame:
    defaults = {"bid_size": 100, "ask_size": 100}
    full = [{**defaults, **r} for r in rows]
    return pl.DataFrame(full, schema=ev.ingest_polars_schema(ev.EQUITIES_QUOTES))


def batch(watermark: int, **frames: pl.DataFrame) -> ev.FeedBatch:
    names = {
        "prints": ev.OPTIONS_PRINTS,
        "quotes": ev.OPTIONS_NBBO,
        "eq_prints": ev.EQUITIES_PRINTS,
        "eq_quotes": ev.EQUITIES_QUOTES,
    }
    return ev.FeedBatch({names[k]: v for k, v in frames.items()}, watermark)


FIREHOSE_START_NS = 1_764_081_000 * ev.NS_PER_S


def firehose_tick(rows: int, start: int) -> pl.DataFrame:
    """One repaint tick's worth of options.enriched rows with every field the tape keeps."""
    schema = ev.polars_schema(ev.OPTIONS_ENRICHED)
    i = pl.int_range(start, start + rows, dtype=pl.Int64, eager=True)
    return pl.DataFrame(
        {
            "ts": FIREHOSE_START_NS + i * 20_000,
            "id": i,
            "root": pl.Series(["SPY", "QQQ", "TSLA", "NVDA"] * (rows // 4 + 1))[:rows],
            "expiry": pl.Series([date(2025, 12, 19)] * rows),
            "right": pl.Series(["C", "P"] * (rows // 2 + 1))[:rows],
            "strike": (i % 50).cast(pl.Float64) + 560.0,
            "price": (i % 300).cast(pl.Float64) / 10 + 0.05,
            "size": i % 40 + 1,
            "exchange": pl.Series(["C", "X", "I"] * (rows // 3 + 1))[:rows],
            "flags": (i % 2).cast(pl.Int32),
            "bid": (i % 300).cast(pl.Float64) / 10,
            "ask": (i % 300).cast(pl.Float64) / 10 + 0.1,
            "placement": pl.Series(["A", "B", "MID", "AA", "BB"] * (rows // 5 + 1))[:rows],
            "premium": ((i % 300) * (i % 40 + 1) * 10).cast(pl.Float64),
            "signal_mask": pl.Series([7, 6, 4, 4] * (rows // 4 + 1))[:rows].cast(pl.Int8),
        }
    ).select([pl.col(k).cast(schema[k]) for k in OPTION_FIELDS])
