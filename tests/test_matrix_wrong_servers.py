"""The matrix catches deliberately wrong servers, and says why.

Each wrong server (``tests/wrong_servers.py``) runs a focused subset of the
matrix in a subprocess, exactly as a user would run it:

    python -m pytest matrix --target tests.wrong_servers:NAME -k EXPR

and the test checks that pytest exits 1, that exactly the cases the mistake
should break fail (read from results.json), and that each failure names the
case, the expected outcome and its reason, and what was observed. The
unmodified reference target runs the union of the same subsets (one process)
and passes every case.

Which cases a mistake breaks is decided per case from its dimensions and the
oracle's expectation recorded in results.json, so the tests hold on any host
(e.g. whether 127.0.0.1 reverse-resolves to localhost or not).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 120
REFERENCE = "harness.targets.reference:target"
VERIFYING = ("localhost", "ip", "wildcard", "wrong-host")  # chain to ca, valid, host may differ

SUBSETS: dict[str, list[str]] = {
    "required-loopback": ["-k", "required and bind:127.0.0.1 and connect:127.0.0.1"],
    # connect:127.0.0.1 reaches bind:0.0.0.0 on every host; DNS-IDs are still checked
    # against the peer's reverse names
    "host-checks": [
        "-k",
        "(optional+host or required+host) and bind:0.0.0.0 and connect:127.0.0.1",
    ],
    "no-host-loopback": ["-k", "bind:127.0.0.1 and connect:127.0.0.1 and not host"],
    "optional-loopback": ["-k", "optional and bind:127.0.0.1 and connect:127.0.0.1"],
    # a stalled server costs a client timeout per later case: this subset names its cases,
    # and the refused one is the last on its server
    "stall": [
        arg
        for case in (
            "builtin-optional-bind:127.0.0.1-connect:127.0.0.1-client:localhost",
            "builtin-optional-bind:127.0.0.1-connect:127.0.0.1-client:expired",
            "pyopenssl-required-bind:127.0.0.1-connect:127.0.0.1-client:ip",
        )
        for arg in ("--case", case)
    ],
}
SUBSET_SIZES = {
    "required-loopback": 2 * 2 * 7,  # adapters x {required, required+host} x clients
    "host-checks": 2 * 2 * 7 + 2 * 2 * 2,  # ... plus the server-cert grid's
    "no-host-loopback": 2 * 3 * 5,  # no +host policy, no localhost/wrong-host client
    "optional-loopback": 2 * 2 * 7,
    "stall": 3,
}

UNION = "union"


def _union_args() -> list[str]:
    exprs = [args[1] for args in SUBSETS.values() if args[0] == "-k"]
    return ["-k", " or ".join(f"({e})" for e in exprs)]


Result = dict


def _flat(case: Result) -> Result:
    """A schema-2 case with the outcomes as words (``expected``, ``reason``, ``observed``)."""
    observed = (case["observed"] or {}).get("outcome", "skipped")
    expected = case["expected"]
    return {
        **case,
        "expected": expected["outcome"],
        "reason": expected["reason"],
        "observed": observed,
    }


def _config(r: Result) -> tuple[str, ...]:
    return (r["adapter"], r["policy"], r["bind"], r["server_cert"])


def _after_first_refusal(results: list[Result]) -> set[str]:
    """Per server, in run order: the first case the server should refuse, and all after."""
    tripped: set[tuple[str, ...]] = set()
    broken = set()
    for r in results:
        if r["expected"] == "rejected":
            tripped.add(_config(r))
        if _config(r) in tripped:
            broken.add(r["id"])
    return broken


@dataclass(frozen=True)
class Wrong:
    name: str
    subset: str
    # which cases the mistake breaks, from results.json in run order
    breaks: Callable[[list[Result]], set[str]]
    observed: str | None  # the outcome a broken case shows, when it is always the same
    detail: str  # a substring every broken case's detail shows
    alive: str | None = None  # "server alive afterwards: ..." on every broken case


def _each(pred: Callable[[Result], bool]) -> Callable[[list[Result]], set[str]]:
    return lambda results: {r["id"] for r in results if pred(r)}


WRONG = [
    Wrong(
        "downgrade_required",
        "required-loopback",
        _each(lambda r: r["policy"].startswith("required") and r["client"] == "none"),
        observed="ok",
        detail="expected rejected, observed ok",
    ),
    Wrong(
        "ignores_host_check",
        "host-checks",
        _each(
            lambda r: (
                r["policy"].endswith("+host")
                and r["server_cert"] == "server"
                and r["client"] in VERIFYING
                and r["expected"] == "rejected"
            )
        ),
        observed="ok",
        detail="expected rejected, observed ok",
    ),
    Wrong(
        "trusts_other_ca",
        "no-host-loopback",
        _each(lambda r: r["client"] == "wrong-ca" and r["policy"] != "ignore"),
        observed="ok",
        detail="expected rejected, observed ok",
    ),
    Wrong(
        "drops_all_after_rejection",
        "optional-loopback",
        _after_first_refusal,
        observed=None,  # the refused case itself is 'rejected', later ones too
        detail="",
        alive="NO",
    ),
    Wrong(
        "stalls_after_rejection",
        "stall",
        _after_first_refusal,
        observed=None,
        detail="",
        alive="NO",
    ),
    Wrong(
        "wrong_client_dn",
        "optional-loopback",
        _each(lambda r: r["expected"] == "ok" and r["client"] != "none"),
        observed="ok",
        detail="SSL_CLIENT_S_DN is '/",
    ),
    Wrong(
        "drops_client_verify",
        "optional-loopback",
        _each(lambda r: r["expected"] == "ok"),
        observed="ok",
        detail="SSL_CLIENT_VERIFY is None, expected",
    ),
]


@dataclass
class Run:
    args: list[str]
    returncode: int
    output: str
    results: list[Result]

    def by_id(self) -> dict[str, Result]:
        return {r["id"]: r for r in self.results}

    def show(self) -> str:
        return f"$ {' '.join(self.args)}\n{self.output[-4000:]}"


class Runs:
    """Every subprocess run this module needs, started together and awaited on demand."""

    def __init__(self, tmp: Path, certs_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self._procs: dict[tuple[str, str], tuple[subprocess.Popen, list[str], Path]] = {}
        self._done: dict[tuple[str, str], Run] = {}
        # The reference runs once, over the union of the subsets (one process less per
        # subset); the stall subset's cases lie in the others.
        wanted = {(REFERENCE, UNION)} | {(f"tests.wrong_servers:{w.name}", w.subset) for w in WRONG}
        for i, (target, subset) in enumerate(sorted(wanted)):
            results = tmp / f"run{i}" / "results.json"
            args = [
                sys.executable,
                "-m",
                "pytest",
                "matrix",
                "-p",
                "no:cacheprovider",
                "-q",
                "--target",
                target,
                "--results",
                str(results),
                "--certs-dir",
                str(certs_dir),
                *(_union_args() if subset == UNION else SUBSETS[subset]),
            ]
            proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            self._procs[target, subset] = (proc, args, results)

    def get(self, target: str, subset: str) -> Run:
        key = (target, subset)
        if key not in self._done:
            proc, args, results = self._procs[key]
            try:
                output, _ = proc.communicate(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate(timeout=10)
                pytest.fail(f"matrix run timed out after {RUN_TIMEOUT}s\n{output[-4000:]}")
            cases = json.loads(results.read_text())["cases"] if results.exists() else []
            cases = [_flat(c) for c in cases]
            self._done[key] = Run(args, proc.returncode, output, cases)
        return self._done[key]

    def close(self) -> None:
        for proc, _, _ in self._procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)


@pytest.fixture(scope="module")
def runs(certs, tmp_path_factory):
    started = Runs(tmp_path_factory.mktemp("wrong-servers"), certs.root)
    yield started
    started.close()


def test_every_factory_is_exercised():
    from tests import wrong_servers

    assert sorted(wrong_servers.FACTORIES) == sorted(w.name for w in WRONG)
    for name in wrong_servers.FACTORIES:
        target = getattr(wrong_servers, name)()
        assert target.name.startswith("wrong:")
        for method in ("unsupported", "start", "provides", "versions"):
            assert callable(getattr(target, method))


def test_reference_passes_every_subset(runs):
    run = runs.get(REFERENCE, UNION)
    assert run.returncode == 0, run.show()
    assert len(run.results) >= max(SUBSET_SIZES.values()), run.show()
    for r in run.results:
        assert r["status"] in ("pass", "skip"), run.show()
        if r["status"] == "skip":  # only where this host cannot connect the pair at all
            assert r["expected"] == "skipped" and r["detail"], r


@pytest.mark.parametrize("wrong", WRONG, ids=[w.name for w in WRONG])
def test_subset_is_what_it_says(runs, wrong):
    """Each run selected the cases its expression names, all of which the reference passed."""
    ids = set(runs.get(f"tests.wrong_servers:{wrong.name}", wrong.subset).by_id())
    assert len(ids) == SUBSET_SIZES[wrong.subset]
    assert ids <= set(runs.get(REFERENCE, UNION).by_id())
    if wrong.subset != "stall":
        expr = SUBSETS[wrong.subset][1]
        words = [w for w in expr.replace("(", " ").replace(")", " ").split() if ":" in w]
        assert all(all(w in i for w in words) for i in ids), (expr, sorted(ids)[:3])


def _failure_block(output: str, case_id: str) -> str:
    """The failure message pytest printed for one case: from 'case' to 'server alive'."""
    start = output.find(f"case     {case_id}\n")
    assert start >= 0, f"no failure message names {case_id}"
    end = output.find("\n", output.find("server alive afterwards:", start))
    return output[start:end]


@pytest.mark.parametrize("wrong", WRONG, ids=[w.name for w in WRONG])
def test_matrix_catches_wrong_server(runs, wrong):
    run = runs.get(f"tests.wrong_servers:{wrong.name}", wrong.subset)
    reference = runs.get(REFERENCE, UNION).by_id()
    assert run.returncode == 1, run.show()
    got = run.by_id()
    assert set(got) <= set(reference), "the wrong server ran cases outside its subset"

    broken = wrong.breaks(run.results)
    assert broken, "the subset must contain cases this mistake breaks"
    assert len(broken) < len(got), "the subset must contain cases this mistake leaves alone"
    failed = {i for i, r in got.items() if r["status"] == "fail"}
    assert failed == broken, (
        f"should fail but did not: {sorted(broken - failed)}\n"
        f"failed but should not: {sorted(failed - broken)}\n{run.show()}"
    )
    for case_id, r in got.items():
        assert r["expected"] == reference[case_id]["expected"]  # same facts, same oracle
        if case_id not in broken:
            assert r["status"] == reference[case_id]["status"], (case_id, r)

    summary = f"{len(got)} cases: {len(got) - len(broken)} pass, {len(broken)} fail"
    assert summary in run.output
    for case_id in sorted(broken):
        r = got[case_id]
        block = _failure_block(run.output, case_id)
        assert f"FAILED matrix/test_matrix.py::test_case[{case_id}]" in run.output
        assert f"expected {r['expected']}: {r['reason']}\n" in block, block
        assert f"observed {r['observed']}\n" in block, block
        assert r["reason"], r
        if wrong.observed is not None:
            assert r["observed"] == wrong.observed, block
        assert wrong.detail in r["detail"], block
        if wrong.alive is not None:
            assert f"server alive afterwards: {wrong.alive}" in block, block


def test_a_server_that_stops_serving_is_named_as_such(runs):
    """The refused case itself was refused as predicted; the server's state fails it."""
    run = runs.get("tests.wrong_servers:drops_all_after_rejection", "optional-loopback")
    first = next(r for r in run.results if r["expected"] == "rejected")
    assert (first["observed"], first["status"]) == ("rejected", "fail")
    assert first["server_alive"] is False
    assert "server not serving afterwards" in first["detail"]
    later_ok = [
        r
        for r in run.results
        if r["expected"] == "ok" and _config(r) == _config(first) and r["status"] == "fail"
    ]
    for r in later_ok:
        assert "expected ok, observed rejected" in r["detail"], r


def test_a_stalled_server_is_caught_within_the_survival_deadline(runs):
    run = runs.get("tests.wrong_servers:stalls_after_rejection", "stall")
    by_id = run.by_id()
    refused = by_id["builtin-optional-bind:127.0.0.1-connect:127.0.0.1-client:expired"]
    assert refused["observed"] == "rejected" and refused["server_alive"] is False
    survival = [p for p in refused["problems"] if p["kind"] == "survival"]
    assert [p["observed"] for p in survival] == ["error"], refused  # within the 1 s deadline
    # another server in the same run is unaffected
    other = by_id["pyopenssl-required-bind:127.0.0.1-connect:127.0.0.1-client:ip"]
    assert other["status"] == "pass", other
