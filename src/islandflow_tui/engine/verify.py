"""Determinism check: replay a session's raw streams and compare with what was recorded.

``islandflow verify SESSION`` runs the raw streams through a fresh engine (with the
compute config the session was recorded with) in one-second windows, then
compares every derived stream row by row on seq: a row matches when every column
is equal.  Any mismatched, missing or extra row is a difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.log import SessionReader
from islandflow_tui.engine.replay import MAX_CHUNK_NS, ReplaySource
from islandflow_tui.engine.session import with_session_compute_config


@dataclass(frozen=True, slots=True)
class StreamCheck:
    stream: str
    recorded: int
    replayed: int
    matched: int
    mismatched: int
    missing: int  # recorded but not produced by the replay
    extra: int  # produced by the replay but not recorded
    first_difference: int | None  # seq of the first differing row

    @property
    def ok(self) -> bool:
        return self.mismatched == 0 and self.missing == 0 and self.extra == 0


def replay_derived(cfg: Config, session: Path) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """Every derived stream as a replay of the session's raw streams computes it."""
    reader = SessionReader(session)
    source = ReplaySource(reader)
    engine = Engine(with_session_compute_config(cfg, session))
    out: dict[str, list[pl.DataFrame]] = {s: [] for s in ev.DERIVED_STREAMS}
    pos, end = source.first_ts, source.last_ts + 1
    while pos < end:
        t1 = source.step_end(pos, MAX_CHUNK_NS, end)
        for stream, frame in engine.ingest(
            ev.FeedBatch(source.window(pos, t1), t1, recorded=True)
        ).items():
            out[stream].append(frame)
        pos = t1
    for stream, frame in engine.flush().items():
        out[stream].append(frame)
    frames = {s: pl.concat(f) if f else ev.empty_frame(s) for s, f in out.items()}
    return frames, reader.warnings


def verify_session(cfg: Config, session: Path) -> tuple[list[StreamCheck], list[str]]:
    replayed, warnings = replay_derived(cfg, session)
    reader = SessionReader(session)
    checks = []
    for stream in ev.DERIVED_STREAMS:
        recorded = reader.read(stream).sort("seq")
        mine = replayed[stream].select(ev.SCHEMAS[stream].names).sort("seq")
        if recorded.height == 0 and mine.height == 0:
            continue
        checks.append(_compare(stream, recorded, mine))
    return checks, warnings + reader.warnings


def _compare(stream: str, recorded: pl.DataFrame, mine: pl.DataFrame) -> StreamCheck:
    rec = recorded.select(pl.col("seq"), recorded.hash_rows().alias("_h"))
    rep = mine.select(pl.col("seq"), mine.hash_rows().alias("_h"))
    both = rec.join(rep, on="seq", how="full", coalesce=True, suffix="_rep")
    matched = both.filter(pl.col("_h") == pl.col("_h_rep")).height
    mismatched_rows = both.filter(
        pl.col("_h").is_not_null()
        & pl.col("_h_rep").is_not_null()
        & (pl.col("_h") != pl.col("_h_rep"))
    )
    missing = both.filter(pl.col("_h_rep").is_null()).height
    extra = both.filter(pl.col("_h").is_null()).height
    diffs = both.filter(
        pl.col("_h").is_null() | pl.col("_h_rep").is_null() | (pl.col("_h") != pl.col("_h_rep"))
    )
    first = int(diffs["seq"].min()) if diffs.height else None  # type: ignore[arg-type]
    return StreamCheck(
        stream, recorded.height, mine.height, matched, mismatched_rows.height, missing, extra, first
    )
