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
OPENSSL_ADAPTERS = ("builtin", "pyopenssl")
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


_NO_STRICT = (
    "OpenSSL checks this only with X509_V_FLAG_X509_STRICT (check_extensions / "
    "check_key_ids in crypto/x509/v3_purp.c and x509_vfy.c), which this adapter does not set"
)

DIVERGENCES: tuple[Divergence, ...] = (
    Divergence(
        "category:webpki-profile",
        ACCEPTED,
        "OpenSSL does not enforce the CA/Browser Forum certificate profile (key sizes and "
        "curves, AKI/SKI form, CN in SAN, v1 certificates...): only RFC 5280 path validation",
    ),
    Divergence(
        "pathlen::max-chain-depth-0-exhausted",
        ACCEPTED,
        "the server has no verify-depth option; OpenSSL's default depth (100) allows this chain",
    ),
    Divergence(
        "pathlen::max-chain-depth-1-exhausted",
        ACCEPTED,
        "the server has no verify-depth option; OpenSSL's default depth (100) allows this chain",
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
