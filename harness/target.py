"""The one interface between the matrix and a server under test.

A target starts a server for a configuration and hands back where it
listens; it also says which configurations it can express and which environ
variables it can provide, so that "cannot do that" is reported as such
instead of as a failure (as x509-limbo's per-implementation harnesses do).

A target whose TLS stack is neither of the matrix's adapters (granian's
rustls, say) may list its own in an optional ``adapters`` attribute; the
matrix then runs every grid once more for each, with its own case ids.

``unsupported`` is also where a target says which configuration fields it can
express (no client CA, a certificate_chain file, a CRL): a case needing one it
cannot express is shown as unsupported, with the reason, not failed.

A server author plugs in their own server with a factory returning a Target:

    pytest matrix --target mypkg.mtls:target
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ServerSpec:
    """Everything needed to start one server, with file paths resolved."""

    adapter: str  # TLS back-end: "builtin", "pyopenssl", or a target's own (e.g. "rustls")
    client_check: str  # "ignore" | "optional" | "required"
    check_host: bool
    bind: str  # host to bind: "localhost", "127.0.0.1", "0.0.0.0", "::1", "::"
    certificate: Path
    private_key: Path
    client_ca: Path | None  # None: no client CA configured at all (SPEC section 8)
    # Intermediates the server sends after its certificate; never a trust source.
    certificate_chain: Path | None = None
    crl: Path | None = None  # a CRL (PEM) the server checks client certificates against
    # The client CA file and the CRL concatenated, for servers whose only CRL input is
    # their CA file (OpenSSL's CAfile loads both); set whenever ``crl`` is.
    client_ca_with_crl: Path | None = None


@runtime_checkable
class ServerHandle(Protocol):
    host: str
    port: int

    def stop(self) -> None: ...


@runtime_checkable
class Target(Protocol):
    name: str

    def unsupported(self, spec: ServerSpec) -> str | None:
        """None if this target can run ``spec``, else the reason it cannot."""

    def start(self, spec: ServerSpec) -> ServerHandle:
        """Start a server and return once it accepts connections (no sleeping)."""

    def provides(self, adapter: str, variable: str) -> bool:
        """Whether the application can see this environ variable on this adapter."""

    def versions(self) -> dict[str, str]:
        """Versions worth recording with the results (server, TLS library...)."""


class TargetLoadError(Exception):
    """--target could not be resolved to a Target; the message says why, in one line."""


def load_target(reference: str) -> Target:
    """Resolve 'package.module:factory' and call the factory."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise TargetLoadError(
            f"--target must look like 'package.module:factory', not {reference!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetLoadError(f"--target {reference}: cannot import {module_name}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise TargetLoadError(f"--target {reference}: {module_name} has no callable {attr!r}")
    target = factory()
    missing = [
        m
        for m in ("name", "unsupported", "start", "provides", "versions")
        if not hasattr(target, m)
    ]
    if missing:
        raise TargetLoadError(f"--target {reference}: the object lacks {', '.join(missing)}")
    return target
