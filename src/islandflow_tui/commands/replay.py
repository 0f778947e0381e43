"""``islandflow replay [SESSION] [--from TIME] [--to TIME] [--speed X]``: the TUI on a session."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from islandflow_tui.config import Config


def register(sub: Any) -> None:
    p = sub.add_parser(
        "replay",
        help="open the TUI on a recorded session (newest if none is named)",
        description=(
            "Replay a recorded session through the same engine as live, with scrubbing: "
            "space play/pause, [ ] slower/faster, left/right step 1 s (shift: 10 s), "
            "{ } -/+1 min, g go to a time, n/N next/previous alert, home/end."
        ),
    )
    p.add_argument("session", nargs="?", default="", help="session id or folder (default: newest)")
    p.add_argument(
        "--from",
        dest="ts_from",
        metavar="TIME",
        help="start at HH:MM[:SS] (New York, the session's day), ISO-8601 or +SECONDS",
    )
    p.add_argument("--to", dest="ts_to", metavar="TIME", help="stop at (same forms as --from)")
    p.add_argument("--speed", metavar="X", help="0.25 to 1000, or max (default 1)")
    p.add_argument("--paused", action="store_true", help="open paused")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, cfg: Config) -> int:
    from islandflow_tui.engine.log import SessionReader
    from islandflow_tui.engine.replay import ReplaySource
    from islandflow_tui.engine.session import (
        SessionNotFound,
        parse_speed,
        parse_time,
        resolve_session,
        with_session_compute_config,
    )

    try:
        path = resolve_session(cfg, args.session)
        first = ReplaySource(SessionReader(path)).first_ts
        if args.ts_from:
            parse_time(args.ts_from, first)
        if args.ts_to:
            parse_time(args.ts_to, first)
        if args.speed:
            parse_speed(args.speed)
    except (SessionNotFound, ValueError) as exc:
        print(f"islandflow replay: {exc}", file=sys.stderr)
        return 2
    if first == 0:
        print(f"islandflow replay: session {path.name} has no readable raw events", file=sys.stderr)
        return 2
    cfg = with_session_compute_config(cfg, path)
    cfg.feed.adapter = "replay"
    cfg.replay.session = str(path)
    cfg.replay.start = args.ts_from or cfg.replay.start
    cfg.replay.end = args.ts_to or cfg.replay.end
    cfg.replay.speed = args.speed or cfg.replay.speed
    cfg.replay.paused = args.paused or cfg.replay.paused

    from islandflow_tui.app import make_app

    app = make_app(cfg, tune_gc=True)
    app.run()
    return app.return_code or 0
