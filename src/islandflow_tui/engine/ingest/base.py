"""The one interface every feed implements, so the engine never cares where data comes from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum

from islandflow_tui.engine.events import FeedBatch


class FeedStatus(StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    AUTH_FAILED = "auth failed"
    SUBSCRIPTION_LIMIT = "subscription limit"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class FeedState:
    status: FeedStatus
    detail: str = ""


class FeedAdapter(ABC):
    """Yields FeedBatches of raw streams; reports its state for the status bar."""

    name: str = "feed"

    def __init__(self) -> None:
        self._state = FeedState(FeedStatus.CONNECTING)

    @property
    def state(self) -> FeedState:
        return self._state

    def set_state(self, status: FeedStatus, detail: str = "") -> None:
        self._state = FeedState(status, detail)

    @abstractmethod
    def batches(self) -> AsyncIterator[FeedBatch]:
        """Async iterator of batches until the feed ends or ``close`` is called."""

    @abstractmethod
    def close(self) -> None:
        """Ask the feed to stop; ``batches`` ends soon after."""
