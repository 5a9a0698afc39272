"""The x509-limbo corpus loader, the classification and the divergence table (no sockets)."""

from __future__ import annotations

import collections
import datetime as dt
import json
from pathlib import Path

import pytest

from matrix.limbo import cli
from matrix.limbo.classify import CATEGORIES, category, plan, time_equivalent
from matrix.limbo.corpus import DEFAULT_CORPUS, SCHEMA_VERSION, CorpusError, load_corpus
from matrix.limbo.divergences import DIVERGENCES
from matrix.limbo.handshake import ERROR, REFUSED, Observation
from matrix.limbo.run import decide

# The corpus notes (x509-limbo commit 8a2e6f4, compiled for client certificates).
NOTES_COUNTS = {
    "client": 10,
    "path": 110,
    "crl": 8,
    "chain-depth": 6,
    "eku-server-auth": 7,
    "webpki-profile": 33,
    "server-name": 18,
    "real-world": 16,
}
NOW = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def cases():
    return load_corpus()


@pytest.fixture(scope="module")
def by_id(cases):
    return {c.id: c for c in cases}


def test_vendored_corpus_loads_with_its_notice(cases):
    assert len(cases) == 208
    assert collections.Counter(c.validation_kind for c in cases) == {"SERVER": 198, "CLIENT": 10}
    assert sum(c.peer_certificate_key is not None for c in cases) == 189
    notice = (DEFAULT_CORPUS.parent / "NOTICE").read_text()
    assert "github.com/C2SP/x509-limbo" in notice and "8a2e6f4" in notice
    assert "Apache License 2.0" in notice and "clientAuth" in notice


def _write(tmp_path: Path, data, name="corpus.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _one_case(**changes):
    case = json.loads(DEFAULT_CORPUS.read_text())["testcases"][0]
    case.update(changes)
    return case


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "not found"),
        ("{not json", "is not JSON"),
        ({"version": 2, "testcases": [_one_case()]}, "schema version 2"),
        ({"testcases": [_one_case()]}, "schema version None"),
        ({"version": 1}, "has no 'testcases'"),
        ({"version": 1, "testcases": []}, "empty"),
        ({"version": 1, "testcases": [{"id": "x"}]}, "lacks features"),
        ({"version": 1, "testcases": [_one_case(expected_result="MAYBE")]}, "expected_result"),
        ({"version": 1, "testcases": [_one_case(validation_time="soon")]}, "ISO 8601"),
        ({"version": 1, "testcases": [_one_case(), _one_case()]}, "appears twice"),
    ],
)
def test_loader_refuses_with_one_line(tmp_path, content, words):
    path = tmp_path / "missing.json" if content is None else _write(tmp_path, content)
    with pytest.raises(CorpusError) as info:
        load_corpus(path)
    message = str(info.value)
    assert words in message
    assert str(path) in message
    assert "\n" not in message


def test_cli_reports_a_bad_corpus_in_one_line_and_exit_2(tmp_path, capsys):
    path = _write(tmp_path, {"version": SCHEMA_VERSION + 1, "testcases": [_one_case()]})
    assert cli.main(["--corpus", str(path), "--no-store"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "schema version 2" in err and "Traceback" not in err


def test_cli_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--case", "no-such-case-id"])
    assert info.value.code == 2
    assert "no case id contains" in capsys.readouterr().err


def test_classification_totals_match_the_corpus_notes(cases):
    counts = collections.Counter(category(c).name for c in cases)
    assert counts == NOTES_COUNTS
    assert set(counts) == set(CATEGORIES)
    for cat in CATEGORIES.values():
        assert cat.reason


def test_every_case_not_run_live_says_why(cases):
    for case in cases:
        p = plan(case, NOW)
        assert (p.live or p.host_check) == (p.why_not_live is None), case.id
    live = [c for c in cases if plan(c, NOW).live]
    assert all(c.peer_certificate_key for c in live)
    assert {category(c).name for c in live} <= {
        "client",
        "path",
        "crl",
        "chain-depth",
        "webpki-profile",
    }


def test_past_validation_time_runs_only_where_the_verdict_carries_over(by_id):
    # Valid then (2024-04-01, the last second), expired now: not the corpus's verdict.
    assert time_equivalent(by_id["rfc5280::validity::notafter-exact"], NOW)
    assert not plan(by_id["rfc5280::validity::notafter-exact"], NOW).live
    # Not yet valid then, expired now: FAILURE for another reason, not run.
    assert not plan(by_id["rfc5280::validity::not-yet-valid-1-second"], NOW).live
    # Expired then, still expired: the FAILURE carries over.
    assert time_equivalent(by_id["rfc5280::validity::expired-leaf"], NOW) is None
    assert plan(by_id["rfc5280::validity::expired-leaf"], NOW).live
    # In 2023 the leaf of expired-leaf (2018-2021) was as expired as in 2024.
    earlier = dt.datetime(2023, 6, 1, tzinfo=dt.timezone.utc)
    assert time_equivalent(by_id["rfc5280::validity::expired-leaf"], earlier) is None


def test_server_auth_only_leaves_are_not_run(by_id):
    p = plan(by_id["crl::revoked-certificate-with-crl"], NOW)
    assert not p.live and "clientAuth" in p.why_not_live


def test_divergences_name_real_cases_and_categories(by_id):
    for entry in DIVERGENCES:
        if entry.key.startswith("category:"):
            assert entry.key.removeprefix("category:") in CATEGORIES
        else:
            assert entry.key in by_id, entry.key
            expected = "accepted" if by_id[entry.key].expects_success else "refused"
            assert entry.observed != expected, f"{entry.key} excuses the expected outcome"
        assert entry.reason


def test_the_servers_refusal_wins_over_a_confused_client():
    stale = Observation(ERROR, "handshake", detail="[('SSL routines', '', 'decode error')]")
    line = "client certificate rejected: unable to get local issuer certificate"
    assert decide(stale, line) == (REFUSED, line)
    assert decide(stale, None)[0] == ERROR
    required = Observation(REFUSED, "first-read", "alert", "certificate_required")
    assert decide(required, None)[0] == "could-not-present"


def test_name_cases_run_only_on_a_loopback_peer(by_id):
    from matrix.limbo.names import loopback_address

    assert loopback_address(by_id["webpki::san::exact-localhost-ip-san"]) == ("127.0.0.1", "")
    address, why = loopback_address(by_id["webpki::san::mismatch-domain-san"])
    assert address is None and "example2.com" in why
    address, why = loopback_address(by_id["rfc5280::san::ip-in-dns"])
    assert address is None and "8.8.8.8" in why


def test_exit_status_fails_on_the_reference_only():
    """A third-party server's disagreement is a finding; the reference's fails the run."""
    from matrix.limbo.cli import exit_status

    def column(target: str, disagree: int = 0, error: int = 0) -> dict:
        return {"target": target, "counts": {"disagree": disagree, "error": error}}

    assert exit_status([column("reference"), column("granian", disagree=28)], []) == 0
    assert exit_status([column("reference", disagree=1)], []) == 1
    assert exit_status([column("reference", error=1)], []) == 1
    assert exit_status([column("reference")], [{"fails": True}]) == 1
    assert exit_status([column("reference")], [{"fails": False}]) == 0
