"""The engine in a child process, behind the same facade as ``Engine``.

Why: under the firehose the engine thread holds the GIL for tens of milliseconds
at a time (numpy generation, Python glue between polars calls), and every such
stretch is event-loop lag in the UI.  DESIGN.md's answer is to move the engine
into a child process that ships Arrow batches; the facade stays the same.

Shape:

* the child runs ``Engine`` with its feed (and, later, its recorder) on its main
  thread; for each UI subscription it keeps a bounded newest-wins ``DisplayFeed``
  and a sender thread drains those at ``SEND_HZ`` into Arrow IPC bytes sent over a
  pipe together with a stats snapshot.  Conflation therefore happens *before* the
  pipe: a slow UI costs the child nothing and the pipe carries at most a hot
  window per tick.  An alert (``URGENT_STREAMS``) wakes the sender at once and
  goes alone, ahead of the firehose streams' frames.
* the parent has a receiver thread that turns messages back into polars frames
  and pushes them into its own local ``DisplayFeed`` s, so the app code is the
  same whether the engine is a thread (tests, benchmarks) or a process.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

import polars as pl

from islandflow_tui.config import Config
from islandflow_tui.engine.bus import DisplayFeed
from islandflow_tui.engine.core import Engine, EngineStats
from islandflow_tui.engine.ingest.base import FeedState, FeedStatus

log = logging.getLogger("islandflow.engine.process")

SEND_HZ = 30.0
#: streams whose arrival sends at once instead of at the next ``SEND_HZ`` tick (rare
#: and what a person waits for; the firehose streams keep the 30 Hz conflation)
URGENT_STREAMS = frozenset({"alerts"})
#: an urgent send still waits this long after the previous send (bounds the rate)
URGENT_MIN_GAP_S = 0.005
ENGINE_NICENESS = 10


def _to_ipc(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_ipc(buf, compression="uncompressed")
    return buf.getvalue()


def _from_ipc(data: bytes) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(data))


# --------------------------------------------------------------------------- child
def _child_main(cfg: Config, conn: Connection, subs: list[tuple[int, list[str], Any]]) -> None:
    """Entry point of the engine process."""
    from islandflow_tui.engine.feeds import build_adapter
    from islandflow_tui.logs import setup_logging

    setup_logging(cfg)
    # The UI process must win the CPU when both want it: polars fans engine work
    # out over every core, and a starved UI is event-loop lag the user feels.
    with contextlib.suppress(OSError):
        os.nice(ENGINE_NICENESS)
    send_lock = threading.Lock()

    def send(msg: tuple[Any, ...]) -> bool:
        try:
            with send_lock:
                conn.send(msg)
            return True
        except (BrokenPipeError, EOFError, OSError):
            return False

    try:
        adapter = build_adapter(cfg)
    except Exception as exc:  # a feed that cannot be built is reported, then we stop
        send(("fatal", f"feed could not start: {exc}"))
        return
    engine = Engine(cfg, adapter)
    from islandflow_tui.engine.session import attach_recording

    _, notes = attach_recording(engine, cfg)
    for note in notes:
        log.info("%s", note)
    stop = threading.Event()
    wake = threading.Event()  # set by an urgent push or by stop

    def urgent(stream: str) -> None:
        if stream in URGENT_STREAMS:
            wake.set()

    def subscribe(streams: list[str], max_rows: Any) -> DisplayFeed:
        feed = engine.subscribe(streams, max_rows)
        feed.on_push = urgent
        return feed

    def halt() -> None:
        stop.set()
        wake.set()

    feeds: dict[int, DisplayFeed] = {}
    for sub_id, streams, max_rows in subs:
        feeds[sub_id] = subscribe(streams, max_rows)

    def sender() -> None:
        """Every ``1 / SEND_HZ``: everything buffered.  In between, as soon as an urgent
        stream is pushed: that stream alone (a few rows), so an alert does not wait for
        the tick nor for the encoding of the firehose streams' conflated frames."""
        period = 1.0 / SEND_HZ
        next_full = time.perf_counter()
        while not stop.is_set():
            t0 = time.perf_counter()
            full = t0 >= next_full
            wake.clear()  # before draining: a push from now on is in this send or wakes the next
            only = None if full else URGENT_STREAMS
            payload: dict[int, dict[str, tuple[bytes | None, int, bool]]] = {}
            for sub_id, feed in list(feeds.items()):
                out = {}
                for stream, delta in feed.drain(only).items():
                    data = _to_ipc(delta.frame) if delta.frame.height else None
                    out[stream] = (data, delta.gap, delta.reset)
                if out:
                    payload[sub_id] = out
            if (full or payload) and not send(("tick", payload, engine.stats())):
                halt()
                adapter.close()
                return
            if full:
                next_full = t0 + period
            # the next full tick, or an urgent push (not sooner than URGENT_MIN_GAP_S)
            time.sleep(max(0.0, URGENT_MIN_GAP_S - (time.perf_counter() - t0)))
            wake.wait(max(0.0, next_full - time.perf_counter()))

    def control() -> None:
        while not stop.is_set():
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                msg = ("stop",)
            kind = msg[0]
            if kind == "stop":
                halt()
                adapter.close()
                return
            if kind == "subscribe":
                _, sub_id, streams, max_rows = msg
                feeds[sub_id] = subscribe(streams, max_rows)
            elif kind == "control":
                try:
                    engine.control(msg[1], msg[2])
                except ValueError as exc:
                    log.warning("%s", exc)
            elif kind == "unsubscribe":
                feed = feeds.pop(msg[1], None)
                if feed is not None:
                    engine.unsubscribe(feed)
            elif kind == "lookup":
                # its own thread: a log read must not hold up replay controls
                threading.Thread(
                    target=answer_lookup,
                    args=(msg[1], msg[2]),
                    name="islandflow-lookup",
                    daemon=True,
                ).start()

    def answer_lookup(req_id: int, ids: list[int]) -> None:
        try:
            found = engine.lookup(ids)
            send(("lookup", req_id, {s: _to_ipc(f) for s, f in found.items()}, ""))
        except Exception as exc:  # reported to the asking screen, never fatal
            log.exception("lookup failed")
            send(("lookup", req_id, {}, f"{type(exc).__name__}: {exc}"))

    threads = [
        threading.Thread(target=sender, name="islandflow-sender", daemon=True),
        threading.Thread(target=control, name="islandflow-control", daemon=True),
    ]
    for t in threads:
        t.start()
    engine.run_forever()  # returns when the feed ends or is closed
    stats = engine.stats()
    time.sleep(1.5 / SEND_HZ)  # let the sender ship the last tick
    halt()
    send(("finished", stats))


# --------------------------------------------------------------------------- parent
class ProcessEngine:
    """Facade over an engine running in a child process (see module docstring)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._subs: dict[int, tuple[list[str], Any, DisplayFeed]] = {}
        self._next_id = 0
        self._conn: Connection | None = None
        self._proc: mp.process.BaseProcess | None = None
        self._receiver: threading.Thread | None = None
        self._stats = EngineStats(
            feed=cfg.feed.adapter,
            feed_state=FeedState(FeedStatus.CONNECTING, "starting engine process"),
            running=False,
            watermark_ns=0,
            totals={},
            rates={},
            rejected={},
            rejected_total=0,
            last_rejection="",
            display_gap=0,
        )
        self._error = ""
        self._stopping = False
        self._lock = threading.Lock()
        self._lookups: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._next_lookup = 0

    # -- the Engine facade used by the app ---------------------------------------
    def subscribe(self, streams: Iterable[str], max_rows: int | dict[str, int]) -> DisplayFeed:
        streams = list(streams)
        feed = DisplayFeed(streams, max_rows)
        sub_id = self._next_id
        self._next_id += 1
        self._subs[sub_id] = (streams, max_rows, feed)
        if self._conn is not None:
            self._send(("subscribe", sub_id, streams, max_rows))
        return feed

    def unsubscribe(self, feed: DisplayFeed) -> None:
        for sub_id, (_, _, f) in list(self._subs.items()):
            if f is feed:
                del self._subs[sub_id]
                if self._conn is not None:
                    self._send(("unsubscribe", sub_id))

    def stats(self) -> EngineStats:
        with self._lock:
            stats = self._stats
            local_gap = sum(f.total_gap for _, _, f in self._subs.values())
            return replace(
                stats,
                display_gap=stats.display_gap + local_gap,
                error=self._error or stats.error,
            )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def control(self, command: str, arg: Any = None) -> None:
        """Replay controls, applied in the engine process between batches."""
        self._send(("control", command, arg))

    def lookup(self, ids: Iterable[int], timeout: float = 30.0) -> dict[str, pl.DataFrame]:
        """``Engine.lookup`` answered by the engine process (its index and its log).

        Blocks until the answer comes (call it from a worker thread); raises
        ``TimeoutError`` or ``RuntimeError`` naming what went wrong.
        """
        if self._conn is None:
            raise RuntimeError("the engine process is not running")
        done = threading.Event()
        box: list[Any] = []
        with self._lock:
            req_id = self._next_lookup
            self._next_lookup += 1
            self._lookups[req_id] = (done, box)
        try:
            self._send(("lookup", req_id, [int(i) for i in ids]))
            if not done.wait(timeout):
                raise TimeoutError(f"the engine did not answer a lookup within {timeout:.0f} s")
        finally:
            with self._lock:
                self._lookups.pop(req_id, None)
        frames, error = box
        if error:
            raise RuntimeError(f"lookup failed in the engine: {error}")
        return frames

    def start(self) -> None:
        if self._proc is not None:
            return
        ctx = mp.get_context("spawn")  # never fork a process that has polars' thread pool
        parent, child = ctx.Pipe(duplex=True)
        subs = [(i, s, m) for i, (s, m, _) in self._subs.items()]
        self._proc = ctx.Process(
            target=_child_main, args=(self.cfg, child, subs), name="islandflow-engine", daemon=True
        )
        self._proc.start()
        child.close()
        self._conn = parent
        self._receiver = threading.Thread(
            target=self._receive, name="islandflow-receiver", daemon=True
        )
        self._receiver.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._proc is None:
            return
        self._stopping = True
        self._send(("stop",))
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(1.0)
        if self._receiver is not None:
            self._receiver.join(1.0)
        if self._conn is not None:
            self._conn.close()
        self._proc = None
        self._conn = None

    # -- internals -------------------------------------------------------------
    def _send(self, msg: tuple[Any, ...]) -> None:
        try:
            assert self._conn is not None
            self._conn.send(msg)
        except (BrokenPipeError, EOFError, OSError, AssertionError):
            pass  # the receiver reports a dead child

    def _receive(self) -> None:
        conn = self._conn
        assert conn is not None
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            try:
                self._handle(msg)
            except Exception as exc:  # a bad message is reported, the receiver goes on
                log.exception("engine message failed")
                with self._lock:
                    self._error = f"engine message failed: {type(exc).__name__}: {exc}"
        self._after_receive()

    def _handle(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "tick":
            _, payload, stats = msg
            for sub_id, streams in payload.items():
                sub = self._subs.get(sub_id)
                if sub is None:
                    continue
                feed = sub[2]
                for stream, (data, gap, reset) in streams.items():
                    frame = _from_ipc(data) if data is not None else None
                    if reset:
                        feed.reset(stream, frame if frame is not None else pl.DataFrame())
                        frame = None
                    if gap:
                        feed.add_gap(stream, gap)
                    if frame is not None:
                        feed.push(stream, frame)
            with self._lock:
                self._stats = stats
        elif kind == "lookup":
            _, req_id, payload, error = msg
            with self._lock:
                waiting = self._lookups.get(req_id)
            if waiting is not None:
                done, box = waiting
                box[:] = [{s: _from_ipc(b) for s, b in payload.items()}, error]
                done.set()
        elif kind == "finished":
            with self._lock:
                self._stats = msg[1]
        elif kind == "fatal":
            with self._lock:
                self._error = msg[1]

    def _after_receive(self) -> None:
        proc = self._proc
        if proc is None or self._stopping:
            return
        proc.join(2.0)
        if proc.exitcode != 0:
            with self._lock:
                if not self._error:
                    self._error = f"engine process exited unexpectedly (exit code {proc.exitcode})"
