"""What the application should see on an ``ok`` case (SPEC section 5).

Expected values are computed here from the certificate files, on a separate
path from the reference server's own formatting code (which this module must
not import): the certificate PEM is taken from the file as written, DNs are
assembled RDN by RDN, dates go through ``time.strftime``. Two independent
derivations that agree are the point of the check.
"""

from __future__ import annotations

import calendar
import datetime as dt
import fnmatch
import functools
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

_PEM_BLOCK = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----\r?\n?", re.DOTALL
)
# OpenSSL 3.0's short names (OBJ_nid2sn), as its RFC 2253 printer (XN_FLAG_FN_SN) labels
# them (measured with httpd 2.4.71, docs/spec.md section 5). An OID OpenSSL has no NID for
# is printed dotted, its value dumped as #<DER in hex> (XN_FLAG_DUMP_UNKNOWN_FIELDS).
_SHORT_NAMES = {
    NameOID.COMMON_NAME: "CN",
    NameOID.SURNAME: "SN",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.STREET_ADDRESS: "street",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.TITLE: "title",
    x509.ObjectIdentifier("2.5.4.13"): "description",
    NameOID.BUSINESS_CATEGORY: "businessCategory",
    NameOID.POSTAL_ADDRESS: "postalAddress",
    NameOID.POSTAL_CODE: "postalCode",
    NameOID.GIVEN_NAME: "GN",
    NameOID.INITIALS: "initials",
    NameOID.GENERATION_QUALIFIER: "generationQualifier",
    NameOID.X500_UNIQUE_IDENTIFIER: "x500UniqueIdentifier",
    NameOID.DN_QUALIFIER: "dnQualifier",
    NameOID.PSEUDONYM: "pseudonym",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
    NameOID.USER_ID: "UID",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.UNSTRUCTURED_NAME: "unstructuredName",
    NameOID.JURISDICTION_LOCALITY_NAME: "jurisdictionL",
    NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME: "jurisdictionST",
    NameOID.JURISDICTION_COUNTRY_NAME: "jurisdictionC",
    NameOID.INN: "INN",
    NameOID.OGRN: "OGRN",
    NameOID.SNILS: "SNILS",
}
# mod_ssl's SSL_CLIENT_S_DN_<x> suffixes: the attributes it extracts (ssl_engine_vars.c,
# ssl_var_lookup_ssl_cert_dn_rec, extract=1), by OID. A repeated attribute gets _<x>_1,
# _<x>_2, ... UID is NID_userId (0.9.2342.19200300.100.1.1), not x500UniqueIdentifier;
# SerialNumber is exported by httpd 2.4.71 as measured (docs/spec.md section 5).
_COMPONENT_SUFFIX = {
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
    x509.ObjectIdentifier("2.5.4.13"): "D",
    NameOID.USER_ID: "UID",
    NameOID.EMAIL_ADDRESS: "Email",
    NameOID.SERIAL_NUMBER: "SerialNumber",
}
# How OpenSSL's string printer (do_print_ex, UTF8_CONVERT) reads each ASN.1 string type:
# the 8-bit types one byte a character (a T61String's UTF-8 bytes become Latin-1 text),
# BMPString and UniversalString as UCS-2 / UCS-4; the others are not text (dumped in a
# DN string, read byte by byte in a component variable).
_ONE_BYTE_TYPES = {
    _ASN1Type.NumericString,
    _ASN1Type.PrintableString,
    _ASN1Type.T61String,
    _ASN1Type.IA5String,
    _ASN1Type.UTCTime,
    _ASN1Type.GeneralizedTime,
    _ASN1Type.VisibleString,
}
_WIDE_TYPES = {_ASN1Type.UTF8String: "utf-8", _ASN1Type.BMPString: "utf-16-be"}
_WIDE_TYPES[_ASN1Type.UniversalString] = "utf-32-be"
_KEY_LONG_NAMES = {
    "1.2.840.10045.2.1": "id-ecPublicKey",
    "1.2.840.113549.1.1.1": "rsaEncryption",
    "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448",
}
CONNECTION_FORMATS = {
    "SSL_PROTOCOL": re.compile(r"^TLSv1\.[23]$"),
    "SSL_CIPHER": re.compile(r"^[A-Z0-9][A-Z0-9_-]+$"),
    "SSL_VERSION_INTERFACE": re.compile(r"^[\w.+-]+/\S+"),
    "SSL_VERSION_LIBRARY": re.compile(r"^[\w.+-]+/\S+"),
}

# Variables mod_ssl 2.4 sets beyond SPEC section 5's list (measured on httpd 2.4.71 with
# +StdEnvVars +ExportCertData; docs/apache.md). They are about the connection or the
# server's own certificate, not the client's, so they are not required: a server may leave
# them out, but one that sets them must set them in mod_ssl's format. (SSL_CLIENT_* ones
# beyond the list, such as SSL_CLIENT_CERT_RFC4523_CEA, are expected values instead.)
MOD_SSL_EXTRAS = {
    "SSL_CIPHER_ALGKEYSIZE": re.compile(r"^\d+$"),
    "SSL_CIPHER_USEKEYSIZE": re.compile(r"^\d+$"),
    "SSL_CIPHER_EXPORT": re.compile(r"^(true|false)$"),
    "SSL_COMPRESS_METHOD": re.compile(r"^(NULL|ZLIB)$"),
    "SSL_SECURE_RENEG": re.compile(r"^(true|false)$"),
    "SSL_SESSION_ID": re.compile(r"^([0-9a-f]{2})*$"),
    "SSL_SESSION_RESUMED": re.compile(r"^(Initial|Resumed)$"),
    "SSL_TLS_SNI": re.compile(r"^[A-Za-z0-9.-]+$"),
    # The server's certificate, in the same formats as the client's (SSL_SERVER_S_DN, ...).
    "SSL_SERVER_*": re.compile(r"^.", re.DOTALL),
}

# Every variable SPEC section 5 names; an indexed family by its first member.
SPEC_VARIABLES = (
    "HTTPS",
    "wsgi.url_scheme",
    *CONNECTION_FORMATS,
    "SSL_CLIENT_VERIFY",
    "SSL_CLIENT_CERT",
    "SSL_CLIENT_S_DN",
    "SSL_CLIENT_S_DN_CN",
    "SSL_CLIENT_I_DN",
    "SSL_CLIENT_I_DN_CN",
    "SSL_CLIENT_M_SERIAL",
    "SSL_CLIENT_M_VERSION",
    "SSL_CLIENT_V_START",
    "SSL_CLIENT_V_END",
    "SSL_CLIENT_V_REMAIN",
    "SSL_CLIENT_A_SIG",
    "SSL_CLIENT_A_KEY",
    "SSL_CLIENT_SAN_DNS_0",
    "SSL_CLIENT_CERT_CHAIN_0",
)


def provided_variables(provides: Callable[[str, str], bool], adapters: list[str]) -> dict:
    """For the run's metadata: per adapter, the SPEC variables the target says it provides."""
    return {a: [v for v in SPEC_VARIABLES if provides(a, v)] for a in adapters}


def pem_blocks(path: Path) -> list[str]:
    return list(_pem_blocks(str(path)))


@functools.lru_cache(maxsize=128)
def _pem_blocks(path: str) -> tuple[str, ...]:
    """Read once per run: the certificate files do not change while the matrix runs."""
    return tuple(b.replace("\r\n", "\n") for b in _PEM_BLOCK.findall(Path(path).read_text()))


def expected_certificate_variables(
    cert_file: Path, sent_chain: list[str], nows: tuple[dt.datetime, ...]
) -> dict[str, str | set[str]]:
    """SSL_CLIENT_* for a verified client; a set value lists every acceptable value."""
    pem = pem_blocks(cert_file)[0]
    pem = pem if pem.endswith("\n") else pem + "\n"
    with warnings.catch_warnings():  # serial-negative is negative on purpose (certs_gen)
        warnings.filterwarnings("ignore", message="Parsed a serial number")
        cert = x509.load_pem_x509_certificate(pem.encode())
        serial = cert.serial_number
    expected: dict[str, str | set[str]] = {
        "SSL_CLIENT_CERT": pem,
        "SSL_CLIENT_S_DN": _dn(cert.subject),
        "SSL_CLIENT_I_DN": _dn(cert.issuer),
        "SSL_CLIENT_M_SERIAL": _serial(serial),
        "SSL_CLIENT_M_VERSION": {x509.Version.v3: "3", x509.Version.v1: "1"}[cert.version],
        "SSL_CLIENT_V_START": _asn1_time(cert.not_valid_before_utc),
        "SSL_CLIENT_V_END": _asn1_time(cert.not_valid_after_utc),
        "SSL_CLIENT_V_REMAIN": {days_left(cert.not_valid_after_utc, now) for now in nows},
        "SSL_CLIENT_A_SIG": _signature_long_name(cert),
        "SSL_CLIENT_A_KEY": _KEY_LONG_NAMES.get(cert.public_key_algorithm_oid.dotted_string, "?"),
        # mod_ssl: "{ serialNumber <decimal>, issuer rdnSequence:\"<issuer DN>\" }" (RFC 4523
        # CertificateExactAssertion in LDAP's generic string encoding).
        "SSL_CLIENT_CERT_RFC4523_CEA": (
            f'{{ serialNumber {serial}, issuer rdnSequence:"{_dn(cert.issuer)}" }}'
        ),
    }
    for side, name in (("S", cert.subject), ("I", cert.issuer)):
        seen: dict[str, int] = {}
        for rdn in name.rdns:
            for attr in rdn:
                suffix = _COMPONENT_SUFFIX.get(attr.oid)
                if suffix is None:
                    continue
                n = seen[suffix] = seen.get(suffix, -1) + 1
                key = f"SSL_CLIENT_{side}_DN_{suffix}" + (f"_{n}" if n else "")
                text = _printed(attr)
                if text is None:  # no text type: read one byte a character
                    text = _value_bytes(attr).decode("latin-1")
                expected[key] = _escape_value(text)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = [n.value for n in san if isinstance(n, x509.DNSName)]
        emails = [n.value for n in san if isinstance(n, x509.RFC822Name)]
    except x509.ExtensionNotFound:
        dns_names, emails = [], []
    expected.update({f"SSL_CLIENT_SAN_DNS_{i}": v for i, v in enumerate(dns_names)})
    expected.update({f"SSL_CLIENT_SAN_Email_{i}": v for i, v in enumerate(emails)})
    expected.update({f"SSL_CLIENT_CERT_CHAIN_{i}": v for i, v in enumerate(sent_chain)})
    return expected


@dataclass(frozen=True)
class EnvironDifference:
    """One variable that departs from SPEC section 5, as values (results.json schema 2).

    ``expected`` is the value mod_ssl would set (a sorted list when several are acceptable,
    the format's regular expression for connection variables, None when the variable must
    be absent); ``observed`` is what the application saw (None when it was absent).
    """

    variable: str
    expected: object
    observed: object


def check_environ(
    observed: dict[str, object],
    expected: dict[str, str | set[str]] | None,
    provided: Callable[[str], bool] = lambda name: True,
    protocol: str | None = None,
) -> list[EnvironDifference]:
    """Every way ``observed`` departs from SPEC section 5; empty when it conforms.

    ``expected`` is None when no client certificate should be visible. ``provided``
    says which variables are checked: the runner answers True for the target
    contract's required ones (harness.target.REQUIRED_VARIABLES) and, for the rest,
    what the target declares; a variable not provided may be absent, never wrong.
    ``HTTPS``, ``wsgi.url_scheme`` and ``SSL_CLIENT_VERIFY`` are always checked.
    ``protocol`` is the version the client saw the server choose ("TLSv1.2" / "TLSv1.3",
    harness.client's ``Attempt.tls_version``): when given, ``SSL_PROTOCOL`` must be that
    version, not only a version's name (mod_ssl: ``SSL_get_version`` of the connection),
    so a server that shows its maximum or a constant is caught on a TLS 1.2 connection.
    """
    observed = _drop_empty_client_cert(observed)
    problems = []
    for key, want in (("HTTPS", "on"), ("wsgi.url_scheme", "https")):
        if observed.get(key) != want:
            problems.append(EnvironDifference(key, want, observed.get(key)))
    for key, pattern in CONNECTION_FORMATS.items():
        value = observed.get(key)
        if value is None and not provided(key):
            continue
        if not isinstance(value, str) or not pattern.match(value):
            problems.append(EnvironDifference(key, pattern.pattern, value))
        elif key == "SSL_PROTOCOL" and protocol is not None and value != protocol:
            problems.append(EnvironDifference(key, protocol, value))
    verify = "SUCCESS" if expected else "NONE"
    if observed.get("SSL_CLIENT_VERIFY") != verify:
        problems.append(
            EnvironDifference("SSL_CLIENT_VERIFY", verify, observed.get("SSL_CLIENT_VERIFY"))
        )
    expected = expected or {}
    problems += extra_variable_differences(observed, provided)
    for key, want in expected.items():
        got = observed.get(key)
        if got is None and not provided(key):
            continue
        ok = got in want if isinstance(want, set) else got == want
        if not ok:
            shown = sorted(want) if isinstance(want, set) else want
            problems.append(EnvironDifference(key, shown, got))
    for key in sorted(observed):
        if key.startswith("SSL_CLIENT_") and key != "SSL_CLIENT_VERIFY" and key not in expected:
            problems.append(EnvironDifference(key, None, observed[key]))
    return problems


def extra_variable_differences(
    observed: dict[str, object], provided: Callable[[str], bool] = lambda name: True
) -> list[EnvironDifference]:
    """SSL_* variables outside SPEC section 5's list that the target says it provides.

    Those mod_ssl also sets (``MOD_SSL_EXTRAS``) must have mod_ssl's format; any other
    non-client one is reported, so a variable nobody documented never passes unseen.
    (SSL_CLIENT_* variables are checked against the expected values instead.) A
    difference's ``expected`` is the format's regular expression, or None when the
    variable should not be there at all.
    """
    problems: list[EnvironDifference] = []
    for key in sorted(observed):
        if not key.startswith("SSL_") or key.startswith("SSL_CLIENT_") or not provided(key):
            continue
        if key in CONNECTION_FORMATS:
            continue
        pattern = next((p for k, p in MOD_SSL_EXTRAS.items() if fnmatch.fnmatchcase(key, k)), None)
        value = observed[key]
        if pattern is None:
            problems.append(EnvironDifference(key, None, value))  # no mod_ssl variable
        elif not isinstance(value, str) or not pattern.match(value):
            problems.append(EnvironDifference(key, pattern.pattern, value))
    return problems


def _drop_empty_client_cert(observed: dict[str, object]) -> dict[str, object]:
    """mod_ssl (+ExportCertData) sets SSL_CLIENT_CERT to "" when the client sent no
    certificate (measured on httpd 2.4.71, with SSLVerifyClient none and optional): an
    empty value carries no certificate, so it counts as absent (SPEC section 5)."""
    if observed.get("SSL_CLIENT_CERT") == "":
        observed = {k: v for k, v in observed.items() if k != "SSL_CLIENT_CERT"}
    return observed


def _dn(name: x509.Name) -> str:
    """OpenSSL's X509_NAME_print_ex with mod_ssl's flags (XN_FLAG_RFC2253 without ESC_MSB).

    XN_FLAG_DN_REV reverses the *entries*, so the attributes of a multi-valued RDN come
    out in reverse DER order too, joined by ``+`` (measured: ``CN=x+OU=y`` for the RDN
    ``OU=y + CN=x``). An OID without a short name is printed dotted.
    """
    rdns = []
    for rdn in reversed(name.rdns):
        parts = []
        for attr in reversed(list(rdn)):
            label = _SHORT_NAMES.get(attr.oid)
            text = _printed(attr)
            if label is None or text is None:
                value = _value_bytes(attr)
                tlv = bytes([attr._type.value]) + _der_length(len(value)) + value
                parts.append(f"{label or attr.oid.dotted_string}=#{tlv.hex().upper()}")
            else:
                parts.append(f"{label}={_escape(text)}")
        rdns.append("+".join(parts))
    return ",".join(rdns)


def _value_bytes(attr: x509.NameAttribute) -> bytes:
    """The value's content octets as cryptography writes them: UCS-2 / UCS-4 for BMPString
    and UniversalString, UTF-8 for every other string type."""
    if isinstance(attr.value, bytes):
        return attr.value
    return attr.value.encode(_WIDE_TYPES.get(attr._type, "utf-8"), errors="surrogatepass")


def _printed(attr: x509.NameAttribute) -> str | None:
    """The value's text as OpenSSL reads it, by string type; None for a non-text type."""
    if attr._type in _ONE_BYTE_TYPES:
        return _value_bytes(attr).decode("latin-1")
    if attr._type in _WIDE_TYPES:
        return attr.value if isinstance(attr.value, str) else None
    return None


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(size)]) + size


def _escape(value: str) -> str:
    """RFC 2253 escaping as OpenSSL's do_esc_char does it (ASN1_STRFLGS_ESC_2253|ESC_CTRL).

    ``, + " \\ < > ;`` get a backslash; ``#`` and a space at the start of a value longer
    than one character, and a space at the end, too; control characters (below 0x20, and
    0x7F) become ``\\XX`` in uppercase hex; everything else, UTF-8 included, is left as it
    is (mod_ssl clears ESC_MSB).
    """
    out = []
    last = len(value) - 1
    for i, ch in enumerate(value):
        first = i == 0 and last > 0  # a one-character value is only "last" (do_buf)
        if ch in ',+"\\<>;' or (first and ch in "# ") or (i == last and ch == " "):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


def _escape_value(value: str) -> str:
    """A DN attribute's own variable (SSL_CLIENT_S_DN_CN...): mod_ssl prints the value with
    ASN1_STRFLGS_ESC_CTRL|UTF8_CONVERT, so control characters become ``\\XX`` and the
    backslash itself is doubled (OpenSSL escapes it whenever any escaping is asked for);
    the RFC 2253 specials and spaces stay as they are (measured on httpd 2.4.71).
    """
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


def _serial(number: int) -> str:
    """OpenSSL's i2a_ASN1_INTEGER: the magnitude in whole bytes, uppercase, ``-`` if negative."""
    magnitude = abs(number)
    digits = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "big").hex().upper()
    return "-" * (number < 0) + digits


def _asn1_time(when: dt.datetime) -> str:
    return time.strftime("%b %e %H:%M:%S %Y GMT", when.utctimetuple())


def days_left(not_after: dt.datetime, now: dt.datetime) -> str:
    """SSL_CLIENT_V_REMAIN at ``now`` (aware datetimes): whole days from the current whole
    second to notAfter, rounded down, ``"0"`` when none is left.

    mod_ssl reads the clock in whole seconds (``apr_time_sec(apr_time_now())``), so the
    count steps at notAfter's time of day exactly, not one second later or earlier: measured
    on httpd 2.4.71 with notAfter - now = 86399 s (0), 86400 s (1), 172799 s (1), 172800 s
    (2), each request inside the whole second it was aimed at (docs/spec.md section 5).
    """
    seconds = calendar.timegm(not_after.utctimetuple()) - calendar.timegm(now.utctimetuple())
    return str(max(0, seconds // 86400))


def _signature_long_name(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid.dotted_string
    digest = cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else ""
    if oid.startswith("1.2.840.10045.4.3."):
        return f"ecdsa-with-{digest.upper()}"
    if oid == "1.2.840.113549.1.1.10":  # RSASSA-PSS: one OID, the hash in its parameters
        return "rsassaPss"
    if oid.startswith("1.2.840.113549.1.1.") and digest:
        return f"{digest}WithRSAEncryption"
    return {"1.3.101.112": "ED25519", "1.3.101.113": "ED448"}.get(oid, "?")
