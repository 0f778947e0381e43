"""Deterministic hand-built frames of ``equities.joins``, ``dark.inferred``, ``candles``
and ``alerts`` for the Dark and Candles screens.

The engine on this branch does not emit the equities streams yet, so the screen
tests publish these frames on the engine's bus (``publish``), exactly as the
operators will, and the app receives them through its display feed.  Nothing
here is an engine operator: the fixture draws seeded prints, assigns placements
and quotes to them directly, aggregates candles with a plain polars group_by and
marks the large off-exchange prints as blocks.  Frames carry every column of
their stream's schema with the schema's types (``full_frame`` checks that).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import polars as pl

from islandflow_tui.engine import events as ev

NS = ev.NS_PER_S
START_NS: Final = 1_764_081_000 * NS  # 2025-11-25 09:30:00 New York
BASE_PRICE: Final = {"SPY": 580.0, "NVDA": 140.0, "AAPL": 230.0, "TSLA": 345.0, "QQQ": 505.0}
PLACEMENTS: Final = ("above_ask", "at_ask", "mid", "at_bid", "below_bid")
LIT_VENUES: Final = ("Q", "N", "P", "Z", "V")


def full_frame(stream: str, rows: dict[str, Sequence[Any]]) -> pl.DataFrame:
    """A frame of ``stream``'s full schema; columns not given are null (nullable ones)
    or empty lists (evidence/trace).  Unknown columns are an error."""
    schema = ev.polars_schema(stream)
    unknown = set(rows) - set(schema)
    if unknown:
        raise KeyError(f"{stream}: no such columns {sorted(unknown)}")
    n = len(next(iter(rows.values())))
    data: dict[str, Any] = {}
    for name, dtype in schema.items():
        if name in rows:
            data[name] = pl.Series(name, list(rows[name]), dtype=dtype)
        elif isinstance(dtype, pl.List):
            data[name] = pl.Series(name, [[] for _ in range(n)], dtype=dtype)
        else:
            data[name] = pl.Series(name, [None] * n, dtype=dtype)
    return pl.DataFrame(data)


@dataclass
class EqFixture:
    prints: pl.DataFrame  # every drawn print (lit and off-exchange), equities.prints-like
    joins: pl.DataFrame
    dark: pl.DataFrame
    candles: pl.DataFrame
    alerts: pl.DataFrame
    last_ts: int

    def frames(self) -> Iterable[tuple[str, pl.DataFrame]]:
        yield ev.EQUITIES_JOINS, self.joins
        yield ev.DARK_INFERRED, self.dark
        yield ev.CANDLES, self.candles
        yield ev.ALERTS, self.alerts


def _prints(
    rng: np.random.Generator, symbols: Sequence[str], minutes: int, per_min: int, start_ns: int
) -> pl.DataFrame:
    parts = []
    for sym in symbols:
        n = minutes * per_min
        ts = start_ns + np.sort(rng.integers(0, minutes * 60 * NS, n))
        base = BASE_PRICE.get(sym, 100.0)
        walk = np.cumsum(rng.normal(0, base * 0.0004, n))
        cents = np.round(base + walk, 2)
        off = rng.random(n) < 0.42
        retail = off & (rng.random(n) < 0.3)
        frac = np.where(rng.random(n) < 0.5, 0.0023, 0.0077)
        price = np.where(retail, cents + frac, cents)
        size = rng.choice(
            [100, 200, 300, 500, 800, 1000, 2500, 4000],
            n,
            p=[0.25, 0.2, 0.15, 0.15, 0.1, 0.1, 0.03, 0.02],
        )
        venue = np.where(off, "D", rng.choice(LIT_VENUES, n))
        placement = rng.choice(PLACEMENTS, n, p=[0.08, 0.32, 0.2, 0.32, 0.08])
        parts.append(
            pl.DataFrame(
                {
                    "ts": ts.astype(np.int64),
                    "symbol": [sym] * n,
                    "price": price,
                    "size": size.astype(np.int64),
                    "venue": venue,
                    "off_exchange": off,
                    "retail": retail,
                    "retail_side": pl.Series(
                        [
                            ("buy" if f > 0.5 else "sell") if r else None
                            for r, f in zip(retail, frac, strict=True)
                        ],
                        dtype=pl.String,
                    ),
                    "placement": placement,
                }
            )
        )
    frame = pl.concat(parts).sort(["ts", "symbol"])
    return frame.with_columns(
        pl.int_range(0, frame.height, dtype=pl.Int64).alias("seq")
    ).with_columns(ev.id_expr(ev.EQUITIES_PRINTS))


def _joins(prints: pl.DataFrame) -> pl.DataFrame:
    """Quotes that put each print where its placement says (cent-wide spreads)."""
    p = pl.col("price")
    c = p.round(2)
    bid = (
        pl.when(pl.col("placement") == "above_ask")
        .then(c - 0.02)
        .when(pl.col("placement") == "at_ask")
        .then(c - 0.01)
        .when(pl.col("placement") == "mid")
        .then(c - 0.01)
        .when(pl.col("placement") == "at_bid")
        .then(c)
        .otherwise(c + 0.01)
    )
    spread = pl.when(pl.col("placement") == "mid").then(0.02).otherwise(0.01)
    j = (
        prints.with_columns(bid.alias("bid"), spread.alias("spread"))
        .with_columns((pl.col("bid") + pl.col("spread")).alias("ask"))
        .with_columns(((pl.col("bid") + pl.col("ask")) / 2).alias("mid"))
    )
    rows = {
        "ts": j["ts"],
        "seq": j["seq"],
        "id": [ev.make_id(ev.EQUITIES_JOINS, s) for s in j["seq"]],
        "print_id": j["id"],
        "symbol": j["symbol"],
        "price": j["price"],
        "size": j["size"],
        "venue": j["venue"],
        "off_exchange": j["off_exchange"],
        "quote_id": [ev.make_id(ev.EQUITIES_QUOTES, s) for s in j["seq"]],
        "bid": j["bid"],
        "ask": j["ask"],
        "mid": j["mid"],
        "spread": j["spread"],
        "spread_pct": (j["spread"] / j["mid"]),
        "placement": j["placement"],
        "price_improvement": np.where(j["retail"], 0.0023, 0.0),
        "retail": j["retail"],
        "retail_side": j["retail_side"],
        "evidence": [[i] for i in j["id"]],
    }
    return full_frame(ev.EQUITIES_JOINS, rows)


def candles_from_prints(
    prints: pl.DataFrame, intervals: Sequence[int], last_ts: int
) -> pl.DataFrame:
    """OHLCV per (symbol, interval, start) with a group_by; the forming candle is not final."""
    out = []
    for iv in intervals:
        iv_ns = iv * ev.NS_PER_MS
        g = (
            prints.with_columns((pl.col("ts") // iv_ns * iv_ns).alias("start_ts"))
            .group_by(["symbol", "start_ts"])
            .agg(
                pl.col("price").first().alias("open"),
                pl.col("price").max().alias("high"),
                pl.col("price").min().alias("low"),
                pl.col("price").last().alias("close"),
                pl.col("size").sum().alias("volume"),
                ((pl.col("price") * pl.col("size")).sum() / pl.col("size").sum()).alias("vwap"),
                pl.len().cast(pl.Int64).alias("trades"),
                pl.col("size").filter(pl.col("off_exchange")).sum().alias("off_exchange_volume"),
                pl.col("size").filter(pl.col("retail")).sum().alias("retail_volume"),
            )
            .with_columns(
                pl.lit(iv, pl.Int64).alias("interval_ms"),
                ((pl.col("start_ts") + iv_ns) <= last_ts).alias("final"),
                (pl.col("start_ts") + iv_ns).alias("ts"),
            )
        )
        out.append(g)
    frame = pl.concat(out).sort(["ts", "interval_ms", "symbol"])
    frame = frame.with_columns(
        pl.min_horizontal("ts", pl.lit(last_ts)).alias("ts"),
        pl.int_range(0, frame.height, dtype=pl.Int64).alias("seq"),
    ).with_columns(ev.id_expr(ev.CANDLES))
    return full_frame(ev.CANDLES, frame.to_dict(as_series=False))


def _dark(prints: pl.DataFrame, joins: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Blocks on large off-exchange prints (30 s quiet per symbol), one accumulation and
    one level per symbol: plausible events with explanation, trace and evidence."""
    off = joins.filter(pl.col("off_exchange"))
    direction = {
        "above_ask": "bullish",
        "at_ask": "bullish",
        "at_bid": "bearish",
        "below_bid": "bearish",
    }
    rows: list[dict[str, Any]] = []
    last_block: dict[str, int] = {}
    for r in off.filter(pl.col("size") >= 2000).iter_rows(named=True):
        if r["ts"] - last_block.get(r["symbol"], -(10**18)) < 30 * NS:
            continue
        last_block[r["symbol"]] = r["ts"]
        d = direction.get(r["placement"], "neutral")
        notional = r["price"] * r["size"]
        rows.append(
            {
                "ts": r["ts"],
                "symbol": r["symbol"],
                "pattern": "block",
                "direction": d,
                "confidence": 0.9 if r["spread_pct"] <= 0.00005 else 0.72,
                "total_size": r["size"],
                "notional": notional,
                "price": r["price"],
                "explanation": (
                    f"{r['size']:,} sh block off-exchange at {r['price']:.4f} "
                    f"({r['placement'].replace('_', ' ')}), ${notional / 1e6:.2f}M"
                ),
                "evidence": [r["print_id"]],
                "trace": [
                    {
                        "condition": "size",
                        "value": float(r["size"]),
                        "threshold": 2000.0,
                        "passed": True,
                    },
                    {
                        "condition": "spread_pct",
                        "value": round(float(r["spread_pct"]), 6),
                        "threshold": 0.005,
                        "passed": True,
                    },
                ],
            }
        )
    for sym, part in off.group_by("symbol", maintain_order=True):
        sym = str(sym[0])
        k = part.filter(pl.col("size") >= 200)
        if k.height >= 6:
            i = int(rng.integers(0, k.height - 6))
            ev_rows = k.slice(i, 6)
            size = int(ev_rows["size"].sum())
            notional = float((ev_rows["price"] * ev_rows["size"]).sum())
            rows.append(
                {
                    "ts": int(ev_rows["ts"][-1]),
                    "symbol": sym,
                    "pattern": "accumulation",
                    "direction": "bullish",
                    "confidence": 0.64,
                    "total_size": size,
                    "notional": notional,
                    "price": notional / size,
                    "explanation": (
                        f"6 off-exchange prints, {size:,} sh within 60 s, mostly at the ask"
                    ),
                    "evidence": ev_rows["print_id"].to_list(),
                    "trace": [
                        {"condition": "prints", "value": 6.0, "threshold": 4.0, "passed": True},
                        {
                            "condition": "total_size",
                            "value": float(size),
                            "threshold": 3000.0,
                            "passed": size >= 3000,
                        },
                    ],
                }
            )
        lvl = (
            part.with_columns(pl.col("price").round(1).alias("lvl"))
            .group_by("lvl")
            .agg(pl.col("size").sum(), pl.col("print_id").head(20), pl.col("ts").max())
            .sort(["size", "lvl"], descending=[True, False])
        )
        top = lvl.row(0, named=True)
        rows.append(
            {
                "ts": int(part["ts"].max()),
                "symbol": sym,
                "pattern": "level",
                "direction": "neutral",
                "confidence": 0.55,
                "total_size": int(top["size"]),
                "notional": float(top["size"] * top["lvl"]),
                "price": float(top["lvl"]),
                "explanation": (
                    f"{int(top['size']):,} sh off-exchange concentrated near "
                    f"{top['lvl']:.2f} this session"
                ),
                "evidence": top["print_id"],
                "trace": [],
            }
        )
    rows.sort(key=lambda r: (r["ts"], r["symbol"], r["pattern"]))
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    cols["seq"] = list(range(len(rows)))
    cols["id"] = [ev.make_id(ev.DARK_INFERRED, s) for s in cols["seq"]]
    return full_frame(ev.DARK_INFERRED, cols)


def _alerts(
    symbols: Sequence[str], rng: np.random.Generator, start_ns: int, minutes: int
) -> pl.DataFrame:
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "ts",
            "root",
            "status",
            "kind",
            "severity",
            "direction",
            "score",
            "explanation",
            "premium",
        )
    }
    for sym in symbols:
        for t in np.sort(rng.integers(0, minutes * 60 * NS, 3)):
            rows["ts"].append(int(start_ns + t))
            rows["root"].append(sym)
            rows["status"].append("new")
            rows["kind"].append("sweep")
            rows["severity"].append("high")
            rows["direction"].append("bullish")
            rows["score"].append(82.0)
            rows["explanation"].append("fixture alert")
            rows["premium"].append(250_000.0)
    order = np.argsort(np.asarray(rows["ts"]), kind="stable")
    cols = {k: [v[i] for i in order] for k, v in rows.items()}
    cols["seq"] = list(range(len(order)))
    cols["id"] = [ev.make_id(ev.ALERTS, s) for s in cols["seq"]]
    return full_frame(ev.ALERTS, cols)


def make_eq_fixture(
    *,
    seed: int = 11,
    symbols: Sequence[str] = ("SPY", "NVDA", "AAPL"),
    minutes: int = 60,
    per_minute: int = 30,
    start_ns: int = START_NS,
    intervals: Sequence[int] = (60_000, 300_000),
) -> EqFixture:
    """Everything the Dark and Candles screens show, from one seeded draw."""
    rng = np.random.default_rng(seed)
    prints = _prints(rng, symbols, minutes, per_minute, start_ns)
    last_ts = int(prints["ts"].max())
    joins = _joins(prints)
    candles = candles_from_prints(prints, intervals, last_ts)
    dark = _dark(prints, joins, rng)
    alerts = _alerts(symbols, rng, start_ns, minutes)
    return EqFixture(prints, joins, dark, candles, alerts, last_ts)


def publish(engine: Any, fixture: EqFixture, *, advance_clock: bool = True) -> None:
    """Publish the fixture on the engine's bus (as the operators would) and move the
    engine's event-time clock to its last print, so the status bar shows that time."""
    for stream, frame in fixture.frames():
        engine.bus.publish(stream, frame)
    if advance_clock:
        engine.ingest(ev.FeedBatch({}, fixture.last_ts))


def candle_rows(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Hand-made candles: defaults for everything not given (tests of edge cases)."""
    defaults = {
        "ts": 0,
        "id": 0,
        "symbol": "SPY",
        "interval_ms": 60_000,
        "volume": 1000,
        "vwap": None,
        "trades": 10,
        "off_exchange_volume": 400,
        "retail_volume": 100,
        "final": True,
    }
    full = []
    for i, r in enumerate(rows):
        row = {**defaults, "seq": i, **r}
        if row["vwap"] is None:
            row["vwap"] = (row["open"] + row["close"]) / 2
        full.append(row)
    cols = {k: [r[k] for r in full] for k in full[0]}
    return full_frame(ev.CANDLES, cols)
