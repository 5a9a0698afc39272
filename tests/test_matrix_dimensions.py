"""SPEC section 3: the matrix's dimensions, its 460 cases, their ids and selection.

Expected counts are worked out here from the SPEC's dimension sizes, not taken
from ``matrix.dimensions``: the module is what is being checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from matrix.dimensions import BAD_SERVER_CERTS, GRIDS, enumerate_cases

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60

# SPEC section 3, written out.
ADAPTERS = ["builtin", "pyopenssl"]
POLICIES = ["ignore", "optional", "optional+host", "required", "required+host"]
BINDS = ["localhost", "127.0.0.1", "0.0.0.0"]
CONNECTS = ["localhost", "127.0.0.1"]
CLIENTS = ["none", "localhost", "ip", "wildcard", "wrong-host", "wrong-ca", "expired"]
BAD_SERVERS = ["server-wrong-host", "server-wrong-ca"]

CLIENT_AUTH = 2 * 5 * 3 * 2 * 7  # adapter x policy x bind x connect x client
SERVER_CERT = 2 * 5 * 2 * 2  # adapter x policy x connect x bad server cert
TOTAL = CLIENT_AUTH + SERVER_CERT


def test_spec_arithmetic():
    assert (CLIENT_AUTH, SERVER_CERT, TOTAL) == (420, 40, 460)
    assert len(ADAPTERS) * len(POLICIES) * len(BINDS) * len(CONNECTS) * len(CLIENTS) == 420
    assert len(ADAPTERS) * len(POLICIES) * len(CONNECTS) * len(BAD_SERVERS) == 40


def test_dimension_values_are_the_specs():
    assert set(BAD_SERVER_CERTS) == set(BAD_SERVERS)
    for grid in GRIDS:
        assert set(grid.adapter) == set(ADAPTERS)
        assert set(grid.policy) == set(POLICIES)


def test_460_cases_with_unique_ids():
    cases = enumerate_cases()
    assert len(cases) == TOTAL
    ids = [c.id for c in cases]
    assert len(set(ids)) == TOTAL, [i for i, n in Counter(ids).items() if n > 1]
    assert len(set(cases)) == TOTAL


def test_grid_split():
    cases = enumerate_cases()
    by_grid = Counter(c.grid for c in cases)
    assert by_grid == {"client-auth": CLIENT_AUTH, "server-cert": SERVER_CERT}
    by_server = Counter(c.server_cert for c in cases)
    assert by_server == {"server": CLIENT_AUTH, "server-wrong-host": 20, "server-wrong-ca": 20}
    for c in cases:
        assert (c.grid == "client-auth") == (c.server_cert == "server"), c.id


def test_client_auth_grid_is_the_full_product():
    got = {
        (c.adapter, c.policy, c.bind, c.connect, c.client)
        for c in enumerate_cases()
        if c.grid == "client-auth"
    }
    want = {
        (a, p, b, n, cl)
        for a in ADAPTERS
        for p in POLICIES
        for b in BINDS
        for n in CONNECTS
        for cl in CLIENTS
    }
    assert got == want


def test_server_cert_grid_holds_bind_and_client_fixed():
    got = {
        (c.adapter, c.policy, c.bind, c.connect, c.client, c.server_cert)
        for c in enumerate_cases()
        if c.grid == "server-cert"
    }
    want = {
        (a, p, "0.0.0.0", n, "localhost", s)
        for a in ADAPTERS
        for p in POLICIES
        for n in CONNECTS
        for s in BAD_SERVERS
    }
    assert got == want


def test_50_distinct_server_configurations():
    configs = {c.config for c in enumerate_cases()}
    # client-auth: adapter x policy x bind; server-cert: adapter x policy x bad cert
    assert len(configs) == 2 * 5 * 3 + 2 * 5 * 2 == 50
    assert len({cfg.key for cfg in configs}) == 50


def test_cases_sharing_a_server_are_contiguous():
    """Grouped by configuration, so a plain run starts each server exactly once."""
    seen: list = []
    for c in enumerate_cases():
        if not seen or seen[-1] != c.config:
            assert c.config not in seen, f"{c.config.key} comes back after another server"
            seen.append(c.config)
    assert len(seen) == 50


def test_every_id_names_every_dimension_value():
    for c in enumerate_cases():
        parts = [c.adapter, c.policy, f"bind:{c.bind}", f"connect:{c.connect}"]
        parts.append(f"client:{c.client}")
        for part in parts:
            assert part in c.id, (part, c.id)
        assert c.id.startswith(f"{c.adapter}-{c.policy}-bind:")
        if c.server_cert == "server":
            assert "server:" not in c.id
        else:
            assert c.id.endswith(f"-server:{c.server_cert}")
        assert "=" not in c.id and " " not in c.id  # pytest -k cannot take '='


def test_the_spec_example_id_exists():
    ids = {c.id for c in enumerate_cases()}
    assert "pyopenssl-required+host-bind:0.0.0.0-connect:localhost-client:wildcard" in ids
    assert (
        "builtin-ignore-bind:0.0.0.0-connect:127.0.0.1-client:localhost-server:server-wrong-ca"
        in ids
    )


def _pytest(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "matrix", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def _collected(expr: str) -> list[str]:
    proc = _pytest("--collect-only", "-q", "-k", expr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prefix = "matrix/test_matrix.py::test_case["
    ids = [line[len(prefix) : -1] for line in proc.stdout.splitlines() if line.startswith(prefix)]
    assert f"{len(ids)}/{TOTAL} tests collected" in proc.stdout, proc.stdout[-500:]
    return ids


# (expression, count from the SPEC's sizes, what every selected id must satisfy)
K_SELECTIONS = [
    ("pyopenssl", TOTAL // 2, lambda i: i.startswith("pyopenssl-")),
    # only the client-auth grid varies bind: 2 adapters x 5 policies x 2 connects x 7 clients
    ("bind:localhost", 2 * 5 * 2 * 7, lambda i: "-bind:localhost-" in i),
    # client-auth: 2 x 5 x 3 binds x 2 connects; plus every server-cert case (client localhost)
    ("client:localhost", 2 * 5 * 3 * 2 + SERVER_CERT, lambda i: "-client:localhost" in i),
    # "required" also matches required+host: 2 adapters x 2 policies x 3 x 2, wildcard only
    (
        "required and wildcard",
        2 * 2 * 3 * 2,
        lambda i: "-required" in i and i.endswith("-client:wildcard"),
    ),
    # client-auth 2 x 3 x 2 x 7, plus server-cert 2 x 2 connects x 2 bad certs
    ("required+host", 2 * 3 * 2 * 7 + 2 * 2 * 2, lambda i: "-required+host-" in i),
]


@pytest.mark.parametrize(("expr", "count", "check"), K_SELECTIONS, ids=[s[0] for s in K_SELECTIONS])
def test_k_selects_what_it_says(expr, count, check):
    ids = _collected(expr)
    assert len(ids) == count
    assert len(set(ids)) == count
    assert all(check(i) for i in ids), [i for i in ids if not check(i)][:5]


def test_k_counts_are_the_specs():
    assert [c for _, c, _ in K_SELECTIONS] == [230, 140, 100, 24, 92]


def _assert_usage_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode not in (0, 1), output  # 1 would mean "tests failed"
    assert "Traceback" not in output and "pluggy" not in output, output
    errors = [line for line in output.splitlines() if line.strip()]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], output


def test_unknown_case_id_is_a_one_line_usage_error():
    proc = _pytest("-q", "--case", "UNKNOWN")
    _assert_usage_error(proc, "unknown case id 'UNKNOWN'", "ids look like")


def test_unknown_target_module_is_a_one_line_usage_error():
    proc = _pytest("-q", "--target", "nosuch.module:x")
    _assert_usage_error(proc, "--target nosuch.module:x", "nosuch")


def test_known_case_id_selects_exactly_that_case():
    wanted = "builtin-optional-bind:127.0.0.1-connect:127.0.0.1-client:none"
    proc = _pytest("--collect-only", "-q", "--case", wanted, "--case", wanted)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"matrix/test_matrix.py::test_case[{wanted}]" in proc.stdout
    assert "1 test collected" in proc.stdout
