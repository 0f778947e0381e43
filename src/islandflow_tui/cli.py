"""The ``islandflow`` command: parse flags, build the config, run the app.

Every start-up problem (bad config, unwritable log dir) ends in one clear line on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from islandflow_tui import __version__
from islandflow_tui.config import (
    Config,
    ConfigError,
    default_config_path,
    load_config,
    render_example,
    toml_value,
)
from islandflow_tui.logs import setup_logging

# flag dest -> "section.key" it overrides
_FLAG_KEYS = {
    "feed": "feed.adapter",
    "profile": "synthetic.profile",
    "seed": "synthetic.seed",
    "start": "synthetic.start",
    "no_pace": "synthetic.pace",
    "no_record": "log.record",
    "signal_mode": "signal.mode",
    "preset": "ui.preset",
    "min_premium": "ui.min_premium",
    "theme": "ui.theme",
    "refresh_hz": "ui.refresh_hz",
    "data_dir": "paths.data_dir",
    "log_dir": "paths.log_dir",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="islandflow",
        description=(
            "Real-time US options flow and off-exchange equity prints in the terminal. "
            "With no flags it runs a synthetic market end to end: no credentials, no servers."
        ),
        epilog=(
            f"Config file: --config PATH, else {default_config_path()}. "
            "Environment variables ISLANDFLOW_<SECTION>__<KEY> override the file "
            "(e.g. ISLANDFLOW_SIGNAL__MIN_NOTIONAL=5000); flags override both. "
            "Every key is listed with its default by --print-example-config."
        ),
    )
    parser.add_argument("--version", action="version", version=f"islandflow {__version__}")
    parser.add_argument("--config", metavar="PATH", help="TOML config file to load")
    parser.add_argument(
        "--feed",
        choices=["synthetic", "alpaca", "databento", "ibkr"],
        help="market data feed: synthetic (default, no credentials), alpaca, databento, ibkr "
        "(check the setup with: islandflow doctor)",
    )
    parser.add_argument(
        "--profile",
        choices=["realistic", "active", "firehose"],
        help="synthetic market profile: tens, hundreds or 50 000+ option prints/s",
    )
    parser.add_argument("--seed", type=int, metavar="N", help="synthetic market random seed")
    parser.add_argument(
        "--start",
        metavar="TIME",
        help="synthetic event-time start: 'now' or ISO-8601 such as 2025-11-25T14:30:00Z",
    )
    parser.add_argument(
        "--no-pace",
        action="store_const",
        const=False,
        help="generate the synthetic market as fast as possible instead of in real time",
    )
    parser.add_argument(
        "--no-record",
        action="store_const",
        const=False,
        help="do not record this run as a session",
    )
    parser.add_argument(
        "--signal-mode",
        choices=["smart-money", "balanced", "all"],
        help="signal filter policy recorded on enriched prints",
    )
    parser.add_argument(
        "--preset",
        choices=["smart-money", "balanced", "all"],
        help="tape preset at start (cycle it with p)",
    )
    parser.add_argument(
        "--min-premium", type=float, metavar="USD", help="tape hides prints below this premium"
    )
    parser.add_argument(
        "--theme", metavar="NAME", help="Textual theme (islandflow, islandflow-light, ...)"
    )
    parser.add_argument("--refresh-hz", type=float, metavar="HZ", help="screen repaint rate (1-60)")
    parser.add_argument("--data-dir", metavar="DIR", help="where sessions are stored")
    parser.add_argument("--log-dir", metavar="DIR", help="where the log file goes")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective configuration as TOML and exit",
    )
    parser.add_argument(
        "--print-example-config",
        action="store_true",
        help="print every config key with its default and a comment, and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _command_registrars():
        register(sub)
    return parser


def _command_registrars() -> list[Callable[[Any], None]]:
    """Subcommands live in islandflow_tui.commands.*; each exposes ``register(subparsers)``
    and sets ``func(args, cfg) -> int`` as the parser default."""
    from islandflow_tui import commands

    return commands.registrars()


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        key: getattr(args, dest)
        for dest, key in _FLAG_KEYS.items()
        if getattr(args, dest, None) is not None
    }


def render_effective(cfg: Config) -> str:
    """The effective config as TOML; secrets print as "***" (set) or "" (unset)."""
    lines: list[str] = []
    for section, body in cfg.as_dict(secrets=True).items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in body.items())
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.print_example_config:
        sys.stdout.write(render_example())
        return 0
    try:
        cfg = load_config(args.config, overrides=_overrides(args))
    except ConfigError as exc:
        print(f"islandflow: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        sys.stdout.write(render_effective(cfg))
        return 0
    warning = setup_logging(cfg)
    from islandflow_tui.engine.credentials import config_file_warning

    secrets_warning = config_file_warning(
        Path(args.config) if args.config else default_config_path()
    )
    if secrets_warning:
        print(f"islandflow: warning: {secrets_warning}", file=sys.stderr)
    if getattr(args, "func", None) is not None:
        try:
            return int(args.func(args, cfg))
        except BrokenPipeError:  # `islandflow sessions --json | head`: the reader left
            sys.stdout = None  # type: ignore[assignment]  # no flush error at exit
            return 0

    from islandflow_tui.engine.feeds import preflight

    problem = preflight(cfg)  # before the UI: never start half-broken
    if problem:
        print(f"islandflow: {problem}", file=sys.stderr)
        return 2

    from islandflow_tui.app import make_app  # textual is imported only when the UI runs

    app = make_app(cfg, tune_gc=True)
    for line in (warning, secrets_warning):
        if line:
            app.startup_warnings.append(line)
    app.run()
    return app.return_code or 0
