"""Dark-pool-style inference from off-exchange prints: *block* and *accumulation*.

Evidence prints are joined equity prints (``equities.joins`` rows) that were reported
off-exchange (TRF/ADF), are at least ``dark.min_print_size`` shares (200) and are not
corrections or cancels (``venues.NOT_DARK_EVIDENCE``: they re-report volume).

Rules (seed defaults, ``[dark]`` in the config):

* **block**: one evidence print of at least ``min_block_size`` (2000) shares.
* **accumulation**: within the window ``(t - window_ms, t]`` (60 000 ms) ending at an
  evidence print at ``t``, at least ``min_accum_count`` (4) evidence prints of the
  same symbol totalling at least ``min_accum_size`` (3000) shares.  It fires at the
  first print that completes such a window.
* **cool-down**: after an inference at ``t``, the same symbol and pattern stay
  quiet until ``t + cooldown_ms`` (30 000; a print exactly then may fire again).
* **evidence**: at most ``max_evidence`` (20) prints, the largest of the window (ties:
  earliest), listed in time order; ``total_size``, ``notional`` and ``price`` (VWAP)
  cover the whole window.
* **direction** from placement: a print at/above the ask, or inside the spread above
  the midpoint, is a buy; at/below the bid or below the midpoint a sell; at the
  midpoint, without a usable quote, or priced off the market (late, out of
  sequence, average price, derivatively priced) unsigned.  Bullish if buys are at
  least ``direction_min_ratio`` (0.6) of the signed shares, bearish if sells are,
  else neutral.
* **confidence** = 0.5 + 0.3 × excess + 0.2 × quoted, where excess is how far past
  the thresholds the evidence is (0 at the threshold, 1 at five times it; for
  accumulation the mean of the size and count excesses) and quoted the share of the
  shares that had a usable quote; **halved** when the size-weighted quoted spread
  exceeds ``max_spread_pct`` (0.5 %) of the price (a wide market makes the inference
  less certain).

Event time: a block or accumulation event has the ts of the print that fired it,
and the operator keeps the last ``window_ms`` of evidence prints and the last
inference time per symbol and pattern, so the output does not depend on batching.
Every event carries a one-line explanation and the rule trace.  Levels are in
``dark_levels.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from islandflow_tui.config import DarkConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.codes import signed
from islandflow_tui.engine.compute.eq_join import (
    PLC_ABOVE_ASK,
    PLC_AT_ASK,
    PLC_AT_BID,
    PLC_BELOW_BID,
    PLC_MID,
    PLC_NONE,
)

PATTERNS = ("block", "accumulation", "level")
PATTERN_RANK = {p: i for i, p in enumerate(PATTERNS)}
#: off-market prices: a print so flagged is not signed by its placement
OFF_MARKET = int(
    ev.Cond.LATE | ev.Cond.OUT_OF_SEQ | ev.Cond.AVERAGE_PRICE | ev.Cond.DERIVATIVELY_PRICED
)
_TAIL_SCHEMA = {
    "ts": pl.Int64,
    "id": pl.Int64,
    "symbol": pl.String,
    "price": pl.Float64,
    "size": pl.Int64,
    "sign": pl.Int8,
    "spread_pct": pl.Float64,
}
_LAST_SCHEMA = {"symbol": pl.String, "pattern": pl.String, "ts": pl.Int64}
OUT_SCHEMA = {
    "ts": pl.Int64,
    "symbol": pl.String,
    "pattern": pl.String,
    "direction": pl.String,
    "confidence": pl.Float64,
    "total_size": pl.Int64,
    "notional": pl.Float64,
    "price": pl.Float64,
    "explanation": pl.String,
    "evidence": pl.List(pl.Int64),
    "trace": ev.polars_schema(ev.DARK_INFERRED)["trace"],
}


def print_sign(
    plc: np.ndarray, price: np.ndarray, mid: np.ndarray, flags: np.ndarray, tol: float
) -> np.ndarray:
    """+1 buy, -1 sell, 0 unsigned (int8), from joined prints' placement codes (see
    module doc); ``mid`` NaN where there is no usable quote."""
    with np.errstate(invalid="ignore"):
        at_mid = plc == PLC_MID
        buy = (plc == PLC_ABOVE_ASK) | (plc == PLC_AT_ASK) | (at_mid & (price > mid + tol))
        sell = (plc == PLC_BELOW_BID) | (plc == PLC_AT_BID) | (at_mid & (price < mid - tol))
    unsigned = ((flags & OFF_MARKET) != 0) | (plc == PLC_NONE)
    return signed(buy & ~unsigned, sell & ~unsigned)


_COLS = ("ts", "id", "size", "price", "sign", "spread_pct")
_DTYPES = {
    "ts": np.int64,
    "id": np.int64,
    "size": np.int64,
    "price": np.float64,
    "sign": np.int8,
    "spread_pct": np.float64,
}
Arrays = dict[str, np.ndarray]


class _Window:
    """One symbol's recent evidence prints in (ts, id) order, in growable arrays.

    Appends copy only the new rows (capacity doubles when full) and trimming moves a
    start offset, so a batch costs O(new rows) per symbol, not O(window).  ``csum``
    is the running share total through each row, so the shares in any stretch of
    rows are one subtraction.
    """

    __slots__ = ("cols", "csum", "n", "start")

    def __init__(self, rows: Arrays) -> None:
        m = len(rows["ts"])
        cap = max(64, 2 * m)
        self.cols = {c: np.empty(cap, dtype=_DTYPES[c]) for c in _COLS}
        self.csum = np.empty(cap, dtype=np.int64)
        self.start = 0
        self.n = 0
        self.append(rows)

    def view(self, c: str) -> np.ndarray:
        return self.cols[c][self.start : self.n]

    def append(self, rows: Arrays) -> None:
        m = len(rows["ts"])
        if self.n > self.start and rows["ts"][0] < self.cols["ts"][self.n - 1]:
            # out-of-order arrival (a feed that broke its watermark): rebuild sorted
            merged = {c: np.concatenate([self.view(c), rows[c]]) for c in _COLS}
            order = np.lexsort((merged["id"], merged["ts"]))
            self.start = self.n = 0
            self._fill({c: v[order] for c, v in merged.items()})
            return
        self._fill(rows, m)

    def _fill(self, rows: Arrays, m: int | None = None) -> None:
        m = len(rows["ts"]) if m is None else m
        cap = len(self.csum)
        if self.n + m > cap:
            live = self.n - self.start
            new_cap = max(cap, 2 * (live + m))
            for c in _COLS:
                arr = np.empty(new_cap, dtype=_DTYPES[c])
                arr[:live] = self.cols[c][self.start : self.n]
                self.cols[c] = arr
            cs = np.empty(new_cap, dtype=np.int64)
            cs[:live] = self.csum[self.start : self.n]
            self.csum = cs
            self.start, self.n = 0, live
        base = int(self.csum[self.n - 1]) if self.n > self.start else 0
        for c in _COLS:
            self.cols[c][self.n : self.n + m] = rows[c]
        self.csum[self.n : self.n + m] = base + np.cumsum(rows["size"])
        self.n += m

    def trim(self, cut: int) -> bool:
        """Drop rows with ts <= cut; True if nothing is left."""
        if self.cols["ts"][self.start] > cut:  # the usual case: nothing to drop
            return False
        k = int(np.searchsorted(self.view("ts"), cut, "right"))
        self.start += k
        return self.start >= self.n


class DarkInference:
    """Block and accumulation inference (stateful, event time).

    The last ``window_ms`` of evidence prints are kept per symbol as numpy arrays in
    (ts, id) order, so a batch costs a few array operations per symbol it touches,
    not a pass over the whole window (a busy symbol holds thousands of rows).
    """

    def __init__(self, cfg: DarkConfig, tol: float) -> None:
        self.cfg = cfg
        self.tol = tol
        self.window_ns = cfg.window_ms * ev.NS_PER_MS
        self.cooldown_ns = cfg.cooldown_ms * ev.NS_PER_MS
        self._tail: dict[str, _Window] = {}
        self._last: dict[tuple[str, str], int] = {}

    # -- state ----------------------------------------------------------------
    def state(self) -> dict[str, pl.DataFrame]:
        keys = sorted(self._last)
        last = pl.DataFrame(
            {
                "symbol": [k[0] for k in keys],
                "pattern": [k[1] for k in keys],
                "ts": [self._last[k] for k in keys],
            },
            schema=_LAST_SCHEMA,
        )
        parts = [
            pl.DataFrame({"symbol": [sym] * (w.n - w.start), **{c: w.view(c) for c in _COLS}})
            for sym, w in sorted(self._tail.items())
        ]
        tail = (
            pl.concat(parts).select(list(_TAIL_SCHEMA)).cast(_TAIL_SCHEMA)  # type: ignore[arg-type]
            if parts
            else pl.DataFrame(schema=_TAIL_SCHEMA)
        )
        return {"tail": tail, "last": last}

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        self._tail = {}
        tail = state["tail"].with_columns(pl.col("spread_pct").fill_null(np.nan))
        for (sym,), part in tail.group_by("symbol", maintain_order=True):
            self._tail[str(sym)] = _Window(
                {c: part.get_column(c).to_numpy().astype(_DTYPES[c]) for c in _COLS}
            )
        last = state["last"]
        self._last = {
            (s, p): int(t)
            for s, p, t in zip(
                last["symbol"].to_list(),
                last["pattern"].to_list(),
                last["ts"].to_list(),
                strict=True,
            )
        }

    # -- processing -------------------------------------------------------------
    def process(self, evidence: pl.DataFrame | None, watermark: int) -> list[dict[str, Any]]:
        """Inferences fired by ``evidence`` (off-exchange evidence prints released below
        ``watermark``: ts, id, symbol, price, size, sign, spread_pct), as row dicts in
        (ts, pattern, symbol) order."""
        rows: list[dict[str, Any]] = []
        if evidence is not None and evidence.height:
            srt = evidence.sort("symbol", "ts", "id")
            runs = srt.select(pl.col("symbol").rle_id()).to_series().to_numpy()
            starts = np.flatnonzero(np.diff(runs, prepend=-1))
            ends = np.append(starts[1:], len(runs))
            names = srt.get_column("symbol")[starts].to_list()
            cols = {
                c: srt.get_column(c).fill_null(np.nan).to_numpy().astype(_DTYPES[c])
                if c == "spread_pct"
                else srt.get_column(c).to_numpy().astype(_DTYPES[c], copy=False)
                for c in _COLS
            }
            for sym, lo, hi in zip(names, starts.tolist(), ends.tolist(), strict=True):
                rows += self._symbol(str(sym), {c: a[lo:hi] for c, a in cols.items()})
        cut = watermark - self.window_ns
        for sym in [sym for sym, w in self._tail.items() if w.trim(cut)]:
            del self._tail[sym]
        rows.sort(key=lambda r: (r["ts"], PATTERN_RANK[r["pattern"]], r["symbol"]))
        return rows

    def _symbol(self, sym: str, new: Arrays) -> list[dict[str, Any]]:
        """Blocks and accumulations of one symbol's new evidence prints."""
        w = self._tail.get(sym)
        if w is None:
            w = self._tail[sym] = _Window(new)
        else:
            w.append(new)
        rows: list[dict[str, Any]] = []
        ts = w.view("ts")
        new_ts = new["ts"]
        # blocks: one print at least min_block_size
        big = np.flatnonzero(new["size"] >= self.cfg.min_block_size)
        if len(big):
            for i, prev in self._cooled(sym, "block", new_ts[big]):
                j = int(big[i])
                window = {c: v[j : j + 1] for c, v in new.items()}
                rows.append(self._event(sym, "block", int(new_ts[j]), window, prev))
        # accumulation: count and shares in (t - window, t] at every new print; a
        # symbol still in its cool-down cannot fire, so skip the arithmetic
        quiet = self._last.get((sym, "accumulation"))
        if quiet is not None and quiet + self.cooldown_ns > int(new_ts[-1]):
            return rows
        lo = np.searchsorted(ts, new_ts - self.window_ns, "right")
        hi = np.searchsorted(ts, new_ts, "right")
        csum = w.csum[w.start : w.n]
        before = np.where(lo > 0, csum[np.maximum(lo - 1, 0)], csum[0] - w.view("size")[0])
        shares = csum[hi - 1] - before
        hit = np.flatnonzero(
            (hi - lo >= self.cfg.min_accum_count) & (shares >= self.cfg.min_accum_size)
        )
        if len(hit):
            for i, prev in self._cooled(sym, "accumulation", new_ts[hit]):
                j = int(hit[i])
                window = {c: w.view(c)[lo[j] : hi[j]] for c in _COLS}
                rows.append(self._event(sym, "accumulation", int(new_ts[j]), window, prev))
        return rows

    def _cooled(self, symbol: str, pattern: str, ts: np.ndarray) -> list[tuple[int, int | None]]:
        """(index, previous inference ts) of the ``ts`` (sorted) that fire under the
        cool-down, greedily: each fire silences the next ``cooldown_ms``."""
        out: list[tuple[int, int | None]] = []
        last = self._last.get((symbol, pattern))
        i = 0 if last is None else int(np.searchsorted(ts, last + self.cooldown_ns, "left"))
        while i < len(ts):
            out.append((i, last))
            last = int(ts[i])
            i = int(np.searchsorted(ts, last + self.cooldown_ns, "left"))
        if last is not None:
            self._last[(symbol, pattern)] = last
        return out

    # -- one event ---------------------------------------------------------------
    def _event(
        self, symbol: str, pattern: str, ts: int, window: Arrays, prev: int | None
    ) -> dict[str, Any]:
        cfg = self.cfg
        size = window["size"]
        price = window["price"]
        sign = window["sign"]
        spread = window["spread_pct"]
        total = int(size.sum())
        notional = float(np.dot(price, size.astype(np.float64)))
        vwap = notional / total
        quoted = ~np.isnan(spread)
        quoted_share = float(size[quoted].sum()) / total
        spread_w = (
            float(np.dot(spread[quoted], size[quoted])) / float(size[quoted].sum())
            if quoted.any()
            else float("nan")
        )
        buy = int(size[sign > 0].sum())
        sell = int(size[sign < 0].sum())
        signed = buy + sell
        ratio = cfg.direction_min_ratio
        if signed and buy / signed >= ratio and buy > sell:
            direction = "bullish"
        elif signed and sell / signed >= ratio and sell > buy:
            direction = "bearish"
        else:
            direction = "neutral"
        if pattern == "block":
            excess = min(1.0, max(0.0, (total / cfg.min_block_size - 1) / 4))
            trace = [
                _item("off-exchange print size (sh)", total, cfg.min_block_size, True),
            ]
        else:
            n = len(size)
            excess = 0.5 * min(1.0, max(0.0, (total / cfg.min_accum_size - 1) / 4)) + 0.5 * min(
                1.0, max(0.0, (n / cfg.min_accum_count - 1) / 4)
            )
            trace = [
                _item("prints in window", n, cfg.min_accum_count, True),
                _item("shares in window", total, cfg.min_accum_size, True),
                _item("window (s)", cfg.window_ms / 1000, cfg.window_ms / 1000, True),
            ]
        trace.append(_item("smallest print (sh)", int(size.min()), cfg.min_print_size, True))
        wide = bool(quoted.any() and spread_w > cfg.max_spread_pct)
        confidence = 0.5 + 0.3 * excess + 0.2 * quoted_share
        if wide:
            confidence *= 0.5
        trace.append(_item("spread / price", spread_w, cfg.max_spread_pct, not wide))
        trace.append(
            _item(
                "buy share of signed shares",
                buy / signed if signed else None,
                ratio,
                direction != "neutral",
            )
        )
        since = None if prev is None else (ts - prev) / ev.NS_PER_S
        trace.append(_item("s since last of this pattern", since, cfg.cooldown_ms / 1000, True))
        # evidence: the largest prints (ties: earliest), in time order
        k = min(cfg.max_evidence, len(size))
        ev_ids = window["id"]
        if len(size) > k:
            # the k largest, ties earliest: the window is in time order, so the key
            # -size * n + position ranks exactly that (argpartition: O(n), not a sort)
            key = -size.astype(np.int64) * len(size) + np.arange(len(size))
            order = np.argpartition(key, k - 1)[:k]
        else:
            order = np.arange(len(size))
        order = np.sort(order)
        lead = _lead(pattern, symbol, total, len(size), vwap, notional, cfg)
        if direction == "bullish":
            side = f"{buy / signed:.0%} bought"
        elif direction == "bearish":
            side = f"{sell / signed:.0%} sold"
        else:
            side = "no clear side"
        spread_note = f"; wide spread {spread_w:.2%}" if wide else ""
        explanation = f"{lead}, {side}{spread_note}; confidence {confidence:.2f}"
        return {
            "ts": ts,
            "symbol": symbol,
            "pattern": pattern,
            "direction": direction,
            "confidence": confidence,
            "total_size": total,
            "notional": notional,
            "price": vwap,
            "explanation": explanation,
            "evidence": [int(x) for x in ev_ids[order]],
            "trace": trace,
        }


def _lead(
    pattern: str, symbol: str, total: int, n: int, vwap: float, notional: float, cfg: DarkConfig
) -> str:
    money = _money(notional)
    if pattern == "block":
        return f"{symbol} block: {total:,} sh off-exchange at ${vwap:,.4f} ({money})"
    return (
        f"{symbol} accumulation: {n} off-exchange prints, {total:,} sh in "
        f"{cfg.window_ms / 1000:g}s around ${vwap:,.4f} ({money})"
    )


def _money(x: float) -> str:
    if x >= 1e6:
        return f"${x / 1e6:.1f}M"
    if x >= 1e3:
        return f"${x / 1e3:.0f}k"
    return f"${x:.0f}"


def _item(
    condition: str, value: float | None, threshold: float | None, passed: bool
) -> dict[str, Any]:
    v = None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)
    t = None if threshold is None else float(threshold)
    return {"condition": condition, "value": v, "threshold": t, "passed": bool(passed)}


def events_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Row dicts -> a frame with the dark.inferred columns (no seq/id yet).

    Built through Arrow: polars' list-of-struct construction from Python objects
    costs ~0.25 ms per row, pyarrow's a few microseconds.
    """
    if not rows:
        return pl.DataFrame(schema=OUT_SCHEMA)
    arrow = ev.DARK_INFERRED_SCHEMA
    arrays = [pa.array([r[k] for r in rows], type=arrow.field(k).type) for k in OUT_SCHEMA]
    table = pa.Table.from_arrays(arrays, names=list(OUT_SCHEMA))
    return pl.from_arrow(table).cast(OUT_SCHEMA)  # type: ignore[return-value,union-attr]
