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
    """Newest state of every candle, per (symbol, interval_ms, start_ts).

    Two tiers keep the cost of a tick proportional to what arrived rather than to
    the candles kept (40 series x 2 000 candles would otherwise cost tens of ms):

    * ``recent``: the candles still being updated.  New rows are de-duplicated
      among themselves and replace their keys here (an anti-join of a few
      thousand rows at most).
    * ``base``: candles that stopped changing.  When ``recent`` passes
      ``recent_max`` rows, every candle older than its interval's newest start
      moves here and each series is capped at ``per_series``.  A later update of
      a key already in ``base`` (a late print re-issuing a closed candle) removes
      it from ``base`` first.

    Rows not newer (by ``seq``) than the newest already applied are ignored: the
    engine assigns seq in output order, so they can only be stale.
    """

    def __init__(self, per_series: int = CANDLES_PER_SERIES, recent_max: int = 4096) -> None:
        if per_series < 1:
            raise ValueError("per_series must be at least 1")
        self.per_series = per_series
        self.recent_max = recent_max
        schema = ev.polars_schema(ev.CANDLES)
        self.schema = {name: schema[name] for name in CANDLE_FIELDS}
        self._base = pl.DataFrame(schema=self.schema)
        self._recent = self._base
        self._flushed: dict[int, int] = {}  # interval -> newest start_ts moved to base
        self.version = 0
        self.dropped = 0  # rows the display feed dropped before we saw them
        self._max_seq = -1
        self._series: dict[tuple[str, int], pl.DataFrame] = {}
        self._symbols: list[str] | None = None
        self._intervals: dict[str | None, list[int]] = {}

    @property
    def frame(self) -> pl.DataFrame:
        """Every kept candle, sorted by (symbol, interval_ms, start_ts)."""
        both = pl.concat([self._base, self._recent], how="vertical")
        return _capped(both, self.per_series).sort(list(KEY))

    def extend(self, frame: pl.DataFrame, gap: int = 0) -> None:
        """Merge a drained batch: each key keeps its highest-seq row."""
        self.dropped += gap
        if frame.height == 0:
            return
        new = frame.select(CANDLE_FIELDS).filter(pl.col("seq") > self._max_seq)
        if new.height == 0:
            return
        self._max_seq = int(new.get_column("seq").max())  # type: ignore[arg-type]
        if new.height > 1:
            new = new.sort("seq").unique(subset=list(KEY), keep="last")
        keys = new.select(KEY)
        if self._flushed:
            late = pl.any_horizontal(
                [
                    (pl.col("interval_ms") == iv) & (pl.col("start_ts") <= start)
                    for iv, start in self._flushed.items()
                ]
            )
            stale = keys.filter(late)
            if stale.height:
                self._base = self._base.join(stale, on=list(KEY), how="anti")
        recent = self._recent.join(keys, on=list(KEY), how="anti")
        self._recent = pl.concat([recent, new], how="vertical")
        if self._recent.height > self.recent_max:
            self._flush()
        for key in keys.select("symbol", "interval_ms").unique().rows():
            self._series.pop((str(key[0]), int(key[1])), None)
        self._symbols = None
        self._intervals.clear()
        self.version += 1

    def _flush(self) -> None:
        """Move candles older than their interval's newest start into ``base``."""
        newest = self._recent.group_by("interval_ms").agg(pl.col("start_ts").max().alias("top"))
        marked = self._recent.join(newest, on="interval_ms", how="left")
        old = marked.filter(pl.col("start_ts") < pl.col("top")).drop("top")
        if old.height == 0:
            return
        self._recent = marked.filter(pl.col("start_ts") >= pl.col("top")).drop("top")
        for iv, start in old.group_by("interval_ms").agg(pl.col("start_ts").max()).rows():
            self._flushed[int(iv)] = max(self._flushed.get(int(iv), start), int(start))
        self._base = _capped(pl.concat([self._base, old], how="vertical"), self.per_series)
        self._series.clear()

    def clear(self) -> None:
        self._base = self._base.clear()
        self._recent = self._base
        self._flushed.clear()
        self._max_seq = -1
        self._series.clear()
        self._symbols = None
        self._intervals.clear()
        self.version += 1

    # -- reading --------------------------------------------------------------------
    def symbols(self) -> list[str]:
        """Symbols with candles, most traded first (ties by name): the first is the default."""
        if self._symbols is None:
            both = pl.concat([self._base, self._recent], how="vertical")
            ranked = (
                both.group_by("symbol")
                .agg(pl.col("volume").sum())
                .sort(["volume", "symbol"], descending=[True, False])
            )
            self._symbols = ranked["symbol"].to_list()
        return self._symbols

    def intervals(self, symbol: str | None = None) -> list[int]:
        """Candle lengths present (ms), shortest first."""
        got = self._intervals.get(symbol)
        if got is None:
            values: set[int] = set()
            for part in (self._base, self._recent):
                if symbol is not None:
                    part = part.filter(pl.col("symbol") == symbol)
                values.update(int(v) for v in part["interval_ms"].unique().to_list())
            got = self._intervals[symbol] = sorted(values)
        return got

    def series(self, symbol: str, interval_ms: int) -> pl.DataFrame:
        """Candles of one symbol and interval, oldest first (cached until they change)."""
        key = (symbol, interval_ms)
        cached = self._series.get(key)
        if cached is None:
            match = (pl.col("symbol") == symbol) & (pl.col("interval_ms") == interval_ms)
            cached = (
                pl.concat([self._base.filter(match), self._recent.filter(match)])
                .sort("start_ts")
                .tail(self.per_series)
            )
            self._series[key] = cached
        return cached


def _capped(frame: pl.DataFrame, per_series: int) -> pl.DataFrame:
    """The newest ``per_series`` candles of each (symbol, interval)."""
    if frame.height <= per_series:
        return frame
    return frame.filter(
        pl.col("start_ts").rank("ordinal", descending=True).over(["symbol", "interval_ms"])
        <= per_series
    )


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
