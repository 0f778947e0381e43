"""The candle chart renderer (pure) and the candle/marker models.

Renderer: price -> half-cell mapping, OHLC edge cases (flat candle, gaps, one
candle, all the same price, a huge range, NaN rows), glyphs, volume and
off-exchange share, markers, axes, zoom/window and exact line widths.
Models: newest state per (symbol, interval, start) by seq, whatever the batching
(a hypothesis property against an independent group_by).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from islandflow_tui.engine import events as ev
from islandflow_tui.widgets.candle_chart import (
    ALERT_GLYPH,
    BOTH_GLYPH,
    DARK_GLYPH,
    GLYPHS,
    VWAP_GLYPH,
    ZOOM_LEVELS,
    ChartMarks,
    ChartSeries,
    _group,
    interval_label,
    nice_step,
    price_decimals,
    price_range,
    price_to_level,
    render_chart,
    series_marks,
    session_vwap,
    visible_window,
)
from islandflow_tui.widgets.candle_model import CandleModel, MarkModel
from tests.eq_fixtures import START_NS, candle_rows, full_frame

MIN_NS = 60 * ev.NS_PER_S
CANDLE_GLYPHS = set("╷╻╵│╽╹╿┃")


def series(rows: list[dict[str, float]], symbol: str = "SPY") -> ChartSeries:
    """Candles one minute apart from 09:30 (``start`` overrides the minute index)."""
    full = []
    for i, r in enumerate(rows):
        minute = r.pop("minute", i) if "minute" in r else i
        full.append({"start_ts": START_NS + int(minute) * MIN_NS, "ts": START_NS, **r})
    return ChartSeries.from_frame(candle_rows(full), symbol, 60_000)


def ohlc(o: float, h: float, lo: float, c: float, **kw: float) -> dict[str, float]:
    return {"open": o, "high": h, "low": lo, "close": c, **kw}


def plot_lines(render: object, *, price_only: bool = True) -> list[str]:
    r = render  # ChartRender
    lines = r.lines  # type: ignore[attr-defined]
    body = lines[1 : 1 + r.price_rows] if price_only else lines  # type: ignore[attr-defined]
    return [ln[: r.plot_width] for ln in body]  # type: ignore[attr-defined]


def candle_cells(render: object) -> list[tuple[int, int, str]]:
    """(row, column, glyph) of every candle glyph in the price pane."""
    return [
        (y, x, ch)
        for y, line in enumerate(plot_lines(render))
        for x, ch in enumerate(line)
        if ch in CANDLE_GLYPHS
    ]


# ---------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------
def test_price_to_level_maps_ends_middle_and_clamps() -> None:
    levels = 20
    got = price_to_level(np.array([100.0, 110.0, 105.0, 104.99, 90.0, 120.0]), 100, 110, levels)
    assert got.tolist() == [0, 19, 10, 9, 0, 19]
    # zero span: everything in the middle; NaN never escapes as a level outside the grid
    assert price_to_level(np.array([5.0, 5.0]), 5, 5, levels).tolist() == [10, 10]
    nan = price_to_level(np.array([math.nan, math.inf]), 0, 1, levels)
    assert ((nan >= 0) & (nan < levels)).all()


def test_price_range_pads_and_handles_flat_prices() -> None:
    lo, hi = price_range(np.array([100.0]), np.array([110.0]))
    assert lo == pytest.approx(99.6) and hi == pytest.approx(110.4)
    lo, hi = price_range(np.array([50.0, 50.0]), np.array([50.0, 50.0]))
    assert lo < 50 < hi and hi - lo == pytest.approx(0.1)
    lo, hi = price_range(np.array([0.5]), np.array([0.5]))  # a cent at least
    assert hi - lo == pytest.approx(0.02)


def test_nice_steps_and_decimals() -> None:
    assert nice_step(10, 5) == 2.0
    assert nice_step(1.1, 4) == 0.5
    assert nice_step(0.03, 3) == 0.01
    assert price_decimals(0.5) == 2 and price_decimals(0.001) == 3 and price_decimals(50) == 2
    assert interval_label(60_000) == "1m" and interval_label(300_000) == "5m"
    assert interval_label(3_600_000) == "1h" and interval_label(30_000) == "30s"


def test_glyph_table_covers_every_half_cell_pair() -> None:
    assert GLYPHS.shape == (3, 3)
    assert GLYPHS[0, 0] == " " and GLYPHS[2, 2] == "┃" and GLYPHS[1, 1] == "│"
    assert GLYPHS[2, 1] == "╿" and GLYPHS[1, 2] == "╽"  # body over wick, wick over body
    assert len({str(g) for g in GLYPHS.ravel()}) == 9


def test_visible_window_follows_the_live_edge_and_pans() -> None:
    w = visible_window(500, 100, 1, None)  # zoom 1: 2 columns per candle -> 50 candles
    assert (w.first, w.last, w.count) == (450, 500, 50)
    w = visible_window(500, 100, 1, 300)
    assert (w.first, w.last) == (250, 300)
    w = visible_window(10, 100, 1, None)
    assert (w.first, w.last) == (0, 10)
    # merged zooms keep groups aligned to absolute indexes
    _, merge = ZOOM_LEVELS[4]
    w = visible_window(501, 100, 4, None)
    assert merge == 4 and w.last == 501 and (w.first % merge) == 0
    assert w.count <= 100 * merge


def test_merged_columns_aggregate_ohlc() -> None:
    s = series([ohlc(10, 12, 9, 11), ohlc(11, 15, 10, 14), ohlc(14, 14, 8, 9), ohlc(9, 10, 9, 10)])
    w = visible_window(s.n, 10, 3, None)  # (1 col, 2 candles per column)
    cols = _group(s, w)
    assert cols["open"].tolist() == [10, 14]
    assert cols["high"].tolist() == [15, 14]
    assert cols["low"].tolist() == [9, 8]
    assert cols["close"].tolist() == [14, 10]
    assert cols["volume"].tolist() == [2000, 2000]


def test_session_vwap_is_cumulative_and_restarts_each_new_york_day() -> None:
    day = 86_400 * ev.NS_PER_S
    start = np.array([START_NS, START_NS + MIN_NS, START_NS + day], dtype=np.int64)
    vwap = np.array([10.0, 20.0, 30.0])
    volume = np.array([100.0, 300.0, 50.0])
    got = session_vwap(start, vwap, volume, vwap)
    assert got.tolist() == pytest.approx([10.0, 17.5, 30.0])
    # a candle without volume or vwap does not poison the line
    got = session_vwap(start[:2], np.array([math.nan, 20.0]), np.array([0.0, 10.0]), vwap[:2])
    assert np.isfinite(got).all() and got[-1] == pytest.approx(20.0)


# ---------------------------------------------------------------------------
# rendering: shape and edge cases
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(("width", "height"), [(80, 22), (160, 46), (200, 58), (24, 8), (30, 10)])
def test_every_line_is_exactly_the_widget_size(width: int, height: int) -> None:
    s = series([ohlc(100 + i, 101 + i, 99 + i, 100.5 + i) for i in range(300)])
    r = render_chart(s, ChartMarks(), width, height, badge=("● LIVE", "candle--live"))
    assert len(r.rows) == height
    assert all(len(line) == width for line in r.lines), [len(x) for x in r.lines]
    assert not any("nan" in line.lower() for line in r.lines)


def test_too_small_and_empty_say_so() -> None:
    s = series([ohlc(1, 2, 0.5, 1.5)])
    tiny = render_chart(s, ChartMarks(), 23, 6)
    assert tiny.lines[0].startswith("chart needs more room") and len(tiny.lines) == 6
    empty = render_chart(ChartSeries.empty("TSLA"), ChartMarks(), 80, 20)
    assert any("no candles yet for TSLA" in line for line in empty.lines)
    assert all(len(line) == 80 for line in empty.lines)


def test_one_candle_draws_body_wick_axes_and_time() -> None:
    s = series([ohlc(100.0, 104.0, 96.0, 102.0)])
    r = render_chart(s, ChartMarks(), 60, 20)
    cells = candle_cells(r)
    xs = {x for _, x, _ in cells}
    assert len(xs) == 1  # one column
    glyphs = [g for _, _, g in sorted(cells)]
    assert "┃" in glyphs and "│" in glyphs  # body and wick
    # top to bottom: wick above the body, body, wick below
    body = [i for i, g in enumerate(glyphs) if g in "┃╿╽╹╻"]
    wick = [i for i, g in enumerate(glyphs) if g in "│╷╵"]
    assert min(wick) < min(body) and max(wick) > max(body)
    text = "\n".join(r.lines)
    assert "◀102.00" in text  # the last close on the axis
    assert "09:30" in r.lines[-1]  # time axis (New York)
    assert r.lines[0].startswith("SPY 1m") and "O 100.00" in r.lines[0] and "C 102.00" in r.lines[0]


def test_flat_candle_is_one_half_cell() -> None:
    s = series([ohlc(100, 101, 99, 100.5), ohlc(100.2, 100.2, 100.2, 100.2)])
    r = render_chart(s, ChartMarks(), 60, 20)
    flat_x = max(x for _, x, _ in candle_cells(r))
    flat = [g for _, x, g in candle_cells(r) if x == flat_x]
    assert flat in (["╹"], ["╻"])  # a doji: one half-cell of body, no wick


def test_all_candles_at_one_price_sit_on_one_row() -> None:
    s = series([ohlc(42.0, 42.0, 42.0, 42.0) for _ in range(30)])
    r = render_chart(s, ChartMarks(), 80, 20)
    cells = candle_cells(r)
    assert len(cells) == 30 and len({y for y, _, _ in cells}) == 1
    y = cells[0][0]
    assert 0 < y < r.price_rows - 1  # centred, not on an edge
    assert "◀42.00" in r.lines[1 + y]


def test_gaps_in_time_and_price_are_drawn_side_by_side() -> None:
    s = series(
        [
            ohlc(100, 101, 99, 100.5, minute=0),
            ohlc(100.5, 101, 100, 100.8, minute=1),
            ohlc(110, 111, 109, 110.5, minute=30),  # 28 minutes without prints, then a gap up
        ]
    )
    r = render_chart(s, ChartMarks(), 60, 20)
    xs = sorted({x for _, x, _ in candle_cells(r)})
    assert len(xs) == 3 and xs[2] - xs[1] == xs[1] - xs[0] == 2  # index-based, no hole
    rows_of = {x: [y for y, xx, _ in candle_cells(r) if xx == x] for x in xs}
    assert max(rows_of[xs[2]]) < min(rows_of[xs[1]])  # the gap candle is above, apart
    axis = r.lines[-1]
    assert "09:30" in axis or "10:00" in axis


def test_huge_range_stays_finite_and_in_bounds() -> None:
    s = series([ohlc(0.01, 0.02, 0.005, 0.015), ohlc(1e6, 2e6, 5e5, 1.5e6)])
    r = render_chart(s, ChartMarks(), 80, 24)
    assert all(len(line) == 80 for line in r.lines)
    assert not any("nan" in line.lower() or "inf" in line.lower() for line in r.lines)
    assert len({x for _, x, _ in candle_cells(r)}) == 2


def test_nan_and_inverted_rows_are_repaired_or_dropped() -> None:
    frame = candle_rows(
        [
            {"start_ts": START_NS, **ohlc(10, 11, 9, 10.5)},
            {"start_ts": START_NS + MIN_NS, **ohlc(math.nan, 11, 9, 10), "vwap": 10.0},
            {"start_ts": START_NS + 2 * MIN_NS, **ohlc(10, 9, 11, 10.2)},  # high < low
        ]
    )
    s = ChartSeries.from_frame(frame, "SPY", 60_000)
    assert s.n == 2
    assert (s.high >= np.maximum(s.open, s.close)).all()
    assert (s.low <= np.minimum(s.open, s.close)).all()
    r = render_chart(s, ChartMarks(), 60, 16)
    assert not any("nan" in line.lower() for line in r.lines)


def test_up_and_down_candles_get_their_classes() -> None:
    s = series([ohlc(10, 12, 9, 11.5), ohlc(11.5, 12, 9.5, 10)])
    r = render_chart(s, ChartMarks(), 60, 16)
    classes = {cls for row in r.rows[1 : 1 + r.price_rows] for _, cls in row}
    assert {"candle--up", "candle--down"} <= classes


def test_vwap_line_is_drawn_where_candles_are_not() -> None:
    # candles far below the VWAP of a heavy first candle
    s = series(
        [ohlc(100, 101, 99, 100, volume=100_000), ohlc(90, 91, 89, 90), ohlc(90, 91, 89, 91)]
    )
    r = render_chart(s, ChartMarks(), 80, 20)
    assert any(VWAP_GLYPH in line for line in plot_lines(r))
    assert "vwap" in r.lines[0]


# ---------------------------------------------------------------------------
# volume, off-exchange share, markers
# ---------------------------------------------------------------------------
def test_volume_bars_scale_and_show_the_off_exchange_share() -> None:
    s = series(
        [
            ohlc(10, 11, 9, 10.5, volume=8000, off_exchange_volume=8000),  # all off-exchange
            ohlc(10, 11, 9, 10.5, volume=4000, off_exchange_volume=0),  # all lit
            ohlc(10, 11, 9, 10.5, volume=8000, off_exchange_volume=4000),  # half
            ohlc(10, 11, 9, 10.5, volume=8000, off_exchange_volume=2500),  # boundary mid-cell
        ]
    )
    r = render_chart(s, ChartMarks(), 60, 24)
    vol_rows = r.rows[2 + r.price_rows : 2 + r.price_rows + r.volume_rows]
    grid = []
    for row in vol_rows:
        cells: list[tuple[str, str]] = []
        for text, cls in row:
            cells.extend((ch, cls) for ch in text)
        grid.append(cells)
    xs = sorted({x for _, x, _ in candle_cells(r)})
    full = [grid[y][xs[0]] for y in range(r.volume_rows)]
    assert all(ch == "█" and cls == "candle--vol-off" for ch, cls in full)
    lit = [grid[y][xs[1]] for y in range(r.volume_rows)]
    assert all(cls == "candle--vol" for ch, cls in lit if ch != " ")
    assert sum(ch == "█" for ch, _ in lit) == r.volume_rows // 2  # half the height
    half = [cls for _, cls in (grid[y][xs[2]] for y in range(r.volume_rows))]
    assert half[-1] == "candle--vol-off" and half[0] == "candle--vol"  # off at the bottom
    assert "8.0k" in "".join(r.lines[2 + r.price_rows])  # the scale on the axis
    # blanks never borrow the split class (it has a background): gaps stay empty
    assert any(cls == "candle--vol-split" for row in grid for _, cls in row)
    for row in grid:
        for x, (ch, cls) in enumerate(row[: r.plot_width]):
            assert ch != " " or cls != "candle--vol-split", (x, row)


def test_markers_for_dark_inferences_and_alerts() -> None:
    s = series([ohlc(10, 11, 9, 10.5) for _ in range(5)])
    t = START_NS
    marks = series_marks([t + 1 * MIN_NS + 5, t + 3 * MIN_NS], [t + 2 * MIN_NS + 9, t + 3 * MIN_NS])
    r = render_chart(s, marks, 60, 20)
    xs = sorted({x for _, x, _ in candle_cells(r)})
    row = r.lines[1 + r.price_rows]
    assert [row[x] for x in xs] == [" ", DARK_GLYPH, ALERT_GLYPH, BOTH_GLYPH, " "]
    # a mark outside the candles' times is not drawn
    far = series_marks([t - 10 * MIN_NS], [t + 100 * MIN_NS])
    row = render_chart(s, far, 60, 20).lines[1 + r.price_rows]
    assert DARK_GLYPH not in row[: r.plot_width] and ALERT_GLYPH not in row[: r.plot_width]


def test_header_keeps_the_badge_and_whole_numbers_when_narrow() -> None:
    s = series([ohlc(580.12, 580.5, 579.9, 580.33)])
    wide = render_chart(s, ChartMarks(), 120, 20, badge=("● LIVE", "candle--live")).lines[0]
    assert "O 580.12" in wide and "vwap" in wide and wide.rstrip().endswith("● LIVE")
    narrow = render_chart(s, ChartMarks(), 40, 20, badge=("● LIVE", "candle--live")).lines[0]
    assert narrow.rstrip().endswith("● LIVE") and narrow.startswith("SPY 1m")
    assert "580.1 " not in narrow  # numbers are never cut


def test_zoom_levels_show_more_candles_when_zoomed_out() -> None:
    s = series([ohlc(100 + i % 7, 102 + i % 7, 99 + i % 7, 101 + i % 7) for i in range(500)])
    counts = [render_chart(s, ChartMarks(), 200, 58, zoom=z).window.count for z in range(6)]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    assert counts[-1] == 500  # 1:8 fits every candle in 190 columns


# ---------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------
def _candle(seq: int, symbol: str, minute: int, close: float, final: bool) -> dict[str, object]:
    return {
        "seq": seq,
        "ts": START_NS + seq,
        "symbol": symbol,
        "start_ts": START_NS + minute * MIN_NS,
        **ohlc(100, max(100, close), min(100, close), close),
        "final": final,
    }


def test_in_progress_updates_are_replaced_by_newer_ones() -> None:
    model = CandleModel()
    model.extend(
        candle_rows([_candle(0, "SPY", 0, 100.5, False), _candle(1, "SPY", 0, 101, False)])
    )
    model.extend(candle_rows([_candle(2, "SPY", 0, 99.5, True), _candle(3, "SPY", 1, 99.7, False)]))
    s = model.series("SPY", 60_000)
    assert s["close"].to_list() == [99.5, 99.7] and s["final"].to_list() == [True, False]
    # a late, lower-seq row never overwrites a newer one
    model.extend(candle_rows([_candle(1, "SPY", 0, 150, False)]))
    assert model.series("SPY", 60_000)["close"].to_list() == [99.5, 99.7]
    assert model.intervals() == [60_000]


def test_symbols_are_ranked_by_volume_and_series_capped() -> None:
    model = CandleModel(per_series=3)
    rows = [
        {**_candle(i, "AAPL" if i % 2 else "SPY", i, 100.0, True), "volume": 10 if i % 2 else 5}
        for i in range(10)
    ]
    model.extend(candle_rows(rows))
    assert model.symbols() == ["AAPL", "SPY"]
    spy = model.series("SPY", 60_000)
    assert spy.height == 3 and spy["start_ts"].to_list() == [
        START_NS + m * MIN_NS for m in (4, 6, 8)
    ]


def test_marks_skip_retracted_alerts() -> None:
    marks = MarkModel()
    alerts = full_frame(
        ev.ALERTS,
        {"ts": [3, 1, 2], "root": ["SPY", "SPY", "QQQ"], "status": ["new", "retracted", "new"]},
    )
    marks.add_alerts(alerts)
    dark = full_frame(ev.DARK_INFERRED, {"ts": [9, 4], "symbol": ["SPY", "SPY"]})
    marks.add_dark(dark)
    d, a = marks.times("SPY")
    assert d.tolist() == [4, 9] and a.tolist() == [3]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["SPY", "QQQ"]),
            st.sampled_from([60_000, 300_000]),
            st.integers(0, 5),
            st.floats(1, 1000, allow_nan=False),
            st.booleans(),
        ),
        min_size=1,
        max_size=60,
    ),
    st.lists(st.integers(1, 20), min_size=1, max_size=10),
    st.sampled_from([3, 8, 4096]),
)
def test_model_keeps_the_newest_state_whatever_the_batching(
    updates: list[tuple[str, int, int, float, bool]], cuts: list[int], recent_max: int
) -> None:
    """Against an independent group_by, for any batching and with the recent tier
    flushed into the base tier often (``recent_max`` 3 or 8) or never."""
    rows = [
        {
            "seq": i,
            "ts": START_NS + i,
            "symbol": sym,
            "interval_ms": iv,
            "start_ts": START_NS + k * iv * ev.NS_PER_MS,
            **ohlc(price, price, price, price),
            "final": final,
        }
        for i, (sym, iv, k, price, final) in enumerate(updates)
    ]
    frame = candle_rows(rows)
    model = CandleModel(recent_max=recent_max)
    pos = 0
    for size in cuts * 10:
        if pos >= frame.height:
            break
        model.extend(frame.slice(pos, size))
        pos += size
    if pos < frame.height:
        model.extend(frame.slice(pos))
    expected = (
        frame.group_by(["symbol", "interval_ms", "start_ts"])
        .agg(pl.all().sort_by("seq").last())
        .sort(["symbol", "interval_ms", "start_ts"])
        .select(model.frame.columns)
    )
    assert model.frame.equals(expected)
