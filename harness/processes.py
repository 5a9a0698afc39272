"""The harness's child processes: which exist, and ending the ones a target left behind.

SPEC section 10: processes a target started are ended with it, children included, and
one that outlives its target is reported. A process target runs its server in a session
of its own (harness/targets/process.py) and kills that session on stop; an in-process
target may start processes of its own (a worker pool, a helper binary) that nothing
tracks. Both are checked the same way: the harness's children before a server starts
and after it stopped are compared (``LeakCheck``).

On Linux a matrix run (the pytest plugin's session) asks to be a *child subreaper*
(``prctl(PR_SET_CHILD_SUBREAPER)``, proc(5)/prctl(2), Linux 3.4+): a process whose parent
exits is re-parented to the harness instead of to init, so a grandchild that outlives
the child that started it (a double fork, a daemon) is still seen as the harness's
child, and can be killed and reaped. Elsewhere, or when the call fails (or in a process
that did not ask, such as a test calling the runner directly), only direct children are
seen. Children are read from ``/proc/<pid>/stat`` (field 4, the parent pid); without
``/proc`` the check sees nothing and reports nothing.

Written here because psutil would be a new dependency for one scan of ``/proc``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Iterable

from harness.targets.process import wait_gone

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
_subreaper: bool | None = None


def become_subreaper() -> bool:
    """Ask the kernel to re-parent orphaned descendants to this process (once; Linux)."""
    global _subreaper
    if _subreaper is None:
        _subreaper = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                _subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
            except (OSError, AttributeError):
                _subreaper = False
    return _subreaper


def children(pid: int | None = None) -> set[int]:
    """The pids whose parent is ``pid`` (default: this process), zombies excluded."""
    parent = os.getpid() if pid is None else pid
    found = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if len(fields) > 1 and int(fields[1]) == parent and fields[0] != b"Z":
            found.add(int(entry))
    return found


def command_line(pid: int) -> str:
    """A process's command line as text ('' if it is gone), for a report."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            raw = cmdline.read()
    except OSError:
        return ""
    return " ".join(p.decode(errors="replace") for p in raw.split(b"\0") if p)


def kill(pids: Iterable[int], timeout: float = 2.0) -> None:
    """SIGKILL each process (and the group it leads, if any), wait (at most ``timeout``)
    until they have exited, and reap the ones that are this process's children."""
    pids = sorted(set(pids))
    for pid in pids:
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    wait_gone(pids, timeout)  # pidfds: readable once each has exited, no polling
    for pid in pids:  # reap the ones that are ours (re-parented ones included)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


class LeakCheck:
    """Children of the harness that appeared while one server ran and outlived its stop.

    ``before()`` is called before ``start()``, ``leaked(others)`` after ``stop()``
    returned (or was given up on); ``others`` are pids that belong to other servers
    still running (excluded). Returns the leaked pids, sorted.
    """

    def __init__(self) -> None:
        self._before: set[int] = set()

    def before(self) -> None:
        self._before = children()

    def leaked(self, others: Iterable[int] = ()) -> list[int]:
        return sorted(children() - self._before - set(others))
