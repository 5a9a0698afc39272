"""``python -m harness.reference.bench_cafile``: start-up time with a large client CA file.

Builds a CA file of ``--certificates`` self-signed CA certificates (one EC P-256
key, a distinct subject each, made with cryptography) followed by a trustme CA,
then for each adapter times, in this process, what start-up does: the adapter
(every check of ``policy.check_ca_file`` plus the back-end's trust store) and
``ReferenceServer.start()``, until it listens. Each run is proved by a request
from a client issued by the file's last certificate (not timed). The same is
timed with a file holding only that CA, and the ratio of medians printed, so a
figure survives a machine shared with other work. ``--loaders`` also times the
back-ends' own file loaders alone (the stdlib's ``load_verify_locations(cafile=)``
took 9-12 CPU s for 10,001 certificates: capath.py says why).

Output: one line per adapter and file: median and max of wall and CPU seconds
(CPU: ``time.process_time``, every thread of the process). Exit 2 on bad
arguments, 1 if a run's request is not admitted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .errors import ConfigError
from .server import ADAPTERS, ReferenceServer, make_adapter

DEFAULT_CERTIFICATES = 10_000


def filler_ca_certificates(count: int) -> bytes:
    """``count`` self-signed CA certificates (PEM), subjects ``CN=filler CA <i>``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    parts = []
    for i in range(count):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"filler CA {i}")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(i + 1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        parts.append(cert.public_bytes(serialization.Encoding.PEM))
    return b"".join(parts)


class Files:
    """The server's credential, a client of the last CA, the big file and a one-CA file."""

    def __init__(self, directory: Path, certificates: int, existing: Path | None) -> None:
        ca = trustme.CA()
        server = ca.issue_cert("localhost", "127.0.0.1")
        client = ca.issue_cert("client@example.test")
        self.server_cert = directory / "server.pem"
        self.server_key = directory / "server.key"
        self.client = directory / "client.pem"
        self.ca = directory / "ca.pem"
        server.cert_chain_pems[0].write_to_path(self.server_cert)
        server.private_key_pem.write_to_path(self.server_key)
        client.private_key_and_cert_chain_pem.write_to_path(self.client)
        ca.cert_pem.write_to_path(self.ca)
        fillers = existing.read_bytes() if existing else filler_ca_certificates(certificates)
        self.big = directory / "big-ca.pem"
        self.big.write_bytes(fillers + ca.cert_pem.bytes())
        self.count = self.big.read_bytes().count(b"-----BEGIN CERTIFICATE-----")


def start_once(adapter: str, files: Files, client_ca: Path) -> tuple[float, float]:
    """(wall s, CPU s) from building the adapter to a listening server; then one request."""
    wall, cpu = time.perf_counter(), time.process_time()
    built = make_adapter(
        adapter,
        certificate=str(files.server_cert),
        private_key=str(files.server_key),
        client_CA=str(client_ca),
        client_check="required",
    )
    server = ReferenceServer(built, ("127.0.0.1", 0), numthreads=2).start()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    try:
        _admitted(server.port, files)
    finally:
        server.stop()
    return wall, cpu


def _admitted(port: int, files: Files) -> None:
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(str(files.client))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        status = tls.recv(64)
    if not status.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"bench_cafile: the last CA's client was not admitted: {status!r}")


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _loaders(files: Files) -> list[tuple[str, tuple[float, float]]]:
    from OpenSSL import SSL

    def stdlib() -> None:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=str(files.big))

    def pyopenssl() -> None:
        SSL.Context(SSL.TLS_SERVER_METHOD).load_verify_locations(str(files.big))

    return [
        ("ssl load_verify_locations(cafile=)", _timed(stdlib)),
        ("pyOpenSSL load_verify_locations", _timed(pyopenssl)),
    ]


def _summary(samples: list[tuple[float, float]]) -> str:
    walls, cpus = [s[0] for s in samples], [s[1] for s in samples]
    return (
        f"wall median {statistics.median(walls):.3f} s (max {max(walls):.3f}), "
        f"CPU median {statistics.median(cpus):.3f} s (max {max(cpus):.3f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.reference.bench_cafile", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--certificates",
        type=int,
        default=DEFAULT_CERTIFICATES,
        metavar="N",
        help=f"filler CA certificates before the real CA (default {DEFAULT_CERTIFICATES})",
    )
    parser.add_argument(
        "--fillers",
        type=Path,
        metavar="PEM",
        help="read the filler certificates from this file instead of making them",
    )
    parser.add_argument(
        "--write-fillers",
        type=Path,
        metavar="PEM",
        help="write the filler certificates made to this new file, and exit",
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="timed runs per adapter and file (default 5)"
    )
    parser.add_argument(
        "--adapter",
        action="append",
        choices=sorted(ADAPTERS),
        help="repeatable; default: every adapter",
    )
    parser.add_argument(
        "--loaders",
        action="store_true",
        help="also time the back-ends' own loaders of the big file, once",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 100 or not 0 <= args.certificates <= 30_000:
        parser.error("--runs must be in [1, 100] and --certificates in [0, 30000]")
    if args.write_fillers is not None:
        if args.write_fillers.exists():
            parser.error(f"--write-fillers: {str(args.write_fillers)!r} exists; not overwritten")
        args.write_fillers.write_bytes(filler_ca_certificates(args.certificates))
        return 0
    if args.fillers is not None and not args.fillers.is_file():
        parser.error(f"--fillers: {str(args.fillers)!r} is not a file")
    try:
        return _run(args)
    except ConfigError as exc:  # a file the server refuses (too large, no CA, ...)
        print(f"{parser.prog}: error: the server refused the CA file: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-cafile-") as tmp:
        files = Files(Path(tmp), args.certificates, args.fillers)
        print(
            f"CA file: {files.count} certificates, {files.big.stat().st_size / 1e6:.1f} MB; "
            f"{args.runs} runs each, after one warm-up"
        )
        for adapter in args.adapter or sorted(ADAPTERS):
            medians = {}
            for label, path in (("big", files.big), ("one-CA", files.ca)):
                start_once(adapter, files, path)  # warm-up: imports, caches
                samples = [start_once(adapter, files, path) for _ in range(args.runs)]
                medians[label] = statistics.median(s[0] for s in samples)
                print(f"{adapter:9} {label:6} start-up: {_summary(samples)}")
            print(
                f"{adapter:9} ratio big / one-CA (wall medians): "
                f"{medians['big'] / medians['one-CA']:.1f}"
            )
        if args.loaders:
            for label, (wall, cpu) in _loaders(files):
                print(f"{label}: wall {wall:.3f} s, CPU {cpu:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
