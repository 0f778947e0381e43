"""``--feed databento`` historical: ``databento.Historical`` against a loopback HTTPS server.

Only the socket is replaced: the SDK builds and sends its real ``timeseries.get_range``
request (basic auth, form fields) to a local HTTPS server (self-signed certificate,
trusted through ``REQUESTS_CA_BUNDLE``) that answers with the real sample DBN files,
zstd-compressed as Databento's API sends them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs

import databento as db
import pytest

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.base import FeedStatus
from islandflow_tui.engine.ingest.databento_feed import DatabentoFeed

DATA = Path("/work/shared/data/databento")
KEY = "db-TESTKEYabcdefghijklmnopqrstu"
FILES = {
    ("OPRA.PILLAR", "definition"): DATA / "OPRA.PILLAR/test_data.definition.dbn.zst",
    ("OPRA.PILLAR", "statistics"): DATA / "OPRA.PILLAR/test_data.statistics.dbn.zst",
    ("OPRA.PILLAR", "trades"): DATA / "OPRA.PILLAR/test_data.trades.dbn.zst",
    ("OPRA.PILLAR", "tbbo"): DATA / "OPRA.PILLAR/test_data.tbbo.dbn.zst",
    ("OPRA.PILLAR", "cbbo-1s"): DATA / "OPRA.PILLAR/test_data.cbbo-1s.dbn.zst",
    ("EQUS.MINI", "tbbo"): DATA / "EQUS.MINI/test_data.tbbo.dbn.zst",
}


class _Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, str]]] = []

    def log_message(self, *_args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        auth = self.headers.get("Authorization", "")
        user = base64.b64decode(auth.removeprefix("Basic ")).decode().split(":")[0] if auth else ""
        _Handler.requests.append({"path": self.path, **form})
        if user != KEY:
            self._json(401, {"detail": "Authentication failed."})
            return
        f = FILES.get((form.get("dataset", ""), form.get("schema", "")))
        if self.path != "/v0/timeseries.get_range" or f is None:
            self._json(422, {"detail": f"no data for {form.get('dataset')} {form.get('schema')}"})
            return
        data = f.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        # in two writes, so the client sees the body arrive in pieces
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.wfile.write(data[len(data) // 2 :])

    def _json(self, code: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes"),
            *("-keyout", str(key), "-out", str(crt), "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return key, crt


@pytest.fixture
def server(cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    key, crt = cert
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(crt))
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    _Handler.requests = []
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _cfg(gateway: str, tmp_path: Path) -> Config:
    cfg = Config()
    cfg.paths.data_dir = str(tmp_path / "data")
    cfg.feed.adapter = "databento"
    d = cfg.databento
    d.mode = "historical"
    d.gateway = gateway
    d.start = "2025-02-20T00:00:00Z"
    d.end = "2025-02-21T00:00:00Z"
    d.options_symbols = ["AAPL.OPT"]
    d.options_stype = "parent"
    d.options_schemas = ["statistics", "trades", "cbbo-1s"]
    d.equities_dataset = "EQUS.MINI"
    d.equities_schemas = ["tbbo"]
    d.equities_symbols = ["QQQ"]
    return cfg


def _run(engine: Engine, feed: DatabentoFeed) -> list[ev.FeedBatch]:
    async def go() -> list[ev.FeedBatch]:
        out = []
        async for batch in feed.batches():
            engine.ingest(batch)
            out.append(batch)
        engine.flush()
        return out

    return asyncio.run(go())


def _sample(schema: str, dataset: str = "OPRA.PILLAR"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return db.DBNStore.from_file(FILES[(dataset, schema)]).to_df(pretty_ts=False).reset_index()


def test_historical_download_streams_into_the_engine(server: str, tmp_path: Path) -> None:
    cfg = _cfg(server, tmp_path)
    cfg.databento.api_key = KEY
    feed = DatabentoFeed(cfg.databento)
    engine = Engine(cfg, feed)
    totals: dict[str, int] = {}
    engine.subscribe_lossless(
        ev.ALL_STREAMS, lambda s, f: totals.__setitem__(s, totals.get(s, 0) + f.height)
    )
    batches = _run(engine, feed)

    # what the SDK sent: definitions and statistics first, then the event schemas
    sent = [(r["dataset"], r["schema"], r["stype_in"], r["symbols"]) for r in _Handler.requests]
    assert sent[:2] == [
        ("OPRA.PILLAR", "definition", "parent", "AAPL.OPT"),
        ("OPRA.PILLAR", "statistics", "parent", "AAPL.OPT"),
    ]
    assert {s[:2] for s in sent[2:]} == {
        ("OPRA.PILLAR", "trades"),
        ("OPRA.PILLAR", "cbbo-1s"),
        ("EQUS.MINI", "tbbo"),
    }
    assert all(KEY not in json.dumps(r) for r in _Handler.requests)  # only in the auth header

    trades, cbbo, eq = _sample("trades"), _sample("cbbo-1s"), _sample("tbbo", "EQUS.MINI")
    assert totals[ev.OPTIONS_PRINTS] == len(trades)
    assert totals[ev.EQUITIES_PRINTS] == len(eq)
    assert totals[ev.EQUITIES_QUOTES] == len(eq)
    assert totals[ev.OPTIONS_NBBO] == int(cbbo["ask_px_00"].notna().sum())
    assert totals[ev.OPTIONS_ENRICHED] == len(trades)
    assert engine.rejected[ev.OPTIONS_PRINTS] == {}
    # watermarks never go back; the statistics' open interest reached the packets
    wms = [b.watermark for b in batches]
    assert wms == sorted(wms)
    oi = engine.compute.packets.open_interest
    assert oi is not None and oi["open_interest"].to_list() == [57924]
    assert feed.state.status is FeedStatus.FINISHED
    assert feed.progress == 1.0
    assert KEY not in feed.state.detail


def test_wrong_key_is_auth_failed_without_showing_the_key(server: str, tmp_path: Path) -> None:
    cfg = _cfg(server, tmp_path)
    cfg.databento.api_key = "db-WRONGKEYabcdefghijklmnopqrs"
    feed = DatabentoFeed(cfg.databento)
    engine = Engine(cfg, feed)
    batches = _run(engine, feed)
    assert batches == []
    assert feed.state.status is FeedStatus.AUTH_FAILED
    assert "401" in feed.state.detail and "Authentication failed" in feed.state.detail
    assert "WRONGKEY" not in feed.state.detail


def test_missing_key_names_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    cfg = _cfg("127.0.0.1:9", tmp_path)
    feed = DatabentoFeed(cfg.databento)
    assert _run(Engine(cfg, feed), feed) == []
    assert feed.state.status is FeedStatus.AUTH_FAILED
    assert "DATABENTO_API_KEY" in feed.state.detail


def test_key_from_environment(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABENTO_API_KEY", KEY)
    cfg = _cfg(server, tmp_path)
    cfg.databento.options_schemas = ["tbbo"]
    cfg.databento.equities_dataset = ""
    feed = DatabentoFeed(cfg.databento)
    engine = Engine(cfg, feed)
    _run(engine, feed)
    tbbo = _sample("tbbo")
    assert engine.totals[ev.OPTIONS_PRINTS] == len(tbbo)
    assert engine.totals[ev.OPTIONS_NBBO] == len(tbbo)  # the quote in force with each trade
    assert feed.state.status is FeedStatus.FINISHED


def test_historical_request_recorded_straight_into_a_session(server: str, tmp_path: Path) -> None:
    from islandflow_tui.engine.dbn_import import ImportFailure, import_databento
    from islandflow_tui.engine.log import SessionReader
    from islandflow_tui.engine.verify import verify_session

    cfg = _cfg(server, tmp_path)
    cfg.databento.api_key = KEY
    # the equities sample is from 2023, the options one from 2025: verify would step
    # through two years of empty one-second windows, so this session is options only
    cfg.databento.equities_dataset = ""
    seen: list[float] = []
    report = import_databento(cfg, name="hist", progress=lambda f, n: seen.append(f))
    reader = SessionReader(report.path)
    assert reader.read(ev.OPTIONS_PRINTS).height == len(_sample("trades"))
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    assert (report.path / "open_interest.parquet").is_file()
    meta = (report.path / "meta.json").read_text()
    assert KEY not in meta and "api_key" not in meta
    checks, _ = verify_session(cfg, report.path)
    assert checks and all(c.ok for c in checks)

    cfg.databento.api_key = "db-WRONGKEYabcdefghijklmnopqrs"
    with pytest.raises(ImportFailure, match="auth failed"):
        import_databento(cfg)


def test_print_config_hides_the_key(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from islandflow_tui.cli import main

    monkeypatch.setenv("ISLANDFLOW_DATABENTO__API_KEY", KEY)
    assert main(["--print-config"]) == 0
    out = capsys.readouterr().out
    assert "[databento]" in out and KEY not in out and 'api_key = "***"' in out


def test_feed_runs_on_the_engine_thread(server: str, tmp_path: Path) -> None:
    """As the app runs it: build_adapter from config, the engine's own thread and loop."""
    import time

    from islandflow_tui.engine.feeds import build_adapter

    cfg = _cfg(server, tmp_path)
    cfg.databento.api_key = KEY
    cfg.databento.equities_dataset = ""
    feed = build_adapter(cfg)
    assert isinstance(feed, DatabentoFeed)
    engine = Engine(cfg, feed)
    engine.start()
    deadline = time.monotonic() + 30
    while engine.running and time.monotonic() < deadline:
        time.sleep(0.05)
    engine.stop()
    st = engine.stats()
    assert st.feed == "databento/historical"
    assert st.feed_state.status is FeedStatus.FINISHED
    assert st.totals[ev.OPTIONS_PRINTS] == len(_sample("trades"))
    assert st.error == ""
