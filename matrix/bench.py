"""``python -m matrix.bench``: how close the matrix runs to the cost of its own traffic.

The floor is the median cost of the least a case can do: one stdlib-ssl TLS
handshake with a client certificate plus one HTTP request, against the same
reference server the matrix uses. The matrix time is the full run of the
chosen profile (``--profile``: standard, 460 cases, or extended), as
results.json records it: from pytest's configure to its finish. The
last line, ``ratio R``, is matrix time / (cases x floor); R near 1.5 means
the harness adds almost nothing beyond the survival probes.
"""

from __future__ import annotations

import argparse
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


def floor_ms(certs: certs_gen.CertSet, samples: int) -> float:
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
    return statistics.median(timings) * 1000


def matrix_seconds(
    workers: int, results: Path, profile: str = "standard", certs_dir: Path | None = None
) -> tuple[float, float, int]:
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
    return data["run"]["duration_s"], wall, len(data["cases"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m matrix.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--samples", type=int, default=200, help="floor requests (default 200)")
    parser.add_argument("-n", "--workers", type=int, default=1, help="pytest-xdist workers")
    parser.add_argument(
        "--profile",
        default="standard",
        choices=("standard", "extended"),
        help="which matrix to time (default standard)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        certs = certs_gen.generate(Path(tmp) / "certs", profile=args.profile)
        floor = floor_ms(certs, args.samples)
        matrix, wall, count = matrix_seconds(
            args.workers, Path(tmp) / "results.json", args.profile, certs.root
        )
    ratio = matrix / (count * floor / 1000)
    mode = "single process" if args.workers <= 1 else f"-n {args.workers}"
    print(f"floor: {floor:.2f} ms (median of {args.samples} handshakes + requests)")
    print(
        f"matrix: {matrix:.2f} s for {count} cases ({args.profile}), {mode} "
        f"(wall clock with startup {wall:.2f} s)"
    )
    print(f"ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
