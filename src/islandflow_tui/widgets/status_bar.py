"""One-line status bar: feed health, event rates, rejections, drops, event-time clock.

It paints from an ``EngineStats`` snapshot handed to it on the repaint tick, never
from the engine directly, and it never reads the wall clock: the clock is the
engine's event-time watermark, so replays and snapshot tests show the market's time.

In a replay (``stats.replay`` set) the right-hand side reads
``REPLAY 09:31:05.250 ET 10x`` with a ``PAUSED`` or ``END`` badge (``MAX`` for as
fast as possible) and the feed section names the session.

At narrow widths it abbreviates in steps (drop ``/s``, drop the secondary
streams, drop the rejection reason, shorten the feed label) until it fits;
``status_text`` is a pure function so each step is testable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import ClassVar, Final
from zoneinfo import ZoneInfo

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import EngineStats
from islandflow_tui.engine.ingest.base import FeedStatus
from islandflow_tui.widgets.tape_view import compact_number

ET: Final = ZoneInfo("America/New_York")

# Streams in the order shown, with their short names; the first three survive
# every abbreviation step.
RATE_LABELS: Final[tuple[tuple[str, str], ...]] = (
    (ev.OPTIONS_PRINTS, "opt"),
    (ev.OPTIONS_NBBO, "nbbo"),
    (ev.EQUITIES_PRINTS, "eq"),
    (ev.EQUITIES_QUOTES, "eqq"),
    (ev.OPTIONS_ENRICHED, "enr"),
)
_PRIMARY_RATES: Final = 3

_STATE_CLASS: Final[dict[FeedStatus, str]] = {
    FeedStatus.LIVE: "status--ok",
    FeedStatus.FINISHED: "status--ok",
    FeedStatus.CONNECTING: "status--warn",
    FeedStatus.RECONNECTING: "status--warn",
    FeedStatus.STOPPED: "status--muted",
}

Part = tuple[str, str]  # (text, component class)


def et_clock(watermark_ns: int) -> str:
    """Event-time clock as ``HH:MM:SS ET`` (dashes before the first event)."""
    if watermark_ns <= 0:
        return "--:--:-- ET"
    moment = datetime.fromtimestamp(watermark_ns / 1e9, tz=UTC).astimezone(ET)
    return moment.strftime("%H:%M:%S ET")


def replay_clock(position_ns: int) -> str:
    """Replay position as ``HH:MM:SS.mmm ET``."""
    if position_ns <= 0:
        return "--:--:--.--- ET"
    moment = datetime.fromtimestamp(position_ns / 1e9, tz=UTC).astimezone(ET)
    return f"{moment:%H:%M:%S}.{position_ns // ev.NS_PER_MS % 1000:03d} ET"


def speed_label(speed: float | None) -> str:
    """``0.25x``, ``10x``, ``1000x`` or ``MAX``."""
    return "MAX" if speed is None else f"{speed:g}x"


def _feed_parts(stats: EngineStats, level: int) -> list[Part]:
    if stats.replay is not None:
        return _replay_feed_parts(stats, level)
    status = stats.feed_state.status
    cls = "status--error" if stats.error else _STATE_CLASS.get(status, "status--error")
    label = stats.feed
    if level >= 3 and "/" in label:
        label = label.split("/", 1)[1]  # "synthetic/firehose" -> "firehose"
    state = "error" if stats.error else str(status)
    parts: list[Part] = [(label, "status--label"), (" ", ""), ("● " + state, cls)]
    detail = stats.feed_state.detail
    if detail and status in _DETAIL_STATES and not stats.error and level < 3:
        limit = 40 if level == 0 else 24
        if len(detail) > limit:
            detail = detail[: limit - 1] + "…"
        parts.append((f" {detail}", "status--muted"))
    return parts


#: states whose detail (attempt and delay, the vendor's reason) is worth the room
_DETAIL_STATES: Final = frozenset(
    {
        FeedStatus.CONNECTING,
        FeedStatus.RECONNECTING,
        FeedStatus.AUTH_FAILED,
        FeedStatus.SUBSCRIPTION_LIMIT,
        FeedStatus.FAILED,
    }
)


def _gap_parts(stats: EngineStats, level: int) -> list[Part]:
    """``gap 2 14:31:02-14:31:09 ET (7.0s): reason``: data the feed lost, never hidden."""
    if not stats.gaps:
        return []
    parts: list[Part] = [(f"gap {stats.gaps}", "status--warn")]
    if level < 2 and stats.last_gap:
        line = stats.last_gap.removeprefix("gap ")
        limit = 44 if level == 0 else 22
        if len(line) > limit:
            line = line[: limit - 1] + "…"
        parts.append((f" {line}", "status--muted"))
    return parts


def _replay_feed_parts(stats: EngineStats, level: int) -> list[Part]:
    """``replay <session>``; the session name goes first when space is short."""
    parts: list[Part] = [("replay", "status--label")]
    if level < 3:
        parts += [(" ", ""), (stats.replay.session, "status--muted")]
    if stats.error or stats.feed_state.status == FeedStatus.FAILED:
        parts += [(" ", ""), ("● error", "status--error")]
    return parts


def _replay_right_parts(stats: EngineStats) -> list[Part]:
    replay = stats.replay
    parts: list[Part] = [
        (" REPLAY ", "status--replay"),
        (" ", ""),
        (replay_clock(replay.position_ns), "status--clock"),
        (" ", ""),
        (speed_label(replay.speed), "status--value"),
    ]
    if replay.finished:
        parts += [(" ", ""), (" END ", "status--end")]
    elif replay.paused:
        parts += [(" ", ""), (" PAUSED ", "status--paused")]
    return parts


def _rate_parts(stats: EngineStats, level: int) -> list[Part]:
    labels = RATE_LABELS if level < 2 else RATE_LABELS[:_PRIMARY_RATES]
    unit = "/s" if level < 1 else ""
    parts: list[Part] = []
    for stream, short in labels:
        if parts:
            parts.append((" ", ""))
        rate = stats.rates.get(stream, 0.0)
        parts.append((f"{short} ", "status--muted"))
        parts.append((compact_number(rate) + unit, "status--value"))
    return parts


def _reject_parts(stats: EngineStats, level: int) -> list[Part]:
    if not stats.rejected_total:
        return [("rej 0", "status--muted")] if level < 3 else []
    parts: list[Part] = [(f"rej {compact_number(stats.rejected_total)}", "status--warn")]
    if level < 2 and stats.last_rejection:
        reason = stats.last_rejection
        limit = 28 if level == 0 else 16
        if len(reason) > limit:
            reason = reason[: limit - 1] + "…"
        parts.append((f" {reason}", "status--muted"))
    return parts


def _drop_parts(stats: EngineStats, level: int) -> list[Part]:
    if not stats.display_gap:
        return [("drop 0", "status--muted")] if level < 2 else []
    return [(f"drop {compact_number(stats.display_gap)}", "status--warn")]


def _extra_parts(stats: EngineStats, level: int) -> list[Part]:
    """Engine counters that are not rejections (``candles late: 3 updated, 1 dropped``):
    counted input the engine could not use in full is shown, never silent."""
    parts: list[Part] = []
    for key, value in sorted(stats.extra.items()):
        if parts:
            parts.append((" ", ""))
        parts.append((key if level >= 2 else f"{key}: {value}", "status--warn"))
    return parts


SECTIONS: Final[tuple[Callable[[EngineStats, int], list[Part]], ...]] = (
    _feed_parts,
    _gap_parts,
    _rate_parts,
    _reject_parts,
    _drop_parts,
    _extra_parts,
)
LEVELS: Final = 5
DIVIDER: Final = " │ "


def status_parts(
    stats: EngineStats, *, paused: bool, level: int, notes: Sequence[str] = ()
) -> tuple[list[Part], list[Part]]:
    """(left, right) parts at abbreviation ``level`` (0 = everything).

    ``notes`` are short warnings from the screen (e.g. ``eq quiet 31s``); they sit
    on the right with the clock so abbreviation never hides them.  In a replay the
    right side is the replay's own state and ``paused`` (the tape's freeze, shown
    in the tape's header) is not repeated.
    """
    left: list[Part] = []
    for section in SECTIONS:
        parts = section(stats, level)
        if not parts:
            continue
        if left:
            left.append((DIVIDER if level < 4 else " ", "status--muted"))
        left.extend(parts)
    right: list[Part] = []
    for note in notes:
        right.append((note + " ", "status--warn"))
    if stats.error:
        right.append(("ENGINE ERROR ", "status--error"))
    if stats.replay is not None:
        right.extend(_replay_right_parts(stats))
        return left, right
    if paused:
        right.append((" PAUSED ", "status--paused"))
        right.append((" ", ""))
    right.append((et_clock(stats.watermark_ns), "status--clock"))
    return left, right


def status_text(
    stats: EngineStats,
    *,
    paused: bool,
    width: int,
    notes: Sequence[str] = (),
    style: Callable[[str], Style | str] = lambda _cls: "",
) -> Text:
    """The status line for ``width`` cells: the most detail that fits."""
    for level in range(LEVELS):
        left, right = status_parts(stats, paused=paused, level=level, notes=notes)
        used = sum(cell_len(t) for t, _ in left) + sum(cell_len(t) for t, _ in right)
        if used + 1 <= width or level == LEVELS - 1:
            break
    text = Text(no_wrap=True, overflow="ellipsis")
    for part, cls in left:
        text.append(part, style(cls) if cls else "")
    pad = max(1, width - used)
    text.append(" " * pad)
    for part, cls in right:
        text.append(part, style(cls) if cls else "")
    if text.cell_len > width:  # the last resort: keep the right-hand side (clock, PAUSED)
        text = text[text.cell_len - width :]
    return text


class StatusBar(Widget):
    """Paints ``status_text`` for its width from the last stats it was given."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "status--label",
        "status--ok",
        "status--warn",
        "status--error",
        "status--muted",
        "status--value",
        "status--paused",
        "status--clock",
        "status--replay",
        "status--end",
    }

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
    }
    StatusBar > .status--replay { background: $accent; color: $background; text-style: bold; }
    StatusBar > .status--end { background: $secondary; color: $background; text-style: bold; }
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.stats: EngineStats | None = None
        self.paused = False
        self.notes: tuple[str, ...] = ()

    def show(self, stats: EngineStats, *, paused: bool, notes: Sequence[str] = ()) -> None:
        """Repaint only if something visible changed (rates move every tick, so usually)."""
        notes = tuple(notes)
        if stats != self.stats or paused != self.paused or notes != self.notes:
            self.stats = stats
            self.paused = paused
            self.notes = notes
            self.refresh()

    def render(self) -> Text:
        if self.stats is None:
            return Text("starting…")
        return status_text(
            self.stats,
            paused=self.paused,
            width=self.content_region.width,
            notes=self.notes,
            style=self.get_component_rich_style,
        )

    @property
    def plain(self) -> str:
        """The text currently shown, without styles (for tests)."""
        return self.render().plain
