"""``python -m matrix.stall``: the old name of the resilience battery, kept as an alias.

The idle-client probe it used to run (connections that send nothing) is one kind of
:mod:`matrix.resilience`'s battery (``silent``); everything else is there too.
"""

from __future__ import annotations

import sys

from .resilience import main as _main


def main(argv: list[str] | None = None) -> int:
    return _main(argv, prog="python -m matrix.stall")


if __name__ == "__main__":
    sys.exit(main())
