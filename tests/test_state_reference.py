"""The reference server passes the whole connection-state profile, on both adapters,
and never carries a session across a reload, a host or a server."""

from __future__ import annotations

import pytest
from test_state_wrong_servers import run_state

from harness.targets.apache import ApacheTarget

MINE = "sni-hosts or resumption"  # the sni and resumption grids (the others: test_state_*)


def test_the_reference_passes_every_state_case(tmp_path):
    code, cases = run_state("harness.targets.reference:target", None, tmp_path)
    failed = {i: c["problems"] for i, c in cases.items() if c["status"] == "fail"}
    assert not failed
    assert code == 0
    assert len(cases) == 390 + 136 + 192  # sni and resumption; request; per-path
    # skipped: only what a back-end cannot ask with after the handshake (state-request.md)
    skipped = {i for i, c in cases.items() if c["status"] != "pass"}
    assert skipped == {
        i
        for i in cases
        if i.startswith(("builtin-per-path", "pyopenssl-per-path"))
        and i.endswith("-tls:1.2" if i.startswith("builtin") else "-tls:1.3")
    }
    for case_id, case in cases.items():
        steps = (case["observed"] or {}).get("steps", [])
        if "carry:" in case_id and "carry:same" not in case_id and len(steps) == 2:
            assert steps[1]["resumed"] is not True, case_id  # a session never crosses


NOT_INSTALLED = ApacheTarget().installed()


@pytest.mark.skipif(NOT_INSTALLED is not None, reason=str(NOT_INSTALLED))
def test_apache_passes_every_state_case_it_expresses(tmp_path):
    """Apache httpd is the truth column (SPEC section 9): SNI virtual hosts, a Host naming
    another host (421) and a reload (apache2 -k restart); docs/state.md has the figures."""
    code, cases = run_state("harness.targets.apache:target", MINE, tmp_path)
    failed = {i: c["problems"] for i, c in cases.items() if c["status"] == "fail"}
    assert not failed
    assert code == 0
    assert all(c["status"] == "pass" for c in cases.values())  # it expresses all 195
    misdirected = [
        i for i, c in cases.items() if (c["observed"] or {}).get("outcome") == "misdirected"
    ]
    assert misdirected and all("-host:other-" in i for i in misdirected)
