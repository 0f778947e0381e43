"""The flow stages on two threads of their own, in batch order, for bulk runs.

Why: a bulk run (a replay's long fast-forward to a seek target, the throughput
benchmark) is bound by one core, and the machine usually has another.  The flow
stages after the enriched prints depend on earlier batches only through their own
operators' state, so they can trail the caller by a batch or two::

    caller:        join, side, enriched, equities  (batch k+2)
    flow-packets:  spot, packets, baselines, kinds (batch k+1)
    flow-rules:    structures, classifiers, alerts (batch k)

polars and numpy drop the GIL while they work, so the three overlap (measured in
bench/bench_flow.py ``--lanes`` and bench/bench_replay.py ``--long-seek``).  Not used
by imports: their session recorder's writer already keeps the other core busy, and
the lanes measured ~5 % slower there (bench/bench_import.py).

Determinism: every operator still sees every batch, in order, on one thread; each
derived stream's seq counter is advanced by one stage only; the repeat evidence a
batch's classifiers quote is that batch's own (``Packets.repeat_evidence``, handed
along with its packets on both paths).  So each stream's rows are the serial path's
rows, in the same order (tests/test_lanes.py); only the call that hands them back
differs, which is why the live path stays serial: frames handed back a batch later
would add a batch interval to the alert latency.

A stage that raises loses that batch's flow frames (as the serial path loses the
batch) and its exception is kept for :meth:`FlowLanes.take_errors`; the engine counts
it like any failed batch.  Later batches go on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from islandflow_tui.engine.compute.pipeline import Compute

log = logging.getLogger("islandflow.engine.lanes")

#: batches a lane may hold before the one feeding it waits (bounds memory)
DEPTH = 2


def joined_frames(parts: list[dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    """Per stream, the frames of ``parts`` concatenated in order."""
    by_stream: dict[str, list[pl.DataFrame]] = {}
    for part in parts:
        for stream, frame in part.items():
            by_stream.setdefault(stream, []).append(frame)
    return {s: f[0] if len(f) == 1 else pl.concat(f) for s, f in by_stream.items()}


class FlowLanes:
    """Two worker threads running :meth:`Compute.packet_stage` and
    :meth:`Compute.rule_stage` on the batches given to :meth:`submit`."""

    def __init__(self, compute: Compute) -> None:
        self._compute = compute
        self._to_packets: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=DEPTH)
        self._to_rules: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=DEPTH)
        self._lock = threading.Lock()
        self._done: list[dict[str, pl.DataFrame]] = []
        self._errors: list[Exception] = []
        self._threads = [
            threading.Thread(target=self._packets_lane, name="flow-packets", daemon=True),
            threading.Thread(target=self._rules_lane, name="flow-rules", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- caller side ----------------------------------------------------------------
    def submit(
        self,
        enriched: pl.DataFrame | None,
        flow_wm: int,
        eq_quotes: pl.DataFrame | None,
        eq_prints: pl.DataFrame | None,
    ) -> None:
        """One batch's input to the flow stages (waits while the lanes are full)."""
        self._to_packets.put(("batch", (enriched, flow_wm, eq_quotes, eq_prints)))

    def call(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the packets lane between the batches before and after
        (a change to the packets operator's inputs, e.g. open interest)."""
        self._to_packets.put(("call", (fn, args)))

    def wait(self) -> None:
        """Until every batch submitted so far has left both lanes."""
        self._to_packets.join()
        self._to_rules.join()

    def collect(self, wait: bool = False) -> dict[str, pl.DataFrame]:
        """The flow frames finished since the last call, each stream in order."""
        if wait:
            self.wait()
        with self._lock:
            done, self._done = self._done, []
        return joined_frames(done)

    def take_errors(self) -> list[Exception]:
        with self._lock:
            errors, self._errors = self._errors, []
        return errors

    def close(self) -> dict[str, pl.DataFrame]:
        """Finish the backlog, stop both threads; the frames not yet collected."""
        self._to_packets.put(("stop", None))
        for t in self._threads:
            t.join()
        return self.collect()

    # -- the lanes --------------------------------------------------------------------
    def _fail(self, exc: Exception) -> None:
        log.error("flow lane failed a batch: %s: %s", type(exc).__name__, exc, exc_info=exc)
        with self._lock:
            self._errors.append(exc)

    def _serve(
        self,
        inbox: queue.Queue[tuple[str, Any]],
        work: Callable[[Any], None],
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        """A lane's loop: each batch through ``work``, each call run, until stop; a
        batch that raises is logged and kept for :meth:`take_errors`."""
        while True:
            kind, item = inbox.get()
            try:
                if kind == "stop":
                    if on_stop is not None:
                        on_stop()
                    return
                if kind == "call":
                    fn, args = item
                    fn(*args)
                else:
                    work(item)
            except Exception as exc:  # counted by the engine; later batches go on
                self._fail(exc)
            finally:
                inbox.task_done()

    def _packets_lane(self) -> None:
        def work(item: tuple[Any, ...]) -> None:
            packets, out, evidence = self._compute.packet_stage(*item)
            self._to_rules.put(("batch", (packets, out, evidence, item[1])))

        self._serve(self._to_packets, work, lambda: self._to_rules.put(("stop", None)))

    def _rules_lane(self) -> None:
        def work(item: tuple[Any, ...]) -> None:
            packets, out, evidence, flow_wm = item
            out = {**out, **self._compute.rule_stage(packets, evidence, flow_wm)}
            with self._lock:
                self._done.append(out)

        self._serve(self._to_rules, work)
