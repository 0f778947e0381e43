"""The Dark screen's event list (a tape with a cursor) and the detail of one event.

``DarkEventsView`` is a ``TapeView`` over the dark-event model plus a row
cursor: ``enter`` needs a chosen event.  The cursor on the top row follows the
newest event; moving it down pauses the list (as scrolling a tape does) so the
chosen row stays put while events keep arriving, and moving back to the top
resumes it.

``detail_text`` renders the chosen event: the explanation in full, the rule
trace as ✓/✗ conditions with value and threshold, and the evidence count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from islandflow_tui.engine import events as ev
from islandflow_tui.widgets.dark_model import DIRECTION_TEXT, PATTERN_TEXT
from islandflow_tui.widgets.scrub_bar import et_time
from islandflow_tui.widgets.tape_view import (
    TapeView,
    compact_money,
    equity_price_text,
)


class DarkEventsView(TapeView, inherit_bindings=False):
    """Inferred dark events, newest first, with a cursor row."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="dark.up", tooltip="Previous event"),
        Binding(
            "down,j",
            "cursor(1)",
            "Down",
            show=False,
            id="dark.down",
            tooltip="Next (older) event; leaving the newest pauses the list",
        ),
        Binding(
            "pageup", "page(-1)", "Page up", show=False, id="dark.page_up", tooltip="Up a page"
        ),
        Binding(
            "pagedown",
            "page(1)",
            "Page down",
            show=False,
            id="dark.page_down",
            tooltip="Down a page",
        ),
        Binding(
            "home,g",
            "top",
            "Newest",
            show=False,
            id="dark.top",
            tooltip="Back to the newest event (resumes the list)",
        ),
        Binding(
            "end,G", "bottom", "Oldest", show=False, id="dark.bottom", tooltip="The oldest event"
        ),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = TapeView.COMPONENT_CLASSES | {"dark--cursor"}

    @dataclass
    class CursorMoved(Message):
        view: DarkEventsView

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cursor = 0

    # -- selection ------------------------------------------------------------------
    @property
    def selected(self) -> Mapping[str, Any] | None:
        """The event under the cursor, as a dict of its fields (None if the list is empty)."""
        frame = self.model.display
        if frame.height == 0:
            return None
        index = min(self.cursor, frame.height - 1)
        return frame.row(index, named=True)

    def move_cursor(self, to: int) -> None:
        frame = self.model.display
        last = max(0, frame.height - 1)
        to = max(0, min(to, last))
        if to > 0 and self.model.following:
            self.model.pause()
            self.post_message(self.FollowChanged(self, following=False))
        self.cursor = to
        rows = max(1, self.scrollable_content_region.height - 1)
        top = round(self.scroll_y)
        if to < top:
            self.scroll_to(y=to, animate=False, immediate=True)
        elif to >= top + rows:
            self.scroll_to(y=to - rows + 1, animate=False, immediate=True)
        if to == 0 and not self.model.following:
            self.resume()
            self.post_message(self.FollowChanged(self, following=True))
        self._window_key = None
        self.sync()
        self.refresh()
        self.post_message(self.CursorMoved(self))

    def resume(self) -> None:
        self.cursor = 0
        super().resume()

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        rows = max(1, self.scrollable_content_region.height - 1)
        self.move_cursor(self.cursor + direction * rows)

    def action_top(self) -> None:
        self.move_cursor(0)

    def action_bottom(self) -> None:
        self.move_cursor(self.model.display.height - 1)

    # -- painting ---------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if y == 0 or self.model.display.height == 0:
            return strip
        if round(self.scroll_y) + y - 1 == min(self.cursor, self.model.display.height - 1):
            cursor: Style = self.get_component_rich_style("dark--cursor")
            return Strip(
                list(Segment.apply_style(iter(strip), post_style=cursor)), strip.cell_length
            )
        return strip


StyleOf = Callable[[str], Style | str]


def detail_text(
    row: Mapping[str, Any] | None, *, evidence_hint: str, style: StyleOf = lambda _c: ""
) -> Text:
    """The chosen event: headline, explanation, rule trace, evidence count."""
    text = Text(no_wrap=False, overflow="fold")
    if row is None:
        text.append("no dark inference yet", style("detail--muted"))
        return text
    pattern = PATTERN_TEXT.get(row["pattern"], str(row["pattern"]).upper())
    direction, _ = DIRECTION_TEXT.get(row["direction"], (row["direction"], ""))
    text.append(f"{pattern} {row['symbol']} ", style("detail--title"))
    text.append(f"{direction}  conf {row['confidence']:.2f}  ")
    text.append(
        f"{row['total_size']:,} sh  {compact_money(row['notional'])} @ "
        f"{equity_price_text(row['price'])}  {et_time(row['ts'])} ET  {ev.format_id(row['id'])}",
        style("detail--muted"),
    )
    text.append("\n")
    text.append(row.get("explanation") or "", style("detail--why"))
    trace = row.get("trace") or []
    if trace:
        text.append("\n")
        for i, item in enumerate(trace):
            if i:
                text.append("  ")
            passed = bool(item.get("passed"))
            text.append(
                "✓ " if passed else "✗ ", style("detail--pass" if passed else "detail--fail")
            )
            text.append(
                f"{item.get('condition')} {_num(item.get('value'))}/{_num(item.get('threshold'))}",
                style("" if passed else "detail--muted"),
            )
    evidence = row.get("evidence") or []
    text.append("\n")
    plural = "s" if len(evidence) != 1 else ""
    text.append(
        f"{len(evidence)} evidence print{plural}  ·  {evidence_hint}", style("detail--muted")
    )
    return text


class DarkDetail(Widget):
    """The chosen dark event in full (painted from the row its screen hands it)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "detail--title",
        "detail--muted",
        "detail--why",
        "detail--pass",
        "detail--fail",
    }

    def __init__(self, *, id: str | None = None, evidence_hint: str = "enter: evidence") -> None:
        super().__init__(id=id)
        self.row: Mapping[str, Any] | None = None
        self.evidence_hint = evidence_hint

    def show(self, row: Mapping[str, Any] | None) -> None:
        key = None if row is None else row["id"]
        old = None if self.row is None else self.row["id"]
        if key != old or (row is None) != (self.row is None):
            self.row = row
            self.refresh()

    def render(self) -> Text:
        def style(name: str) -> Style | str:
            return self.get_component_rich_style(name) if name else ""

        return detail_text(self.row, evidence_hint=self.evidence_hint, style=style)


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value and abs(value) < 0.01:  # spread shares and the like: no exponent notation
        return f"{value:.6f}".rstrip("0")
    return f"{value:g}"
