"""Run the request and per-path grids (SPEC section 9) against a target.

    python -m matrix.state.run --target harness.targets.reference:target \
        [--grid request|per-path|all] [--out build/state-request.json]

Each grid starts one server per configuration it holds fixed (the request grid:
one per adapter; the per-path grid: one per adapter, policy of ``/`` and TLS
version), sends every case over a raw TLS socket (``matrix.state.wire``) and
judges it with the grid's oracle. A configuration the target cannot express
(``unsupported``, the declared-features gate included) makes its cases
unsupported with the reason, never failed. Results are fields (``problems`` with
kind and severity), as in results.json. Exit status: 0 when no case failed, 1 when
one did, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import certs_gen
from harness.target import CheckedTarget, ServerSpec, TargetLoadError, load_target
from matrix.problems import AVAILABILITY, HARNESS, START, Problem

from . import perpath, request
from .wire import ClientSetup, exchange, request_bytes

BIND = "127.0.0.1"
GRIDS = ("request", "per-path")


def _spec(certs: certs_gen.CertSet, adapter: str, client_check: str, **extra: Any) -> ServerSpec:
    return ServerSpec(
        adapter=adapter,
        client_check=client_check,
        check_host=False,
        bind=BIND,
        certificate=certs["server"].cert,
        private_key=certs["server"].key,
        client_ca=certs["ca"].cert,
        **extra,
    )


def _setup(certs: certs_gen.CertSet, credential: str, **kw: Any) -> ClientSetup:
    cred = None if credential == "none" else certs[credential]
    return ClientSetup(
        ca=certs["ca"].cert,
        cert=None if cred is None else cred.cert,
        key=None if cred is None else cred.key,
        **kw,
    )


def _entry(grid: str, case_id: str, dims: dict[str, str], **kw: Any) -> dict[str, Any]:
    problems: list[Problem] = kw.pop("problems", [])
    status = kw.pop("status", None) or ("fail" if problems else "pass")
    return {
        "grid": grid,
        "id": case_id,
        "dims": dims,
        "status": status,
        "problems": [p.to_json() for p in problems],
        **kw,
    }


@contextlib.contextmanager
def _server(target: CheckedTarget, spec: ServerSpec) -> Iterator[Any]:
    handle = target.start(spec)
    try:
        yield handle
    finally:
        handle.stop()


def _run_group(
    target: CheckedTarget,
    spec: ServerSpec,
    group: list[Any],
    grid: str,
    dims: Callable[[Any], dict[str, str]],
    one: Callable[[Any, Any], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The cases that share one server configuration: unsupported, unstartable, or run."""
    try:
        why = target.unsupported(spec)
    except Exception as exc:  # the target's own bug: every case says so
        why = None
        failure = Problem(HARNESS, AVAILABILITY, f"unsupported() raised {type(exc).__name__}")
        return [_entry(grid, c.id, dims(c), problems=[failure]) for c in group]
    if why is not None:
        return [_entry(grid, c.id, dims(c), status="unsupported", reason=why) for c in group]
    try:
        ctx = _server(target, spec)
        handle = ctx.__enter__()
    except Exception as exc:
        failure = Problem(START, AVAILABILITY, "start", "started", type(exc).__name__)
        detail = " ".join(str(exc).split())[:200]
        return [_entry(grid, c.id, dims(c), problems=[failure], note=detail) for c in group]
    try:
        return [one(c, handle) for c in group]
    finally:
        ctx.__exit__(None, None, None)


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
        group = [c for c in request.cases((adapter,))]
        spec = _spec(certs, adapter, request.POLICY)

        def one(case: request.RequestCase, handle: Any) -> dict[str, Any]:
            setup = _setup(certs, case.credential, source=case.source)
            host = case.forgery.host or f"localhost:{handle.port}"
            raw = request_bytes(
                case.forgery.method, case.forgery.target, host, case.forgery.headers
            )
            try:
                seen = exchange(
                    handle.host if handle.host not in ("0.0.0.0", "::") else BIND,
                    handle.port,
                    setup,
                    raw,
                )
            except OSError as exc:
                failure = Problem(HARNESS, AVAILABILITY, "connect", None, type(exc).__name__)
                return _entry("request", case.id, request_dims(case), problems=[failure])
            shown = seen.json() if seen.status is not None else None
            judged = {
                k: v
                for k, v in (shown or {}).items()
                if k in (*request.CONNECTION_KEYS, "SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN")
            }
            want = request.predict(case)
            return _entry(
                "request",
                case.id,
                request_dims(case),
                problems=request.judge(case, seen.status, shown),
                expected={"served": want.served, "values": want.values},
                observed={"status": seen.status, "ended": seen.ended, "shown": judged},
            )

        results += _run_group(target, spec, group, "request", request_dims, one)
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
    all_cases = perpath.cases(target.adapters)
    configs = sorted({(c.adapter, c.base, c.tls_version) for c in all_cases})
    for adapter, base, version in configs:
        group = [
            c for c in all_cases if (c.adapter, c.base, c.tls_version) == (adapter, base, version)
        ]
        spec = _spec(certs, adapter, base, path_policies=perpath.PATH_POLICIES, tls_version=version)

        def one(case: perpath.PathCase, handle: Any) -> dict[str, Any]:
            can = case.answer == "can"
            setup = _setup(
                certs,
                case.credential,
                tls_version=case.tls_version,
                post_handshake_auth=can,
                renegotiation=can,
            )
            raw = request_bytes("GET", case.path, f"localhost:{handle.port}")
            try:
                seen = exchange(BIND, handle.port, setup, raw)
            except OSError as exc:
                failure = Problem(HARNESS, AVAILABILITY, "connect", None, type(exc).__name__)
                return _entry("per-path", case.id, perpath_dims(case), problems=[failure])
            observed = perpath.observed_outcome(seen.status, seen.ended, seen.alert)
            shown = seen.json()
            want = perpath.predict(case)
            return _entry(
                "per-path",
                case.id,
                perpath_dims(case),
                problems=perpath.judge(case, observed, shown),
                expected={"outcome": want.outcome, "also": list(want.also), "reason": want.reason},
                observed={
                    "outcome": observed,
                    "SSL_CLIENT_VERIFY": (shown or {}).get("SSL_CLIENT_VERIFY"),
                },
            )

        results += _run_group(target, spec, group, "per-path", perpath_dims, one)
    return results


RUNNERS = {"request": run_request, "per-path": run_perpath}


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    statuses = Counter(r["status"] for r in results)
    severities = Counter(p["severity"] for r in results for p in r["problems"])
    kinds = Counter(p["kind"] for r in results for p in r["problems"])
    return {"cases": len(results), **statuses, "severities": dict(severities), "kinds": dict(kinds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m matrix.state.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--target", default="harness.targets.reference:target")
    parser.add_argument("--grid", choices=(*GRIDS, "all"), default="all")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--certs", type=Path, help="certificate directory (default: a new one)")
    args = parser.parse_args(argv)
    try:
        target = load_target(args.target, search=["."])
    except TargetLoadError as exc:
        print(f"matrix.state.run: error: {exc}", file=sys.stderr)
        return 2
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mtls-state-") as tmp:
        certs = certs_gen.generate(args.certs or Path(tmp), profile="standard")
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
            print(
                r["id"],
                [
                    f"{p['kind']}/{p['severity']}: {p['what']} {p['expected']!r}->{p['observed']!r}"
                    for p in r["problems"]
                ],
            )
    print(json.dumps(out["summary"]))
    return 1 if any(r["status"] == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
