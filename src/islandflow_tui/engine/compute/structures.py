"""Structures: packets of one underlying that trade together, grouped into legs and named.

Grouping.  Packets of one underlying whose first prints are on the same venue, of the
same kind (all multi-leg-flagged or all single-leg), and fall within
``flow.structure_window_ms`` (1 ms) of the group's first packet form one candidate
(anchored like packets).  Complex orders print every leg on one venue at one time, so
this finds them, and a window that tight keeps unrelated packets out even in a
firehose market (at 100 ms, a busy underlying's venue had several stray multi-leg
packets in every window).  A structure legged in by hand over seconds or across
venues is not found (a documented limit); widening the window catches slower legging,
which then scores lower (timing, below).  The group is final when the watermark passes
``anchor + structure window + cluster window`` (the last packet that could still join
would close by then); it is emitted with that ts.  Packets of the same contract in a
group are one leg.  Groups of 2..6 legs are labelled; a group of one contract is no
structure; bigger groups are noise in a busy market and are dropped.

Labels, by geometry (E expiry, R right, K strike; legs ordered by E, R, K):

=================  ===========================================================
vertical            2 legs, same E and R, two K; sides opposite
straddle            2 legs, same E and K, call + put; sides the same
strangle            2 legs, same E, call + put, two K; sides the same
risk_reversal       as strangle but sides opposite (buy one wing, sell the other)
calendar            2 legs, same R and K, two E; sides opposite
diagonal            2 legs, same R, two E and two K; sides opposite
roll                2 legs, same R, one closed and one opened: needs open interest
                    (one leg opening-likely, the other within its open interest)
butterfly           3 legs, same E and R, equidistant K, 1:2:1, body opposite the
                    wings; or 4 legs put/call sharing the middle K (iron)
condor              4 legs, same E, 1:1:1:1, equal wing widths, inner opposite the
                    outer (same right, or iron: two puts below two calls)
ladder              same E and R, >= 3 K, equal sizes (not a butterfly/condor)
combo               anything else (only emitted for multi-leg-flagged prints)
=================  ===========================================================

Every candidate whose geometry fits is scored (the seed used geometry only, and called
risk reversals strangles):

    confidence = ratio x sides x timing [x 0.8 for vertical/calendar/diagonal when a
                 roll's closing evidence is present]

* ratio: 1.0 leg sizes in the template's ratio (1:1, 1:2:1 ...), 0.8 another whole
  ratio for multi-leg-flagged legs (a ratio spread), 0.5 for single-leg prints, 0.3
  not a whole ratio; when the smallest leg is under 10 contracts (equal tiny lots
  happen by chance: in a firehose market two unrelated 3-lots on one venue within a
  millisecond are common) the template ratio scores 0.75 flagged / 0.5 single-leg
  and anything else at most 0.5;
* sides: 1.0 every leg's side known and as the template needs, 0.75 some unknown but
  none contradicting, 0.35 contradicting;
* timing: 1.0 when every leg's first print is within 1 ms of the others (a package
  prints its legs together), 0.5 otherwise.

The winner is the highest score (ties: the order above); the runner-up and every
candidate's factors are in the trace.  ``combo`` (no template fits; only for legs all
flagged multi-leg) scores 0.65 x timing (x 0.6 if the sizes are not a whole ratio,
x 0.5 for tiny legs).
A structure is emitted if it scores at least ``flow.structure_min_confidence`` (0.6):
a chance pair of unrelated packets a few ms apart scores at most 0.5.

Legged (single-leg) groups are also judged against the underlying's own flow on that
venue: single-leg packets of >= ``SMALL_LEG`` contracts are counted per (root, venue)
and second of their first print; a group anchored at ``a`` expects

    chance partners = packets in the ``flow.legged_rate_window_ms`` (10 s) of whole
                      seconds before a's second / seconds observed x structure window

(seconds observed: since the first packet this operator decided, at most the rate
window; none observed gives 0).  Above ``flow.legged_max_chance_partners`` (0.01) a
partner within the window is too likely to be a coincidence and the group is not
labelled; an emitted legged structure carries the value as ``legged.chance_partners``
in its trace.  Why: at ~60 000 prints/s over a handful of underlyings, unrelated 1:1
single-leg pairs on one venue within 1 ms are frequent (firehose vertical precision
0.66, roll/calendar/diagonal 0.35), while at realistic/active rates the expected
number is ~0.001 or less.  Multi-leg (complex-flagged) groups are not affected: the
flag itself says the legs belong together.  Batch-size invariant: a group is decided
only when every packet with an earlier first print is decided, and its count reads
whole seconds before its anchor only.

Cancels.  A structure is never silently changed.  A packet correction (a cancel
removed one of its prints, compute/packets.py) that reaches a group not yet decided at
the correction's ts replaces (or, retracted, drops) that leg before the group is
labelled.  One that reaches a structure already emitted re-labels its group with the
corrected leg and re-issues it at the correction's ts: ``status`` correction (new id,
``corrects`` = the version it replaces), or ``retracted`` (confidence 0, trace
``cancel.structure_withdrawn``) when the group no longer makes a structure (fewer than
two contracts, or its label falls below ``flow.structure_min_confidence``).
Corrections and decisions are applied in ts order, so the result does not depend on
batching.  Emitted structures are remembered for ``flow.cancel_lookback_ms`` after their
ts (a packet's cancel cannot reach further back).

Variant and direction come from the legs' sides; when they are unknown (multi-leg
prints are never signed against one leg's NBBO) the *package* quote rule decides: the
package's net price (legs' VWAPs with the template's signs and ratios) against the
package's net NBBO (bid = bought legs' bids minus sold legs' asks, and vice versa):
above the package mid means the template was bought.  vertical: debit / credit
(debit call or credit put spreads are bullish); straddle and strangle: long_vol /
short_vol; calendar, diagonal, butterfly, condor: long (far expiry / wings bought) or
short; risk reversal: bullish if the call was bought; roll: the opened leg vs the
closed one, out/in (expiry) and up/down (strike); ladder: accumulation (all bought)
or distribution (all sold).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import polars as pl

from islandflow_tui.config import FlowConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.codes import StringCodes
from islandflow_tui.engine.compute.packets import anchored

LEG_COLS: Final = (
    "id",
    "cid",
    "ts",
    "root",
    "symbol",
    "expiry",
    "right",
    "strike",
    "first_ts",
    "last_ts",
    "complex",
    "_first_exch",
    "total_size",
    "premium",
    "vwap",
    "buy_size",
    "sell_size",
    "_first_bid",
    "_first_ask",
    "open_interest",
    "day_volume",
)
ORDER: Final = {label: i for i, label in enumerate(ev.STRUCTURE_LABELS)}
MAX_LEGS: Final = 6
SAME_TIME_NS: Final = ev.NS_PER_MS  # legs whose first prints are this close printed together
_KEY_COLS: Final = ("root", "_first_exch", "complex")
SMALL_LEG: Final = 10  # equal leg sizes below this many contracts happen by chance
LEGGED_BUCKET_NS: Final = ev.NS_PER_S  # single-leg packet counts per second of first ts
_TRACE_DTYPE: Final = ev.polars_schema(ev.FLOW_STRUCTURES)["trace"]


@dataclass(slots=True)
class Leg:
    symbol: str
    expiry: Any
    right: str
    strike: float
    size: int
    premium: float
    vwap: float
    bid: float
    ask: float
    side: int  # +1 bought, -1 sold, 0 unknown
    first_ts: int
    last_ts: int
    complex: bool
    oi: int | None
    day_volume: int
    packet_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Candidate:
    label: str
    orient: list[int]  # +1/-1 per leg: the template's "bought" orientation
    ratio: tuple[int, ...] | None  # template size ratio (None: any equal ratio)
    relation: str  # sides the template needs: same, opposite, fly, condor, any
    conf: float = 0.0
    factors: dict[str, float] = field(default_factory=dict)


def _ratio(legs: list[Leg]) -> tuple[tuple[int, ...] | None, bool]:
    """Leg sizes as a whole ratio (None if they are not), and whether it is reduced."""
    sizes = np.array([leg.size for leg in legs], dtype=np.float64)
    r = sizes / sizes.min()
    whole = np.abs(r - np.round(r)) <= 0.02 * r
    if not whole.all():
        return None, False
    return tuple(int(x) for x in np.round(r)), True


def _sides_factor(sides: list[int], relation: str) -> float:
    known = [s for s in sides if s != 0]
    if relation == "any":
        return 1.0 if len(known) == len(sides) else 0.75

    def ok(ss: list[int]) -> bool:
        if relation == "same":
            return ss[0] == ss[1] if len(ss) == 2 else len(set(ss)) <= 1
        if relation == "opposite":
            return ss[0] == -ss[1]
        if relation == "fly":  # wings (0, 2) equal, body (1) opposite
            return ss[0] == ss[2] == -ss[1]
        if relation == "condor":  # outer (0, 3) equal, inner (1, 2) opposite
            return ss[0] == ss[3] == -ss[1] == -ss[2]
        return True

    if len(known) == len(sides):
        return 1.0 if ok(sides) else 0.35
    # fill unknowns every possible way: contradiction only if none fits
    unknown = [i for i, s in enumerate(sides) if s == 0]
    for mask in range(1 << len(unknown)):
        trial = list(sides)
        for b, i in enumerate(unknown):
            trial[i] = 1 if mask >> b & 1 else -1
        if ok(trial):
            return 0.75
    return 0.35


def _package_sign(
    legs: list[Leg], orient: list[int], ratio: tuple[int, ...] | None, tol: float
) -> tuple[int, float | None]:
    """Quote rule on the package: +1 bought as oriented, -1 sold, 0 unknown; and the edge."""
    r = ratio or tuple(1 for _ in legs)
    px = bid = ask = 0.0
    for leg, o, q in zip(legs, orient, r, strict=True):
        if not (np.isfinite(leg.bid) and np.isfinite(leg.ask)):
            return 0, None
        px += o * q * leg.vwap
        bid += q * (leg.bid if o > 0 else -leg.ask)
        ask += q * (leg.ask if o > 0 else -leg.bid)
    mid, half = (bid + ask) / 2, (ask - bid) / 2
    edge = (px - mid) / half if half > 0 else None
    if px > mid + tol:
        return 1, edge
    if px < mid - tol:
        return -1, edge
    return 0, edge


def _opening(leg: Leg) -> bool | None:
    """Opening-likely (size > OI - volume before it); None when OI is unknown."""
    if leg.oi is None:
        return None
    return leg.size > leg.oi - (leg.day_volume - leg.size)


def candidates(legs: list[Leg]) -> tuple[list[Candidate], int | None]:
    """Candidates whose geometry fits, and the index of the opened leg of a roll."""
    n = len(legs)
    exp = {leg.expiry for leg in legs}
    rights = {leg.right for leg in legs}
    out: list[Candidate] = []
    opened: int | None = None
    if n == 2:
        a, b = legs
        if len(exp) == 1 and len(rights) == 1:
            # debit orientation: buy the lower call / the higher put
            orient = [1, -1] if a.right == "C" else [-1, 1]
            out.append(Candidate("vertical", orient, (1, 1), "opposite"))
        elif len(exp) == 1 and a.strike == b.strike:
            out.append(Candidate("straddle", [1, 1], (1, 1), "same"))
        elif len(exp) == 1:
            out.append(Candidate("strangle", [1, 1], (1, 1), "same"))
            call = 0 if a.right == "C" else 1
            orient = [1, -1] if call == 0 else [-1, 1]  # bought call, sold put: bullish
            out.append(Candidate("risk_reversal", orient, (1, 1), "opposite"))
        elif len(rights) == 1:
            label = "calendar" if a.strike == b.strike else "diagonal"
            out.append(Candidate(label, [-1, 1], (1, 1), "opposite"))  # long: far bought
        if len(rights) == 1:
            oa, ob = _opening(a), _opening(b)
            if oa is not None and ob is not None and oa != ob:
                closing = b if oa else a
                if closing.oi is not None and closing.oi >= closing.size:
                    opened = 0 if oa else 1
                    orient = [1, -1] if opened == 0 else [-1, 1]
                    out.append(Candidate("roll", orient, (1, 1), "opposite"))
    elif len(exp) == 1 and len(rights) == 1 and n >= 3:
        ks = [leg.strike for leg in legs]
        if n == 3 and abs((ks[1] - ks[0]) - (ks[2] - ks[1])) < 1e-9:
            out.append(Candidate("butterfly", [1, -1, 1], (1, 2, 1), "fly"))
        if n == 4 and abs((ks[1] - ks[0]) - (ks[3] - ks[2])) < 1e-9:
            out.append(Candidate("condor", [1, -1, -1, 1], (1, 1, 1, 1), "condor"))
        out.append(Candidate("ladder", [1] * n, None, "any"))
    elif n == 4 and len(exp) == 1 and rights == {"C", "P"}:
        puts = [leg for leg in legs if leg.right == "P"]
        calls = [leg for leg in legs if leg.right == "C"]
        if len(puts) == 2 and len(calls) == 2:
            # legs are ordered calls (by strike) then puts (by strike)
            c1, c2 = calls[0].strike, calls[1].strike
            p1, p2 = puts[0].strike, puts[1].strike
            orient = [-1, 1, 1, -1]  # long: wings (low put, high call) bought
            if p2 == c1:
                out.append(Candidate("butterfly", orient, (1, 1, 1, 1), "condor_iron"))
            elif p2 < c1 and abs((c2 - c1) - (p2 - p1)) < 1e-9:
                out.append(Candidate("condor", orient, (1, 1, 1, 1), "condor_iron"))
    return out, opened


def _relation_sides(c: Candidate, sides: list[int]) -> float:
    if c.relation == "condor_iron":  # legs: c1, c2, p1, p2; wings c2 and p1
        return _sides_factor([sides[2], sides[0], sides[3], sides[1]], "condor")
    return _sides_factor(sides, c.relation)


def label_group(legs: list[Leg], tol: float) -> dict[str, Any]:
    """The winning label, its score, variant, direction and trace for one group."""
    legs.sort(key=lambda leg: (leg.expiry, leg.right, leg.strike))
    sides = [leg.side for leg in legs]
    ratio, whole = _ratio(legs)
    all_complex = all(leg.complex for leg in legs)
    first = [leg.first_ts for leg in legs]
    timing = 1.0 if max(first) - min(first) <= SAME_TIME_NS else 0.5
    small = min(leg.size for leg in legs) < SMALL_LEG
    cands, opened = candidates(legs)
    roll_present = any(c.label == "roll" for c in cands)
    trace: list[dict[str, Any]] = [
        {"condition": "legs", "value": float(len(legs)), "threshold": 2.0, "passed": True},
        {"condition": "timing", "value": timing, "threshold": 1.0, "passed": timing == 1.0},
    ]
    if all(leg.right == legs[0].right for leg in legs) and len(legs) == 2:
        known = all(leg.oi is not None for leg in legs)
        trace.append(
            {
                "condition": "roll.closing_evidence",
                "value": 1.0 if roll_present else (0.0 if known else None),
                "threshold": 1.0,
                "passed": roll_present,
            }
        )
    for c in cands:
        if c.ratio is None:  # ladder: equal sizes is the template
            r = 1.0 if ratio is not None and len(set(ratio)) == 1 else (0.7 if whole else 0.3)
        else:
            r = 1.0 if ratio == c.ratio else (0.7 if whole else 0.3)
        if r == 0.7:  # a ratio spread: believable from a package, not from a chance pair
            r = 0.8 if all_complex else 0.5
        if small:  # equal tiny lots are common by chance, other tiny ratios more so
            r = {1.0: 0.75 if all_complex else 0.5}.get(r, min(r, 0.5))
        s = _relation_sides(c, sides)
        conf = r * s * timing
        if roll_present and c.label in ("vertical", "calendar", "diagonal"):
            conf *= 0.8
        c.conf = conf
        c.factors = {"ratio": r, "sides": s}
    if not cands:
        conf = 0.65 * timing * (1.0 if whole else 0.6) * (0.5 if small else 1.0)
        cands = [
            Candidate("combo", [1] * len(legs), None, "any", conf, {"ratio": 1.0 if whole else 0.6})
        ]
    ranked = sorted(cands, key=lambda c: (-c.conf, ORDER[c.label]))
    win = ranked[0]
    for c in ranked:
        for name, v in c.factors.items():
            trace.append(
                {"condition": f"{c.label}.{name}", "value": v, "threshold": 1.0, "passed": v >= 1.0}
            )
        trace.append(
            {
                "condition": f"{c.label}.confidence",
                "value": c.conf,
                "threshold": win.conf,
                "passed": c is win,
            }
        )
    variant, direction, pkg_edge = _variant(win, legs, sides, opened, tol)
    if pkg_edge is not None:
        trace.append(
            {"condition": "package.edge", "value": pkg_edge, "threshold": 0.0, "passed": True}
        )
    runner = ranked[1] if len(ranked) > 1 else None
    return {
        "legs_sorted": legs,
        "label": win.label,
        "confidence": win.conf,
        "runner_up": runner.label if runner else None,
        "runner_up_confidence": runner.conf if runner else None,
        "variant": variant,
        "direction": direction,
        "trace": trace,
    }


def _bought(
    win: Candidate, legs: list[Leg], sides: list[int], tol: float
) -> tuple[int, float | None]:
    """+1 if the template's orientation was bought, -1 sold, 0 unknown (and package edge)."""
    if all(s != 0 for s in sides):
        agree = sum(1 for s, o in zip(sides, win.orient, strict=True) if s == o)
        if agree == len(sides):
            return 1, None
        if agree == 0:
            return -1, None
    return _package_sign(legs, win.orient, win.ratio, tol)


def _variant(
    win: Candidate, legs: list[Leg], sides: list[int], opened: int | None, tol: float
) -> tuple[str | None, str, float | None]:
    label = win.label
    if label == "roll" and opened is not None:
        new, old = legs[opened], legs[1 - opened]
        parts = []
        if new.expiry != old.expiry:
            parts.append("out" if new.expiry > old.expiry else "in")
        if new.strike != old.strike:
            parts.append("up" if new.strike > old.strike else "down")
        return "_".join(parts) or None, "neutral", None
    if label == "combo":
        return None, "neutral", None
    if label == "ladder":
        if all(s > 0 for s in sides):
            return "accumulation", "bullish" if legs[0].right == "C" else "bearish", None
        if all(s < 0 for s in sides):
            return "distribution", "bearish" if legs[0].right == "C" else "bullish", None
        return None, "neutral", None
    sign, edge = _bought(win, legs, sides, tol)
    if sign == 0:
        return None, "neutral", edge
    if label == "vertical":
        bullish = (legs[0].right == "C") == (sign > 0)
        return ("debit" if sign > 0 else "credit"), ("bullish" if bullish else "bearish"), edge
    if label in ("straddle", "strangle"):
        return ("long_vol" if sign > 0 else "short_vol"), "neutral", edge
    if label == "risk_reversal":
        return None, ("bullish" if sign > 0 else "bearish"), edge
    return ("long" if sign > 0 else "short"), "neutral", edge


class Structures:
    """Stateful operator: committed packets (+ watermark) -> structures."""

    def __init__(self, cfg: FlowConfig, tol: float) -> None:
        self.window_ns = cfg.structure_window_ms * ev.NS_PER_MS
        self.cluster_ns = cfg.cluster_window_ms * ev.NS_PER_MS
        self.lookback_ns = cfg.cancel_lookback_ms * ev.NS_PER_MS
        self.min_conf = cfg.structure_min_confidence
        self.legged_buckets = max(cfg.legged_rate_window_ms * ev.NS_PER_MS // LEGGED_BUCKET_NS, 1)
        self.legged_max = cfg.legged_max_chance_partners
        self.tol = tol
        # "root|venue|False" -> {second: single-leg packets >= SMALL_LEG first printed in it}
        self._legged: dict[str, dict[int, int]] = {}
        self._legged_b0: int | None = None  # second of the first decided packet
        #: LEG_COLS of undecided packets, plus ``_gk``: their group key's code
        self._pending: dict[str, np.ndarray] | None = None
        # group key text ("root|venue|False") <-> small int code, for the life of the
        # operator (not checkpointed: a restore codes its pending packets afresh)
        self._gk_code: dict[str, int] = {}
        self._gk_text: list[str] = []
        # the same codes by (root code, venue code, complex): a table lookup per packet
        self._root_codes, self._exch_codes = StringCodes(), StringCodes()
        self._gk_table = np.full((0, 0, 2), -1, dtype=np.int64)
        # emitted structures a cancel can still reach, by key (the anchor packet's id)
        self._issued: dict[int, _Issued] = {}
        self._by_packet: dict[int, int] = {}  # leg packet id -> structure key

    def state(self) -> dict[str, pl.DataFrame]:
        items = sorted(self._issued.items())
        frame = pl.DataFrame()
        if items:
            # one frame from the legs' columns joined by numpy, and the per-structure
            # scalars as whole columns (a frame, or a with_columns, per structure was
            # most of this on the engine thread at every checkpoint)
            lens = np.array([len(s.rows["id"]) for _, s in items], dtype=np.int64)

            def per_row(values: list[int]) -> pl.Series:
                return pl.Series(np.repeat(np.array(values, dtype=np.int64), lens), dtype=pl.Int64)

            legs = {k: np.concatenate([s.rows[k] for _, s in items]) for k in items[0][1].rows}
            frame = pl.DataFrame(legs, strict=False).with_columns(
                per_row([key for key, _ in items]).alias("_skey"),
                per_row([s.anchor_ts for _, s in items]).alias("_anchor_ts"),
                per_row([s.ts for _, s in items]).alias("_sts"),
                per_row([s.version for _, s in items]).alias("_sv"),
                per_row([s.id for _, s in items]).alias("_sid"),
                pl.Series(
                    np.repeat(
                        np.array(
                            [np.nan if s.chance is None else s.chance for _, s in items],
                            dtype=np.float64,
                        ),
                        lens,
                    ),
                    dtype=pl.Float64,
                ).alias("_chance"),
            )
        legged = [
            (k, b, n) for k in sorted(self._legged) for b, n in sorted(self._legged[k].items())
        ]
        return {
            "pending": (
                pl.DataFrame({k: self._pending[k] for k in LEG_COLS}, strict=False)
                if self._pending is not None
                else pl.DataFrame()
            ),
            "issued": frame,
            "legged": pl.DataFrame(
                legged,
                schema={"key": pl.String, "second": pl.Int64, "packets": pl.Int64},
                orient="row",
            ),
            "legged_b0": pl.DataFrame({"b0": [self._legged_b0]}, schema={"b0": pl.Int64}),
        }

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        pending = state.get("pending")
        self._issued, self._by_packet = {}, {}
        self._legged, self._legged_b0 = {}, None
        legged = state.get("legged")  # absent in checkpoints from before the rule
        if legged is not None and legged.height:
            for key, b, n in legged.iter_rows():
                self._legged.setdefault(key, {})[b] = n
        b0 = state.get("legged_b0")
        if b0 is not None and b0.height and b0["b0"][0] is not None:
            self._legged_b0 = int(b0["b0"][0])
        if pending is None or pending.height == 0:
            self._pending = None
        else:
            self._pending = {k: pending.get_column(k).to_numpy() for k in LEG_COLS}
            self._pending["_gk"] = self._codes(pending)
        issued = state.get("issued")
        if issued is None or issued.height == 0:
            return
        for key, g in _groups(issued):
            rows = {k: g.get_column(k).to_numpy() for k in LEG_COLS}
            s = _Issued(rows, int(g["_anchor_ts"][0]), int(g["_sts"][0]))
            s.version, s.id = int(g["_sv"][0]), int(g["_sid"][0])
            if "_chance" in g.columns and g["_chance"][0] is not None:
                chance = float(g["_chance"][0])
                s.chance = None if chance != chance else chance
            s.out = self._relabel(rows, s.anchor_ts, s.chance)
            if s.out is None:  # not a structure any more (cannot happen: kept for safety)
                continue
            self._issued[int(key)] = s  # type: ignore[arg-type]
            for pid in rows["id"].tolist():
                self._by_packet[int(pid)] = int(key)  # type: ignore[arg-type]

    def process(self, packets: pl.DataFrame | None, watermark: int) -> pl.DataFrame | None:
        recs: list[dict[str, Any]] = []
        if packets is not None and packets.height:
            # only the leg columns: filtering the packets' trace and evidence lists
            # cost more than the rest of this operator's input handling
            packets = packets.select(*dict.fromkeys([*LEG_COLS, "status", "corrects"]))
            # most batches carry no correction: no filter then (a Series test first)
            all_new = not (packets.get_column("status") != "new").any()
            new = packets if all_new else packets.filter(pl.col("status") == "new")
            if new.height:
                cols = {k: new.get_column(k).to_numpy() for k in LEG_COLS}
                cols["_gk"] = self._codes(new)
                if self._pending is None:
                    self._pending = cols
                else:
                    self._pending = {k: np.concatenate([self._pending[k], cols[k]]) for k in cols}
            fixed = packets.clear() if all_new else packets.filter(pl.col("status") != "new")
            if fixed.height:
                cols = {k: fixed.get_column(k).to_numpy() for k in LEG_COLS}
                old = fixed.get_column("corrects").to_list()
                status = fixed.get_column("status").to_list()
                for i in np.lexsort((cols["id"], cols["ts"])).tolist():
                    t = int(cols["ts"][i])
                    # groups decided before the correction's time were emitted then
                    recs += self._decide(t)
                    row = {k: v[i : i + 1] for k, v in cols.items()}
                    recs += self._correct(old[i], row, status[i] != "correction", t)
        recs += self._decide(watermark)
        horizon = watermark - self.lookback_ns
        # what this call emits or re-issues stays until commit has chained its
        # ``corrects`` (one big batch would otherwise drop a structure emitted and
        # retracted in it before commit, and the retraction named nothing)
        touched = {int(r["anchor_id"]) for r in recs}
        for key in [k for k, s in self._issued.items() if s.ts < horizon and k not in touched]:
            for pid in self._issued.pop(key).rows["id"].tolist():
                self._by_packet.pop(int(pid), None)
        return self._frame(recs) if recs else None

    def commit(self, assigned: pl.DataFrame) -> pl.DataFrame:
        """Fill ``corrects`` (chained within the batch) and remember the ids."""
        corrects: list[int | None] = []
        for key, version, sid in zip(
            assigned["_anchor"].to_list(),
            assigned["_sv"].to_list(),
            assigned["id"].to_list(),
            strict=True,
        ):
            s = self._issued.get(key)
            corrects.append(None if version == 0 or s is None else s.id)
            if s is not None:
                s.id = sid
        for key in [k for k, s in self._issued.items() if s.withdrawn]:
            del self._issued[key]
        return assigned.with_columns(pl.Series("corrects", corrects, dtype=pl.Int64))

    def _correct(
        self, old_id: int, row: dict[str, np.ndarray], gone: bool, ts: int
    ) -> list[dict[str, Any]]:
        """Apply one packet correction: to a pending leg silently, to an emitted
        structure as a re-issue (see the module doc)."""
        p = self._pending
        if p is not None:
            at = np.flatnonzero(p["id"] == old_id)
            if len(at):
                keep = p["id"] != old_id
                self._pending = {k: v[keep] for k, v in p.items()}
                if not gone:
                    row = {
                        **row,
                        "_gk": self._codes(pl.DataFrame({k: row[k] for k in _KEY_COLS})),
                    }
                    self._pending = {
                        k: np.concatenate([self._pending[k], row[k]]) for k in self._pending
                    }
                return []
        key = self._by_packet.pop(old_id, None)
        s = self._issued.get(key) if key is not None else None
        if s is None:
            return []
        keep = s.rows["id"] != old_id
        rows = {k: v[keep] for k, v in s.rows.items()}
        if not gone:
            rows = {k: np.concatenate([rows[k], row[k]]) for k in LEG_COLS}
            self._by_packet[int(row["id"][0])] = key  # type: ignore[assignment]
        order = np.lexsort((rows["id"], rows["first_ts"]))
        s.rows = {k: v[order] for k, v in rows.items()}
        s.version += 1
        out = self._relabel(s.rows, s.anchor_ts, s.chance)
        if out is None:  # withdrawn for good (a cancel only ever removes more): no
            # packet leads here any more; dropped at commit, once its id is known
            s.withdrawn = True
            for pid in s.rows["id"].tolist():
                self._by_packet.pop(int(pid), None)
            legs_left = len(set(s.rows["symbol"].tolist()))
            out = dict(s.out)  # type: ignore[arg-type]
            out.update(
                status="retracted",
                confidence=0.0,
                trace=[
                    {
                        "condition": "cancel.structure_withdrawn",
                        "value": float(legs_left),
                        "threshold": 2.0,
                        "passed": False,
                    }
                ],
                evidence_override=sorted(int(i) for i in s.rows["id"].tolist()),
            )
        else:
            s.out = out
            out = dict(out, status="correction")
        out.update(ts=ts, anchor_id=key, _sv=s.version)
        return [out]

    def _relabel(
        self, rows: dict[str, np.ndarray], anchor_ts: int, chance: float | None
    ) -> dict[str, Any] | None:
        n_sym = len(set(rows["symbol"].tolist()))
        if n_sym < 2 or n_sym > MAX_LEGS:
            return None
        return self._one(rows, np.arange(len(rows["id"])), anchor_ts, chance)

    def _codes(self, frame: pl.DataFrame) -> np.ndarray:
        """Group key codes of packet rows (root, _first_exch, complex): root and venue
        coded by Enum casts (:class:`StringCodes`), then one lookup in a (root, venue,
        complex) table of key codes.  A combination not in the table yet gets its key
        text ("root|venue|False", as ``str`` of the numpy values gave it) coded by the
        text dict, in order of first appearance, so codes and texts are the ones
        :meth:`_text_codes` gives (building the text per packet cost ~1 ms per
        firehose batch)."""
        root, exch, cplx = (frame.get_column(c) for c in _KEY_COLS)
        if root.null_count() or exch.null_count() or cplx.null_count():
            return self._text_codes(frame)
        r = self._root_codes.codes(root)
        x = self._exch_codes.codes(exch)
        c = cplx.cast(pl.Int64).to_numpy()
        table = self._gk_table
        shape = (len(self._root_codes.names), len(self._exch_codes.names))
        if table.shape[:2] != shape:
            grown = np.full((*shape, 2), -1, dtype=np.int64)
            grown[: table.shape[0], : table.shape[1]] = table
            table = self._gk_table = grown
        gk = table[r, x, c]
        miss = np.flatnonzero(gk < 0)
        if len(miss):
            combo = (r[miss] * shape[1] + x[miss]) * 2 + c[miss]
            _, first = np.unique(combo, return_index=True)
            names_r, names_x = self._root_codes.names, self._exch_codes.names
            for i in miss[np.sort(first)].tolist():
                ri, xi, ci = int(r[i]), int(x[i]), int(c[i])
                text = f"{names_r[ri]}|{names_x[xi]}|{bool(ci)}"
                code = self._gk_code.get(text)
                if code is None:
                    code = self._gk_code[text] = len(self._gk_text)
                    self._gk_text.append(text)
                table[ri, xi, ci] = code
            gk = table[r, x, c]
        return gk

    def _text_codes(self, frame: pl.DataFrame) -> np.ndarray:
        """Group key codes from the key text built by polars, coded by a dict over its
        distinct values (the general path: a null in the key columns)."""
        text = frame.select(
            pl.concat_str(
                pl.col("root"),
                pl.lit("|"),
                pl.col("_first_exch"),
                pl.lit("|"),
                pl.when(pl.col("complex")).then(pl.lit("True")).otherwise(pl.lit("False")),
            ).alias("k")
        ).get_column("k")
        for t in text.unique(maintain_order=True).to_list():
            if t not in self._gk_code:
                self._gk_code[t] = len(self._gk_text)
                self._gk_text.append(t)
        return text.replace_strict(self._gk_code, return_dtype=pl.Int64).to_numpy()

    def _count_legged(self, p: dict[str, np.ndarray], rows: np.ndarray) -> None:
        """Count decided single-leg packets of >= SMALL_LEG contracts per key and second."""
        big = rows[~p["complex"][rows].astype(bool) & (p["total_size"][rows] >= SMALL_LEG)]
        if not len(rows):
            return
        if self._legged_b0 is None:
            self._legged_b0 = int(p["first_ts"][rows].min()) // LEGGED_BUCKET_NS
        if not len(big):
            return
        sec = p["first_ts"][big] // LEGGED_BUCKET_NS
        pair = np.lexsort((sec, p["_gk"][big]))
        gk, sec = p["_gk"][big][pair], sec[pair]
        start = np.ones(len(gk), dtype=bool)
        start[1:] = (gk[1:] != gk[:-1]) | (sec[1:] != sec[:-1])
        first = np.flatnonzero(start)
        counts = np.diff(np.append(first, len(gk)))
        for k, b, n in zip(gk[first].tolist(), sec[first].tolist(), counts.tolist(), strict=True):
            d = self._legged.setdefault(self._gk_text[k], {})
            d[b] = d.get(b, 0) + n

    def _chance(self, key: str, anchor_ts: int) -> float:
        """Expected chance single-leg partners within the structure window (module doc)."""
        b = anchor_ts // LEGGED_BUCKET_NS
        b0 = b if self._legged_b0 is None else self._legged_b0
        seen = min(b - b0, self.legged_buckets)
        if seen <= 0:
            return 0.0
        d = self._legged.get(key, {})
        n = sum(d.get(i, 0) for i in range(b - seen, b))
        return n * (self.window_ns / (seen * LEGGED_BUCKET_NS))

    def _prune_legged(self, watermark: int) -> None:
        """Drop seconds no group still to be decided can read (a group decided later is
        anchored at or after ``watermark - structure window - cluster window``)."""
        old = (watermark - self.window_ns - self.cluster_ns) // LEGGED_BUCKET_NS
        old -= self.legged_buckets + 1
        for key in list(self._legged):
            d = self._legged[key]
            for b in [b for b in d if b < old]:
                del d[b]
            if not d:
                del self._legged[key]

    def _decide(self, watermark: int) -> list[dict[str, Any]]:
        """Label and emit every pending group decided below ``watermark``."""
        p = self._pending
        if p is None or len(p["id"]) == 0:
            return []
        # group keys by code, not by text: groups and their members are the same
        # whatever order the keys sort in, and the output is sorted by (ts, anchor)
        gk = p["_gk"]
        order = np.lexsort((p["id"], p["first_ts"], gk))
        ks, ts = gk[order], p["first_ts"][order]
        anchor = anchored(ks, ts, self.window_ns)
        group = np.cumsum(anchor) - 1
        anchor_ts = ts[anchor][group]
        decided = anchor_ts + self.window_ns + self.cluster_ns < watermark
        keep = order[~decided]
        self._pending = {k: v[np.sort(keep)] for k, v in p.items()} if len(keep) else None
        if not decided.any():
            return []
        # every packet first printed before a decided group's anchor is decided by now
        # (in this call or before): count them all before any group reads its seconds
        self._count_legged(p, order[decided])
        starts = np.flatnonzero(anchor)
        sizes = np.diff(np.append(starts, len(order)))
        pick = decided[starts] & (sizes >= 2)
        if pick.any() and self.min_conf > 0.5:
            pick &= self._may_score(p, order, starts, sizes)
        cplx = p["complex"][order[starts]].astype(bool)
        rows = []
        for s, n in zip(starts[pick].tolist(), sizes[pick].tolist(), strict=True):
            idx = order[s : s + n]
            chance = None
            if not cplx[np.searchsorted(starts, s)]:
                chance = self._chance(self._gk_text[int(gk[idx[0]])], int(anchor_ts[s]))
                if chance > self.legged_max:  # a chance partner is too likely: no label
                    continue
            n_sym = len(set(p["symbol"][idx].tolist()))
            if n_sym < 2 or n_sym > MAX_LEGS:
                continue
            row = self._one(p, idx, int(anchor_ts[s]), chance)
            if row is not None:
                rows.append(row)
                key = int(row["anchor_id"])
                self._issued[key] = _Issued(
                    {k: p[k][idx] for k in LEG_COLS},
                    int(anchor_ts[s]),
                    int(row["ts"]),
                    row,
                    chance=chance,
                )
                for pid in p["id"][idx].tolist():
                    self._by_packet[int(pid)] = key
        self._prune_legged(watermark)  # after: this call's groups read their seconds
        return rows

    @staticmethod
    def _may_score(
        p: dict[str, np.ndarray], order: np.ndarray, starts: np.ndarray, sizes: np.ndarray
    ) -> np.ndarray:
        """Vectorised pre-filter: single-leg groups of distinct contracts whose sizes are
        not whole multiples of the smallest, or whose smallest leg is tiny, score at most
        0.5 (see the module doc), so above that ``structure_min_confidence`` the Python
        labeller is skipped for them (in a firehose market that is most groups)."""
        size = p["total_size"][order].astype(np.float64)
        smallest = np.minimum.reduceat(size, starts)
        r = size / np.repeat(smallest, sizes)
        whole = np.abs(r - np.round(r)) <= 0.02 * r
        all_whole = np.logical_and.reduceat(whole, starts)
        cplx = np.logical_and.reduceat(p["complex"][order].astype(bool), starts)
        # a contract twice in a group is merged into one leg first: leave those to Python
        group = np.repeat(np.arange(len(starts)), sizes)
        pair = np.lexsort((p["cid"][order], group))
        same = (group[pair][1:] == group[pair][:-1]) & (
            p["cid"][order][pair][1:] == p["cid"][order][pair][:-1]
        )
        dup = np.zeros(len(starts), dtype=bool)
        dup[group[pair][1:][same]] = True
        return cplx | dup | (all_whole & (smallest >= SMALL_LEG))

    def _one(
        self, p: dict[str, np.ndarray], idx: np.ndarray, anchor_ts: int, chance: float | None
    ) -> dict[str, Any] | None:
        legs: dict[str, Leg] = {}
        for i in idx.tolist():
            sym = p["symbol"][i]
            buy, sell = int(p["buy_size"][i]), int(p["sell_size"][i])
            side = 1 if buy > sell else (-1 if sell > buy else 0)
            size = int(p["total_size"][i])
            oi = p["open_interest"][i]
            leg = legs.get(sym)
            if leg is None:
                legs[sym] = Leg(
                    sym,
                    p["expiry"][i],
                    p["right"][i],
                    float(p["strike"][i]),
                    size,
                    float(p["premium"][i]),
                    float(p["vwap"][i]),
                    _f(p["_first_bid"][i]),
                    _f(p["_first_ask"][i]),
                    side,
                    int(p["first_ts"][i]),
                    int(p["last_ts"][i]),
                    bool(p["complex"][i]),
                    None if oi is None or oi != oi else int(oi),
                    int(p["day_volume"][i]),
                    [int(p["id"][i])],
                )
            else:  # the same contract twice in a group: one leg
                total = leg.size + size
                leg.vwap = (leg.vwap * leg.size + float(p["vwap"][i]) * size) / total
                leg.size = total
                leg.premium += float(p["premium"][i])
                leg.side = leg.side if leg.side == side else 0
                leg.last_ts = max(leg.last_ts, int(p["last_ts"][i]))
                leg.day_volume = max(leg.day_volume, int(p["day_volume"][i]))
                leg.packet_ids.append(int(p["id"][i]))
        out = label_group(list(legs.values()), self.tol)
        if chance is not None:
            out["trace"].append(
                {
                    "condition": "legged.chance_partners",
                    "value": chance,
                    "threshold": self.legged_max,
                    "passed": chance <= self.legged_max,
                }
            )
        all_complex = all(leg.complex for leg in out["legs_sorted"])
        if out["label"] == "combo" and not all_complex:
            return None
        if out["confidence"] < self.min_conf:
            return None
        first = int(idx[0])
        out.update(
            root=p["root"][first],
            exchange=p["_first_exch"][first],
            complex=all_complex,
            ts=anchor_ts + self.window_ns + self.cluster_ns,
            anchor_id=int(p["id"][first]),
        )
        return out

    def _frame(self, rows: list[dict[str, Any]]) -> pl.DataFrame:
        recs = []
        for r in rows:
            legs: list[Leg] = r["legs_sorted"]
            sides = [
                "buy" if leg.side > 0 else "sell" if leg.side < 0 else "unknown" for leg in legs
            ]
            signs = {"buy": "+", "sell": "-", "unknown": "?"}
            desc = "  ".join(
                f"{signs[s]}{leg.size} {leg.strike:g}{leg.right} {_day(leg.expiry)}"
                for leg, s in zip(legs, sides, strict=True)
            )
            known = all(leg.side != 0 for leg in legs)
            recs.append(
                {
                    "ts": r["ts"],
                    "_anchor": r["anchor_id"],
                    "root": r["root"],
                    "label": r["label"],
                    "confidence": float(r["confidence"]),
                    "runner_up": r["runner_up"],
                    "runner_up_confidence": r["runner_up_confidence"],
                    "variant": r["variant"],
                    "direction": r["direction"],
                    "legs": len(legs),
                    "symbols": [leg.symbol for leg in legs],
                    "leg_sizes": [leg.size for leg in legs],
                    "leg_sides": sides,
                    "description": desc,
                    "first_ts": min(leg.first_ts for leg in legs),
                    "last_ts": max(leg.last_ts for leg in legs),
                    "exchange": r["exchange"],
                    "complex": r["complex"],
                    "total_size": sum(leg.size for leg in legs),
                    "premium": float(sum(leg.premium for leg in legs)),
                    "net_premium": float(sum(leg.side * leg.premium for leg in legs))
                    if known
                    else None,
                    "evidence": r.get("evidence_override")
                    or sorted(i for leg in legs for i in leg.packet_ids),
                    "trace": r["trace"],
                    "status": r.get("status", "new"),
                    "corrects": None,
                    "_sv": r.get("_sv", 0),
                }
            )
        schema = {**ev.polars_schema(ev.FLOW_STRUCTURES), "_anchor": pl.Int64, "_sv": pl.Int64}
        schema = {k: v for k, v in schema.items() if k not in ("seq", "id")}
        return pl.DataFrame(recs, schema=schema).sort("ts", "_anchor", "_sv")


def _groups(issued: pl.DataFrame) -> list[tuple[int, pl.DataFrame]]:
    """The rows of each structure key, in order of first appearance (what
    ``group_by(maintain_order=True)`` gives).  state() writes each key's rows
    together, so they are zero-copy slices; gathering each group cost a seek ~0.1 s."""
    keys = issued.get_column("_skey").to_numpy()
    start = np.ones(len(keys), dtype=bool)
    start[1:] = keys[1:] != keys[:-1]
    first = np.flatnonzero(start)
    if len(first) != len(np.unique(keys)):  # a key in two places: gather as before
        return [
            (int(k), g)  # type: ignore[arg-type]
            for (k,), g in issued.group_by("_skey", maintain_order=True)
        ]
    ends = [*first[1:].tolist(), len(keys)]
    return [
        (int(keys[a]), issued.slice(a, b - a)) for a, b in zip(first.tolist(), ends, strict=True)
    ]


@dataclass(slots=True)
class _Issued:
    """An emitted structure a cancel can still reach: its legs' packet rows (LEG_COLS),
    anchor time, emission ts, version, current id and last label result."""

    rows: dict[str, np.ndarray]
    anchor_ts: int
    ts: int
    out: dict[str, Any] | None = None
    version: int = 0
    id: int = -1
    withdrawn: bool = False
    chance: float | None = None  # expected chance partners (legged groups only)


def _day(expiry: Any) -> str:
    """11/25 from a date or a numpy datetime64."""
    if isinstance(expiry, np.datetime64):
        expiry = expiry.astype("datetime64[D]").astype(object)
    return f"{expiry:%m/%d}"


def _f(x: float | None) -> float:
    return float("nan") if x is None else float(x)
