"""The pyOpenSSL back-end.

pyOpenSSL has no socket timeouts of its own, so the socket is always
non-blocking: the gate steps the handshake and reads with ``*_step`` (OpenSSL's
WantRead/WantWrite surface as ``Want``), and on a worker every operation waits
for readiness with a deadline: the handshake gets the handshake timeout as a
whole (plain-Cheroot use), later reads and writes Cheroot's socket timeout.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import selectors
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from cryptography import x509
from OpenSSL import SSL, crypto

try:  # pyOpenSSL's own cffi binding, only for verify-error texts; not public API
    from OpenSSL._util import ffi as _binding_ffi
    from OpenSSL._util import lib as _binding_lib
except ImportError:  # pragma: no cover - the log line just gets less specific
    _binding_ffi = _binding_lib = None

from .adapters import ClientCertAdapter, openssl_version_string
from .connection import CannotAsk, PostHandshakeBudget, Refused, Reset, Want
from .errors import ConfigError
from .policy import load_crls

T = TypeVar("T")

# OpenSSL's strict checks (X509_V_FLAG_X509_STRICT); pyOpenSSL cannot read a
# context's flags back, so the limbo store check reads this constant.
VERIFY_FLAGS = crypto.X509StoreFlags.X509_STRICT
VERIFY_MODES = {
    "ignore": SSL.VERIFY_NONE,
    "optional": SSL.VERIFY_PEER,
    "required": SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
}


_SSL_MODE_AUTO_RETRY = 0x4  # OpenSSL ssl.h; pyOpenSSL has no name for it

# OpenSSL's reason when a required client certificate did not come.
_NO_CERTIFICATE = "peer did not return a certificate"


def _keep_openssl_verdict(conn, cert, errnum, depth, ok) -> bool:
    """OpenSSL decides; we only remember why it said no, for the log line."""
    if not ok:
        conn.set_app_data(
            f"{_verify_error_text(errnum)} (X509 verify error {errnum} at depth {depth})"
        )
    return bool(ok)


def _verify_error_text(errnum: int) -> str:
    """OpenSSL's text for a verify error, as the stdlib's verify_message gives it."""
    text = getattr(_binding_lib, "X509_verify_cert_error_string", None)
    if text is None:
        return "certificate verify failed"
    return _binding_ffi.string(text(errnum)).decode(errors="replace")


# OpenSSL's SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION (ssl.h: SSL_OP_BIT(16)); pyOpenSSL
# does not export it.
NO_SESSION_RESUMPTION_ON_RENEGOTIATION = getattr(
    _binding_lib, "SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION", 0x00010000
)
TLS_VERSIONS = {"TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}


class PyOpenSSLClientCertAdapter(ClientCertAdapter):
    backend = "pyopenssl"

    def build_context(self) -> SSL.Context:
        s = self.settings
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        if s.path_policies:
            # pyOpenSSL has no post-handshake authentication (no binding of
            # SSL_verify_client_post_handshake): a certificate is asked for after the
            # handshake by renegotiation, which exists in TLS 1.2 only.
            if s.tls_version == "TLSv1.3":
                raise ConfigError(
                    "path_policies on pyOpenSSL need TLS 1.2 (renegotiation): pyOpenSSL "
                    "has no TLS 1.3 post-handshake authentication"
                )
            ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
            # A renegotiation that resumed the session would be abbreviated: no
            # CertificateRequest, the old (certificate-less) session kept. mod_ssl forces
            # a full handshake too (a new session id context per directory).
            ctx.set_options(NO_SESSION_RESUMPTION_ON_RENEGOTIATION)
        if s.tls_version is not None:
            version = TLS_VERSIONS[s.tls_version]
            ctx.set_min_proto_version(version)
            ctx.set_max_proto_version(version)
        ctx.use_certificate_file(s.certificate)
        ctx.use_privatekey_file(s.private_key)
        if s.certificate_chain:
            with open(s.certificate_chain, "rb") as fh:
                for cert in x509.load_pem_x509_certificates(fh.read()):
                    _add_extra_chain_cert(ctx, cert)
        ctx.check_privatekey()
        if self.ciphers:
            ctx.set_cipher_list(self.ciphers.encode())
        # Needed by OpenSSL whenever peers are verified and sessions may be cached; one
        # per policy (SHA-256 of the settings, 32 bytes: SSL_MAX_SID_CTX_LENGTH), so that
        # a session never resumes under another policy even if a cache were shared.
        ctx.set_session_id(hashlib.sha256(repr(s).encode()).digest())
        if s.client_CA:
            # No CA names in the CertificateRequest (no load_client_ca): the stdlib
            # cannot send them, and both adapters must advertise the same
            # (docs/refusals.md, "CA names").
            # Loaded as a file at any size: pyOpenSSL's OpenSSL (4.0) loads 10,001
            # certificates in about 0.3 s, as fast as a hashed directory is written
            # (capath.py says why the stdlib needs one).
            ctx.load_verify_locations(s.client_CA)
        if s.client_CRL:  # checked for the leaf only, as the stdlib's VERIFY_CRL_CHECK_LEAF
            store = ctx.get_cert_store()
            for crl in load_crls(s.client_CRL):
                store.add_crl(crl)
            store.set_flags(crypto.X509StoreFlags.CRL_CHECK)
        # SSL_read returns after each record that is not application data (a KeyUpdate,
        # a refused renegotiation) instead of looping inside OpenSSL while the client
        # keeps sending: the gate bounds its reads per turn (gate_steps.READS_PER_TURN).
        ctx.clear_mode(_SSL_MODE_AUTO_RETRY)
        ctx.set_info_callback(_count_post_handshake)
        ctx.set_verify(VERIFY_MODES[s.client_check], _keep_openssl_verdict)
        ctx.get_cert_store().set_flags(VERIFY_FLAGS)
        return ctx

    def open_backend_session(self, sock: socket.socket) -> PyOpenSSLSession:
        return PyOpenSSLSession(self.context, sock)

    def library_version(self) -> str:
        return openssl_version_string(SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode())


class PyOpenSSLSession:
    def __init__(self, context: SSL.Context, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.conn = SSL.Connection(context, sock)
        self.conn.set_accept_state()
        self.budget = PostHandshakeBudget(sock)
        self.conn._mtls_budget = self.budget  # found by _count_post_handshake

    def _io(self, operation: Callable[..., T], *args, timeout: float | None) -> T:
        deadline = None if timeout is None else time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_READ)
            while True:  # ends: success, an error, or the deadline
                try:
                    return operation(*args)
                except SSL.WantReadError:
                    event = selectors.EVENT_READ
                except SSL.WantWriteError:
                    event = selectors.EVENT_WRITE
                sel.modify(self.sock, event)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and (remaining <= 0 or not sel.select(remaining)):
                    raise TimeoutError("timed out")

    def handshake(self, timeout: float) -> None:
        try:
            self._io(self.conn.do_handshake, timeout=timeout)
            self.budget.armed = True
        except TimeoutError:
            raise Refused(f"handshake timed out after {timeout:g}s") from None
        except Exception as exc:
            raise self._handshake_refusal(exc) from None

    def handshake_step(self) -> None:
        try:
            self.conn.do_handshake()
            self.budget.armed = True
        except SSL.WantReadError:
            raise Want(selectors.EVENT_READ) from None
        except SSL.WantWriteError:
            raise Want(selectors.EVENT_WRITE) from None
        except Exception as exc:
            raise self._handshake_refusal(exc) from None

    def read_step(self, nbytes: int) -> bytes:
        return self.budget.checked(lambda: self._read_step(nbytes))

    def _read_step(self, nbytes: int) -> bytes:
        try:
            return self.conn.recv(nbytes)
        except SSL.WantReadError:
            raise Want(selectors.EVENT_READ) from None
        except SSL.WantWriteError:
            raise Want(selectors.EVENT_WRITE) from None
        except SSL.ZeroReturnError:
            return b""
        except SSL.SysCallError as exc:
            if exc.args and exc.args[0] == -1:  # EOF without close_notify
                return b""
            raise _io_refusal(exc) from None
        except Exception as exc:
            raise _io_refusal(exc) from None

    def write_step(self, data: bytes) -> int:
        try:
            return self.conn.send(data)
        except SSL.WantReadError:
            raise Want(selectors.EVENT_READ) from None
        except SSL.WantWriteError:
            raise Want(selectors.EVENT_WRITE) from None
        except Exception as exc:
            raise _io_refusal(exc) from None

    def close_notify(self) -> None:
        """SSL_shutdown once on the non-blocking socket: the alert goes out, the peer's
        is not awaited."""
        with contextlib.suppress(SSL.Error, OSError, ValueError):
            self.conn.shutdown()

    def _handshake_refusal(self, exc: Exception) -> Refused:
        if isinstance(exc, SSL.SysCallError):
            if exc.args and exc.args[0] == -1:
                return Refused("closed the connection during the handshake")
            if exc.args and exc.args[0] == errno.ECONNRESET:
                return Reset("reset the connection during the handshake")
            return Refused(f"handshake failed: {exc.args[-1] if exc.args else exc}")
        if isinstance(exc, SSL.Error):
            why = self.conn.get_app_data()
            if why:
                return Refused(f"client certificate rejected: {why}")
            reasons = _reasons(exc)
            if _NO_CERTIFICATE in reasons:
                return Refused("no client certificate presented")
            return Refused(f"handshake failed: {reasons}")
        if isinstance(exc, ConnectionResetError):
            return Reset("reset the connection during the handshake")
        if isinstance(exc, OSError):
            return Refused(f"handshake failed: {exc.strerror or exc}")
        return Refused(f"handshake failed: {type(exc).__name__}: {exc}")

    def recv_into(self, buffer: memoryview, nbytes: int, timeout: float | None) -> int:
        return self.budget.checked(lambda: self._recv_into(buffer, nbytes, timeout))

    def _recv_into(self, buffer: memoryview, nbytes: int, timeout: float | None) -> int:
        try:
            return self._io(self.conn.recv_into, buffer, nbytes, timeout=timeout)
        except SSL.ZeroReturnError:
            return 0
        except SSL.SysCallError as exc:
            if exc.args and exc.args[0] == -1:  # EOF without close_notify
                return 0
            raise _io_refusal(exc) from None
        except TimeoutError:
            raise
        except Exception as exc:
            raise _io_refusal(exc) from None

    def send(self, data: bytes, timeout: float | None) -> int:
        try:
            return self._io(self.conn.send, data, timeout=timeout)
        except TimeoutError:
            raise
        except Exception as exc:
            raise _io_refusal(exc) from None

    def peer_certificate(self) -> bytes | None:
        """DER straight from OpenSSL: cryptography may be unable to parse what OpenSSL
        verified (see connection.TLSConnection._client_variables)."""
        cert = self.conn.get_peer_certificate()
        return None if cert is None else crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)

    def ask_for_certificate(self, timeout: float, max_bytes: int) -> bytes:
        """A server-initiated TLS 1.2 renegotiation (RFC 5246 section 7.4.1.1) under
        ``required``, bounded by ``timeout``; returns application data that arrived
        meanwhile (at most ``max_bytes``). CannotAsk on TLS 1.3; Refused when the new
        handshake fails (OpenSSL sent the alert: ``handshake_failure`` for no
        certificate or a client that refuses to renegotiate, ``unknown_ca``...)."""
        if self.protocol() != "TLSv1.2":
            raise CannotAsk("pyOpenSSL has no TLS 1.3 post-handshake authentication")
        self.conn.set_verify(VERIFY_MODES["required"], _keep_openssl_verdict)
        self.conn.set_app_data(None)
        # The new handshake is over when the server has sent a new Finished message
        # (SSL_get_finished); renegotiate_pending() turns false once the HelloRequest
        # is out, before the client has even answered.
        finished = self.conn.get_finished()

        def done() -> bool:
            return self.conn.get_finished() != finished

        if not self.conn.renegotiate():
            raise CannotAsk("OpenSSL refused to start a renegotiation")
        deadline = time.monotonic() + timeout
        extra = bytearray()
        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_READ)
            sent = False
            while True:  # ends: renegotiated, an error, max_bytes, or the deadline
                try:
                    if not sent:
                        self.conn.do_handshake()  # writes the HelloRequest
                        sent = True
                    if done():
                        return bytes(extra)
                    data = self.conn.recv(65536)  # runs the client's new handshake
                    if not data:
                        raise Refused("closed the connection instead of renegotiating")
                    extra += data
                    if len(extra) > max_bytes:
                        raise Refused("sent more than a request while asked to renegotiate")
                    continue
                except SSL.WantReadError:
                    event = selectors.EVENT_READ
                except SSL.WantWriteError:
                    event = selectors.EVENT_WRITE
                except Refused:
                    raise
                except SSL.ZeroReturnError:
                    raise Refused("closed the connection instead of renegotiating") from None
                except Exception as exc:
                    raise self._handshake_refusal(exc) from None
                if sent and done():  # done by the last read
                    return bytes(extra)
                sel.modify(self.sock, event)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    raise Refused(f"no renegotiation within {timeout:g}s")

    def peer_chain(self) -> list[bytes]:
        leaf = self.peer_certificate()
        ders = [
            crypto.dump_certificate(crypto.FILETYPE_ASN1, c)
            for c in self.conn.get_peer_cert_chain() or ()
        ]
        return ders[1:] if ders and ders[0] == leaf else ders

    def protocol(self) -> str:
        return self.conn.get_protocol_version_name()

    def openssl_server_name(self) -> str | None:
        """The SNI host_name as OpenSSL read it (None: none was sent)."""
        name = self.conn.get_servername()
        return None if name is None else name.decode("ascii", "replace")

    def cipher(self) -> str:
        return self.conn.get_cipher_name() or ""


_SSL_CB_WRITE_ALERT = 0x4008  # OpenSSL ssl.h: SSL_CB_ALERT | SSL_CB_WRITE
_SSL_CB_EXIT = 0x02  # OpenSSL ssl.h


def _count_post_handshake(conn: SSL.Connection, where: int, ret: int) -> None:
    """Info callback: once the handshake is done, each run of OpenSSL's state machine
    (it ends with SSL_CB_EXIT: a KeyUpdate processed, measured with OpenSSL 4.0.3),
    each handshake started (a renegotiation) and each alert sent back (a refused
    renegotiation: no_renegotiation) counts against the connection's
    PostHandshakeBudget."""
    if where & (SSL.SSL_CB_HANDSHAKE_START | _SSL_CB_EXIT) or where == _SSL_CB_WRITE_ALERT:
        budget = getattr(conn, "_mtls_budget", None)
        if budget is not None:
            budget.seen()


def _add_extra_chain_cert(ctx: SSL.Context, cert: x509.Certificate) -> None:
    """pyOpenSSL >= 25 takes cryptography certificates (and deprecates its own X509);
    older releases only take X509."""
    try:
        ctx.add_extra_chain_cert(cert)
    except TypeError:
        ctx.add_extra_chain_cert(crypto.X509.from_cryptography(cert))


def _io_refusal(exc: Exception) -> Refused:
    """A read or write after the handshake failed: a bad record, a reset, an alert."""
    if isinstance(exc, SSL.SysCallError):
        if exc.args and exc.args[0] == errno.ECONNRESET:
            return Reset("reset the connection")
        return Refused(f"connection failed: {exc.args[-1] if exc.args else exc}")
    if isinstance(exc, SSL.Error):
        return Refused(f"TLS error after the handshake: {_reasons(exc)}")
    if isinstance(exc, ConnectionResetError):
        return Reset("reset the connection")
    if isinstance(exc, OSError):
        return Refused(f"connection failed: {exc.strerror or exc}")
    return Refused(f"connection failed: {type(exc).__name__}: {exc}")


def _reasons(exc: SSL.Error) -> str:
    """OpenSSL's error queue as 'reason; reason' (each entry is (lib, func, reason))."""
    entries = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
    return "; ".join(str(e[-1]) for e in entries if e) or str(exc)
