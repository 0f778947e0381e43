"""Legged (single-leg) structures judged against the underlying's own single-leg rate on
the venue (structures.py "Legged"): the expected number of chance partners within the
structure window, its boundary, what it counts, and its checkpoint."""

from __future__ import annotations

import polars as pl
import pytest

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from tests.helpers import MS, batch, option_prints, option_quotes
from tests.test_structures import MLEG, T0, leg, structures, trace

S = 1000 * MS
#: one chance partner expected per this many background packets in the last second
PER_PACKET = (1 * MS) / (1 * S)  # structure window 1 ms / 1 s observed


def _cfg(max_partners: float) -> Config:
    cfg = Config()
    cfg.flow.legged_rate_window_ms = 1000
    cfg.flow.legged_max_chance_partners = max_partners
    return cfg


def _background(
    n: int, *, size: int = 10, exch: str = "C", flags: int = 0, strike: int = 500
) -> list[dict]:
    """``n`` single-leg packets of SPY on one venue in the second before T0 (distinct
    contracts, 20 ms apart: no two group, none is a structure)."""
    return [
        {
            **leg("P", strike + i, "buy", size, exch=exch, flags=flags),
            "ts": T0 - S + 50 * MS + i * 20 * MS,
        }
        for i in range(n)
    ]


PAIR = [leg("C", 580, "buy"), leg("C", 585, "sell")]  # a legged 1:1 vertical at T0


@pytest.mark.parametrize(("n", "emitted"), [(2, True), (3, True), (4, False)])
def test_chance_partners_boundary(n: int, emitted: bool) -> None:
    """Threshold 3 packets' worth: 2 (below) and 3 (at) are labelled, 4 (above) not."""
    cfg = _cfg(3 * PER_PACKET)
    got = structures([*_background(n), *PAIR], cfg=cfg)
    assert (got.height == 1) is emitted
    if emitted:
        item = trace(got.row(0, named=True))["legged.chance_partners"]
        assert item["value"] == n * PER_PACKET and item["passed"]
        assert item["threshold"] == 3 * PER_PACKET


def test_only_big_single_leg_packets_on_the_venue_count() -> None:
    """Tiny (< 10 lots), multi-leg and other-venue packets are no chance partners."""
    cfg = _cfg(0.5 * PER_PACKET)
    noise = [
        *_background(5, size=9),
        *_background(5, exch="X", strike=510),
        *_background(5, flags=MLEG, strike=520),
    ]
    row = structures([*noise, *PAIR], cfg=cfg).row(0, named=True)
    assert trace(row)["legged.chance_partners"]["value"] == 0.0
    assert structures([*_background(1), *PAIR], cfg=cfg).height == 0


def test_multi_leg_groups_are_not_judged() -> None:
    cfg = _cfg(0.0)
    flagged = [leg("C", 580, "buy", flags=MLEG), leg("C", 585, "sell", flags=MLEG)]
    row = structures([*_background(8), *flagged], cfg=cfg).row(0, named=True)
    assert row["label"] == "vertical" and "legged.chance_partners" not in trace(row)
    assert structures([*_background(8), *PAIR], cfg=cfg).height == 0


def test_nothing_observed_expects_no_partner() -> None:
    """The first second a session sees gives no rate (0 seconds observed before it)."""
    row = structures(PAIR, cfg=_cfg(0.0)).row(0, named=True)
    assert trace(row)["legged.chance_partners"]["value"] == 0.0


def _run(prints: list[dict], cut: int | None, restore: bool) -> pl.DataFrame:
    cfg = _cfg(3 * PER_PACKET)
    quotes = [
        {"ts": T0 - 2 * S, "symbol": s, "bid": 2.00, "ask": 2.10, "bid_size": 7, "ask_size": 9}
        for s in sorted({p["symbol"] for p in prints})
    ]
    engine = Engine(cfg)
    out = []
    lo = 0
    for wm in [*([cut] if cut is not None else []), T0 + 5 * S]:
        part = [p for p in prints if lo <= p["ts"] < wm]
        qs = quotes if lo == 0 else []
        got = engine.ingest(batch(wm, quotes=option_quotes(qs), prints=option_prints(part)))
        out.append(got.get(ev.FLOW_STRUCTURES, ev.empty_frame(ev.FLOW_STRUCTURES)))
        lo = wm
        if restore and wm == cut:
            state = engine.checkpoint()
            engine = Engine(cfg)
            engine.restore(state)
    out.append(engine.flush().get(ev.FLOW_STRUCTURES, ev.empty_frame(ev.FLOW_STRUCTURES)))
    return pl.concat(out)


@pytest.mark.parametrize("cut", [T0 - S // 2, T0 - 1, T0 + MS // 2, T0 + S + MS])
def test_counts_survive_a_checkpoint_and_any_cut(cut: int) -> None:
    """3 background packets, a vertical at T0 (3 expected: at the threshold) and one a
    second later (its second before holds the first pair's 2 legs): the same structures
    straight, cut anywhere, or cut and restored from a checkpoint."""
    later = [
        {**p, "ts": p["ts"] + S, "symbol": p["symbol"].replace("251128", "251205")} for p in PAIR
    ]
    prints = [*_background(3), *PAIR, *later]
    straight = _run(prints, None, restore=False)
    assert straight["label"].to_list() == ["vertical", "vertical"]
    values = [trace(r)["legged.chance_partners"]["value"] for r in straight.iter_rows(named=True)]
    assert values == [3 * PER_PACKET, 2 * PER_PACKET]
    for restore in (False, True):
        got = _run(prints, cut, restore)
        assert got.drop("seq", "id").equals(straight.drop("seq", "id"))


@pytest.mark.parametrize(("window_ms", "counted"), [(1000, 0), (1999, 0), (2000, 3)])
def test_rate_window_boundary(window_ms: int, counted: int) -> None:
    """Background two seconds before the pair's second counts only once the rate
    window holds two whole seconds (the window is whole seconds: 1 999 ms is one)."""
    cfg = _cfg(1.0)
    cfg.flow.legged_rate_window_ms = window_ms
    early = [{**p, "ts": p["ts"] - S} for p in _background(3)]  # second b - 2
    first = [{**leg("P", 600, "buy", 9), "ts": T0 - 2 * S - 500 * MS}]  # starts the session
    row = structures([*first, *early, *PAIR], cfg=cfg).row(0, named=True)
    seen = min(2, window_ms // 1000)
    want = counted * (1 * MS / (seen * S))
    assert trace(row)["legged.chance_partners"]["value"] == want
