"""``islandflow`` subcommands.  Each module has ``register(subparsers)``; list it here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def registrars() -> list[Callable[[Any], None]]:
    from islandflow_tui.commands import doctor, export, import_dbn, replay, sessions, verify

    return [
        replay.register,
        verify.register,
        export.register,
        sessions.register,
        doctor.register,
        import_dbn.register,
    ]
