"""``python -m matrix.state``: the connection-state grids, their sizes and what they hold."""

from . import describe

print(describe())
