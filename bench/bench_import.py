"""``islandflow import`` throughput on Databento DBN, with databento's own decode as reference.

The template is the OPRA.PILLAR ``tbbo`` sample (the largest sample file that carries
option prints and quotes, the import's hot path): its records are rebuilt with
``databento_dbn.MBP1Msg`` constructors and repeated with numpy to ``--records``
(default 10 million) over ``--contracts`` instrument ids mapped to OSI symbols, one
record every ``--step-us`` of event time, and written as real zstd-compressed DBN
that ``databento.DBNStore.from_file`` reads back.

Measured in one run, in this order (generation is outside every timed region):

1. decode only: islandflow's decoder (``DBNStore.to_ndarray`` chunks -> raw frames).
2. ``islandflow import``: open + decode + merge + the whole engine (validation,
   NBBO join, packets, structures, classifiers, alerts) + recording the session,
   sealed; records/s = DBN records / wall seconds (``--skip-full`` skips it).
3. ``islandflow import --raw-only``: the same without the compute pipeline (the
   validated, sequenced raw streams recorded).
4. reference: ``DBNStore.from_file(path).to_df()`` (databento alone, to a DataFrame).

    .venv/bin/python bench/bench_import.py [--records 10000000] [--contracts 500]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

import databento as db
import databento_dbn as d
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from islandflow_tui.config import Config
from islandflow_tui.engine.dbn_import import CHUNK_RECORDS, import_files
from islandflow_tui.engine.ingest.dbn_decode import Symbology, decode_events
from islandflow_tui.engine.osi import format_osi
from tests import dbn_gen as g

SAMPLE = Path("/work/shared/data/databento/OPRA.PILLAR/test_data.tbbo.dbn.zst")


def templates() -> list[d.MBP1Msg]:
    """The sample's records, rebuilt field by field with the SDK's constructor."""
    out = []
    for r in db.DBNStore.from_file(SAMPLE):
        lv = r.levels[0]
        out.append(
            d.MBP1Msg(
                publisher_id=r.publisher_id,
                instrument_id=r.instrument_id,
                ts_event=r.ts_event,
                price=r.price,
                size=r.size,
                action=d.Action.TRADE,
                side=d.Side.NONE,
                depth=r.depth,
                ts_recv=r.ts_recv,
                flags=int(r.flags),
                ts_in_delta=r.ts_in_delta,
                sequence=r.sequence,
                levels=d.BidAskPair(
                    bid_px=lv.bid_px, ask_px=lv.ask_px, bid_sz=lv.bid_sz, ask_sz=lv.ask_sz
                ),
            )
        )
    return out


def make_file(folder: Path, n: int, contracts: int, step_ns: int) -> Path:
    tpl = templates()
    start = int(tpl[0].ts_event)
    symbols: dict[str, int] = {}
    expiry = date(2025, 2, 21)
    for i in range(contracts):
        right = "C" if i % 2 == 0 else "P"
        strike = 200 + 2.5 * (i // 2 % 40)
        exp = expiry + timedelta(days=7 * (i // 80))
        symbols[format_osi("AAPL", exp, right, strike)] = 1_000_000 + i
    header = g.metadata("OPRA.PILLAR", d.Schema.TBBO, start, start + n * step_ns, symbols)
    ids = np.array(list(symbols.values()), dtype=np.uint32)
    path = folder / "bench.tbbo.dbn.zst"
    import zstandard

    with open(path, "wb") as fh, zstandard.ZstdCompressor(level=1).stream_writer(fh) as zw:
        zw.write(header)
        block = 1_000_000
        for lo in range(0, n, block):
            m = min(block, n - lo)
            zw.write(
                g.tile(tpl, m, start_ns=start + lo * step_ns, step_ns=step_ns, instrument_ids=ids)
            )
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--contracts", type=int, default=500)
    ap.add_argument("--step-us", type=float, default=2000.0, help="event time between records")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--skip-full", action="store_true", help="skip the full-engine import")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        path = make_file(folder, args.records, args.contracts, int(args.step_us * 1000))
        print(
            f"generated {args.records:,} tbbo records ({path.stat().st_size / 1e6:.1f} MB zstd) "
            f"over {args.contracts} contracts in {time.perf_counter() - t:.1f} s (not timed)"
        )
        print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")

        t = time.perf_counter()
        store = db.DBNStore.from_file(path)
        sym = Symbology()
        sym.add_mappings(store.mappings)
        n = rows = 0
        for arr in store.to_ndarray(count=CHUNK_RECORDS):
            out = decode_events(arr, "OPRA.PILLAR", sym)
            n += len(arr)
            rows += sum(f.height for f in out.frames.values())
        dt = time.perf_counter() - t
        print(
            f"islandflow decode only:   {n:>12,} records in {dt:7.2f} s = "
            f"{n / dt:>12,.0f} records/s ({rows:,} rows)"
        )

        gc.collect()
        cfg = Config()
        cfg.paths.data_dir = str(folder / "data")
        if not args.skip_full:
            t = time.perf_counter()
            report = import_files([path], cfg)
            dt = time.perf_counter() - t
            events = sum(report.accepted.values())
            print(
                f"islandflow import:        {report.records:>12,} records in {dt:7.2f} s = "
                f"{report.records / dt:>12,.0f} records/s ({events:,} raw events accepted, "
                f"rejected {report.rejected or 'none'})"
            )

        gc.collect()
        t = time.perf_counter()
        report = import_files([path], cfg, raw_only=True)
        dt = time.perf_counter() - t
        print(
            f"islandflow import --raw-only:{report.records:>9,} records in {dt:7.2f} s = "
            f"{report.records / dt:>12,.0f} records/s"
        )

        if not args.skip_reference:
            gc.collect()
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                df = db.DBNStore.from_file(path).to_df()
            dt = time.perf_counter() - t
            print(
                f"databento to_df (ref):    {len(df):>12,} records in {dt:7.2f} s = "
                f"{len(df) / dt:>12,.0f} records/s"
            )


if __name__ == "__main__":
    main()
