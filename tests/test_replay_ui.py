"""The replay UI driven by keys and clicks (Textual Pilot), plus its pure pieces.

A short session (150 s of the realistic synthetic market, 09:30:00-09:32:30 New
York) is recorded once per test run; every test replays its own hard-linked copy,
so checkpoints a replay writes never leak into another test.  The engine thread
does not run (except in the last test): keys queue controls with
``engine.control`` exactly as in the app, then ``apply`` runs them on the test's
thread (``ReplayFeed._apply_commands``, what the engine thread does between
batches) and ticks the app, so every assertion is about a known position.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from textual.pilot import Pilot

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine, EngineStats
from islandflow_tui.engine.ingest.base import FeedState, FeedStatus
from islandflow_tui.engine.log import SessionReader
from islandflow_tui.engine.replay import MAX_CHUNK_NS, ReplayFeed, ReplaySource, ReplayState
from islandflow_tui.engine.session import (
    attach_recording,
    finish_recording,
    parse_time,
    with_session_compute_config,
)
from islandflow_tui.screens.help import HelpScreen
from islandflow_tui.screens.tape import TapeScreen
from islandflow_tui.widgets.prompt import PromptScreen
from islandflow_tui.widgets.scrub_bar import (
    ScrubBar,
    column_of,
    et_time,
    resample,
    sparkline,
    ts_of,
)
from islandflow_tui.widgets.status_bar import StatusBar, speed_label, status_text
from islandflow_tui.widgets.tape_view import ARRIVAL, TapeView, layout_columns
from tests.conftest import tape_config

S = ev.NS_PER_S
SESSION_NAME = "20251125T143000Z-replay"  # fixed: the status bar shows it
SESSION_SECONDS = 150
TICK_MS = 3000


# ---------------------------------------------------------------------------
# a recorded session and a replay rig
# ---------------------------------------------------------------------------
_MASTERS: dict[Path, Path] = {}


def record_session(root: Path) -> Path:
    """Record the test session under ``root`` once per run; returns its folder."""
    if root in _MASTERS:
        return _MASTERS[root]
    cfg = tape_config("realistic")
    cfg.paths.data_dir = str(root)
    cfg.synthetic.tick_ms = TICK_MS
    cfg.replay.checkpoint_interval_s = 5.0
    engine = Engine(cfg, _synthetic(cfg))
    recorder, _ = attach_recording(engine, cfg)
    assert recorder is not None and recorder.path is not None
    market = engine.adapter.market  # type: ignore[union-attr]
    for _ in range(SESSION_SECONDS * 1000 // TICK_MS):
        engine.ingest(market.next_batch())
    finish_recording(engine, recorder)
    _MASTERS[root] = recorder.path
    return recorder.path


def _synthetic(cfg: Config) -> Any:
    from islandflow_tui.engine.feeds import build_adapter

    return build_adapter(cfg)


@pytest.fixture(scope="session")
def replay_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_session(tmp_path_factory.getbasetemp() / "replay-master")


def copy_session(master: Path, into: Path) -> Path:
    """A private copy (hard links: segments and checkpoints are never rewritten)."""
    path = into / SESSION_NAME
    shutil.copytree(master, path, copy_function=os.link)
    return path


def replay_config(path: Path) -> Config:
    cfg = with_session_compute_config(Config(), path)  # as `islandflow replay` does
    cfg.feed.adapter = "replay"
    cfg.feed.engine = "thread"
    cfg.replay.session = str(path)
    return cfg


@dataclass
class ReplayRig:
    path: Path
    cfg: Config
    feed: ReplayFeed
    engine: Engine
    app: Any  # IslandflowApp

    @property
    def state(self) -> ReplayState:
        return self.feed.state_snapshot()

    @property
    def screen(self) -> TapeScreen:
        screen = self.app.screen
        assert isinstance(screen, TapeScreen)
        return screen

    @property
    def bar(self) -> ScrubBar:
        return self.app.screen.query_one(ScrubBar)

    @property
    def status(self) -> str:
        return self.app.screen.query_one(StatusBar).plain

    async def settle(self, pilot: Pilot[None]) -> None:
        """Send pending steps, apply queued controls as the engine thread would,
        repaint, and let the scrub bar's worker finish."""
        screen = self.app.screen
        if isinstance(screen, TapeScreen):
            screen.flush_steps()
        self.feed._apply_commands()
        self.app.tick()
        await pilot.pause()
        self.app.tick()  # a bar shown on the first tick has a width on the second
        await self.app.workers.wait_for_complete()
        await pilot.pause()

    async def press(self, pilot: Pilot[None], *keys: str) -> None:
        await pilot.press(*keys)
        await self.settle(pilot)


def make_replay(master: Path, into: Path, *, start_engine: bool = False, **kw: Any) -> ReplayRig:
    from islandflow_tui.app import make_app

    path = copy_session(master, into)
    cfg = replay_config(path)
    kw.setdefault("paused", True)
    feed = ReplayFeed(path, checkpoint_interval_s=5.0, **kw)
    engine = Engine(cfg, feed)
    return ReplayRig(path, cfg, feed, engine, make_app(cfg, engine, start_engine=start_engine))


@pytest.fixture
def rig(replay_master: Path, tmp_path: Path) -> ReplayRig:
    return make_replay(replay_master, tmp_path)


def straight_tapes(rig: ReplayRig, targets: list[int]) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    """What an app shows after playing the session straight from its start to each
    target (no seek, no checkpoint): (options rows, equities rows) per target."""
    from islandflow_tui.app import make_app

    cfg = replay_config(rig.path)
    engine = Engine(cfg)
    app = make_app(cfg, engine, start_engine=False)  # never run: its models and tick
    source = ReplaySource(SessionReader(rig.path))
    pos = source.first_ts
    out = []
    for target in sorted(targets):
        while pos < target:
            t1 = min(pos + MAX_CHUNK_NS, target)
            engine.ingest(ev.FeedBatch(source.window(pos, t1), t1, recorded=True))
            app.tick()
            pos = t1
        out.append((rows(app.options_model.rows), rows(app.equities_model.rows)))
    engine.unsubscribe(app.feed)
    return out


def rows(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop(ARRIVAL)


def tape_column(view: TapeView, key: str) -> list[str]:
    width = view.scrollable_content_region.width
    offset = 0
    for col, w in layout_columns(view.columns, width).columns:
        if col.key == key:
            return [ln[offset : offset + w].strip() for ln in view.visible_text()[1:] if ln.strip()]
        offset += w + 1
    raise AssertionError(f"column {key} not shown")


def assert_tape_matches(rig: ReplayRig, expected: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    options, equities = expected
    assert rows(rig.app.options_model.rows).equals(options)
    assert rows(rig.app.equities_model.rows).equals(equities)
    assert options.height > 0 and equities.height > 0
    # and on screen: the newest rows, newest first, with their own times
    view, _ = rig.screen.views
    shown = tape_column(view, "time")
    newest = rig.app.options_model.display["ts"].head(len(shown)).to_list()
    assert shown == [et_time(ts, ms=True) for ts in newest]


@pytest.fixture
def calls(rig: ReplayRig) -> Iterator[list[tuple[str, Any]]]:
    """Every engine.control call the UI makes, in order (they still reach the feed)."""
    seen: list[tuple[str, Any]] = []
    forward = rig.engine.control

    def record(command: str, arg: Any = None) -> None:
        seen.append((command, arg))
        forward(command, arg)

    rig.engine.control = record  # type: ignore[method-assign]
    yield seen


# ---------------------------------------------------------------------------
# pure pieces
# ---------------------------------------------------------------------------
def test_resample_keeps_totals_and_shape() -> None:
    counts = np.array([1, 2, 3, 4, 5, 6, 7, 8])
    assert resample(counts, 4).tolist() == [3, 7, 11, 15]
    assert resample(counts, 8).tolist() == counts.tolist()
    assert resample(np.array([1, 2]), 4).tolist() == [1, 1, 2, 2]
    assert resample(np.array([], dtype=np.int64), 3).tolist() == [0, 0, 0]


def test_sparkline_scales_to_the_largest_and_leaves_gaps_blank() -> None:
    assert sparkline(np.array([0, 1, 4, 8])) == " ▁▄█"
    assert sparkline(np.array([0, 0])) == "  "


def test_columns_and_times_round_trip() -> None:
    start, end, width = 1_000, 1_000 + 80 * 7, 80
    for col in (0, 1, 39, 79):
        assert column_of(ts_of(col, start, end, width), start, end, width) == col
    assert column_of(start - 5, start, end, width) == 0
    assert column_of(end + 5, start, end, width) == width - 1


def _stats(replay: ReplayState | None) -> EngineStats:
    return EngineStats(
        feed="replay " + SESSION_NAME,
        feed_state=FeedState(FeedStatus.LIVE),
        running=True,
        watermark_ns=replay.position_ns if replay else 0,
        totals={},
        rates={ev.OPTIONS_PRINTS: 40.0},
        rejected={},
        rejected_total=0,
        last_rejection="",
        display_gap=0,
        replay=replay,
    )


def test_status_text_in_replay() -> None:
    t = parse_time("2025-11-25T14:31:05.250Z", 0)
    assert t is not None
    state = ReplayState(SESSION_NAME, "/x", t - 65 * S, t + 85 * S, t, 10.0, False, False, 3, 0, ())
    line = status_text(_stats(state), paused=False, width=120).plain
    assert "REPLAY  09:31:05.250 ET 10x" in line and SESSION_NAME in line
    assert "PAUSED" not in line and "END" not in line
    paused = status_text(_stats(replace(state, paused=True)), paused=False, width=80).plain
    assert paused.rstrip().endswith("10x  PAUSED") and len(paused) == 80
    fast = status_text(_stats(replace(state, speed=None)), paused=False, width=80).plain
    assert "ET MAX" in fast
    done = replace(state, position_ns=state.end_ns, finished=True, paused=True)
    assert status_text(_stats(done), paused=False, width=60).plain.rstrip().endswith("END")
    labels = [speed_label(s) for s in (0.25, 1.0, 10.0, 1000.0, None)]
    assert labels == ["0.25x", "1x", "10x", "1000x", "MAX"]


# ---------------------------------------------------------------------------
# Pilot: a live session has none of it
# ---------------------------------------------------------------------------
async def test_live_session_has_no_scrub_bar_and_keeps_its_keys(make_rig: Any) -> None:
    live = make_rig("active", batches=10)
    app = live.app
    async with app.run_test(size=(80, 24)) as pilot:
        app.tick()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TapeScreen) and not screen.replaying
        assert not screen.query_one(ScrubBar).display
        keys = screen.active_bindings
        assert keys["space"].binding.action == "toggle_pause"
        assert keys["home"].binding.action == "scroll_home"  # the tape's own
        assert keys["g"].binding.action == "scroll_home"
        for key in ("n", "N", "left", "right", "left_square_bracket", "right_curly_bracket"):
            assert key not in keys
        assert "REPLAY" not in screen.query_one(StatusBar).plain
        titles = {c.title for c in app.get_system_commands(screen)}
        assert "Tape: Pause" in titles and "Tape: Play/Pause" not in titles
        await pilot.press("space")  # still freezes the tape
        assert not app.options_model.following


# ---------------------------------------------------------------------------
# Pilot: replay
# ---------------------------------------------------------------------------
async def test_replay_shows_scrub_bar_status_and_replay_keys(rig: ReplayRig) -> None:
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.settle(pilot)
        screen = rig.screen
        assert screen.replaying
        bar = rig.bar
        assert bar.display and bar.region.height == 3
        first = rig.feed.source.first_ts
        assert (bar.start_ns, bar.end_ns) == (first, rig.feed.source.last_ts + 1)
        assert len(bar.density) == bar.bar_width == 78
        assert (
            sum(bar.density) == rig.engine.stats().totals[ev.OPTIONS_PRINTS]
            or sum(bar.density)
            == SessionReader(rig.path).scan(ev.OPTIONS_PRINTS).select(pl.len()).collect().item()
        )
        assert len(bar.alerts) > 10
        lines = bar.render().plain.split("\n")
        assert lines[0][0] == "▼" and "◆" in lines[0]  # head at the start, alert markers
        assert lines[1][0] == "█" and len(lines[1].strip()) > 60  # head, then the density
        assert lines[2].startswith("09:30:00") and lines[2].rstrip().endswith("09:32:29")
        status = rig.status
        assert "REPLAY" in status and "09:30:00." in status and "1x" in status
        assert status.rstrip().endswith("PAUSED") and len(status) <= 80
        keys = screen.active_bindings
        assert keys["space"].binding.action == "replay_toggle"
        assert keys["home"].binding.action == "replay_jump('home')"
        assert keys["g"].binding.action == "replay_goto"
        for active in keys.values():
            if active.node.__module__.startswith("islandflow_tui"):
                assert active.binding.id and active.binding.tooltip, active.binding
        titles = {c.title for c in rig.app.get_system_commands(screen)}
        assert "Tape: Play/Pause" in titles and "Tape: Pause" not in titles
        # a resize reads the density again for the new width
        await pilot.resize_terminal(120, 30)
        await rig.settle(pilot)
        assert len(bar.density) == bar.bar_width == 118
        await pilot.press("question_mark")
        help_screen = rig.app.screen
        assert isinstance(help_screen, HelpScreen)
        described = {row.description for row in help_screen.rows}
        assert {"Play/Pause", "Slower", "Faster", "-1s", "+1m", "Go to", "Next alert"} <= described
        assert "Pause" not in described


async def test_space_plays_and_pauses(rig: ReplayRig) -> None:
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.settle(pilot)
        await rig.press(pilot, "space")
        assert not rig.state.paused
        assert "PAUSED" not in rig.status and "REPLAY" in rig.status
        assert rig.app.options_model.following  # space did not freeze the tape
        await rig.press(pilot, "space")
        assert rig.state.paused and rig.status.rstrip().endswith("PAUSED")
        # a tape frozen by scrolling away follows again when the replay plays
        rig.screen.views[0].pause()
        assert rig.screen.paused
        await rig.press(pilot, "space")
        assert not rig.state.paused and not rig.screen.paused


async def test_speed_keys_walk_the_ladder(rig: ReplayRig) -> None:
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.settle(pilot)
        assert rig.state.speed == 1.0
        await rig.press(pilot, "right_square_bracket", "right_square_bracket")
        assert rig.state.speed == 5.0 and " 5x" in rig.status
        await rig.press(pilot, "left_square_bracket")
        assert rig.state.speed == 2.0
        await rig.press(pilot, *["left_square_bracket"] * 5)
        assert rig.state.speed == 0.25 and "0.25x" in rig.status
        await rig.press(pilot, *["right_square_bracket"] * 12)  # 0.25x … 1000x, max
        assert rig.state.speed is None and " MAX" in rig.status
        await rig.press(pilot, "left_square_bracket")
        assert rig.state.speed == 1000.0


async def test_step_keys_move_the_play_head(rig: ReplayRig) -> None:
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.settle(pilot)
        first = rig.feed.source.first_ts
        t0 = parse_time("09:31:00", first)
        assert t0 is not None
        rig.screen.seek(t0)
        await rig.settle(pilot)
        assert rig.state.position_ns == t0
        for keys, delta in (
            (("right",), 1),
            (("left",), -1),
            (("shift+right",), 10),
            (("shift+left",), -10),
            (("right_curly_bracket",), 60),
            (("left_curly_bracket",), -60),
            (("left_curly_bracket",), -60),
        ):
            before = rig.state.position_ns
            await rig.press(pilot, *keys)  # settle sends a step the debounce holds
            assert rig.state.position_ns == max(first, before + delta * S), keys
        assert rig.state.position_ns == first  # clamped at the session start
        assert "09:30:00." in rig.status and rig.bar.column_of(rig.state.position_ns) == 0


async def test_repeated_steps_are_coalesced(rig: ReplayRig, calls: list[tuple[str, Any]]) -> None:
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.settle(pilot)
        start = rig.state.position_ns
        # through the keys: however they are grouped, five presses are five seconds
        await pilot.press("right", "right", "right", "right", "right")
        await rig.settle(pilot)
        assert rig.state.position_ns == start + 5 * S
        assert sum(arg for _, arg in calls) == 5 * S
        # key repeat (faster than Pilot types): the first goes at once, the rest wait
        calls.clear()
        await pilot.pause(0.15)
        screen = rig.screen
        for _ in range(5):
            screen.action_replay_step(1)
        assert calls == [("step", 1 * S)]
        await pilot.pause(0.25)  # the debounce timer sends them as one
        assert calls == [("step", 1 * S), ("step", 4 * S)]
        await rig.settle(pilot)
        assert rig.state.position_ns == start + 10 * S
        # an absolute jump drops steps still waiting
        await pilot.pause(0.15)
        screen.action_replay_step(-1)
        screen.action_replay_step(-1)
        screen.action_replay_jump("end")
        await pilot.pause(0.25)
        assert calls[-2:] == [("step", -1 * S), ("end", None)]
        await rig.settle(pilot)
        assert rig.state.finished


async def test_goto_prompt(rig: ReplayRig) -> None:
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.settle(pilot)
        first = rig.feed.source.first_ts
        await pilot.press("g")
        prompt = rig.app.screen
        assert isinstance(prompt, PromptScreen)
        await pilot.press(*"09:31:10", "enter")  # typing replaces the current time
        await rig.settle(pilot)
        assert rig.state.position_ns == parse_time("09:31:10", first)
        assert "09:31:10.000 ET" in rig.status
        # bad or out-of-session times stay in the prompt and change nothing
        for text, why in (("9x", "expected HH:MM"), ("08:00", "outside the session")):
            await pilot.press("g", *text, "enter")
            prompt = rig.app.screen
            assert isinstance(prompt, PromptScreen)
            assert why in prompt.query_one("#prompt-error").render().plain  # type: ignore[attr-defined]
            await pilot.press("escape")
            await rig.settle(pilot)
            assert rig.state.position_ns == parse_time("09:31:10", first)
        # +SECONDS from the session start; g in the prompt is typed, not a key
        await pilot.press("g", *"+30", "enter")
        await rig.settle(pilot)
        assert rig.state.position_ns == first + 30 * S
        assert isinstance(rig.app.screen, TapeScreen)


async def test_next_and_previous_alert(rig: ReplayRig) -> None:
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.settle(pilot)
        alerts = np.asarray(rig.bar.alerts)
        await rig.press(pilot, "n")
        assert rig.state.position_ns == alerts[0] + 1
        await rig.press(pilot, "n")
        second = alerts[alerts > alerts[0]][0]
        assert rig.state.position_ns == second + 1
        await rig.press(pilot, "N")
        assert rig.state.position_ns == alerts[0] + 1
        assert rig.bar.column_of(rig.state.position_ns) == rig.bar.column_of(int(alerts[0]))
        # past the last alert, n says so and does not move
        await rig.press(pilot, "end")
        end = rig.state.position_ns
        await rig.press(pilot, "n")
        assert rig.state.position_ns == end


async def test_home_end_and_play_again_at_the_end(rig: ReplayRig) -> None:
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.settle(pilot)
        await rig.press(pilot, "end")
        assert rig.state.finished and rig.state.position_ns == rig.state.end_ns
        assert rig.status.rstrip().endswith("END")
        assert rig.app.options_model.rows.height > 0
        head = rig.bar.column_of(rig.state.position_ns)
        assert head == rig.bar.bar_width - 1
        await rig.press(pilot, "home")
        assert rig.state.position_ns == rig.state.start_ns and not rig.state.finished
        assert rig.app.options_model.rows.height == 0  # nothing before the first event
        await rig.press(pilot, "end")
        await rig.press(pilot, "space")  # play at the end starts again
        assert rig.state.position_ns == rig.state.start_ns and not rig.state.paused


async def test_scrub_bar_click_seeks_and_the_tape_matches_a_straight_replay(
    rig: ReplayRig,
) -> None:
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.settle(pilot)
        bar = rig.bar
        col = bar.bar_width // 4
        target = bar.ts_of(col)
        await pilot.click(ScrubBar, offset=(1 + col, 1))  # 1: the bar's left padding
        await rig.settle(pilot)
        assert rig.state.position_ns == target
        assert bar.column_of(rig.state.position_ns) == col
        assert bar.render().plain.split("\n")[0][col] == "▼"
        # one second back seeks backwards (an older checkpoint) to the same state
        await rig.press(pilot, "left")
        back = rig.state.position_ns
        assert back == target - S
        expected_back, expected_target = straight_tapes(rig, [back, target])
        assert_tape_matches(rig, expected_back)
        await rig.press(pilot, "right")
        assert_tape_matches(rig, expected_target)


async def test_scrub_bar_drag_previews_then_seeks_on_release(rig: ReplayRig) -> None:
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await rig.settle(pilot)
        bar = rig.bar
        start_pos = rig.state.position_ns
        a, b = bar.bar_width // 5, bar.bar_width * 3 // 5
        await pilot.mouse_down(ScrubBar, offset=(1 + a, 1))
        await pilot.hover(ScrubBar, offset=(1 + b, 1))
        await pilot.pause()
        # the head and its label follow the pointer; the replay has not moved
        assert bar.drag_ns == bar.ts_of(b)
        assert bar.render().plain.split("\n")[0][b] == "▼"
        assert et_time(bar.ts_of(b)) in bar.render().plain.split("\n")[2]
        assert rig.state.position_ns == start_pos
        await pilot.mouse_up(ScrubBar, offset=(1 + b, 1))
        await rig.settle(pilot)
        assert bar.drag_ns == -1
        assert rig.state.position_ns == bar.ts_of(b)
        (expected,) = straight_tapes(rig, [bar.ts_of(b)])
        assert_tape_matches(rig, expected)


async def test_segment_warnings_are_notified_once(replay_master: Path, tmp_path: Path) -> None:
    path = copy_session(replay_master, tmp_path / "src")
    bad = next((path / ev.EQUITIES_QUOTES).glob("*.parquet"))
    data = bad.read_bytes()
    bad.unlink()  # a new file: the hard-linked master stays intact
    bad.write_bytes(data[: len(data) // 2])
    rig = make_replay(path, tmp_path / "replay")
    seen: list[str] = []
    notify = rig.app.notify

    def record(message: str, **kw: Any) -> None:
        seen.append(message)
        notify(message, **kw)

    rig.app.notify = record
    async with rig.app.run_test(size=(100, 30)) as pilot:
        for _ in range(3):
            await rig.settle(pilot)
        rig.screen.seek(rig.state.start_ns + 20 * S)
        await rig.settle(pilot)
        warnings = [m for m in seen if "segment" in m]
        assert len(warnings) == 1 and bad.name in warnings[0]
        assert "1 seg skipped" in rig.status
        assert rig.app.options_model.rows.height > 0  # the rest replays


async def test_engine_thread_plays_and_pauses(replay_master: Path, tmp_path: Path) -> None:
    """The real wiring: the engine thread runs the feed and applies the controls.

    Keys go through ``simulate_key``: ``pilot.press`` waits for the process to go
    idle, which a playing replay (a busy engine thread) never is.
    """
    rig = make_replay(replay_master, tmp_path, start_engine=True, speed=50.0)
    app = rig.app

    async def until(done: Callable[[], bool]) -> None:
        for _ in range(100):
            if done():
                return
            await asyncio.sleep(0.03)
        raise AssertionError("timed out")

    async with app.run_test(size=(80, 24)):
        await until(lambda: "REPLAY" in rig.status)
        start = rig.state.position_ns
        assert rig.state.paused
        app.simulate_key("space")
        await until(lambda: rig.state.position_ns > start + 3 * S)
        await until(lambda: app.options_model.rows.height > 0)
        app.simulate_key("space")
        await until(lambda: rig.state.paused)
        stopped = rig.state.position_ns
        await until(lambda: "PAUSED" in rig.status)
        assert "50x" in rig.status
        await asyncio.sleep(0.1)
        assert rig.state.position_ns == stopped
    assert not rig.engine.running


def test_status_bar_counts_skipped_segments_and_bad_checkpoints_apart(
    replay_master: Path, tmp_path: Path
) -> None:
    from dataclasses import replace

    rig = make_replay(replay_master, tmp_path)
    stats = rig.app.engine.stats()
    state = replace(
        stats.replay,
        warnings=("segment a.parquet unreadable", "checkpoint 0001 unreadable (zstd error)"),
        bad_checkpoints=1,
    )
    notes = rig.app.status_notes(replace(stats, replay=state))
    assert "1 seg skipped" in notes and "1 ckpt bad" in notes
    only = replace(state, warnings=state.warnings[1:])
    notes = rig.app.status_notes(replace(stats, replay=only))
    assert "1 ckpt bad" in notes and not any("seg" in n for n in notes)
