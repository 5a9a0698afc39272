"""The one interface between the matrix and a server under test: the target contract.

A target starts a server for a configuration and hands back where it
listens; it also says which configurations it can express and which environ
variables it can provide, so that "cannot do that" is reported as such
instead of as a failure (as x509-limbo's per-implementation harnesses do).
The contract, checked by ``load_target`` before anything runs and by
``CheckedTarget`` while the matrix runs (docs/targets.md says it in full):

- ``--target`` names ``module:factory``; the factory is called with no
  arguments and returns the target.
- ``name``: a non-empty string, recorded with the results.
- ``adapters``: the TLS stacks the target runs, a non-empty tuple of names:
  ``builtin`` (Python's ``ssl`` module), ``pyopenssl``, or the target's own
  (granian's ``rustls``). The matrix enumerates cases for these adapters
  only: a server on one TLS stack never gets the other's cases.
- ``unsupported(spec)``: None, or a one-line reason the target cannot express
  ``spec`` (the case is skipped with it, never failed).
- ``start(spec)``: returns, once the server accepts connections, a handle
  with ``host`` (str), ``port`` (int) and ``stop()``. An exception means the
  server could not start that configuration: a finding, recorded per case.
- ``provides(adapter, variable)``: whether the application sees an
  *optional* environ variable (``OPTIONAL_VARIABLES``) on that adapter; what
  it provides is checked exactly, what it does not must be absent. The
  variables in ``REQUIRED_VARIABLES`` are checked on every target whatever
  ``provides`` says (SPEC section 5 calls them "always" set; without them an
  application cannot tell a TLS request, or a verified client, from another).
- ``versions()``: a dict of str to str, recorded with the results.

- ``features`` (optional): the configuration features beyond the standard ones
  that the target can express, a set of names from ``FEATURES`` (``crl``,
  ``certificate-chain``, ``no-client-ca``, ...). Fail-safe (SPEC section 10): a
  case whose ``ServerSpec`` needs a feature the target has not declared never
  reaches the target; it is unsupported with that reason. A target written
  before a feature existed (or that forgot one) can therefore never earn a false
  failure for ignoring a field it did not know about. Absent: standard only.

``unsupported`` is where a target refuses, with a reason, a configuration it
cannot express within a declared feature (a bind form, a policy).

A server author plugs in their own server with a factory returning a Target:

    mtls-matrix run --target mypkg.mtls:target --out out/
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable


class SNIHost(NamedTuple):
    """One more name the server answers as its own virtual host (SPEC section 9).

    A client that sends ``name`` in its SNI (RFC 6066 section 3) is verified under this
    host's ``client_check``, ``check_host`` and ``client_ca`` instead of the spec's own;
    a client that sends no name, or one no host has, gets the spec's own (the default
    host). Names compare case-insensitively (RFC 6066: a DNS hostname, ASCII).
    """

    name: str
    client_check: str  # "ignore" | "optional" | "required"
    check_host: bool
    client_ca: Path | None


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
    # Virtual hosts chosen by the client's SNI (feature ``sni-hosts``); the spec's own
    # fields are the default host, served to a client sending no name or an unknown one.
    sni_hosts: tuple[SNIHost, ...] = ()
    # Certificates asked for by path (SPEC section 9): (path prefix, client_check) pairs,
    # the longest matching prefix wins; other paths are under ``client_check``. The server
    # asks after the handshake (TLS 1.3 post-handshake authentication, TLS 1.2
    # renegotiation), as Apache's per-directory SSLVerifyClient does.
    path_policies: tuple[tuple[str, str], ...] = ()
    tls_version: str | None = None  # "TLSv1.2" | "TLSv1.3": the only version offered


# The configuration features beyond the standard configuration (adapter, client_check,
# check_host, bind, certificate, private_key and a client_ca file), each with what declaring
# it promises. A case needs a feature when its ServerSpec sets the field(s) named here
# (``required_features``); a target that has not declared it gets the case as unsupported.
FEATURES: dict[str, str] = {
    "crl": "checks client certificates against ServerSpec.crl (or client_ca_with_crl)",
    "certificate-chain": "sends ServerSpec.certificate_chain after its certificate",
    "no-client-ca": "starts with ServerSpec.client_ca None while verification is asked for",
    "sni-hosts": "verifies a client that sends an SNI name of ServerSpec.sni_hosts under that "
    "host's client_check, check_host and client_ca (any other name, or none: the spec's own)",
    "reload": "the handle's reload(spec) changes the running server's client CA and policy in "
    "place: later connections get the new configuration, and no session from before resumes "
    "under it",
    "per-path": "asks for a certificate after the handshake on the paths of "
    "ServerSpec.path_policies, and serves them only to a client verified then",
    "tls-version": "offers only ServerSpec.tls_version (TLSv1.2 or TLSv1.3)",
}
# Features a case needs for what it does between connections rather than for a field of
# its ServerSpec (the connection-state profile adds them itself: matrix/state/runner.py).
STEP_FEATURES = ("reload",)


def required_features(spec: ServerSpec) -> frozenset[str]:
    """The ``FEATURES`` a target must declare to be given ``spec`` (SPEC section 10)."""
    needed = set()
    if spec.crl is not None or spec.client_ca_with_crl is not None:
        needed.add("crl")
    if spec.certificate_chain is not None:
        needed.add("certificate-chain")
    if spec.client_ca is None and spec.client_check != "ignore":
        needed.add("no-client-ca")
    if spec.sni_hosts:
        needed.add("sni-hosts")
    if spec.path_policies:
        needed.add("per-path")
    if spec.tls_version is not None:
        needed.add("tls-version")
    return frozenset(needed)


# SPEC section 5's connection variables that every target must set on every request
# (the matrix checks them whatever ``provides`` says): without them an application cannot
# tell a TLS request from a plain one, or a verified client from an unverified one.
REQUIRED_VARIABLES = ("HTTPS", "wsgi.url_scheme", "SSL_PROTOCOL", "SSL_CIPHER", "SSL_CLIENT_VERIFY")
# The rest of SPEC section 5 is checked exactly where ``provides`` says the application sees
# it, and must otherwise be absent: the software versions (a server may rightly keep them to
# itself) and every certificate variable (SSL_CLIENT_CERT, the DNs, the SANs, the chain...).
OPTIONAL_VARIABLES = ("SSL_VERSION_INTERFACE", "SSL_VERSION_LIBRARY", "SSL_CLIENT_*")
# SPEC section 9's connection facts, read by the connection-state profile where
# ``provides`` says so (docs/state.md): the SNI the client sent (mod_ssl's name), the
# virtual host whose policy verified the connection, and the peer's address.
STATE_VARIABLES = ("SSL_TLS_SNI", "MTLS_VIRTUAL_HOST", "REMOTE_ADDR")
CONTRACT = "the target contract (harness/target.py, docs/targets.md)"
_ADAPTER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.]*$")
_STDLIB_ALIASES = {"ssl", "stdlib", "std", "python", "openssl"}


@runtime_checkable
class ServerHandle(Protocol):
    """What ``Target.start`` returns: where the server listens, and how to stop it."""

    host: str
    port: int

    def stop(self) -> None: ...


@runtime_checkable
class Target(Protocol):
    name: str
    adapters: tuple[str, ...]  # TLS stacks this target runs ("builtin", "pyopenssl", own)
    # Optional (not part of the runtime check): ``features``, names from FEATURES.

    def unsupported(self, spec: ServerSpec) -> str | None:
        """None if this target can run ``spec``, else the reason it cannot."""

    def start(self, spec: ServerSpec) -> ServerHandle:
        """Start a server and return once it accepts connections (no sleeping)."""

    def provides(self, adapter: str, variable: str) -> bool:
        """Whether the application sees this optional environ variable on this adapter."""

    def versions(self) -> dict[str, str]:
        """Versions worth recording with the results (server, TLS library...)."""


class TargetLoadError(Exception):
    """--target could not be resolved to a Target; the message says why, in one line."""


class TargetContractError(TargetLoadError):
    """The target breaks the contract (a missing or wrong attribute, a bad return value)."""


def is_required(variable: str) -> bool:
    """Whether ``variable`` is checked on every target, whatever ``provides`` says."""
    return variable in REQUIRED_VARIABLES


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_target(reference: str, search: Iterable[str | Path] = ()) -> CheckedTarget:
    """Resolve 'package.module:factory', call the factory, and check the contract.

    ``search``: directories put at the front of ``sys.path`` (if not there yet) before
    the import, as ``python -m`` does for the current directory, so a target module in
    the directory the matrix is run from is found. Raises TargetLoadError (one line).
    """
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise TargetLoadError(
            f"--target must look like 'package.module:factory', not {reference!r}"
        )
    for directory in reversed([str(Path(d).resolve()) for d in search]):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetLoadError(f"--target {reference}: cannot import {module_name}: {exc}") from None
    except Exception as exc:  # the module's own code failed: say so, in one line
        raise TargetLoadError(
            f"--target {reference}: importing {module_name} raised {_one_line(exc)}"
        ) from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise TargetLoadError(f"--target {reference}: {module_name} has no {attr!r}")
    if not callable(factory):
        raise TargetContractError(
            f"--target {reference}: {attr!r} is a {type(factory).__name__}, not a factory; "
            f"{CONTRACT}: a function or class called with no arguments returns the target"
        )
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins and C types have none
        signature = None
    if signature is not None:
        try:
            signature.bind()
        except TypeError:
            needed = [
                p.name
                for p in signature.parameters.values()
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
            raise TargetContractError(
                f"--target {reference}: {attr}() needs arguments ({', '.join(needed)}); "
                f"{CONTRACT}: the factory is called with no arguments"
            ) from None
    try:
        target = factory()
    except TargetLoadError as exc:  # the factory's own one-line refusal (server not installed)
        raise TargetLoadError(str(exc)) from None
    except Exception as exc:
        raise TargetLoadError(
            f"--target {reference}: the factory {attr}() raised {_one_line(exc)}"
        ) from None
    return CheckedTarget(target, reference)


class CheckedTarget:
    """A target whose declarations were checked, and whose calls are checked as it runs.

    Attribute access falls through to the target, so code that reads a target's own
    attributes (a process target's ``package``, say) sees them unchanged.
    """

    def __init__(self, target: Any, reference: str = "") -> None:
        self.target = target
        where = f"--target {reference}: " if reference else ""
        self._where = where
        missing = [
            m
            for m in ("name", "adapters", "unsupported", "start", "provides", "versions")
            if not hasattr(target, m)
        ]
        if missing:
            what = type(target).__name__ if target is not None else "None"
            raise TargetContractError(
                f"{where}the factory returned {what}, which lacks {', '.join(missing)}; {CONTRACT}"
            )
        name = target.name
        if not isinstance(name, str) or not name.strip():
            raise TargetContractError(f"{where}name must be a non-empty string, not {name!r}")
        self.name = name
        for method in ("unsupported", "start", "provides", "versions"):
            if not callable(getattr(target, method)):
                raise TargetContractError(f"{where}{name}.{method} is not callable; {CONTRACT}")
        self.adapters = self._check_adapters(target.adapters)
        self.features = self._check_features(getattr(target, "features", frozenset()))
        self._versions = self._check_versions()

    def _check_features(self, features: object) -> frozenset[str]:
        where = f"{self._where}{self.name}.features"
        if features is None:
            return frozenset()
        if isinstance(features, str) or not isinstance(features, (set, frozenset, tuple, list)):
            raise TargetContractError(
                f"{where} must be a set of feature names such as {{'crl'}}, not {features!r:.60}"
            )
        unknown = sorted(str(f) for f in features if f not in FEATURES)
        if unknown:
            raise TargetContractError(
                f"{where}: unknown feature(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(FEATURES))} (docs/targets.md)"
            )
        return frozenset(features)

    def missing_features(self, spec: ServerSpec, also: Iterable[str] = ()) -> list[str]:
        """The features ``spec`` (and a case's steps: ``also``, e.g. ``reload``) needs that
        this target has not declared, sorted."""
        return sorted((required_features(spec) | set(also)) - self.features)

    def unsupported_features(self, spec: ServerSpec, also: Iterable[str] = ()) -> str | None:
        """The unsupported reason for the features missing, or None when all are declared."""
        missing = self.missing_features(spec, also)
        if not missing:
            return None
        names = ", ".join(f"{m!r} ({FEATURES[m]})" for m in missing)
        return f"{self.name} does not declare the feature {names} in Target.features"

    def _check_adapters(self, adapters: object) -> tuple[str, ...]:
        where = f"{self._where}{self.name}.adapters"
        if isinstance(adapters, str) or not isinstance(adapters, (tuple, list)) or not adapters:
            raise TargetContractError(
                f"{where} must be a non-empty tuple of TLS stack names such as "
                f"('builtin',) for Python's ssl module or ('pyopenssl',), not {adapters!r}"
            )
        for adapter in adapters:
            if not isinstance(adapter, str) or not _ADAPTER_NAME.match(adapter):
                raise TargetContractError(
                    f"{where}: {adapter!r} is not an adapter name (lower-case letters, "
                    "digits, '_' and '.'; it becomes part of every case id)"
                )
            if adapter in _STDLIB_ALIASES:
                raise TargetContractError(
                    f"{where}: {adapter!r} is not an adapter name; Python's ssl module is "
                    "'builtin', pyOpenSSL is 'pyopenssl'"
                )
        if len(set(adapters)) != len(adapters):
            raise TargetContractError(f"{where} lists an adapter twice: {adapters!r}")
        return tuple(adapters)

    def _check_versions(self) -> dict[str, str]:
        try:
            versions = self.target.versions()
        except Exception as exc:
            raise TargetContractError(
                f"{self._where}{self.name}.versions() raised {_one_line(exc)}"
            ) from None
        if not isinstance(versions, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in versions.items()
        ):
            raise TargetContractError(
                f"{self._where}{self.name}.versions() must return a dict of str to str, "
                f"not {versions!r:.80}"
            )
        return dict(versions)

    def check_provides(self, variables: Iterable[str]) -> None:
        """Ask ``provides`` about every adapter and variable once, before any case runs."""
        for adapter in self.adapters:
            for variable in variables:
                self.provides(adapter, variable)

    def __getattr__(self, attr: str) -> Any:
        if attr == "target":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(attr)
        return getattr(self.target, attr)

    def unsupported(self, spec: ServerSpec) -> str | None:
        missing = self.unsupported_features(spec)
        if missing:  # SPEC section 10: an undeclared feature never reaches the target
            return missing
        why = self.target.unsupported(spec)  # an exception: the runner records its type
        if why is not None and not isinstance(why, str):
            raise TargetContractError(
                f"target contract: {self.name}.unsupported() returned {why!r:.60}, "
                "not None or a reason (str)"
            )
        return why

    def start(self, spec: ServerSpec) -> ServerHandle:
        handle = self.target.start(spec)  # an exception: could not start (a finding)
        problems = []
        if not isinstance(getattr(handle, "host", None), str):
            problems.append("host (str)")
        port = getattr(handle, "port", None)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            problems.append("port (int, 1-65535)")
        if not callable(getattr(handle, "stop", None)):
            problems.append("stop()")
        if problems:
            if callable(getattr(handle, "stop", None)):
                handle.stop()
            raise TargetContractError(
                f"target contract: {self.name}.start() returned {type(handle).__name__}, "
                f"which has no {', '.join(problems)} (it must return a handle with host, "
                "port and stop() once the server accepts connections)"
            )
        return handle

    def provides(self, adapter: str, variable: str) -> bool:
        try:
            answer = self.target.provides(adapter, variable)
        except Exception as exc:
            raise TargetContractError(
                f"{self._where}{self.name}.provides({adapter!r}, {variable!r}) raised "
                f"{_one_line(exc)}; {CONTRACT}"
            ) from None
        if not isinstance(answer, bool):
            raise TargetContractError(
                f"{self._where}{self.name}.provides({adapter!r}, {variable!r}) returned "
                f"{answer!r:.40}, not True or False; {CONTRACT}"
            )
        return answer

    def versions(self) -> dict[str, str]:
        return dict(self._versions)
