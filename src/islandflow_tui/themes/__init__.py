"""Textual themes with semantic market colours.

Screens and widgets never name a colour: ``app.tcss`` refers to semantic
variables (``$bullish``, ``$off-exchange``, ...) that every theme defines, so a
new theme is one ``Theme`` object and the tape stays readable in all of them.
``SEMANTIC_DEFAULTS`` backs the same variables for Textual's built-in themes
(the app returns it from ``get_theme_variable_defaults``), so picking ``nord``
or ``gruvbox`` from the command palette cannot break the stylesheet.
"""

from __future__ import annotations

from typing import Final

from textual.theme import Theme

# Semantic names, shared by every theme (and by nothing else).
#   bullish / bullish-strong   buyer-initiated prints (A / AA placement)
#   bearish / bearish-strong   seller-initiated prints (B / BB placement)
#   neutral                    MID prints
#   stale                      prints with no usable quote (NO_NBBO / STALE)
#   off-exchange               equity prints reported to a TRF / ADF
#   iso                        intermarket sweep condition
#   call / put                 the option right column
#   tape-header-background     the column header row of a tape pane
SEMANTIC_DEFAULTS: Final[dict[str, str]] = {
    "bullish": "#3fb950",
    "bullish-strong": "#56d364",
    "bearish": "#f85149",
    "bearish-strong": "#ff7b72",
    "neutral": "#a5b4c8",
    "stale": "#6e7681",
    "off-exchange": "#d2a8ff",
    "iso": "#39c5cf",
    "call": "#79c0ff",
    "put": "#ffa657",
    "tape-header-background": "#1f2630",
}

ISLANDFLOW_DARK: Final = Theme(
    name="islandflow",
    primary="#58a6ff",
    secondary="#1f6feb",
    accent="#d2a8ff",
    warning="#d29922",
    error="#f85149",
    success="#3fb950",
    foreground="#c9d1d9",
    background="#0d1117",
    surface="#161b22",
    panel="#1f2630",
    dark=True,
    variables={
        **SEMANTIC_DEFAULTS,
        "footer-key-foreground": "#58a6ff",
        "block-cursor-text-style": "none",
    },
)

ISLANDFLOW_LIGHT: Final = Theme(
    name="islandflow-light",
    primary="#0969da",
    secondary="#218bff",
    accent="#8250df",
    warning="#9a6700",
    error="#cf222e",
    success="#1a7f37",
    foreground="#1f2328",
    background="#ffffff",
    surface="#f6f8fa",
    panel="#eaeef2",
    dark=False,
    variables={
        "bullish": "#1a7f37",
        "bullish-strong": "#116329",
        "bearish": "#cf222e",
        "bearish-strong": "#a40e26",
        "neutral": "#57606a",
        "stale": "#8c959f",
        "off-exchange": "#8250df",
        "iso": "#0550ae",
        "call": "#0969da",
        "put": "#bc4c00",
        "tape-header-background": "#eaeef2",
        "footer-key-foreground": "#0969da",
    },
)

THEMES: Final[tuple[Theme, ...]] = (ISLANDFLOW_DARK, ISLANDFLOW_LIGHT)
DEFAULT_THEME: Final = ISLANDFLOW_DARK.name
