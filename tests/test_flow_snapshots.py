"""SVG snapshots of the Flow, Alerts and Evidence screens: fixed seed, fixed event-time
start, no engine thread (the clock is the event-time watermark), evidence workers
awaited.  Baselines in ``snapshots/test_flow_snapshots/``; regenerate with
``--snapshot-update`` and look at them before committing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from tests.conftest import TapeRig

SIZES = [(80, 24), (160, 48), (200, 60)]


def _ids(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


async def _paint(pilot: Pilot[None]) -> None:
    pilot.app.tick()  # type: ignore[attr-defined]
    await pilot.pause()


async def _settle(pilot: Pilot[None]) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=_ids)
def test_flow_screen(
    snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig], size: tuple[int, int]
) -> None:
    """Eight seconds of the active market on the Flow screen, sorted by premium."""
    rig = make_rig("active", batches=80)

    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("2")
        await _paint(pilot)
        await pilot.press("s")
        await _paint(pilot)

    assert snap_compare(rig.app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=_ids)
def test_alerts_screen(
    snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig], size: tuple[int, int]
) -> None:
    rig = make_rig("active", batches=80)

    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("3")
        await _paint(pilot)

    assert snap_compare(rig.app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=_ids)
def test_evidence_of_an_alert(
    snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig], size: tuple[int, int]
) -> None:
    """The newest alert's evidence: summary, packet + hits, and the score trace."""
    rig = make_rig("active", batches=80)

    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("3")
        await _paint(pilot)
        await pilot.press("enter")
        await _settle(pilot)
        await _paint(pilot)

    assert snap_compare(rig.app, terminal_size=size, run_before=run_before)


def test_evidence_of_a_packet(
    snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig]
) -> None:
    """One level down: the alert's packet with its member prints and kind trace."""
    rig = make_rig("active", batches=80)

    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("3")
        await _paint(pilot)
        await pilot.press("down", "down", "enter")
        await _settle(pilot)
        await pilot.press("enter")
        await _settle(pilot)
        await _paint(pilot)

    assert snap_compare(rig.app, terminal_size=(160, 48), run_before=run_before)
