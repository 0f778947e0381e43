"""Join + placement + signal throughput through the real engine path.

Measures ``Engine.ingest`` (validation, OSI parsing, sequencing, NBBO join,
placement, signal filter) on pre-generated batches: N option prints with Q NBBO
updates per print.  Issue 2's figure: 10 M prints, 5 quotes each, target
>= 1 000 000 prints/s.

    python bench/bench_join.py [--prints 10000000] [--quotes-per-print 5] [--batch 100000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from _gen import option_batches

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.evidence import evidence_list
from islandflow_tui.engine.compute.signal import signal_columns
from islandflow_tui.engine.core import Engine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prints", type=int, default=10_000_000)
    ap.add_argument("--quotes-per-print", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100_000, help="prints per batch")
    ap.add_argument("--contracts", type=int, default=4000)
    args = ap.parse_args()

    t0 = time.perf_counter()
    batches = option_batches(args.prints, args.quotes_per_print, args.batch, args.contracts)
    print(
        f"generated {args.prints:,} prints + {args.prints * args.quotes_per_print:,} quotes "
        f"in {len(batches)} batches ({time.perf_counter() - t0:.1f} s, not timed)"
    )
    engine = Engine(Config())
    # Issue 2's figure is the join stage alone: validation, OSI parsing, sequencing,
    # NBBO join, placement, signal verdicts and evidence.  The flow analytics after
    # it (issue 4) are measured by bench_flow.py.
    compute = engine.compute

    def join_stage(raw: dict, watermark: int) -> dict:
        joined = compute.nbbo.process(
            raw.get(ev.OPTIONS_PRINTS), raw.get(ev.OPTIONS_NBBO), watermark
        )
        if joined is None:
            return {}
        df = signal_columns(joined.rename({"id": "print_id"}), engine.cfg.signal)
        df = df.with_columns(evidence_list(df, "print_id", "nbbo_id"))
        return {ev.OPTIONS_ENRICHED: df}

    compute.process = join_stage  # type: ignore[method-assign]
    compute.flush = lambda: join_stage({}, 2**62)  # type: ignore[method-assign]
    enriched = 0
    engine.subscribe_lossless([ev.OPTIONS_ENRICHED], lambda _s, df: None)
    gc.collect()
    rss0 = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    for b in batches:
        out = engine.ingest(b)
        if ev.OPTIONS_ENRICHED in out:
            enriched += out[ev.OPTIONS_ENRICHED].height
    enriched += engine.flush().get(ev.OPTIONS_ENRICHED, ev.empty_frame(ev.OPTIONS_ENRICHED)).height
    dt = time.perf_counter() - t0
    stats = engine.stats()
    events = args.prints * (1 + args.quotes_per_print)
    print(f"enriched {enriched:,} prints in {dt:.2f} s")
    print(f"  prints/s : {enriched / dt:,.0f}   (target >= 1,000,000)")
    print(f"  events/s : {events / dt:,.0f}   (prints + quotes)")
    print(f"  rejected : {stats.rejected_total}")
    print(f"  rss delta: {(psutil.Process().memory_info().rss - rss0) / 2**20:,.0f} MiB")


if __name__ == "__main__":
    main()
