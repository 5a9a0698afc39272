"""Synthetic per-target results for the compat report tests (shared; no tests here).

Four targets over a reduced matrix (two reachable bind/connect pairs and one unreachable one,
every policy and credential, the server-certificate grid), each with one planted behaviour:

- ``reference``: passes everything that runs.
- ``acceptor``: accepts the expired client certificate under optional and required; it has
  one TLS stack, so the matrix's pyopenssl cases are unsupported.
- ``blind``: a rustls target that exposes no client certificate to the application (environ
  mismatch on every verified ok case) and cannot express the +host policies (unsupported).
- ``fragile``: its builtin adapter stops serving after three rejections (server_alive false),
  and its server-wrong-host cases under ignore could not run on the host (plain skips).
"""

from __future__ import annotations

from typing import Any

from test_reports_data import environ_problem, make_case, passing_case, remade, results

POLICIES = ("ignore", "optional", "optional+host", "required", "required+host")
CLIENTS = ("none", "localhost", "ip", "wildcard", "wrong-host", "wrong-ca", "expired")
PAIRS = (("0.0.0.0", "localhost"), ("127.0.0.1", "127.0.0.1"))
UNREACHABLE = ("localhost", "127.0.0.1")
UNREACHABLE_REASON = (
    "bind localhost listens on ::1; connect 127.0.0.1 goes to 127.0.0.1: "
    "they cannot meet on this host"
)
BAD_SERVER_CERTS = ("server-wrong-host", "server-wrong-ca")
TARGETS = ("reference", "acceptor", "blind", "fragile")
DEAD_DETAIL = (
    "server not serving afterwards: client 'localhost' got error after 1.00s "
    "(ReadTimeout: timed out)"
)
PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ..."


def clean_cases(adapters: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every case passing as the spec says, except the unreachable pair (skipped)."""
    cases = []
    for adapter in adapters:
        for policy in POLICIES:
            for bind, connect in (*PAIRS, UNREACHABLE):
                for client in CLIENTS:
                    if (bind, connect) == UNREACHABLE:
                        cases.append(skipped(adapter, policy, bind, connect, client))
                    else:
                        cases.append(passing_case(adapter, policy, bind, connect, client))
            for connect in ("localhost", "127.0.0.1"):
                for server_cert in BAD_SERVER_CERTS:
                    cases.append(
                        passing_case(adapter, policy, "0.0.0.0", connect, "localhost", server_cert)
                    )
    return cases


def skipped(adapter: str, policy: str, bind: str, connect: str, client: str) -> dict[str, Any]:
    return make_case(
        adapter,
        policy,
        bind,
        connect,
        client,
        expected="skipped",
        status="skip",
        reason=UNREACHABLE_REASON,
        detail=UNREACHABLE_REASON,
    )


def environ_problems(client: str) -> list[dict[str, Any]]:
    """What an application behind a server that hides the client certificate misses."""
    problems = [
        environ_problem("SSL_CLIENT_VERIFY", "SUCCESS", None),
        environ_problem("SSL_CLIENT_CERT", PEM, None),
        environ_problem("SSL_CLIENT_S_DN", f"CN={client}", None),
        environ_problem("SSL_CLIENT_M_VERSION", "3", None),
    ]
    if client != "ip":
        problems.append(environ_problem("SSL_CLIENT_SAN_DNS_0", "localhost", None))
    return problems


def target_run(name: str) -> dict[str, Any]:
    adapters = ("rustls",) if name == "blind" else ("builtin", "pyopenssl")
    cases = clean_cases(adapters)
    for index, case in enumerate(cases):
        if case["status"] == "skip":
            continue
        verified = case["policy"] != "ignore" and case["client"] != "none"
        if name == "acceptor" and case["adapter"] == "pyopenssl":
            why = (
                "acceptor terminates TLS with stdlib ssl only (adapter 'builtin'), not 'pyopenssl'"
            )
            cases[index] = remade(case, status="skip", server_alive=None, unsupported=why)
        elif name == "acceptor" and case["client"] == "expired":
            if case["policy"] in ("optional", "required"):
                cases[index] = remade(case, observed="ok", status="fail", server_alive=None)
        elif name == "blind" and case["policy"].endswith("+host"):
            why = "no client host check (client_check_host)"
            cases[index] = remade(case, status="skip", server_alive=None, unsupported=why)
        elif name == "blind" and verified and case["expected"]["outcome"] == "ok":
            if case["server_cert"] == "server":
                problems = environ_problems(case["client"])
                cases[index] = remade(case, status="fail", problems=problems)
        elif name == "fragile" and is_fragile_dead(case):
            cases[index] = remade(case, status="fail", server_alive=False, detail=DEAD_DETAIL)
        elif name == "fragile" and is_fragile_skip(case):
            cases[index] = remade(
                case,
                expected="skipped",
                status="skip",
                reason=UNREACHABLE_REASON,
                server_alive=None,
            )
    versions = {"python": "3.11.7", "openssl": "OpenSSL 3.0.19 27 Jan 2026"}
    versions[f"target:{name}"] = "1.2.3"
    if name == "blind":
        versions["target:rustls"] = "0.23.1"
    return results(cases, target=name, versions=versions, duration_s=4.5)


def is_fragile_dead(case: dict[str, Any]) -> bool:
    if (case["adapter"], case["policy"], case["server_cert"]) != ("builtin", "required", "server"):
        return False
    pair = (case["bind"], case["connect"])
    return (case["client"] == "none" and pair in PAIRS) or (
        case["client"] == "wrong-ca" and pair == PAIRS[0]
    )


def is_fragile_skip(case: dict[str, Any]) -> bool:
    return case["policy"] == "ignore" and case["server_cert"] == "server-wrong-host"


def all_runs() -> dict[str, dict[str, Any]]:
    return {name: target_run(name) for name in TARGETS}
