"""harness.processes.children: the harness's live child processes, as the leak check sees them.

Real processes only: children started from the main thread and from another thread, a
zombie (exited, not yet reaped: ``os.waitid`` with ``WNOWAIT`` waits for the exit without
reaping), and the /proc scan the kernel's children lists replace, which must agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from harness import processes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
WAIT = 10.0


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )


def _end(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(WAIT)


def test_a_running_child_is_listed_and_an_ended_one_is_not():
    proc = _sleeper()
    try:
        assert proc.pid in processes.children()
    finally:
        _end(proc)
    assert proc.pid not in processes.children()


def test_a_child_started_by_another_thread_is_listed():
    box: list[subprocess.Popen] = []
    thread = threading.Thread(target=lambda: box.append(_sleeper()))
    thread.start()
    thread.join(WAIT)
    try:
        assert box and box[0].pid in processes.children()
    finally:
        for proc in box:
            _end(proc)


def test_a_zombie_is_not_listed():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        assert proc.pid in processes._scanned_children(os.getpid())  # still there...
        assert proc.pid not in processes.children()  # ...but not a live child
    finally:
        proc.wait(WAIT)


def test_the_kernels_lists_agree_with_the_scan():
    procs = [_sleeper() for _ in range(3)]
    try:
        listed = processes._listed_children(os.getpid())
        if listed is None:
            pytest.skip("this kernel has no /proc/<pid>/task/<tid>/children")
        scanned = processes._scanned_children(os.getpid())
        assert {p.pid for p in procs} <= listed
        assert listed == scanned
    finally:
        for proc in procs:
            _end(proc)
