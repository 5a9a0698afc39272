"""Watching a server under attack: its tracebacks, restarts and log lines; its resources."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

from harness.target import Target
from harness.targets.process import session_members

from .common import LOG, OWN_THREADS

TRACEBACK = re.compile(r"^\s*Traceback \(most recent call last\)")


class Watch:
    """Counts a server's tracebacks, worker restarts and log lines; reads its resources.

    A process target's lines come from its captured output. An in-process target's log
    records are its own when logged on a thread it started (``owned``); records from
    threads no watch owns go to the watch marked ``default``.
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

    def record(self, record: logging.LogRecord) -> None:
        with self._lock:
            self.lines += 1
            if record.exc_info or "Traceback (most recent call last)" in record.getMessage():
                self.tracebacks += 1

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


class _LogTap(logging.Handler):
    """Hands the in-process server's log records (and uncaught thread errors) to the watches."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.watches: list[Watch] = []
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self.guard:
            watches = list(self.watches)
        owner = next((w for w in watches if record.thread in w.owned), None)
        owner = owner or next((w for w in watches if w.default), None)
        if owner is not None:
            owner.record(record)


@contextlib.contextmanager
def _log_tap() -> Any:
    """Route the reference server's logger here (not to stderr) for the battery's duration."""
    tap = _LogTap()
    logger = logging.getLogger(LOG)
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(tap)
    previous_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        record = logging.LogRecord(LOG, logging.ERROR, "", 0, "uncaught", None, None)
        record.exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        record.thread = args.thread.ident if args.thread is not None else None
        tap.emit(record)

    threading.excepthook = hook
    try:
        yield tap
    finally:
        threading.excepthook = previous_hook
        logger.removeHandler(tap)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
