"""Flow packets: clustering, fields, kinds, context, baselines and cancels (compute/packets.py)."""

from __future__ import annotations

import json
import math
from datetime import date
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from islandflow_tui.config import Config, FlowConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.kinds import label_kinds
from islandflow_tui.engine.core import Engine
from tests.helpers import MS, SPY_C, SPY_P, batch, equity_quotes, option_prints, option_quotes

T0 = 1_764_081_000_000_000_000  # 2025-11-25 14:30:00 UTC = 09:30 New York
S = 1000 * MS
ISO = int(ev.Cond.ISO)
CXL = int(ev.Cond.CANCEL)
MLEG = int(ev.Cond.MULTI_LEG)
Q = {"symbol": SPY_C, "bid": 1.00, "ask": 1.10, "bid_size": 50, "ask_size": 60}


def pr(
    ms: float,
    price: float = 1.10,
    size: int = 10,
    exch: str = "C",
    flags: int = 0,
    symbol: str = SPY_C,
) -> dict:
    return {
        "ts": T0 + int(ms * MS),
        "symbol": symbol,
        "price": price,
        "size": size,
        "exchange": exch,
        "flags": flags,
    }


def run(
    prints: list[dict],
    quotes: list[dict] | None = None,
    *,
    cfg: Config | None = None,
    eq_quotes: list[dict] | None = None,
    oi: pl.DataFrame | None = None,
    steps: list[int] | None = None,
) -> dict[str, pl.DataFrame]:
    """Feed everything (optionally split at the given ms watermarks), flush, concat."""
    engine = Engine(cfg or Config())
    if oi is not None:
        engine.compute.packets.set_open_interest(oi)
    quotes = quotes if quotes is not None else [{**Q, "ts": T0 - 100 * MS}]
    out: dict[str, list[pl.DataFrame]] = {}
    cuts = [T0 + c * MS for c in (steps or [])] + [2**62]
    lo = 0
    for cut in cuts:
        fr = {
            "quotes": option_quotes([q for q in quotes if lo <= q["ts"] < cut]),
            "prints": option_prints([p for p in prints if lo <= p["ts"] < cut]),
        }
        if eq_quotes:
            fr["eq_quotes"] = equity_quotes([q for q in eq_quotes if lo <= q["ts"] < cut])
        got = (
            engine.ingest(batch(min(cut, 2**61), **fr))
            if cut < 2**62
            else engine.ingest(batch(0, **fr))
        )
        for k, v in got.items():
            out.setdefault(k, []).append(v)
        lo = cut
    for k, v in engine.flush().items():
        out.setdefault(k, []).append(v)
    res = {k: pl.concat(v) for k, v in out.items()}
    res["_engine"] = engine  # type: ignore[assignment]
    return res


def packets(res: dict) -> pl.DataFrame:
    return res.get(ev.FLOW_PACKETS, ev.empty_frame(ev.FLOW_PACKETS))


# -- clustering ------------------------------------------------------------------
def test_window_is_anchored_at_the_first_print_and_inclusive() -> None:
    got = packets(run([pr(0), pr(300), pr(500), pr(500.000001), pr(900)]))
    assert got["count"].to_list() == [3, 2]  # 0, 300, 500 | 500 ms + 1 ns, 900
    assert got["first_ts"].to_list() == [T0, T0 + 500 * MS + 1]
    assert got["ts"].to_list() == [T0 + 500 * MS, T0 + 1000 * MS + 1]  # decided at the close


def test_packet_fields() -> None:
    prints = [
        pr(0, 1.10, 10, "C", ISO),
        pr(40, 1.10, 20, "X", ISO),
        pr(80, 1.12, 30, "I", ISO),  # above the ask
        pr(120, 1.05, 40, "Z"),  # inside
    ]
    res = run(prints)
    enr = res[ev.OPTIONS_ENRICHED]
    (row,) = packets(res).iter_rows(named=True)
    assert row["count"] == 4 and row["total_size"] == 100 and row["max_size"] == 40
    # dollars: price x size x 100 (the seed multiplied by 100 twice)
    assert row["premium"] == pytest.approx(100 * (1.10 * 10 + 1.10 * 20 + 1.12 * 30 + 1.05 * 40))
    assert row["vwap"] == pytest.approx((1.10 * 10 + 1.10 * 20 + 1.12 * 30 + 1.05 * 40) / 100)
    assert (row["first_price"], row["last_price"], row["min_price"], row["max_price"]) == (
        1.10,
        1.05,
        1.05,
        1.12,
    )
    assert row["span_ns"] == 120 * MS and row["exchanges"] == 4 and row["iso_count"] == 3
    assert row["iso_size"] == 60 and row["iso_exchanges"] == 3
    assert row["nbbo_coverage"] == 1.0
    assert (row["n_aa"], row["n_a"], row["n_mid"], row["n_b"], row["n_bb"]) == (1, 2, 1, 0, 0)
    assert row["ask_ratio"] == pytest.approx(0.6) and row["mid_ratio"] == pytest.approx(0.4)
    assert row["start_edge"] == pytest.approx(1.0) and row["end_edge"] == pytest.approx(0.0)
    assert row["spread_pct"] == pytest.approx(0.10 / 1.05)
    assert row["evidence"] == enr["id"].to_list()
    assert row["symbol"] == SPY_C and row["expiry"] == date(2025, 11, 25) and row["dte"] == 0
    assert row["status"] == "new" and row["corrects"] is None and row["retracted"] == []
    # sides (default stack): 1.10 x 10 / x 20 at the ask (quote), 1.12 quote, 1.05 mid:
    # depth (ask 60 > bid 50) -> all bought
    assert enr["side"].to_list() == ["buy"] * 4
    assert (row["buy_size"], row["sell_size"], row["side"]) == (100, 0, "buy")
    assert row["buy_ratio"] == 1.0 and row["aggressor_ratio"] == 1.0
    assert row["kind"] == "sweep" and row["direction"] == "bullish"


def test_emitted_only_once_the_watermark_passes_the_close() -> None:
    engine = Engine(Config())
    feed = batch(
        T0 + 500 * MS, quotes=option_quotes([{**Q, "ts": T0 - S}]), prints=option_prints([pr(0)])
    )
    assert ev.FLOW_PACKETS not in engine.ingest(feed)
    at_close = engine.ingest(batch(T0 + 500 * MS + 1))  # watermark one past the close
    assert at_close[ev.FLOW_PACKETS]["count"].to_list() == [1]
    assert ev.FLOW_PACKETS not in engine.ingest(batch(T0 + 10 * S))
    assert ev.FLOW_PACKETS not in engine.flush()


def test_multi_leg_prints_are_clustered_apart() -> None:
    got = packets(run([pr(0), pr(10, flags=MLEG), pr(20)]))
    pairs = zip(got["complex"].to_list(), got["count"].to_list(), strict=True)
    assert sorted(pairs) == [(False, 2), (True, 1)]
    assert got.filter(pl.col("complex"))["kind"].to_list() == ["complex"]


def test_spot_moneyness_and_no_later_quote() -> None:
    eq = [
        {"ts": T0 - S, "symbol": "SPY", "bid": 579.0, "ask": 581.0},
        {"ts": T0 + 10 * MS, "symbol": "SPY", "bid": 599.0, "ask": 601.0},  # after the print
    ]
    (row,) = packets(run([pr(0)], eq_quotes=eq)).iter_rows(named=True)
    assert row["spot"] == 580.0 and row["moneyness"] == 0.0
    (none,) = packets(run([pr(0)])).iter_rows(named=True)
    assert none["spot"] is None and none["moneyness"] is None


def test_open_interest_and_day_volume() -> None:
    oi = pl.DataFrame(
        {
            "symbol": [SPY_C, SPY_C],
            "as_of": [date(2025, 11, 24), date(2025, 11, 26)],
            "open_interest": [150, 999],
        }
    )
    got = packets(run([pr(0, size=100), pr(1000, size=70)], oi=oi))
    assert got["open_interest"].to_list() == [150, 150]  # the 11/26 figure is not known yet
    assert got["day_volume"].to_list() == [100, 170]
    assert packets(run([pr(0)]))["open_interest"].to_list() == [None]  # unknown, not zero


# -- kinds: boundaries ---------------------------------------------------------------
def kind_row(**over: object) -> dict[str, np.ndarray]:
    base = {
        "count": 3,
        "iso_count": 3,
        "iso_size": 300,
        "iso_exchanges": 3,
        "_iso_taking": 300,
        "ask_ratio": 1.0,
        "bid_ratio": 0.0,
        "complex": False,
        "exchanges": 3,
        "premium": 50_000.0,
        "total_size": 300,
        "open_interest": float("nan"),
        "max_size": 100,
        "max_print_premium": 20_000.0,
        "_iso_premium": 0.0,
        "repeat_hits": 0,
        "_repeat_share": 1.0,
        "_repeat_consistent": 0,
        "_repeat_surprise": 99.0,
        "right": "C",
        "side": "buy",
    }
    base.update(over)
    return {k: np.array([v], dtype=object if isinstance(v, str) else None) for k, v in base.items()}


def kinds_of(**over: object) -> list[str]:
    return label_kinds(kind_row(**over), FlowConfig())["tags"].to_list()[0]


@pytest.mark.parametrize(
    ("over", "is_sweep"),
    [
        ({}, True),
        ({"iso_exchanges": 1}, False),  # ISO prints on one venue: not a sweep
        ({"iso_exchanges": 2}, True),  # sweep_min_venues = 2
        ({"iso_count": 1}, False),  # sweep_min_iso = 2
        ({"iso_count": 2}, True),
        ({"iso_size": 150, "_iso_taking": 150}, True),  # ISO share of size 0.5 = the minimum
        ({"iso_size": 149, "_iso_taking": 149}, False),
        ({"_iso_taking": 180}, True),  # sweep_min_taking_ratio 0.6 of the ISO size
        ({"_iso_taking": 179}, False),
        ({"complex": True}, False),
    ],
)
def test_sweep_boundaries(over: dict, is_sweep: bool) -> None:
    assert ("sweep" in kinds_of(**over)) is is_sweep


@pytest.mark.parametrize(
    ("premium", "size", "oi", "golden"),
    [
        (999_999.0, 500, 400.0, False),
        (1_000_000.0, 500, 400.0, True),
        (1_000_001.0, 500, 400.0, True),
        (1_000_000.0, 500, 500.0, False),  # size must exceed open interest
        (1_000_000.0, 500, 499.0, True),
        (5_000_000.0, 500, float("nan"), False),  # unknown open interest: never golden
    ],
)
def test_golden_sweep_boundaries(premium: float, size: int, oi: float, golden: bool) -> None:
    tags = kinds_of(premium=premium, total_size=size, open_interest=oi)
    assert ("golden_sweep" in tags) is golden and "sweep" in tags


@pytest.mark.parametrize(("max_size", "block"), [(499, False), (500, True), (501, True)])
def test_block_boundary(max_size: int, block: bool) -> None:
    assert ("block" in kinds_of(max_size=max_size, exchanges=1, iso_count=0, iso_size=0)) is block
    assert "block" not in kinds_of(max_size=max_size)  # a sweep with a big piece stays a sweep


@pytest.mark.parametrize(("count", "split"), [(2, False), (3, True), (4, True)])
def test_split_boundary(count: int, split: bool) -> None:
    assert ("split" in kinds_of(count=count, exchanges=1, iso_count=0, iso_size=0)) is split


@pytest.mark.parametrize(("hits", "repeat"), [(4, False), (5, True), (6, True)])
def test_repeat_boundary(hits: int, repeat: bool) -> None:
    assert ("repeat" in kinds_of(repeat_hits=hits, _repeat_consistent=hits)) is repeat


def test_kind_priority_and_trace() -> None:
    out = label_kinds(
        kind_row(
            max_size=900,
            exchanges=1,
            iso_count=0,
            iso_size=0,
            iso_exchanges=0,
            count=4,
            repeat_hits=7,
            _repeat_consistent=7,
        ),
        FlowConfig(),
    )
    assert out["tags"].to_list()[0] == ["block", "split", "repeat"]
    assert out["kind"][0] == "block"
    trace = {t["condition"]: t for t in out["trace"].to_list()[0]}
    assert trace["block.max_size"]["value"] == 900 and trace["block.max_size"]["passed"]
    assert trace["sweep.iso_prints"] == {
        "condition": "sweep.iso_prints",
        "value": 0.0,
        "threshold": 2.0,
        "passed": False,
    }
    assert "golden.premium" not in trace  # golden conditions only on sweeps


# -- repeat counting in the engine ---------------------------------------------------------
def test_repeat_hits_window_end_to_end() -> None:
    cfg = Config()
    big = 2000  # 2000 x $1.10 x 100 = $220k per hit, at the ask
    prints = [pr(i * 30_000, size=big) for i in range(5)]  # hits 30 s apart
    quotes = [{**Q, "ts": p["ts"] - MS} for p in prints]
    got = packets(run(prints, quotes, cfg=cfg))
    assert got["repeat_hits"].to_list() == [1, 2, 3, 4, 5]
    assert "repeat" in got["tags"].to_list()[-1] and "repeat" not in got["tags"].to_list()[-2]
    cfg.flow.repeat_window_ms = 120_000  # exactly 4 x 30 s: the first hit falls out
    got = packets(run(prints, quotes, cfg=cfg))
    assert got["repeat_hits"].to_list() == [1, 2, 3, 4, 4]


def test_small_or_passive_packets_are_not_repeat_hits() -> None:
    quotes = [{**Q, "ts": T0 + (i * 1000 - 1) * MS} for i in range(6)]
    got = packets(run([pr(i * 1000, price=1.05, size=2000) for i in range(6)], quotes))  # mid
    assert got["repeat_hits"].to_list() == [0] * 6
    got = packets(run([pr(i * 1000, size=180) for i in range(6)], quotes))  # $19.8k < $20k
    assert got["repeat_hits"].to_list() == [0] * 6
    got = packets(run([pr(i * 1000, size=182) for i in range(6)], quotes))  # $20.02k
    assert got["repeat_hits"].to_list() == [1, 2, 3, 4, 5, 6]
    got = packets(run([pr(i * 1000, size=50) for i in range(6)]))  # $5.5k < $20k
    assert got["repeat_hits"].to_list() == [0] * 6


@pytest.mark.parametrize(("share", "repeat"), [(0.79, False), (0.8, True), (0.81, True)])
def test_repeat_side_share_boundary(share: float, repeat: bool) -> None:
    tags = kinds_of(repeat_hits=5, _repeat_consistent=5, _repeat_share=share)
    assert ("repeat" in tags) is repeat


@pytest.mark.parametrize(("consistent", "repeat"), [(4, False), (5, True), (6, True)])
def test_repeat_consistent_hits_boundary(consistent: int, repeat: bool) -> None:
    out = label_kinds(kind_row(repeat_hits=6, _repeat_consistent=consistent), FlowConfig())
    assert ("repeat" in out["tags"].to_list()[0]) is repeat
    item = {t["condition"]: t for t in out["trace"].to_list()[0]}["repeat.consistent_hits"]
    assert (item["value"], item["threshold"], item["passed"]) == (consistent, 5, repeat)


def _trace(row: dict) -> dict[str, dict]:
    return {t["condition"]: t for t in row["trace"]}


@pytest.mark.parametrize(
    ("sells", "share", "repeat"), [(0, 1.0, True), (1, 0.8, True), (2, 4 / 6, False)]
)
def test_repeat_side_share_end_to_end(sells: int, share: float, repeat: bool) -> None:
    """Aggressive selling on the same contract in the window dilutes the buy hits:
    4 buys at the ask after ``sells`` sells at the bid (all $200k+)."""
    cfg = Config()
    cfg.flow.repeat_min_hits = 4
    cfg.flow.repeat_min_surprise = 0.0  # this side share alone (the sells are background)
    prints = [pr(i * 10_000, price=1.00, size=2000) for i in range(sells)]
    prints += [pr((sells + i) * 10_000, size=2000) for i in range(4)]
    quotes = [{**Q, "ts": p["ts"] - MS} for p in prints]
    got = packets(run(prints, quotes, cfg=cfg))
    last = got.row(-1, named=True)
    assert last["repeat_hits"] == 4 and last["side"] == "buy"
    item = _trace(last)["repeat.side_share"]
    assert item["value"] == pytest.approx(share) and item["passed"] is repeat
    assert ("repeat" in last["tags"]) is repeat


def test_repeat_windows_emptied_by_the_other_side_expire() -> None:
    """A sell hit leaves its window when a later buy hit looks at it; the emptied
    window is dropped by the periodic expiry (it used to assume a non-empty one)."""
    cfg = Config()
    cfg.flow.repeat_window_ms = 1000
    cfg.flow.rolling_ttl_s = 8  # expiry every ttl / 8 = 1 s of event time
    prints = [pr(0, price=1.00, size=2000), pr(1500, size=2000)]  # one batch, then expiry
    prints += [pr(4000 + i * 3000, size=10) for i in range(4)]
    res = run(prints, _quotes_for(prints), cfg=cfg, steps=[3000, 6000, 12_000])
    assert packets(res)["repeat_hits"].to_list()[:2] == [1, 1]
    state = res["_engine"].compute.packets._repeat
    assert all(state.values())  # no empty window kept


@pytest.mark.parametrize(
    ("last_size", "consistent"),
    [(1000, 5), (2500, 5), (2501, 0), (400, 5), (399, 0)],
)
def test_repeat_consistent_hits_end_to_end(last_size: int, consistent: int) -> None:
    """4 hits of 1 000 lots, then one of ``last_size``: it belongs to the repeated order
    while its premium is within a factor 2.5 of the hits' median (both ends inclusive)."""
    sizes = [1000] * 4 + [last_size]
    prints = [pr(i * 10_000, size=s) for i, s in enumerate(sizes)]
    quotes = [{**Q, "ts": p["ts"] - MS} for p in prints]
    got = packets(run(prints, quotes))
    last = got.row(-1, named=True)
    assert last["repeat_hits"] == 5
    item = _trace(last)["repeat.consistent_hits"]
    assert item["value"] == consistent and item["passed"] is (consistent >= 5)
    assert ("repeat" in last["tags"]) is (consistent >= 5)


# -- baselines ---------------------------------------------------------------------------
def test_premium_z_is_against_the_baseline_before_adding() -> None:
    sizes = [10, 12, 9, 11, 10, 13, 8, 10, 12, 11, 9, 10, 60]
    got = packets(run([pr(i * 1000, size=s) for i, s in enumerate(sizes)]))
    prem = np.array([110.0 * s for s in sizes])  # $1.10 x 100 per contract
    before = prem[:-1]
    expected = (prem[-1] - before.mean()) / before.std(ddof=1)
    last = got.row(-1, named=True)
    assert last["baseline_n"] == 12
    assert last["premium_z"] == pytest.approx(expected, rel=1e-9)
    assert last["root_premium_z"] == pytest.approx(expected, rel=1e-9)  # one contract: same
    assert got["baseline_n"].to_list() == list(range(13))
    assert got["premium_z"][0] is None and got["premium_z"][1] is None  # < 2 observations


def test_rolling_window_size_and_ttl() -> None:
    cfg = Config()
    cfg.flow.rolling_window_size = 3
    got = packets(run([pr(i * 1000, size=s) for i, s in enumerate([100, 1, 2, 3, 50])], cfg=cfg))
    last = got.row(-1, named=True)
    assert last["baseline_n"] == 3
    assert last["premium_z"] == pytest.approx((5500 - 220) / 110)  # last three: 110, 220, 330
    cfg = Config()
    cfg.flow.rolling_ttl_s = 2
    got = packets(run([pr(0), pr(1000), pr(5000)], cfg=cfg))  # 4 s idle > 2 s TTL
    assert got["baseline_n"].to_list() == [0, 1, 0]


# -- event calendar: no look-ahead -------------------------------------------------------
def test_calendar_uses_only_events_known_at_the_packet(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    rows = [
        {"symbol": "SPY", "event_date": "2025-11-28", "announced_ts": T0 + 10 * S},
        {"underlying": "SPY", "event_ts": "2025-11-26T13:00:00Z"},  # no availability: unused
        {"symbol": "SPY", "event_date": "2025-11-20", "available_ts": "2025-11-01"},  # past
    ]
    path.write_text(json.dumps(rows))
    cfg = Config()
    cfg.flow.event_calendar_path = str(path)
    got = packets(run([pr(0), pr(9000), pr(9700)], cfg=cfg))
    # packet ts = first print + 500 ms: 9.5 s (not yet known) and 10.1 s (known)
    assert got["ts"].to_list() == [T0 + 500 * MS, T0 + 9500 * MS, T0 + 10_200 * MS]
    assert got["days_to_event"].to_list() == [None, None, 3]
    assert got["event_before_expiry"].to_list() == [None, None, False]  # expires 11/25


# -- cancels -----------------------------------------------------------------------------
def test_cancel_before_the_close_removes_the_print() -> None:
    res = run([pr(0, size=10), pr(100, size=20, exch="X"), pr(300, size=20, exch="X", flags=CXL)])
    (row,) = packets(res).iter_rows(named=True)
    assert row["count"] == 1 and row["total_size"] == 10 and row["status"] == "new"


def test_cancel_after_the_close_issues_a_correction() -> None:
    prints = [pr(0, size=10), pr(100, size=20, exch="X"), pr(2000, size=20, exch="X", flags=CXL)]
    for steps in (None, [600, 1500], [100, 200, 700, 2100]):
        res = run(prints, steps=steps)
        enr = res[ev.OPTIONS_ENRICHED]
        got = packets(res)
        assert got["status"].to_list() == ["new", "correction"]
        first, fix = got.row(0, named=True), got.row(1, named=True)
        assert first["total_size"] == 30 and fix["total_size"] == 10 and fix["count"] == 1
        assert fix["corrects"] == first["id"] and fix["id"] != first["id"]
        assert fix["ts"] == T0 + 2000 * MS  # decided when the cancel arrived
        assert fix["retracted"] == [enr["id"][1]]
        assert fix["evidence"] == [enr["id"][0], enr["id"][2]]  # remaining member + the cancel
        assert fix["premium"] == pytest.approx(1100.0) and fix["day_volume"] == 10


def test_cancelling_every_member_retracts_the_packet() -> None:
    res = run([pr(0, size=10), pr(2000, size=10, flags=CXL), pr(3000, size=5)])
    got = packets(res)
    assert got["status"].to_list() == ["new", "retracted", "new"]
    dead = got.row(1, named=True)
    assert dead["count"] == 0 and dead["premium"] == 0.0 and dead["corrects"] == got["id"][0]
    assert got["day_volume"].to_list() == [10, 0, 5]  # the cancel rewinds today's volume


def test_second_cancel_corrects_the_correction() -> None:
    prints = [
        pr(0, size=1),
        pr(10, size=2, exch="X"),
        pr(20, size=3, exch="I"),
        pr(1000, size=2, exch="X", flags=CXL),
        pr(1500, size=3, exch="I", flags=CXL),
    ]
    got = packets(run(prints, steps=[1200]))
    assert got["status"].to_list() == ["new", "correction", "correction"]
    assert got["corrects"].to_list() == [None, got["id"][0], got["id"][1]]
    assert got["total_size"].to_list() == [6, 4, 1]


# -- cancels rewind baselines and repeat windows ------------------------------------------
_Z_COLS = ("premium_z", "size_z", "spread_z", "root_premium_z", "root_size_z", "baseline_n")
#: earlier packets of the contract (one a second, sizes that vary) and of the root
_HISTORY = [pr(i * 1000, size=s) for i, s in enumerate([10, 14, 9, 12, 20, 11, 8, 15])]
_HISTORY += [pr(i * 1000 + 300, size=7 + i, symbol=SPY_P) for i in range(4)]


def _quotes_for(prints: list[dict]) -> list[dict]:
    return [{**Q, "symbol": p["symbol"], "ts": p["ts"] - MS} for p in prints]


def _after_cancel(prints: list[dict], steps: list[int] | None = None) -> dict:
    """The last new packet of a run (the packet after the cancel)."""
    got = packets(run(prints, _quotes_for(prints), steps=steps)).filter(pl.col("status") == "new")
    return got.row(-1, named=True)


@pytest.mark.parametrize("steps", [None, [9_000, 10_400, 11_000], [10_600, 12_100]])
def test_a_correction_rewinds_the_baselines(steps: list[int] | None) -> None:
    """A packet corrected by a cancel counts in the baselines with its corrected values:
    the next packet's z-scores are those of a run where the cancelled print never was."""
    packet = [pr(10_000, size=30), pr(10_100, size=200, exch="X")]  # the second is cancelled
    cancel = pr(11_000, size=200, exch="X", flags=CXL)
    after = pr(12_000, size=25)
    with_cancel = _after_cancel([*_HISTORY, *packet, cancel, after], steps)
    never = _after_cancel([*_HISTORY, packet[0], after])
    no_rewind_z = _after_cancel([*_HISTORY, *packet, after])["premium_z"]
    assert {c: with_cancel[c] for c in _Z_COLS} == {c: never[c] for c in _Z_COLS}
    assert with_cancel["premium_z"] != no_rewind_z  # the cancelled print mattered


@pytest.mark.parametrize("steps", [None, [10_200, 11_500]])
def test_a_retraction_rewinds_the_baselines(steps: list[int] | None) -> None:
    """A packet retracted by a cancel leaves the baselines (window not full): exact."""
    gone = pr(10_000, size=300)
    cancel = pr(11_000, size=300, flags=CXL)
    after = pr(12_000, size=25)
    with_cancel = _after_cancel([*_HISTORY, gone, cancel, after], steps)
    never = _after_cancel([*_HISTORY, after])
    assert {c: with_cancel[c] for c in _Z_COLS} == {c: never[c] for c in _Z_COLS}
    assert with_cancel["baseline_n"] == 8


def test_a_rewind_after_a_checkpoint_restore() -> None:
    """The observations' packet keys are in the checkpoint: a cancel that arrives after
    a restore still rewinds the baselines exactly."""
    packet = [pr(10_000, size=30), pr(10_100, size=200, exch="X")]
    before = [*_HISTORY, *packet]
    later = [pr(11_000, size=200, exch="X", flags=CXL), pr(12_000, size=25)]

    def feed(engine: Engine, prints: list[dict], wm: int) -> list[pl.DataFrame]:
        out = engine.ingest(
            batch(
                wm,
                quotes=option_quotes(_quotes_for(prints)),
                prints=option_prints(prints),
            )
        )
        return [out[ev.FLOW_PACKETS]] if ev.FLOW_PACKETS in out else []

    first = Engine(Config())
    feed(first, before, T0 + 10_800 * MS)  # the packet is decided, the cancel not yet
    restored = Engine(Config())
    restored.compute.restore(first.compute.state())
    got = feed(restored, later, T0 + 10_800 * MS)
    got += [restored.flush().get(ev.FLOW_PACKETS, ev.empty_frame(ev.FLOW_PACKETS))]
    after = pl.concat(got).filter(pl.col("status") == "new").row(-1, named=True)
    never = _after_cancel([*_HISTORY, packet[0], pr(12_000, size=25)])
    assert {c: after[c] for c in _Z_COLS} == {c: never[c] for c in _Z_COLS}


def test_a_retraction_from_a_full_window_is_one_short() -> None:
    """The documented limit: a full window loses the retracted observation and does not
    get back the older one it had pushed out, until the key's next observation."""
    cfg = Config()
    cfg.flow.rolling_window_size = 4
    prints = [*_HISTORY, pr(10_000, size=300), pr(11_000, size=300, flags=CXL)]
    prints += [pr(12_000, size=25), pr(13_000, size=26)]
    got = packets(run(prints, _quotes_for(prints), cfg=cfg)).filter(
        (pl.col("status") == "new") & (pl.col("symbol") == SPY_C)
    )
    assert got["baseline_n"].to_list()[-3:] == [4, 3, 4]


def _hits(prints: list[dict], steps: list[int] | None = None) -> pl.DataFrame:
    got = packets(run(prints, _quotes_for(prints), steps=steps))
    return got.filter(pl.col("status") == "new")


@pytest.mark.parametrize("steps", [None, [25_000], [21_000, 26_000, 31_000]])
def test_a_retracted_hit_leaves_the_repeat_window(steps: list[int] | None) -> None:
    hits = [pr(i * 10_000, size=2000) for i in range(5)]  # $220k at the ask, 10 s apart
    cancel = pr(25_000, size=2000, flags=CXL)  # retracts the hit at 20 s
    with_cancel = _hits([*hits, cancel], steps)
    never = _hits([h for i, h in enumerate(hits) if i != 2])
    assert with_cancel["repeat_hits"].to_list() == [1, 2, 3, 3, 4]
    assert never["repeat_hits"].to_list() == [1, 2, 3, 4]


def test_a_correction_below_the_hit_premium_leaves_the_repeat_window() -> None:
    """A hit of two $12.1k prints ($24.2k) loses one to a cancel: $12.1k is no hit."""
    first = [pr(0, size=2000)]
    pair = [pr(10_000, size=110), pr(10_100, size=110, exch="X")]
    cancel = pr(11_000, size=110, exch="X", flags=CXL)
    later = [pr(20_000, size=2000)]
    got = _hits([*first, *pair, cancel, *later])
    assert got["repeat_hits"].to_list() == [1, 2, 2]
    assert _hits([*first, *pair, *later])["repeat_hits"].to_list() == [1, 2, 3]


def test_unmatched_and_too_old_cancels_change_nothing() -> None:
    cfg = Config()
    cfg.flow.cancel_lookback_ms = 1000
    res = run([pr(0, size=10), pr(800, size=99, flags=CXL), pr(1600, size=10, flags=CXL)], cfg=cfg)
    assert packets(res)["status"].to_list() == ["new"]  # 1600 - 500 (packet ts) > 1000
    assert res["_engine"].compute.packets.unmatched_cancels == 2


def test_packet_ids_are_unique_and_ts_never_goes_back() -> None:
    rng = np.random.default_rng(5)
    prints = [
        pr(
            float(t),
            size=int(rng.integers(1, 50)),
            exch="CXIZ"[int(rng.integers(0, 4))],
            symbol=(SPY_C, SPY_P)[int(rng.integers(0, 2))],
        )
        for t in np.sort(rng.uniform(0, 20_000, 300))
    ]
    got = packets(run(prints, steps=list(range(0, 20_000, 700))))
    assert got["id"].n_unique() == got.height
    assert got["ts"].is_sorted() and got["seq"].to_list() == list(range(got.height))
    assert got["count"].sum() == 300 and not any(math.isnan(v) for v in got["premium"].to_list())


def test_packet_input_policy_filters_what_is_clustered() -> None:
    prints = [pr(0, size=10), pr(1000, size=500)]  # SPY is an ETF: $50k minimum; $55k passes
    assert packets(run(prints))["count"].to_list() == [1, 1]
    cfg = Config()
    cfg.flow.packet_input = "smart-money"
    assert packets(run(prints, cfg=cfg))["total_size"].to_list() == [500]


def test_open_interest_file(tmp_path: Path) -> None:
    path = tmp_path / "oi.csv"
    path.write_text(f"symbol,open_interest,as_of\n{SPY_C},321,2025-11-24\n{SPY_P},7,2025-11-24\n")
    cfg = Config()
    cfg.flow.open_interest_path = str(path)
    got = packets(run([pr(0), pr(10, symbol=SPY_P)], cfg=cfg)).sort("symbol")
    assert got["open_interest"].to_list() == [321, 7]
    bad = tmp_path / "bad.csv"
    bad.write_text("sym,oi\nX,1\n")
    cfg.flow.open_interest_path = str(bad)
    with pytest.raises(ValueError, match="symbol and open_interest"):
        Engine(cfg)


def _naive_baseline(
    codes: np.ndarray, ts: np.ndarray, values: np.ndarray, window: int, ttl_ns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The definition, one observation at a time: the previous ``window`` of its key,
    forgotten after an idle gap longer than the TTL."""
    from islandflow_tui.engine.compute.baselines import SCALE, quantise

    q = quantise(values)
    hist: dict[int, list] = {}
    mean = np.full((len(codes), 3), np.nan)
    std = np.full((len(codes), 3), np.nan)
    count = np.zeros((len(codes), 3), dtype=np.int64)
    for i, (c, t) in enumerate(zip(codes.tolist(), ts.tolist(), strict=True)):
        seen = hist.setdefault(c, [])
        if seen and t - seen[-1][0] > ttl_ns:
            seen.clear()
        for j in range(3):
            xs = [v[j] for _, v in seen[-window:] if v[j] >= 0]
            count[i, j] = len(xs)
            if xs:
                mean[i, j] = np.mean(xs) * SCALE[j]
            if len(xs) > 1:
                std[i, j] = np.std(xs, ddof=1) * SCALE[j]
        seen.append((t, q[i]))
    return mean, std, count


@given(
    rows=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 40), st.integers(0, 60), st.integers(-1, 60)),
        min_size=1,
        max_size=70,
    ),
    window=st.integers(2, 6),
    cuts=st.lists(st.integers(0, 70), max_size=6),
)
@settings(max_examples=150, deadline=None)
def test_baselines_match_the_definition_for_any_batching(
    rows: list[tuple[int, int, int, int]], window: int, cuts: list[int]
) -> None:
    from islandflow_tui.engine.compute.baselines import RollingBaselines

    rows = sorted(rows, key=lambda r: r[1])
    codes = np.array([r[0] for r in rows], dtype=np.int64)
    ts = np.array([r[1] for r in rows], dtype=np.int64) * 500 * MS
    values = np.array(
        [[r[2] * 100.0, float(r[2] % 7), np.nan if r[3] < 0 else r[3] / 1e4] for r in rows]
    )
    cfg = FlowConfig()
    cfg.rolling_window_size = window
    cfg.rolling_ttl_s = 3
    expected = _naive_baseline(codes, ts, values, window, 3 * S)
    baselines = RollingBaselines(cfg)
    bounds = sorted({c % (len(rows) + 1) for c in cuts} | {0, len(rows)})
    parts = [
        baselines.score("contract", codes[a:b], ts[a:b], values[a:b]) for a, b in pairwise(bounds)
    ]
    for got, want in zip(
        (np.vstack([p[i] for p in parts]) for i in range(3)), expected, strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_repeat_windows_checkpoint_rows_and_restore() -> None:
    """The repeat windows' checkpoint rows are key by key, oldest first, with a hit
    whose id is not assigned yet kept as null; restoring them gives the same windows."""
    from collections import deque

    from islandflow_tui.engine.compute.packets import Packets

    p = Packets(Config())
    p._repeat = {
        (7, -1): deque([[50, 11, 2_000_000, 901]]),
        (3, 1): deque([[10, 1, 2_500_000, 900], [20, 2, 3_000_000, None]]),
    }
    p._repeat_cents = {(7, -1): 2_000_000, (3, 1): 5_500_000}
    frame = p._repeat_frame()
    assert frame.schema == pl.Schema(
        dict.fromkeys(("cid", "side", "first_ts", "_pkey", "premium_cents", "id"), pl.Int64)
    )
    assert frame.rows() == [
        (3, 1, 10, 1, 2_500_000, 900),
        (3, 1, 20, 2, 3_000_000, None),
        (7, -1, 50, 11, 2_000_000, 901),
    ]
    p._repeat[(3, 1)][1][3] = 902  # every id assigned: the numpy path, same rows
    assert p._repeat_frame().rows()[1] == (3, 1, 20, 2, 3_000_000, 902)
    q = Packets(Config())
    q._restore_repeats(p._repeat_frame())
    assert {k: list(v) for k, v in q._repeat.items()} == {k: list(v) for k, v in p._repeat.items()}
    assert q._repeat_cents == p._repeat_cents
    assert Packets(Config())._repeat_frame().height == 0


def test_spot_tracker_groups_by_root_and_ignores_a_batch_of_unusable_quotes() -> None:
    """The root grouping (an Enum over the roots seen) gives each root its rows in
    (ts, order) order, new roots join later, and a batch whose every quote is crossed
    or bidless adds nothing (it once indexed an empty grouping)."""
    from islandflow_tui.engine.compute.packets import SpotTracker

    def quotes(rows: list[tuple[str, int, int, float, float]]) -> pl.DataFrame:
        return pl.DataFrame(
            rows, schema=["symbol", "ts", "seq", "bid", "ask"], orient="row"
        ).with_columns(pl.col("ts", "seq").cast(pl.Int64))

    tracker = SpotTracker()
    tracker.add(quotes([("SPY", 20, 2, 580.0, 580.2), ("QQQ", 10, 1, 500.0, 500.2)]), None)
    tracker.add(quotes([("SPY", 30, 3, 0.0, 580.2), ("QQQ", 40, 4, 501.0, 500.0)]), None)
    tracker.add(quotes([("IWM", 15, 5, 220.0, 220.2), ("SPY", 5, 6, 579.0, 579.2)]), None)
    state = tracker.state()
    assert state["root"].to_list() == ["IWM", "QQQ", "SPY", "SPY"]
    assert state["ts"].to_list() == [15, 10, 5, 20]
    got = tracker.lookup(np.array(["SPY", "QQQ", "IWM"], dtype=object), np.array([25, 25, 25]))
    assert got.tolist() == [580.1, 500.1, 220.1]
