"""The engine facade: the only thing the UI (or a headless runner) talks to.

The engine runs on its own thread with its own asyncio loop (feed sockets, pacing);
screens never run engine work.  They subscribe to display feeds (bounded,
newest-wins) and read ``stats()`` snapshots on their own timer.

``ingest`` is also callable directly, without the thread, which is how tests,
benchmarks and snapshot tests drive the engine deterministically.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.bus import Bus, DisplayFeed, LosslessCallback
from islandflow_tui.engine.checkpoints import CheckpointClock
from islandflow_tui.engine.compute.lanes import joined_frames
from islandflow_tui.engine.compute.pipeline import Compute
from islandflow_tui.engine.frames import pick, put
from islandflow_tui.engine.ingest.base import FeedAdapter, FeedState, FeedStatus
from islandflow_tui.engine.lookup import EventIndex, lookup_events
from islandflow_tui.engine.validate import OsiCache, validate

log = logging.getLogger("islandflow.engine")

REJECT_LOG_INTERVAL_S = 10.0
RATE_WINDOW_S = 2.0
INGEST_MARKS = 64


@dataclass(frozen=True, slots=True)
class EngineStats:
    """A consistent snapshot for the status bar."""

    feed: str
    feed_state: FeedState
    running: bool
    watermark_ns: int  # event-time clock: everything before it is final
    totals: dict[str, int]  # accepted events per stream since start
    rates: dict[str, float]  # events/s per stream over the last couple of seconds
    rejected: dict[str, dict[str, int]]  # stream -> reason -> count
    rejected_total: int
    last_rejection: str  # one human line about the newest rejection, "" if none
    display_gap: int  # rows the UI's display feeds dropped because it fell behind
    error: str = ""  # set if the engine thread died (it should not)
    recording: str = ""  # recorder status line ("" when not recording)
    replay: Any = None  # ReplayState when the feed is a replay
    batches: int = 0
    ingest_ms_p50: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)
    #: the newest batches as (wall time.time() when the batch entered ``ingest``, wall
    #: time its derived events were published, alerts seq after it): alert seq s came
    #: from the first batch whose last item is > s (bench/bench_alert_latency.py)
    ingest_marks: tuple[tuple[float, float, int], ...] = ()
    gaps: int = 0  # feed gaps (data lost to a disconnect) since start
    last_gap: str = ""  # one human line about the newest gap, "" if none


class _RateMeter:
    """Events/s per stream over the last seconds of *event* time.

    Event time, not wall time, so the figure is the market's rate (the same live,
    in replay at any speed, and in a snapshot test).
    """

    def __init__(self) -> None:
        self._samples: deque[tuple[int, str, int]] = deque()

    def add(self, stream: str, n: int, now: int) -> None:
        self._samples.append((now, stream, n))
        cutoff = now - int(RATE_WINDOW_S * 2 * ev.NS_PER_S)
        while self._samples and self._samples[0][0] < cutoff:
            self._samples.popleft()

    def rates(self, now: int) -> dict[str, float]:
        cutoff = now - int(RATE_WINDOW_S * ev.NS_PER_S)
        out: dict[str, float] = {}
        for t, stream, n in list(self._samples):
            if t >= cutoff:
                out[stream] = out.get(stream, 0) + n
        return {s: n / RATE_WINDOW_S for s, n in out.items()}


class Engine:
    """Ingest -> validate -> bus (raw) -> compute -> bus (derived)."""

    def __init__(self, cfg: Config, adapter: FeedAdapter | None = None) -> None:
        self.cfg = cfg
        self.adapter = adapter
        self.bus = Bus()
        self.compute = Compute(cfg)
        self._osi = OsiCache()
        self.watermark = 0
        self.seq = dict.fromkeys(ev.RAW_STREAMS, 0)
        self.totals = dict.fromkeys(ev.ALL_STREAMS, 0)
        self.rejected: dict[str, dict[str, int]] = {s: {} for s in ev.RAW_STREAMS}
        self._last_rejection = ""
        self.gaps: list[ev.FeedGap] = []
        self._reject_logged: dict[tuple[str, str], float] = {}
        self._rates = _RateMeter()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._error = ""
        self._batches = 0
        self._ingest_ms: deque[float] = deque(maxlen=256)
        self._ingest_marks: deque[tuple[float, float, int]] = deque(maxlen=INGEST_MARKS)
        self._wall0 = 0.0
        #: recent events by id for the Evidence screen (``lookup``); older ones: the log
        self.index = EventIndex(cfg.ui.evidence_index_rows)
        self.bus.subscribe_lossless(self.index.streams, self.index.add)
        self._display_feeds: list[DisplayFeed] = []
        #: when set, nothing is published (a replay fast-forwarding to a seek target)
        self.quiet = False
        self.recorder: Any = None  # SessionRecorder when this run is recorded
        self._checkpoint_sink: Callable[[int, dict[str, pl.DataFrame]], None] | None = None
        self._checkpoint_ready: Callable[[], bool] | None = None
        self._checkpoint_clock: CheckpointClock | None = None
        bind = getattr(adapter, "bind", None)
        if callable(bind):
            bind(self)

    # -- subscriptions --------------------------------------------------------
    def subscribe(self, streams: Iterable[str], max_rows: int | dict[str, int]) -> DisplayFeed:
        feed = self.bus.subscribe_display(streams, max_rows)
        self._display_feeds.append(feed)
        return feed

    def unsubscribe(self, feed: DisplayFeed) -> None:
        self.bus.unsubscribe_display(feed)
        if feed in self._display_feeds:
            self._display_feeds.remove(feed)

    def subscribe_lossless(self, streams: Iterable[str], callback: LosslessCallback) -> None:
        self.bus.subscribe_lossless(streams, callback)

    # -- the core step ----------------------------------------------------------
    def ingest(self, batch: ev.FeedBatch) -> dict[str, pl.DataFrame]:
        """Validate, sequence and publish one adapter batch, then run compute on it.

        Returns the derived frames produced (also published on the bus); while the
        flow lanes run (:meth:`start_lanes`), the flow streams' frames are those that
        earlier batches have finished by now.
        """
        t0 = time.perf_counter()
        self._wall0 = time.time()
        if batch.gap is not None:
            self._note_gap(batch.gap)
        if batch.recorded:
            return self._ingest_recorded(batch, t0)
        accepted: dict[str, pl.DataFrame] = {}
        for stream in ev.RAW_STREAMS:
            frame = batch.frames.get(stream)
            if frame is None:
                continue
            verdict = validate(stream, frame, self.watermark, self._osi)
            if verdict.rejected:
                self._count_rejections(stream, verdict.rejected, verdict.detail)
            if verdict.accepted.height:
                accepted[stream] = self._sequence(stream, verdict.accepted)
        published = {s: pick(f, ev.SCHEMAS[s].names) for s, f in accepted.items()}
        for stream in batch.frames:
            if stream not in ev.RAW_STREAMS:
                n = batch.frames[stream].height
                self._count_rejections(
                    "unknown", {"unknown_stream": max(n, 1)}, {"unknown_stream": stream}
                )
        self.watermark = max(self.watermark, batch.watermark)
        return self._run_compute(accepted, published, t0)

    def _ingest_recorded(self, batch: ev.FeedBatch, t0: float) -> dict[str, pl.DataFrame]:
        """Replay: rows come with their recorded seq/id and OSI columns; only the
        engine-internal contract id is attached (the log never stores it)."""
        accepted: dict[str, pl.DataFrame] = {}
        for stream in ev.RAW_STREAMS:
            frame = batch.frames.get(stream)
            if frame is None or frame.height == 0:
                continue
            if stream in (ev.OPTIONS_PRINTS, ev.OPTIONS_NBBO):
                frame = self._osi.attach(frame, contract_columns=False)
            accepted[stream] = frame
            last = int(frame.get_column("seq").max())  # type: ignore[arg-type]
            self.seq[stream] = max(self.seq[stream], last + 1)
        published = {s: pick(f, ev.SCHEMAS[s].names) for s, f in accepted.items()}
        self.watermark = max(self.watermark, batch.watermark)
        return self._run_compute(accepted, published, t0)

    def _run_compute(
        self, accepted: dict[str, pl.DataFrame], published: dict[str, pl.DataFrame], t0: float
    ) -> dict[str, pl.DataFrame]:
        # counted before published: a subscriber that has the rows and then asks for
        # stats must find them in the totals
        self._count(published)
        if not self.quiet:
            for stream, frame in published.items():
                self.bus.publish(stream, frame)
        # compute also gets engine-internal columns (cid) that the bus never carries
        derived = self.compute.process(accepted, self.watermark)
        self._emit(derived)
        wall1 = time.time()
        settled = self._maybe_checkpoint(sum(f.height for f in accepted.values()))
        if settled:
            derived = joined_frames([derived, settled])
        elapsed_ms = (time.perf_counter() - t0) * 1000
        with self._lock:
            self._batches += 1
            self._ingest_ms.append(elapsed_ms)
            self._ingest_marks.append((self._wall0, wall1, self.compute.seq[ev.ALERTS]))
        return derived

    # -- checkpoints (fast seek, restart) ---------------------------------------------
    def _count(self, frames: dict[str, pl.DataFrame]) -> None:
        with self._lock:
            for stream, frame in frames.items():
                self.totals[stream] += frame.height
                self._rates.add(stream, frame.height, self.watermark)

    def checkpoint(self) -> dict[str, pl.DataFrame]:
        """Engine and operator state at the current watermark, as polars frames.

        Only state that follows from events *below* the watermark is kept: raw rows
        at or above it (the NBBO join's pending buffers) are dropped, because a
        restore is always followed by replaying the raw rows from the watermark on.
        """
        state = {
            k: v
            for k, v in self.compute.state().items()
            if not k.startswith(("nbbo.pending", "eqjoin.pending"))
        }
        state["engine.osi"] = self._osi.table()
        state["engine.meta"] = pl.DataFrame(
            {
                "key": ["watermark", *(f"seq.{s}" for s in ev.RAW_STREAMS)],
                "value": [self.watermark, *(self.seq[s] for s in ev.RAW_STREAMS)],
            },
            schema={"key": pl.String, "value": pl.Int64},
        )
        return state

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        """Inverse of :meth:`checkpoint`."""
        meta = dict(state["engine.meta"].iter_rows())
        self._osi.load(state["engine.osi"])
        compute_state = {k: v for k, v in state.items() if not k.startswith("engine.")}
        self._new_compute().restore(compute_state)
        self.watermark = int(meta["watermark"])
        for s in ev.RAW_STREAMS:
            self.seq[s] = int(meta[f"seq.{s}"])
        self._rates = _RateMeter()

    def reset(self) -> None:
        """Back to an empty engine (a replay seeking before its first checkpoint)."""
        self._new_compute()
        self._osi = OsiCache()
        self.watermark = 0
        self.seq = dict.fromkeys(ev.RAW_STREAMS, 0)
        self._rates = _RateMeter()

    def _new_compute(self) -> Compute:
        """A fresh Compute in place of the current one (whose frames in flight are
        dropped with its state); the lanes keep running if they were."""
        old, self.compute = self.compute, Compute(self.cfg)
        if old.lanes_running:
            old.stop_lanes()
            self.compute.start_lanes()
        return self.compute

    def set_checkpoint_sink(
        self,
        sink: Callable[[int, dict[str, pl.DataFrame]], None] | None,
        interval_ns: int,
        max_events: int = 0,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        """Call ``sink(watermark, checkpoint())`` each time event time crosses a
        multiple of ``interval_ns`` or ``max_events`` raw events have been ingested
        since the last one (live recording persists them for fast seeks).  When
        ``ready()`` says no (writer busy, disk budget), that one is skipped before
        the state is taken."""
        self._checkpoint_sink = sink
        self._checkpoint_ready = ready
        self._checkpoint_clock = CheckpointClock(interval_ns, max_events)

    def _maybe_checkpoint(self, new_events: int) -> dict[str, pl.DataFrame]:
        """Take a checkpoint if one is due; with the flow lanes running, their backlog
        is published first (returned), so a checkpoint follows everything before it
        on the bus as it does on the serial path."""
        sink, clock = self._checkpoint_sink, self._checkpoint_clock
        if sink is None or clock is None or not clock.due(self.watermark, new_events):
            return {}
        settled = self._emit(self.compute.settle())
        try:
            ready = self._checkpoint_ready
            if ready is None or ready():
                sink(self.watermark, self.checkpoint())
        except Exception:  # a checkpoint is an optimisation: never fatal
            log.exception("checkpoint failed")
        clock.taken(self.watermark)
        return settled

    # -- flow lanes (compute/lanes.py): bulk runs only -----------------------------
    def start_lanes(self) -> None:
        """Run the flow stages on their own threads until :meth:`stop_lanes` (a seek's
        long fast-forward): same derived events, handed back a batch or two later, so
        ``ingest`` returns earlier batches' flow frames."""
        self.compute.start_lanes()

    def stop_lanes(self) -> dict[str, pl.DataFrame]:
        """Finish the lanes' backlog (counted and published, and returned)."""
        return self._emit(self.compute.stop_lanes())

    def _emit(self, derived: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
        """Count derived frames, publish them (unless quiet) and count the batches the
        flow lanes failed since the last call; returns ``derived``."""
        self._count(derived)
        if not self.quiet:
            for stream, frame in derived.items():
                self.bus.publish(stream, frame)
        for exc in self.compute.take_lane_errors():
            self._batch_failed(exc)
        return derived

    def _batch_failed(self, exc: Exception) -> None:
        """Count a batch the engine could not compute; the feed goes on (a replay
        seeks back past a damaged checkpoint)."""
        self._count_rejections(
            "engine", {"batch_error": 1}, {"batch_error": f"{type(exc).__name__}: {exc}"}
        )
        recover = getattr(self.adapter, "batch_failed", None)
        if recover is not None:
            recover(exc)

    def flush(self) -> dict[str, pl.DataFrame]:
        """Finalise every open window (end of input)."""
        return self._emit(self.compute.flush())

    def _sequence(self, stream: str, frame: pl.DataFrame) -> pl.DataFrame:
        start = self.seq[stream]
        self.seq[stream] = start + frame.height
        return put(frame, *ev.seq_id_series(stream, start, frame.height))

    def _note_gap(self, gap: ev.FeedGap) -> None:
        """Count, log and record a feed gap; the status bar and the tape show it."""
        with self._lock:
            self.gaps.append(gap)
        log.warning(
            "feed gap on %s: %s to %s (%.1fs of event time): %s",
            gap.feed,
            gap.start_ts,
            gap.end_ts,
            (gap.end_ts - gap.start_ts) / ev.NS_PER_S,
            gap.reason,
        )
        path = getattr(self.recorder, "path", None)
        if path is not None:
            from islandflow_tui.engine.gaps import record_gap

            try:
                record_gap(path, gap)
            except OSError:  # the gap is still counted and shown
                log.exception("could not record the feed gap")

    def count_rejections(self, stream: str, counts: dict[str, int], detail: dict[str, str]) -> None:
        """Count rows an adapter could not even build (e.g. an unparseable vendor message)."""
        self._count_rejections(stream, counts, detail)

    def _count_rejections(
        self, stream: str, counts: dict[str, int], detail: dict[str, str]
    ) -> None:
        now = time.monotonic()
        with self._lock:
            per = self.rejected.setdefault(stream, {})
            for reason, n in counts.items():
                per[reason] = per.get(reason, 0) + n
                self._last_rejection = f"{reason}: {detail.get(reason, stream)}"
                key = (stream, reason)
                if now - self._reject_logged.get(key, -1e9) >= REJECT_LOG_INTERVAL_S:
                    self._reject_logged[key] = now
                    log.warning(
                        "rejected %d %s event(s) (%s): %s; total %d",
                        n,
                        stream,
                        reason,
                        detail.get(reason, ""),
                        per[reason],
                    )

    # -- stats ------------------------------------------------------------------
    def stats(self) -> EngineStats:
        with self._lock:
            rejected = {s: dict(r) for s, r in self.rejected.items() if r}
            ingest = sorted(self._ingest_ms)
            adapter = self.adapter
            return EngineStats(
                feed=getattr(adapter, "label", adapter.name) if adapter else "none",
                feed_state=adapter.state if adapter else FeedState(FeedStatus.STOPPED),
                running=self._running,
                watermark_ns=self.watermark,
                totals=dict(self.totals),
                rates=self._rates.rates(self.watermark),
                rejected=rejected,
                rejected_total=sum(sum(r.values()) for r in rejected.values()),
                last_rejection=self._last_rejection,
                display_gap=sum(f.total_gap for f in self._display_feeds),
                error=self._error,
                recording=self._recording_line(),
                replay=_replay_state(adapter),
                batches=self._batches,
                ingest_ms_p50=ingest[len(ingest) // 2] if ingest else 0.0,
                ingest_marks=tuple(self._ingest_marks),
                gaps=len(self.gaps),
                last_gap=gap_line(self.gaps[-1]) if self.gaps else "",
                extra=self.compute.extra_stats(),
            )

    # -- events by id (the Evidence screen) ---------------------------------------
    def session_path(self) -> Path | None:
        """The session whose log holds this run's events: the one being recorded, or
        the one being replayed; None when neither (``--no-record``)."""
        rec = self.recorder
        if rec is not None and getattr(rec, "path", None) is not None and not rec.error:
            return Path(rec.path)
        path = getattr(self.adapter, "path", None)
        return Path(path) if path is not None else None

    def lookup(self, ids: Iterable[int]) -> dict[str, pl.DataFrame]:
        """Events by id (any stream), from the recent-event index, else the session
        log; print ids also bring their enriched/joined rows (engine/lookup.py).
        Thread-safe; it reads files, so callers keep it off the UI loop."""
        return lookup_events(ids, self.index, self.session_path())

    def _recording_line(self) -> str:
        rec = self.recorder
        if rec is None:
            return ""
        if rec.error:
            return f"recording stopped: {rec.error}"
        return rec.status_line()

    def control(self, command: str, arg: Any = None) -> None:
        """Replay controls (play, pause, seek, ...); a live feed has none."""
        control = getattr(self.adapter, "control", None)
        if control is None:
            raise ValueError(
                f"the {self.adapter.name if self.adapter else 'absent'} feed has no controls"
            )
        control(command, arg)

    # -- the engine thread ------------------------------------------------------
    def start(self) -> None:
        if self.adapter is None:
            raise RuntimeError("engine has no feed adapter to run")
        if self._thread is not None:
            return
        self._running = True
        self._thread = threading.Thread(
            target=self._thread_main, name="islandflow-engine", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self.adapter is not None:
            self.adapter.close()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def run_forever(self) -> None:
        """Run the feed on the calling thread until it ends or is closed (engine process)."""
        if self.adapter is None:
            raise RuntimeError("engine has no feed adapter to run")
        self._running = True
        self._thread_main()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._run())
        except Exception as exc:  # the engine must report, never vanish silently
            log.exception("engine thread failed")
            self._error = f"engine stopped: {type(exc).__name__}: {exc}"
            if self.adapter is not None:
                self.adapter.set_state(FeedStatus.FAILED, str(exc))
        finally:
            loop.close()
            self._running = False
            if self.recorder is not None:
                from islandflow_tui.engine.session import finish_recording

                finish_recording(self, self.recorder)

    async def _run(self) -> None:
        assert self.adapter is not None
        async for batch in self.adapter.batches():
            try:
                self.ingest(batch)
            except Exception as exc:  # a bad batch is counted; the feed goes on
                log.exception("batch failed")
                self._batch_failed(exc)


def gap_line(gap: ev.FeedGap) -> str:
    """``gap 14:31:02-14:31:09 ET (7.0s): connection reset; ...`` for the UI."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    et = ZoneInfo("America/New_York")

    def clock(ns: int) -> str:
        return datetime.fromtimestamp(ns / 1e9, tz=UTC).astimezone(et).strftime("%H:%M:%S")

    span = max(0, gap.end_ts - gap.start_ts) / ev.NS_PER_S
    return f"gap {clock(gap.start_ts)}-{clock(gap.end_ts)} ET ({span:.1f}s): {gap.reason}"


def _replay_state(adapter: FeedAdapter | None) -> Any:
    snapshot = getattr(adapter, "state_snapshot", None)
    return snapshot() if callable(snapshot) else None
