"""Join each option print to the NBBO in force and label where it traded.

Event-time and batch-size invariant: prints and quotes are buffered until the
watermark passes them, so a print is joined only once every quote stamped at or
before it has arrived (anything older than the watermark that arrives later is
rejected upstream as ``late``).  The last quote per contract is carried between
batches.  The output therefore depends only on the events, never on how they were
batched.

Join rule: the latest quote of the same contract with ``quote.ts <= print.ts``
(ties on ts go to the highest quote seq).  A quote whose age ``print.ts - quote.ts``
is ``<= max_age`` is in force; one ns older is ``STALE``; none at all is ``NO_NBBO``.

Placement, with ``tol`` = ``nbbo.at_tolerance`` dollars (float noise, not a price band):

=========  ==================================================================
``AA``      price > ask + tol
``A``       |price - ask| <= tol  (and not also at the bid)
``MID``     bid + tol < price < ask - tol
``B``       |price - bid| <= tol
``BB``      price < bid - tol
=========  ==================================================================

Locked quotes (``bid == ask`` within tol): a print at the locked price is at both
sides at once, i.e. at the midpoint, and is labelled ``MID`` (its side cannot be
read off the quote); above is ``AA``, below ``BB``.  Crossed quotes
(``bid > ask + tol``) are not a market anyone can trade against: the print is
labelled ``CROSSED`` and no side is implied, but the crossed bid/ask are kept on
the row so a person can see them.  ``quote_state`` records NORMAL, LOCKED,
CROSSED or NONE for every row.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from islandflow_tui.config import NbboConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.codes import first_code, masked
from islandflow_tui.engine.compute.quote_join import QuoteJoin
from islandflow_tui.engine.frames import filled, pick, valid

_QUOTE_COLS = ["ts", "seq", "id", "cid", "bid", "ask", "bid_size", "ask_size"]


class NbboJoin(QuoteJoin):
    """Stateful operator: (prints, quotes, watermark) -> joined prints with placement.

    Frames carry the engine's interned contract id ``cid`` (see validate.OsiCache),
    the key of the join and of the last-quote state.
    """

    def __init__(self, cfg: NbboConfig) -> None:
        self.max_age_ns = cfg.max_age_ms * ev.NS_PER_MS
        self.tol = cfg.at_tolerance
        nbbo = ev.polars_schema(ev.OPTIONS_NBBO)
        last = pl.DataFrame(schema={k: pl.UInt32 if k == "cid" else nbbo[k] for k in _QUOTE_COLS})
        super().__init__(last, key="cid", quote_id="nbbo_id")

    @property
    def contracts_quoted(self) -> int:
        return self._last_quote.height

    # -- processing ---------------------------------------------------------
    def process(
        self, prints: pl.DataFrame | None, quotes: pl.DataFrame | None, watermark: int
    ) -> pl.DataFrame | None:
        """Release and join every print with ``ts < watermark``; None if there is none."""
        quotes = pick(quotes, _QUOTE_COLS) if quotes is not None and quotes.height else None
        joined = self._join(prints, quotes, watermark)
        return self._label(joined) if joined is not None else None

    def flush(self) -> pl.DataFrame | None:
        """Release everything still buffered (end of a replay or shutdown)."""
        return self.process(None, None, 2**62)

    def _label(self, df: pl.DataFrame) -> pl.DataFrame:
        """Quote state, placement, age, mid, spread, premium in one numpy pass.

        Placement and quote state also stay as small-int codes (``plc_code`` into
        ``ev.PLACEMENTS``, ``qs_code`` into ``ev.QUOTE_STATES``): the side and signal
        operators work on them instead of comparing strings (engine-internal, like
        ``cid``).  Values under nulls are what polars' arithmetic wrote there before
        (the join leaves 0 under a missing quote), so every output byte is unchanged.
        """
        tol = self.tol
        n = df.height
        has_quote = valid(df.get_column("nbbo_id"))
        price = df.get_column("price").to_numpy()
        size = df.get_column("size").to_numpy()
        # 0 under the nulls, as the join wrote there
        bid = filled(df.get_column("bid"), 0.0)
        ask = filled(df.get_column("ask"), 0.0)
        ts = df.get_column("ts").to_numpy()
        age = ts - filled(df.get_column("quote_ts"), 0)
        crossed = bid > ask + tol
        locked = np.abs(ask - bid) <= tol
        qs = first_code(
            [~has_quote, crossed, locked], [_QS_NONE, _QS_CROSSED, _QS_LOCKED], _QS_NORMAL
        )
        plc = first_code(
            [
                ~has_quote,
                age > self.max_age_ns,
                qs == _QS_CROSSED,
                price > ask + tol,
                price < bid - tol,
                qs == _QS_LOCKED,
                np.abs(price - ask) <= tol,
                np.abs(price - bid) <= tol,
            ],
            [
                _PLC_NO_NBBO,
                _PLC_STALE,
                _PLC_CROSSED,
                _PLC_AA,
                _PLC_BB,
                _PLC_MID,
                _PLC_A,
                _PLC_B,
            ],
            _PLC_MID,
        )
        mask = None if n == 0 or has_quote.all() else ~has_quote
        return df.hstack(
            [
                pl.Series("quote_age_ns", masked(age, mask), dtype=pl.Int64),
                _QUOTE_STATES[qs.astype(np.uint32)],
                pl.Series("mid", masked((bid + ask) / 2, mask), dtype=pl.Float64),
                pl.Series("spread", masked(ask - bid, mask), dtype=pl.Float64),
                pl.Series("premium", price * size * 100.0, dtype=pl.Float64),
                _PLACEMENTS[plc.astype(np.uint32)],
                pl.Series("plc_code", plc, dtype=pl.Int8),
                pl.Series("qs_code", qs, dtype=pl.Int8),
            ]
        )


_PLACEMENTS = pl.Series("placement", ev.PLACEMENTS, dtype=pl.String)
_QUOTE_STATES = pl.Series("quote_state", ev.QUOTE_STATES, dtype=pl.String)
_PLC = {p: i for i, p in enumerate(ev.PLACEMENTS)}
_PLC_AA, _PLC_A, _PLC_MID, _PLC_B, _PLC_BB = (_PLC[p] for p in ("AA", "A", "MID", "B", "BB"))
_PLC_NO_NBBO, _PLC_STALE, _PLC_CROSSED = (_PLC[p] for p in ("NO_NBBO", "STALE", "CROSSED"))
_QS = {q: i for i, q in enumerate(ev.QUOTE_STATES)}
_QS_NORMAL, _QS_LOCKED, _QS_CROSSED, _QS_NONE = (
    _QS[q] for q in ("NORMAL", "LOCKED", "CROSSED", "NONE")
)
