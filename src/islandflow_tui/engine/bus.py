"""In-process pub/sub of polars batches.

Two kinds of subscriber, because they need opposite things:

* **lossless** (log writer, compute, remote publishers): a callback run synchronously
  in the publisher's thread with every batch, in order.  If one is slow the engine is
  slow; nothing is dropped.
* **display** (screens): a bounded, thread-safe buffer that keeps only the newest
  ``max_rows`` rows per stream.  When it overflows the oldest rows are dropped and
  counted as a gap, so a screen that falls behind sees the newest data and a number
  telling it how much it missed, and can never stall the engine or grow memory.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import polars as pl

LosslessCallback = Callable[[str, pl.DataFrame], None]


@dataclass(slots=True)
class Delta:
    """What a display subscriber gets for one stream since its last drain."""

    frame: pl.DataFrame  # newest rows, oldest first, at most max_rows
    gap: int  # rows dropped because the subscriber fell behind
    reset: bool = False  # discard what you had first (a replay seek): frame is the new state


class DisplayFeed:
    """Bounded newest-wins buffer, written by the engine thread, drained by the UI."""

    def __init__(self, streams: Iterable[str], max_rows: int | dict[str, int]) -> None:
        self.streams = tuple(streams)
        if isinstance(max_rows, int):
            self._limit = dict.fromkeys(self.streams, max_rows)
        else:
            self._limit = {s: max_rows[s] for s in self.streams}
        self._lock = threading.Lock()
        self._frames: dict[str, deque[pl.DataFrame]] = {s: deque() for s in self.streams}
        self._rows = dict.fromkeys(self.streams, 0)
        self._gap = dict.fromkeys(self.streams, 0)
        self._reset = dict.fromkeys(self.streams, False)
        self.total_gap = 0
        self.closed = False
        #: called (on the pushing thread, after the push) with the stream name: lets a
        #: reader that normally polls on a timer hear at once about a rare, urgent stream
        self.on_push: Callable[[str], None] | None = None

    def push(self, stream: str, frame: pl.DataFrame) -> None:
        limit = self._limit[stream]
        with self._lock:
            if frame.height > limit:
                dropped = frame.height - limit
                self._gap[stream] += dropped
                self.total_gap += dropped
                frame = frame.slice(dropped)
            frames = self._frames[stream]
            frames.append(frame)
            self._rows[stream] += frame.height
            while self._rows[stream] > limit:
                excess = self._rows[stream] - limit
                oldest = frames[0]
                if oldest.height <= excess:
                    frames.popleft()
                    cut = oldest.height
                else:
                    frames[0] = oldest.slice(excess)
                    cut = excess
                self._rows[stream] -= cut
                self._gap[stream] += cut
                self.total_gap += cut
        hook = self.on_push
        if hook is not None:
            hook(stream)

    def limit(self, stream: str) -> int:
        return self._limit[stream]

    def reset(self, stream: str, frame: pl.DataFrame) -> None:
        """Replace everything buffered for ``stream`` with ``frame`` and tell the reader."""
        with self._lock:
            self._frames[stream].clear()
            self._rows[stream] = 0
            self._gap[stream] = 0
            self._reset[stream] = True
        if frame.height:
            self.push(stream, frame)

    def add_gap(self, stream: str, rows: int) -> None:
        """Count rows dropped upstream (e.g. in the engine process) as this feed's gap."""
        with self._lock:
            self._gap[stream] += rows
            self.total_gap += rows

    def drain(self, streams: Iterable[str] | None = None) -> dict[str, Delta]:
        """Take everything buffered (of ``streams``, default all); streams with nothing
        new are absent."""
        with self._lock:
            out: dict[str, Delta] = {}
            for stream in self.streams if streams is None else streams:
                frames = self._frames[stream]
                if not frames and not self._gap[stream] and not self._reset[stream]:
                    continue
                parts = list(frames)
                frames.clear()
                self._rows[stream] = 0
                gap, self._gap[stream] = self._gap[stream], 0
                frame = pl.concat(parts, how="vertical") if parts else pl.DataFrame()
                reset, self._reset[stream] = self._reset[stream], False
                out[stream] = Delta(frame, gap, reset)
        return out

    def pending_rows(self) -> int:
        with self._lock:
            return sum(self._rows.values())


class Bus:
    """Fan-out of batches per stream to lossless callbacks and display feeds."""

    def __init__(self) -> None:
        self._lossless: dict[str, list[LosslessCallback]] = {}
        self._display: dict[str, list[DisplayFeed]] = {}
        self._lock = threading.Lock()

    def subscribe_lossless(self, streams: Iterable[str], callback: LosslessCallback) -> None:
        with self._lock:
            for stream in streams:
                self._lossless.setdefault(stream, []).append(callback)

    def subscribe_display(
        self, streams: Iterable[str], max_rows: int | dict[str, int]
    ) -> DisplayFeed:
        feed = DisplayFeed(streams, max_rows)
        with self._lock:
            for stream in feed.streams:
                self._display.setdefault(stream, []).append(feed)
        return feed

    def unsubscribe_display(self, feed: DisplayFeed) -> None:
        with self._lock:
            feed.closed = True
            for feeds in self._display.values():
                if feed in feeds:
                    feeds.remove(feed)

    def display_streams(self) -> list[str]:
        """Streams some display feed shows (a replay seek rebuilds exactly these)."""
        with self._lock:
            return [s for s, feeds in self._display.items() if feeds]

    def display_limits(self) -> dict[str, int]:
        """Per stream, the most rows any display feed keeps."""
        with self._lock:
            return {
                s: max(f.limit(s) for f in feeds) for s, feeds in self._display.items() if feeds
            }

    def publish_reset(self, stream: str, frame: pl.DataFrame) -> None:
        """Display feeds only: the stream's visible state is now ``frame`` (after a seek)."""
        for feed in self._display.get(stream, ()):
            feed.reset(stream, frame)

    def publish(self, stream: str, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        for callback in self._lossless.get(stream, ()):
            callback(stream, frame)
        for feed in self._display.get(stream, ()):
            feed.push(stream, frame)
