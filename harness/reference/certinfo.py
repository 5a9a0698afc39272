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
control characters, emailAddress), so the DN formatting is written out here.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# DN components mod_ssl exposes as SSL_CLIENT_S_DN_<suffix> (its ssl_var_lookup_ssl_cert_dn_rec
# table); the second value of one is <suffix>_1, the third <suffix>_2, in DER order.
_DN_PARTS = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.TITLE: "T",
    NameOID.INITIALS: "I",
    NameOID.GIVEN_NAME: "G",
    NameOID.SURNAME: "S",
    x509.ObjectIdentifier("2.5.4.13"): "D",  # description
    NameOID.X500_UNIQUE_IDENTIFIER: "UID",
    NameOID.EMAIL_ADDRESS: "Email",
}

# Labels in DN strings: OpenSSL's short names (XN_FLAG_FN_SN); other OIDs print dotted.
_LABELS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.SURNAME: "SN",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.TITLE: "title",
    x509.ObjectIdentifier("2.5.4.13"): "description",
    NameOID.GIVEN_NAME: "GN",
    NameOID.INITIALS: "initials",
    NameOID.X500_UNIQUE_IDENTIFIER: "x500UniqueIdentifier",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.USER_ID: "UID",
}

# OpenSSL's escapes (crypto/asn1/a_strex.c do_esc_char): control characters (below 0x20
# and 0x7F) as backslash + two uppercase hex digits, the backslash doubled.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RFC2253_SPECIAL = re.compile(r'([,+"\\<>;])')

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
    now = now or dt.datetime.now(dt.timezone.utc)
    env = {
        "SSL_CLIENT_CERT": _pem(cert),
        "SSL_CLIENT_S_DN": rfc2253(cert.subject),
        "SSL_CLIENT_I_DN": rfc2253(cert.issuer),
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
            f'{{ serialNumber {serial}, issuer rdnSequence:"{rfc2253(cert.issuer)}" }}'
        ),
    }
    for side, name in (("S", cert.subject), ("I", cert.issuer)):
        env.update(dn_components(f"SSL_CLIENT_{side}_DN_", name))
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


def rfc2253(name: x509.Name) -> str:
    """``name`` as mod_ssl prints it: X509_NAME_print_ex, XN_FLAG_RFC2253 & ~ESC_MSB.

    OpenSSL walks the entries last to first (XN_FLAG_DN_REV), so the attributes of a
    multi-valued RDN also come out in reverse order, joined by ``+``; RDNs are joined
    by ``,``. Values are escaped as RFC 2253 asks (``_escape_2253``), UTF-8 kept as is.
    """
    entries = [(i, attr) for i, rdn in enumerate(name.rdns) for attr in rdn]
    out = []
    previous = None
    for rdn_index, attr in reversed(entries):
        if previous is not None:
            out.append("+" if rdn_index == previous else ",")
        label = _LABELS.get(attr.oid, attr.oid.dotted_string)
        out.append(f"{label}={_escape_2253(str(attr.value))}")
        previous = rdn_index
    return "".join(out)


def dn_components(prefix: str, name: x509.Name) -> dict[str, str]:
    """``prefix`` + CN, O, OU, OU_1 ...: each attribute's value on its own, as mod_ssl sets
    them (ASN1_STRFLGS_ESC_CTRL|UTF8_CONVERT: only control characters and the backslash
    are escaped; measured on httpd 2.4.71)."""
    out: dict[str, str] = {}
    counts: dict[str, int] = {}
    for attr in name:  # x509.Name iterates its attributes in DER order
        suffix = _DN_PARTS.get(attr.oid)
        if suffix is None:
            continue
        n = counts.get(suffix, 0)
        counts[suffix] = n + 1
        out[prefix + suffix + (f"_{n}" if n else "")] = _escape_controls(str(attr.value))
    return out


def _escape_controls(value: str) -> str:
    return _CONTROL.sub(_hex_escape, value.replace("\\", "\\\\"))


def _hex_escape(match: re.Match[str]) -> str:
    return f"\\{ord(match.group()):02X}"


def _escape_2253(value: str) -> str:
    """RFC 2253 section 2.4 as OpenSSL applies it: specials get a backslash, so do a
    leading ``#`` or space and a trailing space; control characters become ``\\XX``."""
    escaped = _CONTROL.sub(_hex_escape, _RFC2253_SPECIAL.sub(r"\\\1", value))
    if value[:1] in ("#", " "):
        escaped = "\\" + escaped
    if len(value) > 1 and value.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped


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
