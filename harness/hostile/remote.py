"""An :class:`~harness.hostile.attacker.Attack` in a child process, driven over a pipe.

Attackers on threads share their process's CPU scheduling and GIL with whatever else
runs there. For a server that runs in the measuring process (the reference server as
an in-process target), 64 attacking threads would compete with the server's own
threads for the GIL, which no remote attacker can do: each of the stdlib's OpenSSL
callbacks (41 per handshake, measured: ``SSLContext._msg_callback`` with client
certificates, TLS 1.3) waits for the GIL behind them, and the server's handshakes slow
down for a reason that is the test's, not the server's. Measured (3 December 2026,
loaded 2-core machine; server and 64 KeyUpdate floods in one process, good client in
another): a good request waited 10 s on builtin and 3.3 s on pyopenssl; with the
attackers in a child process, the battery's largest good request was 11 and 12 ms
(docs/resilience.md, "The 64-flood rows").

:class:`RemoteAttack` has :class:`Attack`'s interface (``start``, ``wait_in_position``,
``wait_done_sending``, ``release``, ``errors``). The child (``python -m
harness.hostile.remote``) runs the same :class:`Attack` and answers one line per
command on stdout: ``position SECONDS`` and ``sending SECONDS`` (a count), ``release
SECONDS`` (the errors as JSON, then it exits). End of its input releases it too, so
a parent that dies takes its attackers with it. Every wait on the child is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

from .attacker import HOLD_S, PACE_S, Attack
from .kinds import KINDS

STARTUP_S = 30.0  # the child's imports and its attackers' threads, on a loaded machine
ROOT = Path(__file__).resolve().parents[2]  # the project (not installed: run from its root)


class RemoteError(RuntimeError):
    """The child process did not answer (it died, or was not started)."""


class RemoteAttack:
    """``count`` attackers of one kind in a child process, until :meth:`release`."""

    def __init__(
        self,
        kind,
        address: tuple[str, int],
        count: int,
        *,
        credential: Path | None = None,
        pace_s: float = PACE_S,
        hold_s: float = HOLD_S,
    ) -> None:
        self.kind = kind
        self.count = count
        self.args = [
            kind.name,
            address[0],
            str(address[1]),
            str(count),
            str(credential) if credential is not None else "-",
            repr(pace_s),
            repr(hold_s),
        ]
        self.process: subprocess.Popen[str] | None = None
        self._errors: dict[str, int] = {}
        self._released = False

    def start(self) -> RemoteAttack:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.hostile.remote", *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        if self._reply(STARTUP_S) != "started":
            self._stop()
            raise RemoteError(f"the attackers' process did not start ({self.kind.name})")
        return self

    def _ask(self, command: str, timeout: float) -> str:
        if self.process is None or self.process.poll() is not None:
            raise RemoteError("the attackers' process is gone")
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(f"{command} {timeout!r}\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise RemoteError("the attackers' process is gone") from None
        return self._reply(timeout + STARTUP_S)

    def _reply(self, timeout: float) -> str:
        """One line from the child, waiting at most ``timeout`` seconds ("" if none)."""
        assert self.process is not None and self.process.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return ""
        return self.process.stdout.readline().strip()

    def wait_in_position(self, timeout: float) -> int:
        """Wait (bounded) until every attacker is in position; how many are."""
        answer = self._ask("position", timeout)
        return int(answer) if answer.isdigit() else 0

    def wait_done_sending(self, timeout: float) -> int:
        """Wait (bounded) until no attacker has anything more to send; how many have not."""
        answer = self._ask("sending", timeout)
        return int(answer) if answer.isdigit() else self.count

    def release(self, timeout: float = 10.0) -> None:
        """Let every attacker go, wait (bounded) for the child to end, and keep its errors."""
        if self._released:
            return
        self._released = True
        with contextlib.suppress(RemoteError, ValueError):
            answer = self._ask("release", timeout)
            self._errors = {str(k): int(v) for k, v in json.loads(answer or "{}").items()}
        self._stop()

    def _stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(STARTUP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STARTUP_S)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def errors(self) -> dict[str, int]:
        return dict(self._errors)


def main(argv: list[str]) -> int:
    """The child: run the attack, answer the parent's commands, one line each."""
    name, host, port, count, credential, pace_s, hold_s = argv
    attack = Attack(
        KINDS[name],
        (host, int(port)),
        int(count),
        credential=None if credential == "-" else Path(credential),
        pace_s=float(pace_s),
        hold_s=float(hold_s),
    ).start()
    try:
        print("started", flush=True)
        for line in sys.stdin:  # ends with the parent's pipe
            command, _, value = line.partition(" ")
            timeout = float(value or 0)
            if command == "position":
                print(attack.wait_in_position(timeout), flush=True)
            elif command == "sending":
                print(attack.wait_done_sending(timeout), flush=True)
            elif command == "release":
                attack.release(timeout)
                print(json.dumps(attack.errors()), flush=True)
                return 0
    finally:
        attack.release()
    return 0


def _child(argv: list[str]) -> int:
    """``main`` as a child process: the parent alone decides when it ends.

    SIGINT is ignored: a Ctrl-C at a terminal reaches the whole process group, and the
    parent answers it by closing this child's stdin (the loop above ends, the attack is
    released). A parent gone before an answer is written (interrupted) is a broken
    pipe: the attack is released on the way out and nothing is printed, so the
    parent's one interrupted line stays the only one on the terminal.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return main(argv)
    except BrokenPipeError:
        # stdout's buffer would fail again at exit: point it at /dev/null first
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
