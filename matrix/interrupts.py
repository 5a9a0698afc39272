"""Ctrl-C and SIGTERM as one interruption a run can record (SPEC section 10).

An interrupted run must say so: its results are marked incomplete with the signal
that stopped it, every report shows that, the exit status is 130 (128 + SIGINT, the
shell's convention for a run ended by Ctrl-C), and the user sees one line, never a
traceback. SIGTERM's default action kills the process before anything can be
written, so while ``handled()`` is active both signals raise ``KeyboardInterrupt``
in the main thread (where Python delivers signals) after noting which one came:
every ``finally`` and ``with`` block then runs as for Ctrl-C, servers are stopped
and the partial results written.

    with interrupts.handled():
        ...                        # KeyboardInterrupt on SIGINT or SIGTERM
    interrupts.received()          # "SIGINT", "SIGTERM" or None

Handlers are installed only from the main thread (elsewhere ``handled()`` does
nothing: Python allows signal handlers there only) and the previous ones are put
back on exit. A second signal interrupts again (the clean-up itself is bounded).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: str | None = None
_depth = 0
_saved: dict[int, Any] = {}


def received() -> str | None:
    """The name of the first signal that interrupted this process, or None."""
    return _received


def reset() -> None:
    """Forget an earlier interruption (a new run in the same process)."""
    global _received
    _received = None


def _handler(signum: int, frame: FrameType | None) -> None:
    global _received
    if _received is None:
        _received = signal.Signals(signum).name
    raise KeyboardInterrupt(_received)


def install() -> bool:
    """Route SIGINT and SIGTERM to ``KeyboardInterrupt`` (nested calls count); whether
    this thread could (only the main thread can)."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        return False
    if _depth == 0:
        for sig in SIGNALS:
            _saved[sig] = signal.signal(sig, _handler)
    _depth += 1
    return True


def uninstall() -> None:
    global _depth
    if threading.current_thread() is not threading.main_thread() or _depth == 0:
        return
    _depth -= 1
    if _depth == 0:
        for sig, previous in _saved.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        _saved.clear()


@contextlib.contextmanager
def handled() -> Iterator[None]:
    installed = install()
    try:
        yield
    finally:
        if installed:
            uninstall()


def describe(exc: BaseException | None = None) -> str:
    """``interrupted by SIGINT`` (the signal noted, else Ctrl-C's)."""
    return f"interrupted by {_received or 'SIGINT'}"
