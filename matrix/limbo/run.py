"""Run the applicable x509-limbo cases as real handshakes against one target.

For each adapter the target runs, the live cases are grouped by trust set
(their ``trusted_certs``); one server per group is started with that set as
its client CA (``required``, no host check; ``ServerSpec`` takes file paths,
so the PEMs are written into the run's temporary directory) and every case of
the group connects to it over TLS 1.2 and 1.3. Groups run concurrently
(``jobs`` at a time), each on its own server.

A case's verdict comes from both ends: the client's observation (an HTTP
answer = accepted; an alert, close or reset before one = refused) and, for
the in-process reference server, the server's own refusal line (its log,
matched by the client's port). The server's line wins over a client-side
error, so a client that reports something odd about its own state cannot
turn a refusal into ``error``. A trust set the server's own configuration check
refuses (the reference server's ``ConfigError``: no CA certificate in the
file) is a refusal of every case on it, with that line as the server's word.
A server that received no certificate at all (its refusal says so, or it
sent ``certificate_required``) is "could not present", as is a certificate
the local probe could not present in that TLS version: neither is a verdict.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness.reference.errors import ConfigError
from harness.target import ServerSpec, Target

from .corpus import LimboCase
from .handshake import ACCEPTED, ERROR, NOT_PRESENTED, REFUSED, Observation, attempt, presentable

TLS = ("1.2", "1.3")
NOT_APPLICABLE = "not-applicable"  # the target cannot be configured for this case
CLIENT_TIMEOUT = 10.0  # seconds for one connection, handshake to answer
SERVER_LINE_WAIT = 2.0  # seconds to wait for the reference server's refusal line
_REFUSAL_LINE = re.compile(
    r"^TLS client (?:\[(?P<v6>[^\]]+)\]|(?P<v4>[^:]+)):(?P<port>\d+) "
    r"refused: (?P<why>.*)$"
)
_NO_CERTIFICATE = "no client certificate presented"


@dataclass
class Credential:
    """The server's own certificate and key (PEM bytes and files; any will do), and its CA."""

    cert_file: Path
    key_file: Path
    cert_pem: bytes
    key_pem: bytes
    ca_file: Path  # a CA certificate file, where a configuration needs some client CA


@dataclass
class LiveResult:
    case_id: str
    adapter: str
    tls: str
    outcome: str  # ACCEPTED | REFUSED | NOT_PRESENTED | ERROR | NOT_APPLICABLE
    client: Observation | None
    server: str | None  # the server's refusal line, when it has one to read
    detail: str = ""


@dataclass
class RefusalLog(logging.Handler):
    """Collects the reference server's refusal lines by client port (readiness, not sleeps)."""

    lines: dict[int, str] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, level=logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        match = _REFUSAL_LINE.match(record.getMessage())
        if match:
            with self.cond:
                self.lines[int(match["port"])] = match["why"]
                self.cond.notify_all()

    def wait(self, port: int, timeout: float) -> str | None:
        with self.cond:
            self.cond.wait_for(lambda: port in self.lines, timeout)
            return self.lines.pop(port, None)

    def __hash__(self) -> int:  # logging keeps handlers in lists and sets
        return id(self)


@contextlib.contextmanager
def refusal_log() -> Iterable[RefusalLog]:
    handler = RefusalLog()
    logger = logging.getLogger("mtls_matrix.reference")
    logger.addHandler(handler)
    old_level = logger.level
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def trust_file(case: LimboCase, workdir: Path) -> Path:
    """The case's trusted certificates as one PEM file, named by content (shared by groups)."""
    data = "".join(pem if pem.endswith("\n") else pem + "\n" for pem in case.trusted_certs)
    path = workdir / f"trust-{hashlib.sha256(data.encode()).hexdigest()[:16]}.pem"
    if not path.exists():
        path.write_text(data)
    return path


def crl_file(case: LimboCase, workdir: Path) -> Path | None:
    """The case's CRLs as one PEM file (None when it has none), named by content."""
    if not case.crls:
        return None
    data = "".join(pem if pem.endswith("\n") else pem + "\n" for pem in case.crls)
    path = workdir / f"crl-{hashlib.sha256(data.encode()).hexdigest()[:16]}.pem"
    if not path.exists():
        path.write_text(data)
    return path


def run_live(
    target: Target,
    adapter: str,
    cases: list[LimboCase],
    cred: Credential,
    workdir: Path,
    jobs: int = 2,
    tls_versions: tuple[str, ...] = TLS,
    check_host: bool = False,
    bind: str = "127.0.0.1",
) -> list[LiveResult]:
    """Every case x TLS version on ``adapter`` of ``target``, one server per trust set."""
    groups: dict[tuple[Path, Path | None], list[LimboCase]] = defaultdict(list)
    for case in cases:
        groups[(trust_file(case, workdir), crl_file(case, workdir))].append(case)
    results: list[LiveResult] = []
    lock = threading.Lock()
    with refusal_log() as log, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:

        def one_group(files: tuple[Path, Path | None], members: list[LimboCase]) -> None:
            out = _run_group(
                target, adapter, files, members, cred, log, tls_versions, check_host, bind
            )
            with lock:
                results.extend(out)

        futures = [pool.submit(one_group, key, members) for key, members in groups.items()]
        try:
            for future in futures:
                future.result()
        except BaseException:  # Ctrl-C or a harness bug: do not start the remaining groups
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    order = {c.id: i for i, c in enumerate(cases)}
    results.sort(key=lambda r: (order[r.case_id], r.tls))
    return results


def _run_group(
    target: Target,
    adapter: str,
    files: tuple[Path, Path | None],
    members: list[LimboCase],
    cred: Credential,
    log: RefusalLog,
    tls_versions: tuple[str, ...],
    check_host: bool,
    bind: str,
) -> list[LiveResult]:
    ca, crl = files
    with_crl = None
    if crl is not None:
        with_crl = crl.with_name(f"{ca.stem}+{crl.stem}.pem")
        if not with_crl.exists():
            with_crl.write_bytes(ca.read_bytes() + crl.read_bytes())
    spec = ServerSpec(
        adapter=adapter,
        client_check="required",
        check_host=check_host,
        bind=bind,
        certificate=cred.cert_file,
        private_key=cred.key_file,
        client_ca=ca,
        crl=crl,
        client_ca_with_crl=with_crl,
    )
    why_not = target.unsupported(spec)
    if why_not:  # a case's CRL the target cannot take: no verdict without it
        return [
            LiveResult(c.id, adapter, t, NOT_APPLICABLE, None, None, why_not)
            for c in members
            for t in tls_versions
        ]
    out: list[LiveResult] = []
    todo: list[tuple[LimboCase, str]] = []
    for case in members:
        for tls in tls_versions:
            why = presentable(case, tls, cred.cert_pem, cred.key_pem)
            if why is not None:
                out.append(LiveResult(case.id, adapter, tls, NOT_PRESENTED, None, None, why))
            else:
                todo.append((case, tls))
    if not todo:
        return out
    try:
        server = target.start(spec)
    except ConfigError as exc:
        # The server's own validation refuses this trust set: no client is ever admitted
        # with it, which is a refusal of every certificate that would chain to it.
        why = f"the server refuses this client CA at start: {_one_line(exc)}"
        out += [LiveResult(c.id, adapter, t, REFUSED, None, why, why) for c, t in todo]
        return out
    except Exception as exc:  # a target's own start error type; reported, not raised
        why = f"{target.name} could not start with this trust set: {_one_line(exc)}"
        out += [LiveResult(c.id, adapter, t, ERROR, None, None, why) for c, t in todo]
        return out
    try:
        for case, tls in todo:
            out.append(_one(case, tls, adapter, server.host, server.port, log))
    finally:
        server.stop()
    return out


def _one(
    case: LimboCase, tls: str, adapter: str, host: str, port: int, log: RefusalLog
) -> LiveResult:
    seen: dict[str, int] = {}
    obs = attempt(case, tls, _connect_host(host), port, CLIENT_TIMEOUT, seen)
    server = None
    if obs.outcome != ACCEPTED and "port" in seen:
        server = log.wait(seen["port"], SERVER_LINE_WAIT)
    outcome, detail = decide(obs, server)
    return LiveResult(case.id, adapter, tls, outcome, obs, server, detail)


def decide(obs: Observation, server: str | None) -> tuple[str, str]:
    """The verdict of one connection from the client's observation and the server's line."""
    if server is not None and _NO_CERTIFICATE in server:
        return NOT_PRESENTED, (
            "the server received no certificate: the client found no signature algorithm "
            "for this key among those the server asked for"
        )
    if obs.alert == "certificate_required":
        return NOT_PRESENTED, "the server says no certificate arrived (certificate_required)"
    if obs.outcome == ACCEPTED:
        return ACCEPTED, obs.detail
    if server is not None:
        return REFUSED, server
    return obs.outcome, obs.detail


def _connect_host(bind: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}.get(bind, bind)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
