"""Post-handshake TLS messages a real stack will not stream: built here, with keys we hold.

The handshake is OpenSSL's own, through pyOpenSSL on memory BIOs (:class:`OpenSSLClient`):
the attacker sees every byte and decides what leaves. What follows it cannot come from
a TLS library's API:

- TLS 1.3 KeyUpdate (RFC 8446 section 4.6.3), where the system's libssl cannot be
  reached (:mod:`harness.hostile.libssl` calls OpenSSL's ``SSL_key_update`` itself,
  which neither the stdlib ``ssl`` module nor pyOpenSSL exposes; it is the faster
  path). :class:`KeyUpdates` takes the client's application traffic secret from OpenSSL's
  keylog callback (``CLIENT_TRAFFIC_SECRET_0``, SSL_CTX_set_keylog_callback) and
  builds each record as RFC 8446 says: the message ``18 00 00 01 00``
  (update_not_requested, so the server owes no answer) in a TLSInnerPlaintext of type
  handshake, AEAD-protected (section 5.2, nonce = iv XOR sequence number, section
  5.3), then the next secret ``HKDF-Expand-Label(secret, "traffic upd", "", Hash.length)``
  with its key and iv (section 7.2, 7.3) and the sequence number back at zero.
- TLS 1.2 renegotiation (RFC 5246 section 7.4.1.2, RFC 5746): the first request is
  real, ``Connection.renegotiate()``; a server that renegotiates gets one real
  renegotiation after another. A server that refuses (OpenSSL 3.0 and later refuse a
  client-initiated renegotiation with a no_renegotiation warning by default and keep
  the connection) leaves OpenSSL's client in an error state, so the same ClientHello
  (OpenSSL's own, decrypted from the record it wrote: which also proves the keys) is
  protected again with the next sequence numbers by :class:`Tls12Records` (RFC 5246
  section 6.2.3.3, RFC 5288 section 3: AES-GCM, 4-byte implicit nonce from the key
  block, 8-byte explicit nonce, the sequence number in the additional data). Key
  block: the TLS 1.2 PRF over the master secret and the randoms (RFC 5246 sections
  5 and 6.3), from pyOpenSSL's ``master_key()``, ``client_random()``,
  ``server_random()``.

The AEADs are cryptography's; HKDF-Expand and the PRF are one or a few HMACs
(``hmac.digest``), because a stream computes a new key per message and cryptography's
KDF objects cost more than the record they protect.
"""

from __future__ import annotations

import hmac
import socket
import struct
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from OpenSSL import SSL

from .attacker import Attacker

APPLICATION_DATA = 0x17
HANDSHAKE = 0x16
KEY_UPDATE = b"\x18\x00\x00\x01\x00"  # KeyUpdate(update_not_requested), RFC 8446 section 4.6.3
TLS12_SUITES = (
    b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    b"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
)  # AEAD suites whose record protection Tls12Records writes


class OpenSSLClient:
    """A pyOpenSSL client on memory BIOs: OpenSSL's handshake, our socket, our pace."""

    def __init__(self, credential: Path | None, server_hostname: str, *, tls13: bool) -> None:
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        if tls13:
            context.set_min_proto_version(SSL.TLS1_3_VERSION)
        else:
            context.set_max_proto_version(SSL.TLS1_2_VERSION)
            context.set_cipher_list(TLS12_SUITES)
        if credential is not None:
            context.use_certificate_chain_file(str(credential))
            context.use_privatekey_file(str(credential))
        self.keylog: list[bytes] = []
        context.set_keylog_callback(lambda _conn, line: self.keylog.append(line))
        self.conn = SSL.Connection(context, None)
        self.conn.set_connect_state()
        self.conn.set_tlsext_host_name(server_hostname.encode())

    def pending(self) -> bytes:
        try:
            return self.conn.bio_read(1 << 20)
        except SSL.WantReadError:
            return b""

    def complete(self, a: Attacker, sock: socket.socket) -> None:
        """Run a handshake (or renegotiation) to its end over ``sock``. SSL.Error if refused."""
        while True:
            try:
                self.conn.do_handshake()
                done = True
            except SSL.WantReadError:
                done = False
            data = self.pending()
            if data:
                a.send(sock, data)
            if done:
                return
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionAbortedError("the server closed during the handshake")
            a.received += len(chunk)
            self.conn.bio_write(chunk)

    def client_traffic_secret(self) -> bytes:
        """The client's first application traffic secret (TLS 1.3), from the keylog."""
        for line in self.keylog:
            label, _, rest = line.partition(b" ")
            if label == b"CLIENT_TRAFFIC_SECRET_0":
                return bytes.fromhex(rest.split()[1].decode())
        raise ValueError("no CLIENT_TRAFFIC_SECRET_0 in the keylog: not TLS 1.3")


def _hash_name(suite: str) -> str:
    return "sha384" if suite.endswith("SHA384") else "sha256"


def expand_label(secret: bytes, label: bytes, length: int, hash_name: str) -> bytes:
    """HKDF-Expand-Label with an empty context (RFC 8446 section 7.1), length <= Hash.length."""
    full = b"tls13 " + label
    info = struct.pack("!HB", length, len(full)) + full + b"\x00"
    return hmac.digest(secret, info + b"\x01", hash_name)[:length]


class KeyUpdates:
    """TLS 1.3 records from the client's side: one KeyUpdate each, rekeying after each."""

    def __init__(self, secret: bytes, suite: str) -> None:
        self.suite = suite
        self.hash_name = _hash_name(suite)
        self.secret = secret
        self.sent = 0
        self._keys()

    def _keys(self) -> None:
        if "CHACHA20" in self.suite:
            self.aead: AESGCM | ChaCha20Poly1305 = ChaCha20Poly1305(
                expand_label(self.secret, b"key", 32, self.hash_name)
            )
        else:
            size = 32 if "AES_256" in self.suite else 16
            self.aead = AESGCM(expand_label(self.secret, b"key", size, self.hash_name))
        self.iv = expand_label(self.secret, b"iv", 12, self.hash_name)
        self.seq = 0

    def record(self, content: bytes, content_type: int) -> bytes:
        """``content`` protected under the current keys (RFC 8446 sections 5.2, 5.3)."""
        inner = content + bytes((content_type,))
        header = struct.pack("!BHH", APPLICATION_DATA, 0x0303, len(inner) + 16)
        nonce = bytes(x ^ y for x, y in zip(self.iv, self.seq.to_bytes(12, "big"), strict=True))
        self.seq += 1
        return header + self.aead.encrypt(nonce, inner, header)

    def next(self) -> bytes:
        """One KeyUpdate record; the keys that follow it are the next generation's."""
        out = self.record(KEY_UPDATE, HANDSHAKE)
        size = len(hmac.digest(b"", b"", self.hash_name))
        self.secret = expand_label(self.secret, b"traffic upd", size, self.hash_name)
        self._keys()
        self.sent += 1
        return out


def prf(secret: bytes, label: bytes, seed: bytes, length: int, hash_name: str) -> bytes:
    """The TLS 1.2 PRF, P_hash(secret, label + seed) (RFC 5246 section 5)."""
    seed = label + seed
    out, a = b"", seed
    while len(out) < length:
        a = hmac.digest(secret, a, hash_name)
        out += hmac.digest(secret, a + seed, hash_name)
    return out[:length]


class Tls12Records:
    """The client's TLS 1.2 AES-GCM record protection, from the next sequence number ``seq``."""

    def __init__(self, conn: SSL.Connection, seq: int) -> None:
        suite = conn.get_cipher_name() or ""
        if "GCM" not in suite:
            raise ValueError(f"not an AES-GCM suite: {suite!r}")
        size = 32 if "AES256" in suite else 16
        block = prf(
            conn.master_key(),
            b"key expansion",
            conn.server_random() + conn.client_random(),
            2 * size + 8,
            _hash_name(suite),
        )  # client key, server key, client implicit nonce, server's (RFC 5246 6.3)
        self.aead = AESGCM(block[:size])
        self.salt = block[2 * size : 2 * size + 4]
        self.seq = seq

    def _aad(self, seq: int, content_type: int, length: int) -> bytes:
        return seq.to_bytes(8, "big") + struct.pack("!BHH", content_type, 0x0303, length)

    def open(self, record: bytes) -> bytes:
        """The plaintext of the client's own next record (advances ``seq``); InvalidTag if the
        keys are wrong."""
        content_type, explicit, body = record[0], record[5:13], record[13:]
        aad = self._aad(self.seq, content_type, len(body) - 16)
        plain = self.aead.decrypt(self.salt + explicit, body, aad)
        self.seq += 1
        return plain

    def seal(self, content_type: int, plain: bytes) -> bytes:
        explicit = self.seq.to_bytes(8, "big")
        body = self.aead.encrypt(
            self.salt + explicit, plain, self._aad(self.seq, content_type, len(plain))
        )
        self.seq += 1
        return struct.pack("!BHH", content_type, 0x0303, len(body) + 8) + explicit + body
