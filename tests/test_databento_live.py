"""``--feed databento`` live: ``databento.Live`` against a loopback gateway.

The gateway is a local asyncio TCP server speaking Databento's live protocol as the
SDK's own client expects it (databento/live/gateway.py, protocol.py): a greeting and
a CRAM challenge as text lines, the client's ``auth=`` line checked against
``cram.get_challenge_response``, ``success=`` reply, subscription lines, then
``start_session`` and DBN bytes: the real live capture from the sample folder, or
OPRA records made with databento_dbn's constructors.  Only the socket is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import databento as db
import databento_dbn as d
import pytest
import zstandard
from databento.common import cram

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.base import FeedStatus
from islandflow_tui.engine.ingest.databento_feed import DatabentoFeed

KEY = "db-LIVEKEYabcdefghijklmnopqrst"
LIVE_CAPTURE = Path("/work/shared/data/databento/LIVE/test_data.live.dbn.zst")
OSI = "AAPL  250221C00250000"
T0 = 1_740_061_800_000_000_000


@dataclass
class Gateway:
    """Serves ``sessions[i]`` (DBN bytes) to the i-th authenticated connection; a session
    that is not the last closes the connection after sending (a dropped feed)."""

    sessions: list[bytes]
    key: str = KEY
    port: int = 0
    auth_lines: list[str] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    connections: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.AbstractServer | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        challenge = secrets.token_hex(16)
        writer.write(b"lsg_version=0.99.0\n" + f"cram={challenge}\n".encode())
        await writer.drain()
        auth = (await reader.readline()).decode()
        self.auth_lines.append(auth)
        fields = dict(kv.split("=", 1) for kv in auth.strip().split("|"))
        if fields.get("auth") != cram.get_challenge_response(challenge, self.key):
            writer.write(b"success=0|error=Authentication failed.\n")
            await writer.drain()
            writer.close()
            return
        n = self.connections
        self.connections += 1
        writer.write(f"success=1|session_id={n + 1}\n".encode())
        await writer.drain()
        while True:
            line = (await reader.readline()).decode()
            if not line or line.startswith("start_session"):
                break
            self.subscriptions.append(line.strip())
        data = self.sessions[min(n, len(self.sessions) - 1)]
        writer.write(data)
        await writer.drain()
        if n < len(self.sessions) - 1:
            writer.close()  # a drop: the client must reconnect
            return
        try:
            await reader.read()  # hold the session open until the client leaves
        finally:
            writer.close()

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop

            async def main() -> None:
                self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
                self.port = self._server.sockets[0].getsockname()[1]
                ready.set()
                await self._server.serve_forever()

            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main())

        threading.Thread(target=run, daemon=True).start()
        assert ready.wait(5)

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)


def _opra_session(start: int, n: int, *, with_mapping: bool = True) -> bytes:
    md = d.Metadata(
        dataset="OPRA.PILLAR",
        start=start,
        stype_in=None,
        stype_out=d.SType.INSTRUMENT_ID,
        schema=None,
    )
    out = [bytes(md)]
    if with_mapping:
        out.append(
            bytes(
                d.SymbolMappingMsg(
                    publisher_id=0,
                    instrument_id=7,
                    ts_event=start,
                    stype_in=d.SType.PARENT,
                    stype_in_symbol="AAPL.OPT",
                    stype_out=d.SType.RAW_SYMBOL,
                    stype_out_symbol=OSI,
                    start_ts=start,
                    end_ts=2**63,
                )
            )
        )
    if with_mapping:
        out.append(
            bytes(
                d.StatMsg(
                    publisher_id=20,
                    instrument_id=7,
                    ts_event=start,
                    ts_recv=start + 10,
                    ts_ref=2**64 - 1,
                    price=d.UNDEF_PRICE,
                    quantity=4321,
                    stat_type=d.StatType.OPEN_INTEREST,
                    update_action=d.StatUpdateAction.NEW,
                )
            )
        )
    for i in range(n):
        ts = start + i * 1_000_000
        out.append(
            bytes(
                d.MBP1Msg(
                    publisher_id=23,
                    instrument_id=7,
                    ts_event=ts,
                    price=240_000_000 + 10_000_000 * (i % 3),
                    size=1 + i % 4,
                    action=d.Action.TRADE,
                    side=d.Side.NONE,
                    depth=0,
                    ts_recv=ts + 500,
                    levels=d.BidAskPair(bid_px=230_000_000, ask_px=270_000_000, bid_sz=5, ask_sz=6),
                )
            )
        )
    return b"".join(out)


@pytest.fixture
def gateway_factory() -> Iterator:
    made: list[Gateway] = []

    def make(sessions: list[bytes], key: str = KEY) -> Gateway:
        gw = Gateway(sessions, key)
        gw.start()
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.stop()


def _cfg(port: int, *, dataset: str = "OPRA.PILLAR", key: str = KEY) -> Config:
    cfg = Config()
    cfg.feed.adapter = "databento"
    c = cfg.databento
    c.mode = "live"
    c.api_key = key
    c.gateway = "127.0.0.1"
    c.live_port = port
    c.options_dataset = dataset
    c.options_schemas = ["tbbo"]
    c.options_symbols = ["AAPL.OPT"]
    c.equities_dataset = ""
    c.batch_ms = 20
    c.reconnect_initial_s = 0.05
    c.reconnect_max_s = 0.2
    return cfg


def _drive(engine: Engine, feed: DatabentoFeed, until, timeout: float = 20.0) -> list:
    """Run the feed into the engine until ``until(engine)`` or the timeout; then close."""

    async def go() -> list:
        out = []
        deadline = time.monotonic() + timeout
        states = []

        async def watch() -> None:
            while True:
                states.append(feed.state)
                if until(engine) or time.monotonic() > deadline:
                    feed.close()
                    return
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        async for batch in feed.batches():
            engine.ingest(batch)
            out.append(batch)
        watcher.cancel()
        return out, states

    return asyncio.run(go())


def test_live_session_maps_records_like_the_import(gateway_factory) -> None:
    n = 30
    gw = gateway_factory([_opra_session(T0, n)])
    cfg = _cfg(gw.port)
    feed = DatabentoFeed(cfg.databento, rng=random.Random(1))
    engine = Engine(cfg, feed)
    _batches, states = _drive(engine, feed, lambda e: e.totals[ev.OPTIONS_PRINTS] >= n)
    # the SDK's handshake reached our gateway as the protocol says
    auth = gw.auth_lines[0]
    assert "dataset=OPRA.PILLAR" in auth and "encoding=dbn" in auth
    assert KEY not in auth  # CRAM: the key itself never goes over the wire
    assert gw.subscriptions == [
        "schema=tbbo|stype_in=parent|symbols=AAPL.OPT|snapshot=0|id=0|is_last=1"
    ] or all("schema=tbbo" in s and "symbols=AAPL.OPT" in s for s in gw.subscriptions)
    # every tbbo record became a print and the quote in force, symbol from the mapping
    assert engine.totals[ev.OPTIONS_PRINTS] == n
    assert engine.totals[ev.OPTIONS_NBBO] == n
    assert engine.rejected.get(ev.OPTIONS_PRINTS, {}) == {}
    assert FeedStatus.LIVE in {s.status for s in states}
    assert feed.state.status is FeedStatus.STOPPED
    # the statistics record's open interest reached the packet operator
    assert engine.compute.packets.open_interest["open_interest"].to_list() == [4321]


def test_drop_reconnects_with_backoff_and_reports_the_gap(gateway_factory) -> None:
    first, second = 20, 15
    later = T0 + 60 * 1_000_000_000
    gw = gateway_factory([_opra_session(T0, first), _opra_session(later, second)])
    cfg = _cfg(gw.port)
    feed = DatabentoFeed(cfg.databento, rng=random.Random(3))
    engine = Engine(cfg, feed)
    batches, states = _drive(engine, feed, lambda e: e.totals[ev.OPTIONS_PRINTS] >= first + second)
    assert gw.connections == 2
    gaps = [b.gap for b in batches if b.gap is not None]
    assert len(gaps) == 1
    gap = gaps[0]
    assert gap.start_ts == T0 + (first - 1) * 1_000_000  # last event before the drop
    assert gap.end_ts == later  # first event after it
    assert "reconnected after 1 attempt" in gap.reason
    # the gap rides on the first batch that has data again, and nothing is lost or doubled
    first_after = next(b for b in batches if b.gap is not None)
    assert first_after.frames and min(f["ts"].min() for f in first_after.frames.values()) >= later
    assert engine.totals[ev.OPTIONS_PRINTS] == first + second
    seqs = engine.seq[ev.OPTIONS_PRINTS]
    assert seqs == first + second
    reconnecting = [s for s in states if s.status is FeedStatus.RECONNECTING]
    assert reconnecting and "attempt 1, retry in" in reconnecting[0].detail


def test_wrong_key_is_auth_failed(gateway_factory) -> None:
    gw = gateway_factory([_opra_session(T0, 3)], key="db-OTHERKEYabcdefghijklmnopqr")
    cfg = _cfg(gw.port)
    feed = DatabentoFeed(cfg.databento)
    engine = Engine(cfg, feed)
    _drive(engine, feed, lambda e: feed.state.status is FeedStatus.AUTH_FAILED, timeout=10)
    assert feed.state.status is FeedStatus.AUTH_FAILED
    assert "Authentication failed" in feed.state.detail
    assert KEY not in feed.state.detail
    assert gw.connections == 0


def test_real_live_capture_decodes_through_the_sdk(gateway_factory) -> None:
    """The sample folder's live-gateway capture (GLBX.MDP3, mixed schemas) served as is."""
    raw = zstandard.ZstdDecompressor().stream_reader(
        LIVE_CAPTURE.open("rb"), read_across_frames=True
    )
    data = raw.read()
    expected = [r for r in db.DBNStore.from_bytes(data)]
    gw = gateway_factory([data])
    cfg = _cfg(gw.port, dataset="GLBX.MDP3")
    feed = DatabentoFeed(cfg.databento)
    engine = Engine(cfg, feed)
    _drive(engine, feed, lambda e: feed.records >= len(expected), timeout=10)
    assert feed.records == len(expected)
    # futures: no options or equities stream for them, so nothing reaches the engine
    assert sum(engine.totals[s] for s in ev.RAW_STREAMS) == 0
    assert feed.unused > 0
