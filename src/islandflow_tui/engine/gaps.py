"""Feed gaps in a recorded session: ``gaps.jsonl`` next to the segments.

Why a side file and not a stream: a gap is rare metadata about the feed, not market
data; keeping it out of the stream schemas leaves the event log's format alone.  A
replay reads it back and hands each gap to the engine with the batch whose window
contains the gap's end, so the replay shows the gap where the live run did.
"""

from __future__ import annotations

import json
from pathlib import Path

from islandflow_tui.engine.events import FeedGap

GAPS_FILE = "gaps.jsonl"


def record_gap(session: Path, gap: FeedGap) -> None:
    line = json.dumps(
        {"feed": gap.feed, "start_ts": gap.start_ts, "end_ts": gap.end_ts, "reason": gap.reason}
    )
    with (session / GAPS_FILE).open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def load_gaps(session: Path) -> list[FeedGap]:
    """Gaps of a session, oldest first; unreadable lines are skipped (a torn last write)."""
    path = session / GAPS_FILE
    out: list[FeedGap] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            d = json.loads(line)
            out.append(
                FeedGap(str(d["feed"]), int(d["start_ts"]), int(d["end_ts"]), str(d["reason"]))
            )
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda g: g.end_ts)
