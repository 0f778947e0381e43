"""Small builders for hand-made raw frames in tests (ingest schema, typed)."""

from __future__ import annotations

from typing import Any

import polars as pl

from islandflow_tui.engine import events as ev

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
