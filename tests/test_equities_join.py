"""Equity print/quote join, venue and condition tables, and the retail rule."""

from __future__ import annotations

import polars as pl
import pytest

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine import venues
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.events import Cond
from tests.helpers import batch, equity_prints, equity_quotes

T0 = 1_764_081_000_000_000_000
MS = ev.NS_PER_MS


def joins(prints: list[dict], quotes: list[dict], cfg: Config | None = None) -> pl.DataFrame:
    engine = Engine(cfg or Config())
    prints = [{"size": 100, **p} for p in prints]
    out = [
        engine.ingest(
            batch(
                T0 + 10_000 * MS, eq_prints=equity_prints(prints), eq_quotes=equity_quotes(quotes)
            )
        )
    ]
    out.append(engine.flush())
    assert engine.stats().rejected_total == 0
    return pl.concat([o[ev.EQUITIES_JOINS] for o in out if ev.EQUITIES_JOINS in o])


def one(
    price: float, quote: tuple[float, float] | None, *, dt_ms: float = 0, off: bool = True, **kw
) -> dict:
    quotes = (
        [] if quote is None else [{"ts": T0, "symbol": "SPY", "bid": quote[0], "ask": quote[1]}]
    )
    p = {
        "ts": T0 + int(dt_ms * MS),
        "symbol": "SPY",
        "price": price,
        "size": 100,
        "venue": "D" if off else "Q",
        "off_exchange": off,
        **kw,
    }
    return joins([p], quotes).row(0, named=True)


# -- join boundaries -----------------------------------------------------------------
def test_quote_exactly_max_age_is_in_force_one_ns_older_is_not() -> None:
    prints = [
        {"ts": T0 + 1000 * MS, "symbol": "SPY", "price": 100.0},
        {"ts": T0 + 1000 * MS + 1, "symbol": "SPY", "price": 100.0},
    ]
    j = joins(prints, [{"ts": T0, "symbol": "SPY", "bid": 100.0, "ask": 100.02}])
    assert j["placement"].to_list() == ["at_bid", "no_quote"]
    assert j["quote_id"][0] is not None and j["quote_id"][1] is None
    assert j["bid"][1] is None and j["price_improvement"][1] is None


def test_quote_at_the_print_ts_is_used_and_ties_go_to_the_last_quote() -> None:
    quotes = [
        {"ts": T0, "symbol": "SPY", "bid": 99.0, "ask": 99.02},
        {"ts": T0 + 5 * MS, "symbol": "SPY", "bid": 100.0, "ask": 100.02},
        {"ts": T0 + 5 * MS, "symbol": "SPY", "bid": 101.0, "ask": 101.02},
        {"ts": T0 + 6 * MS, "symbol": "SPY", "bid": 102.0, "ask": 102.02},
        {"ts": T0 + 5 * MS, "symbol": "QQQ", "bid": 1.0, "ask": 2.0},
    ]
    j = joins([{"ts": T0 + 5 * MS, "symbol": "SPY", "price": 101.01}], quotes)
    assert (j["bid"][0], j["ask"][0]) == (101.0, 101.02)
    assert j["placement"][0] == "mid"


@pytest.mark.parametrize(
    ("price", "placement", "improvement"),
    [
        (100.03, "above_ask", -0.01),
        (100.02, "at_ask", 0.0),
        (100.0199, "mid", 0.0001),
        (100.01, "mid", 0.01),
        (100.0, "at_bid", 0.0),
        (99.99, "below_bid", -0.01),
    ],
)
def test_placement_and_price_improvement(price: float, placement: str, improvement: float) -> None:
    row = one(price, (100.0, 100.02))
    assert row["placement"] == placement
    assert row["price_improvement"] == pytest.approx(improvement, abs=1e-9)
    assert row["mid"] == pytest.approx(100.01)
    assert row["spread"] == pytest.approx(0.02)
    assert row["spread_pct"] == pytest.approx(0.02 / 100.01)
    assert len(row["evidence"]) == 2  # the print and the quote


def test_locked_crossed_and_missing_quotes() -> None:
    assert one(100.0, (100.0, 100.0))["placement"] == "mid"
    assert one(100.01, (100.0, 100.0))["placement"] == "above_ask"
    crossed = one(100.0, (100.02, 100.0))
    assert crossed["placement"] == "no_quote" and crossed["bid"] == 100.02
    assert crossed["price_improvement"] is None
    missing = one(100.0, None)
    assert missing["placement"] == "no_quote" and missing["quote_id"] is None


# -- retail rule ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("price", "retail", "bjzz_side"),
    [
        (10.0, False, None),  # Z = 0: a whole cent
        (10.000000001, False, None),  # float noise is not a sub-penny
        (10.0001, True, "sell"),  # Z = 0.01 (near 0)
        (10.0039, True, "sell"),  # Z = 0.39
        (10.004, False, None),  # Z = 0.4: excluded
        (10.0041, False, None),
        (10.005, False, None),  # Z = 0.5: a midpoint cross
        (10.0059, False, None),
        (10.006, False, None),  # Z = 0.6: excluded
        (10.0061, True, "buy"),  # Z = 0.61
        (10.0099, True, "buy"),  # Z = 0.99 (near 1)
        (10.01, False, None),  # Z = 0 again
    ],
)
def test_retail_rule_on_subpenny_fractions(
    price: float, retail: bool, bjzz_side: str | None
) -> None:
    cfg = Config()
    cfg.equities.retail_side_rule = "bjzz"
    p = {"ts": T0, "symbol": "X", "price": price, "size": 100, "venue": "D", "off_exchange": True}
    row = joins([p], [], cfg).row(0, named=True)
    assert row["retail"] is retail
    assert row["retail_side"] == bjzz_side
    lit = {**p, "venue": "Q", "off_exchange": False}
    assert joins([lit], [], cfg)["retail"][0] is False  # only off-exchange prints


def test_retail_side_midpoint_refinement() -> None:
    # quote 10.00 x 10.02: position in the spread decides, 40-60 % unsigned
    assert one(10.0199, (10.0, 10.02))["retail_side"] == "buy"  # p = 0.995
    assert one(10.0001, (10.0, 10.02))["retail_side"] == "sell"  # p = 0.005
    # Z = 0.01 (BJZZ would say sell) but p = 0.505: too close to the midpoint to sign
    near_mid = one(10.0101, (10.0, 10.02))
    assert near_mid["retail"] is True and near_mid["retail_side"] is None
    # Z = 0.99 (BJZZ: buy) trading at the bottom of a wide spread: a sell
    assert one(10.0099, (10.0, 10.1))["retail_side"] == "sell"
    # no usable quote: retail but unsigned
    assert one(10.0099, None)["retail_side"] is None


# -- venue and condition tables --------------------------------------------------------
def test_venue_table_matches_the_databento_sdk() -> None:
    from databento.common.publishers import Publisher

    for pid, code in venues.DATABENTO_PUBLISHER_VENUE.items():
        mic = Publisher.from_int(pid).venue.value
        assert mic in venues.VENUES[code].mics, (pid, mic, code)
    # every SDK equities publisher of a venue in the table is mapped (options and
    # futures datasets share some venue MICs, e.g. Nasdaq ISE options, and are not equities)
    known = {mic for v in venues.VENUES.values() for mic in v.mics}
    for pub in Publisher:
        if pub.venue.value in known and not pub.value.startswith(("OPRA.", "XCBF.")):
            assert pub.to_int() in venues.DATABENTO_PUBLISHER_VENUE, pub
    assert set(venues.OFF_EXCHANGE_CODES) == {"D"}
    assert venues.venue_for_publisher(19) == "D"  # FINRA/NYSE TRF
    assert venues.venue_for_publisher(60) is None  # consolidated: no venue


def test_synthetic_feed_uses_the_venue_table() -> None:
    from islandflow_tui.engine.ingest.synthetic import EQUITY_CONDITIONS, EQUITY_VENUES

    for code, name, off, _ in EQUITY_VENUES:
        assert venues.VENUES[code].name == name and venues.VENUES[code].off_exchange == off
    for code, flags, _ in EQUITY_CONDITIONS:
        assert venues.flags_of(code) == int(flags)


def test_condition_table() -> None:
    codes = pl.Series("conditions", ["@", "@ I", "@ F I", "W", "Z", "L", "@ 4", "U", None, "?"])
    flags = venues.flags_from_codes(codes).to_list()
    assert flags == [
        0,
        Cond.ODD_LOT,
        Cond.ISO | Cond.ODD_LOT,
        Cond.AVERAGE_PRICE,
        Cond.OUT_OF_SEQ,
        Cond.LATE,
        Cond.DERIVATIVELY_PRICED,
        Cond.LATE | Cond.OUT_OF_SEQ,
        0,
        0,
    ]
    not_regular = Cond(venues.NOT_REGULAR)
    for bit in (
        Cond.ODD_LOT,
        Cond.AVERAGE_PRICE,
        Cond.OUT_OF_SEQ,
        Cond.LATE,
        Cond.DERIVATIVELY_PRICED,
        Cond.CORRECTION,
        Cond.CANCEL,
    ):
        assert bit & not_regular
    for bit in (Cond.ISO, Cond.OPENING, Cond.CLOSING):
        assert not bit & not_regular
    assert venues.NOT_DARK_EVIDENCE == Cond.CORRECTION | Cond.CANCEL
