"""``python -m matrix.bench``: how close the matrix runs to the cost of its own traffic.

The floor is the median cost of the least a case can do: one stdlib-ssl TLS
handshake with a client certificate plus one HTTP request, against the same
reference server the matrix uses. The matrix time is the full run of the
chosen profile (``--profile``: standard, 460 cases, or extended), as
results.json records it: from pytest's configure to its finish (with ``-n``,
the controller's: the workers' start-up is in it). ``ratio R`` is matrix time /
(cases x floor), one line per mode.

By default one run times both modes the issue-23 goal names, single process and
``-n 2``, and measures the floor twice, before the first matrix run and after the
last, taking the median of all its samples: on a shared machine whose speed
drifts, ratios from one run are comparable, figures from different runs are not.
Each mode's line also splits the matrix time into the cases' own time (the sum of
``duration_ms``: requests, survival probes, server starts and stops, checks) and
the rest (pytest's collection and per-test hooks, xdist's workers starting).
"""

from __future__ import annotations

import json
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import certs_gen
from harness.reference import ReferenceServer, make_adapter
from harness.usage import OneLineParser


def floor_samples(certs: certs_gen.CertSet, samples: int) -> list[float]:
    """``samples`` timings (seconds) of one handshake + request, after ten not counted."""
    adapter = make_adapter(
        "builtin",
        certificate=str(certs["server"].cert),
        private_key=str(certs["server"].key),
        client_CA=str(certs["ca"].cert),
        client_check="required",
    )
    context = ssl.create_default_context(cafile=str(certs["ca"].cert))
    context.load_cert_chain(str(certs["localhost"].key_and_chain))
    with ReferenceServer(adapter, ("127.0.0.1", 0)) as server:
        request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n\r\n"
        timings = []
        for i in range(samples + 10):  # the first ten warm up caches and threads
            started = time.perf_counter()
            with (
                socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.sendall(request.encode())
                response = b""
                for _ in range(64):  # bounded: the answer is a few hundred bytes
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    response += chunk
            if not response.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"floor request failed: {response[:80]!r}")
            if i >= 10:
                timings.append(time.perf_counter() - started)
    return timings


def matrix_seconds(
    workers: int, results: Path, profile: str = "standard", certs_dir: Path | None = None
) -> tuple[float, float, int, float]:
    """(matrix s, wall clock s with start-up, cases, sum of the cases' own s)."""
    command = [sys.executable, "-m", "pytest", "matrix", "-q", "-p", "no:cacheprovider"]
    command += ["--results", str(results), "--profile", profile]
    if certs_dir is not None:
        command += ["--certs-dir", str(certs_dir)]
    if workers > 1:
        command += ["-n", str(workers)]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise SystemExit(f"matrix run failed (exit {proc.returncode}):\n{tail}")
    data = json.loads(results.read_text())
    in_cases = sum(c.get("duration_ms") or 0.0 for c in data["cases"]) / 1000
    return data["run"]["duration_s"], wall, len(data["cases"]), in_cases


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m matrix.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="floor requests (default 200)")
    parser.add_argument(
        "-n",
        "--workers",
        type=int,
        action="append",
        help="pytest-xdist workers, 1 for a single process; repeat for several modes "
        "(default: 1 and 2)",
    )
    parser.add_argument(
        "--profile",
        default="standard",
        choices=("standard", "extended"),
        help="which matrix to time (default standard)",
    )
    args = parser.parse_args(argv)
    modes = args.workers or [1, 2]
    if args.samples < 1 or any(n < 1 for n in modes):
        parser.error("--samples and -n take whole numbers of at least 1")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        certs = certs_gen.generate(Path(tmp) / "certs", profile=args.profile)
        timings = floor_samples(certs, args.samples)
        for workers in modes:
            results = Path(tmp) / f"results-{workers}.json"
            runs.append((workers, *matrix_seconds(workers, results, args.profile, certs.root)))
        timings += floor_samples(certs, args.samples)
    floor = statistics.median(timings) * 1000
    print(f"floor: {floor:.2f} ms (median of {len(timings)} handshakes + requests, half before")
    print("       the matrix runs and half after)")
    for workers, matrix, wall, count, in_cases in runs:
        mode = "single process" if workers <= 1 else f"-n {workers}"
        ratio = matrix / (count * floor / 1000)
        print(
            f"matrix: {matrix:.2f} s for {count} cases ({args.profile}), {mode} "
            f"(wall clock with startup {wall:.2f} s; in the cases {in_cases:.2f} s"
            + (f" across {workers} workers" if workers > 1 else "")
            + ")"
        )
        print(f"ratio {ratio:.2f} ({mode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
