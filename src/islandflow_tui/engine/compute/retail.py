"""Retail flag and side of off-exchange equity prints.

Why sub-pennies: a wholesaler filling a marketable retail order off-exchange gives
it a small price improvement, which leaves a fraction of a cent in the trade price
that institutional crosses (at whole cents or the midpoint) do not have.

**Identification** (Boehmer, Jones, Zhang and Zhang 2021, "Tracking Retail Investor
Activity"): a print reported to a TRF/ADF (``off_exchange``) whose price has a
sub-penny fraction ``Z = 100 * (price mod 0.01)`` (in cents, 0 <= Z < 1) with
``0 < Z < 0.4`` or ``0.6 < Z < 1``.  ``Z`` in ``[0.4, 0.6]`` is excluded: those are
mostly midpoint crosses (institutional), and ``Z = 0`` is a whole-cent price.

**Side.**  BJZZ sign by the fraction alone: ``Z > 0.6`` a retail buy (the
wholesaler sold just under a whole cent), ``Z < 0.4`` a retail sell.  Barber,
Huang, Jorion, Odean and Schwarz (2024, "A (Sub)penny for Your Thoughts") show this
mis-signs many trades and propose the quote-midpoint refinement used by default
(``equities.retail_side_rule = "midpoint"``): sign by where the price sits in the
NBBO spread in force, ``p = (price - bid) / (ask - bid)``: a buy if ``p > 0.6``, a sell
if ``p < 0.4``, unsigned in between (too close to the midpoint to tell), and unsigned
when there is no usable quote (none, stale, crossed or locked).

``Z`` is computed in integers: the price is rounded to 1e-6 dollars (float noise
such as ``10.000000001`` is not a sub-penny) and ``Z`` kept in 1e-4 cent units.
"""

from __future__ import annotations

from typing import Final

import numpy as np

#: Z thresholds in 1e-4 cent units (Z of 0.4 and 0.6 cents).
Z_LOW: Final = 4000
Z_HIGH: Final = 6000
_CENT_UNITS: Final = 10_000  # 1e-6 dollars per cent


def subpenny_units(price: np.ndarray) -> np.ndarray:
    """``Z`` of each price in 1e-4 cent units (0 .. 9999)."""
    micro = np.rint(np.asarray(price, dtype=np.float64) * 1e6).astype(np.int64)
    return micro % _CENT_UNITS


def retail_flags(
    price: np.ndarray,
    off_exchange: np.ndarray,
    bid: np.ndarray,
    ask: np.ndarray,
    quote_usable: np.ndarray,
    rule: str = "midpoint",
) -> tuple[np.ndarray, np.ndarray]:
    """(retail bool, side code: 1 buy, -1 sell, 0 unsigned) per print.

    ``bid``/``ask`` may hold NaN where ``quote_usable`` is false.
    """
    z = subpenny_units(price)
    low = (z > 0) & (z < Z_LOW)
    high = z > Z_HIGH
    retail = np.asarray(off_exchange, dtype=bool) & (low | high)
    if rule == "bjzz":
        side = np.where(high, 1, np.where(low, -1, 0))
    elif rule == "midpoint":
        spread = ask - bid
        ok = np.asarray(quote_usable, dtype=bool) & (spread > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            pos = np.where(ok, (price - bid) / np.where(ok, spread, 1.0), 0.5)
        side = np.where(ok & (pos > 0.6), 1, np.where(ok & (pos < 0.4), -1, 0))
    else:
        raise ValueError(f"unknown retail side rule {rule!r}; expected midpoint or bjzz")
    return retail, np.where(retail, side, 0).astype(np.int8)
