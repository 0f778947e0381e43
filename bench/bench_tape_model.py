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
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.helpers

from islandflow_tui.widgets.tape_view import TapeFilter, TapeModel, format_option_rows
from tests.helpers import firehose_tick  # the same rows the tape tests use


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    model = TapeModel(firehose_tick(1, 0).schema, cap=25_000)
    model.set_filter(TapeFilter(min_premium=5_000).options_expr())
    per_second = []
    n = 0
    for _ in range(args.seconds):
        ticks = [firehose_tick(3_400, (n + k) * 3_400) for k in range(15)]
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
