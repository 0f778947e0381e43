"""The Candles screen: one symbol's candlestick chart with volume, VWAP and markers.

The chart follows the live edge (the newest candle at the right) until the user
pans into the past; it then stays on the candles it shows, anchored by the
start time of its rightmost candle, while new candles arrive off-screen (the
header counts them), exactly like a paused tape.  ``f`` returns to the live edge.

The screen owns only view state (symbol, interval, zoom, anchor); the candles
and the marker times live in the app's ``EquityScreensData``.  In a replay the
``ReplayControls`` keys work here too, and a play or jump returns to the live edge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Final, cast

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer

from islandflow_tui.engine.core import EngineStats
from islandflow_tui.widgets.candle_chart import (
    DEFAULT_ZOOM,
    ZOOM_LEVELS,
    CandleChart,
    ChartMarks,
    ChartSeries,
    interval_label,
    visible_window,
)
from islandflow_tui.widgets.prompt import PromptScreen
from islandflow_tui.widgets.scrub_bar import REPLAY_BINDINGS, ReplayControls, ScrubBar
from islandflow_tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from islandflow_tui.app import IslandflowApp
    from islandflow_tui.widgets.equity_data import EquityScreensData

DEFAULT_PLOT_WIDTH: Final = 70  # before the first render knows the real one


def parse_symbol(text: str) -> str | None:
    """One ticker (upper-cased); empty keeps the current symbol."""
    from islandflow_tui.widgets.prompt import parse_symbols

    symbols = parse_symbols(text)
    if len(symbols) > 1:
        raise ValueError("one symbol, please (e.g. SPY)")
    return next(iter(symbols), None)


class CandlesScreen(ReplayControls, Screen[None], inherit_bindings=False):
    """Candlestick chart of one symbol and interval, with its keys."""

    TITLE = "Candles"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_symbol(1)", "Symbol", id="candles.next_symbol", tooltip="Next symbol"),
        Binding(
            "S",
            "cycle_symbol(-1)",
            "Prev symbol",
            show=False,
            id="candles.prev_symbol",
            tooltip="Previous symbol",
        ),
        Binding(
            "slash",
            "choose_symbol",
            "Choose",
            id="candles.choose_symbol",
            tooltip="Type the symbol to chart",
        ),
        Binding(
            "i",
            "cycle_interval",
            "Interval",
            id="candles.interval",
            tooltip="Next candle interval (those the candles stream carries, e.g. 1m → 5m)",
        ),
        Binding(
            "plus,equals_sign",
            "zoom(-1)",
            "Zoom in",
            id="candles.zoom_in",
            tooltip="Fewer, wider candles",
        ),
        Binding(
            "minus",
            "zoom(1)",
            "Zoom out",
            id="candles.zoom_out",
            tooltip="More candles (past one per column, several merge into one)",
        ),
        Binding(
            "h",
            "pan(-1)",
            "◀ Pan",
            id="candles.pan_left",
            tooltip="Pan a quarter screen into the past (leaves the live edge)",
        ),
        Binding(
            "l",
            "pan(1)",
            "Pan ▶",
            id="candles.pan_right",
            tooltip="Pan a quarter screen towards now (reaching it follows the live edge)",
        ),
        Binding(
            "H",
            "pan(-4)",
            "◀◀",
            show=False,
            id="candles.page_left",
            tooltip="Pan a whole screen into the past",
        ),
        Binding(
            "L",
            "pan(4)",
            "▶▶",
            show=False,
            id="candles.page_right",
            tooltip="Pan a whole screen towards now",
        ),
        Binding(
            "f",
            "follow",
            "Live edge",
            id="candles.follow",
            tooltip="Follow the live edge: the newest candle at the right",
        ),
        *REPLAY_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.symbol: str | None = None
        self.interval_ms: int | None = None
        self.zoom = DEFAULT_ZOOM
        #: start_ts of the rightmost candle shown when panned; None follows the live edge
        self.anchor_ts: int | None = None
        self._chart: CandleChart | None = None
        self._status: StatusBar | None = None
        self._series_key: tuple[object, ...] | None = None
        self._series = ChartSeries.empty()
        self._marks = ChartMarks()

    @property
    def ifapp(self) -> IslandflowApp:
        return cast("IslandflowApp", self.app)

    @property
    def data(self) -> EquityScreensData:
        return self.ifapp.eq_data

    @property
    def chart(self) -> CandleChart:
        if self._chart is None:
            raise RuntimeError("CandlesScreen is not composed yet")
        return self._chart

    @property
    def following(self) -> bool:
        return self.anchor_ts is None

    def compose(self) -> ComposeResult:
        self._chart = CandleChart(id="candle-chart")
        self._status = StatusBar(id="status-bar")
        self._scrub_bar = ScrubBar(id="scrub-bar")
        self._scrub_bar.display = False
        yield self._chart
        yield self._scrub_bar
        yield self._status
        yield Footer()

    def on_mount(self) -> None:
        self.repaint(self.ifapp.last_stats)

    # -- state ----------------------------------------------------------------------
    def _choose_defaults(self) -> None:
        """The most traded symbol and its shortest interval, once data exists."""
        candles = self.data.candles
        if self.symbol is None:
            symbols = candles.symbols()
            if symbols:
                self.symbol = symbols[0]
        if self.symbol is not None:
            intervals = candles.intervals(self.symbol)
            if intervals and self.interval_ms not in intervals:
                self.interval_ms = intervals[0]

    def series(self) -> ChartSeries:
        """The chosen symbol/interval as chart arrays (rebuilt only when they change)."""
        candles, marks = self.data.candles, self.data.marks
        symbol = self.symbol or ""
        interval = self.interval_ms or 60_000
        key = (candles.version, marks.version, symbol, interval)
        if key != self._series_key:
            frame = candles.series(symbol, interval) if self.symbol else None
            self._series = (
                ChartSeries.from_frame(frame, symbol, interval)
                if frame is not None
                else ChartSeries.empty(symbol, interval)
            )
            dark, alerts = marks.times(symbol)
            self._marks = ChartMarks(dark, alerts)
            self._series_key = key
        return self._series

    def end_index(self) -> int | None:
        """One past the rightmost candle shown (None: the live edge)."""
        if self.anchor_ts is None:
            return None
        start = self._series.start_ts
        return int(np.searchsorted(start, self.anchor_ts, side="right"))

    def _capacity(self) -> int:
        chart = self._chart
        render = chart.last_render if chart is not None else None
        width = (
            render.plot_width if render is not None and render.plot_width else DEFAULT_PLOT_WIDTH
        )
        return visible_window(10**9, width, self.zoom, None).count

    def badge(self, series: ChartSeries) -> tuple[str, str]:
        zoom_cols, merge = ZOOM_LEVELS[self.zoom]
        scale = f"zoom {merge}:1" if merge > 1 else f"zoom {zoom_cols}col"
        end = self.end_index()
        if end is None or end >= series.n:
            forming = series.n > 0 and not bool(series.final[-1])
            state = "● LIVE" + (" forming" if forming else "")
            return f"{scale} {state}", "candle--live"
        return f"{scale} ◀ PANNED +{series.n - end} (f: live)", "candle--panned"

    # -- painting -------------------------------------------------------------------
    def repaint(self, stats: EngineStats | None) -> None:
        if self._chart is None or self._status is None:
            return
        self._choose_defaults()
        series = self.series()
        end = self.end_index()
        if end is not None and end >= series.n:
            end = None  # panned back onto the live edge
        badge = self.badge(series)
        self._chart.show(
            series,
            self._marks,
            zoom=self.zoom,
            end=end,
            badge=badge,
            version=(self._series_key, self.anchor_ts),
        )
        self.update_replay(stats)
        if stats is not None:
            self._status.show(stats, paused=False, notes=self.ifapp.status_notes(stats))

    def follow_live(self) -> None:
        self.anchor_ts = None

    # -- actions ----------------------------------------------------------------------
    def _set_symbol(self, symbol: str) -> None:
        if symbol != self.symbol:
            self.symbol = symbol
            self.anchor_ts = None
            intervals = self.data.candles.intervals(symbol)
            if intervals and self.interval_ms not in intervals:
                self.interval_ms = intervals[0]
        self.repaint(self.ifapp.last_stats)

    def action_cycle_symbol(self, step: int) -> None:
        symbols = sorted(self.data.candles.symbols())
        if not symbols:
            self.notify("no candles yet", severity="warning")
            return
        if self.symbol in symbols:
            i = (symbols.index(self.symbol) + step) % len(symbols)
        else:
            i = 0 if step > 0 else len(symbols) - 1
        self._set_symbol(symbols[i])

    def action_choose_symbol(self) -> None:
        def apply(symbol: str | None) -> None:
            if symbol:
                if symbol not in self.data.candles.symbols():
                    self.notify(f"no candles for {symbol} yet; showing it when they arrive")
                self._set_symbol(symbol)

        self.app.push_screen(
            PromptScreen(
                "Symbol to chart",
                parse_symbol,
                value=self.symbol or "",
                placeholder="e.g. SPY",
                hint="enter charts it · escape cancels",
            ),
            apply,
        )

    def action_cycle_interval(self) -> None:
        intervals = self.data.candles.intervals(self.symbol) if self.symbol else []
        if not intervals:
            self.notify("no candle intervals yet", severity="warning")
            return
        if self.interval_ms in intervals:
            i = (intervals.index(self.interval_ms) + 1) % len(intervals)
        else:
            i = 0
        self.interval_ms = intervals[i]
        self.anchor_ts = None
        self.notify(f"interval {interval_label(self.interval_ms)}", timeout=2)
        self.repaint(self.ifapp.last_stats)

    def action_zoom(self, step: int) -> None:
        self.zoom = max(0, min(len(ZOOM_LEVELS) - 1, self.zoom + step))
        self.repaint(self.ifapp.last_stats)

    def action_pan(self, quarters: int) -> None:
        series = self.series()
        n = series.n
        if n == 0:
            return
        capacity = self._capacity()
        step = max(1, capacity // 4) * abs(quarters)
        end = self.end_index()
        current = n if end is None else min(end, n)
        target = current - step if quarters < 0 else current + step
        target = max(min(n, capacity), target)  # never past the oldest full screen
        if target >= n:
            self.anchor_ts = None
        else:
            self.anchor_ts = int(series.start_ts[target - 1])
        self.repaint(self.ifapp.last_stats)

    def action_follow(self) -> None:
        self.anchor_ts = None
        self.repaint(self.ifapp.last_stats)
