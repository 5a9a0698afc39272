"""A server under test as a child process: started, known ready, stopped, never orphaned.

``start_server`` runs ``python -m MODULE ARGS`` through ``harness.apps.launch``
in a new session (so the server and any workers it forks form one process
group that nothing else belongs to) and returns once the server has said it
is ready:

- **Readiness without sleeping.** The server's stdout and stderr are one pipe.
  A reader thread hands each line to a queue; a waiter thread adds an event
  when the process exits. ``start_server`` blocks on that queue, bounded by a
  deadline (15 s by default), until a line matches the target's readiness
  pattern (which may also carry the real port, for servers that print it when
  given port 0). If the process exits first, or the deadline passes, the
  process group is killed and ``ServerStartError`` is raised with the server's
  last 20 lines of output. (One server, granian, logs its last line just
  before it listens: for it, ``confirm_listening`` adds TCP connects retried
  on ECONNREFUSED, each wait spent on the same event queue, same deadline.)
- **Stopping.** ``stop()`` sends SIGTERM to the process group, waits (bounded),
  then SIGKILLs the group, SIGKILLs it again in case a worker outlived its
  master, and waits (bounded, on pidfds) until no process of the session is
  left.
- **No orphans.** Every live server is registered: an ``atexit`` handler stops
  whatever is still running when the harness exits normally (including after
  Ctrl-C), and a ``weakref.finalize`` kills a server whose handle is dropped
  without ``stop()``. If the harness dies without running either (SIGKILL,
  SIGTERM's default action), the server still goes: the launcher watches a pipe
  whose write end only the harness holds and kills its process group at
  end-of-file, and on Linux it also asks for ``PR_SET_PDEATHSIG`` (SIGTERM)
  when started from the harness's main thread (the kernel ties that signal to
  the creating thread, so it is not requested from other threads). Both are
  set up in the launched process itself, not in a ``preexec_fn`` (which is
  unsafe in a process with threads, as the matrix's server pool is).
- **Ports.** A server that prints its real port is given port 0; for others,
  ``free_port`` binds port 0 on the requested address in the parent, reads the
  port and closes the socket before the server binds it (a small race, retried
  once on "address in use").

Set ``MTLS_MATRIX_SERVER_PIDS`` to a file name to have the pid of every server
started (its process group and session id too) appended to it, one per line:
the tests use it to prove that no process of that session survives.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import queue
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
TAIL_LINES = 20
PIDS_ENV = "MTLS_MATRIX_SERVER_PIDS"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

_LINE = "line"
_EXIT = "exit"


class ServerStartError(RuntimeError):
    """The server exited or never became ready; the message carries its own output."""

    def __init__(self, message: str, output: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.output = list(output)


@dataclass
class ServerProcess:
    """A running server: where it listens, and how to stop it."""

    name: str
    host: str
    port: int
    process: subprocess.Popen
    _lines: collections.deque = field(repr=False)
    _watch_fd: int | None = field(repr=False, default=None)
    _threads: list[threading.Thread] = field(repr=False, default_factory=list)
    _finalizer: weakref.finalize | None = field(repr=False, default=None)
    _stop_lock: threading.Lock = field(repr=False, default_factory=threading.Lock)
    _stopped: bool = field(repr=False, default=False)
    # called with every output line from the reader thread (e.g. the resilience battery's
    # traceback counter); append to it, it is read for each line
    listeners: list = field(repr=False, default_factory=list)

    @property
    def pid(self) -> int:
        """The server's pid; also its process group id and session id."""
        return self.process.pid

    def output(self) -> list[str]:
        """The server's recent output lines (its log), oldest first."""
        return list(self._lines)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the group, wait up to ``timeout``, SIGKILL what is left. Idempotent."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        _unregister(self)
        try:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.process.wait(timeout)
            _signal_group(self.pid, signal.SIGKILL)  # workers that outlived the master
            wait_gone(session_members(self.pid), timeout)
        finally:
            if self._finalizer is not None:
                self._finalizer.detach()
            _close(self._watch_fd)
            self._watch_fd = None
            for thread in self._threads:
                thread.join(1.0)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    name: str,
    module: str,
    args: Sequence[str],
    ready: str | re.Pattern[str],
    *,
    host: str,
    port: int | None = None,
    port_from: str | re.Pattern[str] | None = None,
    confirm_listening: bool = False,
    timeout: float = READY_TIMEOUT,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> ServerProcess:
    """Run ``python -m module args`` and return once a line of its output matches ``ready``.

    For a server given port 0, the real port comes from a group named ``port``
    in ``port_from`` (a line before or at readiness), or in ``ready`` itself;
    otherwise ``port`` is the port the server was told to use.

    ``confirm_listening`` is for a server whose last line comes just *before* it
    calls listen() (granian 2.8 logs "Started worker-1" in the worker, then
    listens; it has no later line and takes no listening fd): after the line,
    TCP connects to the port are retried on ECONNREFUSED, with a backoff from
    1 ms doubling to 50 ms spent waiting on the server's own event queue (so
    its exit ends the wait at once), within the same deadline.
    """
    pattern = re.compile(ready) if isinstance(ready, str) else ready
    port_pattern = re.compile(port_from) if isinstance(port_from, str) else port_from
    if port_pattern is None and "port" in pattern.groupindex:
        port_pattern = pattern
    if port is None and port_pattern is None:
        raise ValueError("either a port or a pattern with a (?P<port>...) group")
    read_fd, write_fd = os.pipe()  # both ends non-inheritable; read_fd is passed explicitly
    main_thread = threading.current_thread() is threading.main_thread()
    argv = [sys.executable, "-u", "-m", "harness.apps.launch", "--watch-fd", str(read_fd)]
    if main_thread:
        argv += ["--death-signal", "--parent", str(os.getpid())]
    argv += ["--", module, *args]
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(read_fd,),
            start_new_session=True,
            env=child_env,
            cwd=cwd,
        )
    except BaseException:
        _close(write_fd)
        raise
    finally:
        _close(read_fd)
    lines: collections.deque[str] = collections.deque(maxlen=200)
    events: queue.Queue = queue.Queue()
    waiting = threading.Event()
    waiting.set()
    server = ServerProcess(name, host, port or 0, process, lines, write_fd)
    server._finalizer = weakref.finalize(server, _kill_group, process.pid, write_fd)
    server._finalizer.atexit = False  # at exit, _stop_all_at_exit stops it properly
    _register(server)
    _record_pid(process.pid)
    server._threads = [
        _thread(
            f"{name}-output", _read_lines, process.stdout, lines, events, waiting, server.listeners
        ),
        _thread(f"{name}-wait", _wait_exit, process, events),
    ]
    deadline = time.monotonic() + timeout
    try:
        found_port = _await_ready(server, pattern, port_pattern, events, deadline, timeout)
        if found_port is not None:
            server.port = found_port
        if confirm_listening:
            _confirm_listening(server, events, deadline, timeout)
    except BaseException:
        server.stop(timeout=1.0)
        raise
    finally:
        waiting.clear()  # from now on lines only go to the deque (the server's log)
    return server


def _await_ready(
    server: ServerProcess,
    pattern: re.Pattern[str],
    port_pattern: re.Pattern[str] | None,
    events: queue.Queue,
    deadline: float,
    timeout: float,
) -> int | None:
    port = None
    while True:
        remaining = deadline - time.monotonic()
        try:
            kind, value = events.get(timeout=remaining) if remaining > 0 else (None, None)
        except queue.Empty:
            kind, value = None, None
        if kind == _LINE:
            if port_pattern is not None and port is None:
                found = port_pattern.search(value)
                if found and found.group("port"):
                    port = int(found.group("port"))
            if pattern.search(value) and (port_pattern is None or port is not None):
                return port
            continue
        if kind == _EXIT:
            _fail(server, f"exited with status {value} before it was ready")
        _fail(server, f"did not become ready within {timeout:g} s")


def _confirm_listening(
    server: ServerProcess, events: queue.Queue, deadline: float, timeout: float
) -> None:
    address = (connect_address(server.host), server.port)
    delay = 0.001
    while True:
        try:
            socket.create_connection(address, timeout=max(deadline - time.monotonic(), 0.1)).close()
            return
        except ConnectionRefusedError:
            pass
        except OSError as exc:
            _fail(server, f"does not accept connections on {address}: {exc}")
        if time.monotonic() + delay > deadline:
            _fail(server, f"did not listen on {address} within {timeout:g} s")
        try:
            kind, value = events.get(timeout=delay)
        except queue.Empty:
            kind = None
        if kind == _EXIT:
            _fail(server, f"exited with status {value} before it listened")
        delay = min(delay * 2, 0.05)


def _fail(server: ServerProcess, why: str) -> NoReturn:
    server.stop(timeout=1.0)  # also joins the reader, so the last lines are in
    tail = server.output()[-TAIL_LINES:]
    shown = "\n".join(f"    {line}" for line in tail) or "    (no output)"
    raise ServerStartError(f"{server.name} {why}; its last output:\n{shown}", tail)


def connect_address(bind: str) -> str:
    """Where a client on this host reaches a server bound to ``bind``."""
    if bind in ("0.0.0.0", ""):
        return "127.0.0.1"
    if bind == "::":
        return "::1"
    infos = socket.getaddrinfo(bind, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return infos[0][4][0]


def _read_lines(
    stream, lines: collections.deque, events: queue.Queue, waiting, listeners: list
) -> None:
    with contextlib.suppress(ValueError, OSError):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line)
            for listener in listeners:
                listener(line)
            if waiting.is_set():
                events.put((_LINE, line))
    with contextlib.suppress(OSError):
        stream.close()


def _wait_exit(process: subprocess.Popen, events: queue.Queue) -> None:
    events.put((_EXIT, process.wait()))


def _thread(name: str, target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _kill_group(pgid: int, watch_fd: int) -> None:
    """The finaliser: a handle dropped without stop() (or left at exit) takes its server along."""
    _signal_group(pgid, signal.SIGKILL)
    _close(watch_fd)


def _record_pid(pid: int) -> None:
    path = os.environ.get(PIDS_ENV)
    if path:
        with open(path, "a", encoding="ascii") as f:
            f.write(f"{pid}\n")


# -- the registry of live servers --------------------------------------------------------

_live: dict[int, weakref.ref] = {}
_live_lock = threading.Lock()


def _register(server: ServerProcess) -> None:
    with _live_lock:
        _live[server.pid] = weakref.ref(server)


def _unregister(server: ServerProcess) -> None:
    with _live_lock:
        _live.pop(server.pid, None)


def live_servers() -> list[ServerProcess]:
    with _live_lock:
        refs = list(_live.values())
    return [s for s in (r() for r in refs) if s is not None]


@atexit.register
def _stop_all_at_exit() -> None:
    for server in live_servers():
        server.stop(timeout=2.0)


# -- ports and processes ------------------------------------------------------------------


def free_port(host: str) -> int:
    """A port that was free on ``host`` a moment ago (bind port 0, read it, close)."""
    infos = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind(address)
        return sock.getsockname()[1]


def session_members(sid: int) -> list[int]:
    """Pids of live (non-zombie) processes in session ``sid``; Linux /proc only."""
    members = []
    proc = Path("/proc")
    if not proc.is_dir():
        return members
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session ...": comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3 and fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait (bounded, no polling) until these processes have exited; those still running.

    Uses pidfds (Linux >= 5.3): a pidfd becomes readable when its process exits,
    whoever its parent is. Without pidfd support nothing is waited for.
    """
    fds: dict[int, int] = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            continue
        except (AttributeError, OSError):
            break
    deadline = time.monotonic() + timeout
    try:
        while fds:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select(list(fds), [], [], remaining)
            for fd in ready:
                os.close(fd)
                del fds[fd]
        return sorted(fds.values())
    finally:
        for fd in fds:
            os.close(fd)


def any_alive(sids: Iterable[int]) -> dict[int, list[int]]:
    """For each session id, the processes still in it (only sessions with members)."""
    found = {}
    for sid in sids:
        members = session_members(sid)
        if members:
            found[sid] = members
    return found
