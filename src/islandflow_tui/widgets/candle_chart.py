"""A terminal candlestick chart: a pure renderer plus a Line-API widget that paints it.

Why a renderer of our own: no plotting library is installed and the chart must
be crisp at 80x24 over SSH.  Candles use the box-drawing trick of terminal
candle charts (heavy line = body, light line = wick) at *half-cell* vertical
resolution: each cell's top and bottom half are each empty, wick or body, and
the nine combinations have a glyph each (``╿`` is body above wick, ``╽`` wick
above body, ...).  Everything is computed with numpy over the visible columns
and each row becomes runs of equal style, so a 200x60 redraw is a few ms
(bench/bench_candles.py).

Layout, top to bottom::

    SPY 1m  O 580.12 H 580.50 L 579.90 C 580.33  V 12.3k off 41%  vwap 580.20   LIVE
    ╷  ┃ ╻ ──────────────────                                            ┤580.50
    ┃╿ ┃ ┃ ...           price pane: candles, session VWAP (─)           ┤580.25
    ◆   ●                 markers: ◆ dark inference, ● option alert, ✱ both
    ▂█▅▃ ...              volume pane: off-exchange share in its own colour
    09:35     09:45       time axis (New York)

* ``ChartSeries`` holds one symbol/interval's candles as numpy arrays, with
  the session VWAP (cumulative by New York day) computed once.
* ``render_chart`` is pure: (series, marks, size, zoom, window) -> rows of
  (text, component class) runs, plus the geometry tests check
  (``price_to_level``, the visible window, the price range).
* ``CandleChart`` caches the rendered strips per (data version, size, view) and
  returns them from ``render_line``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Final
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from islandflow_tui.engine import events as ev
from islandflow_tui.widgets.tape_view import compact_number

ET: Final = ZoneInfo("America/New_York")
NS_PER_MIN: Final = 60 * ev.NS_PER_S

# Half-cell states and the glyph of each (top, bottom) pair.
EMPTY, WICK, BODY = 0, 1, 2
GLYPHS: Final = np.array(
    [
        # bottom: empty wick  body      (top)
        [" ", "╷", "╻"],  # empty
        ["╵", "│", "╽"],  # wick
        ["╹", "╿", "┃"],  # body
    ]
)
BLOCKS: Final = np.array([" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"])
VWAP_GLYPH: Final = "─"
DARK_GLYPH: Final = "◆"
ALERT_GLYPH: Final = "●"
BOTH_GLYPH: Final = "✱"

#: (columns per candle, candles per column), from most zoomed in to most zoomed out
ZOOM_LEVELS: Final[tuple[tuple[int, int], ...]] = (
    (3, 1),
    (2, 1),
    (1, 1),
    (1, 2),
    (1, 4),
    (1, 8),
)
DEFAULT_ZOOM: Final = 1
MIN_WIDTH: Final = 24
MIN_HEIGHT: Final = 8
NICE_STEPS: Final = (1.0, 2.0, 2.5, 5.0)
NICE_MINUTES: Final = (1, 2, 5, 10, 15, 30, 60, 120, 240, 390, 1440)

#: component classes that set a background (app.tcss): blank cells never borrow them
BACKGROUND_CLASSES: Final = np.array(
    ["candle--vol-split", "candle--last-up", "candle--last-down", "candle--panned"], dtype=object
)

Run = tuple[str, str]  # (text, component class)
Row = list[Run]


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def _et_offset_s(ts_ns: int) -> int:
    """New York's UTC offset at ``ts_ns``, in seconds (DST-aware)."""
    moment = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).astimezone(ET)
    offset = moment.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


@dataclass(frozen=True, slots=True)
class ChartSeries:
    """One symbol/interval's candles, oldest first, as numpy arrays.

    Rows with a non-finite price, or whose high/low do not bound open/close, are
    repaired (high/low widened to the OHLC extremes) or dropped, so the renderer
    never sees NaN.  ``session_vwap`` is sum(vwap*volume)/sum(volume) since the
    first candle of the candle's New York day: the VWAP line traders watch.
    """

    symbol: str
    interval_ms: int
    start_ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    off_volume: np.ndarray
    session_vwap: np.ndarray
    final: np.ndarray

    @property
    def n(self) -> int:
        return len(self.start_ts)

    @classmethod
    def empty(cls, symbol: str = "", interval_ms: int = 60_000) -> ChartSeries:
        f = np.zeros(0, dtype=np.float64)
        return cls(
            symbol,
            interval_ms,
            np.zeros(0, dtype=np.int64),
            f,
            f,
            f,
            f,
            f,
            f,
            f,
            np.zeros(0, dtype=bool),
        )

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, symbol: str, interval_ms: int) -> ChartSeries:
        """From ``candles`` rows of one symbol/interval (any order; one row per start)."""
        if frame.height == 0:
            return cls.empty(symbol, interval_ms)
        if not frame.get_column("start_ts").is_sorted():
            frame = frame.sort("start_ts")

        def col(name: str, null: float | bool, dtype: type) -> np.ndarray:
            series = frame.get_column(name)
            if series.null_count():
                series = series.fill_null(null)
            return series.to_numpy().astype(dtype, copy=False)

        nan = float("nan")
        o = col("open", nan, np.float64)
        h = col("high", nan, np.float64)
        lo = col("low", nan, np.float64)
        c = col("close", nan, np.float64)
        ok = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
        vol = col("volume", 0, np.float64)
        off = col("off_exchange_volume", 0, np.float64)
        vwap = col("vwap", nan, np.float64)
        start = col("start_ts", 0, np.int64)
        final = col("final", True, bool)
        if not ok.all():
            o, h, lo, c, vol, off, vwap, start, final = (
                a[ok] for a in (o, h, lo, c, vol, off, vwap, start, final)
            )
        high = np.maximum.reduce([o, h, lo, c]) if len(o) else h
        low = np.minimum.reduce([o, h, lo, c]) if len(o) else lo
        vol = np.where(np.isfinite(vol) & (vol > 0), vol, 0.0)
        off = np.clip(np.where(np.isfinite(off), off, 0.0), 0.0, vol)
        return cls(
            symbol,
            interval_ms,
            start,
            o,
            high,
            low,
            c,
            vol,
            off,
            session_vwap(start, vwap, vol, c),
            final,
        )


def session_vwap(
    start_ts: np.ndarray, vwap: np.ndarray, volume: np.ndarray, close: np.ndarray
) -> np.ndarray:
    """Cumulative VWAP per New York day; a candle without a usable vwap counts at its close."""
    n = len(start_ts)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    price = np.where(np.isfinite(vwap) & (vwap > 0), vwap, close)
    offset = _et_offset_s(int(start_ts[-1]))
    day = (start_ts // ev.NS_PER_S + offset) // 86_400
    pv = price * volume
    cum_pv = np.cumsum(pv)
    cum_v = np.cumsum(volume)
    # restart the sums at each new day
    first = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    seg = np.repeat(first, np.diff(np.r_[first, n]))
    base_pv = np.where(seg > 0, cum_pv[np.maximum(seg - 1, 0)], 0.0)
    base_v = np.where(seg > 0, cum_v[np.maximum(seg - 1, 0)], 0.0)
    vol_day = cum_v - base_v
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(vol_day > 0, (cum_pv - base_pv) / vol_day, price)
    return out.astype(np.float64)


@dataclass(frozen=True, slots=True)
class ChartMarks:
    """Event times (ns, sorted) of dark inferences and option alerts for the symbol."""

    dark: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    alerts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


# ---------------------------------------------------------------------------
# Geometry (pure)
# ---------------------------------------------------------------------------
def price_to_level(prices: np.ndarray, lo: float, hi: float, levels: int) -> np.ndarray:
    """Half-cell level of each price: 0 is the bottom half of the bottom row,
    ``levels - 1`` the top half of the top row.  ``hi`` maps to the top level."""
    prices = np.asarray(prices, dtype=np.float64)
    span = hi - lo
    if levels <= 0:
        return np.zeros(prices.shape, dtype=np.int64)
    if not span > 0:
        return np.full(prices.shape, levels // 2, dtype=np.int64)
    raw = np.floor((prices - lo) / span * levels)
    raw = np.where(np.isfinite(raw), raw, -1)
    return np.clip(raw, 0, levels - 1).astype(np.int64)


def price_range(low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """The price span to draw: the candles' extremes plus a 4 % margin; a flat
    market gets a span of 0.1 % of its price (at least a cent) so it is centred."""
    if len(low) == 0:
        return 0.0, 1.0
    lo = float(np.min(low))
    hi = float(np.max(high))
    span = hi - lo
    if span <= 0:
        pad = max(0.01, abs(hi) * 0.001)
        return lo - pad, hi + pad
    pad = span * 0.04
    return lo - pad, hi + pad


def nice_step(span: float, target_labels: int) -> float:
    """A 1/2/2.5/5 x 10^k step giving about ``target_labels`` labels over ``span``."""
    if span <= 0 or target_labels <= 0:
        return 1.0
    raw = span / target_labels
    exp = math.floor(math.log10(raw))
    for mult in (*NICE_STEPS, 10.0):
        step = mult * 10.0**exp
        if step >= raw:
            return step
    return 10.0 ** (exp + 1)


def price_decimals(step: float) -> int:
    """Two decimals for stock prices; more when the axis step is below a cent."""
    if step <= 0:
        return 2
    return int(min(4, max(2, -math.floor(math.log10(step) + 1e-9))))


@dataclass(frozen=True, slots=True)
class Window:
    """Which candles are visible: ``[first, last)`` of the series, grouped ``merge`` per column."""

    first: int
    last: int
    cols_per_candle: int
    merge: int

    @property
    def count(self) -> int:
        return self.last - self.first


def visible_window(n: int, plot_width: int, zoom: int, end: int | None) -> Window:
    """The candles that fit ``plot_width`` at ``zoom``, ending just before ``end``
    (``None``: the live edge).  Column groups are aligned to absolute indexes so
    a merged column keeps its candles while panning."""
    cols, merge = ZOOM_LEVELS[max(0, min(zoom, len(ZOOM_LEVELS) - 1))]
    last = n if end is None else max(0, min(end, n))
    columns = max(1, plot_width // cols)
    if merge > 1 and last:
        group_end = -(-last // merge) * merge  # the group holding the last candle
        first = max(0, group_end - columns * merge)
    else:
        first = max(0, last - columns * merge)
    return Window(first, last, cols, merge)


# ---------------------------------------------------------------------------
# Rendering (pure)
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChartRender:
    """Rendered rows plus the geometry they were drawn with (for tests and the screen)."""

    rows: list[Row]
    window: Window
    lo: float
    hi: float
    price_rows: int
    volume_rows: int
    plot_width: int

    @property
    def lines(self) -> list[str]:
        return ["".join(text for text, _ in row) for row in self.rows]


def _runs(chars: np.ndarray, classes: np.ndarray, *, fill: bool = True) -> Row:
    """One row of cells -> runs of equal class.

    With ``fill`` a blank cell takes the class of the cell before it (the first
    blanks the class after them): a space looks the same in any class without a
    background, and a price-pane row then costs a few runs instead of one per
    candle and gap (bench/bench_candles.py).
    """
    n = len(chars)
    if n == 0:
        return []
    if fill:
        blank = chars == " "
        if blank.all():
            return [("".join(chars), "")]
        idx = np.where(blank, 0, np.arange(n))
        np.maximum.accumulate(idx, out=idx)
        first = int(np.argmax(~blank))
        idx[:first] = first
        filled = classes[idx]
        # a class with a background would paint the blank: those blanks stay plain
        painted = blank & np.isin(filled, BACKGROUND_CLASSES)
        classes = np.where(painted, "", filled) if painted.any() else filled
    text = np.ascontiguousarray(chars, dtype="<U1").view(f"<U{n}")[0].ljust(n)
    cuts = (np.flatnonzero(classes[1:] != classes[:-1]) + 1).tolist()
    bounds = [0, *cuts, n]
    return [(text[a:b], str(classes[a])) for a, b in itertools.pairwise(bounds)]


def _group(series: ChartSeries, window: Window) -> dict[str, np.ndarray]:
    """Visible candles, merged ``window.merge`` per column (OHLC of the group)."""
    sl = slice(window.first, window.last)
    start = series.start_ts[sl]
    if window.merge == 1 or len(start) == 0:
        return {
            "start": start,
            "open": series.open[sl],
            "high": series.high[sl],
            "low": series.low[sl],
            "close": series.close[sl],
            "volume": series.volume[sl],
            "off": series.off_volume[sl],
            "vwap": series.session_vwap[sl],
        }
    idx = np.arange(window.first, window.last) // window.merge
    heads = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    tails = np.r_[heads[1:], len(idx)] - 1
    return {
        "start": start[heads],
        "open": series.open[sl][heads],
        "high": np.maximum.reduceat(series.high[sl], heads),
        "low": np.minimum.reduceat(series.low[sl], heads),
        "close": series.close[sl][tails],
        "volume": np.add.reduceat(series.volume[sl], heads),
        "off": np.add.reduceat(series.off_volume[sl], heads),
        "vwap": series.session_vwap[sl][tails],
    }


def _header(
    series: ChartSeries,
    cols: dict[str, np.ndarray],
    width: int,
    decimals: int,
    badge: tuple[str, str],
) -> Row:
    """Title and the newest visible candle's numbers; whole items drop from the right
    when the width is short, so no number is ever cut in half."""
    interval = interval_label(series.interval_ms)
    items: list[Row] = [[(f"{series.symbol} {interval}", "candle--title")]]
    if len(cols["start"]):
        i = len(cols["start"]) - 1
        vol = float(cols["volume"][i])
        off = float(cols["off"][i]) / vol if vol > 0 else 0.0
        cls = "candle--up" if cols["close"][i] >= cols["open"][i] else "candle--down"
        for label, key in (("O", "open"), ("H", "high"), ("L", "low"), ("C", "close")):
            items.append([(f" {label} ", "candle--label"), (f"{cols[key][i]:.{decimals}f}", cls)])
        items.append([("  V ", "candle--label"), (compact_number(vol), "candle--value")])
        items.append([(" off ", "candle--label"), (f"{off:.0%}", "candle--off")])
        items.append(
            [("  vwap ", "candle--label"), (f"{cols['vwap'][i]:.{decimals}f}", "candle--vwap")]
        )
    text, cls = badge
    room = width - len(text) - 1
    runs: Row = []
    used = 0
    for item in items:
        size = sum(len(t) for t, _ in item)
        if used + size > room:
            break
        runs.extend(item)
        used += size
    if not runs:  # not even the title fits beside the badge: the title wins
        title = items[0][0][0][: max(0, width)]
        return [(title.ljust(width), "candle--title")]
    runs.append((" " * max(0, width - used - len(text)), ""))
    runs.append((text[: max(0, width - used)], cls))
    return runs


def interval_label(interval_ms: int) -> str:
    """``1m``, ``5m``, ``1h``, ``30s``."""
    s = interval_ms // 1000
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def render_chart(
    series: ChartSeries,
    marks: ChartMarks,
    width: int,
    height: int,
    *,
    zoom: int = DEFAULT_ZOOM,
    end: int | None = None,
    badge: tuple[str, str] = ("", ""),
) -> ChartRender:
    """Rows of (text, class) runs exactly ``width`` cells wide and ``height`` rows tall.

    ``end`` is one past the rightmost candle to show (``None`` follows the live
    edge); ``badge`` is the (text, class) shown at the right of the header.
    """
    width = max(0, width)
    height = max(0, height)
    blank: Row = [(" " * width, "")]
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        msg = "chart needs more room"[:width]
        rows = [[(msg.ljust(width), "candle--muted")]] + [blank[:] for _ in range(height - 1)]
        return ChartRender(rows[:height], Window(0, 0, 1, 1), 0.0, 1.0, 0, 0, 0)

    # -- layout: header, price pane, marker row, volume pane, time axis ----------
    body_rows = height - 3
    volume_rows = max(2, round(body_rows * 0.2))
    price_rows = body_rows - volume_rows
    levels = price_rows * 2
    axis_w = 9  # a first guess; settled below once the visible prices are known
    for _ in range(3):
        plot_w = width - axis_w
        window = visible_window(series.n, plot_w, zoom, end)
        cols = _group(series, window)
        lo, hi = price_range(cols["low"], cols["high"])
        step = nice_step(hi - lo, max(1, price_rows // 3))
        decimals = price_decimals(step)
        need = max(len(f"{hi:.{decimals}f}"), len(f"{lo:.{decimals}f}"), 5) + 2
        if need == axis_w:
            break
        axis_w = need
    ncol = len(cols["start"])
    cpc = window.cols_per_candle

    header = _header(series, cols, width, decimals, badge)
    if ncol == 0:
        msg = f"no candles yet for {series.symbol or 'any symbol'}"
        rows = [header]
        for r in range(height - 1):
            text = msg.center(width) if r == (height - 1) // 2 else " " * width
            rows.append([(text, "candle--muted")])
        return ChartRender(rows, window, lo, hi, price_rows, volume_rows, plot_w)

    # -- candle columns: where each candle's glyph column sits in the plot ---------
    # Right-aligned to the plot's right edge; within its cells the candle sits in
    # the middle (cpc 3) or the first cell (cpc 2: candle + gap).
    left = plot_w - ncol * cpc
    pos = left + np.arange(ncol) * cpc + (1 if cpc == 3 else 0)
    up = cols["close"] >= cols["open"]
    candle_cls = np.where(up, "candle--up", "candle--down")

    # -- price pane ----------------------------------------------------------------
    wick_lo = price_to_level(cols["low"], lo, hi, levels)
    wick_hi = price_to_level(cols["high"], lo, hi, levels)
    body_lo = price_to_level(np.minimum(cols["open"], cols["close"]), lo, hi, levels)
    body_hi = price_to_level(np.maximum(cols["open"], cols["close"]), lo, hi, levels)
    lv = np.arange(levels)[:, None]
    state = np.where(
        (lv >= body_lo) & (lv <= body_hi), BODY, np.where((lv >= wick_lo) & (lv <= wick_hi), 1, 0)
    )  # (levels, ncol), level 0 at the bottom
    top = state[1::2][::-1]  # (price_rows, ncol), row 0 at the top
    bottom = state[0::2][::-1]
    glyphs = GLYPHS[top, bottom]

    grid = np.full((price_rows, plot_w), " ", dtype="<U1")
    gcls = np.full((price_rows, plot_w), "", dtype=object)
    # VWAP line first (under the candles): one row per candle slot, continued over gaps
    vwap_row = price_rows - 1 - price_to_level(cols["vwap"], lo, hi, levels) // 2
    vwap_in = (cols["vwap"] >= lo) & (cols["vwap"] <= hi) & np.isfinite(cols["vwap"])
    for k in range(cpc):
        x = left + np.arange(ncol) * cpc + k
        ok = vwap_in & (x >= 0)
        grid[vwap_row[ok], x[ok]] = VWAP_GLYPH
        gcls[vwap_row[ok], x[ok]] = "candle--vwap"
    occupied = glyphs != " "
    rows_idx, cols_idx = np.nonzero(occupied)
    grid[rows_idx, pos[cols_idx]] = glyphs[rows_idx, cols_idx]
    gcls[rows_idx, pos[cols_idx]] = candle_cls[cols_idx]

    # -- price axis ----------------------------------------------------------------
    axis_text = [" " * axis_w for _ in range(price_rows)]
    axis_cls = ["candle--axis"] * price_rows
    label_rows: dict[int, str] = {}
    first_tick = math.ceil(lo / step) * step
    tick = first_tick
    while tick <= hi + step * 1e-9:
        row = price_rows - 1 - int(price_to_level(np.array([tick]), lo, hi, levels)[0]) // 2
        label_rows.setdefault(row, f"{tick:.{decimals}f}")
        tick += step
    last_close = float(cols["close"][-1])
    last_row = price_rows - 1 - int(price_to_level(np.array([last_close]), lo, hi, levels)[0]) // 2
    for row in list(label_rows):
        if abs(row - last_row) <= 0:
            del label_rows[row]
    for row in range(price_rows):
        label = label_rows.get(row)
        axis_text[row] = ("┤" + label).ljust(axis_w) if label else "│".ljust(axis_w)
    axis_text[last_row] = ("◀" + f"{last_close:.{decimals}f}").ljust(axis_w)[:axis_w]
    axis_cls[last_row] = "candle--last-up" if up[-1] else "candle--last-down"

    rows: list[Row] = [header]
    for r in range(price_rows):
        runs = _runs(grid[r], gcls[r])
        runs.append((axis_text[r][:axis_w], axis_cls[r]))
        rows.append(runs)

    # -- marker row ------------------------------------------------------------------
    interval_ns = series.interval_ms * ev.NS_PER_MS
    edges = np.r_[cols["start"], cols["start"][-1] + interval_ns * window.merge]
    dark_n = np.diff(np.searchsorted(marks.dark, edges, side="left"))
    alert_n = np.diff(np.searchsorted(marks.alerts, edges, side="left"))
    mrow = np.full(plot_w, " ", dtype="<U1")
    mcls = np.full(plot_w, "", dtype=object)
    both = (dark_n > 0) & (alert_n > 0)
    only_dark = (dark_n > 0) & ~both
    only_alert = (alert_n > 0) & ~both
    mrow[pos[only_dark]] = DARK_GLYPH
    mcls[pos[only_dark]] = "candle--dark"
    mrow[pos[only_alert]] = ALERT_GLYPH
    mcls[pos[only_alert]] = "candle--alert"
    mrow[pos[both]] = BOTH_GLYPH
    mcls[pos[both]] = "candle--alert"
    legend = f"{DARK_GLYPH}dk{ALERT_GLYPH}al"
    marker_runs = _runs(mrow, mcls)
    marker_runs.append((("│" + legend).ljust(axis_w)[:axis_w], "candle--axis"))
    rows.append(marker_runs)

    # -- volume pane -----------------------------------------------------------------
    vmax = float(np.max(cols["volume"])) if ncol else 0.0
    eighths = volume_rows * 8
    if vmax > 0:
        total = np.where(
            cols["volume"] > 0, np.maximum(1, np.round(cols["volume"] / vmax * eighths)), 0
        ).astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(cols["volume"] > 0, cols["off"] / cols["volume"], 0.0)
        offe = np.round(share * total).astype(np.int64)
    else:
        total = np.zeros(ncol, dtype=np.int64)
        offe = np.zeros(ncol, dtype=np.int64)
    vol_label = compact_number(vmax)
    for r in range(volume_rows):
        k = volume_rows - 1 - r  # 0 = bottom row
        lit_fill = np.clip(total - 8 * k, 0, 8)
        off_fill = np.clip(offe - 8 * k, 0, 8)
        chars = BLOCKS[lit_fill]
        vcls = np.where(
            off_fill >= 8,
            "candle--vol-off",
            np.where(
                off_fill > 0,
                np.where(
                    lit_fill >= 8,
                    "candle--vol-split",
                    np.where(off_fill * 2 >= lit_fill, "candle--vol-off", "candle--vol"),
                ),
                "candle--vol",
            ),
        )
        split = (off_fill > 0) & (off_fill < 8) & (lit_fill >= 8)
        chars = np.where(split, BLOCKS[off_fill], chars)
        vrow = np.full(plot_w, " ", dtype="<U1")
        vcl = np.full(plot_w, "", dtype=object)
        vrow[pos] = chars
        vcl[pos] = vcls
        runs = _runs(vrow, vcl)
        if r == 0:
            axis = ("┤" + vol_label).ljust(axis_w)[:axis_w]
        elif r == volume_rows - 1:
            axis = "┤0".ljust(axis_w)[:axis_w]
        else:
            axis = "│".ljust(axis_w)
        runs.append((axis, "candle--axis"))
        rows.append(runs)

    # -- time axis -------------------------------------------------------------------
    rows.append(_time_axis(cols["start"], pos, plot_w, axis_w, interval_ns * window.merge, cpc))
    return ChartRender(rows, window, lo, hi, price_rows, volume_rows, plot_w)


def _time_axis(
    start: np.ndarray, pos: np.ndarray, plot_w: int, axis_w: int, column_ns: int, cpc: int
) -> Row:
    """``HH:MM`` (New York) under candles that open on a round time, never overlapping."""
    chars = [" "] * plot_w
    label_w = 5
    offset = _et_offset_s(int(start[-1]))
    minute = ((start // ev.NS_PER_S + offset) // 60) % 1440
    col_minutes = max(1, column_ns // NS_PER_MIN)
    need = -(-(label_w + 2) // cpc)  # columns between labels
    every = next((m for m in NICE_MINUTES if m >= need * col_minutes), NICE_MINUTES[-1])
    marks = np.flatnonzero(minute % every == 0)
    if len(marks) == 0:
        marks = np.array([0])
    next_free = 0
    for i in marks:
        x = min(int(pos[i]), plot_w - label_w)  # the newest label may lean left
        if x < next_free or x < 0:
            continue
        m = int(minute[i])
        text = f"{m // 60:02d}:{m % 60:02d}"
        chars[x : x + label_w] = list(text)
        next_free = x + label_w + 2
    return [("".join(chars), "candle--axis"), ("ET".ljust(axis_w)[:axis_w], "candle--axis")]


# ---------------------------------------------------------------------------
# Widget
# ---------------------------------------------------------------------------
class CandleChart(Widget):
    """Paints ``render_chart`` through the Line API; re-renders only on change.

    The screen sets ``series``/``marks`` (data down) with ``show``; zoom and the
    window end are attributes too, so the widget has no opinion on keys.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "candle--title",
        "candle--label",
        "candle--value",
        "candle--muted",
        "candle--up",
        "candle--down",
        "candle--vwap",
        "candle--axis",
        "candle--last-up",
        "candle--last-down",
        "candle--vol",
        "candle--vol-off",
        "candle--vol-split",
        "candle--off",
        "candle--dark",
        "candle--alert",
        "candle--live",
        "candle--panned",
    }

    DEFAULT_CSS = """
    CandleChart {
        height: 1fr;
    }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.series = ChartSeries.empty()
        self.marks = ChartMarks()
        self.zoom = DEFAULT_ZOOM
        self.end: int | None = None
        self.badge: tuple[str, str] = ("", "")
        self.version: object = None
        self.last_render: ChartRender | None = None
        self._key: tuple[object, ...] | None = None
        self._strips: list[Strip] = []
        self._styles: dict[str, Style] = {}

    def show(
        self,
        series: ChartSeries,
        marks: ChartMarks,
        *,
        zoom: int,
        end: int | None,
        badge: tuple[str, str],
        version: object,
    ) -> None:
        """New data or view; repaints only if any of it changed."""
        if (version, zoom, end, badge) == (self.version, self.zoom, self.end, self.badge):
            return
        self.series, self.marks = series, marks
        self.zoom, self.end, self.badge, self.version = zoom, end, badge, version
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._key = None

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self.get_component_rich_style(name) if name else self.rich_style
            self._styles[name] = style
        return style

    def render_strips(self, width: int, height: int) -> list[Strip]:
        """All lines for a ``width`` x ``height`` chart (cached per data version and view)."""
        key = (self.version, self.zoom, self.end, self.badge, width, height)
        if key != self._key:
            render = render_chart(
                self.series,
                self.marks,
                width,
                height,
                zoom=self.zoom,
                end=self.end,
                badge=self.badge,
            )
            self.last_render = render
            base = self._style("")
            # every glyph the renderer uses is one cell wide, so the length is known
            self._strips = [
                Strip(
                    [Segment(text, self._style(cls)) for text, cls in row],
                    sum(len(text) for text, _ in row),
                ).adjust_cell_length(width, base)
                for row in render.rows
            ]
            self._key = key
        return self._strips

    def render_line(self, y: int) -> Strip:
        region = self.content_region
        strips = self.render_strips(region.width, region.height)
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(region.width, self._style(""))

    def visible_text(self) -> list[str]:
        """Plain text of every line (tests, debugging)."""
        region = self.content_region
        return [s.text for s in self.render_strips(region.width, region.height)]


def series_marks(
    dark_ts: Sequence[int] | np.ndarray, alert_ts: Sequence[int] | np.ndarray
) -> ChartMarks:
    """Sorted int64 arrays from any sequences of times."""
    return ChartMarks(
        np.sort(np.asarray(dark_ts, dtype=np.int64)), np.sort(np.asarray(alert_ts, dtype=np.int64))
    )
