"""Replay a recorded session through the same engine, with scrubbing and fast seeks.

A replay is just another feed: ``ReplayFeed`` reads the session's *raw* streams in
event-time windows and hands them to the engine as ``recorded`` batches (their seq
and ids are kept), so every operator and every screen works exactly as live.

Seeking: the engine checkpoints its state (``Engine.checkpoint``) every
``replay.checkpoint_interval_s`` of event time into ``<session>/checkpoints/`` (the
live recorder writes them too).  A seek restores the nearest checkpoint at or
before the target and fast-forwards the raw rows from there with publishing
switched off, then resets every display stream to what a straight replay would
show at the target: the newest rows, read back from the log by seq range for the
part before the checkpoint (derived rows are recorded with the same seqs a replay
produces; ``islandflow verify`` proves it) plus the fast-forward's own output.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import hashlib
import logging
import queue
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.checkpoints import CheckpointClock, CheckpointUnreadable
from islandflow_tui.engine.compute.packets import LAZY_STATE
from islandflow_tui.engine.ingest.base import FeedAdapter, FeedStatus
from islandflow_tui.engine.log import SessionReader, read_segment

if TYPE_CHECKING:
    from islandflow_tui.engine.core import Engine

log = logging.getLogger("islandflow.replay")

#: the speed ladder ``[`` / ``]`` walk; None is "as fast as possible"
SPEEDS: tuple[float | None, ...] = (
    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, None,
)  # fmt: skip
CHECKPOINT_DIR = "checkpoints"
TICK_NS = 50 * ev.NS_PER_MS  # smallest event-time step handed to the engine when paced
MAX_CHUNK_NS = 1 * ev.NS_PER_S  # largest step at "max" speed
#: fast-forward step: output does not depend on batching and each batch has a fixed
#: cost, so a seek fast-forwards a whole checkpoint interval in one or two batches
FF_CHUNK_NS = 15 * ev.NS_PER_S
#: checkpoints kept in memory after loading (each is a few MB to tens of MB)
LOADED_CHECKPOINTS = 2
#: state frames a seek leaves unread until the engine needs them
LAZY_FRAMES = frozenset(f"packets.{name}" for name in LAZY_STATE)


def merge_order(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The total replay order of a set of events: (ts, stream order, seq).

    Returns (stream, ts, seq) rows in that order.  Ties on ts go to the stream with
    the lower ``STREAM_ORDER`` (quotes before prints, so a print sees a quote with
    its own timestamp), then to seq; the result does not depend on the order the
    frames or their rows came in.
    """
    parts = [
        f.select(
            pl.lit(stream).alias("stream"),
            pl.lit(ev.STREAM_ORDER[stream], pl.Int32).alias("_order"),
            "ts",
            "seq",
        )
        for stream, f in frames.items()
        if f.height
    ]
    if not parts:
        return pl.DataFrame(schema={"stream": pl.String, "ts": pl.Int64, "seq": pl.Int64})
    return pl.concat(parts).sort("ts", "_order", "seq").drop("_order")


# ---------------------------------------------------------------------------
# Checkpoint files
# ---------------------------------------------------------------------------
def checkpoint_dir(session: Path) -> Path:
    return session / CHECKPOINT_DIR


def list_checkpoints(session: Path) -> list[int]:
    d = checkpoint_dir(session)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        if p.is_dir() and p.name.isdigit():
            out.append(int(p.name))
    return sorted(out)


#: a state frame with at least this many rows is stored as blocks shared between
#: checkpoints (the packets' retained members and ledger: ~60 s of prints, of which
#: consecutive checkpoints share all but the newest few seconds)
BLOCK_MIN_ROWS = 10_000
#: average rows per block; boundaries are content-defined (see :func:`block_bounds`)
BLOCK_ROWS = 8_192
#: columns hashed to place block boundaries (the first numeric ones; a row's first few
#: columns vary enough to spread boundaries, and each column hashed costs ~25 ms per
#: firehose checkpoint)
_BOUND_COLS = 4
#: zstd: ~40% smaller than lz4 on checkpoint frames and read as fast (measured on
#: a firehose checkpoint: 9.2 vs 15.0 MiB, read 103 vs 121 ms); the writer's thread
#: pays the slower compression
CHECKPOINT_COMPRESSION: Final = "zstd"
_MANIFEST = ".manifest"
_BLOCKS = ".blocks"
_MANIFEST_SCHEMA = {
    "checkpoint": pl.Int64,
    "offset": pl.Int64,
    "rows": pl.Int64,
    "digest": pl.String,
}
_MIX = np.uint64(0x9E3779B97F4A7C15)
#: a writer joining a session learns the blocks of at most this many of its newest
#: checkpoints
INDEX_CHECKPOINTS = 64


class BlockHasher:
    """Block boundaries and block digests of one state frame, from its columns as
    numpy arrays taken once (a firehose checkpoint hashes ~3 M retained rows every
    couple of seconds, on a thread beside the engine's)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        #: per column: (name:dtype tag, values as fixed-width bytes or None, null mask)
        self._cols: list[tuple[bytes, np.ndarray | None, np.ndarray | None]] = []
        for name, dtype in frame.schema.items():
            s = frame.get_column(name)
            tag = f"{name}:{dtype}".encode()
            nulls = s.is_null().to_numpy() if s.null_count() else None
            values = None
            if dtype.is_numeric() or dtype == pl.Boolean or dtype.is_temporal():
                phys = s.to_physical()
                if nulls is not None:
                    phys = phys.fill_null(False if dtype == pl.Boolean else 0)
                try:
                    values = np.ascontiguousarray(phys.to_numpy())
                except pl.exceptions.InvalidOperationError:  # 128-bit decimals
                    values = None
                if values is not None and values.dtype.kind not in "biuf":
                    values = None
            # strings, lists, structs (values None): their Arrow IPC bytes
            self._cols.append((tag, values, nulls if values is not None else None))

    def bounds(self) -> list[int] | None:
        """Row offsets cutting the frame into blocks: 0, the end of each block, height.

        A block ends after every row whose hash (of its first numeric columns) is 0
        modulo ``BLOCK_ROWS``: where a boundary falls depends only on that row, so
        the rows two checkpoints share (the retained prints of the same packets) fall
        into the same blocks even when older rows expired in front of them or new
        rows were added behind; a removed or added row changes only its own block.
        None: no numeric column to hash (the frame is stored whole).
        """
        n = self.frame.height
        h = np.zeros(n, dtype=np.uint64)
        used = 0
        for _tag, values, _nulls in self._cols:
            if used == _BOUND_COLS:
                break
            if values is None or values.dtype.kind not in "iubf":
                continue
            if values.dtype.kind == "f":
                v = values.astype(np.float64, copy=False).view(np.uint64)
            else:
                v = values.astype(np.int64, copy=False).view(np.uint64)
            np.bitwise_xor(h, v, out=h)
            np.multiply(h, _MIX, out=h)
            np.bitwise_xor(h, h >> np.uint64(31), out=h)
            used += 1
        if not used:
            return None
        ends = np.flatnonzero((h >> np.uint64(40)) % np.uint64(BLOCK_ROWS) == 0) + 1
        return [0, *ends[ends < n].tolist(), n]

    def digest(self, a: int, b: int) -> str:
        """Exact content digest of rows ``a:b`` (every column's name, type, nulls and
        values): two blocks with the same digest are the same rows wherever they sat
        in their frames, so sharing one never changes what a restore sees.  SHA-256:
        2x blake2b's speed on this machine's SHA extensions."""
        h = hashlib.sha256()
        other: list[str] = []
        for tag, values, nulls in self._cols:
            h.update(tag)
            if values is None:
                other.append(tag.decode().rsplit(":", 1)[0])
                continue
            h.update(memoryview(values[a:b]).cast("B"))
            if nulls is not None:
                h.update(b"N")
                h.update(memoryview(nulls[a:b]).cast("B"))
        if other:
            block = self.frame.select(other).slice(a, b - a)
            h.update(block.write_ipc(None, compression="uncompressed").getbuffer())
        return h.hexdigest()


def block_bounds(frame: pl.DataFrame) -> list[int] | None:
    """:meth:`BlockHasher.bounds` of one frame."""
    return BlockHasher(frame).bounds()


def block_digest(block: pl.DataFrame) -> str:
    """:meth:`BlockHasher.digest` of a whole frame."""
    return BlockHasher(block).digest(0, block.height)


class BlockIndex:
    """The blocks already stored in one session's checkpoints, for one writer:
    (frame, digest) -> (checkpoint holding it, row offset in its blocks file, rows).

    Learnt from the manifests of the session's newest checkpoints on first use (a
    replay adding checkpoints to a recorded session shares the recording's blocks)
    and from each checkpoint this writer puts in place.  Only the writer's thread
    uses it.
    """

    def __init__(self, session: Path) -> None:
        self.session = session
        self._known: dict[tuple[str, str], tuple[int, int, int]] | None = None

    def _load(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        if self._known is None:
            self._known = {}
            # the newest checkpoints only: blocks are shared across the cancel
            # lookback (~30 checkpoints of firehose), and reading every manifest of
            # a long session would stall the first save
            for w in list_checkpoints(self.session)[-INDEX_CHECKPOINTS:]:
                folder = checkpoint_dir(self.session) / f"{w:020d}"
                for p in folder.glob(f"*{_MANIFEST}.arrow"):
                    name = p.name.removesuffix(f"{_MANIFEST}.arrow")
                    try:
                        m = pl.read_ipc(p)
                    except Exception:  # an unreadable manifest: its blocks are not reused
                        continue
                    for ck, off, rows, digest in m.iter_rows():
                        self._known.setdefault((name, digest), (ck, off, rows))
        return self._known

    def get(self, name: str, digest: str) -> tuple[int, int, int] | None:
        return self._load().get((name, digest))

    def add(self, entries: dict[tuple[str, str], tuple[int, int, int]]) -> None:
        self._load().update(entries)


def save_checkpoint(
    session: Path,
    watermark: int,
    state: dict[str, pl.DataFrame],
    blocks: BlockIndex | None = None,
) -> None:
    """One folder per checkpoint, one Arrow IPC file (zstd) per state frame; renamed into
    place atomically so a reader never sees half a checkpoint.

    With ``blocks``, a frame of ``BLOCK_MIN_ROWS`` rows or more is stored as a
    manifest of blocks (:func:`block_bounds`): blocks an earlier checkpoint of the
    session already holds are referenced, only new ones are written (into this
    checkpoint's ``NAME.blocks.arrow``).  At firehose rates this divides the
    checkpoints' bytes by ~5, which is what lets them be taken often enough for a
    short fast-forward.  A referenced folder is never modified or removed while the
    session exists (retention removes whole sessions).
    """
    d = checkpoint_dir(session)
    d.mkdir(exist_ok=True)
    final = d / f"{watermark:020d}"
    if final.exists():
        return
    tmp = d / f".tmp-{watermark:020d}-{threading.get_ident()}"
    tmp.mkdir()
    added: dict[tuple[str, str], tuple[int, int, int]] = {}
    try:
        for name, frame in state.items():
            big = blocks is not None and frame.height >= BLOCK_MIN_ROWS
            hasher = BlockHasher(frame) if big else None
            bounds = hasher.bounds() if hasher is not None else None
            if blocks is None or hasher is None or bounds is None:
                frame.write_ipc(tmp / f"{name}.arrow", compression=CHECKPOINT_COMPRESSION)
                continue
            rows: list[tuple[int, int, int, str]] = []
            new: list[pl.DataFrame] = []
            offset = 0
            for a, b in pairwise(bounds):
                digest = hasher.digest(a, b)
                hit = added.get((name, digest)) or blocks.get(name, digest)
                if hit is None:
                    hit = (watermark, offset, b - a)
                    added[(name, digest)] = hit
                    new.append(frame.slice(a, b - a))
                    offset += b - a
                rows.append((*hit, digest))
            if new:
                pl.concat(new).write_ipc(
                    tmp / f"{name}{_BLOCKS}.arrow", compression=CHECKPOINT_COMPRESSION
                )
            pl.DataFrame(rows, schema=_MANIFEST_SCHEMA, orient="row").write_ipc(
                tmp / f"{name}{_MANIFEST}.arrow", compression=CHECKPOINT_COMPRESSION
            )
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if blocks is not None:
        blocks.add(added)


class PackCache:
    """Decoded blocks files of recent loads, newest last, up to ``max_bytes``:
    checkpoints near each other share most of their blocks, so seeking around one
    spot reads each blocks file once."""

    def __init__(self, max_bytes: int = 512 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._packs: OrderedDict[Path, pl.DataFrame] = OrderedDict()
        self._bytes = 0

    def get(self, path: Path) -> pl.DataFrame:
        hit = self._packs.get(path)
        if hit is not None:
            self._packs.move_to_end(path)
            return hit
        frame = pl.read_ipc(path)
        size = frame.estimated_size()
        self._packs[path] = frame
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._packs) > 1:
            _, old = self._packs.popitem(last=False)
            self._bytes -= old.estimated_size()
        return frame


def _assemble(session: Path, name: str, manifest: pl.DataFrame, packs: PackCache) -> pl.DataFrame:
    """A blocked frame from its manifest (runs of adjacent blocks read as one slice)."""
    parts: list[pl.DataFrame] = []
    run: list[int] | None = None  # [checkpoint, offset, rows]
    spans: list[list[int]] = []
    for ck, off, rows in manifest.select("checkpoint", "offset", "rows").iter_rows():
        if run is not None and run[0] == ck and run[1] + run[2] == off:
            run[2] += rows
        else:
            run = [ck, off, rows]
            spans.append(run)
    for ck, off, rows in spans:
        pack = packs.get(checkpoint_dir(session) / f"{ck:020d}" / f"{name}{_BLOCKS}.arrow")
        if off + rows > pack.height:
            raise ValueError(f"checkpoint {ck}: {name} blocks file is shorter than its manifest")
        parts.append(pack.slice(off, rows))
    return pl.concat(parts, rechunk=False) if len(parts) > 1 else parts[0]


def _assemble_lazy(session: Path, name: str, manifest: pl.DataFrame) -> pl.LazyFrame:
    """:func:`_assemble` left unread: scans of the blocks files' slices."""
    spans: list[list[int]] = []
    for ck, off, rows in manifest.select("checkpoint", "offset", "rows").iter_rows():
        if spans and spans[-1][0] == ck and spans[-1][1] + spans[-1][2] == off:
            spans[-1][2] += rows
        else:
            spans.append([ck, off, rows])
    folder = checkpoint_dir(session)
    parts = [
        _scan(folder / f"{ck:020d}" / f"{name}{_BLOCKS}.arrow").slice(off, rows)
        for ck, off, rows in spans
    ]
    return pl.concat(parts, rechunk=False) if len(parts) > 1 else parts[0]


def _scan(path: Path) -> pl.LazyFrame:
    """A scan of an IPC file whose footer was read now: a missing or truncated file
    fails the load (the seek then uses an earlier checkpoint), not the engine later."""
    pl.read_ipc_schema(path)
    return pl.scan_ipc(path)


def load_checkpoint(
    session: Path,
    watermark: int,
    packs: PackCache | None = None,
    lazy: frozenset[str] = frozenset(),
) -> dict[str, pl.DataFrame]:
    """A checkpoint's state frames.  Frames named in ``lazy`` come back as
    ``pl.LazyFrame`` scans, read only if the engine needs them (compute/packets.py
    ``LAZY_STATE``); their files must stay in place meanwhile (checkpoint folders are
    never changed once written)."""
    d = checkpoint_dir(session) / f"{watermark:020d}"
    if not d.is_dir():
        raise FileNotFoundError(f"checkpoint {d} is missing")
    packs = packs if packs is not None else PackCache()
    out: dict[str, Any] = {}
    for p in d.glob("*.arrow"):
        stem = p.name.removesuffix(".arrow")
        if stem.endswith(_BLOCKS):
            continue
        if stem.endswith(_MANIFEST):
            name = stem.removesuffix(_MANIFEST)
            manifest = pl.read_ipc(p)
            out[name] = (
                _assemble_lazy(session, name, manifest)
                if name in lazy
                else _assemble(session, name, manifest, packs)
            )
        else:
            out[stem] = _scan(p) if stem in lazy else pl.read_ipc(p)
    return out


# ---------------------------------------------------------------------------
# Reading the raw streams in event-time windows
# ---------------------------------------------------------------------------
class ReplaySource:
    """Rows of the raw streams by event-time window, from sealed segments.

    Segments are loaded whole (they are sorted by (ts, seq)) and cut with binary
    search, so playing a window costs a slice, not a scan.
    """

    def __init__(self, reader: SessionReader) -> None:
        self.reader = reader
        self.segments = {s: reader.segments(s) for s in ev.RAW_STREAMS}
        self._cache: dict[Path, tuple[pl.DataFrame, np.ndarray]] = {}
        firsts = [g.min_ts for segs in self.segments.values() for g in segs if g.rows]
        lasts = [g.max_ts for segs in self.segments.values() for g in segs if g.rows]
        self.first_ts = min(firsts) if firsts else 0
        self.last_ts = max(lasts) if lasts else 0

    def _load(self, seg: Any, stream: str) -> tuple[pl.DataFrame, np.ndarray] | None:
        hit = self._cache.get(seg.path)
        if hit is not None:
            return hit
        try:
            df = read_segment(seg.path, stream)
        except Exception as exc:  # a bad segment is skipped with a visible warning
            self.reader._record(_as_segment_error(seg.path, exc))
            self.segments[stream] = [s for s in self.segments[stream] if s.path != seg.path]
            return None
        if len(self._cache) >= 2 * len(ev.RAW_STREAMS):
            self._cache.pop(next(iter(self._cache)))
        entry = (df, df.get_column("ts").to_numpy())
        self._cache[seg.path] = entry
        return entry

    def next_ts(self, t: int) -> int | None:
        """The first event time at or after ``t`` over the raw streams (None: no more).

        Segment statistics answer it without reading, except for a segment that
        straddles ``t``."""
        best: int | None = None
        for stream, segs in self.segments.items():
            for seg in list(segs):
                if not seg.rows or seg.max_ts < t or (best is not None and seg.min_ts >= best):
                    continue
                if seg.min_ts >= t:
                    cand = seg.min_ts
                else:
                    loaded = self._load(seg, stream)
                    if loaded is None:
                        continue
                    ts = loaded[1]
                    i = int(np.searchsorted(ts, t, side="left"))
                    if i >= len(ts):
                        continue
                    cand = int(ts[i])
                best = cand if best is None else min(best, cand)
        return best

    def step_end(self, pos: int, step: int, end: int) -> int:
        """End of the next window from ``pos``: ``pos + step``, or later when nothing
        happens until then, so playing as fast as possible (verify, seeks, "max")
        skips a quiet night or a weekend in one empty batch instead of thousands.
        Skipping is safe: operators are driven by the watermark, not by batch count."""
        t1 = min(pos + step, end)
        nxt = self.next_ts(pos)
        if nxt is None:
            return end
        return max(t1, min(nxt, end))

    def _read_range(self, seg: Any, stream: str, t0: int, t1: int) -> pl.DataFrame | None:
        """Rows ``t0 <= ts < t1`` of a segment not in the cache, reading only the row
        groups that hold them (and not caching the segment)."""
        try:
            return read_segment(seg.path, stream, (pl.col("ts") >= t0) & (pl.col("ts") < t1))
        except Exception as exc:
            self.reader._record(_as_segment_error(seg.path, exc))
            self.segments[stream] = [s for s in self.segments[stream] if s.path != seg.path]
            return None

    def window(self, t0: int, t1: int, *, cache: bool = True) -> dict[str, pl.DataFrame]:
        """Rows with ``t0 <= ts < t1`` of every raw stream, each in (ts, seq) order.

        ``cache=False`` (a seek's fast-forward: one window, then playback may go on
        from anywhere): a segment not loaded yet is read for this range only.  At
        firehose rates a segment holds ~6 s of quotes and reading one whole cost a
        seek ~0.2 s per stream."""
        out: dict[str, pl.DataFrame] = {}
        for stream, segs in self.segments.items():
            parts = []
            for seg in list(segs):
                if not seg.rows or seg.max_ts < t0 or seg.min_ts >= t1:
                    continue
                if not cache and seg.path not in self._cache:
                    part = self._read_range(seg, stream, t0, t1)
                    if part is not None and part.height:
                        parts.append(part)
                    continue
                loaded = self._load(seg, stream)
                if loaded is None:
                    continue
                df, ts = loaded
                lo = int(np.searchsorted(ts, t0, side="left"))
                hi = int(np.searchsorted(ts, t1, side="left"))
                if hi > lo:
                    parts.append(df.slice(lo, hi - lo))
            if parts:
                frame = parts[0] if len(parts) == 1 else pl.concat(parts).sort("ts", "seq")
                out[stream] = frame
        return out


def _as_segment_error(path: Path, exc: Exception) -> Any:
    from islandflow_tui.engine.log import SegmentError

    return exc if isinstance(exc, SegmentError) else SegmentError(path, f"{exc}")


def read_seq_range(reader: SessionReader, stream: str, lo: int, hi: int) -> pl.DataFrame:
    """Recorded rows of ``stream`` with ``lo <= seq < hi``, in seq order."""
    frames = []
    for seg in reader.segments(stream):
        if seg.last_seq < lo or seg.first_seq >= hi:
            continue
        try:
            # only the row groups holding the range (a display rebuild wants the last
            # few thousand rows; a whole segment is ~230 000 at firehose rates)
            df = read_segment(seg.path, stream, (pl.col("seq") >= lo) & (pl.col("seq") < hi))
        except Exception as exc:
            reader._record(_as_segment_error(seg.path, exc))
            continue
        frames.append(df)
    if not frames:
        return ev.empty_frame(stream)
    return pl.concat(frames).sort("seq")


def session_density(session: Path | str, bins: int, stream: str = ev.OPTIONS_PRINTS) -> np.ndarray:
    """Events per bin over the session's raw time range (the scrub bar's sparkline)."""
    reader = SessionReader(session)
    source = ReplaySource(reader)
    if bins <= 0 or source.last_ts <= source.first_ts:
        return np.zeros(max(bins, 0), dtype=np.int64)
    ts = reader.scan(stream).select("ts").collect().get_column("ts").to_numpy()
    counts, _ = np.histogram(ts, bins=bins, range=(source.first_ts, source.last_ts + 1))
    return counts


def session_alert_times(session: Path | str) -> np.ndarray:
    reader = SessionReader(session)
    if not reader.segments(ev.ALERTS):
        return np.zeros(0, dtype=np.int64)
    return np.unique(reader.scan(ev.ALERTS).select("ts").collect().get_column("ts").to_numpy())


# ---------------------------------------------------------------------------
# The feed
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SeekCost:
    """Where the last seek's time went (ms): bench/bench_replay.py prints the split so
    the slow part of a slow seek is visible."""

    target: int
    start: int  # where the fast-forward started (a checkpoint or the old position)
    events: int  # raw events fast-forwarded
    load: float
    restore: float
    fast_forward: float
    display: float

    @property
    def total(self) -> float:
        return self.load + self.restore + self.fast_forward + self.display


@dataclass(frozen=True, slots=True)
class ReplayState:
    """What the status bar and the scrub bar show; travels with EngineStats."""

    session: str
    path: str
    start_ns: int
    end_ns: int
    position_ns: int
    speed: float | None  # None = max
    paused: bool
    finished: bool
    checkpoints: int
    seek_ms: float  # how long the last seek took
    warnings: tuple[str, ...]
    #: checkpoints found damaged and no longer used (their warnings are in ``warnings``)
    bad_checkpoints: int = 0


class ReplayFeed(FeedAdapter):
    """A recorded session as a feed, controllable from any thread (see ``control``)."""

    name = "replay"

    def __init__(
        self,
        session: Path | str,
        *,
        ts_from: int | None = None,
        ts_to: int | None = None,
        speed: float | None = 1.0,
        checkpoint_interval_s: float = 10.0,
        checkpoint_max_events: int = 0,
        paused: bool = False,
    ) -> None:
        super().__init__()
        self.path = Path(session)
        self.reader = SessionReader(self.path)
        self.source = ReplaySource(self.reader)
        self.start_ns = max(ts_from or self.source.first_ts, self.source.first_ts)
        end = self.source.last_ts + 1
        self.end_ns = min(ts_to, end) if ts_to else end
        self.position = self.source.first_ts
        self.speed = speed
        self.paused = paused
        self.interval_ns = int(checkpoint_interval_s * ev.NS_PER_S)
        self._clock = CheckpointClock(self.interval_ns, checkpoint_max_events)
        self._checkpoints = list_checkpoints(self.path)
        self._memory_checkpoints: dict[int, dict[str, pl.DataFrame]] = {}
        #: the last checkpoints loaded from disk: stepping back and forth around one
        #: spot (arrow keys, a drag) restores without reading it again
        self._loaded: OrderedDict[int, dict[str, pl.DataFrame]] = OrderedDict()
        self._packs = PackCache()
        self._blocks = BlockIndex(self.path)
        self._commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._closed = False
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._seek_ms = 0.0
        self._alerts = session_alert_times(self.path)
        from islandflow_tui.engine.gaps import load_gaps

        self._gaps = load_gaps(self.path)
        self.on_seek: Callable[[int], None] | None = None
        self.last_seek: SeekCost | None = None
        #: one line per damaged checkpoint dropped (status bar, notifications)
        self._checkpoint_warnings: list[str] = []
        #: the disk checkpoint the engine's state came from (None: the session start
        #: or the engine's own state), and whether restores read every frame at once
        #: (after a damaged lazily-read frame, so damage shows at load)
        self._restored_from: int | None = None
        self._eager = False
        self._state_damaged = False
        self._batch_from = self.position

    # -- wiring -----------------------------------------------------------------
    def bind(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def label(self) -> str:
        return f"replay {self.path.name}"

    def state_snapshot(self) -> ReplayState:
        with self._lock:
            return ReplayState(
                session=self.path.name,
                path=str(self.path),
                start_ns=self.start_ns,
                end_ns=self.end_ns,
                position_ns=self.position,
                speed=self.speed,
                paused=self.paused,
                finished=self.position >= self.end_ns,
                checkpoints=len(self._checkpoints) + len(self._memory_checkpoints),
                seek_ms=self._seek_ms,
                warnings=(*self.reader.warnings, *self._checkpoint_warnings),
                bad_checkpoints=len(self._checkpoint_warnings),
            )

    # -- controls (any thread) ------------------------------------------------------
    def control(self, command: str, arg: Any = None) -> None:
        """Queue a control; the feed applies it between batches on the engine thread.

        Commands: play, pause, toggle, speed (float or None), faster, slower,
        seek (ns), step (ns, may be negative), next_alert, prev_alert, home, end.
        """
        if command not in _COMMANDS:
            raise ValueError(f"unknown replay command {command!r}")
        self._commands.put((command, arg))

    def close(self) -> None:
        self._closed = True

    # -- the loop ---------------------------------------------------------------
    async def batches(self) -> AsyncIterator[ev.FeedBatch]:
        self.set_state(FeedStatus.LIVE, "replay")
        if self.start_ns > self.source.first_ts:
            self._seek(self.start_ns)
        last = time.perf_counter()
        self._clock.start(self.position)
        while not self._closed:
            if self._apply_commands():
                last = time.perf_counter()
                self._clock.start(self.position)
            if self.paused or self.position >= self.end_ns:
                await asyncio.sleep(0.02)
                last = time.perf_counter()
                continue
            if self.speed is None:
                step = self.source.step_end(self.position, MAX_CHUNK_NS, self.end_ns)
                step -= self.position
                await asyncio.sleep(0)
            else:
                now = time.perf_counter()
                step = int((now - last) * self.speed * ev.NS_PER_S)
                if step < TICK_NS:
                    await asyncio.sleep((TICK_NS - step) / (self.speed * ev.NS_PER_S))
                    continue
                last = now
            t1 = min(self.position + step, self.end_ns)
            self._batch_from = self.position
            batch = ev.FeedBatch(
                self.source.window(self.position, t1),
                t1,
                recorded=True,
                gap=self._gap_in(self.position, t1),
            )
            with self._lock:
                self.position = t1
            yield batch  # the engine ingests it before we resume
            if self._clock.due(self.position, sum(f.height for f in batch.frames.values())):
                self._take_checkpoint()
                self._clock.taken(self.position)
        self.set_state(FeedStatus.STOPPED)

    def _gap_in(self, t0: int, t1: int) -> ev.FeedGap | None:
        """The recorded feed gap that ended inside [t0, t1), if any (the latest one)."""
        found = None
        for gap in self._gaps:
            if t0 <= gap.end_ts < t1:
                found = gap
        return found

    def _apply_commands(self) -> bool:
        """Apply queued controls; True if the position jumped."""
        jumped = False
        while True:
            try:
                command, arg = self._commands.get_nowait()
            except queue.Empty:
                return jumped
            with self._lock:
                if command == "play":
                    self.paused = False
                elif command == "pause":
                    self.paused = True
                elif command == "toggle":
                    self.paused = not self.paused
                elif command == "speed":
                    self.speed = arg
                elif command in ("faster", "slower"):
                    self.speed = _ladder(self.speed, +1 if command == "faster" else -1)
            if command in ("seek", "step", "next_alert", "prev_alert", "home", "end"):
                target = self._target(command, arg)
                if target is not None:
                    self._seek(target)
                    jumped = True

    def _target(self, command: str, arg: Any) -> int | None:
        pos = self.position
        if command == "seek":
            return int(arg)
        if command == "step":
            return pos + int(arg)
        if command == "home":
            return self.start_ns
        if command == "end":
            return self.end_ns
        alerts = self._alerts
        if command == "next_alert":
            i = int(np.searchsorted(alerts, pos, side="right"))
            return int(alerts[i]) + 1 if i < len(alerts) else None
        # prev_alert: the alert strictly before the one the playhead is just past
        i = int(np.searchsorted(alerts, pos - 1, side="left")) - 1
        return int(alerts[i]) + 1 if i >= 0 else None

    # -- seeking ----------------------------------------------------------------
    def _take_checkpoint(self) -> None:
        engine = self._engine
        if engine is None:
            return
        # the recording (or an earlier replay) may already have one since the last
        # time the clock was armed: a seek would use that one just as well
        i = bisect.bisect_right(self._checkpoints, self.position) - 1
        if i >= 0 and self._checkpoints[i] > self._clock.armed_at:
            return
        try:
            state = engine.checkpoint()
        except CheckpointUnreadable as exc:
            self.batch_failed(exc)
            return
        try:
            save_checkpoint(self.path, self.position, state, self._blocks)
            bisect.insort(self._checkpoints, self.position)
        except OSError:  # read-only session: keep a few in memory instead
            self._memory_checkpoints[self.position] = state
            while len(self._memory_checkpoints) > 32:
                self._memory_checkpoints.pop(next(iter(self._memory_checkpoints)))

    def _nearest_checkpoint_ts(self, target: int) -> int | None:
        """Where the checkpoint :meth:`_nearest_checkpoint` would restore lies (no load)."""
        i = bisect.bisect_right(self._checkpoints, target) - 1
        best = self._checkpoints[i] if i >= 0 else None
        mem = max((w for w in self._memory_checkpoints if w <= target), default=None)
        if mem is not None and (best is None or mem > best):
            best = mem
        return best

    def _closer_than_half_an_interval(self, here: int, checkpoint: int) -> bool:
        """True when ``here`` lies in the second half of the interval ending at
        ``checkpoint``: fast-forwarding from the engine to it then replays fewer
        events than a restore costs.  Checkpoints are spaced by work (at most
        ``checkpoint_max_events`` raw events), so half an interval is ~250 000 events
        at firehose rates, about what a restore costs, and a few seconds of a quiet
        market, which costs next to nothing to replay."""
        i = bisect.bisect_left(self._checkpoints, checkpoint) - 1
        earlier = [w for w in self._memory_checkpoints if w < checkpoint]
        if i >= 0:
            earlier.append(self._checkpoints[i])
        start = max(earlier, default=self.source.first_ts)
        return checkpoint - here < (checkpoint - start) / 2

    def _nearest_checkpoint(self, target: int) -> tuple[int, dict[str, pl.DataFrame]] | None:
        best_disk = None
        i = bisect.bisect_right(self._checkpoints, target) - 1
        if i >= 0:
            best_disk = self._checkpoints[i]
        best_mem = max((w for w in self._memory_checkpoints if w <= target), default=None)
        if best_mem is not None and (best_disk is None or best_mem > best_disk):
            return best_mem, self._memory_checkpoints[best_mem]
        if best_disk is not None:
            cached = self._loaded.get(best_disk)
            if cached is not None:
                self._loaded.move_to_end(best_disk)
                return best_disk, {k: v.clone() for k, v in cached.items()}
            lazy = frozenset() if self._eager else LAZY_FRAMES
            try:
                state = load_checkpoint(self.path, best_disk, self._packs, lazy)
                self._loaded[best_disk] = state
                while len(self._loaded) > LOADED_CHECKPOINTS:
                    self._loaded.popitem(last=False)
                return best_disk, {k: v.clone() for k, v in state.items()}
            except Exception as exc:
                self._drop_checkpoint(best_disk, exc)
                return self._nearest_checkpoint(target)
        return None

    def _drop_checkpoint(self, watermark: int, exc: Exception) -> None:
        """A damaged checkpoint: named once in the warnings, never used again."""
        line = f"checkpoint {checkpoint_dir(self.path) / f'{watermark:020d}'} unreadable ({exc})"
        log.warning("%s; seeking from an earlier one", line)
        with self._lock:
            self._checkpoint_warnings.append(line)
        if watermark in self._checkpoints:
            self._checkpoints.remove(watermark)
        self._loaded.clear()

    def batch_failed(self, exc: Exception) -> None:
        """The engine could not compute a batch (``Engine`` calls this).  A frame of
        the restored checkpoint that was left unread turned out damaged: drop that
        checkpoint, read later ones whole, and seek back to where the batch began,
        from an earlier checkpoint (the engine's state is incomplete, so the batch
        must be computed again)."""
        if isinstance(exc, CheckpointUnreadable):
            self._recover(exc)
            self._commands.put(("seek", min(self._batch_from, self.position)))

    def _recover(self, exc: CheckpointUnreadable) -> None:
        if self._restored_from is not None:
            self._drop_checkpoint(self._restored_from, exc)
        self._eager = True
        self._restored_from = None
        self._state_damaged = True  # the next seek restores, whatever its target

    def _seek(self, target: int) -> None:
        engine = self._engine
        if engine is None:
            return
        # A restore and a fast-forward build ~10^5 small Python containers (repeat
        # windows, alert and structure records) that live on; each full collection
        # the allocations trigger walks all of them again.  Pausing the collector for
        # the seek (cyclic garbage only waits, refcounting still frees) cut a
        # restore's own time by half to two thirds.
        paused = gc.isenabled()
        gc.disable()
        try:
            for _ in range(3):
                try:
                    self._seek_to(engine, target)
                    return
                except CheckpointUnreadable as exc:  # the fast-forward met the damage
                    self._recover(exc)
            # still damaged: from the session's start, which needs no checkpoint
            self._checkpoints, self._memory_checkpoints = [], {}
            self._seek_to(engine, target)
        finally:
            if paused:
                gc.enable()

    def _seek_to(self, engine: Engine, target: int) -> None:
        t0 = time.perf_counter()
        target = max(self.start_ns, min(target, self.end_ns))
        here = self.position
        parts = {"load": 0.0, "restore": 0.0}
        restored = False  # True: the fast-forward starts at a checkpoint, not here
        nearest = self._nearest_checkpoint_ts(target)
        near = nearest is not None and self._closer_than_half_an_interval(here, nearest)
        if (
            here <= target
            and (nearest is None or nearest <= here or near)
            and engine.watermark == here
            and not self._state_damaged
        ):
            # forward, and no checkpoint between here and the target (or here is so
            # close before it that replaying up to it is cheaper than a restore):
            # the engine's own state is the best checkpoint; a step costs its events
            pos = here
        else:
            restored = True
            found = self._nearest_checkpoint(target)
            t_load = time.perf_counter()
            parts["load"] = t_load - t0
            self._state_damaged = False
            if found is not None:
                pos, state = found
                self._restored_from = pos if pos in self._checkpoints else None
                engine.restore(state)
            else:
                pos = self.source.first_ts
                self._restored_from = None
                engine.reset()
            parts["restore"] = time.perf_counter() - t_load
        t_ff = time.perf_counter()
        ff_events = 0
        pos_from = pos
        display = engine.bus.display_streams()
        before = {
            s: (engine.seq.get(s) if s in engine.seq else engine.compute.seq[s]) for s in display
        }
        made: dict[str, list[pl.DataFrame]] = {s: [] for s in display}

        def keep(derived: dict[str, pl.DataFrame], frames: dict[str, pl.DataFrame]) -> None:
            for s in display:
                got = derived.get(s) if s in derived else frames.get(s)
                if got is not None and got.height:
                    made[s].append(got.select(ev.SCHEMAS[s].names))

        engine.quiet = True
        # more than one chunk to compute: the flow stages on their own threads
        lanes = target - pos > FF_CHUNK_NS
        if lanes:
            engine.start_lanes()
        try:
            while pos < target:
                # step_end(pos, FF_CHUNK_NS, target) is the target itself when it is
                # within one chunk; not asking spares reading the segment at pos whole
                t1 = (
                    target
                    if target - pos <= FF_CHUNK_NS
                    else self.source.step_end(pos, FF_CHUNK_NS, target)
                )
                frames = self.source.window(pos, t1, cache=not restored)
                ff_events += sum(f.height for f in frames.values())
                keep(engine.ingest(ev.FeedBatch(frames, t1, recorded=True)), frames)
                pos = t1
        finally:
            if lanes:
                keep(engine.stop_lanes(), {})
            engine.quiet = False
        t_disp = time.perf_counter()
        parts["fast_forward"] = t_disp - t_ff
        limits = engine.bus.display_limits()
        for s in display:
            need = limits.get(s, 0)
            fresh = pl.concat(made[s]) if made[s] else ev.empty_frame(s)
            if fresh.height < need and before[s]:
                older = read_seq_range(self.reader, s, max(0, before[s] - need), before[s])
                fresh = pl.concat([older, fresh]) if older.height else fresh
            engine.bus.publish_reset(s, fresh.tail(need) if need else fresh)
        with self._lock:
            self.position = target
            self._batch_from = target
            self._seek_ms = (time.perf_counter() - t0) * 1000
        parts["display"] = time.perf_counter() - t_disp
        self.last_seek = SeekCost(
            target=target,
            start=pos_from,
            events=ff_events,
            **{k: v * 1000 for k, v in parts.items()},
        )
        if self.on_seek is not None:
            self.on_seek(target)


_COMMANDS = frozenset(
    {
        "play",
        "pause",
        "toggle",
        "speed",
        "faster",
        "slower",
        "seek",
        "step",
        "next_alert",
        "prev_alert",
        "home",
        "end",
    }
)


def _ladder(speed: float | None, direction: int) -> float | None:
    if speed is None:
        i = len(SPEEDS) - 1
    else:
        i = min(range(len(SPEEDS) - 1), key=lambda k: abs(SPEEDS[k] - speed))  # type: ignore[operator]
    return SPEEDS[max(0, min(len(SPEEDS) - 1, i + direction))]
