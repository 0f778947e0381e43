"""Classifier thresholds (just below, at, just above), gates, confidence and traces."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from islandflow_tui.config import ClassifierConfig, Config, FlowConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.classifiers import Classifiers, confidence_terms

CFG = ClassifierConfig()


def packet(**over: Any) -> dict[str, Any]:
    """A packet that fires nothing; tests switch on what they need."""
    row = {
        "ts": 1,
        "id": 100,
        "root": "SPY",
        "symbol": "SPY   251125C00580000",
        "right": "C",
        "status": "new",
        "complex": False,
        "kind": "plain",
        "tags": [],
        "side": "buy",
        "direction": "bullish",
        "count": 1,
        "total_size": 10,
        "max_size": 10,
        "premium": 1_000.0,
        "premium_z": None,
        "size_z": None,
        "baseline_n": 0,
        "nbbo_coverage": 1.0,
        "aggressor_ratio": 1.0,
        "dte": 10,
        "strike": 580.0,
        "spot": None,
        "open_interest": None,
        "day_volume": 10,
        "repeat_hits": 0,
        "_repeat_premium": 0.0,
    }
    row.update(over)
    return row


def fired(rows: list[dict[str, Any]], cfg: ClassifierConfig | None = None) -> list[set[str]]:
    frame = pl.DataFrame(
        rows,
        schema_overrides={
            "premium_z": pl.Float64,
            "size_z": pl.Float64,
            "spot": pl.Float64,
            "open_interest": pl.Int64,
            "tags": pl.List(pl.String),
        },
    ).with_columns(pl.int_range(0, len(rows)).cast(pl.Int64).alias("id"))
    hits = Classifiers(cfg or CFG, FlowConfig()).hits(frame, None)
    out: list[set[str]] = [set() for _ in rows]
    if hits is not None:
        for sid, name in zip(
            hits["source_id"].to_list(), hits["classifier"].to_list(), strict=True
        ):
            out[sid].add(name)
    return out


def check(name: str, below: dict, at: dict, above: dict, base: dict, expect: tuple) -> None:
    got = fired(
        [packet(**{**base, **below}), packet(**{**base, **at}), packet(**{**base, **above})]
    )
    assert tuple(name in g for g in got) == expect, got


SWEEP = {"kind": "sweep", "tags": ["sweep"], "count": 3, "premium": 50_000.0, "right": "C"}
EPS = 1e-9


@pytest.mark.parametrize(
    ("name", "field", "values", "base", "expect"),
    [
        (
            "large_bullish_call_sweep",
            "premium",
            (39_999.99, 40_000.0, 40_000.01),
            SWEEP,
            (False, True, True),
        ),
        ("large_bullish_call_sweep", "count", (2, 3, 4), SWEEP, (False, True, True)),
        (
            "large_bullish_call_sweep",
            "aggressor_ratio",
            (0.55 - EPS, 0.55, 0.55 + EPS),
            SWEEP,
            (False, True, True),
        ),
        (
            "large_bullish_call_sweep",
            "nbbo_coverage",
            (0.5 - EPS, 0.5, 0.5 + EPS),
            SWEEP,
            (False, True, True),
        ),
        (
            "large_bullish_call_sweep",
            "premium_z",
            (1.99, 2.0, 2.01),
            {**SWEEP, "premium": 1_000.0, "baseline_n": 12},
            (False, True, True),
        ),
        (
            "large_bullish_call_sweep",
            "baseline_n",
            (11, 12, 13),
            {**SWEEP, "premium": 1_000.0, "premium_z": 9.0},
            (False, True, True),
        ),
        (
            "large_bearish_put_sweep",
            "premium",
            (39_999.99, 40_000.0, 40_000.01),
            {**SWEEP, "right": "P", "direction": "bearish"},
            (False, True, True),
        ),
        (
            "unusual_contract_spike",
            "total_size",
            (399, 400, 401),
            {"premium": 30_000.0},
            (False, True, True),
        ),
        (
            "unusual_contract_spike",
            "premium",
            (19_999.99, 20_000.0, 20_000.01),
            {"total_size": 500},
            (False, True, True),
        ),
        (
            "unusual_contract_spike",
            "premium_z",
            (2.49, 2.5, 2.51),
            {"total_size": 500, "premium": 30_000.0, "baseline_n": 12, "size_z": 0.0},
            (False, True, True),
        ),
        (
            "unusual_contract_spike",
            "size_z",
            (1.99, 2.0, 2.01),
            {"total_size": 500, "premium": 30_000.0, "baseline_n": 12, "premium_z": 0.0},
            (False, True, True),
        ),
        (
            "large_call_overwrite",
            "premium",
            (39_999.99, 40_000.0, 40_000.01),
            {"side": "sell"},
            (False, True, True),
        ),
        (
            "large_put_write",
            "premium",
            (39_999.99, 40_000.0, 40_000.01),
            {"side": "sell", "right": "P"},
            (False, True, True),
        ),
        ("far_dated_conviction", "dte", (59, 60, 61), {"premium": 50_000.0}, (False, True, True)),
        (
            "far_dated_conviction",
            "premium",
            (39_999.99, 40_000.0, 40_000.01),
            {"dte": 90},
            (False, True, True),
        ),
        (
            "zero_dte_gamma_punch",
            "strike",
            (101.01, 101.0, 100.99),
            {"dte": 0, "spot": 100.0, "premium": 25_000.0, "total_size": 500},
            (False, True, True),
        ),
        (
            "zero_dte_gamma_punch",
            "premium",
            (19_999.99, 20_000.0, 20_000.01),
            {"dte": 0, "spot": 580.0, "total_size": 500},
            (False, True, True),
        ),
        (
            "zero_dte_gamma_punch",
            "total_size",
            (399, 400, 401),
            {"dte": 0, "spot": 580.0, "premium": 25_000.0},
            (False, True, True),
        ),
        (
            "zero_dte_gamma_punch",
            "dte",
            (-1, 0, 1),
            {"spot": 580.0, "premium": 25_000.0, "total_size": 500},
            (False, True, False),
        ),
        (
            "block",
            "premium",
            (19_999.99, 20_000.0, 20_000.01),
            {"tags": ["block"], "max_size": 600},
            (False, True, True),
        ),
        (
            "repeat_hitter",
            "_repeat_premium",
            (99_999.99, 100_000.0, 100_000.01),
            {"tags": ["repeat"], "repeat_hits": 5},
            (False, True, True),
        ),
        # opening: size > open interest - (day volume - size); room here is 100
        (
            "opening_likely",
            "total_size",
            (99, 100, 101),
            {"open_interest": 100},
            (False, False, True),
        ),
    ],
)
def test_threshold_boundaries(
    name: str, field: str, values: tuple, base: dict, expect: tuple
) -> None:
    extra = {}
    if name == "opening_likely":  # keep day volume = size, so the room stays 100
        rows = [packet(**{**base, field: v, "day_volume": v}) for v in values]
        got = fired(rows)
        assert tuple(name in g for g in got) == expect, got
        return
    check(name, {field: values[0]}, {field: values[1], **extra}, {field: values[2]}, base, expect)


def test_opening_likely_needs_open_interest() -> None:
    assert "opening_likely" not in fired([packet(total_size=10_000)])[0]


def test_directional_gates_and_neutral_fallback() -> None:
    (sold_sweep,) = fired([packet(**{**SWEEP, "side": "sell", "direction": "bearish"})])
    assert "large_bullish_call_sweep" not in sold_sweep  # the seed's sweep classifiers are bought
    frame_rows = [
        packet(
            tags=["block"],
            max_size=600,
            premium=50_000.0,
            aggressor_ratio=0.5,
            side="buy",
            direction="bullish",
        )
    ]
    frame = pl.DataFrame(
        frame_rows,
        schema_overrides={
            "premium_z": pl.Float64,
            "size_z": pl.Float64,
            "spot": pl.Float64,
            "open_interest": pl.Int64,
        },
    )
    hits = Classifiers(CFG, FlowConfig()).hits(frame, None)
    assert hits is not None and hits["direction"].to_list() == ["neutral"]  # side not clear


def test_retracted_packets_never_fire() -> None:
    assert fired([packet(**SWEEP, status="retracted")]) == [set()]
    assert "large_bullish_call_sweep" in fired([packet(**SWEEP, status="correction")])[0]


def test_confidence_formula_and_trace() -> None:
    frame = pl.DataFrame(
        [
            packet(
                **{**SWEEP, "premium": 160_000.0, "aggressor_ratio": 0.775, "nbbo_coverage": 0.75}
            )
        ],
        schema_overrides={
            "premium_z": pl.Float64,
            "size_z": pl.Float64,
            "spot": pl.Float64,
            "open_interest": pl.Int64,
        },
    )
    hits = Classifiers(CFG, FlowConfig()).hits(frame, None)
    assert hits is not None
    (row,) = hits.filter(pl.col("classifier") == "large_bullish_call_sweep").iter_rows(named=True)
    # excess (160k / 40k - 1) / 3 = 1; aggression (0.775 - 0.55) / 0.45 = 0.5; coverage 0.5
    assert row["confidence"] == pytest.approx(0.4 + 0.3 * 1 + 0.2 * 0.5 + 0.1 * 0.5)
    assert row["confidence"] == pytest.approx(confidence_terms(0.775, 0.75, 1.0, CFG))
    trace = {t["condition"]: t for t in row["trace"]}
    assert trace["premium"] == {
        "condition": "premium",
        "value": 160_000.0,
        "threshold": 40_000.0,
        "passed": True,
    }
    assert trace["premium_z"]["value"] is None and not trace["premium_z"]["passed"]
    assert trace["aggressor_ratio"]["threshold"] == 0.55
    assert row["evidence"] == [100] and row["direction"] == "bullish" and row["source"] == "packet"


STRUCT = {
    "ts": 5,
    "id": 7,
    "root": "SPY",
    "label": "vertical",
    "variant": "debit",
    "direction": "bullish",
    "premium": 30_000.0,
    "total_size": 200,
    "confidence": 1.0,
}


@pytest.mark.parametrize(
    ("field", "values"),
    [("premium", (19_999.99, 20_000.0, 20_000.01)), ("confidence", (0.39, 0.4, 0.41))],
)
def test_structure_classifier_boundaries(field: str, values: tuple) -> None:
    frame = pl.DataFrame([{**STRUCT, "id": i, field: v} for i, v in enumerate(values)])
    hits = Classifiers(CFG, FlowConfig()).hits(None, frame)
    assert hits is not None and hits["source_id"].to_list() == [1, 2]
    assert set(hits["variant"].to_list()) == {"debit"}
    assert set(hits["classifier"].to_list()) == {"vertical_spread"}


@pytest.mark.parametrize(
    ("label", "variant", "name"),
    [
        ("straddle", "long_vol", "straddle"),
        ("strangle", "short_vol", "strangle"),
        ("ladder", "accumulation", "ladder_accumulation"),
        ("roll", "out", "roll"),
    ],
)
def test_structure_classifiers(label: str, variant: str, name: str) -> None:
    frame = pl.DataFrame([{**STRUCT, "label": label, "variant": variant}])
    hits = Classifiers(CFG, FlowConfig()).hits(None, frame)
    assert hits is not None and hits["classifier"].to_list() == [name]
    assert hits["confidence"][0] == pytest.approx(1.0 * (0.7 + 0.3 * (1.5 - 1) / 3))
    assert hits["evidence"].to_list() == [[7]] and hits["symbol"].to_list() == [None]


def test_ladder_distribution_is_not_accumulation() -> None:
    frame = pl.DataFrame([{**STRUCT, "label": "ladder", "variant": "distribution"}])
    assert Classifiers(CFG, FlowConfig()).hits(None, frame) is None


def test_hits_in_the_engine_have_ids_traces_and_sources() -> None:
    from islandflow_tui.engine.core import Engine
    from tests.helpers import MS, SPY_C, batch, option_prints, option_quotes

    t0 = 1_764_081_000_000_000_000
    engine = Engine(Config())
    quotes = [
        {"ts": t0 - MS, "symbol": SPY_C, "bid": 1.0, "ask": 1.1, "bid_size": 5, "ask_size": 7}
    ]
    prints = [
        {
            "ts": t0 + i * 30 * MS,
            "symbol": SPY_C,
            "price": 1.1,
            "size": 200,
            "exchange": "CXIZ"[i],
            "flags": int(ev.Cond.ISO),
        }
        for i in range(4)
    ]
    engine.ingest(batch(0, quotes=option_quotes(quotes), prints=option_prints(prints)))
    out = engine.flush()
    hits = out[ev.CLASSIFIER_HITS]
    packet_id = out[ev.FLOW_PACKETS]["id"][0]
    assert set(hits["classifier"].to_list()) == {
        "large_bullish_call_sweep",
        "unusual_contract_spike",
    }
    assert (hits["source_id"] == packet_id).all() and hits["id"].n_unique() == hits.height
    assert all(len(t) >= 5 for t in hits["trace"].to_list())
