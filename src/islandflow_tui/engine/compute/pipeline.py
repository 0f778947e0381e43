"""The compute graph: raw batches in, derived batches out, in event time.

Operators are chained here and nowhere else::

    NBBO join -> trade side -> signal filter -> options.enriched
              -> packets (+ spot from equities, OI, calendar, baselines, kinds)
              -> structures -> classifier hits -> alerts

    equities join (placement, retail) -> equities.joins
              -> dark inference (block, accumulation) + dark levels -> dark.inferred
              -> candles (regular prints only) -> candles

Each derived stream gets its seq from a per-stream counter in output order
(``_assign``, the only seq assigner), so ids are reproducible in replay.  Every
operator is watermark-driven: it emits only what the watermark has decided, keeps
the rest as state (``state()`` returns polars frames; ``restore()`` takes them back),
and its output does not depend on how events were batched.  The side operator can
hold prints back (the reverse tick rule looks ahead), so it hands the operators after
it a lower watermark.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.alerts import Alerts
from islandflow_tui.engine.compute.candles import Candles, regular
from islandflow_tui.engine.compute.classifiers import Classifiers
from islandflow_tui.engine.compute.dark import DarkInference, events_frame, print_sign
from islandflow_tui.engine.compute.dark_levels import DarkLevels
from islandflow_tui.engine.compute.eq_join import EquitiesJoin
from islandflow_tui.engine.compute.evidence import evidence_list
from islandflow_tui.engine.compute.lanes import FlowLanes, joined_frames
from islandflow_tui.engine.compute.nbbo_join import NbboJoin
from islandflow_tui.engine.compute.packets import Packets, RepeatEvidence
from islandflow_tui.engine.compute.side import TradeSide, side_names
from islandflow_tui.engine.compute.signal import EtfFlags, signal_series
from islandflow_tui.engine.compute.structures import Structures
from islandflow_tui.engine.frames import filled, pick, put, renamed, valid, without
from islandflow_tui.engine.venues import NOT_DARK_EVIDENCE

_ENRICHED_COLS = ev.polars_schema(ev.OPTIONS_ENRICHED).names()
_COLS = {s: ev.polars_schema(s).names() for s in ev.DERIVED_STREAMS}


def _joined(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return a if not b else joined_frames([a, b])


class Compute:
    """Owns every operator and the seq counters of the derived streams."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.nbbo = NbboJoin(cfg.nbbo)
        self.side = TradeSide(cfg.side, cfg.nbbo.at_tolerance)
        self.packets = Packets(cfg)
        self.structures = Structures(cfg.flow, cfg.nbbo.at_tolerance)
        self.classifiers = Classifiers(cfg.classifier, cfg.flow)
        self.alerts = Alerts(cfg.alerts, cfg.classifier, cfg.flow.cancel_lookback_ms * ev.NS_PER_MS)
        # equities (issue 5)
        self.eqjoin = EquitiesJoin(cfg.equities)
        self.dark = DarkInference(cfg.dark, cfg.equities.at_tolerance)
        self.levels = DarkLevels(cfg.dark)
        self.candles = Candles(cfg.candles)
        self.seq = dict.fromkeys(ev.DERIVED_STREAMS, 0)
        self._etf = EtfFlags(cfg.signal)  # by cid: rebuilt with every Compute
        self._lanes: FlowLanes | None = None
        self._lane_errors: list[Exception] = []

    def process(self, raw: dict[str, pl.DataFrame], watermark: int) -> dict[str, pl.DataFrame]:
        """Derived frames of one batch.  While :meth:`start_lanes` is in force the flow
        stages run on their own threads and this returns the enriched prints and the
        equities streams of this batch plus whatever flow frames earlier batches have
        finished (compute/lanes.py); each stream's frames still come in order."""
        out: dict[str, pl.DataFrame] = {}
        eq_quotes, eq_prints = raw.get(ev.EQUITIES_QUOTES), raw.get(ev.EQUITIES_PRINTS)
        joined = self.nbbo.process(raw.get(ev.OPTIONS_PRINTS), raw.get(ev.OPTIONS_NBBO), watermark)
        signed, flow_wm = self.side.process(joined, watermark)
        enriched = None
        if signed is not None:
            enriched = self._enriched(signed)
            out[ev.OPTIONS_ENRICHED] = pick(enriched, _ENRICHED_COLS)
        if self._lanes is None:
            packets, flow, evidence = self.packet_stage(enriched, flow_wm, eq_quotes, eq_prints)
            out.update(flow)
            out.update(self.rule_stage(packets, evidence, flow_wm))
            out.update(self.equity_stage(eq_quotes, eq_prints, watermark))
            return out
        self._lanes.submit(enriched, flow_wm, eq_quotes, eq_prints)
        # the equities chain stays here: a lane of its own measured no faster (the
        # packets lane is then the one that waits)
        out.update(self.equity_stage(eq_quotes, eq_prints, watermark))
        return _joined(out, self._lanes.collect())

    def packet_stage(
        self,
        enriched: pl.DataFrame | None,
        flow_wm: int,
        eq_quotes: pl.DataFrame | None,
        eq_prints: pl.DataFrame | None,
    ) -> tuple[pl.DataFrame | None, dict[str, pl.DataFrame], RepeatEvidence]:
        """Spot, packets (+ baselines, repeats, kinds): (packets with ids, output, the
        batch's repeat evidence for :meth:`rule_stage`)."""
        self.packets.add_equities(eq_quotes, eq_prints)
        packets = self.packets.process(enriched, flow_wm)
        out: dict[str, pl.DataFrame] = {}
        if packets is not None:
            packets = self.packets.commit(self._assign(ev.FLOW_PACKETS, packets), flow_wm)
            out[ev.FLOW_PACKETS] = pick(packets, _COLS[ev.FLOW_PACKETS])
        return packets, out, self.packets.repeat_evidence()

    def rule_stage(
        self,
        packets: pl.DataFrame | None,
        repeat_evidence: RepeatEvidence,
        flow_wm: int,
    ) -> dict[str, pl.DataFrame]:
        """Structures -> classifier hits -> alerts, from one batch's packets."""
        out: dict[str, pl.DataFrame] = {}
        structures = self.structures.process(packets, flow_wm)
        if structures is not None:
            structures = self.structures.commit(self._assign(ev.FLOW_STRUCTURES, structures))
            out[ev.FLOW_STRUCTURES] = pick(structures, _COLS[ev.FLOW_STRUCTURES])
        hits = self.classifiers.hits(packets, structures, repeat_evidence)
        if hits is not None:
            hits = self._assign(ev.CLASSIFIER_HITS, hits)
            out[ev.CLASSIFIER_HITS] = pick(hits, _COLS[ev.CLASSIFIER_HITS])
        alerts = self.alerts.process(hits, packets, structures, flow_wm)
        if alerts is not None:
            alerts = self.alerts.commit(self._assign(ev.ALERTS, alerts))
            out[ev.ALERTS] = pick(alerts, _COLS[ev.ALERTS])
        return out

    # -- lanes (compute/lanes.py) --------------------------------------------------
    @property
    def lanes_running(self) -> bool:
        return self._lanes is not None

    def start_lanes(self) -> None:
        """Run the flow stages on two threads from the next batch on (bulk runs: a
        seek's long fast-forward, the benchmark).  Output is unchanged; only when it is
        returned differs."""
        if self._lanes is None:
            self._lanes = FlowLanes(self)

    def stop_lanes(self) -> dict[str, pl.DataFrame]:
        """Wait for the lanes, stop their threads; the flow frames not yet returned."""
        lanes, self._lanes = self._lanes, None
        if lanes is None:
            return {}
        rest = lanes.close()
        self._lane_errors += lanes.take_errors()
        return rest

    def take_lane_errors(self) -> list[Exception]:
        """Exceptions the lanes caught since the last call (each lost one batch)."""
        errors, self._lane_errors = self._lane_errors, []
        if self._lanes is not None:
            errors += self._lanes.take_errors()
        return errors

    def settle(self) -> dict[str, pl.DataFrame]:
        """Wait until every batch given to the lanes is through; the flow frames not
        yet returned (empty without lanes)."""
        return {} if self._lanes is None else self._lanes.collect(wait=True)

    def set_open_interest(self, table: pl.DataFrame) -> None:
        """Open interest for the packets, in batch order (after the lanes' backlog)."""
        if self._lanes is not None:
            self._lanes.call(self.packets.set_open_interest, table)
        else:
            self.packets.set_open_interest(table)

    def equity_stage(
        self, quotes: pl.DataFrame | None, prints: pl.DataFrame | None, watermark: int
    ) -> dict[str, pl.DataFrame]:
        """Equities join -> dark inference + levels -> candles (compute/eq_join.py,
        dark.py, dark_levels.py, candles.py)."""
        out: dict[str, pl.DataFrame] = {}
        joined = self.eqjoin.process(prints, quotes, watermark)
        offx = evidence = regular_prints = None
        if joined is not None:
            joined = self._assign(ev.EQUITIES_JOINS, joined)
            out[ev.EQUITIES_JOINS] = pick(joined, _COLS[ev.EQUITIES_JOINS])
            # off-exchange prints that may count as dark evidence, signed, in numpy;
            # select before filtering: the evidence list column is costly to filter
            # (a null flag or off_exchange fails the filter, as it did in polars)
            flags_s = joined.get_column("flags")
            flags = filled(flags_s, 0)
            sign = print_sign(
                joined.get_column("plc").to_numpy(),
                joined.get_column("price").to_numpy(),
                filled(joined.get_column("mid"), np.nan),
                flags,
                self.cfg.equities.at_tolerance,
            )
            dark_ok = (
                filled(joined.get_column("off_exchange"), False)
                & ((flags & NOT_DARK_EVIDENCE) == 0)
                & valid(flags_s)
            )
            offx = (
                pick(joined, ["ts", "id", "symbol", "price", "size"])
                .hstack([pl.Series("sign", sign), joined.get_column("spread_pct")])
                .filter(pl.Series(dark_ok))
            )
            evidence = offx.filter(pl.col("size") >= self.cfg.dark.min_print_size)
            regular_prints = regular(joined)
        rows = self.dark.process(evidence, watermark) + self.levels.process(offx, watermark)
        if rows:
            rank = {"block": 0, "accumulation": 1, "level": 2}
            rows.sort(key=lambda r: (r["ts"], rank[r["pattern"]], r["symbol"], r["price"]))
            dark = self._assign(ev.DARK_INFERRED, events_frame(rows))
            out[ev.DARK_INFERRED] = pick(dark, _COLS[ev.DARK_INFERRED])
        candles = self.candles.process(regular_prints, watermark)
        if candles is not None:
            candles = self._assign(ev.CANDLES, candles)
            out[ev.CANDLES] = pick(candles, _COLS[ev.CANDLES])
        return out

    def extra_stats(self) -> dict[str, str]:
        """Counters worth showing that are not input rejections (EngineStats.extra)."""
        dropped = sum(self.candles.late_dropped.values())
        out: dict[str, str] = {}
        if dropped or self.candles.late_updates:
            out["candles late"] = (
                f"{self.candles.late_updates} updated, {dropped} dropped (candles.max_late_ms)"
            )
        return out

    def flush(self) -> dict[str, pl.DataFrame]:
        out = self.process({}, 2**62)
        return out if self._lanes is None else _joined(out, self._lanes.collect(wait=True))

    # -- state (checkpoints) ------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Every operator's state as polars frames, keyed ``operator.part``."""
        if self._lanes is not None:
            self._lanes.wait()  # the flow operators' state after every batch given
        out: dict[str, Any] = {
            "seq": pl.DataFrame({"stream": list(self.seq), "seq": list(self.seq.values())}),
        }
        for name, op in (
            ("nbbo", self.nbbo),
            ("side", self.side),
            ("packets", self.packets),
            ("structures", self.structures),
            ("alerts", self.alerts),
            ("eqjoin", self.eqjoin),
            ("dark", self.dark),
            ("levels", self.levels),
            ("candles", self.candles),
        ):
            for part, frame in op.state().items():
                out[f"{name}.{part}"] = frame
        return out

    def restore(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state` (same config, same engine symbol table)."""
        self.seq = dict(
            zip(state["seq"]["stream"].to_list(), state["seq"]["seq"].to_list(), strict=True)
        )

        def part(prefix: str) -> dict[str, pl.DataFrame]:
            return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}

        self.nbbo.restore(part("nbbo."))
        self.side.restore(part("side."))
        self.packets.restore(part("packets."))
        self.structures.restore(part("structures."))
        self.alerts.restore(part("alerts."))
        if "eqjoin.last_quote" in state:  # checkpoints from before the equities operators
            self.eqjoin.restore(part("eqjoin."))
            self.dark.restore(part("dark."))
            self.levels.restore(part("levels."))
            self.candles.restore(part("candles."))

    # -- helpers ----------------------------------------------------------------
    def _assign(self, stream: str, df: pl.DataFrame) -> pl.DataFrame:
        return put(df, *self._seq_ids(stream, df.height))

    def _seq_ids(self, stream: str, n: int) -> tuple[pl.Series, pl.Series]:
        """``seq`` and ``id`` of the next ``n`` events of ``stream`` (taken)."""
        start = self.seq[stream]
        self.seq[stream] = start + n
        return ev.seq_id_series(stream, start, n)

    def _enriched(self, signed: pl.DataFrame) -> pl.DataFrame:
        """Signal verdicts, side label and evidence; keeps the internal columns (cid,
        side_code) that the packet operator needs and the bus never carries."""
        df = renamed(signed, {"id": "print_id"})
        # one edit for everything the enriched rows add (engine/frames.py: each polars
        # call has its own fixed cost); columns in the order the separate steps gave
        return put(
            without(df, "seq"),
            *signal_series(df, self.cfg.signal, self._etf),
            evidence_list(df, "print_id", "nbbo_id"),
            side_names(df.get_column("side_code").to_numpy()),
            *self._seq_ids(ev.OPTIONS_ENRICHED, df.height),
        )
