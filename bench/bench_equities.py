"""Equities pipeline throughput through the real engine path (issue 5's figure).

Measures ``Engine.ingest`` on equity batches: validation, sequencing, the print/quote
join (placement, price improvement, retail flag), dark inference (block,
accumulation, levels) and candles (60 s and 300 s, in-progress and final rows),
with every derived stream built exactly as live.  Batches are generated one at a
time outside the timed region (vectorised numpy): N prints over S symbols with Q
quotes per print, 42 % off-exchange (venue D), sub-penny retail prices, odd lots,
ISO / late / out-of-sequence / average-price / derivatively-priced conditions and
occasional blocks.  Target: >= 1 000 000 prints/s on 10 M prints.

    python bench/bench_equities.py [--prints 10000000] [--quotes-per-print 2] [--batch 100000]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

import numpy as np
import polars as pl
import psutil

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.venues import VENUES, flags_of

T0 = 1_764_081_000_000_000_000
CODES = ["@", "@ I", "@ F", "@ 4", "W", "Z", "L"]
CODE_P = np.array([0.62, 0.30, 0.04, 0.01, 0.01, 0.01, 0.01])
LIT = sorted(c for c, v in VENUES.items() if not v.off_exchange)


class EquityGen:
    """A stream of equity batches: ``batch_prints`` prints spanning 1 s each."""

    def __init__(self, symbols: int, quotes_per_print: int, batch_prints: int, seed: int = 1):
        self.rng = np.random.default_rng(seed)
        self.syms = pl.Series("symbol", [f"S{i:04d}" for i in range(symbols)], dtype=pl.String)
        self.mid_c = 2000 + (np.arange(symbols) * 37) % 50_000  # cents: $20 .. $520
        self.n_s = symbols
        self.q = quotes_per_print
        self.n = batch_prints
        self.t = T0
        self.codes = pl.Series("conditions", CODES, dtype=pl.String)
        self.flags = np.array([flags_of(c) for c in CODES], dtype=np.int32)
        self.venues = pl.Series("venue", [*LIT, "D"], dtype=pl.String)

    def next(self) -> ev.FeedBatch:
        g, n = self.rng, self.n
        span = ev.NS_PER_S
        # the price walk: a few cents per second per symbol
        self.mid_c = np.maximum(self.mid_c + g.integers(-3, 4, self.n_s), 100)
        n_q = n * self.q
        q_ts = np.sort(g.integers(self.t, self.t + span, n_q))
        q_s = g.integers(0, self.n_s, n_q)
        spread = 1 + (g.random(n_q) < 0.3)
        bid_c = self.mid_c[q_s] - spread // 2
        ask_c = bid_c + spread
        p_ts = np.sort(g.integers(self.t, self.t + span, n))
        p_s = g.integers(0, self.n_s, n)
        off = g.random(n) < 0.42
        venue = np.where(off, len(LIT), g.integers(0, len(LIT), n))
        b, a = self.mid_c[p_s] - 1, self.mid_c[p_s]
        mode = g.random(n)
        imp = g.integers(1, 50, n)  # 1e-4 $ improvement
        price_u = np.select(
            [mode < 0.35, mode < 0.7, off & (mode < 0.8), off & (mode < 0.9)],
            [b * 100, a * 100, a * 100 - imp, b * 100 + imp],
            (b * 100 + a * 100) // 2,
        )
        cond = np.searchsorted(np.cumsum(CODE_P), g.random(n) * 0.9999)
        odd = cond == 1
        size = np.where(odd, g.integers(1, 100, n), 100 * g.geometric(0.45, n))
        size = np.where(g.random(n) < 0.0005, 100 * g.integers(20, 500, n), size)
        prints = pl.DataFrame(
            {
                "ts": p_ts,
                "symbol": self.syms.gather(p_s.astype(np.uint32)),
                "price": price_u / 10_000.0,
                "size": size.astype(np.int64),
                "venue": self.venues.gather(venue.astype(np.uint32)),
                "off_exchange": off,
                "conditions": self.codes.gather(cond.astype(np.uint32)),
                "flags": self.flags[cond],
            }
        )
        quotes = pl.DataFrame(
            {
                "ts": q_ts,
                "symbol": self.syms.gather(q_s.astype(np.uint32)),
                "bid": bid_c / 100.0,
                "ask": ask_c / 100.0,
                "bid_size": 100 * g.integers(1, 20, n_q),
                "ask_size": 100 * g.integers(1, 20, n_q),
            }
        )
        self.t += span
        return ev.FeedBatch({ev.EQUITIES_PRINTS: prints, ev.EQUITIES_QUOTES: quotes}, self.t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prints", type=int, default=10_000_000)
    ap.add_argument("--quotes-per-print", type=int, default=2)
    ap.add_argument("--batch", type=int, default=100_000, help="prints per batch (1 s each)")
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument(
        "--full",
        action="store_true",
        help="run the whole compute graph, including the options operators' use of equities "
        "(the flow packets' spot-price tracker); default: the equities operators only",
    )
    args = ap.parse_args()

    gen = EquityGen(args.symbols, args.quotes_per_print, args.batch)
    engine = Engine(Config())
    if not args.full:
        # the figure is the equities stage (issue 5): validation, sequencing, join,
        # flags, dark inference, levels and candles; the options operators see no input
        compute = engine.compute
        compute.process = lambda raw, wm: compute.equity_stage(  # type: ignore[method-assign]
            raw.get(ev.EQUITIES_QUOTES), raw.get(ev.EQUITIES_PRINTS), wm
        )
        compute.flush = lambda: compute.equity_stage(None, None, 2**62)  # type: ignore[method-assign]
    counts = dict.fromkeys((ev.EQUITIES_JOINS, ev.DARK_INFERRED, ev.CANDLES), 0)
    gc.collect()
    rss0 = psutil.Process().memory_info().rss
    timed = gen_s = cpu = 0.0
    done = 0
    while done < args.prints:
        t0 = time.perf_counter()
        batch = gen.next()
        t1 = time.perf_counter()
        c1 = time.process_time()
        out = engine.ingest(batch)
        timed += time.perf_counter() - t1
        cpu += time.process_time() - c1
        gen_s += t1 - t0
        done += batch.frames[ev.EQUITIES_PRINTS].height
        for s in counts:
            if s in out:
                counts[s] += out[s].height
    t1 = time.perf_counter()
    for s, f in engine.flush().items():
        if s in counts:
            counts[s] += f.height
    timed += time.perf_counter() - t1
    stats = engine.stats()
    events = done * (1 + args.quotes_per_print)
    print(
        f"{done:,} prints + {done * args.quotes_per_print:,} quotes, {args.symbols} symbols, "
        f"{args.batch:,} prints per batch (generation {gen_s:.1f} s, not timed)"
    )
    print(f"equities pipeline{' (whole compute graph)' if args.full else ''}: {timed:.2f} s")
    print(f"  prints/s : {done / timed:,.0f}   (target >= 1,000,000)")
    print(f"  events/s : {events / timed:,.0f}   (prints + quotes)")
    print(
        f"  cpu time : {cpu:.2f} s (all threads) = {done / cpu:,.0f} prints per CPU-second "
        f"(wall/CPU = {timed / cpu:.2f}: above 1 means the process waited for a core)"
    )
    print(f"  load avg : {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(
        f"  out      : {counts[ev.EQUITIES_JOINS]:,} joins, {counts[ev.DARK_INFERRED]:,} dark "
        f"inferences, {counts[ev.CANDLES]:,} candle rows"
    )
    print(f"  rejected : {stats.rejected_total}")
    print(f"  rss delta: {(psutil.Process().memory_info().rss - rss0) / 2**20:,.0f} MiB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
