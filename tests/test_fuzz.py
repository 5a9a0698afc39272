"""mtls-matrix fuzz finds seeded faults, shrinks them, and finds none in the reference.

Each seeded fault (tests/fuzz_faults.py) is a real reference server with one thing
wrong; the fuzzer, with a fixed seed and a short budget, must find it through real
handshakes and shrink it to a certificate that shows only that. The oracle is the truth
here (Apache joins where it is installed, in the clean run). Budgets are seconds of
generation, not assertions on timing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.target import TargetLoadError
from harness.targets.apache import ApacheTarget
from matrix.fuzz.endpoints import resolve
from matrix.fuzz.plan import Extensions
from matrix.fuzz.runner import run

BUDGET = 60.0
FIVE = ("--examples", "5", "--seed", "3", "--out")


def _run(names, certs, tmp_path, budget=BUDGET, examples=None, seed=22):
    return run(
        resolve(names),
        (certs["server"].cert, certs["server"].key),
        (certs["ca"].cert, certs["ca"].key),
        tmp_path,
        budget=budget,
        examples=examples,
        seed_value=seed,
        shrink_budget=90.0,
    )


def test_finds_a_dropped_dn_attribute_and_shrinks_it(certs, tmp_path):
    outcome = _run(["tests.fuzz_faults:dropped_uid"], certs, tmp_path)
    finding = outcome.finding
    assert finding is not None, f"not found in {outcome.examples} certificates"
    assert {d.variable for d in finding.differences} == {"SSL_CLIENT_S_DN_UID"}
    # shrunk: one RDN holding the one attribute that shows the fault, nothing else varied
    assert [[a.name for a in rdn] for rdn in finding.plan.subject] == [["UID"]]
    assert finding.plan.extensions == Extensions() and finding.plan.san == ()


def test_finds_a_rounded_date_variable(certs, tmp_path):
    outcome = _run(["tests.fuzz_faults:rounded_remain"], certs, tmp_path)
    finding = outcome.finding
    assert finding is not None, f"not found in {outcome.examples} certificates"
    assert {d.variable for d in finding.differences} == {"SSL_CLIENT_V_REMAIN"}
    assert len(finding.plan.subject) == 1 and finding.plan.san == ()


def test_finds_an_admitted_weak_key(certs, tmp_path):
    outcome = _run(["tests.fuzz_faults:weak_keys"], certs, tmp_path)
    finding = outcome.finding
    assert finding is not None, f"not found in {outcome.examples} certificates"
    assert [d.variable for d in finding.differences] == ["admission"]
    assert finding.plan.key_type == "rsa-1024"
    assert "RSA 1024" in finding.differences[0].expected


def test_reference_shows_no_difference(certs, tmp_path):
    names = ["reference"]
    if ApacheTarget().installed() is None:
        names.append("apache")
    outcome = _run(names, certs, tmp_path, budget=None, examples=40, seed=1)
    assert outcome.finding is None, outcome.finding and outcome.finding.differences
    assert outcome.examples == 40


def test_unknown_target_is_one_line(tmp_path):
    with pytest.raises(TargetLoadError, match="cannot import"):
        resolve(["no_such_module:target"])
    result = subprocess.run(
        [sys.executable, "-m", "matrix.fuzz", "--target", "nope:x", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_writes_its_report(tmp_path):
    out = tmp_path / "fz"
    result = subprocess.run(
        [sys.executable, "-m", "matrix.fuzz", "--target", "reference:builtin", *FIVE, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "fuzz.json").read_text())
    assert report["seed"] == 3 and report["examples"] == 5 and report["differences"] == []
    assert "no difference found" in result.stdout
    assert report["replay"].endswith("--seed 3 --out " + str(out) + " --examples 5")
