"""Full options pipeline throughput, and classifier recall/precision on the synthetic feed.

Part 1 (throughput): ``Engine.ingest`` on pre-generated batches (not timed) of N
option prints: validation, NBBO join, trade side, signal filter, packets (+ spot,
baselines, kinds), structures, classifiers and alerts.  Issue 4's figure: 10 M prints,
target >= 1 000 000 prints/s.  Two sources (``--source``):

* ``market`` (default): the synthetic market's firehose profile (~60 000 option
  prints/s with ~2 NBBO updates each, equities too, injected patterns), one batch per
  ``--tick-ms`` (1 s) of event time;
* ``gen``: bench/_gen.py's bulk generator (the join bench's: 5 NBBO updates per print,
  4 000 contracts, 100 000 prints/s, 100 000-print batches).  Its sizes (1-2 000 lots
  at $1-11) make nearly every packet a block or spike, so classifiers and alerts run
  at an unrealistically high rate: a worst case for the Python parts.

``--sweep-ms 100,250,1000,4000`` runs the same market prints (generated in 100 ms
ticks, merged into batches of each size; the output does not depend on batching)
once per batch size in a fresh engine and fits CPU time = F x batches + c x prints:
F is the per-batch fixed cost, c the cost per print, 1 / c the ceiling that no
batching can pass.

``--lanes`` runs the flow stages (packets; structures, classifiers, alerts) on two
threads of their own behind the caller's joins, as a seek's long fast-forward does
(compute/lanes.py):
the derived events are the same, the batches overlap.

``--options-only`` leaves the equity prints out of the batches: the issue's figure
names the options stages only, and the whole engine also runs the equities chain
(joins, dark inference, levels, candles) on the firehose's equity prints.  The
equity quotes stay (packets take the underlying's spot from them).

Part 2 (quality): a seeded ``SyntheticMarket`` (default realistic profile, 30 minutes
of event time) through the engine; each injected pattern kind is matched against the
packets / structures / hits the engine produced (same contract(s), overlapping time)
and recall and precision are printed per packet kind, structure label and classifier.

    python bench/bench_flow.py [--prints 10000000] [--source market|gen] [--tick-ms 1000]
                               [--batch 100000] [--quality-minutes 30]
                               [--quality-profile realistic] [--seed 7]
                               [--skip-throughput] [--skip-quality] [--save-frames DIR]
                               [--light] [--sweep-ms 100,250,1000,4000] [--lanes]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polars as pl
import psutil
from _gen import option_batches

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.synthetic import SyntheticMarket, start_ns_from_config
from tests.test_flow_golden import START, run_market, score_all


def market_batches(n_prints: int, tick_ms: int, seed: int) -> list[ev.FeedBatch]:
    market = SyntheticMarket("firehose", seed, start_ns_from_config(START, 0), tick_ms)
    out, n = [], 0
    while n < n_prints:
        b = market.next_batch()
        out.append(b)
        n += b.frames[ev.OPTIONS_PRINTS].height
    return out


def _merge(group: list[ev.FeedBatch]) -> ev.FeedBatch:
    streams = dict.fromkeys(s for b in group for s in b.frames)
    frames = {s: pl.concat([b.frames[s] for b in group if s in b.frames]) for s in streams}
    return ev.FeedBatch(frames, group[-1].watermark)


def sweep(args: argparse.Namespace) -> None:
    """Per-batch fixed cost and per-print cost, from the same prints at several batch sizes."""
    sizes = sorted(int(x) for x in args.sweep_ms.split(","))
    base = 100
    if any(ms % base for ms in sizes):
        raise SystemExit(f"--sweep-ms: sizes must be multiples of {base} ms")
    ticks = market_batches(args.prints, base, args.seed)
    if args.options_only:
        for b in ticks:
            b.frames.pop(ev.EQUITIES_PRINTS, None)
    print(f"sweep: {sum(b.frames[ev.OPTIONS_PRINTS].height for b in ticks):,} option prints")
    print(f"  {'batch':>7} {'batches':>8} {'prints/batch':>13} {'prints/s':>10} {'cpu s':>7}")
    fits: list[tuple[int, int, float]] = []
    for ms in sizes:
        k = ms // base
        batches = [_merge(ticks[i : i + k]) for i in range(0, len(ticks), k)]
        engine = Engine(Config())
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        n = 0
        if args.lanes:
            engine.start_lanes()
        for b in batches:
            n += engine.ingest(b).get(ev.OPTIONS_ENRICHED, pl.DataFrame()).height
        engine.stop_lanes()
        n += engine.flush().get(ev.OPTIONS_ENRICHED, pl.DataFrame()).height
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        fits.append((len(batches), n, cpu))
        per_batch = n / len(batches)
        print(f"  {ms:>5}ms {len(batches):>8,} {per_batch:>13,.0f} {n / dt:>10,.0f} {cpu:>7.2f}")
    # least squares of cpu = F * batches + c * prints over the runs
    sbb = sum(b * b for b, _, _ in fits)
    sbn = sum(b * n for b, n, _ in fits)
    snn = sum(n * n for _, n, _ in fits)
    sbc = sum(b * c for b, _, c in fits)
    snc = sum(n * c for _, n, c in fits)
    det = sbb * snn - sbn * sbn
    if len(fits) >= 2 and det:
        fixed = (sbc * snn - snc * sbn) / det
        per = (snc * sbb - sbc * sbn) / det
        print(
            f"  fit: {fixed * 1000:.1f} ms CPU per batch + {per * 1e6:.3f} us CPU per print "
            f"(ceiling {1 / per:,.0f} prints per CPU-second)"
        )


def throughput(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    if args.source == "gen":
        batches = option_batches(args.prints, args.quotes_per_print, args.batch, args.contracts)
    else:
        batches = market_batches(args.prints, args.tick_ms, args.seed)
    if args.options_only:
        for b in batches:
            b.frames.pop(ev.EQUITIES_PRINTS, None)
    rows = {s: sum(b.frames[s].height for b in batches if s in b.frames) for s in ev.RAW_STREAMS}
    print(
        f"source={args.source}: {rows[ev.OPTIONS_PRINTS]:,} option prints, "
        f"{rows[ev.OPTIONS_NBBO]:,} NBBO, {rows[ev.EQUITIES_PRINTS] + rows[ev.EQUITIES_QUOTES]:,} "
        f"equity events in {len(batches)} batches ({time.perf_counter() - t0:.1f} s, not timed)"
    )
    engine = Engine(Config())
    counts = dict.fromkeys(ev.DERIVED_STREAMS, 0)
    gc.collect()
    rss0 = psutil.Process().memory_info().rss
    c0 = time.process_time()
    t0 = time.perf_counter()
    if args.lanes:
        engine.start_lanes()
    for b in batches:
        for stream, frame in engine.ingest(b).items():
            counts[stream] += frame.height
    for stream, frame in engine.stop_lanes().items():
        counts[stream] += frame.height
    for stream, frame in engine.flush().items():
        counts[stream] += frame.height
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    n = counts[ev.OPTIONS_ENRICHED]
    mode = "flow lanes on (compute/lanes.py)" if args.lanes else "serial"
    print(f"full options pipeline, {mode}: {n:,} prints in {dt:.2f} s")
    print(f"  prints/s : {n / dt:,.0f}   (target >= 1,000,000)")
    # CPU time of this process (all its threads): less sensitive than wall time to
    # other users of a shared machine; on an idle 2-core machine wall time is lower
    print(f"  cpu      : {cpu:.2f} s, {n / cpu:,.0f} prints per CPU-second")
    for stream in (ev.FLOW_PACKETS, ev.FLOW_STRUCTURES, ev.CLASSIFIER_HITS, ev.ALERTS):
        print(f"  {stream:<16} {counts[stream]:>12,}")
    print(f"  rejected : {engine.stats().rejected_total}")
    print(f"  rss delta: {(psutil.Process().memory_info().rss - rss0) / 2**20:,.0f} MiB")


def quality(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    run = run_market(
        args.quality_profile, args.seed, minutes=args.quality_minutes, light=args.light
    )
    print(
        f"\nquality: profile={args.quality_profile} seed={args.seed} "
        f"{args.quality_minutes} min of event time, {run.enriched:,} prints, "
        f"{run.packets.height:,} packets, "
        f"{run.structures.height:,} structures, {run.hits.height:,} hits, "
        f"{run.alerts.height:,} alerts ({time.perf_counter() - t0:.1f} s)"
    )
    table = score_all(run)
    with pl.Config(tbl_rows=100, tbl_width_chars=140, fmt_str_lengths=60):
        print(table)
    if args.save_frames:
        # for offline study of a rule (e.g. re-scoring repeats on the same packets)
        out = Path(args.save_frames)
        out.mkdir(parents=True, exist_ok=True)
        run.patterns.write_parquet(out / "patterns.parquet")
        run.packets.drop("trace", "evidence").write_parquet(out / "packets.parquet")
        run.structures.write_parquet(out / "structures.parquet")
        run.hits.drop("trace").write_parquet(out / "hits.parquet")
        print(f"frames saved to {out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prints", type=int, default=10_000_000)
    ap.add_argument("--source", choices=("market", "gen"), default="market")
    ap.add_argument("--tick-ms", type=int, default=1000, help="market source: event time per batch")
    ap.add_argument("--quotes-per-print", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100_000, help="gen source: prints per batch")
    ap.add_argument("--contracts", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quality-minutes", type=float, default=30.0)
    ap.add_argument("--quality-profile", default="realistic")
    ap.add_argument(
        "--lanes",
        action="store_true",
        help="run the flow stages on their own threads, as a seek's long fast-forward "
        "does (Engine.start_lanes); the output is the same",
    )
    ap.add_argument(
        "--options-only",
        action="store_true",
        help="throughput: leave the equity prints out (their quotes still feed spot), so "
        "the equities chain (joins, dark, levels, candles) has nothing to do",
    )
    ap.add_argument(
        "--sweep-ms",
        default="",
        help="throughput at these batch sizes (ms of event time, multiples of 100) on the "
        "same prints, and the fitted per-batch and per-print CPU cost",
    )
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--save-frames", default="", help="quality: write the frames to this dir")
    ap.add_argument(
        "--light", action="store_true", help="quality: keep only the scored streams (long runs)"
    )
    args = ap.parse_args()
    if args.sweep_ms:
        sweep(args)
    elif not args.skip_throughput:
        throughput(args)
    if not args.skip_quality:
        quality(args)


if __name__ == "__main__":
    main()
