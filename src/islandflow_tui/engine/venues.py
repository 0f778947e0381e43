"""Equity venues and trade conditions: the one table every feed maps into.

Why one table: an off-exchange print must look the same whether it came from the
synthetic market, Alpaca (SIP participant ids), or Databento (publisher ids), or
the dark and retail rules would silently depend on the feed.  Adapters translate
their vendor codes into the codes below; the engine reads nothing else.

Venue codes are the CTA/UTP SIP participant ids (one letter), the codes Alpaca and
the SIPs report.  Every FINRA trade reporting facility (the Nasdaq TRFs in Carteret
and Chicago, the NYSE TRF) and the ADF report as participant ``D``: that is where
every off-exchange print (ATS/dark pool, wholesaler/internaliser) is printed, and it
is the only code with ``off_exchange = True``.

=====  =============================  ============  =====================================
code   venue                          off-exchange  Databento publisher ids
=====  =============================  ============  =====================================
A      NYSE American                  no            11, 78, 111
B      Nasdaq BX (Texas)              no            3, 75, 86, 88, 112
C      NYSE National                  no            10, 13, 14, 40, 49, 63, 91, 113
D      FINRA ADF / TRF                yes           17, 18, 19, 54, 55, 56, 68, 69, 70,
                                                    82, 83, 130, 131, 132, 133
H      MIAX Pearl                     no            16, 42, 51, 65, 116
I      Nasdaq ISE                     no            117
J      Cboe EDGA                      no            7, 73, 118
K      Cboe EDGX                      no            8, 74, 119
L      Long-Term Stock Exchange       no            80, 120
M      NYSE Texas (was Chicago)       no            12, 39, 48, 62, 121
N      NYSE                           no            9, 44, 45, 53, 67, 92, 122
P      NYSE Arca                      no            43, 79, 123
Q      Nasdaq                         no            2, 46, 47, 52, 66, 81, 124
U      MEMX                           no            15, 77, 125
V      IEX                            no            38, 41, 50, 64, 126
X      Nasdaq PSX                     no            4, 76, 87, 89, 127
Y      Cboe BYX                       no            6, 72, 128
Z      Cboe BZX                       no            5, 71, 129
=====  =============================  ============  =====================================

Databento's consolidated publishers (DBEQ/EQUS/CTA/UTP "consolidated" ids 59, 60,
90, 93-96, 134, 135) name no venue and are absent: a record from them carries no
venue, and an adapter must report it as unknown rather than guess.  Publishers
of venues without a SIP participant letter known here (Texas Stock Exchange 114,
24X 115, Blue Ocean ATS 107) are absent for the same reason.

Trade conditions arrive as vendor codes (kept verbatim in ``conditions``) and are
normalised into :class:`~islandflow_tui.engine.events.Cond` bits (``flags``).
:data:`SALE_CONDITIONS` maps the CTA/UTP sale-condition codes to bits;
:data:`CONDITION_RULES` says, per bit, whether a print so flagged may set the last
price and count as regular volume (the SIPs' "update last / update volume"
columns, simplified to the conditions that matter here).  A print is *regular*
(``is_regular``) when none of the bits in :data:`NOT_REGULAR` is set: only regular
prints build candles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import polars as pl

from islandflow_tui.engine.events import Cond

__all__ = [
    "CONDITION_RULES",
    "DATABENTO_PUBLISHER_VENUE",
    "NOT_DARK_EVIDENCE",
    "NOT_REGULAR",
    "OFF_EXCHANGE_CODES",
    "SALE_CONDITIONS",
    "VENUES",
    "ConditionRule",
    "Venue",
    "flags_from_codes",
    "is_off_exchange",
    "venue_for_publisher",
]


@dataclass(frozen=True, slots=True)
class Venue:
    code: str  # CTA/UTP participant id
    name: str
    off_exchange: bool
    mics: tuple[str, ...]  # ISO 10383 operating / segment MICs (Databento's venue names)


VENUES: Final[dict[str, Venue]] = {
    v.code: v
    for v in (
        Venue("A", "NYSE American", False, ("XASE",)),
        Venue("B", "Nasdaq BX", False, ("XBOS",)),
        Venue("C", "NYSE National", False, ("XCIS",)),
        Venue("D", "FINRA ADF / TRF (off-exchange)", True, ("FINN", "FINC", "FINY", "XADF")),
        Venue("H", "MIAX Pearl", False, ("EPRL",)),
        Venue("I", "Nasdaq ISE", False, ("XISX",)),
        Venue("J", "Cboe EDGA", False, ("EDGA",)),
        Venue("K", "Cboe EDGX", False, ("EDGX",)),
        Venue("L", "Long-Term Stock Exchange", False, ("LTSE",)),
        Venue("M", "NYSE Texas", False, ("XCHI",)),
        Venue("N", "NYSE", False, ("XNYS",)),
        Venue("P", "NYSE Arca", False, ("ARCX",)),
        Venue("Q", "Nasdaq", False, ("XNAS",)),
        Venue("U", "MEMX", False, ("MEMX",)),
        Venue("V", "IEX", False, ("IEXG",)),
        Venue("X", "Nasdaq PSX", False, ("XPSX",)),
        Venue("Y", "Cboe BYX", False, ("BATY",)),
        Venue("Z", "Cboe BZX", False, ("BATS",)),
    )
}

OFF_EXCHANGE_CODES: Final = frozenset(c for c, v in VENUES.items() if v.off_exchange)

#: Databento publisher id -> venue code (databento 0.88 ``Publisher`` enum; a test
#: checks every row against the installed SDK's publisher -> venue MIC).
DATABENTO_PUBLISHER_VENUE: Final[dict[int, str]] = {
    # exchange proprietary feeds
    2: "Q",  # XNAS.ITCH
    3: "B",  # XBOS.ITCH
    4: "X",  # XPSX.ITCH
    5: "Z",  # BATS.PITCH
    6: "Y",  # BATY.PITCH
    7: "J",  # EDGA.PITCH
    8: "K",  # EDGX.PITCH
    9: "N",  # XNYS.PILLAR
    10: "C",  # XCIS.PILLAR
    11: "A",  # XASE.PILLAR
    12: "M",  # XCHI.PILLAR
    13: "C",  # XCIS.BBO
    14: "C",  # XCIS.TRADES
    15: "U",  # MEMX.MEMOIR
    16: "H",  # EPRL.DOM
    17: "D",  # XNAS.NLS FINN: FINRA/Nasdaq TRF Carteret
    18: "D",  # XNAS.NLS FINC: FINRA/Nasdaq TRF Chicago
    19: "D",  # XNYS.TRADES FINY: FINRA/NYSE TRF
    38: "V",  # IEXG.TOPS
    39: "M",  # DBEQ.BASIC XCHI
    40: "C",  # DBEQ.BASIC XCIS
    41: "V",  # DBEQ.BASIC IEXG
    42: "H",  # DBEQ.BASIC EPRL
    43: "P",  # ARCX.PILLAR
    44: "N",  # XNYS.BBO
    45: "N",  # XNYS.TRADES
    46: "Q",  # XNAS.QBBO
    47: "Q",  # XNAS.NLS
    # Databento US Equities Plus
    48: "M",
    49: "C",
    50: "V",
    51: "H",
    52: "Q",
    53: "N",
    54: "D",  # FINN
    55: "D",  # FINY
    56: "D",  # FINC
    # Databento US Equities (all feeds)
    62: "M",
    63: "C",
    64: "V",
    65: "H",
    66: "Q",
    67: "N",
    68: "D",  # FINN
    69: "D",  # FINY
    70: "D",  # FINC
    71: "Z",
    72: "Y",
    73: "J",
    74: "K",
    75: "B",
    76: "X",
    77: "U",
    78: "A",
    79: "P",
    80: "L",
    # Nasdaq Basic / NLS
    81: "Q",
    82: "D",  # FINN
    83: "D",  # FINC
    86: "B",
    87: "X",
    88: "B",
    89: "X",
    91: "C",  # XCIS.TRADESBBO
    92: "N",  # XNYS.TRADESBBO
    # US Equities SIP (per participant)
    111: "A",
    112: "B",
    113: "C",
    116: "H",
    117: "I",
    118: "J",
    119: "K",
    120: "L",
    121: "M",
    122: "N",
    123: "P",
    124: "Q",
    125: "U",
    126: "V",
    127: "X",
    128: "Y",
    129: "Z",
    130: "D",  # FINN
    131: "D",  # FINY
    132: "D",  # FINC
    133: "D",  # XADF: FINRA Alternative Display Facility
}


def venue_for_publisher(publisher_id: int) -> str | None:
    """Venue code of a Databento publisher id; None for consolidated or unknown ids."""
    return DATABENTO_PUBLISHER_VENUE.get(publisher_id)


def is_off_exchange(venue: pl.Expr) -> pl.Expr:
    """Vectorised ``venue in OFF_EXCHANGE_CODES``."""
    return venue.is_in(sorted(OFF_EXCHANGE_CODES))


# ---------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------
#: CTA/UTP sale-condition codes (as the SIPs and Alpaca report them) -> Cond bits.
#: Codes not listed map to no bit (they are kept verbatim in ``conditions``).
SALE_CONDITIONS: Final[dict[str, tuple[Cond, str]]] = {
    "@": (Cond.NONE, "regular sale"),
    "F": (Cond.ISO, "intermarket sweep"),
    "I": (Cond.ODD_LOT, "odd lot trade"),
    "B": (Cond.AVERAGE_PRICE, "average price trade (CTA)"),
    "W": (Cond.AVERAGE_PRICE, "average price trade (UTP)"),
    "4": (Cond.DERIVATIVELY_PRICED, "derivatively priced"),
    "L": (Cond.LATE, "sold last (late reporting)"),
    "Z": (Cond.OUT_OF_SEQ, "sold (out of sequence)"),
    "U": (Cond.LATE | Cond.OUT_OF_SEQ, "extended trading hours, sold out of sequence"),
    "O": (Cond.OPENING, "market center opening trade"),
    "Q": (Cond.OPENING, "market center official open"),
    "5": (Cond.OPENING, "market center reopening trade"),
    "6": (Cond.CLOSING, "market center closing trade"),
    "M": (Cond.CLOSING, "market center official close"),
}


@dataclass(frozen=True, slots=True)
class ConditionRule:
    bit: Cond
    sets_last: bool  # may set the last price (and so a candle's OHLC)
    regular_volume: bool  # counts as regular volume (candle volume, VWAP, trades)
    why: str


#: Per Cond bit: may a print so flagged set the last price / count as regular volume?
#: Bits absent here (ISO, opening, closing, ...) leave a print regular.
CONDITION_RULES: Final[tuple[ConditionRule, ...]] = (
    ConditionRule(Cond.ODD_LOT, False, False, "odd lots do not set the last sale price"),
    ConditionRule(
        Cond.AVERAGE_PRICE, False, False, "priced as an average of earlier fills, not a trade now"
    ),
    ConditionRule(
        Cond.OUT_OF_SEQ, False, False, "reported out of sequence: its price belongs to another time"
    ),
    ConditionRule(Cond.LATE, False, False, "reported late: its price belongs to an earlier time"),
    ConditionRule(
        Cond.DERIVATIVELY_PRICED, False, False, "priced off a benchmark (VWAP, close), not the book"
    ),
    ConditionRule(Cond.CORRECTION, False, False, "re-reports an earlier print (no new volume)"),
    ConditionRule(Cond.CANCEL, False, False, "cancels an earlier print"),
)

#: Bits that make a print not regular: it builds no candle.
NOT_REGULAR: Final = int(
    sum(int(r.bit) for r in CONDITION_RULES if not (r.sets_last and r.regular_volume))
)
#: Bits that keep a print out of dark-inference evidence: a correction or cancel
#: re-reports volume already seen, so counting it would double it.  (Late, average
#: price and derivatively priced blocks are still real off-exchange volume.)
NOT_DARK_EVIDENCE: Final = int(Cond.CORRECTION | Cond.CANCEL)


def flags_from_codes(conditions: pl.Series) -> pl.Series:
    """Cond bits of each space-separated code string (adapters: vendor codes -> flags).

    Feeds repeat a handful of distinct strings, so each distinct one is decoded once.
    """
    distinct = conditions.drop_nulls().unique().to_list()
    table = {s: flags_of(s) for s in distinct}
    return conditions.replace_strict(table, default=0, return_dtype=pl.Int32).alias("flags")


def flags_of(codes: str) -> int:
    """Cond bits of one space-separated code string."""
    out = 0
    for code in codes.split():
        rule = SALE_CONDITIONS.get(code)
        if rule is not None:
            out |= int(rule[0])
    return out
