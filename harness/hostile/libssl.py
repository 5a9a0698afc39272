"""OpenSSL's own TLS 1.3 client through ``ctypes``, for ``SSL_key_update``.

No Python binding reaches ``SSL_key_update`` (the stdlib ``ssl`` module has no key
update API; pyOpenSSL's bindings come from cryptography, which no longer carries it:
checked with pyOpenSSL 26.4.0 and cryptography 50.0.2), so the KeyUpdate flood calls
the system's libssl (the one the stdlib ``ssl`` module is linked to, found with
``ctypes.util.find_library("ssl")``) through its public API only: ``SSL_CTX_new``,
``SSL_new``, ``SSL_set_fd`` on the attacker's own socket, ``SSL_connect``, then
``SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED)`` and ``SSL_do_handshake`` (which
sends it at once: SSL_key_update(3)) again and again. A KeyUpdate built by OpenSSL in C
costs a few microseconds, so one connection streams them as fast as a server could
take them, which Python-built records (:class:`~harness.hostile.records.KeyUpdates`,
the fallback where no libssl 1.1.1+ is found) cannot (about 30 thousand a second,
measured on the development machine). ``ctypes`` releases the GIL around each call.

Macros of ssl.h are spelled out with their values from OpenSSL 3.0's headers
(``SSL_CTX_set_min_proto_version`` = ``SSL_CTX_ctrl(ctx, 123, version, NULL)``,
``SSL_set_tlsext_host_name`` = ``SSL_ctrl(ssl, 55, 0, name)``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import socket
import struct
from pathlib import Path

SSL_CTRL_SET_TLSEXT_HOSTNAME = 55
SSL_CTRL_SET_MIN_PROTO_VERSION = 123
TLSEXT_NAMETYPE_HOST_NAME = 0
TLS1_3_VERSION = 0x0304
SSL_FILETYPE_PEM = 1
SSL_KEY_UPDATE_NOT_REQUESTED = 0

_P = ctypes.c_void_p
_SIGNATURES = {  # name: (restype, argtypes)
    "TLS_client_method": (_P, []),
    "SSL_CTX_new": (_P, [_P]),
    "SSL_CTX_free": (None, [_P]),
    "SSL_CTX_ctrl": (ctypes.c_long, [_P, ctypes.c_int, ctypes.c_long, _P]),
    "SSL_CTX_use_certificate_chain_file": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "SSL_CTX_use_PrivateKey_file": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int]),
    "SSL_new": (_P, [_P]),
    "SSL_free": (None, [_P]),
    "SSL_ctrl": (ctypes.c_long, [_P, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]),
    "SSL_set_fd": (ctypes.c_int, [_P, ctypes.c_int]),
    "SSL_connect": (ctypes.c_int, [_P]),
    "SSL_key_update": (ctypes.c_int, [_P, ctypes.c_int]),
    "SSL_do_handshake": (ctypes.c_int, [_P]),
    "SSL_get_wbio": (_P, [_P]),
    "BIO_number_written": (ctypes.c_uint64, [_P]),
    "ERR_get_error": (ctypes.c_ulong, []),
    "ERR_error_string_n": (None, [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]),
}


@functools.cache
def load() -> ctypes.CDLL | None:
    """The system's libssl with the functions used here, or None (no libssl 1.1.1+)."""
    name = ctypes.util.find_library("ssl")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        for function, (restype, argtypes) in _SIGNATURES.items():
            getattr(lib, function).restype = restype
            getattr(lib, function).argtypes = argtypes
    except (OSError, AttributeError):
        return None
    return lib


class LibsslError(OSError):
    """OpenSSL refused or failed (the server's refusal, a closed socket): its reason."""


class KeyUpdateClient:
    """A TLS 1.3 client on ``sock`` (blocking, with kernel send/receive timeouts)."""

    def __init__(
        self,
        lib: ctypes.CDLL,
        sock: socket.socket,
        credential: Path | None,
        server_hostname: str,
        timeout_s: float,
    ) -> None:
        self.lib = lib
        self.ctx = lib.SSL_CTX_new(lib.TLS_client_method())
        self.ssl = None
        if not self.ctx:
            raise LibsslError(self._reason("SSL_CTX_new"))
        try:
            lib.SSL_CTX_ctrl(self.ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_3_VERSION, None)
            if credential is not None:
                path = str(credential).encode()
                if lib.SSL_CTX_use_certificate_chain_file(self.ctx, path) != 1:
                    raise LibsslError(self._reason("certificate"))
                if lib.SSL_CTX_use_PrivateKey_file(self.ctx, path, SSL_FILETYPE_PEM) != 1:
                    raise LibsslError(self._reason("private key"))
            self.ssl = lib.SSL_new(self.ctx)
            if not self.ssl:
                raise LibsslError(self._reason("SSL_new"))
            name = server_hostname.encode()
            lib.SSL_ctrl(self.ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_HOST_NAME, name)
            sock.settimeout(None)  # OpenSSL needs a blocking descriptor; the kernel bounds it
            seconds = max(1, int(timeout_s))
            timeval = struct.pack("ll", seconds, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
            lib.SSL_set_fd(self.ssl, sock.fileno())
        except BaseException:
            self.close()
            raise

    def _reason(self, what: str) -> str:
        code = self.lib.ERR_get_error()
        if not code:
            return f"{what} failed"
        buffer = ctypes.create_string_buffer(256)
        self.lib.ERR_error_string_n(code, buffer, len(buffer))
        return f"{what}: {buffer.value.decode(errors='replace').rsplit(':', 1)[-1]}"

    def connect(self) -> None:
        if self.lib.SSL_connect(self.ssl) != 1:
            raise LibsslError(self._reason("handshake"))

    def key_updates(self, count: int) -> None:
        """Send ``count`` KeyUpdate messages, each at once. LibsslError when one fails."""
        lib, ssl = self.lib, self.ssl
        for _ in range(count):
            if lib.SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1:
                raise LibsslError(self._reason("SSL_key_update"))
            if lib.SSL_do_handshake(ssl) != 1:
                raise LibsslError(self._reason("sending a KeyUpdate"))

    def written(self) -> int:
        """Bytes OpenSSL has written to the socket so far."""
        return int(self.lib.BIO_number_written(self.lib.SSL_get_wbio(self.ssl)))

    def close(self) -> None:
        """Free OpenSSL's objects (the socket stays the caller's)."""
        if self.ssl:
            self.lib.SSL_free(self.ssl)
            self.ssl = None
        if self.ctx:
            self.lib.SSL_CTX_free(self.ctx)
            self.ctx = None
