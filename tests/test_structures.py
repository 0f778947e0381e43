"""Structures: grouping packets into legs and labelling them (compute/structures.py)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.osi import format_osi
from tests.helpers import MS, batch, option_prints, option_quotes

T0 = 1_764_081_000_000_000_000
NEAR, FAR = date(2025, 11, 28), date(2025, 12, 19)
MLEG = int(ev.Cond.MULTI_LEG)


def sym(right: str, strike: float, expiry: date = NEAR) -> str:
    return format_osi("SPY", expiry, right, strike)


def leg(
    right: str,
    strike: float,
    side: str,
    size: int = 100,
    *,
    expiry: date = NEAR,
    dt_ms: float = 0,
    flags: int = 0,
    exch: str = "C",
    at: str | None = None,
) -> dict:
    """A leg print at the ask (bought) or bid (sold); ``at`` overrides: ask, bid or mid."""
    where = at or {"buy": "ask", "sell": "bid"}[side]
    price = {"ask": 2.10, "bid": 2.00, "mid": 2.05}[where]
    return {
        "ts": T0 + int(dt_ms * MS),
        "symbol": sym(right, strike, expiry),
        "price": price,
        "size": size,
        "exchange": exch,
        "flags": flags,
    }


def structures(
    prints: list[dict], *, cfg: Config | None = None, oi: pl.DataFrame | None = None
) -> pl.DataFrame:
    engine = Engine(cfg or Config())
    if oi is not None:
        engine.compute.packets.set_open_interest(oi)
    quotes = [
        # sizes 7/9 never equal a leg size, so the trade-size rule stays out of the way
        {"ts": T0 - 10 * MS, "symbol": s, "bid": 2.00, "ask": 2.10, "bid_size": 7, "ask_size": 9}
        for s in sorted({p["symbol"] for p in prints})
    ]
    engine.ingest(batch(0, quotes=option_quotes(quotes), prints=option_prints(prints)))
    return engine.flush().get(ev.FLOW_STRUCTURES, ev.empty_frame(ev.FLOW_STRUCTURES))


def one(prints: list[dict], **kw: object) -> dict:
    got = structures(prints, **kw)  # type: ignore[arg-type]
    assert got.height == 1, got
    return got.row(0, named=True)


def trace(row: dict) -> dict[str, dict]:
    return {t["condition"]: t for t in row["trace"]}


@pytest.mark.parametrize(
    ("legs", "variant", "direction"),
    [
        ([("C", 580, "buy"), ("C", 585, "sell")], "debit", "bullish"),  # bull call spread
        ([("C", 580, "sell"), ("C", 585, "buy")], "credit", "bearish"),  # bear call spread
        ([("P", 580, "sell"), ("P", 585, "buy")], "debit", "bearish"),  # bear put spread
        ([("P", 580, "buy"), ("P", 585, "sell")], "credit", "bullish"),  # bull put spread
    ],
)
def test_verticals(legs: list, variant: str, direction: str) -> None:
    row = one([leg(r, k, s) for r, k, s in legs])
    assert (row["label"], row["variant"], row["direction"]) == ("vertical", variant, direction)
    assert row["confidence"] == 1.0 and row["legs"] == 2 and row["leg_sizes"] == [100, 100]
    assert row["net_premium"] is not None


@pytest.mark.parametrize(("side", "variant"), [("buy", "long_vol"), ("sell", "short_vol")])
def test_straddle_long_and_short_vol(side: str, variant: str) -> None:
    row = one([leg("C", 580, side), leg("P", 580, side)])
    assert (row["label"], row["variant"], row["direction"]) == ("straddle", variant, "neutral")
    assert (
        row["description"] == f"{'+' if side == 'buy' else '-'}100 580C 11/28  "
        f"{'+' if side == 'buy' else '-'}100 580P 11/28"
    )


def test_strangle_versus_risk_reversal_by_sides() -> None:
    strangle = one([leg("C", 590, "buy"), leg("P", 570, "buy")])
    assert strangle["label"] == "strangle" and strangle["variant"] == "long_vol"
    assert strangle["runner_up"] == "risk_reversal" and strangle["runner_up_confidence"] == 0.35
    rr = one([leg("C", 590, "buy"), leg("P", 570, "sell")])
    assert (rr["label"], rr["direction"]) == ("risk_reversal", "bullish")
    assert rr["runner_up"] == "strangle"
    bear = one([leg("C", 590, "sell"), leg("P", 570, "buy")])
    assert (bear["label"], bear["direction"]) == ("risk_reversal", "bearish")


def test_unknown_sides_tie_is_shown_not_hidden() -> None:
    row = one(
        [leg("C", 590, "buy", flags=MLEG, at="mid"), leg("P", 570, "buy", flags=MLEG, at="mid")]
    )
    assert row["label"] == "strangle" and row["runner_up"] == "risk_reversal"
    assert row["confidence"] == row["runner_up_confidence"] == 0.75
    assert row["leg_sides"] == ["unknown", "unknown"] and row["net_premium"] is None


@pytest.mark.parametrize(
    ("at", "variant"), [("ask", "long_vol"), ("bid", "short_vol"), ("mid", None)]
)
def test_package_quote_rule_signs_multi_leg_straddles(at: str, variant: str | None) -> None:
    row = one([leg("C", 580, "buy", flags=MLEG, at=at), leg("P", 580, "buy", flags=MLEG, at=at)])
    assert row["label"] == "straddle" and row["complex"] and row["variant"] == variant
    assert "package.edge" in trace(row)


def test_calendar_and_diagonal() -> None:
    cal = one([leg("C", 580, "sell"), leg("C", 580, "buy", expiry=FAR)])
    assert (cal["label"], cal["variant"]) == ("calendar", "long")
    diag = one([leg("C", 580, "sell"), leg("C", 590, "buy", expiry=FAR)])
    assert (diag["label"], diag["variant"]) == ("diagonal", "long")
    assert trace(diag)["roll.closing_evidence"]["value"] is None  # no open interest


def test_roll_needs_closing_evidence_from_open_interest() -> None:
    oi = pl.DataFrame({"symbol": [sym("C", 580), sym("C", 590, FAR)], "open_interest": [1000, 10]})
    row = one([leg("C", 580, "sell"), leg("C", 590, "buy", expiry=FAR)], oi=oi)
    assert (row["label"], row["variant"], row["runner_up"]) == ("roll", "out_up", "diagonal")
    assert trace(row)["roll.closing_evidence"]["passed"]
    down = one(
        [leg("C", 580, "buy"), leg("C", 575, "sell")],
        oi=pl.DataFrame({"symbol": [sym("C", 580), sym("C", 575)], "open_interest": [5, 800]}),
    )
    assert (down["label"], down["variant"]) == ("roll", "up")  # closes 575, opens 580


def test_butterfly_ladder_and_condor() -> None:
    fly = one([leg("C", 575, "buy"), leg("C", 580, "sell", 200), leg("C", 585, "buy")])
    assert (fly["label"], fly["variant"], fly["runner_up"]) == ("butterfly", "long", "ladder")
    ladder = one([leg("C", 575, "buy"), leg("C", 580, "buy"), leg("C", 590, "buy")])
    assert (ladder["label"], ladder["variant"], ladder["direction"]) == (
        "ladder",
        "accumulation",
        "bullish",
    )
    condor = one(
        [leg("P", 570, "buy"), leg("P", 575, "sell"), leg("C", 585, "sell"), leg("C", 590, "buy")]
    )
    assert (condor["label"], condor["variant"]) == ("condor", "long")
    iron_fly = one(
        [leg("P", 575, "buy"), leg("P", 580, "sell"), leg("C", 580, "sell"), leg("C", 585, "buy")]
    )
    assert iron_fly["label"] == "butterfly"


def test_size_ratio_and_timing_decide_emission() -> None:
    assert structures([leg("C", 580, "buy", 100), leg("C", 585, "sell", 150)]).height == 0
    assert structures([leg("C", 580, "buy", 100), leg("C", 585, "sell", 200)]).height == 0
    ratio = one([leg("C", 580, "buy", 100, flags=MLEG), leg("C", 585, "sell", 200, flags=MLEG)])
    assert ratio["confidence"] == pytest.approx(0.8 * 0.75)  # a flagged 1:2, sides unknown
    assert trace(ratio)["vertical.ratio"]["value"] == 0.8
    tiny = structures([leg("C", 580, "buy", 2), leg("C", 585, "sell", 4)])
    assert tiny.height == 0  # 1:2 of tiny lots is chance
    assert one([leg("C", 580, "buy"), leg("C", 585, "sell", dt_ms=0.9)])["confidence"] == 1.0
    late = structures([leg("C", 580, "buy"), leg("C", 585, "sell", dt_ms=1.1)])
    assert late.height == 0  # 0.5 < structure_min_confidence


def test_grouping_needs_one_venue_and_the_window() -> None:
    assert structures([leg("C", 580, "buy"), leg("C", 585, "sell", exch="X")]).height == 0
    cfg = Config()
    cfg.flow.structure_min_confidence = 0.5
    cfg.flow.structure_window_ms = 100  # catch slower legging (scored lower: timing 0.5)
    close = structures([leg("C", 580, "buy"), leg("C", 585, "sell", dt_ms=100)], cfg=cfg)
    assert close["label"].to_list() == ["vertical"]  # within structure_window_ms, inclusive
    apart = structures([leg("C", 580, "buy"), leg("C", 585, "sell", dt_ms=101)], cfg=cfg)
    assert apart.height == 0


def test_structure_ts_evidence_and_emission_timing() -> None:
    engine = Engine(Config())
    prints = [leg("C", 580, "buy"), leg("C", 585, "sell")]
    quotes = [{"ts": T0 - MS, "symbol": p["symbol"], "bid": 2.0, "ask": 2.1} for p in prints]
    decided = T0 + 1 * MS + 500 * MS  # anchor + structure window + cluster window
    got = engine.ingest(batch(decided, quotes=option_quotes(quotes), prints=option_prints(prints)))
    assert ev.FLOW_STRUCTURES not in got
    got = engine.ingest(batch(decided + 1))
    (row,) = got[ev.FLOW_STRUCTURES].iter_rows(named=True)
    packets = got.get(ev.FLOW_PACKETS)
    assert row["ts"] == decided and row["first_ts"] == T0
    assert packets is None or set(row["evidence"]) <= set(packets["id"].to_list())
    assert len(row["evidence"]) == 2


# -- cancels ----------------------------------------------------------------------
CXL = int(ev.Cond.CANCEL)
S = 1_000 * MS


def run_steps(prints: list[dict], steps: list[int] | None = None) -> dict[str, pl.DataFrame]:
    """Prints (quoted) through an engine, one batch per watermark in ``steps`` (ms after
    T0; None: one batch), then flushed; every derived stream concatenated."""
    engine = Engine(Config())
    quotes = [
        {"ts": T0 - 10 * MS, "symbol": s, "bid": 2.00, "ask": 2.10, "bid_size": 7, "ask_size": 9}
        for s in sorted({p["symbol"] for p in prints})
    ]
    frames: dict[str, list[pl.DataFrame]] = {}
    marks = [T0 + m * MS for m in (steps or [])]
    done = 0
    for wm in [*marks, None]:
        now = [p for p in prints[done:] if wm is None or p["ts"] < wm]
        done += len(now)
        feed = {"prints": option_prints(now)} if now else {}
        if quotes:
            feed["quotes"] = option_quotes(quotes)
        outs = [engine.ingest(batch(wm or max(p["ts"] for p in prints) + 1, **feed))]
        if wm is None:
            outs.append(engine.flush())
        for out in outs:
            for s, f in out.items():
                frames.setdefault(s, []).append(f)
        quotes = []
    return {s: pl.concat(f) for s, f in frames.items()}


LADDER = [leg("C", 575, "buy"), leg("C", 580, "buy"), leg("C", 590, "buy"), leg("C", 595, "buy")]


@pytest.mark.parametrize("steps", [None, [600, 1500], [100, 400, 501, 700, 2500]])
def test_cancel_of_an_emitted_leg_reissues_the_structure(steps: list[int] | None) -> None:
    # four bought calls, equal size: a ladder; cancelling the 595C leg after the ladder
    # was emitted re-labels the remaining three (still a ladder) as a correction
    prints = [*LADDER, {**LADDER[3], "ts": T0 + 2 * S, "flags": CXL}]
    got = run_steps(prints, steps)
    st = got[ev.FLOW_STRUCTURES]
    assert st["status"].to_list() == ["new", "correction"]
    first, fixed = st.row(0, named=True), st.row(1, named=True)
    assert first["label"] == fixed["label"] == "ladder"
    assert first["legs"] == 4 and fixed["legs"] == 3
    assert fixed["corrects"] == first["id"] and first["corrects"] is None
    assert fixed["ts"] == T0 + 2 * S  # re-issued when the cancel happened
    packets = got[ev.FLOW_PACKETS]
    retracted = packets.filter(pl.col("status") == "retracted")
    assert retracted.height == 1
    assert retracted["id"][0] not in fixed["evidence"]
    assert set(fixed["evidence"]) < set(first["evidence"])


@pytest.mark.parametrize("steps", [None, [600, 1500]])
def test_cancel_that_breaks_the_structure_retracts_it(steps: list[int] | None) -> None:
    # a vertical of two 100-lots; cancelling one leg leaves one contract: no structure
    legs = [leg("C", 580, "buy"), leg("C", 585, "sell")]
    got = run_steps([*legs, {**legs[1], "ts": T0 + 2 * S, "flags": CXL}], steps)
    st = got[ev.FLOW_STRUCTURES]
    assert st["status"].to_list() == ["new", "retracted"]
    gone = st.row(1, named=True)
    assert gone["corrects"] == st["id"][0] and gone["confidence"] == 0.0
    assert [t["condition"] for t in gone["trace"]] == ["cancel.structure_withdrawn"]
    assert len(gone["evidence"]) == 1  # the remaining leg's packet
    hits = got.get(ev.CLASSIFIER_HITS, ev.empty_frame(ev.CLASSIFIER_HITS))
    assert gone["id"] not in hits["source_id"].to_list()  # a withdrawn structure fires nothing


def test_cancel_before_the_group_is_decided_changes_it_silently() -> None:
    # the cancel (ts 300 ms) lands before the group's decision (anchor + 1 + 500 ms):
    # the structure is emitted once, already without the cancelled leg
    prints = [*LADDER, {**LADDER[3], "ts": T0 + 300 * MS, "flags": CXL}]
    for steps in (None, [200, 400, 800]):
        st = run_steps(prints, steps)[ev.FLOW_STRUCTURES]
        assert st["status"].to_list() == ["new"] and st["legs"][0] == 3


def test_structure_corrections_survive_a_checkpoint() -> None:
    prints = [*LADDER, {**LADDER[3], "ts": T0 + 2 * S, "flags": CXL}]
    engine = Engine(Config())
    quotes = [
        {"ts": T0 - 10 * MS, "symbol": s, "bid": 2.00, "ask": 2.10, "bid_size": 7, "ask_size": 9}
        for s in sorted({p["symbol"] for p in prints})
    ]
    got = engine.ingest(
        batch(T0 + S, quotes=option_quotes(quotes), prints=option_prints(prints[:4]))
    )
    first = got[ev.FLOW_STRUCTURES].row(0, named=True)
    state = engine.checkpoint()
    again = Engine(Config())
    again.restore(state)
    later = again.ingest(batch(T0 + 3 * S, prints=option_prints(prints[4:])))
    fixed = later[ev.FLOW_STRUCTURES].row(0, named=True)
    assert fixed["status"] == "correction" and fixed["corrects"] == first["id"]
