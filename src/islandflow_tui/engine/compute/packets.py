"""Flow packets: option prints of one contract clustered in event time.

Clustering rule (the seed's): a packet is *anchored* at its first print and gathers
every print of the same contract with ``ts <= anchor + flow.cluster_window_ms``
(500 ms); the next print after that starts the next packet.  Multi-leg /
stock-option prints are clustered apart from single-leg prints of the same contract
(a complex order's leg is not part of a sweep; its meaning is its structure), per
venue and within ``flow.structure_window_ms`` (1 ms): one package's fills of one leg,
not every package that traded the contract in half a second.
Cancels never join a packet (see "Cancels").  Which prints are clustered is
``flow.packet_input``: ``all`` by default, because the pieces of a sweep or split are
individually small and would fail the tape's per-print notional filter.

A packet is final when the watermark passes ``anchor + window`` (no later print can
join it); it is emitted then, once, with ``ts = anchor + window`` (the moment it was
decided, so the stream's ts never goes backwards) and an id that is never reused.

Why anchored and not gap-based: an anchored window bounds a packet's span (a hot
contract printing every 100 ms would otherwise chain into one endless packet) and is
what the seed did.  It is vectorised: rows sorted by (contract, ts), each row's first
successor past its window found by one ``searchsorted``, and the anchors are the
pointer chains from every contract's first row, followed for all contracts at once.

Aggregates are ``numpy.reduceat`` over the contiguous members of each packet: count,
sizes, premium (sum of ``price * size * 100``, dollars), VWAP, first/last/min/max
price, distinct venues (bit masks), ISO count, NBBO coverage (share of prints placed
AA..BB), placement counts and size ratios, buy/sell sizes from the inferred side, the
first and last print's position in the spread (``edge``: +1 at the ask, -1 at the
bid) and the mean relative spread.  Context per packet: underlying spot (latest equity
quote mid or equity print at or before the first print), moneyness
``(strike - spot) / spot``, days to expiry (New York date), open interest
(``flow.open_interest_path`` or :meth:`Packets.set_open_interest`; null = unknown), the
contract's volume today, event-calendar features (compute/calendar.py), rolling
baselines (compute/baselines.py), repeat hits and the kind (compute/kinds.py).
``evidence`` lists the member prints as their ``options.enriched`` ids (each of those
carries the raw print id and the NBBO id it was joined to), in time order.

Repeat hits: a packet *hits* its contract when it is single-leg, has premium >=
``flow.repeat_min_premium`` and took liquidity on its dominant side (bought with half
its size at/above the ask, or sold with half at/below the bid).  ``repeat_hits`` counts
the hits on the same contract and side in ``(first_ts - repeat_window, first_ts]``,
itself included (0 when the packet is not a hit).  Two more counts judge the hits
against the contract's own activity in that window: ``_repeat_share`` = this side's
hits / both sides' hits (a busy contract's ordinary two-sided flow hits both sides
about equally; a repeat hitter leans on one), and ``_repeat_consistent`` = how many of
this side's hits have a premium within a factor ``flow.repeat_size_band`` (2.5) of their
median, 0 unless the packet itself does (one order worked again and again comes in
similar clips; unrelated prints of a busy contract do not).  Both are exact integer
arithmetic on the hits in whole cents.  Why: with
the count alone, a busy or expensive contract (a deep in-the-money TSLA put is $4 500 a
contract) makes five $20k hits at the ask in three minutes out of ordinary flow; on
the active synthetic profile 12 of 13 repeats were that (precision 0.077).

A hit must also be one order's *clip*: its largest print, or its ISO prints together
(a sweep is one order the router split across venues), carry >=
``flow.repeat_min_clip_share`` (0.5) of its premium (a busy contract's 500 ms packet
sums dozens of unrelated small prints to $20k+ on whichever side leads).  And the run
must be far more than the contract's own background (``_repeat_surprise``): hits that
leave the window are counted per (contract, side) in 30 s buckets of their first print
(``REPEAT_BUCKET_NS``) and kept ``flow.repeat_background_ms`` (15 min); the expected
number of this side's hits in a window by chance is

    mu = (this side's hits before the window + the other side's hits in the window)
         x window / (time observed before the window + window)

(the time observed is since the first hit this operator saw, at most background -
window; the other side's hits stand in for one window of background, so the estimate
exists from the first hit on and history takes over as it builds up), and
``_repeat_surprise`` = -log10 P(X >= consistent hits) for X ~ Poisson(mu), capped at
``SURPRISE_CAP``.  The kind needs it >= ``flow.repeat_min_surprise`` (4).  The window's
own hits of this side never count as background: a repeat does not explain itself
away.  The kind (kinds.py) needs all of it.

Cancels.  A print flagged CANCEL retracts the latest earlier print of the same
contract, venue, price and size not already cancelled (OPRA cancels repeat the trade
they cancel).  If the cancel's ts is at or before the close of the target's packet, the
packet was not decided yet in event time: the print is removed and the packet is
emitted without it (nothing was issued, nothing to correct).  If the packet was
already decided, a *correction* is emitted: a new packet event (new id, ``status``
correction, ``corrects`` = the id it replaces, ``retracted`` = the print this cancel
removed, evidence = remaining members + the cancel; one correction per cancel)
recomputed from the remaining members with
the original's context (spot, open interest, baseline stats); a packet left with no
member is re-issued as ``retracted``.  A cancel reaches back ``flow.cancel_lookback_ms``
from the original packet's ts.  Structures re-issue themselves from the corrected
packet (structures.py).

Rewound by a cancel, at the cancel's event time (``_rewind_plan`` / ``_rewind``): the
contract's day volume; the rolling baselines (the packet's observation, contract and
underlying, is replaced by the corrected packet's values or removed when retracted;
see baselines.py for the one inexact case, a retraction from a full window); the
repeat windows (the packet's hit is taken out and, if the corrected packet is still
a hit, put back with its corrected premium and first print time, its evidence id
then naming the correction).  Packets decided at or before the cancel's ts are
scored before the rewind and later ones after it: ``_context`` scores a batch in
segments cut at its cancels' times, so the batching cannot move a packet across a
rewind (every packet at or before a cancel's ts is decided by the watermark that
released the cancel).  Not rewound: the tick-rule state (side.py), packets issued
before the cancel (their z-scores and repeat counts were right at their time; a
correction keeps its original's ``repeat_hits``), and the clustering itself (a
cancelled first print would have anchored its packet's window elsewhere).

What is kept for cancels: the member prints of every packet emitted within the
lookback (found per contract by binary search, not by scanning) and one slim ledger
row per packet version (``RETAIN_COLS``: ids, versions, size, and the context a
correction inherits; contract columns come back from ``cid``).  A checkpoint stores
the members as one row per packet run plus per-print offsets in narrowed int dtypes;
premium, edge and spread are recomputed on restore with the live float operations,
so a restored engine is bit-identical (bench/flow_digest.py checks it).  The same
function derives them for the members of every emitted packet: the rows waiting to
be clustered (and the open packets' rows carried between batches) never hold them,
and their venue, placement and side codes are int8, so a batch moves fewer bytes
per print through its concatenations and gathers.

Batch-size invariance: every decision depends only on event times (window closes,
cancel times, lookback from packet ts); cancels apply one by one in ts order; open
packets are carried as their member rows.  Small batches are the live case, so the
hot path is numpy on column arrays with one polars frame built per batch.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import chain, islice, pairwise
from operator import itemgetter
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pyarrow as pa

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.checkpoints import CheckpointUnreadable
from islandflow_tui.engine.compute.baselines import (
    METRICS,
    SCOPES,
    RollingBaselines,
    stable_argsort,
    z_col,
    z_scores,
)
from islandflow_tui.engine.compute.calendar import EventCalendar
from islandflow_tui.engine.compute.codes import StringCodes
from islandflow_tui.engine.compute.kinds import (
    SIDE_BUY,
    SIDE_SELL,
    clip_premium,
    direction_codes,
    label_kinds,
)
from islandflow_tui.engine.compute.side import COMPLEX_MASK
from islandflow_tui.engine.compute.trace import ArrayItem, trace_from_arrays

Cols = dict[str, np.ndarray]

NY: Final = ZoneInfo("America/New_York")
PLACEMENT_CODE: Final = {p: i for i, p in enumerate(ev.PLACEMENTS)}  # 0..4 placed
_PLACEMENTS: Final = np.array(ev.PLACEMENTS, dtype=object)
_PLACEMENT_ENUM: Final = pl.Enum(list(PLACEMENT_CODE))
_PLC_SERIES: Final = pl.Series(ev.PLACEMENTS, dtype=pl.String)
_SIDES: Final = np.array(["unknown", "buy", "sell", "mixed"], dtype=object)  # SIDE_BUY = 1 ...
_SIDE_SERIES: Final = pl.Series(_SIDES.tolist(), dtype=pl.String)
#: coded columns of the aggregates (internal) -> the string column each one names
_CODED: Final = {"_side_code": "side", "_start_plc": "start_placement", "_end_plc": "end_placement"}
_MAX_VENUES: Final = 63  # venue bit masks are uint64; code 63 collects any overflow
_CANCEL: Final = int(ev.Cond.CANCEL)
_ISO: Final = int(ev.Cond.ISO)
_SIGNAL_BIT: Final = {"balanced": 2, "smart-money": 1}
REPEAT_EVIDENCE: Final = 20  # a repeat hit's evidence: at most this many latest hits
REPEAT_BUCKET_NS: Final = 30 * ev.NS_PER_S  # background hits are counted per 30 s of ts
SURPRISE_CAP: Final = 99.0  # -log10 of a chance too small for a float
_CENTS: Final = itemgetter(2)  # a repeat-window hit's premium in cents

WORK: Final = {
    "ts": np.int64,
    "id": np.int64,
    "cid": np.int64,
    "cplx": bool,
    "price": np.float64,
    "size": np.int64,
    "premium": np.float64,
    "exch": np.int8,  # small codes as bytes: cheaper to gather, carry and store
    "iso": bool,
    "plc": np.int8,
    "side": np.int8,
    "edge": np.float64,
    "spr": np.float64,
    "bid": np.float64,
    "ask": np.float64,
}
#: a batch's repeat evidence: packet keys -> the ids of their windows' latest hits
RepeatEvidence = Callable[[list[int]], list[list[int]]]
#: member columns derived from the others (:func:`derived_member_cols`): the rows to
#: cluster (and the open packets' rows carried between batches) leave them out, and
#: only the members of emitted packets get them, so a batch gathers and carries three
#: columns fewer per print
DERIVED: Final = ("premium", "edge", "spr")
ROWS: Final = {k: t for k, t in WORK.items() if k not in DERIVED}
_NULLABLE_FLOATS: Final = (
    "buy_ratio",
    "start_edge",
    "end_edge",
    "spread_pct",
    "spot",
    "moneyness",
    *(z_col(s, m) for s in SCOPES for m in METRICS),
)
STAT_COLS: Final = tuple(
    f"_b_{s}_{m}_{stat}" for s in SCOPES for m in METRICS for stat in ("mean", "std", "n")
)
#: What a packet keeps for later cancels (its ledger row; the rest of the row went out
#: on the bus): ids and versions for ``corrects``, size for the day volume, and the
#: context a correction inherits.  Contract columns come back from ``cid``.
RETAIN_COLS: Final = (
    "_pkey",
    "_version",
    "id",
    "ts",
    "cid",
    "_date",
    "total_size",
    "day_volume",
    "first_ts",
    "last_ts",
    "spot",
    "moneyness",
    "open_interest",
    "days_to_event",
    "event_before_expiry",
    "repeat_hits",
    "_repeat_premium",
    "_repeat_share",
    "_repeat_consistent",
    "_repeat_surprise",
    *STAT_COLS,
)
_CTX_SOURCE: Final = tuple(c for c in RETAIN_COLS if c != "id")  # ids come at commit
#: member columns a checkpoint stores per print (the rest are per packet or derived)
_MEMBER_STORED: Final = ("ts", "id", "exch", "iso", "plc", "side", "size", "price", "bid", "ask")


_MEMBER_EXTRA: Final = {"_pkey": np.int64, "_pts": np.int64}


def _empty_cols(extra: dict[str, Any] | None = None) -> Cols:
    spec = {**WORK, **(extra or {})}
    return {k: np.empty(0, dtype=t) for k, t in spec.items()}


def _empty_rows() -> Cols:
    return {k: np.empty(0, dtype=t) for k, t in ROWS.items()}


def _take(c: Cols, idx: np.ndarray) -> Cols:
    """Rows ``idx`` (int positions) of every column.  ``ndarray.take`` rather than
    ``v[idx]``: the same values, ~25 % faster per gather (fancy indexing goes through
    numpy's general index machinery), and the hot path gathers every column of every
    batch more than once."""
    return {k: v.take(idx) for k, v in c.items()}


def _cat(parts: list[Cols]) -> Cols:
    if not parts:
        return _empty_cols()
    first = parts[0]
    parts = [p for p in parts if len(next(iter(p.values())))]
    if not parts:
        return {k: v[:0] for k, v in first.items()}
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _len(c: Cols) -> int:
    return len(c["ts"])


def cols_frame(c: Cols) -> pl.DataFrame:
    return pl.DataFrame({k: v for k, v in c.items()})


def frame_cols(df: pl.DataFrame) -> Cols:
    return {k: df.get_column(k).to_numpy() for k in df.columns}


def _small_int(x: np.ndarray) -> pl.Series:
    """``x`` in the narrowest signed int dtype that holds it (checkpoint compaction)."""
    lo, hi = (int(x.min()), int(x.max())) if len(x) else (0, 0)
    for dtype, bits in ((pl.Int8, 8), (pl.Int16, 16), (pl.Int32, 32)):
        if -(2 ** (bits - 1)) <= lo and hi < 2 ** (bits - 1):
            return pl.Series(x, dtype=pl.Int64).cast(dtype)
    return pl.Series(x, dtype=pl.Int64)


def derived_member_cols(c: Cols) -> None:
    """premium, edge and spr of member rows from price, size, bid, ask and placement,
    in place: the same float operations as the NBBO join (its premium, mid and
    spread), so the values are bit-identical to the ones the enriched prints carry
    (IEEE +, -, *, / round each element the same whether it is computed alone or in
    a vector, so dividing only where a quotient is kept changes nothing).  Used for
    the members of every emitted packet and on restore."""
    price, bid, ask = c["price"], c["bid"], c["ask"]
    n = len(price)
    placed = c["plc"] <= 4
    c["premium"] = price * c["size"] * 100.0
    mid = (bid + ask) / 2
    half = (ask - bid) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        c["edge"] = np.divide(price - mid, half, out=np.full(n, np.nan), where=placed & (half > 0))
        c["spr"] = np.divide(ask - bid, mid, out=np.full(n, np.nan), where=placed & (mid > 0))


def members_state(m: Cols) -> dict[str, pl.DataFrame]:
    """Retained members as two compact frames: one row per run of a packet's members
    (packet key, packet ts, contract, complex) and one per member with only what a
    later cancel matches on or a correction re-aggregates, ts and id as offsets from
    their packet's, small ints narrowed.  premium, edge and spr are recomputed on
    restore (:func:`derived_member_cols`)."""
    n = _len(m)
    pkey = m["_pkey"]
    start = np.ones(n, dtype=bool)
    start[1:] = pkey[1:] != pkey[:-1]
    first = np.flatnonzero(start)
    run = np.cumsum(start) - 1
    runs = pl.DataFrame(
        {
            "_pkey": pkey[first],
            "_pts": m["_pts"][first],
            "cid": _small_int(m["cid"][first]),
            "cplx": m["cplx"][first],
            "n": np.diff(np.append(first, n)).astype(np.int32),
        }
    )
    rows = pl.DataFrame(
        {
            "ts": _small_int(m["ts"] - m["_pts"][first][run]),
            "id": _small_int(m["id"] - pkey),
            "exch": m["exch"].astype(np.uint8),
            "iso": m["iso"],
            "plc": m["plc"].astype(np.int8),
            "side": m["side"].astype(np.int8),
            "size": _small_int(m["size"]),
            "price": m["price"],
            "bid": m["bid"],
            "ask": m["ask"],
        }
    )
    return {"retained_runs": runs, "retained_members": rows}


def _members_frames(chunks: list[_Chunk]) -> dict[str, pl.DataFrame]:
    """members_state per chunk (kept by the chunk), then one concat of the compact
    frames (concatenating the full-width member arrays first cost seconds at
    firehose rates)."""
    parts = [f for f in (c.member_frames() for c in chunks) if f["retained_members"].height] or [
        members_state(_empty_cols(_MEMBER_EXTRA))
    ]
    return {
        k: pl.concat([p[k] for p in parts], how="vertical_relaxed")
        if len(parts) > 1
        else parts[0][k]
        for k in ("retained_runs", "retained_members")
    }


def _collected(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    if not isinstance(frame, pl.LazyFrame):
        return frame
    try:
        return frame.collect()
    except Exception as exc:  # a damaged checkpoint file: named, not a crash
        raise CheckpointUnreadable(f"checkpoint frame unreadable: {exc}") from exc


def members_restore(runs: pl.DataFrame, rows: pl.DataFrame) -> Cols:
    """Inverse of :func:`members_state` (the exact in-memory member columns).

    Per-run values are widened before they are repeated (the run table is ~10x
    shorter than the member table) and columns already in their working dtype are
    not copied again: at firehose rates this is millions of rows on every seek."""
    n_run = runs.get_column("n").to_numpy().astype(np.int64)

    def per_run(k: str, dtype: type) -> np.ndarray:
        return np.repeat(runs.get_column(k).to_numpy().astype(dtype, copy=False), n_run)

    def col(k: str, dtype: type) -> np.ndarray:
        return rows.get_column(k).to_numpy().astype(dtype, copy=False)

    pkey, pts = per_run("_pkey", np.int64), per_run("_pts", np.int64)
    ts, ids = col("ts", np.int64), col("id", np.int64)
    out: Cols = {
        # a widened column is a fresh array: add in place rather than allocate again
        "ts": np.add(ts, pts, out=ts) if ts.flags.writeable else ts + pts,
        "id": np.add(ids, pkey, out=ids) if ids.flags.writeable else ids + pkey,
        "cid": per_run("cid", np.int64),
        "cplx": per_run("cplx", bool),
        "price": col("price", np.float64),
        "size": col("size", np.int64),
        "exch": col("exch", np.int8),
        "iso": col("iso", bool),
        "plc": col("plc", np.int8),
        "side": col("side", np.int8),
        "bid": col("bid", np.float64),
        "ask": col("ask", np.float64),
    }
    derived_member_cols(out)
    out = {k: out[k] for k in WORK}
    out["_pkey"] = pkey
    out["_pts"] = pts
    return out


# ---------------------------------------------------------------------------
# Anchored clustering and trailing windows
# ---------------------------------------------------------------------------
def anchored(key: np.ndarray, ts: np.ndarray, window: int | np.ndarray) -> np.ndarray:
    """Anchor flags of windows ``[anchor, anchor + window]`` per key.

    ``key`` must be sorted and ``ts`` sorted within each key; ``window`` is one width
    or one per row (the same for every row of a key).  An anchor's first successor
    past its window comes from a searchsorted over a (key, ts) composite, and the
    pointer chains from every key's first row are followed together, searching only
    for the anchors of each step (a search for every row cost ~10x more).
    """
    n = len(key)
    is_anchor = np.zeros(n, dtype=bool)
    if n == 0:
        return is_anchor
    per_row = isinstance(window, np.ndarray)
    widest = int(window.max()) if per_row else int(window)
    start = np.ones(n, dtype=bool)
    start[1:] = key[1:] != key[:-1]
    rank = np.cumsum(start) - 1
    t0 = int(ts.min())
    span = int(ts.max()) - t0 + widest + 1
    nxt: np.ndarray | None = None
    g = np.zeros(0, dtype=np.int64)
    if (int(rank[-1]) + 1) * span < 2**62:
        g = rank.astype(np.int64) * span + (ts - t0)
    else:  # enormous spans: per key (kept for correctness, never hit by live feeds)
        nxt = np.empty(n, dtype=np.int64)
        bounds = np.append(np.flatnonzero(start), n)
        for a, b in pairwise(bounds.tolist()):
            w = int(window[a]) if per_row else int(window)
            nxt[a:b] = a + np.searchsorted(ts[a:b], ts[a:b] + w, side="right")
    frontier = np.flatnonzero(start)
    steps = 0
    while len(frontier):
        is_anchor[frontier] = True
        steps += 1
        if steps > 8 and len(frontier) <= 16:  # a few long chains left: walk them
            _walk_chains(key, ts, window, frontier, is_anchor)
            break
        if nxt is None:
            w = window.take(frontier) if per_row else window
            nx = np.searchsorted(g, g[frontier] + w, side="right")
        else:
            nx = nxt[frontier]
        ok = nx < n
        nx, fr = nx[ok], frontier[ok]
        frontier = nx[key[nx] == key[fr]]
    return is_anchor


def _walk_chains(
    key: np.ndarray,
    ts: np.ndarray,
    window: int | np.ndarray,
    frontier: np.ndarray,
    is_anchor: np.ndarray,
) -> None:
    """Finish :func:`anchored` for the keys of ``frontier`` (anchors, already flagged)
    row by row: each next anchor is the key's first row past the anchor's window.  A
    busy key of 1 ms windows makes a chain of hundreds of steps, each a few numpy calls
    on a handful of rows; a Python pass over its rows is cheaper."""
    for f in frontier.tolist():
        end = int(np.searchsorted(key, key[f], side="right"))
        w = int(window[f]) if isinstance(window, np.ndarray) else int(window)
        limit = int(ts[f]) + w
        for j, t in enumerate(ts[f + 1 : end].tolist(), start=f + 1):
            if t > limit:
                is_anchor[j] = True
                limit = t + w


def iso_plc_count(cell: np.ndarray, iso: np.ndarray, n_pk: int) -> np.ndarray:
    """ISO prints per packet from the (packet, placement) cells of the members."""
    return np.bincount(cell[iso] // len(ev.PLACEMENTS), minlength=n_pk).astype(np.int64)


def _key_order(cid: np.ndarray, cplx: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``stable_argsort(key)`` for the clustering key (contract, then multi-leg rows by
    venue after the contract's single-leg rows): one 16-bit radix pass over
    ``cid * 2 + cplx`` (the full key needs two), then only the multi-leg rows re-sorted
    by the full key within the positions they already hold (each contract's multi-leg
    rows are one block there, so every row stays in its contract's block)."""
    if len(cid) == 0 or int(cid.max()) >= 1 << 15:
        return stable_argsort(key)
    order = np.argsort((cid * 2 + cplx).astype(np.uint16), kind="stable")
    if cplx.any():
        pos = np.flatnonzero(cplx[order])
        sub = order[pos]
        order[pos] = sub[stable_argsort(key[sub])]
    return order


def ny_days(ts: np.ndarray) -> np.ndarray:
    """America/New_York calendar date of each ts, as days since 1970-01-01."""
    if len(ts) == 0:
        return np.empty(0, dtype=np.int64)

    def offset(t: int) -> int:
        dt = datetime.fromtimestamp(t // ev.NS_PER_S, tz=UTC).astimezone(NY)
        return int(dt.utcoffset().total_seconds())  # type: ignore[union-attr]

    lo, hi = offset(int(ts.min())), offset(int(ts.max()))
    if lo == hi:
        return (ts // ev.NS_PER_S + lo) // 86_400
    dates = (
        pl.from_epoch(pl.Series(ts), time_unit="ns")
        .dt.convert_time_zone("America/New_York")
        .dt.date()
    )
    return dates.cast(pl.Int32).to_numpy().astype(np.int64)


class _CidIndex:
    """Row indices per contract id, ascending within a contract (a stable sort)."""

    def __init__(self, cid: np.ndarray) -> None:
        self.order = stable_argsort(cid)
        self.sorted = cid[self.order]

    def rows(self, cid: int) -> np.ndarray:
        lo = int(np.searchsorted(self.sorted, cid, side="left"))
        hi = int(np.searchsorted(self.sorted, cid, side="right"))
        return self.order[lo:hi]


# ---------------------------------------------------------------------------
# Context sources
# ---------------------------------------------------------------------------
class SpotTracker:
    """Underlying price from equity quotes (mid) and prints, looked up as of a ts.

    Per root: (ts, tie-break, price) sorted.  Only what a future lookup can still need
    is kept: the last price before the oldest ts an open packet can start at, plus
    everything after it.
    """

    def __init__(self) -> None:
        self._rows: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._roots = StringCodes()  # every root seen (derived, not part of the state)

    def state(self) -> pl.DataFrame:
        parts = [
            pl.DataFrame({"root": [r] * len(t), "ts": t, "order": o, "px": p})
            for r, (t, o, p) in sorted(self._rows.items())
        ]
        return (
            pl.concat(parts)
            if parts
            else pl.DataFrame(
                schema={"root": pl.String, "ts": pl.Int64, "order": pl.Int64, "px": pl.Float64}
            )
        )

    def restore(self, rows: pl.DataFrame) -> None:
        self._rows = {}
        for (root,), g in rows.group_by("root", maintain_order=True):
            self._rows[str(root)] = (g["ts"].to_numpy(), g["order"].to_numpy(), g["px"].to_numpy())

    def add(self, quotes: pl.DataFrame | None, prints: pl.DataFrame | None) -> None:
        parts: list[pl.DataFrame] = []
        if quotes is not None and quotes.height:
            parts.append(
                quotes.filter((pl.col("bid") > 0) & (pl.col("ask") >= pl.col("bid"))).select(
                    "symbol",
                    "ts",
                    (pl.col("seq") * 2).alias("order"),
                    ((pl.col("bid") + pl.col("ask")) * 0.5).alias("px"),
                )
            )
        if prints is not None and prints.height:
            parts.append(
                prints.select(
                    "symbol",
                    "ts",
                    (pl.col("seq") * 2 + 1).alias("order"),
                    pl.col("price").alias("px"),
                )
            )
        if not parts:
            return
        new = pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]
        # per root, then (ts, order) by numpy: a polars sort on the symbol string first
        # cost ~4x more; (ts, order) is unique, so the result is the same
        for root, (t, o, p) in self._by_root(new):
            srt = np.lexsort((o, t))
            t, o, p = t[srt], o[srt], p[srt]
            old = self._rows.get(str(root))
            if old is not None:
                t, o, p = (
                    np.concatenate([old[0], t]),
                    np.concatenate([old[1], o]),
                    np.concatenate([old[2], p]),
                )
                if len(old[0]) and (t[len(old[0])] < old[0][-1]):  # out-of-order arrivals
                    srt = np.lexsort((o, t))
                    t, o, p = t[srt], o[srt], p[srt]
            self._rows[str(root)] = (t, o, p)

    def _by_root(
        self, new: pl.DataFrame
    ) -> list[tuple[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """(root, (ts, order, px)) of each root in ``new``, roots sorted, rows in their
        order within a root: the symbols coded by an Enum cast over the roots seen so
        far (:class:`StringCodes`) and grouped by a radix sort of the codes
        (``partition_by`` on the string column cost ~1.6 ms per firehose batch)."""
        if new.height == 0:  # e.g. every quote crossed or without a bid
            return []
        sym = new.get_column("symbol")
        if sym.null_count():  # not from the engine's validated frames: as partition_by
            groups = new.partition_by("symbol", maintain_order=True, as_dict=True)
            return [
                (root, (g["ts"].to_numpy(), g["order"].to_numpy(), g["px"].to_numpy()))
                for (root,), g in sorted(groups.items())
            ]
        code = self._roots.codes(sym)
        order = stable_argsort(code)
        sc = code[order]
        bounds = [0, *(np.flatnonzero(sc[1:] != sc[:-1]) + 1).tolist(), len(sc)]
        t = new.get_column("ts").to_numpy().take(order)
        o = new.get_column("order").to_numpy().take(order)
        p = new.get_column("px").to_numpy().take(order)
        names = self._roots.names
        groups = [(names[int(sc[a])], (t[a:b], o[a:b], p[a:b])) for a, b in pairwise(bounds)]
        return sorted(groups, key=itemgetter(0))

    def lookup(
        self, roots: np.ndarray, ts: np.ndarray, codes: np.ndarray | None = None
    ) -> np.ndarray:
        """Spot of each row's root as of its ts (NaN: none yet).  ``codes`` (optional)
        are small ints naming the roots (``roots[i] == names[codes[i]]``): grouping by
        them avoids sorting strings."""
        out = np.full(len(ts), np.nan)
        if not self._rows or len(ts) == 0:
            return out
        if codes is None:
            uniq, inv = np.unique(roots, return_inverse=True)
            groups = [(root, np.flatnonzero(inv == i)) for i, root in enumerate(uniq.tolist())]
        else:
            order = stable_argsort(codes)
            sc = codes[order]
            start = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
            bounds = np.append(start, len(sc)).tolist()
            groups = [(roots[order[a]], order[a:b]) for a, b in pairwise(bounds)]
        for root, m in groups:
            got = self._rows.get(root)
            if got is None:
                continue
            j = np.searchsorted(got[0], ts[m], side="right") - 1
            out[m] = np.where(j >= 0, got[2][np.maximum(j, 0)], np.nan)
        return out

    def trim(self, keep_from: int) -> None:
        for root, (t, o, p) in list(self._rows.items()):
            cut = int(np.searchsorted(t, keep_from, side="left")) - 1
            if cut > 0:
                self._rows[root] = (t[cut:], o[cut:], p[cut:])


def load_open_interest(path: str | Path) -> pl.DataFrame:
    """symbol, as_of (date, null = always), open_interest from CSV, Parquet or JSON."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".parquet":
            raw = pl.read_parquet(p)
        elif p.suffix.lower() in (".json", ".ndjson"):
            text = p.read_text(encoding="utf-8")
            try:
                data = json.loads(text)
                raw = pl.DataFrame(data if isinstance(data, list) else data["rows"])
            except json.JSONDecodeError:
                raw = pl.read_ndjson(p)
        else:
            raw = pl.read_csv(p, try_parse_dates=True)
    except Exception as exc:
        raise ValueError(f"open interest {path}: cannot read: {exc}") from None
    if "symbol" not in raw.columns or "open_interest" not in raw.columns:
        raise ValueError(f"open interest {path}: needs columns symbol and open_interest")
    return normalise_open_interest(raw)


def normalise_open_interest(frame: pl.DataFrame) -> pl.DataFrame:
    """Typed, sorted open-interest table (a null as_of applies from the start)."""
    as_of = (
        pl.col("as_of").cast(pl.Date, strict=False)
        if "as_of" in frame.columns
        else pl.lit(None, pl.Date)
    )
    return (
        frame.select(
            pl.col("symbol").cast(pl.String),
            as_of.fill_null(pl.date(1970, 1, 1)).alias("as_of"),
            pl.col("open_interest").cast(pl.Int64),
        )
        .filter(pl.col("open_interest").is_not_null())
        .sort("as_of", "symbol")
    )


class _Contracts:
    """Contract descriptors by the engine's dense contract id ``cid``."""

    def __init__(self) -> None:
        self.known = np.zeros(0, dtype=bool)
        self.symbol = np.empty(0, dtype=object)
        self.root = np.empty(0, dtype=object)
        self.right = np.empty(0, dtype=object)
        self.expiry = np.zeros(0, dtype=np.int64)  # days since 1970-01-01
        self.strike = np.zeros(0)
        self.root_code = np.zeros(0, dtype=np.int64)
        # right == "C" / "P" per cid: a packet's direction from these and its side code
        # (comparing per-packet object strings cost ~0.3 ms per firehose batch)
        self.call = np.zeros(0, dtype=bool)
        self.put = np.zeros(0, dtype=bool)
        self._roots: dict[str, int] = {}
        self._series: dict[str, pl.Series] = {}  # symbol/root/right per cid (gathers)
        self._names: pl.DataFrame | None = None

    def series(self, name: str) -> pl.Series:
        """``symbol``, ``root`` or ``right`` of every cid as a string series (made
        again only after new contracts): a gather by cid replaces converting a numpy
        object array per batch."""
        got = self._series.get(name)
        if got is None:
            # from a list: a numpy object array led by None (an unseen cid) fails to
            # convert, as polars infers the type from the first element
            got = pl.Series(getattr(self, name).tolist(), dtype=pl.String)
            self._series[name] = got
        return got

    def names(self, cid: np.ndarray) -> pl.DataFrame:
        """symbol, root and right of each ``cid`` as one frame gather (a third of the
        cost of three series gathers)."""
        if self._names is None or self._names.height != len(self.known):
            self._names = pl.DataFrame({k: self.series(k) for k in ("symbol", "root", "right")})
        return self._names[cid]

    def root_names(self) -> np.ndarray:
        names = np.empty(len(self._roots), dtype=object)
        for name, code in self._roots.items():
            names[code] = name
        return names

    def learn(self, cid: np.ndarray, frame: pl.DataFrame) -> None:
        top = int(cid.max()) + 1
        if top > len(self.known):
            grow = top - len(self.known)
            self.known = np.concatenate([self.known, np.zeros(grow, dtype=bool)])
            self.symbol = np.concatenate([self.symbol, np.full(grow, None, dtype=object)])
            self.root = np.concatenate([self.root, np.full(grow, None, dtype=object)])
            self.right = np.concatenate([self.right, np.full(grow, None, dtype=object)])
            self.expiry = np.concatenate([self.expiry, np.zeros(grow, dtype=np.int64)])
            self.strike = np.concatenate([self.strike, np.zeros(grow)])
            self.root_code = np.concatenate([self.root_code, np.zeros(grow, dtype=np.int64)])
            self.call = np.concatenate([self.call, np.zeros(grow, dtype=bool)])
            self.put = np.concatenate([self.put, np.zeros(grow, dtype=bool)])
        new = ~self.known[cid]
        if not new.any():
            return
        self._series = {}
        self._names = None
        cids, first = np.unique(cid[new], return_index=True)
        rows = frame[np.flatnonzero(new)[first]]
        self.symbol[cids] = rows["symbol"].to_numpy()
        self.root[cids] = rows["root"].to_numpy()
        for c, r in zip(cids.tolist(), self.root[cids].tolist(), strict=True):
            self.root_code[c] = self._roots.setdefault(r, len(self._roots))
        self.right[cids] = rows["right"].to_numpy()
        self.call[cids] = self.right[cids] == "C"
        self.put[cids] = self.right[cids] == "P"
        self.expiry[cids] = rows["expiry"].cast(pl.Int32).to_numpy()
        self.strike[cids] = rows["strike"].to_numpy()
        self.known[cids] = True

    def state(self) -> pl.DataFrame:
        idx = np.flatnonzero(self.known)
        return pl.DataFrame(
            {
                "cid": idx,
                "symbol": pl.Series(self.symbol[idx], dtype=pl.String),
                "root": pl.Series(self.root[idx], dtype=pl.String),
                "right": pl.Series(self.right[idx], dtype=pl.String),
                "expiry": self.expiry[idx],
                "strike": self.strike[idx],
            }
        )

    def restore(self, frame: pl.DataFrame) -> None:
        self.__init__()  # type: ignore[misc]
        if frame.height:
            cid = frame["cid"].to_numpy().astype(np.int64)
            renamed = frame.with_columns(pl.col("expiry").cast(pl.Int32).cast(pl.Date))
            self.learn(cid, renamed)


# ---------------------------------------------------------------------------
# The operator
# ---------------------------------------------------------------------------
#: checkpoint frames a restore may leave unread (``pl.LazyFrame``) until a cancel, a
#: correction or the next checkpoint needs them (see :class:`_Chunk`)
LAZY_STATE: Final = ("retained_runs", "retained_members", "retained_packets")


class _Chunk:
    """Members and rows of the packets emitted in one batch, kept for cancels.

    A chunk restored from a checkpoint can hold its frames unread (``stored``: the
    checkpoint's compact member frames and ledger, as ``pl.LazyFrame``): the
    retained prints are only needed when a cancel or a correction reaches back,
    and a stretch of the firehose without cancels never needs them before they
    expire.  Decoding them cost a seek ~0.2 s (3.6 M prints at firehose rates).  The
    first access decodes them exactly as an eager restore does, so nothing
    downstream can tell the difference.

    The compact member frames a checkpoint stores are kept once made (a chunk's
    members only change by assignment, which drops them): taking a checkpoint then
    re-encodes only the chunks that are new since the last one.
    """

    __slots__ = ("_frames", "_members", "_packets", "_stored", "max_ts")

    def __init__(
        self,
        max_ts: int,
        members: Cols | None,
        packets: pl.DataFrame | pl.LazyFrame,
        stored: tuple[Any, Any] | None = None,
    ) -> None:
        self.max_ts = max_ts
        self._members = members  # work rows + _pkey + _pts (ts of the original packet)
        self._packets = packets  # every emitted version (internal columns, id)
        #: (retained_runs, retained_members) as a checkpoint stores them
        self._stored = stored
        self._frames: dict[str, pl.DataFrame] | None = None

    @property
    def members(self) -> Cols:
        if self._members is None:  # restored unread: decode now, as an eager restore does
            frames = self.member_frames()
            self._members = members_restore(frames["retained_runs"], frames["retained_members"])
        return self._members

    @members.setter
    def members(self, value: Cols) -> None:
        self._members = value
        self._frames = None
        self._stored = None

    @property
    def packets(self) -> pl.DataFrame:
        if isinstance(self._packets, pl.LazyFrame):
            self._packets = _collected(self._packets)
        return self._packets

    @packets.setter
    def packets(self, value: pl.DataFrame) -> None:
        self._packets = value

    @property
    def unread(self) -> bool:
        """Still as restored: neither the members nor the ledger decoded."""
        return self._members is None and isinstance(self._packets, pl.LazyFrame)

    def member_frames(self) -> dict[str, pl.DataFrame]:
        """This chunk's members as :func:`members_state` frames (made once)."""
        if self._frames is None:
            if self._members is None and self._stored is not None:
                runs, rows = (_collected(f) for f in self._stored)
                self._frames = {"retained_runs": runs, "retained_members": rows}
            else:
                self._frames = members_state(self.members)
            self._stored = None
        return self._frames


class Packets:
    """Stateful operator: signed enriched prints (+ watermark) -> flow packets."""

    def __init__(self, cfg: Config) -> None:
        f = cfg.flow
        self.cfg = f
        self.window_ns = f.cluster_window_ms * ev.NS_PER_MS
        self.complex_ns = min(f.structure_window_ms, f.cluster_window_ms) * ev.NS_PER_MS
        self.lookback_ns = f.cancel_lookback_ms * ev.NS_PER_MS
        self.repeat_ns = f.repeat_window_ms * ev.NS_PER_MS
        self.background_ns = max(f.repeat_background_ms * ev.NS_PER_MS, self.repeat_ns)
        self.spot = SpotTracker()
        self.baselines = RollingBaselines(f)
        self.open_interest: pl.DataFrame | None = (
            load_open_interest(f.open_interest_path) if f.open_interest_path else None
        )
        self.calendar = (
            EventCalendar.load(f.event_calendar_path)
            if f.event_calendar_path
            else EventCalendar.empty()
        )
        self.unmatched_cancels = 0
        self._pending = _empty_rows()  # rows of open packets (ROWS columns)
        self._venues: dict[str, int] = {}
        self._contracts = _Contracts()
        self._chunks: list[_Chunk] = []
        self._day_date = np.zeros(0, dtype=np.int64)  # per cid: date of _day_cum
        self._day_cum = np.zeros(0, dtype=np.int64)
        # (cid, side) -> hits [first_ts, pkey, premium, id] in the trailing window
        self._repeat: dict[tuple[int, int], deque[list[Any]]] = {}
        self._repeat_cents: dict[tuple[int, int], int] = {}  # premium in the window, cents
        # (packet key, version) -> its repeat-window hit, whose id is set at commit
        self._new_hits: dict[tuple[int, int], list[Any]] = {}
        self._rep_snap: dict[int, list[list[Any]]] = {}  # packet key -> hits in its window
        # (cid, side) -> [bucket, hits] of hits that left the window (the background)
        self._rep_hist: dict[tuple[int, int], deque[list[int]]] = {}
        self._rep_t0: int | None = None  # first print ts of the first hit seen
        self._members: Cols | None = None
        self._last_expire = -(2**62)
        self._prev_wm = -(2**62)

    def set_open_interest(self, frame: pl.DataFrame | None) -> None:
        """Replace the open-interest table (symbol, open_interest[, as_of])."""
        self.open_interest = normalise_open_interest(frame) if frame is not None else None

    # -- state ------------------------------------------------------------------
    def state(self) -> dict[str, pl.DataFrame]:
        retained = (
            pl.concat([c.packets for c in self._chunks], how="diagonal_relaxed")
            if self._chunks
            else pl.DataFrame()
        )
        day = np.flatnonzero(self._day_date > 0)
        return {
            "pending": cols_frame(self._pending),
            "venues": pl.DataFrame(
                {"venue": list(self._venues), "code": list(self._venues.values())},
                schema={"venue": pl.String, "code": pl.Int64},
            ),
            "contracts": self._contracts.state(),
            **_members_frames(self._chunks),
            "retained_packets": retained,
            # lets a restore keep the retained frames unread (LAZY_STATE)
            "retained_max_ts": pl.DataFrame(
                {"max_ts": [retained["ts"].max() if retained.height else None]},
                schema={"max_ts": pl.Int64},
            ),
            "day_volume": pl.DataFrame(
                {"cid": day, "date": self._day_date[day], "cum": self._day_cum[day]}
            ),
            "repeat": self._repeat_frame(),
            "repeat_history": self._history_frame(),
            "spot": self.spot.state(),
            "counters": pl.DataFrame(
                {"unmatched_cancels": [self.unmatched_cancels], "repeat_t0": [self._rep_t0]},
                schema={"unmatched_cancels": pl.Int64, "repeat_t0": pl.Int64},
            ),
            **{
                f"baseline.{k}": v
                for k, v in self.baselines.state(
                    {"contract": self._contracts.symbol, "root": self._contracts.root_names()}
                ).items()
            },
        }

    def _repeat_frame(self) -> pl.DataFrame:
        """The repeat windows as rows (cid, side, first_ts, _pkey, premium_cents, id),
        key by key, oldest first.  Built from one flat list of the hits' ints by numpy:
        at firehose rates the windows hold ~300 000 hits and per-column Python lists
        made this most of a checkpoint's cost on the engine thread."""
        keys = sorted(self._repeat)
        lens = np.array([len(self._repeat[k]) for k in keys], dtype=np.int64)
        names = ("first_ts", "_pkey", "premium_cents", "id")
        key_arr = np.array(keys, dtype=np.int64).reshape(-1, 2)
        cols: dict[str, Any] = {
            "cid": np.repeat(key_arr[:, 0], lens),
            "side": np.repeat(key_arr[:, 1], lens),
        }
        total = int(lens.sum())
        try:
            flat = np.fromiter(
                chain.from_iterable(chain.from_iterable(self._repeat[k] for k in keys)),
                dtype=np.int64,
                count=4 * total,
            ).reshape(-1, 4)
            cols.update({n: flat[:, i] for i, n in enumerate(names)})
        except TypeError:  # a hit whose id is not assigned yet (None): per column
            hits = list(chain.from_iterable(self._repeat[k] for k in keys))
            cols.update({n: [h[i] for h in hits] for i, n in enumerate(names)})
        return pl.DataFrame(cols, schema=dict.fromkeys(("cid", "side", *names), pl.Int64))

    def _history_frame(self) -> pl.DataFrame:
        """The background buckets as rows (cid, side, bucket, hits), key by key, oldest
        first (at most background / 30 s rows per key)."""
        keys = sorted(self._rep_hist)
        lens = np.array([len(self._rep_hist[k]) for k in keys], dtype=np.int64)
        key_arr = np.array(keys, dtype=np.int64).reshape(-1, 2)
        flat = np.array(
            list(chain.from_iterable(chain.from_iterable(self._rep_hist[k] for k in keys))),
            dtype=np.int64,
        ).reshape(-1, 2)
        return pl.DataFrame(
            {
                "cid": np.repeat(key_arr[:, 0], lens),
                "side": np.repeat(key_arr[:, 1], lens),
                "bucket": flat[:, 0],
                "hits": flat[:, 1],
            },
            schema=dict.fromkeys(("cid", "side", "bucket", "hits"), pl.Int64),
        )

    def _restore_history(self, frame: pl.DataFrame | None) -> None:
        """Background buckets from their checkpoint rows (a checkpoint from before the
        background rule has none: the background then starts empty at the restore)."""
        self._rep_hist = {}
        if frame is None or frame.height == 0:
            return
        cid = frame.get_column("cid").to_numpy()
        side = frame.get_column("side").to_numpy()
        start = np.ones(len(cid), dtype=bool)
        start[1:] = (cid[1:] != cid[:-1]) | (side[1:] != side[:-1])
        first = np.flatnonzero(start)
        rows = list(map(list, zip(frame["bucket"].to_list(), frame["hits"].to_list(), strict=True)))
        bounds = [*first.tolist(), len(cid)]
        keys = zip(cid[first].tolist(), side[first].tolist(), strict=True)
        for key, a, b in zip(keys, bounds[:-1], bounds[1:], strict=True):
            q = self._rep_hist.get(key)
            if q is None:
                self._rep_hist[key] = deque(rows[a:b])
            else:  # the same key in two runs (not written so): append in order
                q.extend(rows[a:b])

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        pending = state["pending"]
        self._pending = (
            {k: pending[k].to_numpy().astype(t) for k, t in ROWS.items()}
            if pending.height
            else _empty_rows()
        )
        venues = state["venues"]
        self._venues = dict(zip(venues["venue"].to_list(), venues["code"].to_list(), strict=True))
        self._contracts.restore(state["contracts"])
        self._chunks = []
        self._restore_retained(state)
        day = state["day_volume"]
        size = int(day["cid"].max()) + 1 if day.height else 0  # type: ignore[arg-type]
        self._day_date = np.zeros(size, dtype=np.int64)
        self._day_cum = np.zeros(size, dtype=np.int64)
        if day.height:
            cid = day["cid"].to_numpy()
            self._day_date[cid] = day["date"].to_numpy()
            self._day_cum[cid] = day["cum"].to_numpy()
        self._repeat = {}
        self._repeat_cents = {}
        self._restore_repeats(state["repeat"])
        self._restore_history(state.get("repeat_history"))
        self.spot.restore(state["spot"])
        counters = state["counters"]
        self.unmatched_cancels = int(counters["unmatched_cancels"][0])
        t0 = counters["repeat_t0"][0] if "repeat_t0" in counters.columns else None
        self._rep_t0 = None if t0 is None else int(t0)
        ct = self._contracts
        known = np.flatnonzero(ct.known)
        self.baselines.restore(
            {k.removeprefix("baseline."): v for k, v in state.items() if k.startswith("baseline.")},
            {
                "contract": dict(zip(ct.symbol[known].tolist(), known.tolist(), strict=True)),
                "root": {name: code for code, name in enumerate(ct.root_names().tolist())},
            },
        )

    def _restore_retained(self, state: dict[str, Any]) -> None:
        """The retained members and ledger as one chunk, left unread when the
        checkpoint passed them as ``pl.LazyFrame`` and says their newest ts."""
        runs, rows, packets = (state[k] for k in LAZY_STATE)
        try:
            names = packets.collect_schema().names()
        except Exception as exc:
            raise CheckpointUnreadable(f"checkpoint frame unreadable: {exc}") from exc
        if "repeat_hits" in names and "_repeat_share" not in names:
            # a checkpoint from before the relative repeat rule: its packets' hits
            # were not judged against side share or clip size (neutral values)
            packets = packets.with_columns(
                pl.lit(1.0).alias("_repeat_share"),
                pl.col("repeat_hits").alias("_repeat_consistent"),
            )
            names = [*names, "_repeat_share", "_repeat_consistent"]
        if "repeat_hits" in names and "_repeat_surprise" not in names:
            # a checkpoint from before the background rule: its packets' hits were not
            # judged against the contract's background (a neutral, passing value)
            packets = packets.with_columns(pl.lit(SURPRISE_CAP).alias("_repeat_surprise"))
        if isinstance(packets, pl.LazyFrame) and "retained_max_ts" in state:
            max_ts = state["retained_max_ts"]["max_ts"][0]
            if max_ts is not None:
                self._chunks.append(_Chunk(int(max_ts), None, packets, (runs, rows)))
            return
        packets = _collected(packets)
        if packets.height:
            runs, rows = _collected(runs), _collected(rows)
            chunk = _Chunk(int(packets["ts"].max()), members_restore(runs, rows), packets)  # type: ignore[arg-type]
            self._chunks.append(chunk)

    def _restore_repeats(self, rep: pl.DataFrame) -> None:
        """The repeat windows from their checkpoint rows (state() writes them key by
        key, oldest first).  Group bounds and premium sums come from numpy and the hit
        lists from whole columns: per-row tuples and a groupby cost ~0.25 s per seek at
        firehose rates (~100k hits in the window)."""
        n = rep.height
        if n == 0:
            return
        cid = rep.get_column("cid").to_numpy()
        side = rep.get_column("side").to_numpy()
        start = np.ones(n, dtype=bool)
        start[1:] = (cid[1:] != cid[:-1]) | (side[1:] != side[:-1])
        first = np.flatnonzero(start)
        cents = np.add.reduceat(rep.get_column("premium_cents").to_numpy(), first).tolist()
        hits = list(
            map(
                list,
                zip(
                    *(
                        rep.get_column(k).to_list()
                        for k in ("first_ts", "_pkey", "premium_cents", "id")
                    ),
                    strict=True,
                ),
            )
        )
        bounds = [*first.tolist(), n]
        keys = zip(cid[first].tolist(), side[first].tolist(), strict=True)
        for key, a, b, total in zip(keys, bounds[:-1], bounds[1:], cents, strict=True):
            q = self._repeat.get(key)
            if q is None:
                self._repeat[key] = deque(hits[a:b])
            else:  # the same key in two separate runs: append, as the live window did
                q.extend(hits[a:b])
            self._repeat_cents[key] = self._repeat_cents.get(key, 0) + total

    # -- input ------------------------------------------------------------------
    def add_equities(self, quotes: pl.DataFrame | None, prints: pl.DataFrame | None) -> None:
        """Equity quotes and prints (engine-accepted frames) feed the spot lookup."""
        self.spot.add(quotes, prints)

    def _venue_codes(self, exchange: pl.Series) -> np.ndarray:
        """Venue codes as int8 (-1: not seen yet).  While the codes are 0, 1, 2 ... in
        the order the venues were seen (up to 63 venues), an Enum cast's physical index
        is the code: ~2x cheaper than a dict replace over a firehose batch."""
        names = list(self._venues)
        if names and list(self._venues.values()) == list(range(len(names))):
            codes = exchange.cast(pl.Enum(names), strict=False).to_physical().cast(pl.Int64)
            codes = codes.fill_null(-1)
        else:
            codes = exchange.replace_strict(self._venues, default=-1, return_dtype=pl.Int64)
        return codes.cast(pl.Int8).to_numpy()

    def _work(self, enriched: pl.DataFrame) -> tuple[Cols, Cols | None]:
        """(rows to cluster, cancel rows) from signed enriched prints, read column by
        column (one ``select`` over this wide frame cost 7.2 ms per 4 s firehose batch
        against 6.6 ms)."""
        col = enriched.get_column
        a = {
            k: col(k).to_numpy()
            for k in ("ts", "id", "flags", "price", "size", "bid", "ask", "signal_mask")
        }
        a["cid"] = col("cid").cast(pl.Int64).to_numpy()
        a["exch"] = self._venue_codes(col("exchange"))
        # the NBBO join's own code (indexed like ev.PLACEMENTS = PLACEMENT_CODE) when
        # the frame carries it; else the Enum's physical index, the same numbers
        plc = (
            col("plc_code")
            if "plc_code" in enriched.columns
            else col("placement").cast(_PLACEMENT_ENUM).to_physical()
        )
        a["plc"] = plc.cast(pl.Int8).to_numpy()
        a["side"] = col("side_code").cast(pl.Int8).to_numpy()
        if (a["exch"] < 0).any():
            for v in sorted(set(enriched["exchange"].to_list()) - set(self._venues)):
                self._venues[v] = min(len(self._venues), _MAX_VENUES)
            a["exch"] = self._venue_codes(col("exchange"))
        self._contracts.learn(a["cid"], enriched)
        flags = a["flags"]
        placed = a["plc"] <= 4
        # premium, edge and spr are derived for the members of emitted packets only
        # (DERIVED): not per print here, nor carried with the open packets' rows
        cols: Cols = {
            "ts": a["ts"],
            "id": a["id"],
            "cid": a["cid"],
            "cplx": (flags & COMPLEX_MASK) != 0,
            "price": a["price"],
            "size": a["size"],
            "exch": a["exch"],
            "iso": (flags & _ISO) != 0,
            "plc": a["plc"],
            "side": a["side"],
            "bid": np.where(placed, a["bid"], np.nan).astype(np.float64),
            "ask": np.where(placed, a["ask"], np.nan).astype(np.float64),
        }
        is_cancel = (flags & _CANCEL) != 0
        keep = ~is_cancel
        if self.cfg.packet_input != "all":
            keep &= (a["signal_mask"] & _SIGNAL_BIT[self.cfg.packet_input]) != 0
        cancels = _take(cols, np.flatnonzero(is_cancel)) if is_cancel.any() else None
        work = cols if keep.all() else _take(cols, np.flatnonzero(keep))
        return work, cancels

    # -- processing -------------------------------------------------------------
    def process(self, enriched: pl.DataFrame | None, watermark: int) -> pl.DataFrame | None:
        """Packets (and corrections) decided below ``watermark``, ids not yet assigned.

        The caller assigns seq/id and then calls :meth:`commit` with the result.
        """
        # memory housekeeping with the previous watermark (this batch's repeat hits are
        # still needed for the classifiers' evidence after process)
        if self._prev_wm - self._last_expire > self.baselines.ttl_ns // 8:
            self.baselines.expire(self._prev_wm)
            self._expire_repeats(self._prev_wm)
            self._last_expire = self._prev_wm
        self._prev_wm = watermark
        cancels = None
        rows = self._pending
        if enriched is not None and enriched.height:
            work, cancels = self._work(enriched)
            rows = _cat([rows, work])
        post: list[tuple[dict[str, Any], int]] = []
        if cancels is not None:
            rows, post = self._open_cancels(rows, cancels)
        agg, members, self._pending = self._cluster(rows, watermark)
        corrections, members = self._corrections(post, members)
        self._members = members
        frames = []
        originals = self._context(agg, corrections) if agg is not None else None
        if originals is None and corrections is not None:
            self._advance_day(None, corrections)
            for step in self._rewind_plan(corrections):
                self._rewind(step)
        if originals is not None:
            frames.append(originals)
        if corrections is not None:
            frames.append(self._recontext(corrections, originals))
        self.spot.trim(watermark - self.window_ns)
        if not frames:
            return None
        if len(frames) == 1:
            return frames[0]
        return pl.concat(frames, how="diagonal_relaxed").sort("ts", "_pkey", "_version")

    def commit(self, assigned: pl.DataFrame, watermark: int) -> pl.DataFrame:
        """Fill ``corrects`` of corrections, remember ids for later cancels and repeats."""
        out = assigned
        versions = assigned.get_column("_version").to_numpy()
        if (versions > 0).any():
            keys = assigned.filter(pl.col("_version") > 0).get_column("_pkey").implode()
            prev = pl.concat(
                [assigned.select("_pkey", "_version", "id")]
                + [
                    c.packets.filter(pl.col("_pkey").is_in(keys)).select("_pkey", "_version", "id")
                    for c in self._chunks
                ],
                how="vertical",
            )
            out = (
                assigned.join(
                    prev.rename({"id": "_prev_id"}).with_columns(pl.col("_version") + 1),
                    on=["_pkey", "_version"],
                    how="left",
                    maintain_order="left",
                )
                .with_columns(
                    pl.when(pl.col("_version") > 0).then(pl.col("_prev_id")).alias("corrects")
                )
                .drop("_prev_id")
            )
        ids = out.get_column("id").to_numpy()
        pkeys = out.get_column("_pkey").to_numpy()
        new = versions == 0
        # each hit takes the id of the version that made it: the original's, or a
        # correction's that re-entered it (a retraction in the same batch must not
        # rename the original's hit, which earlier packets' evidence already shows)
        if self._new_hits:
            self._hit_ids(pkeys, versions, ids)
        self._new_hits = {}
        members = self._members
        if new.any() and members is not None and _len(members):
            # members["_pts"] (their packet's ts) was set by _cluster
            retain = out.select(RETAIN_COLS)
            if not new.all():
                retain = retain.filter(pl.Series(new))
            pts = out.get_column("ts").to_numpy()[new]
            self._chunks.append(_Chunk(int(pts.max()), members, retain))
        if (~new).any():
            corr = out.select(RETAIN_COLS).filter(pl.Series(~new))
            for chunk in self._chunks:
                mine = corr.filter(
                    pl.col("_pkey").is_in(chunk.packets.get_column("_pkey").implode())
                )
                if mine.height:
                    chunk.packets = pl.concat(
                        [chunk.packets, mine.select(RETAIN_COLS)], how="diagonal_relaxed"
                    )
        horizon = watermark - self.lookback_ns
        self._chunks = [c for c in self._chunks if c.max_ts >= horizon]
        self._members = None
        return out

    def _hit_ids(self, pkeys: np.ndarray, versions: np.ndarray, ids: np.ndarray) -> None:
        """Set the id of every hit in ``_new_hits`` from the row of its (packet key,
        version), if there is one: originals by binary search over the version-0 keys
        (unique), corrections (few) by a dict."""
        keys = list(self._new_hits)
        hk = np.fromiter((k[0] for k in keys), dtype=np.int64, count=len(keys))
        hv = np.fromiter((k[1] for k in keys), dtype=np.int64, count=len(keys))
        got = np.full(len(keys), -1, dtype=np.int64)
        found = np.zeros(len(keys), dtype=bool)
        v0 = np.flatnonzero(versions == 0)
        if len(v0):
            srt = v0[np.argsort(pkeys[v0], kind="stable")]
            sp = pkeys[srt]
            pos = np.minimum(np.searchsorted(sp, hk), len(sp) - 1)
            ok = (hv == 0) & (sp[pos] == hk)
            got[ok] = ids[srt[pos[ok]]]
            found |= ok
        if (versions > 0).any() and (hv > 0).any():
            fixed = np.flatnonzero(versions > 0)
            row = dict(
                zip(
                    zip(pkeys[fixed].tolist(), versions[fixed].tolist(), strict=True),
                    ids[fixed].tolist(),
                    strict=True,
                )
            )
            for j in np.flatnonzero(hv > 0).tolist():
                i = row.get(keys[j])
                if i is not None:
                    got[j] = i
                    found[j] = True
        hits = list(self._new_hits.values())
        for j, i in zip(np.flatnonzero(found).tolist(), got[found].tolist(), strict=True):
            hits[j][3] = i

    # -- clustering -------------------------------------------------------------
    def _cluster(self, rows: Cols, watermark: int) -> tuple[Cols | None, Cols | None, Cols]:
        """(aggregated emitted packets, their member rows, rows of open packets).

        Single-leg prints cluster per contract in the anchored cluster window;
        multi-leg prints per (contract, venue) in the structure window: the legs of one
        package print together, and a busy contract's other packages must not merge in.
        """
        n = _len(rows)
        if n == 0:
            return None, None, rows
        cplx = rows["cplx"]
        key = np.where(cplx, (rows["cid"] * 64 + rows["exch"]) * 2 + 1, rows["cid"] * 128)
        window = np.where(cplx, self.complex_ns, self.window_ns)
        order = _key_order(rows["cid"], cplx, key)
        ks, ts = key.take(order), rows["ts"].take(order)
        # single-leg and multi-leg rows never share a key: one pass, a window per row
        w_sorted = window.take(order)
        anchor = anchored(ks, ts, w_sorted)
        cluster = np.cumsum(anchor) - 1
        closed_sorted = ts[anchor][cluster] + w_sorted < watermark
        if not closed_sorted.any():
            return None, None, rows
        open_mask = np.ones(n, dtype=bool)
        open_mask[order[closed_sorted]] = False
        pending = _take(rows, np.flatnonzero(open_mask)) if open_mask.any() else _empty_rows()
        sel = order[closed_sorted]
        starts = np.flatnonzero(anchor[closed_sorted])
        # contract and multi-leg flag are one value per packet (both are part of the
        # clustering key): repeated from the packet's first row, not gathered per row
        per_packet = np.diff(np.append(starts, len(sel)))
        got = {
            k: np.repeat(v[sel[starts]], per_packet) if k in ("cid", "cplx") else v.take(sel)
            for k, v in rows.items()
        }
        derived_member_cols(got)
        members = {k: got[k] for k in WORK}
        agg = self._aggregate(members, starts)
        members["_pkey"] = np.repeat(agg["_pkey"], agg["count"])
        members["_pts"] = np.repeat(agg["ts"], agg["count"])  # the packet's ts (commit)
        return agg, members, pending

    def _aggregate(self, m: Cols, starts: np.ndarray) -> Cols:
        """One row per packet from members sorted by (contract, ts), packets contiguous."""
        n = _len(m)
        ends = np.append(starts[1:], n)
        last = ends - 1
        size, price, plc, side = m["size"], m["price"], m["plc"], m["side"]
        cnt = (ends - starts).astype(np.int64)

        def add(x: np.ndarray) -> np.ndarray:
            return np.add.reduceat(x, starts)

        total = add(size)
        totf = total.astype(np.float64)
        placed = plc <= 4
        # counts and sizes per (packet, placement) by three bincounts instead of a
        # reduceat per placement; sizes are whole contracts, so their float sums are
        # exact and equal the integer sums they replace
        n_pk = len(starts)
        n_plc = len(ev.PLACEMENTS)
        cell = np.repeat(np.arange(n_pk, dtype=np.int64) * n_plc, cnt) + plc
        by_plc = np.bincount(cell, minlength=n_pk * n_plc).reshape(n_pk, n_plc)
        size_plc = np.bincount(cell, weights=size, minlength=n_pk * n_plc).reshape(n_pk, n_plc)
        iso = m["iso"]
        iso_plc = np.bincount(cell[iso], weights=size[iso], minlength=n_pk * n_plc).reshape(
            n_pk, n_plc
        )
        n_placed = by_plc[:, 0] + by_plc[:, 1] + by_plc[:, 2] + by_plc[:, 3] + by_plc[:, 4]
        iso_size = iso_plc[:, 0].copy()
        for j in range(1, n_plc):
            iso_size += iso_plc[:, j]
        buy = add(np.where(side > 0, size, 0))
        sell = add(np.where(side < 0, size, 0))
        signed = buy + sell
        bits = np.left_shift(np.uint64(1), m["exch"].astype(np.uint64))
        venue_mask = np.bitwise_or.reduceat(bits, starts)
        iso_mask = np.bitwise_or.reduceat(np.where(iso, bits, np.uint64(0)), starts)
        with np.errstate(invalid="ignore", divide="ignore"):
            spread_pct = add(np.where(placed, m["spr"], 0.0)) / n_placed
            buy_ratio = buy / signed
        side_code = np.select(
            [signed == 0, buy > sell, sell > buy], [0, SIDE_BUY, SIDE_SELL], 3
        )  # indexes _SIDES
        out: Cols = {
            "_pkey": m["id"][starts],
            "cid": m["cid"][starts],
            "complex": m["cplx"][starts],
            "first_ts": m["ts"][starts],
            "last_ts": m["ts"][last],
            "count": cnt,
            "total_size": total,
            "max_size": np.maximum.reduceat(size, starts),
            "max_print_premium": np.maximum.reduceat(m["premium"], starts),
            "premium": add(m["premium"]),
            "vwap": add(price * size) / totf,
            "first_price": price[starts],
            "last_price": price[last],
            "min_price": np.minimum.reduceat(price, starts),
            "max_price": np.maximum.reduceat(price, starts),
            "exchanges": np.bitwise_count(venue_mask).astype(np.int64),
            "iso_count": iso_plc_count(cell, iso, n_pk),
            "iso_size": iso_size.astype(np.int64),
            "_iso_premium": add(np.where(iso, m["premium"], 0.0)),
            "iso_exchanges": np.bitwise_count(iso_mask).astype(np.int64),
            "_iso_taking": np.maximum(
                iso_plc[:, 0] + iso_plc[:, 1], iso_plc[:, 3] + iso_plc[:, 4]
            ).astype(np.int64),
            "nbbo_coverage": n_placed / cnt,
            **{f"n_{p.lower()}": by_plc[:, i] for i, p in enumerate(ev.PLACEMENTS[:5])},
            "n_unplaced": cnt - n_placed,
            "ask_ratio": (size_plc[:, 0] + size_plc[:, 1]) / totf,
            "mid_ratio": size_plc[:, 2] / totf,
            "bid_ratio": (size_plc[:, 3] + size_plc[:, 4]) / totf,
            "buy_size": buy,
            "sell_size": sell,
            "buy_ratio": np.where(signed > 0, buy_ratio, np.nan),
            "_side_code": side_code,  # named "side" in frames (_named)
            "aggressor_ratio": np.maximum(buy, sell) / totf,
            "_start_plc": plc[starts],
            "_end_plc": plc[last],
            "start_edge": m["edge"][starts],
            "end_edge": m["edge"][last],
            "spread_pct": np.where(n_placed > 0, spread_pct, np.nan),
            "_first_exch": m["exch"][starts],
            "_first_bid": m["bid"][starts],
            "_first_ask": m["ask"][starts],
            "_ev_off": np.append(starts, n).astype(np.int64),
            "_ev_val": m["id"],
        }
        out["span_ns"] = out["last_ts"] - out["first_ts"]
        out["ts"] = out["first_ts"] + np.where(out["complex"], self.complex_ns, self.window_ns)
        return out

    # -- cancels ----------------------------------------------------------------
    def _open_cancels(
        self, rows: Cols, cancels: Cols
    ) -> tuple[Cols, list[tuple[dict[str, Any], int]]]:
        """Apply cancels in ts order: remove targets from packets still open at the
        cancel's time; return the rest as (cancel, target id) for corrections."""
        n = _len(rows)
        alive = np.ones(n, dtype=bool)
        taken = np.zeros(n, dtype=bool)  # already the target of an earlier cancel
        ts, ids = rows["ts"], rows["id"]
        retained = _cat([c.members for c in self._chunks]) if self._chunks else None
        r_alive = np.ones(_len(retained), dtype=bool) if retained is not None else None
        # rows of one contract by binary search, in their original order (stable sort),
        # instead of a scan of every open and retained row per cancel
        by_cid = _CidIndex(rows["cid"])
        r_by_cid = _CidIndex(retained["cid"]) if retained is not None else None
        post: list[tuple[dict[str, Any], int]] = []
        order = np.lexsort((cancels["id"], cancels["ts"]))
        for i in order.tolist():
            c = {k: v[i].item() for k, v in cancels.items()}
            sub = by_cid.rows(c["cid"])
            same = (
                (rows["exch"][sub] == c["exch"])
                & (rows["price"][sub] == c["price"])
                & (rows["size"][sub] == c["size"])
            )
            t_s, i_s = ts[sub], ids[sub]
            before = (t_s < c["ts"]) | ((t_s == c["ts"]) & (i_s < c["id"]))
            hit = sub[alive[sub] & ~taken[sub] & before & same]
            best_open = int(hit[-1]) if len(hit) else -1
            best_old = -1
            if retained is not None and r_alive is not None and r_by_cid is not None:
                r = retained
                rs = r_by_cid.rows(c["cid"])
                r_ts, r_id = r["ts"][rs], r["id"][rs]
                ok = (
                    r_alive[rs]
                    & (r["exch"][rs] == c["exch"])
                    & (r["price"][rs] == c["price"])
                    & (r["size"][rs] == c["size"])
                    & (r["_pts"][rs] >= c["ts"] - self.lookback_ns)
                    & ((r_ts < c["ts"]) | ((r_ts == c["ts"]) & (r_id < c["id"])))
                )
                cand = rs[ok]
                if len(cand):
                    best_old = int(cand[np.lexsort((r["id"][cand], r["ts"][cand]))[-1]])
            use_open = best_open >= 0 and (
                best_old < 0
                or (ts[best_open], ids[best_open])
                > (retained["ts"][best_old], retained["id"][best_old])  # type: ignore[index]
            )
            if use_open:
                is_cplx = bool(rows["cplx"][best_open])
                same = alive[sub] & (rows["cplx"][sub] == is_cplx)
                if is_cplx:
                    same &= rows["exch"][sub] == rows["exch"][best_open]
                width = self.complex_ns if is_cplx else self.window_ns
                same_key = sub[same]
                k_ts = ts[same_key]
                srt = np.argsort(k_ts, kind="stable")
                anchors = anchored(np.zeros(len(same_key), dtype=np.int64), k_ts[srt], width)
                pos = int(np.flatnonzero(same_key[srt] == best_open)[0])
                anchor_ts = k_ts[srt][np.flatnonzero(anchors[: pos + 1])[-1]]
                close = anchor_ts + width
                if close >= c["ts"]:
                    alive[best_open] = False
                elif close >= c["ts"] - self.lookback_ns:
                    taken[best_open] = True
                    post.append((c, int(ids[best_open])))
                else:  # its packet was decided longer ago than the lookback
                    self.unmatched_cancels += 1
            elif best_old >= 0 and retained is not None and r_alive is not None:
                r_alive[best_old] = False
                post.append((c, int(retained["id"][best_old])))
            else:
                self.unmatched_cancels += 1
        return (rows if alive.all() else _take(rows, np.flatnonzero(alive))), post

    def _corrections(
        self, post: list[tuple[dict[str, Any], int]], members: Cols | None
    ) -> tuple[pl.DataFrame | None, Cols | None]:
        """Corrected packets (aggregates; context comes later) and this batch's members
        without the cancelled prints."""
        if not post:
            return None, members
        versions: dict[int, int] = {}  # only corrected packets (the rest are at 0)
        for ch in self._chunks:
            fixed = ch.packets.filter(pl.col("_version") > 0)
            for k, v in zip(fixed["_pkey"].to_list(), fixed["_version"].to_list(), strict=True):
                versions[k] = max(versions.get(k, 0), v)
        # which chunk holds each target (ids are unique; a chunk's members only shrink)
        where: dict[int, int] = {}
        targets = np.array([t for _, t in post], dtype=np.int64)
        for j, ch in enumerate(self._chunks):
            found = targets[np.isin(targets, ch.members["id"])]
            where.update(dict.fromkeys(found.tolist(), j))
        # holders: 0 = this batch's members, j + 1 = chunk j; rows are marked dead as
        # cancels apply (in order) and cut out once at the end
        holders: dict[int, Cols] = {}
        dead: dict[int, np.ndarray] = {}
        live_rows: list[np.ndarray] = []  # per live correction: its remaining member rows
        live_from: list[int] = []
        live: list[tuple[int, int, int, int, int]] = []  # pkey, version, ts, target, cancel
        gone: list[tuple[int, int, int, int, int, int]] = []  # + cid
        for c, target in post:
            h = -1
            if members is not None and (members["id"] == target).any():
                h = 0
                holders[0] = members
            elif target in where:
                h = where[target] + 1
                holders[h] = self._chunks[h - 1].members
            if h < 0:
                self.unmatched_cancels += 1
                continue
            holder = holders[h]
            mask = dead.setdefault(h, np.zeros(_len(holder), dtype=bool))
            at = np.flatnonzero(holder["id"] == target)
            pkey = int(holder["_pkey"][at[0]])
            version = versions.get(pkey, 0) + 1
            versions[pkey] = version
            mask[at] = True
            # one correction per cancel: it names its print and itself
            row = (pkey, version, int(c["ts"]), target, int(c["id"]))
            mine = np.flatnonzero((holder["_pkey"] == pkey) & ~mask)
            if len(mine):
                live.append(row)
                live_rows.append(mine)
                live_from.append(h)
            else:
                gone.append((*row, int(c["cid"])))
        for h, mask in dead.items():
            kept = _take(holders[h], np.flatnonzero(~mask))
            if h == 0:
                members = kept
            else:
                self._chunks[h - 1].members = kept
        out: list[pl.DataFrame] = []
        if live:
            sub = _cat(
                [
                    _take({k: holders[h][k] for k in WORK}, rows)
                    for h, rows in zip(live_from, live_rows, strict=True)
                ]
            )
            lens = np.array([len(r) for r in live_rows], dtype=np.int64)
            starts = np.cumsum(lens) - lens
            agg = self._aggregate(sub, starts)
            # evidence: the remaining members, then the cancel
            cancel_ids = np.array([r[4] for r in live], dtype=np.int64)
            off = np.append(starts, len(sub["id"]))
            ev_off = off + np.arange(len(off))
            ev_val = np.insert(sub["id"], off[1:], cancel_ids)
            agg["_ev_off"], agg["_ev_val"] = ev_off, ev_val
            arr = np.array(live, dtype=np.int64)
            out.append(
                self._agg_frame(agg).with_columns(
                    pl.lit("correction").alias("status"),
                    pl.Series("_pkey", arr[:, 0]),
                    pl.Series("_version", arr[:, 1]),
                    pl.Series("ts", arr[:, 2]),
                    _singletons("retracted", arr[:, 3]),
                    _singletons("_cancel_ids", arr[:, 4]),
                )
            )
        if gone:
            arr = np.array(gone, dtype=np.int64)
            out.append(
                pl.DataFrame({"cid": arr[:, 5], "total_size": np.zeros(len(arr), dtype=np.int64)})
                .with_columns(pl.lit("retracted").alias("status"))
                .with_columns(
                    pl.Series("_pkey", arr[:, 0]),
                    pl.Series("_version", arr[:, 1]),
                    pl.Series("ts", arr[:, 2]),
                    _singletons("retracted", arr[:, 3]),
                    _singletons("_cancel_ids", arr[:, 4]),
                )
            )
        return (pl.concat(out, how="diagonal_relaxed") if out else None), members

    def _agg_frame(self, agg: Cols) -> pl.DataFrame:
        """Aggregates as a polars frame (evidence lists built from the offsets)."""
        evidence = pa.LargeListArray.from_arrays(pa.array(agg["_ev_off"]), pa.array(agg["_ev_val"]))
        cols = {k: v for k, v in agg.items() if k not in ("_ev_off", "_ev_val")}
        return pl.DataFrame(_named(cols)).with_columns(pl.Series("evidence", evidence))

    # -- context ----------------------------------------------------------------
    def _context(self, agg: Cols, corrections: pl.DataFrame | None) -> pl.DataFrame:
        """Contract columns, spot, DTE, OI, day volume, calendar, repeat, baselines, kinds,
        in emission order (ts, first print id)."""
        order = np.lexsort((agg["_pkey"], agg["ts"]))
        evidence = _reordered_lists(agg["_ev_off"], agg["_ev_val"], order)
        p = {k: v.take(order) for k, v in agg.items() if k not in ("_ev_off", "_ev_val")}
        n = len(order)
        ct = self._contracts
        cid = p["cid"]
        p["symbol"], p["root"], p["right"] = ct.symbol[cid], ct.root[cid], ct.right[cid]
        p["strike"], expiry = ct.strike[cid], ct.expiry[cid]
        date = ny_days(p["first_ts"])
        p["dte"] = expiry - date
        p["spot"] = self.spot.lookup(p["root"], p["first_ts"], ct.root_code[cid])
        with np.errstate(invalid="ignore", divide="ignore"):
            p["moneyness"] = (p["strike"] - p["spot"]) / p["spot"]
        p["open_interest"] = self._oi(p["symbol"], date)
        p["day_volume"] = self._advance_day({"cid": cid, "date": date, **p}, corrections)
        dte_event, before = self._calendar(p["root"], p["ts"], date, expiry)
        values = np.column_stack(
            [p["premium"], p["total_size"].astype(np.float64), p["spread_pct"]]
        )
        scopes = (("contract", cid), ("root", ct.root_code[cid]))
        stats = {
            scope: (np.full((n, 3), np.nan), np.full((n, 3), np.nan), np.zeros((n, 3), np.int64))
            for scope, _ in scopes
        }
        self._repeats_begin(p)
        # packets decided at or before a cancel see the baselines and repeat windows as
        # they were; those after it, with the cancelled print's contribution undone
        plan = self._rewind_plan(corrections)
        cuts = np.searchsorted(p["ts"], np.array([r[0] for r in plan], dtype=np.int64), "right")
        lo = 0
        for cut, step in zip([*cuts.tolist(), n], [*plan, None], strict=True):
            if cut > lo:
                for scope, codes in scopes:
                    got = self.baselines.score(
                        scope, codes[lo:cut], p["ts"][lo:cut], values[lo:cut], p["_pkey"][lo:cut]
                    )
                    for whole, part in zip(stats[scope], got, strict=True):
                        whole[lo:cut] = part
                self._repeats(p, lo, cut)
                lo = cut
            if step is not None:
                self._rewind(step)
        del p["_repeat_qual"]
        for scope, _ in scopes:
            mean, std, cnt = stats[scope]
            z = z_scores(values, mean, std)
            for j, metric in enumerate(METRICS):
                p[f"_b_{scope}_{metric}_mean"] = mean[:, j]
                p[f"_b_{scope}_{metric}_std"] = std[:, j]
                p[f"_b_{scope}_{metric}_n"] = cnt[:, j]
                p[z_col(scope, metric)] = z[:, j]
        kinds = label_kinds(
            p, self.cfg, direction_codes(ct.call[cid], ct.put[cid], p["_side_code"])
        )
        # string columns as gathers from small string series by code (converting numpy
        # object arrays cost ~0.2 ms per column per batch), the per-scope statistics
        # as contiguous columns (strided views of the (rows, 3) arrays are copied)
        names = ct.names(cid)
        for k in ("symbol", "root", "right"):
            p[k] = names.get_column(k)
        p["_first_exch"] = pl.Series(_venue_table(self._venues), dtype=pl.String).gather(
            p["_first_exch"]
        )
        for k, v in p.items():
            if isinstance(v, np.ndarray) and not v.flags.c_contiguous:
                p[k] = np.ascontiguousarray(v)
        frame = pl.DataFrame(
            {
                **_named({k: v for k, v in p.items() if k != "side"}),
                "kind": kinds["kind_series"],
                "direction": kinds["direction_series"],
                "_date": date,
            },
            strict=False,
        )
        return frame.with_columns(
            pl.Series("evidence", evidence),
            kinds["tags"],
            kinds["trace"],
            pl.Series("expiry", expiry, dtype=pl.Int64).cast(pl.Int32).cast(pl.Date),
            pl.col("_date").cast(pl.Int32).cast(pl.Date),
            pl.Series("open_interest", p["open_interest"]).fill_nan(None).cast(pl.Int64),
            pl.Series("days_to_event", dte_event).fill_nan(None).cast(pl.Int64),
            pl.Series("event_before_expiry", before).fill_nan(None).cast(pl.Boolean),
            pl.col(list(_NULLABLE_FLOATS)).fill_nan(None),
            pl.col("_b_contract_premium_n").alias("baseline_n"),
            pl.col("_b_root_premium_n").alias("root_baseline_n"),
            pl.lit("new").alias("status"),
            pl.lit(None, pl.Int64).alias("corrects"),
            pl.lit(0, pl.Int64).alias("_version"),
            pl.Series(
                "retracted",
                pa.LargeListArray.from_arrays(
                    pa.array(np.zeros(n + 1, dtype=np.int64)), pa.array([], type=pa.int64())
                ),
            ),
        )

    def _oi(self, symbols: np.ndarray, date: np.ndarray) -> np.ndarray:
        if self.open_interest is None or self.open_interest.height == 0 or len(symbols) == 0:
            return np.full(len(symbols), np.nan)
        left = (
            pl.DataFrame(
                {"symbol": pl.Series(symbols, dtype=pl.String), "_d": date.astype(np.int32)}
            )
            .with_columns(pl.col("_d").cast(pl.Date))
            .with_row_index("_i")
        )
        out = (
            left.sort("_d")
            .join_asof(
                self.open_interest,
                left_on="_d",
                right_on="as_of",
                by="symbol",
                strategy="backward",
                check_sortedness=False,
            )
            .sort("_i")
        )
        return out.get_column("open_interest").cast(pl.Float64).fill_null(float("nan")).to_numpy()

    def _calendar(
        self, roots: np.ndarray, ts: np.ndarray, date: np.ndarray, expiry: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(roots)
        if self.calendar.events.height == 0 or n == 0:
            return np.full(n, np.nan), np.full(n, np.nan)
        frame = pl.DataFrame(
            {
                "root": pl.Series(roots, dtype=pl.String),
                "ts": ts,
                "_date": pl.Series(date.astype(np.int32)).cast(pl.Date),
                "expiry": pl.Series(expiry.astype(np.int32)).cast(pl.Date),
            }
        )
        f = self.calendar.features(frame)
        d = f["days_to_event"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        b = f["event_before_expiry"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        return d, b

    def _advance_day(self, p: Cols | None, corrections: pl.DataFrame | None) -> np.ndarray:
        """day_volume of each packet in ``p``; a cancel after a packet reduces later ones."""
        parts: list[Cols] = []
        n = 0 if p is None else len(p["cid"])
        if p is not None and n:
            parts.append(
                {
                    "cid": p["cid"],
                    "date": p["date"],
                    "ts": p["ts"],
                    "pkey": p["_pkey"],
                    "ver": np.zeros(n, dtype=np.int64),
                    "delta": p["total_size"],
                    "row": np.arange(n),
                }
            )
        if corrections is not None and corrections.height:
            extra = self._removed_sizes(corrections, p)
            if extra is not None:
                parts.append(extra)
        if not parts:
            return np.zeros(0, dtype=np.int64)
        e = {k: np.concatenate([x[k] for x in parts]) for k in parts[0]}
        top = int(e["cid"].max()) + 1
        if top > len(self._day_date):
            grow = top - len(self._day_date)
            self._day_date = np.concatenate([self._day_date, np.zeros(grow, dtype=np.int64)])
            self._day_cum = np.concatenate([self._day_cum, np.zeros(grow, dtype=np.int64)])
        ts, pk, ver = e["ts"], e["pkey"], e["ver"]
        # in (ts, packet, version) order; the packets alone usually are already
        in_order = (len(parts) == 1) and bool(
            np.all((ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (pk[1:] > pk[:-1])))
        )
        if not in_order:
            order = np.lexsort((ver, pk, ts))
            e = {k: v.take(order) for k, v in e.items()}
        grp = e["cid"] * 1_000_000 + e["date"]
        date = e["date"]
        if len(date) and (date == date[0]).all():  # one day: by contract, radix-sorted
            g_order = stable_argsort(e["cid"])
        else:
            g_order = np.argsort(grp, kind="stable")
        gs = grp[g_order]
        start = np.ones(len(gs), dtype=bool)
        start[1:] = gs[1:] != gs[:-1]
        delta = e["delta"][g_order]
        cum = np.cumsum(delta)
        seg_base = np.maximum.accumulate(np.where(start, np.arange(len(gs)), 0))
        before_seg = np.where(seg_base > 0, cum[seg_base - 1], 0)
        within = cum - before_seg
        cids, dates = e["cid"][g_order], e["date"][g_order]
        carried = np.where(self._day_date[cids] == dates, self._day_cum[cids], 0)
        value = carried + within
        end = np.ones(len(gs), dtype=bool)
        end[:-1] = start[1:]
        # groups are ordered by (cid, date): the last group of a cid is its newest date
        self._day_date[cids[end]] = dates[end]
        self._day_cum[cids[end]] = value[end]
        out = np.zeros(n, dtype=np.int64)
        rows = e["row"][g_order]
        mine = rows >= 0
        out[rows[mine]] = value[mine]
        return out

    def _removed_sizes(self, corrections: pl.DataFrame, p: Cols | None) -> Cols | None:
        """(cid, date, ts, -size removed) per correction, for the day volume."""
        known: dict[tuple[int, int], tuple[int, int, int]] = {}
        keys = corrections.get_column("_pkey").implode()
        for ch in self._chunks:
            for r in (
                ch.packets.filter(pl.col("_pkey").is_in(keys))
                .select("_pkey", "_version", "cid", "_date", "total_size")
                .iter_rows()
            ):
                known[(r[0], r[1])] = (r[2], int(r[3].toordinal()) - 719_163, r[4])
        if p is not None:
            for k, c, d, t in zip(
                p["_pkey"].tolist(),
                p["cid"].tolist(),
                p["date"].tolist(),
                p["total_size"].tolist(),
                strict=True,
            ):
                known[(k, 0)] = (c, d, t)
        rows: list[tuple[int, ...]] = []
        for r in corrections.select("_pkey", "_version", "ts", "total_size", "status").iter_rows():
            prev = known.get((r[0], r[1] - 1))
            if prev is None:
                continue
            new_total = int(r[3]) if r[4] == "correction" else 0
            rows.append((prev[0], prev[1], r[2], r[0], r[1], new_total - prev[2]))
            known[(r[0], r[1])] = (prev[0], prev[1], new_total)
        if not rows:
            return None
        a = np.array(rows, dtype=np.int64)
        return {
            "cid": a[:, 0],
            "date": a[:, 1],
            "ts": a[:, 2],
            "pkey": a[:, 3],
            "ver": a[:, 4],
            "delta": a[:, 5],
            "row": np.full(len(a), -1, dtype=np.int64),
        }

    def _qualifies(self, p: Cols) -> np.ndarray:
        """Which packets are repeat hits (single-leg, premium, one clip, took liquidity).
        ``p`` names the side by ``_side_code`` (the operator's own aggregates) or by
        ``side`` strings (a corrections frame)."""
        code = p.get("_side_code")
        if code is not None:
            buy, sell = code == SIDE_BUY, code == SIDE_SELL
        else:
            buy, sell = p["side"] == "buy", p["side"] == "sell"
        return (
            ~p["complex"].astype(bool)
            & (p["premium"] >= self.cfg.repeat_min_premium)
            & (clip_premium(p) >= self.cfg.repeat_min_clip_share * p["premium"])
            & ((buy & (p["ask_ratio"] >= 0.5)) | (sell & (p["bid_ratio"] >= 0.5)))
        )

    def _repeats_begin(self, p: Cols) -> None:
        """Zeroed repeat columns; :meth:`_repeats` fills them range by range."""
        self._rep_snap = {}
        n = len(p["cid"])
        p["repeat_hits"] = np.zeros(n, dtype=np.int64)
        p["_repeat_premium"] = np.zeros(n)
        p["_repeat_share"] = np.zeros(n)
        p["_repeat_consistent"] = np.zeros(n, dtype=np.int64)
        p["_repeat_surprise"] = np.zeros(n)
        p["_repeat_qual"] = self._qualifies(p)

    def _repeats(self, p: Cols, lo: int, hi: int) -> None:
        """repeat_hits, _repeat_premium, _repeat_share, _repeat_consistent and
        _repeat_surprise of rows ``lo:hi``, in place (see the module doc).  The hits are
        read as Python lists and the results written back as whole columns (numpy
        scalar reads and writes were a third of this loop)."""
        rows = lo + np.flatnonzero(p["_repeat_qual"][lo:hi])
        if not len(rows):
            return
        f = self.cfg
        band = f.repeat_size_band
        min_hits = f.repeat_min_hits
        window = self.repeat_ns
        repeat, cents_of, new_hits, snap = (
            self._repeat,
            self._repeat_cents,
            self._new_hits,
            self._rep_snap,
        )
        out_hits: list[int] = []
        out_prem: list[float] = []
        out_share: list[float] = []
        out_cons: list[int] = []
        out_surp: list[float] = []
        for side, cid, t, pkey, premium in zip(
            p["_side_code"][rows].tolist(),
            p["cid"][rows].tolist(),
            p["first_ts"][rows].tolist(),
            p["_pkey"][rows].tolist(),
            p["premium"][rows].tolist(),
            strict=True,
        ):
            sign = 1 if side == SIDE_BUY else -1  # a hit is bought or sold
            key = (cid, sign)
            if self._rep_t0 is None:
                self._rep_t0 = t
            q = repeat.setdefault(key, deque())
            self._drop_before(key, t - window)
            # whole cents: an exact running sum, the same whatever the batching
            entry = [t, pkey, round(premium * 100), None]
            q.append(entry)
            cents_of[key] = cents_of.get(key, 0) + entry[2]
            other = (cid, -sign)
            opp = len(self._drop_before(other, t - window)) if other in repeat else 0
            new_hits[(pkey, 0)] = entry
            n_q = len(q)
            out_hits.append(n_q)
            out_prem.append(cents_of[key] / 100)
            out_share.append(n_q / (n_q + opp))
            # integer cents, exact comparisons: x within [m / band, m * band]
            cents = sorted(map(_CENTS, q))
            med2 = cents[n_q // 2] + cents[(n_q - 1) // 2]  # twice the median
            consistent = 0
            if 2 * entry[2] * band >= med2 and 2 * entry[2] <= med2 * band:
                # both conditions are monotone in c over the sorted cents: the hits
                # that meet both are one run, found by two binary searches
                first = bisect_left(cents, True, key=lambda c: 2 * c * band >= med2)
                past = bisect_left(cents, True, key=lambda c: not 2 * c <= med2 * band)
                consistent = max(0, past - first)
            out_cons.append(consistent)
            surprise = 0.0
            if consistent >= min_hits:
                surprise = poisson_surprise(consistent, self._expected_hits(key, t, opp))
            out_surp.append(surprise)
            if n_q >= min_hits:  # evidence: the latest hits (ids at commit)
                snap[pkey] = list(islice(reversed(q), REPEAT_EVIDENCE))
        p["repeat_hits"][rows] = out_hits
        p["_repeat_premium"][rows] = out_prem
        p["_repeat_share"][rows] = out_share
        p["_repeat_consistent"][rows] = out_cons
        p["_repeat_surprise"][rows] = out_surp

    def _rewind_plan(self, corrections: pl.DataFrame | None) -> list[tuple[Any, ...]]:
        """One step per correction, in (ts, packet, version) order: (ts, pkey, cid,
        corrected values or None when retracted, the corrected packet's repeat-hit
        entry or None, version)."""
        if corrections is None or corrections.height == 0:
            return []
        c = corrections.sort("ts", "_pkey", "_version")
        live = (c.get_column("status") == "correction").to_numpy()
        n = c.height

        def arr(name: str, fill: Any) -> np.ndarray:
            if name not in c.columns:
                return np.full(n, fill)
            return c.get_column(name).fill_null(fill).to_numpy()

        rows: Cols = {
            "premium": arr("premium", 0.0),
            "side": arr("side", "unknown"),
            "ask_ratio": arr("ask_ratio", 0.0),
            "bid_ratio": arr("bid_ratio", 0.0),
            "complex": arr("complex", False),
            "max_print_premium": arr("max_print_premium", 0.0),
            "_iso_premium": arr("_iso_premium", 0.0),
        }
        qual = self._qualifies(rows) & live
        size = arr("total_size", 0).astype(np.float64)
        spread = arr("spread_pct", np.nan).astype(np.float64)
        first = arr("first_ts", 0)
        plan = []
        for i, (ts, pkey, version, cid) in enumerate(
            c.select("ts", "_pkey", "_version", "cid").iter_rows()
        ):
            values = np.array([rows["premium"][i], size[i], spread[i]]) if live[i] else None
            hit = None
            if qual[i]:
                sign = 1 if rows["side"][i] == "buy" else -1
                hit = (int(first[i]), sign, round(float(rows["premium"][i]) * 100))
            plan.append((int(ts), int(pkey), int(cid), values, hit, int(version)))
        return plan

    def _rewind(self, step: tuple[Any, ...]) -> None:
        """Undo a corrected/retracted packet's contribution to the rolling baselines
        and the repeat windows (see the module doc, "Cancels")."""
        _, pkey, cid, values, hit, version = step
        self.baselines.rewind("contract", cid, pkey, values)
        self.baselines.rewind("root", int(self._contracts.root_code[cid]), pkey, values)
        for sign in (1, -1):
            q = self._repeat.get((cid, sign))
            if not q:
                continue
            for j, h in enumerate(q):
                if h[1] == pkey:
                    del q[j]
                    self._repeat_cents[(cid, sign)] -= h[2]
                    break
        if hit is not None:
            first_ts, sign, cents = hit
            key = (cid, sign)
            q = self._repeat.setdefault(key, deque())
            entry = [first_ts, pkey, cents, None]
            at = len(q)
            while at > 0 and q[at - 1][0] > first_ts:
                at -= 1
            q.insert(at, entry)
            self._repeat_cents[key] = self._repeat_cents.get(key, 0) + cents
            self._new_hits[(pkey, version)] = entry  # the correction's id, set at commit

    def _expected_hits(self, key: tuple[int, int], t: int, opp: int) -> float:
        """mu of the module doc: this side's chance hits in the window ending at ``t``,
        from the key's background buckets and the other side's ``opp`` window hits."""
        h = self._rep_hist.get(key)
        before = 0
        if h:
            self._prune_history(h, t - self.background_ns)
            before = sum(n for _, n in h)
        t0 = t if self._rep_t0 is None else self._rep_t0
        seen = min(max(t - self.repeat_ns - t0, 0), self.background_ns - self.repeat_ns)
        return (before + opp) * self.repeat_ns / (seen + self.repeat_ns)

    @staticmethod
    def _prune_history(h: deque[list[int]], horizon: int) -> None:
        """Drop buckets wholly at or before ``horizon`` (a bucket holds its first ts)."""
        last = horizon // REPEAT_BUCKET_NS
        while h and h[0][0] <= last:
            h.popleft()

    def _to_history(self, key: tuple[int, int], t: int) -> None:
        """A hit of ``key`` with first print ``t`` leaves the window: background."""
        b = t // REPEAT_BUCKET_NS
        h = self._rep_hist.setdefault(key, deque())
        if h and h[-1][0] == b:
            h[-1][1] += 1
        else:  # hits leave in ts order, except a rewound one: keep buckets sorted
            at = len(h)
            while at > 0 and h[at - 1][0] > b:
                at -= 1
            if at > 0 and h[at - 1][0] == b:
                h[at - 1][1] += 1
            else:
                h.insert(at, [b, 1])

    def _drop_before(self, key: tuple[int, int], horizon: int) -> deque[list[Any]]:
        """The key's hits after ``horizon`` (older ones leave its window and its sum,
        into its background)."""
        q = self._repeat[key]
        if not q or q[0][0] > horizon:  # nothing leaves (the usual case)
            return q
        total = self._repeat_cents.get(key, 0)
        while q and q[0][0] <= horizon:
            h = q.popleft()
            total -= h[2]
            self._to_history(key, h[0])
        self._repeat_cents[key] = total
        return q

    def _expire_repeats(self, watermark: int) -> None:
        horizon = watermark - self.window_ns - self.repeat_ns
        # a window emptied by the other side's hit or by a cancel's rewind goes too
        for key in [k for k, q in self._repeat.items() if not q or q[-1][0] <= horizon]:
            for h in self._repeat.pop(key):
                self._to_history(key, h[0])
            self._repeat_cents.pop(key, None)
        old = watermark - self.window_ns - self.background_ns
        for key in list(self._rep_hist):
            h = self._rep_hist[key]
            self._prune_history(h, old)
            if not h:
                del self._rep_hist[key]

    def repeat_evidence(self) -> RepeatEvidence:
        """For this batch's repeat hits (by packet key): the ids of the latest
        ``REPEAT_EVIDENCE`` hits in each one's window, newest first, itself included.

        Read after :meth:`commit` (which sets the hits' ids), on this thread or on
        another after this operator has gone on to later batches (compute/lanes.py):
        each batch gets a new ``_rep_snap`` dict (:meth:`_repeats_begin`) and this one
        is not written again, and a rewind makes new entries, so a later read gives
        what an immediate one would (copying it instead cost a sixth of the packets
        lane's time)."""
        snap = self._rep_snap
        return lambda pkeys: [[h[3] for h in snap.get(k, ()) if h[3] is not None] for k in pkeys]

    def _recontext(self, corrections: pl.DataFrame, originals: pl.DataFrame | None) -> pl.DataFrame:
        """Corrections take the replaced version's context; z from its baseline stats."""
        ctx_cols = [
            "symbol",
            "root",
            "expiry",
            "right",
            "strike",
            "_date",
            "dte",
            "spot",
            "moneyness",
            "open_interest",
            "days_to_event",
            "event_before_expiry",
            "repeat_hits",
            "_repeat_premium",
            "_repeat_share",
            "_repeat_consistent",
            "_repeat_surprise",
            *STAT_COLS,
        ]
        sources = [c.packets for c in self._chunks]
        if originals is not None:
            sources.append(originals)
        keys = corrections.get_column("_pkey").implode()
        base = pl.concat(
            [
                s.filter((pl.col("_version") == 0) & pl.col("_pkey").is_in(keys)).select(
                    _CTX_SOURCE
                )
                for s in sources
            ],
            how="diagonal_relaxed",
        ).unique(subset="_pkey", keep="first")
        ct = self._contracts
        cid = base.get_column("cid").to_numpy()
        expiry = ct.expiry[cid]
        base = base.with_columns(
            pl.Series("symbol", ct.symbol[cid], dtype=pl.String),
            pl.Series("root", ct.root[cid], dtype=pl.String),
            pl.Series("expiry", expiry, dtype=pl.Int64).cast(pl.Int32).cast(pl.Date),
            pl.Series("right", ct.right[cid], dtype=pl.String),
            pl.Series("strike", ct.strike[cid], dtype=pl.Float64),
            pl.Series(
                "dte",
                expiry - base.get_column("_date").cast(pl.Int32).to_numpy().astype(np.int64),
                dtype=pl.Int64,
            ),
        )
        ctx = base.select(
            "_pkey",
            *ctx_cols,
            (pl.col("day_volume") - pl.col("total_size")).alias("_dv_before"),
            pl.col("first_ts").alias("_orig_first_ts"),
            pl.col("last_ts").alias("_orig_last_ts"),
        )
        df = corrections.join(ctx, on="_pkey", how="left", maintain_order="left")
        parts = []
        live = df.filter(pl.col("status") == "correction")
        if live.height:
            live = live.with_columns(
                (pl.col("_dv_before") + pl.col("total_size")).alias("day_volume")
            )
            zs = []
            for scope in SCOPES:
                for metric, col in zip(
                    METRICS, ("premium", "total_size", "spread_pct"), strict=True
                ):
                    m, s = f"_b_{scope}_{metric}_mean", f"_b_{scope}_{metric}_std"
                    zs.append(
                        pl.when(pl.col(s) > 0)
                        .then((pl.col(col) - pl.col(m)) / pl.col(s))
                        .alias(z_col(scope, metric))
                    )
            live = live.with_columns(zs).with_columns(
                pl.col("_b_contract_premium_n").alias("baseline_n"),
                pl.col("_b_root_premium_n").alias("root_baseline_n"),
            )
            arrays = {
                k: live.get_column(k).to_numpy()
                for k in (
                    "count",
                    "iso_count",
                    "iso_size",
                    "iso_exchanges",
                    "_iso_taking",
                    "complex",
                    "exchanges",
                    "premium",
                    "total_size",
                    "max_size",
                    "max_print_premium",
                    "_iso_premium",
                    "repeat_hits",
                    "_repeat_share",
                    "_repeat_consistent",
                    "_repeat_surprise",
                    "right",
                    "side",
                )
            }
            arrays["open_interest"] = (
                live["open_interest"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
            )
            kinds = label_kinds(arrays, self.cfg)
            venue_names = np.array(_venue_table(self._venues), dtype=object)
            live = live.with_columns(
                pl.Series("kind", kinds["kind"], dtype=pl.String),
                pl.Series("direction", kinds["direction"], dtype=pl.String),
                kinds["tags"],
                kinds["trace"],
                pl.Series(
                    "_first_exch", venue_names[live["_first_exch"].to_numpy()], dtype=pl.String
                ),
            )
            parts.append(live)
        dead = df.filter(pl.col("status") != "correction")
        if dead.height:
            parts.append(self._retracted_rows(dead))
        return pl.concat(parts, how="diagonal_relaxed").drop(
            "_dv_before", "_orig_first_ts", "_orig_last_ts", "_cancel_ids", strict=False
        )

    def _retracted_rows(self, dead: pl.DataFrame) -> pl.DataFrame:
        """A packet whose every member was cancelled: no content; its trace says so."""
        zero_i = (
            "count",
            "total_size",
            "max_size",
            "exchanges",
            "iso_count",
            "iso_size",
            "iso_exchanges",
            "_iso_taking",
            "n_aa",
            "n_a",
            "n_mid",
            "n_b",
            "n_bb",
            "n_unplaced",
            "buy_size",
            "sell_size",
            "span_ns",
        )
        zero_f = (
            "premium",
            "max_print_premium",
            "nbbo_coverage",
            "ask_ratio",
            "mid_ratio",
            "bid_ratio",
            "aggressor_ratio",
        )
        nan_f = ("vwap", "first_price", "last_price", "min_price", "max_price")
        null_f = (
            "buy_ratio",
            "start_edge",
            "end_edge",
            "spread_pct",
            *(z_col(s, m) for s in SCOPES for m in METRICS),
        )
        out = dead.with_columns(
            *[pl.lit(0, pl.Int64).alias(c) for c in zero_i],
            *[pl.lit(0.0).alias(c) for c in zero_f],
            *[pl.lit(float("nan")).alias(c) for c in nan_f],
            *[pl.lit(None, pl.Float64).alias(c) for c in null_f],
            pl.lit("unknown").alias("side"),
            pl.lit("NO_NBBO").alias("start_placement"),
            pl.lit("NO_NBBO").alias("end_placement"),
            pl.col("_orig_first_ts").alias("first_ts"),
            pl.col("_orig_last_ts").alias("last_ts"),
            pl.lit(False).alias("complex"),
            pl.col("_dv_before").alias("day_volume"),
            pl.col("_cancel_ids").alias("evidence"),
            pl.lit("plain").alias("kind"),
            pl.lit([], pl.List(pl.String)).alias("tags"),
            pl.lit("neutral").alias("direction"),
            pl.lit(0, pl.Int64).alias("baseline_n"),
            pl.lit(0, pl.Int64).alias("root_baseline_n"),
            pl.lit("").alias("_first_exch"),
            pl.lit(float("nan")).alias("_first_bid"),
            pl.lit(float("nan")).alias("_first_ask"),
        )
        trace = trace_from_arrays(
            out.height,
            [ArrayItem("cancel.members_left", 0.0, 1.0, False)],
        )
        return out.with_columns(trace)


def poisson_surprise(k: int, mu: float) -> float:
    """-log10 P(X >= k) for X ~ Poisson(mu), capped at ``SURPRISE_CAP``.

    Summed from the tail when k > mu (no cancellation in 1 - CDF for tiny chances),
    else as 1 - CDF; plain float arithmetic in a fixed order, so the same inputs give
    the same bits."""
    if k <= 0:
        return 0.0
    if mu <= 0.0:
        return SURPRISE_CAP
    if k > mu:
        log_term = -mu + k * math.log(mu) - math.lgamma(k + 1)
        total, term, j = 1.0, 1.0, k
        while term > 1e-17 * total:
            j += 1
            term *= mu / j
            total += term
        log_p = log_term + math.log(total)
        return min(SURPRISE_CAP, -log_p / math.log(10.0))
    term = math.exp(-mu)
    below = term
    for j in range(1, k):
        term *= mu / j
        below += term
    p = 1.0 - below
    return 0.0 if p >= 1.0 else min(SURPRISE_CAP, -math.log10(p)) if p > 0 else SURPRISE_CAP


def _named(cols: dict[str, Any]) -> dict[str, Any]:
    """``cols`` with its coded columns (``_CODED``) replaced by the string columns
    they name, in place of the code (no numpy object arrays on the way to polars)."""
    out: dict[str, Any] = {}
    for k, v in cols.items():
        if k == "side" and "_side_code" in cols:
            continue
        name = _CODED.get(k)
        if name is None:
            out[k] = v
        elif k == "_side_code":
            out[name] = _SIDE_SERIES.gather(v)
        else:
            out[name] = _PLC_SERIES.gather(v)
    return out


def _singletons(name: str, values: np.ndarray) -> pl.Series:
    """A list column with one element per row."""
    off = np.arange(len(values) + 1, dtype=np.int64)
    arr = pa.LargeListArray.from_arrays(pa.array(off), pa.array(values, type=pa.int64()))
    return pl.Series(name, arr).cast(pl.List(pl.Int64))


def _reordered_lists(offsets: np.ndarray, values: np.ndarray, order: np.ndarray) -> pa.Array:
    """List array of rows ``order`` of (offsets, values): a numpy gather (pyarrow's
    ``take`` on a large list array cost ~10 ms per firehose batch)."""
    lens = np.diff(offsets)[order]
    new_off = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(lens, out=new_off[1:])
    within = np.arange(int(new_off[-1]), dtype=np.int64) - np.repeat(new_off[:-1], lens)
    gathered = values.take(np.repeat(offsets[:-1][order], lens) + within)
    return pa.LargeListArray.from_arrays(pa.array(new_off), pa.array(gathered))


def _venue_table(venues: dict[str, int]) -> list[str]:
    table = [""] * (_MAX_VENUES + 1)
    for name, code in sorted(venues.items(), key=lambda kv: kv[1]):
        if not table[code]:
            table[code] = name
    table[_MAX_VENUES] = table[_MAX_VENUES] or "other"
    return table
