"""mod_ssl-style certificate variables, derived from DER with cryptography.

Both back-ends hand over the raw DER of the peer's certificate and chain and
call this one function, so their environ values cannot drift apart. Formats
follow Apache httpd 2.4 mod_ssl ("Environment Variables") as measured on httpd
2.4.71 (docs/apache.md): DNs as OpenSSL's ``X509_NAME_print_ex`` prints them
with mod_ssl's flags, ``i2a_ASN1_INTEGER`` serials, ``ASN1_TIME_print`` dates,
OpenSSL long names, and the variables mod_ssl adds for the client certificate
(``_n`` suffixes for repeated attributes, ``SSL_CLIENT_CERT_RFC4523_CEA``).

OpenSSL's printers are not reachable from Python (neither ``ssl``, pyOpenSSL
nor cryptography exposes ``X509_NAME_print_ex``), and cryptography's
``rfc4514_string`` differs from it (attribute order inside a multi-valued RDN,
control characters, emailAddress, string types), so the DN formatting is written
out, from the DER, in ``x509name``.
"""

from __future__ import annotations

import datetime as dt
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from .x509name import components, rfc2253, subject_and_issuer

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# OpenSSL long names (OBJ_nid2ln) for the signature algorithms certificates use.
_SIGNATURE_LONG_NAMES = {
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.10": "rsassaPss",
    "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448",
}


def client_variables(
    leaf_der: bytes, chain_ders: list[bytes] | None, now: dt.datetime | None = None
) -> dict[str, str]:
    """SSL_CLIENT_* for a verified certificate; CERT_CHAIN_n only when the chain is known."""
    with warnings.catch_warnings():  # a negative serial is RFC 5280's fault, not ours
        warnings.filterwarnings("ignore", message="Parsed a serial number")
        cert = x509.load_der_x509_certificate(leaf_der)
        serial = cert.serial_number
    # mod_ssl counts from the current time in whole seconds (ASN1_TIME_diff against
    # time(NULL)); a fraction of a second would lose a day when notAfter is a whole
    # number of days away.
    now = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    subject, issuer = subject_and_issuer(cert.tbs_certificate_bytes)
    env = {
        "SSL_CLIENT_CERT": _pem(cert),
        "SSL_CLIENT_S_DN": rfc2253(subject),
        "SSL_CLIENT_I_DN": rfc2253(issuer),
        "SSL_CLIENT_M_SERIAL": serial_hex(serial),
        "SSL_CLIENT_M_VERSION": str(cert.version.value + 1),
        "SSL_CLIENT_V_START": asn1_time(cert.not_valid_before_utc),
        "SSL_CLIENT_V_END": asn1_time(cert.not_valid_after_utc),
        "SSL_CLIENT_V_REMAIN": str(max(0, (cert.not_valid_after_utc - now).days)),
        "SSL_CLIENT_A_SIG": _SIGNATURE_LONG_NAMES.get(
            cert.signature_algorithm_oid.dotted_string, "UNKNOWN"
        ),
        "SSL_CLIENT_A_KEY": _key_long_name(cert.public_key()),
        "SSL_CLIENT_CERT_RFC4523_CEA": (
            f'{{ serialNumber {serial}, issuer rdnSequence:"{rfc2253(issuer)}" }}'
        ),
    }
    for side, entries in (("S", subject), ("I", issuer)):
        env.update(components(f"SSL_CLIENT_{side}_DN_", entries))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        for i, dns in enumerate(san.get_values_for_type(x509.DNSName)):
            env[f"SSL_CLIENT_SAN_DNS_{i}"] = dns
        for i, email in enumerate(san.get_values_for_type(x509.RFC822Name)):
            env[f"SSL_CLIENT_SAN_Email_{i}"] = email
    for i, der in enumerate(chain_ders or ()):
        env[f"SSL_CLIENT_CERT_CHAIN_{i}"] = _pem(x509.load_der_x509_certificate(der))
    return env


def serial_hex(serial: int) -> str:
    """i2a_ASN1_INTEGER: uppercase hex of the magnitude in whole bytes, ``-`` before a
    negative serial (RFC 5280 forbids them; OpenSSL accepts and prints them)."""
    digits = format(abs(serial), "X")
    return ("-" if serial < 0 else "") + digits.zfill(len(digits) + len(digits) % 2)


def asn1_time(when: dt.datetime) -> str:
    when = when.astimezone(dt.timezone.utc)
    return f"{_MONTHS[when.month - 1]} {when.day:2d} {when:%H:%M:%S} {when.year} GMT"


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_long_name(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "rsaEncryption"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "id-ecPublicKey"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ED25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "ED448"
    if isinstance(key, dsa.DSAPublicKey):
        return "dsaEncryption"
    return "UNKNOWN"
