"""Kill test: SIGKILL a recording process at random moments; nothing beyond one flush
interval may be lost, and everything that survives must read back gapless.

A child (``python -m islandflow_tui.engine.headless``) records the synthetic firehose
into one data dir shared by every round, writing a progress line around each frame
it hands to the recorder (``<t_before> <t_after> <stream> <handed> <written>``, one
unbuffered write each).  It is SIGKILLed at a random moment: usually while
recording (backfill or live, paced or not), sometimes during start-up (imports,
recovery of the previous round's session, session creation).  Some rounds leave
recovery to the next child, so children recover sessions too and get killed while
doing it.

After each round the parent runs ``recover()`` and checks every session it has not
yet verified:

* every sealed segment reads; no ``.arrows`` file is left;
* per stream, the recovered seqs are exactly ``0..n-1`` (no duplicate, no gap);
* ``n >= written`` of the last progress line: rows the recorder had flushed to the
  OS survive a SIGKILL;
* **the loss bound**: ``n >= handed`` of the last line that ended at least one flush
  interval ``F`` before the last recorded ``write`` began.  The recorder's
  back-pressure makes ``write`` wait while any frame handed more than ``F`` earlier
  is still unwritten, so when the last ``write`` got going, every frame handed ``F``
  before it was on disk.  The rows lost are therefore at most the rows handed in
  the last ``F`` (+ the frames in flight at the kill), which is what "a killed
  process loses at most one flush interval" means.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.log import (
    SessionReader,
    list_sessions,
    read_segment,
    recover,
    sessions_root,
)

KILLS = 22
FLUSH_MS = 200
BUDGET_S = 55.0  # stop adding rounds beyond KILLS' minimum if the machine is slow


@dataclass
class Round:
    k: int
    progress: Path
    out: Path
    session: str = ""
    lines: list[tuple[int, int, str, int, int]] = field(default_factory=list)


def _spawn(data: Path, r: Round, rng: random.Random) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "islandflow_tui.engine.headless",
        "--data-dir",
        str(data),
        "--profile",
        "firehose",
        "--seconds",
        "60",
        "--seed",
        str(r.k),
        "--flush-ms",
        str(FLUSH_MS),
        "--segment-mb",
        str(rng.choice([0.5, 2.0, 64.0])),
        "--progress",
        str(r.progress),
        "--quiet",
    ]
    if rng.random() < 0.3:
        args.append("--no-pace")
    if rng.random() < 0.5:
        args.append("--fsync")
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(data.parent / "cfg"),
        "ISLANDFLOW_SYNTHETIC__BACKFILL_S": str(rng.choice([0, 1, 3])),
    }
    with open(r.out, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.DEVNULL, env=env)


def _wait_started(r: Round, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if r.progress.exists() and r.progress.stat().st_size > 0:
            return
        time.sleep(0.01)
    raise AssertionError(f"round {r.k}: the child never started recording")


def _read_round(r: Round) -> None:
    for line in r.out.read_text().splitlines():
        if line.startswith("session "):
            r.session = line.split()[1]
    if r.progress.exists():
        complete = r.progress.read_text().split("\n")[:-1]  # a torn last line is dropped
        for raw in complete:
            t0, t1, stream, handed, written = raw.split()
            r.lines.append((int(t0), int(t1), stream, int(handed), int(written)))


def _verify(data: Path, r: Round, worst: dict[str, float]) -> None:
    session = sessions_root(data) / r.session
    reader = SessionReader(session)
    assert not list(session.glob("*/*.arrows")), f"round {r.k}: open segment left"
    counts: dict[str, int] = {}
    for stream in reader.streams():
        seqs: list[int] = []
        for seg in reader.segments(stream):
            df = read_segment(seg.path, stream)  # raises SegmentError naming a bad file
            assert df.height == seg.rows
            seqs.extend(df["seq"].to_list())
        seqs.sort()
        assert seqs == list(range(len(seqs))), f"round {r.k} {stream}: duplicate or gap"
        counts[stream] = len(seqs)
    assert reader.errors == [], reader.warnings
    if not r.lines:
        return
    last_start = max(t0 for t0, *_ in r.lines)
    horizon = last_start - FLUSH_MS * 1_000_000
    final: dict[str, tuple[int, int]] = {}
    safe: dict[str, int] = {}
    for _t0, t1, stream, handed, written in sorted(r.lines, key=lambda x: x[1]):
        final[stream] = (handed, written)
        if t1 <= horizon:
            safe[stream] = handed
    for stream, (handed, written) in final.items():
        got = counts.get(stream, 0)
        assert got >= written, f"round {r.k} {stream}: {got} < {written} flushed rows"
        assert got >= safe.get(stream, 0), (
            f"round {r.k} {stream}: lost rows handed more than {FLUSH_MS} ms before the "
            f"last write ({got} < {safe.get(stream, 0)})"
        )
        worst["lost_rows"] = max(worst["lost_rows"], handed - got)
        worst["window_rows"] = max(worst["window_rows"], handed - safe.get(stream, 0))


def test_sigkill_at_random_moments_loses_at_most_one_flush_interval(tmp_path: Path) -> None:
    seed = int(os.environ.get("ISLANDFLOW_KILL_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    data = tmp_path / "data"
    started = time.monotonic()
    pending: list[Round] = []
    worst = {"lost_rows": 0.0, "window_rows": 0.0}
    early_kills = 0
    k = 0
    while k < KILLS or (pending and time.monotonic() - started < BUDGET_S):
        r = Round(k, tmp_path / f"progress-{k}.txt", tmp_path / f"out-{k}.txt")
        before = {s.id for s in list_sessions(data)}
        proc = _spawn(data, r, rng)
        if k % 6 == 3:  # during start-up: imports, recovering older sessions, creating ours
            time.sleep(rng.uniform(0.05, 0.8))
            early_kills += 1
        else:
            _wait_started(r, proc)
            time.sleep(rng.uniform(0.0, 1.2))
        assert proc.poll() is None, f"round {k}: the child exited by itself (seed {seed})"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        _read_round(r)
        if not r.session:  # killed before it said which session it opened
            new = [s.id for s in list_sessions(data) if s.id not in before]
            r.session = new[0] if new else ""
        if r.session:
            pending.append(r)
        k += 1
        if k % 5 == 2 and k < KILLS:
            continue  # leave the recovery of this session to the next child
        recover(data, fsync=False)
        for done in pending:
            _verify(data, done, worst)
        pending.clear()
    assert k >= 20
    for info in list_sessions(data):
        assert info.status in ("closed", "recovered"), (info.id, info.status)
    elapsed = time.monotonic() - started
    print(
        f"\nkill test: {k} SIGKILLs ({early_kills} during start-up) in {elapsed:.1f} s, "
        f"seed {seed}; "
        f"max rows lost in a stream {worst['lost_rows']:.0f}, max rows handed within "
        f"the last {FLUSH_MS} ms (the allowed loss) {worst['window_rows']:.0f}"
    )
    assert {f.name for f in data.iterdir()} <= {"sessions", "reference"}
    # the synthetic open-interest table (engine/ingest/synthetic_feed.py): whole files only
    assert all(f.suffix == ".csv" for f in (data / "reference").glob("*"))
    assert ev.OPTIONS_PRINTS in {s for i in list_sessions(data) for s in i.events}
