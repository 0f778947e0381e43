"""Seek-speed checkpoint storage: blocks shared between checkpoints, retained frames
restored unread, and both give exactly what a plain checkpoint (or no checkpoint) gives."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine import replay
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.ingest.synthetic import SyntheticMarket, start_ns_from_config
from islandflow_tui.engine.replay import (
    LAZY_FRAMES,
    BlockIndex,
    block_bounds,
    block_digest,
    load_checkpoint,
    save_checkpoint,
)

START = "2025-11-25T14:30:00Z"


def _frame(ids: np.ndarray) -> pl.DataFrame:
    """Rows keyed by id with content that depends only on the id (like retained prints)."""
    return pl.DataFrame(
        {
            "id": ids,
            "ts": ids * 7 % 1000,
            "price": (ids % 97) / 4.0,
            "venue": pl.Series([str(i % 5) for i in ids.tolist()], dtype=pl.String),
            "spot": pl.Series([None if i % 11 == 0 else i / 3 for i in ids.tolist()]),
        }
    )


def _digests(frame: pl.DataFrame) -> dict[str, int]:
    """digest -> rows of each block."""
    b = block_bounds(frame)
    assert b is not None
    return {block_digest(frame.slice(x, y - x)): y - x for x, y in pairwise(b)}


def _new_rows(frame: pl.DataFrame, old: dict[str, int]) -> int:
    return sum(n for d, n in _digests(frame).items() if d not in old)


def test_block_boundaries_depend_on_content_not_position(monkeypatch) -> None:
    monkeypatch.setattr(replay, "BLOCK_ROWS", 64)
    full = _frame(np.arange(20_000, dtype=np.int64))
    base = _digests(full)
    assert 100 < len(base) < 1000  # ~20 000 / 64 blocks
    biggest = max(base.values())
    # older rows expire in front, 3 000 new rows come behind: only those and the
    # block the front cut falls in are stored again
    slid = _frame(np.arange(3_000, 23_000, dtype=np.int64))
    assert 3_000 <= _new_rows(slid, base) <= 3_000 + 2 * biggest
    # one row removed in the middle (a cancelled print): only its block changes
    cut = pl.concat([full.slice(0, 10_000), full.slice(10_001)])
    assert 0 < _new_rows(cut, base) <= 2 * biggest
    assert len(set(_digests(cut)) - set(base)) <= 1
    assert block_bounds(pl.DataFrame({"s": ["a", "b"]})) is None  # nothing to hash


def test_block_digest_is_exact_content_wherever_the_rows_sit() -> None:
    """Equal rows give one digest at any offset of any frame; any difference in a
    value, a null, a float's sign bit, a string or a column's type gives another."""
    base = pl.DataFrame(
        {
            "i": pl.Series([1, 2, 3], dtype=pl.Int64),
            "f": [0.0, 1.5, None],
            "b": [True, None, False],
            "d": pl.Series([1, 2, 3], dtype=pl.Int32).cast(pl.Date),
            "s": ["a", "bc", None],
            "l": [[1], [], None],
        }
    )
    d0 = block_digest(base)
    padded = pl.concat([base.slice(2), base, base.slice(0, 1)])
    assert replay.BlockHasher(padded).digest(1, 4) == d0
    variants = [
        base.with_columns(pl.Series("i", [1, 2, 4], dtype=pl.Int64)),
        base.with_columns(pl.Series("i", [1, 2, 3], dtype=pl.Int32)),
        base.with_columns(pl.Series("f", [-0.0, 1.5, None])),
        base.with_columns(pl.Series("f", [0.0, 1.5, 0.0])),  # a null became a zero
        base.with_columns(pl.Series("b", [True, False, False])),
        base.with_columns(pl.Series("s", ["a", "b", "c"])),
        base.with_columns(pl.Series("l", [[1], [0], None])),
        base.rename({"i": "j"}),
    ]
    digests = {block_digest(v) for v in variants}
    assert len(digests) == len(variants) and d0 not in digests
    dec = pl.DataFrame({"x": pl.Series([1.25, None]).cast(pl.Decimal(10, 2))})
    other = pl.DataFrame({"x": pl.Series([1.5, None]).cast(pl.Decimal(10, 2))})
    assert block_digest(dec) == block_digest(dec.clone()) != block_digest(other)


def test_blocked_checkpoints_load_exactly_and_share_blocks(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(replay, "BLOCK_MIN_ROWS", 1_000)
    monkeypatch.setattr(replay, "BLOCK_ROWS", 256)
    blocks = BlockIndex(tmp_path)
    states = []
    for k in range(4):  # a sliding window of rows plus one removed row, and a small frame
        ids = np.arange(k * 2_000, k * 2_000 + 30_000, dtype=np.int64)
        ids = ids[ids != k * 2_000 + 15_000 + k]
        states.append({"big": _frame(ids), "small": pl.DataFrame({"x": [k]})})
        save_checkpoint(tmp_path, 1_000 + k, states[-1], blocks)
    folder = tmp_path / "checkpoints"
    sizes = [
        sum(p.stat().st_size for p in (folder / f"{1_000 + k:020d}").iterdir()) for k in range(4)
    ]
    assert sizes[1] < sizes[0] / 3 and sizes[3] < sizes[0] / 3
    for k, state in enumerate(states):
        for packs in (None, replay.PackCache(max_bytes=1)):
            got = load_checkpoint(tmp_path, 1_000 + k, packs)
            assert set(got) == set(state)
            for name, frame in state.items():
                assert got[name].schema == frame.schema
                assert got[name].equals(frame), (k, name)
        lazy = load_checkpoint(tmp_path, 1_000 + k, lazy=frozenset({"big", "small"}))
        assert isinstance(lazy["big"], pl.LazyFrame)
        assert lazy["big"].collect().equals(state["big"])
        assert lazy["small"].collect().equals(state["small"])
    # a new writer (a replay adding checkpoints to this session) reuses the blocks on disk
    again = BlockIndex(tmp_path)
    save_checkpoint(tmp_path, 2_000, states[-1], again)
    assert not (folder / f"{2_000:020d}" / "big.blocks.arrow").exists()
    assert load_checkpoint(tmp_path, 2_000)["big"].equals(states[-1]["big"])


def test_a_missing_blocks_file_fails_the_load_not_the_engine(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(replay, "BLOCK_MIN_ROWS", 1_000)
    blocks = BlockIndex(tmp_path)
    frame = _frame(np.arange(5_000, dtype=np.int64))
    save_checkpoint(tmp_path, 1, {"big": frame}, blocks)
    save_checkpoint(tmp_path, 2, {"big": frame}, blocks)  # all of it lives in checkpoint 1
    (tmp_path / "checkpoints" / f"{1:020d}" / "big.blocks.arrow").unlink()
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path, 2)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path, 2, lazy=frozenset({"big"}))


# ---------------------------------------------------------------------------
# Lazy restore of the packets' retained prints
# ---------------------------------------------------------------------------
def _market(n: int) -> list[ev.FeedBatch]:
    m = SyntheticMarket("active", 7, start_ns_from_config(START, 0), 1000)
    return [m.next_batch() for _ in range(n)]


def _with_cancels(batches: list[ev.FeedBatch], of: int, into: int, every: int) -> None:
    """Cancel every ``every``-th print of batch ``of`` at the start of batch ``into``
    (OPRA repeats the cancelled trade with the cancel flag)."""
    target = batches[of].frames[ev.OPTIONS_PRINTS]
    t0 = batches[into - 1].watermark
    cancels = target.gather_every(every).with_columns(
        (pl.lit(t0) + pl.int_range(pl.len())).alias("ts"),
        pl.lit(int(ev.Cond.CANCEL), pl.Int32).alias("flags"),
    )
    b = batches[into]
    prints = pl.concat([cancels, b.frames[ev.OPTIONS_PRINTS]]).sort("ts", maintain_order=True)
    batches[into] = ev.FeedBatch({**b.frames, ev.OPTIONS_PRINTS: prints}, b.watermark)


def _cfg(lookback_ms: int = 60_000) -> Config:
    cfg = Config()
    cfg.flow.cancel_lookback_ms = lookback_ms
    return cfg


def _run(
    batches: list[ev.FeedBatch], cfg: Config, at: int | None = None, tmp: Path | None = None
) -> tuple[dict[str, pl.DataFrame], list[Engine]]:
    """Outputs of a straight run, or of one checkpointed after batch ``at`` and carried
    on by a fresh engine restored lazily from disk (what a seek does)."""
    engine = Engine(cfg)
    engines = [engine]
    got: dict[str, list[pl.DataFrame]] = {}
    for i, b in enumerate(batches):
        for stream, frame in engine.ingest(b).items():
            got.setdefault(stream, []).append(frame)
        if at is not None and i == at:
            assert tmp is not None
            save_checkpoint(tmp, engine.watermark, engine.checkpoint(), BlockIndex(tmp))
            engine = Engine(cfg)
            engine.restore(load_checkpoint(tmp, engines[0].watermark, lazy=LAZY_FRAMES))
            engines.append(engine)
    for stream, frame in engine.flush().items():
        got.setdefault(stream, []).append(frame)
    return {s: pl.concat(f) for s, f in got.items() if f}, engines


def _same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    assert set(a) == set(b)
    for s in a:
        assert a[s].equals(b[s]), s


def test_lazy_restore_then_a_cancel_of_a_retained_print_matches_a_straight_run(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(replay, "BLOCK_MIN_ROWS", 500)
    monkeypatch.setattr(replay, "BLOCK_ROWS", 128)
    batches = _market(12)
    _with_cancels(batches, of=3, into=8, every=7)
    straight, (straight_engine,) = _run(batches, _cfg())
    # the cancels reached packets decided before the checkpoint: corrections were issued
    assert (straight[ev.FLOW_PACKETS]["status"] != "final").sum() > 0

    loads: list[int] = []
    real = replay.pl.scan_ipc

    def counting_scan(*a, **kw):  # type: ignore[no-untyped-def]
        loads.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(replay.pl, "scan_ipc", counting_scan)
    seen: dict[str, object] = {}
    original_ingest = Engine.ingest

    def watch(self: Engine, b: ev.FeedBatch):  # type: ignore[no-untyped-def]
        chunks = self.compute.packets._chunks
        if b is batches[8] and chunks:
            seen["unread_before_cancel"] = chunks[0].unread
        out = original_ingest(self, b)
        if b is batches[8] and chunks:
            seen["read_after_cancel"] = not chunks[0].unread
        return out

    monkeypatch.setattr(Engine, "ingest", watch)
    restored, engines = _run(batches, _cfg(), at=5, tmp=tmp_path)
    _same(straight, restored)
    assert loads, "the retained frames were passed to the restore unread"
    assert seen == {"unread_before_cancel": True, "read_after_cancel": True}
    assert (
        straight_engine.compute.packets.unmatched_cancels
        == engines[1].compute.packets.unmatched_cancels
    )


def test_lazy_restore_without_cancels_never_reads_the_retained_prints(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(replay, "BLOCK_MIN_ROWS", 500)
    batches = _market(14)
    cfg = _cfg(lookback_ms=3_000)  # the restored chunk expires within the run
    straight, _ = _run(batches, cfg)
    read: list[int] = []
    from islandflow_tui.engine.compute import packets as pk

    real = pk.members_restore

    def counting(*a, **kw):  # type: ignore[no-untyped-def]
        read.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(pk, "members_restore", counting)
    restored, engines = _run(batches, cfg, at=4, tmp=tmp_path)
    _same(straight, restored)
    assert read == []
    assert not any(c.unread for c in engines[1].compute.packets._chunks)


def test_a_restored_engine_checkpoints_the_same_state(tmp_path: Path) -> None:
    """state() of a lazily restored engine (reads what it needs) equals the original."""
    batches = _market(6)
    engine = Engine(_cfg())
    for b in batches:
        engine.ingest(b)
    state = engine.checkpoint()
    save_checkpoint(tmp_path, engine.watermark, state, BlockIndex(tmp_path))
    again = Engine(_cfg())
    again.restore(load_checkpoint(tmp_path, engine.watermark, lazy=LAZY_FRAMES))
    back = again.checkpoint()
    assert set(back) == set(state)
    for k in state:
        assert back[k].equals(state[k]), k


def test_clock_skips_an_interval_multiple_right_after_a_count_checkpoint() -> None:
    from islandflow_tui.engine.checkpoints import CheckpointClock

    s = 1_000_000_000
    clock = CheckpointClock(10 * s, max_events=1000)
    clock.start(0)
    assert clock.due(int(9.7 * s), 1000)  # the event count fires first
    clock.taken(int(9.7 * s))
    assert not clock.due(10 * s, 0)  # 0.3 s later: the multiple is skipped
    assert not clock.due(19 * s, 0)
    assert clock.due(20 * s, 0)  # the next one still applies
    clock.taken(20 * s)
    assert clock.due(30 * s, 0)


def test_a_seek_reports_its_cost_and_leaves_the_collector_as_it_was(tmp_path: Path) -> None:
    import gc

    from islandflow_tui.engine.replay import ReplayFeed
    from tests.test_replay_engine import live_config, record_ticks

    cfg = live_config(tmp_path)
    cfg.replay.checkpoint_interval_s = 2.0
    rec, _ = record_ticks(cfg, 80)  # 8 s
    rcfg = Config()
    rcfg.paths.data_dir = str(tmp_path)
    rcfg.feed.adapter = "replay"
    feed = ReplayFeed(rec.path, paused=True, checkpoint_interval_s=2.0)
    replayed = Engine(rcfg, feed)
    target = feed.source.first_ts + 5_500_000_000
    feed._seek(target)
    cost = feed.last_seek
    assert cost is not None and cost.target == target
    assert feed.source.first_ts < cost.start <= target  # from a checkpoint, not the start
    assert cost.events > 0 and cost.restore > 0 and cost.fast_forward > 0
    assert cost.total >= cost.restore + cost.fast_forward
    assert gc.isenabled()
    gc.disable()
    try:
        feed._seek(feed.source.first_ts + 1_000_000_000)
        assert not gc.isenabled()  # a caller's own pause is kept
    finally:
        gc.enable()
    assert replayed.watermark == feed.source.first_ts + 1_000_000_000


def test_a_checkpoint_damaged_inside_a_lazily_read_file_is_dropped_and_the_seek_redone(
    tmp_path: Path,
) -> None:
    """Damage a restore leaves unread shows only when the engine first decodes the
    frame: the replay names the checkpoint, stops using it, and seeks again from an
    earlier one, reading frames whole from then on; the screens then show exactly
    what a straight replay shows."""
    from islandflow_tui.engine.checkpoints import CheckpointUnreadable
    from islandflow_tui.engine.replay import ReplayFeed, list_checkpoints
    from tests.test_replay_engine import DISPLAY, live_config, play_until, record_ticks, shown

    cfg = live_config(tmp_path)
    cfg.replay.checkpoint_interval_s = 2.0
    rec, _ = record_ticks(cfg, 90)  # 9 s
    cps = list_checkpoints(rec.path)
    bad = cps[2]
    folder = rec.path / "checkpoints" / f"{bad:020d}"
    victim = next(
        p for p in folder.glob("packets.retained_packets*.arrow") if "manifest" not in p.name
    )
    data = bytearray(victim.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)  # same size: only decoding can tell
    victim.write_bytes(bytes(data))

    def replayer(**kw: int) -> tuple[Engine, ReplayFeed]:
        rcfg = live_config(tmp_path)
        rcfg.feed.adapter = "replay"
        feed = ReplayFeed(rec.path, paused=True, checkpoint_interval_s=2.0, **kw)
        return Engine(rcfg, feed), feed

    target = bad + 500_000_000
    straight, sfeed = replayer(ts_to=target)
    s_sub = straight.subscribe(list(DISPLAY), DISPLAY)
    asyncio.run(play_until(straight, sfeed, target))
    expected = shown(s_sub)

    seeking, feed = replayer()
    sub = seeking.subscribe(list(DISPLAY), DISPLAY)
    feed.control("seek", target)
    feed._apply_commands()
    assert feed.last_seek is not None and feed.last_seek.start == bad  # restored, unread
    with pytest.raises(CheckpointUnreadable):
        seeking.checkpoint()  # the first decode of the damaged frame
    assert feed.state_snapshot().bad_checkpoints == 0
    try:
        seeking.checkpoint()
    except CheckpointUnreadable as exc:
        feed.batch_failed(exc)  # what Engine's loop does with a failed batch
    feed._apply_commands()
    state = feed.state_snapshot()
    assert state.bad_checkpoints == 1 and str(folder) in state.warnings[-1]
    assert feed.position == target and feed.last_seek.start < bad
    assert bad not in feed._checkpoints
    seeking.checkpoint()  # whole now
    got = shown(sub)
    for stream in DISPLAY:
        assert got[stream].equals(expected[stream]), stream
