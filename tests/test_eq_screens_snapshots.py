"""SVG snapshots of the Dark and Candles screens over the deterministic fixture.

The fixture (tests/eq_fixtures.py, seed 11: an hour of SPY, NVDA and AAPL from
09:30 New York) is published on the engine's bus as the equities operators will
publish it; the engine clock is moved to its last print, so the status bar shows
that event time.  Baselines live in ``snapshots/test_eq_screens_snapshots/``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from tests.conftest import TapeRig
from tests.eq_fixtures import make_eq_fixture, publish

SIZES = [(80, 24), (160, 48), (200, 60)]


def _rig(make_rig: Callable[..., TapeRig], **ui: object) -> TapeRig:
    rig = make_rig("active", batches=0, **ui)
    publish(rig.engine, make_eq_fixture())
    return rig


def _open(*keys: str) -> Callable[[Pilot[None]], object]:
    async def run_before(pilot: Pilot[None]) -> None:
        pilot.app.tick()  # type: ignore[attr-defined]
        await pilot.pause()
        await pilot.press(*keys)
        pilot.app.tick()  # type: ignore[attr-defined]
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dark_screen(
    snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig], size: tuple[int, int]
) -> None:
    """Inferred events (newest first), the chosen one in full, off-exchange prints."""
    assert snap_compare(_rig(make_rig).app, terminal_size=size, run_before=_open("4"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_candles_screen(
    snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig], size: tuple[int, int]
) -> None:
    """The most traded symbol's 1-minute candles at the live edge."""
    assert snap_compare(_rig(make_rig).app, terminal_size=size, run_before=_open("5"))


def test_dark_cursor_and_filter(
    snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig]
) -> None:
    """Blocks only, the third one chosen (the list paused under the cursor), at 80x24."""
    run = _open("4", "t", "down", "down")
    assert snap_compare(_rig(make_rig).app, terminal_size=(80, 24), run_before=run)


def test_candles_panned_zoomed_in_light_theme(
    snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig]
) -> None:
    """Light theme, next symbol, zoomed in one step and panned into the past, at 160x48."""
    rig = _rig(make_rig, theme="islandflow-light")
    run = _open("5", "s", "plus", "h")
    assert snap_compare(rig.app, terminal_size=(160, 48), run_before=run)
