"""Evidence: one event, why it exists (its rule trace) and what it was built from.

Pushed on top of any screen with ``app.open_evidence(event_id)``; ``enter`` on an
evidence row pushes the next level (alert → hit → packet → member prints → raw
print/NBBO), ``escape`` pops one level.  Generic by stream: the id names its stream
(``events.split_id``), so a Dark screen's ``dark.inferred`` id shows its equity prints
with the quote in force (``equities.joins``) the same way.

Data: the event and its evidence rows are fetched in a thread worker, first from the
app's hot windows, then by id from the engine (its recent-event index, then the
session log), so evidence stays inspectable after the live window dropped it.  Until
the answer comes the screen says "loading"; an id found nowhere says
"not found (not recorded)".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

import polars as pl
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import EngineStats
from islandflow_tui.widgets.flow_view import (
    EQUITY_PRINT_COLUMNS,
    EVENT_COLUMNS,
    HIT_COLUMNS,
    PACKET_COLUMNS,
    PRINT_COLUMNS,
    STRUCTURE_COLUMNS,
    TRACE_COLUMNS,
    CursorView,
    event_frame,
    format_equity_print_rows,
    format_event_rows,
    format_hit_rows,
    format_packet_rows,
    format_print_rows,
    format_structure_rows,
    format_trace_rows,
    static_model,
    trace_frame,
)
from islandflow_tui.widgets.scrub_bar import REPLAY_BINDINGS, ReplayControls, ScrubBar
from islandflow_tui.widgets.status_bar import StatusBar
from islandflow_tui.widgets.tape_view import Column, RowFormatter, compact_money

if TYPE_CHECKING:
    from islandflow_tui.app import IslandflowApp

#: evidence tables with their own columns, by the stream of the evidence rows
TABLES: dict[str, tuple[tuple[Column, ...], RowFormatter]] = {
    ev.OPTIONS_ENRICHED: (PRINT_COLUMNS, format_print_rows),
    ev.FLOW_PACKETS: (PACKET_COLUMNS, format_packet_rows),
    ev.FLOW_STRUCTURES: (STRUCTURE_COLUMNS, format_structure_rows),
    ev.CLASSIFIER_HITS: (HIT_COLUMNS, format_hit_rows),
    ev.EQUITIES_PRINTS: (EQUITY_PRINT_COLUMNS, format_equity_print_rows),
}
NOT_FOUND = "not found (not recorded)"

#: the fields shown in the summary of each kind of event (label, field)
SUMMARY_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    ev.ALERTS: (
        ("severity", "severity"),
        ("score", "score"),
        ("direction", "direction"),
        ("confidence", "confidence"),
        ("classifiers", "classifiers"),
        ("hits", "hits"),
        ("premium", "premium"),
        ("status", "status"),
        ("suppressed", "suppressed"),
    ),
    ev.CLASSIFIER_HITS: (
        ("classifier", "classifier"),
        ("variant", "variant"),
        ("direction", "direction"),
        ("confidence", "confidence"),
        ("premium", "premium"),
        ("size", "size"),
        ("source", "source"),
    ),
    ev.FLOW_PACKETS: (
        ("kind", "kind"),
        ("tags", "tags"),
        ("side", "side"),
        ("direction", "direction"),
        ("prints", "count"),
        ("size", "total_size"),
        ("premium", "premium"),
        ("vwap", "vwap"),
        ("first", "first_price"),
        ("last", "last_price"),
        ("span ms", "span_ns"),
        ("venues", "exchanges"),
        ("ISO", "iso_count"),
        ("NBBO coverage", "nbbo_coverage"),
        ("at/above ask", "ask_ratio"),
        ("mid", "mid_ratio"),
        ("at/below bid", "bid_ratio"),
        ("aggressor", "aggressor_ratio"),
        ("start", "start_placement"),
        ("end", "end_placement"),
        ("spot", "spot"),
        ("moneyness", "moneyness"),
        ("DTE", "dte"),
        ("OI", "open_interest"),
        ("day vol", "day_volume"),
        ("premium z", "premium_z"),
        ("size z", "size_z"),
        ("root premium z", "root_premium_z"),
        ("baseline n", "baseline_n"),
        ("status", "status"),
    ),
    ev.FLOW_STRUCTURES: (
        ("label", "label"),
        ("variant", "variant"),
        ("confidence", "confidence"),
        ("runner-up", "runner_up"),
        ("its score", "runner_up_confidence"),
        ("direction", "direction"),
        ("legs", "description"),
        ("size", "total_size"),
        ("premium", "premium"),
        ("net", "net_premium"),
    ),
    ev.OPTIONS_ENRICHED: (
        ("price", "price"),
        ("size", "size"),
        ("premium", "premium"),
        ("exchange", "exchange"),
        ("bid", "bid"),
        ("ask", "ask"),
        ("bid size", "bid_size"),
        ("ask size", "ask_size"),
        ("quote age ns", "quote_age_ns"),
        ("quote", "quote_state"),
        ("placement", "placement"),
        ("side", "side"),
        ("side rule", "side_rule"),
        ("signal", "signal_reason"),
        ("conditions", "conditions"),
    ),
    ev.DARK_INFERRED: (
        ("pattern", "pattern"),
        ("direction", "direction"),
        ("confidence", "confidence"),
        ("shares", "total_size"),
        ("notional", "notional"),
        ("price", "price"),
    ),
}
TITLE_WORD = {
    ev.ALERTS: "ALERT",
    ev.CLASSIFIER_HITS: "CLASSIFIER HIT",
    ev.FLOW_PACKETS: "PACKET",
    ev.FLOW_STRUCTURES: "STRUCTURE",
    ev.OPTIONS_ENRICHED: "PRINT",
    ev.OPTIONS_PRINTS: "RAW PRINT",
    ev.OPTIONS_NBBO: "NBBO",
    ev.EQUITIES_PRINTS: "EQUITY PRINT",
    ev.EQUITIES_JOINS: "EQUITY PRINT + QUOTE",
    ev.DARK_INFERRED: "DARK INFERENCE",
}


def _value(field: str, value: Any) -> str:
    if value is None:
        return "—"
    if field in ("premium", "net_premium", "notional"):
        return compact_money(float(value))
    if field == "span_ns":
        return f"{value / ev.NS_PER_MS:.0f}"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.2f}"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "—"
    return str(value)


def subject_line(stream: str, row: Mapping[str, Any]) -> str:
    """What the event is about: ``NVDA 28Nov 137C`` or ``SPY vertical``."""
    root = row.get("root") or row.get("symbol") or ""
    if row.get("expiry") is not None and row.get("strike") is not None:
        return f"{root} {row['expiry']:%d%b%y} {row['strike']:g}{row.get('right') or ''}"
    symbol = row.get("symbol")
    if stream in (ev.ALERTS, ev.CLASSIFIER_HITS) and symbol:
        from islandflow_tui.engine.osi import parse_osi

        try:
            c = parse_osi(symbol)
            return f"{c.root} {c.expiry:%d%b%y} {c.strike:g}{c.right}"
        except ValueError:
            return str(symbol)
    return str(root)


def summary_text(stream: str, row: Mapping[str, Any]) -> Text:
    """``label value`` pairs of the event's key fields, wrapped by the widget."""
    text = Text()
    explanation = row.get("explanation")
    if explanation:
        text.append(str(explanation) + "\n", "bold")
    for i, (label, field) in enumerate(SUMMARY_FIELDS.get(stream, ())):
        if field not in row:
            continue
        if i:
            text.append("  ")
        text.append(label + " ", "dim")
        text.append(_value(field, row[field]))
    if stream not in SUMMARY_FIELDS:
        from islandflow_tui.widgets.flow_view import summarize

        text.append(summarize(stream, row))
    return text


@dataclass
class Loaded(Message):
    """The worker's answer: the event (None: not found) and its evidence rows."""

    event_id: int
    row: dict[str, Any] | None
    evidence: dict[str, pl.DataFrame]
    error: str = ""


class EvidenceScreen(ReplayControls, Screen[None], inherit_bindings=False):
    """One event: title, summary, rule trace and evidence table (enter drills down)."""

    TITLE = "Evidence"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="evidence.back", tooltip="Back one level"),
        Binding(
            "tab",
            "app.focus_next",
            "Next table",
            show=False,
            id="evidence.focus_next",
            tooltip="Move between the evidence and trace tables",
        ),
        Binding(
            "shift+tab",
            "app.focus_previous",
            "Previous table",
            show=False,
            id="evidence.focus_previous",
            tooltip="Move between the evidence and trace tables",
        ),
        *REPLAY_BINDINGS,
    ]

    def __init__(self, event_id: int) -> None:
        super().__init__()
        self.event_id = int(event_id)
        self.stream, self.seq = ev.split_id(self.event_id)
        self.row: dict[str, Any] | None = None
        self.evidence: dict[str, pl.DataFrame] = {}
        self.state = "loading"  # loading, ready, not_found, error
        self.evidence_view: CursorView | None = None
        self.trace_view: CursorView | None = None
        self._status: StatusBar | None = None

    @property
    def ifapp(self) -> IslandflowApp:
        return cast("IslandflowApp", self.app)

    def compose(self) -> ComposeResult:
        self._status = StatusBar(id="status-bar")
        self._scrub_bar = ScrubBar(id="scrub-bar")
        self._scrub_bar.display = False
        yield Static(self._title_text(), id="evidence-title")
        yield Static(f"loading {ev.format_id(self.event_id)}…", id="evidence-summary")
        yield Container(id="evidence-tables")
        yield self._scrub_bar
        yield self._status
        yield Footer()

    def on_mount(self) -> None:
        self.repaint(self.ifapp.last_stats)
        self._load()

    def _title_text(self) -> Text:
        word = TITLE_WORD.get(self.stream, self.stream)
        text = Text(no_wrap=True, overflow="ellipsis")
        try:
            depth = sum(isinstance(s, EvidenceScreen) for s in self.app.screen_stack)
        except Exception:  # not on a stack yet
            depth = 0
        text.append(f"{word} {ev.format_id(self.event_id)}", "bold")
        if self.row is not None:
            text.append("  " + subject_line(self.stream, self.row))
            ts = self.row.get("ts")
            if ts is not None:
                from islandflow_tui.widgets.scrub_bar import et_time

                text.append(f"  {et_time(int(ts), ms=True)} ET", "dim")
        elif self.state == "not_found":
            text.append("  " + NOT_FOUND, "italic")
        if depth > 1:
            text.append(f"  (level {depth} · escape goes back)", "dim")
        return text

    # -- loading (thread worker) -------------------------------------------------
    @work(thread=True, exclusive=True, group="evidence", exit_on_error=False)
    def _load(self) -> None:
        app = self.ifapp
        try:
            row = app.find_event(self.event_id)
            if row is None:
                found = app.engine.lookup([self.event_id])
                frame = found.get(self.stream)
                if frame is not None:
                    frame = frame.filter(pl.col("id") == self.event_id)
                    row = frame.row(0, named=True) if frame.height else None
            evidence: dict[str, pl.DataFrame] = {}
            ids = evidence_ids(self.stream, row)
            if ids:
                evidence = app.engine.lookup(ids)
            self.post_message(Loaded(self.event_id, row, evidence))
        except Exception as exc:  # shown on the screen, never raised into the app
            self.post_message(Loaded(self.event_id, None, {}, f"{type(exc).__name__}: {exc}"))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        message.stop()
        self.row = message.row
        self.evidence = message.evidence
        summary = self.query_one("#evidence-summary", Static)
        if message.error:
            self.state = "error"
            summary.update(Text(f"lookup failed: {message.error}", "bold red"))
        elif message.row is None:
            self.state = "not_found"
            summary.update(
                Text(
                    f"{ev.format_id(self.event_id)}: {NOT_FOUND}: it left the engine's "
                    "recent-event index and this run's session log does not hold it "
                    "(--no-record, or retention removed it)",
                    "italic",
                )
            )
        else:
            self.state = "ready"
            summary.update(summary_text(self.stream, message.row))
            self._mount_tables(message.row)
        self.query_one("#evidence-title", Static).update(self._title_text())

    def _mount_tables(self, row: Mapping[str, Any]) -> None:
        box = self.query_one("#evidence-tables", Container)
        ids = evidence_ids(self.stream, row)
        widgets = []
        if ids:
            frame, columns, formatter = evidence_table(ids, self.evidence)
            self.evidence_view = CursorView(
                static_model(frame), columns, formatter, live=False, id="evidence-children"
            )
            widgets.append(self.evidence_view)
        trace = row.get("trace")
        if trace:
            self.trace_view = CursorView(
                static_model(trace_frame(trace), key="n"),
                TRACE_COLUMNS,
                format_trace_rows,
                live=False,
                id="evidence-trace",
            )
            widgets.append(self.trace_view)
        if not widgets:
            widgets.append(Static("no evidence and no rule trace: a raw event", id="evidence-none"))
        box.mount_all(widgets)
        for widget in widgets:
            if isinstance(widget, CursorView):
                widget.sync()
        if self.evidence_view is not None:
            self.evidence_view.focus()

    # -- painting ----------------------------------------------------------------
    def repaint(self, stats: EngineStats | None) -> None:
        self.update_replay(stats)
        if stats is not None and self._status is not None:
            self._status.show(stats, paused=False, notes=self.ifapp.status_notes(stats))

    # -- actions -----------------------------------------------------------------
    @on(CursorView.Selected)
    def _selected(self, event: CursorView.Selected) -> None:
        event.stop()
        if event.view is self.evidence_view:
            self.ifapp.open_evidence(event.row_id)

    def action_back(self) -> None:
        self.app.pop_screen()


def evidence_ids(stream: str, row: Mapping[str, Any] | None) -> list[int]:
    """The ids an event was built from (a hit's own evidence is its source)."""
    if row is None:
        return []
    ids = list(row.get("evidence") or [])
    return [int(i) for i in ids if i is not None]


def evidence_table(
    ids: Sequence[int], found: Mapping[str, pl.DataFrame]
) -> tuple[pl.DataFrame, tuple[Column, ...], RowFormatter]:
    """The evidence rows as one table: a stream's own columns when every id is of one
    stream with a table (and all were found), else the generic (id, time, what) list."""
    streams = {ev.split_id(i)[0] for i in ids}
    if len(streams) == 1:
        stream = next(iter(streams))
        frame = found.get(stream)
        if stream in TABLES and frame is not None and frame.height == len(set(ids)):
            if stream == ev.EQUITIES_PRINTS:
                frame = with_quotes(frame, found.get(ev.EQUITIES_JOINS))
            order = pl.DataFrame({"id": list(dict.fromkeys(int(i) for i in ids))})
            frame = order.join(frame, on="id", how="left")
            columns, formatter = TABLES[stream]
            return frame, columns, formatter
    return event_frame(found, ids), EVENT_COLUMNS, format_event_rows


def with_quotes(prints: pl.DataFrame, joins: pl.DataFrame | None) -> pl.DataFrame:
    """Equity prints with the quote in force from their ``equities.joins`` rows (null
    columns when the join stream has none: the screen then says so)."""
    cols = ["bid", "ask", "placement", "price_improvement", "retail_side"]
    if joins is None or joins.height == 0:
        return prints.with_columns(
            pl.lit(None, pl.Float64).alias("bid"),
            pl.lit(None, pl.Float64).alias("ask"),
            pl.lit(None, pl.String).alias("placement"),
            pl.lit(None, pl.Float64).alias("price_improvement"),
            pl.lit(None, pl.String).alias("retail_side"),
        )
    quotes = joins.select(pl.col("print_id").alias("id"), *cols).unique("id", keep="first")
    return prints.join(quotes, on="id", how="left")
