"""The live-feed contract: backoff schedule, reconnect statuses, gaps end to end, no dup seq."""

from __future__ import annotations

import asyncio
import logging
import random

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.gaps import load_gaps, record_gap
from islandflow_tui.engine.ingest.base import Backoff, FeedStatus
from islandflow_tui.engine.ingest.live import FeedFatal, LiveFeed
from islandflow_tui.widgets.status_bar import status_text

S = 10**9
T0 = 1_764_084_600 * S  # 2025-11-25 15:30 UTC


def test_backoff_schedule_is_seeded_exponential_and_capped():
    b = Backoff(initial_s=0.5, max_s=4.0, factor=2.0, jitter=0.2)
    first = b.schedule(6, random.Random(42))
    assert first == b.schedule(6, random.Random(42))  # seeded: the same schedule
    bases = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for d, base in zip(first, bases, strict=True):
        assert base * 0.8 <= d <= base * 1.2
    assert first != b.schedule(6, random.Random(43))  # jittered: clients do not sync


class Scripted(LiveFeed):
    """A feed whose sessions are scripted: rows to emit, then how the session ends."""

    name = "scripted"

    def __init__(self, sessions: list[tuple[list[tuple[int, int]], BaseException | None]]):
        super().__init__(backoff=Backoff(0.01, 0.02), rng=random.Random(0), flush_ms=5)
        self.sessions = sessions
        self.n = 0
        self.statuses: list[tuple[FeedStatus, str]] = []

    def set_state(self, status: FeedStatus, detail: str = "") -> None:
        self.statuses.append((status, detail))
        super().set_state(status, detail)

    async def session(self) -> None:
        rows, end = self.sessions[min(self.n, len(self.sessions) - 1)]
        self.n += 1
        self.mark_live()
        for ts, trade_id in rows:
            self.emit(
                ev.EQUITIES_PRINTS,
                {
                    "ts": ts,
                    "symbol": "SPY",
                    "price": 600.0,
                    "size": 100,
                    "venue": "D",
                    "off_exchange": True,
                    "conditions": "@",
                    "flags": 0,
                },
                ("SPY", ts, trade_id),
            )
            await asyncio.sleep(0.002)
        if end is not None:
            raise end
        while not self.closed:
            await asyncio.sleep(0.005)


async def drive(feed: Scripted, engine: Engine, want: int) -> list[ev.FeedBatch]:
    out: list[ev.FeedBatch] = []

    async def go() -> None:
        async for batch in feed.batches():
            out.append(batch)
            engine.ingest(batch)
            if engine.totals[ev.EQUITIES_PRINTS] >= want:
                feed.close()

    await asyncio.wait_for(go(), 10)
    return out


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_gap_after_reconnect_reaches_engine_status_bar_and_log(tmp_path):
    # islandflow's loggers do not propagate (once logging is set up): listen on ours
    records = _Records()
    logging.getLogger("islandflow.engine").addHandler(records)
    feed = Scripted(
        [
            ([(T0 + 1 * S, 1), (T0 + 2 * S, 2)], ConnectionResetError("reset by peer")),
            ([(T0 + 2 * S, 2), (T0 + 8 * S, 3), (T0 + 9 * S, 4)], None),  # 2 is resent
        ]
    )
    engine = Engine(Config(), feed)
    batches = await drive(feed, engine, 4)
    assert engine.seq[ev.EQUITIES_PRINTS] == 4 and feed.duplicates == 1
    reconnecting = [d for s, d in feed.statuses if s == FeedStatus.RECONNECTING]
    assert reconnecting and reconnecting[0].startswith("attempt 1 in ")
    assert "ConnectionResetError: reset by peer" in reconnecting[0]
    gaps = [b.gap for b in batches if b.gap]
    assert len(gaps) == 1 and (gaps[0].start_ts, gaps[0].end_ts) == (T0 + 2 * S, T0 + 8 * S)
    stats = engine.stats()
    assert stats.gaps == 1
    assert stats.last_gap.startswith("gap 10:30:02-10:30:08 ET (6.0s): ConnectionResetError")
    line = status_text(stats, paused=False, width=220).plain
    assert "gap 1 10:30:02-10:30:08 ET (6.0s)" in line
    logging.getLogger("islandflow.engine").removeHandler(records)
    assert any("feed gap on scripted" in line for line in records.lines)
    assert feed.state.status == FeedStatus.STOPPED


async def test_fatal_error_stops_retrying_and_keeps_its_status():
    feed = Scripted([([], FeedFatal(FeedStatus.AUTH_FAILED, "auth failed (402)"))])
    engine = Engine(Config(), feed)
    await drive(feed, engine, 1)
    assert feed.n == 1
    assert (feed.state.status, feed.state.detail) == (FeedStatus.AUTH_FAILED, "auth failed (402)")
    line = status_text(engine.stats(), paused=False, width=200).plain
    assert "● auth failed auth failed (402)" in line


def test_reconnecting_status_shows_attempt_and_delay():
    feed = Scripted([([], None)])
    feed.set_state(FeedStatus.RECONNECTING, "attempt 3 in 2.1s: ConnectionRefusedError")
    stats = Engine(Config(), feed).stats()
    assert "● reconnecting attempt 3 in 2.1s" in status_text(stats, paused=False, width=200).plain


def test_gaps_are_recorded_and_read_back_for_replay(tmp_path):
    gap = ev.FeedGap(
        "alpaca", T0, T0 + 5 * S, "ConnectionClosedError; reconnected after 2 attempts"
    )
    record_gap(tmp_path, gap)
    (tmp_path / "gaps.jsonl").open("a").write('{"torn": ')  # a torn last write is skipped
    assert load_gaps(tmp_path) == [gap]


def test_engine_counts_gap_of_a_recorded_batch():
    engine = Engine(Config())
    gap = ev.FeedGap("alpaca", T0, T0 + S, "x; reconnected after 1 attempt")
    engine.ingest(ev.FeedBatch({}, T0 + S, recorded=True, gap=gap))
    assert engine.stats().gaps == 1 and engine.gaps == [gap]


def test_a_recorded_gap_shows_again_in_replay(tmp_path):
    from islandflow_tui.engine.feeds import build_adapter
    from islandflow_tui.engine.replay import ReplayFeed
    from islandflow_tui.engine.session import attach_recording, finish_recording

    cfg = Config()
    cfg.paths.data_dir = str(tmp_path)
    cfg.synthetic.profile = "realistic"
    cfg.synthetic.start = "2025-11-25T15:30:00Z"
    cfg.synthetic.pace = False
    cfg.synthetic.backfill_s = 0.0
    engine = Engine(cfg, build_adapter(cfg))
    rec, _ = attach_recording(engine, cfg)
    assert rec is not None and rec.path is not None
    for i in range(60):
        batch = engine.adapter.market.next_batch()
        if i == 30:  # the feed lost 2 s here
            wm = batch.watermark
            gap = ev.FeedGap("synthetic", wm - 2 * S, wm, "test drop; reconnected after 1 attempt")
            batch = ev.FeedBatch(batch.frames, batch.watermark, gap=gap)
        engine.ingest(batch)
    finish_recording(engine, rec)
    assert engine.stats().gaps == 1

    replay_cfg = Config()
    replay_cfg.paths.data_dir = str(tmp_path)
    replay_cfg.feed.adapter = "replay"
    feed = ReplayFeed(rec.path, speed=None)
    replayed = Engine(replay_cfg, feed)

    async def play() -> None:
        async for b in feed.batches():
            replayed.ingest(b)
            if feed.position >= feed.end_ns:
                feed.close()

    asyncio.run(asyncio.wait_for(play(), 60))
    stats = replayed.stats()
    assert stats.gaps == 1 and replayed.gaps == [gap]
    assert "test drop" in stats.last_gap


def test_process_engine_ships_feed_status_to_the_ui():
    import socket
    import time

    from islandflow_tui.engine.process import ProcessEngine

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = Config()
    cfg.feed.adapter = "ibkr"
    cfg.ibkr.port = port
    cfg.log.record = False
    engine = ProcessEngine(cfg)
    engine.start()
    try:
        end = time.monotonic() + 30
        state = engine.stats().feed_state
        while time.monotonic() < end and state.status != FeedStatus.RECONNECTING:
            time.sleep(0.05)
            state = engine.stats().feed_state
    finally:
        engine.stop()
    assert state.status == FeedStatus.RECONNECTING
    assert f"TWS/IB Gateway not reachable at 127.0.0.1:{port}" in state.detail
    assert state.detail.startswith("attempt ")


def test_vendor_sdk_warnings_never_reach_the_terminal(capfd):
    import logging

    from islandflow_tui.engine.ingest.ibkr_feed import IbkrFeed

    IbkrFeed(Config(), environ={})
    logging.getLogger("ib_async.client").warning("API connection failed")
    logging.getLogger("ib_async").debug("raw frame")
    assert capfd.readouterr().err == ""
