"""Distinguished names as mod_ssl prints them, read from the certificate's own DER.

mod_ssl prints a DN with OpenSSL's ``X509_NAME_print_ex`` (flags ``XN_FLAG_RFC2253 &
~ASN1_STRFLGS_ESC_MSB``) and one attribute's value with ``ASN1_STRING_print_ex``
(``ASN1_STRFLGS_ESC_CTRL | ASN1_STRFLGS_UTF8_CONVERT``), httpd
``modules/ssl/ssl_engine_vars.c`` and ``ssl_util_ssl.c``. Both printers work on the
*bytes* of each value and its ASN.1 string type: a T61String's bytes are Latin-1
characters, a BMPString holds UCS-2, an attribute type OpenSSL has no name for is
dumped as ``#`` + the hex of its DER. cryptography decodes every string type as UTF-8
and hides the tag, so the entries are taken here from the DER of the to-be-signed
certificate (RFC 5280 section 4.1: Name ::= SEQUENCE OF SET OF AttributeTypeAndValue),
which also keeps a multi-valued RDN's attributes in their DER order. No maintained
library exposes OpenSSL's printers or the raw entries, hence this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# OpenSSL 3.0's short names (OBJ_nid2sn) for the attribute types certificates use: the
# label X509_NAME_print_ex writes with XN_FLAG_FN_SN. Measured on httpd 2.4.71 / OpenSSL
# 3.0 (docs/spec.md section 5); an OID not listed has no NID and is printed dotted.
OPENSSL_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.13": "description",
    "2.5.4.15": "businessCategory",
    "2.5.4.16": "postalAddress",
    "2.5.4.17": "postalCode",
    "2.5.4.42": "GN",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.45": "x500UniqueIdentifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "emailAddress",
    "1.2.840.113549.1.9.2": "unstructuredName",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
    "1.2.643.3.131.1.1": "INN",
    "1.2.643.100.1": "OGRN",
    "1.2.643.100.3": "SNILS",
}

# The attributes mod_ssl exports as SSL_CLIENT_S_DN_<suffix> (ssl_var_lookup_ssl_cert_dn_rec
# with extract=1; UID is NID_userId, not x500UniqueIdentifier; SerialNumber is in httpd
# 2.4.71 as measured, not in the 2.4.x source of 2024). The second value is <suffix>_1.
MOD_SSL_COMPONENTS = {
    "2.5.4.6": "C",
    "2.5.4.8": "ST",
    "2.5.4.7": "L",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.3": "CN",
    "2.5.4.12": "T",
    "2.5.4.43": "I",
    "2.5.4.42": "G",
    "2.5.4.4": "S",
    "2.5.4.13": "D",
    "0.9.2342.19200300.100.1.1": "UID",
    "1.2.840.113549.1.9.1": "Email",
    "2.5.4.5": "SerialNumber",
}

# ASN.1 string tags OpenSSL prints as text (do_print_ex's tag2nbyte), with the codec that
# turns their bytes into characters: one byte a character for the 8-bit types.
_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x12: "latin-1",  # NumericString
    0x13: "latin-1",  # PrintableString
    0x14: "latin-1",  # T61String (OpenSSL: one byte, one character)
    0x16: "latin-1",  # IA5String
    0x17: "latin-1",  # UTCTime
    0x18: "latin-1",  # GeneralizedTime
    0x1A: "latin-1",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RFC2253_SPECIAL = re.compile(r'([,+"\\<>;])')


@dataclass(frozen=True)
class Entry:
    """One AttributeTypeAndValue: its RDN's index, the type's dotted OID, the value's tag,
    its content octets and its whole DER (tag, length, content)."""

    rdn: int
    oid: str
    tag: int
    content: bytes
    der: bytes

    def text(self) -> str | None:
        """The value as OpenSSL's UTF8_CONVERT reads it; None for a type it dumps."""
        codec = _STRING_CODECS.get(self.tag)
        if codec is None:
            return None
        return self.content.decode(codec, errors="surrogatepass")


def subject_and_issuer(tbs_der: bytes) -> tuple[list[Entry], list[Entry]]:
    """The subject's and the issuer's entries, from TBSCertificate's DER (RFC 5280 4.1)."""
    parts = _children(_content(tbs_der))
    at = 1 if parts[0][0] == 0xA0 else 0  # [0] EXPLICIT version, absent for v1
    return _entries(parts[at + 4]), _entries(parts[at + 2])


def subject_der(certificate_der: bytes) -> bytes:
    """The subject Name's DER, tag and length included, from a Certificate's DER (RFC 5280
    section 4.1); IndexError or ValueError if the DER is not shaped like one."""
    at, _ = _header(certificate_der, 0)  # Certificate: into its content
    at, _ = _header(certificate_der, at)  # TBSCertificate: into its content
    skip = 5 if certificate_der[at] == 0xA0 else 4  # [0] EXPLICIT version, absent for v1
    for _ in range(skip):  # version, serialNumber, signature, issuer, validity
        start, length = _header(certificate_der, at)
        at = start + length
    start, length = _header(certificate_der, at)
    if certificate_der[at] != 0x30 or start + length > len(certificate_der):
        raise ValueError("the subject is not a whole SEQUENCE")
    return certificate_der[at : start + length]


def rfc2253(entries: list[Entry]) -> str:
    """X509_NAME_print_ex(XN_FLAG_RFC2253 & ~ESC_MSB): entries last to first
    (XN_FLAG_DN_REV, so a multi-valued RDN's attributes come out reversed too), ``+``
    inside an RDN, ``,`` between RDNs; OpenSSL's short name or the dotted OID; a type
    with no NID, or a value that is no string, dumped as ``#`` + uppercase hex DER."""
    out = []
    previous = None
    for entry in reversed(entries):
        if previous is not None:
            out.append("+" if entry.rdn == previous else ",")
        label = OPENSSL_SHORT_NAMES.get(entry.oid)
        text = entry.text()
        if label is None or text is None:
            value = "#" + entry.der.hex().upper()
        else:
            value = _escape_2253(text)
        out.append(f"{label or entry.oid}={value}")
        previous = entry.rdn
    return "".join(out)


def components(prefix: str, entries: list[Entry]) -> dict[str, str]:
    """``prefix`` + CN, O, OU, OU_1 ...: mod_ssl's extract_dn, in DER order."""
    out: dict[str, str] = {}
    counts: dict[str, int] = {}
    for entry in entries:
        suffix = MOD_SSL_COMPONENTS.get(entry.oid)
        if suffix is None:
            continue
        n = counts.get(suffix, 0)
        counts[suffix] = n + 1
        # Without ASN1_STRFLGS_DUMP_UNKNOWN, a type OpenSSL does not print as text is
        # printed one byte a character (do_print_ex).
        text = entry.text()
        if text is None:
            text = entry.content.decode("latin-1")
        out[prefix + suffix + (f"_{n}" if n else "")] = _escape_controls(text)
    return out


def _escape_controls(value: str) -> str:
    """ASN1_STRFLGS_ESC_CTRL: control characters as ``\\XX``, and the backslash doubled
    (OpenSSL escapes it whenever any escaping is asked for)."""
    return _CONTROL.sub(_hex_escape, value.replace("\\", "\\\\"))


def _hex_escape(match: re.Match[str]) -> str:
    return f"\\{ord(match.group()):02X}"


def _escape_2253(value: str) -> str:
    """RFC 2253 section 2.4 as OpenSSL's do_esc_char applies it: specials get a
    backslash, so do a leading ``#`` or space (not when it is the only character: OpenSSL
    checks "last" after "first") and a trailing space; control characters
    become ``\\XX``; characters above 0x7F are left as they are (ESC_MSB is off)."""
    escaped = _CONTROL.sub(_hex_escape, _RFC2253_SPECIAL.sub(r"\\\1", value))
    # do_buf sets the "first" flag, then the "last" one for the same character when the
    # value is one character long: a lone ``#`` is not escaped, a lone space is.
    if len(value) > 1 and value[0] in ("#", " "):
        escaped = "\\" + escaped
    if value.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def _entries(name_der: bytes) -> list[Entry]:
    out = []
    for index, rdn in enumerate(_children(_content(name_der))):
        for atv in _children(_content(rdn)):
            oid_der, value = _children(_content(atv))
            start, length = _header(value, 0)
            content = value[start : start + length]
            out.append(Entry(index, _oid(_content(oid_der)), value[0], content, value))
    return out


def _oid(content: bytes) -> str:
    """X.690 section 8.19: the first two arcs packed in the first subidentifier."""
    arcs, n = [], 0
    for byte in content:
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(n)
            n = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def _header(der: bytes, at: int) -> tuple[int, int]:
    """(offset of the content, length of the content) of the DER element at ``at``."""
    first = der[at + 1]
    if first < 0x80:
        return at + 2, first
    count = first & 0x7F
    return at + 2 + count, int.from_bytes(der[at + 2 : at + 2 + count], "big")


def _content(der: bytes) -> bytes:
    start, length = _header(der, 0)
    return der[start : start + length]


def _children(content: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(content):
        start, length = _header(content, at)
        out.append(content[at : start + length])
        at = start + length
    return out
