"""SPEC section 10: a run against any server ends, in bounded time and memory, with a
per-case problem of the right kind, no process left behind, and stable verdicts.

The servers are the deliberately broken targets of ``tests/broken_targets.py`` (real
TLS servers on loopback). Each is run the way a user runs it, ``mtls-matrix run`` in a
subprocess on one or two cases; the runs start together and are awaited one by one.
The memory bound and the ten-run stability check run in-process (``run_case``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.client import LIMITS
from matrix.dimensions import Case
from matrix.problems import (
    AVAILABILITY,
    INTERIM_RESPONSES,
    LEAKED_PROCESS,
    PROTOCOL,
    REFUSAL_FORM,
    RESPONSE_DEADLINE,
    RESPONSE_SIZE,
    START_TIMEOUT,
    STOP_TIMEOUT,
)
from matrix.resolver import probe
from matrix.runner import ATTEMPTS, CaseResult, MatrixEnv, build_facts, run_case
from tests import broken_targets

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 240  # seconds: a hung run fails the test instead of hanging it
LOOPBACK = "127.0.0.1"
PREFIX = "builtin-required-bind:127.0.0.1-connect:127.0.0.1-client"
GOOD = f"{PREFIX}:localhost"  # a client the server should serve
REFUSED = f"{PREFIX}:wrong-ca"  # refused: alert unknown_ca (first read, TLS 1.3)
MiB = 1024 * 1024


@dataclass
class Run:
    name: str
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    results: dict
    pids: list[int]

    def case(self, case_id: str) -> dict:
        found = [c for c in self.results["cases"] if c["id"] == case_id]
        assert found, f"{case_id} not in the results\n{self.show()}"
        return found[0]

    def kinds(self, case_id: str) -> set[str]:
        return {p["kind"] for p in self.case(case_id)["problems"]}

    def show(self) -> str:
        return f"$ {' '.join(self.args)}\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"


def environment(pids: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env["BROKEN_PIDS"] = str(pids)
    env.update(extra)
    return env


def command(
    target: str, out: Path, certs: Path, *cases: str, extra: tuple[str, ...] = ()
) -> list[str]:
    args = [sys.executable, "-m", "matrix.cli", "run", "--target", f"tests.broken_targets:{target}"]
    args += ["--out", str(out), "--certs-dir", str(certs), *extra]
    for case in cases:
        args += ["--case", case]
    return args


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def clean_up(pids: list[int]) -> list[int]:
    """The pids still alive (then killed, so a failing test leaves nothing either)."""
    left = [p for p in pids if alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


# name -> (target, cases, extra arguments): what needs a process of its own (the process
# checks: the run is the subreaper; the options; the diff of two results files)
RUNS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "never-starts": ("never_starts", (GOOD, REFUSED), ("--start-timeout", "2")),
    "leaves-child": ("leaves_child", (GOOD,), ()),
    "leaves-orphan": ("leaves_orphan", (GOOD,), ()),
    "racing-1": ("racing_refusals", (REFUSED,), ()),
    "racing-2": ("racing_refusals", (REFUSED,), ()),
}


class Runs:
    def __init__(self, tmp: Path, certs: Path) -> None:
        self.tmp = tmp
        self._procs: dict[str, tuple[subprocess.Popen, list[str], Path, Path]] = {}
        self._done: dict[str, Run] = {}
        for name, (target, cases, extra) in RUNS.items():
            out, pids = tmp / name / "out", tmp / name / "pids"
            out.parent.mkdir(parents=True)
            args = command(target, out, certs, *cases, extra=extra)
            proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env=environment(pids),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            self._procs[name] = (proc, args, out, pids)

    def get(self, name: str) -> Run:
        if name not in self._done:
            proc, args, out, pids = self._procs[name]
            try:
                stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate(timeout=10)
                pytest.fail(f"{name}: the run did not end in {RUN_TIMEOUT} s\n{stdout[-3000:]}")
            results_file = out / "results.json"
            results = json.loads(results_file.read_text()) if results_file.exists() else {}
            started = [int(p) for p in pids.read_text().split()] if pids.exists() else []
            self._done[name] = Run(name, args, proc.returncode, stdout, stderr, results, started)
        return self._done[name]

    def close(self) -> None:
        for proc, _, _, _ in self._procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, certs):
    started = Runs(tmp_path_factory.mktemp("bounded"), certs.root)  # one set, made once
    yield started
    started.close()


@pytest.mark.parametrize(
    ("name", "case_id", "kind"),
    [
        ("never-starts", GOOD, START_TIMEOUT),
        ("never-starts", REFUSED, START_TIMEOUT),
        ("leaves-child", GOOD, LEAKED_PROCESS),
        ("leaves-orphan", GOOD, LEAKED_PROCESS),
    ],
)
def test_a_broken_server_ends_as_a_problem_of_its_kind(runs, name, case_id, kind):
    run = runs.get(name)
    assert run.returncode == 1, run.show()
    assert run.results["run"]["complete"] is True, run.show()
    case = run.case(case_id)
    assert case["status"] == "fail"
    mine = [p for p in case["problems"] if p["kind"] == kind]
    assert mine, (case["problems"], run.show())
    assert mine[0]["severity"] == AVAILABILITY
    assert "Traceback" not in run.stderr, run.show()


@pytest.mark.parametrize("name", ["leaves-child", "leaves-orphan"])
def test_no_process_a_target_started_outlives_the_run(runs, name):
    run = runs.get(name)
    assert run.pids, "the target should have recorded the process it started"
    assert clean_up(run.pids) == [], run.show()


def test_a_start_that_never_returns_is_given_up_per_configuration(runs):
    run = runs.get("never-starts")
    good, refused = run.case(GOOD), run.case(REFUSED)
    assert good["problems"] == refused["problems"]  # the same words in every run
    assert good["problems"][0]["observed"] == "still running"


def test_diff_between_two_runs_of_a_racing_server_exits_0(runs):
    first, second = runs.get("racing-1"), runs.get("racing-2")
    for run in (first, second):
        assert run.results["cases"], run.show()
    old = first.args[first.args.index("--out") + 1]
    new = second.args[second.args.index("--out") + 1]
    diff = subprocess.run(
        [sys.executable, "-m", "matrix.cli", "diff", f"{old}/results.json", f"{new}/results.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert diff.returncode == 0, diff.stdout + diff.stderr


# -- in-process: memory, and ten runs of a racing server ----------------------------


def _case(client: str) -> Case:
    return Case("client-auth", "builtin", "required", LOOPBACK, LOOPBACK, client, "server")


@pytest.fixture(scope="module")
def facts(certs):
    return build_facts(certs, probe((LOOPBACK,)), dt.datetime.now(dt.timezone.utc))


def run_one(certs, facts, target, client: str, **bounds: float) -> CaseResult:
    """One case against a fresh server of ``target``, stopped (and checked) at the end."""
    env = MatrixEnv(certs, facts, target, **bounds)
    try:
        return run_case(_case(client), env, last=True)
    finally:
        env.close()


@pytest.mark.parametrize(
    ("factory", "kind", "bounds"),
    [
        ("never_starts", START_TIMEOUT, {"start_timeout": 1.0}),
        ("stop_hangs", STOP_TIMEOUT, {"stop_timeout": 1.0}),
        ("trickles_body", RESPONSE_DEADLINE, {}),
        ("endless_continue", INTERIM_RESPONSES, {}),
        ("huge_length", RESPONSE_SIZE, {}),
    ],
)
def test_each_bound_is_a_problem_of_its_kind(certs, facts, factory, kind, bounds):
    result = run_one(certs, facts, getattr(broken_targets, factory)(), "localhost", **bounds)
    assert result.status == "fail"
    mine = [p for p in result.problems if p.kind == kind]
    assert [(p.severity, p.what) for p in mine] == [(AVAILABILITY, mine[0].what)], result.problems
    # the trickle's bytes come every 4 s, within the 5 s per-read timeout: only a deadline
    # on the whole request ends it (else the case would take 64 x 4 s)
    assert (result.observed or {}).get("limit") == (kind if kind in LIMITS else None)


def test_a_2_gib_body_is_never_held_in_memory(certs, facts):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result = run_one(certs, facts, broken_targets.huge_body(), "localhost")
    assert RESPONSE_SIZE in {p.kind for p in result.problems}
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100, f"the harness grew by {grown_mib:.0f} MiB"


def test_an_in_process_servers_logs_are_counted_per_case(certs, facts):
    target = broken_targets.logs_tracebacks()
    good = run_one(certs, facts, target, "localhost").logs
    # the request logged an exception (a record with exc_info) and printed a traceback
    assert good["tracebacks"] >= 2 and good["log_lines"] >= 2, good
    refused = run_one(certs, facts, target, "wrong-ca").logs
    assert refused["tracebacks"] >= 1, refused  # the refused handshake's logged exception


def test_a_race_seen_in_a_known_order_passes_with_its_distribution(certs, facts):
    result = run_one(certs, facts, broken_targets.closes_first_then_alerts(), "wrong-ca")
    assert result.status == "pass", result.problems
    observed = result.observed
    assert observed["attempts"] == ATTEMPTS
    assert (observed["form"], observed["alert"]) == ("alert", "unknown_ca")
    counts = observed["distribution"]
    assert sum(counts.values()) == ATTEMPTS
    assert any("alert" not in form for form in counts), counts  # the first, bare close
    assert counts["rejected first-read alert unknown_ca"] >= 1


def test_a_server_that_never_sends_the_alert_fails_the_same_way_each_time(certs, facts):
    for _ in range(2):
        result = run_one(certs, facts, broken_targets.always_closes(), "wrong-ca")
        assert result.status == "fail"
        problems = [(p.kind, p.severity, p.what) for p in result.problems]
        assert problems == [(REFUSAL_FORM, PROTOCOL, "untrusted-issuer")]
        assert result.observed["attempts"] == ATTEMPTS
        assert not any("alert" in form for form in result.observed["distribution"])


def test_ten_runs_of_a_racing_server_give_identical_verdicts(certs, facts, monkeypatch):
    monkeypatch.setenv("BROKEN_ALERT_RATE", "0.6")  # the bare close wins 4 times in 10
    verdicts, distributions = set(), []
    for _ in range(10):
        result = run_one(certs, facts, broken_targets.racing_refusals(), "wrong-ca")
        verdicts.add((result.status, tuple((p.kind, p.severity, p.what) for p in result.problems)))
        distributions.append((result.observed or {}).get("distribution"))
    assert verdicts == {("pass", ())}, (verdicts, distributions)


# -- interrupted runs ---------------------------------------------------------------


def interrupted_run(tmp: Path, certs: Path, sig: signal.Signals) -> tuple[Run, str]:
    """``mtls-matrix run`` on two cases of a trickling server, sent ``sig`` once the first
    case has been reported (pytest's progress character; the second case takes the
    whole-request deadline): the run and its stdout."""
    out, pids = tmp / "out", tmp / "pids"
    args = command("trickles_with_child", out, certs, f"{PREFIX}:none", GOOD)
    proc = subprocess.Popen(
        args, cwd=ROOT, env=environment(pids), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    seen = b""
    try:
        for _ in range(100_000):  # bounded: the header lines, then one progress character
            char = proc.stdout.read(1)
            if not char:
                break
            seen += char
            _, started, rest = seen.partition(b"running the matrix")
            if started and b"\n" in rest and rest.rsplit(b"\n", 1)[1][-1:] in (b".", b"F"):
                break
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    started_pids = [int(p) for p in pids.read_text().split()] if pids.exists() else []
    text = (seen + stdout).decode(errors="replace")
    run = Run(
        sig.name,
        args,
        proc.returncode,
        text,
        stderr.decode(errors="replace"),
        results,
        started_pids,
    )
    return run, text


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_an_interrupted_run_says_so_everywhere(tmp_path, certs, sig):
    run, _ = interrupted_run(tmp_path, certs.root, sig)
    assert run.pids and clean_up(run.pids) == [], run.show()  # the server's child is gone
    assert run.returncode == 130, run.show()
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout, run.show()
    assert [line for line in run.stderr.splitlines() if sig.name in line] == [
        f"mtls-matrix run: interrupted by {sig.name}: incomplete results and reports in "
        f"{tmp_path / 'out'}"
    ], run.show()
    meta = run.results["run"]
    assert (meta["complete"], meta["interrupted_by"], meta["cases_total"]) == (False, sig.name, 2)
    assert len(run.results["cases"]) == 1
    banner = f"incomplete run: 1 of 2 cases, interrupted by {sig.name}"
    assert banner in (tmp_path / "out" / "summary.md").read_text()
    assert banner in (tmp_path / "out" / "matrix.html").read_text()


def test_a_complete_run_says_so(runs):
    meta = runs.get("racing-1").results["run"]
    assert (meta["complete"], meta["interrupted_by"], meta["cases_total"]) == (True, None, 1)


def test_diff_compares_verdicts_never_observations(runs):
    from reports.compare import diff
    from reports.load import parse_results

    data = runs.get("racing-1").results
    other = json.loads(json.dumps(data))
    case = other["cases"][0]
    case["observed"]["distribution"] = {"rejected first-read close": 9, "x": 1}
    case["observed"]["attempts"] = 10
    case["duration_ms"] = 12345.0
    case["logs"] = {"tracebacks": 3, "log_lines": 9}
    assert diff(parse_results(data), parse_results(other)).empty
    case["status"] = "fail"
    case["problems"] = [
        {"kind": REFUSAL_FORM, "severity": PROTOCOL, "what": "untrusted-issuer",
         "expected": "first-read alert unknown_ca", "observed": "first-read close"}
    ]  # fmt: skip
    assert diff(parse_results(data), parse_results(other)).regressed
