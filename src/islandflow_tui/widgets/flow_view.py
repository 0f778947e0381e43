"""Flow, Alerts and Evidence tables: sortable hot-window models and a cursor view.

Same repaint model as the tape (widgets/tape_view.py): an app-owned polars model per
stream, drained once per tick, and a Line-API view that formats only the rows on
screen.  Added here:

* ``SortedModel``: a ``TapeModel`` whose display can be sorted by a column
  (descending, nulls last; ties keep newest first).  Sorting is one polars sort of the
  filtered hot window (a few thousand rows) when the window changes, not per row.
* ``CursorView``: a ``TapeView`` with a row cursor.  ``enter`` posts
  ``CursorView.Selected`` with the row's id (the screen opens its evidence).  Moving
  the cursor off the newest row pauses the model, as scrolling does on the tape, so
  rows do not slide under the cursor; ``home`` returns to the live edge.
* ``FlowFilter``: symbols, kinds, direction, minimum premium and a preset, as polars
  expressions over ``flow.packets`` and ``flow.structures``.
* Column sets and formatters for packets, structures, alerts, hits, member prints
  and rule traces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Final

import polars as pl
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.alerts import WORDS as KIND_WORDS
from islandflow_tui.widgets.tape_view import (
    PLACEMENT_CLASS,
    PLACEMENT_TEXT,
    Column,
    FormattedRow,
    RowFormatter,
    TapeModel,
    TapeView,
    compact_money,
    compact_number,
    equity_price_text,
    et_time_expr,
    option_size_text,
)

# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


class SortedModel(TapeModel):
    """A ``TapeModel`` whose display is sorted by ``sort_by`` (None: newest first)."""

    def __init__(self, schema: Mapping[str, pl.DataType], cap: int, key: str = "id") -> None:
        super().__init__(schema, cap, key)
        self.sort_by: str | None = None
        self._sorted_for: tuple[int, str | None] | None = None
        self._sorted = self.view

    @property
    def display(self) -> pl.DataFrame:
        base = super().display
        if self.sort_by is None or base.height == 0:
            return base
        # ``version`` moves whenever the unsorted display does (see TapeModel)
        key = (self.version, self.sort_by)
        if key != self._sorted_for:
            self._sorted = base.sort(self.sort_by, descending=True, nulls_last=True)
            self._sorted_for = key
        return self._sorted

    def set_sort(self, column: str | None) -> None:
        if column != self.sort_by:
            self.sort_by = column
            self.version += 1

    def find(self, event_id: int) -> dict[str, object] | None:
        """The row with this id if it is still in the hot window."""
        hit = self.rows.filter(pl.col(self.key) == event_id)
        return hit.row(0, named=True) if hit.height else None


def static_model(frame: pl.DataFrame, key: str = "id") -> SortedModel:
    """A model over a fixed frame (an evidence table), rows in the frame's order."""
    model = SortedModel(dict(frame.schema), max(1, frame.height), key)
    model.extend(frame.reverse())  # extend shows the last row of a batch first
    return model


# ---------------------------------------------------------------------------
# Filter
# ---------------------------------------------------------------------------
FLOW_PRESETS: Final = ("notable", "aggressive", "all")
DIRECTION_CYCLE: Final = ("", "bullish", "bearish", "neutral")
SORTS: Final = ("time", "premium", "size", "z")
#: sort mode -> column, per stream (structures have no z-score: z sorts them by premium)
SORT_COLUMNS: Final[dict[str, dict[str, str | None]]] = {
    ev.FLOW_PACKETS: {"time": None, "premium": "premium", "size": "total_size", "z": "premium_z"},
    ev.FLOW_STRUCTURES: {"time": None, "premium": "premium", "size": "total_size", "z": "premium"},
}
NOTABLE_Z: Final = 2.0
#: the classifiers' gate (seed): enough NBBO coverage and one side dominating
AGGRESSIVE_COVERAGE: Final = 0.5
AGGRESSIVE_RATIO: Final = 0.55


@dataclass(frozen=True, slots=True)
class FlowFilter:
    """What the Flow screen shows.  Presets (README "Flow screen"):

    * ``notable``: packets of a named kind (not plain) or with premium z >= 2, and every
      structure;
    * ``aggressive``: notable packets that also pass the classifiers' gate (NBBO
      coverage >= 0.5, aggressor ratio >= 0.55, side buy or sell), and structures whose
      every leg side is known;
    * ``all``: everything.
    """

    symbols: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()  # packet kinds/tags or structure labels
    direction: str = ""  # "" = any
    min_premium: float = 0.0
    preset: str = "notable"

    def packets_expr(self) -> pl.Expr:
        expr = pl.lit(True)
        if self.preset in ("notable", "aggressive"):
            expr = (pl.col("kind") != "plain") | (pl.col("premium_z").fill_null(0) >= NOTABLE_Z)
        if self.preset == "aggressive":
            expr = (
                expr
                & (pl.col("nbbo_coverage") >= AGGRESSIVE_COVERAGE)
                & (pl.col("aggressor_ratio") >= AGGRESSIVE_RATIO)
                & pl.col("side").is_in(["buy", "sell"])
            )
        if self.symbols:
            expr = expr & pl.col("root").is_in(sorted(self.symbols))
        if self.kinds:
            kinds = sorted(self.kinds)
            expr = expr & (
                pl.col("kind").is_in(kinds)
                | pl.col("tags").list.eval(pl.element().is_in(kinds)).list.any()
            )
        if self.direction:
            expr = expr & (pl.col("direction") == self.direction)
        if self.min_premium > 0:
            expr = expr & (pl.col("premium") >= self.min_premium)
        return expr

    def structures_expr(self) -> pl.Expr:
        expr = pl.lit(True)
        if self.preset == "aggressive":
            expr = ~pl.col("leg_sides").list.eval(pl.element() == "unknown").list.any()
        if self.symbols:
            expr = expr & pl.col("root").is_in(sorted(self.symbols))
        if self.kinds:
            expr = expr & pl.col("label").is_in(sorted(self.kinds))
        if self.direction:
            expr = expr & (pl.col("direction") == self.direction)
        if self.min_premium > 0:
            expr = expr & (pl.col("premium") >= self.min_premium)
        return expr

    def next_preset(self) -> FlowFilter:
        i = FLOW_PRESETS.index(self.preset)
        return replace(self, preset=FLOW_PRESETS[(i + 1) % len(FLOW_PRESETS)])

    def next_direction(self) -> FlowFilter:
        i = DIRECTION_CYCLE.index(self.direction)
        return replace(self, direction=DIRECTION_CYCLE[(i + 1) % len(DIRECTION_CYCLE)])


def parse_kinds(text: str) -> frozenset[str]:
    """``sweep, block`` -> packet kinds / structure labels; unknown names are an error."""
    known = set(ev.PACKET_KINDS) | set(ev.STRUCTURE_LABELS)
    names = {t.strip().lower().replace(" ", "_").replace("-", "_") for t in text.split(",")}
    names.discard("")
    bad = sorted(names - known)
    if bad:
        raise ValueError(f"unknown kind {', '.join(bad)}; known: {', '.join(sorted(known))}")
    return frozenset(names)


# ---------------------------------------------------------------------------
# View
# ---------------------------------------------------------------------------
class CursorView(TapeView, inherit_bindings=False):
    """A tape view with a row cursor; ``enter`` posts ``Selected`` with the row id."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="rows.up", tooltip="Previous row"),
        Binding(
            "down,j",
            "cursor(1)",
            "Down",
            show=False,
            id="rows.down",
            tooltip="Next row (leaving the newest row pauses the list)",
        ),
        Binding(
            "pageup",
            "cursor_page(-1)",
            "Page up",
            show=False,
            id="rows.page_up",
            tooltip="Up a page",
        ),
        Binding(
            "pagedown",
            "cursor_page(1)",
            "Page down",
            show=False,
            id="rows.page_down",
            tooltip="Down a page (pauses the list)",
        ),
        Binding(
            "home",
            "cursor_home",
            "Top",
            show=False,
            id="rows.top",
            tooltip="Back to the first row (and the live edge)",
        ),
        Binding(
            "end,G",
            "cursor_end",
            "Bottom",
            show=False,
            id="rows.bottom",
            tooltip="To the last row (pauses the list)",
        ),
        Binding(
            "enter",
            "select",
            "Evidence",
            id="rows.evidence",
            tooltip="Open the evidence of the selected row",
        ),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *TapeView.COMPONENT_CLASSES,
        "tape--cursor",
        "flow--high",
        "flow--medium",
        "flow--low",
        "flow--bullish",
        "flow--bearish",
        "flow--neutral",
        "flow--kind",
        "flow--pass",
        "flow--fail",
        "flow--correction",
    }

    @dataclass
    class Selected(Message):
        view: CursorView
        row_id: int

    def __init__(
        self,
        model: TapeModel,
        columns: Sequence[Column],
        formatter: RowFormatter,
        *,
        live: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(model, columns, formatter, name=name, id=id, classes=classes)
        self.live = live
        self.cursor = 0

    @property
    def badge(self) -> str:
        return super().badge if self.live else ""

    @property
    def selected_id(self) -> int | None:
        frame = self._frame
        if frame.height == 0:
            return None
        return int(frame[self.model.key][min(self.cursor, frame.height - 1)])

    def sync(self) -> bool:
        changed = super().sync()
        if changed:
            self.cursor = max(0, min(self.cursor, self._frame.height - 1))
        return changed

    def _rows_visible(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def move_cursor(self, index: int) -> None:
        height = self._frame.height
        if height == 0:
            self.cursor = 0
            return
        index = max(0, min(height - 1, index))
        if index > 0 and self.live and self.model.following:
            self.model.pause()
            self.sync()
            self.post_message(self.FollowChanged(self, following=False))
        self.cursor = index
        top = round(self.scroll_offset.y)
        rows = self._rows_visible()
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif index >= top + rows:
            self.scroll_to(y=index - rows + 1, animate=False)
        self.refresh()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        if self.live:
            super().watch_scroll_y(old_value, new_value)
        else:  # a static table has no live edge to leave
            ScrollView.watch_scroll_y(self, old_value, new_value)

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor + int(delta))

    def action_cursor_page(self, direction: int) -> None:
        self.move_cursor(self.cursor + int(direction) * self._rows_visible())

    def action_cursor_home(self) -> None:
        self.cursor = 0
        if self.live:
            self.resume()
        else:
            self.scroll_to(y=0, animate=False)
        self.refresh()

    def action_cursor_end(self) -> None:
        self.move_cursor(self._frame.height - 1)

    def action_select(self) -> None:
        row_id = self.selected_id
        if row_id is not None:
            self.post_message(self.Selected(self, row_id))

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        on_cursor = round(self.scroll_offset.y) + y - 1 == self.cursor
        if y > 0 and self.has_focus and self._frame.height and on_cursor:
            cursor = self._style("tape--cursor")
            strip = Strip([Segment(t, (s or Style()) + cursor, c) for t, s, c in strip])
        return strip


# ---------------------------------------------------------------------------
# Columns and formatters
# ---------------------------------------------------------------------------
KIND_TEXT: Final = {
    "golden_sweep": "GOLDEN",
    "sweep": "SWEEP",
    "block": "BLOCK",
    "split": "SPLIT",
    "repeat": "REPEAT",
    "complex": "CMPLX",
    "plain": "·",
}
DIR_TEXT: Final = {"bullish": "bull", "bearish": "bear", "neutral": "neut"}
DIR_CLASS: Final = {"bullish": "flow--bullish", "bearish": "flow--bearish"}
SIDE_TEXT: Final = {"buy": "BUY", "sell": "SELL", "mixed": "MIX", "unknown": "?"}
SEVERITY_CLASS: Final = {"high": "flow--high", "medium": "flow--medium", "low": "flow--low"}
STATUS_TEXT: Final = {"new": "", "correction": "COR", "retracted": "RETR"}


def z_text(value: float | None) -> str:
    """A z-score in at most six characters (a thin baseline gives huge ones)."""
    if value is None:
        return ""
    if abs(value) < 100:
        return f"{value:+.1f}"
    if abs(value) < 100_000:
        return f"{value:+.0f}"
    return "+huge" if value > 0 else "-huge"


def _contract(expiry: object, strike: float | None, right: str | None) -> str:
    if expiry is None or strike is None:
        return ""
    return f"{expiry:%d%b} {strike:g}{right or ''}"  # type: ignore[str-format]


PACKET_COLUMNS: Final = (
    Column("time", "PACKETS", 12),
    Column("root", "SYM", 5),
    Column("exp", "EXPIRY", 7),
    Column("strike", "STRIKE", 7, ">"),
    Column("right", "", 1),
    Column("kind", "KIND", 7),
    Column("side", "SIDE", 4),
    Column("dir", "DIR", 4, drop=10),
    Column("count", "N", 3, ">", drop=7),
    Column("size", "SIZE", 6, ">"),
    Column("premium", "PREM", 7, ">"),
    Column("vwap", "VWAP", 7, ">", drop=13),
    Column("nbbo", "vs NBBO", 8, drop=8),
    Column("venues", "VEN", 3, ">", drop=12),
    Column("iso", "ISO", 3, ">", drop=11),
    Column("pz", "PREM z", 6, ">", drop=6),
    Column("sz", "SIZE z", 6, ">", drop=14),
    Column("dte", "DTE", 4, ">", drop=9),
    Column("oi", "OI", 6, ">", drop=15),
    Column("status", "", 4, drop=5),
)


def format_packet_rows(frame: pl.DataFrame) -> list[FormattedRow]:
    """Cells of visible ``flow.packets`` rows."""
    prepared = frame.select(
        "id",
        et_time_expr("ts").alias("time"),
        "root",
        pl.col("expiry").dt.strftime("%d%b%y").alias("exp"),
        "strike",
        "right",
        "kind",
        pl.col("tags").list.len().alias("ntags"),
        "side",
        "direction",
        "count",
        "total_size",
        "premium",
        "vwap",
        "start_placement",
        "end_placement",
        "exchanges",
        "iso_count",
        "premium_z",
        "size_z",
        "dte",
        "open_interest",
        "status",
    )
    out: list[FormattedRow] = []
    for r in prepared.iter_rows(named=True):
        kind = KIND_TEXT.get(r["kind"], r["kind"]) + ("+" if r["ntags"] > 1 else "")
        dir_class = DIR_CLASS.get(r["direction"], "")
        start = PLACEMENT_TEXT.get(r["start_placement"], r["start_placement"])
        end = PLACEMENT_TEXT.get(r["end_placement"], r["end_placement"])
        nbbo = start if start == end else f"{start}→{end}"
        oi = r["open_interest"]
        out.append(
            (
                r["id"],
                {
                    "time": (r["time"], "tape--time"),
                    "root": (r["root"], "tape--symbol"),
                    "exp": (r["exp"], "tape--muted"),
                    "strike": (f"{r['strike']:g}", ""),
                    "right": (r["right"], "tape--call" if r["right"] == "C" else "tape--put"),
                    "kind": (kind, "flow--kind" if r["kind"] != "plain" else "tape--muted"),
                    "side": (SIDE_TEXT.get(r["side"], r["side"]), dir_class),
                    "dir": (DIR_TEXT.get(r["direction"], ""), DIR_CLASS.get(r["direction"], "")),
                    "count": (str(r["count"]), ""),
                    "size": (option_size_text(r["total_size"]), ""),
                    "premium": (
                        compact_money(r["premium"]),
                        "tape--premium-big" if r["premium"] >= 100_000 else "tape--premium",
                    ),
                    "vwap": (f"{r['vwap']:.2f}", ""),
                    "nbbo": (nbbo, PLACEMENT_CLASS.get(r["end_placement"], "tape--stale")),
                    "venues": (str(r["exchanges"]), "tape--muted"),
                    "iso": (str(r["iso_count"]) if r["iso_count"] else "", "tape--iso"),
                    "pz": (z_text(r["premium_z"]), ""),
                    "sz": (z_text(r["size_z"]), ""),
                    "dte": (str(r["dte"]), "tape--muted"),
                    "oi": ("" if oi is None else compact_number(oi), "tape--muted"),
                    "status": (STATUS_TEXT.get(r["status"], r["status"]), "flow--correction"),
                },
            )
        )
    return out


STRUCTURE_COLUMNS: Final = (
    Column("time", "STRUCTURES", 12),
    Column("root", "SYM", 5),
    Column("label", "LABEL", 13),
    Column("conf", "CONF", 4, ">", drop=4),
    Column("dir", "DIR", 4, drop=3),
    Column("legs", "LEGS", 4, ">", drop=5),
    Column("size", "SIZE", 6, ">"),
    Column("premium", "PREM", 7, ">"),
    Column("net", "NET", 7, ">", drop=2),
    Column("desc", "LEGS (size strike right expiry)", 10, flex=True, drop=1),
)


def format_structure_rows(frame: pl.DataFrame) -> list[FormattedRow]:
    """Cells of visible ``flow.structures`` rows."""
    out: list[FormattedRow] = []
    prepared = frame.select(
        "id",
        et_time_expr("ts").alias("time"),
        "root",
        "label",
        "variant",
        "confidence",
        "direction",
        "legs",
        "total_size",
        "premium",
        "net_premium",
        "description",
    )
    for r in prepared.iter_rows(named=True):
        label = r["label"].replace("_", " ")
        if r["variant"]:
            label = f"{label} {r['variant'].replace('_', ' ')}"
        net = r["net_premium"]
        out.append(
            (
                r["id"],
                {
                    "time": (r["time"], "tape--time"),
                    "root": (r["root"], "tape--symbol"),
                    "label": (label, "flow--kind"),
                    "conf": (f"{r['confidence']:.2f}", ""),
                    "dir": (DIR_TEXT.get(r["direction"], ""), DIR_CLASS.get(r["direction"], "")),
                    "legs": (str(r["legs"]), ""),
                    "size": (option_size_text(r["total_size"]), ""),
                    "premium": (compact_money(r["premium"]), "tape--premium"),
                    "net": ("" if net is None else compact_money(net), "tape--muted"),
                    "desc": (r["description"], "tape--muted"),
                },
            )
        )
    return out


ALERT_COLUMNS: Final = (
    Column("time", "ALERTS", 12),
    Column("sev", "SEV", 4),
    Column("score", "SCR", 3, ">"),
    Column("root", "SYM", 5),
    Column("contract", "CONTRACT", 11, drop=5),
    Column("kind", "KIND", 14, drop=9),
    Column("dir", "DIR", 4, drop=7),
    Column("premium", "PREM", 7, ">", drop=4),
    Column("hits", "HIT", 3, ">", drop=8),
    Column("status", "", 4, drop=6),
    Column("explanation", "EXPLANATION", 32, flex=True),
)

SEVERITY_TEXT: Final = {"high": "HIGH", "medium": "MED", "low": "low"}


def format_alert_rows(frame: pl.DataFrame) -> list[FormattedRow]:
    """Cells of visible ``alerts`` rows: severity colours the severity and the score."""
    prepared = frame.select(
        "id",
        et_time_expr("ts").alias("time"),
        "severity",
        "score",
        "root",
        "symbol",
        "kind",
        "direction",
        "premium",
        "hits",
        "status",
        "explanation",
    )
    out: list[FormattedRow] = []
    for r in prepared.iter_rows(named=True):
        sev = SEVERITY_CLASS.get(r["severity"], "")
        contract = ""
        if r["symbol"]:
            from islandflow_tui.engine.osi import parse_osi

            try:
                parsed = parse_osi(r["symbol"])
                contract = _contract(parsed.expiry, parsed.strike, parsed.right)
            except ValueError:
                contract = r["symbol"]
        out.append(
            (
                r["id"],
                {
                    "time": (r["time"], "tape--time"),
                    "sev": (SEVERITY_TEXT.get(r["severity"], r["severity"]), sev),
                    "score": (f"{r['score']:.0f}", sev),
                    "root": (r["root"], "tape--symbol"),
                    "contract": (contract, ""),
                    "kind": (KIND_WORDS.get(r["kind"], r["kind"].replace("_", " ")), "flow--kind"),
                    "dir": (DIR_TEXT.get(r["direction"], ""), DIR_CLASS.get(r["direction"], "")),
                    "premium": (compact_money(r["premium"]), "tape--premium"),
                    "hits": (str(r["hits"]), ""),
                    "status": (STATUS_TEXT.get(r["status"], r["status"]), "flow--correction"),
                    "explanation": (r["explanation"], ""),
                },
            )
        )
    return out


HIT_COLUMNS: Final = (
    Column("time", "CLASSIFIER HITS", 15),
    Column("id", "ID", 10, drop=3),
    Column("classifier", "CLASSIFIER", 24),
    Column("variant", "VARIANT", 9, drop=2),
    Column("dir", "DIR", 4),
    Column("conf", "CONF", 4, ">"),
    Column("premium", "PREM", 7, ">"),
    Column("size", "SIZE", 6, ">", drop=1),
    Column("source", "SOURCE", 10, flex=True, drop=4),
)


def format_hit_rows(frame: pl.DataFrame) -> list[FormattedRow]:
    out: list[FormattedRow] = []
    prepared = frame.select(
        "id",
        et_time_expr("ts").alias("time"),
        "classifier",
        "variant",
        "direction",
        "confidence",
        "premium",
        "size",
        "source",
        "source_id",
    )
    for r in prepared.iter_rows(named=True):
        out.append(
            (
                r["id"],
                {
                    "time": (r["time"], "tape--time"),
                    "id": (ev.format_id(r["id"]), "tape--muted"),
                    "classifier": (r["classifier"].replace("_", " "), "flow--kind"),
                    "variant": ((r["variant"] or "").replace("_", " "), "tape--muted"),
                    "dir": (DIR_TEXT.get(r["direction"], ""), DIR_CLASS.get(r["direction"], "")),
                    "conf": (f"{r['confidence']:.2f}", ""),
                    "premium": (compact_money(r["premium"]), "tape--premium"),
                    "size": (option_size_text(r["size"]), ""),
                    "source": (f"{r['source']} {ev.format_id(r['source_id'])}", "tape--muted"),
                },
            )
        )
    return out


PRINT_COLUMNS: Final = (
    Column("time", "MEMBER PRINTS", 13),
    Column("exch", "EXCH", 4),
    Column("price", "PRICE", 7, ">"),
    Column("size", "SIZE", 6, ">"),
    Column("premium", "PREM", 7, ">", drop=5),
    Column("quote", "NBBO BID×ASK", 13, ">"),
    Column("sizes", "SIZES", 9, ">", drop=4),
    Column("age", "AGE ms", 6, ">", drop=3),
    Column("placement", "PLACE", 5),
    Column("side", "SIDE", 4),
    Column("rule", "SIDE RULE", 10, drop=2),
    Column("cond", "COND", 4, flex=True, drop=1),
)


def format_print_rows(frame: pl.DataFrame) -> list[FormattedRow]:
    """Member prints (``options.enriched``): the NBBO in force, placement, side and rule."""
    out: list[FormattedRow] = []
    prepared = frame.select(
        "id",
        et_time_expr("ts").alias("time"),
        "exchange",
        "price",
        "size",
        "premium",
        "bid",
        "ask",
        "bid_size",
        "ask_size",
        "quote_age_ns",
        "placement",
        "side",
        "side_rule",
        "flags",
    )
    for r in prepared.iter_rows(named=True):
        cls = PLACEMENT_CLASS.get(r["placement"], "tape--stale")
        bid, ask = r["bid"], r["ask"]
        quote = f"{bid:.2f}×{ask:.2f}" if bid is not None and ask is not None else "no quote"
        sizes = (
            f"{r['bid_size']}×{r['ask_size']}"
            if r["bid_size"] is not None and r["ask_size"] is not None
            else ""
        )
        age = r["quote_age_ns"]
        out.append(
            (
                r["id"],
                {
                    "time": (r["time"], "tape--time"),
                    "exch": (r["exchange"], "tape--muted"),
                    "price": (f"{r['price']:.2f}", cls),
                    "size": (option_size_text(r["size"]), ""),
                    "premium": (compact_money(r["premium"]), "tape--premium"),
                    "quote": (quote, "tape--muted"),
                    "sizes": (sizes, "tape--muted"),
                    "age": ("" if age is None else f"{age / ev.NS_PER_MS:.0f}", "tape--muted"),
                    "placement": (PLACEMENT_TEXT.get(r["placement"], r["placement"]), cls),
                    "side": (SIDE_TEXT.get(r["side"], r["side"]), ""),
                    "rule": (r["side_rule"], "tape--muted"),
                    "cond": (ev.cond_text(r["flags"] or 0), "tape--iso"),
                },
            )
        )
    return out


EQUITY_PRINT_COLUMNS: Final = (
    Column("time", "EQUITY PRINTS", 13),
    Column("symbol", "SYM", 5),
    Column("price", "PRICE", 9, ">"),
    Column("size", "SIZE", 9, ">"),
    Column("venue", "VENUE", 5),
    Column("quote", "QUOTE BID×ASK", 17, ">"),
    Column("placement", "PLACE", 9),
    Column("improve", "IMPROVE", 7, ">", drop=2),
    Column("retail", "RETAIL", 6, flex=True, drop=1),
)


def format_equity_print_rows(frame: pl.DataFrame) -> list[FormattedRow]:
    """Equity prints with the quote in force (``equities.joins`` columns, nulls if none)."""
    out: list[FormattedRow] = []
    prepared = frame.select(
        "id",
        et_time_expr("ts").alias("time"),
        "symbol",
        "price",
        "size",
        "venue",
        "off_exchange",
        "bid",
        "ask",
        "placement",
        "price_improvement",
        "retail_side",
    )
    for r in prepared.iter_rows(named=True):
        bid, ask = r["bid"], r["ask"]
        if bid is not None and ask is not None:
            quote = f"{equity_price_text(bid)}×{equity_price_text(ask)}"
        else:
            quote = "no quote joined"
        imp = r["price_improvement"]
        out.append(
            (
                r["id"],
                {
                    "time": (r["time"], "tape--time"),
                    "symbol": (r["symbol"], "tape--offex" if r["off_exchange"] else "tape--symbol"),
                    "price": (equity_price_text(r["price"]), ""),
                    "size": (f"{r['size']:,}", ""),
                    "venue": (
                        ("◆ " if r["off_exchange"] else "  ") + r["venue"],
                        "tape--offex-mark" if r["off_exchange"] else "tape--muted",
                    ),
                    "quote": (quote, "tape--muted"),
                    "placement": (r["placement"] or "", ""),
                    "improve": ("" if imp is None else f"{imp:.4f}", "tape--muted"),
                    "retail": (r["retail_side"] or "", "tape--muted"),
                },
            )
        )
    return out


EVENT_COLUMNS: Final = (
    Column("time", "EVIDENCE", 13),
    Column("id", "ID", 12),
    Column("summary", "WHAT", 20, flex=True),
)


def summarize(stream: str, row: Mapping[str, object]) -> str:
    """One line about any event, for mixed evidence lists."""
    r = row
    if stream == ev.FLOW_PACKETS:
        return (
            f"packet {r['root']} {_contract(r['expiry'], r['strike'], r['right'])} "  # type: ignore[arg-type]
            f"{r['kind']} {r['count']} prints {r['total_size']} @ {r['vwap']:.2f} "
            f"{compact_money(r['premium'])} {r['side']}"  # type: ignore[arg-type]
        )
    if stream == ev.FLOW_STRUCTURES:
        return f"structure {r['root']} {r['label']} {r['description']}"
    if stream == ev.CLASSIFIER_HITS:
        return (
            f"hit {str(r['classifier']).replace('_', ' ')} {r['direction']} "
            f"conf {r['confidence']:.2f} {compact_money(r['premium'])}"  # type: ignore[arg-type]
        )
    if stream == ev.ALERTS:
        return f"alert {r['severity']} {r['score']:.0f}: {r['explanation']}"
    if stream == ev.OPTIONS_ENRICHED:
        return (
            f"print {r['root']} {_contract(r['expiry'], r['strike'], r['right'])} "  # type: ignore[arg-type]
            f"{r['size']} @ {r['price']:.2f} {r['exchange']} {r['placement']} {r['side']}"
        )
    if stream == ev.OPTIONS_PRINTS:
        return f"raw print {r['symbol']} {r['size']} @ {r['price']:.2f} {r['exchange']}"
    if stream == ev.OPTIONS_NBBO:
        return f"NBBO {r['symbol']} {r['bid']:.2f}×{r['ask']:.2f} ({r['bid_size']}×{r['ask_size']})"
    if stream == ev.EQUITIES_PRINTS:
        return f"equity print {r['symbol']} {r['size']} @ {r['price']} {r['venue']}"
    if stream == ev.EQUITIES_QUOTES:
        return f"equity quote {r['symbol']} {r['bid']}×{r['ask']}"
    if stream == ev.EQUITIES_JOINS:
        return f"join {r['symbol']} {r['price']} {r['placement']}"
    if stream == ev.DARK_INFERRED:
        return f"dark {r['symbol']} {r['pattern']}: {r['explanation']}"
    return stream


def event_frame(found: Mapping[str, pl.DataFrame], ids: Sequence[int]) -> pl.DataFrame:
    """(id, ts, summary) for ids of any streams, in ``ids`` order; absent ids say so."""
    rows: dict[int, tuple[int, str]] = {}
    for stream, frame in found.items():
        for r in frame.iter_rows(named=True):
            rows[int(r["id"])] = (int(r["ts"]), summarize(stream, r))
    out_ids, out_ts, out_sum = [], [], []
    for i in ids:
        ts, text = rows.get(int(i), (None, "not found (not recorded)"))
        out_ids.append(int(i))
        out_ts.append(ts)
        out_sum.append(text)
    return pl.DataFrame(
        {"id": out_ids, "ts": out_ts, "summary": out_sum},
        schema={"id": pl.Int64, "ts": pl.Int64, "summary": pl.String},
    )


def format_event_rows(frame: pl.DataFrame) -> list[FormattedRow]:
    prepared = frame.select("id", et_time_expr("ts").alias("time"), "summary")
    return [
        (
            r["id"],
            {
                "time": (r["time"] or "", "tape--time"),
                "id": (ev.format_id(r["id"]), "tape--muted"),
                "summary": (r["summary"], "" if r["time"] else "tape--stale"),
            },
        )
        for r in prepared.iter_rows(named=True)
    ]


TRACE_COLUMNS: Final = (
    Column("n", "#", 3, ">"),
    Column("condition", "RULE TRACE: CONDITION", 24, flex=True),
    Column("value", "VALUE", 12, ">"),
    Column("threshold", "THRESHOLD", 12, ">"),
    Column("passed", "PASS", 4),
)


def trace_frame(trace: Sequence[Mapping[str, object]] | None) -> pl.DataFrame:
    """The trace list of an event as a table frame (``n`` is the row key)."""
    items = list(trace or [])
    return pl.DataFrame(
        {
            "n": list(range(len(items))),
            "condition": [str(t["condition"]) for t in items],
            "value": [t["value"] for t in items],
            "threshold": [t["threshold"] for t in items],
            "passed": [bool(t["passed"]) for t in items],
        },
        schema={
            "n": pl.Int64,
            "condition": pl.String,
            "value": pl.Float64,
            "threshold": pl.Float64,
            "passed": pl.Boolean,
        },
    )


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    if value == int(value) and abs(value) < 1e12:
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"


def format_trace_rows(frame: pl.DataFrame) -> list[FormattedRow]:
    return [
        (
            r["n"],
            {
                "n": (str(r["n"] + 1), "tape--muted"),
                "condition": (r["condition"], ""),
                "value": (_num(r["value"]), ""),
                "threshold": (_num(r["threshold"]), "tape--muted"),
                "passed": (
                    "yes" if r["passed"] else "no",
                    "flow--pass" if r["passed"] else "flow--fail",
                ),
            },
        )
        for r in frame.iter_rows(named=True)
    ]
