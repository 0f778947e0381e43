"""Alpaca market data through alpaca-py: option and equity trades and quotes.

alpaca-py's streams do their own reconnecting and swallow vendor errors into log
lines, which would hide ``auth failed`` or a subscription limit from the status bar.
So this adapter uses the stream objects for what they are good at - alpaca-py's own
connect and auth handshake (``_start_ws``), its subscribe message, its msgpack wire
decoding and its ``_cast`` into ``Trade`` / ``Quote`` models - and runs the receive
loop itself inside :class:`LiveFeed` (one reconnect policy, gaps, de-dup for every
feed).  Only the websocket endpoint differs in tests (a loopback server speaking the
recorded protocol).

Contracts are chosen from the option chain (REST, alpaca-py models) around spot
(engine/ingest/contracts.py) and chosen again, in event time, when spot moves or the
New York day rolls.  Open interest comes from the Trading API's option contracts
endpoint when the keys can read it, and is handed to the flow engine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import polars as pl

from islandflow_tui.config import Config
from islandflow_tui.engine import credentials
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.ingest import alpaca_codes as codes
from islandflow_tui.engine.ingest.base import FeedStatus
from islandflow_tui.engine.ingest.contracts import (
    ChainEntry,
    Reselector,
    SelectionKnobs,
    ny_date,
    occ_to_osi,
    parse_occ,
    select_contracts,
)
from islandflow_tui.engine.ingest.live import FeedFatal, FeedRetry, LiveFeed, route_vendor_logs

log = logging.getLogger("islandflow.feed.alpaca")

#: Alpaca stream error codes (docs: "Real-time stock/option data", errors)
AUTH_FAILED, SYMBOL_LIMIT, CONNECTION_LIMIT, INSUFFICIENT, INVALID_ACTION = (
    402,
    405,
    406,
    409,
    410,
)
_ERROR_TEXT = {
    "auth failed": 402,
    "auth timeout": 404,
    "not authenticated": 401,
    "symbol limit exceeded": 405,
    "connection limit exceeded": 406,
    "slow client": 407,
    "insufficient subscription": 409,
}


def stream_error(code: int | None, text: str, *, feed: str) -> Exception:
    """The LiveFeed exception (and so the status) for an Alpaca stream error."""
    if code is None:
        code = next((c for t, c in _ERROR_TEXT.items() if t in text.lower()), None)
    where = f"{text} ({code})" if code else text
    if code == AUTH_FAILED:
        return FeedFatal(
            FeedStatus.AUTH_FAILED,
            f"{where}: check ALPACA_API_KEY / ALPACA_SECRET_KEY (islandflow doctor)",
        )
    if code == SYMBOL_LIMIT:
        return FeedFatal(
            FeedStatus.SUBSCRIPTION_LIMIT, f"{where}: lower alpaca.max_contracts for your plan"
        )
    if code == INSUFFICIENT:
        return FeedFatal(
            FeedStatus.SUBSCRIPTION_LIMIT,
            f"{where}: the {feed} feed needs a paid data plan "
            "(use alpaca.options_feed = indicative / alpaca.equities_feed = iex)",
        )
    if code == INVALID_ACTION:
        return FeedFatal(FeedStatus.FAILED, f"{where}: the {feed} feed refused the subscription")
    if code == CONNECTION_LIMIT:
        return FeedRetry(
            FeedStatus.SUBSCRIPTION_LIMIT,
            f"{where}: another client is using these keys' stream connection",
        )
    return FeedRetry(FeedStatus.RECONNECTING, where)


def _ns(msg: Mapping[str, Any]) -> int:
    """Event time from the wire (msgpack Timestamp keeps nanoseconds; datetime does not)."""
    t = msg.get("t")
    to_nano = getattr(t, "to_unix_nano", None)
    if callable(to_nano):
        return int(to_nano())
    ts = getattr(t, "timestamp", None)
    if callable(ts):
        return round(ts() * 1e9)
    raise ValueError(f"message without a timestamp: {msg.get('T')} {msg.get('S')}")


class AlpacaFeed(LiveFeed):
    """Options (indicative|opra) and equities (iex|sip) from Alpaca (module docstring)."""

    name = "alpaca"

    def __init__(
        self,
        cfg: Config,
        *,
        environ: Mapping[str, str] | None = None,
        rest_session: Any = None,
        today: date | None = None,
        **live: Any,
    ) -> None:
        live.setdefault("lateness_ms", cfg.feed.allowed_lateness_ms)
        super().__init__(**live)
        route_vendor_logs("alpaca")
        route_vendor_logs("websockets", level=logging.WARNING)
        self.cfg = cfg
        self.acfg = cfg.alpaca
        self.creds = credentials.alpaca(cfg, environ)
        self.rest_session = rest_session  # a requests.Session stand-in (tests replace HTTP)
        self.knobs = SelectionKnobs(
            self.acfg.strikes_per_side,
            self.acfg.max_dte_days,
            self.acfg.moneyness_pct,
            self.acfg.moneyness_fallback_pct,
            self.acfg.max_contracts,
        )
        self.underlyings = [u.strip().upper() for u in self.acfg.underlyings if u.strip()]
        self.spots: dict[str, float] = {}
        self.selection: list[str] = []
        self.subscribed: set[str] = set()
        self.reselector = Reselector(self.acfg.reselect_move_pct)
        self.selections = 0
        self._today = today
        self._option_stream: Any = None
        self._stock_stream: Any = None
        self._reselect_task: asyncio.Task[None] | None = None
        self._pending_oi: pl.DataFrame | None = None

    @property
    def label(self) -> str:
        parts = []
        if self.acfg.options:
            parts.append(self.acfg.options_feed)
        if self.acfg.equities:
            parts.append(self.acfg.equities_feed)
        return "alpaca/" + "+".join(parts)

    # -- REST (alpaca-py clients; tests swap only their HTTP session) -------------------
    def _rest(self, kind: str) -> Any:
        key, secret = self.creds.api_key.reveal(), self.creds.secret_key.reveal()
        url = self.acfg.rest_url or None
        if kind == "option":
            from alpaca.data.historical.option import OptionHistoricalDataClient

            client = OptionHistoricalDataClient(key, secret, url_override=url)
        elif kind == "stock":
            from alpaca.data.historical.stock import StockHistoricalDataClient

            client = StockHistoricalDataClient(key, secret, url_override=url)
        else:
            from alpaca.trading.client import TradingClient

            client = TradingClient(key, secret, paper=self.acfg.paper, url_override=url)
        if self.rest_session is not None:
            client._session = self.rest_session
        return client

    def fetch_spots(self) -> dict[str, float]:
        from alpaca.data.enums import DataFeed
        from alpaca.data.requests import StockLatestTradeRequest

        req = StockLatestTradeRequest(
            symbol_or_symbols=self.underlyings, feed=DataFeed(self.acfg.equities_feed)
        )
        trades = self._rest("stock").get_stock_latest_trade(req)
        return {s: float(t.price) for s, t in trades.items() if t.price and t.price > 0}

    def fetch_chain(self, underlying: str, spot: float, today: date) -> list[ChainEntry]:
        from alpaca.data.enums import OptionsFeed
        from alpaca.data.requests import OptionChainRequest

        band = self.knobs.moneyness_fallback_pct * spot
        req = OptionChainRequest(
            underlying_symbol=underlying,
            feed=OptionsFeed(self.acfg.options_feed),
            expiration_date_gte=today,
            expiration_date_lte=today + timedelta(days=self.knobs.max_dte_days),
            strike_price_gte=round(spot - band, 2),
            strike_price_lte=round(spot + band, 2),
        )
        snapshots = self._rest("option").get_option_chain(req)
        out = []
        for symbol in snapshots:
            try:
                out.append(parse_occ(symbol))
            except ValueError:
                log.warning("option chain: skipped malformed symbol %r", symbol)
        return out

    def fetch_open_interest(self, underlying: str, today: date) -> pl.DataFrame | None:
        """OI of the underlying's contracts (Trading API); None if the keys cannot read it."""
        from alpaca.trading.requests import GetOptionContractsRequest

        req = GetOptionContractsRequest(
            underlying_symbols=[underlying],
            expiration_date_gte=today,
            expiration_date_lte=today + timedelta(days=self.knobs.max_dte_days),
            limit=10_000,
        )
        resp = self._rest("trading").get_option_contracts(req)
        rows = [
            {
                "symbol": occ_to_osi(c.symbol),
                "open_interest": int(c.open_interest),
                "as_of": c.open_interest_date,
            }
            for c in getattr(resp, "option_contracts", None) or []
            if c.open_interest is not None
        ]
        if not rows:
            return None
        return pl.DataFrame(
            rows, schema={"symbol": pl.String, "open_interest": pl.Int64, "as_of": pl.Date}
        )

    def choose(self, today: date) -> list[str]:
        """Fetch chains for the known spots and select (blocking: run in a thread)."""
        chains = {}
        for u in self.underlyings:
            spot = self.spots.get(u, 0.0)
            if spot > 0:
                chains[u] = self.fetch_chain(u, spot, today)
        selection = select_contracts(chains, self.spots, today, self.knobs)
        oi_frames = []
        for u in chains:
            try:
                frame = self.fetch_open_interest(u, today)
            except Exception as exc:  # OI is optional: flow works without it
                log.info("open interest for %s unavailable: %s", u, type(exc).__name__)
                continue
            if frame is not None:
                oi_frames.append(frame)
        if oi_frames:
            self._pending_oi = pl.concat(oi_frames)
        return selection

    # -- the session ------------------------------------------------------------------
    async def session(self) -> None:
        key, secret = self.creds.api_key.reveal(), self.creds.secret_key.reveal()
        tasks = []
        if self.acfg.options:
            if not self.selection:
                await self._initial_selection()
            from alpaca.data.enums import OptionsFeed
            from alpaca.data.live.option import OptionDataStream

            self._option_stream = OptionDataStream(
                key,
                secret,
                feed=OptionsFeed(self.acfg.options_feed),
                url_override=self.acfg.options_url or None,
            )
            tasks.append(self._run_stream(self._option_stream, "options", self.selection))
        if self.acfg.equities:
            from alpaca.data.enums import DataFeed
            from alpaca.data.live.stock import StockDataStream

            self._stock_stream = StockDataStream(
                key,
                secret,
                feed=DataFeed(self.acfg.equities_feed),
                url_override=self.acfg.stocks_url or None,
            )
            tasks.append(self._run_stream(self._stock_stream, "equities", self.underlyings))
        if not tasks:
            raise FeedFatal(FeedStatus.FAILED, "alpaca.options and alpaca.equities are both off")
        self._live_streams = 0
        self._want_streams = len(tasks)
        try:
            async with asyncio.TaskGroup() as group:
                for coro in tasks:
                    group.create_task(coro)
        except BaseExceptionGroup as group_exc:  # one stream's loss ends the session
            errors = list(group_exc.exceptions)
            fatal = [e for e in errors if isinstance(e, FeedFatal)]
            raise (fatal or errors)[0] from None

    async def _initial_selection(self) -> None:
        self.set_state(FeedStatus.CONNECTING, "selecting contracts")
        today = self._today or ny_date(time.time_ns())
        try:
            self.spots.update(await asyncio.to_thread(self.fetch_spots))
            self.selection = await asyncio.to_thread(self.choose, today)
        except Exception as exc:
            text = str(exc)
            status = getattr(exc, "status_code", None)
            if status in (401, 403) or "forbidden" in text.lower():
                raise FeedFatal(
                    FeedStatus.AUTH_FAILED,
                    f"REST refused the keys ({type(exc).__name__}): check ALPACA_API_KEY",
                ) from None
            raise
        self.reselector.selected(self.spots, today)
        self.selections += 1
        log.info("selected %d option contracts", len(self.selection))

    async def _run_stream(self, stream: Any, kind: str, symbols: list[str]) -> None:
        import msgpack

        feed = self.acfg.options_feed if kind == "options" else self.acfg.equities_feed
        try:
            await stream._start_ws()  # alpaca-py's connect + auth handshake
        except ValueError as exc:
            raise stream_error(None, str(exc), feed=feed) from None
        handler = self._noop
        if symbols:
            stream._subscribe(handler, tuple(symbols), stream._handlers["trades"])
            stream._subscribe(handler, tuple(symbols), stream._handlers["quotes"])
            await stream._send_subscribe_msg()
            if kind == "options":
                self.subscribed = set(symbols)
        else:
            self._stream_live(kind, 0)
        while not self.closed:
            raw = await stream._ws.recv()
            for msg in msgpack.unpackb(raw):
                self._handle(stream, kind, feed, msg)

    @staticmethod
    async def _noop(_: Any) -> None:  # alpaca-py wants a coroutine handler per symbol
        return None

    def _stream_live(self, kind: str, n: int) -> None:
        self._live_streams += 1
        if self._live_streams >= self._want_streams:
            self.mark_live(f"{len(self.subscribed)} contracts" if self.acfg.options else "")
        log.info("alpaca %s stream subscribed to %d symbols", kind, n)

    def _handle(self, stream: Any, kind: str, feed: str, msg: dict[str, Any]) -> None:
        t = msg.get("T")
        if t == "error":
            raise stream_error(msg.get("code"), str(msg.get("msg", "")), feed=feed)
        if t == "subscription":
            if self.state.status != FeedStatus.LIVE:
                self._stream_live(kind, len(msg.get("trades", []) or []))
            return
        if t not in ("t", "q") or "S" not in msg:
            return  # bars, statuses, corrections...: not streamed here
        try:
            ts = _ns(msg)
            model = stream._cast(msg)  # alpaca-py's own parsing into Trade / Quote
            if kind == "options":
                self._option_row(t, ts, model)
            else:
                self._equity_row(t, ts, model)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # pydantic's ValidationError is a ValueError: a malformed message is
            # counted and named, the stream goes on
            stream_name = {
                ("options", "t"): ev.OPTIONS_PRINTS,
                ("options", "q"): ev.OPTIONS_NBBO,
                ("equities", "t"): ev.EQUITIES_PRINTS,
            }.get((kind, t), ev.EQUITIES_QUOTES)
            first = str(exc).splitlines()[0] if str(exc) else ""
            self.reject(stream_name, "unparsed", f"{msg.get('S')}: {type(exc).__name__} {first}")

    def _option_row(self, t: str, ts: int, m: Any) -> None:
        symbol = occ_to_osi(m.symbol)
        if t == "t":
            conditions, flags = codes.option_flags(m.conditions)
            exchange = codes.option_venue(m.exchange)
            row = {
                "ts": ts,
                "symbol": symbol,
                "price": float(m.price),
                "size": int(m.size),
                "exchange": exchange,
                "conditions": conditions,
                "flags": flags,
            }
            key = ("OT", symbol, ts, row["price"], row["size"], exchange, conditions)
            if self.emit(ev.OPTIONS_PRINTS, row, key):
                self._observe_day(ts)
        else:
            row = _quote_row(ts, symbol, m)
            self.emit(ev.OPTIONS_NBBO, row, ("OQ", *row.values()))

    def _equity_row(self, t: str, ts: int, m: Any) -> None:
        if t == "t":
            venue, off = codes.equity_venue(m.exchange)
            conditions, flags = codes.equity_flags(m.conditions)
            row = {
                "ts": ts,
                "symbol": m.symbol,
                "price": float(m.price),
                "size": int(m.size),
                "venue": venue,
                "off_exchange": off,
                "conditions": conditions,
                "flags": flags,
            }
            key = ("ET", m.symbol, ts, m.id) if m.id is not None else ("ET", *row.values())
            if self.emit(ev.EQUITIES_PRINTS, row, key):
                self._observe_spot(m.symbol, row["price"], ts)
        else:
            row = _quote_row(ts, m.symbol, m)
            self.emit(ev.EQUITIES_QUOTES, row, ("EQ", *row.values()))

    # -- re-selection (event time) ---------------------------------------------------
    def _observe_spot(self, underlying: str, price: float, ts: int) -> None:
        if price <= 0 or underlying not in self.underlyings:
            return
        self.spots[underlying] = price
        if not self.acfg.options or self._reselect_task is not None:
            return
        if self.reselector.observe(underlying, price, ts):
            day = ny_date(ts)
            self._reselect_task = asyncio.get_running_loop().create_task(self._reselect(day))

    def _observe_day(self, ts: int) -> None:
        """Option prints roll the day too (an options-only feed has no equity prints)."""
        if self._reselect_task is None and self.reselector.day_rolled(ts):
            day = ny_date(ts)
            self._reselect_task = asyncio.get_running_loop().create_task(self._reselect(day))

    async def _reselect(self, day: date) -> None:
        try:
            spots = dict(self.spots)
            selection = await asyncio.to_thread(self.choose, day)
            self.reselector.selected(spots, day)
            self.selection = selection
            self.selections += 1
            await self._apply_selection(selection)
        except Exception as exc:  # keep streaming the old selection; try again later
            log.warning("re-selecting contracts failed: %s", type(exc).__name__)
        finally:
            self._reselect_task = None

    async def _apply_selection(self, selection: list[str]) -> None:
        stream = self._option_stream
        if stream is None or stream._ws is None:
            return
        new, old = set(selection), set(self.subscribed)
        gone = sorted(old - new)
        added = sorted(new - old)
        if gone:
            for channel in ("trades", "quotes"):
                await stream._send_unsubscribe_msg(channel, gone)
                for s in gone:
                    stream._handlers[channel].pop(s, None)
        if added:
            stream._subscribe(self._noop, tuple(added), stream._handlers["trades"])
            stream._subscribe(self._noop, tuple(added), stream._handlers["quotes"])
            await stream._send_subscribe_msg()
        self.subscribed = new
        log.info("re-selected contracts: +%d -%d", len(added), len(gone))

    # -- LiveFeed hooks ---------------------------------------------------------------------
    def take_batch(self) -> ev.FeedBatch | None:
        self._apply_open_interest()
        return super().take_batch()

    def _apply_open_interest(self) -> None:
        """Hand fetched OI to the flow engine (on the engine thread, between batches)."""
        frame, self._pending_oi = self._pending_oi, None
        engine = self._engine
        if frame is None or engine is None:
            return
        current = getattr(engine.compute.packets, "open_interest", None)
        if current is not None and current.height:
            frame = pl.concat([current.select(frame.columns), frame], how="vertical_relaxed")
        engine.compute.set_open_interest(frame.unique(["symbol", "as_of"], keep="last"))

    async def on_disconnect(self) -> None:
        task = self._reselect_task
        if task is not None:
            task.cancel()
            self._reselect_task = None
        for stream in (self._option_stream, self._stock_stream):
            if stream is not None:
                try:
                    await stream.close()
                except Exception:
                    log.debug("closing an alpaca stream failed", exc_info=True)


def _quote_row(ts: int, symbol: str, m: Any) -> dict[str, Any]:
    return {
        "ts": ts,
        "symbol": symbol,
        "bid": float(m.bid_price),
        "ask": float(m.ask_price),
        "bid_size": int(m.bid_size),
        "ask_size": int(m.ask_size),
    }
