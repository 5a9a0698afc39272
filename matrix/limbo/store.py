"""The store check: OpenSSL's path validation of a case, without a handshake.

Every case gets it, keyless ones included: the case's trusted certificates in
an ``X509Store``, its peer certificate and untrusted intermediates in an
``X509StoreContext``, verified for the TLS client purpose (what an OpenSSL
server asks for: ``X509_STORE_CTX_set_default(ctx, "ssl_client")`` in
``ssl_verify_cert_chain``) at the case's validation time (or now), with the
verify flags each reference adapter sets:

- ``builtin``: the flags of the adapter's own ``ssl.SSLContext``, read back
  from ``verify_flags`` (CPython sets ``VERIFY_X509_TRUSTED_FIRST``);
- ``pyopenssl``: ``harness.reference.pyopenssl.VERIFY_FLAGS`` (OpenSSL cannot
  report a context's flags through pyOpenSSL, so the adapter names them).

What the store check does not reproduce, by construction, is what the TLS
layer adds around it: the security level's key-size and digest checks
(``ssl_security_cert_chain``), and the library build — the check runs on
pyOpenSSL's OpenSSL for both adapters, while the builtin adapter runs on the
stdlib's. A live verdict that differs from the store's shows exactly those.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from OpenSSL import crypto

try:  # no public pyOpenSSL API sets an X509_STORE's purpose
    from OpenSSL._util import lib as _lib
except ImportError:  # pragma: no cover
    _lib = None

from .corpus import LimboCase


@dataclass(frozen=True)
class StoreVerdict:
    accepted: bool
    detail: str  # OpenSSL's verify error text, or "ok", or why the chain could not be loaded


def store_check(case: LimboCase, flags: int, when: dt.datetime | None = None) -> StoreVerdict:
    """Verify the case's chain with ``flags`` (X509_V_FLAG_* bits) at ``when`` (None: now)."""
    store = crypto.X509Store()
    for i, pem in enumerate(case.trusted_certs):
        try:
            store.add_cert(crypto.load_certificate(crypto.FILETYPE_PEM, pem))
        except (crypto.Error, ValueError) as exc:
            return StoreVerdict(False, f"trusted certificate #{i} cannot be loaded: {exc}")
    for i, pem in enumerate(case.crls):  # as the adapters, given a CRL: leaf checked
        try:
            store.add_crl(x509.load_pem_x509_crl(pem.encode()))
        except (crypto.Error, ValueError, TypeError) as exc:
            return StoreVerdict(False, f"CRL #{i} cannot be loaded: {exc}")
    if case.crls:
        flags |= crypto.X509StoreFlags.CRL_CHECK
    if flags:
        store.set_flags(flags)
    if _lib is not None:
        _lib.X509_STORE_set_purpose(store._store, _lib.X509_PURPOSE_SSL_CLIENT)
    if when is not None:
        store.set_time(when.astimezone(dt.timezone.utc).replace(tzinfo=None))
    try:
        leaf = crypto.load_certificate(crypto.FILETYPE_PEM, case.peer_certificate)
        chain = [
            crypto.load_certificate(crypto.FILETYPE_PEM, pem)
            for pem in case.untrusted_intermediates
        ]
    except (crypto.Error, ValueError) as exc:
        return StoreVerdict(False, f"the presented chain cannot be loaded: {exc}")
    try:
        crypto.X509StoreContext(store, leaf, chain).verify_certificate()
    except crypto.X509StoreContextError as exc:
        return StoreVerdict(False, str(exc.args[0]) if exc.args else str(exc))
    except crypto.Error as exc:
        return StoreVerdict(False, f"verification failed: {exc}")
    return StoreVerdict(True, "ok")
