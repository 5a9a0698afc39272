"""Deliberately wrong servers for the connection-state profile (tests/test_state_wrong_servers.py).

Each is the reference server with one well-known mistake put back, so that everything
else about it is right and the cases that fail are the mistake's own:

- ``sni_switch``: SNI virtual hosts the way CPython's ``sni_callback`` invites, switching
  ``SSLSocket.context`` to the named host's. OpenSSL's SSL_set_SSL_CTX keeps the first
  context's verify mode (pyca/pyopenssl#255, glyph/txsni#2): a host under ``required``
  behind a default under ``ignore`` asks no certificate. The sessions of every host live
  in the first context's cache too.
- ``reload_in_place``: a reload that changes the running context's verify mode and adds
  the new client CA to its store (envoyproxy/envoy#21235, #28758): fresh handshakes get
  the new policy, sessions from before resume under it.
"""

from __future__ import annotations

from harness.reference import ReferenceServer, make_adapter
from harness.reference.builtin import VERIFY_MODES, BuiltinSession
from harness.target import ServerSpec
from harness.targets.reference import ReferenceTarget


class _SwitchedSession(BuiltinSession):
    @property
    def host_name(self) -> str:  # what the app is told: the host the callback switched to
        return getattr(self.sock, "switched_to", None) or "_default_"


class SNISwitchTarget(ReferenceTarget):
    name = "sni-switch"
    adapters = ("builtin",)
    features = frozenset({"sni-hosts"})

    def start(self, spec: ServerSpec) -> ReferenceServer:
        default = make_adapter(
            "builtin",
            certificate=str(spec.certificate),
            private_key=str(spec.private_key),
            client_CA=None if spec.client_ca is None else str(spec.client_ca),
            client_check=spec.client_check,
            client_check_host=spec.check_host,
        )
        hosts = {
            h.name.lower(): make_adapter(
                "builtin",
                certificate=str(spec.certificate),
                private_key=str(spec.private_key),
                client_CA=None if h.client_ca is None else str(h.client_ca),
                client_check=h.client_check,
                client_check_host=h.check_host,
            )
            for h in spec.sni_hosts
        }

        def switch(sock, name, context):
            sock.mtls_server_name = name
            host = hosts.get((name or "").lower())
            if host is not None:
                sock.context = host.context  # the mistake: the verify mode stays the first's
                sock.switched_to = name

        default.context.sni_callback = switch
        default.open_backend_session = lambda sock: _SwitchedSession(default.context, sock)
        return ReferenceServer(default, (spec.bind, 0), numthreads=4).start()


class _InPlace:
    def __init__(self, server: ReferenceServer) -> None:
        self.server = server
        self.host, self.port = server.host, server.port

    def reload(self, spec: ServerSpec) -> None:
        context = self.server.adapter.context
        context.verify_mode = VERIFY_MODES[spec.client_check]  # the mistake: same context
        if spec.client_ca is not None:
            context.load_verify_locations(cafile=str(spec.client_ca))

    def stop(self) -> None:
        self.server.stop()


class ReloadInPlaceTarget(ReferenceTarget):
    name = "reload-in-place"
    adapters = ("builtin",)
    features = frozenset({"reload"})

    def start(self, spec: ServerSpec) -> _InPlace:
        return _InPlace(super().start(spec).server)


def sni_switch() -> SNISwitchTarget:
    return SNISwitchTarget()


def reload_in_place() -> ReloadInPlaceTarget:
    return ReloadInPlaceTarget()
