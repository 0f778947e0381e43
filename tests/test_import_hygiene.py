"""The engine must import without Textual: that boundary lets it run headless."""

import subprocess
import sys


def test_engine_does_not_import_textual_or_screens():
    code = (
        "import sys\n"
        "import islandflow_tui.engine.core, islandflow_tui.engine.ingest.synthetic_feed\n"
        "import islandflow_tui.config, islandflow_tui.cli\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'textual'"
        " or m.startswith('islandflow_tui.screens') or m.startswith('islandflow_tui.widgets')"
        " or m == 'islandflow_tui.app']\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
