"""Flow, Alerts and Evidence screens driven by keys (Pilot), and evidence by id.

The engine thread never runs: ``make_rig`` feeds seeded synthetic batches, the test
calls ``app.tick()``, and evidence workers are awaited, so every assertion is about a
known set of events.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from textual.pilot import Pilot

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.synthetic_feed import SyntheticFeed
from islandflow_tui.engine.lookup import EventIndex, lookup_events
from islandflow_tui.engine.session import attach_recording
from islandflow_tui.screens.alerts import AlertsScreen
from islandflow_tui.screens.candles import CandlesScreen
from islandflow_tui.screens.dark import DarkScreen
from islandflow_tui.screens.evidence import EvidenceScreen
from islandflow_tui.screens.flow import FlowScreen
from islandflow_tui.screens.tape import TapeScreen
from islandflow_tui.widgets.flow_view import FlowFilter, SortedModel, parse_kinds, z_text
from islandflow_tui.widgets.prompt import PromptScreen
from tests.conftest import TapeRig, tape_config
from tests.test_replay_ui import make_replay, record_session

Rig = Callable[..., TapeRig]


async def paint(rig: TapeRig, pilot: Pilot[None]) -> None:
    rig.app.tick()
    await pilot.pause()


async def settle(pilot: Pilot[None]) -> None:
    """Let evidence workers answer and their messages land."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


# ---------------------------------------------------------------------------
# pure pieces
# ---------------------------------------------------------------------------
def test_sorted_model_sorts_descending_nulls_last() -> None:
    schema = {"id": pl.Int64, "premium_z": pl.Float64}
    model = SortedModel(schema, 10)
    model.extend(pl.DataFrame({"id": [1, 2, 3, 4], "premium_z": [0.5, None, 3.0, -1.0]}))
    assert model.display["id"].to_list() == [4, 3, 2, 1]  # newest first
    model.set_sort("premium_z")
    assert model.display["id"].to_list() == [3, 1, 4, 2]
    model.set_sort(None)
    assert model.display["id"].to_list() == [4, 3, 2, 1]


def test_parse_kinds() -> None:
    assert parse_kinds("sweep, Golden-Sweep,vertical") == {"sweep", "golden_sweep", "vertical"}
    assert parse_kinds("") == frozenset()
    with pytest.raises(ValueError, match="unknown kind swep"):
        parse_kinds("swep")


def test_flow_presets_and_filters(make_rig: Rig) -> None:
    rig = make_rig("active", batches=60)
    rig.app.tick()  # drain the display feed into the app's models
    packets = rig.app.packets_model.rows
    notable = packets.filter(FlowFilter(preset="notable").packets_expr())
    assert (
        notable.height
        and ((notable["kind"] != "plain") | (notable["premium_z"].fill_null(0) >= 2)).all()
    )
    aggressive = packets.filter(FlowFilter(preset="aggressive").packets_expr())
    assert aggressive.height <= notable.height
    assert (aggressive["aggressor_ratio"] >= 0.55).all()
    everything = packets.filter(FlowFilter(preset="all").packets_expr())
    assert everything.height == packets.height
    bullish = packets.filter(FlowFilter(preset="all", direction="bullish").packets_expr())
    assert bullish.height and (bullish["direction"] == "bullish").all()


# ---------------------------------------------------------------------------
# screens and keys
# ---------------------------------------------------------------------------
async def test_number_keys_switch_screens(make_rig: Rig) -> None:
    rig = make_rig("active", batches=10)
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        assert isinstance(app.screen, TapeScreen)
        await pilot.press("2")
        assert isinstance(app.screen, FlowScreen)
        await pilot.press("3")
        assert isinstance(app.screen, AlertsScreen)
        await pilot.press("1")
        assert isinstance(app.screen, TapeScreen)
        await pilot.press("4")
        assert isinstance(app.screen, DarkScreen)
        await pilot.press("5")
        assert isinstance(app.screen, CandlesScreen)
        await pilot.press("2")
        assert isinstance(app.screen, FlowScreen)


async def test_flow_sort_and_filter_keys(make_rig: Rig) -> None:
    rig = make_rig("active", batches=80)
    app = rig.app
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await paint(rig, pilot)
        await pilot.press("p", "p")  # notable -> aggressive -> all
        assert app.flow_filter.preset == "all"
        shown = app.packets_model.display
        assert shown.height == app.packets_model.rows.height
        await pilot.press("s")  # time -> premium
        assert app.flow_sort == "premium"
        prem = app.packets_model.display["premium"].to_list()
        assert prem == sorted(prem, reverse=True)
        await pilot.press("s")  # size
        size = app.packets_model.display["total_size"].to_list()
        assert size == sorted(size, reverse=True)
        await pilot.press("s")  # z
        z = app.packets_model.display["premium_z"].drop_nulls().to_list()
        assert z == sorted(z, reverse=True)
        screen = app.screen
        assert isinstance(screen, FlowScreen)
        top = screen.views[0].visible_text()[1]
        assert z_text(z[0]) in top  # the painted first row is the largest z
        await pilot.press("s")  # back to time
        assert app.flow_sort == "time"
        await pilot.press("d")  # direction bullish
        assert (app.packets_model.display["direction"] == "bullish").all()
        await pilot.press("slash", *"spy", "enter")
        await paint(rig, pilot)
        assert app.flow_filter.symbols == {"SPY"}
        assert set(app.packets_model.display["root"].to_list()) <= {"SPY"}
        await pilot.press("m", *"10k", "enter")
        assert (app.packets_model.display["premium"] >= 10_000).all()
        await pilot.press("t", *"swep", "enter")  # a typo: the prompt says so and stays
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*["backspace"] * 4, *"block", "enter")
        assert app.flow_filter.kinds == {"block"}
        assert (app.packets_model.display["kind"] == "block").all()
        line = str(app.screen.query_one("#flow-filter-line").render())
        assert "kind block" in line and "sym SPY" in line and "dir bullish" in line
        await pilot.press("x")
        assert app.flow_filter == FlowFilter(preset="all")


async def test_alerts_severity_key_and_colours(make_rig: Rig) -> None:
    rig = make_rig("active", batches=80)
    app = rig.app
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await paint(rig, pilot)
        alerts = app.alerts_model.display
        assert alerts.height > 3
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        lines = screen.view.visible_text()
        assert lines[0].startswith("ALERTS")
        assert alerts["explanation"][0][:40] in lines[1]
        await pilot.press("v")  # medium and up
        assert set(app.alerts_model.display["severity"].to_list()) <= {"medium", "high"}
        await pilot.press("v")  # high only
        assert set(app.alerts_model.display["severity"].to_list()) <= {"high"}
        await pilot.press("v")
        assert app.alerts_model.display.height == alerts.height


async def test_an_alert_is_painted_by_an_early_tick(make_rig: Rig) -> None:
    """An alert pushed to the display feed schedules a repaint of the Alerts screen at
    once (app._feed_pushed) instead of waiting for the regular tick (1 Hz here); that
    early tick takes only the alerts, the firehose streams wait for the regular one."""
    rig = make_rig("active", batches=40, refresh_hz=1)
    app = rig.app
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await paint(rig, pilot)
        before = app.alerts_model.arrived
        for _ in range(300):  # engine ticks until one publishes an alert
            rig.ingest(1)
            if app._early_tick_pending:
                break
        else:
            pytest.fail("no alert in 300 ticks")
        assert app.alerts_model.arrived == before  # scheduled: it runs on the UI loop
        calls: list[str] = []
        tick, alerts_tick = app.tick, app.alerts_tick
        app.tick = lambda: (calls.append("tick"), tick())
        app.alerts_tick = lambda: (calls.append("alerts"), alerts_tick())
        await pilot.pause()
        assert calls and calls[0] == "alerts"  # the early tick, alerts only
        assert app.alerts_model.arrived > before
        assert not app._early_tick_pending
        newest = app.alerts_model.display["explanation"][0][:40]
        assert newest in "\n".join(app.screen.view.visible_text())  # repainted


async def test_drill_down_and_back(make_rig: Rig) -> None:
    """alert -> evidence (hits + packet) -> packet -> member prints -> escape x3."""
    rig = make_rig("active", batches=80)
    app = rig.app
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await paint(rig, pilot)
        alert = app.alerts_model.display.row(0, named=True)
        await pilot.press("enter")
        await settle(pilot)
        first = app.screen
        assert isinstance(first, EvidenceScreen) and first.event_id == alert["id"]
        assert first.state == "ready"
        title = str(first.query_one("#evidence-title").render())
        assert f"ALERT {ev.format_id(alert['id'])}" in title
        assert first.evidence_view is not None and first.trace_view is not None
        rows = first.evidence_view.visible_text()
        assert ev.format_id(alert["source_id"]) in rows[1]  # the packet first
        trace = first.trace_view.visible_text()
        assert "score.premium_points" in "\n".join(trace)
        # into the packet (the first evidence row)
        await pilot.press("enter")
        await settle(pilot)
        packet = app.screen
        assert isinstance(packet, EvidenceScreen) and packet.stream == ev.FLOW_PACKETS
        assert packet.event_id == alert["source_id"]
        assert packet.evidence_view is not None
        prints = packet.evidence_view.visible_text()
        assert prints[0].startswith("MEMBER PRINTS")
        member = packet.evidence.get(ev.OPTIONS_ENRICHED)
        assert member is not None and member.height == packet.row["count"]  # type: ignore[index]
        first_print = member.row(0, named=True)
        assert f"{first_print['price']:.2f}" in prints[1]
        assert first_print["side_rule"][:10] in prints[1]
        # one level deeper: a member print
        await pilot.press("enter")
        await settle(pilot)
        deepest = app.screen
        assert isinstance(deepest, EvidenceScreen) and deepest.stream == ev.OPTIONS_ENRICHED
        assert "placement" in str(deepest.query_one("#evidence-summary").render())
        await pilot.press("escape")
        assert app.screen is packet
        await pilot.press("escape")
        assert app.screen is first
        await pilot.press("escape")
        assert isinstance(app.screen, AlertsScreen)


async def test_flow_enter_opens_packet_evidence(make_rig: Rig) -> None:
    rig = make_rig("active", batches=40)
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await paint(rig, pilot)
        await pilot.press("down")  # the cursor leaves the newest row: the list pauses
        assert not app.packets_model.following
        selected = app.screen.views[0].selected_id  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, EvidenceScreen) and app.screen.event_id == selected
        await pilot.press("escape")
        await pilot.press("home")
        assert app.packets_model.following


async def test_evidence_of_unknown_id_says_not_found(make_rig: Rig) -> None:
    rig = make_rig("active", batches=5)
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        app.open_evidence(ev.make_id(ev.ALERTS, 10**9))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EvidenceScreen) and screen.state == "not_found"
        assert "not found (not recorded)" in str(screen.query_one("#evidence-summary").render())


async def test_palette_jumps_to_symbol_and_alert(make_rig: Rig) -> None:
    rig = make_rig("active", batches=60)
    app = rig.app
    async with app.run_test(size=(120, 40)) as pilot:
        await paint(rig, pilot)
        await pilot.press("ctrl+p", *"NVDA")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen)
        assert app.flow_filter.symbols == {"NVDA"} and app.tape_filter.symbols == {"NVDA"}
        alert = app.alerts_model.rows.row(0, named=True)
        await pilot.press("ctrl+p", *f"alert {ev.format_id(alert['id'])}")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, EvidenceScreen) and app.screen.event_id == alert["id"]


async def test_status_bar_and_help_on_new_screens(make_rig: Rig) -> None:
    from islandflow_tui.screens.help import HelpScreen
    from islandflow_tui.widgets.status_bar import StatusBar

    rig = make_rig("active", batches=10)
    app = rig.app
    async with app.run_test(size=(80, 24)) as pilot:
        for key, screen_type in (("2", FlowScreen), ("3", AlertsScreen)):
            await pilot.press(key)
            await paint(rig, pilot)
            assert isinstance(app.screen, screen_type)
            assert "ET" in app.screen.query_one(StatusBar).plain
            for active in app.screen.active_bindings.values():
                if active.node.__module__.startswith("islandflow_tui"):
                    assert active.binding.id and active.binding.tooltip, active.binding
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")


# ---------------------------------------------------------------------------
# evidence after the hot window dropped it
# ---------------------------------------------------------------------------
async def test_evidence_outside_the_hot_window_comes_from_the_engine(make_rig: Rig) -> None:
    rig = make_rig("active", batches=80, hot_window=100)
    app = rig.app
    oldest = rig.engine.index.find(ev.FLOW_PACKETS, "kind", ["block", "sweep", "plain"])
    assert oldest is not None and oldest.height > 100
    gone = int(oldest["id"][0])
    assert app.find_event(gone) is None  # not in the UI's hot window any more
    async with app.run_test(size=(80, 24)) as pilot:
        await paint(rig, pilot)
        app.open_evidence(gone)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EvidenceScreen) and screen.state == "ready"
        assert screen.row is not None and screen.row["id"] == gone


def test_lookup_reads_the_session_log_beyond_the_index(tmp_path: Path) -> None:
    """Ids older than the engine's index are read back from the recorded session,
    and only the segments holding them are opened."""
    cfg = tape_config("active")
    cfg.paths.data_dir = str(tmp_path)
    cfg.log.segment_max_mb = 0.05  # many small sealed segments
    cfg.ui.evidence_index_rows = 1000
    feed = SyntheticFeed(cfg.synthetic, now_ns=0)
    engine = Engine(cfg, feed)
    recorder, _ = attach_recording(engine, cfg)
    assert recorder is not None
    alerts: list[pl.DataFrame] = []
    for _ in range(150):
        out = engine.ingest(feed.market.next_batch())
        if ev.ALERTS in out:
            alerts.append(out[ev.ALERTS])
    recorder.close()
    first_alert = pl.concat(alerts).row(0, named=True)
    packet_id = int(first_alert["source_id"])
    # the index has moved on from the first packet's member prints
    packet = engine.lookup([packet_id])[ev.FLOW_PACKETS].row(0, named=True)
    members = [int(i) for i in packet["evidence"]]
    indexed = engine.index.find(ev.OPTIONS_ENRICHED, "id", members)
    assert indexed is not None and indexed.height == 0
    found = engine.lookup(members)[ev.OPTIONS_ENRICHED]
    assert sorted(found["id"].to_list()) == sorted(members)
    assert found["side_rule"].null_count() == 0
    # the same answer from the log alone (no index), and raw prints bring their enriched rows
    alone = lookup_events(members, None, engine.session_path())[ev.OPTIONS_ENRICHED]
    assert alone.equals(found)
    raw = [int(i) for i in found["print_id"].to_list()]
    by_print = lookup_events(raw, EventIndex(1000), engine.session_path())
    assert sorted(by_print[ev.OPTIONS_ENRICHED]["print_id"].to_list()) == sorted(raw)
    assert by_print[ev.OPTIONS_PRINTS].height == len(raw)


# ---------------------------------------------------------------------------
# replay: the replay keys work here, and evidence comes from the replayed session
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def replay_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The replay tests' recorded session (recorded once per run, shared with them)."""
    return record_session(tmp_path_factory.getbasetemp() / "replay-master")


async def test_alerts_and_evidence_in_a_replay(tmp_path: Path, replay_session: Path) -> None:
    from islandflow_tui.widgets.scrub_bar import ScrubBar

    rig = make_replay(replay_session, tmp_path)
    app = rig.app
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await rig.settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        assert app.screen.query_one(ScrubBar).display  # the replay's scrub bar is here too
        await rig.press(pilot, "end")  # a replay key on the Alerts screen: seek to the end
        assert rig.state.position_ns == rig.state.end_ns
        alerts = app.alerts_model.display
        assert alerts.height > 0
        # the seek fast-forwarded quietly: the engine's index never saw these events
        packet_id = int(alerts["source_id"][0])
        indexed = rig.engine.index.find(ev.FLOW_PACKETS, "id", [packet_id])
        assert indexed is not None and indexed.height == 0
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EvidenceScreen) and screen.state == "ready"
        await pilot.press("enter")  # the packet, read back from the session log
        await settle(pilot)
        packet = app.screen
        assert isinstance(packet, EvidenceScreen) and packet.state == "ready"
        assert packet.event_id == packet_id
        members = packet.evidence.get(ev.OPTIONS_ENRICHED)
        assert members is not None and members.height == packet.row["count"]  # type: ignore[index]
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, AlertsScreen)


# ---------------------------------------------------------------------------
# equity prints (the Dark screen's evidence): the quote in force from equities.joins
# ---------------------------------------------------------------------------
def test_equity_print_evidence_shows_the_quote_in_force() -> None:
    from islandflow_tui.screens.evidence import evidence_table
    from islandflow_tui.widgets.flow_view import EQUITY_PRINT_COLUMNS, format_equity_print_rows

    ids = [ev.make_id(ev.EQUITIES_PRINTS, s) for s in (7, 9)]
    prints = pl.DataFrame(
        {
            "ts": [1_764_081_000_000_000_000, 1_764_081_000_500_000_000],
            "seq": [7, 9],
            "id": ids,
            "symbol": ["AAPL", "AAPL"],
            "price": [230.1234, 230.15],
            "size": [5_000, 200],
            "venue": ["TRF", "Q"],
            "off_exchange": [True, False],
            "conditions": ["", ""],
            "flags": [0, 0],
        },
        schema=ev.polars_schema(ev.EQUITIES_PRINTS),
    )
    joins = pl.DataFrame(
        [
            {
                "ts": prints["ts"][0],
                "seq": 3,
                "id": ev.make_id(ev.EQUITIES_JOINS, 3),
                "print_id": ids[0],
                "symbol": "AAPL",
                "price": 230.1234,
                "size": 5_000,
                "venue": "TRF",
                "off_exchange": True,
                "quote_id": None,
                "bid": 230.10,
                "ask": 230.14,
                "mid": 230.12,
                "spread": 0.04,
                "spread_pct": 0.0002,
                "placement": "mid",
                "price_improvement": 0.0166,
                "retail": True,
                "retail_side": "buy",
                "evidence": [ids[0]],
            }
        ],
        schema=ev.polars_schema(ev.EQUITIES_JOINS),
    )
    frame, columns, formatter = evidence_table(
        ids, {ev.EQUITIES_PRINTS: prints, ev.EQUITIES_JOINS: joins}
    )
    assert columns == EQUITY_PRINT_COLUMNS and formatter is format_equity_print_rows
    cells = dict(format_equity_print_rows(frame))
    first, second = cells[ids[0]], cells[ids[1]]
    assert first["quote"][0] == "230.10×230.14" and first["placement"][0] == "mid"
    assert first["venue"][0] == "◆ TRF" and first["retail"][0] == "buy"
    assert second["quote"][0] == "no quote joined"  # said, not invented


async def test_open_evidence_of_a_dark_style_chain(make_rig: Rig) -> None:
    """``open_evidence`` on equity print ids (what a dark.inferred row points to)."""
    rig = make_rig("active", batches=10)
    app = rig.app
    prints = rig.engine.lookup([ev.make_id(ev.EQUITIES_PRINTS, 0)])[ev.EQUITIES_PRINTS]
    assert prints.height == 1
    async with app.run_test(size=(120, 30)) as pilot:
        await paint(rig, pilot)
        app.open_evidence(int(prints["id"][0]))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EvidenceScreen) and screen.state == "ready"
        title = str(screen.query_one("#evidence-title").render())
        assert "EQUITY PRINT EP-0" in title and prints["symbol"][0] in title


def test_lookup_reads_open_segments_of_a_session_being_recorded(tmp_path: Path) -> None:
    """Live: recent history beyond the index is still in the open (unsealed) segment."""
    import time

    cfg = tape_config("active")
    cfg.paths.data_dir = str(tmp_path)
    cfg.ui.evidence_index_rows = 1000
    feed = SyntheticFeed(cfg.synthetic, now_ns=0)
    engine = Engine(cfg, feed)
    recorder, _ = attach_recording(engine, cfg)
    assert recorder is not None
    try:
        for _ in range(60):
            engine.ingest(feed.market.next_batch())
        deadline = time.monotonic() + 20
        while recorder.rows_written != recorder.rows_handed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert recorder.rows_written == recorder.rows_handed
        assert not recorder.rows_sealed.get(ev.OPTIONS_ENRICHED)  # nothing sealed yet
        wanted = [ev.make_id(ev.OPTIONS_ENRICHED, s) for s in (0, 1, 2)]
        indexed = engine.index.find(ev.OPTIONS_ENRICHED, "id", wanted)
        assert indexed is not None and indexed.height == 0
        found = engine.lookup(wanted)[ev.OPTIONS_ENRICHED]
        assert found["id"].to_list() == wanted
    finally:
        recorder.close()


async def test_dark_event_drills_into_its_joined_prints(make_rig: Rig) -> None:
    """Dark (real engine output) -> enter -> Evidence: the inference's equity prints,
    each with the quote in force, and the rule trace; escape comes back."""
    rig = make_rig("active", batches=40)
    app = rig.app
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        await paint(rig, pilot)
        dark = app.screen
        assert isinstance(dark, DarkScreen)
        event = app.eq_data.dark.display.row(0, named=True)
        await pilot.press("enter")
        await settle(pilot)
        shown = app.screen
        assert isinstance(shown, EvidenceScreen) and shown.event_id == event["id"]
        assert shown.state == "ready"
        joins = shown.evidence.get(ev.EQUITIES_JOINS)
        assert joins is not None
        assert sorted(joins["id"].to_list()) == sorted(event["evidence"])
        assert joins["bid"].is_not_null().all()  # the quote in force rides along
        assert shown.evidence_view is not None and shown.trace_view is not None
        text = "\n".join(shown.evidence_view.visible_text())
        assert ev.format_id(event["evidence"][0]) in text or event["symbol"] in text
        trace = "\n".join(shown.trace_view.visible_text())
        assert event["trace"][0]["condition"] in trace
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is dark
