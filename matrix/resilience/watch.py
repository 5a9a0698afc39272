"""Watching a server under attack: its tracebacks, restarts and log lines; its resources."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.capture import Event, OutputCapture
from harness.target import Target
from harness.targets.process import session_members

from .common import OWN_THREADS

TRACEBACK = re.compile(r"^\s*Traceback \(most recent call last\)")


class Watch:
    """Counts a server's tracebacks, worker restarts and log lines; reads its resources.

    A process target's lines come from its captured output. An in-process target's log
    records, stderr lines and uncaught thread exceptions (:mod:`harness.capture`) are
    its own when produced on a thread it started (``owned``); those of threads no watch
    owns go to the watch marked ``default``.
    """

    def __init__(self, target: Target, handle: Any, owned: set[int] | None = None) -> None:
        self.handle = handle
        self.pid: int | None = getattr(handle, "pid", None)
        pattern = getattr(target, "restart_pattern", None)
        self.restart = re.compile(pattern) if pattern else None
        self.owned = owned or set()
        self.default = False
        self.tracebacks = 0
        self.restarts = 0
        self.lines = 0
        self._lock = threading.Lock()
        listeners = getattr(handle, "listeners", None)
        if isinstance(listeners, list):
            listeners.append(self.line)

    def line(self, text: str) -> None:
        with self._lock:
            self.lines += 1
            if TRACEBACK.search(text):
                self.tracebacks += 1
            if self.restart is not None and self.restart.search(text):
                self.restarts += 1

    def event(self, event: Event) -> None:
        """An in-process server's log record, stderr lines or uncaught thread exception."""
        with self._lock:
            self.lines += event.lines  # negative: an earlier write was a record's echo
            self.tracebacks += event.tracebacks
            if self.restart is not None and event.lines > 0 and self.restart.search(event.text):
                self.restarts += 1

    def counts(self) -> tuple[int, int, int]:
        with self._lock:
            return self.tracebacks, self.restarts, self.lines

    def alive(self) -> bool:
        if self.pid is not None:
            alive = getattr(self.handle, "alive", None)
            return bool(alive()) if callable(alive) else True
        threads = [t for t in threading.enumerate() if t.ident in self.owned]
        return bool(threads) if self.owned else True

    def resources(self) -> tuple[int, int, float] | None:
        """(open fds, threads, RSS MB) of the server, or None where /proc cannot say."""
        pids = session_members(self.pid) if self.pid is not None else [os.getpid()]
        if not pids:
            return None
        fds = threads = 0
        rss_kb = 0
        try:
            for pid in pids:
                fds += len(os.listdir(f"/proc/{pid}/fd"))
                status = Path(f"/proc/{pid}/status").read_text()
                threads += int(re.search(r"^Threads:\s*(\d+)", status, re.M).group(1))
                rss_kb += int(re.search(r"^VmRSS:\s*(\d+)", status, re.M).group(1))
        except (OSError, AttributeError, ValueError):
            return None
        if self.pid is None:  # in-process: the battery's own threads are not the server's
            threads -= sum(t.name.startswith(OWN_THREADS) for t in threading.enumerate())
        return fds, threads, round(rss_kb / 1024, 1)


class Router:
    """Hands what an in-process server logs or writes (:mod:`harness.capture`'s events) to
    the watch of the server whose thread produced it; events of the battery's own threads
    (attackers, the good client) are nobody's."""

    def __init__(self) -> None:
        self.watches: list[Watch] = []
        self.guard = threading.Lock()

    def __call__(self, event: Event) -> None:
        names = {t.ident: t.name for t in threading.enumerate()}
        if names.get(event.thread, "").startswith(OWN_THREADS):
            return
        with self.guard:
            watches = list(self.watches)
        owner = next((w for w in watches if event.thread in w.owned), None)
        owner = owner or next((w for w in watches if w.default), None)
        if owner is not None:
            owner.event(event)


@contextlib.contextmanager
def server_output() -> Iterator[Router]:
    """Count every log record, stderr line and uncaught thread exception while the battery
    runs (:class:`harness.capture.OutputCapture`), and keep them off the terminal.

    In-process servers write where the battery writes; their lines would bury the table
    (a refused attacker is one line, 64 of them a screenful), so ``sys.stderr`` is a sink
    for the battery's duration: what lands there is counted, not shown, as a process
    target's output is read by the harness and not shown either.
    """
    saved = sys.stderr
    with open(os.devnull, "w", encoding="utf-8") as sink:
        sys.stderr = sink
        capture = OutputCapture()
        router = Router()
        capture.listeners.append(router)
        try:
            with capture:
                yield router
        finally:
            if sys.stderr is sink:
                sys.stderr = saved
