"""The certificate sets, declared as data (SPEC section 1).

Adding a credential is one line here; ``build`` decides how to make it (trustme
where it can, cryptography's builder where trustme cannot).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

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

    @property
    def cn(self) -> str | None:
        """CAs carry no CN (trustme names them by O and OU); leaves default to their id."""
        if self.role == "ca":
            return None
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

PROFILES: dict[str, tuple[CertSpec, ...]] = {"standard": STANDARD, "extended": EXTENDED}
