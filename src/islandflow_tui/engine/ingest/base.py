"""The one interface every feed implements, so the engine never cares where data comes from."""

from __future__ import annotations

import random
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


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential reconnect delays with jitter, so many clients do not reconnect in step.

    Attempt ``n`` (1-based) waits ``min(max_s, initial_s * factor**(n-1))`` scaled by a
    uniform factor in ``[1 - jitter, 1 + jitter]`` drawn from the caller's ``rng`` (seed
    it in tests to get a fixed schedule).
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1))
        return base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)

    def schedule(self, attempts: int, rng: random.Random) -> list[float]:
        return [self.delay(n, rng) for n in range(1, attempts + 1)]
