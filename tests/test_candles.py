"""Candles against an independent polars group_by, including late prints."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.pipeline import Compute
from islandflow_tui.engine.events import Cond
from islandflow_tui.engine.venues import NOT_REGULAR

T0 = 1_764_081_000_000_000_000
MS = ev.NS_PER_MS
INTERVALS = [1000, 3000]
UPDATE = 500


def small_config(max_late_ms: int = 0) -> Config:
    cfg = Config()
    cfg.candles.intervals_ms = list(INTERVALS)
    cfg.candles.update_ms = UPDATE
    cfg.candles.max_late_ms = max_late_ms
    return cfg


print_st = st.tuples(
    st.integers(0, 8_000),  # ms after T0
    st.sampled_from(["AAA", "BBB"]),
    st.integers(9_990, 10_010),  # price in 1e-3 dollars... times 0.001 below
    st.integers(1, 900),
    st.booleans(),  # off-exchange
    st.sampled_from([0, 0, 0, int(Cond.ODD_LOT), int(Cond.LATE), int(Cond.ISO)]),
    st.integers(0, 3),  # sub-penny digit (retail prints when off-exchange)
)


def sequenced(rows: list[dict], start_seq: int) -> pl.DataFrame:
    schema = ev.ingest_polars_schema(ev.EQUITIES_PRINTS)
    df = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return df.with_columns(
        pl.int_range(start_seq, start_seq + df.height, dtype=pl.Int64).alias("seq")
    ).with_columns(ev.id_expr(ev.EQUITIES_PRINTS))


def feed(
    events: list[tuple], cuts: list[int], lags: list[int], cfg: Config
) -> tuple[pl.DataFrame, list[tuple[dict, int]]]:
    """Deliver prints in ts order, split at ``cuts``; each batch's watermark runs
    ahead of its last print by a lag (ms), so later batches can hold late prints.
    Returns the candles and, per print, the watermark before its batch."""
    events = sorted(events, key=lambda e: e[0])
    bounds = sorted({c % (len(events) + 1) for c in cuts} | {0, len(events)})
    compute = Compute(cfg)
    out = []
    seq = 0
    wm = 0
    arrivals: list[tuple[dict, int]] = []
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        rows = []
        for t, sym, px, size, off, flags, sub in events[lo:hi]:
            price = px / 1000 + (sub * 0.0003 if off else 0.0)
            rows.append(
                {
                    "ts": T0 + t * MS,
                    "symbol": sym,
                    "price": round(price, 4),
                    "size": size,
                    "venue": "D" if off else "Q",
                    "off_exchange": off,
                    "conditions": "",
                    "flags": flags,
                }
            )
        frame = sequenced(rows, seq)
        for r, s in zip(rows, frame["seq"].to_list(), strict=True):
            arrivals.append(({**r, "seq": s}, wm))
        seq += frame.height
        last = events[hi - 1][0] if hi > lo else 0
        lag = lags[i % len(lags)] if lags else 1
        wm = max(wm, T0 + (last + lag) * MS)
        got = compute.process({ev.EQUITIES_PRINTS: frame}, wm)
        out.append(got)
    out.append(compute.flush())
    frames = [o[ev.CANDLES] for o in out if ev.CANDLES in o]
    joins = pl.concat([o[ev.EQUITIES_JOINS] for o in out if ev.EQUITIES_JOINS in o])
    candles = pl.concat(frames) if frames else ev.empty_frame(ev.CANDLES)
    retail = dict(zip(joins["print_id"].to_list(), joins["retail"].to_list(), strict=True))
    arrivals = [
        ({**r, "retail": retail[ev.make_id(ev.EQUITIES_PRINTS, r["seq"])]}, w) for r, w in arrivals
    ]
    return candles, arrivals


def expected(arrivals: list[tuple[dict, int]], max_late_ms: int) -> pl.DataFrame:
    """Independent reference: which prints count, then one group_by per interval."""
    step = UPDATE * MS
    rows = []
    for r, wm_before in arrivals:
        if r["flags"] & NOT_REGULAR:
            continue
        frontier = (wm_before // step) * step if wm_before else -1
        for interval in INTERVALS:
            ins = interval * MS
            start = r["ts"] - r["ts"] % ins
            closed = frontier >= 0 and r["ts"] < frontier and start + ins <= frontier
            if closed and frontier - r["ts"] > max_late_ms * MS:
                continue  # dropped
            rows.append({**r, "interval_ms": interval, "start_ts": start})
    if not rows:
        return pl.DataFrame()
    df = pl.DataFrame(rows).with_columns(
        (pl.col("price") * 10_000).round(0).cast(pl.Int64).alias("pu")
    )
    return (
        df.sort("ts", "seq")
        .group_by("symbol", "interval_ms", "start_ts")
        .agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("size").sum().alias("volume"),
            ((pl.col("pu") * pl.col("size")).sum() / pl.col("size").sum() / 10_000).alias("vwap"),
            pl.len().cast(pl.Int64).alias("trades"),
            pl.col("size").filter(pl.col("off_exchange")).sum().alias("off_exchange_volume"),
            pl.col("size").filter(pl.col("retail")).sum().alias("retail_volume"),
        )
        .sort("symbol", "interval_ms", "start_ts")
    )


def latest(candles: pl.DataFrame) -> pl.DataFrame:
    return (
        candles.sort("seq")
        .group_by("symbol", "interval_ms", "start_ts", maintain_order=True)
        .last()
        .sort("symbol", "interval_ms", "start_ts")
    )


def check(candles: pl.DataFrame, arrivals: list[tuple[dict, int]], max_late_ms: int) -> None:
    want = expected(arrivals, max_late_ms)
    got = latest(candles)
    if want.height == 0:
        assert got.height == 0
        return
    assert got["final"].all()  # every candle ends closed
    cols = want.columns
    a, b = got.select(cols), want.select(cols)
    assert a.select(pl.exclude("vwap")).equals(b.select(pl.exclude("vwap")))
    assert np.allclose(a["vwap"].to_numpy(), b["vwap"].to_numpy(), rtol=0, atol=1e-9)
    # every candle has exactly one on-time final row (late updates come after it)
    finals = candles.filter(
        pl.col("final") & (pl.col("ts") == pl.col("start_ts") + pl.col("interval_ms") * MS)
    )
    assert finals.select("symbol", "interval_ms", "start_ts").is_unique().all()
    assert finals.height == got.height or max_late_ms > 0 or finals.height <= got.height


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(print_st, min_size=1, max_size=60),
    cuts=st.lists(st.integers(0, 10_000), max_size=10),
)
# found by hypothesis: three prints at 499 ms cut 1 | 2, the watermark (500 ms) passes
# the 500 ms update between them
@example(
    events=[(0, "AAA", 9990, 1, False, 0, 0)] * 3 + [(499, "AAA", 9990, 1, False, 0, 0)] * 3,
    cuts=[46],
)
def test_candles_match_group_by_when_in_order(events: list[tuple], cuts: list[int]) -> None:
    candles, arrivals = feed(events, cuts, [1], small_config())
    check(candles, arrivals, 0)
    # in-progress rows are the candle as of their ts: the prints below it that had
    # arrived when the watermark reached it (prints of equal ts cut into two batches
    # make the second part late: its watermark before is already past the first's ts)
    regular = [(r, w) for r, w in arrivals if not r["flags"] & NOT_REGULAR]
    for row in candles.filter(~pl.col("final")).iter_rows(named=True):
        ins = row["interval_ms"] * MS
        members = [
            r
            for r, wm_before in regular
            if r["symbol"] == row["symbol"]
            and row["start_ts"] <= r["ts"] < min(row["ts"], row["start_ts"] + ins)
            and wm_before < row["ts"]
        ]
        assert row["volume"] == sum(r["size"] for r in members)
        assert row["trades"] == len(members)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(print_st, min_size=1, max_size=60),
    cuts=st.lists(st.integers(0, 10_000), min_size=1, max_size=10),
    lags=st.lists(st.integers(-3_000, 2_500), min_size=1, max_size=5),
    max_late_ms=st.sampled_from([0, 700, 2_000]),
)
def test_candles_match_group_by_with_late_prints(
    events: list[tuple], cuts: list[int], lags: list[int], max_late_ms: int
) -> None:
    """Watermarks that run ahead of the prints (up to 2.5 s) make later prints late;
    the reference keeps a late print iff its candle is open or it is within max_late."""
    candles, arrivals = feed(events, cuts, lags, small_config(max_late_ms))
    check(candles, arrivals, max_late_ms)


def test_late_print_updates_or_is_dropped_and_counted() -> None:
    cfg = small_config(max_late_ms=1000)
    compute = Compute(cfg)

    def send(rows: list[tuple[int, float]], seq: int, wm_ms: int) -> dict:
        frame = sequenced(
            [
                {
                    "ts": T0 + t * MS,
                    "symbol": "AAA",
                    "price": p,
                    "size": 100,
                    "venue": "Q",
                    "off_exchange": False,
                    "conditions": "",
                    "flags": 0,
                }
                for t, p in rows
            ],
            seq,
        )
        return compute.process({ev.EQUITIES_PRINTS: frame}, T0 + wm_ms * MS)

    send([(100, 10.0), (600, 11.0)], 0, 1500)  # candle [0, 1000) closes at frontier 1500
    out = send([(900, 9.0)], 2, 1600)  # 600 ms late: within 1000 -> update
    assert ev.CANDLES not in out  # waits for the frontier to move
    out = send([], 3, 2000)
    upd = out[ev.CANDLES].filter((pl.col("interval_ms") == 1000) & (pl.col("start_ts") == T0))
    assert upd["final"].to_list() == [True] and upd["low"][0] == 9.0 and upd["close"][0] == 9.0
    assert upd["ts"][0] == T0 + 2000 * MS
    send([(200, 1.0)], 3, 2600)  # 1300 ms behind the frontier (1500): dropped for 1 s
    assert compute.candles.late_dropped[1000] == 1
    assert compute.candles.late_dropped[3000] == 0  # its 3 s candle is still open
    assert compute.extra_stats() == {"candles late": "1 updated, 1 dropped (candles.max_late_ms)"}


def test_late_candle_counts_show_in_the_status_bar() -> None:
    from islandflow_tui.config import Config
    from islandflow_tui.engine.core import Engine
    from islandflow_tui.widgets.status_bar import status_text

    engine = Engine(Config())
    stats = engine.stats()
    assert "candles late" not in status_text(stats, paused=False, width=240).plain
    stats.extra["candles late"] = "1 updated, 1 dropped (candles.max_late_ms)"
    wide = status_text(stats, paused=False, width=240).plain
    assert "candles late: 1 updated, 1 dropped" in wide
    assert "candles late" in status_text(stats, paused=False, width=80).plain
