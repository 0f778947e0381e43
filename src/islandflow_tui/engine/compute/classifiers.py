"""Rule-based classifiers over flow packets and structures -> classifier.hits.

Stateless and vectorised: every classifier is one boolean expression over the
packets (or structures) of a batch, and its trace lists every condition it checked
with the value seen, the threshold and whether it passed.  Thresholds are the seed's
(``CLASSIFIER_*``; config section ``[classifier]``) where it had them.

Gates (seed): every packet classifier needs ``nbbo_coverage >= min_nbbo_coverage``
(0.5); the *directional* ones (sweeps, writes, far-dated, 0DTE, repeat, golden) also
need ``aggressor_ratio >= min_aggressor_ratio`` (0.55) on the side they are about.
The others (block, spike, opening) fire whatever the side, and say ``neutral`` when
the side is not clear.  A z-score only gates once the contract's baseline has
``z_min_samples`` (12) observations.

================================  ==============================================
``large_bullish_call_sweep``      call sweep bought: >= 3 prints and premium
                                  >= 40 000 or premium z >= 2
``large_bearish_put_sweep``       the same on puts
``golden_sweep``                  packet kind golden_sweep (needs open interest)
``unusual_contract_spike``        size >= 400 and premium >= 20 000, and, once
                                  the contract's baseline has z_min_samples
                                  observations, premium z >= 2.5 or size z >= 2
``large_call_overwrite``          calls sold (sell side), premium >= 40 000: bearish
``large_put_write``               puts sold, premium >= 40 000: bullish
``far_dated_conviction``          bought, DTE >= 60, premium >= 40 000
``zero_dte_gamma_punch``          bought, expiry today, |strike - spot| / spot
                                  <= 1 %, premium >= 20 000, size >= 400
``block``                         packet tagged block, premium >= 20 000
``repeat_hitter``                 packet tagged repeat, the window's hits sum to
                                  >= 40 000
``opening_likely``                size > open interest - (day volume - size)
                                  (needs open interest)
``straddle`` / ``strangle``       structure of that label; variant long_vol /
                                  short_vol
``vertical_spread``               vertical; variant debit / credit
``ladder_accumulation``           ladder whose legs were all bought
``roll``                          roll (needs open interest); variant up/down/out/in
================================  ==============================================

The spike reads the seed's z thresholds as *confirmation* (its own wording): the
absolute floors always apply and the z-scores must also say "unusual" once they can.
Read as a bare "or", a z-score alone fired on about one packet in ten of the synthetic
tape (sizes are heavy-tailed, so size z >= 2 is common) and most were $1k prints.

Structure classifiers need gross premium >= ``structure_min_premium`` (20 000) and a
label confidence >= ``structure_min_confidence`` (0.4).

Confidence, in [0.4, 1] for packets:

    confidence = 0.4 + 0.3 * excess + 0.2 * aggression + 0.1 * coverage

* excess: how far past its magnitude threshold the packet is, the best of the
  classifier's magnitude conditions: ``(value / threshold - 1) / 3`` for dollars and
  contracts (0 at the threshold, 1 at four times it), ``(z - threshold) / 2`` for
  z-scores; clipped to [0, 1].  (Only +, -, x, / on purpose: vectorised
  transcendental functions round differently in SIMD lanes and scalar tails, which
  would make the output depend on batch sizes);
* aggression: ``(aggressor_ratio - min_aggressor_ratio) / (1 - min_aggressor_ratio)``;
* coverage: ``(nbbo_coverage - min_nbbo_coverage) / (1 - min_nbbo_coverage)``; both
  clipped to [0, 1].

For structures: ``confidence = label confidence * (0.7 + 0.3 * excess)`` with excess
from the gross premium.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl
import pyarrow as pa

from islandflow_tui.config import ClassifierConfig, FlowConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.trace import ArrayItem, Item, trace_from_blocks

if TYPE_CHECKING:
    from islandflow_tui.engine.compute.packets import RepeatEvidence

#: most specific first: an alert is named after the first of its hits in this order
PACKET_CLASSIFIERS: Final = (
    "golden_sweep",
    "large_bullish_call_sweep",
    "large_bearish_put_sweep",
    "zero_dte_gamma_punch",
    "block",
    "repeat_hitter",
    "large_call_overwrite",
    "large_put_write",
    "far_dated_conviction",
    "unusual_contract_spike",
    "opening_likely",
)
STRUCTURE_CLASSIFIERS: Final = (
    "straddle",
    "strangle",
    "vertical_spread",
    "ladder_accumulation",
    "roll",
)
ORDER: Final = {n: i for i, n in enumerate(PACKET_CLASSIFIERS + STRUCTURE_CLASSIFIERS)}
_HIT_SCHEMA: Final = ev.polars_schema(ev.CLASSIFIER_HITS)


@dataclass(slots=True)
class Rule:
    """One classifier: when it fires, what it says, how sure, and its trace."""

    name: str
    fires: pl.Expr
    direction: pl.Expr
    items: list[Item]
    magnitude: list[tuple[pl.Expr, float, str]] = field(default_factory=list)
    variant: pl.Expr = field(default_factory=lambda: pl.lit(None, pl.String))


def _excess(values: list[np.ndarray], magnitude: list[tuple[pl.Expr, float, str]]) -> np.ndarray:
    """Best margin past the magnitude thresholds, in [0, 1] (numpy: see the module doc)."""
    out = np.zeros(len(values[0]) if values else 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        for v, (_, threshold, how) in zip(values, magnitude, strict=True):
            if how == "z":
                m = (v - threshold) / 2.0
            elif threshold > 0:
                m = (v / threshold - 1.0) / 3.0
            else:
                m = np.ones(len(v))
            out = np.maximum(out, np.clip(np.nan_to_num(m, nan=0.0), 0.0, 1.0))
    return out


class Classifiers:
    """Builds every rule once from the config; ``packets`` / ``structures`` apply them."""

    def __init__(self, cfg: ClassifierConfig, flow: FlowConfig) -> None:
        self.cfg = cfg
        self.flow = flow
        self.packet_rules = self._packet_rules()
        self.structure_rules = self._structure_rules()
        self._exprs: dict[tuple[str, tuple[int, ...] | None], list[pl.Expr]] = {}
        self._values: dict[
            tuple[str, tuple[int, ...]], tuple[list[pl.Expr], dict[str, str], list[str]]
        ] = {}
        #: per (kind, rule): its value expressions as (name, expression, identity, the
        #: columns it reads), built and serialised once
        self._rule_values: dict[tuple[str, int], list[tuple[str, pl.Expr, bytes, list[str]]]] = {}

    # -- rules ------------------------------------------------------------------
    def _packet_rules(self) -> list[Rule]:
        c = self.cfg
        col = pl.col
        live = col("status") != "retracted"
        simple = ~col("complex")
        cov_ok = col("nbbo_coverage") >= c.min_nbbo_coverage
        agg_ok = col("aggressor_ratio") >= c.min_aggressor_ratio
        z_ok = col("baseline_n") >= c.z_min_samples
        buy = col("side") == "buy"
        sell = col("side") == "sell"
        is_sweep = col("kind").is_in(["sweep", "golden_sweep"])
        premium = col("premium")
        size = col("total_size")
        pz, sz = col("premium_z"), col("size_z")
        pkt_dir = col("direction")
        dir_if_clear = pl.when(agg_ok).then(pkt_dir).otherwise(pl.lit("neutral"))

        cov_item = Item("nbbo_coverage", col("nbbo_coverage"), c.min_nbbo_coverage, cov_ok)
        agg_item = Item("aggressor_ratio", col("aggressor_ratio"), c.min_aggressor_ratio, agg_ok)
        n_item = Item("baseline_n", col("baseline_n"), c.z_min_samples, z_ok)

        def flag(name: str, expr: pl.Expr) -> Item:
            return Item(name, expr.cast(pl.Float64), 1.0, expr)

        rules: list[Rule] = []
        # sweeps
        sw_prem = premium >= c.sweep_min_premium
        sw_z = z_ok & (pz >= c.sweep_min_premium_z)
        sw_count = col("count") >= c.sweep_min_count
        for name, right, direction in (
            ("large_bullish_call_sweep", "C", "bullish"),
            ("large_bearish_put_sweep", "P", "bearish"),
        ):
            rules.append(
                Rule(
                    name,
                    live
                    & (col("right") == right)
                    & is_sweep
                    & buy
                    & sw_count
                    & (sw_prem | sw_z)
                    & cov_ok
                    & agg_ok,
                    pl.lit(direction),
                    [
                        flag("kind.sweep", is_sweep),
                        flag(f"right.{right}", col("right") == right),
                        flag("side.buy", buy),
                        agg_item,
                        Item("count", col("count"), c.sweep_min_count, sw_count),
                        Item("premium", premium, c.sweep_min_premium, sw_prem),
                        Item("premium_z", pz, c.sweep_min_premium_z, sw_z),
                        n_item,
                        cov_item,
                    ],
                    [
                        (premium, c.sweep_min_premium, "ratio"),
                        (pl.when(z_ok).then(pz), c.sweep_min_premium_z, "z"),
                    ],
                )
            )
        golden = col("kind") == "golden_sweep"
        rules.append(
            Rule(
                "golden_sweep",
                live & golden & cov_ok & agg_ok,
                pkt_dir,
                [
                    flag("kind.golden_sweep", golden),
                    Item(
                        "premium",
                        premium,
                        self.flow.golden_min_premium,
                        premium >= self.flow.golden_min_premium,
                    ),
                    Item("size_over_oi", size, col("open_interest"), size > col("open_interest")),
                    agg_item,
                    cov_item,
                ],
                [(premium, self.flow.golden_min_premium, "ratio")],
            )
        )
        # spike: large in absolute terms, and unusual for this contract once its
        # baseline has enough observations to say so
        sp_size = size >= c.spike_min_size
        sp_prem = premium >= c.spike_min_premium
        sp_pz = z_ok & (pz >= c.spike_min_premium_z)
        sp_sz = z_ok & (sz >= c.spike_min_size_z)
        sp_unusual = ~z_ok | sp_pz | sp_sz
        rules.append(
            Rule(
                "unusual_contract_spike",
                live & simple & cov_ok & sp_size & sp_prem & sp_unusual,
                dir_if_clear,
                [
                    Item("size", size, c.spike_min_size, sp_size),
                    Item("premium", premium, c.spike_min_premium, sp_prem),
                    Item("premium_z", pz, c.spike_min_premium_z, sp_pz),
                    Item("size_z", sz, c.spike_min_size_z, sp_sz),
                    Item("baseline_young", col("baseline_n"), c.z_min_samples, ~z_ok),
                    cov_item,
                    agg_item,
                ],
                [
                    (premium, c.spike_min_premium, "ratio"),
                    (pl.when(z_ok).then(pz), c.spike_min_premium_z, "z"),
                    (pl.when(z_ok).then(sz), c.spike_min_size_z, "z"),
                ],
            )
        )
        # writes (sell side)
        wr_prem = premium >= c.write_min_premium
        for name, right, direction in (
            ("large_call_overwrite", "C", "bearish"),
            ("large_put_write", "P", "bullish"),
        ):
            rules.append(
                Rule(
                    name,
                    live & simple & (col("right") == right) & sell & wr_prem & cov_ok & agg_ok,
                    pl.lit(direction),
                    [
                        flag(f"right.{right}", col("right") == right),
                        flag("side.sell", sell),
                        agg_item,
                        Item("premium", premium, c.write_min_premium, wr_prem),
                        cov_item,
                    ],
                    [(premium, c.write_min_premium, "ratio")],
                )
            )
        far_dte = col("dte") >= c.far_dated_min_dte
        far_prem = premium >= c.far_dated_min_premium
        rules.append(
            Rule(
                "far_dated_conviction",
                live & simple & far_dte & buy & far_prem & cov_ok & agg_ok,
                pkt_dir,
                [
                    Item("dte", col("dte"), c.far_dated_min_dte, far_dte),
                    flag("side.buy", buy),
                    agg_item,
                    Item("premium", premium, c.far_dated_min_premium, far_prem),
                    cov_item,
                ],
                [(premium, c.far_dated_min_premium, "ratio")],
            )
        )
        atm = (col("strike") - col("spot")).abs() / col("spot")
        z_dte = col("dte") == 0
        z_atm = col("spot").is_not_null() & (atm <= c.zero_dte_max_atm_pct)
        z_prem = premium >= c.zero_dte_min_premium
        z_size = size >= c.zero_dte_min_size
        rules.append(
            Rule(
                "zero_dte_gamma_punch",
                live & simple & z_dte & z_atm & z_prem & z_size & buy & cov_ok & agg_ok,
                pkt_dir,
                [
                    Item("dte", col("dte"), 0, z_dte),
                    Item("atm_distance", atm, c.zero_dte_max_atm_pct, z_atm),
                    Item("premium", premium, c.zero_dte_min_premium, z_prem),
                    Item("size", size, c.zero_dte_min_size, z_size),
                    flag("side.buy", buy),
                    agg_item,
                    cov_item,
                ],
                [
                    (premium, c.zero_dte_min_premium, "ratio"),
                    (size.cast(pl.Float64), float(c.zero_dte_min_size), "ratio"),
                ],
            )
        )
        tagged_block = col("tags").list.contains("block")
        b_prem = premium >= c.block_min_premium
        rules.append(
            Rule(
                "block",
                live & tagged_block & b_prem & cov_ok,
                dir_if_clear,
                [
                    flag("tag.block", tagged_block),
                    Item(
                        "max_size",
                        col("max_size"),
                        self.flow.block_min_size,
                        col("max_size") >= self.flow.block_min_size,
                    ),
                    Item("premium", premium, c.block_min_premium, b_prem),
                    cov_item,
                    agg_item,
                ],
                [(premium, c.block_min_premium, "ratio")],
            )
        )
        tagged_repeat = col("tags").list.contains("repeat")
        r_prem = col("_repeat_premium") >= c.repeat_min_premium
        rules.append(
            Rule(
                "repeat_hitter",
                live & tagged_repeat & r_prem & cov_ok & agg_ok,
                pkt_dir,
                [
                    Item(
                        "repeat.hits", col("repeat_hits"), self.flow.repeat_min_hits, tagged_repeat
                    ),
                    Item("repeat.premium", col("_repeat_premium"), c.repeat_min_premium, r_prem),
                    agg_item,
                    cov_item,
                ],
                [(col("_repeat_premium"), c.repeat_min_premium, "ratio")],
            )
        )
        oi = col("open_interest")
        room = oi - (col("day_volume") - size)
        opening = oi.is_not_null() & (size > room)
        rules.append(
            Rule(
                "opening_likely",
                live & opening & cov_ok,
                dir_if_clear,
                [
                    Item("size_over_oi_room", size, room, opening),
                    Item("open_interest", oi, None, oi.is_not_null()),
                    Item("day_volume", col("day_volume"), None, pl.lit(True)),
                    cov_item,
                    agg_item,
                ],
                [(size.cast(pl.Float64), 1.0, "ratio")],
            )
        )
        return sorted(rules, key=lambda r: ORDER[r.name])

    def _structure_rules(self) -> list[Rule]:
        c = self.cfg
        col = pl.col
        prem_ok = col("premium") >= c.structure_min_premium
        conf_ok = col("confidence") >= c.structure_min_confidence
        base = [
            Item("premium", col("premium"), c.structure_min_premium, prem_ok),
            Item("label_confidence", col("confidence"), c.structure_min_confidence, conf_ok),
        ]
        mag = [(col("premium"), c.structure_min_premium, "ratio")]
        variant = col("variant").fill_null("unknown")
        rules = []
        for name, label, extra in (
            ("straddle", "straddle", pl.lit(True)),
            ("strangle", "strangle", pl.lit(True)),
            ("vertical_spread", "vertical", pl.lit(True)),
            ("ladder_accumulation", "ladder", col("variant") == "accumulation"),
            ("roll", "roll", pl.lit(True)),
        ):
            is_label = col("label") == label
            rules.append(
                Rule(
                    name,
                    is_label & extra.fill_null(False) & prem_ok & conf_ok,
                    col("direction"),
                    [Item(f"label.{label}", is_label.cast(pl.Float64), 1.0, is_label), *base],
                    mag,
                    variant,
                )
            )
        return rules

    # -- application --------------------------------------------------------------
    def _apply(
        self,
        source: pl.DataFrame,
        rules: list[Rule],
        kind: str,
        conf_of: Any,
        conf_cols: tuple[str, ...],
    ) -> list[dict[str, Any]]:
        """Evaluate ``rules`` on ``source``: one select for the fire masks, one for the
        values of the rules that fired; the rest is numpy on the firing rows."""
        fires = source.select(self._fire_exprs(kind, rules))
        masks = [fires.get_column(f"f{i}").to_numpy() for i in range(len(rules))]
        fired = [i for i, m in enumerate(masks) if m.any()]
        if not fired:
            return []
        # the values only on the rows some rule fired on (a few percent of the packets):
        # every value expression is row-wise, so a row's values do not depend on
        # which other rows are evaluated with it
        union = np.zeros(source.height, dtype=bool)
        for i in fired:
            union |= masks[i]
        rows = np.flatnonzero(union)
        exprs, names, inputs = self._value_exprs(kind, rules, tuple(fired))
        vals = source.select(inputs).filter(pl.Series(union)).select(exprs)
        columns: dict[str, np.ndarray] = {}

        def val(name: str) -> np.ndarray:
            """A value column (by its name per rule and item) as numpy, converted once
            per distinct expression."""
            u = names[name]
            got = columns.get(u)
            if got is None:
                got = columns[u] = vals.get_column(u).to_numpy()
            return got

        base = {c: source.get_column(c).cast(pl.Float64).to_numpy() for c in conf_cols}
        return self._apply_fired(
            source, rules, kind, conf_of, masks, fired, vals, names, val, base, rows
        )

    def _fire_exprs(self, kind: str, rules: list[Rule]) -> list[pl.Expr]:
        """The fire masks' expressions, built once per source kind (building ~1 500
        polars expressions per batch cost more than evaluating them)."""
        key = (kind, None)
        got = self._exprs.get(key)
        if got is None:
            got = self._exprs[key] = [
                r.fires.fill_null(False).alias(f"f{i}") for i, r in enumerate(rules)
            ]
        return got

    def _value_exprs(
        self, kind: str, rules: list[Rule], fired: tuple[int, ...]
    ) -> tuple[list[pl.Expr], dict[str, str], list[str]]:
        """Direction, variant, magnitude and trace expressions of the fired rules, cached
        per set of fired rules: (the distinct expressions, each named ``u<k>``; the name
        per rule and item -> its distinct expression's name; the source columns they
        read).  Rules share most items (coverage, aggression, premium, their constant
        thresholds): evaluated once each, a third of the expressions."""
        key = (kind, fired)
        got = self._values.get(key)
        if got is not None:
            return got
        exprs: list[pl.Expr] = []
        names: dict[str, str] = {}
        seen: dict[bytes, str] = {}
        inputs_set: set[str] = set()
        for i in fired:
            for name, e, ident, reads in self._rule_value_exprs(kind, rules, i):
                u = seen.get(ident)
                if u is None:
                    u = seen[ident] = f"u{len(exprs)}"
                    exprs.append(e.alias(u))
                    inputs_set.update(reads)
                names[name] = u
        inputs = sorted(inputs_set)
        if len(self._values) > 512:  # bounded: fired sets recur, but never grow without end
            self._values.clear()
        got = self._values[key] = (exprs, names, inputs)
        return got

    def _rule_value_exprs(
        self, kind: str, rules: list[Rule], i: int
    ) -> list[tuple[str, pl.Expr, bytes, list[str]]]:
        """Rule ``i``'s value expressions (direction, variant, magnitudes, each trace
        item's value, threshold and passed), named per rule and item, with their
        serialised identity and input columns: made once per rule (a new set of fired
        rules then only merges them; rebuilding and serialising every expression of
        every fired rule cost ~2 ms per new set)."""
        key = (kind, i)
        got = self._rule_values.get(key)
        if got is not None:
            return got
        out: list[tuple[str, pl.Expr, bytes, list[str]]] = []

        def add(name: str, e: pl.Expr) -> None:
            out.append((name, e, e.meta.serialize(format="binary"), e.meta.root_names()))

        r = rules[i]
        add(f"d{i}", r.direction)
        add(f"v{i}", r.variant)
        for k, (v, _, _) in enumerate(r.magnitude):
            add(f"m{i}_{k}", v.cast(pl.Float64).fill_null(float("nan")))
        for j, it in enumerate(r.items):
            for tag, x in (("v", it.value), ("t", it.threshold)):
                e = x if isinstance(x, pl.Expr) else pl.lit(x, dtype=pl.Float64)
                add(f"{tag}{i}_{j}", e.cast(pl.Float64).fill_null(float("nan")))
            pe = it.passed if isinstance(it.passed, pl.Expr) else pl.lit(it.passed)
            add(f"p{i}_{j}", pe.cast(pl.Boolean).fill_null(False))
        self._rule_values[key] = out
        return out

    def _apply_fired(
        self,
        source: pl.DataFrame,
        rules: list[Rule],
        kind: str,
        conf_of: Any,
        masks: list[np.ndarray],
        fired: list[int],
        vals: pl.DataFrame,
        names: dict[str, str],
        val: Callable[[str], np.ndarray],
        base: dict[str, np.ndarray],
        rows: np.ndarray,
    ) -> list[dict[str, Any]]:
        """Per fired rule: its rows, name, order and confidence.  Direction, variant and
        trace of every fired rule's rows (concatenated in rule order) are built once and
        returned on the first rule's entry (``all_direction``, ``all_variant``,
        ``all_trace``): one gather and one trace array instead of one per rule."""
        out = []
        blocks: list[tuple[int, list[ArrayItem]]] = []  # per rule: its rows' trace items
        idxs = [np.flatnonzero(masks[i]) for i in fired]
        # positions of each rule's rows in ``vals`` (which holds only ``rows``)
        locs = [np.searchsorted(rows, idx) for idx in idxs]
        lens = [len(x) for x in idxs]
        rule_of = np.repeat(np.arange(len(fired)), lens)
        at = np.concatenate(locs)
        for i, idx, loc in zip(fired, idxs, locs, strict=True):
            r = rules[i]
            # this rule's rows carry its own items (the combined rows are rule-major)
            blocks.append(
                (
                    len(idx),
                    [
                        ArrayItem(
                            it.condition,
                            val(f"v{i}_{j}")[loc],
                            val(f"t{i}_{j}")[loc],
                            val(f"p{i}_{j}")[loc],
                        )
                        for j, it in enumerate(r.items)
                    ],
                )
            )
            out.append(
                {
                    "idx": idx,
                    "classifier": r.name,
                    "order": ORDER[r.name],
                    "source": kind,
                    "confidence": conf_of(
                        _excess(
                            [val(f"m{i}_{k}")[loc] for k in range(len(r.magnitude))],
                            r.magnitude,
                        ),
                        {c: v[idx] for c, v in base.items()},
                    ),
                }
            )
        flat = pl.Series(at + rule_of * vals.height, dtype=pl.Int64)
        for col, key in (("d", "all_direction"), ("v", "all_variant")):
            stacked = pl.concat(
                [vals.get_column(names[f"{col}{i}"]).cast(pl.String) for i in fired]
            )
            out[0][key] = stacked.gather(flat)
        out[0]["all_trace"] = trace_from_blocks(blocks)
        return out

    def _packet_conf(self, excess: np.ndarray, cols: dict[str, np.ndarray]) -> np.ndarray:
        c = self.cfg
        aggression = np.clip(
            (cols["aggressor_ratio"] - c.min_aggressor_ratio)
            / max(1e-9, 1 - c.min_aggressor_ratio),
            0,
            1,
        )
        coverage = np.clip(
            (cols["nbbo_coverage"] - c.min_nbbo_coverage) / max(1e-9, 1 - c.min_nbbo_coverage), 0, 1
        )
        return np.clip(0.4 + 0.3 * excess + 0.2 * aggression + 0.1 * coverage, 0.0, 1.0)

    @staticmethod
    def _structure_conf(excess: np.ndarray, cols: dict[str, np.ndarray]) -> np.ndarray:
        return np.clip(cols["confidence"] * (0.7 + 0.3 * excess), 0.0, 1.0)

    def hits(
        self,
        packets: pl.DataFrame | None,
        structures: pl.DataFrame | None,
        repeat_evidence: RepeatEvidence | None = None,
    ) -> pl.DataFrame | None:
        """Every hit of the batch, ordered by (ts, packets before structures, source, rule)."""
        parts: list[pl.DataFrame] = []
        for frame, rules, kind, conf, cols in (
            (
                packets,
                self.packet_rules,
                "packet",
                self._packet_conf,
                ("aggressor_ratio", "nbbo_coverage"),
            ),
            (structures, self.structure_rules, "structure", self._structure_conf, ("confidence",)),
        ):
            if frame is not None and kind == "structure" and "status" in frame.columns:
                frame = frame.filter(pl.col("status") != "retracted")  # withdrawn: no hits
            if frame is None or frame.height == 0:
                continue
            fired = self._apply(frame, rules, kind, conf, cols)
            if not fired:
                continue
            parts.append(self._hits_frame(frame, kind, fired, repeat_evidence))
        if not parts:
            return None
        df = pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]
        return df.sort("ts", "_s", "source_id", "_c").drop("_s", "_c")

    @staticmethod
    def _hits_frame(
        frame: pl.DataFrame,
        kind: str,
        fired: list[dict[str, Any]],
        repeat_evidence: RepeatEvidence | None,
    ) -> pl.DataFrame:
        """One source kind's hits, every fired rule at once: one gather of the source
        rows and one frame (per rule they cost ~1 ms each at firehose rates).  Row
        order is free: the caller sorts on a key unique per hit."""
        ids = frame.get_column("id").to_numpy()
        lens: list[int] = []
        ev_lens: list[np.ndarray] = []
        ev_vals: list[np.ndarray] = []
        for f in fired:
            idx = f["idx"]
            src = ids[idx]
            lens.append(len(idx))
            if f["classifier"] == "repeat_hitter" and repeat_evidence is not None:
                # the hit's packet, then the latest hits of its window (newest first;
                # the newest is the packet itself); a correction's window is its
                # original's and is not repeated
                fresh = frame.get_column("_version").gather(idx).to_numpy() == 0
                keys = frame.get_column("_pkey").gather(idx).to_numpy()
                windows = repeat_evidence(np.where(fresh, keys, -1).tolist())
                windows = [w if w else [int(i)] for w, i in zip(windows, src, strict=True)]
                ev_lens.append(
                    np.fromiter((len(w) for w in windows), dtype=np.int64, count=len(windows))
                )
                ev_vals.append(np.fromiter(chain.from_iterable(windows), dtype=np.int64))
            else:
                ev_lens.append(np.ones(len(idx), dtype=np.int64))
                ev_vals.append(src)
        n = sum(lens)
        idx_all = np.concatenate([f["idx"] for f in fired])
        rule_of = np.repeat(np.arange(len(fired)), lens)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.concatenate(ev_lens), out=offsets[1:])
        evidence = pl.Series(
            "evidence",
            pa.LargeListArray.from_arrays(
                pa.array(offsets), pa.array(np.concatenate(ev_vals), type=pa.int64())
            ),
        )
        gathered = frame.select(
            "ts", "root", "premium", "total_size", *(["symbol"] if kind == "packet" else [])
        )[idx_all]
        names = pl.Series([f["classifier"] for f in fired], dtype=pl.String)
        return pl.DataFrame(
            {
                "ts": gathered["ts"],
                "classifier": names.gather(rule_of),
                "variant": fired[0]["all_variant"],
                "source": pl.Series([kind] * n, dtype=pl.String),
                "source_id": ids[idx_all],
                "root": gathered["root"],
                "symbol": gathered["symbol"]
                if kind == "packet"
                else pl.Series([None] * n, dtype=pl.String),
                "direction": fired[0]["all_direction"],
                "confidence": np.concatenate([f["confidence"] for f in fired]),
                "premium": gathered["premium"],
                "size": gathered["total_size"].cast(pl.Int64),
                "evidence": evidence,
                "trace": fired[0]["all_trace"],
                "_s": np.full(n, 0 if kind == "packet" else 1, dtype=np.int8),
                "_c": np.repeat(np.array([f["order"] for f in fired], dtype=np.int64), lens),
            }
        )


def confidence_terms(
    aggressor_ratio: float, nbbo_coverage: float, excess: float, cfg: ClassifierConfig
) -> float:
    """The packet confidence formula in scalar form (for tests and docs)."""
    aggression = float(
        np.clip((aggressor_ratio - cfg.min_aggressor_ratio) / (1 - cfg.min_aggressor_ratio), 0, 1)
    )
    coverage = float(
        np.clip((nbbo_coverage - cfg.min_nbbo_coverage) / (1 - cfg.min_nbbo_coverage), 0, 1)
    )
    return 0.4 + 0.3 * float(np.clip(excess, 0, 1)) + 0.2 * aggression + 0.1 * coverage
