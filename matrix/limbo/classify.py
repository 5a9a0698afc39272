"""Which x509-limbo cases apply to a server verifying a client certificate, and why.

x509-limbo's cases are written for a validator called with a peer name, a
validation time and an expected EKU. A TLS server verifying a client
certificate is called with none of those: it checks the path (RFC 5280 section
6) to its client CA at the current time, for the TLS client purpose. So each
case falls into one category, decided by its id and features alone (the first
rule that matches wins), and each category says what is done with it:

- ``client``, ``path``, ``crl``, ``chain-depth``, ``webpki-profile``: run as
  handshakes (``RUN``); the expected result is the oracle. Web-PKI profile
  rules are run too: a server that does not enforce them differs *knowingly*,
  which ``divergences.py`` records per target.
- ``server-name``: the verdict hinges on matching ``expected_peer_name``; it
  goes to the host-check runner (``HOST_CHECK``), see ``names.py``.
- ``eku-server-auth``: the verdict is about the server-auth EKU, a question a
  client-certificate check never asks (``NOT_APPLICABLE``).
- ``real-world``: captured real chains shipped without a key: nothing can
  present them, so they get the store check only (``STORE_ONLY``).

Independently of the category, a case with no key cannot be presented (store
check only), and a case whose ``validation_time`` lies in the past runs live
only when the verdict it gives for then is also the verdict now
(``time_equivalent``: same validity windows, or an expiry that persists).
The totals match the corpus notes (x509-limbo NOTES: 10 client, 110 path,
8 CRL, 6 chain depth, 7 EKU, 33 Web-PKI profile, 18 server name, 16 real-world).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from .corpus import LimboCase

RUN = "run"
HOST_CHECK = "host-check"
STORE_ONLY = "store-only"
NOT_APPLICABLE = "not-applicable"


@dataclass(frozen=True)
class Category:
    name: str
    action: str  # RUN | HOST_CHECK | STORE_ONLY | NOT_APPLICABLE
    reason: str


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category(
            "client",
            RUN,
            "x509-limbo's own CLIENT cases (email name constraints on a client leaf): "
            "they apply as written",
        ),
        Category(
            "crl",
            RUN,
            "revocation by CRL (RFC 5280 section 6.3) applies unchanged to a client "
            "certificate; a server without a CRL option cannot refuse a revoked one",
        ),
        Category(
            "chain-depth",
            RUN,
            "a limit on the chain's length applies unchanged to a client certificate; "
            "a server without a verify-depth option uses its library's default limit",
        ),
        Category(
            "eku-server-auth",
            NOT_APPLICABLE,
            "the verdict is about the server-auth extended key usage (x509-limbo asks for "
            "id-kp-serverAuth); a client-certificate check asks for id-kp-clientAuth",
        ),
        Category(
            "server-name",
            HOST_CHECK,
            "the verdict hinges on matching the expected peer name, which a server checks "
            "only with a client host check: run by the host-check runner",
        ),
        Category(
            "real-world",
            STORE_ONLY,
            "a captured real-world chain shipped without its private key: no client can "
            "present it, so only the store check runs",
        ),
        Category(
            "webpki-profile",
            RUN,
            "a CA/Browser Forum (Web-PKI) certificate-profile rule; OpenSSL does not enforce "
            "that profile, so an OpenSSL server differs knowingly (see divergences)",
        ),
        Category(
            "path",
            RUN,
            "RFC 5280 path validation (signatures, basic constraints, key usage, name "
            "constraints, key identifiers, validity, extensions) applies unchanged to a "
            "client certificate",
        ),
    )
}

# Web-PKI-prefixed cases whose rule is plain RFC 5280 name-constraint processing.
_WEBPKI_BUT_PATH = frozenset({"webpki::nc::nc-permits-dns-san-pattern"})
# Name cases outside webpki::san, and webpki::san cases that test the certificate's
# content (no SAN, a critical SAN beside a subject, a non-IA5 dNSName), not matching.
_NAME_OUTSIDE_SAN = frozenset({"rfc5280::san::ip-in-dns", "rfc5280::ca-as-leaf-wrong-san"})
_SAN_PROFILE = frozenset(
    {
        "webpki::san::no-san",
        "webpki::san::san-critical-with-nonempty-subject",
        "webpki::san::unicode-emoji-san",
    }
)

_RULES: tuple[tuple[str, Callable[[LimboCase], bool]], ...] = (
    ("client", lambda c: c.validation_kind == "CLIENT"),
    ("crl", lambda c: "has-crl" in c.features or bool(c.crls)),
    ("chain-depth", lambda c: c.max_chain_depth is not None),
    ("eku-server-auth", lambda c: "::eku::" in c.id),
    ("real-world", lambda c: c.id.startswith("online::") or "cryptographydotio" in c.id),
    (
        "server-name",
        lambda c: (
            c.id in _NAME_OUTSIDE_SAN
            or (c.id.startswith("webpki::san::") and c.id not in _SAN_PROFILE)
        ),
    ),
    ("webpki-profile", lambda c: c.id.startswith("webpki::") and c.id not in _WEBPKI_BUT_PATH),
    ("path", lambda c: True),
)


def category(case: LimboCase) -> Category:
    """The case's category (the first rule of ``_RULES`` that matches)."""
    for name, matches in _RULES:
        if matches(case):
            return CATEGORIES[name]
    raise AssertionError("the last rule matches every case")  # pragma: no cover


@dataclass(frozen=True)
class Plan:
    """What the suite does with one case: its category, and why it is (not) run live."""

    category: str
    live: bool  # run as handshakes against the targets
    host_check: bool  # run by the host-check runner instead
    why_not_live: str | None  # None when live


def plan(case: LimboCase, now: dt.datetime | None = None) -> Plan:
    """Decide, from the case alone, whether it runs live; ``now`` defaults to the clock."""
    cat = category(case)
    why = None
    if cat.action in (STORE_ONLY, NOT_APPLICABLE):
        why = cat.reason
    elif server_auth_only(case):
        why = server_auth_only(case)
    elif case.peer_certificate_key is None:
        why = "shipped without the peer's private key: no client can present it (store check only)"
    elif case.validation_time is not None:
        changed = time_equivalent(case, now or dt.datetime.now(dt.timezone.utc))
        if changed is not None:
            why = (
                f"the verdict is for {case.validation_time.isoformat()}, and {changed} "
                "differs between then and now"
            )
    live = why is None
    return Plan(
        category=cat.name,
        live=live and cat.action == RUN,
        host_check=live and cat.action == HOST_CHECK,
        why_not_live=why,
    )


def server_auth_only(case: LimboCase) -> str | None:
    """Why the case cannot test its rule on a client certificate, if its leaf's EKU says so.

    The corpus gives a leaf that sets no EKU of its own clientAuth, but some cases
    (the CRL ones, the captured real-world chains) set serverAuth alone. An OpenSSL
    server refuses such a leaf for the TLS client purpose (``check_purpose_ssl_client``,
    RFC 5280 section 4.2.1.12) whatever the rule under test, so a refusal would agree
    for the wrong reason and an acceptance could not happen.
    """
    try:
        cert = _certificate(case.peer_certificate)
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        return None  # the verdict on such a certificate is the case's own business
    if ExtendedKeyUsageOID.CLIENT_AUTH in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku:
        return None
    return (
        "the leaf's extended key usage (set by the case itself) lacks clientAuth: a server "
        "refuses it for the TLS client purpose whatever the rule under test"
    )


def time_equivalent(case: LimboCase, now: dt.datetime) -> str | None:
    """None when the corpus's verdict for its validation time is also the verdict at ``now``.

    OpenSSL's verdict depends on the time only through the certificates'
    notBefore/notAfter and the CRLs' thisUpdate/nextUpdate (RFC 5280 sections
    4.1.2.5 and 5.1.2.4-5; a listed serial is revoked whatever its revocation
    date). So the verdict carries over when every one of those windows holds
    (or fails the same way) at both instants; and an expected FAILURE also carries over
    when something already expired then is still expired now (a certificate
    not yet valid then but expired now fails for another reason: not carried).
    Otherwise the return value names the first window that differs.
    """
    if case.validation_time is None:
        return None
    # Certificate and CRL times have whole seconds (RFC 5280 section 4.1.2.5): the
    # corpus's fractional validation times mean "within that second".
    then = case.validation_time.replace(microsecond=0)
    windows: list[tuple[str, tuple[dt.datetime, dt.datetime | None]]] = []
    roles = [("the peer certificate", case.peer_certificate)]
    roles += [(f"intermediate #{i}", pem) for i, pem in enumerate(case.untrusted_intermediates)]
    roles += [(f"trusted certificate #{i}", pem) for i, pem in enumerate(case.trusted_certs)]
    for role, pem in roles:
        try:
            cert = _certificate(pem)
            windows.append((role, (cert.not_valid_before_utc, cert.not_valid_after_utc)))
        except ValueError:
            return f"{role} (unparseable, so its validity is unknown)"
    for i, pem in enumerate(case.crls):
        try:
            crl = x509.load_pem_x509_crl(pem.encode())
            windows.append((f"CRL #{i}", (crl.last_update_utc, crl.next_update_utc)))
        except ValueError:
            return f"CRL #{i} (unparseable, so its validity is unknown)"
    if not case.expects_success and any(_expired(w, then) and _expired(w, now) for _, w in windows):
        return None
    for role, window in windows:
        if _state(window, then) != _state(window, now):
            return f"the validity of {role}"
    return None


def _certificate(pem: str) -> x509.Certificate:
    """Parse quietly: the corpus holds negative and zero serials on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return x509.load_pem_x509_certificate(pem.encode())


def _state(window: tuple[dt.datetime, dt.datetime | None], when: dt.datetime) -> str:
    """'before', 'inside' or 'after' the window (both ends inclusive, RFC 5280 4.1.2.5)."""
    start, end = window
    if when < start:
        return "before"
    return "after" if end is not None and when > end else "inside"


def _expired(window: tuple[dt.datetime, dt.datetime | None], when: dt.datetime) -> bool:
    return window[1] is not None and when > window[1]
