"""The Flow screen: flow packets above, structures below (side by side when wide).

Like the Tape screen it holds no market data: the app owns the two ``SortedModel``s,
the ``FlowFilter`` and the sort mode; this screen turns keys into filter/sort changes
and, on each repaint tick while visible, asks its views to repaint.  ``enter`` on a
row opens its Evidence screen.
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
from islandflow_tui.widgets.flow_view import (
    PACKET_COLUMNS,
    STRUCTURE_COLUMNS,
    CursorView,
    FlowFilter,
    format_packet_rows,
    format_structure_rows,
    parse_kinds,
)
from islandflow_tui.widgets.prompt import PromptScreen, money_prompt, symbols_prompt, when_given
from islandflow_tui.widgets.scrub_bar import REPLAY_BINDINGS, ReplayControls, ScrubBar
from islandflow_tui.widgets.status_bar import StatusBar
from islandflow_tui.widgets.tape_view import TapeView, compact_money, compact_number

if TYPE_CHECKING:
    from islandflow_tui.app import IslandflowApp

WIDE_AT: Final = 240  # columns from which the panes sit side by side (all packet columns fit)


def flow_line_text(filt: FlowFilter, sort: str, shown: int, window: int, *, width: int) -> Text:
    """``preset notable │ sort premium │ sym all │ kind all │ dir any │ min none │ 12/40``."""
    parts = [
        ("preset ", filt.preset),
        ("sort ", sort),
        ("sym ", joined_or_all(filt.symbols, 20)),
        ("kind ", joined_or_all(filt.kinds, 20)),
        ("dir ", filt.direction or "any"),
        ("min ", compact_money(filt.min_premium) if filt.min_premium else "none"),
    ]
    count = f"{compact_number(shown)}/{compact_number(window)} packets"
    return filter_line(parts, count, width=width)


class FlowScreen(ReplayControls, Screen[None], inherit_bindings=False):
    """Packets + structures + filter line + (replay) scrub bar + status bar."""

    TITLE = "Flow"
    LIVE_ONLY_ACTIONS: ClassVar[frozenset[str]] = frozenset({"toggle_pause"})

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "space",
            "toggle_pause",
            "Pause",
            id="flow.pause",
            tooltip="Pause or resume both lists; a paused list counts the rows waiting",
        ),
        Binding(
            "s",
            "cycle_sort",
            "Sort",
            id="flow.sort",
            tooltip="Cycle the sort: time → premium → size → premium z (structures: premium)",
        ),
        Binding(
            "slash",
            "filter_symbols",
            "Symbols",
            id="flow.filter",
            tooltip="Show only these underlyings (comma-separated; empty clears)",
        ),
        Binding(
            "t",
            "filter_kinds",
            "Kinds",
            id="flow.kinds",
            tooltip="Only these packet kinds / structure labels (sweep,block,..; empty clears)",
        ),
        Binding(
            "d",
            "cycle_direction",
            "Direction",
            id="flow.direction",
            tooltip="Cycle any → bullish → bearish → neutral",
        ),
        Binding(
            "m",
            "min_premium",
            "Min $",
            id="flow.min_premium",
            tooltip="Hide packets and structures below a premium (25000, 25k, 1.5m; empty clears)",
        ),
        Binding(
            "p",
            "cycle_preset",
            "Preset",
            id="flow.preset",
            tooltip="Cycle the preset: notable → aggressive → all",
        ),
        Binding(
            "x",
            "clear_filters",
            "Clear",
            show=False,
            id="flow.clear",
            tooltip="Clear symbol, kind, direction and premium filters (keeps preset and sort)",
        ),
        Binding(
            "tab",
            "app.focus_next",
            "Next pane",
            show=False,
            id="flow.focus_next",
            tooltip="Move focus to the next pane",
        ),
        Binding(
            "shift+tab",
            "app.focus_previous",
            "Previous pane",
            show=False,
            id="flow.focus_previous",
            tooltip="Move focus to the previous pane",
        ),
        *REPLAY_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self._views: tuple[CursorView, CursorView] | None = None
        self._filter_line: Static | None = None
        self._status: StatusBar | None = None
        self._last_line: Text | None = None

    @property
    def ifapp(self) -> IslandflowApp:
        return cast("IslandflowApp", self.app)

    def compose(self) -> ComposeResult:
        app = self.ifapp
        packets = CursorView(
            app.packets_model, PACKET_COLUMNS, format_packet_rows, id="packets-view"
        )
        structures = CursorView(
            app.structures_model, STRUCTURE_COLUMNS, format_structure_rows, id="structures-view"
        )
        self._views = (packets, structures)
        self._filter_line = Static(id="flow-filter-line", classes="filter-line")
        self._status = StatusBar(id="status-bar")
        self._scrub_bar = ScrubBar(id="scrub-bar")
        self._scrub_bar.display = False
        with Container(id="flow-panes"):
            yield packets
            yield structures
        yield self._filter_line
        yield self._scrub_bar
        yield self._status
        yield Footer()

    def on_mount(self) -> None:
        self.repaint(self.ifapp.last_stats)

    @property
    def views(self) -> tuple[CursorView, CursorView]:
        if self._views is None:
            raise RuntimeError("FlowScreen is not composed yet")
        return self._views

    @property
    def paused(self) -> bool:
        return any(not view.model.following for view in self.views)

    def repaint(self, stats: EngineStats | None) -> None:
        if self._views is None or self._status is None:
            return
        for view in self._views:
            view.sync()
        self._paint_line()
        self.update_replay(stats)
        if stats is not None:
            self._status.show(stats, paused=self.paused, notes=self.ifapp.status_notes(stats))

    def _paint_line(self) -> None:
        line = self._filter_line
        if line is None:
            return
        model = self.ifapp.packets_model
        width = line.content_region.width or self.app.size.width
        text = flow_line_text(
            self.ifapp.flow_filter,
            self.ifapp.flow_sort,
            model.display.height,
            model.rows.height,
            width=width,
        )
        if text != self._last_line:
            self._last_line = text
            line.update(text)

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width >= WIDE_AT, "-wide")

    @on(TapeView.FollowChanged)
    def _follow_changed(self) -> None:
        self.repaint(self.ifapp.last_stats)

    @on(CursorView.Selected)
    def _selected(self, event: CursorView.Selected) -> None:
        event.stop()
        self.ifapp.open_evidence(event.row_id)

    def follow_live(self) -> None:
        if self.paused:
            for view in self.views:
                view.resume()
                view.cursor = 0

    # -- actions ------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        if self.paused:
            self.follow_live()
        else:
            for view in self.views:
                view.pause()
        self.repaint(self.ifapp.last_stats)

    def action_cycle_sort(self) -> None:
        self.ifapp.cycle_flow_sort()
        self.repaint(self.ifapp.last_stats)

    def _set_filter(self, filt: FlowFilter) -> None:
        self.ifapp.set_flow_filter(filt)
        self.repaint(self.ifapp.last_stats)

    def action_cycle_preset(self) -> None:
        self._set_filter(self.ifapp.flow_filter.next_preset())

    def action_cycle_direction(self) -> None:
        self._set_filter(self.ifapp.flow_filter.next_direction())

    def action_clear_filters(self) -> None:
        self._set_filter(FlowFilter(preset=self.ifapp.flow_filter.preset))

    def action_filter_symbols(self) -> None:
        self.app.push_screen(
            symbols_prompt("Underlyings", self.ifapp.flow_filter.symbols, "e.g. SPY,NVDA"),
            when_given(lambda s: self._set_filter(replace(self.ifapp.flow_filter, symbols=s))),
        )

    def action_filter_kinds(self) -> None:
        self.app.push_screen(
            PromptScreen(
                "Packet kinds / structure labels (comma-separated; empty shows all)",
                parse_kinds,
                value=",".join(sorted(self.ifapp.flow_filter.kinds)),
                placeholder="e.g. sweep,golden_sweep,block,vertical",
                hint="enter applies · escape cancels",
            ),
            when_given(lambda k: self._set_filter(replace(self.ifapp.flow_filter, kinds=k))),
        )

    def action_min_premium(self) -> None:
        self.app.push_screen(
            money_prompt(
                "Minimum premium for packets and structures", self.ifapp.flow_filter.min_premium
            ),
            when_given(lambda m: self._set_filter(replace(self.ifapp.flow_filter, min_premium=m))),
        )
