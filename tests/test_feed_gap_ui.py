"""A feed gap is shown to the user: a notification over the tape and the status bar."""

from __future__ import annotations

from collections.abc import Callable

from islandflow_tui.engine import events as ev
from islandflow_tui.widgets.status_bar import StatusBar
from tests.conftest import TapeRig


async def test_gap_pops_up_over_the_tape_and_stays_in_the_status_bar(
    make_rig: Callable[..., TapeRig],
) -> None:
    rig = make_rig("active", batches=10)
    async with rig.app.run_test(size=(160, 40)) as pilot:
        rig.app.tick()
        await pilot.pause()
        assert not any(n.title == "Feed gap" for n in rig.app._notifications)
        nxt = rig.feed.market.next_batch()
        gap = ev.FeedGap("alpaca", nxt.watermark - 3 * 10**9, nxt.watermark, "reset; reconnected")
        rig.engine.ingest(ev.FeedBatch(nxt.frames, nxt.watermark, gap=gap))
        rig.app.tick()
        await pilot.pause()
        shown = [n for n in rig.app._notifications if n.title == "Feed gap"]
        assert len(shown) == 1 and "(3.0s): reset; reconnected" in shown[0].message
        rig.app.tick()  # the same gap is not notified twice
        await pilot.pause()
        assert sum(n.title == "Feed gap" for n in rig.app._notifications) == 1
        bar = rig.app.screen.query_one(StatusBar)
        assert "gap 1 " in bar.plain
