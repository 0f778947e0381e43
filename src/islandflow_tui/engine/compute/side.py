"""Trade side of each option print: who initiated it, buyer or seller.

The NBBO placement (AA/A/MID/B/BB) says where a print traded; it does not say who
crossed the spread, and in options it is often wrong about it (sophisticated
customers work limit orders; Grauer, Schuster & Uhrig-Homburg 2023).  So the side
comes from a configurable *stack* of published rules (``side.stack``): each print
traverses the stack until a rule can sign it, and ``side_rule`` records which one
did.  ``P`` is the print price, ``B``/``A`` the NBBO bid/ask in force, ``M`` their
midpoint, ``Bs``/``As`` the quoted sizes and ``S`` the print size.  Quote-based rules
apply only when the NBBO is usable (placement AA, A, MID, B or BB: fresh, present,
not crossed); ``tol`` is ``nbbo.at_tolerance`` (float noise).

=================  ===========================================================
``quote``           Harris (1989): ``P > M`` buy, ``P < M`` sell, at ``M``: none
``tick``            previous trade of the contract at a different price:
                    ``P`` above it buy (uptick / zero-uptick), below sell
``reverse_tick``    Hasbrouck (1988): next trade at a different price: ``P``
                    above it buy, below sell; looks ahead at most
                    ``side.reverse_tick_horizon_ms`` (every stream waits that long)
``lee_ready``       Lee & Ready (1991): quote rule, trades at ``M`` (or without a
                    usable quote) by the tick rule
``emo``             Ellis, Michaely & O'Hara (2000): ``P = A`` buy, ``P = B`` sell,
                    everything else (inside, outside, locked) by the tick rule
``clnv``            Chakrabarty, Li, Nguyen & Van Ness (2007): ``P`` in
                    ``(0.3B + 0.7A, A]`` buy, in ``[B, 0.7B + 0.3A)`` sell, the
                    middle 40 % and outside the quotes by the tick rule
``trade_size``      Grauer et al. (2023): ``S = Bs != As`` buy, ``S = As != Bs``
                    sell (a customer limit order filled whole on the quote)
``depth``           Grauer et al. (2023): at ``M`` only, ``As > Bs`` buy,
                    ``As < Bs`` sell
=================  ===========================================================

``side_rule`` is the rule name (``lee_ready.quote`` / ``lee_ready.tick`` etc. for
the hybrids), ``none`` when no rule in the stack could sign the print, or
``excluded.<why>`` for prints that are never signed: multi-leg / stock-option
(complex order prices belong to the package, not to one leg's NBBO), cancels, late
and out-of-sequence reports (their NBBO and neighbours are not the ones they traded
against).  Excluded prints also never move the tick state.

The default stack ``trade_size, quote, depth, tick`` is Grauer et al.'s best stack
with the tick rule in place of the reverse tick rule, so that the tape is not
delayed; put ``reverse_tick`` in the stack to get theirs exactly.

Batch-size invariance: the tick state (last price and last direction per contract)
is carried between batches; with ``reverse_tick`` in the stack, prints are held until
the watermark passes ``ts + horizon`` and the operator hands the downstream operators
that lower watermark.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl

from islandflow_tui.config import SideConfig
from islandflow_tui.engine import events as ev
from islandflow_tui.engine.compute.baselines import stable_argsort
from islandflow_tui.engine.compute.codes import put_code, signed
from islandflow_tui.engine.frames import pick, put

PLACED: Final = ("AA", "A", "MID", "B", "BB")
_EPS: Final = 1e-9  # price equality for the tick rules (prices are exact cents)
_EXCLUDED: Final = (
    (ev.Cond.MULTI_LEG, "excluded.multi_leg"),
    (ev.Cond.STOCK_OPTION, "excluded.stock_option"),
    (ev.Cond.CANCEL, "excluded.cancel"),
    (ev.Cond.LATE, "excluded.late"),
    (ev.Cond.OUT_OF_SEQ, "excluded.out_of_seq"),
)
EXCLUDED_MASK: Final = int(sum(int(bit) for bit, _ in _EXCLUDED))
COMPLEX_MASK: Final = int(ev.Cond.MULTI_LEG | ev.Cond.STOCK_OPTION)


class TradeSide:
    """Stateful operator: joined prints -> the same rows plus side, side_rule, side_code."""

    def __init__(self, cfg: SideConfig, tol: float) -> None:
        self.stack = list(cfg.stack)
        self.tol = tol
        self.horizon_ns = (
            cfg.reverse_tick_horizon_ms * ev.NS_PER_MS if "reverse_tick" in self.stack else 0
        )
        self._uses_tick = any(r in self.stack for r in ("tick", "lee_ready", "emo", "clnv"))
        # only the quote-based signs some rule of the stack reads are computed
        self._quote_parts = frozenset(
            part for name in self.stack for part, _ in _PARTS[name] if part in QUOTE_PARTS
        )
        self._last_price = np.full(0, np.nan)  # per cid: last eligible trade price
        self._last_dir = np.zeros(0, dtype=np.int8)  # per cid: last non-zero tick direction
        self._pending: list[pl.DataFrame] = []

    # -- state ------------------------------------------------------------------
    def state(self) -> dict[str, pl.DataFrame]:
        known = np.flatnonzero(~np.isnan(self._last_price))
        tick = pl.DataFrame(
            {
                "cid": known.astype(np.uint32),
                "last_price": self._last_price[known],
                "last_dir": self._last_dir[known],
            }
        )
        pending = pl.concat(self._pending) if self._pending else pl.DataFrame()
        return {"tick": tick, "pending": pending}

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        tick = state["tick"]
        size = int(tick["cid"].max()) + 1 if tick.height else 0  # type: ignore[arg-type]
        self._last_price = np.full(size, np.nan)
        self._last_dir = np.zeros(size, dtype=np.int8)
        cid = tick["cid"].to_numpy().astype(np.int64)
        self._last_price[cid] = tick["last_price"].to_numpy()
        self._last_dir[cid] = tick["last_dir"].to_numpy()
        pending = state.get("pending")
        self._pending = [pending] if pending is not None and pending.height else []

    # -- processing ---------------------------------------------------------------
    def process(
        self, joined: pl.DataFrame | None, watermark: int
    ) -> tuple[pl.DataFrame | None, int]:
        """Sign every held print with ``ts < watermark - horizon``.

        Returns (signed rows or None, the watermark downstream operators may use).
        """
        cutoff = watermark - self.horizon_ns
        if joined is not None and joined.height:
            self._pending.append(joined)
        if not self._pending:
            return None, cutoff
        frame = self._pending[0] if len(self._pending) == 1 else pl.concat(self._pending)
        self._pending.clear()
        if self.horizon_ns == 0:
            released, held = frame, None
        else:
            ts = frame.get_column("ts")
            n_rel = int((ts < cutoff).sum())
            released = frame.head(n_rel)
            held = frame.slice(n_rel)
            if held.height:
                self._pending.append(held)
            if released.height == 0:
                return None, cutoff
        return self._sign(released, held), cutoff

    # -- rules --------------------------------------------------------------------
    def _grow(self, n: int) -> None:
        if n > len(self._last_price):
            extra = n - len(self._last_price)
            self._last_price = np.concatenate([self._last_price, np.full(extra, np.nan)])
            self._last_dir = np.concatenate([self._last_dir, np.zeros(extra, dtype=np.int8)])

    def _tick(self, cid: np.ndarray, price: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """Tick direction (+1/-1/0) of each eligible row, in row order; moves the state."""
        out = np.zeros(len(cid), dtype=np.int8)
        rows = np.flatnonzero(eligible)
        if not len(rows):
            return out
        c = cid[rows]
        self._grow(int(c.max()) + 1)
        order = stable_argsort(c)
        cs, ps = c[order], price[rows][order]
        n = len(cs)
        start = np.ones(n, dtype=bool)
        start[1:] = cs[1:] != cs[:-1]
        prev = np.empty(n)
        prev[1:] = ps[:-1]
        prev[start] = self._last_price[cs[start]]
        diff = ps - prev
        step = signed(diff > _EPS, diff < -_EPS)
        step[start] = np.where(step[start] != 0, step[start], self._last_dir[cs[start]])
        # carry the last non-zero step forward inside each contract (zero ticks)
        idx = np.where((step != 0) | start, np.arange(n), 0)
        np.maximum.accumulate(idx, out=idx)
        direction = step[idx]
        end = np.ones(n, dtype=bool)
        end[:-1] = start[1:]
        self._last_price[cs[end]] = ps[end]
        self._last_dir[cs[end]] = direction[end]
        out[rows[order]] = direction
        return out

    def _reverse_tick(
        self, cid: np.ndarray, price: np.ndarray, ts: np.ndarray, eligible: np.ndarray, n_out: int
    ) -> np.ndarray:
        """Reverse tick direction for the first ``n_out`` rows (later rows are look-ahead)."""
        out = np.zeros(n_out, dtype=np.int8)
        rows = np.flatnonzero(eligible)
        if not len(rows):
            return out
        order = stable_argsort(cid[rows])
        r = rows[order]
        cs, ps, tss = cid[r], price[r], ts[r]
        n = len(cs)
        last = np.ones(n, dtype=bool)
        last[:-1] = cs[1:] != cs[:-1]
        nxt = np.empty(n)
        nxt[:-1] = ps[1:]
        nxt[last] = ps[last]
        diff = ps - nxt
        step = signed(diff > _EPS, diff < -_EPS)
        # first row at or after i (same contract) whose step is decisive, or its last row
        idx = np.where((step != 0) | last, np.arange(n), n)
        idx = np.minimum.accumulate(idx[::-1])[::-1]
        decisive = step[idx]
        j = np.minimum(idx + 1, n - 1)
        in_time = tss[j] <= tss + self.horizon_ns
        direction = np.where((decisive != 0) & in_time & ~last[idx], decisive, 0).astype(np.int8)
        keep = r < n_out
        out[r[keep]] = direction[keep]
        return out

    def _sign(self, released: pl.DataFrame, held: pl.DataFrame | None) -> pl.DataFrame:
        n = released.height
        a = _arrays(released)
        excluded = (a["flags"] & EXCLUDED_MASK) != 0
        signs: dict[str, np.ndarray] = {}
        if self._uses_tick:
            signs["tick"] = self._tick(a["cid"], a["price"], ~excluded)
        else:  # keep the tick state moving so a restart with another stack is seamless
            self._tick(a["cid"], a["price"], ~excluded)
        if "reverse_tick" in self.stack:
            both = pick(released, ["cid", "price", "ts", "flags"])
            if held is not None and held.height:
                both = pl.concat([both, pick(held, ["cid", "price", "ts", "flags"])])
            signs["reverse_tick"] = self._reverse_tick(
                both.get_column("cid").to_numpy().astype(np.int64),
                both.get_column("price").to_numpy(),
                both.get_column("ts").to_numpy(),
                (both.get_column("flags").to_numpy() & EXCLUDED_MASK) == 0,
                n,
            )
        signs.update(quote_signs(a, self.tol, self._quote_parts))
        side = np.zeros(n, dtype=np.int8)
        rule = np.zeros(n, dtype=np.uint8)  # index into RULE_NAMES; 0 = none
        for bit, label in reversed(_EXCLUDED):  # the first reason (bit order) wins
            put_code(rule, (a["flags"] & int(bit)) != 0, RULE_CODE[label])
        open_ = ~excluded
        for name in self.stack:
            for part, label in _PARTS[name]:
                sign = signs[part]
                take = open_ & (side == 0) & (sign != 0)
                side += sign * take.view(np.int8)  # side is 0 wherever take holds
                put_code(rule, take, RULE_CODE[label])
        return put(released, pl.Series("side_code", side), _RULE_SERIES[rule.astype(np.uint32)])


#: every value ``side_rule`` can take
RULE_NAMES: Final = (
    "none",
    *(label for _, label in _EXCLUDED),
    "quote",
    "tick",
    "reverse_tick",
    "lee_ready.quote",
    "lee_ready.tick",
    "emo.quote",
    "emo.tick",
    "clnv.quote",
    "clnv.tick",
    "trade_size",
    "depth",
)
RULE_CODE: Final = {name: i for i, name in enumerate(RULE_NAMES)}
_RULE_SERIES: Final = pl.Series("side_rule", RULE_NAMES, dtype=pl.String)
# each configurable rule as the basic signs it tries, in order, and the label of each
_PARTS: Final = {
    "quote": (("quote", "quote"),),
    "tick": (("tick", "tick"),),
    "reverse_tick": (("reverse_tick", "reverse_tick"),),
    "lee_ready": (("quote", "lee_ready.quote"), ("tick", "lee_ready.tick")),
    "emo": (("emo_quote", "emo.quote"), ("tick", "emo.tick")),
    "clnv": (("clnv_quote", "clnv.quote"), ("tick", "clnv.tick")),
    "trade_size": (("trade_size", "trade_size"),),
    "depth": (("depth", "depth"),),
}


def _arrays(df: pl.DataFrame) -> dict[str, np.ndarray]:
    """The columns the rules read, as numpy (nulls as NaN / -1)."""
    out: dict[str, np.ndarray] = {}
    for name, fill in _ARRAY_COLS:
        col = df.get_column(name)
        if col.null_count():
            col = col.fill_null(fill)
        out[name] = col.to_numpy()
    out["flags"] = out["flags"].astype(np.int64)
    out["cid"] = out["cid"].astype(np.int64)
    if "plc_code" in df.columns:  # the NBBO join's code into ev.PLACEMENTS (0-4: placed)
        out["usable"] = df.get_column("plc_code").to_numpy() < len(PLACED)
    else:
        out["usable"] = df.get_column("placement").is_in(PLACED).to_numpy()
    return out


_ARRAY_COLS: Final = (
    ("flags", 0),
    ("cid", 0),
    ("price", float("nan")),
    ("bid", float("nan")),
    ("ask", float("nan")),
    ("mid", float("nan")),
    ("size", 0),
    ("bid_size", -1),
    ("ask_size", -1),
)
assert ev.PLACEMENTS[: len(PLACED)] == PLACED


#: the quote-based signs :func:`quote_signs` computes
QUOTE_PARTS: Final = frozenset({"quote", "emo_quote", "clnv_quote", "trade_size", "depth"})


def quote_signs(
    a: dict[str, np.ndarray], tol: float, parts: frozenset[str] = QUOTE_PARTS
) -> dict[str, np.ndarray]:
    """+1 / -1 / 0 of the quote-based rules in ``parts`` (0: the rule cannot sign the
    print); each costs a dozen array passes per batch, so a stack that does not use
    a rule does not pay for it."""
    price, bid, ask, mid = a["price"], a["bid"], a["ask"], a["mid"]
    size, bs, asz, usable = a["size"], a["bid_size"], a["ask_size"], a["usable"]
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore"):
        if "quote" in parts:
            out["quote"] = signed(usable & (price > mid + tol), usable & (price < mid - tol))
        if "emo_quote" in parts:
            at_ask = usable & (np.abs(price - ask) <= tol)
            at_bid = usable & (np.abs(price - bid) <= tol)
            out["emo_quote"] = signed(at_ask & ~at_bid, at_bid & ~at_ask)
        if "clnv_quote" in parts:
            hi = 0.3 * bid + 0.7 * ask
            lo = 0.7 * bid + 0.3 * ask
            positive = usable & (ask - bid > tol)
            out["clnv_quote"] = signed(
                positive & (price > hi + _EPS) & (price <= ask + tol),
                positive & (price >= bid - tol) & (price < lo - _EPS),
            )
        if "trade_size" in parts:
            out["trade_size"] = signed(
                usable & (size == bs) & (size != asz), usable & (size == asz) & (size != bs)
            )
        if "depth" in parts:
            at_mid = usable & (np.abs(price - mid) <= tol)
            out["depth"] = signed(at_mid & (asz > bs), at_mid & (asz < bs))
    return out


_SIDE_NAMES: Final = pl.Series("side", ["sell", "unknown", "buy"], dtype=pl.String)


def side_names(code: np.ndarray) -> pl.Series:
    """``side_code`` (+1/-1/0, numpy) as buy / sell / unknown: a gather from three
    strings (a when/then expression cost several times more)."""
    return _SIDE_NAMES[(np.sign(code) + 1).astype(np.uint32)]
