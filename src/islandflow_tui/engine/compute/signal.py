"""Signal filter: which enriched option prints carry information worth showing.

Stateless and vectorised.  Every print gets a verdict under all three policies
(``signal_mask``: bit 1 smart-money, 2 balanced, 4 all) so a screen can switch
preset without recomputing, plus ``signal_pass`` / ``signal_reason`` under the
configured policy.  Thresholds are the seed's (OPTIONS_SIGNAL_*).

smart-money, rules in order, the first that fails names the reason:

1. ``no_nbbo`` / ``crossed_nbbo`` / ``stale_nbbo``: there must be a quote, not
   crossed, no older than ``signal.nbbo_max_age_ms`` (1500).  Its placement is only
   known if it is also within ``nbbo.max_age_ms`` (1000); see rule 5.
2. ``below_etf_min`` (ETF underlyings, 50 000) / ``below_min`` (others, 10 000):
   premium below the base minimum.
3. ``bid_side_below_min``: placement B or BB and premium < 25 000 (selling into
   the bid is usually closing or hedging: a higher bar).
4. ``mid_below_min``: placement MID, not ISO, premium < 20 000.
5. ``unplaced_below_min``: placement STALE (quote between 1000 and 1500 ms old, so no
   placement) and premium < 25 000: its side is unknown, so it must clear the
   bid-side bar.

A print that clears every rule passes with reason ``pass``.

balanced multiplies every threshold by ``signal.balanced_factor`` (0.5) and lets
prints with no usable quote through when they clear the bid-side bar (reason
``no_nbbo`` only when they do not).  all passes everything (``policy_all``).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl

from islandflow_tui.config import SignalConfig
from islandflow_tui.engine import events as ev

#: verdicts as small ints while computing (when/then on int literals is ~3x cheaper
#: than on strings); the names are gathered once at the end
REASONS: Final = (
    "pass",
    "no_nbbo",
    "crossed_nbbo",
    "stale_nbbo",
    "below_etf_min",
    "below_min",
    "bid_side_below_min",
    "mid_below_min",
    "unplaced_below_min",
    "policy_all",
)
_CODE: Final = {r: i for i, r in enumerate(REASONS)}
_NAMES: Final = pl.Series("signal_reason", REASONS, dtype=pl.String)


def _code(reason: str) -> pl.Expr:
    return pl.lit(_CODE[reason], pl.UInt8)


def _verdict(
    cfg: SignalConfig, max_age_ns_signal: int, factor: float, strict_nbbo: bool
) -> pl.Expr:
    premium = pl.col("premium")
    placement = pl.col("placement")
    is_etf = pl.col("root").is_in(cfg.etf_underlyings)
    iso = (pl.col("flags") & int(ev.Cond.ISO)) != 0
    base = pl.when(is_etf).then(cfg.etf_min_notional * factor).otherwise(cfg.min_notional * factor)
    bid_min = cfg.bid_side_min_notional * factor
    mid_min = cfg.mid_min_notional * factor
    no_quote = pl.col("nbbo_id").is_null()
    crossed = pl.col("quote_state") == "CROSSED"
    too_old = pl.col("quote_age_ns") > max_age_ns_signal
    unusable = no_quote | crossed | too_old

    expr = pl.when(pl.lit(False)).then(pl.lit(None, pl.UInt8))
    if strict_nbbo:
        expr = (
            expr.when(no_quote)
            .then(_code("no_nbbo"))
            .when(crossed)
            .then(_code("crossed_nbbo"))
            .when(too_old)
            .then(_code("stale_nbbo"))
        )
    else:
        expr = expr.when(unusable & (premium < bid_min)).then(_code("no_nbbo"))
    return (
        expr.when(premium < base)
        .then(pl.when(is_etf).then(_code("below_etf_min")).otherwise(_code("below_min")))
        .when(placement.is_in(["B", "BB"]) & (premium < bid_min))
        .then(_code("bid_side_below_min"))
        .when((placement == "MID") & ~iso & (premium < mid_min))
        .then(_code("mid_below_min"))
        .when((placement == "STALE") & (premium < bid_min))
        .then(_code("unplaced_below_min"))
        .otherwise(_code("pass"))
    )


def signal_columns(df: pl.DataFrame, cfg: SignalConfig) -> pl.DataFrame:
    """Add signal_pass, signal_reason and signal_mask to joined, labelled prints."""
    max_age = cfg.nbbo_max_age_ms * ev.NS_PER_MS
    smart = _verdict(cfg, max_age, 1.0, strict_nbbo=True)
    balanced = _verdict(cfg, max_age, cfg.balanced_factor, strict_nbbo=False)
    codes = df.select(smart.alias("s"), balanced.alias("b"))
    s_code, b_code = codes.get_column("s").to_numpy(), codes.get_column("b").to_numpy()
    mask = (
        np.where(s_code == 0, ev.SIGNAL_BIT["smart-money"], 0)
        + np.where(b_code == 0, ev.SIGNAL_BIT["balanced"], 0)
        + ev.SIGNAL_BIT["all"]
    ).astype(np.int8)
    if cfg.mode == "smart-money":
        reason = s_code
    elif cfg.mode == "balanced":
        reason = b_code
    else:
        reason = np.full(df.height, _CODE["policy_all"], dtype=np.uint8)
    return df.with_columns(
        pl.Series("signal_mask", mask, dtype=pl.Int8),
        pl.Series("signal_pass", (reason == 0) | (reason == _CODE["policy_all"])),
        _NAMES.gather(reason.astype(np.uint32)),
    )
