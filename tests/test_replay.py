"""The replay corpus: the shipped data is well-formed, bad data is one line, and the
judge reads results fields (never prose). The replays themselves run in `tox -e replay`
(each builds two environments from the package registry)."""

from __future__ import annotations

import json

import pytest

from harness.targets.columns import target_package
from harness.targets.compat import TARGETS
from matrix.replay import load_corpus
from matrix.replay.corpus import CorpusError
from matrix.replay.run import clean, clean_ok, showing


def test_the_shipped_corpus_loads_and_names_real_targets_and_packages():
    entries = load_corpus()
    assert entries, "the corpus is empty"
    for entry in entries:
        assert entry.target in TARGETS, entry.id
        assert target_package(entry.target) == entry.package.lower(), entry.id
        assert entry.report.startswith("https://github.com/"), entry.id
        assert entry.fixed_source, f"{entry.id}: where the fixed release is stated"
        assert entry.affected != entry.fixed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "Bad Id"}, "id must be"),
        ({"report": ""}, "missing or empty report"),
        ({"cases": [], "battery": []}, "names no case and no battery kind"),
        ({"shows": {}}, "'shows' needs"),
        ({"shows": {"stall": "slow"}}, "shows.stall must be one of"),
    ],
)
def test_a_malformed_entry_is_one_line_naming_it(tmp_path, change, message):
    entry = {
        "id": "x-1", "project": "x", "report": "https://github.com/x/x/issues/1",
        "summary": "s", "target": "gunicorn", "package": "gunicorn", "affected": "1",
        "fixed": "2", "cases": ["c"], "shows": {"kind": "outcome"},
    }  # fmt: skip
    entry.update(change)
    path = tmp_path / "corpus.json"
    path.write_text(json.dumps({"version": 1, "entries": [entry]}))
    with pytest.raises(CorpusError, match=message) as info:
        load_corpus(path)
    assert "\n" not in str(info.value)


def _entry(**shows):
    path_entry = {
        "id": "e", "project": "p", "report": "https://github.com/p/p/issues/1",
        "summary": "s", "target": "gunicorn", "package": "gunicorn", "affected": "1",
        "fixed": "2", "cases": ["c1"], "battery": ["plain-http"], "shows": shows,
    }  # fmt: skip
    return path_entry


def _load(tmp_path, raw):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"entries": [raw]}))
    return load_corpus(path)[0]


def test_the_judge_reads_problem_kinds_unsupported_stalls_and_tracebacks(tmp_path):
    entry = _load(tmp_path, _entry(kind="outcome", severity="security"))
    failing = {"cases": [{"id": "c1", "status": "fail", "detail": "d",
                          "problems": [{"kind": "outcome", "severity": "security"}]}]}  # fmt: skip
    assert showing(entry, failing).startswith("c1: security outcome")
    other = {"cases": [{"id": "c1", "status": "fail", "detail": "d",
                        "problems": [{"kind": "environ", "severity": "visibility"}]}]}  # fmt: skip
    assert showing(entry, other) == ""
    assert clean(entry, other) == "battery kinds not measured"  # it lists plain-http
    no_battery = _load(tmp_path, {**_entry(kind="outcome", severity="security"), "battery": []})
    # a fixed release is judged on the bug its entry states, not on other findings
    assert clean_ok(no_battery, other)
    assert clean(no_battery, other) == "passes (other findings in 1 case(s))"
    assert not clean_ok(no_battery, failing)
    assert not clean_ok(no_battery, {"cases": [{"id": "c1", "status": "skip"}]})
    unsupported = _load(tmp_path, _entry(kind="unsupported"))
    skipped = {"cases": [{"id": "c1", "status": "skip", "unsupported": "no --ssl-ca"}]}
    assert "unsupported (no --ssl-ca)" in showing(unsupported, skipped)
    battery = {"cases": [{"id": "c1", "status": "pass", "problems": []}],
               "run": {"resilience": {"adapters": {"builtin": {"kinds": [
                   {"kind": "plain-http", "attackers": 1, "stall": "none", "alive": True,
                    "tracebacks": 3}]}}}}}  # fmt: skip
    tracebacks = _load(tmp_path, _entry(tracebacks="yes"))
    assert "3 tracebacks" in showing(tracebacks, battery)
    assert not clean_ok(tracebacks, battery)
    battery["run"]["resilience"]["adapters"]["builtin"]["kinds"][0]["tracebacks"] = 0
    assert showing(tracebacks, battery) == "" and clean_ok(tracebacks, battery)
    dead = _load(tmp_path, _entry(stall="dead"))
    block = battery["run"]["resilience"]["adapters"]["builtin"]["kinds"][0]
    block.update(stall="bounded", alive=True)
    assert showing(dead, battery) == ""  # a bounded stall is not the stated death
    block.update(stall="unbounded", alive=False)
    assert showing(dead, battery).endswith(": dead")
