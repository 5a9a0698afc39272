"""The CA names a server lists in its CertificateRequest, as RFC 4514 strings.

Written here because no maintained Python library exposes them to a stdlib
client: the stdlib has no API for the received list (OpenSSL's
SSL_get0_peer_CA_list), and cryptography can format an ``x509.Name`` but not
load one from bare DER. So this module reads the two message layouts and the
few DER types a DistinguishedName is built of, and hands the attributes to
cryptography for the RFC 4514 text.

- TLS 1.2 (RFC 5246 section 7.4.4): certificate_types<1..2^8-1>,
  supported_signature_algorithms<2..2^16-2>, certificate_authorities<0..2^16-1>.
- TLS 1.3 (RFC 8446 section 4.3.2): certificate_request_context<0..2^8-1>,
  extensions<2..2^16-1>; the list is the certificate_authorities extension
  (type 47, section 4.2.4), absent when the server sends none.

Anything malformed yields a name ``"<malformed>"`` rather than an exception: the
client reports what it saw, and never fails a handshake over it.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

MALFORMED = "<malformed>"
_CERTIFICATE_AUTHORITIES = 47
# DER string types a DirectoryString (RFC 5280 section 4.1.2.4) or IA5String uses.
_STRING_CODECS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}


class _Malformed(ValueError):
    pass


def certificate_request_ca_names(message: bytes, tls_version: str | None) -> tuple[str, ...]:
    """The CA names of a CertificateRequest handshake message (with its 4-byte header)."""
    try:
        body = message[4:]
        ders = _tls13_names(body) if tls_version == "TLSv1.3" else _tls12_names(body)
        return tuple(name_to_rfc4514(der) for der in ders)
    except _Malformed:
        return (MALFORMED,)


def _vector(data: bytes, pos: int, length_bytes: int) -> tuple[bytes, int]:
    if pos + length_bytes > len(data):
        raise _Malformed("truncated length")
    n = int.from_bytes(data[pos : pos + length_bytes], "big")
    end = pos + length_bytes + n
    if end > len(data):
        raise _Malformed("truncated vector")
    return data[pos + length_bytes : end], end


def _name_list(data: bytes) -> list[bytes]:
    names, pos = [], 0
    while pos < len(data):
        der, pos = _vector(data, pos, 2)
        names.append(der)
    return names


def _tls12_names(body: bytes) -> list[bytes]:
    _, pos = _vector(body, 0, 1)  # certificate_types
    _, pos = _vector(body, pos, 2)  # supported_signature_algorithms
    authorities, _ = _vector(body, pos, 2)
    return _name_list(authorities)


def _tls13_names(body: bytes) -> list[bytes]:
    _, pos = _vector(body, 0, 1)  # certificate_request_context
    extensions, _ = _vector(body, pos, 2)
    pos = 0
    while pos < len(extensions):
        if pos + 2 > len(extensions):
            raise _Malformed("truncated extension")
        kind = int.from_bytes(extensions[pos : pos + 2], "big")
        data, pos = _vector(extensions, pos + 2, 2)
        if kind == _CERTIFICATE_AUTHORITIES:
            authorities, _ = _vector(data, 0, 2)
            return _name_list(authorities)
    return []


def _tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """One DER element at ``pos``: (tag, contents, position after it)."""
    if pos + 2 > len(data):
        raise _Malformed("truncated DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4 or pos + count > len(data):
            raise _Malformed("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise _Malformed("truncated DER contents")
    return tag, data[pos : pos + length], pos + length


def _oid(contents: bytes) -> str:
    if not contents:
        raise _Malformed("empty OID")
    arcs, value = [], 0
    for byte in contents:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def name_to_rfc4514(der: bytes) -> str:
    """A DER Name (RFC 5280 section 4.1.2.4) -> cryptography's RFC 4514 string."""
    tag, rdns, _ = _tlv(der, 0)
    if tag != 0x30:
        raise _Malformed("Name is not a SEQUENCE")
    sets, pos = [], 0
    while pos < len(rdns):
        tag, members, pos = _tlv(rdns, pos)
        if tag != 0x31:
            raise _Malformed("RDN is not a SET")
        attributes, inner = [], 0
        while inner < len(members):
            tag, pair, inner = _tlv(members, inner)
            oid_tag, oid, rest = _tlv(pair, 0)
            value_tag, value, _ = _tlv(pair, rest)
            if tag != 0x30 or oid_tag != 0x06 or value_tag not in _STRING_CODECS:
                raise _Malformed("unsupported attribute")
            try:
                text = value.decode(_STRING_CODECS[value_tag])
            except UnicodeDecodeError:
                raise _Malformed("undecodable value") from None
            attributes.append(x509.NameAttribute(ObjectIdentifier(_oid(oid)), text))
        if not attributes:
            raise _Malformed("empty RDN")
        sets.append(x509.RelativeDistinguishedName(attributes))
    try:
        return x509.Name(sets).rfc4514_string()
    except ValueError:
        raise _Malformed("cryptography refused the name") from None
