"""``islandflow export SESSION --stream NAME [--from/--to] --format parquet|csv --out PATH``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import polars as pl

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="write one stream of a session to Parquet or CSV")
    p.add_argument("session", help="session id or folder")
    p.add_argument("--stream", required=True, choices=list(ev.ALL_STREAMS), help="stream to export")
    p.add_argument(
        "--from", dest="ts_from", metavar="TIME", help="HH:MM[:SS], ISO-8601 or +SECONDS"
    )
    p.add_argument("--to", dest="ts_to", metavar="TIME", help="same forms as --from")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--out", required=True, metavar="PATH", help="file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, cfg: Config) -> int:
    from islandflow_tui.engine.log import SessionReader
    from islandflow_tui.engine.replay import ReplaySource
    from islandflow_tui.engine.session import SessionNotFound, parse_time, resolve_session

    try:
        path = resolve_session(cfg, args.session)
        reader = SessionReader(path)
        first = ReplaySource(reader).first_ts
        ts_from = parse_time(args.ts_from or "", first)
        ts_to = parse_time(args.ts_to or "", first)
    except (SessionNotFound, ValueError) as exc:
        print(f"islandflow export: {exc}", file=sys.stderr)
        return 2
    df = reader.read(args.stream, ts_from, ts_to)
    out = Path(args.out)
    try:
        if args.format == "parquet":
            df.write_parquet(out, compression="zstd")
        else:
            flat = df.with_columns([_csv_cell(c, dt) for c, dt in df.schema.items() if _nested(dt)])
            flat.write_csv(out)
    except OSError as exc:
        print(f"islandflow export: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return 2
    for w in reader.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {df.height} {args.stream} rows to {out}")
    return 0


def _nested(dt: pl.DataType) -> bool:
    return isinstance(dt, pl.List | pl.Struct)


def _csv_cell(name: str, dt: pl.DataType) -> pl.Expr:
    """Nested columns as text: id lists space-separated, traces as a JSON array."""
    col = pl.col(name)
    if isinstance(dt, pl.Struct):
        return col.struct.json_encode()
    assert isinstance(dt, pl.List)
    if isinstance(dt.inner, pl.Struct):
        items = col.list.eval(pl.element().struct.json_encode()).list.join(",")
        return pl.concat_str(pl.lit("["), items, pl.lit("]")).alias(name)
    return col.cast(pl.List(pl.String)).list.join(" ")
