"""Live latency from a print entering the engine to its alert painted on the Alerts screen.

    python bench/bench_alert_latency.py [--profile firehose] [--seconds 30] [--warmup 5]
                                        [--engine process|thread] [--record]

The real app runs headless (160x48) on the Alerts screen with the synthetic feed paced in
real time, the engine in its child process (the default) or on a thread.

What is measured, per alert: ``painted - entered`` where

* ``entered`` is the wall time (``time.time()``) at which the batch whose processing
  emitted the alert entered ``Engine.ingest``: the batch carrying the print (or the
  watermark advance) that completed the alert's packet.  The engine reports the newest
  batches as ``EngineStats.ingest_marks`` = (entered, alerts seq after the batch), so an
  alert's batch is found from its seq (``events.split_id``).
* ``painted`` is the wall time of the first screen refresh after the repaint tick that
  put the alert into the Alerts model and view (``call_after_refresh``).

So it covers engine compute, the hop to the UI process, the display feed, the repaint
tick and the refresh.  Not included, by design of the rules: a packet is decided only
when event time passes its first print + ``flow.cluster_window_ms`` (500 ms), so the
first print of a packet waits that long before anything can be alerted.

Figures are printed, never asserted.  Alerts painted during the first ``--warmup``
seconds after the first alert is painted (the backfill burst) are left out.
"""

from __future__ import annotations

import argparse
import bisect
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="firehose")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--engine", default="process", choices=("process", "thread"))
    ap.add_argument("--record", action="store_true", help="record the session as live does")
    args = ap.parse_args()

    from islandflow_tui.app import make_app
    from islandflow_tui.config import load_config
    from islandflow_tui.engine import events as ev

    cfg = load_config(
        None,
        env={},
        overrides={
            "synthetic.profile": args.profile,
            "log.record": args.record,
            "feed.engine": args.engine,
        },
    )
    app = make_app(cfg)
    # alerts seq after a batch -> wall times the batch entered ingest and was published
    marks: dict[int, tuple[float, float]] = {}
    painted: dict[int, float] = {}  # alert seq -> wall time of the refresh that showed it
    t_start = time.time()
    seen = 0
    orig_tick = app.tick
    # the early alerts-only tick (app.alerts_tick), where the app has one
    orig_alerts_tick = getattr(app, "alerts_tick", None)

    def stamp_new() -> None:
        nonlocal seen
        stats = app.last_stats
        if stats is not None:
            for entered, published, after in stats.ingest_marks:
                marks.setdefault(after, (entered, published))
        model = app.alerts_model
        new = model.arrived - seen
        if new <= 0:
            return
        seen = model.arrived
        ids = model.rows.head(min(new, model.rows.height))["id"].to_list()
        seqs = [ev.split_id(int(i))[1] for i in ids]

        def stamp() -> None:
            now = time.time()
            for s in seqs:
                painted.setdefault(s, now)

        app.call_after_refresh(stamp)

    def tick() -> None:
        orig_tick()
        stamp_new()

    def alerts_tick() -> None:
        orig_alerts_tick()  # type: ignore[misc]
        stamp_new()

    if orig_alerts_tick is not None:
        app.alerts_tick = alerts_tick  # type: ignore[method-assign]
    app.tick = tick  # type: ignore[method-assign]
    received: dict[int, float] = {}  # alert seq -> wall time it reached the app's feed
    feed_push = app.feed.push

    def push(stream: str, frame: object) -> None:
        if stream == ev.ALERTS:
            now = time.time()
            for i in frame["id"].to_list():  # type: ignore[index]
                received.setdefault(ev.split_id(int(i))[1], now)
        feed_push(stream, frame)  # type: ignore[arg-type]

    app.feed.push = push  # type: ignore[method-assign]

    def stop_later() -> None:
        app.set_timer(args.seconds, app.exit)

    app.call_after_refresh(lambda: (app.switch_mode("alerts"), stop_later()))
    app.run(headless=True, size=(160, 48))

    ends = sorted(marks)
    lat: list[float] = []
    engine_ms: list[float] = []
    after_ms: list[float] = []
    hop_ms: list[float] = []
    ui_ms: list[float] = []
    windows: dict[int, list[float]] = {}
    unmatched = 0
    first_paint = min(painted.values(), default=t_start)
    for seq, t_paint in sorted(painted.items()):
        if t_paint - first_paint < args.warmup:
            continue
        i = bisect.bisect_right(ends, seq)  # first batch whose alert count passed seq
        if i >= len(ends):
            unmatched += 1
            continue
        entered, published = marks[ends[i]]
        lat.append((t_paint - entered) * 1000)
        engine_ms.append((published - entered) * 1000)
        after_ms.append((t_paint - published) * 1000)
        if seq in received:
            hop_ms.append((received[seq] - published) * 1000)
            ui_ms.append((t_paint - received[seq]) * 1000)
        windows.setdefault(int((t_paint - first_paint) // 5) * 5, []).append(lat[-1])
    stats = app.last_stats
    load = os.getloadavg()
    print(
        f"profile={args.profile} engine={args.engine} seconds={args.seconds:.0f} "
        f"record={args.record} (headless app, Alerts screen, 160x48)"
    )
    if stats is not None:
        total = stats.totals
        print(
            f"  option prints {total.get('options.prints', 0):,}  packets "
            f"{total.get('flow.packets', 0):,}  alerts {total.get('alerts', 0):,}  "
            f"engine ingest p50 {stats.ingest_ms_p50:.1f} ms/batch  "
            f"display dropped {stats.display_gap:,}"
        )
    if not lat:
        print(f"  no alerts measured (painted {len(painted)}, unmatched {unmatched})")
        return

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    print(
        f"  print entered engine -> alert painted, ms over {len(lat)} alerts: "
        f"p50 {pct(lat, 0.5):.0f}  p90 {pct(lat, 0.9):.0f}  p99 {pct(lat, 0.99):.0f}  "
        f"max {max(lat):.0f}   (target p99 < 250)"
    )
    print(
        f"    of which in the engine (batch entered -> alert published): "
        f"p50 {pct(engine_ms, 0.5):.0f}  p99 {pct(engine_ms, 0.99):.0f}"
    )
    print(
        f"    and after it (process hop, display feed, repaint tick, refresh): "
        f"p50 {pct(after_ms, 0.5):.0f}  p99 {pct(after_ms, 0.99):.0f}"
    )
    if hop_ms:
        print(
            f"      = hop to the app's display feed (engine process: sender, pipe, decode): "
            f"p50 {pct(hop_ms, 0.5):.0f}  p99 {pct(hop_ms, 0.99):.0f}"
        )
        print(
            f"      + feed -> painted (repaint tick, model, refresh): "
            f"p50 {pct(ui_ms, 0.5):.0f}  p99 {pct(ui_ms, 0.99):.0f}"
        )
    print(
        "    p99 by 5 s window after the first alert: "
        + "  ".join(f"{w}s:{pct(v, 0.99):.0f}" for w, v in sorted(windows.items()))
    )
    print(f"  unmatched alerts (batch mark not seen): {unmatched}")
    print(f"  load average 1/5/15 min: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
