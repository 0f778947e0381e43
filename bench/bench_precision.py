"""Recall and precision of each classifier per synthetic profile, and what the misses are.

For each profile a seeded ``SyntheticMarket`` (with its open-interest table fed to the
packets, as the app does) runs through a default engine; every classifier's hits are
matched against the generator's injected patterns (tests/test_flow_golden.py's
matching: same contract(s), overlapping time), giving

* ``recall``: injected patterns of the kind the classifier should catch that it did;
* ``precision``: hits on a packet/structure that matches an injected pattern.

A hit that matches no injected pattern is not necessarily wrong: at firehose rates
the generator's *background* prints (random contracts, venues and conditions) form
clusters that meet the published definitions by chance.  For the packet classifiers
whose definition can be checked from the member prints alone (the two sweep
classifiers and ``block``), every unmatched hit is re-checked here, independently of
the engine's code, from its member prints (``options.enriched`` rows listed in the
packet's evidence): ``def_ok`` counts the unmatched hits whose prints meet the
definition, and ``def_precision`` = (matched + def_ok) / hits is precision against
what the definition says.  A ``def_precision`` of 1.0 with a low ``precision`` means
the engine is right and the ground truth (injected patterns only) is incomplete.

    python bench/bench_precision.py [--profiles realistic,active,firehose]
        [--minutes realistic=10,active=5,firehose=0.5] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polars as pl

from islandflow_tui.config import Config
from islandflow_tui.engine import events as ev
from tests.test_flow_golden import (
    Run,
    _match_packets,
    _pattern_rows,
    market_streams,
    score_classifier,
)

DEFAULT_MINUTES = {"realistic": 10.0, "active": 5.0, "firehose": 0.5}


def run(profile: str, seed: int, minutes: float) -> tuple[Run, pl.DataFrame]:
    """test_flow_golden.run_market (1 s batches), also keeping the enriched prints."""
    patterns, cat = market_streams(profile, seed, minutes, group=10)
    enriched = cat(ev.OPTIONS_ENRICHED)
    r = Run(
        patterns,
        cat(ev.FLOW_PACKETS),
        cat(ev.FLOW_STRUCTURES),
        cat(ev.CLASSIFIER_HITS),
        cat(ev.ALERTS),
        enriched.height,
    )
    return r, enriched


def member_stats(
    packet_ids: pl.Series, packets: pl.DataFrame, enriched: pl.DataFrame
) -> pl.DataFrame:
    """Per packet, recomputed from its member prints (not from the packet's fields)."""
    members = (
        packets.filter(pl.col("id").is_in(packet_ids.implode()))
        .select("id", "right", pl.col("evidence").alias("pid"))
        .explode("pid")
        .join(
            enriched.select(
                pl.col("id").alias("pid"),
                "price",
                "size",
                "exchange",
                "flags",
                "placement",
                "side",
            ),
            on="pid",
        )
    )
    iso = (pl.col("flags") & int(ev.Cond.ISO)) != 0
    ask = pl.col("placement").is_in(["A", "AA"])
    bid = pl.col("placement").is_in(["B", "BB"])
    placed = pl.col("placement").is_in(list(ev.PLACEMENTS[:5]))
    size = pl.col("size")
    return members.group_by("id", "right").agg(
        pl.len().alias("n"),
        (pl.col("price") * size * 100).sum().alias("premium"),
        size.sum().alias("size"),
        size.max().alias("max_size"),
        pl.col("exchange").filter(iso).n_unique().alias("iso_venues"),
        iso.sum().alias("iso_n"),
        size.filter(iso).sum().alias("iso_size"),
        pl.max_horizontal(size.filter(iso & ask).sum(), size.filter(iso & bid).sum()).alias(
            "iso_taking"
        ),
        placed.mean().alias("coverage"),
        size.filter(pl.col("side") == "buy").sum().alias("buy"),
        size.filter(pl.col("side") == "sell").sum().alias("sell"),
    )


def definition_ok(classifier: str, st: pl.DataFrame, cfg: Config) -> pl.Series:
    """The published rule, from the recomputed member statistics (absolute premium branch
    only: a hit that needed the premium z-score is not counted as verified)."""
    f, c = cfg.flow, cfg.classifier
    aggressor = pl.max_horizontal("buy", "sell") / pl.col("size")
    gate = (pl.col("coverage") >= c.min_nbbo_coverage) & (aggressor >= c.min_aggressor_ratio)
    if classifier == "block":
        rule = (pl.col("max_size") >= f.block_min_size) & (pl.col("premium") >= c.block_min_premium)
        return st.select(rule & (pl.col("coverage") >= c.min_nbbo_coverage)).to_series()
    sweep = (
        (pl.col("iso_venues") >= f.sweep_min_venues)
        & (pl.col("iso_n") >= f.sweep_min_iso)
        & (pl.col("iso_size") >= f.sweep_min_iso_ratio * pl.col("size"))
        & (pl.col("iso_taking") >= f.sweep_min_taking_ratio * pl.col("iso_size"))
    )
    right, side = ("C", "buy") if classifier == "large_bullish_call_sweep" else ("P", "buy")
    rule = (
        sweep
        & (pl.col("n") >= c.sweep_min_count)
        & (pl.col("premium") >= c.sweep_min_premium)
        & (pl.col("right") == right)
        & (pl.col(side) > pl.col("sell" if side == "buy" else "buy"))
        & gate
    )
    return st.select(rule).to_series()


def profile_table(profile: str, seed: int, minutes: float) -> pl.DataFrame:
    t0 = time.perf_counter()
    r, enriched = run(profile, seed, minutes)
    cfg = Config()
    rows = []
    names = sorted(set(r.hits["classifier"].to_list()))
    for name in names:
        s = score_classifier(r, name)
        row: dict[str, object] = {
            "profile": profile,
            "classifier": name,
            "pattern": s["pattern"],
            "injected": s["injected"],
            "hits": s["hits"],
            "recall": s["recall"],
            "precision": s["precision"],
            "unmatched": None,
            "def_ok": None,
            "def_precision": None,
        }
        if name in ("large_bullish_call_sweep", "large_bearish_put_sweep", "block"):
            hits = r.hits.filter(pl.col("classifier") == name)
            src = r.packets.join(hits.select(pl.col("source_id").alias("id")), on="id", how="semi")
            kind = "block" if name == "block" else "sweep"
            pats = _pattern_rows(r, kind)
            if name != "block":
                pats = pats.filter(pl.col("_right") == ("C" if "call" in name else "P"))
            matched = _match_packets(pats, src)["id"].unique()
            unmatched = src.filter(~pl.col("id").is_in(matched.implode()))["id"]
            st = member_stats(unmatched, r.packets, enriched)
            ok = int(definition_ok(name, st, cfg).sum())
            row.update(
                unmatched=unmatched.len(),
                def_ok=ok,
                def_precision=(matched.len() + ok) / src.height if src.height else None,
            )
        rows.append(row)
    print(
        f"{profile}: {minutes} min of event time, {r.enriched:,} option prints, "
        f"{r.packets.height:,} packets, {r.hits.height:,} hits "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col("recall", "precision", "def_precision").cast(pl.Float64).round(3)
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", default="realistic,active,firehose")
    ap.add_argument("--minutes", default="", help="e.g. realistic=10,firehose=0.5")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    minutes = dict(DEFAULT_MINUTES)
    for part in filter(None, args.minutes.split(",")):
        k, v = part.split("=")
        minutes[k] = float(v)
    tables = [profile_table(p, args.seed, minutes[p]) for p in args.profiles.split(",")]
    with pl.Config(tbl_rows=200, tbl_cols=-1, tbl_width_chars=250, tbl_hide_dataframe_shape=True):
        print(pl.concat(tables, how="vertical_relaxed"))


if __name__ == "__main__":
    main()
