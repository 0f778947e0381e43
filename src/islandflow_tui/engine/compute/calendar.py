"""Event calendar (earnings, dividends, FOMC ...) as packet features, without look-ahead.

The file is the seed's ``SMART_MONEY_EVENT_CALENDAR_PATH``: a JSON list of rows (or
``{"events": [...]}``) where each row names its underlying with ``symbol``,
``underlying`` or ``underlying_id``; its time with ``event_ts``, ``event_time`` or
``event_date``; and when it became known with ``available_ts``, ``announced_ts``,
``as_of_ts`` or ``created_ts``.  An optional ``event_type`` / ``type`` / ``kind`` is
kept.  Times may be ISO-8601 strings (a bare date is midnight New York time) or epoch
numbers in s, ms, us or ns (told apart by magnitude).

No look-ahead: a packet only sees events whose availability time is at or before
the packet's ``ts`` (the moment it was decided).  A row with no availability time
cannot prove it was known, so it is never used (it is counted in ``skipped``), as the
seed specifies: missing or unavailable rows leave the features null.

Features on each packet:

* ``days_to_event``: New York calendar days from the packet's first print to the
  root's next known event (0 = today), null if none;
* ``event_before_expiry``: that event falls on or before the option's expiry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import polars as pl

NY: Final = ZoneInfo("America/New_York")
_ROOT_KEYS: Final = ("symbol", "underlying", "underlying_id")
_WHEN_KEYS: Final = ("event_ts", "event_time", "event_date")
_AVAIL_KEYS: Final = ("available_ts", "announced_ts", "as_of_ts", "created_ts")
_TYPE_KEYS: Final = ("event_type", "type", "kind")
SCHEMA: Final = {
    "root": pl.String,
    "event_date": pl.Date,
    "available_ts": pl.Int64,
    "event_type": pl.String,
}


def _epoch_ns(value: Any) -> int | None:
    """ns since the epoch of an ISO string or an epoch number; None if unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        x = abs(float(value))
        scale = 1 if x >= 1e17 else 1_000 if x >= 1e14 else 1_000_000 if x >= 1e11 else 10**9
        return value * scale if isinstance(value, int) else round(value * scale)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.lstrip("-").isdigit():
            return _epoch_ns(int(text))
        try:
            if len(text) == 10:
                d = date.fromisoformat(text)
                dt = datetime.combine(d, time(0, 0), tzinfo=NY)
            else:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
                if dt.tzinfo is None:
                    dt = dt.replace(tzinfo=UTC)
        except ValueError:
            return None
        delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    return None


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if row.get(k) not in (None, ""):
            return row[k]
    return None


@dataclass(frozen=True, slots=True)
class EventCalendar:
    """Parsed calendar rows (``SCHEMA``) and how many rows could not be used."""

    events: pl.DataFrame
    skipped: int = 0

    @classmethod
    def empty(cls) -> EventCalendar:
        return cls(pl.DataFrame(schema=SCHEMA))

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> EventCalendar:
        out: list[dict[str, Any]] = []
        skipped = 0
        for row in rows:
            if not isinstance(row, dict):
                skipped += 1
                continue
            root = _first(row, _ROOT_KEYS)
            when = _epoch_ns(_first(row, _WHEN_KEYS))
            avail = _epoch_ns(_first(row, _AVAIL_KEYS))
            if not isinstance(root, str) or when is None or avail is None:
                skipped += 1
                continue
            day = datetime.fromtimestamp(when / 1e9, tz=UTC).astimezone(NY).date()
            kind = _first(row, _TYPE_KEYS)
            out.append(
                {
                    "root": root.strip().upper(),
                    "event_date": day,
                    "available_ts": avail,
                    "event_type": str(kind) if kind is not None else None,
                }
            )
        frame = pl.DataFrame(out, schema=SCHEMA).sort("root", "event_date", "available_ts")
        return cls(frame, skipped)

    @classmethod
    def load(cls, path: str | Path) -> EventCalendar:
        """Read the JSON file; raises ValueError with one line if it is not a calendar."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"event calendar {path}: cannot read: {exc}") from None
        if isinstance(data, dict):
            data = data.get("events", data.get("rows"))
        if not isinstance(data, list):
            raise ValueError(f"event calendar {path}: expected a JSON list of event rows")
        return cls.from_rows(data)

    def features(self, packets: pl.DataFrame) -> pl.DataFrame:
        """days_to_event and event_before_expiry for packets with root, ts, _date, expiry."""
        n = packets.height
        if self.events.height == 0 or n == 0:
            return pl.DataFrame(
                {
                    "days_to_event": pl.Series([None] * n, dtype=pl.Int64),
                    "event_before_expiry": pl.Series([None] * n, dtype=pl.Boolean),
                }
            )
        left = packets.select(
            pl.int_range(0, n, dtype=pl.Int64).alias("_i"), "root", "ts", "_date", "expiry"
        )
        cand = (
            left.join(self.events, on="root", how="inner")
            .filter(
                (pl.col("available_ts") <= pl.col("ts")) & (pl.col("event_date") >= pl.col("_date"))
            )
            .group_by("_i")
            .agg(pl.col("event_date").min().alias("_next"))
        )
        joined = left.join(cand, on="_i", how="left").sort("_i")
        return joined.select(
            (pl.col("_next") - pl.col("_date"))
            .dt.total_days()
            .cast(pl.Int64)
            .alias("days_to_event"),
            pl.when(pl.col("_next").is_not_null())
            .then(pl.col("_next") <= pl.col("expiry"))
            .alias("event_before_expiry"),
        )
