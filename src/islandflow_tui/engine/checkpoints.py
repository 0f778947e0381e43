"""When to checkpoint, and writing checkpoints without stalling the engine.

A seek restores the nearest checkpoint before its target and fast-forwards from
there, so a seek costs one restore plus the work between two checkpoints.  A fixed
event-time interval alone makes that work grow with the event rate (10 s of the
firehose is ~2.4 M raw events, several seconds of compute), so a checkpoint is also
due after ``max_events`` raw events: seeks stay bounded by work, not by time, and
quiet markets do not checkpoint needlessly.  Checkpoints never change derived output
(a restore reproduces the exact state), so where they fall does not affect
determinism.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

log = logging.getLogger(__name__)


@dataclass
class CheckpointClock:
    """Says when a checkpoint is due: every ``interval_ns`` of event time (on its
    multiples) or every ``max_events`` raw events (0: no event trigger)."""

    interval_ns: int
    max_events: int = 0
    _next: int = 0
    _events: int = 0
    #: where the clock was last armed (event time, ns)
    armed_at: int = 0

    def start(self, watermark: int) -> None:
        """Arm the clock at ``watermark`` (a start, a restore, a seek).

        A multiple less than half an interval away is skipped: after an event-count
        checkpoint at 9.7 s, one at 10.0 s would cost a checkpoint's engine time and
        disk and shorten no seek (at firehose rates that was one checkpoint in six).
        """
        nxt = (watermark // self.interval_ns + 1) * self.interval_ns
        if self._next and nxt - watermark < self.interval_ns // 2:
            nxt += self.interval_ns
        self._next = nxt
        self._events = 0
        self.armed_at = watermark

    def due(self, watermark: int, new_events: int) -> bool:
        """Count ``new_events`` just ingested up to ``watermark``; True if one is due."""
        self._events += new_events
        if self._next == 0:  # first batch: arm, do not checkpoint an empty engine
            self.start(watermark)
            return False
        return watermark >= self._next or (0 < self.max_events <= self._events)

    def taken(self, watermark: int) -> None:
        self.start(watermark)


class CheckpointUnreadable(RuntimeError):
    """A checkpoint frame a restore left unread (``pl.LazyFrame``) failed to decode
    when the engine first needed it: the checkpoint is damaged inside a file (a
    truncated or missing file is caught at load).  The engine's state is then
    incomplete; a replay drops that checkpoint and seeks again from an earlier one."""


class CheckpointWriter:
    """Writes checkpoints on one background thread so the engine never waits on disk.

    At most one checkpoint waits while another is written; a checkpoint that finds
    both slots busy is skipped (logged): a later one serves seeks just as well, and
    the engine must not fall behind the feed for an optimisation.
    """

    def __init__(self, write: Callable[[int, dict[str, pl.DataFrame]], None]) -> None:
        self._write = write
        self._queue: queue.Queue[tuple[int, dict[str, pl.DataFrame]] | None] = queue.Queue(1)
        self.skipped = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def has_room(self) -> bool:
        """Whether :meth:`submit` would queue now; False counts a skip (the engine
        asks before taking the state, so a busy writer costs it nothing)."""
        if self._queue.full():
            self.skipped += 1
            log.info("checkpoint skipped: the previous one is still being written")
            return False
        return True

    def submit(self, watermark: int, state: dict[str, pl.DataFrame]) -> None:
        # clones: the engine goes on using its frames while this thread writes them
        item = (watermark, {k: v.clone() for k, v in state.items()})
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.skipped += 1
            log.info("checkpoint at %d skipped: the previous one is still being written", watermark)

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._write(*item)
                self.written += 1
            except Exception:  # a checkpoint is an optimisation: never fatal
                log.exception("checkpoint at %d not written", item[0])
