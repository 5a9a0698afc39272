"""The good client: GET / over a new TLS connection, one deadline for the whole request.

Written on ``ssl`` and ``socket`` rather than requests, because the verdict needs one
deadline for the whole request (connect, handshake, response); requests' timeout
applies to each socket operation separately.
"""

from __future__ import annotations

import re
import socket
import ssl
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import certs_gen

from ..dimensions import TRUST_ROOT
from .common import GOOD_CLIENT, SERVER_NAME, round_to


@dataclass(frozen=True)
class Sample:
    """One good request: how long it took (ms), and whether it was served (HTTP 200)."""

    ms: float
    ok: bool
    timed_out: bool = False
    detail: str = ""


def good_context(certs: certs_gen.CertSet) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs[TRUST_ROOT].cert))
    context.load_cert_chain(str(certs[GOOD_CLIENT].key_and_chain))
    return context


def good_request(context: ssl.SSLContext, address: tuple[str, int], timeout: float) -> Sample:
    """GET / over a new TLS connection, the whole request within ``timeout`` seconds."""
    started = time.perf_counter()
    deadline = started + timeout

    def remaining() -> float:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise TimeoutError("deadline")
        return left

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        with socket.create_connection(address, timeout=remaining()) as raw:
            raw.settimeout(remaining())
            with context.wrap_socket(
                raw, server_hostname=SERVER_NAME, do_handshake_on_connect=False
            ) as tls:
                tls.do_handshake()
                tls.settimeout(remaining())
                tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                response = _read_response(tls, remaining)
    except TimeoutError:
        return Sample(elapsed(), False, True, "timed out")
    except (OSError, ValueError) as exc:
        return Sample(elapsed(), False, False, f"{type(exc).__name__}: {exc}"[:200])
    status = response.split(b" ", 2)[1:2]
    if status != [b"200"]:
        return Sample(elapsed(), False, False, f"response {response[:40]!r}")
    return Sample(elapsed(), True)


def _read_response(tls: ssl.SSLSocket, remaining: Callable[[], float]) -> bytes:
    """The response's bytes: to its Content-Length, or to the end of the stream."""
    data = b""
    while True:
        tls.settimeout(remaining())
        chunk = tls.recv(65536)
        if not chunk:
            return data
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            found = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
            if found and len(body) >= int(found.group(1)):
                return data
        if len(data) > 1 << 20:
            raise ValueError("response over 1 MiB")


def good_requests(
    context: ssl.SSLContext, address: tuple[str, int], count: int, timeout: float
) -> list[Sample]:
    """Up to ``count`` sequential good requests; stops after the first that timed out."""
    samples = []
    for _ in range(count):
        sample = good_request(context, address, timeout)
        samples.append(sample)
        if sample.timed_out:
            break
    return samples


def summarize(samples: Sequence[Sample]) -> dict[str, Any]:
    """``{"n", "median_ms", "max_ms", "failed"}``; a timed-out request counts at its timeout."""
    times = [s.ms for s in samples]
    return {
        "n": len(samples),
        "median_ms": round_to(statistics.median(times)) if times else None,
        "max_ms": round_to(max(times)) if times else None,
        "failed": sum(not s.ok for s in samples),
    }
