"""Alpaca adapter: recorded protocol messages through alpaca-py's own streams and models.

Only the network is replaced: a loopback websocket server speaks Alpaca's stream
protocol in msgpack (options, as documented; stocks from alpaca-py's recorded
messages) and a requests transport answers REST calls with alpaca-py's recorded
bodies.  Everything else - connect/auth handshake, subscribe message, msgpack
decoding, ``_cast`` into Trade/Quote, the REST models - is alpaca-py's code.
"""

from __future__ import annotations

import asyncio
import random
from datetime import date

import polars as pl
import pytest

from islandflow_tui.config import Config, Secret
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.alpaca_feed import AlpacaFeed
from islandflow_tui.engine.ingest.base import Backoff, FeedStatus
from tests.alpaca_fakes import (
    KEY,
    SECRET,
    FakeAlpacaStream,
    Script,
    option_quote,
    option_trade,
    recorded,
    rest_session,
    sample_ws,
    ts,
)

OCC = "AAPL240503P00155000"  # the contract in alpaca-py's recorded option chain
OSI = "AAPL  240503P00155000"
T0 = 1714053600.0  # 2024-04-25 14:00 UTC
TODAY = date(2024, 4, 25)

OI_BODY = {
    "option_contracts": [
        {
            "id": "6e58f870-fe73-4583-81e4-b9a37892c36f",
            "symbol": OCC,
            "name": "AAPL May 03 2024 155 Put",
            "status": "active",
            "tradable": True,
            "expiration_date": "2024-05-03",
            "root_symbol": "AAPL",
            "underlying_symbol": "AAPL",
            "underlying_asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
            "type": "put",
            "style": "american",
            "strike_price": "155",
            "size": "100",
            "open_interest": "2315",
            "open_interest_date": "2024-04-24",
            "close_price": "0.34",
            "close_price_date": "2024-04-24",
        }
    ],
    "next_page_token": None,
}


def routes() -> dict:
    return {
        "/v2/stocks/trades/latest": recorded(
            "historical_stock_data__test_get_latest_trade__0.json"
        ),
        "/v1beta1/options/snapshots/AAPL": recorded(
            "historical_option_data__test_get_option_chain__0.json"
        ),
        "/v2/options/contracts": OI_BODY,
    }


def make_cfg(options_url: str = "", stocks_url: str = "") -> Config:
    cfg = Config()
    cfg.alpaca.api_key = Secret(KEY)
    cfg.alpaca.secret_key = Secret(SECRET)
    cfg.alpaca.underlyings = ["AAPL"]
    cfg.alpaca.rest_url = "https://alpaca.test"
    cfg.alpaca.options = bool(options_url)
    cfg.alpaca.equities = bool(stocks_url)
    cfg.alpaca.options_url = options_url
    cfg.alpaca.stocks_url = stocks_url
    return cfg


def make_feed(cfg: Config, **kw) -> tuple[AlpacaFeed, object]:
    session, rest = rest_session(routes())
    feed = AlpacaFeed(
        cfg,
        environ={},
        rest_session=session,
        today=TODAY,
        backoff=Backoff(initial_s=0.01, max_s=0.05),
        rng=random.Random(1),
        flush_ms=20,
        **kw,
    )
    return feed, rest


async def run(feed: AlpacaFeed, engine: Engine | None, until, timeout: float = 10.0) -> list:
    """Drive the feed (and engine) until ``until(batches)`` or the feed ends."""
    batches: list[ev.FeedBatch] = []

    async def go() -> None:
        async for batch in feed.batches():
            batches.append(batch)
            if engine is not None:
                engine.ingest(batch)

    async def watch() -> None:  # the condition may turn true between batches
        while not until(batches):
            await asyncio.sleep(0.005)
        feed.close()

    runner, watcher = asyncio.create_task(go()), asyncio.create_task(watch())
    try:
        await asyncio.wait_for(asyncio.shield(runner), timeout)
    finally:
        watcher.cancel()
    return batches


def frames(batches: list, stream: str) -> pl.DataFrame:
    parts = [b.frames[stream] for b in batches if stream in b.frames]
    return pl.concat(parts) if parts else pl.DataFrame()


def count(batches: list, stream: str) -> int:
    return sum(b.frames[stream].height for b in batches if stream in b.frames)


async def test_options_and_equities_end_to_end():
    opt = Script(
        batches=[
            [
                [option_quote(OCC, ts(T0), 0.32, 0.35)],
                [
                    option_trade(OCC, ts(T0 + 0.5), 0.35, 20, "C", "S"),
                    option_trade(OCC, ts(T0 + 0.6), 0.34, 5, "D", "f"),
                ],
            ]
        ]
    )
    # near the recorded spot (161.30), so the spot does not move the selection here
    trade = dict(sample_ws("websockets__test_cast__ws1.json", ts(T0 + 0.1)), p=161.31)
    dark = dict(trade, x="D", i=6143, s=5000, c=["@"], t=ts(T0 + 0.2))
    quote = dict(sample_ws("websockets__test_cast__ws2.json", ts(T0 + 0.05)), S="AAPL")
    stk = Script(batches=[[[quote], [trade, dark]]])
    async with FakeAlpacaStream(opt) as o, FakeAlpacaStream(stk) as s:
        cfg = make_cfg(o.url, s.url)
        feed, rest = make_feed(cfg)
        engine = Engine(cfg, feed)

        def done(b: list) -> bool:
            return count(b, ev.OPTIONS_PRINTS) >= 2 and count(b, ev.EQUITIES_PRINTS) >= 2

        batches = await run(feed, engine, done)
    # the handshake alpaca-py sent: auth with the keys, then the selected contracts
    assert o.received[0] == {"action": "auth", "key": KEY, "secret": SECRET}
    assert o.received[1]["trades"] == [OCC] and o.received[1]["quotes"] == [OCC]
    assert s.received[1]["trades"] == ["AAPL"]
    prints = frames(batches, ev.OPTIONS_PRINTS)
    assert prints["symbol"].to_list() == [OSI, OSI]
    assert prints["price"].to_list() == [0.35, 0.34]
    assert prints["exchange"].to_list() == ["C", "D"]  # options: D is MIAX Emerald
    assert prints["flags"].to_list() == [int(ev.Cond.ISO), int(ev.Cond.MULTI_LEG)]
    assert prints["ts"][0] == int(T0) * 10**9 + 500_000_000  # ns from the wire
    nbbo = frames(batches, ev.OPTIONS_NBBO)
    assert nbbo.row(0, named=True)["bid"] == 0.32 and nbbo.row(0, named=True)["ask_size"] == 12
    eq = frames(batches, ev.EQUITIES_PRINTS)
    assert eq["venue"].to_list() == ["V", "D"]
    assert eq["off_exchange"].to_list() == [False, True]
    assert eq["conditions"][0] == "@ I" and eq["flags"][0] == int(ev.Cond.ODD_LOT)
    assert eq["price"][0] == 161.31 and eq["size"][1] == 5000
    eqq = frames(batches, ev.EQUITIES_QUOTES)
    assert eqq.row(0, named=True)["bid"] == 25.41
    # through the whole engine: accepted, sequenced, nothing rejected
    stats = engine.stats()
    assert stats.rejected_total == 0
    assert stats.totals[ev.OPTIONS_PRINTS] == 2 and stats.totals[ev.EQUITIES_PRINTS] == 2
    assert feed.state.status == FeedStatus.STOPPED
    # open interest from the contracts endpoint reached the flow engine
    oi = engine.compute.packets.open_interest
    assert oi is not None and oi.row(0, named=True)["open_interest"] == 2315
    assert oi["symbol"].to_list() == [OSI]
    assert any("/v2/options/contracts" in c for c in rest.calls)


async def test_auth_failure_stops_without_retry():
    async with FakeAlpacaStream(Script()) as s:
        cfg = make_cfg(stocks_url=s.url)
        cfg.alpaca.secret_key = Secret("wrong")
        feed, _ = make_feed(cfg)
        await run(feed, None, lambda b: False)
        await asyncio.sleep(0.05)
    assert feed.state.status == FeedStatus.AUTH_FAILED
    assert "402" in feed.state.detail and "ALPACA_API_KEY" in feed.state.detail
    assert s.connections == 1  # bad keys are not hammered
    assert "wrong" not in feed.state.detail


@pytest.mark.parametrize(
    ("code", "msg", "needle"),
    [
        (405, "symbol limit exceeded", "max_contracts"),
        (409, "insufficient subscription", "paid data plan"),
    ],
)
async def test_subscription_limit_errors(code, msg, needle):
    script = Script(subscribe_reply=lambda sub: [{"T": "error", "code": code, "msg": msg}])
    async with FakeAlpacaStream(script) as s:
        feed, _ = make_feed(make_cfg(stocks_url=s.url))
        await run(feed, None, lambda b: False)
    assert feed.state.status == FeedStatus.SUBSCRIPTION_LIMIT
    assert str(code) in feed.state.detail and needle in feed.state.detail
    assert s.connections == 1


async def test_connection_limit_is_retried_with_its_status():
    replies = iter(
        [
            [{"T": "error", "code": 406, "msg": "connection limit exceeded"}],
            [{"T": "success", "msg": "authenticated"}],
        ]
    )
    script = Script(batches=[[], [[sample_ws("websockets__test_cast__ws1.json", ts(T0))]]])

    class Fake(FakeAlpacaStream):
        async def _handle(self, ws):
            self.script.auth_reply = next(replies)
            await super()._handle(ws)

    seen: list[FeedStatus] = []
    async with Fake(script) as s:
        feed, _ = make_feed(make_cfg(stocks_url=s.url))
        orig = feed.set_state

        def spy(status, detail=""):
            seen.append(status)
            orig(status, detail)

        feed.set_state = spy  # type: ignore[method-assign]
        batches = await run(feed, None, lambda b: count(b, ev.EQUITIES_PRINTS) >= 1)
    assert FeedStatus.SUBSCRIPTION_LIMIT in seen
    assert seen.index(FeedStatus.SUBSCRIPTION_LIMIT) < seen.index(FeedStatus.LIVE)
    assert s.connections == 2 and count(batches, ev.EQUITIES_PRINTS) == 1


async def test_drop_reconnect_no_duplicate_and_gap_shown():
    base = sample_ws("websockets__test_cast__ws1.json", ts(T0))
    a = dict(base, i=1, t=ts(T0 + 1))
    b = dict(base, i=2, t=ts(T0 + 2))
    c = dict(base, i=3, t=ts(T0 + 9))
    script = Script(batches=[[[a], [b]], [[b], [c]]], drop_after=[True, False])
    async with FakeAlpacaStream(script) as s:
        cfg = make_cfg(stocks_url=s.url)
        feed, _ = make_feed(cfg)
        engine = Engine(cfg, feed)
        batches = await run(feed, engine, lambda bs: count(bs, ev.EQUITIES_PRINTS) >= 3)
    assert s.connections == 2
    got = frames(batches, ev.EQUITIES_PRINTS)
    assert got["ts"].to_list() == [int((T0 + k) * 1e9) for k in (1, 2, 9)]
    assert feed.duplicates == 1  # the resent trade id 2 was dropped
    assert engine.seq[ev.EQUITIES_PRINTS] == 3  # seq 0, 1, 2: no repeat, no hole
    gaps = [bt.gap for bt in batches if bt.gap is not None]
    assert len(gaps) == 1
    assert (gaps[0].start_ts, gaps[0].end_ts) == (int((T0 + 2) * 1e9), int((T0 + 9) * 1e9))
    assert "reconnected after 1 attempt" in gaps[0].reason
    stats = engine.stats()
    assert stats.gaps == 1 and "(7.0s)" in stats.last_gap
    assert stats.rejected_total == 0


async def test_reselects_when_the_day_rolls_in_event_time():
    trade = sample_ws("websockets__test_cast__ws1.json", ts(T0))
    next_day = dict(trade, i=99, p=161.3, t=ts(T0 + 86_400))
    opt = Script(batches=[[[option_trade(OCC, ts(T0), 0.35, 1, "C", "I")]]])
    stk = Script(batches=[[[dict(trade, p=161.3)], [], [next_day]]])
    async with FakeAlpacaStream(opt) as o, FakeAlpacaStream(stk) as s:
        feed, rest = make_feed(make_cfg(o.url, s.url))

        def done(b: list) -> bool:
            return feed.selections >= 2

        await run(feed, None, done)
    chain_calls = [c for c in rest.calls if "/options/snapshots/AAPL" in c]
    assert len(chain_calls) == 2
    assert "expiration_date_gte=2024-04-26" in chain_calls[1]  # the new day's chain
    assert feed.reselector.day == date(2024, 4, 26)


def test_secrets_never_in_repr_or_label():
    feed, _ = make_feed(make_cfg(stocks_url="ws://127.0.0.1:1"))
    text = repr(feed.creds) + repr(feed.cfg) + feed.label + str(feed.cfg.alpaca)
    assert KEY not in text and SECRET not in text


async def test_options_only_feed_rolls_the_day_from_option_prints():
    opt = Script(
        batches=[
            [
                [option_trade(OCC, ts(T0), 0.35, 1, "C", "I")],
                [option_trade(OCC, ts(T0 + 86_400), 0.36, 1, "C", "I")],
            ]
        ]
    )
    async with FakeAlpacaStream(opt) as o:
        feed, rest = make_feed(make_cfg(options_url=o.url))
        await run(feed, None, lambda b: feed.selections >= 2)
    assert feed.reselector.day == date(2024, 4, 26)
    assert sum("/options/snapshots/AAPL" in c for c in rest.calls) == 2


async def test_bad_messages_are_counted_and_the_stream_goes_on():
    base = dict(sample_ws("websockets__test_cast__ws1.json", ts(T0)), p=161.3)
    good1 = dict(base, i=1, t=ts(T0 + 1))
    no_price = {k: v for k, v in dict(base, i=2, t=ts(T0 + 2)).items() if k != "p"}
    nan_price = dict(base, i=3, p=float("nan"), t=ts(T0 + 3))
    zero_size = dict(base, i=4, s=0, t=ts(T0 + 4))
    good2 = dict(base, i=5, t=ts(T0 + 5))
    bad_osi = option_trade("XYZ", ts(T0 + 1), 1.0, 1, "C", "I")
    stk = Script(batches=[[[good1, no_price], [nan_price, zero_size, good2]]])
    opt = Script(batches=[[[bad_osi, option_trade(OCC, ts(T0 + 2), 0.35, 2, "C", "I")]]])
    async with FakeAlpacaStream(opt) as o, FakeAlpacaStream(stk) as s:
        cfg = make_cfg(o.url, s.url)
        feed, _ = make_feed(cfg)
        engine = Engine(cfg, feed)
        await run(
            feed,
            engine,
            lambda b: (
                engine.totals[ev.EQUITIES_PRINTS] >= 2 and engine.totals[ev.OPTIONS_PRINTS] >= 1
            ),
        )
    stats = engine.stats()
    assert stats.rejected[ev.EQUITIES_PRINTS] == {"unparsed": 1, "bad_price": 1, "bad_size": 1}
    assert stats.rejected[ev.OPTIONS_PRINTS] == {"invalid_osi": 1}
    assert s.connections == 1 and o.connections == 1  # bad input is not a reason to reconnect
