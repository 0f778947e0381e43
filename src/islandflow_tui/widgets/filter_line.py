"""The one-line filter summary under a list: ``label value │ label value …  12/40 rows``.

Every filtering screen (Tape, Flow, Alerts, Dark) shows its filters the same way:
dim labels, bold values, ``│`` between them, and the shown/total count right-aligned
when there is room for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` cells with an ellipsis (long symbol lists)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def joined_or_all(values: frozenset[str], limit: int) -> str:
    """A filter's set of values as ``A,B,C`` (clipped), or ``all`` when empty."""
    return clip(",".join(sorted(values)), limit) if values else "all"


def filter_line(
    parts: Sequence[tuple[str, str]], count: str, *, width: int, hint: str = ""
) -> Text:
    """``parts`` as ``label value`` pairs, an optional dim ``hint``, then ``count``."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, (label, value) in enumerate(parts):
        if i:
            text.append(" │ ", "dim")
        text.append(label, "dim")
        text.append(value, "bold")
    if hint:
        text.append(" │ ", "dim")
        text.append(hint, "dim")
    pad = width - text.cell_len - len(count)
    if pad >= 2:
        text.append(" " * pad)
        text.append(count, "dim")
    return text
