"""Alpaca adapter mapping throughput: wire frames -> engine rows, per message in Python.

The Alpaca stream delivers one msgpack frame of a few messages at a time and
alpaca-py parses each into a pydantic model (``_cast``); that per-message loop is
the vendor's, not ours.  This measures what the adapter adds on top: the figure
"adapter" (msgpack decode + ``_cast`` + mapping + de-dup + buffering + the polars
batch) against "alpaca-py alone" (msgpack decode + ``_cast``), both in one run.

    python bench/bench_alpaca.py [--messages 200000] [--per-frame 20]
"""

from __future__ import annotations

import argparse
import time

import msgpack

from islandflow_tui.config import Config, Secret
from islandflow_tui.engine.ingest.alpaca_feed import AlpacaFeed


def frames(n: int, per_frame: int, kind: str) -> list[bytes]:
    out = []
    t0 = 1_764_084_600
    for f in range(0, n, per_frame):
        batch = []
        for i in range(f, min(n, f + per_frame)):
            ts = msgpack.Timestamp(t0 + i // 1000, (i % 1000) * 1000)
            if kind == "stock":
                batch.append(
                    {"T": "t", "S": "AAPL", "i": i, "x": "V", "p": 190.0 + (i % 7) * 0.01,
                     "s": 100, "c": ["@", "I"], "z": "C", "t": ts}
                )  # fmt: skip
            else:
                batch.append(
                    {"T": "t", "S": "AAPL251219C00190000", "t": ts, "p": 4.1, "s": 1 + i % 9,
                     "x": "C", "c": "I"}
                )  # fmt: skip
        out.append(msgpack.packb(batch))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--per-frame", type=int, default=20)
    args = ap.parse_args()
    from alpaca.data.live.option import OptionDataStream
    from alpaca.data.live.stock import StockDataStream

    cfg = Config()
    cfg.alpaca.api_key, cfg.alpaca.secret_key = Secret("k"), Secret("s")
    cfg.alpaca.underlyings = []
    for kind, stream in (
        ("stock", StockDataStream("k", "s")),
        ("option", OptionDataStream("k", "s")),
    ):
        wire = frames(args.messages, args.per_frame, kind)
        t = time.perf_counter()
        for raw in wire:
            for msg in msgpack.unpackb(raw):
                stream._cast(msg)
        ref = time.perf_counter() - t
        feed = AlpacaFeed(cfg, environ={})
        label = "equities" if kind == "stock" else "options"
        t = time.perf_counter()
        for k, raw in enumerate(wire):
            for msg in msgpack.unpackb(raw):
                feed._handle(stream, label, "x", msg)
            if k % 50 == 49:  # the feed flushes every ~100 ms: a batch per ~1000 messages
                feed.take_batch()
        feed.take_batch()
        ours = time.perf_counter() - t
        n = args.messages
        print(
            f"{kind:6s} {n} msgs: alpaca-py alone {n / ref:,.0f} msg/s; "
            f"adapter {n / ours:,.0f} msg/s ({ours / ref:.2f}x alpaca-py's time)"
        )


if __name__ == "__main__":
    main()
