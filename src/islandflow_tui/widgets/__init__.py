"""Reusable widgets: the Line-API tape view, the status bar and the one-field prompt."""

from islandflow_tui.widgets.prompt import PromptScreen, parse_money, parse_symbols
from islandflow_tui.widgets.status_bar import StatusBar, status_text
from islandflow_tui.widgets.tape_view import (
    Column,
    TapeFilter,
    TapeModel,
    TapeView,
    layout_columns,
)

__all__ = [
    "Column",
    "PromptScreen",
    "StatusBar",
    "TapeFilter",
    "TapeModel",
    "TapeView",
    "layout_columns",
    "parse_money",
    "parse_symbols",
    "status_text",
]
