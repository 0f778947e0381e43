"""Contract selection: the seed's knobs, fallback band, caps, determinism, event-time triggers."""

from __future__ import annotations

import random
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from islandflow_tui.engine.ingest.contracts import (
    ChainEntry,
    Reselector,
    SelectionKnobs,
    occ_to_osi,
    parse_occ,
    select_contracts,
    select_underlying,
)

TODAY = date(2025, 11, 25)
S = 10**9
T0 = 1_764_084_600 * S  # 2025-11-25 10:30 ET


def occ(root: str, expiry: date, right: str, strike: float) -> str:
    return f"{root}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"


def chain(root: str, spot: float, step: float, n: int, expiries: list[date]) -> list[ChainEntry]:
    out = []
    for e in expiries:
        for k in range(-n, n + 1):
            strike = round(spot + k * step, 2)
            for right in "CP":
                out.append(parse_occ(occ(root, e, right, strike)))
    return out


def test_parse_occ_and_osi():
    e = parse_occ("AAPL240503P00155000")
    assert (e.root, e.expiry, e.right, e.strike) == ("AAPL", date(2024, 5, 3), "P", 155.0)
    assert occ_to_osi("AAPL240503P00155000") == "AAPL  240503P00155000"
    assert occ_to_osi("SPY251219C00600500") == "SPY   251219C00600500"


def test_strikes_per_side_band_and_dte():
    exps = [TODAY, TODAY + timedelta(days=7), TODAY + timedelta(days=45)]
    c = chain("SPY", 600.0, 1.0, 20, exps)
    knobs = SelectionKnobs(strikes_per_side=3, max_dte_days=30, moneyness_pct=0.06)
    picked = select_underlying(c, 600.4, TODAY, knobs)
    assert {e.expiry for e in picked} == set(exps[:2])  # 45 DTE is beyond max_dte_days
    calls = sorted(e.strike for e in picked if e.expiry == TODAY and e.right == "C")
    assert calls == [598.0, 599.0, 600.0, 601.0, 602.0, 603.0]  # 3 below, 3 above spot


def test_fallback_band_when_the_narrow_one_is_sparse():
    # strikes every $5 around 100: only one within 6% on each side, two within 10%
    c = [parse_occ(occ("XYZ", TODAY, "C", k)) for k in (90, 95, 100, 105, 110, 130)]
    knobs = SelectionKnobs(strikes_per_side=2, moneyness_pct=0.06, moneyness_fallback_pct=0.10)
    got = sorted(e.strike for e in select_underlying(c, 100.5, TODAY, knobs))
    assert got == [95.0, 100.0, 105.0, 110.0]  # 130 is outside even the fallback band


def test_max_contracts_shared_between_underlyings_nearest_first():
    exps = [TODAY + timedelta(days=d) for d in (0, 7, 14)]
    chains = {
        "SPY": chain("SPY", 600.0, 1.0, 10, exps),
        "QQQ": chain("QQQ", 500.0, 1.0, 10, exps),
        "IWM": chain("IWM", 200.0, 1.0, 1, exps[:1]),  # a short chain leaves room
    }
    spots = {"SPY": 600.2, "QQQ": 500.2, "IWM": 200.2, "NOPE": 0.0}
    knobs = SelectionKnobs(strikes_per_side=8, max_contracts=30)
    got = select_contracts(chains, spots, TODAY, knobs)
    assert len(got) == 30 and got == sorted(got) and len(set(got)) == 30
    assert sum(s.startswith("IWM") for s in got) == 6  # all it has (3 strikes x C/P)
    spy = [parse_occ(s) for s in got if s.startswith("SPY")]
    assert min(e.expiry for e in spy) == TODAY and all(abs(e.strike - 600.2) <= 8 for e in spy)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), spot=st.floats(50, 800))
def test_selection_does_not_depend_on_input_order(seed, spot):
    exps = [TODAY + timedelta(days=d) for d in (0, 3, 10)]
    c = chain("SPY", round(spot), 1.0, 15, exps)
    shuffled = list(c)
    random.Random(seed).shuffle(shuffled)
    knobs = SelectionKnobs(strikes_per_side=4, max_contracts=50)
    a = select_contracts({"SPY": c}, {"SPY": spot}, TODAY, knobs)
    b = select_contracts({"SPY": shuffled}, {"SPY": spot}, TODAY, knobs)
    assert a == b


def test_reselector_spot_move_and_day_roll_in_event_time():
    r = Reselector(move_pct=0.01)
    r.selected({"SPY": 600.0}, TODAY)
    assert not r.observe("SPY", 605.9, T0)  # 0.98 %
    assert r.observe("SPY", 606.1, T0)  # 1.02 %
    assert r.observe("QQQ", 500.0, T0)  # first spot for an underlying without one
    late_evening = T0 + 13 * 3600 * S  # 23:30 ET: still the same New York day
    assert not r.observe("SPY", 600.0, late_evening)
    assert r.observe("SPY", 600.0, T0 + 14 * 3600 * S)  # 00:30 ET next day
