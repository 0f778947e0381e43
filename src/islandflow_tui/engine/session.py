"""Wiring between an engine run and the session log: recording live runs, opening replays.

Shared by the engine process, the thread engine and the headless runner so that
every way of running records (and checkpoints) the same way.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from islandflow_tui import __version__
from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.log import SessionRecorder, list_sessions, sessions_root, start_recording

if TYPE_CHECKING:
    from islandflow_tui.engine.core import Engine
    from islandflow_tui.engine.replay import ReplayFeed

log = logging.getLogger("islandflow.session")
NEW_YORK = ZoneInfo("America/New_York")


class SessionNotFound(ValueError):
    pass


#: config sections that decide derived output (everything else is I/O or display)
COMPUTE_SECTIONS = frozenset({"nbbo", "signal", "side", "flow", "classifier", "alerts"})


def with_session_compute_config(cfg: Config, session: Path) -> Config:
    """``cfg`` with the compute sections the session was recorded with, so a replay
    reproduces what live computed even if the config file changed since."""
    import copy
    import json

    try:
        meta = json.loads((session / "meta.json").read_text())
    except (OSError, ValueError):
        return cfg
    recorded = meta.get("compute_config") or {}
    out = copy.deepcopy(cfg)
    oi_file = session / "open_interest.parquet"
    for section, values in recorded.items():
        target = getattr(out, section, None)
        if target is None or not isinstance(values, dict):
            continue
        for key, value in values.items():
            if hasattr(target, key):
                setattr(target, key, value)
    if not out.flow.open_interest_path and oi_file.is_file():
        # open interest the session brought with it (islandflow import of statistics)
        out.flow.open_interest_path = str(oi_file)
    return out


def attach_recording(
    engine: Engine, cfg: Config, extra_meta: dict[str, Any] | None = None
) -> tuple[SessionRecorder | None, list[str]]:
    """Record every raw and derived stream of a live run, with checkpoints for seeks.

    ``extra_meta`` adds keys to meta.json (an import names its files and session name).

    Returns the recorder (None when recording is off or the feed is a replay) and
    human lines about start-up (recovered segments, retention) for the status bar.
    """
    if not cfg.log.record or cfg.feed.adapter == "replay":
        return None, []
    adapter = engine.adapter
    meta = {
        "adapter": cfg.feed.adapter,
        "profile": cfg.synthetic.profile if cfg.feed.adapter == "synthetic" else "",
        "seed": cfg.synthetic.seed if cfg.feed.adapter == "synthetic" else None,
        "feed": getattr(adapter, "label", cfg.feed.adapter),
        "config_digest": cfg.digest(),
        "version": __version__,
        "checkpoint_interval_s": cfg.replay.checkpoint_interval_s,
        # the compute sections, so a replay or verify computes with the same rules
        "compute_config": {k: v for k, v in cfg.as_dict().items() if k in COMPUTE_SECTIONS},
        **(extra_meta or {}),
    }
    recorder, notes = start_recording(cfg.data_path(), meta, cfg.log, ev.ALL_STREAMS)
    if recorder.error:
        return recorder, [*notes, f"recording off: {recorder.error}"]
    engine.subscribe_lossless(recorder.streams, recorder.write)
    path = recorder.path
    if path is not None:
        from islandflow_tui.engine.checkpoints import CheckpointWriter
        from islandflow_tui.engine.replay import BlockIndex, save_checkpoint

        # Checkpoints are an optimisation: at firehose rates one is ~10 MB (~16 GB an
        # hour), so they get a budget that grows with the recording (a share of its
        # sealed segments' bytes, at least a quarter of the retention budget) and
        # never the disk's last free space; a checkpoint past either is skipped
        # (seeks then fast-forward from the one before: slower, still exact) and
        # later ones resume once the recording has grown or space is back.
        quarter = cfg.log.max_disk_gb * 2**30 / 4
        share = cfg.replay.checkpoint_disk_share
        min_free = cfg.replay.checkpoint_min_free_gb * 2**30
        used = [0]
        blocks = BlockIndex(path)

        def skip_reason() -> tuple[str, str]:
            """(short reason for the status bar, the log's line); empty: write it."""
            if cfg.log.max_disk_gb:
                budget = max(quarter, share * recorder.bytes_sealed)
                if used[0] >= budget:
                    return "disk budget", (
                        f"checkpoints reached {used[0] / 2**30:.1f} GiB, the larger of a "
                        f"quarter of log.max_disk_gb and {share:g}x the sealed segments"
                    )
            if min_free:
                try:
                    free = shutil.disk_usage(path).free
                except OSError:
                    free = min_free
                if free < min_free:
                    return "low disk", (
                        f"{free / 2**30:.1f} GiB free on the data dir's disk, below "
                        f"replay.checkpoint_min_free_gb {min_free / 2**30:g}"
                    )
            return "", ""

        def write(watermark: int, state: dict) -> None:
            if recorder.error:
                return
            save_checkpoint(path, watermark, state, blocks)
            folder = path / "checkpoints" / f"{watermark:020d}"
            used[0] += sum(f.stat().st_size for f in folder.glob("*.arrow"))

        writer = CheckpointWriter(write)

        def ready() -> bool:
            """On the engine thread, before it spends time taking the state."""
            short, reason = skip_reason()
            if short != recorder.checkpoint_pause:
                if short:
                    log.warning("checkpoints paused: %s; seeks past here fast-forward", reason)
                else:
                    log.warning("checkpoints resumed")
                recorder.checkpoint_pause = short
            if short:
                recorder.checkpoints_skipped += 1
                return False
            return writer.has_room()

        recorder.checkpoint_writer = writer
        engine.set_checkpoint_sink(
            writer.submit,
            int(cfg.replay.checkpoint_interval_s * ev.NS_PER_S),
            cfg.replay.checkpoint_max_events,
            ready,
        )
    engine.recorder = recorder
    return recorder, notes


def finish_recording(engine: Engine, recorder: SessionRecorder | None) -> None:
    """End of a live run: finalise open windows so the derived streams are complete,
    then seal every segment."""
    if recorder is None:
        return
    try:
        engine.flush()
    except Exception:
        log.exception("final flush failed")
    writer = getattr(recorder, "checkpoint_writer", None)
    if writer is not None:
        writer.close()
    recorder.close()


def resolve_session(cfg: Config, name: str = "") -> Path:
    """A session folder from an id, a path, or (empty) the newest session."""
    name = name or cfg.replay.session
    if name:
        p = Path(name).expanduser()
        if p.is_dir():
            return p
        candidate = sessions_root(cfg.data_path()) / name
        if candidate.is_dir():
            return candidate
        named = [s for s in list_sessions(cfg.data_path()) if s.meta.get("name") == name]
        if named:
            return named[-1].path  # the newest session given that name (islandflow import)
        raise SessionNotFound(f"no session {name!r} under {sessions_root(cfg.data_path())}")
    sessions = list_sessions(cfg.data_path())
    if not sessions:
        raise SessionNotFound(
            f"no recorded sessions under {sessions_root(cfg.data_path())}; run islandflow first"
        )
    return sessions[-1].path


def parse_time(text: str, session_start_ns: int) -> int | None:
    """``--from`` / ``--to`` / ``g``: ISO-8601, HH:MM[:SS[.fff]] New York time on the
    session's day, or +SECONDS from the session start.  Raises ValueError with a
    message naming the text."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("+"):
        try:
            return session_start_ns + int(float(text[1:]) * ev.NS_PER_S)
        except ValueError:
            raise ValueError(f"time {text!r}: expected +SECONDS") from None
    day = datetime.fromtimestamp(session_start_ns / 1e9, NEW_YORK).date()
    for fmt in ("%H:%M:%S.%f", "%H:%M:%S", "%H:%M"):
        try:
            clock = datetime.strptime(text, fmt).time()
        except ValueError:
            continue
        return _ns(datetime.combine(day, clock, NEW_YORK))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"time {text!r}: expected HH:MM[:SS] (New York), ISO-8601 or +SECONDS"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _ns(moment)


def _ns(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 1000


def parse_speed(text: str) -> float | None:
    """``1``, ``10x``, ``0.25`` or ``max``; ValueError names the text and the range."""
    t = text.strip().lower().removesuffix("x")
    if t == "max":
        return None
    try:
        value = float(t)
    except ValueError:
        raise ValueError(f"speed {text!r}: expected 0.25 to 1000 or max") from None
    if not 0.25 <= value <= 1000:
        raise ValueError(f"speed {text!r}: expected 0.25 to 1000 or max")
    return value


def build_replay_feed(cfg: Config) -> ReplayFeed:
    from islandflow_tui.engine.replay import ReplayFeed, ReplaySource

    path = resolve_session(cfg)
    from islandflow_tui.engine.log import SessionReader

    first = ReplaySource(SessionReader(path)).first_ts
    return ReplayFeed(
        path,
        ts_from=parse_time(cfg.replay.start, first),
        ts_to=parse_time(cfg.replay.end, first),
        speed=parse_speed(cfg.replay.speed),
        checkpoint_interval_s=cfg.replay.checkpoint_interval_s,
        checkpoint_max_events=cfg.replay.checkpoint_max_events,
        paused=cfg.replay.paused,
    )


__all__ = [
    "SessionNotFound",
    "attach_recording",
    "build_replay_feed",
    "finish_recording",
    "parse_speed",
    "parse_time",
    "resolve_session",
]
