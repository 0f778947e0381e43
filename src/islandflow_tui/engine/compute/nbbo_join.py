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

import polars as pl

from islandflow_tui.config import NbboConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.quote_join import QuoteJoin

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
        quotes = quotes.select(_QUOTE_COLS) if quotes is not None and quotes.height else None
        joined = self._join(prints, quotes, watermark)
        return self._label(joined) if joined is not None else None

    def flush(self) -> pl.DataFrame | None:
        """Release everything still buffered (end of a replay or shutdown)."""
        return self.process(None, None, 2**62)

    def _label(self, df: pl.DataFrame) -> pl.DataFrame:
        tol = self.tol
        price, bid, ask = pl.col("price"), pl.col("bid"), pl.col("ask")
        age = (pl.col("ts") - pl.col("quote_ts")).alias("quote_age_ns")
        has_quote = pl.col("nbbo_id").is_not_null()
        quote_state = (
            pl.when(~has_quote)
            .then(pl.lit("NONE"))
            .when(bid > ask + tol)
            .then(pl.lit("CROSSED"))
            .when((ask - bid).abs() <= tol)
            .then(pl.lit("LOCKED"))
            .otherwise(pl.lit("NORMAL"))
            .alias("quote_state")
        )
        placement = (
            pl.when(~has_quote)
            .then(pl.lit("NO_NBBO"))
            .when(pl.col("quote_age_ns") > self.max_age_ns)
            .then(pl.lit("STALE"))
            .when(pl.col("quote_state") == "CROSSED")
            .then(pl.lit("CROSSED"))
            .when(price > ask + tol)
            .then(pl.lit("AA"))
            .when(price < bid - tol)
            .then(pl.lit("BB"))
            .when(pl.col("quote_state") == "LOCKED")
            .then(pl.lit("MID"))
            .when((price - ask).abs() <= tol)
            .then(pl.lit("A"))
            .when((price - bid).abs() <= tol)
            .then(pl.lit("B"))
            .otherwise(pl.lit("MID"))
            .alias("placement")
        )
        return df.with_columns(
            age,
            quote_state,
            ((bid + ask) / 2).alias("mid"),
            (ask - bid).alias("spread"),
            (price * pl.col("size") * 100.0).alias("premium"),
        ).with_columns(placement)
