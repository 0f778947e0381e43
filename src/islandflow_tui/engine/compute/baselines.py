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

Cancels (packets.py): a packet corrected by a cancel has its observation replaced by
the corrected packet's values, in place, and a retracted packet's observation is
removed, at the cancel's event time: each observation carries its packet key
(``tag``) for that.  Packets scored after the cancel then see the baseline of a run in
which the corrected packet had been that way from the start, exactly, with two
documented exceptions: (1) removing an observation from a *full* window (``window``
values held) leaves ``window - 1`` until the key's next observation, where a run
without it would still hold the older value that was pushed out (it is not kept);
(2) the key's idle clock (TTL) keeps the removed packet's time.  Packets scored
before the cancel are not re-issued (their z-scores were right at their time), and an
observation already pushed out of its window needs nothing undone.
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
    "tag": pl.Int64,
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


class _Store:
    """One scope's windows: a slot per key holding its last ``window`` observations in a
    ring (int64), the ring's head, how many it holds, their exact sums (values, squares,
    non-missing counts; int64 that may wrap, differences stay exact) and the time of the
    last.  Keys are small ints (the engine's contract id, or a root code) mapped to slots
    by an array, so a batch touches only its new observations and as many old ones as
    leave the windows: O(batch), not O(keys x window)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.slot_of = np.full(0, -1, dtype=np.int64)  # code -> slot
        self.code_of = np.zeros(0, dtype=np.int64)  # slot -> code
        self.ring = np.zeros((0, window, 3), dtype=np.int64)
        self.tags = np.zeros((0, window), dtype=np.int64)  # who made each value (rewind)
        self.head = np.zeros(0, dtype=np.int64)
        self.n = np.zeros(0, dtype=np.int64)
        self.s1 = np.zeros((0, 3), dtype=np.int64)
        self.s2 = np.zeros((0, 3), dtype=np.int64)
        self.c = np.zeros((0, 3), dtype=np.int64)
        self.last_ts = np.zeros(0, dtype=np.int64)
        self.free: list[int] = []

    def slots(self, codes: np.ndarray) -> np.ndarray:
        """Slots of ``codes`` (distinct), allocating the missing ones (empty)."""
        top = int(codes.max()) + 1 if len(codes) else 0
        if top > len(self.slot_of):
            self.slot_of = np.concatenate(
                [self.slot_of, np.full(top - len(self.slot_of), -1, dtype=np.int64)]
            )
        slots = self.slot_of[codes]
        missing = np.flatnonzero(slots < 0)
        if len(missing):
            reuse = [self.free.pop() for _ in range(min(len(self.free), len(missing)))]
            extra = len(missing) - len(reuse)
            start = len(self.n)
            if extra:
                self._grow(start + extra)
            new = np.array(reuse + list(range(start, start + extra)), dtype=np.int64)
            slots[missing] = new
            self.slot_of[codes[missing]] = new
            self.code_of[new] = codes[missing]
            self.n[new] = 0
        return slots

    def _grow(self, size: int) -> None:
        cap = max(size, 2 * len(self.n), 64)
        grow = cap - len(self.n)

        def more(a: np.ndarray) -> np.ndarray:
            return np.concatenate([a, np.zeros((grow, *a.shape[1:]), dtype=a.dtype)])

        self.ring, self.head, self.n = more(self.ring), more(self.head), more(self.n)
        self.tags = more(self.tags)
        self.s1, self.s2, self.c = more(self.s1), more(self.s2), more(self.c)
        self.last_ts, self.code_of = more(self.last_ts), more(self.code_of)
        self.free.extend(range(cap - 1, size - 1, -1))

    def oldest(self, slots: np.ndarray, m: np.ndarray) -> np.ndarray:
        """The first ``m[i]`` held values of each slot, oldest first, concatenated."""
        total = int(m.sum())
        within = np.arange(total) - np.repeat(np.cumsum(m) - m, m)
        slot = np.repeat(slots, m)
        return _rows(self.ring.reshape(-1, 3), self._cell(slot, self.head[slot] + within))

    def _cell(self, slot: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Flat positions of (slot, ring position mod window) in ``ring``/``tags``: the
        hot paths gather and scatter ring rows as 24-byte elements (:func:`_rows`)
        instead of by 2-D fancy indexing."""
        return slot * self.window + pos % self.window

    def oldest_tags(self, slots: np.ndarray, m: np.ndarray) -> np.ndarray:
        within = np.arange(int(m.sum())) - np.repeat(np.cumsum(m) - m, m)
        slot = np.repeat(slots, m)
        return self.tags[slot, (self.head[slot] + within) % self.window]

    def set(
        self,
        slots: np.ndarray,
        vals: np.ndarray,
        counts: np.ndarray,
        last_ts: np.ndarray,
        tags: np.ndarray,
    ) -> None:
        """Replace each slot's content with its ``counts[i]`` values (time order)."""
        within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        slot = np.repeat(slots, counts)
        cell = self._cell(slot, within)
        _put_rows(self.ring.reshape(-1, 3), cell, vals)
        self.tags.reshape(-1)[cell] = tags
        self.head[slots] = 0
        self.n[slots] = counts
        self.last_ts[slots] = last_ts
        has = vals >= 0
        x = np.where(has, vals, 0)
        ends = np.cumsum(counts)
        with np.errstate(over="ignore"):
            p1 = np.vstack([np.zeros((1, 3), dtype=np.int64), np.cumsum(x, axis=0)])
            p2 = np.vstack([np.zeros((1, 3), dtype=np.int64), np.cumsum(x * x, axis=0)])
            pc = np.vstack([np.zeros((1, 3), dtype=np.int64), np.cumsum(has, axis=0)])
            begin = ends - counts
            self.s1[slots] = p1[ends] - p1[begin]
            self.s2[slots] = p2[ends] - p2[begin]
            self.c[slots] = pc[ends] - pc[begin]

    def expire(self, horizon: int) -> None:
        dead = np.flatnonzero((self.n > 0) & (self.last_ts < horizon))
        if len(dead):
            self.n[dead] = 0
            self.slot_of[self.code_of[dead]] = -1
            self.free.extend(dead.tolist())

    def values(self, slot: int) -> np.ndarray:
        n = int(self.n[slot])
        return self.ring[slot, (self.head[slot] + np.arange(n)) % self.window]

    def rewind(self, code: int, tag: int, new: np.ndarray | None) -> bool:
        """Replace (``new``: one quantised observation) or remove (None) the value
        ``tag`` added; False when the key no longer holds it (out of its window)."""
        if code >= len(self.slot_of) or self.slot_of[code] < 0:
            return False
        slot = int(self.slot_of[code])
        n = int(self.n[slot])
        pos = (self.head[slot] + np.arange(n)) % self.window
        at = np.flatnonzero(self.tags[slot, pos] == tag)
        if not len(at):
            return False
        k = int(at[-1])
        old = self.ring[slot, pos[k]].copy()
        if new is not None:
            self.ring[slot, pos[k]] = new
            o_has, n_has = old >= 0, new >= 0
            xo, xn = np.where(o_has, old, 0), np.where(n_has, new, 0)
            with np.errstate(over="ignore"):
                self.s1[slot] += xn - xo
                self.s2[slot] += xn * xn - xo * xo
            self.c[slot] += n_has.astype(np.int64) - o_has.astype(np.int64)
            return True
        keep = np.delete(pos, k)
        if not len(keep):  # its only observation: the key starts afresh
            self.n[slot] = 0
            self.slot_of[code] = -1
            self.free.append(slot)
            return True
        self.set(
            np.array([slot]),
            self.ring[slot, keep],
            np.array([n - 1]),
            self.last_ts[slot : slot + 1].copy(),
            self.tags[slot, keep],
        )
        return True


class RollingBaselines:
    """Stateful: score observations (in order) against, then add them to, their keys."""

    def __init__(self, cfg: FlowConfig) -> None:
        self.window = cfg.rolling_window_size
        self.ttl_ns = cfg.rolling_ttl_s * ev.NS_PER_S
        self._stores = {s: _Store(self.window) for s in SCOPES}

    # -- state ------------------------------------------------------------------
    def state(self, names: dict[str, np.ndarray]) -> dict[str, pl.DataFrame]:
        """Per scope: every key's observations, oldest first (key named by
        ``names[scope][code]``); ``ts`` is the time of the key's last observation,
        which is all the TTL needs."""
        out = {}
        for scope, st in self._stores.items():
            live = np.flatnonzero(st.n > 0)
            counts = st.n[live]
            vals = st.oldest(live, counts) if len(live) else np.zeros((0, 3), dtype=np.int64)
            tags = st.oldest_tags(live, counts) if len(live) else np.zeros(0, dtype=np.int64)
            slot = np.repeat(live, counts)
            out[scope] = pl.DataFrame(
                {
                    "key": pl.Series(names[scope][st.code_of[slot]], dtype=pl.String),
                    "ts": st.last_ts[slot],
                    **{m: vals[:, j] for j, m in enumerate(METRICS)},
                    "tag": tags,
                },
                schema=_STATE_SCHEMA,
            )
        return out

    def restore(self, state: dict[str, pl.DataFrame], codes: dict[str, dict[str, int]]) -> None:
        """Inverse of :meth:`state`; ``codes[scope]`` maps a key name back to its code."""
        for scope in SCOPES:
            st = self._stores[scope] = _Store(self.window)
            frame = state.get(scope)
            if frame is None or frame.height == 0:
                continue
            # one vectorised pass: a key's rows are contiguous, oldest first
            code = (
                frame.get_column("key")
                .replace_strict(codes[scope], default=-1, return_dtype=pl.Int64)
                .to_numpy()
            )
            known = code >= 0
            code = code[known]
            if not len(code):
                continue
            ts = frame.get_column("ts").to_numpy()[known]
            vals = frame.select(list(METRICS)).to_numpy().astype(np.int64)[known]
            tags = (  # checkpoints from before rewinds: no tags (-1 never matches)
                frame.get_column("tag").to_numpy()
                if "tag" in frame.columns
                else np.full(frame.height, -1, dtype=np.int64)
            )[known]
            start = np.ones(len(code), dtype=bool)
            start[1:] = code[1:] != code[:-1]
            first = np.flatnonzero(start)
            ends = np.append(first[1:], len(code))
            counts = np.minimum(ends - first, self.window)
            begin = ends - counts
            within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
            take = np.repeat(begin, counts) + within
            last_ts = np.maximum.reduceat(ts, first)
            st.set(st.slots(code[first]), vals[take], counts, last_ts, tags[take])

    # -- scoring ----------------------------------------------------------------
    def score(
        self,
        scope: str,
        codes: np.ndarray,
        ts: np.ndarray,
        values: np.ndarray,
        tags: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, std, n), each (rows, 3), of every row's baseline before it; adds the rows.

        ``codes`` are small non-negative ints naming each row's key (the contract id or
        a root code); ``values`` (rows, 3) are premium, size and spread (NaN: no
        observation of that metric); ``tags`` name each row's observation for
        :meth:`rewind` (the packet key; -1 if not given).
        """
        n_rows = len(codes)
        mean = np.full((n_rows, 3), np.nan)
        std = np.full((n_rows, 3), np.nan)
        cnt = np.zeros((n_rows, 3), dtype=np.int64)
        if n_rows == 0:
            return mean, std, cnt
        st = self._stores[scope]
        w = self.window
        order = stable_argsort(codes)
        sc = codes.take(order)
        t = ts.take(order)
        v = quantise(_rows(values, order))
        tg = tags.take(order) if tags is not None else np.full(n_rows, -1, dtype=np.int64)
        first = np.ones(n_rows, dtype=bool)
        first[1:] = sc[1:] != sc[:-1]
        key_start = np.flatnonzero(first)
        k = np.diff(np.append(key_start, n_rows))
        key_of = np.cumsum(first) - 1
        slots = st.slots(sc[first])
        # restarts: an idle gap longer than the TTL (from the key's last observation for
        # its first new row); a restart forgets everything before it
        prev_t = np.empty(n_rows, dtype=np.int64)
        prev_t[1:] = t[:-1]
        prev_t[key_start] = st.last_ts[slots]
        restart = (t - prev_t) > self.ttl_ns
        h = np.where(restart[key_start], 0, st.n[slots])  # history still counted
        restart[key_start] |= h == 0
        seg0 = np.maximum.accumulate(np.where(restart, np.arange(n_rows), 0))
        seg0 = np.maximum(seg0, key_start[key_of])  # never before the key's first row
        # prefix sums over the batch's rows (sorted by key, then time)
        has = v >= 0
        x = np.where(has, v, 0)
        zero = np.zeros((1, 3), dtype=np.int64)
        with np.errstate(over="ignore"):
            p1 = np.vstack([zero, np.cumsum(x, axis=0)])
            p2 = np.vstack([zero, np.cumsum(x * x, axis=0)])
        pc = np.vstack([zero, np.cumsum(has, axis=0)])
        i = np.arange(n_rows)
        j = i - key_start[key_of]  # new rows of this key before row i
        continuing = ~restart & (seg0 == key_start[key_of]) & (h[key_of] > 0)
        continuing[key_start] = h > 0
        lo = np.maximum(seg0, i - w)
        with np.errstate(over="ignore"):  # p[i] with i = 0..n_rows-1 is a slice
            s1 = p1[:n_rows] - _rows(p1, lo)
            s2 = p2[:n_rows] - _rows(p2, lo)
        n = pc[:n_rows] - _rows(pc, lo)
        # history part for rows still continuing it: its newest min(h, w - j) values,
        # i.e. everything held minus the oldest max(0, h - w + j)
        hk = h[key_of]
        gone = np.where(continuing, np.minimum(hk, np.maximum(0, hk - w + j)), 0)
        need = np.zeros(len(slots), dtype=np.int64)
        np.maximum.at(need, key_of, gone)
        old = st.oldest(slots, need)
        zero3 = np.zeros((1, 3), dtype=np.int64)
        o_has = old >= 0
        o_x = np.where(o_has, old, 0)
        with np.errstate(over="ignore"):
            o1 = np.vstack([zero3, np.cumsum(o_x, axis=0)])
            o2 = np.vstack([zero3, np.cumsum(o_x * o_x, axis=0)])
        oc = np.vstack([zero3, np.cumsum(o_has, axis=0)])
        base = (np.cumsum(need) - need)[key_of]
        rows = np.flatnonzero(continuing)
        kr, gr = slots[key_of[rows]], gone[rows]
        b0, b1 = base[rows], base[rows] + gr
        # ``a[rows] += x`` on (rows, 3) arrays as a 24-byte-element gather and scatter
        # (2-D fancy indexing costs about twice as much; the int64 sums are the same)
        with np.errstate(over="ignore"):
            _add_rows(s1, rows, _rows(st.s1, kr) - (_rows(o1, b1) - _rows(o1, b0)))
            _add_rows(s2, rows, _rows(st.s2, kr) - (_rows(o2, b1) - _rows(o2, b0)))
        _add_rows(n, rows, _rows(st.c, kr) - (_rows(oc, b1) - _rows(oc, b0)))
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = s1 / n
            sd = _std(n, s1, s2, w)
        _put_rows(mean, order, np.where(n > 0, mu, np.nan) * SCALE)
        _put_rows(std, order, np.where(n > 1, sd, np.nan) * SCALE)
        _put_rows(cnt, order, n)
        self._add(st, slots, key_start, k, seg0, h, v, t, tg)
        return mean, std, cnt

    def _add(
        self,
        st: _Store,
        slots: np.ndarray,
        key_start: np.ndarray,
        k: np.ndarray,
        seg0: np.ndarray,
        h: np.ndarray,
        v: np.ndarray,
        t: np.ndarray,
        tg: np.ndarray,
    ) -> None:
        """Each key keeps the last ``window`` values of its final segment: a key that
        continues its history appends to the ring and drops only what leaves it; a key
        restarted (new, idle past the TTL, or filled by this batch alone) is rewritten."""
        w = self.window
        last = key_start + k - 1
        restarted = seg0[last] > key_start
        seg_first = np.where(restarted, seg0[last], key_start)
        m = last + 1 - seg_first  # new values in the final segment
        rewrite = restarted | (h == 0) | (m >= w)
        # rewritten keys: their newest min(m, w) values
        r = np.flatnonzero(rewrite)
        if len(r):
            cnt = np.minimum(m[r], w)
            within = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            src = np.repeat(last[r] + 1 - cnt, cnt) + within
            st.set(slots[r], v[src], cnt, t[last[r]], tg[src])
        # appending keys: m < w new values, the oldest max(0, h + m - w) leave
        a = np.flatnonzero(~rewrite)
        if not len(a):
            return
        sl, hh, mm = slots[a], h[a], m[a]
        drop = np.maximum(0, hh + mm - w)
        gone = st.oldest(sl, drop)
        within = np.arange(int(mm.sum())) - np.repeat(np.cumsum(mm) - mm, mm)
        src = np.repeat(seg_first[a], mm) + within
        new = v[src]
        pos = (np.repeat(st.head[sl] + hh, mm) + within) % w
        cell = st._cell(np.repeat(sl, mm), pos)
        _put_rows(st.ring.reshape(-1, 3), cell, new)
        st.tags.reshape(-1)[cell] = tg[src]

        def sums(vals: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, ...]:
            # per key (contiguous runs of ``counts`` rows): differences of prefix sums,
            # exact in wrapping int64 like the ``np.add.at`` they replace (~5x faster)
            has = vals >= 0
            x = np.where(has, vals, 0)
            ends = np.cumsum(counts)
            begin = ends - counts
            zero = np.zeros((1, 3), dtype=np.int64)
            with np.errstate(over="ignore"):
                p1 = np.vstack([zero, np.cumsum(x, axis=0)])
                p2 = np.vstack([zero, np.cumsum(x * x, axis=0)])
                pc = np.vstack([zero, np.cumsum(has, axis=0, dtype=np.int64)])
                return p1[ends] - p1[begin], p2[ends] - p2[begin], pc[ends] - pc[begin]

        n1, n2, nc = sums(new, mm)
        g1, g2, gc = sums(gone, drop)
        with np.errstate(over="ignore"):
            st.s1[sl] += n1 - g1
            st.s2[sl] += n2 - g2
        st.c[sl] += nc - gc
        st.head[sl] = (st.head[sl] + drop) % w
        st.n[sl] = hh + mm - drop
        st.last_ts[sl] = t[last[a]]

    def rewind(self, scope: str, code: int, tag: int, values: np.ndarray | None) -> bool:
        """Undo the observation ``tag`` of key ``code``: replace it by ``values``
        (premium, size, spread_pct; a corrected packet) or remove it (None: a retracted
        one).  See the module doc ("Cancels") for what this makes exact."""
        new = (
            quantise(np.asarray(values, dtype=np.float64).reshape(1, 3))[0]
            if values is not None
            else None
        )
        return self._stores[scope].rewind(code, tag, new)

    def expire(self, now: int) -> None:
        """Drop keys idle past the TTL (memory only: scoring already ignores them)."""
        for st in self._stores.values():
            st.expire(now - self.ttl_ns)


_ROW3: Final = np.dtype((np.void, 24))  # one (3,) int64 row as a single element
_S1_SAFE: Final = 3_037_000_499  # |s1| below this: s1 * s1 < 2**63


def _exact_int64(n: np.ndarray, s1: np.ndarray, s2: np.ndarray, window: int) -> bool:
    """Whether ``n * s2`` and ``s1 * s1`` are all below 2**63 (always, short of windows
    of nine-figure premiums): ``n * s2 - s1 * s1`` is then an exact int64 result."""
    return bool(
        len(s1)
        and int(s1.max()) < _S1_SAFE
        and int(s1.min()) > -_S1_SAFE
        and int(s2.min()) >= 0
        and int(s2.max()) < (2**63 - 1) // max(window, 1)
        and int(n.max()) <= window
    )


def _std(n: np.ndarray, s1: np.ndarray, s2: np.ndarray, window: int) -> np.ndarray:
    """Sample standard deviation from the exact sums: ``sqrt((n S2 - S1^2) / (n (n -
    1)))`` in extended precision, rounded to float64 (NaN/inf where n <= 1).

    When the numerator is exact in int64 (:func:`_exact_int64`) the extended products
    and difference of the same ints are exact too, so the int64 result converted once
    is the same value (one extended pass instead of six); and an exact numerator is
    never negative (Cauchy-Schwarz), so the clamp at 0 that guards a rounded one
    changes nothing and is skipped."""
    if _exact_int64(n, s1, s2, window):
        var = (n * s2 - s1 * s1).astype(np.longdouble) / (n * (n - 1)).astype(np.longdouble)
    else:
        s1l = s1.astype(np.longdouble)
        num = n.astype(np.longdouble) * s2.astype(np.longdouble) - s1l * s1l
        var = np.maximum(num / (n * (n - 1)).astype(np.longdouble), 0)
    return np.sqrt(var).astype(np.float64)


def _rows(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[idx]`` for a C-contiguous (rows, 3) array of 8-byte items (int64 or
    float64), gathered as 24-byte elements by ``take`` (numpy's 2-D fancy indexing
    costs about twice as much, and ``take`` is faster than ``[idx]``)."""
    if not a.flags.c_contiguous or a.dtype.itemsize != 8 or a.ndim != 2 or a.shape[1] != 3:
        return a[idx]
    return a.view(_ROW3).reshape(-1).take(idx).view(a.dtype).reshape(-1, 3)


def _put_rows(dst: np.ndarray, idx: np.ndarray, src: np.ndarray) -> None:
    """``dst[idx] = src`` for C-contiguous (rows, 3) arrays of 8-byte items, as
    24-byte elements (see :func:`_rows`)."""
    src = np.ascontiguousarray(src, dtype=dst.dtype)
    if not dst.flags.c_contiguous:
        dst[idx] = src
        return
    dst.view(_ROW3).reshape(-1)[idx] = src.view(_ROW3).reshape(-1)


def _add_rows(dst: np.ndarray, idx: np.ndarray, x: np.ndarray) -> None:
    """``dst[idx] += x`` for C-contiguous (rows, 3) int64 arrays and distinct ``idx``,
    by :func:`_rows` and :func:`_put_rows`."""
    _put_rows(dst, idx, _rows(dst, idx) + x)


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
