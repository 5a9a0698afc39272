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
    """The pids whose parent is ``pid`` (default: this process), zombies excluded.

    Read from the kernel's list of each thread's children
    (``/proc/<pid>/task/<tid>/children``, proc(5), Linux 3.5+ with CONFIG_PROC_CHILDREN):
    a few small files, where scanning every process's ``stat`` costs milliseconds per
    call on a busy host (three calls per server configuration of a matrix run). Where
    that list is not available, every process's ``stat`` is scanned instead.
    """
    parent = os.getpid() if pid is None else pid
    listed = _listed_children(parent)
    candidates = _scanned_children(parent) if listed is None else listed
    return {child for child in candidates if _state(child) not in (None, b"Z")}


def _listed_children(parent: int) -> set[int] | None:
    """The children the kernel lists for ``parent``'s threads (a child is on the list of
    the thread that forked it, or that it was re-parented to); None without the list."""
    if not os.path.exists(f"/proc/{parent}/task/{parent}/children"):
        return None  # an older kernel, not Linux, or the main thread is gone
    try:
        threads = os.listdir(f"/proc/{parent}/task")
    except OSError:
        return None
    found: set[int] = set()
    for tid in threads:
        try:
            with open(f"/proc/{parent}/task/{tid}/children", "rb") as listing:
                found.update(int(p) for p in listing.read().split())
        except OSError:
            continue  # the thread ended meanwhile
    return found


def _scanned_children(parent: int) -> set[int]:
    """Every process whose parent (``stat`` field 4) is ``parent``."""
    found = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if entry.isdigit() and _stat_fields(int(entry))[1:2] == [str(parent).encode()]:
            found.add(int(entry))
    return found


def _stat_fields(pid: int) -> list[bytes]:
    """``/proc/<pid>/stat`` after the command name: state, ppid, ... ([] if gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _state(pid: int) -> bytes | None:
    """A process's state letter (``Z`` for a zombie), None when it is gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


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
