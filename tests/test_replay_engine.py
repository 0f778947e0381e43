"""Replay through the same engine: ordering, seeks equal straight replays, verify, CLI."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.feeds import build_adapter
from islandflow_tui.engine.replay import ReplayFeed, list_checkpoints, merge_order
from islandflow_tui.engine.session import attach_recording, finish_recording, parse_time

START = "2025-11-25T14:30:00Z"
T0 = 1_764_081_000_000_000_000
DISPLAY = {ev.OPTIONS_ENRICHED: 300, ev.EQUITIES_PRINTS: 200, ev.FLOW_PACKETS: 100}


def live_config(data_dir: Path) -> Config:
    cfg = Config()
    cfg.paths.data_dir = str(data_dir)
    cfg.synthetic.profile = "active"
    cfg.synthetic.start = START
    cfg.synthetic.pace = False
    cfg.synthetic.backfill_s = 0.0
    cfg.feed.engine = "thread"
    cfg.replay.checkpoint_interval_s = 5.0
    return cfg


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    """40 s of the active synthetic market recorded live (raw + derived + checkpoints)."""
    cfg = live_config(tmp_path_factory.mktemp("data"))
    engine = Engine(cfg, build_adapter(cfg))
    rec, _ = attach_recording(engine, cfg)
    assert rec is not None and rec.path is not None
    for _ in range(400):
        engine.ingest(engine.adapter.market.next_batch())
    finish_recording(engine, rec)
    return rec.path


def replay_engine(path: Path, **kw) -> tuple[Engine, ReplayFeed]:
    cfg = live_config(path.parent.parent)
    cfg.feed.adapter = "replay"
    feed = ReplayFeed(path, paused=True, checkpoint_interval_s=5.0, **kw)
    return Engine(cfg, feed), feed


async def play_until(engine: Engine, feed: ReplayFeed, until: int) -> None:
    feed.paused = False
    feed.speed = None
    async for batch in feed.batches():
        engine.ingest(batch)
        if feed.position >= until:
            feed.close()


def shown(feed_sub) -> dict[str, pl.DataFrame]:
    out: dict[str, list[pl.DataFrame]] = {}
    for stream, delta in feed_sub.drain().items():
        if delta.reset:
            out[stream] = []
        if delta.frame.height:
            out.setdefault(stream, []).append(delta.frame)
    return {s: pl.concat(f).tail(DISPLAY[s]) if f else ev.empty_frame(s) for s, f in out.items()}


@pytest.mark.parametrize("offset_s", [3.3, 17.05, 31.9])
def test_seek_shows_exactly_what_a_straight_replay_shows(session, offset_s):
    _seek_matches_straight_replay(session, T0 + int(offset_s * ev.NS_PER_S))


def test_a_long_fast_forward_on_the_flow_lanes_shows_what_a_straight_replay_shows(session):
    """Without a checkpoint to restore, a seek 31.9 s in fast-forwards from the start in
    15 s chunks, with the flow stages on their own threads (compute/lanes.py)."""
    lanes: list[bool] = []

    def no_checkpoints(feed: ReplayFeed, engine: Engine) -> None:
        feed._checkpoints = []
        start = engine.start_lanes
        engine.start_lanes = lambda: (lanes.append(True), start())[1]  # type: ignore[method-assign]

    seeking = _seek_matches_straight_replay(session, T0 + int(31.9 * ev.NS_PER_S), no_checkpoints)
    assert lanes == [True]
    assert not seeking.compute.lanes_running
    assert seeking.stats().rejected_total == 0


def _seek_matches_straight_replay(session: Path, target: int, prepare=None) -> Engine:
    straight, sfeed = replay_engine(session, ts_to=target)
    s_sub = straight.subscribe(list(DISPLAY), DISPLAY)
    asyncio.run(play_until(straight, sfeed, target))
    assert sfeed.position == target
    expected = shown(s_sub)

    seeking, feed = replay_engine(session)
    if prepare is not None:
        prepare(feed, seeking)
    sub = seeking.subscribe(list(DISPLAY), DISPLAY)
    feed.control("seek", target)
    feed._apply_commands()
    got = shown(sub)
    assert feed.position == target
    for stream in DISPLAY:
        assert got[stream].height == expected[stream].height > 0, stream
        assert got[stream].equals(expected[stream]), stream
    # and both engines continue identically from there
    a = asyncio.run(_next_second(straight, sfeed, s_sub))
    b = asyncio.run(_next_second(seeking, feed, sub))
    for stream in DISPLAY:
        assert a[stream].equals(b[stream]), stream
    return seeking


async def _next_second(engine: Engine, feed: ReplayFeed, sub) -> dict[str, pl.DataFrame]:
    sub.drain()
    feed._closed = False
    feed.end_ns = feed.position + ev.NS_PER_S
    await play_until(engine, feed, feed.end_ns)
    return shown(sub)


def test_live_recording_writes_checkpoints(session):
    cps = list_checkpoints(session)
    assert len(cps) >= 6
    assert all(b - a >= 5 * ev.NS_PER_S for a, b in itertools.pairwise(cps))


def test_seek_backwards_and_home_end(session):
    _engine, feed = replay_engine(session)
    for command, arg, expect in [
        ("seek", T0 + 20 * ev.NS_PER_S, T0 + 20 * ev.NS_PER_S),
        ("step", -7 * ev.NS_PER_S, T0 + 13 * ev.NS_PER_S),
        ("home", None, feed.start_ns),
        ("end", None, feed.end_ns),
    ]:
        feed.control(command, arg)
        feed._apply_commands()
        assert feed.position == expect, command
    assert feed.state_snapshot().finished


def test_next_and_previous_alert(session):
    _engine, feed = replay_engine(session)
    alerts = feed._alerts
    assert len(alerts) >= 3
    feed.control("next_alert")
    feed._apply_commands()
    assert feed.position == alerts[0] + 1
    feed.control("next_alert")
    feed._apply_commands()
    assert feed.position == alerts[alerts > alerts[0]][0] + 1
    feed.control("prev_alert")
    feed._apply_commands()
    assert feed.position == alerts[0] + 1


def test_speed_ladder_and_bad_command(session):
    _, feed = replay_engine(session)
    feed.control("speed", 1.0)
    feed.control("faster")
    feed.control("faster")
    feed._apply_commands()
    assert feed.speed == 5.0
    for _ in range(20):
        feed.control("faster")
    feed._apply_commands()
    assert feed.speed is None  # max
    for _ in range(30):
        feed.control("slower")
    feed._apply_commands()
    assert feed.speed == 0.25
    with pytest.raises(ValueError):
        feed.control("rewind")


def test_verify_live_session_has_zero_mismatches(session):
    proc = subprocess.run(
        [sys.executable, "-m", "islandflow_tui", "verify", str(session)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "options.enriched" in proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK: replay reproduces every derived event" in proc.stdout


def test_verify_detects_a_tampered_stream(session, tmp_path):
    import shutil

    copy = tmp_path / session.name
    shutil.copytree(session, copy)
    seg = sorted((copy / ev.OPTIONS_ENRICHED).glob("*.parquet"))[0]
    df = pl.read_parquet(seg)
    df = df.with_columns(
        pl.when(pl.col("seq") == 5)
        .then(pl.lit("BB"))
        .otherwise(pl.col("placement"))
        .alias("placement")
    )
    meta = pl.read_parquet_metadata(seg) if hasattr(pl, "read_parquet_metadata") else None
    import pyarrow.parquet as pq

    table = df.to_arrow()
    table = table.replace_schema_metadata(pq.read_schema(seg).metadata)
    pq.write_table(table, seg, compression="zstd")
    del meta
    proc = subprocess.run(
        [sys.executable, "-m", "islandflow_tui", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    line = next(x for x in proc.stdout.splitlines() if x.startswith("options.enriched"))
    assert line.split()[4] == "1"  # one mismatched row


def test_export_parquet_and_csv(session, tmp_path):
    out = tmp_path / "p.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "islandflow_tui", "export", str(session),
         "--stream", ev.OPTIONS_PRINTS, "--from", "+5", "--to", "+10",
         "--format", "parquet", "--out", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    df = pl.read_parquet(out)
    assert df.height > 0
    assert df["ts"].min() >= T0 + 5 * ev.NS_PER_S and df["ts"].max() < T0 + 10 * ev.NS_PER_S
    csv = tmp_path / "a.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "islandflow_tui", "export", str(session), "--stream", ev.ALERTS,
         "--format", "csv", "--out", str(csv)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    back = pl.read_csv(csv)
    assert back.height == pl.read_parquet(sorted((session / ev.ALERTS).glob("*.parquet"))).height
    first_trace = json.loads(back["trace"][0])
    assert {"condition", "value", "threshold", "passed"} <= set(first_trace[0])


def test_parse_time_forms():
    assert parse_time("+90", T0) == T0 + 90 * ev.NS_PER_S
    assert parse_time("09:31", T0) == T0 + 60 * ev.NS_PER_S  # 14:30Z is 09:30 New York
    assert parse_time("09:30:01.5", T0) == T0 + 1_500_000_000
    assert parse_time("2025-11-25T14:30:02Z", T0) == T0 + 2 * ev.NS_PER_S
    with pytest.raises(ValueError, match="'soon'"):
        parse_time("soon", T0)


frames_st = st.lists(
    st.tuples(st.sampled_from(list(ev.RAW_STREAMS)), st.integers(0, 20), st.integers(0, 50)),
    min_size=1,
    max_size=60,
    unique_by=lambda t: (t[0], t[2]),
)


@settings(max_examples=80, deadline=None)
@given(events=frames_st, perm=st.randoms(use_true_random=False))
def test_merge_order_is_total_and_stable(events, perm):
    def frames(evts):
        out: dict[str, list[tuple[int, int]]] = {}
        for stream, ts, seq in evts:
            out.setdefault(stream, []).append((ts, seq))
        return {
            s: pl.DataFrame(rows, schema={"ts": pl.Int64, "seq": pl.Int64}, orient="row")
            for s, rows in out.items()
        }

    a = merge_order(frames(events))
    shuffled = list(events)
    perm.shuffle(shuffled)
    b = merge_order(frames(shuffled))
    assert a.equals(b)
    keys = [(ts, ev.STREAM_ORDER[s], seq) for s, ts, seq in a.iter_rows()]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def record_ticks(cfg, ticks: int = 200):
    """Record ``ticks`` market ticks live (with checkpoints): (the recorder, its status
    line just before the end)."""
    engine = Engine(cfg, build_adapter(cfg))
    rec, _ = attach_recording(engine, cfg)
    assert rec is not None and rec.path is not None
    for _ in range(ticks):
        engine.ingest(engine.adapter.market.next_batch())
    line = rec.status_line()
    finish_recording(engine, rec)
    return rec, line


def checkpoint_bytes(session) -> int:
    return sum(f.stat().st_size for f in (session / "checkpoints").rglob("*.arrow"))


def test_checkpoints_stop_at_their_disk_budget(tmp_path):
    cfg = live_config(tmp_path)
    cfg.log.max_disk_gb = 0.00001  # ~10 kB of checkpoints: the first one exceeds it
    cfg.replay.checkpoint_disk_share = 0  # the quarter of max_disk_gb only
    rec, line = record_ticks(cfg)
    assert len(list_checkpoints(rec.path)) == 1
    assert rec.checkpoints_skipped >= 1 and "checkpoints paused: disk budget" in line
    # the session itself is complete and replays
    assert (rec.path / ev.OPTIONS_PRINTS).is_dir()


def test_checkpoint_budget_grows_with_the_recording(tmp_path):
    """With a share of the recorded bytes, checkpoints go on past the quarter of
    max_disk_gb, each taken only while they hold less than that share."""

    def record(share: float, folder: str):
        cfg = live_config(tmp_path / folder)
        cfg.log.max_disk_gb = 0.00001
        cfg.replay.checkpoint_interval_s = 1.0
        cfg.replay.checkpoint_disk_share = share
        # segments seal (and count) as it records, by size: an age limit would make
        # the sealed bytes per tick, and so the budget, depend on the engine's speed
        cfg.log.segment_max_mb = 0.05
        rec, _ = record_ticks(cfg, 150)
        return rec, list_checkpoints(rec.path), checkpoint_bytes(rec.path)

    rec, cps, used = record(2.0, "whole")
    assert len(cps) > 10  # the quarter of max_disk_gb alone allows one
    # a third of what they took: they stop part of the way, then go on only as the
    # recording grows (one may be queued before the previous one's bytes count)
    share = used / rec.bytes_sealed / 3
    rec2, cps2, used2 = record(share, "third")
    each = used / len(cps)
    assert 1 < len(cps2) < len(cps)
    assert used2 <= share * rec2.bytes_sealed + 2 * each


def test_checkpoints_pause_on_a_nearly_full_disk(tmp_path):
    cfg = live_config(tmp_path)
    cfg.replay.checkpoint_min_free_gb = 2**40  # more than any disk has free
    rec, line = record_ticks(cfg, 60)
    assert list_checkpoints(rec.path) == []
    assert rec.checkpoints_skipped >= 1
    assert "checkpoints paused: low disk" in line
    assert rec.error == "" and sum(rec.rows_sealed.values()) > 0  # the recording is whole


def test_step_forward_fast_forwards_from_the_engine_itself(session):
    """A forward step with no checkpoint in between restores nothing and still shows
    exactly what a straight replay shows."""
    target = T0 + 12 * ev.NS_PER_S
    straight, sfeed = replay_engine(session, ts_to=target)
    s_sub = straight.subscribe(list(DISPLAY), DISPLAY)
    asyncio.run(play_until(straight, sfeed, target))
    expected = shown(s_sub)

    seeking, feed = replay_engine(session)
    sub = seeking.subscribe(list(DISPLAY), DISPLAY)
    feed.control("seek", T0 + 11 * ev.NS_PER_S)
    feed._apply_commands()
    restores: list[int] = []
    real_restore = seeking.restore
    seeking.restore = lambda state: (restores.append(1), real_restore(state))[1]
    feed.control("step", ev.NS_PER_S)
    feed._apply_commands()
    assert feed.position == target and restores == []
    got = shown(sub)
    for stream in DISPLAY:
        assert got[stream].equals(expected[stream]), stream
    feed.control("step", -ev.NS_PER_S)  # backwards always restores
    feed._apply_commands()
    assert restores == [1]
