"""Dark *levels*: prices where off-exchange volume concentrates over the session.

Traders watch the prices at which large off-exchange volume printed ("dark pool
levels") as support and resistance.  This operator keeps, per symbol, the session's
off-exchange volume in price buckets and reports the buckets that stand out.

* **Input**: every off-exchange print that is not a correction or cancel (odd lots
  included: they are volume too).
* **Buckets**: ``dark.level_bucket_bps`` (5 bp) of the symbol's first off-exchange
  price, rounded to whole cents (at least one cent), fixed for the session, so a
  bucket never moves.  Prices are taken in integer 1e-4 dollars (exact sums).
* **Evaluation** at every multiple ``B`` of ``dark.level_interval_ms`` (60 s) of event
  time, over the prints with ``ts < B``, once the watermark has passed ``B``: a
  bucket is a level if it holds at least ``level_min_volume`` (20 000) shares, at
  least ``level_min_share`` (5 %) of the symbol's off-exchange session volume, and is
  among the symbol's ``level_max`` (3) largest buckets (ties: lower price first).
* **Emission**: a ``level`` event (ts ``B``) when a bucket first becomes a level,
  and again whenever its volume has grown by ``level_growth`` (50 %) since it was
  last emitted.  ``total_size`` is the session volume at the level, ``price`` its
  VWAP, ``notional`` its dollars; direction from the signed volume as for the other
  patterns; confidence = 0.5 + 0.5 × min(1, (share - min_share) / (3 × min_share)),
  i.e. 0.5 at the share threshold and 1 at four times it.  Evidence: the level's
  largest prints (at least ``dark.min_print_size``, at most ``max_evidence``).

Everything is decided at boundaries in event time from integer sums, so the output
does not depend on batching.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow.compute as pc

from islandflow_tui.config import DarkConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.frames import pick, put

_AGG_SCHEMA = {
    "symbol": pl.String,
    "bucket": pl.Int64,
    "volume": pl.Int64,
    "notional_u": pl.Int64,  # sum of price (1e-4 $) * size
    "count": pl.Int64,
    "buy": pl.Int64,
    "sell": pl.Int64,
    "emitted": pl.Int64,  # volume when last emitted, 0 if never
}
_EV_SCHEMA = {
    "symbol": pl.String,
    "bucket": pl.Int64,
    "size": pl.Int64,
    "ts": pl.Int64,
    "id": pl.Int64,
}
_WIDTH_SCHEMA = {"symbol": pl.String, "width": pl.Int64}


class DarkLevels:
    """Session off-exchange volume by price bucket; emits ``level`` inferences."""

    def __init__(self, cfg: DarkConfig) -> None:
        self.cfg = cfg
        self.interval_ns = cfg.level_interval_ms * ev.NS_PER_MS
        self._agg = pl.DataFrame(schema=_AGG_SCHEMA)
        # per (symbol, bucket): the largest prints so far as (size, ts, id) arrays in
        # (size desc, ts, id) order, and the floor a new print must beat once full
        self._ev: dict[tuple[str, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._width = pl.DataFrame(schema=_WIDTH_SCHEMA)
        self._frontier = -1  # last boundary evaluated (-1: none yet)
        self._dirty = False  # prints added since the last evaluation

    # -- state ----------------------------------------------------------------
    def state(self) -> dict[str, pl.DataFrame]:
        meta = pl.DataFrame(
            {"frontier": [self._frontier], "dirty": [self._dirty]},
            schema={"frontier": pl.Int64, "dirty": pl.Boolean},
        )
        keys = sorted(self._ev)
        evidence = pl.DataFrame(
            {
                "symbol": [k[0] for k in keys for _ in range(len(self._ev[k][0]))],
                "bucket": [k[1] for k in keys for _ in range(len(self._ev[k][0]))],
                "size": np.concatenate([self._ev[k][0] for k in keys]) if keys else [],
                "ts": np.concatenate([self._ev[k][1] for k in keys]) if keys else [],
                "id": np.concatenate([self._ev[k][2] for k in keys]) if keys else [],
            },
            schema=_EV_SCHEMA,
        )
        return {"agg": self._agg, "evidence": evidence, "width": self._width, "meta": meta}

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        self._agg = state["agg"]
        self._ev = {}
        self._merge_evidence(state["evidence"])
        self._width = state["width"]
        self._frontier = int(state["meta"]["frontier"][0])
        self._dirty = bool(state["meta"]["dirty"][0])

    # -- processing -------------------------------------------------------------
    def process(self, offx: pl.DataFrame | None, watermark: int) -> list[dict[str, Any]]:
        """``offx``: off-exchange joined prints (ts, id, symbol, price, size, sign)
        released below ``watermark``, in time order.  Returns level events."""
        rows: list[dict[str, Any]] = []
        step = self.interval_ns
        first = (self._frontier // step + 1) * step if self._frontier >= 0 else None
        if offx is not None and offx.height and first is None:
            first = (int(offx.get_column("ts").min()) // step + 1) * step  # type: ignore[arg-type]
        rest = offx if offx is not None and offx.height else None
        if first is not None:
            b = first
            # strictly below: prints at ts == watermark may still come (and fire
            # inferences stamped at the boundary, which sort before its levels)
            while b < watermark:
                if rest is not None:
                    ts = rest.get_column("ts")
                    done = rest.filter(ts < b)
                    rest = rest.filter(ts >= b)
                    if done.height:
                        self._add(done)
                    if not rest.height:
                        rest = None
                if self._dirty:  # nothing new: evaluating again could not change a thing
                    rows += self._evaluate(b)
                    self._dirty = False
                self._frontier = b
                if rest is None:  # skip the empty boundaries up to the watermark
                    self._frontier = max(b, ((watermark - 1) // step) * step)
                    break
                b = max(b + step, (int(rest.get_column("ts").min()) // step + 1) * step)  # type: ignore[arg-type]
                self._frontier = b - step
        if rest is not None:
            self._add(rest)
            if self._frontier < 0:
                self._frontier = (int(rest.get_column("ts").min()) // step) * step  # type: ignore[arg-type]
        return rows

    def _add(self, offx: pl.DataFrame) -> None:
        """Fold off-exchange prints into the per (symbol, bucket) volumes, in numpy:
        the frames are a few thousand rows over a few symbols, where each polars join
        or group_by cost 0.3-0.4 ms of fixed overhead per batch."""
        if offx.height == 0:
            return
        self._dirty = True
        sym = offx.get_column("symbol")
        code = self._codes(sym)
        if (code < 0).any():
            self._learn_widths(offx, sym.filter(pl.Series(code < 0)).unique())
            code = self._codes(sym)
        width = self._width.get_column("width").to_numpy()[code]
        size = offx.get_column("size").to_numpy()
        sign = offx.get_column("sign").to_numpy()
        # price in 1e-4 $, rounded half to even as polars' round(0) does
        pu = np.rint(offx.get_column("price").to_numpy() * 10_000).astype(np.int64)
        bucket = pu // width
        old = self._agg
        old_code = self._codes(old.get_column("symbol"))
        keys_code = np.concatenate([old_code, code])
        keys_bucket = np.concatenate([old.get_column("bucket").to_numpy(), bucket])
        zeros = np.zeros(len(code), dtype=np.int64)

        def both(col: str, new: np.ndarray) -> np.ndarray:
            return np.concatenate([old.get_column(col).to_numpy(), new])

        vals = {
            "volume": both("volume", size),
            "notional_u": both("notional_u", pu * size),
            "count": both("count", np.ones(len(code), dtype=np.int64)),
            "buy": both("buy", np.where(sign > 0, size, 0)),
            "sell": both("sell", np.where(sign < 0, size, 0)),
        }
        emitted = both("emitted", zeros)
        # (symbol, bucket) order: codes index the symbol-sorted width table
        order = np.lexsort((keys_bucket, keys_code))
        kc, kb = keys_code[order], keys_bucket[order]
        starts = np.flatnonzero(np.r_[True, (kc[1:] != kc[:-1]) | (kb[1:] != kb[:-1])])
        names = self._width.get_column("symbol")
        self._agg = pl.DataFrame(
            {
                "symbol": names[kc[starts]],
                "bucket": kb[starts],
                **{c: np.add.reduceat(v[order], starts) for c, v in vals.items()},
                "emitted": np.maximum.reduceat(emitted[order], starts),
            },
            schema=_AGG_SCHEMA,
        )
        big = np.flatnonzero(size >= self.cfg.min_print_size)
        if len(big):
            # the evidence order (symbol, bucket, size desc, ts, id) by numpy: codes
            # index the symbol-sorted width table, so code order is symbol order (a
            # polars sort of a frame built for it cost ~1 % of the pipeline)
            ts = offx.get_column("ts").to_numpy()[big]
            ids = offx.get_column("id").to_numpy()[big]
            zs, bk, cd = size[big], bucket[big], code[big]
            o = np.lexsort((ids, ts, -zs, bk, cd))
            cd, bk = cd[o], bk[o]
            new_run = np.ones(len(o), dtype=bool)
            new_run[1:] = (cd[1:] != cd[:-1]) | (bk[1:] != bk[:-1])
            starts = np.flatnonzero(new_run)
            self._merge_runs(names[cd[starts]].to_list(), bk, starts, zs[o], ts[o], ids[o])

    def _codes(self, symbols: pl.Series) -> np.ndarray:
        """Index of each symbol in the (symbol-sorted) width table, -1 if absent."""
        values = self._width.get_column("symbol").to_arrow()
        idx = pc.index_in(symbols.to_arrow(), value_set=values)
        return pc.fill_null(idx, -1).to_numpy().astype(np.int64)

    def _learn_widths(self, offx: pl.DataFrame, unseen: pl.Series) -> None:
        """Bucket widths of symbols seen for the first time, from their first print
        (offx is in (ts, id) order)."""
        new_syms = (
            offx.filter(pl.col("symbol").is_in(unseen.implode()))
            .group_by("symbol", maintain_order=True)
            .first()
        )
        bps = self.cfg.level_bucket_bps
        widths = (
            np.maximum(
                np.rint(new_syms.get_column("price").to_numpy() * bps / 1e4 * 100).astype(np.int64),
                1,
            )
            * 100
        )
        self._width = pl.concat(
            [self._width, pl.DataFrame({"symbol": new_syms["symbol"], "width": widths})],
            how="vertical",
        ).sort("symbol")

    def _merge_evidence(self, big: pl.DataFrame) -> None:
        """Fold new prints into each bucket's largest-k list.  Of a full bucket only
        prints above its floor (its k-th size; ties go to the earlier print) are
        merged, so a batch costs O(new prints) once buckets have filled.  One polars
        sort, then numpy on the runs (a join with a floor table, a filter and a
        run-id select cost ~1 ms of fixed overhead per batch)."""
        if big.height == 0:
            return
        cand = big.sort(
            ["symbol", "bucket", "size", "ts", "id"],
            descending=[False, False, True, False, False],
        )
        sym = cand.get_column("symbol")
        bucket = cand.get_column("bucket").to_numpy()
        new_run = (sym != sym.shift(1)).fill_null(True).to_numpy()
        new_run[1:] |= bucket[1:] != bucket[:-1]
        starts = np.flatnonzero(new_run)
        self._merge_runs(
            sym[starts].to_list(),
            bucket,
            starts,
            cand.get_column("size").to_numpy(),
            cand.get_column("ts").to_numpy(),
            cand.get_column("id").to_numpy(),
        )

    def _merge_runs(
        self,
        syms: list[str],
        bucket: np.ndarray,
        starts: np.ndarray,
        size: np.ndarray,
        ts: np.ndarray,
        ids: np.ndarray,
    ) -> None:
        """:meth:`_merge_evidence` on prints already in (symbol, bucket, size desc, ts,
        id) order, ``starts`` the first row of each (symbol, bucket) run and ``syms``
        its symbol."""
        k = self.cfg.max_evidence
        ends = np.append(starts[1:], len(bucket))
        buckets = bucket[starts].tolist()
        for sym_, b, lo, hi in zip(syms, buckets, starts.tolist(), ends.tolist(), strict=True):
            key = (sym_, b)
            old = self._ev.get(key)
            if old is None:
                z, t, i = size[lo:hi][:k], ts[lo:hi][:k], ids[lo:hi][:k]
            else:
                if len(old[0]) == k:  # full: only sizes above the floor (a prefix)
                    hi = lo + int((size[lo:hi] > old[0][-1]).sum())
                    if hi == lo:
                        continue
                z = np.concatenate([old[0], size[lo:hi]])
                t = np.concatenate([old[1], ts[lo:hi]])
                i = np.concatenate([old[2], ids[lo:hi]])
                order = np.lexsort((i, t, -z))[:k]
                z, t, i = z[order], t[order], i[order]
            self._ev[key] = (z, t, i)

    def _evaluate(self, boundary: int) -> list[dict[str, Any]]:
        cfg = self.cfg
        agg = self._agg
        if agg.height == 0:
            return []
        scored = agg.sort(
            ["symbol", "volume", "bucket"], descending=[False, True, False]
        ).with_columns(
            pl.col("volume").sum().over("symbol").alias("_total"),
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("symbol").alias("_rank"),
        )
        vol = scored.get_column("volume").to_numpy()
        total = scored.get_column("_total").to_numpy()
        share = vol / total
        rank = scored.get_column("_rank").to_numpy()
        emitted = scored.get_column("emitted").to_numpy()
        level = (
            (vol >= cfg.level_min_volume) & (share >= cfg.level_min_share) & (rank <= cfg.level_max)
        )
        grew = (emitted == 0) | (vol >= emitted * (1.0 + cfg.level_growth))
        fire = np.flatnonzero(level & grew)
        if not len(fire):
            return []
        emitted = emitted.copy()
        emitted[fire] = vol[fire]
        self._agg = put(pick(scored, _AGG_SCHEMA), pl.Series("emitted", emitted)).sort(
            "symbol", "bucket"
        )
        rows = []
        width = dict(self._width.iter_rows())
        for i in fire.tolist():
            r = scored.row(i, named=True)
            sym, bucket = r["symbol"], r["bucket"]
            vwap = r["notional_u"] / 10_000 / r["volume"]
            notional = r["notional_u"] / 10_000
            buy, sell = r["buy"], r["sell"]
            signed = buy + sell
            ratio = cfg.direction_min_ratio
            if signed and buy / signed >= ratio and buy > sell:
                direction = "bullish"
            elif signed and sell / signed >= ratio and sell > buy:
                direction = "bearish"
            else:
                direction = "neutral"
            sh = float(share[i])
            confidence = (
                0.5
                + 0.5 * min(1.0, max(0.0, (sh - cfg.level_min_share) / (3 * cfg.level_min_share)))
                if cfg.level_min_share > 0
                else 1.0
            )
            w = width[sym]
            lo, hi = bucket * w / 10_000, (bucket + 1) * w / 10_000
            prev = int(r["emitted"])
            got = self._ev.get((sym, bucket))
            ids: list[int] = []
            if got is not None:
                order = np.lexsort((got[2], got[1]))  # time order
                ids = got[2][order].tolist()
            side = ""
            if direction == "bullish":
                side = f", {buy / signed:.0%} bought"
            elif direction == "bearish":
                side = f", {sell / signed:.0%} sold"
            again = f", up {vol[i] / prev - 1:.0%} since last shown" if prev else ""
            explanation = (
                f"{sym} dark level ${lo:,.2f}-{hi:,.2f}: {int(vol[i]):,} sh off-exchange this "
                f"session ({sh:.0%} of {sym}'s, #{int(rank[i])}), {r['count']} prints, "
                f"VWAP ${vwap:,.4f}{side}{again}"
            )
            trace = [
                _item("shares at level", vol[i], cfg.level_min_volume, True),
                _item("share of session off-exchange volume", sh, cfg.level_min_share, True),
                _item("rank among levels", rank[i], cfg.level_max, True),
                _item(
                    "growth since last shown",
                    (vol[i] / prev - 1) if prev else None,
                    cfg.level_growth,
                    True,
                ),
                _item(
                    "buy share of signed shares",
                    buy / signed if signed else None,
                    ratio,
                    direction != "neutral",
                ),
            ]
            rows.append(
                {
                    "ts": boundary,
                    "symbol": sym,
                    "pattern": "level",
                    "direction": direction,
                    "confidence": confidence,
                    "total_size": int(vol[i]),
                    "notional": notional,
                    "price": vwap,
                    "explanation": explanation,
                    "evidence": ids,
                    "trace": trace,
                }
            )
        rows.sort(key=lambda r: (r["symbol"], r["price"]))
        return rows


def _item(condition: str, value: Any, threshold: Any, passed: bool) -> dict[str, Any]:
    return {
        "condition": condition,
        "value": None if value is None else float(value),
        "threshold": None if threshold is None else float(threshold),
        "passed": bool(passed),
    }
