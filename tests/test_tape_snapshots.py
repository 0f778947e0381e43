"""SVG snapshots of the Tape screen: fixed seed, fixed event-time start, no engine thread.

The clock in the status bar is the engine's event-time watermark and every rate is
events per second of event time, so the screen is the same on every run.  Baselines
live in ``snapshots/test_tape_snapshots/``; regenerate with ``--snapshot-update``
and look at them before committing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.conftest import TapeRig


async def _paint(pilot: Pilot[None]) -> None:
    """One repaint tick, as the timer would do, then let the screen settle."""
    pilot.app.tick()  # type: ignore[attr-defined]
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 48), (200, 60)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_tape_screen(
    snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig], size: tuple[int, int]
) -> None:
    """The home screen after three seconds of the active synthetic market."""
    rig = make_rig("active", batches=30)
    assert snap_compare(rig.app, terminal_size=size, run_before=_paint)


def test_tape_paused_with_new_rows(
    snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig]
) -> None:
    """Paused at 80x24 under the 'all' preset: the badges count rows that arrived since."""
    rig = make_rig("active", batches=20)

    async def run_before(pilot: Pilot[None]) -> None:
        await _paint(pilot)
        await pilot.press("p", "p", "space")  # smart-money -> balanced -> all; pause
        rig.ingest(10)
        await _paint(pilot)

    assert snap_compare(rig.app, terminal_size=(80, 24), run_before=run_before)


def test_tape_filtered_light_theme(
    snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig]
) -> None:
    """The light theme with a symbol filter, puts only and a minimum premium, at 160x48."""
    rig = make_rig("active", batches=30, theme="islandflow-light", preset="balanced")

    async def run_before(pilot: Pilot[None]) -> None:
        await _paint(pilot)
        await pilot.press("slash", *"tsla,nvda", "enter", "c", "c", "m", *"5k", "enter")
        await _paint(pilot)

    assert snap_compare(rig.app, terminal_size=(160, 48), run_before=run_before)


def test_help_screen(snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig]) -> None:
    """Help at 80x24 lists the keys from the bindings."""
    rig = make_rig("active", batches=10)
    assert snap_compare(rig.app, terminal_size=(80, 24), run_before=_paint, press=["question_mark"])


def test_min_premium_prompt_error(
    snap_compare: Callable[..., bool], make_rig: Callable[..., TapeRig]
) -> None:
    """A bad minimum premium keeps the prompt open with the reason under the input."""
    rig = make_rig("active", batches=10)

    async def run_before(pilot: Pilot[None]) -> None:
        await _paint(pilot)
        await pilot.press("m")
        pilot.app.screen.query_one(Input).cursor_blink = False
        await pilot.press(*"lots", "enter")

    assert snap_compare(rig.app, terminal_size=(80, 24), run_before=run_before)
