"""Packet kinds: what a flow packet looks like, each label with its rule trace.

Stateless and vectorised over finished packets (the stateful inputs, ``repeat_hits``
and ``open_interest``, are computed by the packet operator before this runs).
Every rule is evaluated on every packet and written to the trace, so a person can
see why a packet is a sweep *and* why it is not a block.  ``tags`` lists every kind
whose rules pass; ``kind`` is the first of them in this priority order:

===============  ==============================================================
``complex``       multi-leg / stock-option prints: their meaning is the
                  structure they belong to (compute/structures.py), so no other
                  kind applies to them
``golden_sweep``  a sweep with premium >= ``flow.golden_min_premium`` ($1M) and
                  total size > open interest (only when open interest is known)
``sweep``         the packet's ISO prints: >= ``flow.sweep_min_iso`` of them, on >=
                  ``flow.sweep_min_venues`` venues, carrying >=
                  ``flow.sweep_min_iso_ratio`` of the packet's size, and taking
                  liquidity: >= ``flow.sweep_min_taking_ratio`` of the ISO size
                  at/through one side of the NBBO.  Judged on the ISO subset, so a
                  sweep in a busy contract is still a sweep when unrelated prints
                  share its 500 ms window (a print-count ratio lost most sweeps of
                  the firehose profile that way)
``block``         one large print, not a sweep: the largest print has >=
                  ``flow.block_min_size`` contracts and >= ``flow.block_min_premium``
                  dollars (a sweep with a large piece is a sweep)
``split``         one venue, many pieces: one venue and >= ``flow.split_min_prints``
``repeat``        the contract hit again and again: >= ``flow.repeat_min_hits``
                  aggressive packets on the same side within
                  ``flow.repeat_window_ms``, as many of them of a similar premium
                  (within ``flow.repeat_size_band`` of their median), and that
                  side's hits are >= ``flow.repeat_min_side_share`` of both sides'
                  hits on the contract in the window, and the similar hits are
                  far more than the contract's own background gives by chance:
                  ``_repeat_surprise`` (-log10 of the Poisson chance) >=
                  ``flow.repeat_min_surprise``.  A hit is one order's clip: its
                  largest print, or its ISO prints together, carry >=
                  ``flow.repeat_min_clip_share`` of its premium (counted by the
                  packet operator, see packets.py "Repeat hits")
``plain``         none of the above
===============  ==============================================================

``direction``: buying calls or selling puts is bullish, buying puts or selling calls
bearish; a packet whose side is mixed or unknown is neutral.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa

from islandflow_tui.config import FlowConfig
from islandflow_tui.engine.compute.evidence import row_counts
from islandflow_tui.engine.compute.trace import ArrayItem, trace_from_arrays

KIND_ORDER: Final = ("complex", "golden_sweep", "sweep", "block", "split", "repeat")


_DIRECTIONS: Final = np.array(["neutral", "bullish", "bearish"], dtype=object)
#: a packet's side codes (``Packets``' ``_side_code``: unknown 0, buy, sell, mixed 3)
SIDE_BUY: Final = 1
SIDE_SELL: Final = 2
_DIRECTION_SERIES: Final = pl.Series(_DIRECTIONS.tolist(), dtype=pl.String)
_KIND_SERIES: Final = pl.Series([*KIND_ORDER, "plain"], dtype=pl.String)


def direction_code(right: Any, side: Any) -> np.ndarray:
    """0 neutral, 1 bullish, 2 bearish (index into ``_DIRECTIONS``)."""
    right, side = np.asarray(right), np.asarray(side)
    call, put = right == "C", right == "P"
    buy, sell = side == "buy", side == "sell"
    return np.select([(call & buy) | (put & sell), (put & buy) | (call & sell)], [1, 2], 0)


def direction_codes(call: np.ndarray, put: np.ndarray, side_code: np.ndarray) -> np.ndarray:
    """:func:`direction_code` from ``right == "C"`` / ``right == "P"`` flags and packet
    side codes: the same numbers without comparing object strings."""
    buy, sell = side_code == SIDE_BUY, side_code == SIDE_SELL
    return np.select([(call & buy) | (put & sell), (put & buy) | (call & sell)], [1, 2], 0)


def direction_of(right: np.ndarray, side: np.ndarray) -> np.ndarray:
    """bullish / bearish / neutral from the option right and the packet's side."""
    return _DIRECTIONS[direction_code(right, side)]


def clip_premium(p: dict[str, np.ndarray]) -> np.ndarray:
    """A packet's largest single order, as far as the tape shows it: its largest print
    or its ISO prints together (one sweep), whichever is more."""
    return np.maximum(p["max_print_premium"], p["_iso_premium"])


def label_kinds(
    p: dict[str, np.ndarray], cfg: FlowConfig, direction: np.ndarray | None = None
) -> dict[str, object]:
    """kind, tags, direction and trace for packets given as numpy columns.

    Needs count, iso_count, iso_size, iso_exchanges, _iso_taking (ISO size on the
    dominant taking side), complex, exchanges, premium, total_size, open_interest
    (float, NaN unknown), max_size, max_print_premium, _iso_premium, repeat_hits,
    _repeat_share, _repeat_consistent, _repeat_surprise, and right and side unless
    ``direction`` (codes as :func:`direction_codes` gives them) is passed.
    """
    n = len(p["count"])
    total = p["total_size"].astype(np.float64)
    iso_size = p["iso_size"].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        iso_ratio = np.where(total > 0, iso_size / np.maximum(total, 1), 0.0)
        taking = np.where(iso_size > 0, p["_iso_taking"] / np.maximum(iso_size, 1), 0.0)
    cplx = p["complex"].astype(bool)
    simple = ~cplx
    oi = p["open_interest"]
    exchanges = p["exchanges"]
    venues_ok = p["iso_exchanges"] >= cfg.sweep_min_venues
    iso_n_ok = p["iso_count"] >= cfg.sweep_min_iso
    iso_ok = iso_ratio >= cfg.sweep_min_iso_ratio
    taking_ok = taking >= cfg.sweep_min_taking_ratio
    sweep = simple & venues_ok & iso_n_ok & iso_ok & taking_ok
    golden_prem = p["premium"] >= cfg.golden_min_premium
    golden_oi = ~np.isnan(oi) & (p["total_size"] > np.nan_to_num(oi, nan=np.inf))
    block_size = p["max_size"] >= cfg.block_min_size
    block_prem = p["max_print_premium"] >= cfg.block_min_premium
    split_one = exchanges == 1
    split_n = p["count"] >= cfg.split_min_prints
    hit = p["repeat_hits"] > 0
    repeat_n = p["repeat_hits"] >= cfg.repeat_min_hits
    repeat_same = p["_repeat_consistent"] >= cfg.repeat_min_hits
    repeat_share = p["_repeat_share"] >= cfg.repeat_min_side_share
    repeat_surprise = p["_repeat_surprise"] >= cfg.repeat_min_surprise
    repeat = repeat_n & repeat_same & repeat_share & repeat_surprise
    prem = p["premium"].astype(np.float64)
    clip_prem = clip_premium(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        clip = np.where(prem > 0, clip_prem / np.where(prem > 0, prem, 1.0), 0.0)
    clip_ok = clip_prem >= cfg.repeat_min_clip_share * prem
    passes = np.column_stack(
        [
            cplx,
            sweep & golden_prem & golden_oi,
            sweep,
            simple & ~sweep & block_size & block_prem,
            simple & split_one & split_n,
            simple & repeat,
        ]
    )
    names = np.array([*KIND_ORDER, "plain"], dtype=object)
    # the first passing kind, by a reversed column loop (row-wise any/argmax over six
    # columns cost ~10x more)
    first = np.full(n, len(KIND_ORDER), dtype=np.int64)
    for j in range(len(KIND_ORDER) - 1, -1, -1):
        first[passes[:, j]] = j
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(row_counts(passes), out=offsets[1:])
    tag_idx = np.broadcast_to(np.arange(len(KIND_ORDER), dtype=np.int32), passes.shape)[passes]
    tags = pl.Series(
        "tags",
        pa.LargeListArray.from_arrays(
            pa.array(offsets), pa.array(list(KIND_ORDER)).take(pa.array(tag_idx, type=pa.int32()))
        ),
    )
    items = [
        ArrayItem("complex.multi_leg", cplx.astype(np.float64), 1.0, cplx),
        ArrayItem("sweep.iso_prints", p["iso_count"], cfg.sweep_min_iso, iso_n_ok, simple),
        ArrayItem("sweep.iso_venues", p["iso_exchanges"], cfg.sweep_min_venues, venues_ok, simple),
        ArrayItem("sweep.iso_size_share", iso_ratio, cfg.sweep_min_iso_ratio, iso_ok, simple),
        ArrayItem("sweep.iso_taking_ratio", taking, cfg.sweep_min_taking_ratio, taking_ok, simple),
        ArrayItem("golden.premium", p["premium"], cfg.golden_min_premium, golden_prem, sweep),
        ArrayItem("golden.size_over_oi", p["total_size"], oi, golden_oi, sweep),
        ArrayItem("block.max_size", p["max_size"], cfg.block_min_size, block_size, simple & ~sweep),
        ArrayItem(
            "block.max_print_premium",
            p["max_print_premium"],
            cfg.block_min_premium,
            block_prem,
            simple & ~sweep & block_size,
        ),
        ArrayItem("split.one_venue", exchanges, 1, split_one, simple),
        ArrayItem("split.prints", p["count"], cfg.split_min_prints, split_n, simple & split_one),
        ArrayItem("repeat.clip_share", clip, cfg.repeat_min_clip_share, clip_ok, simple),
        ArrayItem("repeat.hits", p["repeat_hits"], cfg.repeat_min_hits, repeat_n, simple),
        ArrayItem(
            "repeat.side_share",
            p["_repeat_share"],
            cfg.repeat_min_side_share,
            repeat_share,
            simple & hit,
        ),
        ArrayItem(
            "repeat.consistent_hits",
            p["_repeat_consistent"],
            cfg.repeat_min_hits,
            repeat_same,
            simple & hit,
        ),
        ArrayItem(
            "repeat.surprise",
            p["_repeat_surprise"],
            cfg.repeat_min_surprise,
            repeat_surprise,
            simple & hit,
        ),
    ]
    if direction is None:
        direction = direction_code(p["right"], p["side"])
    return {
        "kind": names[first],
        "kind_series": _KIND_SERIES.gather(first),
        "tags": tags,
        "direction": _DIRECTIONS[direction],
        "direction_series": _DIRECTION_SERIES.gather(direction),
        "trace": trace_from_arrays(n, items),
    }
