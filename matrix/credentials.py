"""What the oracle knows about each credential, read from the certificate files.

Only the files are consulted (with cryptography): the names a certificate
carries, the root its chain leads to, its validity window, and the CRLs that
list it. Nothing here imports the reference server or certs_gen's internals.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import warnings
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
    revoked_by: tuple[str, ...] = ()  # ids of the CAs whose CRL lists this certificate
    subject_alt_name: bool = True  # False: no subjectAltName extension at all
    intermediates: int = 0  # CA certificates the client sends after its own
    # What a strict RFC 5280 verifier (OpenSSL's X509_V_FLAG_X509_STRICT) objects to in
    # the chain up to its root; empty for a conforming chain.
    nonconforming: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {
            "dns": list(self.dns),
            "ips": list(self.ips),
            "root": self.root,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "client_auth_eku": self.client_auth_eku,
            "revoked_by": list(self.revoked_by),
            "subject_alt_name": self.subject_alt_name,
            "intermediates": self.intermediates,
            "nonconforming": list(self.nonconforming),
        }


def read_credential(
    cred_id: str,
    cert_path: Path,
    chain_path: Path | None,
    roots: dict[str, Path],
    crls: dict[str, Path] | None = None,
) -> CredentialFacts:
    """``crls``: CA id -> its CRL file; a CRL counts only if that CA's key signed it."""
    with warnings.catch_warnings():
        # A negative or zero serial (serial-negative) is read as OpenSSL reads it;
        # cryptography warns that RFC 5280 disallows it, which is the point of that cert.
        warnings.filterwarnings("ignore", "Parsed a serial number")
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        serial = cert.serial_number
    chain = x509.load_pem_x509_certificates(chain_path.read_bytes()) if chain_path else []
    has_san = True
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ipaddress.ip_address(ip)) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips, has_san = (), (), False
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
        _revoked_by(cert.issuer, serial, crls or {}, roots),
        has_san,
        len(chain),
        _nonconforming([cert, *chain], roots),
    )


def _nonconforming(chain: list[x509.Certificate], roots: dict[str, Path]) -> tuple[str, ...]:
    """RFC 5280 requirements a strict verifier enforces (OpenSSL 3's X509_V_FLAG_X509_STRICT
    checks in ``check_extensions``): every issued certificate carries an authority key
    identifier (section 4.2.1.1); a CA carries a subject key identifier (4.2.1.2) and a
    critical basicConstraints (4.2.1.9). Checked on the chain and the root it leads to."""
    problems = []
    root_id = _root_of(chain, roots)
    full = list(chain)
    if root_id is not None:
        root = x509.load_pem_x509_certificate(roots[root_id].read_bytes())
        if root != chain[-1]:
            full.append(root)
    for index, cert in enumerate(full):
        exts = {type(e.value): e for e in cert.extensions}
        self_signed = cert.issuer == cert.subject
        if not self_signed and x509.AuthorityKeyIdentifier not in exts:
            problems.append(f"certificate {index} has no authority key identifier")
        bc = exts.get(x509.BasicConstraints)
        if bc is not None and bc.value.ca:
            if not bc.critical:
                problems.append(f"CA certificate {index} has a non-critical basicConstraints")
            if x509.SubjectKeyIdentifier not in exts:
                problems.append(f"CA certificate {index} has no subject key identifier")
    return tuple(problems)


def _revoked_by(
    issuer: x509.Name, serial: int, crls: dict[str, Path], roots: dict[str, Path]
) -> tuple[str, ...]:
    """CAs whose CRL (RFC 5280 section 5: same issuer name, signed by the CA's key)
    lists this certificate's serial number."""
    out = []
    for ca_id, path in crls.items():
        crl = x509.load_pem_x509_crl(path.read_bytes())
        ca = x509.load_pem_x509_certificate(roots[ca_id].read_bytes())
        if crl.issuer != issuer or not crl.is_signature_valid(ca.public_key()):
            continue
        # compared entry by entry: the lookup helper refuses a negative serial, which
        # certificates in the set (serial-negative) carry
        if any(entry.serial_number == serial for entry in crl):
            out.append(ca_id)
    return tuple(out)


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
