"""The Alerts screen: scored alerts, newest first, severity in colour, the one-line
explanation; ``enter`` opens the evidence chain of the selected alert.

The app owns the alerts model and its filter (symbols, minimum severity); this screen
only turns keys into changes and repaints on the tick while visible.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar, Final, cast

import polars as pl
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

from islandflow_tui.engine.core import EngineStats
from islandflow_tui.widgets.filter_line import filter_line, joined_or_all
from islandflow_tui.widgets.flow_view import ALERT_COLUMNS, CursorView, format_alert_rows
from islandflow_tui.widgets.prompt import symbols_prompt, when_given
from islandflow_tui.widgets.scrub_bar import REPLAY_BINDINGS, ReplayControls, ScrubBar
from islandflow_tui.widgets.status_bar import StatusBar
from islandflow_tui.widgets.tape_view import TapeView, compact_number

if TYPE_CHECKING:
    from islandflow_tui.app import IslandflowApp

SEVERITY_LEVELS: Final = ("low", "medium", "high")  # minimum severity shown, cycled by `v`
_AT_LEAST: Final = {
    "low": ["low", "medium", "high"],
    "medium": ["medium", "high"],
    "high": ["high"],
}


@dataclass(frozen=True, slots=True)
class AlertFilter:
    symbols: frozenset[str] = frozenset()
    min_severity: str = "low"

    def expr(self) -> pl.Expr | None:
        expr: pl.Expr | None = None
        if self.min_severity != "low":
            expr = pl.col("severity").is_in(_AT_LEAST[self.min_severity])
        if self.symbols:
            sym = pl.col("root").is_in(sorted(self.symbols))
            expr = sym if expr is None else expr & sym
        return expr

    def next_severity(self) -> AlertFilter:
        i = SEVERITY_LEVELS.index(self.min_severity)
        return replace(self, min_severity=SEVERITY_LEVELS[(i + 1) % len(SEVERITY_LEVELS)])


def alert_line_text(filt: AlertFilter, shown: int, window: int, *, width: int) -> Text:
    severity = {"low": "all", "medium": "medium+", "high": "high"}[filt.min_severity]
    parts = [("severity ", severity), ("sym ", joined_or_all(filt.symbols, 24))]
    count = f"{compact_number(shown)}/{compact_number(window)} alerts"
    return filter_line(parts, count, width=width, hint="enter: evidence")


class AlertsScreen(ReplayControls, Screen[None], inherit_bindings=False):
    """Alerts list + filter line + (replay) scrub bar + status bar."""

    TITLE = "Alerts"
    LIVE_ONLY_ACTIONS: ClassVar[frozenset[str]] = frozenset({"toggle_pause"})

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "space",
            "toggle_pause",
            "Pause",
            id="alerts.pause",
            tooltip="Pause or resume the list; a paused list counts the alerts waiting",
        ),
        Binding(
            "v",
            "cycle_severity",
            "Severity",
            id="alerts.severity",
            tooltip="Cycle the minimum severity shown: all → medium+ → high",
        ),
        Binding(
            "slash",
            "filter_symbols",
            "Symbols",
            id="alerts.filter",
            tooltip="Show only alerts on these underlyings (comma-separated; empty clears)",
        ),
        Binding(
            "x",
            "clear_filters",
            "Clear",
            show=False,
            id="alerts.clear",
            tooltip="Show every alert again",
        ),
        *REPLAY_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self._view: CursorView | None = None
        self._line: Static | None = None
        self._status: StatusBar | None = None
        self._last_line: Text | None = None

    @property
    def ifapp(self) -> IslandflowApp:
        return cast("IslandflowApp", self.app)

    @property
    def view(self) -> CursorView:
        if self._view is None:
            raise RuntimeError("AlertsScreen is not composed yet")
        return self._view

    def compose(self) -> ComposeResult:
        self._view = CursorView(
            self.ifapp.alerts_model, ALERT_COLUMNS, format_alert_rows, id="alerts-view"
        )
        self._line = Static(id="alerts-filter-line", classes="filter-line")
        self._status = StatusBar(id="status-bar")
        self._scrub_bar = ScrubBar(id="scrub-bar")
        self._scrub_bar.display = False
        yield self._view
        yield self._line
        yield self._scrub_bar
        yield self._status
        yield Footer()

    def on_mount(self) -> None:
        self.repaint(self.ifapp.last_stats)

    @property
    def paused(self) -> bool:
        return self._view is not None and not self._view.model.following

    def repaint(self, stats: EngineStats | None) -> None:
        if self._view is None or self._status is None or self._line is None:
            return
        self._view.sync()
        model = self.ifapp.alerts_model
        width = self._line.content_region.width or self.app.size.width
        text = alert_line_text(
            self.ifapp.alert_filter, model.display.height, model.rows.height, width=width
        )
        if text != self._last_line:
            self._last_line = text
            self._line.update(text)
        self.update_replay(stats)
        if stats is not None:
            self._status.show(stats, paused=self.paused, notes=self.ifapp.status_notes(stats))

    @on(TapeView.FollowChanged)
    def _follow_changed(self) -> None:
        self.repaint(self.ifapp.last_stats)

    @on(CursorView.Selected)
    def _selected(self, event: CursorView.Selected) -> None:
        event.stop()
        self.ifapp.open_evidence(event.row_id)

    def follow_live(self) -> None:
        if self.paused:
            self.view.resume()
            self.view.cursor = 0

    def action_toggle_pause(self) -> None:
        if self.paused:
            self.follow_live()
        else:
            self.view.pause()
        self.repaint(self.ifapp.last_stats)

    def _set_filter(self, filt: AlertFilter) -> None:
        self.ifapp.set_alert_filter(filt)
        self.repaint(self.ifapp.last_stats)

    def action_cycle_severity(self) -> None:
        self._set_filter(self.ifapp.alert_filter.next_severity())

    def action_clear_filters(self) -> None:
        self._set_filter(AlertFilter())

    def action_filter_symbols(self) -> None:
        self.app.push_screen(
            symbols_prompt("Underlyings", self.ifapp.alert_filter.symbols, "e.g. SPY,NVDA"),
            when_given(lambda s: self._set_filter(replace(self.ifapp.alert_filter, symbols=s))),
        )
