"""Run the request and per-path grids (SPEC section 9) in the state profile.

In the profile (``pytest matrix --profile state``, docs/state.md) each grid is a
``StateGrid`` whose runner is ``run_request_case`` / ``run_perpath_case``: the case's
server comes from the profile's pool (shared by the cases of one configuration: the
request grid holds one per adapter, the per-path grid one per adapter, policy of
``/`` and TLS version), the case is played over a raw TLS socket
(``matrix.state.wire``: a chosen source address, an absolute-form target, headers
spelled like variables, post-handshake authentication offered or not) and judged by
the grid's oracle. ``matrix.state.standalone`` runs the same cases without pytest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import certs_gen

from ..problems import AVAILABILITY, HARNESS, Problem
from ..runner import CaseResult, MatrixEnv
from ..servers import ServerStartFailed
from . import perpath, request
from .model import LOOPBACK, StateCase
from .runner import server_spec, state_env, unsupported
from .wire import ClientSetup, exchange, request_bytes

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
