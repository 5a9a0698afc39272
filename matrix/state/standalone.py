"""The request and per-path grids (SPEC section 9) without pytest, for a quick look at one target.

    python -m matrix.state.standalone --target harness.targets.gunicorn:target \
        [--grid request|per-path|all] [--out build/state-request.json]

Each grid starts one server per configuration it holds fixed (request: one per
adapter; per-path: one per adapter, policy of ``/`` and TLS version), plays every
case on it with the profile's own functions (``matrix.state.run``) and prints each
failing case and a summary. A configuration the target cannot express
(``unsupported``, the declared-features gate included) makes its cases unsupported
with the reason. Exit status 0 when no case failed, 1 when one did, 2 on bad
arguments. ``pytest matrix --profile state`` is the full run, with results.json and
reports.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import certs_gen
from harness.target import CheckedTarget, ServerSpec, TargetLoadError, load_target
from harness.usage import OneLineParser

from ..problems import AVAILABILITY, START, Problem
from . import perpath, request
from .model import LOOPBACK
from .run import Played, perpath_expected, play_perpath, play_request, request_expected

GRIDS = ("request", "per-path")


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


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m matrix.state.standalone", description=__doc__.split("\n")[0]
    )
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
