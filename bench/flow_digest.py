"""Digest of every derived stream on fixed inputs: proves an optimisation changed no byte.

Runs three fixed-seed inputs through a default engine and prints one sha256 per
(input, derived stream) of the concatenated output frames (Arrow IPC, uncompressed,
one chunk), plus row counts:

* ``firehose``: ``--firehose-s`` seconds of the synthetic market's firehose profile,
  one batch per second of event time (the throughput bench's input);
* ``realistic``: ``--realistic-min`` minutes of the realistic profile in 2 s batches
  (the golden test's input);
* ``gen+cancels``: bench/_gen.py prints with every 50th print repeated later as a
  CANCEL of itself (exercises the packet/alert/structure correction paths);
* ``gen+cancels/restored``: the same, checkpointed to disk and restored into a fresh
  engine every 3 batches, the way a seek does it (checkpoints of one folder share
  blocks; the retained prints stay unread until a cancel needs them): its digests
  must equal ``gen+cancels``'s.

    python bench/flow_digest.py [--out FILE] [--check FILE]

``FLOW_DIGEST_DROP=stream:col,col`` leaves those columns out of that stream's
digest (to compare across a deliberate schema addition).  ``--out`` writes the
digests as JSON; ``--check`` compares against such a file and exits 1 on any
difference (naming the stream).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


import polars as pl
import pyarrow as pa
from _gen import option_batches

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.synthetic import SyntheticMarket, start_ns_from_config
from islandflow_tui.engine.replay import (
    LAZY_FRAMES,
    BlockIndex,
    load_checkpoint,
    save_checkpoint,
)

START = "2025-11-25T14:30:00Z"


def _digest(stream: str, frames: list[pl.DataFrame]) -> tuple[int, str]:
    if not frames:
        return 0, "-"
    # Arrow (large strings, one chunk) so the bytes depend on content, not on how
    # polars laid out its string-view buffers
    df = pl.concat(frames, how="vertical")
    drop = os.environ.get("FLOW_DIGEST_DROP", "")  # stream:col,col
    if drop.startswith(stream + ":"):
        df = df.drop(drop.split(":", 1)[1].split(","), strict=False)
    table = df.to_arrow().combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return table.num_rows, hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:16]


def _run(
    batches: list[ev.FeedBatch],
    save: str | None = None,
    restore_every: int = 0,
    lanes: bool = False,
) -> dict[str, list[object]]:
    """Digests of the outputs; ``restore_every`` > 0: every that many batches the engine
    is checkpointed to disk, and a fresh engine restored from it carries on; ``lanes``:
    the flow stages on their own threads (Engine.start_lanes)."""
    engine = Engine(Config())
    got: dict[str, list[pl.DataFrame]] = {}

    def take(frames: dict[str, pl.DataFrame]) -> None:
        for stream, frame in frames.items():
            got.setdefault(stream, []).append(frame)

    if lanes:
        engine.start_lanes()
    # one session folder for the whole run, as a recording has: checkpoints share
    # blocks (replay.BlockIndex) and a restore leaves the retained frames unread
    # until a cancel needs them (replay.LAZY_FRAMES), exactly as a seek does
    with tempfile.TemporaryDirectory() as tmp:
        blocks = BlockIndex(Path(tmp))
        for i, b in enumerate(batches):
            take(engine.ingest(b))
            if restore_every and (i + 1) % restore_every == 0:
                save_checkpoint(Path(tmp), engine.watermark, engine.checkpoint(), blocks)
                state = load_checkpoint(Path(tmp), engine.watermark, lazy=LAZY_FRAMES)
                take(engine.stop_lanes())
                engine = Engine(Config())
                engine.restore(state)
                if lanes:
                    engine.start_lanes()
        take(engine.stop_lanes())
        take(engine.flush())
    if save:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        for s, frames in got.items():
            pl.concat(frames).write_parquet(f"{save}.{s}.parquet")
    return {s: list(_digest(s, got.get(s, []))) for s in ev.DERIVED_STREAMS}


def market(profile: str, seconds: float, tick_ms: int, group: int) -> list[ev.FeedBatch]:
    m = SyntheticMarket(profile, 7, start_ns_from_config(START, 0), tick_ms)
    out = []
    for _ in range(int(seconds * 1000 / tick_ms / group)):
        ticks = [m.next_batch() for _ in range(group)]
        frames = {s: pl.concat([t.frames[s] for t in ticks]) for s in ticks[0].frames}
        out.append(ev.FeedBatch(frames, ticks[-1].watermark))
    return out


def gen_with_cancels(n: int) -> list[ev.FeedBatch]:
    """_gen batches where every 50th print is cancelled 0.2-3 s of event time later."""
    batches = option_batches(n, 3, 20_000, 400)
    out = []
    carry: pl.DataFrame | None = None
    for b in batches:
        prints = b.frames[ev.OPTIONS_PRINTS]
        cancels = prints.gather_every(50).with_columns(
            (pl.col("ts") + 200_000_000 + (pl.col("size") % 28) * 100_000_000).alias("ts"),
            pl.lit(int(ev.Cond.CANCEL), pl.Int32).alias("flags"),
        )
        both = pl.concat([prints, carry] if carry is not None else [prints])
        due = both.filter(pl.col("ts") < b.watermark)
        carry = pl.concat([both.filter(pl.col("ts") >= b.watermark), cancels])
        frames = dict(b.frames)
        frames[ev.OPTIONS_PRINTS] = due.sort("ts", maintain_order=True)
        out.append(ev.FeedBatch(frames, b.watermark))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--firehose-s", type=float, default=20.0)
    ap.add_argument("--realistic-min", type=float, default=5.0)
    ap.add_argument("--gen-prints", type=int, default=400_000)
    ap.add_argument("--out")
    ap.add_argument("--check")
    ap.add_argument("--save", help="also write each output as DIR/<input>.<stream>.parquet")
    ap.add_argument("--only", help="comma-separated inputs to run")
    ap.add_argument("--lanes", action="store_true", help="flow stages on their own threads")
    args = ap.parse_args()
    inputs = {
        "firehose": lambda: market("firehose", args.firehose_s, 1000, 1),
        "realistic": lambda: market("realistic", args.realistic_min * 60, 100, 20),
        "gen+cancels": lambda: gen_with_cancels(args.gen_prints),
        "gen+cancels/restored": lambda: gen_with_cancels(args.gen_prints),
    }
    result: dict[str, dict[str, list[object]]] = {}
    for name, make in inputs.items():
        if args.only and name not in args.only.split(","):
            continue
        t0 = time.perf_counter()
        batches = make()
        t1 = time.perf_counter()
        result[name] = _run(
            batches,
            f"{args.save}/{name.replace('/', '_')}" if args.save else None,
            restore_every=3 if name.endswith("/restored") else 0,
            lanes=args.lanes,
        )
        print(f"{name}: gen {t1 - t0:.1f} s, engine {time.perf_counter() - t1:.1f} s")
        for s, (rows, h) in result[name].items():
            print(f"  {s:<18} {rows:>10,} {h}")
    if "gen+cancels" in result and "gen+cancels/restored" in result:
        same = result["gen+cancels"] == result["gen+cancels/restored"]
        print(f"checkpoint/restore every 3 batches gives the straight run's output: {same}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    if args.check:
        want = json.loads(Path(args.check).read_text())
        bad = [
            f"{name}/{s}: {want[name][s]} -> {got}"
            for name, streams in result.items()
            for s, got in streams.items()
            if name in want and want[name].get(s) != got
        ]
        print("IDENTICAL" if not bad else "DIFFERENT:\n  " + "\n  ".join(bad))
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
