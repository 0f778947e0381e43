"""The Dark screen: inferred dark-pool-style events beside the live off-exchange prints.

Left (top at 80 columns): ``dark.inferred`` newest first with a cursor, and under
it the chosen event in full (explanation, rule trace, evidence count).  Right
(bottom): every off-exchange print as it arrives, joined to the quote in force
(placement, retail flag).  ``enter`` opens the chosen event's evidence through
``app.open_evidence(event_id)`` (the Evidence screen).

Like the Tape screen it holds no data: the app's ``EquityScreensData`` owns the
models and the filter, this screen turns keys into changes and repaints on the
app's tick.  In a replay the ``ReplayControls`` keys take over space/g/home/end.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, Final, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Static

from islandflow_tui.engine.core import EngineStats
from islandflow_tui.widgets.dark_model import (
    DARK_COLUMNS,
    OFFEX_COLUMNS,
    DarkFilter,
    format_dark_rows,
    format_offex_rows,
)
from islandflow_tui.widgets.dark_view import DarkDetail, DarkEventsView
from islandflow_tui.widgets.filter_line import filter_line, joined_or_all
from islandflow_tui.widgets.prompt import symbols_prompt, when_given
from islandflow_tui.widgets.scrub_bar import REPLAY_BINDINGS, ReplayControls, ScrubBar
from islandflow_tui.widgets.status_bar import StatusBar
from islandflow_tui.widgets.tape_view import TapeView, compact_number

if TYPE_CHECKING:
    from islandflow_tui.app import IslandflowApp
    from islandflow_tui.widgets.equity_data import EquityScreensData

WIDE_AT: Final = 140
PATTERN_LABEL: Final = {
    "all": "all patterns",
    "block": "blocks",
    "accumulation": "accumulation",
    "level": "levels",
}


def dark_filter_line(
    filt: DarkFilter, events: tuple[int, int], prints: tuple[int, int], *, width: int
) -> Text:
    """``kind all patterns │ sym all │ 12/40 events │ 312/2.1k prints``."""
    parts = [("kind ", PATTERN_LABEL[filt.pattern]), ("sym ", joined_or_all(filt.symbols, 24))]
    count = (
        f"{compact_number(events[0])}/{compact_number(events[1])} events │ "
        f"{compact_number(prints[0])}/{compact_number(prints[1])} prints"
    )
    return filter_line(parts, count, width=width)


class DarkScreen(ReplayControls, Screen[None], inherit_bindings=False):
    """Dark inferences (with detail) + the off-exchange print feed + status bar."""

    TITLE = "Dark"
    LIVE_ONLY_ACTIONS: ClassVar[frozenset[str]] = frozenset({"toggle_pause"})

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "open_evidence",
            "Evidence",
            id="dark.evidence",
            tooltip="Open the chosen event's evidence prints with the quote in force",
        ),
        Binding(
            "space",
            "toggle_pause",
            "Pause",
            id="dark.pause",
            tooltip="Pause or resume both lists; a paused list counts the rows waiting",
        ),
        Binding(
            "slash",
            "filter_symbols",
            "Symbols",
            id="dark.filter",
            tooltip="Show only these symbols in both lists (comma-separated; empty clears)",
        ),
        Binding(
            "t",
            "cycle_pattern",
            "Kind",
            id="dark.pattern",
            tooltip="Cycle the inference kind: all → block → accumulation → level",
        ),
        Binding(
            "x",
            "clear_filters",
            "Clear",
            show=False,
            id="dark.clear",
            tooltip="Clear the symbol and kind filters",
        ),
        Binding(
            "tab",
            "app.focus_next",
            "Next pane",
            show=False,
            id="dark.focus_next",
            tooltip="Move focus to the next pane (its scroll keys)",
        ),
        Binding(
            "shift+tab",
            "app.focus_previous",
            "Previous pane",
            show=False,
            id="dark.focus_previous",
            tooltip="Move focus to the previous pane",
        ),
        *REPLAY_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self._events: DarkEventsView | None = None
        self._prints: TapeView | None = None
        self._detail: DarkDetail | None = None
        self._filter_line: Static | None = None
        self._status: StatusBar | None = None
        self._last_filter_text: Text | None = None

    @property
    def ifapp(self) -> IslandflowApp:
        return cast("IslandflowApp", self.app)

    @property
    def data(self) -> EquityScreensData:
        return self.ifapp.eq_data

    def compose(self) -> ComposeResult:
        data = self.data
        self._events = DarkEventsView(data.dark, DARK_COLUMNS, format_dark_rows, id="dark-events")
        self._prints = TapeView(data.offex, OFFEX_COLUMNS, format_offex_rows, id="offex-tape")
        self._detail = DarkDetail(id="dark-detail")
        self._filter_line = Static(id="dark-filter-line")
        self._status = StatusBar(id="status-bar")
        self._scrub_bar = ScrubBar(id="scrub-bar")
        self._scrub_bar.display = False
        with Container(id="dark-panes"):
            with Vertical(id="dark-left"):
                yield self._events
                yield self._detail
            yield self._prints
        yield self._filter_line
        yield self._scrub_bar
        yield self._status
        yield Footer()

    def on_mount(self) -> None:
        if self._events is not None:
            self._events.focus()
        self.repaint(self.ifapp.last_stats)

    @property
    def views(self) -> tuple[DarkEventsView, TapeView]:
        """(events, off-exchange prints)."""
        if self._events is None or self._prints is None:
            raise RuntimeError("DarkScreen is not composed yet")
        return self._events, self._prints

    @property
    def paused(self) -> bool:
        return any(not view.model.following for view in self.views)

    # -- painting -------------------------------------------------------------------
    def repaint(self, stats: EngineStats | None) -> None:
        if self._events is None or self._status is None or self._detail is None:
            return
        for view in self.views:
            view.sync()
        self._detail.show(self._events.selected)
        self._paint_filter_line()
        self.update_replay(stats)
        if stats is not None:
            self._status.show(stats, paused=self.paused, notes=self.ifapp.status_notes(stats))

    def _paint_filter_line(self) -> None:
        line = self._filter_line
        if line is None:
            return
        data = self.data
        width = line.content_region.width or self.app.size.width
        text = dark_filter_line(
            data.filter,
            (data.dark.display.height, data.dark.rows.height),
            (data.offex.display.height, data.offex.rows.height),
            width=width,
        )
        if text != self._last_filter_text:
            self._last_filter_text = text
            line.update(text)

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width >= WIDE_AT, "-wide")

    @on(TapeView.FollowChanged)
    @on(DarkEventsView.CursorMoved)
    def _changed(self) -> None:
        self.repaint(self.ifapp.last_stats)

    def follow_live(self) -> None:
        """A replay play or jump returns both lists to the live edge."""
        if self.paused:
            for view in self.views:
                view.resume()

    # -- actions ----------------------------------------------------------------------
    def action_open_evidence(self) -> None:
        """Evidence of the chosen event, via the app (the Evidence screen lives there)."""
        row = self._events.selected if self._events is not None else None
        if row is None:
            self.notify("no dark inference chosen", severity="warning")
            return
        self.app.open_evidence(int(row["id"]))  # type: ignore[attr-defined]

    def action_toggle_pause(self) -> None:
        if self.paused:
            for view in self.views:
                view.resume()
        else:
            for view in self.views:
                view.pause()
        self.repaint(self.ifapp.last_stats)

    def _set_filter(self, filt: DarkFilter) -> None:
        self.data.set_filter(filt)
        if self._events is not None:
            self._events.cursor = min(
                self._events.cursor, max(0, self.data.dark.display.height - 1)
            )
        self.repaint(self.ifapp.last_stats)

    def action_cycle_pattern(self) -> None:
        self._set_filter(self.data.filter.next_pattern())

    def action_clear_filters(self) -> None:
        self._set_filter(DarkFilter())

    def action_filter_symbols(self) -> None:
        self.app.push_screen(
            symbols_prompt("Symbols", self.data.filter.symbols, "e.g. AAPL,TSLA,SPY"),
            when_given(lambda s: self._set_filter(replace(self.data.filter, symbols=s))),
        )
