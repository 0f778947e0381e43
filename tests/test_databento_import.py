"""``islandflow import``: every real Databento sample file, checked against what the
databento package itself decodes from the same file, through the whole engine."""

from __future__ import annotations

import warnings
from pathlib import Path

import databento as db
import databento_dbn as d
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from islandflow_tui.config import Config
from islandflow_tui.engine import dbn_import
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.dbn_import import ImportFailure, import_files
from islandflow_tui.engine.ingest.dbn_venues import asset_class, publisher
from islandflow_tui.engine.log import SessionReader
from islandflow_tui.engine.session import resolve_session, with_session_compute_config
from islandflow_tui.engine.verify import verify_session
from tests import dbn_gen as g

DATA = Path("/work/shared/data/databento")
ALL_FILES = sorted(DATA.glob("*/*.dbn.zst"))
PRINT_SCHEMAS = {"trades", "tbbo", "mbp-1", "mbp-10", "mbo", "tcbbo", "cmbp-1"}
QUOTE_SCHEMAS = {"tbbo", "mbp-1", "mbp-10", "tcbbo", "cmbp-1", "cbbo-1s", "cbbo-1m", "bbo-1s"}
QUOTE_SCHEMAS |= {"bbo-1m"}
INTERVAL_SCHEMAS = {"cbbo-1s", "cbbo-1m", "bbo-1s", "bbo-1m"}
UNDEF_TS = 2**64 - 1
T0 = 1_740_061_800_000_000_000  # 2025-02-20 14:30 UTC


def _schema(path: Path) -> str | None:
    store = db.DBNStore.from_file(path)
    return str(store.schema) if store.schema is not None else None


EVENT_FILES = [p for p in ALL_FILES if _schema(p) in PRINT_SCHEMAS | QUOTE_SCHEMAS]
OTHER_FILES = [p for p in ALL_FILES if p not in EVENT_FILES]


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    c = Config()
    c.paths.data_dir = str(tmp_path / "data")
    return c


def _reference(path: Path) -> tuple[str, str, object]:
    """(asset class, schema, databento's own DataFrame with fixed-point prices as floats)."""
    store = db.DBNStore.from_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = store.to_df(price_type="float", pretty_ts=False, map_symbols=True)
    return asset_class(str(store.metadata.dataset)), str(store.schema), df.reset_index()


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_file_matches_databento(path: Path, cfg: Config) -> None:
    asset, schema, ref = _reference(path)
    report = import_files([path], cfg)
    reader = SessionReader(report.path)
    prints_stream = ev.OPTIONS_PRINTS if asset == "options" else ev.EQUITIES_PRINTS
    quotes_stream = ev.OPTIONS_NBBO if asset == "options" else ev.EQUITIES_QUOTES

    # prints: every trade record, none rejected
    if schema in PRINT_SCHEMAS:
        want = ref if schema == "trades" else ref[ref["action"] == "T"]
        got = reader.read(prints_stream)
        assert got.height == len(want)
        assert report.rejected.get(prints_stream, {}) == {}
        if len(want):
            want = want.sort_values("ts_event", kind="stable")
            assert got["ts"].to_list() == [int(x) for x in want["ts_event"]]
            assert got["price"].to_list() == list(want["price"])
            assert got["size"].to_list() == [int(x) for x in want["size"]]
            assert set(got["symbol"]) == set(want["symbol"])
            venues = {publisher(int(p)) for p in want["publisher_id"]}
            codes = {v.option_code if asset == "options" else v.equity_code for v in venues}
            assert set(got["exchange" if asset == "options" else "venue"]) == codes
            # through the whole engine: one enriched print (options) per accepted print
            if asset == "options":
                assert reader.read(ev.OPTIONS_ENRICHED).height == got.height
    else:
        assert reader.read(prints_stream).height == 0

    # quotes: every record with an ask; an empty book side (no ask) is rejected by name
    if schema in QUOTE_SCHEMAS:
        ts = np.array([int(x) for x in ref["ts_event"]], dtype=np.uint64)
        if schema in INTERVAL_SCHEMAS:
            recv = np.array([int(x) for x in ref["ts_recv"].astype("int64")], dtype=np.uint64)
            ts = np.where(ts == np.uint64(UNDEF_TS), recv, ts)
        ref = ref.assign(_ts=ts.astype(np.int64))
        has_ask = ref["ask_px_00"].notna()
        want = ref[has_ask].sort_values("_ts", kind="stable")
        got = reader.read(quotes_stream)
        assert got.height == len(want)
        if len(want):
            assert got["ts"].to_list() == list(want["_ts"])
            assert got["ask"].to_list() == list(want["ask_px_00"])
            assert got["bid"].to_list() == list(want["bid_px_00"].fillna(0.0))
            assert set(got["symbol"]) == set(want["symbol"])
        rejected = report.rejected.get(quotes_stream, {})
        assert rejected == ({"bad_price": int((~has_ask).sum())} if (~has_ask).any() else {})
    # the session is a real one: verify replays it to the same derived events
    checks, _ = verify_session(cfg, report.path)
    assert all(c.ok for c in checks), checks


@pytest.mark.parametrize("path", OTHER_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_files_without_prints_or_quotes_fail_clearly(path: Path, cfg: Config) -> None:
    with pytest.raises(ImportFailure) as err:
        import_files([path], cfg)
    assert str(path) in str(err.value)
    if path.parent.name == "LIVE":
        assert "GLBX.MDP3" in str(err.value)
    else:
        assert "no prints or quotes" in str(err.value)


def test_not_a_dbn_file_is_named(tmp_path: Path, cfg: Config) -> None:
    bad = tmp_path / "notes.dbn"
    bad.write_bytes(b"this is not DBN")
    with pytest.raises(ImportFailure, match=r"notes\.dbn: not a readable DBN file"):
        import_files([bad], cfg)
    with pytest.raises(ImportFailure, match=r"missing\.dbn\.zst: no such file"):
        import_files([tmp_path / "missing.dbn.zst"], cfg)


def test_statistics_bring_open_interest_into_packets_and_replay(cfg: Config) -> None:
    opra = DATA / "OPRA.PILLAR"
    stats = db.DBNStore.from_file(opra / "test_data.statistics.dbn.zst").to_ndarray()
    oi_rows = stats[stats["stat_type"] == int(d.StatType.OPEN_INTEREST.value)]
    want_oi = int(oi_rows["quantity"][-1])
    report = import_files(
        [opra / "test_data.tbbo.dbn.zst", opra / "test_data.statistics.dbn.zst"],
        cfg,
        name="aapl-day",
    )
    assert report.open_interest == 1
    packets = SessionReader(report.path).read(ev.FLOW_PACKETS)
    assert packets.height > 0
    assert set(packets["open_interest"].to_list()) == {want_oi}
    # replay finds the session by name and loads the same open interest
    found = resolve_session(cfg, "aapl-day")
    assert found == report.path
    assert with_session_compute_config(cfg, found).flow.open_interest_path.endswith(
        "open_interest.parquet"
    )
    checks, _ = verify_session(cfg, found)
    assert checks and all(c.ok for c in checks)


def _trades_file(tmp_path: Path, rows: list[tuple[int, int, int, int]], symbols: dict) -> Path:
    header = g.metadata("OPRA.PILLAR", d.Schema.TRADES, T0, T0 + 10**12, symbols)
    body = b"".join(bytes(g.trade(iid, ts, px, sz)) for iid, ts, px, sz in rows)
    return g.write(tmp_path / "trades.dbn.zst", header, body)


def test_bad_records_are_counted_and_rejected_by_name(tmp_path: Path, cfg: Config) -> None:
    good, bad_osi = "AAPL  250221C00250000", "AAPL250221C250"
    rows = [
        (7, T0 + 1, 240_000_000, 1),  # good
        (7, T0 + 2, int(d.UNDEF_PRICE), 3),  # undefined price -> NaN
        (7, T0 + 3, 250_000_000, 0),  # zero size
        (99, T0 + 4, 250_000_000, 2),  # instrument id nobody mapped
        (5, T0 + 5, 250_000_000, 2),  # mapped to a malformed OSI symbol
        (7, T0 + 6, 260_000_000, 5),  # good
    ]
    path = _trades_file(tmp_path, rows, {good: 7, bad_osi: 5})
    report = import_files([path], cfg)
    assert report.rejected[ev.OPTIONS_PRINTS] == {
        "bad_price": 1,
        "bad_size": 1,
        "unknown_symbol": 1,
        "invalid_osi": 1,
    }
    got = SessionReader(report.path).read(ev.OPTIONS_PRINTS)
    assert got["price"].to_list() == [0.24, 0.26]
    assert got["symbol"].to_list() == [good, good]


def test_definition_records_resolve_ids_without_mappings(tmp_path: Path, cfg: Config) -> None:
    osi = "AAPL  250221P00240000"
    trades = _trades_file(tmp_path, [(11, T0 + 5, 110_000_000, 4)], {})
    header = g.metadata("OPRA.PILLAR", d.Schema.DEFINITION, T0, T0 + 10**12, {})
    defs = g.write(tmp_path / "def.dbn.zst", header, bytes(g.definition(11, osi, T0 + 9)))
    report = import_files([trades, defs], cfg)
    got = SessionReader(report.path).read(ev.OPTIONS_PRINTS)
    assert got["symbol"].to_list() == [osi]
    assert got["strike"].to_list() == [240.0]


def test_files_merge_in_event_time_and_trades_are_not_counted_twice(
    tmp_path: Path, cfg: Config
) -> None:
    sym = {"AAPL  250221C00250000": 7}
    n = 50
    ids = np.array([7])
    th = g.metadata("OPRA.PILLAR", d.Schema.TRADES, T0, T0 + 10**12, sym)
    tb = g.tile([g.trade(7, T0, 240_000_000, 2)], n, start_ns=T0, step_ns=10**9, instrument_ids=ids)
    trades = g.write(tmp_path / "a.trades.dbn.zst", th, tb)
    qh = g.metadata("OPRA.PILLAR", d.Schema.TBBO, T0, T0 + 10**12, sym)
    qb = g.tile(
        [g.tbbo(7, T0, 240_000_000, 2, 230_000_000, 250_000_000)],
        n,
        start_ns=T0 + 500_000_000,
        step_ns=10**9,
        instrument_ids=ids,
    )
    quotes = g.write(tmp_path / "b.tbbo.dbn.zst", qh, qb)
    report = import_files([quotes, trades], cfg)
    reader = SessionReader(report.path)
    prints = reader.read(ev.OPTIONS_PRINTS)
    nbbo = reader.read(ev.OPTIONS_NBBO)
    assert prints.height == n  # from the trades file only
    assert nbbo.height == n  # the tbbo file's BBOs
    assert prints["ts"].is_sorted() and nbbo["ts"].is_sorted()
    assert report.rejected == {}
    assert reader.read(ev.OPTIONS_ENRICHED)["nbbo_id"].null_count() == 1  # only the first


def test_chunk_size_does_not_change_the_session(
    tmp_path: Path, cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    sym = {"AAPL  250221C00250000": 7, "AAPL  250221P00240000": 8}
    h = g.metadata("OPRA.PILLAR", d.Schema.TBBO, T0, T0 + 10**12, sym)
    body = g.tile(
        [g.tbbo(7, T0, 240_000_000, 2, 230_000_000, 250_000_000)],
        400,
        start_ns=T0,
        step_ns=37_000_000,
        instrument_ids=np.array([7, 8]),
    )
    path = g.write(tmp_path / "x.tbbo.dbn.zst", h, body)
    big = import_files([path], cfg)
    monkeypatch.setattr(dbn_import, "CHUNK_RECORDS", 7)
    small = import_files([path], cfg)
    for stream in (*ev.RAW_STREAMS, ev.OPTIONS_ENRICHED, ev.FLOW_PACKETS):
        a = SessionReader(big.path).read(stream)
        b = SessionReader(small.path).read(stream)
        assert a.height == b.height
        assert a.equals(b), stream
    assert pl.Series(SessionReader(big.path).read(ev.OPTIONS_PRINTS)["ts"]).is_sorted()


def test_an_instrument_id_reused_on_another_day_resolves_by_date() -> None:
    from datetime import date

    from islandflow_tui.engine.ingest.dbn_decode import Symbology

    sym = Symbology()
    sym.add_mappings(
        {
            "AAPL  250221C00250000": [
                {"start_date": date(2025, 2, 20), "end_date": date(2025, 2, 21), "symbol": "7"}
            ],
            "MSFT  250221C00400000": [
                {"start_date": date(2025, 2, 21), "end_date": date(2025, 2, 22), "symbol": "7"}
            ],
            "AAPL  250221P00240000": [
                {"start_date": date(2025, 2, 20), "end_date": date(2025, 2, 21), "symbol": "8"}
            ],
        }
    )
    day = 86_400 * 10**9
    ts = np.array([T0, T0 + day, T0, T0 + 2 * day, T0], dtype=np.int64)
    ids = np.array([7, 7, 8, 7, 9], dtype=np.uint32)
    assert sym.resolve(ids, ts).to_list() == [
        "AAPL  250221C00250000",
        "MSFT  250221C00400000",
        "AAPL  250221P00240000",
        None,  # no mapping on that day
        None,  # never mapped
    ]
    sym.add_symbols([9], ["AAPL  250221C00300000"])  # a definition record
    assert sym.resolve(ids, ts).to_list()[4] == "AAPL  250221C00300000"


def test_big_merge_steps_are_cut_without_changing_the_session(
    tmp_path: Path, cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    sym = {"AAPL  250221C00250000": 7, "AAPL  250221P00240000": 8}
    h = g.metadata("OPRA.PILLAR", d.Schema.TBBO, T0, T0 + 10**12, sym)
    body = g.tile(
        [g.tbbo(7, T0, 240_000_000, 2, 230_000_000, 250_000_000)],
        300,
        start_ns=T0,
        step_ns=3_000_000,  # same-ts prints and quotes, many per cut
        instrument_ids=np.array([7, 8]),
    )
    path = g.write(tmp_path / "y.tbbo.dbn.zst", h, body)
    whole = import_files([path], cfg)
    steps: list[int] = []
    original = dbn_import.bounded_steps

    def spy(it, max_rows=dbn_import.MAX_STEP_ROWS):
        for frames, wm in original(it, max_rows=25):
            steps.append(sum(f.height for f in frames.values()))
            yield frames, wm

    monkeypatch.setattr(dbn_import, "bounded_steps", spy)
    cut = import_files([path], cfg)
    assert len(steps) > 10 and max(steps) <= 26
    for stream in (*ev.RAW_STREAMS, ev.OPTIONS_ENRICHED, ev.FLOW_PACKETS):
        assert SessionReader(whole.path).read(stream).equals(SessionReader(cut.path).read(stream))


_PROPERTY_FILES: dict[str, Path] = {}


def _property_file(tmp: Path) -> Path:
    """Two files (trades + tbbo quotes) over 4 contracts, made once per session."""
    if "p" not in _PROPERTY_FILES:
        tmp.mkdir(parents=True, exist_ok=True)
        sym = {
            "AAPL  250221C00250000": 7,
            "AAPL  250221P00240000": 8,
            "AAPL  250228C00250000": 9,
            "AAPL  250228P00240000": 10,
        }
        ids = np.array(list(sym.values()))
        th = g.metadata("OPRA.PILLAR", d.Schema.TRADES, T0, T0 + 10**12, sym)
        tb = g.tile(
            [g.trade(7, T0, 240_000_000, 20)],
            240,
            start_ns=T0,
            step_ns=41_000_000,
            instrument_ids=ids,
        )
        g.write(tmp / "p.trades.dbn.zst", th, tb)
        qh = g.metadata("OPRA.PILLAR", d.Schema.TBBO, T0, T0 + 10**12, sym)
        qb = g.tile(
            [g.tbbo(7, T0, 240_000_000, 2, 230_000_000, 250_000_000)],
            300,
            start_ns=T0 - 5_000_000,
            step_ns=33_000_000,
            instrument_ids=ids,
        )
        g.write(tmp / "p.tbbo.dbn.zst", qh, qb)
        _PROPERTY_FILES["p"] = tmp
    return _PROPERTY_FILES["p"]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunk=st.integers(min_value=1, max_value=400),
    step_rows=st.integers(min_value=1, max_value=500),
    order=st.booleans(),
)
def test_import_output_does_not_depend_on_chunking(
    chunk: int, step_rows: int, order: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = _property_file(tmp_path_factory.getbasetemp() / "dbn-property")
    files = [folder / "p.trades.dbn.zst", folder / "p.tbbo.dbn.zst"]
    base = Config()
    base.paths.data_dir = str(folder / "ref")
    if "ref" not in _PROPERTY_FILES:
        _PROPERTY_FILES["ref"] = import_files(files, base).path
    ref = _PROPERTY_FILES["ref"]
    assert SessionReader(ref).read(ev.FLOW_PACKETS).height > 0
    cfg = Config()
    cfg.paths.data_dir = str(folder / "runs")
    original = dbn_import.bounded_steps
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dbn_import, "CHUNK_RECORDS", chunk)
        mp.setattr(
            dbn_import, "bounded_steps", lambda it, max_rows=0: original(it, max_rows=step_rows)
        )
        got = import_files(files if order else files[::-1], cfg).path
    for stream in (*ev.RAW_STREAMS, ev.OPTIONS_ENRICHED, ev.FLOW_PACKETS, ev.ALERTS):
        assert SessionReader(ref).read(stream).equals(SessionReader(got).read(stream)), stream


def test_tcbbo_record_gives_the_print_and_the_consolidated_quote(
    tmp_path: Path, cfg: Config
) -> None:
    rec = d.CMBP1Msg(
        rtype=d.RType.TCBBO,
        publisher_id=30,  # OPRA consolidated
        instrument_id=7,
        ts_event=T0 + 5,
        price=250_000_000,
        size=12,
        action=d.Action.TRADE,
        side=d.Side.NONE,
        ts_recv=T0 + 9,
        levels=d.ConsolidatedBidAskPair(
            bid_px=240_000_000, ask_px=260_000_000, bid_sz=40, ask_sz=55, bid_pb=23, ask_pb=26
        ),
    )
    header = g.metadata("OPRA.PILLAR", d.Schema.TCBBO, T0, T0 + 10**12, {OSI_C: 7})
    path = g.write(tmp_path / "t.tcbbo.dbn.zst", header, bytes(rec))
    ref = db.DBNStore.from_file(path).to_ndarray()
    assert int(ref["rtype"][0]) == int(d.RType.TCBBO)
    report = import_files([path], cfg)
    reader = SessionReader(report.path)
    p = reader.read(ev.OPTIONS_PRINTS).row(0, named=True)
    q = reader.read(ev.OPTIONS_NBBO).row(0, named=True)
    assert (p["ts"], p["price"], p["size"], p["symbol"]) == (T0 + 5, 0.25, 12, OSI_C)
    assert (q["ts"], q["bid"], q["ask"], q["bid_size"], q["ask_size"]) == (
        T0 + 5,
        0.24,
        0.26,
        40,
        55,
    )
    enriched = reader.read(ev.OPTIONS_ENRICHED).row(0, named=True)
    assert enriched["placement"] == "MID" and enriched["nbbo_id"] == q["id"]


OSI_C = "AAPL  250221C00250000"


def test_a_session_spanning_years_verifies_and_replays_across_the_gap(cfg: Config) -> None:
    """XNAS.ITCH (2020) and OPRA.PILLAR (2025) sample files in one session: verify and
    a max-speed replay skip the empty years in one step instead of one per second."""
    from islandflow_tui.engine.replay import ReplaySource

    files = [DATA / "XNAS.ITCH" / "test_data.trades.dbn.zst"]
    files += [DATA / "OPRA.PILLAR" / "test_data.tbbo.dbn.zst"]
    report = import_files(files, cfg)
    reader = SessionReader(report.path)
    assert reader.read(ev.EQUITIES_PRINTS).height > 0 and reader.read(ev.OPTIONS_PRINTS).height > 0
    source = ReplaySource(reader)
    assert source.last_ts - source.first_ts > 4 * 365 * 86_400 * ev.NS_PER_S
    steps, pos = 0, source.first_ts
    while pos <= source.last_ts:
        pos = source.step_end(pos, ev.NS_PER_S, source.last_ts + 1)
        steps += 1
    assert steps < 20  # a handful of windows, not 150 million
    checks, _ = verify_session(with_session_compute_config(cfg, report.path), report.path)
    assert checks and all(c.ok for c in checks)


def test_raw_only_import_records_the_raw_streams_and_nothing_derived(cfg: Config) -> None:
    """``--raw-only``: the validated, sequenced raw streams, no derived stream (it
    crashed on the engine's per-batch alert mark before, with no test to say so)."""
    path = DATA / "OPRA.PILLAR" / "test_data.tbbo.dbn.zst"
    full = import_files([path], cfg, name="full")
    raw = import_files([path], cfg, name="raw", raw_only=True)
    assert raw.accepted == full.accepted and raw.accepted[ev.OPTIONS_PRINTS] > 0
    a, b = SessionReader(full.path), SessionReader(raw.path)
    for stream in ev.RAW_STREAMS:
        assert b.read(stream).equals(a.read(stream)), stream
    assert a.read(ev.OPTIONS_ENRICHED).height == raw.accepted[ev.OPTIONS_PRINTS]
    assert b.read(ev.OPTIONS_ENRICHED).height == 0
