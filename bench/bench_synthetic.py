"""How fast the synthetic market generates, per stream, against event time.

Run: ``.venv/bin/python bench/bench_synthetic.py [--profile firehose] [--seconds 10]``

Prints generated rows per second of wall time for each raw stream and the share of
one core that generating the profile in real time would take (wall / event time).
The firehose target is >= 200 000 option prints/s generated (with their quotes),
i.e. well under 25 % of a core at its ~60 000 prints/s.  No assertions: figures only.
"""

from __future__ import annotations

import argparse
import time

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.ingest.synthetic import PROFILES, SyntheticMarket, start_ns_from_config


def bench(profile: str, seconds: float, seed: int, tick_ms: int) -> None:
    start = start_ns_from_config("2025-11-25T14:30:00Z", 0)
    market = SyntheticMarket(profile, seed, start, tick_ms)
    ticks = max(1, round(seconds * 1000 / tick_ms))
    market.next_batch()  # warm-up: first-call costs (imports, allocator) are not the rate
    rows = dict.fromkeys(ev.RAW_STREAMS, 0)
    t0 = time.perf_counter()
    for _ in range(ticks):
        batch = market.next_batch()
        for stream, frame in batch.frames.items():
            rows[stream] += frame.height
    wall = time.perf_counter() - t0
    event_s = ticks * tick_ms / 1000
    print(f"profile={profile} seed={seed} tick_ms={tick_ms} event_time={event_s:.1f}s")
    print(f"  wall time          {wall:8.3f} s  ({100 * wall / event_s:5.1f} % of one core)")
    labels = {
        ev.OPTIONS_PRINTS: "option prints",
        ev.OPTIONS_NBBO: "nbbo updates",
        ev.EQUITIES_PRINTS: "equity prints",
        ev.EQUITIES_QUOTES: "equity quotes",
    }
    for stream, label in labels.items():
        print(
            f"  {label:<15} {rows[stream] / event_s:>10,.0f}/s event time"
            f"   {rows[stream] / wall:>12,.0f}/s generated"
        )
    ratio = rows[ev.OPTIONS_NBBO] / max(rows[ev.OPTIONS_PRINTS], 1)
    print(f"  nbbo per option print {ratio:.2f}; patterns injected {market.patterns.height}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="firehose", choices=sorted(PROFILES))
    parser.add_argument("--seconds", type=float, default=10.0, help="event time to generate")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tick-ms", type=int, default=100)
    args = parser.parse_args()
    bench(args.profile, args.seconds, args.seed, args.tick_ms)


if __name__ == "__main__":
    main()
