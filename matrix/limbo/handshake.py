"""A small TLS client that presents one x509-limbo certificate, and a probe of whether it can.

Why not ``harness/client.py``: that client goes through requests and the
stdlib, whose error reporting reads OpenSSL's error queue from its last entry.
When the presented chain holds an undecodable key, a stale ``DECODE_ERROR``
left by the client's own chain handling can be reported instead of the
server's alert (measured: 6 to 20 times in 20 on webpki cases). Here every
attempt gets a fresh pyOpenSSL context, the thread's error queue is cleared
before the handshake, and the refusal is read from *every* entry of the queue
(the alert entry wins over a stale one), so such a case ends as the refusal
it is, never as ``error``.

``presentable()`` answers, without any target, whether the client can present
the certificate at all in a TLS version: it runs an in-memory handshake
(memory BIOs, no socket) against a server that requests a certificate and
accepts any. A key the client cannot sign with in that version (no usable
signature algorithm), or a file its TLS library refuses to load, is "could
not present" — its own outcome, never a verdict on the certificate.
"""

from __future__ import annotations

import errno
import re
import select
import socket
import time
from dataclasses import dataclass
from functools import lru_cache

from OpenSSL import SSL, crypto

try:  # pyOpenSSL's cffi binding: clear the thread's OpenSSL error queue (no public API)
    from OpenSSL._util import lib as _lib
except ImportError:  # pragma: no cover
    _lib = None

from .corpus import LimboCase

TLS_VERSIONS = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}
# Present whatever the library can sign with: the verdict on weak keys is the server's.
CLIENT_CIPHERS = b"DEFAULT:@SECLEVEL=0"
ACCEPTED, REFUSED, NOT_PRESENTED, ERROR = "accepted", "refused", "could-not-present", "error"
_ALERT = re.compile(r"(?:sslv3|tlsv1|tlsv13|tls) alert (?P<name>[a-z0-9 ]+)")
_REQUEST = b"GET / HTTP/1.1\r\nHost: limbo.test\r\nConnection: close\r\n\r\n"
_MAX_RESPONSE = 1 << 20
_PROBE_ROUNDS = 20  # an in-memory handshake needs 2-4 flights; more means something is stuck


@dataclass(frozen=True)
class Observation:
    """What the client saw on one connection (RFC 8446 section 6 alert names, snake_case)."""

    outcome: str  # ACCEPTED | REFUSED | NOT_PRESENTED | ERROR
    stage: str | None = None  # "handshake" | "first-read" | None
    form: str | None = None  # "alert" | "close" | "reset" | None
    alert: str | None = None
    status: int | None = None  # the HTTP status, when the application answered
    detail: str = ""


class CannotPresent(Exception):
    """The client's TLS library refuses this certificate or key; the message says why."""


def client_context(case: LimboCase, tls: str) -> SSL.Context:
    """A fresh client context presenting the case's peer certificate and intermediates.

    Raises CannotPresent when the library will not load one of them.
    """
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(TLS_VERSIONS[tls])
    ctx.set_max_proto_version(TLS_VERSIONS[tls])
    ctx.set_cipher_list(CLIENT_CIPHERS)
    ctx.set_verify(SSL.VERIFY_NONE)  # the server's certificate is not under test
    if case.peer_certificate_key is None:
        raise CannotPresent("the corpus ships no private key for this certificate")
    try:
        ctx.use_certificate(crypto.load_certificate(crypto.FILETYPE_PEM, case.peer_certificate))
    except (crypto.Error, SSL.Error, ValueError) as exc:
        raise CannotPresent(
            f"peer certificate refused by the client's library: {_why(exc)}"
        ) from None
    for i, pem in enumerate(case.untrusted_intermediates):
        try:
            ctx.add_extra_chain_cert(crypto.load_certificate(crypto.FILETYPE_PEM, pem))
        except (crypto.Error, SSL.Error, ValueError) as exc:
            raise CannotPresent(
                f"intermediate #{i} refused by the client's library: {_why(exc)}"
            ) from None
    try:
        ctx.use_privatekey(crypto.load_privatekey(crypto.FILETYPE_PEM, case.peer_certificate_key))
        ctx.check_privatekey()
    except (crypto.Error, SSL.Error, ValueError) as exc:
        raise CannotPresent(f"private key refused by the client's library: {_why(exc)}") from None
    return ctx


@lru_cache(maxsize=4096)
def _probe_server_context(tls: str, cert_pem: bytes, key_pem: bytes) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(TLS_VERSIONS[tls])
    ctx.set_max_proto_version(TLS_VERSIONS[tls])
    ctx.set_cipher_list(CLIENT_CIPHERS)
    ctx.use_certificate(crypto.load_certificate(crypto.FILETYPE_PEM, cert_pem))
    ctx.use_privatekey(crypto.load_privatekey(crypto.FILETYPE_PEM, key_pem))
    ctx.set_verify(SSL.VERIFY_PEER, lambda *args: True)  # accept any certificate
    return ctx


def presentable(case: LimboCase, tls: str, server_cert: bytes, server_key: bytes) -> str | None:
    """None when the client can present the case's certificate in TLS ``tls``, else why not.

    ``server_cert``/``server_key``: PEM of any server credential (the probe's own).
    """
    try:
        client = SSL.Connection(client_context(case, tls), None)
    except CannotPresent as exc:
        return str(exc)
    server = SSL.Connection(_probe_server_context(tls, server_cert, server_key), None)
    client.set_connect_state()
    server.set_accept_state()
    done = {"client": False, "server": False}
    _clear_errors()
    for _ in range(_PROBE_ROUNDS):
        for name, conn in (("client", client), ("server", server)):
            if done[name]:
                continue
            try:
                conn.do_handshake()
                done[name] = True
            except SSL.WantReadError:
                pass
            except SSL.Error as exc:
                if name == "server" and server.get_peer_certificate() is not None:
                    return None  # it arrived; what a server makes of it is a verdict
                return f"the {name} side of a local handshake failed: {_why(exc)}"
        _pump(client, server)
        _pump(server, client)
        if done["client"] and done["server"]:
            break
    else:
        return "a local handshake did not finish"
    if tls == "1.3":  # the server reads the client's Certificate after the client is done
        try:
            server.recv(1)
        except (SSL.WantReadError, SSL.ZeroReturnError):
            pass
        except SSL.Error as exc:
            if server.get_peer_certificate() is not None:
                return None
            return f"the server side of a local handshake failed: {_why(exc)}"
    if server.get_peer_certificate() is None:
        return (
            f"the client sent no certificate in TLS {tls}: it has no signature algorithm "
            "it can use with this key in that version"
        )
    return None


def _pump(src: SSL.Connection, dst: SSL.Connection) -> None:
    while True:
        try:
            data = src.bio_read(65536)
        except SSL.WantReadError:
            return
        if not data:
            return
        dst.bio_write(data)


def attempt(
    case: LimboCase,
    tls: str,
    host: str,
    port: int,
    timeout: float,
    seen: dict[str, int] | None = None,
) -> Observation:
    """Connect, present the case's certificate, send one request and read the answer.

    Never raises for what happens on the wire: every end is an Observation.
    ``seen["port"]`` receives the client's local port (to find the server's line).
    """
    try:
        ctx = client_context(case, tls)
    except CannotPresent as exc:
        return Observation(NOT_PRESENTED, detail=str(exc))
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return Observation(ERROR, detail=f"cannot connect to {host}:{port}: {exc}")
    if seen is not None:
        seen["port"] = sock.getsockname()[1]
    conn = SSL.Connection(ctx, None)  # memory BIOs: the socket is the link's (_Link)
    conn.set_connect_state()
    sock.setblocking(False)
    link = _Link(conn, sock, deadline)
    stage = "handshake"
    try:
        _clear_errors()
        link.run(conn.do_handshake)
        stage = "first-read"
        link.request(_REQUEST)
        response = bytearray()
        while len(response) < _MAX_RESPONSE:
            try:
                chunk = link.run(lambda: conn.recv(65536))
            except SSL.ZeroReturnError:
                break
            except SSL.Error as exc:
                if response and _is_eof(exc):
                    break  # EOF without close_notify after a whole answer
                raise
            if not chunk:
                break
            response += chunk
        if not response:
            return Observation(REFUSED, stage, "close", detail="closed without an answer")
        return _answered(bytes(response))
    except TimeoutError:
        return Observation(ERROR, stage, detail=f"no answer within {timeout:g}s")
    except SSL.SysCallError as exc:
        code = exc.args[0] if exc.args else None
        if code == -1:
            return Observation(REFUSED, stage, "close", detail="closed by the server")
        form = "reset" if code in (104, 54) else "close"
        return Observation(REFUSED, stage, form, detail=f"{exc.args[-1] if exc.args else exc}")
    except SSL.Error as exc:
        reasons = _reasons(exc)
        for reason in reasons:
            match = _ALERT.search(reason)
            if match:
                name = match["name"].strip().replace(" ", "_")
                return Observation(REFUSED, stage, "alert", name, detail=reason)
        if any("unexpected eof" in reason for reason in reasons):
            # The server closed without an alert; an entry before it may be the client's
            # own (a chain key it could not decode), which is not what happened on the wire.
            return Observation(REFUSED, stage, "close", detail="; ".join(reasons))
        return Observation(ERROR, stage, detail="; ".join(reasons) or str(exc))
    except OSError as exc:  # the socket's reset, while the link read from it
        return Observation(REFUSED, stage, "reset", detail=str(exc))
    finally:
        sock.close()


class _Link:
    """Carries one connection's TLS records between pyOpenSSL's memory BIOs and the socket.

    Why not the socket under OpenSSL: in TLS 1.3 a server refuses the client's
    certificate after the client's handshake is over, sends its alert and closes; when
    its reset reaches the client before the request, the request's send fails, and after
    a failed write OpenSSL 3.2 and later (pyOpenSSL's wheels ship 4.0) fail every later
    read, so the alert waiting in the socket was never read and the attempt was a "reset"
    (measured against a stdlib TLS 1.3 server refusing an untrusted certificate, 300
    attempts: 192 "reset", 108 ``unknown_ca``; with the link: 300 ``unknown_ca``). Here
    OpenSSL never sees a failed send: a send that fails because the server has closed (a
    reset, a broken pipe; harness.client reads on too) drops what was left to send, and
    what the server sent before closing is still read and decrypted; when it sent
    nothing, the failed send is what the attempt reports, as before.

    ``run`` completes one pyOpenSSL operation before ``deadline`` (time.monotonic();
    TimeoutError past it); a reset while reading raises ConnectionResetError.
    """

    def __init__(self, conn: SSL.Connection, sock: socket.socket, deadline: float) -> None:
        self.conn, self.sock, self.deadline = conn, sock, deadline
        self.refused: OSError | None = None  # the send that failed: the server had closed
        self._eof = False

    def run(self, operation):
        while True:  # bounded by the deadline: each round waits for the socket
            try:
                result = operation()
            except SSL.WantReadError:
                self.flush()
                self._receive()
                continue
            self.flush()
            return result

    def request(self, data: bytes) -> None:
        """Send ``data`` (the request: into the BIO, then out; see the class docstring)."""
        self.run(lambda: self.conn.sendall(data))

    def flush(self) -> None:
        """Write what OpenSSL has queued to the socket, unless the server has closed."""
        while True:
            try:
                data = self.conn.bio_read(65536)
            except SSL.WantReadError:
                return
            view = memoryview(data)
            while view and self.refused is None:
                try:
                    view = view[self.sock.send(view) :]
                except BlockingIOError:
                    self._wait(write=True)
                except (BrokenPipeError, ConnectionResetError) as exc:
                    self.refused = exc  # what the server sent before closing is read on

    def _receive(self) -> None:
        if self._eof:  # OpenSSL wants more after the end: the server closed mid-record
            raise SSL.SysCallError(-1, "Unexpected EOF")
        self._wait(write=False)
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        if data:
            self.conn.bio_write(data)
        elif self.refused is not None:  # nothing waited to be read: the send's error it is
            code = self.refused.errno
            raise SSL.SysCallError(code, errno.errorcode.get(code, str(self.refused)))
        else:
            self._eof = True
            self.conn.bio_shutdown()

    def _wait(self, write: bool) -> None:
        remaining = self.deadline - time.monotonic()
        want = ([], [self.sock]) if write else ([self.sock], [])
        if remaining <= 0 or not any(select.select(*want, [], remaining)):
            raise TimeoutError


def _is_eof(exc: SSL.Error) -> bool:
    """The server's close without close_notify, as the memory BIO reports it."""
    if isinstance(exc, SSL.SysCallError):
        return bool(exc.args) and exc.args[0] == -1
    return any("unexpected eof" in reason for reason in _reasons(exc))


def _answered(response: bytes) -> Observation:
    head = response.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    parts = head.split(" ")
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return Observation(ERROR, "response", detail=f"not an HTTP answer: {head[:60]!r}")
    return Observation(ACCEPTED, "response", status=status, detail=head)


def _clear_errors() -> None:
    if _lib is not None:
        _lib.ERR_clear_error()


def _reasons(exc: Exception) -> list[str]:
    entries = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
    return [str(e[-1]) for e in entries if e] or [str(exc)]


def _why(exc: Exception) -> str:
    return "; ".join(_reasons(exc))
