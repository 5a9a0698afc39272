"""``python -m matrix.resilience.apart``: the reference server, its load and a good client
in separate processes, to see where a stall's time goes.

The battery (``python -m matrix.resilience``) runs the reference server in its own
process; this tool starts it as a child (``serve``), loads it from other children
(one of the battery's kinds through :class:`harness.hostile.remote.RemoteAttack`,
``--handshakes K`` processes each doing full TLS handshakes with a client certificate
in a loop, or ``--burn K`` processes that only burn CPU: the baseline), and times
the battery's good client from this process meanwhile. It prints one JSON line: the
good client's median and max alone and during the load, the server's CPU share, each
gate thread's CPU seconds (``time.thread_time`` at the gate's end), the attackers'
process's CPU seconds and, for a
handshake flood, handshakes per second and the clients' CPU per handshake.

``--gates N`` puts N gates in front of the workers (round robin over new
connections; a kept-alive connection stays with its gate): a prototype for the
measurement "does handshake CPU need more than one gate thread?" (issue 20), not a
server option. docs/resilience.md, "One gate thread", has the figures and the decision.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import certs_gen
from harness import hostile
from harness.hostile.remote import ROOT, RemoteAttack

from .common import BIND, CAP_S, GOOD_CLIENT, SERVER_CERT
from .good import good_context, good_requests

BURN = (
    "import sys, time\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end: pass\n"
)


class GatePool:
    """N gates as one (the prototype ``--gates``): the server calls submit, census, stop."""

    def __init__(self, gates: list[Any]) -> None:
        self.gates = gates
        self.max_waiting = gates[0].max_waiting
        self._next = 0

    def start(self) -> None:
        for gate in self.gates:
            gate.start()

    def stop(self) -> None:
        for gate in self.gates:
            gate.stop()

    def submit(self, conn: Any, tls: Any, state: str) -> None:
        gate = tls.gate if tls.gate in self.gates else None
        if gate is None:
            self._next += 1
            gate = self.gates[self._next % len(self.gates)]
        gate.submit(conn, tls, state)

    def census(self) -> collections.Counter:
        total: collections.Counter = collections.Counter()
        for gate in self.gates:
            total.update(gate.census())
        return total


def serve(adapter: str, gates: int, certs_dir: str) -> int:
    """The server child: prints its port, serves until stdin ends, prints gate CPU seconds."""
    from harness.reference import ReferenceServer, make_adapter
    from harness.reference.gate import Gate

    cpu: list[float] = []
    run = Gate._run

    def timed_run(self: Gate) -> None:
        try:
            run(self)
        finally:
            cpu.append(time.thread_time())

    Gate._run = timed_run  # type: ignore[method-assign]
    certs = certs_gen.load(certs_dir)
    server = ReferenceServer(
        make_adapter(
            adapter,
            certificate=str(certs[SERVER_CERT].cert),
            private_key=str(certs[SERVER_CERT].key),
            client_CA=str(certs["ca"].cert),
            client_check="required",
        ),
        (BIND, 0),
    )
    if gates > 1:
        first = server.gate
        server.gate = GatePool(
            [first]
            + [
                Gate(
                    first._hand_off,
                    request_timeout=first.request_timeout,
                    keepalive_timeout=first.keepalive_timeout,
                    max_body=first.max_body,
                    max_waiting=first.max_waiting,
                )
                for _ in range(gates - 1)
            ]
        )
    server.start()
    print(server.port, flush=True)
    sys.stdin.read()  # until the parent closes it
    server.stop()
    print(json.dumps(sorted(round(c, 2) for c in cpu)), flush=True)
    return 0


def handshakes(port: int, seconds: float, certs_dir: str) -> int:
    """A handshake-flood child: full handshakes with a client certificate; prints the count
    and the CPU seconds they took (its start-up not included)."""
    certs = certs_gen.load(certs_dir)
    context = ssl.create_default_context(cafile=str(certs["ca"].cert))
    context.load_cert_chain(str(certs[GOOD_CLIENT].key_and_chain))
    end, count, cpu = time.monotonic() + seconds, 0, time.process_time()
    while time.monotonic() < end:
        try:
            with (
                socket.create_connection((BIND, port), timeout=CAP_S) as raw,
                context.wrap_socket(raw, server_hostname="localhost"),
            ):
                count += 1
        except OSError:
            pass
    print(count, time.process_time() - cpu, flush=True)
    return 0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child(*args: str) -> list[str]:
    return [sys.executable, "-m", "matrix.resilience.apart", *args]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement (see the module docstring); the server's log goes to a file."""
    with tempfile.TemporaryFile("w+") as server_log:
        return _measure(args, server_log)


def _measure(args: argparse.Namespace, server_log: Any) -> dict[str, Any]:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
    )
    server = subprocess.Popen(
        _child("serve", args.adapter, str(args.gates), args.certs_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=server_log,
        text=True,
        env=env,
    )
    loads: list[subprocess.Popen[str]] = []
    attack: RemoteAttack | None = None
    try:
        assert server.stdout is not None and server.stdin is not None
        port = int(server.stdout.readline())
        context = good_context(certs_gen.load(args.certs_dir))
        address = (BIND, port)
        good_requests(context, address, 2, CAP_S)  # warm-up
        alone = good_requests(context, address, 12, CAP_S)
        cpu0, t0 = _cpu_s(server.pid), time.monotonic()
        if args.kind:
            attack = RemoteAttack(
                hostile.KINDS[args.kind],
                address,
                args.attackers,
                credential=certs_gen.load(args.certs_dir)[GOOD_CLIENT].key_and_chain,
            ).start()
            attack.wait_in_position(1.0)
        for _ in range(args.handshakes):
            loads.append(
                subprocess.Popen(
                    _child("handshakes", str(port), repr(args.seconds), args.certs_dir),
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
        for _ in range(args.burn):
            loads.append(subprocess.Popen([sys.executable, "-c", BURN, repr(args.seconds)]))
        during = good_requests(context, address, args.requests, CAP_S)
        while args.handshakes and time.monotonic() < t0 + args.seconds - 0.5 and len(during) < 40:
            during += good_requests(context, address, 1, CAP_S)  # through the whole flood
        reports = [(p.stdout.readline() or "0 0").split() for p in loads if p.stdout is not None]
        count = sum(int(n) for n, _ in reports)
        clients_cpu = sum(float(c) for _, c in reports)
        for process in loads:
            process.wait(args.seconds + CAP_S)
        wall, server_cpu = time.monotonic() - t0, _cpu_s(server.pid) - cpu0
        attackers_cpu = None
        if attack is not None:
            assert attack.process is not None
            attackers_cpu = _cpu_s(attack.process.pid)
            attack.release()
        server.stdin.close()
        gate_cpu = json.loads(server.stdout.readline() or "[]")
        server.wait(CAP_S)
    finally:
        for process in loads:
            if process.poll() is None:
                process.kill()
                process.wait()
        if attack is not None:
            attack.release()
        if server.poll() is None:
            server.kill()
            server.wait()
        server_log.seek(0)
        log = server_log.read()
    out: dict[str, Any] = {
        "adapter": args.adapter,
        "gates": args.gates,
        "load": f"{args.attackers} {args.kind}"
        if args.kind
        else f"{args.handshakes} handshake clients"
        if args.handshakes
        else f"{args.burn} CPU burners",
        "alone_median_ms": round(statistics.median(s.ms for s in alone), 1),
        "during_median_ms": round(statistics.median(s.ms for s in during), 1),
        "during_max_ms": round(max(s.ms for s in during)),
        "during_n": len(during),
        "failed": sum(not s.ok for s in during),
        "server_cpu_share": round(server_cpu / wall, 2),
        "gate_cpu_s": gate_cpu,
        "server_log_lines": log.count("\n"),
        "tracebacks": log.count("Traceback (most recent call last)"),
    }
    if args.handshakes:
        out["handshakes_per_s"] = round(count / wall)
        out["client_cpu_ms_per_handshake"] = round(clients_cpu * 1000 / max(count, 1), 2)
        out["gate_cpu_ms_per_handshake"] = round(sum(gate_cpu) * 1000 / max(count, 1), 2)
    if attack is not None:
        out["attacker_errors"] = attack.errors()
        out["attackers_cpu_s"] = attackers_cpu  # the attackers' process, start-up included
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"] and len(argv) == 4:
        return serve(argv[1], int(argv[2]), argv[3])
    if argv[:1] == ["handshakes"] and len(argv) == 4:
        return handshakes(int(argv[1]), float(argv[2]), argv[3])
    parser = argparse.ArgumentParser(
        prog="python -m matrix.resilience.apart", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--adapter", choices=("builtin", "pyopenssl"), default="builtin")
    parser.add_argument("--gates", type=int, default=1, help="gate threads (prototype; default 1)")
    load = parser.add_mutually_exclusive_group(required=True)
    load.add_argument("--kind", choices=sorted(hostile.KINDS), help="attack with this battery kind")
    load.add_argument(
        "--handshakes", type=int, default=0, metavar="K", help="K processes of full handshakes"
    )
    load.add_argument(
        "--burn", type=int, default=0, metavar="K", help="K CPU-burning processes (baseline)"
    )
    parser.add_argument(
        "--attackers", type=int, default=64, help="attackers of --kind (default 64)"
    )
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="how long handshake clients or burners run"
    )
    parser.add_argument(
        "--requests", type=int, default=10, help="good requests during the load (default 10)"
    )
    parser.add_argument("--certs-dir", default="build/matrix-certs")
    args = parser.parse_args(argv)
    if args.gates < 1 or args.attackers < 1 or args.seconds <= 0 or args.requests < 1:
        parser.error("--gates, --attackers, --seconds and --requests must be positive")
    if not Path(args.certs_dir, "manifest.json").is_file():
        parser.error(
            f"no certificate set in {args.certs_dir} (python -m certs_gen {args.certs_dir})"
        )
    print(json.dumps(measure(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
