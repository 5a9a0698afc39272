"""The connection-state profile catches deliberately wrong servers, exactly their cases.

Each wrong server (tests/state_wrong_servers.py) runs a subset of the profile in a
subprocess, as a user would (``python -m pytest matrix --profile state --target ...``),
and the results file must show: pytest exits 1; every failing case is one the mistake
reaches; the cases where the mistake admits a client are ``security`` failures; every
other case passes. The reference server itself passes the whole profile
(tests/test_state_reference.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 300


def run_state(target: str, expr: str | None, tmp_path: Path) -> tuple[int, dict[str, dict]]:
    results = tmp_path / "results.json"
    command = [
        sys.executable, "-m", "pytest", "matrix", "-q", "-p", "no:randomly",
        "-p", "no:cacheprovider", "--profile", "state", "--target", target,
        "--results", str(results), "--certs-dir", str(tmp_path / "certs"),
        *(["-k", expr] if expr else []),
    ]  # fmt: skip
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert results.is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    cases = json.loads(results.read_text())["cases"]
    return proc.returncode, {c["id"]: c for c in cases}


def severities(case: dict) -> set[str]:
    return {p["severity"] for p in case["problems"]}


def test_an_sni_switch_that_keeps_the_first_verify_mode(tmp_path):
    code, cases = run_state(
        "tests.state_wrong_servers:sni_switch", "sni-hosts or carry:sni", tmp_path
    )
    assert code == 1
    failed = {i for i, c in cases.items() if c["status"] == "fail"}
    # The mistake reaches a connection only when the SNI names b.test and b.test's verify
    # mode differs from the default host's (the CA does switch with the context).
    for case_id in failed:
        assert "-sni:b-" in case_id or "carry:sni" in case_id, case_id
        assert "hosts:required/required[other-ca]" not in case_id, case_id
    for case_id, case in cases.items():
        if "-sni:a-" in case_id or "-sni:none-" in case_id or "-sni:unknown-" in case_id:
            assert case["status"] == "pass", case_id
    admitted = [
        "builtin-sni-hosts:ignore/required-sni:b-host:same-client:none-tls:1.3",
        "builtin-sni-hosts:ignore/required-sni:b-host:same-client:wrong-ca-tls:1.3",
        "builtin-sni-hosts:ignore/required-sni:b-host:other-client:none-tls:1.3",
        "builtin-sni-hosts:optional/required-sni:b-host:same-client:none-tls:1.3",
    ]
    for case_id in admitted:
        assert "security" in severities(cases[case_id]), case_id
    # A session from a.test (optional, no certificate) resumes on b.test (required): it
    # lives in the first context's cache and tickets.
    carried = "builtin-resumption-carry:sni-from:optional-to:required-session:ticket-client:none"
    assert "security" in severities(cases[f"{carried}-tls:1.3"])


def test_a_reload_that_changes_the_running_context(tmp_path):
    code, cases = run_state(
        "tests.state_wrong_servers:reload_in_place", "carry:reload or carry:same", tmp_path
    )
    assert code == 1
    for case_id, case in cases.items():
        if case["status"] == "fail":
            assert "carry:reload" in case_id, case_id
        if "carry:same" in case_id:
            assert case["status"] == "pass", case_id
    prefix = "builtin-resumption-carry:reload-from:"
    admitted = [
        # a session from before the reload resumes under required
        "optional-to:required-session:ticket-client:none-tls:1.3",
        "optional-to:required-session:ticket-client:none-tls:1.2",
        "ignore-to:required-session:ticket-client:wrong-ca-tls:1.3",
        # the old client CA stays in the store
        "required-to:required[other-ca]-session:id-client:localhost-tls:1.2",
    ]
    for case_id in admitted:
        assert "security" in severities(cases[prefix + case_id]), case_id
