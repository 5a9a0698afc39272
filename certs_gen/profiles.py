"""The certificate sets, declared as data (SPEC section 1).

Adding a credential is one line here; ``build`` decides how to make it (trustme
where it can, cryptography's builder where trustme cannot).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Literal

from .keys import DEFAULT_KEY_TYPE, KEY_TYPES

Role = Literal["ca", "server", "client"]

UTC = dt.timezone.utc

# Fixed dates rather than "now +/- a day": a set that is reused weeks later must
# still be expired / not yet valid / valid exactly as its name says.
VALID = (dt.datetime(2000, 1, 1, tzinfo=UTC), dt.datetime(3000, 1, 1, tzinfo=UTC))
EXPIRED = (dt.datetime(2000, 1, 1, tzinfo=UTC), dt.datetime(2001, 1, 1, tzinfo=UTC))
NOT_YET_VALID = (dt.datetime(2990, 1, 1, tzinfo=UTC), dt.datetime(3000, 1, 1, tzinfo=UTC))

ORGANIZATION = "mtls-matrix"


@dataclass(frozen=True)
class CertSpec:
    id: str
    role: Role
    issuer: str | None = None  # id of the trust anchor it chains to; None for a root
    identities: tuple[str, ...] = ()
    validity: tuple[dt.datetime, dt.datetime] = VALID
    via_intermediate: bool = False  # issued by an intermediate CA under ``issuer``
    client_eku: bool = True  # False: EKU serverAuth only
    san: bool = True  # False: Common Name only, no subjectAltName
    common_name: str | None = None  # defaults to the id
    # An older-style certificate (RFC 3280-era tooling): basicConstraints not critical
    # on a CA, and no subject/authority key identifiers on the CA or its leaves.
    legacy: bool = False
    revoked: bool = False  # listed in a CRL signed by ``issuer`` (that CA then has a CRL)
    # The whole subject as RDNs, most significant first; each RDN is ((attribute, value), ...)
    # with OpenSSL short names (build._ATTRIBUTES), or (attribute, value, ASN.1 string type)
    # for a type other than cryptography's default (a cryptography _ASN1Type name, e.g.
    # "T61String"). None: O, OU=role, CN.
    subject: tuple[tuple[tuple[str, ...], ...], ...] | None = None
    serial: int | None = None  # None: random; may be negative (see build.with_serial)
    key_type: str = DEFAULT_KEY_TYPE  # keys.KEY_TYPES; the set's own unless a key-type credential

    @property
    def cn(self) -> str | None:
        """CAs carry no CN (trustme names them by O and OU); leaves default to their id."""
        if self.role == "ca":
            return None
        if self.subject is not None:
            cns = [a[1] for rdn in self.subject for a in rdn if a[0] == "CN"]
            return cns[0] if cns else None
        return self.common_name or self.id


LOOPBACK = ("localhost", "127.0.0.1", "::1")

STANDARD: tuple[CertSpec, ...] = (
    CertSpec("ca", "ca"),
    CertSpec("other-ca", "ca"),
    CertSpec("server", "server", "ca", LOOPBACK),
    CertSpec("server-wrong-host", "server", "ca", ("wrong-host.example",)),
    CertSpec("server-wrong-ca", "server", "other-ca", LOOPBACK),
    CertSpec("localhost", "client", "ca", ("localhost",)),
    CertSpec("ip", "client", "ca", ("127.0.0.1",)),
    CertSpec("wildcard", "client", "ca", ("*.localhost",)),
    CertSpec("wrong-host", "client", "ca", ("wrong-host.example",)),
    CertSpec("wrong-ca", "client", "other-ca", ("localhost",)),
    CertSpec("expired", "client", "ca", ("localhost",), validity=EXPIRED),
)

EXTENDED: tuple[CertSpec, ...] = (
    *STANDARD,
    CertSpec("ipv6", "client", "ca", ("::1",)),
    CertSpec("chain", "client", "ca", ("localhost",), via_intermediate=True),
    CertSpec("no-client-eku", "client", "ca", ("localhost",), client_eku=False),
    CertSpec("not-yet-valid", "client", "ca", ("localhost",), validity=NOT_YET_VALID),
    CertSpec("cn-only", "client", "ca", (), san=False, common_name="localhost"),
    CertSpec("revoked", "client", "ca", ("localhost",), revoked=True),
    CertSpec("legacy-ca", "ca", legacy=True),
    CertSpec("legacy", "client", "legacy-ca", ("localhost",), legacy=True),
)


@dataclass(frozen=True)
class Bundle:
    """A file of several PEM blocks that a server takes as one trust store (OpenSSL's
    CAfile holds certificates and CRLs alike): ``cas``' certificates, then ``crls``'
    CRLs (ids of the CAs that signed them)."""

    id: str
    cas: tuple[str, ...]
    crls: tuple[str, ...] = ()


BUNDLES: dict[str, tuple[Bundle, ...]] = {
    "standard": (),
    "extended": (
        Bundle("ca+legacy-ca", ("ca", "legacy-ca")),  # a two-CA client trust store
        Bundle("ca+crl", ("ca",), ("ca",)),  # for servers whose only CRL input is the CAfile
    ),
}


def _dn(cn: str, *middle: tuple[tuple[str, str], ...], org: str = ORGANIZATION):
    """O, OU=client, the extra RDNs, then CN (the order trustme uses for every other leaf)."""
    return ((("O", org),), (("OU", "client"),), *middle, (("CN", cn),))


# Subjects that DN printers get wrong (SPEC section 5; issue 12 item 1). Each is issued by
# ``ca`` for DNS localhost, so every policy admits it and only what the application sees differs.
HARD_DNS: tuple[CertSpec, ...] = (
    CertSpec(
        "dn-repeated-ou",
        "client",
        "ca",
        ("localhost",),
        subject=_dn("dn-repeated-ou", (("OU", "second unit"),)),
    ),
    # RFC 4514/2253 specials: , + \ ; < > " anywhere, # at the start, spaces at both ends.
    CertSpec(
        "dn-specials",
        "client",
        "ca",
        ("localhost",),
        subject=(
            (("O", ORGANIZATION),),
            (("OU", "#client"),),
            (("CN", ' dn-specials a,b+c\\d;e<f>g#h"i '),),
        ),
    ),
    CertSpec(
        "dn-utf8",
        "client",
        "ca",
        ("localhost",),
        subject=_dn("dn-utf8 \u00e9t\u00e9", org="mtls-matrix Z\u00fcrich \u6771\u4eac"),
    ),
    CertSpec(
        "dn-control",
        "client",
        "ca",
        ("localhost",),
        subject=_dn("dn-control\r\nX-Injected: 1\tend"),
    ),
    CertSpec(
        "dn-multi-rdn",
        "client",
        "ca",
        ("localhost",),
        subject=((("O", ORGANIZATION),), (("OU", "client"), ("CN", "dn-multi-rdn"))),
    ),
    CertSpec(
        "dn-email",
        "client",
        "ca",
        ("localhost", "dn-email@example.test"),
        subject=(*_dn("dn-email"), (("emailAddress", "dn-email@example.test"),)),
    ),
    CertSpec("serial-negative", "client", "ca", ("localhost",), serial=-0x5A17C0DE5A17C0DE),
    # First byte below 0x10: printed with its leading zero ("0F...") in whole bytes.
    CertSpec("serial-leading-zero", "client", "ca", ("localhost",), serial=0x0F00BA5E0F00BA5E),
    # Every attribute mod_ssl exports (ssl_var_lookup_ssl_cert_dn_rec: C ST L O OU CN T I G
    # S D UID Email, and SerialNumber, measured on httpd 2.4.71), plus x500UniqueIdentifier
    # (which is not mod_ssl's UID), street and pseudonym (which it does not export).
    CertSpec(
        "dn-every-attribute",
        "client",
        "ca",
        ("localhost",),
        subject=(
            (("O", ORGANIZATION),),
            (("OU", "client"),),
            (("C", "DE"),),
            (("ST", "Berlin"),),
            (("L", "Mitte"),),
            (("title", "engineer"),),
            (("initials", "AL"),),
            (("GN", "Ada"),),
            (("SN", "Lovelace"),),
            (("description", "every attribute"),),
            (("UID", "ada"),),
            (("x500UniqueIdentifier", "x5uid"),),
            (("serialNumber", "SN-0042"),),
            (("street", "Main 1"),),
            (("pseudonym", "lady"),),
            (("CN", "dn-every-attribute"),),
            (("emailAddress", "ada@example.test"),),
        ),
    ),
    # One attribute in each ASN.1 string type: OpenSSL reads a T61String's bytes as Latin-1,
    # a BMPString as UCS-2 and a UniversalString as UCS-4 (a_strex.c do_print_ex).
    CertSpec(
        "dn-string-types",
        "client",
        "ca",
        ("localhost",),
        subject=(
            (("O", ORGANIZATION, "PrintableString"),),
            (("OU", "T61 \u00e9t\u00e9", "T61String"),),
            (("L", "ia5 Mitte", "IA5String"),),
            (("ST", "BMP \u6771\u4eac", "BMPString"),),
            (("title", "Universal \U0001f600", "UniversalString"),),
            (("CN", "dn-string-types"),),
        ),
    ),
    # A notAfter at no round time: SSL_CLIENT_V_REMAIN counts whole days from the current
    # second (the fixed sets' 3000-01-01T00:00:00 cannot show an off-by-one).
    CertSpec(
        "not-after-odd",
        "client",
        "ca",
        ("localhost",),
        validity=(
            dt.datetime(2000, 1, 1, tzinfo=UTC),
            dt.datetime(2999, 7, 14, 13, 37, 42, tzinfo=UTC),
        ),
    ),
)

# One client and one server per key type besides the default (SPEC section 1): the client
# as ``localhost`` is, the server as ``server`` is, so that only the key differs. An rsa-pss
# leaf comes with an RSA intermediate under ``ca`` that signs it with RSASSA-PSS (keys.py).
OTHER_KEY_TYPES = tuple(k for k in KEY_TYPES if k != DEFAULT_KEY_TYPE)
KEY_TYPE_CREDENTIALS: tuple[CertSpec, ...] = (
    *(CertSpec(f"key-{k}", "client", "ca", ("localhost",), key_type=k) for k in OTHER_KEY_TYPES),
    *(CertSpec(f"server-{k}", "server", "ca", LOOPBACK, key_type=k) for k in OTHER_KEY_TYPES),
)

EXTENDED: tuple[CertSpec, ...] = (*EXTENDED, *HARD_DNS, *KEY_TYPE_CREDENTIALS)  # type: ignore[no-redef]


def with_key_type(specs: tuple[CertSpec, ...], key_type: str) -> tuple[CertSpec, ...]:
    """``specs`` with every credential of the default key type given ``key_type`` instead
    (CAs included, so an rsa-pss set is PSS-signed throughout); key-type credentials keep
    their own."""
    if key_type not in KEY_TYPES:
        raise ValueError(f"unknown key type {key_type!r} (choose from: {', '.join(KEY_TYPES)})")
    return tuple(
        dataclasses.replace(s, key_type=key_type) if s.key_type == DEFAULT_KEY_TYPE else s
        for s in specs
    )


PROFILES: dict[str, tuple[CertSpec, ...]] = {"standard": STANDARD, "extended": EXTENDED}
