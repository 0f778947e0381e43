"""The as-of join both print/quote joins share: buffer, release by watermark, join.

Prints and quotes wait until the watermark passes them, so a print is joined only
once every quote stamped at or before it has arrived; the latest quote per key is
carried between batches.  The output therefore depends only on the events, never
on how they were batched.  Subclasses (options NBBO join: key ``cid``; equities
join: key ``symbol``) prepare the frames they buffer and label what comes out.
"""

from __future__ import annotations

from typing import Any

import polars as pl


class QuoteJoin:
    """Buffers and joins; ``key`` is the join's by-column, ``quote_id`` the name the
    quote's id takes on the joined rows."""

    def __init__(self, last_quote: pl.DataFrame, key: str, quote_id: str) -> None:
        self.key = key
        self.quote_id = quote_id
        self._pending_prints: list[pl.DataFrame] = []
        self._pending_quotes: list[pl.DataFrame] = []
        self._last_quote = last_quote

    # -- state (checkpointed by the engine) -------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "last_quote": self._last_quote,
            "pending_prints": _concat(self._pending_prints),
            "pending_quotes": _concat(self._pending_quotes),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`; absent or empty pending parts mean nothing pending
        (an engine checkpoint drops them: replay re-feeds raw rows from its watermark)."""
        self._last_quote = state["last_quote"]
        prints, quotes = state.get("pending_prints"), state.get("pending_quotes")
        self._pending_prints = [prints] if prints is not None and prints.height else []
        self._pending_quotes = [quotes] if quotes is not None and quotes.height else []

    # -- processing ---------------------------------------------------------------
    def _join(
        self, prints: pl.DataFrame | None, quotes: pl.DataFrame | None, watermark: int
    ) -> pl.DataFrame | None:
        """Buffer the (prepared) frames, then join every print with ``ts < watermark``
        to the latest quote of its key at or before it; None if no print is released."""
        if prints is not None and prints.height:
            self._pending_prints.append(prints)
        if quotes is not None and quotes.height:
            self._pending_quotes.append(quotes)
        rel_quotes = _release(self._pending_quotes, watermark)
        rel_prints = _release(self._pending_prints, watermark)
        joined: pl.DataFrame | None = None
        if rel_quotes is not None:
            rel_quotes = _time_ordered(rel_quotes)
        if rel_prints is not None:
            rel_prints = _time_ordered(rel_prints)
            right = self._last_quote
            if rel_quotes is not None:
                # last_quote rows are all older than the released quotes, so the
                # concatenation is already in (ts, seq) order
                right = pl.concat([right, rel_quotes], how="vertical")
            right = right.rename({"ts": "quote_ts", "seq": "quote_seq", "id": self.quote_id})
            joined = rel_prints.join_asof(
                right,
                left_on="ts",
                right_on="quote_ts",
                by=self.key,
                strategy="backward",
                check_sortedness=False,
            )
        if rel_quotes is not None:
            self._last_quote = (
                pl.concat([self._last_quote, rel_quotes], how="vertical")
                .unique(subset=self.key, keep="last", maintain_order=False)
                .sort(self.key)
            )
        return joined


def _time_ordered(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows in (ts, seq) order; seq already rises with arrival, so sorted ts is enough."""
    if frame.get_column("ts").is_sorted():
        return frame
    return frame.sort("ts", "seq")


def _release(pending: list[pl.DataFrame], watermark: int) -> pl.DataFrame | None:
    """Pop rows with ts < watermark from ``pending`` (in place); None if there are none."""
    frame = _concat(pending)
    pending.clear()
    if frame is None or frame.height == 0:
        return None
    ts = frame.get_column("ts")
    if ts.max() < watermark:  # type: ignore[operator]
        return frame
    mask = ts < watermark
    keep = frame.filter(~mask)
    if keep.height:
        pending.append(keep)
    out = frame.filter(mask)
    return out if out.height else None


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
    if not frames:
        return None
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")
