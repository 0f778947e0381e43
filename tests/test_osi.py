from datetime import date

import polars as pl
import pytest

from islandflow_tui.engine.osi import OsiError, format_osi, osi_columns, parse_osi


@pytest.mark.parametrize(
    ("symbol", "root", "expiry", "right", "strike"),
    [
        ("SPY   251125C00580000", "SPY", date(2025, 11, 25), "C", 580.0),
        ("AAPL  250221C00250000", "AAPL", date(2025, 2, 21), "C", 250.0),
        ("BRK.B 260116P00450500", "BRK.B", date(2026, 1, 16), "P", 450.5),
        ("GOOGL 271217P00002500", "GOOGL", date(2027, 12, 17), "P", 2.5),
        ("SPXW  251125C06000000", "SPXW", date(2025, 11, 25), "C", 6000.0),
        ("X     251128C00031000", "X", date(2025, 11, 28), "C", 31.0),
    ],
)
def test_parse_good_symbols(symbol, root, expiry, right, strike):
    c = parse_osi(symbol)
    assert (c.root, c.expiry, c.right, c.strike) == (root, expiry, right, strike)
    assert c.symbol == symbol
    row = pl.DataFrame({"symbol": [symbol]}).select(osi_columns(pl.col("symbol"))).row(0)
    assert row == (root, expiry, right, strike)


@pytest.mark.parametrize(
    "symbol",
    [
        "SPY251125C00580000",  # not padded: 18 chars
        "SPY   251125X00580000",  # right must be C/P
        "SPY   251325C00580000",  # month 13
        "SPY   250230C00580000",  # Feb 30
        "spy   251125C00580000",  # lower case root
        "SPY   251125C0058000A",  # non-digit strike
        "       251125C00580000",  # empty root
        "SPY   251125C005800000",  # 22 chars
        "",
    ],
)
def test_bad_symbols_rejected_scalar_and_vectorised(symbol):
    with pytest.raises(OsiError):
        parse_osi(symbol)
    row = pl.DataFrame({"symbol": [symbol]}).select(osi_columns(pl.col("symbol"))).row(0)
    assert row[0] is None or row[1] is None


def test_format_rejects_impossible_contract():
    with pytest.raises(OsiError):
        format_osi("TOOLONGX", date(2025, 1, 17), "C", 10)
    with pytest.raises(OsiError):
        format_osi("SPY", date(2025, 1, 17), "X", 10)
