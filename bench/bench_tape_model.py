"""UI-side cost of the firehose on the tape: model work plus formatting a screen of rows.

    python bench/bench_tape_model.py [--seconds 5]

Feeds the options TapeModel one second at 51 000 prints/s split into 15 repaint
ticks (a 25 000-row hot window, min-premium filter) and formats 60 rows per tick,
as the Tape screen does; prints the share of each second spent (target: a small
part of it, so the UI loop stays free for input).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

import polars as pl

from islandflow_tui.engine import events as ev
from islandflow_tui.widgets.tape_view import (
    OPTION_FIELDS,
    TapeFilter,
    TapeModel,
    format_option_rows,
)

START_NS = 1_764_081_000_000_000_000


def tick_frame(rows: int, start: int) -> pl.DataFrame:
    schema = ev.polars_schema(ev.OPTIONS_ENRICHED)
    i = pl.int_range(start, start + rows, dtype=pl.Int64, eager=True)
    return pl.DataFrame(
        {
            "ts": START_NS + i * 20_000,
            "id": i,
            "root": pl.Series(["SPY", "QQQ", "TSLA", "NVDA"] * (rows // 4 + 1))[:rows],
            "expiry": pl.Series([date(2025, 12, 19)] * rows),
            "right": pl.Series(["C", "P"] * (rows // 2 + 1))[:rows],
            "strike": (i % 50).cast(pl.Float64) + 560.0,
            "price": (i % 300).cast(pl.Float64) / 10 + 0.05,
            "size": i % 40 + 1,
            "exchange": pl.Series(["C", "X", "I"] * (rows // 3 + 1))[:rows],
            "flags": (i % 2).cast(pl.Int32),
            "bid": (i % 300).cast(pl.Float64) / 10,
            "ask": (i % 300).cast(pl.Float64) / 10 + 0.1,
            "placement": pl.Series(["A", "B", "MID", "AA", "BB"] * (rows // 5 + 1))[:rows],
            "premium": ((i % 300) * (i % 40 + 1) * 10).cast(pl.Float64),
            "signal_mask": pl.Series([7, 6, 4, 4] * (rows // 4 + 1))[:rows].cast(pl.Int8),
        }
    ).select([pl.col(k).cast(schema[k]) for k in OPTION_FIELDS])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    model = TapeModel(tick_frame(1, 0).schema, cap=25_000)
    model.set_filter(TapeFilter(min_premium=5_000).options_expr())
    per_second = []
    n = 0
    for _ in range(args.seconds):
        ticks = [tick_frame(3_400, (n + k) * 3_400) for k in range(15)]
        n += 15
        t0 = time.perf_counter()
        for frame in ticks:
            model.extend(frame)
            format_option_rows(model.display.slice(0, 60))
        per_second.append((time.perf_counter() - t0) * 1000)
    print(
        f"tape model + formatting per second of 51k prints/s (15 ticks): "
        f"median {statistics.median(per_second):.0f} ms, max {max(per_second):.0f} ms "
        f"over {args.seconds} s"
    )


if __name__ == "__main__":
    main()
