"""The synthetic market as a live feed: paces generated event time to the wall clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import polars as pl

from islandflow_tui.config import SyntheticConfig
from islandflow_tui.engine.events import FeedBatch
from islandflow_tui.engine.ingest.base import FeedAdapter, FeedStatus
from islandflow_tui.engine.ingest.synthetic import SyntheticMarket, start_ns_from_config

BACKFILL_GROUP = 10


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
                    await asyncio.sleep(0)
            else:
                await asyncio.sleep(0)
            if self._closed:
                break
            yield batch
        self.set_state(FeedStatus.STOPPED)

    def _next(self) -> FeedBatch:
        """The next batch; while still in the backfill, ten ticks at a time.

        Engine cost per batch is mostly fixed overhead, and the output does not
        depend on batching, so the history is generated and computed in big steps.
        """
        batch = self.market.next_batch()
        if batch.watermark >= self.live_from_ns:
            return batch
        group = [batch]
        while len(group) < BACKFILL_GROUP and group[-1].watermark < self.live_from_ns:
            group.append(self.market.next_batch())
        frames = {s: pl.concat([b.frames[s] for b in group]) for s in batch.frames}
        return FeedBatch(frames, group[-1].watermark)

    def close(self) -> None:
        self._closed = True
