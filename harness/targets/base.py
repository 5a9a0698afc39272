"""What the compatibility targets share: declarations as data, a server process per spec.

A target for a third-party server declares, as plain class attributes:

- ``adapters``: the TLS stacks it can run, named as the matrix names them
  (``builtin`` = Python's ``ssl`` module, ``pyopenssl``) or by its own stack
  (``rustls``). A case on any other adapter is unsupported, with the reason.
- ``client_checks``: which of ignore / optional / required it can express.
  None of these servers can check the client's host name, so every ``+host``
  policy is unsupported, with that reason; it is not approximated by the
  policy without the host check.
- ``binds``: bind addresses it cannot take (``bad_binds``), with the reason.
- ``chain_unsupported`` / ``crl_unsupported``: None when the server has an
  option for a certificate_chain file / a CRL, else the reason it has none
  (SPEC section 8). A configuration without a client CA needs no declaration:
  every server can be started without its CA option.
- ``provided``: per adapter, glob patterns of the environ variables the
  application can actually see on that server; ``provides()`` answers from it,
  so the matrix checks the values of exactly those.

``start()`` turns the spec into the server's command line and runs it with
``harness.targets.process.start_server``.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import ClassVar

from harness.target import ServerSpec, TargetLoadError

from .process import ServerProcess, start_server

CLIENT_CHECKS = ("ignore", "optional", "required")
ALWAYS = ("HTTPS", "wsgi.url_scheme")
STDLIB_CERT_REQS = {"ignore": 0, "optional": 1, "required": 2}  # ssl.CERT_NONE/OPTIONAL/REQUIRED
STDLIB_VERIFY_MODES = {
    "ignore": "CERT_NONE",
    "optional": "CERT_OPTIONAL",
    "required": "CERT_REQUIRED",
}


class ProcessTarget:
    """A server run as its own process on loopback, one process per configuration."""

    name = "?"
    package = "?"  # the distribution whose version is recorded, and must be installed
    module = "?"  # what ``python -m`` runs
    requires: tuple[str, ...] = ()  # modules that must be importable (default: the package)
    adapters: tuple[str, ...] = ("builtin",)
    tls_stack = "Python's ssl module"
    client_checks: tuple[str, ...] = CLIENT_CHECKS
    bad_binds: ClassVar[dict[str, str]] = {}
    provided: ClassVar[dict[str, tuple[str, ...]]] = {}
    ready: str = ""
    port_from: str | None = None
    confirm_listening = False  # see process.start_server: for a server whose line precedes listen()
    host_check_reason = "has no check of the client's host name (no option to ask for one)"
    chain_unsupported: str | None = (
        "has no option for a certificate chain file apart from the certificate file"
    )
    crl_unsupported: str | None = "has no option to check client certificates against a CRL"
    # Further FEATURES (harness/target.py) the target expresses, e.g. {"sni-hosts"}.
    extra_features: frozenset[str] = frozenset()

    # -- declarations -------------------------------------------------------------------

    @property
    def features(self) -> frozenset[str]:
        """What the contract's feature gate lets through (harness/target.py FEATURES): a
        chain file and a CRL where the server has an option for them, and no client CA
        always (every server can be started without its CA option)."""
        declared = {"no-client-ca", *self.extra_features}
        if self.chain_unsupported is None:
            declared.add("certificate-chain")
        if self.crl_unsupported is None:
            declared.add("crl")
        return frozenset(declared)

    def unsupported(self, spec: ServerSpec) -> str | None:
        if spec.adapter not in self.adapters:
            runs = ", ".join(repr(a) for a in self.adapters)
            return (
                f"{self.name} terminates TLS with {self.tls_stack} only (adapter {runs}), "
                f"not {spec.adapter!r}"
            )
        if spec.check_host:
            return f"{self.name} {self.host_check_reason}"
        if spec.client_check not in self.client_checks:
            return f"{self.name} cannot express client_check={spec.client_check!r}"
        if spec.bind in self.bad_binds:
            return f"{self.name} cannot bind {spec.bind!r}: {self.bad_binds[spec.bind]}"
        if spec.certificate_chain is not None and self.chain_unsupported:
            return f"{self.name} {self.chain_unsupported}"
        if spec.crl is not None and self.crl_unsupported:
            return f"{self.name} {self.crl_unsupported}"
        return None

    def provides(self, adapter: str, variable: str) -> bool:
        patterns = self.provided.get(adapter, ())
        return any(fnmatch.fnmatchcase(variable, p) for p in patterns)

    def versions(self) -> dict[str, str]:
        """The server package's version (the run's metadata already has Python and OpenSSL)."""
        return {self.package: _version(self.package)}

    def cli_options(self) -> frozenset[str]:
        """The ``--options`` the installed server's ``--help`` lists (measured once), for a
        target whose command line changed between releases; empty if it cannot say."""
        cached = getattr(self, "_cli_options", None)
        if cached is None:
            try:
                done = subprocess.run(
                    [sys.executable, "-m", self.module, "--help"],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    stdin=subprocess.DEVNULL,
                )
                cached = frozenset(re.findall(r"--[a-z][a-z0-9-]+", done.stdout))
            except (OSError, subprocess.TimeoutExpired):
                cached = frozenset()
            self._cli_options = cached
        return cached

    def release(self) -> tuple[int, ...]:
        """The installed server release as numbers (``(25, 1, 0)``), for command lines that
        changed between releases (the compat run's version axis runs old ones); () unknown."""
        numbers = []
        for part in _version(self.package).split("."):
            digits = re.match(r"\d+", part)
            if not digits:
                break
            numbers.append(int(digits.group()))
        return tuple(numbers)

    # -- running ------------------------------------------------------------------------

    def installed(self) -> str | None:
        """None when the server can be imported here, else why not."""
        for name in self.requires or (self.package,):
            if importlib.util.find_spec(name) is None:
                return f"{name} is not installed (pip install 'mtls-matrix[compat]')"
        return None

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        """The server's arguments for ``spec``, and the port given (None: it prints its own)."""
        raise NotImplementedError

    def start(self, spec: ServerSpec) -> ServerProcess:
        args, port = self.command(spec)
        return start_server(
            self.name,
            self.module,
            args,
            self.ready,
            host=spec.bind,
            port=port,
            port_from=self.port_from,
            confirm_listening=self.confirm_listening,
        )


def checked(target: ProcessTarget) -> ProcessTarget:
    """The factory's last step: refuse, as a --target usage error, a server not installed."""
    why = target.installed()
    if why:
        raise TargetLoadError(f"--target {target.name}: {why}")
    return target


def app_arguments(
    spec: ServerSpec, *, adapter: bool = False, chain: bool = False, crl: bool = False
) -> list[str]:
    """The options of this project's own server apps (``harness/apps/*_server.py``) for
    ``spec``: certificate, key, policy, bind and port 0 always (the app prints its real
    port); the client CA unless the policy is ``ignore``; the adapter, the chain file and
    the CRL only where that app takes them."""
    args = ["--adapter", spec.adapter] if adapter else []
    args += [
        "--cert", str(spec.certificate),
        "--key", str(spec.private_key),
        "--client-check", spec.client_check,
        "--bind", spec.bind,
        "--port", "0",
    ]  # fmt: skip
    if spec.client_check != "ignore" and spec.client_ca is not None:
        args += ["--client-ca", str(spec.client_ca)]
    if chain and spec.certificate_chain is not None:
        args += ["--chain", str(spec.certificate_chain)]
    if crl and spec.crl is not None:
        args += ["--crl", str(spec.crl)]
    return args


def host_port(host: str, port: int) -> str:
    """host:port, brackets around an IPv6 literal."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def url_port(prefix: str) -> str:
    """A pattern for '<prefix> https://HOST:PORT', capturing PORT."""
    return re.escape(prefix) + r"\s*https://\S+:(?P<port>\d+)"
