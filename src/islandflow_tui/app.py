"""The Textual app: one factory, one repaint tick, screens as modes.

Data flow (DESIGN.md "The engine and the UI loop"): the engine runs on its own
thread and pushes into a bounded, newest-wins ``DisplayFeed``.  The app drains that
feed on a single timer at ``ui.refresh_hz``, appends to the models it owns (one
polars frame per tape; no Python loop over rows, no message per event) and asks
the visible screen to repaint from them.  Nothing reads the wall clock for what
it shows: the status clock is the engine's event-time watermark.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import time
from collections.abc import Iterable
from functools import partial
from typing import Any, ClassVar, Protocol, runtime_checkable

import polars as pl
from textual.actions import parse as parse_action
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine, EngineStats
from islandflow_tui.engine.feeds import build_adapter
from islandflow_tui.engine.process import ProcessEngine
from islandflow_tui.engine.session import attach_recording
from islandflow_tui.screens.alerts import AlertFilter, AlertsScreen
from islandflow_tui.screens.candles import CandlesScreen
from islandflow_tui.screens.dark import DarkScreen
from islandflow_tui.screens.evidence import EvidenceScreen
from islandflow_tui.screens.flow import FlowScreen
from islandflow_tui.screens.help import HelpScreen
from islandflow_tui.screens.palette import JumpProvider
from islandflow_tui.screens.tape import TapeScreen
from islandflow_tui.themes import DEFAULT_THEME, SEMANTIC_DEFAULTS, THEMES
from islandflow_tui.widgets.equity_data import EquityScreensData
from islandflow_tui.widgets.flow_view import SORT_COLUMNS, SORTS, FlowFilter, SortedModel
from islandflow_tui.widgets.tape_view import EQUITY_FIELDS, OPTION_FIELDS, TapeFilter, TapeModel

EngineFacade = Engine | ProcessEngine
#: an alert's early repaint tick comes at least this long after the previous tick
#: (at most ~60 ticks/s however fast alerts arrive; Textual paints at most 60 fps)
EARLY_TICK_MIN_GAP_S = 1 / 60


@runtime_checkable
class LiveScreen(Protocol):
    """A screen that paints from app-owned state on the repaint tick."""

    def repaint(self, stats: EngineStats | None) -> None: ...


def _fields(stream: str, names: tuple[str, ...]) -> dict[str, pl.DataType]:
    schema = ev.polars_schema(stream)
    return {name: schema[name] for name in names}


class IslandflowApp(App[None], inherit_bindings=False):
    """islandflow: Tape, Flow, Alerts, Dark and Candles screens; Evidence pushed over any.

    Each top-level screen is a mode (``MODES``) with its own stack and a number
    key (1 to 5).
    """

    TITLE = "islandflow"
    CSS_PATH = "themes/app.tcss"
    MODES: ClassVar[dict[str, Any]] = {
        "tape": TapeScreen,
        "flow": FlowScreen,
        "alerts": AlertsScreen,
        "dark": DarkScreen,
        "candles": CandlesScreen,
    }
    COMMANDS: ClassVar[set[Any]] = App.COMMANDS | {JumpProvider}
    DEFAULT_MODE: ClassVar[str] = "tape"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Quit islandflow"),
        Binding(
            "question_mark,f1",
            "help",
            "Help",
            id="app.help",
            tooltip="List every key that works here, with what it does",
        ),
        Binding(
            "1",
            "switch_mode('tape')",
            "Tape",
            show=False,
            id="app.screen.tape",
            tooltip="Tape screen: live option prints and equity prints",
        ),
        Binding(
            "2",
            "switch_mode('flow')",
            "Flow",
            show=False,
            id="app.screen.flow",
            tooltip="Flow screen: packets and structures, sortable and filterable",
        ),
        Binding(
            "3",
            "switch_mode('alerts')",
            "Alerts",
            show=False,
            id="app.screen.alerts",
            tooltip="Alerts screen: scored alerts with their explanations",
        ),
        Binding(
            "4",
            "switch_mode('dark')",
            "Dark",
            show=False,
            id="app.screen.dark",
            tooltip="Dark screen: inferred dark-pool-style events and off-exchange prints",
        ),
        Binding(
            "5",
            "switch_mode('candles')",
            "Candles",
            show=False,
            id="app.screen.candles",
            tooltip="Candles screen: candlestick chart with volume, VWAP and markers",
        ),
        Binding(
            "ctrl+p",
            "command_palette",
            "Palette",
            show=False,
            priority=True,
            id="app.palette",
            tooltip="Open the command palette (themes, screens, keys)",
        ),
        Binding(
            "colon",
            "command_palette",
            "Palette",
            show=False,
            id="app.palette_colon",
            tooltip="Open the command palette",
        ),
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            show=False,
            priority=True,
            id="app.quit_anywhere",
            tooltip="Quit from anywhere, even from a prompt",
        ),
        Binding(
            "ctrl+c",
            "help_quit",
            show=False,
            system=True,
            id="app.help_quit",
            tooltip="Explain how to quit",
        ),
    ]

    def __init__(
        self,
        cfg: Config,
        engine: EngineFacade,
        *,
        start_engine: bool = True,
        tune_gc: bool = False,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        #: freeze start-up objects out of the GC (see ``tune_gc``); only for a process
        #: that runs one app (the CLI), never in a test process running hundreds
        self.tune_gc = tune_gc
        self.engine = engine
        self.start_engine = start_engine
        self._engine_started = False
        self._error_reported = ""
        self._gaps_reported = 0
        #: one-line start-up warnings (unwritable log dir, readable secrets file), shown once
        self.startup_warnings: list[str] = []
        for theme in THEMES:
            self.register_theme(theme)
        self._unknown_theme = "" if self.get_theme(cfg.ui.theme) else cfg.ui.theme
        self.theme = DEFAULT_THEME if self._unknown_theme else cfg.ui.theme

        ui = cfg.ui
        self.options_model = TapeModel(
            _fields(ev.OPTIONS_ENRICHED, OPTION_FIELDS), ui.hot_window_options
        )
        self.equities_model = TapeModel(_fields(ev.EQUITIES_PRINTS, EQUITY_FIELDS), ui.hot_window)
        self.models: dict[str, TapeModel] = {
            ev.OPTIONS_ENRICHED: self.options_model,
            ev.EQUITIES_PRINTS: self.equities_model,
        }
        # Flow and Alerts keep whole rows: few per second, and the Evidence screen
        # reads them without asking the engine while they are in the hot window.
        self.packets_model = SortedModel(ev.polars_schema(ev.FLOW_PACKETS), ui.hot_window)
        self.structures_model = SortedModel(ev.polars_schema(ev.FLOW_STRUCTURES), ui.hot_window)
        self.alerts_model = SortedModel(ev.polars_schema(ev.ALERTS), ui.hot_window)
        self.models.update(
            {
                ev.FLOW_PACKETS: self.packets_model,
                ev.FLOW_STRUCTURES: self.structures_model,
                ev.ALERTS: self.alerts_model,
            }
        )
        self.tape_filter = TapeFilter(preset=ui.preset, min_premium=ui.min_premium)
        self._apply_tape_filter()
        self.flow_filter = FlowFilter(preset=ui.flow_preset)
        self.flow_sort = "time"
        self._apply_flow_filter()
        self.alert_filter = AlertFilter()
        # Subscribed here rather than on mount so that anything ingested between
        # make_app() and run() (tests, replays) reaches the tapes.
        self.feed = engine.subscribe(
            list(self.models),
            {
                ev.OPTIONS_ENRICHED: ui.hot_window_options,
                ev.EQUITIES_PRINTS: ui.hot_window,
                ev.FLOW_PACKETS: ui.hot_window,
                ev.FLOW_STRUCTURES: ui.hot_window,
                ev.ALERTS: ui.hot_window,
            },
        )
        # Dark and Candles screens: their own feed and models (widgets/equity_data.py).
        self.eq_data = EquityScreensData(engine, ui)
        self.last_stats: EngineStats | None = None
        self._last_tick = 0.0  # time.monotonic() of the last repaint tick
        self._early_tick_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick_context: contextvars.Context | None = None
        self._first_watermark = 0
        self._warned: set[str] = set()  # replay warnings already notified

    # -- theme ------------------------------------------------------------------
    def get_theme_variable_defaults(self) -> dict[str, str]:
        """Semantic colours for themes that do not define them (Textual's built-ins)."""
        return {**super().get_theme_variable_defaults(), **SEMANTIC_DEFAULTS}

    # -- lifecycle ----------------------------------------------------------------
    def on_mount(self) -> None:
        for warning in self.startup_warnings:
            self.notify(warning, severity="warning", timeout=20)
        if self._unknown_theme:
            self.notify(
                f"unknown theme {self._unknown_theme!r}; using {DEFAULT_THEME}", severity="warning"
            )
        if self.start_engine:
            try:
                self.engine.start()  # its own thread; returns at once
                self._engine_started = True
            except Exception as exc:  # a feed that cannot start is shown, not raised
                self.notify(f"engine did not start: {exc}", severity="error", timeout=30)
        self.set_interval(1 / self.cfg.ui.refresh_hz, self.tick, name="repaint")
        self._loop = asyncio.get_running_loop()
        self._tick_context = contextvars.copy_context()  # Textual's active app, for the early tick
        self.feed.on_push = self._feed_pushed
        if self.tune_gc:
            self.call_after_refresh(tune_gc)

    async def on_unmount(self) -> None:
        self.engine.unsubscribe(self.feed)
        self.eq_data.close(self.engine)
        if self._engine_started:
            # stop() joins the engine thread; keep that wait off the UI loop.
            await asyncio.to_thread(self.engine.stop)

    # -- the repaint tick ---------------------------------------------------------
    def _feed_pushed(self, stream: str) -> None:
        """Any thread: an alert arrived; repaint soon rather than at the next tick.

        Alerts are rare and are what a person waits for; at ``ui.refresh_hz`` (15) they
        waited up to a whole tick period.  The early tick takes only the alerts (the
        firehose streams wait for the regular tick, so it is cheap) and repaints only
        the Alerts screen; at most one per ``EARLY_TICK_MIN_GAP_S`` after any tick.
        """
        loop = self._loop
        if stream != ev.ALERTS or loop is None or self._early_tick_pending:
            return
        self._early_tick_pending = True
        try:
            loop.call_soon_threadsafe(self._early_tick, context=self._tick_context)
        except RuntimeError:  # the loop has closed (app exiting)
            self._early_tick_pending = False

    def _early_tick(self) -> None:
        wait = self._last_tick + EARLY_TICK_MIN_GAP_S - time.monotonic()
        if wait > 0:
            self.set_timer(wait, self._early_tick)
            return
        self._early_tick_pending = False
        self.alerts_tick()

    def alerts_tick(self) -> None:
        """The early tick (see :meth:`_feed_pushed`): alerts only, Alerts screen only."""
        self._drain((ev.ALERTS,))
        screen = self.live_screen()
        if isinstance(screen, AlertsScreen):
            screen.repaint(self.last_stats)

    def _drain(self, streams: tuple[str, ...] | None) -> None:
        self._last_tick = time.monotonic()
        for stream, delta in self.feed.drain(streams).items():
            model = self.models.get(stream)
            if model is not None:
                if delta.reset:  # a replay seek: the stream's state starts again
                    model.clear()
                model.extend(delta.frame, delta.gap)

    def tick(self) -> None:
        """Drain the display feed once, update the models, repaint the visible screen."""
        self._drain(None)
        self.eq_data.drain()
        stats = self.engine.stats()
        self.last_stats = stats
        if stats.error and stats.error != self._error_reported:
            self._error_reported = stats.error
            self.notify(stats.error, severity="error", timeout=30)
        if stats.gaps > self._gaps_reported and stats.last_gap:
            # a feed gap is shown over the tape when it happens (and stays in the status bar)
            self._gaps_reported = stats.gaps
            self.notify(stats.last_gap, title="Feed gap", severity="warning", timeout=15)
        if stats.replay is not None:
            self._notify_replay_warnings(stats.replay.warnings)
        screen = self.live_screen()
        if screen is not None:
            screen.repaint(stats)

    def live_screen(self) -> LiveScreen | None:
        """The topmost live screen that is visible (modals show the screen beneath)."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, LiveScreen):
                return screen
            if not isinstance(screen, ModalScreen):
                return None
        return None

    def _notify_replay_warnings(self, warnings: tuple[str, ...]) -> None:
        """Each replay warning (a corrupt segment skipped, ...) pops up once."""
        for warning in warnings:
            if warning not in self._warned:
                self._warned.add(warning)
                self.notify(warning, title="Replay", severity="warning", timeout=20)

    def status_notes(self, stats: EngineStats) -> tuple[str, ...]:
        """Warnings for the status bar, all in event time (deterministic in replay and tests).

        ``eq quiet 31s``: no equity print for ``ui.equities_silent_warning_ms`` while
        the clock moved on; a feed that silently lost its equities subscription shows.
        ``2 seg skipped``: a replay skipped unreadable segments; ``1 ckpt bad``: it
        found a damaged checkpoint and seeks from earlier ones (each one also popped
        up once as a notification).
        """
        notes: tuple[str, ...] = ()
        replay = stats.replay
        if replay is not None and replay.warnings:
            bad = replay.bad_checkpoints
            segments = len(replay.warnings) - bad
            notes = (
                *((f"{segments} seg skipped",) if segments else ()),
                *((f"{bad} ckpt bad",) if bad else ()),
            )
        return notes + self._quiet_notes(stats)

    def _quiet_notes(self, stats: EngineStats) -> tuple[str, ...]:
        watermark = stats.watermark_ns
        if watermark <= 0:
            return ()
        if self._first_watermark == 0:
            self._first_watermark = watermark
        rows = self.equities_model.rows
        last = int(rows["ts"][0]) if rows.height else self._first_watermark
        quiet_ns = watermark - last
        if quiet_ns >= self.cfg.ui.equities_silent_warning_ms * ev.NS_PER_MS:
            return (f"eq quiet {quiet_ns // ev.NS_PER_S}s",)
        return ()

    # -- shared tape state ------------------------------------------------------------
    def set_tape_filter(self, filt: TapeFilter) -> None:
        """Apply a filter to both tapes (polars expressions over their hot windows)."""
        if filt != self.tape_filter:
            self.tape_filter = filt
            self._apply_tape_filter()

    def _apply_tape_filter(self) -> None:
        self.options_model.set_filter(self.tape_filter.options_expr())
        self.equities_model.set_filter(self.tape_filter.equities_expr())

    # -- shared flow / alert state ---------------------------------------------------
    def set_flow_filter(self, filt: FlowFilter) -> None:
        if filt != self.flow_filter:
            self.flow_filter = filt
            self._apply_flow_filter()

    def _apply_flow_filter(self) -> None:
        self.packets_model.set_filter(self.flow_filter.packets_expr())
        self.structures_model.set_filter(self.flow_filter.structures_expr())

    def set_flow_sort(self, sort: str) -> None:
        """time (newest first), premium, size or z (packets' premium z; structures have
        no z-score and sort by premium)."""
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}; expected one of {', '.join(SORTS)}")
        self.flow_sort = sort
        self.packets_model.set_sort(SORT_COLUMNS[ev.FLOW_PACKETS][sort])
        self.structures_model.set_sort(SORT_COLUMNS[ev.FLOW_STRUCTURES][sort])

    def cycle_flow_sort(self) -> None:
        self.set_flow_sort(SORTS[(SORTS.index(self.flow_sort) + 1) % len(SORTS)])

    def set_alert_filter(self, filt: AlertFilter) -> None:
        if filt != self.alert_filter:
            self.alert_filter = filt
            self.alerts_model.set_filter(filt.expr())

    def jump_to_symbol(self, symbol: str) -> None:
        """Palette: show only ``symbol`` on the Tape and Flow screens, then Flow."""
        symbols = frozenset({symbol.upper()})
        from dataclasses import replace

        self.set_tape_filter(replace(self.tape_filter, symbols=symbols))
        self.set_flow_filter(replace(self.flow_filter, symbols=symbols))
        self.switch_mode("flow")
        if self.last_stats is not None:
            screen = self.live_screen()
            if screen is not None:
                screen.repaint(self.last_stats)

    # -- evidence -------------------------------------------------------------------
    def find_event(self, event_id: int) -> dict[str, Any] | None:
        """A packet, structure or alert still in the app's hot window (whole row)."""
        stream, _ = ev.split_id(event_id)
        model = self.models.get(stream)
        if isinstance(model, SortedModel):
            return model.find(event_id)
        return None

    def open_evidence(self, event_id: int) -> None:
        """Push the Evidence screen of any event id (alerts, hits, packets, structures,
        prints, ``dark.inferred``...); escape comes back."""
        self.push_screen(EvidenceScreen(int(event_id)))

    # -- command palette ------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Palette entries derived from the bindings, so the palette and keys never drift."""
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help: keys", "List every key that works here", self.action_help)
        for mode, factory in self.MODES.items():
            title = getattr(factory, "TITLE", None) or mode.title()
            yield SystemCommand(
                f"Screen: {title}", f"Switch to the {title} screen", partial(self.switch_mode, mode)
            )
        for binding in type(screen).BINDINGS:
            if not (isinstance(binding, Binding) and binding.show and binding.tooltip):
                continue
            _, name, params = parse_action(binding.action)
            if screen.check_action(name, params):  # e.g. replay keys only in a replay
                yield SystemCommand(
                    f"{screen.title or type(screen).__name__}: {binding.description}",
                    binding.tooltip,
                    partial(screen.run_action, binding.action),
                )

    # -- actions --------------------------------------------------------------------
    def action_help(self) -> None:
        """Help lists the bindings active on the current screen, read from the bindings."""
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.screen.active_bindings.values()))


def tune_gc() -> None:
    """Keep the garbage collector's full passes off the UI loop's critical path.

    A full (generation 2) collection walks every tracked object; with Textual's
    and Python's start-up objects (~250 000) in the heap it took 100–800 ms on the
    UI loop under the firehose, which was the event-loop lag's whole p99
    (``bench/bench_app.py firehose``).  Freezing moves the start-up objects out of
    collection for good; the higher third threshold makes full passes rarer.  The
    app creates few reference cycles (frames and strips are freed by refcount), so
    memory does not grow for it.
    """
    gc.freeze()
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(gen0, gen1, GC_FULL_EVERY)


#: gen-1 collections between full collections (CPython's default is 10)
GC_FULL_EVERY = 100


def make_app(
    cfg: Config,
    engine: EngineFacade | None = None,
    *,
    start_engine: bool = True,
    tune_gc: bool = False,
) -> IslandflowApp:
    """The one way to build the app (CLI and tests).

    Without an engine it builds the configured one: in a child process (default,
    ``feed.engine = "process"``) so engine work never competes with the UI for the
    GIL, or on a thread (``"thread"``).  Tests pass a thread engine they drive.
    """
    if engine is None:
        if cfg.feed.engine == "process":
            engine = ProcessEngine(cfg)
        else:
            engine = Engine(cfg, build_adapter(cfg))
            attach_recording(engine, cfg)
    app = IslandflowApp(cfg, engine, start_engine=start_engine, tune_gc=tune_gc)
    if start_engine and isinstance(engine, ProcessEngine):
        # Spawn before Textual owns the terminal: once its driver has swapped the
        # standard streams, multiprocessing cannot pass them to a child.  Starting
        # here also overlaps the engine's start-up with the UI's.
        engine.start()
    return app
