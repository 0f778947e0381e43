"""Alerts: score, severity, cool-down, explanations, corrections (compute/alerts.py)."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from islandflow_tui.config import AlertConfig, Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.alerts import money, premium_points, score, severity
from islandflow_tui.engine.core import Engine
from tests.helpers import MS, SPY_C, batch, option_prints, option_quotes

T0 = 1_764_081_000_000_000_000  # 09:30 New York on the SPY 11/25 expiry: 0DTE
S = 1000 * MS
ISO = int(ev.Cond.ISO)
CXL = int(ev.Cond.CANCEL)


@pytest.mark.parametrize(
    ("premium", "points"),
    [(0.0, 0.0), (5_000.0, 0.0), (50_000.0, 35.0), (500_000.0, 70.0), (9e6, 70.0)],
)
def test_premium_points(premium: float, points: float) -> None:
    assert premium_points(premium) == pytest.approx(points)


def test_score_formula() -> None:
    assert score(50_000.0, 0.5, 2) == pytest.approx((35.0 + 10.0 + 10.0, 35.0, 10.0, 10.0))
    assert score(500_000.0, 1.0, 9)[0] == 100.0  # capped
    assert score(50_000.0, 0.5, 4)[3] == 20.0  # at most 20 points for hits


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (44.99, "low"),
        (45.0, "medium"),
        (45.01, "medium"),
        (79.99, "medium"),
        (80.0, "high"),
        (80.01, "high"),
    ],
)
def test_severity_boundaries(value: float, label: str) -> None:
    assert severity(value, AlertConfig()) == label


def test_money() -> None:
    assert [money(x) for x in (850.0, 412_300.0, 1_234_000.0)] == ["$850", "$412k", "$1.2M"]


def sweep(t_ms: float, size: int = 100, venues: str = "CXIZ") -> list[dict]:
    """An ISO call sweep at the ask: one print per venue, 30 ms apart."""
    return [
        {
            "ts": T0 + int((t_ms + 30 * i) * MS),
            "symbol": SPY_C,
            "price": 1.10,
            "size": size,
            "exchange": v,
            "flags": ISO,
        }
        for i, v in enumerate(venues)
    ]


def run(
    prints: list[dict], cfg: Config | None = None, steps: list[float] | None = None
) -> dict[str, pl.DataFrame]:
    engine = Engine(cfg or Config())
    quotes = sorted({p["ts"] - MS for p in prints})
    quotes_rows = [
        {"ts": t, "symbol": SPY_C, "bid": 1.00, "ask": 1.10, "bid_size": 3, "ask_size": 4}
        for t in quotes
    ]
    out: dict[str, list[pl.DataFrame]] = {}
    cuts = [T0 + int(c * MS) for c in (steps or [])] + [2**62]
    lo = 0
    for cut in cuts:
        fr = {
            "quotes": option_quotes([q for q in quotes_rows if lo <= q["ts"] < cut]),
            "prints": option_prints([p for p in prints if lo <= p["ts"] < cut]),
        }
        for k, v in engine.ingest(batch(cut if cut < 2**62 else 0, **fr)).items():
            out.setdefault(k, []).append(v)
        lo = cut
    for k, v in engine.flush().items():
        out.setdefault(k, []).append(v)
    return {k: pl.concat(v) for k, v in out.items()}


def test_sweep_alert_fields_and_explanation() -> None:
    got = run(sweep(0, size=200))
    (alert,) = got[ev.ALERTS].iter_rows(named=True)
    packet = got[ev.FLOW_PACKETS].row(0, named=True)
    hits = got[ev.CLASSIFIER_HITS]
    assert alert["kind"] == "large_bullish_call_sweep" and alert["direction"] == "bullish"
    assert alert["classifiers"] == ["large_bullish_call_sweep", "unusual_contract_spike"]
    assert alert["confidence"] == max(hits["confidence"].to_list())
    assert alert["explanation"] == (
        "SPY 0DTE 580C call sweep: 4 prints on 4 venues in 90 ms, $88k at/above ask (+unusual size)"
    )
    assert alert["evidence"] == [packet["id"], *sorted(hits["id"].to_list())]
    assert alert["source_id"] == packet["id"] and alert["status"] == "new"
    expected, *_ = score(88_000.0, max(hits["confidence"].to_list()), hits.height)
    assert alert["score"] == pytest.approx(expected) and alert["severity"] == severity(
        expected, AlertConfig()
    )
    conditions = [t["condition"] for t in alert["trace"]]
    assert conditions[:3] == [
        "score.premium_points",
        "score.confidence_points",
        "score.hits_points",
    ]
    assert "large_bullish_call_sweep" in conditions and "premium" in conditions  # the hit's trace


@pytest.mark.parametrize(("gap_s", "issued"), [(29.999, 1), (30.0, 2), (30.001, 2)])
def test_cooldown_boundary(gap_s: float, issued: int) -> None:
    got = run(sweep(0) + sweep(gap_s * 1000))
    alerts = got[ev.ALERTS]
    assert alerts.height == issued
    assert got[ev.FLOW_PACKETS].height == 2
    if issued == 2:
        assert alerts["suppressed"].to_list() == [0, 0]


def test_cooldown_counts_what_it_held_back_and_lets_escalations_through() -> None:
    got = run(sweep(0) + sweep(5_000) + sweep(10_000) + sweep(40_000))
    alerts = got[ev.ALERTS]
    assert alerts.height == 2 and alerts["suppressed"].to_list() == [0, 2]
    big = run(sweep(0) + sweep(5_000, size=2000))  # +10 points or more: not held back
    assert big[ev.ALERTS].height == 2
    assert big[ev.ALERTS]["score"][1] >= big[ev.ALERTS]["score"][0] + 10


def test_cooldown_is_per_kind() -> None:
    sold_block = {
        "ts": T0 + 5 * S,
        "symbol": SPY_C,
        "price": 1.0,
        "size": 600,
        "exchange": "C",
        "flags": 0,
    }  # same contract, another kind
    got = run([*sweep(0), sold_block])
    alerts = got[ev.ALERTS]
    assert alerts["kind"].to_list() == ["large_bullish_call_sweep", "block"]
    assert alerts["classifiers"][1].to_list() == [
        "block",
        "large_call_overwrite",
        "unusual_contract_spike",
    ]
    assert alerts["direction"][1] == "bearish"


def test_min_score_drops_low_alerts() -> None:
    cfg = Config()
    cfg.alerts.min_score = 99.0
    assert ev.ALERTS not in run(sweep(0), cfg)


def test_cancel_reissues_the_alert_as_a_correction() -> None:
    prints = [*sweep(0, size=200), {**sweep(0, size=200)[3], "ts": T0 + 2 * S, "flags": CXL}]
    for steps in (None, [700, 1500]):
        got = run(prints, steps=steps)
        alerts = got[ev.ALERTS]
        assert alerts["status"].to_list() == ["new", "correction"]
        assert alerts["corrects"].to_list() == [None, alerts["id"][0]]
        fixed = got[ev.FLOW_PACKETS].row(1, named=True)
        assert (
            alerts["source_id"][1] == fixed["id"]
            and fixed["corrects"] == got[ev.FLOW_PACKETS]["id"][0]
        )
        assert alerts["explanation"][1].startswith("corrected: SPY 0DTE 580C call sweep: 3 prints")


def test_cancelling_the_only_print_retracts_the_alert() -> None:
    block = {"ts": T0, "symbol": SPY_C, "price": 1.10, "size": 900, "exchange": "C", "flags": 0}
    got = run([block, {**block, "ts": T0 + 3 * S, "flags": CXL}])
    alerts = got[ev.ALERTS]
    assert alerts["status"].to_list() == ["new", "retracted"]
    gone = alerts.row(1, named=True)
    assert gone["score"] == 0.0 and gone["corrects"] == alerts["id"][0] and gone["hits"] == 0
    assert gone["explanation"].startswith("retracted: SPY 0DTE 580C block")


@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 100), st.integers(0, 40)),
        max_size=60,
    )
)
def test_trimming_keeps_exactly_the_unexpired_entries_in_order(steps) -> None:
    """The expiry heap forgets what a filter of the whole dict would, and keeps the
    rest in the same order, whatever re-issues (a correction moves a source's ts)."""
    from islandflow_tui.engine.compute.alerts import Alerts

    alerts = Alerts(Config().alerts, Config().classifier, lookback_ns=0)
    reference: dict[int, list] = {}
    for n, (sid, ts, horizon) in enumerate(steps):
        alerts._issued = [sid]
        alerts._horizon = horizon
        alerts.commit(
            pl.DataFrame(
                {
                    "source_id": [sid],
                    "_old_src": [None],
                    "ts": [ts],
                    "explanation": [""],
                    "id": [n],
                },
                schema_overrides={"_old_src": pl.Int64},
            )
        )
        reference[sid] = [ts, "", n]
        reference = {k: v for k, v in reference.items() if v[0] >= horizon}
        assert list(alerts._by_source.items()) == list(reference.items())
