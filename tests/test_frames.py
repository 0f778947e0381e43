"""engine/frames.py: each helper gives what the polars call it replaces gives."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from islandflow_tui.engine.frames import filled, pick, put, renamed, valid, without

DF = pl.DataFrame(
    {
        "a": [1, None, 3],
        "b": [1.5, None, math.nan],
        "c": ["x", "y", None],
        "d": [True, None, False],
    }
)


def test_pick_put_without_renamed_match_polars():
    assert pick(DF, ["c", "a"]).equals(DF.select(["c", "a"]))
    new, old = pl.Series("e", [7, 8, 9]), pl.Series("b", [0.0, 1.0, 2.0])
    assert put(DF, new, old).equals(DF.with_columns(new, old))
    assert put(DF, new, old).columns == ["a", "b", "c", "d", "e"]
    assert without(DF, "b", "d").equals(DF.drop("b", "d"))
    assert renamed(DF, {"a": "z", "c": "y"}).equals(DF.rename({"a": "z", "c": "y"}))
    assert DF.columns == ["a", "b", "c", "d"]  # the input frame is left alone
    assert put(DF.clear().select([]), pl.Series("x", [1, 2])).height == 2


def test_errors_like_polars():
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        pick(DF, ["nope"])
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        without(DF, "nope")
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        renamed(DF, {"nope": "x"})
    with pytest.raises(pl.exceptions.ShapeError):
        put(DF, pl.Series("e", [1, 2]))


@pytest.mark.parametrize(("col", "value"), [("a", 0), ("b", np.nan), ("d", False)])
def test_filled_and_valid_match_polars(col, value):
    s = DF.get_column(col)
    got, want = filled(s, value), s.fill_null(value).to_numpy()
    assert got.dtype == want.dtype
    assert got.tobytes() == want.tobytes()
    assert (valid(s) == s.is_not_null().to_numpy()).all()
    full = s.drop_nulls()
    assert filled(full, value).tobytes() == full.to_numpy().tobytes()
    assert valid(full).all()
