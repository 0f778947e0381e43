"""Vectorised synthetic market: option prints + NBBO and equity prints + quotes.

Why this exists: ``islandflow`` with no flags, no credentials and no servers must run
end to end, and every later stage (NBBO join, clustering, structures, classifiers,
dark inference) needs a feed that looks like the real thing *and* contains known
patterns to find.  The generator is the ground truth for those tests: whatever it
injects is recorded in :attr:`SyntheticMarket.patterns`.

Model, in one paragraph.  A handful of underlyings (ETFs and single names) follow a
geometric random walk, one step per tick, in trading time.  Each has a fixed option
chain (real 21-character OSI symbols, several expiries including 0DTE, strikes around
the starting spot) whose theoretical values are a cheap closed-form approximation
(intrinsic + ``0.4·S·σ·√T`` shaped by standardised moneyness).  Per tick the generator
draws Poisson counts of background prints and quote updates, samples contracts by an
activity weight (near the money and short-dated trade most), places a quote shortly
before most prints, finds for every print the quote actually in force (the latest one
at or before it, including quotes from earlier ticks) and prices the print against it
(AA / A / MID / B / BB and "inside").  Equities work the same way per ticker, with lit
venues and the FINRA TRF (venue ``D``), sub-penny retail price improvement, midpoint
crosses, blocks and accumulation sequences.  Injected patterns are scheduled into a
pending queue (a sweep or a repeated-hit sequence can span many ticks) and released
tick by tick with the background flow.

Everything is numpy arrays and one ``pl.DataFrame`` per stream per tick: no Python
loop over events (only over the few patterns injected in a tick).  String columns are
gathered from precomputed polars Series (``Series.gather``), measured ~10 ns per row,
about 3x faster than building from numpy object arrays.

Determinism: every random draw comes from generators spawned from
``np.random.default_rng(seed)``; there is no wall clock, no ``random`` module and no
iteration over unordered containers.  Prices are kept in integer cents (options) or
1/10 000 dollars (equities) and divided once when the frame is built, so the same
(profile, seed, start_ns, tick_ms) gives byte-identical frames.

Simplifications (documented, deliberate): the session never closes (a 0DTE contract
whose 16:00 ET expiry has passed keeps a two-hour time value floor and keeps trading,
so a demo started at night still shows 0DTE flow); exchange holidays are ignored when
listing expiries; and the event date is treated as a trading day even at a weekend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from islandflow_tui.engine.events import (
    EQUITIES_PRINTS,
    EQUITIES_QUOTES,
    NS_PER_MS,
    NS_PER_S,
    OPTIONS_NBBO,
    OPTIONS_PRINTS,
    Cond,
    FeedBatch,
)
from islandflow_tui.engine.venues import VENUES, flags_of

__all__ = [
    "EQUITY_CONDITIONS",
    "EQUITY_VENUES",
    "OPTION_CONDITIONS",
    "OPTION_VENUES",
    "PATTERN_KINDS",
    "PATTERN_SCHEMA",
    "PROFILES",
    "UNDERLYINGS",
    "ProfileParams",
    "SyntheticMarket",
    "Underlying",
    "event_date",
    "start_ns_from_config",
]

NY: Final = ZoneInfo("America/New_York")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_YEAR_NS: Final = 365 * 86_400 * NS_PER_S  # calendar year: time to expiry
_TRADING_YEAR_S: Final = 252 * 6.5 * 3600  # trading year: the spot walk's clock
_T_FLOOR_YEARS: Final = 2.0 / (24 * 365)  # 0DTE never decays below two hours of value
_WEIGHT_T_FLOOR: Final = 3.0 / 365  # activity spreads over strikes as if >= 3 days
_KEY_SHIFT: Final = 36  # (instrument << 36) | (ts - tick start): tick <= 10 s < 2**34 ns


# ---------------------------------------------------------------------------
# Reference tables (module constants so adapters, docs and tests share them)
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Underlying:
    """One underlying: its nominal price, vol and how its options and shares trade."""

    root: str
    spot: float  # nominal starting price; the seed jitters it by ~2 %
    iv: float  # annualised vol: drives both the walk and option values
    etf: bool  # ETFs list daily expiries and quote options in pennies throughout
    strike_step: float  # strike increment for expiries up to ~5 weeks
    option_weight: float  # share of option prints
    equity_weight: float  # share of equity prints and quotes


UNDERLYINGS: Final[tuple[Underlying, ...]] = (
    Underlying("SPY", 590.0, 0.14, True, 1.0, 0.30, 0.20),
    Underlying("QQQ", 510.0, 0.19, True, 1.0, 0.15, 0.10),
    Underlying("IWM", 235.0, 0.21, True, 1.0, 0.06, 0.08),
    Underlying("AAPL", 230.0, 0.26, False, 2.5, 0.10, 0.12),
    Underlying("NVDA", 140.0, 0.48, False, 1.0, 0.14, 0.18),
    Underlying("TSLA", 340.0, 0.58, False, 2.5, 0.13, 0.15),
    Underlying("AMZN", 210.0, 0.33, False, 2.5, 0.06, 0.09),
    Underlying("MSFT", 420.0, 0.25, False, 2.5, 0.06, 0.08),
)

#: Option venues: OPRA participant ids (code, venue, share of background prints).
OPTION_VENUES: Final[tuple[tuple[str, str, float], ...]] = (
    ("A", "NYSE American Options", 0.06),
    ("B", "BOX Options", 0.03),
    ("C", "Cboe Options", 0.15),
    ("E", "Cboe EDGX Options", 0.05),
    ("H", "Nasdaq GEMX", 0.03),
    ("I", "Nasdaq ISE", 0.09),
    ("J", "Nasdaq MRX (ISE Mercury)", 0.02),
    ("M", "MIAX Options", 0.07),
    ("N", "NYSE Arca Options", 0.09),
    ("P", "MIAX Pearl Options", 0.06),
    ("Q", "Nasdaq Options Market", 0.08),
    ("T", "Nasdaq BX Options", 0.02),
    ("W", "Cboe C2 Options", 0.04),
    ("X", "Nasdaq PHLX", 0.12),
    ("Z", "Cboe BZX Options", 0.09),
)

#: Option trade conditions, OPRA Pillar style (code, Cond flags, meaning, share of
#: background prints).  Injected multi-leg patterns use the ML* codes; sweeps ISOI.
OPTION_CONDITIONS: Final[tuple[tuple[str, Cond, str, float], ...]] = (
    ("AUTO", Cond.NONE, "regular auto-electronic trade", 0.860),
    ("ISOI", Cond.ISO, "intermarket sweep order", 0.030),
    ("SLAN", Cond.AUCTION, "single-leg auction, non-ISO", 0.045),
    ("SLAI", Cond.AUCTION | Cond.ISO, "single-leg auction, ISO", 0.005),
    ("SLCN", Cond.NONE, "single-leg cross, non-ISO", 0.020),
    ("SLFT", Cond.FLOOR, "single-leg floor trade", 0.010),
    ("MLET", Cond.MULTI_LEG, "multi-leg auto-electronic trade", 0.015),
    ("MLAT", Cond.MULTI_LEG | Cond.AUCTION, "multi-leg auction", 0.0),
    ("MLCT", Cond.MULTI_LEG, "multi-leg cross", 0.0),
    ("MLFT", Cond.MULTI_LEG | Cond.FLOOR, "multi-leg floor trade", 0.0),
    ("MESL", Cond.MULTI_LEG, "multi-leg trade against single leg(s)", 0.010),
    ("TLET", Cond.MULTI_LEG | Cond.STOCK_OPTION, "stock-option auto-electronic trade", 0.005),
)

#: Equity venues: CTA/UTP participant ids from the engine venue table
#: (``engine/venues.py``: code, name, off-exchange) and the share of lit prints.
#: ``D`` is the FINRA ADF/TRFs: every off-exchange (dark pool, wholesaler) print.
_LIT_SHARE: Final = (
    ("Q", 0.22),
    ("N", 0.12),
    ("P", 0.10),
    ("Z", 0.12),
    ("Y", 0.04),
    ("K", 0.10),
    ("J", 0.03),
    ("V", 0.05),
    ("U", 0.08),
    ("X", 0.02),
    ("B", 0.04),
    ("A", 0.08),
    ("D", 0.0),
)
EQUITY_VENUES: Final[tuple[tuple[str, str, bool, float], ...]] = tuple(
    (code, VENUES[code].name, VENUES[code].off_exchange, share) for code, share in _LIT_SHARE
)

#: Equity sale conditions, CTA/UTP codes space separated, flags from the engine's
#: table (``venues.flags_from_codes``): ``@`` regular, ``F`` intermarket sweep, ``I``
#: odd lot, ``4`` derivatively priced, ``W`` average price, ``Z`` sold out of
#: sequence, ``L`` sold last (late report).  Index is ``2 * base + odd_lot`` with base
#: 0 regular, 1 ISO, 2 derivatively priced, 3 average price, 4 out of sequence, 5 late.
_EQ_COND_CODES: Final = (
    ("@", "regular sale"),
    ("@ I", "regular sale, odd lot"),
    ("@ F", "intermarket sweep"),
    ("@ F I", "intermarket sweep, odd lot"),
    ("@ 4", "derivatively priced"),
    ("@ 4 I", "derivatively priced, odd lot"),
    ("W", "average price"),
    ("W I", "average price, odd lot"),
    ("Z", "sold out of sequence"),
    ("Z I", "sold out of sequence, odd lot"),
    ("L", "sold last (late report)"),
    ("L I", "sold last (late report), odd lot"),
)
EQUITY_CONDITIONS: Final[tuple[tuple[str, Cond, str], ...]] = tuple(
    (code, Cond(flags_of(code)), meaning) for code, meaning in _EQ_COND_CODES
)

PATTERN_KINDS: Final = (
    "sweep",
    "block",
    "spread",
    "straddle",
    "roll",
    "repeat",
    "equity_block",
    "equity_accumulation",
)

#: Golden sweeps (a sweep of >= $1M on a contract whose open interest is below its
#: size) per second of event time in the realistic profile, times ``pattern_scale``.
#: Drawn from their own generator, after the other kinds, so adding them left every
#: other pattern of a seed where it was.
GOLDEN_SWEEP_RATE: Final = 0.02
#: Share of contracts with thin open interest (0-300): far strikes and fresh listings.
THIN_OI_SHARE: Final = 0.04

#: Columns of :attr:`SyntheticMarket.patterns` (one row per injected pattern).
PATTERN_SCHEMA: Final = pl.Schema(
    {
        "pattern_id": pl.Int64,  # 0, 1, 2 ... in injection order
        "kind": pl.String,  # one of PATTERN_KINDS, or golden_sweep
        "ts_start": pl.Int64,  # first print ts
        "ts_end": pl.Int64,  # last print ts (may be after now_ns: still pending)
        "root": pl.String,  # underlying / ticker
        "symbols": pl.String,  # distinct symbols, comma-joined, leg order
        "legs": pl.Int64,  # distinct contracts (1 for single-contract patterns)
        "n_prints": pl.Int64,  # prints the pattern emits
        "total_size": pl.Int64,  # contracts (options) or shares (equities)
        "venues": pl.String,  # distinct venue codes, comma-joined, first-use order
        "iso": pl.Boolean,  # prints carry the ISO flag
        "multi_leg": pl.Boolean,  # prints carry the MULTI_LEG flag
        "intent": pl.String,  # ask (at/above ask), bid, mid, legs, level
        "print_ts": pl.List(pl.Int64),  # ts of every print, aligned with print_symbols
        "print_symbols": pl.List(pl.String),  # symbol of every print
    }
)


@dataclass(frozen=True, slots=True)
class ProfileParams:
    """Rates of one profile (events per second of event time)."""

    option_prints_per_s: float  # background option prints (patterns come on top)
    nbbo_per_s: float  # background NBBO updates, on top of the quotes that lead prints
    lead_quote_prob: float  # chance a background print gets a fresh quote just before it
    equity_prints_per_s: float
    equity_quotes_per_s: float  # background equity quotes, on top of leading quotes
    pattern_scale: float  # multiplies BASE_PATTERN_RATES
    pattern_rates: dict[str, float] = field(default_factory=dict)  # filled from the scale

    def rate(self, kind: str) -> float:
        """Injected patterns of ``kind`` per second."""
        return self.pattern_rates.get(kind, BASE_PATTERN_RATES[kind] * self.pattern_scale)


#: Patterns per second of event time in the realistic profile (one every ~3 s overall).
BASE_PATTERN_RATES: Final[dict[str, float]] = {
    "sweep": 0.10,
    "block": 0.06,
    "spread": 0.04,
    "straddle": 0.03,
    "roll": 0.03,
    "repeat": 0.02,
    "equity_block": 0.05,
    "equity_accumulation": 0.025,
}

PROFILES: Final[dict[str, ProfileParams]] = {
    "realistic": ProfileParams(40.0, 100.0, 0.95, 30.0, 60.0, 1.0),
    "active": ProfileParams(400.0, 700.0, 0.95, 250.0, 500.0, 3.0),
    "firehose": ProfileParams(60_000.0, 72_000.0, 0.92, 15_000.0, 30_000.0, 20.0),
}

# Placement modes of a generated option print against the quote in force.
_AA, _A, _MID, _B, _BB, _INSIDE = range(6)
_OPT_MODE_CDF: Final = np.array([0.04, 0.33, 0.20, 0.30, 0.04, 0.09]).cumsum()
# Equity price modes.
_E_BID, _E_ASK, _E_INSIDE, _E_MID, _E_SUB_BUY, _E_SUB_SELL, _E_LEVEL = range(7)
_LIT_MODE_CDF: Final = np.array([0.42, 0.42, 0.16, 0.0, 0.0, 0.0, 0.0]).cumsum()
_TRF_MODE_CDF: Final = np.array([0.20, 0.20, 0.05, 0.20, 0.18, 0.17, 0.0]).cumsum()
_REPEAT_MODE_CDF: Final = np.array([0.1, 0.8, 0.1]).cumsum()  # AA, A, MID
_TRF_SHARE: Final = 0.42  # share of equity prints reported off-exchange
_OPT_LEAD_GAP_NS: Final = 40 * NS_PER_MS  # a leading quote lands up to 40 ms before its print
_EQ_LEAD_GAP_NS: Final = 50 * NS_PER_MS
_EQ_LEAD_PROB: Final = 0.6
_P_LOCKED: Final = 0.005  # option quotes: bid == ask
_P_CROSSED: Final = 0.0012  # option quotes: bid > ask
_P_EQ_LOCKED: Final = 0.002


def _cdf(weights: np.ndarray | list[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w)
    return c / c[-1]


_OPT_VENUE_CODES: Final = [v[0] for v in OPTION_VENUES]
_OPT_VENUE_CDF: Final = _cdf([v[2] for v in OPTION_VENUES])
_OPT_VENUE_SERIES: Final = pl.Series("exchange", _OPT_VENUE_CODES, dtype=pl.String)
_OPT_COND_CODES: Final = [c[0] for c in OPTION_CONDITIONS]
_OPT_COND_FLAGS: Final = np.array([int(c[1]) for c in OPTION_CONDITIONS], dtype=np.int32)
_OPT_COND_CDF: Final = _cdf([c[3] for c in OPTION_CONDITIONS])
_OPT_COND_SERIES: Final = pl.Series("conditions", _OPT_COND_CODES, dtype=pl.String)
_OC: Final = {code: i for i, code in enumerate(_OPT_COND_CODES)}
_OV: Final = {code: i for i, code in enumerate(_OPT_VENUE_CODES)}
_COMPLEX_VENUES: Final = np.array([_OV[c] for c in ("C", "I", "X", "N", "A", "M", "W")])

_EQ_VENUE_CODES: Final = [v[0] for v in EQUITY_VENUES]
_EQ_VENUE_SERIES: Final = pl.Series("venue", _EQ_VENUE_CODES, dtype=pl.String)
_EQ_OFF_EXCHANGE: Final = np.array([v[2] for v in EQUITY_VENUES], dtype=bool)
_EQ_LIT_IDX: Final = np.array([i for i, v in enumerate(EQUITY_VENUES) if not v[2]])
_EQ_LIT_CDF: Final = _cdf([EQUITY_VENUES[i][3] for i in _EQ_LIT_IDX])
_EQ_TRF: Final = next(i for i, v in enumerate(EQUITY_VENUES) if v[2])
_EQ_COND_SERIES: Final = pl.Series("conditions", [c[0] for c in EQUITY_CONDITIONS], pl.String)
_EQ_COND_FLAGS: Final = np.array([int(c[1]) for c in EQUITY_CONDITIONS], dtype=np.int32)

_ROOTS: Final = [u.root for u in UNDERLYINGS]
_ROOT_SERIES: Final = pl.Series("symbol", _ROOTS, dtype=pl.String)
_EQ_SYM_CDF: Final = _cdf([u.equity_weight for u in UNDERLYINGS])


# ---------------------------------------------------------------------------
# Time helpers
# ---------------------------------------------------------------------------
def _to_ns(dt: datetime) -> int:
    """Exact ns since the epoch of an aware datetime (no float rounding)."""
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1_000


def start_ns_from_config(start: str, now_ns: int) -> int:
    """Event-time start from the ``synthetic.start`` knob.

    ``"now"`` is ``now_ns`` floored to the second (so a session's ticks land on round
    times); anything else is ISO-8601 (``Z`` accepted; a time without an offset is
    taken as UTC, the engine's clock).  Raises ``ValueError`` on anything else.
    """
    text = start.strip()
    if text.lower() == "now":
        return now_ns - now_ns % NS_PER_S
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return _to_ns(dt)


def event_date(ts_ns: int) -> date:
    """The America/New_York calendar date of an event time: what "0DTE" refers to."""
    secs = ts_ns // NS_PER_S
    return (_EPOCH + timedelta(seconds=secs)).astimezone(NY).date()


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def _monthlies_after(d: date, min_days: int) -> date:
    """First standard monthly expiry (third Friday) at least ``min_days`` after ``d``."""
    y, m = d.year, d.month
    while True:
        e = _third_friday(y, m)
        if (e - d).days >= min_days:
            return e
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def _next_business_days(d: date, n: int) -> list[date]:
    out: list[date] = []
    cur = d
    while len(out) < n:
        cur += timedelta(days=1)
        if cur.weekday() < 5:
            out.append(cur)
    return out


def _expiries(d: date, etf: bool) -> list[date]:
    """Listed expiries on event date ``d``.

    ETFs: daily (0DTE = ``d`` itself, then the next two business days), the next two
    Fridays, the next monthly, a quarterly-ish monthly >= 60 DTE and a far one >= 150
    DTE.  Single names: weekly Fridays (0DTE when ``d`` is a Friday), a monthly and one
    >= 60 DTE.
    """
    first_friday = d + timedelta(days=(4 - d.weekday()) % 7)
    fridays = [first_friday + timedelta(days=7 * k) for k in range(3)]
    if etf:
        out = {d, *_next_business_days(d, 2), fridays[0], fridays[1]}
        out |= {_monthlies_after(d, 15), _monthlies_after(d, 60), _monthlies_after(d, 150)}
    else:
        out = {*fridays, _monthlies_after(d, 22), _monthlies_after(d, 60)}
    return sorted(out)


def _osi(root: str, expiry: date, right: str, strike_millis: int) -> str:
    return f"{root:<6}{expiry:%y%m%d}{right}{strike_millis:08d}"


# ---------------------------------------------------------------------------
# Small vector helpers
# ---------------------------------------------------------------------------
def _sample(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn from a normalised cdf by uniforms ``u`` (inverse transform)."""
    idx = np.searchsorted(cdf, u * cdf[-1], side="right")
    return np.minimum(idx, len(cdf) - 1)


def _quote_in_force(
    q_inst: np.ndarray,
    q_ts: np.ndarray,
    p_inst: np.ndarray,
    p_ts: np.ndarray,
    t0: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each print, the index of this tick's latest quote of its instrument at or
    before it (ties on ts: the later one in frame order, as the engine's seq does).

    Returns (quote index or -1, sort order of quotes by (instrument, ts), mask of the
    last quote per instrument within that order) so callers can also roll state forward.
    """
    qkey = (q_inst.astype(np.int64) << _KEY_SHIFT) | (q_ts - t0)
    order = np.argsort(qkey, kind="stable")
    skey = qkey[order]
    pkey = (p_inst.astype(np.int64) << _KEY_SHIFT) | (p_ts - t0)
    j = np.searchsorted(skey, pkey, side="right") - 1
    jj = np.maximum(j, 0)
    hit = (j >= 0) & ((skey[jj] >> _KEY_SHIFT) == p_inst) if len(skey) else j >= 0
    qidx = np.where(hit, order[jj] if len(order) else 0, -1)
    inst_sorted = skey >> _KEY_SHIFT
    last = np.empty(len(skey), dtype=bool)
    if len(skey):
        last[:-1] = inst_sorted[1:] != inst_sorted[:-1]
        last[-1] = True
    return qidx, order, last


class _Pending:
    """Scheduled pattern prints not yet due: a struct of arrays released by ts."""

    def __init__(self, dtypes: dict[str, type]) -> None:
        self._cols: dict[str, np.ndarray] = {k: np.empty(0, dtype=t) for k, t in dtypes.items()}

    def push(self, **cols: np.ndarray | list[int] | int) -> None:
        n = len(np.atleast_1d(cols["ts"]))
        for k, cur in self._cols.items():
            add = np.broadcast_to(np.asarray(cols[k], dtype=cur.dtype), (n,))
            self._cols[k] = np.concatenate([cur, add])

    def pop_before(self, t1: int) -> dict[str, np.ndarray]:
        due = self._cols["ts"] < t1
        out = {k: v[due] for k, v in self._cols.items()}
        if due.any():
            self._cols = {k: v[~due] for k, v in self._cols.items()}
        return out

    def __len__(self) -> int:
        return len(self._cols["ts"])


_OPT_PENDING: Final = {
    "ts": np.int64,
    "c": np.int64,
    "size": np.int64,
    "venue": np.int64,
    "cond": np.int64,
    "mode": np.int64,
}
_EQ_PENDING: Final = {
    "ts": np.int64,
    "sym": np.int64,
    "size": np.int64,
    "venue": np.int64,
    "cond": np.int64,
    "mode": np.int64,
    "level": np.int64,
}


# ---------------------------------------------------------------------------
# The market
# ---------------------------------------------------------------------------
class SyntheticMarket:
    """A deterministic synthetic US options + equities market, one tick at a time.

    ``next_batch()`` covers event time ``[now_ns, now_ns + tick)`` for the four raw
    streams (frames with exactly ``events.ingest_polars_schema`` columns, sorted by
    ts) and advances ``now_ns``; the batch's watermark is the end of the tick.
    """

    def __init__(self, profile: str, seed: int, start_ns: int, tick_ms: int = 100) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown synthetic profile {profile!r}; known: {', '.join(PROFILES)}")
        if not 1 <= tick_ms <= 10_000:
            raise ValueError(f"tick_ms must be from 1 to 10000, got {tick_ms}")
        self.profile = profile
        self.params = PROFILES[profile]
        self.seed = seed
        self.start_ns = start_ns
        self._tick_ns = tick_ms * NS_PER_MS
        self._tick_s = tick_ms / 1000.0
        self._t = start_ns
        root = np.random.default_rng(seed)
        # Separate streams: the price path depends on the seed only, not the profile.
        self._g_spot, self._g_opt, self._g_eq, self._g_pat = root.spawn(4)

        n_u = len(UNDERLYINGS)
        self._iv_u = np.array([u.iv for u in UNDERLYINGS])
        self._etf_u = np.array([u.etf for u in UNDERLYINGS])
        jitter = np.exp(0.02 * self._g_spot.standard_normal(n_u))
        self._spot = np.array([u.spot for u in UNDERLYINGS]) * jitter
        self._sig_tick = self._iv_u * math.sqrt(self._tick_s / _TRADING_YEAR_S)
        self.event_date = event_date(start_ns)
        self._build_chain()

        n_c = self.n_contracts
        self._st_bid = np.zeros(n_c, dtype=np.int64)  # last quote per contract (cents)
        self._st_ask = np.zeros(n_c, dtype=np.int64)
        self._st_ts = np.full(n_c, -1, dtype=np.int64)  # -1: never quoted
        self._est_bid = np.zeros(n_u, dtype=np.int64)  # last equity quote (1e-4 $)
        self._est_ask = np.zeros(n_u, dtype=np.int64)
        self._est_ts = np.full(n_u, -1, dtype=np.int64)

        self._g_gold = np.random.default_rng([seed, 0x601D])  # golden sweeps
        self._build_open_interest()

        self._opt_pending = _Pending(_OPT_PENDING)
        self._eq_pending = _Pending(_EQ_PENDING)
        self._pattern_rows: list[dict[str, object]] = []
        self._patterns_cache = pl.DataFrame(schema=PATTERN_SCHEMA)
        self._refresh_contracts(self._t)

    # -- public -----------------------------------------------------------
    @property
    def now_ns(self) -> int:
        """Start of the next batch (= the last batch's watermark)."""
        return self._t

    @property
    def tick_ns(self) -> int:
        """Event time covered by each batch."""
        return self._tick_ns

    @property
    def n_contracts(self) -> int:
        return len(self._symbols)

    @property
    def chain(self) -> pl.DataFrame:
        """The fixed option chain: symbol, root, expiry, right, strike (one row each)."""
        return pl.DataFrame(
            {
                "symbol": self._sym_series,
                "root": _ROOT_SERIES.gather(self._c_root.astype(np.uint32)),
                "expiry": pl.Series(self._c_expiry, dtype=pl.Date),
                "right": np.where(self._c_sign > 0, "C", "P"),
                "strike": self._c_strike,
            }
        )

    @property
    def open_interest(self) -> pl.DataFrame:
        """Open interest per contract as of the event date (symbol, as_of,
        open_interest): what ``Packets.set_open_interest`` / ``flow.open_interest_path``
        take.  Fixed for the session (exchanges publish it once a day)."""
        return pl.DataFrame(
            {
                "symbol": self._sym_series,
                "as_of": pl.Series([self.event_date] * self.n_contracts, dtype=pl.Date),
                "open_interest": self._c_oi,
            }
        )

    @property
    def spots(self) -> dict[str, float]:
        """Current underlying prices (the walk's value for the last generated tick)."""
        return {u.root: float(s) for u, s in zip(UNDERLYINGS, self._spot, strict=True)}

    @property
    def patterns(self) -> pl.DataFrame:
        """Ground truth of every pattern injected so far (``PATTERN_SCHEMA``).

        A pattern is recorded when it is scheduled, so its last prints may still be
        pending (``ts_end >= now_ns``); compare only rows with ``ts_end < now_ns``
        against frames already generated.
        """
        built = self._patterns_cache.height
        if built < len(self._pattern_rows):  # append only the new rows: O(new), not O(all)
            new = pl.DataFrame(self._pattern_rows[built:], schema=PATTERN_SCHEMA)
            self._patterns_cache = pl.concat([self._patterns_cache, new], rechunk=False)
        return self._patterns_cache

    def next_batch(self) -> FeedBatch:
        """Generate ``[now_ns, now_ns + tick)`` for all four raw streams and advance."""
        t0 = self._t
        t1 = t0 + self._tick_ns
        z = self._g_spot.standard_normal(len(self._spot))
        self._spot = self._spot * np.exp(self._sig_tick * z - 0.5 * self._sig_tick**2)
        self._refresh_contracts(t0)
        self._inject_patterns(t0, t1)
        op, oq = self._options(t0, t1)
        ep, eq = self._equities(t0, t1)
        self._t = t1
        return FeedBatch(
            frames={OPTIONS_PRINTS: op, OPTIONS_NBBO: oq, EQUITIES_PRINTS: ep, EQUITIES_QUOTES: eq},
            watermark=t1,
        )

    # -- chain ------------------------------------------------------------
    def _build_chain(self) -> None:
        """Fix the listed contracts from the starting spots (symbols stay stable)."""
        d = self.event_date
        syms: list[str] = []
        root_i: list[int] = []
        expiry: list[date] = []
        strike_m: list[int] = []
        sign: list[float] = []
        dte: list[int] = []
        # (root index, expiry, first contract, strikes in millis): call at base + 2k,
        # put at base + 2k + 1, so neighbours and the other right are index arithmetic.
        self._groups: list[tuple[int, date, int, np.ndarray]] = []
        for ui, u in enumerate(UNDERLYINGS):
            for exp in _expiries(d, u.etf):
                days = (exp - d).days
                step = u.strike_step if days <= 35 else 5.0
                n_side = (30 if days == 0 else 20) if u.etf else 12
                step_m = round(step * 1000)
                centre = round(self._spot[ui] * 1000 / step_m) * step_m
                ks = centre + step_m * np.arange(-n_side, n_side + 1)
                ks = ks[ks > 0]
                self._groups.append((ui, exp, len(syms), ks))
                for k in ks.tolist():
                    for right, sg in (("C", 1.0), ("P", -1.0)):
                        syms.append(_osi(u.root, exp, right, k))
                        root_i.append(ui)
                        expiry.append(exp)
                        strike_m.append(k)
                        sign.append(sg)
                        dte.append(days)
        self._symbols = syms
        self._sym_series = pl.Series("symbol", syms, dtype=pl.String)
        self._c_root = np.array(root_i, dtype=np.int64)
        self._c_expiry = expiry
        self._c_strike = np.array(strike_m, dtype=np.float64) / 1000.0
        self._c_sign = np.array(sign)
        self._c_iv = self._iv_u[self._c_root]
        self._c_etf = self._etf_u[self._c_root]
        dte_a = np.array(dte)
        close = {
            e: _to_ns(datetime.combine(e, time(16, 0), tzinfo=NY)) for e in sorted(set(expiry))
        }
        self._c_exp_ns = np.array([close[e] for e in expiry], dtype=np.int64)
        # Short-dated contracts trade most; 0DTE most of all.
        exp_w = np.select(
            [dte_a == 0, dte_a <= 2, dte_a <= 9, dte_a <= 35], [3.0, 1.6, 1.2, 0.7], 0.25
        )
        root_w = np.array([u.option_weight for u in UNDERLYINGS])
        # Normalise per root so a root's share does not depend on its chain's size.
        per_root = np.bincount(self._c_root, weights=exp_w, minlength=len(UNDERLYINGS))
        self._c_base_w = root_w[self._c_root] * exp_w / per_root[self._c_root] * 100.0

    def _build_open_interest(self) -> None:
        """Deterministic open interest per contract (seed and start date only, its own
        generator): lognormal around a level that follows the contract's activity
        weight at the start (near the money and short-dated carry most), and a thin
        tail (``THIN_OI_SHARE`` of contracts: 0-300) where opening trades show."""
        g = np.random.default_rng([self.seed, 0x0151])
        s = self._spot[self._c_root]
        t_years = np.maximum((self._c_exp_ns - self.start_ns) / _YEAR_NS, _WEIGHT_T_FLOOR)
        mw = np.log(self._c_strike / s) / (self._c_iv * np.sqrt(t_years))
        w = self._c_base_w * (np.exp(-0.5 * (mw / 1.2) ** 2) + 0.02)
        level = 5_000.0 * w / w.mean()
        oi = np.rint(np.exp(g.normal(np.log(np.maximum(level, 1.0)), 0.9)))
        thin = g.random(len(oi)) < THIN_OI_SHARE
        oi = np.where(thin, g.integers(0, 301, len(oi)), oi)
        self._c_oi = np.clip(oi, 0, 400_000).astype(np.int64)

    def _refresh_contracts(self, t0: int) -> None:
        """Theoretical values, spreads and activity weights for every contract at t0."""
        s = self._spot[self._c_root]
        k = self._c_strike
        t_years = np.maximum((self._c_exp_ns - t0) / _YEAR_NS, _T_FLOOR_YEARS)
        sd = self._c_iv * np.sqrt(t_years)
        lm = np.log(k / s)
        m = lm / sd
        intrinsic = np.maximum(self._c_sign * (s - k), 0.0)
        shape = 0.75 * np.exp(-0.5 * m * m) + 0.25 * np.exp(-np.abs(m))
        theo = np.maximum(intrinsic + 0.4 * s * sd * shape, 0.03)
        self._theo_c = theo * 100.0
        spread = 0.01 + 0.012 * theo + 0.006 * np.minimum(np.abs(m), 5.0) + 0.03 * np.sqrt(t_years)
        self._spread_c = spread * np.where(self._c_etf, 60.0, 100.0)
        mw = lm / (self._c_iv * np.sqrt(np.maximum(t_years, _WEIGHT_T_FLOOR)))
        w = self._c_base_w * (np.exp(-0.5 * (mw / 1.2) ** 2) + 0.02)
        self._w_cdf = _cdf(w)
        self._qw_cdf = _cdf(np.sqrt(w))

    def _tick_c(self, c: np.ndarray, cents: np.ndarray) -> np.ndarray:
        """Quote increment in cents: pennies for ETFs and under $3, nickels above."""
        return np.where(self._c_etf[c] | (cents < 300), 1, 5).astype(np.int64)

    # -- options ----------------------------------------------------------
    def _options(self, t0: int, t1: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        g = self._g_opt
        p = self.params
        n = int(g.poisson(p.option_prints_per_s * self._tick_s))
        c = _sample(self._w_cdf, g.random(n))
        ts = g.integers(t0, t1, n, dtype=np.int64)
        size = np.minimum(1 + np.floor(g.lognormal(0.9, 1.2, n)).astype(np.int64), 3000)
        venue = _sample(_OPT_VENUE_CDF, g.random(n))
        cond = _sample(_OPT_COND_CDF, g.random(n))
        mode = _sample(_OPT_MODE_CDF, g.random(n))
        # ISO orders are aggressive by construction: never at the midpoint.
        iso = (_OPT_COND_FLAGS[cond] & int(Cond.ISO)) != 0
        mode = np.where(iso & ((mode == _MID) | (mode == _INSIDE)), _A, mode)
        lead = g.random(n) < p.lead_quote_prob

        due = self._opt_pending.pop_before(t1)
        if len(due["ts"]):
            c = np.concatenate([c, due["c"]])
            ts = np.concatenate([ts, due["ts"]])
            size = np.concatenate([size, due["size"]])
            venue = np.concatenate([venue, due["venue"]])
            cond = np.concatenate([cond, due["cond"]])
            mode = np.concatenate([mode, due["mode"]])
            lead = np.concatenate([lead, np.ones(len(due["ts"]), dtype=bool)])

        # Quotes: one just before most prints, plus background updates across the chain.
        lead_i = np.flatnonzero(lead)
        n_bg = int(g.poisson(p.nbbo_per_s * self._tick_s))
        qc = np.concatenate([c[lead_i], _sample(self._qw_cdf, g.random(n_bg))])
        gap = g.integers(0, _OPT_LEAD_GAP_NS, len(lead_i), dtype=np.int64)
        qts = np.concatenate(
            [np.maximum(ts[lead_i] - gap, t0), g.integers(t0, t1, n_bg, dtype=np.int64)]
        )
        n_q = len(qts)
        theo = self._theo_c[qc]
        tick = self._tick_c(qc, theo)
        nt = np.maximum(np.rint(self._spread_c[qc] * g.uniform(0.8, 1.25, n_q) / tick), 1)
        nt = nt.astype(np.int64)
        mid = theo * (1.0 + 0.002 * g.standard_normal(n_q))
        bid = np.maximum(np.floor((mid - nt * tick / 2.0) / tick).astype(np.int64) * tick, 1)
        ask = bid + nt * tick
        u = g.random(n_q)
        bid = np.where(u < _P_LOCKED, ask, bid)  # locked: bid lifted to the ask
        bid = np.where((u >= _P_LOCKED) & (u < _P_LOCKED + _P_CROSSED), ask + tick, bid)
        bid_size = 1 + np.floor(g.exponential(60.0, n_q)).astype(np.int64)
        ask_size = 1 + np.floor(g.exponential(60.0, n_q)).astype(np.int64)

        # The quote in force for every print: this tick's, else the last one carried over.
        qidx, order, last = _quote_in_force(qc, qts, c, ts, t0)
        hit = qidx >= 0
        qi = np.maximum(qidx, 0)
        fb = np.where(hit, bid[qi] if n_q else 0, self._st_bid[c])
        fa = np.where(hit, ask[qi] if n_q else 0, self._st_ask[c])
        quoted = hit | (self._st_ts[c] >= 0)
        price = self._price_options(c, mode, fb, fa, quoted, g)

        # Carry the last quote of each contract into the next tick.
        li = order[last]
        self._st_bid[qc[li]] = bid[li]
        self._st_ask[qc[li]] = ask[li]
        self._st_ts[qc[li]] = qts[li]

        po = np.argsort(ts, kind="stable")
        prints = pl.DataFrame(
            {
                "ts": ts[po],
                "symbol": self._sym_series.gather(c[po].astype(np.uint32)),
                "price": price[po] / 100.0,
                "size": size[po],
                "exchange": _OPT_VENUE_SERIES.gather(venue[po].astype(np.uint32)),
                "conditions": _OPT_COND_SERIES.gather(cond[po].astype(np.uint32)),
                "flags": _OPT_COND_FLAGS[cond[po]],
            }
        )
        qo = np.argsort(qts, kind="stable")
        quotes = pl.DataFrame(
            {
                "ts": qts[qo],
                "symbol": self._sym_series.gather(qc[qo].astype(np.uint32)),
                "bid": bid[qo] / 100.0,
                "ask": ask[qo] / 100.0,
                "bid_size": bid_size[qo],
                "ask_size": ask_size[qo],
            }
        )
        return prints, quotes

    def _price_options(
        self,
        c: np.ndarray,
        mode: np.ndarray,
        bid: np.ndarray,
        ask: np.ndarray,
        quoted: np.ndarray,
        g: np.random.Generator,
    ) -> np.ndarray:
        """Trade price in cents for each print's placement mode against its quote."""
        n = len(c)
        tick = self._tick_c(c, ask)
        through = tick * (1 + (g.random(n) < 0.3))
        steps = (ask - bid) // np.maximum(tick, 1) - 1  # ticks strictly inside the spread
        inside = bid + tick * (1 + np.floor(g.random(n) * np.maximum(steps, 1)).astype(np.int64))
        mid = (bid + ask) // 2
        price = np.select(
            [
                mode == _AA,
                mode == _A,
                mode == _MID,
                mode == _B,
                mode == _BB,
            ],
            [ask + through, ask, mid, bid, bid - through],
            np.where(steps >= 1, inside, mid),
        )
        # No quote ever seen: trade near the theoretical value.
        theo = self._theo_c[c]
        t_theo = self._tick_c(c, theo)
        no_quote = np.maximum(np.rint(theo / t_theo).astype(np.int64) * t_theo, 1)
        price = np.where(quoted, price, no_quote)
        # A print below the bid cannot go under a penny: it stays at the bid.
        return np.where(price < 1, np.maximum(bid, 1), price)

    # -- equities ---------------------------------------------------------
    def _equities(self, t0: int, t1: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        g = self._g_eq
        p = self.params
        n = int(g.poisson(p.equity_prints_per_s * self._tick_s))
        sym = _sample(_EQ_SYM_CDF, g.random(n))
        ts = g.integers(t0, t1, n, dtype=np.int64)
        trf = g.random(n) < _TRF_SHARE
        venue = np.where(trf, _EQ_TRF, _EQ_LIT_IDX[_sample(_EQ_LIT_CDF, g.random(n))])
        odd = g.random(n) < 0.35
        size = np.where(odd, g.integers(1, 100, n), 100 * g.geometric(0.45, n)).astype(np.int64)
        mode = np.where(
            trf,
            _sample(_TRF_MODE_CDF, g.random(n)),
            _sample(_LIT_MODE_CDF, g.random(n)),
        )
        u = g.random(n)
        # ISO on lit venues; derivatively priced / average price on the TRF; a few
        # out-of-sequence and late reports anywhere (same draw: the rest of the
        # market does not move when these rates change)
        base = np.select(
            [
                ~trf & (u < 0.05),
                trf & (u < 0.004),
                trf & (u < 0.008),
                (u >= 0.990) & (u < 0.994),
                u >= 0.994,
            ],
            [1, 2, 3, 4, 5],
            0,
        )
        level = np.zeros(n, dtype=np.int64)
        lead = g.random(n) < _EQ_LEAD_PROB

        due = self._eq_pending.pop_before(t1)
        if len(due["ts"]):
            sym = np.concatenate([sym, due["sym"]])
            ts = np.concatenate([ts, due["ts"]])
            venue = np.concatenate([venue, due["venue"]])
            size = np.concatenate([size, due["size"]])
            mode = np.concatenate([mode, due["mode"]])
            base = np.concatenate([base, due["cond"]])
            level = np.concatenate([level, due["level"]])
            lead = np.concatenate([lead, np.ones(len(due["ts"]), dtype=bool)])
        cond = 2 * base + (size < 100)

        lead_i = np.flatnonzero(lead)
        n_bg = int(g.poisson(p.equity_quotes_per_s * self._tick_s))
        qs = np.concatenate([sym[lead_i], _sample(_EQ_SYM_CDF, g.random(n_bg))])
        gap = g.integers(0, _EQ_LEAD_GAP_NS, len(lead_i), dtype=np.int64)
        qts = np.concatenate(
            [np.maximum(ts[lead_i] - gap, t0), g.integers(t0, t1, n_bg, dtype=np.int64)]
        )
        n_q = len(qts)
        spread_c = 1 + (g.random(n_q) < 0.30) + (g.random(n_q) < 0.08)
        mid_c = self._spot[qs] * 100.0
        bid = np.rint(mid_c - spread_c / 2.0).astype(np.int64) * 100
        ask = bid + spread_c.astype(np.int64) * 100
        bid = np.where(g.random(n_q) < _P_EQ_LOCKED, ask, bid)
        bid_size = 100 * g.geometric(0.3, n_q).astype(np.int64)
        ask_size = 100 * g.geometric(0.3, n_q).astype(np.int64)

        qidx, order, last = _quote_in_force(qs, qts, sym, ts, t0)
        hit = qidx >= 0
        qi = np.maximum(qidx, 0)
        fb = np.where(hit, bid[qi] if n_q else 0, self._est_bid[sym])
        fa = np.where(hit, ask[qi] if n_q else 0, self._est_ask[sym])
        quoted = hit | (self._est_ts[sym] >= 0)
        price = self._price_equities(sym, mode, fb, fa, quoted, level, g)

        li = order[last]
        self._est_bid[qs[li]] = bid[li]
        self._est_ask[qs[li]] = ask[li]
        self._est_ts[qs[li]] = qts[li]

        po = np.argsort(ts, kind="stable")
        venue_o = venue[po]
        prints = pl.DataFrame(
            {
                "ts": ts[po],
                "symbol": _ROOT_SERIES.gather(sym[po].astype(np.uint32)),
                "price": price[po] / 10_000.0,
                "size": size[po],
                "venue": _EQ_VENUE_SERIES.gather(venue_o.astype(np.uint32)),
                "off_exchange": _EQ_OFF_EXCHANGE[venue_o],
                "conditions": _EQ_COND_SERIES.gather(cond[po].astype(np.uint32)),
                "flags": _EQ_COND_FLAGS[cond[po]],
            }
        )
        qo = np.argsort(qts, kind="stable")
        quotes = pl.DataFrame(
            {
                "ts": qts[qo],
                "symbol": _ROOT_SERIES.gather(qs[qo].astype(np.uint32)),
                "bid": bid[qo] / 10_000.0,
                "ask": ask[qo] / 10_000.0,
                "bid_size": bid_size[qo],
                "ask_size": ask_size[qo],
            }
        )
        return prints, quotes

    def _price_equities(
        self,
        sym: np.ndarray,
        mode: np.ndarray,
        bid: np.ndarray,
        ask: np.ndarray,
        quoted: np.ndarray,
        level: np.ndarray,
        g: np.random.Generator,
    ) -> np.ndarray:
        """Trade price in 1/10 000 $: lit at pennies, TRF also at sub-penny improvements."""
        n = len(sym)
        # Retail price improvement: 0.0001 .. 0.0049 $ inside the quote, never a whole cent.
        imp = np.minimum(g.integers(1, 50, n), np.maximum((ask - bid) // 2, 0))
        inside = np.where(ask - bid >= 200, bid + 100, np.where(g.random(n) < 0.5, bid, ask))
        price = np.select(
            [
                mode == _E_BID,
                mode == _E_ASK,
                mode == _E_INSIDE,
                mode == _E_MID,
                mode == _E_SUB_BUY,
                mode == _E_SUB_SELL,
            ],
            [bid, ask, inside, (bid + ask) // 2, ask - imp, bid + imp],
            np.clip(level, np.minimum(bid, ask), np.maximum(bid, ask)),
        )
        no_quote = np.rint(self._spot[sym] * 100.0).astype(np.int64) * 100
        return np.where(quoted, price, no_quote)

    # -- injected patterns -------------------------------------------------
    def _inject_patterns(self, t0: int, t1: int) -> None:
        """Schedule this tick's patterns (a few per tick at most, so a Python loop)."""
        g = self._g_pat
        for kind in PATTERN_KINDS:
            for _ in range(int(g.poisson(self.params.rate(kind) * self._tick_s))):
                ts0 = int(g.integers(t0, t1))
                getattr(self, f"_inject_{kind}")(g, ts0)
        gg = self._g_gold
        rate = GOLDEN_SWEEP_RATE * self.params.pattern_scale
        for _ in range(int(gg.poisson(rate * self._tick_s))):
            self._inject_golden_sweep(gg, int(gg.integers(t0, t1)))

    def _pick_contract(self, g: np.random.Generator) -> int:
        return int(_sample(self._w_cdf, g.random(1))[0])

    def _record(
        self,
        kind: str,
        root: str,
        ts: list[int],
        symbols: list[str],
        sizes: list[int],
        venues: list[str],
        *,
        iso: bool = False,
        multi_leg: bool = False,
        intent: str,
    ) -> None:
        order = sorted(range(len(ts)), key=lambda i: (ts[i], i))
        ts_s = [ts[i] for i in order]
        sym_s = [symbols[i] for i in order]
        self._pattern_rows.append(
            {
                "pattern_id": len(self._pattern_rows),
                "kind": kind,
                "ts_start": ts_s[0],
                "ts_end": ts_s[-1],
                "root": root,
                "symbols": ",".join(dict.fromkeys(symbols)),
                "legs": len(set(symbols)),
                "n_prints": len(ts),
                "total_size": int(sum(sizes)),
                "venues": ",".join(dict.fromkeys(venues)),
                "iso": iso,
                "multi_leg": multi_leg,
                "intent": intent,
                "print_ts": ts_s,
                "print_symbols": sym_s,
            }
        )

    def _push_options(
        self,
        kind: str,
        ts: np.ndarray,
        c: np.ndarray,
        size: np.ndarray,
        venue: np.ndarray,
        cond: np.ndarray,
        mode: np.ndarray,
        *,
        intent: str,
    ) -> None:
        n = len(ts)
        c = np.broadcast_to(c, (n,)).astype(np.int64)
        venue = np.broadcast_to(venue, (n,)).astype(np.int64)
        cond = np.broadcast_to(cond, (n,)).astype(np.int64)
        size = np.broadcast_to(size, (n,)).astype(np.int64)
        self._opt_pending.push(ts=ts, c=c, size=size, venue=venue, cond=cond, mode=mode)
        flags = _OPT_COND_FLAGS[cond]
        self._record(
            kind,
            UNDERLYINGS[int(self._c_root[c[0]])].root,
            ts.tolist(),
            [self._symbols[i] for i in c.tolist()],
            size.tolist(),
            [_OPT_VENUE_CODES[i] for i in venue.tolist()],
            iso=bool((flags & int(Cond.ISO)).all()),
            multi_leg=bool((flags & int(Cond.MULTI_LEG)).all()),
            intent=intent,
        )

    def _size_for(self, c: int, premium: float, n: int, lo: int, hi: int) -> int:
        """Contracts per print so that ``n`` prints make about ``premium`` dollars."""
        per = premium / (n * max(self._theo_c[c], 1.0))  # theo in cents: cents*100/100
        return int(np.clip(round(per), lo, hi))

    def _inject_sweep(self, g: np.random.Generator, ts0: int) -> None:
        """3-10 ISO prints, one contract, distinct venues, 50-300 ms, at/above the ask."""
        c = self._pick_contract(g)
        n = int(g.integers(3, 11))
        dur = int(g.integers(50, 301)) * NS_PER_MS
        ts = ts0 + np.sort(np.concatenate([[0, dur], g.integers(0, dur, n - 2)]))
        venue = g.choice(len(OPTION_VENUES), size=n, replace=False)
        premium = float(np.exp(g.normal(np.log(150_000.0), 0.8)))
        size = self._size_for(c, premium, n, 10, 3000)
        sizes = np.maximum((size * g.uniform(0.5, 1.5, n)).astype(np.int64), 1)
        mode = np.where(g.random(n) < 0.75, _A, _AA)
        self._push_options("sweep", ts, c, sizes, venue, _OC["ISOI"], mode, intent="ask")

    def _inject_golden_sweep(self, g: np.random.Generator, ts0: int) -> None:
        """A sweep of $1.15M+ at/above the ask on a thin contract (open interest below
        the sweep's size): 4-8 ISO prints, distinct venues, 50-300 ms."""
        cand = np.flatnonzero((self._c_oi <= 300) & (self._theo_c >= 200.0))
        if not len(cand):
            return
        c = int(cand[int(g.integers(0, len(cand)))])
        n = int(g.integers(4, 9))
        dur = int(g.integers(50, 301)) * NS_PER_MS
        ts = ts0 + np.sort(np.concatenate([[0, dur], g.integers(0, dur, n - 2)]))
        venue = g.choice(len(OPTION_VENUES), size=n, replace=False)
        premium = max(1_150_000.0, float(np.exp(g.normal(np.log(1_600_000.0), 0.3))))
        total = max(int(np.ceil(premium / self._theo_c[c])), int(self._c_oi[c]) + n)
        share = g.uniform(0.6, 1.4, n)
        sizes = np.maximum(np.floor(total * share / share.sum()).astype(np.int64), 1)
        sizes[0] += total - int(sizes.sum())  # exactly ``total``
        mode = np.where(g.random(n) < 0.75, _A, _AA)
        self._push_options("golden_sweep", ts, c, sizes, venue, _OC["ISOI"], mode, intent="ask")

    def _inject_block(self, g: np.random.Generator, ts0: int) -> None:
        """One large print (>= 500 contracts) on one venue."""
        c = self._pick_contract(g)
        premium = float(np.exp(g.normal(np.log(400_000.0), 0.8)))
        size = self._size_for(c, premium, 1, 500, 20_000)
        u = g.random()
        mode, intent = (_A, "ask") if u < 0.4 else (_B, "bid") if u < 0.7 else (_MID, "mid")
        cond = _OC[("AUTO", "SLCN", "SLAN")[int(g.integers(0, 3))]]
        venue = int(_sample(_OPT_VENUE_CDF, g.random(1))[0])
        ts = np.array([ts0], dtype=np.int64)
        self._push_options("block", ts, c, size, venue, cond, np.array([mode]), intent=intent)

    def _multi_leg(
        self,
        g: np.random.Generator,
        kind: str,
        ts0: int,
        legs: list[int],
        flagged_modes: list[int],
        size_within: tuple[int, int] | None = None,
    ) -> None:
        """Legs at one ts on one venue, same size; ~80 % flagged MULTI_LEG (ML* codes),
        the rest legged as plain single-leg prints (harder to find, as in real tape).
        ``size_within`` (lo, hi) clamps the drawn size (a roll's open/close evidence)."""
        n = len(legs)
        size = int(np.clip(round(np.exp(g.normal(np.log(200.0), 0.9))), 20, 5000))
        if size_within is not None and size_within[0] <= size_within[1]:
            size = int(np.clip(size, *size_within))
        venue = int(_COMPLEX_VENUES[int(g.integers(0, len(_COMPLEX_VENUES)))])
        ts = np.full(n, ts0, dtype=np.int64)
        if g.random() < 0.8:
            code = ("MLET", "MLET", "MLAT", "MLCT", "MLFT")[int(g.integers(0, 5))]
            modes = np.where(g.random(n) < 0.5, _MID, _INSIDE)
            self._push_options(
                kind, ts, np.array(legs), size, venue, _OC[code], modes, intent="legs"
            )
        else:
            modes = np.array(flagged_modes)
            self._push_options(
                kind, ts, np.array(legs), size, venue, _OC["AUTO"], modes, intent="legs"
            )

    def _group_of(self, c: int) -> tuple[int, int, int]:
        """(group index, base contract, strike position) of contract ``c``."""
        for gi, (_, _, base, ks) in enumerate(self._groups):
            if base <= c < base + 2 * len(ks):
                return gi, base, (c - base) // 2
        raise IndexError(c)  # pragma: no cover

    def _inject_spread(self, g: np.random.Generator, ts0: int) -> None:
        """Vertical: same root/expiry/right, strikes 1-3 steps apart."""
        c = self._pick_contract(g)
        gi, base, pos = self._group_of(c)
        n_k = len(self._groups[gi][3])
        d = int(g.integers(1, 4))
        other = pos + d if pos + d < n_k else pos - d
        c2 = base + 2 * other + (c - base) % 2
        self._multi_leg(g, "spread", ts0, [c, c2], [_A, _B])

    def _inject_straddle(self, g: np.random.Generator, ts0: int) -> None:
        """Call and put at the strike nearest spot, same expiry."""
        c = self._pick_contract(g)
        gi, base, _ = self._group_of(c)
        ui, _, _, ks = self._groups[gi]
        pos = int(np.argmin(np.abs(ks / 1000.0 - self._spot[ui])))
        self._multi_leg(g, "straddle", ts0, [base + 2 * pos, base + 2 * pos + 1], [_A, _A])

    def _inject_roll(self, g: np.random.Generator, ts0: int) -> None:
        """Close a near expiry, open a later one: same right, nearest strike."""
        c = self._pick_contract(g)
        gi, base, pos = self._group_of(c)
        ui, exp, _, ks = self._groups[gi]
        later = [i for i, grp in enumerate(self._groups) if grp[0] == ui and grp[1] > exp]
        if not later:  # already the farthest expiry: roll in from it instead
            later = [i for i, grp in enumerate(self._groups) if grp[0] == ui and grp[1] < exp]
        gj = later[int(g.integers(0, min(len(later), 3)))]
        _, _, base2, ks2 = self._groups[gj]
        pos2 = int(np.argmin(np.abs(ks2 - ks[pos])))
        c2 = base2 + 2 * pos2 + (c - base) % 2
        # a roll closes what is open and opens what is not: size within the closed
        # leg's open interest and above the opened one's (when the two allow it;
        # otherwise the roll is, on the tape, a calendar or diagonal)
        within = (int(self._c_oi[c2]) + 1, int(self._c_oi[c]))
        self._multi_leg(g, "roll", ts0, [c, c2], [_B, _A], size_within=within)

    def _inject_repeat(self, g: np.random.Generator, ts0: int) -> None:
        """6-15 hits on one contract spread over 1-3 minutes, mostly at the ask."""
        c = self._pick_contract(g)
        n = int(g.integers(6, 16))
        dur = int(g.integers(60, 181)) * NS_PER_S
        ts = ts0 + np.sort(np.concatenate([[0], g.integers(0, dur, n - 1)]))
        size = self._size_for(c, 40_000.0, 1, 20, 300)
        sizes = np.maximum((size * g.uniform(0.6, 1.6, n)).astype(np.int64), 1)
        venue = _sample(_OPT_VENUE_CDF, g.random(n))
        mode = _sample(_REPEAT_MODE_CDF, g.random(n))
        cond = np.where(g.random(n) < 0.2, _OC["ISOI"], _OC["AUTO"])
        self._push_options("repeat", ts, c, sizes, venue, cond, mode, intent="ask")

    def _push_equities(
        self,
        kind: str,
        ts: np.ndarray,
        sym: int,
        sizes: np.ndarray,
        mode: int,
        level: np.ndarray | int,
        intent: str,
    ) -> None:
        n = len(ts)
        self._eq_pending.push(
            ts=ts, sym=sym, size=sizes, venue=_EQ_TRF, cond=0, mode=mode, level=level
        )
        root = UNDERLYINGS[sym].root
        self._record(
            kind,
            root,
            ts.tolist(),
            [root] * n,
            sizes.tolist(),
            [_EQ_VENUE_CODES[_EQ_TRF]] * n,
            intent=intent,
        )

    def _inject_equity_block(self, g: np.random.Generator, ts0: int) -> None:
        """One off-exchange print of 10 000-200 000 shares at the midpoint."""
        sym = int(_sample(_EQ_SYM_CDF, g.random(1))[0])
        size = np.array([100 * int(g.integers(100, 2001))], dtype=np.int64)
        ts = np.array([ts0], dtype=np.int64)
        self._push_equities("equity_block", ts, sym, size, _E_MID, 0, "mid")

    def _inject_equity_accumulation(self, g: np.random.Generator, ts0: int) -> None:
        """8-25 TRF prints of 200-3 000 shares within a fraction of a cent of one level,
        over 30-90 s (clipped into the quote in force if the market walks away)."""
        sym = int(_sample(_EQ_SYM_CDF, g.random(1))[0])
        n = int(g.integers(8, 26))
        dur = int(g.integers(30, 91)) * NS_PER_S
        ts = ts0 + np.sort(np.concatenate([[0], g.integers(0, dur, n - 1)]))
        sizes = 100 * g.integers(2, 31, n).astype(np.int64)
        level = np.rint(self._spot[sym] * 10_000.0).astype(np.int64) + g.integers(-20, 21, n)
        self._push_equities("equity_accumulation", ts, sym, sizes, _E_LEVEL, level, "level")
