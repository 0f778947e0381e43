"""``islandflow import``: Databento DBN files -> a recorded session, through the engine.

Why through the engine: an imported session must be the same thing a live
recording is (raw and derived streams, checkpoints, meta.json), so ``islandflow
replay`` plays it and ``islandflow verify`` passes on it.  Files are decoded in
chunks with the SDK's own ``DBNStore.to_ndarray`` and merged in event time across
files; each merged step is one engine batch whose watermark is the merge horizon.

Steps: open every file (a bad one stops the import before a session exists, with
its path in the message); read reference data first (definitions and symbol
mappings for ids -> symbols, statistics for open interest); then the prints and
quotes.  Open interest is written next to the session as ``open_interest.parquet``
(symbol, as_of, open_interest) and handed to the packet operator; a replay or
verify of the session loads it from there (engine/session.py).
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import databento as db
import numpy as np
import polars as pl

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.pipeline import Compute
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.dbn_decode import (
    EVENT_RTYPES,
    OI_SCHEMA,
    PRINT_RANK,
    QUOTE_RANK,
    RT_DEFINITION,
    RT_STATISTICS,
    Decoded,
    Symbology,
    decode_events,
    merge_open_interest,
    open_interest,
    split_records,
)
from islandflow_tui.engine.ingest.dbn_venues import asset_class

log = logging.getLogger("islandflow.import")

#: records per decoded chunk (one ``to_ndarray`` read)
CHUNK_RECORDS: Final = 1_000_000
#: rows within this much event time of the merge horizon are held back for the next
#: step, so records a file has slightly out of ts_event order are not late
REORDER_SLACK_NS: Final = 1 * ev.NS_PER_S
#: rows per engine step at most: bigger merge steps are cut at ts boundaries, so the
#: recorder's writer keeps up (it stalls the engine, by design, when it falls behind)
MAX_STEP_ROWS: Final = 200_000
OPEN_INTEREST_FILE: Final = "open_interest.parquet"
IMPORT_FLUSH_MS: Final = 5_000


class ImportFailure(Exception):
    """A file that cannot be imported; the message names it."""


@dataclass
class DbnFile:
    path: Path
    store: Any  # databento.DBNStore
    dataset: str
    schema: str | None  # None: mixed schemas (a live capture)
    stype_in: str
    #: mixed files are split once: rtype -> records
    arrays: dict[int, np.ndarray] = field(default_factory=dict)
    mappings: list[Any] = field(default_factory=list)


@dataclass
class ImportReport:
    session_id: str
    path: Path | None
    files: list[str]
    records: int
    unused: int
    accepted: dict[str, int]
    rejected: dict[str, dict[str, int]]
    open_interest: int
    seconds: float
    error: str = ""

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def open_file(path: str | Path) -> DbnFile:
    """Open one DBN file with the SDK; ImportFailure names the file and the reason."""
    p = Path(path)
    if not p.is_file():
        raise ImportFailure(f"{p}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            store = db.DBNStore.from_file(p)
            md = store.metadata
    except Exception as exc:
        raise ImportFailure(f"{p}: not a readable DBN file ({_one_line(exc)})") from None
    dataset = str(md.dataset or "")
    schema = str(store.schema) if store.schema is not None else None
    stype_in = str(md.stype_in) if md.stype_in is not None else ""
    f = DbnFile(p, store, dataset, schema, stype_in)
    if not asset_class(dataset):
        raise ImportFailure(
            f"{p}: dataset {dataset or '?'} is not US options (OPRA) or US equities; "
            "islandflow has no streams for it"
        )
    if schema is None:
        try:
            f.arrays, f.mappings = split_records(store)
        except Exception as exc:
            raise ImportFailure(f"{p}: cannot decode records ({_one_line(exc)})") from None
    return f


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read_chunks(f: DbnFile) -> Iterator[np.ndarray]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield from f.store.to_ndarray(count=CHUNK_RECORDS)
    except Exception as exc:
        raise ImportFailure(f"{f.path}: cannot decode records ({_one_line(exc)})") from None


def _time_range(files: Sequence[DbnFile]) -> tuple[int, int]:
    lo, hi = None, None
    for f in files:
        md = f.store.metadata
        s, e = int(md.start or 0), int(md.end or 0)
        if s:
            lo = s if lo is None else min(lo, s)
        if e:
            hi = e if hi is None else max(hi, e)
    return lo or 0, hi or 0


class _Source:
    """One stream of decoded chunks (a file, or one rtype of a mixed file)."""

    def __init__(self, chunks: Iterator[Decoded]) -> None:
        self._chunks = chunks
        self.pending: dict[str, pl.DataFrame] = {}
        self.horizon = 0  # newest ts read so far
        self.done = False
        self.records = 0
        self.unused = 0

    def pull(self) -> bool:
        """Read one more chunk; False when the source is exhausted."""
        for d in self._chunks:
            self.records += d.records
            self.unused += d.unused
            for stream, frame in d.frames.items():
                if frame.height == 0:
                    continue
                prev = self.pending.get(stream)
                self.pending[stream] = frame if prev is None else pl.concat([prev, frame])
            self.horizon = max(self.horizon, d.max_ts())
            return True
        self.done = True
        return False

    def take(self, before: int | None) -> dict[str, pl.DataFrame]:
        """Pending rows with ts < before (all if None), removed from the buffer."""
        out: dict[str, pl.DataFrame] = {}
        for stream, frame in list(self.pending.items()):
            if before is None:
                out[stream] = frame
                del self.pending[stream]
                continue
            ts = frame.get_column("ts")
            mask = ts < before
            n = int(mask.sum())
            if n == 0:
                continue
            out[stream] = frame.filter(mask)
            rest = frame.filter(~mask)
            if rest.height:
                self.pending[stream] = rest
            else:
                del self.pending[stream]
        return out


def _best(files: Sequence[DbnFile], rank: dict[str, int]) -> dict[str, int]:
    """Best (lowest) rank per dataset among the homogeneous files."""
    best: dict[str, int] = {}
    for f in files:
        if f.schema in rank:
            best[f.dataset] = min(best.get(f.dataset, 99), rank[f.schema])
    return best


def plan(
    files: Sequence[DbnFile],
) -> tuple[dict[str, Symbology], pl.DataFrame, list[_Source], list[str]]:
    """Reference pass + event sources: (symbology per dataset, OI table, sources, notes)."""
    symbology: dict[str, Symbology] = {}
    notes: list[str] = []
    for f in files:
        sym = symbology.setdefault(f.dataset, Symbology())
        if f.stype_in == "raw_symbol":
            sym.add_mappings(f.store.mappings)
        if f.mappings:
            sym.add_symbol_mappings(f.mappings)
        if f.schema == "definition":
            for arr in _read_chunks(f):
                sym.add_definitions(arr)
        elif f.schema is None and RT_DEFINITION in f.arrays:
            sym.add_definitions(f.arrays[RT_DEFINITION])
    oi_parts: list[pl.DataFrame] = []
    for f in files:
        sym = symbology[f.dataset]
        if f.schema == "statistics":
            for arr in _read_chunks(f):
                oi_parts.append(open_interest(arr, sym))
        elif f.schema is None and RT_STATISTICS in f.arrays:
            oi_parts.append(open_interest(f.arrays[RT_STATISTICS], sym))
    oi = merge_open_interest(*oi_parts) if oi_parts else pl.DataFrame(schema=OI_SCHEMA)

    best_print = _best(files, PRINT_RANK)
    best_quote = _best(files, QUOTE_RANK)
    sources: list[_Source] = []
    for f in files:
        sym = symbology[f.dataset]
        if f.schema is None:
            for rt, arr in sorted(f.arrays.items()):
                if rt not in EVENT_RTYPES:
                    continue
                sources.append(_Source(iter([decode_events(arr, f.dataset, sym)])))
            continue
        if f.schema not in PRINT_RANK and f.schema not in QUOTE_RANK:
            continue  # reference data (read above) or bars/imbalance: no prints or quotes
        prints = PRINT_RANK.get(f.schema, 99) <= best_print.get(f.dataset, 99)
        quotes = QUOTE_RANK.get(f.schema, 99) <= best_quote.get(f.dataset, 99)
        if f.schema in PRINT_RANK and not prints:
            notes.append(
                f"{f.path.name}: prints taken from the {f.dataset} file with the better "
                "trade source, not from this one"
            )
        if not (prints or quotes):
            continue

        def chunks(f: DbnFile = f, sym: Symbology = sym, p: bool = prints, q: bool = quotes):
            for arr in _read_chunks(f):
                yield decode_events(arr, f.dataset, sym, prints=p, quotes=q)

        sources.append(_Source(chunks()))
    return symbology, oi, sources, notes


def merged_batches(
    sources: list[_Source],
) -> Iterator[tuple[dict[str, pl.DataFrame], int]]:
    """Event-time merge of the sources: (frames per stream, watermark) steps.

    The horizon is the oldest "newest ts read" among sources still reading, minus the
    reorder slack; every row below it is emitted, sorted by ts, and the watermark of
    the step is the horizon (nothing later can be older).
    """
    live = [s for s in sources if s.pull()]
    last_wm = 0
    while True:
        reading = [s for s in live if not s.done]
        if not reading:
            break
        horizon = min(s.horizon for s in reading) - REORDER_SLACK_NS
        frames = _gather(live, horizon)
        if frames:
            wm = max(last_wm, horizon)
            yield frames, wm
            last_wm = wm
        # advance the source(s) holding the horizon back
        low = min(s.horizon for s in reading)
        for s in reading:
            if s.horizon == low:
                s.pull()
    frames = _gather(live, None)
    if frames:
        end = max(int(f.get_column("ts").max() or 0) for f in frames.values()) + 1
        yield frames, max(last_wm, end)


def bounded_steps(
    steps: Iterator[tuple[dict[str, pl.DataFrame], int]], max_rows: int = MAX_STEP_ROWS
) -> Iterator[tuple[dict[str, pl.DataFrame], int]]:
    """Cut big merge steps into pieces of about ``max_rows`` rows at ts boundaries.

    A piece holds the rows with ``ts < cut`` of every stream and has watermark ``cut``
    (nothing later is older), so the cut changes batching only, never the output.
    """
    for frames, watermark in steps:
        total = sum(f.height for f in frames.values())
        if total <= max_rows:
            yield frames, watermark
            continue
        # frames are ts-sorted: cut points from the biggest stream, pieces by binary search
        ts = {s: f.get_column("ts").to_numpy() for s, f in frames.items()}
        big = max(ts, key=lambda s: len(ts[s]))
        every = max(1, int(max_rows * len(ts[big]) / total))
        cuts = np.unique(ts[big][every::every])
        start = dict.fromkeys(frames, 0)
        for cut in cuts.tolist():
            piece: dict[str, pl.DataFrame] = {}
            for s, f in frames.items():
                stop = int(np.searchsorted(ts[s], cut, side="left"))
                if stop > start[s]:
                    piece[s] = f.slice(start[s], stop - start[s])
                    start[s] = stop
            if piece:
                yield piece, min(int(cut), watermark)
        rest = {s: f.slice(start[s]) for s, f in frames.items() if start[s] < f.height}
        if rest:
            yield rest, watermark


def _gather(sources: list[_Source], before: int | None) -> dict[str, pl.DataFrame]:
    parts: dict[str, list[pl.DataFrame]] = {}
    for s in sources:
        for stream, frame in s.take(before).items():
            parts.setdefault(stream, []).append(frame)
    out: dict[str, pl.DataFrame] = {}
    for stream, frames in parts.items():
        frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")
        if len(frames) > 1 or not frame.get_column("ts").is_sorted():
            frame = frame.sort("ts", maintain_order=True)
        out[stream] = frame
    return out


Progress = Callable[[float, int], None]


class _RawOnly(Compute):
    """Stands in for the engine's Compute in ``--raw-only`` imports: no derived streams.

    Such a session holds the validated, sequenced raw streams only; ``islandflow
    replay`` computes the derived streams as it plays (it always does), but
    ``islandflow verify`` has nothing recorded to compare.  A subclass, so that
    whatever else the engine asks of its Compute (stats, seq counters) is there.
    """

    def process(self, raw: dict[str, pl.DataFrame], watermark: int) -> dict[str, pl.DataFrame]:
        return {}

    def flush(self) -> dict[str, pl.DataFrame]:
        return {}

    def state(self) -> dict[str, Any]:
        return {}


def import_files(
    paths: Sequence[str | Path],
    cfg: Config,
    *,
    name: str = "",
    progress: Progress | None = None,
    raw_only: bool = False,
) -> ImportReport:
    """Import DBN files into a new recorded session; ImportFailure names a bad file.

    ``raw_only`` records the raw streams without running the compute pipeline (the
    fast path; see :class:`_RawOnly`).
    """
    from islandflow_tui.engine.session import attach_recording, finish_recording

    t0 = time.perf_counter()
    if not paths:
        raise ImportFailure("no files to import")
    files = [open_file(p) for p in paths]
    _symbology, oi, sources, notes = plan(files)
    for note in notes:
        log.info(note)
    if not sources:
        schemas = ", ".join(sorted({f.schema or "mixed" for f in files}))
        raise ImportFailure(
            f"{', '.join(str(f.path) for f in files)}: no prints or quotes to import "
            f"(schema {schemas}); import trades, tbbo, tcbbo, mbp-1, cbbo or bbo files"
        )

    run_cfg = copy.deepcopy(cfg)
    run_cfg.log.record = True
    run_cfg.feed.adapter = "databento"
    # an import can simply be run again: it does not need the live loss bound, and a
    # longer one lets the recorder's writer lag instead of stalling the decode
    run_cfg.log.flush_interval_ms = max(run_cfg.log.flush_interval_ms, IMPORT_FLUSH_MS)
    engine = Engine(run_cfg)
    lo, hi = _time_range(files)
    extra = {
        "name": name,
        "profile": "import",
        "import": {
            "files": [str(f.path) for f in files],
            "datasets": sorted({f.dataset for f in files}),
            "schemas": sorted({f.schema or "mixed" for f in files}),
            "raw_only": raw_only,
        },
    }
    recorder, start_notes = attach_recording(engine, run_cfg, extra_meta=extra)
    for note in start_notes:
        log.info(note)
    if recorder is None or recorder.error or recorder.path is None:
        reason = recorder.error if recorder is not None else "recording is off"
        raise ImportFailure(f"cannot create a session under {run_cfg.data_path()}: {reason}")
    if raw_only:
        engine.compute = _RawOnly(run_cfg)
        engine.set_checkpoint_sink(None, 0)
    if oi.height:
        oi.write_parquet(recorder.path / OPEN_INTEREST_FILE)
        engine.compute.set_open_interest(oi)

    error = ""
    try:
        for frames, watermark in bounded_steps(merged_batches(sources)):
            engine.ingest(ev.FeedBatch(frames, watermark))
            if recorder.error:
                raise ImportFailure(f"recording stopped: {recorder.error}")
            if progress is not None:
                span = hi - lo
                frac = (watermark - lo) / span if span > 0 else 0.0
                progress(min(max(frac, 0.0), 1.0), sum(s.records for s in sources))
    except ImportFailure as exc:
        error = str(exc)
    finally:
        finish_recording(engine, recorder)
    if progress is not None:
        progress(1.0, sum(s.records for s in sources))
    st = engine.stats()
    accepted = {s: st.totals.get(s, 0) for s in ev.RAW_STREAMS if st.totals.get(s, 0)}
    report = ImportReport(
        session_id=recorder.session_id,
        path=recorder.path,
        files=[str(f.path) for f in files],
        records=sum(s.records for s in sources),
        unused=sum(s.unused for s in sources),
        accepted=accepted,
        rejected=st.rejected,
        open_interest=oi.height,
        seconds=time.perf_counter() - t0,
        error=error or recorder.error,
    )
    if not error and recorder.error:
        error = f"recording stopped: {recorder.error}"
    if error:
        raise ImportFailure(f"{error} (partial session {recorder.session_id} kept)")
    return report


def import_databento(
    cfg: Config,
    *,
    name: str = "",
    progress: Progress | None = None,
) -> ImportReport:
    """The ``[databento]`` historical request, downloaded straight into a new session.

    The same DatabentoFeed the app uses with ``--feed databento`` runs the engine here,
    with the recorder attached; ``progress`` gets the share of the requested event time
    received so far.  ImportFailure carries the feed's one-line reason (bad key, HTTP
    error, ...) when it fails.
    """
    import asyncio

    from islandflow_tui.engine.ingest.base import FeedStatus
    from islandflow_tui.engine.ingest.databento_feed import DatabentoFeed
    from islandflow_tui.engine.session import attach_recording, finish_recording

    t0 = time.perf_counter()
    run_cfg = copy.deepcopy(cfg)
    run_cfg.log.record = True
    run_cfg.feed.adapter = "databento"
    run_cfg.databento.mode = "historical"
    feed = DatabentoFeed(run_cfg.databento, allowed_lateness_ms=run_cfg.feed.allowed_lateness_ms)
    engine = Engine(run_cfg, feed)
    d = run_cfg.databento
    extra = {
        "name": name,
        "profile": "databento-historical",
        "import": {
            "databento": {
                "options": [d.options_dataset, d.options_schemas, d.options_symbols],
                "equities": [d.equities_dataset, d.equities_schemas, d.equities_symbols],
                "start": d.start,
                "end": d.end,
            }
        },
    }
    recorder, _notes = attach_recording(engine, run_cfg, extra_meta=extra)
    if recorder is None or recorder.error or recorder.path is None:
        reason = recorder.error if recorder is not None else "recording is off"
        raise ImportFailure(f"cannot create a session under {run_cfg.data_path()}: {reason}")

    async def run() -> None:
        async for batch in feed.batches():
            engine.ingest(batch)
            if progress is not None:
                progress(feed.progress, feed.records)

    try:
        asyncio.run(run())
    finally:
        finish_recording(engine, recorder)
    st = engine.stats()
    if feed.state.status is not FeedStatus.FINISHED:
        raise ImportFailure(
            f"databento {feed.state.status.value}: {feed.state.detail} "
            f"(session {recorder.session_id} kept with what arrived)"
        )
    if progress is not None:
        progress(1.0, feed.records)
    return ImportReport(
        session_id=recorder.session_id,
        path=recorder.path,
        files=[],
        records=feed.records,
        unused=feed.unused,
        accepted={s: st.totals.get(s, 0) for s in ev.RAW_STREAMS if st.totals.get(s, 0)},
        rejected=st.rejected,
        open_interest=sum(f.height for f in feed.open_interest),
        seconds=time.perf_counter() - t0,
    )


def read_session_open_interest(session: Path) -> pl.DataFrame | None:
    p = session / OPEN_INTEREST_FILE
    if not p.is_file():
        return None
    return pl.read_parquet(p)


__all__ = [
    "ImportFailure",
    "ImportReport",
    "import_databento",
    "import_files",
    "merged_batches",
    "open_file",
    "plan",
]
