"""The data behind the Dark and Candles screens, owned by the app.

One ``DisplayFeed`` of its own (so the tape's subscription is untouched) for
``dark.inferred``, ``equities.joins``, ``equities.prints``, ``candles`` and
``alerts``, drained once per repaint tick into polars models that outlive any
screen: the screens only read them.  A replay seek arrives as ``reset`` and
clears the stream's model before the new state is appended.
"""

from __future__ import annotations

from typing import Final, Protocol

import polars as pl

from islandflow_tui.config import UiConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.bus import DisplayFeed
from islandflow_tui.widgets.candle_model import CandleModel, MarkModel
from islandflow_tui.widgets.dark_model import (
    OFFEX_SCHEMA,
    DarkFilter,
    dark_schema,
    normalise_joins,
)
from islandflow_tui.widgets.tape_view import TapeModel

# Joins before prints: a tick that brings the first joins switches the feed over
# before that tick's prints would be appended.
STREAMS: Final = (ev.EQUITIES_JOINS, ev.DARK_INFERRED, ev.CANDLES, ev.ALERTS)
#: candle rows buffered per tick: in-progress updates arrive for every symbol and
#: interval on every engine batch, far more often than candles close
CANDLE_FEED_ROWS: Final = 20_000
#: equity rows buffered per tick, in hot windows: most prints are lit and filtered out
JOIN_FEED_FACTOR: Final = 4


class _Subscriber(Protocol):
    def subscribe(self, streams: list[str], max_rows: dict[str, int]) -> DisplayFeed: ...
    def unsubscribe(self, feed: DisplayFeed) -> None: ...


class EquityScreensData:
    """Dark events, off-exchange prints, candles and chart markers, kept current."""

    def __init__(self, engine: _Subscriber, ui: UiConfig) -> None:
        self.dark = TapeModel(dark_schema(), ui.hot_window)
        self.offex = TapeModel(OFFEX_SCHEMA, ui.hot_window, key="print_id")
        self.candles = CandleModel()
        self.marks = MarkModel()
        self.filter = DarkFilter()
        limits = {s: ui.hot_window for s in STREAMS}
        limits[ev.CANDLES] = CANDLE_FEED_ROWS
        # joins carry lit prints too and only the off-exchange ones are kept
        limits[ev.EQUITIES_JOINS] = JOIN_FEED_FACTOR * ui.hot_window
        self.feed = engine.subscribe(list(STREAMS), limits)

    def close(self, engine: _Subscriber) -> None:
        engine.unsubscribe(self.feed)

    def set_filter(self, filt: DarkFilter) -> None:
        if filt != self.filter:
            self.filter = filt
            self.dark.set_filter(filt.dark_expr())
            self.offex.set_filter(filt.offex_expr())

    def drain(self) -> None:
        """Take what the feed buffered and update the models (the app's repaint tick)."""
        for stream, delta in self.feed.drain().items():
            frame = delta.frame
            if stream == ev.EQUITIES_JOINS:
                if delta.reset:
                    self.offex.clear()
                if frame.height:
                    self.offex.extend(normalise_joins(frame), delta.gap)
            elif stream == ev.DARK_INFERRED:
                if delta.reset:
                    self.dark.clear()
                    self.marks.clear_dark()
                if frame.height:
                    self.dark.extend(frame, delta.gap)
                    self.marks.add_dark(frame)
            elif stream == ev.CANDLES:
                if delta.reset:
                    self.candles.clear()
                self.candles.extend(frame if frame.height else _empty_candles(), delta.gap)
            elif stream == ev.ALERTS:
                if delta.reset:
                    self.marks.clear_alerts()
                if frame.height:
                    self.marks.add_alerts(frame)


def _empty_candles() -> pl.DataFrame:
    return ev.empty_frame(ev.CANDLES)
