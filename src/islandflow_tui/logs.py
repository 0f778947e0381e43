"""Logging to a file in the log dir: never to the terminal the TUI draws on."""

from __future__ import annotations

import logging
import logging.handlers

from islandflow_tui.config import Config


def setup_logging(cfg: Config) -> str | None:
    """Attach a rotating file handler once; return a warning line if the dir is unwritable."""
    root = logging.getLogger("islandflow")
    root.setLevel(logging.INFO)
    root.propagate = False
    if any(getattr(h, "_islandflow", False) for h in root.handlers):
        return None
    try:
        log_dir = cfg.log_path()
        log_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            log_dir / "islandflow.log", maxBytes=5_000_000, backupCount=3, encoding="utf-8"
        )
    except OSError as exc:
        handler = logging.NullHandler()
        handler._islandflow = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        return f"logging disabled: cannot write to {cfg.log_path()}: {exc.strerror}"
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._islandflow = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    return None
