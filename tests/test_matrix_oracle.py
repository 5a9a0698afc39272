"""SPEC section 4: the oracle's predictions against the SPEC's table, for made-up hosts.

The table below is the SPEC's, copied verbatim; its footnotes are decided here
by small rules written from the SPEC's wording. The credentials are the real
standard set (read through ``build_facts``); the resolver facts are invented so
that every footnote is exercised both ways, whatever host runs the tests.
"""

from __future__ import annotations

import ast
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from matrix.dimensions import Case, enumerate_cases
from matrix.oracle import (
    OK,
    REJECTED,
    SERVER_CERT_REJECTED,
    SKIPPED,
    Expectation,
    Facts,
    client_verdict,
    dns_matches,
    normalise,
    predict,
    survival_probe,
)
from matrix.resolver import ResolverFacts
from matrix.runner import build_facts

ROOT = Path(__file__).resolve().parent.parent

SPEC_TABLE = """
| client credential | ignore | optional | optional+host | required | required+host |
|---|---|---|---|---|---|
| none | ok | ok | ok | rejected | rejected |
| localhost | ok | ok | ok¹ | ok | ok¹ |
| ip | ok | ok | ok² | ok | ok² |
| wildcard | ok | ok | rejected³ | ok | rejected³ |
| wrong-host | ok | ok | rejected | ok | rejected |
| wrong-ca | ok | rejected | rejected | rejected | rejected |
| expired | ok | rejected | rejected | rejected | rejected |
"""
FOOTNOTES = {"¹": 1, "²": 2, "³": 3}


def parse_table(text: str) -> dict[tuple[str, str], tuple[str, int | None]]:
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.strip().splitlines()
    ]
    header, body = rows[0], rows[2:]
    policies = header[1:]
    table = {}
    for row in body:
        for policy, cell in zip(policies, row[1:], strict=True):
            note = FOOTNOTES.get(cell[-1])
            table[row[0], policy] = (cell[:-1] if note else cell, note)
    return table


TABLE = parse_table(SPEC_TABLE)
POLICIES = ["ignore", "optional", "optional+host", "required", "required+host"]
CLIENTS = ["none", "localhost", "ip", "wildcard", "wrong-host", "wrong-ca", "expired"]


def table_says(client: str, policy: str, peer: str, reverse: dict[str, list[str]]) -> str:
    """The SPEC's cell, with its footnote decided for this peer and these reverse names."""
    outcome, note = TABLE[client, policy]
    if note is None:
        return outcome
    peer = peer.removeprefix("::ffff:")
    names = [n.lower().rstrip(".") for n in reverse.get(peer, [])]
    if note == 1:  # ok when the peer IP reverse-resolves, confirmed, to localhost
        return OK if "localhost" in names else REJECTED
    if note == 2:  # ok when the (normalised) peer IP is 127.0.0.1
        return OK if peer == "127.0.0.1" else REJECTED
    # 3: rejected unless a confirmed reverse name has exactly one label under localhost
    one_label = any(n.endswith(".localhost") and n.count(".") == 1 and n[0] != "." for n in names)
    return OK if one_label else REJECTED


def v4_host(reverse_127: list[str], ipv6: bool = True) -> ResolverFacts:
    """localhost is 127.0.0.1 only; 127.0.0.1 reverse-resolves (confirmed) to these names."""
    names = {"localhost": ["127.0.0.1"], "127.0.0.1": ["127.0.0.1"], "0.0.0.0": ["0.0.0.0"]}
    return ResolverFacts(
        forward=names,
        passive=names,
        reverse={"127.0.0.1": reverse_127, "::1": []},
        ipv6_loopback=ipv6,
    )


def v6_only_localhost(ipv6: bool = True) -> ResolverFacts:
    """localhost resolves to ::1 only (some modern distributions)."""
    names = {"localhost": ["::1"], "127.0.0.1": ["127.0.0.1"], "0.0.0.0": ["0.0.0.0"]}
    return ResolverFacts(
        forward=names,
        passive=names,
        reverse={"127.0.0.1": [], "::1": ["localhost"]},
        ipv6_loopback=ipv6,
    )


def dual_stack() -> ResolverFacts:
    """localhost is ::1 then 127.0.0.1, both confirmed back to localhost."""
    names = {"localhost": ["::1", "127.0.0.1"], "127.0.0.1": ["127.0.0.1"], "0.0.0.0": ["0.0.0.0"]}
    return ResolverFacts(
        forward=names,
        passive=names,
        reverse={"127.0.0.1": ["localhost"], "::1": ["localhost"]},
        ipv6_loopback=True,
    )


V4_VARIANTS = {
    "reverse-localhost": ["localhost"],  # (a) footnote 1 rows ok
    "no-reverse": [],  # (b) footnote 1 rows rejected
    "reverse-foo.localhost": ["foo.localhost"],  # (c) footnote 3 ok
    "reverse-a.b.localhost": ["a.b.localhost"],  # (d) two labels: footnote 3 rejected
    "reverse-uppercase": ["LOCALHOST", "Foo.LocalHost."],  # names compare case-insensitively
}


@pytest.fixture(scope="module")
def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def facts_for(certs, resolver: ResolverFacts, now: dt.datetime) -> Facts:
    return build_facts(certs, resolver, now)


def client_auth_cases() -> list[Case]:
    return [c for c in enumerate_cases() if c.grid == "client-auth"]


def server_cert_cases() -> list[Case]:
    return [c for c in enumerate_cases() if c.grid == "server-cert"]


def test_table_is_complete():
    assert set(TABLE) == {(c, p) for c in CLIENTS for p in POLICIES}
    assert {v for v, _ in TABLE.values()} == {OK, REJECTED}
    assert sorted(n for _, n in TABLE.values() if n) == [1, 1, 2, 2, 3, 3]


@pytest.mark.parametrize("variant", list(V4_VARIANTS))
def test_table_on_an_ipv4_localhost_host(certs, now, variant):
    reverse = V4_VARIANTS[variant]
    facts = facts_for(certs, v4_host(reverse), now)
    for case in client_auth_cases():
        got = predict(case, facts)
        want = table_says(case.client, case.policy, "127.0.0.1", {"127.0.0.1": reverse})
        assert (got.outcome, got.peer) == (want, "127.0.0.1"), (case.id, got)


def test_footnotes_flip_as_the_spec_says(certs, now):
    """The four v4 variants, cell by cell, on the footnoted rows only."""

    def outcome(variant: str, client: str, policy: str) -> str:
        facts = facts_for(certs, v4_host(V4_VARIANTS[variant]), now)
        case = Case("client-auth", "builtin", policy, "127.0.0.1", "127.0.0.1", client, "server")
        return predict(case, facts).outcome

    for policy in ("optional+host", "required+host"):
        assert outcome("reverse-localhost", "localhost", policy) == OK  # 1, yes
        assert outcome("no-reverse", "localhost", policy) == REJECTED  # 1, no
        assert outcome("reverse-foo.localhost", "localhost", policy) == REJECTED
        assert outcome("no-reverse", "ip", policy) == OK  # 2: the peer is 127.0.0.1
        assert outcome("reverse-localhost", "wildcard", policy) == REJECTED  # 3, no
        assert outcome("reverse-foo.localhost", "wildcard", policy) == OK  # 3, yes
        assert outcome("reverse-a.b.localhost", "wildcard", policy) == REJECTED  # 3: two labels
        assert outcome("reverse-uppercase", "wildcard", policy) == OK


def test_table_on_a_dual_stack_host(certs, now):
    """localhost leads to ::1 first: where the server hears it, the peer is ::1 (footnote 2)."""
    resolver = dual_stack()
    facts = facts_for(certs, resolver, now)
    # (bind, connect) -> the address the server sees, worked out by hand
    peers = {
        ("localhost", "localhost"): "::1",  # both pick ::1
        ("localhost", "127.0.0.1"): None,  # server on ::1, client on 127.0.0.1
        ("127.0.0.1", "localhost"): "127.0.0.1",  # ::1 refused, the client falls back
        ("127.0.0.1", "127.0.0.1"): "127.0.0.1",
        ("0.0.0.0", "localhost"): "127.0.0.1",  # 0.0.0.0 does not hear ::1
        ("0.0.0.0", "127.0.0.1"): "127.0.0.1",
    }
    seen_v6 = 0
    for case in client_auth_cases():
        got = predict(case, facts)
        peer = peers[case.bind, case.connect]
        if peer is None:
            assert got.outcome == SKIPPED, case.id
            continue
        seen_v6 += peer == "::1"
        want = table_says(case.client, case.policy, peer, resolver.reverse)
        assert (got.outcome, got.peer) == (want, peer), (case.id, got)
    assert seen_v6 == 70
    ip_over_v6 = Case(
        "client-auth", "pyopenssl", "required+host", "localhost", "localhost", "ip", "server"
    )
    got = predict(ip_over_v6, facts)
    assert got.outcome == REJECTED and "::1" in got.reason


def test_v6_only_localhost_bind_localhost_connect_v4_is_skipped(certs, now):
    """(e) The server binds ::1, the client goes to 127.0.0.1: skipped, with the reason."""
    facts = facts_for(certs, v6_only_localhost(), now)
    cases = [c for c in client_auth_cases() if (c.bind, c.connect) == ("localhost", "127.0.0.1")]
    assert len(cases) == 70
    for case in cases:
        got = predict(case, facts)
        assert got.outcome == SKIPPED, case.id
        assert got.peer is None
        assert "::1" in got.reason and "127.0.0.1" in got.reason, got.reason
        assert "\n" not in got.reason


@pytest.mark.parametrize("ipv6", [True, False], ids=["ipv6", "no-ipv6"])
def test_bind_any_v4_cannot_hear_a_v6_only_localhost(certs, now, ipv6):
    """(f) bind 0.0.0.0 listens on IPv4 only; connect localhost goes to ::1 only."""
    facts = facts_for(certs, v6_only_localhost(ipv6=ipv6), now)
    cases = [c for c in enumerate_cases() if (c.bind, c.connect) == ("0.0.0.0", "localhost")]
    assert len(cases) == 70 + 20  # the server-cert grid too: skipped, not server-cert-rejected
    for case in cases:
        got = predict(case, facts)
        assert got.outcome == SKIPPED, (case.id, got)
        assert "0.0.0.0" in got.reason and "::1" in got.reason, got.reason
    # bind localhost + connect localhost meet on ::1 only if IPv6 loopback works
    case = Case("client-auth", "builtin", "optional", "localhost", "localhost", "none", "server")
    got = predict(case, facts)
    assert (got.outcome, got.peer) == ((OK, "::1") if ipv6 else (SKIPPED, None))


def test_nothing_is_skipped_on_an_ipv4_host(certs, now):
    facts = facts_for(certs, v4_host(["localhost"]), now)
    assert all(predict(c, facts).outcome != SKIPPED for c in enumerate_cases())


def test_ipv4_mapped_peers_are_normalised(certs, now):
    """(g) ::ffff:127.0.0.1 is compared as 127.0.0.1, for IP-IDs and reverse names alike."""
    assert normalise("::ffff:127.0.0.1") == "127.0.0.1"
    assert normalise("::FFFF:7f00:1") == "127.0.0.1"
    assert normalise("127.0.0.1") == "127.0.0.1"
    assert normalise("::1") == "::1"
    assert normalise("0:0:0:0:0:0:0:1") == "::1"
    assert normalise("fe80::1%lo") == "fe80::1"
    facts = facts_for(certs, v4_host(["localhost"]), now)
    for policy in ("optional+host", "required+host"):
        assert client_verdict(policy, "ip", "::ffff:127.0.0.1", facts)[0] == OK
        assert client_verdict(policy, "localhost", "::ffff:127.0.0.1", facts)[0] == OK
        assert client_verdict(policy, "wrong-host", "::ffff:127.0.0.1", facts)[0] == REJECTED
        assert client_verdict(policy, "ip", "::1", facts)[0] == REJECTED


@pytest.mark.parametrize(
    "resolver",
    [v4_host(["localhost"]), v4_host([]), dual_stack(), v6_only_localhost()],
    ids=["v4", "v4-no-reverse", "dual-stack", "v6-only-localhost"],
)
def test_bad_server_certificates_are_refused_under_every_policy(certs, now, resolver):
    facts = facts_for(certs, resolver, now)
    cases = server_cert_cases()
    assert {c.server_cert for c in cases} == {"server-wrong-host", "server-wrong-ca"}
    assert {c.policy for c in cases} == set(POLICIES)
    for case in cases:
        got = predict(case, facts)
        if got.outcome == SKIPPED:  # only where the pair cannot meet at all
            assert resolver.forward["localhost"] == ["::1"] and case.connect == "localhost"
            continue
        assert got.outcome == SERVER_CERT_REJECTED, (case.id, got)
        assert case.server_cert in got.reason


def test_server_certificate_reasons_say_what_is_wrong(certs, now):
    facts = facts_for(certs, v4_host(["localhost"]), now)

    def reason(cert: str, connect: str) -> str:
        case = Case("server-cert", "builtin", "ignore", "0.0.0.0", connect, "localhost", cert)
        return predict(case, facts).reason

    assert "other-ca" in reason("server-wrong-ca", "localhost")
    assert "wrong-host.example" in reason("server-wrong-host", "localhost")
    assert "127.0.0.1" in reason("server-wrong-host", "127.0.0.1")


@pytest.mark.parametrize(
    "resolver",
    [
        v4_host(["localhost"]),
        v4_host([]),
        v4_host(["foo.localhost"]),
        dual_stack(),
        v6_only_localhost(),
        v6_only_localhost(ipv6=False),
    ],
    ids=["v4", "v4-no-reverse", "v4-wildcard", "dual-stack", "v6-only", "v6-only-no-ipv6"],
)
def test_every_expectation_has_a_one_line_reason(certs, now, resolver):
    facts = facts_for(certs, resolver, now)
    for case in enumerate_cases():
        got = predict(case, facts)
        assert isinstance(got, Expectation)
        assert got.outcome in (OK, REJECTED, SERVER_CERT_REJECTED, SKIPPED)
        assert got.reason.strip() and "\n" not in got.reason, (case.id, got.reason)
        assert got.reason == got.reason.strip()


def test_reasons_name_the_policy_and_the_cause(certs, now):
    facts = facts_for(certs, v4_host([]), now)

    def reason(policy: str, client: str) -> str:
        case = Case("client-auth", "builtin", policy, "127.0.0.1", "127.0.0.1", client, "server")
        return predict(case, facts).reason

    assert reason("required", "none") == "required: no client certificate presented"
    assert "other-ca" in reason("optional", "wrong-ca")
    assert "expired" in reason("required", "expired")
    assert "wrong-host.example" in reason("required+host", "wrong-host")
    assert reason("ignore", "wrong-ca").startswith("ignore:")


def test_predictions_do_not_depend_on_adapter(certs, now):
    """The SPEC gives one table for both back-ends."""
    facts = facts_for(certs, dual_stack(), now)
    by_rest: dict[tuple, set[str]] = {}
    for c in enumerate_cases():
        key = (c.policy, c.bind, c.connect, c.client, c.server_cert)
        by_rest.setdefault(key, set()).add(predict(c, facts).outcome)
    assert all(len(v) == 1 for v in by_rest.values())


def test_expired_is_judged_by_the_runs_clock(certs, now):
    """The oracle uses the recorded 'now', not the wall clock: replaying a run is exact."""
    facts = facts_for(certs, v4_host(["localhost"]), now)
    expiry = facts.credentials["expired"].not_after
    earlier = facts_for(certs, v4_host(["localhost"]), expiry - dt.timedelta(days=1))
    case = Case("client-auth", "builtin", "required", "127.0.0.1", "127.0.0.1", "expired", "server")
    assert predict(case, facts).outcome == REJECTED
    assert predict(case, earlier).outcome == OK


@pytest.mark.parametrize(
    "resolver", [v4_host(["localhost"]), v4_host([]), dual_stack()], ids=["v4", "bare", "dual"]
)
def test_survival_probe_is_a_client_predicted_to_be_served(certs, now, resolver):
    facts = facts_for(certs, resolver, now)
    configs = {c.config for c in enumerate_cases()}
    for config in sorted(configs):
        for connect in ("localhost", "127.0.0.1"):
            case = Case("x", config.adapter, config.policy, config.bind, connect, "none", "server")
            if predict(case, facts).outcome == SKIPPED:
                continue
            probe = survival_probe(config, connect, facts)
            assert probe is not None, (config.key, connect)
            peer = predict(case, facts).peer
            assert client_verdict(config.policy, probe.client, peer, facts)[0] == OK
            if config.server_cert == "server":
                assert (probe.trust_root, probe.server_hostname) == ("ca", None)
            else:  # trust the bad certificate's issuer and check a name it carries
                issuer = "other-ca" if config.server_cert == "server-wrong-ca" else "ca"
                assert probe.trust_root == issuer
                ids = [*facts.credentials[config.server_cert].dns]
                ids += [*facts.credentials[config.server_cert].ips]
                assert probe.server_hostname in ids


# -- dns_matches: RFC 6125 as the SPEC puts it -----------------------------------------

DNS_CASES = [
    ("localhost", "localhost", True),
    ("LOCALHOST", "localhost", True),
    ("localhost", "LocalHost", True),
    ("localhost.", "localhost", True),  # absolute form
    ("localhost", "foo.localhost", False),
    ("*.localhost", "foo.localhost", True),
    ("*.localhost", "FOO.LOCALHOST", True),
    ("*.LocalHost", "foo.localhost", True),
    ("*.localhost", "localhost", False),  # exactly one label, not zero
    ("*.localhost", ".localhost", False),  # the label cannot be empty
    ("*.localhost", "a.b.localhost", False),  # nor two
    ("*.example.com", "www.example.com", True),
    ("*.example.com", "example.com", False),
    ("f*.localhost", "foo.localhost", False),  # only a whole label is a wildcard
    ("*o.localhost", "foo.localhost", False),
    ("foo.*.localhost", "foo.bar.localhost", False),  # only the left-most label
    ("*.*.localhost", "a.b.localhost", False),
    ("*", "localhost", False),
    ("*.0.0.1", "127.0.0.1", False),  # never an IP
    ("*.0.1", "127.0.0.1", False),
    ("*.localhost", "::1", False),
    ("wrong-host.example", "localhost", False),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), DNS_CASES)
def test_dns_matches(pattern, name, expected):
    assert dns_matches(pattern, name) is expected


# -- the oracle is independent of the reference server ---------------------------------


def _imports(path: Path) -> set[str]:
    """Absolute module names a matrix/*.py file imports (relative ones resolved)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = "matrix" + (f".{base}" if base else "")
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            out.update(a.value for a in node.args if isinstance(a, ast.Constant))
    return out


def _closure(start: str) -> set[str]:
    """matrix modules reachable from ``start`` through imports, and everything they import."""
    seen, todo, imported = set(), [start], set()
    while todo:
        name = todo.pop()
        path = ROOT / (name.replace(".", "/") + ".py")
        if name in seen or not path.exists():
            continue
        seen.add(name)
        names = _imports(path)
        imported |= names
        todo.extend(n for n in names if n.startswith("matrix."))
    return imported


def _is_reference(module: str) -> bool:
    return module == "harness.reference" or module.startswith("harness.reference.")


def test_oracle_imports_nothing_from_the_harness():
    imported = _closure("matrix.oracle")
    assert "matrix.credentials" in imported and "matrix.resolver" in imported  # sanity
    assert not {m for m in imported if m.split(".")[0] in ("harness", "certs_gen")}, imported
    imported = _closure("matrix.environ")
    assert not {m for m in imported if m.split(".")[0] in ("harness", "certs_gen")}, imported


# The benchmark measures the reference server against a bare TLS floor; it takes no
# part in any verdict, so it may drive the reference server directly.
NOT_VERDICT_CODE = {"bench.py"}


def test_no_matrix_module_imports_the_reference_server():
    files = sorted((ROOT / "matrix").glob("*.py"))
    assert {"oracle.py", "runner.py", "plugin.py"} <= {f.name for f in files}
    offenders = {
        f.name: sorted(m for m in _imports(f) if _is_reference(m))
        for f in files
        if f.name not in NOT_VERDICT_CODE
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_importing_the_oracle_loads_no_reference_server():
    code = (
        "import sys\n"
        "import matrix.oracle, matrix.environ, matrix.runner, matrix.plugin\n"
        "bad = sorted(m for m in sys.modules if m == 'harness.reference'"
        " or m.startswith('harness.reference.') or m.startswith('cheroot'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "[]"
