"""The stdlib ``ssl`` back-end."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import ssl
import tempfile
import time

from .adapters import ClientCertAdapter, openssl_version_string
from .capath import hashed_directory
from .connection import CannotAsk, PostHandshakeBudget, Refused, Reset, Want
from .errors import ConfigError

# OpenSSL's strict checks (X509_V_FLAG_X509_STRICT) on top of CPython's defaults:
# decided with the x509-limbo suite, figures in docs/limbo.md.
VERIFY_FLAGS = ssl.VERIFY_X509_STRICT
VERIFY_MODES = {
    "ignore": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}


TLS_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def _ask_after_handshake(ctx: ssl.SSLContext, client_check: str, tls_version: str | None) -> None:
    """Per-path policies on the stdlib: TLS 1.3 only, and post-handshake authentication
    under ``ignore``.

    The stdlib cannot renegotiate, so a TLS 1.2 connection could never be asked after
    its handshake: such a server speaks TLS 1.3 only. Under ``ignore`` the context is
    ``CERT_REQUIRED`` with ``post_handshake_auth``: OpenSSL then sets
    SSL_VERIFY_POST_HANDSHAKE and asks nothing in a TLS 1.3 handshake (python/cpython#81609,
    the trap a plain ``required`` server falls into; here it is what ``ignore`` means),
    and a post-handshake answer without a certificate is refused by OpenSSL itself
    with ``certificate_required``, as Apache's is. Under ``optional`` the handshake asks
    (no ``post_handshake_auth``: it would silence that request) and a client that sent
    nothing then is not asked again (``BuiltinSession.ask_for_certificate``).
    """
    if tls_version == "TLSv1.2":
        raise ConfigError(
            "path_policies on the stdlib need TLS 1.3 (post-handshake authentication): "
            "Python's ssl module cannot renegotiate a TLS 1.2 connection"
        )
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    if client_check == "ignore":
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.post_handshake_auth = True


class BuiltinClientCertAdapter(ClientCertAdapter):
    backend = "builtin"

    def build_context(self) -> ssl.SSLContext:
        s = self.settings
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if s.tls_version is not None:
            ctx.minimum_version = ctx.maximum_version = TLS_VERSIONS[s.tls_version]
        if s.certificate_chain:
            # The stdlib only sends intermediates that sit in the certificate file, and
            # the chain must not become a trust store (Cheroot's builtin adapter does
            # that): hand it a temporary file of certificate + chain.
            with open(s.certificate, "rb") as a, open(s.certificate_chain, "rb") as b:
                combined = a.read().rstrip(b"\n") + b"\n" + b.read()
            fd, path = tempfile.mkstemp(suffix=".pem")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(combined)
                ctx.load_cert_chain(path, s.private_key)
            finally:
                os.unlink(path)
        else:
            ctx.load_cert_chain(s.certificate, s.private_key)
        if self.ciphers:
            ctx.set_ciphers(self.ciphers)
        ctx._msg_callback = _count_post_handshake  # private, but the stdlib's only hook
        ctx.verify_mode = VERIFY_MODES[s.client_check]
        ctx.verify_flags |= VERIFY_FLAGS
        if s.client_CA:
            directory = self.checked_client_CA and hashed_directory(self.checked_client_CA)
            if directory is None:
                ctx.load_verify_locations(cafile=s.client_CA)
            else:  # a large file (capath.py: the stdlib's cafile loader is superlinear)
                ctx.load_verify_locations(capath=directory.path)
                ctx._mtls_capath = directory  # removed when the context is released
        if s.client_CRL:  # the CAfile loader takes CRLs too; check the leaf's issuer's CRL
            ctx.load_verify_locations(cafile=s.client_CRL)
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        if s.path_policies:
            _ask_after_handshake(ctx, s.client_check, s.tls_version)
        ctx.sni_callback = _note_server_name  # the only way the stdlib shows a server the SNI
        return ctx

    def open_backend_session(self, sock: socket.socket) -> BuiltinSession:
        return BuiltinSession(self.context, sock)

    def library_version(self) -> str:
        return openssl_version_string(ssl.OPENSSL_VERSION)


def _note_server_name(sock: ssl.SSLSocket, name: str | None, context: ssl.SSLContext) -> None:
    """OpenSSL's servername callback: remember the SNI on the socket (SSL_TLS_SNI)."""
    sock.mtls_server_name = name


class BuiltinSession:
    """An SSLSocket that never handshakes on its own: the gate steps it
    non-blocking, a worker uses it with timeouts."""

    def __init__(self, context: ssl.SSLContext, sock: socket.socket) -> None:
        self.sock: ssl.SSLSocket = context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        )
        self.budget = PostHandshakeBudget(self.sock)
        self.sock._mtls_budget = self.budget  # found by _count_post_handshake

    def handshake(self, timeout: float) -> None:
        self.sock.settimeout(timeout)  # CPython applies it as a deadline for the whole handshake
        try:
            self.sock.do_handshake()
            self.budget.armed = True
        except TimeoutError:
            raise Refused(f"handshake timed out after {timeout:g}s") from None
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):  # pragma: no cover - blocking
            raise Refused("handshake did not complete") from None
        except Exception as exc:
            raise _handshake_refusal(exc) from None

    def handshake_step(self) -> None:
        self.sock.setblocking(False)
        try:
            self.sock.do_handshake()
            self.budget.armed = True
        except ssl.SSLWantReadError:
            raise Want(selectors.EVENT_READ) from None
        except ssl.SSLWantWriteError:
            raise Want(selectors.EVENT_WRITE) from None
        except (BlockingIOError, InterruptedError):
            raise Want(selectors.EVENT_READ) from None
        except Exception as exc:
            raise _handshake_refusal(exc) from None

    def read_step(self, nbytes: int) -> bytes:
        return self.budget.checked(lambda: self._read_step(nbytes))

    def _read_step(self, nbytes: int) -> bytes:
        self.sock.setblocking(False)
        try:
            return self.sock.recv(nbytes)
        except ssl.SSLWantReadError:
            raise Want(selectors.EVENT_READ) from None
        except ssl.SSLWantWriteError:
            raise Want(selectors.EVENT_WRITE) from None
        except (BlockingIOError, InterruptedError):
            raise Want(selectors.EVENT_READ) from None
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""
        except Exception as exc:
            raise _io_refusal(exc) from None

    def write_step(self, data: bytes) -> int:
        self.sock.setblocking(False)
        try:
            return self.sock.send(data)
        except ssl.SSLWantReadError:
            raise Want(selectors.EVENT_READ) from None
        except (ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
            raise Want(selectors.EVENT_WRITE) from None
        except Exception as exc:
            raise _io_refusal(exc) from None

    def close_notify(self) -> None:
        """SSL_shutdown once, non-blocking: the alert goes out, the peer's is not awaited
        (CPython's unwrap() then raises SSLWantReadError, which is expected)."""
        self.sock.setblocking(False)
        with contextlib.suppress(ssl.SSLError, OSError, ValueError):
            self.sock.unwrap()

    def recv_into(self, buffer: memoryview, nbytes: int, timeout: float | None) -> int:
        return self.budget.checked(lambda: self._recv_into(buffer, nbytes, timeout))

    def _recv_into(self, buffer: memoryview, nbytes: int, timeout: float | None) -> int:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv_into(buffer, nbytes)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return 0
        except TimeoutError:
            raise
        except Exception as exc:
            raise _io_refusal(exc) from None

    def send(self, data: bytes, timeout: float | None) -> int:
        self.sock.settimeout(timeout)
        try:
            return self.sock.send(data)
        except TimeoutError:
            raise
        except Exception as exc:
            raise _io_refusal(exc) from None

    def peer_certificate(self) -> bytes | None:
        return self.sock.getpeercert(binary_form=True)

    def ask_for_certificate(self, timeout: float, max_bytes: int) -> bytes:
        """TLS 1.3 post-handshake authentication (RFC 8446 section 4.6.2), bounded by
        ``timeout``; returns application data that arrived meanwhile (at most
        ``max_bytes``). CannotAsk when it cannot be done (no TLS 1.3, no
        ``post_handshake_auth`` context, or the client did not offer it); Refused when
        the client's answer is refused (OpenSSL sent the alert)."""
        if self.sock.version() != "TLSv1.3":
            raise CannotAsk(
                "the stdlib cannot renegotiate: no certificate request after a TLS 1.2 handshake"
            )
        if not self.sock.context.post_handshake_auth:
            raise CannotAsk("the handshake asked for a certificate already (policy optional)")
        try:
            self.sock.verify_client_post_handshake()
        except ssl.SSLError as exc:  # EXTENSION_NOT_RECEIVED: the client cannot answer
            raise CannotAsk(
                f"the client cannot answer a certificate request ({exc.reason})"
            ) from None
        return _pump(self, timeout, max_bytes, lambda: self.sock.getpeercert() is not None)

    def peer_chain(self) -> list[bytes] | None:
        """What the client sent beyond its own certificate; None before Python 3.13."""
        get_chain = getattr(self.sock, "get_unverified_chain", None)
        if get_chain is None:
            return None
        ders = [
            c if isinstance(c, bytes) else c.public_bytes(ssl.ENCODING_DER) for c in get_chain()
        ]
        leaf = self.peer_certificate()
        return ders[1:] if ders and ders[0] == leaf else ders

    def protocol(self) -> str:
        return self.sock.version() or ""

    def openssl_server_name(self) -> str | None:
        """The SNI host_name as OpenSSL read it (None: none was sent)."""
        return getattr(self.sock, "mtls_server_name", None)

    def cipher(self) -> str:
        cipher = self.sock.cipher()
        return cipher[0] if cipher else ""


def _count_post_handshake(conn, direction, version, content_type, msg_type, data) -> None:
    """SSLContext._msg_callback: every handshake message the client sends after the
    handshake counts against its PostHandshakeBudget."""
    if direction == "read" and content_type == 22:  # handshake (RFC 8446 section 5.1)
        budget = getattr(conn, "_mtls_budget", None)
        if budget is not None:
            budget.seen()


def _pump(session: BuiltinSession, timeout: float, max_bytes: int, done) -> bytes:
    """Send the certificate request and read until ``done()``, an error or the deadline."""
    deadline = time.monotonic() + timeout
    extra = bytearray()
    sock = session.sock
    sock.setblocking(False)
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        sent = False
        while True:  # ends: done, an error, max_bytes, or the deadline
            try:
                if not sent:
                    sock.do_handshake()  # writes the CertificateRequest
                    sent = True
                if done():
                    return bytes(extra)
                data = sock.recv(65536)
                if not data:
                    raise Refused(
                        "closed the connection instead of answering the certificate request"
                    )
                extra += data
                if len(extra) > max_bytes:
                    raise Refused("sent more than a request while asked for a certificate")
                continue
            except ssl.SSLWantReadError:
                event = selectors.EVENT_READ
            except (ssl.SSLWantWriteError, BlockingIOError):
                event = selectors.EVENT_WRITE
            except Refused:
                raise
            except Exception as exc:
                raise _handshake_refusal(exc) from None
            if sent and done():  # the answer was processed by the read that wants more
                return bytes(extra)
            sel.modify(sock, event)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                raise Refused(f"no answer to the certificate request within {timeout:g}s")


def _handshake_refusal(exc: Exception) -> Refused:
    """Why a handshake failed, in OpenSSL's words where it has them."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Refused(
            f"client certificate rejected: {exc.verify_message} "
            f"(X509 verify error {exc.verify_code})"
        )
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return Refused("closed the connection during the handshake")
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return Refused("no client certificate presented")
        return Refused(f"handshake failed: {exc.reason or exc}")
    if isinstance(exc, ConnectionResetError):
        return Reset("reset the connection during the handshake")
    if isinstance(exc, OSError):
        return Refused(f"handshake failed: {exc.strerror or exc}")
    return Refused(f"handshake failed: {type(exc).__name__}: {exc}")


def _io_refusal(exc: Exception) -> Refused:
    """A read or write after the handshake failed: a bad record, a reset, an alert."""
    if isinstance(exc, ssl.SSLError):
        return Refused(f"TLS error after the handshake: {exc.reason or exc}")
    if isinstance(exc, ConnectionResetError):
        return Reset("reset the connection")
    if isinstance(exc, OSError):
        return Refused(f"connection failed: {exc.strerror or exc}")
    return Refused(f"connection failed: {type(exc).__name__}: {exc}")
