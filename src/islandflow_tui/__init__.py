"""islandflow: real-time options flow and off-exchange print analysis in the terminal."""

__version__ = "0.1.0"
