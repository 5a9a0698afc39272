"""Run one connection-state case: start its servers, play its steps, judge every step.

A case whose steps reload a server gets servers of its own, started for it and stopped
after it (a reload changes the server for good); any other case shares servers with the
cases of the same configuration, as the standard matrix does (``matrix.servers``).

Results are results.json schema 2 records (``matrix.runner.CaseResult``): the case's
dimensions, the expectation and observation of its last step (with every step's under
``steps``), and problems with kind and severity. A problem of a step other than the only
one names it (``step2:rejected->ok``). What each step is checked for:

- its outcome against the oracle's (a client admitted where a refusal was due is
  ``security``, as everywhere);
- on ``ok``: the environ as in the standard matrix (SPEC section 5: the verified
  identity, or none), and, where the target says its application sees them
  (``provides``), ``SSL_TLS_SNI`` (the name sent), ``MTLS_VIRTUAL_HOST`` (a host
  configured as the SNI's one: served as a host with another policy is ``security``) and
  ``REMOTE_ADDR`` (the client's address);
- a refusal's form (SPEC section 6).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from harness.client import OK, SKIPPED
from harness.target import (
    STATE_VARIABLES,
    STEP_FEATURES,
    ServerHandle,
    ServerSpec,
    SNIHost,
    is_required,
)

from ..dimensions import CLIENT_CA_FILES, POLICY_SETTINGS
from ..environ import check_environ, expected_certificate_variables
from ..oracle import NO_CLIENT_CERT
from ..problems import AVAILABILITY, ENVIRON, HARNESS, SECURITY, START, VISIBILITY, Problem
from ..refusals import refusal_problems
from ..runner import CaseResult, MatrixEnv, observation, outcome_problem, served
from ..servers import ServerPool, ServerStartFailed
from .client import StepAttempt, StepClient
from .model import DEFAULT_HOST, LOOPBACK, ServerState, StateCase
from .oracle import StateExpectation, StepExpectation, host_config

# harness.target.STATE_VARIABLES, by name: the SNI the client sent (mod_ssl's name), the
# virtual host that served the request (docs/state.md), the peer's address (CGI/WSGI).
SNI_VARIABLE, HOST_VARIABLE, ADDRESS_VARIABLE = STATE_VARIABLES


class StateEnv:
    """What state cases share in one process: the matrix env's certificates, facts and
    target, and a pool of servers for the cases that do not reload."""

    def __init__(self, env: MatrixEnv) -> None:
        self.env = env
        self.pool = ServerPool(env.target)

    def close(self) -> None:
        self.pool.close()


def state_env(env: MatrixEnv) -> StateEnv:
    """The StateEnv riding on ``env`` (made on first use, closed with it)."""
    state = getattr(env, "_state_env", None)
    if state is None:
        state = env._state_env = StateEnv(env)
        env.on_close.append(state.close)
    return state


def server_spec(env: MatrixEnv, server: ServerState) -> ServerSpec:
    """The ServerSpec of ``server``: its default host as the spec's own fields, each
    virtual host as an ``SNIHost`` with its client CA file."""
    base = env.spec(host_config(server, server.default))
    hosts = tuple(
        SNIHost(name, *POLICY_SETTINGS[policy.policy], client_ca_file(env, policy.trust))
        for name, policy in server.hosts
    )
    return dataclasses.replace(
        base,
        sni_hosts=hosts,
        path_policies=server.path_policies,
        tls_version=server.tls_version,
    )


def client_ca_file(env: MatrixEnv, trust: str):
    ca = CLIENT_CA_FILES[trust][0]
    return None if ca is None else env.certs.bundles.get(ca) or env.certs[ca].cert


def run_state_case(
    case: StateCase, env: MatrixEnv, predict: Callable[[StateCase, Any], StateExpectation]
) -> CaseResult:
    """The case's result; a harness exception is a ``harness`` problem, the case kept."""
    started = time.perf_counter()
    expectation = predict(case, env.facts)
    try:
        return _run(case, env, expectation, started)
    except Exception as exc:
        return CaseResult(
            case.result_dims(),
            expectation.to_json(),
            None,
            "fail",
            [Problem(HARNESS, AVAILABILITY, type(exc).__name__)],
            duration_ms=_ms(started),
            note=f"{type(exc).__name__}: {exc}",
        )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def unsupported(case: StateCase, env: MatrixEnv) -> str | None:
    """Why the target cannot run ``case`` (an undeclared feature, or its own reason)."""
    specs = [server_spec(env, s) for s in case.servers]
    specs += [server_spec(env, step.reload) for step in case.steps if step.reload is not None]
    also = [f for f in STEP_FEATURES if f == "reload" and case.reloads]
    for spec in specs:
        why = env.target.unsupported_features(spec, also)
        if why:
            return why
    for spec in specs:
        why = env.target.unsupported(spec)
        if why:
            return why
    return None


def _run(
    case: StateCase, env: MatrixEnv, expectation: StateExpectation, started: float
) -> CaseResult:
    dims = case.result_dims()

    def result(status: str, steps: list[StepAttempt] | None = None, **kw: Any) -> CaseResult:
        observed = None
        if steps:
            observed = {
                **step_observation(steps[-1]),
                "steps": [step_observation(s) for s in steps],
            }
        expected = expectation.to_json()
        return CaseResult(dims, expected, observed, status, duration_ms=_ms(started), **kw)

    if any(s.outcome == SKIPPED for s in expectation.steps):
        return result("skip")
    why = unsupported(case, env)
    if why:
        return result("skip", unsupported=why)
    state = state_env(env)
    own: list[ServerHandle] = []
    try:
        handles = []
        for server in case.servers:
            spec = server_spec(env, server)
            if case.reloads:  # this case changes the server: one of its own
                try:
                    handle = env.target.start(spec)
                except Exception as exc:
                    problem = Problem(START, AVAILABILITY, "start", "running", type(exc).__name__)
                    return result("fail", problems=[problem], note=f"{exc}")
                own.append(handle)
            else:
                try:
                    handle = state.pool.get(server, spec)
                except ServerStartFailed as exc:
                    problem = Problem(START, AVAILABILITY, "start", "running", exc.error)
                    return result("fail", problems=[problem], note=str(exc))
            handles.append(handle)
        return _play(case, env, expectation, handles, result)
    finally:
        for handle in own:
            state.pool._stop(handle)


def _play(
    case: StateCase,
    env: MatrixEnv,
    expectation: StateExpectation,
    handles: list[ServerHandle],
    result: Callable[..., CaseResult],
) -> CaseResult:
    credential = None if case.client == NO_CLIENT_CERT else env.certs[case.client].key_and_chain
    client = StepClient(env.certs["ca"].cert, credential, case.tls, case.session)
    seen: list[StepAttempt] = []
    problems: list[Problem] = []
    notes: list[str] = []
    many = len(case.steps) > 1
    for index, (step, expected) in enumerate(zip(case.steps, expectation.steps, strict=True)):
        label = f"step{index + 1}:" if many else ""
        handle = handles[step.server]
        if step.reload is not None:
            reload = getattr(handle, "reload", None)
            if not callable(reload):
                problem = Problem(START, AVAILABILITY, f"{label}reload", "reload(spec)", None)
                problems.append(problem)
                notes.append(f"{env.target.name}: declares 'reload' but its handle has no reload()")
                break
            try:
                reload(server_spec(env, step.reload))
            except Exception as exc:
                problems.append(
                    Problem(START, AVAILABILITY, f"{label}reload", "reloaded", type(exc).__name__)
                )
                notes.append(f"reload: {type(exc).__name__}: {exc}")
                break
        session = seen[step.offer].session if step.offer is not None else None
        before = dt.datetime.now(dt.timezone.utc)
        attempt = client.get(
            LOOPBACK,
            handle.port,
            sni=step.sni,
            host=step.host,
            session=session,
            path=step.path,
            headers=step.headers,
        )
        after = dt.datetime.now(dt.timezone.utc)
        seen.append(attempt)
        if attempt.attempt.detail:
            notes.append(f"{label}{attempt.attempt.detail}")
        found = step_problems(case, env, expected, attempt, (before, after))
        problems += [dataclasses.replace(p, what=f"{label}{p.what}") for p in found]
    last = seen[-1].attempt if seen else None
    return result(
        "fail" if problems else "pass",
        seen,
        problems=problems,
        environ=last.environ if last is not None and last.outcome == OK else None,
        note="; ".join(notes),
    )


def step_observation(step: StepAttempt) -> dict[str, Any]:
    """An Attempt's fields (minus free text and environ), plus the session's fate."""
    return {**observation(step.attempt), "offered": step.offered, "resumed": step.resumed}


def step_problems(
    case: StateCase,
    env: MatrixEnv,
    expected: StepExpectation,
    step: StepAttempt,
    nows: tuple[dt.datetime, ...],
) -> list[Problem]:
    """Everything wrong with one step (see the module docstring)."""
    attempt = step.attempt
    problems: list[Problem] = []
    if not expected.accepts(attempt.outcome):
        problems.append(outcome_problem(expected.outcome, served(expected, attempt)))
    elif attempt.outcome == OK:
        problems += environ_problems(
            case, env, expected, attempt.environ, nows, step.resumed, attempt.tls_version
        )
    problems += refusal_problems(expected, attempt, case.tls)
    return problems


def environ_problems(
    case: StateCase,
    env: MatrixEnv,
    expected: StepExpectation,
    environ: dict[str, Any],
    nows: tuple[dt.datetime, ...],
    resumed: bool | None = False,
    protocol: str | None = None,
) -> list[Problem]:
    """SPEC section 5 for the step's host, then the state variables the target provides.
    ``protocol``: the version the client negotiated, which ``SSL_PROTOCOL`` must name.

    On a resumed session the client sends no certificate (RFC 5246 section 7.3, RFC 8446
    section 2.2): OpenSSL keeps the leaf in the session but the chain only in a session
    held in its cache, not in a ticket (SSL_get_peer_cert_chain(3), measured on both
    reference adapters): ``SSL_CLIENT_CERT_CHAIN_n`` may then be absent, never wrong.
    """

    def provided(name: str) -> bool:
        if resumed and name.startswith("SSL_CLIENT_CERT_CHAIN_"):
            return False
        return is_required(name) or env.target.provides(case.adapter, name)

    wanted = None
    if expected.verified:
        cred = env.certs[case.client]
        wanted = expected_certificate_variables(cred.cert, env.sent_chain(case.client), nows)
    found = [
        Problem(ENVIRON, VISIBILITY, d.variable, d.expected, d.observed)
        for d in check_environ(environ, wanted, provided, protocol=protocol)
        if d.variable != SNI_VARIABLE  # checked exactly below
    ]
    if provided(SNI_VARIABLE) and environ.get(SNI_VARIABLE) != expected.sni:
        found.append(
            Problem(ENVIRON, VISIBILITY, SNI_VARIABLE, expected.sni, environ.get(SNI_VARIABLE))
        )
    if provided(HOST_VARIABLE) and environ.get(HOST_VARIABLE) not in expected.served:
        served = environ.get(HOST_VARIABLE)
        # Served as a host configured otherwise than the SNI's: admitted under another
        # name's policy (SPEC section 9). An unknown name is at least a wrong answer.
        severity = SECURITY if served_otherwise(case, expected, served) else VISIBILITY
        found.append(Problem(ENVIRON, severity, HOST_VARIABLE, list(expected.served), served))
    if provided(ADDRESS_VARIABLE) and environ.get(ADDRESS_VARIABLE) != LOOPBACK:
        found.append(
            Problem(ENVIRON, VISIBILITY, ADDRESS_VARIABLE, LOOPBACK, environ.get(ADDRESS_VARIABLE))
        )
    return found


def served_otherwise(case: StateCase, expected: StepExpectation, served: Any) -> bool:
    """Whether ``served`` names a host of the case whose policy is not the expected one."""
    labels = {DEFAULT_HOST: {s.default.label for s in case.servers}}
    for server in case.servers:
        for name, policy in server.hosts:
            labels.setdefault(name, set()).add(policy.label)
    for step in case.steps:
        if step.reload is not None:
            labels[DEFAULT_HOST].add(step.reload.default.label)
            for name, policy in step.reload.hosts:
                labels.setdefault(name, set()).add(policy.label)
    return bool(labels.get(served, set()) - {expected.served_policy})


__all__ = ["STATE_VARIABLES", "StateEnv", "run_state_case", "server_spec"]
