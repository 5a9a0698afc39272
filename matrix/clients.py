"""Real clients against the reference server, judged by the same oracle (docs/refusals.md).

    python -m matrix.clients [--out build/clients.json] [--require-all] [--client NAME]

Runs curl, ``openssl s_client -tls1_2`` and ``-tls1_3``, wget (GnuTLS) and httpx
against the reference server on 127.0.0.1 — both adapters, every policy, every
client credential — and compares each outcome with ``matrix.oracle.predict``. A
refusal must also name the predicted alert wherever the client shows one, and
s_client must report that no CA names were sent (the reference contract). Each
run records how the client surfaced the result: its exit code, and the alert
text it printed or the exception it raised.

Reading a program's own output is the only way to learn what it saw, so the
OpenSSL-based clients' alert is read from OpenSSL's error string
("tlsv13 alert certificate required"); httpx's comes from the ssl reason code.

A client program that is not installed is reported "not run" with the reason;
``--require-all`` makes that a failure (CI installs every client). Exit status:
0 when every client that ran matched, 1 on a mismatch (or a client not run under
``--require-all``), 2 on bad arguments.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import certs_gen
from harness.capture import logger_level
from harness.client import ERROR as CLIENT_ERROR
from harness.client import OK, REJECTED, SERVER_CERT_REJECTED, alert_name
from harness.targets.reference import ReferenceTarget
from harness.usage import OneLineParser

from .dimensions import ADAPTERS, CLIENTS, POLICIES, TRUST_ROOT, Case
from .oracle import NO_CLIENT_CERT, predict
from .resolver import probe
from .runner import MatrixEnv, build_facts, url_for

HOST = "127.0.0.1"
RUN_TIMEOUT = 10.0  # seconds for one client run, then it is killed
REQUEST = b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
_OPENSSL_ALERT = re.compile(r"\b(?:sslv3|tlsv1|tlsv13) alert ([a-z ]+?)(?=[:,]|$)", re.M)
NO_NAMES = "No client certificate CA names sent"
NAMES = "Acceptable client certificate CA names"


@dataclass(frozen=True)
class Seen:
    """What one client run showed: outcome, how it surfaced, alert, CA names."""

    outcome: str
    surfaced: str  # "exit 56", "httpx.ReadError", ...
    alert: str | None = None
    ca_names: str | None = None  # "none" | "listed" | None (the client does not say)


@dataclass(frozen=True)
class Files:
    ca: Path
    credential: Path | None  # key + certificate (+ chain) in one PEM file


def openssl_alert(text: str) -> str | None:
    """'... tlsv13 alert certificate required ...' -> 'certificate_required'."""
    match = _OPENSSL_ALERT.search(text)
    return match.group(1).strip().replace(" ", "_") if match else None


def _run(argv: list[str], stdin: bytes = b"") -> tuple[int | None, str, str]:
    try:
        p = subprocess.run(argv, input=stdin, capture_output=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, "", ""
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def run_curl(url: str, files: Files) -> Seen:
    cert = ["--cert", str(files.credential)] if files.credential else []
    argv = ["curl", "-sS", "--http1.1", "--max-time", "5", "--cacert", str(files.ca), *cert]
    rc, out, err = _run([*argv, "-o", "/dev/null", "-w", "%{http_code}", url])
    if rc is None:
        return Seen(CLIENT_ERROR, "timed out")
    surfaced = f"exit {rc}"
    if rc == 0:
        return Seen(OK if out.strip() == "200" else CLIENT_ERROR, f"{surfaced}, HTTP {out.strip()}")
    if rc == 60:  # CURLE_PEER_FAILED_VERIFICATION
        return Seen(SERVER_CERT_REJECTED, surfaced)
    if rc in (35, 52, 55, 56):  # SSL connect error, empty reply, send/recv failure
        return Seen(REJECTED, surfaced, openssl_alert(err))
    return Seen(CLIENT_ERROR, f"{surfaced}: {err.strip()[:120]}")


def s_client(tls: str) -> Callable[[str, Files], Seen]:
    flag = {"1.2": "-tls1_2", "1.3": "-tls1_3"}[tls]

    def run(url: str, files: Files) -> Seen:
        port = url.rsplit(":", 1)[1].strip("/")
        cred = ["-cert", str(files.credential), "-key", str(files.credential)]
        argv = ["openssl", "s_client", flag, "-connect", f"{HOST}:{port}", "-ign_eof"]
        argv += ["-CAfile", str(files.ca), "-verify_return_error"]
        rc, out, err = _run([*argv, *(cred if files.credential else [])], REQUEST)
        if rc is None:
            return Seen(CLIENT_ERROR, "timed out")
        text = out + err
        names = "none" if NO_NAMES in text else "listed" if NAMES in text else None
        surfaced = f"exit {rc}"
        # not at a line start: s_client's session-ticket dump may precede it on its line
        if re.search(r"HTTP/1\.[01] 200 ", out):
            return Seen(OK, surfaced, None, names)
        if "verify error:" in text:
            return Seen(SERVER_CERT_REJECTED, surfaced, None, names)
        alert = openssl_alert(text)
        if alert or "CONNECTED(" in out:
            return Seen(REJECTED, surfaced, alert, names)
        return Seen(CLIENT_ERROR, surfaced, None, names)

    return run


def run_wget(url: str, files: Files) -> Seen:
    cred = files.credential
    argv = ["wget", "-nv", "-O", "/dev/null", "--tries=1", "--timeout=5"]
    argv += [f"--ca-certificate={files.ca}"]
    if cred:
        argv += [f"--certificate={cred}", f"--private-key={cred}"]
    rc, _, _ = _run([*argv, url])
    if rc is None:
        return Seen(CLIENT_ERROR, "timed out")
    surfaced = f"exit {rc}"
    # wget's exit codes: 0 success, 4 network failure (TLS errors too), 5 SSL verification
    outcome = {0: OK, 4: REJECTED, 5: SERVER_CERT_REJECTED}.get(rc, CLIENT_ERROR)
    return Seen(outcome, surfaced)


def run_httpx(url: str, files: Files) -> Seen:
    import httpx

    ctx = ssl.create_default_context(cafile=str(files.ca))
    if files.credential:
        ctx.load_cert_chain(str(files.credential))
    try:
        response = httpx.get(url, verify=ctx, timeout=5.0)
    except httpx.TimeoutException as exc:
        return Seen(CLIENT_ERROR, f"httpx.{type(exc).__name__}")
    except httpx.TransportError as exc:
        surfaced = f"httpx.{type(exc).__name__}"
        chain, e = [], exc
        while e is not None and len(chain) < 16:
            chain.append(e)
            e = e.__cause__ or e.__context__
        if any(isinstance(x, ssl.SSLCertVerificationError) for x in chain):
            return Seen(SERVER_CERT_REJECTED, surfaced)
        reasons = [x.reason for x in chain if isinstance(x, ssl.SSLError) and x.reason]
        alert = next((alert_name(r) for r in reasons if alert_name(r)), None)
        return Seen(REJECTED, surfaced, alert)
    return Seen(OK if response.status_code == 200 else CLIENT_ERROR, f"HTTP {response.status_code}")


def _have(program: str) -> str | None:
    return None if shutil.which(program) else f"{program} not found on PATH"


def _have_httpx() -> str | None:
    try:
        import httpx  # noqa: F401
    except ImportError:
        return "httpx is not installed (pip install 'mtls-matrix[clients]')"
    return None


def _wget_gnutls() -> str | None:
    missing = _have("wget")
    if missing:
        return missing
    rc, out, _ = _run(["wget", "--version"])
    if rc != 0 or "+ssl/gnutls" not in out:
        return "wget is not built with GnuTLS (+ssl/gnutls)"
    return None


@dataclass(frozen=True)
class RealClient:
    name: str
    tls: str  # the version it negotiates with the reference server (pinned or default)
    run: Callable[[str, Files], Seen]
    unavailable: Callable[[], str | None]
    surfaces: str  # how it shows a refusal, for the docs and the report


REAL_CLIENTS = (
    RealClient(
        "curl",
        "1.3",
        run_curl,
        lambda: _have("curl"),
        "exit 56 (recv failure) with OpenSSL's alert text; exit 35 if refused mid-handshake",
    ),
    RealClient(
        "s_client-tls1.2",
        "1.2",
        s_client("1.2"),
        lambda: _have("openssl"),
        "exit 1, 'sslv3 alert handshake failure' etc. during the handshake",
    ),
    RealClient(
        "s_client-tls1.3",
        "1.3",
        s_client("1.3"),
        lambda: _have("openssl"),
        "handshake completes, then exit 1 with 'tlsv13 alert certificate required' on read",
    ),
    RealClient("wget", "1.3", run_wget, _wget_gnutls, "exit 4 (network failure), no alert named"),
    RealClient(
        "httpx",
        "1.3",
        run_httpx,
        _have_httpx,
        "httpx.ReadError (TLS 1.3 first read) or ConnectError, ssl reason code inside",
    ),
)


@dataclass(frozen=True)
class ClientRun:
    client: str
    adapter: str
    policy: str
    credential: str
    tls: str
    expected: str
    reason: str
    expected_alert: str | None
    outcome: str
    surfaced: str
    alert: str | None
    ca_names: str | None
    problems: tuple[str, ...]


def judge(expected_outcome: str, expected_alert: str | None, policy: str, seen: Seen) -> list[str]:
    """What is wrong with one run, as short phrases (empty: it matches)."""
    problems = []
    if seen.outcome != expected_outcome:
        problems.append(f"expected {expected_outcome}, observed {seen.outcome}")
    elif (
        seen.outcome == REJECTED and seen.alert and expected_alert and seen.alert != expected_alert
    ):
        problems.append(f"expected alert {expected_alert}, observed {seen.alert}")
    if policy != "ignore" and seen.ca_names == "listed":
        problems.append("CA names listed in the CertificateRequest; the reference sends none")
    return problems


def run_all(certs_dir: Path, selected: list[RealClient]) -> list[ClientRun]:
    certs = certs_gen.generate(certs_dir)
    facts = build_facts(certs, probe((HOST,)), dt.datetime.now(dt.timezone.utc))
    env = MatrixEnv(certs, facts, ReferenceTarget())
    runs = []
    try:
        for adapter in ADAPTERS:
            for policy in POLICIES:
                for credential in CLIENTS:
                    for client in selected:
                        case = Case(
                            "client-auth",
                            adapter,
                            policy,
                            HOST,
                            HOST,
                            credential,
                            "server",
                            tls=client.tls,
                        )
                        runs.append(_one(env, case, client))
    finally:
        env.close()
    return runs


def _one(env: MatrixEnv, case: Case, client: RealClient) -> ClientRun:
    expectation = predict(case, env.facts)
    server = env.servers.get(case.config, env.spec(case.config))
    cred = None if case.client == NO_CLIENT_CERT else env.certs[case.client].key_and_chain
    files = Files(env.certs[TRUST_ROOT].cert, cred)
    seen = client.run(url_for(case.connect, server.port), files)
    refusal = expectation.refusal
    expected_alert = refusal.alert if refusal else None
    problems = judge(expectation.outcome, expected_alert, case.policy, seen)
    return ClientRun(
        client.name,
        case.adapter,
        case.policy,
        case.client,
        case.tls,
        expectation.outcome,
        expectation.reason,
        expected_alert,
        seen.outcome,
        seen.surfaced,
        seen.alert,
        seen.ca_names,
        tuple(problems),
    )


def main(argv: list[str] | None = None, prog: str = "python -m matrix.clients") -> int:
    parser = OneLineParser(prog=prog, description=__doc__)
    parser.add_argument("--out", default="build/clients.json", help="results file (JSON)")
    parser.add_argument("--certs-dir", default="build/matrix-certs", help="certificate set")
    parser.add_argument(
        "--client",
        action="append",
        choices=[c.name for c in REAL_CLIENTS],
        help="run only this client (repeatable)",
    )
    parser.add_argument(
        "--require-all", action="store_true", help="a client that cannot run is a failure"
    )
    args = parser.parse_args(argv)
    wanted = [c for c in REAL_CLIENTS if not args.client or c.name in args.client]
    not_run = {c.name: why for c in wanted if (why := c.unavailable())}
    selected = [c for c in wanted if c.name not in not_run]
    try:
        # The server logs each refusal; here refusals are the point, and the table says it.
        with logger_level("mtls_matrix.reference", logging.ERROR):
            runs = run_all(Path(args.certs_dir), selected)
    except certs_gen.CertsGenError as exc:
        print(f"matrix.clients: --certs-dir: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "version": 1,
        "clients": {
            c.name: {"tls": c.tls, "surfaces": c.surfaces, "not_run": not_run.get(c.name)}
            for c in wanted
        },
        "runs": [asdict(r) for r in runs],
    }
    out.write_text(json.dumps(report, indent=2) + "\n")

    failed = False
    for client in wanted:
        if client.name in not_run:
            print(f"{client.name:16} not run: {not_run[client.name]}")
            failed = failed or args.require_all
            continue
        mine = [r for r in runs if r.client == client.name]
        bad = [r for r in mine if r.problems]
        print(f"{client.name:16} {len(mine) - len(bad)}/{len(mine)} match the oracle")
        for r in bad:
            print(
                f"  {r.adapter}-{r.policy}-client:{r.credential}: {'; '.join(r.problems)} "
                f"[{r.surfaced}{', alert ' + r.alert if r.alert else ''}] ({r.reason})"
            )
        failed = failed or bool(bad)
    print(f"results in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
