"""What a generated client certificate is, as data, and hypothesis strategies for it.

A ``CertPlan`` says everything that varies (SPEC section 11): the subject's RDNs
(every attribute mod_ssl names, repeated, multi-valued, in every ASN.1 string type
cryptography can write), the validity window to the second (UTCTime years and
GeneralizedTime ones from 2050), the serial (every length, and negative or zero ones
through certs_gen's DER edit), SAN entries, the key type, extensions (EKU, key usage,
basic constraints, name constraints) and whether an intermediate of ``ca`` issues it.
Plans are plain frozen data so that hypothesis shrinks them and a finding prints as a
readable value; ``matrix.fuzz.issue`` turns one into PEM files. The strategies compose:
``plans()`` is built from ``names()``, ``validities()``, ``serials()``, ``sans()``,
``key_types()`` and ``extension_mixes()``, each usable on its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hypothesis import strategies as st

UTC = dt.timezone.utc

# mod_ssl's ssl_var_lookup_ssl_cert_dn_rec (httpd modules/ssl/ssl_engine_vars.c) by OpenSSL
# short name, with the attribute type's OID, plus SerialNumber (exported by httpd 2.4.71,
# measured) and x500UniqueIdentifier (which is not mod_ssl's UID; docs/spec.md section 5).
ATTRIBUTES = {
    "C": "2.5.4.6",
    "ST": "2.5.4.8",
    "L": "2.5.4.7",
    "O": "2.5.4.10",
    "OU": "2.5.4.11",
    "CN": "2.5.4.3",
    "title": "2.5.4.12",
    "initials": "2.5.4.43",
    "GN": "2.5.4.42",
    "SN": "2.5.4.4",
    "description": "2.5.4.13",
    "UID": "0.9.2342.19200300.100.1.1",
    "emailAddress": "1.2.840.113549.1.9.1",
    "serialNumber": "2.5.4.5",
    "x500UniqueIdentifier": "2.5.4.45",
    "DC": "0.9.2342.19200300.100.1.25",
}
# ASN.1 string types cryptography writes (its _ASN1Type names), with the characters each
# may carry: PrintableString's alphabet (X.680 41.4), IA5String's ASCII; T61String with
# Latin-1 text (cryptography writes its UTF-8 bytes, OpenSSL reads them one byte a
# character); BMPString within the Basic Multilingual Plane (no surrogates: UCS-2).
PRINTABLE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"
STRING_TYPES = (
    "UTF8String",
    "PrintableString",
    "IA5String",
    "T61String",
    "BMPString",
    "UniversalString",
)
# Attributes whose ASN.1 definition fixes the type (RFC 5280 appendix A): C and
# serialNumber are PrintableString, emailAddress and DC IA5String.
FIXED_TYPES = {
    "C": "PrintableString",
    "serialNumber": "PrintableString",
    "emailAddress": "IA5String",
    "DC": "IA5String",
}
KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "ed25519", "rsa-pss", "rsa-1024")

# UTCTime covers 1950-2049 (RFC 5280 4.1.2.5.1); from 2050 GeneralizedTime.
EARLIEST = dt.datetime(1950, 1, 1, tzinfo=UTC)
LATEST = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@dataclass(frozen=True)
class Attribute:
    name: str  # a key of ATTRIBUTES
    value: str
    string_type: str = "UTF8String"


@dataclass(frozen=True)
class Extensions:
    """None leaves an extension out; the tuples name its contents."""

    eku: tuple[str, ...] | None = ("clientAuth",)  # clientAuth, serverAuth, anyExtendedKeyUsage
    key_usage: tuple[str, ...] | None = ("digital_signature",)  # cryptography KeyUsage fields
    basic_constraints: str | None = "CA:FALSE critical"  # "CA:FALSE", "CA:TRUE", + " critical"
    name_constraints: str | None = None  # a permitted DNS subtree, on the leaf itself


@dataclass(frozen=True)
class CertPlan:
    subject: tuple[tuple[Attribute, ...], ...]  # RDNs, most significant first
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int
    san: tuple[tuple[str, str], ...]  # ("DNS" | "email" | "IP", value)
    key_type: str
    extensions: Extensions
    via_intermediate: bool = False


def _text(string_type: str, min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    if string_type == "PrintableString":
        return st.text(PRINTABLE, min_size=min_size, max_size=max_size)
    if string_type == "IA5String":
        return st.text(st.characters(max_codepoint=0x7F), min_size=min_size, max_size=max_size)
    if string_type == "T61String":
        return st.text(st.characters(max_codepoint=0xFF), min_size=min_size, max_size=max_size)
    if string_type == "BMPString":
        chars = st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",))
        return st.text(chars, min_size=min_size, max_size=max_size)
    chars = st.characters(exclude_categories=("Cs",))
    return st.text(chars, min_size=min_size, max_size=max_size)


@st.composite
def attributes(draw: st.DrawFn, names: tuple[str, ...] = tuple(ATTRIBUTES)) -> Attribute:
    """One attribute of any mod_ssl name, in a string type its definition allows."""
    name = draw(st.sampled_from(names))
    if name == "C":  # exactly two PrintableString characters (RFC 5280: ISO 3166)
        value = draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2))
        return Attribute(name, value, "PrintableString")
    string_type = FIXED_TYPES.get(name) or draw(st.sampled_from(STRING_TYPES))
    return Attribute(name, draw(_text(string_type)), string_type)


def names(max_rdns: int = 5, max_per_rdn: int = 2) -> st.SearchStrategy:
    """A subject: 1..max_rdns RDNs of 1..max_per_rdn attributes (repeats allowed)."""
    rdn = st.lists(attributes(), min_size=1, max_size=max_per_rdn, unique=True).map(tuple)
    return st.lists(rdn, min_size=1, max_size=max_rdns).map(tuple)


def instants(earliest: dt.datetime = EARLIEST, latest: dt.datetime = LATEST):
    """Any whole second between ``earliest`` and ``latest``, UTC."""
    span = int((latest - earliest).total_seconds())
    return st.integers(0, span).map(lambda s: earliest + dt.timedelta(seconds=s))


@st.composite
def validities(draw: st.DrawFn, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """(notBefore, notAfter) at any second, kept a day away from ``now`` so that an
    example's verdict does not depend on when it runs: valid now, expired, or not yet
    valid, with UTCTime and GeneralizedTime years alike."""
    day = dt.timedelta(days=1)
    kind = draw(st.sampled_from(("valid", "expired", "not-yet-valid")))
    if kind == "valid":
        return draw(instants(EARLIEST, now - day)), draw(instants(now + day, LATEST))
    if kind == "expired":
        before = draw(instants(EARLIEST, now - 2 * day))
        return before, draw(instants(before, now - day))
    before = draw(instants(now + day, LATEST - day))
    return before, draw(instants(before, LATEST))


def serials() -> st.SearchStrategy[int]:
    """1 to 20 octets (RFC 5280 4.1.2.2's limit), positive, zero or negative."""
    magnitude = st.integers(1, 159).flatmap(lambda bits: st.integers(2 ** (bits - 1), 2**bits - 1))
    return st.one_of(
        magnitude,
        st.just(0),
        magnitude.filter(lambda n: n < 2**158).map(lambda n: -n),
    )


def sans() -> st.SearchStrategy:
    """Zero to four SAN entries: DNS names, rfc822 names and IP addresses, mixed."""
    label = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
    dns = st.lists(label, min_size=1, max_size=3).map(".".join)
    entry = st.one_of(
        dns.map(lambda d: ("DNS", d)),
        st.tuples(label, dns).map(lambda p: ("email", f"{p[0]}@{p[1]}")),
        st.sampled_from(("127.0.0.1", "::1", "192.0.2.7")).map(lambda ip: ("IP", ip)),
    )
    return st.lists(entry, max_size=4).map(tuple)


def key_types() -> st.SearchStrategy[str]:
    return st.sampled_from(KEY_TYPES)


def extension_mixes() -> st.SearchStrategy[Extensions]:
    usages = ("digital_signature", "key_encipherment", "key_agreement", "content_commitment")
    return st.builds(
        Extensions,
        eku=st.one_of(
            st.none(),
            st.lists(
                st.sampled_from(("clientAuth", "serverAuth", "anyExtendedKeyUsage")),
                min_size=1,
                max_size=3,
                unique=True,
            ).map(tuple),
        ),
        key_usage=st.one_of(
            st.none(), st.lists(st.sampled_from(usages), min_size=1, unique=True).map(tuple)
        ),
        basic_constraints=st.sampled_from(
            (None, "CA:FALSE critical", "CA:FALSE", "CA:TRUE critical")
        ),
        name_constraints=st.sampled_from((None, "localhost", "example.test")),
    )


def plans(now: dt.datetime) -> st.SearchStrategy[CertPlan]:
    """Every axis at once; hypothesis shrinks each towards its simplest value (one RDN,
    UTF8String, a valid window, a small serial, no SAN, P-256, the default extensions)."""
    return st.builds(
        lambda subject, validity, serial, san, key_type, extensions, via: CertPlan(
            subject, validity[0], validity[1], serial, san, key_type, extensions, via
        ),
        names(),
        validities(now),
        serials(),
        sans(),
        key_types(),
        st.one_of(st.just(Extensions()), extension_mixes()),
        st.booleans(),
    )
