"""What every live vendor feed shares: row buffering, reconnect with backoff, gaps, de-dup.

A vendor adapter subclasses :class:`LiveFeed` and implements :meth:`LiveFeed.session`:
connect, authenticate, subscribe, call :meth:`LiveFeed.mark_live`, then hand rows to
:meth:`LiveFeed.emit` until the connection drops (raise) or the feed is closed
(return).  The base class owns the rest, so every feed behaves the same:

* **Reconnect**: a dropped session is retried after ``Backoff`` delays (exponential,
  jittered); the status reads ``reconnecting`` with the attempt and the delay.  A
  session that got live resets the attempt count.  :class:`FeedFatal` (bad keys, a
  plan without the feed) stops retrying and leaves its status (``auth failed``,
  ``subscription limit``) for the status bar: hammering a vendor with bad keys helps
  nobody.
* **Gaps**: the stretch from the last event before a loss to the first event after it
  is a :class:`FeedGap` on the next batch; the engine counts, logs and shows it.
* **No duplicates**: vendors may resend recent events after a resubscribe; rows whose
  key (``dedup_key``) was already sent are dropped here, so the engine's seq has no
  repeats.  Keys are kept for the allowed lateness only (older events would be
  rejected as late anyway).
* **Batches**: rows are buffered per stream and flushed every ``flush_ms`` as polars
  frames (the engine's cost is per batch); the watermark trails the newest event
  time by the allowed lateness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Hashable
from typing import Any

import polars as pl

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.ingest.base import Backoff, FeedAdapter, FeedStatus

log = logging.getLogger("islandflow.feed")


class _ToIslandflowLog(logging.Handler):
    """Forward a vendor SDK's records into islandflow's log file."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger("islandflow.vendor").handle(record)


def route_vendor_logs(*names: str, level: int = logging.INFO) -> None:
    """Send vendor SDK loggers to our log file, never to the terminal the TUI draws on.

    Without a handler, Python's last-resort handler prints their warnings to stderr,
    over the TUI.  DEBUG stays off: websockets would log raw frames, auth included.
    """
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _ToIslandflowLog) for h in logger.handlers):
            logger.addHandler(_ToIslandflowLog())
        logger.propagate = False
        logger.setLevel(max(level, logging.INFO))


class FeedFatal(Exception):
    """The feed cannot work until the user fixes something: no retry."""

    def __init__(self, status: FeedStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class FeedRetry(Exception):
    """A loss worth retrying, with the status to show while waiting (e.g. connection limit)."""

    def __init__(self, status: FeedStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class LiveFeed(FeedAdapter):
    """Base of the vendor feeds (see module docstring)."""

    name = "live"

    def __init__(
        self,
        *,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        flush_ms: int = 100,
        lateness_ms: int = 2000,
        max_attempts: int = 0,
    ) -> None:
        super().__init__()
        self.backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self.flush_s = flush_ms / 1000
        self.lateness_ns = lateness_ms * ev.NS_PER_MS
        self.max_attempts = max_attempts  # 0 = retry for ever
        self._rows: dict[str, list[dict[str, Any]]] = {s: [] for s in ev.RAW_STREAMS}
        self._seen: dict[Hashable, int] = {}  # de-dup key -> ts
        self.duplicates = 0
        self.newest_ts = 0
        self._gap_from: int | None = None  # newest ts before a loss, while a gap is open
        self._gap_reason = ""
        self._gap_attempts = 0
        self._pending_gap: ev.FeedGap | None = None
        self.gaps: list[ev.FeedGap] = []
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.attempt = 0
        self._engine: Any = None
        self._rejects: dict[tuple[str, str], tuple[int, str]] = {}

    def bind(self, engine: Any) -> None:
        """The engine calls this; rejections of unparseable messages are counted there."""
        self._engine = engine

    # -- for subclasses ------------------------------------------------------------
    async def session(self) -> None:
        """One connection: connect, auth, subscribe, ``mark_live``, stream via ``emit``.

        Return when ``closed``; raise on any loss (``FeedRetry``/``FeedFatal`` to choose
        the status, any other exception is a retryable drop).
        """
        raise NotImplementedError

    async def on_disconnect(self) -> None:
        """Release the connection after a loss or at close (override if needed)."""

    @property
    def closed(self) -> bool:
        return self._closed

    def mark_live(self, detail: str = "") -> None:
        self.attempt = 0
        self.set_state(FeedStatus.LIVE, detail)

    def emit(self, stream: str, row: dict[str, Any], dedup_key: Hashable | None = None) -> bool:
        """Buffer one row of ``stream`` (ingest fields); False if it was a duplicate."""
        ts = row["ts"]
        if dedup_key is not None:
            if dedup_key in self._seen:
                self.duplicates += 1
                return False
            self._seen[dedup_key] = ts
        if self._gap_from is not None:
            self._close_gap(ts)
        if ts > self.newest_ts:
            self.newest_ts = ts
        self._rows[stream].append(row)
        return True

    def reject(self, stream: str, reason: str, detail: str) -> None:
        """Count a vendor message that could not become a row (named, shown, never fatal)."""
        n, _ = self._rejects.get((stream, reason), (0, ""))
        self._rejects[(stream, reason)] = (n + 1, detail)
        log.debug("%s: rejected %s message: %s", self.name, stream, detail)

    # -- the FeedAdapter side ------------------------------------------------------
    async def batches(self) -> AsyncIterator[FeedBatch]:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._closed:
            self._stop.set()
        runner = asyncio.create_task(self._reconnect_loop())
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._stop.wait()), self.flush_s)
                batch = self.take_batch()
                if batch is not None:
                    yield batch
                if self._closed or runner.done():
                    batch = self.take_batch()
                    if batch is not None:
                        yield batch
                    break
        finally:
            self._closed = True
            self._stop.set()
            if not runner.done():
                runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner
            with contextlib.suppress(Exception):
                await self.on_disconnect()
        if self.state.status in (FeedStatus.LIVE, FeedStatus.CONNECTING, FeedStatus.RECONNECTING):
            self.set_state(FeedStatus.STOPPED)

    def close(self) -> None:
        self._closed = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)

    def take_batch(self) -> ev.FeedBatch | None:
        """Everything buffered as one batch (None if nothing to send)."""
        if self._rejects and self._engine is not None:
            rejects, self._rejects = self._rejects, {}
            for (stream, reason), (n, detail) in sorted(rejects.items()):
                self._engine.count_rejections(stream, {reason: n}, {reason: detail})
        frames: dict[str, pl.DataFrame] = {}
        for stream, rows in self._rows.items():
            if rows:
                frames[stream] = pl.DataFrame(
                    rows, schema=ev.ingest_polars_schema(stream), orient="row"
                )
                self._rows[stream] = []
        gap, self._pending_gap = self._pending_gap, None
        if not frames and gap is None:
            return None
        watermark = max(0, self.newest_ts - self.lateness_ns)
        self._prune(watermark)
        return ev.FeedBatch(frames, watermark, gap=gap)

    # -- internals -------------------------------------------------------------------
    async def _reconnect_loop(self) -> None:
        while not self._closed:
            self.set_state(
                FeedStatus.CONNECTING if self.attempt == 0 else FeedStatus.RECONNECTING,
                self.state.detail if self.attempt else "",
            )
            status = FeedStatus.RECONNECTING
            try:
                await self.session()
                if self._closed:
                    return
                reason = "stream ended"
            except asyncio.CancelledError:
                raise
            except FeedFatal as exc:
                log.error("%s feed stopped: %s", self.name, exc.detail)
                self.set_state(exc.status, exc.detail)
                return
            except FeedRetry as exc:
                status, reason = exc.status, exc.detail
            except Exception as exc:  # a drop of any kind is retried
                reason = _describe(exc)
            with contextlib.suppress(Exception):
                await self.on_disconnect()
            if self._closed:
                return
            self._open_gap(reason)
            self.attempt += 1
            if self.max_attempts and self.attempt > self.max_attempts:
                self.set_state(FeedStatus.FAILED, f"gave up after {self.max_attempts}: {reason}")
                return
            delay = self.backoff.delay(self.attempt, self._rng)
            detail = f"attempt {self.attempt} in {delay:.1f}s: {reason}"
            log.warning("%s feed lost: %s", self.name, detail)
            self.set_state(status, detail)
            assert self._stop is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stop.wait()), delay)

    def _open_gap(self, reason: str) -> None:
        if self.newest_ts == 0:
            return  # nothing was streaming yet: a failed first connect loses no data
        self._gap_attempts += 1
        if self._gap_from is None:
            self._gap_from = self.newest_ts
            self._gap_reason = reason

    def _close_gap(self, ts: int) -> None:
        start = self._gap_from or ts
        attempts = self._gap_attempts
        gap = ev.FeedGap(
            self.name,
            start,
            max(ts, start),
            f"{self._gap_reason}; reconnected after {attempts} attempt"
            + ("s" if attempts != 1 else ""),
        )
        self._gap_from = None
        self._gap_attempts = 0
        self.gaps.append(gap)
        if self._pending_gap is None:
            self._pending_gap = gap
        else:  # two losses inside one flush: one gap spanning both
            first = self._pending_gap
            self._pending_gap = ev.FeedGap(self.name, first.start_ts, gap.end_ts, gap.reason)

    def _prune(self, watermark: int) -> None:
        # keys live for twice the lateness (a resend older than that is rejected as late)
        cutoff = watermark - self.lateness_ns if len(self._seen) < 50_000 else watermark
        # keys arrive in (nearly) time order: drop from the oldest until a fresh one
        stale = []
        for k, t in self._seen.items():
            if t >= cutoff:
                break
            stale.append(k)
        for k in stale:
            del self._seen[k]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


FeedBatch = ev.FeedBatch
