"""The matrix's HTTPS client, and how one attempt is classified (SPEC section 4).

A ``TLSClient`` holds one requests session whose TLS context is built once per
(trust root, client credential), so running hundreds of cases does not reload
PEM files. Classification looks only at exception types and OpenSSL's reason
codes (stable identifiers such as ``TLSV13_ALERT_CERTIFICATE_REQUIRED``), never
at message text; the text is kept for people to read.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

OK = "ok"
REJECTED = "rejected"
SERVER_CERT_REJECTED = "server-cert-rejected"
ERROR = "error"
SKIPPED = "skipped"

DEFAULT_TIMEOUT = 5.0

_ALERT_PREFIXES = ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_")
_EOF_REASONS = {"UNEXPECTED_EOF_WHILE_READING", "EOF_OCCURRED_IN_VIOLATION_OF_PROTOCOL"}


@dataclass(frozen=True)
class Attempt:
    outcome: str
    detail: str = ""
    status: int | None = None
    environ: dict[str, Any] = field(default_factory=dict)


class _FixedContextAdapter(HTTPAdapter):
    """Hands urllib3 our prepared SSLContext and stops requests from adding its own
    trust store (it would load certifi into the context on every connection)."""

    def __init__(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        self._context = context
        self._server_hostname = server_hostname
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        if self._server_hostname:
            kwargs["server_hostname"] = self._server_hostname
            kwargs["assert_hostname"] = self._server_hostname
        super().init_poolmanager(*args, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        return None


class TLSClient:
    """GET over a fresh TLS connection each time, with a fixed trust root and credential."""

    def __init__(
        self,
        trust: str | Path,
        credential: str | Path | None = None,
        *,
        server_hostname: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tls: str | None = None,
    ) -> None:
        context = ssl.create_default_context(cafile=str(trust))
        if tls is not None:  # pin one version: "1.2" or "1.3"
            version = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[tls]
            context.minimum_version = context.maximum_version = version
        if credential is not None:
            context.load_cert_chain(str(credential))
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or netrc from the environment
        self.session.mount("https://", _FixedContextAdapter(context, server_hostname))

    def get(self, url: str) -> Attempt:
        try:
            response = self.session.get(
                url, timeout=self.timeout, headers={"Connection": "close"}, allow_redirects=False
            )
        except requests.RequestException as exc:
            return classify_exception(exc)
        if response.status_code != 200:
            return Attempt(ERROR, f"HTTP {response.status_code}", response.status_code)
        try:
            body = response.json()
        except ValueError:
            return Attempt(ERROR, "HTTP 200 with a body that is not JSON", 200)
        if not isinstance(body, dict):
            return Attempt(ERROR, "HTTP 200 with JSON that is not an object", 200)
        return Attempt(OK, "", 200, body)

    def close(self) -> None:
        self.session.close()


def classify_exception(exc: BaseException) -> Attempt:
    """Map a failed request to rejected / server-cert-rejected / error."""
    text = f"{type(exc).__name__}: {exc}"
    chain = list(_causes(exc))
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return Attempt(SERVER_CERT_REJECTED, text)
    if any(isinstance(e, (TimeoutError, requests.Timeout)) for e in chain):
        return Attempt(ERROR, text)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return Attempt(ERROR, text)  # nothing listening: not a verdict on the client
    for e in chain:
        if isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return Attempt(REJECTED, text)
        if isinstance(e, ssl.SSLError):
            reason = e.reason or ""
            if reason.startswith(_ALERT_PREFIXES) or reason in _EOF_REASONS:
                return Attempt(REJECTED, text)
            return Attempt(ERROR, text)
    if any(
        isinstance(e, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError))
        for e in chain
    ):
        return Attempt(REJECTED, text)
    if any(type(e).__name__ == "RemoteDisconnected" for e in chain):
        return Attempt(REJECTED, text)  # closed before any HTTP response
    return Attempt(ERROR, text)


def _causes(exc: BaseException, limit: int = 32):
    """The exception, its causes/contexts and exceptions carried in args or .reason."""
    seen: set[int] = set()
    stack = [exc]
    while stack and len(seen) < limit:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested.extend(a for a in current.args if isinstance(a, BaseException))
        stack.extend(n for n in nested if isinstance(n, BaseException))
