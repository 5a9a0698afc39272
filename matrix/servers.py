"""Start each server configuration once and reuse it across the cases that share it."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict

from harness.target import ServerHandle, ServerSpec, Target

from .dimensions import ServerConfig


class ServerStartFailed(Exception):
    """The target could not start this configuration; every case using it fails with this.

    ``error`` is the exception's type name: the part of the message that is the same in
    every run (the message itself may name ports or temporary paths)."""

    def __init__(self, message: str, error: str) -> None:
        super().__init__(message)
        self.error = error


class ServerPool:
    """At most ``max_live`` servers run at once; the least recently used one is stopped.

    Cases arrive grouped by configuration, so in a plain run each server is
    started exactly once; under xdist the LRU bound keeps a worker from
    accumulating dozens of idle servers. Stops run on background threads so
    the next case does not wait for a server to wind down.
    """

    def __init__(self, target: Target, max_live: int = 6) -> None:
        self.target = target
        self.max_live = max_live
        self._live: OrderedDict[ServerConfig, ServerHandle] = OrderedDict()
        self._failed: dict[ServerConfig, tuple[str, str]] = {}
        self._stopping: list[threading.Thread] = []

    def get(self, config: ServerConfig, spec: ServerSpec) -> ServerHandle:
        if config in self._failed:
            raise ServerStartFailed(*self._failed[config])
        if config in self._live:
            self._live.move_to_end(config)
            return self._live[config]
        while len(self._live) >= self.max_live:
            _, old = self._live.popitem(last=False)
            self._stop_in_background(old)
        try:
            handle = self.target.start(spec)
        except Exception as exc:  # any failure to start is a verdict on the target
            message = (
                f"{self.target.name} could not start {config.key}: {type(exc).__name__}: {exc}"
            )
            self._failed[config] = (message, type(exc).__name__)
            raise ServerStartFailed(message, type(exc).__name__) from None
        self._live[config] = handle
        return handle

    def _stop_in_background(self, handle: ServerHandle) -> None:
        thread = threading.Thread(
            target=self._stop, args=(handle,), name="matrix-server-stop", daemon=True
        )
        thread.start()
        self._stopping.append(thread)

    def _stop(self, handle: ServerHandle) -> None:
        """A stop() that raises is the target's fault: one line, not a thread's traceback."""
        try:
            handle.stop()
        except Exception as exc:
            text = " ".join(str(exc).split())
            print(
                f"mtls-matrix: target contract: {self.target.name}: the server handle's "
                f"stop() raised {type(exc).__name__}: {text}",
                file=sys.stderr,
            )

    def close(self, timeout: float = 10.0) -> None:
        while self._live:
            self._stop_in_background(self._live.popitem()[1])
        for thread in self._stopping:
            thread.join(timeout)
        self._stopping.clear()
