"""The Tape screen driven by keys (Textual Pilot), plus its pure building blocks.

The engine never runs its thread here (except in the lifecycle test): each test
feeds seeded synthetic batches with ``rig.ingest(n)`` and calls ``app.tick()``,
the repaint tick the timer normally runs, so every assertion is about a known set
of rows.  Assertions look at model state *and* at the rendered lines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import polars as pl
import pytest

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import EngineStats
from islandflow_tui.engine.ingest.base import FeedState, FeedStatus
from islandflow_tui.screens.help import HelpScreen
from islandflow_tui.screens.tape import TapeScreen
from islandflow_tui.widgets.prompt import PromptScreen, parse_money, parse_symbols
from islandflow_tui.widgets.status_bar import StatusBar, et_clock, status_text
from islandflow_tui.widgets.tape_view import (
    ARRIVAL,
    EQUITY_COLUMNS,
    OPTION_COLUMNS,
    TapeFilter,
    TapeModel,
    TapeView,
    compact_money,
    equity_price_text,
    format_option_rows,
    layout_columns,
)
from tests.conftest import TapeRig, tape_config
from tests.helpers import equity_prints, firehose_tick

Rig = Callable[..., TapeRig]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def views(rig: TapeRig) -> tuple[TapeView, TapeView]:
    screen = rig.app.screen
    assert isinstance(screen, TapeScreen)
    return screen.views


def column(view: TapeView, key: str) -> list[str]:
    """The text of one column on every visible data line, read off the rendered strips."""
    width = view.scrollable_content_region.width
    layout = layout_columns(view.columns, width)
    offset = 0
    for col, w in layout.columns:
        if col.key == key:
            return [
                line[offset : offset + w].strip()
                for line in view.visible_text()[1:]
                if line.strip()
            ]
        offset += w + 1
    raise AssertionError(f"column {key} is not shown at width {width}")


def status(rig: TapeRig) -> str:
    return rig.app.screen.query_one(StatusBar).plain


async def paint(rig: TapeRig, pilot: object) -> None:
    rig.app.tick()
    await pilot.pause()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# pure pieces
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "dollars"),
    [
        ("25000", 25_000),
        ("25k", 25_000),
        ("25K", 25_000),
        ("1.5m", 1_500_000),
        ("$25,000", 25_000),
        (" 2.5k ", 2_500),
        ("", 0),
        (".5m", 500_000),
        ("1b", 1e9),
    ],
)
def test_parse_money_accepts(text: str, dollars: float) -> None:
    assert parse_money(text) == pytest.approx(dollars)


@pytest.mark.parametrize("text", ["lots", "-5", "5x", "1.2.3", "k", "25 k m", "$"])
def test_parse_money_rejects(text: str) -> None:
    if text == "$":  # a lone dollar sign is empty after cleaning: no minimum
        assert parse_money(text) == 0
        return
    with pytest.raises(ValueError, match="not an amount"):
        parse_money(text)


def test_parse_symbols() -> None:
    assert parse_symbols("aapl, tsla spy") == {"AAPL", "TSLA", "SPY"}
    assert parse_symbols("  ") == frozenset()
    assert parse_symbols("BRK.B") == {"BRK.B"}
    with pytest.raises(ValueError, match="not a symbol"):
        parse_symbols("AA$L")


def test_formatting() -> None:
    assert compact_money(980) == "$980"
    assert compact_money(52_300) == "$52.3k"
    assert compact_money(1_234_567) == "$1.2M"
    assert equity_price_text(142.5) == "142.50"
    assert equity_price_text(142.5123) == "142.5123"
    assert equity_price_text(344.485) == "344.485"
    assert et_clock(0) == "--:--:-- ET"
    start_ns = 1_764_081_000 * ev.NS_PER_S  # 2025-11-25T14:30:00Z
    assert et_clock(start_ns) == "09:30:00 ET"


def test_layout_at_80_columns_drops_quote_but_keeps_side_and_conditions() -> None:
    narrow = [c.key for c, _ in layout_columns(OPTION_COLUMNS, 79).columns]
    assert "quote" not in narrow
    assert {"time", "root", "exp", "strike", "right", "price", "size", "premium"} <= set(narrow)
    assert {"placement", "cond", "exch"} <= set(narrow)
    wide = layout_columns(OPTION_COLUMNS, 110)
    assert [c.key for c, _ in wide.columns] == [c.key for c in OPTION_COLUMNS]
    assert sum(w for _, w in wide.columns) + len(wide.columns) - 1 == 110  # flex takes the rest
    eq80 = [c.key for c, _ in layout_columns(EQUITY_COLUMNS, 79).columns]
    assert "venue" in eq80 and "price" in eq80


def _stats(**changes: object) -> EngineStats:
    base: dict[str, object] = {
        "feed": "synthetic/firehose",
        "feed_state": FeedState(FeedStatus.LIVE),
        "running": True,
        "watermark_ns": 1_764_081_062 * ev.NS_PER_S,
        "totals": {},
        "rates": {
            ev.OPTIONS_PRINTS: 52_100.0,
            ev.OPTIONS_NBBO: 104_000.0,
            ev.EQUITIES_PRINTS: 3_100.0,
            ev.EQUITIES_QUOTES: 9_000.0,
            ev.OPTIONS_ENRICHED: 52_100.0,
        },
        "rejected": {ev.OPTIONS_PRINTS: {"late": 12}},
        "rejected_total": 12,
        "last_rejection": "late: ts 1764081000 older than the watermark by 3 s",
        "display_gap": 4_321,
    }
    base.update(changes)
    return EngineStats(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("width", [60, 78, 100, 160, 200])
@pytest.mark.parametrize("paused", [False, True])
def test_status_text_fits_and_keeps_the_essentials(width: int, paused: bool) -> None:
    text = status_text(_stats(), paused=paused, width=width).plain
    assert len(text) <= width
    assert "09:31:02 ET" in text
    assert ("PAUSED" in text) is paused
    if width >= 78:
        assert "opt 52.1k" in text and "nbbo 104k" in text and "eq 3.1k" in text
        assert "rej 12" in text and "drop 4.3k" in text and "● live" in text
    if width >= 160:
        assert "opt 52.1k/s" in text and "late:" in text and "synthetic/firehose" in text


def test_status_text_shows_engine_error() -> None:
    text = status_text(_stats(error="engine stopped: boom"), paused=False, width=78).plain
    assert "ENGINE ERROR" in text and "error" in text


def _enriched(n: int, start: int = 0, **cols: object) -> pl.DataFrame:
    """Hand-made options.enriched-like rows (only the fields the tape keeps)."""
    data: dict[str, object] = {
        "ts": [START_NS + i for i in range(start, start + n)],
        "id": list(range(start, start + n)),
        "root": ["SPY" if i % 2 else "AAPL" for i in range(start, start + n)],
        "right": ["C" if i % 3 else "P" for i in range(start, start + n)],
        "premium": [float(1000 * (i % 50)) for i in range(start, start + n)],
        "signal_mask": [
            7 if i % 4 == 0 else 6 if i % 4 == 1 else 4 for i in range(start, start + n)
        ],
    }
    data.update(cols)
    return pl.DataFrame(data, schema_overrides={"signal_mask": pl.Int8})


START_NS = 1_764_081_000 * ev.NS_PER_S
SMALL_SCHEMA = _enriched(1).schema


def test_model_keeps_newest_rows_up_to_cap() -> None:
    model = TapeModel(SMALL_SCHEMA, cap=100)
    for k in range(10):
        model.extend(_enriched(30, start=30 * k))
    assert model.rows.height == 100
    assert model.rows["id"].to_list() == list(range(299, 199, -1))  # newest first
    assert model.arrived == 300
    model.extend(_enriched(500, start=300))  # one batch bigger than the cap
    assert model.rows["id"].to_list() == list(range(799, 699, -1))


def test_model_filter_is_incremental_and_consistent() -> None:
    model = TapeModel(SMALL_SCHEMA, cap=200)
    filt = TapeFilter(symbols=frozenset({"SPY"}), rights="C", min_premium=10_000, preset="balanced")
    model.set_filter(filt.options_expr())
    for k in range(20):
        model.extend(_enriched(37, start=37 * k))
        expected = model.rows.filter(filt.options_expr())
        assert model.view.select(pl.exclude(ARRIVAL)).equals(expected.select(pl.exclude(ARRIVAL)))
    shown = model.display
    assert set(shown["root"]) == {"SPY"} and set(shown["right"]) == {"C"}
    assert shown["premium"].min() >= 10_000
    assert ((shown["signal_mask"] & 2) != 0).all()


def test_model_pause_freezes_display_and_counts_pending() -> None:
    model = TapeModel(SMALL_SCHEMA, cap=1000)
    model.extend(_enriched(100))
    model.pause()
    frozen = model.display
    model.extend(_enriched(50, start=100))
    assert model.display is frozen and model.pending == 50
    # a filter change while paused re-filters the frozen rows and recounts pending
    model.set_filter(pl.col("root") == "SPY")
    assert set(model.display["root"]) == {"SPY"}
    assert model.display.height == 50 and model.pending == 25
    model.resume()
    assert model.following and model.pending == 0
    assert model.display["id"][0] == 149


def test_model_caps_the_hot_window_under_firehose_ticks() -> None:
    """One second at 51 000 prints/s in 15 repaint ticks: the model keeps the newest
    ``cap`` rows and counts every arrival (its speed: bench/bench_tape_model.py)."""
    model = TapeModel(firehose_tick(1, 0).schema, cap=25_000)
    model.set_filter(TapeFilter(min_premium=5_000).options_expr())
    for k in range(15):
        model.extend(firehose_tick(3_400, k * 3_400))
        format_option_rows(model.display.slice(0, 60))
    assert model.rows.height == 25_000 and model.arrived == 51_000
    assert model.rows["ts"].is_sorted(descending=True)


# ---------------------------------------------------------------------------
# Pilot
# ---------------------------------------------------------------------------
async def test_first_paint_shows_rows_and_status(make_rig: Rig) -> None:
    rig = make_rig("active", batches=30)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        options, equities = views(rig)
        model = rig.app.options_model
        assert model.rows.height == rig.all_enriched.height
        assert model.display.height > 0 and equities.model.display.height > 0
        header = options.visible_text()[0]
        for name in ("OPTIONS", "SYM", "EXPIRY", "STRIKE", "PRICE", "SIZE", "PREM", "SIDE", "COND"):
            assert name in header
        assert "BID×ASK" not in header  # dropped at 80 columns, shown when wide
        # the newest smart-money print is the first data line
        newest = model.display.row(0, named=True)
        assert column(options, "root")[0] == newest["root"]
        assert column(options, "price")[0] == f"{newest['price']:.2f}"
        off = column(equities, "venue")
        assert any(v.startswith("◆") for v in off) and any(not v.startswith("◆") for v in off)
        line = status(rig)
        assert "synthetic/active" in line and "● live" in line and "09:30:03 ET" in line
        assert "opt " in line and "nbbo " in line and "eq " in line
        assert len(line) <= 80


async def test_wide_layout_shows_bid_ask(make_rig: Rig) -> None:
    rig = make_rig("active", batches=10)
    async with rig.app.run_test(size=(160, 48)) as pilot:
        await paint(rig, pilot)
        options, _ = views(rig)
        assert rig.app.screen.has_class("-wide")
        assert "BID×ASK" in options.visible_text()[0]
        quotes = column(options, "quote")
        assert all("×" in q or q == "—" for q in quotes)


async def test_space_pauses_counts_new_rows_and_resume_shows_them(make_rig: Rig) -> None:
    rig = make_rig("active", batches=20)
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        options, equities = views(rig)
        before = options.visible_text()
        await pilot.press("space")
        assert not app.options_model.following and not app.equities_model.following
        assert "PAUSED" in status(rig)

        new = rig.ingest(10)
        await paint(rig, pilot)
        expected = new.filter(app.tape_filter.options_expr())
        assert expected.height > 0
        assert app.options_model.pending == expected.height
        assert app.equities_model.pending > 0
        after = options.visible_text()
        assert after[1:] == before[1:]  # the view is frozen
        assert f"PAUSED +{expected.height:,}" in after[0]
        assert "PAUSED +" in equities.visible_text()[0]

        await pilot.press("space")
        assert app.options_model.following and options.scroll_offset.y == 0
        assert app.options_model.display["id"][0] == expected["id"][-1]  # the live edge
        assert "PAUSED" not in options.visible_text()[0]
        assert "PAUSED" not in status(rig)
        newest = expected.row(-1, named=True)
        assert column(options, "root")[0] == newest["root"]


async def test_scrolling_away_from_the_live_edge_pauses(make_rig: Rig) -> None:
    rig = make_rig("active", batches=30)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        options, _ = views(rig)
        assert rig.app.screen.focused is options
        await pilot.press("j", "j")
        assert options.scroll_offset.y == 2 and not options.model.following
        await paint(rig, pilot)
        assert "PAUSED" in status(rig)
        await pilot.press("space")
        assert options.model.following and options.scroll_offset.y == 0


async def test_symbol_filter_via_slash(make_rig: Rig) -> None:
    rig = make_rig("active", batches=30)
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        options, equities = views(rig)
        unfiltered = app.options_model.display.height
        await pilot.press("slash")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"tsla", "enter")
        assert isinstance(app.screen, TapeScreen)
        assert app.tape_filter.symbols == {"TSLA"}
        assert set(app.options_model.display["root"]) == {"TSLA"}
        assert set(app.equities_model.display["symbol"]) == {"TSLA"}
        assert set(column(options, "root")) == {"TSLA"}
        assert set(column(equities, "symbol")) == {"TSLA"}
        assert "sym TSLA" in app.screen.query_one("#filter-line").render().plain  # type: ignore[attr-defined]

        # the prompt opens with the current filter selected: backspace + enter clears it
        await pilot.press("slash", "backspace", "enter")
        assert app.tape_filter.symbols == frozenset()
        assert app.options_model.display.height == unfiltered
        assert len(set(column(options, "root"))) > 1

        # a bad symbol shows an error and changes nothing
        await pilot.press("slash", *"aa$l", "enter")
        assert isinstance(app.screen, PromptScreen)
        assert "not a symbol" in app.screen.error
        await pilot.press("escape")
        assert isinstance(app.screen, TapeScreen) and app.tape_filter.symbols == frozenset()


async def test_preset_cycles_and_rows_follow_signal_mask(make_rig: Rig) -> None:
    rig = make_rig("active", batches=30)
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        options, _ = views(rig)
        rows = app.options_model.rows
        counts: dict[str, int] = {}
        lines: dict[str, list[str]] = {}
        for preset in ("smart-money", "balanced", "all"):
            assert app.tape_filter.preset == preset
            shown = app.options_model.display
            bit = ev.SIGNAL_BIT[preset]
            assert ((shown["signal_mask"] & bit) != 0).all()
            assert shown.height == rows.filter((pl.col("signal_mask") & bit) != 0).height
            counts[preset] = shown.height
            lines[preset] = options.visible_text()
            assert f"preset {preset}" in app.screen.query_one("#filter-line").render().plain  # type: ignore[attr-defined]
            await pilot.press("p")
        assert counts["smart-money"] < counts["balanced"] < counts["all"] == rows.height
        assert lines["smart-money"][1:] != lines["all"][1:]
        assert app.tape_filter.preset == "smart-money"


async def test_calls_puts_toggle(make_rig: Rig) -> None:
    rig = make_rig("active", batches=30, preset="all")
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        options, _ = views(rig)
        both = app.options_model.display.height
        await pilot.press("c")
        assert app.tape_filter.rights == "C"
        calls = app.options_model.display
        assert set(calls["right"]) == {"C"} and set(column(options, "right")) == {"C"}
        await pilot.press("c")
        puts = app.options_model.display
        assert set(puts["right"]) == {"P"} and set(column(options, "right")) == {"P"}
        assert calls.height + puts.height == both
        await pilot.press("c")
        assert app.tape_filter.rights == "CP" and app.options_model.display.height == both


async def test_min_premium(make_rig: Rig) -> None:
    rig = make_rig("active", batches=30, preset="all")
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        options, _ = views(rig)
        before = app.options_model.display.height
        await pilot.press("m", *"25k", "enter")
        assert app.tape_filter.min_premium == 25_000
        shown = app.options_model.display
        assert 0 < shown.height < before
        assert shown["premium"].min() >= 25_000
        assert all(parse_money(p) >= 24_950 for p in column(options, "premium"))

        # a bad entry shows the reason in the prompt and changes nothing
        await pilot.press("m", *"lots", "enter")
        prompt = app.screen
        assert isinstance(prompt, PromptScreen)
        assert "not an amount" in prompt.query_one("#prompt-error").render().plain  # type: ignore[attr-defined]
        await pilot.press("escape")
        assert isinstance(app.screen, TapeScreen)
        assert app.tape_filter.min_premium == 25_000

        # empty clears
        await pilot.press("m", "backspace", "enter")
        assert app.tape_filter.min_premium == 0
        assert app.options_model.display.height == before


async def test_help_opens_and_closes(make_rig: Rig) -> None:
    rig = make_rig("active", batches=5)
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        await pilot.press("question_mark")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        described = {(key, r.description) for r in help_screen.rows for key in r.keys.split()}
        for expected in [
            ("space", "Pause"),
            ("/", "Symbols"),
            ("p", "Preset"),
            ("c", "C/P"),
            ("m", "Min $"),
            ("q", "Quit"),
            ("?", "Help"),
            ("f1", "Help"),
            ("1", "Tape"),
            ("^p", "Palette"),
            ("j", "Down"),
        ]:
            assert expected in described, expected
        assert all(r.tooltip for r in help_screen.rows)  # every key explains itself
        await pilot.press("escape")
        assert isinstance(app.screen, TapeScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")  # q closes help; it does not quit
        assert isinstance(app.screen, TapeScreen) and app.is_running


async def test_every_binding_has_id_and_tooltip(make_rig: Rig) -> None:
    rig = make_rig("active", batches=1)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        for active in rig.app.screen.active_bindings.values():
            if active.node.__module__.startswith("islandflow_tui"):
                assert active.binding.id and active.binding.tooltip, active.binding


async def test_q_types_in_prompt_but_quits_from_the_tape(make_rig: Rig) -> None:
    rig = make_rig("active", batches=2)
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        await pilot.press("slash", "q")
        assert isinstance(app.screen, PromptScreen) and app.is_running
        await pilot.press("escape", "q")
        await pilot.pause()
    assert app.return_code == 0


async def test_status_bar_counts_rejections(make_rig: Rig) -> None:
    rig = make_rig("active", batches=5)
    app = rig.app
    watermark = rig.engine.watermark
    bad = equity_prints([{"ts": watermark + 1, "symbol": "AAPL", "price": -1.0, "size": 100}])
    rig.engine.ingest(ev.FeedBatch({ev.EQUITIES_PRINTS: bad}, watermark + 2))
    async with app.run_test(size=(160, 48)) as pilot:
        await paint(rig, pilot)
        line = status(rig)
        assert "rej 1" in line and "bad_price" in line


async def test_engine_starts_on_mount_and_stops_on_exit() -> None:
    from islandflow_tui.app import make_app

    cfg = tape_config("realistic")
    app = make_app(cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.engine.running
        for _ in range(100):
            await asyncio.sleep(0.05)
            if app.options_model.arrived and app.equities_model.arrived:
                break
        assert app.options_model.arrived > 0 and app.equities_model.arrived > 0
        assert app.last_stats is not None and app.last_stats.watermark_ns > 0
        await pilot.press("q")
    assert not app.engine.running


async def test_command_palette_runs_tape_actions(make_rig: Rig) -> None:
    rig = make_rig("active", batches=5)
    app = rig.app
    async with app.run_test(size=(100, 30)) as pilot:
        await paint(rig, pilot)
        commands = {c.title for c in app.get_system_commands(app.screen)}
        assert {
            "Tape: Pause",
            "Tape: Preset",
            "Tape: C/P",
            "Screen: Tape",
            "Help: keys",
        } <= commands
        await pilot.press("ctrl+p")
        await pilot.press(*"tape: preset")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert app.tape_filter.preset == "balanced"
