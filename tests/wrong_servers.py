"""Deliberately wrong servers, each a matrix target: ``--target tests.wrong_servers:NAME``.

Each one is the real reference server (Cheroot with our adapters) started with
one subtle mistake, the kind a server author could plausibly make. The matrix
must catch every one of them: the tests in ``test_matrix_wrong_servers.py`` run
a focused subset against each and check which cases fail, and how.

- ``downgrade_required``: asked for ``required``, starts ``optional``.
- ``ignores_host_check``: drops ``client_check_host``.
- ``trusts_other_ca``: its client CA file holds ``ca`` and ``other-ca``.
- ``drops_all_after_rejection``: after the first refused client, it accepts
  TCP connections and closes them at once (a server that never recovers).
- ``stalls_after_rejection``: after the first refused client, its accept loop
  hangs (cheroot #748's failure mode) until the server is stopped.
- ``wrong_client_dn``: tells the application ``SSL_CLIENT_S_DN`` in OpenSSL's
  legacy ``/CN=...`` form instead of RFC 2253.
- ``drops_client_verify``: never tells the application ``SSL_CLIENT_VERIFY``.
- ``closes_without_certificate``: under ``required``, completes the handshake
  without a client certificate (its TLS context only asks for one) and then
  closes the connection in its own code: no ``certificate_required`` alert.
- ``refuses_tls12``: accepts only TLS 1.3 (granian's default), so every TLS
  1.2 client gets a ``protocol_version`` alert, whatever its certificate.
- ``advertises_ca_names``: its pyOpenSSL adapter lists the client CA's name in
  the CertificateRequest again (what the reference did before it agreed with
  the stdlib adapter, docs/refusals.md "CA names").
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cheroot.errors import FatalSSLAlert
from OpenSSL import SSL

from harness.reference import ADAPTERS, ReferenceServer, make_adapter, tls_environ_app
from harness.reference.adapters import ClientCertAdapter
from harness.reference.builtin import BuiltinClientCertAdapter
from harness.reference.connection import TLSConnection
from harness.reference.pyopenssl import PyOpenSSLClientCertAdapter
from harness.target import ServerSpec
from harness.targets.reference import ReferenceTarget

WSGIApp = Callable[..., Any]
# Bounds every wait in this module: nothing here can hang a test run for longer.
MAX_WAIT = 10.0


class WrongTarget(ReferenceTarget):
    """The reference target, with hooks for the mistake each subclass makes."""

    name = "wrong"
    app: WSGIApp = staticmethod(tls_environ_app)

    def mangle(self, spec: ServerSpec) -> ServerSpec:
        """The configuration this server really starts with."""
        return spec

    def adapter_class(self, spec: ServerSpec) -> type[ClientCertAdapter] | None:
        """A replacement adapter class, or None for the reference one."""
        return None

    def start(self, spec: ServerSpec) -> ReferenceServer:
        spec = self.mangle(spec)
        settings = {
            "certificate": str(spec.certificate),
            "private_key": str(spec.private_key),
            "client_CA": str(spec.client_ca),
            "client_check": spec.client_check,
            "client_check_host": spec.check_host,
            "handshake_timeout": 5.0,
        }
        cls = self.adapter_class(spec)
        adapter = cls(**settings) if cls else make_adapter(spec.adapter, **settings)
        return ReferenceServer(adapter, (spec.bind, 0), app=self.app, numthreads=4).start()


class DowngradeRequired(WrongTarget):
    name = "wrong:downgrade-required"

    def mangle(self, spec: ServerSpec) -> ServerSpec:
        if spec.client_check == "required":
            return dataclasses.replace(spec, client_check="optional")
        return spec


class IgnoresHostCheck(WrongTarget):
    name = "wrong:ignores-host-check"

    def mangle(self, spec: ServerSpec) -> ServerSpec:
        return dataclasses.replace(spec, check_host=False)


class TrustsOtherCA(WrongTarget):
    """Its client CA file is the configured one plus ``other-ca.pem`` from the same set."""

    name = "wrong:trusts-other-ca"

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="wrong-ca-bundle-")

    def mangle(self, spec: ServerSpec) -> ServerSpec:
        other = spec.client_ca.with_name("other-ca.pem")
        bundle = Path(self._dir.name) / f"{spec.client_ca.parent.name}-bundle.pem"
        pems = [spec.client_ca.read_bytes().rstrip(b"\n"), other.read_bytes()]
        bundle.write_bytes(b"\n".join(pems))
        return dataclasses.replace(spec, client_ca=bundle)


# -- servers that break after refusing a client -----------------------------------


class _Tripwire:
    """Shared by the connections of one server: has it refused anyone yet?

    ``wrap`` runs on Cheroot's accept thread when a connection arrives; the
    handshake runs later on a worker. A client can see its rejection a moment
    before the worker that refused it returns, so a new connection first waits
    for every handshake already under way to finish: the verdict on it then
    never depends on thread scheduling.
    """

    def __init__(self) -> None:
        self.tripped = False
        self.in_flight = 0
        self.released = threading.Event()  # set on stop: nothing may stay blocked
        self._cond = threading.Condition()

    def begin(self) -> None:
        with self._cond:
            self.in_flight += 1

    def end(self, refused: bool) -> None:
        with self._cond:
            self.in_flight -= 1
            self.tripped = self.tripped or refused
            self._cond.notify_all()

    def settled_tripped(self) -> bool:
        with self._cond:
            self._cond.wait_for(
                lambda: self.in_flight == 0 or self.released.is_set(), timeout=MAX_WAIT
            )
            return self.tripped


class _WatchedConnection(TLSConnection):
    """Reports to the tripwire how its handshake (the first read or write) ended."""

    def __init__(self, adapter: ClientCertAdapter, sock: socket.socket, wire: _Tripwire) -> None:
        super().__init__(adapter, sock)
        self._wire: _Tripwire | None = wire
        wire.begin()

    def _report(self, refused: bool) -> None:
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.end(refused)

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        try:
            n = super().recv_into(buffer, nbytes, flags)
        except FatalSSLAlert:
            self._report(refused=True)
            raise
        except BaseException:
            self._report(refused=False)
            raise
        self._report(refused=False)
        return n

    def send(self, data, flags: int = 0) -> int:
        try:
            n = super().send(data, flags)
        except FatalSSLAlert:
            self._report(refused=True)
            raise
        except BaseException:
            self._report(refused=False)
            raise
        self._report(refused=False)
        return n

    def close(self) -> None:
        self._report(refused=False)  # closed without any I/O: it refused no one
        super().close()

    # The reference server's gate (harness/reference/gate.py) runs the handshake before a
    # worker sees the connection: a client it refuses is logged and closed (``close_now``)
    # without any read or write here. Its one refusal line is the refusal.
    def log_refusal(self, why: str) -> None:
        super().log_refusal(why)
        self._report(refused=True)

    def close_now(self) -> None:
        self._report(refused=False)
        super().close_now()


class _TripwireServer(ReferenceServer):
    """Releases anything the tripwire holds before stopping, so stop() cannot hang."""

    def __init__(self, wire: _Tripwire, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wire = wire

    def stop(self) -> None:
        self.wire.released.set()
        super().stop()


class _BreaksAfterRejection(WrongTarget):
    def after_trip(self, wire: _Tripwire, sock: socket.socket) -> None:
        """What happens to each new connection once a client has been refused."""
        raise NotImplementedError

    def start(self, spec: ServerSpec) -> ReferenceServer:
        wire = _Tripwire()
        target = self
        base = ADAPTERS[spec.adapter]

        class Adapter(base):  # type: ignore[misc, valid-type]
            def wrap(self, sock: socket.socket):
                if wire.settled_tripped():
                    target.after_trip(wire, sock)
                    with contextlib.suppress(OSError):
                        sock.close()
                    raise FatalSSLAlert("wrong server: no longer serving after a rejection")
                conn = _WatchedConnection(self, sock, wire)
                return conn, conn.environ

        adapter = Adapter(
            certificate=str(spec.certificate),
            private_key=str(spec.private_key),
            client_CA=str(spec.client_ca),
            client_check=spec.client_check,
            client_check_host=spec.check_host,
            handshake_timeout=5.0,
        )
        return _TripwireServer(wire, adapter, (spec.bind, 0), app=self.app, numthreads=4).start()


class DropsAllAfterRejection(_BreaksAfterRejection):
    """Closes every connection that arrives after it refused a client."""

    name = "wrong:drops-all-after-rejection"

    def after_trip(self, wire: _Tripwire, sock: socket.socket) -> None:
        # Dropped with a reset (SO_LINGER 0): a plain close is a FIN or a reset depending
        # on whether the client's ClientHello had arrived when it closed (a race, and the
        # refusal form of the cases after the trip would differ from run to run).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class StallsAfterRejection(_BreaksAfterRejection):
    """Once it refused a client, its accept thread hangs until the server is stopped."""

    name = "wrong:stalls-after-rejection"

    def after_trip(self, wire: _Tripwire, sock: socket.socket) -> None:
        wire.released.wait(MAX_WAIT)


# -- servers that tell the application the wrong thing ----------------------------


def _legacy_dn(rfc2253: str) -> str:
    """'CN=a,O=b' -> '/O=b/CN=a': OpenSSL's X509_NAME_oneline, which mod_ssl 2.4 dropped."""
    return "".join(f"/{rdn}" for rdn in reversed(rfc2253.split(",")))


def wrong_dn_app(environ: dict[str, Any], start_response: Callable[..., Any]):
    if "SSL_CLIENT_S_DN" in environ:
        environ["SSL_CLIENT_S_DN"] = _legacy_dn(environ["SSL_CLIENT_S_DN"])
    return tls_environ_app(environ, start_response)


def no_verify_app(environ: dict[str, Any], start_response: Callable[..., Any]):
    environ.pop("SSL_CLIENT_VERIFY", None)
    return tls_environ_app(environ, start_response)


class WrongClientDN(WrongTarget):
    name = "wrong:wrong-client-dn"
    app = staticmethod(wrong_dn_app)


class DropsClientVerify(WrongTarget):
    name = "wrong:drops-client-verify"
    app = staticmethod(no_verify_app)


# -- servers that refuse in the wrong form or for the wrong reason -------------------


class _AsksOnlyBuiltin(BuiltinClientCertAdapter):
    def build_context(self) -> ssl.SSLContext:
        ctx = super().build_context()
        if ctx.verify_mode == ssl.CERT_REQUIRED:
            ctx.verify_mode = ssl.CERT_OPTIONAL  # the handshake no longer insists
        return ctx


class _AsksOnlyPyOpenSSL(PyOpenSSLClientCertAdapter):
    def build_context(self) -> SSL.Context:
        ctx = super().build_context()
        if self.settings.requires_certificate:  # VERIFY_PEER without FAIL_IF_NO_PEER_CERT
            ctx.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errnum, depth, ok: bool(ok))
        return ctx


class ClosesWithoutCertificate(WrongTarget):
    """``required`` checked after the handshake: the reference connection's own
    "no client certificate" check refuses, by closing, what the TLS stack let through."""

    name = "wrong:closes-without-certificate"

    def adapter_class(self, spec: ServerSpec) -> type[ClientCertAdapter] | None:
        return {"builtin": _AsksOnlyBuiltin, "pyopenssl": _AsksOnlyPyOpenSSL}[spec.adapter]


class _TLS13OnlyBuiltin(BuiltinClientCertAdapter):
    def build_context(self) -> ssl.SSLContext:
        ctx = super().build_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        return ctx


class _TLS13OnlyPyOpenSSL(PyOpenSSLClientCertAdapter):
    def build_context(self) -> SSL.Context:
        ctx = super().build_context()
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        return ctx


class _NamesCAsPyOpenSSL(PyOpenSSLClientCertAdapter):
    def build_context(self) -> SSL.Context:
        ctx = super().build_context()
        if self.settings.client_CA:
            ctx.load_client_ca(self.settings.client_CA.encode())
        return ctx


class AdvertisesCANames(WrongTarget):
    """Only its pyOpenSSL adapter differs: the two adapters disagree again."""

    name = "wrong:advertises-ca-names"

    def adapter_class(self, spec: ServerSpec) -> type[ClientCertAdapter] | None:
        return _NamesCAsPyOpenSSL if spec.adapter == "pyopenssl" else None


class RefusesTLS12(WrongTarget):
    name = "wrong:refuses-tls12"

    def adapter_class(self, spec: ServerSpec) -> type[ClientCertAdapter] | None:
        return {"builtin": _TLS13OnlyBuiltin, "pyopenssl": _TLS13OnlyPyOpenSSL}[spec.adapter]


# -- the factories: --target tests.wrong_servers:NAME (calling a class makes the target) ---

downgrade_required = DowngradeRequired
ignores_host_check = IgnoresHostCheck
trusts_other_ca = TrustsOtherCA
drops_all_after_rejection = DropsAllAfterRejection
stalls_after_rejection = StallsAfterRejection
wrong_client_dn = WrongClientDN
drops_client_verify = DropsClientVerify
closes_without_certificate = ClosesWithoutCertificate
refuses_tls12 = RefusesTLS12
advertises_ca_names = AdvertisesCANames

FACTORIES = (
    "downgrade_required",
    "ignores_host_check",
    "trusts_other_ca",
    "drops_all_after_rejection",
    "stalls_after_rejection",
    "wrong_client_dn",
    "drops_client_verify",
)
# Checked case by case in-process, with TLS 1.2 cases (tests/test_refusals_wrong_servers.py).
REFUSAL_FACTORIES = ("closes_without_certificate", "refuses_tls12", "advertises_ca_names")


# -- extended profile: configuration faults and IPv6 (SPEC sections 2 and 8) ----------


class _ExtendedWrong(WrongTarget):
    """A wrong server that takes every ServerSpec field (client CA, chain, CRL) as the
    reference target does, after its mistake (``mangle``)."""

    def start(self, spec: ServerSpec) -> ReferenceServer:
        return ReferenceTarget.start(self, self.mangle(spec))


class NoV4MappedNormalise(_ExtendedWrong):
    """Compares an IPv4-mapped peer (``::ffff:127.0.0.1``) with the certificate's IP-IDs
    and reverse names as it is, without mapping it back to 127.0.0.1."""

    name = "wrong:no-v4-mapped-normalise"

    def __init__(self) -> None:
        from harness.reference import hostcheck

        # The matrix runs this target in its own pytest process: the patch stays there.
        hostcheck.normalise_ip = lambda address: address.split("%", 1)[0]


class AdmitsWithoutTrustStore(_ExtendedWrong):
    """Verification asked for without a client CA: it turns verification off and admits
    everyone (granian 2.8.9's behaviour, measured) instead of refusing."""

    name = "wrong:admits-without-trust-store"

    def mangle(self, spec: ServerSpec) -> ServerSpec:
        if spec.client_ca is None and spec.client_check != "ignore":
            return dataclasses.replace(spec, client_check="ignore", check_host=False, crl=None)
        return spec


class TrustsChainFile(_ExtendedWrong):
    """Its certificate_chain file also becomes a client trust source (what Cheroot's own
    adapters do: ``cafile=certificate_chain``)."""

    name = "wrong:trusts-chain-file"

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="wrong-chain-bundle-")

    def mangle(self, spec: ServerSpec) -> ServerSpec:
        if spec.certificate_chain is None or spec.client_ca is None:
            return spec
        bundle = Path(self._dir.name) / f"{spec.client_ca.stem}+chain.pem"
        pems = [spec.client_ca.read_bytes().rstrip(b"\n"), spec.certificate_chain.read_bytes()]
        bundle.write_bytes(b"\n".join(pems))
        return dataclasses.replace(spec, client_ca=bundle)


class IgnoresCRL(_ExtendedWrong):
    """Accepts a CRL in its configuration and never checks it."""

    name = "wrong:ignores-crl"

    def mangle(self, spec: ServerSpec) -> ServerSpec:
        return dataclasses.replace(spec, crl=None)


no_v4_mapped_normalise = NoV4MappedNormalise
admits_without_trust_store = AdmitsWithoutTrustStore
trusts_chain_file = TrustsChainFile
ignores_crl = IgnoresCRL

EXTENDED_FACTORIES = (
    "no_v4_mapped_normalise",
    "admits_without_trust_store",
    "trusts_chain_file",
    "ignores_crl",
)
