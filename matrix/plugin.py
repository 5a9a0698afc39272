"""pytest integration: one parametrised test per case, results.json at the end.

Registered as the ``pytest11`` entry point ``matrix.plugin`` (and named so by the
repository's conftest.py: the same name, so an editable install and the conftest
never register it twice). Installed, it is loaded by every pytest run in that
environment, so it stays inert until the matrix is collected: the default target is
loaded only then, and nothing is written unless ``--results`` says where.

Under pytest-xdist the controller generates the certificates, probes the
resolver and fixes the run's clock once, and hands all three to the workers,
so every worker predicts from the same facts; workers send each case's result
back in its report, and only the controller writes results.json.

Where results go (docs/cli.md): ``--results PATH`` writes them, checked before any
case runs (a directory, or a place that cannot be written, is a usage error);
without it a run writes nothing, so an ad hoc ``pytest matrix -k ...`` never
replaces the main job's ``build/results.json`` (``tox -e matrix`` and
``mtls-matrix run`` pass it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest

import certs_gen
from harness.processes import become_subreaper
from harness.target import (
    REQUIRED_VARIABLES,
    STATE_VARIABLES,
    CheckedTarget,
    TargetLoadError,
    load_target,
)

from . import interrupts
from .dimensions import PROFILES, Case, addresses, enumerate_cases
from .environ import SPEC_VARIABLES
from .oracle import Facts
from .outputs import check_results_path
from .problems import HARNESS, START, START_TIMEOUT
from .resolver import ResolverFacts, probe
from .results import run_metadata, write_results
from .runner import MatrixEnv, build_facts, run_case
from .servers import START_TIMEOUT_S
from .shards import ShardError, parse_shard, shard
from .state import PROFILE as STATE_PROFILE
from .survival import run_order

DEFAULT_TARGET = "harness.targets.reference:target"
DEFAULT_CERTS_DIR = "build/matrix-certs"  # + "-<profile>" for a profile but the default
PROFILE = "standard"  # the default --profile
_INPUTS = "mtls_matrix_inputs"
_RESULT = "mtls_matrix_case"
CONTRACT_MARK = "target contract:"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mtls-matrix")
    group.addoption(
        "--target",
        default=None,
        metavar="MODULE:FACTORY",
        help="server under test: a factory returning a target (harness/target.py); "
        f"the current directory is importable (default {DEFAULT_TARGET})",
    )
    group.addoption(
        "--results",
        default=None,
        metavar="PATH",
        help="write the matrix results (JSON) to PATH, checked before the run starts; "
        "without it nothing is written",
    )
    group.addoption(
        "--certs-dir",
        default=None,
        metavar="DIR",
        help="certificate set for the matrix: generated in an empty directory, or reused "
        f"when DIR holds one this project made (default {DEFAULT_CERTS_DIR}, or "
        f"{DEFAULT_CERTS_DIR}-extended for --profile extended)",
    )
    group.addoption(
        "--profile",
        default=PROFILE,
        choices=[*PROFILES, STATE_PROFILE],
        help="which matrix to run: standard (the 460 cases), extended (IPv6, TLS 1.2 and "
        "1.3, the extended credentials, revocation, configuration faults) or state (SNI "
        "virtual hosts, resumption and the other connection-state grids, docs/state.md)",
    )
    group.addoption(
        "--start-timeout",
        type=_seconds,
        default=START_TIMEOUT_S,
        metavar="SECONDS",
        help="deadline for the target's start() per configuration; one that does not "
        f"return in time is a start-timeout problem of each of its cases (default "
        f"{START_TIMEOUT_S:g})",
    )
    group.addoption(
        "--case",
        action="append",
        default=[],
        metavar="ID",
        help="run only this case id (repeatable); unknown ids are an error",
    )
    group.addoption(
        "--shard",
        type=_shard,
        default=None,
        metavar="K/N",
        help="run only the K-th of N parts of the cases (whole server configurations, "
        "balanced by case count; merge the parts with mtls-matrix merge)",
    )


def _shard(text: str) -> tuple[int, int]:
    """``K/N`` (argparse type: a bad value is a usage error)."""
    try:
        return parse_shard(text)
    except ShardError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    """A positive number of seconds (argparse type: a bad value is a usage error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"must be between 0 and 86400 seconds, not {text}")
    return value


_target_key = pytest.StashKey[CheckedTarget]()
_next_key = pytest.StashKey[Any]()
_total_key = pytest.StashKey[int]()
_signals_key = pytest.StashKey[bool]()
_results_key = pytest.StashKey[list]()
_started_key = pytest.StashKey[float]()
_inputs_key = pytest.StashKey[dict]()
_summary_key = pytest.StashKey[tuple]()
_contract_key = pytest.StashKey[list]()
_facts_key = pytest.StashKey[Any]()


class _Collector:
    """Gathers each case's result from its report (on the controller under xdist)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(tryfirst=True)  # before the terminal shows it: shown means recorded
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == _RESULT:
                self.config.stash[_results_key].append(value)
        if report.failed:  # the failure's text holds the target's own message
            for line in str(report.longrepr).splitlines():
                if CONTRACT_MARK in line:
                    self.config.stash[_contract_key].append(line)
                    break


class _OneBlockPerMistake:
    """One failure block per target mistake, not one per case (issue 18).

    A mistake in a target (``start`` raising, hanging or returning no handle,
    ``unsupported`` raising) fails every case of every configuration with the same
    problem: 230 blocks of seven lines saying the same thing. Failures whose problems are
    all of the kinds ``start``, ``start-timeout`` and ``harness`` are grouped by their
    ``detail`` (built from fields only, so identical for identical mistakes): the first is
    printed in full, the others are one line saying how many failed the same way.
    results.json and the reports keep each case; pytest's counts are unchanged. Other
    failures (the server's own findings) are printed case by case as always.
    """

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Any:
        failed = terminalreporter.stats.get("failed", [])
        shown, repeated = [], {}
        for report in failed:
            key = _mistake(report)
            if key is None or key not in repeated:
                shown.append(report)
                if key is not None:
                    repeated[key] = [report.nodeid.rpartition("[")[2].rstrip("]"), 0]
            else:
                repeated[key][1] += 1
        if len(shown) < len(failed):
            terminalreporter.stats["failed"] = shown
        try:
            return (yield)
        finally:
            terminalreporter.stats["failed"] = failed
            for detail, (first, more) in repeated.items():
                if more:
                    case = "case" if more == 1 else "cases"
                    terminalreporter.write_line(
                        f"mtls-matrix: {more} more {case} failed as {first} did ({detail}); "
                        "each is in the results"
                    )


def _mistake(report: pytest.TestReport) -> str | None:
    """The ``detail`` of a case failed by a target mistake (start, start-timeout and harness
    problems only)."""
    for name, value in getattr(report, "user_properties", ()):
        if name == _RESULT and isinstance(value, dict):
            kinds = {p.get("kind") for p in value.get("problems") or ()}
            if kinds and kinds <= {START, START_TIMEOUT, HARNESS}:
                return str(value.get("detail"))
    return None


# Plugins a run of the matrix alone has no use for, each costing time per test or per run
# (docs: README "Speed"). hypothesis's imports all of hypothesis in its terminal summary:
# 1-3 s on a loaded machine, which under pytest-xdist every worker spends before it reports
# that it has finished, so the controller waits for it; and it wraps every test's call and
# report. The matrix's tests are not hypothesis tests (matrix/fuzz runs on its own).
UNUSED_PLUGINS = ("hypothesispytest",)


def matrix_only(config: pytest.Config) -> bool:
    """Whether this run collects nothing but the matrix: every argument names the matrix
    package (``matrix``, ``matrix/test_matrix.py::...``, an absolute path to it)."""
    here = Path(__file__).resolve().parent
    args = [str(a).split("::")[0] for a in config.args]
    if not args:
        return False
    for arg in args:
        path = Path(arg)
        inside = here == path.resolve() or here in path.resolve().parents
        if not (inside or arg in ("matrix", "matrix.test_matrix")):
            return False
    return True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "matrix: one case of the mTLS compatibility matrix")
    if matrix_only(config):
        for name in UNUSED_PLUGINS:
            plugin = config.pluginmanager.get_plugin(name)
            if plugin is not None:
                config.pluginmanager.unregister(plugin)
    config.stash[_results_key] = []
    config.stash[_contract_key] = []
    config.stash[_started_key] = time.monotonic()
    config.pluginmanager.register(_Collector(config), "mtls-matrix-collector")
    config.pluginmanager.register(_OneBlockPerMistake(), "mtls-matrix-one-block-per-mistake")
    controller = not hasattr(config, "workerinput")
    if controller:  # SIGINT/SIGTERM: partial results, marked incomplete (SPEC section 10)
        interrupts.reset()
        config.stash[_signals_key] = interrupts.install()
    if controller and config.getoption("--results") is not None:
        try:
            config.option.results = str(check_results_path(config.getoption("--results")))
        except ValueError as exc:
            raise pytest.UsageError(f"--results: {exc}") from None
    # An explicit target (or --case) is checked now, so a bad one is a one-line usage
    # error; the default target waits until the matrix is collected.
    if config.getoption("--target") is not None or config.getoption("--case"):
        target = _target(config)
        known = {c.id for c in matrix_cases(target, profile_of(config))}
        unknown = [w for w in config.getoption("--case") if w not in known]
        if unknown:
            raise pytest.UsageError(_unknown_case(unknown[0], target, profile_of(config)))


def _unknown_case(case_id: str, target: CheckedTarget, profile: str = PROFILE) -> str:
    if profile == STATE_PROFILE:
        return f"unknown case id {case_id!r} in profile {profile} (python -m matrix.state)"
    every = {c.id: c for c in enumerate_cases(adapters=target.adapters, profile=profile)}
    if case_id in every:
        return (
            f"case {case_id!r} is on adapter {every[case_id].adapter!r}, which target "
            f"{target.name!r} does not run (its adapters: {', '.join(target.adapters)})"
        )
    return (
        f"unknown case id {case_id!r} (ids look like "
        "'pyopenssl-required+host-bind:0.0.0.0-connect:localhost-client:wildcard')"
    )


def _target(config: pytest.Config) -> CheckedTarget:
    """The run's target, loaded and checked once; a bad one is a usage error."""
    if _target_key not in config.stash:
        reference = config.getoption("--target") or DEFAULT_TARGET
        try:
            target = load_target(reference, search=[config.invocation_params.dir])
            target.check_provides((*SPEC_VARIABLES, *STATE_VARIABLES))
        except TargetLoadError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[_target_key] = target
    return config.stash[_target_key]


def matrix_cases(target: CheckedTarget, profile: str = PROFILE) -> list[Case]:
    """The cases a target runs: every grid of ``profile``, on the target's adapters only."""
    if profile == STATE_PROFILE:
        from . import state

        return state.cases(target.adapters)
    cases = enumerate_cases(adapters=target.adapters, profile=profile)
    return [c for c in cases if c.adapter in target.adapters]


def cases_for(config: pytest.Config) -> list[Case]:
    """Every case of the run's --profile that the run's target runs."""
    return matrix_cases(_target(config), profile_of(config))


def profile_of(config: pytest.Config) -> str:
    return config.getoption("--profile")


def certs_profile(profile: str) -> str:
    """The certificate set (certs_gen profile) a matrix profile runs on."""
    return PROFILE if profile == STATE_PROFILE else profile


def target_adapters(config: pytest.Config) -> tuple[str, ...]:
    return _target(config).adapters


def _inputs(config: pytest.Config) -> dict[str, Any]:
    """Certificates, resolver facts and clock: made once per run, by the controller."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        if _INPUTS not in workerinput:  # the controller did not see the matrix coming
            raise pytest.UsageError(
                "under pytest-xdist, name the matrix on the command line "
                "(pytest matrix, pytest --pyargs matrix, or --target)"
            )
        return json.loads(workerinput[_INPUTS])
    if _inputs_key not in config.stash:
        # The state profile uses the standard certificate set (and its directory).
        profile = certs_profile(profile_of(config))
        default_dir = DEFAULT_CERTS_DIR + ("" if profile == PROFILE else f"-{profile}")
        certs_dir = Path(config.getoption("--certs-dir") or default_dir).resolve()
        try:
            certs = certs_gen.generate(certs_dir, profile=profile)
        except certs_gen.CertsGenError as exc:
            raise pytest.UsageError(f"--certs-dir: {exc}") from None
        config.stash[_inputs_key] = {
            "certs_dir": str(certs.root),
            "resolver": probe(addresses(profile)).to_json(),
            "started": dt.datetime.now(dt.timezone.utc).isoformat(),
        }
    return config.stash[_inputs_key]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    if _wants_matrix(node.config):
        node.workerinput[_INPUTS] = json.dumps(_inputs(node.config))


def _wants_matrix(config: pytest.Config) -> bool:
    """Whether this run can collect the matrix (so certificates must be made up front)."""
    if config.getoption("--target") is not None or config.getoption("--case"):
        return True
    return any("matrix" in Path(str(a)).parts or a.startswith("matrix") for a in config.args)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "matrix_case" not in metafunc.fixturenames:
        return
    cases = cases_for(metafunc.config)
    wanted = metafunc.config.getoption("--case")
    if wanted:  # validated in pytest_configure
        known = {c.id: c for c in cases}
        cases = [known[w] for w in dict.fromkeys(wanted)]
    part = metafunc.config.getoption("--shard")
    if part:  # a deterministic part of the whole (matrix/shards.py)
        cases = shard(cases, *part)
    metafunc.parametrize(
        "matrix_case",
        [pytest.param(c, marks=pytest.mark.matrix) for c in cases],
        ids=[c.id for c in cases],
    )


def _case_of(item: pytest.Item) -> Any:
    """The matrix case a collected test runs (None for any other test)."""
    spec = getattr(item, "callspec", None)
    return spec.params.get("matrix_case") if spec is not None else None


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect: a subset keeps the order
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Run the matrix's cases in the order that proves most refusals' survival by the next
    case (matrix/survival.py ``run_order``): the same in every pytest-xdist worker. The
    whole profile (or shard) is ordered before ``-k`` and ``-m`` take their subset, so a
    subset runs in the whole run's order, and results.json (``run_cases``) lists it so.
    Not with ``--case`` (the order given is kept), the state profile, or ``--collect-only``
    (the order needs the oracle, hence the certificates, which a listing does not make)."""
    if config.getoption("--case") or profile_of(config) == STATE_PROFILE:
        return
    if config.option.collectonly:
        return
    slots = [i for i, item in enumerate(items) if isinstance(_case_of(item), Case)]
    if not slots:
        return
    matrix_items = [items[i] for i in slots]
    cases = [_case_of(item) for item in matrix_items]
    rank = {c.id: i for i, c in enumerate(run_order(cases, _facts(config)))}
    ranked = sorted(matrix_items, key=lambda item: rank[_case_of(item).id])
    for slot, item in zip(slots, ranked, strict=True):
        items[slot] = item


def run_cases(config: pytest.Config) -> list[Any]:
    """The run's cases in the order they run in one process: ``--case``'s order, or
    ``run_order``'s (the state profile: its own). results.json lists them so."""
    cases = cases_for(config)
    wanted = config.getoption("--case")
    if wanted:
        known = {c.id: c for c in cases}
        return [known[w] for w in dict.fromkeys(wanted) if w in known]
    if profile_of(config) == STATE_PROFILE:
        return cases
    return run_order(cases, _facts(config))


def _facts(config: pytest.Config) -> Facts:
    """The oracle's facts for this run (from the run's inputs), built once per process."""
    if _facts_key not in config.stash:
        inputs = _inputs(config)
        config.stash[_facts_key] = build_facts(
            certs_gen.load(inputs["certs_dir"]),
            ResolverFacts.from_json(inputs["resolver"]),
            dt.datetime.fromisoformat(inputs["started"]),
        )
    return config.stash[_facts_key]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Prepare certificates and facts before any case runs, so bad input is a usage error."""
    config = session.config
    if hasattr(config, "workerinput") or config.option.collectonly:
        return
    matrix_items = [i for i in session.items if "matrix_case" in getattr(i, "fixturenames", ())]
    config.stash[_total_key] = len(matrix_items)
    if matrix_items:
        _inputs(config)
        if config.getoption("--results") is not None:  # a stale file must not pass for ours
            Path(config.getoption("--results")).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def matrix_env(pytestconfig: pytest.Config):
    inputs = _inputs(pytestconfig)
    certs = certs_gen.load(inputs["certs_dir"])
    facts = _facts(pytestconfig)
    become_subreaper()  # orphans of the target's processes stay visible (harness/processes.py)
    timeout = pytestconfig.getoption("--start-timeout")
    env = MatrixEnv(certs, facts, _target(pytestconfig), timeout)
    yield env
    env.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Note which test runs next in this process: the last case of a configuration stops
    its server (matrix/servers.py), so what the stop finds is part of a case. After the
    test, a signal noted by matrix.interrupts stops the session."""
    item.stash[_next_key] = nextitem
    try:
        return (yield)
    finally:
        # a signal whose KeyboardInterrupt was swallowed (raised inside a finaliser or a
        # callback, where Python only prints it) still ends the run after this case
        if interrupts.received() is not None and not item.session.shouldstop:
            item.session.shouldstop = f"mtls-matrix: {interrupts.describe()}"


def last_of_configuration(request: pytest.FixtureRequest) -> bool:
    """Whether no case after this one (in this process's order) uses its configuration."""
    item = request.node
    mine = item.callspec.params.get("matrix_case") if hasattr(item, "callspec") else None
    theirs = following_case(request)
    if mine is None or theirs is None:
        return True
    return getattr(mine, "config", None) != getattr(theirs, "config", None)


def following_case(request: pytest.FixtureRequest) -> Any:
    """The case this process runs next (None when none follows or it is not known)."""
    nextitem = request.node.stash.get(_next_key, None)
    spec = getattr(nextitem, "callspec", None)
    return spec.params.get("matrix_case") if spec is not None else None


def record(request: pytest.FixtureRequest, case_result: dict[str, Any]) -> None:
    request.node.user_properties.append((_RESULT, case_result))


def environ_contract(target: CheckedTarget, profile: str = PROFILE) -> dict[str, Any]:
    """What the environ check covers, per adapter: required variables, and the optional
    ones the target says its application sees (checked exactly; the rest may be absent);
    with the state profile, its connection facts too (STATE_VARIABLES)."""
    variables = (*SPEC_VARIABLES, *(STATE_VARIABLES if profile == STATE_PROFILE else ()))
    return {
        "required": list(REQUIRED_VARIABLES),
        "checked": {
            adapter: [
                v for v in variables if v in REQUIRED_VARIABLES or target.provides(adapter, v)
            ]
            for adapter in target.adapters
        },
    }


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    """A signal during the run ends it as ``pytest.exit`` with status 130: pytest then
    prints one line instead of the KeyboardInterrupt's location and advice."""
    try:
        return (yield)
    except KeyboardInterrupt:
        if interrupts.received() is None:
            raise
        pytest.exit(f"mtls-matrix: {interrupts.describe()}", returncode=interrupts.EXIT_INTERRUPTED)


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_signals_key, False):
        interrupts.uninstall()


def completion(config: pytest.Config, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """``complete``, ``interrupted_by`` and ``cases_total`` for the run block: a run is
    complete when no signal stopped it and every selected case has a result (pytest's
    ``-x`` or ``--maxfail`` also leave it incomplete, with ``interrupted_by`` None)."""
    total = config.stash.get(_total_key, len(cases))
    signal_name = interrupts.received()
    complete = signal_name is None and len(cases) >= total
    return {"complete": complete, "interrupted_by": signal_name, "cases_total": total}


def log_totals(cases: list[dict[str, Any]]) -> dict[str, int]:
    """What the target's server logged over the run's cases (matrix/runner.py ``logs``)."""
    totals = {"tracebacks": 0, "log_lines": 0}
    for case in cases:
        for key in totals:
            totals[key] += (case.get("logs") or {}).get(key, 0)
    return totals


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return
    cases = config.stash[_results_key]
    if interrupts.received() is not None:
        session.exitstatus = interrupts.EXIT_INTERRUPTED
    if not cases:
        return
    target = _target(config)
    order = {c.id: i for i, c in enumerate(run_cases(config))}
    cases.sort(key=lambda c: order.get(c["id"], len(order)))
    if config.getoption("--results") is None:
        config.stash[_summary_key] = (None, cases)
        return
    inputs = _inputs(config)
    certs = certs_gen.load(inputs["certs_dir"])
    run = run_metadata(
        started=inputs["started"],
        duration_s=time.monotonic() - config.stash[_started_key],
        target=target.name,
        target_versions=target.versions(),
        profile=profile_of(config),
        resolver=inputs["resolver"],
        fingerprints={c.id: c.sha256 for c in certs},
    )
    run.update(completion(config, cases))
    run["server_logs"] = log_totals(cases)
    run["adapters"] = list(target.adapters)
    if config.getoption("--shard"):
        run["shard"] = "{}/{}".format(*config.getoption("--shard"))
    run["target_reference"] = config.getoption("--target") or DEFAULT_TARGET
    contract = environ_contract(target, profile_of(config))
    run["provides"] = contract["checked"]
    run["environ_contract"] = contract
    try:
        path = write_results(Path(config.getoption("--results")), run, cases)
    except OSError as exc:  # checked before the run; the disk can still fill up
        config.stash[_summary_key] = (f"NOT WRITTEN: {exc}", cases)
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        return
    config.stash[_summary_key] = (path, cases)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for detail in dict.fromkeys(config.stash.get(_contract_key, [])):
        terminalreporter.write_line(f"mtls-matrix: {detail[detail.index(CONTRACT_MARK) :]}")
        break  # one line: every configuration fails the same way
    if _summary_key not in config.stash:
        return
    path, cases = config.stash[_summary_key]
    counts = {s: sum(1 for c in cases if c["status"] == s) for s in ("pass", "fail", "skip")}
    where = f"results in {path}" if path else "no results written (--results PATH keeps them)"
    done = completion(config, cases)
    if not done["complete"]:
        why = f", interrupted by {done['interrupted_by']}" if done["interrupted_by"] else ""
        terminalreporter.write_line(
            f"mtls-matrix: incomplete run: {len(cases)} of {done['cases_total']} cases{why}"
        )
    terminalreporter.write_line(
        f"mtls-matrix: {len(cases)} cases: {counts['pass']} pass, {counts['fail']} fail, "
        f"{counts['skip']} skip; {where}"
    )


def failure_message(result: dict[str, Any], note: str = "") -> str:
    """The pytest failure text: the case's fields, then ``note`` (run-specific text such as
    the client's exception message, which results.json leaves out to stay deterministic)."""
    alive = {True: "yes", False: "NO", None: "not probed"}[result["server_alive"]]
    expected, observed = result["expected"], result["observed"] or {}
    return (
        f"case     {result['id']}\n"
        f"expected {expected['outcome']}: {expected['reason']}\n"
        f"observed {observed.get('outcome')}\n"
        f"detail   {result['detail']}\n"
        f"server alive afterwards: {alive}" + (f"\nclient   {note}" if note else "")
    )


__all__ = ["failure_message", "following_case", "last_of_configuration", "record", "run_case"]
