"""Run one case: predict, start (or reuse) the server, connect, classify, check survival."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass

import certs_gen
from harness.client import OK, SKIPPED, Attempt, TLSClient
from harness.target import ServerSpec, Target

from .canames import ca_names_problems
from .credentials import read_credential
from .dimensions import TRUST_ROOT, Case, ServerConfig
from .environ import check_environ, expected_certificate_variables, pem_blocks
from .oracle import NO_CLIENT_CERT, Facts, predict, survival_probe
from .refusals import describe, refusal_problems
from .resolver import ResolverFacts
from .servers import ServerPool, ServerStartFailed

CASE_TIMEOUT = 5.0
SURVIVAL_TIMEOUT = 1.0  # SPEC section 4: served again within one second


@dataclass
class CaseResult:
    id: str
    adapter: str
    policy: str
    bind: str
    connect: str
    client: str
    server_cert: str
    expected: str
    reason: str
    observed: str | None
    status: str  # pass | fail | skip
    detail: str
    duration_ms: float
    server_alive: bool | None

    def to_json(self) -> dict:
        return asdict(self)


def build_facts(certs: certs_gen.CertSet, resolver: ResolverFacts, now: dt.datetime) -> Facts:
    roots = {c.id: c.cert for c in certs if c.role == "ca"}
    creds = {c.id: read_credential(c.id, c.cert, c.chain, roots) for c in certs}
    return Facts(resolver, creds, now)


class MatrixEnv:
    """Per-process state: certificates, facts, the target, servers and clients."""

    def __init__(self, certs: certs_gen.CertSet, facts: Facts, target: Target) -> None:
        self.certs = certs
        self.facts = facts
        self.target = target
        self.servers = ServerPool(target)
        self._clients: dict[tuple, TLSClient] = {}

    def spec(self, config: ServerConfig) -> ServerSpec:
        server = self.certs[config.server_cert]
        return ServerSpec(
            adapter=config.adapter,
            client_check=config.client_check,
            check_host=config.check_host,
            bind=config.bind,
            certificate=server.cert,
            private_key=server.key,
            client_ca=self.certs[TRUST_ROOT].cert,
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
            )
        return self._clients[key]

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
        self.servers.close()
        for client in self._clients.values():
            client.close()


def url_for(connect: str, port: int) -> str:
    host = f"[{connect}]" if ":" in connect else connect
    return f"https://{host}:{port}/"


def run_case(case: Case, env: MatrixEnv) -> CaseResult:
    started = time.perf_counter()
    expectation = predict(case, env.facts)

    def result(observed: str | None, status: str, detail: str, alive: bool | None) -> CaseResult:
        return CaseResult(
            case.id,
            case.adapter,
            case.policy,
            case.bind,
            case.connect,
            case.client,
            case.server_cert,
            expectation.outcome,
            expectation.reason,
            observed,
            status,
            detail,
            round((time.perf_counter() - started) * 1000, 2),
            alive,
        )

    if expectation.outcome == SKIPPED:
        return result(SKIPPED, "skip", expectation.reason, None)
    spec = env.spec(case.config)
    why_not = env.target.unsupported(spec)
    if why_not:
        return result(SKIPPED, "skip", f"unsupported by {env.target.name}: {why_not}", None)
    try:
        server = env.servers.get(case.config, spec)
    except ServerStartFailed as exc:
        return result("error", "fail", str(exc), False)

    url = url_for(case.connect, server.port)
    before = dt.datetime.now(dt.timezone.utc)
    attempt = env.client(case.client, tls=case.tls).get(url)
    after = dt.datetime.now(dt.timezone.utc)
    problems = []
    if attempt.outcome != expectation.outcome:
        problems.append(f"expected {expectation.outcome}, observed {attempt.outcome}")
    elif attempt.outcome == OK:
        problems += environ_problems(case, env, attempt, (before, after))
    problems += refusal_problems(expectation, attempt, case.tls)  # SPEC section 6
    problems += ca_names_problems(expectation, attempt)

    alive = None
    if attempt.outcome != OK:
        alive, survival_note = check_survival(case, env, url)
        if alive is False:
            problems.append(survival_note)
    notes = [p if isinstance(p, str) else describe(p) for p in problems]
    detail = "; ".join([*notes, attempt.detail] if attempt.detail else notes)
    return result(attempt.outcome, "fail" if problems else "pass", detail, alive)


def environ_problems(
    case: Case, env: MatrixEnv, attempt: Attempt, nows: tuple[dt.datetime, ...]
) -> list[str]:
    expected = None
    if case.config.client_check != "ignore" and case.client != NO_CLIENT_CERT:
        cred = env.certs[case.client]
        expected = expected_certificate_variables(cred.cert, env.sent_chain(case.client), nows)
    return check_environ(
        attempt.environ, expected, lambda name: env.target.provides(case.adapter, name)
    )


def check_survival(case: Case, env: MatrixEnv, url: str) -> tuple[bool | None, str]:
    probe = survival_probe(case.config, case.connect, env.facts)
    if probe is None:
        return None, "no credential is predicted to be served here; survival not probed"
    client = env.client(probe.client, probe.trust_root, probe.server_hostname, SURVIVAL_TIMEOUT)
    started = time.perf_counter()
    attempt = client.get(url)
    elapsed = time.perf_counter() - started
    if attempt.outcome == OK and elapsed <= SURVIVAL_TIMEOUT:
        return True, ""
    return False, (
        f"server not serving afterwards: client {probe.client!r} got {attempt.outcome} "
        f"after {elapsed:.2f}s ({attempt.detail or 'slow'})"
    )
