"""When checkpoints are due, and the background writer that keeps disk off the engine."""

from __future__ import annotations

import threading
from pathlib import Path

import polars as pl

from islandflow_tui.engine.checkpoints import CheckpointClock, CheckpointWriter
from islandflow_tui.engine.replay import list_checkpoints

S = 1_000_000_000


def test_clock_arms_on_first_batch_then_fires_on_interval_multiples() -> None:
    clock = CheckpointClock(10 * S)
    assert not clock.due(3 * S, 100)  # arms; never checkpoints an empty start
    assert not clock.due(9 * S, 100)
    assert clock.due(10 * S, 1)  # crossed the multiple of the interval
    clock.taken(10 * S)
    assert not clock.due(19 * S, 10**9)  # no event trigger configured
    assert clock.due(20 * S, 0)


def test_clock_fires_on_event_count_before_the_interval() -> None:
    clock = CheckpointClock(10 * S, max_events=1000)
    clock.start(0)
    assert not clock.due(1 * S, 999)
    assert clock.due(2 * S, 1)  # exactly max_events
    clock.taken(2 * S)
    assert clock.armed_at == 2 * S
    assert not clock.due(3 * S, 500)
    assert clock.due(10 * S, 0)  # and the interval still applies


def test_writer_writes_in_the_background_and_skips_when_busy(tmp_path: Path) -> None:
    gate = threading.Event()
    written: list[int] = []

    def slow_write(watermark: int, state: dict[str, pl.DataFrame]) -> None:
        gate.wait(5)
        assert state["x"]["a"].to_list() == [1, 2]
        written.append(watermark)

    writer = CheckpointWriter(slow_write)
    frame = pl.DataFrame({"a": [1, 2]})
    writer.submit(1, {"x": frame})  # taken by the thread, blocked on the gate
    for _ in range(100):  # wait until the thread holds it, so the queue slot is free
        if writer._queue.empty():
            break
        threading.Event().wait(0.01)
    writer.submit(2, {"x": frame})  # waits in the one slot
    writer.submit(3, {"x": frame})  # both busy: skipped, never blocks the caller
    assert writer.skipped == 1
    gate.set()
    writer.close()
    assert written == [1, 2] and writer.written == 2


def test_writer_survives_a_failing_write() -> None:
    calls: list[int] = []

    def failing(watermark: int, state: dict[str, pl.DataFrame]) -> None:
        calls.append(watermark)
        raise OSError("No space left on device")

    writer = CheckpointWriter(failing)
    writer.submit(1, {})
    writer.close()
    writer2 = CheckpointWriter(failing)
    writer2.submit(2, {})
    writer2.close()
    assert calls == [1, 2] and writer.written == 0


def test_live_recording_checkpoints_by_event_count(tmp_path: Path) -> None:
    from islandflow_tui.config import Config
    from islandflow_tui.engine.core import Engine
    from islandflow_tui.engine.feeds import build_adapter
    from islandflow_tui.engine.session import attach_recording, finish_recording

    def record(max_events: int) -> tuple[list[int], CheckpointWriter]:
        cfg = Config()
        cfg.paths.data_dir = str(tmp_path / f"d{max_events}")
        cfg.synthetic.profile = "active"
        cfg.synthetic.start = "2025-11-25T14:30:00Z"
        cfg.synthetic.pace = False
        cfg.synthetic.backfill_s = 0.0
        cfg.feed.engine = "thread"
        cfg.replay.checkpoint_interval_s = 10.0
        cfg.replay.checkpoint_max_events = max_events
        engine = Engine(cfg, build_adapter(cfg))
        rec, _ = attach_recording(engine, cfg)
        assert rec is not None and rec.path is not None
        market = engine.adapter.market  # type: ignore[attr-defined]
        for _ in range(120):  # 12 s of event time
            engine.ingest(market.next_batch())
        writer = rec.checkpoint_writer
        finish_recording(engine, rec)
        return list_checkpoints(rec.path), writer

    by_time, _ = record(0)
    assert len(by_time) == 1  # 12 s of ~2 400 raw events/s: only the 10 s boundary
    by_count, writer = record(5_000)
    # ~28 000 raw events: due about every 5 000 (a busy writer may skip one)
    assert writer.written + writer.skipped >= 5
    assert len(by_count) == writer.written >= 2
