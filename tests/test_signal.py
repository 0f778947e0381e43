"""Signal-policy rules: each threshold just below, at and above (engine.compute.signal)."""

from __future__ import annotations

import pytest

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from tests.helpers import AAPL_C, MS, SPY_C, batch, option_prints, option_quotes

T0 = 1_764_081_000_000_000_000
# AAPL quote 2.00 x 2.10: at-ask price 2.10, bid 2.00, mid 2.05
AQ = {"symbol": AAPL_C, "bid": 2.00, "ask": 2.10}
SQ = {"symbol": SPY_C, "bid": 2.00, "ask": 2.10}


def verdict(
    price: float,
    size: int,
    *,
    symbol: str = AAPL_C,
    quote: dict | None = None,
    age_ms: float = 1,
    flags: int = 0,
    mode: str = "smart-money",
) -> dict:
    cfg = Config()
    cfg.signal.mode = mode
    engine = Engine(cfg)
    q = quote if quote is not None else (AQ if symbol == AAPL_C else SQ)
    quotes = option_quotes([{**q, "ts": T0}]) if q else option_quotes([])
    pts = T0 + int(age_ms * MS)
    prints = option_prints(
        [{"ts": pts, "symbol": symbol, "price": price, "size": size, "flags": flags}]
    )
    engine.ingest(batch(0, quotes=quotes, prints=prints))
    return engine.flush()[ev.OPTIONS_ENRICHED].row(0, named=True)


def premium_size(price: float, premium: float) -> int:
    return round(premium / (price * 100))


# price 2.5 -> $250 per contract; sizes give exact premiums
@pytest.mark.parametrize(("size", "passes"), [(39, False), (40, True), (41, True)])
def test_single_name_min_notional_10k(size, passes):
    row = verdict(2.5, size)  # AA above 2.10
    assert row["premium"] == 250 * size
    assert row["signal_pass"] is passes
    assert row["signal_reason"] == ("pass" if passes else "below_min")


@pytest.mark.parametrize(("size", "passes"), [(199, False), (200, True)])
def test_etf_min_notional_50k(size, passes):
    row = verdict(2.5, size, symbol=SPY_C)
    assert row["signal_reason"] == ("pass" if passes else "below_etf_min")


@pytest.mark.parametrize(("size", "passes"), [(124, False), (125, True)])
def test_bid_side_min_25k(size, passes):
    row = verdict(2.00, size)  # $200/contract at the bid: 125 -> 25 000
    assert row["placement"] == "B"
    assert row["signal_reason"] == ("pass" if passes else "bid_side_below_min")


def test_below_bid_also_needs_bid_side_min():
    row = verdict(1.90, 100)  # BB, $19 000
    assert (row["placement"], row["signal_reason"]) == ("BB", "bid_side_below_min")


@pytest.mark.parametrize(("size", "passes"), [(97, False), (98, True)])
def test_mid_min_20k_unless_iso(size, passes):
    row = verdict(2.05, size)  # $205/contract; 97 -> 19 885, 98 -> 20 090
    assert row["placement"] == "MID"
    assert row["signal_reason"] == ("pass" if passes else "mid_below_min")


def test_iso_mid_print_needs_only_the_base_min():
    row = verdict(2.05, 50, flags=int(ev.Cond.ISO))  # $10 250, ISO
    assert (row["placement"], row["signal_reason"]) == ("MID", "pass")


def test_no_nbbo_rejected_by_smart_money():
    row = verdict(2.5, 1000, quote={})
    assert (row["placement"], row["signal_reason"], row["signal_pass"]) == (
        "NO_NBBO",
        "no_nbbo",
        False,
    )


@pytest.mark.parametrize(("age_ms", "reason"), [(1500, "pass"), (1500.000001, "stale_nbbo")])
def test_signal_nbbo_age_1500(age_ms, reason):
    row = verdict(2.5, 200, age_ms=age_ms)  # $50 000: clears the unplaced (bid-side) bar
    assert row["placement"] == "STALE"
    assert row["signal_reason"] == reason


def test_unplaced_stale_print_must_clear_bid_side_bar():
    row = verdict(2.5, 99, age_ms=1200)  # $24 750
    assert (row["placement"], row["signal_reason"]) == ("STALE", "unplaced_below_min")


def test_crossed_quote_rejected():
    row = verdict(2.05, 1000, quote={**AQ, "bid": 2.2, "ask": 2.1})
    assert row["signal_reason"] == "crossed_nbbo"


def test_balanced_halves_thresholds():
    row = verdict(2.5, 20, mode="balanced")  # $5 000 == 10 000 * 0.5
    assert (row["signal_pass"], row["signal_reason"]) == (True, "pass")
    row = verdict(2.5, 19, mode="balanced")
    assert row["signal_reason"] == "below_min"


def test_balanced_lets_large_unquoted_prints_through():
    assert verdict(2.5, 50, quote={}, mode="balanced")["signal_reason"] == "pass"  # 12 500
    assert verdict(2.5, 49, quote={}, mode="balanced")["signal_reason"] == "no_nbbo"


def test_all_passes_everything():
    row = verdict(0.05, 1, quote={}, mode="all")
    assert (row["signal_pass"], row["signal_reason"]) == (True, "policy_all")


def test_mask_records_every_policy():
    # $6 000 at the ask: fails smart-money (10k), passes balanced (5k), passes all
    row = verdict(2.5, 24)
    assert row["signal_mask"] == ev.SIGNAL_BIT["balanced"] | ev.SIGNAL_BIT["all"]
    row = verdict(2.5, 40)
    assert row["signal_mask"] == 7
    row = verdict(2.5, 1)
    assert row["signal_mask"] == ev.SIGNAL_BIT["all"]


def test_etf_list_is_configurable():
    cfg = Config()
    cfg.signal.etf_underlyings = ["AAPL"]
    engine = Engine(cfg)
    engine.ingest(
        batch(
            0,
            quotes=option_quotes([{**AQ, "ts": T0}]),
            prints=option_prints([{"ts": T0 + 1, "symbol": AAPL_C, "price": 2.5, "size": 100}]),
        )
    )
    assert engine.flush()[ev.OPTIONS_ENRICHED]["signal_reason"].to_list() == ["below_etf_min"]
