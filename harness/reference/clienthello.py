"""The SNI of a ClientHello still waiting in the socket (RFC 8446 section 4.1.2, RFC 6066
section 3), read with MSG_PEEK before any TLS library sees the connection.

Why by hand: a server with SNI virtual hosts must verify the client under the *named*
host's verify mode, CA and session cache, and neither back-end lets that be chosen once
OpenSSL is reading the ClientHello. OpenSSL calls the servername callback after it has
looked up the offered session (TLS 1.2: ``ssl_get_prev_session`` comes before the
extensions are parsed; TLS 1.3: the pre_shared_key extension is parsed before the
callbacks' ``final`` pass), in the first context's session cache and with its ticket
keys; switching contexts there keeps the first context's verify mode (SSL_set_SSL_CTX
copies neither; CPython's ``sni_callback`` and pyOpenSSL's ``set_context`` are that
call, pyca/pyopenssl#255, glyph/txsni#2). Reading the name first and wrapping the socket
in the named host's own context avoids all of it. No maintained library parses a
ClientHello from a byte prefix (cryptography and pyOpenSSL have no TLS record parser);
the few dozen lines here read only the fields on the way to the server_name extension,
bounded at every length, and OpenSSL's own reading of the name is checked against this
one after the handshake (``HostSelectingSession``).
"""

from __future__ import annotations

from dataclasses import dataclass

RECORD_HEADER = 5
HANDSHAKE_RECORD = 22
CLIENT_HELLO = 1
SERVER_NAME_EXTENSION = 0
HOST_NAME = 0
MAX_RECORD = 2**14 + 256  # TLSPlaintext.length: at most 2^14 (RFC 8446 section 5.1), with slack
# A ClientHello is a few hundred bytes (2 KiB with post-quantum key shares); a larger one
# is not read ahead (it is refused), so the peek stays within one socket buffer.
MAX_CLIENT_HELLO = 32 * 1024


class NotClientHello(ValueError):
    """The bytes are not the start of a TLS ClientHello (or break its length rules)."""


@dataclass(frozen=True)
class Peeked:
    """What the bytes so far say: ``needed`` more bytes in total to see the whole
    ClientHello (None once it is whole), and then ``name``, the host_name sent (None when
    the client sent no server_name extension)."""

    needed: int | None = None
    name: str | None = None


def peek_server_name(data: bytes) -> Peeked:
    """Read the SNI from the first bytes a client sent. Raises NotClientHello."""
    message = bytearray()
    offset = 0
    wanted: int | None = None  # the handshake message's whole length, once known
    while wanted is None or len(message) < wanted:  # bounded: each record adds bytes
        if len(data) < offset + RECORD_HEADER:
            return Peeked(needed=offset + RECORD_HEADER)
        kind, major, length = data[offset], data[offset + 1], _int(data, offset + 3, 2)
        if kind != HANDSHAKE_RECORD or major != 3 or not 0 < length <= MAX_RECORD:
            raise NotClientHello("not a TLS handshake record")
        end = offset + RECORD_HEADER + length
        if len(data) < end:
            return Peeked(needed=end)
        message += data[offset + RECORD_HEADER : end]
        offset = end
        if wanted is None and len(message) >= 4:
            if message[0] != CLIENT_HELLO:
                raise NotClientHello("the first handshake message is not a ClientHello")
            wanted = 4 + _int(message, 1, 3)
            if wanted > MAX_CLIENT_HELLO:
                raise NotClientHello(f"a ClientHello of more than {MAX_CLIENT_HELLO} bytes")
        if offset > MAX_CLIENT_HELLO + 64 * RECORD_HEADER:
            raise NotClientHello("a ClientHello spread over too many records")
    return Peeked(name=_server_name(bytes(message[4:wanted])))


def _server_name(body: bytes) -> str | None:
    """RFC 8446 section 4.1.2: legacy_version(2) random(32) session_id<0..32>
    cipher_suites<2..> compression<1..> extensions<8..>; RFC 6066: ServerNameList."""
    pos = 2 + 32
    pos = _skip(body, pos, 1)  # legacy_session_id
    pos = _skip(body, pos, 2)  # cipher_suites
    pos = _skip(body, pos, 1)  # legacy_compression_methods
    if pos == len(body):
        return None  # no extensions at all
    end = pos + 2 + _int(body, pos, 2)
    if end != len(body):
        raise NotClientHello("extensions do not end with the ClientHello")
    pos += 2
    while pos < end:
        kind, length = _int(body, pos, 2), _int(body, pos + 2, 2)
        start, pos = pos + 4, pos + 4 + length
        if pos > end:
            raise NotClientHello("an extension runs past the ClientHello")
        if kind == SERVER_NAME_EXTENSION:
            return _host_name(body[start:pos])
    return None


def _host_name(ext: bytes) -> str | None:
    listed = 2 + _int(ext, 0, 2)
    if listed != len(ext):
        raise NotClientHello("a malformed server_name extension")
    pos = 2
    while pos < listed:
        kind, length = ext[pos], _int(ext, pos + 1, 2)
        name, pos = ext[pos + 3 : pos + 3 + length], pos + 3 + length
        if pos > listed:
            raise NotClientHello("a server name runs past its extension")
        if kind == HOST_NAME:
            try:
                return name.decode("ascii")  # RFC 6066: ASCII, no trailing dot
            except UnicodeDecodeError:
                raise NotClientHello("a host_name that is not ASCII") from None
    return None


def _skip(body: bytes, pos: int, size: int) -> int:
    end = pos + size + _int(body, pos, size)
    if end > len(body):
        raise NotClientHello("a field runs past the ClientHello")
    return end


def _int(data: bytes | bytearray, pos: int, size: int) -> int:
    if pos + size > len(data):
        raise NotClientHello("truncated")
    return int.from_bytes(data[pos : pos + size], "big")
