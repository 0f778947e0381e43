"""Ingest validation: every raw batch from any adapter passes here before the engine.

Bad input is rejected with a named reason and counted; nothing else in the batch
is lost.  Row checks are vectorised (one boolean expression per reason); schema
problems (an unknown or missing field, a value of the wrong type) reject the rows
of that one batch, because a frame that breaks its stream's contract cannot be
trusted column by column.

Reasons (the first that applies wins, in this order):

=================  ==========================================================
``unknown_field``   the frame has a column the stream's schema does not know
``missing_field``   a column the stream needs is absent
``bad_type``        a column cannot be read as its schema type
``bad_ts``          ts is null or not positive
``late``            ts is older than the feed's watermark (beyond allowed lateness)
``unknown_symbol``  symbol is null: the adapter could not resolve the vendor's
                    instrument id (e.g. a DBN id without mapping or definition)
``invalid_osi``     option symbol is not a valid 21-character OSI symbol
``bad_price``       price (or bid/ask) is null, NaN, infinite or negative; trade
                    prices and asks must also be > 0
``bad_size``        trade size null or <= 0; quote sizes null or < 0
=================  ==========================================================
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from islandflow_tui.engine import events as ev
from islandflow_tui.engine.osi import osi_columns

REASONS = (
    "unknown_field",
    "missing_field",
    "bad_type",
    "bad_ts",
    "late",
    "unknown_symbol",
    "invalid_osi",
    "bad_price",
    "bad_size",
)

_OPTION_STREAMS = (ev.OPTIONS_PRINTS, ev.OPTIONS_NBBO)
_PRINT_STREAMS = (ev.OPTIONS_PRINTS, ev.EQUITIES_PRINTS)


@dataclass(slots=True)
class Verdict:
    """Accepted rows (with OSI columns parsed) and rejection counts by reason."""

    accepted: pl.DataFrame
    rejected: dict[str, int] = field(default_factory=dict)
    detail: dict[str, str] = field(default_factory=dict)  # reason -> one example, for logs


def _bad_number(col: str, *, strictly_positive: bool) -> pl.Expr:
    c = pl.col(col)
    bad = c.is_null() | c.is_nan() | c.is_infinite() | (c < 0)
    if strictly_positive:
        bad = bad | (c == 0)
    return bad


def _row_reason(stream: str, watermark: int) -> pl.Expr:
    """One expression giving each row's rejection reason, or null if it is good."""
    checks = _row_checks(stream, watermark)
    expr = pl.when(checks[0][1]).then(pl.lit(checks[0][0]))
    for reason, cond in checks[1:]:
        expr = expr.when(cond).then(pl.lit(reason))
    return expr.otherwise(pl.lit(None, pl.String)).alias("_reject")


@functools.cache
def _checks(stream: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """(reason, ((column, kind), ...)) per check but ``late``, in priority order: the
    one table both the row checks (:func:`_row_checks`) and the clean-batch test
    (:func:`_surely_good`) are built from.  A column fails its kind when it is null
    (``set``), or null or not > 0 / not >= 0 (``pos`` / ``nonneg``, integers), or
    that or NaN or infinite (``pos_real`` / ``nonneg_real``)."""
    checks: list[tuple[str, tuple[tuple[str, str], ...]]] = [
        ("bad_ts", (("ts", "pos"),)),
        ("unknown_symbol", (("symbol", "set"),)),
    ]
    if stream in _OPTION_STREAMS:
        checks.append(("invalid_osi", (("cid", "set"),)))
    if stream in _PRINT_STREAMS:
        checks.append(("bad_price", (("price", "pos_real"),)))
        checks.append(("bad_size", (("size", "pos"),)))
    else:
        checks.append(("bad_price", (("bid", "nonneg_real"), ("ask", "pos_real"))))
        checks.append(("bad_size", (("bid_size", "nonneg"), ("ask_size", "nonneg"))))
    return tuple(checks)


def _fails(col: str, kind: str) -> pl.Expr:
    c = pl.col(col)
    if kind == "set":
        return c.is_null()
    if kind in ("pos_real", "nonneg_real"):
        return _bad_number(col, strictly_positive=kind == "pos_real")
    return c.is_null() | ((c <= 0) if kind == "pos" else (c < 0))


def _surely_good(stream: str, frame: pl.DataFrame) -> bool:
    """True when no row can fail a check other than ``late``, from null counts (column
    metadata) and one numpy min (and max, for floats) per number column: ~5x cheaper
    than evaluating :func:`_any_bad_but_late` on a firehose batch.  False only means
    "evaluate the checks": it never hides a bad row.

    Why min/max suffice: a float is good iff ``0 <= x < inf`` (``0 < x`` for the
    strictly positive ones); numpy's min propagates NaN, and NaN fails every
    comparison, so one NaN makes the batch take the exact path.
    """
    if frame.height == 0:
        return True
    for name, kind in (c for _, cols in _checks(stream) for c in cols):
        col = frame.get_column(name)
        if col.null_count():
            return False
        if kind == "set":
            continue
        x = col.to_numpy()
        lo = x.min()
        if not (lo > 0 if kind.startswith("pos") else lo >= 0):
            return False
        if x.dtype.kind == "f" and not x.max() < np.inf:
            return False
    return True


@functools.cache
def _any_bad_but_late(stream: str) -> pl.Expr:
    """True if any row fails a check other than ``late`` (a null check counts as
    passed, as in :func:`_row_reason`): the common all-good batch skips building
    reason strings.  Built once per stream (building the expressions cost more than
    evaluating them on a firehose batch); ``late`` is a ts minimum, tested apart."""
    return (
        pl.any_horizontal([c for r, c in _row_checks(stream, 0) if r != "late"])
        .fill_null(False)
        .any()
    )


def _row_checks(stream: str, watermark: int) -> list[tuple[str, pl.Expr]]:
    """(reason, condition) per check, in priority order (``late`` right after
    ``bad_ts``: a null ts is caught by bad_ts)."""
    out: list[tuple[str, pl.Expr]] = []
    for reason, cols in _checks(stream):
        fails = [_fails(c, kind) for c, kind in cols]
        out.append((reason, functools.reduce(operator.or_, fails)))
        if reason == "bad_ts":
            out.append(("late", pl.col("ts") < watermark))
    return out


class OsiCache:
    """Parsed OSI columns per distinct symbol, plus an interned contract id ``cid``.

    A feed repeats a few thousand contracts millions of times, so each symbol is
    parsed once and joined back (≈4x faster than parsing every row).  ``cid``
    (UInt32, first-seen order) is an engine-internal join key: joins and group-bys
    on it run ≈3x faster than on the 21-byte string.  It never leaves the engine
    and no output depends on its value.
    """

    def __init__(self) -> None:
        self._parsed = pl.DataFrame(
            schema={
                "symbol": pl.String,
                "cid": pl.UInt32,
                "root": pl.String,
                "expiry": pl.Date,
                "right": pl.String,
                "strike": pl.Float64,
            }
        )
        self._lookup: tuple[pa.Array, np.ndarray] | None = None  # symbols (Arrow), cids
        #: root, expiry, right, strike in cid order when cid is the row number (always,
        #: unless a table was loaded that breaks it): attach gathers instead of joining
        self._by_cid: pl.DataFrame | None = None

    def table(self) -> pl.DataFrame:
        """The symbol table (checkpointed: operator state is keyed by cid)."""
        return self._parsed

    def load(self, table: pl.DataFrame) -> None:
        self._parsed = table
        self._lookup = None
        self._by_cid = None

    def _cids(self, symbols: pl.Series) -> pl.Series:
        """``cid`` of each symbol (null where not cached) by Arrow's hashed ``index_in``
        against the cached symbols: ~25 % cheaper than a polars left join for the
        quote stream, which needs nothing else from the table."""
        if self._lookup is None:
            self._lookup = (
                self._parsed.get_column("symbol").to_arrow(),
                self._parsed.get_column("cid").to_numpy(),
            )
        values, cids = self._lookup
        idx = pc.index_in(symbols.to_arrow(), value_set=values)
        if idx.null_count:
            mask = pc.is_null(idx).to_numpy(zero_copy_only=False)
            at = pc.fill_null(idx, 0).to_numpy()
            out = np.where(mask, 0, cids[at] if len(cids) else 0).astype(np.uint32)
            return pl.Series("cid", pa.array(out, mask=mask), dtype=pl.UInt32)
        return pl.Series("cid", cids[idx.to_numpy()], dtype=pl.UInt32)

    def attach(self, frame: pl.DataFrame, *, contract_columns: bool = True) -> pl.DataFrame:
        """``frame`` with cid, and root, expiry, right, strike if ``contract_columns``
        (all null where the symbol is invalid).

        Only valid symbols are cached, so a feed spewing garbage cannot grow the cache;
        the valid universe (every listed contract) bounds it.
        """
        # look up first: a symbol left without a cid is new (or invalid), so the
        # distinct symbols are hashed only in the rare batch that brings new ones (a
        # separate unique + anti join on every batch cost as much as the lookup itself)
        symbols = frame.get_column("symbol")
        cid = self._cids(symbols)
        if cid.null_count() and self._learn(symbols.filter(cid.is_null())):
            cid = self._cids(symbols)
        out = frame.hstack([cid])
        if contract_columns:
            by_cid = self._contracts_by_cid()
            if by_cid is not None:
                # cid is the table's row number: a gather (a null cid gathers nulls),
                # ~3x cheaper than the hashed left join below on a firehose batch
                rows = by_cid[cid] if not cid.null_count() else by_cid.gather(cid)
                out = out.hstack(rows.get_columns())
            else:
                # joining on the int cid is ~30 % cheaper than on the symbol string
                contracts = self._parsed.drop("symbol")
                out = out.join(contracts, on="cid", how="left", maintain_order="left")
        return out

    def _contracts_by_cid(self) -> pl.DataFrame | None:
        """The contract columns indexed by cid, or None if cid is not the row number."""
        if self._by_cid is None:
            cid = self._parsed.get_column("cid").to_numpy()
            if not np.array_equal(cid, np.arange(len(cid))):
                return None
            # one chunk: a take from the table as learned (one chunk per batch that
            # brought new contracts) costs ~20x more
            self._by_cid = self._parsed.drop("symbol", "cid").rechunk()
        return self._by_cid

    def _learn(self, unknown: pl.Series) -> bool:
        """Parse and cache the valid ones among ``unknown`` symbols; True if any was."""
        parsed = (
            unknown.unique()
            .to_frame("symbol")
            .sort("symbol")
            .with_columns(osi_columns(pl.col("symbol")))
            .filter(pl.col("root").is_not_null() & pl.col("expiry").is_not_null())
        )
        if not parsed.height:  # only invalid symbols (never cached)
            return False
        start = self._parsed.height
        parsed = parsed.with_columns(
            pl.int_range(start, start + parsed.height, dtype=pl.UInt32).alias("cid")
        ).select(self._parsed.columns)
        self._parsed = pl.concat([self._parsed, parsed], how="vertical")
        self._lookup = None
        self._by_cid = None
        return True


def validate(
    stream: str, frame: pl.DataFrame, watermark: int, osi: OsiCache | None = None
) -> Verdict:
    """Check one adapter frame for ``stream``; ``watermark`` is the engine's current one."""
    schema = ev.ingest_polars_schema(stream)
    cols = set(frame.columns)
    unknown = sorted(cols - set(schema.names()))
    if unknown:
        return _reject_all(stream, frame, "unknown_field", f"unknown field(s) {unknown}")
    missing = [name for name in schema.names() if name not in cols]
    if missing:
        return _reject_all(stream, frame, "missing_field", f"missing field(s) {missing}")
    try:
        if list(frame.schema.items()) == list(schema.items()):
            typed = frame  # already the stream's columns, in order, with its types
        else:
            typed = frame.select(
                [
                    pl.col(name).cast(dtype, strict=True)
                    if frame.schema[name] != dtype
                    else pl.col(name)
                    for name, dtype in schema.items()
                ]
            )
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _reject_all(stream, frame, "bad_type", first)

    if stream in _OPTION_STREAMS:
        typed = (osi or OsiCache()).attach(typed, contract_columns=stream == ev.OPTIONS_PRINTS)
    ts = typed.get_column("ts")
    # a null ts is caught by bad_ts, which comes before late
    late = typed.height > 0 and ts.min() is not None and ts.min() < watermark  # type: ignore[operator]
    if not late and (
        _surely_good(stream, typed) or not typed.select(_any_bad_but_late(stream)).item()
    ):
        return Verdict(typed)
    checked = typed.with_columns(_row_reason(stream, watermark))
    reasons = checked.get_column("_reject")
    if reasons.null_count() == checked.height:
        return Verdict(checked.drop("_reject"))
    bad = checked.filter(pl.col("_reject").is_not_null())
    counts = bad.group_by("_reject").len().sort("_reject")
    rejected = dict(zip(counts["_reject"].to_list(), counts["len"].to_list(), strict=True))
    detail: dict[str, str] = {}
    for reason in rejected:
        row = bad.filter(pl.col("_reject") == reason).row(0, named=True)
        detail[reason] = _describe_row(stream, reason, row)
    accepted = checked.filter(pl.col("_reject").is_null()).drop("_reject")
    return Verdict(accepted, rejected, detail)


def _describe_row(stream: str, reason: str, row: dict[str, object]) -> str:
    keys = {
        "bad_ts": ("ts",),
        "late": ("ts",),
        "unknown_symbol": ("symbol",),
        "invalid_osi": ("symbol",),
        "bad_price": ("price",) if stream in _PRINT_STREAMS else ("bid", "ask"),
        "bad_size": ("size",) if stream in _PRINT_STREAMS else ("bid_size", "ask_size"),
    }[reason]
    shown = ", ".join(f"{k}={row.get(k)!r}" for k in keys)
    symbol = row.get("symbol")
    return f"{stream} {symbol!s}: {shown}" if symbol is not None else f"{stream}: {shown}"


def _reject_all(stream: str, frame: pl.DataFrame, reason: str, detail: str) -> Verdict:
    empty = pl.DataFrame(schema=_accepted_schema(stream))
    return Verdict(empty, {reason: max(frame.height, 1)}, {reason: f"{stream}: {detail}"})


def _accepted_schema(stream: str) -> pl.Schema:
    """Ingest columns plus, for options, cid and the OSI columns (seq/id come later)."""
    full = ev.polars_schema(stream)
    names = ev.ingest_fields(stream)
    schema = {n: full[n] for n in names}
    if stream in _OPTION_STREAMS:
        schema["cid"] = pl.UInt32
    if stream == ev.OPTIONS_PRINTS:
        schema |= {n: full[n] for n in ("root", "expiry", "right", "strike")}
    return pl.Schema(schema)
