"""NBBO join boundaries and placement labels (engine.compute.nbbo_join)."""

from __future__ import annotations

import polars as pl
import pytest

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from tests.helpers import MS, SPY_C, SPY_P, batch, option_prints, option_quotes

T0 = 1_764_081_000_000_000_000  # 2025-11-25 14:30:00 UTC


def enrich(quotes: list[dict], prints: list[dict], cfg: Config | None = None) -> pl.DataFrame:
    engine = Engine(cfg or Config())
    engine.ingest(batch(0, quotes=option_quotes(quotes), prints=option_prints(prints)))
    out = engine.flush()
    return out[ev.OPTIONS_ENRICHED]


def one(quotes: list[dict], print_row: dict, cfg: Config | None = None) -> dict:
    df = enrich(quotes, [print_row], cfg)
    assert df.height == 1
    return df.row(0, named=True)


Q = {"symbol": SPY_C, "bid": 1.00, "ask": 1.10}


def test_quote_exactly_at_max_age_is_in_force():
    row = one([{**Q, "ts": T0}], {"ts": T0 + 1000 * MS, "symbol": SPY_C, "price": 1.10, "size": 1})
    assert row["quote_age_ns"] == 1000 * MS
    assert row["placement"] == "A"


def test_quote_one_ns_past_max_age_is_stale():
    row = one(
        [{**Q, "ts": T0}], {"ts": T0 + 1000 * MS + 1, "symbol": SPY_C, "price": 1.1, "size": 1}
    )
    assert row["placement"] == "STALE"
    assert row["bid"] == 1.0  # the stale quote stays visible on the row


def test_quote_at_same_ts_as_print_applies():
    row = one(
        [{**Q, "ts": T0 - 5, "bid": 0.5, "ask": 0.6}, {**Q, "ts": T0}],
        {"ts": T0, "symbol": SPY_C, "price": 1.0, "size": 1},
    )
    assert (row["bid"], row["ask"], row["quote_age_ns"]) == (1.0, 1.1, 0)
    assert row["placement"] == "B"


def test_quote_one_ns_after_print_is_not_used():
    row = one([{**Q, "ts": T0 + 1}], {"ts": T0, "symbol": SPY_C, "price": 1.0, "size": 1})
    assert row["placement"] == "NO_NBBO"
    assert row["nbbo_id"] is None and row["quote_state"] == "NONE"


def test_quote_of_another_contract_is_not_used():
    row = one(
        [{**Q, "ts": T0, "symbol": SPY_P}], {"ts": T0 + 1, "symbol": SPY_C, "price": 1, "size": 1}
    )
    assert row["placement"] == "NO_NBBO"


def test_same_ts_quotes_take_the_highest_seq():
    row = one(
        [{**Q, "ts": T0, "bid": 2.0, "ask": 2.2}, {**Q, "ts": T0, "bid": 3.0, "ask": 3.2}],
        {"ts": T0 + 1, "symbol": SPY_C, "price": 3.2, "size": 1},
    )
    assert (row["bid"], row["ask"], row["placement"]) == (3.0, 3.2, "A")


@pytest.mark.parametrize(
    ("price", "label"),
    [
        (1.1101, "AA"),  # beyond tolerance above the ask
        (1.1009, "A"),  # within the 0.001 tolerance of the ask
        (1.10, "A"),
        (1.0991, "A"),
        (1.0989, "MID"),
        (1.05, "MID"),
        (1.0011, "MID"),
        (1.0009, "B"),
        (1.00, "B"),
        (0.9991, "B"),
        (0.9989, "BB"),
        (0.50, "BB"),
    ],
)
def test_placement_at_every_boundary(price, label):
    row = one([{**Q, "ts": T0}], {"ts": T0 + 1, "symbol": SPY_C, "price": price, "size": 1})
    assert row["placement"] == label


@pytest.mark.parametrize(
    ("price", "label"), [(1.05, "MID"), (1.06, "AA"), (1.04, "BB"), (1.0505, "MID")]
)
def test_locked_quote(price, label):
    row = one(
        [{**Q, "ts": T0, "bid": 1.05, "ask": 1.05}],
        {"ts": T0 + 1, "symbol": SPY_C, "price": price, "size": 1},
    )
    assert row["quote_state"] == "LOCKED"
    assert row["placement"] == label


def test_crossed_quote_gives_no_side():
    row = one(
        [{**Q, "ts": T0, "bid": 1.2, "ask": 1.1}],
        {"ts": T0 + 1, "symbol": SPY_C, "price": 1.15, "size": 1},
    )
    assert row["quote_state"] == "CROSSED"
    assert row["placement"] == "CROSSED"
    assert row["spread"] == pytest.approx(-0.1)


def test_enriched_fields_and_evidence():
    row = one([{**Q, "ts": T0}], {"ts": T0 + 7, "symbol": SPY_C, "price": 1.05, "size": 20})
    assert row["mid"] == pytest.approx(1.05)
    assert row["spread"] == pytest.approx(0.1)
    assert row["premium"] == pytest.approx(1.05 * 20 * 100)
    assert row["quote_age_ns"] == 7
    assert row["evidence"] == [row["print_id"], row["nbbo_id"]]
    assert ev.split_id(row["print_id"]) == (ev.OPTIONS_PRINTS, 0)
    assert ev.split_id(row["nbbo_id"]) == (ev.OPTIONS_NBBO, 0)
    assert ev.split_id(row["id"]) == (ev.OPTIONS_ENRICHED, 0)
    assert (row["root"], row["right"], row["strike"]) == ("SPY", "C", 580.0)


def test_prints_wait_for_the_watermark_and_see_later_arriving_quotes():
    engine = Engine(Config())
    # print at T0+10 arrives first; the feed only promises ts >= T0 so it must wait
    out = engine.ingest(
        batch(T0, prints=option_prints([{"ts": T0 + 10, "symbol": SPY_C, "price": 1.1, "size": 1}]))
    )
    assert ev.OPTIONS_ENRICHED not in out
    # the quote stamped before the print arrives in the next batch
    out = engine.ingest(batch(T0 + 20, quotes=option_quotes([{**Q, "ts": T0 + 5}])))
    row = out[ev.OPTIONS_ENRICHED].row(0, named=True)
    assert (row["placement"], row["quote_age_ns"]) == ("A", 5)


def test_quote_state_carries_across_batches():
    engine = Engine(Config())
    engine.ingest(batch(T0 + 1, quotes=option_quotes([{**Q, "ts": T0}])))
    out = engine.ingest(
        batch(
            T0 + 600 * MS,
            prints=option_prints([{"ts": T0 + 500 * MS, "symbol": SPY_C, "price": 1.0, "size": 1}]),
        )
    )
    assert out[ev.OPTIONS_ENRICHED]["placement"].to_list() == ["B"]


def test_max_age_is_configurable():
    cfg = Config()
    cfg.nbbo.max_age_ms = 10
    row = one(
        [{**Q, "ts": T0}], {"ts": T0 + 11 * MS, "symbol": SPY_C, "price": 1.1, "size": 1}, cfg
    )
    assert row["placement"] == "STALE"
