"""Run the request and per-path grids (SPEC section 9): in the state profile, or on their own.

In the profile (``pytest matrix --profile state``, docs/state.md) each grid is a
``StateGrid`` whose runner is ``run_request_case`` / ``run_perpath_case``: the case's
server comes from the profile's pool (shared by the cases of one configuration: the
request grid holds one per adapter, the per-path grid one per adapter, policy of
``/`` and TLS version), the case is played over a raw TLS socket
(``matrix.state.wire``: a chosen source address, an absolute-form target, headers
spelled like variables, post-handshake authentication offered or not) and judged by
the grid's oracle. On their own, for a quick look at one target:

    python -m matrix.state.run --target harness.targets.gunicorn:target \
        [--grid request|per-path|all] [--out build/state-request.json]

prints each failing case and a summary; exit status 0 when no case failed, 1 when one
did, 2 on bad arguments. A configuration the target cannot express (``unsupported``,
the declared-features gate included) makes its cases unsupported with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import certs_gen
from harness.target import CheckedTarget, ServerSpec, TargetLoadError, load_target

from ..problems import AVAILABILITY, HARNESS, START, Problem
from ..runner import CaseResult, MatrixEnv
from ..servers import ServerStartFailed
from . import perpath, request
from .model import LOOPBACK, StateCase
from .runner import server_spec, state_env, unsupported
from .wire import ClientSetup, exchange, request_bytes

GRIDS = ("request", "per-path")
Played = tuple[dict[str, Any], list[Problem]]  # (observed, problems)


def _setup(certs: certs_gen.CertSet, credential: str, **kw: Any) -> ClientSetup:
    cred = None if credential == "none" else certs[credential]
    return ClientSetup(
        ca=certs["ca"].cert,
        cert=None if cred is None else cred.cert,
        key=None if cred is None else cred.key,
        **kw,
    )


def _connect_failed(exc: OSError) -> Played:
    return {"outcome": "error"}, [
        Problem(HARNESS, AVAILABILITY, "connect", None, type(exc).__name__)
    ]


# -- one case, on a running server ----------------------------------------------------------


def request_expected(case: request.RequestCase) -> dict[str, Any]:
    want = request.predict(case)
    reason = "served, or refused: no request changes what the connection says"
    if want.served:
        reason = "served: an honest request"
    return {"outcome": "ok", "reason": reason, "served": want.served, "values": want.values}


def play_request(case: request.RequestCase, port: int, certs: certs_gen.CertSet) -> Played:
    setup = _setup(certs, case.credential, source=case.source, tls_version="TLSv1.3")
    forgery = case.forgery
    host = forgery.host or f"localhost:{port}"
    raw = request_bytes(forgery.method, forgery.target, host, forgery.headers)
    try:
        seen = exchange(LOOPBACK, port, setup, raw)
    except OSError as exc:
        return _connect_failed(exc)
    shown = seen.json() if seen.status is not None else None
    judged = {
        k: v
        for k, v in (shown or {}).items()
        if k in (*request.CONNECTION_KEYS, "SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN")
    }
    outcome = perpath.observed_outcome(seen.status, seen.ended, seen.alert)
    observed = {"outcome": outcome, "status": seen.status, "shown": judged}
    return observed, request.judge(case, seen.status, shown)


def perpath_expected(case: perpath.PathCase) -> dict[str, Any]:
    want = perpath.predict(case)
    return {"outcome": want.outcome, "reason": want.reason, "also": list(want.also)}


def play_perpath(case: perpath.PathCase, port: int, certs: certs_gen.CertSet) -> Played:
    can = case.answer == "can"
    setup = _setup(
        certs,
        case.credential,
        tls_version=case.tls_version,
        post_handshake_auth=can,
        renegotiation=can,
    )
    try:
        seen = exchange(LOOPBACK, port, setup, request_bytes("GET", case.path, f"localhost:{port}"))
    except OSError as exc:
        return _connect_failed(exc)
    outcome = perpath.observed_outcome(seen.status, seen.ended, seen.alert)
    shown = seen.json()
    observed = {"outcome": outcome, "SSL_CLIENT_VERIFY": (shown or {}).get("SSL_CLIENT_VERIFY")}
    return observed, perpath.judge(case, outcome, shown)


# -- in the state profile -------------------------------------------------------------------


def _run_state(
    case: StateCase,
    env: MatrixEnv,
    expected: dict[str, Any],
    play: Callable[[int], Played],
) -> CaseResult:
    started = time.perf_counter()
    dims = case.result_dims()

    def result(status: str, observed: dict | None = None, **kw: Any) -> CaseResult:
        ms = round((time.perf_counter() - started) * 1000, 2)
        return CaseResult(dims, expected, observed, status, duration_ms=ms, **kw)

    why = unsupported(case, env)
    if why:
        return result("skip", unsupported=why)
    server = case.servers[0]
    try:
        handle = state_env(env).pool.get(server, server_spec(env, server))
    except ServerStartFailed as exc:
        problem = Problem(exc.kind, AVAILABILITY, "start", "running", exc.error)
        return result("fail", problems=[problem], note=str(exc))
    observed, problems = play(handle.port)
    return result("fail" if problems else "pass", observed, problems=problems)


def run_request_case(case: StateCase, env: MatrixEnv) -> CaseResult:
    own = request.from_state_case(case)
    return _run_state(
        case, env, request_expected(own), lambda port: play_request(own, port, env.certs)
    )


def run_perpath_case(case: StateCase, env: MatrixEnv) -> CaseResult:
    own = perpath.from_state_case(case)
    return _run_state(
        case, env, perpath_expected(own), lambda port: play_perpath(own, port, env.certs)
    )


# -- on their own ---------------------------------------------------------------------------


def _spec(certs: certs_gen.CertSet, adapter: str, client_check: str, **extra: Any) -> ServerSpec:
    return ServerSpec(
        adapter=adapter,
        client_check=client_check,
        check_host=False,
        bind=LOOPBACK,
        certificate=certs["server"].cert,
        private_key=certs["server"].key,
        client_ca=certs["ca"].cert,
        **extra,
    )


def _entry(grid: str, case: Any, dims: dict[str, str], **kw: Any) -> dict[str, Any]:
    problems: list[Problem] = kw.pop("problems", [])
    status = kw.pop("status", None) or ("fail" if problems else "pass")
    return {
        "grid": grid,
        "id": case.id,
        "dims": dims,
        "status": status,
        "problems": [p.to_json() for p in problems],
        **kw,
    }


def _run_group(
    target: CheckedTarget,
    spec: ServerSpec,
    group: list[Any],
    grid: str,
    dims: Callable[[Any], dict[str, str]],
    expect: Callable[[Any], dict[str, Any]],
    play: Callable[[Any, int], Played],
) -> list[dict[str, Any]]:
    """The cases that share one server configuration: unsupported, unstartable, or run."""
    why = target.unsupported(spec)
    if why is not None:
        return [_entry(grid, c, dims(c), status="unsupported", reason=why) for c in group]
    try:
        handle = target.start(spec)
    except Exception as exc:
        failure = Problem(START, AVAILABILITY, "start", "running", type(exc).__name__)
        note = " ".join(str(exc).split())[:200]
        return [_entry(grid, c, dims(c), problems=[failure], note=note) for c in group]
    out = []
    try:
        for c in group:
            observed, problems = play(c, handle.port)
            out.append(
                _entry(grid, c, dims(c), problems=problems, expected=expect(c), observed=observed)
            )
    finally:
        handle.stop()
    return out


def request_dims(case: request.RequestCase) -> dict[str, str]:
    return {
        "adapter": case.adapter,
        "forgery": case.forgery.id,
        "source": case.source,
        "client": case.credential,
    }


def run_request(target: CheckedTarget, certs: certs_gen.CertSet) -> list[dict[str, Any]]:
    """The request grid: one server per adapter under ``optional``, every case on it."""
    results: list[dict[str, Any]] = []
    for adapter in target.adapters:
        results += _run_group(
            target,
            _spec(certs, adapter, request.POLICY),
            request.cases((adapter,)),
            "request",
            request_dims,
            request_expected,
            lambda c, port: play_request(c, port, certs),
        )
    return results


def perpath_dims(case: perpath.PathCase) -> dict[str, str]:
    return {
        "adapter": case.adapter,
        "policy": case.base,
        "path": case.path,
        "tls": case.tls_version,
        "answer": case.answer,
        "client": case.credential,
    }


def run_perpath(target: CheckedTarget, certs: certs_gen.CertSet) -> list[dict[str, Any]]:
    """The per-path grid: one server per adapter, policy of ``/`` and TLS version."""
    results: list[dict[str, Any]] = []
    every = perpath.cases(target.adapters)
    for config in sorted({(c.adapter, c.base, c.tls_version) for c in every}):
        adapter, base, version = config
        results += _run_group(
            target,
            _spec(certs, adapter, base, path_policies=perpath.PATH_POLICIES, tls_version=version),
            [c for c in every if (c.adapter, c.base, c.tls_version) == config],
            "per-path",
            perpath_dims,
            perpath_expected,
            lambda c, port: play_perpath(c, port, certs),
        )
    return results


RUNNERS = {"request": run_request, "per-path": run_perpath}


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    statuses = Counter(r["status"] for r in results)
    severities = Counter(p["severity"] for r in results for p in r["problems"])
    kinds = Counter(p["kind"] for r in results for p in r["problems"])
    return {"cases": len(results), **statuses, "severities": dict(severities), "kinds": dict(kinds)}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, as the other commands
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m matrix.state.run", description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="harness.targets.reference:target")
    parser.add_argument("--grid", choices=(*GRIDS, "all"), default="all")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    try:
        target = load_target(args.target, search=["."])
    except TargetLoadError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mtls-state-") as tmp:
        certs = certs_gen.generate(Path(tmp), profile="standard")
        grids = GRIDS if args.grid == "all" else (args.grid,)
        results = [r for g in grids for r in RUNNERS[g](target, certs)]
    out = {
        "target": target.name,
        "versions": target.versions(),
        "summary": summary(results),
        "cases": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    for r in results:
        if r["status"] == "fail":
            found = [f"{p['kind']}/{p['severity']}: {p['what']}" for p in r["problems"]]
            print(r["id"], "; ".join(found))
    print(json.dumps(out["summary"]))
    return 1 if any(r["status"] == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
