"""Rolling baselines of premium, size and spread, per contract and per underlying.

Each packet is one observation of its contract and of its underlying.  A packet's
z-scores are taken against the last ``flow.rolling_window_size`` (50) observations of
the key *before* it is added, so a spike never dilutes its own baseline; then it is
added.  Mean and sample standard deviation (ddof 1) of exactly those observations:

    z = (x - mean(previous n)) / std(previous n),   n = min(window, observations so far)

The spread metric (``spread_pct``) uses the packets of that window that had a usable
NBBO.  ``z`` is null with fewer than 2 observations or zero dispersion (undefined);
``baseline_n`` says how many observations there were, and the classifiers let a
z-score gate only from ``classifier.z_min_samples`` (12) on.  A key idle for more
than ``flow.rolling_ttl_s`` of event time starts afresh (the seed's Redis TTL) and is
dropped from the state; the reset is decided by the observations' own times, never by
when a batch arrived.

Determinism and speed: observations are stored as exact integers (whole dollars,
contracts, spread in parts per million), so a window's sum and sum of squares are
exact differences of prefix sums, whatever batch a window started in; the variance
``(n * S2 - S1^2) / (n (n - 1))`` is then formed in extended precision.  The state is
the last ``window`` observations per key; it exports to (and restores from) polars
frames exactly.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl

from islandflow_tui.config import FlowConfig
from islandflow_tui.engine import events as ev

SCOPES: Final = ("contract", "root")
METRICS: Final = ("premium", "size", "spread")
_STATE_SCHEMA: Final = {
    "key": pl.String,
    "ts": pl.Int64,
    "premium": pl.Int64,
    "size": pl.Int64,
    "spread": pl.Int64,
}
#: observations are kept as integers: whole dollars, contracts, spread in parts per
#: million (-1: no spread); SCALE turns their statistics back into the metric's units
SCALE: Final = np.array([1.0, 1.0, 1e-6])


def quantise(values: np.ndarray) -> np.ndarray:
    """(rows, 3) float premium, size, spread_pct -> exact int64 observations."""
    out = np.empty(values.shape, dtype=np.int64)
    out[:, 0] = np.rint(values[:, 0])
    out[:, 1] = np.rint(values[:, 1])
    spread = values[:, 2]
    out[:, 2] = np.where(np.isnan(spread), -1, np.rint(np.nan_to_num(spread, nan=0.0) * 1e6))
    return out


def z_col(scope: str, metric: str) -> str:
    return f"{metric}_z" if scope == "contract" else f"root_{metric}_z"


class RollingBaselines:
    """Stateful: score observations (in order) against, then add them to, their keys."""

    def __init__(self, cfg: FlowConfig) -> None:
        self.window = cfg.rolling_window_size
        self.ttl_ns = cfg.rolling_ttl_s * ev.NS_PER_S
        # scope -> key -> (ts (m,), values (m, 3)) with m <= window
        self._state: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {s: {} for s in SCOPES}

    # -- state ------------------------------------------------------------------
    def state(self) -> dict[str, pl.DataFrame]:
        out = {}
        for scope, keys in self._state.items():
            parts = {"key": [], "ts": [], **{m: [] for m in METRICS}}
            for key in sorted(keys):
                ts, vals = keys[key]
                parts["key"] += [key] * len(ts)
                parts["ts"] += ts.tolist()
                for j, m in enumerate(METRICS):
                    parts[m] += vals[:, j].tolist()
            out[scope] = pl.DataFrame(parts, schema=_STATE_SCHEMA)
        return out

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        for scope in SCOPES:
            frame = state.get(scope)
            self._state[scope] = {}
            if frame is None or frame.height == 0:
                continue
            for (key,), g in frame.group_by("key", maintain_order=True):
                vals = g.select(list(METRICS)).to_numpy().astype(np.int64)
                self._state[scope][str(key)] = (g["ts"].to_numpy().astype(np.int64), vals)

    # -- scoring ----------------------------------------------------------------
    def score(
        self, scope: str, codes: np.ndarray, names: np.ndarray, ts: np.ndarray, values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, std, n), each (rows, 3), of every row's baseline before it; adds the rows.

        ``codes`` are small non-negative ints naming each row's key, ``names[code]`` the
        key as stored (a contract symbol or a root); ``values`` (rows, 3) are premium,
        size and spread (NaN: no observation of that metric).
        """
        n_rows = len(codes)
        mean = np.full((n_rows, 3), np.nan)
        std = np.full((n_rows, 3), np.nan)
        cnt = np.zeros((n_rows, 3), dtype=np.int64)
        if n_rows == 0:
            return mean, std, cnt
        store = self._state[scope]
        order = stable_argsort(codes)
        sc = codes[order]
        first = np.ones(n_rows, dtype=bool)
        first[1:] = sc[1:] != sc[:-1]
        uniq_codes = sc[first]
        new_per = np.diff(np.append(np.flatnonzero(first), n_rows))
        uniq = names[uniq_codes].tolist()
        hist = [store.get(k) for k in uniq]
        hist_len = np.array([0 if h is None else len(h[0]) for h in hist], dtype=np.int64)
        seg_len = hist_len + new_per
        seg_start = np.zeros(len(uniq), dtype=np.int64)
        np.cumsum(seg_len[:-1], out=seg_start[1:])
        total = int(seg_len.sum())
        c_ts = np.empty(total, dtype=np.int64)
        c_val = np.empty((total, 3), dtype=np.int64)
        is_new = np.zeros(total, dtype=bool)
        # per key: its history rows, then the batch's rows
        with_hist = np.flatnonzero(hist_len)
        if len(with_hist):
            hl = hist_len[with_hist]
            h_pos = np.repeat(seg_start[with_hist], hl) + (
                np.arange(int(hl.sum())) - np.repeat(np.cumsum(hl) - hl, hl)
            )
            c_ts[h_pos] = np.concatenate([hist[i][0] for i in with_hist.tolist()])
            c_val[h_pos] = np.concatenate([hist[i][1] for i in with_hist.tolist()])
        rank_in_key = np.arange(n_rows) - np.repeat(np.cumsum(new_per) - new_per, new_per)
        new_pos = np.repeat(seg_start + hist_len, new_per) + rank_in_key
        c_ts[new_pos] = ts[order]
        c_val[new_pos] = quantise(values[order])
        is_new[new_pos] = True
        # segment starts: a new key, or an idle gap longer than the TTL
        start = np.zeros(total, dtype=bool)
        start[seg_start] = True
        start[1:] |= (c_ts[1:] - c_ts[:-1]) > self.ttl_ns
        seg_begin = np.maximum.accumulate(np.where(start, np.arange(total), 0))
        # window sums from prefix sums of exact integers: a window's sum of squares fits
        # int64, so the wrap-around of the running prefix sums cancels in the difference
        has = c_val >= 0
        x = np.where(has, c_val, 0)
        p1 = np.zeros((total + 1, 3), dtype=np.int64)
        p2 = np.zeros((total + 1, 3), dtype=np.int64)
        pc = np.zeros((total + 1, 3), dtype=np.int64)
        with np.errstate(over="ignore"):
            np.cumsum(x, axis=0, out=p1[1:])
            np.cumsum(x * x, axis=0, out=p2[1:])
        np.cumsum(has, axis=0, out=pc[1:])
        rows_new = np.flatnonzero(is_new)  # in (key, batch order), i.e. aligned with ``order``
        lo = np.maximum(seg_begin[rows_new], rows_new - self.window)
        with np.errstate(over="ignore"):
            s1 = p1[rows_new] - p1[lo]
            s2 = p2[rows_new] - p2[lo]
        n = pc[rows_new] - pc[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = s1 / n
            s1l = s1.astype(np.longdouble)
            num = n.astype(np.longdouble) * s2.astype(np.longdouble) - s1l * s1l
            var = num / (n * (n - 1)).astype(np.longdouble)
            sd = np.sqrt(np.maximum(var, 0)).astype(np.float64)
        mean[order] = np.where(n > 0, mu, np.nan) * SCALE
        std[order] = np.where(n > 1, sd, np.nan) * SCALE
        cnt[order] = n
        # new state: the last ``window`` rows of each key's final segment
        ends = seg_start + seg_len
        begin = np.maximum(seg_begin[ends - 1], ends - self.window)
        for key, b, e in zip(uniq, begin.tolist(), ends.tolist(), strict=True):
            store[key] = (c_ts[b:e].copy(), c_val[b:e].copy())
        return mean, std, cnt

    def expire(self, now: int) -> None:
        """Drop keys idle past the TTL (memory only: scoring already ignores them)."""
        horizon = now - self.ttl_ns
        for store in self._state.values():
            dead = [k for k, (ts, _) in store.items() if ts[-1] < horizon]
            for k in dead:
                del store[k]


def stable_argsort(key: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative ints, by 16-bit radix passes (numpy's stable sort
    is a radix sort for 16-bit keys: ~7x faster than for int64)."""
    if len(key) == 0:
        return np.zeros(0, dtype=np.int64)
    top = int(key.max())
    if top < 1 << 16:
        return np.argsort(key.astype(np.uint16), kind="stable")
    order = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
    return order[stable_argsort(key[order] >> 16)]


def z_scores(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std where std > 0, else NaN (undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(std > 0, (values - mean) / std, np.nan)
