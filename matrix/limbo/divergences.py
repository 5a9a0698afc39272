"""Known divergences from the x509-limbo oracle, as data: where, which way, and why.

The corpus's ``expected_result`` is the oracle. A target that differs from it
for a reason we know and can name (OpenSSL does not enforce the Web-PKI
profile; the server has no CRL option) is listed here; the run then shows the
case as ``known-divergence`` with this reason, never as agreement. Any other
difference is ``disagree``, a failure. An entry that no longer matches what a
target does is reported as unused, so this table cannot go stale silently.

Each entry names a case id or a whole ``category:NAME``, the targets and
adapters it holds for (``*`` = any), the kinds of check (``live`` handshakes,
``store`` check) and the observed outcome it excuses (``accepted`` where the
corpus expects FAILURE, ``refused`` where it expects SUCCESS). Reasons cite
the OpenSSL function or rule behind them; measured with OpenSSL 3.0.19
(stdlib) and 4.0.3 (pyOpenSSL 26.4.0's wheel).
"""

from __future__ import annotations

from dataclasses import dataclass

ANY = "*"
OPENSSL_ADAPTERS = ("builtin", "pyopenssl", "mod_ssl")
ACCEPTED, REFUSED = "accepted", "refused"


@dataclass(frozen=True)
class Divergence:
    key: str  # a case id, or "category:NAME"
    observed: str  # the outcome it excuses: ACCEPTED or REFUSED
    reason: str
    targets: tuple[str, ...] = (ANY,)
    adapters: tuple[str, ...] = OPENSSL_ADAPTERS
    kinds: tuple[str, ...] = ("live", "store")

    def matches(
        self, case_id: str, category: str, target: str, adapter: str, kind: str, observed: str
    ) -> bool:
        return (
            self.key in (case_id, f"category:{category}")
            and observed == self.observed
            and (ANY in self.targets or target in self.targets)
            and (ANY in self.adapters or adapter in self.adapters)
            and kind in self.kinds
        )


COMPAT_TARGETS = ("apache", "cheroot_native", "gunicorn", "uvicorn", "hypercorn", "werkzeug")
_NO_STRICT = (
    "the server offers no way to set X509_V_FLAG_X509_STRICT, and OpenSSL checks this only "
    "under that flag (x509v3_cache_extensions / check_extensions)"
)
_PATH_BUILDING = (
    "OpenSSL builds one chain (trusted issuers first, no backtracking to an alternative "
    "issuer once a candidate fails, build_chain in crypto/x509/x509_vfy.c) where x509-limbo "
    "expects the search to find the other, valid path"
)
_CLIENT_PURPOSE_KU = (
    "OpenSSL's TLS client purpose refuses a leaf whose key usage lacks digitalSignature and "
    "keyAgreement (check_purpose_ssl_client, crypto/x509/v3_purp.c); this CA certificate "
    "as leaf has keyCertSign only"
)


def _each(keys: tuple[str, ...], observed: str, reason: str, **kw) -> tuple[Divergence, ...]:
    return tuple(Divergence(key, observed, reason, **kw) for key in keys)


DIVERGENCES: tuple[Divergence, ...] = (
    Divergence(
        "category:webpki-profile",
        ACCEPTED,
        "OpenSSL does not enforce the CA/Browser Forum certificate profile (key sizes and "
        "curves, AKI/SKI form, CN in SAN, v1 certificates...): only RFC 5280 path validation",
    ),
    *_each(
        ("pathlen::max-chain-depth-0-exhausted", "pathlen::max-chain-depth-1-exhausted"),
        ACCEPTED,
        "the server is not given the case's depth limit (no verify-depth option: OpenSSL's "
        "default of 100; the apache target sets SSLVerifyDepth 10)",
        adapters=(ANY,),
    ),
    # granian's rustls (rustls-webpki), measured with granian 2.8.9.
    Divergence(
        "category:webpki-profile",
        ACCEPTED,
        "measured: rustls-webpki accepts these too; it does not enforce the CA/Browser Forum "
        "certificate profile for client certificates either",
        adapters=("rustls",),
    ),
    *_each(
        (
            "rfc5280::root-missing-basic-constraints",
            "rfc5280::root-non-critical-basic-constraints",
            "rfc5280::root-inconsistent-ca-extensions",
            "rfc5280::unknown-critical-extension-root",
            "rfc5280::ski::root-missing-ski",
        ),
        ACCEPTED,
        "rustls-webpki keeps only a trust anchor's subject, public key and name constraints "
        "and checks nothing else of the root certificate (anchor_from_trusted_cert)",
        adapters=("rustls",),
    ),
    *_each(
        (
            "cve::cve-2024-0567",
            "rfc5280::nc::nc-forbids-alternate-chain-ica",
            "rfc5280::nc::nc-forbids-same-chain-ica",
            "rfc5280::root-and-intermediate-swapped",
        ),
        REFUSED,
        _PATH_BUILDING,
    ),
    *_each(
        ("rfc5280::ca-as-leaf", "pathlen::validation-ignores-pathlen-in-leaf"),
        REFUSED,
        _CLIENT_PURPOSE_KU,
    ),
    *_each(
        (
            "rfc5280::nc::invalid-dnsname-leading-period",
            "rfc5280::nc::nc-permits-invalid-dns-san",
            "rfc5280::nc::nc-permits-invalid-email-san",
        ),
        ACCEPTED,
        "OpenSSL's name-constraint check (NAME_CONSTRAINTS_check, crypto/x509/v3_ncons.c) does "
        "not validate the syntax of a constraint or of a SAN it compares with one",
    ),
    *_each(
        ("cve::cve-2025-61727", "rfc5280::nc::nc-forbids-dnsname-wildcard-san"),
        ACCEPTED,
        "OpenSSL compares a wildcard dNSName SAN with a name constraint as a literal name "
        "(nc_dns, crypto/x509/v3_ncons.c): '*.example.com' escapes an excluded subtree",
    ),
    *_each(
        (
            "rfc5280::nc::not-allowed-in-ee-noncritical",
            "rfc5280::nc::not-allowed-in-ee-critical",
            "rfc5280::nc::permitted-dns-match-noncritical",
        ),
        ACCEPTED,
        "OpenSSL does not refuse name constraints in an end-entity certificate nor a "
        "non-critical name-constraints extension (RFC 5280 section 4.2.1.10), even under "
        "X509_STRICT",
    ),
    Divergence(
        "rfc5280::pc::ica-noncritical-pc",
        ACCEPTED,
        "OpenSSL does not require the policy-constraints extension to be critical (RFC 5280 "
        "section 4.2.1.11), even under X509_STRICT",
    ),
    Divergence(
        "rfc5280::san::underscore-dns",
        ACCEPTED,
        "OpenSSL does not check the syntax of a dNSName (RFC 5280 section 4.2.1.6 "
        "preferred name syntax) when no host name is checked",
    ),
    *_each(
        ("rfc5280::serial::too-long", "rfc5280::serial::zero"),
        ACCEPTED,
        "OpenSSL does not enforce RFC 5280 section 4.1.2.2 (a positive serial of at most "
        "20 octets), even under X509_STRICT",
    ),
    # Measured: the same X509_STRICT refuses these on OpenSSL 3.0.19 (the stdlib's) and
    # accepts them on OpenSSL 4.0.3 (pyOpenSSL's wheel; the store check runs on it too).
    *(
        Divergence(
            key,
            ACCEPTED,
            "OpenSSL 4.0.3 (pyOpenSSL's wheel) accepts this under "
            "X509_STRICT, where OpenSSL 3.0.19 refuses it (measured)",
            targets,
            adapters,
        )
        for key in (
            "rfc5280::san::noncritical-with-empty-subject",
            "rfc5280::root-non-critical-basic-constraints",
        )
        for targets, adapters in (((ANY,), ("pyopenssl",)), (("store",), ("builtin",)))
    ),
    *_each(
        (
            "rfc5280::aki::leaf-missing-aki",
            "rfc5280::aki::intermediate-missing-aki",
            "rfc5280::ski::root-missing-ski",
            "rfc5280::ski::intermediate-missing-ski",
            "rfc5280::root-missing-basic-constraints",
            "rfc5280::root-non-critical-basic-constraints",
            "rfc5280::leaf-ku-keycertsign",
            "rfc5280::san::noncritical-with-empty-subject",
        ),
        ACCEPTED,
        _NO_STRICT,
        targets=COMPAT_TARGETS,
    ),
)


def known(
    case_id: str, category: str, target: str, adapter: str, kind: str, observed: str
) -> Divergence | None:
    """The entry excusing ``observed`` for this case on this target/adapter, or None."""
    for entry in DIVERGENCES:
        if entry.matches(case_id, category, target, adapter, kind, observed):
            return entry
    return None
