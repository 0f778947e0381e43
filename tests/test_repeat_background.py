"""Repeat hits judged against the contract's own background (packets.py "Repeat hits"):
the clip share of a hit, the Poisson surprise of the similar hits given the background
rate, the background buckets in checkpoints, and old checkpoints without them."""

from __future__ import annotations

import math

import polars as pl
import pytest

from islandflow_tui.config import Config, FlowConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.kinds import label_kinds
from islandflow_tui.engine.compute.packets import (
    REPEAT_BUCKET_NS,
    SURPRISE_CAP,
    Packets,
    poisson_surprise,
)
from islandflow_tui.engine.core import Engine
from tests.helpers import MS, batch, option_prints, option_quotes
from tests.test_packets import T0, _quotes_for, kind_row, packets, pr, run

W_NS = 10_000 * MS  # the repeat window of these tests


def _trace(row: dict) -> dict[str, dict]:
    return {t["condition"]: t for t in row["trace"]}


def _reference_surprise(k: int, mu: float) -> float:
    """-log10 P(X >= k), X ~ Poisson(mu), by fsum over the pmf (the definition)."""
    pmf = [math.exp(-mu + j * math.log(mu) - math.lgamma(j + 1)) for j in range(k + 400)]
    tail = math.fsum(pmf[k:]) if k > mu else 1.0 - math.fsum(pmf[:k])
    return -math.log10(tail)


@pytest.mark.parametrize(
    ("k", "mu"),
    [(5, 0.5), (5, 2.0833333333333335), (6, 1.0), (10, 3.0), (3, 7.5), (40, 2.0), (200, 150.0)],
)
def test_poisson_surprise_matches_the_definition(k: int, mu: float) -> None:
    assert poisson_surprise(k, mu) == pytest.approx(_reference_surprise(k, mu), rel=1e-9)


def test_poisson_surprise_edges() -> None:
    assert poisson_surprise(0, 3.0) == 0.0  # at least zero hits: certain
    assert poisson_surprise(5, 0.0) == SURPRISE_CAP  # no background at all
    assert poisson_surprise(1000, 0.01) == SURPRISE_CAP  # below a float's reach: capped
    assert poisson_surprise(1, 50.0) == 0.0  # 1 - P(X = 0) rounds to 1


@pytest.mark.parametrize(("surprise", "repeat"), [(3.99, False), (4.0, True), (4.01, True)])
def test_repeat_surprise_boundary(surprise: float, repeat: bool) -> None:
    out = label_kinds(
        kind_row(repeat_hits=6, _repeat_consistent=6, _repeat_surprise=surprise), FlowConfig()
    )
    assert ("repeat" in out["tags"].to_list()[0]) is repeat
    item = {t["condition"]: t for t in out["trace"].to_list()[0]}["repeat.surprise"]
    assert (item["value"], item["threshold"], item["passed"]) == (surprise, 4.0, repeat)


@pytest.mark.parametrize(
    ("sizes", "share", "hit"),
    [
        ([1000, 999, 2], 1000 / 2001, False),  # largest print just below half the premium
        ([1000, 1000], 0.5, True),  # at
        ([1001, 1000], 1001 / 2001, True),  # just above
    ],
)
def test_a_hit_is_one_clip(sizes: list[int], share: float, hit: bool) -> None:
    """A packet whose largest print carries less than ``repeat_min_clip_share`` of its
    premium is many prints added up, not one order's clip: no repeat hit."""
    prints = [pr(i * 100, size=s, exch="CXI"[i]) for i, s in enumerate(sizes)]
    got = packets(run(prints, _quotes_for(prints))).row(0, named=True)
    assert got["count"] == len(sizes)
    assert got["repeat_hits"] == (1 if hit else 0)
    item = _trace(got)["repeat.clip_share"]
    assert item["value"] == pytest.approx(share) and item["passed"] is hit
    assert item["threshold"] == 0.5


ISO = int(ev.Cond.ISO)


@pytest.mark.parametrize(
    ("prints", "share", "hit"),
    [
        # three ISO pieces on three venues: one sweep, one clip
        ([(700, ISO), (700, ISO), (700, ISO)], 1.0, True),
        # two ISO pieces (600 lots) beat the largest print (500) and pass: 600 / 1100
        ([(300, ISO), (300, ISO), (500, 0)], 600 / 1100, True),
        # no ISO: the largest print alone, 500 / 1100
        ([(300, 0), (300, 0), (500, 0)], 500 / 1100, False),
    ],
)
def test_a_sweep_is_one_clip(prints: list[tuple[int, int]], share: float, hit: bool) -> None:
    rows = [pr(i * 100, size=s, exch="CXI"[i], flags=f) for i, (s, f) in enumerate(prints)]
    got = packets(run(rows, _quotes_for(rows))).row(0, named=True)
    assert got["repeat_hits"] == (1 if hit else 0)
    item = _trace(got)["repeat.clip_share"]
    assert item["value"] == pytest.approx(share) and item["passed"] is hit


def _cfg(background_ms: int = 60_000) -> Config:
    cfg = Config()
    cfg.flow.repeat_window_ms = 10_000
    cfg.flow.repeat_background_ms = background_ms
    return cfg


#: 5 buy hits ($220k at the ask) at 0..4 s, a sell hit ($200k at the bid) at 19.4 s,
#: then 5 buy hits at 20..24 s: at 24 s the window (14 s, 24 s] holds 5 buys and 1 sell,
#: the background 5 buys (first printed at 0..4 s, left the window at 20 s)
_RUN = [pr(i * 1000, size=2000) for i in range(5)]
_RUN += [pr(19_400, price=1.00, size=2000)]
_RUN += [pr(20_000 + i * 1000, size=2000) for i in range(5)]
#: mu = (5 background + 1 sell in the window) x 10 s / (14 s seen before the window + 10 s)
_MU = (5 + 1) * W_NS / ((24_000 - 10_000) * MS + W_NS)


def _last_buy(res: dict) -> dict:
    got = packets(res).filter(pl.col("side") == "buy")
    return got.row(-1, named=True)


@pytest.mark.parametrize("steps", [None, [3000, 21_500], [10_000, 22_600, 23_600]])
@pytest.mark.parametrize(("nudge", "repeat"), [(-math.inf, True), (0.0, True), (math.inf, False)])
def test_background_surprise_end_to_end(
    steps: list[int] | None, nudge: float, repeat: bool
) -> None:
    """The last hit's surprise is the definition's for mu from the background and the
    other side; a threshold at the value passes, the next float above it fails."""
    want = poisson_surprise(5, _MU)
    cfg = _cfg()
    cfg.flow.repeat_min_surprise = want if nudge == 0.0 else math.nextafter(want, nudge)
    last = _last_buy(run(_RUN, _quotes_for(_RUN), cfg=cfg, steps=steps))
    assert last["repeat_hits"] == 5
    item = _trace(last)["repeat.surprise"]
    assert item["value"] == want
    assert item["passed"] is repeat and ("repeat" in last["tags"]) is repeat


def test_background_older_than_its_window_does_not_count() -> None:
    """With a 30 s background the hits of 0..4 s are gone by 44 s (their 30 s bucket is
    wholly before 44 - 30 s): the run at 40..44 s has no background at all."""
    prints = [pr(i * 1000, size=2000) for i in range(5)]
    prints += [pr(40_000 + i * 1000, size=2000) for i in range(5)]
    short = _last_buy(run(prints, _quotes_for(prints), cfg=_cfg(30_000)))
    assert _trace(short)["repeat.surprise"]["value"] == SURPRISE_CAP
    longer = _last_buy(run(prints, _quotes_for(prints), cfg=_cfg(60_000)))
    mu = 5 * W_NS / ((44_000 - 10_000) * MS + W_NS)
    assert _trace(longer)["repeat.surprise"]["value"] == poisson_surprise(5, mu)


def _feed(engine: Engine, prints: list[dict], wm: int) -> list[pl.DataFrame]:
    out = engine.ingest(
        batch(wm, quotes=option_quotes(_quotes_for(prints)), prints=option_prints(prints))
    )
    return [out[ev.FLOW_PACKETS]] if ev.FLOW_PACKETS in out else []


def _split_run(restore: bool, old: bool = False) -> pl.DataFrame:
    """_RUN in two batches cut at 21.5 s, optionally through a checkpoint (``old``: one
    stripped of what the background rule added, as an older build wrote it)."""
    cut = T0 + 21_500 * MS
    early = [p for p in _RUN if p["ts"] < cut]
    late = [p for p in _RUN if p["ts"] >= cut]
    first = Engine(_cfg())
    got = _feed(first, early, cut)
    engine = first
    if restore:
        state = first.compute.state()
        if old:
            del state["packets.repeat_history"]
            state["packets.counters"] = state["packets.counters"].drop("repeat_t0")
            state["packets.retained_packets"] = state["packets.retained_packets"].drop(
                "_repeat_surprise"
            )
        engine = Engine(_cfg())
        engine.compute.restore(state)
    got += _feed(engine, late, T0 + 30_000 * MS)
    got += [engine.flush().get(ev.FLOW_PACKETS, ev.empty_frame(ev.FLOW_PACKETS))]
    return pl.concat(got).drop("seq")


def test_background_survives_a_checkpoint() -> None:
    straight = _split_run(restore=False)
    assert straight.height == len(_RUN)
    assert _split_run(restore=True).equals(straight)


def test_history_rows_and_restore() -> None:
    engine = Engine(_cfg())
    _feed(engine, [*_RUN[:5], pr(20_000, size=2000)], T0 + 21_000 * MS)
    p = engine.compute.packets
    frame = p._history_frame()
    bucket = T0 // REPEAT_BUCKET_NS  # the 0..4 s hits share one 30 s bucket
    assert frame.rows() == [(0, 1, bucket, 5)]
    q = Packets(_cfg())
    q.restore(p.state())
    assert {k: list(v) for k, v in q._rep_hist.items()} == {
        k: list(v) for k, v in p._rep_hist.items()
    }
    assert q._rep_t0 == p._rep_t0 == T0


def test_an_old_checkpoint_restores() -> None:
    """Without background buckets or the retained surprise (a checkpoint from before the
    rule) the restore works: the background starts empty at the restore, and retained
    packets get a neutral, passing surprise for their corrections."""
    got = _split_run(restore=True, old=True)
    assert got.height == len(_RUN)
    engine = Engine(_cfg())
    _feed(engine, _RUN[:3], T0 + 5_000 * MS)
    state = engine.compute.state()
    state["packets.retained_packets"] = state["packets.retained_packets"].drop("_repeat_surprise")
    again = Engine(_cfg())
    again.compute.restore(state)
    retained = again.compute.packets._chunks[0].packets
    assert (retained["_repeat_surprise"] == SURPRISE_CAP).all()


@pytest.mark.parametrize(
    ("surprise", "text"),
    [
        (None, ""),
        (0.0, ""),
        (4.0, ", 1 in 10,000 by chance"),
        (8.99, ", 1 in 977,237,221 by chance"),
        (9.0, ", under 1 in a billion by chance"),
        (SURPRISE_CAP, ", under 1 in a billion by chance"),
    ],
)
def test_the_alert_says_how_unlikely_the_run_was(surprise: float | None, text: str) -> None:
    from islandflow_tui.engine.compute.alerts import _odds

    assert _odds(surprise) == text


def test_repeat_alert_explanation_quotes_the_chance() -> None:
    hits = [pr(i * 1000, size=400) for i in range(5)]  # $44k each: no block
    res = run(hits, _quotes_for(hits), cfg=_cfg())
    alerts = res[ev.ALERTS]
    texts = [t for t in alerts["explanation"].to_list() if "repeat hitter (" in t]
    assert texts, alerts["explanation"].to_list()
    assert all("by chance" in t for t in texts)


@pytest.mark.parametrize("steps", [None, [30_000, 56_500], [5_000, 57_200, 59_000]])
@pytest.mark.parametrize(("last_ms", "background"), [(59_999, 5), (60_000, 0), (60_001, 0)])
def test_background_horizon_boundary(
    last_ms: int, background: int, steps: list[int] | None
) -> None:
    """With a 60 s background, the 30 s bucket of the hits at 0..4 s counts until the
    judged hit's first print is 60 s after the bucket's start (just below: counted; at
    and just above: gone)."""
    early = [pr(i * 1000, size=2000) for i in range(5)]
    late = [pr(last_ms - 4000 + i * 1000, size=2000) for i in range(5)]
    prints = [*early, *late]
    cfg = _cfg(60_000)
    if steps:  # expiry every 1 s of event time: windows move to the background there too
        cfg.flow.rolling_ttl_s = 8
    last = _last_buy(run(prints, _quotes_for(prints), cfg=cfg, steps=steps))
    seen = min((last_ms - 10_000) * MS, 50_000 * MS)
    mu = background * W_NS / (seen + W_NS)
    assert _trace(last)["repeat.surprise"]["value"] == poisson_surprise(5, mu)
