"""Databento as a feed: ``databento.Historical`` downloads or ``databento.Live`` sessions.

Both modes decode with engine/ingest/dbn_decode.py, so prices, symbols, venues and
the tbbo/tcbbo "print plus the quote in force" rule are the same as ``islandflow
import``.

Historical (``[databento] mode = "historical"``): one ``timeseries.get_range`` per
(dataset, schema), each run by the SDK on a worker thread into a temporary file
(the SDK streams the HTTP response into it).  A reader thread tails the files as
they grow (zstd frames -> DBN header -> fixed-size records, ``np.frombuffer`` in the
SDK's record layout), merges them in event time as the import does, and hands the
engine one batch per merge step, so flow appears while the download runs.  The
state detail shows the download progress (event time reached between start and
end, MB received).  For options requested by parent symbol (``SPY.OPT``) the
``definition`` schema is downloaded first: DBN mappings then only name the parent,
and definitions give each instrument id its OSI symbol.

Live (``mode = "live"``): one ``databento.Live`` client per dataset (a live session
serves one dataset), each read on its own thread; records are batched every
``batch_ms`` and decoded in bulk (symbol-mapping records from the gateway resolve
instrument ids).  A dropped session reconnects with ``Backoff`` (state
``reconnecting``, attempt and delay shown); the first batch after it carries a
``FeedGap`` from the last event time before the loss to the first after it.  A
rejected key stops the feed with ``auth failed``; a gateway error naming a limit
with ``subscription limit``.

The API key comes from ``databento.api_key``, else the environment variable
``DATABENTO_API_KEY``; it is passed to the SDK only, never logged, shown or written
to the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from islandflow_tui.config import DatabentoConfig, Secret
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.ingest.base import Backoff, FeedAdapter, FeedStatus
from islandflow_tui.engine.ingest.dbn_decode import (
    EVENT_RTYPES,
    RT_DEFINITION,
    RT_STATISTICS,
    Decoded,
    Symbology,
    decode_events,
    merge_open_interest,
    open_interest,
    split_records,
)

log = logging.getLogger("islandflow.databento")

KEY_ENV: Final = "DATABENTO_API_KEY"
#: records read per step from a downloading file
READ_RECORDS: Final = 200_000
POLL_S: Final = 0.05
_DBN_PREFIX: Final = 8  # b"DBN" + version byte + u32 metadata length
REFERENCE_SCHEMAS: Final = frozenset({"definition", "statistics"})


def api_key(cfg: DatabentoConfig) -> str:
    """The key from config, else the environment; "" when neither has one.  Revealed
    only here, where it is handed to the SDK."""
    value = cfg.api_key
    configured = value.reveal() if isinstance(value, Secret) else str(value or "")
    return (configured or os.environ.get(KEY_ENV, "")).strip()


def _ns(text: str) -> int:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1e9)


@dataclass(frozen=True, slots=True)
class Request:
    dataset: str
    schema: str
    symbols: tuple[str, ...]
    stype_in: str


def requests_from(cfg: DatabentoConfig) -> list[Request]:
    """One request per (dataset, schema); definitions first for parent-symbol options."""
    out: list[Request] = []
    if cfg.options_dataset and cfg.options_symbols:
        syms = tuple(cfg.options_symbols)
        if cfg.options_stype != "raw_symbol":
            out.append(Request(cfg.options_dataset, "definition", syms, cfg.options_stype))
        for schema in cfg.options_schemas:
            out.append(Request(cfg.options_dataset, schema, syms, cfg.options_stype))
    if cfg.equities_dataset and cfg.equities_symbols:
        syms = tuple(cfg.equities_symbols)
        for schema in cfg.equities_schemas:
            out.append(Request(cfg.equities_dataset, schema, syms, "raw_symbol"))
    return out


# ---------------------------------------------------------------------------
# Historical: get_range into files, tailed while they grow
# ---------------------------------------------------------------------------
class _GrowingFile:
    """A file another thread is still writing: ``read`` waits for bytes until ``done``."""

    def __init__(self, path: Path, done: threading.Event, stop: threading.Event) -> None:
        self.path = path
        self.done = done
        self.stop = stop
        self._fh: Any = None
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        while True:
            if self.stop.is_set():
                return b""
            if self._fh is None and self.path.exists():
                self._fh = open(self.path, "rb")  # noqa: SIM115 - closed in close()
            if self._fh is not None:
                finished = self.done.is_set()  # read the flag before the bytes
                data = self._fh.read(n if n and n > 0 else 1 << 20)
                if data:
                    self.bytes_read += len(data)
                    return data
                if finished:
                    return b""
            elif self.done.is_set():
                return b""
            time.sleep(POLL_S)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class _Download:
    """One get_range on a worker thread, and its records as they arrive."""

    def __init__(
        self, client: Any, req: Request, start: str, end: str, folder: Path, stop: threading.Event
    ) -> None:
        self.req = req
        self.path = (
            folder / f"{req.dataset}.{req.schema}.{threading.get_ident()}.{id(self)}.dbn.zst"
        )
        self.done = threading.Event()
        self.error = ""
        self.file = _GrowingFile(self.path, self.done, stop)
        self._thread = threading.Thread(
            target=self._run,
            args=(client, start, end),
            name=f"databento-{req.dataset}-{req.schema}",
            daemon=True,
        )
        self._thread.start()

    def _run(self, client: Any, start: str, end: str) -> None:
        try:
            client.timeseries.get_range(
                dataset=self.req.dataset,
                schema=self.req.schema,
                symbols=list(self.req.symbols),
                stype_in=self.req.stype_in,
                start=start,
                end=end or None,
                path=self.path,
            )
        except Exception as exc:
            self.error = f"{self.req.dataset} {self.req.schema}: {_describe(exc)}"
        finally:
            self.done.set()

    def arrays(self) -> Iterator[tuple[Any, np.ndarray]]:
        """(metadata, records) steps decoded from the growing file."""
        import databento as db
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(self.file, read_across_frames=True)
        prefix = _read_exact(reader, _DBN_PREFIX)
        if len(prefix) < _DBN_PREFIX or prefix[:3] != b"DBN":
            if self.error or not prefix:
                return
            raise ValueError(f"{self.req.dataset} {self.req.schema}: response is not DBN")
        length = int.from_bytes(prefix[4:8], "little")
        header = prefix + _read_exact(reader, length)
        store = db.DBNStore.from_bytes(header)
        struct = _struct_map(store.metadata.version)[store.schema]
        dtype = np.dtype(struct._dtypes)
        step = dtype.itemsize * READ_RECORDS
        rest = b""
        while True:
            data = rest + reader.read(step)
            if len(data) == len(rest):
                break
            usable = len(data) - len(data) % dtype.itemsize
            rest = data[usable:]
            if usable:
                yield store, np.frombuffer(data[:usable], dtype=dtype)


def _struct_map(version: int) -> dict[Any, Any]:
    from databento.common import constants as c

    if version == 1:
        return c.SCHEMA_STRUCT_MAP_V1
    if version == 2:
        return c.SCHEMA_STRUCT_MAP_V2
    return c.SCHEMA_STRUCT_MAP


def _read_exact(reader: Any, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = reader.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _describe(exc: BaseException) -> str:
    """One line about an SDK error, without anything that could carry the key."""
    status = getattr(exc, "http_status", None)
    message = getattr(exc, "message", None) or str(exc).strip().splitlines()[0:1]
    if isinstance(message, list):
        message = message[0] if message else type(exc).__name__
    return f"HTTP {status}: {message}" if status else f"{type(exc).__name__}: {message}"


def _is_auth_error(exc: BaseException) -> bool:
    status = getattr(exc, "http_status", None)
    text = str(exc).lower()
    return status in (401, 403) or "auth" in text or "api key" in text


# ---------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------
@dataclass
class _LiveState:
    last_ts: int = 0  # newest event time handed to the engine
    last_seen: int = 0  # newest event time received (session thread)
    lost_at: int = 0  # last ts before a disconnect (0: no gap pending)
    reason: str = ""
    records: list[Any] = field(default_factory=list)


class DatabentoFeed(FeedAdapter):
    """``--feed databento``: historical download or live gateway (see module doc)."""

    name = "databento"

    def __init__(
        self,
        cfg: DatabentoConfig,
        *,
        allowed_lateness_ms: int = 2000,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.lateness_ns = allowed_lateness_ms * ev.NS_PER_MS
        self.backoff = Backoff(initial_s=cfg.reconnect_initial_s, max_s=cfg.reconnect_max_s)
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._closed = False
        self.symbology: dict[str, Symbology] = {}
        self.open_interest: list[pl.DataFrame] = []
        self.progress = 0.0  # historical: share of the requested event time received
        self.bytes_received = 0
        self.records = 0
        self.unused = 0
        self.gaps: list[ev.FeedGap] = []
        self._engine: Any = None
        self._clients: set[Any] = set()

    @property
    def label(self) -> str:
        return f"databento/{self.cfg.mode}"

    def close(self) -> None:
        self._closed = True
        self._stop.set()
        for client in list(self._clients):
            with contextlib.suppress(Exception):
                client.terminate()

    async def batches(self) -> AsyncIterator[ev.FeedBatch]:
        key = api_key(self.cfg)
        if not key:
            self.set_state(
                FeedStatus.AUTH_FAILED,
                f"no Databento API key: set databento.api_key or {KEY_ENV}",
            )
            return
        gen = self._historical(key) if self.cfg.mode == "historical" else self._live(key)
        async for batch in gen:
            if self._closed:
                break
            yield batch
        if self.state.status not in (
            FeedStatus.AUTH_FAILED,
            FeedStatus.FAILED,
            FeedStatus.SUBSCRIPTION_LIMIT,
        ):
            self.set_state(
                FeedStatus.FINISHED if not self._closed else FeedStatus.STOPPED,
                self._summary(),
            )

    def _summary(self) -> str:
        return f"{self.records:,} records, {self.bytes_received / 1e6:.1f} MB"

    # -- historical ------------------------------------------------------------
    async def _historical(self, key: str) -> AsyncIterator[ev.FeedBatch]:
        import databento as db

        from islandflow_tui.engine.dbn_import import _Source, merged_batches

        if not self.cfg.start:
            self.set_state(FeedStatus.FAILED, "databento.start is required in historical mode")
            return
        try:
            lo = _ns(self.cfg.start)
            hi = _ns(self.cfg.end) if self.cfg.end else 0
        except ValueError:
            self.set_state(FeedStatus.FAILED, "databento.start/end: expected ISO-8601 times")
            return
        self.set_state(FeedStatus.CONNECTING, "historical download starting")
        gateway = self.cfg.gateway or db.HistoricalGateway.BO1
        client = db.Historical(key=key, gateway=gateway)
        folder = Path(tempfile.mkdtemp(prefix="islandflow-databento-"))
        reqs = requests_from(self.cfg)
        # reference data first: definitions decide symbols for everything after
        refs = [r for r in reqs if r.schema in REFERENCE_SCHEMAS]
        events = [r for r in reqs if r.schema not in REFERENCE_SCHEMAS]
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=4)
        try:
            for r in refs:
                dl = _Download(client, r, self.cfg.start, self.cfg.end, folder, self._stop)
                await loop.run_in_executor(None, self._read_reference, dl)
                if dl.error:
                    self._fail(dl.error)
                    return
            self._apply_open_interest()
            downloads = [
                _Download(client, r, self.cfg.start, self.cfg.end, folder, self._stop)
                for r in events
            ]
            sources = [_Source(self._chunks(dl)) for dl in downloads]

            def pump() -> None:
                try:
                    for frames, wm in merged_batches(sources):
                        fut = asyncio.run_coroutine_threadsafe(queue.put((frames, wm)), loop)
                        fut.result()
                        if self._stop.is_set():
                            break
                    asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()
                except Exception as exc:  # a decode error ends the feed with a message
                    asyncio.run_coroutine_threadsafe(queue.put(exc), loop).result()

            threading.Thread(target=pump, name="databento-merge", daemon=True).start()
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, Exception):
                    self._fail(_describe(item))
                    return
                frames, wm = item
                self.bytes_received = sum(dl.file.bytes_read for dl in downloads)
                self.records = sum(s.records for s in sources)
                self.unused = sum(s.unused for s in sources)
                if hi > lo:
                    self.progress = min(max((wm - lo) / (hi - lo), 0.0), 1.0)
                self.set_state(FeedStatus.LIVE, self._progress_line())
                yield ev.FeedBatch(frames, wm)
            errors = [dl.error for dl in downloads if dl.error]
            if errors:
                self._fail("; ".join(errors))
                return
            self.progress = 1.0
        finally:
            self._stop.set()
            shutil.rmtree(folder, ignore_errors=True)

    def _progress_line(self) -> str:
        return (
            f"historical {self.progress * 100:.0f}% of event time, "
            f"{self.bytes_received / 1e6:.1f} MB, {self.records:,} records"
        )

    def _fail(self, message: str) -> None:
        status = FeedStatus.AUTH_FAILED if "HTTP 401" in message else FeedStatus.FAILED
        if "HTTP 403" in message:
            status = FeedStatus.AUTH_FAILED
        self.set_state(status, message)
        log.warning("databento: %s", message)

    def _read_reference(self, dl: _Download) -> None:
        sym = self.symbology.setdefault(dl.req.dataset, Symbology())
        for store, arr in dl.arrays():
            if store.metadata.stype_in is not None and str(store.metadata.stype_in) == (
                "raw_symbol"
            ):
                sym.add_mappings(store.mappings)
            if int(arr["rtype"][0]) == RT_DEFINITION:
                sym.add_definitions(arr)
            elif int(arr["rtype"][0]) == RT_STATISTICS:
                self.open_interest.append(open_interest(arr, sym))

    def bind(self, engine: Any) -> None:
        """Called by the Engine: open interest goes to its packet operator."""
        self._engine = engine

    def _apply_open_interest(self) -> None:
        """Hand statistics' open interest to the engine (and the session being recorded,
        so a replay or verify of it uses the same table)."""
        if not self.open_interest:
            return
        table = merge_open_interest(*self.open_interest)
        engine = self._engine
        if engine is None or table.height == 0:
            return
        engine.compute.set_open_interest(table)
        path = getattr(getattr(engine, "recorder", None), "path", None)
        if path is not None:
            table.write_parquet(Path(path) / "open_interest.parquet")

    def _chunks(self, dl: _Download) -> Iterator[Decoded]:
        sym = self.symbology.setdefault(dl.req.dataset, Symbology())
        first = True
        for store, arr in dl.arrays():
            if first and str(store.metadata.stype_in) == "raw_symbol":
                sym.add_mappings(store.mappings)
            first = False
            if not len(arr):
                continue
            yield decode_events(arr, dl.req.dataset, sym)

    # -- live ------------------------------------------------------------------
    async def _live(self, key: str) -> AsyncIterator[ev.FeedBatch]:
        by_dataset: dict[str, list[Request]] = {}
        for r in requests_from(self.cfg):
            if r.schema != "definition":
                by_dataset.setdefault(r.dataset, []).append(r)
        states = {ds: _LiveState() for ds in by_dataset}
        lock = threading.Lock()
        threads = [
            threading.Thread(
                target=self._live_thread,
                args=(key, ds, reqs, states[ds], lock),
                name=f"databento-live-{ds}",
                daemon=True,
            )
            for ds, reqs in by_dataset.items()
        ]
        self.set_state(FeedStatus.CONNECTING, ", ".join(by_dataset))
        for t in threads:
            t.start()
        watermark = 0
        while True:
            await asyncio.sleep(self.cfg.batch_ms / 1000)
            alive = any(t.is_alive() for t in threads)
            with lock:
                taken = {ds: st.records for ds, st in states.items()}
                for st in states.values():
                    st.records = []
            frames: dict[str, list[pl.DataFrame]] = {}
            gap: ev.FeedGap | None = None
            for ds, records in taken.items():
                if not records:
                    continue
                decoded = self._decode_live(ds, records)
                for stream, frame in decoded.frames.items():
                    frames.setdefault(stream, []).append(frame)
                st = states[ds]
                newest = decoded.max_ts()
                if st.lost_at:
                    after = [
                        int(f.filter(pl.col("ts") > st.lost_at)["ts"].min() or 0)
                        for f in decoded.frames.values()
                    ]
                    after = [t for t in after if t]
                    if after:
                        gap = ev.FeedGap(self.name, st.lost_at, min(after), st.reason)
                        self.gaps.append(gap)
                        st.lost_at = 0
                st.last_ts = max(st.last_ts, newest)
            merged = {s: pl.concat(fs).sort("ts", maintain_order=True) for s, fs in frames.items()}
            newest_all = [st.last_ts for st in states.values() if st.last_ts]
            if newest_all:
                watermark = max(watermark, min(newest_all) - self.lateness_ns)
            if merged or gap is not None:
                yield ev.FeedBatch(merged, watermark, gap=gap)
            if not alive or self._closed:
                break

    def _decode_live(self, dataset: str, records: list[Any]) -> Decoded:
        sym = self.symbology.setdefault(dataset, Symbology())
        arrays, mappings = split_records(records)
        if mappings:
            sym.add_symbol_mappings(mappings)
        if RT_DEFINITION in arrays:
            sym.add_definitions(arrays[RT_DEFINITION])
        out = Decoded(records=len(records))
        if RT_STATISTICS in arrays:
            oi = open_interest(arrays[RT_STATISTICS], sym)
            if oi.height:
                self.open_interest.append(oi)
                self._apply_open_interest()
        for rt, arr in sorted(arrays.items()):
            if rt == RT_STATISTICS:
                continue
            if rt not in EVENT_RTYPES:
                out.unused += len(arr) if rt != RT_DEFINITION else 0
                continue
            d = decode_events(arr, dataset, sym)
            out.unused += d.unused
            for stream, frame in d.frames.items():
                prev = out.frames.get(stream)
                out.frames[stream] = frame if prev is None else pl.concat([prev, frame])
        self.records += len(records)
        self.unused += out.unused
        return out

    def _live_thread(
        self, key: str, dataset: str, reqs: list[Request], st: _LiveState, lock: threading.Lock
    ) -> None:
        import databento as db

        attempt = 0
        while not self._stop.is_set():
            client = None
            try:
                kwargs: dict[str, Any] = {"key": key, "port": self.cfg.live_port}
                if self.cfg.gateway:
                    kwargs["gateway"] = self.cfg.gateway
                client = db.Live(**kwargs)
                self._clients.add(client)
                skip = _error_types()

                def on_record(rec: Any, skip: tuple[type, ...] = skip) -> None:
                    # runs on the SDK's session thread; registered before start so the
                    # first records of a session are never missed
                    if isinstance(rec, skip):
                        self._gateway_error(dataset, rec)
                        return
                    with lock:
                        st.records.append(rec)
                        if int(rec.rtype) in EVENT_RTYPES:
                            st.last_seen = max(st.last_seen, int(rec.ts_event))

                client.add_callback(on_record)
                for r in reqs:
                    client.subscribe(
                        dataset=dataset,
                        schema=r.schema,
                        symbols=list(r.symbols),
                        stype_in=r.stype_in,
                        start=(self.cfg.start or None) if attempt == 0 else None,
                    )
                self.set_state(FeedStatus.LIVE, f"{dataset} session {client.session_id or ''}")
                attempt = 0
                client.start()
                client.block_for_close()
                if self._stop.is_set():
                    break
                reason = "gateway closed the session"
            except Exception as exc:
                if self._stop.is_set():
                    break
                if _is_auth_error(exc):
                    self.set_state(FeedStatus.AUTH_FAILED, f"{dataset}: {_describe(exc)}")
                    return
                if "limit" in str(exc).lower():
                    self.set_state(FeedStatus.SUBSCRIPTION_LIMIT, f"{dataset}: {_describe(exc)}")
                    return
                reason = _describe(exc)
            finally:
                if client is not None:
                    self._clients.discard(client)
                    with contextlib.suppress(Exception):
                        client.terminate()
            if self.state.status in (FeedStatus.SUBSCRIPTION_LIMIT, FeedStatus.AUTH_FAILED):
                return
            attempt += 1
            delay = self.backoff.delay(attempt, self._rng)
            with lock:
                if st.last_seen and not st.lost_at:
                    st.lost_at = st.last_seen
                st.reason = f"{reason}; reconnected after {attempt} attempt(s)"
            self.set_state(
                FeedStatus.RECONNECTING,
                f"{dataset}: {reason}; attempt {attempt}, retry in {delay:.1f} s",
            )
            if self._stop.wait(delay):
                break

    def _gateway_error(self, dataset: str, rec: Any) -> None:
        if not hasattr(rec, "err"):
            return  # a system message (heartbeat, subscription ack)
        text = str(rec.err)
        if "limit" in text.lower():
            self.set_state(FeedStatus.SUBSCRIPTION_LIMIT, f"{dataset}: {text}")
        else:
            log.warning("databento gateway %s: %s", dataset, text)


def _error_types() -> tuple[type, ...]:
    import databento_dbn as dbn

    return (dbn.ErrorMsg, dbn.SystemMsg)
