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
import pyarrow as pa
import pyarrow.compute as pc

from islandflow_tui.config import SignalConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.codes import first_code
from islandflow_tui.engine.frames import filled, valid

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


_PLC: Final = {p: i for i, p in enumerate(ev.PLACEMENTS)}
_QS_CROSSED: Final = ev.QUOTE_STATES.index("CROSSED")


def _codes(df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(placement code, quote state code) per row: the NBBO join's internal code
    columns when present, else read from the strings (frames built without it)."""
    if "plc_code" in df.columns and "qs_code" in df.columns:
        return df.get_column("plc_code").to_numpy(), df.get_column("qs_code").to_numpy()
    qs = {q: i for i, q in enumerate(ev.QUOTE_STATES)}
    codes = df.select(
        pl.col("placement").replace_strict(_PLC, return_dtype=pl.Int8),
        pl.col("quote_state").replace_strict(qs, return_dtype=pl.Int8),
    )
    return codes.to_series(0).to_numpy(), codes.to_series(1).to_numpy()


def _is_etf(df: pl.DataFrame, cfg: SignalConfig) -> np.ndarray:
    return _roots_in(df.get_column("root"), cfg.etf_underlyings)


def _roots_in(roots: pl.Series, names: list[str]) -> np.ndarray:
    """Whether each root is one of ``names`` (a null root is not), by Arrow's
    ``is_in``: polars' ``is_in`` with a Python list cost ~0.5 ms per call whatever
    the length, and the new contracts of a batch are a few dozen rows."""
    arr = roots.to_arrow()
    hit = pc.is_in(arr, value_set=pa.array(names, type=arr.type))
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)


class EtfFlags:
    """Per contract id (``cid``, see validate.OsiCache), whether its root is one of
    ``signal.etf_underlyings``: a cid's root never changes, so each contract's root
    is compared with the list once instead of every print's (a string ``is_in`` per
    print cost ~1 ms per firehose batch).  Belongs to one engine symbol table."""

    def __init__(self, cfg: SignalConfig) -> None:
        self.cfg = cfg
        self._flag = np.zeros(0, dtype=bool)
        self._known = np.zeros(0, dtype=bool)

    def of(self, df: pl.DataFrame) -> np.ndarray:
        cid_s = df.get_column("cid")
        if cid_s.null_count() or not len(cid_s):
            return _is_etf(df, self.cfg)
        cid = cid_s.to_numpy().astype(np.int64)
        top = int(cid.max()) + 1
        if top > len(self._known):
            grow = top - len(self._known)
            self._flag = np.concatenate([self._flag, np.zeros(grow, dtype=bool)])
            self._known = np.concatenate([self._known, np.zeros(grow, dtype=bool)])
        new = np.flatnonzero(~self._known[cid])
        if len(new):
            rows = pl.Series(new)
            flags = _roots_in(df.get_column("root")[rows], self.cfg.etf_underlyings)
            self._flag[cid[new]] = flags
            self._known[cid[new]] = True
        return self._flag[cid]


def _verdict(
    cfg: SignalConfig,
    a: dict[str, np.ndarray],
    factor: float,
    strict_nbbo: bool,
) -> np.ndarray:
    """Reason code per row (0 = pass); the first rule that applies wins, as in the
    module docstring (numpy on the join's codes: ~10x cheaper than string when/then)."""
    premium, plc, is_etf = a["premium"], a["plc"], a["is_etf"]
    iso = (a["flags"] & int(ev.Cond.ISO)) != 0
    base = np.where(is_etf, cfg.etf_min_notional * factor, cfg.min_notional * factor)
    bid_min = cfg.bid_side_min_notional * factor
    mid_min = cfg.mid_min_notional * factor
    no_quote, crossed, too_old = a["no_quote"], a["crossed"], a["too_old"]
    conds: list[np.ndarray] = []
    codes: list[int] = []
    if strict_nbbo:
        conds += [no_quote, crossed, too_old]
        codes += [_CODE["no_nbbo"], _CODE["crossed_nbbo"], _CODE["stale_nbbo"]]
    else:
        conds.append((no_quote | crossed | too_old) & (premium < bid_min))
        codes.append(_CODE["no_nbbo"])
    below = premium < base
    conds += [
        below & is_etf,
        below,
        ((plc == _PLC["B"]) | (plc == _PLC["BB"])) & (premium < bid_min),
        (plc == _PLC["MID"]) & ~iso & (premium < mid_min),
        (plc == _PLC["STALE"]) & (premium < bid_min),
    ]
    codes += [
        _CODE["below_etf_min"],
        _CODE["below_min"],
        _CODE["bid_side_below_min"],
        _CODE["mid_below_min"],
        _CODE["unplaced_below_min"],
    ]
    return first_code(conds, codes, _CODE["pass"], np.uint8)


def signal_columns(df: pl.DataFrame, cfg: SignalConfig) -> pl.DataFrame:
    """Add signal_pass, signal_reason and signal_mask to joined, labelled prints."""
    return df.with_columns(signal_series(df, cfg))


def signal_series(
    df: pl.DataFrame, cfg: SignalConfig, etf: EtfFlags | None = None
) -> list[pl.Series]:
    """signal_mask, signal_pass and signal_reason of joined, labelled prints; ``etf``
    (optional) remembers which contract ids are on ETF underlyings."""
    max_age = cfg.nbbo_max_age_ms * ev.NS_PER_MS
    plc, qs = _codes(df)
    no_quote = ~valid(df.get_column("nbbo_id"))
    age = filled(df.get_column("quote_age_ns"), 0)
    a = {
        "premium": df.get_column("premium").to_numpy(),
        "plc": plc,
        "is_etf": etf.of(df) if etf is not None else _is_etf(df, cfg),
        "flags": df.get_column("flags").to_numpy(),
        "no_quote": no_quote,
        "crossed": ~no_quote & (qs == _QS_CROSSED),
        "too_old": ~no_quote & (age > max_age),
    }
    s_code = _verdict(cfg, a, 1.0, strict_nbbo=True)
    b_code = _verdict(cfg, a, cfg.balanced_factor, strict_nbbo=False)
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
    return [
        pl.Series("signal_mask", mask, dtype=pl.Int8),
        pl.Series("signal_pass", (reason == 0) | (reason == _CODE["policy_all"])),
        _NAMES[reason.astype(np.uint32)],
    ]
