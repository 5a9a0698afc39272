"""pytest integration: one parametrised test per case, results.json at the end.

Under pytest-xdist the controller generates the certificates, probes the
resolver and fixes the run's clock once, and hands all three to the workers,
so every worker predicts from the same facts; workers send each case's result
back in its report, and only the controller writes results.json.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest

import certs_gen
from harness.target import Target, TargetLoadError, load_target

from .dimensions import PROFILES, addresses, enumerate_cases
from .environ import provided_variables
from .resolver import ResolverFacts, probe
from .results import run_metadata, write_results
from .runner import MatrixEnv, build_facts, run_case

DEFAULT_TARGET = "harness.targets.reference:target"
PROFILE = "standard"  # the default --profile
_INPUTS = "mtls_matrix_inputs"
_RESULT = "mtls_matrix_case"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mtls-matrix")
    group.addoption(
        "--target",
        default=DEFAULT_TARGET,
        metavar="MODULE:FACTORY",
        help="server under test: a factory returning a harness.target.Target "
        f"(default {DEFAULT_TARGET})",
    )
    group.addoption(
        "--results",
        default="build/results.json",
        metavar="PATH",
        help="where to write the matrix results (default build/results.json)",
    )
    group.addoption(
        "--certs-dir",
        default=None,
        metavar="DIR",
        help="certificate set for the matrix, generated or reused (default "
        "build/matrix-certs, or build/matrix-certs-extended for --profile extended)",
    )
    group.addoption(
        "--profile",
        default=PROFILE,
        choices=list(PROFILES),
        help="which matrix to run: standard (the 460 cases) or extended (IPv6, TLS 1.2 and "
        "1.3, the extended credentials, revocation, configuration faults)",
    )
    group.addoption(
        "--case",
        action="append",
        default=[],
        metavar="ID",
        help="run only this case id (repeatable); unknown ids are an error",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "matrix: one case of the mTLS compatibility matrix")
    try:
        config.stash[_target_key] = load_target(config.getoption("--target"))
    except TargetLoadError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_results_key] = []
    config.stash[_started_key] = time.monotonic()
    known = {c.id for c in cases_for(config)}
    unknown = [w for w in config.getoption("--case") if w not in known]
    if unknown:
        raise pytest.UsageError(
            f"unknown case id {unknown[0]!r} (ids look like "
            "'pyopenssl-required+host-bind:0.0.0.0-connect:localhost-client:wildcard')"
        )


def cases_for(config: pytest.Config):
    """Every case of the run's --profile, with the target's own adapters."""
    return enumerate_cases(adapters=target_adapters(config), profile=profile_of(config))


def profile_of(config: pytest.Config) -> str:
    return config.getoption("--profile")


def target_adapters(config: pytest.Config) -> tuple[str, ...]:
    """The target's own adapters (optional ``Target.adapters``), added to the matrix's."""
    return tuple(getattr(config.stash[_target_key], "adapters", ()))


_target_key = pytest.StashKey[Target]()
_results_key = pytest.StashKey[list]()
_started_key = pytest.StashKey[float]()
_inputs_key = pytest.StashKey[dict]()


def _inputs(config: pytest.Config) -> dict[str, Any]:
    """Certificates, resolver facts and clock: made once per run, by the controller."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return json.loads(workerinput[_INPUTS])
    if _inputs_key not in config.stash:
        profile = profile_of(config)
        default_dir = "build/matrix-certs" + ("" if profile == PROFILE else f"-{profile}")
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
    node.workerinput[_INPUTS] = json.dumps(_inputs(node.config))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "matrix_case" not in metafunc.fixturenames:
        return
    cases = cases_for(metafunc.config)
    wanted = metafunc.config.getoption("--case")
    if wanted:  # validated in pytest_configure
        known = {c.id: c for c in cases}
        cases = [known[w] for w in dict.fromkeys(wanted)]
    metafunc.parametrize(
        "matrix_case",
        [pytest.param(c, marks=pytest.mark.matrix) for c in cases],
        ids=[c.id for c in cases],
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Prepare certificates and facts before any case runs, so bad input is a usage error."""
    config = session.config
    if hasattr(config, "workerinput") or config.option.collectonly:
        return
    if any("matrix_case" in getattr(item, "fixturenames", ()) for item in session.items):
        _inputs(config)


@pytest.fixture(scope="session")
def matrix_env(pytestconfig: pytest.Config):
    inputs = _inputs(pytestconfig)
    certs = certs_gen.load(inputs["certs_dir"])
    facts = build_facts(
        certs,
        ResolverFacts.from_json(inputs["resolver"]),
        dt.datetime.fromisoformat(inputs["started"]),
    )
    env = MatrixEnv(certs, facts, pytestconfig.stash[_target_key])
    yield env
    env.close()


def record(request: pytest.FixtureRequest, case_result: dict[str, Any]) -> None:
    request.node.user_properties.append((_RESULT, case_result))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == _RESULT:
            _session_config.stash[_results_key].append(value)


_session_config: pytest.Config


def pytest_sessionstart(session: pytest.Session) -> None:
    global _session_config
    _session_config = session.config


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return
    cases = config.stash[_results_key]
    if not cases:
        return
    all_cases = cases_for(config)
    order = {c.id: i for i, c in enumerate(all_cases)}
    cases.sort(key=lambda c: order.get(c["id"], len(order)))
    inputs = _inputs(config)
    certs = certs_gen.load(inputs["certs_dir"])
    target = config.stash[_target_key]
    run = run_metadata(
        started=inputs["started"],
        duration_s=time.monotonic() - config.stash[_started_key],
        target=target.name,
        target_versions=target.versions(),
        profile=profile_of(config),
        resolver=inputs["resolver"],
        fingerprints={c.id: c.sha256 for c in certs},
    )
    adapters = list(dict.fromkeys(c["adapter"] for c in cases))
    run["provides"] = provided_variables(target.provides, adapters)
    path = write_results(Path(config.getoption("--results")), run, cases)
    config.stash[_summary_key] = (path, cases)


_summary_key = pytest.StashKey[tuple]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _summary_key not in config.stash:
        return
    path, cases = config.stash[_summary_key]
    counts = {s: sum(1 for c in cases if c["status"] == s) for s in ("pass", "fail", "skip")}
    terminalreporter.write_line(
        f"mtls-matrix: {len(cases)} cases: {counts['pass']} pass, {counts['fail']} fail, "
        f"{counts['skip']} skip; results in {path}"
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


__all__ = ["failure_message", "record", "run_case"]
