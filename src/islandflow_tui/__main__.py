"""``python -m islandflow_tui`` runs the same CLI as the ``islandflow`` script."""

from islandflow_tui.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
