"""Stand-ins for Alpaca's network only: a loopback websocket server speaking the stream
protocol (msgpack frames, as alpaca-py sends and expects them) and a requests adapter
serving recorded REST bodies.  alpaca-py's clients, models and parsing stay real."""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import msgpack
import requests
from requests.adapters import BaseAdapter
from websockets.asyncio.server import serve

DATA = Path("/work/shared/data/alpaca")
KEY, SECRET = "PKTESTKEY0000000", "testsecret0000000000000000000000"


def ts(seconds: float) -> msgpack.Timestamp:
    whole = int(seconds)
    return msgpack.Timestamp(whole, round((seconds - whole) * 1e9))


def sample_ws(name: str, t: msgpack.Timestamp) -> dict[str, Any]:
    """A stock websocket message from alpaca-py's own tests (values are Python literals)."""
    body = json.loads((DATA / name).read_text())
    return {k: t if v == "timestamp" else ast.literal_eval(v) for k, v in body.items()}


def option_trade(sym: str, t: msgpack.Timestamp, p: float, s: int, x: str, c: str) -> dict:
    """Alpaca's documented option trade message (msgpack): T t S t p s x c."""
    return {"T": "t", "S": sym, "t": t, "p": p, "s": s, "x": x, "c": c}


def option_quote(sym: str, t: msgpack.Timestamp, bp: float, ap: float) -> dict:
    return {
        "T": "q",
        "S": sym,
        "t": t,
        "bx": "C",
        "bp": bp,
        "bs": 10,
        "ax": "X",
        "ap": ap,
        "as": 12,
        "c": "A",
    }


@dataclass
class Script:
    """What the server does on each connection (index = connection number)."""

    auth_reply: list[dict] | None = None  # default: authenticated
    subscribe_reply: Callable[[dict], list[dict]] | None = None
    batches: list[list[list[dict]]] = field(default_factory=list)  # per connection
    drop_after: list[bool] = field(default_factory=list)  # close abruptly after batches


class FakeAlpacaStream:
    """Loopback websocket server with Alpaca's handshake: connected, auth, subscription."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.received: list[dict] = []
        self.server: Any = None
        self.url = ""

    async def __aenter__(self) -> FakeAlpacaStream:
        self.server = await serve(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, ws: Any) -> None:
        n = self.connections
        self.connections += 1
        await ws.send(msgpack.packb([{"T": "success", "msg": "connected"}]))
        auth = msgpack.unpackb(await ws.recv())
        self.received.append(auth)
        ok = auth.get("key") == KEY and auth.get("secret") == SECRET
        reply = self.script.auth_reply or (
            [{"T": "success", "msg": "authenticated"}]
            if ok
            else [{"T": "error", "code": 402, "msg": "auth failed"}]
        )
        await ws.send(msgpack.packb(reply))
        if reply[0].get("T") == "error":
            await ws.close()
            return
        sub = msgpack.unpackb(await ws.recv())
        self.received.append(sub)
        if self.script.subscribe_reply is not None:
            await ws.send(msgpack.packb(self.script.subscribe_reply(sub)))
        else:
            ack = {"T": "subscription", "trades": sub.get("trades", []), "quotes": []}
            ack["quotes"] = sub.get("quotes", [])
            await ws.send(msgpack.packb([ack]))
        batches = self.script.batches[n] if n < len(self.script.batches) else []
        for batch in batches:
            await ws.send(msgpack.packb(batch))
            await asyncio.sleep(0.01)
        drop = self.script.drop_after[n] if n < len(self.script.drop_after) else False
        if drop:
            ws.transport.abort() if hasattr(ws, "transport") else await ws.close(1011)
            return
        try:
            async for raw in ws:  # keep the connection until the client goes
                self.received.append(msgpack.unpackb(raw))
        except Exception:
            return


class RecordedRest(BaseAdapter):
    """A requests transport answering from alpaca-py's recorded REST bodies by URL path."""

    def __init__(self, routes: dict[str, Any]) -> None:
        super().__init__()
        self.routes = routes
        self.calls: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = urlparse(request.url)
        self.calls.append(request.url or "")
        body = self.routes.get(url.path)
        resp = requests.Response()
        resp.request = request
        resp.url = request.url or ""
        if callable(body):
            body = body(request)
        if body is None:
            resp.status_code = 404
            resp._content = b'{"message": "not found"}'
        else:
            resp.status_code = 200
            resp._content = json.dumps(body).encode()
        resp.headers["Content-Type"] = "application/json"
        return resp

    def close(self) -> None:
        pass


def rest_session(routes: dict[str, Any]) -> tuple[requests.Session, RecordedRest]:
    session = requests.Session()
    adapter = RecordedRest(routes)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session, adapter


def recorded(name: str) -> Any:
    return json.loads((DATA / name).read_text())["body"]
