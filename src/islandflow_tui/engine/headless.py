"""Run the engine with a feed and the session recorder, without any UI.

Why: DESIGN "the engine can run headless" (a server recording a market for TUIs
elsewhere), and a process that tests can SIGKILL at random moments to prove the
event log's loss bound.  It never imports Textual.

    python -m islandflow_tui.engine.headless --data-dir D --profile firehose --seconds 30
        [--seed S] [--no-pace] [--flush-ms MS] [--segment-mb MB] [--segment-age-s S]
        [--fsync] [--no-record] [--config PATH] [--progress FILE]

Runs for ``--seconds`` (0: until SIGTERM/SIGINT), then stops the feed, finalises
open windows, seals the session and prints a summary.  Standard output carries
one ``session <id> <path>`` line as soon as recording starts (scripts and the kill
test read it).

``--progress FILE`` appends one line per recorded frame::

    <t_before_ns> <t_after_ns> <stream> <rows handed> <rows written>

``t_before``/``t_after`` are wall-clock ns just before and after the frame was
handed to the recorder; the counts are the recorder's per-stream totals right
after (``written`` = flushed to the OS, so it survives a killed process).  The
lines go out with one unbuffered ``write`` each, so a SIGKILL leaves every line
that was complete.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import polars as pl

from islandflow_tui.config import ConfigError, load_config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.synthetic_feed import SyntheticFeed, use_synthetic_open_interest
from islandflow_tui.engine.log import SessionRecorder
from islandflow_tui.engine.session import attach_recording

log = logging.getLogger("islandflow.headless")

STATUS_EVERY_S = 5.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m islandflow_tui.engine.headless",
        description="Run the engine and record a session without a UI.",
    )
    p.add_argument("--config", metavar="PATH", help="TOML config file to load")
    p.add_argument("--data-dir", metavar="DIR", help="where sessions are stored")
    p.add_argument("--profile", choices=["realistic", "active", "firehose"])
    p.add_argument("--seed", type=int, metavar="N")
    p.add_argument("--start", metavar="TIME", help="synthetic event-time start ('now' or ISO)")
    p.add_argument(
        "--seconds", type=float, default=0.0, help="run this long (0: until SIGTERM/SIGINT)"
    )
    p.add_argument(
        "--no-pace",
        action="store_const",
        const=False,
        dest="pace",
        help="generate the market as fast as possible",
    )
    p.add_argument("--flush-ms", type=int, metavar="MS", help="log.flush_interval_ms")
    p.add_argument("--segment-mb", type=float, metavar="MB", help="log.segment_max_mb")
    p.add_argument("--segment-age-s", type=float, metavar="S", help="log.segment_max_age_s")
    p.add_argument(
        "--fsync",
        action="store_const",
        const=True,
        help="log.fsync = true: also fsync open segments every flush interval",
    )
    p.add_argument(
        "--no-record", action="store_const", const=False, dest="record", help="do not record"
    )
    p.add_argument("--progress", metavar="FILE", help="append per-frame recorder progress lines")
    p.add_argument("--quiet", action="store_true", help="no periodic status lines on stderr")
    return p


_FLAG_KEYS = {
    "data_dir": "paths.data_dir",
    "profile": "synthetic.profile",
    "seed": "synthetic.seed",
    "start": "synthetic.start",
    "pace": "synthetic.pace",
    "flush_ms": "log.flush_interval_ms",
    "segment_mb": "log.segment_max_mb",
    "segment_age_s": "log.segment_max_age_s",
    "fsync": "log.fsync",
    "record": "log.record",
}


class _Progress:
    """Per-frame progress lines around the recorder's ``write`` (see module doc)."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.recorder: SessionRecorder | None = None
        self._before: dict[str, int] = {}

    def before(self, stream: str, _frame: pl.DataFrame) -> None:
        self._before[stream] = time.time_ns()

    def after(self, stream: str, _frame: pl.DataFrame) -> None:
        rec = self.recorder
        if rec is None:
            return
        t1 = time.time_ns()
        handed = rec.rows_handed.get(stream, 0)
        written = rec.rows_written.get(stream, 0)
        line = f"{self._before.get(stream, t1)} {t1} {stream} {handed} {written}\n"
        os.write(self._fd, line.encode())

    def close(self) -> None:
        os.close(self._fd)


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {
        key: getattr(args, dest)
        for dest, key in _FLAG_KEYS.items()
        if getattr(args, dest, None) is not None
    }
    try:
        cfg = load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"islandflow headless: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )

    feed = SyntheticFeed(cfg.synthetic)
    use_synthetic_open_interest(cfg, feed.market)
    engine = Engine(cfg, feed)
    progress: _Progress | None = None
    recorder: SessionRecorder | None = None
    if cfg.log.record:
        if args.progress:
            # lossless callbacks run in subscription order: before -> recorder -> after
            progress = _Progress(args.progress)
            engine.subscribe_lossless(ev.ALL_STREAMS, progress.before)
        recorder, notes = attach_recording(engine, cfg)
        for note in notes:
            print(note, flush=True)
        if recorder is not None and not recorder.error:
            print(f"session {recorder.session_id} {recorder.path}", flush=True)
            if progress is not None:
                progress.recorder = recorder
                engine.subscribe_lossless(ev.ALL_STREAMS, progress.after)
        elif recorder is not None:
            print(f"recording off: {recorder.error}", file=sys.stderr, flush=True)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    started = time.monotonic()
    deadline = started + args.seconds if args.seconds > 0 else float("inf")
    engine.start()
    next_status = started + STATUS_EVERY_S
    while not stop.is_set():
        now = time.monotonic()
        if now >= deadline or not engine.running:
            break
        stop.wait(min(deadline, next_status) - now)
        if not args.quiet and time.monotonic() >= next_status:
            next_status += STATUS_EVERY_S
            st = engine.stats()
            rate = sum(st.rates.values())
            log.info("%s  %.0f events/s  %s", st.feed, rate, st.recording or "not recording")
    engine.stop(timeout=60.0)  # the engine thread finalises windows and seals the session
    if recorder is not None:
        recorder.close()  # waits until sealed if the engine thread is still closing it
    if progress is not None:
        progress.close()

    st = engine.stats()
    elapsed = time.monotonic() - started
    total = sum(st.totals.values())
    print(f"ran {elapsed:.1f} s: {total:,} events, {st.rejected_total:,} rejected", flush=True)
    if recorder is not None:
        rows = sum(recorder.rows_sealed.values())
        state = recorder.error or recorder.status
        print(
            f"recorded {rows:,} events in {recorder.bytes_on_disk / 1e6:.1f} MB: {state}",
            flush=True,
        )
    if st.error:
        print(st.error, file=sys.stderr)
        return 1
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
