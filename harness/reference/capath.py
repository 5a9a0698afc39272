"""A large client CA file handed to the stdlib as a hashed directory (OpenSSL ``capath``).

Why: the stdlib loads ``cafile``/``cadata`` into one X509_STORE, and the OpenSSL it
links (3.0) makes that superlinear: ``X509_STORE_add_cert`` looks for a duplicate
with ``sk_X509_OBJECT_find``, which sorts the whole store again after every
insertion (crypto/x509/x509_lu.c, ``x509_store_add``), and its ``d2i_X509`` costs
about 250 us a certificate on top. Measured in one process (OpenSSL 3.0.22, loaded
machine, CPU seconds): 1,024 certificates 0.27, 2,048 0.77, 10,001 11.8 through
``load_verify_locations(cafile=)`` and 19 through ``cadata=``. No option of the
stdlib avoids it, so on the builtin adapter a file of more than
``CAFILE_MAX_CERTIFICATES`` certificates goes through the one other loader the
stdlib has: ``load_verify_locations(capath=)``, OpenSSL's ``X509_LOOKUP_hash_dir``.
That one reads a certificate only when a chain needs an issuer of that subject,
from ``<subject hash>.<n>`` (the layout ``openssl rehash`` writes; ``n`` counts
certificates whose subjects share a hash), so start-up costs one small file per
certificate: about 20 us each on tmpfs (``/dev/shm``, used when present; 50-150 us
on ext4). pyOpenSSL's OpenSSL (4.0) loads the same 10,001 certificates as a file
in about 0.3 s, no slower than the directory is written, so the pyopenssl adapter
keeps the file.

What is checked does not change: ``policy.check_ca_file`` has already parsed every
block and found a CA, and what is written is exactly those blocks. The directory
is used only when every certificate is one cryptography reads (cryptography is
stricter than OpenSSL, policy.py) and no block carries RFC 1421 headers; anything
else is loaded as a file (slow, and exactly as before). Should OpenSSL still fail
to read a file of the directory when a handshake needs it, that issuer is not
found and the client is refused: it fails closed. The subject hash is OpenSSL's
own ``X509_NAME_hash`` (SHA-1 of the canonical name: the format of every
``/etc/ssl/certs``, read alike by OpenSSL 1.0 to 4.0), called through the
cryptography binding pyOpenSSL's ``X509Name.hash()`` uses; no public API of ``ssl``,
pyOpenSSL or cryptography computes it from a name, hence this module.

Lifetime: the directory is private (``mkdtemp``, mode 0700) and set on the
SSLContext that reads it. ``ReferenceServer.stop()`` removes it
(``ClientCertAdapter.close()``); otherwise it goes when the context is released,
or at interpreter exit (Cheroot keeps every server it made in
``logging.statistics``, so a stopped server's context is never released). A
process killed with SIGKILL leaves it behind (``mtls-capath-*``).
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence

from .policy import CAFile
from .x509name import subject_der

try:  # cryptography's OpenSSL binding, as pyOpenSSL's X509Name.hash() calls it
    from OpenSSL._util import ffi as _ffi
    from OpenSSL._util import lib as _lib

    _HASH_AVAILABLE = all(
        hasattr(_lib, name) for name in ("d2i_X509_NAME", "X509_NAME_hash", "X509_NAME_free")
    )
except ImportError:  # pragma: no cover - then every CA file is loaded as a file
    _HASH_AVAILABLE = False

# Up to this many certificates the stdlib loads the file itself (measured: 256 in
# about 0.02-0.08 s); beyond, a hashed directory.
CAFILE_MAX_CERTIFICATES = 256
_FAST_TMP = "/dev/shm"  # tmpfs on Linux: 10,001 small files in ~0.12 s, not ~0.5-1.7 s


def subject_name_hash(name_der: bytes) -> int | None:
    """OpenSSL's X509_NAME_hash of a DER Name (what ``openssl x509 -subject_hash``
    prints, as an int), or None if OpenSSL cannot read or hash the name."""
    if not _HASH_AVAILABLE:
        return None
    data = _ffi.from_buffer(name_der)
    cursor = _ffi.new("unsigned char **", _ffi.cast("unsigned char *", data))
    name = _lib.d2i_X509_NAME(_ffi.NULL, cursor, len(name_der))
    if name == _ffi.NULL:
        return None
    try:
        value = _lib.X509_NAME_hash(name) & 0xFFFFFFFF
    finally:
        _lib.X509_NAME_free(name)
    # 0 is also what X509_NAME_hash_ex returns when it cannot hash (no SHA-1): then, and
    # for the one name in 2**32 whose hash is 0, the file is loaded as a file instead.
    return value or None


class HashedCADirectory:
    """A private ``capath`` directory holding ``certificates`` (DER, PEM-encoded one a
    file) under OpenSSL's hashed names; removed by ``cleanup()`` or when released."""

    def __init__(self, certificates: Sequence[tuple[int, bytes]]) -> None:
        """``certificates``: (subject hash, DER) pairs, in file order."""
        parent = _FAST_TMP if os.path.isdir(_FAST_TMP) and os.access(_FAST_TMP, os.W_OK) else None
        self.path = tempfile.mkdtemp(prefix="mtls-capath-", dir=parent)
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)
        try:
            _write(self.path, certificates)
        except BaseException:
            self.cleanup()
            raise

    def cleanup(self) -> None:
        self._finalizer()


def _write(path: str, certificates: Sequence[tuple[int, bytes]]) -> None:
    seen: set[bytes] = set()
    suffixes: dict[int, int] = {}
    directory = os.open(path, os.O_RDONLY)
    try:
        for name_hash, der in certificates:
            if der in seen:  # a duplicate: OpenSSL's cafile loader skips it too
                continue
            seen.add(der)
            n = suffixes.get(name_hash, 0)
            suffixes[name_hash] = n + 1
            fd = os.open(
                f"{name_hash:08x}.{n}",
                os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                0o600,
                dir_fd=directory,
            )
            try:
                _write_all(fd, _pem(der))
            finally:
                os.close(fd)
    finally:
        os.close(directory)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _pem(der: bytes) -> bytes:
    """RFC 7468 certificate text, 64 base64 characters a line (as OpenSSL writes it)."""
    body = base64.b64encode(der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


def hashed_entries(ca_file: CAFile) -> list[tuple[int, bytes]] | None:
    """(subject hash, DER) for every certificate of ``ca_file``, or None when the
    directory cannot hold exactly what the file holds (see the module docstring)."""
    entries = []
    for cert in ca_file.certificates:
        if cert.parsed is None or cert.block.headers:
            return None
        try:
            name_hash = subject_name_hash(subject_der(cert.block.der))
        except (IndexError, ValueError):
            return None
        if name_hash is None:
            return None
        entries.append((name_hash, cert.block.der))
    return entries


def hashed_directory(ca_file: CAFile) -> HashedCADirectory | None:
    """A hashed directory of ``ca_file``'s certificates when it holds more than
    CAFILE_MAX_CERTIFICATES and the directory can hold exactly what it holds; None
    when the back-end should load the file itself. The caller ties the directory to
    the context that reads it (``context._mtls_capath = directory``)."""
    if len(ca_file.certificates) <= CAFILE_MAX_CERTIFICATES:
        return None
    entries = hashed_entries(ca_file)
    return None if entries is None else HashedCADirectory(entries)
