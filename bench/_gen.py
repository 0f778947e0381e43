"""Bench-only bulk generator: many raw option batches fast, outside the timed region.

Vectorised numpy; contract count, quote ratio and batch size are parameters so a
benchmark can state exactly what it measured.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.osi import format_osi

T0 = 1_764_081_000_000_000_000  # 2025-11-25 14:30:00 UTC


def contracts(n: int) -> list[str]:
    roots = ["SPY", "QQQ", "IWM", "AAPL", "NVDA", "TSLA", "AMZN", "MSFT"]
    out: list[str] = []
    i = 0
    while len(out) < n:
        root = roots[i % len(roots)]
        expiry = date(2025, 11, 25) + timedelta(days=7 * ((i // len(roots)) % 8))
        strike = 100 + (i // (len(roots) * 8))
        for right in ("C", "P"):
            out.append(format_osi(root, expiry, right, float(strike)))
        i += 1
    return out[:n]


def option_batches(
    n_prints: int, quotes_per_print: int, batch_prints: int, n_contracts: int = 4000, seed: int = 1
) -> list[ev.FeedBatch]:
    rng = np.random.default_rng(seed)
    syms = np.array(contracts(n_contracts), dtype=object)
    batches = []
    ns_per_print = 10_000  # 100 000 prints per second of event time
    t = T0
    for start in range(0, n_prints, batch_prints):
        n_p = min(batch_prints, n_prints - start)
        n_q = n_p * quotes_per_print
        span = n_p * ns_per_print
        q_ts = np.sort(rng.integers(t, t + span, n_q))
        p_ts = np.sort(rng.integers(t, t + span, n_p))
        q_c = rng.integers(0, n_contracts, n_q)
        p_c = rng.integers(0, n_contracts, n_p)
        mid = 1.0 + (np.arange(n_contracts) % 50) * 0.2
        bid = np.round(mid[q_c] - 0.05, 2)
        ask = np.round(mid[q_c] + 0.05, 2)
        price = np.round(mid[p_c] + rng.choice([-0.07, -0.05, 0.0, 0.05, 0.07], n_p), 2)
        quotes = pl.DataFrame(
            {
                "ts": q_ts,
                "symbol": pl.Series(syms[q_c], dtype=pl.String),
                "bid": bid,
                "ask": ask,
                "bid_size": rng.integers(1, 500, n_q),
                "ask_size": rng.integers(1, 500, n_q),
            }
        )
        prints = pl.DataFrame(
            {
                "ts": p_ts,
                "symbol": pl.Series(syms[p_c], dtype=pl.String),
                "price": price,
                "size": rng.integers(1, 2000, n_p),
                "exchange": pl.Series(rng.choice(list("CXIZQ"), n_p), dtype=pl.String),
                "conditions": pl.Series([""] * n_p, dtype=pl.String),
                "flags": rng.choice([0, 1], n_p).astype(np.int32),
            }
        )
        batches.append(ev.FeedBatch({ev.OPTIONS_NBBO: quotes, ev.OPTIONS_PRINTS: prints}, t + span))
        t += span
    return batches
