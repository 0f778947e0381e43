"""Build the configured feed adapter: the one place that maps ``feed.adapter`` to a class.

``preflight`` runs before the UI starts: a live feed whose vendor SDK is missing or
whose credentials are absent stops start-up with one line naming what to install or
set, so the app never opens half-broken.
"""

from __future__ import annotations

from islandflow_tui.config import Config
from islandflow_tui.engine.ingest.base import FeedAdapter

LIVE_FEEDS = ("alpaca", "databento", "ibkr")


class FeedUnavailable(RuntimeError):
    """The configured feed cannot run in this install: the message says why and what to do."""


def _databento_class() -> type:
    try:
        from islandflow_tui.engine.ingest.databento_feed import DatabentoFeed
    except ImportError:
        raise FeedUnavailable(
            "databento feed needs the databento package: pip install 'islandflow-tui[databento]'"
        ) from None
    return DatabentoFeed


def preflight(cfg: Config) -> str | None:
    """One line naming what to install or set if the configured feed cannot start."""
    from islandflow_tui.engine import credentials

    feed = cfg.feed.adapter
    if feed not in LIVE_FEEDS:
        return None
    missing = credentials.missing_package(feed)
    if missing:
        return missing
    if feed == "databento":
        try:
            _databento_class()
        except FeedUnavailable as exc:
            return str(exc)
    try:
        credentials.require(cfg, feed)
    except credentials.CredentialError as exc:
        return str(exc)
    return None


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
    problem = preflight(cfg)
    if problem:
        raise FeedUnavailable(problem)
    if cfg.feed.adapter == "alpaca":
        from islandflow_tui.engine.ingest.alpaca_feed import AlpacaFeed

        return AlpacaFeed(cfg)
    if cfg.feed.adapter == "ibkr":
        from islandflow_tui.engine.ingest.ibkr_feed import IbkrFeed

        return IbkrFeed(cfg)
    if cfg.feed.adapter == "databento":
        return _databento_class()(cfg.databento, allowed_lateness_ms=cfg.feed.allowed_lateness_ms)
    raise ValueError(f"feed {cfg.feed.adapter!r} is not built yet")
