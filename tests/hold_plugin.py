"""A pytest plugin for matrix runs that a test interrupts: it holds the run still.

``python -m pytest matrix -p tests.hold_plugin ...`` pauses before the second case
of the first server configuration that has two: that configuration's server is then
certainly live (a configuration's server stops only after its last case,
matrix/servers.py) and the run certainly not finished, whatever the machine's load.
It prints ``HOLD_LINE`` and waits (at most ``HOLD_S``) for the signal the test
sends; the wait is in the main thread, where Python raises the signal's
KeyboardInterrupt, inside the run loop as for any case. Without a signal it lets the
run go on, so a test that never signals fails on what the run did, not on a hang.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

HOLD_LINE = "mtls-matrix-test: holding with a server live"
HOLD_S = 60.0
_state: dict[str, Any] = {"previous": None, "held": False}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    spec = getattr(item, "callspec", None)
    case = spec.params.get("matrix_case") if spec is not None else None
    config = getattr(case, "config", None)
    if config is None or _state["held"]:
        return
    if config == _state["previous"]:
        _state["held"] = True
        capture = item.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():  # to the terminal, not a capture
            print(f"\n{HOLD_LINE}", flush=True)
        threading.Event().wait(HOLD_S)  # bounded; the test's signal ends it
    _state["previous"] = config
