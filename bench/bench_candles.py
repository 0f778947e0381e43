"""Candle chart redraw time: what one repaint of the Candles screen costs.

    python bench/bench_candles.py [--width 200] [--height 60] [--candles 500] [--runs 300]

Builds ``--candles`` one-minute candles (seeded random walk, off-exchange volume,
dark and alert markers), then times, per run, everything a repaint does when the
data changed: ``ChartSeries.from_frame`` over the candle frame (sort, numpy
arrays, session VWAP), ``render_chart`` at the widget's size, and turning the
rows into Textual ``Strip``s (what ``CandleChart.render_line`` returns).  Each run
renders a different end position, so nothing is served from a cache.  Zoom 1:4 is
also timed: at 200 columns it shows every one of the 500 candles (merged).

Prints wall-clock p50/p99/max in ms and the thread's CPU time (which a loaded
machine does not inflate); the target is < 20 ms at 200x60 with 500 candles.

Also times the candle model's work per repaint tick when it is full (20 symbols x
2 intervals x 2 000 candles kept) and one in-progress update per series arrives:
``CandleModel.extend`` plus re-reading the charted series.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import polars as pl
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from islandflow_tui.engine import events as ev
from islandflow_tui.widgets.candle_chart import (
    DEFAULT_ZOOM,
    ChartSeries,
    render_chart,
    series_marks,
)
from islandflow_tui.widgets.candle_model import CANDLE_FIELDS, CandleModel

T0 = 1_764_081_000 * ev.NS_PER_S
MIN_NS = 60 * ev.NS_PER_S


def candles(n: int, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 580 + np.cumsum(rng.normal(0, 0.25, n))
    open_ = np.r_[580.0, close[:-1]]
    high = np.maximum(open_, close) + rng.random(n) * 0.3
    low = np.minimum(open_, close) - rng.random(n) * 0.3
    volume = rng.integers(1_000, 50_000, n)
    return pl.DataFrame(
        {
            "start_ts": T0 + np.arange(n, dtype=np.int64) * MIN_NS,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "off_exchange_volume": (volume * rng.uniform(0.2, 0.6, n)).astype(np.int64),
            "vwap": (open_ + close + high + low) / 4,
            "final": np.r_[np.ones(n - 1, dtype=bool), False],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=200)
    parser.add_argument("--height", type=int, default=60)
    parser.add_argument("--candles", type=int, default=500)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    frame = candles(args.candles)
    rng = np.random.default_rng(5)
    span = args.candles * MIN_NS
    marks = series_marks(T0 + rng.integers(0, span, 80), T0 + rng.integers(0, span, 30))
    styles: dict[str, Style] = {}
    palette = ["green", "red", "yellow", "magenta", "grey50", "cyan", "white"]

    def style(cls: str) -> Style:
        if cls not in styles:
            styles[cls] = Style(color=palette[len(styles) % len(palette)])
        return styles[cls]

    # chart height: the terminal minus the status bar and the footer, as on the screen
    height = args.height - 2

    def redraw(end: int | None, zoom: int) -> int:
        series = ChartSeries.from_frame(frame, "SPY", 60_000)
        render = render_chart(
            series, marks, args.width, height, zoom=zoom, end=end, badge=("● LIVE", "")
        )
        strips = [  # as CandleChart.render_strips does
            Strip(
                [Segment(text, style(cls)) for text, cls in row], sum(len(t) for t, _ in row)
            ).adjust_cell_length(args.width)
            for row in render.rows
        ]
        return len(strips)

    for zoom, label in ((DEFAULT_ZOOM, "zoom 2col (default)"), (4, "zoom 1:4 (all candles)")):
        redraw(None, zoom)  # warm up imports and caches of numpy/polars
        times = []
        cpu = []
        for i in range(args.runs):
            end = args.candles - (i % 50)  # a different window each run: no cache
            t0 = time.perf_counter()
            c0 = time.thread_time()
            redraw(end, zoom)
            cpu.append((time.thread_time() - c0) * 1000)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        cpu.sort()
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(
            f"candle chart redraw {args.width}x{args.height} ({args.width}x{height} chart), "
            f"{args.candles} candles, {label}: wall p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
            f"max {times[-1]:.2f} ms; CPU p50 {statistics.median(cpu):.2f} ms  "
            f"p99 {cpu[min(len(cpu) - 1, int(len(cpu) * 0.99))]:.2f} ms  "
            f"({args.runs} runs; target < 20 ms)"
        )
    model_tick(min(args.runs, 200))


def model_tick(runs: int) -> None:
    symbols = [f"S{i:02d}" for i in range(20)]
    intervals = (60_000, 300_000)
    schema = CandleModel().schema
    seq = 0

    def batch(minute: int, final: bool) -> pl.DataFrame:
        nonlocal seq
        rows = len(symbols) * len(intervals)
        start = [T0 + (minute * 60_000 // iv) * iv * 1_000_000 for iv in intervals]
        frame = pl.DataFrame(
            {
                "seq": np.arange(seq, seq + rows, dtype=np.int64),
                "symbol": symbols * len(intervals),
                "interval_ms": np.repeat(np.array(intervals, dtype=np.int64), len(symbols)),
                "start_ts": np.repeat(np.array(start, dtype=np.int64), len(symbols)),
                **{k: np.full(rows, 100.0) for k in ("open", "high", "low", "close", "vwap")},
                **{
                    k: np.full(rows, 100, dtype=np.int64)
                    for k in ("volume", "trades", "off_exchange_volume", "retail_volume")
                },
                "final": np.full(rows, final),
            },
            schema=schema,
        )
        seq += rows
        return frame.select(CANDLE_FIELDS)

    model = CandleModel()
    for minute in range(2_000 * 5):  # fill: 2 000 five-minute candles per series
        model.extend(batch(minute, True))
    updates = [batch(2_000 * 5, False) for _ in range(runs)]
    times = []
    for frame in updates:
        t0 = time.perf_counter()
        model.extend(frame)
        model.series("S00", 60_000)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(
        f"candle model tick, {model.frame.height:,} candles kept, 40 in-progress updates: "
        f"p50 {statistics.median(times):.2f} ms  p99 {times[int(len(times) * 0.99)]:.2f} ms"
    )


if __name__ == "__main__":
    main()
