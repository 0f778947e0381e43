"""Configuration: typed sections, TOML + environment + CLI layering, strict validation.

Precedence (lowest to highest): built-in defaults < TOML file (``--config PATH`` or
the platformdirs user config dir) < ``ISLANDFLOW_<SECTION>__<KEY>`` environment
variables < CLI flags.  Every bad key or value stops start-up with one line that
names the key, the value and what is allowed (``ConfigError``), never a traceback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import platformdirs

APP_NAME = "islandflow"
ENV_PREFIX = "ISLANDFLOW_"

SEED_ETF_UNDERLYINGS = [
    *("SPY", "QQQ", "IWM", "DIA", "TLT", "GLD", "SLV", "XLF"),
    *("XLE", "XLV", "XLI", "XLP", "XLU", "XLY", "SMH", "ARKK"),
]


class ConfigError(ValueError):
    """A configuration problem, phrased as the one line the user sees."""


class Secret:
    """A credential: its repr and str are masked so it cannot leak into logs or screens.

    The value is read only through :meth:`reveal`, at the one place it is handed to
    a vendor SDK.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = str(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    def __str__(self) -> str:
        return "***" if self._value else ""

    def __reduce__(self) -> tuple[Any, tuple[str]]:  # the engine process gets it by pickle
        return (Secret, (self._value,))

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


def knob(
    default: Any,
    doc: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    env: str | None = None,
    secret: bool = False,
) -> Any:
    """A config key: default, one-line doc and the constraints validation enforces.

    ``secret`` keys (API keys) are held as :class:`Secret`, masked in every repr and
    printout, and left out of ``Config.digest`` and anything a session records.
    """
    meta = {"doc": doc, "min": min, "max": max, "choices": choices, "env": env, "secret": secret}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class FeedConfig:
    """Where market data comes from."""

    adapter: str = knob(
        "synthetic",
        "feed adapter: synthetic, alpaca, databento, ibkr, or replay (set by islandflow replay)",
        choices=("synthetic", "alpaca", "databento", "ibkr", "replay"),
    )
    allowed_lateness_ms: int = knob(
        2000, "events older than the feed's watermark by more than this are rejected", min=0
    )
    engine: str = knob(
        "process",
        "where the engine runs: process (keeps the UI responsive under the firehose) or thread",
        choices=("process", "thread"),
    )


@dataclass
class SyntheticConfig:
    """The built-in synthetic market (no credentials, no servers)."""

    profile: str = knob(
        "realistic",
        "realistic (tens of option prints/s), active (hundreds/s), firehose (>= 50 000/s)",
        choices=("realistic", "active", "firehose"),
    )
    seed: int = knob(7, "random seed: the same seed and start give the same market", min=0)
    start: str = knob(
        "now", "event-time start: 'now' or an ISO-8601 time such as 2025-11-25T14:30:00Z"
    )
    tick_ms: int = knob(100, "event time covered by each generated batch", min=1, max=10_000)
    pace: bool = knob(True, "pace event time to the wall clock (false: as fast as possible)")
    backfill_s: float = knob(
        10.0,
        "seconds of event time before the start generated at once, so the tape opens with history",
        min=0,
        max=600,
    )
    open_interest: bool = knob(
        True,
        "give the flow engine the market's open-interest table (written under the data dir "
        "and used as flow.open_interest_path unless that is set)",
    )


@dataclass
class NbboConfig:
    """Joining option prints to the NBBO in force."""

    max_age_ms: int = knob(
        1000, "oldest NBBO accepted for a print; older gives placement STALE", min=0
    )
    at_tolerance: float = knob(
        0.001,
        "dollars within which a price counts as at the bid/ask (absorbs float noise)",
        min=0,
        max=0.05,
    )


@dataclass
class SignalConfig:
    """Signal filter over enriched option prints (seed: OPTIONS_SIGNAL_*)."""

    mode: str = knob(
        "smart-money",
        "policy: smart-money, balanced or all",
        choices=("smart-money", "balanced", "all"),
    )
    min_notional: float = knob(10_000.0, "base minimum premium ($)", min=0)
    etf_min_notional: float = knob(50_000.0, "minimum premium for ETF underlyings ($)", min=0)
    bid_side_min_notional: float = knob(
        25_000.0, "minimum premium for bid-side (B/BB) prints ($)", min=0
    )
    mid_min_notional: float = knob(
        20_000.0, "minimum premium for MID prints that are not ISO ($)", min=0
    )
    nbbo_max_age_ms: int = knob(1500, "NBBO older than this cannot qualify a print", min=0)
    balanced_factor: float = knob(
        0.5, "balanced policy multiplies every threshold by this", min=0, max=1
    )
    etf_underlyings: list[str] = knob(
        SEED_ETF_UNDERLYINGS, "underlyings treated as ETFs by the signal filter"
    )


SIDE_RULES = (
    "quote",
    "tick",
    "reverse_tick",
    "lee_ready",
    "emo",
    "clnv",
    "trade_size",
    "depth",
)


@dataclass
class SideConfig:
    """Trade-side inference: a stack of published rules, the first that signs a print wins."""

    stack: list[str] = knob(
        ["trade_size", "quote", "depth", "tick"],
        "rules tried in order: quote, tick, reverse_tick, lee_ready, emo, clnv, trade_size, depth",
    )
    reverse_tick_horizon_ms: int = knob(
        1000,
        "reverse_tick looks this far ahead for the next trade; delays every stream by it if used",
        min=0,
        max=60_000,
    )


@dataclass
class FlowConfig:
    """Flow packets, packet kinds, structures and rolling baselines (issue 4)."""

    cluster_window_ms: int = knob(
        500, "window anchored at a packet's first print that gathers its prints", min=1
    )
    packet_input: str = knob(
        "all",
        "prints that form packets: all, or only those passing the balanced / smart-money filter",
        choices=("all", "balanced", "smart-money"),
    )
    cancel_lookback_ms: int = knob(
        60_000, "a cancel can retract a print of a packet emitted at most this long ago", min=0
    )
    sweep_min_venues: int = knob(2, "sweep: distinct venues of the ISO prints", min=2)
    sweep_min_iso: int = knob(2, "sweep: prints flagged ISO", min=1)
    sweep_min_iso_ratio: float = knob(
        0.5, "sweep: share of the packet's size in ISO prints", min=0, max=1
    )
    sweep_min_taking_ratio: float = knob(
        0.6, "sweep: share of ISO size at/through one side of the NBBO (taking)", min=0, max=1
    )
    golden_min_premium: float = knob(
        1_000_000.0, "golden sweep: sweep premium ($); also needs size > open interest", min=0
    )
    block_min_size: int = knob(500, "block: contracts in one print", min=1)
    block_min_premium: float = knob(0.0, "block: premium of that print ($)", min=0)
    split_min_prints: int = knob(3, "split: prints on one venue in one packet", min=2)
    repeat_window_ms: int = knob(
        180_000, "repeat: trailing window over which hits on one contract are counted", min=1
    )
    repeat_min_hits: int = knob(5, "repeat: aggressive hits on one side within the window", min=2)
    repeat_min_premium: float = knob(
        20_000.0, "repeat: premium for a packet to count as a hit", min=0
    )
    repeat_size_band: float = knob(
        2.5,
        "repeat: a hit belongs to the repeated order when its premium is within this "
        "factor of the median premium of its side's hits in the window",
        min=1,
    )
    repeat_min_side_share: float = knob(
        0.8,
        "repeat: this side's hits over both sides' hits on the contract in the window",
        min=0,
        max=1,
    )
    repeat_min_clip_share: float = knob(
        0.5,
        "repeat: a hit's largest print, or its ISO prints together (one sweep), carry at "
        "least this share of its premium (one order's clip, not many unrelated small "
        "prints of a busy contract added up)",
        min=0,
        max=1,
    )
    repeat_background_ms: int = knob(
        900_000,
        "repeat: the contract's own background hit rate per side is measured over this "
        "trailing time before the repeat window (see README 'Repeat rule')",
        min=1,
    )
    repeat_min_surprise: float = knob(
        4.0,
        "repeat: -log10 of the Poisson chance of at least as many similar hits in the "
        "window given the contract's background rate (4 = 1 in 10 000)",
        min=0,
    )
    structure_window_ms: int = knob(
        1,
        "structure: legs' first prints within this of the first leg, same root and venue",
        min=0,
    )
    legged_rate_window_ms: int = knob(
        10_000,
        "structure: single-leg packets per underlying and venue are counted over this "
        "trailing time to judge legged (single-leg) groups",
        min=1000,
    )
    legged_max_chance_partners: float = knob(
        0.01,
        "structure: a group of single-leg packets is taken for coincidence when the "
        "underlying's rate on that venue expects more chance partners than this within "
        "the structure window",
        min=0,
    )
    structure_min_confidence: float = knob(
        0.6, "structure: emitted only if its label scores at least this", min=0, max=1
    )
    rolling_window_size: int = knob(
        50,
        "baselines: observations kept per contract and per underlying (seed ROLLING_WINDOW_SIZE)",
        min=2,
    )
    rolling_ttl_s: int = knob(
        86_400,
        "baselines: a key idle this long (event time) is dropped (seed ROLLING_TTL_SEC)",
        min=1,
    )
    open_interest_path: str = knob(
        "", "optional CSV/Parquet/JSON of symbol, open_interest[, as_of date]; empty = unknown"
    )
    event_calendar_path: str = knob(
        "", "optional JSON event calendar (seed SMART_MONEY_EVENT_CALENDAR_PATH); empty = none"
    )


@dataclass
class ClassifierConfig:
    """Rule-based classifiers over packets and structures (seed CLASSIFIER_*)."""

    sweep_min_premium: float = knob(40_000.0, "sweep classifiers: premium ($)", min=0)
    sweep_min_count: int = knob(3, "sweep classifiers: prints in the packet", min=1)
    sweep_min_premium_z: float = knob(2.0, "sweep classifiers: premium z instead of premium")
    spike_min_premium: float = knob(20_000.0, "unusual spike: premium ($)", min=0)
    spike_min_size: int = knob(400, "unusual spike: contracts", min=1)
    spike_min_premium_z: float = knob(
        2.5, "unusual spike: premium z that confirms it (or size z), once z may gate"
    )
    spike_min_size_z: float = knob(
        2.0, "unusual spike: size z that confirms it (or premium z), once z may gate"
    )
    z_min_samples: int = knob(12, "baseline observations before any z-score may gate", min=2)
    min_nbbo_coverage: float = knob(
        0.5, "share of a packet's prints with a usable NBBO (every packet classifier)", min=0, max=1
    )
    min_aggressor_ratio: float = knob(
        0.55, "share of size on the dominant side (directional classifiers)", min=0, max=1
    )
    zero_dte_max_atm_pct: float = knob(
        0.01, "0DTE gamma punch: |strike - spot| / spot at most this", min=0, max=1
    )
    zero_dte_min_premium: float = knob(20_000.0, "0DTE gamma punch: premium ($)", min=0)
    zero_dte_min_size: int = knob(400, "0DTE gamma punch: contracts", min=1)
    write_min_premium: float = knob(40_000.0, "call overwrite / put write: premium sold ($)", min=0)
    far_dated_min_dte: int = knob(60, "far-dated conviction: days to expiry", min=1)
    far_dated_min_premium: float = knob(40_000.0, "far-dated conviction: premium ($)", min=0)
    block_min_premium: float = knob(20_000.0, "block classifier: premium of the packet ($)", min=0)
    repeat_min_premium: float = knob(
        100_000.0, "repeat hitter: premium summed over the hits in the window ($)", min=0
    )
    structure_min_premium: float = knob(
        20_000.0, "structure classifiers: gross premium of the legs ($)", min=0
    )
    structure_min_confidence: float = knob(
        0.4, "structure classifiers: structure label confidence", min=0, max=1
    )


@dataclass
class AlertConfig:
    """Scored alerts from classifier hits."""

    high_score: float = knob(80.0, "score at or above which an alert is high", min=0, max=100)
    medium_score: float = knob(45.0, "score at or above which an alert is medium", min=0, max=100)
    min_score: float = knob(0.0, "alerts scoring below this are not emitted", min=0, max=100)
    cooldown_ms: int = knob(
        30_000, "after an alert, the same contract and kind stay quiet this long", min=0
    )
    escalate_points: float = knob(
        10.0, "within the cool-down, an alert still fires if it beats the last by this", min=0
    )


@dataclass
class EquitiesConfig:
    """Equity print/quote join, placement and the retail flag (compute/eq_join.py)."""

    quote_max_age_ms: int = knob(
        1000,
        "oldest quote joined to an equity print (seed EQUITY_QUOTE_MAX_AGE_MS); older: no_quote",
        min=0,
    )
    at_tolerance: float = knob(
        0.000001,
        "dollars within which an equity price counts as at the bid/ask/mid (float noise only: "
        "sub-penny improvements are real prices)",
        min=0,
        max=0.005,
    )
    retail_side_rule: str = knob(
        "midpoint",
        "side of a retail print: midpoint (Barber et al.: vs the quote midpoint, 40-60 % of "
        "the spread unsigned) or bjzz (the sub-penny fraction alone)",
        choices=("midpoint", "bjzz"),
    )


@dataclass
class DarkConfig:
    """Dark-pool-style inference from off-exchange prints (seed DARK_INFER_*)."""

    window_ms: int = knob(60_000, "accumulation window (seed DARK_INFER_WINDOW_MS)", min=1)
    cooldown_ms: int = knob(
        30_000,
        "quiet time per symbol and pattern after an inference (DARK_INFER_COOLDOWN_MS)",
        min=0,
    )
    min_block_size: int = knob(
        2000, "block: shares in one off-exchange print (DARK_INFER_MIN_BLOCK_SIZE)", min=1
    )
    min_accum_size: int = knob(
        3000, "accumulation: shares in the window (DARK_INFER_MIN_ACCUM_SIZE)", min=1
    )
    min_accum_count: int = knob(
        4, "accumulation: prints in the window (DARK_INFER_MIN_ACCUM_COUNT)", min=1
    )
    min_print_size: int = knob(
        200,
        "shares for an off-exchange print to count as evidence (DARK_INFER_MIN_PRINT_SIZE)",
        min=1,
    )
    max_evidence: int = knob(
        20, "evidence prints kept per inference, the largest (DARK_INFER_MAX_EVIDENCE)", min=1
    )
    max_spread_pct: float = knob(
        0.005,
        "confidence is halved when the quoted spread exceeds this share of the price "
        "(DARK_INFER_MAX_SPREAD_PCT)",
        min=0,
    )
    direction_min_ratio: float = knob(
        0.6, "share of signed evidence volume on one side to call a direction", min=0.5, max=1
    )
    level_interval_ms: int = knob(
        60_000, "levels: re-evaluated at every multiple of this in event time", min=1000
    )
    level_bucket_bps: float = knob(
        5.0,
        "levels: price bucket width in basis points of the symbol's first off-exchange price "
        "(rounded to whole cents, at least one cent)",
        min=0.1,
        max=1000,
    )
    level_min_volume: int = knob(
        20_000, "levels: off-exchange shares at a level over the session", min=1
    )
    level_min_share: float = knob(
        0.05, "levels: share of the symbol's off-exchange session volume at the level", min=0, max=1
    )
    level_max: int = knob(3, "levels: at most this many levels per symbol (largest first)", min=1)
    level_growth: float = knob(
        0.5, "levels: a level is re-emitted when its volume grew by this fraction since", min=0
    )


@dataclass
class CandlesConfig:
    """Equity candles from regular prints (seed CANDLE_*)."""

    intervals_ms: list[int] = knob(
        [60_000, 300_000],
        "candle lengths (seed CANDLE_INTERVALS_MS); each a multiple of update_ms",
    )
    max_late_ms: int = knob(
        0,
        "a print arriving behind the operator's event-time frontier still updates its closed "
        "candle if at most this late; later ones are counted and dropped (CANDLE_MAX_LATE_MS)",
        min=0,
    )
    update_ms: int = knob(
        1000,
        "in-progress candles are emitted at every multiple of this in event time (deterministic)",
        min=10,
        max=60_000,
    )


@dataclass
class AlpacaConfig:
    """Alpaca market data (alpaca-py streams); keys also from ALPACA_API_KEY / ALPACA_SECRET_KEY."""

    api_key: Secret = knob(Secret(""), "API key id; empty = env ALPACA_API_KEY", secret=True)
    secret_key: Secret = knob(
        Secret(""), "API secret key; empty = env ALPACA_SECRET_KEY", secret=True
    )
    options_feed: str = knob(
        "indicative",
        "options feed: indicative (free, delayed-style) or opra (paid)",
        choices=("indicative", "opra"),
    )
    equities_feed: str = knob(
        "iex", "equities feed: iex (free) or sip (paid, consolidated)", choices=("iex", "sip")
    )
    options: bool = knob(True, "stream option trades and quotes of the selected contracts")
    equities: bool = knob(True, "stream equity trades and quotes of the underlyings")
    underlyings: list[str] = knob(
        ["SPY", "NVDA", "AAPL"], "underlyings whose contracts are selected and streamed"
    )
    strikes_per_side: int = knob(
        8, "contracts selected per side of spot, per expiry and right", min=1, max=200
    )
    max_dte_days: int = knob(30, "longest days-to-expiry selected", min=0, max=3650)
    moneyness_pct: float = knob(
        0.06, "select strikes within this fraction of spot", min=0.001, max=1
    )
    moneyness_fallback_pct: float = knob(
        0.10, "wider band used when the first gives fewer than strikes_per_side", min=0.001, max=2
    )
    max_contracts: int = knob(
        200, "upper bound on contracts subscribed over all underlyings", min=1, max=10_000
    )
    reselect_move_pct: float = knob(
        0.01, "re-select contracts when spot moves this fraction from the last selection", min=0
    )
    options_url: str = knob("", "options stream URL override; empty = Alpaca's for the feed")
    stocks_url: str = knob("", "stocks stream URL override; empty = Alpaca's for the feed")
    rest_url: str = knob("", "data REST URL override; empty = https://data.alpaca.markets")
    paper: bool = knob(
        True, "keys belong to a paper account (the Trading API host used for open interest)"
    )


@dataclass
class IbkrConfig:
    """Interactive Brokers through TWS or IB Gateway (ib_async)."""

    host: str = knob("", "TWS/Gateway host; empty = env IBKR_HOST, else 127.0.0.1")
    port: int = knob(
        0, "TWS/Gateway API port; 0 = env IBKR_PORT, else 7497 (TWS paper)", min=0, max=65535
    )
    client_id: int = knob(
        -1, "API client id; -1 = env IBKR_CLIENT_ID, else 0", min=-1, max=2**31 - 1
    )
    equities: list[str] = knob(["SPY"], "stock symbols streamed tick by tick (AllLast, BidAsk)")
    options: list[str] = knob(
        [], "option contracts as OSI symbols, e.g. 'SPY   251219C00600000' (streaming data)"
    )
    exchange: str = knob("SMART", "routing exchange for the contracts")
    currency: str = knob("USD", "contract currency")
    market_data_type: int = knob(
        1, "1 live, 2 frozen, 3 delayed, 4 delayed-frozen (reqMarketDataType)", min=1, max=4
    )
    connect_timeout_s: float = knob(5.0, "seconds to wait for the API handshake", min=0.5)


@dataclass
class UiConfig:
    """The terminal UI."""

    theme: str = knob(
        "islandflow", "Textual theme name (islandflow, islandflow-light or any built-in)"
    )
    refresh_hz: float = knob(15.0, "screen repaint rate from engine state", min=1, max=60)
    hot_window_options: int = knob(
        25_000, "option prints kept in the tape's hot window", min=100, max=1_000_000
    )
    hot_window: int = knob(
        2_000, "rows kept in every other live pane's hot window", min=100, max=1_000_000
    )
    preset: str = knob(
        "smart-money",
        "tape preset at start: smart-money, balanced or all",
        choices=("smart-money", "balanced", "all"),
    )
    min_premium: float = knob(0.0, "tape hides option prints below this premium ($)", min=0)
    equities_silent_warning_ms: int = knob(
        25_000, "warn in the status bar when equities are quiet this long", min=1000
    )
    flow_preset: str = knob(
        "notable",
        "Flow screen preset at start: notable, aggressive or all (README: Flow screen)",
        choices=("notable", "aggressive", "all"),
    )
    evidence_index_rows: int = knob(
        100_000,
        "newest events per stream the engine keeps for evidence look-ups by id "
        "(older ones are read back from the session log)",
        min=1_000,
        max=10_000_000,
    )


@dataclass
class PathsConfig:
    """Where data and logs live (empty: the platformdirs user dirs)."""

    data_dir: str = knob("", "data dir (sessions); empty = platformdirs user data dir")
    log_dir: str = knob("", "log dir; empty = platformdirs user log dir")


@dataclass
class LogConfig:
    """Session recording: every raw and derived event as Parquet segments (engine/log.py)."""

    record: bool = knob(
        True, "record live runs as sessions under <data dir>/sessions (false: --no-record)"
    )
    segment_max_mb: float = knob(
        64.0,
        "seal the open segment into Parquet at this many MB of Arrow IPC (Parquet is ~14x smaller)",
        min=0.01,
        max=4096,
    )
    segment_max_age_s: float = knob(
        60.0, "seal the open segment after this many seconds of wall time", min=0.1, max=86_400
    )
    flush_interval_ms: int = knob(
        200,
        "durability bound: the writer never lags more than this (the engine waits), "
        "so a killed process loses at most this much; with fsync, also the fsync period",
        min=10,
        max=60_000,
    )
    fsync: bool = knob(
        False,
        "also fsync the open segments every flush interval, so an OS crash or power cut "
        "loses about one flush interval too (costs writing every event to disk twice); "
        "sealed segments are always fsync'd",
    )
    max_disk_gb: float = knob(
        20.0,
        "retention: remove the oldest sealed sessions above this many GB (0 = no limit)",
        min=0,
    )
    max_days: float = knob(
        30.0, "retention: remove sealed sessions older than this many days (0 = keep)", min=0
    )


@dataclass
class ReplayConfig:
    """Replaying a recorded session (islandflow replay)."""

    session: str = knob("", "session id or folder to replay; empty = the newest session")
    start: str = knob(
        "", "start at: ISO-8601 time, HH:MM[:SS] New York time on the session's day, or +SECONDS"
    )
    end: str = knob("", "stop at (same forms as start); empty = the session's end")
    speed: str = knob("1", "playback speed multiplier from 0.25 to 1000, or max")
    paused: bool = knob(False, "open paused at the start")
    checkpoint_interval_s: float = knob(
        10.0, "event time between engine checkpoints (a seek fast-forwards at most this)", min=0.5
    )
    checkpoint_max_events: int = knob(
        500_000,
        "also checkpoint after this many raw events, so a seek's fast-forward stays short "
        "at firehose rates (0: time only)",
        min=0,
    )
    checkpoint_disk_share: float = knob(
        2.0,
        "checkpoints of a session may take this many times the bytes of its sealed "
        "segments, or a quarter of log.max_disk_gb if that is more (0: the quarter only); "
        "past it a checkpoint is skipped until the recording grows",
        min=0,
    )
    checkpoint_min_free_gb: float = knob(
        2.0,
        "skip checkpoints while the data dir's disk has less free space than this, so "
        "checkpoints never take the space the recording itself needs",
        min=0,
    )


@dataclass
class DatabentoConfig:
    """Databento feed (--feed databento): historical download or live gateway, via the SDK."""

    mode: str = knob(
        "historical",
        "historical (timeseries download, streamed into the engine) or live (live gateway)",
        choices=("historical", "live"),
    )
    api_key: Secret = knob(
        Secret(""),
        "API key; empty = environment DATABENTO_API_KEY (never logged or recorded)",
        secret=True,
    )
    options_dataset: str = knob("OPRA.PILLAR", "options dataset; empty = no options")
    options_schemas: list[str] = knob(
        ["trades", "cbbo-1s"],
        "options schemas: trades plus a quote schema (tcbbo/cbbo-1s/cmbp-1/mbp-1), "
        "or tcbbo/tbbo alone (each trade with the BBO in force)",
    )
    options_symbols: list[str] = knob(
        ["SPY.OPT"], "options symbols in options_stype form, e.g. SPY.OPT (parent)"
    )
    options_stype: str = knob(
        "parent",
        "symbology of options_symbols",
        choices=("parent", "raw_symbol", "instrument_id"),
    )
    equities_dataset: str = knob("EQUS.MINI", "equities dataset; empty = no equities")
    equities_schemas: list[str] = knob(
        ["tbbo"], "equities schemas: tbbo (trade + BBO in force), or trades plus bbo-1s/mbp-1"
    )
    equities_symbols: list[str] = knob(["SPY"], "equity tickers (raw_symbol)")
    start: str = knob(
        "", "historical: ISO-8601 start (required); live: replay from this time (<= 24 h)"
    )
    end: str = knob("", "historical: ISO-8601 end; empty = the dataset's available end")
    gateway: str = knob(
        "",
        "advanced: historical API base URL / live gateway host (empty = Databento's own)",
    )
    live_port: int = knob(13000, "advanced: live gateway port", min=1, max=65535)
    batch_ms: int = knob(
        100, "live: hand the engine a batch at least this often (ms of wall time)", min=1
    )
    reconnect_initial_s: float = knob(0.5, "live: first reconnect delay (s)", min=0.01)
    reconnect_max_s: float = knob(30.0, "live: longest reconnect delay (s)", min=0.1)


@dataclass
class Config:
    feed: FeedConfig = field(default_factory=FeedConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    nbbo: NbboConfig = field(default_factory=NbboConfig)
    signal: SignalConfig = field(default_factory=SignalConfig)
    side: SideConfig = field(default_factory=SideConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    equities: EquitiesConfig = field(default_factory=EquitiesConfig)
    dark: DarkConfig = field(default_factory=DarkConfig)
    candles: CandlesConfig = field(default_factory=CandlesConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    alpaca: AlpacaConfig = field(default_factory=AlpacaConfig)
    ibkr: IbkrConfig = field(default_factory=IbkrConfig)
    databento: DatabentoConfig = field(default_factory=DatabentoConfig)

    def data_path(self) -> Path:
        return Path(self.paths.data_dir or platformdirs.user_data_dir(APP_NAME))

    def log_path(self) -> Path:
        return Path(self.paths.log_dir or platformdirs.user_log_dir(APP_NAME))

    def as_dict(self, *, secrets: bool = False) -> dict[str, dict[str, Any]]:
        """Every section as plain values; secret keys are left out unless ``secrets``."""
        out = dataclasses.asdict(self)
        if not secrets:
            for section, key in secret_keys():
                if section in out:
                    out[section].pop(key, None)
        return out

    def digest(self) -> str:
        """Short stable hash of the effective config (recorded with sessions).

        Secret keys are not part of it: a digest is written to session metadata, and
        a hash of a short key is a key that can be brute-forced.
        """
        blob = json.dumps(self.as_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def sections() -> dict[str, type]:
    hints = get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def secret_keys() -> list[tuple[str, str]]:
    """(section, key) of every secret knob, in any section (other branches add some)."""
    out = []
    for name, sec_type in sections().items():
        for f in dataclasses.fields(sec_type):
            if f.metadata.get("secret"):
                out.append((name, f.name))
    return out


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------
def _describe_allowed(typ: Any, meta: Mapping[str, Any]) -> str:
    if meta.get("choices"):
        return "one of " + ", ".join(meta["choices"])
    name = {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        Secret: "a string (secret)",
    }.get(typ, "a list of integers" if typ == list[int] else "a list of strings")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None:
        return f"{name} from {lo:g} to {hi:g}"
    if lo is not None:
        return f"{name} >= {lo:g}"
    if hi is not None:
        return f"{name} <= {hi:g}"
    return name


def _coerce(key: str, raw: Any, typ: Any, meta: Mapping[str, Any], from_text: bool) -> Any:
    """Turn ``raw`` into ``typ`` or raise ConfigError naming key, value and what is allowed."""
    allowed = _describe_allowed(typ, meta)
    bad = ConfigError(f"config: {key} = {raw!r} is not allowed; expected {allowed}")
    value: Any
    if get_origin(typ) is list:
        (inner,) = get_args(typ)
        if from_text and isinstance(raw, str):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
            if inner is int:
                try:
                    raw = [int(part) for part in raw]
                except ValueError:
                    raise bad from None
        if not isinstance(raw, list) or not all(
            isinstance(v, inner) and not isinstance(v, bool) for v in raw
        ):
            raise bad
        value = list(raw)
    elif typ is bool:
        if from_text and isinstance(raw, str):
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                raw = True
            elif lowered in ("0", "false", "no", "off"):
                raw = False
        if not isinstance(raw, bool):
            raise bad
        value = raw
    elif typ is int:
        if from_text and isinstance(raw, str):
            try:
                raw = int(raw.strip())
            except ValueError:
                raise bad from None
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise bad
        value = raw
    elif typ is float:
        if from_text and isinstance(raw, str):
            try:
                raw = float(raw.strip())
            except ValueError:
                raise bad from None
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise bad
        value = float(raw)
    elif typ is str:
        if not isinstance(raw, str):
            raise bad
        value = raw
    elif typ is Secret:
        if isinstance(raw, Secret):
            raw = raw.reveal()
        if not isinstance(raw, str):
            # never echo a secret's value, not even a wrong one
            raise ConfigError(f"config: {key} must be a string")
        value = Secret(raw.strip())
    else:  # pragma: no cover - a new field type without a coercion is a programming error
        raise TypeError(f"unsupported config type {typ!r} for {key}")
    if meta.get("choices") and value not in meta["choices"]:
        raise bad
    if isinstance(value, int | float) and not isinstance(value, bool):
        if meta.get("min") is not None and value < meta["min"]:
            raise bad
        if meta.get("max") is not None and value > meta["max"]:
            raise bad
    return value


def _apply(cfg: Config, section: str, key: str, raw: Any, *, origin: str, from_text: bool) -> None:
    secs = sections()
    if section not in secs:
        raise ConfigError(
            f"config: unknown section [{section}] in {origin}; known sections: {', '.join(secs)}"
        )
    sec_type = secs[section]
    fields = {f.name: f for f in dataclasses.fields(sec_type)}
    if key not in fields:
        raise ConfigError(
            f"config: unknown key {section}.{key} in {origin}; known keys: {', '.join(fields)}"
        )
    typ = get_type_hints(sec_type)[key]
    value = _coerce(f"{section}.{key}", raw, typ, fields[key].metadata, from_text)
    setattr(getattr(cfg, section), key, value)


def _check_cross_field(cfg: Config) -> None:
    start = cfg.synthetic.start
    if start != "now":
        from datetime import datetime

        try:
            datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"config: synthetic.start = {start!r} is not allowed; "
                "expected 'now' or an ISO-8601 time such as 2025-11-25T14:30:00Z"
            ) from None
    stack = cfg.side.stack
    unknown = [rule for rule in stack if rule not in SIDE_RULES]
    if not stack or unknown or len(set(stack)) != len(stack):
        raise ConfigError(
            f"config: side.stack = {stack!r} is not allowed; expected a non-empty list of "
            f"distinct rules from {', '.join(SIDE_RULES)}"
        )
    intervals = cfg.candles.intervals_ms
    step = cfg.candles.update_ms
    if (
        not intervals
        or any(i <= 0 or i % step for i in intervals)
        or len(set(intervals)) != len(intervals)
    ):
        raise ConfigError(
            f"config: candles.intervals_ms = {intervals!r} is not allowed; expected a non-empty "
            f"list of distinct positive multiples of candles.update_ms ({step})"
        )
    if cfg.alerts.medium_score > cfg.alerts.high_score:
        raise ConfigError(
            f"config: alerts.medium_score = {cfg.alerts.medium_score!r} is not allowed; "
            f"expected a number <= alerts.high_score ({cfg.alerts.high_score:g})"
        )


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the effective config. ``overrides`` are ``"section.key" -> value`` from CLI flags."""
    cfg = Config()
    explicit = path is not None
    file = Path(path) if path is not None else default_config_path()
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {file} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"config: cannot read {file}: {exc.strerror}") from None
        for section, body in data.items():
            if not isinstance(body, dict):
                raise ConfigError(
                    f"config: top-level key {section!r} in {file} must be a [section] table"
                )
            for key, raw in body.items():
                _apply(cfg, section, key, raw, origin=str(file), from_text=False)
    elif explicit:
        raise ConfigError(f"config: file {file} does not exist")

    environ = os.environ if env is None else env
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :]
        if "__" not in rest:
            continue  # ISLANDFLOW_* without a section is not a config key (e.g. ISLANDFLOW_DEBUG)
        section, key = rest.split("__", 1)
        _apply(
            cfg,
            section.lower(),
            key.lower(),
            environ[name],
            origin=f"environment variable {name}",
            from_text=True,
        )

    for dotted, raw in (overrides or {}).items():
        section, key = dotted.split(".", 1)
        _apply(cfg, section, key, raw, origin="command line", from_text=isinstance(raw, str))
    _check_cross_field(cfg)
    return cfg


def render_example() -> str:
    """The text of config.example.toml: every key, its default and a one-line comment."""
    lines = [
        "# islandflow configuration: every key with its default.",
        f"# Looked up at --config PATH, else {default_config_path().name} in the user config dir",
        "# (platformdirs).  Environment variables ISLANDFLOW_<SECTION>__<KEY> override the file,",
        "# e.g. ISLANDFLOW_SIGNAL__MIN_NOTIONAL=5000; command-line flags override both.",
        "",
    ]
    for name, sec_type in sections().items():
        doc = (sec_type.__doc__ or "").strip().splitlines()[0]
        lines.append(f"[{name}]  # {doc}")
        hints = get_type_hints(sec_type)
        for f in dataclasses.fields(sec_type):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            allowed = _describe_allowed(hints[f.name], f.metadata)
            lines.append(f"# {f.metadata['doc']} ({allowed})")
            # secrets are commented out: prefer the env var, and a copied example must
            # not hold a key (chmod 600 the file if you put one here)
            prefix = "# " if f.metadata.get("secret") else ""
            lines.append(f"{prefix}{f.name} = {toml_value(default)}")
        lines.append("")
    return "\n".join(lines)


def toml_value(value: Any) -> str:
    if isinstance(value, Secret):
        return json.dumps(str(value))  # masked: "***" when set
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)
