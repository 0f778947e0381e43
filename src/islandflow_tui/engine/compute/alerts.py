"""Alerts: the classifier hits of one packet or structure, scored and explained.

One alert candidate per packet/structure with at least one hit.  Its kind is the most
specific classifier that fired (order in compute/classifiers.py: golden sweep, sweeps,
0DTE, block, repeat, writes, far-dated, then the generic spike and opening), its
confidence the best hit's.

Score, 0..100 (config ``[alerts]``):

    score = min(100, premium_points + 20 * best_confidence + min(20, 5 * hits))
    premium_points = clip(35 * log10(premium / 5 000), 0, 70)

The seed used ``min(70, premium / 1000)``, which saturates at $70k: every
institutional-size print then scores the same and premium stops ranking anything.
The log scale gives 0 points at $5k, 35 at $50k and the full 70 at $500k, so a $400k
sweep still outranks a $60k one; the confidence and hit-count terms are the seed's.
Severity: high >= 80, medium >= 45 (seed), else low.

Cool-down and de-duplication: one alert per packet or structure at most; then per
(contract, kind) (structures: underlying + legs, label), an alert within
``alerts.cooldown_ms`` of the last one issued is held back unless it beats that
one's score by ``alerts.escalate_points``; the next alert issued says how many were
held back (``suppressed``).  All of it runs on event time, in (ts, source) order, so
it is the same in replay and for any batching.  This is the one per-event Python loop
of the flow pipeline: it runs over alert candidates (a few per second of market
time), not prints.

Corrections: when a packet or structure that was alerted is re-issued after a
cancel, its alert is re-issued too (new id, ``corrects`` = the old alert):
``correction`` re-scored from the corrected source's hits, or ``retracted`` (score 0)
if nothing fires any more.
Corrections bypass the cool-down and never silently change an issued alert.

The explanation is one line generated from the packet/structure and the trace, e.g.
``SPY 0DTE 580C call sweep: 7 prints on 4 venues in 180 ms, $412k at/above ask,
premium z 3.1``.
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Final

import numpy as np
import polars as pl

from islandflow_tui.config import AlertConfig, ClassifierConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.classifiers import ORDER
from islandflow_tui.engine.compute.trace import ArrayItem, trace_from_arrays
from islandflow_tui.engine.frames import pick, put

WORDS: Final = {
    "large_bullish_call_sweep": "call sweep",
    "large_bearish_put_sweep": "put sweep",
    "golden_sweep": "golden sweep",
    "unusual_contract_spike": "unusual size",
    "large_call_overwrite": "call overwrite",
    "large_put_write": "put write",
    "far_dated_conviction": "far-dated conviction",
    "zero_dte_gamma_punch": "0DTE gamma punch",
    "block": "block",
    "repeat_hitter": "repeat hitter",
    "opening_likely": "opening",
    "straddle": "straddle",
    "strangle": "strangle",
    "vertical_spread": "vertical",
    "ladder_accumulation": "ladder accumulation",
    "roll": "roll",
}
_ORDER_ENUM: Final = pl.Enum(sorted(ORDER, key=ORDER.__getitem__))
_SCHEMA: Final = {k: v for k, v in ev.polars_schema(ev.ALERTS).items() if k not in ("seq", "id")}
_PACKET_FIELDS: Final = (
    "id",
    "ts",
    "root",
    "symbol",
    "expiry",
    "right",
    "strike",
    "dte",
    "count",
    "exchanges",
    "span_ns",
    "premium",
    "total_size",
    "ask_ratio",
    "bid_ratio",
    "mid_ratio",
    "premium_z",
    "baseline_n",
    "days_to_event",
    "status",
    "corrects",
    "repeat_hits",
    "_repeat_surprise",
    "retracted",
)
_STRUCT_FIELDS: Final = ("id", "ts", "root", "label", "description", "variant", "premium", "legs")


def _rows_by_id(frame: pl.DataFrame, wanted: np.ndarray) -> pl.DataFrame:
    """The rows of ``frame`` whose id is in ``wanted``, in frame order, each once: by
    binary search when the ids ascend (they do: ids are assigned in row order), else
    by a filter."""
    ids = frame.get_column("id").to_numpy()
    if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
        return frame.filter(pl.col("id").is_in(pl.Series(wanted, dtype=pl.Int64).implode()))
    pos = np.searchsorted(ids, wanted)
    ok = pos < len(ids)
    pos = pos[ok]
    return frame[np.unique(pos[ids[pos] == wanted[ok]])]


def money(x: float) -> str:
    """$412k, $1.2M, $850."""
    if x >= 1e6:
        return f"${x / 1e6:.1f}M"
    if x >= 1e3:
        return f"${x / 1e3:.0f}k"
    return f"${x:.0f}"


def premium_points(premium: float) -> float:
    if premium <= 0:
        return 0.0
    return min(70.0, max(0.0, 35.0 * math.log10(premium / 5_000.0)))


def score(premium: float, confidence: float, hits: int) -> tuple[float, float, float, float]:
    """(score, premium points, confidence points, hit points)."""
    p = premium_points(premium)
    c = 20.0 * confidence
    h = min(20.0, 5.0 * hits)
    return min(100.0, p + c + h), p, c, h


def severity(value: float, cfg: AlertConfig) -> str:
    if value >= cfg.high_score:
        return "high"
    if value >= cfg.medium_score:
        return "medium"
    return "low"


def _placement(r: dict[str, Any]) -> str:
    if (r.get("ask_ratio") or 0) >= 0.5:
        return "at/above ask"
    if (r.get("bid_ratio") or 0) >= 0.5:
        return "at/below bid"
    if (r.get("mid_ratio") or 0) >= 0.5:
        return "inside the spread"
    return "mixed placement"


def _odds(surprise: float | None) -> str:
    """', 1 in 31 623 by chance' from a repeat's surprise (-log10 of the chance)."""
    if surprise is None or surprise != surprise or surprise <= 0:
        return ""
    if surprise >= 9:
        return ", under 1 in a billion by chance"
    return f", 1 in {10**surprise:,.0f} by chance"


def explain_packet(r: dict[str, Any], classifiers: list[str], z_min: int) -> str:
    expiry = "0DTE" if r["dte"] == 0 else r["expiry"].strftime("%b%d")
    contract = f"{r['root']} {expiry} {r['strike']:g}{r['right']}"
    word = WORDS.get(classifiers[0], classifiers[0]) if classifiers else "flow"
    if classifiers and classifiers[0] == "repeat_hitter":
        word = f"repeat hitter ({r['repeat_hits']} hits{_odds(r.get('_repeat_surprise'))})"
    if classifiers and classifiers[0] == "far_dated_conviction":
        word = f"far-dated conviction ({r['dte']}d)"
    n = r["count"]
    if n > 1:
        ms = r["span_ns"] / 1e6
        span = f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
        body = f"{n} prints on {r['exchanges']} venue{'s' if r['exchanges'] != 1 else ''} in {span}"
    else:
        body = f"1 print of {r['total_size']:,}"
    text = f"{contract} {word}: {body}, {money(r['premium'])} {_placement(r)}"
    if r.get("premium_z") is not None and (r.get("baseline_n") or 0) >= z_min:
        text += f", premium z {r['premium_z']:.1f}"
    if r.get("days_to_event") is not None:
        text += f", event in {r['days_to_event']}d"
    if len(classifiers) > 1:
        text += " (+" + ", ".join(WORDS.get(c, c) for c in classifiers[1:]) + ")"
    if r.get("status") == "correction":
        text = "corrected: " + text
    return text


def explain_structure(r: dict[str, Any], classifiers: list[str]) -> str:
    variant = f", {r['variant'].replace('_', ' ')}" if r.get("variant") else ""
    extra = ""
    if len(classifiers) > 1:
        extra = " (+" + ", ".join(WORDS.get(c, c) for c in classifiers[1:]) + ")"
    label = r["label"].replace("_", " ")
    return f"{r['root']} {label}: {r['description']}, {money(r['premium'])}{variant}{extra}"


class Alerts:
    """Stateful operator: hits (with ids) + their sources -> alerts (ids not yet assigned).

    Candidates are aggregated and scored vectorised; the cool-down is a loop over the
    candidates' (ts, key, score) arrays; explanations are written for issued alerts only.
    """

    def __init__(self, cfg: AlertConfig, ccfg: ClassifierConfig, lookback_ns: int) -> None:
        self.cfg = cfg
        self.z_min = ccfg.z_min_samples
        self.cooldown_ns = cfg.cooldown_ms * ev.NS_PER_MS
        self.lookback_ns = lookback_ns
        self._cool: dict[tuple[str, str], list[Any]] = {}  # key -> [last ts, last score, held]
        # packet id -> [ts, explanation, alert id] of the alert issued for it
        self._by_source: dict[int, list[Any]] = {}
        # (ts, source id) of every entry put in _by_source, oldest first: trimming
        # pops the expired ones instead of rebuilding the dict (tens of thousands of
        # entries at firehose rates, after every batch)
        self._expiry: list[tuple[int, int]] = []
        self._issued: list[int] = []  # source ids of the rows awaiting ids
        self._horizon = -(2**62)

    # -- state ------------------------------------------------------------------
    def state(self) -> dict[str, pl.DataFrame]:
        # columns, not a dict per row: tens of thousands of rows at firehose rates,
        # built on the engine thread at every checkpoint
        cool_items = sorted(self._cool.items())
        cool = pl.DataFrame(
            {
                "contract": [k[0] for k, _ in cool_items],
                "kind": [k[1] for k, _ in cool_items],
                "ts": [v[0] for _, v in cool_items],
                "score": [v[1] for _, v in cool_items],
                "held": [v[2] for _, v in cool_items],
            },
            schema={
                "contract": pl.String,
                "kind": pl.String,
                "ts": pl.Int64,
                "score": pl.Float64,
                "held": pl.Int64,
            },
            strict=False,
        )
        src_items = sorted(self._by_source.items())
        src = pl.DataFrame(
            {
                "source_id": [k for k, _ in src_items],
                "ts": [v[0] for _, v in src_items],
                "explanation": [v[1] for _, v in src_items],
                "alert_id": [v[2] for _, v in src_items],
            },
            schema={
                "source_id": pl.Int64,
                "ts": pl.Int64,
                "explanation": pl.String,
                "alert_id": pl.Int64,
            },
            strict=False,
        )
        return {"cooldown": cool, "alerted": src}

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        # whole columns, not named rows: a dict per row cost tens of ms per seek
        cool, src = state["cooldown"], state["alerted"]

        def cols(frame: pl.DataFrame, *names: str) -> list[list[Any]]:
            return [frame.get_column(n).to_list() for n in names]

        self._cool = {
            (c, k): [t, s, h]
            for c, k, t, s, h in zip(
                *cols(cool, "contract", "kind", "ts", "score", "held"), strict=True
            )
        }
        self._by_source = {
            i: [t, e, a]
            for i, t, e, a in zip(
                *cols(src, "source_id", "ts", "explanation", "alert_id"), strict=True
            )
        }
        self._expiry = [(v[0], k) for k, v in self._by_source.items()]
        heapq.heapify(self._expiry)

    # -- processing ---------------------------------------------------------------
    def process(
        self,
        hits: pl.DataFrame | None,
        packets: pl.DataFrame | None,
        structures: pl.DataFrame | None,
        watermark: int,
    ) -> pl.DataFrame | None:
        """Alerts decided in this batch (ids not assigned; call :meth:`commit` after)."""
        fixes: dict[int, int] = {}  # corrected source id -> id of the version it replaces
        for frame in (packets, structures):
            # a Series test first: most batches carry no correction at all
            if frame is not None and frame.height and (frame.get_column("status") != "new").any():
                redo = frame.select("id", "corrects", "status").filter(pl.col("status") != "new")
                fixes.update(zip(redo["id"].to_list(), redo["corrects"].to_list(), strict=True))
        cands = self._candidates(hits, structures)
        events: list[tuple[int, int, int]] = []  # (ts, source id, candidate row or -1)
        if cands is not None:
            events += list(
                zip(
                    cands["ts"].to_list(),
                    cands["source_id"].to_list(),
                    range(cands.height),
                    strict=True,
                )
            )
        have = {e[1] for e in events}
        if fixes:
            quiet = pl.Series([k for k in fixes if k not in have], dtype=pl.Int64).implode()
            for frame in (packets, structures):
                if frame is None or frame.height == 0:
                    continue
                gone = frame.select("ts", "id").filter(pl.col("id").is_in(quiet))
                events += [
                    (t, i, -1)
                    for t, i in zip(gone["ts"].to_list(), gone["id"].to_list(), strict=True)
                ]
        events.sort()
        issued, held, since, old_src = self._cooldown(cands, events, fixes)
        rows: list[pl.DataFrame] = []
        texts: dict[int, str] = {}
        if cands is not None and issued.any():
            keep = np.flatnonzero(issued)
            frame = self._issue(cands, keep, held, since, old_src, packets, structures)
            texts = dict(
                zip(frame["source_id"].to_list(), frame["explanation"].to_list(), strict=True)
            )
            rows.append(frame)
        retract = [sid for _, sid, row in events if row < 0 and sid in old_src]
        if retract:
            rows.append(self._retractions(retract, old_src, packets, structures, texts))
        self._horizon = watermark - self.lookback_ns
        if not rows:
            self._issued = []
            self._trim()
            return None
        out = pl.concat(rows, how="vertical") if len(rows) > 1 else rows[0]
        out = out.sort("ts", "source_id")
        self._issued = out.get_column("source_id").to_list()
        return out

    def commit(self, assigned: pl.DataFrame) -> pl.DataFrame:
        """Fill ``corrects`` (the alert replaced, possibly issued in this same batch) and
        remember which alert each packet got, for corrections after a cancel."""
        ids = dict(zip(assigned["source_id"].to_list(), assigned["id"].to_list(), strict=True))
        corrects = []
        for old in assigned["_old_src"].to_list():
            if old is None:
                corrects.append(None)
            elif old in ids:
                corrects.append(ids[old])
            else:
                corrects.append(self._by_source[old][2])
        out = assigned.with_columns(pl.Series("corrects", corrects, dtype=pl.Int64)).drop(
            "_old_src"
        )
        for sid, ts, text, aid in zip(
            self._issued,
            out.get_column("ts").to_list(),
            out.get_column("explanation").to_list(),
            out.get_column("id").to_list(),
            strict=True,
        ):
            self._by_source[sid] = [ts, text, aid]
            heapq.heappush(self._expiry, (ts, sid))
        self._issued = []
        self._trim()
        return out

    def _trim(self) -> None:
        """Forget alerts whose packets no cancel can reach any more (after the batch):
        the entries whose current ts is before the horizon, as a filter of the dict
        would, the rest kept in their order."""
        heap, by, horizon = self._expiry, self._by_source, self._horizon
        while heap and heap[0][0] < horizon:
            _, sid = heapq.heappop(heap)
            entry = by.get(sid)
            if entry is not None and entry[0] < horizon:
                del by[sid]

    def _candidates(
        self, hits: pl.DataFrame | None, structures: pl.DataFrame | None
    ) -> pl.DataFrame | None:
        """One row per source: best hit first, every classifier, score terms, cool-down key."""
        if hits is None or hits.height == 0:
            return None
        ranked = hits.with_columns(
            # an Enum in ORDER's order: its physical index is the rank (cheaper than
            # a dict replace)
            pl.col("classifier").cast(_ORDER_ENUM).to_physical().cast(pl.Int64).alias("_o")
        ).sort("source_id", "_o")
        cands = ranked.group_by("source_id", maintain_order=True).agg(
            pl.col("ts").first(),
            pl.col("source").first(),
            pl.col("root").first(),
            pl.col("symbol").first(),
            pl.col("classifier").first().alias("kind"),
            pl.col("classifier").alias("classifiers"),
            pl.col("id").alias("_hit_ids"),
            pl.len().cast(pl.Int64).alias("hits"),
            pl.col("direction").first(),
            pl.col("confidence").max(),
            pl.col("premium").first(),
            pl.col("trace").first().alias("_best_trace"),
        )
        key = pl.col("symbol")
        if structures is not None and structures.height:
            skey = structures.select(
                pl.col("id").alias("source_id"),
                (pl.col("root") + " " + pl.col("symbols").list.join(",")).alias("_skey"),
            )
            cands = cands.join(skey, on="source_id", how="left", maintain_order="left")
            key = pl.coalesce(pl.col("symbol"), pl.col("_skey"))
        # libm per row, not a SIMD kernel: the same premium must give the same points
        # whatever the batch (candidates are few)
        p_pts = pl.Series("_p_pts", [premium_points(x) for x in cands["premium"].to_list()])
        return (
            cands.with_columns(
                key.fill_null("").alias("_key"),
                p_pts,
                (20.0 * pl.col("confidence")).alias("_c_pts"),
                (5.0 * pl.col("hits")).clip(upper_bound=20.0).alias("_h_pts"),
            )
            .with_columns(
                (pl.col("_p_pts") + pl.col("_c_pts") + pl.col("_h_pts"))
                .clip(upper_bound=100.0)
                .alias("score")
            )
            .sort("ts", "source_id")
        )

    def _cooldown(
        self,
        cands: pl.DataFrame | None,
        events: list[tuple[int, int, int]],
        fixes: dict[int, int],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, int]]:
        """Walk the events in (ts, source) order: (issued mask over candidates, alerts held
        back before each, ms since the last one, and source -> alerted source it corrects)."""
        n = 0 if cands is None else cands.height
        issued = np.zeros(n, dtype=bool)
        held = np.zeros(n, dtype=np.int64)
        since = np.full(n, np.nan)
        old_src: dict[int, int] = {}
        alerted_now: set[int] = set()
        if cands is not None:
            keys = cands["_key"].to_list()
            kinds = cands["kind"].to_list()
            scores = cands["score"].to_list()
        for ts, sid, i in events:
            old = fixes.get(sid)
            if old is not None and (old in self._by_source or old in alerted_now):
                old_src[sid] = old  # a re-issue never waits for the cool-down
                alerted_now.add(sid)
                if i >= 0:
                    issued[i] = True
                continue
            if i < 0:
                continue
            value = scores[i]
            if value < self.cfg.min_score:
                continue
            key = (keys[i], kinds[i])
            last = self._cool.get(key)
            if last is not None:
                since[i] = (ts - last[0]) / ev.NS_PER_MS
                if ts - last[0] < self.cooldown_ns and value < last[1] + self.cfg.escalate_points:
                    last[2] += 1
                    continue
                held[i] = last[2]
            issued[i] = True
            alerted_now.add(sid)
            self._cool[key] = [ts, value, 0]
        return issued, held, since, old_src

    def _issue(
        self,
        cands: pl.DataFrame,
        keep: np.ndarray,
        held: np.ndarray,
        since: np.ndarray,
        old_src: dict[int, int],
        packets: pl.DataFrame | None,
        structures: pl.DataFrame | None,
    ) -> pl.DataFrame:
        sel = put(
            cands[keep], pl.Series("suppressed", held[keep]), pl.Series("_since", since[keep])
        )
        sources = self._sources(sel["source_id"], packets, structures)
        texts, status, olds = [], [], []
        for sid, classifiers in zip(
            sel.get_column("source_id").to_list(),
            sel.get_column("classifiers").to_list(),
            strict=True,
        ):
            src = sources[sid]
            if src["_type"] == "packet":
                text = explain_packet(src, classifiers, self.z_min)
            else:
                text = explain_structure(src, classifiers)
            old = old_src.get(sid)
            texts.append(text)
            status.append("new" if old is None else "correction")
            olds.append(old)
        n = sel.height
        score_trace = trace_from_arrays(
            n,
            [
                ArrayItem("score.premium_points", sel["_p_pts"].to_numpy(), 70.0, True),
                ArrayItem("score.confidence_points", sel["_c_pts"].to_numpy(), 20.0, True),
                ArrayItem("score.hits_points", sel["_h_pts"].to_numpy(), 20.0, True),
                ArrayItem(
                    "score.severity_high",
                    sel["score"].to_numpy(),
                    self.cfg.high_score,
                    sel["score"].to_numpy() >= self.cfg.high_score,
                ),
                ArrayItem(
                    "cooldown.since_last_ms",
                    sel["_since"].to_numpy(),
                    float(self.cfg.cooldown_ms),
                    True,
                ),
                ArrayItem(
                    sel["kind"].to_numpy().astype(object),
                    sel["confidence"].to_numpy(),
                    None,
                    True,
                ),
            ],
        )
        value = sel.get_column("score").to_numpy()
        severity = np.where(
            value >= self.cfg.high_score,
            "high",
            np.where(value >= self.cfg.medium_score, "medium", "low"),
        )
        out = put(
            sel.with_columns(
                pl.concat_list(pl.col("source_id"), pl.col("_hit_ids")).alias("evidence"),
                pl.concat_list(score_trace, pl.col("_best_trace")).alias("trace"),
            ),
            pl.Series("status", status, dtype=pl.String),
            pl.Series("corrects", [None] * n, dtype=pl.Int64),
            pl.Series("_old_src", olds, dtype=pl.Int64),
            pl.Series("explanation", texts, dtype=pl.String),
            pl.Series("severity", severity, dtype=pl.String),
        )
        out = pick(out, [*_SCHEMA, "_old_src"])
        # the columns are of these types already but for the odd one out (a batch's
        # all-null column): cast only then
        target = {**_SCHEMA, "_old_src": pl.Int64}
        return out if out.schema == pl.Schema(target) else out.cast(target)

    def _retractions(
        self,
        gone: list[int],
        old_src: dict[int, int],
        packets: pl.DataFrame | None,
        structures: pl.DataFrame | None,
        texts: dict[int, str],
    ) -> pl.DataFrame:
        """Alerts withdrawn: their packet or structure was corrected and nothing fires
        any more."""
        src = self._sources(pl.Series(gone, dtype=pl.Int64), packets, structures)
        rows = []
        for sid in gone:
            s = src[sid]
            old = old_src[sid]
            # the alert replaced may be one issued or retracted earlier in this batch
            # (``gone`` is in event order), as it would be in an earlier batch
            old_text = texts[old] if old in texts else self._by_source[old][1]
            n_gone = len(s.get("retracted") or [])
            plural = "s" if n_gone != 1 else ""
            why = (
                f"cancel removed {n_gone} print{plural}"
                if s["_type"] == "packet"
                else "a leg's packet was cancelled"
            )
            texts[sid] = f"retracted: {old_text} ({why})"
            rows.append(
                {
                    "ts": s["ts"],
                    "status": "retracted",
                    "corrects": None,
                    "_old_src": old,
                    "root": s["root"],
                    "symbol": s.get("symbol"),
                    "kind": "retracted",
                    "classifiers": [],
                    "hits": 0,
                    "score": 0.0,
                    "severity": "low",
                    "direction": "neutral",
                    "confidence": 0.0,
                    "explanation": texts[sid],
                    "premium": float(s["premium"]),
                    "source_id": sid,
                    "suppressed": 0,
                    "evidence": [sid],
                    "trace": [
                        {
                            "condition": "cancel.alert_withdrawn",
                            "value": float(n_gone),
                            "threshold": None,
                            "passed": True,
                        }
                    ],
                }
            )
        return pl.DataFrame(rows, schema={**_SCHEMA, "_old_src": pl.Int64})

    @staticmethod
    def _sources(
        ids: pl.Series, packets: pl.DataFrame | None, structures: pl.DataFrame | None
    ) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        wanted = ids.cast(pl.Int64)
        # select before filtering: filtering the trace and evidence lists of every
        # packet cost more than the rest of the alert operator
        for frame, fields, kind in (
            (packets, _PACKET_FIELDS, "packet"),
            (structures, _STRUCT_FIELDS, "structure"),
        ):
            if frame is None or frame.height == 0:
                continue
            sub = _rows_by_id(pick(frame, fields), wanted.to_numpy())
            for r in sub.iter_rows(named=True):
                out[r["id"]] = {**r, "_type": kind}
        return out
