"""``islandflow verify SESSION``: replay the raw streams and compare the derived ones."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from islandflow_tui.config import Config


def register(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="replay a session's raw streams and compare every derived stream with the recording",
    )
    p.add_argument("session", nargs="?", default="", help="session id or folder (default: newest)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, cfg: Config) -> int:
    from islandflow_tui.engine.session import SessionNotFound, resolve_session
    from islandflow_tui.engine.verify import verify_session

    try:
        path = resolve_session(cfg, args.session)
    except SessionNotFound as exc:
        print(f"islandflow verify: {exc}", file=sys.stderr)
        return 2
    checks, warnings = verify_session(cfg, path)
    for w in warnings:
        print(f"warning: {w}")
    print(f"session {path.name}")
    print(
        f"{'stream':<18}{'recorded':>10}{'replayed':>10}{'matched':>10}{'mismatched':>12}"
        f"{'missing':>9}{'extra':>7}  first difference (seq)"
    )
    for c in checks:
        first = "" if c.first_difference is None else str(c.first_difference)
        print(
            f"{c.stream:<18}{c.recorded:>10}{c.replayed:>10}{c.matched:>10}{c.mismatched:>12}"
            f"{c.missing:>9}{c.extra:>7}  {first}"
        )
    bad = [c for c in checks if not c.ok]
    if not checks:
        print("no derived streams recorded: nothing to compare")
        return 1
    print(
        "OK: replay reproduces every derived event"
        if not bad
        else f"DIFFERENT: {len(bad)} stream(s) differ"
    )
    return 1 if bad else 0
