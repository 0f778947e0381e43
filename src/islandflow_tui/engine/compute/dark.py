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

from islandflow_tui.config import DarkConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.eq_join import (
    PLC_ABOVE_ASK,
    PLC_AT_ASK,
    PLC_AT_BID,
    PLC_BELOW_BID,
    PLC_MID,
    PLC_NONE,
)
from islandflow_tui.engine.compute.trace import traces_from_dicts

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


def print_sign(tol: float) -> pl.Expr:
    """+1 buy, -1 sell, 0 unsigned, from a joined print's placement (see module doc)."""
    plc, price, mid = pl.col("plc"), pl.col("price"), pl.col("mid")
    buy = plc.is_in([PLC_ABOVE_ASK, PLC_AT_ASK]) | ((plc == PLC_MID) & (price > mid + tol))
    sell = plc.is_in([PLC_BELOW_BID, PLC_AT_BID]) | ((plc == PLC_MID) & (price < mid - tol))
    off_market = (pl.col("flags") & OFF_MARKET) != 0
    return (
        pl.when(off_market | (plc == PLC_NONE))
        .then(0)
        .when(buy)
        .then(1)
        .when(sell)
        .then(-1)
        .otherwise(0)
        .cast(pl.Int8)
        .alias("sign")
    )


class DarkInference:
    """Block and accumulation inference (stateful, event time)."""

    def __init__(self, cfg: DarkConfig, tol: float) -> None:
        self.cfg = cfg
        self.tol = tol
        self.window_ns = cfg.window_ms * ev.NS_PER_MS
        self.cooldown_ns = cfg.cooldown_ms * ev.NS_PER_MS
        self._tail = pl.DataFrame(schema=_TAIL_SCHEMA)
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
        return {"tail": self._tail, "last": last}

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        self._tail = state["tail"]
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
        """Inferences fired by ``evidence`` (``evidence_prints`` rows released below
        ``watermark``), as row dicts in (ts, pattern, symbol) order."""
        rows: list[dict[str, Any]] = []
        if evidence is not None and evidence.height:
            rows += self._blocks(evidence)
            rows += self._accumulations(evidence)
        self._tail = self._tail.filter(pl.col("ts") > watermark - self.window_ns)
        rows.sort(key=lambda r: (r["ts"], PATTERN_RANK[r["pattern"]], r["symbol"]))
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

    def _blocks(self, evidence: pl.DataFrame) -> list[dict[str, Any]]:
        big = evidence.filter(pl.col("size") >= self.cfg.min_block_size)
        if big.height == 0:
            return []
        big = big.sort("symbol", "ts", "id")
        rows = []
        for (symbol,), part in big.group_by("symbol", maintain_order=True):
            ts = part.get_column("ts").to_numpy()
            for i, prev in self._cooled(str(symbol), "block", ts):
                window = part.slice(i, 1)
                rows.append(self._event(str(symbol), "block", int(ts[i]), window, prev))
        return rows

    def _accumulations(self, evidence: pl.DataFrame) -> list[dict[str, Any]]:
        cfg = self.cfg
        combined = pl.concat(
            [
                self._tail.with_columns(pl.lit(False).alias("new")),
                evidence.with_columns(pl.lit(True).alias("new")),
            ],
            how="vertical",
        )
        self._tail = combined.drop("new")
        win = f"{self.window_ns}i"
        combined = (
            combined.sort("symbol", "ts", "id")
            .with_columns(pl.lit(1, pl.Int64).alias("_one"))
            .with_columns(
                pl.col("size").rolling_sum_by("ts", window_size=win).over("symbol").alias("_sum"),
                pl.col("_one").rolling_sum_by("ts", window_size=win).over("symbol").alias("_cnt"),
            )
        )
        hit = combined.filter(
            pl.col("new")
            & (pl.col("_cnt") >= cfg.min_accum_count)
            & (pl.col("_sum") >= cfg.min_accum_size)
        )
        if hit.height == 0:
            return []
        rows = []
        by_symbol = dict(
            (str(k[0]), part) for k, part in combined.group_by("symbol", maintain_order=True)
        )
        for (symbol,), part in hit.group_by("symbol", maintain_order=True):
            sym = str(symbol)
            ts = part.get_column("ts").to_numpy()
            fired = self._cooled(sym, "accumulation", ts)
            if not fired:
                continue
            all_rows = by_symbol[sym]
            all_ts = all_rows.get_column("ts").to_numpy()
            for i, prev in fired:
                t = int(ts[i])
                lo = int(np.searchsorted(all_ts, t - self.window_ns, "right"))
                hi = int(np.searchsorted(all_ts, t, "right"))
                rows.append(self._event(sym, "accumulation", t, all_rows.slice(lo, hi - lo), prev))
        return rows

    # -- one event ---------------------------------------------------------------
    def _event(
        self, symbol: str, pattern: str, ts: int, window: pl.DataFrame, prev: int | None
    ) -> dict[str, Any]:
        cfg = self.cfg
        size = window.get_column("size").to_numpy()
        price = window.get_column("price").to_numpy()
        sign = window.get_column("sign").to_numpy()
        spread = window.get_column("spread_pct").fill_null(np.nan).to_numpy()
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
        k = min(cfg.max_evidence, window.height)
        ev_ids = window.get_column("id").to_numpy()
        order = np.lexsort((window.get_column("ts").to_numpy(), -size))[:k]
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
    """Row dicts -> a frame with the dark.inferred columns (no seq/id yet)."""
    if not rows:
        return pl.DataFrame(schema=OUT_SCHEMA)
    traces = traces_from_dicts([r["trace"] for r in rows])
    data = {k: [r[k] for r in rows] for k in OUT_SCHEMA if k != "trace"}
    return pl.DataFrame(
        data, schema={k: v for k, v in OUT_SCHEMA.items() if k != "trace"}
    ).with_columns(traces.alias("trace"))
