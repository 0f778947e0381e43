"""The Dark and Candles screens driven by keys (Textual Pilot).

The engine on this branch does not emit ``equities.joins``, ``dark.inferred`` or
``candles``; each test publishes the deterministic fixture frames
(tests/eq_fixtures.py) on the engine's bus, as the operators will, and the app
receives them through its display feed on ``app.tick()``.  Assertions look at
the models and at the rendered lines.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from islandflow_tui.engine import events as ev
from islandflow_tui.screens.candles import CandlesScreen
from islandflow_tui.screens.dark import DarkScreen
from islandflow_tui.screens.evidence import EvidenceScreen
from islandflow_tui.widgets.candle_chart import CandleChart
from islandflow_tui.widgets.dark_view import DarkDetail
from islandflow_tui.widgets.scrub_bar import ScrubBar
from islandflow_tui.widgets.tape_view import layout_columns
from tests.conftest import TapeRig
from tests.eq_fixtures import START_NS, EqFixture, candle_rows, make_eq_fixture, publish
from tests.test_replay_ui import make_replay, replay_master  # noqa: F401 (a fixture)

Rig = Callable[..., TapeRig]
MIN_NS = 60 * ev.NS_PER_S


@pytest.fixture
def eq(make_rig: Rig) -> tuple[TapeRig, EqFixture]:
    rig = make_rig("active", batches=0)
    fixture = make_eq_fixture()
    publish(rig.engine, fixture)
    return rig, fixture


async def paint(app: Any, pilot: Any) -> None:
    app.tick()
    await pilot.pause()


def column(view: Any, key: str) -> list[str]:
    width = view.scrollable_content_region.width
    offset = 0
    for col, w in layout_columns(view.columns, width).columns:
        if col.key == key:
            return [ln[offset : offset + w].strip() for ln in view.visible_text()[1:] if ln.strip()]
        offset += w + 1
    raise AssertionError(f"column {key} is not shown at width {width}")


def notes(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


# ---------------------------------------------------------------------------
# Dark
# ---------------------------------------------------------------------------
async def test_dark_lists_events_newest_first_beside_off_exchange_prints(
    eq: tuple[TapeRig, EqFixture],
) -> None:
    rig, fx = eq
    app = rig.app
    async with app.run_test(size=(160, 48)) as pilot:
        await paint(app, pilot)
        await pilot.press("4")
        await paint(app, pilot)
        screen = app.screen
        assert isinstance(screen, DarkScreen) and screen.has_class("-wide")
        events, prints = screen.views
        assert app.eq_data.dark.rows.height == fx.dark.height
        newest = fx.dark.sort("seq", descending=True)
        assert column(events, "symbol")[:5] == newest["symbol"].head(5).to_list()
        assert column(events, "pattern")[0] in {"BLOCK", "ACCUM", "LEVEL"}
        assert newest["explanation"][0][:20] in events.visible_text()[1]
        # only off-exchange prints, joined: placement and retail flag shown
        off = fx.joins.filter(pl.col("off_exchange"))
        assert app.eq_data.offex.rows.height == min(off.height, rig.cfg.ui.hot_window)
        assert set(column(prints, "venue")) == {"D"}
        assert set(column(prints, "placement")) <= {"AA", "A", "MID", "B", "BB"}
        assert any(r.startswith("R") for r in column(prints, "retail"))
        assert any(len(p.split(".")[1]) == 4 for p in column(prints, "price"))  # sub-penny
        line = str(screen.query_one("#dark-filter-line").render())
        assert f"{fx.dark.height}/{fx.dark.height} events" in line and " prints" in line
        detail = screen.query_one(DarkDetail).render().plain
        assert newest["explanation"][0] in detail and "evidence print" in detail


async def test_dark_filters_by_symbol_and_kind(eq: tuple[TapeRig, EqFixture]) -> None:
    rig, fx = eq
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(app, pilot)
        await pilot.press("4")
        await paint(app, pilot)
        events, prints = app.screen.views
        await pilot.press("slash", *"nvda", "enter")
        await paint(app, pilot)
        assert set(column(events, "symbol")) == {"NVDA"} and set(column(prints, "symbol")) == {
            "NVDA"
        }
        assert events.model.display.height == fx.dark.filter(pl.col("symbol") == "NVDA").height
        await pilot.press("t")  # all -> block
        await paint(app, pilot)
        assert set(column(events, "pattern")) == {"BLOCK"}
        await pilot.press("t", "t")  # -> accumulation -> level
        await paint(app, pilot)
        assert column(events, "pattern") == ["LEVEL"]
        line = str(app.screen.query_one("#dark-filter-line").render())
        assert "levels" in line and "NVDA" in line
        await pilot.press("x")
        await paint(app, pilot)
        assert events.model.display.height == fx.dark.height
        assert len(set(column(events, "symbol"))) > 1


async def test_dark_cursor_pauses_and_enter_opens_evidence(eq: tuple[TapeRig, EqFixture]) -> None:
    rig, fx = eq
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(app, pilot)
        await pilot.press("4")
        await paint(app, pilot)
        screen = app.screen
        events, _ = screen.views
        await pilot.press("down", "down")
        await paint(app, pilot)
        newest = fx.dark.sort("seq", descending=True)
        assert events.cursor == 2 and not events.model.following
        assert events.badge.startswith("PAUSED")
        assert events.selected is not None and events.selected["id"] == newest["id"][2]
        detail = screen.query_one(DarkDetail).render().plain
        assert newest["explanation"][2] in detail
        # new events arrive: the chosen row stays put
        more = fx.dark.tail(2).with_columns(
            pl.col("seq") + 10_000, pl.col("id") + 10_000, pl.col("ts") + 1
        )
        rig.engine.bus.publish(ev.DARK_INFERRED, more)
        await paint(app, pilot)
        assert events.selected["id"] == newest["id"][2] and events.model.pending == 2
        # enter opens the chosen event's Evidence screen; escape comes back
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, EvidenceScreen)
        assert app.screen.event_id == newest["id"][2]
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("up", "up")  # back on the newest: follows again
        await paint(app, pilot)
        assert events.cursor == 0 and events.model.following
        assert events.selected["id"] == more["id"][-1]


async def test_dark_space_pauses_both_lists(eq: tuple[TapeRig, EqFixture]) -> None:
    rig, _ = eq
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(app, pilot)
        await pilot.press("4", "space")
        await paint(app, pilot)
        assert all(not v.model.following for v in app.screen.views)
        await pilot.press("space")
        await paint(app, pilot)
        assert all(v.model.following for v in app.screen.views)


# ---------------------------------------------------------------------------
# Candles
# ---------------------------------------------------------------------------
def chart(app: Any) -> CandleChart:
    return app.screen.query_one(CandleChart)


async def open_candles(app: Any, pilot: Any) -> CandlesScreen:
    await paint(app, pilot)
    await pilot.press("5")
    await paint(app, pilot)
    screen = app.screen
    assert isinstance(screen, CandlesScreen)
    return screen


async def test_candles_chart_the_most_traded_symbol_at_the_shortest_interval(
    eq: tuple[TapeRig, EqFixture],
) -> None:
    rig, fx = eq
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_candles(app, pilot)
        top = (
            fx.candles.filter(pl.col("interval_ms") == 60_000)
            .group_by("symbol")
            .agg(pl.col("volume").sum())
            .sort("volume", descending=True)["symbol"][0]
        )
        assert screen.symbol == top and screen.interval_ms == 60_000
        lines = chart(app).visible_text()
        assert lines[0].startswith(f"{top} 1m") and "LIVE forming" in lines[0]
        last = fx.candles.filter(
            (pl.col("symbol") == top) & (pl.col("interval_ms") == 60_000)
        ).sort("start_ts")
        assert f"C {last['close'][-1]:.2f}" in lines[0]
        assert any("◀" in ln for ln in lines) and lines[-1].rstrip().endswith("ET")
        render = chart(app).last_render
        assert render is not None and render.window.last == last.height


async def test_candles_symbol_keys(eq: tuple[TapeRig, EqFixture]) -> None:
    rig, _ = eq
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_candles(app, pilot)
        symbols = sorted(app.eq_data.candles.symbols())
        first = screen.symbol
        i = symbols.index(first)
        await pilot.press("s")
        await paint(app, pilot)
        assert screen.symbol == symbols[(i + 1) % len(symbols)]
        assert chart(app).visible_text()[0].startswith(screen.symbol)
        await pilot.press("S")
        await paint(app, pilot)
        assert screen.symbol == first
        await pilot.press("slash", *"aapl", "enter")
        await paint(app, pilot)
        assert screen.symbol == "AAPL"
        await pilot.press("slash", *"zzz", "enter")
        await paint(app, pilot)
        assert screen.symbol == "ZZZ"
        assert any("no candles yet for ZZZ" in ln for ln in chart(app).visible_text())


async def test_candles_interval_and_zoom_keys(eq: tuple[TapeRig, EqFixture]) -> None:
    rig, fx = eq
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_candles(app, pilot)
        await pilot.press("i")
        await paint(app, pilot)
        assert screen.interval_ms == 300_000
        assert chart(app).visible_text()[0].startswith(f"{screen.symbol} 5m")
        n5 = fx.candles.filter(
            (pl.col("symbol") == screen.symbol) & (pl.col("interval_ms") == 300_000)
        ).height
        assert chart(app).last_render.window.count == n5
        await pilot.press("i")
        await paint(app, pilot)
        assert screen.interval_ms == 60_000
        counts = [chart(app).last_render.window.count]
        for key in ("minus", "minus", "minus", "minus", "minus"):
            await pilot.press(key)
            await paint(app, pilot)
            counts.append(chart(app).last_render.window.count)
        assert counts == sorted(counts) and counts[-1] == 60 and screen.zoom == 5
        await pilot.press("plus", "plus", "plus", "plus", "plus", "plus", "plus")
        await paint(app, pilot)
        assert screen.zoom == 0 and chart(app).last_render.window.count < counts[0]


async def test_candles_pan_stays_put_while_candles_arrive_and_f_follows(
    eq: tuple[TapeRig, EqFixture],
) -> None:
    rig, _ = eq
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_candles(app, pilot)
        n = screen.series().n
        live = chart(app).last_render.window
        assert live.last == n
        await pilot.press("h")
        await paint(app, pilot)
        panned = chart(app).last_render.window
        assert panned.last < n and not screen.following
        assert "PANNED" in chart(app).visible_text()[0]
        # a new candle closes and the next one forms: the view does not move
        last = app.eq_data.candles.series(screen.symbol, 60_000).tail(1)
        start = int(last["start_ts"][0])
        new = candle_rows(
            [
                {**last.row(0, named=True), "seq": 90_000, "final": True},
                {
                    **last.row(0, named=True),
                    "seq": 90_001,
                    "start_ts": start + MIN_NS,
                    "final": False,
                },
            ]
        )
        rig.engine.bus.publish(ev.CANDLES, new)
        await paint(app, pilot)
        assert screen.series().n == n + 1
        assert chart(app).last_render.window == panned
        assert f"+{n + 1 - panned.last}" in chart(app).visible_text()[0]
        await pilot.press("f")
        await paint(app, pilot)
        assert screen.following and chart(app).last_render.window.last == n + 1
        # panning right back onto the newest candle follows again
        await pilot.press("h", "l")
        await paint(app, pilot)
        assert screen.following
        await pilot.press("H", "H", "H", "H", "H", "H")  # never past the oldest full screen
        await paint(app, pilot)
        assert chart(app).last_render.window.first == 0


async def test_candles_in_progress_update_replaces_the_forming_candle(
    eq: tuple[TapeRig, EqFixture],
) -> None:
    rig, _ = eq
    app = rig.app
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_candles(app, pilot)
        before = screen.series().n
        last = app.eq_data.candles.series(screen.symbol, 60_000).tail(1).row(0, named=True)
        update = candle_rows(
            [{**last, "seq": 99_999, "close": last["high"], "volume": last["volume"] + 500}]
        )
        rig.engine.bus.publish(ev.CANDLES, update)
        await paint(app, pilot)
        assert screen.series().n == before
        assert f"C {last['high']:.2f}" in chart(app).visible_text()[0]


async def test_candles_markers_show_dark_events_and_alerts(eq: tuple[TapeRig, EqFixture]) -> None:
    rig, fx = eq
    app = rig.app
    async with app.run_test(size=(200, 60)) as pilot:
        screen = await open_candles(app, pilot)
        await pilot.press("minus", "minus")  # zoom out: the whole hour at one column each
        await paint(app, pilot)
        render = chart(app).last_render
        marker_row = render.lines[1 + render.price_rows][: render.plot_width]
        n_dark = fx.dark.filter(pl.col("symbol") == screen.symbol).height
        assert n_dark and "◆" in marker_row
        if fx.alerts.filter(pl.col("root") == screen.symbol).height:
            assert "●" in marker_row or "✱" in marker_row


# ---------------------------------------------------------------------------
# replay
# ---------------------------------------------------------------------------
async def test_candles_and_dark_in_a_replay(replay_master: Path, tmp_path: Path) -> None:  # noqa: F811
    rig = make_replay(replay_master, tmp_path)
    app = rig.app
    fx = make_eq_fixture(minutes=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await rig.settle(pilot)
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, CandlesScreen)
        publish(rig.engine, fx, advance_clock=False)
        await rig.settle(pilot)
        assert screen.replaying and screen.query_one(ScrubBar).display
        keys = screen.active_bindings
        assert keys["space"].binding.action == "replay_toggle"
        assert keys["h"].binding.action == "pan(-1)"
        await pilot.press("minus", "minus", "minus", "minus", "plus", "plus", "plus", "plus")
        await pilot.press("h")
        await rig.settle(pilot)
        assert not screen.following
        await pilot.press("space")  # play: back to the live edge
        await rig.settle(pilot)
        assert screen.following and not rig.state.paused
        await pilot.press("space")
        await rig.settle(pilot)
        # a seek rebuilds every displayed stream from the session: the hand-published
        # fixture candles go, the session's own candles up to the target come back
        before = app.eq_data.candles.frame
        assert before.height > 0
        target = rig.feed.source.first_ts + 30 * ev.NS_PER_S
        rig.engine.control("seek", target)
        await rig.settle(pilot)
        after = app.eq_data.candles.frame
        assert not after.equals(before)
        assert after.height == 0 or after["start_ts"].max() <= target
        await pilot.press("4")
        await rig.settle(pilot)
        dark = app.screen
        assert isinstance(dark, DarkScreen) and dark.replaying
        assert dark.active_bindings["space"].binding.action == "replay_toggle"
        assert dark.active_bindings["enter"].binding.action == "open_evidence"


def test_fixture_frames_match_their_schemas() -> None:
    fx = make_eq_fixture(minutes=3)
    for stream, frame in fx.frames():
        assert frame.schema == ev.polars_schema(stream), stream
    assert START_NS <= fx.last_ts < START_NS + 3 * MIN_NS
    again = make_eq_fixture(minutes=3)
    assert all(a.equals(b) for (_, a), (_, b) in zip(fx.frames(), again.frames(), strict=True))


async def test_keys_have_ids_tooltips_help_and_palette(eq: tuple[TapeRig, EqFixture]) -> None:
    """Every key of both screens is documented (help and palette read the bindings)."""
    from islandflow_tui.screens.help import HelpScreen

    rig, _ = eq
    app = rig.app
    async with app.run_test(size=(120, 40)) as pilot:
        await paint(app, pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Screen: Dark", "Screen: Candles"} <= titles
        for key, wanted in (("4", {"Evidence", "Kind", "Symbols"}), ("5", {"Zoom in", "Interval"})):
            await pilot.press(key)
            await paint(app, pilot)
            for active in app.screen.active_bindings.values():
                if active.node.__module__.startswith("islandflow_tui"):
                    assert active.binding.id and active.binding.tooltip, active.binding
            await pilot.press("question_mark")
            await pilot.pause()
            help_screen = app.screen
            assert isinstance(help_screen, HelpScreen)
            assert wanted <= {row.description for row in help_screen.rows}
            await pilot.press("escape")
            await pilot.pause()
