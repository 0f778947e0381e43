"""What the Dark screen shows: inferred dark events and the off-exchange print feed.

Both are ``TapeModel`` hot windows (newest first, filter as a polars expression,
pause/follow), so they behave exactly like the tapes:

* dark events: rows of ``dark.inferred`` (pattern, direction, confidence, size,
  notional, price, explanation, evidence ids, rule trace);
* off-exchange prints: rows of ``equities.joins`` with ``off_exchange`` (placement
  against the quote in force, retail flag and side).

``normalise_joins`` turns the joins into one frame shape (``OFFEX_SCHEMA``); the
formatters below turn visible rows into cells.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal

import polars as pl

from islandflow_tui.engine import events as ev
from islandflow_tui.widgets.tape_view import (
    Column,
    FormattedRow,
    compact_money,
    compact_number,
    equity_price_text,
)

ET_ZONE: Final = "America/New_York"

Pattern = Literal["all", "block", "accumulation", "level"]
PATTERN_CYCLE: Final[tuple[Pattern, ...]] = ("all", "block", "accumulation", "level")
PATTERN_TEXT: Final[dict[str, str]] = {"block": "BLOCK", "accumulation": "ACCUM", "level": "LEVEL"}
DIRECTION_TEXT: Final[dict[str, tuple[str, str]]] = {
    "bullish": ("▲ bull", "tape--aa"),
    "bearish": ("▼ bear", "tape--bb"),
    "neutral": ("• neut", "tape--mid"),
}
JOIN_PLACEMENT_TEXT: Final[dict[str, tuple[str, str]]] = {
    "above_ask": ("AA", "tape--aa"),
    "at_ask": ("A", "tape--a"),
    "mid": ("MID", "tape--mid"),
    "at_bid": ("B", "tape--b"),
    "below_bid": ("BB", "tape--bb"),
    "no_quote": ("NOQT", "tape--noquote"),
}

DARK_FIELDS: Final = (
    "ts",
    "id",
    "symbol",
    "pattern",
    "direction",
    "confidence",
    "total_size",
    "notional",
    "price",
    "explanation",
    "evidence",
    "trace",
)

OFFEX_SCHEMA: Final[dict[str, pl.DataType]] = {
    "ts": pl.Int64(),
    "print_id": pl.Int64(),
    "symbol": pl.String(),
    "price": pl.Float64(),
    "size": pl.Int64(),
    "venue": pl.String(),
    "placement": pl.String(),
    "price_improvement": pl.Float64(),
    "retail": pl.Boolean(),
    "retail_side": pl.String(),
}


def dark_schema() -> dict[str, pl.DataType]:
    schema = ev.polars_schema(ev.DARK_INFERRED)
    return {name: schema[name] for name in DARK_FIELDS}


def normalise_joins(frame: pl.DataFrame) -> pl.DataFrame:
    """Off-exchange rows of ``equities.joins`` in ``OFFEX_SCHEMA``."""
    return frame.filter(pl.col("off_exchange")).select(
        [pl.col(name).cast(dtype) for name, dtype in OFFEX_SCHEMA.items()]
    )


@dataclass(frozen=True, slots=True)
class DarkFilter:
    """The Dark screen's filter: symbols (both panes) and the inference pattern."""

    symbols: frozenset[str] = frozenset()
    pattern: Pattern = "all"

    def dark_expr(self) -> pl.Expr | None:
        expr: pl.Expr | None = None
        if self.symbols:
            expr = pl.col("symbol").is_in(sorted(self.symbols))
        if self.pattern != "all":
            p = pl.col("pattern") == self.pattern
            expr = p if expr is None else expr & p
        return expr

    def offex_expr(self) -> pl.Expr | None:
        if not self.symbols:
            return None
        return pl.col("symbol").is_in(sorted(self.symbols))

    def next_pattern(self) -> DarkFilter:
        i = PATTERN_CYCLE.index(self.pattern)
        return replace(self, pattern=PATTERN_CYCLE[(i + 1) % len(PATTERN_CYCLE)])


def _time_expr(column: str = "ts") -> pl.Expr:
    return (
        pl.from_epoch(pl.col(column), time_unit="ns")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(ET_ZONE)
        .dt.strftime("%H:%M:%S")
    )


DARK_COLUMNS: Final = (
    Column("time", "DARK", 8),
    Column("symbol", "SYM", 5),
    Column("pattern", "KIND", 5),
    Column("direction", "DIR", 6),
    Column("confidence", "CONF", 4, ">"),
    Column("size", "SIZE", 7, ">"),
    Column("notional", "NOTIONAL", 8, ">", drop=2),
    Column("price", "PRICE", 9, ">", drop=3),
    Column("why", "WHY", 8, flex=True, drop=1),
)

OFFEX_COLUMNS: Final = (
    Column("time", "OFF-EXCHANGE", 12),
    Column("symbol", "SYM", 5),
    Column("price", "PRICE", 9, ">"),
    Column("size", "SIZE", 8, ">"),
    Column("notional", "NOTIONAL", 8, ">", drop=3),
    Column("venue", "VENUE", 5),
    Column("placement", "SIDE", 4),
    Column("retail", "RTL", 4, flex=True, drop=1),
)


def format_dark_rows(frame: pl.DataFrame) -> list[FormattedRow]:
    """Cells of visible ``dark.inferred`` rows."""
    prepared = frame.select(
        "id",
        _time_expr("ts").alias("time"),
        "symbol",
        "pattern",
        "direction",
        "confidence",
        "total_size",
        "notional",
        "price",
        "explanation",
    )
    out: list[FormattedRow] = []
    for (
        row_id,
        time,
        symbol,
        pattern,
        direction,
        confidence,
        size,
        notional,
        price,
        why,
    ) in prepared.rows():
        dir_text, dir_class = DIRECTION_TEXT.get(direction, (direction or "?", "tape--muted"))
        conf = confidence if confidence is not None else 0.0
        out.append(
            (
                row_id,
                {
                    "time": (time, "tape--time"),
                    "symbol": (symbol, "tape--symbol"),
                    "pattern": (PATTERN_TEXT.get(pattern, pattern.upper()[:5]), "tape--offex"),
                    "direction": (dir_text, dir_class),
                    "confidence": (f"{conf:.2f}", "tape--premium-big" if conf >= 0.8 else ""),
                    "size": (f"{size:,}" if size < 1_000_000 else compact_number(size), ""),
                    "notional": (
                        compact_money(notional),
                        "tape--premium-big" if notional >= 1_000_000 else "tape--premium",
                    ),
                    "price": (equity_price_text(price), ""),
                    "why": (why or "", "tape--muted"),
                },
            )
        )
    return out


def retail_text(retail: bool | None, side: str | None) -> tuple[str, str]:
    """``R▲`` retail buy, ``R▼`` retail sell, ``R`` retail without a side, ``—`` unknown."""
    if retail is None:
        return "—", "tape--muted"
    if not retail:
        return "", "tape--muted"
    if side == "buy":
        return "R▲", "tape--a"
    if side == "sell":
        return "R▼", "tape--b"
    return "R", "tape--mid"


def format_offex_rows(frame: pl.DataFrame) -> list[FormattedRow]:
    """Cells of visible off-exchange prints (``OFFEX_SCHEMA`` rows)."""
    prepared = frame.select(
        "print_id",
        (
            pl.from_epoch(pl.col("ts"), time_unit="ns")
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone(ET_ZONE)
            .dt.strftime("%H:%M:%S%.3f")
        ).alias("time"),
        "symbol",
        "price",
        "size",
        "venue",
        "placement",
        "retail",
        "retail_side",
    )
    out: list[FormattedRow] = []
    for row_id, time, symbol, price, size, venue, placement, retail, side in prepared.rows():
        place_text, place_class = (
            JOIN_PLACEMENT_TEXT.get(placement, (placement, "tape--muted"))
            if placement is not None
            else ("—", "tape--muted")
        )
        notional = price * size
        out.append(
            (
                row_id,
                {
                    "time": (time, "tape--time"),
                    "symbol": (symbol, "tape--offex"),
                    "price": (equity_price_text(price), "tape--offex"),
                    "size": (f"{size:,}" if size < 10_000_000 else compact_number(size), ""),
                    "notional": (
                        compact_money(notional),
                        "tape--premium-big" if notional >= 1_000_000 else "tape--muted",
                    ),
                    "venue": (venue, "tape--offex-mark"),
                    "placement": (place_text, place_class),
                    "retail": retail_text(retail, side),
                },
            )
        )
    return out
