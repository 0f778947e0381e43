"""``islandflow doctor``: one line per check, each failure with its fix; exit 1 on failure.

Checks: the configuration loads (it did, or we would not be here), a config file
holding secrets is not readable by others, the data and log dirs are writable, and
for every configured live feed (``feed.adapter``, or ``--feed``/``--all``): its
vendor SDK imports and its credentials are present (the source is named, the value
never).  With ``--online`` it also connects: Alpaca's REST with the keys, Databento's
metadata endpoint, TWS/IB Gateway's API port.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from islandflow_tui.config import Config, default_config_path
from islandflow_tui.engine import credentials as creds
from islandflow_tui.engine.feeds import LIVE_FEEDS

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"


@dataclass(frozen=True, slots=True)
class Check:
    status: str
    name: str
    message: str
    fix: str = ""

    def line(self) -> str:
        fix = f"  fix: {self.fix}" if self.fix and self.status in (FAIL, WARN) else ""
        return f"[{self.status:>4}] {self.name}: {self.message}{fix}"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "doctor", help="check configuration, credentials, data dir and (--online) feed connectivity"
    )
    p.add_argument("--online", action="store_true", help="also connect to each configured feed")
    p.add_argument(
        "--all", action="store_true", help="check every live feed, not only feed.adapter"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, cfg: Config) -> int:
    path = Path(args.config) if getattr(args, "config", None) else default_config_path()
    checks = diagnose(cfg, path, online=args.online, all_feeds=args.all)
    for check in checks:
        print(check.line())
    failed = sum(c.status == FAIL for c in checks)
    print(f"{len(checks)} checks, {failed} failed")
    return 1 if failed else 0


def diagnose(
    cfg: Config,
    config_path: Path,
    *,
    online: bool = False,
    all_feeds: bool = False,
    environ: Mapping[str, str] | None = None,
    probes: Mapping[str, Callable[[Config], Check]] | None = None,
) -> list[Check]:
    env = os.environ if environ is None else environ
    out = [_config_check(config_path)]
    out.append(_dir_check("data dir", cfg.data_path()))
    out.append(_dir_check("log dir", cfg.log_path()))
    feeds = list(LIVE_FEEDS) if all_feeds else [f for f in LIVE_FEEDS if f == cfg.feed.adapter]
    if not feeds:
        out.append(Check(OK, "feed", f"{cfg.feed.adapter} needs no credentials"))
    probes = {**PROBES, **(probes or {})}
    for feed in feeds:
        missing = creds.missing_package(feed)
        out.append(
            Check(FAIL, f"{feed} package", missing, creds.FEED_PACKAGES[feed][1])
            if missing
            else Check(OK, f"{feed} package", f"{creds.FEED_PACKAGES[feed][0]} imports")
        )
        cred = _credential_check(cfg, feed, env)
        out.append(cred)
        if online:
            if missing or cred.status == FAIL:
                out.append(Check(SKIP, f"{feed} online", "skipped: fix the lines above first"))
            else:
                try:
                    out.append(probes[feed](cfg))
                except Exception as exc:  # a probe must report, never crash doctor
                    out.append(
                        Check(FAIL, f"{feed} online", f"{type(exc).__name__}", "see the log")
                    )
    return out


def _config_check(path: Path) -> Check:
    warning = creds.config_file_warning(path)
    if warning:
        return Check(WARN, "config", warning, f"chmod 600 {path}")
    where = str(path) if path.exists() else "built-in defaults (no config file)"
    return Check(OK, "config", f"loaded from {where}")


def _dir_check(name: str, path: Path) -> Check:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(
            FAIL,
            name,
            f"{path} is not writable ({exc.strerror})",
            f"fix its permissions or set paths.{name.split()[0]}_dir",
        )
    return Check(OK, name, f"{path} is writable")


def _credential_check(cfg: Config, feed: str, env: Mapping[str, str]) -> Check:
    name = f"{feed} credentials"
    try:
        if feed == "alpaca":
            a = creds.alpaca(cfg, env)
            return Check(OK, name, f"API key and secret found ({a.source})")
        if feed == "databento":
            creds.databento_key(cfg, env)
            return Check(OK, name, "DATABENTO_API_KEY found")
        ep = creds.ibkr(cfg, env)
        return Check(OK, name, f"TWS/Gateway at {ep.host}:{ep.port}, client id {ep.client_id}")
    except creds.CredentialError as exc:
        return Check(FAIL, name, str(exc), "set the variable(s) named, or the config key")


# -- online probes ---------------------------------------------------------------
def _alpaca_probe(cfg: Config) -> Check:
    from alpaca.common.exceptions import APIError
    from alpaca.data.enums import DataFeed
    from alpaca.data.historical.stock import StockHistoricalDataClient
    from alpaca.data.requests import StockLatestTradeRequest

    a = creds.alpaca(cfg)
    client = StockHistoricalDataClient(
        a.api_key.reveal(), a.secret_key.reveal(), url_override=cfg.alpaca.rest_url or None
    )
    symbol = (cfg.alpaca.underlyings or ["SPY"])[0]
    try:
        client.get_stock_latest_trade(
            StockLatestTradeRequest(
                symbol_or_symbols=symbol, feed=DataFeed(cfg.alpaca.equities_feed)
            )
        )
    except APIError as exc:
        code = getattr(exc, "status_code", None)
        if code in (401, 403):
            return Check(
                FAIL, "alpaca online", f"keys refused (HTTP {code})", "check the keys' account"
            )
        return Check(FAIL, "alpaca online", f"HTTP {code}", "see Alpaca's status page")
    except OSError as exc:
        return Check(FAIL, "alpaca online", f"no connection ({exc})", "check the network")
    return Check(OK, "alpaca online", f"REST answered a latest trade for {symbol}")


def _databento_probe(cfg: Config) -> Check:
    import databento

    client = databento.Historical(creds.databento_key(cfg).reveal())
    try:
        n = len(client.metadata.list_datasets())
    except databento.BentoError as exc:
        return Check(FAIL, "databento online", type(exc).__name__, "check DATABENTO_API_KEY")
    return Check(OK, "databento online", f"{n} datasets visible")


def _ibkr_probe(cfg: Config) -> Check:
    ep = creds.ibkr(cfg)
    try:
        with socket.create_connection((ep.host, ep.port), timeout=3):
            pass
    except OSError as exc:
        from islandflow_tui.engine.ingest.ibkr_feed import not_running_message

        return Check(
            FAIL,
            "ibkr online",
            not_running_message(ep.host, ep.port, exc),
            "start TWS or IB Gateway",
        )
    return Check(OK, "ibkr online", f"TWS/Gateway API port {ep.host}:{ep.port} accepts")


PROBES: dict[str, Callable[[Config], Check]] = {
    "alpaca": _alpaca_probe,
    "databento": _databento_probe,
    "ibkr": _ibkr_probe,
}
