"""Trade-side rules against hand-worked examples from their definitions (compute/side.py)."""

from __future__ import annotations

import polars as pl
import pytest

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from tests.helpers import MS, SPY_C, SPY_P, batch, option_prints, option_quotes

T0 = 1_764_081_000_000_000_000


def enrich(
    stack: list[str],
    quotes: list[dict],
    prints: list[dict],
    *,
    horizon_ms: int = 1000,
    one_by_one: bool = False,
) -> pl.DataFrame:
    cfg = Config()
    cfg.side.stack = stack
    cfg.side.reverse_tick_horizon_ms = horizon_ms
    engine = Engine(cfg)
    out = []
    if one_by_one:
        events = sorted(
            [("q", q) for q in quotes] + [("p", p) for p in prints], key=lambda e: e[1]["ts"]
        )
        for kind, row in events:
            frames = (
                {"quotes": option_quotes([row])}
                if kind == "q"
                else {"prints": option_prints([row])}
            )
            got = engine.ingest(batch(row["ts"], **frames)).get(ev.OPTIONS_ENRICHED)
            if got is not None:
                out.append(got)
    else:
        engine.ingest(batch(0, quotes=option_quotes(quotes), prints=option_prints(prints)))
    got = engine.flush().get(ev.OPTIONS_ENRICHED)
    if got is not None:
        out.append(got)
    return pl.concat(out) if out else ev.empty_frame(ev.OPTIONS_ENRICHED)


def sides(df: pl.DataFrame) -> list[tuple[str, str]]:
    return list(zip(df["side"].to_list(), df["side_rule"].to_list(), strict=True))


Q = {"ts": T0, "symbol": SPY_C, "bid": 1.00, "ask": 1.10, "bid_size": 10, "ask_size": 20}


def p(ms: int, price: float, size: int = 1, flags: int = 0, symbol: str = SPY_C) -> dict:
    return {"ts": T0 + ms * MS, "symbol": symbol, "price": price, "size": size, "flags": flags}


# -- quote rule ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (1.06, ("buy", "quote")),  # above the 1.05 mid
        (1.051, ("unknown", "none")),  # within the 0.001 float tolerance of the mid
        (1.05, ("unknown", "none")),  # at the mid: the quote rule cannot sign
        (1.04, ("sell", "quote")),
        (1.20, ("buy", "quote")),  # outside the quotes still signs by the mid
        (0.90, ("sell", "quote")),
    ],
)
def test_quote_rule(price: float, expected: tuple[str, str]) -> None:
    assert sides(enrich(["quote"], [Q], [p(1, price)])) == [expected]


def test_quote_rule_ignores_stale_and_missing_quotes() -> None:
    stale = enrich(["quote"], [Q], [p(1001, 1.09)])  # nbbo.max_age_ms = 1000
    none = enrich(["quote"], [], [p(1, 1.09)])
    assert sides(stale) == [("unknown", "none")]
    assert sides(none) == [("unknown", "none")]


# -- tick and reverse tick ---------------------------------------------------------
TICKS = [1.00, 1.01, 1.01, 1.00, 1.00, 1.02]


def test_tick_rule_with_zero_ticks() -> None:
    got = enrich(["tick"], [], [p(i, px) for i, px in enumerate(TICKS)])
    assert sides(got) == [
        ("unknown", "none"),  # no earlier trade
        ("buy", "tick"),  # uptick
        ("buy", "tick"),  # zero-uptick: last different price was lower
        ("sell", "tick"),  # downtick
        ("sell", "tick"),  # zero-downtick
        ("buy", "tick"),
    ]


def test_tick_state_carries_across_batches() -> None:
    prints = [p(i * 10, px) for i, px in enumerate(TICKS)]
    assert enrich(["tick"], [], prints, one_by_one=True).equals(enrich(["tick"], [], prints))


def test_tick_rule_is_per_contract_and_skips_excluded_prints() -> None:
    prints = [
        p(0, 1.00),
        p(1, 5.00, symbol=SPY_P),  # another contract: not this one's previous trade
        p(2, 2.00, flags=int(ev.Cond.MULTI_LEG)),  # complex price: never a tick reference
        p(3, 0.99),
    ]
    got = enrich(["tick"], [], prints)
    assert sides(got)[3] == ("sell", "tick")  # 0.99 < 1.00, not < 2.00
    assert sides(got)[2] == ("unknown", "excluded.multi_leg")


def test_reverse_tick_rule() -> None:
    prints = [p(0, 1.00), p(1, 1.01), p(2, 1.01), p(3, 0.99)]
    got = enrich(["reverse_tick"], [], prints)
    assert sides(got) == [
        ("sell", "reverse_tick"),  # next different price 1.01 is higher
        ("buy", "reverse_tick"),  # next different price (skipping the equal one) 0.99
        ("buy", "reverse_tick"),
        ("unknown", "none"),  # no later trade
    ]


@pytest.mark.parametrize(("gap_ms", "expected"), [(999, "sell"), (1000, "sell"), (1001, "unknown")])
def test_reverse_tick_horizon_boundary(gap_ms: int, expected: str) -> None:
    got = enrich(["reverse_tick"], [], [p(0, 1.00), p(gap_ms, 1.01)], horizon_ms=1000)
    assert got["side"][0] == expected


def test_reverse_tick_holds_output_until_the_horizon_passes() -> None:
    cfg = Config()
    cfg.side.stack = ["reverse_tick"]
    engine = Engine(cfg)
    first = engine.ingest(batch(T0 + 500 * MS, prints=option_prints([p(0, 1.00)])))
    assert ev.OPTIONS_ENRICHED not in first  # the next trade may still come within 1 s
    later = engine.ingest(batch(T0 + 1001 * MS, prints=option_prints([p(600, 1.02)])))
    assert later[ev.OPTIONS_ENRICHED]["side"].to_list() == ["sell"]
    assert sides(enrich(["reverse_tick"], [], [p(0, 1.0), p(600, 1.02)], one_by_one=True))[0] == (
        "sell",
        "reverse_tick",
    )


# -- hybrids ----------------------------------------------------------------------
def test_lee_ready_quote_then_tick_at_the_mid() -> None:
    got = enrich(["lee_ready"], [Q], [p(1, 1.00), p(2, 1.05), p(3, 1.07)])
    assert sides(got) == [
        ("sell", "lee_ready.quote"),
        ("buy", "lee_ready.tick"),  # at the mid: uptick from 1.00
        ("buy", "lee_ready.quote"),
    ]


def test_emo_at_quotes_by_quote_else_tick() -> None:
    got = enrich(
        ["emo"],
        [Q],
        [p(1, 1.10), p(2, 1.07), p(3, 1.12), p(4, 1.00), p(5, 1.03)],
    )
    assert sides(got) == [
        ("buy", "emo.quote"),  # at the ask
        ("sell", "emo.tick"),  # inside, not at the mid: tick (down from 1.10)
        ("buy", "emo.tick"),  # above the ask: tick (up from 1.07)
        ("sell", "emo.quote"),  # at the bid
        ("buy", "emo.tick"),  # inside: up from 1.00
    ]


def test_emo_on_a_locked_quote_falls_to_the_tick_rule() -> None:
    locked = {**Q, "bid": 1.05, "ask": 1.05}
    got = enrich(["emo"], [locked], [p(1, 1.00, symbol=SPY_C), p(2, 1.05)])
    assert sides(got)[1] == ("buy", "emo.tick")


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (2.00, ("buy", "clnv.quote")),  # at the ask: in (0.3B + 0.7A, A]
        (1.71, ("buy", "clnv.quote")),
        (1.70, ("sell", "clnv.tick")),  # exactly 0.3B + 0.7A: open end, tick (down from 1.9)
        (1.69, ("sell", "clnv.tick")),
        (1.50, ("sell", "clnv.tick")),
        (1.31, ("sell", "clnv.tick")),
        (1.30, ("sell", "clnv.tick")),  # exactly 0.7B + 0.3A: open end
        (1.29, ("sell", "clnv.quote")),
        (1.00, ("sell", "clnv.quote")),  # at the bid
        (2.01, ("buy", "clnv.tick")),  # outside the quotes: tick (up from 1.9)
    ],
)
def test_clnv_deciles(price: float, expected: tuple[str, str]) -> None:
    wide = {**Q, "bid": 1.00, "ask": 2.00}
    got = enrich(["clnv"], [wide], [p(1, 1.90, flags=0), p(2, price)])
    assert sides(got)[1] == expected


# -- Grauer, Schuster & Uhrig-Homburg ------------------------------------------------
@pytest.mark.parametrize(
    ("size", "bid_size", "ask_size", "expected"),
    [
        (20, 10, 20, ("sell", "trade_size")),  # = ask size: a customer's ask filled whole
        (10, 10, 20, ("buy", "trade_size")),  # = bid size
        (15, 10, 20, ("unknown", "none")),
        (10, 10, 10, ("unknown", "none")),  # matches both: ambiguous
    ],
)
def test_trade_size_rule(size: int, bid_size: int, ask_size: int, expected: tuple) -> None:
    q = {**Q, "bid_size": bid_size, "ask_size": ask_size}
    assert sides(enrich(["trade_size"], [q], [p(1, 1.10, size=size)])) == [expected]


@pytest.mark.parametrize(
    ("price", "bid_size", "ask_size", "expected"),
    [
        (1.05, 10, 20, ("buy", "depth")),  # at the mid, more depth at the ask
        (1.05, 20, 10, ("sell", "depth")),
        (1.05, 15, 15, ("unknown", "none")),
        (1.06, 10, 20, ("unknown", "none")),  # not at the mid
    ],
)
def test_depth_rule(price: float, bid_size: int, ask_size: int, expected: tuple) -> None:
    q = {**Q, "bid_size": bid_size, "ask_size": ask_size}
    assert sides(enrich(["depth"], [q], [p(1, price, size=3)])) == [expected]


def test_stack_order_decides_and_is_recorded() -> None:
    at_ask_size_of_ask = [p(1, 1.10, size=20)]  # trade_size says sell, quote says buy
    assert sides(enrich(["trade_size", "quote"], [Q], at_ask_size_of_ask)) == [
        ("sell", "trade_size")
    ]
    assert sides(enrich(["quote", "trade_size"], [Q], at_ask_size_of_ask)) == [("buy", "quote")]
    default = enrich(Config().side.stack, [Q], [p(1, 1.05, size=3), p(2, 1.05, size=4)])
    assert sides(default)[0] == ("buy", "depth")  # mid, ask depth 20 > bid depth 10


@pytest.mark.parametrize(
    ("flag", "label"),
    [
        (ev.Cond.MULTI_LEG, "excluded.multi_leg"),
        (ev.Cond.STOCK_OPTION, "excluded.stock_option"),
        (ev.Cond.CANCEL, "excluded.cancel"),
        (ev.Cond.LATE, "excluded.late"),
        (ev.Cond.OUT_OF_SEQ, "excluded.out_of_seq"),
        (ev.Cond.MULTI_LEG | ev.Cond.LATE, "excluded.multi_leg"),
    ],
)
def test_excluded_conditions_are_never_signed(flag: ev.Cond, label: str) -> None:
    got = enrich(["quote", "tick"], [Q], [p(1, 1.00), p(2, 1.10, flags=int(flag))])
    assert sides(got)[1] == ("unknown", label)
