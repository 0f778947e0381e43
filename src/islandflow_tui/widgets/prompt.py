"""A one-field modal prompt that validates before it answers.

The prompt owns parsing: it dismisses with the parsed value only when the text is
valid, and otherwise shows the parser's message under the input and stays open,
so a typo never half-applies a filter.  Escape dismisses with ``None`` (no change).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar, Final, Generic, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

T = TypeVar("T")

_SYMBOL: Final = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
_MONEY: Final = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)([KMB]?)$")
_SCALE: Final = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9}


def parse_symbols(text: str) -> frozenset[str]:
    """``"aapl, tsla spy"`` -> ``{"AAPL", "TSLA", "SPY"}``; empty text clears the filter."""
    tokens = [t for t in re.split(r"[,\s]+", text.strip().upper()) if t]
    bad = [t for t in tokens if not _SYMBOL.match(t)]
    if bad:
        raise ValueError(f"not a symbol: {bad[0]!r} (letters, digits and '.', e.g. AAPL, BRK.B)")
    return frozenset(tokens)


def parse_money(text: str) -> float:
    """``25000``, ``25k``, ``$1.5m``, ``25,000`` -> dollars; empty text means 0 (no minimum)."""
    cleaned = text.strip().upper().replace("$", "").replace(",", "").replace("_", "")
    cleaned = cleaned.replace(" ", "")
    if not cleaned:
        return 0.0
    match = _MONEY.match(cleaned)
    if match is None:
        raise ValueError(f"not an amount: {text.strip()!r} (try 25000, 25k or 1.5m)")
    return float(match.group(1)) * _SCALE[match.group(2)]


class PromptScreen(ModalScreen[T | None], Generic[T]):
    """Ask for one value; ``parse`` turns the text into it or raises ``ValueError``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="prompt.cancel",
            tooltip="Close the prompt without changing anything",
        ),
    ]

    DEFAULT_CSS = """
    PromptScreen {
        align: center middle;
    }
    """

    def __init__(
        self,
        title: str,
        parse: Callable[[str], T],
        *,
        value: str = "",
        placeholder: str = "",
        hint: str = "",
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.title_text = title
        self.parse = parse
        self.initial = value
        self.placeholder = placeholder
        self.hint = hint
        self.error = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Label(self.title_text, id="prompt-title")
            yield Input(
                self.initial, placeholder=self.placeholder, id="prompt-input", select_on_focus=True
            )
            yield Static("", id="prompt-error")
            if self.hint:
                yield Static(self.hint, id="prompt-hint")

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            value = self.parse(event.value)
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.dismiss(value)

    @on(Input.Changed)
    def clear_error(self, event: Input.Changed) -> None:
        if self.error:
            self.show_error("")

    def show_error(self, message: str) -> None:
        self.error = message
        error = self.query_one("#prompt-error", Static)
        error.update(message)
        error.set_class(bool(message), "-visible")

    def action_cancel(self) -> None:
        self.dismiss(None)


def symbols_prompt(
    title: str, current: frozenset[str], placeholder: str
) -> PromptScreen[frozenset[str]]:
    """The comma-separated symbol prompt every filtering screen uses."""
    return PromptScreen(
        f"{title} (comma-separated; empty shows all)",
        parse_symbols,
        value=",".join(sorted(current)),
        placeholder=placeholder,
        hint="enter applies · escape cancels",
    )


def money_prompt(title: str, current: float) -> PromptScreen[float]:
    """The minimum-premium prompt (``25k``, ``1.5m``; empty clears)."""
    return PromptScreen(
        title,
        parse_money,
        value=f"{current:g}" if current else "",
        placeholder="e.g. 25000, 25k, 1.5m",
        hint="enter applies · empty clears · escape cancels",
    )


def when_given(apply: Callable[[T], None]) -> Callable[[T | None], None]:
    """A prompt callback that applies the answer and ignores escape (``None``)."""

    def callback(value: T | None) -> None:
        if value is not None:
            apply(value)

    return callback
