"""The real-clients check (matrix.clients): parsing, judging, and one real run.

The full run over every client is ``tox -e clients``; here one client runs the
whole policy x credential grid on both adapters (httpx: no program needed), and
a client whose program is missing is reported, not run.
"""

from __future__ import annotations

import json

import pytest

from matrix import clients
from matrix.clients import Seen, judge, openssl_alert


@pytest.mark.parametrize(
    ("text", "alert"),
    [
        (
            "curl: (56) OpenSSL SSL_read: OpenSSL/3.0.19: error:0A00045C:SSL routines::"
            "tlsv13 alert certificate required, errno 0",
            "certificate_required",
        ),
        (
            "40D7:error:0A000410:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure:"
            "../ssl/record/rec_layer_s3.c:1601:SSL alert number 40",
            "handshake_failure",
        ),
        ("error:0A000418:SSL routines::tlsv1 alert unknown ca", "unknown_ca"),
        ("error:0A000126:SSL routines:ssl3_read_n:unexpected eof while reading", None),
    ],
)
def test_reads_the_alert_from_openssl_error_strings(text, alert):
    assert openssl_alert(text) == alert


def test_judge_compares_outcome_alert_and_ca_names():
    assert (
        judge("rejected", "unknown_ca", "required", Seen("rejected", "exit 56", "unknown_ca")) == []
    )
    assert judge("rejected", "unknown_ca", "required", Seen("rejected", "exit 4")) == []
    assert judge("ok", None, "optional", Seen("rejected", "exit 4")) == [
        "expected ok, observed rejected"
    ]
    wrong_alert = judge(
        "rejected", "unknown_ca", "required", Seen("rejected", "x", "bad_certificate")
    )
    assert wrong_alert == ["expected alert unknown_ca, observed bad_certificate"]
    listed = judge("ok", None, "optional", Seen("ok", "exit 0", None, "listed"))
    assert listed and "CA names" in listed[0]
    assert judge("ok", None, "ignore", Seen("ok", "exit 0", None, "listed")) == []


def test_httpx_matches_the_oracle_on_both_adapters(certs, tmp_path, capsys):
    pytest.importorskip("httpx")
    out = tmp_path / "clients.json"
    code = clients.main(["--client", "httpx", "--out", str(out), "--certs-dir", str(certs.root)])
    report = json.loads(out.read_text())
    assert code == 0, capsys.readouterr().out
    runs = report["runs"]
    assert len(runs) == 2 * 5 * 7 and not any(r["problems"] for r in runs)
    refused = [r for r in runs if r["outcome"] == "rejected"]
    assert refused and all(r["surfaced"].startswith("httpx.") for r in refused)
    assert {r["alert"] for r in refused} >= {"certificate_required", "unknown_ca"}


def test_a_missing_program_is_reported_not_run(certs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no curl here
    out = tmp_path / "clients.json"
    args = ["--client", "curl", "--out", str(out), "--certs-dir", str(certs.root)]
    assert clients.main(args) == 0
    assert "curl             not run: curl not found on PATH" in capsys.readouterr().out
    assert json.loads(out.read_text())["clients"]["curl"]["not_run"] == "curl not found on PATH"
    assert clients.main([*args, "--require-all"]) == 1
