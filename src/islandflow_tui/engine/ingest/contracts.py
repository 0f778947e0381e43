"""Which option contracts a live feed subscribes to, and when to choose again.

Vendors cap subscriptions (Alpaca: a few hundred option symbols), so a live options
feed streams a band of strikes around spot per underlying, like the seed did:

1. expiries from today to ``max_dte_days`` (New York dates);
2. per expiry and right, the ``strikes_per_side`` strikes nearest spot below it and
   above it, inside ``moneyness_pct`` of spot, widened to ``moneyness_fallback_pct``
   on a side where the narrow band has too few;
3. at most ``max_contracts`` over all underlyings (an even share each; nearest expiry
   and nearest the money first).

Everything is a pure function of (chain, spot, day): deterministic, no dict order.
:class:`Reselector` decides, from event time, when to choose again: spot moved more
than ``reselect_move_pct`` since the last choice, or the New York date rolled.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")


@dataclass(frozen=True, slots=True, order=True)
class ChainEntry:
    expiry: date
    right: str
    strike: float
    symbol: str  # the vendor's symbol (Alpaca: OCC without padding)
    root: str


@dataclass(frozen=True, slots=True)
class SelectionKnobs:
    strikes_per_side: int = 8
    max_dte_days: int = 30
    moneyness_pct: float = 0.06
    moneyness_fallback_pct: float = 0.10
    max_contracts: int = 200


def parse_occ(symbol: str) -> ChainEntry:
    """``AAPL240503P00155000`` (OCC without padding, as Alpaca sends it) -> ChainEntry."""
    s = symbol.strip()
    if len(s) < 16 or s[-9] not in "CP" or not s[-15:-9].isdigit() or not s[-8:].isdigit():
        raise ValueError(f"not an OCC option symbol: {symbol!r}")
    root = s[:-15].strip()
    yy, mm, dd = int(s[-15:-13]), int(s[-13:-11]), int(s[-11:-9])
    return ChainEntry(date(2000 + yy, mm, dd), s[-9], int(s[-8:]) / 1000, s, root)


@functools.lru_cache(maxsize=65_536)  # one per subscribed contract, called per message
def occ_to_osi(symbol: str) -> str:
    """Alpaca's unpadded OCC symbol -> the engine's 21-character OSI symbol."""
    s = symbol.strip()
    root = s[:-15].strip()
    return f"{root:<6}{s[-15:]}"


def ny_date(ts_ns: int) -> date:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).astimezone(NY).date()


def _side(entries: list[ChainEntry], spot: float, n: int, pct: float, fallback: float) -> list:
    near = [e for e in entries if abs(e.strike - spot) <= pct * spot]
    if len(near) < n:
        near = [e for e in entries if abs(e.strike - spot) <= fallback * spot]
    return near[:n]


def select_underlying(
    chain: Iterable[ChainEntry], spot: float, today: date, knobs: SelectionKnobs
) -> list[ChainEntry]:
    """The band of one underlying, nearest expiry and nearest the money first."""
    groups: dict[tuple[date, str], list[ChainEntry]] = {}
    for e in chain:
        dte = (e.expiry - today).days
        if 0 <= dte <= knobs.max_dte_days:
            groups.setdefault((e.expiry, e.right), []).append(e)
    picked: list[ChainEntry] = []
    n = knobs.strikes_per_side
    for key in sorted(groups):
        entries = groups[key]
        below = sorted(
            (e for e in entries if e.strike <= spot), key=lambda e: (-e.strike, e.symbol)
        )
        above = sorted((e for e in entries if e.strike > spot), key=lambda e: (e.strike, e.symbol))
        pct, fb = knobs.moneyness_pct, knobs.moneyness_fallback_pct
        picked += _side(below, spot, n, pct, fb) + _side(above, spot, n, pct, fb)
    return sorted(picked, key=lambda e: (e.expiry, abs(e.strike - spot), e.right, e.strike))


def select_contracts(
    chains: Mapping[str, Iterable[ChainEntry]],
    spots: Mapping[str, float],
    today: date,
    knobs: SelectionKnobs,
) -> list[str]:
    """Symbols to subscribe over every underlying with a known spot (sorted)."""
    ranked = {
        u: select_underlying(chains[u], spots[u], today, knobs)
        for u in sorted(chains)
        if spots.get(u, 0) > 0
    }
    if not ranked:
        return []
    share, extra = divmod(knobs.max_contracts, len(ranked))
    out: list[str] = []
    spare: list[ChainEntry] = []
    for i, u in enumerate(sorted(ranked)):
        cap = share + (1 if i < extra else 0)
        out += [e.symbol for e in ranked[u][:cap]]
        spare += ranked[u][cap:]
    # an underlying with a short chain leaves room for the others
    room = knobs.max_contracts - len(out)
    if room > 0 and spare:
        out += [e.symbol for e in sorted(spare, key=lambda e: (e.expiry, e.symbol))[:room]]
    return sorted(out)


class Reselector:
    """Event-time trigger for a new selection: spot moved, or the day rolled."""

    def __init__(self, move_pct: float) -> None:
        self.move_pct = move_pct
        self.spot_at_selection: dict[str, float] = {}
        self.day: date | None = None
        self.day_start_ns = 0
        self.day_end_ns = 0

    def selected(self, spots: Mapping[str, float], day: date) -> None:
        self.spot_at_selection = {u: s for u, s in spots.items() if s > 0}
        self.day = day
        start = datetime.combine(day, datetime.min.time(), tzinfo=NY)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=NY)
        self.day_start_ns = int(start.timestamp()) * 1_000_000_000
        self.day_end_ns = int(end.timestamp()) * 1_000_000_000

    def day_rolled(self, ts_ns: int) -> bool:
        """Event time left the selection's New York day (cheap: two integer compares)."""
        return self.day is not None and not self.day_start_ns <= ts_ns < self.day_end_ns

    def observe(self, underlying: str, price: float, ts_ns: int) -> bool:
        """True if a print of ``underlying`` at ``price`` and ``ts_ns`` calls for a new choice."""
        if self.day_rolled(ts_ns):
            return True
        base = self.spot_at_selection.get(underlying)
        if base is None:
            return price > 0  # first spot for an underlying that had none
        return abs(price / base - 1.0) > self.move_pct
