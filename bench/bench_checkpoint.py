"""Engine checkpoint size and the time to take / write / read / restore one.

Runs ``--seconds`` of the synthetic market (``--profile firehose`` by default, one
batch per second of event time, long enough to fill the packets' cancel lookback of
60 s) through a default engine, then takes a checkpoint the way a recording session
does (``Engine.checkpoint`` -> ``replay.save_checkpoint``: one zstd Arrow IPC file per
state frame, no block sharing: this measures one checkpoint alone) and measures:

* ``state()``: ``Engine.checkpoint()`` wall time;
* in-memory bytes (polars ``estimated_size``) and on-disk bytes, per state frame
  (the largest listed) and in total;
* ``write``: save_checkpoint; ``read``: load_checkpoint; ``restore``: Engine.restore;
* ``seek``: read + restore (what a replay seek pays before replaying up to 10 s of
  raw rows from the checkpoint).

Each timing is the median of ``--repeat`` runs.

    python bench/bench_checkpoint.py [--profile firehose] [--seconds 70] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from islandflow_tui.config import Config
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.synthetic import SyntheticMarket, start_ns_from_config
from islandflow_tui.engine.replay import load_checkpoint, save_checkpoint

START = "2025-11-25T14:30:00Z"


def _median(f, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="firehose")
    ap.add_argument("--seconds", type=int, default=70)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    market = SyntheticMarket(args.profile, args.seed, start_ns_from_config(START, 0), 1000)
    engine = Engine(Config())
    prints = 0
    t0 = time.perf_counter()
    for _ in range(args.seconds):
        b = market.next_batch()
        prints += b.frames["options.prints"].height
        engine.ingest(b)
    print(
        f"profile={args.profile} {args.seconds} s of event time, {prints:,} option prints "
        f"({time.perf_counter() - t0:.1f} s to run)"
    )
    t_state, state = _median(engine.checkpoint, args.repeat)
    assert isinstance(state, dict)
    with tempfile.TemporaryDirectory() as tmp:
        session = Path(tmp)
        wm = engine.watermark
        t_write = 0.0
        for i in range(args.repeat):
            t0 = time.perf_counter()
            save_checkpoint(session, wm + i, state)
            t_write = t_write + (time.perf_counter() - t0) / args.repeat
        files = sorted((session / "checkpoints" / f"{wm:020d}").glob("*.arrow"))
        disk = {p.name.removesuffix(".arrow"): p.stat().st_size for p in files}
        t_read, loaded = _median(lambda: load_checkpoint(session, wm), args.repeat)
        assert isinstance(loaded, dict)

        def restore() -> None:
            Engine(Config()).restore(loaded)

        t_restore, _ = _median(restore, args.repeat)
    mem = {k: v.estimated_size() for k, v in state.items()}
    print(f"state frames: {len(state)}, rows: {sum(v.height for v in state.values()):,}")
    print(f"{'frame':<34}{'rows':>12}{'memory MB':>12}{'disk MB':>10}")
    for k in sorted(state, key=lambda k: -disk.get(k, 0))[:12]:
        print(f"{k:<34}{state[k].height:>12,}{mem[k] / 1e6:>12.2f}{disk.get(k, 0) / 1e6:>10.2f}")
    print(f"{'total':<34}{'':>12}{sum(mem.values()) / 1e6:>12.2f}{sum(disk.values()) / 1e6:>10.2f}")
    print(f"state() {t_state * 1000:8.1f} ms")
    print(f"write   {t_write * 1000:8.1f} ms")
    print(f"read    {t_read * 1000:8.1f} ms")
    print(f"restore {t_restore * 1000:8.1f} ms")
    print(f"seek (read + restore) {1000 * (t_read + t_restore):8.1f} ms")


if __name__ == "__main__":
    main()
