"""Derived output must not depend on how the same events are batched (DESIGN: Deterministic)."""

from __future__ import annotations

import itertools

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from tests.helpers import option_prints, option_quotes

T0 = 1_764_081_000_000_000_000
SYMBOLS = ["SPY   251125C00580000", "SPY   251125P00575000", "QQQ   251128C00510000"]

event = st.one_of(
    st.tuples(
        st.just("q"),
        st.integers(0, 3_000_000_000),
        st.sampled_from(SYMBOLS),
        st.integers(90, 110),
        st.integers(0, 4),
    ),
    st.tuples(
        st.just("p"),
        st.integers(0, 3_000_000_000),
        st.sampled_from(SYMBOLS),
        st.integers(85, 125),
        st.integers(1, 500),
    ),
)


def to_batches(events: list[tuple], cuts: list[int]) -> list[ev.FeedBatch]:
    """Split arrival-ordered events at ``cuts``; each batch promises the min ts still to come."""
    bounds = sorted({c % (len(events) + 1) for c in cuts} | {0, len(events)})
    batches = []
    for lo, hi in itertools.pairwise(bounds):
        chunk = events[lo:hi]
        rest = events[hi:]
        quotes = [
            {"ts": T0 + t, "symbol": s, "bid": px / 100, "ask": px / 100 + w * 0.01}
            for k, t, s, px, w in chunk
            if k == "q"
        ]
        prints = [
            {"ts": T0 + t, "symbol": s, "price": px / 100, "size": sz}
            for k, t, s, px, sz in chunk
            if k == "p"
        ]
        wm = T0 + min((e[1] for e in rest), default=10**10)
        batches.append(
            ev.FeedBatch(
                {ev.OPTIONS_NBBO: option_quotes(quotes), ev.OPTIONS_PRINTS: option_prints(prints)},
                wm,
            )
        )
    return batches


def run(batches: list[ev.FeedBatch]) -> pl.DataFrame:
    engine = Engine(Config())
    out = []
    for b in batches:
        out.append(engine.ingest(b).get(ev.OPTIONS_ENRICHED))
    out.append(engine.flush().get(ev.OPTIONS_ENRICHED))
    assert engine.stats().rejected_total == 0
    frames = [f for f in out if f is not None]
    return pl.concat(frames) if frames else ev.empty_frame(ev.OPTIONS_ENRICHED)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(event, min_size=1, max_size=80).map(
        lambda evs: sorted(evs, key=lambda e: e[1])  # a feed delivers in time order...
    ),
    jitter=st.lists(st.integers(0, 3), max_size=20),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_enriched_identical_for_any_batching(events, jitter, cuts):
    # ...up to small swaps of neighbours (arrival order differs from ts order but every
    # event still arrives before the watermark passes it, because each batch's promise
    # is the min ts still to come)
    for i, j in enumerate(jitter):
        a, b = i % len(events), (i + j) % len(events)
        events[a], events[b] = events[b], events[a]
    reference = run(to_batches(events, []))
    chunked = run(to_batches(events, cuts))
    one_by_one = run(to_batches(events, list(range(len(events)))))
    assert reference.height == sum(1 for e in events if e[0] == "p")
    assert chunked.equals(reference)
    assert one_by_one.equals(reference)


def test_synthetic_market_batching_invariance():
    """The same synthetic events regrouped into coarser batches give identical output."""
    from islandflow_tui.engine.ingest.synthetic import SyntheticMarket

    market = SyntheticMarket("active", seed=3, start_ns=T0, tick_ms=50)
    fine = [market.next_batch() for _ in range(60)]
    coarse = []
    for i in range(0, len(fine), 7):
        group = fine[i : i + 7]
        frames = {s: pl.concat([g.frames[s] for g in group]) for s in group[0].frames}
        coarse.append(ev.FeedBatch(frames, group[-1].watermark))
    assert run(coarse).equals(run(fine))
