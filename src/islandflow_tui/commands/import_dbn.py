"""``islandflow import PATH... [--session-name NAME]``: Databento DBN files -> a session."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from islandflow_tui.config import Config


def register(sub: Any) -> None:
    p = sub.add_parser(
        "import",
        help="import Databento .dbn / .dbn.zst files into a new recorded session",
        description=(
            "Decode Databento DBN files (trades, tbbo, tcbbo, mbp-1, mbp-10, mbo, cbbo, bbo, "
            "definition, statistics; OPRA and US equities datasets) with the databento SDK, "
            "merge them in event time and run them through the engine into a new session "
            "that islandflow replay plays and islandflow verify checks."
        ),
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help=".dbn or .dbn.zst files")
    p.add_argument(
        "--databento",
        action="store_true",
        help="download the [databento] historical request (datasets, schemas, symbols, "
        "start/end) through databento.Historical straight into a session",
    )
    p.add_argument(
        "--session-name",
        default="",
        metavar="NAME",
        help="a name for the session (islandflow replay NAME finds it)",
    )
    p.add_argument(
        "--raw-only",
        action="store_true",
        help="record the raw streams only (fast; replay computes flow as it plays, "
        "verify has nothing to compare)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, cfg: Config) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from islandflow_tui.engine.dbn_import import ImportFailure, import_databento, import_files

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    console = Console(stderr=True)
    if bool(args.paths) == bool(args.databento):
        print("islandflow import: give DBN file paths, or --databento (not both)", file=sys.stderr)
        return 2
    bar = Progress(
        TextColumn("[bold]download[/]" if args.databento else "[bold]import[/]"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}% of event time"),
        TextColumn("{task.fields[records]:>12,} records"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=args.quiet,
        transient=False,
    )
    task = bar.add_task("import", total=1.0, records=0)

    def progress(frac: float, records: int) -> None:
        bar.update(task, completed=frac, records=records)

    try:
        with bar:
            if args.databento:
                report = import_databento(cfg, name=args.session_name, progress=progress)
            else:
                report = import_files(
                    args.paths,
                    cfg,
                    name=args.session_name,
                    progress=progress,
                    raw_only=args.raw_only,
                )
    except ImportFailure as exc:
        print(f"islandflow import: {exc}", file=sys.stderr)
        return 2
    rejected = {f"{s}:{r}": n for s, rs in report.rejected.items() for r, n in rs.items()}
    print(f"session {report.session_id} {report.path}")
    if args.session_name:
        print(f"name {args.session_name}")
    print(
        f"{report.records:,} records in {report.seconds:.1f} s "
        f"({report.records_per_s:,.0f} records/s); "
        + ", ".join(f"{s} {n:,}" for s, n in report.accepted.items())
    )
    if report.unused:
        print(f"{report.unused:,} records carried no print or quote (bars, book adds, ...)")
    if report.open_interest:
        print(f"open interest for {report.open_interest:,} contract-days")
    if rejected:
        print("rejected: " + ", ".join(f"{k} {n:,}" for k, n in sorted(rejected.items())))
    return 0
