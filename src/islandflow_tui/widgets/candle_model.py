"""App-owned state of the Candles screen: candles keyed by (symbol, interval, start).

The ``candles`` stream carries closed candles (``final=true``) and in-progress
updates (``final=false``) of the candle still forming, and a late print within
``candle_max_late_ms`` re-issues a closed candle.  Every one of those is the
newest state of its (symbol, interval_ms, start_ts), so the model keeps, per key,
the row with the highest ``seq`` (the engine assigns seq in output order, so this
is the same in live, replay and any batching).  Work per repaint tick is one
concat + sort + unique over the new rows and the keys they touch; never a Python
loop over rows.

``MarkModel`` keeps the times of dark inferences and option alerts per symbol,
which the chart draws as markers under the candles.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl

from islandflow_tui.engine import events as ev

KEY: Final = ("symbol", "interval_ms", "start_ts")
CANDLE_FIELDS: Final = (
    "seq",
    "symbol",
    "interval_ms",
    "start_ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trades",
    "off_exchange_volume",
    "retail_volume",
    "final",
)
#: candles kept per (symbol, interval): the seed's CANDLE_CACHE_LIMIT
CANDLES_PER_SERIES: Final = 2_000
#: marker times kept per kind over all symbols
MARKS_KEPT: Final = 20_000


class CandleModel:
    """Newest state of every candle, per (symbol, interval_ms, start_ts)."""

    def __init__(self, per_series: int = CANDLES_PER_SERIES) -> None:
        if per_series < 1:
            raise ValueError("per_series must be at least 1")
        self.per_series = per_series
        schema = ev.polars_schema(ev.CANDLES)
        self.schema = {name: schema[name] for name in CANDLE_FIELDS}
        self.frame = pl.DataFrame(schema=self.schema)
        self.version = 0
        self.dropped = 0  # rows the display feed dropped before we saw them
        self._series: dict[tuple[str, int], pl.DataFrame] = {}

    def extend(self, frame: pl.DataFrame, gap: int = 0) -> None:
        """Merge a drained batch: each key keeps its highest-seq row."""
        self.dropped += gap
        if frame.height == 0:
            return
        new = frame.select(CANDLE_FIELDS)
        merged = (
            pl.concat([self.frame, new], how="vertical")
            .sort("seq")
            .unique(subset=list(KEY), keep="last", maintain_order=False)
        )
        # Cap each series at its newest ``per_series`` candles.
        merged = merged.filter(
            pl.col("start_ts").rank("ordinal", descending=True).over(["symbol", "interval_ms"])
            <= self.per_series
        ).sort(list(KEY))
        self.frame = merged
        touched = new.select("symbol", "interval_ms").unique().rows()
        for key in touched:
            self._series.pop((str(key[0]), int(key[1])), None)
        self.version += 1

    def clear(self) -> None:
        self.frame = self.frame.clear()
        self._series.clear()
        self.version += 1

    # -- reading --------------------------------------------------------------------
    def symbols(self) -> list[str]:
        """Symbols with candles, most traded first (ties by name): the first is the default."""
        if self.frame.height == 0:
            return []
        ranked = (
            self.frame.group_by("symbol")
            .agg(pl.col("volume").sum())
            .sort(["volume", "symbol"], descending=[True, False])
        )
        return ranked["symbol"].to_list()

    def intervals(self, symbol: str | None = None) -> list[int]:
        """Candle lengths present (ms), shortest first."""
        frame = self.frame if symbol is None else self.frame.filter(pl.col("symbol") == symbol)
        return sorted(int(v) for v in frame["interval_ms"].unique().to_list())

    def series(self, symbol: str, interval_ms: int) -> pl.DataFrame:
        """Candles of one symbol and interval, oldest first (cached until they change)."""
        key = (symbol, interval_ms)
        cached = self._series.get(key)
        if cached is None:
            cached = self.frame.filter(
                (pl.col("symbol") == symbol) & (pl.col("interval_ms") == interval_ms)
            ).sort("start_ts")
            self._series[key] = cached
        return cached


class MarkModel:
    """Times of dark inferences and option alerts, per symbol, for chart markers."""

    def __init__(self, kept: int = MARKS_KEPT) -> None:
        self.kept = kept
        schema = {"ts": pl.Int64, "symbol": pl.String}
        self.dark = pl.DataFrame(schema=schema)
        self.alerts = pl.DataFrame(schema=schema)
        self.version = 0

    def add_dark(self, frame: pl.DataFrame) -> None:
        """Rows of ``dark.inferred``."""
        if frame.height:
            rows = frame.select("ts", "symbol")
            self.dark = pl.concat([self.dark, rows]).tail(self.kept)
            self.version += 1

    def add_alerts(self, frame: pl.DataFrame) -> None:
        """Rows of ``alerts`` (a retraction withdraws an alert, so it is no marker)."""
        if frame.height:
            rows = frame.filter(pl.col("status") != "retracted").select(
                "ts", pl.col("root").alias("symbol")
            )
            self.alerts = pl.concat([self.alerts, rows]).tail(self.kept)
            self.version += 1

    def clear_dark(self) -> None:
        self.dark = self.dark.clear()
        self.version += 1

    def clear_alerts(self) -> None:
        self.alerts = self.alerts.clear()
        self.version += 1

    def times(self, symbol: str) -> tuple[np.ndarray, np.ndarray]:
        """(dark times, alert times) of ``symbol``, sorted."""

        def of(frame: pl.DataFrame) -> np.ndarray:
            ts = frame.filter(pl.col("symbol") == symbol)["ts"].to_numpy()
            return np.sort(ts.astype(np.int64))

        return of(self.dark), of(self.alerts)
