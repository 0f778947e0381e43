"""Events by id, for the Evidence screen: a bounded index of recent events, then the log.

Why: the UI keeps only a hot window of each stream (and of the enriched prints only
the columns the tape paints), but an alert's evidence chain must stay inspectable
long after that window moved on.  The engine therefore keeps, per stream, the newest
``cap`` rows it published (whole batches, appended by a lossless bus subscriber: one
deque append per batch, no per-event work), and anything older is read back from the
recorded session (live: the recorder's session; replay: the session being replayed).

Ids encode their stream (``events.split_id``), so a lookup needs nothing but ids.
A log read opens only the segments whose [first_seq, last_seq] holds a wanted seq
(sealed segments carry it in their footer / ``index.json``; an open segment's file
name is its first seq).

Print ids are also *expanded*: asking for ``options.prints`` ids also returns the
``options.enriched`` rows of those prints (the NBBO in force, placement, side and
side rule), and ``equities.prints`` ids the ``equities.joins`` rows (the quote in
force), keyed by ``print_id``.  In the log those are found by the prints' ts range.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import polars as pl

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.log import SessionReader, _segment_first_seq, read_open_segment

log = logging.getLogger("islandflow.lookup")

#: streams the index keeps (the raw quote streams are never evidence the UI opens)
#: (raw option prints neither: every one is in options.enriched with its quote)
INDEXED: Final = (
    ev.EQUITIES_PRINTS,
    ev.OPTIONS_ENRICHED,
    ev.FLOW_PACKETS,
    ev.FLOW_STRUCTURES,
    ev.CLASSIFIER_HITS,
    ev.ALERTS,
    ev.EQUITIES_JOINS,
    ev.DARK_INFERRED,
)
#: print stream -> the derived stream whose rows describe each print (by ``print_id``)
EXPAND: Final = {ev.OPTIONS_PRINTS: ev.OPTIONS_ENRICHED, ev.EQUITIES_PRINTS: ev.EQUITIES_JOINS}


def group_ids(ids: Iterable[int]) -> dict[str, list[int]]:
    """Ids by stream (unknown stream codes are dropped: they cannot be looked up)."""
    out: dict[str, list[int]] = {}
    for i in ids:
        code = int(i) >> 56
        stream = ev.CODE_STREAM.get(code)
        if stream is not None:
            out.setdefault(stream, []).append(int(i))
    return out


class EventIndex:
    """The newest ``cap`` rows of each indexed stream, as the batches they came in."""

    def __init__(self, cap: int, streams: Iterable[str] = INDEXED) -> None:
        self.cap = cap
        self.streams = tuple(streams)
        self._frames: dict[str, deque[pl.DataFrame]] = {s: deque() for s in self.streams}
        self._rows = dict.fromkeys(self.streams, 0)
        self._lock = threading.Lock()

    def add(self, stream: str, frame: pl.DataFrame) -> None:
        """Lossless bus callback (engine thread): keep the batch, forget the oldest ones."""
        frames = self._frames.get(stream)
        if frames is None or frame.height == 0:
            return
        with self._lock:
            frames.append(frame)
            self._rows[stream] += frame.height
            while len(frames) > 1 and self._rows[stream] - frames[0].height >= self.cap:
                self._rows[stream] -= frames.popleft().height

    def clear(self) -> None:
        with self._lock:
            for stream in self.streams:
                self._frames[stream].clear()
                self._rows[stream] = 0

    def find(self, stream: str, column: str, values: list[int]) -> pl.DataFrame | None:
        """Rows of ``stream`` whose ``column`` is in ``values`` (None: stream not indexed)."""
        frames = self._frames.get(stream)
        if frames is None:
            return None
        with self._lock:
            parts = list(frames)
        if not parts:
            return ev.empty_frame(stream)
        return pl.concat(parts, how="vertical").filter(pl.col(column).is_in(values))


def _read_seqs(reader: SessionReader, stream: str, seqs: list[int]) -> pl.DataFrame:
    """Rows of ``stream`` with these seqs, opening only the segments that hold them."""
    if not (reader.path / stream).is_dir():
        return ev.empty_frame(stream)
    want = pl.col("seq").is_in(seqs)
    frames: list[pl.DataFrame] = []
    sealed = reader.segments(stream)
    for seg in sealed:
        if any(seg.first_seq <= s <= seg.last_seq for s in seqs):
            try:
                frames.append(pl.scan_parquet(seg.path).filter(want).collect())
            except Exception as exc:  # a damaged segment: the rest still answer
                log.warning("lookup: %s: %s", seg.path, exc)
    covered = {s for s in seqs if any(g.first_seq <= s <= g.last_seq for g in sealed)}
    rest = [s for s in seqs if s not in covered]
    if rest:
        starts = {g.first_seq for g in sealed}
        opened = [
            p for p in reader.open_segments(stream) if _segment_first_seq(p.name) not in starts
        ]
        for i, path in enumerate(opened):
            lo = _segment_first_seq(path.name)
            hi = _segment_first_seq(opened[i + 1].name) if i + 1 < len(opened) else None
            if not any(s >= lo and (hi is None or s < hi) for s in rest):
                continue
            try:
                got = read_open_segment(path, stream)
            except Exception as exc:
                log.warning("lookup: %s: %s", path, exc)
                continue
            if got.frame is not None:
                frames.append(got.frame.filter(want))
    if not frames:
        return ev.empty_frame(stream)
    return pl.concat(frames, how="diagonal_relaxed").select(ev.polars_schema(stream).names())


def _read_by_print(
    reader: SessionReader, stream: str, print_ids: list[int], ts_lo: int, ts_hi: int
) -> pl.DataFrame:
    """Rows of a per-print derived stream (by ``print_id``) within the prints' ts range."""
    if not (reader.path / stream).is_dir():
        return ev.empty_frame(stream)
    frame = reader.read(stream, ts_lo, ts_hi + 1, include_open=True)
    return frame.filter(pl.col("print_id").is_in(print_ids))


def lookup_events(
    ids: Iterable[int], index: EventIndex | None, session: Path | None
) -> dict[str, pl.DataFrame]:
    """Rows for ``ids`` (plus expansions of print ids), by stream; ids found nowhere
    are simply absent from the frames.  Index first, the session log for the rest."""
    wanted = group_ids(ids)
    out: dict[str, pl.DataFrame] = {}
    reader = SessionReader(session) if session is not None and session.is_dir() else None
    for stream, stream_ids in wanted.items():
        found = index.find(stream, "id", stream_ids) if index is not None else None
        if found is None:
            found = ev.empty_frame(stream)
        missing = sorted(set(stream_ids) - set(found["id"].to_list()))
        if missing and reader is not None:
            seqs = [i & ((1 << 56) - 1) for i in missing]
            older = _read_seqs(reader, stream, seqs)
            if older.height:
                found = pl.concat([found, older.select(found.columns)], how="vertical")
        out[stream] = found.unique("id", keep="first").sort("ts", "seq")
    for stream, derived in EXPAND.items():
        prints = out.get(stream)
        if prints is None or prints.height == 0:
            continue
        print_ids = prints["id"].to_list()
        found = index.find(derived, "print_id", print_ids) if index is not None else None
        if found is None:
            found = ev.empty_frame(derived)
        missing = set(print_ids) - set(found["print_id"].to_list())
        if missing and reader is not None:
            rows = prints.filter(pl.col("id").is_in(sorted(missing)))
            lo, hi = int(rows["ts"].min()), int(rows["ts"].max())  # type: ignore[arg-type]
            older = _read_by_print(reader, derived, sorted(missing), lo, hi)
            if older.height:
                found = pl.concat([found, older.select(found.columns)], how="vertical")
        if derived in out:
            found = pl.concat([out[derived], found], how="vertical")
        out[derived] = found.unique("id", keep="first").sort("ts", "seq")
    return out
