"""``python -m matrix.limbo``: the x509-limbo suite against one or more targets.

    python -m matrix.limbo [--target reference|compat|NAME|module:factory ...]
        [--adapter A ...] [--tls 1.2|1.3 ...] [--case SUBSTRING ...]
        [--jobs N] [--results FILE] [--corpus FILE] [--no-store]

Prints the agreement table (per target, adapter and check) and each
disagreement; ``--results`` writes the self-describing JSON (see results.py).
Exit status: 0 when every applicable case agrees or diverges knowingly, 1 when
some case disagrees or ends in error, 2 on bad usage or an unusable corpus.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import platform
import ssl
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import trustme
from OpenSSL import SSL

from harness.target import ServerSpec, TargetLoadError, load_target
from harness.targets.compat import TARGETS as COMPAT_TARGETS
from harness.usage import OneLineParser
from matrix.progress import CommandProgress

from .classify import CATEGORIES, plan, server_auth_only
from .corpus import DEFAULT_CORPUS, CorpusError, LimboCase, load_corpus
from .handshake import ACCEPTED, ERROR, NOT_PRESENTED, REFUSED
from .names import loopback_address
from .results import Column, document, table, write
from .run import NOT_APPLICABLE, TLS, Credential, run_live
from .store import store_check

PROG = "python -m matrix.limbo"
COMPAT = COMPAT_TARGETS
STORE_ADAPTERS = ("builtin", "pyopenssl")
CORPUS_SOURCE = {
    "source": "x509-limbo, https://github.com/C2SP/x509-limbo",
    "commit": "8a2e6f4",
    "license": "Apache-2.0",
    "change": "a leaf without its own extended key usage carries clientAuth (not serverAuth)",
}


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    parser = OneLineParser(
        prog=prog,
        description="x509-limbo path-validation cases as client certificates against mTLS servers.",
    )
    parser.add_argument(
        "--target",
        action="append",
        metavar="T",
        help="reference (default), compat (every compat target), a compat "
        f"target ({', '.join(COMPAT)}) or module:factory; repeatable",
    )
    parser.add_argument(
        "--adapter",
        action="append",
        metavar="A",
        help="only these adapters (default: every one the target runs)",
    )
    parser.add_argument("--tls", action="append", choices=TLS, help="default: both")
    parser.add_argument(
        "--case",
        action="append",
        metavar="SUBSTRING",
        help="only cases whose id contains this; repeatable",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        metavar="N",
        help="trust sets run at once (servers in parallel), default 2",
    )
    parser.add_argument("--results", type=Path, metavar="FILE", help="write the JSON here")
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"default: the vendored {DEFAULT_CORPUS.name}",
    )
    parser.add_argument("--no-store", action="store_true", help="skip the store check")
    options = parser.parse_args(argv)
    if not 1 <= options.jobs <= 16:
        parser.error(f"--jobs must be 1..16, not {options.jobs}")
    warnings.filterwarnings("ignore", message=".*serial number.*")  # the corpus tests those
    try:
        cases = load_corpus(options.corpus)
    except CorpusError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    if options.case:
        cases = [c for c in cases if any(s in c.id for s in options.case)]
        if not cases:
            parser.error(f"no case id contains {' or '.join(map(repr, options.case))}")
    try:
        targets, skipped = _targets(options.target or ["reference"])
    except TargetLoadError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    now = dt.datetime.now(dt.timezone.utc)
    plans = {c.id: plan(c, now) for c in cases}
    tls_versions = tuple(options.tls or TLS)
    try:
        columns, anomalies, skipped = _run_all(
            cases, plans, targets, options, tls_versions, skipped
        )
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    live_vs_store = _live_vs_store(columns)
    meta = {
        "command": " ".join([prog, *(argv if argv is not None else sys.argv[1:])]),
        "date": now.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "corpus": {
            **CORPUS_SOURCE,
            "file": str(options.corpus or DEFAULT_CORPUS.name),
            "sha256": _sha256(options.corpus or DEFAULT_CORPUS),
            "cases": len(cases),
        },
        "environment": {
            "python": platform.python_version(),
            "stdlib_openssl": ssl.OPENSSL_VERSION,
            "pyopenssl_openssl": SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode(),
        },
        "targets": {t.name: t.versions() for t in targets},
    }
    doc = document(columns, cases, plans, meta, anomalies, live_vs_store, skipped)
    print()
    print(table(columns))
    _print_findings(doc)
    print(f"\n{len(cases)} cases, {meta['duration_s']} s")
    if options.results:
        try:
            write(options.results, doc)
        except OSError as exc:
            print(
                f"{prog}: error: cannot write {options.results}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
        print(f"results: {options.results}")
    return exit_status(doc["columns"], anomalies)


def exit_status(columns: list[dict], anomalies: list[dict]) -> int:
    """1 when the reference server disagrees with the corpus, errs, or refuses without its
    refusal line; 0 otherwise. Another server's disagreements are findings, not a failed
    run (the convention of the compat run): they are in the table and the JSON."""
    ours = [c for c in columns if c["target"] == "reference"]
    bad = any(c["counts"]["disagree"] or c["counts"]["error"] for c in ours)
    return 1 if bad or any(a["fails"] for a in anomalies) else 0


def _run_all(
    cases: list[LimboCase],
    plans: dict[str, Any],
    targets: list[Any],
    options: argparse.Namespace,
    tls_versions: tuple[str, ...],
    skipped: list[dict[str, str]],
) -> tuple[list[Column], list[dict[str, Any]], list[dict[str, str]]]:
    columns: list[Column] = []
    anomalies: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="limbo-") as tmp:
        workdir = Path(tmp)
        cred = _credential(workdir)
        if not options.no_store:
            columns += _store_columns(cases, plans, cred, options.adapter)
        pairs = [(t, a) for t in targets for a in _adapters(t, options.adapter)]
        with CommandProgress(len(pairs), "limbo targets") as progress:
            for target, adapter in pairs:
                why = target.unsupported(_spec(adapter, cred, False))
                if why:
                    skipped.append({"target": target.name, "adapter": adapter, "reason": why})
                    progress.advance()
                    continue
                print(f"== {target.name} / {adapter}", flush=True)
                cols, found, skip = _live(
                    target, adapter, cases, plans, cred, workdir, options.jobs, tls_versions
                )
                columns += cols
                anomalies += found
                skipped += skip
                progress.advance(failed=bool(found))
    return columns, anomalies, skipped


def _targets(names: list[str]) -> tuple[list[Any], list[dict[str, str]]]:
    """Load the targets; of the ``compat`` set, one not installed is skipped with why."""
    refs: dict[str, bool] = {}  # reference -> optional
    for name in names:
        if name == "compat":
            for n in COMPAT:
                refs.setdefault(f"harness.targets.{n}:target", True)
        elif name == "reference" or name in COMPAT:
            refs[f"harness.targets.{name}:target"] = False
        else:
            refs[name] = False
    targets, skipped = [], []
    for ref, optional in refs.items():
        try:
            targets.append(load_target(ref))
        except TargetLoadError as exc:
            if not optional:
                raise
            skipped.append({"target": ref, "adapter": "*", "reason": str(exc)})
    return targets, skipped


def _adapters(target: Any, wanted: list[str] | None) -> list[str]:
    runs = list(getattr(target, "adapters", STORE_ADAPTERS))
    return [a for a in runs if not wanted or a in wanted]


def _credential(workdir: Path) -> Credential:
    ca = trustme.CA()
    ca_file = workdir / "server-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf = ca.issue_cert("localhost", "127.0.0.1", "::1")
    cert_file, key_file = workdir / "server.pem", workdir / "server.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    return Credential(
        cert_file,
        key_file,
        leaf.cert_chain_pems[0].bytes(),
        leaf.private_key_pem.bytes(),
        ca_file,
    )


def _spec(adapter: str, cred: Credential, check_host: bool, bind: str = "127.0.0.1") -> ServerSpec:
    return ServerSpec(
        adapter, "required", check_host, bind, cred.cert_file, cred.key_file, cred.ca_file
    )


def store_flags(adapter: str, cred: Credential) -> int:
    """The X509_V_FLAG_* bits the reference adapter's context verifies with."""
    if adapter == "builtin":
        from harness.reference import make_adapter

        built = make_adapter(
            "builtin",
            certificate=str(cred.cert_file),
            private_key=str(cred.key_file),
            client_CA=str(cred.ca_file),
            client_check="required",
        )
        return int(built.context.verify_flags)
    from harness.reference import pyopenssl

    return int(getattr(pyopenssl, "VERIFY_FLAGS", 0))


def _store_columns(
    cases: list[LimboCase], plans: dict[str, Any], cred: Credential, wanted: list[str] | None
) -> list[Column]:
    columns = []
    for adapter in STORE_ADAPTERS:
        if wanted and adapter not in wanted:
            continue
        flags = store_flags(adapter, cred)
        col = Column("store", adapter, "store")
        for case in cases:
            cat = CATEGORIES[plans[case.id].category]
            why = _store_not_applicable(case, cat.name, cat.reason)
            if why:
                col.add(case, cat.name, "", not_applicable=why)
                continue
            verdict = store_check(case, flags, case.validation_time)
            col.add(
                case,
                cat.name,
                ACCEPTED if verdict.accepted else REFUSED,
                detail=f"{verdict.detail} (flags {flags:#x})",
            )
        columns.append(col)
    return columns


def _store_not_applicable(case: LimboCase, category: str, reason: str) -> str | None:
    if category == "eku-server-auth":
        return reason
    if category == "server-name":
        return "the store check matches no peer name (" + reason + ")"
    return server_auth_only(case)


def _live(
    target: Any,
    adapter: str,
    cases: list[LimboCase],
    plans: dict[str, Any],
    cred: Credential,
    workdir: Path,
    jobs: int,
    tls_versions: tuple[str, ...],
) -> tuple[list[Column], list[dict[str, Any]]]:
    live = [c for c in cases if plans[c.id].live]
    results = run_live(target, adapter, live, cred, workdir, jobs, tls_versions)
    by_key = {(r.case_id, r.tls): r for r in results}
    in_process = target.name == "reference"  # its refusal lines can be read
    anomalies = []
    columns = []
    host_ok = target.unsupported(_spec(adapter, cred, True)) is None
    for tls in tls_versions:
        col = Column(target.name, adapter, f"tls{tls}")
        for case in cases:
            p = plans[case.id]
            if not p.live:
                why = p.why_not_live or CATEGORIES[p.category].reason
                col.add(case, p.category, "", not_applicable=why)
                continue
            r = by_key[(case.id, tls)]
            if r.outcome == NOT_APPLICABLE:
                col.add(case, p.category, "", not_applicable=r.detail)
                continue
            if r.client is not None and r.client.alert == "protocol_version":
                why = f"the server refused TLS {tls} itself (protocol_version alert)"
                col.add(case, p.category, "", not_applicable=why)
                continue
            form = r.client.form if r.client is not None else None
            alert = r.client.alert if r.client is not None else None
            col.add(case, p.category, r.outcome, r.detail, r.server, form=form, alert=alert)
            if r.outcome == REFUSED and r.server is None and (in_process or form != "alert"):
                # In-process, a refusal always has its line: a close without one is a defect
                # (fails the run). Elsewhere it is noted: a server that drops a connection
                # without an alert may not have refused the certificate at all.
                anomalies.append(
                    {
                        "target": target.name,
                        "adapter": adapter,
                        "tls": tls,
                        "case": case.id,
                        "fails": in_process,
                        "what": "refused without a refusal line"
                        if in_process
                        else f"closed without an alert or a response ({r.detail})",
                    }
                )
        columns.append(col)
    names = [c for c in cases if plans[c.id].host_check]
    skipped = []
    if names and host_ok:
        columns += _host_check(target, adapter, names, plans, cred, workdir, tls_versions)
    elif names:
        why = target.unsupported(_spec(adapter, cred, True))
        skipped.append({"target": target.name, "adapter": adapter, "reason": f"host check: {why}"})
    return columns, anomalies, skipped


def _host_check(
    target: Any,
    adapter: str,
    cases: list[LimboCase],
    plans: dict[str, Any],
    cred: Credential,
    workdir: Path,
    tls_versions: tuple[str, ...],
) -> list[Column]:
    runnable: dict[str, list[LimboCase]] = {}
    why_not: dict[str, str] = {}
    for case in cases:
        address, why = loopback_address(case)
        if address is None:
            why_not[case.id] = why
        else:
            runnable.setdefault(address, []).append(case)
    by_key = {}
    for address, members in runnable.items():
        for r in run_live(
            target, adapter, members, cred, workdir, 1, tls_versions, check_host=True, bind=address
        ):
            by_key[(r.case_id, r.tls)] = r
    columns = []
    for tls in tls_versions:
        col = Column(target.name, adapter, f"host-check-tls{tls}")
        for case in cases:
            cat = plans[case.id].category
            if case.id in why_not:
                col.add(case, cat, "", not_applicable=why_not[case.id])
            else:
                r = by_key[(case.id, tls)]
                obs = r.client
                col.add(
                    case,
                    cat,
                    r.outcome,
                    r.detail,
                    r.server,
                    form=obs.form if obs else None,
                    alert=obs.alert if obs else None,
                )
        columns.append(col)
    return columns


def _live_vs_store(columns: list[Column]) -> list[dict[str, Any]]:
    """Cases where a live server and the store check of the same adapter disagree."""
    store = {c.adapter: {r.case_id: r for r in c.results} for c in columns if c.check == "store"}
    out = []
    for col in columns:
        if col.check == "store" or not col.check.startswith("tls") or col.adapter not in store:
            continue
        for r in col.results:
            s = store[col.adapter].get(r.case_id)
            if (
                s is None
                or r.observed not in (ACCEPTED, REFUSED)
                or s.observed not in (ACCEPTED, REFUSED)
            ):
                continue
            if r.observed != s.observed:
                out.append(
                    {
                        "id": r.case_id,
                        "target": col.target,
                        "adapter": col.adapter,
                        "check": col.check,
                        "live": r.observed,
                        "store": s.observed,
                        "live_detail": r.detail,
                        "store_detail": s.detail,
                    }
                )
    return out


def _print_findings(doc: dict[str, Any]) -> None:
    for col in doc["columns"]:
        for category, items in col["divergences"].items():
            for item in items:
                if item["status"] == "disagree":
                    print(
                        f"DISAGREE {col['target']}/{col['adapter']}/{col['check']} "
                        f"[{category}] {item['id']}: expected {item['expected']}, "
                        f"observed {item['observed']} ({item['detail'][:120]})"
                    )
    for col in doc["columns"]:
        name = f"{col['target']}/{col['adapter']}/{col['check']}"
        errors = [
            c
            for c in doc["cases"]
            if c["results"].get(name, {}).get("status") in (ERROR, NOT_PRESENTED)
        ]
        for c in errors:
            res = c["results"][name]
            print(f"{res['status'].upper()} {name} {c['id']}: {res['detail'][:140]}")
    notes: dict[str, int] = {}
    for a in doc["anomalies"]:
        where = f"{a['target']}/{a['adapter']}/tls{a['tls']}"
        if a["fails"]:
            print(f"ANOMALY {where} {a['case']}: {a['what']}")
        else:
            notes[where] = notes.get(where, 0) + 1
    for where, n in notes.items():
        print(f"NOTE {where}: {n} refusal(s) by a close without an alert (JSON: anomalies)")
    for u in doc["unused_divergences"]:
        print(f"UNUSED DIVERGENCE {u['key']} ({u['observed']}): nothing in this run needed it")
    for s in doc["skipped"]:
        print(f"SKIPPED {s['target']}/{s['adapter']}: {s['reason']}")
    print(f"live vs store: {len(doc['live_vs_store'])} differences")


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
