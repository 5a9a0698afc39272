"""Synthetic results files for the reports tests (shared by test_reports*.py; no tests here).

The expectations follow SPEC section 4's table so the full run looks like a real one, with a
few failures and skips planted at known places.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

ADAPTERS = ("builtin", "pyopenssl")
POLICIES = ("ignore", "optional", "optional+host", "required", "required+host")
BINDS = ("localhost", "127.0.0.1", "0.0.0.0")
CONNECTS = ("localhost", "127.0.0.1")
CLIENTS = ("none", "localhost", "ip", "wildcard", "wrong-host", "wrong-ca", "expired")
BAD_SERVER_CERTS = ("server-wrong-host", "server-wrong-ca")

RUN: dict[str, Any] = {
    "started": "2026-11-28T23:00:00Z",
    "duration_s": 12.3,
    "target": "reference",
    "profile": "standard",
    "versions": {
        "python": "3.11.7",
        "openssl": "OpenSSL 3.0.19 27 Jan 2026",
        "pyopenssl": "26.4.0",
        "cryptography": "50.0.2",
        "trustme": "1.2.1",
        "cheroot": "11.1.2",
        "requests": "2.34.2",
    },
    "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
    "resolver": {
        "localhost": ["127.0.0.1"],
        "reverse": {"127.0.0.1": ["localhost"], "::1": []},
        "ipv6_loopback": True,
    },
    "certificates": {"ca": "AB12CD34", "server": "EF56AB78"},
}


def case_id(
    adapter: str, policy: str, bind: str, connect: str, client: str, server_cert: str
) -> str:
    base = f"{adapter}-{policy}-bind:{bind}-connect:{connect}-client:{client}"
    return base if server_cert == "server" else f"{base}-server:{server_cert}"


REFUSALS = ("rejected", "server-cert-rejected")


def outcome_problem(expected: str, observed: str) -> dict[str, Any]:
    """SPEC section 6 as docs/spec.md writes it down: admitted where a refusal was due is
    security, one refusal for another protocol, anything else availability."""
    if observed == "ok":
        severity = "security"
    elif observed in REFUSALS and expected in REFUSALS:
        severity = "protocol"
    else:
        severity = "availability"
    what = f"{expected}->{observed}"
    return problem("outcome", severity, what, expected, observed)


def problem(kind: str, severity: str, what: str, expected: Any, observed: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "severity": severity,
        "what": what,
        "expected": expected,
        "observed": observed,
    }


def environ_problem(what: str, expected: Any, observed: Any) -> dict[str, Any]:
    return problem("environ", "visibility", what, expected, observed)


def make_case(
    adapter: str,
    policy: str,
    bind: str = "0.0.0.0",
    connect: str = "localhost",
    client: str = "localhost",
    server_cert: str = "server",
    expected: str = "ok",
    observed: str | None = None,
    status: str = "pass",
    reason: str = "",
    detail: str = "",
    server_alive: bool | None = None,
    problems: list[dict[str, Any]] | None = None,
    unsupported: str | None = None,
) -> dict[str, Any]:
    """A schema-2 case. A failing case's problems follow from its outcomes and survival
    unless given (a failure with the expected outcome needs them given)."""
    if observed is None and status != "skip":
        observed = expected
    if problems is None:
        problems = []
        if status == "fail" and observed != expected:
            problems.append(outcome_problem(expected, observed or "skipped"))
        if status == "fail" and server_alive is False:
            problems.append(problem("survival", "availability", "server-alive", "ok", "error"))
        assert problems or status != "fail", "a failing case needs its problems"
    return {
        "id": case_id(adapter, policy, bind, connect, client, server_cert),
        "adapter": adapter,
        "policy": policy,
        "bind": bind,
        "connect": connect,
        "client": client,
        "server_cert": server_cert,
        "expected": {"outcome": expected, "reason": reason or f"{policy}: expected {expected}"},
        "observed": None if observed is None else {"outcome": observed},
        "environ": None,
        "status": status,
        "unsupported": unsupported,
        "problems": problems,
        "server_alive": server_alive,
        "detail": detail,
        "duration_ms": 3.2,
    }


def remade(case: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``case`` made again by make_case with ``changes`` (problems follow the outcomes)."""
    args: dict[str, Any] = {k: case[k] for k in ("bind", "connect", "client", "server_cert")}
    args.update(expected=case["expected"]["outcome"], reason=case["expected"]["reason"])
    args.update(server_alive=case["server_alive"], status=case["status"])
    args.update(changes)
    return make_case(case["adapter"], case["policy"], **args)


def results(cases: list[dict[str, Any]], **run: Any) -> dict[str, Any]:
    return {"schema": 2, "run": {"schema": 2, **copy.deepcopy(RUN), **run}, "cases": cases}


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def expected_outcome(policy: str, client: str, server_cert: str) -> tuple[str, str]:
    """SPEC section 4, with a resolver where 127.0.0.1 reverse-resolves to localhost."""
    if server_cert != "server":
        return "server-cert-rejected", f"{server_cert}: the client must refuse it"
    check, _, host = policy.partition("+")
    if check == "ignore":
        return "ok", "ignore: no certificate requested"
    if client == "none":
        if check == "required":
            return "rejected", "required: no client certificate presented"
        return "ok", "optional: no certificate is fine"
    if client in ("wrong-ca", "expired"):
        return "rejected", f"{check}: {client} certificate does not verify"
    if host and client in ("wildcard", "wrong-host"):
        return "rejected", f"{policy}: no forward-confirmed reverse name matches {client}"
    return "ok", f"{policy}: verified"


def passing_case(
    adapter: str, policy: str, bind: str, connect: str, client: str, server_cert: str = "server"
) -> dict[str, Any]:
    """A case that went as SPEC section 4 says (survival probed after every non-ok)."""
    expected, reason = expected_outcome(policy, client, server_cert)
    return make_case(
        adapter,
        policy,
        bind,
        connect,
        client,
        server_cert,
        expected,
        reason=reason,
        server_alive=None if expected == "ok" else True,
    )


def full_run() -> dict[str, Any]:
    """All 460 cases; 3 failures and 4 skips planted in the client grid, 1 failure in the
    server-certificate grid."""
    cases = []
    for adapter in ADAPTERS:
        for policy in POLICIES:
            for bind in BINDS:
                for connect in CONNECTS:
                    for client in CLIENTS:
                        cases.append(passing_case(adapter, policy, bind, connect, client))
            for connect in CONNECTS:
                for server_cert in BAD_SERVER_CERTS:
                    cases.append(
                        passing_case(adapter, policy, "0.0.0.0", connect, "localhost", server_cert)
                    )
    by_id = {c["id"]: c for c in cases}

    def plant(cid: str, **changes: Any) -> None:
        by_id[cid].update(remade(by_id[cid], **changes))

    plant(
        case_id("pyopenssl", "required+host", "0.0.0.0", "localhost", "wildcard", "server"),
        observed="ok",
        status="fail",
        detail="HTTP 200 <b>served</b> & environ had SSL_CLIENT_VERIFY=SUCCESS",
    )
    plant(
        case_id("builtin", "optional", "localhost", "127.0.0.1", "expired", "server"),
        observed="error",
        status="fail",
        detail="ReadTimeout: HTTPSConnectionPool(host='127.0.0.1', port=4433): timed out",
        server_alive=False,
    )
    plant(
        case_id("pyopenssl", "required", "127.0.0.1", "localhost", "none", "server"),
        observed="ok",
        status="fail",
        detail="served without a certificate",
    )
    plant(
        case_id("builtin", "ignore", "0.0.0.0", "127.0.0.1", "localhost", "server-wrong-ca"),
        observed="ok",
        status="fail",
        detail="client accepted a certificate from other-ca",
    )
    for adapter in ADAPTERS:
        for client in ("none", "localhost"):
            plant(
                case_id(adapter, "optional+host", "localhost", "127.0.0.1", client, "server"),
                observed=None,
                status="skip",
                reason="bind localhost resolves to ::1 only; cannot connect to 127.0.0.1",
            )
    return results(cases)


VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}


@dataclass
class Node:
    """A tiny DOM built with the stdlib's html.parser, enough to find cells and read text."""

    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    def iter(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str | bool) -> list[Node]:
        """Nodes in document order; attrs match exactly, True means 'present'."""
        found = []
        for node in self.iter():
            if tag is not None and node.tag != tag:
                continue
            ok = True
            for name, want in attrs.items():
                name = name.replace("_", "-")
                if want is True:
                    ok = ok and name in node.attrs
                else:
                    ok = ok and node.attrs.get(name) == want
            if ok:
                found.append(node)
        return found

    def find(self, tag: str | None = None, **attrs: str | bool) -> Node:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID_TAGS:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root
