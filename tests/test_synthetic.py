"""The synthetic market: schema, determinism, rates, microstructure and injected patterns.

Placement and pattern checks use this file's own small classification (a polars
``join_asof`` against the generated NBBO), independent of the engine's NBBO join, so
they test the generator rather than agree with another module by construction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise

import polars as pl
import pytest

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.ingest.synthetic import (
    EQUITY_CONDITIONS,
    EQUITY_VENUES,
    OPTION_CONDITIONS,
    OPTION_VENUES,
    PATTERN_KINDS,
    PATTERN_SCHEMA,
    PROFILES,
    SyntheticMarket,
    event_date,
    start_ns_from_config,
)

START = start_ns_from_config("2025-11-25T14:30:00Z", 0)  # Tuesday 09:30 New York
TICK_NS = 100 * ev.NS_PER_MS
S = ev.NS_PER_S
OSI = re.compile(r"^[A-Z]{1,6} *\d{6}[CP]\d{8}$")


@dataclass
class Run:
    market: SyntheticMarket
    batches: list[ev.FeedBatch]
    frames: dict[str, pl.DataFrame]
    seconds: float


def _run(profile: str, seconds: float, seed: int = 7, tick_ms: int = 100) -> Run:
    m = SyntheticMarket(profile, seed, START, tick_ms)
    batches = [m.next_batch() for _ in range(round(seconds * 1000 / tick_ms))]
    frames = {s: pl.concat([b.frames[s] for b in batches]) for s in ev.RAW_STREAMS}
    return Run(m, batches, frames, seconds)


@pytest.fixture(scope="module")
def realistic() -> Run:
    return _run("realistic", 120)


@pytest.fixture(scope="module")
def active() -> Run:
    return _run("active", 150)


@pytest.fixture(scope="module")
def firehose() -> Run:
    return _run("firehose", 1)


def _with_quote(prints: pl.DataFrame, quotes: pl.DataFrame) -> pl.DataFrame:
    """Each print with the latest quote of its symbol at or before it (ties: last row)."""
    q = quotes.select("ts", "symbol", "bid", "ask").rename({"ts": "quote_ts"})
    return prints.join_asof(
        q,
        left_on="ts",
        right_on="quote_ts",
        by="symbol",
        strategy="backward",
        check_sortedness=False,
    ).with_columns(age=pl.col("ts") - pl.col("quote_ts"))


def _label(joined: pl.DataFrame) -> pl.DataFrame:
    price, bid, ask = pl.col("price"), pl.col("bid"), pl.col("ask")
    label = (
        pl.when(pl.col("quote_ts").is_null())
        .then(pl.lit("NONE"))
        .when(pl.col("age") > S)
        .then(pl.lit("STALE"))
        .when(bid >= ask)
        .then(pl.lit("LOCKED_OR_CROSSED"))
        .when(price > ask)
        .then(pl.lit("AA"))
        .when(price == ask)
        .then(pl.lit("A"))
        .when(price == bid)
        .then(pl.lit("B"))
        .when(price < bid)
        .then(pl.lit("BB"))
        .otherwise(pl.lit("MID"))
    )
    return joined.with_columns(label=label)


# ---------------------------------------------------------------------------
# Contract with the engine
# ---------------------------------------------------------------------------
def test_frames_have_exactly_the_ingest_schema(realistic: Run, firehose: Run) -> None:
    sparse = _run("realistic", 0.05, tick_ms=1)  # mostly empty frames
    for run in (realistic, firehose, sparse):
        for batch in run.batches:
            assert set(batch.frames) == set(ev.RAW_STREAMS)
            for stream, frame in batch.frames.items():
                assert frame.schema == ev.ingest_polars_schema(stream), stream
    assert any(b.frames[ev.OPTIONS_PRINTS].height == 0 for b in sparse.batches)


def test_ts_sorted_inside_tick_and_watermark(realistic: Run, firehose: Run) -> None:
    for run in (realistic, firehose):
        for i, batch in enumerate(run.batches):
            t0 = START + i * TICK_NS
            assert batch.watermark == t0 + TICK_NS
            for frame in batch.frames.values():
                ts = frame["ts"]
                assert ts.is_sorted()
                if frame.height:
                    assert t0 <= ts.min() and ts.max() < t0 + TICK_NS  # type: ignore[operator]
        assert run.market.now_ns == START + len(run.batches) * TICK_NS


def test_same_seed_is_byte_identical_and_other_seed_differs() -> None:
    a, b, c = (_run("active", 8, seed=s) for s in (11, 11, 12))
    for stream in ev.RAW_STREAMS:
        assert a.frames[stream].equals(b.frames[stream]), stream
        assert a.frames[stream].hash_rows().equals(b.frames[stream].hash_rows())
        assert not a.frames[stream].equals(c.frames[stream]), stream
    assert a.market.patterns.equals(b.market.patterns)


def test_no_bad_values(realistic: Run, firehose: Run) -> None:
    for run in (realistic, firehose):
        f = run.frames
        for stream in ev.RAW_STREAMS:
            assert f[stream].null_count().sum_horizontal().item() == 0, stream
        for stream in (ev.OPTIONS_PRINTS, ev.EQUITIES_PRINTS):
            price = f[stream]["price"]
            assert not price.is_nan().any() and price.min() > 0  # type: ignore[operator]
            assert f[stream]["size"].min() > 0  # type: ignore[operator]
        for stream in (ev.OPTIONS_NBBO, ev.EQUITIES_QUOTES):
            q = f[stream]
            assert q["bid"].min() > 0 and q["ask"].min() > 0  # type: ignore[operator]
            assert not (q["bid"].is_nan().any() or q["ask"].is_nan().any())
            assert q["bid_size"].min() > 0 and q["ask_size"].min() > 0  # type: ignore[operator]


# ---------------------------------------------------------------------------
# Rates per profile
# ---------------------------------------------------------------------------
def test_realistic_and_active_rates(realistic: Run, active: Run) -> None:
    rate = realistic.frames[ev.OPTIONS_PRINTS].height / realistic.seconds
    assert 20 <= rate <= 60
    rate = active.frames[ev.OPTIONS_PRINTS].height / active.seconds
    assert 200 <= rate <= 600
    for run in (realistic, active):
        assert run.frames[ev.OPTIONS_NBBO].height > run.frames[ev.OPTIONS_PRINTS].height
        assert run.frames[ev.EQUITIES_PRINTS].height > 0.3 * run.frames[ev.OPTIONS_PRINTS].height
        assert run.frames[ev.EQUITIES_QUOTES].height > run.frames[ev.EQUITIES_PRINTS].height


def test_firehose_is_sustained(firehose: Run) -> None:
    for batch in firehose.batches:  # every 100 ms, not just on average
        prints = batch.frames[ev.OPTIONS_PRINTS].height
        assert prints >= 50_000 * 0.1
        assert batch.frames[ev.OPTIONS_NBBO].height >= 2 * prints
        assert batch.frames[ev.EQUITIES_PRINTS].height >= 1_000
        assert batch.frames[ev.EQUITIES_QUOTES].height >= batch.frames[ev.EQUITIES_PRINTS].height


# ---------------------------------------------------------------------------
# Option microstructure
# ---------------------------------------------------------------------------
def test_osi_symbols_valid_with_0dte_and_long_dated(realistic: Run) -> None:
    chain = realistic.market.chain
    printed = realistic.frames[ev.OPTIONS_PRINTS]["symbol"].unique()
    for sym in chain["symbol"].to_list():
        assert len(sym) == 21 and OSI.match(sym), sym
        root = sym[:6].rstrip()
        assert sym[:6] == f"{root:<6}"
    assert set(printed.to_list()) <= set(chain["symbol"].to_list())
    today = event_date(START)
    assert today == date(2025, 11, 25)
    expiries = {datetime.strptime(s[6:12], "%y%m%d").date() for s in printed.to_list()}
    assert today in expiries  # 0DTE flow
    assert max((e - today).days for e in expiries) >= 60
    zero_dte_roots = set(chain.filter(pl.col("expiry") == today)["root"].to_list())
    assert zero_dte_roots == {"SPY", "QQQ", "IWM"}  # Tuesday: ETFs only
    singles = chain.filter(~pl.col("root").is_in(["SPY", "QQQ", "IWM"]))
    assert (singles["expiry"].dt.weekday() == 5).all()  # single names: Fridays
    # Strikes at their listed increments.
    assert ((chain["strike"] * 1000).round() % 1000 % 500 == 0).all()


def test_every_placement_occurs_and_most_prints_have_a_fresh_quote(realistic: Run) -> None:
    labelled = _label(
        _with_quote(realistic.frames[ev.OPTIONS_PRINTS], realistic.frames[ev.OPTIONS_NBBO])
    )
    counts = dict(labelled.group_by("label").len().iter_rows())
    for label in ("AA", "A", "MID", "B", "BB"):
        assert counts.get(label, 0) > 0, label
    n = labelled.height
    fresh = n - counts.get("NONE", 0) - counts.get("STALE", 0)
    assert fresh / n >= 0.85
    assert counts.get("NONE", 0) + counts.get("STALE", 0) > 0  # some, as on a real tape
    assert (counts["A"] + counts["B"] + counts["MID"]) / n >= 0.6  # mostly A/B/MID


def test_locked_and_crossed_quotes_are_rare(realistic: Run) -> None:
    q = realistic.frames[ev.OPTIONS_NBBO]
    locked = (q["bid"] == q["ask"]).mean()
    crossed = (q["bid"] > q["ask"]).mean()
    assert 0 < locked < 0.02  # type: ignore[operator]
    assert 0 < crossed < 0.02  # type: ignore[operator]


def test_option_spreads_and_ticks_are_plausible(realistic: Run) -> None:
    q = realistic.frames[ev.OPTIONS_NBBO].filter(pl.col("bid") < pl.col("ask"))
    q = q.with_columns(spread=pl.col("ask") - pl.col("bid"))
    cheap = q.filter(pl.col("ask") < 3)
    assert cheap["spread"].median() <= 0.05  # type: ignore[operator]
    # Single names above $3 quote in nickels; ETFs in pennies.
    nickel = q.filter((pl.col("bid") >= 3) & ~pl.col("symbol").str.starts_with("SPY"))
    nickel = nickel.filter(~pl.col("symbol").str.slice(0, 3).is_in(["QQQ", "IWM"]))
    cents = (nickel["bid"] * 100).round().cast(pl.Int64)
    assert (cents % 5 == 0).all()


def test_conditions_and_flags_follow_the_tables(realistic: Run) -> None:
    table = {code: int(flags) for code, flags, _, _ in OPTION_CONDITIONS}
    p = realistic.frames[ev.OPTIONS_PRINTS]
    for code, flags in p.select("conditions", "flags").unique().iter_rows():
        assert table[code] == flags
    assert set(p["exchange"].unique()) <= {v[0] for v in OPTION_VENUES}
    eq_table = {code: int(flags) for code, flags, _ in EQUITY_CONDITIONS}
    e = realistic.frames[ev.EQUITIES_PRINTS]
    for code, flags in e.select("conditions", "flags").unique().iter_rows():
        assert eq_table[code] == flags
    assert ((e["size"] < 100) == ((e["flags"] & int(ev.Cond.ODD_LOT)) != 0)).all()


# ---------------------------------------------------------------------------
# Equities
# ---------------------------------------------------------------------------
def test_equity_venues_and_sub_penny_trf(realistic: Run) -> None:
    e = realistic.frames[ev.EQUITIES_PRINTS]
    assert set(e["venue"].unique()) <= {v[0] for v in EQUITY_VENUES}
    assert (e["off_exchange"] == (e["venue"] == "D")).all()
    share = e["off_exchange"].mean()
    assert 0.3 < share < 0.6  # type: ignore[operator]
    sub = ((e["price"] * 10_000).round().cast(pl.Int64) % 100) != 0
    assert (sub & e["off_exchange"]).sum() > 50
    assert not (sub & ~e["off_exchange"]).any()  # lit venues print in whole cents
    # Sub-penny retail prints improve on the quote: strictly inside it.
    quotes = realistic.frames[ev.EQUITIES_QUOTES]
    improved = _with_quote(e.filter(sub & e["off_exchange"]), quotes)
    improved = improved.filter(pl.col("bid") < pl.col("ask"))
    inside = (improved["price"] > improved["bid"]) & (improved["price"] < improved["ask"])
    assert inside.mean() > 0.95  # type: ignore[operator]
    spread = (quotes["ask"] - quotes["bid"]).round(4)
    assert spread.filter(spread > 0).is_between(0.01, 0.03).all()


# ---------------------------------------------------------------------------
# Injected patterns
# ---------------------------------------------------------------------------
def _members(run: Run, pattern: dict[str, object]) -> pl.DataFrame:
    """The printed rows of one pattern, found by (symbol, ts) in the frames."""
    stream = ev.EQUITIES_PRINTS if str(pattern["kind"]).startswith("equity") else ev.OPTIONS_PRINTS
    keys = pl.DataFrame(
        {"symbol": pattern["print_symbols"], "ts": pattern["print_ts"]},
        schema={"symbol": pl.String, "ts": pl.Int64},
    )
    return run.frames[stream].join(keys, on=["symbol", "ts"], how="semi")


def test_patterns_schema_and_every_kind_present(active: Run) -> None:
    pats = active.market.patterns
    assert pats.schema == PATTERN_SCHEMA
    done = pats.filter(pl.col("ts_end") < active.market.now_ns)
    assert set(done["kind"].unique()) == {*PATTERN_KINDS, "golden_sweep"}
    assert (pats["pattern_id"] == pl.int_range(pats.height, eager=True)).all()


def test_open_interest_table_and_golden_sweeps(active: Run) -> None:
    market = active.market
    oi = market.open_interest
    assert oi.columns == ["symbol", "as_of", "open_interest"]
    assert oi.height == market.n_contracts and oi["symbol"].n_unique() == oi.height
    assert (oi["open_interest"] >= 0).all() and (oi["as_of"] == market.event_date).all()
    # deterministic: seed and start only (not the profile)
    again = SyntheticMarket("firehose", market.seed, market.start_ns, 250).open_interest
    assert again.equals(oi)
    other = SyntheticMarket(market.profile, market.seed + 1, market.start_ns).open_interest
    assert not other.equals(oi)
    by_sym = dict(zip(oi["symbol"].to_list(), oi["open_interest"].to_list(), strict=True))
    gold = market.patterns.filter(
        (pl.col("kind") == "golden_sweep") & (pl.col("ts_end") < market.now_ns)
    )
    assert gold.height > 0
    for pat in gold.iter_rows(named=True):
        rows = _members(active, pat)
        assert (rows["flags"] & int(ev.Cond.ISO) != 0).all() and rows["exchange"].n_unique() >= 4
        premium = (rows["price"] * rows["size"] * 100).sum()
        assert premium >= 1_000_000, pat
        assert pat["total_size"] > by_sym[pat["symbols"]], pat  # size > open interest


def test_pattern_prints_are_in_the_frames(active: Run) -> None:
    now = active.market.now_ns
    quotes = active.frames[ev.OPTIONS_NBBO]
    done = active.market.patterns.filter(pl.col("ts_end") < now)
    for pat in done.iter_rows(named=True):
        rows = _members(active, pat)
        kind = pat["kind"]
        assert rows.height == pat["n_prints"], (kind, pat["pattern_id"])
        assert rows["size"].sum() == pat["total_size"]
        assert rows["ts"].min() == pat["ts_start"] and rows["ts"].max() == pat["ts_end"]
        if kind == "sweep":
            assert 3 <= rows.height <= 10
            assert (rows["flags"] & int(ev.Cond.ISO) != 0).all()
            assert rows["exchange"].n_unique() >= 3
            assert 50 * ev.NS_PER_MS <= pat["ts_end"] - pat["ts_start"] <= 300 * ev.NS_PER_MS
            placed = _label(_with_quote(rows, quotes))
            assert (placed["price"] >= placed["ask"]).all()  # at or through the ask
            normal = placed.filter(pl.col("label") != "LOCKED_OR_CROSSED")["label"]
            assert normal.is_in(["A", "AA"]).all(), placed["label"].to_list()
        elif kind == "block":
            assert rows.height == 1 and rows["size"].item() >= 500
        elif kind in ("spread", "straddle", "roll"):
            assert rows.height == 2 and rows["ts"].n_unique() == 1
            assert rows["symbol"].n_unique() == 2 and rows["exchange"].n_unique() == 1
            assert rows["size"].n_unique() == 1
            multi = (rows["flags"] & int(ev.Cond.MULTI_LEG)) != 0
            assert multi.all() if pat["multi_leg"] else not multi.any()
            a, b = sorted(rows["symbol"].to_list())
            if kind == "straddle":
                assert a[:12] == b[:12] and a[13:] == b[13:] and {a[12], b[12]} == {"C", "P"}
            elif kind == "spread":
                assert a[:13] == b[:13] and a[13:] != b[13:]
            else:
                assert a[:6] == b[:6] and a[6:12] != b[6:12] and a[12] == b[12]
        elif kind == "repeat":
            assert rows["symbol"].n_unique() == 1 and rows.height >= 6
            assert 10 * S <= pat["ts_end"] - pat["ts_start"] <= 180 * S
        elif kind == "equity_block":
            assert rows.height == 1 and rows["size"].item() >= 10_000
            assert rows["off_exchange"].item() and rows["venue"].item() == "D"
        elif kind == "equity_accumulation":
            assert rows.height >= 8 and (rows["size"] >= 200).all()
            assert rows["off_exchange"].all()
            assert pat["ts_end"] - pat["ts_start"] <= 90 * S
            lo, hi = rows["price"].min(), rows["price"].max()
            assert hi - lo <= 0.01 * lo  # type: ignore[operator]


def test_multi_leg_patterns_are_mostly_flagged(active: Run) -> None:
    ml = active.market.patterns.filter(pl.col("kind").is_in(["spread", "straddle", "roll"]))
    assert ml.height >= 5
    assert 0.5 <= ml["multi_leg"].mean() < 1.0  # type: ignore[operator]


def test_realistic_demo_shows_patterns_every_few_seconds(realistic: Run) -> None:
    pats = realistic.market.patterns
    assert pats.height / realistic.seconds >= 1 / 8


# ---------------------------------------------------------------------------
# Configuration helpers
# ---------------------------------------------------------------------------
def test_start_ns_from_config() -> None:
    now = 1_764_081_000_123_456_789
    assert start_ns_from_config("now", now) == 1_764_081_000_000_000_000
    assert start_ns_from_config("2025-11-25T14:30:00Z", 0) == 1_764_081_000 * S
    assert start_ns_from_config("2025-11-25T09:30:00-05:00", 0) == 1_764_081_000 * S
    assert start_ns_from_config("2025-11-25T14:30:00", 0) == 1_764_081_000 * S  # naive = UTC
    assert start_ns_from_config("2025-11-25T14:30:00.000001Z", 0) == 1_764_081_000 * S + 1000
    with pytest.raises(ValueError):
        start_ns_from_config("yesterday", 0)


def test_profiles_and_bad_arguments() -> None:
    assert set(PROFILES) == {"realistic", "active", "firehose"}
    with pytest.raises(ValueError):
        SyntheticMarket("nope", 1, START)
    with pytest.raises(ValueError):
        SyntheticMarket("realistic", 1, START, tick_ms=0)


def test_patterns_read_mid_run_match_a_single_read() -> None:
    polled = SyntheticMarket("active", 5, START)
    for i in range(300):
        polled.next_batch()
        if i % 7 == 0:
            _ = polled.patterns  # the frame is built incrementally as patterns appear
    once = _run("active", 30, seed=5).market
    assert polled.patterns.height > 0
    assert polled.patterns.equals(once.patterns)


def test_synthetic_feed_hands_its_open_interest_to_the_engine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from islandflow_tui.config import Config
    from islandflow_tui.engine.core import Engine
    from islandflow_tui.engine.feeds import build_adapter

    cfg = Config()
    cfg.paths.data_dir = str(tmp_path)
    cfg.synthetic.start = "2025-11-25T14:30:00Z"
    feed = build_adapter(cfg)
    path = cfg.flow.open_interest_path
    assert path and path.startswith(str(tmp_path)) and path.endswith(".csv")
    engine = Engine(cfg, feed)
    oi = engine.compute.packets.open_interest
    assert oi is not None and oi.height == feed.market.n_contracts  # type: ignore[attr-defined]
    # a configured table wins; the switch turns it off
    for setup in ({"open_interest_path": "mine.csv"}, {"off": True}):
        cfg2 = Config()
        cfg2.paths.data_dir = str(tmp_path / "other")
        cfg2.flow.open_interest_path = setup.get("open_interest_path", "")  # type: ignore[assignment]
        cfg2.synthetic.open_interest = not setup.get("off", False)
        build_adapter(cfg2)
        assert cfg2.flow.open_interest_path == setup.get("open_interest_path", "")
        assert not (tmp_path / "other").exists()


def test_a_paced_synthetic_feed_behind_the_wall_clock_sends_the_due_ticks_at_once(
    monkeypatch,
) -> None:
    """An engine slower than the market for a while: the feed hands it every tick
    already due as one batch (at most CATCH_UP_GROUP), the same rows a tick at a time
    would have carried, so it catches up instead of lagging more and more."""
    import asyncio

    from islandflow_tui.config import Config
    from islandflow_tui.engine.ingest import synthetic_feed as sf

    cfg = Config().synthetic
    cfg.profile, cfg.start, cfg.backfill_s, cfg.pace = "active", "2025-11-25T14:30:00Z", 0.0, True
    clock = [1000.0]
    monkeypatch.setattr(sf.time, "perf_counter", lambda: clock[0])

    async def first_batches(lag_s: list[float]) -> list:
        feed = sf.SyntheticFeed(cfg, now_ns=0)
        out = []
        it = feed.batches()
        for lag in lag_s:
            clock[0] += lag  # the engine took this long over the previous batch
            out.append(await anext(it))
        await it.aclose()
        return out

    tick = cfg.tick_ms / 1000
    on_time = asyncio.run(first_batches([0.0, tick, tick, tick]))
    ticks = [b.frames[ev.OPTIONS_PRINTS].height for b in on_time]
    late = asyncio.run(first_batches([0.0, 5 * tick + 0.01, 100.0]))
    # 0.51 s late: ticks 2-5 are due (tick 6 is not, it starts the next batch)
    assert late[1].watermark - late[0].watermark == 4 * cfg.tick_ms * ev.NS_PER_MS
    assert late[2].watermark - late[1].watermark == sf.CATCH_UP_GROUP * cfg.tick_ms * ev.NS_PER_MS
    plain = sf.SyntheticFeed(cfg, now_ns=0).market
    rows = [plain.next_batch().frames[ev.OPTIONS_PRINTS] for _ in range(6 + sf.CATCH_UP_GROUP)]
    assert late[1].frames[ev.OPTIONS_PRINTS].equals(pl.concat(rows[1:5]))
    assert late[2].frames[ev.OPTIONS_PRINTS].equals(pl.concat(rows[5 : 5 + sf.CATCH_UP_GROUP]))
    # on time: one tick a batch
    steps = {b.watermark - a.watermark for a, b in pairwise(on_time)}
    assert steps == {cfg.tick_ms * ev.NS_PER_MS} and all(ticks)
