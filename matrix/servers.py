"""Start each server configuration once, reuse it across its cases, stop it with a deadline.

SPEC section 10: whatever a target does, the run goes on in bounded time.

- ``start()`` runs on a daemon thread, waited for at most ``start_timeout`` seconds
  (30 by default). A start that has not returned by then is abandoned (the thread
  keeps running; if it ever returns a handle, that server is stopped at once) and
  every case of the configuration gets a ``start-timeout`` problem; the pool names
  the abandoned configurations in ``abandoned``.
- ``stop()`` runs on a daemon thread too, waited for at most ``stop_timeout`` seconds
  (10 by default): one that has not returned is a ``stop-timeout`` problem.
- Processes: the harness's children before each start and after its stop are
  compared (harness.processes.LeakCheck); any that appeared and survived the stop
  (plus a grace of ``LEAK_GRACE`` seconds to exit) are killed and reported as a
  ``leaked-process`` problem.

A configuration's server is stopped when its last case has run (``finish``, which the
runner calls with the case it attaches the problems to), so the stop and the leak check
are part of a case; cases arrive grouped by configuration, so a plain run holds one
server at a time. A server evicted by the LRU bound (under pytest-xdist a worker may see a
configuration again later) or still running at ``close`` is stopped the same way, and what
it left is one line on stderr.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from harness.processes import LeakCheck, command_line, kill
from harness.target import ServerHandle, ServerSpec, Target
from harness.targets.process import session_members, wait_gone

from .dimensions import ServerConfig
from .problems import AVAILABILITY, LEAKED_PROCESS, START, START_TIMEOUT, STOP_TIMEOUT, Problem

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
LEAK_GRACE = 1.0  # seconds a process stopped with its server gets to exit before it counts


class ServerStartFailed(Exception):
    """The target could not start this configuration; every case using it fails with this.

    ``error`` is the exception's type name (or ``start-timeout``): the part of the message
    that is the same in every run (the message itself may name ports or temporary paths).
    ``kind`` is the problem kind: ``start`` (it raised) or ``start-timeout``.
    """

    def __init__(self, message: str, error: str, kind: str = START) -> None:
        super().__init__(message)
        self.error = error
        self.kind = kind


@dataclass
class _Server:
    handle: ServerHandle | None
    leaks: LeakCheck
    owned: set[int] = field(default_factory=set)  # pids its start added (for the others)


class ServerPool:
    """At most ``max_live`` servers run at once; the least recently used one is stopped."""

    def __init__(
        self,
        target: Target,
        max_live: int = 6,
        start_timeout: float = START_TIMEOUT_S,
        stop_timeout: float = STOP_TIMEOUT_S,
    ) -> None:
        self.target = target
        self.max_live = max_live
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.abandoned: list[str] = []  # configuration keys whose start() never returned
        self._live: OrderedDict[ServerConfig, _Server] = OrderedDict()
        self._failed: dict[ServerConfig, tuple[str, str, str]] = {}
        self._tried: dict[ServerConfig, LeakCheck] = {}

    def get(self, config: ServerConfig, spec: ServerSpec) -> ServerHandle:
        if config in self._failed:
            raise ServerStartFailed(*self._failed[config])
        if config in self._live:
            self._live.move_to_end(config)
            server = self._live[config]
            assert server.handle is not None
            return server.handle
        while len(self._live) >= self.max_live:
            old, _ = next(iter(self._live.items()))
            self._say(old, self.finish(old))
        leaks = LeakCheck()
        leaks.before()
        self._tried[config] = leaks
        try:
            handle = self._start(config, spec)
        except ServerStartFailed as exc:
            self._failed[config] = (str(exc), exc.error, exc.kind)
            raise
        self._live[config] = _Server(handle, leaks, set(leaks.leaked()))
        return handle

    def _start(self, config: ServerConfig, spec: ServerSpec) -> ServerHandle:
        done = threading.Event()
        box: dict[str, object] = {}
        lock = threading.Lock()

        def work() -> None:
            try:
                handle = self.target.start(spec)
            except BaseException as exc:  # any failure to start is a verdict on the target
                box["error"] = exc
                done.set()
                return
            with lock:
                box["handle"] = handle
                late = box.get("abandoned", False)
            done.set()
            if late:  # nobody waits for it any more: stop it, bounded, quietly
                self._stop(handle)

        thread = threading.Thread(target=work, name="matrix-server-start", daemon=True)
        thread.start()
        if not done.wait(self.start_timeout):
            with lock:
                if "handle" not in box:
                    box["abandoned"] = True
            if box.get("abandoned"):
                self.abandoned.append(config.key)
                message = (
                    f"{self.target.name} could not start {config.key}: start() did not "
                    f"return within {self.start_timeout:g} s (abandoned)"
                )
                raise ServerStartFailed(message, START_TIMEOUT, START_TIMEOUT)
        if "error" in box:
            exc = box["error"]
            assert isinstance(exc, BaseException)
            name = self.target.name
            message = f"{name} could not start {config.key}: {type(exc).__name__}: {exc}"
            raise ServerStartFailed(message, type(exc).__name__)
        handle = box["handle"]
        return handle  # type: ignore[return-value]

    def _stop(self, handle: ServerHandle) -> bool:
        """Stop on a daemon thread, waiting at most stop_timeout; whether it returned.
        A stop() that raises is the target's fault: one line, not a thread's traceback."""

        def work() -> None:
            try:
                handle.stop()
            except Exception as exc:
                text = " ".join(str(exc).split())
                print(
                    f"mtls-matrix: target contract: {self.target.name}: the server handle's "
                    f"stop() raised {type(exc).__name__}: {text}",
                    file=sys.stderr,
                )

        thread = threading.Thread(target=work, name="matrix-server-stop", daemon=True)
        thread.start()
        thread.join(self.stop_timeout)
        return not thread.is_alive()

    def finish(self, config: ServerConfig) -> list[Problem]:
        """Stop ``config``'s server (if it runs) and check what it left: the problems."""
        problems: list[Problem] = []
        server = self._live.pop(config, None)
        leaks = self._tried.pop(config, None)
        if server is not None and server.handle is not None and not self._stop(server.handle):
            problems.append(
                Problem(
                    STOP_TIMEOUT,
                    AVAILABILITY,
                    "stop",
                    f"returned within {self.stop_timeout:g} s",
                    "still running",
                )
            )
        if leaks is not None:
            left = leaks.leaked(self._others())
            left = wait_gone(left, LEAK_GRACE) if left else []
            if left:
                names = sorted({_program(pid) for pid in left})
                kill(left)
                problems.append(
                    Problem(
                        LEAKED_PROCESS,
                        AVAILABILITY,
                        "process",
                        "none left after stop()",
                        f"{len(left)} left: {', '.join(names)}",
                    )
                )
        return problems

    def _others(self) -> set[int]:
        """Pids that belong to servers still running (not leaks of the one stopped)."""
        pids: set[int] = set()
        for server in self._live.values():
            pids |= server.owned
            pid = getattr(server.handle, "pid", None)
            if isinstance(pid, int):
                pids.add(pid)
                pids.update(session_members(pid))
        return pids

    def _say(self, config: ServerConfig, problems: list[Problem]) -> None:
        for problem in problems:
            print(
                f"mtls-matrix: {self.target.name} {config.key}: {problem.kind}: {problem.observed}",
                file=sys.stderr,
            )

    def close(self) -> None:
        for config in [*self._live, *self._tried]:
            self._say(config, self.finish(config))


def _program(pid: int) -> str:
    """The program a process runs (its argv[0]'s name), the same in every run."""
    argv0 = command_line(pid).split(" ")[0]
    return os.path.basename(argv0) or "?"
