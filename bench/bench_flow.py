"""Full options pipeline throughput, and classifier recall/precision on the synthetic feed.

Part 1 (throughput): ``Engine.ingest`` on pre-generated batches of N option prints
(5 NBBO updates per print, 4 000 contracts, 100 000 prints per second of event time):
validation, NBBO join, trade side, signal filter, packets (+ baselines, kinds),
structures, classifiers and alerts.  Issue 4's figure: 10 M prints, target
>= 1 000 000 prints/s.  The bulk generator has no injected patterns; it is a load
test (prints land at random placements, so classifiers fire at realistic-ish rates).

Part 2 (quality): a seeded ``SyntheticMarket`` (default realistic profile, 30 minutes
of event time) through the engine; each injected pattern kind is matched against the
packets / structures / hits the engine produced (same contract(s), overlapping time)
and recall and precision are printed per packet kind, structure label and classifier.

    python bench/bench_flow.py [--prints 10000000] [--batch 100000] [--quality-minutes 30]
                               [--profile realistic] [--seed 7] [--skip-throughput]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polars as pl  # noqa: E402
import psutil  # noqa: E402
from _gen import option_batches  # noqa: E402

from islandflow_tui.config import Config  # noqa: E402
from islandflow_tui.engine import events as ev  # noqa: E402
from islandflow_tui.engine.core import Engine  # noqa: E402
from tests.test_flow_golden import run_market, score_all  # noqa: E402


def throughput(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    batches = option_batches(args.prints, args.quotes_per_print, args.batch, args.contracts)
    print(
        f"generated {args.prints:,} prints + {args.prints * args.quotes_per_print:,} quotes in "
        f"{len(batches)} batches ({time.perf_counter() - t0:.1f} s, not timed)"
    )
    engine = Engine(Config())
    counts = dict.fromkeys(ev.DERIVED_STREAMS, 0)
    gc.collect()
    rss0 = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    for b in batches:
        for stream, frame in engine.ingest(b).items():
            counts[stream] += frame.height
    for stream, frame in engine.flush().items():
        counts[stream] += frame.height
    dt = time.perf_counter() - t0
    n = counts[ev.OPTIONS_ENRICHED]
    print(f"full options pipeline: {n:,} prints in {dt:.2f} s")
    print(f"  prints/s : {n / dt:,.0f}   (target >= 1,000,000)")
    for stream in (ev.FLOW_PACKETS, ev.FLOW_STRUCTURES, ev.CLASSIFIER_HITS, ev.ALERTS):
        print(f"  {stream:<16} {counts[stream]:>12,}")
    print(f"  rejected : {engine.stats().rejected_total}")
    print(f"  rss delta: {(psutil.Process().memory_info().rss - rss0) / 2**20:,.0f} MiB")


def quality(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    run = run_market(args.profile, args.seed, minutes=args.quality_minutes)
    print(
        f"\nquality: profile={args.profile} seed={args.seed} {args.quality_minutes} min of event "
        f"time, {run.enriched:,} prints, {run.packets.height:,} packets, "
        f"{run.structures.height:,} structures, {run.hits.height:,} hits, "
        f"{run.alerts.height:,} alerts ({time.perf_counter() - t0:.1f} s)"
    )
    table = score_all(run)
    with pl.Config(tbl_rows=100, tbl_width_chars=140, fmt_str_lengths=60):
        print(table)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prints", type=int, default=10_000_000)
    ap.add_argument("--quotes-per-print", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100_000, help="prints per batch")
    ap.add_argument("--contracts", type=int, default=4000)
    ap.add_argument("--profile", default="realistic")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quality-minutes", type=float, default=30.0)
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args()
    if not args.skip_throughput:
        throughput(args)
    if not args.skip_quality:
        quality(args)


if __name__ == "__main__":
    main()
