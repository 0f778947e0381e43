"""Interactive Brokers through TWS / IB Gateway with ib_async.

Equities come tick by tick (``AllLast`` prints, ``BidAsk`` quotes), one event per
print.  **Options have no real-time tick-by-tick at IBKR**: option prints come from
streaming market data with RT Volume (generic tick 233: every reported trade with its
size), and quotes from the streaming bid/ask - IB throttles those updates, so an
option tape from IBKR is coarser than OPRA from Alpaca or Databento.

The mapping functions take ib_async's own objects (``TickByTickAllLast``,
``TickByTickBidAsk``, ``Ticker``) and return engine rows; the session uses
:class:`LiveFeed` for reconnects, gaps and de-dup like every feed.  IB error codes for
missing market-data permissions (354, 10089, 10090, 10168, ...) set the status with a
fix; "connection refused" reads as "TWS/IB Gateway not running".
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import datetime
from typing import Any

from islandflow_tui.config import Config
from islandflow_tui.engine import credentials
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.ingest import alpaca_codes
from islandflow_tui.engine.ingest.base import FeedStatus
from islandflow_tui.engine.ingest.live import FeedRetry, LiveFeed, route_vendor_logs
from islandflow_tui.engine.osi import parse_osi

log = logging.getLogger("islandflow.feed.ibkr")

#: IB's exchange names -> the engine's venue codes (same letters as Alpaca's; see
#: alpaca_codes).  Off-exchange prints are reported by IB as FINRA / ADF / TRF.
IB_EQUITY_VENUES: dict[str, str] = {
    "NYSE": "N",
    "ARCA": "P",
    "NASDAQ": "Q",
    "ISLAND": "Q",
    "BATS": "Z",
    "BYX": "Y",
    "EDGX": "K",
    "EDGEA": "J",
    "IEX": "V",
    "MEMX": "U",
    "PSX": "X",
    "BEX": "B",
    "AMEX": "A",
    "NYSENAT": "C",
    "CHX": "M",
    "LTSE": "L",
    "PEARLEQ": "H",
    "FINRA": "D",
    "ADF": "D",
    "TRF": "D",
}
IB_OPTION_VENUES: dict[str, str] = {
    "AMEX": "A",
    "BOX": "B",
    "CBOE": "C",
    "EMERALD": "D",
    "EDGX": "E",
    "GEMINI": "H",
    "ISE": "I",
    "MERCURY": "J",
    "MIAX": "M",
    "PSE": "N",
    "ARCA": "N",
    "PEARL": "P",
    "NASDAQOM": "Q",
    "SAPPHIRE": "S",
    "NASDAQBX": "T",
    "MEMX": "U",
    "CBOE2": "W",
    "PHLX": "X",
    "BATS": "Z",
}

#: IB error codes about market-data permissions -> what the user should do
PERMISSION_CODES = {
    354: "market data not subscribed",
    10089: "market data needs an additional API subscription",
    10090: "part of the market data is not subscribed",
    10168: "market data not subscribed and delayed data not enabled",
    10186: "market data not subscribed (delayed data available)",
    10197: "no market data during a competing live session",
}
DELAYED_CODES = {10167: "showing delayed market data"}
CONNECTIVITY_LOST, CONNECTIVITY_RESTORED = 1100, (1101, 1102)
RT_VOLUME_TICKS = {48, 77}  # RT Volume, RT Trade Volume
QUOTE_TICKS = {0, 1, 2, 3, 66, 67, 69, 70}


def _ns(t: datetime | None) -> int:
    if t is None:
        raise ValueError("tick without a time")
    return round(t.timestamp() * 1e6) * 1000


def _good(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x >= 0


def equity_print_row(symbol: str, tick: Any) -> dict[str, Any]:
    """A ``TickByTickAllLast`` -> an ``equities.prints`` row."""
    exchange = (tick.exchange or "").upper()
    venue = IB_EQUITY_VENUES.get(exchange, exchange)
    conditions, flags = alpaca_codes.equity_flags(
        [c for c in (tick.specialConditions or "").split() if c]
    )
    return {
        "ts": _ns(tick.time),
        "symbol": symbol,
        "price": float(tick.price),
        "size": int(tick.size),
        "venue": venue,
        "off_exchange": venue == alpaca_codes.OFF_EXCHANGE_CODE,
        "conditions": conditions,
        "flags": flags,
    }


def equity_quote_row(symbol: str, tick: Any) -> dict[str, Any]:
    """A ``TickByTickBidAsk`` -> an ``equities.quotes`` row."""
    return {
        "ts": _ns(tick.time),
        "symbol": symbol,
        "bid": float(tick.bidPrice),
        "ask": float(tick.askPrice),
        "bid_size": int(tick.bidSize),
        "ask_size": int(tick.askSize),
    }


def option_rows(osi: str, ticker: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One streaming update of an option ``Ticker`` -> (prints, quotes) rows.

    Prints are the RT Volume ticks of this update (each a reported trade); a quote
    row is the bid/ask in force when a bid/ask tick came in and both sides are known.
    """
    exchange = (getattr(ticker, "lastExchange", "") or "").upper()
    venue = IB_OPTION_VENUES.get(exchange, exchange)
    prints = [
        {
            "ts": _ns(t.time),
            "symbol": osi,
            "price": float(t.price),
            "size": int(t.size),
            "exchange": venue,
            "conditions": "",
            "flags": 0,
        }
        for t in ticker.ticks
        if t.tickType in RT_VOLUME_TICKS and t.size and t.size > 0
    ]
    quotes = []
    if any(t.tickType in QUOTE_TICKS for t in ticker.ticks):
        bid, ask = ticker.bid, ticker.ask
        if _good(bid) and _good(ask) and ask > 0 and ticker.time is not None:
            quotes.append(
                {
                    "ts": _ns(ticker.time),
                    "symbol": osi,
                    "bid": float(bid),
                    "ask": float(ask),
                    "bid_size": int(ticker.bidSize if _good(ticker.bidSize) else 0),
                    "ask_size": int(ticker.askSize if _good(ticker.askSize) else 0),
                }
            )
    return prints, quotes


def option_contract(osi: str, exchange: str, currency: str) -> Any:
    """An ib_async ``Option`` for an OSI symbol from the config."""
    from ib_async import Option

    c = parse_osi(osi)
    return Option(
        c.root,
        c.expiry.strftime("%Y%m%d"),
        c.strike,
        c.right,
        exchange,
        multiplier="100",
        currency=currency,
    )


def not_running_message(host: str, port: int, exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    return (
        f"TWS/IB Gateway not reachable at {host}:{port} ({reason}): start TWS or IB Gateway, "
        "enable its API (Configure > API > Settings) and check ibkr.port"
    )


class IbkrFeed(LiveFeed):
    """Equities tick by tick and options by streaming data from TWS / IB Gateway."""

    name = "ibkr"

    def __init__(self, cfg: Config, *, environ: Any = None, **live: Any) -> None:
        live.setdefault("lateness_ms", cfg.feed.allowed_lateness_ms)
        super().__init__(**live)
        route_vendor_logs("ib_async")
        self.cfg = cfg
        self.icfg = cfg.ibkr
        self.endpoint = credentials.ibkr(cfg, environ)
        self.options = [s for s in self.icfg.options if s.strip()]
        self.equities = [s.strip().upper() for s in self.icfg.equities if s.strip()]
        for symbol in self.options:
            parse_osi(symbol)  # a malformed OSI symbol in the config fails here, named
        self._ib: Any = None
        self._tickers: dict[int, tuple[str, str]] = {}  # id(ticker) -> (kind, symbol)
        self._seen_ticks: dict[int, int] = {}  # id(ticker) -> tickByTicks already mapped
        self.problems: dict[str, str] = {}  # contract -> permission problem

    @property
    def label(self) -> str:
        return f"ibkr/{self.endpoint.host}:{self.endpoint.port}"

    async def session(self) -> None:
        from ib_async import IB, Stock

        ep = self.endpoint
        ib = IB()
        self._ib = ib
        try:
            await ib.connectAsync(
                ep.host, ep.port, clientId=ep.client_id, timeout=self.icfg.connect_timeout_s
            )
        except (ConnectionRefusedError, OSError) as exc:
            message = not_running_message(ep.host, ep.port, exc)
            raise FeedRetry(FeedStatus.RECONNECTING, message) from None
        except TimeoutError:
            raise FeedRetry(
                FeedStatus.RECONNECTING,
                f"no API handshake from {ep.host}:{ep.port}: is the API enabled and "
                f"client id {ep.client_id} free?",
            ) from None
        lost = asyncio.Event()
        ib.disconnectedEvent += lost.set
        ib.errorEvent += self._on_error
        ib.reqMarketDataType(self.icfg.market_data_type)
        stocks = [Stock(s, self.icfg.exchange, self.icfg.currency) for s in self.equities]
        options = [option_contract(s, self.icfg.exchange, self.icfg.currency) for s in self.options]
        await ib.qualifyContractsAsync(*stocks, *options)
        for symbol, contract in zip(self.equities, stocks, strict=True):
            for kind in ("AllLast", "BidAsk"):
                t = ib.reqTickByTickData(contract, kind, 0, False)
                self._tickers[id(t)] = (kind, symbol)
        for osi, contract in zip(self.options, options, strict=True):
            t = ib.reqMktData(contract, "233", False, False)
            self._tickers[id(t)] = ("option", osi)
        ib.pendingTickersEvent += self._on_tickers
        self.mark_live(f"{len(stocks)} stocks, {len(options)} options")
        stop = asyncio.create_task(self._wait_closed())
        lost_task = asyncio.create_task(lost.wait())
        await asyncio.wait({stop, lost_task}, return_when=asyncio.FIRST_COMPLETED)
        for task in (stop, lost_task):
            task.cancel()
        if self.closed:
            return
        raise ConnectionError("TWS/IB Gateway closed the connection")

    async def _wait_closed(self) -> None:
        while not self.closed:
            await asyncio.sleep(0.1)

    def _on_tickers(self, tickers: Any) -> None:
        for ticker in tickers:
            try:
                self.map_ticker(ticker)
            except (ValueError, TypeError, AttributeError) as exc:  # counted, never fatal
                kind, symbol = self._tickers.get(id(ticker), ("", "?"))
                stream = ev.OPTIONS_PRINTS if kind == "option" else ev.EQUITIES_PRINTS
                self.reject(stream, "unparsed", f"{symbol}: {type(exc).__name__} {exc}")

    def map_ticker(self, ticker: Any) -> None:
        """Emit the rows of one pending ticker (new tick-by-tick events or a streaming update)."""
        kind, symbol = self._tickers.get(id(ticker), ("", ""))
        if kind == "option":
            prints, quotes = option_rows(symbol, ticker)
            # no de-dup keys: IB streams only new ticks after a resubscribe, and its
            # 1-second tick times make identical prints in one second common and real
            for row in prints:
                self.emit(ev.OPTIONS_PRINTS, row)
            for row in quotes:
                self.emit(ev.OPTIONS_NBBO, row)
            return
        ticks = ticker.tickByTicks
        for tick in ticks:
            if kind == "AllLast" and hasattr(tick, "exchange"):
                self.emit(ev.EQUITIES_PRINTS, equity_print_row(symbol, tick))
            elif kind == "BidAsk" and hasattr(tick, "bidPrice"):
                self.emit(ev.EQUITIES_QUOTES, equity_quote_row(symbol, tick))

    def _on_error(self, req_id: int, code: int, text: str, contract: Any = None) -> None:
        what = getattr(contract, "localSymbol", "") or getattr(contract, "symbol", "") or ""
        self.on_ib_error(code, text, what)

    def on_ib_error(self, code: int, text: str, what: str = "") -> None:
        """Turn IB's error codes into the status line (permissions, connectivity)."""
        if code in PERMISSION_CODES:
            self.problems[what or str(code)] = PERMISSION_CODES[code]
            detail = (
                f"{PERMISSION_CODES[code]} ({code}) for {what or 'a contract'}: "
                "subscribe in IBKR Client Portal, or set ibkr.market_data_type = 3 (delayed)"
            )
            log.warning("ibkr: %s: %s", detail, text)
            self.set_state(FeedStatus.SUBSCRIPTION_LIMIT, detail)
        elif code in DELAYED_CODES:
            self.set_state(FeedStatus.LIVE, DELAYED_CODES[code])
        elif code == CONNECTIVITY_LOST:
            self.set_state(FeedStatus.RECONNECTING, f"TWS lost its connection to IB ({code})")
        elif code in CONNECTIVITY_RESTORED:
            self.set_state(FeedStatus.LIVE, "connectivity restored")
        else:
            log.info("ibkr message %s: %s %s", code, what, text)

    async def on_disconnect(self) -> None:
        ib = self._ib
        if ib is not None and ib.isConnected():
            ib.disconnect()
        self._tickers.clear()
