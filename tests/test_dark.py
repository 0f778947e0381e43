"""Dark inference: block, accumulation and level rules at their thresholds, cool-down."""

from __future__ import annotations

import polars as pl
import pytest

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.events import Cond
from tests.helpers import batch, equity_prints, equity_quotes

T0 = 1_764_081_000_000_000_000
MS = ev.NS_PER_MS
S = ev.NS_PER_S


def dark(
    prints: list[tuple[float, int] | tuple[float, int, dict]],
    *,
    price: float = 100.01,
    spread: float = 0.02,
    cfg: Config | None = None,
) -> pl.DataFrame:
    """Off-exchange SPY prints (seconds after T0, size[, overrides]), each with a fresh
    quote (mid 100.01) just before it."""
    rows, quotes = [], []
    for item in prints:
        t, size = item[0], item[1]
        extra = item[2] if len(item) > 2 else {}
        ts = T0 + round(t * S)
        quotes.append(
            {"ts": ts, "symbol": "SPY", "bid": 100.01 - spread / 2, "ask": 100.01 + spread / 2}
        )
        rows.append(
            {
                "ts": ts,
                "symbol": "SPY",
                "price": price,
                "size": size,
                "venue": "D",
                "off_exchange": True,
                **extra,
            }
        )
    engine = Engine(cfg or Config())
    end = T0 + round((max(p[0] for p in prints) + 1) * S)
    out = [
        engine.ingest(batch(end, eq_prints=equity_prints(rows), eq_quotes=equity_quotes(quotes)))
    ]
    out.append(engine.flush())
    assert engine.stats().rejected_total == 0
    frames = [o[ev.DARK_INFERRED] for o in out if ev.DARK_INFERRED in o]
    df = pl.concat(frames) if frames else ev.empty_frame(ev.DARK_INFERRED)
    return df.filter(pl.col("pattern") != "level")


@pytest.mark.parametrize(("size", "fires"), [(1999, False), (2000, True), (2001, True)])
def test_block_threshold(size: int, fires: bool) -> None:
    got = dark([(0, size)])
    assert (got.filter(pl.col("pattern") == "block").height == 1) is fires


def test_block_needs_an_off_exchange_regular_print() -> None:
    lit = dark([(0, 5000, {"venue": "Q", "off_exchange": False})])
    assert lit.height == 0
    corrected = dark([(0, 5000, {"flags": int(Cond.CORRECTION)})])
    assert corrected.height == 0
    late = dark([(0, 5000, {"flags": int(Cond.LATE)})])  # a late block is still volume...
    assert late["pattern"].to_list() == ["block"]
    assert late["direction"][0] == "neutral"  # ...but its price says nothing about side


def test_block_fields_direction_trace_and_explanation() -> None:
    got = dark([(0, 4000)], price=100.02)  # at the ask: bought
    row = got.row(0, named=True)
    assert row["direction"] == "bullish"
    assert row["total_size"] == 4000 and row["notional"] == pytest.approx(400_080.0)
    assert row["price"] == pytest.approx(100.02)
    assert len(row["evidence"]) == 1 and ev.split_id(row["evidence"][0])[0] == ev.EQUITIES_JOINS
    conds = {t["condition"]: t for t in row["trace"]}
    assert conds["off-exchange print size (sh)"]["value"] == 4000
    assert conds["off-exchange print size (sh)"]["threshold"] == 2000
    assert "SPY block: 4,000 sh off-exchange" in row["explanation"]
    # excess (4000/2000 - 1)/4 = 0.25, fully quoted: 0.5 + 0.075 + 0.2
    assert row["confidence"] == pytest.approx(0.775)
    sold = dark([(0, 4000)], price=100.0)
    assert sold["direction"][0] == "bearish"


def test_block_cooldown() -> None:
    got = dark([(0, 3000), (29.999, 3000), (30, 3000), (45, 3000), (60, 3000)])
    blocks = got.filter(pl.col("pattern") == "block")
    assert [(t - T0) / S for t in blocks["ts"].to_list()] == [0, 30, 60]
    trace = {t["condition"]: t for t in blocks["trace"][1]}
    assert trace["s since last of this pattern"]["value"] == pytest.approx(30.0)


def test_spread_wider_than_half_a_percent_halves_confidence() -> None:
    tight = dark([(0, 4000)], spread=0.5)  # 0.5 / 100.01 < 0.5 %
    wide = dark([(0, 4000)], spread=0.51)
    assert wide["confidence"][0] == pytest.approx(tight["confidence"][0] / 2)
    assert "wide spread" in wide["explanation"][0]
    spread_item = next(t for t in wide["trace"][0] if t["condition"] == "spread / price")
    assert spread_item["passed"] is False


def accumulations(prints: list) -> pl.DataFrame:
    return dark(prints).filter(pl.col("pattern") == "accumulation")


def test_accumulation_thresholds() -> None:
    # 4 prints of 750 = 3000 shares: fires at the 4th print
    got = accumulations([(0, 750), (10, 750), (20, 750), (30, 750)])
    assert got.height == 1 and got["ts"][0] == T0 + 30 * S
    assert got["total_size"][0] == 3000 and len(got["evidence"][0]) == 4
    # 3 prints totalling 3000: too few prints
    assert accumulations([(0, 1000), (10, 1000), (20, 1000)]).height == 0
    # 4 prints totalling 2999: too few shares
    assert accumulations([(0, 750), (10, 750), (20, 750), (30, 749)]).height == 0
    # prints below 200 shares are not evidence
    assert accumulations([(0, 1000), (10, 1000), (20, 1000), (30, 199)]).height == 0


def test_accumulation_window_boundary() -> None:
    inside = accumulations([(0, 750), (10, 750), (20, 750), (59.999, 750)])
    assert inside.height == 1
    # window (t - 60 s, t]: the first print falls out exactly at 60 s
    assert accumulations([(0, 750), (10, 750), (20, 750), (60, 750)]).height == 0


def test_accumulation_cooldown_and_max_evidence() -> None:
    prints = [(i * 1.0, 300) for i in range(40)]  # fires at the 10th print (3000 sh)
    got = accumulations(prints)
    assert [(t - T0) / S for t in got["ts"].to_list()] == [9.0, 39.0]
    assert got["total_size"][1] == 300 * 40
    assert len(got["evidence"][1]) == 20  # at most max_evidence
    ids = got["evidence"][1].to_list()
    assert ids == sorted(ids)


def test_levels_report_where_off_exchange_volume_concentrates() -> None:
    cfg = Config()
    rows, quotes = [], []
    for i in range(30):
        ts = T0 + i * 5 * S
        quotes.append({"ts": ts, "symbol": "SPY", "bid": 100.0, "ask": 100.02})
        # 1000 sh at 100.01 every 5 s, and scattered small prints elsewhere
        rows.append(
            {
                "ts": ts,
                "symbol": "SPY",
                "price": 100.01,
                "size": 1000,
                "venue": "D",
                "off_exchange": True,
            }
        )
        rows.append(
            {
                "ts": ts + MS,
                "symbol": "SPY",
                "price": 100.5 + i,
                "size": 100,
                "venue": "D",
                "off_exchange": True,
            }
        )
    engine = Engine(cfg)
    out = engine.ingest(
        batch(T0 + 200 * S, eq_prints=equity_prints(rows), eq_quotes=equity_quotes(quotes))
    )
    levels = out[ev.DARK_INFERRED].filter(pl.col("pattern") == "level")
    # evaluated at each minute boundary: 12 000 sh after 1 min (below 20 000), 24 000 after 2
    assert levels["ts"].to_list() == [T0 - T0 % (60 * S) + 120 * S]
    row = levels.row(0, named=True)
    assert row["total_size"] == 24_000
    assert row["price"] == pytest.approx(100.01)
    assert "dark level $100.00-100.05" in row["explanation"]
    assert len(row["evidence"]) == 20
    # grows by 50 % before it is shown again: the rest of the session adds 25 %
    assert levels.height == 1
