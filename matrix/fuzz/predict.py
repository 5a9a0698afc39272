"""The oracle for a generated certificate: admitted or refused, and why.

A pure function of the certificate file, the moment and the spec; it never asks a
server. The rules are SPEC section 4's (trusted issuer, dates, EKU) with what OpenSSL's
``X509_check_purpose(X509_PURPOSE_SSL_CLIENT)`` and its default security level add,
each measured on httpd 2.4.71 and the reference server (docs/spec.md section 11):

- notBefore after, or notAfter before, the moment: refused (``X509_V_ERR_CERT_NOT_YET_VALID``
  / ``_HAS_EXPIRED``);
- an extendedKeyUsage without id-kp-clientAuth: refused, anyExtendedKeyUsage does not
  stand in for it (``xku_reject`` in crypto/x509/v3_purp.c);
- a keyUsage with neither digitalSignature nor keyAgreement: refused (``ku_reject``);
- an RSA key below 2048 bits: refused at OpenSSL's default security level 2
  (``X509_V_ERR_EE_KEY_TOO_SMALL``; SSL_CTX_set_security_level);
- everything else that chains to ``ca``: admitted by a lenient verifier (httpd).

A strict verifier (``X509_V_FLAG_X509_STRICT``, which the reference server sets on both
adapters, SPEC section 4) also refuses what RFC 5280 forbids and OpenSSL 3.0's
``check_extensions`` (crypto/x509/x509_vfy.c) tests: a CA certificate (cA TRUE, even as
the leaf) without keyUsage or with basicConstraints not critical; keyCertSign on a
non-CA; a subjectAltName without entries. ``Prediction.nonconforming`` lists those: the
certificate is then admitted by Apache and may be refused by a strict target, and both
are right (SPEC section 4's ``nonconforming``, as the matrix treats ``legacy``).
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

ADMITTED, REFUSED = "ok", "refused"


@dataclass(frozen=True)
class Prediction:
    outcome: str  # ADMITTED or REFUSED
    reason: str
    nonconforming: tuple[str, ...] = ()  # why a strict verifier may refuse an ADMITTED one

    def accepts(self, outcome: str) -> bool:
        return outcome == self.outcome or (self.nonconforming != () and outcome == REFUSED)


def predict(cert_file: Path, now: dt.datetime) -> Prediction:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Parsed a serial number")
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    if cert.not_valid_before_utc > now:
        return Prediction(REFUSED, f"not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
    if cert.not_valid_after_utc < now:
        return Prediction(REFUSED, f"expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    eku = _extension(cert, x509.ExtendedKeyUsage)
    if eku is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        return Prediction(REFUSED, "extendedKeyUsage without clientAuth")
    ku = _extension(cert, x509.KeyUsage)
    if ku is not None and not (ku.digital_signature or ku.key_agreement):
        return Prediction(REFUSED, "keyUsage with neither digitalSignature nor keyAgreement")
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        return Prediction(REFUSED, f"RSA {key.key_size} below security level 2's 2048 bits")
    return Prediction(
        ADMITTED, "chains to ca, valid now, usable for client authentication", _strict(cert, ku)
    )


def _strict(cert: x509.Certificate, ku: x509.KeyUsage | None) -> tuple[str, ...]:
    """What OpenSSL 3.0's X509_V_FLAG_X509_STRICT refuses in a leaf (check_extensions)."""
    out = []
    try:
        bc_ext = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        bc_ext = None
    if bc_ext is not None and bc_ext.value.ca:
        if ku is None:
            out.append("a CA certificate without keyUsage (RFC 5280 4.2.1.3)")
        if not bc_ext.critical:
            out.append("a CA certificate's basicConstraints not critical (RFC 5280 4.2.1.9)")
    elif ku is not None and ku.key_cert_sign:
        out.append("keyCertSign on a certificate that is no CA (RFC 5280 4.2.1.3)")
    san = _extension(cert, x509.SubjectAlternativeName)
    if san is not None and len(san) == 0:
        out.append("an empty subjectAltName (RFC 5280 4.2.1.6)")
    return tuple(out)


def _extension(cert: x509.Certificate, kind: type) -> object | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
