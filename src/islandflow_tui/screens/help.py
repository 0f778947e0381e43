"""Help: the keys that work right now, read from the bindings themselves.

Nothing here is a hand-written key list, so a key added to (or remapped in) any
``BINDINGS`` shows up with its description and tooltip without touching this file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static


@dataclass(frozen=True, slots=True)
class KeyHelp:
    """One row of the help table: every key bound to one action of one node."""

    scope: str
    keys: str
    description: str
    tooltip: str


def _scope(node: DOMNode) -> str:
    if isinstance(node, App):
        return "Everywhere"
    if isinstance(node, Screen):
        return (node.title or type(node).__name__.removesuffix("Screen")) + " screen"
    return "Focused pane"


def key_help(app: App[object], bindings: Iterable[ActiveBinding]) -> list[KeyHelp]:
    """Group active bindings by (node, action) so ``?`` and ``f1`` share one row."""
    groups: dict[tuple[int, str], list[tuple[str, Binding, DOMNode]]] = {}
    for active in bindings:
        binding = active.binding
        if binding.system:
            continue
        key = (id(active.node), binding.action)
        groups.setdefault(key, []).append((app.get_key_display(binding), binding, active.node))
    rows: list[KeyHelp] = []
    for entries in groups.values():
        keys = " ".join(dict.fromkeys(display for display, _, _ in entries))
        _, binding, node = entries[0]
        rows.append(
            KeyHelp(
                scope=_scope(node),
                keys=keys,
                description=binding.description or binding.action.replace("_", " "),
                tooltip=binding.tooltip,
            )
        )
    order = {"Focused pane": 1, "Everywhere": 2}  # the screen's own keys first
    rows.sort(key=lambda r: order.get(r.scope, 0))
    return rows


class HelpScreen(ModalScreen[None]):
    """Modal list of the keys active on the screen underneath."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", id="help.close", tooltip="Close help"),
    ]

    def __init__(self, bindings: Iterable[ActiveBinding]) -> None:
        super().__init__()
        self._shown_bindings = list(bindings)
        self.rows: list[KeyHelp] = []

    def compose(self) -> ComposeResult:
        self.rows = key_help(self.app, self._shown_bindings)
        table = Table(box=None, expand=True, show_header=True, pad_edge=False)
        table.add_column("key", no_wrap=True, style="bold")
        table.add_column("does", no_wrap=True)
        table.add_column("why / detail", ratio=1)
        scope = None
        for row in self.rows:
            if row.scope != scope:
                if scope is not None:
                    table.add_row("", "", "")
                table.add_row(Text(row.scope, style="bold italic"), "", "")
                scope = row.scope
            # Text, not str: a key such as "[" must never be read as console markup.
            table.add_row(Text(row.keys), Text(row.description), Text(row.tooltip))
        with Vertical(id="help-box"):
            yield Label("islandflow keys  (escape or q closes)", id="help-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(table, id="help-table")

    def action_close(self) -> None:
        self.dismiss(None)
