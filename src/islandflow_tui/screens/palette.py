"""Command palette jumps: a symbol (filters Tape and Flow to it) or a recent alert
(opens its Evidence).

Candidates come from the app's hot windows (the underlyings seen on the tapes and
in the flow, the newest alerts), read when the palette asks, never per event.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Final, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from islandflow_tui.engine import events as ev

if TYPE_CHECKING:
    from islandflow_tui.app import IslandflowApp

RECENT_ALERTS: Final = 50  # alerts offered by the palette (newest first)
DISCOVER_ALERTS: Final = 8  # shown before anything is typed


def alert_label(row: dict[str, object]) -> str:
    return (
        f"Alert {ev.format_id(int(row['id']))} {str(row['severity']).upper()} "  # type: ignore[call-overload]
        f"{float(row['score']):.0f}: {row['explanation']}"  # type: ignore[arg-type]
    )


class JumpProvider(Provider):
    """``SPY`` → "Symbol: SPY"; ``nvda sweep`` → the matching recent alerts."""

    @property
    def ifapp(self) -> IslandflowApp:
        return cast("IslandflowApp", self.app)

    def _symbols(self) -> list[str]:
        app = self.ifapp
        seen: set[str] = set()
        for model, column in (
            (app.options_model, "root"),
            (app.equities_model, "symbol"),
            (app.packets_model, "root"),
            (app.alerts_model, "root"),
        ):
            if model.rows.height:
                seen.update(model.rows.get_column(column).unique().drop_nulls().to_list())
        return sorted(seen)

    def _alerts(self, limit: int) -> list[dict[str, object]]:
        rows = self.ifapp.alerts_model.rows
        if rows.height == 0:
            return []
        return rows.head(limit).select("id", "severity", "score", "explanation", "root").to_dicts()

    async def discover(self) -> Hits:
        for row in self._alerts(DISCOVER_ALERTS):
            yield DiscoveryHit(
                alert_label(row),
                partial(self.ifapp.open_evidence, int(row["id"])),  # type: ignore[call-overload]
                help="Open this alert's evidence",
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        text = query.strip().upper()
        for symbol in self._symbols():
            label = f"Symbol: {symbol}"
            score = matcher.match(label)
            if symbol == text:
                score = max(score, 1.0)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(label),
                    partial(self.ifapp.jump_to_symbol, symbol),
                    help=f"Show only {symbol} on the Flow and Tape screens",
                )
        for row in self._alerts(RECENT_ALERTS):
            label = alert_label(row)
            score = matcher.match(label)
            if score > 0:
                yield Hit(
                    score * 0.9,
                    matcher.highlight(label),
                    partial(self.ifapp.open_evidence, int(row["id"])),  # type: ignore[call-overload]
                    help="Open this alert's evidence",
                )
