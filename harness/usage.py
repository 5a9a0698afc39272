"""The command lines' argument parser: a usage error is one line and exit status 2.

argparse prints its whole usage block before the error; a person, a test harness or a
service manager should see just the problem (README "Standards": bad input gets one
clear line and a non-zero exit). Every ``python -m`` command of the project uses it.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_USAGE = 2  # argparse's own status for a usage error


class OneLineParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose ``error()`` prints ``NAME: error: MESSAGE``.

    ``name``: the error line's prefix, when it differs from ``prog`` (the reference
    server's usage says ``python -m harness.reference``, its errors ``harness.reference``).
    """

    name: str | None = None

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.name or self.prog}: error: {message}\n")
