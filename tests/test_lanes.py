"""The flow lanes (compute/lanes.py) change when flow frames come back, never what.

Bulk runs (a replay's fast-forward, an import, the benchmark) run the flow stages on
two threads behind the caller.  Every derived stream must still be byte-identical to
the serial path's for any batching, with the lanes switched on and off mid-run, across
a checkpoint/restore, and with open interest arriving between batches; a stage that
fails loses its batch only, is counted and shown, and later batches go on.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.pipeline import Compute
from islandflow_tui.engine.core import Engine
from tests.test_flow_invariance import (
    T0,
    _restarted,
    batches,
    cancel,
    materialise,
    quote,
    small_config,
    spot,
    trade,
)

STREAMS = ev.DERIVED_STREAMS


def _collect(got: dict[str, list[pl.DataFrame]], frames: dict[str, pl.DataFrame]) -> None:
    for stream, frame in frames.items():
        got.setdefault(stream, []).append(frame)


def run(
    feed: list[ev.FeedBatch],
    lanes_on: set[int] = frozenset(),  # type: ignore[assignment]
    restore_at: int | None = None,
    oi_at: int | None = None,
) -> dict[str, pl.DataFrame]:
    """Every derived stream of ``feed``; the lanes run for the batches in ``lanes_on``."""
    engine = Engine(small_config())
    got: dict[str, list[pl.DataFrame]] = {}
    for i, b in enumerate(feed):
        if i in lanes_on:
            engine.start_lanes()
        else:
            _collect(got, engine.stop_lanes())
        if restore_at == i:
            new = _restarted(engine)  # its state taken with the lanes running: it waits
            _collect(got, engine.stop_lanes())
            engine = new
            if i in lanes_on:
                engine.start_lanes()
        if oi_at == i:
            engine.compute.set_open_interest(
                pl.DataFrame(
                    {
                        "symbol": ["SPY   251125C00580000", "SPY   251125P00580000"],
                        "as_of": [b.watermark - 10**9] * 2,
                        "open_interest": [150, 40],
                    }
                )
            )
        _collect(got, engine.ingest(b))
    _collect(got, engine.stop_lanes())
    _collect(got, engine.flush())
    assert engine.stats().rejected_total == 0
    return {s: pl.concat(got[s]) if s in got else ev.empty_frame(s) for s in STREAMS}


def assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    for stream in STREAMS:
        assert a[stream].equals(b[stream]), stream


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(
        st.one_of(quote, quote, trade, trade, trade, spot, cancel), min_size=1, max_size=90
    ),
    cuts=st.lists(st.integers(0, 10_000), max_size=14),
    lanes=st.sets(st.integers(0, 15), max_size=15),
    restore_at=st.none() | st.integers(0, 15),
    oi_at=st.none() | st.integers(0, 15),
)
def test_lanes_give_the_serial_streams(
    events: list[tuple],
    cuts: list[int],
    lanes: set[int],
    restore_at: int | None,
    oi_at: int | None,
) -> None:
    items = materialise(events)
    if not items:
        return
    feed = batches(items, cuts)
    serial = run(feed, restore_at=restore_at, oi_at=oi_at)
    assert_same(run(feed, lanes, restore_at, oi_at), serial)
    assert_same(run(feed, set(range(len(feed))), restore_at, oi_at), serial)


def _feed() -> list[ev.FeedBatch]:
    """A few seconds of prints on two contracts, one batch per 500 ms."""
    items = materialise(
        [("q", ms, "SPY   251125C00580000", 100, 2, 50, 50) for ms in range(0, 6_000, 250)]
        + [
            ("p", ms, "SPY   251125C00580000", 102, 300, "CXIZ"[ms % 4], 0)
            for ms in range(5, 6_000, 250)
        ]
        + [("e", ms, 58_000) for ms in range(0, 6_000, 500)]
    )
    cuts = [i for i, (ts, _, _) in enumerate(items) if (ts - T0) % (500 * ev.NS_PER_MS) == 0]
    return batches(items, cuts)


def test_a_failing_stage_loses_its_batch_only(monkeypatch: pytest.MonkeyPatch) -> None:
    feed = _feed()
    serial = run(feed)
    assert serial[ev.FLOW_PACKETS].height > 3
    real = Compute.rule_stage
    calls = {"n": 0}

    def flaky(self: Compute, packets: pl.DataFrame | None, *args: object) -> dict:
        if packets is not None and packets.height:
            calls["n"] += 1
            if calls["n"] == 2:  # the second batch that has packets
                raise RuntimeError("rule stage broke")
        return real(self, packets, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Compute, "rule_stage", flaky)
    engine = Engine(small_config())
    engine.start_lanes()
    got: dict[str, list[pl.DataFrame]] = {}
    for b in feed:
        _collect(got, engine.ingest(b))  # never raises: the lane keeps the exception
    _collect(got, engine.stop_lanes())
    _collect(got, engine.flush())
    st = engine.stats()
    assert st.rejected["engine"] == {"batch_error": 1}
    assert "rule stage broke" in st.last_rejection
    # the enriched prints are all there; the flow streams lack that one batch only
    assert pl.concat(got[ev.OPTIONS_ENRICHED]).equals(serial[ev.OPTIONS_ENRICHED])
    packets = pl.concat(got[ev.FLOW_PACKETS])
    assert 0 < packets.height < serial[ev.FLOW_PACKETS].height
    assert packets.get_column("id").is_in(serial[ev.FLOW_PACKETS]["id"].implode()).all()
    # and the lanes went on after it
    assert calls["n"] > 2


def test_ingest_hands_back_earlier_batches_and_stop_the_rest() -> None:
    feed = _feed()
    serial = run(feed)
    engine = Engine(small_config())
    engine.start_lanes()
    assert engine.compute.lanes_running
    got: dict[str, list[pl.DataFrame]] = {}
    for b in feed:
        out = engine.ingest(b)
        # this batch's enriched prints come back at once
        assert ev.OPTIONS_ENRICHED not in out or out[ev.OPTIONS_ENRICHED].height
        _collect(got, out)
    rest = engine.stop_lanes()
    assert not engine.compute.lanes_running
    _collect(got, rest)
    _collect(got, engine.flush())
    for s in (ev.OPTIONS_ENRICHED, ev.FLOW_PACKETS, ev.CLASSIFIER_HITS):
        assert pl.concat(got[s]).equals(serial[s]), s
    # the totals the status bar shows count what the lanes handed back
    assert engine.stats().totals[ev.FLOW_PACKETS] == serial[ev.FLOW_PACKETS].height


def test_repeat_evidence_is_the_serial_paths() -> None:
    """The classifiers read a batch's repeat evidence on another thread, after the
    packets lane has gone on to the next batch: it must be the evidence of its own."""
    feed = _feed()
    serial = run(feed)
    hits = serial[ev.CLASSIFIER_HITS].filter(pl.col("classifier") == "repeat_hitter")
    assert hits.height > 2
    # each hit quotes its own packet, then the earlier hits of its window, newest first
    packet_ts = dict(serial[ev.FLOW_PACKETS].select("id", "ts").iter_rows())
    for source, evidence in hits.select("source_id", "evidence").iter_rows():
        assert evidence[0] == source
        times = [packet_ts[i] for i in evidence]
        assert times == sorted(times, reverse=True)
    assert hits.get_column("evidence").list.len().max() > 2
    assert_same(run(feed, set(range(len(feed)))), serial)
