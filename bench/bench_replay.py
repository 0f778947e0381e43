"""Replay figures on a recorded firehose session.

    python bench/bench_replay.py [--seconds 60] [--seeks 40] [--breakdown] [--seeks-only]
    python bench/bench_replay.py --session PATH [--seeks 40] [--breakdown] [--long-seek 50]
    python bench/bench_replay.py --seconds 3600 --record-only --max-disk-gb 0   # one hour

1. records SECONDS of the firehose synthetic market live (raw + derived streams +
   checkpoints every 10 s or 500 000 raw events), unpaced, into a temporary data
   dir, and prints the checkpoints' count and bytes;
2. replay read throughput of the log reader alone (``ReplaySource.window`` over the
   whole session in 1 s windows) in raw events/s;
3. replay through the full compute pipeline (what ``islandflow verify`` does);
4. seek latency to random points (restore the nearest checkpoint, fast-forward,
   rebuild the display streams): p50 / p99 / max of wall time and of process CPU
   time (the machine is shared: CPU time moves less with other people's load);
   ``--breakdown`` prints each seek's split (load / restore / fast-forward /
   display rebuild, ``ReplayFeed.last_seek``).  ``--seeks-only`` skips 2 and 3;
   ``--session`` seeks in an existing session without recording.  ``--long-seek S``
   first seeks S seconds in with no checkpoint to restore, with the flow lanes and
   without (a fast-forward from the start).

A seek costs one checkpoint load plus at most one checkpoint interval of
fast-forward (``replay.checkpoint_interval_s`` of event time or
``replay.checkpoint_max_events`` raw events, whichever is less), so its latency does
not depend on the session's length; the length only changes how many checkpoints
and segments exist (looked up by binary search over their known ts ranges).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.feeds import build_adapter
from islandflow_tui.engine.log import SessionReader
from islandflow_tui.engine.replay import (
    MAX_CHUNK_NS,
    ReplayFeed,
    ReplaySource,
    list_checkpoints,
    load_checkpoint,
)
from islandflow_tui.engine.session import attach_recording, finish_recording
from islandflow_tui.engine.verify import replay_derived


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--seeks", type=int, default=40)
    ap.add_argument("--profile", default="firehose")
    ap.add_argument(
        "--session", help="seek in this recorded session instead of recording one (skips 1-3)"
    )
    ap.add_argument("--breakdown", action="store_true", help="print each seek's cost split")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random seek targets")
    ap.add_argument(
        "--seeks-only", action="store_true", help="record, then only seek (skips 2 and 3)"
    )
    ap.add_argument("--max-events", type=int, help="replay.checkpoint_max_events while recording")
    ap.add_argument(
        "--max-disk-gb",
        type=float,
        help="log.max_disk_gb while recording (0: no checkpoint budget at all)",
    )
    ap.add_argument(
        "--long-seek",
        type=float,
        default=0.0,
        help="also seek this many seconds into the session with no checkpoint to restore "
        "(a fast-forward from the start), with the flow lanes and without, twice each",
    )
    ap.add_argument(
        "--record-only",
        action="store_true",
        help="record, print the session's path and stop (seek later with --session)",
    )
    args = ap.parse_args()
    if args.session:
        path = Path(args.session)
        seeks(path, path.parent.parent, args)
        return
    tmp = Path(tempfile.mkdtemp(prefix="islandflow-bench-"))
    cfg = Config()
    cfg.paths.data_dir = str(tmp)
    cfg.synthetic.profile = args.profile
    cfg.synthetic.start = "2025-11-25T14:30:00Z"
    cfg.synthetic.pace = False
    cfg.synthetic.backfill_s = 0.0
    cfg.feed.engine = "thread"
    if args.max_events is not None:
        cfg.replay.checkpoint_max_events = args.max_events
    if args.max_disk_gb is not None:
        cfg.log.max_disk_gb = args.max_disk_gb
    engine = Engine(cfg, build_adapter(cfg))
    # the engine thread's share of checkpointing: state() (the write is on its own
    # thread)
    taken: list[float] = []
    state = engine.checkpoint

    def timed_checkpoint() -> dict[str, pl.DataFrame]:
        t = time.perf_counter()
        out = state()
        taken.append(time.perf_counter() - t)
        return out

    engine.checkpoint = timed_checkpoint  # type: ignore[method-assign]
    rec, _ = attach_recording(engine, cfg)
    assert rec is not None and rec.path is not None
    market = engine.adapter.market  # type: ignore[union-attr]
    t0 = time.perf_counter()
    for i in range(args.seconds * 10):
        engine.ingest(market.next_batch())
        if i and i % 600 == 0:  # progress on long recordings: every minute of event time
            print(
                f"  {i // 10:5d} s of event time recorded in {time.perf_counter() - t0:6.0f} s",
                file=sys.stderr,
                flush=True,
            )
    finish_recording(engine, rec)
    rec_s = time.perf_counter() - t0
    totals = engine.stats().totals
    raw = sum(totals[s] for s in ev.RAW_STREAMS)
    print(
        f"recorded {args.seconds}s of {args.profile}: {totals[ev.OPTIONS_PRINTS]:,} option prints, "
        f"{raw:,} raw events, {sum(totals.values()) - raw:,} derived, in {rec_s:.1f}s "
        f"({totals[ev.OPTIONS_PRINTS] / rec_s:,.0f} option prints/s live pipeline + recording)"
    )
    path = rec.path
    cps = list_checkpoints(path)
    cp_dir = path / "checkpoints"
    cp_size = sum(f.stat().st_size for f in cp_dir.rglob("*") if f.is_file()) if cps else 0
    print(
        f"checkpoints written while recording: {len(cps)}, {cp_size / 2**20:,.0f} MiB in all "
        f"({cp_size / 2**20 / max(len(cps), 1):.1f} MiB each, "
        f"{cp_size / 2**30 / args.seconds * 3600:.1f} GiB per hour of this market); "
        f"engine thread in state(): {sum(taken):.1f} s in all, "
        f"{1000 * statistics.median(taken) if taken else 0:.0f} ms median, "
        f"{1000 * max(taken, default=0):.0f} ms max, over {len(taken)} "
        f"(max_events {cfg.replay.checkpoint_max_events:,})"
    )
    if args.record_only or args.seeks_only:
        if args.seeks_only:
            seeks(path, tmp, args)
        print(f"session left at {path}", file=sys.stderr)
        return

    reader = SessionReader(path)
    source = ReplaySource(reader)
    t0 = time.perf_counter()
    n = 0
    pos = source.first_ts
    while pos <= source.last_ts:
        for frame in source.window(pos, pos + MAX_CHUNK_NS).values():
            n += frame.height
        pos += MAX_CHUNK_NS
    dt = time.perf_counter() - t0
    print(
        f"log reader alone: {n:,} raw events in {dt:.2f}s = {n / dt:,.0f} events/s "
        "(target >= 2,000,000)"
    )

    t0 = time.perf_counter()
    _derived, _ = replay_derived(cfg, path)
    dt = time.perf_counter() - t0
    print(
        f"full compute pipeline: {n:,} raw events in {dt:.2f}s = {n / dt:,.0f} events/s "
        f"({totals[ev.OPTIONS_PRINTS] / dt:,.0f} option prints/s)"
    )

    seeks(path, tmp, args)
    size = sum(p.stat().st_size for p in (path / ev.OPTIONS_PRINTS).glob("*.parquet"))
    print(
        "bytes on disk per option print (sealed Parquet, zstd): "
        f"{size / totals[ev.OPTIONS_PRINTS]:.1f}"
    )
    print(f"session left at {path}", file=sys.stderr)


def _replay_engine(path: Path, tmp: Path) -> tuple[Engine, ReplayFeed]:
    """A paused replay of ``path`` with the tape's and the equities' display feeds (a
    seek rebuilds them)."""
    rcfg = Config()
    rcfg.paths.data_dir = str(tmp)
    rcfg.feed.adapter = "replay"
    feed = ReplayFeed(path, paused=True)
    engine = Engine(rcfg, feed)
    engine.subscribe(
        [ev.OPTIONS_ENRICHED, ev.EQUITIES_PRINTS],
        {ev.OPTIONS_ENRICHED: 25_000, ev.EQUITIES_PRINTS: 2_000},
    )
    return engine, feed


def long_seek(path: Path, tmp: Path, seconds: float) -> None:
    """A seek with no checkpoint to restore: the fast-forward from the session's start
    runs in 15 s chunks, with the flow stages on their own threads (compute/lanes.py)
    or, for comparison, in line."""
    source = ReplaySource(SessionReader(path))
    target = source.first_ts + int(seconds * ev.NS_PER_S)
    for lanes in (False, True, False, True):
        engine, feed = _replay_engine(path, tmp)
        feed._checkpoints = []  # nothing to restore: fast-forward from the start
        if not lanes:
            engine.start_lanes = lambda: None  # type: ignore[method-assign]
        t0, c0 = time.perf_counter(), time.process_time()
        feed.control("seek", target)
        feed._apply_commands()
        cost = feed.last_seek
        print(
            f"seek {seconds:.0f} s in, no checkpoint, flow lanes {'on ' if lanes else 'off'}: "
            f"{(time.perf_counter() - t0) * 1000:6.0f} ms (fast-forward {cost.fast_forward:.0f} "
            f"ms over {cost.events:,} raw events; CPU {(time.process_time() - c0) * 1000:.0f} ms)"
        )


def seeks(path: Path, tmp: Path, args: argparse.Namespace) -> None:
    """4. seek latency, the → key, checkpoint size / load / restore."""
    if args.long_seek:
        long_seek(path, tmp, args.long_seek)
    source = ReplaySource(SessionReader(path))
    replay, feed = _replay_engine(path, tmp)
    rng = random.Random(args.seed)
    lat: list[float] = []
    targets: list[int] = []
    cpu: list[float] = []  # process CPU time: less sensitive to other loads on the machine
    for _ in range(args.seeks):
        target = rng.randrange(source.first_ts, source.last_ts)
        targets.append(target)
        t0, c0 = time.perf_counter(), time.process_time()
        feed.control("seek", target)
        feed._apply_commands()
        lat.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        cost = getattr(feed, "last_seek", None)  # absent before this figure existed
        if args.breakdown and cost is not None:
            print(
                f"  seek +{(target - source.first_ts) / 1e9:6.2f}s from "
                f"+{(cost.start - source.first_ts) / 1e9:6.2f}s: {lat[-1]:5.0f} ms = load "
                f"{cost.load:4.0f} + restore {cost.restore:4.0f} + fast-forward "
                f"{cost.fast_forward:4.0f} ({cost.events:,} raw events) + display "
                f"{cost.display:4.0f}  (cpu {cpu[-1]:5.0f} ms)"
            )
    # by where in the session the target lies: a seek's cost should not grow with it
    length = source.last_ts - source.first_ts
    quarters: dict[int, list[float]] = {}
    for target, ms in zip(targets, lat, strict=True):
        quarters.setdefault(min(3, 4 * (target - source.first_ts) // length), []).append(ms)
    for q, got in sorted(quarters.items()):
        got.sort()
        print(
            f"  targets in quarter {q + 1} of the session: {len(got)} seeks, "
            f"p50 {statistics.median(got):.0f} ms  max {got[-1]:.0f} ms"
        )
    lat.sort()
    cpu.sort()
    print(
        f"seek latency over {args.seeks} random targets (ms): p50 {statistics.median(lat):.0f}  "
        f"p99 {lat[int(0.99 * (len(lat) - 1))]:.0f}  max {lat[-1]:.0f}   (target p99 < 1000)"
    )
    print(
        f"seek CPU time (ms): p50 {statistics.median(cpu):.0f}  "
        f"p99 {cpu[int(0.99 * (len(cpu) - 1))]:.0f}  max {cpu[-1]:.0f}   "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    steps = []
    for _ in range(20):  # the → key: one second forward from where the replay is
        t0 = time.perf_counter()
        feed.control("step", ev.NS_PER_S)
        feed._apply_commands()
        steps.append((time.perf_counter() - t0) * 1000)
    steps.sort()
    print(
        f"step forward 1 s, 20 times (ms): p50 {statistics.median(steps):.0f}  max {steps[-1]:.0f}"
    )
    cps = list_checkpoints(path)
    if not cps:
        return
    gaps = [b - a for a, b in zip([source.first_ts, *cps], [*cps, source.last_ts], strict=True)]
    print(
        f"checkpoint spacing (event time): max {max(gaps) / 1e9:.2f}s, "
        f"median {statistics.median(gaps) / 1e9:.2f}s"
    )
    cp_bytes = [
        sum(f.stat().st_size for f in (path / "checkpoints" / f"{w:020d}").glob("*.arrow"))
        for w in cps
    ]
    load_ms, restore_ms = [], []
    for w in cps[:: max(1, len(cps) // 10)]:
        t0 = time.perf_counter()
        state = load_checkpoint(path, w)
        t1 = time.perf_counter()
        replay.restore(state)
        load_ms.append((t1 - t0) * 1000)
        restore_ms.append((time.perf_counter() - t1) * 1000)
    span = (source.last_ts - source.first_ts) / ev.NS_PER_S
    print(
        f"checkpoints: {len(cps)} ({len(cps) / span:.2f}/s of event time), "
        f"median {statistics.median(cp_bytes) / 2**20:.1f} MiB on disk; "
        f"load median {statistics.median(load_ms):.0f} ms, "
        f"restore median {statistics.median(restore_ms):.0f} ms"
    )


if __name__ == "__main__":
    main()
