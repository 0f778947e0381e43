"""SVG snapshots of the Tape screen in a replay: paused after a seek to a fixed time.

The session is the one ``test_replay_ui`` records (fixed seed, start and session
name); each snapshot replays a fresh copy, so the checkpoint a seek restores is
always the recorder's own and the screen (tape rows, event-time rates, scrub bar,
``REPLAY … PAUSED``) is the same on every run.  Baselines live in
``snapshots/test_replay_snapshots/``; regenerate with ``--snapshot-update`` and
look at them before committing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from islandflow_tui.engine.session import parse_time
from tests.test_replay_ui import make_replay, replay_master

__all__ = ["replay_master"]  # the session-scoped fixture, shared with test_replay_ui

SEEK_TO = "09:31:03.5"  # New York; 3.5 s past a checkpoint, so the 2 s rates are whole


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_replay_screen_paused_after_seek(
    snap_compare: Callable[..., bool], replay_master: Path, tmp_path: Path, size: tuple[int, int]
) -> None:
    rig = make_replay(replay_master, tmp_path)

    async def run_before(pilot: Pilot[None]) -> None:
        await rig.settle(pilot)  # the scrub bar appears and reads the session
        target = parse_time(SEEK_TO, rig.feed.source.first_ts)
        assert target is not None
        rig.screen.seek(target)
        await rig.settle(pilot)
        assert rig.state.position_ns == target and rig.state.paused

    assert snap_compare(rig.app, terminal_size=size, run_before=run_before)
