"""Shared test set-up.

1. Snapshot SVGs live in the top-level ``snapshots/<test module>/`` rather than
   ``tests/__snapshots__``: pytest-textual-snapshot looks its extension class up by
   name at call time, so assigning a subclass back to the module redirects it.
2. ``tape_rig``: a deterministic Tape app.  The engine never starts its thread
   (``start_engine=False``); tests call ``rig.ingest(n)`` to feed it ``n`` batches
   of a seeded ``SyntheticMarket`` at a fixed event time, then ``rig.app.tick()``
   (the repaint tick, normally on a timer) so the screen shows them.  The app
   subscribes to the engine when it is built, so ingest after ``make_app``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import pytest_textual_snapshot

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.base import FeedStatus
from islandflow_tui.engine.ingest.synthetic_feed import SyntheticFeed

REPO = Path(__file__).resolve().parent.parent
SNAPSHOT_ROOT = REPO / "snapshots"

START = "2025-11-25T14:30:00Z"  # a Tuesday, 09:30:00 New York: the open
SEED = 7


class TopLevelSnapshots(pytest_textual_snapshot.SVGImageExtension):
    """SVG baselines in ``<repo>/snapshots/<test module stem>/``."""

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        return str(SNAPSHOT_ROOT / Path(test_location.filepath).stem)


pytest_textual_snapshot.SVGImageExtension = TopLevelSnapshots  # type: ignore[misc]


def tape_config(profile: str = "active", **ui: Any) -> Config:
    """A config with a fixed seed and start; ``ui`` overrides ``[ui]`` keys."""
    cfg = Config()
    cfg.synthetic.profile = profile
    cfg.synthetic.seed = SEED
    cfg.synthetic.start = START
    cfg.synthetic.pace = False
    cfg.synthetic.backfill_s = 0.0  # the tests feed batches themselves, from START on
    cfg.feed.engine = "thread"
    for key, value in ui.items():
        setattr(cfg.ui, key, value)
    return cfg


@dataclass
class TapeRig:
    """An app over an engine that only moves when the test says so."""

    cfg: Config
    feed: SyntheticFeed
    engine: Engine
    app: Any  # IslandflowApp (imported lazily: the engine tests must not load Textual)
    enriched: list[pl.DataFrame] = field(default_factory=list)

    def ingest(self, batches: int) -> pl.DataFrame:
        """Feed ``batches`` synthetic ticks; returns the options.enriched rows they made."""
        made: list[pl.DataFrame] = []
        for _ in range(batches):
            derived = self.engine.ingest(self.feed.market.next_batch())
            frame = derived.get(ev.OPTIONS_ENRICHED)
            if frame is not None and frame.height:
                made.append(frame)
        self.enriched.extend(made)
        return pl.concat(made) if made else ev.empty_frame(ev.OPTIONS_ENRICHED)

    @property
    def all_enriched(self) -> pl.DataFrame:
        return pl.concat(self.enriched) if self.enriched else ev.empty_frame(ev.OPTIONS_ENRICHED)


@pytest.fixture
def make_rig() -> Callable[..., TapeRig]:
    """``make_rig(profile="active", batches=30, **ui)`` -> a TapeRig already fed."""

    def build(profile: str = "active", batches: int = 30, **ui: Any) -> TapeRig:
        from islandflow_tui.app import make_app

        cfg = tape_config(profile, **ui)
        feed = SyntheticFeed(cfg.synthetic, now_ns=0)
        feed.set_state(FeedStatus.LIVE, profile)  # as if connected: the status bar says live
        engine = Engine(cfg, feed)
        app = make_app(cfg, engine, start_engine=False)
        rig = TapeRig(cfg, feed, engine, app)
        rig.ingest(batches)
        return rig

    return build
