"""Run one case: predict, start (or reuse) the server, connect, classify, check survival.

Bounds and stable verdicts (SPEC section 10, docs/spec.md section 10):

- The client's attempt is bounded (harness/client.py: a whole-request deadline, a
  body cap, a cap on interim responses); an attempt that hit a bound is a problem of
  that bound's kind (``response-deadline``, ``response-size``, ``interim-responses``).
- Starting and stopping are bounded by the server pool (matrix/servers.py); the last
  case of a configuration (``last``) stops its server and carries what the stop found
  (``stop-timeout``, ``leaked-process``).
- An observation that can race is observed ``ATTEMPTS`` times in all: when the first
  attempt ended the way refusals end (an alert, a close, a reset: the forms that race
  each other) and its verdict has an ``outcome`` or ``refusal-form`` problem that is
  not an admission (an admission is a security failure however often it happens), the
  case is observed ``ATTEMPTS - 1`` more times (within ``RETRY_BUDGET`` seconds; a
  server that makes each attempt slow gets fewer) and the verdict is a function of the *set* of
  observations (``decide``): any attempt judged right makes the case pass; otherwise an
  attempt with an alert is preferred to a bare close or reset (it says more), ties broken
  by the observation's text. The observation recorded is the decisive attempt's, with
  ``attempts`` and the ``distribution`` of what was seen.
- What the server logs while the case runs is counted (``logs``): for an in-process
  target, log records and stderr (harness/capture.py); for a process target, its output
  lines. Counts are recorded, not judged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography import x509

import certs_gen
from harness.capture import Counts, LineCounter, OutputCapture
from harness.client import (
    INTERIM_RESPONSES,
    MAX_BODY,
    MAX_INTERIM,
    OK,
    REJECTED,
    RESPONSE_DEADLINE,
    RESPONSE_SIZE,
    SERVER_CERT_REJECTED,
    SKIPPED,
    Attempt,
    TLSClient,
)
from harness.target import ServerSpec, Target, is_required

from .canames import ca_names_problems
from .credentials import read_credential
from .dimensions import TRUST_ROOT, Case, ServerConfig
from .environ import check_environ, expected_certificate_variables, pem_blocks
from .oracle import NO_CLIENT_CERT, NOT_STARTED, Expectation, Facts, predict
from .problems import (
    AVAILABILITY,
    BOUNDS,
    ENVIRON,
    HARNESS,
    OUTCOME,
    PROTOCOL,
    REFUSAL_FORM,
    SECURITY,
    START,
    SURVIVAL,
    VISIBILITY,
    Problem,
)
from .refusals import refusal_problems
from .resolver import ResolverFacts
from .servers import START_TIMEOUT_S, STOP_TIMEOUT_S, ServerPool, ServerStartFailed
from .survival import Early, take_early
from .survival import check as check_survival

CASE_TIMEOUT = 5.0  # seconds, each socket operation of the case's request
CASE_DEADLINE = 10.0  # seconds, the case's whole request (connect to the body's last byte)
ATTEMPTS = 10  # observations in all of a case whose first verdict may be a race
RETRY_BUDGET = 20.0  # seconds the further observations of one case may take in all
RACY_KINDS = (OUTCOME, REFUSAL_FORM)
LIMIT_TEXT = {  # the bound's problem: (expected, observed), the same in every run
    RESPONSE_DEADLINE: (f"a whole response within {CASE_DEADLINE:g} s", "none by then"),
    RESPONSE_SIZE: (f"a body of at most {MAX_BODY} bytes", "a larger body"),
    INTERIM_RESPONSES: (f"at most {MAX_INTERIM} interim (1xx) responses", "more"),
}


@dataclass
class CaseResult:
    """One case as results.json schema 2 holds it (see docs/reports.md).

    ``dims`` are the case's dimension values, ``expected`` the oracle's Expectation and
    ``observed`` the client's Attempt, both serialised field by field (minus the Attempt's
    free text and environ), so a field another module adds flows through unchanged.
    ``problems`` are the verdict; ``detail`` is a sentence per problem for people, built
    only from deterministic values. ``note`` keeps the run-specific text (exception
    messages with ports, timings) for the pytest failure message; it is not written out.
    """

    dims: dict[str, str]
    expected: dict[str, Any]
    observed: dict[str, Any] | None
    status: str  # pass | fail | skip
    problems: list[Problem] = field(default_factory=list)
    server_alive: bool | None = None
    environ: dict[str, Any] | None = None
    unsupported: str | None = None  # why the target cannot express this configuration
    duration_ms: float = 0.0
    note: str = ""
    logs: dict[str, int] | None = None  # what the server logged during the case
    logs_from_output: Counts | None = None  # a process server's output lines (in logs)

    @property
    def id(self) -> str:
        return self.dims["id"]

    @property
    def detail(self) -> str:
        if self.unsupported:
            return f"unsupported by the target: {self.unsupported}"
        if self.status == "skip":
            return self.expected["reason"]
        return "; ".join(describe(p) for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.dims,
            "expected": self.expected,
            "observed": self.observed,
            "environ": self.environ,
            "status": self.status,
            "unsupported": self.unsupported,
            "problems": [p.to_json() for p in self.problems],
            "server_alive": self.server_alive,
            "detail": self.detail,
            "duration_ms": self.duration_ms,
            "logs": self.logs,
        }


def describe(problem: Problem) -> str:
    """One human sentence for a problem, from its fields only (deterministic)."""
    if problem.kind == ENVIRON:
        return f"{problem.what} is {_short(problem.observed)}, expected {_short(problem.expected)}"
    if problem.kind == START:
        return f"server could not start: {problem.observed}"
    if problem.kind == SURVIVAL:
        return f"server not serving afterwards: a good client got {problem.observed}"
    if problem.kind == HARNESS:
        return f"harness error: {problem.what}"
    if problem.kind in BOUNDS:
        return f"{problem.kind}: expected {problem.expected}, observed {problem.observed}"
    return f"expected {problem.expected}, observed {problem.observed}"


def _short(value: object) -> str:
    text = repr(sorted(value) if isinstance(value, set | frozenset) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def outcome_problem(expected: str, observed: str) -> Problem:
    """SPEC section 6's ranking applied to a wrong outcome (docs/spec.md section 6):
    admitted where a refusal was due is ``security``; refused by the other party
    (server instead of client, or back) is ``protocol``; anything else (a good client
    refused, an error instead of an answer) is ``availability``."""
    refusals = (REJECTED, SERVER_CERT_REJECTED)
    if observed == OK:
        severity = SECURITY
    elif observed in refusals and expected in refusals:
        severity = PROTOCOL
    else:
        severity = AVAILABILITY
    return Problem(OUTCOME, severity, f"{expected}->{observed}", expected, observed)


def observation(attempt: Attempt) -> dict[str, Any]:
    """The Attempt's fields minus its free text and the environ (kept apart)."""
    return {k: v for k, v in asdict(attempt).items() if k not in ("detail", "environ")}


def build_facts(certs: certs_gen.CertSet, resolver: ResolverFacts, now: dt.datetime) -> Facts:
    roots = {c.id: c.cert for c in certs if c.role == "ca"}
    crls = {c.id: c.crl for c in certs if c.crl is not None}
    creds = {c.id: read_credential(c.id, c.cert, c.chain, roots, crls) for c in certs}
    return Facts(resolver, creds, now)


class MatrixEnv:
    """Per-process state: certificates, facts, the target, servers and clients."""

    def __init__(
        self,
        certs: certs_gen.CertSet,
        facts: Facts,
        target: Target,
        start_timeout: float = START_TIMEOUT_S,
        stop_timeout: float = STOP_TIMEOUT_S,
    ) -> None:
        self.certs = certs
        self.facts = facts
        self.target = target
        self.servers = ServerPool(target, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self._clients: dict[tuple, TLSClient] = {}
        self.capture = OutputCapture()  # installed around each case (pytest swaps stderr)
        self._line_counters: dict[int, LineCounter] = {}
        self.on_close: list[Callable[[], None]] = []  # other profiles' own resources
        self.early: dict[str, Early] = {}  # first requests made to prove survival (by case id)

    def spec(self, config: ServerConfig) -> ServerSpec:
        server = self.certs[config.server_cert]
        ca = config.client_ca
        client_ca = None if ca is None else self.certs.bundles.get(ca) or self.certs[ca].cert
        chain = config.certificate_chain
        crl = self.certs[config.crl].crl if config.crl else None
        return ServerSpec(
            adapter=config.adapter,
            client_check=config.client_check,
            check_host=config.check_host,
            bind=config.bind,
            certificate=server.cert,
            private_key=server.key,
            client_ca=client_ca,
            # A server credential issued through an intermediate (server-rsa-pss) sends it.
            certificate_chain=self.certs[chain].cert if chain else server.chain,
            crl=crl,
            client_ca_with_crl=self.certs.bundles.get(f"{ca}+crl") if crl else None,
        )

    def client(
        self,
        client: str,
        trust_root: str = TRUST_ROOT,
        hostname: str | None = None,
        timeout: float = CASE_TIMEOUT,
        tls: str | None = None,
    ) -> TLSClient:
        """One TLS context per (trust, credential, name check, version): built once, reused."""
        key = (client, trust_root, hostname, timeout, tls)
        if key not in self._clients:
            cred = None if client == NO_CLIENT_CERT else self.certs[client].key_and_chain
            self._clients[key] = TLSClient(
                self.certs[trust_root].cert,
                cred,
                server_hostname=hostname,
                timeout=timeout,
                tls=tls,
                deadline=CASE_DEADLINE if timeout == CASE_TIMEOUT else None,
            )
        return self._clients[key]

    def output_counter(self, handle: object) -> LineCounter | None:
        """A counter of a process server's output lines (None for an in-process one)."""
        listeners = getattr(handle, "listeners", None)
        if not isinstance(listeners, list):
            return None
        key = id(handle)
        if key not in self._line_counters:
            self._line_counters[key] = counter = LineCounter()
            listeners.append(counter)
        return self._line_counters[key]

    def subject(self, credential: str) -> str:
        """A certificate's subject as RFC 4514 text (cryptography's formatting)."""
        pem = self.certs[credential].cert.read_bytes()
        return x509.load_pem_x509_certificate(pem).subject.rfc4514_string()

    def sent_chain(self, client: str) -> list[str]:
        """Certificates the client sends after its own: the file's, or else the chain
        OpenSSL builds from the client's trust store (which ends with the root)."""
        cred = self.certs[client]
        explicit = pem_blocks(cred.key_and_chain)[1:]
        if explicit:
            return explicit
        if self.facts.credentials[client].root == TRUST_ROOT:
            return pem_blocks(self.certs[TRUST_ROOT].cert)
        return []

    def close(self) -> None:
        for close in self.on_close:
            close()
        self.servers.close()
        for client in self._clients.values():
            client.close()


def url_for(connect: str, port: int) -> str:
    host = f"[{connect}]" if ":" in connect else connect
    return f"https://{host}:{port}/"


def run_case(
    case: Case, env: MatrixEnv, last: bool = False, following: object = None
) -> CaseResult:
    """The case's result; an exception of the harness's own (a bug of ours, not the
    server's) is recorded as a ``harness`` problem, so the case is kept in the results.

    ``last``: no later case of this process uses the case's configuration, so its server
    is stopped now and what the stop found (``stop-timeout``, ``leaked-process``) is
    this case's too. ``following``: the case this process runs next (None if unknown);
    its first request may prove this case's survival (matrix/survival.py).
    """
    started = time.perf_counter()
    with env.capture.window() as window:
        try:
            result = _run_case(case, env, following)
        except Exception as exc:
            problem = Problem(HARNESS, AVAILABILITY, type(exc).__name__)
            result = CaseResult(
                case_dims(case),
                asdict(predict(case, env.facts)),
                None,
                "fail",
                [problem],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                note=f"{type(exc).__name__}: {exc}",
            )
        if last and result.status != "skip":
            stopped = env.servers.finish(case.config)
            if stopped:
                result.problems += stopped
                result.status = "fail"
    logs = window.counts + (result.logs_from_output or Counts())
    if result.status != "skip":  # a server was started (or tried) for it
        result.logs = logs.to_json()
    return result


def case_dims(case: Case) -> dict[str, str]:
    """The id and every dimension value (all of Case's fields but the grid's name)."""
    return {"id": case.id, **{k: v for k, v in asdict(case).items() if k != "grid"}}


def declared_ca_names(expectation: Expectation, case: Case, env: MatrixEnv) -> Expectation:
    """The CA names this target's CertificateRequest should list (docs/refusals.md).

    A target declares per adapter, in an optional ``ca_names`` mapping, ``"none"`` (the
    reference adapters: Python's ssl module cannot list any) or ``"client-ca"`` (mod_ssl's
    default: the subjects of the client CA file, in file order). An adapter it does not
    declare is recorded, not checked: listing names or not is a server's choice, and
    the check exists so that a declared behaviour cannot change unseen. The names are
    read from the certificate files here, never from the server.
    """
    declared = ca_names_declared(env.target, case.adapter)
    if declared is None:  # not checked (see the runner); nothing to predict
        return dataclasses.replace(expectation, ca_names=None)
    if expectation.ca_names is None:  # no CertificateRequest expected (ignore)
        return expectation
    if declared == "none":
        return dataclasses.replace(expectation, ca_names=())
    names = tuple(env.subject(ca) for ca in case.config.client_cas)
    return dataclasses.replace(expectation, ca_names=names)


def ca_names_declared(target: Target, adapter: str) -> str | None:
    """What ``target`` declares its CertificateRequest lists on ``adapter``, if anything."""
    return (getattr(target, "ca_names", None) or {}).get(adapter)


def _run_case(case: Case, env: MatrixEnv, following: object = None) -> CaseResult:
    started = time.perf_counter()
    expectation = declared_ca_names(predict(case, env.facts), case, env)
    dims = case_dims(case)

    def result(status: str, observed: Attempt | None = None, **kw: Any) -> CaseResult:
        return CaseResult(
            dims,
            asdict(expectation),
            observation(observed) if observed is not None else None,
            status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            **kw,
        )

    if expectation.outcome == SKIPPED:
        return result("skip")
    spec = env.spec(case.config)
    why_not = env.target.unsupported(spec)
    if why_not:
        return result("skip", unsupported=why_not)
    try:
        server = env.servers.get(case.config, spec)
    except ServerStartFailed as exc:
        if exc.kind == START and expectation.accepts(NOT_STARTED):
            return result("pass", Attempt(NOT_STARTED), note=str(exc))  # SPEC 8: may refuse
        if exc.kind == START:
            problem = Problem(START, AVAILABILITY, "start", "running", exc.error)
        else:  # start() never returned: not a refusal to start
            bound = f"returned within {env.servers.start_timeout:g} s"
            problem = Problem(exc.kind, AVAILABILITY, "start", bound, "still running")
        return result("fail", problems=[problem], server_alive=False, note=str(exc))

    counter = env.output_counter(server)
    output_before = counter.counts() if counter is not None else Counts()
    url = url_for(case.connect, server.port)
    client = env.client(case.client, tls=case.tls)
    early = take_early(case, env, server)  # made to prove the previous case's survival
    if early is not None:
        judged = judge(case, env, expectation, early.attempt, early.nows)
        attempts = [(early.attempt, judged)]
    else:
        attempts = [observe(case, env, client, url, expectation)]
    if racy(*attempts[0]):
        budget = time.monotonic() + RETRY_BUDGET
        while len(attempts) < ATTEMPTS and time.monotonic() < budget:
            attempts.append(observe(case, env, client, url, expectation))
    refused_at = time.perf_counter()
    attempt, problems = decide(attempts)

    alive, notes, survival = None, [attempt.detail], None
    if attempt.outcome != OK:
        survival = check_survival(
            case,
            env,
            url,
            server,
            refused_at,
            following,
            lambda later: url_for(later.connect, server.port),
        )
        alive = survival.alive
        if alive is False:
            problems.append(Problem(SURVIVAL, AVAILABILITY, "server-alive", OK, survival.got))
            notes.append(survival.note)
    observed = observation(attempt)
    if len(attempts) > 1:
        observed["attempts"] = len(attempts)
        observed["distribution"] = distribution(a for a, _ in attempts)
    if survival is not None and survival.by is not None:
        observed["survival_by"] = survival.by  # a later case's id, or "probe"
    done = result(
        "fail" if problems else "pass",
        problems=problems,
        server_alive=alive,
        environ=attempt.environ if attempt.outcome == OK else None,
        note="; ".join(n for n in notes if n),
    )
    done.observed = observed
    if counter is not None:
        done.logs_from_output = counter.counts() - output_before
    if early is not None:  # its request's time is this case's (its logs are not: survival.py)
        done.duration_ms = round(done.duration_ms + early.elapsed_s * 1000, 2)
    return done


def observe(
    case: Case, env: MatrixEnv, client: TLSClient, url: str, expectation: Expectation
) -> tuple[Attempt, list[Problem]]:
    """One attempt of the case and the problems it shows (survival aside)."""
    before = dt.datetime.now(dt.timezone.utc)
    attempt = client.get(url)
    after = dt.datetime.now(dt.timezone.utc)
    return attempt, judge(case, env, expectation, attempt, (before, after))


def judge(
    case: Case,
    env: MatrixEnv,
    expectation: Expectation,
    attempt: Attempt,
    nows: tuple[dt.datetime, ...],
) -> list[Problem]:
    """The problems one attempt shows against the expectation."""
    if attempt.limit is not None:  # the harness gave up on the response: a bound's problem
        problems = [Problem(attempt.limit, AVAILABILITY, "response", *LIMIT_TEXT[attempt.limit])]
        if expectation.outcome != OK and attempt.status is not None and attempt.status < 300:
            problems.append(outcome_problem(expectation.outcome, OK))  # it was admitted
        return problems
    problems: list[Problem] = []
    if not expectation.accepts(attempt.outcome):
        problems.append(outcome_problem(expectation.outcome, served(expectation, attempt)))
    elif attempt.outcome == OK:
        problems += environ_problems(case, env, attempt, nows)
    problems += refusal_problems(expectation, attempt, case.tls)  # SPEC section 6
    if ca_names_declared(env.target, case.adapter):
        problems += ca_names_problems(expectation, attempt)
    return problems


def served(expectation: Any, attempt: Attempt) -> str:
    """The outcome a wrong attempt is judged as: ``ok`` when a refusal was due and the
    server answered with a 2xx status, whatever came after it (a page that is not the
    application's JSON, a body cut short); the attempt's own outcome otherwise.

    ``expectation`` has an ``outcome`` (an oracle Expectation, or the state profile's
    StepExpectation). A 2xx status means the server served the request: the client was
    admitted, which is a security failure (SPEC section 6), as it is for a 2xx whose body
    hit a bound (``judge``). Taken as an ``error``, a server that let a client without a
    certificate through to a 200 login page ranked as availability."""
    admitted = attempt.status is not None and 200 <= attempt.status < 300
    if admitted and expectation.outcome != OK:
        return OK
    return attempt.outcome


def racy(attempt: Attempt, problems: list[Problem]) -> bool:
    """Whether a verdict may be one draw of a race (observe again): a wrong outcome or
    refusal form, where the connection ended in a refusal's way (an alert, a close, a
    reset: the forms that race each other), and no admission (final however rare). A
    timeout or a bound is not retried: it would cost a deadline per attempt."""
    if attempt.form is None or attempt.limit is not None:
        return False
    return any(p.kind in RACY_KINDS for p in problems) and not any(
        p.severity == SECURITY for p in problems
    )


def attempt_key(attempt: Attempt) -> str:
    """What one attempt showed, as the text a distribution counts: ``ok``,
    ``rejected first-read alert unknown_ca``, ``error`` (with the bound it hit)."""
    parts = (attempt.outcome, attempt.stage if attempt.outcome == REJECTED else None)
    parts += (attempt.form, attempt.alert, attempt.limit)
    return " ".join(p for p in parts if p)


def distribution(attempts: Iterable[Attempt]) -> dict[str, int]:
    counts = Counter(attempt_key(a) for a in attempts)
    return dict(sorted(counts.items()))


def decide(attempts: list[tuple[Attempt, list[Problem]]]) -> tuple[Attempt, list[Problem]]:
    """The decisive attempt among several of one case, and its problems: the verdict
    depends only on the set of observations, never on their order or counts.

    An admission where a refusal is due decides (security); else any attempt judged
    right decides (pass); else attempts with an alert are preferred to a bare close or
    reset (they say more), ties broken by the observation's text (``attempt_key``).
    """
    if len(attempts) == 1:
        return attempts[0][0], list(attempts[0][1])

    def order(item: tuple[Attempt, list[Problem]]) -> tuple[bool, bool, bool, str]:
        attempt, problems = item
        admitted = any(p.severity == SECURITY for p in problems)
        return (not admitted, bool(problems), attempt.form != "alert", attempt_key(attempt))

    best = min(attempts, key=order)
    return best[0], list(best[1])


def environ_problems(
    case: Case, env: MatrixEnv, attempt: Attempt, nows: tuple[dt.datetime, ...]
) -> list[Problem]:
    expected = None
    if case.config.client_check != "ignore" and case.client != NO_CLIENT_CERT:
        cred = env.certs[case.client]
        expected = expected_certificate_variables(cred.cert, env.sent_chain(case.client), nows)
    differences = check_environ(
        attempt.environ,
        expected,
        lambda name: is_required(name) or env.target.provides(case.adapter, name),
        protocol=attempt.tls_version,
    )
    return [Problem(ENVIRON, VISIBILITY, d.variable, d.expected, d.observed) for d in differences]
