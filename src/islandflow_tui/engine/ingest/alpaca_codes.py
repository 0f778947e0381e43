"""Alpaca's exchange and condition codes mapped to the engine's venue codes and Cond flags.

Kept in one small module so it can be folded into the shared venue table
(the equities venue module) in one move: every function here is a pure lookup.

* Equities: Alpaca reports CTA/UTP participant ids (``V`` IEX, ``Q`` Nasdaq, ...);
  ``D`` is the FINRA ADF / TRFs, i.e. **off-exchange** (dark pools, wholesalers).
  The engine's venue codes are the same letters (see ingest/synthetic.py
  ``EQUITY_VENUES``), so the code passes through and ``off_exchange`` is ``code == "D"``.
* Options: OPRA participant ids, the same letters the engine uses for option venues
  (for options ``D`` is MIAX Emerald, an exchange).
* Conditions: equities carry a list of UTP/CTA sale-condition codes, options one OPRA
  trade-condition character (Alpaca's ``/v1beta1/options/meta/conditions/trade``
  table); each maps to ``Cond`` bits, the raw codes stay in ``conditions``.
"""

from __future__ import annotations

import functools
from typing import Final

from islandflow_tui.engine.events import Cond

OFF_EXCHANGE_CODE: Final = "D"

EQUITY_VENUE_NAMES: Final[dict[str, str]] = {
    "A": "NYSE American",
    "B": "Nasdaq BX",
    "C": "NYSE National",
    "D": "FINRA ADF / TRF (off-exchange)",
    "E": "Market Independent (SIP)",
    "H": "MIAX Pearl Equities",
    "I": "Nasdaq ISE",
    "J": "Cboe EDGA",
    "K": "Cboe EDGX",
    "L": "LTSE",
    "M": "NYSE Chicago",
    "N": "NYSE",
    "P": "NYSE Arca",
    "Q": "Nasdaq",
    "S": "Nasdaq (SIP)",
    "T": "Nasdaq (Tape A/B)",
    "U": "MEMX",
    "V": "IEX",
    "W": "CBOE Stock Exchange",
    "X": "Nasdaq PSX",
    "Y": "Cboe BYX",
    "Z": "Cboe BZX",
}

OPTION_VENUE_NAMES: Final[dict[str, str]] = {
    "A": "NYSE American Options",
    "B": "BOX Options",
    "C": "Cboe Options",
    "D": "MIAX Emerald",
    "E": "Cboe EDGX Options",
    "H": "Nasdaq GEMX",
    "I": "Nasdaq ISE",
    "J": "Nasdaq MRX (ISE Mercury)",
    "M": "MIAX Options",
    "N": "NYSE Arca Options",
    "O": "OPRA",
    "P": "MIAX Pearl Options",
    "Q": "Nasdaq Options Market",
    "S": "MIAX Sapphire",
    "T": "Nasdaq BX Options",
    "U": "MEMX Options",
    "W": "Cboe C2 Options",
    "X": "Nasdaq PHLX",
    "Z": "Cboe BZX Options",
}

#: UTP/CTA sale conditions -> Cond bits (codes not listed carry no flag)
EQUITY_CONDITIONS: Final[dict[str, Cond]] = {
    "F": Cond.ISO,
    "I": Cond.ODD_LOT,
    "L": Cond.LATE,  # sold last
    "Z": Cond.OUT_OF_SEQ,  # sold (out of sequence)
    "U": Cond.OUT_OF_SEQ,  # extended hours sold out of sequence
    "W": Cond.AVERAGE_PRICE,
    "4": Cond.DERIVATIVELY_PRICED,
    "O": Cond.OPENING,
    "Q": Cond.OPENING,  # market center official open
    "5": Cond.OPENING,  # re-opening prints
    "6": Cond.CLOSING,
    "M": Cond.CLOSING,  # market center official close
    "9": Cond.CORRECTION,  # corrected consolidated close
}

#: OPRA trade conditions as Alpaca sends them (one character) -> Cond bits
OPTION_CONDITIONS: Final[dict[str, Cond]] = {
    "A": Cond.CANCEL,  # canceled
    "B": Cond.LATE | Cond.OUT_OF_SEQ,  # late and out of sequence
    "C": Cond.CANCEL,  # last and canceled
    "D": Cond.LATE,
    "E": Cond.CANCEL | Cond.OPENING,  # opening trade and canceled
    "F": Cond.OPENING | Cond.LATE | Cond.OUT_OF_SEQ,
    "G": Cond.CANCEL,  # only trade and canceled
    "H": Cond.OPENING | Cond.LATE,
    "I": Cond.NONE,  # automatic execution
    "J": Cond.OPENING,  # reopening trade
    "S": Cond.ISO,  # intermarket sweep
    "a": Cond.AUCTION,  # single-leg auction, non-ISO
    "b": Cond.AUCTION | Cond.ISO,  # single-leg auction, ISO
    "c": Cond.NONE,  # single-leg cross, non-ISO
    "d": Cond.ISO,  # single-leg cross, ISO
    "e": Cond.FLOOR,  # single-leg floor trade
    "f": Cond.MULTI_LEG,  # multi-leg auto-electronic
    "g": Cond.MULTI_LEG | Cond.AUCTION,
    "h": Cond.MULTI_LEG,  # multi-leg cross
    "i": Cond.MULTI_LEG | Cond.FLOOR,
    "j": Cond.MULTI_LEG,  # multi-leg against single leg(s)
    "k": Cond.MULTI_LEG | Cond.STOCK_OPTION | Cond.AUCTION,
    "l": Cond.MULTI_LEG | Cond.AUCTION,
    "m": Cond.MULTI_LEG | Cond.FLOOR,
    "n": Cond.MULTI_LEG | Cond.STOCK_OPTION,
    "o": Cond.MULTI_LEG | Cond.STOCK_OPTION,
    "p": Cond.MULTI_LEG | Cond.STOCK_OPTION | Cond.FLOOR,
    "q": Cond.MULTI_LEG | Cond.STOCK_OPTION,
    "r": Cond.MULTI_LEG | Cond.STOCK_OPTION | Cond.AUCTION,
    "s": Cond.MULTI_LEG | Cond.STOCK_OPTION | Cond.FLOOR,
    "t": Cond.MULTI_LEG | Cond.FLOOR,
    "u": Cond.MULTI_LEG,
    "v": Cond.NONE,  # extended hours
}


def _codes(conditions: list[str] | str | None) -> list[str]:
    if conditions is None:
        return []
    if isinstance(conditions, str):
        return [conditions] if conditions.strip() else []
    return [c for c in conditions if c]


def equity_venue(code: str | None) -> tuple[str, bool]:
    """(venue code, off_exchange) for an Alpaca equity exchange code."""
    venue = (str(getattr(code, "value", code) or "")).strip()
    return venue, venue == OFF_EXCHANGE_CODE


def option_venue(code: str | None) -> str:
    return (str(getattr(code, "value", code) or "")).strip()


def equity_flags(conditions: list[str] | str | None) -> tuple[str, int]:
    """(raw codes space separated, Cond bits) of an equity trade's conditions."""
    return _equity_flags(tuple(_codes(conditions)))


@functools.lru_cache(maxsize=4096)  # a few dozen combinations occur: called per print
def _equity_flags(codes: tuple[str, ...]) -> tuple[str, int]:
    flags = 0
    for c in codes:
        flags |= int(EQUITY_CONDITIONS.get(c, 0))
    return " ".join(codes), flags


def option_flags(conditions: list[str] | str | None) -> tuple[str, int]:
    """(raw codes space separated, Cond bits) of an option trade's condition(s)."""
    if isinstance(conditions, str):
        return _option_flags_one(conditions)
    return _option_flags(conditions)


@functools.lru_cache(maxsize=256)
def _option_flags_one(condition: str) -> tuple[str, int]:
    return _option_flags(condition)


def _option_flags(conditions: list[str] | str | None) -> tuple[str, int]:
    codes = _codes(conditions)
    flags = Cond.NONE
    for c in codes:
        flags |= OPTION_CONDITIONS.get(c, Cond.NONE)
    return " ".join(codes), int(flags)
