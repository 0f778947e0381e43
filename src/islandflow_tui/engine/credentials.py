"""Credentials for every live feed, in one place: config first, then the vendor's env vars.

Why one module: a key must be read at exactly one point, handed to the vendor SDK and
nowhere else.  Values travel as :class:`~islandflow_tui.config.Secret` (masked repr),
are never logged, never shown, and never written to session metadata or the config
digest (``Config.as_dict`` drops secret keys).

Environment variables are the vendors' usual ones: ``ALPACA_API_KEY`` /
``ALPACA_SECRET_KEY`` (alpaca-py's own ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``
are accepted too), ``DATABENTO_API_KEY``, and ``IBKR_HOST`` / ``IBKR_PORT`` /
``IBKR_CLIENT_ID`` for TWS or IB Gateway (IB has no key: the logged-in TWS is the
credential).
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from islandflow_tui.config import Config, Secret, secret_keys

ALPACA_KEY_ENV = ("ALPACA_API_KEY", "APCA_API_KEY_ID")
ALPACA_SECRET_ENV = ("ALPACA_SECRET_KEY", "APCA_API_SECRET_KEY")
DATABENTO_KEY_ENV = "DATABENTO_API_KEY"
IBKR_DEFAULT_HOST = "127.0.0.1"
IBKR_DEFAULT_PORT = 7497

#: the optional vendor SDK each live feed needs, and the pip line that installs it
FEED_PACKAGES: dict[str, tuple[str, str]] = {
    "alpaca": ("alpaca", "pip install 'islandflow-tui[alpaca]'  (alpaca-py)"),
    "databento": ("databento", "pip install 'islandflow-tui[databento]'  (databento)"),
    "ibkr": ("ib_async", "pip install 'islandflow-tui[ibkr]'  (ib_async)"),
}


class CredentialError(RuntimeError):
    """A credential is missing: the message names what to set."""


@dataclass(frozen=True, slots=True)
class AlpacaCredentials:
    api_key: Secret
    secret_key: Secret
    source: str  # "config" or "environment": shown by doctor, the values never are


@dataclass(frozen=True, slots=True)
class IbkrEndpoint:
    host: str
    port: int
    client_id: int


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _first_env(environ: Mapping[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return ""


def alpaca(cfg: Config, environ: Mapping[str, str] | None = None) -> AlpacaCredentials:
    """Alpaca key pair from ``[alpaca]`` or the environment; raises CredentialError if absent."""
    env = _env(environ)
    key, secret = cfg.alpaca.api_key, cfg.alpaca.secret_key
    source = "config"
    if not key or not secret:
        key = key or Secret(_first_env(env, ALPACA_KEY_ENV))
        secret = secret or Secret(_first_env(env, ALPACA_SECRET_ENV))
        source = "environment" if not (cfg.alpaca.api_key or cfg.alpaca.secret_key) else "mixed"
    missing = []
    if not key:
        missing.append("ALPACA_API_KEY (or alpaca.api_key in the config)")
    if not secret:
        missing.append("ALPACA_SECRET_KEY (or alpaca.secret_key in the config)")
    if missing:
        raise CredentialError("alpaca feed needs " + " and ".join(missing))
    return AlpacaCredentials(key, secret, source)


def databento_key(cfg: Config, environ: Mapping[str, str] | None = None) -> Secret:
    """Databento key from ``databento.api_key`` (when that section exists) or the env."""
    section = getattr(cfg, "databento", None)
    value = getattr(section, "api_key", None) if section is not None else None
    if isinstance(value, Secret) and value:
        return value
    if isinstance(value, str) and value:
        return Secret(value)
    env_value = _env(environ).get(DATABENTO_KEY_ENV, "").strip()
    if not env_value:
        raise CredentialError(
            f"databento feed needs {DATABENTO_KEY_ENV} (or databento.api_key in the config)"
        )
    return Secret(env_value)


def ibkr(cfg: Config, environ: Mapping[str, str] | None = None) -> IbkrEndpoint:
    """Where TWS / IB Gateway listens; config beats ``IBKR_*`` env vars beats defaults."""
    env = _env(environ)
    host = cfg.ibkr.host or env.get("IBKR_HOST", "").strip() or IBKR_DEFAULT_HOST
    try:
        port = cfg.ibkr.port or int(env.get("IBKR_PORT", "").strip() or IBKR_DEFAULT_PORT)
        client_id = (
            cfg.ibkr.client_id
            if cfg.ibkr.client_id >= 0
            else int(env.get("IBKR_CLIENT_ID", "").strip() or 0)
        )
    except ValueError:
        raise CredentialError(
            "IBKR_PORT and IBKR_CLIENT_ID must be integers (or set ibkr.port / ibkr.client_id)"
        ) from None
    return IbkrEndpoint(host, port, client_id)


def require(cfg: Config, feed: str, environ: Mapping[str, str] | None = None) -> None:
    """Raise CredentialError naming what to set if ``feed`` cannot authenticate."""
    if feed == "alpaca":
        alpaca(cfg, environ)
    elif feed == "databento":
        databento_key(cfg, environ)
    elif feed == "ibkr":
        ibkr(cfg, environ)


def missing_package(feed: str) -> str | None:
    """One line naming what to install if the feed's vendor SDK is not importable."""
    entry = FEED_PACKAGES.get(feed)
    if entry is None:
        return None
    import importlib.util

    module, install = entry
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    return f"{feed} feed needs the {module} package: {install}"


def config_file_warning(path: Path) -> str | None:
    """A warning if ``path`` holds a secret and group or others may read it."""
    try:
        mode = path.stat().st_mode
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    holds = [
        f"{section}.{key}"
        for section, key in secret_keys()
        if isinstance(data.get(section), dict) and str(data[section].get(key, "")).strip()
    ]
    if not holds or not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    return (
        f"config file {path} holds {', '.join(holds)} and is readable by others "
        f"(mode {stat.S_IMODE(mode):o}): run chmod 600 {path}"
    )
