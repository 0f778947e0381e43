"""The synthetic market as a live feed: paces generated event time to the wall clock."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import polars as pl

from islandflow_tui.config import Config, SyntheticConfig
from islandflow_tui.engine.events import FeedBatch
from islandflow_tui.engine.ingest.base import FeedAdapter, FeedStatus
from islandflow_tui.engine.ingest.synthetic import SyntheticMarket, start_ns_from_config

BACKFILL_GROUP = 10
#: at most this many ticks in one batch when the engine fell behind the wall clock
CATCH_UP_GROUP = 20
log = logging.getLogger("islandflow.synthetic")


def _drop_stale_tmp(folder: Path) -> None:
    """Half-written tables of processes that died mid-write (``*.tmp<pid>``)."""
    if not folder.is_dir():
        return
    for f in folder.glob("synthetic-open-interest-*.tmp*"):
        pid = f.suffix.removeprefix(".tmp")
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            f.unlink(missing_ok=True)
        except PermissionError:  # alive, another user's
            pass


def use_synthetic_open_interest(cfg: Config, market: SyntheticMarket) -> Path | None:
    """Give the flow engine the synthetic market's open-interest table.

    Why a file: ``flow.open_interest_path`` is part of the compute config a session
    records, so a replay or ``islandflow verify`` of the session loads the very same
    table and recomputes exactly what live did.  The table depends only on the seed and
    the event date; it is written once under ``<data dir>/reference/``.  Nothing
    happens when ``synthetic.open_interest`` is off or a path is already configured
    (a real table wins).  A data dir that cannot be written only costs the open
    interest (logged): packets then carry none, as before.
    """
    if not cfg.synthetic.open_interest or cfg.flow.open_interest_path:
        return None
    path = (
        cfg.data_path()
        / "reference"
        / f"synthetic-open-interest-seed{market.seed}-{market.event_date.isoformat()}.csv"
    )
    try:
        _drop_stale_tmp(path.parent)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            market.open_interest.write_csv(tmp)
            tmp.replace(path)
    except OSError as exc:
        log.warning("synthetic open interest not written (%s): packets carry none", exc)
        return None
    cfg.flow.open_interest_path = str(path)
    return path


class SyntheticFeed(FeedAdapter):
    name = "synthetic"

    def __init__(self, cfg: SyntheticConfig, *, now_ns: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        start = start_ns_from_config(cfg.start, time.time_ns() if now_ns is None else now_ns)
        # the market begins backfill_s before the start; that stretch is played at once
        self.live_from_ns = start
        begin = start - int(cfg.backfill_s * 1e9)
        self.market = SyntheticMarket(cfg.profile, cfg.seed, begin, cfg.tick_ms)
        self._held: FeedBatch | None = None  # a tick generated while catching up, not due
        self._closed = False

    @property
    def label(self) -> str:
        return f"synthetic/{self.cfg.profile}"

    async def batches(self) -> AsyncIterator[FeedBatch]:
        self.set_state(FeedStatus.LIVE, self.cfg.profile)
        wall0 = time.perf_counter()
        ev0 = self.live_from_ns
        while not self._closed:
            batch = self._next()
            if self.cfg.pace:
                due = wall0 + (batch.watermark - ev0) / 1e9
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    # behind the wall clock (a busy engine, a slow machine): the ticks
                    # already due go as one batch, as a real feed's socket buffer
                    # would drain; a batch costs the engine mostly fixed overhead and
                    # the output does not depend on batching, so it catches up
                    batch = self._catch_up(batch, wall0, ev0)
                    await asyncio.sleep(0)
            else:
                await asyncio.sleep(0)
            if self._closed:
                break
            yield batch
        self.set_state(FeedStatus.STOPPED)

    def _catch_up(self, batch: FeedBatch, wall0: float, ev0: int) -> FeedBatch:
        group = [batch]
        now = time.perf_counter()
        while len(group) < CATCH_UP_GROUP:
            tick = self.market.next_batch()
            if wall0 + (tick.watermark - ev0) / 1e9 > now:
                self._held = tick  # not due yet: the next batch starts with it
                break
            group.append(tick)
        return _merged(group)

    def _next(self) -> FeedBatch:
        """The next batch; while still in the backfill, ten ticks at a time.

        Engine cost per batch is mostly fixed overhead, and the output does not
        depend on batching, so the history is generated and computed in big steps.
        """
        batch, self._held = self._held or self.market.next_batch(), None
        if batch.watermark >= self.live_from_ns:
            return batch
        group = [batch]
        while len(group) < BACKFILL_GROUP and group[-1].watermark < self.live_from_ns:
            group.append(self.market.next_batch())
        return _merged(group)

    def close(self) -> None:
        self._closed = True


def _merged(group: list[FeedBatch]) -> FeedBatch:
    """Consecutive market ticks as one batch."""
    if len(group) == 1:
        return group[0]
    streams = dict.fromkeys(s for b in group for s in b.frames)
    frames = {s: pl.concat([b.frames[s] for b in group if s in b.frames]) for s in streams}
    return FeedBatch(frames, group[-1].watermark)
