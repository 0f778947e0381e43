"""Equities streams are identical for any batch partition and across checkpoint/restore;
the synthetic market exercises every equities rule."""

from __future__ import annotations

from itertools import pairwise

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.events import Cond
from tests.helpers import equity_prints, equity_quotes

T0 = 1_764_081_000_000_000_000
MS = ev.NS_PER_MS
EQ = (ev.EQUITIES_JOINS, ev.DARK_INFERRED, ev.CANDLES)


def small_config() -> Config:
    """Windows small enough that a few seconds of events cross every boundary."""
    cfg = Config()
    d = cfg.dark
    d.window_ms = 1500
    d.cooldown_ms = 700
    d.min_block_size = 800
    d.min_accum_size = 900
    d.min_accum_count = 3
    d.min_print_size = 100
    d.max_evidence = 3
    d.level_interval_ms = 1000
    d.level_min_volume = 500
    d.level_min_share = 0.1
    d.level_growth = 0.3
    cfg.candles.intervals_ms = [1000, 2000]
    cfg.candles.update_ms = 250
    return cfg


quote = st.tuples(
    st.just("q"),
    st.integers(0, 6_000),
    st.sampled_from(["AAA", "BBB"]),
    st.integers(995, 1005),
    st.integers(1, 3),
)
trade = st.tuples(
    st.just("p"),
    st.integers(0, 6_000),
    st.sampled_from(["AAA", "BBB"]),
    st.integers(9_940, 10_060),  # 1e-3 dollars: sub-pennies included
    st.integers(1, 1000),
    st.booleans(),
    st.sampled_from([0, 0, 0, int(Cond.ODD_LOT), int(Cond.LATE), int(Cond.CORRECTION)]),
)


def materialise(events: list[tuple]) -> list[tuple[int, str, dict]]:
    out = []
    for e in sorted(events, key=lambda e: (e[1], e[0])):
        ts = T0 + e[1] * MS
        if e[0] == "q":
            _, _, s, px, w = e
            out.append((ts, "q", {"ts": ts, "symbol": s, "bid": px / 100, "ask": (px + w) / 100}))
        else:
            _, _, s, px, size, off, flags = e
            row = {
                "ts": ts,
                "symbol": s,
                "price": px / 1000,
                "size": size,
                "venue": "D" if off else "Q",
                "off_exchange": off,
                "flags": flags,
            }
            out.append((ts, "p", row))
    return out


def batches(items: list[tuple[int, str, dict]], cuts: list[int]) -> list[ev.FeedBatch]:
    bounds = sorted({c % (len(items) + 1) for c in cuts} | {0, len(items)})
    out = []
    for lo, hi in pairwise(bounds):
        chunk = items[lo:hi]
        wm = items[hi][0] if hi < len(items) else chunk[-1][0] + 1
        out.append(
            ev.FeedBatch(
                {
                    ev.EQUITIES_QUOTES: equity_quotes([r for _, k, r in chunk if k == "q"]),
                    ev.EQUITIES_PRINTS: equity_prints([r for _, k, r in chunk if k == "p"]),
                },
                wm,
            )
        )
    return out


def run(feed: list[ev.FeedBatch], restore_at: int | None = None) -> dict[str, pl.DataFrame]:
    engine = Engine(small_config())
    got: dict[str, list[pl.DataFrame]] = {}
    for i, b in enumerate(feed):
        if restore_at is not None and i == restore_at:
            new = Engine(small_config())
            new._osi = engine._osi
            new.seq = dict(engine.seq)
            new.watermark = engine.watermark
            new.compute.restore(engine.compute.state())
            engine = new
        for stream, frame in engine.ingest(b).items():
            got.setdefault(stream, []).append(frame)
    for stream, frame in engine.flush().items():
        got.setdefault(stream, []).append(frame)
    assert engine.stats().rejected_total == 0
    return {s: pl.concat(got[s]) if s in got else ev.empty_frame(s) for s in EQ}


def assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    for stream in EQ:
        assert a[stream].equals(b[stream]), stream


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(st.one_of(quote, trade, trade, trade), min_size=1, max_size=90),
    cuts=st.lists(st.integers(0, 10_000), max_size=14),
)
# an accumulation fired by a print at a level boundary: the level at that boundary
# was released when the watermark reached it, before the print (found by hypothesis)
@example(
    events=[
        ("q", 0, "AAA", 995, 1),
        ("p", 4501, "BBB", 9940, 250, True, 0),
        ("p", 5000, "BBB", 9940, 250, True, 0),
        ("p", 6000, "BBB", 9940, 400, True, 0),
    ],
    cuts=[],
)
def test_equities_streams_identical_for_any_batching(events: list[tuple], cuts: list[int]) -> None:
    items = materialise(events)
    reference = run(batches(items, []))
    assert_same(run(batches(items, cuts)), reference)
    assert_same(run(batches(items, list(range(len(items))))), reference)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(st.one_of(quote, trade, trade), min_size=5, max_size=60),
    cuts=st.lists(st.integers(0, 10_000), min_size=2, max_size=8),
)
def test_checkpoint_restore_continues_identically(events: list[tuple], cuts: list[int]) -> None:
    feed = batches(materialise(events), cuts)
    reference = run(feed)
    for at in range(1, len(feed)):
        assert_same(run(feed, restore_at=at), reference)


def test_synthetic_market_exercises_every_equities_rule_and_regroups_identically() -> None:
    from islandflow_tui.engine.ingest.synthetic import SyntheticMarket

    market = SyntheticMarket("active", seed=5, start_ns=T0, tick_ms=250)
    fine = [market.next_batch() for _ in range(800)]  # 200 s
    coarse = []
    for i in range(0, len(fine), 13):
        group = fine[i : i + 13]
        frames = {s: pl.concat([g.frames[s] for g in group]) for s in group[0].frames}
        coarse.append(ev.FeedBatch(frames, group[-1].watermark))

    def go(feed: list[ev.FeedBatch]) -> dict[str, pl.DataFrame]:
        engine = Engine(Config())
        got: dict[str, list[pl.DataFrame]] = {}
        for b in feed:
            for s, f in engine.ingest(b).items():
                got.setdefault(s, []).append(f)
        for s, f in engine.flush().items():
            got.setdefault(s, []).append(f)
        return {s: pl.concat(got[s]) for s in (*EQ, ev.EQUITIES_PRINTS) if s in got}

    a = go(fine)
    patterns = set(a[ev.DARK_INFERRED]["pattern"].to_list())
    assert patterns == {"block", "accumulation", "level"}
    joins = a[ev.EQUITIES_JOINS]
    assert joins.filter(pl.col("retail") & (pl.col("retail_side") == "buy")).height > 0
    assert joins.filter(pl.col("retail") & (pl.col("retail_side") == "sell")).height > 0
    assert set(joins["placement"].unique()) >= {"at_ask", "at_bid", "mid", "no_quote"}
    candles = a[ev.CANDLES]
    assert (
        candles.filter(pl.col("final")).height > 0 and candles.filter(~pl.col("final")).height > 0
    )
    assert set(candles["interval_ms"].unique()) == {60_000, 300_000}
    b = go(coarse)
    assert_same(a, b)


def test_synthetic_conditions_cover_the_table() -> None:
    from islandflow_tui.engine.ingest.synthetic import SyntheticMarket

    market = SyntheticMarket("active", seed=5, start_ns=T0, tick_ms=1000)
    prints = pl.concat([market.next_batch().frames[ev.EQUITIES_PRINTS] for _ in range(120)])
    flags = prints["flags"]
    for bit in (
        Cond.ODD_LOT,
        Cond.AVERAGE_PRICE,
        Cond.OUT_OF_SEQ,
        Cond.LATE,
        Cond.DERIVATIVELY_PRICED,
        Cond.ISO,
    ):
        assert (flags & int(bit) != 0).sum() > 0, bit
    assert prints.filter(pl.col("off_exchange"))["venue"].unique().to_list() == ["D"]
