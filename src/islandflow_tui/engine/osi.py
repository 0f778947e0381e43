"""OSI option symbols: the 21-character root/expiry/right/strike form.

``SPY   251125C00580000`` = root ``SPY`` padded to 6, expiry 2025-11-25, call,
strike 580.000 (strike × 1000 as 8 digits).  One parser, used scalar (tests, UI
input) and vectorised (ingest validation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import polars as pl

OSI_RE = re.compile(r"^([A-Z0-9][A-Z0-9.]{0,5}) {0,5}(\d{6})([CP])(\d{8})$")
_OSI_PATTERN = r"^[A-Z0-9][A-Z0-9.]{0,5} {0,5}\d{6}[CP]\d{8}$"


class OsiError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class OsiContract:
    root: str
    expiry: date
    right: str
    strike: float

    @property
    def symbol(self) -> str:
        return format_osi(self.root, self.expiry, self.right, self.strike)


def format_osi(root: str, expiry: date, right: str, strike: float) -> str:
    millis = round(strike * 1000)
    if not (0 < len(root) <= 6) or right not in ("C", "P") or not 0 <= millis < 10**8:
        raise OsiError(f"cannot form an OSI symbol from {root!r} {expiry} {right} {strike}")
    return f"{root:<6}{expiry:%y%m%d}{right}{millis:08d}"


def parse_osi(symbol: str) -> OsiContract:
    if len(symbol) != 21:
        raise OsiError(f"OSI symbol {symbol!r} must be 21 characters, got {len(symbol)}")
    match = OSI_RE.match(symbol)
    if match is None:
        raise OsiError(f"OSI symbol {symbol!r} is not ROOT(6) YYMMDD C/P STRIKE(8)")
    root, ymd, right, strike = match.groups()
    try:
        expiry = date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:]))
    except ValueError:
        raise OsiError(f"OSI symbol {symbol!r} has an impossible expiry {ymd}") from None
    return OsiContract(root, expiry, right, int(strike) / 1000.0)


def osi_columns(symbol: pl.Expr) -> list[pl.Expr]:
    """root, expiry, right, strike from an OSI symbol column; nulls where invalid."""
    valid = (symbol.str.len_bytes() == 21) & symbol.str.contains(_OSI_PATTERN)
    return [
        pl.when(valid).then(symbol.str.slice(0, 6).str.strip_chars_end(" ")).alias("root"),
        pl.when(valid)
        .then(symbol.str.slice(6, 6).str.strptime(pl.Date, "%y%m%d", strict=False))
        .alias("expiry"),
        pl.when(valid).then(symbol.str.slice(12, 1)).alias("right"),
        pl.when(valid)
        .then(symbol.str.slice(13, 8).cast(pl.Int64, strict=False) / 1000.0)
        .alias("strike"),
    ]
