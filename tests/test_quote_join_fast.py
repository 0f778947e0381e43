"""The numpy as-of join and last-quote carry (compute/quote_join.py) against polars.

``_asof_int`` / ``_last_per_int_key`` replace ``join_asof(by=key)`` and
``unique(keep="last").sort(key)`` on the engine's hot path; they must give the same
frame (values, nulls, dtypes, column order) for any keys, ties and missing quotes.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from islandflow_tui.engine.compute.quote_join import _asof_int, _last_per_int_key


def _frames(seed: int, nq: int, npr: int, keys: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    right = pl.DataFrame(
        {
            "quote_ts": np.sort(rng.integers(0, 30, nq)),  # ties on ts are common
            "quote_seq": np.arange(nq),
            "nbbo_id": np.arange(nq) * 10,
            "cid": rng.integers(0, keys, nq).astype(np.uint32),
            "bid": rng.random(nq),
            "ask": rng.random(nq),
            "bid_size": rng.integers(0, 9, nq).astype(np.int32),
        }
    )
    left = pl.DataFrame(
        {
            "ts": np.sort(rng.integers(0, 35, npr)),
            "id": np.arange(npr),
            "cid": rng.integers(0, keys + 1, npr).astype(np.uint32),  # a key never quoted
            "price": rng.random(npr),
        }
    )
    return left, right


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.integers(1, 60), st.integers(1, 6))
def test_asof_matches_polars(seed: int, nq: int, npr: int, keys: int) -> None:
    left, right = _frames(seed, nq, npr, keys)
    want = left.join_asof(
        right,
        left_on="ts",
        right_on="quote_ts",
        by="cid",
        strategy="backward",
        check_sortedness=False,
    )
    got = _asof_int(left, right, "cid")
    assert got is not None
    assert_frame_equal(got, want)
    # the values under nulls too (bench/flow_digest.py hashes the raw buffers)
    for name in ("bid", "bid_size", "nbbo_id"):
        assert got[name].fill_null(0).equals(want[name].fill_null(0))
    last = right.unique(subset="cid", keep="last", maintain_order=False).sort("cid")
    assert_frame_equal(_last_per_int_key(right, "cid"), last)


def test_categorical_key_and_fallbacks() -> None:
    quotes = pl.DataFrame(
        {"quote_ts": [1, 2, 2, 5], "quote_seq": [0, 1, 2, 3], "symbol": ["A", "B", "B", "A"]}
    ).with_columns(pl.col("symbol").cast(pl.Categorical()))
    prints = pl.DataFrame({"ts": [0, 2, 3, 6], "symbol": ["A", "B", "C", "A"]}).with_columns(
        pl.col("symbol").cast(pl.Categorical())
    )
    got = _asof_int(prints, quotes, "symbol")
    assert got is not None
    assert got["quote_seq"].to_list() == [None, 2, None, 3]  # ties: the highest seq
    # a string key or an empty side: None, and the caller runs polars
    as_text = prints.with_columns(pl.col("symbol").cast(pl.String))
    assert _asof_int(as_text, quotes, "symbol") is None
    assert _asof_int(prints, quotes.head(0), "symbol") is None
