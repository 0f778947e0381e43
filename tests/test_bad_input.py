"""Malformed events are rejected, counted by reason, visible, and lose nothing else."""

from __future__ import annotations

import logging
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from tests.helpers import (
    SPY_C,
    batch,
    equity_prints,
    equity_quotes,
    option_prints,
    option_quotes,
)

T0 = 1_764_081_000_000_000_000
GOOD = {"ts": T0 + 10, "symbol": SPY_C, "price": 1.0, "size": 5}


def run(**frames: pl.DataFrame) -> Engine:
    """Ingest after a first batch has moved the watermark to T0 (so ts < T0 is late)."""
    engine = Engine(Config())
    engine.ingest(batch(T0))
    engine.ingest(batch(T0 + 1000, **frames))
    engine.flush()
    return engine


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"size": 0}, "bad_size"),
        ({"size": -3}, "bad_size"),
        ({"price": math.nan}, "bad_price"),
        ({"price": -1.0}, "bad_price"),
        ({"price": 0.0}, "bad_price"),
        ({"price": math.inf}, "bad_price"),
        ({"symbol": "SPY 251125C580"}, "invalid_osi"),
        ({"symbol": "SPY   251399C00580000"}, "invalid_osi"),
        ({"ts": T0 - 1}, "late"),
        ({"ts": 0}, "bad_ts"),
    ],
)
def test_option_print_reasons(bad, reason):
    engine = run(prints=option_prints([GOOD, {**GOOD, **bad}, GOOD]))
    stats = engine.stats()
    assert stats.rejected == {ev.OPTIONS_PRINTS: {reason: 1}}
    assert stats.rejected_total == 1
    assert reason in stats.last_rejection
    # nothing else is lost: both good prints were accepted and enriched
    assert stats.totals[ev.OPTIONS_PRINTS] == 2
    assert stats.totals[ev.OPTIONS_ENRICHED] == 2


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"bid": math.nan}, "bad_price"),
        ({"ask": 0.0}, "bad_price"),
        ({"bid": -0.05}, "bad_price"),
        ({"bid_size": -1}, "bad_size"),
        ({"symbol": "NOPE"}, "invalid_osi"),
    ],
)
def test_option_quote_reasons(bad, reason):
    good = {"ts": T0 + 1, "symbol": SPY_C, "bid": 1.0, "ask": 1.1}
    engine = run(quotes=option_quotes([good, {**good, **bad}]))
    assert engine.stats().rejected == {ev.OPTIONS_NBBO: {reason: 1}}
    assert engine.stats().totals[ev.OPTIONS_NBBO] == 1


def test_zero_bid_is_a_valid_quote():
    engine = run(quotes=option_quotes([{"ts": T0 + 1, "symbol": SPY_C, "bid": 0.0, "ask": 0.05}]))
    assert engine.stats().rejected_total == 0


@pytest.mark.parametrize(
    ("bad", "reason"),
    [({"size": 0}, "bad_size"), ({"price": math.nan}, "bad_price"), ({"ts": T0 - 5}, "late")],
)
def test_equity_print_reasons(bad, reason):
    good = {"ts": T0 + 1, "symbol": "AAPL", "price": 230.01, "size": 100}
    engine = run(eq_prints=equity_prints([good, {**good, **bad}]))
    assert engine.stats().rejected == {ev.EQUITIES_PRINTS: {reason: 1}}
    assert engine.stats().totals[ev.EQUITIES_PRINTS] == 1


def test_equity_quote_reason():
    good = {"ts": T0 + 1, "symbol": "AAPL", "bid": 230.0, "ask": 230.02}
    engine = run(eq_quotes=equity_quotes([good, {**good, "ask": -1.0}]))
    assert engine.stats().rejected == {ev.EQUITIES_QUOTES: {"bad_price": 1}}


def test_unknown_field_rejects_that_batch_only():
    bad = option_prints([GOOD]).with_columns(pl.lit(1).alias("surprise"))
    engine = Engine(Config())
    engine.ingest(batch(T0, prints=bad))
    engine.ingest(batch(T0, prints=option_prints([GOOD])))
    engine.flush()
    stats = engine.stats()
    assert stats.rejected == {ev.OPTIONS_PRINTS: {"unknown_field": 1}}
    assert "surprise" in stats.last_rejection
    assert stats.totals[ev.OPTIONS_ENRICHED] == 1


def test_missing_field_and_bad_type():
    engine = Engine(Config())
    engine.ingest(batch(T0, prints=option_prints([GOOD]).drop("exchange")))
    wrong = option_prints([GOOD]).with_columns(pl.lit("lots").alias("size"))
    engine.ingest(batch(T0, prints=wrong))
    assert engine.stats().rejected == {ev.OPTIONS_PRINTS: {"missing_field": 1, "bad_type": 1}}


def test_unknown_stream_is_counted():
    engine = Engine(Config())
    engine.ingest(ev.FeedBatch({"options.bogus": option_prints([GOOD])}, T0))
    assert engine.stats().rejected["unknown"] == {"unknown_stream": 1}


def test_rejections_logged_once_per_reason_per_interval(caplog):
    engine = Engine(Config())
    with caplog.at_level(logging.WARNING, logger="islandflow.engine"):
        for i in range(5):
            engine.ingest(
                batch(T0 + i, prints=option_prints([{**GOOD, "ts": T0 + 10 + i, "size": 0}]))
            )
        engine.ingest(batch(T0 + 9, prints=option_prints([{**GOOD, "price": -1.0}])))
    lines = [r.getMessage() for r in caplog.records]
    assert sum("bad_size" in line for line in lines) == 1
    assert sum("bad_price" in line for line in lines) == 1
    assert engine.stats().rejected[ev.OPTIONS_PRINTS]["bad_size"] == 5


def test_seq_stays_gapless_across_rejections():
    engine = Engine(Config())
    got: list[pl.DataFrame] = []
    engine.subscribe_lossless([ev.OPTIONS_PRINTS], lambda _s, df: got.append(df))
    engine.ingest(batch(T0, prints=option_prints([GOOD, {**GOOD, "size": 0}, GOOD])))
    engine.ingest(batch(T0, prints=option_prints([{**GOOD, "price": math.nan}, GOOD])))
    seqs = pl.concat(got)["seq"].to_list()
    assert seqs == [0, 1, 2]


_EDGE_FLOATS = [1.0, 0.5, 0.0, -0.0, -0.01, math.nan, math.inf, -math.inf, None]
_EDGE_INTS = [1, 7, 0, -1, None]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fast_validity_check_never_passes_a_bad_row(data):
    """``_surely_good`` (null counts + min/max) may send a good batch to the exact
    check, but never lets a batch with a bad row skip it; on a clean batch it answers
    True (else the fast path would be dead code)."""
    from islandflow_tui.engine.validate import _any_bad_but_late, _checks, _surely_good

    stream = data.draw(st.sampled_from(sorted(ev.RAW_STREAMS)))
    checked = [c for _, cols in _checks(stream) for c in cols]
    schema = ev.ingest_polars_schema(stream)
    n = data.draw(st.integers(1, 4))
    cols: dict[str, pl.Series] = {}
    for name, kind in checked:
        dtype = pl.UInt32 if name == "cid" else schema[name]
        if kind == "set":
            good = [3] * n if name == "cid" else [SPY_C] * n
            vals = data.draw(st.lists(st.sampled_from([good[0], None]), min_size=n, max_size=n))
        elif dtype == pl.Float64:
            vals = data.draw(st.lists(st.sampled_from(_EDGE_FLOATS), min_size=n, max_size=n))
        else:
            vals = data.draw(st.lists(st.sampled_from(_EDGE_INTS), min_size=n, max_size=n))
        cols[name] = pl.Series(name, vals, dtype=dtype)
    frame = pl.DataFrame(cols)
    bad = bool(frame.select(_any_bad_but_late(stream)).item())
    if _surely_good(stream, frame):
        assert not bad
    clean = pl.DataFrame(
        {
            name: pl.Series(name, [3 if name == "cid" else SPY_C] * n)
            if kind == "set"
            else pl.Series(name, [1.0 if frame.schema[name] == pl.Float64 else 1] * n)
            for name, kind in checked
        }
    ).cast(frame.schema)
    assert _surely_good(stream, clean)
