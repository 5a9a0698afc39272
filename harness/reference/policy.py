"""Verification policy (SPEC section 2): what a configuration means, checked up front.

Both back-ends read the same validated ``TLSSettings`` so that they cannot
disagree on what, say, ``optional`` plus a host check is supposed to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .errors import ConfigError, ConfigFileError

CLIENT_CHECKS = ("ignore", "optional", "required")
DEFAULT_HANDSHAKE_TIMEOUT = 10.0


@dataclass(frozen=True)
class TLSSettings:
    certificate: str
    private_key: str
    certificate_chain: str | None = None
    client_CA: str | None = None
    client_CRL: str | None = None  # PEM CRL(s) checked against the client's certificate
    client_check: str = "ignore"
    client_check_host: bool = False
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT

    @property
    def requests_certificate(self) -> bool:
        return self.client_check != "ignore"

    @property
    def requires_certificate(self) -> bool:
        return self.client_check == "required"


def validate(settings: TLSSettings) -> TLSSettings:
    """Refuse every configuration that SPEC section 2 calls invalid, naming what is wrong."""
    if settings.client_check not in CLIENT_CHECKS:
        choices = ", ".join(CLIENT_CHECKS)
        raise ConfigError(
            f"unknown client_check {settings.client_check!r} (choose from: {choices})"
        )
    if not isinstance(settings.client_check_host, bool):
        raise ConfigError(
            f"client_check_host must be true or false, not {settings.client_check_host!r}"
        )
    if settings.client_check_host and settings.client_check == "ignore":
        raise ConfigError(
            "client_check_host needs a verified client certificate: "
            "use client_check 'optional' or 'required', not 'ignore'"
        )
    if settings.requests_certificate and not settings.client_CA:
        raise ConfigError(f"client_check {settings.client_check!r} needs client_CA (a CA file)")
    if settings.client_CRL and not settings.requests_certificate:
        raise ConfigError(
            "client_CRL needs a verified client certificate: "
            "use client_check 'optional' or 'required', not 'ignore'"
        )
    timeout = settings.handshake_timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
        raise ConfigError(
            f"handshake_timeout must be a number of seconds in (0, 300], not {timeout!r}"
        )

    cert = _load_certificates(settings.certificate, "certificate")[0]
    key = _load_key(settings.private_key)
    if _spki(key.public_key()) != _spki(cert.public_key()):
        raise ConfigError(
            f"private key {settings.private_key} does not match certificate {settings.certificate}"
        )
    if settings.certificate_chain:
        _load_certificates(settings.certificate_chain, "certificate chain")
    if settings.client_CA:
        _load_certificates(settings.client_CA, "client CA")
    if settings.client_CRL:
        load_crls(settings.client_CRL)
    return settings


def load_crls(path: str) -> list[x509.CertificateRevocationList]:
    """Every PEM CRL in the file (RFC 5280 section 5); none is a configuration error."""
    data = _read(path, "client CRL")
    crls = []
    for block in data.split(b"-----END X509 CRL-----")[:-1]:
        start = block.find(b"-----BEGIN X509 CRL-----")
        try:
            crls.append(x509.load_pem_x509_crl(block[start:] + b"-----END X509 CRL-----\n"))
        except ValueError:
            raise ConfigFileError(f"client CRL file holds a corrupt CRL: {path}", path) from None
    if not crls:
        raise ConfigFileError(f"client CRL file holds no PEM CRL: {path}", path)
    return crls


def _read(path: str | os.PathLike[str] | None, what: str) -> bytes:
    if path is None or path == "":
        raise ConfigError(f"{what} file is required")
    try:
        path = os.fspath(path)
    except TypeError:
        raise ConfigError(f"{what} file must be a path, not {path!r}") from None
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise ConfigFileError(f"{what} file not found: {path}", path) from None
    except IsADirectoryError:
        raise ConfigFileError(f"{what} file is a directory: {path}", path) from None
    except OSError as exc:
        raise ConfigFileError(f"{what} file unreadable: {path} ({exc.strerror})", path) from None


def _load_certificates(path: str, what: str) -> list[x509.Certificate]:
    data = _read(path, what)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise ConfigFileError(f"{what} file holds no PEM certificate: {path}", path)
    return certs


def _load_key(path: str):
    data = _read(path, "private key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigFileError(
            f"private key file holds no unencrypted PEM private key: {path}", path
        ) from None


def _spki(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
