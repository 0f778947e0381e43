"""A live tape: a bounded polars model plus a Line-API scroll view that paints it.

Why not a DataTable: a tape receives thousands of rows a second and must forget
as fast as it learns; DataTable removes rows one at a time (O(n) each).  Here the
model is one polars frame, newest row first, capped at the hot window; a repaint
tick (not an event per print) hands it whatever arrived, and the view formats
only the rows on screen, caching one ``Strip`` per (row id, width).

* ``TapeModel`` knows nothing about Textual: rows, the filter (a polars
  expression), follow/pause and the count of rows that arrived while paused.
* ``TapeView`` is a ``ScrollView`` (as toolong's ``LogLines``): ``render_line``
  slices the visible window out of the model's display frame, calls a
  formatter on just those rows and joins styled cells into strips.  The first
  line is a fixed column header that carries the pane title and the paused badge.
* ``OPTION_COLUMNS`` / ``format_option_rows`` and ``EQUITY_COLUMNS`` /
  ``format_equity_rows`` describe the two tapes of the Tape screen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Final, Literal

import polars as pl
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from islandflow_tui.engine.events import SIGNAL_BIT, SIGNAL_POLICIES, Cond, cond_text

ET_ZONE: Final = "America/New_York"
ARRIVAL: Final = "_arrival"  # model-internal arrival counter: newest rows have the largest
MAX_CHUNKS: Final = 16  # rechunk the hot window when appends have fragmented it this much
SEPARATOR: Final = 1  # blank cells between columns

Cell = tuple[str, str]  # (text, component class that styles it)
FormattedRow = tuple[int, Mapping[str, Cell]]  # (row key, cells by column key)
RowFormatter = Callable[[pl.DataFrame], list[FormattedRow]]


# ---------------------------------------------------------------------------
# Filter
# ---------------------------------------------------------------------------
Rights = Literal["CP", "C", "P"]
RIGHTS_CYCLE: Final[tuple[Rights, ...]] = ("CP", "C", "P")
RIGHTS_LABEL: Final[dict[str, str]] = {"CP": "calls+puts", "C": "calls", "P": "puts"}


@dataclass(frozen=True, slots=True)
class TapeFilter:
    """What the user asked the Tape screen to show; turned into polars expressions.

    Immutable so that a change is a new value the screen can compare and apply to
    both tapes in one step.
    """

    symbols: frozenset[str] = frozenset()  # empty: every symbol
    rights: Rights = "CP"
    min_premium: float = 0.0
    preset: str = "smart-money"

    def options_expr(self) -> pl.Expr:
        """Rows of ``options.enriched`` to show: preset bit, symbols, right, premium."""
        expr = (pl.col("signal_mask") & SIGNAL_BIT[self.preset]) != 0
        if self.symbols:
            expr = expr & pl.col("root").is_in(sorted(self.symbols))
        if self.rights != "CP":
            expr = expr & (pl.col("right") == self.rights)
        if self.min_premium > 0:
            expr = expr & (pl.col("premium") >= self.min_premium)
        return expr

    def equities_expr(self) -> pl.Expr | None:
        """Rows of ``equities.prints`` to show: only the symbol filter applies."""
        if not self.symbols:
            return None
        return pl.col("symbol").is_in(sorted(self.symbols))

    def next_preset(self) -> TapeFilter:
        i = SIGNAL_POLICIES.index(self.preset)
        return replace(self, preset=SIGNAL_POLICIES[(i + 1) % len(SIGNAL_POLICIES)])

    def next_rights(self) -> TapeFilter:
        i = RIGHTS_CYCLE.index(self.rights)
        return replace(self, rights=RIGHTS_CYCLE[(i + 1) % len(RIGHTS_CYCLE)])


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------
class TapeModel:
    """The hot window of one stream, newest first, with a filter and a follow flag.

    ``rows`` holds the newest ``cap`` rows.  ``view`` is ``rows`` through the
    filter, kept incrementally (only new rows are filtered on each tick).  While
    paused, ``display`` is the view frozen at the moment of pausing (re-filtered
    if the filter changes) and ``pending`` counts filtered rows that arrived since;
    the model itself never stops growing, so resuming is instant.  ``version``
    changes whenever ``display`` does, which is how a view knows to repaint.
    """

    def __init__(self, schema: Mapping[str, pl.DataType], cap: int, key: str = "id") -> None:
        if cap < 1:
            raise ValueError("cap must be at least 1")
        self.cap = cap
        self.key = key
        self.columns = list(schema)
        empty = pl.DataFrame(schema={**schema, ARRIVAL: pl.Int64})
        self.rows = empty
        self.view = empty
        self.frozen: pl.DataFrame | None = None
        self._frozen_base: pl.DataFrame | None = None
        self._pause_arrival = 0
        self._expr: pl.Expr | None = None
        self.following = True
        self.pending = 0  # filtered rows that arrived while paused
        self.arrived = 0  # rows ever appended
        self.dropped = 0  # rows the display feed dropped before we saw them
        self.version = 0

    # -- reading ----------------------------------------------------------------
    @property
    def display(self) -> pl.DataFrame:
        """What a view shows: the live filtered rows, or the frozen ones while paused."""
        return self.view if self.frozen is None else self.frozen

    @property
    def expr(self) -> pl.Expr | None:
        return self._expr

    # -- writing ----------------------------------------------------------------
    def extend(self, frame: pl.DataFrame, gap: int = 0) -> None:
        """Append a drained batch (oldest first, as the bus delivers it).

        Vectorised: one reverse, one filter of just the new rows and two
        concat+head; never a Python loop over rows.
        """
        self.dropped += gap
        if frame.height == 0:
            return
        start = self.arrived
        self.arrived += frame.height
        new = (
            frame.select(self.columns)
            .with_columns(pl.int_range(start, self.arrived, dtype=pl.Int64).alias(ARRIVAL))
            .reverse()
        )
        if new.height >= self.cap:
            self.rows = new.head(self.cap)
        else:
            self.rows = _compact(pl.concat([new, self.rows], how="vertical").head(self.cap))
        part = self._apply(new)
        oldest = self._oldest_arrival()
        view = pl.concat([part, self.view], how="vertical") if part.height else self.view
        self.view = _compact(_trim(view, oldest))
        if self.following:
            self.version += 1
        else:
            self.pending += part.height

    def set_filter(self, expr: pl.Expr | None) -> None:
        """Apply a new filter to the whole hot window (and to the frozen rows)."""
        self._expr = expr
        self.view = self._apply(self.rows)
        if not self.following and self._frozen_base is not None:
            self.frozen = self._apply(self._frozen_base)
            newer = self.rows.filter(pl.col(ARRIVAL) >= self._pause_arrival)
            self.pending = self._apply(newer).height
        self.version += 1

    def pause(self) -> None:
        """Freeze what is displayed; rows keep arriving and are counted in ``pending``."""
        if not self.following:
            return
        self.following = False
        self.frozen = self.view
        self._frozen_base = self.rows
        self._pause_arrival = self.arrived
        self.pending = 0
        self.version += 1

    def resume(self) -> None:
        """Back to the live edge: show everything that arrived while paused."""
        if self.following:
            return
        self.following = True
        self.frozen = None
        self._frozen_base = None
        self.pending = 0
        self.version += 1

    def clear(self) -> None:
        empty = self.rows.clear()
        self.rows = self.view = empty
        if self.frozen is not None:
            self.frozen = self._frozen_base = empty
        self.pending = 0
        self.version += 1

    # -- helpers ----------------------------------------------------------------
    def _apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame if self._expr is None or frame.height == 0 else frame.filter(self._expr)

    def _oldest_arrival(self) -> int:
        if self.rows.height == 0:
            return self.arrived
        return int(self.rows[ARRIVAL][-1])


def _trim(frame: pl.DataFrame, oldest_arrival: int) -> pl.DataFrame:
    """Drop rows that fell out of the hot window (frame is newest first)."""
    if frame.height == 0:
        return frame
    keep = int((frame[ARRIVAL] >= oldest_arrival).sum())
    return frame if keep == frame.height else frame.head(keep)


def _compact(frame: pl.DataFrame) -> pl.DataFrame:
    """Appending one small batch per tick fragments the frame; filters slow down
    with thousands of chunks, so rechunk once fragmentation passes a threshold."""
    return frame.rechunk() if frame.n_chunks() > MAX_CHUNKS else frame


# ---------------------------------------------------------------------------
# Columns and formatting
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Column:
    """One tape column.  ``drop`` > 0 marks it droppable at narrow widths (highest
    first); ``flex`` columns take whatever width is left over."""

    key: str
    header: str
    width: int
    align: Literal["<", ">"] = "<"
    drop: int = 0
    flex: bool = False


@dataclass(frozen=True, slots=True)
class ColumnLayout:
    columns: tuple[tuple[Column, int], ...]  # (column, width actually used)
    width: int


def layout_columns(columns: Sequence[Column], width: int) -> ColumnLayout:
    """Fit columns into ``width`` by dropping the most droppable first; give spare
    width to the flex column.  Pure, so the narrow-width choice is testable."""
    chosen = list(columns)

    def total(cols: Sequence[Column]) -> int:
        return sum(c.width for c in cols) + SEPARATOR * max(0, len(cols) - 1)

    dropped: list[Column] = []
    while total(chosen) > width:
        droppable = [c for c in chosen if c.drop > 0]
        if not droppable:
            break
        victim = max(droppable, key=lambda c: c.drop)
        chosen.remove(victim)
        dropped.append(victim)
    # A wide column dropped later may have freed room for a narrow one dropped earlier.
    for col in sorted(dropped, key=lambda c: c.drop):
        if total([*chosen, col]) <= width:
            chosen.append(col)
    chosen.sort(key=list(columns).index)
    spare = max(0, width - total(chosen))
    out = []
    for col in chosen:
        w = col.width
        if col.flex and spare:
            w, spare = w + spare, 0
        out.append((col, w))
    return ColumnLayout(tuple(out), width)


def et_time_expr(column: str = "ts") -> pl.Expr:
    """ns-since-epoch UTC -> ``HH:MM:SS.mmm`` in New York time (vectorised)."""
    return (
        pl.from_epoch(pl.col(column), time_unit="ns")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(ET_ZONE)
        .dt.strftime("%H:%M:%S%.3f")
    )


def compact_number(value: float) -> str:
    """52.1k, 104k, 1.2M: a number in at most five characters."""
    v = abs(value)
    sign = "-" if value < 0 else ""
    if v < 1_000:
        return f"{sign}{v:.0f}"
    if v < 100_000:
        return f"{sign}{v / 1_000:.1f}k"
    if v < 1_000_000:
        return f"{sign}{v / 1_000:.0f}k"
    if v < 100_000_000:
        return f"{sign}{v / 1_000_000:.1f}M"
    if v < 1_000_000_000:
        return f"{sign}{v / 1_000_000:.0f}M"
    return f"{sign}{v / 1_000_000_000:.1f}B"


def compact_money(value: float) -> str:
    """$980, $52.3k, $1.2M: premiums at a glance."""
    return "$" + compact_number(value)


def equity_price_text(price: float) -> str:
    """Two decimals, or up to four when the price is sub-penny (so it shows)."""
    cents = price * 100
    if abs(cents - round(cents)) < 1e-6:
        return f"{price:.2f}"
    text = f"{price:.4f}".rstrip("0")
    return text


def option_size_text(size: int) -> str:
    return f"{size:,}" if size < 100_000 else compact_number(size)


PLACEMENT_TEXT: Final[dict[str, str]] = {
    "AA": "AA",
    "A": "A",
    "MID": "MID",
    "B": "B",
    "BB": "BB",
    "NO_NBBO": "NOQT",
    "STALE": "STALE",
    "CROSSED": "CROSS",
}
PLACEMENT_CLASS: Final[dict[str, str]] = {
    "AA": "tape--aa",
    "A": "tape--a",
    "MID": "tape--mid",
    "B": "tape--b",
    "BB": "tape--bb",
    "NO_NBBO": "tape--noquote",
    "STALE": "tape--stale",
    "CROSSED": "tape--crossed",
}
BIG_PREMIUM: Final = 100_000.0  # option premium worth a second look
BIG_NOTIONAL: Final = 1_000_000.0  # equity print notional worth a second look

OPTION_FIELDS: Final = (
    "ts",
    "id",
    "root",
    "expiry",
    "right",
    "strike",
    "price",
    "size",
    "exchange",
    "flags",
    "bid",
    "ask",
    "placement",
    "premium",
    "signal_mask",
)
EQUITY_FIELDS: Final = (
    "ts",
    "id",
    "symbol",
    "price",
    "size",
    "venue",
    "off_exchange",
    "flags",
)

OPTION_COLUMNS: Final = (
    Column("time", "OPTIONS", 12),
    Column("root", "SYM", 5),
    Column("exp", "EXPIRY", 7),
    Column("strike", "STRIKE", 7, ">"),
    Column("right", "", 1),
    Column("price", "PRICE", 7, ">"),
    Column("size", "SIZE", 6, ">"),
    Column("premium", "PREM", 7, ">"),
    Column("exch", "EXCH", 4, drop=3),
    Column("quote", "BID×ASK", 13, ">", drop=2),
    Column("placement", "SIDE", 5),
    Column("cond", "COND", 4, flex=True, drop=1),
)

EQUITY_COLUMNS: Final = (
    Column("time", "EQUITIES", 12),
    Column("symbol", "SYM", 5),
    Column("price", "PRICE", 9, ">"),
    Column("size", "SIZE", 9, ">"),
    Column("notional", "NOTIONAL", 8, ">", drop=2),
    Column("venue", "VENUE", 5),
    Column("cond", "COND", 4, flex=True, drop=1),
)


def format_option_rows(frame: pl.DataFrame) -> list[FormattedRow]:
    """Cells of visible ``options.enriched`` rows (called on the on-screen slice only)."""
    prepared = frame.select(
        "id",
        et_time_expr("ts").alias("time"),
        "root",
        pl.col("expiry").dt.strftime("%d%b%y").alias("exp"),
        "strike",
        "right",
        "price",
        "size",
        "premium",
        "exchange",
        "bid",
        "ask",
        "placement",
        "flags",
    )
    out: list[FormattedRow] = []
    for (
        row_id,
        time,
        root,
        exp,
        strike,
        right,
        price,
        size,
        premium,
        exchange,
        bid,
        ask,
        placement,
        flags,
    ) in prepared.rows():
        side_class = PLACEMENT_CLASS.get(placement, "tape--stale")
        quote = f"{bid:.2f}×{ask:.2f}" if bid is not None and ask is not None else "—"
        conds = cond_text(flags or 0)
        iso = bool((flags or 0) & Cond.ISO)
        out.append(
            (
                row_id,
                {
                    "time": (time, "tape--time"),
                    "root": (root, "tape--symbol"),
                    "exp": (exp, "tape--muted"),
                    "strike": (f"{strike:g}", ""),
                    "right": (right, "tape--call" if right == "C" else "tape--put"),
                    "price": (f"{price:.2f}", side_class),
                    "size": (option_size_text(size), ""),
                    "premium": (
                        compact_money(premium),
                        "tape--premium-big" if premium >= BIG_PREMIUM else "tape--premium",
                    ),
                    "exch": (exchange, "tape--muted"),
                    "quote": (quote, "tape--muted"),
                    "placement": (PLACEMENT_TEXT.get(placement, placement), side_class),
                    "cond": (conds, "tape--iso" if iso else "tape--muted"),
                },
            )
        )
    return out


def format_equity_rows(frame: pl.DataFrame) -> list[FormattedRow]:
    """Cells of visible ``equities.prints`` rows; off-exchange prints are marked ◆."""
    prepared = frame.select(
        "id",
        et_time_expr("ts").alias("time"),
        "symbol",
        "price",
        "size",
        "venue",
        "off_exchange",
        "flags",
    )
    out: list[FormattedRow] = []
    for row_id, time, symbol, price, size, venue, off_exchange, flags in prepared.rows():
        row_class = "tape--offex" if off_exchange else ""
        conds = cond_text(flags or 0)
        iso = bool((flags or 0) & Cond.ISO)
        out.append(
            (
                row_id,
                {
                    "time": (time, "tape--time"),
                    "symbol": (symbol, "tape--offex" if off_exchange else "tape--symbol"),
                    "price": (equity_price_text(price), row_class),
                    "size": (f"{size:,}" if size < 10_000_000 else compact_number(size), row_class),
                    "notional": (
                        compact_money(price * size),
                        "tape--premium-big" if price * size >= BIG_NOTIONAL else "tape--muted",
                    ),
                    "venue": (
                        ("◆ " if off_exchange else "  ") + venue,
                        "tape--offex-mark" if off_exchange else "tape--muted",
                    ),
                    "cond": (conds, "tape--iso" if iso else "tape--muted"),
                },
            )
        )
    return out


# ---------------------------------------------------------------------------
# View
# ---------------------------------------------------------------------------
#: strips kept per view, keyed by (row id, width)
STRIP_CACHE = 512


class TapeView(ScrollView, can_focus=True, inherit_bindings=False):
    """Line-API view of a ``TapeModel``: header line + the visible rows, nothing more.

    The screen calls ``sync()`` on its repaint tick; the view repaints only if the
    model's display changed (or the paused badge did).  Scrolling away from the
    live edge (the top) pauses the model, as tailing does in toolong.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "scroll_up", "Up", show=False, id="tape.up", tooltip="Scroll up a row"),
        Binding(
            "down,j",
            "scroll_down",
            "Down",
            show=False,
            id="tape.down",
            tooltip="Scroll down a row (leaving the live edge pauses the tape)",
        ),
        Binding("pageup", "page_up", "Page up", show=False, id="tape.page_up", tooltip="Up a page"),
        Binding(
            "pagedown",
            "page_down",
            "Page down",
            show=False,
            id="tape.page_down",
            tooltip="Down a page (pauses the tape)",
        ),
        Binding(
            "home,g",
            "scroll_home",
            "Top",
            show=False,
            id="tape.top",
            tooltip="Jump to the newest row shown",
        ),
        Binding(
            "end,G",
            "scroll_end",
            "Bottom",
            show=False,
            id="tape.bottom",
            tooltip="Jump to the oldest row shown (pauses the tape)",
        ),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "tape--header",
        "tape--paused",
        "tape--time",
        "tape--symbol",
        "tape--muted",
        "tape--call",
        "tape--put",
        "tape--aa",
        "tape--a",
        "tape--mid",
        "tape--b",
        "tape--bb",
        "tape--noquote",
        "tape--stale",
        "tape--crossed",
        "tape--premium",
        "tape--premium-big",
        "tape--iso",
        "tape--offex",
        "tape--offex-mark",
    }

    DEFAULT_CSS = """
    TapeView {
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
    }
    """

    @dataclass
    class FollowChanged(Message):
        """The view left the live edge by itself (the user scrolled away), so it paused."""

        view: TapeView
        following: bool

    def __init__(
        self,
        model: TapeModel,
        columns: Sequence[Column],
        formatter: RowFormatter,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model
        self.columns = tuple(columns)
        self.formatter = formatter
        # A few screens' worth: under the firehose rows scroll past every tick, so a
        # bigger cache only keeps dead strips alive (each carries seven small caches
        # of its own), and long-lived garbage is what makes the GC's full
        # collections take hundreds of milliseconds on the UI loop.
        self._strips: LRUCache[tuple[int, int], Strip] = LRUCache(STRIP_CACHE)
        self._styles: dict[str, Style] = {}
        self._layouts: dict[int, ColumnLayout] = {}
        self._frame = model.display
        self._seen: tuple[int, int, bool] = (-1, -1, True)
        self._window_key: tuple[int, int, int, int] | None = None
        self._window: list[Strip] = []

    # -- state from the model --------------------------------------------------
    def sync(self) -> bool:
        """Pick up model changes; returns True if the view will repaint."""
        model = self.model
        seen = (model.version, model.pending, model.following)
        if seen == self._seen:
            return False
        if seen[0] != self._seen[0]:
            self._frame = model.display
            self._window_key = None
            self.virtual_size = Size(0, self._frame.height + 1)
        self._seen = seen
        self.refresh()
        return True

    def pause(self) -> None:
        self.model.pause()
        self.sync()

    def resume(self) -> None:
        """Return to the live edge (the top) with everything that arrived meanwhile."""
        self.model.resume()
        self.scroll_to(y=0, animate=False)
        self.sync()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(new_value) > 0 and self.model.following:
            self.model.pause()
            self.sync()
            self.post_message(self.FollowChanged(self, following=False))

    # -- rendering --------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()
        self._window_key = None

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self.get_component_rich_style(name) if name else self.rich_style
            self._styles[name] = style
        return style

    def _layout(self, width: int) -> ColumnLayout:
        layout = self._layouts.get(width)
        if layout is None:
            layout = self._layouts[width] = layout_columns(self.columns, width)
        return layout

    def _cells_strip(self, cells: Mapping[str, Cell], layout: ColumnLayout) -> Strip:
        base = self._style("")
        gap = Segment(" " * SEPARATOR, base)
        segments: list[Segment] = []
        for i, (col, w) in enumerate(layout.columns):
            if i:
                segments.append(gap)
            text, cls = cells.get(col.key, ("", ""))
            text = text[:w]
            text = text.rjust(w) if col.align == ">" else text.ljust(w)
            segments.append(Segment(text, self._style(cls)))
        return Strip(segments).adjust_cell_length(layout.width, base)

    def _header_strip(self, width: int) -> Strip:
        layout = self._layout(width)
        header_style = self._style("tape--header")
        strip = self._cells_strip({c.key: (c.header, "tape--header") for c in self.columns}, layout)
        strip = Strip([Segment(s.text, header_style) for s in strip]).adjust_cell_length(
            width, header_style
        )
        badge = self.badge
        if badge:
            text = f" {badge} "
            keep = max(0, width - len(text))
            strip = Strip.join(
                [
                    strip.crop(0, keep),
                    Strip([Segment(text[: width - keep], self._style("tape--paused"))]),
                ]
            )
        return strip

    @property
    def badge(self) -> str:
        """The paused marker with the count of rows waiting at the live edge."""
        model = self.model
        if model.following:
            return ""
        return f"PAUSED +{model.pending:,}"

    def _ensure_window(self, scroll_y: int, rows: int, width: int) -> None:
        key = (self._seen[0], scroll_y, rows, width)
        if key == self._window_key:
            return
        layout = self._layout(width)
        window = self._frame.slice(scroll_y, rows)
        ids = window[self.model.key].to_list() if window.height else []
        missing = [i for i, row_id in enumerate(ids) if (row_id, width) not in self._strips]
        if missing:
            for row_id, cells in self.formatter(window[missing]):
                self._strips[(row_id, width)] = self._cells_strip(cells, layout)
        blank = Strip.blank(width, self._style(""))
        self._window = [self._strips.get((row_id, width), blank) for row_id in ids]
        self._window_key = key

    def render_line(self, y: int) -> Strip:
        region = self.scrollable_content_region
        width = region.width
        if y == 0:
            return self._header_strip(width)
        scroll_y = self.scroll_offset.y
        self._ensure_window(scroll_y, max(0, region.height - 1), width)
        index = y - 1
        if index < len(self._window):
            return self._window[index]
        return Strip.blank(width, self._style(""))

    def visible_text(self) -> list[str]:
        """Plain text of the lines on screen (header first); used by tests and debugging."""
        return [self.render_line(y).text for y in range(self.scrollable_content_region.height)]
