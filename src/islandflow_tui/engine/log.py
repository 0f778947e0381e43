"""The event log: every raw and derived event of a live run, as Parquet segments.

Why it exists: DESIGN "Event log" and "Replay and scrubbing".  Replay, scrubbing and
"why did this alert fire?" all need the exact events of a past run, and a killed
process must lose at most one flush interval of them.

Layout (one folder per session, one per stream)::

    <data dir>/sessions/<session id>/
        .lock                         flock(2)ed by the recording process
        meta.json                     session manifest, replaced atomically
        <stream>/
            000000000000-000000512344.parquet   sealed segment: first-last seq
            000000512345.arrows                 the open segment (first seq)
            index.json                          per-segment stats (a cache of the footers)

* **Session ids** are ``YYYYMMDDTHHMMSSZ-xxxxxx`` (UTC wall start + 6 random hex):
  sortable by start and unique across processes.  A session is created as a hidden
  ``.new-<id>`` folder, locked, given its ``meta.json`` and only then renamed into
  place, so nobody ever sees a session folder without its lock and manifest.
* **Open segment** (``<first seq>.arrows``): one Arrow IPC stream per stream, in
  arrival order (seq order; raw ``ts`` may be unsorted within a batch).  Every batch
  the writer thread takes is written to the OS at once (one ``write(2)`` per
  batch), so a killed process leaves every complete batch readable.  The bytes are
  polars' own IPC encoding with plain strings (it compacts sliced frames, which
  pyarrow's string-view writer does not), the schema message written once per file.
* **Sealed segment** (``<first seq>-<last seq>.parquet``, written by pyarrow: zstd
  level 1, ts/seq/id delta-coded, every other column dictionary-coded, min/max
  statistics on non-text columns only, see :func:`_column_plan`): rows sorted
  by (ts, seq); written to ``*.tmp`` and renamed atomically; its row count,
  first/last seq and min/max ts are in the footer's key-value metadata
  (``islandflow.segment``, JSON) and in ``index.json``, so nothing is scanned to plan
  a read.  A segment is sealed when its open file reaches ``segment_max_mb``
  (uncompressed Arrow bytes; the Parquet is ~14x smaller) or ``segment_max_age_s`` of
  wall time, and at close.  Sealing runs on ``SEALERS`` threads of its own from the
  frames kept in memory (the IPC file is only read back by recovery), so appending
  never waits for Parquet encoding.
* **meta.json**: adapter, profile, seed, config digest (whatever the caller passes),
  islandflow version, pid, host, start/end wall time, first/last event ts, sealed
  rows and segments per stream, bytes, status (``open``, ``closed``, ``failed``,
  ``recovered``), the last error, the durability knobs, and after recovery what it
  recovered.

Durability policy (``[log]`` knobs; the loss bound the kill test asserts):

* A frame handed to :meth:`SessionRecorder.write` is queued for the writer thread.
  ``write`` blocks (never drops: recording is lossless) while the writer still holds
  a frame handed more than ``flush_interval_ms`` ago, or while more than
  ``QUEUE_MAX_BYTES`` are queued.  So whenever ``write`` proceeds, every frame handed
  more than one flush interval earlier is in the OS, and a killed process (SIGKILL,
  OOM, crash) loses at most the frames handed during the last flush interval (the
  batch being written at the moment of death is torn and dropped by recovery; it is
  one of those frames).
* Sealed segments, ``index.json`` and ``meta.json`` are always fsync'd before they
  are renamed into place, and a sealed segment before its open file is unlinked:
  an OS crash or power cut never loses a sealed segment.
* ``fsync = true`` also fsyncs the open segments once per flush interval (when
  written since the last one), so an OS crash loses about one flush interval too.
  It is off by default: it makes every event reach the disk twice (the open
  segment's Arrow bytes are ~14x the Parquet bytes: ~35 MB/s of SSD writes at the
  firehose, ~30% less log throughput in bench/bench_log.py), while without it a
  size-sealed open segment is usually unlinked before the kernel ever writes it
  back.  Off, an OS crash (not a killed process) can lose the open segments: at
  most ``segment_max_age_s`` of events.

Faults: any OS error in the writer (disk full, unwritable dir) stops recording with
a one-line :attr:`SessionRecorder.error`; ``write`` turns into a counted no-op and
never raises into the engine thread, so the engine and screens keep running.  A
truncated or corrupt segment raises :class:`SegmentError` naming the file; readers
record it, log a warning and go on with the other segments.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import io
import itertools
import json
import logging
import os
import queue
import secrets
import shutil
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl
import pyarrow as pa
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq

from islandflow_tui import __version__
from islandflow_tui.config import LogConfig
from islandflow_tui.engine import events as ev

log = logging.getLogger("islandflow.log")

FORMAT_VERSION: Final = 1
SESSIONS_DIR: Final = "sessions"
META_FILE: Final = "meta.json"
LOCK_FILE: Final = ".lock"
INDEX_FILE: Final = "index.json"
OPEN_SUFFIX: Final = ".arrows"
SEALED_SUFFIX: Final = ".parquet"
TMP_SUFFIX: Final = ".tmp"
NEW_PREFIX: Final = ".new-"
TRASH_PREFIX: Final = ".trash-"
KV_KEY: Final = "islandflow.segment"
SEQ_DIGITS: Final = 12
COMPRESSION: Final = "zstd"
#: zstd level of sealed segments.  Measured on firehose option prints: level 1 costs
#: 10% less CPU than polars' default (3) for 0.8% more bytes; sealing is the
#: recorder's most expensive step, so the log takes the cheaper level.
COMPRESSION_LEVEL: Final = 1
#: Rows per Parquet row group of a sealed segment (polars' default): a seek's ts
#: filter skips row groups by their statistics, so they stay this small.
ROW_GROUP_ROWS: Final = 512**2
#: Integer columns delta-coded in sealed segments (they rise with the rows).
DELTA_COLUMNS: Final = frozenset({"ts", "seq", "id"})

#: Queued bytes (polars' estimate) above which ``write`` waits for the writer.
QUEUE_MAX_BYTES: Final = 256 * 2**20
#: Seal jobs that may wait for a sealer before the writer waits for them.
SEAL_QUEUE: Final = 2
#: Sealer threads.  Parquet encoding is the costly step and polars runs one file on
#: about one core, so two seals in parallel use a 2-core machine fully.
SEALERS: Final = max(1, min(2, os.cpu_count() or 1))
#: Sealed segments, index.json, meta.json and new folders are fsync'd before they are
#: renamed into place (and before an open segment is unlinked), whatever ``fsync``
#: says: they are ~14x fewer bytes than the open segments and the only durable copy.
SYNC_SEALED: Final = True
#: ``write`` gives up (recording stops with an error) after waiting this long.
STALL_TIMEOUT_S: Final = 30.0

_IPC_CONTINUATION: Final = b"\xff\xff\xff\xff"
_IPC_EOS: Final = b"\xff\xff\xff\xff\x00\x00\x00\x00"

#: The writer's ``write(2)``: a seam so tests can fill the disk (ENOSPC) on demand.
_os_write = os.write

#: Session states in ``meta.json``.
OPEN, CLOSED, RECOVERED, FAILED = "open", "closed", "recovered", "failed"


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
class SegmentError(Exception):
    """A segment that cannot be read; the message names the file."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"corrupt or truncated segment {self.path}: {reason}")


def sessions_root(data_dir: Path | str) -> Path:
    return Path(data_dir) / SESSIONS_DIR


def new_session_id(now: datetime | None = None) -> str:
    """``20251125T143000Z-1a2b3c``: sorts by start time, unique across processes."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _wall_iso(ns: int | None = None) -> str:
    t = datetime.fromtimestamp((time.time_ns() if ns is None else ns) / 1e9, UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_wall(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes, fsync: bool) -> None:
    """tmp + rename: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    with open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(path.parent)


def _write_json(path: Path, obj: Any, fsync: bool) -> None:
    _atomic_write(path, json.dumps(obj, indent=1, sort_keys=True).encode(), fsync)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def describe_error(exc: BaseException, path: Path | str | None = None) -> str:
    """One line a person can act on: what went wrong and which path."""
    where = str(path) if path is not None else ""
    if isinstance(exc, OSError):
        where = exc.filename or where
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"disk full writing {where}"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"cannot write {where}: {exc.strerror}"
        reason = exc.strerror or str(exc)
        return f"{reason} ({where})" if where else reason
    return f"{type(exc).__name__}: {exc}" + (f" ({where})" if where else "")


def _segment_first_seq(name: str) -> int:
    """First seq from a segment file name (``000000000123-000000000456.parquet``)."""
    return int(name.split(".", 1)[0].split("-", 1)[0])


def _sealed_name(first_seq: int, last_seq: int) -> str:
    return f"{first_seq:0{SEQ_DIGITS}d}-{last_seq:0{SEQ_DIGITS}d}{SEALED_SUFFIX}"


def _open_name(first_seq: int) -> str:
    return f"{first_seq:0{SEQ_DIGITS}d}{OPEN_SUFFIX}"


class _Lock:
    """An exclusive, non-blocking ``flock`` on ``<session>/.lock``.

    flock locks belong to the open file, so the kernel drops it when the holder dies
    (even by SIGKILL) and a second open in the same process conflicts too.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self, create: bool = True) -> bool:
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            return True  # no lock file: nobody can hold it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def is_locked(session_dir: Path) -> bool:
    """True while a live process holds the session (recording or recovering it)."""
    lock = _Lock(session_dir / LOCK_FILE)
    if lock.try_acquire(create=False):
        lock.release()
        return False
    return True


# ---------------------------------------------------------------------------
# Segment metadata and the two segment formats
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What is known about a sealed segment without reading its rows."""

    path: Path
    stream: str
    rows: int
    first_seq: int
    last_seq: int
    min_ts: int
    max_ts: int
    bytes: int

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "rows": self.rows,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "min_ts": self.min_ts,
            "max_ts": self.max_ts,
            "bytes": self.bytes,
        }

    @classmethod
    def from_json(cls, stream_dir: Path, stream: str, d: Mapping[str, Any]) -> SegmentInfo:
        return cls(
            stream_dir / str(d["file"]),
            stream,
            int(d["rows"]),
            int(d["first_seq"]),
            int(d["last_seq"]),
            int(d["min_ts"]),
            int(d["max_ts"]),
            int(d["bytes"]),
        )


def read_segment_info(path: Path | str, stream: str | None = None) -> SegmentInfo:
    """Stats of a sealed segment from its Parquet footer only (no row is read).

    Raises :class:`SegmentError` naming the file if the footer is missing or bad.
    """
    path = Path(path)
    stream = stream or path.parent.name
    try:
        size = path.stat().st_size
        md = pq.read_metadata(path)
    except Exception as exc:
        raise SegmentError(path, f"unreadable Parquet footer ({exc})") from exc
    kv = md.metadata or {}
    raw = kv.get(KV_KEY.encode())
    if raw is not None:
        try:
            d = json.loads(raw)
            return SegmentInfo(
                path,
                stream,
                int(d["rows"]),
                int(d["first_seq"]),
                int(d["last_seq"]),
                int(d["min_ts"]),
                int(d["max_ts"]),
                size,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SegmentError(path, f"bad {KV_KEY} footer metadata ({exc})") from exc
    # A Parquet file written by something else: fall back to row-group statistics.
    names = md.schema.names
    if "ts" not in names or "seq" not in names:
        raise SegmentError(path, "no ts/seq columns")
    if md.num_rows == 0:
        return SegmentInfo(path, stream, 0, 0, -1, 0, -1, size)
    i_ts, i_seq = names.index("ts"), names.index("seq")
    mins: dict[int, int] = {}
    maxs: dict[int, int] = {}
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        for i in (i_ts, i_seq):
            st = rg.column(i).statistics
            if st is None or not st.has_min_max:
                raise SegmentError(path, "no footer statistics for ts/seq")
            mins[i] = min(mins.get(i, st.min), st.min)
            maxs[i] = max(maxs.get(i, st.max), st.max)
    return SegmentInfo(
        path, stream, md.num_rows, mins[i_seq], maxs[i_seq], mins[i_ts], maxs[i_ts], size
    )


def read_segment(
    path: Path | str, stream: str | None = None, where: pl.Expr | None = None
) -> pl.DataFrame:
    """All rows of one sealed segment (or those matching ``where``, read through a
    scan so row groups whose statistics exclude them are skipped); :class:`SegmentError`
    naming the file if it is bad."""
    path = Path(path)
    stream = stream or path.parent.name
    try:
        df = (
            pl.read_parquet(path)
            if where is None
            else pl.scan_parquet(path).filter(where).collect()
        )
    except Exception as exc:
        raise SegmentError(path, f"{type(exc).__name__}: {exc}") from exc
    return _conform(stream, df, path)


def _conform(stream: str, df: pl.DataFrame, path: Path) -> pl.DataFrame:
    if stream not in ev.SCHEMAS:
        return df
    target = ev.polars_schema(stream)
    if df.schema == target:
        return df
    try:
        return df.select(target.names()).cast(dict(target))
    except Exception as exc:
        raise SegmentError(path, f"does not match the {stream} schema ({exc})") from exc


@dataclass(slots=True)
class OpenSegmentRead:
    """What a tolerant read of an open (``.arrows``) segment found."""

    frame: pl.DataFrame | None  # complete batches, arrival order; None if there were none
    batches: int
    torn_bytes: int  # bytes after the last complete batch (a torn tail), 0 if clean


def read_open_segment(path: Path | str, stream: str | None = None) -> OpenSegmentRead:
    """Every complete batch of an Arrow IPC stream file, tolerating a torn tail.

    The open segment is appended batch by batch with no footer; a killed writer can
    leave half a batch at the end.  Reading stops at the first message that does not
    parse completely; everything before it is intact because each batch was written
    after the previous one had fully reached the OS.
    """
    path = Path(path)
    stream = stream or path.parent.name
    data = pa.memory_map(str(path), "r")
    size = data.size()
    batches: list[pa.RecordBatch] = []
    good_end = 0
    try:
        reader = pa_ipc.open_stream(data)
        good_end = data.tell()
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                good_end = data.tell()
                break
            batches.append(batch)
            good_end = data.tell()
    except (pa.ArrowInvalid, OSError, ValueError):
        pass  # torn or corrupt from here on
    finally:
        data.close()
    torn = max(0, size - good_end)
    if torn and size - good_end == len(_IPC_EOS):
        torn = 0  # a closed segment ends with the end-of-stream marker
    if not batches:
        return OpenSegmentRead(None, 0, torn)
    table = pa.Table.from_batches(batches)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return OpenSegmentRead(_conform(stream, frame, path), len(batches), torn)


def _write_sealed(
    stream_dir: Path, stream: str, df: pl.DataFrame, sorted_: bool, fsync: bool
) -> SegmentInfo:
    """Sort (unless already sorted), write Parquet to a tmp name, rename into place."""
    if not sorted_:
        df = df.sort(["ts", "seq"])
    seq = df["seq"]
    ts = df["ts"]
    first_seq, last_seq = int(seq.min()), int(seq.max())  # type: ignore[arg-type]
    min_ts, max_ts = int(ts.min()), int(ts.max())  # type: ignore[arg-type]
    stats = {
        "format": FORMAT_VERSION,
        "stream": stream,
        "rows": df.height,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "min_ts": min_ts,
        "max_ts": max_ts,
    }
    final = stream_dir / _sealed_name(first_seq, last_seq)
    tmp = final.with_name(final.name + TMP_SUFFIX)
    # String views: polars hands its own buffers over without a copy (the default
    # large-string export copies every string, 20% of the write).  pyarrow 26 cannot
    # write views nested in lists, so frames with nested columns take the copy.
    flat = not any(dt.is_nested() for dt in df.schema.dtypes())
    table = df.to_arrow(compat_level=pl.CompatLevel.newest() if flat else None)
    plan = _column_plan(table.schema)
    table = table.replace_schema_metadata({KV_KEY: json.dumps(stats)})
    pq.write_table(
        table,
        tmp,
        row_group_size=ROW_GROUP_ROWS,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        use_dictionary=plan.dictionary,
        column_encoding=plan.encodings,
        write_statistics=plan.statistics,
        store_schema=False,
    )
    if fsync:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp, final)
    if fsync:
        _fsync_dir(stream_dir)
    return SegmentInfo(
        final, stream, df.height, first_seq, last_seq, min_ts, max_ts, final.stat().st_size
    )


def _leaves(name: str, typ: pa.DataType) -> list[tuple[str, pa.DataType]]:
    """Parquet column paths (as the writer's properties name them) and leaf types."""
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return _leaves(f"{name}.list.element", typ.value_type)
    if pa.types.is_struct(typ):
        return [leaf for f in typ.fields for leaf in _leaves(f"{name}.{f.name}", f.type)]
    return [(name, typ)]


def _is_text(typ: pa.DataType) -> bool:
    return (
        pa.types.is_string(typ)
        or pa.types.is_large_string(typ)
        or pa.types.is_string_view(typ)
        or pa.types.is_binary(typ)
        or pa.types.is_large_binary(typ)
        or pa.types.is_binary_view(typ)
    )


@dataclass(frozen=True, slots=True)
class _ColumnPlan:
    dictionary: list[str]
    encodings: dict[str, str]
    statistics: list[str]


@functools.lru_cache(maxsize=64)
def _column_plan(schema: pa.Schema) -> _ColumnPlan:
    """How each leaf column of a sealed segment is encoded.

    Measured on firehose option prints (bench/bench_log.py's rows, pyarrow 26,
    zstd 1, CPU of one ``write_table``): delta-coding the rising integer keys (ts,
    seq, id and their kin) and a dictionary for every other column writes 8.7 bytes
    per print instead of 12.5 (polars' ``write_parquet``) for 16% less CPU; a
    column whose dictionary outgrows its page falls back to plain by itself.
    Min/max statistics of text columns took another quarter of the write (string
    comparisons per value) and serve no reader: every row group holds a mix of
    symbols, and reads filter on ts and seq.  So only non-text leaves keep them.
    """
    plan = _ColumnPlan([], {}, [])
    for f in schema:
        if pa.types.is_int64(f.type) and (
            f.name in DELTA_COLUMNS or f.name.endswith(("_ts", "_seq", "_id"))
        ):
            plan.encodings[f.name] = "DELTA_BINARY_PACKED"
            plan.statistics.append(f.name)
            continue
        for path, typ in _leaves(f.name, f.type):
            plan.dictionary.append(path)
            if not _is_text(typ):
                plan.statistics.append(path)
    return plan


def _is_sorted_by_ts_seq(df: pl.DataFrame) -> bool:
    """Rows in (ts, seq) order?  seq rises with row order, so ts non-decreasing is enough."""
    return bool(df["ts"].is_sorted()) and bool(df["seq"].is_sorted())


def _write_index(stream_dir: Path, segments: Iterable[SegmentInfo], fsync: bool) -> None:
    segs = sorted(segments, key=lambda s: s.first_seq)
    _write_json(
        stream_dir / INDEX_FILE,
        {"format": FORMAT_VERSION, "segments": [s.as_json() for s in segs]},
        fsync,
    )


# ---------------------------------------------------------------------------
# The recorder
# ---------------------------------------------------------------------------
@dataclass(slots=True)
class _Item:
    stream: str
    frame: pl.DataFrame
    t: float  # time.monotonic() when handed
    nbytes: int


@dataclass(slots=True)
class _OpenSegment:
    """The writer's state for one stream's open segment."""

    path: Path
    fd: int
    schema_msg: bytes  # the IPC schema message every batch of this file shares
    opened: float  # monotonic
    frames: list[pl.DataFrame] = field(default_factory=list)
    bytes: int = 0
    rows: int = 0
    max_ts: int = -(2**63)
    sorted: bool = True
    dirty: bool = False  # written since the last fsync


@dataclass(slots=True)
class _SealJob:
    stream: str
    frames: list[pl.DataFrame]
    ipc_path: Path
    sorted: bool


class SessionRecorder:
    """Records frames of the given streams into a new session; the engine's lossless subscriber.

    ``write`` runs on the engine thread and only queues; a writer thread appends
    each frame to the stream's open Arrow IPC segment, and a sealer thread turns
    full or old open segments into sorted Parquet.  Nothing here raises into the
    caller once constructed: failures set :attr:`error` and stop recording.
    """

    def __init__(
        self,
        root_data_dir: Path | str,
        meta: Mapping[str, Any],
        streams: Iterable[str],
        cfg_log: LogConfig,
    ) -> None:
        self.streams: tuple[str, ...] = tuple(streams)
        unknown = [s for s in self.streams if s not in ev.SCHEMAS]
        if unknown:
            raise ValueError(f"unknown stream(s) for recording: {', '.join(unknown)}")
        self.cfg = cfg_log
        self.data_dir = Path(root_data_dir)
        self.session_id = ""
        #: the background writer of this session's checkpoints (engine/checkpoints.py)
        self.checkpoint_writer: Any = None
        #: why checkpoints are paused (short, for the status bar), "" while they are taken
        self.checkpoint_pause = ""
        self.checkpoints_skipped = 0
        self.path: Path | None = None
        self._flush_s = max(cfg_log.flush_interval_ms, 1) / 1000.0
        self._seg_max_bytes = max(int(cfg_log.segment_max_mb * 2**20), 1)
        self._seg_max_age = max(float(cfg_log.segment_max_age_s), 0.001)
        self._targets = {s: ev.polars_schema(s) for s in self.streams}
        self._cond = threading.Condition()
        self._pending: deque[_Item] = deque()
        self._pending_bytes = 0
        self._handed = dict.fromkeys(self.streams, 0)
        self._written = dict.fromkeys(self.streams, 0)
        self._sealed = dict.fromkeys(self.streams, 0)
        self._dropped = 0
        self._error = ""
        self._status = "starting"
        self._closing = False
        self._closed = False
        self._bytes_sealed = 0
        self._bytes_open = 0
        self._open: dict[str, _OpenSegment] = {}
        self._buf = io.BytesIO()  # the writer's reusable IPC encoding buffer
        self._segments: dict[str, list[SegmentInfo]] = {s: [] for s in self.streams}
        self._meta_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._min_ts: int | None = None
        self._max_ts: int | None = None
        self._lock: _Lock | None = None
        self._seal_q: queue.Queue[_SealJob | None] = queue.Queue(maxsize=SEAL_QUEUE)
        self._writer: threading.Thread | None = None
        self._sealers: list[threading.Thread] = []
        self.meta: dict[str, Any] = {}
        try:
            self._create_session(dict(meta))
        except Exception as exc:  # unwritable data dir etc.: visible error, engine goes on
            self._fail(exc, self.path or sessions_root(self.data_dir))
            return
        self._status = "recording"
        self._writer = threading.Thread(
            target=self._writer_main, name="islandflow-log-writer", daemon=True
        )
        self._sealers = [
            threading.Thread(
                target=self._sealer_main, name=f"islandflow-log-sealer-{i}", daemon=True
            )
            for i in range(SEALERS)
        ]
        for t in self._sealers:
            t.start()
        self._writer.start()

    # -- public surface --------------------------------------------------------
    @property
    def status(self) -> str:
        """``recording``, ``closed``, ``error`` (see :attr:`error`) or ``starting``."""
        return self._status

    @property
    def error(self) -> str:
        """One human line if recording stopped because of a fault, else ``""``."""
        return self._error

    @property
    def rows_handed(self) -> dict[str, int]:
        """Rows accepted by :meth:`write` per stream."""
        with self._cond:
            return dict(self._handed)

    @property
    def rows_written(self) -> dict[str, int]:
        """Rows written and flushed to the OS per stream (they survive a killed process)."""
        with self._cond:
            return dict(self._written)

    @property
    def rows_sealed(self) -> dict[str, int]:
        with self._cond:
            return dict(self._sealed)

    @property
    def rows_dropped(self) -> int:
        """Rows not recorded because recording had stopped (error or closed)."""
        return self._dropped

    @property
    def bytes_sealed(self) -> int:
        """Sealed Parquet bytes of this session (the open segments' IPC is ~14x bigger
        than what it seals into)."""
        return self._bytes_sealed

    @property
    def bytes_on_disk(self) -> int:
        """Sealed Parquet plus open IPC bytes of this session."""
        return self._bytes_sealed + self._bytes_open

    def status_line(self) -> str:
        """Short text for a status bar: ``REC 1.2M ev 34.0 MB`` or why recording stopped."""
        if self._error:
            return f"recording stopped: {self._error}"
        rows = sum(self._written.values())
        line = f"REC {_compact(rows)} ev {self.bytes_on_disk / 1e6:.1f} MB"
        if self.checkpoint_pause:
            line += f" · checkpoints paused: {self.checkpoint_pause}"
        return line

    def write(self, stream: str, frame: pl.DataFrame) -> None:
        """Queue one frame; called on the engine thread (a ``LosslessCallback``).

        Blocks only while the writer is more than a flush interval (or
        ``QUEUE_MAX_BYTES``) behind: that is the back-pressure that keeps the loss
        bound.  Never raises.
        """
        try:
            n = frame.height
            if n == 0 or stream not in self._handed:
                return
            nbytes = frame.estimated_size()
            with self._cond:
                waited_since: float | None = None
                while True:
                    if self._error or self._closing:
                        self._dropped += n
                        return
                    if not self._behind():
                        break
                    now = time.monotonic()
                    if waited_since is None:
                        waited_since = now
                    elif now - waited_since > STALL_TIMEOUT_S:
                        self._set_error(
                            f"writer stalled for {STALL_TIMEOUT_S:.0f} s (disk hung?) "
                            f"writing {self.path}"
                        )
                        self._dropped += n
                        return
                    self._cond.wait(0.05)
                # The writer gets its own frame object (columns are shared, not copied):
                # polars borrows a frame mutably in write_ipc_stream and re-takes the GIL
                # to write into a BytesIO, so sharing the engine's object can deadlock.
                item = _Item(stream, frame.clone(), time.monotonic(), nbytes)
                self._pending.append(item)
                self._pending_bytes += nbytes
                self._handed[stream] += n
                self._cond.notify_all()
        except Exception as exc:  # never into the engine thread
            self._fail(exc, self.path)

    def close(self, timeout: float | None = 60.0) -> None:
        """Write everything queued, seal every open segment, mark the session closed.

        Idempotent and safe from several threads: every caller returns only once
        the session is sealed (or ``timeout`` passed).
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join(timeout)
        for t in self._sealers:
            t.join(timeout)
        alive = [t.name for t in (self._writer, *self._sealers) if t is not None and t.is_alive()]
        if alive:  # a hung disk: leave the session locked and open for recovery
            log.warning("recorder close timed out; %s still running", ", ".join(alive))
            return
        with self._close_lock:
            if self._closed:
                return
            if self.path is not None:
                try:
                    self._update_meta(final=True)
                except Exception as exc:
                    self._fail(exc, self.path / META_FILE)
            if self._lock is not None:
                self._lock.release()
            if not self._error:
                self._status = "closed"
            self._closed = True

    def __enter__(self) -> SessionRecorder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- session creation ------------------------------------------------------
    def _create_session(self, meta: dict[str, Any]) -> None:
        root = sessions_root(self.data_dir)
        root.mkdir(parents=True, exist_ok=True)
        for _attempt in range(20):
            sid = new_session_id()
            tmp_dir = root / f"{NEW_PREFIX}{sid}"
            final = root / sid
            if final.exists():
                continue
            tmp_dir.mkdir()
            lock = _Lock(tmp_dir / LOCK_FILE)
            try:
                if not lock.try_acquire():  # pragma: no cover - nobody else knows this name
                    continue
                if self._publish_session(tmp_dir, final, sid, meta):
                    lock.path = final / LOCK_FILE
                    self._lock = lock
                    return
            except BaseException:
                lock.release()
                shutil.rmtree(tmp_dir, ignore_errors=True)
                raise
            lock.release()
            shutil.rmtree(tmp_dir, ignore_errors=True)
        raise OSError(errno.EEXIST, "could not pick a unique session id", str(root))

    def _publish_session(self, tmp_dir: Path, final: Path, sid: str, meta: dict[str, Any]) -> bool:
        """Write the manifest into the locked hidden folder, then rename it into place."""
        now_ns = time.time_ns()
        self.meta = {
            **meta,
            "format": FORMAT_VERSION,
            "id": sid,
            "status": OPEN,
            "islandflow_version": __version__,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "streams": list(self.streams),
            "start_wall": _wall_iso(now_ns),
            "updated_wall": _wall_iso(now_ns),
            "end_wall": None,
            "start_ts": None,
            "end_ts": None,
            "rows": dict.fromkeys(self.streams, 0),
            "segments": dict.fromkeys(self.streams, 0),
            "bytes": 0,
            "error": "",
            "durability": {
                "flush_interval_ms": self.cfg.flush_interval_ms,
                "fsync_open_segments": self.cfg.fsync,
            },
        }
        _write_json(tmp_dir / META_FILE, self.meta, SYNC_SEALED)
        try:
            os.rename(tmp_dir, final)  # fails if a non-empty session has this id
        except OSError:
            return False
        if SYNC_SEALED:
            _fsync_dir(final.parent)
        self.session_id = sid
        self.path = final
        return True

    # -- state helpers -----------------------------------------------------------
    def _behind(self) -> bool:
        """Caller holds ``_cond``: is the writer more than a flush interval behind?"""
        if not self._pending:
            return False
        if self._pending_bytes > QUEUE_MAX_BYTES:
            return True
        return time.monotonic() - self._pending[0].t > self._flush_s

    def _set_error(self, message: str) -> None:
        with self._cond:
            if not self._error:
                self._error = message
                log.error("%s", message)
            self._status = "error"
            # frames still queued will never be written: count them and free them
            self._dropped += sum(item.frame.height for item in self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            self._cond.notify_all()

    def _fail(self, exc: BaseException, path: Path | str | None) -> None:
        msg = describe_error(exc, path)
        if not self._error:
            log.error("%s", msg, exc_info=(type(exc), exc, exc.__traceback__))
        self._set_error(msg)
        if self.path is not None:  # best effort: the manifest says why
            with contextlib.suppress(Exception):
                self._update_meta(final=False)

    # -- writer thread -----------------------------------------------------------
    def _writer_main(self) -> None:
        last_fsync = time.monotonic()
        try:
            while True:
                with self._cond:
                    while not self._pending and not self._closing and not self._error:
                        self._cond.wait(self._housekeeping_wait())
                        if not self._pending:
                            break
                    if self._error:
                        break
                    item = self._pending[0] if self._pending else None
                    done = self._closing and not self._pending
                if item is not None:
                    self._append(item)
                    with self._cond:
                        if self._error:  # the queue was dropped meanwhile
                            break
                        self._pending.popleft()
                        self._pending_bytes -= item.nbytes
                        self._written[item.stream] += item.frame.height
                        self._cond.notify_all()
                now = time.monotonic()
                if self.cfg.fsync and now - last_fsync >= self._flush_s:
                    self._fsync_open()
                    last_fsync = now
                for stream, seg in list(self._open.items()):
                    if now - seg.opened >= self._seg_max_age:
                        self._rotate(stream)
                if done:
                    for stream in list(self._open):
                        self._rotate(stream)
                    break
        except Exception as exc:
            seg_path = next(iter(self._open.values())).path if self._open else self.path
            self._fail(exc, seg_path)
        finally:
            for seg in self._open.values():
                with contextlib.suppress(OSError):
                    os.close(seg.fd)
            self._open.clear()
            for _ in self._sealers:
                self._seal_q.put(None)

    def _housekeeping_wait(self) -> float:
        """How long the idle writer may sleep before an fsync or an age seal is due."""
        wait = self._flush_s
        now = time.monotonic()
        for seg in self._open.values():
            wait = min(wait, max(0.0, seg.opened + self._seg_max_age - now))
        return max(wait, 0.001)

    def _append(self, item: _Item) -> None:
        stream, frame = item.stream, item.frame
        target = self._targets[stream]
        if frame.schema != target:
            try:
                frame = frame.select(target.names()).cast(dict(target))
            except Exception as exc:
                raise ValueError(f"{stream} frame does not match its schema: {exc}") from exc
        data = self._encode(frame)
        if data[:4] != _IPC_CONTINUATION:
            raise ValueError("unexpected Arrow IPC encoding from polars (no continuation marker)")
        schema_len = 8 + struct.unpack_from("<i", data, 4)[0]
        end = len(data) - len(_IPC_EOS) if data[-8:] == _IPC_EOS else len(data)
        seg = self._open.get(stream)
        if seg is not None and data[:schema_len] != seg.schema_msg:
            self._rotate(stream)  # the encoding changed: start a file with the new schema
            seg = None
        ts = frame["ts"]
        f_min, f_max = int(ts.min()), int(ts.max())  # type: ignore[arg-type]
        if seg is None:
            first_seq = int(frame["seq"].min())  # type: ignore[arg-type]
            stream_dir = self._stream_dir(stream)
            path = stream_dir / _open_name(first_seq)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            seg = _OpenSegment(path, fd, bytes(data[:schema_len]), time.monotonic())
            self._open[stream] = seg
            chunk = data[:end]
        else:
            chunk = data[schema_len:end]
        self._write_all(seg, chunk)
        seg.frames.append(frame)
        seg.rows += frame.height
        if seg.sorted and (f_min < seg.max_ts or not ts.is_sorted()):
            seg.sorted = False
        seg.max_ts = max(seg.max_ts, f_max)
        self._min_ts = f_min if self._min_ts is None else min(self._min_ts, f_min)
        self._max_ts = f_max if self._max_ts is None else max(self._max_ts, f_max)
        if seg.bytes >= self._seg_max_bytes:
            self._rotate(stream)

    def _encode(self, frame: pl.DataFrame) -> memoryview:
        """The frame as an Arrow IPC stream, in a buffer reused from frame to frame.

        Reusing the buffer matters: a fresh one per frame costs a page fault per 4 kB
        of every frame (measured: the writer's CPU doubles).  Plain (large) strings,
        not string views: the same speed alone, 15% fewer bytes, and several times
        cheaper than views while a seal runs on another thread.
        """
        buf = self._buf
        try:
            buf.seek(0)
            frame.write_ipc_stream(buf, compat_level=pl.CompatLevel.oldest())
        except BufferError:  # a view of the last frame is still alive somewhere
            buf = self._buf = io.BytesIO()
            frame.write_ipc_stream(buf, compat_level=pl.CompatLevel.oldest())
        return buf.getbuffer()[: buf.tell()]

    def _write_all(self, seg: _OpenSegment, chunk: memoryview) -> None:
        view = memoryview(chunk)
        while view:
            n = _os_write(seg.fd, view)
            view = view[n:]
            seg.bytes += n
            self._bytes_open += n
        seg.dirty = True

    def _fsync_open(self) -> None:
        for seg in self._open.values():
            if seg.dirty:
                os.fsync(seg.fd)
                seg.dirty = False

    def _stream_dir(self, stream: str) -> Path:
        assert self.path is not None
        d = self.path / stream
        if not d.exists():
            d.mkdir(exist_ok=True)
            if SYNC_SEALED:
                _fsync_dir(self.path)
        return d

    def _rotate(self, stream: str) -> None:
        """Close the open segment and hand it to the sealer (which may make us wait)."""
        seg = self._open.pop(stream)
        try:
            _os_write(seg.fd, _IPC_EOS)
            seg.bytes += len(_IPC_EOS)
            self._bytes_open += len(_IPC_EOS)
            if self.cfg.fsync:
                os.fsync(seg.fd)
        finally:
            os.close(seg.fd)
        job = _SealJob(stream, seg.frames, seg.path, seg.sorted)
        while True:
            try:
                self._seal_q.put(job, timeout=0.1)
                return
            except queue.Full:
                if self._error:
                    return

    # -- sealer thread -----------------------------------------------------------
    def _sealer_main(self) -> None:
        while True:
            job = self._seal_q.get()
            if job is None:
                return
            if self._error:
                continue  # keep draining so the writer never blocks; recovery seals later
            try:
                self._seal(job)
            except Exception as exc:
                self._fail(exc, job.ipc_path.parent)

    def _seal(self, job: _SealJob) -> None:
        df = pl.concat(job.frames, how="vertical", rechunk=False)
        # fsync'd before the IPC file goes, whatever the knob: the sealed copy must be on
        # disk before the only other copy is unlinked (Parquet is ~14x fewer bytes).
        info = _write_sealed(job.ipc_path.parent, job.stream, df, job.sorted, SYNC_SEALED)
        ipc_bytes = job.ipc_path.stat().st_size
        job.ipc_path.unlink()
        with self._cond:
            self._sealed[job.stream] += info.rows
            self._segments[job.stream].append(info)
            self._bytes_sealed += info.bytes
            self._bytes_open -= ipc_bytes
        with self._index_lock:  # two sealers may finish segments of one stream at once
            with self._cond:
                segments = list(self._segments[job.stream])
            _write_index(job.ipc_path.parent, segments, SYNC_SEALED)
        self._update_meta(final=False)

    def _update_meta(self, final: bool) -> None:
        assert self.path is not None
        with self._meta_lock:
            with self._cond:
                rows = dict(self._sealed)
                segs = {s: len(v) for s, v in self._segments.items()}
            m = self.meta
            m["rows"] = rows
            m["segments"] = segs
            m["start_ts"] = self._min_ts
            m["end_ts"] = self._max_ts
            m["bytes"] = self._bytes_sealed
            m["updated_wall"] = _wall_iso()
            m["error"] = self._error
            if self._error:
                m["status"] = FAILED
            elif final:
                m["status"] = CLOSED
            if final:
                m["end_wall"] = m["updated_wall"]
                m["rows_dropped"] = self._dropped
            _write_json(self.path / META_FILE, m, SYNC_SEALED)


def _compact(n: float) -> str:
    """1234 -> 1.2k, 1234567 -> 1.2M."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return f"{int(n)}"


# ---------------------------------------------------------------------------
# Recovery
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """One open segment that recovery sealed (or found already sealed)."""

    session: str
    stream: str
    file: str  # the .arrows file
    rows_recovered: int  # rows in complete batches, now in a sealed segment
    batches: int
    torn_bytes: int  # bytes of a torn tail batch that were dropped (its rows are lost)
    sealed_as: str  # the Parquet file, "" if nothing was recoverable
    note: str = ""

    def line(self) -> str:
        lost = f", dropped a torn tail of {self.torn_bytes} bytes" if self.torn_bytes else ""
        note = f" ({self.note})" if self.note else ""
        return (
            f"recovered {self.rows_recovered} {self.stream} rows of session {self.session} "
            f"from {self.file}{lost}{note}"
        )


def recover(data_dir: Path | str, *, fsync: bool = True) -> list[RecoveryReport]:
    """Seal every interrupted open segment of sessions no live process holds.

    Safe to run at any time and from several processes: a session is only touched
    while its lock is held, and every step (Parquet tmp + rename, then unlinking the
    IPC file, then the manifest) can be interrupted and redone.
    """
    root = sessions_root(data_dir)
    if not root.is_dir():
        return []
    reports: list[RecoveryReport] = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir():
            continue
        if entry.name.startswith((NEW_PREFIX, TRASH_PREFIX)):
            _clean_leftover(entry)
            continue
        lock = _Lock(entry / LOCK_FILE)
        if not lock.try_acquire():
            continue  # recording (or being recovered) by a live process
        try:
            reports.extend(_recover_session(entry, fsync))
        except Exception:
            log.exception("recovery of session %s failed", entry.name)
        finally:
            lock.release()
    return reports


def _clean_leftover(path: Path) -> None:
    """Remove a half-created (``.new-``) or half-deleted (``.trash-``) session folder."""
    lock = _Lock(path / LOCK_FILE)
    if not lock.try_acquire(create=False):
        return
    try:
        shutil.rmtree(path, ignore_errors=True)
    finally:
        lock.release()


def _recover_session(session: Path, fsync: bool) -> list[RecoveryReport]:
    meta = _read_json(session / META_FILE)
    status = (meta or {}).get("status")
    stream_dirs = sorted(d for d in session.iterdir() if d.is_dir() and d.name in ev.SCHEMAS)
    leftovers = [
        p for d in stream_dirs for p in d.iterdir() if p.name.endswith((OPEN_SUFFIX, TMP_SUFFIX))
    ]
    if meta is not None and status in (CLOSED, RECOVERED) and not leftovers:
        return []
    reports: list[RecoveryReport] = []
    for stream_dir in stream_dirs:
        stream = stream_dir.name
        for tmp in stream_dir.glob(f"*{TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)
        sealed_first = {_segment_first_seq(p.name) for p in stream_dir.glob(f"*{SEALED_SUFFIX}")}
        changed = False
        for ipc_path in sorted(stream_dir.glob(f"*{OPEN_SUFFIX}")):
            first = _segment_first_seq(ipc_path.name)
            if first in sealed_first:  # sealed before the crash; only the unlink was missed
                ipc_path.unlink()
                reports.append(
                    RecoveryReport(
                        session.name, stream, ipc_path.name, 0, 0, 0, "", "already sealed"
                    )
                )
                continue
            try:
                got = read_open_segment(ipc_path, stream)
            except SegmentError as exc:
                log.warning("%s", exc)
                reports.append(
                    RecoveryReport(session.name, stream, ipc_path.name, 0, 0, 0, "", str(exc))
                )
                continue
            sealed_as = ""
            if got.frame is not None and got.frame.height:
                info = _write_sealed(
                    stream_dir, stream, got.frame, _is_sorted_by_ts_seq(got.frame), fsync
                )
                sealed_as = info.path.name
            ipc_path.unlink()
            changed = True
            rows = 0 if got.frame is None else got.frame.height
            report = RecoveryReport(
                session.name, stream, ipc_path.name, rows, got.batches, got.torn_bytes, sealed_as
            )
            log.warning("%s", report.line())
            reports.append(report)
        if changed or not (stream_dir / INDEX_FILE).exists():
            infos = SessionReader(session).segments(stream)
            _write_index(stream_dir, infos, fsync)
    _mark_recovered(session, meta, reports, fsync)
    return reports


def _mark_recovered(
    session: Path, meta: dict[str, Any] | None, reports: list[RecoveryReport], fsync: bool
) -> None:
    reader = SessionReader(session)
    m: dict[str, Any] = dict(meta or {"id": session.name, "format": FORMAT_VERSION})
    rows: dict[str, int] = {}
    segs: dict[str, int] = {}
    min_ts: int | None = None
    max_ts: int | None = None
    last_mtime = 0.0
    for stream in reader.streams():
        infos = reader.segments(stream)
        rows[stream] = sum(i.rows for i in infos)
        segs[stream] = len(infos)
        for i in infos:
            if i.rows:
                min_ts = i.min_ts if min_ts is None else min(min_ts, i.min_ts)
                max_ts = i.max_ts if max_ts is None else max(max_ts, i.max_ts)
            with contextlib.suppress(OSError):
                last_mtime = max(last_mtime, i.path.stat().st_mtime)
    previous = m.get("status")
    m["rows"] = rows
    m["segments"] = segs
    m["start_ts"] = min_ts if m.get("start_ts") is None else m["start_ts"]
    m["end_ts"] = max_ts
    m["bytes"] = _dir_bytes(session)
    if not m.get("end_wall"):
        end_ns = int(last_mtime * 1e9) if last_mtime else None
        m["end_wall"] = _wall_iso(end_ns) if end_ns else m.get("updated_wall")
    if not m.get("start_wall"):
        m["start_wall"] = m["end_wall"]
    m["status"] = RECOVERED
    m["recovery"] = {
        "at": _wall_iso(),
        "previous_status": previous,
        "rows_recovered": {r.stream: r.rows_recovered for r in reports if r.rows_recovered},
        "torn_bytes": {r.stream: r.torn_bytes for r in reports if r.torn_bytes},
        "files": [r.file for r in reports],
    }
    _write_json(session / META_FILE, m, fsync)


# ---------------------------------------------------------------------------
# Listing and retention
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One row of ``islandflow sessions``."""

    id: str
    path: Path
    status: str  # open (recording now), closed, recovered, failed, interrupted, unreadable
    start: datetime | None  # wall clock, UTC
    end: datetime | None
    duration_s: float | None
    events: dict[str, int]  # sealed rows per stream
    bytes_on_disk: int
    meta: dict[str, Any]
    #: event-time span of the sealed raw rows (ns; None: nothing sealed).  For an
    #: imported or replayed-from-vendor session it differs from the wall clock start.
    first_ts: int | None = None
    last_ts: int | None = None

    @property
    def events_total(self) -> int:
        return sum(self.events.values())

    def as_json(self) -> dict[str, Any]:
        m = self.meta
        return {
            "id": self.id,
            "path": str(self.path),
            "status": self.status,
            "start": self.start.isoformat().replace("+00:00", "Z") if self.start else None,
            "end": self.end.isoformat().replace("+00:00", "Z") if self.end else None,
            "duration_s": self.duration_s,
            "first_event": _iso_ns(self.first_ts),
            "last_event": _iso_ns(self.last_ts),
            "events": self.events,
            "events_total": self.events_total,
            "bytes": self.bytes_on_disk,
            "adapter": m.get("adapter"),
            "profile": m.get("profile"),
            "seed": m.get("seed"),
            "config_digest": m.get("config_digest"),
            "start_ts": m.get("start_ts"),
            "end_ts": m.get("end_ts"),
            "error": m.get("error") or "",
        }


def session_info(path: Path) -> SessionInfo:
    meta = _read_json(path / META_FILE)
    locked = is_locked(path)
    if meta is None:
        return SessionInfo(
            path.name, path, "unreadable", None, None, None, {}, _dir_bytes(path), {}
        )
    status = str(meta.get("status", OPEN))
    if status in (OPEN, FAILED) and not locked:
        leftovers = any(path.glob(f"*/*{OPEN_SUFFIX}"))
        if status == OPEN or leftovers:
            status = "interrupted"
    start = parse_wall(meta.get("start_wall"))
    end = parse_wall(meta.get("end_wall"))
    if end is None and status != OPEN:
        end = parse_wall(meta.get("updated_wall"))
    ref = end or (datetime.now(UTC) if status == OPEN else None)
    duration = (ref - start).total_seconds() if ref and start else None
    events = {str(k): int(v) for k, v in (meta.get("rows") or {}).items() if int(v)}
    first, last = _event_span(path)
    return SessionInfo(
        path.name, path, status, start, end, duration, events, _dir_bytes(path), meta, first, last
    )


def _event_span(path: Path) -> tuple[int | None, int | None]:
    """(first, last) event time of the sealed raw segments, from their statistics."""
    try:
        reader = SessionReader(path)
        segs = [g for s in ev.RAW_STREAMS for g in reader.segments(s) if g.rows]
    except Exception:  # an unreadable session still lists, without a span
        return None, None
    if not segs:
        return None, None
    return min(g.min_ts for g in segs), max(g.max_ts for g in segs)


def _iso_ns(ts: int | None) -> str | None:
    if ts is None:
        return None
    return (
        datetime.fromtimestamp(ts / 1e9, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def list_sessions(data_dir: Path | str) -> list[SessionInfo]:
    """Every session under the data dir, oldest first (by start, then id)."""
    root = sessions_root(data_dir)
    if not root.is_dir():
        return []
    infos = [
        session_info(p)
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith((NEW_PREFIX, TRASH_PREFIX))
    ]
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(infos, key=lambda i: (i.start or far, i.id))


def apply_retention(
    data_dir: Path | str, max_disk_gb: float, max_days: float, now: datetime | None = None
) -> list[str]:
    """Remove the oldest sealed sessions: older than ``max_days`` or while the data dir
    holds more than ``max_disk_gb`` (10^9 bytes; 0 disables either rule).

    Only ``closed`` and ``recovered`` sessions whose lock is free are removed, never
    an open one.  A session is renamed to a hidden ``.trash-`` folder before it is
    deleted, so a half-deleted session is never listed.  Returns the removed ids.
    """
    now = now or datetime.now(UTC)
    infos = list_sessions(data_dir)
    total = sum(i.bytes_on_disk for i in infos)
    limit = max_disk_gb * 1e9
    removed: list[str] = []
    for info in infos:
        if info.status not in (CLOSED, RECOVERED):
            continue
        age_ref = info.end or info.start
        too_old = (
            max_days > 0
            and age_ref is not None
            and (now - age_ref).total_seconds() > max_days * 86_400
        )
        too_big = max_disk_gb > 0 and total > limit
        if not (too_old or too_big):
            continue
        lock = _Lock(info.path / LOCK_FILE)
        if not lock.try_acquire(create=False):
            continue
        try:
            trash = info.path.with_name(f"{TRASH_PREFIX}{info.id}")
            os.rename(info.path, trash)
        except OSError as exc:
            log.warning("retention: cannot remove session %s: %s", info.id, exc)
            lock.release()
            continue
        lock.release()
        shutil.rmtree(trash, ignore_errors=True)
        total -= info.bytes_on_disk
        removed.append(info.id)
        log.info("retention removed session %s (%s)", info.id, "age" if too_old else "disk limit")
    return removed


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------
class SessionReader:
    """Reads one session's sealed segments (and optionally the open ones) in (ts, seq) order.

    Bad segments never stop a read: each raises :class:`SegmentError` internally, is
    appended to :attr:`errors`, logged as a warning and skipped (``strict=True``
    raises instead), so a replay shows the warning and goes on.
    """

    def __init__(self, path: Path | str, *, strict: bool = False) -> None:
        self.path = Path(path)
        self.strict = strict
        self.errors: list[SegmentError] = []
        self.meta: dict[str, Any] = _read_json(self.path / META_FILE) or {}

    @property
    def warnings(self) -> list[str]:
        """Human lines about skipped segments, for a status bar or a log."""
        return [str(e) for e in self.errors]

    def _record(self, err: SegmentError) -> None:
        if self.strict:
            raise err
        if all(e.path != err.path for e in self.errors):
            self.errors.append(err)
            log.warning("skipping %s", err)

    def streams(self) -> list[str]:
        """Streams with a folder in this session, in the engine's stream order."""
        names = (
            [p.name for p in self.path.iterdir() if p.is_dir() and p.name in ev.SCHEMAS]
            if self.path.is_dir()
            else []
        )
        return sorted(names, key=lambda s: (ev.STREAM_ORDER.get(s, 99), s))

    def segments(self, stream: str) -> list[SegmentInfo]:
        """Sealed segments of a stream in seq order, from ``index.json`` or the footers."""
        d = self.path / stream
        if not d.is_dir():
            return []
        cached: dict[str, dict[str, Any]] = {}
        index = _read_json(d / INDEX_FILE)
        if index and isinstance(index.get("segments"), list):
            cached = {str(s.get("file")): s for s in index["segments"] if isinstance(s, dict)}
        out: list[SegmentInfo] = []
        for p in d.glob(f"*{SEALED_SUFFIX}"):
            entry = cached.get(p.name)
            try:
                if entry is not None and int(entry.get("bytes", -1)) == p.stat().st_size:
                    out.append(SegmentInfo.from_json(d, stream, entry))
                else:
                    out.append(read_segment_info(p, stream))
            except SegmentError as exc:
                self._record(exc)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._record(SegmentError(p, f"unreadable ({exc})"))
        return sorted(out, key=lambda s: s.first_seq)

    def open_segments(self, stream: str) -> list[Path]:
        d = self.path / stream
        if not d.is_dir():
            return []
        return sorted(d.glob(f"*{OPEN_SUFFIX}"), key=lambda p: _segment_first_seq(p.name))

    def _select(self, stream: str, ts_from: int | None, ts_to: int | None) -> list[SegmentInfo]:
        return [
            s
            for s in self.segments(stream)
            if s.rows
            and (ts_from is None or s.max_ts >= ts_from)
            and (ts_to is None or s.min_ts < ts_to)
        ]

    def scan(
        self, stream: str, ts_from: int | None = None, ts_to: int | None = None
    ) -> pl.LazyFrame:
        """Lazy rows with ``ts_from <= ts < ts_to`` over the sealed segments.

        Segments whose footer says they are out of range are not opened; segments
        with an unreadable footer are skipped (see :attr:`errors`).  Damage inside a
        segment with a good footer only shows when the frame is collected; use
        :meth:`read` to isolate each segment.
        """
        segs = self._select(stream, ts_from, ts_to)
        if not segs:
            return ev.empty_frame(stream).lazy() if stream in ev.SCHEMAS else pl.LazyFrame()
        lf = pl.scan_parquet([str(s.path) for s in segs])
        lf = _ts_filter(lf, ts_from, ts_to)
        if _overlapping(segs):
            lf = lf.sort(["ts", "seq"])
        return lf

    def read(
        self,
        stream: str,
        ts_from: int | None = None,
        ts_to: int | None = None,
        *,
        include_open: bool = False,
    ) -> pl.DataFrame:
        """Rows with ``ts_from <= ts < ts_to`` in (ts, seq) order, each segment read on
        its own so a bad one is skipped (with a recorded warning) and the rest still read.

        ``include_open`` adds the complete batches of open segments (a session being
        recorded, or an interrupted one before recovery).
        """
        frames: list[pl.DataFrame] = []
        segs = self._select(stream, ts_from, ts_to)
        for seg in segs:
            try:
                lf = _ts_filter(pl.scan_parquet(seg.path), ts_from, ts_to)
                df = _conform(stream, lf.collect(), seg.path)
                if ts_from is None and ts_to is None and df.height != seg.rows:
                    raise SegmentError(seg.path, f"{df.height} rows, footer says {seg.rows}")
            except SegmentError as exc:
                self._record(exc)
                continue
            except Exception as exc:
                self._record(SegmentError(seg.path, f"{type(exc).__name__}: {exc}"))
                continue
            frames.append(df)
        overlapping = _overlapping(segs)
        if include_open:
            sealed_first = {s.first_seq for s in self.segments(stream)}
            for p in self.open_segments(stream):
                if _segment_first_seq(p.name) in sealed_first:
                    continue
                try:
                    got = read_open_segment(p, stream)
                except SegmentError as exc:
                    self._record(exc)
                    continue
                if got.frame is not None:
                    frames.append(_ts_filter(got.frame.lazy(), ts_from, ts_to).collect())
                    overlapping = True
        if not frames:
            return ev.empty_frame(stream) if stream in ev.SCHEMAS else pl.DataFrame()
        df = pl.concat(frames, how="vertical")
        if overlapping or not _is_sorted_by_ts_seq(df):
            df = df.sort(["ts", "seq"])
        return df

    def iter_segments(self, stream: str) -> Iterator[tuple[SegmentInfo, pl.DataFrame]]:
        """Each readable segment with its rows (bad ones are recorded and skipped)."""
        for seg in self.segments(stream):
            try:
                yield seg, read_segment(seg.path, stream)
            except SegmentError as exc:
                self._record(exc)


def _ts_filter(lf: pl.LazyFrame, ts_from: int | None, ts_to: int | None) -> pl.LazyFrame:
    if ts_from is not None:
        lf = lf.filter(pl.col("ts") >= ts_from)
    if ts_to is not None:
        lf = lf.filter(pl.col("ts") < ts_to)
    return lf


def _overlapping(segs: list[SegmentInfo]) -> bool:
    """Do consecutive segments' ts ranges overlap (so concatenation is not (ts, seq) order)?"""
    return any(a.max_ts > b.min_ts for a, b in itertools.pairwise(segs))


# ---------------------------------------------------------------------------
# Wiring for live runs
# ---------------------------------------------------------------------------
def start_recording(
    data_dir: Path | str,
    meta: Mapping[str, Any],
    cfg_log: LogConfig,
    streams: Iterable[str] = ev.ALL_STREAMS,
) -> tuple[SessionRecorder, list[str]]:
    """Recover interrupted sessions, apply retention, open a new session.

    Returns the recorder and human lines about what start-up did (recovered
    segments, removed sessions, problems), for the UI or the headless log.  Never
    raises for I/O trouble: the recorder comes back with :attr:`~SessionRecorder.error`.
    The caller subscribes it: ``engine.subscribe_lossless(rec.streams, rec.write)``.
    """
    notes: list[str] = []
    try:
        for report in recover(data_dir):
            notes.append(report.line())
        removed = apply_retention(data_dir, cfg_log.max_disk_gb, cfg_log.max_days)
        if removed:
            notes.append(f"retention removed {len(removed)} old session(s): {', '.join(removed)}")
    except Exception as exc:
        notes.append(f"session maintenance failed: {describe_error(exc, data_dir)}")
        log.exception("session maintenance failed")
    return SessionRecorder(data_dir, meta, streams, cfg_log), notes
