"""TLS for attackers: real ClientHellos and handshakes from the stdlib ``ssl`` module.

Real ClientHellos come from the stdlib ``ssl`` module driven through a ``MemoryBIO``
(``SSLContext.wrap_bio``), so the bytes on the wire are exactly what OpenSSL sends,
and the attacker decides how many of them go out and when. One message is hand-edited,
because no stdlib API can make it: :func:`without_shared_group` takes a real TLS 1.3
ClientHello and renames, in place (no length changes), every group in its
``supported_groups`` and ``key_share`` extensions (RFC 8446 sections 4.2.7 and 4.2.8)
to a private-use code point (0xFE00 + i, RFC 8446 section 4.2.7), which no server
supports. (Python 3.11's ``set_ecdh_curve`` restricts a client to one group, but
OpenSSL 3.0 refuses to build a TLS 1.3 ClientHello with a group it cannot use for
TLS 1.3: "no suitable groups", measured with OpenSSL 3.0.19.)
"""

from __future__ import annotations

import socket
import ssl
import struct
import warnings
from pathlib import Path

from .attacker import Attacker

# TLS record content types and handshake types (RFC 8446 section 5.1, 4)
HANDSHAKE = 0x16
APPLICATION_DATA = 0x17
ALERT = 0x15
CLIENT_HELLO = 0x01
EXT_SUPPORTED_GROUPS = 0x000A
EXT_KEY_SHARE = 0x0033
PRIVATE_GROUP = 0xFE00  # RFC 8446 section 4.2.7: 0xFE00..0xFEFF reserved for private use


def client_context(
    credential: Path | None = None,
    *,
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """A client context that trusts any server (attackers do not care who answers)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated in ssl: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
    if maximum is not None and maximum < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 needs level 0 for TLS 1.0/1.1
    if credential is not None:
        context.load_cert_chain(str(credential))
    return context


class HandshakeDriver:
    """A client handshake over a plain socket through MemoryBIOs: bytes leave only when asked."""

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname)

    def step(self) -> bool:
        """One do_handshake(); True when the handshake is complete on the client's side."""
        try:
            self.tls.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    def pending(self) -> bytes:
        return self.outgoing.read()

    def client_hello(self) -> bytes:
        self.step()
        return self.pending()

    def complete(self, attacker: Attacker, sock: socket.socket) -> None:
        """Run the handshake to the end over ``sock``, sending every flight the client makes."""
        while True:
            done = self.step()
            data = self.pending()
            if data:
                attacker.send(sock, data)
            if done:
                return
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionAbortedError("the server closed during the handshake")
            attacker.received += len(chunk)
            self.incoming.write(chunk)

    def read_server_flight(self, attacker: Attacker, sock: socket.socket) -> bytes:
        """Read until the server has said something (its first flight), feed it, return it."""
        chunk = sock.recv(65536)
        attacker.received += len(chunk)
        if chunk:
            self.incoming.write(chunk)
            self.step()
        return chunk

    def wrap(self, data: bytes) -> bytes:
        """``data`` as TLS application-data records (after the handshake)."""
        self.tls.write(data)
        return self.pending()


def client_hello(
    context: ssl.SSLContext | None = None, server_hostname: str = "localhost"
) -> bytes:
    """The bytes of one real ClientHello record from the stdlib ``ssl`` module."""
    return HandshakeDriver(context or client_context(), server_hostname).client_hello()


def without_shared_group(hello: bytes) -> bytes:
    """``hello`` (one ClientHello record) with every named group renamed to a private one.

    Lengths are unchanged; only the 2-byte group code points in ``supported_groups``
    and in each ``key_share`` entry are rewritten (RFC 8446 sections 4.2.7, 4.2.8).
    Raises ValueError on anything but a single ClientHello record with extensions.
    """
    out = bytearray(hello)
    if len(out) < 9 or out[0] != HANDSHAKE or out[5] != CLIENT_HELLO:
        raise ValueError("not a ClientHello record")
    pos = 5 + 4 + 2 + 32  # record header, handshake header, legacy_version, random
    pos += 1 + out[pos]  # legacy_session_id
    pos += 2 + struct.unpack_from("!H", out, pos)[0]  # cipher_suites
    pos += 1 + out[pos]  # legacy_compression_methods
    end = pos + 2 + struct.unpack_from("!H", out, pos)[0]
    pos += 2
    renamed: dict[int, int] = {}

    def rename(at: int) -> None:
        group = struct.unpack_from("!H", out, at)[0]
        new = renamed.setdefault(group, PRIVATE_GROUP + len(renamed))
        struct.pack_into("!H", out, at, new)

    while pos + 4 <= end:
        ext_type, ext_len = struct.unpack_from("!HH", out, pos)
        body = pos + 4
        if ext_type == EXT_SUPPORTED_GROUPS:
            count = struct.unpack_from("!H", out, body)[0] // 2
            for i in range(count):
                rename(body + 2 + 2 * i)
        elif ext_type == EXT_KEY_SHARE:
            at, stop = body + 2, body + 2 + struct.unpack_from("!H", out, body)[0]
            while at + 4 <= stop:
                rename(at)
                at += 4 + struct.unpack_from("!H", out, at + 2)[0]
        pos = body + ext_len
    if not renamed:
        raise ValueError("the ClientHello names no group")
    return bytes(out)


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER on, zero seconds)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def handshake(a: Attacker, sock: socket.socket) -> HandshakeDriver:
    """A complete handshake over ``sock``, presenting the attacker's credential if it has one."""
    driver = HandshakeDriver(client_context(a.credential), a.server_hostname)
    driver.complete(a, sock)
    return driver
