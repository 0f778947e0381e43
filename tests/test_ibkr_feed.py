"""IBKR adapter: the mapping from ib_async's own tick/ticker objects, and a TWS that is
not running (a closed loopback port) read as a clear, retried status."""

from __future__ import annotations

import asyncio
import random
import socket
from datetime import UTC, datetime

import pytest
from ib_async import Stock, Ticker
from ib_async.objects import (
    TickAttribBidAsk,
    TickAttribLast,
    TickByTickAllLast,
    TickByTickBidAsk,
    TickData,
)

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.base import Backoff, FeedStatus
from islandflow_tui.engine.ingest.ibkr_feed import (
    IbkrFeed,
    equity_print_row,
    equity_quote_row,
    option_contract,
    option_rows,
)

T = datetime(2025, 11, 25, 15, 30, 0, 250_000, tzinfo=UTC)
T_NS = int(T.timestamp()) * 10**9 + 250_000_000
OSI = "SPY   251219C00600000"


def test_all_last_maps_venue_off_exchange_and_conditions():
    tick = TickByTickAllLast(1, T, 600.12, 300, TickAttribLast(), "FINRA", "F I")
    row = equity_print_row("SPY", tick)
    assert row == {
        "ts": T_NS,
        "symbol": "SPY",
        "price": 600.12,
        "size": 300,
        "venue": "D",
        "off_exchange": True,
        "conditions": "F I",
        "flags": int(ev.Cond.ISO | ev.Cond.ODD_LOT),
    }
    lit = equity_print_row("SPY", TickByTickAllLast(1, T, 600.1, 100, TickAttribLast(), "ARCA", ""))
    assert (lit["venue"], lit["off_exchange"], lit["flags"]) == ("P", False, 0)


def test_bid_ask_maps_to_a_quote():
    tick = TickByTickBidAsk(T, 600.10, 600.12, 400, 200, TickAttribBidAsk())
    assert equity_quote_row("SPY", tick) == {
        "ts": T_NS,
        "symbol": "SPY",
        "bid": 600.10,
        "ask": 600.12,
        "bid_size": 400,
        "ask_size": 200,
    }


def test_option_ticker_rt_volume_prints_and_quote():
    contract = option_contract(OSI, "SMART", "USD")
    assert (contract.symbol, contract.lastTradeDateOrContractMonth) == ("SPY", "20251219")
    assert (contract.strike, contract.right) == (600.0, "C")
    ticker = Ticker(contract=contract, time=T)
    # ib_async's wrapper sets these as ticks arrive (its constructor resets them)
    ticker.bid, ticker.ask, ticker.bidSize, ticker.askSize = 4.10, 4.20, 12, 30
    ticker.lastExchange = "CBOE"
    ticker.ticks = [
        TickData(T, 1, 4.10, 12),  # bid
        TickData(T, 48, 4.20, 25),  # RT volume: a trade of 25 at the ask
        TickData(T, 48, 4.15, 0),  # a volume-only update: not a print
    ]
    prints, quotes = option_rows(OSI, ticker)
    assert prints == [
        {
            "ts": T_NS,
            "symbol": OSI,
            "price": 4.20,
            "size": 25,
            "exchange": "C",
            "conditions": "",
            "flags": 0,
        }
    ]
    assert quotes == [
        {"ts": T_NS, "symbol": OSI, "bid": 4.10, "ask": 4.20, "bid_size": 12, "ask_size": 30}
    ]
    ticker.ticks = [TickData(T, 48, 4.2, 1)]
    ticker.ask = float("nan")  # no bid/ask tick and an unknown side: no quote row
    assert option_rows(OSI, ticker)[1] == []


def test_feed_maps_ticker_updates_into_engine_rows():
    cfg = Config()
    cfg.ibkr.options = [OSI]
    feed = IbkrFeed(cfg, environ={})
    stock = Stock("SPY", "SMART", "USD")
    last = Ticker(contract=stock)
    quote = Ticker(contract=stock)
    opt = Ticker(contract=option_contract(OSI, "SMART", "USD"), time=T)
    opt.bid, opt.ask, opt.bidSize, opt.askSize = 4.1, 4.2, 1, 5
    feed._tickers = {
        id(last): ("AllLast", "SPY"),
        id(quote): ("BidAsk", "SPY"),
        id(opt): ("option", OSI),
    }
    same = TickByTickAllLast(1, T, 600.12, 100, TickAttribLast(), "NYSE", "")
    last.tickByTicks = [same, same]  # IB times are whole seconds: twin prints are real
    quote.tickByTicks = [TickByTickBidAsk(T, 600.1, 600.12, 1, 2, TickAttribBidAsk())]
    opt.ticks = [TickData(T, 48, 4.2, 3), TickData(T, 2, 4.2, 5)]
    feed._on_tickers({last, quote, opt})
    batch = feed.take_batch()
    assert batch is not None
    assert {s: f.height for s, f in batch.frames.items()} == {
        ev.OPTIONS_PRINTS: 1,
        ev.OPTIONS_NBBO: 1,
        ev.EQUITIES_PRINTS: 2,
        ev.EQUITIES_QUOTES: 1,
    }
    engine = Engine(cfg, feed)
    engine.ingest(batch)
    assert engine.stats().rejected_total == 0


def test_permission_error_codes_give_a_fix():
    feed = IbkrFeed(Config(), environ={})
    feed.on_ib_error(354, "Requested market data is not subscribed.", "SPY")
    assert feed.state.status == FeedStatus.SUBSCRIPTION_LIMIT
    assert "354" in feed.state.detail and "market_data_type = 3" in feed.state.detail
    feed.on_ib_error(10089, "Requested market data requires additional subscription", "AAPL")
    assert "10089" in feed.state.detail and feed.problems["AAPL"]


def test_malformed_osi_in_config_is_named():
    cfg = Config()
    cfg.ibkr.options = ["SPY 600C"]
    with pytest.raises(ValueError, match="SPY 600C"):
        IbkrFeed(cfg, environ={})


async def test_tws_not_running_is_a_clear_retried_status():
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = Config()
    cfg.ibkr.port = port
    cfg.ibkr.equities = ["SPY"]
    feed = IbkrFeed(cfg, environ={}, backoff=Backoff(0.01, 0.02), rng=random.Random(3), flush_ms=10)
    seen: list[str] = []

    async def watch() -> None:
        while len(seen) < 3:
            await asyncio.sleep(0.01)
            if feed.state.status == FeedStatus.RECONNECTING and feed.state.detail not in seen:
                seen.append(feed.state.detail)
        feed.close()

    async def drain() -> None:
        async for _ in feed.batches():
            pass

    await asyncio.wait_for(asyncio.gather(drain(), watch()), 20)
    assert f"TWS/IB Gateway not reachable at 127.0.0.1:{port}" in seen[0]
    assert "attempt 1" in seen[0] and "attempt 3" in seen[2]
    assert feed.state.status == FeedStatus.STOPPED
