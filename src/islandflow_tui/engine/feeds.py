"""Build the configured feed adapter: the one place that maps ``feed.adapter`` to a class."""

from __future__ import annotations

from islandflow_tui.config import Config
from islandflow_tui.engine.ingest.base import FeedAdapter


def build_adapter(cfg: Config) -> FeedAdapter:
    if cfg.feed.adapter == "synthetic":
        from islandflow_tui.engine.ingest.synthetic_feed import (
            SyntheticFeed,
            use_synthetic_open_interest,
        )

        feed = SyntheticFeed(cfg.synthetic)
        use_synthetic_open_interest(cfg, feed.market)  # before the engine reads cfg.flow
        return feed
    if cfg.feed.adapter == "replay":
        from islandflow_tui.engine.session import build_replay_feed

        return build_replay_feed(cfg)
    raise ValueError(f"feed {cfg.feed.adapter!r} is not built yet")
