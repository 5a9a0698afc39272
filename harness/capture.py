"""What an in-process server logs, counted: log records and stderr text (SPEC section 10).

A process target's output is one pipe the harness reads (harness/targets/process.py);
an in-process target writes where Python code writes: log records and ``sys.stderr``
(an uncaught exception in a thread reaches stderr through ``threading.excepthook``).
``OutputCapture`` counts both while it is installed:

- **Log records.** A handler on the root logger sees every record that propagates
  (what the target's own logging configuration lets through: levels are not
  changed, so counting never alters what a server logs). A record with
  ``exc_info`` counts as a traceback. Records of the harness's own HTTP client
  (``urllib3``, ``requests``) are left out. Installing a root handler would silence
  ``logging.lastResort`` (WARNING and above printed to stderr when no handler
  exists); the capture prints those itself, so what a user sees is unchanged.
- **stderr.** ``sys.stderr`` is replaced by a stream that forwards every write
  to the original and counts the complete lines; a line holding
  ``Traceback (most recent call last)`` counts as a traceback. Lines the
  harness writes itself start with ``mtls-matrix`` and are not counted.
- **Uncaught exceptions in threads.** ``threading.excepthook`` is wrapped: the
  exception counts as one line and one traceback, then the previous hook runs
  (it prints to stderr, or under pytest keeps the exception for a warning); what
  it prints is not counted again.
- **One event counted once.** A ``StreamHandler`` writing a record to stderr
  does so in one ``write`` call, on the logging thread, just before or after the
  root logger's handlers run. Such a write (holding the record's first message
  line, on the same thread, immediately before or after the record) is the record's
  echo: the record is counted, its echo is not.

Not seen: writes to file descriptor 2 that bypass ``sys.stderr`` (C extensions,
``os.write(2, ...)``, child processes); a record on a logger with
``propagate = False`` and its own handlers.

``LineCounter`` counts a process target's output lines the same way (a listener on
``ServerProcess.listeners``).

Attribution: ``counts()`` is a running total; ``window()`` gives the difference
over a block (a matrix case, a battery scenario). Windows can nest and overlap;
events of every thread count (the matrix runs one case at a time per process).
``listeners`` get every counted event (an ``Event``), for callers that sort
events by thread (the resilience battery) or match a pattern (worker restarts).

Written here because no maintained library counts both records and raw stderr
text without changing the logging configuration (pytest's ``caplog``/``capsys``
are fixtures of a test, not of a server's lifetime).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

TRACEBACK_TEXT = "Traceback (most recent call last)"
IGNORED_LOGGERS = ("urllib3", "requests")
OWN_PREFIX = "mtls-matrix"
_ECHO_CAP = 65536  # characters of a write kept to match a record against


@dataclass(frozen=True)
class Counts:
    """Tracebacks and log lines: a record or an uncaught thread exception is one line
    (however long its text), stderr text counts its lines (records' echoes excepted)."""

    tracebacks: int = 0
    log_lines: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tracebacks + other.tracebacks, self.log_lines + other.log_lines)

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.tracebacks - other.tracebacks, self.log_lines - other.log_lines)

    def to_json(self) -> dict[str, int]:
        return {"tracebacks": self.tracebacks, "log_lines": self.log_lines}


@dataclass(frozen=True)
class Event:
    """One counted thing: a log record (``source`` "log"), stderr lines ("stderr") or an
    uncaught exception in a thread ("thread").

    ``thread`` is the ident of the thread that logged or wrote it; ``lines`` how many
    lines it counts for (a record: 1; a stderr write: its complete lines); ``text`` the
    record's message or the written text. A negative ``lines`` retracts an earlier
    stderr event found to be a record's echo (listeners that keep totals subtract it).
    """

    source: str
    thread: int | None
    text: str
    lines: int
    tracebacks: int


class Window:
    """Counts over a block: ``counts`` is final once the block exits (live before)."""

    def __init__(self, capture: OutputCapture) -> None:
        self._capture = capture
        self._start = capture.counts()
        self._end: Counts | None = None

    @property
    def counts(self) -> Counts:
        end = self._end if self._end is not None else self._capture.counts()
        return end - self._start

    def close(self) -> None:
        if self._end is None:
            self._end = self._capture.counts()


class _Local(threading.local):
    def __init__(self) -> None:
        self.partial = ""  # an unfinished stderr line
        self.last_write: tuple[str, int, int] | None = None  # (text, lines, tracebacks)
        self.echo_of: str | None = None  # a record's first line whose echo may follow
        self.quiet = False  # inside the previous threading.excepthook: counted already


class OutputCapture:
    """Counts log records and stderr lines while installed (``with`` or install/uninstall).

    Thread-safe. Installing twice nests (one handler, one stream). ``uninstall`` puts
    ``sys.stderr`` back only if nobody replaced it meanwhile; otherwise the stream stays
    in place as a plain pass-through.
    """

    def __init__(self, ignored_loggers: tuple[str, ...] = IGNORED_LOGGERS) -> None:
        self.ignored = ignored_loggers
        self.listeners: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()
        self._tracebacks = 0
        self._lines = 0
        self._depth = 0
        self._local = _Local()
        self._handler = _RootHandler(self)
        self._stream: _CountingStream | None = None
        self._previous_hook: Callable[[Any], Any] | None = None

    # -- lifetime ---------------------------------------------------------------------

    def install(self) -> OutputCapture:
        with self._lock:
            self._depth += 1
            if self._depth > 1:
                return self
        logging.getLogger().addHandler(self._handler)
        self._stream = _CountingStream(sys.stderr, self)
        sys.stderr = self._stream
        self._previous_hook = threading.excepthook
        threading.excepthook = self._thread_exception
        return self

    def uninstall(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth > 0:
                return
            self._depth = 0
        logging.getLogger().removeHandler(self._handler)
        if threading.excepthook == self._thread_exception:
            threading.excepthook = self._previous_hook or threading.__excepthook__
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.active = False
            if sys.stderr is stream:
                sys.stderr = stream.original

    def __enter__(self) -> OutputCapture:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # -- reading ----------------------------------------------------------------------

    def counts(self) -> Counts:
        with self._lock:
            return Counts(self._tracebacks, self._lines)

    @contextlib.contextmanager
    def window(self) -> Iterator[Window]:
        """The counts of a block; installs the capture for the block if it is not."""
        with self:
            window = Window(self)
            try:
                yield window
            finally:
                window.close()

    # -- counting ---------------------------------------------------------------------

    def _count(self, event: Event) -> None:
        with self._lock:
            self._tracebacks += event.tracebacks
            self._lines += event.lines
            listeners = list(self.listeners)
        for listener in listeners:
            listener(event)

    def _record(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in self.ignored:
            return
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the server's, not ours to raise
            message = str(record.msg)
        first = message.splitlines()[0] if message else ""
        local = self._local
        last, local.last_write = local.last_write, None
        if last is not None and first and first in last[0]:  # its echo came first: retract
            self._count(Event("stderr", threading.get_ident(), last[0], -last[1], -last[2]))
        else:
            local.echo_of = first or None  # its echo may follow (a handler added after ours)
        traceback = 1 if record.exc_info or TRACEBACK_TEXT in message else 0
        self._count(Event("log", record.thread, message, 1, traceback))

    def _thread_exception(self, args: Any) -> None:
        """An uncaught exception in a thread: one line and one traceback, then the hook
        that was in place (which prints it, or under pytest keeps it for a warning)."""
        thread = args.thread.ident if args.thread is not None else threading.get_ident()
        self._count(Event("thread", thread, f"{args.exc_type.__name__}: {args.exc_value}", 1, 1))
        previous = self._previous_hook or threading.__excepthook__
        self._local.quiet = True
        try:
            previous(args)
        finally:
            self._local.quiet = False

    def _write(self, text: str) -> None:
        local = self._local
        if local.quiet:
            return
        echo, local.echo_of = local.echo_of, None
        if echo is not None and echo in text:
            return  # a record's echo: the record was counted
        text = local.partial + text
        *complete, local.partial = text.split("\n")
        if len(local.partial) > _ECHO_CAP:  # a line that never ends: count it in parts
            complete.append(local.partial)
            local.partial = ""
        lines = [line for line in complete if not line.startswith(OWN_PREFIX)]
        if not lines:
            return
        tracebacks = sum(TRACEBACK_TEXT in line for line in lines)
        written = "\n".join(lines)[:_ECHO_CAP]
        local.last_write = (written, len(lines), tracebacks)
        self._count(Event("stderr", threading.get_ident(), written, len(lines), tracebacks))


class _RootHandler(logging.Handler):
    def __init__(self, capture: OutputCapture) -> None:
        super().__init__(logging.NOTSET)
        self.capture = capture

    def handle(self, record: logging.LogRecord) -> bool:  # no lock needed: counting is locked
        self.capture._record(record)
        last = logging.lastResort
        if last is not None and record.levelno >= last.level and _only_handler(record, self):
            last.handle(record)  # what logging would have printed without us
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        self.capture._record(record)


def _only_handler(record: logging.LogRecord, ours: logging.Handler) -> bool:
    """Whether ``ours`` is the only handler on the record's way up (logging's ``found``)."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(h is not ours for h in logger.handlers):
            return False
        if not logger.propagate:
            return True
        logger = logger.parent
    return True


class _CountingStream:
    """``sys.stderr`` while the capture is installed: forwards, then counts."""

    def __init__(self, original: TextIO, capture: OutputCapture) -> None:
        self.original = original
        self.capture = capture
        self.active = True

    def write(self, text: str) -> int:
        written = self.original.write(text)
        if self.active and isinstance(text, str) and text:
            self.capture._write(text)
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, encoding, isatty, buffer...
        return getattr(self.original, name)


@contextlib.contextmanager
def counting() -> Iterator[Window]:
    """A fresh capture, installed for the block: ``with counting() as w: ...; w.counts``."""
    capture = OutputCapture()
    with capture.window() as window:
        yield window


class LineCounter:
    """Counts a process target's output lines and tracebacks: a listener for
    ``ServerProcess.listeners`` (harness/targets/process.py), called with each line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tracebacks = 0
        self._lines = 0

    def __call__(self, line: str) -> None:
        with self._lock:
            self._lines += 1
            if TRACEBACK_TEXT in line:
                self._tracebacks += 1

    def counts(self) -> Counts:
        with self._lock:
            return Counts(self._tracebacks, self._lines)


@contextlib.contextmanager
def logger_level(name: str, level: int) -> Iterator[logging.Logger]:
    """Set logger ``name`` to ``level`` for the block and restore its own level after.

    For commands that silence the reference server's refusal lines (a fuzz run or the
    real-clients table refuses on purpose): called in-process (tests, notebooks) they
    must not leave the server quiet for whatever runs next in that process.
    """
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield logger
    finally:
        logger.setLevel(before)
