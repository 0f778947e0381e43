"""Databento publisher ids -> the engine's venue codes.

Why a table of our own: every DBN record names its source as a ``publisher_id``
(dataset + venue); the engine's tables (tape, packets' distinct-venue counts, the
off-exchange rules) speak in the one-letter participant codes the SIPs and OPRA use,
with ``D`` for the FINRA TRFs/ADF (off-exchange).  ``databento.Publisher`` resolves
an id to its venue MIC and dataset; this module maps MICs to participant codes.  A
MIC without a known code is kept as the MIC itself (never guessed), so the venue is
still distinct and recognisable.

Equity venues come from the engine's one venue table (engine/venues.py: codes,
MICs, off-exchange); OPRA's option participant codes are only needed here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import databento as db
import numpy as np
import pandas as pd
import polars as pl

from islandflow_tui.engine import venues

#: OPRA participant ids by venue MIC (the ``exchange`` column of options.prints)
OPTION_CODES: Final[dict[str, str]] = {
    "AMXO": "A",  # NYSE American Options
    "XBOX": "B",  # BOX
    "XCBO": "C",  # Cboe Options
    "EMLD": "D",  # MIAX Emerald
    "EDGO": "E",  # Cboe EDGX Options
    "GMNI": "H",  # Nasdaq GEMX
    "XISX": "I",  # Nasdaq ISE
    "MCRY": "J",  # Nasdaq MRX
    "XMIO": "M",  # MIAX Options
    "ARCO": "N",  # NYSE Arca Options
    "MPRL": "P",  # MIAX Pearl
    "XNDQ": "Q",  # Nasdaq Options Market
    "SPHR": "S",  # MIAX Sapphire
    "XBXO": "T",  # Nasdaq BX Options
    "MXOP": "U",  # MEMX Options
    "C2OX": "W",  # Cboe C2
    "XPHL": "X",  # Nasdaq PHLX
    "BATO": "Z",  # Cboe BZX Options
}

#: CTA/UTP participant ids by venue MIC (the ``venue`` column of equities.prints),
#: read from the engine's one venue table (engine/venues.py), which also says which
#: venues are off-exchange (FINRA TRFs and ADF: ``D``)
EQUITY_CODES: Final[dict[str, str]] = {
    mic: v.code for v in venues.VENUES.values() for mic in v.mics
}

#: MICs whose prints are reported off-exchange (TRF/ADF)
OFF_EXCHANGE_MICS: Final = frozenset(
    mic for v in venues.VENUES.values() if v.off_exchange for mic in v.mics
)


@dataclass(frozen=True, slots=True)
class PublisherInfo:
    publisher_id: int
    dataset: str
    mic: str
    option_code: str
    equity_code: str
    off_exchange: bool


@functools.cache
def publisher(publisher_id: int) -> PublisherInfo:
    """What ``databento.Publisher`` says about an id, plus our codes (unknown id: ``?<id>``)."""
    try:
        pub = db.Publisher.from_int(int(publisher_id))
    except ValueError:
        tag = f"?{publisher_id}"
        return PublisherInfo(publisher_id, "", tag, tag, tag, False)
    mic = str(pub.venue)
    return PublisherInfo(
        int(publisher_id),
        str(pub.dataset),
        mic,
        OPTION_CODES.get(mic, mic),
        venues.venue_for_publisher(int(publisher_id)) or EQUITY_CODES.get(mic, mic),
        mic in OFF_EXCHANGE_MICS,
    )


def venue_columns(publisher_ids: np.ndarray) -> tuple[pl.Series, pl.Series, pl.Series]:
    """(option code, equity code, off-exchange) per record, vectorised over the few
    distinct ids of a batch."""
    codes, uniques = pd.factorize(np.asarray(publisher_ids), sort=False)
    ids, inverse = np.asarray(uniques), codes
    infos = [publisher(int(i)) for i in ids]
    idx = pl.Series(inverse.astype(np.uint32))
    opt = pl.Series([i.option_code for i in infos], dtype=pl.String).gather(idx)
    eq = pl.Series([i.equity_code for i in infos], dtype=pl.String).gather(idx)
    off = pl.Series([i.off_exchange for i in infos], dtype=pl.Boolean).gather(idx)
    return opt, eq, off


#: Databento datasets of US equities (everything else that is not OPRA is unsupported)
EQUITY_DATASETS: Final = frozenset(
    {
        "XNAS.ITCH",
        "XBOS.ITCH",
        "XPSX.ITCH",
        "BATS.PITCH",
        "BATY.PITCH",
        "EDGA.PITCH",
        "EDGX.PITCH",
        "XNYS.PILLAR",
        "XCIS.PILLAR",
        "XASE.PILLAR",
        "XCHI.PILLAR",
        "XCIS.BBO",
        "XCIS.TRADES",
        "XCIS.TRADESBBO",
        "MEMX.MEMOIR",
        "EPRL.DOM",
        "XNAS.NLS",
        "XNAS.QBBO",
        "XNAS.BASIC",
        "XNYS.TRADES",
        "XNYS.BBO",
        "XNYS.TRADESBBO",
        "IEXG.TOPS",
        "DBEQ.BASIC",
        "ARCX.PILLAR",
        "EQUS.PLUS",
        "EQUS.ALL",
        "EQUS.MINI",
        "EQUS.SUMMARY",
        "EQUS.SIP",
        "OCEA.MEMOIR",
    }
)


def asset_class(dataset: str) -> str:
    """``options``, ``equities`` or ``""`` (not something islandflow analyses)."""
    if dataset.startswith("OPRA."):
        return "options"
    if dataset in EQUITY_DATASETS:
        return "equities"
    return ""
