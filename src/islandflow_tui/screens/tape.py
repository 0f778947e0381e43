"""The Tape screen (the app's home): live option prints above/left, equity prints
below/right, a filter line and the status bar; in a replay, a scrub bar above it.

The screen holds no market data.  The app owns the two ``TapeModel``s and the
``TapeFilter`` (they outlive any screen and the app's repaint tick keeps them
current even when this screen is not shown); this screen turns keys into filter
and follow changes and, on each tick while visible, asks its views to repaint.

In a replay (``stats.replay`` is set) the replay keys from ``ReplayControls``
switch on: space plays/pauses the replay instead of freezing the tape, and
home/end/g move the replay rather than the tape's scroll position.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, Final, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Static

from islandflow_tui.engine.core import EngineStats
from islandflow_tui.widgets.filter_line import filter_line, joined_or_all
from islandflow_tui.widgets.prompt import money_prompt, symbols_prompt, when_given
from islandflow_tui.widgets.scrub_bar import REPLAY_BINDINGS, ReplayControls, ScrubBar
from islandflow_tui.widgets.status_bar import StatusBar
from islandflow_tui.widgets.tape_view import (
    EQUITY_COLUMNS,
    OPTION_COLUMNS,
    RIGHTS_LABEL,
    TapeFilter,
    TapeView,
    compact_money,
    compact_number,
    format_equity_rows,
    format_option_rows,
)

if TYPE_CHECKING:
    from islandflow_tui.app import IslandflowApp

WIDE_AT: Final = 140  # columns from which the panes sit side by side


def filter_line_text(filt: TapeFilter, shown: int, window: int, *, width: int) -> Text:
    """``preset smart-money │ calls+puts │ sym AAPL,TSLA │ min $25.0k │ 312/2.1k``."""
    minimum = compact_money(filt.min_premium) if filt.min_premium else "none"
    parts = [
        ("preset ", filt.preset),
        ("", RIGHTS_LABEL[filt.rights]),
        ("sym ", joined_or_all(filt.symbols, 24)),
        ("min ", minimum),
    ]
    count = f"{compact_number(shown)}/{compact_number(window)} rows"
    return filter_line(parts, count, width=width)


class TapeScreen(ReplayControls, Screen[None], inherit_bindings=False):
    """Options tape + equities pane + filter line + (replay) scrub bar + status bar."""

    TITLE = "Tape"
    LIVE_ONLY_ACTIONS: ClassVar[frozenset[str]] = frozenset({"toggle_pause"})

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "space",
            "toggle_pause",
            "Pause",
            id="tape.pause",
            tooltip="Pause or resume both tapes; a paused tape counts the rows waiting",
        ),
        Binding(
            "slash",
            "filter_symbols",
            "Symbols",
            id="tape.filter",
            tooltip="Show only these symbols (comma-separated roots/tickers; empty clears)",
        ),
        Binding(
            "p",
            "cycle_preset",
            "Preset",
            id="tape.preset",
            tooltip="Cycle the signal preset: smart-money → balanced → all",
        ),
        Binding(
            "c",
            "cycle_rights",
            "C/P",
            id="tape.rights",
            tooltip="Cycle calls+puts → calls → puts",
        ),
        Binding(
            "m",
            "min_premium",
            "Min $",
            id="tape.min_premium",
            tooltip="Hide option prints below a premium (25000, 25k, 1.5m; empty clears)",
        ),
        Binding(
            "x",
            "clear_filters",
            "Clear",
            show=False,
            id="tape.clear",
            tooltip="Clear the symbol, call/put and premium filters (keeps the preset)",
        ),
        Binding(
            "tab",
            "app.focus_next",
            "Next pane",
            show=False,
            id="tape.focus_next",
            tooltip="Move focus to the next pane (its scroll keys)",
        ),
        Binding(
            "shift+tab",
            "app.focus_previous",
            "Previous pane",
            show=False,
            id="tape.focus_previous",
            tooltip="Move focus to the previous pane",
        ),
        *REPLAY_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self._views: tuple[TapeView, TapeView] | None = None
        self._filter_line: Static | None = None
        self._status: StatusBar | None = None
        self._last_filter_text: Text | None = None

    @property
    def ifapp(self) -> IslandflowApp:
        return cast("IslandflowApp", self.app)

    def compose(self) -> ComposeResult:
        app = self.ifapp
        options = TapeView(app.options_model, OPTION_COLUMNS, format_option_rows, id="options-tape")
        equities = TapeView(
            app.equities_model, EQUITY_COLUMNS, format_equity_rows, id="equities-tape"
        )
        self._views = (options, equities)
        self._filter_line = Static(id="filter-line")
        self._status = StatusBar(id="status-bar")
        self._scrub_bar = ScrubBar(id="scrub-bar")
        self._scrub_bar.display = False  # shown while the engine reports a replay
        with Container(id="tape-panes"):
            yield options
            yield equities
        yield self._filter_line
        yield self._scrub_bar
        yield self._status
        yield Footer()

    def on_mount(self) -> None:
        self.repaint(self.ifapp.last_stats)

    @property
    def views(self) -> tuple[TapeView, TapeView]:
        """(options, equities) tape views."""
        if self._views is None:
            raise RuntimeError("TapeScreen is not composed yet")
        return self._views

    @property
    def paused(self) -> bool:
        return any(not view.model.following for view in self.views)

    # -- painting (called by the app's repaint tick while this screen is visible) --
    def repaint(self, stats: EngineStats | None) -> None:
        """Repaint from the app's models; cheap when nothing changed."""
        if self._views is None or self._status is None:
            return  # the first tick can come before compose
        for view in self._views:
            view.sync()
        self._paint_filter_line()
        self.update_replay(stats)
        if stats is not None:
            self._status.show(stats, paused=self.paused, notes=self.ifapp.status_notes(stats))

    def _paint_filter_line(self) -> None:
        line = self._filter_line
        if line is None:
            return
        model = self.ifapp.options_model
        width = line.content_region.width or self.app.size.width
        text = filter_line_text(
            self.ifapp.tape_filter, model.display.height, model.rows.height, width=width
        )
        if text != self._last_filter_text:
            self._last_filter_text = text
            line.update(text)

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width >= WIDE_AT, "-wide")

    @on(TapeView.FollowChanged)
    def _follow_changed(self) -> None:
        self.repaint(self.ifapp.last_stats)

    def follow_live(self) -> None:
        """A replay play or jump returns both tapes to the live edge (so it shows)."""
        if self.paused:
            for view in self.views:
                view.resume()

    # -- actions ------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        """Pause both tapes, or resume both if either is paused."""
        if self.paused:
            for view in self.views:
                view.resume()
        else:
            for view in self.views:
                view.pause()
        self.repaint(self.ifapp.last_stats)

    def _set_filter(self, filt: TapeFilter) -> None:
        self.ifapp.set_tape_filter(filt)
        self.repaint(self.ifapp.last_stats)

    def action_cycle_preset(self) -> None:
        self._set_filter(self.ifapp.tape_filter.next_preset())

    def action_cycle_rights(self) -> None:
        self._set_filter(self.ifapp.tape_filter.next_rights())

    def action_clear_filters(self) -> None:
        self._set_filter(TapeFilter(preset=self.ifapp.tape_filter.preset))

    def action_filter_symbols(self) -> None:
        self.app.push_screen(
            symbols_prompt("Symbols", self.ifapp.tape_filter.symbols, "e.g. AAPL,TSLA,SPY"),
            when_given(lambda s: self._set_filter(replace(self.ifapp.tape_filter, symbols=s))),
        )

    def action_min_premium(self) -> None:
        self.app.push_screen(
            money_prompt("Minimum premium for option prints", self.ifapp.tape_filter.min_premium),
            when_given(lambda m: self._set_filter(replace(self.ifapp.tape_filter, min_premium=m))),
        )
