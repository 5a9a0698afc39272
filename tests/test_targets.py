"""What the compatibility targets declare, and the small apps their servers run (issue 6).

Nothing here starts a server or needs a server package installed: the target
classes, their command lines and the apps are plain Python. Starting, stopping
and interrupting are in test_targets_lifecycle.py.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path

import pytest

from harness.apps import asgi as asgi_app
from harness.apps import wsgi as wsgi_app
from harness.target import ServerSpec, Target, TargetLoadError
from harness.targets.base import ProcessTarget, checked
from harness.targets.cheroot_native import CherootNativeTarget
from harness.targets.granian import GranianTarget
from harness.targets.gunicorn import GunicornTarget
from harness.targets.hypercorn import HypercornTarget
from harness.targets.uvicorn import UvicornTarget
from harness.targets.werkzeug import WerkzeugTarget
from matrix.dimensions import BINDS, POLICY_SETTINGS

STDLIB = (GunicornTarget, UvicornTarget, HypercornTarget, WerkzeugTarget)
ALL = (CherootNativeTarget, *STDLIB, GranianTarget)
CHECKS = ("ignore", "optional", "required")
MODULES = ("cheroot_native", "gunicorn", "uvicorn", "hypercorn", "granian", "werkzeug")


def spec(adapter="builtin", policy="required", bind="127.0.0.1") -> ServerSpec:
    check, host = POLICY_SETTINGS[policy]
    return ServerSpec(
        adapter, check, host, bind, Path("/c/server.pem"), Path("/c/server.key"), Path("/c/ca.pem")
    )


def own_adapter(cls: type[ProcessTarget]) -> str:
    return cls.adapters[0]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_every_target_satisfies_the_protocol(cls):
    target = cls()
    assert isinstance(target, Target)
    assert target.name in MODULES


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
@pytest.mark.parametrize("policy", ["optional+host", "required+host"])
def test_host_check_policies_are_unsupported_with_that_reason(cls, policy):
    reason = cls().unsupported(spec(own_adapter(cls), policy))
    assert reason and "host name" in reason and cls.name in reason


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
@pytest.mark.parametrize("policy", ["ignore", "optional", "required"])
def test_policies_without_host_check_run_on_every_bind_it_takes(cls, policy):
    target = cls()
    for bind in BINDS:
        reason = target.unsupported(spec(own_adapter(cls), policy, bind))
        if bind in cls.bad_binds:
            assert reason and bind in reason
        else:
            assert reason is None, (bind, reason)


@pytest.mark.parametrize("cls", STDLIB, ids=lambda c: c.name)
def test_stdlib_servers_run_builtin_only(cls):
    target = cls()
    assert target.adapters == ("builtin",)
    reason = target.unsupported(spec("pyopenssl", "required"))
    assert reason and "'pyopenssl'" in reason and "ssl module" in reason
    assert "rustls" in target.unsupported(spec("rustls", "required"))


def test_cheroot_runs_both_backends_and_granian_reports_as_rustls():
    cheroot = CherootNativeTarget()
    assert cheroot.unsupported(spec("builtin")) is None
    assert cheroot.unsupported(spec("pyopenssl")) is None
    granian = GranianTarget()
    assert granian.adapters == ("rustls",)
    assert granian.unsupported(spec("rustls")) is None
    for adapter in ("builtin", "pyopenssl"):
        reason = granian.unsupported(spec(adapter))
        assert reason and "rustls" in reason and repr(adapter) in reason
    assert "IP address" in granian.unsupported(spec("rustls", bind="localhost"))


@pytest.mark.parametrize(
    ("cls", "adapter", "provided", "absent"),
    [
        (
            CherootNativeTarget,
            "builtin",
            ["HTTPS", "SSL_PROTOCOL", "SSL_CLIENT_VERIFY", "SSL_CLIENT_CERT", "SSL_CLIENT_S_DN_CN",
             "SSL_CLIENT_I_DN_O", "SSL_CLIENT_SAN_DNS_0", "SSL_CLIENT_V_REMAIN"],
            ["SSL_CLIENT_A_SIG", "SSL_CLIENT_A_KEY", "SSL_CLIENT_CERT_CHAIN_0"],
        ),
        (
            CherootNativeTarget,
            "pyopenssl",
            ["HTTPS", "wsgi.url_scheme", "SSL_VERSION_LIBRARY"],
            ["SSL_PROTOCOL", "SSL_CIPHER", "SSL_CLIENT_VERIFY", "SSL_CLIENT_CERT"],
        ),
        (GunicornTarget, "builtin", ["wsgi.url_scheme"], ["HTTPS", "SSL_CLIENT_CERT"]),
        (UvicornTarget, "builtin", ["HTTPS", "wsgi.url_scheme"], ["SSL_PROTOCOL"]),
        (HypercornTarget, "builtin", ["HTTPS", "wsgi.url_scheme"], ["SSL_CLIENT_VERIFY"]),
        (GranianTarget, "rustls", ["HTTPS", "wsgi.url_scheme"], ["SSL_CLIENT_CERT"]),
        (WerkzeugTarget, "builtin", ["wsgi.url_scheme", "SSL_CLIENT_CERT"], ["SSL_CIPHER"]),
    ],
    ids=lambda v: v.name if isinstance(v, type) else None,
)  # fmt: skip
def test_provides_names_exactly_what_the_app_can_see(cls, adapter, provided, absent):
    target = cls()
    for variable in provided:
        assert target.provides(adapter, variable), variable
    for variable in absent:
        assert not target.provides(adapter, variable), variable
    assert not target.provides("no-such-adapter", "HTTPS")


def args_of(target: ProcessTarget, policy: str, adapter: str = "builtin") -> list[str]:
    return target.command(spec(adapter, policy))[0]


@pytest.mark.parametrize(
    ("cls", "flag", "values"),
    [
        (GunicornTarget, "--cert-reqs", ("0", "1", "2")),
        (UvicornTarget, "--ssl-cert-reqs", ("0", "1", "2")),
        (HypercornTarget, "--verify-mode", ("CERT_NONE", "CERT_OPTIONAL", "CERT_REQUIRED")),
    ],
    ids=lambda v: v.name if isinstance(v, type) else None,
)
def test_stdlib_servers_get_their_own_verify_flags(cls, flag, values):
    target = cls()
    ca_flag = "--ssl-ca-certs" if cls is UvicornTarget else "--ca-certs"
    for policy, value in zip(("ignore", "optional", "required"), values, strict=True):
        args = args_of(target, policy)
        assert args[args.index(flag) + 1] == value
        assert (ca_flag in args) == (policy != "ignore")
        assert args[-1].startswith("harness.apps.")


def test_granian_policies_map_to_ssl_ca_and_client_verify():
    target = GranianTarget()
    ignore, optional, required = (args_of(target, p, "rustls") for p in CHECKS)
    assert "--ssl-ca" not in ignore and "--ssl-client-verify" not in ignore
    assert "--ssl-ca" in optional and "--ssl-client-verify" not in optional
    assert "--ssl-ca" in required and "--ssl-client-verify" in required
    # granian prints the port it was given, not the one it bound: it is given a free one
    assert target.command(spec("rustls"))[1] > 0


@pytest.mark.parametrize("cls", [CherootNativeTarget, WerkzeugTarget], ids=lambda c: c.name)
def test_own_launchers_take_the_policy_and_client_ca(cls):
    target = cls()
    for policy in ("ignore", "optional", "required"):
        args = args_of(target, policy)
        assert args[args.index("--client-check") + 1] == policy
        assert ("--client-ca" in args) == (policy != "ignore")


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_versions_name_the_server_package(cls):
    versions = cls().versions()
    assert cls.package in versions


def test_a_target_whose_server_is_missing_is_a_load_error():
    class Missing(GunicornTarget):
        name = "missing"
        requires = ("mtls_matrix_no_such_server",)

    with pytest.raises(TargetLoadError, match="mtls_matrix_no_such_server is not installed"):
        checked(Missing())


@pytest.mark.parametrize("module", MODULES)
def test_factories_load_through_the_matrix_option(module):
    cls = {c.name: c for c in ALL}[module]
    pytest.importorskip(cls.requires[0] if cls.requires else cls.package)
    target = importlib.import_module(f"harness.targets.{module}").target()
    assert isinstance(target, cls)


# -- the apps --------------------------------------------------------------------------


def call_wsgi(environ: dict) -> tuple[str, dict]:
    seen = {}
    body = b"".join(
        wsgi_app.app(environ, lambda status, headers: seen.update(status=status, headers=headers))
    )
    return seen["status"], json.loads(body)


def test_wsgi_app_shows_the_tls_keys_the_server_set_and_nothing_else():
    status, shown = call_wsgi(
        {
            "wsgi.url_scheme": "https",
            "HTTPS": "on",
            "SSL_CIPHER_USEKEYSIZE": 256,
            "SSL_CLIENT_VERIFY": "NONE",
            "HTTP_HOST": "localhost",
            "REQUEST_METHOD": "GET",
        }
    )
    assert status.startswith("200")
    assert shown == {
        "wsgi.url_scheme": "https",
        "HTTPS": "on",
        "SSL_CIPHER_USEKEYSIZE": 256,
        "SSL_CLIENT_VERIFY": "NONE",
    }


def call_asgi(scope: dict) -> tuple[int, dict]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(asgi_app.app({"type": "http", **scope}, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_asgi_app_without_tls_extension_shows_only_the_scheme():
    status, shown = call_asgi({"scheme": "https", "extensions": {"http.response.trailers": {}}})
    assert status == 200
    assert shown == {"HTTPS": "on", "wsgi.url_scheme": "https"}


def test_asgi_app_maps_the_tls_extension_without_inventing_values():
    leaf, root = "-----BEGIN CERTIFICATE-----\nA\n", "-----BEGIN CERTIFICATE-----\nB\n"
    tls = {
        "tls_version": 0x0304,
        "cipher_suite": 0x1302,
        "client_cert_chain": [leaf, root],
        "client_cert_name": "CN=localhost,OU=client,O=mtls-matrix",
        "client_cert_error": None,
        "server_cert": None,
    }
    _, shown = call_asgi({"scheme": "https", "extensions": {"tls": tls}})
    assert shown == {
        "HTTPS": "on",
        "wsgi.url_scheme": "https",
        "SSL_PROTOCOL": "TLSv1.3",
        "SSL_CLIENT_VERIFY": "SUCCESS",
        "SSL_CLIENT_CERT": leaf,
        "SSL_CLIENT_CERT_CHAIN_0": root,
        "SSL_CLIENT_S_DN": "CN=localhost,OU=client,O=mtls-matrix",
    }
    no_cert = {**tls, "client_cert_chain": []}
    _, none = call_asgi({"scheme": "https", "extensions": {"tls": no_cert}})
    assert none["SSL_CLIENT_VERIFY"] == "NONE" and "SSL_CLIENT_CERT" not in none
    assert "SSL_CIPHER" not in shown  # an IANA number is not OpenSSL's cipher name
