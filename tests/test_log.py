"""The event log: segments, metadata, recovery, faults, retention and the sessions command."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
import pytest

from islandflow_tui.config import Config, LogConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine import log as elog
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.synthetic import SyntheticMarket
from islandflow_tui.engine.log import (
    SegmentError,
    SessionReader,
    SessionRecorder,
    apply_retention,
    list_sessions,
    read_segment_info,
    recover,
)

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_764_081_000_000_000_000  # 2025-11-25 14:30:00 UTC
FAST = {"fsync": False}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _value(dtype: pl.DataType, i: int, rng: random.Random) -> Any:
    if dtype == pl.Int64:
        return rng.randrange(-(10**12), 10**12)
    if dtype in (pl.Int32, pl.Int8):
        return rng.randrange(0, 100)
    if dtype == pl.Float64:
        return rng.random() * 1000
    if dtype == pl.Boolean:
        return rng.random() < 0.5
    if dtype == pl.String:
        return rng.choice(["", "A", "SPY   251125C00580000", f"text-{i}", "é"])
    if dtype == pl.Date:
        return datetime(2025, 11, 25).date() + timedelta(days=rng.randrange(0, 400))
    if isinstance(dtype, pl.List):
        return [_value(dtype.inner, i, rng) for _ in range(rng.randrange(0, 4))]
    if isinstance(dtype, pl.Struct):  # nulls inside the struct too (trace thresholds)
        return {
            f.name: None if rng.random() < 0.2 else _value(f.dtype, i, rng) for f in dtype.fields
        }
    raise AssertionError(f"no generator for {dtype!r}")


def frame_for(stream: str, seq0: int, n: int, ts0: int, rng: random.Random) -> pl.DataFrame:
    """``n`` rows of ``stream`` with seq ``seq0..``, ts near ``ts0`` (unsorted within the
    frame), random values of the right type and nulls in every nullable column."""
    schema = ev.polars_schema(stream)
    nullable = {f.name for f in ev.SCHEMAS[stream] if f.nullable}
    cols: dict[str, list[Any]] = {}
    for name, dtype in schema.items():
        if name == "ts":
            cols[name] = [ts0 + rng.randrange(0, 1_000_000) for _ in range(n)]
        elif name == "seq":
            cols[name] = list(range(seq0, seq0 + n))
        elif name == "id":
            cols[name] = [ev.make_id(stream, s) for s in range(seq0, seq0 + n)]
        else:
            cols[name] = [
                None if name in nullable and i % 3 == 0 else _value(dtype, i, rng) for i in range(n)
            ]
    return pl.DataFrame(cols, schema=schema)


def sorted_rows(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(frames).sort(["ts", "seq"])


def wait_for(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def option_frames(
    n_frames: int, rows: int = 400, seed: int = 1, ts_step: int = 1_000_000
) -> list[pl.DataFrame]:
    """Consecutive option-print frames: one random frame, shifted in seq, id and ts
    (each spans 1 ms of ts, unsorted within the frame; ``ts_step`` < 1 ms overlaps them)."""
    base = frame_for(ev.OPTIONS_PRINTS, 0, rows, T0, random.Random(seed))
    return [
        base.with_columns(
            pl.col("ts") + i * ts_step, pl.col("seq") + i * rows, pl.col("id") + i * rows
        )
        for i in range(n_frames)
    ]


# ---------------------------------------------------------------------------
# round trip, layout, metadata
# ---------------------------------------------------------------------------
def test_every_stream_schema_round_trips(tmp_path: Path) -> None:
    rng = random.Random(3)
    sent: dict[str, list[pl.DataFrame]] = {}
    rec = SessionRecorder(tmp_path, {"adapter": "test"}, ev.ALL_STREAMS, LogConfig(**FAST))
    for stream in ev.ALL_STREAMS:
        for k in range(3):
            f = frame_for(stream, k * 50, 50, T0 + k * 10**9, rng)
            sent.setdefault(stream, []).append(f)
            rec.write(stream, f)
    rec.close()
    assert rec.status == "closed" and rec.error == ""
    assert rec.path is not None
    reader = SessionReader(rec.path)
    assert reader.streams() == sorted(ev.ALL_STREAMS, key=lambda s: ev.STREAM_ORDER[s])
    for stream in ev.ALL_STREAMS:
        got = reader.read(stream)
        assert got.schema == ev.polars_schema(stream), stream
        assert got.equals(sorted_rows(sent[stream])), stream
    assert reader.errors == []
    meta = json.loads((rec.path / "meta.json").read_text())
    assert meta["status"] == "closed"
    assert meta["rows"] == dict.fromkeys(ev.ALL_STREAMS, 150)
    assert meta["adapter"] == "test" and meta["islandflow_version"]
    assert meta["start_wall"] and meta["end_wall"]
    assert meta["start_ts"] == min(int(f["ts"].min()) for fs in sent.values() for f in fs)
    assert meta["end_ts"] == max(int(f["ts"].max()) for fs in sent.values() for f in fs)


def test_sealed_segments_delta_code_keys_and_dictionary_code_the_rest(tmp_path: Path) -> None:
    """The column plan reaches the file: rising keys delta-coded, every other leaf
    (nested trace strings included) dictionary-coded, no Arrow schema blob, and
    the footer still carries the segment's stats."""
    rng = random.Random(5)
    rec = SessionRecorder(tmp_path, {}, [ev.OPTIONS_PRINTS, ev.ALERTS], LogConfig(**FAST))
    for stream in (ev.OPTIONS_PRINTS, ev.ALERTS):
        rec.write(stream, frame_for(stream, 0, 200, T0, rng))
    rec.close()
    assert rec.path is not None
    for stream in (ev.OPTIONS_PRINTS, ev.ALERTS):
        (seg,) = SessionReader(rec.path).segments(stream)
        md = pq.read_metadata(seg.path)
        assert b"ARROW:schema" not in (md.metadata or {})
        assert seg.rows == 200 and seg.first_seq == 0 and seg.last_seq == 199
        rg = md.row_group(0)
        enc = {
            rg.column(i).path_in_schema: rg.column(i).encodings
            for i in range(rg.num_columns)
            if rg.column(i).physical_type != "BOOLEAN"  # Parquet has no boolean dictionary
        }
        for key in ("ts", "seq", "id"):
            assert "DELTA_BINARY_PACKED" in enc[key], (stream, key, enc[key])
        coded = ("RLE_DICTIONARY", "DELTA_BINARY_PACKED")
        plain = [p for p, e in enc.items() if not any(c in e for c in coded)]
        assert not plain, (stream, plain)
        cols = [rg.column(i) for i in range(rg.num_columns)]
        stats = {c.path_in_schema: c.statistics for c in cols}
        assert stats["ts"] is not None and stats["ts"].has_min_max
        assert stats["symbol"] is None  # text leaves carry no min/max (see _column_plan)
    assert "trace.list.element.condition" in enc  # a nested leaf of the alerts


def test_seal_by_size_names_carry_seq_and_rows_are_sorted(tmp_path: Path) -> None:
    frames = option_frames(60, ts_step=300_000)  # late rows: frames overlap in ts
    cfg = LogConfig(segment_max_mb=0.1, **FAST)
    rec = SessionRecorder(tmp_path, {}, [ev.OPTIONS_PRINTS], cfg)
    for f in frames:
        rec.write(ev.OPTIONS_PRINTS, f)
    rec.close()
    assert rec.path is not None
    reader = SessionReader(rec.path)
    segs = reader.segments(ev.OPTIONS_PRINTS)
    assert len(segs) >= 5, "0.1 MB segments should seal several times"
    expect_first = 0
    for seg in segs:
        assert seg.path.name == f"{seg.first_seq:012d}-{seg.last_seq:012d}.parquet"
        assert seg.first_seq == expect_first
        expect_first = seg.last_seq + 1
        df = elog.read_segment(seg.path)
        assert df.height == seg.rows == seg.last_seq - seg.first_seq + 1
        assert df.equals(df.sort(["ts", "seq"])), "rows within a segment are in (ts, seq) order"
        assert (int(df["ts"].min()), int(df["ts"].max())) == (seg.min_ts, seg.max_ts)
    assert expect_first == 60 * 400
    assert not list((rec.path / ev.OPTIONS_PRINTS).glob("*.arrows"))
    # ts ranges of consecutive segments overlap (late rows): read() and scan() merge
    assert elog._overlapping(segs)
    got = reader.read(ev.OPTIONS_PRINTS)
    assert got.equals(sorted_rows(frames))
    assert reader.scan(ev.OPTIONS_PRINTS).collect().equals(got)


def test_seal_by_age_while_idle(tmp_path: Path) -> None:
    cfg = LogConfig(segment_max_age_s=0.3, **FAST)
    rec = SessionRecorder(tmp_path, {}, [ev.OPTIONS_PRINTS], cfg)
    frames = option_frames(2)
    rec.write(ev.OPTIONS_PRINTS, frames[0])
    assert rec.path is not None
    d = rec.path / ev.OPTIONS_PRINTS
    wait_for(lambda: list(d.glob("*.parquet")))  # sealed with no further writes
    wait_for(lambda: not list(d.glob("*.arrows")))
    assert SessionReader(rec.path).segments(ev.OPTIONS_PRINTS)[0].rows == 400

    def meta() -> dict[str, Any]:
        return json.loads((rec.path / "meta.json").read_text())  # type: ignore[operator]

    wait_for(lambda: meta()["rows"][ev.OPTIONS_PRINTS] == 400)  # the manifest follows the seal
    assert meta()["status"] == "open"
    rec.write(ev.OPTIONS_PRINTS, frames[1])
    rec.close()
    segs = SessionReader(rec.path).segments(ev.OPTIONS_PRINTS)
    assert [(s.first_seq, s.last_seq) for s in segs] == [(0, 399), (400, 799)]


def test_segment_stats_are_known_without_reading_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = option_frames(30)
    rec = SessionRecorder(tmp_path, {}, [ev.OPTIONS_PRINTS], LogConfig(segment_max_mb=0.1, **FAST))
    for f in frames:
        rec.write(ev.OPTIONS_PRINTS, f)
    rec.close()
    assert rec.path is not None
    truth = [
        (s.first_seq, s.last_seq, s.min_ts, s.max_ts, s.rows)
        for s in SessionReader(rec.path).segments(ev.OPTIONS_PRINTS)
    ]

    def no_scan(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("rows were read")

    monkeypatch.setattr(pl, "read_parquet", no_scan)
    monkeypatch.setattr(pl, "scan_parquet", no_scan)
    # from index.json ...
    from_index = SessionReader(rec.path).segments(ev.OPTIONS_PRINTS)
    # ... and from the Parquet footers alone
    (rec.path / ev.OPTIONS_PRINTS / "index.json").unlink()
    from_footer = SessionReader(rec.path).segments(ev.OPTIONS_PRINTS)
    for segs in (from_index, from_footer):
        assert [(s.first_seq, s.last_seq, s.min_ts, s.max_ts, s.rows) for s in segs] == truth
    monkeypatch.undo()
    for seg in from_footer:
        df = pl.read_parquet(seg.path)
        assert (df.height, int(df["seq"].min()), int(df["ts"].max())) == (
            seg.rows,
            seg.first_seq,
            seg.max_ts,
        )
        assert read_segment_info(seg.path) == seg


def test_scan_skips_segments_out_of_range(tmp_path: Path) -> None:
    frames = option_frames(40)
    rec = SessionRecorder(tmp_path, {}, [ev.OPTIONS_PRINTS], LogConfig(segment_max_mb=0.1, **FAST))
    for f in frames:
        rec.write(ev.OPTIONS_PRINTS, f)
    rec.close()
    assert rec.path is not None
    reader = SessionReader(rec.path)
    segs = reader.segments(ev.OPTIONS_PRINTS)
    lo, hi = segs[2].min_ts, segs[3].max_ts
    picked = reader._select(ev.OPTIONS_PRINTS, lo, hi)
    assert 0 < len(picked) < len(segs)
    got = reader.read(ev.OPTIONS_PRINTS, lo, hi)
    want = sorted_rows(frames).filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
    assert got.equals(want)
    assert reader.scan(ev.OPTIONS_PRINTS, lo, hi).collect().equals(want)


# ---------------------------------------------------------------------------
# recovery
# ---------------------------------------------------------------------------
def _open_session_snapshot(tmp_path: Path, n_frames: int) -> tuple[Path, list[pl.DataFrame]]:
    """A copy of a session taken while its segment was open (as after a crash)."""
    frames = option_frames(n_frames, rows=97)
    cfg = LogConfig(segment_max_mb=1000, segment_max_age_s=1000, **FAST)
    rec = SessionRecorder(tmp_path / "live", {}, [ev.OPTIONS_PRINTS], cfg)
    for f in frames:
        rec.write(ev.OPTIONS_PRINTS, f)
    wait_for(lambda: rec.rows_written[ev.OPTIONS_PRINTS] == 97 * n_frames)
    assert rec.path is not None
    snap = tmp_path / "snapshot" / rec.path.name
    shutil.copytree(rec.path, snap)
    rec.close()
    return snap, frames


def _batch_ends(path: Path) -> list[tuple[int, int]]:
    """(byte offset after each record batch, rows so far) of an IPC stream file."""
    buf = pa.BufferReader(path.read_bytes())
    reader = pa_ipc.open_stream(buf)
    ends = [(buf.tell(), 0)]
    rows = 0
    for batch in reader:
        rows += batch.num_rows
        ends.append((buf.tell(), rows))
    return ends


def test_recovery_of_a_truncated_tail_loses_only_the_torn_batch(tmp_path: Path) -> None:
    snap, frames = _open_session_snapshot(tmp_path, 12)
    ipc = snap / ev.OPTIONS_PRINTS / "000000000000.arrows"
    ends = _batch_ends(ipc)
    assert ends[-1][1] == 12 * 97
    size = ipc.stat().st_size
    everything = pl.concat(frames)
    rng = random.Random(5)
    offsets = [rng.randrange(1, size + 1) for _ in range(25)] + [e for e, _ in ends[1:4]] + [size]
    for k, cut in enumerate(offsets):
        data = tmp_path / f"d{k}"
        session = data / "sessions" / snap.name
        shutil.copytree(snap, session)
        with open(session / ev.OPTIONS_PRINTS / ipc.name, "r+b") as fh:
            fh.truncate(cut)
        reports = recover(data, fsync=False)
        complete_end, complete_rows = max((e, r) for e, r in ends if e <= cut)
        assert len(reports) == 1
        rep = reports[0]
        assert rep.rows_recovered == complete_rows, cut
        assert rep.torn_bytes == (cut - complete_end if complete_rows or cut > ends[0][0] else 0)
        got = SessionReader(session).read(ev.OPTIONS_PRINTS)
        seqs = got["seq"].sort().to_list()
        assert seqs == list(range(complete_rows)), "no duplicate, no gap"
        assert got.equals(everything.head(complete_rows).sort(["ts", "seq"]))
        assert not list((session / ev.OPTIONS_PRINTS).glob("*.arrows"))
        meta = json.loads((session / "meta.json").read_text())
        assert meta["status"] == "recovered"
        assert meta["rows"].get(ev.OPTIONS_PRINTS, 0) == complete_rows
        assert recover(data, fsync=False) == [], "recovery is idempotent"


def test_recovery_after_crash_between_seal_and_unlink(tmp_path: Path) -> None:
    snap, _frames = _open_session_snapshot(tmp_path, 5)
    live = next((tmp_path / "live" / "sessions").iterdir())
    # the sealed segment exists and the open file was not yet removed
    shutil.copy(snap / ev.OPTIONS_PRINTS / "000000000000.arrows", live / ev.OPTIONS_PRINTS)
    meta = json.loads((live / "meta.json").read_text())
    meta["status"] = "open"
    (live / "meta.json").write_text(json.dumps(meta))
    reports = recover(tmp_path / "live", fsync=False)
    assert [r.note for r in reports] == ["already sealed"]
    got = SessionReader(live).read(ev.OPTIONS_PRINTS)
    assert got["seq"].sort().to_list() == list(range(5 * 97))
    assert not list((live / ev.OPTIONS_PRINTS).glob("*.arrows"))


def test_recovery_never_touches_a_locked_session(tmp_path: Path) -> None:
    cfg = LogConfig(segment_max_mb=1000, segment_max_age_s=1000, **FAST)
    rec = SessionRecorder(tmp_path, {}, [ev.OPTIONS_PRINTS], cfg)
    rec.write(ev.OPTIONS_PRINTS, option_frames(1)[0])
    wait_for(lambda: rec.rows_written[ev.OPTIONS_PRINTS] == 400)
    assert rec.path is not None
    assert recover(tmp_path, fsync=False) == []
    assert list((rec.path / ev.OPTIONS_PRINTS).glob("*.arrows"))
    assert [s.status for s in list_sessions(tmp_path)] == ["open"]
    # readers can see the complete batches of the open segment
    assert SessionReader(rec.path).read(ev.OPTIONS_PRINTS, include_open=True).height == 400
    rec.close()
    assert [s.status for s in list_sessions(tmp_path)] == ["closed"]


# ---------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------
def _damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    if how == "truncated":
        with open(path, "r+b") as fh:
            fh.truncate(size // 2)
    else:
        with open(path, "r+b") as fh:
            fh.seek(8)
            fh.write(b"\0" * (size // 2))


@pytest.mark.parametrize("how", ["truncated", "corrupt"])
def test_a_bad_segment_is_named_skipped_and_the_rest_reads(tmp_path: Path, how: str) -> None:
    frames = option_frames(30)
    rec = SessionRecorder(tmp_path, {}, [ev.OPTIONS_PRINTS], LogConfig(segment_max_mb=0.1, **FAST))
    for f in frames:
        rec.write(ev.OPTIONS_PRINTS, f)
    rec.close()
    assert rec.path is not None
    segs = SessionReader(rec.path).segments(ev.OPTIONS_PRINTS)
    bad = segs[1]
    _damage(bad.path, how)

    with pytest.raises(SegmentError) as info:
        elog.read_segment(bad.path)
    assert str(bad.path) in str(info.value)

    reader = SessionReader(rec.path)
    got = reader.read(ev.OPTIONS_PRINTS)
    keep = pl.col("seq").is_between(bad.first_seq, bad.last_seq).not_()
    assert got.equals(sorted_rows(frames).filter(keep))
    assert len(reader.errors) == 1 and reader.errors[0].path == bad.path
    assert str(bad.path) in reader.warnings[0]
    with pytest.raises(SegmentError, match=bad.path.name):
        SessionReader(rec.path, strict=True).read(ev.OPTIONS_PRINTS)


def _engine_with(rec: SessionRecorder) -> Engine:
    engine = Engine(Config())
    engine.subscribe_lossless(rec.streams, rec.write)
    engine.recorder = rec
    return engine


def _market_batches(n: int) -> list[ev.FeedBatch]:
    m = SyntheticMarket("active", 2, T0, 100)
    return [m.next_batch() for _ in range(n)]


def test_unwritable_data_dir_stops_recording_not_the_engine(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir should be")
    rec = SessionRecorder(blocker / "data", {}, ev.ALL_STREAMS, LogConfig(**FAST))
    assert rec.status == "error"
    assert str(blocker) in rec.error
    engine = _engine_with(rec)
    for b in _market_batches(20):
        engine.ingest(b)
    assert engine.stats().totals[ev.OPTIONS_PRINTS] > 0
    assert "recording stopped" in engine.stats().recording
    assert rec.rows_dropped > 0
    rec.close()


def test_disk_full_mid_run_stops_recording_and_the_rest_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls = {"n": 0}

    def filling_disk(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] > 25:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(elog, "_os_write", filling_disk)
    rec = SessionRecorder(tmp_path, {}, ev.ALL_STREAMS, LogConfig(**FAST))
    engine = _engine_with(rec)
    batches = _market_batches(40)
    for b in batches[:20]:
        engine.ingest(b)
    wait_for(lambda: rec.error != "")
    assert rec.error.startswith("disk full writing ")
    assert ".arrows" in rec.error
    t = time.perf_counter()
    for b in batches[20:]:
        engine.ingest(b)  # never blocks on the dead writer, never raises
    assert time.perf_counter() - t < 10
    assert engine.stats().totals[ev.OPTIONS_PRINTS] > 0
    assert engine.stats().recording.startswith("recording stopped: disk full")
    assert rec.rows_dropped > 0
    rec.close()
    monkeypatch.undo()
    assert rec.path is not None
    meta = json.loads((rec.path / "meta.json").read_text())
    assert meta["status"] == "failed" and "disk full" in meta["error"]
    reports = recover(tmp_path, fsync=False)
    assert reports, "what reached the disk before the failure is recovered"
    reader = SessionReader(rec.path)
    for stream in reader.streams():
        seqs = reader.read(stream)["seq"].sort().to_list()
        assert seqs == list(range(len(seqs))), stream
    assert json.loads((rec.path / "meta.json").read_text())["status"] == "recovered"


def test_two_recorders_in_one_data_dir(tmp_path: Path) -> None:
    cfg = LogConfig(segment_max_mb=0.1, **FAST)
    recs = [SessionRecorder(tmp_path, {"n": i}, [ev.OPTIONS_PRINTS], cfg) for i in range(2)]
    sent = [option_frames(25, seed=10), option_frames(25, seed=20)]

    def feed(i: int) -> None:
        for f in sent[i]:
            recs[i].write(ev.OPTIONS_PRINTS, f)

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert recs[0].session_id != recs[1].session_id
    assert all(elog.is_locked(r.path) for r in recs if r.path is not None)
    assert [s.status for s in list_sessions(tmp_path)] == ["open", "open"]
    for r in recs:
        r.close()
    for i, r in enumerate(recs):
        assert r.path is not None
        got = SessionReader(r.path).read(ev.OPTIONS_PRINTS)
        assert got.equals(sorted_rows(sent[i]))
        assert json.loads((r.path / "meta.json").read_text())["n"] == i


def test_two_processes_record_into_one_data_dir(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "islandflow_tui.engine.headless",
        "--data-dir",
        str(tmp_path),
        "--profile",
        "active",
        "--seconds",
        "2",
        "--segment-mb",
        "0.05",
        "--quiet",
    ]
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ids = {
        line.split()[1] for out in outs for line in out.splitlines() if line.startswith("session ")
    }
    assert len(ids) == 2
    infos = list_sessions(tmp_path)
    assert {i.id for i in infos} == ids
    for info in infos:
        assert info.status == "closed"
        reader = SessionReader(info.path)
        assert reader.streams(), info.id
        for stream in reader.streams():
            seqs = reader.read(stream)["seq"].sort().to_list()
            assert seqs == list(range(len(seqs))), (info.id, stream)
            assert len(seqs) == info.events.get(stream, 0)
        assert reader.errors == []


# ---------------------------------------------------------------------------
# listing and retention
# ---------------------------------------------------------------------------
def _fake_session(data: Path, sid: str, start: datetime, status: str, size: int) -> Path:
    d = data / "sessions" / sid
    (d / ev.OPTIONS_PRINTS).mkdir(parents=True)
    (d / ev.OPTIONS_PRINTS / "blob.bin").write_bytes(b"x" * size)
    meta = {
        "id": sid,
        "status": status,
        "start_wall": start.isoformat().replace("+00:00", "Z"),
        "end_wall": (start + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
        "rows": {ev.OPTIONS_PRINTS: 10},
    }
    (d / "meta.json").write_text(json.dumps(meta))
    return d


def test_retention_removes_oldest_sealed_sessions_only(tmp_path: Path) -> None:
    now = datetime(2025, 11, 25, 12, tzinfo=UTC)
    day = timedelta(days=1)
    held = _fake_session(tmp_path, "20251101T000000Z-aaaaaa", now - 24 * day, "open", 1000)
    lock = elog._Lock(held / elog.LOCK_FILE)
    assert lock.try_acquire()
    try:
        _fake_session(tmp_path, "20251102T000000Z-bbbbbb", now - 23 * day, "open", 1000)  # crashed
        _fake_session(tmp_path, "20251103T000000Z-cccccc", now - 22 * day, "closed", 1000)
        _fake_session(tmp_path, "20251104T000000Z-dddddd", now - 3 * day, "recovered", 1000)
        _fake_session(tmp_path, "20251105T000000Z-eeeeee", now - 2 * day, "closed", 1000)
        _fake_session(tmp_path, "20251106T000000Z-ffffff", now - 1 * day, "closed", 1000)
        listed = list_sessions(tmp_path)
        assert [i.id[-6:] for i in listed] == [
            "aaaaaa",
            "bbbbbb",
            "cccccc",
            "dddddd",
            "eeeeee",
            "ffffff",
        ]
        assert [i.status for i in listed][:3] == ["open", "interrupted", "closed"]

        # age: only the sealed session older than 10 days goes
        assert apply_retention(tmp_path, 0, 10, now) == ["20251103T000000Z-cccccc"]
        # size: oldest sealed first, only until the total is under the limit
        sizes = {i.id[-6:]: i.bytes_on_disk for i in list_sessions(tmp_path)}
        limit_gb = (sum(sizes.values()) - sizes["dddddd"] + 1) / 1e9
        removed = apply_retention(tmp_path, limit_gb, 0, now)
        assert removed == ["20251104T000000Z-dddddd"]
        left = [i.id[-6:] for i in list_sessions(tmp_path)]
        assert left == ["aaaaaa", "bbbbbb", "eeeeee", "ffffff"]
        # never the open (locked) one, nor an interrupted one awaiting recovery
        apply_retention(tmp_path, 1e-9, 0.0001, now)
        assert [i.id[-6:] for i in list_sessions(tmp_path)] == ["aaaaaa", "bbbbbb"]
    finally:
        lock.release()
    assert not [p for p in (tmp_path / "sessions").iterdir() if p.name.startswith(".")]


def test_sessions_command_json_and_table(tmp_path: Path) -> None:
    for i in range(2):
        rec = SessionRecorder(
            tmp_path / "data",
            {"adapter": "synthetic", "profile": "firehose", "seed": i, "config_digest": "abc"},
            [ev.OPTIONS_PRINTS],
            LogConfig(**FAST),
        )
        rec.write(ev.OPTIONS_PRINTS, option_frames(1, rows=123 + i)[0])
        rec.close()
        time.sleep(0.01)
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "ISLANDFLOW_PATHS__LOG_DIR": str(tmp_path / "logs"),
    }
    base = [sys.executable, "-m", "islandflow_tui", "--data-dir", str(tmp_path / "data")]
    out = subprocess.run(
        [*base, "sessions", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["id"] for r in rows] == [s.id for s in list_sessions(tmp_path / "data")]
    assert [r["events"][ev.OPTIONS_PRINTS] for r in rows] == [123, 124]
    assert rows[0]["start"] <= rows[1]["start"]
    for r in rows:
        assert r["status"] == "closed" and r["profile"] == "firehose" and r["bytes"] > 0
        assert r["duration_s"] is not None
    # the data's own event-time span, from the segment statistics
    for r, info in zip(rows, list_sessions(tmp_path / "data"), strict=True):
        prints = SessionReader(info.path).read(ev.OPTIONS_PRINTS)
        assert (info.first_ts, info.last_ts) == (prints["ts"].min(), prints["ts"].max())
        assert r["first_event"].endswith("Z") and r["first_event"] <= r["last_event"]
    table = subprocess.run([*base, "sessions"], capture_output=True, text=True, env=env, timeout=60)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "ID" in lines[0] and "START" in lines[0] and "DATA FROM" in lines[0]
    assert [ln.split()[0] for ln in lines[1:3]] == [r["id"] for r in rows]
    assert "OP 123" in lines[1]


def test_headless_runner_never_imports_textual() -> None:
    code = (
        "import sys, islandflow_tui.engine.headless, islandflow_tui.engine.log\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'textual']\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_write_is_cheap_on_the_engine_thread(tmp_path: Path) -> None:
    """The engine thread only queues; encoding, disk and Parquet happen elsewhere."""
    rec = SessionRecorder(tmp_path, {}, [ev.OPTIONS_PRINTS], LogConfig(segment_max_mb=4, **FAST))
    durations = []
    for f in option_frames(100, rows=2000):
        t = time.perf_counter()
        rec.write(ev.OPTIONS_PRINTS, f)
        durations.append(time.perf_counter() - t)
        time.sleep(0.002)  # the engine does other work between batches
    rec.close()
    durations.sort()
    assert durations[len(durations) // 2] < 0.002, durations[len(durations) // 2]
    assert rec.rows_sealed[ev.OPTIONS_PRINTS] == 100 * 2000
