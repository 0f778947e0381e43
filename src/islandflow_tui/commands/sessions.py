"""``islandflow sessions [--json]``: the recorded sessions, oldest first.

People get a table (id, start in UTC, duration, the first event time of the data,
status, size on disk, events per stream in compact form); scripts get ``--json``:
a list of objects, each with an ``id`` field, in the same order.  Listing never
changes anything on disk (interrupted sessions are shown as such; the next
recording run recovers them).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from islandflow_tui.config import Config


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sessions",
        help="list recorded sessions, oldest first",
        description=(
            "List the sessions under the data dir, oldest first: id, start (UTC), duration, "
            "status, events per stream and size on disk."
        ),
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of objects (one per session, each with an id field)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, cfg: Config) -> int:
    from islandflow_tui.engine.log import list_sessions, sessions_root

    infos = list_sessions(cfg.data_path())
    if args.json:
        json.dump([i.as_json() for i in infos], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not infos:
        print(f"no sessions under {sessions_root(cfg.data_path())}")
        return 0
    rows = [
        (
            i.id,
            i.start.strftime("%Y-%m-%d %H:%M:%S") if i.start else "?",
            duration_text(i.duration_s),
            event_time_text(i.first_ts),
            i.status,
            size_text(i.bytes_on_disk),
            events_text(i.events),
        )
        for i in infos
    ]
    head = ("ID", "START (UTC)", "DURATION", "DATA FROM (UTC)", "STATUS", "SIZE", "EVENTS")
    last = len(head) - 1
    widths = [max(len(r[k]) for r in (head, *rows)) for k in range(last)]
    size = head.index("SIZE")
    for r in (head, *rows):
        cells = [r[k].ljust(widths[k]) if k != size else r[k].rjust(widths[k]) for k in range(last)]
        print("  ".join([*cells, r[last]]).rstrip())
    return 0


def event_time_text(ts: int | None) -> str:
    """First event time of a session (an import's data can be years before its start)."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def size_text(n: int) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def count_text(n: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def events_text(events: dict[str, int]) -> str:
    """``OP 1.2M  OQ 2.5M  EP 149.0k ...``: every stream with events, in stream order."""
    from islandflow_tui.engine import events as ev

    order = sorted(events, key=lambda s: (ev.STREAM_ORDER.get(s, 99), s))
    parts = [f"{ev.STREAM_TAG.get(s, s)} {count_text(events[s])}" for s in order if events[s]]
    return "  ".join(parts) or "-"
