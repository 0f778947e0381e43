"""The engine in a child process: same facade, data arrives, a dead child is visible."""

from __future__ import annotations

import os
import signal
import time

from islandflow_tui.config import Config, load_config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.process import ProcessEngine
from tests.helpers import SPY_C, batch, option_prints


def wait_for(pred, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def make(**overrides):
    cfg = load_config(
        None,
        env={},
        overrides={"synthetic.profile": "active", "synthetic.backfill_s": 2.0, **overrides},
    )
    return ProcessEngine(cfg)


def test_rows_and_stats_cross_the_process_boundary():
    engine = make()
    feed = engine.subscribe([ev.OPTIONS_ENRICHED, ev.EQUITIES_PRINTS], 5000)
    engine.start()
    try:
        got: dict[str, int] = {}

        def have_rows() -> bool:
            for stream, delta in feed.drain().items():
                got[stream] = got.get(stream, 0) + delta.frame.height
                if delta.frame.height:
                    assert delta.frame.schema == ev.polars_schema(stream)
            return got.get(ev.OPTIONS_ENRICHED, 0) > 50 and got.get(ev.EQUITIES_PRINTS, 0) > 10

        assert wait_for(have_rows), got
        stats = engine.stats()
        assert stats.totals[ev.OPTIONS_PRINTS] >= got[ev.OPTIONS_ENRICHED]
        assert stats.watermark_ns > 0 and stats.error == ""
        assert engine.running
    finally:
        engine.stop()
    assert not engine.running


def test_rows_are_counted_before_any_subscriber_can_see_them():
    """The child ships each tick's rows with the stats taken after draining them: the
    totals must already include every row pushed, or the status bar (and this file's
    first test, once, on CI) sees rows that the totals do not yet count."""
    engine = Engine(Config())
    feed = engine.subscribe([ev.OPTIONS_PRINTS, ev.OPTIONS_ENRICHED], 1000)
    seen: dict[str, int] = {}
    behind: list[str] = []

    def on_push(stream: str) -> None:
        delta = feed.drain([stream])[stream]
        seen[stream] = seen.get(stream, 0) + delta.frame.height
        counted = engine.stats().totals[stream]
        if counted < seen[stream]:
            behind.append(f"{stream}: {counted} counted, {seen[stream]} pushed")

    feed.on_push = on_push
    t0 = 1_764_081_000_000_000_000
    row = {"symbol": SPY_C, "price": 1.0, "size": 5}
    for k in range(3):
        rows = [{**row, "ts": t0 + k * 1000 + i} for i in range(4)]
        engine.ingest(batch(t0 + k * 1000 + 10, prints=option_prints(rows)))
    engine.flush()
    assert seen.get(ev.OPTIONS_PRINTS) == 12 and seen.get(ev.OPTIONS_ENRICHED) == 12
    assert behind == []


def test_subscribe_after_start_and_unsubscribe():
    engine = make()
    engine.start()
    try:
        feed = engine.subscribe([ev.OPTIONS_ENRICHED], 1000)
        assert wait_for(lambda: feed.drain().get(ev.OPTIONS_ENRICHED) is not None)
        engine.unsubscribe(feed)
    finally:
        engine.stop()


def test_killed_engine_process_is_reported_not_raised():
    engine = make()
    engine.start()
    try:
        assert wait_for(lambda: engine.stats().watermark_ns > 0)
        assert engine._proc is not None and engine._proc.pid is not None
        os.kill(engine._proc.pid, signal.SIGKILL)
        assert wait_for(lambda: "exited unexpectedly" in engine.stats().error)
        assert "-9" in engine.stats().error
    finally:
        engine.stop()


def test_lookup_by_id_crosses_the_process_boundary(tmp_path):
    """Evidence look-ups are answered by the engine process (its index), and ids it
    never saw come back absent, not as an error."""
    engine = make(**{"log.record": False, "paths.data_dir": str(tmp_path)})
    feed = engine.subscribe([ev.FLOW_PACKETS], 5000)
    engine.start()
    try:
        packets = []

        def have_packet() -> bool:
            delta = feed.drain().get(ev.FLOW_PACKETS)
            if delta is not None and delta.frame.height:
                packets.append(delta.frame)
            return bool(packets)

        assert wait_for(have_packet)
        packet = packets[0].row(0, named=True)
        members = [int(i) for i in packet["evidence"]]
        found = engine.lookup([packet["id"], *members, ev.make_id(ev.ALERTS, 10**12)])
        assert found[ev.FLOW_PACKETS]["id"].to_list() == [packet["id"]]
        assert sorted(found[ev.OPTIONS_ENRICHED]["id"].to_list()) == sorted(members)
        assert found[ev.ALERTS].height == 0
        assert found[ev.OPTIONS_ENRICHED].schema == ev.polars_schema(ev.OPTIONS_ENRICHED)
    finally:
        engine.stop()
