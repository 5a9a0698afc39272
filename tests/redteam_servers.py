"""Servers the matrix has not seen: faults not in tests/wrong_servers.py, and correct
servers that do things differently. Each is a matrix target,
``--target tests.redteam_servers:NAME``; tests/test_redteam.py says what each earns.

Faults on the reference server (its adapters and Cheroot, one mistake each):

- ``protocol_pinned``: tells the application ``SSL_PROTOCOL=TLSv1.3`` whatever was
  negotiated (the context's maximum, not the connection's version).
- ``verify_success_anonymous``: ``SSL_CLIENT_VERIFY=SUCCESS`` for a client that sent no
  certificate, whenever the server asked for one.
- ``issuer_as_subject``: ``SSL_CLIENT_S_DN`` (and ``_CN``) from the issuer's name.
- ``last_cn``: ``SSL_CLIENT_S_DN_CN`` is the *last* CN in DER order (the first one of the
  printed RFC 2253 string), where mod_ssl shows the first.
- ``ipv6_skips_host_check``: the ``+host`` check is skipped for an IPv6 peer (an
  IPv4-mapped one included).
- ``admits_bad_eku`` (pyopenssl): its verify callback forgives a wrong purpose
  (``X509_V_ERR_INVALID_PURPOSE``: an EKU of serverAuth only).
- ``admits_expired_hidden`` (pyopenssl): forgives an expired certificate and hides it
  from the application (``SSL_CLIENT_VERIFY=NONE``, no certificate variables).
- ``dies_after_six_refusals``: from its seventh refusal on, every new connection is
  dropped (a worker lost per refusal, say).

Faults on a small stdlib-ssl server (``builtin`` only, no ``+host`` policy):

- ``caches_verified_ip``: once a client from an IP has been verified, later handshakes
  from that IP ask for no certificate and are shown the cached identity.
- ``lenient_tls12``: under ``required``, a TLS 1.2 ClientHello gets ``CERT_OPTIONAL``.
- ``forbidden_instead_of_alert``: ``required`` enforced in the application: HTTP 403.

Correct servers that must pass every case they can express:

- ``plain_stdlib``: the small stdlib server itself (no certificate variables).
- ``slow_handshake``: waits 0.4 s before each handshake (a loaded or throttled server).
- ``chunked_chatty``: a chunked response, extra headers, no ``Connection: close``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto

from harness.reference import ReferenceServer, tls_environ_app
from harness.reference import connection as reference_connection
from harness.reference.hostcheck import confirmed_names, host_mismatch, normalise_ip
from harness.reference.pyopenssl import VERIFY_MODES, PyOpenSSLClientCertAdapter
from harness.target import ServerSpec
from harness.targets.reference import ReferenceTarget
from tests.wrong_servers import _Tripwire, _TripwireServer, _WatchedConnection

WSGIApp = Callable[..., Any]
X509_V_ERR_CERT_HAS_EXPIRED = 10  # OpenSSL x509_vfy.h
X509_V_ERR_INVALID_PURPOSE = 26


class RedTarget(ReferenceTarget):
    """The reference target with an application, adapter or check of its own. Only the
    standard and extended features (no SNI hosts, reload or per-path)."""

    name = "redteam"
    features = frozenset({"crl", "certificate-chain", "no-client-ca"})
    app: WSGIApp = staticmethod(tls_environ_app)

    def start(self, spec: ServerSpec) -> ReferenceServer:
        return ReferenceServer(
            self.adapter(spec), (spec.bind, 0), app=self.app, numthreads=4
        ).start()


def _app(change: Callable[[dict[str, Any]], None]) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]):
        change(environ)
        return tls_environ_app(environ, start_response)

    return staticmethod(app)


class ProtocolPinned(RedTarget):
    name = "redteam:protocol-pinned"
    app = _app(lambda env: env.update(SSL_PROTOCOL="TLSv1.3"))


class VerifySuccessAnonymous(RedTarget):
    """``SUCCESS`` whenever the handshake completed and the server had asked."""

    name = "redteam:verify-success-anonymous"

    def start(self, spec: ServerSpec) -> ReferenceServer:
        asked = spec.client_check != "ignore"

        def app(environ: dict[str, Any], start_response: Callable[..., Any]):
            if asked and environ.get("SSL_CLIENT_VERIFY") == "NONE":
                environ["SSL_CLIENT_VERIFY"] = "SUCCESS"
            return tls_environ_app(environ, start_response)

        return ReferenceServer(self.adapter(spec), (spec.bind, 0), app=app, numthreads=4).start()


def _issuer_as_subject(env: dict[str, Any]) -> None:
    if "SSL_CLIENT_I_DN" in env:
        env["SSL_CLIENT_S_DN"] = env["SSL_CLIENT_I_DN"]
        env["SSL_CLIENT_S_DN_CN"] = env.get("SSL_CLIENT_I_DN_CN", "")


class IssuerAsSubject(RedTarget):
    name = "redteam:issuer-as-subject"
    app = _app(_issuer_as_subject)


def _mod_ssl_text(value: str) -> str:
    """A DN value as mod_ssl shows it in its own variable: backslash doubled, controls \\XX."""
    return "".join(
        "\\\\" if c == "\\" else f"\\{ord(c):02X}" if ord(c) < 0x20 or ord(c) == 0x7F else c
        for c in value
    )


def _last_cn(env: dict[str, Any]) -> None:
    pem = env.get("SSL_CLIENT_CERT")
    if not pem:
        return
    names = x509.load_pem_x509_certificate(pem.encode()).subject
    cns = names.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        env["SSL_CLIENT_S_DN_CN"] = _mod_ssl_text(str(cns[-1].value))


class LastCN(RedTarget):
    name = "redteam:last-cn"
    app = _app(_last_cn)


class IPv6SkipsHostCheck(RedTarget):
    name = "redteam:ipv6-skips-host-check"

    def __init__(self) -> None:
        check = reference_connection.host_mismatch

        def host_mismatch(cert_der: bytes, peer_address: str) -> str | None:
            return None if ":" in peer_address else check(cert_der, peer_address)

        # The matrix runs this target in its own pytest process: the patch stays there.
        reference_connection.host_mismatch = host_mismatch


def _forgiving(errors: frozenset[int]) -> type[PyOpenSSLClientCertAdapter]:
    class Forgiving(PyOpenSSLClientCertAdapter):
        def build_context(self) -> SSL.Context:
            ctx = super().build_context()

            def verify(conn, cert, errnum, depth, ok) -> bool:
                return bool(ok) or errnum in errors

            ctx.set_verify(VERIFY_MODES[self.settings.client_check], verify)
            return ctx

    return Forgiving


class _PyOpenSSLFault(RedTarget):
    adapters = ("pyopenssl",)
    forgiven: frozenset[int] = frozenset()

    def start(self, spec: ServerSpec) -> ReferenceServer:
        reference = self.adapter(spec)
        adapter = _forgiving(self.forgiven)(**dataclasses.asdict(reference.settings))
        return ReferenceServer(adapter, (spec.bind, 0), app=self.app, numthreads=4).start()


class AdmitsBadEKU(_PyOpenSSLFault):
    name = "redteam:admits-bad-eku"
    forgiven = frozenset({X509_V_ERR_INVALID_PURPOSE})


def _hide_expired(env: dict[str, Any]) -> None:
    pem = env.get("SSL_CLIENT_CERT")
    if not pem:
        return
    cert = x509.load_pem_x509_certificate(pem.encode())
    if cert.not_valid_after_utc < dt.datetime.now(dt.timezone.utc):
        for key in [k for k in env if k.startswith("SSL_CLIENT_")]:
            del env[key]
        env["SSL_CLIENT_VERIFY"] = "NONE"


class AdmitsExpiredHidden(_PyOpenSSLFault):
    name = "redteam:admits-expired-hidden"
    forgiven = frozenset({X509_V_ERR_CERT_HAS_EXPIRED})
    app = _app(_hide_expired)


class HostInHandshake(RedTarget):
    """Correct, unusual: judges the ``+host`` check in its verify callback, so a mismatch
    is refused during the handshake with OpenSSL's alert for a callback's no
    (``certificate_unknown``), as a server on pyOpenSSL or Twisted may do it."""

    name = "redteam:host-in-handshake"
    adapters = ("pyopenssl",)

    def start(self, spec: ServerSpec) -> ReferenceServer:
        reference = self.adapter(spec)
        check_host = spec.check_host

        class Adapter(PyOpenSSLClientCertAdapter):
            def build_context(self) -> SSL.Context:
                ctx = super().build_context()

                def verify(conn, cert, errnum, depth, ok) -> bool:
                    if not ok or depth or not check_host:
                        return bool(ok)
                    der = cert.to_cryptography().public_bytes(serialization.Encoding.DER)
                    return host_mismatch(der, conn.getpeername()[0]) is None

                ctx.set_verify(VERIFY_MODES[self.settings.client_check], verify)
                return ctx

        adapter = Adapter(**dataclasses.asdict(reference.settings))
        return ReferenceServer(adapter, (spec.bind, 0), app=self.app, numthreads=4).start()


def _patched_host_check(accept: Callable[[x509.Certificate, list[str]], bool]) -> None:
    """Replace the reference connection's host check by one that also admits what
    ``accept(certificate, confirmed names of the peer)`` says (this process only)."""
    check = reference_connection.host_mismatch

    def host_mismatch(cert_der: bytes, peer_address: str) -> str | None:
        why = check(cert_der, peer_address)
        if why is None:
            return None
        names = confirmed_names(normalise_ip(peer_address))
        return None if accept(x509.load_der_x509_certificate(cert_der), names) else why

    reference_connection.host_mismatch = host_mismatch


def _san_dns(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.DNSName)


class WildcardMatchesBare(RedTarget):
    """``*.localhost`` matches ``localhost`` itself (the wildcard taken as optional)."""

    name = "redteam:wildcard-matches-bare"

    def __init__(self) -> None:
        _patched_host_check(
            lambda cert, names: any(
                d.startswith("*.") and d[2:].lower() == n.lower()
                for d in _san_dns(cert)
                for n in names
            )
        )


class HostCNFallback(RedTarget):
    """Falls back to the subject's CN when the certificate names no peer in its SAN."""

    name = "redteam:host-cn-fallback"

    def __init__(self) -> None:
        def accept(cert: x509.Certificate, names: list[str]) -> bool:
            cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
            return not _san_dns(cert) and any(cn.lower() == n.lower() for cn in cns for n in names)

        _patched_host_check(accept)


class HostCheckedAgainstSNI(RedTarget):
    """Checks the client's certificate against the name the client sent in its SNI (when
    it sent one) instead of the peer's address: a client chooses what it is checked
    against. Without an SNI it checks the peer, as it should."""

    name = "redteam:host-checked-against-sni"

    def __init__(self) -> None:
        sent = threading.local()
        check = reference_connection.host_mismatch
        record = reference_connection.TLSConnection._check_and_record

        def check_and_record(self, leaf, session) -> None:
            sent.name = session.openssl_server_name()
            try:
                record(self, leaf, session)
            finally:
                sent.name = None

        def host_mismatch(cert_der: bytes, peer_address: str) -> str | None:
            name = getattr(sent, "name", None)
            if not name:
                return check(cert_der, peer_address)
            dns = _san_dns(x509.load_der_x509_certificate(cert_der))
            if any(_dns_match(d, name) for d in dns):
                return None
            return f"no DNS-ID matches the SNI {name}"

        reference_connection.TLSConnection._check_and_record = check_and_record
        reference_connection.host_mismatch = host_mismatch


def _dns_match(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower(), name.lower()
    if pattern.startswith("*."):
        first, _, rest = name.partition(".")
        return bool(first) and rest == pattern[2:]
    return pattern == name


def _login_page(environ: dict[str, Any], start_response: Callable[..., Any]):
    if environ.get("SSL_CLIENT_VERIFY") != "SUCCESS" and environ.get("MTLS_REQUIRED"):
        body = b"<html><body>Please log in with your certificate.</body></html>"
        start_response(
            "200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))]
        )
        return [body]
    return tls_environ_app(environ, start_response)


class _RequiredDowngraded(RedTarget):
    """``required`` downgraded to ``optional`` in the handshake; ``answer`` (a WSGI app)
    then answers, told by ``environ["MTLS_REQUIRED"]`` whether ``required`` was asked."""

    answer: Callable[..., Any] = staticmethod(tls_environ_app)

    def start(self, spec: ServerSpec) -> ReferenceServer:
        required = spec.client_check == "required"
        lenient = dataclasses.replace(spec, client_check="optional") if required else spec
        answer = self.answer

        def app(environ: dict[str, Any], start_response: Callable[..., Any]):
            environ["MTLS_REQUIRED"] = required
            return answer(environ, start_response)

        return ReferenceServer(self.adapter(lenient), (spec.bind, 0), app=app, numthreads=4).start()


class AdmitsWithLoginPage(_RequiredDowngraded):
    """A client without a certificate gets 200 with an HTML page instead of the JSON."""

    name = "redteam:admits-with-login-page"
    answer = staticmethod(_login_page)


def _cut_short(environ: dict[str, Any], start_response: Callable[..., Any]):
    """200 and a Content-Length, then the application fails after the first bytes."""
    if environ.get("SSL_CLIENT_VERIFY") == "SUCCESS" or not environ.get("MTLS_REQUIRED"):
        return tls_environ_app(environ, start_response)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "1000")])

    def body():
        yield b'{"HTTPS": "on",'
        raise RuntimeError("the application needs SSL_CLIENT_S_DN")

    return body()


class AdmitsCutShort(_RequiredDowngraded):
    """A client without a certificate gets a 200 whose body the application fails to
    finish (the connection is closed)."""

    name = "redteam:admits-cut-short"
    answer = staticmethod(_cut_short)


class CRLCheckAll(RedTarget):
    """Correct, stricter: with a CRL it checks the whole chain (``CRL_CHECK_ALL``), not
    the leaf only; ``ca``'s CRL covers everything ``ca`` issued, so nothing changes."""

    name = "redteam:crl-check-all"
    adapters = ("pyopenssl",)

    def start(self, spec: ServerSpec) -> ReferenceServer:
        reference = self.adapter(spec)

        class Adapter(PyOpenSSLClientCertAdapter):
            def build_context(self) -> SSL.Context:
                ctx = super().build_context()
                if self.settings.client_CRL:
                    flags = crypto.X509StoreFlags.CRL_CHECK | crypto.X509StoreFlags.CRL_CHECK_ALL
                    ctx.get_cert_store().set_flags(flags)
                return ctx

        adapter = Adapter(**dataclasses.asdict(reference.settings))
        return ReferenceServer(adapter, (spec.bind, 0), app=self.app, numthreads=4).start()


class _CountingWire(_Tripwire):
    """Tripped from the ``limit``-th refusal on (the reference wire trips at the first)."""

    limit = 6

    def __init__(self) -> None:
        super().__init__()
        self.refusals = 0

    def end(self, refused: bool) -> None:
        with self._cond:
            self.refusals += refused
            self.in_flight -= 1
            self.tripped = self.refusals >= self.limit
            self._cond.notify_all()


class DiesAfterSixRefusals(RedTarget):
    name = "redteam:dies-after-six-refusals"

    def start(self, spec: ServerSpec) -> ReferenceServer:
        wire = _CountingWire()
        reference = self.adapter(spec)

        class Adapter(type(reference)):  # type: ignore[misc]
            def wrap(self, sock: socket.socket):
                if wire.settled_tripped():
                    with contextlib.suppress(OSError):
                        sock.close()
                    raise OSError("no longer serving")
                conn = _WatchedConnection(self, sock, wire)
                return conn, conn.environ

        adapter = Adapter(**dataclasses.asdict(reference.settings))
        return _TripwireServer(wire, adapter, (spec.bind, 0), app=self.app, numthreads=4).start()


# -- a small stdlib-ssl server ----------------------------------------------------------


class Mini:
    """A threaded HTTPS server on Python's ssl module: one request per connection, the
    handshake on its own thread, a refusal closed only after the client read the alert."""

    def __init__(self, target: MiniTarget, spec: ServerSpec) -> None:
        self.target, self.spec = target, spec
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.verified_ips: dict[str, bytes] = {}
        family = socket.AF_INET6 if ":" in spec.bind else socket.AF_INET
        if spec.bind == "localhost":
            family = socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0][0]
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            self.listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.listener.bind((spec.bind, 0))
        self.listener.listen(128)
        self.host, self.port = spec.bind, self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def context(self, mode: ssl.VerifyMode) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.spec.certificate), str(self.spec.private_key))
        ctx.verify_mode = mode
        if mode != ssl.CERT_NONE:
            ctx.load_verify_locations(str(self.spec.client_ca))
        return ctx

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                raw, addr = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw, addr[0]), daemon=True).start()

    def _serve(self, raw: socket.socket, peer: str) -> None:
        raw.settimeout(5)
        with contextlib.suppress(OSError), raw:
            ctx = self.target.context_for(self, raw, peer)
            tls = ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            try:
                tls.do_handshake()
            except OSError:  # refused: close once the client has read the alert
                if self.target.naive_close:
                    return  # closed at once, the client's unread bytes answered by a reset
                socket.socket.shutdown(tls, socket.SHUT_WR)
                for _ in range(16):
                    if not socket.socket.recv(tls, 65536):
                        break
                return
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                head += chunk
            der = tls.getpeercert(binary_form=True)
            if der:
                with self.lock:
                    self.verified_ips[peer] = der
            env = {
                "HTTPS": "on",
                "wsgi.url_scheme": "https",
                "SSL_PROTOCOL": tls.version(),
                "SSL_CIPHER": tls.cipher()[0],
                "SSL_CLIENT_VERIFY": "SUCCESS" if self.target.verified(self, der, peer) else "NONE",
            }
            self.target.respond(self, tls, env, der)

    def stop(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5)


MODES = {"ignore": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class MiniTarget:
    name = "redteam:plain-stdlib"
    adapters = ("builtin",)
    naive_close = False  # close a refused connection at once (http.server's way)

    def unsupported(self, spec: ServerSpec) -> str | None:
        return "no check of the client's host name" if spec.check_host else None

    def provides(self, adapter: str, variable: str) -> bool:
        return False

    def versions(self) -> dict[str, str]:
        return {"openssl": ssl.OPENSSL_VERSION}

    def start(self, spec: ServerSpec) -> Mini:
        if spec.client_check != "ignore" and spec.client_ca is None:
            raise ValueError(f"client_check {spec.client_check!r} needs a client CA")
        return Mini(self, spec)

    def context_for(self, server: Mini, raw: socket.socket, peer: str) -> ssl.SSLContext:
        return server.context(MODES[server.spec.client_check])

    def verified(self, server: Mini, der: bytes | None, peer: str) -> bool:
        return der is not None

    def respond(self, server: Mini, tls: ssl.SSLSocket, env: dict[str, str], der) -> None:
        body = json.dumps(env).encode()
        tls.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )


class SlowHandshake(MiniTarget):
    name = "redteam:slow-handshake"
    DELAY_S = float(os.environ.get("REDTEAM_DELAY_S", "0.4"))  # seconds before each handshake

    def context_for(self, server: Mini, raw: socket.socket, peer: str) -> ssl.SSLContext:
        server.stopping.wait(self.DELAY_S)  # pace: the server's own slowness is the point
        return super().context_for(server, raw, peer)


class ChunkedChatty(MiniTarget):
    name = "redteam:chunked-chatty"

    def respond(self, server: Mini, tls: ssl.SSLSocket, env: dict[str, str], der) -> None:
        body = json.dumps(env).encode()
        half = len(body) // 2
        chunks = b"".join(
            f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (body[:half], body[half:])
        )
        tls.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\n"
            b"Server: chatty/1.0\r\nX-Frame-Options: DENY\r\nSet-Cookie: a=b; Secure\r\n"
            b"Strict-Transport-Security: max-age=63072000\r\nVary: Accept-Encoding\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
        )


class EarlyHints(MiniTarget):
    """Correct: a ``103 Early Hints`` (RFC 8297) before the final response; RFC 9110
    section 15.2 says a client must parse 1xx responses it did not expect."""

    name = "redteam:early-hints"

    def respond(self, server: Mini, tls: ssl.SSLSocket, env: dict[str, str], der) -> None:
        tls.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        super().respond(server, tls, env, der)


class HelloRetry(MiniTarget):
    """Correct: offers only the P-256 group, so a TLS 1.3 client that sent an X25519 key
    share gets a HelloRetryRequest (RFC 8446 section 4.1.4) before the ServerHello."""

    name = "redteam:hello-retry"

    def context_for(self, server: Mini, raw: socket.socket, peer: str) -> ssl.SSLContext:
        ctx = super().context_for(server, raw, peer)
        ctx.set_ecdh_curve("prime256v1")
        return ctx


class EndlessEarlyHints(MiniTarget):
    """Broken: ``103 Early Hints`` after ``103 Early Hints``, never a final response (the
    interim bound must hold for every 1xx, not only ``100 Continue``)."""

    name = "redteam:endless-early-hints"

    def respond(self, server: Mini, tls: ssl.SSLSocket, env: dict[str, str], der) -> None:
        hint = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        for _ in range(10_000):  # bounded: the client gives up after a few
            if server.stopping.is_set():
                return
            tls.sendall(hint)


class NaiveClose(MiniTarget):
    """Correct, common: a refused handshake is closed at once, as Python's socketserver
    and http.server do, without reading what the client still sends."""

    name = "redteam:naive-close"
    naive_close = True


class CipherPinned(MiniTarget):
    """Tells the application the first cipher of its context, not the negotiated one."""

    name = "redteam:cipher-pinned"

    def respond(self, server: Mini, tls: ssl.SSLSocket, env: dict[str, str], der) -> None:
        env["SSL_CIPHER"] = tls.context.get_ciphers()[-1]["name"]
        super().respond(server, tls, env, der)


class HTTP10UntilClose(MiniTarget):
    """Correct, old-fashioned: an HTTP/1.0 answer without Content-Length, ended by the
    close (after a TLS close_notify)."""

    name = "redteam:http10-until-close"

    def respond(self, server: Mini, tls: ssl.SSLSocket, env: dict[str, str], der) -> None:
        tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")
        tls.sendall(json.dumps(env).encode())
        with contextlib.suppress(OSError):
            tls.unwrap()


class CachesVerifiedIP(MiniTarget):
    name = "redteam:caches-verified-ip"

    def context_for(self, server: Mini, raw: socket.socket, peer: str) -> ssl.SSLContext:
        with server.lock:
            known = peer in server.verified_ips
        if known:
            return server.context(ssl.CERT_NONE)
        return super().context_for(server, raw, peer)

    def verified(self, server: Mini, der: bytes | None, peer: str) -> bool:
        with server.lock:
            return der is not None or peer in server.verified_ips


def _offers_tls13(hello: bytes) -> bool:
    """Whether a ClientHello (one record, as peeked) offers TLS 1.3 (supported_versions)."""
    try:
        at = 5 + 4 + 2 + 32  # record and handshake headers, legacy version, random
        at += 1 + hello[at]  # session id
        at += 2 + int.from_bytes(hello[at : at + 2], "big")  # cipher suites
        at += 1 + hello[at]  # compression methods
        end = at + 2 + int.from_bytes(hello[at : at + 2], "big")
        at += 2
        while at + 4 <= end:
            kind, size = (
                int.from_bytes(hello[at : at + 2], "big"),
                int.from_bytes(hello[at + 2 : at + 4], "big"),
            )
            if kind == 43:  # supported_versions: a length byte, then two-byte versions
                data = hello[at + 5 : at + 4 + size]
                return any(data[i : i + 2] == b"\x03\x04" for i in range(0, len(data), 2))
            at += 4 + size
    except IndexError:
        return False
    return False


class LenientTLS12(MiniTarget):
    name = "redteam:lenient-tls12"

    def context_for(self, server: Mini, raw: socket.socket, peer: str) -> ssl.SSLContext:
        hello = b""
        for _ in range(50):  # peek until the whole first record has arrived
            hello = raw.recv(16384, socket.MSG_PEEK)
            if len(hello) >= 5 and len(hello) >= 5 + int.from_bytes(hello[3:5], "big"):
                break
            server.stopping.wait(0.01)  # pace: waiting for the client's bytes
        mode = MODES[server.spec.client_check]
        if mode == ssl.CERT_REQUIRED and not _offers_tls13(hello):
            mode = ssl.CERT_OPTIONAL
        return server.context(mode)


class ForbiddenInsteadOfAlert(MiniTarget):
    name = "redteam:forbidden-instead-of-alert"

    def context_for(self, server: Mini, raw: socket.socket, peer: str) -> ssl.SSLContext:
        mode = MODES[server.spec.client_check]
        return server.context(ssl.CERT_OPTIONAL if mode == ssl.CERT_REQUIRED else mode)

    def respond(self, server: Mini, tls: ssl.SSLSocket, env: dict[str, str], der) -> None:
        if server.spec.client_check == "required" and der is None:
            tls.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        super().respond(server, tls, env, der)


protocol_pinned = ProtocolPinned
verify_success_anonymous = VerifySuccessAnonymous
issuer_as_subject = IssuerAsSubject
last_cn = LastCN
ipv6_skips_host_check = IPv6SkipsHostCheck
admits_bad_eku = AdmitsBadEKU
admits_expired_hidden = AdmitsExpiredHidden
dies_after_six_refusals = DiesAfterSixRefusals
host_in_handshake = HostInHandshake
wildcard_matches_bare = WildcardMatchesBare
host_cn_fallback = HostCNFallback
admits_with_login_page = AdmitsWithLoginPage
admits_cut_short = AdmitsCutShort
host_checked_against_sni = HostCheckedAgainstSNI
naive_close = NaiveClose
endless_early_hints = EndlessEarlyHints
hello_retry = HelloRetry
early_hints = EarlyHints
cipher_pinned = CipherPinned
http10_until_close = HTTP10UntilClose
crl_check_all = CRLCheckAll
caches_verified_ip = CachesVerifiedIP
lenient_tls12 = LenientTLS12
forbidden_instead_of_alert = ForbiddenInsteadOfAlert
plain_stdlib = MiniTarget
slow_handshake = SlowHandshake
chunked_chatty = ChunkedChatty
