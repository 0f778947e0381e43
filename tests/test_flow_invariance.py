"""Every flow stream is identical for any batch partition, and across a checkpoint/restore.

DESIGN: "the same input events give byte-identical derived events, whether they
arrive live, from replay, in batches of 1 or 100 000."  The property test feeds the
same events (option prints with ISO / multi-leg / cancel flags, NBBO, equity quotes)
in random partitions to engines with small windows, so that packets, structures,
baselines (TTL included), repeats, cancels, corrections and the alert cool-down all
cross batch boundaries.
"""

from __future__ import annotations

from itertools import pairwise

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from tests.helpers import equity_quotes, option_prints, option_quotes

T0 = 1_764_081_000_000_000_000
MS = ev.NS_PER_MS
SYMBOLS = [
    "SPY   251125C00580000",
    "SPY   251125P00580000",
    "SPY   251125C00585000",
    "QQQ   251128C00510000",
]
VENUES = "CXIZ"
FLOW = (ev.OPTIONS_ENRICHED, ev.FLOW_PACKETS, ev.FLOW_STRUCTURES, ev.CLASSIFIER_HITS, ev.ALERTS)


def small_config() -> Config:
    """Windows small enough that a few seconds of events exercise every boundary."""
    cfg = Config()
    f, c, a = cfg.flow, cfg.classifier, cfg.alerts
    f.cluster_window_ms = 200
    f.structure_window_ms = 50
    f.repeat_window_ms = 3000
    f.repeat_min_hits = 2
    f.repeat_min_premium = 500.0
    f.rolling_window_size = 4
    f.rolling_ttl_s = 3
    f.cancel_lookback_ms = 2500
    f.block_min_size = 300
    f.structure_min_confidence = 0.3
    f.repeat_background_ms = 5000  # hits leave the 3 s window into the background
    f.repeat_min_surprise = 1.0  # passes and fails on a few hits
    f.legged_rate_window_ms = 2000  # legged groups judged on the seconds before them
    c.z_min_samples = 3
    c.sweep_min_premium = 2_000.0
    c.spike_min_premium = 1_000.0
    c.spike_min_size = 100
    c.write_min_premium = 2_000.0
    c.block_min_premium = 1_000.0
    c.repeat_min_premium = 1_000.0
    c.structure_min_premium = 100.0
    a.cooldown_ms = 1500
    return cfg


quote = st.tuples(
    st.just("q"),
    st.integers(0, 6_000),
    st.sampled_from(SYMBOLS),
    st.integers(95, 105),
    st.integers(1, 4),
    st.integers(1, 400),
    st.integers(1, 400),
)
trade = st.tuples(
    st.just("p"),
    st.integers(0, 6_000),
    st.sampled_from(SYMBOLS),
    st.integers(93, 112),
    st.integers(1, 500),
    st.sampled_from(VENUES),
    st.sampled_from([0, 0, 0, int(ev.Cond.ISO), int(ev.Cond.MULTI_LEG)]),
)
spot = st.tuples(st.just("e"), st.integers(0, 6_000), st.integers(57_900, 58_100))
cancel = st.tuples(st.just("c"), st.integers(0, 6_000), st.integers(0, 10_000))


def materialise(events: list[tuple]) -> list[tuple[int, str, dict]]:
    """(ts, kind, row) in arrival (= ts) order; a cancel copies an earlier print."""
    prints: list[dict] = []
    out: list[tuple[int, str, dict]] = []
    for e in sorted(events, key=lambda e: (e[1], e[0])):
        ts = T0 + e[1] * MS
        if e[0] == "q":
            _, _, s, px, w, bs, asz = e
            out.append(
                (
                    ts,
                    "q",
                    {
                        "ts": ts,
                        "symbol": s,
                        "bid": px / 100,
                        "ask": px / 100 + w / 100,
                        "bid_size": bs,
                        "ask_size": asz,
                    },
                )
            )
        elif e[0] == "p":
            _, _, s, px, size, venue, flags = e
            row = {
                "ts": ts,
                "symbol": s,
                "price": px / 100,
                "size": size,
                "exchange": venue,
                "flags": flags,
            }
            prints.append(row)
            out.append((ts, "p", row))
        elif e[0] == "e":
            out.append(
                (
                    ts,
                    "e",
                    {"ts": ts, "symbol": "SPY", "bid": e[2] / 100 - 0.01, "ask": e[2] / 100 + 0.01},
                )
            )
        elif prints:
            target = prints[e[2] % len(prints)]
            if target["ts"] <= ts:
                out.append((ts, "p", {**target, "ts": ts, "flags": int(ev.Cond.CANCEL)}))
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
                    ev.OPTIONS_NBBO: option_quotes([r for _, k, r in chunk if k == "q"]),
                    ev.OPTIONS_PRINTS: option_prints([r for _, k, r in chunk if k == "p"]),
                    ev.EQUITIES_QUOTES: equity_quotes([r for _, k, r in chunk if k == "e"]),
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
            engine = _restarted(engine)
        for stream, frame in engine.ingest(b).items():
            got.setdefault(stream, []).append(frame)
    for stream, frame in engine.flush().items():
        got.setdefault(stream, []).append(frame)
    assert engine.stats().rejected_total == 0
    return {s: pl.concat(got[s]) if s in got else ev.empty_frame(s) for s in FLOW}


def _restarted(old: Engine) -> Engine:
    """A new engine from the old one's checkpointed state (compute state as frames)."""
    new = Engine(small_config())
    new._osi = old._osi  # the engine's symbol table is checkpointed by the engine itself
    new.seq = dict(old.seq)
    new.watermark = old.watermark
    new.compute.restore(old.compute.state())
    return new


def assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    for stream in FLOW:
        assert a[stream].equals(b[stream]), stream


# Found by hypothesis: a structure emitted and retracted within one batch lost its
# ``corrects`` (it was expired before commit chained it).
@example(
    events=[
        ("q", 0, "SPY   251125C00580000", 95, 1, 1, 1),
        ("q", 0, "SPY   251125C00580000", 95, 1, 1, 1),
        ("q", 2750, "SPY   251125C00580000", 95, 1, 1, 1),
        ("p", 0, "SPY   251125C00580000", 93, 1, "Z", 0),
        ("p", 0, "SPY   251125P00580000", 93, 1, "Z", 0),
        ("c", 251, 0),
    ],
    cuts=[],
)
# Found by hypothesis (kept so every run tries them): a retraction in the same batch
# as the packet it retracts renamed that packet's repeat hit in a later packet's
# evidence; and a packet corrected twice in one batch (alert retracted, then the
# retraction replaced) had no explanation to quote (KeyError).
@example(
    events=[
        ("e", 0, 57900),
        ("q", 0, "SPY   251125C00580000", 95, 2, 1, 1),
        ("q", 0, "SPY   251125C00580000", 95, 1, 1, 1),
        ("p", 1095, "SPY   251125C00580000", 101, 318, "C", 0),
        ("q", 618, "SPY   251125C00580000", 95, 1, 1, 1),
        ("p", 96, "SPY   251125C00580000", 112, 91, "C", 0),
        ("c", 1451, 0),
    ],
    cuts=[],
)
@example(
    events=[
        ("e", 56, 57900),
        ("q", 58, "SPY   251125C00580000", 98, 3, 359, 68),
        ("q", 1437, "SPY   251125C00580000", 97, 1, 1, 1),
        ("e", 1860, 58049),
        ("q", 4752, "SPY   251125C00580000", 97, 2, 4, 119),
        ("p", 1095, "SPY   251125C00580000", 101, 318, "C", 0),
        ("q", 1146, "SPY   251125C00580000", 103, 1, 170, 183),
        ("e", 820, 58100),
        ("q", 127, "SPY   251125C00580000", 102, 4, 58, 120),
        ("q", 618, "SPY   251125C00580000", 96, 3, 242, 2),
        ("q", 147, "SPY   251125C00580000", 100, 1, 364, 5),
        ("p", 96, "SPY   251125C00580000", 112, 91, "C", 0),
        ("q", 141, "SPY   251125C00580000", 98, 1, 359, 364),
        ("p", 244, "SPY   251125C00580000", 106, 476, "C", 0),
        ("q", 1192, "SPY   251125C00580000", 95, 1, 1, 1),
        ("e", 3103, 57923),
        ("q", 27, "SPY   251125P00580000", 95, 1, 1, 4),
        ("q", 1524, "SPY   251125P00580000", 103, 1, 52, 207),
        ("p", 3558, "SPY   251125C00585000", 95, 275, "Z", 0),
        ("q", 213, "QQQ   251128C00510000", 104, 4, 86, 144),
        ("p", 176, "SPY   251125C00580000", 96, 391, "C", 0),
        ("c", 2202, 821),
        ("c", 77, 1196),
        ("c", 577, 806),
        ("p", 277, "SPY   251125P00580000", 108, 367, "C", 0),
        ("c", 245, 10000),
        ("c", 2607, 785),
        ("e", 100, 57986),
        ("e", 1860, 58049),
    ],
    cuts=[100, 146, 3122, 10000, 3055, 923, 168, 950, 351, 624, 610, 437, 703, 724],
)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(
        st.one_of(quote, quote, trade, trade, trade, spot, cancel), min_size=1, max_size=90
    ),
    cuts=st.lists(st.integers(0, 10_000), max_size=14),
)
def test_flow_streams_identical_for_any_batching(events: list[tuple], cuts: list[int]) -> None:
    items = materialise(events)
    if not items:
        return
    reference = run(batches(items, []))
    assert_same(run(batches(items, cuts)), reference)
    assert_same(run(batches(items, list(range(len(items))))), reference)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(st.one_of(quote, trade, trade, spot, cancel), min_size=5, max_size=60),
    cuts=st.lists(st.integers(0, 10_000), min_size=2, max_size=8),
)
def test_checkpoint_restore_continues_identically(events: list[tuple], cuts: list[int]) -> None:
    items = materialise(events)
    feed = batches(items, cuts)
    reference = run(feed)
    for at in range(1, len(feed)):
        assert_same(run(feed, restore_at=at), reference)


def test_synthetic_market_regrouped_gives_identical_flow() -> None:
    from islandflow_tui.engine.ingest.synthetic import SyntheticMarket

    market = SyntheticMarket("active", seed=11, start_ns=T0, tick_ms=100)
    fine = [market.next_batch() for _ in range(120)]
    coarse = []
    for i in range(0, len(fine), 9):
        group = fine[i : i + 9]
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
        return {s: pl.concat(got[s]) if s in got else ev.empty_frame(s) for s in FLOW}

    a, b = go(fine), go(coarse)
    assert a[ev.FLOW_PACKETS].height > 100 and a[ev.CLASSIFIER_HITS].height > 0
    assert_same(a, b)
