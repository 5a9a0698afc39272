"""The matrix's HTTPS client, and how one attempt is classified (SPEC sections 4 and 6).

A ``TLSClient`` holds one requests session whose TLS context is built once per
(trust root, client credential, TLS version), so running hundreds of cases does
not reload PEM files. Classification looks only at exception types and OpenSSL's
reason codes (stable identifiers such as ``TLSV13_ALERT_CERTIFICATE_REQUIRED``),
never at message text; the text is kept for people to read.

A refusal is described by where it came (``stage``) and how (``form``, and the
``alert`` when there was one), SPEC section 6. requests and urllib3 hide whether
the handshake had finished when an error surfaced, so the client's HTTPS
connection class notes it (handshake finished; response status line read), and
the TLS context's message callback notes the version the ServerHello chose and
the CA names of the server's CertificateRequest (RFC 5246 section 7.4.4,
RFC 8446 section 4.2.4). That callback is CPython's ``SSLContext._msg_callback``
(OpenSSL's SSL_CTX_set_msg_callback; present since 3.8, underscored because
CPython keeps it for its own tests). Without it, ``tls_version`` is known only
once a handshake completed, and ``ca_names`` stays None.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool

from .tlsnames import certificate_request_ca_names

OK = "ok"
REJECTED = "rejected"
SERVER_CERT_REJECTED = "server-cert-rejected"
ERROR = "error"
SKIPPED = "skipped"

# Where a refusal surfaced (SPEC section 6).
HANDSHAKE = "handshake"  # before the client's handshake completed
FIRST_READ = "first-read"  # handshake complete, no byte of an HTTP response yet
RESPONSE = "response"  # after the response's status line and headers arrived
STAGES = (HANDSHAKE, FIRST_READ, RESPONSE)
# How it surfaced.
ALERT = "alert"  # a fatal TLS alert (``alert`` names it)
CLOSE = "close"  # the connection ended (FIN) without an alert
RESET = "reset"  # the connection was reset (RST)
FORMS = (ALERT, CLOSE, RESET)

# Whether this Python lets the client see ServerHello and CertificateRequest.
OBSERVES_HANDSHAKE = hasattr(ssl.SSLContext, "_msg_callback")

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}

DEFAULT_TIMEOUT = 5.0

_ALERT_PREFIXES = ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_")
# OpenSSL reason codes for alerts whose name lacks the ALERT_ infix.
_ALERT_REASONS = {
    "TLSV1_UNRECOGNIZED_NAME": "unrecognized_name",
    "TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE": "bad_certificate_status_response",
    "TLSV1_BAD_CERTIFICATE_HASH_VALUE": "bad_certificate_hash_value",
    "TLSV1_CERTIFICATE_UNOBTAINABLE": "certificate_unobtainable",
}
_EOF_REASONS = {"UNEXPECTED_EOF_WHILE_READING", "EOF_OCCURRED_IN_VIOLATION_OF_PROTOCOL"}
# OpenSSL's msg_callback: record content type 22 (handshake), message types.
_HANDSHAKE, _SERVER_HELLO, _CERTIFICATE_REQUEST = 22, 2, 13
_WIRE_VERSIONS = {0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}


@dataclass(frozen=True)
class Attempt:
    """One GET, as the client saw it.

    ``tls_version`` is "TLSv1.2" / "TLSv1.3" once the server's ServerHello chose
    one (None if the server refused before that). For a refusal, ``stage`` is one
    of STAGES, ``form`` one of FORMS and ``alert`` the RFC 8446 section 6 name in
    snake_case (``certificate_required``), None unless ``form`` is "alert".
    ``ca_names`` are the distinguished names (RFC 4514 strings) the server's
    CertificateRequest listed, in its order; None when no CertificateRequest came
    (or the Python lacks the message callback).
    """

    outcome: str
    detail: str = ""
    status: int | None = None
    environ: dict[str, Any] = field(default_factory=dict)
    tls_version: str | None = None
    stage: str | None = None
    form: str | None = None
    alert: str | None = None
    ca_names: tuple[str, ...] | None = None


@dataclass
class _Wire:
    """What one connection showed on the way, noted while it happens."""

    tls_version: str | None = None
    handshake_done: bool = False
    response_started: bool = False
    ca_names: tuple[str, ...] | None = None

    @property
    def stage(self) -> str:
        if self.response_started:
            return RESPONSE
        return FIRST_READ if self.handshake_done else HANDSHAKE


class _FixedContextAdapter(HTTPAdapter):
    """Hands urllib3 our prepared SSLContext and stops requests from adding its own
    trust store (it would load certifi into the context on every connection); its
    connections report their progress to ``observer``."""

    def __init__(
        self, context: ssl.SSLContext, server_hostname: str | None, observer: _Observer
    ) -> None:
        self._context = context
        self._server_hostname = server_hostname
        self._observer = observer
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        if self._server_hostname:
            kwargs["server_hostname"] = self._server_hostname
            kwargs["assert_hostname"] = self._server_hostname
        super().init_poolmanager(*args, **kwargs)
        observer = self._observer

        class Connection(HTTPSConnection):
            def connect(self) -> None:
                super().connect()  # TCP connect and the whole TLS handshake
                wire = observer.wire
                wire.handshake_done = True
                wire.tls_version = self.sock.version() or wire.tls_version

            def getresponse(self, *args: Any, **kwargs: Any) -> Any:
                response = super().getresponse(*args, **kwargs)
                observer.wire.response_started = True
                return response

        class Pool(HTTPSConnectionPool):
            ConnectionCls = Connection

        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme,
            "https": Pool,
        }

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        return None


class _Observer(threading.local):
    """The current request's ``_Wire``, per thread (the message callback runs in the
    thread doing the handshake)."""

    wire: _Wire

    def __init__(self) -> None:
        self.wire = _Wire()

    def message(
        self, conn: Any, direction: str, version: int, content_type: int, msg_type: int, data: bytes
    ) -> None:
        if direction != "read" or content_type != _HANDSHAKE:
            return
        if msg_type == _SERVER_HELLO:
            self.wire.tls_version = _WIRE_VERSIONS.get(int(version), self.wire.tls_version)
        elif msg_type == _CERTIFICATE_REQUEST:
            self.wire.ca_names = certificate_request_ca_names(bytes(data), self.wire.tls_version)


class TLSClient:
    """GET over a fresh TLS connection each time, with a fixed trust root and credential.

    ``tls`` pins the protocol version ("1.2" or "1.3"; None lets OpenSSL negotiate
    its best). Errors: ValueError for another ``tls`` value; ssl.SSLError or OSError
    from loading ``trust`` / ``credential``.
    """

    def __init__(
        self,
        trust: str | Path,
        credential: str | Path | None = None,
        *,
        server_hostname: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tls: str | None = None,
    ) -> None:
        if tls is not None and tls not in TLS_VERSIONS:
            raise ValueError(f"tls must be one of {', '.join(TLS_VERSIONS)} or None, not {tls!r}")
        context = ssl.create_default_context(cafile=str(trust))
        if tls is not None:
            context.minimum_version = context.maximum_version = TLS_VERSIONS[tls]
        if credential is not None:
            context.load_cert_chain(str(credential))
        self._observer = _Observer()
        if OBSERVES_HANDSHAKE:
            context._msg_callback = self._observer.message
        self.tls = tls
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or netrc from the environment
        adapter = _FixedContextAdapter(context, server_hostname, self._observer)
        self.session.mount("https://", adapter)

    def get(self, url: str) -> Attempt:
        wire = self._observer.wire = _Wire()
        try:
            response = self.session.get(
                url, timeout=self.timeout, headers={"Connection": "close"}, allow_redirects=False
            )
        except requests.RequestException as exc:
            return classify_exception(exc, wire)
        seen = {"tls_version": wire.tls_version, "ca_names": wire.ca_names}
        if response.status_code != 200:
            status = response.status_code
            return Attempt(ERROR, f"HTTP {status}", status, stage=RESPONSE, **seen)
        try:
            body = response.json()
        except ValueError:
            return Attempt(ERROR, "HTTP 200 with a body that is not JSON", 200, **seen)
        if not isinstance(body, dict):
            return Attempt(ERROR, "HTTP 200 with JSON that is not an object", 200, **seen)
        return Attempt(OK, "", 200, body, **seen)

    def close(self) -> None:
        self.session.close()


def classify_exception(exc: BaseException, wire: _Wire | None = None) -> Attempt:
    """Map a failed request to an outcome (rejected / server-cert-rejected / error) and,
    for a refusal, its stage, form and alert. ``wire`` is what the connection noted
    on the way (without it, the stage is taken to be the handshake)."""
    wire = wire or _Wire()
    text = f"{type(exc).__name__}: {exc}"
    seen = {"tls_version": wire.tls_version, "ca_names": wire.ca_names}

    def refused(form: str, alert: str | None = None) -> Attempt:
        # SPEC section 4: a refusal comes before any HTTP response; after it started,
        # an alert, close or reset is an error (the form is still recorded).
        outcome = ERROR if wire.response_started else REJECTED
        return Attempt(outcome, text, stage=wire.stage, form=form, alert=alert, **seen)

    chain = list(_causes(exc))
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return Attempt(SERVER_CERT_REJECTED, text, stage=wire.stage, **seen)
    if any(isinstance(e, (TimeoutError, requests.Timeout)) for e in chain):
        return Attempt(ERROR, text, stage=wire.stage, **seen)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return Attempt(ERROR, text)  # nothing listening: not a verdict on the client
    for e in chain:
        if isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return refused(CLOSE)
        if isinstance(e, ssl.SSLError):
            reason = e.reason or ""
            alert = alert_name(reason)
            if alert:
                return refused(ALERT, alert)
            if reason in _EOF_REASONS:
                return refused(CLOSE)
            return Attempt(ERROR, text, stage=wire.stage, **seen)
    # http.client's RemoteDisconnected (an EOF before any response byte; with TLS, a
    # close with or without close_notify) subclasses ConnectionResetError: test it
    # first. IncompleteRead: the body ended early (an EOF after the response started).
    if any(
        isinstance(e, (http.client.RemoteDisconnected, http.client.IncompleteRead)) for e in chain
    ):
        return refused(CLOSE)
    if any(
        isinstance(e, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError))
        for e in chain
    ):
        return refused(RESET)
    return Attempt(ERROR, text, stage=wire.stage, **seen)


def alert_name(reason: str) -> str | None:
    """OpenSSL's reason code for a received alert -> the alert's RFC 8446 name.

    'TLSV13_ALERT_CERTIFICATE_REQUIRED' -> 'certificate_required',
    'SSLV3_ALERT_HANDSHAKE_FAILURE' -> 'handshake_failure'; None when ``reason``
    is not about a received alert. (OpenSSL: SSL_R_*ALERT* codes in ssl/ssl_err.c,
    which it raises as SSL_AD_REASON_OFFSET + the alert number.)
    """
    if reason in _ALERT_REASONS:
        return _ALERT_REASONS[reason]
    for prefix in _ALERT_PREFIXES:
        if reason.startswith(prefix):
            return reason[len(prefix) :].lower()
    return None


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
