"""Top-level screens.  Each is a mode of the app (``App.MODES``) so it keeps its own
stack; later issues add Flow, Alerts, Dark, Candles and Evidence beside Tape."""

from islandflow_tui.screens.help import HelpScreen
from islandflow_tui.screens.tape import TapeScreen

__all__ = ["HelpScreen", "TapeScreen"]
