"""The app under load, headless: start-up time, event-loop lag, refresh rate, memory.

    python bench/bench_app.py startup [--runs 5]
        `islandflow` (a fresh interpreter) to the first painted tape with rows.
    python bench/bench_app.py firehose [--seconds 60] [--profile firehose]
        the real app (engine thread + synthetic feed, paced in real time) headless:
        event-loop lag p50/p99/max (drift of a 10 ms asyncio sleep on the UI loop),
        repaint ticks/s (and early alerts-only ticks/s; the tick time counts both),
        rows shown, peak RSS and RSS every 10 s.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import os, sys, time
t_spawn = float(os.environ["BENCH_T_SPAWN"])
from islandflow_tui.config import load_config
from islandflow_tui.app import make_app
cfg = load_config(None, env={}, overrides={"synthetic.profile": "realistic", "log.record": False})
app = make_app(cfg, tune_gc=True)
orig = app.tick
def tick():
    orig()
    if app.options_model.view.height > 0:
        print(f"FIRST_ROWS {time.time() - t_spawn:.3f}", flush=True)
        app.exit()
app.tick = tick
app.run(headless=True, size=(160, 48))
"""


def startup(runs: int) -> None:
    times = []
    for _ in range(runs):
        env = {**os.environ, "BENCH_T_SPAWN": repr(time.time())}
        out = subprocess.run(
            [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=60
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("FIRST_ROWS")), None)
        if line is None:
            print("child failed:", out.stdout[-500:], out.stderr[-2000:])
            return
        times.append(float(line.split()[1]))
    print(
        f"start-up to first painted tape with rows over {runs} runs (s): "
        f"min {min(times):.3f}  median {statistics.median(times):.3f}  max {max(times):.3f}"
        "   (target < 1.5 s)"
    )


def firehose(seconds: float, profile: str) -> None:
    import psutil

    from islandflow_tui.app import make_app
    from islandflow_tui.config import load_config

    cfg = load_config(None, env={}, overrides={"synthetic.profile": profile, "log.record": False})
    app = make_app(cfg, tune_gc=True)
    proc = psutil.Process()
    lags: list[float] = []
    lag_at: list[float] = []
    ticks = 0
    rss: list[tuple[float, int]] = []
    orig_tick = app.tick

    tick_ms: list[float] = []

    def tick() -> None:
        nonlocal ticks
        t = time.perf_counter()
        orig_tick()
        tick_ms.append((time.perf_counter() - t) * 1000)
        ticks += 1

    app.tick = tick  # type: ignore[method-assign]
    early = 0
    orig_alerts_tick = getattr(app, "alerts_tick", None)

    def alerts_tick() -> None:
        nonlocal early
        t = time.perf_counter()
        orig_alerts_tick()  # type: ignore[misc]
        tick_ms.append((time.perf_counter() - t) * 1000)
        early += 1

    if orig_alerts_tick is not None:  # the early alerts-only tick (app.alerts_tick)
        app.alerts_tick = alerts_tick  # type: ignore[method-assign]

    async def probe() -> None:
        t_start = time.perf_counter()
        next_rss = 0.0
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((time.perf_counter() - t0 - 0.01) * 1000)
            elapsed = t0 - t_start
            lag_at.append(elapsed)
            if elapsed >= next_rss:
                rss.append((elapsed, proc.memory_info().rss))
                next_rss += 10
            if elapsed >= seconds:
                app.exit()
                return

    app.call_after_refresh(lambda: app.run_worker(probe(), group="bench"))
    t0 = time.perf_counter()
    app.run(headless=True, size=(160, 48))
    wall = time.perf_counter() - t0
    stats = app.last_stats
    windows: dict[int, list[float]] = {}
    for at, lag in zip(lag_at, lags, strict=True):
        windows.setdefault(int(at // 10) * 10, []).append(lag)
    lags.sort()
    pct = lambda p: lags[min(len(lags) - 1, int(p * len(lags)))]  # noqa: E731
    print(f"profile={profile} seconds={seconds:.0f} (headless app, 160x48)")
    if stats:
        total = stats.totals
        print(
            f"  events: option prints {total['options.prints']:,}  nbbo {total['options.nbbo']:,}  "
            f"equity prints {total['equities.prints']:,}  quotes {total['equities.quotes']:,}  "
            f"enriched {total['options.enriched']:,}  rejected {stats.rejected_total}  "
            f"display dropped {stats.display_gap:,}"
        )
        print(f"  option prints/s: {total['options.prints'] / wall:,.0f} (over the wall time)")
    print(
        f"  event-loop lag ms: p50 {pct(0.5):.1f}  p90 {pct(0.9):.1f}  p99 {pct(0.99):.1f}  "
        f"max {lags[-1]:.1f}   (target p99 < 50)"
    )
    per = []
    for start, vals in sorted(windows.items()):
        vals.sort()
        per.append(f"{start}-{start + 10}s p99 {vals[int(0.99 * (len(vals) - 1))]:.0f}")
    print("  lag by window: " + "  ".join(per))
    tick_ms.sort()
    if tick_ms:
        print(
            f"  app tick (drain + models + repaint) ms: p50 {tick_ms[len(tick_ms) // 2]:.1f}  "
            f"p99 {tick_ms[int(0.99 * (len(tick_ms) - 1))]:.1f}"
        )
    print(
        f"  repaint ticks/s: {ticks / wall:.1f}  (configured {cfg.ui.refresh_hz}); "
        f"early alerts-only ticks/s: {early / wall:.1f}"
    )
    print("  RSS MiB by time: " + "  ".join(f"{t:.0f}s:{r / 2**20:.0f}" for t, r in rss))
    print(f"  peak RSS MiB: {max(r for _, r in rss) / 2**20:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("startup")
    s.add_argument("--runs", type=int, default=5)
    f = sub.add_parser("firehose")
    f.add_argument("--seconds", type=float, default=60)
    f.add_argument("--profile", default="firehose")
    args = ap.parse_args()
    if args.mode == "startup":
        startup(args.runs)
    else:
        firehose(args.seconds, args.profile)


if __name__ == "__main__":
    main()
