"""The compute graph: raw batches in, derived batches out, in event time.

Operators are chained here and nowhere else.  Each derived stream gets its seq
from a per-stream counter in output order, so ids are reproducible in replay.
"""

from __future__ import annotations

import polars as pl

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.evidence import evidence_list
from islandflow_tui.engine.compute.nbbo_join import NbboJoin
from islandflow_tui.engine.compute.signal import signal_columns

_ENRICHED_COLS = ev.polars_schema(ev.OPTIONS_ENRICHED).names()


class Compute:
    """Owns every operator and the seq counters of the derived streams."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.nbbo = NbboJoin(cfg.nbbo)
        self.seq = dict.fromkeys(ev.DERIVED_STREAMS, 0)

    def process(self, raw: dict[str, pl.DataFrame], watermark: int) -> dict[str, pl.DataFrame]:
        out: dict[str, pl.DataFrame] = {}
        joined = self.nbbo.process(raw.get(ev.OPTIONS_PRINTS), raw.get(ev.OPTIONS_NBBO), watermark)
        if joined is not None:
            out[ev.OPTIONS_ENRICHED] = self._enriched(joined)
        return out

    def flush(self) -> dict[str, pl.DataFrame]:
        return self.process({}, 2**62)

    def _assign(self, stream: str, df: pl.DataFrame) -> pl.DataFrame:
        start = self.seq[stream]
        self.seq[stream] = start + df.height
        return df.with_columns(
            pl.int_range(start, start + df.height, dtype=pl.Int64).alias("seq")
        ).with_columns(ev.id_expr(stream))

    def _enriched(self, joined: pl.DataFrame) -> pl.DataFrame:
        df = signal_columns(joined.rename({"id": "print_id"}), self.cfg.signal)
        df = df.with_columns(evidence_list(df, "print_id", "nbbo_id"))
        return self._assign(ev.OPTIONS_ENRICHED, df.drop("seq")).select(_ENRICHED_COLS)
