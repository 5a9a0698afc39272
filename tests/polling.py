"""A bounded wait for a condition that another thread or process makes true.

Readiness in the tests comes from events where there is one; where there is none (a
count of open connections, a worker becoming idle), this polls every 10 ms up to a
deadline and reports whether the condition came true, so no test waits unbounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

IO_TIMEOUT = 5.0  # seconds any client in the tests waits for a server before failing


def wait_for(condition: Callable[[], bool], timeout: float = IO_TIMEOUT) -> bool:
    """Poll ``condition`` every 10 ms until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()  # never set: only a bounded pause
    while not condition():
        if time.monotonic() >= deadline:
            return False
        tick.wait(0.01)
    return True
