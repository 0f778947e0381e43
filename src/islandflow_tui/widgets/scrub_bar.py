"""The replay scrub bar, and the replay keys any live screen mixes in.

``ScrubBar`` is three lines painted from attributes its screen sets (attributes
down); clicking it, or dragging along it and letting go, posts ``ScrubBar.Seek``
(messages up).  While a drag is held the head and its time label follow the
pointer without seeking: a seek restores a checkpoint and fast-forwards, so one per
pointer move would queue dozens; the one on release is the one that matters::

    ◆ ◆◆   ◆     ▼    ◆   ◆◆              alerts (◆) and the play head (▼)
    ▂▃▅▇█▆▅▃▂▂▃▅▆▇▇█▆▅▃▂▁▁▂▃▄▅▆▇█▇▆▅▄▃▂   option prints per column over the session
    09:30:00      09:31:05         09:32:30   start, position, end (New York time)

It spans the whole recorded session; a ``--from``/``--to`` range dims what lies
outside it.  The density arrives for some width and is resampled to the current
one, so a resize never shows an empty bar while the exact bins load.

``ReplayControls`` holds the replay key map (space, ``[`` ``]``, arrows, ``{`` ``}``,
``g``, ``n`` ``N``, home/end) for a screen: the keys exist only while the engine
reports a replay (``check_action``), so a live session keeps its own keys.
Repeated step keys are coalesced: the first press goes at once, further presses
within ``STEP_DEBOUNCE_S`` add up into one step, so holding ``→`` costs a handful
of seeks per second instead of one per key repeat.  The density and the alert
times are read from the session in a thread worker and cached per width.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final
from zoneinfo import ZoneInfo

import numpy as np
from rich.style import Style
from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.events import Click, MouseDown, MouseMove, MouseUp
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from islandflow_tui.engine import events as ev
from islandflow_tui.widgets.prompt import PromptScreen

if TYPE_CHECKING:
    from islandflow_tui.engine.core import EngineStats
    from islandflow_tui.engine.replay import ReplayState

ET: Final = ZoneInfo("America/New_York")
BLOCKS: Final = " ▁▂▃▄▅▆▇█"
ALERT_GLYPH: Final = "◆"
HEAD_GLYPH: Final = "▼"
HEAD_BLOCK: Final = "█"
STEP_DEBOUNCE_S: Final = 0.1


def et_time(ts_ns: int, *, ms: bool = False) -> str:
    """``09:31:05`` (or ``09:31:05.250``) New York time."""
    moment = datetime.fromtimestamp(ts_ns / 1e9, tz=ET)
    text = moment.strftime("%H:%M:%S")
    return f"{text}.{ts_ns // ev.NS_PER_MS % 1000:03d}" if ms else text


def resample(density: np.ndarray, width: int) -> np.ndarray:
    """Counts per bin -> counts per column (sums when shrinking, repeats when growing)."""
    n = len(density)
    if width <= 0:
        return np.zeros(0, dtype=np.float64)
    if n == width:
        return density.astype(np.float64)
    if n == 0:
        return np.zeros(width, dtype=np.float64)
    if n > width:
        idx = np.arange(n, dtype=np.int64) * width // n
        return np.bincount(idx, weights=density.astype(np.float64), minlength=width)
    return density[np.arange(width, dtype=np.int64) * n // width].astype(np.float64)


def sparkline(values: np.ndarray) -> str:
    """One block character per value, scaled to the largest; zero stays blank."""
    if len(values) == 0:
        return ""
    top = float(values.max())
    if top <= 0:
        return " " * len(values)
    levels = np.where(values > 0, np.maximum(1, np.ceil(values * 8 / top)), 0).astype(int)
    return "".join(BLOCKS[level] for level in levels)


def column_of(ts_ns: int, start_ns: int, end_ns: int, width: int) -> int:
    """The column showing ``ts_ns`` on a bar of ``width`` spanning ``[start, end)``."""
    span = end_ns - start_ns
    if width <= 0 or span <= 0:
        return 0
    return max(0, min(width - 1, (ts_ns - start_ns) * width // span))


def ts_of(column: int, start_ns: int, end_ns: int, width: int) -> int:
    """The first time shown in ``column`` (column 0 is the session start)."""
    if width <= 0:
        return start_ns
    column = max(0, min(width - 1, column))
    return start_ns - (-(end_ns - start_ns) * column // width)  # ceiling: column_of inverts it


class ScrubBar(Widget):
    """Activity density over the session, alert markers, the play head and time labels."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "scrub--played",
        "scrub--ahead",
        "scrub--outside",
        "scrub--head",
        "scrub--marker",
        "scrub--alert",
        "scrub--label",
        "scrub--position",
    }

    DEFAULT_CSS = """
    ScrubBar {
        height: 3;
        padding: 0 1;
        background: $surface;
        color: $foreground;
    }
    ScrubBar > .scrub--played { color: $primary; }
    ScrubBar > .scrub--ahead { color: $text-muted; }
    ScrubBar > .scrub--outside { color: $panel-lighten-1; }
    ScrubBar > .scrub--head { color: $accent; }
    ScrubBar > .scrub--marker { color: $accent; text-style: bold; }
    ScrubBar > .scrub--alert { color: $warning; }
    ScrubBar > .scrub--label { color: $text-muted; }
    ScrubBar > .scrub--position { color: $accent; text-style: bold; }
    """

    #: events per bin over ``[start_ns, end_ns)`` (any number of bins; resampled)
    density: reactive[tuple[int, ...]] = reactive(())
    #: alert times (ns), sorted
    alerts: reactive[tuple[int, ...]] = reactive(())
    #: the span the bar draws: the whole session
    start_ns: reactive[int] = reactive(0)
    end_ns: reactive[int] = reactive(0)
    #: the play head
    position_ns: reactive[int] = reactive(0)
    #: the replay's ``--from`` / ``--to`` range (0 = the span's own edge)
    play_from_ns: reactive[int] = reactive(0)
    play_to_ns: reactive[int] = reactive(0)
    #: where a held drag points (-1: no drag); drawn as the head until release
    drag_ns: reactive[int] = reactive(-1)

    @dataclass
    class Seek(Message):
        """The user clicked the bar: go to ``ts_ns``."""

        bar: ScrubBar
        ts_ns: int

        @property
        def control(self) -> ScrubBar:
            return self.bar

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._marks: tuple[tuple[int, int, int, int], np.ndarray] | None = None

    # -- geometry ---------------------------------------------------------------
    @property
    def bar_width(self) -> int:
        return self.content_region.width

    def column_of(self, ts_ns: int) -> int:
        return column_of(ts_ns, self.start_ns, self.end_ns, self.bar_width)

    def ts_of(self, column: int) -> int:
        return ts_of(column, self.start_ns, self.end_ns, self.bar_width)

    def _alert_columns(self, width: int) -> np.ndarray:
        key = (len(self.alerts), self.start_ns, self.end_ns, width)
        if self._marks is None or self._marks[0] != key:
            times = np.asarray(self.alerts, dtype=np.int64)
            span = self.end_ns - self.start_ns
            if span <= 0 or width <= 0 or len(times) == 0:
                cols = np.zeros(0, dtype=np.int64)
            else:
                inside = times[(times >= self.start_ns) & (times < self.end_ns)]
                cols = np.unique((inside - self.start_ns) * width // span)
            self._marks = (key, cols)
        return self._marks[1]

    # -- input ------------------------------------------------------------------
    def on_mouse_down(self, event: MouseDown) -> None:
        offset = event.get_content_offset(self)
        if offset is None or self.end_ns <= self.start_ns or event.button != 1:
            return
        event.stop()
        self.capture_mouse()
        self.drag_ns = self.ts_of(offset.x)

    def on_mouse_move(self, event: MouseMove) -> None:
        if self.drag_ns < 0:
            return
        event.stop()
        # captured: the pointer may leave the bar; clamp to its ends
        self.drag_ns = self.ts_of(event.get_content_offset_capture(self).x)

    def on_mouse_up(self, event: MouseUp) -> None:
        if self.drag_ns < 0:
            return
        event.stop()
        self.release_mouse()
        target = self.ts_of(event.get_content_offset_capture(self).x)
        self.drag_ns = -1
        self.post_message(self.Seek(self, target))

    def on_click(self, event: Click) -> None:
        event.stop()  # the seek went with the button's release

    @property
    def head_ns(self) -> int:
        """The time the head shows: the drag target while dragging, else the play head."""
        return self.drag_ns if self.drag_ns >= 0 else self.position_ns

    # -- painting ---------------------------------------------------------------
    def render(self) -> Text:
        width = self.bar_width
        if width <= 0:
            return Text()
        style = self.get_component_rich_style
        head = self.column_of(self.head_ns)
        lines = [
            self._marker_line(width, head, style),
            self._spark_line(width, head, style),
            self._label_line(width, head, style),
        ]
        return Text("\n", no_wrap=True).join(lines)

    def _marker_line(self, width: int, head: int, style: Any) -> Text:
        cells = [" "] * width
        for col in self._alert_columns(width):
            cells[int(col)] = ALERT_GLYPH
        line = Text(no_wrap=True)
        alert = style("scrub--alert")
        for col, char in enumerate(cells):
            if col == head:
                line.append(HEAD_GLYPH, style("scrub--marker"))
            else:
                line.append(char, alert if char != " " else "")
        return line

    def _spark_line(self, width: int, head: int, style: Any) -> Text:
        chars = sparkline(resample(np.asarray(self.density, dtype=np.int64), width))
        chars = chars.ljust(width)
        chars = chars[:head] + HEAD_BLOCK + chars[head + 1 :]
        lo = self.column_of(self.play_from_ns) if self.play_from_ns else 0
        hi = self.column_of(self.play_to_ns - 1) if self.play_to_ns else width - 1
        line = Text(no_wrap=True)
        classes = [
            "scrub--outside"
            if col < lo or col > hi
            else ("scrub--played" if col < head else "scrub--ahead")
            for col in range(width)
        ]
        classes[head] = "scrub--head"
        run_start = 0
        for col in range(1, width + 1):  # one span per run of equal style
            if col == width or classes[col] != classes[run_start]:
                line.append(chars[run_start:col], style(classes[run_start]))
                run_start = col
        return line

    def _label_line(self, width: int, head: int, style: Any) -> Text:
        if self.end_ns <= self.start_ns:
            return Text(" " * width)
        pos = et_time(self.head_ns)
        start = et_time(self.start_ns)
        end = et_time(self.end_ns)
        cells: list[tuple[str, Style | str]] = [(" ", "")] * width
        p0 = max(0, min(width - len(pos), head - len(pos) // 2))
        p1 = p0 + len(pos)

        def put(text: str, at: int, cls: str) -> None:
            for i, char in enumerate(text):
                if 0 <= at + i < width:
                    cells[at + i] = (char, style(cls))

        if len(start) < p0:  # leave a gap of at least one cell beside the position
            put(start, 0, "scrub--label")
        if width - len(end) > p1:
            put(end, width - len(end), "scrub--label")
        put(pos, p0, "scrub--position")
        line = Text(no_wrap=True)
        for char, cell_style in cells:
            line.append(char, cell_style)
        return line


@dataclass
class ScrubData(Message):
    """What the scrub bar needs from the session, read in a thread worker."""

    path: str
    width: int
    start_ns: int
    end_ns: int
    density: np.ndarray
    alerts: np.ndarray


def load_scrub_data(path: str, width: int) -> ScrubData:
    """The session's span, option-print density in ``width`` bins and alert times."""
    from islandflow_tui.engine.log import SessionReader
    from islandflow_tui.engine.replay import ReplaySource, session_alert_times, session_density

    source = ReplaySource(SessionReader(path))
    density = session_density(path, width)
    alerts = session_alert_times(path)
    return ScrubData(path, width, source.first_ts, source.last_ts + 1, density, alerts)


# ---------------------------------------------------------------------------
# The replay keys
# ---------------------------------------------------------------------------
REPLAY_BINDINGS: Final[list[BindingType]] = [
    Binding(
        "space",
        "replay_toggle",
        "Play/Pause",
        id="replay.play_pause",
        tooltip="Play or pause the replay (at the end, play starts again from the beginning)",
    ),
    Binding(
        "left_square_bracket",
        "replay_speed('slower')",
        "Slower",
        show=False,
        id="replay.slower",
        tooltip="Slower: one step down the speed ladder (max, 1000x … 0.25x)",
    ),
    Binding(
        "right_square_bracket",
        "replay_speed('faster')",
        "Faster",
        show=False,
        id="replay.faster",
        tooltip="Faster: one step up the speed ladder (0.25x … 1000x, then max)",
    ),
    Binding(
        "left",
        "replay_step(-1)",
        "-1s",
        show=False,
        id="replay.back",
        tooltip="Step back one second of event time",
    ),
    Binding(
        "right",
        "replay_step(1)",
        "+1s",
        show=False,
        id="replay.forward",
        tooltip="Step forward one second of event time",
    ),
    Binding(
        "shift+left",
        "replay_step(-10)",
        "-10s",
        show=False,
        id="replay.back_10s",
        tooltip="Step back ten seconds",
    ),
    Binding(
        "shift+right",
        "replay_step(10)",
        "+10s",
        show=False,
        id="replay.forward_10s",
        tooltip="Step forward ten seconds",
    ),
    Binding(
        "left_curly_bracket",
        "replay_step(-60)",
        "-1m",
        show=False,
        id="replay.back_1m",
        tooltip="Step back one minute",
    ),
    Binding(
        "right_curly_bracket",
        "replay_step(60)",
        "+1m",
        show=False,
        id="replay.forward_1m",
        tooltip="Step forward one minute",
    ),
    Binding(
        "g",
        "replay_goto",
        "Go to",
        priority=True,  # over the tape's own g (scroll to top)
        id="replay.goto",
        tooltip="Go to a time: HH:MM[:SS] New York on the session's day, ISO-8601 or +SECONDS",
    ),
    Binding(
        "n",
        "replay_jump('next_alert')",
        "Next alert",
        show=False,
        id="replay.next_alert",
        tooltip="Jump to just after the next alert",
    ),
    Binding(
        "N",
        "replay_jump('prev_alert')",
        "Prev alert",
        show=False,
        id="replay.prev_alert",
        tooltip="Jump back to the previous alert",
    ),
    Binding(
        "home",
        "replay_jump('home')",
        "Start",
        show=False,
        priority=True,  # over the tape's own home (scroll to top)
        id="replay.home",
        tooltip="Go to the start of the replay",
    ),
    Binding(
        "end",
        "replay_jump('end')",
        "End",
        show=False,
        priority=True,  # over the tape's own end (scroll to bottom)
        id="replay.end",
        tooltip="Go to the end of the replay",
    ),
]


class ReplayControls:
    """Replay keys, scrub bar feeding and seeks for a live screen (a mixin).

    The screen composes a ``ScrubBar``, calls ``update_replay(stats)`` from its
    ``repaint`` and lists ``LIVE_ONLY_ACTIONS`` whose keys replay takes over.
    It may override ``follow_live`` to return its views to the live edge when
    the replay plays or jumps.
    """

    #: actions whose keys the replay keys replace while replaying
    LIVE_ONLY_ACTIONS: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._replay: ReplayState | None = None
        self._scrub_bar: ScrubBar | None = None
        self._scrub_cache: dict[tuple[str, int], ScrubData] = {}
        self._scrub_loading: tuple[str, int] | None = None
        self._scrub_shown: ScrubData | None = None
        self._step_ns = 0
        self._step_sent = 0.0
        self._step_timer: Timer | None = None

    # the Screen API this mixin relies on
    if TYPE_CHECKING:
        app: Any

        def notify(self, message: str, **kwargs: Any) -> None: ...
        def refresh_bindings(self) -> None: ...
        def set_timer(self, delay: float, callback: Any) -> Timer: ...
        def post_message(self, message: Message) -> bool: ...

    # -- state ------------------------------------------------------------------
    @property
    def replaying(self) -> bool:
        return self._replay is not None

    @property
    def replay_state(self) -> ReplayState | None:
        return self._replay

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action.startswith("replay_"):
            return self.replaying
        if action in self.LIVE_ONLY_ACTIONS:
            return not self.replaying
        return super().check_action(action, parameters)  # type: ignore[misc]

    def follow_live(self) -> None:
        """Return the screen's views to the live edge (a play or a jump wants to be seen)."""

    def update_replay(self, stats: EngineStats | None) -> None:
        """From the repaint tick: show or hide the bar, move its head, load its data."""
        state = stats.replay if stats is not None else None
        bar = self._scrub_bar
        if (state is None) != (self._replay is None):
            self._replay = state
            self.refresh_bindings()
            if bar is not None:
                bar.display = state is not None
        self._replay = state
        if state is None or bar is None:
            return
        bar.position_ns = state.position_ns
        if self._scrub_shown is None:  # until the session's own span is known
            bar.start_ns, bar.end_ns = state.start_ns, state.end_ns
        bar.play_from_ns, bar.play_to_ns = state.start_ns, state.end_ns
        width = bar.bar_width
        key = (state.path, width)
        if width > 0 and key not in self._scrub_cache and key != self._scrub_loading:
            self._scrub_loading = key
            self._load_scrub(state.path, width)

    @work(thread=True, exclusive=True, group="replay-scrub", exit_on_error=False)
    def _load_scrub(self, path: str, width: int) -> None:
        self.post_message(load_scrub_data(path, width))

    def on_scrub_data(self, message: ScrubData) -> None:
        """A worker read the session (named handler: ``@on`` needs a MessagePump class)."""
        self._scrub_cache[(message.path, message.width)] = message
        if self._scrub_loading == (message.path, message.width):
            self._scrub_loading = None
        bar = self._scrub_bar
        if bar is None or (self._scrub_shown is not None and message.width != bar.bar_width):
            return  # a superseded width: cached, but the bar keeps what it shows
        self._scrub_shown = message
        bar.start_ns, bar.end_ns = message.start_ns, message.end_ns
        bar.density = tuple(int(v) for v in message.density)
        bar.alerts = tuple(int(v) for v in message.alerts)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "replay-scrub" and event.state == WorkerState.ERROR:
            self._scrub_loading = None
            self.notify(
                f"scrub bar: cannot read the session: {event.worker.error}", severity="error"
            )

    # -- controls -----------------------------------------------------------------
    def _control(self, command: str, arg: Any = None) -> None:
        try:
            self.app.engine.control(command, arg)
        except ValueError as exc:
            self.notify(str(exc), severity="error")

    def _discard_steps(self) -> None:
        self._step_ns = 0
        if self._step_timer is not None:
            self._step_timer.stop()
            self._step_timer = None

    def flush_steps(self) -> None:
        """Send the steps pressed so far as one ``step`` (the debounce timer calls this)."""
        if self._step_timer is not None:
            self._step_timer.stop()
            self._step_timer = None
        if self._step_ns:
            step, self._step_ns = self._step_ns, 0
            self._step_sent = time.monotonic()
            self.follow_live()
            self._control("step", step)

    def action_replay_toggle(self) -> None:
        state = self._replay
        if state is not None and state.finished:  # play at the end starts again
            self._discard_steps()
            self.follow_live()
            self._control("home")
            self._control("play")
            return
        if state is not None and state.paused:
            self.follow_live()
        self._control("toggle")

    def action_replay_speed(self, direction: str) -> None:
        self._control("faster" if direction == "faster" else "slower")

    def action_replay_step(self, seconds: float) -> None:
        self._step_ns += int(seconds * ev.NS_PER_S)
        wait = STEP_DEBOUNCE_S - (time.monotonic() - self._step_sent)
        if wait <= 0 and self._step_timer is None:
            self.flush_steps()
        elif self._step_timer is None:
            self._step_timer = self.set_timer(max(wait, 0.0), self.flush_steps)

    def action_replay_jump(self, command: str) -> None:
        """home / end (absolute: pending steps are dropped) or next/previous alert."""
        if command in ("home", "end"):
            self._discard_steps()
        else:
            self.flush_steps()
            if not self._alert_exists(command):
                where = "after" if command == "next_alert" else "before"
                self.notify(f"no alert {where} the play head")
                return
        self.follow_live()
        self._control(command)

    def _alert_exists(self, command: str) -> bool:
        data, state = self._scrub_shown, self._replay
        if data is None or state is None:
            return True  # not known yet: let the engine decide
        pos = state.position_ns
        if command == "next_alert":
            return bool(np.searchsorted(data.alerts, pos, side="right") < len(data.alerts))
        # as the engine: the newest alert before the one the head is just past
        return bool(np.searchsorted(data.alerts, pos - 1, side="left") >= 1)

    def seek(self, ts_ns: int) -> None:
        self._discard_steps()
        self.follow_live()
        self._control("seek", int(ts_ns))

    def on_scrub_bar_seek(self, message: ScrubBar.Seek) -> None:
        message.stop()
        self.seek(message.ts_ns)

    def action_replay_goto(self) -> None:
        state = self._replay
        if state is None:
            return
        shown = self._scrub_shown
        first = shown.start_ns if shown is not None else state.start_ns
        last = shown.end_ns if shown is not None else state.end_ns

        def parse(text: str) -> int | None:
            from islandflow_tui.engine.session import parse_time

            ts = parse_time(text, first)
            if ts is not None and not first <= ts <= last:
                raise ValueError(
                    f"time {text.strip()!r} is outside the session "
                    f"({et_time(first)}–{et_time(last)} ET)"
                )
            return ts

        def apply(ts: int | None) -> None:
            if ts is not None:
                self.seek(ts)

        self.app.push_screen(
            PromptScreen(
                "Go to time",
                parse,
                value=et_time(state.position_ns),
                placeholder="09:45, 09:45:30, 2025-11-25T14:45:00Z or +90",
                hint="New York time on the session's day · enter jumps · escape cancels",
            ),
            apply,
        )
