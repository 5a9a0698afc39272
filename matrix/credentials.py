"""What the oracle knows about each credential, read from the certificate files.

Only the files are consulted (with cryptography): the names a certificate
carries, the root its chain leads to, and its validity window. Nothing here
imports the reference server or certs_gen's internals.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature


@dataclass(frozen=True)
class CredentialFacts:
    id: str
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    root: str | None  # id of the CA whose key signed the top of the chain, if one of ours
    not_before: dt.datetime
    not_after: dt.datetime
    client_auth_eku: bool

    def to_json(self) -> dict:
        return {
            "dns": list(self.dns),
            "ips": list(self.ips),
            "root": self.root,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "client_auth_eku": self.client_auth_eku,
        }


def read_credential(
    cred_id: str, cert_path: Path, chain_path: Path | None, roots: dict[str, Path]
) -> CredentialFacts:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    chain = x509.load_pem_x509_certificates(chain_path.read_bytes()) if chain_path else []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ipaddress.ip_address(ip)) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        client_auth = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
    except x509.ExtensionNotFound:
        client_auth = True  # no EKU restricts nothing
    return CredentialFacts(
        cred_id,
        dns,
        ips,
        _root_of([cert, *chain], roots),
        cert.not_valid_before_utc,
        cert.not_valid_after_utc,
        client_auth,
    )


def _root_of(chain: list[x509.Certificate], roots: dict[str, Path]) -> str | None:
    """Walk up the given chain; name the root CA that signed its last element."""
    for child, parent in itertools.pairwise(chain):
        if not _signed_by(child, parent):
            return None
    top = chain[-1]
    for root_id, path in roots.items():
        root = x509.load_pem_x509_certificate(path.read_bytes())
        if top == root or _signed_by(top, root):
            return root_id
    return None


def _signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
